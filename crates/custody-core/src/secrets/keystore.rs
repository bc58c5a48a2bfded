//! The embedded keystore (see [`Keystore`]).
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::records::audit::{AuditEvent, AuditLog, AuditOp, AuditOutcome, AuditSink};
use crate::records::fsutil::{DirLock, create_private_dir, read_optional, sync_dir, write_atomic};
use crate::records::state::{FileStore, StateStore};
use crate::secrets::hd::{ExtendedPrivateKey, ExtendedPublicKey};
use crate::secrets::vault::public_key_of;
use crate::{
    EncryptionContext, Envelope, Error, KdfParams, KeyBackend, KeyId, LocalKek, Passphrase,
    PrivateKeyBytes, PublicKey, Seed, SharedBackend, Vault, WalletScheme,
};

const META_FILE: &str = "keystore.json";
const MASTER_FILE: &str = "master.env";
const KEYS_DIR: &str = "keys";
const LOCK_FILE: &str = ".lock";
const FORMAT: &str = "custody-keystore";
const VERSION: u32 = 1;
/// Largest keystore.json accepted (a hostile file is refused before parsing).
const MAX_META_BYTES: usize = 64 * 1024;

/// `keystore.json`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Meta {
    format: String,
    version: u32,
    generation: u64,
    kdf: KdfParams,
    kek_id: String,
    kek_check: String,
    wallet_scheme: String,
    xpub: String,
    fingerprint: String,
}

impl Meta {
    /// Parses `keystore.json` and checks every field that needs no
    /// passphrase: the format, version and generation, the KDF parameters
    /// (before any KDF work or allocation), the check value, the wallet
    /// scheme, the master xpub and the fingerprint (which must be the
    /// xpub's). A damaged file is reported as damaged before the KDF runs.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_META_BYTES {
            return Err(Error::MalformedRecord("keystore.json is too large"));
        }
        let meta: Meta = serde_json::from_slice(bytes)
            .map_err(|_| Error::MalformedRecord("keystore.json is not valid keystore metadata"))?;
        if meta.format != FORMAT || meta.version != VERSION {
            return Err(Error::MalformedRecord(
                "unsupported keystore format or version",
            ));
        }
        if meta.generation == 0 {
            return Err(Error::MalformedRecord(
                "keystore generation must be at least 1",
            ));
        }
        meta.kdf.validate()?;
        meta.kek_check()?;
        meta.wallet_scheme
            .parse::<WalletScheme>()
            .map_err(|_| Error::MalformedRecord("unknown wallet scheme"))?;
        let xpub = ExtendedPublicKey::parse(&meta.xpub)
            .map_err(|_| Error::MalformedRecord("xpub is not a valid xpub"))?;
        if parse_fingerprint(&meta.fingerprint)? != xpub.fingerprint() {
            return Err(Error::MalformedRecord(
                "fingerprint is not the xpub's fingerprint",
            ));
        }
        Ok(meta)
    }

    /// The check value, 32 bytes.
    fn kek_check(&self) -> Result<[u8; 32], Error> {
        let mut check = [0u8; 32];
        hex::decode_to_slice(&self.kek_check, &mut check)
            .map_err(|_| Error::MalformedRecord("kekCheck is not 64 hex digits"))?;
        Ok(check)
    }

    /// The JSON form, as written to `keystore.json`.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, Error> {
        serde_json::to_vec_pretty(self).map_err(|_| Error::MalformedRecord("keystore metadata"))
    }
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

    /// The same options with another wallet scheme.
    #[must_use]
    pub fn with_scheme(mut self, scheme: WalletScheme) -> Self {
        self.scheme = scheme;
        self
    }
}

/// The embedded keystore: a directory holding the HD master seed and imported
/// keys, each envelope-encrypted under a passphrase-derived KEK
/// ([`LocalKek`]), plus the state store and the audit log. The embedded
/// default: no cloud, no server.
///
/// Layout (specified in `SPEC.md`, "Keystore directory v1"):
///
/// ```text
/// DIR/keystore.json           metadata: format, version, generation, KDF
///                             parameters, KEK id and check value, wallet
///                             scheme, master xpub and fingerprint
/// DIR/secrets.<gen>/master.env       envelope of the 64-byte BIP39 seed
/// DIR/secrets.<gen>/keys/<id>.env    envelope of each imported private key
/// DIR/state/                  the durable state store (TOTP counters, lockouts)
/// DIR/audit.log               the hash-chained audit log
/// DIR/.lock                   held while a process writes the keystore
/// ```
///
/// Every file is written atomically (temp file, fsync, rename, fsync of the
/// directory), so a crash leaves the old or the new version, never a torn one;
/// writers hold `.lock`, so two processes never interleave. A passphrase
/// change re-wraps every envelope's data key (payloads untouched) into a new
/// `secrets.<gen+1>` directory and then switches `keystore.json` to it in one
/// atomic rename: a crash at any point leaves a keystore that opens with
/// exactly one of the two passphrases.
pub struct Keystore {
    dir: PathBuf,
    generation: u64,
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

fn secrets_dir(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("secrets.{generation}"))
}

