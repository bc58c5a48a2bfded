//! [`Vault`]: secrets held in process and signing with them (see its docs).
use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::secrets::hd::{ChainNode, HdNode};
use crate::{
    AnyPublicKey, Authorization, ChildNumber, DecryptRequest, Decrypted, DecryptingBackend,
    Decryption, DerivationPath, Digest32, Ed25519PublicKey, Error, ExportingBackend, KeyAlgorithm,
    KeyBackend, KeyId, KeyKinds, KeyRef, Origin, P256PublicKey, Pending, PinnedKey,
    PrivateKeyBytes, PublicKey, RawSignature, SecretVec, SharedBackend, SignRequest,
    SignatureScheme, Signed, SigningBackend, WalletScheme, WrappingBackend,
};

/// Default number of wallet nodes kept unlocked in the cache.
pub const DEFAULT_NODE_CACHE: usize = 10_000;

impl Borrow<[ChildNumber]> for DerivationPath {
    fn borrow(&self) -> &[ChildNumber] {
        self.components()
    }
}

struct CacheEntry {
    node: HdNode,
    /// The epoch of the last use (see [`NodeCache`]).
    last_used: AtomicU64,
}

/// Bounded cache of unlocked HD nodes, keyed by path; least recently used is
/// evicted (and zeroized on drop) when full.
///
/// "Recently" is counted in epochs: the epoch advances once per insertion
/// (a miss), and a hit stamps its entry with the current epoch, writing
/// only when the stamp changes. So a warm cache's hits write nothing
/// shared: threads signing for different wallets touch only their own
/// entries and a read lock (there is no global counter bumped per
/// signature, whose cache line every core would fight over). The victim is
/// an entry unused for the most insertions; hits between two insertions
/// are not ordered among themselves, which is all the precision a bound on
/// unlocked nodes needs.
struct NodeCache {
    map: RwLock<HashMap<DerivationPath, CacheEntry>>,
    capacity: usize,
    epoch: AtomicU64,
}

impl NodeCache {
    fn new(capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
            epoch: AtomicU64::new(0),
        }
    }

    /// Runs `f` on the node at `path`, deriving it from `master` on a miss.
    fn with_node<T>(
        &self,
        master: &ChainNode,
        path: &[ChildNumber],
        f: impl Fn(&HdNode) -> Result<T, Error>,
    ) -> Result<T, Error> {
        {
            let map = self
                .map
                .read()
                .map_err(|_| Error::Unsupported("node cache poisoned"))?;
            if let Some(e) = map.get(path) {
                let now = self.epoch.load(Ordering::Relaxed);
                if e.last_used.load(Ordering::Relaxed) != now {
                    e.last_used.store(now, Ordering::Relaxed);
                }
                return f(&e.node);
            }
        }
        let path = DerivationPath::from_components(path.to_vec())?;
        let node = HdNode::new(master.derive_path(&path)?)?;
        let out = f(&node);
        let mut map = self
            .map
            .write()
            .map_err(|_| Error::Unsupported("node cache poisoned"))?;
        // Stamped before the epoch advances: every later hit is newer.
        let tick = self.epoch.fetch_add(1, Ordering::Relaxed);
        if map.len() >= self.capacity && !map.contains_key(&path) {
            let oldest = map
                .iter()
                .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(
            path,
            CacheEntry {
                node,
                last_used: AtomicU64::new(tick),
            },
        );
        out
    }

    fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }
}

struct ImportedKey {
    /// The secret scalar (ECDSA curves) or RFC 8032 seed (Ed25519).
    secret: PrivateKeyBytes,
    public: AnyPublicKey,
    /// The signing key of a P-256 or Ed25519 key, built once at insert:
    /// building one computes its public point (a scalar multiplication),
    /// which a signature would otherwise pay every time.
    signing: Option<HeldSigningKey>,
}

