//! A small durable record store with compare-and-swap: where the TOTP gate
//! keeps its replay counters and lockouts.
//!
//! A record is a versioned byte string under a UTF-8 key. The only write is
//! [`StateStore::compare_and_swap`]: it succeeds only if the record still has
//! the version the caller read (or, for `None`, does not exist yet), so two
//! signers racing on one wallet's replay counter cannot both accept the same
//! code. Versions start at 1 and grow by exactly 1 per successful swap.
//!
//! Two implementations:
//! - [`MemoryStore`], for tests and for processes that need no durability;
//! - [`FileStore`], one file per key in a directory, safe across threads
//!   *and* processes sharing the directory, crash-safe (a record is replaced
//!   atomically and is on disk before the swap is acknowledged).
//!
//! The on-disk format is specified in `SPEC.md` ("State store records") and
//! pinned by `tests/vectors/state_record_v1.bin`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};

use crate::records::fsutil;
use crate::{AuditEvent, AuditHead, AuditSink, Error, MemoryAuditLog, Pending};

/// Largest key, in bytes of UTF-8.
pub const MAX_STATE_KEY_BYTES: usize = 512;
/// Largest value, in bytes.
pub const MAX_STATE_VALUE_BYTES: usize = 64 * 1024;
/// Most keys one [`StateStore::get_many`] reads.
pub const MAX_STATE_KEYS_PER_READ: usize = 16;

/// A record's value and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The record version: 1 after the first swap, +1 per swap since.
    pub version: u64,
    /// The stored bytes. Shared, not copied: a store that keeps records in
    /// memory hands out the bytes it holds (a record is never changed in
    /// place; a swap stores new bytes), so a read allocates nothing.
    pub value: Arc<[u8]>,
}

/// The result of [`StateStore::compare_and_swap`].
#[must_use = "a Conflict means nothing was written"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The value was written (durably, for a durable store) with this version.
    Swapped {
        /// The record's new version.
        version: u64,
    },
    /// The record was not at the expected version; nothing was written.
    Conflict {
        /// The record as it is now (`None` if it does not exist).
        current: Option<Versioned>,
    },
}

