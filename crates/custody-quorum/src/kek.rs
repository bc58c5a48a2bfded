//! [`QuorumKek`]: the quorum key as a [`WrappingBackend`].

use std::fmt;

use custody_core::{
    DataKey, EncryptionContext, KekId, KeyBackend, LocalKek, Pending, WrappingBackend,
};

use crate::{Error, QuorumPublicKey};

/// The key-encryption key derived from a reconstructed quorum key
/// ([`crate::QuorumKey::kek`]): every user key of a signing node is
/// wrapped under it, so they open only where the quorum key was rebuilt.
///
/// The wrap is `custody-core`'s local KEK wrap v1 (AES-256-GCM, a fresh
/// random nonce, the KEK id and the encryption context bound as additional
/// data; see `custody_core::LocalKek` and core's `SPEC.md`), under the KEK
/// id `quorum:<16 hex digits>` of the quorum public key. It implements
/// [`KeyBackend`] (name `"quorum"`) with the wrapping capability only.
/// `Debug` shows the KEK id; the key is zeroized on drop.
pub struct QuorumKek {
    inner: LocalKek,
}

impl QuorumKek {
    pub(crate) fn new(public: &QuorumPublicKey, key: &[u8; 32]) -> Result<Self, Error> {
        let id = KekId::new(public.kek_id_text())
            .map_err(|_| Error::InvalidParameters("quorum KEK id"))?;
        let key =
            DataKey::from_slice(key).map_err(|_| Error::InvalidParameters("quorum KEK length"))?;
        Ok(Self {
            inner: LocalKek::from_key(id, key),
        })
    }

    /// The KEK id (`quorum:` and 16 hex digits).
    #[must_use]
    pub fn kek_id(&self) -> &KekId {
        self.inner.current_kek()
    }
}

impl fmt::Debug for QuorumKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuorumKek")
            .field("kek", self.kek_id())
            .finish()
    }
}

impl WrappingBackend for QuorumKek {
    fn default_kek(&self) -> KekId {
        self.inner.default_kek()
    }

    fn wrap<'a>(
        &'a self,
        kek: &KekId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<Vec<u8>, custody_core::Error>> {
        self.inner.wrap(kek, key, context)
    }

    fn unwrap<'a>(
        &'a self,
        kek: &KekId,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Pending<'a, Result<DataKey, custody_core::Error>> {
        self.inner.unwrap(kek, wrapped, context)
    }
}

impl KeyBackend for QuorumKek {
    fn name(&self) -> &str {
        "quorum"
    }

    fn wrapping(&self) -> Option<&dyn WrappingBackend> {
        Some(self)
    }
}
