//! [`PgAuditLog`]: custody-core's audit log in PostgreSQL, shared by every
//! signer replica, append-only, one hash chain per wallet, with signed
//! checkpoints over every chain's head.
//!
//! # Shape
//!
//! A record is exactly a record of custody-core's file log
//! ([`AuditRecord`]: sequence number, time, previous hash, event, hash),
//! kept as its canonical JSON line. Records form one chain per *chain
//! name* ([`chain_of`]): the wallet an event names, else its stored key,
//! else its public key, else the operations chain `-`. So replicas signing
//! for different wallets never wait on one another (there is no global
//! row lock per signature, as one chain would need), while every chain is
//! checked by the same verifier as the file log ([`ChainVerifier`]).
//!
//! A chain cannot show that records were cut off its end. A *checkpoint*
//! ([`PgAuditLog::checkpoint`]) lists every chain's head at one moment and
//! is signed by a key of a [`KeyBackend`] (a KMS key, an HSM key, a wallet
//! key of the keystore); [`PgAuditLog::verify`] checks every chain against
//! the last one, so a chain truncated or dropped below a signed head is
//! detected.
//!
//! # Appends without a lock
//!
//! An append reads the chain's head (or takes it from this process's
//! cache), seals the record over it, and inserts it with one statement that
//! succeeds only if the record is the next of its chain *and* the record
//! before it has the hash it names; a lost race inserts nothing and the
//! append re-reads the head and tries again. No advisory lock, no row
//! lock beyond the primary key's.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use custody_core::{
    AuditEvent, AuditHead, AuditRecord, AuditSink, Authorization, ChainVerifier, Digest32, Error,
    Intent, IntentKind, KeyBackend, Pending, PinnedKey, PublicKey, RecoverableSignature,
    SignRequest, normalize,
};
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use crate::error::{Fault, PgError};
use crate::pool::{Pool, Sql};
use crate::store::PgStateStore;
use crate::task;

const OP_APPEND: &str = "audit-append";
const OP_CHECKPOINT: &str = "audit-checkpoint";
const OP_VERIFY: &str = "audit-verify";
const OP_READ: &str = "audit-read";

/// How often an append re-reads its chain's head after losing a race for
/// the next sequence number before it gives up ([`Error::Backend`] (`unavailable`)).
pub(crate) const APPEND_ATTEMPTS: u32 = 32;
/// How many chain heads a process remembers (beyond that, the cache is
/// emptied: a forgotten head costs one read).
const HEAD_CACHE_CAP: usize = 4096;
/// Records read per query while verifying a chain.
const VERIFY_PAGE: i64 = 2000;
/// The first line of a checkpoint's signed body.
const CHECKPOINT_HEADER: &str = "custody/audit/checkpoint/v1";
/// Domain tag of the hash over every chain head in a checkpoint.
const HEADS_DOMAIN: &[u8] = b"custody/audit/heads/v1\0";
/// The chain of events that name no wallet and no key.
pub const OPERATIONS_CHAIN: &str = "-";

/// The chain an event belongs to: `wallet:<name>` if it names a wallet,
/// else `key:<id>` for a stored key, else `public-key:<hex>`, else the
/// operations chain [`OPERATIONS_CHAIN`]. A function of the event alone,
/// so the verifier checks that every record sits in its own chain (a
/// record moved to another chain is detected even if the chain it left
/// were rebuilt).
#[must_use]
pub fn chain_of(event: &AuditEvent) -> String {
    if let Some(wallet) = event.field("wallet") {
        return wallet_chain(wallet);
    }
    if let Some(key) = event.field("key") {
        return format!("key:{key}");
    }
    if let Some(public) = event.field("public-key") {
        return format!("public-key:{public}");
    }
    OPERATIONS_CHAIN.to_owned()
}

/// The chain of the records naming `wallet` (see [`chain_of`]).
fn wallet_chain(wallet: &str) -> String {
    format!("wallet:{wallet}")
}

/// The audit log in PostgreSQL: an [`AuditSink`] many replicas append to
/// at once. Made by [`PgStateStore::audit_log`], it shares the store's pool
/// and runtime, so the store can commit a TOTP guard update and its record
/// in one transaction ([`custody_core::StateStore::compare_and_swap_all_recorded`]).
///
/// [`AuditSink::append`] returns once the record's transaction has
/// committed: that is the acknowledgement. After an error, the record may
/// or may not be in the log (the commit may have happened before the
/// connection dropped); a caller about to do something sensitive must not.
#[derive(Clone)]
pub struct PgAuditLog {
    store: PgStateStore,
    heads: Arc<Heads>,
    clock: fn() -> u64,
}

/// A chain's last record: its head, and its time (ms), which the next
/// record's time is never below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChainTip {
    pub(crate) head: AuditHead,
    pub(crate) time_ms: u64,
}

impl ChainTip {
    /// A chain with no record.
    pub(crate) const GENESIS: Self = Self {
        head: AuditHead::GENESIS,
        time_ms: 0,
    };
}

/// The tip of each chain as this process last read or wrote it: a guess
/// that saves a read per append; the insert checks its head.
///
/// A chain another writer appends to as well (a wallet whose requests a
/// queue spreads over replicas) makes the guess wrong every time, and a
/// wrong guess costs a failed append before the read. So a chain whose
/// guess was found stale is *shared*: its head is read before each append
/// (a cheap read instead of a failed write) until a read finds the chain
/// where this process left it (no one else appended since), which makes
/// the guess worth trusting again.
#[derive(Default)]
pub(crate) struct Heads(Mutex<HashMap<String, Guess>>);

/// One chain's entry in [`Heads`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Guess {
    /// The tip as this process last read or wrote it (`None`: forgotten).
    tip: Option<ChainTip>,
    /// Whether the guess was last found stale: read before appending.
    shared: bool,
}

impl Heads {
    /// The tip to seal the next record of `chain` on: the guess, unless
    /// there is none or the chain is shared, then the head as committed
    /// now (`statement`: [`Sql::AuditHead`]).
    pub(crate) async fn head(
        &self,
        pool: &Pool,
        client: &Client,
        statement: &tokio_postgres::Statement,
        chain: &str,
    ) -> Result<ChainTip, Fault> {
        match self.trusted(chain) {
            Ok(tip) => Ok(tip),
            Err(guess) => {
                let head = read_head(pool, client, statement, chain).await?;
                self.read(chain, guess, head);
                Ok(head)
            }
        }
    }

