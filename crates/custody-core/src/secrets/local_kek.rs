//! [`LocalKek`], the embedded default's key-encryption key, and the scrypt
//! [`KdfParams`] of a passphrase-derived one (formats documented on the types
//! and in `SPEC.md`, "Local KEK wrap v1").

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::secrets::envelope::{gcm_decrypt_in_place, gcm_encrypt_in_place};
use crate::{
    DataKey, EncryptionContext, Error, KekId, KeyBackend, Passphrase, Pending, WrappingBackend,
};

const WRAP_VERSION_1: u8 = 0x01;
const WRAP_DOMAIN: &[u8] = b"custody/kek-wrap/v1";
const CHECK_DOMAIN: &[u8] = b"custody/kek-check/v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Length of a v1 wrapped key.
const WRAPPED_LEN: usize = 1 + NONCE_LEN + DataKey::LEN + TAG_LEN;

/// Additional data of a local wrap.
fn wrap_aad(kek: &KekId, context: &EncryptionContext) -> Vec<u8> {
    let id = kek.as_str().as_bytes();
    let context = context.canonical_bytes();
    let mut aad = Vec::with_capacity(WRAP_DOMAIN.len() + 2 + id.len() + context.len());
    aad.extend_from_slice(WRAP_DOMAIN);
    // KEK ids are at most 2048 bytes (`KekId::new`).
    aad.extend_from_slice(&u16::try_from(id.len()).unwrap_or(u16::MAX).to_be_bytes());
    aad.extend_from_slice(id);
    aad.extend_from_slice(&context);
    aad
}

/// Wraps `data_key` under `kek_key` with an explicit nonce. Deterministic:
/// [`LocalKek`] calls it with a fresh random nonce, the frozen vectors
/// (`hazmat::local_wrap_with_nonce`, feature `hazmat`) with a fixed one.
pub(crate) fn wrap_with_nonce(
    kek_key: &DataKey,
    kek_id: &KekId,
    nonce: [u8; NONCE_LEN],
    data_key: &DataKey,
    context: &EncryptionContext,
) -> Result<Vec<u8>, Error> {
    let aad = wrap_aad(kek_id, context);
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.push(WRAP_VERSION_1);
    out.extend_from_slice(&nonce);
    // Exact capacity: no reallocation leaves a copy of the key behind.
    out.extend_from_slice(data_key.expose_secret());
    let sealed = match out.get_mut(1 + NONCE_LEN..) {
        Some(buffer) => gcm_encrypt_in_place(kek_key, &nonce, &aad, buffer),
        None => Err(Error::InvalidKeyMaterial("internal: wrap offset")),
    };
    match sealed {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Ok(out)
        }
        Err(e) => {
            out.zeroize();
            Err(e)
        }
    }
}

/// Unwraps a v1 wrapped key. Every failure is [`Error::DecryptionFailed`]:
/// a wrong length or version is as opaque as a wrong tag.
fn unwrap_v1(
    kek_key: &DataKey,
    kek_id: &KekId,
    wrapped: &[u8],
    context: &EncryptionContext,
) -> Result<DataKey, Error> {
    if wrapped.len() != WRAPPED_LEN || wrapped.first() != Some(&WRAP_VERSION_1) {
        return Err(Error::DecryptionFailed);
    }
    let mut nonce = [0u8; NONCE_LEN];
    let mut key = Zeroizing::new([0u8; DataKey::LEN]);
    let mut tag = [0u8; TAG_LEN];
    match (
        wrapped.get(1..1 + NONCE_LEN),
        wrapped.get(1 + NONCE_LEN..1 + NONCE_LEN + DataKey::LEN),
        wrapped.get(1 + NONCE_LEN + DataKey::LEN..),
    ) {
        (Some(n), Some(k), Some(t)) if t.len() == TAG_LEN => {
            nonce.copy_from_slice(n);
            key.copy_from_slice(k);
            tag.copy_from_slice(t);
        }
        _ => return Err(Error::DecryptionFailed),
    }
    gcm_decrypt_in_place(
        kek_key,
        &nonce,
        &wrap_aad(kek_id, context),
        key.as_mut_slice(),
        &tag,
    )?;
    DataKey::from_slice(key.as_slice())
}

