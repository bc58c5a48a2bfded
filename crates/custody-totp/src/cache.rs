//! The registry's bounded caches, so that a request for a warm wallet or
//! key neither recomputes what never changes (a subject's state-store keys)
//! nor decodes or unwraps what has not changed (its records, its secret).
//!
//! **Nothing cached decides anything on its own.** Every request still reads
//! the enrolment record and the guard record from the state store, and a
//! cached decoding or secret is used only when the bytes just read are
//! *exactly* the bytes it was made from; any other bytes (a rotation, a lock,
//! a record written by another process, a restored backup) are decoded, and
//! the secret unwrapped, afresh. Decoding is a pure function of the bytes,
//! so a cached decoding can never differ from a fresh one. The replay guard
//! and the lockout are still committed by a compare-and-swap on every
//! accepted code.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use custody_core::WalletScheme;

use crate::otp::KeyedSecret;
use crate::record::{EnrolmentRecord, GuardState, subject_keys};
use crate::{Error, Subject};

struct Entry<V> {
    value: V,
    /// The epoch of the last use (see [`Bounded`]).
    last_used: AtomicU64,
}

/// A map of at most `capacity` entries (0: nothing is kept); the least
/// recently used entry goes when a new one needs room.
///
/// "Recently" is counted in epochs: the epoch advances once per insertion,
/// and a hit stamps its entry with the current epoch, writing only when the
/// stamp changes. A warm cache's hits take a read lock and write nothing
/// shared (no counter bumped per request for every core to fight over).
/// Hits between two insertions are not ordered among themselves: the victim
/// is an entry unused for the most insertions, which is all the precision a
/// bound needs.
pub(crate) struct Bounded<K, V> {
    capacity: usize,
    map: RwLock<HashMap<K, Entry<V>>>,
    epoch: AtomicU64,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
        }
    }

    // A poisoned lock only means a panic elsewhere: entries are inserted and
    // removed whole, so the map is consistent and safe to keep using.

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.capacity == 0 {
            return None;
        }
        let map = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let entry = map.get(key)?;
        let now = self.epoch.load(Ordering::Relaxed);
        if entry.last_used.load(Ordering::Relaxed) != now {
            entry.last_used.store(now, Ordering::Relaxed);
        }
        Some(entry.value.clone())
    }

    pub(crate) fn insert(&self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        // Stamped before the epoch advances: every later hit is newer.
        let tick = self.epoch.fetch_add(1, Ordering::Relaxed);
        if map.len() >= self.capacity && !map.contains_key(&key) {
            let oldest = map
                .iter()
                .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(
            key,
            Entry {
                value,
                last_used: AtomicU64::new(tick),
            },
        );
    }

    pub(crate) fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    pub(crate) fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// An enrolment record as decoded, with the exact bytes it was decoded from.
#[derive(Debug)]
pub(crate) struct DecodedEnrolment {
    pub(crate) bytes: Arc<[u8]>,
    pub(crate) record: EnrolmentRecord,
}

/// A guard record as decoded (or as written), with its exact bytes.
struct DecodedGuard {
    /// The record's version in the state store, when this process last
    /// read or wrote it (versions of a key only grow: no store deletes).
    version: Option<u64>,
    bytes: Vec<u8>,
    state: GuardState,
}

/// What the registry knows of one subject (a wallet node or a key): the
/// subject and its state-store keys (which never change), and the last
/// enrolment and guard records decoded there, each valid only for the
/// bytes it was decoded from.
pub(crate) struct Slot {
    pub(crate) subject: Subject,
    /// The key of the enrolment record.
    pub(crate) record_key: String,
    pub(crate) guard_key: String,
    enrolment: Mutex<Option<Arc<DecodedEnrolment>>>,
    guard: Mutex<Option<DecodedGuard>>,
    warm: Mutex<Option<Warm>>,
}

/// The enrolment and guard of a subject as this process's last recorded
/// commit left them: the enrolment's version and decoding it decided on,
/// the guard's version and state it wrote. A gated signature over a store
/// that keeps the audit log may decide on them without a read; its commit
/// then checks both versions ([`custody_core::DeferredWrite::unchanged`]
/// and the guard's swap), so a stale one is a conflict, never a decision.
#[derive(Clone)]
pub(crate) struct Warm {
    pub(crate) enrolment_version: u64,
    pub(crate) enrolment: Arc<DecodedEnrolment>,
    pub(crate) guard_version: u64,
    pub(crate) guard: GuardState,
}

impl Slot {
    pub(crate) fn new(subject: Subject) -> Self {
        let (record_key, guard_key) = subject_keys(&subject);
        Self {
            record_key,
            guard_key,
            subject,
            enrolment: Mutex::new(None),
            guard: Mutex::new(None),
            warm: Mutex::new(None),
        }
    }

    /// The enrolment record stored as `bytes` for this subject: the cached
    /// decoding if it was made from exactly these bytes, else decoded (and
    /// checked against this subject and `scheme`) now.
    ///
    /// # Errors
    /// As [`EnrolmentRecord::decode`]; nothing is cached then.
    pub(crate) fn enrolment(
        &self,
        bytes: &Arc<[u8]>,
        scheme: WalletScheme,
    ) -> Result<Arc<DecodedEnrolment>, Error> {
        let mut cached = self
            .enrolment
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The same allocation (a store that keeps records in memory hands
        // out the bytes it holds) is the same bytes.
        if let Some(d) = cached
            .as_ref()
            .filter(|d| Arc::ptr_eq(&d.bytes, bytes) || d.bytes == *bytes)
        {
            return Ok(Arc::clone(d));
        }
        let decoded = Arc::new(DecodedEnrolment {
            record: EnrolmentRecord::decode(bytes, &self.subject, scheme)?,
            bytes: Arc::clone(bytes),
        });
        *cached = Some(Arc::clone(&decoded));
        Ok(decoded)
    }

    /// The guard record stored as `bytes` at `version`: the cached decoding
    /// if it was made from (or written as) exactly these bytes, else decoded
    /// now. Either way it becomes the [`Slot::known_guard`].
    ///
    /// # Errors
    /// As [`GuardState::decode`]; nothing is cached then.
    pub(crate) fn guard(&self, version: Option<u64>, bytes: &[u8]) -> Result<GuardState, Error> {
        let mut cached = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(g) = cached.as_mut().filter(|g| g.bytes == bytes) {
            g.version = version;
            return Ok(g.state);
        }
        let state = GuardState::decode(bytes)?;
        *cached = Some(DecodedGuard {
            version,
            bytes: bytes.to_vec(),
            state,
        });
        Ok(state)
    }

    /// Remembers the guard record just written as `bytes` (the encoding of
    /// `state`) at `version`, so that the next request starts from it. The
    /// warm records are forgotten: a write outside a recorded commit is not
    /// one a decision without a read may start from.
    pub(crate) fn wrote_guard(&self, version: u64, bytes: Vec<u8>, state: GuardState) {
        *self.guard.lock().unwrap_or_else(PoisonError::into_inner) = Some(DecodedGuard {
            version: Some(version),
            bytes,
            state,
        });
        self.cool();
    }

    /// The records this process's last recorded commit left, if it was
    /// the last thing this process did with them.
    pub(crate) fn warm(&self) -> Option<Warm> {
        self.warm
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Remembers what a recorded commit left.
    pub(crate) fn set_warm(&self, warm: Warm) {
        *self.warm.lock().unwrap_or_else(PoisonError::into_inner) = Some(warm);
    }

    /// Forgets the warm records: the next decision reads.
    pub(crate) fn cool(&self) {
        *self.warm.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The guard as this process last read or wrote it, with its version:
    /// a starting point for an optimistic compare-and-swap, never an answer
    /// on its own (another process may have moved it on since).
    pub(crate) fn known_guard(&self) -> Option<(Option<u64>, GuardState)> {
        self.guard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|g| (g.version, g.state))
    }
}

/// An unwrapped TOTP secret (keyed into its HMAC), with the decoded record
/// whose envelope it came from.
pub(crate) struct CachedSecret {
    pub(crate) from: Arc<DecodedEnrolment>,
    pub(crate) key: KeyedSecret,
}

impl CachedSecret {
    /// Whether this secret is the one sealed in `record` (the record's bytes
    /// are exactly those this secret was unwrapped from).
    pub(crate) fn is_for(&self, record: &Arc<DecodedEnrolment>) -> bool {
        Arc::ptr_eq(&self.from, record) || self.from.bytes == record.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_keeps_at_most_capacity_and_evicts_the_least_recently_used() {
        let c: Bounded<u32, u32> = Bounded::new(2);
        c.insert(1, 10);
        c.insert(2, 20);
        assert_eq!(c.get(&1), Some(10)); // 2 is now the least recently used
        c.insert(3, 30);
        assert_eq!(
            (c.get(&1), c.get(&2), c.get(&3)),
            (Some(10), None, Some(30))
        );
        c.insert(3, 31); // a replacement evicts nothing
        assert_eq!((c.len(), c.get(&1), c.get(&3)), (2, Some(10), Some(31)));
        c.remove(&1);
        assert_eq!((c.len(), c.get(&1)), (1, None));
        let off: Bounded<u32, u32> = Bounded::new(0);
        off.insert(1, 10);
        assert_eq!((off.len(), off.get(&1)), (0, None));
    }

    #[test]
    fn a_hit_on_a_warm_cache_writes_nothing_shared() {
        let c: Bounded<u32, u32> = Bounded::new(4);
        c.insert(1, 10);
        let epoch = c.epoch.load(Ordering::Relaxed);
        for _ in 0..10 {
            assert_eq!(c.get(&1), Some(10));
        }
        assert_eq!(c.epoch.load(Ordering::Relaxed), epoch);
    }

    #[test]
    fn decodings_are_reused_only_for_identical_bytes() {
        let guard = |last: u64| GuardState {
            last_step: Some(last),
            ..GuardState::default()
        };
        let slot = Slot::new(Subject::Node(custody_core::DerivationPath::master()));
        let a = guard(1).encode().unwrap();
        let b = guard(2).encode().unwrap();
        assert_eq!(slot.known_guard(), None);
        assert_eq!(slot.guard(Some(1), &a).unwrap(), guard(1));
        assert_eq!(slot.guard(Some(2), &b).unwrap(), guard(2));
        assert_eq!(slot.guard(Some(1), &a).unwrap(), guard(1));
        assert_eq!(slot.known_guard(), Some((Some(1), guard(1))));
        // What was written is what is read back; other bytes are decoded.
        slot.wrote_guard(3, b.clone(), guard(2));
        assert_eq!(slot.known_guard(), Some((Some(3), guard(2))));
        assert_eq!(slot.guard(Some(3), &b).unwrap(), guard(2));
        assert_eq!(slot.guard(Some(4), &a).unwrap(), guard(1));
        assert_eq!(slot.known_guard(), Some((Some(4), guard(1))));
        // Malformed bytes are an error, never a stale state.
        assert!(slot.guard(Some(5), b"{}").is_err());
        assert!(slot.guard(Some(5), &a[..a.len() - 1]).is_err());
        assert_eq!(slot.known_guard(), Some((Some(4), guard(1))));
    }
}