/// The signing key of a held P-256 or Ed25519 key. Both types wipe their
/// secret on drop (`_held_signing_keys_are_wiped_on_drop` proves it at
/// compile time) and print nothing secret: this enum has no `Debug`, and
/// the vault's `Debug` lists key ids only.
enum HeldSigningKey {
    /// `p256::ecdsa::SigningKey`: the secret scalar and its public key.
    P256(p256::ecdsa::SigningKey),
    /// `ed25519_dalek::SigningKey`: the RFC 8032 seed and its public key.
    Ed25519(ed25519_dalek::SigningKey),
}

/// Compile-time proof that the held signing keys wipe their secrets on
/// drop: `ecdsa::SigningKey` implements `ZeroizeOnDrop`, and
/// `ed25519_dalek::SigningKey` does with its `zeroize` feature (on in the
/// workspace). Never called.
fn _held_signing_keys_are_wiped_on_drop() {
    fn wiped<T: zeroize::ZeroizeOnDrop>() {}
    wiped::<p256::ecdsa::SigningKey>();
    wiped::<ed25519_dalek::SigningKey>();
}

impl HeldSigningKey {
    /// The signing key of `secret` for `algorithm` (none for secp256k1,
    /// whose hot path signs from the bare scalar), and its public key.
    fn build(
        algorithm: KeyAlgorithm,
        secret: &PrivateKeyBytes,
    ) -> Result<(Option<Self>, AnyPublicKey), Error> {
        match algorithm {
            KeyAlgorithm::P256 => {
                let key = p256::ecdsa::SigningKey::from_slice(secret.expose_secret())
                    .map_err(|_| Error::InvalidKeyMaterial("not a valid P-256 secret key"))?;
                let public = AnyPublicKey::P256(P256PublicKey::from(p256::PublicKey::from(
                    key.verifying_key(),
                )));
                Ok((Some(Self::P256(key)), public))
            }
            KeyAlgorithm::Ed25519 => {
                let key = ed25519_dalek::SigningKey::from_bytes(secret.expose_secret());
                let public = AnyPublicKey::Ed25519(Ed25519PublicKey::from(key.verifying_key()));
                Ok((Some(Self::Ed25519(key)), public))
            }
            other => Ok((None, public_of(other, secret)?)),
        }
    }
}

/// [`Vault`]: secrets held in process, in zeroizing memory, and signing with
/// them — the second custody model of [`crate::KeyBackend`].
///
/// A vault holds an unlocked BIP32 master (from a BIP39 seed) and imported
/// keys. It does not store anything: the keystore ([`crate::Keystore`])
/// persists each secret envelope-encrypted under a KEK held by *another*
/// backend (a passphrase-derived [`crate::LocalKek`] by default; KMS or an
/// enclave with `custody-kms`) and loads it here. The vault is itself a
/// `KeyBackend`: it signs and exports, and forwards wrapping to its KEK
/// backend.
///
/// # The hot path
/// Wallet keys live at `wallet node / index`. The vault caches wallet nodes
/// (private key, chain code and the node's compressed public key, all in
/// zeroizing memory) in a bounded cache, so that a signature for key `i` of a
/// warm wallet costs one HMAC-SHA512 and one scalar addition (the child key)
/// plus the ECDSA signature itself — no public key is computed per signature.
///
/// # The signing arithmetic
/// Signatures are RFC 6979 ECDSA, computed with `k256`'s arithmetic (pure
/// Rust) by default, with the RFC 6979 nonce derived by this crate in 16
/// SHA-256 compressions instead of the `rfc6979` crate's 30 (the same nonce:
/// see `src/secrets/rfc6979.rs`). With the cargo feature `secp256k1` (off by default) they are
/// computed with libsecp256k1 instead, Bitcoin Core's C library, which signs
/// in about two thirds of the time. The signatures are identical bit for bit (same
/// `r`, `s` and recovery parity: a test proves it against `k256`), and
/// nothing else changes: not this type's API, not the [`crate::KeyBackend`]
/// seam, not the public keys. The feature is off by default because it puts
/// C code and an `unsafe` FFI layer into the build that an audit of this SDK
/// must then cover. With it, each vault makes one libsecp256k1 context on its
/// first signature, randomized (side-channel blinding) from the OS CSPRNG;
/// if that generator fails the signature fails with [`Error::Rng`].
pub struct Vault {
    kek: SharedBackend,
    scheme: WalletScheme,
    master: Option<ChainNode>,
    /// Computed on first use: unlocking costs no scalar multiplication.
    master_public: std::sync::OnceLock<PublicKey>,
    imported: RwLock<HashMap<KeyId, ImportedKey>>,
    cache: NodeCache,
    /// How this vault's signatures are released ([`Vault::with_verify_after_sign`]).
    origin: Origin,
    /// The libsecp256k1 signing context, made on first use.
    #[cfg(feature = "secp256k1")]
    secp256k1: crate::secrets::secp_fast::Context,
}

