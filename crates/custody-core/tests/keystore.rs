//! The embedded keystore: create, open, import, and every typed failure.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::sync::Arc;

use custody_core::{
    AuditLog, Audited, Authorization, CreateOptions, Digest32, Envelope, Error, Intent, KdfParams,
    KeyRef, KeySigner, Keystore, Passphrase, PrivateKeyBytes, Seed, SharedBackend,
};

fn pass(s: &str) -> Passphrase {
    Passphrase::from_str_copy(s)
}

fn create(dir: &std::path::Path) -> Keystore {
    Keystore::create(
        dir,
        &pass("correct horse"),
        &Seed::new([0x42; 64]),
        &CreateOptions::light().unwrap(),
    )
    .unwrap()
}

fn sign_with(backend: SharedBackend, key: KeyRef) -> ([u8; 64], custody_core::PublicKey) {
    let s = KeySigner::pin(backend, key).wait().unwrap();
    let sig = s
        .sign(
            Digest32([9; 32]),
            Intent::raw_digest(),
            &Authorization::none(),
        )
        .wait()
        .unwrap();
    (sig.to_compact(), *s.key().public_key())
}

#[test]
fn create_then_open_gives_the_same_keys() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    let wallet = KeyRef::Wallet {
        name: "alice@example.com".into(),
        index: 0,
    };
    let before = sign_with(ks.backend(), wallet.clone());
    let xpub = ks.xpub().to_owned();
    assert!(xpub.starts_with("xpub"));
    drop(ks);
    let ks = Keystore::open(dir.path(), &pass("correct horse")).unwrap();
    assert_eq!(ks.xpub(), xpub);
    assert_eq!(sign_with(ks.backend(), wallet), before);
}

#[test]
fn wrong_passphrase_missing_and_existing_keystores_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Keystore::open(dir.path(), &pass("x")),
        Err(Error::KeystoreNotFound)
    ));
    let _ks = create(dir.path());
    assert!(matches!(
        Keystore::open(dir.path(), &pass("wrong")),
        Err(Error::WrongPassphrase)
    ));
    let again = Keystore::create(
        dir.path(),
        &pass("p"),
        &Seed::new([1; 64]),
        &CreateOptions::light().unwrap(),
    );
    assert!(matches!(again, Err(Error::KeystoreExists)));
}

#[test]
fn imported_keys_persist_and_keep_their_id() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    let (id, public) = ks.import_key(PrivateKeyBytes::new([0x33; 32])).unwrap();
    let (id2, _) = ks.import_key(PrivateKeyBytes::new([0x33; 32])).unwrap();
    assert_eq!(
        id, id2,
        "importing the same key twice returns its existing id"
    );
    drop(ks);
    let ks = Keystore::open(dir.path(), &pass("correct horse")).unwrap();
    let (_, pk) = sign_with(ks.backend(), KeyRef::Stored(id));
    assert_eq!(pk, public);
}

#[test]
fn envelope_moved_to_another_key_slot_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    let (id, _) = ks.import_key(PrivateKeyBytes::new([0x33; 32])).unwrap();
    drop(ks);
    let keys = dir.path().join("secrets.1").join("keys");
    std::fs::rename(
        keys.join(format!("{id}.env")),
        keys.join("key-0000000000000000.env"),
    )
    .unwrap();
    assert!(matches!(
        Keystore::open(dir.path(), &pass("correct horse")),
        Err(Error::DecryptionFailed)
    ));
}

#[test]
fn tampered_and_damaged_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    drop(create(dir.path()));
    let master = dir.path().join("secrets.1").join("master.env");
    let good = std::fs::read(&master).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    std::fs::write(&master, &bad).unwrap();
    assert!(matches!(
        Keystore::open(dir.path(), &pass("correct horse")),
        Err(Error::DecryptionFailed)
    ));
    std::fs::write(&master, &good[..10]).unwrap();
    assert!(matches!(
        Keystore::open(dir.path(), &pass("correct horse")),
        Err(Error::MalformedEnvelope(_))
    ));
    std::fs::write(&master, &good).unwrap();
    let meta = dir.path().join("keystore.json");
    let json = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, "{not json").unwrap();
    assert!(matches!(
        Keystore::open(dir.path(), &pass("correct horse")),
        Err(Error::MalformedRecord(_))
    ));
    // A hostile KDF setting must be refused before any allocation.
    let hostile = json.replace("\"logN\": 12", "\"logN\": 40");
    assert_ne!(hostile, json, "test must change the KDF cost");
    std::fs::write(&meta, hostile).unwrap();
    assert!(Keystore::open(dir.path(), &pass("correct horse")).is_err());
    std::fs::write(&meta, json).unwrap();
    assert!(Keystore::open(dir.path(), &pass("correct horse")).is_ok());
}

