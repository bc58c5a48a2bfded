//! JWTs signed through the `KeyBackend` seam: keys of every algorithm held
//! by the software vault behind the audit layer, each token checked by
//! this crate's verifier and by an independent one (`jsonwebtoken` for
//! ES256 and EdDSA, `k256` for ES256K), RFC 8037 A.4 reproduced byte for
//! byte, and the audit record of each signature read back.
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use std::sync::Arc;

use custody_core::{
    Audited, Authorization, DataKey, KekId, KeyAlgorithm, KeyId, KeyRef, KeySigner, LocalKek,
    MemoryAuditLog, PrivateKeyBytes, SharedBackend, Vault, WalletScheme,
};
use custody_jose::sign::{public_jwk, sign_jws, sign_jwt};
use custody_jose::{JwkSet, Validation, b64, jws, jwt};
use serde_json::{Map, Value, json};

const NOW: u64 = 1_800_000_000;
/// RFC 8037 A.1 (the RFC 8032 §7.1 test 1 seed).
const RFC8037_D: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

struct World {
    audit: Arc<MemoryAuditLog>,
    backend: SharedBackend,
}

impl World {
    fn new() -> Self {
        let kek: SharedBackend = Arc::new(LocalKek::from_key(
            KekId::new("test-kek").unwrap(),
            DataKey::new([7; 32]),
        ));
        let mut vault = Vault::new(kek, WalletScheme::Default);
        vault.set_master_seed(&[0x42; 64]).unwrap();
        for (id, alg, secret) in [
            ("ed", KeyAlgorithm::Ed25519, hex::decode(RFC8037_D).unwrap()),
            ("p256", KeyAlgorithm::P256, vec![0x21; 32]),
            ("k1", KeyAlgorithm::Secp256k1, vec![0x31; 32]),
        ] {
            vault
                .insert_algorithm_key(
                    KeyId::new(id).unwrap(),
                    alg,
                    PrivateKeyBytes::from_slice(&secret).unwrap(),
                )
                .unwrap();
        }
        let audit = Arc::new(MemoryAuditLog::new());
        let backend: SharedBackend = Arc::new(Audited::new(Arc::new(vault), audit.clone()));
        Self { audit, backend }
    }

    fn signer(&self, key: KeyRef) -> KeySigner {
        KeySigner::pin(self.backend.clone(), key).wait().unwrap()
    }

    fn stored(&self, id: &str) -> KeySigner {
        self.signer(KeyRef::Stored(KeyId::new(id).unwrap()))
    }
}

fn claims() -> Value {
    json!({"iss": "https://issuer.example", "aud": "payments", "sub": "svc-importer",
           "iat": NOW, "nbf": NOW, "exp": NOW + 600})
}

fn validation() -> Validation {
    Validation::new(NOW)
        .with_audience("payments")
        .with_issuer("https://issuer.example")
}

