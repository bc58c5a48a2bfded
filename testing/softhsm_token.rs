//! A fresh SoftHSM2 token for the tests of the `custody` binary and of the
//! C ABI that keep a keystore's KEK and a signing key on a token:
//! initialized with `softhsm2-util` (another tool than the one under
//! test), then an AES KEK `root-kek` and a secp256k1 key `signer` made on
//! it through custody-kms. Included by path (`#[path = ...] mod
//! softhsm_token;`) from each test that uses it, so that one copy serves
//! both.
//!
//! Test code: a failed `unwrap`, `expect` or `assert` here is a failed
//! test.

use std::path::PathBuf;
use std::process::Command;

/// The user PIN of every token made here.
pub(crate) const USER_PIN: &str = "user-pin-1234";

/// A token made by [`token`].
pub(crate) struct Token {
    /// The PKCS#11 module (`CUSTODY_TEST_PKCS11_MODULE`).
    pub(crate) module: PathBuf,
    /// The token's label.
    pub(crate) label: String,
    /// The public key of its signing key `signer`.
    #[allow(
        dead_code,
        reason = "custody-ffi's test checks it; custody-cli's does not"
    )]
    pub(crate) signer: custody_core::PublicKey,
}

/// A fresh token labelled `PREFIX-PID`, or `None` after saying `test` is
/// skipped (`CUSTODY_TEST_PKCS11_MODULE` unset or empty).
pub(crate) fn token(test: &str, prefix: &str) -> Option<Token> {
    let module = match std::env::var_os("CUSTODY_TEST_PKCS11_MODULE") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => {
            println!("skipped {test}: set CUSTODY_TEST_PKCS11_MODULE and SOFTHSM2_CONF");
            return None;
        }
    };
    let label = format!("{prefix}-{}", std::process::id());
    let out = Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            &label,
            "--so-pin",
            "so-pin-0000",
            "--pin",
            USER_PIN,
        ])
        .output()
        .expect("softhsm2-util (Debian softhsm2) is installed beside the module");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = custody_kms::Pkcs11Module::load(&module).unwrap();
    let token =
        custody_kms::Pkcs11Token::open(&m, &label, custody_kms::Pin::new(USER_PIN)).unwrap();
    custody_kms::Pkcs11Kek::new(token.clone(), custody_core::KekId::new("root-kek").unwrap())
        .unwrap()
        .generate("root-kek")
        .unwrap();
    let pinned = custody_kms::Pkcs11Signer::new(token)
        .generate("signer")
        .unwrap();
    Some(Token {
        module,
        label,
        signer: *pinned.secp256k1().unwrap(),
    })
}