    /// The guess for `chain` if it is to be trusted, else the entry (if
    /// any) to compare a read with.
    fn trusted(&self, chain: &str) -> Result<ChainTip, Option<Guess>> {
        match self.lock().get(chain).copied() {
            Some(Guess {
                tip: Some(tip),
                shared: false,
            }) => Ok(tip),
            other => Err(other),
        }
    }

    /// `head` was just read for `chain`, whose entry was `guess`.
    fn read(&self, chain: &str, guess: Option<Guess>, head: ChainTip) {
        if let Some(guess) = guess
            && guess.shared
            && guess.tip == Some(head)
        {
            // Where this process left it: no other writer since.
            self.update(chain, |_| Guess {
                tip: Some(head),
                shared: false,
            });
        }
    }

    /// `head` is the tip of `chain`, as this process just wrote it (the
    /// chain stays shared if it was).
    pub(crate) fn set(&self, chain: &str, head: ChainTip) {
        self.update(chain, |shared| Guess {
            tip: Some(head),
            shared,
        });
    }

    /// The guess for `chain` was stale: forget it, and read the head
    /// before appending to it until [`Self::head`] finds it unmoved.
    pub(crate) fn stale(&self, chain: &str) {
        self.update(chain, |_| Guess {
            tip: None,
            shared: true,
        });
    }

    /// Sets `chain`'s entry to `new(whether it was shared)`, under one lock.
    fn update(&self, chain: &str, new: impl FnOnce(bool) -> Guess) {
        let mut heads = self.lock();
        let shared = heads.get(chain).is_some_and(|g| g.shared);
        if heads.len() >= HEAD_CACHE_CAP && !heads.contains_key(chain) {
            heads.clear();
        }
        heads.insert(chain.to_owned(), new(shared));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Guess>> {
        // A poisoned cache is still a cache: every entry is checked on use.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Milliseconds since the UNIX epoch by the system clock.
fn system_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl PgStateStore {
    /// The audit log in this store's database (schema version 2, and 4 for
    /// its time column, created by
    /// [`PgStateStore::migrate`]), sharing its pool and runtime. Every log
    /// made from one store (or its clones) is the same log.
    #[must_use]
    pub fn audit_log(&self) -> PgAuditLog {
        PgAuditLog {
            store: self.clone(),
            heads: Arc::clone(self.heads()),
            clock: system_time_ms,
        }
    }
}

impl PgAuditLog {
    /// The same log with records timed by `clock` (milliseconds since the
    /// UNIX epoch), for tests with fixed times.
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = clock;
        self
    }

    /// Whether this log is the one `store` keeps (same pool).
    pub(crate) fn is_kept_by(&self, store: &PgStateStore) -> bool {
        self.store.same_pool(store)
    }

    pub(crate) fn heads(&self) -> &Arc<Heads> {
        &self.heads
    }

    pub(crate) fn clock(&self) -> fn() -> u64 {
        self.clock
    }

    /// Signs a checkpoint: the head of every chain now, as `origin` (a name
    /// for this log, e.g. the deployment's; 1 to 256 bytes without a line
    /// break) with `key` of `backend`, and stores it as the next
    /// checkpoint. The signature is over `SHA-256` of the body
    /// ([`Checkpoint::body`]), with intent [`IntentKind::AuditCheckpoint`],
    /// and is checked against `key`'s public key before it is stored.
    ///
    /// Take one every few seconds (or after every batch of work): records
    /// cut off a chain's end *after* the last checkpoint cannot be detected,
    /// so the interval is the window an attacker with DELETE on the table
    /// (which no signer role has) could hide in. Anchor a checkpoint's
    /// [`Checkpoint::root`] outside the database too.
    ///
    /// # Errors
    /// [`Error::InvalidStateRecord`] for a bad `origin`; the backend's
    /// errors (a gate may refuse: give the checkpoint key no TOTP
    /// enrolment); [`Error::Backend`] (`unavailable`) if other checkpointers kept taking
    /// the next id; [`Error::Backend`] with a [`PgError`].
    pub fn checkpoint<'a>(
        &'a self,
        origin: &'a str,
        backend: &'a dyn KeyBackend,
        key: &'a PinnedKey,
    ) -> Pending<'a, Result<Checkpoint, Error>> {
        Pending::later(async move {
            check_origin(origin)?;
            let signer = backend
                .signing()
                .ok_or(Error::Unsupported("this backend does not sign"))?;
            let auth = Authorization::none();
            for _ in 0..APPEND_ATTEMPTS {
                let pool = Arc::clone(self.store.pool());
                let (last, heads) = task::spawn(pool.handle(), OP_CHECKPOINT, {
                    let pool = Arc::clone(&pool);
                    async move { read_heads(&pool).await.map_err(Error::backend) }
                })
                .await?;
                let mut checkpoint = Checkpoint {
                    id: last + 1,
                    time_ms: (self.clock)(),
                    origin: origin.to_owned(),
                    heads,
                    public_key: *key.secp256k1()?,
                    signature: None,
                };
                let digest = checkpoint.digest();
                // The checkpoint itself is the intent's detail: a policy
                // gate can read what it is asked to sign.
                let detail = checkpoint.clone();
                let request = SignRequest::new(
                    key,
                    digest,
                    Intent::typed(IntentKind::AuditCheckpoint, &detail),
                    &auth,
                );
                let signed = signer.sign_digest(request).await?;
                checkpoint.signature =
                    Some(normalize(&signed.signature, key.secp256k1()?, &digest)?);
                let stored = checkpoint.clone();
                let inserted = task::spawn(self.store.pool().handle(), OP_CHECKPOINT, async move {
                    insert_checkpoint(&pool, &stored)
                        .await
                        .map_err(Error::backend)
                })
                .await?;
                if inserted {
                    return Ok(checkpoint);
                }
            }
            Err(Error::backend(PgError::unavailable(
                OP_CHECKPOINT,
                "other checkpointers kept taking the next checkpoint id",
            )))
        })
    }

