//! [`Pkcs11Kek`]: data keys wrapped by an AES key on a token.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use custody_core::{
    DataKey, EncryptionContext, Error, KekId, KeyBackend, Pending, WrappingBackend,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::error::{Pkcs11Error, ReturnCode, error_of, is_bad_ciphertext};
use super::object::{CachedHandle, ObjectSelector};
use super::token::{OpError, Pkcs11Token};
use super::uri::ObjectType;

/// First byte of every wrapped key this backend makes: the format version.
const FORMAT_V1: u8 = 1;
/// Domain separation of the context hash.
const CONTEXT_DOMAIN: &[u8] = b"custody-kms/pkcs11/kek-context/v1\0";
/// `data key ‖ SHA-256(context)`.
const PLAIN_LEN: usize = 64;

/// An AES key-wrap mechanism, and its tag in the wrapped bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WrapMechanism {
    /// `CKM_AES_KEY_WRAP_PAD` (RFC 5649), tag 1.
    KeyWrapPad,
    /// `CKM_AES_KEY_WRAP` (RFC 3394), tag 2.
    KeyWrap,
}

impl WrapMechanism {
    const PREFERENCE: [Self; 2] = [Self::KeyWrapPad, Self::KeyWrap];

    fn tag(self) -> u8 {
        match self {
            Self::KeyWrapPad => 1,
            Self::KeyWrap => 2,
        }
    }

    fn of_tag(tag: u8) -> Option<Self> {
        Self::PREFERENCE.into_iter().find(|m| m.tag() == tag)
    }

    fn mechanism_type(self) -> MechanismType {
        match self {
            Self::KeyWrapPad => MechanismType::AES_KEY_WRAP_PAD,
            Self::KeyWrap => MechanismType::AES_KEY_WRAP,
        }
    }

    fn mechanism(self) -> Mechanism<'static> {
        match self {
            Self::KeyWrapPad => Mechanism::AesKeyWrapPad,
            Self::KeyWrap => Mechanism::AesKeyWrap,
        }
    }
}

/// A KEK's cached object.
#[derive(Debug)]
struct Entry {
    selector: ObjectSelector,
    handle: CachedHandle,
}

/// A [`WrappingBackend`] (and a [`KeyBackend`] whose
/// [`wrapping`](KeyBackend::wrapping) returns it) whose key-encryption keys
/// are AES keys on a PKCS#11 token, named by `CKA_LABEL` (or a `pkcs11:`
/// URI with `type=secret-key`).
///
/// **Mechanism.** Discovered from the token's mechanism list when the
/// backend is made, never assumed: `CKM_AES_KEY_WRAP_PAD` (RFC 5649) if the
/// token can wrap and unwrap with it, else `CKM_AES_KEY_WRAP` (RFC 3394).
/// (SoftHSM2 cannot wrap with `CKM_AES_GCM`, and many HSMs allow key wrap
/// only through `C_WrapKey`/`C_UnwrapKey`.)
///
/// **Binding the encryption context.** AES key wrap has no associated data,
/// so the context is bound inside what is wrapped: the token wraps a
/// 64-byte secret, `data key ‖ SHA-256(domain ‖ mechanism tag ‖
/// context.canonical_bytes())`. AES key wrap is a deterministic
/// authenticated encryption of its whole input (every ciphertext bit
/// depends on every plaintext bit, and its 64-bit integrity check fails for
/// anything not made under this KEK), so the hash is authenticated with the
/// key: a wrong context (hash mismatch, compared in constant time), a wrong
/// KEK or tampered bytes (integrity check) each give the one opaque
/// [`Error::DecryptionFailed`]. Wrapped bytes are
/// `0x01 ‖ mechanism tag (1 = KEY_WRAP_PAD, 2 = KEY_WRAP) ‖ C_WrapKey output`
/// (74 bytes for a 32-byte data key, with either mechanism).
///
/// **No objects left behind.** Wrapping creates a session object holding the
/// 64-byte secret (sensitive, extractable only by wrapping), wraps it and
/// destroys it; unwrapping unwraps into a session object (readable once),
/// reads it and destroys it. Session objects also vanish with their session.
/// The plaintext data key lives in [`DataKey`] and `Zeroizing` buffers on
/// this side; cryptoki's own attribute buffers are plain `Vec`s, wiped here
/// once read.
///
/// `Debug` shows the default KEK id and the token label.
pub struct Pkcs11Kek {
    token: Pkcs11Token,
    default_kek: KekId,
    mechanisms: Vec<WrapMechanism>,
    keks: RwLock<HashMap<KekId, Arc<Entry>>>,
}