/// scrypt parameters of a passphrase-derived KEK, with their salt.
///
/// Stored in the keystore file; deserialization validates them so that a
/// hostile file cannot ask for a multi-GiB allocation. Accepted ranges:
/// `log_n` in 10..=22, `r` in 1..=32, `p` in 1..=16, memory
/// (`128 · r · 2^log_n` bytes) at most 1 GiB and work (`p` times that) at
/// most 4 GiB.
///
/// JSON form: `{"algorithm":"scrypt","logN":17,"r":8,"p":1,"salt":"<64 hex>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "KdfParamsJson", into = "KdfParamsJson")]
pub struct KdfParams {
    log_n: u8,
    r: u32,
    p: u32,
    salt: [u8; 32],
}

impl KdfParams {
    /// Largest scrypt memory accepted: 1 GiB.
    pub const MAX_MEMORY_BYTES: u64 = 1 << 30;
    /// Largest scrypt work accepted (`p` × memory): 4 GiB.
    pub const MAX_WORK_BYTES: u64 = 4 << 30;

    /// Validated parameters.
    ///
    /// # Errors
    /// [`Error::MalformedRecord`] if a parameter is out of the accepted
    /// ranges (see the [type docs](Self)).
    pub fn new(log_n: u8, r: u32, p: u32, salt: [u8; 32]) -> Result<Self, Error> {
        let params = Self { log_n, r, p, salt };
        params.validate()?;
        Ok(params)
    }

    /// The standard cost, `log_n = 17, r = 8, p = 1` (128 MiB, a fraction of
    /// a second), with a fresh random salt.
    ///
    /// # Errors
    /// [`Error::Rng`] if no salt can be drawn.
    pub fn standard() -> Result<Self, Error> {
        Self::new(17, 8, 1, random_salt()?)
    }

    /// The light cost, `log_n = 12, r = 8, p = 1` (4 MiB; geth's
    /// `--lightkdf`), with a fresh random salt. For tests and throwaway
    /// keystores only.
    ///
    /// # Errors
    /// [`Error::Rng`] if no salt can be drawn.
    pub fn light() -> Result<Self, Error> {
        Self::new(12, 8, 1, random_salt()?)
    }

    /// Checks the parameters against the accepted ranges.
    ///
    /// # Errors
    /// [`Error::MalformedRecord`] saying which bound is violated.
    pub fn validate(&self) -> Result<(), Error> {
        if !(10..=22).contains(&self.log_n) {
            return Err(Error::MalformedRecord("scrypt log_n outside 10..=22"));
        }
        if !(1..=32).contains(&self.r) {
            return Err(Error::MalformedRecord("scrypt r outside 1..=32"));
        }
        if !(1..=16).contains(&self.p) {
            return Err(Error::MalformedRecord("scrypt p outside 1..=16"));
        }
        // No overflow: 128 · 32 · 2^22 < 2^35 and 16 times that < 2^39.
        let memory = 128 * u64::from(self.r) * (1u64 << self.log_n);
        if memory > Self::MAX_MEMORY_BYTES {
            return Err(Error::MalformedRecord("scrypt memory above 1 GiB"));
        }
        if memory * u64::from(self.p) > Self::MAX_WORK_BYTES {
            return Err(Error::MalformedRecord("scrypt work above 4 GiB"));
        }
        Ok(())
    }

    /// log2 of the scrypt cost `N`.
    #[must_use]
    pub fn log_n(&self) -> u8 {
        self.log_n
    }

    /// The scrypt block size `r`.
    #[must_use]
    pub fn r(&self) -> u32 {
        self.r
    }

    /// The scrypt parallelism `p`.
    #[must_use]
    pub fn p(&self) -> u32 {
        self.p
    }

    /// The salt (public).
    #[must_use]
    pub fn salt(&self) -> &[u8; 32] {
        &self.salt
    }

