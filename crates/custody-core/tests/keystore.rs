//! The embedded keystore: create, open, import, and every typed failure.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::sync::Arc;

use custody_core::{
    AuditLog, Audited, Authorization, CreateOptions, DataKey, Digest32, Envelope, Error, Intent,
    KdfParams, KekId, KekKind, KeyId, KeyRef, KeySigner, Keystore, LocalKek, Passphrase,
    PrivateKeyBytes, RootKek, Seed, SharedBackend, Unlock, Vault, WalletScheme,
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
    (sig.to_compact(), *s.key().secp256k1().unwrap())
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
fn passphrase_change_reseals_the_keyring_and_copies_every_secret_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    assert_eq!(ks.format_version(), 2);
    let (id, public) = ks.import_key(PrivateKeyBytes::new([0x55; 32])).unwrap();
    let wallet = KeyRef::Wallet {
        name: "frank".into(),
        index: 1,
    };
    let before = sign_with(ks.backend(), wallet.clone());
    let xpub = ks.xpub().to_owned();
    let read = |generation: u32, rel: &str| {
        std::fs::read(dir.path().join(format!("secrets.{generation}")).join(rel)).unwrap()
    };
    let key_rel = format!("keys/{id}.env");
    let old_master = read(1, "master.env");
    let old_key = read(1, &key_rel);
    let old_keyring = Envelope::from_vec(read(1, "keyring.env")).unwrap();
    // Secrets are sealed under the keyring, the keyring under the passphrase.
    let master_kek = Envelope::from_vec(old_master.clone())
        .unwrap()
        .kek()
        .clone();
    assert!(
        master_kek.as_str().starts_with("keystore:"),
        "{master_kek:?}"
    );
    assert!(old_keyring.kek().as_str().starts_with("passphrase:"));

    let (ks, report) = ks
        .rewrap(RootKek::Passphrase {
            passphrase: &pass("new passphrase"),
            kdf: &KdfParams::light().unwrap(),
        })
        .unwrap();
    assert_eq!(report.kek, "passphrase");
    assert_eq!(
        report.rewrapped, 3,
        "keyring, master seed, one imported key"
    );
    assert_eq!(ks.xpub(), xpub);
    assert_eq!(sign_with(ks.backend(), wallet.clone()), before);
    drop(ks);

    assert!(
        !dir.path().join("secrets.1").exists(),
        "old generation removed"
    );
    assert_eq!(read(2, "master.env"), old_master, "copied byte for byte");
    assert_eq!(read(2, &key_rel), old_key, "copied byte for byte");
    let new_keyring = Envelope::from_vec(read(2, "keyring.env")).unwrap();
    assert_ne!(new_keyring.kek(), old_keyring.kek());
    assert!(new_keyring.kek().as_str().starts_with("passphrase:"));

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

/// A software KEK standing in for a KMS or HSM key (the real ones are
/// tested in custody-kms and the CLI).
fn backend_kek(id: &str, byte: u8) -> SharedBackend {
    Arc::new(LocalKek::from_key(
        KekId::new(id).unwrap(),
        DataKey::new([byte; 32]),
    ))
}

#[test]
fn a_backend_kek_needs_no_passphrase_and_refuses_the_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let kek = backend_kek("arn:test:key/1", 1);
    let ks = Keystore::create_with(
        dir.path(),
        RootKek::Backend {
            uri: "test-kms:key/1",
            backend: kek.clone(),
        },
        &Seed::new([0x42; 64]),
        &CreateOptions::light().unwrap(),
    )
    .unwrap();
    assert_eq!(ks.kek_uri(), "test-kms:key/1");
    let wallet = KeyRef::Wallet {
        name: "carol".into(),
        index: 0,
    };
    let before = sign_with(ks.backend(), wallet.clone());
    drop(ks);
    let meta = std::fs::read_to_string(dir.path().join("keystore.json")).unwrap();
    assert!(
        !meta.contains("kdf"),
        "no passphrase KDF is recorded: {meta}"
    );
    assert_eq!(
        Keystore::kek_of(dir.path()).unwrap(),
        KekKind::Backend {
            uri: "test-kms:key/1".into(),
            kek_id: KekId::new("arn:test:key/1").unwrap(),
        }
    );

    let ks = Keystore::open_with(dir.path(), Unlock::Backend(kek.clone())).unwrap();
    assert_eq!(sign_with(ks.backend(), wallet.clone()), before);
    drop(ks);
    // The same KEK id holding another key: the keyring does not open.
    assert!(matches!(
        Keystore::open_with(
            dir.path(),
            Unlock::Backend(backend_kek("arn:test:key/1", 2))
        ),
        Err(Error::DecryptionFailed)
    ));
    // A backend whose KEK is another one: it does not hold the recorded id.
    assert!(matches!(
        Keystore::open_with(
            dir.path(),
            Unlock::Backend(backend_kek("arn:test:key/2", 1))
        ),
        Err(Error::UnknownKek)
    ));
    assert!(matches!(
        Keystore::open(dir.path(), &pass("anything")),
        Err(Error::WrongKek(_))
    ));

    // Backend → another backend → passphrase: the same keys throughout.
    let ks = Keystore::open_with(dir.path(), Unlock::Backend(kek)).unwrap();
    let next = backend_kek("arn:test:key/2", 3);
    let (ks, report) = ks
        .rewrap(RootKek::Backend {
            uri: "test-kms:key/2",
            backend: next.clone(),
        })
        .unwrap();
    assert_eq!(
        (report.kek.as_str(), report.rewrapped),
        ("test-kms:key/2", 2)
    );
    assert_eq!(sign_with(ks.backend(), wallet.clone()), before);
    let (ks, _) = ks
        .rewrap(RootKek::Passphrase {
            passphrase: &pass("back to a passphrase"),
            kdf: &KdfParams::light().unwrap(),
        })
        .unwrap();
    drop(ks);
    assert!(matches!(
        Keystore::open_with(dir.path(), Unlock::Backend(next)),
        Err(Error::WrongKek(_))
    ));
    let ks = Keystore::open(dir.path(), &pass("back to a passphrase")).unwrap();
    assert_eq!(sign_with(ks.backend(), wallet), before);
}