/// A key/value store with per-key compare-and-swap.
///
/// # Why the methods return [`Pending`]
///
/// The stores in this crate are local (memory, a directory): a call is a
/// file lock, a read and at most one fsync, and they answer at once, with
/// [`Pending::ready`] (no allocation, no executor). A shared store (the
/// PostgreSQL store of `custody-postgres`, which many signer replicas use)
/// is network I/O: a call is a round trip that must not block an async
/// caller's executor thread, so it returns a future. One trait serves both,
/// as [`crate::KeyBackend`] does with the same type, rather than a sync and
/// an async twin: the TOTP registry and gate are written once, as `async`
/// code over `Pending` answers, and driven with [`Pending::drive`], so over
/// a local store a gated signature is still answered ready (for the cost of
/// one allocation, measured on the hot path) while over a database it is a
/// future the service `.await`s. Sync callers `.wait()`.
///
/// Object safe (`Arc<dyn StateStore>`), `Send + Sync`, and `Debug` without
/// values (implementations print where they keep records, not records).
///
/// Keys are 1 to [`MAX_STATE_KEY_BYTES`] bytes of UTF-8 (wallet names are
/// arbitrary UTF-8, e.g. e-mail addresses); values at most
/// [`MAX_STATE_VALUE_BYTES`]. Values are not secret-safe storage: keep only
/// counters, timestamps and public identifiers in them.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Reads the record under `key`, or `None` if there is none.
    ///
    /// # Errors
    /// [`Error::InvalidStateRecord`] for a key of bad length;
    /// [`Error::MalformedRecord`] if the stored record is corrupt;
    /// [`Error::Io`]; a remote store's own errors ([`Error::Backend`], e.g.
    /// kind `unavailable`).
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Result<Option<Versioned>, Error>>;

    /// Reads the records under `keys` (at most [`MAX_STATE_KEYS_PER_READ`]),
    /// answering in the same order, `None` where there is none.
    ///
    /// # Why it is part of the trait
    /// A gated signature over a shared store reads two records before it
    /// decides: the wallet's enrolment and its replay guard, freshly (the
    /// guard's write is committed later, with the signature's audit record,
    /// and a stale guard there would refuse a good code). Over a database
    /// each read is a round trip, and round trips are what a signature's
    /// latency and the database's load are made of: a remote store answers
    /// all of them in one (one statement), so a gated signature costs two
    /// statements, not three (one, where the replica's own last commit left
    /// both records: it decides on those and its commit checks them, see
    /// [`Swap`]). The default reads one key after another,
    /// which is what a local store does anyway; each answer is as fresh as
    /// a [`StateStore::get`] made at some point during the call (the
    /// records are not read as one snapshot: none of their callers needs
    /// that, and a compare-and-swap catches any record that moved since).
    ///
    /// # Errors
    /// [`Error::InvalidStateRecord`] for more than
    /// [`MAX_STATE_KEYS_PER_READ`] keys or a key of bad length; otherwise
    /// as [`StateStore::get`].
    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> Pending<'a, Result<Vec<Option<Versioned>>, Error>> {
        Pending::drive(async move {
            check_state_keys(keys)?;
            let mut records = Vec::with_capacity(keys.len());
            for key in keys {
                records.push(self.get(key).await?);
            }
            Ok(records)
        })
    }

    /// Writes `value` under `key` if the record is at version `expected`
    /// (`None`: if no record exists). On success the record's version becomes
    /// `expected + 1` (or 1) and [`CasOutcome::Swapped`] carries it; otherwise
    /// nothing is written and [`CasOutcome::Conflict`] carries the current
    /// record, so the caller can retry without another read.
    ///
    /// When a durable store returns `Swapped`, the write survives a crash or
    /// power loss: that is the acknowledgement.
    ///
    /// # Errors
    /// [`Error::InvalidStateRecord`] for a key or value of bad length;
    /// [`Error::MalformedRecord`] if the stored record is corrupt (nothing is
    /// written over it); [`Error::Io`] or a remote store's own errors. After
    /// such an error the swap may or may not have taken effect (e.g. the
    /// rename happened but the directory sync failed, or the connection
    /// dropped before the commit was acknowledged): treat it as not
    /// acknowledged, and read again before retrying.
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
    ) -> Pending<'a, Result<CasOutcome, Error>>;

    /// Whether this store keeps `audit`'s records, so that
    /// [`StateStore::compare_and_swap_all_recorded`] can commit swaps and a
    /// record together. `false` (the default) for a store that keeps no
    /// audit log (the file store, a memory store without one), or a store
    /// given a sink that is not its own log.
    fn records_into(&self, audit: &dyn AuditSink) -> bool {
        let _ = audit;
        false
    }

    /// Several compare-and-swaps and, if every one of them happens, the
    /// append of `event` to `audit`, committed together: all of them and
    /// the record, or nothing. Only for a sink
    /// [`StateStore::records_into`] accepts.
    ///
    /// `swaps` holds 1 to [`MAX_STATE_SWAPS_PER_COMMIT`] swaps of distinct
    /// keys; a swap without a value ([`Swap::unchanged`]) is a check, which
    /// holds if its record is at its version when the commit takes effect
    /// and writes nothing (see [`Swap`] for why). On
    /// [`RecordedSwaps::Swapped`], `versions[i]` is the new version of
    /// `swaps[i]` (a check's: its version, unchanged); on
    /// [`RecordedSwaps::Conflict`], `index` names a swap whose record was
    /// not at its expected version (the first such, in the order given,
    /// when the store can tell) and nothing was written or recorded.
    ///
    /// # Why one method takes several swaps
    /// A gate may spend only what the signature it clears is recorded with:
    /// the TOTP gate a code (one guard), the policy gate a verdict's
    /// one-time use, each approver's signature counter and the wallet's
    /// velocity history (several records). Over a store that keeps the log
    /// (PostgreSQL: one transaction; a memory store given its log: one
    /// lock), all of them commit with the signature's record or none does:
    /// no spent code or verdict without its record, no record of one that
    /// was not spent. One method with a slice, not a single-swap method and
    /// a sibling: every store implements the one commit, and a single swap
    /// is a one-element slice (no allocation for the caller).
    ///
    /// # A store that does not keep the log
    /// There is no such commit over a plain filesystem (no transaction
    /// spans several files and an append to another), so
    /// [`crate::Audited`] swaps there one after another in key order,
    /// stopping at the first conflict, and appends the record after the
    /// last swap. The swaps made before a conflict *stay*: this fails
    /// closed (a code or verdict spent without a signature, and the refusal
    /// recorded), never open (nothing is released that was not spent).
    /// Key order keeps two signers that spend overlapping records from
    /// each spending half of them in opposite orders over and over. A
    /// check there is a read compared in its turn: it holds when read, not
    /// at the append (no lock spans the files and the log).
    ///
    /// # Errors
    /// [`Error::Unsupported`] if the store does not keep `audit`'s records
    /// (the default); [`Error::InvalidStateRecord`] for no swaps, more than
    /// [`MAX_STATE_SWAPS_PER_COMMIT`], a key twice, a key or value of bad
    /// length, or a check without a version; those of [`StateStore::compare_and_swap`] and of the
    /// sink's append. After an error, neither the swaps nor the record are
    /// acknowledged (read again before retrying).
    fn compare_and_swap_all_recorded<'a>(
        &'a self,
        swaps: &'a [Swap<'a>],
        event: AuditEvent,
        audit: &'a dyn AuditSink,
    ) -> Pending<'a, Result<RecordedSwaps, Error>> {
        let _ = (swaps, event, audit);
        Pending::ready(Err(Error::Unsupported(
            "this state store does not keep that audit log",
        )))
    }
}

