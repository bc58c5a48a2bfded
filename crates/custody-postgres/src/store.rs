//! [`PgStateStore`]: custody-core's [`StateStore`] in a PostgreSQL table,
//! shared by every signer replica that connects to it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use custody_core::{
    AuditEvent, AuditSink, CasOutcome, Error, MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES, Pending,
    RecordedSwaps, StateStore, Swap, Versioned, check_state_keys, check_swaps,
};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio_postgres::Row;
use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;

use crate::audit::{APPEND_ATTEMPTS, Heads, PgAuditLog, Sealed, chain_of, contended, read_head};
use crate::batch::{Batcher, Item, abandoned};
use crate::error::{Fault, PgError};
use crate::migrate;
use crate::options::PgOptions;
use crate::pool::{Conn, Pool, Sql};
use crate::read::{ReadItem, Reads};
use crate::{read, task};

const OP_CONNECT: &str = "connect";
const OP_GET: &str = "get";
const OP_CAS: &str = "compare-and-swap";

/// How often one call runs its statement when the server rolls it back
/// under contention (a serialization failure or deadlock, which CockroachDB
/// and YugabyteDB report; PostgreSQL at READ COMMITTED never does for these
/// statements). Such a statement had no effect, so running it again is safe.
const SERIALIZATION_ATTEMPTS: u32 = 3;

/// The [`StateStore`] in PostgreSQL (or an engine that speaks its protocol
/// and SQL: see the crate README), for many signer replicas sharing one TOTP
/// replay guard.
///
/// Records live in the table `custody_state` (`SPEC.md`); each operation is
/// one statement in its own transaction at the server's default isolation
/// (READ COMMITTED), and a compare-and-swap is one conditional `INSERT` or
/// `UPDATE`, so two replicas racing on a key cannot both succeed. When
/// [`StateStore::compare_and_swap`] returns [`CasOutcome::Swapped`], the
/// server has committed the write (durable as the server's
/// `synchronous_commit` makes commits).
///
/// # Runtime
///
/// Every database call is *spawned* onto a tokio runtime the store holds,
/// and the [`Pending`] it returns only awaits the task's join handle. So the
/// same store works `.await`ed in an async service (on this runtime or
/// another) and [`Pending::wait`]ed on a plain thread with no runtime (the
/// CLI); the I/O always runs on the runtime's workers. Dropping a `Pending`
/// early aborts its call. The runtime is the caller's
/// ([`PgOptions::with_runtime`]) or a small one the store owns (two worker
/// threads, shut down without blocking when the last clone of the store is
/// dropped). Do not `Pending::wait` on a thread that drives the runtime
/// itself (a current-thread runtime's only thread): it would wait for
/// itself.
///
/// # Errors
///
/// Keys and values out of range are refused with
/// [`Error::InvalidStateRecord`] before any I/O. Database failures are
/// [`Error::Backend`] carrying a [`PgError`] (kind `unavailable`,
/// `access-denied`, `bad-input`, `malformed` or `backend`). Versions are
/// `bigint`: a record cannot pass version 2^63 − 1 (a swap from there is
/// [`Error::InvalidStateRecord`]).
///
/// `Debug` shows where the store connects (hosts, ports, database, role),
/// never the password.
#[derive(Clone)]
pub struct PgStateStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Arc<Pool>,
    /// The audit chain heads this process last saw (shared by every
    /// [`PgAuditLog`] of this store).
    heads: Arc<Heads>,
    /// Recorded commits waiting for a batch (`None`: not batched).
    batcher: Option<Arc<Batcher>>,
    /// Reads waiting for a batch (`None`: not batched).
    reads: Option<Arc<Reads>>,
    tls: bool,
    /// The runtime this store built, if it built one.
    owned: Option<Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // `Runtime`'s own drop blocks until its tasks end and panics inside
        // an async context; this never blocks.
        if let Some(rt) = self.owned.take() {
            rt.shutdown_background();
        }
    }
}

