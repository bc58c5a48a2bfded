//! [`KmsError`]: what went wrong talking to AWS KMS, in the stable kinds of
//! the CLI contract, and the classification of the SDK's errors into it.

use std::fmt;

use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

/// An AWS error code (`ThrottlingException`, `AccessDeniedException`, ...)
/// as the service returned it, kept only if it looks like one (a short
/// ASCII identifier), so no message text or data ever rides along.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ErrorCode(Option<Box<str>>);

impl ErrorCode {
    const MAX_LEN: usize = 64;

    pub(crate) fn new(code: Option<&str>) -> Self {
        Self(code.and_then(|c| {
            let ok = !c.is_empty()
                && c.len() <= Self::MAX_LEN
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
            ok.then(|| c.into())
        }))
    }

    /// The code, if the service sent one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl fmt::Display for ErrorCode {
    /// ` (Code)` or nothing, to follow a sentence.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(c) => write!(f, " ({c})"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(c) => write!(f, "ErrorCode({c})"),
            None => f.write_str("ErrorCode(none)"),
        }
    }
}

/// A failure of an AWS KMS call, after the bounded retries of
/// [`crate::RetryPolicy`].
///
/// [`KmsError::kind`] is the stable kebab-case name of the CLI contract
/// (`access-denied`, `key-disabled`, `wrong-key-usage`, `throttled`,
/// `unavailable`, `not-found`, `decryption-failed`, ...). Messages name the
/// operation, the key id (a public identifier) and what to fix; they never
/// carry credentials, plaintext, or the service's free-text message.
///
/// Backends hand it to callers inside [`custody_core::Error::Backend`]
/// (read it back with `downcast_ref::<KmsError>()`), except a decryption
/// failure, which becomes the opaque [`custody_core::Error::DecryptionFailed`],
/// and an unknown key, which becomes [`custody_core::Error::KeyNotFound`]
/// (signing) or [`custody_core::Error::UnknownKek`] (wrapping).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// The caller's AWS identity may not use the key, or its credentials
    /// were refused. Never retried.
    #[error(
        "AWS KMS refused {operation} on key {key}{code}: check the caller's AWS credentials and grant its identity kms:{operation} on the key (key policy, IAM policy or grant)"
    )]
    AccessDenied {
        /// The KMS operation (`Sign`, `Decrypt`, ...).
        operation: &'static str,
        /// The key id, ARN or alias the call named.
        key: String,
        /// The AWS error code.
        code: ErrorCode,
    },
    /// The key is disabled, pending deletion, or otherwise not in a state
    /// that allows the operation. Never retried.
    #[error(
        "AWS KMS key {key} cannot be used for {operation}{code}: it is disabled, pending deletion or pending import; enable it (or cancel its deletion) or use another key"
    )]
    KeyDisabled {
        /// The KMS operation.
        operation: &'static str,
        /// The key id, ARN or alias the call named.
        key: String,
        /// The AWS error code.
        code: ErrorCode,
    },
    /// The key exists but is of the wrong usage or spec for the operation
    /// (a signing key used as a KEK, a P-256 or RSA key used for secp256k1).
    #[error("AWS KMS key {key} cannot be used for {operation}: {reason}")]
    WrongKeyUsage {
        /// The KMS operation.
        operation: &'static str,
        /// The key id, ARN or alias the call named.
        key: String,
        /// What is wrong and what key is needed.
        reason: &'static str,
    },
    /// KMS kept throttling the call until the retry bound was reached.
    #[error(
        "AWS KMS throttled {operation} on key {key} after {tries} tries: lower the request rate or raise the account's KMS request quota"
    )]
    Throttled {
        /// The KMS operation.
        operation: &'static str,
        /// The key id, ARN or alias the call named.
        key: String,
        /// How many times the call was made.
        tries: u32,
    },
    /// The KMS endpoint could not be reached, timed out, or failed on its
    /// side, on every try.
    #[error(
        "AWS KMS was unavailable for {operation} on key {key} after {tries} tries ({reason}): check the network path, endpoint and region"
    )]
    Unavailable {
        /// The KMS operation.
        operation: &'static str,
        /// The key id, ARN or alias the call named.
        key: String,
        /// How many times the call was made (0: it never started).
        tries: u32,
        /// What failed last.
        reason: &'static str,
    },
    /// No such key (or alias) in the account and region.
    #[error(
        "AWS KMS has no key {key} for {operation}: check the key id, ARN or alias and the region"
    )]
    NotFound {
        /// The KMS operation.
        operation: &'static str,
        /// The key id, ARN or alias the call named.
        key: String,
    },
    /// KMS could not decrypt: wrong key, wrong encryption context or
    /// tampered bytes. Deliberately opaque.
    #[error("decryption failed")]
    DecryptionFailed,
    /// KMS refused the request as malformed (a bug or an invalid key id).
    #[error("AWS KMS rejected {operation} on key {key} as invalid{code}: check the key id format")]
    BadInput {
        /// The KMS operation.
        operation: &'static str,
        /// The key id, ARN or alias the call named.
        key: String,
        /// The AWS error code.
        code: ErrorCode,
    },
    /// KMS answered, but not with what the API promises (a field missing,
    /// a public key that does not parse).
    #[error("AWS KMS returned an unusable answer to {operation} on key {key}: {reason}")]
    Malformed {
        /// The KMS operation.
        operation: &'static str,
        /// The key id, ARN or alias the call named.
        key: String,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// Anything else: an error code this adapter does not classify, or a
    /// request the SDK could not build (missing region or credentials).
    #[error("AWS KMS call {operation} on key {key} failed{code}{status}: {reason}")]
    Other {
        /// The KMS operation.
        operation: &'static str,
        /// The key id, ARN or alias the call named.
        key: String,
        /// The AWS error code.
        code: ErrorCode,
        /// The HTTP status, if a response came back.
        status: HttpStatus,
        /// What to check.
        reason: &'static str,
    },
}

