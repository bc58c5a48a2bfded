//! RFC 4226 HOTP and RFC 6238 TOTP codes.
//!
//! ```text
//! HOTP(K, C) = Truncate(HMAC-H(K, C as 8 big-endian bytes)) mod 10^digits
//! TOTP(K, T) = HOTP(K, floor((T - T0) / X)),  T0 = 0 (the UNIX epoch)
//! ```
//!
//! `H` is SHA-1, SHA-256 or SHA-512; `digits` is 6, 7 or 8; the period `X` is
//! any positive number of seconds. Counters and times are 64-bit throughout
//! (RFC 6238 section 4.2 asks for times past 2038; the committed vectors run
//! to the year 2603). HMAC outputs and codes live in zeroizing memory.
//! Reduction modulo `10^digits` uses a constant divisor per digit count, so
//! the compiler emits multiplications, not a data-dependent `div`.

use std::fmt;
use std::num::NonZeroU64;

use hmac::digest::FixedOutput;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

use crate::Error;

/// The HMAC hash of a TOTP (RFC 6238 section 1.2).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA-1: the default, and the only algorithm every authenticator
    /// app honours (some silently ignore the others).
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in otpauth URIs: `SHA1`, `SHA256`, `SHA512`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses an otpauth `algorithm` value (ASCII case-insensitive).
    ///
    /// # Errors
    /// [`Error::UnknownAlgorithm`] for anything but SHA1, SHA256, SHA512.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        [Self::Sha1, Self::Sha256, Self::Sha512]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(name))
            .ok_or(Error::UnknownAlgorithm)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The number of digits of a code: 6, 7 or 8 (RFC 4226 section 5.3 asks for
/// at least 6; more than 8 is not interoperable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digits(u8);

impl Digits {
    /// Six digits (the default).
    pub const SIX: Self = Self(6);
    /// Seven digits.
    pub const SEVEN: Self = Self(7);
    /// Eight digits.
    pub const EIGHT: Self = Self(8);

    /// Checks a digit count.
    ///
    /// # Errors
    /// [`Error::InvalidDigits`] unless `digits` is 6, 7 or 8.
    pub fn new(digits: u8) -> Result<Self, Error> {
        if (6..=8).contains(&digits) {
            Ok(Self(digits))
        } else {
            Err(Error::InvalidDigits)
        }
    }

    /// The count.
    #[must_use]
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for Digits {
    fn default() -> Self {
        Self::SIX
    }
}

/// The time step `X` of a TOTP, in seconds (any positive number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period(NonZeroU64);

impl Period {
    /// Thirty seconds: the RFC 6238 default and what every app assumes.
    pub const THIRTY_SECONDS: Self = Self(NonZeroU64::MIN.saturating_add(29));

    /// Checks a period.
    ///
    /// # Errors
    /// [`Error::InvalidPeriod`] if `seconds` is 0.
    pub fn new(seconds: u64) -> Result<Self, Error> {
        NonZeroU64::new(seconds)
            .map(Self)
            .ok_or(Error::InvalidPeriod)
    }

    /// The period in seconds.
    #[must_use]
    pub fn seconds(self) -> u64 {
        self.0.get()
    }
}

impl Default for Period {
    fn default() -> Self {
        Self::THIRTY_SECONDS
    }
}

/// The public parameters of a TOTP: algorithm, digits and period.
/// The default (SHA-1, 6 digits, 30 s) is what Google Authenticator, Authy
/// and 1Password all accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TotpParams {
    /// The HMAC hash.
    pub algorithm: Algorithm,
    /// Digits per code.
    pub digits: Digits,
    /// Seconds per time step.
    pub period: Period,
}

impl TotpParams {
    /// The time step `floor(unix_time / period)` (RFC 6238 `T`, with
    /// `T0 = 0`).
    #[must_use]
    pub fn step_at(&self, unix_time: u64) -> u64 {
        unix_time / self.period.seconds()
    }

    /// The code for step `step` (an HOTP with the step as its counter).
    ///
    /// # Errors
    /// As [`hotp`].
    pub fn code_at_step(&self, secret: &[u8], step: u64) -> Result<Code, Error> {
        hotp(secret, step, self.algorithm, self.digits)
    }

    /// The code at `unix_time` (RFC 6238 TOTP).
    ///
    /// # Errors
    /// As [`hotp`].
    pub fn code_at(&self, secret: &[u8], unix_time: u64) -> Result<Code, Error> {
        self.code_at_step(secret, self.step_at(unix_time))
    }
}

/// A one-time code: 6 to 8 ASCII digits. Secret until used: wiped on drop,
/// redacted in `Debug`, compared in constant time.
pub struct Code {
    digits: Zeroizing<[u8; 8]>,
    len: u8,
}

impl Code {
    /// The code as a string of digits (with leading zeros). Every call site
    /// handles a secret.
    #[must_use]
    pub fn expose_str(&self) -> &str {
        let digits = self.digits.get(..usize::from(self.len)).unwrap_or(&[]);
        // Only ASCII digits are ever written into `digits`.
        std::str::from_utf8(digits).unwrap_or("")
    }

    /// Constant-time comparison with a presented code (its length is not
    /// secret: it is fixed by the enrolment).
    #[must_use]
    pub fn ct_matches(&self, presented: &[u8]) -> Choice {
        self.expose_str().as_bytes().ct_eq(presented)
    }
}

impl ConstantTimeEq for Code {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.ct_matches(other.expose_str().as_bytes())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

/// RFC 4226 section 5.3 dynamic truncation: 31 bits at the offset named by
/// the low nibble of the last byte.
fn truncate(mac: &[u8]) -> Result<u32, Error> {
    let last = mac.last().ok_or(Error::InvalidSecret)?;
    let offset = usize::from(last & 0x0f);
    // offset + 4 <= 19 < 20, the shortest (SHA-1) output: never out of range.
    let word: [u8; 4] = mac
        .get(offset..offset + 4)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::InvalidSecret)?;
    Ok(u32::from_be_bytes(word) & 0x7fff_ffff)
}

macro_rules! hmac_truncated {
    ($mac:expr, $len:expr, $msg:expr) => {{
        let mut mac = $mac.clone();
        Mac::update(&mut mac, $msg);
        let mut out = Zeroizing::new([0u8; $len]);
        FixedOutput::finalize_into(mac, (&mut *out).into());
        truncate(&out[..])
    }};
}

/// A TOTP secret as an HMAC keyed with it: the inner and outer padded key
/// blocks already hashed, so that each code costs two compressions of the
/// hash instead of four. Key material, like the secret it was made from:
/// kept only in the registry's bounded cache, redacted in `Debug`, and its
/// hash states are wiped on drop (see [`_keyed_macs_are_wiped_on_drop`]).
pub(crate) enum KeyedSecret {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

/// Compile-time proof that a [`KeyedSecret`] wipes its state on drop: the
/// hash states inside each HMAC and its block buffer implement
/// `ZeroizeOnDrop` (the `zeroize` features of `sha1`, `sha2` and `hmac`,
/// which reach `digest` and `block-buffer`). Never called.
fn _keyed_macs_are_wiped_on_drop() {
    fn wiped<T: zeroize::ZeroizeOnDrop>() {}
    wiped::<<Sha1 as hmac::EagerHash>::Core>();
    wiped::<<Sha256 as hmac::EagerHash>::Core>();
    wiped::<<Sha512 as hmac::EagerHash>::Core>();
    wiped::<hmac::digest::block_api::Buffer<<Sha1 as hmac::EagerHash>::Core>>();
    wiped::<hmac::digest::block_api::Buffer<<Sha256 as hmac::EagerHash>::Core>>();
    wiped::<hmac::digest::block_api::Buffer<<Sha512 as hmac::EagerHash>::Core>>();
}

impl KeyedSecret {
    /// Keys the HMAC of `algorithm` with `secret`.
    ///
    /// # Errors
    /// Never in practice: HMAC accepts keys of any length.
    pub(crate) fn new(secret: &[u8], algorithm: Algorithm) -> Result<Self, Error> {
        // HMAC takes keys of any length: the error arms are never taken.
        Ok(match algorithm {
            Algorithm::Sha1 => Self::Sha1(
                <Hmac<Sha1> as KeyInit>::new_from_slice(secret)
                    .map_err(|_| Error::InvalidSecret)?,
            ),
            Algorithm::Sha256 => Self::Sha256(
                <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
                    .map_err(|_| Error::InvalidSecret)?,
            ),
            Algorithm::Sha512 => Self::Sha512(
                <Hmac<Sha512> as KeyInit>::new_from_slice(secret)
                    .map_err(|_| Error::InvalidSecret)?,
            ),
        })
    }

    /// The RFC 4226 HOTP code for `counter`.
    ///
    /// # Errors
    /// Never in practice (see [`truncate`]).
    pub(crate) fn code(&self, counter: u64, digits: Digits) -> Result<Code, Error> {
        #[cfg(test)]
        CODES_COMPUTED.with(|n| n.set(n.get() + 1));
        let msg = counter.to_be_bytes();
        let bin = Zeroizing::new(match self {
            Self::Sha1(mac) => hmac_truncated!(mac, 20, &msg)?,
            Self::Sha256(mac) => hmac_truncated!(mac, 32, &msg)?,
            Self::Sha512(mac) => hmac_truncated!(mac, 64, &msg)?,
        });
        Ok(code_from(&bin, digits))
    }
}

#[cfg(test)]
thread_local! {
    /// How many codes [`KeyedSecret::code`] computed on this thread (tests
    /// count the HMACs a check costs).
    pub(crate) static CODES_COMPUTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl fmt::Debug for KeyedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyedSecret(<redacted>)")
    }
}

/// RFC 4226 HOTP: the code for `counter` under `secret`.
///
/// # Errors
/// Never in practice: HMAC accepts keys of any length. The `Result` keeps
/// the impossible branch typed ([`Error::InvalidSecret`]) instead of a panic.
pub fn hotp(
    secret: &[u8],
    counter: u64,
    algorithm: Algorithm,
    digits: Digits,
) -> Result<Code, Error> {
    KeyedSecret::new(secret, algorithm)?.code(counter, digits)
}

/// The `digits` low decimal digits of a truncated HMAC (RFC 4226 section
/// 5.3), as a [`Code`].
fn code_from(bin: &u32, digits: Digits) -> Code {
    // Constant divisors: compiled to multiply-and-shift, not `div`.
    let mut value = Zeroizing::new(match digits.0 {
        6 => *bin % 1_000_000,
        7 => *bin % 10_000_000,
        _ => *bin % 100_000_000,
    });
    let mut out = Zeroizing::new([0u8; 8]);
    let len = usize::from(digits.0);
    for slot in out.iter_mut().take(len).rev() {
        // `*value % 10` is below 10: the cast cannot truncate.
        *slot = b'0' + (*value % 10) as u8;
        *value /= 10;
    }
    Code {
        digits: out,
        len: digits.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names() {
        for a in [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512] {
            assert_eq!(Algorithm::from_name(a.as_str()).unwrap(), a);
            assert_eq!(Algorithm::from_name(&a.as_str().to_lowercase()).unwrap(), a);
        }
        for bad in ["", "SHA-1", "MD5", "SHA384", "sha 1", "SHA1 "] {
            assert!(matches!(
                Algorithm::from_name(bad),
                Err(Error::UnknownAlgorithm)
            ));
        }
    }

    #[test]
    fn digits_and_period_limits() {
        for d in 0..=255u8 {
            assert_eq!(Digits::new(d).is_ok(), (6..=8).contains(&d), "{d}");
        }
        assert!(matches!(Period::new(0), Err(Error::InvalidPeriod)));
        assert_eq!(Period::new(1).unwrap().seconds(), 1);
        assert_eq!(Period::new(u64::MAX).unwrap().seconds(), u64::MAX);
        assert_eq!(Period::default().seconds(), 30);
    }

    #[test]
    fn leading_zeros_are_kept() {
        // RFC 4226 Appendix D, count 7: truncated 82162583 -> "162583"; and
        // with 8 digits the leading zero stays: "82162583". Find a code
        // with a leading zero among the first counters and check its width.
        let key = b"12345678901234567890";
        let mut seen_zero = false;
        for c in 0..200 {
            let code = hotp(key, c, Algorithm::Sha1, Digits::SIX).unwrap();
            assert_eq!(code.expose_str().len(), 6);
            seen_zero |= code.expose_str().starts_with('0');
        }
        assert!(seen_zero);
    }

    #[test]
    fn debug_is_redacted() {
        let code = hotp(b"12345678901234567890", 0, Algorithm::Sha1, Digits::SIX).unwrap();
        assert_eq!(code.expose_str(), "755224");
        assert_eq!(format!("{code:?}"), "Code(<redacted>)");
    }
}
