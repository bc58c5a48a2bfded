//! The bodies of the `quorum_json` and `sealed_share` cargo-fuzz targets
//! in `fuzz/`. **Not part of the API**: hidden from the docs, and free to
//! change in any release.
//!
//! `fuzz/fuzz_targets/<name>.rs` calls `fuzz_<name>` in one line, and
//! `tests/fuzz_corpus.rs` feeds it every input under `fuzz/seeds/<name>/`
//! and `fuzz/regressions/<name>/`. They **panic when a property fails**.

use std::sync::OnceLock;

use crate::hazmat::{enclave_boot_with_key, split_seeded};
use crate::{Error, QuorumSecret, SealedShare, Share, ShareSet};

/// The body of a fuzz target: arbitrary bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target of this crate, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("quorum_json", fuzz_quorum_json),
    ("sealed_share", fuzz_sealed_share),
];

/// The fixed quorum secret of the fixture.
pub const FIXTURE_SECRET: [u8; 32] = [0x42; 32];
/// The seed of the fixture's split.
pub const FIXTURE_SEED: [u8; 32] = [0x17; 32];
/// The fixture enclave's private key.
pub const FIXTURE_ENCLAVE_KEY: [u8; 32] = [0x33; 32];
/// The fixture's manifest.
pub const FIXTURE_MANIFEST: &[u8] = b"custody fuzz manifest";

/// The fixture: a 2-of-3 split of [`FIXTURE_SECRET`] from [`FIXTURE_SEED`]
/// (the share set's JSON, the shares' JSON).
#[expect(clippy::panic, reason = "a constant fixture: a panic is a bug here")]
pub fn fixture() -> &'static (String, Vec<String>) {
    static FIXTURE: OnceLock<(String, Vec<String>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let made = QuorumSecret::from_bytes(&FIXTURE_SECRET)
            .and_then(|secret| split_seeded(&secret, 2, 3, &FIXTURE_SEED));
        match made {
            Ok((set, shares)) => (
                set.to_json(),
                shares.iter().map(|s| s.to_json().to_string()).collect(),
            ),
            Err(e) => panic!("fixture: {e}"),
        }
    })
}

/// Share files, share sets and sealed shares: never a panic; whatever
/// reads writes back to JSON that reads to the same value.
#[expect(
    clippy::panic,
    reason = "a fuzz body: a panic reports a broken property"
)]
pub fn fuzz_quorum_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(share) = Share::from_json(text) {
        let again =
            Share::from_json(&share.to_json()).unwrap_or_else(|e| panic!("share round trip: {e}"));
        assert_eq!(share.index(), again.index());
        assert_eq!(share.set_id(), again.set_id());
        assert_eq!(share.expose_value(), again.expose_value());
        assert_eq!(share.commitment(), again.commitment());
    }
    if let Ok(set) = ShareSet::from_json(text) {
        let again = ShareSet::from_json(&set.to_json())
            .unwrap_or_else(|e| panic!("share set round trip: {e}"));
        assert!(set == again, "share set round trip");
        assert!(set.threshold() >= 1 && set.threshold() <= set.shares());
    }
    if let Ok(sealed) = SealedShare::from_json(text) {
        let again = SealedShare::from_json(&sealed.to_json())
            .unwrap_or_else(|e| panic!("sealed share round trip: {e}"));
        assert!(sealed == again, "sealed share round trip");
    }
}

/// A sealed share offered to the fixture's enclave: never a panic; an
/// accepted share is one of the fixture's (its index and commitment), and
/// a refusal is one of the documented errors.
#[expect(
    clippy::panic,
    reason = "a fuzz body: a panic reports a broken property"
)]
pub fn fuzz_sealed_share(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sealed) = SealedShare::from_json(text) else {
        return;
    };
    let (set_json, _) = fixture();
    let set = ShareSet::from_json(set_json).unwrap_or_else(|e| panic!("fixture set: {e}"));
    let mut boot = enclave_boot_with_key(set, FIXTURE_MANIFEST, &FIXTURE_ENCLAVE_KEY)
        .unwrap_or_else(|e| panic!("fixture boot: {e}"));
    match boot.accept(&sealed) {
        Ok(n) => {
            assert_eq!(n, 1);
            assert_eq!(boot.accepted(), vec![sealed.index()]);
            // A second time is a repeat.
            assert_eq!(
                boot.accept(&sealed),
                Err(Error::DuplicateShare {
                    index: sealed.index()
                })
            );
        }
        Err(
            Error::ForeignShare { index }
            | Error::UnknownIndex { index }
            | Error::SealOpenFailed { index }
            | Error::ShareInvalid { index },
        ) => assert_eq!(index, sealed.index()),
        Err(e) => panic!("unexpected refusal: {e}"),
    }
}