    /// Checks the whole log: every chain from its first record with
    /// custody-core's [`ChainVerifier`] (each record the next, chained to
    /// the one before, hashed and encoded canonically, in the chain its
    /// event belongs to), and every chain against the last checkpoint (its
    /// signature, and each head it lists still in the log). With
    /// `expected_signer`, the checkpoint must be signed by that key.
    ///
    /// A break is not an `Err`: the report says where
    /// ([`AuditReport::broken`]), so that a caller sees how much verified.
    ///
    /// # Errors
    /// [`Error::Backend`] with a [`PgError`] if the log cannot be read.
    pub fn verify<'a>(
        &'a self,
        expected_signer: Option<&'a PublicKey>,
    ) -> Pending<'a, Result<AuditReport, Error>> {
        let pool = Arc::clone(self.store.pool());
        let expected = expected_signer.copied();
        Pending::later(task::spawn(
            self.store.pool().handle(),
            OP_VERIFY,
            async move {
                verify_all(&pool, expected.as_ref())
                    .await
                    .map_err(Error::backend)
            },
        ))
    }
}

impl fmt::Debug for PgAuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgAuditLog")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl AuditSink for PgAuditLog {
    fn append(&self, event: AuditEvent) -> Pending<'_, Result<AuditHead, Error>> {
        let pool = Arc::clone(self.store.pool());
        let heads = Arc::clone(&self.heads);
        let clock = self.clock;
        Pending::later(task::spawn(
            self.store.pool().handle(),
            OP_APPEND,
            async move {
                let fail = |f: Fault| Error::backend(f.classify(OP_APPEND));
                let (_permit, mut conn) = pool.lease(OP_APPEND).await.map_err(Error::backend)?;
                let append = conn.prepared(&pool, Sql::AuditAppend).await.map_err(fail)?;
                let head_sql = conn.prepared(&pool, Sql::AuditHead).await.map_err(fail)?;
                let chain = chain_of(&event);
                let mut head = heads
                    .head(&pool, &conn.client, &head_sql, &chain)
                    .await
                    .map_err(fail)?;
                // One statement, one round trip, one commit per record.
                for _ in 0..APPEND_ATTEMPTS {
                    let sealed = Sealed::new(&chain, &head, clock(), &event)?;
                    let row = pool
                        .bounded(conn.client.query_opt(
                            &append,
                            &[
                                &sealed.chain,
                                &sealed.seq,
                                &sealed.hash(),
                                &sealed.line,
                                &sealed.prev(),
                                &sealed.time_ms,
                            ],
                        ))
                        .await
                        .map_err(fail)?;
                    if row.is_some() {
                        heads.set(&chain, sealed.tip());
                        pool.give_back(conn);
                        return Ok(sealed.head());
                    }
                    // Someone else appended first (or the cached head was
                    // stale).
                    heads.stale(&chain);
                    head = read_head(&pool, &conn.client, &head_sql, &chain)
                        .await
                        .map_err(fail)?;
                }
                Err(contended(OP_APPEND))
            },
        ))
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    /// Reads the wallet's chain (`wallet:<name>`, every record naming the
    /// wallet and no other) from an index-served time bound, and refuses
    /// an answer it cannot vouch for.
    ///
    /// # How the time bound is served
    /// Every row carries its record's time in a column of its own,
    /// indexed with its chain (schema version 4,
    /// `migrations/0004_hot_path.sql`). One query finds the *smallest
    /// sequence number* among the chain's rows whose column is at or after
    /// `since_ms`; the records are then read in `seq` order from the one
    /// before it to the chain's end, and those at or after `since_ms` are
    /// returned. Record times never go down along a chain: every append
    /// times its record at its clock or at its predecessor's (real) time,
    /// whichever is later, so a replica with a slow clock appends at its
    /// predecessor's time.
    ///
    /// The column is only an index: every row read is checked against its
    /// record (its `time_ms` must be the record's time, or the answer is
    /// refused). The read starts from a row so checked, below `since_ms`
    /// by its record: the predecessor of the first row found, or (with no
    /// row found) the checkpointed head, or the chain's last row. As times
    /// never go down along the chain, every record before that one is
    /// older than `since_ms` too. So a `time_ms` written down by hand to
    /// hide records from the window gives itself away: the row just before
    /// the first one still found is either hidden too (then it is the row
    /// the read starts from, and checked) or was already before the
    /// window. (A chain appended to before schema version 4 by replicas
    /// whose clocks disagreed may hold times that go down; there, a hand
    /// edit of the column could hide a record appended *before* the
    /// migration behind a later, older-timed one: SPEC.md.)
    ///
    /// # How the links are checked
    /// Reading from the first in-window record alone would leave its own
    /// link unchecked: a writer with UPDATE on the table could move that
    /// record's `time` out of the window (re-hashing it), and the answer
    /// would simply start one record later. So the read starts one record
    /// *before* the first in-window record (its predecessor, below
    /// `since_ms` or late) and checks every link from there to the end:
    /// each record is its chain's next sequence number, names the hash of
    /// the record before it, hashes to its `hash` and is in canonical form
    /// (custody-core's checks, as [`ChainVerifier`] makes them), its `seq`
    /// and `hash` columns are its own, and its event names this wallet. An
    /// edit of any record from the predecessor on, a dropped or inserted
    /// one, is an [`Error::AuditChainBroken`], never a shorter answer. The
    /// predecessor's own link to *its* predecessor is not checked: nothing
    /// before it is counted, and the chain from its start is what
    /// [`PgAuditLog::verify`] checks (reading it all on every decision
    /// would cost a policy node time linear in the wallet's history).
    ///
    /// What no chain check can see is records cut off the chain's end, or
    /// the whole tail rewritten. So the chain must also reach the head the
    /// last checkpoint lists for it ([`PgAuditLog::checkpoint`]), with the
    /// same hash, when that head is at or after where the read starts: a
    /// spend deleted after a checkpoint covered it is refused as cut off.
    /// (The checkpoint's signature is checked by [`PgAuditLog::verify`],
    /// against the expected key; here its head only adds a refusal.)
    ///
    /// # Errors
    /// [`Error::AuditChainBroken`] as above; [`Error::Backend`] with a
    /// [`PgError`] if the log cannot be read.
    fn wallet_records<'a>(
        &'a self,
        wallet: &'a str,
        since_ms: u64,
    ) -> Pending<'a, Result<Vec<AuditRecord>, Error>> {
        let pool = Arc::clone(self.store.pool());
        let chain = wallet_chain(wallet);
        Pending::later(task::spawn(
            self.store.pool().handle(),
            OP_READ,
            async move { read_since(&pool, &chain, since_ms).await },
        ))
    }
}

