//! Reading and writing the JSON shapes Ethereum tools exchange: quantities,
//! byte strings, addresses, and a strict parser that rejects duplicate keys.
//!
//! Every reader takes the name of the field it reads (a `&'static str` from
//! the fixed set of names the formats define) and returns an [`Error`] that
//! names it; nothing from the input itself is copied into an error.
use serde::Deserialize;
use serde_json::{Map, Value, error::Category};

use crate::{Address, Error, U256};

/// The largest integer a JSON number may carry here: 2^53 - 1, the last one
/// every JSON implementation (JavaScript's included) reads exactly. Larger
/// values must be written as strings, so that no tool on the way rounded them.
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Parses JSON text, rejecting duplicate object keys at every level (where
/// two readers could see different values: `serde_json::Value` keeps the
/// last, other parsers the first). Nesting is limited to 128 levels by
/// `serde_json`.
pub(crate) fn parse_str(s: &str) -> Result<Value, Error> {
    let mut de = serde_json::Deserializer::from_str(s);
    let value = StrictValue::deserialize(&mut de).map_err(|e| syntax_error(&e))?;
    de.end().map_err(|e| syntax_error(&e))?;
    Ok(value.0)
}

fn syntax_error(e: &serde_json::Error) -> Error {
    let (line, column) = (e.line(), e.column());
    match e.classify() {
        // The only data error `StrictValue` raises is a duplicate key.
        Category::Data => Error::DuplicateKey { line, column },
        Category::Io | Category::Syntax | Category::Eof => Error::JsonSyntax { line, column },
    }
}

/// A `serde_json::Value` whose objects have no duplicate keys (the one
/// strict reader every crate of the workspace uses).
pub(crate) use custody_core::json::StrictValue;

/// Maps a text-number error of [`U256::parse`] onto `field`.
fn number_error(e: Error, field: &'static str) -> Error {
    match e {
        Error::InvalidNumber(reason) => Error::Json { field, reason },
        _ => Error::Overflow(field),
    }
}

/// A JSON number that is a non-negative safe integer.
fn safe_u64(n: &serde_json::Number, field: &'static str) -> Result<u64, Error> {
    n.as_u64()
        .filter(|&v| v <= MAX_SAFE_INTEGER)
        .ok_or(Error::Json {
            field,
            reason: "a JSON number must be a non-negative integer of at most 2^53 - 1 (write larger values as strings)",
        })
}

/// A quantity: a `0x`-hex or decimal string, or a JSON number that is a
/// safe integer.
pub(crate) fn u256(v: &Value, field: &'static str) -> Result<U256, Error> {
    match v {
        Value::String(s) => U256::parse(s).map_err(|e| number_error(e, field)),
        Value::Number(n) => safe_u64(n, field).map(U256::from_u64),
        _ => Err(Error::Json {
            field,
            reason: "expected a quantity (a 0x-hex or decimal string, or a number)",
        }),
    }
}

/// A quantity that must fit 64 bits.
pub(crate) fn u64(v: &Value, field: &'static str) -> Result<u64, Error> {
    u256(v, field)?.to_u64().ok_or(Error::Overflow(field))
}

/// A quantity that must fit 8 bits.
pub(crate) fn u8(v: &Value, field: &'static str) -> Result<u8, Error> {
    u64(v, field)?
        .try_into()
        .map_err(|_| Error::Overflow(field))
}

/// A signed integer: a JSON number that is a safe integer, or a string
/// holding an optional `-` and then a `0x`-hex or decimal magnitude.
/// Returns the sign (`true` for negative) and the magnitude.
pub(crate) fn signed(v: &Value, field: &'static str) -> Result<(bool, U256), Error> {
    match v {
        Value::String(s) => {
            let (negative, magnitude) = match s.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, s.as_str()),
            };
            let m = U256::parse(magnitude).map_err(|e| number_error(e, field))?;
            Ok((negative && !m.is_zero(), m))
        }
        Value::Number(n) => {
            if let Some(i) = n.as_i64()
                && i < 0
            {
                let m = i.unsigned_abs();
                if m > MAX_SAFE_INTEGER {
                    return Err(Error::Json {
                        field,
                        reason: "a JSON number must be an integer of magnitude at most 2^53 - 1 (write larger values as strings)",
                    });
                }
                return Ok((true, U256::from_u64(m)));
            }
            safe_u64(n, field).map(|m| (false, U256::from_u64(m)))
        }
        _ => Err(Error::Json {
            field,
            reason: "expected an integer (a number, or a decimal or 0x-hex string)",
        }),
    }
}

/// A byte string written as `0x` followed by an even number of hex digits.
pub(crate) fn bytes(v: &Value, field: &'static str) -> Result<Vec<u8>, Error> {
    let Value::String(s) = v else {
        return Err(Error::Json {
            field,
            reason: "expected a 0x-prefixed hex string",
        });
    };
    let digits = s.strip_prefix("0x").ok_or(Error::Json {
        field,
        reason: "missing 0x prefix",
    })?;
    if digits.len() % 2 != 0 {
        return Err(Error::Json {
            field,
            reason: "odd number of hex digits",
        });
    }
    hex::decode(digits).map_err(|_| Error::Json {
        field,
        reason: "not a hex digit",
    })
}

/// A byte string of exactly `N` bytes.
pub(crate) fn fixed<const N: usize>(v: &Value, field: &'static str) -> Result<[u8; N], Error> {
    let b = bytes(v, field)?;
    <[u8; N]>::try_from(b.as_slice()).map_err(|_| Error::InvalidLength {
        field,
        expected: N,
        found: b.len(),
    })
}

