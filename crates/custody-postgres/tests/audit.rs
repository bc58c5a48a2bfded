//! `PgAuditLog` against a real PostgreSQL: per-wallet chains appended from
//! many threads that custody-core's file-log verifier accepts line for
//! line; every kind of tampering named by chain and record; checkpoints
//! signed through a `KeyBackend` key and checked by an independent ECDSA
//! implementation (Python's `cryptography`); an accepted TOTP code and its
//! record committed together (a failure of either leaves neither); and the
//! signer's grants (no UPDATE, no DELETE on the log).
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

use custody_core::{
    AuditEvent, AuditLog, AuditOp, AuditOutcome, AuditSink, Authorization, DataKey, Digest32,
    Intent, KekId, KeyRef, KeySigner, LocalKek, PinnedKey, SharedBackend, StateStore, Vault,
    WalletScheme,
};
use custody_postgres::{AuditReport, PgAuditLog, PgOptions, PgStateStore, chain_of};
use custody_totp::{
    EnrolMode, ManualClock, OtpAuthUri, TotpConfig, TotpGate, TotpRegistry, Verification,
};

use db::Schema;

const T0: u64 = 1_800_000_000;
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn event(wallet: &str, n: u32) -> AuditEvent {
    AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success)
        .with_wallet(wallet)
        .with_index(n)
}

fn swap<'a>(key: &'a str, expected: Option<u64>, value: &'a [u8]) -> custody_core::Swap<'a> {
    custody_core::Swap::write(key, expected, value)
}

fn verified(log: &PgAuditLog) -> AuditReport {
    let report = log.verify(None).wait().unwrap();
    assert_eq!(report.broken, None, "{report:?}");
    report
}

fn vault() -> Arc<Vault> {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("audit-test").unwrap(),
        DataKey::new([0x33; 32]),
    ));
    let mut vault = Vault::new(kek, WalletScheme::Default);
    vault.set_master_seed(&[0x44; 64]).unwrap();
    Arc::new(vault)
}

fn checkpoint_key(backend: &SharedBackend) -> PinnedKey {
    KeySigner::pin(
        backend.clone(),
        KeyRef::Wallet {
            name: "custody-audit-checkpoints".into(),
            index: 0,
        },
    )
    .wait()
    .unwrap()
    .key()
    .clone()
}

#[test]
fn per_wallet_chains_from_many_threads_verify_like_the_file_log() {
    let Some(schema) = Schema::fresh("per_wallet_chains_verify") else {
        return;
    };
    let store = schema.store(PgOptions::new().with_pool_size(4));
    const WALLETS: usize = 3;
    const THREADS: usize = 4;
    const EACH: u32 = 15;
    // Every thread a replica of its own (its own pool and head cache), all
    // appending to the same wallets' chains at once.
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let schema = &schema;
            s.spawn(move || {
                let replica = PgStateStore::connect(schema.config(), PgOptions::new())
                    .wait()
                    .unwrap()
                    .audit_log();
                for n in 0..EACH {
                    for w in 0..WALLETS {
                        replica
                            .append(event(
                                &format!("w{w}@example.com"),
                                u32::try_from(t).unwrap() * 1000 + n,
                            ))
                            .wait()
                            .unwrap();
                    }
                }
            });
        }
    });
    let log = store.audit_log();
    let report = verified(&log);
    let each_chain = u64::try_from(THREADS).unwrap() * u64::from(EACH);
    assert_eq!(report.chains, u64::try_from(WALLETS).unwrap());
    assert_eq!(report.records, each_chain * u64::try_from(WALLETS).unwrap());
    // Each chain is a file log custody-core's own verifier accepts.
    for w in 0..WALLETS {
        let lines = schema.chain_lines(&format!("wallet:w{w}@example.com"));
        let head = AuditLog::verify(lines.as_bytes()).unwrap();
        assert_eq!(head.seq, each_chain);
    }
    // An event without a wallet goes to the operations chain.
    let op = AuditEvent::new(AuditOp::UNWRAP, AuditOutcome::Success);
    assert_eq!(chain_of(&op), "-");
    assert_eq!(log.append(op).wait().unwrap().seq, 1);
    assert_eq!(verified(&log).chains, u64::try_from(WALLETS).unwrap() + 1);
}

/// A log of two wallets' chains (`a`: 5 records, `b`: 3) with a checkpoint
/// after the first 4 of `a` and 3 of `b`, then one more record on `a`.
fn tamper_fixture(test: &str) -> Option<(Schema, PgAuditLog, SharedBackend)> {
    let schema = Schema::fresh(test)?;
    let log = schema.store(PgOptions::new()).audit_log();
    for n in 0..4 {
        log.append(event("a", n)).wait().unwrap();
    }
    for n in 0..3 {
        log.append(event("b", n)).wait().unwrap();
    }
    let backend: SharedBackend = vault();
    let key = checkpoint_key(&backend);
    let cp = log
        .checkpoint("custody.test/audit", backend.as_ref(), &key)
        .wait()
        .unwrap();
    assert_eq!((cp.id(), cp.records(), cp.heads().len()), (1, 7, 2));
    log.append(event("a", 4)).wait().unwrap();
    let report = verified(&log);
    assert_eq!((report.records, report.chains), (8, 2));
    Some((schema, log, backend))
}

fn broken_at(log: &PgAuditLog) -> (String, u64, &'static str) {
    let b = log.verify(None).wait().unwrap().broken.expect("a break");
    (b.chain, b.seq, b.reason)
}

