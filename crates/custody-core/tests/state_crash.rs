//! `kill -9` tests of the file state store.
//!
//! The test binary re-executes itself: the parent runs one of the `child_*`
//! tests (ignored, and a no-op unless the environment names a store
//! directory) in a child process, reads what the child acknowledged on its
//! stdout, kills it at a random moment (`Child::kill` is `SIGKILL` on unix:
//! no destructor, no flush, no chance to finish a write), and reopens the
//! store to check that every record parses and nothing acknowledged is lost.

#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use custody_core::{CasOutcome, FileStore, StateStore};
use sha2::{Digest, Sha256};

/// Names the store directory of a child process.
const DIR_ENV: &str = "CUSTODY_STATE_CRASH_DIR";
/// How many increments a `child_incrementer` makes.
const COUNT_ENV: &str = "CUSTODY_STATE_CRASH_COUNT";
/// The counters a `child_writer` increments, round robin.
const KEYS: [&str; 3] = ["counter", "totp:zoë@example.com", "lockout:bob"];
/// A child that is never killed stops on its own after this long.
const CHILD_DEADLINE: Duration = Duration::from_secs(20);

fn parse_counter(value: &[u8]) -> u64 {
    std::str::from_utf8(value).unwrap().parse().unwrap()
}

/// Adds one to the decimal counter under `key`; returns the new value once
/// the swap is acknowledged.
fn increment(store: &FileStore, key: &str) -> u64 {
    let mut seen = store.get(key).wait().unwrap();
    loop {
        let n = seen.as_ref().map_or(0, |v| parse_counter(&v.value));
        let next = n + 1;
        let expected = seen.as_ref().map(|v| v.version);
        match store
            .compare_and_swap(key, expected, next.to_string().as_bytes())
            .wait()
            .unwrap()
        {
            CasOutcome::Swapped { .. } => return next,
            CasOutcome::Conflict { current } => seen = current,
        }
    }
}

/// Child: increments the counters round robin until killed, printing
/// `ack <key index> <value>` after each acknowledged swap.
#[test]
#[ignore = "run as a child process by kill_minus_9_loses_nothing_acknowledged"]
fn child_writer() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let store = FileStore::open(dir).unwrap();
    let mut out = std::io::stdout().lock();
    // libtest may have printed "test child_writer ... " without a newline.
    writeln!(out).unwrap();
    let deadline = Instant::now() + CHILD_DEADLINE;
    for i in 0.. {
        if Instant::now() > deadline {
            break;
        }
        let k = i % KEYS.len();
        let n = increment(&store, KEYS[k]);
        writeln!(out, "ack {k} {n}").unwrap();
        out.flush().unwrap();
    }
}

/// Child: increments `KEYS[0]` `$CUSTODY_STATE_CRASH_COUNT` times and exits.
#[test]
#[ignore = "run as a child process by two_processes_count_exactly"]
fn child_incrementer() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let count: u64 = std::env::var(COUNT_ENV).unwrap().parse().unwrap();
    let store = FileStore::open(dir).unwrap();
    for _ in 0..count {
        increment(&store, KEYS[0]);
    }
}

fn spawn_child(test: &str, dir: &Path, count: Option<u64>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        test,
        "--nocapture",
        "--include-ignored",
        "--test-threads=1",
    ])
    .env(DIR_ENV, dir)
    .stdin(Stdio::null())
    .stderr(Stdio::inherit());
    match count {
        // The writer's acknowledgements are read by the parent.
        None => cmd.stdout(Stdio::piped()),
        Some(n) => cmd.env(COUNT_ENV, n.to_string()).stdout(Stdio::null()),
    };
    cmd.spawn().unwrap()
}

/// A delay of 2 to 49 ms from the OS RNG.
fn random_delay() -> Duration {
    let mut b = [0u8; 1];
    getrandom::fill(&mut b).unwrap();
    Duration::from_millis(2 + u64::from(b[0]) % 48)
}

#[test]
fn kill_minus_9_loses_nothing_acknowledged() {
    const ROUNDS: usize = 30;
    let started = Instant::now();
    let mut killed_mid_write = 0;
    for round in 0..ROUNDS {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let mut child = spawn_child("child_writer", &dir, None);
        let stdout = child.stdout.take().unwrap();
        let (first_ack, first_ack_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acked = [0u64; KEYS.len()];
            let mut first_ack = Some(first_ack);
            let mut lines = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).unwrap() == 0 || !line.ends_with('\n') {
                    // EOF, or a line cut by the kill: not an acknowledgement.
                    break;
                }
                let Some(at) = line.find("ack ") else {
                    continue;
                };
                let mut parts = line[at + 4..].split_whitespace();
                let k: usize = parts.next().unwrap().parse().unwrap();
                let n: u64 = parts.next().unwrap().parse().unwrap();
                assert_eq!(n, acked[k] + 1, "the child skipped a value");
                acked[k] = n;
                if let Some(tx) = first_ack.take() {
                    tx.send(()).unwrap();
                }
            }
            acked
        });
        first_ack_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the child acknowledged nothing");
        std::thread::sleep(random_delay());
        child.kill().unwrap();
        child.wait().unwrap();
        let acked = reader.join().unwrap();

        // Every record parses, and holds at least what was acknowledged and
        // at most one unacknowledged increment more (the swap in flight).
        let store = FileStore::open(&dir).unwrap();
        let mut ahead = 0;
        for (k, key) in KEYS.iter().enumerate() {
            let record = store.get(key).wait().unwrap_or_else(|e| {
                panic!("round {round}: record {key:?} is damaged after kill -9: {e:?}")
            });
            let value = record.as_ref().map_or(0, |r| parse_counter(&r.value));
            let version = record.as_ref().map_or(0, |r| r.version);
            assert_eq!(value, version, "round {round}: {key:?}");
            assert!(
                value == acked[k] || value == acked[k] + 1,
                "round {round}: {key:?} holds {value}, acknowledged {}",
                acked[k]
            );
            if value > acked[k] {
                ahead += 1;
            }
        }
        // One swap at a time: at most one counter is past its ack.
        assert!(
            ahead <= 1,
            "round {round}: {ahead} counters ahead of their acks"
        );
        killed_mid_write += ahead;

        // Nothing but records, their lock files and stray temp files.
        let names: Vec<String> = KEYS
            .iter()
            .map(|k| hex::encode(Sha256::digest(k.as_bytes())))
            .collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let known = names
                .iter()
                .any(|n| name == *n || name == format!("{n}.lock"))
                || (name.starts_with('.') && name.ends_with(".tmp"));
            assert!(known, "round {round}: unexpected file {name}");
        }

        // The store carries on from there.
        let next = increment(&store, KEYS[0]);
        assert!(next > acked[0]);
    }
    eprintln!(
        "{ROUNDS} kills in {:?}; {killed_mid_write} landed between a swap and its ack",
        started.elapsed()
    );
}

#[test]
fn two_processes_count_exactly() {
    const N: u64 = 100;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let children: Vec<Child> = (0..2)
        .map(|_| spawn_child("child_incrementer", &dir, Some(N)))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let store = FileStore::open(&dir).unwrap();
    let record = store.get(KEYS[0]).wait().unwrap().unwrap();
    assert_eq!(parse_counter(&record.value), 2 * N);
    assert_eq!(record.version, 2 * N);
}
