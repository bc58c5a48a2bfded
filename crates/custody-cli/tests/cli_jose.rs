//! JOSE through the built `custody` binary (shared/CLI.md, "JOSE"):
//! `keystore generate`, `jwt sign`, `jwt verify`, `jwks`, and `totp
//! register --key-id` for keys of any algorithm. Every token is verified
//! independently: ES256 and EdDSA by the `jsonwebtoken` crate, ES256K by
//! k256 (and by Python jwcrypto where $CUSTODY_TEST_PYTHON is set); every
//! error kind and exit code is checked.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers unwrap: a failure is a test failure"
)]

#[path = "support/jose.rs"]
mod jose;
#[path = "support/world.rs"]
mod world;

use std::process::Command;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use jose::{b64, jwcrypto, protected_header, python, thumbprint};
use serde_json::{Value, json};
use world::{Run, World, code_at, custody, custody_in, failure, now, ok};

impl World {
    fn sign(&self, key: &[&str], alg: &str, claims: &Value, extra: &[&str]) -> Run {
        let claims = self.file("claims.json", &claims.to_string());
        let mut args = vec!["jwt", "sign"];
        args.extend_from_slice(key);
        args.extend_from_slice(&["--alg", alg, "--claims", &claims]);
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn verify(&self, token: &str, jwks: &Value, extra: &[&str]) -> Run {
        let t = self.file("token.txt", token);
        let k = self.file("jwks.json", &jwks.to_string());
        let mut args = vec!["jwt", "verify", "--jwt", &t, "--jwks", &k];
        args.extend_from_slice(extra);
        self.run(&args)
    }
}

/// Verifies `token` with an implementation other than custody's: the
/// jsonwebtoken crate for ES256 and EdDSA, k256 (and jwcrypto, where
/// $CUSTODY_TEST_PYTHON is set) for ES256K. Returns the claims.
fn verify_independently(token: &str, jwk: &Value) -> Value {
    let alg = jwk["alg"].as_str().unwrap();
    match alg {
        "ES256" | "EdDSA" => {
            let oracle: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
            let key = jsonwebtoken::DecodingKey::from_jwk(&oracle).unwrap();
            let mut v = jsonwebtoken::Validation::new(if alg == "ES256" {
                jsonwebtoken::Algorithm::ES256
            } else {
                jsonwebtoken::Algorithm::EdDSA
            });
            // custody's own verifier checks `aud`; here the signature and
            // `exp` are what is judged.
            v.validate_aud = false;
            jsonwebtoken::decode::<Value>(token, &key, &v)
                .unwrap()
                .claims
        }
        "ES256K" => {
            use k256::ecdsa::signature::Verifier as _;
            let mut sec1 = vec![4u8];
            sec1.extend(b64(jwk["x"].as_str().unwrap()));
            sec1.extend(b64(jwk["y"].as_str().unwrap()));
            let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();
            let (input, sig) = token.rsplit_once('.').unwrap();
            let sig = k256::ecdsa::Signature::from_slice(&b64(sig)).unwrap();
            assert_eq!(sig.normalize_s(), sig, "ES256K signatures are low-s");
            vk.verify(input.as_bytes(), &sig).unwrap();
            let (_, payload) = input.split_once('.').unwrap();
            let claims: Value = serde_json::from_slice(&b64(payload)).unwrap();
            if let Some(python) = python("the jwcrypto ES256K check") {
                let theirs = jwcrypto(
                    &python,
                    "key = jwk.JWK(**v['jwk'])\n\
                     t = jwt.JWT(jwt=v['jwt'], key=key, algs=['ES256K'])\n\
                     print(t.claims)\n",
                    &json!({"jwk": jwk, "jwt": token}),
                );
                assert_eq!(theirs, claims);
            }
            claims
        }
        other => panic!("alg {other}"),
    }
}

#[test]
fn generated_keys_sign_jwts_that_others_verify_and_jwks_publishes() {
    let w = World::new();
    let claims = json!({"sub": "svc-importer", "aud": "payments", "iss": "custody"});
    let mut published = Vec::new();
    for (alg, crv, kty, jws) in [
        ("secp256k1", "secp256k1", "EC", "ES256K"),
        ("P-256", "P-256", "EC", "ES256"),
        ("Ed25519", "Ed25519", "OKP", "EdDSA"),
    ] {
        let (key_id, jwk) = w.generate(alg);
        assert_eq!(jwk["kty"], kty);
        assert_eq!(jwk["crv"], crv);
        assert_eq!(jwk["alg"], jws);
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"].as_str().unwrap(), thumbprint(&jwk));
        assert!(jwk.get("d").is_none(), "a public JWK only");

        let before = now();
        let out = ok(w.sign(&["--key-id", &key_id], jws, &claims, &["--ttl", "300"]));
        let token = out["jwt"].as_str().unwrap();
        assert_eq!(out["kid"], jwk["kid"]);
        let decoded = verify_independently(token, &jwk);
        assert_eq!(decoded["sub"], "svc-importer");
        let iat = decoded["iat"].as_u64().unwrap();
        assert!(iat >= before && iat <= now());
        assert_eq!(decoded["exp"].as_u64().unwrap(), iat + 300);
        let header = protected_header(token);
        assert_eq!(header, json!({"alg": jws, "kid": jwk["kid"], "typ": "JWT"}));

        // custody verifies it against the JWKS custody publishes.
        let jwks = ok(w.run(&["jwks", "--key-id", &key_id]));
        assert_eq!(jwks, json!({"keys": [jwk.clone()]}));
        let verified = ok(w.verify(
            token,
            &jwks,
            &["--aud", "payments", "--iss", "custody", "--leeway", "5"],
        ));
        assert_eq!(verified["header"], header);
        assert_eq!(verified["claims"], decoded);
        published.push((key_id, jwk));
    }
    // Several keys in one set, in the order given.
    let ids: Vec<&str> = published.iter().map(|(id, _)| id.as_str()).collect();
    let all = ok(w.run(&[
        "jwks", "--key-id", ids[2], "--key-id", ids[0], "--key-id", ids[1],
    ]));
    assert_eq!(
        all,
        json!({"keys": [published[2].1, published[0].1, published[1].1]})
    );
    // The keys survive the process: a later one signs with the same key.
    let again = ok(w.sign(&["--key-id", ids[1]], "ES256", &claims, &["--ttl", "60"]));
    verify_independently(again["jwt"].as_str().unwrap(), &published[1].1);
}

#[test]
fn a_wallet_key_signs_es256k_and_the_alg_must_be_the_keys() {
    let w = World::new();
    let wallet = ["--wallet", "alice@example.com", "--index", "0"];
    // Claims from stdin.
    let claims = json!({"sub": "alice", "exp": now() + 600});
    let r = custody_in(
        &w.ks,
        &[
            "jwt", "sign", wallet[0], wallet[1], wallet[2], wallet[3], "--alg", "ES256K",
            "--claims", "-",
        ],
        Some(&claims.to_string()),
    );
    let out = ok(r);
    // The wallet key's public key, from `derive`, as a JWK.
    let derived = ok(w.run(&["derive", wallet[0], wallet[1], wallet[2], wallet[3]]));
    let public = hex::decode(&derived["publicKey"].as_str().unwrap()[2..]).unwrap();
    let mut jwk = json!({
        "kty": "EC", "crv": "secp256k1", "alg": "ES256K",
        "x": Base64UrlUnpadded::encode_string(&public[1..33]),
        "y": Base64UrlUnpadded::encode_string(&public[33..]),
    });
    jwk["kid"] = Value::String(thumbprint(&jwk));
    assert_eq!(out["kid"], jwk["kid"]);
    let token = out["jwt"].as_str().unwrap();
    assert_eq!(verify_independently(token, &jwk), claims);
    let verified = ok(w.verify(token, &json!({"keys": [jwk]}), &[]));
    assert_eq!(verified["claims"], claims);

    // Another algorithm than the key's: refused before anything is signed.
    for alg in ["ES256", "EdDSA", "RS256", "PS256"] {
        let r = w.sign(&wallet, alg, &claims, &[]);
        assert_eq!(failure(&r), ("algorithm-mismatch", 2), "{alg}");
        assert!(
            r.err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ES256K"),
            "{:?}",
            r.err
        );
    }
    let (p256, _) = w.generate("P-256");
    let r = w.sign(&["--key-id", &p256], "ES256K", &claims, &[]);
    assert_eq!(failure(&r), ("algorithm-mismatch", 2));
    // Not a JWS algorithm custody signs with: bad input.
    for alg in ["HS256", "none", "es256"] {
        let r = w.sign(&wallet, alg, &claims, &[]);
        assert_eq!(failure(&r), ("bad-input", 2), "{alg}");
    }
}

#[test]
fn verification_failures_are_jwt_invalid_or_jwt_expired() {
    let w = World::new();
    let (id, jwk) = w.generate("P-256");
    let (_, other_jwk) = w.generate("P-256");
    let jwks = json!({"keys": [jwk]});
    let sign = |claims: Value| -> String {
        ok(w.sign(&["--key-id", &id], "ES256", &claims, &[]))["jwt"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let good = sign(json!({"sub": "s", "aud": "payments", "iss": "custody", "exp": now() + 600}));
    ok(w.verify(&good, &jwks, &["--aud", "payments", "--iss", "custody"]));

    let expired = sign(json!({"sub": "s", "exp": now() - 100}));
    assert_eq!(failure(&w.verify(&expired, &jwks, &[])), ("jwt-expired", 3));
    // Within the leeway it passes.
    ok(w.verify(&expired, &jwks, &["--leeway", "200"]));

    let (head, rest) = good.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    let mut sig_bytes = b64(sig);
    sig_bytes[5] ^= 1;
    let forged_payload = Base64UrlUnpadded::encode_string(
        json!({"sub": "admin", "exp": now() + 600})
            .to_string()
            .as_bytes(),
    );
    let none_header = Base64UrlUnpadded::encode_string(br#"{"alg":"none","typ":"JWT"}"#);
    for (what, token, extra) in [
        (
            "a flipped signature bit",
            format!(
                "{head}.{payload}.{}",
                Base64UrlUnpadded::encode_string(&sig_bytes)
            ),
            vec![],
        ),
        (
            "another payload",
            format!("{head}.{forged_payload}.{sig}"),
            vec![],
        ),
        ("alg none", format!("{none_header}.{payload}."), vec![]),
        ("not a JWS", "not.a.token!".to_owned(), vec![]),
        ("wrong audience", good.clone(), vec!["--aud", "other"]),
        ("wrong issuer", good.clone(), vec!["--iss", "other"]),
        ("no exp", sign(json!({"sub": "s"})), vec![]),
        (
            "not yet valid",
            sign(json!({"sub": "s", "exp": now() + 600, "nbf": now() + 300})),
            vec![],
        ),
    ] {
        let r = w.verify(&token, &jwks, &extra);
        assert_eq!(failure(&r), ("jwt-invalid", 3), "{what}");
    }
    // A JWKS without the signer's key.
    let r = w.verify(&good, &json!({"keys": [other_jwk]}), &[]);
    assert_eq!(failure(&r), ("jwt-invalid", 3));
    // Bad inputs: a leeway above 300 s, a JWKS that is not one, no file.
    assert_eq!(
        failure(&w.verify(&good, &jwks, &["--leeway", "301"])),
        ("bad-input", 2)
    );
    assert_eq!(
        failure(&w.verify(&good, &json!([1, 2]), &[])),
        ("bad-input", 2)
    );
    let r = w.run(&[
        "jwt",
        "verify",
        "--jwt",
        "/nonexistent/t",
        "--jwks",
        "/nonexistent/k",
    ]);
    assert_eq!(failure(&r), ("bad-input", 2));
    // A token naming an audience is refused unless --aud names one of it.
    assert_eq!(failure(&w.verify(&good, &jwks, &[])), ("jwt-invalid", 3));
    // The token from stdin, with surrounding whitespace.
    let k = w.file("jwks-stdin.json", &jwks.to_string());
    let r = custody_in(
        &w.ks,
        &[
            "jwt", "verify", "--jwt", "-", "--jwks", &k, "--aud", "payments",
        ],
        Some(&format!("{good}\n")),
    );
    assert_eq!(ok(r)["claims"]["sub"], "s");
}

#[test]
fn an_enrolled_p256_key_signs_jwts_only_with_a_fresh_code_and_is_audited() {
    let w = World::new();
    let (id, jwk) = w.generate("P-256");
    let claims = json!({"sub": "svc", "exp": now() + 600});
    // Not enrolled: open.
    ok(w.sign(&["--key-id", &id], "ES256", &claims, &[]));

    let enrol = ok(w.run(&["totp", "register", "--key-id", &id]));
    assert!(
        enrol["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let secret = enrol["secret"].as_str().unwrap().to_owned();

    let r = w.sign(&["--key-id", &id], "ES256", &claims, &[]);
    assert_eq!(failure(&r), ("totp-required", 3));
    let r = w.sign(&["--key-id", &id], "ES256", &claims, &["--code", "000000"]);
    let wrong = code_at(&secret, now()) == "000000";
    if !wrong {
        assert_eq!(failure(&r), ("totp-invalid", 3));
    }
    let code = code_at(&secret, now());
    let out = ok(w.sign(&["--key-id", &id], "ES256", &claims, &["--code", &code]));
    verify_independently(out["jwt"].as_str().unwrap(), &jwk);
    let r = w.sign(&["--key-id", &id], "ES256", &claims, &["--code", &code]);
    assert_eq!(failure(&r), ("totp-replayed", 3));
    // Enrolling it again is refused.
    let r = w.run(&["totp", "register", "--key-id", &id]);
    assert_eq!(failure(&r).1, 1);

    // The audit log: the generation, the enrolment by algorithm and public
    // key, and the JWT (op sign, intent jwt, the key's id and algorithm).
    let log = w.audit();
    let generated: Vec<_> = log.iter().filter(|e| e["op"] == "generate").collect();
    assert_eq!(generated.len(), 1);
    assert_eq!(generated[0]["key"], id.as_str());
    assert_eq!(generated[0]["algorithm"], "P-256");
    let enrolled = log.iter().find(|e| e["op"] == "enrol").unwrap();
    assert_eq!(enrolled["algorithm"], "P-256");
    let jwts: Vec<_> = log
        .iter()
        .filter(|e| e["op"] == "sign" && e["intent"] == "jwt")
        .collect();
    // One open, one with the code; the refusals recorded as refused.
    let successes: Vec<_> = jwts.iter().filter(|e| e["outcome"] == "success").collect();
    assert_eq!(successes.len(), 2, "{jwts:?}");
    for e in &successes {
        assert_eq!(e["key"], id.as_str());
        assert_eq!(e["algorithm"], "P-256");
        assert_eq!(e["scheme"], "ecdsa-p256-sha256");
    }
    assert!(jwts.iter().any(|e| e["outcome"] == "denied"));
}

#[test]
fn every_jose_error_has_its_kind_and_exit_code() {
    let w = World::new();
    let claims = json!({"sub": "s"});
    // keystore generate: an algorithm the keystore does not generate.
    for alg in ["RSA", "p256", "ES256", ""] {
        let r = w.run(&["keystore", "generate", "--alg", alg]);
        assert_eq!(failure(&r), ("bad-input", 2), "{alg}");
    }
    // No keystore / no passphrase.
    let missing = w.root.join("missing");
    let r = custody(&missing, &["keystore", "generate", "--alg", "P-256"]);
    assert_eq!(failure(&r), ("not-found", 1));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
    let out = cmd
        .arg("--keystore")
        .arg(&w.ks)
        .args(["keystore", "generate", "--alg", "P-256"])
        .env_remove("CUSTODY_PASSPHRASE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (id, _) = w.generate("P-256");
    // A wrong passphrase.
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .arg("--keystore")
        .arg(&w.ks)
        .args(["jwks", "--key-id", &id])
        .env("CUSTODY_PASSPHRASE", "not it")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["error"]["kind"], "wrong-passphrase");

    // jwt sign: an unknown key, no key, two keys, claims not an object.
    let r = w.sign(
        &["--key-id", "p256-0000000000000000"],
        "ES256",
        &claims,
        &[],
    );
    assert_eq!(failure(&r), ("not-found", 1));
    let r = w.sign(&[], "ES256", &claims, &[]);
    assert_eq!(failure(&r), ("bad-input", 2));
    let r = w.sign(
        &["--key-id", &id, "--wallet", "a", "--index", "0"],
        "ES256",
        &claims,
        &[],
    );
    assert_eq!(failure(&r), ("bad-input", 2));
    let r = w.sign(&["--key-id", &id], "ES256", &json!([1]), &[]);
    assert_eq!(failure(&r), ("bad-input", 2));
    let r = w.run(&[
        "jwt",
        "sign",
        "--key-id",
        &id,
        "--alg",
        "ES256",
        "--claims",
        "/nonexistent",
    ]);
    assert_eq!(failure(&r), ("bad-input", 2));
    let r = w.sign(&["--key-id", &id], "ES256", &claims, &["--ttl", "x"]);
    assert_eq!(failure(&r), ("bad-input", 2));
    // An unknown backend URI.
    let r = w.sign(&["--key", "gcp-kms:k"], "ES256", &claims, &[]);
    assert_eq!(failure(&r).1, 2);

    // jwks: no key, an unknown key id.
    assert_eq!(failure(&w.run(&["jwks"])), ("bad-input", 2));
    let r = w.run(&["jwks", "--key-id", "p256-0000000000000000"]);
    assert_eq!(failure(&r), ("not-found", 1));

    // totp register --key-id: an unknown key.
    let r = w.run(&["totp", "register", "--key-id", "ed25519-0000000000000000"]);
    assert_eq!(failure(&r), ("not-found", 1));
}
