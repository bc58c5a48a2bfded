//! The split, the seal and the boot, end to end: M-of-N for several (M, N),
//! every subset at the threshold and above, every refusal by name.
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use custody_core::{DataKey, EncryptionContext, KeyBackend, WrappingBackend};
use custody_quorum::hazmat::{enclave_boot_with_key, seal_share_with_ephemeral, split_seeded};
use custody_quorum::{
    EnclaveBoot, Error, QuorumKey, QuorumSecret, SealedShare, Share, ShareSet, generate,
    seal_share, split,
};

const MANIFEST: &[u8] = &[0x5a; 32];

/// Every subset of `0..n` (as index lists) with `size` members.
fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
    (0u32..(1 << n))
        .filter(|mask| mask.count_ones() as usize == size)
        .map(|mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
        .collect()
}

fn boot_with(set: &ShareSet, shares: &[&Share]) -> Result<QuorumKey, Error> {
    let mut boot = EnclaveBoot::new(set.clone(), MANIFEST)?;
    let key = *boot.public_key();
    for share in shares {
        let sealed = seal_share(share, set, &key, MANIFEST)?;
        boot.accept(&SealedShare::from_json(&sealed.to_json())?)?;
    }
    boot.finish()
}

#[test]
fn every_subset_at_or_above_the_threshold_rebuilds_the_secret() {
    for (m, n) in [(1u8, 1u8), (1, 3), (2, 2), (2, 3), (3, 5), (5, 9)] {
        let secret = QuorumSecret::generate().unwrap();
        let expected = *secret.expose_secret();
        let (set, shares) = split(&secret, m, n).unwrap();
        assert_eq!((set.threshold(), set.shares()), (m, n));
        assert_eq!(*set.quorum_public_key(), secret.public_key());
        for size in usize::from(m)..=usize::from(n) {
            // Every subset for small n; for (5, 9) every subset of 5 and a
            // sample of the larger ones (all 256 would be slow in debug).
            let all = subsets(usize::from(n), size);
            let step = if all.len() > 40 && size > usize::from(m) {
                7
            } else {
                1
            };
            for subset in all.iter().step_by(step) {
                let chosen: Vec<&Share> = subset.iter().map(|&i| &shares[i]).collect();
                // Straight through the boot for the threshold's subsets of
                // the smaller splits; the combine path is the same.
                let key = boot_with(&set, &chosen).unwrap();
                assert_eq!(
                    key.expose_secret().expose_secret(),
                    &expected,
                    "{m}-of-{n} {subset:?}"
                );
                assert_eq!(*key.public_key(), secret.public_key());
            }
        }
    }
}

#[test]
fn fewer_than_the_threshold_is_quorum_incomplete() {
    for (m, n) in [(1u8, 1u8), (2, 3), (3, 5), (5, 9)] {
        let (_, set, shares) = generate(m, n).unwrap();
        for have in 0..usize::from(m) {
            let chosen: Vec<&Share> = shares.iter().take(have).collect();
            assert_eq!(
                boot_with(&set, &chosen).unwrap_err(),
                Error::QuorumIncomplete {
                    have,
                    need: usize::from(m)
                }
            );
        }
    }
}

#[test]
fn below_the_threshold_the_shares_say_nothing_about_the_secret_byte() {
    // Shamir's secrecy, checked for the GF(256) polynomials vsss-rs makes:
    // with a seeded split of two different secrets, the same M-1 shares
    // are possible; concretely, one share of a 2-of-n split is uniformly
    // distributed whatever the secret, so over many splits every byte value
    // appears in every position.
    let secret = QuorumSecret::from_bytes(&[0x11; 32]).unwrap();
    let mut seen = [[false; 256]; 32];
    for seed in 0u8..=255 {
        for seed2 in 0u8..8 {
            let mut s = [seed; 32];
            s[0] = seed2;
            let (_, shares) = split_seeded(&secret, 2, 2, &s).unwrap();
            for (i, b) in shares[0].expose_value().iter().enumerate() {
                seen[i][usize::from(*b)] = true;
            }
        }
    }
    let covered: usize = seen.iter().map(|p| p.iter().filter(|x| **x).count()).sum();
    // 2048 samples of 256 values per position: nearly all values appear.
    assert!(covered > 32 * 240, "{covered}");
}

