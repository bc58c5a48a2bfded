//! The DER `SubjectPublicKeyInfo` (RFC 5280 §4.1, RFC 5480 §2) that KMS
//! `GetPublicKey` returns, read strictly enough to refuse any key that is
//! not an EC key on secp256k1.
//!
//! ```text
//! SubjectPublicKeyInfo ::= SEQUENCE {
//!     algorithm  SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY },
//!     subjectPublicKey BIT STRING }
//! ```
//!
//! For an EC key the algorithm is id-ecPublicKey (1.2.840.10045.2.1) and the
//! parameters the named curve; secp256k1 is 1.3.132.0.10 (SEC 2). The curve
//! is read from here, not from `GetPublicKey`'s `KeySpec` (emulators omit it).

/// id-ecPublicKey, 1.2.840.10045.2.1 (the OID's content octets).
const ID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// secp256k1, 1.3.132.0.10.
const SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];
/// NIST P-256 (prime256v1), 1.2.840.10045.3.1.7.
#[cfg(feature = "aws-kms")]
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// rsaEncryption, 1.2.840.113549.1.1.1.
#[cfg(feature = "aws-kms")]
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The DER `SubjectPublicKeyInfo` prefix of an uncompressed P-256 point
/// (RFC 5480: id-ecPublicKey, prime256v1, a 66-byte BIT STRING): what KMS
/// `DeriveSharedSecret` takes as the peer's public key.
#[cfg(feature = "aws-kms")]
pub(crate) const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Why a `SubjectPublicKeyInfo` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpkiError {
    /// Not well-formed DER of the expected shape.
    Malformed,
    /// Well formed, but not an EC public key (e.g. RSA).
    NotEc,
    /// An EC key on another curve (e.g. P-256).
    WrongCurve,
}

/// The SEC 1 encoded point of a secp256k1 `SubjectPublicKeyInfo`.
///
/// # Errors
/// [`SpkiError`] as documented on its variants. The point itself is
/// checked by the caller (it must lie on the curve).
#[cfg(any(feature = "fuzzing", test))]
pub(crate) fn secp256k1_point(spki: &[u8]) -> Result<&[u8], SpkiError> {
    ec_point(spki, SECP256K1)
}

/// The public key of a `SubjectPublicKeyInfo` of one of the algorithms the
/// seam carries and KMS holds: an EC key on secp256k1 or P-256 (its point
/// checked to be on the curve), or an `rsaEncryption` key
/// ([`custody_core::RsaPublicKey::from_spki_der`]'s bounds).
///
/// # Errors
/// [`SpkiError::Malformed`] for bad DER or a point off the curve,
/// [`SpkiError::NotEc`] for another algorithm or an RSA key out of bounds,
/// [`SpkiError::WrongCurve`] for another curve.
#[cfg(feature = "aws-kms")]
pub(crate) fn any_public_key(spki: &[u8]) -> Result<custody_core::AnyPublicKey, SpkiError> {
    use custody_core::{AnyPublicKey, P256PublicKey, PublicKey, RsaPublicKey};
    match ec_point(spki, SECP256K1) {
        Ok(point) => {
            return PublicKey::from_sec1_bytes(point)
                .map(AnyPublicKey::Secp256k1)
                .map_err(|_| SpkiError::Malformed);
        }
        Err(SpkiError::WrongCurve) => {}
        Err(SpkiError::NotEc) => {
            return match algorithm_oid(spki) {
                Some(RSA_ENCRYPTION) => RsaPublicKey::from_spki_der(spki)
                    .map(AnyPublicKey::Rsa)
                    .map_err(|_| SpkiError::NotEc),
                _ => Err(SpkiError::NotEc),
            };
        }
        Err(e) => return Err(e),
    }
    let point = ec_point(spki, P256)?;
    P256PublicKey::from_sec1_bytes(point)
        .map(AnyPublicKey::P256)
        .map_err(|_| SpkiError::Malformed)
}

/// The algorithm OID's content octets of a well-formed SPKI.
#[cfg(feature = "aws-kms")]
fn algorithm_oid(spki: &[u8]) -> Option<&[u8]> {
    let (body, _) = tlv(spki, 0x30).ok()?;
    let (algorithm, _) = tlv(body, 0x30).ok()?;
    let (oid, _) = tlv(algorithm, 0x06).ok()?;
    Some(oid)
}

/// The SEC 1 point of an EC `SubjectPublicKeyInfo` on the curve `curve_oid`.
fn ec_point<'a>(spki: &'a [u8], curve_oid: &[u8]) -> Result<&'a [u8], SpkiError> {
    let (body, rest) = tlv(spki, 0x30)?;
    if !rest.is_empty() {
        return Err(SpkiError::Malformed);
    }
    let (algorithm, rest) = tlv(body, 0x30)?;
    let (bits, rest) = tlv(rest, 0x03)?;
    if !rest.is_empty() {
        return Err(SpkiError::Malformed);
    }
    let (oid, params) = tlv(algorithm, 0x06)?;
    if oid != ID_EC_PUBLIC_KEY {
        return Err(SpkiError::NotEc);
    }
    // RFC 5480: for id-ecPublicKey the parameters are a namedCurve OID.
    let (curve, rest) = tlv(params, 0x06).map_err(|_| SpkiError::WrongCurve)?;
    if !rest.is_empty() {
        return Err(SpkiError::Malformed);
    }
    if curve != curve_oid {
        return Err(SpkiError::WrongCurve);
    }
    match bits.split_first() {
        // No unused bits: the point is a whole number of bytes.
        Some((0, point)) if !point.is_empty() => Ok(point),
        _ => Err(SpkiError::Malformed),
    }
}

