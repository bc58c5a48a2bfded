//! JOSE helpers the binary's JOSE tests share, written from the RFCs
//! independently of custody-jose: base64url and RFC 7638 thumbprints.
#![allow(
    dead_code,
    reason = "each test file that includes this uses a part of it"
)]

use base64ct::{Base64UrlUnpadded, Encoding as _};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Decodes unpadded base64url (RFC 4648 §5).
pub(crate) fn b64(text: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(text).unwrap()
}

/// RFC 7638 §3: SHA-256 of the required members in lexicographic order,
/// no whitespace, base64url.
pub(crate) fn thumbprint(jwk: &Value) -> String {
    let s = |k: &str| jwk[k].as_str().unwrap().to_owned();
    let canonical = match jwk["kty"].as_str().unwrap() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv"),
            s("x"),
            s("y")
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv"), s("x")),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n")),
        other => panic!("kty {other}"),
    };
    Base64UrlUnpadded::encode_string(&Sha256::digest(canonical.as_bytes()))
}
