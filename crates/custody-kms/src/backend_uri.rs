//! Backend URIs, as every front end names a backend (the `custody` CLI's
//! `--kek` and `--key`, the C ABI, the Python package): `passphrase`,
//! `aws-kms:KEY` and `pkcs11:token=LABEL;object=LABEL`, parsed by
//! [`BackendUri::parse`] and turned into this crate's backends by a
//! [`BackendConfig`].
//!
//! Parsing is always built; opening a backend needs its feature
//! (`aws-config` for `aws-kms:`, `pkcs11` for `pkcs11:`) and fails with
//! kind `unsupported` without it, so the default build still pulls no
//! network stack.
//!
//! Configuration comes from the caller or, with [`BackendConfig::from_env`],
//! from the standard environment: AWS region, credentials and endpoint as
//! the AWS SDK reads them (`AWS_REGION`, `AWS_ENDPOINT_URL`, profiles...);
//! the PKCS#11 module from the URI's `module-path=` or
//! `CUSTODY_PKCS11_MODULE`, the PIN from the URI's `pin-source=file:` or
//! `CUSTODY_PKCS11_PIN`. A PIN is never part of a URI (`pin-value=` is
//! refused), never printed by `Debug`, never in an error, and is wiped
//! when dropped.

use std::fmt;
use std::path::{Path, PathBuf};

use custody_core::{
    BackendError, ErrorReport, KekKind, KeyId, KeyRef, Keystore, Passphrase, SharedBackend, Unlock,
};
use zeroize::Zeroizing;

/// The environment variable naming the PKCS#11 module
/// ([`BackendConfig::from_env`]).
pub const PKCS11_MODULE_VAR: &str = "CUSTODY_PKCS11_MODULE";

/// The environment variable holding the PKCS#11 user PIN
/// ([`BackendConfig::from_env`]).
pub const PKCS11_PIN_VAR: &str = "CUSTODY_PKCS11_PIN";

/// A backend URI, parsed: where a key-encryption key (KEK) or an external
/// signing key lives.
///
/// `Debug` shows [`BackendUri::label`] only (no query).
#[derive(Clone, PartialEq, Eq)]
pub enum BackendUri {
    /// `passphrase`: the keystore passphrase (a KEK only, and not a
    /// backend: a scrypt KEK the keystore derives itself).
    Passphrase,
    /// `aws-kms:KEY`: an AWS KMS key by key id, ARN or `alias/NAME`.
    AwsKms(KeyId),
    /// `pkcs11:…`: an RFC 7512 PKCS#11 URI, as given (checked when opened).
    Pkcs11(String),
}

impl BackendUri {
    /// Parses a backend URI.
    ///
    /// # Errors
    /// [`BackendUriError::InvalidKmsKey`] for `aws-kms:` with a key that is
    /// not 1-2048 printable ASCII characters;
    /// [`BackendUriError::Unrecognized`] for anything but `passphrase`,
    /// `aws-kms:` and `pkcs11:`.
    pub fn parse(uri: &str) -> Result<Self, BackendUriError> {
        if uri == "passphrase" {
            return Ok(Self::Passphrase);
        }
        if let Some(key) = uri.strip_prefix("aws-kms:") {
            let key = KeyId::new(key).map_err(|_| BackendUriError::InvalidKmsKey)?;
            return Ok(Self::AwsKms(key));
        }
        if uri.starts_with("pkcs11:") {
            return Ok(Self::Pkcs11(uri.to_owned()));
        }
        Err(BackendUriError::Unrecognized)
    }

    /// The name shown to people (authenticator labels, audit): `uri`
    /// without its query (`pin-source=` and `module-path=` name local
    /// files).
    #[must_use]
    pub fn label(uri: &str) -> &str {
        uri.split_once('?').map_or(uri, |(path, _)| path)
    }
}

impl fmt::Debug for BackendUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Passphrase => f.write_str("Passphrase"),
            Self::AwsKms(key) => f.debug_tuple("AwsKms").field(key).finish(),
            Self::Pkcs11(text) => f.debug_tuple("Pkcs11").field(&Self::label(text)).finish(),
        }
    }
}

