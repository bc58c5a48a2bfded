//! A holder's side of the boot: [`seal_share`] encrypts a share to an
//! enclave's ephemeral key with HPKE, giving a [`SealedShare`].

use std::fmt;
use std::str::FromStr;

use p256::{PublicKey, SecretKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::format::{self, VERSION_1, Versioned, hex_array};
use crate::hpke::{self, ENC_LEN, TAG_LEN};
use crate::{Error, SetId, Share, ShareSet};

/// Most bytes of manifest (HPKE `info`) accepted: 512, the most a Nitro
/// attestation document's `user_data` carries.
pub const MAX_MANIFEST_BYTES: usize = 512;

/// Domain tag of a sealed share's additional data.
const SEAL_DOMAIN: &[u8] = b"custody/quorum-seal/v1";

/// Plaintext of a sealed share: salt ‖ value.
pub(crate) const PLAINTEXT_LEN: usize = 64;
const CIPHERTEXT_LEN: usize = PLAINTEXT_LEN + TAG_LEN;

/// The additional data of a sealed share: the domain tag, the share set's
/// digest and the index.
pub(crate) fn seal_aad(set: &ShareSet, index: u8) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEAL_DOMAIN.len() + 33);
    aad.extend_from_slice(SEAL_DOMAIN);
    aad.extend_from_slice(&set.digest());
    aad.push(index);
    aad
}

/// An enclave's ephemeral HPKE public key: a P-256 point, SEC 1
/// uncompressed (65 bytes, RFC 9180's `SerializePublicKey`); 130 hex
/// digits in text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnclavePublicKey([u8; ENC_LEN]);

impl EnclavePublicKey {
    /// Reads an uncompressed SEC 1 P-256 point (the `public_key` an enclave
    /// put in its attestation document).
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] if `bytes` are not 65 bytes starting
    /// `0x04` of a point on the curve.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let key = hpke::deserialize_public_key(bytes)
            .ok_or(Error::InvalidPublicKey("not an uncompressed P-256 point"))?;
        Ok(Self(hpke::serialize_public_key(&key)))
    }

    pub(crate) fn from_key(key: &PublicKey) -> Self {
        Self(hpke::serialize_public_key(key))
    }

    pub(crate) fn to_key(self) -> Result<PublicKey, Error> {
        hpke::deserialize_public_key(&self.0)
            .ok_or(Error::InvalidPublicKey("not an uncompressed P-256 point"))
    }

    /// The uncompressed SEC 1 encoding.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; ENC_LEN] {
        self.0
    }
}

impl fmt::Display for EnclavePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for EnclavePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnclavePublicKey({self})")
    }
}

impl FromStr for EnclavePublicKey {
    type Err = Error;

    /// 130 lower-case hex digits (an optional `0x` prefix allowed, as the
    /// CLI prints `enclaveKey`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.strip_prefix("0x").unwrap_or(s);
        let mut bytes = [0u8; ENC_LEN];
        if !format::decode_hex(s, &mut bytes) {
            return Err(Error::InvalidPublicKey("not 130 lower-case hex digits"));
        }
        Self::from_sec1_bytes(&bytes)
    }
}

/// A share sealed to one enclave key: the set id and index in the clear
/// (so the enclave can refuse a foreign or repeated share before opening
/// it), HPKE's `enc` and the AES-256-GCM ciphertext of salt ‖ value.
/// Public: only the enclave's ephemeral key opens it. Format in `SPEC.md`
/// ("Sealed share").
#[derive(Clone, PartialEq, Eq)]
pub struct SealedShare {
    set_id: SetId,
    index: u8,
    enc: [u8; ENC_LEN],
    ciphertext: [u8; CIPHERTEXT_LEN],
}

impl SealedShare {
    /// The set id the sealed share names.
    #[must_use]
    pub fn set_id(&self) -> &SetId {
        &self.set_id
    }

    /// The index the sealed share names (authenticated when it opens).
    #[must_use]
    pub fn index(&self) -> u8 {
        self.index
    }