/// `SHA-256(domain ‖ tag ‖ context)`.
fn context_hash(tag: u8, context: &EncryptionContext) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CONTEXT_DOMAIN);
    h.update([tag]);
    h.update(context.canonical_bytes());
    h.finalize().into()
}

/// Finds an AES KEK and checks it may wrap and unwrap.
fn resolve(
    token: &Pkcs11Token,
    session: &Session,
    selector: &ObjectSelector,
) -> Result<ObjectHandle, OpError> {
    let handle = selector.find_one(
        token,
        session,
        ObjectClass::SECRET_KEY,
        (
            "secret key",
            "check the KEK's CKA_LABEL (or the URI's object=/id=) and the token",
            "several secret keys match: name the KEK by id= too",
        ),
    )?;
    let attrs = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::Wrap,
            AttributeType::Unwrap,
        ],
    )?;
    let is_aes = attrs
        .iter()
        .any(|a| matches!(a, Attribute::KeyType(k) if *k == KeyType::AES));
    let wraps = attrs.iter().any(|a| matches!(a, Attribute::Wrap(true)));
    let unwraps = attrs.iter().any(|a| matches!(a, Attribute::Unwrap(true)));
    if !is_aes || !wraps || !unwraps {
        return Err(OpError::Typed(Pkcs11Error::wrong_key_usage(
            "C_GetAttributeValue",
            &selector.name,
            "a KEK is an AES key with CKA_WRAP and CKA_UNWRAP (create one with Pkcs11Kek::generate)",
        )));
    }
    Ok(handle)
}

impl Pkcs11Kek {
    /// A KEK backend on `token`, wrapping new envelopes under `default_kek`
    /// (a label or `pkcs11:` URI). Reads the token's mechanism list once.
    ///
    /// # Errors
    /// `wrong-key-usage` if the token offers neither `CKM_AES_KEY_WRAP_PAD`
    /// nor `CKM_AES_KEY_WRAP` for wrapping and unwrapping; `unavailable` or
    /// `backend` if the mechanism list cannot be read.
    pub fn new(token: Pkcs11Token, default_kek: KekId) -> Result<Self, Pkcs11Error> {
        let ctx = token.module().ctx();
        let slot = token.slot();
        let list = ctx
            .get_mechanism_list(slot)
            .map_err(|e| error_of(&e, "C_GetMechanismList", token.label(), token.label()))?;
        let mechanisms: Vec<WrapMechanism> = WrapMechanism::PREFERENCE
            .into_iter()
            .filter(|m| list.contains(&m.mechanism_type()))
            .filter(|m| {
                // `MechanismInfo::unwrap` is the CKF_UNWRAP flag (the token
                // may unwrap with it), not `Option::unwrap`: nothing panics.
                ctx.get_mechanism_info(slot, m.mechanism_type())
                    .is_ok_and(|info| info.wrap() && info.unwrap())
            })
            .collect();
        if mechanisms.is_empty() {
            return Err(Pkcs11Error::WrongKeyUsage {
                operation: "C_GetMechanismList",
                name: token.label().to_owned(),
                code: ReturnCode::default(),
                reason: "the token offers neither CKM_AES_KEY_WRAP_PAD nor CKM_AES_KEY_WRAP for C_WrapKey/C_UnwrapKey",
            });
        }
        Ok(Self {
            token,
            default_kek,
            mechanisms,
            keks: RwLock::new(HashMap::new()),
        })
    }

    /// The token.
    #[must_use]
    pub fn token(&self) -> &Pkcs11Token {
        &self.token
    }