/// The smallest `seq` of `$1`'s rows timed at or after `$2`, through the
/// index of `migrations/0004_hot_path.sql`. `seq + 0`, not `seq`:
/// `min(seq)` lets the planner walk the primary key from the chain's
/// first record, filtering on time, instead of using the time index
/// (measured: 20 ms against 0.1 ms for the last 333 of 20 000).
const FIRST_SINCE: &str =
    "SELECT min(seq + 0) FROM custody_audit WHERE chain = $1 AND time_ms >= $2";
/// The last `seq` of chain `$1` (`NULL`: no record).
const LAST_SEQ: &str = "SELECT max(seq) FROM custody_audit WHERE chain = $1";
/// The head the last checkpoint lists for chain `$1`.
const CHECKPOINTED_HEAD: &str = "SELECT seq, hash FROM custody_audit_checkpoint_head \
     WHERE chain = $1 AND checkpoint = (SELECT max(id) FROM custody_audit_checkpoint)";
/// A page of `$1`'s records from `seq` `$2` on.
const RECORDS_FROM: &str = "SELECT seq, hash, record, time_ms FROM custody_audit \
     WHERE chain = $1 AND seq >= $2 ORDER BY seq LIMIT $3";

/// [`AuditSink::wallet_records`] for `chain`: see there.
async fn read_since(pool: &Pool, chain: &str, since_ms: u64) -> Result<Vec<AuditRecord>, Error> {
    let fail = |f: Fault| Error::backend(f.classify(OP_READ));
    // No record is timed past 2^63 - 1 ms (the column's bigint).
    let Ok(since) = i64::try_from(since_ms) else {
        return Ok(Vec::new());
    };
    let (_permit, conn) = pool.lease(OP_READ).await.map_err(Error::backend)?;
    let row = pool
        .bounded(conn.client.query_one(FIRST_SINCE, &[&chain, &since]))
        .await
        .map_err(fail)?;
    let first: Option<i64> = row
        .try_get(0)
        .map_err(|_| fail(Fault::Row("a sequence number is not a bigint")))?;
    let anchor = match pool
        .bounded(conn.client.query_opt(CHECKPOINTED_HEAD, &[&chain]))
        .await
        .map_err(fail)?
    {
        Some(row) => Some(AuditHead {
            seq: seq_at(&row, 0).map_err(fail)?,
            hash: hash_at(&row, 1).map_err(fail)?,
        }),
        None => None,
    };
    let from = match (first, anchor) {
        // The predecessor of the first record in the window.
        (Some(first), _) => u64::try_from(first.max(2) - 1)
            .map_err(|_| fail(Fault::Row("a sequence number is below 1")))?,
        // Nothing in the window: the chain must still reach its
        // checkpointed head (an emptied window is a cut end).
        (None, Some(anchor)) => anchor.seq,
        // Nothing in the window and no checkpoint: the chain's last row,
        // checked like any other (its column could have been written down
        // to hide it).
        (None, None) => {
            let row = pool
                .bounded(conn.client.query_one(LAST_SEQ, &[&chain]))
                .await
                .map_err(fail)?;
            let last: Option<i64> = row
                .try_get(0)
                .map_err(|_| fail(Fault::Row("a sequence number is not a bigint")))?;
            match last {
                None => {
                    pool.give_back(conn);
                    return Ok(Vec::new());
                }
                Some(last) => u64::try_from(last)
                    .ok()
                    .filter(|s| *s >= 1)
                    .ok_or_else(|| fail(Fault::Row("a sequence number is below 1")))?,
            }
        }
    };
    let mut segment = Segment::new(chain, from);
    loop {
        let after =
            i64::try_from(segment.next_seq()).map_err(|_| fail(Fault::Row("seq past 2^63 - 1")))?;
        let rows = pool
            .bounded(
                conn.client
                    .query(RECORDS_FROM, &[&chain, &after, &VERIFY_PAGE]),
            )
            .await
            .map_err(fail)?;
        for row in &rows {
            let line: &str = row
                .try_get(2)
                .map_err(|_| fail(Fault::Row("a record is not text")))?;
            let seq = seq_at(row, 0).map_err(fail)?;
            let hash = hash_at(row, 1).map_err(fail)?;
            let time = time_at(row, 3).map_err(fail)?;
            segment.push(seq, &hash, time, line)?;
        }
        if rows.len() < usize::try_from(VERIFY_PAGE).unwrap_or(usize::MAX) {
            break;
        }
    }
    pool.give_back(conn);
    segment.finish(anchor, since_ms)
}

/// A run of one chain's records from `seq` `from` to the chain's end,
/// checked link by link as it is read (the first record's own link to
/// the record before it excepted: see [`PgAuditLog`]'s `wallet_records`).
struct Segment<'c> {
    chain: &'c str,
    from: u64,
    head: Option<AuditHead>,
    records: Vec<AuditRecord>,
}

impl<'c> Segment<'c> {
    fn new(chain: &'c str, from: u64) -> Self {
        Self {
            chain,
            from,
            head: None,
            records: Vec::new(),
        }
    }

    /// The sequence number the next record must have.
    fn next_seq(&self) -> u64 {
        self.head.map_or(self.from, |h| h.seq.saturating_add(1))
    }

    /// Checks the row `(seq, hash, time_ms, line)` as the segment's next
    /// record.
    fn push(&mut self, seq: u64, hash: &[u8; 32], time_ms: i64, line: &str) -> Result<(), Error> {
        let expected = self.next_seq();
        let broken = |reason| Error::AuditChainBroken {
            seq: expected,
            reason,
        };
        if seq != expected {
            return Err(broken(
                "sequence number is not the next one (record dropped, inserted or moved)",
            ));
        }
        let record = AuditRecord::from_line(line)
            .map_err(|_| broken("record is not a well-formed audit record"))?;
        if record.seq() != seq || record.hash() != hash {
            return Err(broken(
                "the row's seq or hash column differs from its record",
            ));
        }
        if u64::try_from(time_ms).ok() != Some(record.time_ms()) {
            return Err(broken(TIME_COLUMN_DIFFERS));
        }
        let linked = match &self.head {
            Some(head) => record.prev() == &head.hash,
            // The first record of a chain links to nothing.
            None => seq > 1 || record.prev() == &AuditHead::GENESIS.hash,
        };
        if !linked {
            return Err(broken("prev is not the previous record's hash"));
        }
        // Sealing the record's own fields again gives its hash (and line)
        // only if neither was edited.
        let resealed = AuditRecord::seal(
            &AuditHead {
                seq: seq - 1,
                hash: *record.prev(),
            },
            record.time_ms(),
            record.event().clone(),
        )?;
        if resealed != record {
            return Err(broken("hash does not match the record's contents"));
        }
        if resealed.to_line()? != line {
            return Err(broken("record is not in canonical form"));
        }
        if chain_of(record.event()) != self.chain {
            return Err(broken("the record belongs to another chain (moved)"));
        }
        self.head = Some(record.head());
        self.records.push(record);
        Ok(())
    }

