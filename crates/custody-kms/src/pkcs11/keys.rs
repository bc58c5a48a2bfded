//! Private keys on a token as the seam sees them: which algorithm a key is
//! (read from `CKA_KEY_TYPE` and `CKA_EC_PARAMS`), what it may do
//! (`CKA_SIGN`, `CKA_DERIVE`, `CKA_DECRYPT`), its public half, and the
//! templates keys are generated with.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use custody_core::{AnyPublicKey, KeyAlgorithm, P256PublicKey, PublicKey, RsaPublicKey};

use super::error::Pkcs11Error;
use super::object::ObjectSelector;
use super::token::{OpError, Pkcs11Token};

/// `CKA_EC_PARAMS` of secp256k1: the DER OID 1.3.132.0.10 (SEC 2).
pub(crate) const SECP256K1_PARAMS: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
/// `CKA_EC_PARAMS` of P-256: the DER OID 1.2.840.10045.3.1.7 (prime256v1,
/// RFC 5480 secp256r1).
pub(crate) const P256_PARAMS: [u8; 10] =
    [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// RSA public exponent of generated keys: 65537.
const F4: [u8; 3] = [0x01, 0x00, 0x01];

/// What custody needs of a private key, for `wrong-key-usage` errors.
pub(crate) const NEED: &str = "custody uses EC secp256k1 keys with CKA_SIGN, EC P-256 keys with CKA_SIGN and/or CKA_DERIVE, and RSA keys (2048 to 8192 bits) with CKA_SIGN and/or CKA_DECRYPT";

/// What a key generated on the token is and may do
/// ([`crate::Pkcs11Signer::generate_key`]). Every generated private key is
/// a token object, `CKA_PRIVATE`, `CKA_SENSITIVE` and not
/// `CKA_EXTRACTABLE`, and allows only what is asked for here.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkcs11KeySpec {
    /// EC secp256k1 (`CKM_EC_KEY_PAIR_GEN`), `CKA_SIGN`: ECDSA (ES256K,
    /// Ethereum).
    Secp256k1,
    /// EC P-256 (`CKM_EC_KEY_PAIR_GEN`): ES256 with `sign`
    /// (`CKA_SIGN`), ECDH with `derive` (`CKA_DERIVE`).
    P256 {
        /// `CKA_SIGN`.
        sign: bool,
        /// `CKA_DERIVE`.
        derive: bool,
    },
    /// RSA of `bits` bits with e = 65537 (`CKM_RSA_PKCS_KEY_PAIR_GEN`):
    /// RS256/PS256 with `sign` (`CKA_SIGN`), RSA-OAEP-256 with `decrypt`
    /// (`CKA_DECRYPT`).
    Rsa {
        /// The modulus size, 2048 to 8192.
        bits: u32,
        /// `CKA_SIGN`.
        sign: bool,
        /// `CKA_DECRYPT`.
        decrypt: bool,
    },
}

impl Pkcs11KeySpec {
    /// The seam's algorithm of keys of this spec.
    #[must_use]
    pub fn algorithm(self) -> KeyAlgorithm {
        match self {
            Self::Secp256k1 => KeyAlgorithm::Secp256k1,
            Self::P256 { .. } => KeyAlgorithm::P256,
            Self::Rsa { .. } => KeyAlgorithm::Rsa,
        }
    }

    /// The usages this spec asks for.
    fn usage(self) -> Usage {
        match self {
            Self::Secp256k1 => Usage {
                sign: true,
                derive: false,
                decrypt: false,
            },
            Self::P256 { sign, derive } => Usage {
                sign,
                derive,
                decrypt: false,
            },
            Self::Rsa { sign, decrypt, .. } => Usage {
                sign,
                derive: false,
                decrypt,
            },
        }
    }

