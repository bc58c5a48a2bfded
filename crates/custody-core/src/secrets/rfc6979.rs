//! RFC 6979 deterministic nonces for ECDSA over secp256k1 with SHA-256,
//! and the signature made with them: the default build's signing path.
//!
//! # Why not `ecdsa::hazmat::sign_prehashed_rfc6979`
//! It gives the same nonce (this module's tests check it against the
//! `rfc6979` crate that function uses, candidate for candidate, and the
//! vault's signatures against `k256`'s `SigningKey`), but costs 30 SHA-256
//! compressions where this costs 16, about 0.8 µs of a 25 µs signature
//! (`benches/`, and the README's "Speed"):
//! - `rfc6979` 0.6 keys a fresh `SimpleHmac` for every HMAC, so the padded
//!   key block is hashed again each time (two compressions per HMAC). Here
//!   each key `K` is keyed once into [`Hmac`], which keeps the inner and
//!   outer hash states after the padded key blocks; every HMAC under that
//!   `K` then starts from a copy of them. The first `K` (32 zero bytes) is
//!   public, so its keyed state is computed once per process.
//! - It also prepares the retry state of step h.3 (`K = HMAC_K(V ‖ 0x00)`,
//!   `V = HMAC_K(V)`) after every candidate, although the first candidate
//!   is taken with probability 1 − 2^-127. Here that update runs only when
//!   a candidate is refused, as RFC 6979 writes it.
//!
//! # The procedure (RFC 6979 §3.2, `qlen = hlen = 256`)
//! With `x` the private key and `h1` the 32-byte digest, and `int2octets`
//! and `bits2octets` of §2.3 (for this curve and hash, `bits2int` is the
//! big-endian integer, so `bits2octets(h1)` is `h1 mod n` in 32 bytes):
//! ```text
//! V = 0x01 × 32, K = 0x00 × 32
//! K = HMAC_K(V ‖ 0x00 ‖ int2octets(x) ‖ bits2octets(h1));  V = HMAC_K(V)
//! K = HMAC_K(V ‖ 0x01 ‖ int2octets(x) ‖ bits2octets(h1));  V = HMAC_K(V)
//! loop: V = HMAC_K(V); k = V; if 1 ≤ k < n: use k
//!       else: K = HMAC_K(V ‖ 0x00); V = HMAC_K(V)
//! ```
//! A `k` whose signature has `r = 0` or `s = 0` is refused the same way (as
//! `ecdsa` does), so the signature is the same in every case.
//!
//! # Secrets
//! `x`, every `K` (and its keyed hash states) and every `V` are secret: all
//! are wiped on drop (`Zeroizing`, and the `zeroize` features of `sha2` and
//! `hmac` for the hash states, proven by `_keyed_mac_is_wiped_on_drop`).
//! Nothing branches on them except the candidate's validity, which is
//! refused with probability below 2^-127 (as in `ecdsa`).

use std::sync::LazyLock;

use hmac::digest::FixedOutput;
use hmac::{Hmac, KeyInit, Mac};
use k256::elliptic_curve::ops::Reduce;
use k256::{FieldBytes, NonZeroScalar, Scalar, Secp256k1, U256};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{Digest32, Error, PrivateKeyBytes, RawSignature};

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 keyed with the initial `K` of step c (32 zero bytes): public,
/// so keyed once per process.
static ZERO_KEY: LazyLock<HmacSha256> = LazyLock::new(|| keyed(&[0u8; 32]));

/// Compile-time proof that a keyed [`HmacSha256`] wipes its state on drop:
/// its two SHA-256 states and its block buffer implement `ZeroizeOnDrop`
/// (the `zeroize` features of `sha2` and `hmac`). Never called.
fn _keyed_mac_is_wiped_on_drop() {
    fn wiped<T: zeroize::ZeroizeOnDrop>() {}
    wiped::<<Sha256 as hmac::EagerHash>::Core>();
    wiped::<hmac::digest::block_api::Buffer<<Sha256 as hmac::EagerHash>::Core>>();
}

/// HMAC-SHA256 keyed with `k`: given as the 64-byte block `k ‖ 0^32`,
/// which is how HMAC pads a key shorter than the block (RFC 2104 §2), so
/// keying cannot fail.
fn keyed(k: &[u8; 32]) -> HmacSha256 {
    let mut block = Zeroizing::new(hmac::digest::Key::<HmacSha256>::default());
    block[..32].copy_from_slice(k);
    <HmacSha256 as KeyInit>::new(&block)
}

