//! [`TotpConfig`]: issuer, code parameters, skew window, lockout and the
//! wallet scheme of a [`crate::TotpRegistry`].

use custody_core::WalletScheme;

use crate::{Error, MAX_SECRET_BYTES, TotpParams};

/// The issuer written into enrolment URIs unless configured otherwise.
pub const DEFAULT_ISSUER: &str = "custody";
/// Longest wallet name that can be enrolled, in bytes of UTF-8 (the name is
/// bound into the secret's encryption context, which is capped at 8 KiB);
/// also the longest label of a key enrolment.
pub const MAX_WALLET_NAME_BYTES: usize = 1024;
/// Largest skew window, in steps either side of the current one.
pub const MAX_SKEW_STEPS: u8 = 10;
/// Shortest secret an enrolment generates: 160 bits (RFC 4226 section 4
/// recommends 160; imports may be as short as 128, the RFC's minimum).
pub const MIN_ENROL_SECRET_BYTES: usize = 20;

/// How repeated wrong codes lock a wallet.
///
/// After `max_failures` consecutive wrong codes the wallet is locked for
/// `base_secs`; every further wrong code once a lock has expired locks it
/// again for twice as long as the previous lock, up to `max_secs`. A valid
/// code resets the count and the back-off. Replayed codes and missing codes
/// do not count. While locked, every code (even a valid one) is refused
/// without being checked.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Consecutive wrong codes before the first lock (default 5).
    pub max_failures: u32,
    /// The first lock's length in seconds (default 30).
    pub base_secs: u64,
    /// The longest lock in seconds (default 3600).
    pub max_secs: u64,
}

impl Default for Lockout {
    fn default() -> Self {
        Self {
            max_failures: 5,
            base_secs: 30,
            max_secs: 3600,
        }
    }
}

impl Lockout {
    /// The length of the `level`-th lock in a row (1 for the first):
    /// `min(base_secs * 2^(level-1), max_secs)`.
    #[must_use]
    pub fn duration(&self, level: u32) -> u64 {
        let doublings = level.saturating_sub(1);
        let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
        self.base_secs.saturating_mul(factor).min(self.max_secs)
    }
}

/// Configuration of a [`crate::TotpRegistry`]. Start from
/// [`TotpConfig::new`] and set fields:
///
/// ```
/// # use custody_totp::TotpConfig;
/// # use custody_core::WalletScheme;
/// let mut config = TotpConfig::new(WalletScheme::Fortanix);
/// config.issuer = "ACME Custody".into();
/// config.skew_steps = 5; // what the Fortanix plugin accepts
/// config.lockout.max_failures = 3;
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpConfig {
    /// The issuer shown by authenticator apps (no `:`; default `custody`).
    pub issuer: String,
    /// Algorithm, digits and period of new enrolments (default SHA-1, 6
    /// digits, 30 s: what every authenticator app accepts).
    pub params: TotpParams,
    /// Length of generated secrets in bytes (default 20 = 160 bits; at
    /// least [`MIN_ENROL_SECRET_BYTES`], at most [`MAX_SECRET_BYTES`]).
    pub secret_bytes: usize,
    /// Steps accepted either side of the current one (default 1, as RFC
    /// 6238 section 5.2 recommends; at most [`MAX_SKEW_STEPS`]).
    pub skew_steps: u8,
    /// Lockout after wrong codes.
    pub lockout: Lockout,
    /// How wallet names map to BIP32 nodes: must be the keystore's scheme,
    /// or the gate would look for enrolled wallets at the wrong nodes. It is
    /// recorded in the state store at the first enrolment and checked on
    /// every use (a mismatch fails closed).
    pub scheme: WalletScheme,
    /// How many unwrapped secrets are kept (in zeroizing memory, keyed
    /// into their HMAC) so that a verification does not unwrap an envelope
    /// (default 1024; 0 disables the cache: every verification then costs
    /// one unwrap by the KEK backend). A cached secret is used only while
    /// the enrolment record read on each request is byte for byte the one
    /// it was unwrapped from.
    pub secret_cache: usize,
    /// How many wallet nodes' state-store keys and last decoded records
    /// (enrolment and guard: public data, no secret) are kept, so that a
    /// verification for a warm wallet hashes no path and decodes no record
    /// whose bytes have not changed (default 1024; 0 disables the cache).
    /// The same bound applies, separately, to the non-HD keys looked up by
    /// public key (see [`crate::TotpRegistry::enrol_key`]). The records are
    /// still read from the state store on every request.
    pub node_cache: usize,
}

impl TotpConfig {
    /// The defaults, for wallets mapped to nodes by `scheme`.
    #[must_use]
    pub fn new(scheme: WalletScheme) -> Self {
        Self {
            issuer: DEFAULT_ISSUER.to_owned(),
            params: TotpParams::default(),
            secret_bytes: MIN_ENROL_SECRET_BYTES,
            skew_steps: 1,
            lockout: Lockout::default(),
            scheme,
            secret_cache: 1024,
            node_cache: 1024,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), Error> {
        if self.issuer.is_empty() || self.issuer.contains(':') {
            return Err(Error::InvalidConfig(
                "issuer: must be non-empty and contain no ':'",
            ));
        }
        if !(MIN_ENROL_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&self.secret_bytes) {
            return Err(Error::InvalidConfig("secret_bytes: must be 20 to 256"));
        }
        if self.skew_steps > MAX_SKEW_STEPS {
            return Err(Error::InvalidConfig("skew_steps: at most 10"));
        }
        if self.lockout.max_failures == 0 {
            return Err(Error::InvalidConfig("lockout.max_failures: at least 1"));
        }
        if self.lockout.base_secs == 0 || self.lockout.max_secs < self.lockout.base_secs {
            return Err(Error::InvalidConfig(
                "lockout: base_secs must be positive and at most max_secs",
            ));
        }
        Ok(())
    }
}

impl Default for TotpConfig {
    fn default() -> Self {
        Self::new(WalletScheme::Default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_doubles_and_caps() {
        let l = Lockout::default();
        let got: Vec<u64> = (1..=10).map(|n| l.duration(n)).collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(l.duration(0), 30);
        assert_eq!(l.duration(u32::MAX), 3600);
    }

    #[test]
    fn validation() {
        assert!(TotpConfig::default().validate().is_ok());
        let bad: [fn(&mut TotpConfig); 7] = [
            |c| c.issuer = String::new(),
            |c| c.issuer = "a:b".into(),
            |c| c.secret_bytes = 16,
            |c| c.secret_bytes = 257,
            |c| c.skew_steps = 11,
            |c| c.lockout.max_failures = 0,
            |c| c.lockout.max_secs = 1,
        ];
        for f in bad {
            let mut c = TotpConfig::default();
            f(&mut c);
            assert!(matches!(c.validate(), Err(Error::InvalidConfig(_))));
        }
    }
}
