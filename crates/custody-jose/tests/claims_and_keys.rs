//! JWT claim checks at the edges of the leeway, NumericDate typing, and
//! the JWK / JWK Set checks.
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use custody_jose::jwk::{MAX_JWKS_KEYS, MAX_RSA_BITS};
use custody_jose::jwt::MAX_LEEWAY;
use custody_jose::{Claims, Jwk, JwkSet, KeyType, Validation, b64};
use serde_json::{Value, json};

fn claims(v: &Value) -> Claims {
    Claims::from_json(v.to_string().as_bytes()).unwrap()
}

fn check(v: &Value, validation: &Validation) -> Result<(), &'static str> {
    claims(v).validate(validation).map_err(|e| e.kind())
}

const EXP: u64 = 1_800_000_600;

#[test]
fn leeway_is_bounded_at_construction() {
    assert!(Validation::new(0).with_leeway(MAX_LEEWAY).is_ok());
    assert_eq!(
        Validation::new(0)
            .with_leeway(MAX_LEEWAY + 1)
            .unwrap_err()
            .kind(),
        "leeway-too-large"
    );
    assert_eq!(
        Validation::new(0).with_leeway(u64::MAX).unwrap_err().kind(),
        "leeway-too-large"
    );
}

/// Documented choice: valid while `now < exp + leeway` (RFC 7519 §4.1.4,
/// "before"); the second `exp + leeway` itself is expired.
#[test]
fn exp_edges_with_and_without_leeway() {
    let c = json!({"exp": EXP});
    for leeway in [0, 1, 60, MAX_LEEWAY] {
        let at = |now| Validation::new(now).with_leeway(leeway).unwrap();
        assert_eq!(check(&c, &at(EXP + leeway - 1)), Ok(()), "leeway {leeway}");
        assert_eq!(
            check(&c, &at(EXP + leeway)),
            Err("expired"),
            "leeway {leeway}"
        );
        assert_eq!(
            check(&c, &at(EXP + leeway + 1)),
            Err("expired"),
            "leeway {leeway}"
        );
    }
    // No overflow at the end of time.
    let c = json!({"exp": u64::MAX});
    assert_eq!(
        check(&c, &Validation::new(u64::MAX - 1).with_leeway(300).unwrap()),
        Ok(())
    );
    assert_eq!(check(&c, &Validation::new(u64::MAX)), Err("expired"));
}

/// `nbf` is inclusive: valid from `now + leeway == nbf`.
#[test]
fn nbf_edges() {
    let nbf = 1_800_000_000;
    let c = json!({"exp": EXP, "nbf": nbf});
    for leeway in [0, 30, MAX_LEEWAY] {
        let at = |now| Validation::new(now).with_leeway(leeway).unwrap();
        assert_eq!(check(&c, &at(nbf - leeway - 1)), Err("not-yet-valid"));
        assert_eq!(check(&c, &at(nbf - leeway)), Ok(()));
        assert_eq!(check(&c, &at(nbf)), Ok(()));
    }
}

#[test]
fn iat_in_the_future_beyond_leeway_is_refused() {
    let iat = 1_800_000_000;
    let c = json!({"exp": EXP, "iat": iat});
    let at = |now, leeway| Validation::new(now).with_leeway(leeway).unwrap();
    assert_eq!(check(&c, &at(iat - 1, 0)), Err("issued-in-future"));
    assert_eq!(check(&c, &at(iat, 0)), Ok(()));
    assert_eq!(check(&c, &at(iat - 10, 10)), Ok(()));
    assert_eq!(check(&c, &at(iat - 11, 10)), Err("issued-in-future"));
}

#[test]
fn exp_is_required_unless_waived() {
    let c = json!({"sub": "x"});
    assert_eq!(check(&c, &Validation::new(5)), Err("missing-expiry"));
    assert_eq!(
        check(&c, &Validation::new(5).with_require_exp(false)),
        Ok(())
    );
}

