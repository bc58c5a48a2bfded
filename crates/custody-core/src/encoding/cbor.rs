//! Strict, allocation-bounded CBOR (RFC 8949) for untrusted input.
//!
//! The decoder accepts one well-formed data item in the *preferred
//! serialization* of RFC 8949 §4.1 and nothing looser:
//!
//! - definite lengths only: an indefinite-length string, array or map (and
//!   any `break`) is refused;
//! - every integer, length and tag number in its shortest form;
//! - no duplicate keys in a map (keys are compared as encoded bytes, which
//!   the shortest-form rule makes the same as comparing values);
//! - text strings valid UTF-8;
//! - of the simple values only `false`, `true` and `null`; no `undefined`,
//!   no other simple value, no floating-point number;
//! - no tag, except one outermost tag that the caller names
//!   ([`decode_tagged`], e.g. COSE_Sign1's tag 18);
//! - nothing after the item.
//!
//! Map keys may come in any order (RFC 8949 §4.2.1's sorted order is not
//! required): AWS Nitro attestation documents, for one, are not sorted.
//!
//! Every resource the input can make the decoder spend is bounded by
//! [`Limits`] *before* it is spent: the input's length, the nesting depth
//! (never more than [`MAX_DEPTH_CEILING`], whatever the caller asks, so the
//! recursion cannot exhaust the stack), and the number of data items. A
//! length or count read from the input is checked against the bytes that
//! remain (every data item takes at least one byte) before anything is
//! sliced or allocated, so a five-byte input claiming a four-gigabyte string
//! costs nothing. Strings are borrowed from the input, never copied.
//!
//! Errors are a [`CborError`]: what was wrong ([`CborErrorKind`]) and the
//! byte offset where. Nothing here panics on any input.
//!
//! [`Value::encode`] writes the same preferred serialization, so for every
//! accepted input `decode(input)?.to_vec() == input` (the fuzz target
//! `cbor` checks exactly that).
//!
//! ```
//! use custody_core::cbor::{self, Limits, Value};
//!
//! # fn main() -> Result<(), cbor::CborError> {
//! // {"a": 1, "b": [h'00ff', null]}
//! let bytes = [0xa2, 0x61, 0x61, 0x01, 0x61, 0x62, 0x82, 0x42, 0x00, 0xff, 0xf6];
//! let value = cbor::decode(&bytes, &Limits::DEFAULT)?;
//! assert_eq!(value.get_text_key("a"), Some(&Value::Unsigned(1)));
//! assert_eq!(value.to_vec(), bytes);
//!
//! // A non-shortest integer (1 written in two bytes) is refused, with its offset.
//! let err = cbor::decode(&[0x82, 0x01, 0x18, 0x01], &Limits::DEFAULT).unwrap_err();
//! assert_eq!(err.kind(), cbor::CborErrorKind::NonMinimal);
//! assert_eq!(err.offset(), 2);
//! # Ok(()) }
//! ```

use std::fmt;

/// The deepest nesting the decoder ever follows, whatever [`Limits`] says:
/// it recurses once per level, and this keeps that far from any stack limit.
pub const MAX_DEPTH_CEILING: usize = 64;

/// What a decode may spend. Checked before anything is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest input accepted, in bytes.
    pub max_input: usize,
    /// The deepest nesting of arrays and maps: a top-level scalar is at
    /// depth 0, the items of a top-level array or map at depth 1. Capped at
    /// [`MAX_DEPTH_CEILING`].
    pub max_depth: usize,
    /// The most data items in the whole input (every integer, string,
    /// array, map, simple value, and each map key and value, counts one).
    pub max_items: usize,
}