impl PgStateStore {
    /// Connects to the database `config` names (hosts, port, database,
    /// role, password, `sslmode`, ...) with `options`, and opens the first
    /// pooled connection, so that a wrong address or password fails here.
    /// The answer may be awaited or waited on.
    ///
    /// The password is the caller's to put in `config` (the library reads
    /// no environment). Without an `application_name` in `config`, the
    /// store's connections are named `custody-postgres` (as
    /// `pg_stat_activity` shows them).
    ///
    /// Call [`PgStateStore::migrate`] (with a role allowed to create tables)
    /// before the first use of a new database.
    ///
    /// # Errors
    /// [`Error::Io`] if the store's own runtime cannot be started;
    /// [`Error::Backend`] with a [`PgError`]: `bad-input` for a pool size
    /// of 0, `sslmode=require` without TLS, `sslmode=disable` with TLS, or a
    /// configuration without a host; `unavailable` if the server cannot be
    /// reached in time; `access-denied` if it refuses the credentials.
    pub fn connect(
        mut config: tokio_postgres::Config,
        options: PgOptions,
    ) -> Pending<'static, Result<Self, Error>> {
        if options.pool_size == 0 {
            return Pending::ready(Err(bad_input("the pool size must be at least 1")));
        }
        let tls = options.has_tls();
        match (tls, config.get_ssl_mode()) {
            (true, SslMode::Disable) => {
                return Pending::ready(Err(bad_input(
                    "TLS options were given but the configuration says sslmode=disable",
                )));
            }
            (true, _) => {
                config.ssl_mode(SslMode::Require);
            }
            (false, SslMode::Require) => {
                return Pending::ready(Err(bad_input(
                    "sslmode=require needs TLS: build custody-postgres with the feature `tls` and give PgOptions::with_tls",
                )));
            }
            (false, _) => {}
        }
        if config.get_application_name().is_none() {
            config.application_name("custody-postgres");
        }
        let (handle, owned) = match options.runtime.clone() {
            Some(handle) => (handle, None),
            None => match own_runtime() {
                Ok(rt) => (rt.handle().clone(), Some(rt)),
                Err(e) => return Pending::ready(Err(Error::Io(e))),
            },
        };
        let pool = Arc::new(Pool::new(config, &options, handle));
        // Built before the first connection, so that a failure drops the
        // runtime through `Inner`'s non-blocking drop.
        let store = Self {
            inner: Arc::new(Inner {
                pool: Arc::clone(&pool),
                heads: Arc::default(),
                batcher: (options.commit_batch > 1)
                    .then(|| Arc::new(Batcher::new(options.commit_batch, options.committers))),
                reads: (options.read_batch > 1)
                    .then(|| Arc::new(Reads::new(options.read_batch, options.readers))),
                tls,
                owned,
            }),
        };
        let opening = task::spawn(store.inner.pool.handle(), OP_CONNECT, async move {
            let conn = pool.open().await.map_err(|f| f.classify(OP_CONNECT))?;
            pool.give_back(conn);
            Ok(())
        });
        Pending::later(async move {
            opening.await?;
            Ok(store)
        })
    }

    /// Creates or upgrades the schema to [`crate::SCHEMA_VERSION`] and
    /// returns the version the database is at (a newer schema is left as
    /// it is). Idempotent; each run is one transaction; safe to run from
    /// many replicas at once (no advisory lock: a migrator that loses a race
    /// rolls back and finds the winner's work). Needs a role that may
    /// create tables in the schema `search_path` names; a signer's role
    /// needs no more than SELECT, INSERT and UPDATE on `custody_state`.
    ///
    /// # Errors
    /// [`Error::Backend`] with a [`PgError`]: `access-denied` without the
    /// privilege to create tables, `unavailable`, `backend`.
    pub fn migrate(&self) -> Pending<'static, Result<u32, Error>> {
        let pool = Arc::clone(&self.inner.pool);
        Pending::later(task::spawn(
            self.inner.pool.handle(),
            "migrate",
            async move { migrate::migrate(&pool).await.map_err(Error::backend) },
        ))
    }
}

