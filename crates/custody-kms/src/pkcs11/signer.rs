//! [`Pkcs11Signer`]: digest signing with EC secp256k1 and P-256 and RSA
//! keys on a token (and, in `decrypt.rs`, ECDH and RSA-OAEP with them).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::Session;
use custody_core::{
    AnyPublicKey, Error, KeyAlgorithm, KeyBackend, KeyId, KeyKinds, KeyRef, Pending, PinnedKey,
    RawSignature, SignRequest, SignatureScheme, Signed, SigningBackend, check_signature,
};

use super::error::Pkcs11Error;
use super::keys::{Pkcs11KeySpec, Usage, public_of, resolve};
use super::object::{CachedHandle, ObjectSelector};
use super::token::{OpError, Pkcs11Token, RunError};
use super::uri::ObjectType;

/// The DER `DigestInfo` prefix of a SHA-256 digest (RFC 8017 §9.2, note 1):
/// what `CKM_RSA_PKCS` signs in front of the digest for RSASSA-PKCS1-v1_5.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// A pinned key's cached object: looked up once, at [`SigningBackend::pin`],
/// and again only after the token dropped its sessions.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) selector: ObjectSelector,
    pub(crate) public_key: AnyPublicKey,
    pub(crate) usage: Usage,
    handle: CachedHandle,
}

/// A [`SigningBackend`] and [`custody_core::DecryptingBackend`] (and a
/// [`KeyBackend`] whose [`signing`](KeyBackend::signing) and
/// [`decrypting`](KeyBackend::decrypting) return it) over private keys on
/// a PKCS#11 token.
///
/// | key (`CKA_KEY_TYPE`, `CKA_EC_PARAMS`) | attribute | seam key | operation | mechanism |
/// |---|---|---|---|---|
/// | `CKK_EC`, secp256k1 (1.3.132.0.10) | `CKA_SIGN` | [`KeyAlgorithm::Secp256k1`] | ES256K / Ethereum | `CKM_ECDSA` over the digest |
/// | `CKK_EC`, P-256 (1.2.840.10045.3.1.7) | `CKA_SIGN` | [`KeyAlgorithm::P256`] | ES256 | `CKM_ECDSA` over the digest |
/// | `CKK_EC`, P-256 | `CKA_DERIVE` | [`KeyAlgorithm::P256`] | ECDH | `CKM_ECDH1_DERIVE`, `CKD_NULL` |
/// | `CKK_RSA`, 2048 to 8192 bits | `CKA_SIGN` | [`KeyAlgorithm::Rsa`] | RS256 | `CKM_RSA_PKCS` over `DigestInfo(SHA-256)` |
/// | `CKK_RSA` | `CKA_SIGN` | [`KeyAlgorithm::Rsa`] | PS256 | `CKM_RSA_PKCS_PSS` (SHA-256, MGF1-SHA-256, salt 32) over the digest |
/// | `CKK_RSA` | `CKA_DECRYPT` | [`KeyAlgorithm::Rsa`] | RSA-OAEP-256 | `CKM_RSA_PKCS_OAEP` (SHA-256, MGF1-SHA-256, no label) |
///
/// - [`pin`](SigningBackend::pin) takes [`KeyRef::Stored`] whose id is the
///   key's `CKA_LABEL` (or a `pkcs11:` URI with `object=` and/or `id=`, for
///   labels with spaces or keys named by `CKA_ID`). It finds the
///   `CKO_PRIVATE_KEY` (exactly one must match), reads its algorithm (any
///   other key type or curve is `wrong-key-usage`) and what it allows
///   (a key that allows nothing custody does with its algorithm is
///   `wrong-key-usage`), finds its `CKO_PUBLIC_KEY` (same `CKA_ID`, else
///   same label) and reads `CKA_EC_POINT` (DER OCTET STRING around the SEC
///   1 point, as SoftHSM2 stores it, or the bare point) or `CKA_MODULUS`
///   and `CKA_PUBLIC_EXPONENT`. The object handle and public key are
///   cached: signing looks nothing up (a peer's signer looked the key up
///   per signature and went from 100 to 1 transaction per second).
/// - [`sign_digest`](SigningBackend::sign_digest) is exactly one `C_Sign`
///   over the 32-byte digest with the request's scheme's mechanism (above;
///   a scheme that is not the key's, or a key without `CKA_SIGN`, is
///   refused before the token is asked). A secp256k1 signature is returned
///   as the token's `r‖s` ([`RawSignature::Compact`]) for
///   [`custody_core::KeySigner`] to normalize (low `s`, recovery id found
///   by matching the pinned key); a P-256 or RSA signature is checked
///   against the pinned key ([`check_signature`]) before it is returned, as
///   JOSE `r‖s` (any `s`: ES256 does not ask for low `s`) or
///   [`RawSignature::Rsa`].
/// - [`decrypt`](custody_core::DecryptingBackend::decrypt): see
///   `decrypt.rs`: one `C_DeriveKey` (ECDH, the shared x-coordinate read
///   from a session object destroyed at once) or one `C_Decrypt`
///   (RSA-OAEP-SHA256); secrets in zeroizing memory; every OAEP failure is
///   the opaque [`Error::DecryptionFailed`].
/// - HD references ([`KeyRef::Path`], [`KeyRef::Wallet`]) are
///   [`Error::Unsupported`].
///
/// `Debug` shows the token label only.
pub struct Pkcs11Signer {
    token: Pkcs11Token,
    keys: RwLock<HashMap<KeyId, Arc<Entry>>>,
}