impl Vault {
    /// An empty vault whose secrets are wrapped by `kek` and whose wallet
    /// names map to paths by `scheme`.
    #[must_use]
    pub fn new(kek: SharedBackend, scheme: WalletScheme) -> Self {
        Self {
            kek,
            scheme,
            master: None,
            master_public: std::sync::OnceLock::new(),
            imported: RwLock::new(HashMap::new()),
            cache: NodeCache::new(DEFAULT_NODE_CACHE),
            origin: Origin::InProcess,
            #[cfg(feature = "secp256k1")]
            secp256k1: crate::secrets::secp_fast::Context::new(),
        }
    }

    /// Sets how many wallet nodes stay unlocked in the cache.
    #[must_use]
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = NodeCache::new(capacity);
        self
    }

    /// With `on`, every signature of this vault is verified against the
    /// pinned key before [`crate::KeySigner`] releases it, as a KMS's or an
    /// HSM's is (its answers are [`Origin::Backend`]); off by default. It
    /// costs one verification per signature (JWT signing took 2.1 to 2.6
    /// times as long with it on in `benches/jwt.rs`) and guards against a
    /// fault in this process's own deterministic signing (RFC 6979, EdDSA)
    /// leaking the key: what
    /// Bitcoin Core's `CKey::Sign` always does. [`Origin`] says why it is
    /// not the default.
    #[must_use]
    pub fn with_verify_after_sign(mut self, on: bool) -> Self {
        self.origin = if on {
            Origin::Backend
        } else {
            Origin::InProcess
        };
        self
    }

    /// Unlocks the HD master from a BIP39 seed.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if the seed does not give a valid master.
    pub fn set_master_seed(&mut self, seed: &[u8]) -> Result<(), Error> {
        let master = ChainNode::from_seed(seed)?;
        self.master_public = std::sync::OnceLock::new();
        self.master = Some(master);
        Ok(())
    }

    /// Holds an imported private key under `id`; returns its public key.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if the bytes are not a valid secret key.
    pub fn insert_key(&self, id: KeyId, secret: PrivateKeyBytes) -> Result<PublicKey, Error> {
        let public = public_key_of(&secret)?;
        self.hold(
            id,
            ImportedKey {
                secret,
                public: AnyPublicKey::Secp256k1(public),
                signing: None,
            },
        )?;
        Ok(public)
    }

    /// Holds a private key of `algorithm` under `id` (a JOSE signing key:
    /// a P-256 or secp256k1 scalar, or an Ed25519 seed); returns its public
    /// key. Such a key signs with its algorithm's scheme only
    /// ([`crate::SignRequest::with_scheme`]).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if the bytes are not a valid secret
    /// of that algorithm.
    pub fn insert_algorithm_key(
        &self,
        id: KeyId,
        algorithm: KeyAlgorithm,
        secret: PrivateKeyBytes,
    ) -> Result<AnyPublicKey, Error> {
        let (signing, public) = HeldSigningKey::build(algorithm, &secret)?;
        self.hold(
            id,
            ImportedKey {
                secret,
                public: public.clone(),
                signing,
            },
        )?;
        Ok(public)
    }

    fn hold(&self, id: KeyId, key: ImportedKey) -> Result<(), Error> {
        let mut map = self
            .imported
            .write()
            .map_err(|_| Error::Unsupported("vault poisoned"))?;
        map.insert(id, key);
        Ok(())
    }

    /// The wallet scheme.
    #[must_use]
    pub fn scheme(&self) -> WalletScheme {
        self.scheme
    }

    /// The HD master's public key, once unlocked.
    #[must_use]
    pub fn master_public_key(&self) -> Option<PublicKey> {
        let master = self.master.as_ref()?;
        Some(*self.master_public.get_or_init(|| master.public_key()))
    }

    /// Number of wallet nodes currently cached.
    #[must_use]
    pub fn cached_nodes(&self) -> usize {
        self.cache.len()
    }

    /// The full path a reference resolves to, for HD references.
    ///
    /// # Errors
    /// [`Error::InvalidWallet`] from the wallet scheme.
    pub fn resolve_path(&self, key: &KeyRef) -> Result<Option<DerivationPath>, Error> {
        match key {
            KeyRef::Stored(_) => Ok(None),
            KeyRef::Path(p) => Ok(Some(p.clone())),
            KeyRef::Wallet { name, index } => self.scheme.key_path(name, *index).map(Some),
        }
    }

    /// Runs `f` with the secret key of `key` (derived or imported), in
    /// zeroizing memory that is wiped when `f` returns.
    fn with_secret<T>(
        &self,
        reference: &KeyRef,
        path: Option<&DerivationPath>,
        f: impl Fn(&PrivateKeyBytes) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if let Some(path) = path {
            let master = self.master.as_ref().ok_or(Error::KeyNotFound)?;
            return match path.components().split_last() {
                None => f(master.expose_secret_key()),
                Some((last, parent)) => self.cache.with_node(master, parent, |node| {
                    let child = node.child_secret(*last)?;
                    f(&child)
                }),
            };
        }
        match reference {
            KeyRef::Stored(id) => {
                let map = self
                    .imported
                    .read()
                    .map_err(|_| Error::Unsupported("vault poisoned"))?;
                let key = map.get(id).ok_or(Error::KeyNotFound)?;
                f(&key.secret)
            }
            _ => Err(Error::KeyNotFound),
        }
    }

    fn pin_now(&self, key: &KeyRef) -> Result<PinnedKey, Error> {
        let path = self.resolve_path(key)?;
        let public = match (&path, key) {
            (None, KeyRef::Stored(id)) => {
                let map = self
                    .imported
                    .read()
                    .map_err(|_| Error::Unsupported("vault poisoned"))?;
                map.get(id).ok_or(Error::KeyNotFound)?.public.clone()
            }
            _ => AnyPublicKey::Secp256k1(self.with_secret(key, path.as_ref(), public_key_of)?),
        };
        Ok(PinnedKey::with_public(key.clone(), path, public))
    }

    /// Signs a request of a scheme other than secp256k1 ECDSA with a held
    /// key of that algorithm, after checking that the key held under the
    /// request's id is the pinned one.
    fn sign_other(&self, request: &SignRequest<'_>) -> Result<Signed, Error> {
        let KeyRef::Stored(id) = request.key.reference() else {
            return Err(Error::Unsupported(
                "keys of other algorithms than secp256k1 are held by id, not derived",
            ));
        };
        let map = self
            .imported
            .read()
            .map_err(|_| Error::Unsupported("vault poisoned"))?;
        let held = map.get(id).ok_or(Error::KeyNotFound)?;
        if held.public != *request.key.public() {
            return Err(Error::PublicKeyMismatch);
        }
        let signature = match (request.scheme, request.message, &held.signing) {
            (SignatureScheme::EcdsaP256Sha256, None, Some(HeldSigningKey::P256(key))) => {
                use p256::ecdsa::signature::hazmat::PrehashSigner as _;
                let signature: p256::ecdsa::Signature = key
                    .sign_prehash(request.digest.as_bytes())
                    .map_err(|_| Error::InvalidSignature)?;
                RawSignature::Compact(signature.to_bytes().into())
            }
            (SignatureScheme::Ed25519, Some(message), Some(HeldSigningKey::Ed25519(key))) => {
                use ed25519_dalek::Signer as _;
                RawSignature::Compact(key.sign(message).to_bytes())
            }
            _ => {
                return Err(Error::Unsupported(
                    "the software vault does not sign this scheme",
                ));
            }
        };
        Ok(self.released(signature))
    }

    /// A signature of this vault, with its [`Origin`].
    fn released(&self, signature: RawSignature) -> Signed {
        Signed {
            origin: self.origin,
            ..Signed::new(signature)
        }
    }

    /// ECDH with a P-256 key held by id: the shared x-coordinate.
    fn agree(&self, request: &DecryptRequest<'_>) -> Result<Decrypted, Error> {
        let Decryption::EcdhP256 { peer } = request.decryption else {
            return Err(Error::Unsupported(
                "the software vault holds no RSA key (RUSTSEC-2023-0071): RSA-OAEP lives in KMS or an HSM",
            ));
        };
        let KeyRef::Stored(id) = request.key.reference() else {
            return Err(Error::Unsupported(
                "keys of other algorithms than secp256k1 are held by id, not derived",
            ));
        };
        let map = self
            .imported
            .read()
            .map_err(|_| Error::Unsupported("vault poisoned"))?;
        let held = map.get(id).ok_or(Error::KeyNotFound)?;
        if held.public != *request.key.public() || held.public.algorithm() != KeyAlgorithm::P256 {
            return Err(Error::PublicKeyMismatch);
        }
        let Some(HeldSigningKey::P256(key)) = &held.signing else {
            return Err(Error::PublicKeyMismatch);
        };
        let shared =
            p256::ecdh::diffie_hellman(key.as_nonzero_scalar(), peer.as_p256().as_affine());
        Ok(Decrypted::new(SecretVec::from_slice(
            shared.raw_secret_bytes().as_slice(),
        )))
    }
}