impl Limits {
    /// 64 KiB of input, depth 16, 4096 items: generous for the small,
    /// flat documents custody reads (attestation documents, COSE keys,
    /// WebAuthn objects), tight enough for untrusted input.
    pub const DEFAULT: Self = Self {
        max_input: 64 * 1024,
        max_depth: 16,
        max_items: 4096,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A decoded CBOR data item. Strings borrow from the input.
///
/// Integers keep CBOR's two major types: [`Value::Negative`]`(n)` is the
/// integer `-1 - n`, so the full range −2⁶⁴ … 2⁶⁴−1 is represented
/// exactly. Maps keep their entries in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// Major type 0: an unsigned integer.
    Unsigned(u64),
    /// Major type 1: the negative integer `-1 - n`.
    Negative(u64),
    /// Major type 2: a byte string.
    Bytes(&'a [u8]),
    /// Major type 3: a text string (valid UTF-8).
    Text(&'a str),
    /// Major type 4: an array.
    Array(Vec<Value<'a>>),
    /// Major type 5: a map, entries in input order, no two keys equal.
    Map(Vec<(Value<'a>, Value<'a>)>),
    /// Simple values 20 and 21.
    Bool(bool),
    /// Simple value 22.
    Null,
}

impl<'a> Value<'a> {
    /// The unsigned integer, if this is one.
    #[must_use]
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Self::Unsigned(n) => Some(*n),
            _ => None,
        }
    }

    /// The integer, if this is one that fits an `i64`.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Unsigned(n) => i64::try_from(*n).ok(),
            // -1 - n, for n <= i64::MAX: no overflow.
            Self::Negative(n) => i64::try_from(*n).ok().map(|n| -1 - n),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The text, if this is a text string.
    #[must_use]
    pub fn as_text(&self) -> Option<&'a str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if this is an array.
    #[must_use]
    pub fn as_array(&self) -> Option<&[Value<'a>]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    #[must_use]
    pub fn as_map(&self) -> Option<&[(Value<'a>, Value<'a>)]> {
        match self {
            Self::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// Whether this is `null`.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The value under `key`, if this is a map that has it.
    #[must_use]
    pub fn get(&self, key: &Value<'_>) -> Option<&Value<'a>> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value under the text key `key`, if this is a map that has it.
    #[must_use]
    pub fn get_text_key(&self, key: &str) -> Option<&Value<'a>> {
        self.get(&Value::Text(key))
    }

    /// The value under the integer key `key` (COSE labels), if this is a
    /// map that has it.
    #[must_use]
    pub fn get_int_key(&self, key: i64) -> Option<&Value<'a>> {
        self.get(&Value::from_i64(key))
    }

    /// The CBOR integer `n`.
    #[must_use]
    pub fn from_i64(n: i64) -> Value<'static> {
        match u64::try_from(n) {
            Ok(u) => Value::Unsigned(u),
            // n < 0: -1 - n is in 0 ..= i64::MAX, so it is a u64.
            Err(_) => Value::Negative((-1 - n).unsigned_abs()),
        }
    }

    /// A short name of this item's type, for error messages.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Unsigned(_) => "unsigned integer",
            Self::Negative(_) => "negative integer",
            Self::Bytes(_) => "byte string",
            Self::Text(_) => "text string",
            Self::Array(_) => "array",
            Self::Map(_) => "map",
            Self::Bool(_) => "boolean",
            Self::Null => "null",
        }
    }

    /// Appends this item's preferred serialization (RFC 8949 §4.1: shortest
    /// heads, definite lengths, map entries in their order here) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Unsigned(n) => write_head(out, MAJOR_UNSIGNED, *n),
            Self::Negative(n) => write_head(out, MAJOR_NEGATIVE, *n),
            Self::Bytes(b) => {
                write_head(out, MAJOR_BYTES, len_u64(b.len()));
                out.extend_from_slice(b);
            }
            Self::Text(s) => {
                write_head(out, MAJOR_TEXT, len_u64(s.len()));
                out.extend_from_slice(s.as_bytes());
            }
            Self::Array(items) => {
                write_head(out, MAJOR_ARRAY, len_u64(items.len()));
                for item in items {
                    item.encode(out);
                }
            }
            Self::Map(entries) => {
                write_head(out, MAJOR_MAP, len_u64(entries.len()));
                for (k, v) in entries {
                    k.encode(out);
                    v.encode(out);
                }
            }
            Self::Bool(false) => out.push(0xf4),
            Self::Bool(true) => out.push(0xf5),
            Self::Null => out.push(0xf6),
        }
    }

    /// This item's preferred serialization.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Appends the head of a tag `tag` (major type 6) in its shortest form;
/// the tagged item follows it.
pub fn encode_tag(tag: u64, out: &mut Vec<u8>) {
    write_head(out, MAJOR_TAG, tag);
}

/// What was wrong with the input.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CborErrorKind {
    /// The input is longer than [`Limits::max_input`].
    InputTooLong,
    /// The input ends inside an item.
    Truncated,
    /// Bytes follow the item.
    TrailingBytes,
    /// An indefinite-length string, array or map.
    IndefiniteLength,
    /// A `break` (0xff) with no indefinite-length item open.
    UnexpectedBreak,
    /// Additional information 28–30 (reserved), or 31 on a major type that
    /// has no indefinite form.
    InvalidAdditionalInfo,
    /// An integer, length, tag number or simple value not in its shortest
    /// form.
    NonMinimal,
    /// A string length or an item count larger than the input that remains.
    LengthExceedsInput,
    /// Arrays and maps nested deeper than [`Limits::max_depth`].
    TooDeep,
    /// More data items than [`Limits::max_items`].
    TooManyItems,
    /// A map key that appeared before in the same map.
    DuplicateKey,
    /// A text string that is not valid UTF-8.
    InvalidUtf8,
    /// A tag where none is allowed (any tag below the top, or an outermost
    /// tag the caller did not name).
    TagNotAllowed {
        /// The tag number.
        tag: u64,
    },
    /// A floating-point number (half, single or double precision).
    Float,
    /// A simple value other than `false`, `true` and `null` (including
    /// `undefined`).
    UnsupportedSimple,
}

