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
//!   deterministically with the trace of the rules that decided;
//! - [`log`]: each wallet's policies and approvers' devices as a
//!   hash-chained log of signed entries, checked from its start and against
//!   the last checkpoint seen;
//! - [`delay`]: time-delayed operations, proposed once and allowed after
//!   their delay unless an approver's device vetoed them;
//! - [`verdict`] and [`gate`]: the policy node signs an allow as a verdict
//!   with the policy key; the [`gate::PolicyGate`] (a `KeyBackend` wrapping
//!   a `KeyBackend`, like the TOTP gate) signs for a governed wallet only a
//!   digest a valid verdict covers, and records which policy-log position
//!   approved it in the signature's audit record;
//! - [`velocity`]: velocity limits counted from the signatures' audit
//!   records, which editing the state store cannot reset.

mod canonical;
pub mod delay;
mod error;
pub mod facts;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod gate;
pub mod log;
pub mod operation;
pub mod policy;
pub mod velocity;
pub mod verdict;
pub mod webauthn;

pub use error::PolicyError;
