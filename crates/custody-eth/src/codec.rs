//! Strict RLP decoding over the `rlp` crate: the few shapes transactions
//! use, each decoded into a typed error rather than accepted loosely.
//! (Encoding is [`crate::rlp_encode`]'s.)
//!
//! The `rlp` crate's headers already reject long-form lengths under 56,
//! lengths with leading zeros, lengths that overflow and items longer than
//! what holds them. What it lets through, and this module adds:
//! - bytes after the top-level item (`Rlp::new` never looks past it);
//! - a list whose payload is not exactly filled by its items (its iterator
//!   stops silently at the first item that does not parse);
//! - a single byte below `0x80` wrapped in a string header (`Rlp::data`
//!   does not check it; only `decode_value` does);
//! - integers with leading zero bytes, or wider than their type;
//! - fixed-size strings of the wrong length.
//!
//! Only `payload_info`, `iter`, `data`, `as_raw`, `is_list` and `is_data`
//! of the crate are used (not `is_int` or `size`, which index unchecked or
//! hide errors). Only known shapes are descended into, so nesting depth is
//! bounded by the transaction format (at most three levels), whatever the
//! input. The ethereum/tests invalid-RLP vectors are walked by a test below.

use rlp::{DecoderError, Rlp};

use crate::{Address, Error, U256};

fn rlp_error(field: &'static str, e: &DecoderError) -> Error {
    let reason = match e {
        DecoderError::RlpIsTooShort | DecoderError::RlpInconsistentLengthAndData => "truncated",
        DecoderError::RlpIsTooBig | DecoderError::RlpInvalidLength => "length out of range",
        DecoderError::RlpExpectedToBeList => "expected a list",
        DecoderError::RlpExpectedToBeData => "expected a byte string",
        DecoderError::RlpIncorrectListLen => "wrong list length",
        DecoderError::RlpDataLenWithZeroPrefix | DecoderError::RlpListLenWithZeroPrefix => {
            "length with leading zeros"
        }
        DecoderError::RlpInvalidIndirection => "non-canonical length",
        DecoderError::Custom(_) => "invalid",
    };
    Error::Rlp { field, reason }
}

/// The items of the one RLP list that makes up all of `raw`.
pub(crate) fn top_list<'a>(raw: &'a [u8], what: &'static str) -> Result<Vec<Rlp<'a>>, Error> {
    if raw.is_empty() {
        return Err(Error::Empty);
    }
    let rlp = Rlp::new(raw);
    let info = rlp.payload_info().map_err(|e| rlp_error(what, &e))?;
    if info.total() != raw.len() {
        // payload_info has checked that the item fits, so it is shorter.
        return Err(Error::TrailingBytes);
    }
    list(&rlp, what)
}

/// The items of a list, which must fill its payload exactly.
pub(crate) fn list<'a>(item: &Rlp<'a>, field: &'static str) -> Result<Vec<Rlp<'a>>, Error> {
    if !item.is_list() {
        return Err(Error::Rlp {
            field,
            reason: "expected a list",
        });
    }
    let info = item.payload_info().map_err(|e| rlp_error(field, &e))?;
    let mut items = Vec::new();
    let mut consumed = 0usize;
    for child in item.iter() {
        consumed = consumed.saturating_add(child.as_raw().len());
        items.push(child);
    }
    if consumed != info.value_len {
        return Err(Error::Rlp {
            field,
            reason: "list items do not fill the list",
        });
    }
    Ok(items)
}

/// The items of a list that must have exactly `N` of them.
pub(crate) fn fields<'a, const N: usize>(
    item: &Rlp<'a>,
    what: &'static str,
) -> Result<[Rlp<'a>; N], Error> {
    let items = list(item, what)?;
    let found = items.len();
    <[Rlp<'a>; N]>::try_from(items).map_err(|_| Error::FieldCount {
        what,
        expected: N,
        found,
    })
}

