//! RFC 3986 percent-encoding, for the label and parameters of otpauth URIs.
//!
//! [`encode`] leaves only the unreserved characters (`A–Z a–z 0–9 - . _ ~`,
//! RFC 3986 section 2.3) as they are and writes every other byte of the
//! UTF-8 text as `%XX` with upper-case hex: a space is `%20` (never `+`), a
//! `:` in a wallet name is `%3A`, `é` is `%C3%A9`. That is the most
//! conservative form every URI parser reads alike.
//!
//! [`decode`] turns each `%XX` (hex digits in either case) into its byte,
//! keeps every other character as it is (`+` stays `+`: this is RFC 3986,
//! not HTML form encoding) and requires the result to be UTF-8.

use crate::Error;

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every byte of `text` but the unreserved characters.
#[must_use]
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes.
///
/// # Errors
/// [`Error::PercentEncoding`] if a `%` is not followed by two hex digits or
/// the decoded bytes are not UTF-8.
pub fn decode(text: &str) -> Result<String, Error> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let (hi, lo, tail) = match tail {
                [hi, lo, tail @ ..] => (*hi, *lo, tail),
                _ => return Err(Error::PercentEncoding),
            };
            let hi = hex_value(hi).ok_or(Error::PercentEncoding)?;
            let lo = hex_value(lo).ok_or(Error::PercentEncoding)?;
            out.push((hi << 4) | lo);
            rest = tail;
        } else {
            out.push(b);
            rest = tail;
        }
    }
    String::from_utf8(out).map_err(|_| Error::PercentEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        assert_eq!(encode("alice@example.com"), "alice%40example.com");
        assert_eq!(encode("ACME Co"), "ACME%20Co");
        assert_eq!(encode("a:b"), "a%3Ab");
        assert_eq!(encode("Zoë"), "Zo%C3%AB");
        assert_eq!(encode("a+b/c?d#e&f=g%"), "a%2Bb%2Fc%3Fd%23e%26f%3Dg%25");
        assert_eq!(encode("-._~"), "-._~");
        assert_eq!(decode("Zo%c3%ab").unwrap(), "Zoë");
        assert_eq!(decode("a+b").unwrap(), "a+b");
        for bad in ["%", "%4", "%G0", "%0G", "abc%", "%C3", "%FF", "%C3%28"] {
            assert!(
                matches!(decode(bad), Err(Error::PercentEncoding)),
                "{bad:?}"
            );
        }
    }
}