/// An HTTP status code, if a response came back (`Display`: ` (HTTP n)`).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct HttpStatus(Option<u16>);

impl HttpStatus {
    /// The status code.
    #[must_use]
    pub fn get(self) -> Option<u16> {
        self.0
    }
}

impl fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, " (HTTP {s})"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, "HttpStatus({s})"),
            None => f.write_str("HttpStatus(none)"),
        }
    }
}

impl KmsError {
    /// The stable kebab-case kind (CLI contract): `access-denied`,
    /// `key-disabled`, `wrong-key-usage`, `throttled`, `unavailable`,
    /// `not-found`, `decryption-failed`, `bad-input`, `malformed` or
    /// `backend`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AccessDenied { .. } => "access-denied",
            Self::KeyDisabled { .. } => "key-disabled",
            Self::WrongKeyUsage { .. } => "wrong-key-usage",
            Self::Throttled { .. } => "throttled",
            Self::Unavailable { .. } => "unavailable",
            Self::NotFound { .. } => "not-found",
            Self::DecryptionFailed => "decryption-failed",
            Self::BadInput { .. } => "bad-input",
            Self::Malformed { .. } => "malformed",
            Self::Other { .. } => "backend",
        }
    }

    /// How many times the call was made, for the kinds that are retried
    /// (`throttled`, `unavailable`).
    #[must_use]
    pub fn tries(&self) -> Option<u32> {
        match self {
            Self::Throttled { tries, .. } | Self::Unavailable { tries, .. } => Some(*tries),
            _ => None,
        }
    }

    pub(crate) fn malformed(operation: &'static str, key: &str, reason: &'static str) -> Self {
        Self::Malformed {
            operation,
            key: key.to_owned(),
            reason,
        }
    }

    pub(crate) fn wrong_key_usage(
        operation: &'static str,
        key: &str,
        reason: &'static str,
    ) -> Self {
        Self::WrongKeyUsage {
            operation,
            key: key.to_owned(),
            reason,
        }
    }

    /// Into the core error: the opaque crypto failure stays opaque, an
    /// unknown key becomes `not_found`, the rest is wrapped for
    /// `downcast_ref::<KmsError>()`.
    pub(crate) fn into_core(self, not_found: custody_core::Error) -> custody_core::Error {
        match self {
            Self::DecryptionFailed => custody_core::Error::DecryptionFailed,
            Self::NotFound { .. } => not_found,
            other => custody_core::Error::backend(other),
        }
    }
}

impl custody_core::BackendError for KmsError {
    fn kind(&self) -> &'static str {
        KmsError::kind(self)
    }
}

impl From<KmsError> for custody_core::Error {
    /// [`KmsError::DecryptionFailed`] becomes
    /// [`custody_core::Error::DecryptionFailed`], [`KmsError::NotFound`]
    /// [`custody_core::Error::KeyNotFound`], anything else
    /// [`custody_core::Error::Backend`].
    fn from(e: KmsError) -> Self {
        e.into_core(custody_core::Error::KeyNotFound)
    }
}