    /// The records at or after `since_ms`, once the segment is known to
    /// reach `anchor` (the checkpointed head) where it can.
    fn finish(self, anchor: Option<AuditHead>, since_ms: u64) -> Result<Vec<AuditRecord>, Error> {
        let end = self.head.map_or(0, |h| h.seq);
        if self.head.is_none() {
            // The read starts at a record that was there: the window's
            // first, its predecessor, or the checkpointed head.
            return Err(Error::AuditChainBroken {
                seq: self.from,
                reason: "a record the read starts from is missing",
            });
        }
        if let Some(anchor) = anchor
            && anchor.seq >= self.from
        {
            if anchor.seq > end {
                return Err(Error::AuditChainBroken {
                    seq: end.saturating_add(1),
                    reason: "log ends before the anchored head (records cut off the end)",
                });
            }
            let at = self
                .records
                .iter()
                .find(|r| r.seq() == anchor.seq)
                .map(AuditRecord::head);
            if at != Some(anchor) {
                return Err(Error::AuditChainBroken {
                    seq: anchor.seq,
                    reason: "record differs from the anchored head (log rewritten)",
                });
            }
        }
        Ok(self
            .records
            .into_iter()
            .filter(|r| r.time_ms() >= since_ms)
            .collect())
    }
}

/// The error after [`APPEND_ATTEMPTS`] lost races for a chain's next
/// sequence number: retryable.
pub(crate) fn contended(operation: &'static str) -> Error {
    Error::backend(PgError::unavailable(
        operation,
        "concurrent appends kept taking the chain's next sequence number",
    ))
}

/// A record sealed over a head, with its columns as the statements take
/// them.
pub(crate) struct Sealed {
    pub(crate) chain: String,
    pub(crate) seq: i64,
    pub(crate) line: String,
    pub(crate) time_ms: i64,
    record: AuditRecord,
}

impl Sealed {
    /// Seals `event` as the next record of `chain` after `tip`, at `now`
    /// or at the tip's time if that is later: a chain's record times never
    /// go down, whatever the clocks of the replicas appending to it (a
    /// late clock's record counts as at its predecessor's time). That is
    /// what lets [`AuditSink::wallet_records`] trust one checked row for
    /// every row before it (SPEC.md).
    pub(crate) fn new(
        chain: &str,
        tip: &ChainTip,
        now: u64,
        event: &AuditEvent,
    ) -> Result<Self, Error> {
        let record = AuditRecord::seal(&tip.head, now.max(tip.time_ms), event.clone())?;
        let seq = i64::try_from(record.seq())
            .map_err(|_| Error::InvalidStateRecord("audit sequence number past 2^63 - 1"))?;
        let time_ms = i64::try_from(record.time_ms())
            .map_err(|_| Error::InvalidStateRecord("audit record time past 2^63 - 1 ms"))?;
        Ok(Self {
            chain: chain.to_owned(),
            seq,
            time_ms,
            line: record.to_line()?,
            record,
        })
    }

    pub(crate) fn hash(&self) -> &[u8] {
        self.record.hash()
    }

    pub(crate) fn prev(&self) -> &[u8] {
        self.record.prev()
    }

    pub(crate) fn head(&self) -> AuditHead {
        self.record.head()
    }

    pub(crate) fn tip(&self) -> ChainTip {
        ChainTip {
            head: self.record.head(),
            time_ms: self.record.time_ms(),
        }
    }
}

/// The tip of `chain` as committed now (`statement`: [`Sql::AuditHead`]):
/// its last row's seq and hash, and the time *in its record* (not its
/// `time_ms` column, which only someone writing the table by hand could
/// make differ: the next record's time must not go below its
/// predecessor's real one).
pub(crate) async fn read_head(
    pool: &Pool,
    client: &Client,
    statement: &tokio_postgres::Statement,
    chain: &str,
) -> Result<ChainTip, Fault> {
    let row = pool.bounded(client.query_opt(statement, &[&chain])).await?;
    match row {
        None => Ok(ChainTip::GENESIS),
        Some(row) => {
            let line: &str = row
                .try_get(2)
                .map_err(|_| Fault::Row("a record is not text"))?;
            let record = AuditRecord::from_line(line).map_err(|_| {
                Fault::Row("a chain's last record is not a well-formed audit record")
            })?;
            Ok(ChainTip {
                head: AuditHead {
                    seq: seq_at(&row, 0)?,
                    hash: hash_at(&row, 1)?,
                },
                time_ms: record.time_ms(),
            })
        }
    }
}

fn seq_at(row: &tokio_postgres::Row, column: usize) -> Result<u64, Fault> {
    let seq: i64 = row
        .try_get(column)
        .map_err(|_| Fault::Row("a sequence number is not a non-NULL bigint"))?;
    u64::try_from(seq)
        .ok()
        .filter(|s| *s >= 1)
        .ok_or(Fault::Row("a sequence number is below 1"))
}

/// The reason given for a row whose `time_ms` is not its record's time.
const TIME_COLUMN_DIFFERS: &str = "the row's time column differs from its record";

/// A `time_ms` column: any bigint (a row is checked against its record).
fn time_at(row: &tokio_postgres::Row, column: usize) -> Result<i64, Fault> {
    row.try_get(column)
        .map_err(|_| Fault::Row("a record time is not a non-NULL bigint"))
}

fn hash_at(row: &tokio_postgres::Row, column: usize) -> Result<[u8; 32], Fault> {
    let hash: &[u8] = row
        .try_get(column)
        .map_err(|_| Fault::Row("a hash is not a non-NULL bytea"))?;
    hash.try_into()
        .map_err(|_| Fault::Row("a hash is not 32 bytes"))
}

