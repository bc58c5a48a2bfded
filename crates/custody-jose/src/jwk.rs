//! JSON Web Keys (RFC 7517) and key sets, **public keys only**, and their
//! RFC 7638 thumbprints.
//!
//! A [`Jwk`] is one of:
//!
//! - `kty:"EC"`, `crv:"P-256"` or `crv:"secp256k1"`: `x` and `y` exactly 32
//!   bytes each, the point on the curve (RFC 7518 §6.2.1);
//! - `kty:"OKP"`, `crv:"Ed25519"`: `x` the canonical 32-byte encoding of a
//!   point that is not of small order, so that `verify_strict` can use it
//!   (RFC 8037 §2);
//! - `kty:"RSA"`: `n` of 2048 to 8192 bits, `e` odd, greater than 1 and at
//!   most 2³³ − 1, both minimal big-endian (no leading zero octet; RFC 7518
//!   §6.3.1).
//!
//! Members read besides: `kid`, `alg`, `use` (strings). Others are ignored
//! (RFC 7517 §4). A private-key member (`d`, `p`, `q`, `dp`, `dq`, `qi`,
//! `oth`, `k`) is refused whatever the key type, and so is a symmetric key
//! (`kty:"oct"`): a verifier holding a secret is a misconfiguration.
//!
//! In a [`JwkSet`], a key of a type, curve or `alg` this crate does not
//! know (`kty:"EC"` on P-384, `OKP` X25519, an RSA key for RS512...) is
//! skipped, as RFC 7517 §5 asks; a key of a known type that is malformed
//! fails the whole set, and so does a `kid` carried by two keys.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::JoseError;
use crate::b64;
use crate::jws::Algorithm;

/// Most bytes of JSON read for one key.
pub const MAX_JWK_BYTES: usize = 64 * 1024;
/// Most bytes of JSON read for a key set.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Most keys (known or not) in a key set.
pub const MAX_JWKS_KEYS: usize = 256;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub const MAX_RSA_BITS: usize = 8192;

/// Members that only a private or symmetric key carries (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The kind of public key a [`Jwk`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// `kty:"EC"`, `crv:"P-256"`.
    P256,
    /// `kty:"EC"`, `crv:"secp256k1"` (RFC 8812 §3.1).
    Secp256k1,
    /// `kty:"OKP"`, `crv:"Ed25519"` (RFC 8037).
    Ed25519,
    /// `kty:"RSA"`.
    Rsa,
}

/// The key itself, with the members it was read from (kept to write the
/// key back and to compute its thumbprint exactly as read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Material {
    P256 {
        x: [u8; 32],
        y: [u8; 32],
        key: p256::ecdsa::VerifyingKey,
    },
    Secp256k1 {
        x: [u8; 32],
        y: [u8; 32],
        key: k256::ecdsa::VerifyingKey,
    },
    Ed25519 {
        x: [u8; 32],
        key: ed25519_dalek::VerifyingKey,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        key: rsa::PublicKey,
    },
}

/// A public JSON Web Key (RFC 7517): see the [module](self) docs for what
/// is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    material: Material,
    kid: Option<String>,
    alg: Option<Algorithm>,
    key_use: Option<String>,
}

/// What reading one key object gave: a key, or a key this crate does not
/// know (skipped in a set) with the error a lone key gets.
enum Read {
    Key(Box<Jwk>),
    Unknown(JoseError),
}