    pub(crate) fn enc(&self) -> &[u8; ENC_LEN] {
        &self.enc
    }

    pub(crate) fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The sealed share file (`SPEC.md`).
    #[must_use]
    pub fn to_json(&self) -> String {
        let json = SealedJson {
            version: VERSION_1,
            set_id: self.set_id,
            index: self.index,
            enc: self.enc,
            ciphertext: self.ciphertext,
        };
        // Strings and integers only: serialization cannot fail.
        serde_json::to_string(&json).unwrap_or_default()
    }

    /// Reads a sealed share strictly (`SPEC.md`): version 1, every member
    /// once, no other member, lower-case hex of the exact lengths, an index
    /// in 1..=255. Whether `enc` is a point is checked when the share is
    /// opened (and fails as [`Error::SealOpenFailed`]).
    ///
    /// # Errors
    /// [`Error::Malformed`] for anything else.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let file: SealedJson = format::from_json(json, "sealed share")?;
        if file.index == 0 {
            return Err(Error::Malformed("sealed share"));
        }
        Ok(Self {
            set_id: file.set_id,
            index: file.index,
            enc: file.enc,
            ciphertext: file.ciphertext,
        })
    }
}

impl fmt::Debug for SealedShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedShare")
            .field("set_id", &self.set_id)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SealedJson {
    version: u32,
    set_id: SetId,
    index: u8,
    #[serde(with = "hex_array")]
    enc: [u8; ENC_LEN],
    #[serde(with = "hex_array")]
    ciphertext: [u8; CIPHERTEXT_LEN],
}

impl Versioned for SealedJson {
    fn version(&self) -> u32 {
        self.version
    }
}

/// Seals `share` to an enclave's ephemeral key: HPKE base mode,
/// DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM (RFC 9180), with
/// `info` = `manifest` and additional data binding the share set's digest
/// and the index (`SPEC.md`). The share is first checked against `set`
/// (a holder's wrong file is caught here, not in the enclave).
///
/// **The caller must have verified the enclave's attestation first**: that
/// the document chains to the pinned root, that its PCRs are the expected
/// image's, that its `public_key` is `enclave_key` and its `user_data` is
/// `manifest`. This function trusts both arguments; sealing to an
/// unverified key hands the share to whoever holds it.
///
/// # Errors
/// Those of [`Share::verify`]; [`Error::ManifestTooLong`];
/// [`Error::Rng`] if no ephemeral key can be drawn.
pub fn seal_share(
    share: &Share,
    set: &ShareSet,
    enclave_key: &EnclavePublicKey,
    manifest: &[u8],
) -> Result<SealedShare, Error> {
    let ephemeral = hpke::generate_secret_key()?;
    seal_with(share, set, enclave_key, manifest, &ephemeral)
}

/// [`seal_share`] with the ephemeral key given.
pub(crate) fn seal_with(
    share: &Share,
    set: &ShareSet,
    enclave_key: &EnclavePublicKey,
    manifest: &[u8],
    ephemeral: &SecretKey,
) -> Result<SealedShare, Error> {
    share.verify(set)?;
    if manifest.len() > MAX_MANIFEST_BYTES {
        return Err(Error::ManifestTooLong);
    }
    let index = share.index();
    let seal_failed = Error::SealOpenFailed { index };
    let (enc, mut context) = hpke::setup_base_s(ephemeral, &enclave_key.to_key()?, manifest)
        .map_err(|_| seal_failed.clone())?;
    let mut plaintext = Zeroizing::new([0u8; PLAINTEXT_LEN]);
    plaintext[..32].copy_from_slice(share.salt());
    plaintext[32..].copy_from_slice(share.expose_value());
    let sealed = context
        .seal(&seal_aad(set, index), plaintext.as_slice())
        .map_err(|_| seal_failed.clone())?;
    let ciphertext: [u8; CIPHERTEXT_LEN] = sealed.as_slice().try_into().map_err(|_| seal_failed)?;
    Ok(SealedShare {
        set_id: *set.set_id(),
        index,
        enc,
        ciphertext,
    })
}
