//! Sealed secrets: JWE Compact Serialization (RFC 7516 §7.1) bound to a
//! **scope**, sealed to a public key and opened through the `KeyBackend`
//! seam.
//!
//! # What is accepted
//! A compact JWE is exactly five strict base64url parts joined by `.`
//! (header, encrypted key, IV, ciphertext, tag), at most [`MAX_JWE_BYTES`]
//! long. Its protected header is a strict JSON object (no member twice) of
//! at most [`MAX_HEADER_BYTES`] with:
//!
//! - `alg` one of [`JweAlgorithm`]: `RSA-OAEP-256`, `ECDH-ES`,
//!   `ECDH-ES+A256KW` (anything else is
//!   [`JoseError::UnsupportedAlgorithm`]);
//! - `enc` exactly `A256GCM`;
//! - for the ECDH algorithms, `epk` a P-256 public key
//!   (`{"kty":"EC","crv":"P-256","x","y"}`, 32-byte coordinates, the point
//!   **on P-256**: a point of another curve, off the curve or the identity
//!   is refused before any private-key operation, the check whose absence
//!   let invalid-curve attacks recover keys from go-jose, node-jose and
//!   Nimbus), and optional `apu`/`apv` (base64url, at most
//!   [`MAX_PARTY_INFO_BYTES`] each); for `RSA-OAEP-256`, no `epk`;
//! - `scope` (a [`Scope`]), listed in `crit`, and `crit` exactly
//!   `["scope"]`: no other critical extension is understood;
//! - no `zip` (compression before encryption leaks the plaintext's
//!   content through its length);
//! - optional `kid`, `typ`, `cty` strings; other members are ignored (they
//!   are authenticated as AAD all the same).
//!
//! The encrypted key is **empty** for `ECDH-ES` (a non-empty one is
//! refused: jwcrypto#391), 40 bytes for `ECDH-ES+A256KW`, 256 to 1024
//! bytes for `RSA-OAEP-256`; the IV 12 bytes, the tag 16, the ciphertext at
//! most [`MAX_PLAINTEXT_BYTES`].
//!
//! # Sealing
//! [`seal`] encrypts to a [`Recipient`] (a public JWK): a fresh 256-bit
//! content key (CEK) and 96-bit IV from the OS generator, AES-256-GCM with
//! the ASCII protected header as AAD (RFC 7516 §5.1). `ECDH-ES` derives
//! the CEK with the Concat KDF (RFC 7518 §4.6.2; AlgorithmID `A256GCM`,
//! keydatalen 256) from a fresh ephemeral P-256 key; `ECDH-ES+A256KW`
//! derives a key-wrapping key (AlgorithmID `ECDH-ES+A256KW`, keydatalen
//! 256) and wraps a random CEK with AES Key Wrap (RFC 3394);
//! `RSA-OAEP-256` encrypts the CEK with RSAES-OAEP (SHA-256, MGF1-SHA-256,
//! empty label: byte for byte what KMS `RSAES_OAEP_SHA_256` decrypts).
//! The header is written members sorted, with the recipient's RFC 7638
//! thumbprint as `kid`.
//!
//! # Opening
//! [`open`] never sees a private key: the one private-key operation goes
//! through [`custody_core::DecryptingBackend`] as a
//! [`custody_core::DecryptRequest`] with intent
//! [`custody_core::IntentKind::Unseal`] (the parsed header as its detail,
//! [`UnsealDetail`], and the scope as the audit note `scope`), so the TOTP
//! and policy gates see it and the audit layer records it (op `decrypt`).
//! The request's **digest is the SHA-256 of the whole compact JWE** as
//! given: the record names exactly what was opened.
//!
//! The scope is checked **before** the backend is asked
//! ([`OpenError::ScopeMismatch`]): a secret sealed for one service is
//! never opened as another's. Every failure of the decryption itself (a
//! wrong key, a bad tag, a CEK of the wrong length, a bad OAEP padding or
//! key wrap) is the one opaque [`OpenError::DecryptionFailed`]; a parse
//! error ([`OpenError::Jose`]) and a gate's refusal or a backend failure
//! ([`OpenError::Backend`], e.g. a TOTP or policy denial) stay distinct.
//! The CEK and the plaintext live in zeroizing memory.

use std::fmt;

use aes_gcm::aead::Nonce;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit, Tag};
use aes_kw::KwAes256;
use custody_core::{
    AnyPublicKey, Authorization, DecryptRequest, Decryption, Digest32, Intent, IntentKind,
    KeyBackend, P256PublicKey, Pending, PinnedKey, SecretVec,
};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::jwk::{self, Material};
use crate::{JoseError, Jwk, b64, kdf};

