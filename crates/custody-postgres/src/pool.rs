//! The connection pool: at most `n` connections, each a
//! [`tokio_postgres::Client`] whose connection task runs on the store's
//! runtime, with its prepared statements.
//!
//! A call takes a permit (waiting at most the acquire timeout), then an idle
//! connection, or opens one (at most the connect timeout). A connection goes
//! back to the idle list only after a call that succeeded on it; after any
//! failure (an error, a timeout, the call's task aborted) it is dropped,
//! which closes it, and the next call opens a fresh one. So a connection the
//! server terminated, or one left mid-statement by a timeout, is never
//! reused.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, Statement};

use crate::error::{Fault, PgError};
use crate::options::PgOptions;

/// The statements a signer runs, each one statement in its own implicit
/// transaction (READ COMMITTED, the default), prepared once per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sql {
    /// Reads a record.
    Get,
    /// Reads the records of several keys.
    GetMany,
    /// Creates a record at version 1 unless one exists.
    Create,
    /// Replaces a record's value if its version is the expected one.
    Swap,
    /// The last record of an audit chain.
    AuditHead,
    /// Appends an audit record if it is the next of its chain and chained
    /// to the record before it (and lists a new chain).
    AuditAppend,
    /// [`Sql::Create`] and an audit record's append, in one statement that
    /// does both or neither.
    CreateRecorded,
    /// [`Sql::Swap`] and an audit record's append, in one statement that
    /// does both or neither.
    SwapRecorded,
    /// Several creates or swaps and an audit record's append, in one
    /// statement that does all or nothing.
    SwapAllRecorded,
    /// [`Sql::SwapRecorded`] if another record is still at a version (a
    /// check): a gated signature decided on cached records.
    SwapCheckedRecorded,
}

impl Sql {
    const ALL: usize = 10;

    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::Get => "SELECT version, value FROM custody_state WHERE key = $1",
            Self::GetMany => "SELECT key, version, value FROM custody_state WHERE key = ANY($1)",
            Self::Create => {
                "INSERT INTO custody_state (key, version, value) VALUES ($1, 1, $2) \
                 ON CONFLICT (key) DO NOTHING RETURNING version"
            }
            Self::Swap => {
                "UPDATE custody_state SET value = $3, version = version + 1 \
                 WHERE key = $1 AND version = $2 RETURNING version"
            }
            Self::AuditHead => {
                "SELECT seq, hash, record FROM custody_audit WHERE chain = $1 ORDER BY seq DESC LIMIT 1"
            }
            Self::AuditAppend => AUDIT_APPEND,
            Self::CreateRecorded => CREATE_RECORDED,
            Self::SwapRecorded => SWAP_RECORDED,
            Self::SwapAllRecorded => SWAP_ALL_RECORDED,
            Self::SwapCheckedRecorded => SWAP_CHECKED_RECORDED,
        }
    }

    /// The parameter types, given rather than inferred, so that every
    /// engine reads the parameters the same way.
    fn types(self) -> &'static [Type] {
        match self {
            Self::Get => &[Type::BYTEA],
            Self::GetMany => &[Type::BYTEA_ARRAY],
            Self::Create => &[Type::BYTEA, Type::BYTEA],
            Self::Swap => &[Type::BYTEA, Type::INT8, Type::BYTEA],
            Self::AuditHead => &[Type::TEXT],
            Self::AuditAppend => &[
                Type::TEXT,
                Type::INT8,
                Type::BYTEA,
                Type::TEXT,
                Type::BYTEA,
                Type::INT8,
            ],
            Self::CreateRecorded => &[
                Type::TEXT,
                Type::INT8,
                Type::BYTEA,
                Type::TEXT,
                Type::BYTEA,
                Type::BYTEA,
                Type::BYTEA,
                Type::INT8,
            ],
            Self::SwapRecorded => &[
                Type::TEXT,
                Type::INT8,
                Type::BYTEA,
                Type::TEXT,
                Type::BYTEA,
                Type::BYTEA,
                Type::BYTEA,
                Type::INT8,
                Type::INT8,
            ],
            Self::SwapAllRecorded => &[
                Type::TEXT,
                Type::INT8,
                Type::BYTEA,
                Type::TEXT,
                Type::BYTEA,
                Type::BYTEA_ARRAY,
                Type::INT8_ARRAY,
                Type::BYTEA_ARRAY,
                Type::INT8,
            ],
            Self::SwapCheckedRecorded => &[
                Type::TEXT,
                Type::INT8,
                Type::BYTEA,
                Type::TEXT,
                Type::BYTEA,
                Type::BYTEA,
                Type::BYTEA,
                Type::INT8,
                Type::INT8,
                Type::BYTEA,
                Type::INT8,
            ],
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Get => 0,
            Self::Create => 1,
            Self::Swap => 2,
            Self::AuditHead => 3,
            Self::AuditAppend => 4,
            Self::CreateRecorded => 5,
            Self::SwapRecorded => 6,
            Self::GetMany => 7,
            Self::SwapAllRecorded => 8,
            Self::SwapCheckedRecorded => 9,
        }
    }
}

