//! HPKE (RFC 9180), exactly one suite and one mode: base mode (`mode_base`,
//! 0x00) with DHKEM(P-256, HKDF-SHA256) (KEM 0x0010), HKDF-SHA256 (KDF
//! 0x0001) and AES-256-GCM (AEAD 0x0002). Written out on the workspace's
//! RustCrypto primitives (`p256`, `hkdf`, `aes-gcm`) rather than taken from
//! the `hpke` crate, whose P-256 suites bring P-384 and P-521 with them;
//! checked against the RFC's official vectors and, differentially, against
//! an independent implementation (`tests/hpke.rs`).
//!
//! Section numbers below are RFC 9180's.

use aes_gcm::aead::Nonce;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit, Tag};
use hkdf::{Hkdf, HkdfExtract};
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;
use zeroize::Zeroizing;

/// `Nenc`/`Npk`: an uncompressed SEC 1 P-256 point (§7.1).
pub(crate) const ENC_LEN: usize = 65;
/// `Nk` of AES-256-GCM.
const KEY_LEN: usize = 32;
/// `Nn` of AES-256-GCM.
const NONCE_LEN: usize = 12;
/// `Nt` of AES-256-GCM.
pub(crate) const TAG_LEN: usize = 16;
/// `Nsecret` of DHKEM(P-256, HKDF-SHA256).
const SECRET_LEN: usize = 32;
/// `Nh` of HKDF-SHA256.
const HASH_LEN: usize = 32;

/// `suite_id` of the KEM (§4.1): `"KEM" || I2OSP(0x0010, 2)`.
const KEM_SUITE: &[u8] = b"KEM\x00\x10";
/// `suite_id` of the whole suite (§5.1):
/// `"HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2)`.
const HPKE_SUITE: &[u8] = b"HPKE\x00\x10\x00\x01\x00\x02";
const VERSION_LABEL: &[u8] = b"HPKE-v1";
const MODE_BASE: u8 = 0x00;

/// Opening failed. Deliberately without detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenError;

/// `LabeledExtract(salt, label, ikm)` (§4).
fn labeled_extract(
    suite: &[u8],
    salt: &[u8],
    label: &[u8],
    ikm: &[u8],
) -> Zeroizing<[u8; HASH_LEN]> {
    let mut extract = HkdfExtract::<Sha256>::new(Some(salt));
    extract.input_ikm(VERSION_LABEL);
    extract.input_ikm(suite);
    extract.input_ikm(label);
    extract.input_ikm(ikm);
    let (prk, _) = extract.finalize();
    let mut out = Zeroizing::new([0u8; HASH_LEN]);
    out.copy_from_slice(&prk);
    out
}

