//! Strict JSON: one value in which no object has a member twice.
//!
//! `serde_json::Value` keeps the *last* of two equal members and other
//! parsers keep the first, so a document with a duplicate can mean two
//! different things to two readers on the way (a challenge, an origin, a
//! JWS `alg`, a transaction's `to`). Every decoder of untrusted JSON in the
//! workspace reads through [`StrictValue`], so that such a document is
//! refused once, here, the same way everywhere. Nesting is limited to 128
//! levels by `serde_json`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A `serde_json::Value` whose objects have no duplicate members. A
/// duplicate is a data error (`serde_json::error::Category::Data`) whose
/// message names the member: `member "to" appears twice`.
#[derive(Debug, Clone, PartialEq)]
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

/// Parses `bytes` as one strict JSON value (nothing but whitespace after
/// it). The caller bounds the length.
///
/// # Errors
/// The `serde_json` error: syntax, end of input, or (as a data error) a
/// member that appears twice.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<StrictValue>(bytes).map(|StrictValue(v)| v)
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("member {key:?} appears twice")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::error::Category;

    #[test]
    fn duplicate_members_are_refused_at_any_depth_and_named() {
        for (text, member) in [
            (r#"{"a":1,"a":2}"#, "a"),
            (r#"{"x":{"b":1,"c":[{"d":0,"d":0}]}}"#, "d"),
            (r#"[{"alg":"ES256","alg":"none"}]"#, "alg"),
        ] {
            let e = parse_strict(text.as_bytes()).unwrap_err();
            assert_eq!(e.classify(), Category::Data, "{text}");
            assert!(
                e.to_string()
                    .contains(&format!("member \"{member}\" appears twice")),
                "{e}"
            );
        }
        // The same members at different objects are fine, and the value
        // is what serde_json reads.
        let text = r#"{"a":{"a":1},"b":[{"a":2},{"a":3}],"n":1.5,"z":null}"#;
        assert_eq!(
            parse_strict(text.as_bytes()).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(
            parse_strict(b"{} x").unwrap_err().classify(),
            Category::Syntax
        );
    }
}
