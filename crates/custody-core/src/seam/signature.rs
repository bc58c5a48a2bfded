//! Public keys, digests and signatures, and the one place where whatever a
//! backend returns becomes a normalized, recoverable signature.
//!
//! Backends differ in what they return: the software signer gives `r‖s` with a
//! recovery id; AWS KMS gives DER with no recovery id and either `s`; a PKCS#11
//! token gives `r‖s` with no recovery id and either `s`. [`normalize`] turns
//! each into the form Ethereum needs — `s ≤ n/2` (EIP-2) and the recovery
//! parity that recovers the *pinned* public key — and every signing path in the
//! SDK goes through it (see [`crate::KeySigner`]).

use std::fmt;

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::group::Group;
use k256::elliptic_curve::ops::{MulByGeneratorVartime, Reduce};
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::sec1::ToSec1Point;
use k256::{FieldBytes, ProjectivePoint, Scalar};

use crate::Error;

/// A 32-byte message digest to be signed (e.g. a transaction's signing hash).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest32(pub [u8; 32]);

impl Digest32 {
    /// The digest bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for Digest32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest32(0x{})", hex::encode(self.0))
    }
}

impl From<[u8; 32]> for Digest32 {
    fn from(b: [u8; 32]) -> Self {
        Self(b)
    }
}

/// A secp256k1 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(k256::PublicKey);

impl PublicKey {
    /// Parses a SEC 1 encoded point (33-byte compressed or 65-byte
    /// uncompressed).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if the bytes are not a point on the curve.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        k256::PublicKey::from_sec1_bytes(bytes)
            .map(Self)
            .map_err(|_| Error::InvalidKeyMaterial("not a secp256k1 public key"))
    }

    /// The 65-byte uncompressed SEC 1 encoding (`04‖x‖y`).
    #[must_use]
    pub fn to_uncompressed(&self) -> [u8; 65] {
        sec1_array(self.0.to_sec1_point(false).as_bytes())
    }

    /// The 33-byte compressed SEC 1 encoding (`02/03‖x`).
    #[must_use]
    pub fn to_compressed(&self) -> [u8; 33] {
        sec1_array(self.0.to_sec1_point(true).as_bytes())
    }

    /// The underlying `k256` key.
    #[must_use]
    pub fn as_k256(&self) -> &k256::PublicKey {
        &self.0
    }
}

/// A SEC 1 encoding as the fixed-size array its form has (33 bytes
/// compressed, 65 uncompressed, for both secp256k1 and P-256): the curve
/// library's encoding is exactly that long.
pub(crate) fn sec1_array<const N: usize>(encoded: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(encoded);
    out
}

impl From<k256::PublicKey> for PublicKey {
    fn from(k: k256::PublicKey) -> Self {
        Self(k)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(0x{})", hex::encode(self.to_compressed()))
    }
}

/// A normalized ECDSA/secp256k1 signature with its recovery parity:
/// `0 < r < n`, `0 < s ≤ n/2`, and `y_parity` the parity of the `R` point's
/// y coordinate, so that recovery yields the signer's public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RecoverableSignature {
    r: [u8; 32],
    s: [u8; 32],
    y_parity: bool,
}

impl RecoverableSignature {
    /// `r`, 32 bytes big-endian.
    #[must_use]
    pub fn r(&self) -> &[u8; 32] {
        &self.r
    }

    /// `s`, 32 bytes big-endian (always in the low half of the order).
    #[must_use]
    pub fn s(&self) -> &[u8; 32] {
        &self.s
    }

    /// The recovery parity (EIP-2718 `yParity`): `true` when `R.y` is odd.
    #[must_use]
    pub fn y_parity(&self) -> bool {
        self.y_parity
    }

