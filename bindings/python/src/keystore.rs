//! `custody.Keystore`: an open keystore and the gates every signature and
//! export goes through, composed exactly as the CLI and the C ABI compose
//! them ([`KeystoreGate`]: `Audited(TotpGate(keystore backend))` over the
//! keystore's own state store and audit log).

use std::path::PathBuf;

use custody_core::{
    Authorization, CreateOptions, Denial, ErrorReport, KeyRef, KeySigner, Keystore, Mnemonic,
    OneTimeCode, RootKek, SharedBackend, WalletScheme,
};
use custody_eth::keystore_v3::{self, KdfChoice};
use custody_eth::{EthSigner, PersonalMessage, Transaction, TypedData};
use custody_kms::{BackendConfig, BackendUri};
use custody_totp::{EnrolMode, KeystoreGate};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::error::{bad_input, detached, raised};
use crate::input::{self, Target};
use crate::results::{DerivedKey, SignedMessage, SignedTransaction, TotpEnrolment};

/// An open keystore (a directory made by `custody init` or
/// [`Keystore::create`]). Safe to share between Python threads; the GIL is
/// released while it derives, signs, runs a KDF or touches the disk.
#[pyclass(frozen, module = "custody", name = "Keystore")]
pub(crate) struct PyKeystore {
    keystore: Keystore,
    gate: KeystoreGate,
}

/// The authorization a code argument gives: `None` is none.
fn consent(code: Option<&str>) -> Authorization {
    code.map_or_else(Authorization::none, Authorization::totp)
}

/// The key `key` names behind `backend`, as an Ethereum signer; errors
/// name the argument that named it (`what`).
fn pin(backend: SharedBackend, key: KeyRef, what: &str) -> Result<EthSigner, ErrorReport> {
    let signer = KeySigner::pin(backend, key).wait().map_err(|e| match e {
        custody_core::Error::KeyNotFound => ErrorReport::new("not-found", "no such key"),
        other => ErrorReport::from(other).context(what),
    })?;
    Ok(EthSigner::new(signer)?)
}

/// The argument that named a keystore key.
fn what(key: &KeyRef) -> &'static str {
    match key {
        KeyRef::Path(_) => "path",
        KeyRef::Stored(_) => "key_id",
        _ => "wallet/index",
    }
}

/// An export refused as `forbidden` says which rule refused it (the CLI's
/// message); the rest keep the gate's kind and message.
fn export_refusal(e: custody_core::Error) -> ErrorReport {
    if let custody_core::Error::Denied(Denial::Forbidden) = e {
        return ErrorReport::new(
            "forbidden",
            "export refused: with the public xpubs, this private key exposes an ancestor \
             of an enrolled wallet's node (the key is such an ancestor, or a normal child \
             of one); sign with it instead, or export a key at or under the wallet with a code",
        );
    }
    e.into()
}

impl PyKeystore {
    fn new(keystore: Keystore) -> Result<Self, ErrorReport> {
        let gate = KeystoreGate::new(&keystore, keystore.backend())?;
        Ok(Self { keystore, gate })
    }

    /// The gated signer of `key`: every signature through it passes the
    /// TOTP gate and lands in the audit log.
    fn gated_signer(&self, key: KeyRef) -> Result<EthSigner, ErrorReport> {
        let what = what(&key);
        pin(self.gate.backend().clone(), key, what)
    }

    /// The signer of `target`: a keystore key, or an external key opened
    /// from its URI with the CLI's configuration (the standard AWS
    /// environment, `CUSTODY_PKCS11_MODULE`, `CUSTODY_PKCS11_PIN`), behind
    /// the same gates (`KeystoreGate`) when `gated`, else bare (public
    /// data only).
    fn signer(&self, target: Target, gated: bool) -> Result<EthSigner, ErrorReport> {
        match target {
            Target::Local(key) if gated => self.gated_signer(key),
            Target::Local(key) => {
                let what = what(&key);
                pin(self.keystore.backend(), key, what)
            }
            Target::External(uri) => {
                let parsed = BackendUri::parse(&uri).map_err(|e| e.report("key"))?;
                let (inner, key) = BackendConfig::from_env()
                    .signer(&parsed)
                    .map_err(|e| e.report("key"))?;
                let backend = if gated {
                    KeystoreGate::new(&self.keystore, inner)?.backend().clone()
                } else {
                    inner
                };
                pin(backend, key, "key")
            }
        }
    }

    /// The private key of `key`, through the gates.
    fn export(
        &self,
        key: KeyRef,
        code: Option<&str>,
    ) -> Result<custody_core::PrivateKeyBytes, ErrorReport> {
        let signer = self.gated_signer(key)?;
        let exporting = self.gate.backend().exporting().ok_or_else(|| {
            ErrorReport::new("unsupported", "keys of this backend cannot be exported")
        })?;
        exporting
            .export_private_key(signer.key_signer().key(), &consent(code))
            .wait()
            .map_err(export_refusal)
    }
}

