//! `--state`: where the TOTP guard, lockouts and audit log live (the
//! keystore directory, or a PostgreSQL database many signers share), and
//! the commands that work on them (`audit verify`, `audit checkpoint`,
//! `state migrate`).

use std::path::Path;

use custody_core::{AuditLog, Error as CoreError};
use serde_json::{Value, json};

use crate::error::CliError;

/// Where `--state` says the records are.
pub(crate) enum State {
    /// The keystore directory.
    File,
    /// A PostgreSQL database (feature `postgres`).
    #[cfg(feature = "postgres")]
    Postgres(Box<custody_postgres::tokio_postgres::Config>),
}

impl State {
    /// Parses `--state` / `CUSTODY_STATE`.
    pub(crate) fn parse(uri: &str) -> Result<Self, CliError> {
        if uri == "file" {
            return Ok(Self::File);
        }
        if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
            return postgres_state(uri);
        }
        Err(CliError::bad_input(
            "--state: expected `file` or a postgres:// URL",
        ))
    }
}

#[cfg(not(feature = "postgres"))]
fn postgres_state(_uri: &str) -> Result<State, CliError> {
    Err(CliError::new(
        "unsupported",
        "--state postgres://: this custody was built without the feature `postgres`",
    ))
}

#[cfg(feature = "postgres")]
fn postgres_state(uri: &str) -> Result<State, CliError> {
    let mut config: custody_postgres::tokio_postgres::Config = uri.parse().map_err(|_| {
        CliError::bad_input("--state: not a valid postgres:// URL (libpq's URL syntax)")
    })?;
    if config.get_password().is_some() {
        return Err(CliError::bad_input(
            "--state: the database password goes in PGPASSWORD or ~/.pgpass, never in the URL",
        ));
    }
    if let Some(password) = pg::password_for(&config) {
        config.password(password);
    }
    Ok(State::Postgres(Box::new(config)))
}

