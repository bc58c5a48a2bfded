//! A real browser seals, custody opens (issue #18, item 6): headless
//! Chromium loads a page on a loopback origin (a secure context), imports
//! the npm `jose` package (6.x, pinned by `tests/browser/package-lock.json`)
//! and seals an API key with WebCrypto to a sealing key whose private half
//! never leaves its backend; the test opens every JWE through the seam
//! (`Audited` over the backend, so each open is an audit record of op
//! `decrypt`, intent `unseal`) and compares the plaintext with what the
//! page sealed.
//!
//! Two homes of the private half: a P-256 key generated in the local
//! keystore (ECDH-ES, ECDH-ES+A256KW), and AWS KMS (the emulator through
//! the real SDK): an `ECC_NIST_P256` `KEY_AGREEMENT` key opened with
//! `DeriveSharedSecret` and an `RSA_2048` `ENCRYPT_DECRYPT` key opened with
//! `Decrypt` (`RSAES_OAEP_SHA_256`) for the browser's RSA-OAEP-256.
//!
//! Needs `CUSTODY_TEST_CHROMIUM` (a Chromium binary) and
//! `CUSTODY_TEST_JOSE_JS` (the package's `dist/webapi` directory, as
//! `.ci/run` installs it with `npm ci`), and for the KMS half
//! `CUSTODY_TEST_KMS_ENDPOINT`; skipped, saying so, without them.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use custody_core::{
    AuditOutcome, Audited, Authorization, CreateOptions, KeyAlgorithm, KeyBackend, KeyRef,
    Keystore, MemoryAuditLog, Passphrase, PinnedKey, Seed,
};
use custody_jose::jwe::{self, OpenError, Recipient, Scope};
use serde_json::{Value, json};

#[path = "../../custody-kms/tests/support/aws.rs"]
#[allow(
    dead_code,
    reason = "custody-kms's fixture; this test creates keys with it"
)]
mod aws;

#[path = "../../../testing/chromium.rs"]
#[allow(
    dead_code,
    reason = "shared with cli_policy, which also opens several tabs"
)]
mod chromium;

/// The API key the page seals (a made-up exchange secret).
const API_KEY: &str = "exch-live-7Hq2!vN/9xKp+Wm3=ZrT4sLd8€";
const SCOPE: &str = "importer/api-keys";

/// The browser and the `jose` modules, or `None` after saying why the test
/// is skipped.
fn browser_and_jose(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (
        std::env::var_os("CUSTODY_TEST_CHROMIUM"),
        std::env::var_os("CUSTODY_TEST_JOSE_JS"),
    ) {
        (Some(chromium), Some(jose)) => Some((chromium.into(), jose.into())),
        _ => {
            println!(
                "skipped {test}: set CUSTODY_TEST_CHROMIUM to a Chromium binary and \
                 CUSTODY_TEST_JOSE_JS to the npm jose package's dist/webapi directory"
            );
            None
        }
    }
}

/// The page (`/`) and the package's modules (`/jose/...`, plain relative
/// paths inside its directory only).
fn route(jose: PathBuf) -> Box<chromium::Route> {
    Box::new(move |path: &str| {
        if path == "/" {
            return Some((
                "text/html",
                b"<!doctype html><meta charset=utf-8><title>custody sealing</title>".to_vec(),
            ));
        }
        let relative = Path::new(path.strip_prefix("/jose/")?);
        let plain = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if !plain || relative.extension()? != "js" {
            return None;
        }
        Some(("text/javascript", std::fs::read(jose.join(relative)).ok()?))
    })
}

/// Seals `API_KEY` in the page with `jose.CompactEncrypt` to the public
/// JWK `jwk` (as the service publishes it), `alg`, `enc` A256GCM, the scope
/// in the protected header and named critical; returns the compact JWE.
fn seal_in_browser(browser: &mut chromium::Chromium, jwk: &Value, alg: &str) -> String {
    let script = format!(
        "(async () => {{
            const jose = await import('/jose/index.js');
            const jwk = {jwk};
            const key = await jose.importJWK(jwk, {alg});
            return await new jose.CompactEncrypt(new TextEncoder().encode({secret}))
                .setProtectedHeader({{alg: {alg}, enc: 'A256GCM', kid: jwk.kid,
                                      scope: {scope}, crit: ['scope']}})
                .encrypt(key, {{crit: {{scope: true}}}});
        }})()",
        alg = json!(alg),
        secret = json!(API_KEY),
        scope = json!(SCOPE),
    );
    browser.eval(&script).as_str().unwrap().to_owned()
}

/// The protected header of a compact JWE, decoded.
fn protected_header(jwe: &str) -> Value {
    let first = jwe.split('.').next().unwrap();
    serde_json::from_slice(&custody_jose::b64::decode(first, "protected header").unwrap()).unwrap()
}

