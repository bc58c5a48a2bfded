//! The one error type of `custody-totp`.
//!
//! Variants carry only `&'static str` reasons and numbers: never a code, a
//! secret, a URI (it holds the secret) or a wallet name.

use custody_core::Denial;

/// Errors of `custody-totp`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An otpauth URI is longer than [`crate::MAX_URI_LEN`] bytes.
    #[error("the otpauth URI is longer than 4096 bytes")]
    UriTooLong,
    /// An otpauth URI is not well formed (the reason says where).
    #[error("malformed otpauth URI: {0}")]
    MalformedUri(&'static str),
    /// The URI's scheme is not `otpauth`.
    #[error("the URI scheme is not otpauth")]
    BadScheme,
    /// The URI's type is `hotp`: counter-based codes are not supported.
    #[error("HOTP (counter-based) URIs are not supported; only totp")]
    UnsupportedType,
    /// The URI's type (its host) is neither `totp` nor `hotp`.
    #[error("the otpauth type is not totp")]
    BadType,
    /// The label names no account.
    #[error("the otpauth label has no account name")]
    MissingAccount,
    /// An issuer is empty or contains a `:` (which separates it from the
    /// account in the label).
    #[error("invalid issuer: {0}")]
    InvalidIssuer(&'static str),
    /// The issuer in the label and the `issuer` parameter differ.
    #[error("the issuer in the label and the issuer parameter differ")]
    IssuerMismatch,
    /// A `%` escape is not followed by two hex digits, or the decoded bytes
    /// are not UTF-8.
    #[error("bad percent-encoding")]
    PercentEncoding,
    /// A query parameter appears more than once.
    #[error("the parameter {0} appears more than once")]
    DuplicateParameter(&'static str),
    /// The URI has no `secret` parameter.
    #[error("the otpauth URI has no secret")]
    MissingSecret,
    /// The secret is not valid base32 (RFC 4648 section 6).
    #[error("the secret is not valid base32")]
    InvalidSecret,
    /// The secret is shorter than RFC 4226 allows (128 bits).
    #[error("the secret is shorter than 128 bits (RFC 4226 section 4, R6)")]
    SecretTooShort,
    /// The secret is longer than [`crate::MAX_SECRET_BYTES`].
    #[error("the secret is longer than 256 bytes")]
    SecretTooLong,
    /// The algorithm is not SHA1, SHA256 or SHA512.
    #[error("unknown algorithm (expected SHA1, SHA256 or SHA512)")]
    UnknownAlgorithm,
    /// The number of digits is not 6, 7 or 8.
    #[error("digits must be 6, 7 or 8")]
    InvalidDigits,
    /// The period is 0 or not a decimal number of seconds.
    #[error("the period must be a positive whole number of seconds")]
    InvalidPeriod,
    /// The QR code cannot hold this much data.
    #[error("the text is too long for a QR code")]
    QrTooLong,
    /// A wallet name is empty or longer than [`crate::MAX_WALLET_NAME_BYTES`].
    #[error("invalid wallet name: {0}")]
    InvalidWallet(&'static str),
    /// A key enrolment's label is empty or longer than
    /// [`crate::MAX_WALLET_NAME_BYTES`].
    #[error("invalid label: {0}")]
    InvalidLabel(&'static str),
    /// The configuration is not acceptable (the reason says which field).
    #[error("invalid TOTP configuration: {0}")]
    InvalidConfig(&'static str),
    /// The wallet (or key) is already enrolled; rotate explicitly to
    /// replace its secret.
    #[error("the wallet is already enrolled for TOTP")]
    AlreadyEnrolled,
    /// The wallet (or key) is not enrolled.
    #[error("the wallet is not enrolled for TOTP")]
    NotEnrolled,
    /// Another writer changed the record between our read and our write
    /// (e.g. two rotations at once); nothing was written. Retry.
    #[error("the enrolment changed concurrently; nothing was written")]
    ConcurrentUpdate,
    /// The state record was changed by other writers more often in a row
    /// than the retry bound allows; nothing was decided (fail closed).
    #[error("the replay guard is contended; nothing was decided")]
    Contention,
    /// The state store was set up for another wallet scheme than this
    /// registry's, or the wrapped backend put a wallet's key at another path
    /// than this registry's scheme gives: wallet names would map to other
    /// nodes, so nothing is decided (fail closed).
    #[error("the wallet scheme does not match the keystore's or the TOTP state's")]
    SchemeMismatch,
    /// A gate refused (e.g. a rotation whose current code is wrong).
    #[error("denied: {0}")]
    Denied(Denial),
    /// An error from `custody-core` (state store, envelope, backend).
    #[error(transparent)]
    Core(#[from] custody_core::Error),
}

impl Error {
    /// A stable kebab-case name for this error's kind (as
    /// [`custody_core::Error::kind`]).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UriTooLong
            | Self::MalformedUri(_)
            | Self::BadScheme
            | Self::UnsupportedType
            | Self::BadType
            | Self::MissingAccount
            | Self::InvalidIssuer(_)
            | Self::IssuerMismatch
            | Self::PercentEncoding
            | Self::DuplicateParameter(_)
            | Self::MissingSecret
            | Self::InvalidSecret
            | Self::SecretTooShort
            | Self::SecretTooLong
            | Self::UnknownAlgorithm
            | Self::InvalidDigits
            | Self::InvalidPeriod
            | Self::QrTooLong
            | Self::InvalidWallet(_)
            | Self::InvalidLabel(_)
            | Self::InvalidConfig(_) => "bad-input",
            Self::AlreadyEnrolled => "already-exists",
            Self::NotEnrolled => "not-found",
            Self::ConcurrentUpdate | Self::Contention => "conflict",
            Self::SchemeMismatch => "malformed",
            Self::Denied(d) => d.kind(),
            Self::Core(e) => e.kind(),
        }
    }
}

impl From<Error> for custody_core::Error {
    /// Core errors and denials pass through unchanged (so a caller matching
    /// on [`custody_core::Error::Denied`] sees the gate's refusal); anything
    /// else is wrapped as [`custody_core::Error::Backend`] with its kind.
    fn from(e: Error) -> Self {
        match e {
            Error::Core(e) => e,
            Error::Denied(d) => Self::Denied(d),
            other => Self::backend(other),
        }
    }
}

impl From<Error> for custody_core::ErrorReport {
    /// Core errors report as core reports them (a backend speaks for
    /// itself); the rest with [`Error::kind`] and their `Display`.
    fn from(e: Error) -> Self {
        match e {
            Error::Core(core) => core.into(),
            other => Self::new(other.kind(), other.to_string()),
        }
    }
}

impl custody_core::BackendError for Error {
    fn kind(&self) -> &'static str {
        Error::kind(self)
    }
}
