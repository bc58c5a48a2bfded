//! Batched reads (`PgOptions::with_read_batch`) against a real PostgreSQL:
//! many concurrent callers over overlapping keys each get their own
//! records, never older than their own acknowledged writes; a batch whose
//! connection is terminated fails every caller with the retryable kind and
//! the next batch recovers.
//!
//! The server is the one `CUSTODY_TEST_POSTGRES_URL` names; without it each
//! test is skipped, saying so.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[allow(dead_code, reason = "shared with the other test binaries")]
#[path = "support/db.rs"]
mod db;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use custody_core::{CasOutcome, StateStore, Versioned, conformance};
use custody_postgres::{PgOptions, PgStateStore};

use db::Schema;

/// A small deterministic generator (xorshift64*), seeded per thread, so
/// that a failure names a seed that reproduces its key sets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }
}

/// The shared keys: `shared-0` … `shared-23`, of which every third is never
/// written (absent), and the rest written `n % 5 + 1` times, each value
/// naming its key and version.
const SHARED: usize = 24;

fn shared(n: usize) -> String {
    format!("shared-{n}")
}

fn value(key: &str, version: u64) -> Vec<u8> {
    format!("{key}@{version}").into_bytes()
}

/// The state the shared keys are left in.
fn expected_shared(n: usize) -> Option<Versioned> {
    (n % 3 != 2).then(|| {
        let version = u64::try_from(n % 5 + 1).unwrap();
        Versioned {
            version,
            value: Arc::from(value(&shared(n), version)),
        }
    })
}

fn write(store: &PgStateStore, key: &str, expected: Option<u64>) -> u64 {
    let next = expected.map_or(1, |v| v + 1);
    match store
        .compare_and_swap(key, expected, &value(key, next))
        .wait()
        .unwrap()
    {
        CasOutcome::Swapped { version } => version,
        CasOutcome::Conflict { current } => panic!("{key}: conflict at {current:?}"),
    }
}

