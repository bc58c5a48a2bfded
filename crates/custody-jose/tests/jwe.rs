//! Sealed secrets (compact JWE): jwcrypto's JWEs (`vectors/jose/jwe.json`,
//! written by `vectors/jose/generate.py`) opened through `Audited(Vault)`,
//! ours opened by jwcrypto (when `$CUSTODY_TEST_PYTHON` is set), the
//! invalid-curve and parser regressions, the scope, the one opaque
//! decryption error, and a gate's refusal kept visible.
#![expect(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

use std::sync::Arc;

use custody_core::{
    AnyPublicKey, AuditOutcome, Audited, Authorization, DataKey, DecryptRequest, Decrypted,
    DecryptingBackend, Decryption, Denial, Error, KekId, KeyAlgorithm, KeyBackend, KeyId, KeyRef,
    LocalKek, MemoryAuditLog, Pending, PinnedKey, PrivateKeyBytes, RsaPublicKey, SecretVec,
    SharedBackend, SigningBackend, Vault, WalletScheme,
};
use custody_jose::jwe::{self, CompactJwe, JweAlgorithm, OpenError, Recipient, Scope};
use custody_jose::{JoseError, b64};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const KEY: &str = "sealing-p256";
const OTHER: &str = "sealing-other";

fn load() -> Value {
    let path = format!("{}/../../vectors/jose/jwe.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

struct World {
    v: Value,
    audit: Arc<MemoryAuditLog>,
    backend: SharedBackend,
    key: PinnedKey,
    other: PinnedKey,
    scope: Scope,
}

fn vault_with_keys(v: &Value) -> Vault {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([7; 32]),
    ));
    let vault = Vault::new(kek, WalletScheme::Default);
    let d = b64::decode(v["keys"]["p256"]["d"].as_str().unwrap(), "d").unwrap();
    vault
        .insert_algorithm_key(
            KeyId::new(KEY).unwrap(),
            KeyAlgorithm::P256,
            PrivateKeyBytes::from_slice(&d).unwrap(),
        )
        .unwrap();
    vault
        .insert_algorithm_key(
            KeyId::new(OTHER).unwrap(),
            KeyAlgorithm::P256,
            PrivateKeyBytes::from_slice(&[0x42; 32]).unwrap(),
        )
        .unwrap();
    vault
}

fn pin(backend: &SharedBackend, id: &str) -> PinnedKey {
    backend
        .signing()
        .unwrap()
        .pin(&KeyRef::Stored(KeyId::new(id).unwrap()))
        .wait()
        .unwrap()
}

fn world_over(wrap: impl FnOnce(Vault) -> SharedBackend) -> World {
    let v = load();
    let audit = Arc::new(MemoryAuditLog::new());
    let inner = wrap(vault_with_keys(&v));
    let backend: SharedBackend = Arc::new(Audited::new(inner, audit.clone()));
    let key = pin(&backend, KEY);
    let other = pin(&backend, OTHER);
    let scope = Scope::new(v["scope"].as_str().unwrap()).unwrap();
    World {
        v,
        audit,
        backend,
        key,
        other,
        scope,
    }
}

fn world() -> World {
    world_over(|vault| Arc::new(vault))
}

impl World {
    fn open(&self, token: &str) -> Result<Vec<u8>, OpenError> {
        self.open_as(token, &self.scope)
    }

    fn open_as(&self, token: &str, scope: &Scope) -> Result<Vec<u8>, OpenError> {
        jwe::open(
            self.backend.as_ref(),
            &self.key,
            token,
            scope,
            &Authorization::none(),
        )
        .wait()
        .map(|s| s.expose_secret().to_vec())
    }

    fn recipient(&self) -> Recipient {
        Recipient::from_pinned(&self.key).unwrap()
    }
}

