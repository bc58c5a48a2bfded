//! The enclave's side of the boot: [`EnclaveBoot`].

use std::collections::BTreeMap;
use std::fmt;

use p256::SecretKey;
use zeroize::Zeroizing;

use crate::format;

use crate::seal::{EnclavePublicKey, MAX_MANIFEST_BYTES, PLAINTEXT_LEN, SealedShare, seal_aad};
use crate::share::combine;
use crate::{Error, QuorumKey, QuorumSecret, Share, ShareSet, hpke};

/// An enclave waiting for its quorum: it holds an ephemeral HPKE key pair
/// (the private key zeroized on drop), the share set and the manifest it
/// boots under, and the shares accepted so far.
///
/// 1. [`EnclaveBoot::new`] draws the ephemeral key; the enclave puts
///    [`EnclaveBoot::public_key`] (and the manifest, as `user_data`) in its
///    attestation document.
/// 2. Each holder verifies that document and seals a share to the key
///    ([`crate::seal_share`]); [`EnclaveBoot::accept`] opens each sealed
///    share, checks it against its commitment, and keeps it.
/// 3. At the threshold, [`EnclaveBoot::finish`] rebuilds the secret, checks
///    it against the quorum public key and yields the [`QuorumKey`]; the
///    ephemeral key and the shares are wiped then, and the boot accepts
///    nothing more.
///
/// `Debug` shows the set, the public key and the accepted indices.
pub struct EnclaveBoot {
    set: ShareSet,
    manifest: Vec<u8>,
    public: EnclavePublicKey,
    /// `None` once finished.
    state: Option<State>,
}

struct State {
    key: SecretKey,
    accepted: BTreeMap<u8, Share>,
}

impl EnclaveBoot {
    /// A boot for `set` under `manifest` (the HPKE `info` every holder seals
    /// with: e.g. the manifest hash the attestation's `user_data` carries),
    /// with a fresh ephemeral key.
    ///
    /// # Errors
    /// [`Error::ManifestTooLong`]; [`Error::Rng`] if no key can be drawn.
    pub fn new(set: ShareSet, manifest: &[u8]) -> Result<Self, Error> {
        let key = hpke::generate_secret_key()?;
        Self::with_key(set, manifest, key)
    }

    /// A boot for `set` under `manifest` with an ephemeral key drawn
    /// earlier ([`EnclaveSecretKey::generate`]): for an enclave whose boot
    /// spans two processes (the key drawn and attested by one, the sealed
    /// shares opened by the next), which keeps the key in the enclave's
    /// own memory in between. One key serves one boot: after
    /// [`EnclaveBoot::finish`] the caller destroys its stored copy.
    ///
    /// # Errors
    /// [`Error::ManifestTooLong`].
    pub fn with_secret_key(
        set: ShareSet,
        manifest: &[u8],
        key: EnclaveSecretKey,
    ) -> Result<Self, Error> {
        Self::with_key(set, manifest, key.0)
    }

    pub(crate) fn with_key(set: ShareSet, manifest: &[u8], key: SecretKey) -> Result<Self, Error> {
        if manifest.len() > MAX_MANIFEST_BYTES {
            return Err(Error::ManifestTooLong);
        }
        Ok(Self {
            set,
            manifest: manifest.to_vec(),
            public: EnclavePublicKey::from_key(&key.public_key()),
            state: Some(State {
                key,
                accepted: BTreeMap::new(),
            }),
        })
    }

    /// The ephemeral public key holders seal to.
    #[must_use]
    pub fn public_key(&self) -> &EnclavePublicKey {
        &self.public
    }

    /// The share set this boot rebuilds.
    #[must_use]
    pub fn share_set(&self) -> &ShareSet {
        &self.set
    }

    /// The manifest (HPKE `info`).
    #[must_use]
    pub fn manifest(&self) -> &[u8] {
        &self.manifest
    }

    /// The indices accepted so far, ascending (empty once finished).
    #[must_use]
    pub fn accepted(&self) -> Vec<u8> {
        self.state
            .as_ref()
            .map(|s| s.accepted.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Whether the threshold is reached (and the boot not yet finished).
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.accepted.len() >= usize::from(self.set.threshold()))
    }

