//! The embedded keystore (see [`Keystore`]).
//!
//! `keystore/meta.rs` reads and writes `keystore.json`; `keystore/keyring.rs`
//! encodes the keyring a v2 keystore seals under its root KEK.
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::records::audit::{AuditEvent, AuditLog, AuditOp, AuditOutcome, AuditSink};
use crate::records::fsutil::{DirLock, create_private_dir, read_optional, sync_dir, write_atomic};
use crate::records::state::{FileStore, StateStore};
use crate::secrets::hd::ExtendedPrivateKey;
use crate::secrets::vault::{public_key_of, public_of};
use crate::{
    AnyPublicKey, DataKey, EncryptionContext, Envelope, Error, KdfParams, KekId, KeyAlgorithm,
    KeyBackend, KeyId, LocalKek, Passphrase, PrivateKeyBytes, PublicKey, Seed, SharedBackend,
    Vault, WalletScheme, WrappingBackend, fill_random,
};

mod keyring;
mod meta;

#[cfg(feature = "fuzzing")]
pub(crate) use keyring::{decode as keyring_decode, encode as keyring_encode};
pub(crate) use meta::Meta;
use meta::{Layout, RootRecord, check_backend_uri, hex_fingerprint};

const META_FILE: &str = "keystore.json";
const KEYRING_FILE: &str = "keyring.env";
const MASTER_FILE: &str = "master.env";
const KEYS_DIR: &str = "keys";
/// Keys generated in the keystore, of any algorithm
/// ([`Keystore::generate_key`]).
const GENERATED_DIR: &str = "generated";
const LOCK_FILE: &str = ".lock";
/// What [`Keystore::kek_uri`] says of a passphrase KEK.
const PASSPHRASE_URI: &str = "passphrase";

/// Options for [`Keystore::create`].
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Passphrase KDF parameters ([`KdfParams::standard`] unless testing).
    /// Used only when the root KEK is a passphrase.
    pub kdf: KdfParams,
    /// How wallet names map to paths; fixed for the keystore's life.
    pub scheme: WalletScheme,
}

impl CreateOptions {
    /// Standard KDF, default wallet scheme.
    ///
    /// # Errors
    /// [`Error::Rng`] if no salt can be drawn.
    pub fn standard() -> Result<Self, Error> {
        Ok(Self {
            kdf: KdfParams::standard()?,
            scheme: WalletScheme::Default,
        })
    }

    /// The light KDF (like geth's `--lightkdf`): for tests only.
    ///
    /// # Errors
    /// [`Error::Rng`] if no salt can be drawn.
    pub fn light() -> Result<Self, Error> {
        Ok(Self {
            kdf: KdfParams::light()?,
            scheme: WalletScheme::Default,
        })
    }

    /// The same options with another wallet scheme.
    #[must_use]
    pub fn with_scheme(mut self, scheme: WalletScheme) -> Self {
        self.scheme = scheme;
        self
    }
}

/// The root key-encryption key to create a keystore under or to move it to
/// ([`Keystore::create_with`], [`Keystore::rewrap`]).
pub enum RootKek<'a> {
    /// A scrypt KEK derived from a passphrase with these parameters.
    Passphrase {
        /// The keystore passphrase.
        passphrase: &'a Passphrase,
        /// The KDF parameters (a fresh salt for every new KEK).
        kdf: &'a KdfParams,
    },
    /// A KEK a backend holds and never releases (an AWS KMS key, an HSM's
    /// AES key). `uri` names it for whoever opens the keystore later (the
    /// CLI's `aws-kms:KEY`, `pkcs11:…`; printable ASCII, with a scheme);
    /// `backend` must wrap data keys, under its
    /// [`WrappingBackend::default_kek`].
    Backend {
        /// The URI recorded in `keystore.json`.
        uri: &'a str,
        /// The backend holding the KEK.
        backend: SharedBackend,
    },
}

impl fmt::Debug for RootKek<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Passphrase { kdf, .. } => f
                .debug_struct("Passphrase")
                .field("kdf", kdf)
                .finish_non_exhaustive(),
            Self::Backend { uri, backend } => f
                .debug_struct("Backend")
                .field("uri", uri)
                .field("backend", &backend.name())
                .finish(),
        }
    }
}

/// What opens a keystore ([`Keystore::open_with`]): its passphrase, or the
/// backend holding its root KEK.
pub enum Unlock<'a> {
    /// The keystore passphrase.
    Passphrase(&'a Passphrase),
    /// The backend holding the KEK that [`Keystore::kek_of`] names.
    Backend(SharedBackend),
}

impl fmt::Debug for Unlock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("Passphrase(<redacted>)"),
            Self::Backend(b) => f.debug_tuple("Backend").field(&b.name()).finish(),
        }
    }
}

/// Which root KEK a keystore directory records (public metadata, read
/// without any key by [`Keystore::kek_of`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekKind {
    /// A passphrase KEK: open with [`Unlock::Passphrase`].
    Passphrase,
    /// A backend KEK: open with [`Unlock::Backend`] over the key this URI
    /// names.
    Backend {
        /// The URI given when the KEK was chosen.
        uri: String,
        /// The id the backend reported for it
        /// ([`WrappingBackend::default_kek`]).
        kek_id: KekId,
    },
}

/// What [`Keystore::rewrap`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrapReport {
    /// The new root KEK, as [`Keystore::kek_uri`] names it.
    pub kek: String,
    /// How many secrets of the keystore directory are now protected by the
    /// new KEK: the keyring it seals directly, and the master seed and every
    /// imported key sealed under that keyring.
    pub rewrapped: usize,
}