impl DecryptingBackend for Vault {
    fn decrypt<'a>(&'a self, request: DecryptRequest<'a>) -> Pending<'a, Result<Decrypted, Error>> {
        Pending::ready(self.agree(&request))
    }
}

/// The public key of a secret of `algorithm`.
pub(crate) fn public_of(
    algorithm: KeyAlgorithm,
    secret: &PrivateKeyBytes,
) -> Result<AnyPublicKey, Error> {
    match algorithm {
        KeyAlgorithm::Secp256k1 => public_key_of(secret).map(AnyPublicKey::Secp256k1),
        KeyAlgorithm::P256 => p256::SecretKey::from_slice(secret.expose_secret())
            .map(|k| AnyPublicKey::P256(P256PublicKey::from(k.public_key())))
            .map_err(|_| Error::InvalidKeyMaterial("not a valid P-256 secret key")),
        KeyAlgorithm::Ed25519 => {
            let key = ed25519_dalek::SigningKey::from_bytes(secret.expose_secret());
            Ok(AnyPublicKey::Ed25519(Ed25519PublicKey::from(
                key.verifying_key(),
            )))
        }
        // No local RSA private key, ever (RUSTSEC-2023-0071).
        KeyAlgorithm::Rsa => Err(Error::Unsupported(
            "the software vault holds no RSA key (RUSTSEC-2023-0071): RSA lives in KMS or an HSM",
        )),
    }
}

