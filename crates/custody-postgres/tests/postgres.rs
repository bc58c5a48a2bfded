//! `PgStateStore` against a real PostgreSQL: the `StateStore` conformance
//! suite, migrations, both ways of driving calls (`.await` in a runtime,
//! `.wait()` on a plain thread), processes and threads racing on one key,
//! connections terminated under load, roles, passwords, malformed rows,
//! timeouts and TLS.
//!
//! The server is the one `CUSTODY_TEST_POSTGRES_URL` names (start one with
//! `tests/start_postgres.sh`); each test works in a fresh schema of its own,
//! so tests run in parallel. Without the variable every test that needs
//! the server is skipped, saying so. (The server-restart test is in
//! `restart.rs`, a binary of its own, so that no other test runs while the
//! server is down.)
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[allow(dead_code, reason = "shared with restart.rs, which uses a subset")]
#[path = "support/db.rs"]
mod db;

#[allow(dead_code, reason = "shared with restart.rs")]
#[path = "support/counter.rs"]
mod counter;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use custody_core::{CasOutcome, Error, StateStore, conformance};
use custody_postgres::{PgOptions, PgStateStore};

use db::{Schema, pg_error};

#[test]
fn conformance_suite() {
    let Some(schema) = Schema::fresh("conformance_suite") else {
        return;
    };
    let store = schema.store(PgOptions::new());
    conformance::state_store(&store);
}

#[test]
fn concurrent_counter_and_the_pool_bound() {
    let Some(schema) = Schema::fresh("concurrent_counter_and_the_pool_bound") else {
        return;
    };
    // 8 threads over 3 connections: the pool never opens more.
    let store = schema.store(PgOptions::new().with_pool_size(3));
    conformance::concurrent_counter(Arc::new(store.clone()), 8, 50);
    let open = schema.connections();
    assert!(
        (1..=3).contains(&open),
        "{open} connections for a pool of 3"
    );
}

#[test]
fn keys_are_bytes_nul_and_all() {
    let Some(schema) = Schema::fresh("keys_are_bytes_nul_and_all") else {
        return;
    };
    let store = schema.store(PgOptions::new());
    // Text columns refuse NUL; the key column is bytea, so any UTF-8 key
    // a file store takes, this one takes too.
    for key in ["nul\0key", "\0", "é", "e\u{301}"] {
        assert_eq!(
            conformance::swapped(
                store
                    .compare_and_swap(key, None, key.as_bytes())
                    .wait()
                    .unwrap()
            ),
            1,
            "{key:?}"
        );
    }
    // Byte-for-byte: the two spellings of é are different keys.
    assert_eq!(
        store.get("é").wait().unwrap(),
        conformance::v(1, "é".as_bytes())
    );
    assert_eq!(
        store.get("e\u{301}").wait().unwrap(),
        conformance::v(1, "e\u{301}".as_bytes())
    );
    assert_eq!(store.get("nul").wait().unwrap(), None);
    assert_eq!(schema.admin_i64("SELECT count(*) FROM custody_state"), 4);
}