/// The root KEK of an open keystore.
enum Root {
    Passphrase(Arc<LocalKek>),
    Backend { uri: String, backend: SharedBackend },
}

impl Root {
    fn wrapping(&self) -> Result<&dyn WrappingBackend, Error> {
        match self {
            Self::Passphrase(kek) => Ok(kek.as_ref()),
            Self::Backend { backend, .. } => backend.wrapping().ok_or(Error::Unsupported(
                "the root KEK backend does not wrap data keys",
            )),
        }
    }

    fn uri(&self) -> &str {
        match self {
            Self::Passphrase(_) => PASSPHRASE_URI,
            Self::Backend { uri, .. } => uri,
        }
    }
}

/// Where a keystore keeps its non-secret records: the state store (TOTP
/// replay guards and lockouts) and the audit log. By default both live in
/// the keystore's directory ([`Records::in_dir`]); a team running many
/// signers keeps them in a database they share (custody-postgres), so
/// that a code spent on one signer is spent on all and every signer
/// appends to one log.
#[derive(Clone)]
pub struct Records {
    /// The state store.
    pub state: Arc<dyn StateStore>,
    /// The audit log.
    pub audit: Arc<dyn AuditSink>,
}

impl Records {
    /// The records of the keystore directory `dir`: `DIR/state` and
    /// `DIR/audit.log`.
    ///
    /// # Errors
    /// [`Error::Io`] if they cannot be opened or created.
    pub fn in_dir(dir: &Path) -> Result<Self, Error> {
        Ok(Self {
            state: Arc::new(FileStore::open(dir.join("state"))?),
            audit: Arc::new(AuditLog::open(dir.join("audit.log"))?),
        })
    }
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("state", &self.state)
            .field("audit", &self.audit)
            .finish()
    }
}

/// The embedded keystore: a directory holding the HD master seed and
/// imported keys, envelope-encrypted, plus the state store and the audit
/// log. The embedded default: no cloud, no server.
///
/// # The key hierarchy (format v2)
///
/// ```text
/// root KEK (passphrase scrypt KEK | AWS KMS key | HSM AES key)
///   └─ keyring.env: the keyring (an AES-256 key, plus retired ones)
///        ├─ master.env: the 64-byte BIP39 seed
///        ├─ keys/<id>.env: each imported private key
///        └─ the TOTP secrets in the state store (through [`Keystore::backend`])
/// ```
///
/// The root KEK seals exactly one secret, so opening costs one unwrap by
/// the root (one KMS `Decrypt`, one HSM unwrap) and moving to another root
/// ([`Keystore::rewrap`]: rotation, or passphrase → KMS) re-seals one
/// envelope and switches `keystore.json` in one atomic rename. Secrets kept
/// *outside* the directory (TOTP secrets in a shared state store) never
/// need re-sealing when the root moves: a crash can never leave them under
/// a KEK the keystore no longer has. This is why the root does not seal
/// every secret itself, as format v1 did (where a passphrase change left
/// TOTP secrets under the old KEK, unopenable).
///
/// Layout (specified in `SPEC.md`, "Keystore directory v2"):
///
/// ```text
/// DIR/keystore.json                  metadata: format, version, generation,
///                                    root KEK, wallet scheme, xpub, fingerprint
/// DIR/secrets.<gen>/keyring.env      the keyring, sealed by the root KEK
/// DIR/secrets.<gen>/master.env       the BIP39 seed, sealed under the keyring
/// DIR/secrets.<gen>/keys/<id>.env    each imported private key, likewise
/// DIR/state/                         the durable state store (TOTP, lockouts)
/// DIR/audit.log                      the hash-chained audit log
/// DIR/.lock                          held while a process writes the keystore
/// ```
///
/// A v1 directory (no keyring; every secret under the passphrase KEK) still
/// opens and works; [`Keystore::rewrap`] moves it to v2.
///
/// Every file is written atomically (temp file, fsync, rename, fsync of the
/// directory), so a crash leaves the old or the new version, never a torn one;
/// writers hold `.lock`, so two processes never interleave.
pub struct Keystore {
    dir: PathBuf,
    generation: u64,
    layout: Layout,
    root: Root,
    /// What seals the master seed and imported keys (and, through the
    /// vault, TOTP secrets): the keyring in v2, the passphrase KEK in v1.
    working: Arc<LocalKek>,
    vault: Arc<Vault>,
    records: Records,
    xpub: String,
    fingerprint: [u8; 4],
}

fn master_context() -> Result<EncryptionContext, Error> {
    EncryptionContext::new().with("custody", "master-seed")
}

fn key_context(id: &KeyId) -> Result<EncryptionContext, Error> {
    EncryptionContext::new()
        .with("custody", "imported-key")?
        .with("keyId", id.as_str())
}

/// The context of a generated key: its id and its algorithm, so that an
/// envelope moved to another id, or read as another algorithm's key, does
/// not open.
fn generated_context(id: &KeyId, algorithm: KeyAlgorithm) -> Result<EncryptionContext, Error> {
    EncryptionContext::new()
        .with("custody", "generated-key")?
        .with("keyId", id.as_str())?
        .with("algorithm", algorithm.as_str())
}

/// The id prefix of a generated key of `algorithm`.
fn generated_prefix(algorithm: KeyAlgorithm) -> Result<&'static str, Error> {
    // By name, so that an algorithm the seam learns later is refused here
    // until the keystore knows how to generate it.
    match algorithm.as_str() {
        "secp256k1" => Ok("secp256k1-"),
        "P-256" => Ok("p256-"),
        "Ed25519" => Ok("ed25519-"),
        _ => Err(Error::Unsupported(
            "the keystore generates secp256k1, P-256 and Ed25519 keys",
        )),
    }
}