/// The items of the one list that makes up all of `raw`, exactly `N` of them.
pub(crate) fn top_fields<'a, const N: usize>(
    raw: &'a [u8],
    what: &'static str,
) -> Result<[Rlp<'a>; N], Error> {
    let items = top_list(raw, what)?;
    let found = items.len();
    <[Rlp<'a>; N]>::try_from(items).map_err(|_| Error::FieldCount {
        what,
        expected: N,
        found,
    })
}

/// The payload of a byte string, canonically encoded.
pub(crate) fn bytes<'a>(item: &Rlp<'a>, field: &'static str) -> Result<&'a [u8], Error> {
    if !item.is_data() {
        return Err(Error::Rlp {
            field,
            reason: "expected a byte string",
        });
    }
    let data = item.data().map_err(|e| rlp_error(field, &e))?;
    if let [b] = data
        && *b < 0x80
        && item.as_raw().len() != 1
    {
        return Err(Error::Rlp {
            field,
            reason: "single byte below 0x80 with a string header",
        });
    }
    Ok(data)
}

/// A canonical big-endian integer of at most `max_len` bytes.
fn integer<'a>(item: &Rlp<'a>, field: &'static str, max_len: usize) -> Result<&'a [u8], Error> {
    let data = bytes(item, field)?;
    if data.first() == Some(&0) {
        return Err(Error::LeadingZeros(field));
    }
    if data.len() > max_len {
        return Err(Error::Overflow(field));
    }
    Ok(data)
}

pub(crate) fn u256(item: &Rlp<'_>, field: &'static str) -> Result<U256, Error> {
    U256::from_be_slice(integer(item, field, 32)?).map_err(|_| Error::Overflow(field))
}