/// Most swaps one [`StateStore::compare_and_swap_all_recorded`] commits.
pub const MAX_STATE_SWAPS_PER_COMMIT: usize = 16;

/// One compare-and-swap of [`StateStore::compare_and_swap_all_recorded`]:
/// write `value` under `key` if the record is at version `expected`
/// (`None`: if no record exists); or, with no value, a check that the
/// record is at `expected` and stays as it is ([`Swap::unchanged`]).
///
/// # Why a commit can check a record it does not write
/// A gate decides on records it read earlier: the TOTP gate on a wallet's
/// enrolment (its secret, whether it is enrolled at all) and its replay
/// guard. The guard is swapped in the commit, so a guard that moved since
/// fails it; the enrolment is not written, and without a check a commit
/// cannot tell whether it still holds. With one, a replica that served a
/// wallet's last signature may decide on the enrolment and guard it cached
/// and skip the read before the next (over a database, the read is half a
/// gated signature's round trips and a third of the server's time): the
/// commit then proves both were still current, and a rotation, removal or
/// another replica's spend in between makes it a conflict, never a
/// signature cleared on stale records. A check holds *at the commit*: the
/// record was at its version when the swaps and the record took effect, and
/// no write to it could come between (a database store locks the row).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Swap<'a> {
    /// The record's key.
    pub key: &'a str,
    /// The version the record must be at (`None`: absent). A check names a
    /// version (`Some`): an absent record is checked by creating nothing,
    /// and has no version to answer.
    pub expected: Option<u64>,
    /// The value written; `None` for a check, which writes nothing and
    /// leaves the record's version as it is.
    pub value: Option<&'a [u8]>,
}

impl<'a> Swap<'a> {
    /// Writes `value` under `key` if the record is at version `expected`
    /// (`None`: if no record exists).
    #[must_use]
    pub const fn write(key: &'a str, expected: Option<u64>, value: &'a [u8]) -> Self {
        Self {
            key,
            expected,
            value: Some(value),
        }
    }

    /// Checks that the record under `key` is at `version`, writing nothing:
    /// the commit conflicts (at this swap's index) if it is not.
    #[must_use]
    pub const fn unchanged(key: &'a str, version: u64) -> Self {
        Self {
            key,
            expected: Some(version),
            value: None,
        }
    }

    /// The version the record has after the commit: `expected + 1` (1 for
    /// a create) for a write, `expected` for a check.
    ///
    /// # Errors
    /// [`Error::InvalidStateRecord`] for a write past `u64::MAX`, or a
    /// check without a version.
    pub fn version_after(&self) -> Result<u64, Error> {
        match self.value {
            Some(_) => next_version(self.expected),
            None => self.expected.ok_or(Error::InvalidStateRecord(
                "a check names the version the record must be at",
            )),
        }
    }
}

impl fmt::Debug for Swap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As the stores: where, not what.
        f.debug_struct("Swap")
            .field("key", &self.key)
            .field("expected", &self.expected)
            .field("value_len", &self.value.map(<[u8]>::len))
            .finish()
    }
}

/// The result of [`StateStore::compare_and_swap_all_recorded`].
#[must_use = "a Conflict means nothing was written or recorded"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedSwaps {
    /// Every value was written and the event recorded with this head, in
    /// one commit.
    Swapped {
        /// The records' new versions, in the order of the swaps.
        versions: Vec<u64>,
        /// The head of the audit chain the event was appended to.
        head: AuditHead,
    },
    /// A record was not at its expected version: nothing was written or
    /// recorded.
    Conflict {
        /// Which swap conflicted (its index in the slice given).
        index: usize,
        /// That record as it is now (`None` if it does not exist).
        current: Option<Versioned>,
    },
}

