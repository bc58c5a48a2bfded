//! `PgAuditLog`'s `AuditSink::wallet_records` against a real PostgreSQL:
//! one wallet's records since a time, read from the time index and checked
//! link by link (what a policy node counts velocity limits from). The
//! records returned are exactly those appended for the wallet at or after
//! the bound (a late clock's record timed at its predecessor's time), and
//! every edit an administrator can make to the rows the answer depends on
//! (the records, and the `time_ms` column the index serves) is
//! `AuditChainBroken`, never a shorter answer.
//!
//! Without `CUSTODY_TEST_POSTGRES_URL` every test is skipped, saying so.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[allow(dead_code, reason = "shared with postgres.rs; this test uses a subset")]
#[path = "support/db.rs"]
mod db;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use custody_core::{
    AuditEvent, AuditHead, AuditOp, AuditOutcome, AuditRecord, AuditSink, DataKey, Error, KekId,
    KeyRef, KeySigner, LocalKek, SharedBackend, Vault, WalletScheme,
};
use custody_postgres::{PgAuditLog, PgOptions};

use db::Schema;

/// The times (ms) `clock` hands out, one per append, in order; each test
/// has its own.
struct Times(AtomicU64);

impl Times {
    const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

const T0: u64 = 1_800_000_000_000;

fn spend(wallet: &str, n: u32) -> AuditEvent {
    AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success)
        .with_wallet(wallet)
        .with_index(n)
}

/// Appends `event` at time `at` (through `times`, the log's clock).
fn append_at(log: &PgAuditLog, times: &Times, at: u64, event: AuditEvent) -> AuditHead {
    times.set(at);
    log.append(event).wait().unwrap()
}