impl Jwk {
    /// Reads one key from strict JSON (no member twice).
    ///
    /// # Errors
    /// [`JoseError::Malformed`] for anything but a JSON object of at most
    /// [`MAX_JWK_BYTES`] with string members; [`JoseError::InvalidKey`] for
    /// a private or symmetric key, a key of an unknown type or curve, or a
    /// public key that fails its checks; [`JoseError::UnsupportedAlgorithm`]
    /// for an `alg` this crate does not verify.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JoseError> {
        let members = object(bytes, MAX_JWK_BYTES, "JWK")?;
        match read(&members)? {
            Read::Key(key) => Ok(*key),
            Read::Unknown(e) => Err(e),
        }
    }

    /// The kind of key.
    #[must_use]
    pub fn key_type(&self) -> KeyType {
        match self.material {
            Material::P256 { .. } => KeyType::P256,
            Material::Secp256k1 { .. } => KeyType::Secp256k1,
            Material::Ed25519 { .. } => KeyType::Ed25519,
            Material::Rsa { .. } => KeyType::Rsa,
        }
    }

    /// The key's `kid`, if it has one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key's `alg`, if it has one.
    #[must_use]
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The key's `use` (`"sig"`, `"enc"`...), if it has one.
    #[must_use]
    pub fn key_use(&self) -> Option<&str> {
        self.key_use.as_deref()
    }

    /// The same key with `kid` set to `kid` (replacing any).
    #[must_use]
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The one algorithm a JWS verified with this key may use: the key's
    /// own `alg` if it has one, else the only algorithm of its curve
    /// (P-256 → ES256, secp256k1 → ES256K, Ed25519 → EdDSA). **The token
    /// never chooses it.**
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for an RSA key without `alg` (RS256 and
    /// PS256 would both fit: ambiguous), and for a key whose `use` is
    /// present and not `"sig"`.
    pub fn verification_algorithm(&self) -> Result<Algorithm, JoseError> {
        if self.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err(JoseError::InvalidKey {
                what: "key use is not sig",
            });
        }
        if let Some(alg) = self.alg {
            return Ok(alg);
        }
        match self.material {
            Material::P256 { .. } => Ok(Algorithm::Es256),
            Material::Secp256k1 { .. } => Ok(Algorithm::Es256k),
            Material::Ed25519 { .. } => Ok(Algorithm::EdDsa),
            Material::Rsa { .. } => Err(JoseError::InvalidKey {
                what: "RSA key without alg (RS256 or PS256: ambiguous)",
            }),
        }
    }

    pub(crate) fn material(&self) -> &Material {
        &self.material
    }

    /// The RFC 7638 thumbprint: SHA-256 over the key's required members
    /// (EC: `crv`, `kty`, `x`, `y`; OKP: `crv`, `kty`, `x`; RSA: `e`,
    /// `kty`, `n`) in lexicographic order as JSON without whitespace.
    #[must_use]
    pub fn thumbprint_sha256(&self) -> [u8; 32] {
        Sha256::digest(self.thumbprint_input().as_bytes()).into()
    }

    /// The RFC 7638 thumbprint in base64url, the usual derived `kid`.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        b64::encode(&self.thumbprint_sha256())
    }

    /// The JSON that [`thumbprint_sha256`](Self::thumbprint_sha256) hashes.
    /// Its values are base64url or fixed names, which JSON never escapes.
    fn thumbprint_input(&self) -> String {
        match &self.material {
            Material::P256 { x, y, .. } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::encode(x),
                b64::encode(y)
            ),
            Material::Secp256k1 { x, y, .. } => format!(
                r#"{{"crv":"secp256k1","kty":"EC","x":"{}","y":"{}"}}"#,
                b64::encode(x),
                b64::encode(y)
            ),
            Material::Ed25519 { x, .. } => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                b64::encode(x)
            ),
            Material::Rsa { n, e, .. } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64::encode(e),
                b64::encode(n)
            ),
        }
    }

    /// The key as compact JSON, members in lexicographic order: the key
    /// members, and `alg`, `kid`, `use` when present. Reads back to an
    /// equal key.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut members: Vec<(&str, String)> = match &self.material {
            Material::P256 { x, y, .. } => vec![
                ("crv", "P-256".to_owned()),
                ("kty", "EC".to_owned()),
                ("x", b64::encode(x)),
                ("y", b64::encode(y)),
            ],
            Material::Secp256k1 { x, y, .. } => vec![
                ("crv", "secp256k1".to_owned()),
                ("kty", "EC".to_owned()),
                ("x", b64::encode(x)),
                ("y", b64::encode(y)),
            ],
            Material::Ed25519 { x, .. } => vec![
                ("crv", "Ed25519".to_owned()),
                ("kty", "OKP".to_owned()),
                ("x", b64::encode(x)),
            ],
            Material::Rsa { n, e, .. } => vec![
                ("e", b64::encode(e)),
                ("kty", "RSA".to_owned()),
                ("n", b64::encode(n)),
            ],
        };
        if let Some(alg) = self.alg {
            members.push(("alg", alg.name().to_owned()));
        }
        if let Some(kid) = &self.kid {
            members.push(("kid", kid.clone()));
        }
        if let Some(key_use) = &self.key_use {
            members.push(("use", key_use.clone()));
        }
        members.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = String::from("{");
        for (i, (name, value)) in members.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
            // `Value`'s Display writes a JSON string with its escapes.
            out.push_str(&Value::String(value).to_string());
        }
        out.push('}');
        out
    }
}

/// A JWK Set (RFC 7517 §5): `{"keys": [...]}`, the keys this crate can
/// use. See the [module](self) docs for what is skipped and what fails.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JwkSet {
    keys: Vec<Jwk>,
    skipped: usize,
}

