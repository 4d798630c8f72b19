//! Whether a new JSON Schema still accepts what an older one of the same contract version did, and
//! still gives readers every field they had: the breaks the wire contract promises not to make
//! within a version (docs/contract.md) — a removed field, a narrowed type (a type, enum value,
//! constant or bound no longer accepted, unknown fields newly refused), a new required field.
//!
//! Covers the subset of JSON Schema that schemars writes: `$ref` into the same document, `type`,
//! `properties`/`required`/`additionalProperties`, `items`, `enum`/`const`, `oneOf`/`anyOf`,
//! `minimum`/`maximum`/`minLength`. Descriptions, titles and formats are not compared.

use std::collections::BTreeSet;

use serde_json::Value;

/// Every break from `old` to `new`, each naming where it is (a JSON path from the root).
pub fn breaks(old: &Value, new: &Value) -> Vec<String> {
    let mut walk = Walk { old_root: old, new_root: new, seen: BTreeSet::new(), found: Vec::new() };
    walk.compare(old, new, "$");
    walk.found
}

struct Walk<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    /// `$ref` pairs already compared: recursive types (a sub-DAG holds tasks) end here.
    seen: BTreeSet<(String, String)>,
    found: Vec<String>,
}

impl<'a> Walk<'a> {
    fn compare(&mut self, old: &'a Value, new: &'a Value, at: &str) {
        let (old_ref, new_ref) = (ref_of(old), ref_of(new));
        if old_ref.is_some() || new_ref.is_some() {
            let key = (old_ref.unwrap_or_default().to_string(), new_ref.unwrap_or_default().to_string());
            if !self.seen.insert(key) {
                return;
            }
            let old = resolve(self.old_root, old);
            let new = resolve(self.new_root, new);
            return self.compare(old, new, at);
        }
        // A union on either side: each old alternative must still be accepted by the new schema.
        let (old_variants, new_variants) = (variants(old), variants(new));
        if old_variants.is_some() || new_variants.is_some() {
            let news: Vec<&Value> = new_variants.unwrap_or_else(|| vec![new]);
            for (i, old_variant) in old_variants.unwrap_or_else(|| vec![old]).into_iter().enumerate() {
                let label =
                    tag(resolve(self.old_root, old_variant)).unwrap_or_else(|| format!("variant {i}"));
                self.compare_variant(old_variant, &news, &format!("{at}<{label}>"));
            }
            return;
        }
        self.compare_plain(old, new, at);
    }

