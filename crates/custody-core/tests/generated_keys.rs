//! Keys of any algorithm generated in the keystore (`Keystore::generate_key`):
//! they sign after a reopen and a rewrap, their envelopes bind the key id and
//! the algorithm, an interrupted write leaves nothing listed, the generation
//! is audited, and keystores written before generated keys existed open
//! unchanged.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers unwrap and panic: a failure is a test failure"
)]

use std::path::{Path, PathBuf};

use custody_core::{
    AnyPublicKey, Authorization, ChainVerifier, CreateOptions, Digest32, Error, Intent,
    KeyAlgorithm, KeyId, KeyRef, KeySigner, Keystore, Passphrase, RootKek, Seed, SignatureScheme,
};
use sha2::{Digest as _, Sha256};

const ALGORITHMS: [KeyAlgorithm; 3] = [
    KeyAlgorithm::Secp256k1,
    KeyAlgorithm::P256,
    KeyAlgorithm::Ed25519,
];

fn pass(s: &str) -> Passphrase {
    Passphrase::from_str_copy(s)
}

fn create(dir: &Path) -> Keystore {
    Keystore::create(
        dir,
        &pass("correct horse"),
        &Seed::new([0x42; 64]),
        &CreateOptions::light().unwrap(),
    )
    .unwrap()
}

fn open(dir: &Path) -> Result<Keystore, Error> {
    Keystore::open(dir, &pass("correct horse"))
}

/// The generated keys' directory of the keystore's current generation.
fn generated_dir(dir: &Path) -> PathBuf {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("keystore.json")).unwrap()).unwrap();
    dir.join(format!("secrets.{}", meta["generation"].as_u64().unwrap()))
        .join("generated")
}

/// Signs `message` with the key `id` through the seam and verifies the
/// signature with RustCrypto's verifiers against `public` (the key that
/// `generate_key` returned), independently of the vault.
fn signs_as(ks: &Keystore, id: &KeyId, public: &AnyPublicKey, message: &[u8]) {
    let signer = KeySigner::pin(ks.backend(), KeyRef::Stored(id.clone()))
        .wait()
        .unwrap();
    assert_eq!(signer.key().public(), public);
    let auth = Authorization::none();
    let digest: [u8; 32] = Sha256::digest(message).into();
    match public {
        AnyPublicKey::Secp256k1(key) => {
            use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
            let sig = signer
                .sign(Digest32(digest), Intent::raw_digest(), &auth)
                .wait()
                .unwrap();
            let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&key.to_compressed()).unwrap();
            let sig = k256::ecdsa::Signature::from_slice(&sig.to_compact()).unwrap();
            vk.verify_prehash(&digest, &sig).unwrap();
        }
        AnyPublicKey::P256(key) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
            let sig = signer
                .sign_with(
                    SignatureScheme::EcdsaP256Sha256,
                    &digest,
                    Intent::raw_digest(),
                    &auth,
                )
                .wait()
                .unwrap();
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.to_uncompressed()).unwrap();
            let sig = p256::ecdsa::Signature::from_slice(&sig.to_bytes()).unwrap();
            vk.verify_prehash(&digest, &sig).unwrap();
        }
        AnyPublicKey::Ed25519(key) => {
            let sig = signer
                .sign_with(
                    SignatureScheme::Ed25519,
                    message,
                    Intent::raw_digest(),
                    &auth,
                )
                .wait()
                .unwrap();
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.to_bytes()).unwrap();
            vk.verify_strict(
                message,
                &ed25519_dalek::Signature::from_slice(sig.as_bytes()).unwrap(),
            )
            .unwrap();
        }
        _ => panic!("an algorithm this test does not know"),
    }
}