/// The algorithm a generated key's id names (its prefix).
fn generated_algorithm(id: &KeyId) -> Result<KeyAlgorithm, Error> {
    [
        KeyAlgorithm::Secp256k1,
        KeyAlgorithm::P256,
        KeyAlgorithm::Ed25519,
    ]
    .into_iter()
    .find(|a| generated_prefix(*a).is_ok_and(|p| id.as_str().starts_with(p)))
    .ok_or(Error::MalformedRecord(
        "a generated key's id names no algorithm",
    ))
}

/// The id of a generated key: its algorithm's prefix (`secp256k1-`,
/// `p256-`, `ed25519-`) and the first 16 hex digits of SHA-256 over the
/// algorithm's name, a zero byte and the public key's bytes (compressed
/// SEC 1 for the curves, the 32 bytes of an Ed25519 key).
fn generated_key_id(public: &AnyPublicKey) -> Result<KeyId, Error> {
    let algorithm = public.algorithm();
    let mut h = Sha256::new();
    h.update(algorithm.as_str().as_bytes());
    h.update([0]);
    h.update(public.to_bytes());
    let h = h.finalize();
    KeyId::new(format!(
        "{}{}",
        generated_prefix(algorithm)?,
        hex::encode(&h[..8])
    ))
}

/// The generated keys' envelopes of one generation: (file path, context).
fn generated_files(secrets: &Path) -> Result<Vec<(PathBuf, EncryptionContext)>, Error> {
    let mut out = Vec::new();
    let dir = secrets.join(GENERATED_DIR);
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        // Temp files of an interrupted write start with '.': a crash before
        // the rename leaves nothing the keystore lists.
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".env")) else {
            continue;
        };
        if id.starts_with('.') {
            continue;
        }
        let id = KeyId::new(id)?;
        let context = generated_context(&id, generated_algorithm(&id)?)?;
        out.push((entry.path(), context));
    }
    Ok(out)
}

fn keyring_context(fingerprint: [u8; 4]) -> Result<EncryptionContext, Error> {
    EncryptionContext::new()
        .with("custody", "keyring")?
        .with("fingerprint", &hex_fingerprint(fingerprint))
}

fn secrets_dir(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("secrets.{generation}"))
}

fn read_meta(dir: &Path) -> Result<Meta, Error> {
    let bytes = read_optional(&dir.join(META_FILE))?.ok_or(Error::KeystoreNotFound)?;
    Meta::parse(&bytes)
}

/// A fresh keyring: one random AES-256 key named `keystore:` and 16 random
/// hex digits.
fn fresh_keyring() -> Result<LocalKek, Error> {
    let mut id = [0u8; 8];
    fill_random(&mut id)?;
    Ok(LocalKek::from_key(
        KekId::new(format!("keystore:{}", hex::encode(id)))?,
        DataKey::random()?,
    ))
}

/// The passphrase KEK `passphrase` gives under `record`, checked.
fn unlock_passphrase(record: &RootRecord, passphrase: &Passphrase) -> Result<LocalKek, Error> {
    let RootRecord::Passphrase { kdf, kek_check, .. } = record else {
        return Err(Error::WrongKek(
            "this keystore's KEK is held by a backend, not a passphrase",
        ));
    };
    let kek = LocalKek::from_passphrase(passphrase, kdf)?;
    if !kek.verify_check_value(kek_check) {
        return Err(Error::WrongPassphrase);
    }
    Ok(kek)
}

/// A new root: its record for `keystore.json` and the open root.
fn new_root(root: RootKek<'_>) -> Result<(RootRecord, Root), Error> {
    match root {
        RootKek::Passphrase { passphrase, kdf } => {
            let kek = LocalKek::from_passphrase(passphrase, kdf)?;
            let record = RootRecord::Passphrase {
                kdf: kdf.clone(),
                kek_id: kek.current_kek().clone(),
                kek_check: kek.check_value(),
            };
            Ok((record, Root::Passphrase(Arc::new(kek))))
        }
        RootKek::Backend { uri, backend } => {
            check_backend_uri(uri)?;
            let kek_id = backend
                .wrapping()
                .ok_or(Error::Unsupported(
                    "the root KEK backend does not wrap data keys",
                ))?
                .default_kek();
            let record = RootRecord::Backend {
                uri: uri.to_owned(),
                kek_id,
            };
            Ok((
                record,
                Root::Backend {
                    uri: uri.to_owned(),
                    backend,
                },
            ))
        }
    }
}

fn root_kek_id(record: &RootRecord) -> &KekId {
    match record {
        RootRecord::Passphrase { kek_id, .. } | RootRecord::Backend { kek_id, .. } => kek_id,
    }
}

/// Seals the keyring under the root.
fn seal_keyring(
    root: &Root,
    record: &RootRecord,
    keyring: &LocalKek,
    fingerprint: [u8; 4],
) -> Result<Envelope, Error> {
    let plain = keyring::encode(keyring)?;
    Envelope::seal(
        root.wrapping()?,
        root_kek_id(record),
        &keyring_context(fingerprint)?,
        plain.expose_secret(),
    )
    .wait()
}