    /// `old_variant` must match one of `news` without a break; otherwise the breaks of the
    /// closest one are reported.
    fn compare_variant(&mut self, old_variant: &'a Value, news: &[&'a Value], at: &str) {
        // The old variant's counterpart is the closest kin (same definition, same tag, same
        // type), and among equals the one with the fewest breaks.
        let mut best: Option<(u8, Vec<String>)> = None;
        for &candidate in news {
            let mut trial = Walk {
                old_root: self.old_root,
                new_root: self.new_root,
                seen: self.seen.clone(),
                found: Vec::new(),
            };
            trial.compare(old_variant, candidate, at);
            let kin = self.kinship(old_variant, candidate);
            let better = best.as_ref().is_none_or(|(best_kin, found)| {
                kin > *best_kin || (kin == *best_kin && trial.found.len() < found.len())
            });
            if better {
                best = Some((kin, trial.found));
            }
        }
        let best = best.map(|(_, found)| found);
        match best {
            Some(found) if found.is_empty() => {}
            Some(found) => {
                self.found.push(format!("{at}: an accepted alternative is gone or narrowed"));
                self.found.extend(found);
            }
            None => self.found.push(format!("{at}: an accepted alternative is gone")),
        }
    }

    /// How surely `new` is `old`'s counterpart: 3 for the same definition or the same tag
    /// value, 1 for a shared type, 0 otherwise (and 0 for a different tag value).
    fn kinship(&self, old: &Value, new: &Value) -> u8 {
        let name = |s: &Value| ref_of(s).and_then(|r| r.rsplit('/').next()).map(str::to_string);
        if name(old).is_some() && name(old) == name(new) {
            return 3;
        }
        let (old, new) = (resolve(self.old_root, old), resolve(self.new_root, new));
        if let (Some(old_props), Some(new_props)) = (
            old.get("properties").and_then(Value::as_object),
            new.get("properties").and_then(Value::as_object),
        ) {
            for (key, old_prop) in old_props {
                if let (Some(a), Some(b)) =
                    (old_prop.get("const"), new_props.get(key).and_then(|p| p.get("const")))
                {
                    return if a == b { 3 } else { 0 };
                }
            }
        }
        match (types(old), types(new)) {
            (Some(a), Some(b)) if a.intersection(&b).next().is_some() => 1,
            _ => 0,
        }
    }

    fn compare_plain(&mut self, old: &'a Value, new: &'a Value, at: &str) {
        if accepts_anything(new) {
            return;
        }
        let (old_types, new_types) = (types(old), types(new));
        if let (Some(old_types), Some(new_types)) = (&old_types, &new_types) {
            let lost: Vec<_> = old_types
                .iter()
                .filter(|t| !(new_types.contains(*t) || (*t == "integer" && new_types.contains("number"))))
                .collect();
            if !lost.is_empty() {
                self.found.push(format!("{at}: narrowed type: {lost:?} no longer accepted"));
            }
        } else if old_types.is_none()
            && new_types.is_some()
            && old.get("enum").is_none()
            && old.get("const").is_none()
        {
            self.found.push(format!("{at}: narrowed type: any value was accepted, now only {new_types:?}"));
        }
        self.compare_values(old, new, at);
        self.compare_bounds(old, new, at);
        self.compare_object(old, new, at);
        if let (Some(old_items), Some(new_items)) = (old.get("items"), new.get("items")) {
            self.compare(old_items, new_items, &format!("{at}[]"));
        }
    }

    /// `enum` and `const`: every value the old schema allowed is still allowed.
    fn compare_values(&mut self, old: &Value, new: &Value, at: &str) {
        let allowed = |s: &Value| -> Option<Vec<Value>> {
            s.get("enum")
                .and_then(Value::as_array)
                .cloned()
                .or_else(|| s.get("const").map(|c| vec![c.clone()]))
        };
        let Some(new_values) = allowed(new) else { return };
        match allowed(old) {
            Some(old_values) => {
                for value in old_values.iter().filter(|v| !new_values.contains(v)) {
                    self.found.push(format!("{at}: value {value} no longer accepted"));
                }
            }
            None => self.found.push(format!("{at}: narrowed to the values {}", Value::Array(new_values))),
        }
    }

    fn compare_bounds(&mut self, old: &Value, new: &Value, at: &str) {
        // Old values listed one by one: they must fit the new numeric bounds, whatever the old
        // bounds were.
        let listed = old
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .or_else(|| old.get("const").map(|c| vec![c.clone()]));
        if let Some(values) = listed {
            for x in values.iter().filter_map(Value::as_f64) {
                let below = new.get("minimum").and_then(Value::as_f64).is_some_and(|m| x < m);
                let above = new.get("maximum").and_then(Value::as_f64).is_some_and(|m| x > m);
                if below || above {
                    self.found.push(format!("{at}: value {x} no longer within the bounds"));
                }
            }
            return;
        }
        for (key, raised_is_narrower) in
            [("minimum", true), ("exclusiveMinimum", true), ("minLength", true), ("minItems", true)]
                .into_iter()
                .chain([
                    ("maximum", false),
                    ("exclusiveMaximum", false),
                    ("maxLength", false),
                    ("maxItems", false),
                ])
        {
            let Some(new_bound) = new.get(key).and_then(Value::as_f64) else { continue };
            let narrower = match old.get(key).and_then(Value::as_f64) {
                None => true,
                Some(old_bound) if raised_is_narrower => new_bound > old_bound,
                Some(old_bound) => new_bound < old_bound,
            };
            if narrower {
                self.found.push(format!("{at}: narrowed bound {key} = {new_bound}"));
            }
        }
    }

    fn compare_object(&mut self, old: &'a Value, new: &'a Value, at: &str) {
        let old_props = old.get("properties").and_then(Value::as_object).into_iter().flatten();
        let new_props = new.get("properties").and_then(Value::as_object);
        for (name, old_prop) in old_props {
            match new_props.and_then(|p| p.get(name)) {
                Some(new_prop) => self.compare(old_prop, new_prop, &format!("{at}.{name}")),
                None => self.found.push(format!("{at}.{name}: field removed")),
            }
        }
        let old_required = names(old.get("required"));
        for name in names(new.get("required")).difference(&old_required) {
            self.found.push(format!("{at}.{name}: new required field"));
        }
        let closed = |s: &Value| s.get("additionalProperties") == Some(&Value::Bool(false));
        if closed(new)
            && !closed(old)
            && (old.get("properties").is_some() || types(old).is_some_and(|t| t.contains("object")))
        {
            self.found.push(format!("{at}: unknown fields are now refused"));
        }
    }
}

/// `key=value` of a variant's first constant property (`kind=job_request`): how it is told apart.
fn tag(schema: &Value) -> Option<String> {
    let props = schema.get("properties")?.as_object()?;
    props.iter().find_map(|(key, p)| {
        p.get("const").map(|c| format!("{key}={}", c.as_str().map_or(c.to_string(), str::to_string)))
    })
}

fn ref_of(schema: &Value) -> Option<&str> {
    schema.get("$ref").and_then(Value::as_str)
}

/// Follow a local `$ref` (`#/$defs/Name`, `#/components/schemas/Name`); an unresolvable one
/// stands for itself, so a dangling reference compares as an unconstrained schema.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match ref_of(schema).and_then(|r| r.strip_prefix('#')).and_then(|pointer| root.pointer(pointer)) {
        Some(target) => target,
        None => schema,
    }
}

