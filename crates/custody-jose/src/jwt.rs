//! JSON Web Tokens (RFC 7519) signed as compact JWS: the claim set and
//! its checks.
//!
//! The claims are a strict JSON object (no member twice). The registered
//! claims are type-checked whenever present: `exp`, `nbf` and `iat` are a
//! NumericDate, here a **non-negative integer** number of seconds (a
//! fraction, an exponent, a negative number or a string is
//! [`JoseError::Malformed`]); `iss`, `sub` and `jti` are strings; `aud` is
//! a string or an array of strings.
//!
//! [`Validation`] then checks, at its `now` with its `leeway` (at most
//! [`MAX_LEEWAY`] seconds):
//!
//! - `exp`: the token is valid while `now < exp + leeway`, and
//!   [`JoseError::Expired`] from `now == exp + leeway` on. RFC 7519 §4.1.4
//!   says the current time "MUST be before" the expiry, so the expiry
//!   second itself is refused (jwcrypto and jsonwebtoken accept it: they
//!   refuse only from `now > exp + leeway`; one second either way). A token
//!   without `exp` is [`JoseError::MissingExpiry`] unless the validation
//!   allows it;
//! - `nbf`: [`JoseError::NotYetValid`] while `now + leeway < nbf`; the
//!   `nbf` second itself is valid ("on or after", §4.1.5);
//! - `iat`: [`JoseError::IssuedInFuture`] if `iat > now + leeway`;
//! - `iss`: if an issuer is expected, exactly it ([`JoseError::WrongIssuer`]);
//! - `aud`: if an audience is expected, the claim must be it or an array
//!   containing it; if none is expected, a token with an `aud` is refused
//!   (RFC 7519 §4.1.3: a principal that does not find itself in `aud` must
//!   reject the token); both [`JoseError::WrongAudience`].

use serde_json::{Map, Value};

use crate::JoseError;
use crate::jwk::JwkSet;
use crate::jws::{CompactJws, Header, MAX_TOKEN_BYTES};

/// The largest leeway a [`Validation`] accepts, in seconds (5 minutes).
pub const MAX_LEEWAY: u64 = 300;

/// What a JWT's claims are checked against. Built with [`Validation::new`]
/// and the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    now: u64,
    leeway: u64,
    audience: Option<String>,
    issuer: Option<String>,
    require_exp: bool,
}

impl Validation {
    /// A validation at `now` (seconds since the Unix epoch): no leeway, no
    /// expected audience or issuer, `exp` required.
    #[must_use]
    pub fn new(now: u64) -> Self {
        Self {
            now,
            leeway: 0,
            audience: None,
            issuer: None,
            require_exp: true,
        }
    }

    /// The same validation with `leeway` seconds of clock skew allowed.
    ///
    /// # Errors
    /// [`JoseError::LeewayTooLarge`] above [`MAX_LEEWAY`].
    pub fn with_leeway(mut self, leeway: u64) -> Result<Self, JoseError> {
        if leeway > MAX_LEEWAY {
            return Err(JoseError::LeewayTooLarge);
        }
        self.leeway = leeway;
        Ok(self)
    }

    /// The same validation expecting `audience` in `aud`.
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The same validation expecting `issuer` as `iss`.
    #[must_use]
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// The same validation with `exp` required (`true`, the default) or
    /// optional.
    #[must_use]
    pub fn with_require_exp(mut self, require_exp: bool) -> Self {
        self.require_exp = require_exp;
        self
    }

    /// The time checked at.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The leeway, in seconds.
    #[must_use]
    pub fn leeway(&self) -> u64 {
        self.leeway
    }

    /// The expected audience, if any.
    #[must_use]
    pub fn audience(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The expected issuer, if any.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// Whether `exp` is required.
    #[must_use]
    pub fn require_exp(&self) -> bool {
        self.require_exp
    }
}

/// A JWT claim set whose registered claims are well typed (see the
/// [module](self) docs); not yet validated against a time or audience.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    members: Map<String, Value>,
}