/// Most bytes of a compact JWE.
pub const MAX_JWE_BYTES: usize = 256 * 1024;
/// Most bytes of the decoded protected header.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Most bytes of a decoded `apu` or `apv`.
pub const MAX_PARTY_INFO_BYTES: usize = 512;
/// Most bytes of plaintext (and so of ciphertext) a sealed secret holds.
pub const MAX_PLAINTEXT_BYTES: usize = 128 * 1024;
/// Longest [`Scope`], in bytes.
pub const MAX_SCOPE_BYTES: usize = 128;

/// The one content-encryption algorithm (RFC 7518 §5.3).
pub const ENC: &str = "A256GCM";

const CEK_LEN: usize = 32;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const WRAPPED_CEK_LEN: usize = CEK_LEN + 8;
const MIN_RSA_CIPHERTEXT: usize = crate::jwk::MIN_RSA_BITS / 8;
const MAX_RSA_CIPHERTEXT: usize = crate::jwk::MAX_RSA_BITS / 8;

/// The key-management algorithms of a sealed secret (RFC 7518 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JweAlgorithm {
    /// `RSA-OAEP-256`: RSAES-OAEP, SHA-256, MGF1-SHA-256 (RFC 7518 §4.3).
    RsaOaep256,
    /// `ECDH-ES` on P-256, direct key agreement (RFC 7518 §4.6).
    EcdhEs,
    /// `ECDH-ES+A256KW` on P-256: the agreed key wraps the CEK.
    EcdhEsA256kw,
}

impl JweAlgorithm {
    /// Every algorithm, in a fixed order.
    pub const ALL: [Self; 3] = [Self::RsaOaep256, Self::EcdhEs, Self::EcdhEsA256kw];

    /// The `alg` name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::RsaOaep256 => "RSA-OAEP-256",
            Self::EcdhEs => "ECDH-ES",
            Self::EcdhEsA256kw => "ECDH-ES+A256KW",
        }
    }

    /// The algorithm named `name`, if it is one of these.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    fn is_ecdh(self) -> bool {
        matches!(self, Self::EcdhEs | Self::EcdhEsA256kw)
    }
}

/// The service and purpose a secret is sealed for, e.g.
/// `importer/api-keys`: two non-empty segments of `a-z`, `0-9`, `.`, `_`,
/// `-` (the first character of each a letter or digit) joined by one `/`,
/// at most [`MAX_SCOPE_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(String);

impl Scope {
    /// Checks `scope`.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] if it is not of the form above.
    pub fn new(scope: &str) -> Result<Self, JoseError> {
        let bad = JoseError::Malformed {
            what: "scope (service/purpose)",
        };
        if scope.len() > MAX_SCOPE_BYTES {
            return Err(bad);
        }
        let Some((service, purpose)) = scope.split_once('/') else {
            return Err(bad);
        };
        let segment = |s: &str| {
            s.bytes()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && s.bytes().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
                })
        };
        if segment(service) && segment(purpose) {
            Ok(Self(scope.to_owned()))
        } else {
            Err(bad)
        }
    }

    /// The scope as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The protected header of a parsed JWE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JweHeader {
    alg: JweAlgorithm,
    kid: Option<String>,
    scope: Option<Scope>,
    epk: Option<P256PublicKey>,
    apu: Vec<u8>,
    apv: Vec<u8>,
    members: Map<String, Value>,
}

impl JweHeader {
    /// The key-management algorithm.
    #[must_use]
    pub fn alg(&self) -> JweAlgorithm {
        self.alg
    }

    /// The `kid`, if any.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The `scope`, if any (opening requires one).
    #[must_use]
    pub fn scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    /// The ephemeral public key (ECDH algorithms only), a validated P-256
    /// point.
    #[must_use]
    pub fn epk(&self) -> Option<&P256PublicKey> {
        self.epk.as_ref()
    }

    /// The decoded `apu` (empty when absent).
    #[must_use]
    pub fn apu(&self) -> &[u8] {
        &self.apu
    }

    /// The decoded `apv` (empty when absent).
    #[must_use]
    pub fn apv(&self) -> &[u8] {
        &self.apv
    }

    /// Every member, as read.
    #[must_use]
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }
}

/// A parsed compact JWE (see the [module](self) docs for what is accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactJwe {
    protected: String,
    header: JweHeader,
    encrypted_key: Vec<u8>,
    iv: [u8; IV_LEN],
    ciphertext: Vec<u8>,
    tag: [u8; TAG_LEN],
}

