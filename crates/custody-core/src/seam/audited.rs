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
    Authorization, CasOutcome, Cleared, DecryptRequest, Decrypted, DecryptingBackend,
    DeferredWrite, Error, ExportingBackend, KeyAlgorithm, KeyBackend, KeyKinds, KeyRef, Pending,
    PinnedKey, PrivateKeyBytes, RecordedSwaps, SharedBackend, SignRequest, SignatureScheme, Signed,
    SigningBackend, Swap, WrappingBackend,
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
    // A secp256k1 key's record is as it always was; any other algorithm
    // is named (a P-256 key's compressed encoding looks like a
    // secp256k1 one).
    if key.algorithm() != KeyAlgorithm::Secp256k1 {
        event = event.set("algorithm", key.algorithm().as_str());
    }
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
        let scheme =
            (request.scheme != SignatureScheme::EcdsaSecp256k1).then(|| request.scheme.as_str());
        let operation = Operation {
            op: AuditOp::SIGN,
            key: request.key,
            digest: request.digest,
            intent: request.intent,
            scheme,
        };
        let sink = self.sink.as_ref();
        s.sign_digest(request.recorded())
            .then(move |result| record(sink, operation, result, Some((s, request))))
    }
}

impl DecryptingBackend for Audited {
    fn decrypt<'a>(&'a self, request: DecryptRequest<'a>) -> Pending<'a, Result<Decrypted, Error>> {
        let Some(d) = self.inner.decrypting() else {
            return Pending::ready(Err(Error::Unsupported("this backend does not decrypt")));
        };
        let operation = Operation {
            op: AuditOp::DECRYPT,
            key: request.key,
            digest: request.digest,
            intent: request.intent,
            scheme: Some(request.decryption.as_str()),
        };
        let sink = self.sink.as_ref();
        d.decrypt(request.recorded())
            .then(move |result| record(sink, operation, result, Some((d, request))))
    }
}

/// An operation run once more: after the conflict of a gate's write made on
/// records it had cached ([`DeferredWrite::optimistic`]).
trait Again<'a, T>: Send + 'a {
    fn again(self) -> Pending<'a, Result<T, Error>>;
}

impl<'a> Again<'a, Signed> for (&'a dyn SigningBackend, SignRequest<'a>) {
    fn again(self) -> Pending<'a, Result<Signed, Error>> {
        self.0.sign_digest(self.1.recorded())
    }
}

impl<'a> Again<'a, Decrypted> for (&'a dyn DecryptingBackend, DecryptRequest<'a>) {
    fn again(self) -> Pending<'a, Result<Decrypted, Error>> {
        self.0.decrypt(self.1.recorded())
    }
}

/// What a record of one key operation names (a signature or an unseal).
#[derive(Clone)]
struct Operation<'a> {
    op: AuditOp,
    key: &'a PinnedKey,
    digest: crate::Digest32,
    intent: crate::Intent<'a>,
    /// The scheme, when it is not the secp256k1 default.
    scheme: Option<&'static str>,
}

/// Writes the one record of `operation` with its outcome and clearances,
/// and releases the answer only once the record is kept (with a gate's
/// deferred write committed in the same step, or the answer withheld).
/// With `again`, a conflict of a write made on cached records runs the
/// operation once more (its first answer withheld, nothing recorded of
/// it); without, it is refused as any conflict.
fn record<'a, T: Cleared + Send + 'a, A: Again<'a, T>>(
    sink: &'a dyn AuditSink,
    operation: Operation<'a>,
    result: Result<T, Error>,
    again: Option<A>,
) -> Pending<'a, Result<T, Error>> {
    let event = (|| {
        let mut event = describe_key(event_for(operation.op.clone(), &result), operation.key)
            .with_digest(&operation.digest)
            .set("intent", operation.intent.kind().as_str());
        if let Some(scheme) = operation.scheme {
            event = event.set("scheme", scheme);
        }
        if let Some((name, value)) = operation.intent.note() {
            event = event.with_field(name, value)?;
        }
        if let Ok(answer) = &result {
            for clearance in answer.clearances() {
                event = clearance.describe(event)?;
            }
        }
        Ok(event)
    })();
    match (event, result) {
        // A gate's deferred write commits with the record, or the answer
        // is withheld.
        (Ok(event), Ok(mut answer)) => {
            let writes = answer.take_deferred();
            if writes.is_empty() {
                sink.append(event).map(move |kept| kept.map(|_| answer))
            } else {
                Pending::later(async move {
                    let retry = again.is_some();
                    match commit_deferred(&writes, event, sink, operation.clone(), retry).await? {
                        Committed::Done => Ok(answer),
                        Committed::Again => {
                            drop(answer);
                            let Some(again) = again else {
                                return Err(Error::InvalidStateRecord(
                                    "a commit asked to run again without a way to",
                                ));
                            };
                            let result = again.again().await;
                            record(sink, operation, result, None::<A>).await
                        }
                    }
                })
            }
        }
        // A failure is released only once its record is kept too.
        (Ok(event), Err(e)) => sink.append(event).map(move |kept| kept.and(Err(e))),
        (Err(e), _) => Pending::ready(Err(e)),
    }
}

