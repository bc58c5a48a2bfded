//! A real browser seals, custody opens (issue #18, item 6): headless
//! Chromium loads a page on a loopback origin (a secure context), imports
//! the npm `jose` package (6.x, pinned by `tests/browser/package-lock.json`)
//! and seals an API key with WebCrypto to a sealing key whose private half
//! never leaves its backend; the test opens every JWE through the seam
//! (`Audited` over the backend, so each open is an audit record of op
//! `decrypt`, intent `unseal`) and compares the plaintext with what the
//! page sealed.
//!
//! Here the private half is a P-256 key generated in the local keystore
//! (ECDH-ES, ECDH-ES+A256KW); custody-kms's `tests/jwe_browser.rs` does the
//! same with keys held in AWS KMS. The page side is `testing/jose_page.rs`.
//!
//! Needs `CUSTODY_TEST_CHROMIUM` (a Chromium binary) and
//! `CUSTODY_TEST_JOSE_JS` (the package's `dist/webapi` directory, as
//! `.ci/run` installs it with `npm ci`); skipped, saying so, without them.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

use custody_core::{CreateOptions, KeyAlgorithm, KeyRef, Keystore, Passphrase, Seed};
use custody_jose::jwe::Recipient;
use serde_json::Value;

#[path = "../../../testing/chromium.rs"]
#[allow(
    dead_code,
    reason = "shared with cli_policy, which also opens several tabs"
)]
mod chromium;
#[path = "../../../testing/jose_page.rs"]
mod page;
use page::{browser_and_jose, opens_through_the_seam, protected_header, route, seal_in_browser};

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