impl CompactJwe {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] for anything but five strict base64url
    /// parts within the bounds, a header that is not a strict JSON object,
    /// a `zip`, a `crit` other than `["scope"]`, a missing or misplaced
    /// `epk`, or an encrypted key, IV or tag of the wrong length;
    /// [`JoseError::UnsupportedAlgorithm`] for another `alg` or `enc`;
    /// [`JoseError::InvalidKey`] for an `epk` not on P-256.
    pub fn parse(text: &str) -> Result<Self, JoseError> {
        if text.len() > MAX_JWE_BYTES {
            return Err(JoseError::Malformed { what: "JWE size" });
        }
        let mut parts = text.split('.');
        let (Some(h), Some(k), Some(i), Some(c), Some(t), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(JoseError::Malformed {
                what: "JWE (not five parts)",
            });
        };
        if h.len() > MAX_HEADER_BYTES.div_ceil(3) * 4 {
            return Err(JoseError::Malformed {
                what: "JWE header size",
            });
        }
        let header_bytes = b64::decode(h, "JWE header base64url")?;
        let members = jwk::object(&header_bytes, MAX_HEADER_BYTES, "JWE header")?;
        let header = read_header(members)?;
        let encrypted_key = b64::decode(k, "JWE encrypted key")?;
        let key_ok = match header.alg {
            // jwcrypto#391: a direct agreement has no encrypted key.
            JweAlgorithm::EcdhEs => encrypted_key.is_empty(),
            JweAlgorithm::EcdhEsA256kw => encrypted_key.len() == WRAPPED_CEK_LEN,
            JweAlgorithm::RsaOaep256 => {
                (MIN_RSA_CIPHERTEXT..=MAX_RSA_CIPHERTEXT).contains(&encrypted_key.len())
            }
        };
        if !key_ok {
            return Err(JoseError::Malformed {
                what: "JWE encrypted key length for its alg",
            });
        }
        let iv = b64::decode(i, "JWE IV")?
            .try_into()
            .map_err(|_| JoseError::Malformed {
                what: "JWE IV (not 96 bits)",
            })?;
        let ciphertext = b64::decode(c, "JWE ciphertext")?;
        if ciphertext.len() > MAX_PLAINTEXT_BYTES {
            return Err(JoseError::Malformed {
                what: "JWE ciphertext size",
            });
        }
        let tag = b64::decode(t, "JWE tag")?
            .try_into()
            .map_err(|_| JoseError::Malformed {
                what: "JWE tag (not 128 bits)",
            })?;
        Ok(Self {
            protected: h.to_owned(),
            header,
            encrypted_key,
            iv,
            ciphertext,
            tag,
        })
    }

    /// The protected header.
    #[must_use]
    pub fn header(&self) -> &JweHeader {
        &self.header
    }

    /// The encrypted key (empty for `ECDH-ES`).
    #[must_use]
    pub fn encrypted_key(&self) -> &[u8] {
        &self.encrypted_key
    }

    /// The ciphertext.
    #[must_use]
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The initialization vector.
    #[must_use]
    pub fn iv(&self) -> &[u8; IV_LEN] {
        &self.iv
    }

    /// The authentication tag.
    #[must_use]
    pub fn tag(&self) -> &[u8; TAG_LEN] {
        &self.tag
    }

    /// The protected header as it travels (base64url): the AAD of the
    /// content encryption.
    #[must_use]
    pub fn protected(&self) -> &str {
        &self.protected
    }

    /// The JWE in compact form: the very text it was parsed from.
    #[must_use]
    pub fn to_compact(&self) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            self.protected,
            b64::encode(&self.encrypted_key),
            b64::encode(&self.iv),
            b64::encode(&self.ciphertext),
            b64::encode(&self.tag)
        )
    }

    /// SHA-256 of the compact JWE: the digest its unseal request carries.
    #[must_use]
    pub fn digest(&self) -> Digest32 {
        Digest32(Sha256::digest(self.to_compact().as_bytes()).into())
    }

    /// Decrypts the content with `cek`; the tag is checked first.
    fn decrypt_content(&self, cek: &[u8]) -> Result<SecretVec, OpenError> {
        let cek: &[u8; CEK_LEN] = cek.try_into().map_err(|_| OpenError::DecryptionFailed)?;
        let cipher = Aes256Gcm::new(cek.into());
        let nonce: &Nonce<Aes256Gcm> = (&self.iv).into();
        let mut buffer = Zeroizing::new(self.ciphertext.clone());
        cipher
            .decrypt_inout_detached(
                nonce,
                self.protected.as_bytes(),
                buffer.as_mut_slice().into(),
                &Tag::from(self.tag),
            )
            .map_err(|_| OpenError::DecryptionFailed)?;
        Ok(SecretVec::from_slice(&buffer))
    }
}

