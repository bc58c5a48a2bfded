//! otpauth URIs (Google's "Key Uri Format"), as authenticator apps scan
//! them.
//!
//! See [`OtpAuthUri`] for the form written and the rules of reading.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use custody_core::SecretVec;
use zeroize::Zeroizing;

use crate::{Algorithm, Digits, Error, Period, TotpParams, base32, percent};

/// Longest otpauth URI [`OtpAuthUri::parse`] reads, in bytes.
pub const MAX_URI_LEN: usize = 4096;
/// Shortest secret accepted: 128 bits (RFC 4226 section 4, requirement R6).
pub const MIN_SECRET_BYTES: usize = 16;
/// Longest secret accepted, in bytes.
pub const MAX_SECRET_BYTES: usize = 256;

/// A parsed (or to-be-written) otpauth TOTP URI (Google's "Key Uri
/// Format"). Holds the shared secret: wiped on drop, redacted in `Debug`.
///
/// The form authenticator apps scan:
///
/// ```text
/// otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
/// ```
///
/// # Writing
/// The issuer and the account are percent-encoded with [`crate::percent`]:
/// every byte but `A–Z a–z 0–9 - . _ ~` becomes `%XX`, so an e-mail's `@`
/// is `%40`, a space `%20`, a `:` *inside* a wallet name `%3A` and any other
/// UTF-8 its escaped bytes. The one literal `:` in the label is the
/// separator, and the issuer may not contain `:` at all, so a parser that
/// splits the label at its first `:` (raw or decoded) gets both parts back.
/// All parameters are written, in the order above, with the secret as
/// unpadded upper-case base32. Google Authenticator, Authy and 1Password
/// read this form; with the default parameters (SHA1, 6 digits, 30 s) they
/// also compute the same codes (some apps ignore `algorithm`, `digits` or
/// `period`).
///
/// # Reading
/// [`OtpAuthUri::parse`] is strict and gives a typed [`Error`] for each
/// defect: a scheme other than `otpauth` ([`Error::BadScheme`]), type `hotp`
/// ([`Error::UnsupportedType`]) or anything but `totp` ([`Error::BadType`]),
/// a missing or empty account ([`Error::MissingAccount`]), a missing or
/// invalid base32 secret ([`Error::MissingSecret`], [`Error::InvalidSecret`]),
/// a secret under 128 bits ([`Error::SecretTooShort`], RFC 4226 R6) or over
/// [`MAX_SECRET_BYTES`], an unknown algorithm, digits outside 6..=8, a
/// period of 0 or not a number, a label issuer that differs from the
/// `issuer` parameter ([`Error::IssuerMismatch`]), bad percent-encoding, a
/// parameter given twice ([`Error::DuplicateParameter`]), a fragment, a
/// character outside printable ASCII, or more than [`MAX_URI_LEN`] bytes.
/// Unknown parameters (`image`, ...) are ignored; empty ones (`&&`) skipped.
/// `+` is a literal plus (RFC 3986), not a space. When the label has no
/// literal `:` but its decoded form starts with `ISSUER:` for the `issuer`
/// parameter's value, that prefix is taken as the issuer (the Key Uri Format
/// allows the separator to be written `%3A`).
pub struct OtpAuthUri {
    issuer: Option<String>,
    account: String,
    secret: SecretVec,
    params: TotpParams,
}

/// Parses an otpauth URI: the entry point for fuzzing.
///
/// # Errors
/// See [`OtpAuthUri::parse`].
pub fn parse_otpauth_uri(uri: &str) -> Result<OtpAuthUri, Error> {
    OtpAuthUri::parse(uri)
}

fn check_issuer(issuer: &str) -> Result<(), Error> {
    if issuer.is_empty() {
        return Err(Error::InvalidIssuer("the issuer is empty"));
    }
    if issuer.contains(':') {
        return Err(Error::InvalidIssuer("the issuer contains ':'"));
    }
    Ok(())
}