#[test]
fn jwcrypto_ecdh_jwes_open_through_audited_vault_with_one_record_each() {
    let w = world();
    let mut opened = 0;
    for entry in w.v["sealed"].as_array().unwrap() {
        let alg = entry["alg"].as_str().unwrap();
        if alg == "RSA-OAEP-256" {
            continue;
        }
        let token = entry["jwe"].as_str().unwrap();
        let plaintext = w.open(token).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(
            b64::encode(&plaintext),
            entry["plaintext"].as_str().unwrap()
        );
        let parsed = CompactJwe::parse(token).unwrap();
        assert_eq!(parsed.header().alg().name(), alg);
        assert_eq!(
            b64::encode(parsed.header().apu()),
            entry["apu"].as_str().unwrap()
        );
        assert_eq!(
            b64::encode(parsed.header().apv()),
            entry["apv"].as_str().unwrap()
        );
        // The record: op decrypt, intent unseal, the scope, the digest of
        // the whole compact JWE; never the plaintext.
        let records = w.audit.records();
        let event = records.last().unwrap().event();
        assert_eq!(event.op().as_str(), "decrypt");
        assert_eq!(event.outcome(), AuditOutcome::Success);
        assert_eq!(event.field("intent"), Some("unseal"));
        assert_eq!(event.field("scheme"), Some("ecdh-p256"));
        assert_eq!(event.field("key"), Some(KEY));
        assert_eq!(event.field("scope"), Some("importer/api-keys"));
        let digest = hex::encode(Sha256::digest(token.as_bytes()));
        assert_eq!(event.field("digest"), Some(digest.as_str()));
        let hex_plaintext = hex::encode(&plaintext);
        assert!(event.fields().all(|(_, v)| !v.contains(&hex_plaintext)));
        opened += 1;
    }
    assert_eq!(opened, 8, "3 ECDH-ES, 3 ECDH-ES+A256KW, 2 with apu/apv");
    assert_eq!(w.audit.records().len(), 8);
}

/// A **test-only stand-in** for a backend holding an RSA key (KMS
/// `Decrypt` with `RSAES_OAEP_SHA_256`, a PKCS#11 token): the `rsa`
/// crate's private-key OAEP decryption with the vector's test key. Never
/// in a library: the software vault holds no RSA key (RUSTSEC-2023-0071).
struct RsaStandIn {
    private: rsa::PrivateKey,
    key: PinnedKey,
}

impl std::fmt::Debug for RsaStandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaStandIn")
    }
}

impl KeyBackend for RsaStandIn {
    fn name(&self) -> &str {
        "rsa-stand-in"
    }
    fn decrypting(&self) -> Option<&dyn DecryptingBackend> {
        Some(self)
    }
}

impl DecryptingBackend for RsaStandIn {
    fn decrypt<'a>(&'a self, request: DecryptRequest<'a>) -> Pending<'a, Result<Decrypted, Error>> {
        let Decryption::RsaOaepSha256 { ciphertext } = request.decryption else {
            return Pending::ready(Err(Error::Unsupported("RSA only")));
        };
        if request.key.public() != self.key.public() {
            return Pending::ready(Err(Error::PublicKeyMismatch));
        }
        Pending::ready(
            self.private
                .decrypt(rsa::Oaep::<Sha256>::new(), ciphertext)
                .map(|cek| Decrypted::new(SecretVec::new(cek)))
                .map_err(|_| Error::DecryptionFailed),
        )
    }
}

/// The stand-in over `der` (PKCS#1), behind the audit layer, and its key.
fn rsa_world(der: &[u8]) -> (Arc<MemoryAuditLog>, SharedBackend, PinnedKey) {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    let private = rsa::PrivateKey::from_pkcs1_der(der).unwrap();
    let public = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(private.as_ref())
        .unwrap()
        .into_vec();
    let key = PinnedKey::with_public(
        KeyRef::Stored(KeyId::new("sealing-rsa").unwrap()),
        None,
        AnyPublicKey::Rsa(RsaPublicKey::from_pkcs1_der(&public).unwrap()),
    );
    let audit = Arc::new(MemoryAuditLog::new());
    let inner = Arc::new(RsaStandIn {
        private,
        key: key.clone(),
    });
    let backend: SharedBackend = Arc::new(Audited::new(inner, audit.clone()));
    (audit, backend, key)
}