fn check_origin(origin: &str) -> Result<(), Error> {
    if origin.is_empty() || origin.len() > 256 || origin.contains(['\n', '\r']) {
        return Err(Error::InvalidStateRecord(
            "a checkpoint origin is 1-256 bytes without a line break",
        ));
    }
    Ok(())
}

/// A signed list of every chain's head at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    id: u64,
    time_ms: u64,
    origin: String,
    /// Every chain's head, in ascending byte order of chain name.
    heads: Vec<(String, AuditHead)>,
    public_key: PublicKey,
    signature: Option<RecoverableSignature>,
}

impl Checkpoint {
    /// The checkpoint's number: 1 for the first, +1 for each after.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// When it was taken, in milliseconds since the UNIX epoch.
    #[must_use]
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// The log's name, as the checkpointer gave it.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Every chain's head, in ascending byte order of chain name.
    #[must_use]
    pub fn heads(&self) -> &[(String, AuditHead)] {
        &self.heads
    }

    /// The number of records the checkpoint covers (the sum of the heads'
    /// sequence numbers).
    #[must_use]
    pub fn records(&self) -> u64 {
        self.heads
            .iter()
            .fold(0u64, |n, (_, head)| n.saturating_add(head.seq))
    }

    /// The key that signed it.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The hash over every head:
    /// `SHA-256("custody/audit/heads/v1\0" ‖ (u64be(len(chain)) ‖ chain ‖
    /// u64be(seq) ‖ hash)*)`, chains in ascending byte order.
    #[must_use]
    pub fn root(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(HEADS_DOMAIN);
        for (chain, head) in &self.heads {
            h.update((chain.len() as u64).to_be_bytes());
            h.update(chain.as_bytes());
            h.update(head.seq.to_be_bytes());
            h.update(head.hash);
        }
        h.finalize().into()
    }

    /// The signed text, after C2SP's tlog-checkpoint (one field per line):
    /// `custody/audit/checkpoint/v1`, the origin, `id <n>`, `time <ms>`,
    /// `chains <n>`, `records <n>`, `root <hex>`, each line ending `\n`.
    #[must_use]
    pub fn body(&self) -> String {
        format!(
            "{CHECKPOINT_HEADER}\n{}\nid {}\ntime {}\nchains {}\nrecords {}\nroot {}\n",
            self.origin,
            self.id,
            self.time_ms,
            self.heads.len(),
            self.records(),
            hex::encode(self.root())
        )
    }

    /// `SHA-256(body)`: the digest the key signs.
    #[must_use]
    pub fn digest(&self) -> Digest32 {
        Digest32(Sha256::digest(self.body().as_bytes()).into())
    }

    /// Whether the signature is the public key's over [`Checkpoint::digest`].
    #[must_use]
    pub fn signature_is_valid(&self) -> bool {
        self.signature
            .as_ref()
            .and_then(|sig| sig.recover(&self.digest()).ok())
            .is_some_and(|signer| signer == self.public_key)
    }
}

/// The last checkpoint id and the head of every listed chain, in one
/// statement (each chain's last record by its primary key).
async fn read_heads(pool: &Pool) -> Result<(u64, Vec<(String, AuditHead)>), PgError> {
    let (_permit, conn) = pool.lease(OP_CHECKPOINT).await?;
    let fail = |f: Fault| f.classify(OP_CHECKPOINT);
    let last = pool
        .bounded(conn.client.query_one(
            "SELECT coalesce(max(id), 0) FROM custody_audit_checkpoint",
            &[],
        ))
        .await
        .map_err(fail)?;
    let last: i64 = last
        .try_get(0)
        .map_err(|_| fail(Fault::Row("a checkpoint id is not a bigint")))?;
    let rows = pool
        .bounded(conn.client.query(
            "SELECT c.chain, h.seq, h.hash FROM custody_audit_chain c \
             CROSS JOIN LATERAL (SELECT seq, hash FROM custody_audit a \
             WHERE a.chain = c.chain ORDER BY seq DESC LIMIT 1) h",
            &[],
        ))
        .await
        .map_err(fail)?;
    let heads = heads_of(&rows).map_err(fail)?;
    pool.give_back(conn);
    let last = u64::try_from(last).map_err(|_| fail(Fault::Row("a negative checkpoint id")))?;
    Ok((last, heads))
}

/// `(chain, seq, hash)` rows as heads, in ascending byte order of chain
/// name (whatever the database's collation). Rows are untrusted.
fn heads_of(rows: &[tokio_postgres::Row]) -> Result<Vec<(String, AuditHead)>, Fault> {
    let mut heads = Vec::with_capacity(rows.len());
    for row in rows {
        let chain: String = row
            .try_get(0)
            .map_err(|_| Fault::Row("a chain name is not text"))?;
        heads.push((
            chain,
            AuditHead {
                seq: seq_at(row, 1)?,
                hash: hash_at(row, 2)?,
            },
        ));
    }
    heads.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(heads)
}

/// Stores `checkpoint` and its heads in one transaction; `false` if its id
/// was taken meanwhile (nothing stored).
async fn insert_checkpoint(pool: &Pool, checkpoint: &Checkpoint) -> Result<bool, PgError> {
    let (_permit, mut conn) = pool.lease(OP_CHECKPOINT).await?;
    let fail = |f: Fault| f.classify(OP_CHECKPOINT);
    let id = i64::try_from(checkpoint.id)
        .map_err(|_| PgError::bad_input(OP_CHECKPOINT, "checkpoint id"))?;
    let time = i64::try_from(checkpoint.time_ms)
        .map_err(|_| PgError::bad_input(OP_CHECKPOINT, "checkpoint time"))?;
    let signature = checkpoint
        .signature
        .as_ref()
        .map(signature_bytes)
        .ok_or(PgError::bad_input(OP_CHECKPOINT, "an unsigned checkpoint"))?;
    let public_key = checkpoint.public_key.to_compressed();
    let tx = pool
        .bounded(conn.client.transaction())
        .await
        .map_err(fail)?;
    let inserted = pool
        .bounded(tx.execute(
            "INSERT INTO custody_audit_checkpoint (id, time_ms, origin, public_key, signature) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            &[
                &id,
                &time,
                &checkpoint.origin,
                &&public_key[..],
                &&signature[..],
            ],
        ))
        .await
        .map_err(fail)?;
    if inserted == 0 {
        drop(tx);
        return Ok(false);
    }
    let statement = pool
        .bounded(tx.prepare(
            "INSERT INTO custody_audit_checkpoint_head (checkpoint, chain, seq, hash) \
             VALUES ($1, $2, $3, $4)",
        ))
        .await
        .map_err(fail)?;
    for (chain, head) in &checkpoint.heads {
        let seq = i64::try_from(head.seq).map_err(|_| PgError::bad_input(OP_CHECKPOINT, "seq"))?;
        pool.bounded(tx.execute(&statement, &[&id, chain, &seq, &&head.hash[..]]))
            .await
            .map_err(fail)?;
    }
    pool.bounded(tx.commit()).await.map_err(fail)?;
    pool.give_back(conn);
    Ok(true)
}