/// Opens `secrets.<gen>/keyring.env` with the root.
fn open_keyring(dir: &Path, meta: &Meta, root: &Root) -> Result<LocalKek, Error> {
    let path = secrets_dir(dir, meta.generation).join(KEYRING_FILE);
    let bytes = read_optional(&path)?.ok_or(Error::MalformedRecord(
        "a secret named by the keystore is missing",
    ))?;
    let envelope = Envelope::from_vec(bytes)?;
    if envelope.kek() != root_kek_id(&meta.root) {
        return Err(Error::MalformedRecord(
            "keyring.env is not sealed under the recorded KEK",
        ));
    }
    let plain = envelope
        .open(root.wrapping()?, &keyring_context(meta.fingerprint)?)
        .wait()?;
    keyring::decode(plain.expose_secret())
}

/// The envelopes sealed under the working KEK in one generation: (file
/// path, context), the master seed first.
fn envelope_files(secrets: &Path) -> Result<Vec<(PathBuf, EncryptionContext)>, Error> {
    let mut out = vec![(secrets.join(MASTER_FILE), master_context()?)];
    let keys_dir = secrets.join(KEYS_DIR);
    if keys_dir.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(&keys_dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let name = entry.file_name();
            // Temp files of an interrupted write start with '.'; skip them.
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".env")) else {
                continue;
            };
            if id.starts_with('.') {
                continue;
            }
            let id = KeyId::new(id)?;
            out.push((entry.path(), key_context(&id)?));
        }
    }
    out.extend(generated_files(secrets)?);
    Ok(out)
}

/// Writes `bytes` at `rel` (relative to a generation directory) under
/// `new_dir`, creating its parent.
fn write_in_generation(new_dir: &Path, rel: &Path, bytes: &[u8]) -> Result<(), Error> {
    let target_dir = rel
        .parent()
        .map_or_else(|| new_dir.to_path_buf(), |p| new_dir.join(p));
    create_private_dir(&target_dir)?;
    let name = rel
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(Error::MalformedRecord("secret file name"))?;
    write_atomic(&target_dir, name, bytes)?;
    Ok(())
}

impl Keystore {
    /// Creates a keystore in `dir` (created if absent; must not already hold a
    /// keystore) holding `seed` under a KEK derived from `passphrase`.
    ///
    /// # Errors
    /// [`Error::KeystoreExists`], [`Error::Io`], KDF or envelope errors.
    pub fn create(
        dir: &Path,
        passphrase: &Passphrase,
        seed: &Seed,
        options: &CreateOptions,
    ) -> Result<Self, Error> {
        Self::create_with(
            dir,
            RootKek::Passphrase {
                passphrase,
                kdf: &options.kdf,
            },
            seed,
            options,
        )
    }

    /// Creates a keystore in `dir` (created if absent; must not already hold
    /// a keystore) holding `seed` under a fresh keyring sealed by `root`
    /// (format v2). With a backend root, no passphrase is needed afterwards:
    /// whoever can use the backend's KEK opens the keystore.
    ///
    /// # Errors
    /// [`Error::KeystoreExists`], [`Error::InvalidKeyId`] for a malformed
    /// backend URI, [`Error::Unsupported`] for a backend that does not
    /// wrap, [`Error::Io`], KDF, envelope or backend errors (nothing is
    /// left that marks a keystore: `keystore.json` is written last).
    pub fn create_with(
        dir: &Path,
        root: RootKek<'_>,
        seed: &Seed,
        options: &CreateOptions,
    ) -> Result<Self, Error> {
        create_private_dir(dir)?;
        let records = Records::in_dir(dir)?;
        Self::create_recorded(dir, root, seed, options, records)
    }

    /// [`Keystore::create_with`], keeping the keystore's state store and
    /// audit log in `records` (e.g. a database many signers share) instead
    /// of its directory: the creation is recorded there, and so is every
    /// later event of this handle.
    ///
    /// # Errors
    /// As [`Keystore::create_with`], and the records' errors.
    pub fn create_recorded(
        dir: &Path,
        root: RootKek<'_>,
        seed: &Seed,
        options: &CreateOptions,
        records: Records,
    ) -> Result<Self, Error> {
        create_private_dir(dir)?;
        let lock = DirLock::lock(&dir.join(LOCK_FILE))?;
        if dir.join(META_FILE).exists() {
            return Err(Error::KeystoreExists);
        }
        let (record, root) = new_root(root)?;
        let master = ExtendedPrivateKey::from_seed(seed.expose_secret())?;
        let fingerprint = master.fingerprint();
        let keyring = Arc::new(fresh_keyring()?);
        let generation = 1;
        let secrets = secrets_dir(dir, generation);
        if secrets.exists() {
            // Left by a creation that failed before writing keystore.json.
            std::fs::remove_dir_all(&secrets)?;
        }
        create_private_dir(&secrets)?;
        let sealed = seal_keyring(&root, &record, &keyring, fingerprint)?;
        write_atomic(&secrets, KEYRING_FILE, sealed.as_bytes())?;
        let envelope = Envelope::seal(
            keyring.as_ref(),
            keyring.current_kek(),
            &master_context()?,
            seed.expose_secret(),
        )
        .wait()?;
        write_atomic(&secrets, MASTER_FILE, envelope.as_bytes())?;
        let meta = Meta {
            layout: Layout::V2,
            generation,
            root: record,
            scheme: options.scheme,
            xpub: master.to_extended_public().to_string(),
            fingerprint,
        };
        // The metadata file is written last: its presence marks a complete keystore.
        write_atomic(dir, META_FILE, &meta.to_json()?)?;
        drop(lock);
        let ks = Self::load(dir, meta, root, keyring, records)?;
        ks.records
            .audit
            .append(
                AuditEvent::new(AuditOp::new("create")?, AuditOutcome::Success)
                    .with_field("fingerprint", ks.fingerprint_hex())?
                    .with_field("kek", ks.kek_uri())?,
            )
            .wait()?;
        Ok(ks)
    }

