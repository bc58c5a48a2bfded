//! [`Pkcs11Error`]: what went wrong with a PKCS#11 module or token, in the
//! stable kinds of the CLI contract, and the classification of `CKR_*`
//! return values into it.

use std::fmt;

use cryptoki::error::{Error as CkError, RvError};

/// The name of a PKCS#11 return value (`CKR_PIN_INCORRECT`, ...), or none
/// when the failure was not a return value (a library that could not be
/// loaded, a missing function). `Display`: ` (CKR_NAME)` or nothing.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ReturnCode(Option<&'static str>);

impl ReturnCode {
    /// The `CKR_*` name, if the token returned one.
    #[must_use]
    pub fn name(self) -> Option<&'static str> {
        self.0
    }

    pub(crate) fn of(err: &CkError) -> Self {
        match err {
            CkError::Pkcs11(rv, _) => Self(Some(ckr_name(*rv))),
            _ => Self(None),
        }
    }
}

impl fmt::Display for ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, " ({c})"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, "ReturnCode({c})"),
            None => f.write_str("ReturnCode(none)"),
        }
    }
}

/// A failure of a PKCS#11 backend.
///
/// [`Pkcs11Error::kind`] is the stable kebab-case name of the CLI contract
/// (`access-denied`, `not-found`, `wrong-key-usage`, `unavailable`,
/// `bad-input`, `decryption-failed`, `already-exists`, `malformed`,
/// `backend`). Messages name the operation, the token or object label (public
/// identifiers) and the `CKR_*` code name; they never carry a PIN, key
/// material or plaintext.
///
/// Backends hand it to callers inside [`custody_core::Error::Backend`] (read
/// it back with `downcast_ref::<Pkcs11Error>()`), except a decryption
/// failure, which becomes the opaque [`custody_core::Error::DecryptionFailed`],
/// and a missing object, which becomes [`custody_core::Error::KeyNotFound`]
/// (signing) or [`custody_core::Error::UnknownKek`] (wrapping).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    /// The token refused the user PIN (wrong, locked, expired, never set).
    /// The PIN is not tried again by this token handle after a refusal, so
    /// that retries never lock the token.
    #[error("the PKCS#11 token {token} refused the login{code}: {advice}")]
    AccessDenied {
        /// The token label.
        token: String,
        /// The return value.
        code: ReturnCode,
        /// What to do about it.
        advice: &'static str,
    },
    /// No token with that label, or no object with that label or id.
    #[error("no PKCS#11 {what} {name}: {advice}")]
    NotFound {
        /// `token`, `private key`, `public key` or `secret key`.
        what: &'static str,
        /// The label (or URI) that was looked for.
        name: String,
        /// What to check.
        advice: &'static str,
    },
    /// The object exists but cannot do this (a key type or curve custody
    /// does not use, not an AES key, missing `CKA_SIGN`/`CKA_DERIVE`/
    /// `CKA_DECRYPT`/`CKA_WRAP`), or the token lacks the mechanism.
    #[error("PKCS#11 object {name} cannot be used for {operation}{code}: {reason}")]
    WrongKeyUsage {
        /// The operation (`C_Sign`, `C_WrapKey`, ...).
        operation: &'static str,
        /// The object label (or URI).
        name: String,
        /// The return value, if the token gave one.
        code: ReturnCode,
        /// What is wrong and what key is needed.
        reason: &'static str,
    },
    /// The module could not be loaded or initialized.
    #[error("the PKCS#11 module {path} could not be used{code}: {reason}")]
    ModuleUnavailable {
        /// The module path.
        path: String,
        /// The return value, if the module gave one.
        code: ReturnCode,
        /// What failed.
        reason: &'static str,
    },
    /// The token kept dropping the session (device removed, session closed,
    /// logged out) after one re-open, re-login and retry; or no session
    /// became free in time.
    #[error("the PKCS#11 token {token} was unavailable for {operation}{code}: {reason}")]
    Unavailable {
        /// The token label.
        token: String,
        /// The operation.
        operation: &'static str,
        /// The last return value.
        code: ReturnCode,
        /// What failed.
        reason: &'static str,
    },
    /// Malformed input: a `pkcs11:` URI, a PIN file, a label, a digest.
    #[error("invalid PKCS#11 input: {reason}")]
    BadInput {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Unwrapping failed: wrong KEK, wrong encryption context or tampered
    /// bytes. Deliberately opaque.
    #[error("decryption failed")]
    DecryptionFailed,
    /// An object with that label already exists (key generation refuses to
    /// make a second one: labels name keys).
    #[error("a PKCS#11 {what} labelled {label} already exists on the token")]
    AlreadyExists {
        /// `key pair` or `secret key`.
        what: &'static str,
        /// The label.
        label: String,
    },
    /// The token answered, but not with what the standard promises (an EC
    /// point that does not parse, a signature of the wrong length).
    #[error("the PKCS#11 token returned an unusable answer to {operation}: {reason}")]
    Malformed {
        /// The operation.
        operation: &'static str,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// Anything else: the function and its `CKR_*` name only.
    #[error("PKCS#11 {operation} failed{code}")]
    Backend {
        /// The operation.
        operation: &'static str,
        /// The return value.
        code: ReturnCode,
    },
}

impl Pkcs11Error {
    /// The stable kebab-case kind (CLI contract): `access-denied`,
    /// `not-found`, `wrong-key-usage`, `unavailable`, `bad-input`,
    /// `decryption-failed`, `already-exists`, `malformed` or `backend`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AccessDenied { .. } => "access-denied",
            Self::NotFound { .. } => "not-found",
            Self::WrongKeyUsage { .. } => "wrong-key-usage",
            Self::ModuleUnavailable { .. } | Self::Unavailable { .. } => "unavailable",
            Self::BadInput { .. } => "bad-input",
            Self::DecryptionFailed => "decryption-failed",
            Self::AlreadyExists { .. } => "already-exists",
            Self::Malformed { .. } => "malformed",
            Self::Backend { .. } => "backend",
        }
    }

    /// The `CKR_*` name of the return value behind this error, if any.
    #[must_use]
    pub fn return_code(&self) -> Option<&'static str> {
        match self {
            Self::AccessDenied { code, .. }
            | Self::WrongKeyUsage { code, .. }
            | Self::ModuleUnavailable { code, .. }
            | Self::Unavailable { code, .. }
            | Self::Backend { code, .. } => code.name(),
            _ => None,
        }
    }

    pub(crate) fn bad_input(reason: &'static str) -> Self {
        Self::BadInput { reason }
    }

    pub(crate) fn malformed(operation: &'static str, reason: &'static str) -> Self {
        Self::Malformed { operation, reason }
    }

    pub(crate) fn wrong_key_usage(
        operation: &'static str,
        name: &str,
        reason: &'static str,
    ) -> Self {
        Self::WrongKeyUsage {
            operation,
            name: name.to_owned(),
            code: ReturnCode::default(),
            reason,
        }
    }

    /// Into the core error: the opaque crypto failure stays opaque, a
    /// missing object becomes `not_found`, the rest is wrapped for
    /// `downcast_ref::<Pkcs11Error>()`.
    pub(crate) fn into_core(self, not_found: custody_core::Error) -> custody_core::Error {
        match self {
            Self::DecryptionFailed => custody_core::Error::DecryptionFailed,
            Self::NotFound { what, .. } if what != "token" => not_found,
            other => custody_core::Error::backend(other),
        }
    }
}

