//! A counter that writers increment with compare-and-swap under faults
//! (connections terminated, the server restarted), where each writer also
//! keeps its own tally in the record: after a call fails, the writer reads
//! the record again and its tally says whether the failed swap landed (a
//! commit whose acknowledgement was lost) or not. So the final check is
//! exact: the counter equals the sum of the tallies, and each tally equals
//! the swaps its writer saw acknowledged plus those it found had landed —
//! nothing acknowledged lost, nothing applied twice, nothing phantom.
//!
//! A writer commits either a plain swap or, as a gated signature does, a
//! recorded one (the swap and an audit record on the writer's own chain in
//! one commit): then each writer's chain must hold exactly one record per
//! swap of its that landed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use custody_core::{
    AuditEvent, AuditOp, AuditOutcome, AuditSink, CasOutcome, Error, RecordedSwaps, StateStore,
    Swap, Versioned,
};

/// The counter and each writer's tally: big-endian u64s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) counter: u64,
    pub(crate) per_writer: Vec<u64>,
}

impl Tally {
    pub(crate) fn decode(record: Option<&Versioned>, writers: usize) -> Self {
        let Some(record) = record else {
            return Self {
                counter: 0,
                per_writer: vec![0; writers],
            };
        };
        let words: Vec<u64> = record
            .value
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(words.len(), 1 + writers, "a record of another layout");
        Self {
            counter: words[0],
            per_writer: words[1..].to_vec(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        std::iter::once(self.counter)
            .chain(self.per_writer.iter().copied())
            .flat_map(u64::to_be_bytes)
            .collect()
    }
}

/// What one writer saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct WriterReport {
    /// Swaps acknowledged (`Swapped`).
    pub(crate) acked: u64,
    /// Swaps that failed with an error but were found to have landed.
    pub(crate) recovered: u64,
    /// Swaps that failed with an error (outcome unknown until read).
    pub(crate) failed_swaps: u64,
    /// Reads that failed with an error.
    pub(crate) failed_reads: u64,
    /// Swaps that lost a race (`Conflict`).
    pub(crate) conflicts: u64,
}

impl WriterReport {
    /// The writer's swaps that are in the record.
    pub(crate) fn landed(&self) -> u64 {
        self.acked + self.recovered
    }
}

/// Counters the test samples while writers run.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) acks: AtomicU64,
    pub(crate) errors: AtomicU64,
}

/// Every error under these faults must be a typed, retryable one.
fn check(e: &Error) {
    assert_eq!(e.kind(), "unavailable", "{e:?}");
    let pg = super::db::pg_error(e);
    assert!(pg.is_retryable(), "{pg:?}");
}

