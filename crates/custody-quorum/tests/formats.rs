//! The formats of `SPEC.md`: frozen (the fixture's files are committed as
//! fuzz seeds and must not drift), recomputed from the SPEC's formulas with
//! SHA-256 alone, read strictly, and round-tripped by property tests.

use custody_quorum::fuzzing::{FIXTURE_SECRET, fixture};
use custody_quorum::hazmat::split_seeded;
use custody_quorum::{Error, QuorumSecret, SealedShare, Share, ShareSet};
use proptest::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

const SEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/seeds/quorum_json");

#[test]
fn the_fixture_files_are_frozen() {
    let (set_json, shares) = fixture();
    let read = |name: &str| std::fs::read_to_string(format!("{SEEDS}/{name}")).unwrap();
    assert_eq!(&read("shareset"), set_json);
    for (i, share) in shares.iter().enumerate() {
        assert_eq!(&read(&format!("share_{}", i + 1)), share);
    }
}

#[test]
fn commitments_and_digest_follow_the_spec() {
    let (set_json, shares) = fixture();
    let set: Value = serde_json::from_str(set_json).unwrap();
    let set_id = hex::decode(set["setId"].as_str().unwrap()).unwrap();
    let commitments: Vec<Vec<u8>> = set["commitments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| hex::decode(c.as_str().unwrap()).unwrap())
        .collect();
    let mut values = Vec::new();
    for (i, json) in shares.iter().enumerate() {
        let share: Value = serde_json::from_str(json).unwrap();
        assert_eq!(share["index"], i + 1);
        let mut hash = Sha256::new();
        hash.update(b"custody/quorum-share-commitment/v1");
        hash.update(&set_id);
        hash.update([u8::try_from(i + 1).unwrap()]);
        hash.update(hex::decode(share["salt"].as_str().unwrap()).unwrap());
        let value = hex::decode(share["value"].as_str().unwrap()).unwrap();
        hash.update(&value);
        assert_eq!(hash.finalize().to_vec(), commitments[i]);
        values.push(value);
    }
    let mut hash = Sha256::new();
    hash.update(b"custody/quorum-shareset/v1");
    hash.update(&set_id);
    hash.update([2, 3]);
    hash.update(hex::decode(set["quorumPublicKey"].as_str().unwrap()).unwrap());
    for c in &commitments {
        hash.update(c);
    }
    let parsed = ShareSet::from_json(set_json).unwrap();
    assert_eq!(hash.finalize().to_vec(), parsed.digest());
    // The shares are points of GF(2^8) polynomials: with 2-of-3, f(x) =
    // s + a·x per byte, so f(1) ^ f(2) ^ f(3) = s ^ a·(1 ^ 2 ^ 3) = s.
    for byte in 0..32 {
        assert_eq!(
            values[0][byte] ^ values[1][byte] ^ values[2][byte],
            FIXTURE_SECRET[byte],
            "byte {byte}"
        );
    }
}

#[test]
fn reading_is_strict() {
    let (set_json, shares) = fixture();
    let share = &shares[0];
    assert!(Share::from_json(share).is_ok());
    let bad_shares = [
        share.replace('{', "{\"extra\":0,"),
        share.replace('{', "{\"index\":2,"),
        share.replace("\"version\":1", "\"version\":2"),
        share
            .replace(",\"version\":1", "")
            .replace("\"version\":1,", ""),
        share.replace("\"index\":1", "\"index\":0"),
        share.replace("\"index\":1", "\"index\":256"),
        share.replace("\"index\":1", "\"index\":\"1\""),
        share.replace("\"salt\":\"", "\"salt\":\"0x"),
        share.replace("\"value\":\"", "\"value\":\"00"),
        share.to_uppercase().replace("\"VERSION\"", "\"version\""),
        format!("{share}{{}}"),
        format!("{share}x"),
        format!("{}{}", share, " ".repeat(70_000)),
    ];
    for bad in &bad_shares {
        assert_eq!(
            Share::from_json(bad).unwrap_err(),
            Error::Malformed("share file"),
            "{bad:.120}"
        );
    }
    let set = ShareSet::from_json(set_json).unwrap();
    let first = hex::encode(set.commitment(1).unwrap().to_bytes());
    let second = hex::encode(set.commitment(2).unwrap().to_bytes());
    for bad in [
        set_json.replace("\"threshold\": 2", "\"threshold\": 0"),
        set_json.replace("\"threshold\": 2", "\"threshold\": 4"),
        set_json.replace("\"shares\": 3", "\"shares\": 4"),
        set_json.replace(&second, &first),
        set_json.replace("\"version\": 1", "\"version\": 1, \"version\": 1"),
        set_json.replace("\"quorumPublicKey\": \"03", "\"quorumPublicKey\": \"04"),
        set_json.replace("\"quorumPublicKey\": \"0", "\"quorumPublicKey\": \"0x0"),
    ] {
        assert!(
            matches!(ShareSet::from_json(&bad), Err(Error::Malformed(_))),
            "{bad}"
        );
    }
    assert!(SealedShare::from_json("{}").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Split then any `m` of the shares, in any order, through the JSON
    /// files: the secret comes back, and every file reads back to itself.
    #[test]
    fn split_round_trips(
        secret in any::<[u8; 32]>(),
        seed in any::<[u8; 32]>(),
        (m, n) in (1u8..=6).prop_flat_map(|n| (1..=n, Just(n))),
        order in any::<u64>(),
    ) {
        let Ok(secret) = QuorumSecret::from_bytes(&secret) else {
            return Ok(()); // not a P-256 key (probability 2^-32)
        };
        let (set, shares) = split_seeded(&secret, m, n, &seed).unwrap();
        let set = ShareSet::from_json(&set.to_json()).unwrap();
        prop_assert_eq!(set.to_json(), ShareSet::from_json(&set.to_json()).unwrap().to_json());
        let mut files: Vec<_> = shares.iter().map(|s| s.to_json()).collect();
        // A permutation from `order`.
        for i in (1..files.len()).rev() {
            let j = usize::try_from(order % (i as u64 + 1)).unwrap();
            files.swap(i, j);
        }
        let mut boot = custody_quorum::EnclaveBoot::new(set.clone(), b"m").unwrap();
        let key = *boot.public_key();
        for file in files.iter().take(usize::from(m)) {
            let share = Share::from_json(file).unwrap();
            prop_assert_eq!(&*share.to_json(), &**file);
            share.verify(&set).unwrap();
            let sealed = custody_quorum::seal_share(&share, &set, &key, b"m").unwrap();
            let sealed = SealedShare::from_json(&sealed.to_json()).unwrap();
            boot.accept(&sealed).unwrap();
        }
        let rebuilt = boot.finish().unwrap();
        prop_assert_eq!(rebuilt.expose_secret().expose_secret(), secret.expose_secret());
    }

    /// Arbitrary text never panics a reader.
    #[test]
    fn readers_never_panic(text in ".{0,300}") {
        let _ = Share::from_json(&text);
        let _ = ShareSet::from_json(&text);
        let _ = SealedShare::from_json(&text);
    }
}