#[test]
fn a_backend_uri_must_name_a_scheme() {
    for uri in [
        "",
        "passphrase",
        "no-scheme",
        ":x",
        "aws-kms:",
        "aws kms:x",
        "aws-kms:\u{e9}",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let r = Keystore::create_with(
            dir.path(),
            RootKek::Backend {
                uri,
                backend: backend_kek("k", 1),
            },
            &Seed::new([0x42; 64]),
            &CreateOptions::light().unwrap(),
        );
        assert!(matches!(r, Err(Error::InvalidKeyId(_))), "{uri:?}: {r:?}");
        assert!(!dir.path().join("keystore.json").exists());
    }
}

/// A frozen directory (tests/vectors/keystore_v<N>.json), copied.
fn fixture(version: u32) -> (tempfile::TempDir, serde_json::Value) {
    let vectors = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(vectors.join(format!("keystore_v{version}.json"))).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&vectors.join(format!("keystore_v{version}")), dir.path());
    (dir, v)
}

fn v1_fixture() -> (tempfile::TempDir, serde_json::Value) {
    fixture(1)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every key of the fixture resolves to the public key it recorded.
fn check_v1_keys(ks: &Keystore, v: &serde_json::Value) {
    assert_eq!(ks.xpub(), v["xpub"].as_str().unwrap());
    for w in v["wallets"].as_array().unwrap() {
        let key = KeyRef::Wallet {
            name: w["wallet"].as_str().unwrap().into(),
            index: u32::try_from(w["index"].as_u64().unwrap()).unwrap(),
        };
        let (_, public) = sign_with(ks.backend(), key);
        assert_eq!(
            format!("0x{}", hex::encode(public.to_uncompressed())),
            w["publicKey"].as_str().unwrap()
        );
    }
    let imported = &v["importedKey"];
    let secret = hex::decode(&imported["privateKey"].as_str().unwrap()[2..]).unwrap();
    let expected = Vault::new(backend_kek("k", 1), WalletScheme::Default)
        .insert_key(
            KeyId::new("x").unwrap(),
            PrivateKeyBytes::from_slice(&secret).unwrap(),
        )
        .unwrap();
    let id = KeyId::new(imported["keyId"].as_str().unwrap()).unwrap();
    assert_eq!(sign_with(ks.backend(), KeyRef::Stored(id)).1, expected);
}

#[test]
fn a_frozen_v1_keystore_still_opens_and_moves_to_v2() {
    let (dir, v) = v1_fixture();
    let passphrase = pass(v["passphrase"].as_str().unwrap());
    let ks = Keystore::open(dir.path(), &passphrase).unwrap();
    assert_eq!(ks.format_version(), 1);
    check_v1_keys(&ks, &v);
    // Writes to a v1 keystore keep it v1.
    ks.import_key(PrivateKeyBytes::new([0x31; 32])).unwrap();
    drop(ks);
    let ks = Keystore::open(dir.path(), &passphrase).unwrap();
    assert_eq!(ks.format_version(), 1);
    let old_master =
        Envelope::from_vec(std::fs::read(dir.path().join("secrets.1/master.env")).unwrap())
            .unwrap();

    let kek = backend_kek("arn:test:key/9", 9);
    let (ks, report) = ks
        .rewrap(RootKek::Backend {
            uri: "test-kms:key/9",
            backend: kek.clone(),
        })
        .unwrap();
    assert_eq!(report.rewrapped, 4, "keyring, master, two imported keys");
    assert_eq!(ks.format_version(), 2);
    check_v1_keys(&ks, &v);
    drop(ks);
    // The master seed moved under a fresh keyring key, its payload untouched.
    let new_master =
        Envelope::from_vec(std::fs::read(dir.path().join("secrets.2/master.env")).unwrap())
            .unwrap();
    assert_eq!(new_master.ciphertext(), old_master.ciphertext());
    assert_eq!(old_master.kek().as_str(), "passphrase:e5fbc6b9cdcd376e");
    assert!(new_master.kek().as_str().starts_with("keystore:"));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("keystore.json")).unwrap()).unwrap();
    assert_eq!(meta["version"], 2);
    assert_eq!(meta["kek"]["type"], "backend");
    // The old passphrase no longer opens anything.
    assert!(matches!(
        Keystore::open(dir.path(), &passphrase),
        Err(Error::WrongKek(_))
    ));
    let ks = Keystore::open_with(dir.path(), Unlock::Backend(kek)).unwrap();
    check_v1_keys(&ks, &v);
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

