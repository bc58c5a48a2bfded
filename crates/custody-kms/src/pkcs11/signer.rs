//! [`Pkcs11Signer`]: digest signing with EC secp256k1 keys on a token.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use custody_core::{
    Error, KeyBackend, KeyId, KeyKinds, KeyRef, Pending, PinnedKey, PublicKey, RawSignature,
    SignRequest, SignatureScheme, Signed, SigningBackend,
};

use super::error::Pkcs11Error;
use super::object::{CachedHandle, ObjectSelector};
use super::token::{OpError, Pkcs11Token};
use super::uri::ObjectType;

/// `CKA_EC_PARAMS` of secp256k1: the DER OID 1.3.132.0.10 (SEC 2).
const SECP256K1_PARAMS: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];

const NEED: &str =
    "custody signs with EC secp256k1 private keys (CKA_EC_PARAMS 1.3.132.0.10) that allow CKA_SIGN";

/// A pinned key's cached object: looked up once, at [`SigningBackend::pin`],
/// and again only after the token dropped its sessions.
#[derive(Debug)]
struct Entry {
    selector: ObjectSelector,
    public_key: PublicKey,
    handle: CachedHandle,
}

/// A [`SigningBackend`] (and a [`KeyBackend`] whose
/// [`signing`](KeyBackend::signing) returns it) over EC secp256k1 private
/// keys on a PKCS#11 token.
///
/// - [`pin`](SigningBackend::pin) takes [`KeyRef::Stored`] whose id is the
///   key's `CKA_LABEL` (or a `pkcs11:` URI with `object=` and/or `id=`, for
///   labels with spaces or keys named by `CKA_ID`). It finds the
///   `CKO_PRIVATE_KEY` (exactly one must match), checks it is an EC key on
///   secp256k1 (`CKA_EC_PARAMS` = OID 1.3.132.0.10) allowed to sign, finds
///   its `CKO_PUBLIC_KEY` (same `CKA_ID`, else same label) and reads
///   `CKA_EC_POINT` (DER OCTET STRING around the SEC 1 point, as SoftHSM2
///   stores it, or the bare point). The object handle and public key are
///   cached: signing looks nothing up (a peer's signer looked the key up per
///   signature and went from 100 to 1 transaction per second).
/// - [`sign_digest`](SigningBackend::sign_digest) is exactly one `C_Sign`
///   with `CKM_ECDSA` over the 32-byte digest, returning the token's `r‖s`
///   as [`RawSignature::Compact`]; [`custody_core::KeySigner`] normalizes it
///   (low `s`, recovery id found by matching the pinned key).
/// - HD references ([`KeyRef::Path`], [`KeyRef::Wallet`]) are
///   [`Error::Unsupported`].
///
/// `Debug` shows the token label only.
pub struct Pkcs11Signer {
    token: Pkcs11Token,
    keys: RwLock<HashMap<KeyId, Arc<Entry>>>,
}

/// Reads one attribute's bytes out of `get_attributes`'s answer.
fn bytes_of(attrs: &[Attribute], want: AttributeType) -> Option<&[u8]> {
    attrs.iter().find_map(|a| match (a, want) {
        (Attribute::EcParams(v), AttributeType::EcParams)
        | (Attribute::EcPoint(v), AttributeType::EcPoint)
        | (Attribute::Id(v), AttributeType::Id) => Some(v.as_slice()),
        _ => None,
    })
}

/// The SEC 1 point inside a `CKA_EC_POINT` value: a DER OCTET STRING around
/// the point (PKCS#11's rule, SoftHSM2's practice), or the bare point (some
/// tokens).
pub(crate) fn ec_point(value: &[u8]) -> Option<&[u8]> {
    let bare = match value {
        [0x04, ..] if value.len() == 65 => true,
        [0x02 | 0x03, ..] if value.len() == 33 => true,
        _ => false,
    };
    if bare {
        return Some(value);
    }
    match value {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => Some(rest),
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() && *len >= 0x80 => {
            Some(rest)
        }
        _ => None,
    }
}

/// The 32 bytes `CKM_ECDSA` signs. A token signs whatever length it is
/// given (SoftHSM2 silently truncates or pads), so anything but a 32-byte
/// digest is refused before the token sees it.
pub(crate) fn check_digest(digest: &[u8]) -> Result<&[u8; 32], Pkcs11Error> {
    digest
        .try_into()
        .map_err(|_| Pkcs11Error::bad_input("CKM_ECDSA signs 32-byte digests only"))
}