#[test]
fn invalid_parameters_are_refused() {
    let secret = QuorumSecret::generate().unwrap();
    for (m, n) in [(0u8, 0u8), (0, 3), (3, 2), (2, 1), (255, 254)] {
        assert!(matches!(
            split(&secret, m, n),
            Err(Error::InvalidParameters(_))
        ));
    }
    let (set, shares) = split(&secret, 255, 255).unwrap();
    assert_eq!(set.shares(), 255);
    assert_eq!(shares.last().unwrap().index(), 255);
    assert!(QuorumSecret::from_bytes(&[0; 32]).is_err());
    assert!(QuorumSecret::from_bytes(&[0xff; 32]).is_err());
}

#[test]
fn a_tampered_share_is_named_by_index() {
    let (_, set, shares) = generate(3, 5).unwrap();
    // Every bit of the value of share 4, flipped in the file the holder has:
    // the holder's own check refuses to seal it.
    let file = shares[3].to_json();
    let value_hex = hex::encode(shares[3].expose_value());
    for bit in [0usize, 7, 100, 255] {
        let mut value = *shares[3].expose_value();
        value[bit / 8] ^= 1 << (bit % 8);
        let tampered = Share::from_json(&file.replace(&value_hex, &hex::encode(value))).unwrap();
        assert_eq!(tampered.verify(&set), Err(Error::ShareInvalid { index: 4 }));
        let boot = EnclaveBoot::new(set.clone(), MANIFEST).unwrap();
        assert_eq!(
            seal_share(&tampered, &set, boot.public_key(), MANIFEST).unwrap_err(),
            Error::ShareInvalid { index: 4 }
        );
    }
    // A share whose salt is wrong is as wrong.
    let salt_start = file.find("\"salt\":\"").unwrap() + 8;
    let mut bad_salt = file.to_string();
    let c = if &bad_salt[salt_start..=salt_start] == "0" {
        "1"
    } else {
        "0"
    };
    bad_salt.replace_range(salt_start..=salt_start, c);
    assert_eq!(
        Share::from_json(&bad_salt).unwrap().verify(&set),
        Err(Error::ShareInvalid { index: 4 })
    );
}

/// Seals `salt ‖ value` for `index` of `set` to `key` by hand (RFC 9180
/// through the hazmat context, the additional data as `SPEC.md` says),
/// skipping the holder-side commitment check that `seal_share` makes.
fn seal_by_hand(set: &ShareSet, index: u8, salt: &[u8], value: &[u8], key: &[u8]) -> SealedShare {
    let (enc, mut context) =
        custody_quorum::hazmat::hpke_setup_sender(&[0x21; 32], key, MANIFEST).unwrap();
    let mut aad = b"custody/quorum-seal/v1".to_vec();
    aad.extend_from_slice(&set.digest());
    aad.push(index);
    let ct = context.seal(&aad, &[salt, value].concat()).unwrap();
    SealedShare::from_json(&format!(
        r#"{{"version":1,"setId":"{}","index":{index},"enc":"{}","ciphertext":"{}"}}"#,
        set.set_id(),
        hex::encode(enc),
        hex::encode(ct)
    ))
    .unwrap()
}