/// The string member `name`, if present.
fn string<'a>(
    members: &'a Map<String, Value>,
    name: &str,
    what: &'static str,
) -> Result<Option<&'a str>, JoseError> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JoseError::Malformed { what }),
    }
}

fn read_header(members: Map<String, Value>) -> Result<JweHeader, JoseError> {
    let alg =
        string(&members, "alg", "JWE alg")?.ok_or(JoseError::Malformed { what: "JWE alg" })?;
    let alg = JweAlgorithm::from_name(alg).ok_or(JoseError::UnsupportedAlgorithm)?;
    let enc =
        string(&members, "enc", "JWE enc")?.ok_or(JoseError::Malformed { what: "JWE enc" })?;
    if enc != ENC {
        return Err(JoseError::UnsupportedAlgorithm);
    }
    if members.contains_key("zip") {
        return Err(JoseError::Malformed {
            what: "JWE zip (compression is refused)",
        });
    }
    let scope = string(&members, "scope", "JWE scope")?
        .map(Scope::new)
        .transpose()?;
    match (members.get("crit"), &scope) {
        (None, None) => {}
        (Some(Value::Array(crit)), Some(_)) if crit.len() == 1 && crit[0] == "scope" => {}
        _ => {
            return Err(JoseError::Malformed {
                what: "JWE crit (exactly [\"scope\"], with a scope)",
            });
        }
    }
    let kid = string(&members, "kid", "JWE kid")?.map(str::to_owned);
    string(&members, "typ", "JWE typ")?;
    string(&members, "cty", "JWE cty")?;
    let party = |name: &str, what: &'static str| -> Result<Vec<u8>, JoseError> {
        let bytes = match string(&members, name, what)? {
            Some(text) => b64::decode(text, what)?,
            None => Vec::new(),
        };
        if bytes.len() > MAX_PARTY_INFO_BYTES {
            return Err(JoseError::Malformed { what });
        }
        Ok(bytes)
    };
    let (apu, apv) = (party("apu", "JWE apu")?, party("apv", "JWE apv")?);
    let epk = match (members.get("epk"), alg.is_ecdh()) {
        (Some(Value::Object(epk)), true) => Some(read_epk(epk)?),
        (None, false) => None,
        _ => {
            return Err(JoseError::Malformed {
                what: "JWE epk (an object for ECDH, absent otherwise)",
            });
        }
    };
    Ok(JweHeader {
        alg,
        kid,
        scope,
        epk,
        apu,
        apv,
        members,
    })
}

/// The ephemeral public key: a P-256 point, validated.
fn read_epk(epk: &Map<String, Value>) -> Result<P256PublicKey, JoseError> {
    if epk.contains_key("d") {
        return Err(JoseError::InvalidKey {
            what: "epk carries a private key",
        });
    }
    if string(epk, "kty", "JWE epk kty")? != Some("EC") {
        return Err(JoseError::InvalidKey {
            what: "epk is not an EC key",
        });
    }
    if string(epk, "crv", "JWE epk crv")? != Some("P-256") {
        return Err(JoseError::InvalidKey {
            what: "epk is not on the recipient's curve (P-256)",
        });
    }
    let coordinate = |name: &str| -> Result<[u8; 32], JoseError> {
        let text = string(epk, name, "JWE epk coordinate")?.ok_or(JoseError::Malformed {
            what: "JWE epk coordinate",
        })?;
        b64::decode(text, "JWE epk coordinate")?
            .try_into()
            .map_err(|_| JoseError::InvalidKey {
                what: "epk coordinate not 32 bytes",
            })
    };
    let mut sec1 = [4u8; 65];
    sec1[1..33].copy_from_slice(&coordinate("x")?);
    sec1[33..].copy_from_slice(&coordinate("y")?);
    // `from_sec1_bytes` checks y² = x³ − 3x + b over P-256's field with
    // coordinates below p; the identity has no uncompressed encoding.
    P256PublicKey::from_sec1_bytes(&sec1).map_err(|_| JoseError::InvalidKey {
        what: "epk is not a point on P-256",
    })
}