#[test]
fn generated_keys_of_every_algorithm_sign_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    let mut keys = Vec::new();
    for algorithm in ALGORITHMS {
        let (id, public) = ks.generate_key(algorithm).unwrap();
        assert_eq!(public.algorithm(), algorithm);
        let prefix = match algorithm {
            KeyAlgorithm::Secp256k1 => "secp256k1-",
            KeyAlgorithm::P256 => "p256-",
            _ => "ed25519-",
        };
        // The id: the prefix and 16 hex digits of SHA-256(alg ‖ 0 ‖ key).
        let mut h = Sha256::new();
        h.update(algorithm.as_str().as_bytes());
        h.update([0]);
        h.update(public.to_bytes());
        assert_eq!(
            id.as_str(),
            format!("{prefix}{}", hex::encode(&h.finalize()[..8]))
        );
        signs_as(&ks, &id, &public, b"before the reopen");
        keys.push((id, public));
    }
    // Two draws never give the same key.
    let (again, _) = ks.generate_key(KeyAlgorithm::P256).unwrap();
    assert_ne!(again, keys[1].0);
    drop(ks);

    let ks = open(dir.path()).unwrap();
    for (id, public) in &keys {
        signs_as(&ks, id, public, b"after the reopen");
    }
    // Each key is one envelope file, mode 0600, named by its id.
    let mut names: Vec<_> = std::fs::read_dir(generated_dir(dir.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), 4);
    for (id, _) in &keys {
        assert!(names.contains(&format!("{id}.env")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(generated_dir(dir.path()).join(&names[0]))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_generation_is_audited_with_its_id_algorithm_and_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    let (id, public) = ks.generate_key(KeyAlgorithm::Ed25519).unwrap();
    drop(ks);
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let generated: Vec<_> = records
        .iter()
        .map(|r| &r["event"])
        .filter(|e| e["op"] == "generate")
        .collect();
    assert_eq!(generated.len(), 1);
    let r = generated[0];
    assert_eq!(r["outcome"], "success");
    assert_eq!(r["key"], id.as_str());
    assert_eq!(r["algorithm"], "Ed25519");
    assert_eq!(r["public-key"], hex::encode(public.to_bytes()));
    // The record is part of the hash chain.
    let mut chain = ChainVerifier::new();
    for line in log.lines() {
        chain.push_line(line).unwrap();
    }
}

#[test]
fn an_envelope_moved_to_another_id_or_algorithm_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    let (p256, _) = ks.generate_key(KeyAlgorithm::P256).unwrap();
    drop(ks);
    let gen_dir = generated_dir(dir.path());
    let original = gen_dir.join(format!("{p256}.env"));
    let hexpart = p256.as_str().strip_prefix("p256-").unwrap();
    // Read as another algorithm's key (same digits, another prefix), or as
    // another P-256 key: the context differs, the envelope does not open.
    for moved in [
        format!("ed25519-{hexpart}.env"),
        format!("secp256k1-{hexpart}.env"),
        "p256-0000000000000000.env".to_owned(),
    ] {
        std::fs::rename(&original, gen_dir.join(&moved)).unwrap();
        match open(dir.path()) {
            Err(Error::DecryptionFailed) => {}
            other => panic!("{moved}: {other:?}"),
        }
        std::fs::rename(gen_dir.join(&moved), &original).unwrap();
    }
    // A name that is no generated key's id is refused, typed.
    std::fs::copy(&original, gen_dir.join("rsa-0000000000000000.env")).unwrap();
    assert!(matches!(open(dir.path()), Err(Error::MalformedRecord(_))));
    std::fs::remove_file(gen_dir.join("rsa-0000000000000000.env")).unwrap();
    // A flipped byte anywhere in the envelope: a typed error, no key.
    let bytes = std::fs::read(&original).unwrap();
    for i in [0, bytes.len() / 2, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[i] ^= 1;
        std::fs::write(&original, &damaged).unwrap();
        assert!(matches!(
            open(dir.path()),
            Err(Error::DecryptionFailed | Error::MalformedEnvelope(_))
        ));
    }
    std::fs::write(&original, &bytes).unwrap();
    open(dir.path()).unwrap();
}

#[test]
fn an_interrupted_write_leaves_no_key_listed() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    let (p256, public) = ks.generate_key(KeyAlgorithm::P256).unwrap();
    drop(ks);
    let gen_dir = generated_dir(dir.path());
    // What a crash before the rename leaves: a temp file (write_atomic's
    // name pattern), possibly torn.
    let bytes = std::fs::read(gen_dir.join(format!("{p256}.env"))).unwrap();
    std::fs::write(
        gen_dir.join(".p256-1111111111111111.env.4242.00ff00ff00ff00ff.tmp"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let ks = open(dir.path()).unwrap();
    signs_as(&ks, &p256, &public, b"still here");
    assert!(matches!(
        KeySigner::pin(
            ks.backend(),
            KeyRef::Stored(KeyId::new("p256-1111111111111111").unwrap())
        )
        .wait(),
        Err(Error::KeyNotFound)
    ));
}

#[test]
fn generated_keys_move_with_a_rewrap() {
    let dir = tempfile::tempdir().unwrap();
    let ks = create(dir.path());
    let keys: Vec<_> = ALGORITHMS
        .iter()
        .map(|a| ks.generate_key(*a).unwrap())
        .collect();
    let before =
        std::fs::read(generated_dir(dir.path()).join(format!("{}.env", keys[0].0))).unwrap();
    let kdf = custody_core::KdfParams::light().unwrap();
    let (ks, report) = ks
        .rewrap(RootKek::Passphrase {
            passphrase: &pass("battery staple"),
            kdf: &kdf,
        })
        .unwrap();
    // keyring + master + three generated keys.
    assert_eq!(report.rewrapped, 5);
    // Sealed under the keyring, copied byte for byte.
    assert_eq!(
        std::fs::read(generated_dir(dir.path()).join(format!("{}.env", keys[0].0))).unwrap(),
        before
    );
    drop(ks);
    let ks = Keystore::open(dir.path(), &pass("battery staple")).unwrap();
    for (id, public) in &keys {
        signs_as(&ks, id, public, b"after the rewrap");
    }
}

/// A frozen directory (tests/vectors/keystore_v<N>), copied.
fn fixture(version: u32) -> (tempfile::TempDir, serde_json::Value) {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(vectors.join(format!("keystore_v{version}.json"))).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&vectors.join(format!("keystore_v{version}")), dir.path());
    (dir, v)
}

fn copy_dir(from: &Path, to: &Path) {
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

/// Every file under `dir` but the audit log, state and the writer lock,
/// with its bytes.
fn secret_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if name == "state" || name == "audit.log" || name == "audit.log.lock" || name == ".lock"
            {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                out.push((entry.path(), std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn frozen_keystores_open_unchanged_and_take_generated_keys() {
    for version in [1, 2] {
        let (dir, v) = fixture(version);
        let passphrase = pass(v["passphrase"].as_str().unwrap());
        let files = secret_files(dir.path());
        let ks = Keystore::open(dir.path(), &passphrase).unwrap();
        assert_eq!(ks.format_version(), version);
        assert_eq!(ks.xpub(), v["xpub"].as_str().unwrap());
        drop(ks);
        // Opening wrote nothing to the secrets or the metadata.
        assert_eq!(secret_files(dir.path()), files, "v{version}");

        let ks = Keystore::open(dir.path(), &passphrase).unwrap();
        let (id, public) = ks.generate_key(KeyAlgorithm::P256).unwrap();
        drop(ks);
        // Only the new key's file was added; the format did not change.
        let after = secret_files(dir.path());
        assert_eq!(after.len(), files.len() + 1);
        assert!(files.iter().all(|f| after.contains(f)));
        let ks = Keystore::open(dir.path(), &passphrase).unwrap();
        assert_eq!(ks.format_version(), version);
        signs_as(&ks, &id, &public, b"in an old keystore");
        // The imported key recorded in the fixture is still there.
        let imported = KeyId::new(v["importedKey"]["keyId"].as_str().unwrap()).unwrap();
        KeySigner::pin(ks.backend(), KeyRef::Stored(imported))
            .wait()
            .unwrap();
    }
}