#[test]
fn a_share_that_opens_but_mismatches_its_commitment_is_named_in_the_enclave() {
    let secret = QuorumSecret::generate().unwrap();
    let (set, shares) = split(&secret, 2, 3).unwrap();
    let mut boot = EnclaveBoot::new(set.clone(), MANIFEST).unwrap();
    let key = *boot.public_key();
    boot.accept(&seal_share(&shares[0], &set, &key, MANIFEST).unwrap())
        .unwrap();
    let file: serde_json::Value = serde_json::from_str(&shares[1].to_json()).unwrap();
    let salt = hex::decode(file["salt"].as_str().unwrap()).unwrap();
    // The right share sealed by hand opens and is accepted elsewhere...
    let mut other = EnclaveBoot::new(set.clone(), MANIFEST).unwrap();
    let okey = other.public_key().to_bytes();
    let right = seal_by_hand(&set, 2, &salt, shares[1].expose_value(), &okey);
    assert_eq!(other.accept(&right), Ok(1));
    // ...while one wrong bit of its value, or of its salt, is named.
    let mut value = *shares[1].expose_value();
    value[31] ^= 0x80;
    let wrong = seal_by_hand(&set, 2, &salt, &value, &key.to_bytes());
    assert_eq!(boot.accept(&wrong), Err(Error::ShareInvalid { index: 2 }));
    let mut bad_salt = salt.clone();
    bad_salt[0] ^= 1;
    let wrong = seal_by_hand(
        &set,
        2,
        &bad_salt,
        shares[1].expose_value(),
        &key.to_bytes(),
    );
    assert_eq!(boot.accept(&wrong), Err(Error::ShareInvalid { index: 2 }));
    // A plaintext of another length does not pass either.
    let (enc, mut context) =
        custody_quorum::hazmat::hpke_setup_sender(&[0x21; 32], &key.to_bytes(), MANIFEST).unwrap();
    let mut aad = b"custody/quorum-seal/v1".to_vec();
    aad.extend_from_slice(&set.digest());
    aad.push(2);
    let ct = context.seal(&aad, &[0u8; 63]).unwrap();
    assert_eq!(ct.len(), 79);
    // (79 bytes of ciphertext do not even read as a sealed share.)
    assert!(matches!(
        SealedShare::from_json(&format!(
            r#"{{"version":1,"setId":"{}","index":2,"enc":"{}","ciphertext":"{}"}}"#,
            set.set_id(),
            hex::encode(enc),
            hex::encode(ct)
        )),
        Err(Error::Malformed(_))
    ));
    // The refusals changed nothing: the true share still completes it.
    assert_eq!(boot.accepted(), vec![1]);
    boot.accept(&seal_share(&shares[1], &set, &key, MANIFEST).unwrap())
        .unwrap();
    assert_eq!(boot.finish().unwrap().public_key(), &secret.public_key());
}

#[test]
fn a_share_sealed_to_another_enclave_is_refused() {
    let (_, set, shares) = generate(2, 3).unwrap();
    let mut ours = EnclaveBoot::new(set.clone(), MANIFEST).unwrap();
    let theirs = EnclaveBoot::new(set.clone(), MANIFEST).unwrap();
    let sealed = seal_share(&shares[0], &set, theirs.public_key(), MANIFEST).unwrap();
    assert_eq!(
        ours.accept(&sealed),
        Err(Error::SealOpenFailed { index: 1 })
    );
    assert!(ours.accepted().is_empty());
    // Sealed to our key under another manifest: refused the same way.
    let sealed = seal_share(&shares[0], &set, ours.public_key(), b"another manifest").unwrap();
    assert_eq!(
        ours.accept(&sealed),
        Err(Error::SealOpenFailed { index: 1 })
    );
    // And a share sealed for index 1 relabelled as index 2.
    let sealed = seal_share(&shares[0], &set, ours.public_key(), MANIFEST).unwrap();
    let relabelled =
        SealedShare::from_json(&sealed.to_json().replace("\"index\":1", "\"index\":2")).unwrap();
    assert_eq!(
        ours.accept(&relabelled),
        Err(Error::SealOpenFailed { index: 2 })
    );
    // Every byte of the ciphertext and of enc matters.
    let json = sealed.to_json();
    let ct_start = json.find("\"ciphertext\":\"").unwrap() + 14;
    let enc_start = json.find("\"enc\":\"").unwrap() + 7;
    for at in [
        ct_start,
        ct_start + 50,
        ct_start + 159,
        enc_start + 2,
        enc_start + 129,
    ] {
        let mut bad = json.clone();
        let c = if &bad[at..=at] == "0" { "1" } else { "0" };
        bad.replace_range(at..=at, c);
        assert_eq!(
            ours.accept(&SealedShare::from_json(&bad).unwrap()),
            Err(Error::SealOpenFailed { index: 1 }),
            "{at}"
        );
    }
    // The untouched one still opens: nothing above changed the boot.
    assert_eq!(ours.accept(&sealed), Ok(1));
}

