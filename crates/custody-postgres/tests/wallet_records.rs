//! `PgAuditLog`'s `AuditSink::wallet_records` against a real PostgreSQL:
//! one wallet's records since a time, read from the time index and checked
//! link by link (what a policy node counts velocity limits from). The
//! records returned are exactly those appended for the wallet at or after
//! the bound (late clocks included), and every edit an administrator can
//! make to the rows the answer depends on is `AuditChainBroken`, never a
//! shorter answer.
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
fn wallet_records_are_one_wallets_since_the_bound_late_clocks_included() {
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
    assert_eq!(
        summary(&all),
        [
            row(1, 1000, "0"),
            row(2, 2000, "1"),
            row(3, 3000, "2"),
            row(4, 1500, "3"),
            row(5, 4000, "4"),
        ]
    );
    assert!(all.iter().all(|r| r.event().field("wallet") == Some("a")));
    // The bound at 2 s: the late 1.5 s record (seq 4, after the first
    // in-window one) is read and dropped; the bound is inclusive.
    assert_eq!(
        summary(&read("a", T0 + 2000)),
        [row(2, 2000, "1"), row(3, 3000, "2"), row(5, 4000, "4"),]
    );
    assert_eq!(
        summary(&read("a", T0 + 1500)),
        [
            row(2, 2000, "1"),
            row(3, 3000, "2"),
            row(4, 1500, "3"),
            row(5, 4000, "4"),
        ]
    );
    assert!(read("a", T0 + 4001).is_empty());
    assert!(read("a", u64::MAX).is_empty());
    // Wallet b's own records, none of a's; a wallet never seen has none.
    let b = read("b", T0 + 3000);
    assert_eq!(summary(&b), [row(3, 3000, "102"), row(5, 4000, "104")]);
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

#[test]
fn the_time_bound_is_served_by_the_index() {
    let Some(schema) = Schema::fresh("wallet_records_index") else {
        return;
    };
    let _store = schema.store(PgOptions::new());
    // 20 000 records of one chain, times rising; the plan for the last
    // few hundred must use the time index, not walk the chain.
    schema.admin(
        r#"INSERT INTO custody_audit (chain, seq, hash, record)
         SELECT 'wallet:w', g, decode(repeat('00', 32), 'hex'),
         '{"seq":' || g || ',"time":' || (1000 + g) || ',"prev":"00"}'
         FROM generate_series(1, 20000) g; ANALYZE custody_audit"#,
    );
    let config = schema.admin_config();
    let plan: Vec<String> = db::on_own_runtime(async move {
        let client = db::connect(&config).await;
        client
            .query(
                r#"EXPLAIN SELECT min(seq + 0) FROM custody_audit WHERE chain = 'wallet:w'
                 AND (substring(record from '^\{"seq":[0-9]{1,19},"time":([0-9]{1,18}),'))::bigint >= 20700"#,
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    });
    assert!(
        plan.iter().any(|l| l.contains("custody_audit_chain_time")),
        "{plan:#?}"
    );
}

static UPGRADED: Times = Times::new();

#[test]
fn a_version_2_log_gains_the_time_index_in_place() {
    let Some(schema) = Schema::fresh("wallet_records_upgrade") else {
        return;
    };
    let store = schema.store(PgOptions::new());
    let log = store.audit_log().with_clock(|| UPGRADED.now());
    // Back to what the version 2 library left: no time index.
    schema.admin(
        "DROP INDEX custody_audit_chain_time; \
         DELETE FROM custody_schema_version WHERE version = 3",
    );
    for n in 1..=3u32 {
        append_at(&log, &UPGRADED, T0 + u64::from(n) * 1000, spend("a", n));
    }
    assert_eq!(store.migrate().wait().unwrap(), 3);
    assert_eq!(
        schema.admin_i64(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'custody_audit_chain_time' \
             AND schemaname = current_schema()"
        ),
        1
    );
    assert_eq!(
        summary(&log.wallet_records("a", T0 + 2000).wait().unwrap()),
        [row(2, 2000, "2"), row(3, 3000, "3")]
    );
}

static EDITED: Times = Times::new();

/// Wallet `a`'s records at seconds 1..=6 (seq 1..=6).
fn edit_fixture(test: &str) -> Option<(Schema, PgAuditLog)> {
    let schema = Schema::fresh(test)?;
    let log = schema
        .store(PgOptions::new())
        .audit_log()
        .with_clock(|| EDITED.now());
    for n in 1..=6u32 {
        append_at(&log, &EDITED, T0 + u64::from(n) * 1000, spend("a", n));
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
        "UPDATE custody_audit SET record = '{}', hash = decode('{}', 'hex') \
         WHERE chain = 'wallet:a' AND seq = {}",
        record.to_line().unwrap(),
        hex::encode(record.hash()),
        record.seq()
    ));
}

#[test]
fn an_edited_row_in_or_at_the_window_is_a_broken_chain() {
    let since = T0 + 4000;
    // Untouched: seq 4, 5, 6.
    let Some((schema, log)) = edit_fixture("wallet_records_edited") else {
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
    let Some((schema, log)) = edit_fixture("wallet_records_moved_out") else {
        return;
    };
    overwrite(&schema, &resealed(&log, 4, T0));
    assert_eq!(
        chain_broken(log.wallet_records("a", since).wait()),
        (5, "prev is not the previous record's hash")
    );

    // A record dropped from the window.
    let Some((schema, log)) = edit_fixture("wallet_records_dropped") else {
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
    let Some((schema, log)) = edit_fixture("wallet_records_no_predecessor") else {
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
    let Some((schema, log)) = edit_fixture("wallet_records_moved_in") else {
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
    let Some((schema, log)) = edit_fixture("wallet_records_old_edit") else {
        return;
    };
    schema.admin(
        "UPDATE custody_audit SET record = replace(record, '\"index\":\"1\"', '\"index\":\"0\"') \
         WHERE chain = 'wallet:a' AND seq = 1",
    );
    assert_eq!(log.wallet_records("a", since).wait().unwrap().len(), 3);
    assert!(log.verify(None).wait().unwrap().broken.is_some());
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
    let Some((schema, log)) = edit_fixture("wallet_records_cut") else {
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
    let Some((schema, log)) = edit_fixture("wallet_records_rewritten_head") else {
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