#[test]
fn a_frozen_v2_keystore_opens() {
    let (dir, v) = fixture(2);
    let passphrase = pass(v["passphrase"].as_str().unwrap());
    let ks = Keystore::open(dir.path(), &passphrase).unwrap();
    assert_eq!(ks.format_version(), 2);
    check_v1_keys(&ks, &v);
    drop(ks);
    assert!(matches!(
        Keystore::open(dir.path(), &pass("not it")),
        Err(Error::WrongPassphrase)
    ));
}

/// The Python that runs `tests/vectors/open_keystore.py` (pyca/cryptography
/// installed), or `None` after saying the test is skipped.
fn python(test: &str) -> Option<String> {
    match std::env::var("CUSTODY_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            println!("skipped {test}: set CUSTODY_TEST_PYTHON to a Python with pyca/cryptography");
            None
        }
    }
}

/// What `open_keystore.py`, an independent reading of SPEC.md, finds in
/// `dir`.
fn open_independently(python: &str, dir: &std::path::Path, passphrase: &str) -> serde_json::Value {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/open_keystore.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(dir)
        .arg(passphrase)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_independent_reading_of_the_spec_opens_every_keystore_format() {
    let Some(python) = python("an_independent_reading_of_the_spec_opens_every_keystore_format")
    else {
        return;
    };
    let seed_of = |v: &serde_json::Value| {
        let m = custody_core::Mnemonic::parse(v["mnemonic"].as_str().unwrap()).unwrap();
        hex::encode(m.to_seed("").expose_secret())
    };
    let key_of = |v: &serde_json::Value| {
        (
            v["importedKey"]["keyId"].as_str().unwrap().to_owned(),
            v["importedKey"]["privateKey"].as_str().unwrap()[2..].to_owned(),
        )
    };
    // The frozen v1 and v2 directories.
    for version in [1, 2] {
        let (dir, v) = fixture(version);
        let got = open_independently(&python, dir.path(), v["passphrase"].as_str().unwrap());
        assert_eq!(got["version"], version);
        assert_eq!(got["seed"], seed_of(&v));
        let (id, key) = key_of(&v);
        assert_eq!(got["keys"][&id], key.as_str());
        if version == 2 {
            assert_eq!(got["keyring"], v["keyring"]);
        }
    }
    // v1 moved to v2 by this build: a fresh current key, the v1 KEK retired.
    let (dir, v) = fixture(1);
    let ks = Keystore::open(dir.path(), &pass(v["passphrase"].as_str().unwrap())).unwrap();
    let (ks, _) = ks
        .rewrap(RootKek::Passphrase {
            passphrase: &pass("moved"),
            kdf: &KdfParams::light().unwrap(),
        })
        .unwrap();
    drop(ks);
    let got = open_independently(&python, dir.path(), "moved");
    assert_eq!(
        (got["version"].as_u64(), got["generation"].as_u64()),
        (Some(2), Some(2))
    );
    let ring: Vec<&str> = got["keyring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(ring.len(), 2);
    assert!(ring[0].starts_with("keystore:"), "{ring:?}");
    assert_eq!(ring[1], "passphrase:e5fbc6b9cdcd376e");
    assert_eq!(got["seed"], seed_of(&v));
    let (id, key) = key_of(&v);
    assert_eq!(got["keys"][&id], key.as_str());
    // A keystore this build creates, with a key imported into it.
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    let (id, _) = ks.import_key(PrivateKeyBytes::new([0x77; 32])).unwrap();
    drop(ks);
    let got = open_independently(&python, dir.path(), "correct horse");
    assert_eq!(got["seed"], hex::encode([0x42; 64]));
    assert_eq!(got["keys"][id.as_str()], hex::encode([0x77; 32]));
}