impl fmt::Display for CborErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InputTooLong => f.write_str("input longer than the limit"),
            Self::Truncated => f.write_str("input ends inside an item"),
            Self::TrailingBytes => f.write_str("bytes after the item"),
            Self::IndefiniteLength => f.write_str("indefinite length"),
            Self::UnexpectedBreak => f.write_str("break outside an indefinite-length item"),
            Self::InvalidAdditionalInfo => f.write_str("reserved additional information"),
            Self::NonMinimal => f.write_str("not in its shortest form"),
            Self::LengthExceedsInput => f.write_str("length exceeds the remaining input"),
            Self::TooDeep => f.write_str("nested deeper than the limit"),
            Self::TooManyItems => f.write_str("more items than the limit"),
            Self::DuplicateKey => f.write_str("duplicate map key"),
            Self::InvalidUtf8 => f.write_str("text string not valid UTF-8"),
            Self::TagNotAllowed { tag } => write!(f, "tag {tag} not allowed here"),
            Self::Float => f.write_str("floating-point number"),
            Self::UnsupportedSimple => f.write_str("simple value other than false, true, null"),
        }
    }
}

/// A refused input: what was wrong and the byte offset where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("CBOR at byte {offset}: {kind}")]
pub struct CborError {
    offset: usize,
    kind: CborErrorKind,
}

impl CborError {
    /// What was wrong.
    #[must_use]
    pub fn kind(&self) -> CborErrorKind {
        self.kind
    }

    /// The offset in the input of the item (or byte) at fault.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }
}

/// Decodes `input` as exactly one CBOR data item, with no tags.
///
/// # Errors
/// A [`CborError`] for any input that is not one strict, well-formed item
/// within `limits` (see the module documentation).
pub fn decode<'a>(input: &'a [u8], limits: &Limits) -> Result<Value<'a>, CborError> {
    let mut decoder = Decoder::new(input, limits)?;
    let value = decoder.item(0)?;
    decoder.finish()?;
    Ok(value)
}

/// Decodes the one CBOR data item at the start of `input` (no tags) and
/// returns it with the bytes that follow it, for formats that put a CBOR
/// item before other data (WebAuthn's authenticator data: the credential
/// public key, then the extensions). The item is as strict as [`decode`]'s;
/// only what follows it is left to the caller.
///
/// # Errors
/// As [`decode`], except that bytes after the item are not an error.
pub fn decode_prefix<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<(Value<'a>, &'a [u8]), CborError> {
    let mut decoder = Decoder::new(input, limits)?;
    let value = decoder.item(0)?;
    let rest = input.get(decoder.pos..).unwrap_or_default();
    Ok((value, rest))
}

/// Decodes `input` as exactly one CBOR data item that may be wrapped in one
/// outermost tag whose number is in `allowed_tags` (and no tag anywhere
/// else). Returns the tag, if there was one, and the item.
///
/// # Errors
/// As [`decode`]; a tag not in `allowed_tags`, a second tag, or a tag below
/// the top is [`CborErrorKind::TagNotAllowed`].
pub fn decode_tagged<'a>(
    input: &'a [u8],
    limits: &Limits,
    allowed_tags: &[u64],
) -> Result<(Option<u64>, Value<'a>), CborError> {
    let mut decoder = Decoder::new(input, limits)?;
    let tag = match input.first() {
        Some(initial) if initial >> 5 == MAJOR_TAG => {
            let start = decoder.pos;
            let tag = match decoder.head()? {
                (MAJOR_TAG, Head::Arg(tag)) => tag,
                // The initial byte's major type is 6, so `head` read an
                // argument or failed; nothing else reaches here.
                _ => {
                    return Err(CborError {
                        offset: start,
                        kind: CborErrorKind::InvalidAdditionalInfo,
                    });
                }
            };
            if !allowed_tags.contains(&tag) {
                return Err(CborError {
                    offset: start,
                    kind: CborErrorKind::TagNotAllowed { tag },
                });
            }
            Some(tag)
        }
        _ => None,
    };
    let value = decoder.item(0)?;
    decoder.finish()?;
    Ok((tag, value))
}

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// A length as the u64 of a CBOR head (lossless: usize is at most 64 bits
/// on every target Rust supports).
fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// The shortest head of `major` with argument `arg`.
fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let m = major << 5;
    if let Ok(small) = u8::try_from(arg) {
        if small < 24 {
            out.push(m | small);
        } else {
            out.push(m | 24);
            out.push(small);
        }
    } else if let Ok(n) = u16::try_from(arg) {
        out.push(m | 25);
        out.extend_from_slice(&n.to_be_bytes());
    } else if let Ok(n) = u32::try_from(arg) {
        out.push(m | 26);
        out.extend_from_slice(&n.to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&arg.to_be_bytes());
    }
}

