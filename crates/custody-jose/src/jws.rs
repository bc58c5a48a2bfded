//! JWS Compact Serialization (RFC 7515 §7.1): parsing and verification.
//!
//! A token is exactly three strict base64url parts joined by `.`, at most
//! [`MAX_TOKEN_BYTES`] long; its protected header is a strict JSON object
//! (no member twice) with a string `alg`, and neither `crit` (this crate
//! understands no extension, so any critical one is refused, RFC 7515
//! §4.1.11) nor `b64` (RFC 7797's unencoded payloads).
//!
//! Verification against a [`JwkSet`]:
//!
//! 1. the header's `alg` must be one of [`Algorithm`] (`none`, `HS256` and
//!    the rest are [`JoseError::UnsupportedAlgorithm`]);
//! 2. the key is the set's one key with the header's `kid`, or, without a
//!    `kid`, the set's only key ([`JoseError::UnknownKey`] otherwise). The
//!    `jwk`, `jku`, `x5u` and `x5c` headers are **never** used to find a key;
//! 3. **the key fixes the algorithm** ([`Jwk::verification_algorithm`]), and
//!    the header's `alg` must be it ([`JoseError::AlgorithmMismatch`]);
//! 4. the signature must verify ([`JoseError::BadSignature`]): ES256 and
//!    ES256K as JOSE `r ‖ s`, exactly 64 bytes (RFC 7518 §3.4); RS256
//!    (PKCS#1 v1.5) and PS256 (PSS, MGF1-SHA-256, 32-byte salt) exactly the
//!    modulus length; EdDSA Ed25519 with `verify_strict` (no small-order
//!    `R` or key, canonical `S`).
//!
//! **ES256K and high s.** RFC 8812 does not require a low `s`, and
//! signers (jwcrypto among them) emit both halves, while `k256` verifies
//! only low-`s` signatures (Bitcoin's malleability rule). An ES256K
//! signature is therefore normalized to low `s` before `k256` verifies it:
//! `(r, s)` and `(r, n − s)` are both accepted. A JWS signature is not a
//! transaction identifier, so its malleability is harmless here; do not
//! use the signature bytes as a token's identity (use `jti`).

use p256::ecdsa::signature::Verifier;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::JoseError;
use crate::b64;
use crate::jwk::{Jwk, JwkSet, Material};

/// Most bytes of a compact token.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The JWS algorithms this crate verifies (RFC 7518 §3, RFC 8812 §3.2,
/// RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `ES256`: ECDSA P-256 with SHA-256.
    Es256,
    /// `ES256K`: ECDSA secp256k1 with SHA-256 (high and low `s` accepted).
    Es256k,
    /// `RS256`: RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// `PS256`: RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
    Ps256,
    /// `EdDSA` with Ed25519 (strict verification).
    EdDsa,
}

impl Algorithm {
    /// Every algorithm, in a fixed order.
    pub const ALL: [Self; 5] = [
        Self::Es256,
        Self::Es256k,
        Self::Rs256,
        Self::Ps256,
        Self::EdDsa,
    ];

    /// The algorithm's `alg` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es256k => "ES256K",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm named `name` (case-sensitive), if this crate verifies it.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// A JWS protected header: a JSON object with a string `alg`.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    members: Map<String, Value>,
}

impl Header {
    /// Reads a header from its decoded bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, JoseError> {
        let members = crate::jwk::object(bytes, MAX_TOKEN_BYTES, "JWS header")?;
        if !matches!(members.get("alg"), Some(Value::String(_))) {
            return Err(JoseError::Malformed {
                what: "JWS header alg",
            });
        }
        for (name, what) in [
            ("kid", "JWS header kid"),
            ("typ", "JWS header typ"),
            ("cty", "JWS header cty"),
        ] {
            if members.get(name).is_some_and(|v| !v.is_string()) {
                return Err(JoseError::Malformed { what });
            }
        }
        if members.contains_key("crit") {
            return Err(JoseError::Malformed {
                what: "JWS header crit (no extension is understood)",
            });
        }
        if members.contains_key("b64") {
            return Err(JoseError::Malformed {
                what: "JWS header b64 (unencoded payloads are not supported)",
            });
        }
        Ok(Self { members })
    }

    /// The `alg` member, as written (possibly not an [`Algorithm`]).
    #[must_use]
    pub fn alg(&self) -> &str {
        self.members
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The `kid` member, if present.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.members.get("kid").and_then(Value::as_str)
    }

    /// The `typ` member, if present.
    #[must_use]
    pub fn typ(&self) -> Option<&str> {
        self.members.get("typ").and_then(Value::as_str)
    }

    /// Any member by name.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.members.get(name)
    }

    /// Every member.
    #[must_use]
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }
}

/// A parsed, not yet verified, compact JWS.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactJws {
    header: Header,
    header_bytes: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    /// The token's first two parts and the dot between them: the bytes signed.
    signing_input: String,
}