    /// The name of the mechanism new wraps use (`CKM_AES_KEY_WRAP_PAD` or
    /// `CKM_AES_KEY_WRAP`).
    #[must_use]
    pub fn mechanism_name(&self) -> &'static str {
        match self.mechanisms.first() {
            Some(WrapMechanism::KeyWrap) => "CKM_AES_KEY_WRAP",
            _ => "CKM_AES_KEY_WRAP_PAD",
        }
    }

    /// Generates an AES-256 KEK on the token (`CKM_AES_KEY_GEN`; a token
    /// object, `CKA_SENSITIVE`, not extractable, `CKA_WRAP` and
    /// `CKA_UNWRAP` only, a random `CKA_ID`) labelled `label`.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] if `label` is not a valid [`KekId`]; an
    /// `already-exists` [`Pkcs11Error`] (in [`Error::Backend`]) if a secret
    /// key with that label exists; other token failures.
    pub fn generate(&self, label: &str) -> Result<KekId, Error> {
        let kek = KekId::new(label)?;
        let token = &self.token;
        let (epoch, handle) = token
            .run("C_GenerateKey", label, |s, epoch| {
                let lbl = Attribute::Label(label.as_bytes().to_vec());
                let existing =
                    token.find(s, &[Attribute::Class(ObjectClass::SECRET_KEY), lbl.clone()])?;
                if !existing.is_empty() {
                    return Err(OpError::Typed(Pkcs11Error::AlreadyExists {
                        what: "secret key",
                        label: label.to_owned(),
                    }));
                }
                let id = s.generate_random_vec(16)?;
                let template = [
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Wrap(true),
                    Attribute::Unwrap(true),
                    Attribute::Encrypt(false),
                    Attribute::Decrypt(false),
                    lbl,
                    Attribute::Id(id),
                ];
                Ok((epoch, s.generate_key(&Mechanism::AesKeyGen, &template)?))
            })
            .map_err(|e| e.into_core(Error::UnknownKek))?;
        let entry = Arc::new(Entry {
            selector: ObjectSelector {
                label: Some(label.to_owned()),
                id: None,
                name: label.to_owned(),
            },
            handle: CachedHandle::new(epoch, handle),
        });
        self.keks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(kek.clone(), entry);
        Ok(kek)
    }

    /// The cached entry of `kek`, or a fresh one (its object is looked up at
    /// first use) and whether it still needs [`Pkcs11Kek::remember`]ing.
    fn entry(&self, kek: &KekId) -> Result<(Arc<Entry>, bool), Error> {
        if let Some(e) = self
            .keks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(kek)
        {
            return Ok((Arc::clone(e), false));
        }
        let selector =
            ObjectSelector::parse(kek.as_str(), ObjectType::SecretKey, self.token.label())
                .map_err(|e| e.into_core(Error::UnknownKek))?;
        let entry = Arc::new(Entry {
            selector,
            handle: CachedHandle::empty(),
        });
        Ok((entry, true))
    }

    /// Caches an entry once its KEK was found (only then: KEK ids come from
    /// envelopes, and unknown ones must not grow the cache).
    fn remember(&self, kek: &KekId, entry: Arc<Entry>, fresh: bool) {
        if fresh {
            self.keks
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(kek.clone())
                .or_insert(entry);
        }
    }

    /// The KEK's handle in this epoch, looked up if need be.
    fn handle(&self, entry: &Entry, s: &Session, epoch: u64) -> Result<ObjectHandle, OpError> {
        if let Some(h) = entry.handle.get(epoch) {
            return Ok(h);
        }
        let h = resolve(&self.token, s, &entry.selector)?;
        entry.handle.set(epoch, h);
        Ok(h)
    }

    fn wrap_key(
        &self,
        kek: &KekId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, Error> {
        let (entry, fresh) = self.entry(kek)?;
        let mech = self
            .mechanisms
            .first()
            .copied()
            .unwrap_or(WrapMechanism::KeyWrap);
        let mut plain = Zeroizing::new([0u8; PLAIN_LEN]);
        plain[..32].copy_from_slice(key.expose_secret());
        plain[32..].copy_from_slice(&context_hash(mech.tag(), context));
        let wrapped = self
            .token
            .run("C_WrapKey", &entry.selector.name, |s, epoch| {
                let h = self.handle(&entry, s, epoch)?;
                let mut template = vec![
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(true),
                    Attribute::Value(plain.to_vec()),
                ];
                let created = s.create_object(&template);
                for a in &mut template {
                    if let Attribute::Value(v) = a {
                        v.zeroize();
                    }
                }
                let secret = created?;
                let wrapped = s.wrap_key(&mech.mechanism(), h, secret);
                let destroyed = s.destroy_object(secret);
                let wrapped = wrapped?;
                destroyed?;
                Ok(wrapped)
            })
            .map_err(|e| e.into_core(Error::UnknownKek))?;
        self.remember(kek, entry, fresh);
        let mut out = Vec::with_capacity(2 + wrapped.len());
        out.push(FORMAT_V1);
        out.push(mech.tag());
        out.extend_from_slice(&wrapped);
        Ok(out)
    }

    fn unwrap_key(
        &self,
        kek: &KekId,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Result<DataKey, Error> {
        let (entry, fresh) = self.entry(kek)?;
        let (&[version, tag], body) = wrapped
            .split_first_chunk::<2>()
            .ok_or(Error::DecryptionFailed)?;
        let mech = WrapMechanism::of_tag(tag)
            .filter(|_| version == FORMAT_V1)
            .ok_or(Error::DecryptionFailed)?;
        if !self.mechanisms.contains(&mech) {
            return Err(Pkcs11Error::wrong_key_usage(
                "C_UnwrapKey",
                kek.as_str(),
                "the key was wrapped with a mechanism this token does not offer",
            )
            .into_core(Error::UnknownKek));
        }
        let plain = self
            .token
            .run("C_UnwrapKey", &entry.selector.name, |s, epoch| {
                let h = self.handle(&entry, s, epoch)?;
                let template = [
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::GENERIC_SECRET),
                    Attribute::Token(false),
                    Attribute::Private(true),
                    Attribute::Sensitive(false),
                    Attribute::Extractable(true),
                ];
                let secret = match s.unwrap_key(&mech.mechanism(), h, body, &template) {
                    Ok(o) => o,
                    // SoftHSM2 reports a failed integrity check as
                    // CKR_GENERAL_ERROR; spec-following tokens as
                    // CKR_WRAPPED_KEY_INVALID or CKR_ENCRYPTED_DATA_INVALID.
                    Err(e)
                        if is_bad_ciphertext(&e)
                            || matches!(e, CkError::Pkcs11(RvError::GeneralError, _)) =>
                    {
                        return Err(OpError::Typed(Pkcs11Error::DecryptionFailed));
                    }
                    Err(e) => return Err(e.into()),
                };
                let read = s.get_attributes(secret, &[AttributeType::Value]);
                let destroyed = s.destroy_object(secret);
                let mut attrs = read?;
                let mut value = Zeroizing::new(Vec::new());
                for a in &mut attrs {
                    if let Attribute::Value(v) = a {
                        value.extend_from_slice(v);
                        v.zeroize();
                    }
                }
                destroyed?;
                Ok(value)
            })
            .map_err(|e| e.into_core(Error::UnknownKek))?;
        self.remember(kek, entry, fresh);
        if plain.len() != PLAIN_LEN {
            return Err(Error::DecryptionFailed);
        }
        let expected = context_hash(tag, context);
        if !bool::from(plain[32..].ct_eq(&expected)) {
            return Err(Error::DecryptionFailed);
        }
        DataKey::from_slice(&plain[..32]).map_err(|_| Error::DecryptionFailed)
    }
}