fn read_meta(dir: &Path) -> Result<Meta, Error> {
    let bytes = read_optional(&dir.join(META_FILE))?.ok_or(Error::KeystoreNotFound)?;
    Meta::parse(&bytes)
}

fn unlock(meta: &Meta, passphrase: &Passphrase) -> Result<LocalKek, Error> {
    let kek = LocalKek::from_passphrase(passphrase, &meta.kdf)?;
    if !kek.verify_check_value(&meta.kek_check()?) {
        return Err(Error::WrongPassphrase);
    }
    if kek.current_kek().as_str() != meta.kek_id {
        return Err(Error::MalformedRecord("kekId does not match the KDF salt"));
    }
    Ok(kek)
}

/// The envelopes of one generation: (file path, context).
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
    Ok(out)
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
        let lock = DirLock::lock(&dir.join(LOCK_FILE))?;
        if dir.join(META_FILE).exists() {
            return Err(Error::KeystoreExists);
        }
        let kek = Arc::new(LocalKek::from_passphrase(passphrase, &options.kdf)?);
        let kek_id = kek.current_kek().clone();
        let master = ExtendedPrivateKey::from_seed(seed.expose_secret())?;
        let fingerprint = master.fingerprint();
        let generation = 1;
        let secrets = secrets_dir(dir, generation);
        create_private_dir(&secrets)?;
        let envelope = Envelope::seal(
            kek.as_ref(),
            &kek_id,
            &master_context()?,
            seed.expose_secret(),
        )
        .wait()?;
        write_atomic(&secrets, MASTER_FILE, envelope.as_bytes())?;
        let meta = Meta {
            format: FORMAT.to_owned(),
            version: VERSION,
            generation,
            kdf: options.kdf.clone(),
            kek_id: kek_id.as_str().to_owned(),
            kek_check: hex::encode(kek.check_value()),
            wallet_scheme: options.scheme.as_str().to_owned(),
            xpub: master.to_extended_public().to_string(),
            fingerprint: format!("0x{}", hex::encode(fingerprint)),
        };
        // The metadata file is written last: its presence marks a complete keystore.
        write_atomic(dir, META_FILE, &meta.to_json()?)?;
        drop(lock);
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
    /// [`Error::MalformedRecord`] for a damaged metadata file,
    /// [`Error::DecryptionFailed`] / [`Error::MalformedEnvelope`] for a
    /// damaged or moved secret, [`Error::Io`].
    pub fn open(dir: &Path, passphrase: &Passphrase) -> Result<Self, Error> {
        let meta = read_meta(dir)?;
        let kek = unlock(&meta, passphrase)?;
        Self::load(dir, Arc::new(kek), meta)
    }

    fn load(dir: &Path, kek: Arc<LocalKek>, meta: Meta) -> Result<Self, Error> {
        let scheme: WalletScheme = meta.wallet_scheme.parse()?;
        let fingerprint = parse_fingerprint(&meta.fingerprint)?;
        let audit = Arc::new(AuditLog::open(dir.join("audit.log"))?);
        let state = Arc::new(FileStore::open(dir.join("state"))?);
        let kek_backend: SharedBackend = kek.clone();
        let mut vault = Vault::new(kek_backend, scheme);
        let secrets = secrets_dir(dir, meta.generation);
        for (path, context) in envelope_files(&secrets)? {
            let bytes = read_optional(&path)?.ok_or(Error::MalformedRecord(
                "a secret named by the keystore is missing",
            ))?;
            let secret = Envelope::from_vec(bytes)?
                .open(kek.as_ref(), &context)
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
            } else {
                let id = context
                    .get("keyId")
                    .ok_or(Error::MalformedRecord("key context"))?;
                let key = PrivateKeyBytes::from_slice(secret.expose_secret())?;
                vault.insert_key(KeyId::new(id)?, key)?;
            }
        }
        audit.append(
            AuditEvent::new(AuditOp::UNWRAP, AuditOutcome::Success)
                .with_detail("master seed and imported keys unwrapped")
                .with_field("fingerprint", format!("0x{}", hex::encode(fingerprint)))?,
        )?;
        Ok(Self {
            dir: dir.to_path_buf(),
            generation: meta.generation,
            kek,
            vault: Arc::new(vault),
            state,
            audit,
            xpub: meta.xpub,
            fingerprint,
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
    /// changed the passphrase meanwhile, [`Error::Io`], envelope errors.
    pub fn import_key(&self, secret: PrivateKeyBytes) -> Result<(KeyId, PublicKey), Error> {
        let public = public_key_of(&secret)?;
        let id = key_id_for(&public)?;
        let (lock, _) = self.lock_current()?;
        let keys_dir = secrets_dir(&self.dir, self.generation).join(KEYS_DIR);
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
            write_atomic(&keys_dir, &file, env.as_bytes())?;
        }
        drop(lock);
        self.vault.insert_key(id.clone(), secret)?;
        self.audit.append(
            AuditEvent::new(AuditOp::IMPORT, AuditOutcome::Success)
                .with_key(id.as_str())
                .with_public_key(&public),
        )?;
        Ok((id, public))
    }

    /// Changes the keystore passphrase: a new KEK is derived from `new` with
    /// `kdf`, every envelope's data key is re-wrapped under it (the encrypted
    /// payloads are copied unchanged), and the keystore switches to the new
    /// generation in one atomic write. Returns the keystore reopened under
    /// the new passphrase; this handle is consumed.
    ///
    /// # Errors
    /// [`Error::Stale`] if another process re-keyed it first; KDF, envelope
    /// or I/O errors (the keystore then still opens with the old passphrase).
    pub fn change_passphrase(self, new: &Passphrase, kdf: &KdfParams) -> Result<Self, Error> {
        let (lock, mut meta) = self.lock_current()?;
        let new_kek = LocalKek::from_passphrase(new, kdf)?;
        let new_id = new_kek.current_kek().clone();
        let both = LocalKek::from_passphrase(new, kdf)?.with_retired_from(&self.kek)?;
        let old_dir = secrets_dir(&self.dir, self.generation);
        let next = self.generation + 1;
        let new_dir = secrets_dir(&self.dir, next);
        if new_dir.exists() {
            // Left by an interrupted earlier change: never referenced by the
            // metadata, so it holds nothing that is not also in `old_dir`.
            std::fs::remove_dir_all(&new_dir)?;
        }
        create_private_dir(&new_dir)?;
        for (path, context) in envelope_files(&old_dir)? {
            let bytes = read_optional(&path)?.ok_or(Error::MalformedRecord(
                "a secret named by the keystore is missing",
            ))?;
            let rewrapped = Envelope::from_vec(bytes)?
                .rewrap(&both, &new_id, &context)
                .wait()?;
            let rel = path
                .strip_prefix(&old_dir)
                .map_err(|_| Error::MalformedRecord("secret outside its generation"))?;
            let target_dir = rel
                .parent()
                .map_or_else(|| new_dir.clone(), |p| new_dir.join(p));
            create_private_dir(&target_dir)?;
            let name = rel
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or(Error::MalformedRecord("secret file name"))?;
            write_atomic(&target_dir, name, rewrapped.as_bytes())?;
        }
        sync_dir(&new_dir)?;
        meta.generation = next;
        meta.kdf = kdf.clone();
        meta.kek_id = new_id.as_str().to_owned();
        meta.kek_check = hex::encode(new_kek.check_value());
        // The switch: one atomic rename of keystore.json.
        write_atomic(&self.dir, META_FILE, &meta.to_json()?)?;
        // The old generation is no longer referenced; removing it is cleanup.
        std::fs::remove_dir_all(&old_dir)?;
        drop(lock);
        self.audit.append(
            AuditEvent::new(AuditOp::ROTATE, AuditOutcome::Success)
                .with_detail("keystore passphrase changed; data keys re-wrapped")
                .with_field("kek", new_id.as_str())?,
        )?;
        let dir = self.dir.clone();
        drop(self);
        Self::load(&dir, Arc::new(new_kek), meta)
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
            .field("generation", &self.generation)
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
                json.replace("\"version\": 1", "\"version\": 2"),
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