#[test]
fn rfc_8037_a4_is_reproduced_through_the_seam() {
    let w = World::new();
    let signer = w.stored("ed");
    let mut header = Map::new();
    header.insert("alg".into(), json!("EdDSA"));
    header.insert("kid".into(), Value::Null);
    let token = sign_jws(
        &signer,
        header,
        b"Example of Ed25519 signing",
        &Authorization::none(),
    )
    .wait()
    .unwrap();
    assert_eq!(
        token,
        "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
    // RFC 8037 A.2's public key and A.3's thumbprint.
    let jwk = public_jwk(signer.key()).unwrap();
    assert_eq!(
        jwk.thumbprint(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
    assert_eq!(
        jwk.kid(),
        Some("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k")
    );
}

#[test]
fn each_algorithm_signs_a_jwt_that_two_verifiers_accept() {
    let w = World::new();
    for (id, alg) in [("p256", "ES256"), ("ed", "EdDSA"), ("k1", "ES256K")] {
        let signer = w.stored(id);
        let token = sign_jwt(&signer, &claims(), &Authorization::none())
            .wait()
            .unwrap();
        let jwk = public_jwk(signer.key()).unwrap();
        let keys = JwkSet::from_keys(vec![jwk.clone()]).unwrap();
        // This crate's verifier: the algorithm fixed by the key, the kid
        // its thumbprint, the claims as signed.
        let verified = jwt::verify(&token, &keys, &validation()).unwrap();
        let header = jws::verify(&token, &keys).unwrap();
        assert_eq!(header.header().alg(), alg);
        assert_eq!(header.header().kid(), Some(jwk.thumbprint().as_str()));
        assert_eq!(header.header().typ(), Some("JWT"));
        assert_eq!(
            serde_json::from_slice::<Value>(header.payload()).unwrap(),
            claims()
        );
        assert_eq!(verified.claims().get("sub"), Some(&json!("svc-importer")));
        // An independent verifier.
        match alg {
            "ES256" | "EdDSA" => {
                let oracle_jwk: jsonwebtoken::jwk::Jwk =
                    serde_json::from_str(&jwk.to_json()).unwrap();
                let key = jsonwebtoken::DecodingKey::from_jwk(&oracle_jwk).unwrap();
                let mut v = jsonwebtoken::Validation::new(if alg == "ES256" {
                    jsonwebtoken::Algorithm::ES256
                } else {
                    jsonwebtoken::Algorithm::EdDSA
                });
                v.validate_exp = false;
                v.set_audience(&["payments"]);
                let decoded = jsonwebtoken::decode::<Value>(&token, &key, &v).unwrap();
                assert_eq!(decoded.claims, claims());
            }
            _ => {
                // ES256K: k256 over SHA-256 of the signing input, s low.
                use k256::ecdsa::signature::Verifier as _;
                let (input, sig) = token.rsplit_once('.').unwrap();
                let sig =
                    k256::ecdsa::Signature::from_slice(&b64::decode(sig, "signature").unwrap())
                        .unwrap();
                assert_eq!(sig.normalize_s(), sig, "ES256K signatures are low-s");
                let public = signer.key().secp256k1().unwrap().as_k256();
                k256::ecdsa::VerifyingKey::from(public)
                    .verify(input.as_bytes(), &sig)
                    .unwrap();
            }
        }
        // The audit record: a JWT, by which key, of which algorithm.
        let records = w.audit.records();
        let last = records.last().unwrap().event();
        assert_eq!(last.field("intent"), Some("jwt"));
        assert_eq!(last.field("key"), Some(id));
        let expected_algorithm = match alg {
            "ES256" => Some("P-256"),
            "EdDSA" => Some("Ed25519"),
            _ => None,
        };
        assert_eq!(last.field("algorithm"), expected_algorithm);
    }
}

#[test]
fn a_wallet_key_signs_es256k_and_a_tampered_token_fails() {
    let w = World::new();
    let signer = w.signer(KeyRef::Wallet {
        name: "alice@example.com".into(),
        index: 0,
    });
    let token = sign_jwt(&signer, &claims(), &Authorization::none())
        .wait()
        .unwrap();
    let keys = JwkSet::from_keys(vec![public_jwk(signer.key()).unwrap()]).unwrap();
    assert!(jwt::verify(&token, &keys, &validation()).is_ok());
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut bytes = b64::decode(sig, "signature").unwrap();
    bytes[5] ^= 1;
    let tampered = format!("{head}.{}", b64::encode(&bytes));
    assert_eq!(
        jwt::verify(&tampered, &keys, &validation())
            .unwrap_err()
            .kind(),
        "bad-signature"
    );
}

#[test]
fn the_header_cannot_name_another_algorithm_or_an_extension() {
    let w = World::new();
    let signer = w.stored("p256");
    for (member, value, kind) in [
        ("alg", json!("EdDSA"), "algorithm-mismatch"),
        ("alg", json!("none"), "algorithm-mismatch"),
        ("crit", json!(["exp"]), "malformed"),
        ("b64", json!(false), "malformed"),
    ] {
        let mut header = Map::new();
        header.insert(member.into(), value);
        let err = sign_jws(&signer, header, b"{}", &Authorization::none())
            .wait()
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{member}");
    }
    // Claims must be an object.
    assert_eq!(
        sign_jwt(&signer, &json!([1, 2]), &Authorization::none())
            .wait()
            .unwrap_err()
            .kind(),
        "malformed"
    );
    // Nothing was signed for the refused requests.
    assert!(w.audit.records().is_empty());
}