/// Checks the swaps of a [`StateStore::compare_and_swap_all_recorded`]:
/// 1 to [`MAX_STATE_SWAPS_PER_COMMIT`] of them, distinct keys, each key
/// and value of good length, each check ([`Swap::unchanged`]) naming a
/// version.
///
/// # Errors
/// [`Error::InvalidStateRecord`].
pub fn check_swaps(swaps: &[Swap<'_>]) -> Result<(), Error> {
    if swaps.is_empty() {
        return Err(Error::InvalidStateRecord(
            "a commit needs at least one swap",
        ));
    }
    if swaps.len() > MAX_STATE_SWAPS_PER_COMMIT {
        return Err(Error::InvalidStateRecord("too many swaps in one commit"));
    }
    for (i, swap) in swaps.iter().enumerate() {
        check_key(swap.key)?;
        match swap.value {
            Some(value) => check_value(value)?,
            None if swap.expected.is_none() => {
                return Err(Error::InvalidStateRecord(
                    "a check names the version the record must be at",
                ));
            }
            None => {}
        }
        if swaps[..i].iter().any(|s| s.key == swap.key) {
            return Err(Error::InvalidStateRecord(
                "a key is swapped twice in one commit",
            ));
        }
    }
    Ok(())
}

/// Checks the keys of a [`StateStore::get_many`]: how many, and each
/// one's length.
///
/// # Errors
/// [`Error::InvalidStateRecord`].
pub fn check_state_keys(keys: &[&str]) -> Result<(), Error> {
    if keys.len() > MAX_STATE_KEYS_PER_READ {
        return Err(Error::InvalidStateRecord("too many keys in one read"));
    }
    keys.iter().try_for_each(|key| check_key(key))
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_STATE_KEY_BYTES {
        return Err(Error::InvalidStateRecord("keys are 1-512 bytes of UTF-8"));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > MAX_STATE_VALUE_BYTES {
        return Err(Error::InvalidStateRecord("values are at most 65536 bytes"));
    }
    Ok(())
}

/// The version a swap from `expected` produces.
fn next_version(expected: Option<u64>) -> Result<u64, Error> {
    match expected {
        None => Ok(1),
        Some(v) => v
            .checked_add(1)
            .ok_or(Error::InvalidStateRecord("record version would overflow")),
    }
}

/// Compares the stored version with the expected one.
fn matches(current: Option<&Versioned>, expected: Option<u64>) -> bool {
    current.map(|c| c.version) == expected
}

/// Records held in memory; lost when dropped. For tests and embedding.
///
/// A store made [`MemoryStore::with_audit_log`] keeps that log: it commits
/// [`StateStore::compare_and_swap_all_recorded`] under one lock (the
/// swaps are checked, the record appended, then the swaps applied, with no
/// reader in between), as a database store does in one transaction.
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, Versioned>>,
    log: Option<Arc<MemoryAuditLog>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that keeps `log` ([`StateStore::records_into`] it).
    #[must_use]
    pub fn with_audit_log(log: Arc<MemoryAuditLog>) -> Self {
        Self {
            records: Mutex::default(),
            log: Some(log),
        }
    }

    /// The log this store keeps, if `audit` is it.
    fn own_log<'a>(&self, audit: &'a dyn AuditSink) -> Option<&'a MemoryAuditLog> {
        let own = self.log.as_deref()?;
        audit
            .as_any()
            .and_then(|any| any.downcast_ref::<MemoryAuditLog>())
            .filter(|log| std::ptr::eq(*log, own))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl StateStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Result<Option<Versioned>, Error>> {
        Pending::ready(self.get_now(key))
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
    ) -> Pending<'a, Result<CasOutcome, Error>> {
        Pending::ready(self.swap_now(key, expected, value))
    }

    /// `true` for the log given to [`MemoryStore::with_audit_log`].
    fn records_into(&self, audit: &dyn AuditSink) -> bool {
        self.own_log(audit).is_some()
    }

    /// Under the records' lock: every swap checked, the record appended,
    /// then every swap applied.
    fn compare_and_swap_all_recorded<'a>(
        &'a self,
        swaps: &'a [Swap<'a>],
        event: AuditEvent,
        audit: &'a dyn AuditSink,
    ) -> Pending<'a, Result<RecordedSwaps, Error>> {
        let Some(log) = self.own_log(audit) else {
            return Pending::ready(Err(Error::Unsupported(
                "this state store does not keep that audit log",
            )));
        };
        Pending::ready(self.swap_all_now(swaps, event, log))
    }
}

