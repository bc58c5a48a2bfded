//! The committed vectors of independent implementations (jwcrypto 1.6.1,
//! pyca/cryptography; `vectors/jose/generate.py`), walked entry by entry.
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use custody_jose::jws::CompactJws;
use custody_jose::kdf::{concat_kdf, key_data_len};
use custody_jose::{Algorithm, Jwk, JwkSet, Validation, b64, jws, jwt};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/../../vectors/jose/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn jwk(v: &Value) -> Jwk {
    Jwk::from_json(v.to_string().as_bytes()).unwrap()
}

fn set_of(v: &Value) -> JwkSet {
    JwkSet::from_keys(vec![jwk(v)]).unwrap()
}

#[test]
fn rfc_examples_verify() {
    let v = load("jws.json");
    let rfc = v["rfc"].as_array().unwrap();
    assert_eq!(rfc.len(), 3);
    for ex in rfc {
        let name = ex["name"].as_str().unwrap();
        let token = ex["token"].as_str().unwrap();
        let verified =
            jws::verify(token, &set_of(&ex["jwk"])).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            b64::encode(verified.payload()),
            ex["payload"].as_str().unwrap(),
            "{name}"
        );
        // A flipped bit of the signature and of the payload are refused.
        let parsed = CompactJws::parse(token).unwrap();
        assert_eq!(parsed.to_compact(), token);
        let mut sig = parsed.signature().to_vec();
        sig[7] ^= 1;
        let (input, _) = token.rsplit_once('.').unwrap();
        let bad = format!("{input}.{}", b64::encode(&sig));
        assert_eq!(
            jws::verify(&bad, &set_of(&ex["jwk"])).unwrap_err().kind(),
            "bad-signature",
            "{name}"
        );
    }
}

#[test]
fn rfc7638_thumbprints() {
    let v = load("jws.json");
    let cases = v["thumbprints"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let key = jwk(&case["jwk"]);
        assert_eq!(key.thumbprint(), case["thumbprint"].as_str().unwrap());
        // Optional members (kid, alg, use) do not enter the thumbprint.
        let bare = key.clone().with_kid("other");
        assert_eq!(bare.thumbprint(), key.thumbprint());
        // Written and read back: the same key.
        assert_eq!(Jwk::from_json(key.to_json().as_bytes()).unwrap(), key);
    }
}

#[test]
fn jwcrypto_tokens_verify_with_their_claims() {
    let v = load("jws.json");
    let now = v["now"].as_u64().unwrap();
    let tokens = v["tokens"].as_array().unwrap();
    let (mut high, mut low) = (0, 0);
    for t in tokens {
        let alg = t["alg"].as_str().unwrap();
        let key = jwk(&t["jwk"]);
        // jwcrypto's kid is the key's RFC 7638 thumbprint.
        assert_eq!(Some(key.thumbprint().as_str()), t["jwk"]["kid"].as_str());
        assert_eq!(
            key.verification_algorithm().unwrap(),
            Algorithm::from_name(alg).unwrap()
        );
        let keys = JwkSet::from_keys(vec![key]).unwrap();
        let token = t["token"].as_str().unwrap();
        let validation = Validation::new(now + 1)
            .with_issuer("https://issuer.example")
            .with_audience("payments");
        let jwt = jwt::verify(token, &keys, &validation).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(
            &Value::Object(jwt.claims().members().clone()),
            &t["claims"],
            "{alg}"
        );
        assert_eq!(jwt.header().alg(), alg);
        match t.get("high_s").and_then(Value::as_bool) {
            Some(true) => high += 1,
            Some(false) => low += 1,
            None => {}
        }
    }
    assert!(
        high > 0 && low > 0,
        "both halves of s: {high} high, {low} low"
    );
    assert_eq!(tokens.len(), 24);
}

#[test]
fn es256k_both_halves_of_s_verify() {
    // (r, s) and (r, n - s) for every ES256K token: both verify.
    let n =
        hex::decode("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141").unwrap();
    let v = load("jws.json");
    for t in v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["alg"] == "ES256K")
    {
        let keys = set_of(&t["jwk"]);
        let token = t["token"].as_str().unwrap();
        let parsed = CompactJws::parse(token).unwrap();
        let sig = parsed.signature();
        let mut flipped = sig[..32].to_vec();
        flipped.extend(sub_be(&n, &sig[32..]));
        let other = format!("{}.{}", parsed.signing_input(), b64::encode(&flipped));
        jws::verify(token, &keys).unwrap();
        jws::verify(&other, &keys).unwrap();
    }
}

