//! The vault's signatures against an independent implementation: every
//! signature must be the one `k256`'s RFC 6979
//! `SigningKey::sign_prehash_recoverable` gives for the same key and digest,
//! after low-s normalization, bit for bit (`r`, `s` and the recovery
//! parity), and must recover the signer's key.
//!
//! Both builds run it: the default one signs with `k256`'s arithmetic and
//! custody-core's own RFC 6979 nonces (`src/secrets/rfc6979.rs`), the `secp256k1`
//! feature's fast path with libsecp256k1 (which then also recovers every
//! signature here). The two agree with the same oracle, so with each other.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::sync::{Arc, Barrier};

use custody_core::{
    Authorization, DataKey, Digest32, ExtendedPrivateKey, Intent, KekId, KeyId, KeyRef, KeySigner,
    LocalKek, PrivateKeyBytes, PublicKey, RecoverableSignature, SharedBackend, Vault, WalletScheme,
};
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};

/// The order n of the secp256k1 group, big-endian (SEC 2 v2, §2.4.1).
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// How many random (key, digest) pairs the differential test walks.
const RANDOM_PAIRS: usize = 4096;

/// SplitMix64 (Steele, Lea, Flood 2014): a small seeded generator, so that a
/// failure reproduces.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_be_bytes());
        }
        out
    }
}

/// `a + b` modulo 2^256, big-endian.
fn add_small(a: [u8; 32], b: u8) -> [u8; 32] {
    let mut out = a;
    let mut carry = u16::from(b);
    for byte in out.iter_mut().rev() {
        let sum = u16::from(*byte) + carry;
        *byte = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    out
}

/// `a - b` for `a ≥ b`, big-endian.
fn sub_small(a: [u8; 32], b: u8) -> [u8; 32] {
    let mut out = a;
    let mut borrow = i16::from(b);
    for byte in out.iter_mut().rev() {
        let diff = i16::from(*byte) - borrow;
        *byte = (diff.rem_euclid(256)) as u8;
        borrow = i16::from(diff < 0);
    }
    out
}

fn scalar(v: u8) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[31] = v;
    out
}

fn empty_vault() -> Vault {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("differential").unwrap(),
        DataKey::new([3; 32]),
    ));
    Vault::new(kek, WalletScheme::Default)
}

/// What the oracle says: k256's RFC 6979 signature, normalized to low `s`
/// with the parity flipped alongside (written here, not with the SDK's
/// `normalize`, so that the oracle shares no code with what it checks).
fn k256_reference(key: &SigningKey, digest: &[u8; 32]) -> ([u8; 64], bool) {
    let (sig, recid) = key.sign_prehash_recoverable(digest);
    let low = sig.normalize_s();
    let parity = recid.is_y_odd() ^ (low != sig);
    (low.to_bytes().into(), parity)
}

/// Checks one signature of the vault against the oracle, and that it
/// recovers the signer's key with the SDK and k256 (and libsecp256k1 in
/// the feature build).
fn check(got: &RecoverableSignature, key: &SigningKey, digest: &Digest32, what: &str) {
    let (expected, parity) = k256_reference(key, &digest.0);
    assert_eq!(got.to_compact(), expected, "r‖s differ: {what}");
    assert_eq!(got.y_parity(), parity, "recovery parity differs: {what}");

    let public = PublicKey::from(k256::PublicKey::from(key.verifying_key()));
    assert_eq!(got.recover(digest).unwrap(), public, "SDK recovery: {what}");
    let sig = Signature::from_slice(&got.to_compact()).unwrap();
    let k256_recovered =
        VerifyingKey::recover_from_prehash(&digest.0, &sig, RecoveryId::new(parity, false))
            .unwrap();
    assert_eq!(
        &k256_recovered,
        key.verifying_key(),
        "k256 recovery: {what}"
    );

    #[cfg(feature = "secp256k1")]
    libsecp256k1_recovers(got, digest, &public, what);
}