    /// Which root KEK the keystore in `dir` records: read from
    /// `keystore.json` alone, with no key, so a caller knows what to open
    /// it with.
    ///
    /// # Errors
    /// [`Error::KeystoreNotFound`], [`Error::MalformedRecord`], [`Error::Io`].
    pub fn kek_of(dir: &Path) -> Result<KekKind, Error> {
        Ok(match read_meta(dir)?.root {
            RootRecord::Passphrase { .. } => KekKind::Passphrase,
            RootRecord::Backend { uri, kek_id } => KekKind::Backend { uri, kek_id },
        })
    }

    /// Opens the keystore in `dir` with `passphrase`.
    ///
    /// # Errors
    /// As [`Keystore::open_with`].
    pub fn open(dir: &Path, passphrase: &Passphrase) -> Result<Self, Error> {
        Self::open_with(dir, Unlock::Passphrase(passphrase))
    }

    /// Opens the keystore in `dir` (format v1 or v2).
    ///
    /// # Errors
    /// [`Error::KeystoreNotFound`]; [`Error::WrongPassphrase`];
    /// [`Error::WrongKek`] if `unlock` is a passphrase for a backend KEK or
    /// the other way round; [`Error::MalformedRecord`] for a damaged
    /// metadata file; [`Error::DecryptionFailed`] /
    /// [`Error::MalformedEnvelope`] for a damaged or moved secret, or a
    /// backend that holds another KEK; backend errors; [`Error::Io`].
    pub fn open_with(dir: &Path, unlock: Unlock<'_>) -> Result<Self, Error> {
        let meta = read_meta(dir)?;
        let records = Records::in_dir(dir)?;
        Self::open_meta(dir, meta, unlock, records)
    }

    /// [`Keystore::open_with`], keeping the keystore's state store and audit
    /// log in `records` (e.g. a database many signers share) instead of its
    /// directory: the unwrap is recorded there, and so is every later event
    /// of this handle (TOTP registries and audit layers built on
    /// [`Keystore::state`] and [`Keystore::audit`] use them too).
    ///
    /// # Errors
    /// As [`Keystore::open_with`], and the records' errors.
    pub fn open_recorded(dir: &Path, unlock: Unlock<'_>, records: Records) -> Result<Self, Error> {
        let meta = read_meta(dir)?;
        Self::open_meta(dir, meta, unlock, records)
    }

    fn open_meta(
        dir: &Path,
        meta: Meta,
        unlock: Unlock<'_>,
        records: Records,
    ) -> Result<Self, Error> {
        let root = match (unlock, &meta.root) {
            (Unlock::Passphrase(p), record) => {
                Root::Passphrase(Arc::new(unlock_passphrase(record, p)?))
            }
            (Unlock::Backend(backend), RootRecord::Backend { uri, .. }) => Root::Backend {
                uri: uri.clone(),
                backend,
            },
            (Unlock::Backend(_), RootRecord::Passphrase { .. }) => {
                return Err(Error::WrongKek(
                    "this keystore's KEK is its passphrase, not a backend",
                ));
            }
        };
        let working = match (meta.layout, &root) {
            (Layout::V1, Root::Passphrase(kek)) => Arc::clone(kek),
            (Layout::V1, Root::Backend { .. }) => {
                return Err(Error::MalformedRecord(
                    "a v1 keystore has a passphrase KEK only",
                ));
            }
            (Layout::V2, root) => Arc::new(open_keyring(dir, &meta, root)?),
        };
        Self::load(dir, meta, root, working, records)
    }

    fn load(
        dir: &Path,
        meta: Meta,
        root: Root,
        working: Arc<LocalKek>,
        records: Records,
    ) -> Result<Self, Error> {
        let kek_backend: SharedBackend = working.clone();
        let mut vault = Vault::new(kek_backend, meta.scheme);
        let secrets = secrets_dir(dir, meta.generation);
        for (path, context) in envelope_files(&secrets)? {
            let bytes = read_optional(&path)?.ok_or(Error::MalformedRecord(
                "a secret named by the keystore is missing",
            ))?;
            let secret = Envelope::from_vec(bytes)?
                .open(working.as_ref(), &context)
                .wait()?;
            if path.ends_with(MASTER_FILE) {
                let xpub = ExtendedPrivateKey::from_seed(secret.expose_secret())?
                    .to_extended_public()
                    .to_string();
                if xpub != meta.xpub {
                    return Err(Error::MalformedRecord(
                        "master seed does not match the recorded xpub",
                    ));
                }
                vault.set_master_seed(secret.expose_secret())?;
            } else if context.get("custody") == Some("generated-key") {
                let id = KeyId::new(
                    context
                        .get("keyId")
                        .ok_or(Error::MalformedRecord("key context"))?,
                )?;
                let algorithm = generated_algorithm(&id)?;
                let key = PrivateKeyBytes::from_slice(secret.expose_secret())?;
                let public = public_of(algorithm, &key)?;
                if generated_key_id(&public)? != id {
                    return Err(Error::MalformedRecord(
                        "a generated key is not the key its id names",
                    ));
                }
                vault.insert_algorithm_key(id, algorithm, key)?;
            } else {
                let id = context
                    .get("keyId")
                    .ok_or(Error::MalformedRecord("key context"))?;
                let key = PrivateKeyBytes::from_slice(secret.expose_secret())?;
                vault.insert_key(KeyId::new(id)?, key)?;
            }
        }
        records
            .audit
            .append(
                AuditEvent::new(AuditOp::UNWRAP, AuditOutcome::Success)
                    .with_detail("master seed and imported keys unwrapped")
                    .with_field("fingerprint", hex_fingerprint(meta.fingerprint))?
                    .with_field("kek", root.uri())?,
            )
            .wait()?;
        Ok(Self {
            dir: dir.to_path_buf(),
            generation: meta.generation,
            layout: meta.layout,
            root,
            working,
            vault: Arc::new(vault),
            records,
            xpub: meta.xpub,
            fingerprint: meta.fingerprint,
        })
    }

