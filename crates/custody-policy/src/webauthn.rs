//! WebAuthn as a relying party verifies it, for approvals: an approver's
//! device signs an operation's 32-byte hash as the WebAuthn challenge, and
//! custody checks the assertion exactly as WebAuthn Level 3 §7.2 says,
//! with a verifier of its own (`webauthn-rs` refuses challenges chosen by
//! the caller, and the challenge here *is* the operation).
//!
//! - [`RelyingParty::verify_assertion`]: the client data (type, challenge,
//!   origin, not cross-origin), the authenticator data (RP ID hash, user
//!   present, user verified if required, flags), the signature with the
//!   approver's registered key (ES256 on P-256, EdDSA on Ed25519);
//! - [`RelyingParty::verify_registration`]: a new device's credential from
//!   its attestation object (`none`, or `packed` self-attestation);
//! - [`CredentialStore`]: registered credentials (a key seen before is
//!   refused) and signature counters (never going back), kept by
//!   compare-and-swap in a state store shared by every replica.
//!
//! Untrusted input all of it: JSON read strictly (no duplicate members),
//! base64url strictly, CBOR with custody-core's strict decoder, every byte
//! of the authenticator data accounted for; each refusal is a
//! [`WebAuthnError`] naming its check.

mod ceremony;
mod data;
mod error;
mod json;
mod store;

pub use ceremony::{
    AssertionResponse, Credential, RegisteredCredential, RegistrationResponse, RelyingParty,
    VerifiedAssertion,
};
pub use data::{AttestedCredential, AuthenticatorData, COSE_EDDSA, COSE_ES256, CredentialKey};
pub use error::WebAuthnError;
pub use json::to_base64url;
pub(crate) use json::{base64url as from_base64url, strict_json};
pub use store::{CounterSwap, CredentialStore};