/// `HMAC_K(parts[0] ‖ parts[1] ‖ …)` from the keyed state `mac`, into `out`.
fn hmac_into(mac: &HmacSha256, parts: &[&[u8]], out: &mut [u8; 32]) {
    let mut mac = mac.clone();
    for part in parts {
        Mac::update(&mut mac, part);
    }
    mac.finalize_into(out.into());
}

/// The HMAC-DRBG of RFC 6979 §3.2 for one (key, digest): the candidates
/// `k` in order.
pub(crate) struct Nonces {
    /// `K`, keyed.
    k: HmacSha256,
    /// `V`.
    v: Zeroizing<[u8; 32]>,
    /// Whether a candidate was given (the next one needs step h.3 first).
    given: bool,
}

impl Nonces {
    /// Steps a to g for private key `x` (32 bytes, big-endian, in 1..n−1:
    /// `int2octets(x)`) and digest `h1`.
    pub(crate) fn new(x: &[u8; 32], h1: &[u8; 32]) -> Self {
        let h1 = bits2octets(h1);
        let mut v = Zeroizing::new([0x01u8; 32]);
        let mut k = Zeroizing::new([0u8; 32]);
        // d, e.
        hmac_into(
            &ZERO_KEY,
            &[v.as_slice(), &[0x00], x, h1.as_slice()],
            &mut k,
        );
        let mut mac = keyed(&k);
        next_v(&mac, &mut v);
        // f, g.
        hmac_into(&mac, &[v.as_slice(), &[0x01], x, h1.as_slice()], &mut k);
        mac = keyed(&k);
        next_v(&mac, &mut v);
        Self {
            k: mac,
            v,
            given: false,
        }
    }

    /// The next candidate `T` (step h.1 and h.2, after h.3 if a candidate
    /// was given before): 32 bytes, not yet checked to be in 1..n−1.
    pub(crate) fn next_candidate(&mut self) -> Zeroizing<[u8; 32]> {
        if self.given {
            // h.3: K = HMAC_K(V ‖ 0x00); V = HMAC_K(V).
            let mut k = Zeroizing::new([0u8; 32]);
            hmac_into(&self.k, &[self.v.as_slice(), &[0x00]], &mut k);
            self.k = keyed(&k);
            next_v(&self.k, &mut self.v);
        }
        self.given = true;
        // h.2: V = HMAC_K(V); T = V (qlen = hlen: one block is enough).
        next_v(&self.k, &mut self.v);
        self.v.clone()
    }
}

/// `V = HMAC_K(V)`.
fn next_v(mac: &HmacSha256, v: &mut Zeroizing<[u8; 32]>) {
    let mut next = Zeroizing::new([0u8; 32]);
    hmac_into(mac, &[v.as_slice()], &mut next);
    std::mem::swap(v, &mut next);
}

/// `bits2octets(h1)` (RFC 6979 §2.3.4) for a 256-bit hash and order:
/// `h1 mod n`, big-endian.
fn bits2octets(h1: &[u8; 32]) -> FieldBytes {
    let z = <Scalar as Reduce<U256>>::reduce(&U256::from_be_slice(h1));
    z.to_bytes()
}

/// ECDSA over the prehash `digest` with `secret` and the RFC 6979 nonce:
/// the signature `k256`'s `SigningKey::sign_prehash_recoverable` gives
/// (low `s`, its recovery parity), with no public key computed.
///
/// # Errors
/// [`Error::InvalidKeyMaterial`] if `secret` is not in 1..n−1.
pub(crate) fn sign_prehash(
    secret: &PrivateKeyBytes,
    digest: &Digest32,
) -> Result<RawSignature, Error> {
    use zeroize::Zeroize;

    let x = secret.expose_secret();
    let mut repr: FieldBytes = (*x).into();
    let d = NonZeroScalar::from_repr(repr).into_option();
    repr.zeroize();
    let mut d = d.ok_or(Error::InvalidKeyMaterial(
        "not a valid secp256k1 secret key",
    ))?;
    let signed = sign_with(&d, x, digest);
    d.zeroize();
    Ok(signed)
}