/// Reads `key`, retrying errors (each must be `unavailable`) for up to a
/// minute.
pub(crate) fn read_until_ok(
    store: &dyn StateStore,
    key: &str,
    report: &mut WriterReport,
    live: &Live,
) -> Option<Versioned> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match store.get(key).wait() {
            Ok(record) => return record,
            Err(e) => {
                check(&e);
                report.failed_reads += 1;
                live.errors.fetch_add(1, Ordering::Relaxed);
                assert!(
                    Instant::now() < deadline,
                    "the store never recovered: {e:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// How a writer commits its increment.
#[derive(Clone, Copy)]
pub(crate) enum Commit<'a> {
    /// [`StateStore::compare_and_swap`].
    Plain,
    /// [`StateStore::compare_and_swap_all_recorded`] into `log`, each
    /// writer's records on the chain of wallet [`writer_wallet`]`(prefix, w)`.
    Recorded {
        log: &'a dyn AuditSink,
        prefix: &'a str,
    },
}

/// The wallet whose chain writer `w`'s records go to.
pub(crate) fn writer_wallet(prefix: &str, w: usize) -> String {
    format!("{prefix}-{w}")
}

/// Commits `next` over `expected` under `key` as `commit` says: the new
/// version, or the record's version now on a conflict (`Err`).
fn commit_once(
    store: &dyn StateStore,
    commit: Commit<'_>,
    key: &str,
    expected: Option<u64>,
    next: &Tally,
    w: usize,
) -> Result<Result<u64, Option<u64>>, Error> {
    let bytes = next.encode();
    match commit {
        Commit::Plain => Ok(
            match store.compare_and_swap(key, expected, &bytes).wait()? {
                CasOutcome::Swapped { version } => Ok(version),
                CasOutcome::Conflict { current } => Err(current.map(|c| c.version)),
            },
        ),
        Commit::Recorded { log, prefix } => {
            let event = AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success)
                .with_wallet(&writer_wallet(prefix, w))
                .with_index(u32::try_from(next.per_writer[w]).unwrap());
            let swaps = [Swap::write(key, expected, &bytes)];
            Ok(
                match store
                    .compare_and_swap_all_recorded(&swaps, event, log)
                    .wait()?
                {
                    RecordedSwaps::Swapped { versions, .. } => Ok(versions[0]),
                    RecordedSwaps::Conflict { index, current } => {
                        assert_eq!(index, 0);
                        Err(current.map(|c| c.version))
                    }
                },
            )
        }
    }
}

/// Writer `w` of `writers` increments the counter under `key` until `stop`,
/// committing as `commit` says.
pub(crate) fn run_writer(
    store: &dyn StateStore,
    commit: Commit<'_>,
    key: &str,
    w: usize,
    writers: usize,
    stop: &AtomicBool,
    live: &Live,
) -> WriterReport {
    let mut report = WriterReport::default();
    while !stop.load(Ordering::Relaxed) {
        let current = read_until_ok(store, key, &mut report, live);
        let tally = Tally::decode(current.as_ref(), writers);
        assert_eq!(
            tally.per_writer[w],
            report.landed(),
            "writer {w}: the record disagrees with the swaps the writer knows landed"
        );
        let mut next = tally.clone();
        next.counter += 1;
        next.per_writer[w] += 1;
        let expected = current.as_ref().map(|c| c.version);
        match commit_once(store, commit, key, expected, &next, w) {
            Ok(Ok(version)) => {
                assert_eq!(version, expected.map_or(1, |v| v + 1));
                report.acked += 1;
                live.acks.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(now)) => {
                assert_ne!(now, expected);
                report.conflicts += 1;
            }
            Err(e) => {
                check(&e);
                report.failed_swaps += 1;
                live.errors.fetch_add(1, Ordering::Relaxed);
                // Not acknowledged: did it land? The connection it ran on
                // is gone, so its transaction is decided.
                let now = read_until_ok(store, key, &mut report, live);
                let mine = Tally::decode(now.as_ref(), writers).per_writer[w];
                if mine == report.landed() + 1 {
                    report.recovered += 1;
                } else {
                    assert_eq!(mine, report.landed(), "writer {w}: a swap landed twice");
                }
            }
        }
    }
    report
}

/// After the writers stopped: the record holds exactly what they landed.
pub(crate) fn check_final(store: &dyn StateStore, key: &str, reports: &[WriterReport]) -> Tally {
    let mut spare = WriterReport::default();
    let record = read_until_ok(store, key, &mut spare, &Live::default());
    let tally = Tally::decode(record.as_ref(), reports.len());
    for (w, r) in reports.iter().enumerate() {
        assert_eq!(tally.per_writer[w], r.landed(), "writer {w}: {r:?}");
    }
    let landed: u64 = reports.iter().map(WriterReport::landed).sum();
    assert_eq!(
        tally.counter, landed,
        "the counter is not the sum of the landed swaps"
    );
    assert_eq!(
        record.map(|r| r.version),
        (landed > 0).then_some(landed),
        "one version per swap"
    );
    tally
}

/// After recorded writers stopped: writer `w`'s chain (of wallet
/// [`writer_wallet`]`(prefix, w)`) holds exactly one record per swap of its
/// that landed, indexed 1, 2, … in order: no swap without its record, no
/// record of a swap that did not land, none twice.
pub(crate) fn check_records(schema: &super::db::Schema, prefix: &str, reports: &[WriterReport]) {
    for (w, r) in reports.iter().enumerate() {
        let chain = format!("wallet:{}", writer_wallet(prefix, w));
        let lines = schema.chain_lines(&chain);
        let indices: Vec<u64> = lines
            .lines()
            .map(|l| {
                let record = custody_core::AuditRecord::from_line(l).unwrap();
                record.event().field("index").unwrap().parse().unwrap()
            })
            .collect();
        let expected: Vec<u64> = (1..=r.landed()).collect();
        assert_eq!(
            indices, expected,
            "writer {w}: the records on {chain} against the swaps landed: {r:?}"
        );
    }
}

/// The ways writers commit under a fault, each on a store of its own over
/// the same database: name, recorded, commit batch.
const MODES: [(&str, bool, usize); 3] = [
    // Plain swaps.
    ("plain", false, 1),
    // Recorded swaps, each its own statement (the default).
    ("recorded", true, 1),
    // Recorded swaps with group commit: batches of the writers' commits.
    ("batched", true, 32),
];

/// `writers` writers per mode ([`MODES`]), running until `stop`.
pub(crate) struct Fleet {
    modes: Vec<Mode>,
}

/// One mode's store and its writers' threads.
struct Mode {
    name: &'static str,
    store: std::sync::Arc<custody_postgres::PgStateStore>,
    writers: Vec<std::thread::JoinHandle<WriterReport>>,
}

/// What one mode's writers did, checked.
pub(crate) struct ModeReport {
    pub(crate) name: &'static str,
    pub(crate) tally: Tally,
    pub(crate) store: std::sync::Arc<custody_postgres::PgStateStore>,
}

impl Fleet {
    /// Starts the writers: each mode's store opened with `options` (and its
    /// commit batch), its counter under `counter-<mode>`.
    pub(crate) fn start(
        schema: &super::db::Schema,
        options: &custody_postgres::PgOptions,
        writers: usize,
        stop: &std::sync::Arc<AtomicBool>,
        live: &std::sync::Arc<Live>,
    ) -> Self {
        use std::sync::Arc;
        let modes = MODES
            .iter()
            .map(|&(name, recorded, batch)| {
                let store = Arc::new(schema.store(options.clone().with_commit_batch(batch)));
                let handles = (0..writers)
                    .map(|w| {
                        let (store, stop, live) =
                            (Arc::clone(&store), Arc::clone(stop), Arc::clone(live));
                        std::thread::spawn(move || {
                            let log = store.audit_log();
                            let commit = if recorded {
                                Commit::Recorded {
                                    log: &log,
                                    prefix: name,
                                }
                            } else {
                                Commit::Plain
                            };
                            let key = format!("counter-{name}");
                            run_writer(&*store, commit, &key, w, writers, &stop, &live)
                        })
                    })
                    .collect();
                Mode {
                    name,
                    store,
                    writers: handles,
                }
            })
            .collect();
        Self { modes }
    }

    /// Joins the writers (after `stop`) and checks each mode: its writers
    /// had swaps acknowledged, the counter holds exactly what they landed
    /// ([`check_final`]), and a recorded mode's chains exactly their
    /// records ([`check_records`]).
    pub(crate) fn finish(self, schema: &super::db::Schema) -> Vec<ModeReport> {
        self.modes
            .into_iter()
            .map(|Mode { name, store, writers }| {
                let reports: Vec<_> = writers.into_iter().map(|h| h.join().unwrap()).collect();
                let tally = check_final(&*store, &format!("counter-{name}"), &reports);
                if MODES.iter().any(|&(n, recorded, _)| n == name && recorded) {
                    check_records(schema, name, &reports);
                }
                let sum = |f: fn(&WriterReport) -> u64| reports.iter().map(f).sum::<u64>();
                println!(
                    "{name}: counter {} = {} acknowledged + {} found landed after an error; {} failed swaps, {} failed reads (all `unavailable`), {} conflicts",
                    tally.counter,
                    sum(|r| r.acked),
                    sum(|r| r.recovered),
                    sum(|r| r.failed_swaps),
                    sum(|r| r.failed_reads),
                    sum(|r| r.conflicts),
                );
                assert!(sum(|r| r.acked) > 0, "{name}: nothing acknowledged");
                ModeReport {
                    name,
                    tally,
                    store,
                }
            })
            .collect()
    }
}