impl PgStateStore {
    /// Creates the schema on first use: if the tables of this version are
    /// all there (checked with a `SELECT` a signer's role may run), does
    /// nothing; else runs [`PgStateStore::migrate`] (which needs a role
    /// that may create tables). Returns whether it migrated.
    ///
    /// # Errors
    /// As [`PgStateStore::migrate`]; `access-denied` if a table is
    /// missing and the role may not create it.
    pub fn ensure_schema(&self) -> Pending<'static, Result<bool, Error>> {
        let pool = Arc::clone(&self.inner.pool);
        let store = self.clone();
        Pending::later(async move {
            let present = task::spawn(pool.handle(), "migrate", {
                let pool = Arc::clone(&pool);
                async move { tables_present(&pool).await.map_err(Error::backend) }
            })
            .await?;
            if present {
                return Ok(false);
            }
            store.migrate().await?;
            Ok(true)
        })
    }

    /// Group commit so far ([`PgOptions::with_commit_batch`]): the batches
    /// this store's committers have taken and the recorded commits they
    /// held (a lone commit is a batch of one); `(0, 0)` with batching off.
    /// Their ratio is the commits per transaction.
    #[must_use]
    pub fn commit_batches(&self) -> (u64, u64) {
        self.inner.batcher.as_ref().map_or((0, 0), |b| b.stats())
    }

    /// Batched reads so far ([`PgOptions::with_read_batch`]): the batches
    /// this store's readers have taken and the reads
    /// ([`StateStore::get`], [`StateStore::get_many`]) they held (a lone
    /// read is a batch of one); `(0, 0)` with batching off. Their ratio is
    /// the reads per statement.
    #[must_use]
    pub fn read_batches(&self) -> (u64, u64) {
        self.inner.reads.as_ref().map_or((0, 0), |r| r.stats())
    }

    /// Queues the read of `keys` for the store's readers (checked keys).
    fn read_batched(
        &self,
        reads: &Arc<Reads>,
        keys: Vec<Box<[u8]>>,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, Error>> + Send + 'static {
        let (reads, pool) = (Arc::clone(reads), Arc::clone(&self.inner.pool));
        async move {
            let (reply, answer) = oneshot::channel();
            reads.submit(&pool, ReadItem { keys, reply });
            answer.await.unwrap_or_else(|_| Err(read::abandoned()))
        }
    }

    pub(crate) fn pool(&self) -> &Arc<Pool> {
        &self.inner.pool
    }

    pub(crate) fn heads(&self) -> &Arc<Heads> {
        &self.inner.heads
    }

    /// Whether `other` is this store or a clone of it (one pool).
    pub(crate) fn same_pool(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner.pool, &other.inner.pool)
    }

    /// The PostgreSQL audit log `audit` is, if this store keeps it.
    fn own_log<'a>(&self, audit: &'a dyn AuditSink) -> Option<&'a PgAuditLog> {
        audit
            .as_any()
            .and_then(|any| any.downcast_ref::<PgAuditLog>())
            .filter(|log| log.is_kept_by(self))
    }
}

/// Whether every table of [`crate::SCHEMA_VERSION`] exists (`42P01`:
/// one does not).
async fn tables_present(pool: &Pool) -> Result<bool, PgError> {
    const OP: &str = "migrate";
    let (_permit, conn) = pool.lease(OP).await?;
    let probe = conn.client.batch_execute(
        "SELECT 1 FROM custody_state LIMIT 0; SELECT 1 FROM custody_audit LIMIT 0; \
         SELECT 1 FROM custody_audit_chain LIMIT 0; SELECT 1 FROM custody_audit_checkpoint LIMIT 0; \
         SELECT 1 FROM custody_audit_checkpoint_head LIMIT 0",
    );
    match pool.bounded(probe).await {
        Ok(()) => {
            pool.give_back(conn);
            Ok(true)
        }
        Err(f) if f.sqlstate() == Some("42P01") => Ok(false),
        Err(f) => Err(f.classify(OP)),
    }
}

fn bad_input(reason: &'static str) -> Error {
    Error::backend(PgError::bad_input(OP_CONNECT, reason))
}

