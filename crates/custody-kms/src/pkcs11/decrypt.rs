//! [`Pkcs11Signer`] as a [`DecryptingBackend`]: ECDH on P-256
//! (`CKM_ECDH1_DERIVE`) and RSAES-OAEP-SHA256 (`CKM_RSA_PKCS_OAEP`) with
//! private keys that stay on the token.

use cryptoki::error::Error as CkError;
use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use custody_core::{
    AnyPublicKey, DecryptRequest, Decrypted, DecryptingBackend, Decryption, Error, P256PublicKey,
    Pending, SecretVec,
};

use super::error::{Pkcs11Error, ReturnCode, is_bad_ciphertext};
use super::signer::{Entry, Pkcs11Signer, wrong_usage};
use super::token::OpError;

/// The length of a P-256 shared secret: the x-coordinate, zero-padded.
const SHARED_SECRET_LEN: usize = 32;

/// The session object `CKM_ECDH1_DERIVE` derives the shared secret into:
/// a generic secret of the x-coordinate's 32 bytes, not on the token, not
/// sensitive and extractable so that `CKA_VALUE` can be read (then it is
/// destroyed at once).
fn shared_secret_template() -> [Attribute; 6] {
    [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::ValueLen((SHARED_SECRET_LEN as u64).into()),
    ]
}

/// `C_DeriveKey` with `CKD_NULL` and `peer`'s uncompressed point, then the
/// derived object's `CKA_VALUE`; the object is destroyed whether reading
/// it worked or not.
fn ecdh(session: &Session, key: ObjectHandle, peer: &P256PublicKey) -> Result<SecretVec, OpError> {
    let point = peer.to_uncompressed();
    let mechanism = Mechanism::Ecdh1Derive(Ecdh1DeriveParams::new(EcKdf::null(), &point));
    let derived = session.derive_key(&mechanism, key, &shared_secret_template())?;
    let read = session.get_attributes(derived, &[AttributeType::Value]);
    let destroyed = session.destroy_object(derived);
    let secret = read?.into_iter().find_map(|a| match a {
        Attribute::Value(v) => Some(SecretVec::new(v)),
        _ => None,
    });
    destroyed?;
    let secret = secret.ok_or_else(|| {
        OpError::Typed(Pkcs11Error::malformed(
            "C_DeriveKey",
            "the derived secret has no readable CKA_VALUE",
        ))
    })?;
    if secret.expose_secret().len() != SHARED_SECRET_LEN {
        return Err(OpError::Typed(Pkcs11Error::malformed(
            "C_DeriveKey",
            "the shared secret is not 32 bytes",
        )));
    }
    Ok(secret)
}

/// `C_Decrypt` with RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label). Every
/// failure that says "these bytes do not decrypt" is the one opaque
/// decryption failure: which check failed (length, padding, label hash)
/// is not told.
fn oaep(
    session: &Session,
    key: ObjectHandle,
    ciphertext: &[u8],
    name: &str,
) -> Result<SecretVec, OpError> {
    let params = PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    );
    match session.decrypt(&Mechanism::RsaPkcsOaep(params), key, ciphertext) {
        Ok(plain) => Ok(SecretVec::new(plain)),
        Err(e) if is_unsupported_oaep(&e) => Err(OpError::Typed(Pkcs11Error::WrongKeyUsage {
            operation: "C_Decrypt",
            name: name.to_owned(),
            code: ReturnCode::of(&e),
            reason: "the token does not implement CKM_RSA_PKCS_OAEP with CKM_SHA256 and CKG_MGF1_SHA256 (SoftHSM2 2.6 has SHA-1 only, softhsm/SoftHSMv2#474); custody never falls back to SHA-1",
        })),
        Err(e) if is_bad_ciphertext(&e) || is_padding_failure(&e) => {
            Err(OpError::Typed(Pkcs11Error::DecryptionFailed))
        }
        Err(e) => Err(e.into()),
    }
}

/// The parameter refusals of `C_DecryptInit` (before any ciphertext is
/// read): a token without OAEP over SHA-256. SoftHSM2 2.6 answers
/// `CKR_ARGUMENTS_BAD` for a `hashAlg` other than `CKM_SHA_1`; the
/// standard's answer is `CKR_MECHANISM_PARAM_INVALID`.
fn is_unsupported_oaep(e: &CkError) -> bool {
    use cryptoki::error::RvError;
    matches!(
        e,
        CkError::Pkcs11(
            RvError::ArgumentsBad | RvError::MechanismParamInvalid | RvError::MechanismInvalid,
            _
        )
    )
}

/// `CKR_GENERAL_ERROR` and `CKR_FUNCTION_FAILED` are what some tokens
/// (SoftHSM2 among them, through OpenSSL or Botan) answer for OAEP
/// padding they cannot decode: a decryption failure too.
fn is_padding_failure(e: &CkError) -> bool {
    use cryptoki::error::RvError;
    matches!(
        e,
        CkError::Pkcs11(RvError::GeneralError | RvError::FunctionFailed, _)
    )
}

impl Pkcs11Signer {
    fn decrypt_now(&self, request: &DecryptRequest<'_>) -> Result<Decrypted, Error> {
        let entry: std::sync::Arc<Entry> = self.entry(request.key, "C_Decrypt")?;
        let secret = match request.decryption {
            Decryption::EcdhP256 { peer } => {
                if !entry.usage.derive {
                    return Err(wrong_usage(
                        "C_DeriveKey",
                        &entry.selector.name,
                        "the key does not allow key agreement (CKA_DERIVE is false)",
                    ));
                }
                self.with_key("C_DeriveKey", &entry, |s, h| ecdh(s, h, peer))
            }
            Decryption::RsaOaepSha256 { ciphertext } => {
                if !entry.usage.decrypt {
                    return Err(wrong_usage(
                        "C_Decrypt",
                        &entry.selector.name,
                        "the key does not allow decryption (CKA_DECRYPT is false)",
                    ));
                }
                // RFC 8017 §7.1.2 step 1: a ciphertext is exactly as long
                // as the modulus; anything else is refused before the
                // token sees it, with the same opaque failure.
                let AnyPublicKey::Rsa(public) = &entry.public_key else {
                    return Err(Error::Unsupported("RSA-OAEP needs an RSA key"));
                };
                if ciphertext.len() != public.size() {
                    return Err(Error::DecryptionFailed);
                }
                self.with_key("C_Decrypt", &entry, |s, h| {
                    oaep(s, h, ciphertext, &entry.selector.name)
                })
            }
            _ => {
                return Err(Error::Unsupported(
                    "a PKCS#11 token does not perform this decryption",
                ));
            }
        };
        secret
            .map(Decrypted::new)
            .map_err(|e| e.into_core(Error::KeyNotFound))
    }
}

impl DecryptingBackend for Pkcs11Signer {
    fn decrypt<'a>(&'a self, request: DecryptRequest<'a>) -> Pending<'a, Result<Decrypted, Error>> {
        Pending::ready(self.decrypt_now(&request))
    }
}