/// The `appended` and `listed` queries every audit write ends with (`$1`
/// chain, `$2` seq, `$3` hash, `$4` record, `$5` prev, and the record's
/// time, the parameter the second argument names: each statement's last),
/// inserting `FROM` what the first argument names (nothing, or the state
/// write's result): the
/// record goes in only as the next of its chain (`$2`) *and* over the
/// record whose hash it names (`$5`), so a writer with a stale idea of the
/// head cannot fork the chain, whatever it cached; a chain's first record
/// also lists the chain.
macro_rules! append_queries {
    ($from:literal, $time:literal) => {
        concat!(
            "appended AS (
  INSERT INTO custody_audit (chain, seq, hash, record, time_ms)
  SELECT $1, $2, $3, $4, ",
            $time,
            $from,
            "
  WHERE ($2 = 1 AND $5 = '\\x0000000000000000000000000000000000000000000000000000000000000000'::bytea)
     OR EXISTS (SELECT 1 FROM custody_audit WHERE chain = $1 AND seq = $2 - 1 AND hash = $5)
  ON CONFLICT (chain, seq) DO NOTHING
  RETURNING chain, seq
), listed AS (
  INSERT INTO custody_audit_chain (chain) SELECT chain FROM appended WHERE seq = 1
  ON CONFLICT (chain) DO NOTHING
)"
        )
    };
}

/// What a recorded state write answers: the new version (`NULL`: a
/// conflict, nothing written), and a column that divides by zero when the
/// row was written but the record could not be (its sequence number taken,
/// its link stale), which fails the whole statement (`22012`: nothing
/// written, re-read the head and try again). The divisor is a sub-query,
/// never a constant, so the planner cannot fold it.
macro_rules! recorded_answer {
    () => {
        "
SELECT (SELECT version FROM swapped),
       CASE WHEN EXISTS (SELECT 1 FROM swapped)
            THEN 1 / (SELECT count(*)::integer FROM appended) ELSE 0 END"
    };
}

/// An audit record's append (`$1`..`$5`, `$6` its time). No row back: the sequence number
/// was taken or the link is stale (re-read the head).
const AUDIT_APPEND: &str = concat!(
    "WITH ",
    append_queries!("", "$6"),
    "\nSELECT seq FROM appended"
);

/// A record created (`$6` key, `$7` value) and an audit record appended
/// (`$1`..`$5`, `$8` its time) in one statement: one implicit transaction, one round trip,
/// one commit. The record is inserted only from the created row (`FROM
/// swapped`), so a conflict writes neither.
const CREATE_RECORDED: &str = concat!(
    "WITH swapped AS (
  INSERT INTO custody_state (key, version, value) VALUES ($6, 1, $7)
  ON CONFLICT (key) DO NOTHING
  RETURNING version
), ",
    append_queries!(" FROM swapped", "$8"),
    recorded_answer!()
);

/// A record swapped (`$6` key, `$7` value, `$8` expected version) and an
/// audit record appended (`$1`..`$5`, `$9` its time) in one statement, as
/// [`CREATE_RECORDED`].
const SWAP_RECORDED: &str = concat!(
    "WITH swapped AS (
  UPDATE custody_state SET value = $7, version = version + 1
  WHERE key = $6 AND version = $8
  RETURNING version
), ",
    append_queries!(" FROM swapped", "$9"),
    recorded_answer!()
);