/// What a backend URI is opened with: the PKCS#11 module and PIN to use
/// when the URI names none, and the AWS KMS client (else one configured
/// from the standard AWS environment).
///
/// Not `Clone` (it holds a PIN); `Debug` shows whether a PIN is set, never
/// the PIN.
#[derive(Default)]
pub struct BackendConfig {
    pkcs11_module: Option<PathBuf>,
    pkcs11_pin: Option<Zeroizing<String>>,
    #[cfg(feature = "aws-kms")]
    kms_client: Option<crate::KmsClient>,
}

impl fmt::Debug for BackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("BackendConfig");
        d.field("pkcs11_module", &self.pkcs11_module).field(
            "pkcs11_pin",
            &self.pkcs11_pin.as_ref().map(|_| "<redacted>"),
        );
        #[cfg(feature = "aws-kms")]
        d.field("kms_client", &self.kms_client.is_some());
        d.finish()
    }
}

impl BackendConfig {
    /// No PKCS#11 module or PIN (a `pkcs11:` URI then needs its own
    /// `module-path=` and `pin-source=`), and the AWS KMS client from the
    /// standard AWS environment.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The CLI contract's configuration: the PKCS#11 module from
    /// `CUSTODY_PKCS11_MODULE` and the PIN from `CUSTODY_PKCS11_PIN` (each
    /// if set; a URI's own `module-path=` and `pin-source=` still win), the
    /// AWS KMS client from the standard AWS environment when one is opened.
    /// A PIN that is not UTF-8 is ignored, as if unset.
    #[must_use]
    pub fn from_env() -> Self {
        let mut config = Self::new();
        config.pkcs11_module = std::env::var_os(PKCS11_MODULE_VAR).map(PathBuf::from);
        config.pkcs11_pin = std::env::var(PKCS11_PIN_VAR).ok().map(Zeroizing::new);
        config
    }

    /// The PKCS#11 module for `pkcs11:` URIs without `module-path=`.
    #[must_use]
    pub fn with_pkcs11_module(mut self, path: impl Into<PathBuf>) -> Self {
        self.pkcs11_module = Some(path.into());
        self
    }

    /// The user PIN for `pkcs11:` URIs without `pin-source=` (wiped when
    /// this configuration is dropped).
    #[must_use]
    pub fn with_pkcs11_pin(mut self, pin: impl Into<String>) -> Self {
        self.pkcs11_pin = Some(Zeroizing::new(pin.into()));
        self
    }

    /// The AWS KMS client for `aws-kms:` URIs, instead of one configured
    /// from the environment.
    #[cfg(feature = "aws-kms")]
    #[must_use]
    pub fn with_kms_client(mut self, client: crate::KmsClient) -> Self {
        self.kms_client = Some(client);
        self
    }

    /// The PKCS#11 module used when a URI names none.
    #[must_use]
    pub fn pkcs11_module(&self) -> Option<&Path> {
        self.pkcs11_module.as_deref()
    }

    /// A wrapping backend holding the KEK `uri` names (a `SYMMETRIC_DEFAULT`
    /// KMS key, an AES key on a token), the one `RootKek::Backend` and
    /// `Unlock::Backend` take.
    ///
    /// # Errors
    /// [`BackendUriError::NotABackend`] for `passphrase`;
    /// `BackendUriError::InvalidPkcs11Uri` (a variant of the `pkcs11`
    /// feature) or [`BackendUriError::NoObject`] for a bad `pkcs11:` URI;
    /// [`BackendUriError::NotBuilt`] without the backend's feature;
    /// [`BackendUriError::Open`] if the backend cannot be reached or
    /// refuses (a wrong PIN is `access-denied`).
    pub fn kek(&self, uri: &BackendUri) -> Result<SharedBackend, BackendUriError> {
        match uri {
            BackendUri::Passphrase => Err(BackendUriError::NotABackend),
            BackendUri::AwsKms(key) => self.aws_kek(key),
            BackendUri::Pkcs11(text) => self.pkcs11_kek(text),
        }
    }

    /// A signing backend holding the key `uri` names (an `ECC_SECG_P256K1`
    /// `SIGN_VERIFY` KMS key, an EC secp256k1 key on a token), and the
    /// reference that pins it (`KeySigner::pin`).
    ///
    /// # Errors
    /// [`BackendUriError::NotASigningKey`] for `passphrase`; else as
    /// [`BackendConfig::kek`].
    pub fn signer(&self, uri: &BackendUri) -> Result<(SharedBackend, KeyRef), BackendUriError> {
        match uri {
            BackendUri::Passphrase => Err(BackendUriError::NotASigningKey),
            BackendUri::AwsKms(key) => self.aws_signer(key),
            BackendUri::Pkcs11(text) => self.pkcs11_signer(text),
        }
    }

