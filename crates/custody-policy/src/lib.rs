//! custody-policy: every movement of value approved on the decision
//! makers' own devices.
//!
//! This first part is [`webauthn`]: verifying an approver's WebAuthn
//! assertion over an operation's hash, registering approvers' devices, and
//! keeping their credentials and signature counters in a state store.
//! Policies, the signed policy log and the gate come next.

#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod webauthn;