#[test]
fn numeric_dates_are_non_negative_integers() {
    for bad in [
        json!(1.8e9),
        json!(1_800_000_000.5),
        json!(-1),
        json!("1800000000"),
        json!(null),
        json!(true),
        json!([1]),
    ] {
        for name in ["exp", "nbf", "iat"] {
            let c = json!({ name: bad });
            let e = Claims::from_json(c.to_string().as_bytes()).unwrap_err();
            assert_eq!(e.kind(), "malformed", "{name}: {bad}");
        }
    }
    // The text forms serde_json reads as floats are refused too.
    for text in [
        r#"{"exp":1800000600.0}"#,
        r#"{"exp":1.8000006e9}"#,
        r#"{"exp":18000006E2}"#,
    ] {
        assert_eq!(
            Claims::from_json(text.as_bytes()).unwrap_err().kind(),
            "malformed",
            "{text}"
        );
    }
    assert_eq!(claims(&json!({"exp": 0})).exp(), Some(0));
    assert_eq!(claims(&json!({"exp": u64::MAX})).exp(), Some(u64::MAX));
}

#[test]
fn audience_string_or_array() {
    let v = Validation::new(0)
        .with_require_exp(false)
        .with_audience("payments");
    assert_eq!(check(&json!({"aud": "payments"}), &v), Ok(()));
    assert_eq!(check(&json!({"aud": ["audit", "payments"]}), &v), Ok(()));
    assert_eq!(
        check(&json!({"aud": "Payments"}), &v),
        Err("wrong-audience")
    );
    assert_eq!(check(&json!({"aud": []}), &v), Err("wrong-audience"));
    assert_eq!(check(&json!({"aud": ["audit"]}), &v), Err("wrong-audience"));
    assert_eq!(check(&json!({}), &v), Err("wrong-audience"));
    // An aud the verifier does not expect: the token is not for it.
    let none = Validation::new(0).with_require_exp(false);
    assert_eq!(
        check(&json!({"aud": "payments"}), &none),
        Err("wrong-audience")
    );
    assert_eq!(check(&json!({}), &none), Ok(()));
    for bad in [
        json!({"aud": 1}),
        json!({"aud": ["a", 1]}),
        json!({"aud": {"a": 1}}),
    ] {
        assert_eq!(
            Claims::from_json(bad.to_string().as_bytes())
                .unwrap_err()
                .kind(),
            "malformed"
        );
    }
    assert_eq!(claims(&json!({"aud": ["a", "b"]})).aud(), ["a", "b"]);
}

#[test]
fn issuer_exact() {
    let v = Validation::new(0)
        .with_require_exp(false)
        .with_issuer("https://issuer.example");
    assert_eq!(check(&json!({"iss": "https://issuer.example"}), &v), Ok(()));
    assert_eq!(
        check(&json!({"iss": "https://issuer.example/"}), &v),
        Err("wrong-issuer")
    );
    assert_eq!(check(&json!({}), &v), Err("wrong-issuer"));
    for bad in [json!({"iss": 1}), json!({"sub": []}), json!({"jti": null})] {
        assert_eq!(
            Claims::from_json(bad.to_string().as_bytes())
                .unwrap_err()
                .kind(),
            "malformed"
        );
    }
}

#[test]
fn claims_are_a_strict_object() {
    for bad in [
        &b"[]"[..],
        b"\"x\"",
        b"{\"a\":1,\"a\":1}",
        b"{",
        b"{} {}",
        b"",
    ] {
        assert_eq!(Claims::from_json(bad).unwrap_err().kind(), "malformed");
    }
}

fn ec(crv: &str) -> Value {
    // RFC 7517 A.1's P-256 key, and a secp256k1 key (the generator 2G).
    match crv {
        "P-256" => json!({"kty": "EC", "crv": "P-256",
            "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}),
        _ => json!({"kty": "EC", "crv": "secp256k1",
            "x": b64::encode(&hex::decode("c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5").unwrap()),
            "y": b64::encode(&hex::decode("1ae168fea63dc339a3c58419466ceaeef7f632653266d0e1236431a950cfe52a").unwrap())}),
    }
}

fn rsa() -> Value {
    let v: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../vectors/jose/jws.json"
        ))
        .unwrap(),
    )
    .unwrap();
    v["rfc"][0]["jwk"].clone()
}

fn key_err(v: &Value) -> &'static str {
    Jwk::from_json(v.to_string().as_bytes()).unwrap_err().kind()
}

fn with(mut v: Value, name: &str, value: Value) -> Value {
    v[name] = value;
    v
}

#[test]
fn keys_of_every_type_read_and_write_back() {
    for (v, t) in [
        (ec("P-256"), KeyType::P256),
        (ec("secp256k1"), KeyType::Secp256k1),
        (rsa(), KeyType::Rsa),
    ] {
        let key = Jwk::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(key.key_type(), t);
        let again = Jwk::from_json(key.to_json().as_bytes()).unwrap();
        assert_eq!(again, key);
        assert_eq!(again.thumbprint(), key.thumbprint());
    }
}