fn open_with(
    backend: &SharedBackend,
    key: &PinnedKey,
    token: &str,
    scope: &Scope,
) -> Result<Vec<u8>, OpenError> {
    jwe::open(backend.as_ref(), key, token, scope, &Authorization::none())
        .wait()
        .map(|s| s.expose_secret().to_vec())
}

/// RSA-OAEP-256 JWEs by jwcrypto open through the seam
/// (`Decryption::RsaOaepSha256` with an RSA `PinnedKey`), here through the
/// audit layer over the test-only stand-in; a P-256 key is refused them
/// before anything is asked.
#[test]
fn jwcrypto_rsa_oaep_256_jwes_open_through_the_seam_with_an_rsa_key() {
    let w = world();
    let der = hex::decode(w.v["keys"]["rsa_pkcs1_der"].as_str().unwrap()).unwrap();
    let (audit, backend, key) = rsa_world(&der);
    let mut seen = 0;
    for entry in w.v["sealed"].as_array().unwrap() {
        if entry["alg"] != "RSA-OAEP-256" {
            continue;
        }
        let token = entry["jwe"].as_str().unwrap();
        let parsed = CompactJwe::parse(token).unwrap();
        assert_eq!(parsed.header().alg(), JweAlgorithm::RsaOaep256);
        assert!(parsed.header().epk().is_none());
        assert_eq!(parsed.encrypted_key().len(), 256);
        let plaintext = open_with(&backend, &key, token, &w.scope).unwrap();
        assert_eq!(
            b64::encode(&plaintext),
            entry["plaintext"].as_str().unwrap()
        );
        let records = audit.records();
        let event = records.last().unwrap().event();
        assert_eq!(event.op().as_str(), "decrypt");
        assert_eq!(event.field("intent"), Some("unseal"));
        assert_eq!(event.field("scheme"), Some("rsa-oaep-sha256"));
        assert_eq!(event.field("scope"), Some("importer/api-keys"));
        // A tampered encrypted key (bad OAEP padding) and a tampered tag:
        // the same opaque error.
        for bad in [flip(token, 1), flip(token, 4)] {
            let e = open_with(&backend, &key, &bad, &w.scope).unwrap_err();
            assert!(matches!(e, OpenError::DecryptionFailed), "{e:?}");
        }
        // The P-256 key is not asked an RSA operation.
        assert!(matches!(
            w.open(token),
            Err(OpenError::Jose(JoseError::AlgorithmMismatch))
        ));
        seen += 1;
    }
    assert_eq!(seen, 3);
    assert_eq!(
        audit.records().len(),
        9,
        "3 opens, 6 failures, each recorded"
    );
    assert!(
        w.audit.records().is_empty(),
        "the P-256 backend was never asked"
    );
}

#[test]
fn ours_rsa_oaep_256_open_through_the_seam_and_a_wrong_cek_length_is_opaque() {
    let w = world();
    let der = hex::decode(w.v["keys"]["rsa_pkcs1_der"].as_str().unwrap()).unwrap();
    let (_, backend, key) = rsa_world(&der);
    let recipient = Recipient::from_pinned(&key).unwrap();
    assert_eq!(recipient.default_alg(), JweAlgorithm::RsaOaep256);
    for len in [0usize, 1, 64, 5000] {
        let plaintext = vec![0x33; len];
        let token = jwe::seal(&recipient, &w.scope, &plaintext).unwrap();
        assert_eq!(
            open_with(&backend, &key, &token, &w.scope).unwrap(),
            plaintext
        );
    }
    // A CEK of 16 bytes, OAEP-encrypted correctly to the key: the padding
    // checks out, the length does not; the same opaque error.
    use rsa::pkcs1::DecodeRsaPrivateKey;
    let private = rsa::PrivateKey::from_pkcs1_der(&der).unwrap();
    let token = jwe::seal(&recipient, &w.scope, b"x").unwrap();
    let short = private
        .as_ref()
        .encrypt(
            &mut getrandom::SysRng,
            rsa::Oaep::<Sha256>::new(),
            &[7u8; 16],
        )
        .unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64::encode(&short);
    let e = open_with(&backend, &key, &parts.join("."), &w.scope).unwrap_err();
    assert!(matches!(e, OpenError::DecryptionFailed), "{e:?}");
}