/// The public key of a secret scalar (one scalar multiplication).
pub(crate) fn public_key_of(secret: &PrivateKeyBytes) -> Result<PublicKey, Error> {
    let sk = k256::SecretKey::from_slice(secret.expose_secret())
        .map_err(|_| Error::InvalidKeyMaterial("not a valid secp256k1 secret key"))?;
    Ok(PublicKey::from(sk.public_key()))
}

/// RFC 6979 ECDSA over a prehash with a bare scalar (no public key is
/// computed), with libsecp256k1: the `secp256k1` feature. The one place the
/// build's choice of arithmetic shows; `crate::secrets::secp_fast` says why both
/// choices give the same signature. Either way the answer is
/// [`RawSignature::Recoverable`], normalized later like every backend's.
#[cfg(feature = "secp256k1")]
pub(crate) fn sign_prehash(
    vault: &Vault,
    secret: &PrivateKeyBytes,
    digest: &Digest32,
) -> Result<RawSignature, Error> {
    crate::secrets::secp_fast::sign_prehash(&vault.secp256k1, secret, digest)
}

/// RFC 6979 ECDSA over a prehash with a bare scalar (no public key is
/// computed), with `k256`'s arithmetic and this crate's RFC 6979 nonces
/// (`crate::secrets::rfc6979` says why): the default build. See the libsecp256k1
/// twin above.
#[cfg(not(feature = "secp256k1"))]
pub(crate) fn sign_prehash(
    _vault: &Vault,
    secret: &PrivateKeyBytes,
    digest: &Digest32,
) -> Result<RawSignature, Error> {
    crate::secrets::rfc6979::sign_prehash(secret, digest)
}