#[test]
fn private_and_symmetric_keys_are_refused() {
    for m in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert_eq!(
            key_err(&with(ec("P-256"), m, json!("AAAA"))),
            "invalid-key",
            "{m}"
        );
        assert_eq!(
            key_err(&with(rsa(), m, json!("AAAA"))),
            "invalid-key",
            "{m}"
        );
    }
    assert_eq!(
        key_err(&json!({"kty": "oct", "k": "c2VjcmV0"})),
        "invalid-key"
    );
    assert_eq!(key_err(&json!({"kty": "oct"})), "invalid-key");
    assert_eq!(
        key_err(&json!({"kty": "oct", "alg": "HS256"})),
        "invalid-key"
    );
}

#[test]
fn ec_points_are_checked() {
    let good = ec("P-256");
    // Off the curve: y + 1.
    let mut y = b64::decode(good["y"].as_str().unwrap(), "y").unwrap();
    y[31] ^= 1;
    assert_eq!(
        key_err(&with(good.clone(), "y", json!(b64::encode(&y)))),
        "invalid-key"
    );
    // 31 and 33 bytes.
    assert_eq!(
        key_err(&with(good.clone(), "x", json!(b64::encode(&[1; 31])))),
        "invalid-key"
    );
    assert_eq!(
        key_err(&with(good.clone(), "x", json!(b64::encode(&[1; 33])))),
        "invalid-key"
    );
    // x = p (non-canonical field element).
    let p =
        hex::decode("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff").unwrap();
    assert_eq!(
        key_err(&with(good.clone(), "x", json!(b64::encode(&p)))),
        "invalid-key"
    );
    // The secp256k1 point on P-256, and missing or mistyped members.
    let k1 = ec("secp256k1");
    assert_eq!(
        key_err(&with(k1.clone(), "crv", json!("P-256"))),
        "invalid-key"
    );
    assert_eq!(key_err(&with(good.clone(), "x", json!(1))), "malformed");
    assert_eq!(
        key_err(&with(good.clone(), "x", json!("MKBC+NIc"))),
        "malformed"
    );
    let mut no_y = good.clone();
    no_y.as_object_mut().unwrap().remove("y");
    assert_eq!(key_err(&no_y), "malformed");
    assert_eq!(key_err(&with(good, "alg", json!("ES256K"))), "invalid-key");
    assert_eq!(key_err(&with(k1, "alg", json!("ES256"))), "invalid-key");
}

#[test]
fn ed25519_keys_are_checked() {
    // RFC 8037 A.2.
    let good =
        json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    assert_eq!(
        Jwk::from_json(good.to_string().as_bytes())
            .unwrap()
            .key_type(),
        KeyType::Ed25519
    );
    // The identity (small order) and a point of order 8.
    let identity = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };
    assert_eq!(
        key_err(&with(good.clone(), "x", json!(b64::encode(&identity)))),
        "invalid-key"
    );
    let order8 =
        hex::decode("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a").unwrap();
    assert_eq!(
        key_err(&with(good.clone(), "x", json!(b64::encode(&order8)))),
        "invalid-key"
    );
    // Non-canonical y = p + 1 (the identity again, written long).
    let p1 =
        hex::decode("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f").unwrap();
    assert_eq!(
        key_err(&with(good.clone(), "x", json!(b64::encode(&p1)))),
        "invalid-key"
    );
    assert_eq!(
        key_err(&with(good.clone(), "alg", json!("ES256"))),
        "invalid-key"
    );
    assert_eq!(
        key_err(&with(good, "x", json!(b64::encode(&[9; 31])))),
        "invalid-key"
    );
}

