//! The one error type of the crate.

/// Why a JOSE object, key or claim set was refused.
///
/// Every variant has a stable lower-case [`kind`](JoseError::kind), as the
/// CLI and the audit log report it. Signature failures are one opaque
/// variant ([`JoseError::BadSignature`]): the error never says which part of
/// a signature was wrong. No variant carries input data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoseError {
    /// The input is not what it claims to be: bad base64url, not strict
    /// JSON, a missing or mistyped member, a size bound exceeded, a `crit`
    /// or `b64` header.
    #[error("malformed {what}")]
    Malformed {
        /// What was malformed (a fixed description, never input).
        what: &'static str,
    },
    /// An algorithm this crate does not verify (`none`, `HS*`, anything
    /// not ES256, ES256K, RS256, PS256 or EdDSA), or a Concat KDF algorithm
    /// whose key length is unknown.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// The token's `alg` is not the algorithm fixed by the chosen key.
    #[error("the token's algorithm is not its key's")]
    AlgorithmMismatch,
    /// No key, or more than one, could be chosen for the token.
    #[error("no single key for the token")]
    UnknownKey,
    /// The signature does not verify under the chosen key.
    #[error("bad signature")]
    BadSignature,
    /// A key that cannot be used: a private or symmetric key, a point off
    /// the curve, an RSA modulus out of bounds, an RSA key without `alg`...
    #[error("invalid key: {what}")]
    InvalidKey {
        /// Why (a fixed description, never key material).
        what: &'static str,
    },
    /// The JWT's `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// The JWT's `nbf` is still ahead (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// The JWT's `iat` lies in the future (beyond the leeway).
    #[error("token issued in the future")]
    IssuedInFuture,
    /// The JWT has no `exp` and the validation requires one.
    #[error("token has no expiry")]
    MissingExpiry,
    /// The JWT's `aud` does not name the expected audience (or names one
    /// where none was expected).
    #[error("wrong audience")]
    WrongAudience,
    /// The JWT's `iss` is not the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// A validation was configured with a leeway above
    /// [`MAX_LEEWAY`](crate::jwt::MAX_LEEWAY).
    #[error("leeway above the maximum")]
    LeewayTooLarge,
}

impl JoseError {
    /// A stable lower-case kind, as the CLI reports it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed",
            Self::UnsupportedAlgorithm => "unsupported-algorithm",
            Self::AlgorithmMismatch => "algorithm-mismatch",
            Self::UnknownKey => "unknown-key",
            Self::BadSignature => "bad-signature",
            Self::InvalidKey { .. } => "invalid-key",
            Self::Expired => "expired",
            Self::NotYetValid => "not-yet-valid",
            Self::IssuedInFuture => "issued-in-future",
            Self::MissingExpiry => "missing-expiry",
            Self::WrongAudience => "wrong-audience",
            Self::WrongIssuer => "wrong-issuer",
            Self::LeewayTooLarge => "leeway-too-large",
        }
    }
}