    /// Takes the writer lock and checks that no other process re-keyed the
    /// keystore since this handle opened it.
    fn lock_current(&self) -> Result<(DirLock, Meta), Error> {
        let lock = DirLock::lock(&self.dir.join(LOCK_FILE))?;
        let meta = read_meta(&self.dir)?;
        if meta.generation != self.generation {
            return Err(Error::Stale);
        }
        Ok((lock, meta))
    }

    /// Imports a raw private key; returns its id and public key. Importing a
    /// key that is already held returns the existing id (ids derive from the
    /// public key).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`], [`Error::Stale`] if another process
    /// re-keyed the keystore meanwhile, [`Error::Io`], envelope errors.
    pub fn import_key(&self, secret: PrivateKeyBytes) -> Result<(KeyId, PublicKey), Error> {
        let public = public_key_of(&secret)?;
        let id = key_id_for(&public)?;
        let (lock, _) = self.lock_current()?;
        let keys_dir = secrets_dir(&self.dir, self.generation).join(KEYS_DIR);
        let file = format!("{}.env", id.as_str());
        if !keys_dir.join(&file).exists() {
            create_private_dir(&keys_dir)?;
            let env = Envelope::seal(
                self.working.as_ref(),
                self.working.current_kek(),
                &key_context(&id)?,
                secret.expose_secret(),
            )
            .wait()?;
            write_atomic(&keys_dir, &file, env.as_bytes())?;
        }
        drop(lock);
        self.vault.insert_key(id.clone(), secret)?;
        self.records
            .audit
            .append(
                AuditEvent::new(AuditOp::IMPORT, AuditOutcome::Success)
                    .with_key(id.as_str())
                    .with_public_key(&public),
            )
            .wait()?;
        Ok((id, public))
    }

    /// Generates a fresh private key of `algorithm` from the OS CSPRNG
    /// (a secp256k1 or P-256 scalar, or an Ed25519 seed), seals it under
    /// the keystore's working KEK in an envelope whose context binds its
    /// id and its algorithm, and holds it in the vault; returns its id and
    /// public key. The key signs by id ([`crate::KeyRef::Stored`]) with its
    /// algorithm's scheme, and a P-256 key agrees ([`crate::Decryption`]).
    ///
    /// The envelope is committed in one atomic rename under the writer
    /// lock: a crash before it leaves only a temp file that opening
    /// ignores, after it a complete key. The generation is recorded in the
    /// audit log (op `generate`, the key id, algorithm and public key).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for an algorithm the keystore does not
    /// generate, [`Error::Rng`], [`Error::Stale`] if another process
    /// re-keyed the keystore meanwhile, [`Error::Io`], envelope errors.
    pub fn generate_key(&self, algorithm: KeyAlgorithm) -> Result<(KeyId, AnyPublicKey), Error> {
        generated_prefix(algorithm)?;
        // A random 32-byte string is a valid secp256k1 or P-256 scalar
        // unless it is zero or at least the group order (probability below
        // 2^-32): draw again then.
        let mut drawn = None;
        for _ in 0..8 {
            let secret = PrivateKeyBytes::random()?;
            if let Ok(public) = public_of(algorithm, &secret) {
                drawn = Some((secret, public));
                break;
            }
        }
        let (secret, public) = drawn.ok_or(Error::Rng)?;
        let id = generated_key_id(&public)?;
        let (lock, _) = self.lock_current()?;
        let dir = secrets_dir(&self.dir, self.generation).join(GENERATED_DIR);
        create_private_dir(&dir)?;
        let env = Envelope::seal(
            self.working.as_ref(),
            self.working.current_kek(),
            &generated_context(&id, algorithm)?,
            secret.expose_secret(),
        )
        .wait()?;
        write_atomic(&dir, &format!("{}.env", id.as_str()), env.as_bytes())?;
        drop(lock);
        self.vault
            .insert_algorithm_key(id.clone(), algorithm, secret)?;
        self.records
            .audit
            .append(
                AuditEvent::new(AuditOp::new("generate")?, AuditOutcome::Success)
                    .with_key(id.as_str())
                    .with_field("algorithm", algorithm.as_str())?
                    .with_field("public-key", hex::encode(public.to_bytes()))?,
            )
            .wait()?;
        Ok((id, public))
    }

    /// Changes the keystore passphrase: [`Keystore::rewrap`] to a new
    /// passphrase KEK derived with `kdf`.
    ///
    /// # Errors
    /// As [`Keystore::rewrap`].
    pub fn change_passphrase(self, new: &Passphrase, kdf: &KdfParams) -> Result<Self, Error> {
        self.rewrap(RootKek::Passphrase {
            passphrase: new,
            kdf,
        })
        .map(|(ks, _)| ks)
    }