/// A public key secrets are sealed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    key: RecipientKey,
    kid: String,
    alg: Option<JweAlgorithm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RecipientKey {
    P256(P256PublicKey),
    Rsa {
        key: rsa::PublicKey,
        n: Vec<u8>,
        e: Vec<u8>,
    },
}

impl Recipient {
    /// A recipient from its public JWK (`kty` `EC` on P-256, or `RSA` of
    /// 2048 to 8192 bits). An `alg`, if present, must be one of
    /// [`JweAlgorithm`] and fit the key; a `use`, if present, must be
    /// `enc`. The `kid` is the key's RFC 7638 thumbprint (a `kid` in the
    /// JWK is not trusted).
    ///
    /// # Errors
    /// As [`Jwk::from_json`]; [`JoseError::InvalidKey`] for a key of
    /// another type or curve, a `use` other than `enc`, or an `alg` that
    /// does not fit; [`JoseError::UnsupportedAlgorithm`] for an `alg` that
    /// is not a JWE algorithm here.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JoseError> {
        let mut members = jwk::object(bytes, jwk::MAX_JWK_BYTES, "JWK")?;
        if string(&members, "use", "JWK use")?.is_some_and(|u| u != "enc") {
            return Err(JoseError::InvalidKey {
                what: "key use is not enc",
            });
        }
        let alg = match members.remove("alg") {
            None => None,
            Some(Value::String(name)) => {
                Some(JweAlgorithm::from_name(&name).ok_or(JoseError::UnsupportedAlgorithm)?)
            }
            Some(_) => return Err(JoseError::Malformed { what: "JWK alg" }),
        };
        let json = serde_json::to_vec(&Value::Object(members))
            .map_err(|_| JoseError::Malformed { what: "JWK" })?;
        let recipient = Self::from_jwk(&Jwk::from_json(&json)?)?;
        if let Some(alg) = alg {
            recipient.check(alg)?;
        }
        Ok(Self { alg, ..recipient })
    }

    /// A recipient from a parsed public JWK (P-256 or RSA).
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for a key of another type or curve, or
    /// one marked for signing (a `use` other than `enc`, or a JWS `alg`).
    pub fn from_jwk(key: &Jwk) -> Result<Self, JoseError> {
        if key.key_use().is_some_and(|u| u != "enc") || key.alg().is_some() {
            return Err(JoseError::InvalidKey {
                what: "a signing key is not a sealing key",
            });
        }
        let recipient = match key.material() {
            Material::P256 { x, y, .. } => {
                let mut sec1 = [4u8; 65];
                sec1[1..33].copy_from_slice(x);
                sec1[33..].copy_from_slice(y);
                RecipientKey::P256(P256PublicKey::from_sec1_bytes(&sec1).map_err(|_| {
                    JoseError::InvalidKey {
                        what: "point not on P-256",
                    }
                })?)
            }
            Material::Rsa { key, n, e } => RecipientKey::Rsa {
                key: key.clone(),
                n: n.clone(),
                e: e.clone(),
            },
            _ => {
                return Err(JoseError::InvalidKey {
                    what: "sealing keys are P-256 or RSA",
                });
            }
        };
        Ok(Self {
            key: recipient,
            kid: key.thumbprint(),
            alg: None,
        })
    }

    /// The recipient of a pinned P-256 or RSA key (a local, KMS or HSM
    /// sealing key).
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for a key of another algorithm (or an RSA
    /// key outside the JWK bounds).
    pub fn from_pinned(key: &PinnedKey) -> Result<Self, JoseError> {
        match key.public() {
            AnyPublicKey::P256(public) => Self::from_jwk(&Jwk::from_json(
                recipient_jwk_json(public, None).as_bytes(),
            )?),
            AnyPublicKey::Rsa(public) => Self::from_jwk(&Jwk::from_json(
                format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    b64::encode(public.exponent()),
                    b64::encode(public.modulus())
                )
                .as_bytes(),
            )?),
            _ => Err(JoseError::InvalidKey {
                what: "sealing keys are P-256 or RSA",
            }),
        }
    }

    /// The key's RFC 7638 thumbprint, the `kid` of what is sealed to it.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the JWK asked for, if it named one.
    #[must_use]
    pub fn alg(&self) -> Option<JweAlgorithm> {
        self.alg
    }

    /// The algorithm [`seal`] uses by default: the JWK's `alg`, else
    /// `ECDH-ES` for P-256 and `RSA-OAEP-256` for RSA.
    #[must_use]
    pub fn default_alg(&self) -> JweAlgorithm {
        self.alg.unwrap_or(match self.key {
            RecipientKey::P256(_) => JweAlgorithm::EcdhEs,
            RecipientKey::Rsa { .. } => JweAlgorithm::RsaOaep256,
        })
    }

    /// The public JWK, `use` `enc`, `kid` the thumbprint, `alg` if set.
    #[must_use]
    pub fn to_json(&self) -> String {
        match &self.key {
            RecipientKey::P256(public) => {
                let mut json = recipient_jwk_json(public, self.alg);
                json.pop();
                format!(r#"{json},"kid":"{}","use":"enc"}}"#, self.kid)
            }
            RecipientKey::Rsa { n, e, .. } => {
                let alg = self
                    .alg
                    .map(|a| format!(r#""alg":"{}","#, a.name()))
                    .unwrap_or_default();
                format!(
                    r#"{{{alg}"e":"{}","kid":"{}","kty":"RSA","n":"{}","use":"enc"}}"#,
                    b64::encode(e),
                    self.kid,
                    b64::encode(n)
                )
            }
        }
    }

    fn check(&self, alg: JweAlgorithm) -> Result<(), JoseError> {
        match (&self.key, alg) {
            (RecipientKey::P256(_), JweAlgorithm::EcdhEs | JweAlgorithm::EcdhEsA256kw)
            | (RecipientKey::Rsa { .. }, JweAlgorithm::RsaOaep256) => Ok(()),
            _ => Err(JoseError::AlgorithmMismatch),
        }
    }
}

/// `{"crv":"P-256","kty":"EC","x":..,"y":..}` with `alg` first if given.
fn recipient_jwk_json(public: &P256PublicKey, alg: Option<JweAlgorithm>) -> String {
    let point = public.to_uncompressed();
    let alg = alg
        .map(|a| format!(r#""alg":"{}","#, a.name()))
        .unwrap_or_default();
    format!(
        r#"{{{alg}"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        b64::encode(&point[1..33]),
        b64::encode(&point[33..])
    )
}

/// Why a secret could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The recipient, algorithm, scope or plaintext is not usable.
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// The OS random generator failed.
    #[error("the random generator failed")]
    Rng,
}

impl SealError {
    /// A stable lower-case kind.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Jose(e) => e.kind(),
            Self::Rng => "rng",
        }
    }
}

/// Why a sealed secret could not be opened. Every failure of the
/// decryption itself is the one opaque [`OpenError::DecryptionFailed`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The JWE does not parse, or uses what is not supported here.
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// The JWE is sealed for another scope, or for none.
    #[error("sealed for another scope")]
    ScopeMismatch,
    /// No key of the keyring is the one the JWE names (or it names none).
    #[error("no key for the sealed secret")]
    UnknownKey,
    /// The key the secret is sealed to has been revoked: an explicit
    /// decision, not a decryption failure.
    #[error("the key the secret is sealed to is revoked")]
    Revoked,
    /// The secret does not decrypt: wrong key, bad tag, bad content key.
    #[error("decryption failed")]
    DecryptionFailed,
    /// A gate refused (TOTP, policy) or the backend failed.
    #[error(transparent)]
    Backend(custody_core::Error),
}