    /// The KEK id of the key these parameters derive: `passphrase:` and the
    /// first 8 bytes of SHA-256(salt) in hex. Public data only.
    pub(crate) fn kek_id(&self) -> Result<KekId, Error> {
        let digest = Sha256::digest(self.salt);
        KekId::new(format!(
            "passphrase:{}",
            hex::encode(digest.get(..8).unwrap_or_default())
        ))
    }
}

fn random_salt() -> Result<[u8; 32], Error> {
    let mut salt = [0u8; 32];
    crate::fill_random(&mut salt)?;
    Ok(salt)
}

/// The serialized form of [`KdfParams`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KdfParamsJson {
    algorithm: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
}

impl TryFrom<KdfParamsJson> for KdfParams {
    type Error = Error;

    fn try_from(json: KdfParamsJson) -> Result<Self, Error> {
        if json.algorithm != "scrypt" {
            return Err(Error::MalformedRecord("KDF algorithm is not scrypt"));
        }
        let mut salt = [0u8; 32];
        hex::decode_to_slice(&json.salt, &mut salt)
            .map_err(|_| Error::MalformedRecord("KDF salt is not 64 hex digits"))?;
        Self::new(json.log_n, json.r, json.p, salt)
    }
}

impl From<KdfParams> for KdfParamsJson {
    fn from(params: KdfParams) -> Self {
        Self {
            algorithm: "scrypt".to_owned(),
            log_n: params.log_n,
            r: params.r,
            p: params.p,
            salt: hex::encode(params.salt),
        }
    }
}

/// A KEK held in process: the embedded default's [`WrappingBackend`].
///
/// Holds a current KEK and any retired ones, each a [`DataKey`] (zeroized on
/// drop). Implements [`KeyBackend`] (name `"local"`) with the wrapping
/// capability only; every method answers at once ([`Pending::ready`]).
/// `Debug` shows the KEK ids and nothing else.
///
/// # Wrapped-key format (version 1)
///
/// ```text
/// version (1 byte, 0x01) ‖ nonce (12 bytes, random)
///   ‖ AES-256-GCM(KEK, data key) (32 bytes) ‖ tag (16 bytes)      = 61 bytes
/// additional data = "custody/kek-wrap/v1" ‖ u16 BE len(KEK id) ‖ KEK id
///                   ‖ context.canonical_bytes()
/// ```
///
/// The KEK id is bound, so a wrapped key moved under another id does not
/// unwrap even if both ids hold the same key; the context is bound, as AWS
/// KMS binds an encryption context. `SPEC.md` ("Local KEK wrap v1") is
/// normative.
///
/// # Rotation
///
/// New data keys are wrapped under the *current* KEK; *retired* ones
/// ([`LocalKek::with_retired`]) still unwrap. [`crate::Envelope::rewrap`]
/// moves an envelope from a retired KEK to the current one.
pub struct LocalKek {
    current: KekId,
    keys: BTreeMap<KekId, DataKey>,
}

impl LocalKek {
    /// A KEK from raw key material.
    #[must_use]
    pub fn from_key(id: KekId, key: DataKey) -> Self {
        let mut keys = BTreeMap::new();
        keys.insert(id.clone(), key);
        Self { current: id, keys }
    }

    /// A KEK derived from a passphrase with scrypt. Its id is `passphrase:`
    /// followed by the first 8 bytes of SHA-256(salt) in hex (public data
    /// only). Takes as long as `params` ask (a fraction of a second for
    /// [`KdfParams::standard`]).
    ///
    /// # Errors
    /// [`Error::MalformedRecord`] if `params` are out of range.
    pub fn from_passphrase(passphrase: &Passphrase, params: &KdfParams) -> Result<Self, Error> {
        params.validate()?;
        let scrypt_params = scrypt::Params::new(params.log_n, params.r, params.p)
            .map_err(|_| Error::MalformedRecord("scrypt parameters rejected"))?;
        let mut key = Zeroizing::new([0u8; DataKey::LEN]);
        scrypt::scrypt(
            passphrase.expose_secret(),
            &params.salt,
            &scrypt_params,
            key.as_mut_slice(),
        )
        .map_err(|_| Error::MalformedRecord("scrypt output length rejected"))?;
        Ok(Self::from_key(
            params.kek_id()?,
            DataKey::from_slice(key.as_slice())?,
        ))
    }

