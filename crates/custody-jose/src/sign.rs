//! Signing JWS and JWTs with a key held behind the `KeyBackend` seam.
//!
//! The key never leaves its backend: the signing input goes through
//! [`custody_core::KeySigner::sign_with`], so a JWT passes the same gates
//! (TOTP, policy) and lands in the same audit record as a transaction, with
//! the intent `jwt` and the key's algorithm and scheme named. The algorithm
//! is the key's (ES256K for secp256k1, ES256 for P-256, EdDSA for Ed25519),
//! never the caller's choice; the header's `kid` is the key's RFC 7638
//! thumbprint unless the caller sets one.
//!
//! ```
//! # use std::sync::Arc;
//! # use custody_core::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let kek: SharedBackend = Arc::new(LocalKek::from_key(KekId::new("k")?, DataKey::new([7; 32])));
//! let vault = Vault::new(kek, WalletScheme::Default);
//! vault.insert_algorithm_key(KeyId::new("api")?, KeyAlgorithm::P256, PrivateKeyBytes::random()?)?;
//! let signer = KeySigner::pin(Arc::new(vault), KeyRef::Stored(KeyId::new("api")?)).wait()?;
//! let claims = serde_json::json!({"iss": "payments", "exp": 1_900_000_000u64});
//! let token = custody_jose::sign::sign_jwt(&signer, &claims, &Authorization::none()).wait()?;
//! let keys = custody_jose::JwkSet::from_keys(vec![custody_jose::sign::public_jwk(signer.key())?])?;
//! let verified = custody_jose::jws::verify(&token, &keys)?;
//! assert_eq!(verified.header().alg(), "ES256");
//! # Ok(())
//! # }
//! ```

use std::fmt;

use custody_core::{
    AnyPublicKey, Authorization, Intent, IntentKind, KeySigner, Pending, PinnedKey, SignatureScheme,
};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::{Algorithm, JoseError, Jwk, b64};

/// Why a token could not be signed: a JOSE problem (the header, the key's
/// JWK) or the backend's answer (a gate's refusal, a backend failure).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The header or the key is not usable for JOSE.
    #[error(transparent)]
    Jose(#[from] JoseError),
    /// The backend or a gate on the way refused or failed.
    #[error(transparent)]
    Backend(#[from] custody_core::Error),
}

impl SignError {
    /// The stable kind: the JOSE error's, or the seam's.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Jose(e) => e.kind(),
            Self::Backend(e) => e.kind(),
        }
    }
}

/// The JWS algorithm a key signs with (fixed by its algorithm).
///
/// # Errors
/// [`JoseError::UnsupportedAlgorithm`] for a key of an algorithm JOSE
/// signing here does not cover.
pub fn algorithm_of(key: &PinnedKey) -> Result<Algorithm, JoseError> {
    match key.public() {
        AnyPublicKey::Secp256k1(_) => Ok(Algorithm::Es256k),
        AnyPublicKey::P256(_) => Ok(Algorithm::Es256),
        AnyPublicKey::Ed25519(_) => Ok(Algorithm::EdDsa),
        _ => Err(JoseError::UnsupportedAlgorithm),
    }
}

/// The public JWK of a pinned key, with its `alg` and, as `kid`, its
/// RFC 7638 thumbprint: what a JWKS endpoint publishes for it.
///
/// # Errors
/// [`JoseError::UnsupportedAlgorithm`] as [`algorithm_of`].
pub fn public_jwk(key: &PinnedKey) -> Result<Jwk, JoseError> {
    let alg = algorithm_of(key)?;
    let json = key_members(key)?;
    let kid = key_thumbprint(key)?;
    Jwk::from_json(
        format!(
            r#"{}"alg":"{}","kid":"{kid}","use":"sig"}}"#,
            json.trim_end_matches('}').to_owned() + ",",
            alg.name()
        )
        .as_bytes(),
    )
}

/// The required members of a signing key's public JWK, in lexicographic
/// order and without whitespace: the JSON its RFC 7638 thumbprint hashes.
fn key_members(key: &PinnedKey) -> Result<String, JoseError> {
    Ok(match key.public() {
        AnyPublicKey::Secp256k1(k) => ec_json("secp256k1", &k.to_uncompressed()),
        AnyPublicKey::P256(k) => ec_json("P-256", &k.to_uncompressed()),
        AnyPublicKey::Ed25519(k) => format!(
            r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
            b64::encode(&k.to_bytes())
        ),
        _ => return Err(JoseError::UnsupportedAlgorithm),
    })
}

/// A pinned signing key's RFC 7638 thumbprint (its default `kid`), from
/// the pinned public key directly: the pinned point was validated when it
/// was pinned, so no JWK is parsed (and no point decoded again) per
/// signature. `each_algorithm_signs_a_jwt_that_two_verifiers_accept` checks it equals
/// [`Jwk::thumbprint`] of the published JWK.
fn key_thumbprint(key: &PinnedKey) -> Result<String, JoseError> {
    Ok(b64::encode(&Sha256::digest(key_members(key)?.as_bytes())))
}