/// A record swapped (`$6` key, `$7` value, `$8` expected version) if the
/// record under `$10` is at version `$11` (a check, not written), and an
/// audit record appended (`$1`..`$5`, `$9` its time), in one statement, as
/// [`SWAP_RECORDED`]: what a gated signature decided on cached records
/// commits. `checked` takes a share lock on the checked row (READ
/// COMMITTED re-reads a row it waited for, and compares its latest
/// version), so no write to it commits before this statement does: the
/// check holds at the commit, as [`SWAP_ALL_RECORDED`]'s does, without its
/// arrays and its exclusive lock on every row.
const SWAP_CHECKED_RECORDED: &str = concat!(
    "WITH checked AS (
  SELECT key FROM custody_state WHERE key = $10 AND version = $11 FOR SHARE
), swapped AS (
  UPDATE custody_state SET value = $7, version = version + 1
  WHERE key = $6 AND version = $8 AND EXISTS (SELECT 1 FROM checked)
  RETURNING version
), ",
    append_queries!(" FROM swapped", "$9"),
    recorded_answer!()
);

/// Several records created or swapped (`$6` keys, `$7` expected versions,
/// `NULL` for a create, `$8` values, `NULL` for a check that writes
/// nothing; distinct keys) and an audit record appended (`$1`..`$5`, `$9`
/// its time) in one statement: all or nothing.
///
/// `locked` locks the rows that exist, in key order (two such statements
/// over overlapping keys cannot deadlock), and sees each one's latest
/// committed version (READ COMMITTED re-reads a row it waited for); `go`
/// says whether every record is at its expected version (absent for a
/// create). Only then are the rows updated and created (a checked row is
/// locked and compared, not written: no other write to it can commit
/// before this statement does); `swapped` has a row only if every write
/// was made, and the record is inserted from it. The
/// answer's first column is the number swapped (`NULL`: a conflict,
/// nothing written), the second divides by zero (`22012`, the whole
/// statement rolled back) when `go` held but the record, or a create (a
/// key another writer created meanwhile), could not be written: re-read
/// the head and run it again, which then answers the conflict.
const SWAP_ALL_RECORDED: &str = concat!(
    "WITH input AS (
  SELECT key, expected, value FROM unnest($6::bytea[], $7::bigint[], $8::bytea[]) AS i (key, expected, value)
), locked AS (
  SELECT key, version FROM custody_state WHERE key = ANY($6) ORDER BY key FOR UPDATE
), go AS (
  SELECT NOT EXISTS (
    SELECT 1 FROM input i LEFT JOIN locked l ON l.key = i.key
    WHERE l.version IS DISTINCT FROM i.expected
  ) AS go
), updated AS (
  UPDATE custody_state s SET value = i.value, version = s.version + 1
  FROM input i
  WHERE (SELECT go FROM go) AND s.key = i.key AND s.version = i.expected AND i.value IS NOT NULL
  RETURNING s.key
), created AS (
  INSERT INTO custody_state (key, version, value)
  SELECT i.key, 1, i.value FROM input i
  WHERE (SELECT go FROM go) AND i.expected IS NULL AND i.value IS NOT NULL
  ON CONFLICT (key) DO NOTHING
  RETURNING key
), swapped AS (
  SELECT n FROM (SELECT (SELECT count(*) FROM updated) + (SELECT count(*) FROM created)
    + (SELECT count(*) FROM input WHERE value IS NULL AND (SELECT go FROM go)) AS n) AS c
  WHERE n = cardinality($6::bytea[])
), ",
    append_queries!(" FROM swapped", "$9"),
    "
SELECT (SELECT n FROM swapped),
       CASE WHEN (SELECT go FROM go)
            THEN 1 / (SELECT count(*)::integer FROM appended) ELSE 0 END"
);