    /// Adds every KEK of `retired` as a retired KEK: it still unwraps, but
    /// new data keys are wrapped under this KEK's current one.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if an id is already held with a
    /// different key (two keys under one id would make unwrapping
    /// ambiguous).
    pub fn with_retired(mut self, retired: Self) -> Result<Self, Error> {
        for (id, key) in retired.keys {
            match self.keys.get(&id) {
                Some(held) if *held == key => {}
                Some(_) => {
                    return Err(Error::InvalidKeyMaterial(
                        "KEK id already held with a different key",
                    ));
                }
                None => {
                    self.keys.insert(id, key);
                }
            }
        }
        Ok(self)
    }

    /// Adds copies of every KEK that `other` holds as retired KEKs (for a
    /// rotation away from a KEK that is shared elsewhere, e.g. by an open
    /// vault).
    ///
    /// # Errors
    /// As [`LocalKek::with_retired`].
    pub fn with_retired_from(self, other: &Self) -> Result<Self, Error> {
        let mut keys = BTreeMap::new();
        for (id, key) in &other.keys {
            keys.insert(id.clone(), DataKey::from_slice(key.expose_secret())?);
        }
        self.with_retired(Self {
            current: other.current.clone(),
            keys,
        })
    }

    /// The KEK new data keys are wrapped under.
    #[must_use]
    pub fn current_kek(&self) -> &KekId {
        &self.current
    }

    /// Every KEK id held (current and retired), sorted.
    pub fn kek_ids(&self) -> impl Iterator<Item = &KekId> {
        self.keys.keys()
    }

    /// Every (id, key) held, the current one first, then the retired ones
    /// by id (the keyring order).
    pub(crate) fn entries_current_first(&self) -> Vec<(&KekId, &DataKey)> {
        let mut out: Vec<(&KekId, &DataKey)> = self.keys.iter().collect();
        out.sort_by_key(|(id, _)| **id != self.current);
        out
    }

    /// Whether `kek` is held.
    #[must_use]
    pub fn holds(&self, kek: &KekId) -> bool {
        self.keys.contains_key(kek)
    }

    /// The check value of the current KEK:
    /// HMAC-SHA256(KEK, `"custody/kek-check/v1"`). Stored beside the
    /// keystore's KDF parameters, it tells a wrong passphrase
    /// ([`Error::WrongPassphrase`]) from a damaged file. It reveals nothing
    /// about the KEK that the KDF does not already protect.
    #[must_use]
    pub fn check_value(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        if let Some(key) = self.keys.get(&self.current) {
            // HMAC takes keys of any length: `new_from_slice` cannot fail.
            if let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose_secret()) {
                mac.update(CHECK_DOMAIN);
                out.copy_from_slice(&mac.finalize().into_bytes());
            }
        }
        out
    }

    /// Compares `check` with [`LocalKek::check_value`] in constant time.
    #[must_use]
    pub fn verify_check_value(&self, check: &[u8]) -> bool {
        self.check_value().as_slice().ct_eq(check).into()
    }

    fn key(&self, kek: &KekId) -> Result<&DataKey, Error> {
        self.keys.get(kek).ok_or(Error::UnknownKek)
    }
}

impl fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retired: Vec<&KekId> = self.keys.keys().filter(|id| **id != self.current).collect();
        f.debug_struct("LocalKek")
            .field("current", &self.current)
            .field("retired", &retired)
            .finish()
    }
}

impl WrappingBackend for LocalKek {
    fn default_kek(&self) -> KekId {
        self.current.clone()
    }

    fn wrap<'a>(
        &'a self,
        kek: &KekId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<Vec<u8>, Error>> {
        Pending::ready(self.key(kek).and_then(|kek_key| {
            let mut nonce = [0u8; NONCE_LEN];
            crate::fill_random(&mut nonce)?;
            wrap_with_nonce(kek_key, kek, nonce, key, context)
        }))
    }

