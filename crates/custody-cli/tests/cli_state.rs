//! `--state` (shared/CLI.md, "Shared state"): the TOTP guard and the audit
//! log of a keystore in PostgreSQL, shared by signer replicas (copies of
//! one keystore on other machines), `custody audit verify` over the file
//! log and the database, `custody audit checkpoint` and `custody state
//! migrate`. The database tests need `CUSTODY_TEST_POSTGRES_URL` (and
//! `CUSTODY_TEST_POSTGRES_BIN` for `psql`), which `.ci/run` sets; they are
//! skipped, saying so, without them. The file-log test always runs.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::path::Path;

use serde_json::Value;

#[path = "support/psql.rs"]
mod psql;
#[path = "support/world.rs"]
mod world;
use psql::Db;
use world::{ABANDON, Run, code_at, custody, now};

const HASH: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";

/// `custody --keystore DIR --state STATE ARGS`.
fn run(dir: &Path, state: &str, args: &[&str]) -> Run {
    custody(dir, &[&["--state", state], args].concat())
}

fn init(dir: &Path, state: &str) {
    let mnemonic = dir.with_extension("mnemonic");
    std::fs::write(&mnemonic, ABANDON).unwrap();
    run(
        dir,
        state,
        &[
            "init",
            "--light-kdf",
            "--mnemonic-file",
            mnemonic.to_str().unwrap(),
        ],
    )
    .ok();
}

fn sign(dir: &Path, state: &str, code: Option<&str>) -> Run {
    let mut args = vec![
        "sign-hash",
        "--wallet",
        "alice",
        "--index",
        "0",
        "--hash",
        HASH,
    ];
    if let Some(c) = code {
        args.extend(["--code", c]);
    }
    run(dir, state, &args)
}

