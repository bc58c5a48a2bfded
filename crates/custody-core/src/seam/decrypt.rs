//! Key agreement and decryption with keys that stay in their backend: the
//! capability a sealed secret (a JWE) is opened with.
//!
//! # Why a third capability, and why it looks like signing
//! Opening a JWE needs one private-key operation: an ECDH agreement with
//! the sender's ephemeral P-256 key (`ECDH-ES`, `ECDH-ES+A256KW`; KMS
//! `DeriveSharedSecret`, PKCS#11 `CKM_ECDH1_DERIVE`) or an RSA-OAEP
//! decryption of the content key (`RSA-OAEP-256`; KMS `Decrypt`, PKCS#11
//! `CKM_RSA_PKCS_OAEP`). Neither is a signature: the answer is a *secret*
//! (a shared secret or a content key), so it cannot travel in a
//! [`crate::Signed`] (whose bytes are public) and a backend that only signs
//! must not be asked for it by mistake. So it is its own capability trait,
//! [`DecryptingBackend`], next to [`crate::SigningBackend`], reached through
//! [`crate::KeyBackend::decrypting`] and reported by
//! [`crate::Capabilities`]; a backend or gate that does not implement it
//! answers `None`, so an unseal never slips past a gate that does not know
//! it (fail closed).
//!
//! The request has the same shape as a [`crate::SignRequest`] on purpose:
//! the pinned key, a 32-byte digest that names what is opened (custody-jose
//! uses the SHA-256 of the whole compact JWE), the [`crate::Intent`]
//! ([`crate::IntentKind::Unseal`], with the JWE's header as its detail and
//! its scope as a note) and the [`crate::Authorization`]. Every gate
//! therefore applies to an unseal the checks it applies to a signature
//! (the TOTP code, the policy), hands up the same [`crate::Clearance`]s,
//! and [`crate::Audited`] writes the same one record per operation (op
//! `decrypt`, the key, the digest, the intent, the outcome, the
//! clearances). The secret comes back in zeroizing memory
//! ([`SecretVec`]) and is never part of an error or a record.
//!
//! The secp256k1 signing hot path is untouched: nothing here is on it.

use std::fmt;

use crate::{
    Authorization, Digest32, Error, Evidence, Intent, KeyAlgorithm, P256PublicKey, Pending,
    PinnedKey, SecretVec,
};

/// The private-key operation a [`DecryptRequest`] asks for.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decryption<'a> {
    /// ECDH on P-256 with `peer`: the shared point's 32-byte x-coordinate,
    /// big-endian and zero-padded (SEC 1 §3.3.1, what KMS
    /// `DeriveSharedSecret` and PKCS#11 `CKM_ECDH1_DERIVE` with
    /// `CKD_NULL` return). The peer key is already a validated point on
    /// P-256 (its type cannot hold anything else).
    EcdhP256 {
        /// The other party's public key (a JWE's `epk`).
        peer: &'a P256PublicKey,
    },
    /// RSAES-OAEP with SHA-256, MGF1-SHA-256 and an empty label (JWE
    /// `RSA-OAEP-256`, KMS `RSAES_OAEP_SHA_256`): the plaintext.
    RsaOaepSha256 {
        /// The ciphertext (a JWE's encrypted key).
        ciphertext: &'a [u8],
    },
}

impl Decryption<'_> {
    /// A stable lower-case name (audit records' `scheme` field).
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::EcdhP256 { .. } => "ecdh-p256",
            Self::RsaOaepSha256 { .. } => "rsa-oaep-sha256",
        }
    }

    /// The key algorithm the operation needs.
    #[must_use]
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        match self {
            Self::EcdhP256 { .. } => KeyAlgorithm::P256,
            Self::RsaOaepSha256 { .. } => KeyAlgorithm::Rsa,
        }
    }
}

/// One request to agree or decrypt with a key held by a backend.
#[derive(Debug, Clone, Copy)]
pub struct DecryptRequest<'a> {
    /// The key to use.
    pub key: &'a PinnedKey,
    /// A digest naming what is opened (its audit record's `digest`).
    pub digest: Digest32,
    /// The operation.
    pub decryption: Decryption<'a>,
    /// What is opened ([`crate::IntentKind::Unseal`] for a JWE).
    pub intent: Intent<'a>,
    /// Second factors and approvals.
    pub auth: &'a Authorization,
    /// Set only by [`crate::Audited`] (see
    /// [`crate::SignRequest::recorded_above`]).
    recorded_above: bool,
}

impl<'a> DecryptRequest<'a> {
    /// A request to perform `decryption` with `key`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if `key` is not of the operation's algorithm
    /// ([`Decryption::key_algorithm`]: P-256 for ECDH, RSA for RSA-OAEP).
    pub fn new(
        key: &'a PinnedKey,
        digest: Digest32,
        decryption: Decryption<'a>,
        intent: Intent<'a>,
        auth: &'a Authorization,
    ) -> Result<Self, Error> {
        // ECDH only with a P-256 key, RSA-OAEP only with an RSA key.
        if decryption.key_algorithm() != key.algorithm() {
            return Err(Error::Unsupported(
                "the key is not of the algorithm this operation needs",
            ));
        }
        Ok(Self {
            key,
            digest,
            decryption,
            intent,
            auth,
            recorded_above: false,
        })
    }

    /// Whether [`crate::Audited`] above will record the outcome (a gate
    /// hands its evidence up instead of recording it; see
    /// [`crate::SignRequest::recorded_above`]).
    #[must_use]
    pub fn recorded_above(&self) -> bool {
        self.recorded_above
    }

    /// The same request, marked as recorded by the audit layer forwarding it.
    pub(crate) fn recorded(self) -> Self {
        Self {
            recorded_above: true,
            ..self
        }
    }
}

/// A backend's answer to a [`DecryptRequest`]: the secret and the
/// evidence of the gates it passed on its way up.
pub struct Decrypted {
    /// The shared secret or plaintext, zeroized on drop.
    pub secret: SecretVec,
    /// The gates' clearances and deferred writes ([`Evidence`]).
    pub evidence: Evidence,
}

impl Decrypted {
    /// A secret no gate has cleared yet (what a backend returns).
    #[must_use]
    pub fn new(secret: SecretVec) -> Self {
        Self {
            secret,
            evidence: Evidence::new(),
        }
    }
}

impl crate::Cleared for Decrypted {
    fn evidence(&self) -> &Evidence {
        &self.evidence
    }
    fn evidence_mut(&mut self) -> &mut Evidence {
        &mut self.evidence
    }
}

impl fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("secret", &self.secret)
            .field("evidence", &self.evidence)
            .finish()
    }
}

/// Key agreement and decryption with keys that stay in the backend (see
/// the module docs of `seam/decrypt.rs` for why this is a capability of its own).
pub trait DecryptingBackend: Send + Sync {
    /// Performs `request.decryption` with `request.key`. Keys are pinned
    /// through the backend's [`crate::SigningBackend::pin`].
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::Unsupported`] for an operation the
    /// key or backend cannot do, [`Error::DecryptionFailed`] (one kind for
    /// every failure of the operation itself), [`Error::Denied`] from a
    /// gate, or a backend error.
    fn decrypt<'a>(&'a self, request: DecryptRequest<'a>) -> Pending<'a, Result<Decrypted, Error>>;
}