/// A simple value or float head (major type 7).
#[derive(Debug, Clone, Copy)]
enum Head {
    /// Major types 0–6 with their argument.
    Arg(u64),
    /// `false`, `true`.
    Bool(bool),
    /// `null`.
    Null,
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    items: usize,
    max_depth: usize,
    max_items: usize,
}

impl<'a> Decoder<'a> {
    fn new(input: &'a [u8], limits: &Limits) -> Result<Self, CborError> {
        if input.len() > limits.max_input {
            return Err(CborError {
                offset: limits.max_input,
                kind: CborErrorKind::InputTooLong,
            });
        }
        Ok(Self {
            input,
            pos: 0,
            items: 0,
            max_depth: limits.max_depth.min(MAX_DEPTH_CEILING),
            max_items: limits.max_items,
        })
    }

    fn error(offset: usize, kind: CborErrorKind) -> CborError {
        CborError { offset, kind }
    }

    fn remaining(&self) -> usize {
        self.input.len().saturating_sub(self.pos)
    }

    fn finish(&self) -> Result<(), CborError> {
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(Self::error(self.pos, CborErrorKind::TrailingBytes))
        }
    }

    /// The next `n` bytes, or `Truncated` (at the current offset).
    fn take(&mut self, n: usize) -> Result<&'a [u8], CborError> {
        let bytes = self
            .pos
            .checked_add(n)
            .and_then(|end| self.input.get(self.pos..end))
            .ok_or(Self::error(self.pos, CborErrorKind::Truncated))?;
        self.pos += n;
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], CborError> {
        let at = self.pos;
        self.take(N)?
            .try_into()
            .map_err(|_| Self::error(at, CborErrorKind::Truncated))
    }

    /// Reads one head: its major type and what it carries. Enforces the
    /// shortest form and refuses indefinite lengths, breaks, reserved
    /// additional information, floats and unsupported simple values.
    fn head(&mut self) -> Result<(u8, Head), CborError> {
        let start = self.pos;
        let [initial] = self.take_array::<1>()?;
        let major = initial >> 5;
        let info = initial & 0x1f;
        if major == MAJOR_SIMPLE {
            let head = match info {
                20 => Head::Bool(false),
                21 => Head::Bool(true),
                22 => Head::Null,
                0..=19 | 23 => {
                    return Err(Self::error(start, CborErrorKind::UnsupportedSimple));
                }
                24 => {
                    // A one-byte simple value: 0..=31 here is not
                    // well-formed (RFC 8949 §3.3), the rest unsupported.
                    let [v] = self.take_array::<1>()?;
                    let kind = if v < 32 {
                        CborErrorKind::NonMinimal
                    } else {
                        CborErrorKind::UnsupportedSimple
                    };
                    return Err(Self::error(start, kind));
                }
                25..=27 => return Err(Self::error(start, CborErrorKind::Float)),
                31 => return Err(Self::error(start, CborErrorKind::UnexpectedBreak)),
                _ => return Err(Self::error(start, CborErrorKind::InvalidAdditionalInfo)),
            };
            return Ok((major, head));
        }
        let (arg, min) = match info {
            0..=23 => (u64::from(info), 0),
            24 => (u64::from(u8::from_be_bytes(self.take_array()?)), 24),
            25 => (u64::from(u16::from_be_bytes(self.take_array()?)), 0x100),
            26 => (u64::from(u32::from_be_bytes(self.take_array()?)), 0x1_0000),
            27 => (u64::from_be_bytes(self.take_array()?), 0x1_0000_0000),
            31 if matches!(major, MAJOR_BYTES | MAJOR_TEXT | MAJOR_ARRAY | MAJOR_MAP) => {
                return Err(Self::error(start, CborErrorKind::IndefiniteLength));
            }
            _ => return Err(Self::error(start, CborErrorKind::InvalidAdditionalInfo)),
        };
        if arg < min {
            return Err(Self::error(start, CborErrorKind::NonMinimal));
        }
        Ok((major, Head::Arg(arg)))
    }

    /// A length or count from a head, checked to fit what remains of the
    /// input when each unit takes at least `min_bytes_each` bytes.
    fn checked_count(
        &self,
        start: usize,
        arg: u64,
        min_bytes_each: usize,
    ) -> Result<usize, CborError> {
        let too_long = Self::error(start, CborErrorKind::LengthExceedsInput);
        let count = usize::try_from(arg).map_err(|_| too_long)?;
        let needed = count.checked_mul(min_bytes_each).ok_or(too_long)?;
        if needed > self.remaining() {
            return Err(too_long);
        }
        Ok(count)
    }

    /// Counts `n` more data items against the limit.
    fn count_items(&mut self, start: usize, n: usize) -> Result<(), CborError> {
        let total = self
            .items
            .checked_add(n)
            .filter(|total| *total <= self.max_items)
            .ok_or(Self::error(start, CborErrorKind::TooManyItems))?;
        self.items = total;
        Ok(())
    }

    /// One data item at nesting depth `depth`.
    fn item(&mut self, depth: usize) -> Result<Value<'a>, CborError> {
        let start = self.pos;
        if depth > self.max_depth {
            return Err(Self::error(start, CborErrorKind::TooDeep));
        }
        self.count_items(start, 1)?;
        let (major, head) = self.head()?;
        let arg = match head {
            Head::Bool(b) => return Ok(Value::Bool(b)),
            Head::Null => return Ok(Value::Null),
            Head::Arg(arg) => arg,
        };
        match major {
            MAJOR_UNSIGNED => Ok(Value::Unsigned(arg)),
            MAJOR_NEGATIVE => Ok(Value::Negative(arg)),
            MAJOR_BYTES => {
                let len = self.checked_count(start, arg, 1)?;
                Ok(Value::Bytes(self.take(len)?))
            }
            MAJOR_TEXT => {
                let len = self.checked_count(start, arg, 1)?;
                let bytes = self.take(len)?;
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| Self::error(start, CborErrorKind::InvalidUtf8))?;
                Ok(Value::Text(text))
            }
            MAJOR_ARRAY => {
                // Every item takes at least one byte.
                let count = self.checked_count(start, arg, 1)?;
                // Refuse a count the item budget cannot cover before
                // allocating for it (the items are counted again, one by
                // one, as they are read).
                if count > self.max_items.saturating_sub(self.items) {
                    return Err(Self::error(start, CborErrorKind::TooManyItems));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.item(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            MAJOR_MAP => {
                // Every entry takes at least two bytes (a key and a value).
                let count = self.checked_count(start, arg, 2)?;
                if count.saturating_mul(2) > self.max_items.saturating_sub(self.items) {
                    return Err(Self::error(start, CborErrorKind::TooManyItems));
                }
                let mut entries = Vec::with_capacity(count);
                let mut keys: Vec<(&'a [u8], usize)> = Vec::with_capacity(count);
                for _ in 0..count {
                    let key_start = self.pos;
                    let key = self.item(depth + 1)?;
                    let key_bytes = self.input.get(key_start..self.pos).unwrap_or_default();
                    keys.push((key_bytes, key_start));
                    let value = self.item(depth + 1)?;
                    entries.push((key, value));
                }
                // Equal values have equal (shortest-form) encodings, so
                // equal key bytes are exactly the duplicate keys.
                keys.sort_unstable();
                if let Some(offset) = keys
                    .windows(2)
                    .filter_map(|w| match w {
                        [(a, at_a), (b, at_b)] if a == b => Some((*at_a).max(*at_b)),
                        _ => None,
                    })
                    .min()
                {
                    return Err(Self::error(offset, CborErrorKind::DuplicateKey));
                }
                Ok(Value::Map(entries))
            }
            // MAJOR_TAG: tags are only read by `decode_tagged`, at the top.
            _ => Err(Self::error(
                start,
                CborErrorKind::TagNotAllowed { tag: arg },
            )),
        }
    }
}

#[cfg(test)]
mod prefix_tests {
    use super::*;

    #[test]
    fn a_prefix_is_the_item_and_the_rest_is_returned_untouched() {
        // {1: 2} followed by two bytes that are not CBOR.
        let input = [0xa1, 0x01, 0x02, 0xff, 0xfe];
        let (value, rest) = decode_prefix(&input, &Limits::DEFAULT).unwrap_or_else(|e| {
            unreachable!("{e}");
        });
        assert_eq!(value.get_int_key(1), Some(&Value::Unsigned(2)));
        assert_eq!(rest, [0xff, 0xfe]);
        // The item itself is still strict: a non-shortest integer inside.
        let err = decode_prefix(&[0xa1, 0x18, 0x01, 0x02, 0x00], &Limits::DEFAULT).err();
        assert_eq!(err.map(|e| e.kind()), Some(CborErrorKind::NonMinimal));
        // Nothing: truncated.
        assert!(decode_prefix(&[], &Limits::DEFAULT).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &[u8]) -> (CborErrorKind, usize) {
        match decode(input, &Limits::DEFAULT) {
            Ok(v) => panic!("accepted {input:02x?} as {v:?}"),
            Err(e) => (e.kind(), e.offset()),
        }
    }

    fn ok(input: &[u8]) -> Value<'_> {
        let value = decode(input, &Limits::DEFAULT).unwrap();
        assert_eq!(value.to_vec(), input, "re-encodes to the input");
        value
    }

    #[test]
    fn rfc8949_appendix_a_examples_in_preferred_form() {
        assert_eq!(ok(&[0x00]), Value::Unsigned(0));
        assert_eq!(ok(&[0x17]), Value::Unsigned(23));
        assert_eq!(ok(&[0x18, 0x18]), Value::Unsigned(24));
        assert_eq!(ok(&[0x19, 0x03, 0xe8]), Value::Unsigned(1000));
        assert_eq!(
            ok(&[0x1a, 0x00, 0x0f, 0x42, 0x40]),
            Value::Unsigned(1_000_000)
        );
        assert_eq!(
            ok(&[0x1b, 0x00, 0x00, 0x00, 0xe8, 0xd4, 0xa5, 0x10, 0x00]),
            Value::Unsigned(1_000_000_000_000)
        );
        assert_eq!(
            ok(&[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Value::Unsigned(u64::MAX)
        );
        assert_eq!(ok(&[0x20]).as_i64(), Some(-1));
        assert_eq!(ok(&[0x38, 0x63]).as_i64(), Some(-100));
        assert_eq!(ok(&[0x39, 0x03, 0xe7]).as_i64(), Some(-1000));
        assert_eq!(
            ok(&[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Value::Negative(u64::MAX)
        );
        assert_eq!(ok(&[0x40]), Value::Bytes(&[]));
        assert_eq!(ok(&[0x44, 1, 2, 3, 4]), Value::Bytes(&[1, 2, 3, 4]));
        assert_eq!(ok(&[0x60]), Value::Text(""));
        assert_eq!(ok(&[0x62, 0xc3, 0xbc]), Value::Text("ü"));
        assert_eq!(
            ok(&[0x64, 0xf0, 0x90, 0x85, 0x91]),
            Value::Text("\u{10151}")
        );
        assert_eq!(ok(&[0x80]), Value::Array(vec![]));
        assert_eq!(
            ok(&[0x83, 0x01, 0x82, 0x02, 0x03, 0x82, 0x04, 0x05]),
            Value::Array(vec![
                Value::Unsigned(1),
                Value::Array(vec![Value::Unsigned(2), Value::Unsigned(3)]),
                Value::Array(vec![Value::Unsigned(4), Value::Unsigned(5)]),
            ])
        );
        assert_eq!(ok(&[0xa0]), Value::Map(vec![]));
        let map = ok(&[0xa2, 0x01, 0x02, 0x03, 0x04]);
        assert_eq!(map.get_int_key(3), Some(&Value::Unsigned(4)));
        assert_eq!(ok(&[0xf4]), Value::Bool(false));
        assert_eq!(ok(&[0xf5]), Value::Bool(true));
        assert_eq!(ok(&[0xf6]), Value::Null);
        // 25 items: the count itself takes a one-byte argument.
        let mut long = vec![0x98, 25];
        long.extend(std::iter::repeat_n(0x01, 25));
        assert_eq!(ok(&long).as_array().map(<[_]>::len), Some(25));
    }

    #[test]
    fn integer_helpers() {
        assert_eq!(Value::from_i64(-35), Value::Negative(34));
        assert_eq!(
            Value::from_i64(i64::MIN),
            Value::Negative(i64::MAX.unsigned_abs())
        );
        assert_eq!(Value::from_i64(7), Value::Unsigned(7));
        assert_eq!(
            Value::Negative(i64::MAX.unsigned_abs()).as_i64(),
            Some(i64::MIN)
        );
        assert_eq!(Value::Negative(u64::MAX).as_i64(), None);
        assert_eq!(Value::Unsigned(u64::MAX).as_i64(), None);
        assert_eq!(ok(&[0x38, 0x22]).as_i64(), Some(-35));
    }

    #[test]
    fn refuses_non_shortest_forms() {
        assert_eq!(err(&[0x18, 0x17]), (CborErrorKind::NonMinimal, 0));
        assert_eq!(err(&[0x19, 0x00, 0xff]), (CborErrorKind::NonMinimal, 0));
        assert_eq!(
            err(&[0x1a, 0x00, 0x00, 0xff, 0xff]),
            (CborErrorKind::NonMinimal, 0)
        );
        assert_eq!(
            err(&[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            (CborErrorKind::NonMinimal, 0)
        );
        assert_eq!(err(&[0x38, 0x00]), (CborErrorKind::NonMinimal, 0));
        // A length in a longer form than needed.
        assert_eq!(err(&[0x58, 0x01, 0xaa]), (CborErrorKind::NonMinimal, 0));
        assert_eq!(err(&[0x81, 0x98, 0x00]), (CborErrorKind::NonMinimal, 1));
        // A one-byte simple value below 32.
        assert_eq!(err(&[0xf8, 0x14]), (CborErrorKind::NonMinimal, 0));
    }

    #[test]
    fn refuses_indefinite_lengths_and_breaks() {
        assert_eq!(
            err(&[0x5f, 0x41, 0x00, 0xff]),
            (CborErrorKind::IndefiniteLength, 0)
        );
        assert_eq!(err(&[0x7f, 0xff]), (CborErrorKind::IndefiniteLength, 0));
        assert_eq!(err(&[0x9f, 0xff]), (CborErrorKind::IndefiniteLength, 0));
        assert_eq!(
            err(&[0x82, 0x01, 0xbf, 0xff]),
            (CborErrorKind::IndefiniteLength, 2)
        );
        assert_eq!(err(&[0xff]), (CborErrorKind::UnexpectedBreak, 0));
        assert_eq!(err(&[0x1f]), (CborErrorKind::InvalidAdditionalInfo, 0));
        assert_eq!(err(&[0x3f]), (CborErrorKind::InvalidAdditionalInfo, 0));
        assert_eq!(
            err(&[0xdf, 0x00]),
            (CborErrorKind::InvalidAdditionalInfo, 0)
        );
        for reserved in [0x1c, 0x1d, 0x1e, 0x5c, 0x9d, 0xbe, 0xfc] {
            assert_eq!(err(&[reserved]), (CborErrorKind::InvalidAdditionalInfo, 0));
        }
    }

    #[test]
    fn refuses_floats_undefined_and_other_simple_values() {
        assert_eq!(err(&[0xf9, 0x3c, 0x00]), (CborErrorKind::Float, 0));
        assert_eq!(
            err(&[0xfa, 0x47, 0xc3, 0x50, 0x00]),
            (CborErrorKind::Float, 0)
        );
        assert_eq!(
            err(&[0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]),
            (CborErrorKind::Float, 0)
        );
        assert_eq!(err(&[0xf7]), (CborErrorKind::UnsupportedSimple, 0));
        assert_eq!(err(&[0xf0]), (CborErrorKind::UnsupportedSimple, 0));
        assert_eq!(err(&[0xf8, 0xff]), (CborErrorKind::UnsupportedSimple, 0));
    }

    #[test]
    fn refuses_duplicate_map_keys_at_the_second_occurrence() {
        // {1: 2, 3: 4, 1: 5}
        assert_eq!(
            err(&[0xa3, 0x01, 0x02, 0x03, 0x04, 0x01, 0x05]),
            (CborErrorKind::DuplicateKey, 5)
        );
        // {"a": 1, "a": 1}
        assert_eq!(
            err(&[0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x01]),
            (CborErrorKind::DuplicateKey, 4)
        );
        // The integer 1 and the text "1" are different keys.
        ok(&[0xa2, 0x01, 0x01, 0x61, 0x31, 0x01]);
    }

    #[test]
    fn refuses_trailing_and_truncated_input() {
        assert_eq!(err(&[0x01, 0x02]), (CborErrorKind::TrailingBytes, 1));
        assert_eq!(err(&[]), (CborErrorKind::Truncated, 0));
        assert_eq!(err(&[0x19, 0x01]), (CborErrorKind::Truncated, 1));
        assert_eq!(err(&[0x82, 0x01]), (CborErrorKind::LengthExceedsInput, 0));
        assert_eq!(
            err(&[0x83, 0x01, 0x02]),
            (CborErrorKind::LengthExceedsInput, 0)
        );
        assert_eq!(err(&[0xa1, 0x01]), (CborErrorKind::LengthExceedsInput, 0));
    }

    #[test]
    fn never_allocates_from_a_length_before_it_fits_the_input() {
        // A byte string, an array and a map claiming 2^64 - 1 units in nine bytes.
        for major in [0x5b, 0x7b, 0x9b, 0xbb] {
            let input = [major, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
            assert_eq!(err(&input), (CborErrorKind::LengthExceedsInput, 0));
        }
        // A map of 3 entries has to fit 6 bytes, not 3.
        assert_eq!(
            err(&[0xa3, 0x01, 0x02, 0x03, 0x04]),
            (CborErrorKind::LengthExceedsInput, 0)
        );
    }

    #[test]
    fn refuses_invalid_utf8() {
        assert_eq!(err(&[0x62, 0xc3, 0x28]), (CborErrorKind::InvalidUtf8, 0));
        assert_eq!(err(&[0x81, 0x61, 0xff]), (CborErrorKind::InvalidUtf8, 1));
        // An encoded surrogate (U+D800) is not UTF-8.
        assert_eq!(
            err(&[0x63, 0xed, 0xa0, 0x80]),
            (CborErrorKind::InvalidUtf8, 0)
        );
    }

    #[test]
    fn bounds_depth_and_items() {
        let limits = Limits {
            max_input: 1024,
            max_depth: 2,
            max_items: 5,
        };
        assert!(decode(&[0x81, 0x81, 0x01], &limits).is_ok());
        let e = decode(&[0x81, 0x81, 0x81, 0x01], &limits).unwrap_err();
        assert_eq!((e.kind(), e.offset()), (CborErrorKind::TooDeep, 3));
        assert!(decode(&[0x84, 1, 2, 3, 4], &limits).is_ok());
        let e = decode(&[0x85, 1, 2, 3, 4, 5], &limits).unwrap_err();
        assert_eq!((e.kind(), e.offset()), (CborErrorKind::TooManyItems, 0));
        // The second inner array (at offset 4) is the fifth item: its two
        // items no longer fit.
        let e = decode(&[0x82, 0x82, 1, 2, 0x82, 3, 4], &limits).unwrap_err();
        assert_eq!((e.kind(), e.offset()), (CborErrorKind::TooManyItems, 4));
        let e = decode(&[0xa3, 1, 2, 3, 4, 5, 6], &limits).unwrap_err();
        assert_eq!((e.kind(), e.offset()), (CborErrorKind::TooManyItems, 0));
        let e = decode(&[0u8; 1025], &limits).unwrap_err();
        assert_eq!((e.kind(), e.offset()), (CborErrorKind::InputTooLong, 1024));
        // The depth ceiling holds whatever the caller asks for.
        let deep = Limits {
            max_input: 1 << 20,
            max_depth: usize::MAX,
            max_items: usize::MAX,
        };
        let mut nested = vec![0x81; MAX_DEPTH_CEILING];
        nested.push(0x01);
        assert!(decode(&nested, &deep).is_ok());
        let mut nested = vec![0x81; MAX_DEPTH_CEILING + 1];
        nested.push(0x01);
        assert_eq!(
            decode(&nested, &deep).unwrap_err().kind(),
            CborErrorKind::TooDeep
        );
        let mut very_deep = vec![0x81; 100_000];
        very_deep.push(0x01);
        assert_eq!(
            decode(&very_deep, &deep).unwrap_err().kind(),
            CborErrorKind::TooDeep
        );
    }

    #[test]
    fn tags_only_at_the_top_and_only_those_allowed() {
        // 18([]) (COSE_Sign1's tag, one byte: 0xd2).
        let tagged = [0xd2, 0x80];
        assert_eq!(
            decode_tagged(&tagged, &Limits::DEFAULT, &[18]).unwrap(),
            (Some(18), Value::Array(vec![]))
        );
        assert_eq!(
            decode_tagged(&[0x80], &Limits::DEFAULT, &[18]).unwrap(),
            (None, Value::Array(vec![]))
        );
        let e = decode_tagged(&tagged, &Limits::DEFAULT, &[98]).unwrap_err();
        assert_eq!(
            (e.kind(), e.offset()),
            (CborErrorKind::TagNotAllowed { tag: 18 }, 0)
        );
        let e = decode(&tagged, &Limits::DEFAULT).unwrap_err();
        assert_eq!(
            (e.kind(), e.offset()),
            (CborErrorKind::TagNotAllowed { tag: 18 }, 0)
        );
        // A second tag, and a tag inside, are refused.
        let e = decode_tagged(&[0xd2, 0xd2, 0x80], &Limits::DEFAULT, &[18]).unwrap_err();
        assert_eq!(
            (e.kind(), e.offset()),
            (CborErrorKind::TagNotAllowed { tag: 18 }, 1)
        );
        let e = decode_tagged(&[0xd2, 0x81, 0xd2, 0x80], &Limits::DEFAULT, &[18]).unwrap_err();
        assert_eq!(
            (e.kind(), e.offset()),
            (CborErrorKind::TagNotAllowed { tag: 18 }, 2)
        );
        // A tag number in a longer form than needed.
        let e = decode_tagged(&[0xd8, 0x12, 0x80], &Limits::DEFAULT, &[18]).unwrap_err();
        assert_eq!((e.kind(), e.offset()), (CborErrorKind::NonMinimal, 0));
        // A tag with nothing after it.
        let e = decode_tagged(&[0xd2], &Limits::DEFAULT, &[18]).unwrap_err();
        assert_eq!((e.kind(), e.offset()), (CborErrorKind::Truncated, 1));
        let mut out = Vec::new();
        encode_tag(18, &mut out);
        Value::Array(vec![]).encode(&mut out);
        assert_eq!(out, tagged);
    }

    #[test]
    fn errors_name_the_offset() {
        let e = decode(&[0x82, 0x01, 0xf7], &Limits::DEFAULT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "CBOR at byte 2: simple value other than false, true, null"
        );
    }
}