    fn unwrap<'a>(
        &'a self,
        kek: &KekId,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Pending<'a, Result<DataKey, Error>> {
        Pending::ready(
            self.key(kek)
                .and_then(|kek_key| unwrap_v1(kek_key, kek, wrapped, context)),
        )
    }
}

impl KeyBackend for LocalKek {
    fn name(&self) -> &str {
        "local"
    }

    fn wrapping(&self) -> Option<&dyn WrappingBackend> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EncryptionContext {
        EncryptionContext::new().with("wallet", "alice").unwrap()
    }

    #[test]
    fn wrap_layout_and_round_trip() {
        let id = KekId::new("k1").unwrap();
        let kek = LocalKek::from_key(id.clone(), DataKey::new([5; 32]));
        let dk = DataKey::new([6; 32]);
        let w = kek.wrap(&id, &dk, &ctx()).wait().unwrap();
        assert_eq!(w.len(), 61);
        assert_eq!(w[0], 1);
        assert_eq!(kek.unwrap(&id, &w, &ctx()).wait().unwrap(), dk);
        // Deterministic with a fixed nonce; the nonce is stored.
        let nonce: [u8; 12] = w[1..13].try_into().unwrap();
        assert_eq!(
            wrap_with_nonce(&DataKey::new([5; 32]), &id, nonce, &dk, &ctx()).unwrap(),
            w
        );
    }

    #[test]
    fn malformed_wrapped_keys_are_opaque_failures() {
        let id = KekId::new("k1").unwrap();
        let kek = LocalKek::from_key(id.clone(), DataKey::new([5; 32]));
        let w = kek
            .wrap(&id, &DataKey::new([6; 32]), &ctx())
            .wait()
            .unwrap();
        for bad in [&w[..60], &[][..], &[w.as_slice(), &[0]].concat()[..]] {
            assert!(matches!(
                kek.unwrap(&id, bad, &ctx()).wait(),
                Err(Error::DecryptionFailed)
            ));
        }
        let mut v2 = w.clone();
        v2[0] = 2;
        assert!(matches!(
            kek.unwrap(&id, &v2, &ctx()).wait(),
            Err(Error::DecryptionFailed)
        ));
    }

    #[test]
    fn the_kek_id_is_bound() {
        // Same key under two ids: a wrap under one does not unwrap under the other.
        let a = KekId::new("a").unwrap();
        let b = KekId::new("b").unwrap();
        let kek = LocalKek::from_key(a.clone(), DataKey::new([5; 32]))
            .with_retired(LocalKek::from_key(b.clone(), DataKey::new([5; 32])))
            .unwrap();
        let w = kek.wrap(&a, &DataKey::new([6; 32]), &ctx()).wait().unwrap();
        assert!(matches!(
            kek.unwrap(&b, &w, &ctx()).wait(),
            Err(Error::DecryptionFailed)
        ));
    }

    #[test]
    fn kdf_params_limits() {
        let salt = [0u8; 32];
        assert!(KdfParams::new(10, 8, 1, salt).is_ok());
        assert!(KdfParams::new(20, 8, 1, salt).is_ok()); // exactly 1 GiB
        assert!(KdfParams::new(22, 2, 1, salt).is_ok()); // 1 GiB
        assert!(KdfParams::new(17, 8, 16, salt).is_ok()); // 128 MiB × 16 = 2 GiB
        for (log_n, r, p) in [
            (9, 8, 1),
            (23, 1, 1),
            (12, 0, 1),
            (12, 33, 1),
            (12, 8, 0),
            (12, 8, 17),
            (21, 8, 1),
            (22, 8, 1),
            (20, 8, 5),
        ] {
            assert!(
                matches!(
                    KdfParams::new(log_n, r, p, salt),
                    Err(Error::MalformedRecord(_))
                ),
                "{log_n} {r} {p}"
            );
        }
        let s = KdfParams::standard().unwrap();
        assert_eq!((s.log_n(), s.r(), s.p()), (17, 8, 1));
        let l = KdfParams::light().unwrap();
        assert_eq!((l.log_n(), l.r(), l.p()), (12, 8, 1));
        assert_ne!(s.salt(), l.salt());
    }
}
