//! Strict JSON for request bodies: the same values `serde_json` builds, but refusing
//! duplicate keys (two parsers could disagree on which one counts, which is how smuggled
//! parameters get past filters), nesting deeper than `MAX_DEPTH` and strings longer than
//! `MAX_STRING`, while parsing, before anything large is built.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::Cell;
use std::fmt;

/// Deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 32;
/// Longest single string accepted, in bytes.
pub const MAX_STRING: usize = 1024 * 1024;

/// Why a body is not acceptable JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonProblem {
    Syntax,
    DuplicateKey(String),
    TooDeep,
    StringTooLong,
}

/// Parses `bytes` strictly.
pub fn parse(bytes: &[u8]) -> Result<Value, JsonProblem> {
    // Why a value was refused travels beside serde's error, not inside its message text.
    let problem = Cell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Seed {
        depth: 0,
        problem: &problem,
    }
    .deserialize(&mut deserializer)
    .map_err(|_| problem.take().unwrap_or(JsonProblem::Syntax))?;
    deserializer.end().map_err(|_| JsonProblem::Syntax)?;
    Ok(value)
}

#[derive(Clone, Copy)]
struct Seed<'p> {
    depth: usize,
    problem: &'p Cell<Option<JsonProblem>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Seed<'_> {
    /// Records why the body is refused and stops the parse.
    fn refuse<E: de::Error>(self, problem: JsonProblem) -> E {
        self.problem.set(Some(problem));
        E::custom("refused")
    }

    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(self.refuse(JsonProblem::TooDeep));
        }
        Ok(Seed {
            depth: self.depth + 1,
            ..self
        })
    }

    fn string<E: de::Error>(self, s: &str) -> Result<Value, E> {
        if s.len() > MAX_STRING {
            return Err(self.refuse(JsonProblem::StringTooLong));
        }
        Ok(Value::String(s.to_owned()))
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.string(v)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.string(&v)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.len() > MAX_STRING {
                return Err(self.refuse(JsonProblem::StringTooLong));
            }
            let value = map.next_value_seed(inner)?;
            if out.contains_key(&key) {
                return Err(self.refuse(JsonProblem::DuplicateKey(key)));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_what_serde_json_builds() {
        let text = br#"{"a":[1,2.5,-3,"x",null,true,{"b":{}}],"c":"\u00e9"}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn refuses_duplicates_depth_and_giant_strings() {
        assert_eq!(
            parse(br#"{"model":"a","model":"b"}"#),
            Err(JsonProblem::DuplicateKey("model".into()))
        );
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(parse(deep.as_bytes()), Err(JsonProblem::TooDeep));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(ok.as_bytes()).is_ok());
        let long = format!("\"{}\"", "a".repeat(MAX_STRING + 1));
        assert_eq!(parse(long.as_bytes()), Err(JsonProblem::StringTooLong));
        assert_eq!(parse(b"{} trailing"), Err(JsonProblem::Syntax));
    }
}