/// The table as `SPEC.md` gives it: a change to the migration fails here.
#[test]
fn the_schema_matches_the_spec() {
    let Some(schema) = Schema::fresh("the_schema_matches_the_spec") else {
        return;
    };
    let _store = schema.store(PgOptions::new());
    let column = |name: &str, ty: &str| {
        schema.admin_i64(&format!(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{}' \
             AND table_name = 'custody_state' AND column_name = '{name}' \
             AND data_type = '{ty}' AND is_nullable = 'NO'",
            schema.name
        ))
    };
    assert_eq!(column("key", "bytea"), 1);
    assert_eq!(column("version", "bigint"), 1);
    assert_eq!(column("value", "bytea"), 1);
    assert_eq!(
        schema.admin_i64(&format!(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{}' \
             AND table_name = 'custody_state'",
            schema.name
        )),
        3
    );
    assert_eq!(
        schema.admin_i64(
            "SELECT count(*) FROM pg_index i JOIN pg_attribute a \
             ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
             WHERE i.indrelid = 'custody_state'::regclass AND i.indisprimary \
             AND a.attname = 'key' AND i.indnatts = 1"
        ),
        1
    );
    // Schema version 4: no CHECK constraint on the table every signature
    // writes (each costs a re-plan per statement); the shapes are kept by
    // the store's statements and checked on every read
    // (`rows_that_break_the_schema_are_malformed_never_trusted`). NOT NULL
    // stays.
    assert_eq!(
        schema.admin_i64(
            "SELECT count(*) FROM pg_constraint \
             WHERE conrelid = 'custody_state'::regclass AND contype = 'c'"
        ),
        0
    );
    for (row, what) in [
        ("('k', 1, NULL)", "a NULL value"),
        ("('k', NULL, 'v')", "a NULL version"),
    ] {
        let config = schema.admin_config();
        let insert = format!("INSERT INTO custody_state VALUES {row}");
        let code = db::on_own_runtime(async move {
            let client = db::connect(&config).await;
            client
                .batch_execute(&insert)
                .await
                .err()
                .and_then(|e| e.code().map(|c| c.code().to_owned()))
        });
        assert_eq!(code.as_deref(), Some("23502"), "{what}");
    }
}

#[test]
fn migrate_is_idempotent_and_keeps_records() {
    let Some(schema) = Schema::fresh("migrate_is_idempotent_and_keeps_records") else {
        return;
    };
    let store = PgStateStore::connect(schema.config(), PgOptions::new())
        .wait()
        .unwrap();
    // Before migrate: the table is missing, a typed `backend` error.
    let e = store.get("k").wait().unwrap_err();
    assert_eq!(e.kind(), "backend");
    assert_eq!(pg_error(&e).sqlstate(), Some("42P01"));

    assert_eq!(
        store.migrate().wait().unwrap(),
        custody_postgres::SCHEMA_VERSION
    );
    assert_eq!(
        conformance::swapped(store.compare_and_swap("k", None, b"v").wait().unwrap()),
        1
    );
    assert_eq!(
        store.migrate().wait().unwrap(),
        custody_postgres::SCHEMA_VERSION
    );
    assert_eq!(
        store.migrate().wait().unwrap(),
        custody_postgres::SCHEMA_VERSION
    );
    assert_eq!(store.get("k").wait().unwrap(), conformance::v(1, b"v"));
    // One row per migration.
    assert_eq!(
        schema.admin_i64("SELECT count(*) FROM custody_schema_version"),
        i64::from(custody_postgres::SCHEMA_VERSION)
    );
    assert_eq!(
        schema.admin_i64("SELECT max(version)::bigint FROM custody_schema_version"),
        i64::from(custody_postgres::SCHEMA_VERSION)
    );
    // A newer schema (a later library migrated) is left alone.
    schema.admin("INSERT INTO custody_schema_version (version) VALUES (70)");
    assert_eq!(store.migrate().wait().unwrap(), 70);
    assert_eq!(
        schema.admin_i64("SELECT count(*) FROM custody_schema_version"),
        i64::from(custody_postgres::SCHEMA_VERSION) + 1
    );
}

#[test]
fn a_version_1_database_is_upgraded_in_place() {
    let Some(schema) = Schema::fresh("a_version_1_database_is_upgraded") else {
        return;
    };
    // What the version 1 library created, with a guard record in it.
    schema.admin(&format!(
        "CREATE TABLE custody_schema_version (version integer PRIMARY KEY CHECK (version >= 1), \
           applied_at timestamptz NOT NULL DEFAULT current_timestamp);
         {}
         INSERT INTO custody_schema_version (version) VALUES (1);
         INSERT INTO custody_state VALUES ('totp/v1/guard/x', 4, 'guard');",
        include_str!("../migrations/0001_state.sql")
    ));
    let store = PgStateStore::connect(schema.config(), PgOptions::new())
        .wait()
        .unwrap();
    assert_eq!(
        store.migrate().wait().unwrap(),
        custody_postgres::SCHEMA_VERSION
    );
    assert_eq!(
        store.get("totp/v1/guard/x").wait().unwrap(),
        conformance::v(4, b"guard")
    );
    assert_eq!(schema.admin_i64("SELECT count(*) FROM custody_audit"), 0);
}