/// Commits a gate's deferred writes with the record `event`, or refuses.
///
/// Where every write goes to one store that keeps `sink`
/// ([`crate::StateStore::records_into`]), all of them and the record are
/// one commit ([`crate::StateStore::compare_and_swap_all_recorded`]).
/// Otherwise (a local store, or writes to several stores) the writes are
/// swapped one by one in key order, stopping at the first conflict, and
/// the record is appended after the last: the swaps made before a
/// conflict stay (fail closed: spent without a signature), as the trait
/// says. A conflict withholds the answer and records the refusal: that of
/// the write that conflicted ([`DeferredWrite::refusal`]: a TOTP guard's
/// `totp-replayed`, a policy verdict's `verdict-invalid`); or, with
/// `retry`, if that write was made on cached records
/// ([`DeferredWrite::optimistic`]), records nothing and answers
/// [`Committed::Again`].
fn commit_deferred<'a>(
    writes: &'a [DeferredWrite],
    event: AuditEvent,
    sink: &'a dyn AuditSink,
    operation: Operation<'a>,
    retry: bool,
) -> Pending<'a, Result<Committed, Error>> {
    let Some(first) = writes.first() else {
        return Pending::ready(Ok(Committed::Done));
    };
    Pending::later(async move {
        let store = Arc::clone(first.store());
        let one_store = writes.iter().all(|w| Arc::ptr_eq(w.store(), &store));
        let conflict = if one_store && store.records_into(sink) {
            let swaps: Vec<Swap<'_>> = writes.iter().map(DeferredWrite::swap).collect();
            match store
                .compare_and_swap_all_recorded(&swaps, event, sink)
                .await?
            {
                RecordedSwaps::Swapped { versions, .. } => {
                    for (write, version) in writes.iter().zip(versions) {
                        write.finish(Some(version));
                    }
                    None
                }
                RecordedSwaps::Conflict { index, .. } => {
                    writes.iter().for_each(|w| w.finish(None));
                    Some(writes.get(index).unwrap_or(first))
                }
            }
        } else {
            let mut order: Vec<&DeferredWrite> = writes.iter().collect();
            order.sort_by(|a, b| a.key().cmp(b.key()));
            let mut conflict = None;
            for write in order {
                if conflict.is_some() {
                    // Not tried: nothing written.
                    write.finish(None);
                    continue;
                }
                let outcome = match write.value() {
                    Some(value) => {
                        write
                            .store()
                            .compare_and_swap(write.key(), write.expected(), value)
                            .await?
                    }
                    // A check: a read, compared. It holds when read, not
                    // at the record's append (no lock spans a directory's
                    // files and the log); the swaps after it still
                    // conflict if their own records moved.
                    None => {
                        let current = write.store().get(write.key()).await?;
                        match (current.as_ref().map(|c| c.version), write.expected()) {
                            (Some(now), Some(expected)) if now == expected => {
                                CasOutcome::Swapped { version: now }
                            }
                            _ => CasOutcome::Conflict { current },
                        }
                    }
                };
                match outcome {
                    CasOutcome::Swapped { version } => write.finish(Some(version)),
                    CasOutcome::Conflict { .. } => {
                        write.finish(None);
                        conflict = Some(write);
                    }
                }
            }
            if conflict.is_none() {
                sink.append(event).await?;
            }
            conflict
        };
        let Some(conflicted) = conflict else {
            return Ok(Committed::Done);
        };
        if retry && conflicted.is_optimistic() {
            return Ok(Committed::Again);
        }
        let refused: Result<Committed, Error> = Err(Error::Denied(conflicted.refusal()));
        sink.append(
            describe_key(event_for(operation.op, &refused), operation.key)
                .with_digest(&operation.digest),
        )
        .await?;
        refused
    })
}