fn signature_bytes(sig: &RecoverableSignature) -> [u8; 65] {
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&sig.to_compact());
    out[64] = u8::from(sig.y_parity());
    out
}

/// What [`PgAuditLog::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Records checked (all of them, if nothing is broken).
    pub records: u64,
    /// Chains checked.
    pub chains: u64,
    /// The last checkpoint, if there is one (checked unless `broken` says
    /// otherwise).
    pub checkpoint: Option<Checkpoint>,
    /// The first break found, if any.
    pub broken: Option<AuditBreak>,
}

/// Where a log is broken: the chain, the sequence number of the first bad
/// record (or of the first record missing), and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    /// The chain's name (empty for a break in the checkpoint itself).
    pub chain: String,
    /// The first bad (or missing) record's sequence number.
    pub seq: u64,
    /// What is wrong.
    pub reason: &'static str,
}

async fn verify_all(pool: &Pool, expected: Option<&PublicKey>) -> Result<AuditReport, PgError> {
    let (_permit, conn) = pool.lease(OP_VERIFY).await?;
    let fail = |f: Fault| f.classify(OP_VERIFY);
    let mut report = AuditReport {
        records: 0,
        chains: 0,
        checkpoint: None,
        broken: None,
    };
    let checkpoint = read_last_checkpoint(pool, &conn.client)
        .await
        .map_err(fail)?;
    let mut anchors: HashMap<String, AuditHead> = HashMap::new();
    if let Some(cp) = &checkpoint {
        let broken = |reason| AuditBreak {
            chain: String::new(),
            seq: 0,
            reason,
        };
        if !cp.signature_is_valid() {
            report.broken = Some(broken("the last checkpoint's signature does not verify"));
        } else if expected.is_some_and(|k| *k != cp.public_key) {
            report.broken = Some(broken("the last checkpoint is signed by another key"));
        }
        anchors = cp.heads.iter().cloned().collect();
    }
    report.checkpoint = checkpoint;
    if report.broken.is_some() {
        pool.give_back(conn);
        return Ok(report);
    }
    let rows = pool
        .bounded(
            conn.client
                .query("SELECT DISTINCT chain FROM custody_audit", &[]),
        )
        .await
        .map_err(fail)?;
    let mut chains = Vec::with_capacity(rows.len());
    for row in &rows {
        let chain: String = row
            .try_get(0)
            .map_err(|_| fail(Fault::Row("a chain name is not text")))?;
        chains.push(chain);
    }
    chains.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    // A chain the checkpoint lists but the log has lost entirely.
    let mut missing: Vec<&String> = anchors
        .keys()
        .filter(|c| {
            chains
                .binary_search_by(|x| x.as_bytes().cmp(c.as_bytes()))
                .is_err()
        })
        .collect();
    missing.sort();
    if let Some(chain) = missing.first() {
        report.broken = Some(AuditBreak {
            chain: (*chain).clone(),
            seq: 1,
            reason: "a chain the last checkpoint lists is gone",
        });
        pool.give_back(conn);
        return Ok(report);
    }
    for chain in &chains {
        report.chains += 1;
        let (records, broken) =
            verify_chain(pool, &conn.client, chain, anchors.get(chain).copied())
                .await
                .map_err(fail)?;
        report.records += records;
        if let Some(reason) = broken {
            report.broken = Some(reason);
            break;
        }
    }
    pool.give_back(conn);
    Ok(report)
}

/// Checks one chain from its first record; returns how many records
/// verified and the break, if any.
async fn verify_chain(
    pool: &Pool,
    client: &Client,
    chain: &str,
    anchor: Option<AuditHead>,
) -> Result<(u64, Option<AuditBreak>), Fault> {
    let broken = |seq, reason| AuditBreak {
        chain: chain.to_owned(),
        seq,
        reason,
    };
    let mut verifier = match anchor {
        Some(a) => match ChainVerifier::anchored(a) {
            Ok(v) => v,
            Err(e) => return Ok((0, Some(broken(0, reason_of(&e))))),
        },
        None => ChainVerifier::new(),
    };
    let mut after: i64 = 0;
    loop {
        let rows = pool
            .bounded(client.query(
                "SELECT seq, hash, record, time_ms FROM custody_audit WHERE chain = $1 \
                 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&chain, &after, &VERIFY_PAGE],
            ))
            .await?;
        for row in &rows {
            let expected_seq = verifier.head().seq.saturating_add(1);
            let line: &str = row
                .try_get(2)
                .map_err(|_| Fault::Row("a record is not text"))?;
            let record = match verifier.push_line(line) {
                Ok(record) => record,
                Err(e) => {
                    return Ok((
                        verifier.head().seq,
                        Some(broken(expected_seq, reason_of(&e))),
                    ));
                }
            };
            if seq_at(row, 0)? != record.seq() || hash_at(row, 1)? != *record.hash() {
                return Ok((
                    verifier.head().seq - 1,
                    Some(broken(
                        record.seq(),
                        "the row's seq or hash column differs from its record",
                    )),
                ));
            }
            if u64::try_from(time_at(row, 3)?).ok() != Some(record.time_ms()) {
                return Ok((
                    verifier.head().seq - 1,
                    Some(broken(record.seq(), TIME_COLUMN_DIFFERS)),
                ));
            }
            if chain_of(record.event()) != chain {
                return Ok((
                    verifier.head().seq - 1,
                    Some(broken(
                        record.seq(),
                        "the record belongs to another chain (moved)",
                    )),
                ));
            }
            after = i64::try_from(record.seq()).map_err(|_| Fault::Row("seq past 2^63 - 1"))?;
        }
        if rows.len() < usize::try_from(VERIFY_PAGE).unwrap_or(usize::MAX) {
            break;
        }
    }
    let records = verifier.head().seq;
    match verifier.finish() {
        Ok(_) => Ok((records, None)),
        Err(e) => Ok((records, Some(broken(records + 1, reason_of(&e))))),
    }
}