/// An address: `0x` and 40 hex digits; a mixed-case address must carry a
/// valid EIP-55 checksum.
pub(crate) fn address(v: &Value, field: &'static str) -> Result<Address, Error> {
    let Value::String(s) = v else {
        return Err(Error::Json {
            field,
            reason: "expected an address string",
        });
    };
    Address::parse(s).map_err(|e| match e {
        Error::InvalidAddress(reason) => Error::Json { field, reason },
        _ => Error::Json {
            field,
            reason: "mixed-case address with a wrong EIP-55 checksum",
        },
    })
}

/// An array.
pub(crate) fn array<'a>(v: &'a Value, field: &'static str) -> Result<&'a [Value], Error> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(Error::Json {
            field,
            reason: "expected an array",
        }),
    }
}

/// An object.
pub(crate) fn object<'a>(
    v: &'a Value,
    field: &'static str,
) -> Result<&'a Map<String, Value>, Error> {
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(Error::Json {
            field,
            reason: "expected an object",
        }),
    }
}

/// A quantity as JSON-RPC writes it: minimal lower-case hex, `0x0` for zero.
pub(crate) fn quantity(v: &U256) -> Value {
    Value::String(format!("{v:#x}"))
}

/// A `u64` quantity.
pub(crate) fn quantity_u64(v: u64) -> Value {
    Value::String(format!("{v:#x}"))
}

/// A `u128` quantity.
pub(crate) fn quantity_u128(v: u128) -> Value {
    Value::String(format!("{v:#x}"))
}

/// A byte string: `0x` and lower-case hex.
pub(crate) fn hex_bytes(b: &[u8]) -> Value {
    Value::String(format!("0x{}", hex::encode(b)))
}

/// An address, EIP-55 checksummed.
pub(crate) fn address_value(a: &Address) -> Value {
    Value::String(a.to_checksum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_rejected_at_any_depth() {
        assert!(parse_str(r#"{"a":1,"b":{"c":2,"d":[{"e":3}]}}"#).is_ok());
        assert!(matches!(
            parse_str(r#"{"a":1,"a":1}"#),
            Err(Error::DuplicateKey { line: 1, .. })
        ));
        assert!(matches!(
            parse_str("{\"a\":[{\"x\":1,\n\"x\":2}]}"),
            Err(Error::DuplicateKey { line: 2, .. })
        ));
        assert!(matches!(
            parse_str(r#"{"a":1} x"#),
            Err(Error::JsonSyntax { .. })
        ));
        assert!(matches!(parse_str(""), Err(Error::JsonSyntax { .. })));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(matches!(parse_str(&deep), Err(Error::JsonSyntax { .. })));
    }

    #[test]
    fn quantities_accept_hex_decimal_and_safe_numbers_only() {
        let q = |v: Value| u256(&v, "value");
        assert_eq!(q(Value::from("0x10")).unwrap(), U256::from_u64(16));
        assert_eq!(q(Value::from("16")).unwrap(), U256::from_u64(16));
        assert_eq!(q(Value::from(16)).unwrap(), U256::from_u64(16));
        assert_eq!(
            q(Value::from(MAX_SAFE_INTEGER)).unwrap(),
            U256::from_u64(MAX_SAFE_INTEGER)
        );
        for bad in [
            Value::from(MAX_SAFE_INTEGER + 1),
            Value::from(-1),
            Value::from(1.5),
            Value::Bool(true),
            Value::from("0x"),
            Value::from(""),
            Value::from("-1"),
            Value::from("0xzz"),
        ] {
            assert!(matches!(q(bad), Err(Error::Json { field: "value", .. })));
        }
        assert!(matches!(
            q(Value::from(format!("0x1{}", "0".repeat(64)))),
            Err(Error::Overflow("value"))
        ));
        assert!(matches!(
            u64(&Value::from("0x10000000000000000"), "nonce"),
            Err(Error::Overflow("nonce"))
        ));
    }

    #[test]
    fn signed_integers() {
        let s = |v: Value| signed(&v, "x");
        assert_eq!(s(Value::from(-5)).unwrap(), (true, U256::from_u64(5)));
        assert_eq!(s(Value::from("-0x10")).unwrap(), (true, U256::from_u64(16)));
        assert_eq!(s(Value::from("-0")).unwrap(), (false, U256::ZERO));
        assert_eq!(s(Value::from("7")).unwrap(), (false, U256::from_u64(7)));
        assert!(s(Value::from("--1")).is_err());
        assert!(s(Value::from("-")).is_err());
        assert!(s(Value::from("+1")).is_err());
        assert!(s(Value::from(-(1i64 << 53))).is_err());
    }

    #[test]
    fn byte_strings() {
        assert_eq!(bytes(&Value::from("0x"), "data").unwrap(), Vec::<u8>::new());
        assert_eq!(bytes(&Value::from("0xABcd"), "data").unwrap(), [0xab, 0xcd]);
        for (bad, reason) in [
            ("abcd", "missing 0x prefix"),
            ("0xabc", "odd number of hex digits"),
            ("0xzz", "not a hex digit"),
        ] {
            assert!(
                matches!(bytes(&Value::from(bad), "data"), Err(Error::Json { field: "data", reason: r }) if r == reason)
            );
        }
        assert!(matches!(
            fixed::<32>(&Value::from("0x00"), "salt"),
            Err(Error::InvalidLength {
                field: "salt",
                expected: 32,
                found: 1
            })
        ));
    }
}