/// (seq, time, index field) of each record: what the tests compare.
fn summary(records: &[AuditRecord]) -> Vec<(u64, u64, String)> {
    records
        .iter()
        .map(|r| {
            (
                r.seq(),
                r.time_ms(),
                r.event().field("index").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// A summary row: seq, `T0 + dt` ms, index.
fn row(seq: u64, dt: u64, index: &str) -> (u64, u64, String) {
    (seq, T0 + dt, index.to_owned())
}

fn chain_broken(result: Result<Vec<AuditRecord>, Error>) -> (u64, &'static str) {
    match result {
        Err(Error::AuditChainBroken { seq, reason }) => (seq, reason),
        other => panic!("expected AuditChainBroken, got {other:?}"),
    }
}

static ONE_WALLET: Times = Times::new();

#[test]
fn wallet_records_are_one_wallets_since_the_bound_late_clocks_clamped() {
    let Some(schema) = Schema::fresh("wallet_records_one_wallet") else {
        return;
    };
    let log = schema
        .store(PgOptions::new())
        .audit_log()
        .with_clock(|| ONE_WALLET.now());
    // Wallet a's records at seconds 1, 2, 3, then one from a replica whose
    // clock is behind (1.5 s, after the 3 s one), then 4; wallet b's and
    // an operations record interleaved, at the same times.
    let times_a = [1000, 2000, 3000, 1500, 4000];
    for (n, dt) in (0u32..).zip(times_a) {
        append_at(&log, &ONE_WALLET, T0 + dt, spend("a", n));
        append_at(&log, &ONE_WALLET, T0 + dt, spend("b", 100 + n));
        append_at(
            &log,
            &ONE_WALLET,
            T0 + dt,
            AuditEvent::new(AuditOp::UNWRAP, AuditOutcome::Success),
        );
    }
    let read = |wallet: &str, since| log.wallet_records(wallet, since).wait().unwrap();
    let all = read("a", 0);
    // The late clock's record is timed at its predecessor's 3 s: a chain's
    // times never go down.
    assert_eq!(
        summary(&all),
        [
            row(1, 1000, "0"),
            row(2, 2000, "1"),
            row(3, 3000, "2"),
            row(4, 3000, "3"),
            row(5, 4000, "4"),
        ]
    );
    assert!(all.iter().all(|r| r.event().field("wallet") == Some("a")));
    // The bound is inclusive; the late record counts from 3 s.
    assert_eq!(
        summary(&read("a", T0 + 2000)),
        [
            row(2, 2000, "1"),
            row(3, 3000, "2"),
            row(4, 3000, "3"),
            row(5, 4000, "4"),
        ]
    );
    assert_eq!(summary(&read("a", T0 + 3001)), [row(5, 4000, "4")]);
    assert!(read("a", T0 + 4001).is_empty());
    assert!(read("a", u64::MAX).is_empty());
    // Wallet b's own records, none of a's; a wallet never seen has none.
    let b = read("b", T0 + 3000);
    assert_eq!(
        summary(&b),
        [
            row(3, 3000, "102"),
            row(4, 3000, "103"),
            row(5, 4000, "104")
        ]
    );
    assert!(read("nobody", 0).is_empty());
    // The records are the ones the log keeps, line for line.
    let config = schema.admin_config();
    let kept: Vec<String> = db::on_own_runtime(async move {
        let client = db::connect(&config).await;
        client
            .query(
                "SELECT record FROM custody_audit WHERE chain = 'wallet:a' ORDER BY seq",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    });
    let lines: Vec<String> = all.iter().map(|r| r.to_line().unwrap()).collect();
    assert_eq!(lines, kept);
}

static FAST_REPLICA: Times = Times::new();
static SLOW_REPLICA: Times = Times::new();

/// Two replicas (two stores: two pools, two caches of chain tips) whose
/// clocks disagree: the slow one's append, after the fast one's, is timed
/// at the fast one's record (read back with the chain's last row, its
/// tip not cached), so the chain's times never go down; and each replica
/// then goes on from its own clock where that is later.
#[test]
fn a_replica_with_a_slow_clock_appends_at_its_predecessors_time() {
    let Some(schema) = Schema::fresh("wallet_records_two_replicas") else {
        return;
    };
    let fast = schema
        .store(PgOptions::new())
        .audit_log()
        .with_clock(|| FAST_REPLICA.now());
    let slow = schema
        .store(PgOptions::new())
        .audit_log()
        .with_clock(|| SLOW_REPLICA.now());
    // The slow replica writes first (its tip is then cached), the fast one
    // next, then the slow one again: its cached tip is stale, the insert
    // refuses it, and the tip it reads back carries the fast one's time.
    append_at(&slow, &SLOW_REPLICA, T0 + 1000, spend("a", 1));
    append_at(&fast, &FAST_REPLICA, T0 + 5000, spend("a", 2));
    append_at(&slow, &SLOW_REPLICA, T0 + 2000, spend("a", 3));
    append_at(&slow, &SLOW_REPLICA, T0 + 6000, spend("a", 4));
    assert_eq!(
        summary(&slow.wallet_records("a", 0).wait().unwrap()),
        [
            row(1, 1000, "1"),
            row(2, 5000, "2"),
            row(3, 5000, "3"),
            row(4, 6000, "4"),
        ]
    );
    // A window from 3 s counts the slow replica's record of "2 s" too: it
    // was appended after a 5 s one.
    assert_eq!(fast.wallet_records("a", T0 + 3000).wait().unwrap().len(), 3);
    assert!(fast.verify(None).wait().unwrap().broken.is_none());
}

#[test]
fn the_time_bound_is_served_by_the_index() {
    let Some(schema) = Schema::fresh("wallet_records_index") else {
        return;
    };
    let _store = schema.store(PgOptions::new());
    // 20 000 records of one chain, times rising; the plan for the last
    // few hundred must use the time index, not walk the chain.
    schema.admin(
        r#"INSERT INTO custody_audit (chain, seq, hash, record, time_ms)
         SELECT 'wallet:w', g, decode(repeat('00', 32), 'hex'),
         '{"seq":' || g || ',"time":' || (1000 + g) || ',"prev":"00"}', 1000 + g
         FROM generate_series(1, 20000) g; ANALYZE custody_audit"#,
    );
    let config = schema.admin_config();
    let plan: Vec<String> = db::on_own_runtime(async move {
        let client = db::connect(&config).await;
        client
            .query(
                "EXPLAIN SELECT min(seq + 0) FROM custody_audit WHERE chain = 'wallet:w' \
                 AND time_ms >= 20700",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    });
    assert!(
        plan.iter()
            .any(|l| l.contains("custody_audit_chain_time_ms")),
        "{plan:#?}"
    );
}

static UPGRADED_2: Times = Times::new();
static UPGRADED_3: Times = Times::new();

/// A log left by an earlier library (`version` 2 or 3: its records, no
/// `time_ms` column, version 3's expression index if 3, the CHECK
/// constraints of version 1) migrated to this one in place: every row
/// gains its record's time (a line that is no canonical record, 0), the
/// index is version 4's alone, and the records since a time are read
/// through it.
fn upgraded_in_place(test: &str, version: i64, times: &'static Times, clock: fn() -> u64) {
    let Some(schema) = Schema::fresh(test) else {
        return;
    };
    let store = schema.store(PgOptions::new());
    let log = store.audit_log().with_clock(clock);
    for n in 1..=3u32 {
        append_at(&log, times, T0 + u64::from(n) * 1000, spend("a", n));
    }
    // Back to what that library left.
    schema.admin(
        r#"DROP INDEX custody_audit_chain_time_ms;
         ALTER TABLE custody_audit DROP COLUMN time_ms;
         ALTER TABLE custody_state ADD CHECK (version >= 1);
         ALTER TABLE custody_audit ADD CHECK (seq >= 1);
         INSERT INTO custody_audit (chain, seq, hash, record)
             VALUES ('-', 1, decode(repeat('00', 32), 'hex'), 'not a record');
         DELETE FROM custody_schema_version WHERE version = 4"#,
    );
    if version == 3 {
        schema.admin(
            r#"CREATE INDEX custody_audit_chain_time ON custody_audit (chain,
                ((substring(record from '^\{"seq":[0-9]{1,19},"time":([0-9]{1,18}),'))::bigint))"#,
        );
    } else {
        schema.admin("DELETE FROM custody_schema_version WHERE version = 3");
    }
    assert_eq!(store.migrate().wait().unwrap(), 4);
    let count = |sql: &str| schema.admin_i64(sql);
    assert_eq!(
        count(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() \
             AND indexname LIKE 'custody_audit_chain_time%'"
        ),
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() \
             AND indexname = 'custody_audit_chain_time_ms'"
        ),
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'c' \
             AND conrelid IN ('custody_state'::regclass, 'custody_audit'::regclass)"
        ),
        0
    );
    assert_eq!(
        count("SELECT time_ms FROM custody_audit WHERE chain = '-'"),
        0
    );
    // Each record's column is its record's time (the reader checks every
    // row it reads against its record).
    assert_eq!(
        summary(&log.wallet_records("a", T0 + 2000).wait().unwrap()),
        [row(2, 2000, "2"), row(3, 3000, "3")]
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM custody_audit WHERE chain = 'wallet:a' \
             AND time_ms = 1800000000000 + seq * 1000"
        ),
        3
    );
    // And the log appends on.
    append_at(&log, times, T0 + 4000, spend("a", 4));
    assert_eq!(log.wallet_records("a", T0 + 3500).wait().unwrap().len(), 1);
}

#[test]
fn a_version_2_log_gains_the_time_column_in_place() {
    upgraded_in_place("wallet_records_upgrade_2", 2, &UPGRADED_2, || {
        UPGRADED_2.now()
    });
}

#[test]
fn a_version_3_log_gains_the_time_column_in_place() {
    upgraded_in_place("wallet_records_upgrade_3", 3, &UPGRADED_3, || {
        UPGRADED_3.now()
    });
}

static EDITED: Times = Times::new();
static TIMED: Times = Times::new();
static CUT: Times = Times::new();

/// A fixture's clock: each test has its own (tests run at once).
type Clock = (&'static Times, fn() -> u64);
const EDITED_CLOCK: Clock = (&EDITED, || EDITED.now());
const TIMED_CLOCK: Clock = (&TIMED, || TIMED.now());
const CUT_CLOCK: Clock = (&CUT, || CUT.now());

/// Wallet `a`'s records at seconds 1..=6 (seq 1..=6).
fn edit_fixture(test: &str, (times, clock): Clock) -> Option<(Schema, PgAuditLog)> {
    let schema = Schema::fresh(test)?;
    let log = schema.store(PgOptions::new()).audit_log().with_clock(clock);
    for n in 1..=6u32 {
        append_at(&log, times, T0 + u64::from(n) * 1000, spend("a", n));
    }
    Some((schema, log))
}

/// The record `seq` of wallet `a` re-sealed with its time set to `time_ms`
/// (a consistent hash: what an editor who knows the format writes).
fn resealed(log: &PgAuditLog, seq: u64, time_ms: u64) -> AuditRecord {
    let record = log
        .wallet_records("a", 0)
        .wait()
        .unwrap()
        .into_iter()
        .find(|r| r.seq() == seq)
        .unwrap();
    AuditRecord::seal(
        &AuditHead {
            seq: seq - 1,
            hash: *record.prev(),
        },
        time_ms,
        record.event().clone(),
    )
    .unwrap()
}

fn overwrite(schema: &Schema, record: &AuditRecord) {
    schema.admin(&format!(
        "UPDATE custody_audit SET record = '{}', hash = decode('{}', 'hex'), time_ms = {} \
         WHERE chain = 'wallet:a' AND seq = {}",
        record.to_line().unwrap(),
        hex::encode(record.hash()),
        record.time_ms(),
        record.seq()
    ));
}

#[test]
fn an_edited_row_in_or_at_the_window_is_a_broken_chain() {
    let since = T0 + 4000;
    // Untouched: seq 4, 5, 6.
    let Some((schema, log)) = edit_fixture("wallet_records_edited", EDITED_CLOCK) else {
        return;
    };
    assert_eq!(
        log.wallet_records("a", since)
            .wait()
            .unwrap()
            .iter()
            .map(AuditRecord::seq)
            .collect::<Vec<_>>(),
        [4, 5, 6]
    );
    // A spend in the window edited in place (hash left as it was).
    schema.admin(
        "UPDATE custody_audit SET record = replace(record, '\"index\":\"5\"', '\"index\":\"0\"') \
         WHERE chain = 'wallet:a' AND seq = 5",
    );
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (5, "hash does not match the record's contents")
    );

    // The window's first record moved out of it, re-hashed: its
    // successor's link gives it away.
    let Some((schema, log)) = edit_fixture("wallet_records_moved_out", EDITED_CLOCK) else {
        return;
    };
    overwrite(&schema, &resealed(&log, 4, T0));
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (5, "prev is not the previous record's hash")
    );

    // A record dropped from the window.
    let Some((schema, log)) = edit_fixture("wallet_records_dropped", EDITED_CLOCK) else {
        return;
    };
    schema.admin("DELETE FROM custody_audit WHERE chain = 'wallet:a' AND seq = 5");
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (
            5,
            "sequence number is not the next one (record dropped, inserted or moved)"
        )
    );

    // The predecessor the read starts from, dropped.
    let Some((schema, log)) = edit_fixture("wallet_records_no_predecessor", EDITED_CLOCK) else {
        return;
    };
    schema.admin("DELETE FROM custody_audit WHERE chain = 'wallet:a' AND seq = 3");
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (
            3,
            "sequence number is not the next one (record dropped, inserted or moved)"
        )
    );

    // Another wallet's record copied into the window's place.
    let Some((schema, log)) = edit_fixture("wallet_records_moved_in", EDITED_CLOCK) else {
        return;
    };
    let b = log.append(spend("b", 9)).wait().unwrap();
    assert_eq!(b.seq, 1);
    schema.admin(
        "UPDATE custody_audit SET record = (SELECT record FROM custody_audit \
         WHERE chain = 'wallet:b' AND seq = 1) WHERE chain = 'wallet:a' AND seq = 6",
    );
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()).0,
        6,
        "a record of wallet b at a's seq 6"
    );

    // Edits before the predecessor are not this read's to see (nothing
    // there is counted): the whole-log verify finds them.
    let Some((schema, log)) = edit_fixture("wallet_records_old_edit", EDITED_CLOCK) else {
        return;
    };
    schema.admin(
        "UPDATE custody_audit SET record = replace(record, '\"index\":\"1\"', '\"index\":\"0\"') \
         WHERE chain = 'wallet:a' AND seq = 1",
    );
    assert_eq!(log.wallet_records("a", since).wait().unwrap().len(), 3);
    assert!(log.verify(None).wait().unwrap().broken.is_some());
}