/// [`sign_prehash`] with the key as a scalar `d` and as bytes `x`.
fn sign_with(d: &NonZeroScalar, x: &[u8; 32], digest: &Digest32) -> RawSignature {
    use zeroize::Zeroize;

    let mut nonces = Nonces::new(x, &digest.0);
    loop {
        let mut candidate: FieldBytes = (*nonces.next_candidate()).into();
        let k = NonZeroScalar::from_repr(candidate).into_option();
        candidate.zeroize();
        let Some(mut k) = k else {
            continue;
        };
        let signed = ecdsa::hazmat::sign_prehashed::<Secp256k1>(d, &k, &digest.0);
        k.zeroize();
        if let Ok((sig, recid)) = signed {
            return RawSignature::Recoverable {
                compact: sig.to_bytes().into(),
                y_parity: recid.is_y_odd(),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;
    use proptest::prelude::*;

    use crate::seam::signature::ORDER as N;

    /// The first `count` candidates the `rfc6979` crate (what `ecdsa` uses)
    /// gives for `x` and `h1`.
    fn oracle(x: &[u8; 32], h1: &[u8; 32], count: usize) -> Vec<[u8; 32]> {
        let n = U256::from_be_slice(&N);
        let mut g = ::rfc6979::KGenerator::<Sha256, U256>::new(x, h1, b"", &n);
        (0..count)
            .map(|_| {
                let mut k = [0u8; 32];
                g.fill_next_k(&mut k);
                k
            })
            .collect()
    }

    fn ours(x: &[u8; 32], h1: &[u8; 32], count: usize) -> Vec<[u8; 32]> {
        let mut nonces = Nonces::new(x, h1);
        (0..count).map(|_| *nonces.next_candidate()).collect()
    }

    fn with_last(mut bytes: [u8; 32], last: u8) -> [u8; 32] {
        bytes[31] = last;
        bytes
    }

    /// RFC 6979's own procedure applied to secp256k1: key 1 and the
    /// SHA-256 of "Satoshi Nakamoto" give the `k` that python-ecdsa,
    /// Trezor and libsecp256k1's test suites publish for it.
    #[test]
    fn the_published_secp256k1_nonce_for_key_1() {
        let x = with_last([0; 32], 1);
        let h1: [u8; 32] = <Sha256 as sha2::Digest>::digest(b"Satoshi Nakamoto").into();
        let k = ours(&x, &h1, 1)[0];
        assert_eq!(
            hex::encode(k),
            "8f8a276c19f4149656b280621e358cce24f5f52542772691ee69063b74f15d15"
        );
    }

    /// Every candidate, the retries included (the third needs step h.3
    /// twice), is the `rfc6979` crate's, on edge keys and digests (a digest
    /// ≥ n is reduced first).
    #[test]
    fn candidates_match_the_rfc6979_crate_on_edge_inputs() {
        let keys = [
            with_last([0; 32], 1),
            with_last([0; 32], 2),
            with_last(N, 0x40),
            with_last(N, 0x3f),
        ];
        let digests = [
            [0u8; 32],
            [0xff; 32],
            N,
            with_last(N, 0x42),
            with_last(N, 0x40),
            [0x80; 32],
        ];
        for x in &keys {
            for h1 in &digests {
                assert_eq!(ours(x, h1, 3), oracle(x, h1, 3), "x {x:02x?} h1 {h1:02x?}");
            }
        }
    }

    /// A digest and the same digest plus n give the same nonce.
    #[test]
    fn a_digest_is_reduced_mod_n_before_it_enters_the_drbg() {
        let x = with_last([0; 32], 7);
        assert_eq!(ours(&x, &N, 2), ours(&x, &[0; 32], 2));
        assert_eq!(
            ours(&x, &with_last(N, 0x42), 1),
            ours(&x, &with_last([0; 32], 1), 1)
        );
    }

    #[test]
    fn an_invalid_key_is_refused() {
        for bad in [[0u8; 32], N, [0xff; 32]] {
            assert!(matches!(
                sign_prehash(&PrivateKeyBytes::new(bad), &Digest32([1; 32])),
                Err(Error::InvalidKeyMaterial(_))
            ));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn candidates_match_the_rfc6979_crate(x in any::<[u8; 32]>(), h1 in any::<[u8; 32]>()) {
            prop_assume!(SigningKey::from_slice(&x).is_ok());
            prop_assert_eq!(ours(&x, &h1, 2), oracle(&x, &h1, 2));
        }

        #[test]
        fn signatures_match_k256s_signing_key(x in any::<[u8; 32]>(), h1 in any::<[u8; 32]>()) {
            let Ok(key) = SigningKey::from_slice(&x) else {
                return Err(TestCaseError::reject("not a key"));
            };
            let (sig, recid) = key.sign_prehash_recoverable(&h1);
            let got = sign_prehash(&PrivateKeyBytes::new(x), &Digest32(h1)).unwrap();
            prop_assert_eq!(
                got,
                RawSignature::Recoverable {
                    compact: sig.to_bytes().into(),
                    y_parity: recid.is_y_odd(),
                }
            );
        }
    }
}