#[test]
fn concurrent_migrations_all_succeed() {
    const ROUNDS: usize = 10;
    const MIGRATORS: usize = 6;
    if db::url("concurrent_migrations_all_succeed").is_none() {
        return;
    }
    for round in 0..ROUNDS {
        let schema = Schema::fresh(&format!("migrate_race{round}")).unwrap();
        // Separate stores (separate pools), connected first, then released
        // together, so that the CREATE TABLEs overlap.
        let stores: Vec<_> = (0..MIGRATORS)
            .map(|_| {
                PgStateStore::connect(schema.config(), PgOptions::new().with_pool_size(1))
                    .wait()
                    .unwrap()
            })
            .collect();
        let barrier = Arc::new(Barrier::new(MIGRATORS));
        let handles: Vec<_> = stores
            .into_iter()
            .map(|store| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    let version = store.migrate().wait();
                    (store, version)
                })
            })
            .collect();
        let mut stores = Vec::new();
        for h in handles {
            let (store, version) = h.join().unwrap();
            assert_eq!(
                version.unwrap(),
                custody_postgres::SCHEMA_VERSION,
                "round {round}"
            );
            stores.push(store);
        }
        assert_eq!(
            schema.admin_i64("SELECT count(*) FROM custody_schema_version"),
            i64::from(custody_postgres::SCHEMA_VERSION)
        );
        // The schema works from every migrator.
        for (i, store) in stores.iter().enumerate() {
            let seen = store.get("k").wait().unwrap();
            let out = store
                .compare_and_swap("k", seen.map(|s| s.version), b"x")
                .wait()
                .unwrap();
            assert_eq!(conformance::swapped(out), i as u64 + 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awaited_inside_a_tokio_runtime() {
    let Some(schema) = Schema::fresh("awaited_inside_a_tokio_runtime") else {
        return;
    };
    // The caller's runtime runs the calls.
    let store = PgStateStore::connect(
        schema.config(),
        PgOptions::new().with_runtime(tokio::runtime::Handle::current()),
    )
    .await
    .unwrap();
    assert_eq!(
        store.migrate().await.unwrap(),
        custody_postgres::SCHEMA_VERSION
    );
    assert_eq!(store.get("k").await.unwrap(), None);
    assert_eq!(
        conformance::swapped(store.compare_and_swap("k", None, b"1").await.unwrap()),
        1
    );
    // Many calls at once from tasks of this runtime.
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let key = format!("task {i}");
                conformance::swapped(store.compare_and_swap(&key, None, b"v").await.unwrap());
                store.get(&key).await.unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), conformance::v(1, b"v"));
    }
    // A store with its own runtime, awaited here: the I/O runs on its
    // runtime, the answer comes back to this one. Dropped inside this
    // async context without blocking or panicking.
    let own = PgStateStore::connect(schema.config(), PgOptions::new())
        .await
        .unwrap();
    assert_eq!(own.get("k").await.unwrap(), conformance::v(1, b"1"));
    assert_eq!(
        conformance::swapped(own.compare_and_swap("k", Some(1), b"2").await.unwrap()),
        2
    );
    drop(own);
    assert_eq!(store.get("k").await.unwrap(), conformance::v(2, b"2"));
}

#[test]
fn awaited_on_a_current_thread_runtime() {
    let Some(schema) = Schema::fresh("awaited_on_a_current_thread_runtime") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Its own runtime: nothing needs this single thread but the await.
        let store = PgStateStore::connect(schema.config(), PgOptions::new())
            .await
            .unwrap();
        assert_eq!(
            store.migrate().await.unwrap(),
            custody_postgres::SCHEMA_VERSION
        );
        assert_eq!(
            conformance::swapped(store.compare_and_swap("k", None, b"x").await.unwrap()),
            1
        );
        assert_eq!(store.get("k").await.unwrap(), conformance::v(1, b"x"));
    });
}