#[test]
fn operations_land_in_a_verifiable_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    ks.import_key(PrivateKeyBytes::new([0x44; 32])).unwrap();
    let audited: SharedBackend = Arc::new(Audited::new(ks.backend(), ks.audit()));
    let digest = Digest32([0xEE; 32]);
    let s = KeySigner::pin(
        audited.clone(),
        KeyRef::Wallet {
            name: "erin".into(),
            index: 2,
        },
    )
    .wait()
    .unwrap();
    s.sign(digest, Intent::raw_digest(), &Authorization::none())
        .wait()
        .unwrap();
    assert!(audited.exporting().is_some());
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let head = AuditLog::verify(log.as_bytes()).unwrap();
    assert_eq!(head.seq, 4, "create, unwrap, import, sign:\n{log}");
    let last = log.lines().last().unwrap();
    assert!(
        last.contains("\"sign\"") && last.contains(&hex::encode(digest.0)) && last.contains("erin")
    );
    assert!(
        !log.contains(&hex::encode([0x44u8; 32])),
        "no key material in the log"
    );
}

#[test]
fn passphrase_change_rewraps_every_secret_without_touching_payloads() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    let (id, public) = ks.import_key(PrivateKeyBytes::new([0x55; 32])).unwrap();
    let wallet = KeyRef::Wallet {
        name: "frank".into(),
        index: 1,
    };
    let before = sign_with(ks.backend(), wallet.clone());
    let xpub = ks.xpub().to_owned();
    let read_env = |generation: u32, rel: &str| {
        let bytes =
            std::fs::read(dir.path().join(format!("secrets.{generation}")).join(rel)).unwrap();
        Envelope::from_vec(bytes).unwrap()
    };
    let key_rel = format!("keys/{id}.env");
    let old_master = read_env(1, "master.env");
    let old_key = read_env(1, &key_rel);

    let ks = ks
        .change_passphrase(&pass("new passphrase"), &KdfParams::light().unwrap())
        .unwrap();
    assert_eq!(ks.xpub(), xpub);
    assert_eq!(sign_with(ks.backend(), wallet.clone()), before);
    drop(ks);

    assert!(
        !dir.path().join("secrets.1").exists(),
        "old generation removed"
    );
    let new_master = read_env(2, "master.env");
    let new_key = read_env(2, &key_rel);
    assert_eq!(
        new_master.ciphertext(),
        old_master.ciphertext(),
        "payload untouched"
    );
    assert_eq!(
        new_key.ciphertext(),
        old_key.ciphertext(),
        "payload untouched"
    );
    assert_ne!(new_master.kek(), old_master.kek());
    assert_ne!(new_master.wrapped_key(), old_master.wrapped_key());

    assert!(matches!(
        Keystore::open(dir.path(), &pass("correct horse")),
        Err(Error::WrongPassphrase)
    ));
    let ks = Keystore::open(dir.path(), &pass("new passphrase")).unwrap();
    assert_eq!(sign_with(ks.backend(), wallet), before);
    assert_eq!(sign_with(ks.backend(), KeyRef::Stored(id)).1, public);
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(log.contains("\"rotate\""));
    AuditLog::verify(log.as_bytes()).unwrap();
}

#[test]
fn an_interrupted_passphrase_change_leaves_the_old_passphrase_working() {
    let dir = tempfile::tempdir().unwrap();
    drop(create(dir.path()));
    // What a crash before the metadata switch leaves: a half-written next
    // generation that nothing references.
    let next = dir.path().join("secrets.2");
    std::fs::create_dir_all(next.join("keys")).unwrap();
    std::fs::write(next.join("master.env"), b"torn").unwrap();
    let ks = Keystore::open(dir.path(), &pass("correct horse")).unwrap();
    let ks = ks
        .change_passphrase(&pass("second"), &KdfParams::light().unwrap())
        .unwrap();
    drop(ks);
    Keystore::open(dir.path(), &pass("second")).unwrap();
}

#[test]
fn a_handle_is_stale_after_another_process_changes_the_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let first = create(dir.path());
    let second = Keystore::open(dir.path(), &pass("correct horse")).unwrap();
    let _first = first
        .change_passphrase(&pass("rotated"), &KdfParams::light().unwrap())
        .unwrap();
    assert!(matches!(
        second.import_key(PrivateKeyBytes::new([0x66; 32])),
        Err(Error::Stale)
    ));
}

#[test]
fn imports_racing_a_passphrase_change_are_never_lost() {
    // The writer lock serializes the two: every import that reports success
    // is in the keystore afterwards, under the new passphrase.
    for round in 0..5u8 {
        let dir = tempfile::tempdir().unwrap();
        let rotator = create(dir.path());
        let importer = Keystore::open(dir.path(), &pass("correct horse")).unwrap();
        let t = std::thread::spawn(move || {
            let mut ok = Vec::new();
            for i in 1..=20u8 {
                match importer.import_key(PrivateKeyBytes::new([i.wrapping_add(round * 20); 32])) {
                    Ok((id, _)) => ok.push(id),
                    Err(Error::Stale) => break,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            ok
        });
        let rotated = rotator
            .change_passphrase(&pass("next"), &KdfParams::light().unwrap())
            .unwrap();
        let imported = t.join().unwrap();
        drop(rotated);
        let ks = Keystore::open(dir.path(), &pass("next")).unwrap();
        for id in imported {
            KeySigner::pin(ks.backend(), KeyRef::Stored(id))
                .wait()
                .unwrap();
        }
    }
}