/// Finds a signing key's private object and public key.
fn resolve(
    token: &Pkcs11Token,
    session: &Session,
    selector: &ObjectSelector,
) -> Result<(ObjectHandle, PublicKey), OpError> {
    let private = token.find(
        session,
        &selector.template(Attribute::Class(ObjectClass::PRIVATE_KEY)),
    )?;
    let handle = match private.as_slice() {
        [h] => *h,
        [] => {
            return Err(OpError::Typed(Pkcs11Error::NotFound {
                what: "private key",
                name: selector.name.clone(),
                advice: "check the key's CKA_LABEL (or the URI's object=/id=) and the token",
            }));
        }
        _ => {
            return Err(OpError::Typed(Pkcs11Error::bad_input(
                "several private keys match: name the key by id= too",
            )));
        }
    };
    let attrs = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::EcParams,
            AttributeType::Sign,
            AttributeType::Id,
            AttributeType::AlwaysAuthenticate,
        ],
    )?;
    let is_ec = attrs
        .iter()
        .any(|a| matches!(a, Attribute::KeyType(k) if *k == KeyType::EC));
    let can_sign = attrs.iter().any(|a| matches!(a, Attribute::Sign(true)));
    let on_curve = bytes_of(&attrs, AttributeType::EcParams) == Some(&SECP256K1_PARAMS[..]);
    if !is_ec || !on_curve || !can_sign {
        return Err(OpError::Typed(Pkcs11Error::wrong_key_usage(
            "C_GetAttributeValue",
            &selector.name,
            NEED,
        )));
    }
    if attrs
        .iter()
        .any(|a| matches!(a, Attribute::AlwaysAuthenticate(true)))
    {
        return Err(OpError::Typed(Pkcs11Error::wrong_key_usage(
            "C_GetAttributeValue",
            &selector.name,
            "the key needs the PIN again for every signature (CKA_ALWAYS_AUTHENTICATE), which a signing service cannot give",
        )));
    }
    // The public key: same CKA_ID if the private key has one, else the
    // same label; some tokens keep CKA_EC_POINT on the private key too.
    let key_id = bytes_of(&attrs, AttributeType::Id).filter(|id| !id.is_empty());
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::KeyType(KeyType::EC),
    ];
    match (key_id, &selector.label) {
        (Some(id), _) => template.push(Attribute::Id(id.to_vec())),
        (None, Some(label)) => template.push(Attribute::Label(label.as_bytes().to_vec())),
        (None, None) => {}
    }
    let public = token.find(session, &template)?;
    let point_holder = match public.as_slice() {
        [h, ..] => *h,
        [] => handle,
    };
    let point_attrs = session.get_attributes(point_holder, &[AttributeType::EcPoint])?;
    let value = bytes_of(&point_attrs, AttributeType::EcPoint).ok_or_else(|| {
        OpError::Typed(Pkcs11Error::NotFound {
            what: "public key",
            name: selector.name.clone(),
            advice: "the token holds no CKO_PUBLIC_KEY with the private key's CKA_ID or label, and the private key has no CKA_EC_POINT",
        })
    })?;
    let point = ec_point(value).ok_or_else(|| {
        OpError::Typed(Pkcs11Error::malformed(
            "C_GetAttributeValue",
            "CKA_EC_POINT is neither a DER OCTET STRING around a point nor a point",
        ))
    })?;
    let public_key = PublicKey::from_sec1_bytes(point).map_err(|_| {
        OpError::Typed(Pkcs11Error::malformed(
            "C_GetAttributeValue",
            "CKA_EC_POINT is not a secp256k1 point",
        ))
    })?;
    Ok((handle, public_key))
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

    /// Generates a secp256k1 key pair on the token (`CKM_EC_KEY_PAIR_GEN`;
    /// token objects; the private key `CKA_SENSITIVE`, not extractable,
    /// `CKA_SIGN` only; both halves labelled `label` and given the same
    /// random `CKA_ID`) and pins it as `KeyRef::Stored(label)`.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] if `label` is not a valid [`KeyId`]; an
    /// `already-exists` [`Pkcs11Error`] (in [`Error::Backend`]) if a key
    /// with that label exists; `wrong-key-usage` if the token cannot make
    /// secp256k1 keys; other token failures.
    pub fn generate(&self, label: &str) -> Result<PinnedKey, Error> {
        let key_id = KeyId::new(label)?;
        let token = &self.token;
        let selector = ObjectSelector {
            label: Some(label.to_owned()),
            id: None,
            name: label.to_owned(),
        };
        let (epoch, handle, public_key) = token
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
                let public = [
                    Attribute::Token(true),
                    Attribute::Private(false),
                    Attribute::Verify(true),
                    Attribute::EcParams(SECP256K1_PARAMS.to_vec()),
                    lbl.clone(),
                    Attribute::Id(id.clone()),
                ];
                let private = [
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Sign(true),
                    Attribute::Derive(false),
                    lbl,
                    Attribute::Id(id),
                ];
                let (pub_h, priv_h) =
                    s.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)?;
                let attrs = s.get_attributes(pub_h, &[AttributeType::EcPoint])?;
                let point = bytes_of(&attrs, AttributeType::EcPoint)
                    .and_then(ec_point)
                    .and_then(|p| PublicKey::from_sec1_bytes(p).ok())
                    .ok_or_else(|| {
                        OpError::Typed(Pkcs11Error::malformed(
                            "C_GenerateKeyPair",
                            "the new key's CKA_EC_POINT is not a secp256k1 point",
                        ))
                    })?;
                Ok((epoch, priv_h, point))
            })
            .map_err(|e| e.into_core(Error::KeyNotFound))?;
        let entry = Arc::new(Entry {
            selector,
            public_key,
            handle: CachedHandle::new(epoch, handle),
        });
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key_id.clone(), entry);
        Ok(PinnedKey::new(KeyRef::Stored(key_id), None, public_key))
    }

    /// Looks a key up and caches it (replacing any earlier entry).
    fn pin_id(&self, id: &KeyId) -> Result<Arc<Entry>, Error> {
        let selector = ObjectSelector::parse(id.as_str(), ObjectType::Private, self.token.label())
            .map_err(|e| e.into_core(Error::KeyNotFound))?;
        let token = &self.token;
        let (epoch, handle, public_key) = token
            .run("C_FindObjects", &selector.name, |s, epoch| {
                let (h, pk) = resolve(token, s, &selector)?;
                Ok((epoch, h, pk))
            })
            .map_err(|e| e.into_core(Error::KeyNotFound))?;
        let entry = Arc::new(Entry {
            selector,
            public_key,
            handle: CachedHandle::new(epoch, handle),
        });
        self.keys
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), Arc::clone(&entry));
        Ok(entry)
    }

    fn sign(&self, request: &SignRequest<'_>) -> Result<Signed, Error> {
        let KeyRef::Stored(id) = request.key.reference() else {
            return Err(Error::Unsupported(
                "a PKCS#11 token signs only with keys pinned from a stored label or pkcs11: URI",
            ));
        };
        let cached = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        // A key pinned through another signer on this token is looked up
        // once here, then cached like any other.
        let entry = match cached {
            Some(e) => e,
            None => self.pin_id(id)?,
        };
        request.require_scheme(SignatureScheme::EcdsaSecp256k1)?;
        if entry.public_key != *request.key.secp256k1()? {
            return Err(Error::PublicKeyMismatch);
        }
        let digest = check_digest(request.digest.as_bytes()).map_err(Error::from)?;
        let token = &self.token;
        let signature = token
            .run("C_Sign", &entry.selector.name, |s, epoch| {
                let handle = match entry.handle.get(epoch) {
                    Some(h) => h,
                    None => {
                        // The token dropped its sessions since: look the
                        // key up again, and make sure it is the same key.
                        let (h, pk) = resolve(token, s, &entry.selector)?;
                        if pk != entry.public_key {
                            return Err(OpError::Core(Error::PublicKeyMismatch));
                        }
                        entry.handle.set(epoch, h);
                        h
                    }
                };
                Ok(s.sign(&Mechanism::Ecdsa, handle, digest)?)
            })
            .map_err(|e| e.into_core(Error::KeyNotFound))?;
        let compact: [u8; 64] = signature.as_slice().try_into().map_err(|_| {
            Error::from(Pkcs11Error::malformed(
                "C_Sign",
                "a CKM_ECDSA signature on secp256k1 is 64 bytes (r‖s)",
            ))
        })?;
        Ok(Signed::new(RawSignature::Compact(compact)))
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
                .map(|entry| PinnedKey::new(key.clone(), None, entry.public_key)),
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
    fn ec_point_accepts_wrapped_and_bare_points() {
        let mut bare = vec![0x04];
        bare.extend([0x11; 64]);
        assert_eq!(ec_point(&bare), Some(&bare[..]));
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend(&bare);
        assert_eq!(ec_point(&wrapped), Some(&bare[..]));
        let mut compressed = vec![0x02];
        compressed.extend([0x22; 32]);
        assert_eq!(ec_point(&compressed), Some(&compressed[..]));
        let mut wrapped_c = vec![0x04, 0x21];
        wrapped_c.extend(&compressed);
        assert_eq!(ec_point(&wrapped_c), Some(&compressed[..]));
        assert_eq!(ec_point(&[0x04, 0x41, 0x04]), None);
        assert_eq!(ec_point(&[]), None);
    }

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
}