#[test]
fn waited_on_plain_threads() {
    let Some(schema) = Schema::fresh("waited_on_plain_threads") else {
        return;
    };
    // No runtime anywhere in this test's threads: the store owns one.
    let store = Arc::new(schema.store(PgOptions::new()));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                assert!(tokio::runtime::Handle::try_current().is_err());
                let key = format!("thread {i}");
                let p = store.compare_and_swap(&key, None, b"v");
                assert!(!p.is_ready(), "a database call is not answered at once");
                assert_eq!(conformance::swapped(p.wait().unwrap()), 1);
                store.get(&key).wait().unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), conformance::v(1, b"v"));
    }
    // A caller's multi-thread runtime, waited on from a plain thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = PgStateStore::connect(
        schema.config(),
        PgOptions::new().with_runtime(rt.handle().clone()),
    )
    .wait()
    .unwrap();
    assert_eq!(
        store.get("thread 0").wait().unwrap(),
        conformance::v(1, b"v")
    );
    drop(store);
    rt.shutdown_background();
}

/// Names the schema of a racing child process.
const RACE_SCHEMA_ENV: &str = "CUSTODY_TEST_PG_RACE_SCHEMA";
/// Threads per child, increments per thread.
const RACE_THREADS_ENV: &str = "CUSTODY_TEST_PG_RACE_THREADS";
const RACE_COUNT_ENV: &str = "CUSTODY_TEST_PG_RACE_COUNT";

/// Adds one to the big-endian counter under `key`; returns how many
/// conflicts it took.
fn increment(store: &dyn StateStore, key: &str) -> u64 {
    let mut conflicts = 0;
    let mut seen = store.get(key).wait().unwrap();
    loop {
        let n = seen
            .as_ref()
            .map_or(0, |s| u64::from_be_bytes((*s.value).try_into().unwrap()));
        match store
            .compare_and_swap(
                key,
                seen.as_ref().map(|s| s.version),
                &(n + 1).to_be_bytes(),
            )
            .wait()
            .unwrap()
        {
            CasOutcome::Swapped { .. } => return conflicts,
            CasOutcome::Conflict { current } => {
                conflicts += 1;
                seen = current;
            }
        }
    }
}

/// Child: `$THREADS` threads each increment the counter `$COUNT` times;
/// prints `conflicts N`.
#[test]
#[ignore = "run as a child process by processes_and_threads_race_on_one_key"]
fn child_racer() {
    let (Ok(url), Ok(schema)) = (std::env::var(db::URL_ENV), std::env::var(RACE_SCHEMA_ENV)) else {
        return;
    };
    let threads: usize = std::env::var(RACE_THREADS_ENV).unwrap().parse().unwrap();
    let count: u64 = std::env::var(RACE_COUNT_ENV).unwrap().parse().unwrap();
    let schema = Schema::existing(url, schema);
    let store: Arc<dyn StateStore> = Arc::new(
        PgStateStore::connect(schema.config(), PgOptions::new().with_pool_size(threads))
            .wait()
            .unwrap(),
    );
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                (0..count)
                    .map(|_| increment(&*store, "counter"))
                    .sum::<u64>()
            })
        })
        .collect();
    let conflicts: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    // libtest may have printed "test child_racer ... " without a newline.
    println!("\nconflicts {conflicts}");
}