fn variants(schema: &Value) -> Option<Vec<&Value>> {
    let list = schema.get("oneOf").or_else(|| schema.get("anyOf"))?.as_array()?;
    Some(list.iter().collect())
}

fn types(schema: &Value) -> Option<BTreeSet<String>> {
    match schema.get("type")? {
        Value::String(t) => Some(BTreeSet::from([t.clone()])),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        _ => None,
    }
}

fn names(list: Option<&Value>) -> BTreeSet<String> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// `true` or a schema with no constraint at all (descriptions aside).
fn accepts_anything(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(map) => {
            map.keys().all(|k| matches!(k.as_str(), "description" | "title" | "default" | "examples"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn person() -> Value {
        json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "age": {"type": ["integer", "null"], "minimum": 0},
                "kind": {"$ref": "#/$defs/Kind"}
            },
            "required": ["name"],
            "$defs": {"Kind": {"type": "string", "enum": ["a", "b"]}}
        })
    }

    fn edited(path: &str, value: Value) -> Value {
        let mut schema = person();
        *schema.pointer_mut(path).unwrap() = value;
        schema
    }

    #[test]
    fn an_identical_schema_has_no_break() {
        assert_eq!(breaks(&person(), &person()), Vec::<String>::new());
    }

    #[test]
    fn additions_that_old_producers_and_readers_survive_are_not_breaks() {
        let mut wider = person();
        wider["properties"]["note"] = json!({"type": "string"});
        wider["$defs"]["Kind"]["enum"] = json!(["a", "b", "c"]);
        wider["properties"]["age"]["type"] = json!(["number", "null"]);
        wider["properties"]["name"]["description"] = json!("now documented");
        assert_eq!(breaks(&person(), &wider), Vec::<String>::new());
    }

    #[test]
    fn a_removed_field_is_a_break() {
        let mut schema = person();
        schema["properties"].as_object_mut().unwrap().remove("age");
        assert_eq!(breaks(&person(), &schema), vec!["$.age: field removed"]);
    }

    #[test]
    fn a_new_required_field_is_a_break() {
        let schema = edited("/required", json!(["name", "age"]));
        assert_eq!(breaks(&person(), &schema), vec!["$.age: new required field"]);
    }

    #[test]
    fn a_narrowed_type_is_a_break() {
        let schema = edited("/properties/age/type", json!("integer"));
        assert_eq!(breaks(&person(), &schema), vec![r#"$.age: narrowed type: ["null"] no longer accepted"#]);
    }

    #[test]
    fn a_removed_enum_value_behind_a_ref_is_a_break() {
        let schema = edited("/$defs/Kind/enum", json!(["a"]));
        assert_eq!(breaks(&person(), &schema), vec![r#"$.kind: value "b" no longer accepted"#]);
    }

    #[test]
    fn a_raised_minimum_and_refusing_unknown_fields_are_breaks() {
        let mut schema = edited("/properties/age/minimum", json!(1));
        schema["additionalProperties"] = json!(false);
        assert_eq!(breaks(&person(), &schema).len(), 2, "{:?}", breaks(&person(), &schema));
    }

    #[test]
    fn an_optional_field_made_a_union_with_null_is_not_a_break_but_the_reverse_is() {
        let old = json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/X"}}, "$defs": {"X": {"type": "string"}}});
        let new = json!({"type": "object", "properties": {"x": {"anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}]}},
                         "$defs": {"X": {"type": "string"}}});
        assert!(breaks(&old, &new).is_empty(), "{:?}", breaks(&old, &new));
        assert!(!breaks(&new, &old).is_empty());
    }

    #[test]
    fn a_removed_tagged_variant_is_a_break() {
        let variant = |kind: &str| json!({"type": "object", "properties": {"kind": {"const": kind}}, "required": ["kind"]});
        let old = json!({"oneOf": [variant("a"), variant("b")]});
        let new = json!({"oneOf": [variant("a")]});
        let found = breaks(&old, &new);
        assert!(found[0].starts_with("$<kind=b>"), "{found:?}");
        assert!(breaks(&new, &old).is_empty());
    }

    #[test]
    fn a_constant_may_become_a_range_that_holds_it_but_not_one_that_excludes_it() {
        let old = json!({"const": 1});
        assert!(breaks(&old, &json!({"type": "integer", "minimum": 1, "maximum": 1})).is_empty());
        assert_eq!(
            breaks(&old, &json!({"type": "integer", "minimum": 2})),
            vec!["$: value 1 no longer within the bounds"]
        );
    }

    #[test]
    fn a_recursive_schema_terminates() {
        let tree = json!({"$ref": "#/$defs/T", "$defs": {"T": {"type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/T"}}}}}});
        assert!(breaks(&tree, &tree).is_empty());
    }
}