impl Claims {
    /// Reads a claim set from strict JSON.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] for anything but a JSON object of at most
    /// [`MAX_TOKEN_BYTES`] whose registered claims have their types.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JoseError> {
        let members = crate::jwk::object(bytes, MAX_TOKEN_BYTES, "JWT claims")?;
        for (name, what) in [("exp", "JWT exp"), ("nbf", "JWT nbf"), ("iat", "JWT iat")] {
            numeric_date(&members, name, what)?;
        }
        for (name, what) in [("iss", "JWT iss"), ("sub", "JWT sub"), ("jti", "JWT jti")] {
            if members.get(name).is_some_and(|v| !v.is_string()) {
                return Err(JoseError::Malformed { what });
            }
        }
        match members.get("aud") {
            None | Some(Value::String(_)) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
            Some(_) => return Err(JoseError::Malformed { what: "JWT aud" }),
        }
        Ok(Self { members })
    }

    /// Checks the claims against `validation` (see the [module](self) docs).
    ///
    /// # Errors
    /// [`JoseError::MissingExpiry`], [`JoseError::Expired`],
    /// [`JoseError::NotYetValid`], [`JoseError::IssuedInFuture`],
    /// [`JoseError::WrongIssuer`], [`JoseError::WrongAudience`], in that
    /// order of checks.
    pub fn validate(&self, validation: &Validation) -> Result<(), JoseError> {
        let (now, leeway) = (validation.now, validation.leeway);
        match self.exp() {
            None if validation.require_exp => return Err(JoseError::MissingExpiry),
            Some(exp) if now >= exp.saturating_add(leeway) => return Err(JoseError::Expired),
            _ => {}
        }
        if self
            .nbf()
            .is_some_and(|nbf| now.saturating_add(leeway) < nbf)
        {
            return Err(JoseError::NotYetValid);
        }
        if self
            .iat()
            .is_some_and(|iat| iat > now.saturating_add(leeway))
        {
            return Err(JoseError::IssuedInFuture);
        }
        if let Some(issuer) = &validation.issuer
            && self.iss() != Some(issuer.as_str())
        {
            return Err(JoseError::WrongIssuer);
        }
        let aud = self.members.get("aud");
        let audience_ok = match (&validation.audience, aud) {
            (None, None) => true,
            (None, Some(_)) | (Some(_), None) => false,
            (Some(expected), Some(Value::String(aud))) => aud == expected,
            (Some(expected), Some(Value::Array(auds))) => {
                auds.iter().any(|a| a.as_str() == Some(expected.as_str()))
            }
            (Some(_), Some(_)) => false,
        };
        if !audience_ok {
            return Err(JoseError::WrongAudience);
        }
        Ok(())
    }

    /// `exp`, if present.
    #[must_use]
    pub fn exp(&self) -> Option<u64> {
        self.members.get("exp").and_then(Value::as_u64)
    }

    /// `nbf`, if present.
    #[must_use]
    pub fn nbf(&self) -> Option<u64> {
        self.members.get("nbf").and_then(Value::as_u64)
    }

    /// `iat`, if present.
    #[must_use]
    pub fn iat(&self) -> Option<u64> {
        self.members.get("iat").and_then(Value::as_u64)
    }

    /// `iss`, if present.
    #[must_use]
    pub fn iss(&self) -> Option<&str> {
        self.members.get("iss").and_then(Value::as_str)
    }

    /// `sub`, if present.
    #[must_use]
    pub fn sub(&self) -> Option<&str> {
        self.members.get("sub").and_then(Value::as_str)
    }

    /// `jti`, if present.
    #[must_use]
    pub fn jti(&self) -> Option<&str> {
        self.members.get("jti").and_then(Value::as_str)
    }

    /// `aud` as a list (one element for a string), empty if absent.
    #[must_use]
    pub fn aud(&self) -> Vec<&str> {
        match self.members.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }

    /// Any claim by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members.get(name)
    }

    /// Every claim.
    #[must_use]
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }
}

/// Checks that the claim `name`, if present, is a non-negative integer.
fn numeric_date(
    members: &Map<String, Value>,
    name: &str,
    what: &'static str,
) -> Result<(), JoseError> {
    match members.get(name) {
        None => Ok(()),
        Some(v) if v.as_u64().is_some() => Ok(()),
        Some(_) => Err(JoseError::Malformed { what }),
    }
}

/// A verified and validated JWT.
#[derive(Debug, Clone, PartialEq)]
pub struct Jwt {
    header: Header,
    claims: Claims,
}

impl Jwt {
    /// The protected header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The claims.
    #[must_use]
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
}

/// Verifies `token` as a JWS against `keys` (see [`crate::jws`]), reads its
/// payload as [`Claims`] and validates them.
///
/// # Errors
/// Those of [`CompactJws::parse`], [`CompactJws::verify`],
/// [`Claims::from_json`] and [`Claims::validate`], in that order: no claim
/// is read before the signature verified.
pub fn verify(token: &str, keys: &JwkSet, validation: &Validation) -> Result<Jwt, JoseError> {
    let (header, payload) = CompactJws::parse(token)?.verify(keys)?.into_parts();
    let claims = Claims::from_json(&payload)?;
    claims.validate(validation)?;
    Ok(Jwt { header, claims })
}