#[test]
fn processes_and_threads_race_on_one_key() {
    const PROCESSES: u64 = 4;
    const THREADS: u64 = 4;
    const COUNT: u64 = 25;
    let Some(schema) = Schema::fresh("processes_and_threads_race_on_one_key") else {
        return;
    };
    let store = schema.store(PgOptions::new());
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "child_racer",
                    "--nocapture",
                    "--include-ignored",
                    "--test-threads=1",
                ])
                .env(db::URL_ENV, &schema.url)
                .env(RACE_SCHEMA_ENV, &schema.name)
                .env(RACE_THREADS_ENV, THREADS.to_string())
                .env(RACE_COUNT_ENV, COUNT.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut conflicts = 0;
    for mut child in children {
        let stdout = child.stdout.take().unwrap();
        let mut reported = None;
        for line in BufReader::new(stdout).lines() {
            if let Some(n) = line.unwrap().strip_prefix("conflicts ") {
                reported = Some(n.trim().parse::<u64>().unwrap());
            }
        }
        assert!(child.wait().unwrap().success());
        conflicts += reported.expect("the child reported no conflict count");
    }
    let total = PROCESSES * THREADS * COUNT;
    assert_eq!(
        store.get("counter").wait().unwrap(),
        conformance::v(total, &total.to_be_bytes())
    );
    println!(
        "{PROCESSES} processes x {THREADS} threads x {COUNT} increments: counter {total} exact, {conflicts} conflicts"
    );
    assert!(conflicts > 0, "the writers never raced");
}

#[test]
fn terminated_connections_lose_nothing_acknowledged() {
    const WRITERS: usize = 4;
    let Some(schema) = Schema::fresh("terminated_connections_lose_nothing_acknowledged") else {
        return;
    };
    // A long statement timeout: every failure here must come from the
    // terminations, whose transactions are decided when the error arrives.
    // Plain swaps, recorded ones (each its own statement) and recorded ones
    // with group commit, each on a store of its own.
    let options = PgOptions::new()
        .with_pool_size(3)
        .with_statement_timeout(Duration::from_secs(60));
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(counter::Live::default());
    let fleet = counter::Fleet::start(&schema, &options, WRITERS, &stop, &live);
    // The killer: terminates every connection of the stores, every 20 to
    // 60 ms, for 4 seconds.
    let terminated = Arc::new(AtomicU64::new(0));
    let killer = {
        let config = schema.admin_config();
        let name = schema.application_name();
        let (stop, terminated) = (Arc::clone(&stop), Arc::clone(&terminated));
        std::thread::spawn(move || {
            db::on_own_runtime(async move {
                let admin = db::connect(&config).await;
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(4) {
                    let row = admin
                        .query_one(
                            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
                             FROM pg_stat_activity WHERE application_name = $1",
                            &[&name],
                        )
                        .await
                        .unwrap();
                    let n: i64 = row.get(0);
                    terminated.fetch_add(n.try_into().unwrap(), Ordering::Relaxed);
                    let mut b = [0u8; 1];
                    getrandom::fill(&mut b).unwrap();
                    tokio::time::sleep(Duration::from_millis(20 + u64::from(b[0]) % 40)).await;
                }
                stop.store(true, Ordering::Relaxed);
            });
        })
    };
    killer.join().unwrap();
    let modes = fleet.finish(&schema);
    println!(
        "terminated {} connections",
        terminated.load(Ordering::Relaxed)
    );
    assert!(
        terminated.load(Ordering::Relaxed) > 0,
        "nothing was terminated"
    );
    assert!(
        live.errors.load(Ordering::Relaxed) > 0,
        "no call ever saw a terminated connection"
    );
    for mode in &modes {
        // The pool recovered: a call now succeeds.
        assert_eq!(
            mode.store
                .get(&format!("counter-{}", mode.name))
                .wait()
                .unwrap()
                .map(|r| r.version),
            Some(mode.tally.counter),
            "{}",
            mode.name
        );
    }
}