impl JwkSet {
    /// Reads a key set from strict JSON (no member twice). Members other
    /// than `keys` are ignored.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] for anything but a JSON object of at most
    /// [`MAX_JWKS_BYTES`] whose `keys` is an array of at most
    /// [`MAX_JWKS_KEYS`] objects, or for a `kid` on two keys; the errors of
    /// [`Jwk::from_json`] for a key of a known type, curve and algorithm.
    pub fn from_json(bytes: &[u8]) -> Result<Self, JoseError> {
        let members = object(bytes, MAX_JWKS_BYTES, "JWK set")?;
        let Some(Value::Array(entries)) = members.get("keys") else {
            return Err(JoseError::Malformed {
                what: "JWK set: keys is not an array",
            });
        };
        if entries.len() > MAX_JWKS_KEYS {
            return Err(JoseError::Malformed {
                what: "JWK set: too many keys",
            });
        }
        let mut keys = Vec::with_capacity(entries.len());
        let mut skipped = 0;
        for entry in entries {
            let Value::Object(key) = entry else {
                return Err(JoseError::Malformed {
                    what: "JWK set: a key is not an object",
                });
            };
            match read(key)? {
                Read::Key(key) => keys.push(*key),
                Read::Unknown(_) => skipped += 1,
            }
        }
        let mut set = Self::from_keys(keys)?;
        set.skipped = skipped;
        Ok(set)
    }

    /// A set of `keys`.
    ///
    /// # Errors
    /// [`JoseError::Malformed`] if two keys have the same `kid`, or for more
    /// than [`MAX_JWKS_KEYS`] keys.
    pub fn from_keys(keys: Vec<Jwk>) -> Result<Self, JoseError> {
        if keys.len() > MAX_JWKS_KEYS {
            return Err(JoseError::Malformed {
                what: "JWK set: too many keys",
            });
        }
        for (i, key) in keys.iter().enumerate() {
            if let Some(kid) = key.kid()
                && keys[..i].iter().any(|k| k.kid() == Some(kid))
            {
                return Err(JoseError::Malformed {
                    what: "JWK set: a kid on two keys",
                });
            }
        }
        Ok(Self { keys, skipped: 0 })
    }

    /// The keys kept, in the order read.
    #[must_use]
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// How many keys of an unknown type, curve or algorithm were skipped
    /// when the set was read.
    #[must_use]
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The key a token names: the one key whose `kid` is `kid`, or, for a
    /// token without `kid`, the set's only key.
    ///
    /// # Errors
    /// [`JoseError::UnknownKey`] if no key has that `kid` or, without a
    /// `kid`, the set does not hold exactly one key.
    pub fn select(&self, kid: Option<&str>) -> Result<&Jwk, JoseError> {
        match kid {
            // `from_keys` refused a `kid` on two keys, so at most one matches.
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid() == Some(kid))
                .ok_or(JoseError::UnknownKey),
            None => match self.keys.as_slice() {
                [only] => Ok(only),
                _ => Err(JoseError::UnknownKey),
            },
        }
    }

    /// The set as compact JSON, `{"keys":[...]}` with each key as
    /// [`Jwk::to_json`] writes it (the skipped keys are not written).
    #[must_use]
    pub fn to_json(&self) -> String {
        let keys: Vec<String> = self.keys.iter().map(Jwk::to_json).collect();
        format!(r#"{{"keys":[{}]}}"#, keys.join(","))
    }
}

/// `bytes` (at most `max` of them) as one strict JSON object.
pub(crate) fn object(
    bytes: &[u8],
    max: usize,
    what: &'static str,
) -> Result<Map<String, Value>, JoseError> {
    if bytes.len() > max {
        return Err(JoseError::Malformed { what });
    }
    match custody_core::json::parse_strict(bytes) {
        Ok(Value::Object(members)) => Ok(members),
        _ => Err(JoseError::Malformed { what }),
    }
}

/// The string member `name`, if present.
fn optional_string<'a>(
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

/// The base64url member `name`, decoded; it must be present.
fn required_bytes(
    members: &Map<String, Value>,
    name: &str,
    what: &'static str,
) -> Result<Vec<u8>, JoseError> {
    match optional_string(members, name, what)? {
        Some(text) => b64::decode(text, what),
        None => Err(JoseError::Malformed { what }),
    }
}

/// The 32-byte base64url member `name`.
fn coordinate(members: &Map<String, Value>, name: &str) -> Result<[u8; 32], JoseError> {
    required_bytes(members, name, "JWK coordinate")?
        .try_into()
        .map_err(|_| JoseError::InvalidKey {
            what: "coordinate not 32 bytes",
        })
}