#[test]
fn duplicates_are_refused() {
    let (_, set, shares) = generate(2, 3).unwrap();
    let mut boot = EnclaveBoot::new(set.clone(), MANIFEST).unwrap();
    let key = *boot.public_key();
    let first = seal_share(&shares[1], &set, &key, MANIFEST).unwrap();
    let again = seal_share(&shares[1], &set, &key, MANIFEST).unwrap();
    assert_ne!(
        first.to_json(),
        again.to_json(),
        "a fresh ephemeral key each time"
    );
    assert_eq!(boot.accept(&first), Ok(1));
    assert_eq!(boot.accept(&first), Err(Error::DuplicateShare { index: 2 }));
    assert_eq!(boot.accept(&again), Err(Error::DuplicateShare { index: 2 }));
    assert_eq!(boot.accepted(), vec![2]);
    assert_eq!(
        boot.finish().unwrap_err(),
        Error::QuorumIncomplete { have: 1, need: 2 }
    );
}

#[test]
fn a_share_from_another_share_set_is_refused() {
    let secret = QuorumSecret::generate().unwrap();
    // Two splits of the same secret: same quorum key, other set ids.
    let (set_a, shares_a) = split(&secret, 2, 3).unwrap();
    let (set_b, shares_b) = split(&secret, 2, 3).unwrap();
    assert_ne!(set_a.set_id(), set_b.set_id());
    assert_eq!(
        shares_b[0].verify(&set_a),
        Err(Error::ForeignShare { index: 1 })
    );
    let mut boot = EnclaveBoot::new(set_a.clone(), MANIFEST).unwrap();
    let key = *boot.public_key();
    let foreign = seal_share(&shares_b[0], &set_b, &key, MANIFEST).unwrap();
    assert_eq!(boot.accept(&foreign), Err(Error::ForeignShare { index: 1 }));
    // Relabelled with set A's id, it does not open (the set digest is bound).
    let relabelled = SealedShare::from_json(
        &foreign
            .to_json()
            .replace(&set_b.set_id().to_string(), &set_a.set_id().to_string()),
    )
    .unwrap();
    assert_eq!(
        boot.accept(&relabelled),
        Err(Error::SealOpenFailed { index: 1 })
    );
    // Mixing would give a wrong secret; the boot never gets there.
    boot.accept(&seal_share(&shares_a[0], &set_a, &key, MANIFEST).unwrap())
        .unwrap();
    assert_eq!(
        boot.finish().unwrap_err(),
        Error::QuorumIncomplete { have: 1, need: 2 }
    );
}

#[test]
fn unknown_indices_are_refused() {
    let (_, set, shares) = generate(2, 3).unwrap();
    let mut boot = EnclaveBoot::new(set.clone(), MANIFEST).unwrap();
    let sealed = seal_share(&shares[2], &set, boot.public_key(), MANIFEST).unwrap();
    let json = sealed.to_json().replace("\"index\":3", "\"index\":4");
    assert_eq!(
        boot.accept(&SealedShare::from_json(&json).unwrap()),
        Err(Error::UnknownIndex { index: 4 })
    );
}