/// One DER tag-length-value with the expected tag: (value, rest). Definite
/// minimal lengths up to 65535 bytes.
fn tlv(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), SpkiError> {
    let bad = SpkiError::Malformed;
    let (&t, input) = input.split_first().ok_or(bad)?;
    if t != tag {
        return Err(bad);
    }
    let (&len0, input) = input.split_first().ok_or(bad)?;
    let (len, input) = match len0 {
        0..=0x7f => (usize::from(len0), input),
        0x81 => {
            let (&l, input) = input.split_first().ok_or(bad)?;
            if l < 0x80 {
                return Err(bad);
            }
            (usize::from(l), input)
        }
        0x82 => {
            let (&hi, input) = input.split_first().ok_or(bad)?;
            let (&lo, input) = input.split_first().ok_or(bad)?;
            let l = usize::from(u16::from_be_bytes([hi, lo]));
            if l < 0x100 {
                return Err(bad);
            }
            (l, input)
        }
        _ => return Err(bad),
    };
    if input.len() < len {
        return Err(bad);
    }
    Ok(input.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spki(alg: &[u8], params: &[u8], point: &[u8]) -> Vec<u8> {
        let mut algo = vec![0x06, u8::try_from(alg.len()).unwrap()];
        algo.extend_from_slice(alg);
        algo.extend_from_slice(params);
        let mut body = vec![0x30, u8::try_from(algo.len()).unwrap()];
        body.extend_from_slice(&algo);
        body.push(0x03);
        body.push(u8::try_from(point.len() + 1).unwrap());
        body.push(0);
        body.extend_from_slice(point);
        let mut out = vec![0x30, u8::try_from(body.len()).unwrap()];
        out.extend_from_slice(&body);
        out
    }

    fn curve(oid: &[u8]) -> Vec<u8> {
        let mut v = vec![0x06, u8::try_from(oid.len()).unwrap()];
        v.extend_from_slice(oid);
        v
    }

    #[test]
    fn reads_a_secp256k1_key_and_refuses_others() {
        let point = [4u8; 65];
        let good = spki(ID_EC_PUBLIC_KEY, &curve(SECP256K1), &point);
        assert_eq!(good.len(), 88); // the size KMS returns for ECC_SECG_P256K1
        assert_eq!(secp256k1_point(&good), Ok(&point[..]));

        let p256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        assert_eq!(
            secp256k1_point(&spki(ID_EC_PUBLIC_KEY, &curve(&p256), &point)),
            Err(SpkiError::WrongCurve)
        );
        let rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
        assert_eq!(
            secp256k1_point(&spki(&rsa, &[0x05, 0x00], &point)),
            Err(SpkiError::NotEc)
        );
        assert_eq!(
            secp256k1_point(&spki(ID_EC_PUBLIC_KEY, &[], &point)),
            Err(SpkiError::WrongCurve)
        );

        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(secp256k1_point(&trailing), Err(SpkiError::Malformed));
        for cut in 0..good.len() {
            assert!(secp256k1_point(&good[..cut]).is_err(), "{cut}");
        }
        let mut unused_bits = good.clone();
        unused_bits[22] = 1;
        assert_eq!(secp256k1_point(&unused_bits), Err(SpkiError::Malformed));
    }

    #[cfg(feature = "aws-kms")]
    #[test]
    fn reads_p256_and_rsa_keys_and_refuses_other_curves() {
        use custody_core::{AnyPublicKey, KeyAlgorithm};
        // A P-256 point made by RustCrypto, in the prefix DeriveSharedSecret takes.
        let key = p256::SecretKey::from_slice(&[7; 32]).unwrap().public_key();
        let point = custody_core::P256PublicKey::from(key).to_uncompressed();
        let good = spki(ID_EC_PUBLIC_KEY, &curve(P256), &point);
        assert_eq!(good[..26], P256_SPKI_PREFIX);
        assert!(matches!(
            any_public_key(&good),
            Ok(AnyPublicKey::P256(k)) if k.to_uncompressed() == point
        ));
        // A point off the curve is malformed; P-384 is another curve.
        let off = spki(ID_EC_PUBLIC_KEY, &curve(P256), &[4u8; 65]);
        assert_eq!(any_public_key(&off), Err(SpkiError::Malformed));
        let p384 = [0x2b, 0x81, 0x04, 0x00, 0x22];
        let other = spki(ID_EC_PUBLIC_KEY, &curve(&p384), &point);
        assert_eq!(any_public_key(&other), Err(SpkiError::WrongCurve));
        // secp256k1 still reads as before (its generator, SEC 2 §2.4.1).
        let g = hex::decode(concat!(
            "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
            "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
        ))
        .unwrap();
        let good = spki(ID_EC_PUBLIC_KEY, &curve(SECP256K1), &g);
        assert_eq!(
            any_public_key(&good).map(|k| k.algorithm()),
            Ok(KeyAlgorithm::Secp256k1)
        );
        // An RSA algorithm with a bit string that is no RSAPublicKey.
        assert_eq!(
            any_public_key(&spki(RSA_ENCRYPTION, &[0x05, 0x00], &point)),
            Err(SpkiError::NotEc)
        );
    }
}