impl MemoryStore {
    fn swap_all_now(
        &self,
        swaps: &[Swap<'_>],
        event: AuditEvent,
        log: &MemoryAuditLog,
    ) -> Result<RecordedSwaps, Error> {
        check_swaps(swaps)?;
        let mut map = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        for (index, swap) in swaps.iter().enumerate() {
            let current = map.get(swap.key);
            if !matches(current, swap.expected) {
                return Ok(RecordedSwaps::Conflict {
                    index,
                    current: current.cloned(),
                });
            }
        }
        let versions = swaps
            .iter()
            .map(Swap::version_after)
            .collect::<Result<Vec<_>, _>>()?;
        // The record first: if it cannot be kept, nothing is swapped.
        let head = log.append(event)?;
        for (swap, &version) in swaps.iter().zip(&versions) {
            // A check writes nothing.
            let Some(value) = swap.value else {
                continue;
            };
            let record = Versioned {
                version,
                value: Arc::from(value),
            };
            match map.get_mut(swap.key) {
                Some(slot) => *slot = record,
                None => {
                    map.insert(swap.key.to_owned(), record);
                }
            }
        }
        Ok(RecordedSwaps::Swapped { versions, head })
    }

    fn get_now(&self, key: &str) -> Result<Option<Versioned>, Error> {
        check_key(key)?;
        // A poisoned lock is safe to reuse: the map is only changed by a
        // single `insert`, so a panicking holder cannot leave it half-written.
        let map = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(key).cloned())
    }

    fn swap_now(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
    ) -> Result<CasOutcome, Error> {
        check_key(key)?;
        check_value(value)?;
        let mut map = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let current = map.get(key);
        if !matches(current, expected) {
            return Ok(CasOutcome::Conflict {
                current: current.cloned(),
            });
        }
        let version = next_version(expected)?;
        let record = Versioned {
            version,
            value: Arc::from(value),
        };
        // An existing record is replaced in place: no copy of the key.
        match map.get_mut(key) {
            Some(slot) => *slot = record,
            None => {
                map.insert(key.to_owned(), record);
            }
        }
        Ok(CasOutcome::Swapped { version })
    }
}

/// Magic bytes at the start of a state record file.
const MAGIC: &[u8; 4] = b"CSSR";
/// The record format version.
const FORMAT_V1: u8 = 1;
/// magic ‖ format ‖ version ‖ key_len ‖ value_len ‖ checksum.
const FIXED_LEN: usize = 4 + 1 + 8 + 2 + 4 + 32;

/// Encodes a record (format v1, see `SPEC.md`). Lengths are checked by the
/// caller.
pub(crate) fn encode_record(key: &str, version: u64, value: &[u8]) -> Result<Vec<u8>, Error> {
    let key_len = u16::try_from(key.len())
        .map_err(|_| Error::InvalidStateRecord("keys are 1-512 bytes of UTF-8"))?;
    let value_len = u32::try_from(value.len())
        .map_err(|_| Error::InvalidStateRecord("values are at most 65536 bytes"))?;
    let mut out = Vec::with_capacity(FIXED_LEN + key.len() + value.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_V1);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&key_len.to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&value_len.to_be_bytes());
    out.extend_from_slice(value);
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    Ok(out)
}

/// A cursor over untrusted bytes that fails instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::MalformedRecord("state record is truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// Decodes a record file and checks that it belongs to `expected_key`.
pub(crate) fn decode_record(bytes: &[u8], expected_key: &str) -> Result<Versioned, Error> {
    let (key, record) = parse_record(bytes)?;
    if key != expected_key {
        return Err(Error::MalformedRecord(
            "state record belongs to another key",
        ));
    }
    Ok(record)
}