/// Opens `jwe` through `Audited(backend)` and checks the plaintext and the
/// record the open left.
fn opens_through_the_seam(backend: Arc<dyn KeyBackend>, key: &PinnedKey, jwe: &str) {
    let audit = Arc::new(MemoryAuditLog::new());
    let audited = Audited::new(backend, audit.clone());
    let scope = Scope::new(SCOPE).unwrap();
    let auth = Authorization::none();
    let opened = jwe::open(&audited, key, jwe, &scope, &auth).wait().unwrap();
    assert_eq!(opened.expose_secret(), API_KEY.as_bytes());
    let records = audit.records();
    let record = records.last().unwrap();
    assert_eq!(record.event().op().as_str(), "decrypt");
    assert_eq!(record.event().outcome(), AuditOutcome::Success);
    assert_eq!(record.event().field("intent"), Some("unseal"));
    // Sealed for this scope, it opens for no other.
    let other = Scope::new("billing/api-keys").unwrap();
    let refused = jwe::open(&audited, key, jwe, &other, &auth).wait();
    assert!(
        matches!(refused, Err(OpenError::ScopeMismatch)),
        "{refused:?}"
    );
}

#[test]
fn a_browser_seals_to_a_keystore_key_and_the_seam_opens_it() {
    let Some((binary, jose)) =
        browser_and_jose("a_browser_seals_to_a_keystore_key_and_the_seam_opens_it")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ks = Keystore::create(
        dir.path(),
        &Passphrase::from_str_copy("correct horse"),
        &Seed::new([0x42; 64]),
        &CreateOptions::light().unwrap(),
    )
    .unwrap();
    let (id, _) = ks.generate_key(KeyAlgorithm::P256).unwrap();
    let backend = ks.backend();
    let key = backend
        .signing()
        .unwrap()
        .pin(&KeyRef::Stored(id))
        .wait()
        .unwrap();
    let recipient = Recipient::from_pinned(&key).unwrap();
    let jwk: Value = serde_json::from_str(&recipient.to_json()).unwrap();

    let port = chromium::serve(route(jose));
    let mut browser = chromium::Chromium::start(&binary);
    browser.open(&format!("http://localhost:{port}/"));
    for alg in ["ECDH-ES", "ECDH-ES+A256KW"] {
        let jwe = seal_in_browser(&mut browser, &jwk, alg);
        let header = protected_header(&jwe);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["enc"], "A256GCM");
        assert_eq!(header["kid"], recipient.kid());
        assert_eq!(header["epk"]["crv"], "P-256");
        // ECDH-ES carries no encrypted key; ECDH-ES+A256KW a wrapped CEK.
        let encrypted_key = jwe.split('.').nth(1).unwrap();
        assert_eq!(encrypted_key.is_empty(), alg == "ECDH-ES", "{alg}");
        opens_through_the_seam(backend.clone(), &key, &jwe);
    }
}

#[test]
fn a_browser_seals_to_kms_keys_and_kms_opens_them() {
    let Some((binary, jose)) = browser_and_jose("a_browser_seals_to_kms_keys_and_kms_opens_them")
    else {
        return;
    };
    let Some(endpoint) = aws::endpoint("a_browser_seals_to_kms_keys_and_kms_opens_them") else {
        return;
    };
    use aws_sdk_kms::types::{KeySpec, KeyUsageType};
    let emu = aws::Emulator::new(&endpoint);
    let backend: Arc<dyn KeyBackend> = Arc::new(custody_kms::KmsSigner::new(emu.client.clone()));
    let port = chromium::serve(route(jose));
    let mut browser = chromium::Chromium::start(&binary);
    browser.open(&format!("http://localhost:{port}/"));
    let cases = [
        (KeySpec::EccNistP256, KeyUsageType::KeyAgreement, "ECDH-ES"),
        (
            KeySpec::EccNistP256,
            KeyUsageType::KeyAgreement,
            "ECDH-ES+A256KW",
        ),
        (
            KeySpec::Rsa2048,
            KeyUsageType::EncryptDecrypt,
            "RSA-OAEP-256",
        ),
    ];
    for (spec, usage, alg) in cases {
        let id = emu.create_key(spec, usage);
        let key = backend
            .signing()
            .unwrap()
            .pin(&KeyRef::Stored(custody_core::KeyId::new(&id).unwrap()))
            .wait()
            .unwrap();
        let recipient = Recipient::from_pinned(&key).unwrap();
        let jwk: Value = serde_json::from_str(&recipient.to_json()).unwrap();
        let jwe = seal_in_browser(&mut browser, &jwk, alg);
        let header = protected_header(&jwe);
        assert_eq!(header["alg"], alg);
        assert_eq!(header["kid"], recipient.kid());
        opens_through_the_seam(backend.clone(), &key, &jwe);
    }
}