fn check_secret_len(len: usize) -> Result<(), Error> {
    if len == 0 {
        Err(Error::MissingSecret)
    } else if len < MIN_SECRET_BYTES {
        Err(Error::SecretTooShort)
    } else if len > MAX_SECRET_BYTES {
        Err(Error::SecretTooLong)
    } else {
        Ok(())
    }
}

/// A strict decimal: 1 to `max_len` ASCII digits, no sign, no spaces.
fn decimal(text: &str, max_len: usize) -> Option<u64> {
    if text.is_empty() || text.len() > max_len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The known parameters of a query, percent-decoded.
#[derive(Default)]
struct Query {
    secret: Option<Zeroizing<String>>,
    issuer: Option<String>,
    algorithm: Option<String>,
    digits: Option<String>,
    period: Option<String>,
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), Error> {
    if slot.is_some() {
        return Err(Error::DuplicateParameter(name));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_query(query: &str) -> Result<Query, Error> {
    let mut q = Query::default();
    let mut others = BTreeSet::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or(Error::MalformedUri("a query parameter has no '='"))?;
        let name = percent::decode(name)?;
        match name.as_str() {
            "secret" => set_once(
                &mut q.secret,
                Zeroizing::new(percent::decode(value)?),
                "secret",
            )?,
            "issuer" => set_once(&mut q.issuer, percent::decode(value)?, "issuer")?,
            "algorithm" => set_once(&mut q.algorithm, percent::decode(value)?, "algorithm")?,
            "digits" => set_once(&mut q.digits, percent::decode(value)?, "digits")?,
            "period" => set_once(&mut q.period, percent::decode(value)?, "period")?,
            _ => {
                percent::decode(value)?;
                if !others.insert(name) {
                    return Err(Error::DuplicateParameter("(an unknown parameter)"));
                }
            }
        }
    }
    Ok(q)
}

impl OtpAuthUri {
    /// A URI for `account` (e.g. a wallet name), with an optional issuer.
    ///
    /// # Errors
    /// [`Error::InvalidIssuer`] if the issuer is empty or contains `:`;
    /// [`Error::MissingAccount`] if the account is empty;
    /// [`Error::MissingSecret`], [`Error::SecretTooShort`] or
    /// [`Error::SecretTooLong`] for a secret outside 16..=256 bytes.
    pub fn new(
        issuer: Option<&str>,
        account: &str,
        secret: SecretVec,
        params: TotpParams,
    ) -> Result<Self, Error> {
        if let Some(issuer) = issuer {
            check_issuer(issuer)?;
        }
        if account.is_empty() {
            return Err(Error::MissingAccount);
        }
        check_secret_len(secret.len())?;
        Ok(Self {
            issuer: issuer.map(str::to_owned),
            account: account.to_owned(),
            secret,
            params,
        })
    }

    /// Parses an otpauth TOTP URI strictly (see [`OtpAuthUri`] for the rules).
    ///
    /// # Errors
    /// One typed error per defect, as listed on [`OtpAuthUri`].
    pub fn parse(uri: &str) -> Result<Self, Error> {
        if uri.len() > MAX_URI_LEN {
            return Err(Error::UriTooLong);
        }
        if !uri.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
            return Err(Error::MalformedUri(
                "an otpauth URI is printable ASCII without spaces",
            ));
        }
        let (scheme, rest) = uri.split_once(':').ok_or(Error::BadScheme)?;
        if !scheme.eq_ignore_ascii_case("otpauth") {
            return Err(Error::BadScheme);
        }
        let rest = rest
            .strip_prefix("//")
            .ok_or(Error::MalformedUri("expected '//' after 'otpauth:'"))?;
        if rest.contains('#') {
            return Err(Error::MalformedUri("a fragment ('#') is not allowed"));
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((before, query)) => (before, query),
            None => (rest, ""),
        };
        let (kind, label) = before_query.split_once('/').unwrap_or((before_query, ""));
        if kind.eq_ignore_ascii_case("hotp") {
            return Err(Error::UnsupportedType);
        }
        if !kind.eq_ignore_ascii_case("totp") {
            return Err(Error::BadType);
        }
        let query = parse_query(query)?;

        // The label: ISSUER:ACCOUNT, split at the first literal ':'.
        let (mut issuer, mut account) = match label.split_once(':') {
            Some((issuer, account)) => (Some(percent::decode(issuer)?), percent::decode(account)?),
            None => (None, percent::decode(label)?),
        };
        if issuer.is_none()
            && let Some(param) = &query.issuer
            && let Some(rest) = account
                .strip_prefix(param.as_str())
                .and_then(|r| r.strip_prefix(':'))
        {
            // The separator was written as %3A.
            let rest = rest.to_owned();
            issuer = Some(param.clone());
            account = rest;
        }
        if let Some(label_issuer) = &issuer {
            check_issuer(label_issuer)?;
        }
        if let Some(param) = &query.issuer {
            check_issuer(param)?;
            if issuer
                .as_ref()
                .is_some_and(|label_issuer| label_issuer != param)
            {
                return Err(Error::IssuerMismatch);
            }
            issuer = Some(param.clone());
        }
        if account.is_empty() {
            return Err(Error::MissingAccount);
        }

        let secret_text = query.secret.ok_or(Error::MissingSecret)?;
        let secret = base32::decode(&secret_text)?;
        check_secret_len(secret.len())?;
        let algorithm = match &query.algorithm {
            Some(name) => Algorithm::from_name(name)?,
            None => Algorithm::default(),
        };
        let digits = match &query.digits {
            Some(text) => {
                let n = decimal(text, 3).ok_or(Error::InvalidDigits)?;
                Digits::new(u8::try_from(n).map_err(|_| Error::InvalidDigits)?)?
            }
            None => Digits::default(),
        };
        let period = match &query.period {
            Some(text) => Period::new(decimal(text, 20).ok_or(Error::InvalidPeriod)?)?,
            None => Period::default(),
        };
        Ok(Self {
            issuer,
            account,
            secret: SecretVec::from_slice(&secret),
            params: TotpParams {
                algorithm,
                digits,
                period,
            },
        })
    }

    /// The issuer, if any.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The account name (for our enrolments, the wallet name).
    #[must_use]
    pub fn account(&self) -> &str {
        &self.account
    }

    /// Algorithm, digits and period.
    #[must_use]
    pub fn params(&self) -> TotpParams {
        self.params
    }

    /// The shared secret. Key material: keep the borrow short.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        self.secret.expose_secret()
    }

    /// The shared secret as unpadded base32 (what users type in by hand).
    /// Key material.
    #[must_use]
    pub fn secret_base32(&self) -> Zeroizing<String> {
        base32::encode(self.secret.expose_secret())
    }

    /// The URI text (see [`OtpAuthUri`] for the form). It holds
    /// the secret: show it once, to the user enrolling.
    #[must_use]
    pub fn to_uri(&self) -> Zeroizing<String> {
        let secret = self.secret_base32();
        let issuer = self.issuer.as_deref().map(percent::encode);
        let account = percent::encode(&self.account);
        let mut out = Zeroizing::new(String::with_capacity(
            96 + secret.len() + account.len() + 2 * issuer.as_ref().map_or(0, String::len),
        ));
        out.push_str("otpauth://totp/");
        if let Some(issuer) = &issuer {
            out.push_str(issuer);
            out.push(':');
        }
        out.push_str(&account);
        out.push_str("?secret=");
        out.push_str(&secret);
        if let Some(issuer) = &issuer {
            out.push_str("&issuer=");
            out.push_str(issuer);
        }
        out.push_str("&algorithm=");
        out.push_str(self.params.algorithm.as_str());
        out.push_str("&digits=");
        out.push_str(&self.params.digits.get().to_string());
        out.push_str("&period=");
        out.push_str(&self.params.period.seconds().to_string());
        out
    }
}

impl FromStr for OtpAuthUri {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Debug for OtpAuthUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpAuthUri")
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .field("params", &self.params)
            .field("secret", &"<redacted>")
            .finish()
    }
}