    /// What opens a keystore whose root KEK is `kind`
    /// ([`Keystore::kek_of`]): `passphrase` for a passphrase KEK, else the
    /// backend its recorded URI names.
    ///
    /// # Errors
    /// [`BackendUriError::PassphraseRequired`] for a passphrase KEK and no
    /// passphrase; the errors of [`BackendUri::parse`] and
    /// [`BackendConfig::kek`] for the recorded URI;
    /// [`BackendUriError::Open`] (`unsupported`) for a KEK kind this
    /// version does not know.
    pub fn unlock<'a>(
        &self,
        kind: &KekKind,
        passphrase: Option<&'a Passphrase>,
    ) -> Result<Unlock<'a>, BackendUriError> {
        match kind {
            KekKind::Passphrase => passphrase
                .map(Unlock::Passphrase)
                .ok_or(BackendUriError::PassphraseRequired),
            KekKind::Backend { uri, .. } => {
                Ok(Unlock::Backend(self.kek(&BackendUri::parse(uri)?)?))
            }
            _ => Err(custody_core::Error::Unsupported("this keystore's kind of KEK").into()),
        }
    }

    /// Opens the keystore in `dir` with what its metadata says holds its
    /// KEK: `passphrase` (needed only then), or the backend its URI names.
    /// Its state store and audit log are the directory's own.
    ///
    /// # Errors
    /// As [`BackendConfig::unlock`]; [`BackendUriError::Open`] with the
    /// errors of [`Keystore::kek_of`] and [`Keystore::open_with`]
    /// (`not-found`, `wrong-passphrase`, `decryption-failed`, ...).
    pub fn open_keystore(
        &self,
        dir: &Path,
        passphrase: Option<&Passphrase>,
    ) -> Result<Keystore, BackendUriError> {
        let kind = Keystore::kek_of(dir)?;
        let unlock = self.unlock(&kind, passphrase)?;
        Ok(Keystore::open_with(dir, unlock)?)
    }

    #[cfg(feature = "aws-kms")]
    fn aws_client(&self) -> Result<crate::KmsClient, BackendUriError> {
        match &self.kms_client {
            Some(client) => Ok(client.clone()),
            #[cfg(feature = "aws-config")]
            None => Ok(crate::KmsClient::from_env_with_own_runtime()?),
            #[cfg(not(feature = "aws-config"))]
            None => Err(BackendUriError::NotBuilt {
                feature: "aws-config",
            }),
        }
    }

    #[cfg(feature = "aws-kms")]
    fn aws_kek(&self, key: &KeyId) -> Result<SharedBackend, BackendUriError> {
        let kek = crate::KmsKek::new(self.aws_client()?, custody_core::KekId::new(key.as_str())?);
        Ok(std::sync::Arc::new(kek))
    }

    #[cfg(feature = "aws-kms")]
    fn aws_signer(&self, key: &KeyId) -> Result<(SharedBackend, KeyRef), BackendUriError> {
        let signer = crate::KmsSigner::new(self.aws_client()?);
        Ok((std::sync::Arc::new(signer), KeyRef::Stored(key.clone())))
    }

    #[cfg(not(feature = "aws-kms"))]
    #[expect(clippy::unused_self, reason = "the signature of the built twin")]
    fn aws_kek(&self, _: &KeyId) -> Result<SharedBackend, BackendUriError> {
        Err(BackendUriError::NotBuilt { feature: "aws-kms" })
    }

    #[cfg(not(feature = "aws-kms"))]
    #[expect(clippy::unused_self, reason = "the signature of the built twin")]
    fn aws_signer(&self, _: &KeyId) -> Result<(SharedBackend, KeyRef), BackendUriError> {
        Err(BackendUriError::NotBuilt { feature: "aws-kms" })
    }

    /// The token a URI names, opened with the module and PIN of the URI or
    /// of this configuration, and the object label it names.
    #[cfg(feature = "pkcs11")]
    fn pkcs11_token(&self, text: &str) -> Result<(crate::Pkcs11Token, String), BackendUriError> {
        use crate::{Pin, Pkcs11Token, Pkcs11Uri};
        let uri = Pkcs11Uri::parse(text).map_err(BackendUriError::InvalidPkcs11Uri)?;
        let object = uri.object().ok_or(BackendUriError::NoObject)?.to_owned();
        let pin = self.pkcs11_pin.as_ref().map(|p| Pin::new(p.as_str()));
        let token = Pkcs11Token::open_uri(&uri, self.pkcs11_module.as_deref(), pin)
            .map_err(custody_core::Error::backend)?;
        Ok((token, object))
    }

    #[cfg(feature = "pkcs11")]
    fn pkcs11_kek(&self, text: &str) -> Result<SharedBackend, BackendUriError> {
        let (token, object) = self.pkcs11_token(text)?;
        let kek = crate::Pkcs11Kek::new(token, custody_core::KekId::new(object)?)
            .map_err(custody_core::Error::backend)?;
        Ok(std::sync::Arc::new(kek))
    }

    #[cfg(feature = "pkcs11")]
    fn pkcs11_signer(&self, text: &str) -> Result<(SharedBackend, KeyRef), BackendUriError> {
        let (token, object) = self.pkcs11_token(text)?;
        let signer = crate::Pkcs11Signer::new(token);
        Ok((
            std::sync::Arc::new(signer),
            KeyRef::Stored(KeyId::new(object)?),
        ))
    }

    #[cfg(not(feature = "pkcs11"))]
    #[expect(clippy::unused_self, reason = "the signature of the built twin")]
    fn pkcs11_kek(&self, _: &str) -> Result<SharedBackend, BackendUriError> {
        Err(BackendUriError::NotBuilt { feature: "pkcs11" })
    }

    #[cfg(not(feature = "pkcs11"))]
    #[expect(clippy::unused_self, reason = "the signature of the built twin")]
    fn pkcs11_signer(&self, _: &str) -> Result<(SharedBackend, KeyRef), BackendUriError> {
        Err(BackendUriError::NotBuilt { feature: "pkcs11" })
    }
}

