//! Differential test against the `jsonwebtoken` crate (10.x, RustCrypto
//! backend): tokens it signs with the test-only keys of
//! `vectors/jose/jsonwebtoken_keys.json` verify here with the same claims,
//! tampered ones are refused by both, and the jwcrypto tokens of `jws.json`
//! verify in both.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use custody_jose::{Jwk, JwkSet, Validation, b64, jwt};
use jsonwebtoken::jwk::Jwk as OracleJwk;
use jsonwebtoken::{Algorithm as OracleAlg, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;

fn load(name: &str) -> Value {
    let path = format!("{}/../../vectors/jose/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn oracle_alg(alg: &str) -> OracleAlg {
    match alg {
        "ES256" => OracleAlg::ES256,
        "RS256" => OracleAlg::RS256,
        "PS256" => OracleAlg::PS256,
        "EdDSA" => OracleAlg::EdDSA,
        other => panic!("{other}"),
    }
}

fn encoding_key(alg: &str, der: &[u8]) -> EncodingKey {
    match alg {
        "ES256" => EncodingKey::from_ec_der(der),
        "RS256" | "PS256" => EncodingKey::from_rsa_der(der),
        "EdDSA" => EncodingKey::from_ed_der(der),
        other => panic!("{other}"),
    }
}

/// jsonwebtoken's verdict on `token` under the JWK `jwk`.
fn oracle_verify(
    alg: &str,
    jwk: &Value,
    token: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let oracle_jwk: OracleJwk = serde_json::from_value(jwk.clone()).unwrap();
    let key = DecodingKey::from_jwk(&oracle_jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(oracle_alg(alg));
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    validation.set_audience(&["payments"]);
    validation.set_issuer(&["https://issuer.example"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).map(|d| d.claims)
}

fn claims(i: usize) -> Value {
    json!({
        "iss": "https://issuer.example", "aud": ["payments", "audit"], "sub": "svc-importer",
        "iat": NOW, "nbf": NOW, "exp": NOW + 600, "jti": format!("jsonwebtoken-{i}"),
        "amount": {"value": "1.5", "currency": "ETH"}, "scope": ["sign", "read"],
    })
}

fn validation() -> Validation {
    Validation::new(NOW + 10)
        .with_audience("payments")
        .with_issuer("https://issuer.example")
}

#[test]
fn tokens_made_by_jsonwebtoken_verify_with_equal_claims() {
    let keys = load("jsonwebtoken_keys.json");
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 4);
    for entry in keys {
        let alg = entry["alg"].as_str().unwrap();
        let der = hex::decode(entry["private_der"].as_str().unwrap()).unwrap();
        let jwk = Jwk::from_json(entry["jwk"].to_string().as_bytes()).unwrap();
        let kid = jwk.kid().unwrap().to_owned();
        let set = JwkSet::from_keys(vec![jwk]).unwrap();
        for i in 0..4 {
            let mut header = Header::new(oracle_alg(alg));
            if i % 2 == 0 {
                header.kid = Some(kid.clone());
            }
            let c = claims(i);
            let token = jsonwebtoken::encode(&header, &c, &encoding_key(alg, &der)).unwrap();
            let ours =
                jwt::verify(&token, &set, &validation()).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(Value::Object(ours.claims().members().clone()), c, "{alg}");
            assert_eq!(ours.header().alg(), alg);
            assert_eq!(oracle_verify(alg, &entry["jwk"], &token).unwrap(), c);

            for (n, tampered) in tamper(&token).into_iter().enumerate() {
                let e = jwt::verify(&tampered, &set, &validation()).unwrap_err();
                // A flipped header bit may break its JSON or its kid first;
                // every other change is a bad signature.
                assert!(
                    n == 0 || e.kind() == "bad-signature",
                    "{alg}: {e} for {tampered}"
                );
                assert!(
                    oracle_verify(alg, &entry["jwk"], &tampered).is_err(),
                    "jsonwebtoken accepts {tampered}"
                );
            }
        }
    }
}

/// Variations of `token` that must not verify: a bit of each part flipped,
/// the payload of another claim set, a truncated signature.
fn tamper(token: &str) -> Vec<String> {
    let parts: Vec<&str> = token.split('.').collect();
    let mut out = Vec::new();
    for i in 0..3 {
        let mut bytes = b64::decode(parts[i], "part").unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0x04;
        let mut p: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        p[i] = b64::encode(&bytes);
        out.push(p.join("."));
    }
    let other = b64::encode(claims(99).to_string().as_bytes());
    out.push(format!("{}.{other}.{}", parts[0], parts[2]));
    let sig = b64::decode(parts[2], "sig").unwrap();
    out.push(format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        b64::encode(&sig[..sig.len() - 1])
    ));
    out
}

#[test]
fn jwcrypto_tokens_verify_in_both() {
    let v = load("jws.json");
    for t in v["tokens"].as_array().unwrap() {
        let alg = t["alg"].as_str().unwrap();
        if alg == "ES256K" {
            continue; // jsonwebtoken has no ES256K
        }
        let ours = jwt::verify(
            t["token"].as_str().unwrap(),
            &JwkSet::from_keys(vec![
                Jwk::from_json(t["jwk"].to_string().as_bytes()).unwrap(),
            ])
            .unwrap(),
            &validation(),
        )
        .unwrap();
        let theirs = oracle_verify(alg, &t["jwk"], t["token"].as_str().unwrap()).unwrap();
        assert_eq!(Value::Object(ours.claims().members().clone()), theirs);
    }
}