fn own_runtime() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("custody-postgres")
        .enable_all()
        .build()
}

impl fmt::Debug for PgStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = self.inner.pool.config();
        f.debug_struct("PgStateStore")
            .field("hosts", &config.get_hosts())
            .field("ports", &config.get_ports())
            .field("dbname", &config.get_dbname())
            .field("user", &config.get_user())
            .field("pool_size", &self.inner.pool.size())
            .field("tls", &self.inner.tls)
            .field("owns_runtime", &self.inner.owned.is_some())
            .finish_non_exhaustive()
    }
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

impl StateStore for PgStateStore {
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Result<Option<Versioned>, Error>> {
        if let Err(e) = check_key(key) {
            return Pending::ready(Err(e));
        }
        let key: Box<[u8]> = key.as_bytes().into();
        if let Some(reads) = &self.inner.reads {
            let read = self.read_batched(reads, vec![key]);
            return Pending::later(async move {
                let mut found = read.await?;
                match (found.pop(), found.is_empty()) {
                    (Some(record), true) => Ok(record),
                    _ => Err(Error::backend(PgError::backend(
                        OP_GET,
                        "a batched read answered another number of records than keys",
                    ))),
                }
            });
        }
        let pool = Arc::clone(&self.inner.pool);
        Pending::later(task::spawn(self.inner.pool.handle(), OP_GET, async move {
            get(&pool, &key).await.map_err(Error::backend)
        }))
    }

    /// One statement, `WHERE key = ANY($1)`: one round trip for all; with
    /// read batching ([`PgOptions::with_read_batch`]) the reads of other
    /// callers waiting at the same moment share it.
    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> Pending<'a, Result<Vec<Option<Versioned>>, Error>> {
        if let Err(e) = check_state_keys(keys) {
            return Pending::ready(Err(e));
        }
        let keys: Vec<Box<[u8]>> = keys.iter().map(|k| k.as_bytes().into()).collect();
        if let Some(reads) = &self.inner.reads {
            return Pending::later(self.read_batched(reads, keys));
        }
        let pool = Arc::clone(&self.inner.pool);
        Pending::later(task::spawn(self.inner.pool.handle(), OP_GET, async move {
            get_many(&pool, &keys).await.map_err(Error::backend)
        }))
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
    ) -> Pending<'a, Result<CasOutcome, Error>> {
        if let Err(e) = check_key(key).and_then(|()| check_value(value)) {
            return Pending::ready(Err(e));
        }
        let pool = Arc::clone(&self.inner.pool);
        let key: Box<[u8]> = key.as_bytes().into();
        let value: Box<[u8]> = value.into();
        Pending::later(task::spawn(self.inner.pool.handle(), OP_CAS, async move {
            compare_and_swap(&pool, &key, expected, &value).await
        }))
    }

    /// `true` for a [`PgAuditLog`] of this store ([`PgStateStore::audit_log`]).
    fn records_into(&self, audit: &dyn AuditSink) -> bool {
        self.own_log(audit).is_some()
    }

    /// One statement (one implicit transaction, one round trip): the
    /// conditional `INSERT`s and `UPDATE`s of the records and the audit
    /// record's insert as data-modifying `WITH` queries that do all or
    /// nothing (`SPEC.md`). A conflict writes nothing; a connection lost
    /// before the commit is acknowledged leaves nothing.
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
        if let Err(e) = check_swaps(swaps) {
            return Pending::ready(Err(e));
        }
        let pool = Arc::clone(&self.inner.pool);
        let heads = Arc::clone(log.heads());
        let clock = log.clock();
        let swaps: Vec<OwnedSwap> = swaps.iter().map(OwnedSwap::from).collect();
        // Versions the `bigint` column holds (all but the last) are
        // batched; the rest take the lone path, which answers them.
        let expected: Option<Vec<Option<i64>>> = swaps
            .iter()
            .map(|s| match s.expected {
                None => Some(None),
                Some(v) => i64::try_from(v)
                    .ok()
                    .filter(|v| *v < i64::MAX || s.value.is_none())
                    .map(Some),
            })
            .collect();
        match (&self.inner.batcher, expected) {
            (Some(batcher), Some(expected)) => {
                let batcher = Arc::clone(batcher);
                Pending::later(async move {
                    let (reply, answer) = oneshot::channel();
                    let chain = chain_of(&event);
                    batcher.submit(
                        &pool,
                        &heads,
                        Item {
                            swaps,
                            expected,
                            event,
                            chain,
                            clock,
                            reply,
                        },
                    );
                    answer.await.unwrap_or_else(|_| Err(abandoned()))
                })
            }
            _ => Pending::later(task::spawn(self.inner.pool.handle(), OP_CAS, async move {
                compare_and_swap_all_recorded(&pool, &swaps, &event, &heads, clock).await
            })),
        }
    }
}