/// What [`commit_deferred`] did.
#[derive(Debug, PartialEq, Eq)]
enum Committed {
    /// The writes and the record are committed.
    Done,
    /// A write made on cached records conflicted: nothing was written or
    /// recorded; run the operation again.
    Again,
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

    fn decrypting(&self) -> Option<&dyn DecryptingBackend> {
        self.inner
            .decrypting()
            .map(|_| self as &dyn DecryptingBackend)
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

    /// A gate that leaves a write of `"guard"` from `expected` to the layer
    /// above, over the vault.
    struct Deferring {
        vault: Arc<crate::Vault>,
        store: Arc<dyn crate::StateStore>,
        expected: Option<u64>,
        committed: Arc<std::sync::Mutex<Vec<Option<u64>>>>,
    }

    impl fmt::Debug for Deferring {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Deferring")
        }
    }

    impl SigningBackend for Deferring {
        fn key_kinds(&self) -> KeyKinds {
            self.vault.key_kinds()
        }
        fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, Error>> {
            self.vault.pin(key)
        }
        fn sign_digest<'a>(
            &'a self,
            request: SignRequest<'a>,
        ) -> Pending<'a, Result<Signed, Error>> {
            let committed = Arc::clone(&self.committed);
            let write = DeferredWrite::new(
                Arc::clone(&self.store),
                "guard".into(),
                self.expected,
                b"spent".to_vec(),
                Arc::new(move |v| committed.lock().unwrap().push(v)),
            );
            self.vault
                .sign_digest(request)
                .map(move |r| r.map(|s| s.with_deferred(write)))
        }
    }

    impl KeyBackend for Deferring {
        fn name(&self) -> &str {
            "deferring"
        }
        fn signing(&self) -> Option<&dyn SigningBackend> {
            Some(self)
        }
    }

    fn deferring(expected: Option<u64>, store: Arc<dyn crate::StateStore>) -> Deferring {
        let kek: SharedBackend = Arc::new(crate::LocalKek::from_key(
            crate::KekId::new("t").unwrap(),
            crate::DataKey::new([1; 32]),
        ));
        let mut vault = crate::Vault::new(kek, crate::WalletScheme::Default);
        vault.set_master_seed(&[3; 64]).unwrap();
        Deferring {
            vault: Arc::new(vault),
            store,
            expected,
            committed: Arc::default(),
        }
    }

    #[test]
    fn a_deferred_write_is_committed_with_the_record_or_the_signature_is_withheld() {
        let store: Arc<dyn crate::StateStore> = Arc::new(crate::MemoryStore::new());
        let log = Arc::new(crate::MemoryAuditLog::new());
        let key = KeyRef::Wallet {
            name: "w".into(),
            index: 0,
        };
        let digest = crate::Digest32([5; 32]);
        let none = Authorization::none();
        // A store that keeps no log: the write, then the record.
        let gate = Arc::new(deferring(None, Arc::clone(&store)));
        let audited: SharedBackend = Arc::new(Audited::new(gate.clone(), log.clone()));
        let signer = crate::KeySigner::pin(audited, key.clone()).wait().unwrap();
        signer
            .sign(digest, crate::Intent::raw_digest(), &none)
            .wait()
            .unwrap();
        assert_eq!(
            store.get("guard").wait().unwrap().map(|v| v.version),
            Some(1)
        );
        assert_eq!(*gate.committed.lock().unwrap(), [Some(1)]);
        assert_eq!(
            log.records().last().unwrap().event().outcome(),
            AuditOutcome::Success
        );
        // The guard moved meanwhile: nothing written, the refusal recorded,
        // no signature.
        let stale = Arc::new(deferring(None, Arc::clone(&store)));
        let audited: SharedBackend = Arc::new(Audited::new(stale.clone(), log.clone()));
        let signer = crate::KeySigner::pin(audited, key.clone()).wait().unwrap();
        let e = signer
            .sign(digest, crate::Intent::raw_digest(), &none)
            .wait()
            .unwrap_err();
        assert_eq!(e.kind(), "totp-replayed");
        assert_eq!(*stale.committed.lock().unwrap(), [None]);
        assert_eq!(
            store.get("guard").wait().unwrap().map(|v| v.version),
            Some(1)
        );
        let last = log.records().last().unwrap().clone();
        assert_eq!(last.event().outcome(), AuditOutcome::Denied);
        assert_eq!(last.event().field("detail"), Some("totp-replayed"));
        // Without an audit layer above, a deferred write is never committed:
        // the signature is refused.
        let bare: SharedBackend = Arc::new(deferring(Some(1), Arc::clone(&store)));
        let signer = crate::KeySigner::pin(bare, key).wait().unwrap();
        let e = signer
            .sign(digest, crate::Intent::raw_digest(), &none)
            .wait()
            .unwrap_err();
        assert_eq!(e.kind(), "unsupported");
        assert_eq!(
            store.get("guard").wait().unwrap().map(|v| v.version),
            Some(1)
        );
    }

    /// What each write's `done` was told: its key and outcome.
    type Seen = Vec<(&'static str, Option<u64>)>;

    /// What the deferred write to `"a"` is.
    #[derive(Clone, Copy)]
    enum A {
        /// A write expecting this version.
        Write(Option<u64>),
        /// A check that it is at this version.
        Unchanged(u64),
    }

    /// Two deferred writes of `store`, to `"b"` (absent) and `"a"`, each
    /// telling `seen` its outcome.
    fn two_writes(
        store: &Arc<dyn crate::StateStore>,
        a: A,
        seen: &Arc<std::sync::Mutex<Seen>>,
    ) -> [DeferredWrite; 2] {
        let done = |key: &'static str| {
            let seen = Arc::clone(seen);
            Arc::new(move |v| seen.lock().unwrap().push((key, v)))
        };
        let write = |key: &'static str, expected| {
            DeferredWrite::new(
                Arc::clone(store),
                key.into(),
                expected,
                key.as_bytes().to_vec(),
                done(key),
            )
        };
        let a = match a {
            A::Write(expected) => write("a", expected),
            A::Unchanged(version) => {
                DeferredWrite::unchanged(Arc::clone(store), "a".into(), version, done("a"))
            }
        };
        [write("b", None), a]
    }

    fn commit_two(
        store: &Arc<dyn crate::StateStore>,
        log: &crate::MemoryAuditLog,
        a_expected: Option<u64>,
    ) -> (Result<(), Error>, Seen) {
        commit_with(store, log, A::Write(a_expected))
    }

    fn commit_with(
        store: &Arc<dyn crate::StateStore>,
        log: &crate::MemoryAuditLog,
        a: A,
    ) -> (Result<(), Error>, Seen) {
        let master = ExtendedPrivateKey::from_seed(&[7; 64]).unwrap();
        let key = PinnedKey::new(
            KeyRef::Path("m/0".parse().unwrap()),
            Some("m/0".parse().unwrap()),
            master
                .derive_path(&"m/0".parse().unwrap())
                .unwrap()
                .public_key(),
        );
        let operation = Operation {
            op: AuditOp::SIGN,
            key: &key,
            digest: crate::Digest32([9; 32]),
            intent: crate::Intent::raw_digest(),
            scheme: None,
        };
        let seen = Arc::default();
        let writes = two_writes(store, a, &seen);
        let event = AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success);
        let result = commit_deferred(&writes, event, log, operation, false)
            .wait()
            .map(|committed| assert_eq!(committed, Committed::Done));
        let seen = std::mem::take(&mut *seen.lock().unwrap());
        (result, seen)
    }

    #[test]
    fn several_deferred_writes_commit_together_where_the_store_keeps_the_log() {
        let log = Arc::new(crate::MemoryAuditLog::new());
        let store: Arc<dyn crate::StateStore> =
            Arc::new(crate::MemoryStore::with_audit_log(Arc::clone(&log)));
        // "a" is absent, not at 1: neither is written, the refusal recorded.
        let (result, seen) = commit_two(&store, &log, Some(1));
        assert_eq!(result.unwrap_err().kind(), "totp-replayed");
        assert_eq!(seen, [("b", None), ("a", None)]);
        assert_eq!(store.get("b").wait().unwrap(), None);
        let records = log.records();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].event().outcome(), AuditOutcome::Denied);
        // Both at their expected versions: both written, one record.
        let (result, seen) = commit_two(&store, &log, None);
        result.unwrap();
        assert_eq!(seen, [("b", Some(1)), ("a", Some(1))]);
        let records = log.records();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].event().outcome(), AuditOutcome::Success);
    }

    #[test]
    fn over_a_store_without_the_log_writes_go_in_key_order_and_earlier_ones_stay() {
        let log = crate::MemoryAuditLog::new();
        let store: Arc<dyn crate::StateStore> = Arc::new(crate::MemoryStore::new());
        // "a" comes first in key order and conflicts: nothing is written.
        let (result, seen) = commit_two(&store, &log, Some(1));
        assert_eq!(result.unwrap_err().kind(), "totp-replayed");
        assert_eq!(seen, [("a", None), ("b", None)]);
        assert_eq!(store.get("b").wait().unwrap(), None);
        // "a" swaps, then "b" conflicts: "a" stays spent, no signature, the
        // refusal recorded (fail closed).
        let _ = store.compare_and_swap("b", None, b"taken").wait().unwrap();
        let (result, seen) = commit_two(&store, &log, None);
        assert_eq!(result.unwrap_err().kind(), "totp-replayed");
        assert_eq!(seen, [("a", Some(1)), ("b", None)]);
        assert_eq!(store.get("a").wait().unwrap().map(|r| r.version), Some(1));
        let records = log.records();
        assert_eq!(records.len(), 2);
        assert!(
            records
                .iter()
                .all(|r| r.event().outcome() == AuditOutcome::Denied)
        );
        // Both free: both written in key order, then the record.
        let (result, seen) = commit_two(&store, &log, Some(1));
        assert!(result.is_err(), "b is at 1, not absent");
        assert_eq!(seen, [("a", Some(2)), ("b", None)]);
        let fresh: Arc<dyn crate::StateStore> = Arc::new(crate::MemoryStore::new());
        let (result, seen) = commit_two(&fresh, &log, None);
        result.unwrap();
        assert_eq!(seen, [("a", Some(1)), ("b", Some(1))]);
        assert_eq!(
            log.records().last().unwrap().event().outcome(),
            AuditOutcome::Success
        );
    }

    #[test]
    fn a_deferred_check_holds_or_refuses_with_the_writes_and_writes_nothing() {
        let a_now = |store: &Arc<dyn crate::StateStore>| store.get("a").wait().unwrap();
        // Where the store keeps the log, one commit; elsewhere, in key
        // order ("a", the check, first).
        let log = Arc::new(crate::MemoryAuditLog::new());
        let keeping: Arc<dyn crate::StateStore> =
            Arc::new(crate::MemoryStore::with_audit_log(Arc::clone(&log)));
        let plain: Arc<dyn crate::StateStore> = Arc::new(crate::MemoryStore::new());
        for (store, refused_seen, held_seen) in [
            (
                &keeping,
                [("b", None), ("a", None)],
                [("b", Some(1)), ("a", Some(1))],
            ),
            (
                &plain,
                [("a", None), ("b", None)],
                [("a", Some(1)), ("b", Some(1))],
            ),
        ] {
            let before = log.records().len();
            // "a" is absent, not at 1: refused, "b" not written.
            let (result, seen) = commit_with(store, &log, A::Unchanged(1));
            assert_eq!(result.unwrap_err().kind(), "totp-replayed");
            assert_eq!(seen, refused_seen);
            assert_eq!(store.get("b").wait().unwrap(), None);
            assert_eq!(a_now(store), None, "a check creates nothing");
            let records = log.records();
            assert_eq!(records.len(), before + 1);
            assert_eq!(
                records.last().unwrap().event().outcome(),
                AuditOutcome::Denied
            );
            // "a" at 1: "b" written, "a" as it was, the success recorded.
            let _ = store.compare_and_swap("a", None, b"kept").wait().unwrap();
            let (result, seen) = commit_with(store, &log, A::Unchanged(1));
            result.unwrap();
            assert_eq!(seen, held_seen);
            assert_eq!(a_now(store), crate::conformance::v(1, b"kept"));
            assert_eq!(store.get("b").wait().unwrap().map(|r| r.version), Some(1));
            let records = log.records();
            assert_eq!(records.len(), before + 2);
            assert_eq!(
                records.last().unwrap().event().outcome(),
                AuditOutcome::Success
            );
        }
    }
}
