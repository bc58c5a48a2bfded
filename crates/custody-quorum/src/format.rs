//! What the JSON formats share (`SPEC.md`): the size limit, the version,
//! fixed-length lower-case hex fields, and strict reading.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serializer};
use zeroize::Zeroizing;

use crate::Error;

/// Most bytes of JSON read for one document (a share set of 255 shares is
/// about 17 KiB).
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// The format version every document of this crate carries.
pub(crate) const VERSION_1: u32 = 1;

/// Reads one JSON document of type `T` strictly: at most
/// [`MAX_JSON_BYTES`], nothing after the value, unknown and repeated
/// members refused (`T` is a `deny_unknown_fields` struct, whose derived
/// reader refuses a repeated member), version 1.
pub(crate) fn from_json<'a, T: Deserialize<'a> + Versioned>(
    json: &'a str,
    what: &'static str,
) -> Result<T, Error> {
    if json.len() > MAX_JSON_BYTES {
        return Err(Error::Malformed(what));
    }
    let value: T = serde_json::from_str(json).map_err(|_| Error::Malformed(what))?;
    if value.version() != VERSION_1 {
        return Err(Error::Malformed(what));
    }
    Ok(value)
}

/// A document with a `version` member.
pub(crate) trait Versioned {
    fn version(&self) -> u32;
}

/// Decodes exactly `N` bytes of lower-case hex (no prefix, no upper case:
/// one spelling per value).
pub(crate) fn decode_hex<const N: usize>(text: &str, out: &mut [u8; N]) -> bool {
    text.len() == 2 * N
        && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && hex::decode_to_slice(text, out).is_ok()
}

/// `serde(with)` for `[u8; N]` as lower-case hex of exactly `2N` digits.
pub(crate) mod hex_array {
    use super::{Deserializer, Serializer, Visitor, de, fmt};

    pub(crate) fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<[u8; N], D::Error> {
        struct HexVisitor<const N: usize>;
        impl<const N: usize> Visitor<'_> for HexVisitor<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} lower-case hex digits", 2 * N)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<[u8; N], E> {
                let mut out = [0u8; N];
                if super::decode_hex(v, &mut out) {
                    Ok(out)
                } else {
                    Err(E::invalid_value(de::Unexpected::Other("hex"), &self))
                }
            }
        }
        deserializer.deserialize_str(HexVisitor::<N>)
    }
}

/// 32 secret bytes read from hex straight into zeroizing memory: the
/// visitor decodes the borrowed string (no owned copy of the hex is made
/// when the JSON string has no escapes; with escapes, serde_json's scratch
/// buffer holds it, which the caller's input already did).
pub(crate) struct SecretHex32(pub(crate) Zeroizing<[u8; 32]>);

impl<'de> Deserialize<'de> for SecretHex32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl Visitor<'_> for SecretVisitor {
            type Value = SecretHex32;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 lower-case hex digits")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SecretHex32, E> {
                let mut out = Zeroizing::new([0u8; 32]);
                if decode_hex(v, &mut out) {
                    Ok(SecretHex32(out))
                } else {
                    Err(E::invalid_value(de::Unexpected::Other("hex"), &self))
                }
            }
        }
        deserializer.deserialize_str(SecretVisitor)
    }
}

impl fmt::Debug for SecretHex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHex32(<redacted>)")
    }
}
