//! The software vault through the `KeyBackend` seam.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::sync::Arc;

use custody_core::{
    Authorization, Capabilities, DataKey, DerivationPath, Digest32, Error, ExtendedPrivateKey,
    Intent, KekId, KeyBackend, KeyId, KeyKinds, KeyRef, KeySigner, LocalKek, PinnedKey,
    PrivateKeyBytes, PublicKey, SharedBackend, Vault, WalletScheme,
};
use k256::ecdsa::SigningKey;

const SEED: [u8; 64] = [0x5a; 64];

fn kek() -> SharedBackend {
    Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([7; 32]),
    ))
}

fn vault(scheme: WalletScheme) -> Vault {
    let mut v = Vault::new(kek(), scheme);
    v.set_master_seed(&SEED).unwrap();
    v
}

fn reference_signing_key(path: &DerivationPath) -> SigningKey {
    let xprv = ExtendedPrivateKey::from_seed(&SEED)
        .unwrap()
        .derive_path(path)
        .unwrap();
    SigningKey::from_slice(xprv.expose_secret_key().expose_secret()).unwrap()
}

#[test]
fn key_backend_is_object_safe_and_declares_capabilities() {
    let shared: Arc<dyn KeyBackend> = Arc::new(vault(WalletScheme::Default));
    let caps = Capabilities::of(shared.as_ref());
    assert_eq!(
        caps.signing,
        Some(KeyKinds {
            stored: true,
            hd: true
        })
    );
    assert!(
        caps.wrapping,
        "the vault forwards wrapping to its KEK backend"
    );
    assert!(caps.exporting);
    // A KEK-only backend declares that it cannot sign: no run-time failure needed.
    let k = kek();
    let caps = Capabilities::of(k.as_ref());
    assert_eq!(caps.signing, None);
    assert!(caps.wrapping && !caps.exporting);
    assert!(k.signing().is_none());
    // An empty vault (no master) resolves stored keys only.
    let empty = Vault::new(kek(), WalletScheme::Default);
    assert_eq!(
        Capabilities::of(&empty).signing,
        Some(KeyKinds {
            stored: true,
            hd: false
        })
    );
}

#[test]
fn wallet_signatures_match_an_independent_k256_signer() {
    let backend: SharedBackend = Arc::new(vault(WalletScheme::Default));
    for (name, index) in [
        ("alice@example.com", 0u32),
        ("alice@example.com", 7),
        ("bob", 0),
    ] {
        let signer = KeySigner::pin(
            backend.clone(),
            KeyRef::Wallet {
                name: name.into(),
                index,
            },
        )
        .wait()
        .unwrap();
        let path = WalletScheme::Default.key_path(name, index).unwrap();
        assert_eq!(signer.key().path(), Some(&path));
        assert_eq!(signer.key().wallet(), Some((name, index)));
        let reference = reference_signing_key(&path);
        assert_eq!(
            signer.key().secp256k1().unwrap(),
            &PublicKey::from(k256::PublicKey::from(reference.verifying_key()))
        );
        for i in 0u8..8 {
            let digest = Digest32([i ^ 0xA5; 32]);
            let sig = signer
                .sign(digest, Intent::raw_digest(), &Authorization::none())
                .wait()
                .unwrap();
            let (expected, recid) = reference.sign_prehash_recoverable(&digest.0);
            assert_eq!(sig.to_compact(), <[u8; 64]>::from(expected.to_bytes()));
            assert_eq!(sig.y_parity(), recid.is_y_odd());
            assert_eq!(
                &sig.recover(&digest).unwrap(),
                signer.key().secp256k1().unwrap()
            );
        }
    }
}

#[test]
fn path_and_wallet_references_reach_the_same_key() {
    let backend: SharedBackend = Arc::new(vault(WalletScheme::Fortanix));
    let by_wallet = KeySigner::pin(
        backend.clone(),
        KeyRef::Wallet {
            name: "carol".into(),
            index: 3,
        },
    )
    .wait()
    .unwrap();
    let path = WalletScheme::Fortanix.key_path("carol", 3).unwrap();
    let by_path = KeySigner::pin(backend.clone(), KeyRef::Path(path))
        .wait()
        .unwrap();
    assert_eq!(
        by_wallet.key().secp256k1().unwrap(),
        by_path.key().secp256k1().unwrap()
    );
    let master = KeySigner::pin(backend, KeyRef::Path(DerivationPath::master()))
        .wait()
        .unwrap();
    assert_eq!(
        master.key().secp256k1().unwrap(),
        &ExtendedPrivateKey::from_seed(&SEED).unwrap().public_key()
    );
}

#[test]
fn imported_keys_sign_and_unknown_ids_are_not_found() {
    let v = vault(WalletScheme::Default);
    let id = KeyId::new("key-1").unwrap();
    let public = v
        .insert_key(id.clone(), PrivateKeyBytes::new([0x11; 32]))
        .unwrap();
    let backend: SharedBackend = Arc::new(v);
    let signer = KeySigner::pin(backend.clone(), KeyRef::Stored(id))
        .wait()
        .unwrap();
    assert_eq!(signer.key().secp256k1().unwrap(), &public);
    let digest = Digest32([1; 32]);
    let sig = signer
        .sign(digest, Intent::raw_digest(), &Authorization::none())
        .wait()
        .unwrap();
    assert_eq!(sig.recover(&digest).unwrap(), public);
    let missing = KeySigner::pin(backend, KeyRef::Stored(KeyId::new("nope").unwrap())).wait();
    assert!(matches!(missing, Err(Error::KeyNotFound)));
}

