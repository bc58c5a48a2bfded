//! Authenticator data (WebAuthn §6.1) and COSE credential keys (RFC 9052,
//! RFC 9053): parsed strictly, every byte accounted for.

use custody_core::cbor::{self, Limits, Value};
use p256::ecdsa::signature::Verifier as _;

use super::WebAuthnError;

/// COSE algorithm ES256 (ECDSA with SHA-256 on P-256).
pub const COSE_ES256: i64 = -7;
/// COSE algorithm EdDSA (here: Ed25519).
pub const COSE_EDDSA: i64 = -8;

const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

/// The limits for the small CBOR structures of WebAuthn.
const LIMITS: Limits = Limits {
    max_input: 16 * 1024,
    max_depth: 8,
    max_items: 256,
};

/// A credential public key: what an approver's device signs with.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialKey {
    /// ES256: ECDSA with SHA-256 on P-256 (COSE alg −7).
    Es256(p256::ecdsa::VerifyingKey),
    /// EdDSA on Ed25519 (COSE alg −8).
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl std::fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (alg, key) = match self {
            Self::Es256(k) => ("ES256", hex::encode(k.to_sec1_bytes())),
            Self::Ed25519(k) => ("EdDSA", hex::encode(k.as_bytes())),
        };
        write!(f, "CredentialKey({alg}, {key})")
    }
}

impl CredentialKey {
    /// Reads a COSE_Key (as WebAuthn puts in attested credential data):
    /// EC2 / P-256 / ES256 or OKP / Ed25519 / EdDSA, the algorithm stated,
    /// no member twice (strict CBOR), and the point valid.
    ///
    /// # Errors
    /// [`WebAuthnError::Cbor`], [`WebAuthnError::UnsupportedKey`],
    /// [`WebAuthnError::InvalidKey`].
    pub fn from_cose(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let value = cbor::decode(bytes, &LIMITS).map_err(|source| WebAuthnError::Cbor {
            what: "COSE key",
            source,
        })?;
        Self::from_cose_value(&value)
    }