/// `custody audit verify` over the keystore directory's file log.
pub(crate) fn verify_file(dir: &Path) -> Result<Value, CliError> {
    let path = dir.join("audit.log");
    if !path.exists() {
        return Err(CoreError::KeystoreNotFound.into());
    }
    let file = std::fs::File::open(&path)?;
    match AuditLog::verify(std::io::BufReader::new(file)) {
        Ok(head) => Ok(json!({
            "records": head.seq,
            "chains": 1,
            "checkpoint": Value::Null,
            "ok": true,
        })),
        Err(CoreError::AuditChainBroken { seq, reason }) => Err(CliError::new(
            "audit-broken",
            format!("audit.log record {seq}: {reason}"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// What the `file` state cannot do.
pub(crate) fn needs_database(command: &str) -> CliError {
    CliError::bad_input(format!(
        "{command} works on a shared database: give --state postgres://..."
    ))
}

#[cfg(feature = "postgres")]
pub(crate) mod pg {
    //! The PostgreSQL side of `--state`.

    use std::path::PathBuf;
    use std::sync::Arc;

    use custody_core::{PublicKey, Records, SharedBackend};
    use custody_postgres::tokio_postgres::Config;
    use custody_postgres::tokio_postgres::config::Host;
    use custody_postgres::{Checkpoint, PgOptions, PgStateStore};
    use serde_json::{Value, json};

    use crate::error::CliError;

    /// Connects (two pooled connections: one process, one command) and
    /// creates the schema on first use.
    pub(crate) fn connect(config: &Config) -> Result<PgStateStore, CliError> {
        let store =
            PgStateStore::connect(config.clone(), PgOptions::new().with_pool_size(2)).wait()?;
        store.ensure_schema().wait()?;
        Ok(store)
    }

    /// The keystore's records in the database.
    pub(crate) fn records(store: &PgStateStore) -> Records {
        Records {
            state: Arc::new(store.clone()),
            audit: Arc::new(store.audit_log()),
        }
    }

    /// `custody state migrate`.
    pub(crate) fn migrate(config: &Config) -> Result<Value, CliError> {
        let store =
            PgStateStore::connect(config.clone(), PgOptions::new().with_pool_size(1)).wait()?;
        let version = store.migrate().wait()?;
        Ok(json!({ "schemaVersion": version }))
    }

    fn checkpoint_json(cp: &Checkpoint) -> Value {
        json!({
            "id": cp.id(),
            "time": cp.time_ms(),
            "origin": cp.origin(),
            "records": cp.records(),
            "chains": cp.heads().len(),
            "root": format!("0x{}", hex::encode(cp.root())),
            "publicKey": format!("0x{}", hex::encode(cp.public_key().to_compressed())),
        })
    }

    /// `custody audit verify` over the database's log.
    pub(crate) fn verify(config: &Config, expected: Option<&PublicKey>) -> Result<Value, CliError> {
        let store = connect(config)?;
        let report = store.audit_log().verify(expected).wait()?;
        if let Some(b) = report.broken {
            let at = if b.chain.is_empty() {
                "the last checkpoint".to_owned()
            } else {
                format!("chain {:?} record {}", b.chain, b.seq)
            };
            return Err(CliError::new("audit-broken", format!("{at}: {}", b.reason)));
        }
        Ok(json!({
            "records": report.records,
            "chains": report.chains,
            "checkpoint": report.checkpoint.as_ref().map_or(Value::Null, checkpoint_json),
            "ok": true,
        }))
    }

    /// `custody audit checkpoint`: signs the heads with `key` of `backend`.
    pub(crate) fn checkpoint(
        store: &PgStateStore,
        config: &Config,
        origin: Option<&str>,
        backend: &SharedBackend,
        key: &custody_core::PinnedKey,
    ) -> Result<Value, CliError> {
        let origin = match origin {
            Some(o) => o.to_owned(),
            None => format!("custody:{}", config.get_dbname().unwrap_or("postgres")),
        };
        let cp = store
            .audit_log()
            .checkpoint(&origin, backend.as_ref(), key)
            .wait()?;
        Ok(checkpoint_json(&cp))
    }

    /// The password libpq would use when the URL has none: `PGPASSWORD`,
    /// else the first matching line of `PGPASSFILE` or `~/.pgpass` (which,
    /// as libpq does, is ignored unless only its owner can read it).
    pub(crate) fn password_for(config: &Config) -> Option<Vec<u8>> {
        if let Some(p) = std::env::var_os("PGPASSWORD") {
            return Some(p.into_encoded_bytes());
        }
        let path = std::env::var_os("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
        if !private(&path) {
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(_)) => "localhost".to_owned(),
            None => "localhost".to_owned(),
        };
        let port = config
            .get_ports()
            .first()
            .copied()
            .unwrap_or(5432)
            .to_string();
        let user = config.get_user().unwrap_or_default();
        let db = config.get_dbname().unwrap_or(user);
        pgpass_lookup(&text, [&host, &port, db, user])
    }

    #[cfg(unix)]
    fn private(path: &std::path::Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
    }

    #[cfg(not(unix))]
    fn private(path: &std::path::Path) -> bool {
        path.exists()
    }

    /// The password of the first line `host:port:database:user:password`
    /// whose first four fields match (`*` matches anything; `\:` and `\\`
    /// escape); comments (`#`) and malformed lines are skipped.
    pub(crate) fn pgpass_lookup(text: &str, want: [&str; 4]) -> Option<Vec<u8>> {
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let fields = split_escaped(line);
            let [host, port, db, user, password] = fields.as_slice() else {
                continue;
            };
            let matches = [host, port, db, user]
                .iter()
                .zip(want)
                .all(|(field, want)| field.as_str() == "*" || field.as_str() == want);
            if matches {
                return Some(password.clone().into_bytes());
            }
        }
        None
    }

    fn split_escaped(line: &str) -> Vec<String> {
        let mut fields = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let (Some(next), Some(field)) = (chars.next(), fields.last_mut()) {
                        field.push(next);
                    }
                }
                ':' if fields.len() < 5 => fields.push(String::new()),
                c => {
                    if let Some(field) = fields.last_mut() {
                        field.push(c);
                    }
                }
            }
        }
        fields
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn pgpass_lines_match_as_libpq_reads_them() {
            let text = "# comment\n\
                        db.internal:5432:custody:signer:s3cr\\:et\n\
                        *:*:*:other:wild\n\
                        short:line\n";
            let want = |h, p, d, u| pgpass_lookup(text, [h, p, d, u]);
            assert_eq!(
                want("db.internal", "5432", "custody", "signer"),
                Some(b"s3cr:et".to_vec())
            );
            assert_eq!(want("db.internal", "5433", "custody", "signer"), None);
            assert_eq!(want("x", "1", "y", "other"), Some(b"wild".to_vec()));
            assert_eq!(want("x", "1", "y", "nobody"), None);
        }
    }
}
