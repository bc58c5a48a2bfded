//! [`Audited`]: a layer that records every signature and export in an audit
//! log, failing closed.
//!
//! It wraps any [`KeyBackend`] and is itself one, so it composes with gates:
//! `Audited(TotpGate(Vault))` writes **one record per signature** holding the
//! key, the digest, the intent, the outcome and the [`Clearance`]s the gates
//! below it handed up (e.g. `totp-step`); it marks each request it forwards
//! ([`SignRequest::recorded_above`]) so that those gates do not write a
//! second record of their own (they still record their refusals). A record
//! is appended *after* the inner backend answers, with the outcome; if the
//! record cannot be written, the signature or exported key is withheld and
//! the error returned (an operation that leaves no trace does not happen).
//!
//! [`Clearance`]: crate::Clearance

use std::fmt;
use std::sync::Arc;

use crate::records::audit::{AuditEvent, AuditOp, AuditOutcome, AuditSink};
use crate::{
    Authorization, Error, ExportingBackend, KeyBackend, KeyKinds, KeyRef, Pending, PinnedKey,
    PrivateKeyBytes, SharedBackend, SignRequest, Signed, SigningBackend, WrappingBackend,
};

/// Records every signature and export of the backend it wraps.
pub struct Audited {
    inner: SharedBackend,
    sink: Arc<dyn AuditSink>,
}

impl Audited {
    /// Wraps `inner`, recording to `sink`.
    #[must_use]
    pub fn new(inner: SharedBackend, sink: Arc<dyn AuditSink>) -> Self {
        Self { inner, sink }
    }
}

/// Adds the public identifiers of a pinned key to an audit event.
#[must_use]
pub fn describe_key(event: AuditEvent, key: &PinnedKey) -> AuditEvent {
    // The same text as `with_public_key` and `with_path`, rendered when the
    // key was pinned.
    let mut event = event.set("public-key", key.public_key_hex());
    if let Some((name, index)) = key.wallet() {
        event = event.with_wallet(name).with_index(index);
    }
    if let Some(path) = key.path_text() {
        event = event.set("path", path);
    }
    if let KeyRef::Stored(id) = key.reference() {
        event = event.with_key(id.as_str());
    }
    event
}

/// The audit outcome of a result, with a static detail for failures.
fn event_for<T>(op: AuditOp, result: &Result<T, Error>) -> AuditEvent {
    match result {
        Ok(_) => AuditEvent::new(op, AuditOutcome::Success),
        Err(Error::Denied(d)) => AuditEvent::new(op, AuditOutcome::Denied).with_detail(d.kind()),
        Err(e) => AuditEvent::new(op, AuditOutcome::Failed).with_detail(e.kind()),
    }
}

impl SigningBackend for Audited {
    fn key_kinds(&self) -> KeyKinds {
        self.inner
            .signing()
            .map(SigningBackend::key_kinds)
            .unwrap_or_default()
    }

    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, Error>> {
        match self.inner.signing() {
            Some(s) => s.pin(key),
            None => Pending::ready(Err(Error::Unsupported("this backend does not sign"))),
        }
    }

    fn sign_digest<'a>(&'a self, request: SignRequest<'a>) -> Pending<'a, Result<Signed, Error>> {
        let Some(s) = self.inner.signing() else {
            return Pending::ready(Err(Error::Unsupported("this backend does not sign")));
        };
        let sink = &self.sink;
        s.sign_digest(request.recorded()).then(move |result| {
            let event = (|| {
                let mut event = describe_key(event_for(AuditOp::SIGN, &result), request.key)
                    .with_digest(&request.digest)
                    .set("intent", request.intent.kind().as_str());
                if let Some((name, value)) = request.intent.note() {
                    event = event.with_field(name, value)?;
                }
                if let Ok(signed) = &result {
                    for clearance in &signed.clearances {
                        event = clearance.describe(event)?;
                    }
                }
                Ok(event)
            })();
            match event {
                // The signature is released only once its record is kept.
                Ok(event) => sink.append(event).map(move |kept| kept.and(result)),
                Err(e) => Pending::ready(Err(e)),
            }
        })
    }
}

impl ExportingBackend for Audited {
    fn export_private_key<'a>(
        &'a self,
        key: &'a PinnedKey,
        auth: &'a Authorization,
    ) -> Pending<'a, Result<PrivateKeyBytes, Error>> {
        let Some(x) = self.inner.exporting() else {
            return Pending::ready(Err(Error::Unsupported(
                "keys of this backend cannot leave it",
            )));
        };
        let sink = &self.sink;
        x.export_private_key(key, auth).then(move |result| {
            sink.append(describe_key(event_for(AuditOp::EXPORT, &result), key))
                .map(move |kept| kept.and(result))
        })
    }
}

impl KeyBackend for Audited {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signing(&self) -> Option<&dyn SigningBackend> {
        self.inner.signing().map(|_| self as &dyn SigningBackend)
    }

    fn wrapping(&self) -> Option<&dyn WrappingBackend> {
        self.inner.wrapping()
    }

    fn exporting(&self) -> Option<&dyn ExportingBackend> {
        self.inner
            .exporting()
            .map(|_| self as &dyn ExportingBackend)
    }
}

impl fmt::Debug for Audited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audited")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditOutcome, DerivationPath, ExtendedPrivateKey, KeyId};

    #[test]
    fn rendered_key_text_is_what_the_event_setters_write() {
        let master = ExtendedPrivateKey::from_seed(&[7; 64]).unwrap();
        for (reference, path) in [
            (
                KeyRef::Wallet {
                    name: "alice@example.com".into(),
                    index: 2_147_483_647,
                },
                Some("m/44'/60'/1'/2'/3'/2147483647'/2147483647"),
            ),
            (KeyRef::Path("m/0/1'".parse().unwrap()), Some("m/0/1'")),
            (KeyRef::Stored(KeyId::new("imported-1").unwrap()), None),
        ] {
            let path: Option<DerivationPath> = path.map(|p| p.parse().unwrap());
            let public = master
                .derive_path(path.as_ref().unwrap_or(&DerivationPath::master()))
                .unwrap()
                .public_key();
            let key = PinnedKey::new(reference, path.clone(), public);
            let fresh = || AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success);
            let mut expected = fresh().with_public_key(&public);
            if let Some(p) = &path {
                expected = expected.with_path(p);
            }
            let described = describe_key(fresh(), &key);
            assert_eq!(described.field("public-key"), expected.field("public-key"));
            assert_eq!(described.field("path"), expected.field("path"));
            assert_eq!(described.field("public-key").map(str::len), Some(66));
        }
    }
}