    fn from_cose_value(value: &Value<'_>) -> Result<Self, WebAuthnError> {
        let map = value
            .as_map()
            .ok_or(WebAuthnError::InvalidKey("a COSE key is a CBOR map"))?;
        let int = |label: i64| value.get_int_key(label).and_then(Value::as_i64);
        let bytes = |label: i64| value.get_int_key(label).and_then(Value::as_bytes);
        let kty = int(1).ok_or(WebAuthnError::InvalidKey("no kty (1)"))?;
        let alg = int(3).ok_or(WebAuthnError::InvalidKey("no alg (3)"))?;
        match (kty, alg) {
            // EC2, ES256: crv (−1) P-256 (1), x (−2) and y (−3), 32 bytes each.
            (2, COSE_ES256) => {
                check_labels(map, &[1, 3, -1, -2, -3])?;
                if int(-1) != Some(1) {
                    return Err(WebAuthnError::UnsupportedKey("an ES256 key not on P-256"));
                }
                let (Some(x), Some(y)) = (bytes(-2), bytes(-3)) else {
                    return Err(WebAuthnError::InvalidKey("an EC2 key without x and y"));
                };
                if x.len() != 32 || y.len() != 32 {
                    return Err(WebAuthnError::InvalidKey("P-256 coordinates are 32 bytes"));
                }
                let mut sec1 = Vec::with_capacity(65);
                sec1.push(0x04);
                sec1.extend_from_slice(x);
                sec1.extend_from_slice(y);
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map(Self::Es256)
                    .map_err(|_| WebAuthnError::InvalidKey("the point is not on P-256"))
            }
            // OKP, EdDSA: crv (−1) Ed25519 (6), x (−2) 32 bytes.
            (1, COSE_EDDSA) => {
                check_labels(map, &[1, 3, -1, -2])?;
                if int(-1) != Some(6) {
                    return Err(WebAuthnError::UnsupportedKey("an EdDSA key not on Ed25519"));
                }
                let x: [u8; 32] = bytes(-2)
                    .and_then(|x| x.try_into().ok())
                    .ok_or(WebAuthnError::InvalidKey("an Ed25519 key is 32 bytes"))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| WebAuthnError::InvalidKey("not an Ed25519 point"))?;
                if key.is_weak() {
                    return Err(WebAuthnError::InvalidKey("a small-order Ed25519 key"));
                }
                Ok(Self::Ed25519(key))
            }
            (1 | 2, _) => Err(WebAuthnError::UnsupportedKey(
                "an algorithm other than ES256 or EdDSA",
            )),
            _ => Err(WebAuthnError::UnsupportedKey(
                "a key type other than EC2 or OKP",
            )),
        }
    }

    /// The key as a COSE_Key in WebAuthn's (CTAP2 canonical) form.
    #[must_use]
    pub fn to_cose(&self) -> Vec<u8> {
        let int = Value::from_i64;
        let map = match self {
            Self::Es256(k) => {
                let point = k.to_sec1_point(false);
                let (x, y) = (
                    point.x().map(|x| x.to_vec()).unwrap_or_default(),
                    point.y().map(|y| y.to_vec()).unwrap_or_default(),
                );
                return Value::Map(vec![
                    (int(1), int(2)),
                    (int(3), int(COSE_ES256)),
                    (int(-1), int(1)),
                    (int(-2), Value::Bytes(&x)),
                    (int(-3), Value::Bytes(&y)),
                ])
                .to_vec();
            }
            Self::Ed25519(k) => Value::Map(vec![
                (int(1), int(1)),
                (int(3), int(COSE_EDDSA)),
                (int(-1), int(6)),
                (int(-2), Value::Bytes(k.as_bytes())),
            ]),
        };
        map.to_vec()
    }

    /// The COSE algorithm of the key.
    #[must_use]
    pub fn algorithm(&self) -> i64 {
        match self {
            Self::Es256(_) => COSE_ES256,
            Self::Ed25519(_) => COSE_EDDSA,
        }
    }

    /// Checks `signature` over `message` (WebAuthn: authenticator data ‖
    /// SHA-256 of the client data): ES256 signatures are ASN.1 DER, EdDSA
    /// ones 64 bytes, verified strictly (RFC 8032 §5.1.7, no small-order
    /// components).
    ///
    /// # Errors
    /// [`WebAuthnError::BadSignature`] for anything that does not verify,
    /// a malformed signature included.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), WebAuthnError> {
        let ok = match self {
            Self::Es256(key) => p256::ecdsa::Signature::from_der(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            Self::Ed25519(key) => <[u8; 64]>::try_from(signature).is_ok_and(|bytes| {
                let sig = ed25519_dalek::Signature::from_bytes(&bytes);
                key.verify_strict(message, &sig).is_ok()
            }),
        };
        ok.then_some(()).ok_or(WebAuthnError::BadSignature)
    }
}

/// Refuses a COSE key with members other than `allowed`.
fn check_labels(map: &[(Value<'_>, Value<'_>)], allowed: &[i64]) -> Result<(), WebAuthnError> {
    for (label, _) in map {
        if !label.as_i64().is_some_and(|l| allowed.contains(&l)) {
            return Err(WebAuthnError::InvalidKey("an unexpected member"));
        }
    }
    Ok(())
}

/// Attested credential data (WebAuthn §6.5.2): in a registration's
/// authenticator data.
#[derive(Debug, Clone)]
pub struct AttestedCredential {
    /// The authenticator's model (AAGUID; all zero under `none`).
    pub aaguid: [u8; 16],
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The credential public key.
    pub key: CredentialKey,
    /// The key exactly as the authenticator encoded it.
    pub cose_key: Vec<u8>,
}

/// Authenticator data (WebAuthn §6.1), parsed.
#[derive(Debug, Clone)]
pub struct AuthenticatorData {
    /// SHA-256 of the RP ID the authenticator scoped the credential to.
    pub rp_id_hash: [u8; 32],
    /// The flags byte.
    pub flags: u8,
    /// The signature counter (0 for authenticators without one).
    pub sign_count: u32,
    /// Attested credential data (registrations only).
    pub attested: Option<AttestedCredential>,
    /// Whether extension outputs were present (parsed and checked as a
    /// CBOR map; their contents are not interpreted).
    pub has_extensions: bool,
}

