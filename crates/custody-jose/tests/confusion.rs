//! Algorithm-confusion and key-selection regressions, each by name: the
//! token never chooses the algorithm or the key.
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use custody_jose::jws::{CompactJws, MAX_TOKEN_BYTES};
use custody_jose::{Jwk, JwkSet, b64, jws};
use ed25519_dalek::Signer as _;
use serde_json::{Value, json};

const CLAIMS: &str = r#"{"sub":"svc","exp":1800000600}"#;

fn es256_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap()
}

fn es256_jwk(extra: &Value) -> Jwk {
    let point = es256_key().verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    let mut jwk = json!({
        "kty": "EC", "crv": "P-256",
        "x": b64::encode(&bytes[1..33]), "y": b64::encode(&bytes[33..]),
    });
    for (k, v) in extra.as_object().unwrap() {
        jwk[k] = v.clone();
    }
    Jwk::from_json(jwk.to_string().as_bytes()).unwrap()
}

fn ed_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[0x22; 32])
}

fn ed_jwk(kid: &str) -> Jwk {
    let x = b64::encode(ed_key().verifying_key().as_bytes());
    Jwk::from_json(
        json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

/// A compact token over `header` (raw JSON text) and `payload`, signed by
/// `sign` over the signing input.
fn token(header: &str, payload: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64::encode(&sig))
}

fn es256(msg: &[u8]) -> Vec<u8> {
    let sig: p256::ecdsa::Signature = es256_key().sign(msg);
    sig.to_bytes().to_vec()
}

fn eddsa(msg: &[u8]) -> Vec<u8> {
    ed_key().sign(msg).to_bytes().to_vec()
}

fn set(keys: Vec<Jwk>) -> JwkSet {
    JwkSet::from_keys(keys).unwrap()
}

fn rsa_jwk(with_alg: bool) -> Value {
    let v: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../vectors/jose/jws.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut jwk = v["rfc"][0]["jwk"].clone();
    if !with_alg {
        jwk.as_object_mut().unwrap().remove("alg");
    }
    jwk
}

fn kind(token: &str, keys: &JwkSet) -> &'static str {
    jws::verify(token, keys).unwrap_err().kind()
}