/// libsecp256k1 recovers `public` from `got` (the fast path's own library,
/// as a second verifier).
#[cfg(feature = "secp256k1")]
fn libsecp256k1_recovers(
    got: &RecoverableSignature,
    digest: &Digest32,
    public: &PublicKey,
    what: &str,
) {
    let secp = secp256k1::Secp256k1::verification_only();
    let recid = secp256k1::ecdsa::RecoveryId::from_u8_masked(u8::from(got.y_parity()));
    let libsecp_sig =
        secp256k1::ecdsa::RecoverableSignature::from_compact(&got.to_compact(), recid).unwrap();
    let libsecp_recovered = secp
        .recover_ecdsa(secp256k1::Message::from_digest(digest.0), &libsecp_sig)
        .unwrap();
    assert_eq!(
        libsecp_recovered.serialize_uncompressed(),
        public.to_uncompressed(),
        "libsecp256k1 recovery: {what}"
    );
}

/// Imports `key` into `vault` under a fresh id and pins it.
fn import(backend: &SharedBackend, vault: &Vault, id: &str, key: &SigningKey) -> KeySigner {
    let public = vault
        .insert_key(
            KeyId::new(id).unwrap(),
            PrivateKeyBytes::from_slice(&key.to_bytes()).unwrap(),
        )
        .unwrap();
    let signer = KeySigner::pin(backend.clone(), KeyRef::Stored(KeyId::new(id).unwrap()))
        .wait()
        .unwrap();
    assert_eq!(signer.key().secp256k1().unwrap(), &public);
    signer
}

fn sign(signer: &KeySigner, digest: Digest32) -> RecoverableSignature {
    signer
        .sign(digest, Intent::raw_digest(), &Authorization::none())
        .wait()
        .unwrap()
}

#[test]
fn random_keys_and_digests_give_k256s_rfc6979_signatures() {
    let vault = Arc::new(empty_vault());
    let backend: SharedBackend = vault.clone();
    let mut rng = SplitMix64(0x6375_7374_6f64_7921);
    let mut parities = [0usize; 2];
    for i in 0..RANDOM_PAIRS {
        let key = loop {
            // A draw ≥ n (probability about 2^-128) or zero is redrawn.
            if let Ok(k) = SigningKey::from_slice(&rng.bytes32()) {
                break k;
            }
        };
        let digest = Digest32(rng.bytes32());
        let signer = import(&backend, &vault, &format!("random-{i}"), &key);
        let got = sign(&signer, digest);
        check(&got, &key, &digest, &format!("random pair {i}"));
        parities[usize::from(got.y_parity())] += 1;
    }
    // Both parities must occur, in roughly equal numbers (a path that always
    // answered 0 would be caught by `check` too; this guards the test).
    assert!(
        parities.iter().all(|&p| p > RANDOM_PAIRS / 3),
        "{parities:?}"
    );
}

#[test]
fn edge_keys_and_digests_give_k256s_rfc6979_signatures() {
    let n_minus_1 = sub_small(N, 1);
    let keys = [
        ("1", scalar(1)),
        ("2", scalar(2)),
        ("n-1", n_minus_1),
        ("n-2", sub_small(N, 2)),
        ("2^255", {
            let mut k = [0u8; 32];
            k[0] = 0x80;
            k
        }),
    ];
    let digests = [
        ("all zero", [0u8; 32]),
        ("one", scalar(1)),
        ("all 0xff (2^256-1 > n)", [0xff; 32]),
        ("n-1", n_minus_1),
        ("n (reduces to 0)", N),
        ("n+1 (reduces to 1)", add_small(N, 1)),
        ("n+0x42", add_small(N, 0x42)),
        ("2^255", {
            let mut d = [0u8; 32];
            d[0] = 0x80;
            d
        }),
    ];
    let vault = Arc::new(empty_vault());
    let backend: SharedBackend = vault.clone();
    for (key_name, key_bytes) in keys {
        let key = SigningKey::from_slice(&key_bytes).unwrap();
        let signer = import(&backend, &vault, &format!("edge-{key_name}"), &key);
        for (digest_name, digest) in digests {
            let got = sign(&signer, Digest32(digest));
            check(
                &got,
                &key,
                &Digest32(digest),
                &format!("key {key_name}, digest {digest_name}"),
            );
        }
    }
    // A digest ≥ n is reduced before RFC 6979 sees it (bits2octets), by both
    // libraries: digest n signs like digest 0, n + 1 like 1.
    let key = SigningKey::from_slice(&scalar(1)).unwrap();
    let signer = import(&backend, &vault, "edge-reduction", &key);
    assert_eq!(sign(&signer, Digest32(N)), sign(&signer, Digest32([0; 32])));
    assert_eq!(
        sign(&signer, Digest32(add_small(N, 1))),
        sign(&signer, Digest32(scalar(1)))
    );
}