/// A [`Swap`] the store's task owns.
pub(crate) struct OwnedSwap {
    pub(crate) key: Box<[u8]>,
    pub(crate) expected: Option<u64>,
    /// `None`: a check ([`Swap::unchanged`]).
    pub(crate) value: Option<Box<[u8]>>,
}

impl From<&Swap<'_>> for OwnedSwap {
    fn from(swap: &Swap<'_>) -> Self {
        Self {
            key: swap.key.as_bytes().into(),
            expected: swap.expected,
            value: swap.value.map(Into::into),
        }
    }
}

impl OwnedSwap {
    /// The version the record has after the commit (as
    /// [`Swap::version_after`]), given the expected version as the column
    /// holds it.
    pub(crate) fn version_after(&self, expected: Option<i64>) -> u64 {
        match (&self.value, expected) {
            (_, None) => 1,
            (Some(_), Some(v)) => v.unsigned_abs() + 1,
            (None, Some(v)) => v.unsigned_abs(),
        }
    }
}

/// The statement that commits `swaps` (their expected versions as the
/// column holds them) with an audit record: a lone create or swap has a
/// lean statement of its own, and so does a swap followed by one check
/// (a gated signature decided on cached records:
/// [`Sql::SwapCheckedRecorded`]); any other set takes the one that locks
/// every row first ([`Sql::SwapAllRecorded`]). Either way a check holds at
/// the commit (its row is locked).
pub(crate) fn recorded_sql(swaps: &[OwnedSwap], expected: &[Option<i64>]) -> Sql {
    match (swaps, expected) {
        ([one], [None]) if one.value.is_some() => Sql::CreateRecorded,
        ([one], [Some(_)]) if one.value.is_some() => Sql::SwapRecorded,
        ([one, check], [Some(_), Some(_)]) if one.value.is_some() && check.value.is_none() => {
            Sql::SwapCheckedRecorded
        }
        _ => Sql::SwapAllRecorded,
    }
}

/// The version a swap expects, as the `bigint` column holds it; or, for a
/// version the column cannot hold, the conflict to answer at once (with
/// the current record).
async fn expected_param(
    pool: &Pool,
    key: &[u8],
    expected: Option<u64>,
    writes: bool,
) -> Result<Result<Option<i64>, Option<Versioned>>, Error> {
    // A version the `bigint` column cannot reach again after a swap: no
    // record can be at a version past i64::MAX, and a record at i64::MAX
    // cannot be swapped (as the memory store refuses a swap past u64::MAX;
    // a check, which writes nothing, can hold there).
    match expected {
        None => Ok(Ok(None)),
        Some(v) => match i64::try_from(v) {
            Ok(v) if v < i64::MAX || !writes => Ok(Ok(Some(v))),
            _ => {
                let current = get(pool, key).await.map_err(Error::backend)?;
                if current.as_ref().map(|c| c.version) == Some(v) {
                    return Err(Error::InvalidStateRecord("record version would overflow"));
                }
                Ok(Err(current))
            }
        },
    }
}