#[test]
fn the_good_tokens_verify() {
    let keys = set(vec![es256_jwk(&json!({"kid": "ec"})), ed_jwk("ed")]);
    let t = token(r#"{"alg":"ES256","kid":"ec"}"#, CLAIMS, es256);
    assert_eq!(jws::verify(&t, &keys).unwrap().payload(), CLAIMS.as_bytes());
    let t = token(r#"{"alg":"EdDSA","kid":"ed"}"#, CLAIMS, eddsa);
    assert_eq!(jws::verify(&t, &keys).unwrap().header().kid(), Some("ed"));
}

#[test]
fn regression_alg_none_is_unsupported() {
    let keys = set(vec![es256_jwk(&json!({}))]);
    for header in [
        r#"{"alg":"none"}"#,
        r#"{"alg":"None"}"#,
        r#"{"alg":"NONE"}"#,
        r#"{"alg":""}"#,
    ] {
        // With an empty signature, and with a valid ES256 one.
        let t = token(header, CLAIMS, |_| Vec::new());
        assert_eq!(kind(&t, &keys), "unsupported-algorithm", "{header}");
        let t = token(header, CLAIMS, es256);
        assert_eq!(kind(&t, &keys), "unsupported-algorithm", "{header}");
    }
}

#[test]
fn regression_hs256_with_the_public_key_as_secret_is_unsupported() {
    // Whatever the MAC key (the JWK text, the x coordinate...), HS* never
    // reaches a verifier.
    let jwk = es256_jwk(&json!({"kid": "ec"}));
    let keys = set(vec![jwk.clone()]);
    for alg in ["HS256", "HS384", "HS512", "hs256"] {
        let header = format!(r#"{{"alg":"{alg}","kid":"ec"}}"#);
        let t = token(&header, CLAIMS, |m| {
            let mut v = jwk.to_json().into_bytes();
            v.extend_from_slice(m);
            v[..32].to_vec()
        });
        assert_eq!(kind(&t, &keys), "unsupported-algorithm");
    }
    // Algorithms real but not verified here are unsupported too.
    for alg in ["RS384", "PS512", "ES384", "ES512", "Ed25519", "ECDH-ES"] {
        let t = token(&format!(r#"{{"alg":"{alg}"}}"#), CLAIMS, es256);
        assert_eq!(kind(&t, &keys), "unsupported-algorithm", "{alg}");
    }
}

#[test]
fn regression_embedded_jwk_jku_x5u_x5c_are_never_used() {
    // The attacker signs with their own key and offers it in every header
    // that can carry one; the set holds the real key only.
    let attacker = ed_jwk("attacker");
    let keys = set(vec![es256_jwk(&json!({"kid": "ec"}))]);
    let offered = attacker.to_json();
    for member in ["jwk", "jku", "x5u", "x5c"] {
        let value = if member == "jwk" {
            offered.clone()
        } else {
            r#""https://evil.example/k""#.to_owned()
        };
        // Signed by the attacker's key, naming the real kid: the real key
        // fixes ES256, so the EdDSA token is refused before any signature.
        let t = token(
            &format!(r#"{{"alg":"EdDSA","kid":"ec","{member}":{value}}}"#),
            CLAIMS,
            eddsa,
        );
        assert_eq!(kind(&t, &keys), "algorithm-mismatch", "{member}");
        // Without a kid, the set's only key is still the real one.
        let t = token(
            &format!(r#"{{"alg":"EdDSA","{member}":{value}}}"#),
            CLAIMS,
            eddsa,
        );
        assert_eq!(kind(&t, &keys), "algorithm-mismatch", "{member}");
        // Naming the attacker's kid: no such key in the set.
        let t = token(
            &format!(r#"{{"alg":"EdDSA","kid":"attacker","{member}":{value}}}"#),
            CLAIMS,
            eddsa,
        );
        assert_eq!(kind(&t, &keys), "unknown-key", "{member}");
    }
}

#[test]
fn regression_alg_not_the_keys_is_a_mismatch() {
    let keys = set(vec![
        es256_jwk(&json!({"kid": "ec"})),
        ed_jwk("ed"),
        Jwk::from_json(rsa_jwk(true).to_string().as_bytes())
            .unwrap()
            .with_kid("rs"),
    ]);
    for (alg, kid) in [
        ("EdDSA", "ec"),
        ("ES256K", "ec"),
        ("RS256", "ec"),
        ("ES256", "ed"),
        ("ES256", "rs"),
        ("PS256", "rs"), // the RSA key says RS256: PS256 is not allowed
        ("EdDSA", "rs"),
    ] {
        let t = token(
            &format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#),
            CLAIMS,
            es256,
        );
        assert_eq!(kind(&t, &keys), "algorithm-mismatch", "{alg} on {kid}");
    }
    // A JWK's own alg restricts it even where the curve allows one algorithm.
    let jwk = Jwk::from_json(rsa_jwk(false).to_string().as_bytes()).unwrap();
    let mut ps = serde_json::from_str::<Value>(&jwk.to_json()).unwrap();
    ps["alg"] = json!("PS256");
    let keys = set(vec![Jwk::from_json(ps.to_string().as_bytes()).unwrap()]);
    let t = token(r#"{"alg":"RS256"}"#, CLAIMS, |_| vec![0; 256]);
    assert_eq!(kind(&t, &keys), "algorithm-mismatch");
}

#[test]
fn regression_rsa_jwk_without_alg_is_refused_as_ambiguous() {
    let jwk = Jwk::from_json(rsa_jwk(false).to_string().as_bytes()).unwrap();
    assert_eq!(
        jwk.verification_algorithm().unwrap_err().kind(),
        "invalid-key"
    );
    let keys = set(vec![jwk]);
    // The RFC 7515 A.2 token itself, its key stripped of alg.
    let v: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../vectors/jose/jws.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let rfc = v["rfc"][0]["token"].as_str().unwrap();
    assert_eq!(kind(rfc, &keys), "invalid-key");
}

#[test]
fn regression_crit_and_b64_are_refused() {
    let keys = set(vec![es256_jwk(&json!({}))]);
    for header in [
        r#"{"alg":"ES256","crit":["exp"],"exp":1}"#,
        r#"{"alg":"ES256","crit":[]}"#,
        r#"{"alg":"ES256","crit":"b64"}"#,
        r#"{"alg":"ES256","crit":["b64"],"b64":false}"#,
        r#"{"alg":"ES256","b64":true}"#,
    ] {
        let t = token(header, CLAIMS, es256);
        assert_eq!(kind(&t, &keys), "malformed", "{header}");
    }
}

#[test]
fn regression_duplicate_header_members_are_refused() {
    let keys = set(vec![es256_jwk(&json!({"kid": "ec"}))]);
    for header in [
        r#"{"alg":"ES256","alg":"none"}"#,
        r#"{"alg":"none","alg":"ES256"}"#,
        r#"{"alg":"ES256","kid":"ec","kid":"other"}"#,
    ] {
        let t = token(header, CLAIMS, es256);
        assert_eq!(kind(&t, &keys), "malformed", "{header}");
    }
    // And in the payload, through the JWT reader.
    let t = token(
        r#"{"alg":"ES256"}"#,
        r#"{"sub":"a","sub":"b","exp":1800000600}"#,
        es256,
    );
    assert!(jws::verify(&t, &keys).is_ok());
    let v = custody_jose::Validation::new(1_800_000_000);
    assert_eq!(
        custody_jose::jwt::verify(&t, &keys, &v).unwrap_err().kind(),
        "malformed"
    );
}

#[test]
fn key_selection_by_kid_or_the_only_key() {
    let ec = es256_jwk(&json!({"kid": "ec"}));
    let no_kid = token(r#"{"alg":"ES256"}"#, CLAIMS, es256);
    // One key: a token without kid uses it; with another kid, unknown.
    assert!(jws::verify(&no_kid, &set(vec![ec.clone()])).is_ok());
    let other = token(r#"{"alg":"ES256","kid":"nope"}"#, CLAIMS, es256);
    assert_eq!(kind(&other, &set(vec![ec.clone()])), "unknown-key");
    // Two keys: a token without kid is refused, whichever would verify.
    let two = set(vec![ec.clone(), ed_jwk("ed")]);
    assert_eq!(kind(&no_kid, &two), "unknown-key");
    // An empty set knows no key.
    assert_eq!(kind(&no_kid, &JwkSet::default()), "unknown-key");
    // A kid on two keys: the set is refused.
    let dup = JwkSet::from_keys(vec![ec.clone(), ed_jwk("ec")]).unwrap_err();
    assert_eq!(dup.kind(), "malformed");
    // A non-string kid is malformed.
    let t = token(r#"{"alg":"ES256","kid":1}"#, CLAIMS, es256);
    assert_eq!(kind(&t, &set(vec![ec])), "malformed");
}

#[test]
fn key_use_enc_does_not_verify() {
    let keys = set(vec![es256_jwk(&json!({"use": "enc"}))]);
    let t = token(r#"{"alg":"ES256"}"#, CLAIMS, es256);
    assert_eq!(kind(&t, &keys), "invalid-key");
    let keys = set(vec![es256_jwk(&json!({"use": "sig", "alg": "ES256"}))]);
    assert!(jws::verify(&t, &keys).is_ok());
}

#[test]
fn ecdsa_signatures_are_jose_r_s_of_64_bytes() {
    let keys = set(vec![es256_jwk(&json!({}))]);
    let good = token(r#"{"alg":"ES256"}"#, CLAIMS, es256);
    let parsed = CompactJws::parse(&good).unwrap();
    let sig = parsed.signature();
    let der: p256::ecdsa::DerSignature = p256::ecdsa::Signature::from_slice(sig).unwrap().to_der();
    for bad in [
        der.as_bytes().to_vec(),                // DER, as some libraries send
        [&[0u8][..], sig].concat(),             // 65 bytes
        sig[..63].to_vec(),                     // 63 bytes
        [&[0u8; 32][..], &sig[32..]].concat(),  // r = 0
        [&sig[..32], &[0xff; 32][..]].concat(), // s >= n
        Vec::new(),
    ] {
        let t = format!("{}.{}", parsed.signing_input(), b64::encode(&bad));
        assert_eq!(kind(&t, &keys), "bad-signature");
    }
}

#[test]
fn compact_form_is_strict() {
    let keys = set(vec![es256_jwk(&json!({}))]);
    let good = token(r#"{"alg":"ES256"}"#, CLAIMS, es256);
    assert_eq!(CompactJws::parse(&good).unwrap().to_compact(), good);
    let (h, rest) = good.split_once('.').unwrap();
    for bad in [
        format!("{good}."),     // four parts
        rest.to_owned(),        // two parts
        format!("{h}=.{rest}"), // padding
        format!(" {good}"),     // whitespace
        format!("{good}\n"),
        format!("{}.{rest}", b64::encode(b"[]")), // header not an object
        format!("{}.{rest}", b64::encode(br#"{"alg":1}"#)),
        format!("{}.{rest}", b64::encode(br#"{"kid":"x"}"#)),
        format!("{}.{rest}", b64::encode(b"{\"alg\":\"ES256\"")),
        format!("{}.{rest}", b64::encode(br#"{"alg":"ES256","typ":7}"#)),
        "a".repeat(MAX_TOKEN_BYTES + 1),
        String::new(),
        "..".to_owned(),
    ] {
        assert_eq!(kind(&bad, &keys), "malformed", "{bad:.80}");
    }
}

#[test]
fn eddsa_is_strict() {
    let keys = set(vec![ed_jwk("ed")]);
    let good = token(r#"{"alg":"EdDSA"}"#, CLAIMS, eddsa);
    assert!(jws::verify(&good, &keys).is_ok());
    let parsed = CompactJws::parse(&good).unwrap();
    // S + L (non-canonical S), which verify_strict refuses.
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut sig = parsed.signature().to_vec();
    let mut carry = 0u16;
    for i in 0..32 {
        let s = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
        sig[32 + i] = (s & 0xff) as u8;
        carry = s >> 8;
    }
    let t = format!("{}.{}", parsed.signing_input(), b64::encode(&sig));
    assert_eq!(kind(&t, &keys), "bad-signature");
}