#[test]
fn a_quorum_public_key_mismatch_is_detected() {
    let secret = QuorumSecret::generate().unwrap();
    let other = QuorumSecret::generate().unwrap();
    let (set, shares) = split(&secret, 2, 3).unwrap();
    // The share set as published, but naming another quorum public key:
    // the commitments all match, the secret rebuilds, and the check after
    // it refuses to yield the key.
    let wrong = ShareSet::from_json(&set.to_json().replace(
        &secret.public_key().to_string(),
        &other.public_key().to_string(),
    ))
    .unwrap();
    assert_eq!(wrong.quorum_public_key(), &other.public_key());
    let mut boot = EnclaveBoot::new(wrong.clone(), MANIFEST).unwrap();
    let key = *boot.public_key();
    for share in &shares[..2] {
        boot.accept(&seal_share(share, &wrong, &key, MANIFEST).unwrap())
            .unwrap();
    }
    assert_eq!(boot.finish().unwrap_err(), Error::QuorumKeyMismatch);
    // Nothing changed: still not finished, still refusing.
    assert_eq!(boot.accepted(), vec![1, 2]);
    assert_eq!(boot.finish().unwrap_err(), Error::QuorumKeyMismatch);
}

#[test]
fn a_finished_boot_accepts_nothing_and_forgets_its_shares() {
    let (_, set, shares) = generate(2, 3).unwrap();
    let mut boot = EnclaveBoot::new(set.clone(), MANIFEST).unwrap();
    let key = *boot.public_key();
    let sealed: Vec<_> = shares
        .iter()
        .map(|s| seal_share(s, &set, &key, MANIFEST).unwrap())
        .collect();
    assert!(!boot.is_complete());
    boot.accept(&sealed[0]).unwrap();
    boot.accept(&sealed[2]).unwrap();
    assert!(boot.is_complete());
    boot.finish().unwrap();
    assert!(!boot.is_complete());
    assert!(boot.accepted().is_empty());
    assert_eq!(boot.accept(&sealed[1]), Err(Error::BootFinished));
    assert_eq!(boot.finish().unwrap_err(), Error::BootFinished);
}

#[test]
fn the_manifest_is_bounded() {
    let (_, set, shares) = generate(1, 1).unwrap();
    assert_eq!(
        EnclaveBoot::new(set.clone(), &[0; 513]).unwrap_err(),
        Error::ManifestTooLong
    );
    let mut boot = EnclaveBoot::new(set.clone(), &[7; 512]).unwrap();
    let key = *boot.public_key();
    assert_eq!(
        seal_share(&shares[0], &set, &key, &[7; 513]).unwrap_err(),
        Error::ManifestTooLong
    );
    boot.accept(&seal_share(&shares[0], &set, &key, &[7; 512]).unwrap())
        .unwrap();
    // An empty manifest is a manifest too (Nitro's user_data may be empty).
    let mut empty = EnclaveBoot::new(set.clone(), b"").unwrap();
    let key = *empty.public_key();
    empty
        .accept(&seal_share(&shares[0], &set, &key, b"").unwrap())
        .unwrap();
    assert!(boot.finish().is_ok() && empty.finish().is_ok());
}

#[test]
fn the_quorum_kek_wraps_user_keys() {
    let (key, set, shares) = generate(2, 3).unwrap();
    let kek = key.kek().unwrap();
    assert_eq!(kek.name(), "quorum");
    assert!(kek.wrapping().is_some() && kek.signing().is_none());
    assert_eq!(kek.kek_id().as_str(), key.public_key().kek_id_text());
    assert!(kek.kek_id().as_str().starts_with("quorum:"));
    let context = EncryptionContext::new().with("wallet", "alice").unwrap();
    let data_key = DataKey::new([9; 32]);
    let wrapped = kek
        .wrap(&kek.default_kek(), &data_key, &context)
        .wait()
        .unwrap();
    assert_eq!(wrapped.len(), 61);
    // The rebuilt key in the enclave unwraps it; the context is bound.
    let rebuilt = boot_with(&set, &[&shares[2], &shares[0]])
        .unwrap()
        .kek()
        .unwrap();
    assert_eq!(rebuilt.kek_id(), kek.kek_id());
    assert_eq!(
        rebuilt
            .unwrap(&kek.default_kek(), &wrapped, &context)
            .wait()
            .unwrap(),
        data_key
    );
    let bob = EncryptionContext::new().with("wallet", "bob").unwrap();
    assert!(
        rebuilt
            .unwrap(&kek.default_kek(), &wrapped, &bob)
            .wait()
            .is_err()
    );
    // Another quorum's KEK does not open it, even under the same id.
    let (other, _, _) = generate(1, 1).unwrap();
    let other = other.kek().unwrap();
    assert!(
        other
            .unwrap(&kek.default_kek(), &wrapped, &context)
            .wait()
            .is_err()
    );
    // Object-safe, as every backend.
    let shared: std::sync::Arc<dyn KeyBackend> = std::sync::Arc::new(rebuilt);
    assert_eq!(shared.name(), "quorum");
}