/// Many threads read random sets of the shared keys (1 to 16 keys,
/// duplicates and absent keys included) while each also writes keys of its
/// own and reads them back in the same calls: every answer is the records
/// of that caller's keys in its order, and a caller's own keys are exactly
/// what it last wrote (a batched read is never older than the caller's
/// acknowledged writes). The reads did share statements.
#[test]
fn concurrent_callers_each_get_their_own_keys_never_older_than_their_writes() {
    let Some(schema) = Schema::fresh("batched_reads_own_keys") else {
        return;
    };
    let store = schema.store(PgOptions::new().with_pool_size(4));
    for n in (0..SHARED).filter(|n| n % 3 != 2) {
        let mut version = None;
        for _ in 0..=n % 5 {
            version = Some(write(&store, &shared(n), version));
        }
    }
    let (batches_before, reads_before) = store.read_batches();
    const THREADS: usize = 16;
    const ROUNDS: usize = 60;
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                let seed = 0x9e37_79b9_7f4a_7c15 ^ (u64::try_from(t).unwrap() + 1);
                let mut rng = Rng(seed);
                let own = [format!("own-{t}-a"), format!("own-{t}-b")];
                let mut written: [Option<u64>; 2] = [None, None];
                start.wait();
                for round in 0..ROUNDS {
                    // Every other round, one of the caller's own keys moves
                    // on (acknowledged before the read below is issued).
                    if round % 2 == 0 {
                        let which = rng.below(2);
                        written[which] = Some(write(&store, &own[which], written[which]));
                    }
                    let len = 1 + rng.below(16);
                    let keys: Vec<String> = (0..len)
                        .map(|_| match rng.below(6) {
                            0 => own[rng.below(2)].clone(),
                            1 => format!("never-{}", rng.below(4)),
                            _ => shared(rng.below(SHARED)),
                        })
                        .collect();
                    let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let found = store.get_many(&asked).wait().unwrap();
                    assert_eq!(found.len(), asked.len(), "seed {seed:#x} round {round}");
                    for (key, got) in asked.iter().zip(&found) {
                        let want = if let Some(n) = key.strip_prefix("shared-") {
                            expected_shared(n.parse().unwrap())
                        } else if key.starts_with("never-") {
                            None
                        } else {
                            let which = usize::from(*key == own[1]);
                            written[which].map(|version| Versioned {
                                version,
                                value: Arc::from(value(key, version)),
                            })
                        };
                        assert_eq!(got, &want, "seed {seed:#x} round {round} key {key}");
                    }
                    // A lone key through `get` takes the same path.
                    let key = &own[rng.below(2)];
                    let which = usize::from(*key == own[1]);
                    let got = store.get(key).wait().unwrap();
                    assert_eq!(
                        got.map(|g| g.version),
                        written[which],
                        "seed {seed:#x} round {round} get {key}"
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let (batches, reads) = store.read_batches();
    let (batches, reads) = (batches - batches_before, reads - reads_before);
    let calls = u64::try_from(THREADS * ROUNDS * 2).unwrap();
    println!("{calls} reads in {batches} statements");
    assert_eq!(reads, calls, "every read went through the batcher");
    assert!(
        batches < reads,
        "concurrent reads shared statements ({batches} statements for {reads} reads)"
    );
}

/// A lone read is a batch of one, sent at once; batching off (`1`) sends
/// every read as its own statement and counts nothing.
#[test]
fn a_lone_read_goes_at_once_and_batching_turns_off() {
    let Some(schema) = Schema::fresh("batched_reads_lone") else {
        return;
    };
    let store = schema.store(PgOptions::new());
    write(&store, "k", None);
    let before = store.read_batches();
    assert_eq!(store.get("k").wait().unwrap(), conformance::v(1, b"k@1"));
    assert_eq!(
        store.get_many(&["absent", "k", "k"]).wait().unwrap(),
        [None, conformance::v(1, b"k@1"), conformance::v(1, b"k@1")]
    );
    let after = store.read_batches();
    assert_eq!((after.0 - before.0, after.1 - before.1), (2, 2));
    let off = schema.store(PgOptions::new().with_read_batch(1));
    assert_eq!(off.get("k").wait().unwrap(), conformance::v(1, b"k@1"));
    assert_eq!(off.read_batches(), (0, 0));
}

/// An administrator's transaction holding `custody_state` locked
/// (`ACCESS EXCLUSIVE`: every read waits on it) until released.
struct TableLock {
    release: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl TableLock {
    fn take(schema: &Schema) -> Self {
        let config = schema.admin_config();
        let (locked, is_locked) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            db::on_own_runtime(async move {
                let admin = db::connect(&config).await;
                admin
                    .batch_execute("BEGIN; LOCK TABLE custody_state IN ACCESS EXCLUSIVE MODE")
                    .await
                    .unwrap();
                locked.send(()).unwrap();
                tokio::task::spawn_blocking(move || released.recv())
                    .await
                    .unwrap()
                    .unwrap();
                admin.batch_execute("ROLLBACK").await.unwrap();
            });
        });
        is_locked.recv().unwrap();
        Self { release, thread }
    }

    fn release(self) {
        self.release.send(()).unwrap();
        self.thread.join().unwrap();
    }
}

/// Waits until a connection of the store waits on a lock.
fn until_waiting(schema: &Schema) {
    let started = Instant::now();
    while schema.admin_i64(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{}' AND wait_event_type = 'Lock'",
        schema.application_name()
    )) == 0
    {
        assert!(started.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Terminates the store's connections that wait on a lock; how many.
fn terminate_waiting(schema: &Schema) -> i64 {
    schema.admin_i64(&format!(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = '{}' AND wait_event_type = 'Lock'",
        schema.application_name()
    ))
}

/// A lone read waits on the table lock; three more queue behind it and
/// are sent as one batch once the first fails. Terminating that batch's
/// connection fails all three with `unavailable` (retryable); the next
/// batch, on a fresh connection, answers each caller its own records.
#[test]
fn a_batch_whose_connection_is_terminated_fails_every_caller_and_the_next_recovers() {
    let Some(schema) = Schema::fresh("batched_reads_terminated") else {
        return;
    };
    let store = schema.store(PgOptions::new().with_statement_timeout(Duration::from_secs(10)));
    for key in ["a", "b", "c"] {
        write(&store, key, None);
    }
    write(&store, "b", Some(1));
    let lock = TableLock::take(&schema);
    let (batches_before, reads_before) = store.read_batches();
    let spawn = |keys: &'static [&'static str]| {
        let store = store.clone();
        std::thread::spawn(move || store.get_many(keys).wait())
    };
    let lone = spawn(&["a"]);
    until_waiting(&schema);
    let queued = [spawn(&["a", "b"]), spawn(&["c"]), spawn(&["b", "absent"])];
    // They queue behind the lone read (one reader).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(terminate_waiting(&schema), 1);
    let e = lone.join().unwrap().unwrap_err();
    assert_eq!(e.kind(), "unavailable", "{e:?}");
    // The reader takes the three together, on a fresh connection, and
    // waits on the lock again.
    until_waiting(&schema);
    let (batches, reads) = store.read_batches();
    assert_eq!(
        (batches - batches_before, reads - reads_before),
        (2, 4),
        "the lone read, then the three queued in one batch"
    );
    assert_eq!(terminate_waiting(&schema), 1);
    for handle in queued {
        let e = handle.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), "unavailable", "{e:?}");
        assert!(db::pg_error(&e).is_retryable(), "{e:?}");
    }
    lock.release();
    // The next batch recovers: each caller its own records.
    let again = [spawn(&["a", "b"]), spawn(&["c"]), spawn(&["b", "absent"])];
    let answers: Vec<_> = again
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    let v = |n, value: &[u8]| conformance::v(n, value);
    assert_eq!(
        answers,
        [
            vec![v(1, b"a@1"), v(2, b"b@2")],
            vec![v(1, b"c@1")],
            vec![v(2, b"b@2"), None],
        ]
    );
    // The failed connections were closed, never reused: the store holds
    // no more than its pool.
    let open = schema.connections();
    assert!(open <= 4, "{open} connections");
}
