//! Backend URIs (`shared/CLI.md`, "Backends"): `passphrase`, `aws-kms:KEY`
//! and `pkcs11:…` turned into the backends of custody-kms.
//!
//! Configuration comes from the standard environment only: AWS region,
//! credentials and endpoint as the AWS SDK reads them; the PKCS#11 module
//! from `module-path=` or `CUSTODY_PKCS11_MODULE`, the PIN from
//! `pin-source=` or `CUSTODY_PKCS11_PIN`. No secret is ever a flag value.

#[cfg(any(feature = "aws-kms", feature = "pkcs11"))]
use std::sync::Arc;

use custody_core::{KeyId, KeyRef, SharedBackend};

use crate::error::CliError;

/// The environment variable naming the PKCS#11 module.
#[cfg(feature = "pkcs11")]
const MODULE_VAR: &str = "CUSTODY_PKCS11_MODULE";
/// The environment variable holding the PKCS#11 user PIN.
#[cfg(feature = "pkcs11")]
const PIN_VAR: &str = "CUSTODY_PKCS11_PIN";

/// A backend URI, parsed.
pub(crate) enum BackendUri {
    /// The keystore passphrase (a KEK only).
    Passphrase,
    /// An AWS KMS key by id, ARN or `alias/NAME`.
    AwsKms(String),
    /// An RFC 7512 PKCS#11 URI.
    Pkcs11(String),
}

impl BackendUri {
    /// Parses `uri` as given to `flag`.
    pub(crate) fn parse(uri: &str, flag: &str) -> Result<Self, CliError> {
        if uri == "passphrase" {
            return Ok(Self::Passphrase);
        }
        if let Some(key) = uri.strip_prefix("aws-kms:") {
            KeyId::new(key).map_err(|_| {
                CliError::bad_input(format!(
                    "{flag}: aws-kms:KEY needs a key id, ARN or alias/NAME (printable ASCII, no spaces)"
                ))
            })?;
            return Ok(Self::AwsKms(key.to_owned()));
        }
        if uri.starts_with("pkcs11:") {
            return Ok(Self::Pkcs11(uri.to_owned()));
        }
        Err(CliError::bad_input(format!(
            "{flag}: expected passphrase, aws-kms:KEY or pkcs11:token=LABEL;object=LABEL"
        )))
    }

    /// The name shown to people (authenticator labels, audit): the URI
    /// without its query (`pin-source`, `module-path` name local files).
    pub(crate) fn label(uri: &str) -> &str {
        uri.split_once('?').map_or(uri, |(path, _)| path)
    }
}

/// A wrapping backend holding the KEK `uri` names.
pub(crate) fn kek(uri: &BackendUri, flag: &str) -> Result<SharedBackend, CliError> {
    match uri {
        BackendUri::Passphrase => Err(CliError::bad_input(format!(
            "{flag}: passphrase is not a backend"
        ))),
        BackendUri::AwsKms(key) => aws_kek(key),
        BackendUri::Pkcs11(text) => pkcs11_kek(text, flag),
    }
}

/// A signing backend holding the key `uri` names, and the reference that
/// pins it.
pub(crate) fn signer(uri: &BackendUri, flag: &str) -> Result<(SharedBackend, KeyRef), CliError> {
    match uri {
        BackendUri::Passphrase => Err(CliError::bad_input(format!(
            "{flag}: expected aws-kms:KEY or pkcs11:token=LABEL;object=LABEL"
        ))),
        BackendUri::AwsKms(key) => aws_signer(key),
        BackendUri::Pkcs11(text) => pkcs11_signer(text, flag),
    }
}

#[cfg(feature = "aws-kms")]
fn aws_client() -> Result<custody_kms::KmsClient, CliError> {
    Ok(custody_kms::KmsClient::from_env_with_own_runtime()?)
}

#[cfg(feature = "aws-kms")]
fn aws_kek(key: &str) -> Result<SharedBackend, CliError> {
    let kek = custody_kms::KmsKek::new(aws_client()?, custody_core::KekId::new(key)?);
    Ok(Arc::new(kek))
}

#[cfg(feature = "aws-kms")]
fn aws_signer(key: &str) -> Result<(SharedBackend, KeyRef), CliError> {
    let signer = custody_kms::KmsSigner::new(aws_client()?);
    Ok((Arc::new(signer), KeyRef::Stored(KeyId::new(key)?)))
}

#[cfg(not(feature = "aws-kms"))]
fn aws_kek(_: &str) -> Result<SharedBackend, CliError> {
    Err(not_built("aws-kms"))
}

#[cfg(not(feature = "aws-kms"))]
fn aws_signer(_: &str) -> Result<(SharedBackend, KeyRef), CliError> {
    Err(not_built("aws-kms"))
}

/// The token a URI names, opened with the module and PIN from the URI or
/// the environment, and the object label it names.
#[cfg(feature = "pkcs11")]
fn pkcs11_token(text: &str, flag: &str) -> Result<(custody_kms::Pkcs11Token, String), CliError> {
    use custody_kms::{Pin, Pkcs11Token, Pkcs11Uri};
    let uri = Pkcs11Uri::parse(text)
        .map_err(|e| CliError::from(custody_core::Error::backend(e)).context(flag))?;
    let object = uri
        .object()
        .ok_or_else(|| {
            CliError::bad_input(format!(
                "{flag}: the pkcs11: URI names no object (object=LABEL)"
            ))
        })?
        .to_owned();
    let module = std::env::var_os(MODULE_VAR).map(std::path::PathBuf::from);
    let pin = std::env::var(PIN_VAR).ok().map(Pin::new);
    let token = Pkcs11Token::open_uri(&uri, module.as_deref(), pin)
        .map_err(|e| CliError::from(custody_core::Error::backend(e)))?;
    Ok((token, object))
}

#[cfg(feature = "pkcs11")]
fn pkcs11_kek(text: &str, flag: &str) -> Result<SharedBackend, CliError> {
    let (token, object) = pkcs11_token(text, flag)?;
    let kek = custody_kms::Pkcs11Kek::new(token, custody_core::KekId::new(object)?)
        .map_err(custody_core::Error::backend)?;
    Ok(Arc::new(kek))
}

#[cfg(feature = "pkcs11")]
fn pkcs11_signer(text: &str, flag: &str) -> Result<(SharedBackend, KeyRef), CliError> {
    let (token, object) = pkcs11_token(text, flag)?;
    let signer = custody_kms::Pkcs11Signer::new(token);
    Ok((Arc::new(signer), KeyRef::Stored(KeyId::new(object)?)))
}

#[cfg(not(feature = "pkcs11"))]
fn pkcs11_kek(_: &str, _: &str) -> Result<SharedBackend, CliError> {
    Err(not_built("pkcs11"))
}

#[cfg(not(feature = "pkcs11"))]
fn pkcs11_signer(_: &str, _: &str) -> Result<(SharedBackend, KeyRef), CliError> {
    Err(not_built("pkcs11"))
}

#[cfg(any(not(feature = "aws-kms"), not(feature = "pkcs11")))]
fn not_built(feature: &str) -> CliError {
    CliError::new(
        "unsupported",
        format!(
            "this custody binary was built without the {feature} backend (cargo feature {feature})"
        ),
    )
}