/// Why a backend URI could not be parsed or opened.
///
/// [`BackendUriError::kind`] is the stable kind of the CLI contract
/// (`bad-input`, `unsupported`, or the backend's own: `access-denied`,
/// `not-found`, `unavailable`, ...). Messages name the URI form expected
/// and public identifiers only: never a PIN.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum BackendUriError {
    /// Not `passphrase`, `aws-kms:` or `pkcs11:`.
    #[error("expected passphrase, aws-kms:KEY or pkcs11:token=LABEL;object=LABEL")]
    Unrecognized,
    /// `aws-kms:` with an empty or malformed key.
    #[error("aws-kms:KEY needs a key id, ARN or alias/NAME (printable ASCII, no spaces)")]
    InvalidKmsKey,
    /// `passphrase` where a KEK backend is needed.
    #[error("passphrase is not a backend")]
    NotABackend,
    /// `passphrase` where a signing key is needed.
    #[error("expected aws-kms:KEY or pkcs11:token=LABEL;object=LABEL")]
    NotASigningKey,
    /// A `pkcs11:` URI that names no object.
    #[error("the pkcs11: URI names no object (object=LABEL)")]
    NoObject,
    /// A `pkcs11:` URI that does not parse (RFC 7512), or holds a
    /// `pin-value`.
    #[cfg(feature = "pkcs11")]
    #[error(transparent)]
    InvalidPkcs11Uri(crate::Pkcs11Error),
    /// A keystore whose KEK is its passphrase, opened without one.
    #[error("this keystore's KEK is its passphrase: give the passphrase")]
    PassphraseRequired,
    /// The backend's cargo feature is off in this build.
    #[error("built without the {feature} backend (cargo feature {feature} of custody-kms)")]
    NotBuilt {
        /// The feature: `aws-kms`, `aws-config` or `pkcs11`.
        feature: &'static str,
    },
    /// The backend (or the keystore) could not be opened: the backend's
    /// own kind and message, as [`custody_core::Error`] carries them.
    #[error("{}", OpenMessage(.0))]
    Open(#[source] custody_core::Error),
}

/// An opening failure's message as [`ErrorReport`] gives it: a backend's
/// own (the source of [`custody_core::Error::Backend`]), else the error's.
struct OpenMessage<'a>(&'a custody_core::Error);