    /// Moves the keystore to a new root KEK (rotation, passphrase → KMS or
    /// HSM, or back), in a new generation that `keystore.json` switches to
    /// in one atomic rename. Every address stays the same: the secrets are
    /// the same, only what seals them changes.
    ///
    /// - A v2 keystore: the keyring is sealed by the new root; the master
    ///   seed and imported keys, sealed under the keyring, are copied byte
    ///   for byte.
    /// - A v1 keystore becomes v2: a fresh keyring key is made current and
    ///   the master seed and imported keys are re-wrapped under it (payloads
    ///   untouched); the old passphrase KEK stays in the keyring as a
    ///   *retired* key, so TOTP secrets that v1 sealed under it in the state
    ///   store still open. Whoever knows the old passphrase can derive that
    ///   retired key: re-enrol TOTP wallets to move their secrets under the
    ///   fresh key.
    ///
    /// A crash at any point leaves a keystore that opens with exactly one of
    /// the two KEKs: before the switch the new generation is not referenced
    /// (and the next rewrap removes it), after it the old one is only
    /// cleanup. Returns the keystore reopened under the new KEK (this handle
    /// is consumed) and what was moved.
    ///
    /// # Errors
    /// [`Error::Stale`] if another process re-keyed it first; KDF, envelope,
    /// backend or I/O errors (the keystore then still opens with the old
    /// KEK).
    pub fn rewrap(self, new: RootKek<'_>) -> Result<(Self, RewrapReport), Error> {
        let (lock, meta) = self.lock_current()?;
        let (record, root) = new_root(new)?;
        let old_dir = secrets_dir(&self.dir, self.generation);
        let next = self.generation + 1;
        let new_dir = secrets_dir(&self.dir, next);
        if new_dir.exists() {
            // Left by an interrupted earlier rewrap: never referenced by the
            // metadata, so it holds nothing that is not also in `old_dir`.
            std::fs::remove_dir_all(&new_dir)?;
        }
        create_private_dir(&new_dir)?;
        let keyring = match self.layout {
            Layout::V2 => Arc::clone(&self.working),
            Layout::V1 => Arc::new(fresh_keyring()?.with_retired_from(&self.working)?),
        };
        let mut moved = 0;
        for (path, context) in envelope_files(&old_dir)? {
            let bytes = read_optional(&path)?.ok_or(Error::MalformedRecord(
                "a secret named by the keystore is missing",
            ))?;
            let out = match self.layout {
                Layout::V2 => bytes,
                Layout::V1 => Envelope::from_vec(bytes)?
                    .rewrap(keyring.as_ref(), keyring.current_kek(), &context)
                    .wait()?
                    .into_bytes(),
            };
            let rel = path
                .strip_prefix(&old_dir)
                .map_err(|_| Error::MalformedRecord("secret outside its generation"))?;
            write_in_generation(&new_dir, rel, &out)?;
            moved += 1;
        }
        let sealed = seal_keyring(&root, &record, &keyring, self.fingerprint)?;
        write_atomic(&new_dir, KEYRING_FILE, sealed.as_bytes())?;
        sync_dir(&new_dir)?;
        let new_meta = Meta {
            layout: Layout::V2,
            generation: next,
            root: record,
            ..meta
        };
        // The switch: one atomic rename of keystore.json.
        write_atomic(&self.dir, META_FILE, &new_meta.to_json()?)?;
        // The old generation is no longer referenced; removing it is cleanup.
        std::fs::remove_dir_all(&old_dir)?;
        drop(lock);
        let report = RewrapReport {
            kek: root.uri().to_owned(),
            rewrapped: moved + 1,
        };
        self.records
            .audit
            .append(
                AuditEvent::new(AuditOp::ROTATE, AuditOutcome::Success)
                    .with_detail("keystore moved to a new root KEK")
                    .with_field("kek", root.uri())?
                    .with_field("from", self.root.uri())?
                    .with_field("secrets", report.rewrapped.to_string())?,
            )
            .wait()?;
        let dir = self.dir.clone();
        let records = self.records.clone();
        drop(self);
        let ks = Self::load(&dir, new_meta, root, keyring, records)?;
        Ok((ks, report))
    }

    /// The root KEK: `passphrase`, or the URI of the backend KEK.
    #[must_use]
    pub fn kek_uri(&self) -> &str {
        self.root.uri()
    }

    /// The keystore's format version (1 or 2).
    #[must_use]
    pub fn format_version(&self) -> u32 {
        self.layout.version()
    }

    /// The vault holding the unlocked secrets.
    #[must_use]
    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// The vault as a shared backend. Its wrapping capability is the
    /// keyring (v2) or the passphrase KEK (v1): what a TOTP registry over
    /// this keystore seals its secrets under.
    #[must_use]
    pub fn backend(&self) -> SharedBackend {
        self.vault.clone()
    }

    /// The durable state store: `DIR/state`, or the one given to
    /// [`Keystore::open_recorded`].
    #[must_use]
    pub fn state(&self) -> Arc<dyn StateStore> {
        self.records.state.clone()
    }

    /// The audit log: `DIR/audit.log`, or the one given to
    /// [`Keystore::open_recorded`].
    #[must_use]
    pub fn audit(&self) -> Arc<dyn AuditSink> {
        self.records.audit.clone()
    }

    /// The master's BIP32 xpub.
    #[must_use]
    pub fn xpub(&self) -> &str {
        &self.xpub
    }

    /// The master's BIP32 fingerprint.
    #[must_use]
    pub fn fingerprint(&self) -> [u8; 4] {
        self.fingerprint
    }

    fn fingerprint_hex(&self) -> String {
        hex_fingerprint(self.fingerprint)
    }

    /// The keystore's wallet scheme.
    #[must_use]
    pub fn scheme(&self) -> WalletScheme {
        self.vault.scheme()
    }