/// a - b for 32-byte big-endian a > b.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = i16::from(a[i]) - i16::from(b[i]) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = u8::try_from(d).unwrap();
    }
    out
}

#[test]
fn attacks_are_refused_with_their_kind() {
    let v = load("jws.json");
    let attacks = v["attacks"].as_array().unwrap();
    assert_eq!(attacks.len(), 5);
    for a in attacks {
        let name = a["name"].as_str().unwrap();
        let keys = set_of(&a["jwk"]);
        let token = a["token"].as_str().unwrap();
        let e = jws::verify(token, &keys).unwrap_err();
        assert_eq!(e.kind(), a["error"].as_str().unwrap(), "{name}: {e}");
        let validation = Validation::new(v["now"].as_u64().unwrap()).with_audience("payments");
        assert_eq!(
            jwt::verify(token, &keys, &validation).unwrap_err(),
            e,
            "{name}"
        );
    }
}

#[test]
fn concat_kdf_matches_pyca_cryptography() {
    let v = load("concat_kdf.json");
    let vectors = v["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 22);
    let mut leading = 0;
    for t in vectors {
        let alg = t["alg"].as_str().unwrap();
        let bits = t["bits"].as_u64().unwrap();
        assert_eq!(u64::from(key_data_len(alg).unwrap()), bits, "{alg}");
        let z: [u8; 32] = hex::decode(t["z"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let apu = b64::decode(t["apu"].as_str().unwrap(), "apu").unwrap();
        let apv = b64::decode(t["apv"].as_str().unwrap(), "apv").unwrap();
        let key = concat_kdf(&z, alg, &apu, &apv).unwrap();
        assert_eq!(hex::encode(&key[..]), t["key"].as_str().unwrap(), "{alg}");
        assert_eq!(key.len() as u64 * 8, bits);
        if t.get("leading_zero_bytes").is_some() {
            leading += 1;
        }
    }
    assert_eq!(leading, 4);
}

/// rhonabwy#28: the CBC-HMAC algorithms' keydatalen is the whole key (MAC
/// and encryption halves), not the AES key size.
#[test]
fn regression_cbc_keydatalen_is_the_whole_key() {
    assert_eq!(key_data_len("A128CBC-HS256"), Some(256));
    assert_eq!(key_data_len("A256CBC-HS512"), Some(512));
    let v = load("concat_kdf.json");
    for t in v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["alg"].as_str().unwrap().contains("CBC"))
    {
        let z: [u8; 32] = hex::decode(t["z"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let apu = b64::decode(t["apu"].as_str().unwrap(), "apu").unwrap();
        let apv = b64::decode(t["apv"].as_str().unwrap(), "apv").unwrap();
        let alg = t["alg"].as_str().unwrap();
        let key = concat_kdf(&z, alg, &apu, &apv).unwrap();
        assert_eq!(hex::encode(&key[..]), t["key"].as_str().unwrap());
        // The mistake: keydatalen of the AES half only. Its first block
        // differs (keydatalen is hashed), so it is not even a prefix.
        let half = concat_kdf(
            &z,
            if alg == "A128CBC-HS256" {
                "A128GCM"
            } else {
                "A256GCM"
            },
            &apu,
            &apv,
        )
        .unwrap();
        assert_ne!(&key[..half.len()], &half[..]);
    }
}

/// hyperledger-cacti#4409: a shared secret whose big-endian encoding starts
/// with zero bytes must keep them (Z is 32 bytes); the output is
/// cryptography's for the padded Z.
#[test]
fn regression_shared_secret_keeps_leading_zero_bytes() {
    let v = load("concat_kdf.json");
    let cases: Vec<&Value> = v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t.get("leading_zero_bytes").is_some())
        .collect();
    assert_eq!(cases.len(), 4);
    for t in cases {
        let zeros = usize::try_from(t["leading_zero_bytes"].as_u64().unwrap()).unwrap();
        let z: [u8; 32] = hex::decode(t["z"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        assert!(z[..zeros].iter().all(|b| *b == 0) && z[zeros] != 0);
        let alg = t["alg"].as_str().unwrap();
        let key = concat_kdf(&z, alg, b"Alice", b"Bob").unwrap();
        assert_eq!(hex::encode(&key[..]), t["key"].as_str().unwrap(), "{alg}");
    }
}

#[test]
fn concat_kdf_refuses_unknown_algorithms() {
    let z = [7u8; 32];
    for alg in ["", "dir", "A128KW", "a256gcm", "HS256"] {
        assert_eq!(
            concat_kdf(&z, alg, b"", b"").unwrap_err().kind(),
            "unsupported-algorithm"
        );
    }
}