/// Reads one key object.
fn read(members: &Map<String, Value>) -> Result<Read, JoseError> {
    if PRIVATE_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return Err(JoseError::InvalidKey {
            what: "private key member",
        });
    }
    let kty = optional_string(members, "kty", "JWK kty")?
        .ok_or(JoseError::Malformed { what: "JWK kty" })?;
    if kty == "oct" {
        return Err(JoseError::InvalidKey {
            what: "symmetric key",
        });
    }
    let kid = optional_string(members, "kid", "JWK kid")?.map(str::to_owned);
    let key_use = optional_string(members, "use", "JWK use")?.map(str::to_owned);
    let alg = match optional_string(members, "alg", "JWK alg")? {
        None => None,
        Some(name) => match Algorithm::from_name(name) {
            Some(alg) => Some(alg),
            None => return Ok(Read::Unknown(JoseError::UnsupportedAlgorithm)),
        },
    };
    let unknown = Read::Unknown(JoseError::InvalidKey {
        what: "unsupported key type or curve",
    });
    let material = match kty {
        "EC" => {
            let crv = optional_string(members, "crv", "JWK crv")?
                .ok_or(JoseError::Malformed { what: "JWK crv" })?;
            match crv {
                "P-256" => {
                    let (x, y) = (coordinate(members, "x")?, coordinate(members, "y")?);
                    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1(&x, &y)).map_err(
                        |_| JoseError::InvalidKey {
                            what: "point not on P-256",
                        },
                    )?;
                    Material::P256 { x, y, key }
                }
                "secp256k1" => {
                    let (x, y) = (coordinate(members, "x")?, coordinate(members, "y")?);
                    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1(&x, &y)).map_err(
                        |_| JoseError::InvalidKey {
                            what: "point not on secp256k1",
                        },
                    )?;
                    Material::Secp256k1 { x, y, key }
                }
                _ => return Ok(unknown),
            }
        }
        "OKP" => {
            let crv = optional_string(members, "crv", "JWK crv")?
                .ok_or(JoseError::Malformed { what: "JWK crv" })?;
            if crv != "Ed25519" {
                return Ok(unknown);
            }
            let x = coordinate(members, "x")?;
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| JoseError::InvalidKey {
                    what: "not an Ed25519 point",
                })?;
            if key.to_bytes() != x {
                return Err(JoseError::InvalidKey {
                    what: "non-canonical Ed25519 point",
                });
            }
            if key.is_weak() {
                return Err(JoseError::InvalidKey {
                    what: "small-order Ed25519 point",
                });
            }
            Material::Ed25519 { x, key }
        }
        "RSA" => rsa_material(members)?,
        _ => return Ok(unknown),
    };
    if let Some(alg) = alg {
        let fits = matches!(
            (&material, alg),
            (Material::P256 { .. }, Algorithm::Es256)
                | (Material::Secp256k1 { .. }, Algorithm::Es256k)
                | (Material::Ed25519 { .. }, Algorithm::EdDsa)
                | (Material::Rsa { .. }, Algorithm::Rs256 | Algorithm::Ps256)
        );
        if !fits {
            return Err(JoseError::InvalidKey {
                what: "alg does not fit the key",
            });
        }
    }
    Ok(Read::Key(Box::new(Jwk {
        material,
        kid,
        alg,
        key_use,
    })))
}

/// The SEC 1 uncompressed encoding `04 ‖ x ‖ y`.
fn sec1(x: &[u8; 32], y: &[u8; 32]) -> [u8; 65] {
    let mut out = [4u8; 65];
    out[1..33].copy_from_slice(x);
    out[33..].copy_from_slice(y);
    out
}

/// An RSA public key's `n` and `e`, checked.
fn rsa_material(members: &Map<String, Value>) -> Result<Material, JoseError> {
    let n = required_bytes(members, "n", "JWK n")?;
    let e = required_bytes(members, "e", "JWK e")?;
    let (Some(&n0), Some(&e0), Some(&e_last)) = (n.first(), e.first(), e.last()) else {
        return Err(JoseError::InvalidKey {
            what: "empty RSA member",
        });
    };
    if n0 == 0 || e0 == 0 {
        return Err(JoseError::InvalidKey {
            what: "RSA member not minimally encoded",
        });
    }
    // n0 != 0, so its leading zeros are at most 7.
    let bits = n.len() * 8 - n0.leading_zeros() as usize;
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Err(JoseError::InvalidKey {
            what: "RSA modulus size out of bounds",
        });
    }
    if e_last & 1 == 0 || e == [1] {
        return Err(JoseError::InvalidKey {
            what: "RSA exponent not odd and greater than 1",
        });
    }
    if e.len() > 5 {
        return Err(JoseError::InvalidKey {
            what: "RSA exponent too large",
        });
    }
    let key = rsa::PublicKey::new_with_size_limits(
        rsa::BoxedUint::from_be_slice_vartime(&n),
        rsa::BoxedUint::from_be_slice_vartime(&e),
        MIN_RSA_BITS..=MAX_RSA_BITS,
    )
    .map_err(|_| JoseError::InvalidKey {
        what: "RSA public key refused",
    })?;
    Ok(Material::Rsa { n, e, key })
}