/// The 32 bytes `CKM_ECDSA` signs. A token signs whatever length it is
/// given (SoftHSM2 silently truncates or pads), so anything but a 32-byte
/// digest is refused before the token sees it.
pub(crate) fn check_digest(digest: &[u8]) -> Result<&[u8; 32], Pkcs11Error> {
    digest
        .try_into()
        .map_err(|_| Pkcs11Error::bad_input("CKM_ECDSA signs 32-byte digests only"))
}

/// The `wrong-key-usage` error of an operation the key `name` cannot do.
pub(crate) fn wrong_usage(operation: &'static str, name: &str, reason: &'static str) -> Error {
    Error::from(Pkcs11Error::wrong_key_usage(operation, name, reason))
}

impl Pkcs11Signer {
    /// A signer over the keys of `token`.
    #[must_use]
    pub fn new(token: Pkcs11Token) -> Self {
        Self {
            token,
            keys: RwLock::new(HashMap::new()),
        }
    }

    /// The token.
    #[must_use]
    pub fn token(&self) -> &Pkcs11Token {
        &self.token
    }

    /// Generates a secp256k1 signing key pair on the token:
    /// [`Pkcs11Signer::generate_key`] with [`Pkcs11KeySpec::Secp256k1`].
    ///
    /// # Errors
    /// As [`Pkcs11Signer::generate_key`].
    pub fn generate(&self, label: &str) -> Result<PinnedKey, Error> {
        self.generate_key(label, Pkcs11KeySpec::Secp256k1)
    }