impl custody_core::BackendError for Pkcs11Error {
    fn kind(&self) -> &'static str {
        Pkcs11Error::kind(self)
    }
}

impl From<Pkcs11Error> for custody_core::Error {
    /// [`Pkcs11Error::DecryptionFailed`] becomes
    /// [`custody_core::Error::DecryptionFailed`], a missing object
    /// [`custody_core::Error::KeyNotFound`], anything else (a missing token
    /// included) [`custody_core::Error::Backend`].
    fn from(e: Pkcs11Error) -> Self {
        e.into_core(custody_core::Error::KeyNotFound)
    }
}

/// What a failed call means for the caller, before the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The session (or the login, or the whole module) is gone: re-open,
    /// re-login and retry once.
    SessionLost,
    /// An object handle went stale (the module was re-initialized): look
    /// the object up again and retry once.
    StaleHandle,
    /// The PIN was refused.
    AccessDenied,
    /// The key or the token cannot do this.
    WrongKeyUsage,
    /// Anything else.
    Other,
}

/// Classifies a failed cryptoki call.
pub(crate) fn fault_of(err: &CkError) -> Fault {
    let CkError::Pkcs11(rv, _) = err else {
        return Fault::Other;
    };
    match rv {
        RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::UserNotLoggedIn
        | RvError::DeviceRemoved
        | RvError::DeviceError
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized
        | RvError::SlotIdInvalid
        | RvError::CryptokiNotInitialized => Fault::SessionLost,
        RvError::ObjectHandleInvalid
        | RvError::KeyHandleInvalid
        | RvError::WrappingKeyHandleInvalid
        | RvError::UnwrappingKeyHandleInvalid => Fault::StaleHandle,
        RvError::PinIncorrect
        | RvError::PinLocked
        | RvError::PinExpired
        | RvError::PinInvalid
        | RvError::PinLenRange
        | RvError::UserPinNotInitialized
        | RvError::UserAnotherAlreadyLoggedIn
        | RvError::UserTooManyTypes => Fault::AccessDenied,
        RvError::KeyTypeInconsistent
        | RvError::KeyFunctionNotPermitted
        | RvError::MechanismInvalid
        | RvError::MechanismParamInvalid
        | RvError::CurveNotSupported
        | RvError::KeySizeRange
        | RvError::WrappingKeyTypeInconsistent
        | RvError::UnwrappingKeyTypeInconsistent
        | RvError::WrappingKeySizeRange
        | RvError::UnwrappingKeySizeRange
        | RvError::KeyNotWrappable
        | RvError::KeyUnextractable
        | RvError::FunctionNotSupported => Fault::WrongKeyUsage,
        _ => Fault::Other,
    }
}

