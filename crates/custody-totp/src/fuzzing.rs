//! The body of the `otpauth_uri` cargo-fuzz target in `fuzz/`. **Not part of
//! the API**: hidden from the docs, and free to change in any release.
//!
//! `fuzz/fuzz_targets/otpauth_uri.rs` calls [`fuzz_otpauth_uri`] in one line,
//! and `tests/fuzz_corpus.rs` (stable, in CI) feeds it every input under
//! `fuzz/seeds/otpauth_uri/` and `fuzz/regressions/otpauth_uri/`. It
//! **panics when a property fails**.

use crate::OtpAuthUri;

/// The body of a fuzz target: arbitrary bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target of this crate, by name.
pub const TARGETS: &[(&str, Target)] = &[("otpauth_uri", fuzz_otpauth_uri)];

/// `parse_otpauth_uri`: never a panic; an accepted URI writes a URI that
/// parses back to the same issuer, account, parameters and secret, and
/// writing that one again gives the same text.
#[expect(
    clippy::panic,
    reason = "a failed property must abort the fuzz run: that is the report"
)]
pub fn fuzz_otpauth_uri(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = OtpAuthUri::parse(s) else {
        return;
    };
    let written = uri.to_uri();
    let again = match OtpAuthUri::parse(&written) {
        Ok(u) => u,
        Err(e) => panic!("a written URI re-parses: {e:?}"),
    };
    assert_eq!(again.issuer(), uri.issuer());
    assert_eq!(again.account(), uri.account());
    assert_eq!(again.params(), uri.params());
    assert_eq!(again.expose_secret(), uri.expose_secret());
    assert_eq!(again.to_uri().as_str(), written.as_str(), "stable text");
}