fn ec_json(crv: &str, uncompressed: &[u8; 65]) -> String {
    format!(
        r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
        b64::encode(&uncompressed[1..33]),
        b64::encode(&uncompressed[33..])
    )
}

/// What a JWT or JWS signature's intent carries: the header and payload a
/// gate may read.
pub struct JwtDetail {
    /// The protected header as signed.
    pub header: Map<String, Value>,
    /// The payload as signed.
    pub payload: Vec<u8>,
}

impl fmt::Debug for JwtDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtDetail")
            .field("header", &self.header)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The header as compact JSON, members in lexicographic order (so the
/// same header is the same bytes in every build, whatever map order
/// `serde_json` was built with).
fn header_json(header: &Map<String, Value>) -> Result<String, JoseError> {
    let mut names: Vec<&String> = header.keys().collect();
    names.sort();
    let mut out = String::from("{");
    for (i, name) in names.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let key = serde_json::to_string(name).map_err(|_| JoseError::Malformed {
            what: "JWS header member name",
        })?;
        let value = serde_json::to_string(&header[name]).map_err(|_| JoseError::Malformed {
            what: "JWS header member",
        })?;
        out.push_str(&key);
        out.push(':');
        out.push_str(&value);
    }
    out.push('}');
    Ok(out)
}

/// Signs `payload` as a compact JWS with `signer`'s key, under `header`
/// (its `alg` is set to the key's, and must not name another; a header
/// without `kid` gets the key's thumbprint unless `kid` is `null`, which
/// removes it), presenting `auth` to every gate on the way.
///
/// # Errors
/// [`JoseError::AlgorithmMismatch`] for a header `alg` that is not the
/// key's; [`JoseError::Malformed`] for a `crit` or `b64` member (the
/// verifier here refuses them); the seam's error for a refusal or a
/// backend failure.
pub fn sign_jws<'a>(
    signer: &'a KeySigner,
    mut header: Map<String, Value>,
    payload: &'a [u8],
    auth: &'a Authorization,
) -> Pending<'a, Result<String, SignError>> {
    let prepared = (|| {
        let alg = algorithm_of(signer.key())?;
        match header.get("alg") {
            None => {
                header.insert("alg".into(), Value::from(alg.name()));
            }
            Some(Value::String(a)) if a == alg.name() => {}
            Some(_) => return Err(JoseError::AlgorithmMismatch),
        }
        if header.contains_key("crit") || header.contains_key("b64") {
            return Err(JoseError::Malformed {
                what: "JWS header crit or b64 (the verifier refuses them)",
            });
        }
        match header.get("kid") {
            None => {
                header.insert("kid".into(), Value::from(key_thumbprint(signer.key())?));
            }
            Some(Value::Null) => {
                header.remove("kid");
            }
            Some(_) => {}
        }
        let input = format!(
            "{}.{}",
            b64::encode(header_json(&header)?.as_bytes()),
            b64::encode(payload)
        );
        Ok((alg, input))
    })();
    let (alg, input) = match prepared {
        Ok(p) => p,
        Err(e) => return Pending::ready(Err(SignError::Jose(e))),
    };
    Pending::drive(async move {
        let detail = JwtDetail {
            header,
            payload: payload.to_vec(),
        };
        let (scheme, data) = match alg {
            Algorithm::Es256 => (
                SignatureScheme::EcdsaP256Sha256,
                Sha256::digest(input.as_bytes()).to_vec(),
            ),
            Algorithm::Es256k => (
                SignatureScheme::EcdsaSecp256k1,
                Sha256::digest(input.as_bytes()).to_vec(),
            ),
            Algorithm::EdDsa => (SignatureScheme::Ed25519, input.as_bytes().to_vec()),
            _ => return Err(SignError::Jose(JoseError::UnsupportedAlgorithm)),
        };
        let signature = signer
            .sign_with(scheme, &data, Intent::typed(IntentKind::Jwt, &detail), auth)
            .await?;
        Ok(format!("{input}.{}", b64::encode(&signature.to_bytes())))
    })
}

/// Signs `claims` (a JSON object) as a JWT: [`sign_jws`] with the header
/// `{"alg", "kid", "typ": "JWT"}`.
///
/// # Errors
/// [`JoseError::Malformed`] if `claims` is not a JSON object; otherwise as
/// [`sign_jws`].
pub fn sign_jwt<'a>(
    signer: &'a KeySigner,
    claims: &Value,
    auth: &'a Authorization,
) -> Pending<'a, Result<String, SignError>> {
    if !claims.is_object() {
        return Pending::ready(Err(SignError::Jose(JoseError::Malformed {
            what: "JWT claims (not a JSON object)",
        })));
    }
    let payload = match serde_json::to_vec(claims) {
        Ok(p) => p,
        Err(_) => {
            return Pending::ready(Err(SignError::Jose(JoseError::Malformed {
                what: "JWT claims",
            })));
        }
    };
    let mut header = Map::new();
    header.insert("typ".into(), Value::from("JWT"));
    Pending::drive(async move { sign_jws(signer, header, &payload, auth).await })
}
