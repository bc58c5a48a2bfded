//! A counter that writers increment with compare-and-swap under faults
//! (connections terminated, the server restarted), where each writer also
//! keeps its own tally in the record: after a call fails, the writer reads
//! the record again and its tally says whether the failed swap landed (a
//! commit whose acknowledgement was lost) or not. So the final check is
//! exact: the counter equals the sum of the tallies, and each tally equals
//! the swaps its writer saw acknowledged plus those it found had landed —
//! nothing acknowledged lost, nothing applied twice, nothing phantom.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use custody_core::{CasOutcome, Error, StateStore, Versioned};

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

/// Writer `w` of `writers` increments the counter under `key` until `stop`.
pub(crate) fn run_writer(
    store: &dyn StateStore,
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
        match store.compare_and_swap(key, expected, &next.encode()).wait() {
            Ok(CasOutcome::Swapped { version }) => {
                assert_eq!(version, expected.map_or(1, |v| v + 1));
                report.acked += 1;
                live.acks.fetch_add(1, Ordering::Relaxed);
            }
            Ok(CasOutcome::Conflict { current: now }) => {
                assert_ne!(now.map(|c| c.version), expected);
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