    /// The key-generation mechanism and the public and private templates
    /// (without label and id).
    pub(crate) fn templates(
        self,
    ) -> Result<(Mechanism<'static>, Vec<Attribute>, Vec<Attribute>), Pkcs11Error> {
        let usage = self.usage();
        if !usage.fits(self.algorithm()) {
            return Err(Pkcs11Error::bad_input(
                "a generated key must be allowed at least one operation custody uses",
            ));
        }
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(usage.sign),
        ];
        let mut private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(usage.sign),
            Attribute::Derive(usage.derive),
        ];
        let mechanism = match self {
            Self::Secp256k1 => {
                public.push(Attribute::EcParams(SECP256K1_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
            Self::P256 { .. } => {
                public.push(Attribute::EcParams(P256_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
            Self::Rsa { bits, .. } => {
                if !(2048..=8192).contains(&bits) {
                    return Err(Pkcs11Error::bad_input("an RSA key is of 2048 to 8192 bits"));
                }
                public.extend([
                    Attribute::ModulusBits(u64::from(bits).into()),
                    Attribute::PublicExponent(F4.to_vec()),
                    Attribute::Encrypt(usage.decrypt),
                ]);
                private.push(Attribute::Decrypt(usage.decrypt));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        Ok((mechanism, public, private))
    }
}

/// What a private key allows, of what custody uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// `CKA_SIGN`.
    pub(crate) sign: bool,
    /// `CKA_DERIVE` (ECDH).
    pub(crate) derive: bool,
    /// `CKA_DECRYPT` (RSA-OAEP).
    pub(crate) decrypt: bool,
}

impl Usage {
    /// Whether a key of `algorithm` allows anything custody does with it:
    /// secp256k1 signs; P-256 signs or agrees; RSA signs or decrypts.
    pub(crate) fn fits(self, algorithm: KeyAlgorithm) -> bool {
        match algorithm {
            KeyAlgorithm::Secp256k1 => self.sign,
            KeyAlgorithm::P256 => self.sign || self.derive,
            KeyAlgorithm::Rsa => self.sign || self.decrypt,
            _ => false,
        }
    }
}

/// A private key found on the token.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) handle: ObjectHandle,
    pub(crate) public_key: AnyPublicKey,
    pub(crate) usage: Usage,
}

/// Reads one attribute's bytes out of `get_attributes`'s answer.
pub(crate) fn bytes_of(attrs: &[Attribute], want: AttributeType) -> Option<&[u8]> {
    attrs.iter().find_map(|a| match (a, want) {
        (Attribute::EcParams(v), AttributeType::EcParams)
        | (Attribute::EcPoint(v), AttributeType::EcPoint)
        | (Attribute::Id(v), AttributeType::Id)
        | (Attribute::Modulus(v), AttributeType::Modulus)
        | (Attribute::PublicExponent(v), AttributeType::PublicExponent) => Some(v.as_slice()),
        _ => None,
    })
}

fn flag(attrs: &[Attribute], want: AttributeType) -> bool {
    attrs.iter().any(|a| {
        matches!(
            (a, want),
            (Attribute::Sign(true), AttributeType::Sign)
                | (Attribute::Derive(true), AttributeType::Derive)
                | (Attribute::Decrypt(true), AttributeType::Decrypt)
                | (
                    Attribute::AlwaysAuthenticate(true),
                    AttributeType::AlwaysAuthenticate
                )
        )
    })
}

/// The SEC 1 point inside a `CKA_EC_POINT` value: a DER OCTET STRING around
/// the point (PKCS#11's rule, SoftHSM2's practice), or the bare point (some
/// tokens).
pub(crate) fn ec_point(value: &[u8]) -> Option<&[u8]> {
    let bare = match value {
        [0x04, ..] if value.len() == 65 => true,
        [0x02 | 0x03, ..] if value.len() == 33 => true,
        _ => false,
    };
    if bare {
        return Some(value);
    }
    match value {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => Some(rest),
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() && *len >= 0x80 => {
            Some(rest)
        }
        _ => None,
    }
}

/// The algorithm of a private key's `CKA_KEY_TYPE` and `CKA_EC_PARAMS`, if
/// custody uses it.
fn algorithm_of(attrs: &[Attribute]) -> Option<KeyAlgorithm> {
    let key_type = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(k) => Some(*k),
        _ => None,
    })?;
    if key_type == KeyType::RSA {
        return Some(KeyAlgorithm::Rsa);
    }
    if key_type != KeyType::EC {
        return None;
    }
    match bytes_of(attrs, AttributeType::EcParams)? {
        p if p == SECP256K1_PARAMS => Some(KeyAlgorithm::Secp256k1),
        p if p == P256_PARAMS => Some(KeyAlgorithm::P256),
        _ => None,
    }
}

/// An EC public key of `algorithm` from a `CKA_EC_POINT` value.
fn ec_public_key(
    value: &[u8],
    algorithm: KeyAlgorithm,
    operation: &'static str,
) -> Result<AnyPublicKey, Pkcs11Error> {
    let point = ec_point(value).ok_or_else(|| {
        Pkcs11Error::malformed(
            operation,
            "CKA_EC_POINT is neither a DER OCTET STRING around a point nor a point",
        )
    })?;
    match algorithm {
        KeyAlgorithm::Secp256k1 => PublicKey::from_sec1_bytes(point)
            .map(AnyPublicKey::Secp256k1)
            .map_err(|_| {
                Pkcs11Error::malformed(operation, "CKA_EC_POINT is not a secp256k1 point")
            }),
        _ => P256PublicKey::from_sec1_bytes(point)
            .map(AnyPublicKey::P256)
            .map_err(|_| Pkcs11Error::malformed(operation, "CKA_EC_POINT is not a P-256 point")),
    }
}

/// The public half of a key of `algorithm` held by the object `holder`
/// (its public object, or the private key itself where it carries
/// `CKA_EC_POINT` or `CKA_MODULUS`), or `None` if the object has none.
pub(crate) fn public_of(
    session: &Session,
    holder: ObjectHandle,
    algorithm: KeyAlgorithm,
    operation: &'static str,
    name: &str,
) -> Result<Option<AnyPublicKey>, OpError> {
    if algorithm == KeyAlgorithm::Rsa {
        let attrs = session.get_attributes(
            holder,
            &[AttributeType::Modulus, AttributeType::PublicExponent],
        )?;
        let (Some(n), Some(e)) = (
            bytes_of(&attrs, AttributeType::Modulus),
            bytes_of(&attrs, AttributeType::PublicExponent),
        ) else {
            return Ok(None);
        };
        // A modulus or exponent the seam refuses (too short, e = 3) is a
        // key custody does not use, not a broken token.
        return RsaPublicKey::from_components(n, e)
            .map(|k| Some(AnyPublicKey::Rsa(k)))
            .map_err(|_| OpError::Typed(Pkcs11Error::wrong_key_usage(operation, name, NEED)));
    }
    let attrs = session.get_attributes(holder, &[AttributeType::EcPoint])?;
    match bytes_of(&attrs, AttributeType::EcPoint) {
        Some(value) => Ok(Some(ec_public_key(value, algorithm, operation)?)),
        None => Ok(None),
    }
}

/// Finds a private key, checks it is of an algorithm and usage custody
/// uses, and reads its public half (from the public object with the same
/// `CKA_ID`, else the same label, else the private key itself).
pub(crate) fn resolve(
    token: &Pkcs11Token,
    session: &Session,
    selector: &ObjectSelector,
) -> Result<Resolved, OpError> {
    let handle = selector.find_one(
        token,
        session,
        ObjectClass::PRIVATE_KEY,
        (
            "private key",
            "check the key's CKA_LABEL (or the URI's object=/id=) and the token",
            "several private keys match: name the key by id= too",
        ),
    )?;
    let attrs = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::EcParams,
            AttributeType::Sign,
            AttributeType::Derive,
            AttributeType::Decrypt,
            AttributeType::Id,
            AttributeType::AlwaysAuthenticate,
        ],
    )?;
    let usage = Usage {
        sign: flag(&attrs, AttributeType::Sign),
        derive: flag(&attrs, AttributeType::Derive),
        decrypt: flag(&attrs, AttributeType::Decrypt),
    };
    let algorithm = algorithm_of(&attrs)
        .filter(|a| usage.fits(*a))
        .ok_or_else(|| {
            OpError::Typed(Pkcs11Error::wrong_key_usage(
                "C_GetAttributeValue",
                &selector.name,
                NEED,
            ))
        })?;
    if flag(&attrs, AttributeType::AlwaysAuthenticate) {
        return Err(OpError::Typed(Pkcs11Error::wrong_key_usage(
            "C_GetAttributeValue",
            &selector.name,
            "the key needs the PIN again for every operation (CKA_ALWAYS_AUTHENTICATE), which a service cannot give",
        )));
    }
    // The public key: same CKA_ID if the private key has one, else the
    // same label; some tokens keep the public half on the private key too.
    let key_id = bytes_of(&attrs, AttributeType::Id).filter(|id| !id.is_empty());
    let key_type = if algorithm == KeyAlgorithm::Rsa {
        KeyType::RSA
    } else {
        KeyType::EC
    };
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(key_type),
    ];
    match (key_id, &selector.label) {
        (Some(id), _) => template.push(Attribute::Id(id.to_vec())),
        (None, Some(label)) => template.push(Attribute::Label(label.as_bytes().to_vec())),
        (None, None) => {}
    }
    let public = token.find(session, &template)?;
    let mut holders: Vec<ObjectHandle> = public.into_iter().take(1).collect();
    holders.push(handle);
    for holder in holders {
        if let Some(public_key) = public_of(
            session,
            holder,
            algorithm,
            "C_GetAttributeValue",
            &selector.name,
        )? {
            return Ok(Resolved {
                handle,
                public_key,
                usage,
            });
        }
    }
    Err(OpError::Typed(Pkcs11Error::NotFound {
        what: "public key",
        name: selector.name.clone(),
        advice: "the token holds no CKO_PUBLIC_KEY with the private key's CKA_ID or label, and the private key carries no public half",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_accepts_wrapped_and_bare_points() {
        let mut bare = vec![0x04];
        bare.extend([0x11; 64]);
        assert_eq!(ec_point(&bare), Some(&bare[..]));
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend(&bare);
        assert_eq!(ec_point(&wrapped), Some(&bare[..]));
        let mut compressed = vec![0x02];
        compressed.extend([0x22; 32]);
        assert_eq!(ec_point(&compressed), Some(&compressed[..]));
        let mut wrapped_c = vec![0x04, 0x21];
        wrapped_c.extend(&compressed);
        assert_eq!(ec_point(&wrapped_c), Some(&compressed[..]));
        assert_eq!(ec_point(&[0x04, 0x41, 0x04]), None);
        assert_eq!(ec_point(&[]), None);
    }

    #[test]
    fn curves_are_told_apart_by_their_oid() {
        let ec = |params: &[u8]| {
            algorithm_of(&[
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(params.to_vec()),
            ])
        };
        assert_eq!(ec(&SECP256K1_PARAMS), Some(KeyAlgorithm::Secp256k1));
        assert_eq!(ec(&P256_PARAMS), Some(KeyAlgorithm::P256));
        // P-384 (1.3.132.0.34), and P-256 named by a truncated OID.
        assert_eq!(ec(&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]), None);
        assert_eq!(ec(&P256_PARAMS[..9]), None);
        assert_eq!(
            algorithm_of(&[Attribute::KeyType(KeyType::RSA)]),
            Some(KeyAlgorithm::Rsa)
        );
        assert_eq!(algorithm_of(&[Attribute::KeyType(KeyType::AES)]), None);
    }

    #[test]
    fn usages_fit_only_what_custody_does_with_the_algorithm() {
        let u = |sign, derive, decrypt| Usage {
            sign,
            derive,
            decrypt,
        };
        assert!(u(true, false, false).fits(KeyAlgorithm::Secp256k1));
        assert!(!u(false, true, true).fits(KeyAlgorithm::Secp256k1));
        assert!(u(false, true, false).fits(KeyAlgorithm::P256));
        assert!(!u(false, false, true).fits(KeyAlgorithm::P256));
        assert!(u(false, false, true).fits(KeyAlgorithm::Rsa));
        assert!(!u(false, true, false).fits(KeyAlgorithm::Rsa));
        assert!(!u(true, true, true).fits(KeyAlgorithm::Ed25519));
    }
}