/// Sets the `time_ms` column of wallet `a`'s rows `seqs` to `time_ms`, as
/// someone with UPDATE on the table would to hide spends from a window.
fn write_time(schema: &Schema, seqs: &str, time_ms: u64) {
    schema.admin(&format!(
        "UPDATE custody_audit SET time_ms = {time_ms} WHERE chain = 'wallet:a' AND seq IN ({seqs})"
    ));
}

const TIME_DIFFERS: &str = "the row's time column differs from its record";

#[test]
fn a_time_column_written_by_hand_is_a_broken_chain() {
    let since = T0 + 4000;
    // One in-window row's column written down: read, and refused.
    let Some((schema, log)) = edit_fixture("wallet_records_time_one", TIMED_CLOCK) else {
        return;
    };
    write_time(&schema, "5", T0);
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (5, TIME_DIFFERS)
    );
    // The whole-log verification names the same row.
    let broken = log.verify(None).wait().unwrap().broken.unwrap();
    assert_eq!((broken.seq, broken.reason), (5, TIME_DIFFERS));

    // The window's first rows written down, to start the read later: the
    // row it then starts from is one of them.
    for (test, seqs, at) in [
        ("wallet_records_time_first", "4", 4),
        ("wallet_records_time_first_two", "4, 5", 5),
    ] {
        let Some((schema, log)) = edit_fixture(test, TIMED_CLOCK) else {
            return;
        };
        write_time(&schema, seqs, T0);
        assert_eq!(
            chain_broken(log.wallet_records("a", since).wait()),
            (at, TIME_DIFFERS),
            "{seqs}"
        );
    }

    // Every in-window row written down, no checkpoint: nothing is found
    // at or after the bound, and the chain's last row, read to vouch for
    // that, gives it away.
    let Some((schema, log)) = edit_fixture("wallet_records_time_all", TIMED_CLOCK) else {
        return;
    };
    write_time(&schema, "4, 5, 6", T0);
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (6, TIME_DIFFERS)
    );

    // A column written *up* hides nothing, and is refused as well.
    let Some((schema, log)) = edit_fixture("wallet_records_time_up", TIMED_CLOCK) else {
        return;
    };
    write_time(&schema, "2", T0 + 9000);
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (2, TIME_DIFFERS)
    );

    // Untouched, a bound past every record reads the last row alone and
    // answers nothing.
    let Some((_schema, log)) = edit_fixture("wallet_records_time_none", TIMED_CLOCK) else {
        return;
    };
    assert!(
        log.wallet_records("a", T0 + 7000)
            .wait()
            .unwrap()
            .is_empty()
    );
}