/// Whether an unwrap failure says "these bytes do not unwrap under this
/// key" (a decryption failure) rather than anything about the token.
pub(crate) fn is_bad_ciphertext(err: &CkError) -> bool {
    matches!(
        err,
        CkError::Pkcs11(
            RvError::WrappedKeyInvalid
                | RvError::WrappedKeyLenRange
                | RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange,
            _
        )
    )
}

/// The error a caller sees for a failed call on `token` that is not retried
/// (or failed again after its retry).
pub(crate) fn error_of(
    err: &CkError,
    operation: &'static str,
    token: &str,
    name: &str,
) -> Pkcs11Error {
    let code = ReturnCode::of(err);
    match fault_of(err) {
        Fault::SessionLost => Pkcs11Error::Unavailable {
            token: token.to_owned(),
            operation,
            code,
            reason: "the token dropped the session again after a re-open and re-login (device removed or unreachable?)",
        },
        Fault::AccessDenied => Pkcs11Error::AccessDenied {
            token: token.to_owned(),
            code,
            advice: access_advice(err),
        },
        Fault::WrongKeyUsage => Pkcs11Error::WrongKeyUsage {
            operation,
            name: name.to_owned(),
            code,
            reason: "the token refused the key or the mechanism for this operation (signing needs a private key with CKA_SIGN, ECDH one with CKA_DERIVE, RSA-OAEP one with CKA_DECRYPT; wrapping an AES key with CKA_WRAP and CKA_UNWRAP)",
        },
        Fault::StaleHandle | Fault::Other => match err {
            CkError::Pkcs11(..) => Pkcs11Error::Backend { operation, code },
            CkError::NotSupported | CkError::NullFunctionPointer | CkError::MissingSymbol(_) => {
                Pkcs11Error::WrongKeyUsage {
                    operation,
                    name: name.to_owned(),
                    code,
                    reason: "the PKCS#11 module does not implement this function",
                }
            }
            _ => Pkcs11Error::Backend { operation, code },
        },
    }
}