#[test]
fn only_the_documented_grants_are_needed() {
    let Some(schema) = Schema::fresh("only_the_documented_grants_are_needed") else {
        return;
    };
    // The owner migrates.
    let owner = schema.store(PgOptions::new());
    drop(owner);
    let role = format!("custody_signer_{}", db::random_hex(4));
    let password = format!("pw-{}", db::random_hex(12));
    schema.admin(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE custody_password_roles;
         GRANT USAGE ON SCHEMA {s} TO {role};
         GRANT SELECT, INSERT, UPDATE ON {s}.custody_state TO {role};",
        s = schema.name
    ));
    let mut config = schema.config();
    config.user(&role);
    config.password(password.as_str());
    let signer = PgStateStore::connect(config, PgOptions::new())
        .wait()
        .unwrap();
    conformance::state_store(&signer);
    // Nothing more: no migration, no other table.
    let e = signer.migrate().wait().unwrap_err();
    assert_eq!(e.kind(), "access-denied", "{e:?}");
    assert_eq!(pg_error(&e).sqlstate(), Some("42501"));
    // Without UPDATE, a swap is refused (and a create still works).
    schema.admin(&format!(
        "REVOKE UPDATE ON {}.custody_state FROM {role}",
        schema.name
    ));
    let e = signer
        .compare_and_swap("a", Some(6), b"x")
        .wait()
        .unwrap_err();
    assert_eq!(e.kind(), "access-denied", "{e:?}");
    assert_eq!(
        conformance::swapped(signer.compare_and_swap("new", None, b"x").wait().unwrap()),
        1
    );
    drop(signer);
    schema.admin(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

#[test]
fn passwords_never_show_in_debug_or_errors() {
    let Some(schema) = Schema::fresh("passwords_never_show_in_debug_or_errors") else {
        return;
    };
    let role = format!("custody_pw_{}", db::random_hex(4));
    let password = format!("Secret-{}", db::random_hex(12));
    schema.admin(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE custody_password_roles;
         GRANT USAGE ON SCHEMA {s} TO {role};",
        s = schema.name
    ));
    let with_password = |pw: &str| {
        let mut config = schema.config();
        config.user(&role);
        config.password(pw);
        config
    };
    // The right password: the store's Debug names the role, not the password.
    let store = PgStateStore::connect(with_password(&password), PgOptions::new())
        .wait()
        .unwrap();
    let debug = format!("{store:?}");
    assert!(debug.contains(&role), "{debug}");
    assert!(!debug.contains(&password), "{debug}");
    // An error from the store (no table in the search path for this role).
    let e = store.get("k").wait().unwrap_err();
    assert!(!db::everything_printed(&e).contains(&password));

    // A wrong password: access-denied, and neither the password given nor
    // the right one appears anywhere in the error.
    let wrong = format!("Wrong-{}", db::random_hex(12));
    let e = PgStateStore::connect(with_password(&wrong), PgOptions::new())
        .wait()
        .unwrap_err();
    assert_eq!(e.kind(), "access-denied", "{e:?}");
    assert_eq!(pg_error(&e).sqlstate(), Some("28P01"));
    let printed = db::everything_printed(&e);
    println!("{debug}\n{printed}");
    assert!(!printed.contains(&wrong), "{printed}");
    assert!(!printed.contains(&password), "{printed}");
    // No password at all, where the server asks for one.
    let mut config = schema.config();
    config.user(&role);
    let e = PgStateStore::connect(config, PgOptions::new())
        .wait()
        .unwrap_err();
    assert_eq!(e.kind(), "access-denied", "{e:?}");
    drop(store);
    schema.admin(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

#[test]
fn rows_that_break_the_schema_are_malformed_never_trusted() {
    let Some(schema) = Schema::fresh("rows_that_break_the_schema_are_malformed_never_trusted")
    else {
        return;
    };
    let store = schema.store(PgOptions::new());
    // Someone writes nonsense (schema version 4 has no CHECK constraints
    // on this table; the NOT NULL is dropped by hand).
    schema.admin(
        "ALTER TABLE custody_state ALTER COLUMN value DROP NOT NULL;
         INSERT INTO custody_state VALUES ('zero', 0, 'v'), ('negative', -5, 'v'),
             ('null', 3, NULL), ('huge', 1, decode(repeat('00', 65537), 'hex'));",
    );
    for key in ["zero", "negative", "null", "huge"] {
        let e = store.get(key).wait().unwrap_err();
        assert_eq!(e.kind(), "malformed", "{key}: {e:?}");
        // A conflict's re-read is checked too.
        let e = store.compare_and_swap(key, None, b"x").wait().unwrap_err();
        assert_eq!(e.kind(), "malformed", "{key}: {e:?}");
    }
    // A column of another type: refused, not reinterpreted.
    schema.admin(
        "CREATE TABLE custody_state_moved AS SELECT * FROM custody_state;
         DROP TABLE custody_state;
         CREATE TABLE custody_state (key bytea PRIMARY KEY, version integer NOT NULL, value text NOT NULL);
         INSERT INTO custody_state VALUES ('typed', 1, 'text');",
    );
    let fresh = PgStateStore::connect(schema.config(), PgOptions::new())
        .wait()
        .unwrap();
    let e = fresh.get("typed").wait().unwrap_err();
    assert_eq!(e.kind(), "malformed", "{e:?}");
}

#[test]
fn timeouts_are_unavailable_and_the_pool_recovers() {
    let Some(schema) = Schema::fresh("timeouts_are_unavailable_and_the_pool_recovers") else {
        return;
    };
    let store = schema.store(
        PgOptions::new()
            .with_pool_size(1)
            .with_statement_timeout(Duration::from_millis(1000))
            .with_acquire_timeout(Duration::from_millis(100)),
    );
    assert_eq!(
        conformance::swapped(store.compare_and_swap("k", None, b"1").wait().unwrap()),
        1
    );
    // Another session holds the row lock until told to let go.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let config = schema.admin_config();
    let holder = std::thread::spawn(move || {
        db::on_own_runtime(async move {
            let mut admin = db::connect(&config).await;
            let tx = admin.transaction().await.unwrap();
            tx.execute(
                "SELECT 1 FROM custody_state WHERE key = 'k' FOR UPDATE",
                &[],
            )
            .await
            .unwrap();
            locked_tx.send(()).unwrap();
            tokio::task::spawn_blocking(move || release_rx.recv().unwrap())
                .await
                .unwrap();
            tx.rollback().await.unwrap();
        });
    });
    locked_rx.recv().unwrap();
    // The swap waits on the lock past the statement timeout...
    let store = Arc::new(store);
    let swapping = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.compare_and_swap("k", Some(1), b"2").wait())
    };
    // ...while a second call finds the only connection busy.
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    let e = store.get("k").wait().unwrap_err();
    assert_eq!(e.kind(), "unavailable", "{e:?}");
    assert!(pg_error(&e).to_string().contains("free connection"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The server cancelled the swap at its statement timeout.
    let e = swapping.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), "unavailable", "{e:?}");
    assert_eq!(pg_error(&e).sqlstate(), Some("57014"), "{e:?}");
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    // The cancelled swap did not land (the server rolled it back, so it
    // cannot commit once the lock is free); the pool goes on with a fresh
    // connection.
    let now = store.get("k").wait().unwrap();
    assert_eq!(now, conformance::v(1, b"1"));
    assert_eq!(
        conformance::swapped(store.compare_and_swap("k", Some(1), b"2").wait().unwrap()),
        2
    );
}

