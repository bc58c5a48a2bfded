#![doc = include_str!("../README.md")]

pub mod base32;
mod cache;
mod clock;
mod config;
mod error;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod gate;
mod guard;
mod keystore_gate;
mod otp;
pub mod percent;
mod qr;
mod record;
mod registry;
mod subject;
mod uri;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    DEFAULT_ISSUER, Lockout, MAX_SKEW_STEPS, MAX_WALLET_NAME_BYTES, MIN_ENROL_SECRET_BYTES,
    TotpConfig,
};
pub use error::Error;
pub use gate::TotpGate;
pub use keystore_gate::KeystoreGate;
pub use otp::{Algorithm, Code, Digits, Period, TotpParams, hotp};
pub use qr::{QUIET_ZONE, QrCode};
pub use registry::{EnrolMode, Enrolment, TotpRegistry, Verification};
pub use subject::Subject;
pub use uri::{MAX_SECRET_BYTES, MAX_URI_LEN, MIN_SECRET_BYTES, OtpAuthUri, parse_otpauth_uri};
