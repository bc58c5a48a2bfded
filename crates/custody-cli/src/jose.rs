//! JOSE (`shared/CLI.md`, "JOSE"): keys of any algorithm generated in the
//! keystore, JWTs signed through the same gates and audit log as a
//! transaction, verified against a JWKS, and the public JWKs of any key.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use custody_core::{KeyAlgorithm, KeyId, KeyRef, KeySigner, Keystore, SharedBackend};
use custody_jose::{Algorithm, JoseError, JwkSet, SignError, Validation};
use serde_json::{Value, json};

use crate::args::KeyArgs;
use crate::error::CliError;

/// `custody keystore generate`.
#[derive(Debug, Args)]
pub(crate) struct GenerateArgs {
    /// The key's algorithm: `secp256k1` (JWS ES256K), `P-256` (ES256, and
    /// ECDH-ES for sealed secrets) or `Ed25519` (EdDSA).
    #[arg(long, value_name = "ALG")]
    pub(crate) alg: String,
}

/// `custody jwt ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum JwtCommand {
    /// Sign a JWT (compact JWS) with a key of the keystore or a KMS/HSM
    /// key, through the same TOTP gate, policy gate and audit log as a
    /// transaction (audit intent `jwt`). The header is {"alg", "kid"
    /// (the key's RFC 7638 thumbprint), "typ": "JWT"}; --alg must be the
    /// key's own algorithm (ES256K for secp256k1 and wallet keys, ES256
    /// for P-256, EdDSA for Ed25519), else kind algorithm-mismatch.
    ///
    /// Prints {"jwt", "kid"}.
    ///
    /// Example: custody jwt sign --key-id p256-0123456789abcdef --alg ES256 --claims claims.json --ttl 300
    Sign(JwtSignArgs),
    /// Verify a JWT against a JWK Set: the key (by `kid`) fixes the
    /// algorithm (no `none`, no HMAC, no key from the token itself); `exp`
    /// is required, `nbf`/`iat` checked, with --leeway seconds of skew (at
    /// most 300). Any failure is kind jwt-invalid, an expired token
    /// jwt-expired (exit 3).
    ///
    /// Prints {"header", "claims"}.
    ///
    /// Example: custody jwt verify --jwt token.txt --jwks jwks.json --aud api --iss custody
    Verify(JwtVerifyArgs),
}

/// `custody jwt sign`.
#[derive(Debug, Args)]
pub(crate) struct JwtSignArgs {
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    /// The JWS algorithm: ES256K, ES256, RS256, PS256 or EdDSA (the key's).
    #[arg(long, value_name = "ALG")]
    pub(crate) alg: String,
    /// A file holding the claims (a JSON object), or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub(crate) claims: String,
    /// Set `iat` to now and `exp` to now + SECONDS.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) ttl: Option<u64>,
    /// A TOTP code, for keys and wallets enrolled in 2FA.
    #[arg(long, value_name = "C")]
    pub(crate) code: Option<String>,
}

/// `custody jwt verify`.
#[derive(Debug, Args)]
pub(crate) struct JwtVerifyArgs {
    /// A file holding the compact JWT, or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub(crate) jwt: String,
    /// A file holding the JWK Set (RFC 7517) to verify against.
    #[arg(long, value_name = "FILE")]
    pub(crate) jwks: PathBuf,
    /// The audience the token must name in `aud` (a token that names an
    /// audience is refused without it).
    #[arg(long, value_name = "A")]
    pub(crate) aud: Option<String>,
    /// The issuer the token must name in `iss`.
    #[arg(long, value_name = "I")]
    pub(crate) iss: Option<String>,
    /// Seconds of clock skew allowed (at most 300; default 0).
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub(crate) leeway: u64,
}

/// `custody jwks`.
#[derive(Debug, Args)]
pub(crate) struct JwksArgs {
    /// An external key (`aws-kms:KEY`, `pkcs11:…`); repeatable.
    #[arg(long, value_name = "URI")]
    pub(crate) key: Vec<String>,
    /// A key of the keystore by id (generated or imported); repeatable.
    #[arg(long, value_name = "K")]
    pub(crate) key_id: Vec<String>,
}

/// The keystore algorithm `--alg` names (the JOSE `crv` spellings; case
/// matters, as in a JWK). RSA is a key algorithm of the seam but not one
/// the keystore generates (no local RSA private key: RUSTSEC-2023-0071),
/// so it is refused here as input, like any other name.
fn key_algorithm(name: &str) -> Result<KeyAlgorithm, CliError> {
    KeyAlgorithm::from_name(name)
        .filter(|a| {
            matches!(
                a,
                KeyAlgorithm::Secp256k1 | KeyAlgorithm::P256 | KeyAlgorithm::Ed25519
            )
        })
        .ok_or_else(|| CliError::bad_input("--alg: must be one of secp256k1, P-256, Ed25519"))
}

/// Pins `key` on `backend`, with the CLI's wording for a missing key.
pub(crate) fn pin_any(backend: SharedBackend, key: KeyRef) -> Result<KeySigner, CliError> {
    KeySigner::pin(backend, key).wait().map_err(|e| match e {
        custody_core::Error::KeyNotFound => CliError::new("not-found", "no such key"),
        custody_core::Error::InvalidWallet(r) => {
            CliError::bad_input(format!("--wallet/--index: {r}"))
        }
        other => other.into(),
    })
}