#[test]
fn the_kek_is_derived_not_the_secret_itself() {
    // Frozen, computed independently with Python `cryptography`: the
    // public key of the secret 0x42…42, the KEK HKDF-SHA256(ikm = secret,
    // salt = "custody/quorum-kek/v1", info = compressed public key), and
    // its id. A LocalKek holding that key under that id opens what the
    // quorum KEK wrapped.
    let secret = QuorumSecret::from_bytes(&[0x42; 32]).unwrap();
    let key = QuorumKey::from_secret(secret);
    assert_eq!(
        key.public_key().to_string(),
        "033ad3861a95621392516bb593ef05583ed2e5866f5cb6260a3017237fd89b90af"
    );
    let kek = key.kek().unwrap();
    assert_eq!(kek.kek_id().as_str(), "quorum:8cbc48b78519c7a8");
    let mut derived = [0u8; 32];
    hex::decode_to_slice(
        "5fca7e41dc29c17d15543bb1f4b8fd201b3442743c21cac63d118b2593116d9e",
        &mut derived,
    )
    .unwrap();
    let local = custody_core::LocalKek::from_key(kek.kek_id().clone(), DataKey::new(derived));
    let context = EncryptionContext::new().with("wallet", "carol").unwrap();
    let data_key = DataKey::new([3; 32]);
    let wrapped = kek.wrap(kek.kek_id(), &data_key, &context).wait().unwrap();
    assert_eq!(
        local
            .unwrap(kek.kek_id(), &wrapped, &context)
            .wait()
            .unwrap(),
        data_key
    );
    // The secret itself as the KEK does not open it.
    let raw = custody_core::LocalKek::from_key(kek.kek_id().clone(), DataKey::new([0x42; 32]));
    assert!(raw.unwrap(kek.kek_id(), &wrapped, &context).wait().is_err());
}

#[test]
fn debug_output_has_no_secrets() {
    let (key, set, shares) = generate(2, 3).unwrap();
    let value_hex = hex::encode(shares[0].expose_value());
    let secret_hex = hex::encode(key.expose_secret().expose_secret());
    let mut boot = EnclaveBoot::new(set.clone(), MANIFEST).unwrap();
    let sealed = seal_share(&shares[0], &set, boot.public_key(), MANIFEST).unwrap();
    boot.accept(&sealed).unwrap();
    let kek = key.kek().unwrap();
    for text in [
        format!("{:?}", shares[0]),
        format!("{key:?}"),
        format!("{:?}", key.expose_secret()),
        format!("{boot:?}"),
        format!("{kek:?}"),
        format!("{sealed:?}"),
        format!("{set:?}"),
    ] {
        assert!(
            !text.contains(&value_hex) && !text.contains(&secret_hex),
            "{text}"
        );
        assert!(!text.contains(&value_hex[..16]) && !text.contains(&secret_hex[..16]));
    }
    assert!(format!("{:?}", key.expose_secret()).contains("redacted"));
}

#[test]
fn sealing_is_deterministic_only_with_the_hazmat_ephemeral_key() {
    let secret = QuorumSecret::from_bytes(&[0x42; 32]).unwrap();
    let (set, shares) = split_seeded(&secret, 2, 3, &[1; 32]).unwrap();
    let (set2, shares2) = split_seeded(&secret, 2, 3, &[1; 32]).unwrap();
    assert_eq!(set.to_json(), set2.to_json());
    assert_eq!(*shares[1].to_json(), *shares2[1].to_json());
    let mut boot = enclave_boot_with_key(set.clone(), MANIFEST, &[0x33; 32]).unwrap();
    let key = *boot.public_key();
    let a = seal_share_with_ephemeral(&shares[0], &set, &key, MANIFEST, &[0x44; 32]).unwrap();
    let b = seal_share_with_ephemeral(&shares[0], &set, &key, MANIFEST, &[0x44; 32]).unwrap();
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(boot.accept(&a), Ok(1));
}