#[test]
fn rsa_keys_are_checked() {
    let good = rsa();
    let n = b64::decode(good["n"].as_str().unwrap(), "n").unwrap();
    let set_n = |n: &[u8]| with(good.clone(), "n", json!(b64::encode(n)));
    let set_e = |e: &[u8]| with(good.clone(), "e", json!(b64::encode(e)));
    // A leading zero octet in n or e.
    assert_eq!(key_err(&set_n(&[&[0][..], &n].concat())), "invalid-key");
    assert_eq!(key_err(&set_e(&[0, 1, 0, 1])), "invalid-key");
    // 2047 bits: too small; an even modulus.
    assert_eq!(
        key_err(&set_n(&[&[0x7f][..], &n[1..]].concat())),
        "invalid-key"
    );
    let mut even = n.clone();
    *even.last_mut().unwrap() &= 0xfe;
    assert_eq!(key_err(&set_n(&even)), "invalid-key");
    // Above 8192 bits.
    let big = vec![0xff; MAX_RSA_BITS / 8 + 1];
    assert_eq!(key_err(&set_n(&big)), "invalid-key");
    // e even, e = 1, empty e, e above 2^33 - 1.
    assert_eq!(key_err(&set_e(&[1, 0, 0])), "invalid-key");
    assert_eq!(key_err(&set_e(&[1])), "invalid-key");
    assert_eq!(key_err(&set_e(&[])), "invalid-key");
    assert_eq!(key_err(&set_e(&[3, 0, 0, 0, 1])), "invalid-key");
    assert_eq!(key_err(&set_e(&[1, 0, 0, 0, 0, 0, 1])), "invalid-key");
    assert_eq!(
        key_err(&with(good.clone(), "alg", json!("ES256"))),
        "invalid-key"
    );
    // A well-formed key for an algorithm verified nowhere here.
    assert_eq!(
        key_err(&with(good, "alg", json!("RS512"))),
        "unsupported-algorithm"
    );
}

#[test]
fn key_sets_skip_unknown_keys_and_refuse_bad_known_ones() {
    let x25519 =
        json!({"kty": "OKP", "crv": "X25519", "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"});
    let p384 = json!({"kty": "EC", "crv": "P-384", "x": "AAAA", "y": "AAAA"});
    let rs512 = with(rsa(), "alg", json!("RS512"));
    let future = json!({"kty": "ML-DSA", "pub": "AAAA"});
    let doc = json!({"keys": [x25519, ec("P-256"), p384, rs512, future, rsa()], "other": 1});
    let set = JwkSet::from_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.keys().len(), 2);
    assert_eq!(set.skipped(), 4);
    let again = JwkSet::from_json(set.to_json().as_bytes()).unwrap();
    assert_eq!(again.keys(), set.keys());
    assert_eq!(again.skipped(), 0);

    // A malformed known key fails the set; so do a private key, an oct
    // key, a duplicate kid, a non-object entry, and the wrong shapes.
    let bad_p256 = with(ec("P-256"), "x", json!(b64::encode(&[1; 31])));
    for keys in [
        json!([bad_p256]),
        json!([with(ec("P-256"), "d", json!("AAAA"))]),
        json!([with(x25519_private(), "kty", json!("OKP"))]),
        json!([{"kty": "oct", "k": "AAAA"}]),
        json!([
            with(ec("P-256"), "kid", json!("a")),
            with(rsa(), "kid", json!("a"))
        ]),
        json!([1]),
        json!([{"crv": "P-256"}]),
    ] {
        let doc = json!({ "keys": keys });
        assert!(
            JwkSet::from_json(doc.to_string().as_bytes()).is_err(),
            "{doc}"
        );
    }
    for doc in [
        json!({}),
        json!({"keys": {}}),
        json!([]),
        json!({"keys": null}),
    ] {
        assert_eq!(
            JwkSet::from_json(doc.to_string().as_bytes())
                .unwrap_err()
                .kind(),
            "malformed"
        );
    }
    let many = json!({"keys": vec![json!({"kty": "unknown"}); MAX_JWKS_KEYS + 1]});
    assert_eq!(
        JwkSet::from_json(many.to_string().as_bytes())
            .unwrap_err()
            .kind(),
        "malformed"
    );
    let dup = br#"{"keys":[],"keys":[]}"#;
    assert_eq!(JwkSet::from_json(dup).unwrap_err().kind(), "malformed");
}

/// An X25519 key carrying its private half: refused even though its curve
/// is unknown here (private material in a published set is an error).
fn x25519_private() -> Value {
    json!({"kty": "OKP", "crv": "X25519", "x": "AAAA", "d": "AAAA"})
}

#[test]
fn thumbprint_ignores_optional_members_and_member_order() {
    let a = Jwk::from_json(
        br#"{"y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","kty":"EC","crv":"P-256","use":"enc","kid":"1"}"#,
    )
    .unwrap();
    let b = Jwk::from_json(ec("P-256").to_string().as_bytes()).unwrap();
    assert_eq!(a.thumbprint(), b.thumbprint());
    assert_eq!(
        a.thumbprint(),
        "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
    );
    assert_ne!(a, b);
}
