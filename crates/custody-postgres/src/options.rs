//! [`PgOptions`]: the pool, timeouts, runtime and TLS of a [`crate::PgStateStore`].

use std::fmt;
use std::time::Duration;

use tokio::runtime::Handle;

/// How a [`crate::PgStateStore`] connects and waits: pool size, timeouts,
/// the tokio runtime its calls run on and (feature `tls`) TLS.
///
/// Where and as whom it connects (hosts, port, database, role, password,
/// `sslmode`, `application_name`, `options=-c search_path=…`) is the
/// [`tokio_postgres::Config`] given to [`crate::PgStateStore::connect`]:
/// the library reads no environment, so a password from `PGPASSWORD` or a
/// secret store is the caller's to put there.
///
/// ```
/// use std::time::Duration;
/// use custody_postgres::PgOptions;
///
/// let options = PgOptions::new()
///     .with_pool_size(8)
///     .with_statement_timeout(Duration::from_secs(2));
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct PgOptions {
    pub(crate) pool_size: usize,
    pub(crate) acquire_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) statement_timeout: Duration,
    pub(crate) runtime: Option<Handle>,
    pub(crate) commit_batch: usize,
    pub(crate) committers: usize,
    pub(crate) read_batch: usize,
    pub(crate) readers: usize,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl PgOptions {
    /// The defaults: 4 connections; 5 s to get a free connection, 5 s to
    /// open one, 5 s per statement; recorded commits not batched (each its
    /// own statement; see [`Self::with_commit_batch`]); reads batched 32 at
    /// most, by one reader at a time; a runtime the store owns; no TLS.
    #[must_use]
    pub fn new() -> Self {
        Self {
            pool_size: 4,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            runtime: None,
            commit_batch: 1,
            committers: 1,
            read_batch: 32,
            readers: 1,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Group commit: at most `n` recorded commits
    /// ([`custody_core::StateStore::compare_and_swap_all_recorded`]) of
    /// this store that wait at the same moment go to the server in one
    /// transaction, each keeping its own outcome, each caller answered only
    /// once that transaction has committed (the crate README, "Group
    /// commit"). `1`, the default, turns batching off: every commit is its
    /// own statement, in its own transaction, on any free pooled
    /// connection. A lone commit is never held back to wait for others.
    ///
    /// Off by default because a gated signature is mostly one statement
    /// (the TOTP gate decides on the records its replica last committed):
    /// batched, the commits queue behind the committers instead of running
    /// side by side, and the server's own group commit already joins their
    /// WAL flushes (measured in the workspace README, "Running many
    /// signers": 55–66% of pgbench at 8 wallets off, 45–49% on). Try it
    /// where each commit's round trip or transaction is what costs: a
    /// database far from the signers, or many wallets per replica whose
    /// records are not warm.
    #[must_use]
    pub fn with_commit_batch(mut self, n: usize) -> Self {
        self.commit_batch = n.max(1);
        self
    }

    /// How many batches of recorded commits may be in flight at once (at
    /// least 1; each holds one pooled connection while it commits). More
    /// overlaps round trips; fewer makes larger batches, hence fewer
    /// commits.
    #[must_use]
    pub fn with_committers(mut self, n: usize) -> Self {
        self.committers = n.max(1);
        self
    }

    /// Batched reads: at most `n` reads ([`custody_core::StateStore::get`],
    /// [`custody_core::StateStore::get_many`]) of this store that wait at
    /// the same moment are answered by one statement over all their keys
    /// (`WHERE key = ANY($1)`), each caller getting its own records; a
    /// batched read sees everything committed before it was issued, as a
    /// lone read does (the crate README, "Batched reads"). `1` turns
    /// batching off: every read is its own statement. A lone read is never
    /// held back to wait for others.
    #[must_use]
    pub fn with_read_batch(mut self, n: usize) -> Self {
        self.read_batch = n.max(1);
        self
    }

    /// How many batches of reads may be in flight at once (at least 1;
    /// each holds one pooled connection while it reads). More overlaps
    /// round trips; fewer makes larger batches, hence fewer statements.
    #[must_use]
    pub fn with_readers(mut self, n: usize) -> Self {
        self.readers = n.max(1);
        self
    }

    /// At most `n` connections at once (at least 1). Every replica holds up
    /// to this many: keep `replicas × n` under the server's
    /// `max_connections`.
    #[must_use]
    pub fn with_pool_size(mut self, n: usize) -> Self {
        self.pool_size = n;
        self
    }

    /// How long a call waits for a free connection when all `n` are busy
    /// before it fails as `unavailable`.
    #[must_use]
    pub fn with_acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// How long opening a connection (TCP or socket connect, TLS,
    /// authentication) may take before it fails as `unavailable`.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one statement may take. The server enforces it (each
    /// connection sets `statement_timeout`), cancelling and rolling back a
    /// statement that runs longer (waiting on a lock included), and the call
    /// fails as `unavailable`. A server that does not answer at all is given
    /// up on one second later, measured here, and the connection is closed:
    /// a compare-and-swap that fails that way may or may not have been
    /// applied.
    #[must_use]
    pub fn with_statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// Runs every call on the caller's runtime instead of one the store
    /// owns. It must be a multi-thread runtime with I/O and time enabled
    /// (as `#[tokio::main]` builds), or a current-thread runtime that some
    /// thread keeps driving; see [`crate::PgStateStore`].
    #[must_use]
    pub fn with_runtime(mut self, runtime: Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Connects with TLS, verified as `config` says (its root store, its
    /// crypto provider, any client certificate), with SCRAM channel binding
    /// when the server offers it. The store then requires TLS: a
    /// configuration's `sslmode=prefer` (the default) is raised to
    /// `require`, so that a server (or an attacker in the path) that
    /// declines TLS gets no plaintext connection; `sslmode=disable` is
    /// refused as `bad-input`.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn with_tls(mut self, config: rustls::ClientConfig) -> Self {
        self.tls = Some(tokio_postgres_rustls::MakeRustlsConnect::new(config));
        self
    }

    pub(crate) fn has_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        {
            self.tls.is_some()
        }
        #[cfg(not(feature = "tls"))]
        {
            false
        }
    }
}

impl Default for PgOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("pool_size", &self.pool_size)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("commit_batch", &self.commit_batch)
            .field("committers", &self.committers)
            .field("read_batch", &self.read_batch)
            .field("readers", &self.readers)
            .field("own_runtime", &self.runtime.is_none())
            .field("tls", &self.has_tls())
            .finish()
    }
}