#[test]
fn the_file_log_verifies_and_a_break_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    init(&dir, "file");
    sign(&dir, "file", None).ok();
    sign(&dir, "file", None).ok();
    let out = run(&dir, "file", &["audit", "verify"]).ok();
    // create + unwrap, then per signature an unwrap (the open) and the sign.
    assert_eq!(out["records"], 6, "{out}");
    assert_eq!(out["chains"], 1);
    assert_eq!(out["checkpoint"], Value::Null);
    assert_eq!(out["ok"], true);
    // An edited record: named by its sequence number.
    let log = dir.join("audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3] = lines[3].replace("\"sign\"", "\"unwrap\"");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let r = run(&dir, "file", &["audit", "verify"]);
    assert_eq!((r.code, r.kind()), (1, "audit-broken"), "{}", r.err);
    assert!(r.message().contains("record 4"), "{}", r.message());
    // The database-only commands say what they need.
    for args in [&["audit", "checkpoint"][..], &["state", "migrate"]] {
        let r = run(&dir, "file", args);
        assert_eq!((r.code, r.kind()), (2, "bad-input"), "{args:?}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn replicas_share_one_guard_and_one_log() {
    let Some(db) = Db::fresh("replicas") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // The schema is created on first use.
    init(&a, &db.url);
    assert!(!a.join("audit.log").exists(), "records go to the database");
    assert_eq!(
        db.sql("SELECT max(version) FROM custody_schema_version"),
        custody_postgres::SCHEMA_VERSION.to_string()
    );
    // A second signer: a copy of the keystore on another machine.
    copy_dir(&a, &b);
    let secret = run(&a, &db.url, &["totp", "register", "--wallet", "alice"]).ok()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = code_at(&secret, now());
    // Both replicas see the enrolment; the code is spent once, for both.
    assert_eq!(sign(&b, &db.url, None).kind(), "totp-required");
    sign(&a, &db.url, Some(&code)).ok();
    let replayed = sign(&b, &db.url, Some(&code));
    assert_eq!((replayed.code, replayed.kind()), (3, "totp-replayed"));
    // The same code on a copy that keeps its own (file) state is a replay
    // the guard cannot see: the copy is not even enrolled there.
    assert_eq!(sign(&b, "file", Some(&code)).code, 0);

    let report = run(&a, &db.url, &["audit", "verify"]).ok();
    assert_eq!(report["ok"], true);
    assert_eq!(report["checkpoint"], Value::Null);
    let records = report["records"].as_u64().unwrap();
    assert_eq!(
        records.to_string(),
        db.sql("SELECT count(*) FROM custody_audit"),
        "every record verified"
    );
    assert_eq!(
        report["chains"].as_u64().unwrap().to_string(),
        db.sql("SELECT count(DISTINCT chain) FROM custody_audit")
    );
    // The spent code's record and the refusal are in alice's chain.
    let alice = db.sql(
        "SELECT string_agg(record::json->'event'->>'op' || ' ' || (record::json->'event'->>'outcome'), ',' ORDER BY seq) \
         FROM custody_audit WHERE chain = 'wallet:alice'",
    );
    assert!(alice.contains("sign success"), "{alice}");
    assert!(alice.contains("totp-verify denied"), "{alice}");
    // The code was spent by the commit of the signature's record (one
    // record per signature, naming the step).
    assert!(!alice.contains("totp-verify success"), "{alice}");
    assert_eq!(
        db.sql(
            "SELECT count(*) FROM custody_audit WHERE chain = 'wallet:alice' \
             AND record::json->'event'->>'op' = 'sign' AND record::json->'event'->>'totp-step' IS NOT NULL"
        ),
        "1"
    );

    // A checkpoint signed by the keystore's checkpoint key.
    let cp = run(
        &a,
        &db.url,
        &["audit", "checkpoint", "--origin", "custody.test"],
    )
    .ok();
    assert_eq!(cp["id"], 1);
    let key = cp["publicKey"].as_str().unwrap().to_owned();
    let checked = run(&b, &db.url, &["audit", "verify", "--checkpoint-key", &key]).ok();
    assert_eq!(checked["checkpoint"]["id"], 1);
    assert_eq!(checked["checkpoint"]["origin"], "custody.test");
    assert_eq!(checked["checkpoint"]["records"], cp["records"]);
    let other = "0x0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let r = run(&b, &db.url, &["audit", "verify", "--checkpoint-key", other]);
    assert_eq!(r.kind(), "audit-broken");

    // A record removed below the checkpoint: named by chain and record.
    db.sql("DELETE FROM custody_audit WHERE chain = 'wallet:alice' AND seq = 2");
    let r = run(&a, &db.url, &["audit", "verify"]);
    assert_eq!((r.code, r.kind()), (1, "audit-broken"), "{}", r.err);
    assert!(
        r.message().contains("\"wallet:alice\" record 2"),
        "{}",
        r.message()
    );

    assert_eq!(
        run(&a, &db.url, &["state", "migrate"]).ok()["schemaVersion"],
        custody_postgres::SCHEMA_VERSION
    );
}

#[test]
fn the_password_never_goes_in_the_url() {
    let tmp = tempfile::tempdir().unwrap();
    let r = run(
        &tmp.path().join("ks"),
        "postgres://signer:hunter2@127.0.0.1:1/custody",
        &["state", "migrate"],
    );
    assert_eq!((r.code, r.kind()), (2, "bad-input"));
    assert!(!r.err.to_string().contains("hunter2"));
    let r = run(&tmp.path().join("ks"), "mysql://x", &["state", "migrate"]);
    assert_eq!((r.code, r.kind()), (2, "bad-input"));
}

#[test]
fn an_unreachable_database_is_unavailable() {
    let tmp = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens.
    let r = run(
        &tmp.path().join("ks"),
        "postgres://signer@127.0.0.1:1/custody?connect_timeout=2",
        &["state", "migrate"],
    );
    assert_eq!((r.code, r.kind()), (1, "unavailable"), "{}", r.err);
}
