//! Structured outputs (issue 17): a `response_format` — OpenAI's `{"type": "json_object"}` or
//! `{"type": "json_schema", "json_schema": {"schema": …, "strict": …}}` — compiled to a [`Shape`],
//! and a byte-level automaton ([`Machine`]) that accepts exactly the JSON texts of that shape. A
//! decoder asks the machine whether a token's bytes may come next, so what it generates always
//! parses and validates; when tokens run out it closes the value with [`Machine::completion`].
//!
//! Supported schema keywords: `type` (object, array, string, integer, number, boolean, null, or
//! a list of one of them with "null"), `properties` (each at most once, in any order), `required`,
//! `additionalProperties: false` (implied: only listed properties are generated), `items`,
//! `prefixItems` (the first items' shapes by position), `minItems`,
//! `maxItems`, `minLength`, `maxLength`, `enum`, `const`, nesting up to [`MAX_DEPTH`]. Anything
//! else that changes which values are valid (`$ref`, `anyOf`, `pattern`, `minimum`, …) is refused
//! by name rather than ignored.

mod machine;
mod schema;

pub use machine::Machine;
pub use schema::{MAX_DEPTH, Shape, ShapeError, response_format};