pub(crate) async fn compare_and_swap_all_recorded(
    pool: &Pool,
    swaps: &[OwnedSwap],
    event: &AuditEvent,
    heads: &Heads,
    clock: fn() -> u64,
) -> Result<RecordedSwaps, Error> {
    let mut expected = Vec::with_capacity(swaps.len());
    for (index, swap) in swaps.iter().enumerate() {
        match expected_param(pool, &swap.key, swap.expected, swap.value.is_some()).await? {
            Ok(e) => expected.push(e),
            Err(current) => return Ok(RecordedSwaps::Conflict { index, current }),
        }
    }
    // The versions a commit writes: checked against the answer.
    let versions: Vec<u64> = swaps
        .iter()
        .zip(&expected)
        .map(|(s, e)| s.version_after(*e))
        .collect();
    let fail = |f: Fault| Error::backend(f.classify(OP_CAS));
    let (_permit, mut conn) = pool.lease(OP_CAS).await.map_err(Error::backend)?;
    // One swap: the statement without the lock step (one conditional
    // write is atomic by itself).
    let sql = recorded_sql(swaps, &expected);
    let write = conn.prepared(pool, sql).await.map_err(fail)?;
    let head_sql = conn.prepared(pool, Sql::AuditHead).await.map_err(fail)?;
    let keys: Vec<&[u8]> = swaps.iter().map(|s| &*s.key).collect();
    let values: Vec<Option<&[u8]>> = swaps.iter().map(|s| s.value.as_deref()).collect();
    let chain = chain_of(event);
    let mut head = heads
        .head(pool, &conn.client, &head_sql, &chain)
        .await
        .map_err(fail)?;
    let mut serialization_failures = 0;
    for _ in 0..APPEND_ATTEMPTS {
        let sealed = Sealed::new(&chain, &head, clock(), event)?;
        let (hash, prev) = (sealed.hash(), sealed.prev());
        // One statement: the swaps and the record, all or nothing. The
        // record's columns come first, as in every audit write.
        let record: [&(dyn ToSql + Sync); 5] =
            [&sealed.chain, &sealed.seq, &hash, &sealed.line, &prev];
        // The record's time: every statement's last parameter.
        let time: &(dyn ToSql + Sync) = &sealed.time_ms;
        let params: Vec<&(dyn ToSql + Sync)> = match (sql, expected.first()) {
            (Sql::CreateRecorded, _) => [&record[..], &[&keys[0], &values[0], time]].concat(),
            (Sql::SwapRecorded, Some(v)) => {
                [&record[..], &[&keys[0], &values[0], v, time]].concat()
            }
            (Sql::SwapCheckedRecorded, Some(v)) => [
                &record[..],
                &[&keys[0], &values[0], v, time, &keys[1], &expected[1]],
            ]
            .concat(),
            _ => [&record[..], &[&keys, &expected, &values, time]].concat(),
        };
        let row = pool.bounded(conn.client.query_opt(&write, &params)).await;
        match row {
            Ok(Some(row)) => {
                let answer: Option<i64> = row
                    .try_get(0)
                    .map_err(|_| fail(Fault::Row("the answer is not a bigint")))?;
                let Some(answer) = answer else {
                    // A record was not at its expected version: nothing
                    // was written.
                    let current = read_many(pool, &mut conn, &swaps_keys(swaps))
                        .await
                        .map_err(fail)?;
                    let conflict = current
                        .into_iter()
                        .zip(swaps)
                        .enumerate()
                        .find(|(_, (c, s))| c.as_ref().map(|c| c.version) != s.expected);
                    if let Some((index, (current, _))) = conflict {
                        pool.give_back(conn);
                        return Ok(RecordedSwaps::Conflict { index, current });
                    }
                    // Moved to the expected versions since: run it again.
                    continue;
                };
                let expected_answer = match sql {
                    Sql::SwapAllRecorded => i64::try_from(swaps.len()).ok(),
                    _ => i64::try_from(versions[0]).ok(),
                };
                if Some(answer) != expected_answer {
                    return Err(fail(Fault::Row(
                        "a recorded swap's answer is not the versions or count expected",
                    )));
                }
                heads.set(&chain, sealed.tip());
                pool.give_back(conn);
                return Ok(RecordedSwaps::Swapped {
                    versions,
                    head: sealed.head(),
                });
            }
            Ok(None) => return Err(fail(Fault::Row("the recorded swap returned no row"))),
            // The record's sequence number was taken, or the cached head
            // was stale, or a key was created meanwhile: the statement
            // failed whole. Re-read the head.
            Err(f) if f.sqlstate() == Some("22012") => {
                heads.stale(&chain);
                head = read_head(pool, &conn.client, &head_sql, &chain)
                    .await
                    .map_err(fail)?;
            }
            Err(f)
                if f.is_serialization_failure()
                    && serialization_failures + 1 < SERIALIZATION_ATTEMPTS =>
            {
                serialization_failures += 1;
                back_off(serialization_failures).await;
            }
            // `conn` is dropped, hence closed, never reused.
            Err(f) => return Err(fail(f)),
        }
    }
    Err(contended(OP_CAS))
}