impl SigningBackend for Vault {
    fn key_kinds(&self) -> KeyKinds {
        KeyKinds {
            stored: true,
            hd: self.master.is_some(),
        }
    }

    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, Error>> {
        Pending::ready(self.pin_now(key))
    }

    fn sign_digest<'a>(&'a self, request: SignRequest<'a>) -> Pending<'a, Result<Signed, Error>> {
        let key = request.key;
        if request.scheme != SignatureScheme::EcdsaSecp256k1 {
            return Pending::ready(self.sign_other(&request));
        }
        if key.algorithm() != KeyAlgorithm::Secp256k1 {
            return Pending::ready(Err(Error::Unsupported(
                "the signature scheme is not one of the key's algorithm",
            )));
        }
        Pending::ready(self.with_secret(key.reference(), key.path(), |secret| {
            sign_prehash(self, secret, &request.digest).map(|s| self.released(s))
        }))
    }
}

impl ExportingBackend for Vault {
    fn export_private_key<'a>(
        &'a self,
        key: &'a PinnedKey,
        _auth: &'a Authorization,
    ) -> Pending<'a, Result<PrivateKeyBytes, Error>> {
        Pending::ready(self.with_secret(key.reference(), key.path(), |secret| {
            // A pinned key whose public key does not match what we hold would
            // export the wrong secret under the caller's belief: check it.
            if public_of(key.algorithm(), secret)? != *key.public() {
                return Err(Error::PublicKeyMismatch);
            }
            PrivateKeyBytes::from_slice(secret.expose_secret())
        }))
    }
}

impl KeyBackend for Vault {
    fn name(&self) -> &str {
        "software"
    }

    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }

    fn wrapping(&self) -> Option<&dyn WrappingBackend> {
        self.kek.wrapping()
    }

    fn exporting(&self) -> Option<&dyn ExportingBackend> {
        Some(self)
    }

    fn decrypting(&self) -> Option<&dyn DecryptingBackend> {
        Some(self)
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let imported: Vec<KeyId> = self
            .imported
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Vault")
            .field("kek", &self.kek)
            .field("scheme", &self.scheme)
            .field("master_public_key", &self.master_public_key())
            .field("imported", &imported)
            .field("cached_nodes", &self.cache.len())
            .finish()
    }
}

/// A vault shared between services.
pub type SharedVault = Arc<Vault>;

#[cfg(test)]
mod tests {
    use super::*;

    fn path(i: u32) -> DerivationPath {
        DerivationPath::from_components(vec![ChildNumber(i | crate::HARDENED)]).unwrap()
    }

    fn cached(cache: &NodeCache, i: u32) -> bool {
        cache.map.read().unwrap().contains_key(&path(i))
    }

    #[test]
    fn the_least_recently_used_node_is_evicted() {
        let master = ChainNode::from_seed(&[7; 32]).unwrap();
        let cache = NodeCache::new(2);
        let touch = |i: u32| {
            cache
                .with_node(&master, path(i).components(), |_| Ok(()))
                .unwrap();
        };
        touch(1);
        touch(2);
        touch(1); // 2 is now the least recently used
        touch(3);
        assert!(cached(&cache, 1) && cached(&cache, 3) && !cached(&cache, 2));
        touch(1); // 3 is now the least recently used
        touch(4);
        assert!(cached(&cache, 1) && cached(&cache, 4) && !cached(&cache, 3));
        assert_eq!(cache.len(), 2);
    }