    /// Opens a sealed share, checks it, and keeps it; returns how many
    /// shares are accepted now. Checks in order: the set id (another set's
    /// share is refused unopened), the index, a repeat, then the HPKE open
    /// (with this boot's key, manifest, the set's digest and the index), then
    /// the commitment.
    ///
    /// A refused share changes nothing: the boot still takes the others.
    ///
    /// # Errors
    /// [`Error::BootFinished`]; [`Error::ForeignShare`];
    /// [`Error::UnknownIndex`]; [`Error::DuplicateShare`];
    /// [`Error::SealOpenFailed`] (sealed to another key or manifest, or
    /// altered); [`Error::ShareInvalid`] naming the index whose share does
    /// not match its commitment.
    pub fn accept(&mut self, sealed: &SealedShare) -> Result<usize, Error> {
        let state = self.state.as_mut().ok_or(Error::BootFinished)?;
        let index = sealed.index();
        if sealed.set_id() != self.set.set_id() {
            return Err(Error::ForeignShare { index });
        }
        if self.set.commitment(index).is_none() {
            return Err(Error::UnknownIndex { index });
        }
        if state.accepted.contains_key(&index) {
            return Err(Error::DuplicateShare { index });
        }
        let opened = hpke::setup_base_r(sealed.enc(), &state.key, &self.manifest)
            .and_then(|mut context| context.open(&seal_aad(&self.set, index), sealed.ciphertext()))
            .map_err(|_| Error::SealOpenFailed { index })?;
        if opened.len() != PLAINTEXT_LEN {
            return Err(Error::SealOpenFailed { index });
        }
        let mut salt = Zeroizing::new([0u8; 32]);
        let mut value = Zeroizing::new([0u8; 32]);
        salt.copy_from_slice(&opened[..32]);
        value.copy_from_slice(&opened[32..]);
        let share = Share::from_parts(*self.set.set_id(), index, salt, value);
        share.verify(&self.set)?;
        state.accepted.insert(index, share);
        Ok(state.accepted.len())
    }

    /// Rebuilds the quorum secret from every accepted share, checks its
    /// public key against the share set's, and yields the [`QuorumKey`].
    /// On success the ephemeral key and the shares are wiped and the boot
    /// is finished; on failure nothing changes.
    ///
    /// # Errors
    /// [`Error::BootFinished`]; [`Error::QuorumIncomplete`] below the
    /// threshold; [`Error::QuorumKeyMismatch`] if the rebuilt key is not the
    /// share set's quorum public key.
    pub fn finish(&mut self) -> Result<QuorumKey, Error> {
        let state = self.state.as_ref().ok_or(Error::BootFinished)?;
        let need = usize::from(self.set.threshold());
        let have = state.accepted.len();
        if have < need {
            return Err(Error::QuorumIncomplete { have, need });
        }
        let secret = combine(self.set.threshold(), state.accepted.values())?;
        let secret = QuorumSecret::from_bytes(&secret).map_err(|_| Error::QuorumKeyMismatch)?;
        if !secret.public_key().ct_eq(self.set.quorum_public_key()) {
            return Err(Error::QuorumKeyMismatch);
        }
        self.state = None;
        Ok(QuorumKey::from_secret(secret))
    }
}

/// An enclave's ephemeral HPKE private key (P-256), drawn for one boot:
/// its public key goes into the attestation document, and the holders seal
/// their shares to it.
///
/// [`EnclaveBoot::new`] draws and keeps one itself; this type is for a
/// boot split across processes ([`EnclaveBoot::with_secret_key`]), where
/// the key must be stored in between, in the enclave only. Zeroized on
/// drop; no `Clone`; `Debug` prints the type name only.
pub struct EnclaveSecretKey(SecretKey);

impl EnclaveSecretKey {
    /// A fresh key from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Rng`] if the generator fails.
    pub fn generate() -> Result<Self, Error> {
        hpke::generate_secret_key().map(Self)
    }

    /// A key from its 32 bytes (big-endian scalar), as
    /// [`EnclaveSecretKey::expose_secret`] gave them.
    ///
    /// # Errors
    /// [`Error::InvalidParameters`] if the bytes are not a P-256 private
    /// key (zero, or not below the group order).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        SecretKey::from_slice(bytes)
            .map(Self)
            .map_err(|_| Error::InvalidParameters("not a P-256 private key"))
    }

    /// A key from 64 lower-case hex digits.
    ///
    /// # Errors
    /// [`Error::Malformed`] if the text is not 64 lower-case hex digits;
    /// else as [`EnclaveSecretKey::from_bytes`].
    pub fn from_hex(text: &str) -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        if !format::decode_hex(text, &mut bytes) {
            return Err(Error::Malformed("enclave secret key"));
        }
        Self::from_bytes(&bytes)
    }

    /// The key's 32 bytes. **Key material**: whoever holds them opens every
    /// share sealed to this key.
    #[must_use]
    pub fn expose_secret(&self) -> Zeroizing<[u8; 32]> {
        let mut bytes = self.0.to_bytes();
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(bytes.as_slice());
        zeroize::Zeroize::zeroize(bytes.as_mut_slice());
        out
    }

    /// The public key holders seal to.
    #[must_use]
    pub fn public_key(&self) -> EnclavePublicKey {
        EnclavePublicKey::from_key(&self.0.public_key())
    }
}

impl fmt::Debug for EnclaveSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnclaveSecretKey(<redacted>)")
    }
}

impl fmt::Debug for EnclaveBoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnclaveBoot")
            .field("set", &self.set)
            .field("public", &self.public)
            .field("accepted", &self.accepted())
            .field("finished", &self.state.is_none())
            .finish()
    }
}