pub(crate) fn swaps_keys(swaps: &[OwnedSwap]) -> Vec<Box<[u8]>> {
    swaps.iter().map(|s| s.key.clone()).collect()
}

/// Runs the read `$read` (an expression over the leased connection
/// `$conn`) again on a serialization failure (bounded), and gives the
/// connection back after a success. (A macro, not a function over an async
/// closure: the futures it builds must be `Send` for any lifetime.)
macro_rules! reading {
    ($pool:expr, |$conn:ident| $read:expr) => {{
        let (_permit, mut $conn) = $pool.lease(OP_GET).await?;
        let mut attempt = 1;
        loop {
            match $read.await {
                Ok(found) => {
                    $pool.give_back($conn);
                    return Ok(found);
                }
                Err(f) if f.is_serialization_failure() && attempt < SERIALIZATION_ATTEMPTS => {
                    back_off(attempt).await;
                    attempt += 1;
                }
                // `conn` is dropped, hence closed: never reused after a failure.
                Err(f) => return Err(f.classify(OP_GET)),
            }
        }
    }};
}

async fn get(pool: &Pool, key: &[u8]) -> Result<Option<Versioned>, PgError> {
    reading!(pool, |conn| read(pool, &mut conn, key))
}

pub(crate) async fn get_many(
    pool: &Pool,
    keys: &[Box<[u8]>],
) -> Result<Vec<Option<Versioned>>, PgError> {
    reading!(pool, |conn| read_many(pool, &mut conn, keys))
}

async fn compare_and_swap(
    pool: &Pool,
    key: &[u8],
    expected: Option<u64>,
    value: &[u8],
) -> Result<CasOutcome, Error> {
    let expected = match expected_param(pool, key, expected, true).await? {
        Ok(expected) => expected,
        Err(current) => return Ok(CasOutcome::Conflict { current }),
    };
    let (_permit, mut conn) = pool.lease(OP_CAS).await.map_err(Error::backend)?;
    let mut attempt = 1;
    loop {
        let outcome = match expected {
            None => create(pool, &mut conn, key, value).await,
            Some(v) => swap(pool, &mut conn, key, v, value).await,
        };
        match outcome {
            Ok(outcome) => {
                pool.give_back(conn);
                return Ok(outcome);
            }
            Err(f) if f.is_serialization_failure() && attempt < SERIALIZATION_ATTEMPTS => {
                back_off(attempt).await;
                attempt += 1;
            }
            Err(f) => return Err(Error::backend(f.classify(OP_CAS))),
        }
    }
}

async fn back_off(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
}

/// `SELECT version, value ... WHERE key = $1`.
async fn read(pool: &Pool, conn: &mut Conn, key: &[u8]) -> Result<Option<Versioned>, Fault> {
    let statement = conn.prepared(pool, Sql::Get).await?;
    let row = pool
        .bounded(conn.client.query_opt(&statement, &[&key]))
        .await?;
    row.as_ref().map(record).transpose()
}