    /// The signing key built at insert is the one held under the id now:
    /// a key replaced under the same id signs and agrees as the new key
    /// (checked with p256 and ed25519-dalek from the secrets), never with
    /// a stale one.
    #[test]
    fn a_replaced_key_signs_and_agrees_as_the_new_key() {
        use ed25519_dalek::Verifier as _;
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        let kek: SharedBackend = Arc::new(crate::LocalKek::from_key(
            crate::KekId::new("k").unwrap(),
            crate::DataKey::new([7; 32]),
        ));
        let vault = Vault::new(kek, WalletScheme::Default);
        let id = KeyId::new("k").unwrap();
        let key = |b: u8| PrivateKeyBytes::from_slice(&[b; 32]).unwrap();
        let auth = Authorization::none();
        let digest = Digest32([0x5a; 32]);
        for (algorithm, first, second) in [
            (KeyAlgorithm::P256, 0x11, 0x22),
            (KeyAlgorithm::Ed25519, 0x33, 0x44),
        ] {
            vault
                .insert_algorithm_key(id.clone(), algorithm, key(first))
                .unwrap();
            let public = vault
                .insert_algorithm_key(id.clone(), algorithm, key(second))
                .unwrap();
            assert_eq!(public, public_of(algorithm, &key(second)).unwrap());
            let pinned = vault.pin_now(&KeyRef::Stored(id.clone())).unwrap();
            assert_eq!(*pinned.public(), public);
            let scheme = match algorithm {
                KeyAlgorithm::P256 => SignatureScheme::EcdsaP256Sha256,
                _ => SignatureScheme::Ed25519,
            };
            let payload = digest.as_bytes();
            let request = SignRequest::with_scheme(
                &pinned,
                scheme,
                payload,
                crate::Intent::raw_digest(),
                &auth,
            )
            .unwrap();
            let prehash = request.digest;
            let RawSignature::Compact(sig) = vault.sign_other(&request).unwrap().signature else {
                panic!("compact")
            };
            match algorithm {
                KeyAlgorithm::P256 => {
                    let k = p256::ecdsa::SigningKey::from_slice(&[second; 32]).unwrap();
                    let s = p256::ecdsa::Signature::from_slice(&sig).unwrap();
                    k.verifying_key()
                        .verify_prehash(prehash.as_bytes(), &s)
                        .unwrap();
                    // ECDH with the held key is the new scalar's.
                    let peer = p256::PublicKey::from_secret_scalar(
                        &p256::NonZeroScalar::try_from(&[0x55u8; 32][..]).unwrap(),
                    );
                    let peer = P256PublicKey::from(peer);
                    let request = DecryptRequest::new(
                        &pinned,
                        digest,
                        Decryption::EcdhP256 { peer: &peer },
                        crate::Intent::raw_digest(),
                        &auth,
                    )
                    .unwrap();
                    let z = vault.agree(&request).unwrap();
                    let expected = p256::ecdh::diffie_hellman(
                        p256::NonZeroScalar::try_from(&[second; 32][..]).unwrap(),
                        peer.as_p256().as_affine(),
                    );
                    assert_eq!(
                        z.secret.expose_secret(),
                        expected.raw_secret_bytes().as_slice()
                    );
                }
                _ => {
                    let k = ed25519_dalek::SigningKey::from_bytes(&[second; 32]);
                    let s = ed25519_dalek::Signature::from_bytes(&sig);
                    k.verifying_key().verify(payload, &s).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_hit_on_a_warm_cache_writes_nothing_shared() {
        let master = ChainNode::from_seed(&[7; 32]).unwrap();
        let cache = NodeCache::new(4);
        cache
            .with_node(&master, path(1).components(), |_| Ok(()))
            .unwrap();
        let epoch = cache.epoch.load(Ordering::Relaxed);
        for _ in 0..10 {
            cache
                .with_node(&master, path(1).components(), |_| Ok(()))
                .unwrap();
        }
        assert_eq!(cache.epoch.load(Ordering::Relaxed), epoch);
    }
}
