//! The one error type of `custody-core`.
//!
//! Variants carry only `&'static str` reasons, numbers and boxed sources from
//! I/O or vendor SDKs: nothing that could hold secret material. Cryptographic
//! failures are single opaque variants ([`Error::DecryptionFailed`],
//! [`Error::WrongPassphrase`]) so that a failure leaks nothing about why.

use std::fmt;

/// Why a gate (TOTP, approvals, policy) refused to let a request reach a key.
///
/// Every gate speaks this vocabulary so that a caller (the CLI, an RPC layer)
/// can map a refusal to a stable error kind without knowing which gate spoke.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// The key belongs to a wallet enrolled for TOTP and no code was given.
    TotpRequired,
    /// The code given is wrong (counts towards the lockout).
    TotpInvalid,
    /// The code was already used, or is at or before the last accepted step.
    TotpReplayed,
    /// Too many wrong codes: the wallet is locked until this UNIX time (seconds).
    TotpLocked {
        /// When the lock ends, in seconds since the UNIX epoch.
        until_unix: u64,
    },
    /// The operation is never allowed on this key (e.g. exporting an ancestor
    /// of an enrolled wallet's node).
    Forbidden,
    /// The wallet's policy denies the operation (a deny rule, a limit, or
    /// no rule allowing it).
    PolicyDenied,
    /// The wallet's policy allows the operation only with more approvals
    /// (or after a delay), and they were not given.
    ApprovalsRequired,
    /// The policy verdict presented does not cover this request (another
    /// operation, key or digest; stale, expired, spent, or not signed by the
    /// policy key).
    VerdictInvalid,
}

impl Denial {
    /// A stable kebab-case name for this refusal (CLI error kinds, audit
    /// details): `totp-required`, `totp-invalid`, `totp-replayed`,
    /// `totp-locked`, `forbidden`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TotpRequired => "totp-required",
            Self::TotpInvalid => "totp-invalid",
            Self::TotpReplayed => "totp-replayed",
            Self::TotpLocked { .. } => "totp-locked",
            Self::Forbidden => "forbidden",
            Self::PolicyDenied => "policy-denied",
            Self::ApprovalsRequired => "approvals-required",
            Self::VerdictInvalid => "verdict-invalid",
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TotpRequired => f.write_str("a TOTP code is required for this wallet"),
            Self::TotpInvalid => f.write_str("the TOTP code is not valid"),
            Self::TotpReplayed => f.write_str("the TOTP code was already used"),
            Self::TotpLocked { until_unix } => {
                write!(
                    f,
                    "the wallet is locked after repeated wrong codes until {until_unix}"
                )
            }
            Self::Forbidden => f.write_str("the operation is not allowed on this key"),
            Self::PolicyDenied => f.write_str("the wallet's policy denies this operation"),
            Self::ApprovalsRequired => {
                f.write_str("the wallet's policy requires approvals for this operation")
            }
            Self::VerdictInvalid => f.write_str("the policy verdict does not cover this request"),
        }
    }
}