/// How a connection is made: plain (TCP or Unix socket) or TLS.
#[derive(Clone)]
enum Connector {
    Plain,
    #[cfg(feature = "tls")]
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// One open connection and the statements prepared on it.
pub(crate) struct Conn {
    pub(crate) client: Client,
    prepared: [Option<Statement>; Sql::ALL],
}

impl Conn {
    /// The prepared statement for `sql`, preparing it on first use.
    pub(crate) async fn prepared(&mut self, pool: &Pool, sql: Sql) -> Result<Statement, Fault> {
        let slot = &mut self.prepared[sql.index()];
        if let Some(statement) = slot {
            return Ok(statement.clone());
        }
        let statement = pool
            .bounded(self.client.prepare_typed(sql.text(), sql.types()))
            .await?;
        *slot = Some(statement.clone());
        Ok(statement)
    }
}

/// How much longer than the server's `statement_timeout` a statement may
/// take, measured here, before the call gives up on the connection.
const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// At most `n` connections to one database.
pub(crate) struct Pool {
    config: Config,
    connector: Connector,
    handle: Handle,
    permits: Semaphore,
    idle: Mutex<Vec<Conn>>,
    size: usize,
    acquire_timeout: Duration,
    connect_timeout: Duration,
    statement_timeout: Duration,
}

impl Pool {
    pub(crate) fn new(config: Config, options: &PgOptions, handle: Handle) -> Self {
        #[cfg(feature = "tls")]
        let connector = match &options.tls {
            Some(tls) => Connector::Rustls(tls.clone()),
            None => Connector::Plain,
        };
        #[cfg(not(feature = "tls"))]
        let connector = Connector::Plain;
        Self {
            config,
            connector,
            handle,
            permits: Semaphore::new(options.pool_size),
            idle: Mutex::new(Vec::with_capacity(options.pool_size)),
            size: options.pool_size,
            acquire_timeout: options.acquire_timeout,
            connect_timeout: options.connect_timeout,
            statement_timeout: options.statement_timeout,
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.handle
    }

    /// A permit and a connection: an idle one, or a new one.
    pub(crate) async fn lease(
        &self,
        operation: &'static str,
    ) -> Result<(SemaphorePermit<'_>, Conn), PgError> {
        let permit = match tokio::time::timeout(self.acquire_timeout, self.permits.acquire()).await
        {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed.
            Ok(Err(_closed)) => {
                return Err(PgError::unavailable(operation, "the pool is closed"));
            }
            Err(_elapsed) => {
                return Err(PgError::unavailable(
                    operation,
                    "timed out waiting for a free connection (every pooled connection is busy)",
                ));
            }
        };
        let conn = match self.take_idle() {
            Some(conn) => conn,
            None => self.open().await.map_err(|f| f.classify(operation))?,
        };
        Ok((permit, conn))
    }

    /// Puts a connection a call succeeded on back for the next call.
    pub(crate) fn give_back(&self, conn: Conn) {
        if !conn.client.is_closed() {
            self.lock_idle().push(conn);
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        // A poisoned lock is safe to reuse: the list is only changed by a
        // single push, pop or take, which a panic cannot leave half done.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection that is still open.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.lock_idle();
        while let Some(conn) = idle.pop() {
            if !conn.client.is_closed() {
                return Some(conn);
            }
        }
        None
    }

    /// Opens a connection and spawns its connection task on the runtime.
    pub(crate) async fn open(&self) -> Result<Conn, Fault> {
        let client =
            match tokio::time::timeout(self.connect_timeout, self.connector.connect(self)).await {
                Ok(client) => client?,
                Err(_elapsed) => return Err(Fault::TimedOut("timed out connecting to the server")),
            };
        // The server enforces the statement timeout itself: a statement it
        // cancels is rolled back, so its outcome is known (`57014`). The
        // bound measured here, a little longer, covers a server that
        // cannot answer at all.
        // With a unit: PostgreSQL, CockroachDB and YugabyteDB all read it.
        let millis = self.statement_timeout.as_millis().max(1);
        self.bounded(client.batch_execute(&format!("SET statement_timeout = '{millis}ms'")))
            .await?;
        Ok(Conn {
            client,
            prepared: Default::default(),
        })
    }

    /// Runs one statement under the statement timeout (the server's, plus
    /// [`CLIENT_GRACE`]).
    pub(crate) async fn bounded<T>(
        &self,
        statement: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, Fault> {
        let limit = self.statement_timeout.saturating_add(CLIENT_GRACE);
        match tokio::time::timeout(limit, statement).await {
            Ok(result) => result.map_err(Fault::Pg),
            Err(_elapsed) => Err(Fault::TimedOut("the statement timed out")),
        }
    }
}

impl Connector {
    async fn connect(&self, pool: &Pool) -> Result<Client, tokio_postgres::Error> {
        match self {
            Self::Plain => {
                let (client, connection) = pool.config.connect(tokio_postgres::NoTls).await?;
                pool.handle.spawn(drive(connection));
                Ok(client)
            }
            #[cfg(feature = "tls")]
            Self::Rustls(tls) => {
                let (client, connection) = pool.config.connect(tls.clone()).await?;
                pool.handle.spawn(drive(connection));
                Ok(client)
            }
        }
    }
}

/// A connection's task: it reads and writes the socket until the client is
/// dropped or the connection fails. Its error is not lost: the client's
/// pending and next calls fail as closed, and the pool drops it.
async fn drive(connection: impl Future<Output = Result<(), tokio_postgres::Error>>) {
    let _ended = connection.await;
}
