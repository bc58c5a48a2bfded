//! Deterministic entry points for known-answer vectors and differential
//! tests (feature `hazmat`): HPKE with a caller's ephemeral key, sealing
//! with a caller's ephemeral key, a boot with a caller's key, a split from
//! a seed. **Never in a production build**: reusing an ephemeral key or a
//! seed gives away what it protects.

use p256::SecretKey;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::share::split_with;
use crate::{
    EnclaveBoot, EnclavePublicKey, Error, QuorumSecret, SealedShare, Share, ShareSet, hpke,
};

fn secret_key(bytes: &[u8]) -> Result<SecretKey, Error> {
    SecretKey::from_slice(bytes).map_err(|_| Error::InvalidParameters("not a P-256 private key"))
}

/// An RFC 9180 context of this crate's one suite (base mode,
/// DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM).
pub struct HpkeContext(hpke::Context);

impl std::fmt::Debug for HpkeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HpkeContext(<redacted>)")
    }
}

impl HpkeContext {
    /// `Seal(aad, pt)`, then the sequence number moves on.
    ///
    /// # Errors
    /// [`Error::SealOpenFailed`] (index 0) at the end of the sequence.
    pub fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        self.0
            .seal(aad, plaintext)
            .map_err(|_| Error::SealOpenFailed { index: 0 })
    }

    /// `Open(aad, ct)`, then the sequence number moves on.
    ///
    /// # Errors
    /// [`Error::SealOpenFailed`] (index 0) if it does not open.
    pub fn open(&mut self, aad: &[u8], ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.0
            .open(aad, ciphertext)
            .map_err(|_| Error::SealOpenFailed { index: 0 })
    }
}

/// `SetupBaseS` with the ephemeral private key `sk_e` (32 bytes) to the
/// uncompressed public key `pk_r`: `(enc, context)`.
///
/// # Errors
/// [`Error::InvalidParameters`] / [`Error::InvalidPublicKey`] for bad keys.
pub fn hpke_setup_sender(
    sk_e: &[u8],
    pk_r: &[u8],
    info: &[u8],
) -> Result<(Vec<u8>, HpkeContext), Error> {
    let sk_e = secret_key(sk_e)?;
    let pk_r = EnclavePublicKey::from_sec1_bytes(pk_r)?.to_key()?;
    let (enc, context) =
        hpke::setup_base_s(&sk_e, &pk_r, info).map_err(|_| Error::SealOpenFailed { index: 0 })?;
    Ok((enc.to_vec(), HpkeContext(context)))
}

/// `SetupBaseR` with the recipient's private key `sk_r` (32 bytes).
///
/// # Errors
/// [`Error::InvalidParameters`] for a bad key; [`Error::SealOpenFailed`]
/// (index 0) for a bad `enc`.
pub fn hpke_setup_receiver(sk_r: &[u8], enc: &[u8], info: &[u8]) -> Result<HpkeContext, Error> {
    let sk_r = secret_key(sk_r)?;
    hpke::setup_base_r(enc, &sk_r, info)
        .map(HpkeContext)
        .map_err(|_| Error::SealOpenFailed { index: 0 })
}

/// [`crate::seal_share`] with the ephemeral private key given.
///
/// # Errors
/// As [`crate::seal_share`]; [`Error::InvalidParameters`] for a bad key.
pub fn seal_share_with_ephemeral(
    share: &Share,
    set: &ShareSet,
    enclave_key: &EnclavePublicKey,
    manifest: &[u8],
    ephemeral: &[u8; 32],
) -> Result<SealedShare, Error> {
    crate::seal::seal_with(share, set, enclave_key, manifest, &secret_key(ephemeral)?)
}

/// [`EnclaveBoot::new`] with the enclave's private key given.
///
/// # Errors
/// As [`EnclaveBoot::new`]; [`Error::InvalidParameters`] for a bad key.
pub fn enclave_boot_with_key(
    set: ShareSet,
    manifest: &[u8],
    key: &[u8; 32],
) -> Result<EnclaveBoot, Error> {
    EnclaveBoot::with_key(set, manifest, secret_key(key)?)
}

/// [`crate::split`] drawing every random byte (set id, salts, polynomial
/// coefficients) from SHA-256(`seed` ‖ counter), so the same seed gives the
/// same share set and shares.
///
/// # Errors
/// As [`crate::split`].
pub fn split_seeded(
    secret: &QuorumSecret,
    threshold: u8,
    shares: u8,
    seed: &[u8; 32],
) -> Result<(ShareSet, Vec<Share>), Error> {
    let mut counter = 0u64;
    let mut stream = |out: &mut [u8]| -> Result<(), Error> {
        for chunk in out.chunks_mut(32) {
            let block = Sha256::new()
                .chain_update(seed)
                .chain_update(counter.to_be_bytes())
                .finalize();
            counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    };
    split_with(secret, threshold, shares, &mut stream)
}