#[test]
fn an_unreachable_server_is_unavailable() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config: custody_postgres::tokio_postgres::Config =
        format!("postgres://nobody:hunter2@127.0.0.1:{port}/none")
            .parse()
            .unwrap();
    let started = Instant::now();
    let e = PgStateStore::connect(config, PgOptions::new())
        .wait()
        .unwrap_err();
    assert_eq!(e.kind(), "unavailable", "{e:?}");
    let pg = pg_error(&e);
    assert!(pg.is_retryable());
    assert_eq!(pg.operation(), "connect");
    assert!(!db::everything_printed(&e).contains("hunter2"));
    assert!(started.elapsed() < Duration::from_secs(5));
    // A black hole: the connect timeout bounds it.
    let config: custody_postgres::tokio_postgres::Config =
        "postgres://nobody@192.0.2.1:5432/none".parse().unwrap();
    let started = Instant::now();
    let e = db::wait_at_most(
        PgStateStore::connect(
            config,
            PgOptions::new().with_connect_timeout(Duration::from_millis(300)),
        ),
        Duration::from_secs(10),
    )
    .unwrap_err();
    assert_eq!(e.kind(), "unavailable", "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn bad_options_are_refused_before_any_io() {
    let config: custody_postgres::tokio_postgres::Config =
        "postgres://u@127.0.0.1:1/db?sslmode=require"
            .parse()
            .unwrap();
    let p = PgStateStore::connect(config, PgOptions::new());
    assert!(p.is_ready());
    let e = p.wait().unwrap_err();
    assert_eq!(e.kind(), "bad-input", "{e:?}");
    let config: custody_postgres::tokio_postgres::Config =
        "postgres://u@127.0.0.1:1/db".parse().unwrap();
    let e = PgStateStore::connect(config, PgOptions::new().with_pool_size(0))
        .wait()
        .unwrap_err();
    assert_eq!(e.kind(), "bad-input", "{e:?}");
    // Keys and values out of range: refused ready, with no connection.
    let Some(schema) = Schema::fresh("bad_options_are_refused_before_any_io") else {
        return;
    };
    let store = schema.store(PgOptions::new());
    let p = store.get("");
    assert!(p.is_ready());
    assert!(matches!(p.wait(), Err(Error::InvalidStateRecord(_))));
    let too_big = vec![0; custody_core::MAX_STATE_VALUE_BYTES + 1];
    let p = store.compare_and_swap("k", None, &too_big);
    assert!(p.is_ready());
    assert!(matches!(p.wait(), Err(Error::InvalidStateRecord(_))));
    // A version past the bigint range cannot match; one at its end cannot
    // be swapped further.
    assert_eq!(
        conformance::conflict(
            store
                .compare_and_swap("k", Some(u64::MAX), b"x")
                .wait()
                .unwrap()
        ),
        None
    );
    schema.admin(&format!(
        "INSERT INTO custody_state VALUES ('max', {}, 'v')",
        i64::MAX
    ));
    let e = store
        .compare_and_swap("max", Some(i64::MAX as u64), b"x")
        .wait()
        .unwrap_err();
    assert!(matches!(e, Error::InvalidStateRecord(_)), "{e:?}");
    assert_eq!(
        conformance::conflict(store.compare_and_swap("max", Some(7), b"x").wait().unwrap()),
        conformance::v(i64::MAX as u64, b"v")
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_connections_verify_the_server() {
    use custody_postgres::rustls;

    let Some(schema) = Schema::fresh("tls_connections_verify_the_server") else {
        return;
    };
    let Ok(ca) = std::env::var("CUSTODY_TEST_POSTGRES_CA") else {
        println!("skipped tls_connections_verify_the_server: set CUSTODY_TEST_POSTGRES_CA");
        return;
    };
    let pem = std::fs::read(ca).unwrap();
    let client_config = |roots: rustls::RootCertStore| {
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
    };
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let store = PgStateStore::connect(
        schema.config(),
        PgOptions::new().with_tls(client_config(roots)),
    )
    .wait()
    .unwrap();
    assert!(format!("{store:?}").contains("tls: true"));
    assert_eq!(
        store.migrate().wait().unwrap(),
        custody_postgres::SCHEMA_VERSION
    );
    conformance::state_store(&store);
    // The server agrees the store's connections are encrypted.
    let count = |ssl: bool| {
        schema.admin_i64(&format!(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.application_name = '{}' AND s.ssl = {ssl}",
            schema.application_name()
        ))
    };
    assert!(count(true) >= 1);
    assert_eq!(
        count(false),
        0,
        "a connection of the TLS store is not encrypted"
    );
    // A server whose certificate the roots do not vouch for is refused.
    let e = PgStateStore::connect(
        schema.config(),
        PgOptions::new().with_tls(client_config(rustls::RootCertStore::empty())),
    )
    .wait()
    .unwrap_err();
    assert_eq!(e.kind(), "backend", "{e:?}");
    assert!(pg_error(&e).to_string().contains("TLS"), "{e}");
}