/// Errors of `custody-core`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A BIP32 derivation path could not be parsed.
    #[error("invalid derivation path: {0}")]
    InvalidPath(&'static str),
    /// A BIP39 mnemonic is not valid (unknown word, bad length or checksum).
    #[error("invalid mnemonic")]
    InvalidMnemonic,
    /// A serialized extended key (xpub/xprv) is not valid.
    #[error("invalid extended key: {0}")]
    InvalidExtendedKey(&'static str),
    /// Key bytes are not a valid secp256k1 secret or public key.
    #[error("invalid key material: {0}")]
    InvalidKeyMaterial(&'static str),
    /// A key or KEK identifier is malformed.
    #[error("invalid key id: {0}")]
    InvalidKeyId(&'static str),
    /// A wallet name or key index is out of the range the wallet scheme allows.
    #[error("invalid wallet reference: {0}")]
    InvalidWallet(&'static str),
    /// BIP32 child derivation hit an invalid child (probability below 2^-127).
    #[error("BIP32 derivation produced an invalid child key")]
    DerivationFailed,
    /// The backend does not have this capability.
    #[error("unsupported by this backend: {0}")]
    Unsupported(&'static str),
    /// No key with that id is held.
    #[error("key not found")]
    KeyNotFound,
    /// No key-encryption key with that id is held.
    #[error("unknown key-encryption key")]
    UnknownKek,
    /// An envelope or wrapped key failed authentication: wrong key, wrong
    /// encryption context or tampered bytes. Deliberately opaque.
    #[error("decryption failed")]
    DecryptionFailed,
    /// Envelope bytes are not a well-formed envelope.
    #[error("malformed envelope: {0}")]
    MalformedEnvelope(&'static str),
    /// An encryption context is not acceptable (too large, empty key, ...).
    #[error("invalid encryption context: {0}")]
    InvalidContext(&'static str),
    /// The keystore passphrase is wrong.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// No keystore exists at the given location.
    #[error("keystore not found")]
    KeystoreNotFound,
    /// A keystore already exists at the given location.
    #[error("keystore already exists")]
    KeystoreExists,
    /// The keystore was opened with the wrong kind of key: a passphrase for
    /// a keystore whose KEK a backend holds, or the other way round.
    #[error("wrong kind of KEK: {0}")]
    WrongKek(&'static str),
    /// The keystore was changed by another process (e.g. its passphrase)
    /// since this handle opened it: reopen it.
    #[error("the keystore changed since it was opened; reopen it")]
    Stale,
    /// A record or file on disk is not well formed.
    #[error("malformed record: {0}")]
    MalformedRecord(&'static str),
    /// A state-store key or value given by the caller is not acceptable (a
    /// key of 0 or more than 512 bytes, a value over the size limit, a
    /// version that would overflow). Nothing was read or written.
    #[error("invalid state record: {0}")]
    InvalidStateRecord(&'static str),
    /// An audit event given by the caller is not acceptable (an operation or
    /// field name that is not short kebab-case, a reserved field name).
    #[error("invalid audit event: {0}")]
    InvalidAuditEvent(&'static str),
    /// A signature returned by a backend is not valid for the pinned key.
    #[error("signature does not verify against the pinned public key")]
    InvalidSignature,
    /// A backend reported a public key other than the pinned one.
    #[error("public key does not match the pinned key")]
    PublicKeyMismatch,
    /// The audit log's hash chain is broken at this sequence number.
    #[error("audit log verification failed at record {seq}: {reason}")]
    AuditChainBroken {
        /// Sequence number of the first record that fails verification.
        seq: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A gate refused the request.
    #[error("denied: {0}")]
    Denied(Denial),
    /// The operating system's random number generator failed.
    #[error("the OS random number generator failed")]
    Rng,
    /// An I/O error (file system).
    #[error("I/O error")]
    Io(#[source] std::io::Error),
    /// A vendor backend (KMS, HSM, enclave) or a gate failed in a way of
    /// its own; `kind` is its stable kind (e.g. `access-denied`,
    /// `throttled`, `unavailable`), the source says why. Made by
    /// [`Error::backend`]; a caller that knows the backend can
    /// `source.downcast_ref::<ItsError>()`.
    #[error("backend error ({kind})")]
    Backend {
        /// The stable kebab-case kind, as [`BackendError::kind`] gave it.
        kind: &'static str,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An error of a backend or gate that travels inside [`Error::Backend`]:
/// it names its stable kind, so that every caller (the CLI, an RPC layer,
/// the audit record) maps it to the same contract without knowing which
/// backend spoke.
///
/// # Why a kind travels with the error
/// A KMS that throttles, an HSM whose PIN is wrong and a gate whose state
/// is corrupt are different crates' errors; a caller matching on
/// `custody_core::Error` must still tell `throttled` from `access-denied`
/// (they ask for different fixes, and different exit codes). The kind is
/// fixed when the error enters the seam, once, instead of every caller
/// downcasting to every backend's type.
pub trait BackendError: std::error::Error + Send + Sync + 'static {
    /// The stable kebab-case kind (a published contract, as
    /// [`Error::kind`]).
    fn kind(&self) -> &'static str;
}

impl Error {
    /// Wraps a backend's or gate's own error, keeping its kind.
    #[must_use]
    pub fn backend(error: impl BackendError) -> Self {
        Self::Backend {
            kind: error.kind(),
            source: Box::new(error),
        }
    }
}

impl Error {
    /// A stable kebab-case name for this error's kind (a published contract:
    /// the CLI prints it and scripts match on it).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidPath(_)
            | Self::InvalidMnemonic
            | Self::InvalidExtendedKey(_)
            | Self::InvalidKeyMaterial(_)
            | Self::InvalidKeyId(_)
            | Self::InvalidWallet(_)
            | Self::InvalidContext(_)
            | Self::InvalidStateRecord(_)
            | Self::InvalidAuditEvent(_) => "bad-input",
            Self::DerivationFailed => "derivation-failed",
            Self::Unsupported(_) => "unsupported",
            Self::KeyNotFound | Self::UnknownKek | Self::KeystoreNotFound => "not-found",
            Self::DecryptionFailed => "decryption-failed",
            Self::MalformedEnvelope(_) | Self::MalformedRecord(_) => "malformed",
            Self::WrongPassphrase => "wrong-passphrase",
            Self::WrongKek(_) => "wrong-kek",
            Self::KeystoreExists => "already-exists",
            Self::Stale => "conflict",
            Self::InvalidSignature | Self::PublicKeyMismatch => "invalid-signature",
            Self::AuditChainBroken { .. } => "audit-chain-broken",
            Self::Denied(d) => d.kind(),
            Self::Rng => "rng",
            Self::Io(_) => "io",
            Self::Backend { kind, .. } => kind,
        }
    }
}

/// An error as a front end reports it: a stable kebab-case kind, a human
/// sentence, and the status that kind maps to.
///
/// Every front end (the `custody` CLI's JSON error object and exit code,
/// the C ABI's error struct and return status) reports errors through this
/// one mapping, so a kind means the same thing, and carries the same
/// status, wherever a caller meets it. `custody-totp` and `custody-eth`
/// convert their errors into it too.
///
/// The message is built from the error's `Display`, which never holds
/// secret material (see the error types' docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    kind: &'static str,
    message: String,
}

impl ErrorReport {
    /// A report of `kind` (a stable kebab-case name) with a human sentence.
    /// Build messages from static text, field names and public values only:
    /// never from a secret.
    #[must_use]
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The stable kebab-case kind (`bad-input`, `totp-required`, ...).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The human sentence.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prefixes the message with the argument or field it is about.
    #[must_use]
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// The status of this report's kind: see [`ErrorReport::status_of`].
    #[must_use]
    pub fn status(&self) -> u8 {
        Self::status_of(self.kind)
    }

    /// The status a kind maps to, the `custody` CLI's exit code and the C
    /// ABI's return value: 2 for bad input or usage (`bad-input`, and
    /// `algorithm-mismatch`: a JWS algorithm that is not the key's), 3 for
    /// an authentication failure (`wrong-passphrase`, the `totp-*`
    /// refusals, `access-denied`, `attestation-invalid`, a policy's
    /// refusals `policy-denied`, `approvals-required`, `verdict-invalid`,
    /// a JWT that does not verify, `jwt-invalid` / `jwt-expired`, and a
    /// sealed secret that does not open, `unseal-failed`), 1 for anything
    /// else.
    #[must_use]
    pub fn status_of(kind: &str) -> u8 {
        match kind {
            "bad-input" | "algorithm-mismatch" => 2,
            "wrong-passphrase"
            | "totp-required"
            | "totp-invalid"
            | "totp-replayed"
            | "totp-locked"
            | "access-denied"
            | "attestation-invalid"
            | "policy-denied"
            | "approvals-required"
            | "verdict-invalid"
            | "jwt-invalid"
            | "jwt-expired"
            | "unseal-failed" => 3,
            _ => 1,
        }
    }
}

impl fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl From<Error> for ErrorReport {
    /// The error's kind and `Display`; a backend or gate reporting through
    /// [`Error::Backend`] speaks for itself (its source's message).
    fn from(e: Error) -> Self {
        if let Error::Backend { kind, source } = &e {
            return Self::new(kind, source.to_string());
        }
        Self::new(e.kind(), e.to_string())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("the KMS throttled this call 5 times")]
    struct Throttled;

    impl BackendError for Throttled {
        fn kind(&self) -> &'static str {
            "throttled"
        }
    }

    #[test]
    fn a_backend_error_keeps_its_kind_and_its_source() {
        let e = Error::backend(Throttled);
        assert_eq!(e.kind(), "throttled");
        assert_eq!(e.to_string(), "backend error (throttled)");
        let source = std::error::Error::source(&e).unwrap();
        assert_eq!(source.to_string(), "the KMS throttled this call 5 times");
        let Error::Backend { source, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(source.downcast_ref::<Throttled>().is_some());
    }

    #[test]
    fn a_report_keeps_the_kind_and_a_backend_speaks_for_itself() {
        let r = ErrorReport::from(Error::backend(Throttled));
        assert_eq!(r.kind(), "throttled");
        assert_eq!(r.message(), "the KMS throttled this call 5 times");
        assert_eq!(r.status(), 1);
        let r = ErrorReport::from(Error::Denied(Denial::TotpRequired));
        assert_eq!(r.kind(), "totp-required");
        assert_eq!(
            r.message(),
            "denied: a TOTP code is required for this wallet"
        );
        assert_eq!(r.status(), 3);
        let r = ErrorReport::from(Error::InvalidPath("bad component")).context("--path");
        assert_eq!(r.kind(), "bad-input");
        assert_eq!(
            r.message(),
            "--path: invalid derivation path: bad component"
        );
        assert_eq!(r.status(), 2);
        assert_eq!(ErrorReport::from(Error::KeystoreNotFound).status(), 1);
        for kind in ["jwt-invalid", "jwt-expired", "unseal-failed"] {
            assert_eq!(ErrorReport::status_of(kind), 3, "{kind}");
        }
        for (denial, kind) in [
            (Denial::PolicyDenied, "policy-denied"),
            (Denial::ApprovalsRequired, "approvals-required"),
            (Denial::VerdictInvalid, "verdict-invalid"),
        ] {
            let r = ErrorReport::from(Error::Denied(denial));
            assert_eq!((r.kind(), r.status()), (kind, 3));
        }
    }
}