impl OpenError {
    /// A stable lower-case kind, as the CLI reports it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Jose(e) => e.kind(),
            Self::ScopeMismatch => "scope-mismatch",
            Self::UnknownKey => "unknown-key",
            Self::Revoked => "revoked",
            Self::DecryptionFailed => "decryption-failed",
            Self::Backend(e) => e.kind(),
        }
    }
}

impl From<custody_core::Error> for OpenError {
    fn from(e: custody_core::Error) -> Self {
        match e {
            custody_core::Error::DecryptionFailed => Self::DecryptionFailed,
            other => Self::Backend(other),
        }
    }
}

/// What an unseal request's intent carries: the JWE's protected header,
/// for a gate to read.
#[derive(Debug, Clone)]
pub struct UnsealDetail {
    /// The protected header.
    pub header: JweHeader,
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, SealError> {
    let mut out = Zeroizing::new([0u8; N]);
    getrandom::fill(out.as_mut_slice()).map_err(|_| SealError::Rng)?;
    Ok(out)
}

/// A fresh ephemeral P-256 secret.
fn ephemeral() -> Result<p256::NonZeroScalar, SealError> {
    // A uniform 256-bit string is ≥ n with probability < 2⁻³²; retry.
    for _ in 0..8 {
        let bytes = random::<32>()?;
        if let Ok(scalar) = p256::NonZeroScalar::try_from(bytes.as_slice()) {
            return Ok(scalar);
        }
    }
    Err(SealError::Rng)
}

/// Seals `plaintext` for `scope` to `recipient` with its
/// [`Recipient::default_alg`]: a compact JWE (see the [module](self) docs).
///
/// # Errors
/// As [`seal_with`].
pub fn seal(recipient: &Recipient, scope: &Scope, plaintext: &[u8]) -> Result<String, SealError> {
    seal_with(recipient, recipient.default_alg(), scope, plaintext)
}

/// Seals `plaintext` for `scope` to `recipient` with `alg`.
///
/// # Errors
/// [`JoseError::AlgorithmMismatch`] for an `alg` that does not fit the key
/// (or another than the JWK's own `alg`); [`JoseError::Malformed`] for a
/// plaintext over [`MAX_PLAINTEXT_BYTES`]; [`SealError::Rng`].
pub fn seal_with(
    recipient: &Recipient,
    alg: JweAlgorithm,
    scope: &Scope,
    plaintext: &[u8],
) -> Result<String, SealError> {
    recipient.check(alg)?;
    if recipient.alg.is_some_and(|a| a != alg) {
        return Err(JoseError::AlgorithmMismatch.into());
    }
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(JoseError::Malformed {
            what: "plaintext size",
        }
        .into());
    }
    let mut epk_json = None;
    let (cek, encrypted_key): (Zeroizing<Vec<u8>>, Vec<u8>) = match (&recipient.key, alg) {
        (RecipientKey::P256(public), JweAlgorithm::EcdhEs | JweAlgorithm::EcdhEsA256kw) => {
            let secret = ephemeral()?;
            let shared = p256::ecdh::diffie_hellman(secret, public.as_p256().as_affine());
            let mut z = Zeroizing::new([0u8; 32]);
            z.copy_from_slice(shared.raw_secret_bytes().as_slice());
            let epk = P256PublicKey::from(p256::PublicKey::from_secret_scalar(&secret));
            let point = epk.to_uncompressed();
            epk_json = Some(format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::encode(&point[1..33]),
                b64::encode(&point[33..])
            ));
            if alg == JweAlgorithm::EcdhEs {
                (kdf::concat_kdf(&z, ENC, &[], &[])?, Vec::new())
            } else {
                let kek = kdf::concat_kdf(&z, alg.name(), &[], &[])?;
                let cek = random::<CEK_LEN>()?;
                (Zeroizing::new(cek.to_vec()), wrap(&kek, &cek)?)
            }
        }
        (RecipientKey::Rsa { key: public, .. }, JweAlgorithm::RsaOaep256) => {
            let cek = random::<CEK_LEN>()?;
            let encrypted = public
                .encrypt(
                    &mut getrandom::SysRng,
                    rsa::Oaep::<Sha256>::new(),
                    cek.as_slice(),
                )
                .map_err(|_| SealError::Rng)?;
            (Zeroizing::new(cek.to_vec()), encrypted)
        }
        _ => return Err(JoseError::AlgorithmMismatch.into()),
    };
    // Members in lexicographic order; every value is a fixed name,
    // base64url or a checked scope, which JSON never escapes.
    let epk = epk_json
        .map(|e| format!(r#""epk":{e},"#))
        .unwrap_or_default();
    let header = format!(
        r#"{{"alg":"{}","crit":["scope"],"enc":"{ENC}",{epk}"kid":"{}","scope":"{}"}}"#,
        alg.name(),
        recipient.kid,
        scope.as_str()
    );
    let protected = b64::encode(header.as_bytes());
    let iv = random::<IV_LEN>()?;
    let cek: &[u8; CEK_LEN] = cek
        .as_slice()
        .try_into()
        .map_err(|_| JoseError::Malformed { what: "CEK length" })?;
    let cipher = Aes256Gcm::new(cek.into());
    let nonce: &Nonce<Aes256Gcm> = (&*iv).into();
    let mut buffer = plaintext.to_vec();
    let tag = cipher
        .encrypt_inout_detached(nonce, protected.as_bytes(), buffer.as_mut_slice().into())
        .map_err(|_| JoseError::Malformed {
            what: "plaintext size",
        })?;
    Ok(format!(
        "{protected}.{}.{}.{}.{}",
        b64::encode(&encrypted_key),
        b64::encode(iv.as_slice()),
        b64::encode(&buffer),
        b64::encode(tag.as_slice())
    ))
}

fn wrap(kek: &[u8], cek: &[u8; CEK_LEN]) -> Result<Vec<u8>, SealError> {
    let kw = KwAes256::new_from_slice(kek).map_err(|_| JoseError::Malformed {
        what: "key-wrapping key length",
    })?;
    let mut out = vec![0u8; WRAPPED_CEK_LEN];
    kw.wrap_key(cek, &mut out)
        .map_err(|_| JoseError::Malformed { what: "key wrap" })?;
    Ok(out)
}

/// Opens `jwe`, sealed for `scope`, with `key` held by `backend`,
/// presenting `auth` to every gate on the way (see the [module](self)
/// docs for the request it makes and the errors it keeps apart).
///
/// # Errors
/// [`OpenError::Jose`] for a JWE that does not parse, or an ECDH JWE for a
/// key that is not P-256 or an RSA one for a key that is not RSA
/// ([`JoseError::AlgorithmMismatch`]);
/// [`OpenError::ScopeMismatch`]; [`OpenError::DecryptionFailed`];
/// [`OpenError::Backend`] for a gate's refusal, a backend that does not
/// decrypt, or a backend failure.
pub fn open<'a>(
    backend: &'a dyn KeyBackend,
    key: &'a PinnedKey,
    jwe: &str,
    scope: &'a Scope,
    auth: &'a Authorization,
) -> Pending<'a, Result<SecretVec, OpenError>> {
    let parsed = match CompactJwe::parse(jwe) {
        Ok(parsed) => parsed,
        Err(e) => return Pending::ready(Err(e.into())),
    };
    Pending::drive(async move { open_parsed(backend, key, &parsed, scope, auth).await })
}