    /// Generates a key pair of `spec` on the token (`CKM_EC_KEY_PAIR_GEN`
    /// or `CKM_RSA_PKCS_KEY_PAIR_GEN`; token objects; the private key
    /// `CKA_PRIVATE`, `CKA_SENSITIVE`, not extractable, allowed only the
    /// spec's operations; both halves labelled `label` and given the same
    /// random `CKA_ID`) and pins it as `KeyRef::Stored(label)`.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] if `label` is not a valid [`KeyId`];
    /// `bad-input` for a spec that allows nothing or an RSA size out of
    /// 2048..=8192; an `already-exists` [`Pkcs11Error`] (in
    /// [`Error::Backend`]) if a key with that label exists;
    /// `wrong-key-usage` if the token cannot make such keys; other token
    /// failures.
    pub fn generate_key(&self, label: &str, spec: Pkcs11KeySpec) -> Result<PinnedKey, Error> {
        use cryptoki::object::ObjectClass;
        let key_id = KeyId::new(label)?;
        let (mechanism, public_template, private_template) = spec.templates()?;
        let algorithm = spec.algorithm();
        let token = &self.token;
        let selector = ObjectSelector {
            label: Some(label.to_owned()),
            id: None,
            name: label.to_owned(),
        };
        let (epoch, handle, public_key, usage) = token
            .run("C_GenerateKeyPair", label, |s, epoch| {
                let lbl = Attribute::Label(label.as_bytes().to_vec());
                for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
                    if !token
                        .find(s, &[Attribute::Class(class), lbl.clone()])?
                        .is_empty()
                    {
                        return Err(OpError::Typed(Pkcs11Error::AlreadyExists {
                            what: "key pair",
                            label: label.to_owned(),
                        }));
                    }
                }
                let id = s.generate_random_vec(16)?;
                let mut public = public_template.clone();
                public.extend([lbl.clone(), Attribute::Id(id.clone())]);
                let mut private = private_template.clone();
                private.extend([lbl, Attribute::Id(id)]);
                let (pub_h, priv_h) = s.generate_key_pair(&mechanism, &public, &private)?;
                let public_key = public_of(s, pub_h, algorithm, "C_GenerateKeyPair", label)?
                    .ok_or_else(|| {
                        OpError::Typed(Pkcs11Error::malformed(
                            "C_GenerateKeyPair",
                            "the new public key carries no CKA_EC_POINT or CKA_MODULUS",
                        ))
                    })?;
                // What the token made, as pinning reads it.
                let found = resolve(token, s, &selector)?;
                if found.handle != priv_h || found.public_key != public_key {
                    return Err(OpError::Typed(Pkcs11Error::malformed(
                        "C_GenerateKeyPair",
                        "the new key is not found as it was made",
                    )));
                }
                Ok((epoch, priv_h, public_key, found.usage))
            })
            .map_err(|e| e.into_core(Error::KeyNotFound))?;
        let entry = Arc::new(Entry {
            selector,
            public_key: public_key.clone(),
            usage,
            handle: CachedHandle::new(epoch, handle),
        });
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key_id.clone(), entry);
        Ok(PinnedKey::with_public(
            KeyRef::Stored(key_id),
            None,
            public_key,
        ))
    }

    /// Looks a key up and caches it (replacing any earlier entry).
    fn pin_id(&self, id: &KeyId) -> Result<Arc<Entry>, Error> {
        let selector = ObjectSelector::parse(id.as_str(), ObjectType::Private, self.token.label())
            .map_err(|e| e.into_core(Error::KeyNotFound))?;
        let token = &self.token;
        let (epoch, found) = token
            .run("C_FindObjects", &selector.name, |s, epoch| {
                Ok((epoch, resolve(token, s, &selector)?))
            })
            .map_err(|e| e.into_core(Error::KeyNotFound))?;
        let entry = Arc::new(Entry {
            selector,
            public_key: found.public_key,
            usage: found.usage,
            handle: CachedHandle::new(epoch, found.handle),
        });
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), Arc::clone(&entry));
        Ok(entry)
    }

    /// The cached entry of the pinned key `key` (looked up once if it was
    /// pinned through another signer on this token), checked to be the
    /// same key: the same algorithm (else `wrong-key-usage`) and public key
    /// (else [`Error::PublicKeyMismatch`]).
    pub(crate) fn entry(
        &self,
        key: &PinnedKey,
        operation: &'static str,
    ) -> Result<Arc<Entry>, Error> {
        let KeyRef::Stored(id) = key.reference() else {
            return Err(Error::Unsupported(
                "a PKCS#11 token uses only keys pinned from a stored label or pkcs11: URI",
            ));
        };
        let cached = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        let entry = match cached {
            Some(e) => e,
            None => self.pin_id(id)?,
        };
        if entry.public_key.algorithm() != key.algorithm() {
            return Err(wrong_usage(
                operation,
                &entry.selector.name,
                "the token's key is not of the pinned key's algorithm",
            ));
        }
        if entry.public_key != *key.public() {
            return Err(Error::PublicKeyMismatch);
        }
        Ok(entry)
    }

    /// Runs `f` with the key's object handle on a pooled session, looking
    /// the key up again (and checking it is the same key) after the token
    /// dropped its sessions.
    pub(crate) fn with_key<T>(
        &self,
        operation: &'static str,
        entry: &Entry,
        mut f: impl FnMut(&Session, ObjectHandle) -> Result<T, OpError>,
    ) -> Result<T, RunError> {
        let token = &self.token;
        token.run(operation, &entry.selector.name, |s, epoch| {
            let handle = match entry.handle.get(epoch) {
                Some(h) => h,
                None => {
                    let found = resolve(token, s, &entry.selector)?;
                    if found.public_key != entry.public_key {
                        return Err(OpError::Core(Error::PublicKeyMismatch));
                    }
                    entry.handle.set(epoch, found.handle);
                    found.handle
                }
            };
            f(s, handle)
        })
    }

    fn sign(&self, request: &SignRequest<'_>) -> Result<Signed, Error> {
        let entry = self.entry(request.key, "C_Sign")?;
        let scheme = request.scheme;
        if scheme.key_algorithm() != entry.public_key.algorithm() || scheme.signs_message() {
            return Err(Error::Unsupported(
                "a PKCS#11 key signs only with a digest scheme of its algorithm",
            ));
        }
        if !entry.usage.sign {
            return Err(wrong_usage(
                "C_Sign",
                &entry.selector.name,
                "the key does not allow signing (CKA_SIGN is false)",
            ));
        }
        let digest = check_digest(request.digest.as_bytes()).map_err(Error::from)?;
        let pss = PkcsPssParams {
            hash_alg: MechanismType::SHA256,
            mgf: PkcsMgfType::MGF1_SHA256,
            s_len: 32u64.into(),
        };
        let mut info = Vec::new();
        let (mechanism, input): (_, &[u8]) = match scheme {
            SignatureScheme::EcdsaSecp256k1 | SignatureScheme::EcdsaP256Sha256 => {
                (Mechanism::Ecdsa, digest)
            }
            SignatureScheme::RsaPkcs1Sha256 => {
                info.extend_from_slice(&SHA256_DIGEST_INFO);
                info.extend_from_slice(digest);
                (Mechanism::RsaPkcs, &info)
            }
            SignatureScheme::RsaPssSha256 => (Mechanism::RsaPkcsPss(pss), digest),
            _ => {
                return Err(Error::Unsupported(
                    "a PKCS#11 token does not sign with this scheme",
                ));
            }
        };
        let signature = self
            .with_key("C_Sign", &entry, |s, handle| {
                Ok(s.sign(&mechanism, handle, input)?)
            })
            .map_err(|e| e.into_core(Error::KeyNotFound))?;
        let raw = match entry.public_key.algorithm() {
            KeyAlgorithm::Rsa => RawSignature::Rsa(signature),
            _ => RawSignature::Compact(signature.as_slice().try_into().map_err(|_| {
                Error::from(Pkcs11Error::malformed(
                    "C_Sign",
                    "a CKM_ECDSA signature on a 256-bit curve is 64 bytes (r‖s)",
                ))
            })?),
        };
        if scheme == SignatureScheme::EcdsaSecp256k1 {
            // Normalized and matched to the pinned key by KeySigner.
            return Ok(Signed::new(raw));
        }
        let checked = check_signature(scheme, &raw, &entry.public_key, &request.digest, None)
            .map_err(|_| {
                Error::from(Pkcs11Error::malformed(
                    "C_Sign",
                    "the signature does not verify against the pinned public key",
                ))
            })?;
        Ok(Signed::new(match raw {
            RawSignature::Rsa(_) => RawSignature::Rsa(checked.to_bytes()),
            _ => RawSignature::Compact(
                checked
                    .as_bytes()
                    .try_into()
                    .map_err(|_| Error::from(Pkcs11Error::malformed("C_Sign", "not 64 bytes")))?,
            ),
        }))
    }
}