pub(crate) fn u64(item: &Rlp<'_>, field: &'static str) -> Result<u64, Error> {
    let data = integer(item, field, 8)?;
    Ok(data.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

pub(crate) fn u8(item: &Rlp<'_>, field: &'static str) -> Result<u8, Error> {
    let data = integer(item, field, 1)?;
    Ok(data.first().copied().unwrap_or(0))
}

pub(crate) fn fixed<const N: usize>(item: &Rlp<'_>, field: &'static str) -> Result<[u8; N], Error> {
    let data = bytes(item, field)?;
    <[u8; N]>::try_from(data).map_err(|_| Error::InvalidLength {
        field,
        expected: N,
        found: data.len(),
    })
}

pub(crate) fn address(item: &Rlp<'_>, field: &'static str) -> Result<Address, Error> {
    fixed::<20>(item, field).map(Address)
}

/// `to`: empty for contract creation, else exactly 20 bytes.
pub(crate) fn optional_address(
    item: &Rlp<'_>,
    field: &'static str,
) -> Result<Option<Address>, Error> {
    if bytes(item, field)?.is_empty() {
        Ok(None)
    } else {
        address(item, field).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks any RLP strictly (tests only: recursion is bounded by `depth`).
    fn walk(item: &Rlp<'_>, depth: usize) -> Result<(), Error> {
        if depth > 16 {
            return Err(Error::Rlp {
                field: "test",
                reason: "too deep",
            });
        }
        if item.is_list() {
            for child in list(item, "test")? {
                walk(&child, depth + 1)?;
            }
            Ok(())
        } else {
            bytes(item, "test").map(|_| ())
        }
    }

    fn parse_strict(raw: &[u8]) -> Result<(), Error> {
        if raw.is_empty() {
            return Err(Error::Empty);
        }
        let rlp = Rlp::new(raw);
        let info = rlp.payload_info().map_err(|e| rlp_error("test", &e))?;
        if info.total() != raw.len() {
            return Err(Error::TrailingBytes);
        }
        walk(&rlp, 0)
    }

    fn vectors(name: &str) -> serde_json::Value {
        let path = format!("{}/../../vectors/rlp/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.trim_start_matches("0x")).unwrap()
    }

    #[test]
    fn ethereum_tests_invalid_rlp_is_rejected() {
        let v = vectors("invalidRLPTest.json");
        let cases = v.as_object().unwrap();
        assert_eq!(cases.len(), 17);
        for (name, case) in cases {
            let raw = unhex(case["out"].as_str().unwrap());
            assert!(parse_strict(&raw).is_err(), "{name} was accepted");
        }
    }

    #[test]
    fn ethereum_tests_valid_rlp_is_accepted() {
        let mut n = 0;
        for file in ["rlptest.json", "rlptest_ethereum_tests_extra.json"] {
            let v = vectors(file);
            for (name, case) in v.as_object().unwrap() {
                let Some(out) = case.get("out").and_then(|o| o.as_str()) else {
                    continue;
                };
                let raw = unhex(out);
                parse_strict(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
                n += 1;
            }
        }
        assert_eq!(n, 28);
    }

    #[test]
    fn integers_round_trip_and_reject_non_canonical() {
        // The integer cases of rlptest.json through our U256 encoding.
        let v = vectors("rlptest.json");
        // serde_json (without `arbitrary_precision`) reads big numbers as
        // f64, so take the digits from the file's text.
        let text = std::fs::read_to_string(format!(
            "{}/../../vectors/rlp/rlptest.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let digits_of = |name: &str| -> String {
            let at = text.find(&format!("\"{name}\"")).unwrap();
            let rest = &text[at..];
            let rest = &rest[rest.find("\"in\":").unwrap() + 5..];
            rest.trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect()
        };
        let mut n = 0;
        for (name, case) in v.as_object().unwrap() {
            let value = match &case["in"] {
                serde_json::Value::Number(_) => digits_of(name),
                serde_json::Value::String(s) if s.starts_with('#') => s[1..].to_string(),
                _ => continue,
            };
            let expected = unhex(case["out"].as_str().unwrap());
            if name == "bigint" {
                // 2^256 does not fit: the one integer case a U256 cannot hold.
                assert!(matches!(U256::parse(&value), Err(Error::Overflow(_))));
                assert!(matches!(
                    u256(&Rlp::new(&expected), "x"),
                    Err(Error::Overflow("x"))
                ));
                continue;
            }
            let x = U256::parse(&value).unwrap();
            // The encoder strips the leading zeros of all 32 bytes itself.
            let mut out = Vec::new();
            crate::rlp_encode::write_uint(&mut out, &x.to_be_bytes());
            assert_eq!(out, expected, "{name}");
            assert_eq!(u256(&Rlp::new(&expected), "x").unwrap(), x);
            n += 1;
        }
        assert_eq!(n, 9);
        let rlp = |b: &'static [u8]| Rlp::new(b);
        assert!(matches!(
            u64(&rlp(&[0x00]), "x"),
            Err(Error::LeadingZeros("x"))
        ));
        assert!(matches!(
            u64(&rlp(&[0x82, 0x00, 0x01]), "x"),
            Err(Error::LeadingZeros("x"))
        ));
        assert!(matches!(
            u64(&rlp(&[0x81, 0x05]), "x"),
            Err(Error::Rlp { .. })
        ));
        assert!(matches!(
            u64(&rlp(&[0x89, 1, 0, 0, 0, 0, 0, 0, 0, 0]), "x"),
            Err(Error::Overflow("x"))
        ));
        assert!(matches!(
            u8(&rlp(&[0x82, 1, 0]), "x"),
            Err(Error::Overflow("x"))
        ));
        assert_eq!(u64(&rlp(&[0x80]), "x").unwrap(), 0);
        assert_eq!(
            u64(
                &rlp(&[0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
                "x"
            )
            .unwrap(),
            u64::MAX
        );
        assert!(matches!(u64(&rlp(&[0xc0]), "x"), Err(Error::Rlp { .. })));
        // A list with a half item at its end.
        assert!(matches!(
            list(&rlp(&[0xc3, 0x01, 0x82, 0x00]), "x"),
            Err(Error::Rlp { .. })
        ));
        assert!(matches!(
            top_list(&[0xc1, 0x01, 0x00], "x"),
            Err(Error::TrailingBytes)
        ));
        assert!(matches!(
            optional_address(&rlp(&[0x82, 1, 2]), "to"),
            Err(Error::InvalidLength { .. })
        ));
    }
}