#[test]
fn user_keys_in_envelopes_survive_a_reboot_and_open_only_under_the_quorum() {
    // A signing node wraps a user key under the quorum KEK; the enclave
    // restarts (new ephemeral key, new seals from other holders) and the
    // envelope opens again; another quorum's KEK cannot open it.
    let (_, set, shares) = generate(2, 3).unwrap();
    let context = EncryptionContext::new()
        .with("wallet", "alice")
        .unwrap()
        .with("purpose", "user-key")
        .unwrap();
    let user_key = [0x5c; 32];
    let first = boot_with(&set, &[&shares[0], &shares[1]])
        .unwrap()
        .kek()
        .unwrap();
    let envelope = custody_core::Envelope::seal(&first, &first.default_kek(), &context, &user_key)
        .wait()
        .unwrap();
    assert_eq!(envelope.kek(), first.kek_id());
    drop(first);
    let second = boot_with(&set, &[&shares[2], &shares[1]])
        .unwrap()
        .kek()
        .unwrap();
    let bytes = envelope.to_bytes();
    let reread = custody_core::Envelope::from_bytes(&bytes).unwrap();
    assert_eq!(
        reread
            .open(&second, &context)
            .wait()
            .unwrap()
            .expose_secret(),
        &user_key
    );
    let (other, _, _) = generate(2, 3).unwrap();
    let other = other.kek().unwrap();
    assert!(reread.open(&other, &context).wait().is_err());
}

#[test]
fn a_boot_split_across_two_processes_opens_with_the_stored_key() {
    use custody_quorum::EnclaveSecretKey;
    let (key, set, shares) = generate(2, 3).unwrap();
    // Process one: draw the key, publish its public key, store the secret.
    let drawn = EnclaveSecretKey::generate().unwrap();
    let public = drawn.public_key();
    let stored = hex::encode(drawn.expose_secret().as_slice());
    drop(drawn);
    let sealed: Vec<_> = shares[1..]
        .iter()
        .map(|s| seal_share(s, &set, &public, MANIFEST).unwrap())
        .collect();
    // Process two: the key read back boots.
    let restored = EnclaveSecretKey::from_hex(&stored).unwrap();
    assert_eq!(restored.public_key(), public);
    assert_eq!(format!("{restored:?}"), "EnclaveSecretKey(<redacted>)");
    let mut boot = EnclaveBoot::with_secret_key(set.clone(), MANIFEST, restored).unwrap();
    assert_eq!(*boot.public_key(), public);
    for s in &sealed {
        boot.accept(s).unwrap();
    }
    assert_eq!(boot.finish().unwrap().public_key(), key.public_key());
    // Another key (or the stored one mistyped) opens nothing.
    let other = EnclaveSecretKey::generate().unwrap();
    let mut boot = EnclaveBoot::with_secret_key(set, MANIFEST, other).unwrap();
    assert_eq!(
        boot.accept(&sealed[0]),
        Err(Error::SealOpenFailed { index: 2 })
    );
    // Only 64 lower-case hex digits of a P-256 scalar are a key.
    assert_eq!(
        EnclaveSecretKey::from_hex(&stored.to_uppercase()).err(),
        Some(Error::Malformed("enclave secret key"))
    );
    assert!(matches!(
        EnclaveSecretKey::from_hex(&"00".repeat(32)),
        Err(Error::InvalidParameters(_))
    ));
    assert!(matches!(
        EnclaveSecretKey::from_hex(&"ff".repeat(32)),
        Err(Error::InvalidParameters(_))
    ));
}
