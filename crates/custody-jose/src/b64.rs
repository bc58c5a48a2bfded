//! RFC 4648 §5 base64url without padding, as JOSE uses it (RFC 7515 §2),
//! read strictly: no padding, no whitespace or line breaks, no character
//! outside the URL-safe alphabet, and no non-zero bits after the last
//! byte. Every byte string thus has exactly one encoding, so a decoded
//! value re-encodes to the text it was read from. Constant time
//! (`base64ct`).

use base64ct::{Base64UrlUnpadded, Encoding};

use crate::JoseError;

/// Decodes `text`, strictly (see the [module](self) docs).
///
/// # Errors
/// [`JoseError::Malformed`] naming `what` for anything but the one
/// canonical unpadded base64url encoding of some bytes.
pub fn decode(text: &str, what: &'static str) -> Result<Vec<u8>, JoseError> {
    Base64UrlUnpadded::decode_vec(text).map_err(|_| JoseError::Malformed { what })
}

/// `bytes` in base64url without padding.
#[must_use]
pub fn encode(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_unpadded_only() {
        assert_eq!(decode("", "x").unwrap(), b"");
        assert_eq!(decode("QWxpY2U", "x").unwrap(), b"Alice");
        assert_eq!(decode("-_8", "x").unwrap(), [0xfb, 0xff]);
        for bad in [
            "QWxpY2U=",  // padding
            "QWxp Y2U",  // whitespace
            "QWxpY2U\n", // line break
            "QWxpY2V",   // non-zero trailing bits ("Alice" is ...U)
            "+/8",       // the standard alphabet
            "Q",         // a lone sextet is no byte
            "QQ==",
        ] {
            assert_eq!(
                decode(bad, "x").unwrap_err(),
                JoseError::Malformed { what: "x" },
                "{bad:?}"
            );
        }
        assert_eq!(encode(b"Alice"), "QWxpY2U");
    }
}