#[test]
fn invalid_imported_key_is_rejected() {
    let v = vault(WalletScheme::Default);
    for bad in [[0u8; 32], [0xff; 32]] {
        assert!(matches!(
            v.insert_key(KeyId::new("k").unwrap(), PrivateKeyBytes::new(bad)),
            Err(Error::InvalidKeyMaterial(_))
        ));
    }
}

#[test]
fn export_returns_the_key_and_refuses_a_mispinned_one() {
    let v = vault(WalletScheme::Default);
    let key = KeyRef::Wallet {
        name: "dave".into(),
        index: 1,
    };
    let pinned = custody_core::SigningBackend::pin(&v, &key).wait().unwrap();
    let exported = v
        .exporting()
        .unwrap()
        .export_private_key(&pinned, &Authorization::none())
        .wait()
        .unwrap();
    let path = WalletScheme::Default.key_path("dave", 1).unwrap();
    assert_eq!(
        exported.expose_secret(),
        ExtendedPrivateKey::from_seed(&SEED)
            .unwrap()
            .derive_path(&path)
            .unwrap()
            .expose_secret_key()
            .expose_secret()
    );
    let other = PublicKey::from_sec1_bytes(
        &ExtendedPrivateKey::from_seed(&SEED)
            .unwrap()
            .public_key()
            .to_compressed(),
    )
    .unwrap();
    let wrong = PinnedKey::new(key, Some(path), other);
    assert!(matches!(
        v.exporting()
            .unwrap()
            .export_private_key(&wrong, &Authorization::none())
            .wait(),
        Err(Error::PublicKeyMismatch)
    ));
}

#[test]
fn node_cache_is_bounded() {
    let v = vault(WalletScheme::Default).with_cache_capacity(2);
    let backend: Arc<Vault> = Arc::new(v);
    for name in ["w1", "w2", "w3", "w1"] {
        let s = KeySigner::pin(
            backend.clone(),
            KeyRef::Wallet {
                name: name.into(),
                index: 0,
            },
        )
        .wait()
        .unwrap();
        s.sign(
            Digest32([2; 32]),
            Intent::raw_digest(),
            &Authorization::none(),
        )
        .wait()
        .unwrap();
        assert!(backend.cached_nodes() <= 2);
    }
    assert_eq!(backend.cached_nodes(), 2);
}

#[test]
fn threads_sign_concurrently_for_different_wallets() {
    let backend: SharedBackend = Arc::new(vault(WalletScheme::Default));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let backend = backend.clone();
            std::thread::spawn(move || {
                let s = KeySigner::pin(
                    backend,
                    KeyRef::Wallet {
                        name: format!("user{t}"),
                        index: t,
                    },
                )
                .wait()
                .unwrap();
                for i in 0u8..50 {
                    let d = Digest32([i; 32]);
                    let sig = s
                        .sign(d, Intent::raw_digest(), &Authorization::none())
                        .wait()
                        .unwrap();
                    assert_eq!(&sig.recover(&d).unwrap(), s.key().secp256k1().unwrap());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn debug_output_has_no_secrets() {
    let v = vault(WalletScheme::Default);
    let s = format!("{v:?}");
    assert!(s.contains("Vault") && !s.contains("5a5a"), "{s}");
}

#[test]
fn scheme_check_of_a_pinned_key_is_kept_per_scheme_and_never_changes_its_answer() {
    let public = ExtendedPrivateKey::from_seed(&SEED).unwrap().public_key();
    let wallet = |name: &str, index: u32| KeyRef::Wallet {
        name: name.into(),
        index,
    };
    for scheme in [WalletScheme::Default, WalletScheme::Fortanix] {
        let other = if scheme == WalletScheme::Default {
            WalletScheme::Fortanix
        } else {
            WalletScheme::Default
        };
        let path = scheme.key_path("alice", 3).unwrap();
        let cases = [
            (wallet("alice", 3), Some(path.clone())),
            (wallet("alice", 4), Some(path.clone())),
            (wallet("bob", 3), Some(path.clone())),
            (
                wallet("alice", 3),
                Some(other.key_path("alice", 3).unwrap()),
            ),
            (wallet("alice", 3), None),
            (KeyRef::Path(path.clone()), Some(path.clone())),
        ];
        for (reference, p) in cases {
            let key = PinnedKey::new(reference.clone(), p.clone(), public);
            let expected = |s: WalletScheme| match (&reference, &p) {
                (KeyRef::Wallet { name, index }, Some(p)) => s.is_key_path(name, *index, p),
                _ => false,
            };
            // Asked repeatedly, alternating schemes, on the key and a clone:
            // always the answer of `is_key_path` for the scheme asked.
            let copy = key.clone();
            for s in [scheme, other, scheme, other, scheme] {
                assert_eq!(key.is_scheme_path(s), expected(s), "{reference:?} {s:?}");
                assert_eq!(copy.is_scheme_path(s), expected(s), "{reference:?} {s:?}");
            }
            // Being checked does not make a key unequal to a fresh one.
            assert_eq!(key, PinnedKey::new(reference.clone(), p.clone(), public));
        }
    }
    // The case the gate relies on, both ways.
    let path = WalletScheme::Default.key_path("alice", 3).unwrap();
    assert!(
        PinnedKey::new(wallet("alice", 3), Some(path.clone()), public)
            .is_scheme_path(WalletScheme::Default)
    );
    assert!(
        !PinnedKey::new(wallet("mallory", 3), Some(path), public)
            .is_scheme_path(WalletScheme::Default)
    );
}