    /// The keystore directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The id of an imported key: `key-` and the first 16 hex digits of
/// SHA-256 of its compressed public key (stable across imports).
fn key_id_for(public: &PublicKey) -> Result<KeyId, Error> {
    let h = Sha256::digest(public.to_compressed());
    KeyId::new(format!("key-{}", hex::encode(&h[..8])))
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore")
            .field("dir", &self.dir)
            .field("generation", &self.generation)
            .field("version", &self.format_version())
            .field("kek", &self.kek_uri())
            .field("fingerprint", &self.fingerprint_hex())
            .field("vault", &self.vault)
            .finish_non_exhaustive()
    }
}

impl KeyBackend for Keystore {
    fn name(&self) -> &str {
        self.vault.name()
    }
    fn signing(&self) -> Option<&dyn crate::SigningBackend> {
        self.vault.signing()
    }
    fn wrapping(&self) -> Option<&dyn crate::WrappingBackend> {
        self.vault.wrapping()
    }
    fn exporting(&self) -> Option<&dyn crate::ExportingBackend> {
        self.vault.exporting()
    }
    fn decrypting(&self) -> Option<&dyn crate::DecryptingBackend> {
        self.vault.decrypting()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keystore.json written by `Keystore::create`.
    fn written_meta() -> String {
        let dir = tempfile::tempdir().unwrap();
        Keystore::create(
            dir.path(),
            &Passphrase::from_str_copy("pw"),
            &Seed::new([7; 64]),
            &CreateOptions::light().unwrap(),
        )
        .unwrap();
        std::fs::read_to_string(dir.path().join(META_FILE)).unwrap()
    }

    fn field<'a>(json: &'a str, name: &str) -> &'a str {
        let start = json.find(&format!("\"{name}\": \"")).unwrap() + name.len() + 5;
        let len = json[start..].find('"').unwrap();
        &json[start..start + len]
    }

    /// An envelope whose context names another algorithm than its id (the
    /// same secret and id, sealed under the keystore's own keyring, so
    /// only the context is wrong) does not open: the algorithm is bound.
    #[test]
    fn a_generated_key_sealed_as_another_algorithm_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let pw = Passphrase::from_str_copy("pw");
        let ks = Keystore::create(
            dir.path(),
            &pw,
            &Seed::new([7; 64]),
            &CreateOptions::light().unwrap(),
        )
        .unwrap();
        let (id, _) = ks.generate_key(KeyAlgorithm::P256).unwrap();
        let path = secrets_dir(dir.path(), ks.generation)
            .join(GENERATED_DIR)
            .join(format!("{id}.env"));
        let secret = Envelope::from_vec(std::fs::read(&path).unwrap())
            .unwrap()
            .open(
                ks.working.as_ref(),
                &generated_context(&id, KeyAlgorithm::P256).unwrap(),
            )
            .wait()
            .unwrap();
        // Ed25519 accepts any 32 bytes as a seed: only the context stops it.
        for wrong in [KeyAlgorithm::Ed25519, KeyAlgorithm::Secp256k1] {
            let forged = Envelope::seal(
                ks.working.as_ref(),
                ks.working.current_kek(),
                &generated_context(&id, wrong).unwrap(),
                secret.expose_secret(),
            )
            .wait()
            .unwrap();
            std::fs::write(&path, forged.as_bytes()).unwrap();
            assert!(matches!(
                Keystore::open(dir.path(), &pw),
                Err(Error::DecryptionFailed)
            ));
        }
        // A context naming the right algorithm under a key id whose digits
        // are not its public key's: refused after opening.
        let other = KeyId::new("p256-0123456789abcdef").unwrap();
        let forged = Envelope::seal(
            ks.working.as_ref(),
            ks.working.current_kek(),
            &generated_context(&other, KeyAlgorithm::P256).unwrap(),
            secret.expose_secret(),
        )
        .wait()
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(
            path.with_file_name("p256-0123456789abcdef.env"),
            forged.as_bytes(),
        )
        .unwrap();
        assert!(matches!(
            Keystore::open(dir.path(), &pw),
            Err(Error::MalformedRecord(
                "a generated key is not the key its id names"
            ))
        ));
    }

    #[test]
    fn metadata_is_checked_before_any_kdf_work() {
        let json = written_meta();
        let meta = Meta::parse(json.as_bytes()).unwrap();
        assert_eq!(meta.to_json().unwrap(), json.as_bytes());

        let fingerprint = field(&json, "fingerprint");
        let check = field(&json, "kekCheck");
        let xpub = field(&json, "xpub");
        // Each damage is its own MalformedRecord, found without a passphrase.
        for (damaged, reason) in [
            (
                json.replace(fingerprint, "0x00000000"),
                "fingerprint is not the xpub's fingerprint",
            ),
            (
                json.replace(check, &check[..62]),
                "kekCheck is not 64 hex digits",
            ),
            (
                json.replace("\"default\"", "\"other\""),
                "unknown wallet scheme",
            ),
            (
                json.replace(xpub, &xpub.replace('x', "t")),
                "xpub is not a valid xpub",
            ),
            (
                json.replace("\"version\": 2", "\"version\": 3"),
                "unsupported keystore format or version",
            ),
        ] {
            assert_ne!(damaged, json);
            match Meta::parse(damaged.as_bytes()) {
                Err(Error::MalformedRecord(r)) => assert_eq!(r, reason),
                Err(e) => panic!("{reason}: got {e:?}"),
                Ok(_) => panic!("{reason}: accepted"),
            }
        }
    }
}