    /// `r‖s`, 64 bytes.
    #[must_use]
    pub fn to_compact(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.r);
        out[32..].copy_from_slice(&self.s);
        out
    }

    /// Builds a signature from parts, checking that `r` and `s` are in range
    /// and `s` is low. Use [`normalize`] for anything a backend returned.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] if `r` or `s` is out of range or `s` is high.
    pub fn from_parts(r: [u8; 32], s: [u8; 32], y_parity: bool) -> Result<Self, Error> {
        let sig = Signature::from_scalars(r, s).map_err(|_| Error::InvalidSignature)?;
        if sig.normalize_s() != sig {
            return Err(Error::InvalidSignature);
        }
        Ok(Self { r, s, y_parity })
    }

    /// Recovers the public key that made this signature over `digest`.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] if no public key recovers.
    pub fn recover(&self, digest: &Digest32) -> Result<PublicKey, Error> {
        let sig = Signature::from_scalars(self.r, self.s).map_err(|_| Error::InvalidSignature)?;
        let recid = RecoveryId::new(self.y_parity, false);
        VerifyingKey::recover_from_prehash(&digest.0, &sig, recid)
            .map(|vk| PublicKey(k256::PublicKey::from(&vk)))
            .map_err(|_| Error::InvalidSignature)
    }
}

impl fmt::Debug for RecoverableSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoverableSignature")
            .field("r", &format_args!("0x{}", hex::encode(self.r)))
            .field("s", &format_args!("0x{}", hex::encode(self.s)))
            .field("y_parity", &self.y_parity)
            .finish()
    }
}

/// What a backend returned, before normalization.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawSignature {
    /// An ASN.1 DER `ECDSA-Sig-Value` (AWS KMS, many HSM SDKs); any `s`.
    Der(Vec<u8>),
    /// `r‖s`, 64 bytes (PKCS#11 `CKM_ECDSA`); any `s`; no recovery id.
    Compact([u8; 64]),
    /// `r‖s` with the recovery id from an in-process signer that derived the
    /// key it signed with from the pinned key's own material; any `s` (the
    /// parity is flipped with `s` when normalizing).
    Recoverable {
        /// `r‖s`.
        compact: [u8; 64],
        /// The parity of `R.y` for the `s` given.
        y_parity: bool,
    },
    /// An RSA signature (RSASSA-PKCS1-v1_5 or RSASSA-PSS), big-endian, as
    /// long as the modulus (KMS `Sign`, PKCS#11 `CKM_RSA_PKCS`/`_PSS`);
    /// checked by [`crate::check_signature`], never by [`normalize`].
    Rsa(Vec<u8>),
}

/// Turns a backend's raw signature into a [`RecoverableSignature`] for
/// `pinned` over `digest`: the one normalization every backend goes through.
///
/// - DER is parsed strictly (minimal lengths and integers, nothing trailing).
/// - `r` and `s` must be in `1..n`.
/// - A high `s` becomes `n - s`, and **the recovery parity flips with it**
///   (the bug peers shipped was normalizing `s` and keeping the parity).
/// - With no recovery id (KMS, HSM), it is found from the pinned key: the
///   point `R = (z/s)·G + (r/s)·Q` that verification computes (one
///   double-scalar multiplication) must have `R.x = r`, and `R.y`'s parity
///   is the recovery id. If `R.x ≠ r` the signature is not from the pinned
///   key and [`Error::InvalidSignature`] is returned (a backend that signed
///   with the wrong key is caught here). This costs one verification where
///   trying both parities by recovery cost 1.5 recoveries on average; the
///   answer is the same (`recovery_id_matches_trial_recovery` checks it),
///   and never assumed to be 0.
///
/// # Errors
/// [`Error::InvalidSignature`] for malformed DER, out-of-range scalars, or a
/// signature that does not recover the pinned key.
pub fn normalize(
    raw: &RawSignature,
    pinned: &PublicKey,
    digest: &Digest32,
) -> Result<RecoverableSignature, Error> {
    let (compact, parity) = match raw {
        RawSignature::Der(der) => (parse_der(der)?, None),
        RawSignature::Compact(c) => (*c, None),
        RawSignature::Recoverable { compact, y_parity } => (*compact, Some(*y_parity)),
        RawSignature::Rsa(_) => return Err(Error::InvalidSignature),
    };
    let (r, s) = low_s_parts(&compact)?;
    let flipped = compact.get(32..) != Some(&s[..]);
    match parity {
        Some(p) => Ok(RecoverableSignature {
            r,
            s,
            y_parity: p ^ flipped,
        }),
        None => Ok(RecoverableSignature {
            r,
            s,
            y_parity: r_parity(&r, &s, pinned, digest)?,
        }),
    }
}

