//! custody-policy: every movement of value approved on the decision
//! makers' own devices.
//!
//! - [`operation`]: what approvers approve, as a canonical encoding whose
//!   SHA-256 is the WebAuthn challenge;
//! - [`webauthn`]: verifying an approver's assertion over that hash,
//!   registering approvers' devices, and keeping their credentials and
//!   signature counters in a state store;
//! - [`facts`] and [`policy`]: what a policy sees of an operation, and
//!   policies as data (JSON with a published schema), evaluated
//!   deterministically with the trace of the rules that decided.
//!
//! The signed policy log, verdicts and the gate come next.

mod error;
pub mod facts;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod operation;
pub mod policy;
pub mod webauthn;

pub use error::PolicyError;