fn reason_of(e: &Error) -> &'static str {
    match e {
        Error::AuditChainBroken { reason, .. } => reason,
        _ => "the chain does not verify",
    }
}

/// The last checkpoint and its heads, or `None` if none was taken.
async fn read_last_checkpoint(pool: &Pool, client: &Client) -> Result<Option<Checkpoint>, Fault> {
    let Some(row) = pool
        .bounded(client.query_opt(
            "SELECT id, time_ms, origin, public_key, signature FROM custody_audit_checkpoint \
             ORDER BY id DESC LIMIT 1",
            &[],
        ))
        .await?
    else {
        return Ok(None);
    };
    let id = seq_at(&row, 0)?;
    let time: i64 = row
        .try_get(1)
        .map_err(|_| Fault::Row("a checkpoint time is not a bigint"))?;
    let origin: String = row
        .try_get(2)
        .map_err(|_| Fault::Row("a checkpoint origin is not text"))?;
    let public_key: &[u8] = row
        .try_get(3)
        .map_err(|_| Fault::Row("a checkpoint key is not bytea"))?;
    let signature: &[u8] = row
        .try_get(4)
        .map_err(|_| Fault::Row("a checkpoint signature is not bytea"))?;
    let public_key = PublicKey::from_sec1_bytes(public_key)
        .map_err(|_| Fault::Row("a checkpoint key is not a point"))?;
    let signature = match signature {
        [compact @ .., parity] if compact.len() == 64 && *parity <= 1 => {
            let (r, s) = compact.split_at(32);
            RecoverableSignature::from_parts(
                r.try_into().map_err(|_| Fault::Row("r"))?,
                s.try_into().map_err(|_| Fault::Row("s"))?,
                *parity == 1,
            )
            .ok()
        }
        _ => None,
    };
    let id_param = i64::try_from(id).map_err(|_| Fault::Row("a checkpoint id past 2^63 - 1"))?;
    let rows = pool
        .bounded(client.query(
            "SELECT chain, seq, hash FROM custody_audit_checkpoint_head WHERE checkpoint = $1",
            &[&id_param],
        ))
        .await?;
    let heads = heads_of(&rows)?;
    Ok(Some(Checkpoint {
        id,
        time_ms: u64::try_from(time).map_err(|_| Fault::Row("a negative checkpoint time"))?,
        origin,
        heads,
        public_key,
        signature,
    }))
}

#[cfg(test)]
mod tests {
    use custody_core::{AuditOp, AuditOutcome};

    use super::*;

    #[test]
    fn a_chain_found_stale_is_read_before_each_append_until_found_unmoved() {
        let tip = |seq| ChainTip {
            head: AuditHead {
                seq,
                hash: [u8::try_from(seq).unwrap(); 32],
            },
            time_ms: seq,
        };
        let heads = Heads::default();
        // Unknown: read.
        assert!(matches!(heads.trusted("w"), Err(None)));
        heads.read("w", None, tip(1));
        assert!(heads.trusted("w").is_err(), "a read alone is not cached");
        // Written by this process: trusted.
        heads.set("w", tip(2));
        assert_eq!(heads.trusted("w"), Ok(tip(2)));
        // Found stale (another writer appended): read before every append,
        // even after this process writes again.
        heads.stale("w");
        let Err(guess) = heads.trusted("w") else {
            panic!("a stale guess is trusted");
        };
        heads.read("w", guess, tip(4));
        heads.set("w", tip(5));
        let Err(guess) = heads.trusted("w") else {
            panic!("a shared chain's guess is trusted");
        };
        // The other writer appended again: still shared.
        heads.read("w", guess, tip(6));
        heads.set("w", tip(7));
        let Err(guess) = heads.trusted("w") else {
            panic!("a shared chain's guess is trusted");
        };
        // Found where this process left it: trusted again.
        heads.read("w", guess, tip(7));
        assert_eq!(heads.trusted("w"), Ok(tip(7)));
        heads.set("w", tip(8));
        assert_eq!(heads.trusted("w"), Ok(tip(8)));
        // Other chains are their own.
        heads.stale("x");
        assert_eq!(heads.trusted("w"), Ok(tip(8)));
    }

    #[test]
    fn chains_are_named_by_wallet_then_key_then_public_key() {
        let event = AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success);
        assert_eq!(chain_of(&event), OPERATIONS_CHAIN);
        let keyed = event.clone().with_key("imported-1");
        assert_eq!(chain_of(&keyed), "key:imported-1");
        assert_eq!(
            chain_of(&keyed.clone().with_wallet("alice@example.com")),
            "wallet:alice@example.com"
        );
    }

    #[test]
    fn the_checkpoint_body_and_root_are_fixed_by_their_fields() {
        let head = |seq, byte| AuditHead {
            seq,
            hash: [byte; 32],
        };
        let cp = Checkpoint {
            id: 7,
            time_ms: 1_767_225_600_000,
            origin: "custody.example/prod".into(),
            heads: vec![
                ("wallet:a".into(), head(3, 1)),
                ("wallet:b".into(), head(2, 2)),
            ],
            public_key: PublicKey::from_sec1_bytes(
                &hex::decode("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
                    .unwrap(),
            )
            .unwrap(),
            signature: None,
        };
        assert_eq!(cp.records(), 5);
        let mut h = Sha256::new();
        h.update(b"custody/audit/heads/v1\0");
        for (chain, seq, byte) in [("wallet:a", 3u64, 1u8), ("wallet:b", 2, 2)] {
            h.update((chain.len() as u64).to_be_bytes());
            h.update(chain);
            h.update(seq.to_be_bytes());
            h.update([byte; 32]);
        }
        let root: [u8; 32] = h.finalize().into();
        assert_eq!(cp.root(), root);
        assert_eq!(
            cp.body(),
            format!(
                "custody/audit/checkpoint/v1\ncustody.example/prod\nid 7\ntime 1767225600000\nchains 2\nrecords 5\nroot {}\n",
                hex::encode(root)
            )
        );
        assert!(!cp.signature_is_valid(), "unsigned");
    }
}