/// Decodes a record file into the key it names and its version and value.
pub(crate) fn parse_record(bytes: &[u8]) -> Result<(&str, Versioned), Error> {
    let bad = Error::MalformedRecord;
    if bytes.len() < FIXED_LEN {
        return Err(bad("state record is truncated"));
    }
    let (body, checksum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != checksum {
        return Err(bad("state record checksum mismatch (torn or corrupt file)"));
    }
    let mut r = Reader(body);
    if r.take(4)? != MAGIC {
        return Err(bad("not a state record (bad magic)"));
    }
    if r.array::<1>()? != [FORMAT_V1] {
        return Err(bad("unsupported state record format version"));
    }
    let version = u64::from_be_bytes(r.array()?);
    let key_len = usize::from(u16::from_be_bytes(r.array()?));
    let key = r.take(key_len)?;
    // Widening u32 -> usize: lossless on the 32- and 64-bit targets we build.
    let value_len = u32::from_be_bytes(r.array()?) as usize;
    let value = r.take(value_len)?;
    if !r.0.is_empty() {
        return Err(bad("state record has trailing bytes"));
    }
    if version == 0 {
        return Err(bad("state record version is 0"));
    }
    if key.is_empty() || key.len() > MAX_STATE_KEY_BYTES || value.len() > MAX_STATE_VALUE_BYTES {
        return Err(bad("state record field out of range"));
    }
    let key = std::str::from_utf8(key).map_err(|_| bad("state record key is not UTF-8"))?;
    Ok((
        key,
        Versioned {
            version,
            value: Arc::from(value),
        },
    ))
}

/// Records in a directory: one file per key, safe across threads and
/// processes, crash-safe.
///
/// Layout: the record for key `k` is the file `hex(SHA-256(k))` (64 lower-case
/// hex digits) and its lock is `hex(SHA-256(k)).lock`. A compare-and-swap
/// holds the key's lock (an OS file lock: it excludes other threads and
/// other processes) around read, compare and write; the write replaces the
/// record atomically (temp file, fsync, rename, fsync of the directory)
/// before `Swapped` is returned. Reads take no lock: a reader sees the old
/// record or the new one, never a mix. A record that fails its checksum, or
/// that names another key, is [`Error::MalformedRecord`]; it is never
/// overwritten by a swap (fail closed: an operator must look at it).
///
/// Files whose names start with `.` are temp files of writes that crashed
/// before their rename; they hold nothing acknowledged and may be deleted
/// while no writer runs.
pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    /// Opens the store in `dir`, creating the directory (mode `0o700`) if it
    /// does not exist.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be created or is not a
    /// directory.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref().to_path_buf();
        fsutil::create_private_dir(&dir)?;
        if !dir.is_dir() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                "state store path is not a directory",
            )));
        }
        Ok(Self { dir })
    }

    /// The directory the records live in.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file name of `key`'s record.
    fn file_name(key: &str) -> String {
        hex::encode(Sha256::digest(key.as_bytes()))
    }

    fn read(&self, key: &str, name: &str) -> Result<Option<Versioned>, Error> {
        match fsutil::read_optional(&self.dir.join(name))? {
            None => Ok(None),
            Some(bytes) => decode_record(&bytes, key).map(Some),
        }
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore").field("dir", &self.dir).finish()
    }
}

impl StateStore for FileStore {
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Result<Option<Versioned>, Error>> {
        Pending::ready(check_key(key).and_then(|()| self.read(key, &Self::file_name(key))))
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
    ) -> Pending<'a, Result<CasOutcome, Error>> {
        Pending::ready(self.swap_now(key, expected, value))
    }
}

