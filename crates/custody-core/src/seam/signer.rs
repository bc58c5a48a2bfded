//! [`KeySigner`]: a pinned key on a shared backend, signing digests with the
//! one normalization every backend goes through.

use std::fmt;

use crate::{
    Authorization, Digest32, Error, Intent, KeyRef, Pending, PinnedKey, RecoverableSignature,
    SharedBackend, SignRequest, normalize,
};

/// A key pinned on a backend. Cheap to clone (an `Arc` and the pinned key);
/// build one per key and keep it.
#[derive(Clone)]
pub struct KeySigner {
    backend: SharedBackend,
    key: PinnedKey,
}

impl KeySigner {
    /// Resolves `key` on `backend` and pins its public key.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if the backend cannot sign; what
    /// [`crate::SigningBackend::pin`] returns.
    pub fn pin(backend: SharedBackend, key: KeyRef) -> Pending<'static, Result<Self, Error>> {
        Pending::later(async move {
            let signing = backend
                .signing()
                .ok_or(Error::Unsupported("this backend does not sign"))?;
            let key = signing.pin(&key).await?;
            Ok(Self { backend, key })
        })
    }

    /// A signer for a key pinned earlier.
    #[must_use]
    pub fn from_pinned(backend: SharedBackend, key: PinnedKey) -> Self {
        Self { backend, key }
    }

    /// The pinned key.
    #[must_use]
    pub fn key(&self) -> &PinnedKey {
        &self.key
    }

    /// The backend.
    #[must_use]
    pub fn backend(&self) -> &SharedBackend {
        &self.backend
    }

    /// Signs `digest` for `intent`, presenting `auth` to every gate on the
    /// way, and returns the normalized signature (low `s`, recovery parity
    /// that recovers the pinned key).
    ///
    /// # Errors
    /// [`Error::Unsupported`] if the backend cannot sign, [`Error::Denied`]
    /// from a gate, [`Error::InvalidSignature`] if the backend's answer does
    /// not verify against the pinned key, or a backend error.
    pub fn sign<'a>(
        &'a self,
        digest: Digest32,
        intent: Intent<'a>,
        auth: &'a Authorization,
    ) -> Pending<'a, Result<RecoverableSignature, Error>> {
        let Some(signing) = self.backend.signing() else {
            return Pending::ready(Err(Error::Unsupported("this backend does not sign")));
        };
        let request = SignRequest::new(&self.key, digest, intent, auth);
        let pinned = self.key.public_key();
        signing.sign_digest(request).map(move |signed| {
            signed.and_then(|signed| {
                if signed.deferred.is_some() {
                    // A gate left its write to an audit layer that is not
                    // there: its condition was never committed.
                    return Err(Error::Unsupported(
                        "a gate deferred its state write to an audit layer that did not commit it",
                    ));
                }
                normalize(&signed.signature, pinned, &digest)
            })
        })
    }
}

impl fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySigner")
            .field("backend", &self.backend.name())
            .field("key", &self.key)
            .finish()
    }
}