/// [`open`] for a JWE already parsed.
///
/// # Errors
/// As [`open`].
pub async fn open_parsed(
    backend: &dyn KeyBackend,
    key: &PinnedKey,
    jwe: &CompactJwe,
    scope: &Scope,
    auth: &Authorization,
) -> Result<SecretVec, OpenError> {
    if jwe.header.scope.as_ref() != Some(scope) {
        return Err(OpenError::ScopeMismatch);
    }
    let header = &jwe.header;
    let decryption = match (header.alg, &header.epk) {
        (JweAlgorithm::EcdhEs | JweAlgorithm::EcdhEsA256kw, Some(peer)) => {
            if !matches!(key.public(), AnyPublicKey::P256(_)) {
                return Err(JoseError::AlgorithmMismatch.into());
            }
            Decryption::EcdhP256 { peer }
        }
        (JweAlgorithm::RsaOaep256, None) => {
            if !matches!(key.public(), AnyPublicKey::Rsa(_)) {
                return Err(JoseError::AlgorithmMismatch.into());
            }
            Decryption::RsaOaepSha256 {
                ciphertext: &jwe.encrypted_key,
            }
        }
        // The parser pairs an epk with exactly the ECDH algorithms.
        _ => {
            return Err(JoseError::Malformed {
                what: "JWE epk (an object for ECDH, absent otherwise)",
            }
            .into());
        }
    };
    let decrypting =
        backend
            .decrypting()
            .ok_or(OpenError::Backend(custody_core::Error::Unsupported(
                "the backend does not decrypt",
            )))?;
    let detail = UnsealDetail {
        header: header.clone(),
    };
    let intent = Intent::typed(IntentKind::Unseal, &detail).with_note("scope", scope.as_str());
    let request = DecryptRequest::new(key, jwe.digest(), decryption, intent, auth)?;
    let secret = decrypting.decrypt(request).await?.secret;
    let cek: Zeroizing<Vec<u8>> = match header.alg {
        JweAlgorithm::RsaOaep256 => Zeroizing::new(secret.expose_secret().to_vec()),
        JweAlgorithm::EcdhEs | JweAlgorithm::EcdhEsA256kw => {
            let z: &[u8; 32] = secret
                .expose_secret()
                .try_into()
                .map_err(|_| OpenError::DecryptionFailed)?;
            if header.alg == JweAlgorithm::EcdhEs {
                kdf::concat_kdf(z, ENC, &header.apu, &header.apv)?
            } else {
                let kek = kdf::concat_kdf(z, header.alg.name(), &header.apu, &header.apv)?;
                let kw = KwAes256::new_from_slice(&kek).map_err(|_| OpenError::DecryptionFailed)?;
                let mut out = Zeroizing::new(vec![0u8; WRAPPED_CEK_LEN]);
                let len = kw
                    .unwrap_key(&jwe.encrypted_key, &mut out)
                    .map_err(|_| OpenError::DecryptionFailed)?
                    .len();
                out.truncate(len);
                out
            }
        }
    };
    jwe.decrypt_content(&cek)
}
