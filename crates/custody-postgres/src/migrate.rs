//! The schema and its migrations: versioned SQL files (`migrations/`)
//! compiled into the crate, applied by [`crate::PgStateStore::migrate`].

use crate::error::{Fault, PgError};
use crate::pool::{Conn, Pool};

/// The schema version this crate creates and uses (the highest migration).
pub const SCHEMA_VERSION: u32 = 4;

/// One migration: the schema version it produces and its SQL, which must be
/// idempotent (`IF NOT EXISTS`), so that a run that raced another, or that
/// an engine without transactional DDL left half done, can run again.
struct Migration {
    version: i32,
    sql: &'static str,
}

/// Every migration, in order (versions 1, 2, ... with no gap).
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: include_str!("../migrations/0001_state.sql"),
    },
    Migration {
        version: 2,
        sql: include_str!("../migrations/0002_audit.sql"),
    },
    Migration {
        version: 3,
        sql: include_str!("../migrations/0003_audit_time.sql"),
    },
    Migration {
        version: 4,
        sql: include_str!("../migrations/0004_hot_path.sql"),
    },
];

/// The table that records which migrations were applied.
const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS custody_schema_version (\
     version integer PRIMARY KEY CHECK (version >= 1), \
     applied_at timestamptz NOT NULL DEFAULT current_timestamp)";
const CURRENT_VERSION: &str = "SELECT max(version) FROM custody_schema_version";
const RECORD_VERSION: &str =
    "INSERT INTO custody_schema_version (version) VALUES ($1) ON CONFLICT (version) DO NOTHING";

/// Tries at most this often when concurrent migrators collide.
const ATTEMPTS: u32 = 8;

/// Applies the migrations the database lacks; returns the schema version it
/// is at now.
pub(crate) async fn migrate(pool: &Pool) -> Result<u32, PgError> {
    const OP: &str = "migrate";
    let (_permit, mut conn) = pool.lease(OP).await?;
    for attempt in 1..=ATTEMPTS {
        match attempt_once(pool, &mut conn).await {
            Ok(Some(version)) => {
                pool.give_back(conn);
                return Ok(version);
            }
            // Another migrator applied a version first: ours rolled back.
            Ok(None) => {}
            // Another migrator's CREATE TABLE IF NOT EXISTS won the race
            // for the catalog (see `is_race_code`), or a serialization
            // failure: ours rolled back, and the next try sees what the
            // winner committed.
            Err(fault) if is_race(&fault) => {}
            Err(fault) => return Err(fault.classify(OP)),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20 * u64::from(attempt))).await;
    }
    Err(PgError::backend(
        OP,
        "concurrent migrations kept colliding; run migrate again",
    ))
}

fn is_race(fault: &Fault) -> bool {
    is_race_code(fault.sqlstate())
}

/// How PostgreSQL reports the loser of two concurrent `CREATE TABLE IF NOT
/// EXISTS`: depending on where the winner's uncommitted catalog rows stop
/// it, a unique violation on `pg_type` or `pg_class` (`23505`), a duplicate
/// table (`42P07`) or a duplicate object, the table's row type (`42710`);
/// and a serialization failure or deadlock (`40001`, `40P01`).
fn is_race_code(code: Option<&str>) -> bool {
    matches!(code, Some("23505" | "42P07" | "42710" | "40001" | "40P01"))
}

/// One transaction: the version table, the current version, each missing
/// migration with its version row. `None` if another migrator recorded a
/// version first (dropping the transaction rolls it back).
async fn attempt_once(pool: &Pool, conn: &mut Conn) -> Result<Option<u32>, Fault> {
    let tx = pool.bounded(conn.client.transaction()).await?;
    pool.bounded(tx.batch_execute(VERSION_TABLE)).await?;
    let row = pool.bounded(tx.query_one(CURRENT_VERSION, &[])).await?;
    let current: Option<i32> = row
        .try_get(0)
        .map_err(|_| Fault::Row("custody_schema_version.version is not an integer"))?;
    let current = u32::try_from(current.unwrap_or(0))
        .map_err(|_| Fault::Row("custody_schema_version holds a negative version"))?;
    for migration in MIGRATIONS {
        if u32::try_from(migration.version).is_ok_and(|v| v <= current) {
            continue;
        }
        pool.bounded(tx.batch_execute(migration.sql)).await?;
        let recorded = pool
            .bounded(tx.execute(RECORD_VERSION, &[&migration.version]))
            .await?;
        if recorded != 1 {
            return Ok(None);
        }
    }
    pool.bounded(tx.commit()).await?;
    // A schema newer than this crate's is left as it is.
    Ok(Some(current.max(SCHEMA_VERSION)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_races_are_retried_and_nothing_else() {
        for code in ["23505", "42P07", "42710", "40001", "40P01"] {
            assert!(is_race_code(Some(code)), "{code}");
        }
        for code in ["42501", "57014", "08006", "42P01", "XX000"] {
            assert!(!is_race_code(Some(code)), "{code}");
        }
        assert!(!is_race_code(None));
    }

    #[test]
    fn migrations_are_numbered_without_gaps_up_to_the_schema_version() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(m.version).unwrap(), i + 1);
            assert!(
                m.sql.contains("IF NOT EXISTS"),
                "migration {} must be idempotent",
                m.version
            );
        }
        assert_eq!(
            u32::try_from(MIGRATIONS.last().unwrap().version).unwrap(),
            SCHEMA_VERSION
        );
    }
}