impl fmt::Display for OpenMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            custody_core::Error::Backend { source, .. } => source.fmt(f),
            other => other.fmt(f),
        }
    }
}

impl From<custody_core::Error> for BackendUriError {
    fn from(e: custody_core::Error) -> Self {
        Self::Open(e)
    }
}

impl BackendUriError {
    /// The stable kebab-case kind: `bad-input` for a malformed URI or a
    /// missing passphrase, `unsupported` for a backend not built, else the
    /// backend's or keystore's own.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unrecognized
            | Self::InvalidKmsKey
            | Self::NotABackend
            | Self::NotASigningKey
            | Self::NoObject
            | Self::PassphraseRequired => "bad-input",
            #[cfg(feature = "pkcs11")]
            Self::InvalidPkcs11Uri(e) => e.kind(),
            Self::NotBuilt { .. } => "unsupported",
            Self::Open(e) => e.kind(),
        }
    }

    /// Whether this error is about the URI's text (and so worth prefixing
    /// with where the URI came from), rather than about opening it.
    #[must_use]
    pub fn is_about_the_uri(&self) -> bool {
        match self {
            Self::Unrecognized
            | Self::InvalidKmsKey
            | Self::NotABackend
            | Self::NotASigningKey
            | Self::NoObject => true,
            #[cfg(feature = "pkcs11")]
            Self::InvalidPkcs11Uri(_) => true,
            Self::PassphraseRequired | Self::NotBuilt { .. } | Self::Open(_) => false,
        }
    }

    /// This error as a front end reports it, an error about the URI's text
    /// prefixed with `what` (the flag or argument it came from: `--kek`,
    /// `the keystore's KEK`).
    #[must_use]
    pub fn report(self, what: &str) -> ErrorReport {
        if self.is_about_the_uri() {
            ErrorReport::from(self).context(what)
        } else {
            ErrorReport::from(self)
        }
    }
}

impl BackendError for BackendUriError {
    fn kind(&self) -> &'static str {
        Self::kind(self)
    }
}

