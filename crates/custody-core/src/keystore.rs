//! The embedded keystore: a directory holding the HD master seed and imported
//! keys, each envelope-encrypted under a passphrase-derived KEK, plus the
//! state store and the audit log. The embedded default: no cloud, no server.
//!
//! Layout (see `SPEC.md`, "Keystore directory v1"):
//!
//! ```text
//! DIR/keystore.json     metadata: format version, KDF parameters, KEK id and
//!                       check value, wallet scheme, master xpub/fingerprint
//! DIR/master.env        envelope of the 64-byte BIP39 seed
//! DIR/keys/<id>.env     envelope of each imported 32-byte private key
//! DIR/state/            the durable state store (TOTP counters, lockouts)
//! DIR/audit.log         the hash-chained audit log
//! DIR/.lock             held while a process writes the keystore's files
//! ```
//!
//! Every file is written atomically (temp file, fsync, rename, fsync of the
//! directory), so a crash leaves the old or the new version, never a torn one;
//! writers hold `.lock` so two processes never interleave.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::audit::{AuditEvent, AuditLog, AuditOp, AuditOutcome, AuditSink};
use crate::fsutil::{DirLock, create_private_dir, read_optional, write_atomic};
use crate::hd::ExtendedPrivateKey;
use crate::state::{FileStore, StateStore};
use crate::vault::public_key_of;
use crate::{
    EncryptionContext, Envelope, Error, KdfParams, KeyBackend, KeyId, LocalKek, Passphrase,
    PrivateKeyBytes, PublicKey, Seed, SharedBackend, Vault, WalletScheme,
};

const META_FILE: &str = "keystore.json";
const MASTER_FILE: &str = "master.env";
const KEYS_DIR: &str = "keys";
const FORMAT: &str = "custody-keystore";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Meta {
    format: String,
    version: u32,
    kdf: KdfParams,
    kek_id: String,
    kek_check: String,
    wallet_scheme: String,
    xpub: String,
    fingerprint: String,
}

/// Options for [`Keystore::create`].
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Passphrase KDF parameters ([`KdfParams::standard`] unless testing).
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
}