fn vault() -> SharedBackend {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("wallet-records-test").unwrap(),
        DataKey::new([0x33; 32]),
    ));
    let mut vault = Vault::new(kek, WalletScheme::Default);
    vault.set_master_seed(&[0x44; 64]).unwrap();
    Arc::new(vault)
}

#[test]
fn spends_cut_off_below_a_checkpoint_are_refused() {
    let since = T0 + 4000;
    let Some((schema, log)) = edit_fixture("wallet_records_cut", CUT_CLOCK) else {
        return;
    };
    let backend = vault();
    let key = KeySigner::pin(
        backend.clone(),
        KeyRef::Wallet {
            name: "custody-audit-checkpoints".into(),
            index: 0,
        },
    )
    .wait()
    .unwrap()
    .key()
    .clone();
    log.checkpoint("custody.test/audit", backend.as_ref(), &key)
        .wait()
        .unwrap();
    assert_eq!(log.wallet_records("a", since).wait().unwrap().len(), 3);
    // The window's last two spends deleted (a chain alone cannot see a
    // cut end; the checkpoint lists seq 6).
    schema.admin("DELETE FROM custody_audit WHERE chain = 'wallet:a' AND seq >= 5");
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (
            5,
            "log ends before the anchored head (records cut off the end)"
        )
    );
    // The whole window deleted: nothing is at or after the bound, but the
    // checkpointed head is gone.
    schema.admin("DELETE FROM custody_audit WHERE chain = 'wallet:a' AND seq >= 4");
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (6, "a record the read starts from is missing")
    );
    // The checkpointed head rewritten with a consistent hash.
    let Some((schema, log)) = edit_fixture("wallet_records_rewritten_head", CUT_CLOCK) else {
        return;
    };
    log.checkpoint("custody.test/audit", backend.as_ref(), &key)
        .wait()
        .unwrap();
    overwrite(&schema, &resealed(&log, 6, T0));
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (6, "record differs from the anchored head (log rewritten)")
    );
}