#[test]
fn invalid_keys_are_refused_before_anything_is_signed() {
    let vault = empty_vault();
    let mut above = N;
    above[31] = 0x42;
    for bad in [[0u8; 32], N, above, [0xff; 32]] {
        assert!(
            vault
                .insert_key(KeyId::new("bad").unwrap(), PrivateKeyBytes::new(bad))
                .is_err()
        );
    }
}

#[test]
fn wallet_keys_through_the_public_api_give_k256s_signatures() {
    const SEED: [u8; 64] = [0x5a; 64];
    let mut vault = empty_vault();
    vault.set_master_seed(&SEED).unwrap();
    let backend: SharedBackend = Arc::new(vault);
    let master = ExtendedPrivateKey::from_seed(&SEED).unwrap();
    let mut rng = SplitMix64(0x7761_6c6c_6574_7321);
    for w in 0..16u32 {
        let name = format!("user{w}@example.com");
        for index in [0u32, 1, 7, 0x7fff_ffff] {
            let signer = KeySigner::pin(
                backend.clone(),
                KeyRef::Wallet {
                    name: name.clone(),
                    index,
                },
            )
            .wait()
            .unwrap();
            let path = WalletScheme::Default.key_path(&name, index).unwrap();
            let derived = master.derive_path(&path).unwrap();
            let key = SigningKey::from_slice(derived.expose_secret_key().expose_secret()).unwrap();
            for _ in 0..4 {
                let digest = Digest32(rng.bytes32());
                let got = sign(&signer, digest);
                check(&got, &key, &digest, &format!("{name} #{index}"));
            }
        }
    }
}

#[test]
fn threads_racing_to_make_the_context_all_sign_correctly() {
    // A fresh vault: the first signatures race (in the feature build, to
    // make and randomize its libsecp256k1 context; in the default one, to
    // key the shared RFC 6979 zero-key HMAC); every signature is right.
    let vault = Arc::new(empty_vault());
    let backend: SharedBackend = vault.clone();
    let key = SigningKey::from_slice(&[0x33; 32]).unwrap();
    let signer = import(&backend, &vault, "racing", &key);
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (signer, barrier, key) = (signer.clone(), barrier.clone(), key.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..16u8 {
                    let digest = Digest32([u8::try_from(t).unwrap() ^ i; 32]);
                    let got = sign(&signer, digest);
                    check(&got, &key, &digest, &format!("thread {t}, digest {i}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn debug_output_has_no_secrets_once_the_context_is_made() {
    let vault = Arc::new(empty_vault());
    let backend: SharedBackend = vault.clone();
    let key = SigningKey::from_slice(&[0x5c; 32]).unwrap();
    let signer = import(&backend, &vault, "shown", &key);
    let digest = Digest32([1; 32]);
    check(&sign(&signer, digest), &key, &digest, "debug");
    let shown = format!("{vault:?} {signer:?}");
    assert!(
        !shown.contains("5c5c") && !shown.contains("92, 92"),
        "{shown}"
    );
}