/// An open keystore. See the [module docs](self).
pub struct Keystore {
    dir: PathBuf,
    kek: Arc<LocalKek>,
    vault: Arc<Vault>,
    state: Arc<FileStore>,
    audit: Arc<AuditLog>,
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
        create_private_dir(dir)?;
        let _lock = DirLock::lock(&dir.join(".lock"))?;
        if dir.join(META_FILE).exists() {
            return Err(Error::KeystoreExists);
        }
        let kek = Arc::new(LocalKek::from_passphrase(passphrase, &options.kdf)?);
        let kek_id = kek.current_kek().clone();
        let master = ExtendedPrivateKey::from_seed(seed.expose_secret())?;
        let xpub = master.to_extended_public().to_string();
        let fingerprint = master.fingerprint();
        let envelope = Envelope::seal(
            kek.as_ref(),
            &kek_id,
            &master_context()?,
            seed.expose_secret(),
        )
        .wait()?;
        write_atomic(dir, MASTER_FILE, &envelope.to_bytes())?;
        let meta = Meta {
            format: FORMAT.to_owned(),
            version: VERSION,
            kdf: options.kdf.clone(),
            kek_id: kek_id.as_str().to_owned(),
            kek_check: hex::encode(kek.check_value()),
            wallet_scheme: options.scheme.as_str().to_owned(),
            xpub: xpub.clone(),
            fingerprint: format!("0x{}", hex::encode(fingerprint)),
        };
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|_| Error::MalformedRecord("keystore metadata"))?;
        // The metadata file is written last: its presence marks a complete keystore.
        write_atomic(dir, META_FILE, &json)?;
        drop(_lock);
        let ks = Self::load(dir, kek, meta)?;
        ks.audit.append(
            AuditEvent::new(AuditOp::new("create")?, AuditOutcome::Success)
                .with_field("fingerprint", ks.fingerprint_hex())?,
        )?;
        Ok(ks)
    }

    /// Opens the keystore in `dir` with `passphrase`.
    ///
    /// # Errors
    /// [`Error::KeystoreNotFound`], [`Error::WrongPassphrase`],
    /// [`Error::MalformedRecord`] for a damaged metadata file, [`Error::Io`].
    pub fn open(dir: &Path, passphrase: &Passphrase) -> Result<Self, Error> {
        let bytes = read_optional(&dir.join(META_FILE))?.ok_or(Error::KeystoreNotFound)?;
        let meta: Meta = serde_json::from_slice(&bytes)
            .map_err(|_| Error::MalformedRecord("keystore.json is not valid keystore metadata"))?;
        if meta.format != FORMAT || meta.version != VERSION {
            return Err(Error::MalformedRecord(
                "unsupported keystore format or version",
            ));
        }
        meta.kdf.validate()?;
        let kek = LocalKek::from_passphrase(passphrase, &meta.kdf)?;
        let check = hex::decode(&meta.kek_check)
            .map_err(|_| Error::MalformedRecord("kekCheck is not hex"))?;
        if !kek.verify_check_value(&check) {
            return Err(Error::WrongPassphrase);
        }
        Self::load(dir, Arc::new(kek), meta)
    }

    fn load(dir: &Path, kek: Arc<LocalKek>, meta: Meta) -> Result<Self, Error> {
        let scheme: WalletScheme = meta.wallet_scheme.parse()?;
        let fingerprint = parse_fingerprint(&meta.fingerprint)?;
        let audit = Arc::new(AuditLog::open(dir.join("audit.log"))?);
        let state = Arc::new(FileStore::open(dir.join("state"))?);
        let kek_backend: SharedBackend = kek.clone();
        let mut vault = Vault::new(kek_backend, scheme);
        let env_bytes = read_optional(&dir.join(MASTER_FILE))?
            .ok_or(Error::MalformedRecord("master.env is missing"))?;
        let envelope = Envelope::from_bytes(&env_bytes)?;
        let seed = envelope.open(kek.as_ref(), &master_context()?).wait()?;
        let master_xpub = ExtendedPrivateKey::from_seed(seed.expose_secret())?
            .to_extended_public()
            .to_string();
        if master_xpub != meta.xpub {
            return Err(Error::MalformedRecord(
                "master seed does not match the recorded xpub",
            ));
        }
        vault.set_master_seed(seed.expose_secret())?;
        drop(seed);
        let keys_dir = dir.join(KEYS_DIR);
        if keys_dir.is_dir() {
            for entry in std::fs::read_dir(&keys_dir)? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".env")) else {
                    continue;
                };
                let id = KeyId::new(id)?;
                let env = Envelope::from_bytes(&std::fs::read(entry.path())?)?;
                let secret = env.open(kek.as_ref(), &key_context(&id)?).wait()?;
                vault.insert_key(id, PrivateKeyBytes::from_slice(secret.expose_secret())?)?;
            }
        }
        audit.append(
            AuditEvent::new(AuditOp::UNWRAP, AuditOutcome::Success)
                .with_detail("master seed and imported keys unwrapped")
                .with_field("fingerprint", format!("0x{}", hex::encode(fingerprint)))?,
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            kek,
            vault: Arc::new(vault),
            state,
            audit,
            xpub: meta.xpub,
            fingerprint,
        })
    }

    /// Imports a raw private key; returns its id. Importing a key that is
    /// already held returns the existing id (ids derive from the public key).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`], [`Error::Io`], envelope errors.
    pub fn import_key(&self, secret: PrivateKeyBytes) -> Result<(KeyId, PublicKey), Error> {
        let public = public_key_of(&secret)?;
        let id = key_id_for(&public)?;
        let _lock = DirLock::lock(&self.dir.join(".lock"))?;
        let keys_dir = self.dir.join(KEYS_DIR);
        let file = format!("{}.env", id.as_str());
        if !keys_dir.join(&file).exists() {
            create_private_dir(&keys_dir)?;
            let kek_id = self.kek.current_kek().clone();
            let env = Envelope::seal(
                self.kek.as_ref(),
                &kek_id,
                &key_context(&id)?,
                secret.expose_secret(),
            )
            .wait()?;
            write_atomic(&keys_dir, &file, &env.to_bytes())?;
        }
        self.vault.insert_key(id.clone(), secret)?;
        self.audit.append(
            AuditEvent::new(AuditOp::IMPORT, AuditOutcome::Success)
                .with_key(id.as_str())
                .with_public_key(&public),
        )?;
        Ok((id, public))
    }

    /// The vault holding the unlocked secrets.
    #[must_use]
    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// The vault as a shared backend.
    #[must_use]
    pub fn backend(&self) -> SharedBackend {
        self.vault.clone()
    }

    /// The durable state store in `DIR/state`.
    #[must_use]
    pub fn state(&self) -> Arc<dyn StateStore> {
        self.state.clone()
    }

    /// The audit log in `DIR/audit.log`.
    #[must_use]
    pub fn audit(&self) -> Arc<dyn AuditSink> {
        self.audit.clone()
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
        format!("0x{}", hex::encode(self.fingerprint))
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

fn parse_fingerprint(s: &str) -> Result<[u8; 4], Error> {
    let hexpart = s
        .strip_prefix("0x")
        .ok_or(Error::MalformedRecord("fingerprint"))?;
    let v = hex::decode(hexpart).map_err(|_| Error::MalformedRecord("fingerprint"))?;
    v.try_into()
        .map_err(|_| Error::MalformedRecord("fingerprint"))
}

impl fmt::Debug for Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystore")
            .field("dir", &self.dir)
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
}