/// `LabeledExpand(prk, label, info, L)` (§4), `L` = `out.len()` (at most
/// 32 here, far below HKDF's 255·Nh).
fn labeled_expand(
    suite: &[u8],
    prk: &[u8; HASH_LEN],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<(), OpenError> {
    let hkdf = Hkdf::<Sha256>::from_prk(prk).map_err(|_| OpenError)?;
    let length = u16::try_from(out.len())
        .map_err(|_| OpenError)?
        .to_be_bytes();
    hkdf.expand_multi_info(&[&length, VERSION_LABEL, suite, label, info], out)
        .map_err(|_| OpenError)
}

/// `SerializePublicKey` (§7.1.1): the uncompressed SEC 1 encoding.
pub(crate) fn serialize_public_key(key: &PublicKey) -> [u8; ENC_LEN] {
    let point = key.as_affine().to_sec1_point(false);
    let mut out = [0u8; ENC_LEN];
    out.copy_from_slice(point.as_bytes());
    out
}

/// `DeserializePublicKey` (§7.1.1): exactly 65 bytes, `0x04`, a point on
/// the curve other than the identity.
pub(crate) fn deserialize_public_key(bytes: &[u8]) -> Option<PublicKey> {
    if bytes.len() != ENC_LEN || bytes.first() != Some(&0x04) {
        return None;
    }
    PublicKey::from_sec1_bytes(bytes).ok()
}

/// `ExtractAndExpand(dh, kem_context)` (§4.1).
fn extract_and_expand(
    dh: &[u8],
    enc: &[u8; ENC_LEN],
    pk_r: &[u8; ENC_LEN],
) -> Result<Zeroizing<[u8; SECRET_LEN]>, OpenError> {
    let eae_prk = labeled_extract(KEM_SUITE, b"", b"eae_prk", dh);
    let mut kem_context = [0u8; 2 * ENC_LEN];
    kem_context[..ENC_LEN].copy_from_slice(enc);
    kem_context[ENC_LEN..].copy_from_slice(pk_r);
    let mut shared = Zeroizing::new([0u8; SECRET_LEN]);
    labeled_expand(
        KEM_SUITE,
        &eae_prk,
        b"shared_secret",
        &kem_context,
        shared.as_mut_slice(),
    )?;
    Ok(shared)
}

/// An HPKE context (§5.2): the AEAD key, the base nonce and the sequence
/// number. One per sealed message here, but the sequence is kept so that
/// the RFC's multi-message vectors run through the same code.
pub(crate) struct Context {
    key: Zeroizing<[u8; KEY_LEN]>,
    base_nonce: [u8; NONCE_LEN],
    seq: u64,
}

impl Context {
    /// `KeySchedule(mode_base, shared_secret, info, "", "")` (§5.1).
    fn key_schedule(shared_secret: &[u8; SECRET_LEN], info: &[u8]) -> Result<Self, OpenError> {
        let psk_id_hash = labeled_extract(HPKE_SUITE, b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(HPKE_SUITE, b"", b"info_hash", info);
        let mut ksc = [0u8; 1 + 2 * HASH_LEN];
        ksc[0] = MODE_BASE;
        ksc[1..=HASH_LEN].copy_from_slice(psk_id_hash.as_slice());
        ksc[1 + HASH_LEN..].copy_from_slice(info_hash.as_slice());
        let secret = labeled_extract(HPKE_SUITE, shared_secret, b"secret", b"");
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        labeled_expand(HPKE_SUITE, &secret, b"key", &ksc, key.as_mut_slice())?;
        let mut base_nonce = [0u8; NONCE_LEN];
        labeled_expand(HPKE_SUITE, &secret, b"base_nonce", &ksc, &mut base_nonce)?;
        Ok(Self {
            key,
            base_nonce,
            seq: 0,
        })
    }

    /// `ComputeNonce(seq)` (§5.2), then the sequence number moves on.
    fn next_nonce(&mut self) -> Result<[u8; NONCE_LEN], OpenError> {
        let mut nonce = self.base_nonce;
        for (n, s) in nonce[NONCE_LEN - 8..]
            .iter_mut()
            .zip(self.seq.to_be_bytes())
        {
            *n ^= s;
        }
        self.seq = self.seq.checked_add(1).ok_or(OpenError)?;
        Ok(nonce)
    }

    /// `ContextS.Seal(aad, pt)` (§5.2): ciphertext ‖ tag.
    pub(crate) fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, OpenError> {
        let nonce = self.next_nonce()?;
        let cipher = Aes256Gcm::new((&*self.key).into());
        let mut out = Vec::with_capacity(plaintext.len() + TAG_LEN);
        out.extend_from_slice(plaintext);
        let nonce: &Nonce<Aes256Gcm> = (&nonce).into();
        let tag = cipher
            .encrypt_inout_detached(nonce, aad, out.as_mut_slice().into())
            .map_err(|_| OpenError)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// `ContextR.Open(aad, ct)` (§5.2). The tag is checked before anything
    /// is decrypted.
    pub(crate) fn open(
        &mut self,
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let nonce = self.next_nonce()?;
        let split = ciphertext.len().checked_sub(TAG_LEN).ok_or(OpenError)?;
        let (body, tag) = ciphertext.split_at(split);
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| OpenError)?;
        let cipher = Aes256Gcm::new((&*self.key).into());
        let mut out = Zeroizing::new(body.to_vec());
        let nonce: &Nonce<Aes256Gcm> = (&nonce).into();
        cipher
            .decrypt_inout_detached(nonce, aad, out.as_mut_slice().into(), &Tag::from(tag))
            .map_err(|_| OpenError)?;
        Ok(out)
    }
}

/// `SetupBaseS(pkR, info)` (§5.1.1) with the ephemeral key given
/// (`Encap` of §4.1 without its `GenerateKeyPair`): `(enc, context)`.
pub(crate) fn setup_base_s(
    sk_e: &SecretKey,
    pk_r: &PublicKey,
    info: &[u8],
) -> Result<([u8; ENC_LEN], Context), OpenError> {
    let dh = sk_e.diffie_hellman(pk_r);
    let enc = serialize_public_key(&sk_e.public_key());
    let pk_rm = serialize_public_key(pk_r);
    let shared = extract_and_expand(dh.raw_secret_bytes().as_slice(), &enc, &pk_rm)?;
    Ok((enc, Context::key_schedule(&shared, info)?))
}

/// `SetupBaseR(enc, skR, info)` (§5.1.1).
pub(crate) fn setup_base_r(
    enc: &[u8],
    sk_r: &SecretKey,
    info: &[u8],
) -> Result<Context, OpenError> {
    let pk_e = deserialize_public_key(enc).ok_or(OpenError)?;
    let enc: [u8; ENC_LEN] = enc.try_into().map_err(|_| OpenError)?;
    let dh = sk_r.diffie_hellman(&pk_e);
    let pk_rm = serialize_public_key(&sk_r.public_key());
    let shared = extract_and_expand(dh.raw_secret_bytes().as_slice(), &enc, &pk_rm)?;
    Context::key_schedule(&shared, info)
}

/// A fresh P-256 key pair from the operating system's generator
/// (`GenerateKeyPair`, §7.1.3 by rejection: a 32-byte string is a key if it
/// is a non-zero scalar below the group order, which all but 2^-32 are).
pub(crate) fn generate_secret_key() -> Result<SecretKey, crate::Error> {
    for _ in 0..64 {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut_slice()).map_err(|_| crate::Error::Rng)?;
        if let Ok(key) = SecretKey::from_slice(bytes.as_slice()) {
            return Ok(key);
        }
    }
    Err(crate::Error::Rng)
}