#[test]
fn every_kind_of_tampering_is_named_by_chain_and_record() {
    type Tamper = (&'static str, &'static str, &'static str, u64);
    // (what, SQL run as the table owner, chain named, first bad seq)
    let cases: [Tamper; 7] = [
        (
            "an edited record",
            "UPDATE custody_audit SET record = replace(record, '\"index\":\"1\"', '\"index\":\"9\"') WHERE chain = 'wallet:a' AND seq = 2",
            "wallet:a",
            2,
        ),
        (
            "a dropped record",
            "DELETE FROM custody_audit WHERE chain = 'wallet:a' AND seq = 3",
            "wallet:a",
            3,
        ),
        (
            "a record inserted (copied from another chain)",
            "INSERT INTO custody_audit (chain, seq, hash, record, time_ms) SELECT 'wallet:a', 6, hash, record, time_ms FROM custody_audit WHERE chain = 'wallet:b' AND seq = 1",
            "wallet:a",
            6,
        ),
        (
            "two records reordered",
            "UPDATE custody_audit SET seq = 100 WHERE chain = 'wallet:b' AND seq = 1;
             UPDATE custody_audit SET seq = 1 WHERE chain = 'wallet:b' AND seq = 2;
             UPDATE custody_audit SET seq = 2 WHERE chain = 'wallet:b' AND seq = 100;",
            "wallet:b",
            1,
        ),
        (
            "records cut off a chain's end below the checkpoint",
            "DELETE FROM custody_audit WHERE chain = 'wallet:b' AND seq = 3",
            "wallet:b",
            3,
        ),
        (
            "a whole chain dropped",
            "DELETE FROM custody_audit WHERE chain = 'wallet:b'",
            "wallet:b",
            1,
        ),
        (
            "a chain moved under another name",
            "UPDATE custody_audit SET chain = 'wallet:c' WHERE chain = 'wallet:b'",
            "wallet:b",
            1,
        ),
    ];
    for (what, sql, chain, seq) in cases {
        let Some((schema, log, _)) = tamper_fixture("tampering_is_named") else {
            return;
        };
        schema.admin(sql);
        let (c, s, reason) = broken_at(&log);
        assert_eq!((c.as_str(), s), (chain, seq), "{what}: {reason}");
    }
    // Records cut off after the last checkpoint are not detectable (the
    // documented window): the chain is a valid shorter chain.
    let Some((schema, log, _)) = tamper_fixture("tampering_after_checkpoint") else {
        return;
    };
    schema.admin("DELETE FROM custody_audit WHERE chain = 'wallet:a' AND seq = 5");
    assert_eq!(verified(&log).records, 7);
}

#[test]
fn a_forged_or_foreign_checkpoint_is_detected() {
    let Some((schema, log, backend)) = tamper_fixture("forged_checkpoint") else {
        return;
    };
    let key = checkpoint_key(&backend);
    // Signed by the expected key: accepted; expecting another: refused.
    assert_eq!(
        log.verify(Some(key.secp256k1().unwrap()))
            .wait()
            .unwrap()
            .broken,
        None
    );
    let other = KeySigner::pin(
        backend.clone(),
        KeyRef::Wallet {
            name: "someone-else".into(),
            index: 0,
        },
    )
    .wait()
    .unwrap();
    let b = log
        .verify(Some(other.key().secp256k1().unwrap()))
        .wait()
        .unwrap();
    assert_eq!(
        b.broken.map(|b| b.reason),
        Some("the last checkpoint is signed by another key")
    );
    // A head rewritten to match a truncated chain breaks the signature.
    schema.admin(
        "DELETE FROM custody_audit WHERE chain = 'wallet:b' AND seq = 3;
         UPDATE custody_audit_checkpoint_head SET seq = 2,
           hash = (SELECT hash FROM custody_audit WHERE chain = 'wallet:b' AND seq = 2)
         WHERE chain = 'wallet:b'",
    );
    let (chain, _, reason) = broken_at(&log);
    assert_eq!(
        (chain.as_str(), reason),
        ("", "the last checkpoint's signature does not verify")
    );
}

#[test]
fn checkpoints_are_signed_through_a_key_backend_and_verify_independently() {
    let Some((schema, log, backend)) = tamper_fixture("checkpoint_signature") else {
        return;
    };
    let key = checkpoint_key(&backend);
    let cp = log
        .checkpoint("custody.test/audit", backend.as_ref(), &key)
        .wait()
        .unwrap();
    assert_eq!((cp.id(), cp.records(), cp.heads().len()), (2, 8, 2));
    let report = verified(&log);
    assert_eq!(
        report
            .checkpoint
            .as_ref()
            .map(custody_postgres::Checkpoint::id),
        Some(2)
    );
    assert_eq!(
        report.checkpoint.as_ref().map(|c| c.body()),
        Some(cp.body())
    );
    // The stored signature, checked by Python's `cryptography` (OpenSSL)
    // over the body's bytes: SHA-256 and ECDSA on secp256k1, nothing of
    // ours in the loop.
    let Ok(python) = std::env::var("CUSTODY_TEST_PYTHON") else {
        println!("skipped the independent check: set CUSTODY_TEST_PYTHON");
        return;
    };
    let config = schema.admin_config();
    let signature: Vec<u8> = db::on_own_runtime(async move {
        let client = db::connect(&config).await;
        client
            .query_one(
                "SELECT signature FROM custody_audit_checkpoint WHERE id = 2",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    });
    let script = r#"
import sys
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
body, key, sig = sys.argv[1].encode(), bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), key)
r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
try:
    pub.verify(utils.encode_dss_signature(r, s), body, ec.ECDSA(hashes.SHA256()))
    print("valid")
except Exception:
    print("invalid")
"#;
    let run = |body: &str| {
        let out = std::process::Command::new(&python)
            .args([
                "-c",
                script,
                body,
                &hex::encode(cp.public_key().to_compressed()),
                &hex::encode(&signature),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(run(&cp.body()), "valid");
    assert_eq!(run(&cp.body().replace("records 8", "records 7")), "invalid");
}

struct Totp {
    registry: Arc<TotpRegistry>,
    clock: Arc<ManualClock>,
    log: PgAuditLog,
    vault: Arc<Vault>,
}

fn totp(schema: &Schema) -> Totp {
    let store = schema.store(PgOptions::new());
    let log = store.audit_log();
    let vault = vault();
    let clock = Arc::new(ManualClock::new(T0));
    let registry = TotpRegistry::new(
        vault.clone(),
        Arc::new(store.clone()),
        Arc::new(log.clone()),
        TotpConfig::new(WalletScheme::Default),
    )
    .unwrap()
    .with_clock(clock.clone());
    let uri = OtpAuthUri::parse(&format!(
        "otpauth://totp/custody:alice?secret={SECRET_B32}&issuer=custody&algorithm=SHA1&digits=6&period=30"
    ))
    .unwrap();
    registry
        .import("alice", &uri, EnrolMode::New)
        .wait()
        .unwrap();
    assert!(store.records_into(&log), "the store keeps its own log");
    Totp {
        registry: Arc::new(registry),
        clock,
        log,
        vault,
    }
}

fn code_at(time: u64) -> String {
    let secret = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, SECRET_B32).unwrap();
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(secret)
        .build()
        .unwrap()
        .generate(time)
        .to_string()
}

/// The `totp-verify` records of `alice`'s chain that record an accepted
/// (spent) code.
fn accepted_records(schema: &Schema) -> usize {
    verify_records(schema)
        .iter()
        .filter(|(outcome, detail)| outcome == "success" && detail == "accepted")
        .count()
}

/// The `totp-verify` records of `alice`'s chain: (outcome, detail).
fn verify_records(schema: &Schema) -> Vec<(String, String)> {
    schema
        .chain_lines("wallet:alice")
        .lines()
        .map(|l| custody_core::AuditRecord::from_line(l).unwrap())
        .filter(|r| r.event().op().as_str() == "totp-verify")
        .map(|r| {
            (
                r.event().outcome().as_str().to_owned(),
                r.event().field("detail").unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn an_accepted_code_and_its_record_commit_together() {
    let Some(schema) = Schema::fresh("code_and_record_together") else {
        return;
    };
    let t = totp(&schema);
    let code = |time| custody_core::OneTimeCode::new(code_at(time));
    // Accepted: one record, in the wallet's chain, in the guard's commit.
    t.clock.set(T0);
    assert!(matches!(
        t.registry.verify("alice", Some(&code(T0))).wait().unwrap(),
        Verification::Accepted { .. }
    ));
    assert_eq!(
        verify_records(&schema),
        [("success".into(), "accepted".into())]
    );
    assert_eq!(
        t.registry.verify("alice", Some(&code(T0))).wait().unwrap(),
        Verification::Replayed
    );

    // The record's insert fails after the guard's update: the transaction
    // rolls back, so the code is not spent.
    schema.admin(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
         CREATE TRIGGER refuse_audit BEFORE INSERT ON custody_audit FOR EACH ROW EXECUTE FUNCTION refuse();",
    );
    t.clock.set(T0 + 30);
    t.registry
        .verify("alice", Some(&code(T0 + 30)))
        .wait()
        .unwrap_err();
    schema.admin("DROP TRIGGER refuse_audit ON custody_audit");
    let records = accepted_records(&schema);
    assert_eq!(records, 1);
    // Not spent: the same code is accepted now, once.
    assert!(matches!(
        t.registry
            .verify("alice", Some(&code(T0 + 30)))
            .wait()
            .unwrap(),
        Verification::Accepted { .. }
    ));
    assert_eq!(accepted_records(&schema), records + 1);

    // The commit itself fails (a deferred check on the guard): neither the
    // guard nor the record stays.
    schema.admin(
        "CREATE CONSTRAINT TRIGGER refuse_commit AFTER UPDATE ON custody_state
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse();",
    );
    t.clock.set(T0 + 60);
    t.registry
        .verify("alice", Some(&code(T0 + 60)))
        .wait()
        .unwrap_err();
    assert_eq!(
        accepted_records(&schema),
        records + 1,
        "no record of a code not spent"
    );
    // (The failed attempt itself is recorded, as every failure is.)
    assert_eq!(
        verify_records(&schema).last().map(|(o, _)| o.as_str()),
        Some("failed")
    );
    schema.admin("DROP TRIGGER refuse_commit ON custody_state");
    assert!(matches!(
        t.registry
            .verify("alice", Some(&code(T0 + 60)))
            .wait()
            .unwrap(),
        Verification::Accepted { .. }
    ));
    assert_eq!(accepted_records(&schema), records + 2);
    verified(&t.log);
}

#[test]
fn a_gated_signature_spends_its_code_in_the_commit_of_its_record() {
    let Some(schema) = Schema::fresh("gated_signature_records") else {
        return;
    };
    let t = totp(&schema);
    // The audit layer above the gate records into the store's own log: the
    // gate decides on a fresh guard and hands the guard write up, and the
    // signature's record and the spent code commit together, once.
    let signer = |t: &Totp| {
        let gate: SharedBackend = Arc::new(TotpGate::new(t.vault.clone(), t.registry.clone()));
        let audited: SharedBackend =
            Arc::new(custody_core::Audited::new(gate, Arc::new(t.log.clone())));
        KeySigner::pin(
            audited,
            KeyRef::Wallet {
                name: "alice".into(),
                index: 0,
            },
        )
        .wait()
        .unwrap()
    };
    let alice = signer(&t);
    let digest = Digest32([7; 32]);
    t.clock.set(T0);
    let auth = Authorization::totp(code_at(T0));
    alice
        .sign(digest, Intent::raw_digest(), &auth)
        .wait()
        .unwrap();
    // The signature's record and the guard's new version were written by
    // one transaction (the same xmin).
    assert_eq!(
        schema.admin_i64(
            "SELECT count(*) FROM custody_state s JOIN custody_audit a ON a.xmin::text = s.xmin::text \
             WHERE a.chain = 'wallet:alice' \
             AND a.seq = (SELECT max(seq) FROM custody_audit WHERE chain = 'wallet:alice')"
        ),
        1
    );
    let records: Vec<custody_core::AuditRecord> = schema
        .chain_lines("wallet:alice")
        .lines()
        .map(|l| custody_core::AuditRecord::from_line(l).unwrap())
        .collect();
    let last = records.last().unwrap();
    assert_eq!(
        (last.event().op().as_str(), last.event().outcome().as_str()),
        ("sign", "success")
    );
    assert_eq!(
        last.event().field("totp-step"),
        Some((T0 / 30).to_string().as_str())
    );
    assert!(
        !records
            .iter()
            .any(|r| r.event().op().as_str() == "totp-verify"),
        "one record per signature"
    );
    // Replayed: refused, recorded, no signature.
    let e = alice
        .sign(digest, Intent::raw_digest(), &auth)
        .wait()
        .unwrap_err();
    assert_eq!(e.kind(), "totp-replayed");
    // Two replicas race one fresh code: exactly one signature comes out,
    // the other is refused as a replay (by its guard read or by the commit).
    let u = totp_replica(&schema);
    let (a, b) = (signer(&t), signer(&u));
    t.clock.set(T0 + 30);
    u.clock.set(T0 + 30);
    let auth = Authorization::totp(code_at(T0 + 30));
    let barrier = std::sync::Barrier::new(2);
    let outcomes: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = [&a, &b]
            .into_iter()
            .map(|signer| {
                let (barrier, auth) = (&barrier, &auth);
                s.spawn(move || {
                    barrier.wait();
                    signer
                        .sign(digest, Intent::raw_digest(), auth)
                        .wait()
                        .map(|_| ())
                        .map_err(|e| e.kind().to_owned())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&Err("totp-replayed".to_owned())),
        "{outcomes:?}"
    );
    verified(&t.log);
}

/// A second replica over the same database: its own store, registry and
/// clock.
fn totp_replica(schema: &Schema) -> Totp {
    let store = PgStateStore::connect(schema.config(), PgOptions::new())
        .wait()
        .unwrap();
    let log = store.audit_log();
    let vault = vault();
    let clock = Arc::new(ManualClock::new(T0));
    let registry = TotpRegistry::new(
        vault.clone(),
        Arc::new(store),
        Arc::new(log.clone()),
        TotpConfig::new(WalletScheme::Default),
    )
    .unwrap()
    .with_clock(clock.clone());
    Totp {
        registry: Arc::new(registry),
        clock,
        log,
        vault,
    }
}

#[test]
fn the_signer_role_needs_no_update_or_delete_on_the_log() {
    let Some(schema) = Schema::fresh("audit_grants") else {
        return;
    };
    drop(schema.store(PgOptions::new()));
    let role = format!("custody_signer_{}", db::random_hex(4));
    let password = format!("pw-{}", db::random_hex(12));
    // The grants the README shows.
    schema.admin(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE custody_password_roles;
         GRANT USAGE ON SCHEMA {s} TO {role};
         GRANT SELECT, INSERT, UPDATE ON {s}.custody_state TO {role};
         GRANT SELECT, INSERT ON {s}.custody_audit, {s}.custody_audit_chain,
           {s}.custody_audit_checkpoint, {s}.custody_audit_checkpoint_head TO {role};",
        s = schema.name
    ));
    let mut config = schema.config();
    config.user(&role);
    config.password(password.as_str());
    let signer = PgStateStore::connect(config.clone(), PgOptions::new())
        .wait()
        .unwrap();
    let log = signer.audit_log();
    for n in 0..3 {
        log.append(event("a", n)).wait().unwrap();
    }
    let backend: SharedBackend = vault();
    let key = checkpoint_key(&backend);
    log.checkpoint("custody.test/audit", backend.as_ref(), &key)
        .wait()
        .unwrap();
    assert_eq!(verified(&log).records, 3);
    // The role cannot rewrite or remove a record.
    let code = db::on_own_runtime(async move {
        let client = db::connect(&config).await;
        let mut codes = Vec::new();
        for sql in [
            "UPDATE custody_audit SET record = '' WHERE seq = 1",
            "DELETE FROM custody_audit WHERE seq = 3",
            "DELETE FROM custody_audit_checkpoint_head",
            "TRUNCATE custody_audit",
        ] {
            codes.push(
                client
                    .batch_execute(sql)
                    .await
                    .err()
                    .and_then(|e| e.code().map(|c| c.code().to_owned())),
            );
        }
        codes
    });
    assert_eq!(code, vec![Some("42501".to_owned()); 4]);
    drop((log, signer));
    schema.admin(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

#[test]
fn a_sink_that_is_not_the_stores_own_is_not_recorded_into() {
    let Some(schema) = Schema::fresh("not_own_sink") else {
        return;
    };
    let store = schema.store(PgOptions::new());
    let other = PgStateStore::connect(schema.config(), PgOptions::new())
        .wait()
        .unwrap();
    assert!(store.records_into(&store.audit_log()));
    assert!(
        store.clone().records_into(&store.audit_log()),
        "a clone is the same store"
    );
    assert!(
        !store.records_into(&other.audit_log()),
        "another pool's log"
    );
    assert!(!store.records_into(&custody_core::MemoryAuditLog::new()));
    let e = store
        .compare_and_swap_all_recorded(&[swap("k", None, b"v")], event("a", 0), &other.audit_log())
        .wait()
        .unwrap_err();
    assert_eq!(e.kind(), "unsupported");
    assert_eq!(store.get("k").wait().unwrap(), None, "nothing written");
}

/// Names the schema of the replica that `a_replica_killed_mid_transaction_loses_nothing_acknowledged` kills.
const KILLED_SCHEMA_ENV: &str = "CUSTODY_TEST_PG_KILLED_SCHEMA";

/// Child: swaps the counter `n` to `n + 1` with a record of it, in one
/// transaction each, forever, printing `ack <n+1> <seq>` after each
/// acknowledgement.
#[test]
#[ignore = "run as a child process by a_replica_killed_mid_transaction_loses_nothing_acknowledged"]
fn child_recording_replica() {
    let (Ok(url), Ok(name)) = (std::env::var(db::URL_ENV), std::env::var(KILLED_SCHEMA_ENV)) else {
        return;
    };
    let schema = Schema::existing(url, name);
    let store = PgStateStore::connect(schema.config(), PgOptions::new())
        .wait()
        .unwrap();
    let log = store.audit_log();
    println!("\nready");
    loop {
        let seen = store.get("counter").wait().unwrap();
        let n = seen
            .as_ref()
            .map_or(0, |s| u64::from_be_bytes((*s.value).try_into().unwrap()));
        let event = event("counted", u32::try_from(n + 1).unwrap());
        match store
            .compare_and_swap_all_recorded(
                &[swap(
                    "counter",
                    seen.as_ref().map(|s| s.version),
                    &(n + 1).to_be_bytes(),
                )],
                event,
                &log,
            )
            .wait()
            .unwrap()
        {
            custody_core::RecordedSwaps::Swapped { head, .. } => {
                println!("ack {} {}", n + 1, head.seq)
            }
            custody_core::RecordedSwaps::Conflict { .. } => panic!("no one else writes"),
        }
    }
}

#[test]
fn a_replica_killed_mid_transaction_loses_nothing_acknowledged() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let Some(schema) = Schema::fresh("replica_killed_mid_transaction") else {
        return;
    };
    let store = schema.store(PgOptions::new());
    // Each record's insert sleeps 20 ms on the server, after the counter's
    // update and before the commit: a kill almost always lands inside a
    // transaction.
    schema.admin(
        "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END $$;
         CREATE TRIGGER slow_audit BEFORE INSERT ON custody_audit FOR EACH ROW EXECUTE FUNCTION slow();",
    );
    let mut acked = 0u64;
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_recording_replica",
                "--nocapture",
                "--include-ignored",
                "--test-threads=1",
            ])
            .env(db::URL_ENV, &schema.url)
            .env(KILLED_SCHEMA_ENV, &schema.name)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acks = 0;
        while acks < 8 + round * 3 {
            let line = lines.next().unwrap().unwrap();
            if let Some(rest) = line.strip_prefix("ack ") {
                let (n, seq) = rest.split_once(' ').unwrap();
                let (n, seq): (u64, u64) = (n.parse().unwrap(), seq.parse().unwrap());
                assert_eq!(n, seq, "one record per swap, in order");
                acked = n;
                acks += 1;
            }
        }
        // SIGKILL, with the next transaction (most likely) open.
        child.kill().unwrap();
        child.wait().unwrap();
        // The killed replica's server backend ends (rolling back what it
        // did not commit) once it sees the socket closed: wait for it, so
        // that what follows reads the final state.
        let started = std::time::Instant::now();
        while schema.admin_i64(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{}' AND state <> 'idle'",
            schema.application_name()
        )) > 0
        {
            assert!(started.elapsed().as_secs() < 20, "the killed backend lingers");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // What the server committed: at least everything acknowledged, and
        // exactly one record per committed swap (a swap cut off before its
        // commit left neither).
        let counter = store.get("counter").wait().unwrap().unwrap();
        let n = u64::from_be_bytes((*counter.value).try_into().unwrap());
        assert!(
            n >= acked,
            "round {round}: counter {n} lost acknowledged {acked}"
        );
        assert!(
            n <= acked + 1,
            "round {round}: at most the one unacknowledged swap"
        );
        let report = verified(&store.audit_log());
        assert_eq!(
            report.records, n,
            "round {round}: one record per committed swap"
        );
    }
    schema.admin("DROP TRIGGER slow_audit ON custody_audit");
}

#[test]
fn a_recorded_swap_over_a_stale_head_retries_and_never_forks_the_chain() {
    let Some(schema) = Schema::fresh("recorded_swap_stale_head") else {
        return;
    };
    // Two replicas, each with its own pool and head cache.
    let a = schema.store(PgOptions::new());
    let b = PgStateStore::connect(schema.config(), PgOptions::new())
        .wait()
        .unwrap();
    let (log_a, log_b) = (a.audit_log(), b.audit_log());
    log_a.append(event("w", 0)).wait().unwrap();
    // B appends twice to the same chain: A's cached head is now stale.
    log_b.append(event("w", 1)).wait().unwrap();
    log_b.append(event("w", 2)).wait().unwrap();
    let swapped = a
        .compare_and_swap_all_recorded(&[swap("guard", None, b"1")], event("w", 3), &log_a)
        .wait()
        .unwrap();
    match swapped {
        custody_core::RecordedSwaps::Swapped { versions, head } => {
            assert_eq!((versions, head.seq), (vec![1], 4));
        }
        other => panic!("{other:?}"),
    }
    // A conflict (B swaps first) writes neither the value nor a record.
    let records = verified(&log_a).records;
    assert!(matches!(
        b.compare_and_swap_all_recorded(&[swap("guard", Some(1), b"2")], event("w", 4), &log_b)
            .wait()
            .unwrap(),
        custody_core::RecordedSwaps::Swapped { ref versions, .. } if versions == &[2]
    ));
    assert!(matches!(
        a.compare_and_swap_all_recorded(&[swap("guard", Some(1), b"x")], event("w", 5), &log_a)
            .wait()
            .unwrap(),
        custody_core::RecordedSwaps::Conflict { index: 0, current: Some(ref c) } if c.version == 2
    ));
    assert_eq!(verified(&log_a).records, records + 1);
    assert_eq!(
        schema.chain_lines("wallet:w").lines().count(),
        5,
        "three appends and two swaps: one chain, no fork"
    );
}

/// A state store that counts the calls made through it, over the store.
#[derive(Debug)]
struct Counting {
    inner: PgStateStore,
    calls: std::sync::Mutex<Vec<&'static str>>,
}

impl Counting {
    fn note(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }

    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl StateStore for Counting {
    fn get<'a>(
        &'a self,
        key: &'a str,
    ) -> custody_core::Pending<'a, Result<Option<custody_core::Versioned>, custody_core::Error>>
    {
        self.note("get");
        self.inner.get(key)
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> custody_core::Pending<'a, Result<Vec<Option<custody_core::Versioned>>, custody_core::Error>>
    {
        self.note("get_many");
        self.inner.get_many(keys)
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
    ) -> custody_core::Pending<'a, Result<custody_core::CasOutcome, custody_core::Error>> {
        self.note("compare_and_swap");
        self.inner.compare_and_swap(key, expected, value)
    }

    fn records_into(&self, audit: &dyn AuditSink) -> bool {
        self.inner.records_into(audit)
    }

    fn compare_and_swap_all_recorded<'a>(
        &'a self,
        swaps: &'a [custody_core::Swap<'a>],
        event: AuditEvent,
        audit: &'a dyn AuditSink,
    ) -> custody_core::Pending<'a, Result<custody_core::RecordedSwaps, custody_core::Error>> {
        self.note("compare_and_swap_all_recorded");
        self.inner
            .compare_and_swap_all_recorded(swaps, event, audit)
    }
}

/// A signer replica of `t`'s keystore: a store of its own (connections,
/// caches) over `schema`, counted, and alice's key through
/// `Audited(TotpGate(vault))` with that store's log.
fn replica(schema: &Schema, t: &Totp) -> (Arc<Counting>, KeySigner, PgAuditLog) {
    let store = schema.store(PgOptions::new());
    let log = store.audit_log();
    let counting = Arc::new(Counting {
        inner: store,
        calls: std::sync::Mutex::default(),
    });
    let registry = Arc::new(
        TotpRegistry::new(
            t.vault.clone(),
            counting.clone(),
            Arc::new(log.clone()),
            TotpConfig::new(WalletScheme::Default),
        )
        .unwrap()
        .with_clock(t.clock.clone()),
    );
    let gate: SharedBackend = Arc::new(TotpGate::new(t.vault.clone(), registry));
    let audited: SharedBackend = Arc::new(custody_core::Audited::new(gate, Arc::new(log.clone())));
    let alice = KeySigner::pin(
        audited,
        KeyRef::Wallet {
            name: "alice".into(),
            index: 0,
        },
    )
    .wait()
    .unwrap();
    (counting, alice, log)
}

/// `signer` signs at `time` with that step's code of `secret`.
fn sign_at(signer: &KeySigner, t: &Totp, time: u64) -> Result<(), custody_core::Error> {
    t.clock.set(time);
    signer
        .sign(
            Digest32([u8::try_from(time % 251).unwrap(); 32]),
            Intent::raw_digest(),
            &Authorization::totp(code_at(time)),
        )
        .wait()
        .map(|_| ())
}

#[test]
fn a_gated_signature_on_warm_records_commits_once_without_a_read() {
    let Some(schema) = Schema::fresh("gated_signature_round_trips") else {
        return;
    };
    let t = totp(&schema);
    let (counting, alice, log) = replica(&schema, &t);
    for i in 0..4 {
        counting.take();
        sign_at(&alice, &t, T0 + 30 * i).unwrap();
        let calls = counting.take();
        if i == 0 {
            // The first reads the recorded scheme (once per registry), then
            // the enrolment and the guard in one read (one statement), and
            // commits the guard's write with the signature's record.
            assert_eq!(
                calls,
                ["get", "get_many", "compare_and_swap_all_recorded"],
                "first signature"
            );
        } else {
            // Then this replica's last commit left both: decided on
            // without a read, the commit checks the enrolment's version
            // and swaps the guard. One statement per signature.
            assert_eq!(calls, ["compare_and_swap_all_recorded"], "signature {i}");
        }
    }
    // A replayed code is not refused on warm records: it is decided again
    // on a fresh read, refused there with no write, and the refusal
    // recorded (through the log, not the store).
    counting.take();
    let e = sign_at(&alice, &t, T0 + 90).unwrap_err();
    assert_eq!(e.kind(), "totp-replayed");
    assert_eq!(counting.take(), ["get_many"]);
    assert_eq!(
        verified(&log).records,
        1 + 4 + 2,
        "enrolment, 4 signatures, the refusal (the gate's and the layer's)"
    );
    // The fresh read warmed nothing: the next signature reads again.
    sign_at(&alice, &t, T0 + 120).unwrap();
    assert_eq!(
        counting.take(),
        ["get_many", "compare_and_swap_all_recorded"]
    );
}

#[test]
fn two_replicas_taking_turns_on_one_wallet_read_first_once_they_find_each_other() {
    let Some(schema) = Schema::fresh("replicas_taking_turns") else {
        return;
    };
    let t = totp(&schema);
    // Every row update tried, committed or rolled back (a sequence is not
    // transactional): a record sealed on a stale head is an update rolled
    // back.
    schema.admin(
        "CREATE SEQUENCE updates_tried;
         CREATE FUNCTION count_update() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
           AS $$ BEGIN PERFORM nextval('updates_tried'); RETURN NEW; END $$;
         CREATE TRIGGER count_update BEFORE UPDATE ON custody_state
           FOR EACH ROW EXECUTE FUNCTION count_update();",
    );
    let tried = || schema.admin_i64("SELECT last_value FROM updates_tried");
    let (a_calls, a, _) = replica(&schema, &t);
    let (b_calls, b, _) = replica(&schema, &t);
    sign_at(&a, &t, T0).unwrap();
    sign_at(&b, &t, T0 + 30).unwrap();
    a_calls.take();
    b_calls.take();
    let (swap, read) = ("compare_and_swap_all_recorded", "get_many");
    // Each turn: who signs, the store calls it makes, the row updates it
    // tries.
    let turns: [(&Counting, &KeySigner, &[&str], i64); 7] = [
        // Each replica's warm records are stale in turn (the other spent a
        // code since): its commit conflicts, nothing is written or
        // recorded, and it signs again on a fresh read, which finds the
        // guard moved by another writer. Its cached audit head is stale
        // too: the record sealed on it is rolled back, and its chain is
        // read before every append from then on.
        (&a_calls, &a, &[swap, read, swap], 2),
        (&b_calls, &b, &[swap, read, swap], 2),
        // Contended: a read, then one commit on the right head. No
        // conflict and no rollback.
        (&a_calls, &a, &[read, swap], 1),
        (&b_calls, &b, &[read, swap], 1),
        (&a_calls, &a, &[read, swap], 1),
        // A alone again: its read finds the guard (and the chain) where
        // it left them, so the commit leaves warm records ...
        (&a_calls, &a, &[read, swap], 1),
        // ... and the next signature commits without a read.
        (&a_calls, &a, &[swap], 1),
    ];
    for (n, (calls, signer, expected, updates)) in turns.into_iter().enumerate() {
        let time = T0 + 60 + 30 * u64::try_from(n).unwrap();
        let before = tried();
        sign_at(signer, &t, time).unwrap();
        assert_eq!(calls.take(), expected, "turn {n}: store calls");
        assert_eq!(tried() - before, updates, "turn {n}: row updates tried");
    }
    // A code one replica spent is refused by the other, decided on a
    // fresh read (B is not warm: it last signed contended).
    let e = sign_at(&b, &t, T0 + 60 + 30 * 6).unwrap_err();
    assert_eq!(e.kind(), "totp-replayed");
    assert_eq!(b_calls.take(), [read]);
    let records: Vec<custody_core::AuditRecord> = schema
        .chain_lines("wallet:alice")
        .lines()
        .map(|l| custody_core::AuditRecord::from_line(l).unwrap())
        .collect();
    let denied: Vec<_> = records
        .iter()
        .filter(|r| r.event().outcome() == AuditOutcome::Denied)
        .collect();
    // The replay's two records (the gate's `totp-verify`, the layer's
    // `sign`), and nothing of the reruns.
    assert_eq!(denied.len(), 2, "{denied:?}");
    assert!(
        denied
            .iter()
            .all(|r| r.event().field("detail") == Some("totp-replayed"))
    );
    assert_eq!(
        records.len(),
        1 + 9 + 2,
        "enrolment, signatures, the replay"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.event().outcome() == AuditOutcome::Success
                && *r.event().op() == AuditOp::SIGN)
            .count(),
        9
    );
}

#[test]
fn a_secret_rotated_by_another_replica_is_not_accepted_from_warm_records() {
    let Some(schema) = Schema::fresh("rotated_while_warm") else {
        return;
    };
    let t = totp(&schema);
    let (a_calls, a, _) = replica(&schema, &t);
    sign_at(&a, &t, T0).unwrap();
    // Another replica's operator replaces alice's secret (no code).
    let other = b"another secret of twenty bytes!!";
    let uri = OtpAuthUri::parse(&format!(
        "otpauth://totp/custody:alice?secret={}&issuer=custody&algorithm=SHA1&digits=6&period=30",
        base32::encode(base32::Alphabet::Rfc4648 { padding: false }, other)
    ))
    .unwrap();
    t.registry
        .import("alice", &uri, EnrolMode::ForceRotate)
        .wait()
        .unwrap();
    // A's warm records still hold the old secret, which accepts the old
    // device's code; the commit's check of the enrolment's version finds
    // it replaced, and the decision made again on a fresh read refuses.
    a_calls.take();
    let e = sign_at(&a, &t, T0 + 30).unwrap_err();
    assert_eq!(e.kind(), "totp-invalid");
    assert_eq!(
        a_calls.take(),
        [
            "compare_and_swap_all_recorded",
            "get_many",
            "compare_and_swap"
        ],
        "the optimistic commit, the fresh read, the failure counted"
    );
}

#[test]
fn several_swaps_and_their_record_commit_together_or_not_at_all() {
    let Some(schema) = Schema::fresh("multi_swap_conformance") else {
        return;
    };
    let store = schema.store(PgOptions::new());
    let log = store.audit_log();
    let records =
        || usize::try_from(schema.admin_i64("SELECT count(*) FROM custody_audit")).unwrap();
    custody_core::conformance::recorded_swaps(&store, &log, &records);
    assert_eq!(verified(&log).records, 5);
    // Another store's log is not this store's: refused, nothing written.
    let other = Schema::fresh("multi_swap_other")
        .unwrap()
        .store(PgOptions::new());
    let fresh = Schema::fresh("multi_swap_fresh").unwrap();
    let fresh_store = fresh.store(PgOptions::new());
    custody_core::conformance::recorded_swaps(&fresh_store, &other.audit_log(), &|| 0);
}

#[test]
fn a_connection_killed_mid_commit_leaves_neither_swaps_nor_record() {
    let Some(schema) = Schema::fresh("killed_mid_commit") else {
        return;
    };
    let store = schema.store(PgOptions::new());
    let log = store.audit_log();
    let records = || schema.admin_i64("SELECT count(*) FROM custody_audit");
    let both = |one: Option<u64>, two: Option<u64>, n: u32| {
        store
            .compare_and_swap_all_recorded(
                &[swap("m1", one, b"one"), swap("m2", two, b"two")],
                event("w", n),
                &log,
            )
            .wait()
    };
    assert!(matches!(
        both(None, None, 0).unwrap(),
        custody_core::RecordedSwaps::Swapped { ref versions, .. } if versions == &[1, 1]
    ));
    assert_eq!(records(), 1);
    // An administrator holds the chain's next record uncommitted: the
    // commit swaps both records, then waits on that row inside its
    // statement, and is terminated there.
    let config = schema.admin_config();
    let app = schema.application_name();
    let (held, holding) = std::sync::mpsc::channel::<()>();
    let blocker = std::thread::spawn(move || {
        db::on_own_runtime(async move {
            let admin = db::connect(&config).await;
            admin
                .batch_execute(
                    "BEGIN; INSERT INTO custody_audit (chain, seq, hash, record, time_ms) \
                     VALUES ('wallet:w', 2, decode(repeat('00', 32), 'hex'), 'held', 0)",
                )
                .await
                .unwrap();
            held.send(()).unwrap();
            let started = std::time::Instant::now();
            loop {
                let n: i64 = admin
                    .query_one(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) \
                         FROM pg_stat_activity WHERE application_name = $1 \
                         AND wait_event_type = 'Lock' AND query LIKE '%unnest%'",
                        &[&app],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if n > 0 {
                    break;
                }
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(20),
                    "the commit never waited on the held row"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            admin.batch_execute("ROLLBACK").await.unwrap();
        });
    });
    holding.recv().unwrap();
    let e = both(Some(1), Some(1), 1).unwrap_err();
    blocker.join().unwrap();
    assert_eq!(e.kind(), "unavailable", "{e:?}");
    assert_eq!(
        store.get_many(&["m1", "m2"]).wait().unwrap(),
        [
            custody_core::conformance::v(1, b"one"),
            custody_core::conformance::v(1, b"two")
        ],
        "neither swap"
    );
    assert_eq!(records(), 1, "no record");
    assert_eq!(verified(&log).records, 1);
    // Not acknowledged, not done: the same commit goes through now.
    assert!(matches!(
        both(Some(1), Some(1), 1).unwrap(),
        custody_core::RecordedSwaps::Swapped { ref versions, head } if versions == &[2, 2] && head.seq == 2
    ));
    assert_eq!(verified(&log).records, 2);
}

#[test]
fn racing_multi_swap_commits_count_exactly_and_never_deadlock() {
    let Some(schema) = Schema::fresh("multi_swap_race") else {
        return;
    };
    let store = schema.store(PgOptions::new().with_pool_size(8));
    let threads: Vec<_> = (0..6u32)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let log = store.audit_log();
                // Half the threads name the keys in the other order.
                let keys = if t % 2 == 0 {
                    ["x", "y", "z"]
                } else {
                    ["z", "y", "x"]
                };
                let (mut acked, mut conflicts) = (0u64, 0u64);
                while acked < 15 {
                    let seen = store.get_many(&keys).wait().unwrap();
                    let count = |r: &Option<custody_core::Versioned>| {
                        r.as_ref()
                            .map_or(0, |r| u64::from_be_bytes((*r.value).try_into().unwrap()))
                    };
                    let values: Vec<[u8; 8]> =
                        seen.iter().map(|r| (count(r) + 1).to_be_bytes()).collect();
                    let swaps: Vec<_> = keys
                        .iter()
                        .zip(&seen)
                        .zip(&values)
                        .map(|((k, r), v)| swap(k, r.as_ref().map(|r| r.version), v))
                        .collect();
                    match store
                        .compare_and_swap_all_recorded(&swaps, event("race", t), &log)
                        .wait()
                        .unwrap()
                    {
                        custody_core::RecordedSwaps::Swapped { .. } => acked += 1,
                        custody_core::RecordedSwaps::Conflict { .. } => conflicts += 1,
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: u64 = threads.into_iter().map(|h| h.join().unwrap()).sum();
    println!("90 multi-swap commits over 3 shared keys, {conflicts} conflicts");
    let total = 6 * 15u64;
    for key in ["x", "y", "z"] {
        assert_eq!(
            store.get(key).wait().unwrap(),
            custody_core::conformance::v(total, &total.to_be_bytes()),
            "{key}"
        );
    }
    assert_eq!(verified(&store.audit_log()).records, total);
}

/// An administrator's transaction holding the rows of `keys` locked
/// (`SELECT … FOR UPDATE`) until [`Held::release`].
struct Held {
    release: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Held {
    fn lock(schema: &Schema, keys: &[&str]) -> Self {
        let config = schema.admin_config();
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        let (locked, is_locked) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            db::on_own_runtime(async move {
                let admin = db::connect(&config).await;
                admin.batch_execute("BEGIN").await.unwrap();
                let rows = admin
                    .query(
                        "SELECT key FROM custody_state WHERE key = ANY($1) FOR UPDATE",
                        &[&keys],
                    )
                    .await
                    .unwrap();
                assert_eq!(rows.len(), keys.len());
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
    let started = std::time::Instant::now();
    while schema.admin_i64(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{}' AND wait_event_type = 'Lock'",
        schema.application_name()
    )) == 0
    {
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The commits `items` (a wallet and its swaps each) queued behind a lone
/// commit of `hold` that waits on `held`: they go to the server as one
/// batch once it is released.
fn queued_batch(
    schema: &Schema,
    store: &PgStateStore,
    items: [(&'static str, Vec<custody_core::Swap<'static>>); 3],
) -> Vec<std::thread::JoinHandle<Result<custody_core::RecordedSwaps, custody_core::Error>>> {
    let spawn = |wallet: &'static str, swaps: Vec<custody_core::Swap<'static>>| {
        let store = store.clone();
        std::thread::spawn(move || {
            store
                .compare_and_swap_all_recorded(&swaps, event(wallet, 1), &store.audit_log())
                .wait()
        })
    };
    let lone = spawn("hold", vec![swap("hold", Some(1), b"spent")]);
    until_waiting(schema);
    let queued = items.map(|(wallet, swaps)| spawn(wallet, swaps));
    // They queue behind the lone commit (one committer).
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut all = vec![lone];
    all.extend(queued);
    all
}

/// `a`, `b` and `c` each spending its guard (created at version 1), `b`'s
/// expecting `b_expected`.
fn spends(b_expected: u64) -> [(&'static str, Vec<custody_core::Swap<'static>>); 3] {
    [
        ("a", vec![swap("guard-a", Some(1), b"spent")]),
        ("b", vec![swap("guard-b", Some(b_expected), b"spent")]),
        ("c", vec![swap("guard-c", Some(1), b"spent")]),
    ]
}

/// A store with group commit on (off by default), its four guards created.
fn with_guards(test: &str) -> Option<(Schema, PgStateStore)> {
    let schema = Schema::fresh(test)?;
    let store = schema.store(PgOptions::new().with_commit_batch(32));
    let log = store.audit_log();
    for (wallet, key) in [
        ("hold", "hold"),
        ("a", "guard-a"),
        ("b", "guard-b"),
        ("c", "guard-c"),
    ] {
        let _ = store
            .compare_and_swap_all_recorded(&[swap(key, None, b"fresh")], event(wallet, 0), &log)
            .wait()
            .unwrap();
    }
    Some((schema, store))
}

#[test]
fn a_batch_commits_each_item_on_its_own_and_refuses_only_the_conflicting_one() {
    let Some((schema, store)) = with_guards("batch_with_conflict") else {
        return;
    };
    let (batches, commits) = store.commit_batches();
    let held = Held::lock(&schema, &["hold"]);
    let handles = queued_batch(&schema, &store, spends(7));
    held.release();
    let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let (after_batches, after_commits) = store.commit_batches();
    assert_eq!(
        (after_batches - batches, after_commits - commits),
        (2, 4),
        "the lone commit, then a, b and c in one batch"
    );
    for (n, answer) in answers.into_iter().enumerate() {
        match (n, answer.unwrap()) {
            (2, custody_core::RecordedSwaps::Conflict { index, current }) => {
                assert_eq!(
                    (index, current),
                    (0, custody_core::conformance::v(1, b"fresh"))
                );
            }
            (2, other) => panic!("b expected version 7: {other:?}"),
            (_, custody_core::RecordedSwaps::Swapped { versions, head }) => {
                assert_eq!((versions, head.seq), (vec![2], 2), "item {n}");
            }
            (_, other) => panic!("item {n}: {other:?}"),
        }
    }
    let read = store
        .get_many(&["guard-a", "guard-b", "guard-c"])
        .wait()
        .unwrap();
    let v = |n, value: &[u8]| custody_core::conformance::v(n, value);
    assert_eq!(read, [v(2, b"spent"), v(1, b"fresh"), v(2, b"spent")]);
    // Four creates, the lone commit, a and c: no record of b's refusal
    // here (the audit layer appends that), and every chain verifies.
    assert_eq!(verified(&store.audit_log()).records, 7);
    assert_eq!(schema.chain_lines("wallet:b").lines().count(), 1);
}

#[test]
fn checks_in_a_batch_hold_or_conflict_item_by_item_and_write_nothing() {
    let Some((schema, store)) = with_guards("batch_with_checks") else {
        return;
    };
    let (batches, commits) = store.commit_batches();
    let held = Held::lock(&schema, &["hold"]);
    // `a` spends its guard if `hold` is still at 2 (the lone commit's
    // version), `b` if `guard-c` were at 7, `c` only checks its own guard.
    let handles = queued_batch(
        &schema,
        &store,
        [
            (
                "a",
                vec![
                    swap("guard-a", Some(1), b"spent"),
                    custody_core::Swap::unchanged("hold", 2),
                ],
            ),
            (
                "b",
                vec![
                    swap("guard-b", Some(1), b"spent"),
                    custody_core::Swap::unchanged("guard-c", 7),
                ],
            ),
            ("c", vec![custody_core::Swap::unchanged("guard-c", 1)]),
        ],
    );
    held.release();
    let answers: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    let (after_batches, after_commits) = store.commit_batches();
    assert_eq!(
        (after_batches - batches, after_commits - commits),
        (2, 4),
        "the lone commit, then a, b and c in one batch"
    );
    let v = |n, value: &[u8]| custody_core::conformance::v(n, value);
    let versions = |answer: &custody_core::RecordedSwaps| match answer {
        custody_core::RecordedSwaps::Swapped { versions, .. } => versions.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(versions(&answers[1]), [2, 2], "a: written, and checked");
    assert_eq!(
        answers[2],
        custody_core::RecordedSwaps::Conflict {
            index: 1,
            current: v(1, b"fresh"),
        },
        "b: its check failed"
    );
    assert_eq!(versions(&answers[3]), [1], "c: checked, unchanged");
    assert_eq!(
        store
            .get_many(&["hold", "guard-a", "guard-b", "guard-c"])
            .wait()
            .unwrap(),
        [
            v(2, b"spent"),
            v(2, b"spent"),
            v(1, b"fresh"),
            v(1, b"fresh")
        ],
        "b wrote nothing, c's check wrote nothing"
    );
    // Four creates, the lone commit, a and c (a check is recorded too).
    assert_eq!(verified(&store.audit_log()).records, 7);
    assert_eq!(schema.chain_lines("wallet:b").lines().count(), 1);
    assert_eq!(schema.chain_lines("wallet:c").lines().count(), 2);
}

#[test]
fn a_check_holds_at_the_commit_not_at_the_start_of_its_statement() {
    let Some((schema, store)) = with_guards("check_at_commit") else {
        return;
    };
    // An administrator's transaction rewrites `guard-c` and has not
    // committed yet when a commit that checks it starts.
    let config = schema.admin_config();
    let (updated, is_updated) = std::sync::mpsc::channel::<()>();
    let (commit, to_commit) = std::sync::mpsc::channel::<()>();
    let admin = std::thread::spawn(move || {
        db::on_own_runtime(async move {
            let admin = db::connect(&config).await;
            admin.batch_execute("BEGIN").await.unwrap();
            let n = admin
                .execute(
                    "UPDATE custody_state SET version = version + 1, value = 'rotated'::bytea \
                     WHERE key = 'guard-c'",
                    &[],
                )
                .await
                .unwrap();
            assert_eq!(n, 1);
            updated.send(()).unwrap();
            tokio::task::spawn_blocking(move || to_commit.recv())
                .await
                .unwrap()
                .unwrap();
            admin.batch_execute("COMMIT").await.unwrap();
        });
    });
    is_updated.recv().unwrap();
    let checking = {
        let store = store.clone();
        std::thread::spawn(move || {
            store
                .compare_and_swap_all_recorded(
                    &[
                        swap("guard-a", Some(1), b"spent"),
                        custody_core::Swap::unchanged("guard-c", 1),
                    ],
                    event("a", 1),
                    &store.audit_log(),
                )
                .wait()
        })
    };
    // The check waits for the row (it locks what it checks), so the
    // rewrite commits first and the check sees it: a conflict, where a
    // comparison with the statement's snapshot would have passed.
    until_waiting(&schema);
    commit.send(()).unwrap();
    admin.join().unwrap();
    let v = |n, value: &[u8]| custody_core::conformance::v(n, value);
    assert_eq!(
        checking.join().unwrap().unwrap(),
        custody_core::RecordedSwaps::Conflict {
            index: 1,
            current: v(2, b"rotated"),
        }
    );
    assert_eq!(
        store.get_many(&["guard-a", "guard-c"]).wait().unwrap(),
        [v(1, b"fresh"), v(2, b"rotated")]
    );
    // The four creates only.
    assert_eq!(verified(&store.audit_log()).records, 4);
}

#[test]
fn a_batch_whose_connection_is_terminated_acknowledges_none() {
    let Some((schema, store)) = with_guards("batch_terminated") else {
        return;
    };
    let held = Held::lock(&schema, &["hold"]);
    // `a`'s guard is held too: the batch's first statement waits on it.
    let held_a = Held::lock(&schema, &["guard-a"]);
    let handles = queued_batch(&schema, &store, spends(1));
    held.release();
    // The lone commit finishes; the batch then waits on `guard-a`.
    let mut handles = handles.into_iter();
    assert!(matches!(
        handles.next().unwrap().join().unwrap().unwrap(),
        custody_core::RecordedSwaps::Swapped { .. }
    ));
    until_waiting(&schema);
    let terminated = schema.admin_i64(&format!(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = '{}' AND wait_event_type = 'Lock'",
        schema.application_name()
    ));
    assert_eq!(terminated, 1);
    for handle in handles {
        let e = handle.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), "unavailable", "{e:?}");
    }
    held_a.release();
    let v = |n, value: &[u8]| custody_core::conformance::v(n, value);
    assert_eq!(
        store
            .get_many(&["guard-a", "guard-b", "guard-c"])
            .wait()
            .unwrap(),
        [v(1, b"fresh"), v(1, b"fresh"), v(1, b"fresh")],
        "none of the batch"
    );
    // Four creates and the lone commit: no record of the batch.
    assert_eq!(verified(&store.audit_log()).records, 5);
    // Nothing acknowledged, nothing done: the same commits go through now.
    let log = store.audit_log();
    for (wallet, key) in [("a", "guard-a"), ("b", "guard-b"), ("c", "guard-c")] {
        assert!(matches!(
            store
                .compare_and_swap_all_recorded(
                    &[swap(key, Some(1), b"spent")],
                    event(wallet, 1),
                    &log
                )
                .wait()
                .unwrap(),
            custody_core::RecordedSwaps::Swapped { .. }
        ));
    }
    assert_eq!(verified(&log).records, 8);
}
