//! The test database: the server `CUSTODY_TEST_POSTGRES_URL` names (see
//! `tests/start_postgres.sh`), a fresh schema per test so that tests run in
//! parallel, and administrative SQL run as the URL's (super)user.

use std::time::Duration;

use custody_core::{Error, Pending};
use custody_postgres::tokio_postgres::{self, Config};
use custody_postgres::{PgError, PgOptions, PgStateStore};

/// The variable naming the test server.
pub(crate) const URL_ENV: &str = "CUSTODY_TEST_POSTGRES_URL";

/// The test server's URL, or `None` (and a line saying the test is
/// skipped) when the variable is unset.
pub(crate) fn url(test: &str) -> Option<String> {
    match std::env::var(URL_ENV) {
        Ok(url) => Some(url),
        Err(_) => {
            println!(
                "skipped {test}: set {URL_ENV} (crates/custody-postgres/tests/start_postgres.sh starts a server and prints it)"
            );
            None
        }
    }
}

/// `n` random bytes, hex: unique names.
pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// A schema of its own for one test.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub(crate) url: String,
    pub(crate) name: String,
}

impl Schema {
    /// Creates a fresh schema `t_<test>_<random>`, or `None` (skipped) when
    /// no server is configured.
    pub(crate) fn fresh(test: &str) -> Option<Self> {
        let url = url(test)?;
        // PostgreSQL identifiers (and application_name, which names the
        // store's connections after the schema) are at most 63 bytes.
        let label: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(30)
            .collect();
        let name = format!("t_{label}_{}", random_hex(4));
        let schema = Self { url, name };
        schema.admin(&format!("CREATE SCHEMA {}", schema.name));
        Some(schema)
    }

    /// An existing schema (in a child process).
    pub(crate) fn existing(url: String, name: String) -> Self {
        Self { url, name }
    }

    /// The connection configuration: the URL with `search_path` set to the
    /// schema, and an `application_name` naming it, so that the test can
    /// find (and terminate) exactly its store's connections.
    pub(crate) fn config(&self) -> Config {
        let mut config: Config = self.url.parse().unwrap();
        config.options(format!("-c search_path={}", self.name));
        config.application_name(self.application_name());
        config
    }

    pub(crate) fn application_name(&self) -> String {
        format!("custody-test-{}", self.name)
    }

    /// A migrated store on this schema.
    pub(crate) fn store(&self, options: PgOptions) -> PgStateStore {
        let store = PgStateStore::connect(self.config(), options)
            .wait()
            .unwrap();
        assert_eq!(
            store.migrate().wait().unwrap(),
            custody_postgres::SCHEMA_VERSION
        );
        store
    }

    /// Runs `sql` (one or more statements) as the URL's user, in this
    /// schema.
    pub(crate) fn admin(&self, sql: &str) {
        let config = self.admin_config();
        let sql = sql.to_owned();
        on_own_runtime(async move {
            let client = connect(&config).await;
            client.batch_execute(&sql).await.unwrap();
        });
    }

    /// Runs a query returning one `bigint` (or `count(*)`).
    pub(crate) fn admin_i64(&self, sql: &str) -> i64 {
        let config = self.admin_config();
        let sql = sql.to_owned();
        on_own_runtime(async move {
            let client = connect(&config).await;
            client.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0)
        })
    }

    /// One chain's records as the file log's lines, read as an
    /// administrator.
    pub(crate) fn chain_lines(&self, chain: &str) -> String {
        let config = self.admin_config();
        let chain = chain.to_owned();
        on_own_runtime(async move {
            let client = connect(&config).await;
            let rows = client
                .query(
                    "SELECT record FROM custody_audit WHERE chain = $1 ORDER BY seq",
                    &[&chain],
                )
                .await
                .unwrap();
            rows.iter()
                .map(|r| format!("{}\n", r.get::<_, String>(0)))
                .collect()
        })
    }

    /// The admin connection's configuration (in this schema, but not named
    /// as the store's connections are).
    pub(crate) fn admin_config(&self) -> Config {
        let mut config: Config = self.url.parse().unwrap();
        config.options(format!("-c search_path={}", self.name));
        config.application_name("custody-test-admin");
        config
    }

    /// How many connections the store's `application_name` has open.
    pub(crate) fn connections(&self) -> i64 {
        self.admin_i64(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{}'",
            self.application_name()
        ))
    }
}

/// Connects (no TLS) and drives the connection on the current runtime.
pub(crate) async fn connect(config: &Config) -> tokio_postgres::Client {
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Runs `fut` to completion on a current-thread runtime on a thread of its
/// own (so it works from a plain thread and from inside a runtime).
pub(crate) fn on_own_runtime<T: Send + 'static>(
    fut: impl Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(fut)
    })
    .join()
    .unwrap()
}

/// The `PgError` inside a core error (panics if it is not one).
pub(crate) fn pg_error(e: &Error) -> &PgError {
    let Error::Backend { source, .. } = e else {
        panic!("not a backend error: {e:?}")
    };
    source
        .downcast_ref::<PgError>()
        .unwrap_or_else(|| panic!("not a PgError: {e:?}"))
}

/// `e`'s message with its whole source chain, and its `Debug`.
pub(crate) fn everything_printed(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("{e:?}\n{e}");
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(&format!("\n{s}\n{s:?}"));
        source = s.source();
    }
    out
}

/// Waits on `p` with a deadline (a hung call fails the test instead of
/// hanging it).
pub(crate) fn wait_at_most<T: Send + 'static>(p: Pending<'static, T>, limit: Duration) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(p.wait());
    });
    rx.recv_timeout(limit).expect("the call hung")
}