impl From<BackendUriError> for ErrorReport {
    /// The error's kind and message; an opening failure as the backend or
    /// keystore reports it.
    fn from(e: BackendUriError) -> Self {
        match e {
            BackendUriError::Open(e) => e.into(),
            other => Self::new(other.kind(), other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use custody_core::{CreateOptions, RootKek, Seed};

    use super::*;

    #[test]
    fn the_three_forms_parse_and_nothing_else() {
        assert_eq!(
            BackendUri::parse("passphrase").unwrap(),
            BackendUri::Passphrase
        );
        assert_eq!(
            BackendUri::parse("aws-kms:alias/hot").unwrap(),
            BackendUri::AwsKms(KeyId::new("alias/hot").unwrap())
        );
        let p = "pkcs11:token=t;object=o?pin-source=file:/run/pin";
        assert_eq!(
            BackendUri::parse(p).unwrap(),
            BackendUri::Pkcs11(p.to_owned())
        );
        for (bad, message) in [
            (
                "aws-kms:",
                "aws-kms:KEY needs a key id, ARN or alias/NAME (printable ASCII, no spaces)",
            ),
            (
                "aws-kms:a b",
                "aws-kms:KEY needs a key id, ARN or alias/NAME (printable ASCII, no spaces)",
            ),
            (
                "file:/x",
                "expected passphrase, aws-kms:KEY or pkcs11:token=LABEL;object=LABEL",
            ),
            (
                "Passphrase",
                "expected passphrase, aws-kms:KEY or pkcs11:token=LABEL;object=LABEL",
            ),
        ] {
            let e = BackendUri::parse(bad).unwrap_err();
            assert_eq!(e.kind(), "bad-input", "{bad}");
            let r = e.report("--kek");
            assert_eq!(
                (r.kind(), r.message(), r.status()),
                ("bad-input", format!("--kek: {message}").as_str(), 2)
            );
        }
    }

    #[test]
    fn labels_and_debug_drop_the_query() {
        let text = "pkcs11:token=t;object=o?pin-source=file:/run/secret-pin";
        assert_eq!(BackendUri::label(text), "pkcs11:token=t;object=o");
        assert_eq!(BackendUri::label("aws-kms:k"), "aws-kms:k");
        let uri = BackendUri::parse(text).unwrap();
        assert_eq!(format!("{uri:?}"), r#"Pkcs11("pkcs11:token=t;object=o")"#);
    }

    #[test]
    fn the_pin_is_never_in_debug() {
        let config = BackendConfig::new()
            .with_pkcs11_module("/usr/lib/p11.so")
            .with_pkcs11_pin("pin-0451");
        let debug = format!("{config:?}");
        assert!(!debug.contains("0451"), "{debug}");
        assert!(
            debug.contains(r#"pkcs11_pin: Some("<redacted>")"#),
            "{debug}"
        );
        assert_eq!(config.pkcs11_module(), Some(Path::new("/usr/lib/p11.so")));
        assert!(format!("{:?}", BackendConfig::new()).contains("pkcs11_pin: None"));
    }

    #[test]
    fn a_passphrase_is_neither_a_kek_backend_nor_a_signing_key() {
        let config = BackendConfig::new();
        let e = config.kek(&BackendUri::Passphrase).unwrap_err();
        let r = e.report("--kek");
        assert_eq!(
            (r.kind(), r.message()),
            ("bad-input", "--kek: passphrase is not a backend")
        );
        let e = config.signer(&BackendUri::Passphrase).unwrap_err();
        let r = e.report("--key");
        assert_eq!(
            (r.kind(), r.message()),
            (
                "bad-input",
                "--key: expected aws-kms:KEY or pkcs11:token=LABEL;object=LABEL"
            )
        );
    }

    #[test]
    fn bad_pkcs11_uris_are_input_errors_before_any_module_loads() {
        let config = BackendConfig::new().with_pkcs11_pin("1234");
        for (text, message) in [
            (
                "pkcs11:token=t",
                "--key: the pkcs11: URI names no object (object=LABEL)",
            ),
            (
                "pkcs11:token=t;object=o?pin-value=1234",
                "--key: invalid PKCS#11 input: pin-value in a pkcs11: URI is refused: use pin-source=file:/path (or pass the PIN separately)",
            ),
        ] {
            let e = config
                .signer(&BackendUri::parse(text).unwrap())
                .unwrap_err();
            assert!(e.is_about_the_uri());
            let r = e.report("--key");
            assert_eq!((r.kind(), r.message()), ("bad-input", message));
            assert!(!r.message().contains("1234"), "{}", r.message());
        }
        // No module anywhere: an error of opening, not of the URI's text.
        let e = config
            .kek(&BackendUri::parse("pkcs11:token=t;object=o").unwrap())
            .unwrap_err();
        assert!(!e.is_about_the_uri());
        let r = e.report("--kek");
        assert_eq!(
            (r.kind(), r.message()),
            (
                "bad-input",
                "invalid PKCS#11 input: no PKCS#11 module: give module-path= in the URI or a module path"
            )
        );
    }

    #[test]
    fn a_passphrase_keystore_opens_with_its_passphrase_only() {
        let tmp = std::env::temp_dir().join(format!("custody-uri-{}", std::process::id()));
        let dir = tmp.join("ks");
        let options = CreateOptions::light().unwrap();
        let passphrase = Passphrase::new(b"pw".to_vec());
        let ks = Keystore::create_with(
            &dir,
            RootKek::Passphrase {
                passphrase: &passphrase,
                kdf: &options.kdf,
            },
            &Seed::new([7; 64]),
            &options,
        )
        .unwrap();
        let xpub = ks.xpub().to_owned();
        drop(ks);
        let config = BackendConfig::new();
        let e = config.open_keystore(&dir, None).unwrap_err();
        let r = ErrorReport::from(e);
        assert_eq!(
            (r.kind(), r.message()),
            (
                "bad-input",
                "this keystore's KEK is its passphrase: give the passphrase"
            )
        );
        let e = config
            .open_keystore(&dir, Some(&Passphrase::new(b"no".to_vec())))
            .unwrap_err();
        assert_eq!(e.kind(), "wrong-passphrase");
        assert_eq!(e.to_string(), "wrong passphrase");
        let ks = config.open_keystore(&dir, Some(&passphrase)).unwrap();
        assert_eq!(ks.xpub(), xpub);
        let e = config.open_keystore(&tmp.join("none"), None).unwrap_err();
        assert_eq!(ErrorReport::from(e).kind(), "not-found");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
