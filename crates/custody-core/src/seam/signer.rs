//! [`KeySigner`]: a pinned key on a shared backend, signing digests with the
//! one normalization every backend goes through.

use std::fmt;

use crate::{
    Authorization, Digest32, Error, Intent, KeyRef, Origin, Pending, PinnedKey, RawSignature,
    RecoverableSignature, SchemeSignature, SharedBackend, SignRequest, SignatureScheme, Signed,
    check_signature, normalize,
};

/// A key pinned on a backend. Cheap to clone (an `Arc` and the pinned key);
/// build one per key and keep it.
///
/// # Verify after sign
/// Every signature a backend makes outside this process (KMS, HSM,
/// enclave: [`Origin::Backend`]) is verified against the pinned key before
/// it is returned, whatever its algorithm; a signature the software vault
/// computed in this process ([`Origin::InProcess`]) is not verified again,
/// for secp256k1 as for P-256 and Ed25519. [`Origin`] gives the reasons
/// (fault attacks on deterministic signatures, the hot path's budget) and
/// how a deployment turns the check on for the vault too.
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
    /// that recovers the pinned key; verified against it unless the vault
    /// computed it in process, see [`KeySigner`]).
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
        let pinned = match self.key.secp256k1() {
            Ok(k) => k,
            Err(e) => return Pending::ready(Err(e)),
        };
        let request = SignRequest::new(&self.key, digest, intent, auth);
        signing.sign_digest(request).map(move |signed| {
            let signed = committed(signed?)?;
            normalize(&for_normalize(&signed), pinned, &digest)
        })
    }

    /// Signs `payload` with `scheme` (the 32-byte digest for ECDSA, the
    /// message for Ed25519) for `intent`, presenting `auth` to every gate
    /// on the way (the same gates and the same audit record as a
    /// transaction), and returns the signature in JOSE form: `r‖s` with low
    /// `s` for secp256k1 (ES256K), `r‖s` for P-256 (ES256), the RFC 8032
    /// signature for Ed25519, the RSA signature; verified against the
    /// pinned key unless the vault computed it in process (see
    /// [`KeySigner`]).
    ///
    /// # Errors
    /// [`Error::Unsupported`] if the backend cannot sign or the scheme is
    /// not the key's; otherwise as [`KeySigner::sign`].
    pub fn sign_with<'a>(
        &'a self,
        scheme: SignatureScheme,
        payload: &'a [u8],
        intent: Intent<'a>,
        auth: &'a Authorization,
    ) -> Pending<'a, Result<SchemeSignature, Error>> {
        let Some(signing) = self.backend.signing() else {
            return Pending::ready(Err(Error::Unsupported("this backend does not sign")));
        };
        let request = match SignRequest::with_scheme(&self.key, scheme, payload, intent, auth) {
            Ok(r) => r,
            Err(e) => return Pending::ready(Err(e)),
        };
        // Borrowed for the call, not cloned: an RSA key's modulus is
        // hundreds of bytes.
        let (digest, message, public) = (request.digest, request.message, self.key.public());
        signing.sign_digest(request).map(move |signed| {
            let signed = committed(signed?)?;
            match (scheme, public.secp256k1(), signed.origin, &signed.signature) {
                (SignatureScheme::EcdsaSecp256k1, Some(pinned), ..) => {
                    let sig = normalize(&for_normalize(&signed), pinned, &digest)?;
                    Ok(SchemeSignature::new(scheme, sig.to_compact()))
                }
                (
                    SignatureScheme::EcdsaP256Sha256 | SignatureScheme::Ed25519,
                    None,
                    Origin::InProcess,
                    RawSignature::Compact(bytes),
                ) => Ok(SchemeSignature::new(scheme, *bytes)),
                _ => check_signature(scheme, &signed.signature, public, &digest, message),
            }
        })
    }
}

/// What [`normalize`] is given: an in-process signer's recovery parity
/// is taken as it is (it comes from the signing computation); any other
/// origin's is dropped, so that `normalize` finds it again by verifying
/// the signature against the pinned key. Copies nothing on the hot path.
fn for_normalize(signed: &Signed) -> std::borrow::Cow<'_, RawSignature> {
    match (&signed.signature, signed.origin) {
        (RawSignature::Recoverable { compact, .. }, Origin::Backend) => {
            std::borrow::Cow::Owned(RawSignature::Compact(*compact))
        }
        (raw, _) => std::borrow::Cow::Borrowed(raw),
    }
}

/// The answer, unless a gate left its state write to an audit layer that
/// is not there: then its condition was never committed (fail closed).
fn committed(signed: Signed) -> Result<Signed, Error> {
    if !signed.evidence.deferred.is_empty() {
        return Err(Error::Unsupported(
            "a gate deferred its state write to an audit layer that did not commit it",
        ));
    }
    Ok(signed)
}

impl fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySigner")
            .field("backend", &self.backend.name())
            .field("key", &self.key)
            .finish()
    }
}