/// `SELECT key, version, value ... WHERE key = ANY($1)`: the records of
/// `keys`, in their order.
pub(crate) async fn read_many(
    pool: &Pool,
    conn: &mut Conn,
    keys: &[Box<[u8]>],
) -> Result<Vec<Option<Versioned>>, Fault> {
    let statement = conn.prepared(pool, Sql::GetMany).await?;
    let params: Vec<&[u8]> = keys.iter().map(|k| &**k).collect();
    let rows = pool
        .bounded(conn.client.query(&statement, &[&params]))
        .await?;
    let mut records = vec![None; keys.len()];
    for row in &rows {
        let key: &[u8] = row
            .try_get(0)
            .map_err(|_| Fault::Row("the key is not a non-NULL bytea"))?;
        let found = record_at(row, 1)?;
        let mut asked = false;
        for (slot, _) in records
            .iter_mut()
            .zip(keys)
            .filter(|(_, k)| k.as_ref() == key)
        {
            if slot.is_some() {
                return Err(Fault::Row("two rows for one key"));
            }
            *slot = Some(found.clone());
            asked = true;
        }
        if !asked {
            return Err(Fault::Row("a row for a key that was not asked for"));
        }
    }
    Ok(records)
}

/// `INSERT ... ON CONFLICT (key) DO NOTHING RETURNING version`; no row
/// back means the key exists: the current record is read in a new
/// statement.
async fn create(
    pool: &Pool,
    conn: &mut Conn,
    key: &[u8],
    value: &[u8],
) -> Result<CasOutcome, Fault> {
    let statement = conn.prepared(pool, Sql::Create).await?;
    let row = pool
        .bounded(conn.client.query_opt(&statement, &[&key, &value]))
        .await?;
    match row {
        Some(row) => {
            let version = returned_version(&row)?;
            if version != 1 {
                return Err(Fault::Row("a created record's version is not 1"));
            }
            Ok(CasOutcome::Swapped { version })
        }
        None => Ok(CasOutcome::Conflict {
            current: read(pool, conn, key).await?,
        }),
    }
}

/// `UPDATE ... WHERE key = $1 AND version = $2 RETURNING version`; no row
/// back means the record is absent or at another version: it is read in a
/// new statement.
async fn swap(
    pool: &Pool,
    conn: &mut Conn,
    key: &[u8],
    expected: i64,
    value: &[u8],
) -> Result<CasOutcome, Fault> {
    let statement = conn.prepared(pool, Sql::Swap).await?;
    let row = pool
        .bounded(
            conn.client
                .query_opt(&statement, &[&key, &expected, &value]),
        )
        .await?;
    match row {
        Some(row) => {
            let version = returned_version(&row)?;
            if i64::try_from(version).ok() != expected.checked_add(1) {
                return Err(Fault::Row(
                    "a swapped record's version is not the expected one plus 1",
                ));
            }
            Ok(CasOutcome::Swapped { version })
        }
        None => Ok(CasOutcome::Conflict {
            current: read(pool, conn, key).await?,
        }),
    }
}

/// A `(version, value)` row, checked: rows are untrusted.
fn record(row: &Row) -> Result<Versioned, Fault> {
    record_at(row, 0)
}

/// The `(version, value)` columns of `row` from `column` on, checked.
fn record_at(row: &Row, column: usize) -> Result<Versioned, Fault> {
    let version = version_at(row, column)?;
    let value: &[u8] = row
        .try_get(column + 1)
        .map_err(|_| Fault::Row("the value is not a non-NULL bytea"))?;
    if value.len() > MAX_STATE_VALUE_BYTES {
        return Err(Fault::Row("the value is over 65536 bytes"));
    }
    Ok(Versioned {
        version,
        value: Arc::from(value),
    })
}

fn returned_version(row: &Row) -> Result<u64, Fault> {
    version_at(row, 0)
}

fn version_at(row: &Row, column: usize) -> Result<u64, Fault> {
    let version: i64 = row
        .try_get(column)
        .map_err(|_| Fault::Row("the version is not a non-NULL bigint"))?;
    u64::try_from(version)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or(Fault::Row("the version is below 1"))
}