impl AuthenticatorData {
    /// Parses authenticator data: 32 bytes of rpIdHash, the flags, a
    /// 4-byte counter, then attested credential data if AT is set and a
    /// CBOR map of extensions if ED is set, and nothing else.
    ///
    /// # Errors
    /// [`WebAuthnError::AuthenticatorData`], [`WebAuthnError::Flags`],
    /// [`WebAuthnError::Cbor`], and the key errors of
    /// [`CredentialKey::from_cose`].
    pub fn parse(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        let truncated = WebAuthnError::AuthenticatorData("truncated");
        let (rp_id_hash, rest) = bytes.split_first_chunk::<32>().ok_or(truncated)?;
        let (&flags, rest) = rest
            .split_first()
            .ok_or(WebAuthnError::AuthenticatorData("truncated"))?;
        let (count, mut rest) = rest
            .split_first_chunk::<4>()
            .ok_or(WebAuthnError::AuthenticatorData("truncated"))?;
        if flags & FLAG_BS != 0 && flags & FLAG_BE == 0 {
            return Err(WebAuthnError::Flags(
                "backed up (BS) but not backup eligible (BE)",
            ));
        }
        let attested = if flags & FLAG_AT != 0 {
            let (aaguid, after) =
                rest.split_first_chunk::<16>()
                    .ok_or(WebAuthnError::AuthenticatorData(
                        "truncated attested credential data",
                    ))?;
            let (len, after) =
                after
                    .split_first_chunk::<2>()
                    .ok_or(WebAuthnError::AuthenticatorData(
                        "truncated attested credential data",
                    ))?;
            let len = usize::from(u16::from_be_bytes(*len));
            if len == 0 || len > 1023 {
                return Err(WebAuthnError::AuthenticatorData(
                    "a credential id is 1 to 1023 bytes",
                ));
            }
            let (id, key_and_rest) = after
                .split_at_checked(len)
                .ok_or(WebAuthnError::AuthenticatorData("truncated credential id"))?;
            let (value, after) = cbor::decode_prefix(key_and_rest, &LIMITS).map_err(|source| {
                WebAuthnError::Cbor {
                    what: "credential public key",
                    source,
                }
            })?;
            let cose = key_and_rest
                .len()
                .checked_sub(after.len())
                .and_then(|n| key_and_rest.get(..n))
                .ok_or(WebAuthnError::AuthenticatorData(
                    "truncated credential public key",
                ))?;
            let key = CredentialKey::from_cose_value(&value)?;
            rest = after;
            Some(AttestedCredential {
                aaguid: *aaguid,
                credential_id: id.to_vec(),
                key,
                cose_key: cose.to_vec(),
            })
        } else {
            None
        };
        let has_extensions = flags & FLAG_ED != 0;
        if has_extensions {
            let extensions = cbor::decode(rest, &LIMITS).map_err(|source| WebAuthnError::Cbor {
                what: "extensions",
                source,
            })?;
            if extensions.as_map().is_none() {
                return Err(WebAuthnError::AuthenticatorData(
                    "extensions are not a CBOR map",
                ));
            }
        } else if !rest.is_empty() {
            return Err(WebAuthnError::AuthenticatorData(
                "bytes after the data its flags announce",
            ));
        }
        Ok(Self {
            rp_id_hash: *rp_id_hash,
            flags,
            sign_count: u32::from_be_bytes(*count),
            attested,
            has_extensions,
        })
    }

    /// UP: a user was present.
    #[must_use]
    pub fn user_present(&self) -> bool {
        self.flags & FLAG_UP != 0
    }

    /// UV: the user was verified (PIN, biometrics).
    #[must_use]
    pub fn user_verified(&self) -> bool {
        self.flags & FLAG_UV != 0
    }

    /// BE: the credential may be backed up (a synced passkey).
    #[must_use]
    pub fn backup_eligible(&self) -> bool {
        self.flags & FLAG_BE != 0
    }

    /// BS: the credential is backed up.
    #[must_use]
    pub fn backed_up(&self) -> bool {
        self.flags & FLAG_BS != 0
    }
}