/// The parity of `R.y` for the signature `(r, s)` of `digest` by `pinned`:
/// `R = (z/s)·G + (r/s)·Q`, which must have `R.x = r` exactly (a signature
/// whose `R.x` is `r + n` has a recovery id Ethereum cannot express, and is
/// refused, as recovery with parity 0 or 1 refuses it). Variable time:
/// everything here is public.
fn r_parity(
    r: &[u8; 32],
    s: &[u8; 32],
    pinned: &PublicKey,
    digest: &Digest32,
) -> Result<bool, Error> {
    let scalar = |x: &[u8; 32]| {
        Option::<Scalar>::from(Scalar::from_repr(FieldBytes::from(*x)))
            .ok_or(Error::InvalidSignature)
    };
    let (r_scalar, s_scalar) = (scalar(r)?, scalar(s)?);
    let z = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(digest.0));
    let s_inv = Option::<Scalar>::from(s_scalar.invert_vartime()).ok_or(Error::InvalidSignature)?;
    let q = ProjectivePoint::from(*pinned.0.as_affine());
    let point = ProjectivePoint::mul_by_generator_and_mul_add_vartime(
        &(z * s_inv),
        &(r_scalar * s_inv),
        &q,
    );
    if bool::from(point.is_identity()) {
        return Err(Error::InvalidSignature);
    }
    let point = point.to_affine();
    if point.x().as_slice() != r.as_slice() {
        return Err(Error::InvalidSignature);
    }
    Ok(point.y_is_odd().into())
}

/// The secp256k1 group order `n`, big-endian (checked against k256 by
/// `normalize_matches_k256`; the unit tests of other modules use it too).
pub(crate) const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// `⌊n/2⌋`: EIP-2's largest allowed `s`.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// The `s` half of `r‖s`.
fn compact_s(compact: &[u8; 64]) -> [u8; 32] {
    let mut s = [0u8; 32];
    s.copy_from_slice(compact.get(32..).unwrap_or_default());
    s
}

/// `r` and `s` of `r‖s`, checked to lie in `1..n`, with `s` replaced by
/// `n - s` if it is above `n/2`. A signature is public: this runs in
/// variable time on big-endian byte arrays (whose order is their numeric
/// order), which costs a few nanoseconds where parsing into scalars and back
/// costs about a hundred; the `normalize_matches_k256` test checks it
/// against k256's `Signature::from_slice` and `normalize_s`.
fn low_s_parts(compact: &[u8; 64]) -> Result<([u8; 32], [u8; 32]), Error> {
    let mut r = [0u8; 32];
    r.copy_from_slice(compact.get(..32).unwrap_or_default());
    let s = compact_s(compact);
    let in_range = |x: &[u8; 32]| *x != [0u8; 32] && *x < ORDER;
    if !in_range(&r) || !in_range(&s) {
        return Err(Error::InvalidSignature);
    }
    if s <= HALF_ORDER {
        return Ok((r, s));
    }
    // n - s, with 0 < s < n: no final borrow.
    let mut low = [0u8; 32];
    let mut borrow = 0u16;
    for ((out, n), x) in low.iter_mut().zip(ORDER).zip(s).rev() {
        let d = u16::from(n).wrapping_sub(u16::from(x)).wrapping_sub(borrow);
        *out = d.to_be_bytes()[1];
        borrow = d >> 15;
    }
    Ok((r, low))
}

/// Parses a strict DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`
/// into `r‖s`. Rejects non-minimal lengths, negative or non-minimal integers,
/// integers wider than 32 bytes and trailing bytes.
///
/// # Errors
/// [`Error::InvalidSignature`] for anything that is not strict DER.
pub fn parse_der(der: &[u8]) -> Result<[u8; 64], Error> {
    let bad = Error::InvalidSignature;
    let (tag, body, rest) = der_tlv(der).ok_or(Error::InvalidSignature)?;
    if tag != 0x30 || !rest.is_empty() {
        return Err(bad);
    }
    let (rt, r, rest) = der_tlv(body).ok_or(Error::InvalidSignature)?;
    let (st, s, rest) = der_tlv(rest).ok_or(Error::InvalidSignature)?;
    if rt != 0x02 || st != 0x02 || !rest.is_empty() {
        return Err(bad);
    }
    let mut out = [0u8; 64];
    der_uint_into(r, &mut out[..32])?;
    der_uint_into(s, &mut out[32..])?;
    Ok(out)
}

