//! A real browser seals to keys held in AWS KMS, and KMS opens them
//! (issue #18, item 6): headless Chromium loads a loopback page that
//! imports the npm `jose` package (6.x, pinned by
//! `crates/custody-jose/tests/browser/package-lock.json`) and seals an API
//! key with WebCrypto to the public half of a KMS key: an `ECC_NIST_P256`
//! `KEY_AGREEMENT` key (ECDH-ES, ECDH-ES+A256KW; opened with
//! `DeriveSharedSecret`) and an `RSA_2048` `ENCRYPT_DECRYPT` key
//! (RSA-OAEP-256; opened with `Decrypt`, `RSAES_OAEP_SHA_256`). Each JWE
//! opens through `Audited` over the KMS backend to the same bytes, leaves
//! one `decrypt`/`unseal` record, and is refused for another scope. The
//! page side is `testing/jose_page.rs`, shared with custody-jose's test of
//! a keystore key.
//!
//! Needs `CUSTODY_TEST_CHROMIUM`, `CUSTODY_TEST_JOSE_JS` (the package's
//! `dist/webapi`, as `.ci/run` installs it) and `CUSTODY_TEST_KMS_ENDPOINT`;
//! skipped, saying so, without them.
#![cfg(feature = "aws-kms")]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

use std::sync::Arc;

use custody_core::{KeyBackend, KeyRef};
use custody_jose::jwe::Recipient;
use serde_json::Value;

#[path = "support/aws.rs"]
#[allow(dead_code, reason = "shared with aws_kms.rs, which uses more of it")]
mod aws;
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