impl FileStore {
    fn swap_now(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
    ) -> Result<CasOutcome, Error> {
        check_key(key)?;
        check_value(value)?;
        let name = Self::file_name(key);
        let _lock = fsutil::DirLock::lock(&self.dir.join(format!("{name}.lock")))?;
        let current = self.read(key, &name)?;
        if !matches(current.as_ref(), expected) {
            return Ok(CasOutcome::Conflict { current });
        }
        let version = next_version(expected)?;
        let bytes = encode_record(key, version, value)?;
        fsutil::write_atomic(&self.dir, &name, &bytes)?;
        Ok(CasOutcome::Swapped { version })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::records::conformance::{
        concurrent_counter, recorded_swaps, state_store as conformance, swapped, v,
    };

    fn file_store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path().join("state")).unwrap();
        (dir, store)
    }

    #[test]
    fn object_safe() {
        let stores: Vec<Arc<dyn StateStore>> =
            vec![Arc::new(MemoryStore::new()), Arc::new(file_store().1)];
        assert_eq!(stores.len(), 2);
    }

    #[test]
    fn memory_store_conforms() {
        conformance(&MemoryStore::new());
    }

    #[test]
    fn file_store_conforms() {
        let (_dir, store) = file_store();
        conformance(&store);
        // And the records persist across reopening.
        let reopened = FileStore::open(store.dir()).unwrap();
        assert_eq!(reopened.get("a").wait().unwrap(), v(6, b"value 5"));
    }

    #[test]
    fn memory_store_with_its_log_commits_swaps_and_record_together() {
        let log = Arc::new(crate::MemoryAuditLog::new());
        let store = MemoryStore::with_audit_log(Arc::clone(&log));
        conformance(&store);
        let records = || log.records().len();
        recorded_swaps(&store, log.as_ref(), &records);
        // Every record appended is the store's: the chain verifies.
        let jsonl = log.to_jsonl().unwrap();
        assert_eq!(
            crate::AuditLog::verify(jsonl.as_bytes()).unwrap(),
            log.head()
        );
        assert_eq!(log.head().seq, 5);
        // Another memory log is not its own.
        let other = crate::MemoryAuditLog::new();
        assert!(!store.records_into(&other));
        recorded_swaps(
            &MemoryStore::with_audit_log(Arc::new(other)),
            &crate::MemoryAuditLog::new(),
            &|| 0,
        );
    }

    #[test]
    fn stores_without_the_log_refuse_a_recorded_commit() {
        let log = crate::MemoryAuditLog::new();
        let records = || log.records().len();
        recorded_swaps(&MemoryStore::new(), &log, &records);
        let (_dir, store) = file_store();
        recorded_swaps(&store, &log, &records);
    }

    #[test]
    fn memory_store_counts_exactly_under_contention() {
        concurrent_counter(Arc::new(MemoryStore::new()), 8, 500);
    }

    #[test]
    fn file_store_counts_exactly_under_contention() {
        let (_dir, store) = file_store();
        concurrent_counter(Arc::new(store), 4, 25);
    }

    #[test]
    fn two_handles_on_one_dir_count_exactly() {
        // Two FileStore values on one directory stand in for two processes
        // (the process case is tests/state_crash.rs).
        let (_dir, a) = file_store();
        let b = FileStore::open(a.dir()).unwrap();
        let stores: [Arc<dyn StateStore>; 2] = [Arc::new(a), Arc::new(b)];
        let handles: Vec<_> = stores
            .iter()
            .map(|s| {
                let s = Arc::clone(s);
                std::thread::spawn(move || concurrent_counter_part(&*s, 40))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(
            stores[0].get("counter").wait().unwrap(),
            v(80, &80u64.to_be_bytes())
        );
    }

    fn concurrent_counter_part(store: &dyn StateStore, n: u64) {
        for _ in 0..n {
            loop {
                let seen = store.get("counter").wait().unwrap();
                let c = seen
                    .as_ref()
                    .map_or(0, |s| u64::from_be_bytes((*s.value).try_into().unwrap()));
                let out = store
                    .compare_and_swap("counter", seen.map(|s| s.version), &(c + 1).to_be_bytes())
                    .wait()
                    .unwrap();
                if matches!(out, CasOutcome::Swapped { .. }) {
                    break;
                }
            }
        }
    }

    #[test]
    fn record_file_is_named_by_key_hash_and_holds_the_key() {
        let (_dir, store) = file_store();
        assert_eq!(
            swapped(store.compare_and_swap("alice", None, b"7").wait().unwrap()),
            1
        );
        let name = hex::encode(Sha256::digest(b"alice"));
        let bytes = std::fs::read(store.dir().join(&name)).unwrap();
        assert_eq!(bytes, encode_record("alice", 1, b"7").unwrap());
        assert_eq!(decode_record(&bytes, "alice").unwrap(), v(1, b"7").unwrap());
    }

    #[test]
    fn corrupt_records_are_malformed_never_a_panic() {
        let (_dir, store) = file_store();
        assert_eq!(
            swapped(store.compare_and_swap("k", None, b"hello").wait().unwrap()),
            1
        );
        let path = store.dir().join(FileStore::file_name("k"));
        let good = std::fs::read(&path).unwrap();

        let mut cases: Vec<Vec<u8>> = vec![Vec::new(), b"garbage".to_vec()];
        // Every truncation (a torn write) and every single-bit flip.
        for len in 0..good.len() {
            cases.push(good[..len].to_vec());
        }
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x01;
            cases.push(b);
        }
        let mut longer = good.clone();
        longer.push(0);
        cases.push(longer);
        for bytes in cases {
            std::fs::write(&path, &bytes).unwrap();
            assert!(
                matches!(store.get("k").wait(), Err(Error::MalformedRecord(_))),
                "{bytes:?}"
            );
            // A swap never writes over a corrupt record.
            assert!(matches!(
                store.compare_and_swap("k", Some(1), b"x").wait(),
                Err(Error::MalformedRecord(_))
            ));
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
        }
    }

    #[test]
    fn well_checksummed_but_invalid_records_are_malformed() {
        let with_checksum = |body: &[u8]| {
            let mut b = body.to_vec();
            b.extend_from_slice(&Sha256::digest(body));
            b
        };
        let good = encode_record("k", 1, b"v").unwrap();
        let body = &good[..good.len() - 32];
        // Version 0.
        let mut b = body.to_vec();
        b[5..13].copy_from_slice(&0u64.to_be_bytes());
        assert!(matches!(
            decode_record(&with_checksum(&b), "k"),
            Err(Error::MalformedRecord(_))
        ));
        // Wrong format version, wrong magic.
        let mut b = body.to_vec();
        b[4] = 2;
        assert!(matches!(
            decode_record(&with_checksum(&b), "k"),
            Err(Error::MalformedRecord(_))
        ));
        let mut b = body.to_vec();
        b[0] = b'X';
        assert!(matches!(
            decode_record(&with_checksum(&b), "k"),
            Err(Error::MalformedRecord(_))
        ));
        // Key length past the end, value length past the end, trailing bytes.
        let mut b = body.to_vec();
        b[13..15].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(
            decode_record(&with_checksum(&b), "k"),
            Err(Error::MalformedRecord(_))
        ));
        let mut b = body.to_vec();
        let vl = 15 + 1;
        b[vl..vl + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_record(&with_checksum(&b), "k"),
            Err(Error::MalformedRecord(_))
        ));
        let mut b = body.to_vec();
        b.push(0);
        assert!(matches!(
            decode_record(&with_checksum(&b), "k"),
            Err(Error::MalformedRecord(_))
        ));
        // Non-UTF-8 key.
        let mut b = body.to_vec();
        b[15] = 0xFF;
        assert!(matches!(
            decode_record(&with_checksum(&b), "\u{FFFD}"),
            Err(Error::MalformedRecord(_))
        ));
    }

    #[test]
    fn a_record_copied_to_another_key_is_rejected() {
        let (_dir, store) = file_store();
        assert_eq!(
            swapped(
                store
                    .compare_and_swap("alice", None, b"locked")
                    .wait()
                    .unwrap()
            ),
            1
        );
        assert_eq!(
            swapped(store.compare_and_swap("bob", None, b"open").wait().unwrap()),
            1
        );
        std::fs::copy(
            store.dir().join(FileStore::file_name("alice")),
            store.dir().join(FileStore::file_name("bob")),
        )
        .unwrap();
        assert!(matches!(
            store.get("bob").wait(),
            Err(Error::MalformedRecord(_))
        ));
    }

    #[test]
    fn stray_temp_files_are_ignored() {
        let (_dir, store) = file_store();
        let name = FileStore::file_name("k");
        std::fs::write(store.dir().join(format!(".{name}.1.0.tmp")), b"torn").unwrap();
        assert_eq!(store.get("k").wait().unwrap(), None);
        assert_eq!(
            swapped(store.compare_and_swap("k", None, b"v").wait().unwrap()),
            1
        );
        assert_eq!(store.get("k").wait().unwrap(), v(1, b"v"));
    }

    #[test]
    fn debug_shows_no_values() {
        let store = MemoryStore::new();
        let _ = store
            .compare_and_swap("wallet", None, b"s3cr3t-ish")
            .wait()
            .unwrap();
        assert!(!format!("{store:?}").contains("s3cr3t"));
    }

    #[derive(Debug, Clone)]
    enum Expect {
        /// The version the key has now (so that most swaps succeed).
        Current,
        /// A fixed guess (`None`: must not exist).
        Fixed(Option<u64>),
    }

    #[derive(Debug, Clone)]
    enum Op {
        Get(usize),
        Cas(usize, Expect, Vec<u8>),
    }

    const KEYS: [&str; 3] = ["a", "wallet:ü", "c"];

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..KEYS.len()).prop_map(Op::Get),
            (
                0..KEYS.len(),
                prop_oneof![
                    3 => Just(Expect::Current),
                    1 => proptest::option::of(0u64..5).prop_map(Expect::Fixed),
                ],
                proptest::collection::vec(any::<u8>(), 0..8)
            )
                .prop_map(|(k, e, v)| Op::Cas(k, e, v)),
        ]
    }

    /// Runs `op` on `store`; `Expect::Current` is resolved against `model`.
    fn outcome(store: &dyn StateStore, model: &MemoryStore, op: &Op) -> String {
        match op {
            Op::Get(k) => format!(
                "{:?}",
                store.get(KEYS[*k]).wait().map_err(|e| e.to_string())
            ),
            Op::Cas(k, e, v) => {
                let expected = match e {
                    Expect::Current => model.get(KEYS[*k]).wait().unwrap().map(|c| c.version),
                    Expect::Fixed(x) => *x,
                };
                let out = store.compare_and_swap(KEYS[*k], expected, v).wait();
                format!("{:?}", out.map_err(|e| e.to_string()))
            }
        }
    }

    proptest! {
        // Each case fsyncs a few dozen times: keep the count modest.
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn file_store_behaves_like_memory_store(
            ops in proptest::collection::vec(op(), 1..24)
        ) {
            let memory = MemoryStore::new();
            let (_dir, file) = file_store();
            for op in &ops {
                // The file store goes first: `Current` reads the model before
                // the model itself applies the op.
                let from_file = outcome(&file, &memory, op);
                let from_memory = outcome(&memory, &memory, op);
                prop_assert_eq!(from_memory, from_file, "{:?}", op);
            }
            for key in KEYS {
                prop_assert_eq!(memory.get(key).wait().unwrap(), file.get(key).wait().unwrap());
            }
        }
    }
}