fn access_advice(err: &CkError) -> &'static str {
    match err {
        CkError::Pkcs11(RvError::PinIncorrect, _) => {
            "the user PIN is wrong; check the pin-source file or CUSTODY_PKCS11_PIN (not retried, so that the token does not lock)"
        }
        CkError::PinNotSet | CkError::Pkcs11(RvError::PinLocked, _) => {
            "the user PIN is locked after too many wrong tries; the security officer must unlock it (C_InitPIN)"
        }
        CkError::Pkcs11(RvError::PinExpired, _) => "the user PIN has expired; set a new one",
        CkError::Pkcs11(RvError::UserPinNotInitialized, _) => {
            "the token has no user PIN yet; the security officer must set one (C_InitPIN)"
        }
        _ => "the token refused the login; check the PIN and that no other user is logged in",
    }
}

/// The `CKR_*` name of a return value.
pub(crate) fn ckr_name(rv: RvError) -> &'static str {
    match rv {
        RvError::Cancel => "CKR_CANCEL",
        RvError::HostMemory => "CKR_HOST_MEMORY",
        RvError::SlotIdInvalid => "CKR_SLOT_ID_INVALID",
        RvError::GeneralError => "CKR_GENERAL_ERROR",
        RvError::FunctionFailed => "CKR_FUNCTION_FAILED",
        RvError::ArgumentsBad => "CKR_ARGUMENTS_BAD",
        RvError::NoEvent => "CKR_NO_EVENT",
        RvError::NeedToCreateThreads => "CKR_NEED_TO_CREATE_THREADS",
        RvError::CantLock => "CKR_CANT_LOCK",
        RvError::AttributeReadOnly => "CKR_ATTRIBUTE_READ_ONLY",
        RvError::AttributeSensitive => "CKR_ATTRIBUTE_SENSITIVE",
        RvError::AttributeTypeInvalid => "CKR_ATTRIBUTE_TYPE_INVALID",
        RvError::AttributeValueInvalid => "CKR_ATTRIBUTE_VALUE_INVALID",
        RvError::ActionProhibited => "CKR_ACTION_PROHIBITED",
        RvError::DataInvalid => "CKR_DATA_INVALID",
        RvError::DataLenRange => "CKR_DATA_LEN_RANGE",
        RvError::DeviceError => "CKR_DEVICE_ERROR",
        RvError::DeviceMemory => "CKR_DEVICE_MEMORY",
        RvError::DeviceRemoved => "CKR_DEVICE_REMOVED",
        RvError::EncryptedDataInvalid => "CKR_ENCRYPTED_DATA_INVALID",
        RvError::EncryptedDataLenRange => "CKR_ENCRYPTED_DATA_LEN_RANGE",
        RvError::FunctionCanceled => "CKR_FUNCTION_CANCELED",
        RvError::FunctionNotParallel => "CKR_FUNCTION_NOT_PARALLEL",
        RvError::FunctionNotSupported => "CKR_FUNCTION_NOT_SUPPORTED",
        RvError::CurveNotSupported => "CKR_CURVE_NOT_SUPPORTED",
        RvError::KeyHandleInvalid => "CKR_KEY_HANDLE_INVALID",
        RvError::KeySizeRange => "CKR_KEY_SIZE_RANGE",
        RvError::KeyTypeInconsistent => "CKR_KEY_TYPE_INCONSISTENT",
        RvError::KeyNotNeeded => "CKR_KEY_NOT_NEEDED",
        RvError::KeyChanged => "CKR_KEY_CHANGED",
        RvError::KeyNeeded => "CKR_KEY_NEEDED",
        RvError::KeyIndigestible => "CKR_KEY_INDIGESTIBLE",
        RvError::KeyFunctionNotPermitted => "CKR_KEY_FUNCTION_NOT_PERMITTED",
        RvError::KeyNotWrappable => "CKR_KEY_NOT_WRAPPABLE",
        RvError::KeyUnextractable => "CKR_KEY_UNEXTRACTABLE",
        RvError::MechanismInvalid => "CKR_MECHANISM_INVALID",
        RvError::MechanismParamInvalid => "CKR_MECHANISM_PARAM_INVALID",
        RvError::ObjectHandleInvalid => "CKR_OBJECT_HANDLE_INVALID",
        RvError::OperationActive => "CKR_OPERATION_ACTIVE",
        RvError::OperationNotInitialized => "CKR_OPERATION_NOT_INITIALIZED",
        RvError::PinIncorrect => "CKR_PIN_INCORRECT",
        RvError::PinInvalid => "CKR_PIN_INVALID",
        RvError::PinLenRange => "CKR_PIN_LEN_RANGE",
        RvError::PinExpired => "CKR_PIN_EXPIRED",
        RvError::PinLocked => "CKR_PIN_LOCKED",
        RvError::SessionClosed => "CKR_SESSION_CLOSED",
        RvError::SessionCount => "CKR_SESSION_COUNT",
        RvError::SessionHandleInvalid => "CKR_SESSION_HANDLE_INVALID",
        RvError::SessionParallelNotSupported => "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
        RvError::SessionReadOnly => "CKR_SESSION_READ_ONLY",
        RvError::SessionExists => "CKR_SESSION_EXISTS",
        RvError::SessionReadOnlyExists => "CKR_SESSION_READ_ONLY_EXISTS",
        RvError::SessionReadWriteSoExists => "CKR_SESSION_READ_WRITE_SO_EXISTS",
        RvError::SignatureInvalid => "CKR_SIGNATURE_INVALID",
        RvError::SignatureLenRange => "CKR_SIGNATURE_LEN_RANGE",
        RvError::TemplateIncomplete => "CKR_TEMPLATE_INCOMPLETE",
        RvError::TemplateInconsistent => "CKR_TEMPLATE_INCONSISTENT",
        RvError::TokenNotPresent => "CKR_TOKEN_NOT_PRESENT",
        RvError::TokenNotRecognized => "CKR_TOKEN_NOT_RECOGNIZED",
        RvError::TokenWriteProtected => "CKR_TOKEN_WRITE_PROTECTED",
        RvError::UnwrappingKeyHandleInvalid => "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
        RvError::UnwrappingKeySizeRange => "CKR_UNWRAPPING_KEY_SIZE_RANGE",
        RvError::UnwrappingKeyTypeInconsistent => "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
        RvError::UserAlreadyLoggedIn => "CKR_USER_ALREADY_LOGGED_IN",
        RvError::UserNotLoggedIn => "CKR_USER_NOT_LOGGED_IN",
        RvError::UserPinNotInitialized => "CKR_USER_PIN_NOT_INITIALIZED",
        RvError::UserTypeInvalid => "CKR_USER_TYPE_INVALID",
        RvError::UserAnotherAlreadyLoggedIn => "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        RvError::UserTooManyTypes => "CKR_USER_TOO_MANY_TYPES",
        RvError::WrappedKeyInvalid => "CKR_WRAPPED_KEY_INVALID",
        RvError::WrappedKeyLenRange => "CKR_WRAPPED_KEY_LEN_RANGE",
        RvError::WrappingKeyHandleInvalid => "CKR_WRAPPING_KEY_HANDLE_INVALID",
        RvError::WrappingKeySizeRange => "CKR_WRAPPING_KEY_SIZE_RANGE",
        RvError::WrappingKeyTypeInconsistent => "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
        RvError::RandomSeedNotSupported => "CKR_RANDOM_SEED_NOT_SUPPORTED",
        RvError::RandomNoRng => "CKR_RANDOM_NO_RNG",
        RvError::DomainParamsInvalid => "CKR_DOMAIN_PARAMS_INVALID",
        RvError::BufferTooSmall => "CKR_BUFFER_TOO_SMALL",
        RvError::SavedStateInvalid => "CKR_SAVED_STATE_INVALID",
        RvError::InformationSensitive => "CKR_INFORMATION_SENSITIVE",
        RvError::StateUnsaveable => "CKR_STATE_UNSAVEABLE",
        RvError::CryptokiNotInitialized => "CKR_CRYPTOKI_NOT_INITIALIZED",
        RvError::CryptokiAlreadyInitialized => "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        RvError::MutexBad => "CKR_MUTEX_BAD",
        RvError::MutexNotLocked => "CKR_MUTEX_NOT_LOCKED",
        RvError::NewPinMode => "CKR_NEW_PIN_MODE",
        RvError::NextOtp => "CKR_NEXT_OTP",
        RvError::ExceededMaxIterations => "CKR_EXCEEDED_MAX_ITERATIONS",
        RvError::FipsSelfTestFailed => "CKR_FIPS_SELF_TEST_FAILED",
        RvError::LibraryLoadFailed => "CKR_LIBRARY_LOAD_FAILED",
        RvError::PinTooWeak => "CKR_PIN_TOO_WEAK",
        RvError::PublicKeyInvalid => "CKR_PUBLIC_KEY_INVALID",
        RvError::FunctionRejected => "CKR_FUNCTION_REJECTED",
        RvError::VendorDefined(_) => "CKR_VENDOR_DEFINED",
        RvError::UnknownErrorCode(_) => "CKR_UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::context::Function;

    fn ck(rv: RvError) -> CkError {
        CkError::Pkcs11(rv, Function::Sign)
    }

    #[test]
    fn return_values_map_to_the_cli_kinds() {
        let kind = |rv| error_of(&ck(rv), "C_Sign", "tok", "key").kind();
        assert_eq!(kind(RvError::PinIncorrect), "access-denied");
        assert_eq!(kind(RvError::PinLocked), "access-denied");
        assert_eq!(kind(RvError::KeyTypeInconsistent), "wrong-key-usage");
        assert_eq!(kind(RvError::MechanismInvalid), "wrong-key-usage");
        assert_eq!(kind(RvError::DeviceRemoved), "unavailable");
        assert_eq!(kind(RvError::SessionHandleInvalid), "unavailable");
        assert_eq!(kind(RvError::GeneralError), "backend");
        assert_eq!(
            error_of(&ck(RvError::GeneralError), "C_Sign", "t", "k").return_code(),
            Some("CKR_GENERAL_ERROR")
        );
        assert_eq!(fault_of(&ck(RvError::UserNotLoggedIn)), Fault::SessionLost);
        assert_eq!(fault_of(&ck(RvError::SessionClosed)), Fault::SessionLost);
        assert_eq!(fault_of(&ck(RvError::KeyHandleInvalid)), Fault::StaleHandle);
        assert!(is_bad_ciphertext(&ck(RvError::WrappedKeyInvalid)));
        assert!(!is_bad_ciphertext(&ck(RvError::DeviceRemoved)));
    }

    #[test]
    fn messages_carry_the_code_name_only() {
        let e = error_of(&ck(RvError::GeneralError), "C_Sign", "tok", "key");
        assert_eq!(e.to_string(), "PKCS#11 C_Sign failed (CKR_GENERAL_ERROR)");
        assert_eq!(ckr_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            ckr_name(RvError::SessionHandleInvalid),
            "CKR_SESSION_HANDLE_INVALID"
        );
    }

    #[test]
    fn mapping_into_core_keeps_crypto_failures_opaque() {
        assert!(matches!(
            custody_core::Error::from(Pkcs11Error::DecryptionFailed),
            custody_core::Error::DecryptionFailed
        ));
        let object = Pkcs11Error::NotFound {
            what: "private key",
            name: "k".into(),
            advice: "",
        };
        assert!(matches!(
            object.into_core(custody_core::Error::UnknownKek),
            custody_core::Error::UnknownKek
        ));
        let token = Pkcs11Error::NotFound {
            what: "token",
            name: "t".into(),
            advice: "",
        };
        let core = custody_core::Error::from(token);
        assert_eq!(core.kind(), "not-found");
        let custody_core::Error::Backend { source, .. } = &core else {
            panic!("not a backend error: {core:?}")
        };
        assert_eq!(
            source.downcast_ref::<Pkcs11Error>().map(Pkcs11Error::kind),
            Some("not-found")
        );
    }
}
