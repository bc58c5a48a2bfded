//! Naming token objects (a label or a `pkcs11:` URI) and caching their
//! handles between recoveries.

use std::sync::{Mutex, PoisonError};

use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::error::Pkcs11Error;
use super::token::{OpError, Pkcs11Token};
use super::uri::{ObjectType, Pkcs11Uri};

/// Which object a key or KEK id names: `CKA_LABEL` and/or `CKA_ID`.
#[derive(Debug, Clone)]
pub(crate) struct ObjectSelector {
    pub(crate) label: Option<String>,
    pub(crate) id: Option<Vec<u8>>,
    /// The id as given, for messages.
    pub(crate) name: String,
}

impl ObjectSelector {
    /// A key or KEK id: a bare label, or a `pkcs11:` URI naming an object
    /// (`object=` and/or `id=`) of type `want` on the token `token`.
    pub(crate) fn parse(id: &str, want: ObjectType, token: &str) -> Result<Self, Pkcs11Error> {
        if !Pkcs11Uri::is_uri(id) {
            return Ok(Self {
                label: Some(id.to_owned()),
                id: None,
                name: id.to_owned(),
            });
        }
        let uri = Pkcs11Uri::parse(id)?;
        if uri.object_type().is_some_and(|t| t != want) {
            return Err(Pkcs11Error::wrong_key_usage(
                "C_FindObjects",
                id,
                "the URI names another type of object (type=private for signing keys, type=secret-key for KEKs)",
            ));
        }
        if uri.token().is_some_and(|t| t != token) {
            return Err(Pkcs11Error::NotFound {
                what: "token",
                name: id.to_owned(),
                advice: "the URI names another token than the one this backend is open on",
            });
        }
        if uri.object().is_none() && uri.id().is_none() {
            return Err(Pkcs11Error::bad_input(
                "the pkcs11: URI names no object (object=LABEL or id=...)",
            ));
        }
        Ok(Self {
            label: uri.object().map(str::to_owned),
            id: uri.id().map(<[u8]>::to_vec),
            name: id.to_owned(),
        })
    }

    /// The one object of `class` this selector names: `not-found` (`what`,
    /// with `advice`) if there is none, `bad-input` (`several`) if there
    /// are more.
    pub(crate) fn find_one(
        &self,
        token: &Pkcs11Token,
        session: &Session,
        class: ObjectClass,
        (what, advice, several): (&'static str, &'static str, &'static str),
    ) -> Result<ObjectHandle, OpError> {
        match token
            .find(session, &self.template(Attribute::Class(class)))?
            .as_slice()
        {
            [h] => Ok(*h),
            [] => Err(OpError::Typed(Pkcs11Error::NotFound {
                what,
                name: self.name.clone(),
                advice,
            })),
            _ => Err(OpError::Typed(Pkcs11Error::bad_input(several))),
        }
    }

    /// The search template for objects of `class` this selector names.
    pub(crate) fn template(&self, class: Attribute) -> Vec<Attribute> {
        let mut t = vec![class];
        if let Some(l) = &self.label {
            t.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        t
    }
}

/// An object handle and the recovery epoch it was found in.
#[derive(Debug)]
pub(crate) struct CachedHandle(Mutex<Option<(u64, ObjectHandle)>>);

impl CachedHandle {
    pub(crate) fn new(epoch: u64, handle: ObjectHandle) -> Self {
        Self(Mutex::new(Some((epoch, handle))))
    }

    /// No handle yet: the first use looks the object up.
    pub(crate) fn empty() -> Self {
        Self(Mutex::new(None))
    }

    /// The handle, if it was found in `epoch`.
    pub(crate) fn get(&self, epoch: u64) -> Option<ObjectHandle> {
        let cached = *self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cached.and_then(|(e, h)| (e == epoch).then_some(h))
    }

    pub(crate) fn set(&self, epoch: u64, handle: ObjectHandle) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some((epoch, handle));
    }
}
