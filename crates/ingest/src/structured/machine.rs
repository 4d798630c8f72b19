//! A byte-level pushdown automaton accepting exactly the JSON texts of a [`Shape`].

use std::sync::Arc;

use super::schema::{MAX_DEPTH, Shape};

/// Whitespace bytes allowed in a row between tokens of the JSON text (indentation, not padding
/// without end).
const MAX_WHITESPACE_RUN: u8 = 12;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Obj {
    /// After `{`: a key or (when nothing required remains) `}`.
    Open,
    InKey,
    /// After the key of property `usize`: `:`.
    Colon(usize),
    InValue(usize),
    /// After a value: `,` or `}`.
    After,
    /// After `,`: a key.
    Comma,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Arr {
    Open,
    InValue,
    After,
    /// After `,`: a value.
    Comma,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

impl Num {
    fn is_final(self) -> bool {
        matches!(self, Num::Zero | Num::Int | Num::Frac | Num::Exp)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Esc {
    None,
    Backslash,
    Hex(u8),
}

/// UTF-8 continuation bytes a string still expects: how many, and the range of the next one.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Utf8 {
    left: u8,
    lo: u8,
    hi: u8,
}

impl Utf8 {
    const NONE: Utf8 = Utf8 { left: 0, lo: 0x80, hi: 0xBF };

    /// After lead byte `b`: what follows (None: not a lead byte of valid UTF-8).
    fn after_lead(b: u8) -> Option<Utf8> {
        let (left, lo, hi) = match b {
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => return None,
        };
        Some(Utf8 { left, lo, hi })
    }
}

#[derive(Debug, Clone)]
enum Frame {
    /// A value of this shape is expected next.
    Value(Arc<Shape>, usize),
    /// A schema object (its shape, the properties given so far as bits, where it stands).
    Object {
        shape: Arc<Shape>,
        seen: u64,
        at: Obj,
        depth: usize,
    },
    /// Any object (keys are free strings, values any JSON).
    AnyObject {
        at: Obj,
        depth: usize,
    },
    Array {
        /// The array's shape (its items' shapes by position).
        shape: Arc<Shape>,
        min: usize,
        max: Option<usize>,
        count: usize,
        at: Arr,
        depth: usize,
    },
    Str {
        len: usize,
        min: usize,
        max: Option<usize>,
        esc: Esc,
        utf8: Utf8,
    },
    /// A number; `digits` in its current part (integer, fraction or exponent), bounded so every
    /// number fits a double: 15, 15 and 2.
    Number {
        integer: bool,
        at: Num,
        digits: u8,
    },
    /// One of these texts, matched so far up to `matched` bytes by the options in `alive`.
    Choice {
        options: Arc<Vec<String>>,
        alive: Vec<u16>,
        matched: usize,
    },
}

/// Where a JSON text of a shape stands; [`Machine::feed`] takes one byte or refuses it.
#[derive(Debug, Clone)]
pub struct Machine {
    stack: Vec<Frame>,
    whitespace: u8,
    done: bool,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\t' | b'\r')
}

fn props(shape: &Shape) -> &[(String, Arc<Shape>, bool)] {
    match shape {
        Shape::Object(p) => p,
        _ => &[],
    }
}

/// Indices of the properties that may come next: those not given yet, in any order.
fn candidates(shape: &Shape, seen: u64) -> Vec<usize> {
    (0..props(shape).len()).filter(|i| seen & (1 << i) == 0).collect()
}

fn required_left(shape: &Shape, seen: u64) -> bool {
    props(shape).iter().enumerate().any(|(i, (_, _, r))| *r && seen & (1 << i) == 0)
}

fn key_text(name: &str) -> String {
    serde_json::Value::String(name.to_string()).to_string()
}

fn choice(options: Vec<String>) -> Frame {
    let alive = (0..options.len() as u16).collect();
    Frame::Choice { options: Arc::new(options), alive, matched: 0 }
}

impl Machine {
    /// A machine expecting one value of `shape`.
    pub fn new(shape: Arc<Shape>) -> Self {
        Self { stack: vec![Frame::Value(shape, 0)], whitespace: 0, done: false }
    }

    /// Whether the text so far is a whole value (a number or literal that could still grow
    /// counts: nothing more is needed).
    pub fn is_complete(&self) -> bool {
        match self.stack.as_slice() {
            [] => true,
            [Frame::Number { at, .. }] => at.is_final(),
            [Frame::Choice { options, alive, matched }] => {
                alive.iter().any(|o| options[*o as usize].len() == *matched)
            }
            _ => false,
        }
    }

    /// Whether `bytes` may come next (the machine is unchanged).
    pub fn accepts(&self, bytes: &[u8]) -> bool {
        let mut m = self.clone();
        bytes.iter().all(|b| m.feed(*b))
    }

    /// Take `bytes`; `false` (and the machine in an unspecified state) if any is refused.
    pub fn feed_all(&mut self, bytes: &[u8]) -> bool {
        bytes.iter().all(|b| self.feed(*b))
    }

    /// Take one byte, or refuse it.
    pub fn feed(&mut self, b: u8) -> bool {
        if self.done {
            return false;
        }
        let Some(top) = self.stack.last_mut() else { return false };
        let structural = matches!(
            top,
            Frame::Value(..) | Frame::Object { .. } | Frame::AnyObject { .. } | Frame::Array { .. }
        );
        if structural && is_ws(b) {
            self.whitespace += 1;
            return self.whitespace <= MAX_WHITESPACE_RUN;
        }
        self.whitespace = 0;
        match top {
            Frame::Value(shape, depth) => {
                let (shape, depth) = (shape.clone(), *depth);
                self.stack.pop();
                self.start(&shape, depth, b)
            }
            Frame::Str { utf8, .. } if utf8.left > 0 => {
                if !(utf8.lo..=utf8.hi).contains(&b) {
                    return false;
                }
                *utf8 = Utf8 { left: utf8.left - 1, ..Utf8::NONE };
                true
            }
            Frame::Str { len, min, max, esc, utf8 } => match *esc {
                Esc::Backslash => {
                    *esc = match b {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Esc::None,
                        b'u' => Esc::Hex(4),
                        _ => return false,
                    };
                    true
                }
                Esc::Hex(n) => {
                    if !b.is_ascii_hexdigit() {
                        return false;
                    }
                    *esc = if n == 1 { Esc::None } else { Esc::Hex(n - 1) };
                    true
                }
                Esc::None => match b {
                    b'"' if *len >= *min => {
                        self.stack.pop();
                        self.child_done(None);
                        true
                    }
                    b'"' => false,
                    0..=0x1F | 0x80..=0xC1 | 0xF5..=0xFF => false,
                    _ if max.is_some_and(|m| *len >= m) => false,
                    0xC2..=0xF4 => {
                        let Some(next) = Utf8::after_lead(b) else { return false };
                        *utf8 = next;
                        *len += 1;
                        true
                    }
                    b'\\' => {
                        *len += 1;
                        *esc = Esc::Backslash;
                        true
                    }
                    _ => {
                        *len += 1;
                        true
                    }
                },
            },
            Frame::Number { integer, at, digits } => {
                let limit = match at {
                    Num::E | Num::ESign | Num::Exp => 2,
                    _ => 15,
                };
                if b.is_ascii_digit() && matches!(at, Num::Int | Num::Frac | Num::Exp) && *digits >= limit {
                    return false;
                }
                let next = match (*at, b) {
                    (Num::Minus, b'0') => Some(Num::Zero),
                    (Num::Minus, b'1'..=b'9') => Some(Num::Int),
                    (Num::Int, b'0'..=b'9') => Some(Num::Int),
                    (Num::Zero | Num::Int, b'.') if !*integer => Some(Num::Dot),
                    (Num::Dot | Num::Frac, b'0'..=b'9') => Some(Num::Frac),
                    (Num::Zero | Num::Int | Num::Frac, b'e' | b'E') if !*integer => Some(Num::E),
                    (Num::E, b'+' | b'-') => Some(Num::ESign),
                    (Num::E | Num::ESign | Num::Exp, b'0'..=b'9') => Some(Num::Exp),
                    _ => None,
                };
                match next {
                    Some(n) => {
                        *digits = if b.is_ascii_digit() && n == *at {
                            *digits + 1
                        } else {
                            u8::from(b.is_ascii_digit())
                        };
                        *at = n;
                        true
                    }
                    None if at.is_final() => {
                        self.stack.pop();
                        self.child_done(None);
                        self.feed(b)
                    }
                    None => false,
                }
            }
            Frame::Choice { options, alive, matched } => {
                let m = *matched;
                let extended: Vec<u16> = alive
                    .iter()
                    .copied()
                    .filter(|o| options[*o as usize].as_bytes().get(m) == Some(&b))
                    .collect();
                if extended.is_empty() {
                    // A complete option that another could have extended ends here.
                    let Some(exact) = alive.iter().copied().find(|o| options[*o as usize].len() == m) else {
                        return false;
                    };
                    self.stack.pop();
                    self.child_done(Some(exact as usize));
                    return self.feed(b);
                }
                *matched = m + 1;
                *alive = extended;
                // Complete and nothing can extend it: end now.
                if alive.iter().all(|o| options[*o as usize].len() == m + 1) {
                    let exact = alive[0] as usize;
                    self.stack.pop();
                    self.child_done(Some(exact));
                }
                true
            }
            Frame::Object { shape, seen, at, depth } => {
                let (shape, next_i, depth) = (shape.clone(), *seen, *depth);
                match (*at, b) {
                    (Obj::Open, b'}') | (Obj::After, b'}') if !required_left(&shape, next_i) => {
                        self.stack.pop();
                        self.child_done(None);
                        true
                    }
                    (Obj::Open | Obj::Comma, b'"') => {
                        let keys = candidates(&shape, next_i);
                        if keys.is_empty() {
                            return false;
                        }
                        *at = Obj::InKey;
                        let options = keys.iter().map(|i| key_text(&props(&shape)[*i].0)).collect();
                        self.stack.push(choice(options));
                        self.feed(b)
                    }
                    (Obj::Colon(i), b':') => {
                        *at = Obj::InValue(i);
                        self.stack.push(Frame::Value(props(&shape)[i].1.clone(), depth + 1));
                        true
                    }
                    (Obj::After, b',') if !candidates(&shape, next_i).is_empty() => {
                        *at = Obj::Comma;
                        true
                    }
                    _ => false,
                }
            }
            Frame::AnyObject { at, depth } => {
                let depth = *depth;
                match (*at, b) {
                    (Obj::Open | Obj::After, b'}') => {
                        self.stack.pop();
                        self.child_done(None);
                        true
                    }
                    (Obj::Open | Obj::Comma, b'"') => {
                        *at = Obj::InKey;
                        self.stack.push(Frame::Str {
                            len: 0,
                            min: 0,
                            max: None,
                            esc: Esc::None,
                            utf8: Utf8::NONE,
                        });
                        true
                    }
                    (Obj::Colon(_), b':') => {
                        *at = Obj::InValue(0);
                        self.stack.push(Frame::Value(Arc::new(Shape::Any), depth + 1));
                        true
                    }
                    (Obj::After, b',') => {
                        *at = Obj::Comma;
                        true
                    }
                    _ => false,
                }
            }
            Frame::Array { shape, min, max, count, at, depth } => {
                let (items, depth) = (shape.item(*count).clone(), *depth);
                match (*at, b) {
                    (Arr::Open | Arr::After, b']') if *count >= *min => {
                        self.stack.pop();
                        self.child_done(None);
                        true
                    }
                    (Arr::After, b',') if max.is_none_or(|m| *count < m) => {
                        *at = Arr::Comma;
                        true
                    }
                    (Arr::Open, _) if max.is_none_or(|m| *count < m) => {
                        *at = Arr::InValue;
                        self.stack.push(Frame::Value(items, depth + 1));
                        self.feed(b)
                    }
                    (Arr::Comma, _) => {
                        *at = Arr::InValue;
                        self.stack.push(Frame::Value(items, depth + 1));
                        self.feed(b)
                    }
                    _ => false,
                }
            }
        }
    }

    /// Start a value of `shape` with byte `b` (the `Value` frame is already popped).
    fn start(&mut self, shape: &Arc<Shape>, depth: usize, b: u8) -> bool {
        let nested_ok = depth < MAX_DEPTH;
        let literal = |options: &[&str]| choice(options.iter().map(|s| s.to_string()).collect());
        let frame = match (&**shape, b) {
            (Shape::Nullable(_), b'n') => literal(&["null"]),
            (Shape::Nullable(inner), _) => return self.start(inner, depth, b),
            (Shape::Any, b'{') | (Shape::AnyObject, b'{') if nested_ok => {
                self.stack.push(Frame::AnyObject { at: Obj::Open, depth });
                return true;
            }
            (Shape::Any, b'[') if nested_ok => {
                let shape = Arc::new(Shape::Array {
                    prefix: Arc::new([]),
                    items: Arc::new(Shape::Any),
                    min: 0,
                    max: None,
                });
                self.stack.push(Frame::Array { shape, min: 0, max: None, count: 0, at: Arr::Open, depth });
                return true;
            }
            (Shape::Any, b'"') | (Shape::String { .. }, b'"') => {
                let (min, max) = match &**shape {
                    Shape::String { min, max } => (*min, *max),
                    _ => (0, None),
                };
                self.stack.push(Frame::Str { len: 0, min, max, esc: Esc::None, utf8: Utf8::NONE });
                return true;
            }
            (Shape::Any | Shape::Number | Shape::Integer, b'-' | b'0'..=b'9') => {
                let integer = matches!(&**shape, Shape::Integer);
                let at = match b {
                    b'-' => Num::Minus,
                    b'0' => Num::Zero,
                    _ => Num::Int,
                };
                self.stack.push(Frame::Number { integer, at, digits: u8::from(b != b'-') });
                return true;
            }
            (Shape::Any, b't' | b'f' | b'n') => literal(&["true", "false", "null"]),
            (Shape::Boolean, _) => literal(&["true", "false"]),
            (Shape::Null, _) => literal(&["null"]),
            (Shape::OneOf(options), _) => choice(options.clone()),
            (Shape::Object(_), b'{') if nested_ok => {
                self.stack.push(Frame::Object { shape: shape.clone(), seen: 0, at: Obj::Open, depth });
                return true;
            }
            (Shape::Array { min, max, .. }, b'[') if nested_ok => {
                let (min, max) = (*min, *max);
                self.stack.push(Frame::Array {
                    shape: shape.clone(),
                    min,
                    max,
                    count: 0,
                    at: Arr::Open,
                    depth,
                });
                return true;
            }
            _ => return false,
        };
        self.stack.push(frame);
        self.feed(b)
    }

    /// The frame on top of the stack finished a child (a key Choice reports its option).
    fn child_done(&mut self, option: Option<usize>) {
        match self.stack.last_mut() {
            None => self.done = true,
            Some(Frame::Object { shape, seen, at, .. }) => match *at {
                Obj::InKey => {
                    let keys = candidates(shape, *seen);
                    let i = keys.get(option.unwrap_or(0)).copied().unwrap_or(0);
                    *at = Obj::Colon(i);
                }
                Obj::InValue(i) => {
                    *seen |= 1 << i;
                    *at = Obj::After;
                }
                _ => {}
            },
            Some(Frame::AnyObject { at, .. }) => {
                *at = match *at {
                    Obj::InKey => Obj::Colon(0),
                    _ => Obj::After,
                }
            }
            Some(Frame::Array { count, at, .. }) => {
                *count += 1;
                *at = Arr::After;
            }
            Some(_) => {}
        }
    }

    /// The shortest bytes that make the text a whole value from here (empty when it is one).
    pub fn completion(&self) -> Vec<u8> {
        let mut m = self.clone();
        let mut out = Vec::new();
        // Each round feeds the closing bytes of the top frame; every frame closes in a bounded
        // number of rounds, so this ends (the guard is for a bug, not for input).
        for _ in 0..10_000 {
            if m.done || m.stack.is_empty() {
                break;
            }
            if m.is_complete() {
                // A number or literal at the top level that could still grow: nothing more.
                break;
            }
            let Some(bytes) = m.closing() else { break };
            for b in bytes {
                if !m.feed(b) {
                    return out;
                }
                out.push(b);
            }
        }
        out
    }

    /// Bytes that move the top frame towards its end.
    fn closing(&mut self) -> Option<Vec<u8>> {
        let top = self.stack.last()?;
        Some(match top {
            Frame::Value(shape, _) => shape.minimal().into_bytes(),
            Frame::Str { utf8, .. } if utf8.left > 0 => {
                let mut v = vec![utf8.lo];
                v.extend(std::iter::repeat_n(0x80, utf8.left as usize - 1));
                v
            }
            Frame::Str { len, min, esc, .. } => match esc {
                Esc::Backslash => b"n".to_vec(),
                Esc::Hex(n) => vec![b'0'; *n as usize],
                Esc::None => {
                    let mut v = vec![b'x'; min.saturating_sub(*len)];
                    v.push(b'"');
                    v
                }
            },
            Frame::Number { at, .. } if !at.is_final() => b"0".to_vec(),
            Frame::Number { .. } => {
                // Final: end it so the parent can close.
                self.stack.pop();
                self.child_done(None);
                vec![]
            }
            Frame::Choice { options, alive, matched } => {
                let best = alive.iter().map(|o| &options[*o as usize]).min_by_key(|o| o.len())?;
                if best.len() == *matched {
                    let exact = alive.iter().copied().find(|o| options[*o as usize].len() == *matched)?;
                    self.stack.pop();
                    self.child_done(Some(exact as usize));
                    vec![]
                } else {
                    best.as_bytes()[*matched..].to_vec()
                }
            }
            Frame::Object { shape, seen, at, .. } => match at {
                Obj::Open | Obj::After if !required_left(shape, *seen) => b"}".to_vec(),
                Obj::Open | Obj::Comma => {
                    let p = props(shape);
                    let left = candidates(shape, *seen);
                    let i = left.iter().copied().find(|i| p[*i].2).or(left.first().copied())?;
                    format!("{}:{}", key_text(&p[i].0), p[i].1.minimal()).into_bytes()
                }
                Obj::After => b",".to_vec(),
                Obj::Colon(_) => b":".to_vec(),
                Obj::InKey | Obj::InValue(_) => return None,
            },
            Frame::AnyObject { at, .. } => match at {
                Obj::Open | Obj::After => b"}".to_vec(),
                Obj::Comma => b"\"x\":null".to_vec(),
                Obj::Colon(_) => b":".to_vec(),
                Obj::InKey | Obj::InValue(_) => return None,
            },
            Frame::Array { shape, min, count, at, .. } => match at {
                Arr::Open if count >= min => b"]".to_vec(),
                Arr::After if count >= min => b"]".to_vec(),
                Arr::Open | Arr::Comma => shape.item(*count).minimal().into_bytes(),
                Arr::After => b",".to_vec(),
                Arr::InValue => return None,
            },
        })
    }
}
