//! Strict reading of the JSON a browser hands over: one JSON value in
//! which no object has a member twice (a duplicate could make two readers
//! see two different challenges or origins), and RFC 4648 base64url.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};

use super::WebAuthnError;

/// Most bytes of JSON read (a `toJSON()` response is a few kilobytes).
pub(crate) const MAX_JSON_BYTES: usize = 64 * 1024;

/// `bytes` as one strict JSON value (no object with a member twice); the
/// caller bounds the length.
pub(crate) fn strict_json(bytes: &[u8]) -> Result<Value, String> {
    custody_core::json::parse_strict(bytes).map_err(|e| e.to_string())
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
