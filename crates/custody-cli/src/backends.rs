//! Backend URIs (`shared/CLI.md`, "Backends"): the CLI's side of
//! [`custody_kms::BackendUri`], which parses them and opens their backends
//! for every front end. Here: the flag each URI came from, the
//! configuration from the standard environment
//! ([`BackendConfig::from_env`]: AWS as its SDK reads it,
//! `CUSTODY_PKCS11_MODULE`, `CUSTODY_PKCS11_PIN`; no secret is ever a flag
//! value), and the CLI's wording for a backend this binary was built
//! without.

use custody_core::{KeyRef, SharedBackend};
use custody_kms::{BackendConfig, BackendUri, BackendUriError};

use crate::error::CliError;

/// Parses `uri` as given to `flag`.
pub(crate) fn parse(uri: &str, flag: &str) -> Result<BackendUri, CliError> {
    BackendUri::parse(uri).map_err(|e| error(e, flag))
}

/// A wrapping backend holding the KEK `uri` names.
pub(crate) fn kek(uri: &BackendUri, flag: &str) -> Result<SharedBackend, CliError> {
    BackendConfig::from_env()
        .kek(uri)
        .map_err(|e| error(e, flag))
}

/// A signing backend holding the key `uri` names, and the reference that
/// pins it.
pub(crate) fn signer(uri: &BackendUri, flag: &str) -> Result<(SharedBackend, KeyRef), CliError> {
    BackendConfig::from_env()
        .signer(uri)
        .map_err(|e| error(e, flag))
}

/// The library's error as the CLI reports it: an error in the URI's text
/// prefixed with its flag; a backend this binary lacks named as its cargo
/// feature.
fn error(e: BackendUriError, flag: &str) -> CliError {
    match e {
        BackendUriError::NotBuilt { feature } => CliError::new(
            "unsupported",
            format!(
                "this custody binary was built without the {feature} backend (cargo feature {feature})"
            ),
        ),
        other => other.report(flag).into(),
    }
}