impl CompactJws {
    /// Parses a compact token (see the [module](self) docs). Nothing is
    /// verified; the header and payload are not to be trusted yet.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] for a token over [`MAX_TOKEN_BYTES`], not
    /// of three parts, with a part that is not strict base64url, or whose
    /// header is not a strict JSON object with a string `alg`, or has a
    /// non-string `kid`, `typ` or `cty`, or a `crit` or `b64` member.
    pub fn parse(token: &str) -> Result<Self, JoseError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JoseError::Malformed {
                what: "JWS over the size bound",
            });
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Malformed {
                what: "JWS not of three parts",
            });
        };
        let header_bytes = b64::decode(h, "JWS header base64url")?;
        let payload = b64::decode(p, "JWS payload base64url")?;
        let signature = b64::decode(s, "JWS signature base64url")?;
        let header = Header::from_bytes(&header_bytes)?;
        Ok(Self {
            header,
            header_bytes,
            payload,
            signature,
            signing_input: format!("{h}.{p}"),
        })
    }

    /// The protected header (unverified).
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The protected header's bytes, as decoded.
    #[must_use]
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }

    /// The payload (unverified).
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signature bytes.
    #[must_use]
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The JWS Signing Input: `BASE64URL(header) '.' BASE64URL(payload)`.
    #[must_use]
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The token in compact form. Base64url is read strictly, so this is
    /// exactly the text parsed.
    #[must_use]
    pub fn to_compact(&self) -> String {
        format!("{}.{}", self.signing_input, b64::encode(&self.signature))
    }

    /// Verifies the token against `keys` (see the [module](self) docs).
    ///
    /// # Errors
    /// [`JoseError::UnsupportedAlgorithm`], [`JoseError::UnknownKey`], the
    /// [`JoseError::InvalidKey`] of [`Jwk::verification_algorithm`],
    /// [`JoseError::AlgorithmMismatch`] or [`JoseError::BadSignature`], in
    /// that order of checks.
    pub fn verify(&self, keys: &JwkSet) -> Result<Verified, JoseError> {
        let alg = Algorithm::from_name(self.header.alg()).ok_or(JoseError::UnsupportedAlgorithm)?;
        let key = keys.select(self.header.kid())?;
        self.verify_as(alg, key)
    }

    /// Verifies the token with `key` alone (the header's `kid` is not
    /// consulted); otherwise as [`verify`](Self::verify).
    ///
    /// # Errors
    /// As [`verify`](Self::verify), without [`JoseError::UnknownKey`].
    pub fn verify_with_key(&self, key: &Jwk) -> Result<Verified, JoseError> {
        let alg = Algorithm::from_name(self.header.alg()).ok_or(JoseError::UnsupportedAlgorithm)?;
        self.verify_as(alg, key)
    }

    fn verify_as(&self, alg: Algorithm, key: &Jwk) -> Result<Verified, JoseError> {
        if key.verification_algorithm()? != alg {
            return Err(JoseError::AlgorithmMismatch);
        }
        verify_signature(
            key.material(),
            alg,
            self.signing_input.as_bytes(),
            &self.signature,
        )?;
        Ok(Verified {
            header: self.header.clone(),
            payload: self.payload.clone(),
        })
    }
}

/// A verified JWS: its header and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    header: Header,
    payload: Vec<u8>,
}

impl Verified {
    /// The protected header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The payload.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The header and the payload.
    #[must_use]
    pub fn into_parts(self) -> (Header, Vec<u8>) {
        (self.header, self.payload)
    }
}

/// Parses `token` and verifies it against `keys`: [`CompactJws::parse`]
/// then [`CompactJws::verify`].
///
/// # Errors
/// Those of [`CompactJws::parse`] and [`CompactJws::verify`].
pub fn verify(token: &str, keys: &JwkSet) -> Result<Verified, JoseError> {
    CompactJws::parse(token)?.verify(keys)
}

/// Any failure of a signature check, as the one opaque error.
fn bad<E>(_: E) -> JoseError {
    JoseError::BadSignature
}

/// Checks `signature` over `message` with `material` under `alg`, which
/// the caller made sure fits the key.
fn verify_signature(
    material: &Material,
    alg: Algorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), JoseError> {
    match (material, alg) {
        (Material::P256 { key, .. }, Algorithm::Es256) => {
            if signature.len() != 64 {
                return Err(JoseError::BadSignature);
            }
            let sig = p256::ecdsa::Signature::from_slice(signature).map_err(bad)?;
            key.verify(message, &sig).map_err(bad)
        }
        (Material::Secp256k1 { key, .. }, Algorithm::Es256k) => {
            if signature.len() != 64 {
                return Err(JoseError::BadSignature);
            }
            let sig = k256::ecdsa::Signature::from_slice(signature).map_err(bad)?;
            // High s is valid ES256K (see the module docs); k256 wants low s.
            key.verify(message, &sig.normalize_s()).map_err(bad)
        }
        (Material::Rsa { key, .. }, Algorithm::Rs256) => {
            let digest = Sha256::digest(message);
            key.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest, signature)
                .map_err(bad)
        }
        (Material::Rsa { key, .. }, Algorithm::Ps256) => {
            let digest = Sha256::digest(message);
            key.verify(rsa::Pss::<Sha256>::new_with_salt(32), &digest, signature)
                .map_err(bad)
        }
        (Material::Ed25519 { key, .. }, Algorithm::EdDsa) => {
            let bytes: &[u8; 64] = signature.try_into().map_err(bad)?;
            key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(bytes))
                .map_err(bad)
        }
        _ => Err(JoseError::AlgorithmMismatch),
    }
}
