//! [`WebAuthnError`]: one variant per check, so a refusal names it.

use custody_core::cbor::CborError;

/// Why a WebAuthn response was refused. Each variant is one check of the
/// WebAuthn Level 3 verification procedures (§7.1 registration, §7.2
/// assertion), named so that a log line says which.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum WebAuthnError {
    /// The response is not what `PublicKeyCredential.toJSON()` makes:
    /// `what` names the member or structure that is missing or malformed.
    #[error("malformed WebAuthn response: {what}")]
    Malformed {
        /// The member or structure at fault.
        what: &'static str,
    },
    /// A member is not RFC 4648 base64url without padding.
    #[error("{what}: not base64url (RFC 4648 §5, unpadded)")]
    Base64 {
        /// The member at fault.
        what: &'static str,
    },
    /// `clientDataJSON` is not one JSON object with each member once.
    #[error("clientDataJSON: {0}")]
    ClientDataJson(String),
    /// `clientDataJSON.type` is not the ceremony's (`webauthn.get` for an
    /// assertion, `webauthn.create` for a registration).
    #[error("clientDataJSON.type is {found:?}, not {expected:?}")]
    WrongType {
        /// The ceremony's type.
        expected: &'static str,
        /// What the client data says.
        found: String,
    },
    /// `clientDataJSON.challenge` is not the expected challenge (for an
    /// approval: the operation hash).
    #[error("the challenge is not the expected one")]
    ChallengeMismatch,
    /// `clientDataJSON.origin` is not one of the relying party's origins.
    #[error("origin {0:?} is not allowed")]
    OriginNotAllowed(String),
    /// The ceremony ran in a cross-origin iframe (`crossOrigin: true`),
    /// which this relying party does not allow.
    #[error("a cross-origin ceremony is not allowed")]
    CrossOrigin,
    /// The authenticator data's `rpIdHash` is not SHA-256 of the RP ID.
    #[error("rpIdHash is not the relying party's")]
    RpIdHashMismatch,
    /// The authenticator data's UP flag is clear: no user was present.
    #[error("the user was not present (UP flag clear)")]
    UserNotPresent,
    /// The UV flag is clear where the policy requires user verification.
    #[error("the user was not verified (UV flag clear) and the policy requires it")]
    UserNotVerified,
    /// The flags contradict each other (BS set without BE) or the ceremony
    /// (attested credential data in an assertion, none in a registration).
    #[error("authenticator data flags: {0}")]
    Flags(&'static str),
    /// The authenticator data is truncated or has bytes that no flag
    /// announces.
    #[error("authenticator data: {0}")]
    AuthenticatorData(&'static str),
    /// A CBOR structure (attestation object, COSE key, extensions) is not
    /// strict, well-formed CBOR.
    #[error("{what}: {source}")]
    Cbor {
        /// The structure at fault.
        what: &'static str,
        /// The decoder's error.
        source: CborError,
    },
    /// The COSE key uses an algorithm or curve not supported here (ES256
    /// on P-256 and EdDSA on Ed25519 are).
    #[error("unsupported credential key: {0}")]
    UnsupportedKey(&'static str),
    /// The COSE key is malformed or not a valid public key (not on the
    /// curve, a weak Ed25519 key, wrong lengths).
    #[error("invalid credential key: {0}")]
    InvalidKey(&'static str),
    /// The response is for another credential than the one it is checked
    /// against (`rawId` differs).
    #[error("the response is for another credential")]
    CredentialMismatch,
    /// The signature does not verify with the credential's key.
    #[error("the signature does not verify with the credential key")]
    BadSignature,
    /// The signature counter did not grow: the authenticator may have been
    /// cloned, or the response is replayed.
    #[error(
        "the signature counter went from {stored} to {presented}: possible cloned authenticator"
    )]
    CounterRegressed {
        /// The counter last recorded for the credential.
        stored: u32,
        /// The counter in this response.
        presented: u32,
    },
    /// The attestation statement format is not one this verifier checks
    /// (`none` and `packed` self-attestation are), or a packed statement
    /// carries a certificate chain (full attestation, not supported here).
    #[error("unsupported attestation: {0}")]
    UnsupportedAttestation(String),
    /// The attestation statement does not verify.
    #[error("attestation statement: {0}")]
    AttestationInvalid(&'static str),
    /// The credential (its id or its public key) was registered before.
    #[error("this credential is already registered")]
    AlreadyRegistered,
    /// A counter kept changing under this replica (every compare-and-swap
    /// lost): try again.
    #[error("the signature counter kept changing: too much contention")]
    Contention,
    /// The relying party configuration is unusable.
    #[error("relying party: {0}")]
    Config(&'static str),
    /// The state store that keeps counters and registrations failed.
    #[error(transparent)]
    State(#[from] custody_core::Error),
}

impl WebAuthnError {
    /// A stable kebab-case name for this refusal.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed { .. }
            | Self::Base64 { .. }
            | Self::ClientDataJson(_)
            | Self::AuthenticatorData(_)
            | Self::Cbor { .. } => "webauthn-malformed",
            Self::WrongType { .. } => "webauthn-wrong-type",
            Self::ChallengeMismatch => "webauthn-challenge-mismatch",
            Self::OriginNotAllowed(_) => "webauthn-origin-not-allowed",
            Self::CrossOrigin => "webauthn-cross-origin",
            Self::RpIdHashMismatch => "webauthn-rp-id-mismatch",
            Self::UserNotPresent => "webauthn-user-not-present",
            Self::UserNotVerified => "webauthn-user-not-verified",
            Self::Flags(_) => "webauthn-flags",
            Self::UnsupportedKey(_) => "webauthn-unsupported-key",
            Self::InvalidKey(_) => "webauthn-invalid-key",
            Self::CredentialMismatch => "webauthn-credential-mismatch",
            Self::BadSignature => "webauthn-bad-signature",
            Self::CounterRegressed { .. } => "webauthn-counter-regressed",
            Self::UnsupportedAttestation(_) => "webauthn-unsupported-attestation",
            Self::AttestationInvalid(_) => "webauthn-attestation-invalid",
            Self::AlreadyRegistered => "webauthn-already-registered",
            Self::Contention => "contention",
            Self::Config(_) => "bad-input",
            Self::State(e) => e.kind(),
        }
    }
}
