//! Strict reading of the JSON a browser hands over: one JSON value in
//! which no object has a member twice (a duplicate could make two readers
//! see two different challenges or origins), and RFC 4648 base64url.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::WebAuthnError;

/// Most bytes of JSON read (a `toJSON()` response is a few kilobytes).
pub(crate) const MAX_JSON_BYTES: usize = 64 * 1024;

/// A JSON value read with every object's members unique.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if members.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "member {key:?} appears twice"
                )));
            }
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

/// `bytes` as one strict JSON value (no object with a member twice); the
/// caller bounds the length.
pub(crate) fn strict_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<Strict>(bytes)
        .map(|Strict(value)| value)
        .map_err(|e| e.to_string())
}

/// `bytes` as one strict JSON object.
pub(crate) fn object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    if bytes.len() > MAX_JSON_BYTES {
        return Err(format!("over {MAX_JSON_BYTES} bytes"));
    }
    match strict_json(bytes)? {
        Value::Object(members) => Ok(members),
        _ => Err("not a JSON object".to_owned()),
    }
}

/// The string member `name` of `object`, or `Malformed` naming `what`.
pub(crate) fn string<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    what: &'static str,
) -> Result<&'a str, WebAuthnError> {
    object
        .get(name)
        .and_then(Value::as_str)
        .ok_or(WebAuthnError::Malformed { what })
}

/// The base64url member `name` of `object`, decoded.
pub(crate) fn base64url_member(
    object: &Map<String, Value>,
    name: &str,
    what: &'static str,
) -> Result<Vec<u8>, WebAuthnError> {
    base64url(string(object, name, what)?, what)
}

/// RFC 4648 §5 base64url without padding, strictly (no padding, no
/// whitespace, no non-zero bits after the last byte).
pub(crate) fn base64url(text: &str, what: &'static str) -> Result<Vec<u8>, WebAuthnError> {
    Base64UrlUnpadded::decode_vec(text).map_err(|_| WebAuthnError::Base64 { what })
}

/// `bytes` in base64url without padding.
#[must_use]
pub fn to_base64url(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}