/// A JOSE error as the CLI reports it (its kind, its sentence).
fn jose_error(e: JoseError) -> CliError {
    CliError::new(e.kind(), e.to_string())
}

/// The public JWK of a pinned key, as JSON.
fn jwk_json(key: &custody_core::PinnedKey) -> Result<(Value, String), CliError> {
    let jwk = custody_jose::public_jwk(key).map_err(jose_error)?;
    let kid = jwk.thumbprint();
    let value = serde_json::from_str(&jwk.to_json())
        .map_err(|_| CliError::new("io", "could not re-read the JWK"))?;
    Ok((value, kid))
}

/// `custody keystore generate --alg ALG`.
pub(crate) fn generate(ks: &Keystore, a: &GenerateArgs) -> Result<Value, CliError> {
    let algorithm = key_algorithm(&a.alg)?;
    let (id, _) = ks.generate_key(algorithm)?;
    let pinned = pin_any(ks.backend(), KeyRef::Stored(id.clone()))?;
    let (jwk, _) = jwk_json(pinned.key())?;
    Ok(json!({ "keyId": id.as_str(), "jwk": jwk }))
}

/// `custody jwt sign`: `signer` is the named key behind the gates.
pub(crate) fn sign(signer: &KeySigner, a: &JwtSignArgs) -> Result<Value, CliError> {
    let expected = custody_jose::sign::algorithm_of(signer.key()).map_err(jose_error)?;
    let asked = Algorithm::from_name(&a.alg).ok_or_else(|| {
        CliError::bad_input("--alg: must be one of ES256K, ES256, RS256, PS256, EdDSA")
    })?;
    if asked != expected {
        return Err(CliError::new(
            "algorithm-mismatch",
            format!(
                "--alg: the key is a {} key, which signs {}, not {}",
                signer.key().algorithm(),
                expected.name(),
                asked.name()
            ),
        ));
    }
    let text = crate::commands::read_input(&a.claims, "--claims")?;
    let mut claims: Value =
        serde_json::from_str(&text).map_err(|_| CliError::bad_input("--claims: not JSON"))?;
    let Some(members) = claims.as_object_mut() else {
        return Err(CliError::bad_input("--claims: not a JSON object"));
    };
    if let Some(ttl) = a.ttl {
        let now = now()?;
        let exp = now
            .checked_add(ttl)
            .ok_or_else(|| CliError::bad_input("--ttl: too large"))?;
        members.insert("iat".into(), json!(now));
        members.insert("exp".into(), json!(exp));
    }
    let auth = crate::commands::consent(a.code.as_ref());
    let token = custody_jose::sign_jwt(signer, &claims, &auth)
        .wait()
        .map_err(|e| match e {
            SignError::Backend(e) => CliError::from(e),
            SignError::Jose(e) => jose_error(e),
            other => CliError::new(other.kind(), other.to_string()),
        })?;
    let (_, kid) = jwk_json(signer.key())?;
    Ok(json!({ "jwt": token, "kid": kid }))
}

fn now() -> Result<u64, CliError> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| CliError::new("io", "the system clock is before 1970"))
}

/// `custody jwt verify`.
pub(crate) fn verify(a: &JwtVerifyArgs) -> Result<Value, CliError> {
    let token = crate::commands::read_input(&a.jwt, "--jwt")?;
    let jwks = std::fs::read(&a.jwks).map_err(|e| CliError::bad_input(format!("--jwks: {e}")))?;
    let keys = JwkSet::from_json(&jwks).map_err(|e| CliError::bad_input(format!("--jwks: {e}")))?;
    let mut validation = Validation::new(now()?)
        .with_leeway(a.leeway)
        .map_err(|e| CliError::bad_input(format!("--leeway: {e}")))?;
    if let Some(aud) = &a.aud {
        validation = validation.with_audience(aud.clone());
    }
    if let Some(iss) = &a.iss {
        validation = validation.with_issuer(iss.clone());
    }
    let jwt = custody_jose::jwt::verify(token.trim(), &keys, &validation).map_err(|e| {
        let kind = if matches!(e, JoseError::Expired) {
            "jwt-expired"
        } else {
            "jwt-invalid"
        };
        CliError::new(kind, e.to_string())
    })?;
    Ok(json!({
        "header": Value::Object(jwt.header().members().clone()),
        "claims": Value::Object(jwt.claims().members().clone()),
    }))
}

/// `custody jwks`: the public JWKs of the keys named, `--key` ones first,
/// each with `alg`, `use` and its RFC 7638 thumbprint as `kid`.
pub(crate) fn jwks(ks: Option<&Keystore>, a: &JwksArgs) -> Result<Value, CliError> {
    if a.key.is_empty() && a.key_id.is_empty() {
        return Err(CliError::bad_input(
            "name at least one key with --key URI or --key-id K",
        ));
    }
    let mut keys = Vec::new();
    for uri in &a.key {
        let parsed = crate::backends::parse(uri, "--key")?;
        let (inner, key) = crate::backends::signer(&parsed, "--key")?;
        keys.push(jwk_json(pin_any(inner, key)?.key())?.0);
    }
    if let Some(ks) = ks {
        for id in &a.key_id {
            let id = KeyId::new(id.as_str()).map_err(|e| CliError::from(e).context("--key-id"))?;
            keys.push(jwk_json(pin_any(ks.backend(), KeyRef::Stored(id))?.key())?.0);
        }
    }
    Ok(json!({ "keys": keys }))
}