/// One tag-length-value: (tag, value, rest). Only definite, minimal lengths
/// up to 255 are accepted (an ECDSA signature is never longer).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    let (&len0, input) = input.split_first()?;
    let (len, input) = match len0 {
        0..=0x7f => (usize::from(len0), input),
        0x81 => {
            let (&l, input) = input.split_first()?;
            if l < 0x80 {
                return None; // should have used the short form
            }
            (usize::from(l), input)
        }
        _ => return None,
    };
    if input.len() < len {
        return None;
    }
    let (value, rest) = input.split_at(len);
    Some((tag, value, rest))
}

fn der_uint_into(int: &[u8], out: &mut [u8]) -> Result<(), Error> {
    let bad = Error::InvalidSignature;
    let (&first, _) = int.split_first().ok_or(Error::InvalidSignature)?;
    if first & 0x80 != 0 {
        return Err(bad); // negative
    }
    let digits = if first == 0 {
        let tail = &int[1..];
        match tail.first() {
            // A leading zero is only allowed before a byte with the top bit set.
            Some(&b) if b & 0x80 != 0 => tail,
            None => tail, // the integer 0: rejected below as out of range
            Some(_) => return Err(bad),
        }
    } else {
        int
    };
    if digits.len() > out.len() {
        return Err(bad);
    }
    let start = out.len() - digits.len();
    out[start..].copy_from_slice(digits);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    fn key() -> (SigningKey, PublicKey) {
        let sk = SigningKey::from_slice(&[0x11; 32]).unwrap();
        let pk = PublicKey(k256::PublicKey::from(sk.verifying_key()));
        (sk, pk)
    }

    fn split(sig: &Signature) -> ([u8; 32], [u8; 32]) {
        let (r, s) = sig.split_bytes();
        (r.into(), s.into())
    }

    /// k256's reading of `r‖s`: `None` if out of range, else the low-`s`
    /// parts and whether `s` was flipped.
    fn k256_low_s(compact: &[u8; 64]) -> Option<([u8; 32], [u8; 32])> {
        let sig = Signature::from_slice(compact).ok()?;
        let (r, s) = sig.normalize_s().split_bytes();
        Some((r.into(), s.into()))
    }

    /// Edge values of a signature scalar: 0, 1, n/2 and its neighbours,
    /// n-1, n, n+1, 2^256-1.
    fn edge_scalars() -> Vec<[u8; 32]> {
        let add = |x: [u8; 32], d: i8| {
            let mut v = k256::U256::from_be_slice(&x);
            if d >= 0 {
                v = v.wrapping_add(&k256::U256::from_u8(d.unsigned_abs()));
            } else {
                v = v.wrapping_sub(&k256::U256::from_u8(d.unsigned_abs()));
            }
            let mut out = [0u8; 32];
            out.copy_from_slice(&v.to_be_bytes());
            out
        };
        let mut v = vec![[0u8; 32], add([0; 32], 1), [0xff; 32]];
        for d in [-1, 0, 1, 2] {
            v.push(add(HALF_ORDER, d));
            v.push(add(ORDER, d));
        }
        v
    }

    #[test]
    fn normalize_matches_k256() {
        let mut compacts: Vec<[u8; 64]> = Vec::new();
        for r in edge_scalars() {
            for s in edge_scalars() {
                let mut c = [0u8; 64];
                c[..32].copy_from_slice(&r);
                c[32..].copy_from_slice(&s);
                compacts.push(c);
            }
        }
        let mut random = [0u8; 64 * 4096];
        getrandom::fill(&mut random).unwrap();
        for chunk in random.chunks_exact(64) {
            let mut c: [u8; 64] = chunk.try_into().unwrap();
            compacts.push(c);
            // Also with a top bit cleared (the in-range half of the draws).
            c[0] &= 0x7f;
            c[32] &= 0x7f;
            compacts.push(c);
        }
        for c in &compacts {
            assert_eq!(low_s_parts(c).ok(), k256_low_s(c), "{}", hex::encode(c));
        }
        // The cases this must not get wrong are present.
        let outcomes: Vec<_> = compacts.iter().map(|c| low_s_parts(c).ok()).collect();
        assert!(outcomes.iter().any(Option::is_none));
        assert!(
            compacts
                .iter()
                .zip(&outcomes)
                .any(|(c, o)| o.is_some_and(|(_, s)| s[..] != c[32..]))
        );
        assert!(
            compacts
                .iter()
                .zip(&outcomes)
                .any(|(c, o)| o.is_some_and(|(_, s)| s[..] == c[32..]))
        );
    }

    fn high_s(sig: &Signature) -> Signature {
        let (r, s) = sig.split_scalars();
        Signature::from_scalars(r.to_repr(), (-*s).to_repr()).unwrap()
    }

    fn der_of(sig: &Signature) -> Vec<u8> {
        fn int(b: &[u8]) -> Vec<u8> {
            let mut v: Vec<u8> = b.iter().copied().skip_while(|&x| x == 0).collect();
            if v.first().is_none_or(|&x| x & 0x80 != 0) {
                v.insert(0, 0);
            }
            let mut out = vec![0x02, v.len() as u8];
            out.extend(v);
            out
        }
        let (r, s) = sig.split_bytes();
        let mut body = int(&r);
        body.extend(int(&s));
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn low_s_normalization_flips_recovery_parity() {
        // Regression (DESIGN.md, "mistakes peers shipped"): normalizing s to
        // low-s without flipping the recovery parity recovers the wrong key.
        let (sk, pk) = key();
        for i in 0u8..16 {
            let digest = Digest32([i; 32]);
            let (sig, recid) = sk.sign_prehash_recoverable(&digest.0);
            let hi = high_s(&sig);
            let raw = RawSignature::Recoverable {
                compact: hi.to_bytes().into(),
                y_parity: !recid.is_y_odd(),
            };
            let n = normalize(&raw, &pk, &digest).unwrap();
            assert_eq!(n.y_parity(), recid.is_y_odd(), "parity must flip with s");
            assert_eq!(n.s(), &split(&sig).1);
            assert_eq!(n.recover(&digest).unwrap(), pk);
        }
    }

    #[test]
    fn missing_recovery_id_is_found_by_recovering_the_pinned_key() {
        // Regression: the recovery id "only ever tried as 0" bug. Over many
        // digests both parities must occur and both must be found.
        let (sk, pk) = key();
        let mut seen = [false; 2];
        for i in 0u8..64 {
            let digest = Digest32([i; 32]);
            let (sig, recid) = sk.sign_prehash_recoverable(&digest.0);
            for raw in [
                RawSignature::Compact(sig.to_bytes().into()),
                RawSignature::Compact(high_s(&sig).to_bytes().into()),
                RawSignature::Der(der_of(&sig)),
                RawSignature::Der(der_of(&high_s(&sig))),
            ] {
                let n = normalize(&raw, &pk, &digest).unwrap();
                assert_eq!(n.y_parity(), recid.is_y_odd());
                assert_eq!(n.recover(&digest).unwrap(), pk);
            }
            seen[usize::from(recid.is_y_odd())] = true;
        }
        assert_eq!(seen, [true, true]);
    }

    #[test]
    fn signature_from_another_key_is_rejected() {
        let (_, pk) = key();
        let other = SigningKey::from_slice(&[0x22; 32]).unwrap();
        let digest = Digest32([9; 32]);
        let (sig, _) = other.sign_prehash_recoverable(&digest.0);
        let raw = RawSignature::Compact(sig.to_bytes().into());
        assert!(matches!(
            normalize(&raw, &pk, &digest),
            Err(Error::InvalidSignature)
        ));
    }

    #[test]
    fn der_parser_is_strict() {
        let (sk, _) = key();
        let (sig, _) = sk.sign_prehash_recoverable(&[3; 32]);
        let good = der_of(&sig);
        assert_eq!(parse_der(&good).unwrap(), <[u8; 64]>::from(sig.to_bytes()));
        // trailing byte
        let mut t = good.clone();
        t.push(0);
        assert!(parse_der(&t).is_err());
        // truncated at every length
        for n in 0..good.len() {
            assert!(parse_der(&good[..n]).is_err(), "prefix {n}");
        }
        // non-minimal integer (extra leading zero)
        assert!(parse_der(&[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01]).is_err());
        // negative integer
        assert!(parse_der(&[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01]).is_err());
        // long-form length where short form fits
        assert!(parse_der(&[0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]).is_err());
        // wrong tags
        assert!(parse_der(&[0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]).is_err());
        // 33 significant bytes
        let mut wide = vec![0x30, 0x26, 0x02, 0x21];
        wide.extend([0x7f; 33]);
        wide.extend([0x02, 0x01, 0x01]);
        assert!(parse_der(&wide).is_err());
        // r = 0 parses but is rejected as a signature
        let zero = parse_der(&[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01]).unwrap();
        let pk = key().1;
        assert!(normalize(&RawSignature::Compact(zero), &pk, &Digest32([0; 32])).is_err());
    }

    #[test]
    fn from_parts_rejects_high_s() {
        let (sk, _) = key();
        let (sig, recid) = sk.sign_prehash_recoverable(&[5; 32]);
        let (r, s) = split(&sig);
        assert!(RecoverableSignature::from_parts(r, s, recid.is_y_odd()).is_ok());
        let (r2, s2) = split(&high_s(&sig));
        assert!(RecoverableSignature::from_parts(r2, s2, recid.is_y_odd()).is_err());
    }

    #[test]
    fn debug_shows_public_values_only() {
        let (_, pk) = key();
        assert!(format!("{pk:?}").starts_with("PublicKey(0x0"));
    }
}

#[cfg(test)]
mod recovery_id {
    use super::*;
    use k256::ecdsa::SigningKey;

    /// What `normalize` did before it found the recovery id from `R`: try
    /// both parities by recovery, keep the one giving the pinned key.
    fn by_trial_recovery(
        r: [u8; 32],
        s: [u8; 32],
        pinned: &PublicKey,
        digest: &Digest32,
    ) -> Option<bool> {
        [false, true].into_iter().find(|&y_parity| {
            RecoverableSignature { r, s, y_parity }
                .recover(digest)
                .ok()
                .as_ref()
                == Some(pinned)
        })
    }

    fn key(seed: u64) -> (SigningKey, PublicKey) {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_be_bytes());
        bytes[31] = 1;
        let sk = SigningKey::from_slice(&bytes).unwrap();
        let pk = PublicKey(k256::PublicKey::from(sk.verifying_key()));
        (sk, pk)
    }

    #[test]
    fn recovery_id_matches_trial_recovery_and_k256() {
        let mut parities = [0u32; 2];
        for i in 0..512u64 {
            let (sk, pk) = key(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut d = [0u8; 32];
            d[..8].copy_from_slice(&i.to_le_bytes());
            d[31] = 0xa5;
            let digest = Digest32(d);
            let (sig, recid) = sk.sign_prehash_recoverable(&digest.0);
            let low: [u8; 64] = sig.to_bytes().into();
            // The same signature with the high s a KMS or HSM may return.
            let high = {
                let (r, s) = sig.split_scalars();
                let mut out = [0u8; 64];
                out[..32].copy_from_slice(&r.to_repr());
                out[32..].copy_from_slice(&(-*s).to_repr());
                out
            };
            for compact in [low, high] {
                let ours = normalize(&RawSignature::Compact(compact), &pk, &digest).unwrap();
                assert_eq!(
                    Some(ours.y_parity()),
                    by_trial_recovery(*ours.r(), *ours.s(), &pk, &digest),
                    "key {i}"
                );
                // k256 signs low-s already: its recovery id is the answer.
                assert_eq!(ours.y_parity(), recid.is_y_odd(), "key {i}");
                assert_eq!(ours.recover(&digest).unwrap(), pk);
            }
            parities[usize::from(recid.is_y_odd())] += 1;
        }
        assert!(parities[0] > 200 && parities[1] > 200, "{parities:?}");
    }

    #[test]
    fn another_keys_signature_or_digest_is_refused() {
        let (sk, _) = key(7);
        let (_, other) = key(8);
        let digest = Digest32([3; 32]);
        let (sig, _) = sk.sign_prehash_recoverable(&digest.0);
        let compact: [u8; 64] = sig.to_bytes().into();
        assert!(matches!(
            normalize(&RawSignature::Compact(compact), &other, &digest),
            Err(Error::InvalidSignature)
        ));
        let (_, pk) = key(7);
        assert!(matches!(
            normalize(&RawSignature::Compact(compact), &pk, &Digest32([4; 32])),
            Err(Error::InvalidSignature)
        ));
    }
}