#[pymethods]
impl PyKeystore {
    /// Creates a keystore in directory `path` (made if absent; it must not
    /// hold one already) from a BIP39 `mnemonic`, or from a fresh 24-word
    /// one that never leaves the library when `mnemonic` is None (to keep a
    /// backup, make one with `custody.generate_mnemonic()` and pass it).
    ///
    /// `kek` is where the master seed's key-encryption key lives, as the
    /// CLI's `init --kek`: `"passphrase"` (the default: `passphrase` is
    /// then required), `"aws-kms:KEY"` or `"pkcs11:token=...;object=..."`.
    #[staticmethod]
    #[pyo3(signature = (path, passphrase=None, mnemonic=None, *, bip39_passphrase=None, light_kdf=false, wallet_scheme="default", kek="passphrase"))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the Python signature's keyword arguments, one parameter each"
    )]
    fn create(
        py: Python<'_>,
        path: PathBuf,
        passphrase: Option<&Bound<'_, PyAny>>,
        mnemonic: Option<&Bound<'_, PyString>>,
        bip39_passphrase: Option<&Bound<'_, PyString>>,
        light_kdf: bool,
        wallet_scheme: &str,
        kek: &str,
    ) -> PyResult<Self> {
        let passphrase = passphrase
            .map(|p| raised(py, input::secret(p, "passphrase")))
            .transpose()?;
        let kek_uri = raised(py, BackendUri::parse(kek).map_err(|e| e.report("kek")))?;
        let mnemonic = mnemonic
            .map(|m| raised(py, input::secret_text(m, "mnemonic")))
            .transpose()?;
        let bip39_passphrase = bip39_passphrase
            .map(|p| raised(py, input::secret_text(p, "bip39_passphrase")))
            .transpose()?;
        let scheme: WalletScheme = raised(
            py,
            wallet_scheme
                .parse()
                .map_err(|_| bad_input("wallet_scheme: must be 'default' or 'fortanix'")),
        )?;
        detached(py, move || {
            let mnemonic = match &mnemonic {
                Some(text) => Mnemonic::parse(text.trim())
                    .map_err(|_| bad_input("mnemonic: not a valid BIP39 mnemonic"))?,
                None => Mnemonic::generate(24)?,
            };
            let seed = mnemonic.to_seed(bip39_passphrase.as_deref().map_or("", |p| p.as_str()));
            drop(mnemonic);
            let options = if light_kdf {
                CreateOptions::light()?
            } else {
                CreateOptions::standard()?
            }
            .with_scheme(scheme);
            let keystore = match (&kek_uri, &passphrase) {
                (BackendUri::Passphrase, Some(passphrase)) => {
                    Keystore::create(&path, passphrase, &seed, &options)?
                }
                (BackendUri::Passphrase, None) => {
                    return Err(bad_input(
                        "passphrase: required for a keystore whose KEK is its passphrase",
                    ));
                }
                (other, _) => {
                    let backend = BackendConfig::from_env()
                        .kek(other)
                        .map_err(|e| e.report("kek"))?;
                    let root = RootKek::Backend { uri: kek, backend };
                    Keystore::create_with(&path, root, &seed, &options)?
                }
            };
            Self::new(keystore)
        })
    }

    /// Opens the keystore in directory `path` with what its metadata says
    /// holds its key-encryption key: `passphrase` (needed only then), or
    /// the AWS KMS key or PKCS#11 token key its URI names (`custody init
    /// --kek aws-kms:KEY|pkcs11:...`), configured as the CLI configures it.
    #[staticmethod]
    #[pyo3(signature = (path, passphrase=None))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        passphrase: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let passphrase = passphrase
            .map(|p| raised(py, input::secret(p, "passphrase")))
            .transpose()?;
        detached(py, move || {
            let kind = Keystore::kek_of(&path)?;
            let config = BackendConfig::from_env();
            let unlock = config
                .unlock(&kind, passphrase.as_ref())
                .map_err(|e| match e {
                    custody_kms::BackendUriError::PassphraseRequired => {
                        bad_input("passphrase: required for a keystore whose KEK is its passphrase")
                    }
                    other => other.report("the keystore's KEK"),
                })?;
            let keystore = Keystore::open_with(&path, unlock)?;
            drop(passphrase);
            Self::new(keystore)
        })
    }

    /// Imports the private key of a Web3 Secret Storage v3 keystore (a
    /// dict or JSON text, as geth and eth-account write it) under
    /// `password`, wrapped under this keystore's KEK; returns its key id
    /// (name it with `key_id=` afterwards).
    fn import_keystore_v3(
        &self,
        py: Python<'_>,
        json: &Bound<'_, PyAny>,
        password: &Bound<'_, PyAny>,
    ) -> PyResult<String> {
        let text = raised(py, input::json_text(json, "json"))?;
        let password = raised(py, input::secret(password, "password"))?;
        detached(py, move || {
            let v3 = keystore_v3::parse(&text).map_err(|e| ErrorReport::from(e).context("json"))?;
            let secret = v3.decrypt(&password).map_err(ErrorReport::from)?;
            drop(password);
            let (id, _) = self.keystore.import_key(secret)?;
            Ok(id.as_str().to_owned())
        })
    }

    /// The keystore's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.keystore.dir().to_path_buf()
    }

    /// The master key's xpub (BIP32, public).
    #[getter]
    fn xpub(&self) -> &str {
        self.keystore.xpub()
    }

    /// The master key's 4-byte BIP32 fingerprint, as 0x-hex.
    #[getter]
    fn fingerprint(&self) -> String {
        format!("0x{}", hex::encode(self.keystore.fingerprint()))
    }

    /// Public data of a key: no code needed, nothing audited.
    #[pyo3(signature = (wallet=None, index=None, *, path=None, key_id=None, key=None))]
    fn derive(
        &self,
        py: Python<'_>,
        wallet: Option<String>,
        index: Option<u32>,
        path: Option<String>,
        key_id: Option<String>,
        key: Option<String>,
    ) -> PyResult<DerivedKey> {
        let target = raised(
            py,
            input::target(
                wallet.as_deref(),
                index,
                path.as_deref(),
                key_id.as_deref(),
                key.as_deref(),
            ),
        )?;
        detached(py, || {
            // A public key: nothing to gate (as the CLI's `derive`).
            let signer = self.signer(target, false)?;
            let pinned = signer.key_signer().key();
            Ok(DerivedKey {
                address: signer.address().to_checksum(),
                public_key: signer.public_key().to_uncompressed(),
                path: pinned.path().map(ToString::to_string),
                index: wallet.as_ref().and(index),
                wallet,
                key_id,
                key,
            })
        })
    }

    /// Enrols `wallet` for TOTP and returns its secret, once.
    #[pyo3(signature = (wallet, *, issuer=None, rotate_code=None))]
    fn totp_register(
        &self,
        py: Python<'_>,
        wallet: String,
        issuer: Option<String>,
        rotate_code: Option<String>,
    ) -> PyResult<TotpEnrolment> {
        detached(py, move || {
            let registry = match &issuer {
                Some(issuer) => KeystoreGate::registry_for(&self.keystore, Some(issuer))
                    .map_err(|e| ErrorReport::from(e).context("issuer"))?,
                None => self.gate.registry().clone(),
            };
            let mode = match rotate_code {
                Some(code) => EnrolMode::Rotate(OneTimeCode::new(code)),
                None => EnrolMode::New,
            };
            let enrolment = registry.enrol(&wallet, mode).wait()?;
            Ok(TotpEnrolment {
                uri: enrolment.to_uri(),
                secret: enrolment.secret_base32(),
                wallet,
            })
        })
    }

    /// Signs one transaction (Ethereum JSON-RPC form, as a dict or JSON
    /// text) through the gates.
    #[pyo3(signature = (tx, wallet=None, index=None, *, path=None, code=None, key_id=None, key=None))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the Python signature's keyword arguments, one parameter each"
    )]
    fn sign_transaction(
        &self,
        py: Python<'_>,
        tx: &Bound<'_, PyAny>,
        wallet: Option<String>,
        index: Option<u32>,
        path: Option<String>,
        code: Option<String>,
        key_id: Option<String>,
        key: Option<String>,
    ) -> PyResult<SignedTransaction> {
        let target = raised(
            py,
            input::target(
                wallet.as_deref(),
                index,
                path.as_deref(),
                key_id.as_deref(),
                key.as_deref(),
            ),
        )?;
        let text = raised(py, input::json_text(tx, "tx"))?;
        detached(py, move || {
            let tx = Transaction::from_json_str(&text).map_err(ErrorReport::from)?;
            let signer = self.signer(target, true)?;
            let signed = signer
                .sign_transaction(&tx, &consent(code.as_deref()))
                .wait()
                .map_err(ErrorReport::from)?;
            let sig = signed.signature();
            Ok(SignedTransaction {
                raw_transaction: signed.encoded().to_vec(),
                hash: signed.hash(),
                signing_hash: signed.signing_hash().0,
                sender: signer.address().to_checksum(),
                r: *sig.r(),
                s: *sig.s(),
                v: signed.v(),
            })
        })
    }

    /// Signs an EIP-191 personal message (`bytes`, or a `str` as its
    /// UTF-8 bytes) through the gates.
    #[pyo3(signature = (message, wallet=None, index=None, *, path=None, code=None, key_id=None, key=None))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the Python signature's keyword arguments, one parameter each"
    )]
    fn sign_message(
        &self,
        py: Python<'_>,
        message: &Bound<'_, PyAny>,
        wallet: Option<String>,
        index: Option<u32>,
        path: Option<String>,
        code: Option<String>,
        key_id: Option<String>,
        key: Option<String>,
    ) -> PyResult<SignedMessage> {
        let target = raised(
            py,
            input::target(
                wallet.as_deref(),
                index,
                path.as_deref(),
                key_id.as_deref(),
                key.as_deref(),
            ),
        )?;
        let message = if let Ok(bytes) = message.cast::<PyBytes>() {
            PersonalMessage::from_bytes(bytes.as_bytes())
        } else if let Ok(text) = message.cast::<PyString>() {
            let text = raised(
                py,
                text.to_cow()
                    .map_err(|_| bad_input("message: not valid Unicode")),
            )?;
            PersonalMessage::from_text(&text)
        } else {
            return Err(crate::error::raise(
                py,
                &bad_input("message: expected bytes or str"),
            ));
        };
        detached(py, move || {
            let signer = self.signer(target, true)?;
            let sig = signer
                .sign_personal_message(&message, &consent(code.as_deref()))
                .wait()
                .map_err(ErrorReport::from)?;
            Ok(SignedMessage {
                message_hash: message.signing_hash().0,
                signature: sig.to_bytes(),
                address: signer.address().to_checksum(),
            })
        })
    }

    /// Signs EIP-712 typed data (the `eth_signTypedData_v4` object, as a
    /// dict or JSON text) through the gates.
    #[pyo3(signature = (typed_data, wallet=None, index=None, *, path=None, code=None, key_id=None, key=None))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the Python signature's keyword arguments, one parameter each"
    )]
    fn sign_typed_data(
        &self,
        py: Python<'_>,
        typed_data: &Bound<'_, PyAny>,
        wallet: Option<String>,
        index: Option<u32>,
        path: Option<String>,
        code: Option<String>,
        key_id: Option<String>,
        key: Option<String>,
    ) -> PyResult<SignedMessage> {
        let target = raised(
            py,
            input::target(
                wallet.as_deref(),
                index,
                path.as_deref(),
                key_id.as_deref(),
                key.as_deref(),
            ),
        )?;
        let text = raised(py, input::json_text(typed_data, "typed_data"))?;
        detached(py, move || {
            let typed = TypedData::from_json_str(&text).map_err(ErrorReport::from)?;
            let signer = self.signer(target, true)?;
            let sig = signer
                .sign_typed_data(&typed, &consent(code.as_deref()))
                .wait()
                .map_err(ErrorReport::from)?;
            Ok(SignedMessage {
                message_hash: typed.signing_hash().0,
                signature: sig.to_bytes(),
                address: signer.address().to_checksum(),
            })
        })
    }

    /// Exports a key's 32-byte private key through the gates (key
    /// material: the one way a raw secret leaves the library).
    #[pyo3(signature = (wallet=None, index=None, *, path=None, code=None))]
    fn export_private_key<'py>(
        &self,
        py: Python<'py>,
        wallet: Option<String>,
        index: Option<u32>,
        path: Option<String>,
        code: Option<String>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let key = raised(
            py,
            input::key_ref(wallet.as_deref(), index, path.as_deref()),
        )?;
        let secret = detached(py, move || self.export(key, code.as_deref()))?;
        Ok(PyBytes::new(py, secret.expose_secret()))
    }

    /// Exports a key as a Web3 Secret Storage v3 keystore (a dict) under
    /// `password`, through the gates.
    #[pyo3(signature = (wallet=None, index=None, *, password, path=None, code=None, light_kdf=false))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the Python signature's keyword arguments, one parameter each"
    )]
    fn export_keystore_v3<'py>(
        &self,
        py: Python<'py>,
        wallet: Option<String>,
        index: Option<u32>,
        password: &Bound<'_, PyAny>,
        path: Option<String>,
        code: Option<String>,
        light_kdf: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let key = raised(
            py,
            input::key_ref(wallet.as_deref(), index, path.as_deref()),
        )?;
        let password = raised(py, input::secret(password, "password"))?;
        let json = detached(py, move || {
            let secret = self.export(key, code.as_deref())?;
            let kdf = if light_kdf {
                KdfChoice::ScryptLight
            } else {
                KdfChoice::ScryptStandard
            };
            Ok(keystore_v3::encrypt(&secret, &password, kdf)?)
        })?;
        py.import("json")?.getattr("loads")?.call1((json,))
    }

    fn __repr__(&self) -> String {
        format!(
            "Keystore(path={:?})",
            self.keystore.dir().display().to_string()
        )
    }
}