#[test]
fn ours_open_through_the_seam_for_each_ecdh_alg_and_any_plaintext_length() {
    let w = world();
    let recipient = w.recipient();
    for alg in [JweAlgorithm::EcdhEs, JweAlgorithm::EcdhEsA256kw] {
        for len in [0usize, 1, 15, 16, 17, 100, 4096] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let token = jwe::seal_with(&recipient, alg, &w.scope, &plaintext).unwrap();
            let parsed = CompactJwe::parse(&token).unwrap();
            assert_eq!(parsed.to_compact(), token);
            assert_eq!(parsed.header().alg(), alg);
            assert_eq!(parsed.header().kid(), Some(recipient.kid()));
            assert_eq!(parsed.header().scope(), Some(&w.scope));
            assert_eq!(w.open(&token).unwrap(), plaintext, "{alg:?} {len}");
        }
    }
    // Two seals of one plaintext share nothing (fresh epk, CEK, IV).
    let a = jwe::seal(&recipient, &w.scope, b"same").unwrap();
    let b = jwe::seal(&recipient, &w.scope, b"same").unwrap();
    assert_ne!(a, b);
}

#[test]
fn the_header_we_write_is_sorted_and_names_the_scope_as_critical() {
    let w = world();
    let recipient = w.recipient();
    let token = jwe::seal_with(&recipient, JweAlgorithm::EcdhEsA256kw, &w.scope, b"k").unwrap();
    let header = b64::decode(token.split('.').next().unwrap(), "h").unwrap();
    let header = String::from_utf8(header).unwrap();
    let epk = CompactJwe::parse(&token)
        .unwrap()
        .header()
        .epk()
        .copied()
        .unwrap();
    let point = epk.to_uncompressed();
    assert_eq!(
        header,
        format!(
            r#"{{"alg":"ECDH-ES+A256KW","crit":["scope"],"enc":"A256GCM","epk":{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}},"kid":"{}","scope":"importer/api-keys"}}"#,
            b64::encode(&point[1..33]),
            b64::encode(&point[33..]),
            recipient.kid()
        )
    );
    // The kid is the RFC 7638 thumbprint of the recipient's public JWK.
    let jwk = custody_jose::Jwk::from_json(
        format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            w.v["keys"]["p256"]["x"].as_str().unwrap(),
            w.v["keys"]["p256"]["y"].as_str().unwrap()
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(recipient.kid(), jwk.thumbprint());
}

#[test]
fn a_secret_sealed_for_another_scope_is_refused_before_the_backend_is_asked() {
    let w = world();
    assert!(matches!(
        w.open(w.v["other_scope"].as_str().unwrap()),
        Err(OpenError::ScopeMismatch)
    ));
    assert!(matches!(
        w.open(w.v["no_scope"].as_str().unwrap()),
        Err(OpenError::ScopeMismatch)
    ));
    // Ours, sealed for importer/api-keys, opened as billing/api-keys.
    let token = jwe::seal(&w.recipient(), &w.scope, b"sk").unwrap();
    let billing = Scope::new("billing/api-keys").unwrap();
    assert!(matches!(
        w.open_as(&token, &billing),
        Err(OpenError::ScopeMismatch)
    ));
    // Rewriting the scope in the header breaks the tag (it is the AAD).
    let rewritten = rewrite_header(&token, |h| {
        h.insert("scope".into(), Value::from("billing/api-keys"));
    });
    assert!(matches!(
        w.open_as(&rewritten, &billing),
        Err(OpenError::DecryptionFailed)
    ));
    assert_eq!(
        w.audit.records().len(),
        1,
        "only the rewritten one was asked"
    );
    assert_eq!(OpenError::ScopeMismatch.kind(), "scope-mismatch");
}

/// The header of `token` as a map, changed by `edit`, re-encoded (sorted
/// members, as `serde_json` writes a map).
fn rewrite_header(token: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut header: serde_json::Map<String, Value> =
        serde_json::from_slice(&b64::decode(&parts[0], "h").unwrap()).unwrap();
    edit(&mut header);
    parts[0] = b64::encode(serde_json::to_string(&header).unwrap().as_bytes());
    parts.join(".")
}

fn flip(token: &str, part: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = b64::decode(&parts[part], "p").unwrap();
    bytes[0] ^= 1;
    parts[part] = b64::encode(&bytes);
    parts.join(".")
}

#[test]
fn every_decryption_failure_is_one_opaque_error() {
    let w = world();
    let recipient = w.recipient();
    let direct = jwe::seal_with(&recipient, JweAlgorithm::EcdhEs, &w.scope, b"sk").unwrap();
    let wrapped = jwe::seal_with(&recipient, JweAlgorithm::EcdhEsA256kw, &w.scope, b"sk").unwrap();
    let mut failures = vec![
        // jwcrypto's, sealed to another key.
        w.open(w.v["wrong_key"].as_str().unwrap()),
        // A tampered tag, ciphertext, IV; a tampered wrapped key.
        w.open(&flip(&direct, 4)),
        w.open(&flip(&direct, 3)),
        w.open(&flip(&direct, 2)),
        w.open(&flip(&wrapped, 1)),
    ];
    // The right JWE opened with the wrong (P-256) key.
    for token in [&direct, &wrapped] {
        failures.push(
            jwe::open(
                w.backend.as_ref(),
                &w.other,
                token,
                &w.scope,
                &Authorization::none(),
            )
            .wait()
            .map(|s| s.expose_secret().to_vec()),
        );
    }
    for failure in failures {
        let e = failure.unwrap_err();
        assert!(matches!(e, OpenError::DecryptionFailed), "{e:?}");
        assert_eq!(e.to_string(), "decryption failed");
        assert_eq!(e.kind(), "decryption-failed");
    }
}

/// Invalid-curve attacks (Sanso 2017) recovered ECDH-ES private keys from
/// go-jose (CVE-2016-9121), node-jose and Nimbus JOSE+JWT: an `epk` off
/// the curve, on another curve or the identity must be refused before any
/// private-key operation. Each case here is refused by the parser, and the
/// backend is never asked.
#[test]
fn invalid_curve_epk_regressions_go_jose_node_jose_nimbus() {
    let w = world();
    let token = jwe::seal(&w.recipient(), &w.scope, b"sk").unwrap();
    let set_epk = |x: &[u8], y: &[u8], crv: &str| {
        rewrite_header(&token, |h| {
            h.insert(
                "epk".into(),
                serde_json::json!({"kty": "EC", "crv": crv, "x": b64::encode(x), "y": b64::encode(y)}),
            );
        })
    };
    let be32 = |n: u8| {
        let mut out = [0u8; 32];
        out[31] = n;
        out
    };
    // (1, 2) lies on y² = x³ − 3x + 6: P-256's a, another b (the attack's
    // curves), not on P-256.
    let twist = set_epk(&be32(1), &be32(2), "P-256");
    // (0, 0): what an identity "point" would be written as.
    let identity = set_epk(&[0; 32], &[0; 32], "P-256");
    // A coordinate ≥ p (p + 1): a non-canonical field element.
    // p = 2²⁵⁶ − 2²²⁴ + 2¹⁹² + 2⁹⁶ − 1; this is p + 1.
    let over =
        hex::decode("ffffffff00000001000000000000000000000001000000000000000000000000").unwrap();
    let over_p = set_epk(&over, &be32(2), "P-256");
    // A valid secp256k1 point (its generator), named as such: not the
    // recipient's curve.
    let g_x =
        hex::decode("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798").unwrap();
    let g_y =
        hex::decode("483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8").unwrap();
    let k1 = set_epk(&g_x, &g_y, "secp256k1");
    // The same secp256k1 point claimed to be P-256.
    let k1_as_p256 = set_epk(&g_x, &g_y, "P-256");
    // A 31-byte coordinate (leading zero dropped).
    let short = set_epk(&[1; 31], &be32(2), "P-256");
    let with_d = rewrite_header(&token, |h| {
        h["epk"]["d"] = Value::from(b64::encode(&[1; 32]));
    });
    for (name, bad) in [
        ("twist point", twist),
        ("identity", identity),
        ("x >= p", over_p),
        ("secp256k1", k1),
        ("secp256k1 point as P-256", k1_as_p256),
        ("short coordinate", short),
        ("private epk", with_d),
    ] {
        let e = w.open(&bad).unwrap_err();
        assert!(
            matches!(e, OpenError::Jose(JoseError::InvalidKey { .. })),
            "{name}: {e:?}"
        );
        assert!(CompactJwe::parse(&bad).is_err(), "{name}");
    }
    assert!(w.audit.records().is_empty(), "the backend was never asked");
}

/// jwcrypto#391: an `ECDH-ES` (direct) JWE carrying an encrypted key is
/// malformed, not something to ignore.
#[test]
fn a_non_empty_encrypted_key_with_plain_ecdh_es_is_refused_jwcrypto_391() {
    let w = world();
    let token = jwe::seal_with(&w.recipient(), JweAlgorithm::EcdhEs, &w.scope, b"sk").unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    let key = b64::encode(&[0u8; 40]);
    parts[1] = &key;
    let bad = parts.join(".");
    assert!(matches!(
        w.open(&bad),
        Err(OpenError::Jose(JoseError::Malformed { .. }))
    ));
    assert!(w.audit.records().is_empty());
}

#[test]
fn the_parser_refuses_what_is_not_ours_with_typed_errors() {
    let w = world();
    let token = jwe::seal_with(&w.recipient(), JweAlgorithm::EcdhEs, &w.scope, b"sk").unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let malformed = |e: JoseError| matches!(e, JoseError::Malformed { .. });
    let unsupported = |e: JoseError| e == JoseError::UnsupportedAlgorithm;
    let header_json = String::from_utf8(b64::decode(parts[0], "h").unwrap()).unwrap();
    let with_header = |json: &str| {
        let mut p = parts.clone();
        let h = b64::encode(json.as_bytes());
        p[0] = &h;
        p.join(".")
    };
    type Case = (&'static str, String, fn(JoseError) -> bool);
    let cases: Vec<Case> = vec![
        ("four parts", parts[..4].join("."), malformed),
        ("six parts", format!("{token}.x"), malformed),
        ("padding", token.replacen('.', "=.", 1), malformed),
        (
            "duplicate member",
            with_header(&header_json.replacen('{', r#"{"enc":"A256GCM","#, 1)),
            malformed,
        ),
        (
            "zip",
            with_header(&header_json.replacen('{', r#"{"zip":"DEF","#, 1)),
            malformed,
        ),
        (
            "another critical member",
            with_header(&header_json.replace(r#"["scope"]"#, r#"["scope","x"]"#)),
            malformed,
        ),
        (
            "scope not critical",
            with_header(&header_json.replace(r#""crit":["scope"],"#, "")),
            malformed,
        ),
        (
            "crit without scope",
            with_header(&header_json.replace(r#","scope":"importer/api-keys""#, "")),
            malformed,
        ),
        (
            "bad scope",
            with_header(&header_json.replace("importer/api-keys", "Importer")),
            malformed,
        ),
        (
            "A128GCM",
            with_header(&header_json.replace("A256GCM", "A128GCM")),
            unsupported,
        ),
        (
            "A256CBC-HS512",
            with_header(&header_json.replace("A256GCM", "A256CBC-HS512")),
            unsupported,
        ),
        (
            "dir",
            with_header(&header_json.replace("ECDH-ES", "dir")),
            unsupported,
        ),
        (
            "RSA1_5",
            with_header(&header_json.replace("ECDH-ES", "RSA1_5")),
            unsupported,
        ),
        (
            "ECDH-ES+A128KW",
            with_header(&header_json.replace("ECDH-ES", "ECDH-ES+A128KW")),
            unsupported,
        ),
        (
            "RSA-OAEP-256 with an epk",
            with_header(&header_json.replace("ECDH-ES", "RSA-OAEP-256")),
            malformed,
        ),
        ("not JSON", with_header("{"), malformed),
        ("an array", with_header("[]"), malformed),
        (
            "short IV",
            [parts[0], parts[1], "AAAA", parts[3], parts[4]].join("."),
            malformed,
        ),
        (
            "short tag",
            [parts[0], parts[1], parts[2], parts[3], "AAAA"].join("."),
            malformed,
        ),
        ("oversized", "a".repeat(jwe::MAX_JWE_BYTES + 1), malformed),
    ];
    for (name, bad, expected) in cases {
        let e = CompactJwe::parse(&bad).unwrap_err();
        assert!(expected(e.clone()), "{name}: {e:?}");
        let opened = w.open(&bad).unwrap_err();
        assert!(
            matches!(opened, OpenError::Jose(ref j) if *j == e),
            "{name}"
        );
    }
    assert!(w.audit.records().is_empty());
}

/// A gate that refuses every unseal (as a TOTP gate does without a code).
#[derive(Debug)]
struct RefusingGate(Vault);

impl KeyBackend for RefusingGate {
    fn name(&self) -> &str {
        "refusing-gate"
    }
    fn signing(&self) -> Option<&dyn SigningBackend> {
        self.0.signing()
    }
    fn decrypting(&self) -> Option<&dyn DecryptingBackend> {
        Some(self)
    }
}

impl DecryptingBackend for RefusingGate {
    fn decrypt<'a>(&'a self, _: DecryptRequest<'a>) -> Pending<'a, Result<Decrypted, Error>> {
        Pending::ready(Err(Error::Denied(Denial::TotpRequired)))
    }
}

#[test]
fn a_gate_refusal_stays_visible_as_such_and_is_recorded() {
    let w = world_over(|vault| Arc::new(RefusingGate(vault)));
    let token = jwe::seal(&w.recipient(), &w.scope, b"sk").unwrap();
    let e = w.open(&token).unwrap_err();
    assert!(
        matches!(e, OpenError::Backend(Error::Denied(Denial::TotpRequired))),
        "{e:?}"
    );
    assert_eq!(e.kind(), "totp-required");
    let records = w.audit.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event().op().as_str(), "decrypt");
    assert_eq!(records[0].event().field("intent"), Some("unseal"));
    assert_ne!(records[0].event().outcome(), AuditOutcome::Success);
}

#[test]
fn recipient_jwks_are_sealing_keys_only() {
    let w = world();
    let x = w.v["keys"]["p256"]["x"].as_str().unwrap();
    let y = w.v["keys"]["p256"]["y"].as_str().unwrap();
    let ec = |extra: &str| format!(r#"{{"kty":"EC","crv":"P-256","x":"{x}","y":"{y}"{extra}}}"#);
    let r = Recipient::from_json(ec(r#","alg":"ECDH-ES+A256KW","use":"enc""#).as_bytes()).unwrap();
    assert_eq!(r.default_alg(), JweAlgorithm::EcdhEsA256kw);
    assert_eq!(r.kid(), w.recipient().kid());
    // Read back from its own JSON.
    assert_eq!(Recipient::from_json(r.to_json().as_bytes()).unwrap(), r);
    // The JWK's alg binds: sealing with another is refused.
    assert!(matches!(
        jwe::seal_with(&r, JweAlgorithm::EcdhEs, &w.scope, b"x"),
        Err(jwe::SealError::Jose(JoseError::AlgorithmMismatch))
    ));
    for (name, json, expected) in [
        ("signing use", ec(r#","use":"sig""#), "invalid-key"),
        (
            "RSA alg on EC",
            ec(r#","alg":"RSA-OAEP-256""#),
            "algorithm-mismatch",
        ),
        ("JWS alg", ec(r#","alg":"ES256""#), "unsupported-algorithm"),
        ("private key", ec(r#","d":"AAAA""#), "invalid-key"),
    ] {
        let e = Recipient::from_json(json.as_bytes()).unwrap_err();
        assert_eq!(e.kind(), expected, "{name}");
    }
    let rsa = &w.v["keys"]["rsa"];
    let rsa_public = format!(
        r#"{{"kty":"RSA","n":"{}","e":"{}"}}"#,
        rsa["n"].as_str().unwrap(),
        rsa["e"].as_str().unwrap()
    );
    let r = Recipient::from_json(rsa_public.as_bytes()).unwrap();
    assert_eq!(r.default_alg(), JweAlgorithm::RsaOaep256);
    assert!(matches!(
        jwe::seal_with(&r, JweAlgorithm::EcdhEs, &w.scope, b"x"),
        Err(jwe::SealError::Jose(JoseError::AlgorithmMismatch))
    ));
}

#[test]
fn scopes_are_service_slash_purpose() {
    for good in ["importer/api-keys", "a/b", "svc-1.eu/keys_v2"] {
        assert_eq!(Scope::new(good).unwrap().as_str(), good);
    }
    for bad in [
        "",
        "importer",
        "/keys",
        "importer/",
        "a/b/c",
        "Importer/keys",
        "a b/c",
        "-a/b",
        "a/\"b",
    ] {
        assert!(Scope::new(bad).is_err(), "{bad:?}");
    }
    assert!(Scope::new(&format!("a/{}", "b".repeat(jwe::MAX_SCOPE_BYTES))).is_err());
}

/// Ours opened by jwcrypto 1.6.1 (the Python oracle), for every algorithm,
/// when `$CUSTODY_TEST_PYTHON` names an interpreter with it.
#[test]
fn ours_are_opened_by_jwcrypto() {
    let Ok(python) = std::env::var("CUSTODY_TEST_PYTHON") else {
        eprintln!("skipped: CUSTODY_TEST_PYTHON is not set");
        return;
    };
    let w = world();
    let ec = Recipient::from_pinned(&w.key).unwrap();
    let rsa = &w.v["keys"]["rsa"];
    let rsa = Recipient::from_json(
        format!(
            r#"{{"kty":"RSA","n":"{}","e":"{}"}}"#,
            rsa["n"].as_str().unwrap(),
            rsa["e"].as_str().unwrap()
        )
        .as_bytes(),
    )
    .unwrap();
    let mut sealed = Vec::new();
    for (i, (recipient, alg, which)) in [
        (&ec, JweAlgorithm::EcdhEs, "p256"),
        (&ec, JweAlgorithm::EcdhEsA256kw, "p256"),
        (&rsa, JweAlgorithm::RsaOaep256, "rsa"),
    ]
    .into_iter()
    .enumerate()
    {
        for len in [1usize, 33, 1000] {
            let plaintext: Vec<u8> = (0..len).map(|j| (j * 13 + i + 1) as u8).collect();
            let token = jwe::seal_with(recipient, alg, &w.scope, &plaintext).unwrap();
            sealed.push(serde_json::json!({"key": which, "jwe": token, "plaintext": b64::encode(&plaintext)}));
        }
    }
    let input = serde_json::json!({"keys": w.v["keys"], "sealed": sealed}).to_string();
    let script = r#"
import json, sys, base64
from jwcrypto import jwe, jwk
from jwcrypto.common import JWSEHeaderParameter
registry = {"scope": JWSEHeaderParameter("custody scope", True, True, None)}
v = json.load(sys.stdin)
out = []
for s in v["sealed"]:
    key = jwk.JWK(**v["keys"][s["key"]])
    d = jwe.JWE(header_registry=registry)
    d.deserialize(s["jwe"], key=key)
    out.append(base64.urlsafe_b64encode(d.payload).rstrip(b"=").decode())
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "jwcrypto refused one of ours");
    let opened: Vec<String> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(opened.len(), 9);
    for (s, o) in sealed.iter().zip(&opened) {
        assert_eq!(s["plaintext"].as_str().unwrap(), o);
    }
}