/// What a failed attempt was, before the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    AccessDenied,
    KeyDisabled,
    WrongKeyUsage,
    Throttled,
    Unavailable(&'static str),
    NotFound,
    DecryptionFailed,
    BadInput,
    Other(&'static str),
}

impl Fault {
    /// Only throttling and transient failures are worth another try.
    pub(crate) fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable(_))
    }
}

/// One failed attempt, classified.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) fault: Fault,
    code: ErrorCode,
    status: HttpStatus,
}

impl Failure {
    pub(crate) fn timed_out() -> Self {
        Self {
            fault: Fault::Unavailable("the call timed out"),
            code: ErrorCode::default(),
            status: HttpStatus::default(),
        }
    }

    /// The error a caller sees after `tries` attempts.
    pub(crate) fn into_error(self, operation: &'static str, key: &str, tries: u32) -> KmsError {
        let key = key.to_owned();
        let code = self.code;
        match self.fault {
            Fault::AccessDenied => KmsError::AccessDenied {
                operation,
                key,
                code,
            },
            Fault::KeyDisabled => KmsError::KeyDisabled {
                operation,
                key,
                code,
            },
            Fault::WrongKeyUsage => KmsError::WrongKeyUsage {
                operation,
                key,
                reason: "KMS says the key's usage or spec does not allow this operation (signing needs an ECC_SECG_P256K1 SIGN_VERIFY key, wrapping a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key)",
            },
            Fault::Throttled => KmsError::Throttled {
                operation,
                key,
                tries,
            },
            Fault::Unavailable(reason) => KmsError::Unavailable {
                operation,
                key,
                tries,
                reason,
            },
            Fault::NotFound => KmsError::NotFound { operation, key },
            Fault::DecryptionFailed => KmsError::DecryptionFailed,
            Fault::BadInput => KmsError::BadInput {
                operation,
                key,
                code,
            },
            Fault::Other(reason) => KmsError::Other {
                operation,
                key,
                code,
                status: self.status,
                reason,
            },
        }
    }
}

/// Classifies an AWS error code (the same codes for every operation).
fn fault_of_code(code: &str) -> Option<Fault> {
    Some(match code {
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "ExpiredTokenException"
        | "MissingAuthenticationToken"
        | "SignatureDoesNotMatch" => Fault::AccessDenied,
        "DisabledException" | "KMSInvalidStateException" => Fault::KeyDisabled,
        "InvalidKeyUsageException" | "UnsupportedOperationException" => Fault::WrongKeyUsage,
        "ThrottlingException"
        | "LimitExceededException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ThrottledException" => Fault::Throttled,
        "KMSInternalException" | "InternalFailure" | "InternalServerError" => {
            Fault::Unavailable("KMS reported an internal error")
        }
        "DependencyTimeoutException" | "RequestTimeout" | "RequestTimeoutException" => {
            Fault::Unavailable("KMS timed out")
        }
        "KeyUnavailableException" | "ServiceUnavailable" | "ServiceUnavailableException" => {
            Fault::Unavailable("KMS reported the key or service temporarily unavailable")
        }
        "NotFoundException" => Fault::NotFound,
        "InvalidCiphertextException" | "IncorrectKeyException" => Fault::DecryptionFailed,
        "ValidationException"
        | "InvalidArnException"
        | "InvalidGrantTokenException"
        | "InvalidParameterValue"
        | "SerializationException" => Fault::BadInput,
        _ => return None,
    })
}

/// Classifies an HTTP status when the code says nothing we know.
fn fault_of_status(status: u16) -> Fault {
    match status {
        429 => Fault::Throttled,
        500..=599 => Fault::Unavailable("KMS answered with a server error"),
        401 | 403 => Fault::AccessDenied,
        404 => Fault::NotFound,
        _ => Fault::Other("KMS returned an error this adapter does not know"),
    }
}