impl SigningBackend for Pkcs11Signer {
    fn key_kinds(&self) -> KeyKinds {
        KeyKinds {
            stored: true,
            hd: false,
        }
    }

    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, Error>> {
        let KeyRef::Stored(id) = key else {
            return Pending::ready(Err(Error::Unsupported(
                "a PKCS#11 token holds single keys: pin a stored label or pkcs11: URI, not an HD path or wallet",
            )));
        };
        Pending::ready(
            self.pin_id(id)
                .map(|entry| PinnedKey::with_public(key.clone(), None, entry.public_key.clone())),
        )
    }

    fn sign_digest<'a>(&'a self, request: SignRequest<'a>) -> Pending<'a, Result<Signed, Error>> {
        Pending::ready(self.sign(&request))
    }
}

impl KeyBackend for Pkcs11Signer {
    fn name(&self) -> &str {
        "pkcs11"
    }

    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }

    fn decrypting(&self) -> Option<&dyn custody_core::DecryptingBackend> {
        Some(self)
    }
}

impl fmt::Debug for Pkcs11Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Signer")
            .field("token", &self.token.label())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_the_wrong_length_are_refused() {
        // The seam's `Digest32` makes other lengths unrepresentable; this
        // is the check that stands between any caller and the token (which
        // would truncate or pad).
        assert!(check_digest(&[0; 32]).is_ok());
        for len in [0, 20, 31, 33, 48, 64] {
            assert_eq!(check_digest(&vec![0; len]).unwrap_err().kind(), "bad-input");
        }
    }

    #[test]
    fn the_digest_info_prefix_is_sha256s() {
        // RFC 8017 §9.2 note 1, SHA-256: 30 31 30 0d 06 09 60 86 48 01 65
        // 03 04 02 01 05 00 04 20 || H; the rsa crate's own prefix agrees.
        let theirs = rsa::Pkcs1v15Sign::new::<sha2::Sha256>();
        assert_eq!(theirs.prefix.as_ref(), &SHA256_DIGEST_INFO[..]);
    }
}
