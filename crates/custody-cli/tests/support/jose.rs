//! JOSE helpers the binary's JOSE tests share, written from the RFCs
//! independently of custody-jose (base64url, a compact serialization's
//! protected header, RFC 7638 thumbprints), and Python jwcrypto as the
//! oracle where $CUSTODY_TEST_PYTHON is set.
#![allow(
    dead_code,
    reason = "each test file that includes this uses a part of it"
)]

use std::process::{Command, Stdio};

use base64ct::{Base64UrlUnpadded, Encoding as _};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The scope the sealing tests seal to and open in.
pub(crate) const SCOPE: &str = "importer/api-keys";

/// Decodes unpadded base64url (RFC 4648 §5).
pub(crate) fn b64(text: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(text).unwrap()
}

/// The protected header of a compact JWS or JWE (its first part).
pub(crate) fn protected_header(compact: &str) -> Value {
    serde_json::from_slice(&b64(compact.split('.').next().unwrap())).unwrap()
}

/// A compact JWE with one bit of its tag (its fifth part) flipped.
pub(crate) fn tampered(jwe: &str) -> String {
    let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    let mut tag = b64(&parts[4]);
    tag[0] ^= 1;
    parts[4] = Base64UrlUnpadded::encode_string(&tag);
    parts.join(".")
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

/// The oracle's interpreter, or `None` after saying why `what` is
/// skipped.
pub(crate) fn python(what: &str) -> Option<String> {
    match std::env::var("CUSTODY_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            println!("skipped {what}: set CUSTODY_TEST_PYTHON (jwcrypto)");
            None
        }
    }
}

/// Runs a jwcrypto script with `input` as JSON on stdin (as `v`, its
/// modules `jwe`, `jwk` and `jwt` imported, `registry` knowing custody's
/// critical `scope` header); its JSON output.
pub(crate) fn jwcrypto(python: &str, script: &str, input: &Value) -> Value {
    let prelude = "import json, sys, base64\n\
        from jwcrypto import jwe, jwk, jwt\n\
        from jwcrypto.common import JWSEHeaderParameter, json_encode\n\
        registry = {'scope': JWSEHeaderParameter('custody scope', True, True, None)}\n\
        v = json.load(sys.stdin)\n";
    let mut child = Command::new(python)
        .args(["-c", &format!("{prelude}{script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        input.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "jwcrypto: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