impl WrappingBackend for Pkcs11Kek {
    fn default_kek(&self) -> KekId {
        self.default_kek.clone()
    }

    fn wrap<'a>(
        &'a self,
        kek: &KekId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<Vec<u8>, Error>> {
        Pending::ready(self.wrap_key(kek, key, context))
    }

    fn unwrap<'a>(
        &'a self,
        kek: &KekId,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Pending<'a, Result<DataKey, Error>> {
        Pending::ready(self.unwrap_key(kek, wrapped, context))
    }
}

impl KeyBackend for Pkcs11Kek {
    fn name(&self) -> &str {
        "pkcs11"
    }

    fn wrapping(&self) -> Option<&dyn WrappingBackend> {
        Some(self)
    }
}

impl fmt::Debug for Pkcs11Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Kek")
            .field("token", &self.token.label())
            .field("default_kek", &self.default_kek)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_hash_binds_context_and_mechanism() {
        let a = EncryptionContext::new().with("wallet", "a").unwrap();
        let b = EncryptionContext::new().with("wallet", "b").unwrap();
        assert_ne!(context_hash(1, &a), context_hash(1, &b));
        assert_ne!(context_hash(1, &a), context_hash(2, &a));
        assert_eq!(context_hash(1, &a), context_hash(1, &a.clone()));
    }

    #[test]
    fn mechanism_tags_round_trip() {
        for m in WrapMechanism::PREFERENCE {
            assert_eq!(WrapMechanism::of_tag(m.tag()), Some(m));
        }
        assert_eq!(WrapMechanism::of_tag(0), None);
        assert_eq!(WrapMechanism::of_tag(3), None);
    }
}