/// Classifies one failed SDK call. Looks only at the error code, the HTTP
/// status and the kind of transport failure: nothing of the request, the
/// response body or the service's message is kept.
pub(crate) fn classify<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata,
{
    let none = |fault| Failure {
        fault,
        code: ErrorCode::default(),
        status: HttpStatus::default(),
    };
    match err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code();
            let status = ctx.raw().status().as_u16();
            let fault = code
                .and_then(fault_of_code)
                .unwrap_or_else(|| fault_of_status(status));
            Failure {
                fault,
                code: ErrorCode::new(code),
                status: HttpStatus(Some(status)),
            }
        }
        SdkError::TimeoutError(_) => none(Fault::Unavailable("the call timed out")),
        SdkError::DispatchFailure(d) => none(if d.is_timeout() {
            Fault::Unavailable("the connection timed out")
        } else if d.is_io() {
            Fault::Unavailable("could not connect to the KMS endpoint")
        } else if d.is_user() {
            Fault::Other("the HTTP client is misconfigured")
        } else {
            Fault::Unavailable("the request could not be sent")
        }),
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            Failure {
                fault: Fault::Unavailable("the response could not be read"),
                code: ErrorCode::default(),
                status: HttpStatus(Some(status)),
            }
        }
        SdkError::ConstructionFailure(_) => none(Fault::Other(
            "the SDK could not build the request: check the region and the credentials configuration",
        )),
        _ => none(Fault::Other("the SDK reported an unknown failure")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_cli_kinds() {
        let kind = |code: &str| {
            Failure {
                fault: fault_of_code(code).unwrap(),
                code: ErrorCode::new(Some(code)),
                status: HttpStatus::default(),
            }
            .into_error("Sign", "k", 3)
            .kind()
        };
        assert_eq!(kind("AccessDeniedException"), "access-denied");
        assert_eq!(kind("DisabledException"), "key-disabled");
        assert_eq!(kind("KMSInvalidStateException"), "key-disabled");
        assert_eq!(kind("InvalidKeyUsageException"), "wrong-key-usage");
        assert_eq!(kind("ThrottlingException"), "throttled");
        assert_eq!(kind("LimitExceededException"), "throttled");
        assert_eq!(kind("KMSInternalException"), "unavailable");
        assert_eq!(kind("DependencyTimeoutException"), "unavailable");
        assert_eq!(kind("NotFoundException"), "not-found");
        assert_eq!(kind("InvalidCiphertextException"), "decryption-failed");
        assert_eq!(kind("IncorrectKeyException"), "decryption-failed");
        assert_eq!(kind("ValidationException"), "bad-input");
        assert!(fault_of_code("SomethingNew").is_none());
        assert_eq!(fault_of_status(429), Fault::Throttled);
        assert!(fault_of_status(503).is_retryable());
        assert!(!fault_of_status(400).is_retryable());
    }

    #[test]
    fn only_throttling_and_transient_faults_are_retried() {
        for code in [
            "ThrottlingException",
            "KMSInternalException",
            "DependencyTimeoutException",
        ] {
            assert!(fault_of_code(code).unwrap().is_retryable(), "{code}");
        }
        for code in [
            "AccessDeniedException",
            "ValidationException",
            "DisabledException",
            "InvalidCiphertextException",
            "NotFoundException",
        ] {
            assert!(!fault_of_code(code).unwrap().is_retryable(), "{code}");
        }
    }

    #[test]
    fn error_codes_keep_only_identifiers() {
        assert_eq!(
            ErrorCode::new(Some("ThrottlingException")).as_str(),
            Some("ThrottlingException")
        );
        assert_eq!(ErrorCode::new(Some("has space: secret")).as_str(), None);
        assert_eq!(ErrorCode::new(Some(&"A".repeat(65))).as_str(), None);
        let e = KmsError::Throttled {
            operation: "Sign",
            key: "alias/k".into(),
            tries: 5,
        };
        assert_eq!(e.kind(), "throttled");
        assert_eq!(e.tries(), Some(5));
        assert!(e.to_string().contains("after 5 tries"));
    }

    #[test]
    fn mapping_into_core_keeps_crypto_failures_opaque() {
        assert!(matches!(
            custody_core::Error::from(KmsError::DecryptionFailed),
            custody_core::Error::DecryptionFailed
        ));
        let nf = KmsError::NotFound {
            operation: "Sign",
            key: "k".into(),
        };
        assert!(matches!(
            custody_core::Error::from(nf),
            custody_core::Error::KeyNotFound
        ));
        let core = custody_core::Error::from(KmsError::AccessDenied {
            operation: "Sign",
            key: "k".into(),
            code: ErrorCode::default(),
        });
        // The kind crosses the seam: callers read it without downcasting.
        assert_eq!(core.kind(), "access-denied");
        let custody_core::Error::Backend { source: src, .. } = &core else {
            panic!("not a backend error: {core:?}")
        };
        assert_eq!(
            src.downcast_ref::<KmsError>().unwrap().kind(),
            "access-denied"
        );
    }
}
