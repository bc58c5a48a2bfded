//! RFC 4648 section 6 base32 (`A–Z 2–7`), as otpauth URIs carry secrets.
//!
//! Encoding writes upper case without padding (what the Key Uri Format
//! asks for). Decoding is strict: upper or lower case, padding optional but
//! exact when present, no whitespace or other characters, no impossible
//! lengths, and the unused low bits of the last character must be zero (so
//! every byte string has exactly one accepted unpadded spelling per case).
//!
//! Neither direction runs on the verification path (stored secrets are raw
//! bytes in an envelope); they run once per enrolment or import, so they
//! use plain lookups rather than constant-time arithmetic.

use zeroize::{Zeroize, Zeroizing};

use crate::Error;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Encodes `bytes` as unpadded upper-case base32.
#[must_use]
pub fn encode(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity((bytes.len() * 8).div_ceil(5)));
    let mut buffer: u16 = 0;
    let mut bits: u32 = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[usize::from((buffer >> bits) & 0x1f)]));
        }
        // Keep only the bits not yet written (at most 4), so the buffer never
        // overflows.
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    buffer.zeroize();
    out
}

fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a'),
        b'2'..=b'7' => Some(c - b'2' + 26),
        _ => None,
    }
}

/// Decodes base32 strictly (see the module docs).
///
/// # Errors
/// [`Error::InvalidSecret`] for any character outside the alphabet, a bad
/// length or padding, or non-zero unused bits. The empty string decodes to
/// no bytes (callers reject it as too short).
pub fn decode(text: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bytes = text.as_bytes();
    let data_len = bytes.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
    let (data, padding) = bytes.split_at(data_len);
    // Unpadded lengths mod 8 that a byte string can produce, and the padding
    // that completes each to a multiple of 8.
    let expected_padding = match data.len() % 8 {
        0 => 0,
        2 => 6,
        4 => 4,
        5 => 3,
        7 => 1,
        _ => return Err(Error::InvalidSecret),
    };
    if !padding.is_empty() && padding.len() != expected_padding {
        return Err(Error::InvalidSecret);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(data.len() * 5 / 8));
    let mut buffer: u16 = 0;
    let mut bits: u32 = 0;
    for &c in data {
        let v = value(c).ok_or(Error::InvalidSecret)?;
        buffer = (buffer << 5) | u16::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            // The top byte of the buffer; `as u8` keeps its low 8 bits.
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    let leftover = buffer;
    buffer.zeroize();
    if leftover != 0 {
        return Err(Error::InvalidSecret);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_section10_vectors() {
        for (plain, encoded, padded) in [
            ("", "", ""),
            ("f", "MY", "MY======"),
            ("fo", "MZXQ", "MZXQ===="),
            ("foo", "MZXW6", "MZXW6==="),
            ("foob", "MZXW6YQ", "MZXW6YQ="),
            ("fooba", "MZXW6YTB", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI", "MZXW6YTBOI======"),
        ] {
            assert_eq!(encode(plain.as_bytes()).as_str(), encoded);
            assert_eq!(decode(encoded).unwrap().as_slice(), plain.as_bytes());
            assert_eq!(decode(padded).unwrap().as_slice(), plain.as_bytes());
            assert_eq!(
                decode(&encoded.to_lowercase()).unwrap().as_slice(),
                plain.as_bytes()
            );
        }
    }

    #[test]
    fn strictness() {
        for bad in [
            "M",           // impossible length
            "MZX",         // impossible length
            "MZXW6Y",      // impossible length
            "MZ",          // non-zero unused bits ("f" is "MY")
            "MY=",         // short padding
            "MY=======",   // long padding
            "MY==\u{3d}=", // still short
            "MY======MY",  // data after padding
            "M Y",         // whitespace
            "MY\n",        // newline
            "MZXW6YT1",    // '1' is not in the alphabet
            "MZXW6YT8",    // nor '8'
            "MZXW6YT0",    // nor '0'
            "MZXW6===\u{e9}",
            "========",
        ] {
            assert!(matches!(decode(bad), Err(Error::InvalidSecret)), "{bad:?}");
        }
    }
}
