//! Many threads in several processes present the same valid code at once,
//! against one `FileStore`: exactly one of them signs, every round.
//!
//! The test binary re-executes itself (as `custody-core`'s
//! `tests/state_crash.rs` does): `child_racer` is ignored, and a no-op
//! unless the environment names a store directory. Each child runs
//! `THREADS` threads per round; the parent runs as many itself. Per round
//! the parent sends every child `round <n> <time> <code>` on its stdin, all
//! racers present that code through a `TotpGate` over a real vault, and
//! each process reports how many signed, how many were refused as replays,
//! and how many compare-and-swaps lost a race (proof that they did race).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers outside #[test] fns: a failed unwrap or panic is a failed test"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use custody_core::{
    Authorization, CasOutcome, DataKey, Denial, Digest32, Error as CoreError, FileStore, Intent,
    KekId, KeyRef, KeySigner, LocalKek, MemoryAuditLog, Pending, SharedBackend, StateStore, Vault,
    Versioned, WalletScheme,
};
use custody_totp::{EnrolMode, ManualClock, TotpConfig, TotpGate, TotpRegistry};

const DIR_ENV: &str = "CUSTODY_TOTP_RACE_DIR";
const THREADS: usize = 8;
const CHILDREN: usize = 3;
const ROUNDS: u64 = 20;
const T0: u64 = 1_800_000_000;
const WALLET: &str = "racer@example.com";

/// A store that counts the compare-and-swaps that lost a race.
#[derive(Debug)]
struct Observed {
    inner: FileStore,
    conflicts: AtomicUsize,
}

impl Observed {
    fn get_now(&self, key: &str) -> Result<Option<Versioned>, CoreError> {
        self.inner.get(key).wait()
    }
    fn swap_now(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
    ) -> Result<CasOutcome, CoreError> {
        let out = self.inner.compare_and_swap(key, expected, value).wait()?;
        if matches!(out, CasOutcome::Conflict { .. }) {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        Ok(out)
    }
}

impl StateStore for Observed {
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Result<Option<Versioned>, CoreError>> {
        Pending::ready(self.get_now(key))
    }
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
    ) -> Pending<'a, Result<CasOutcome, CoreError>> {
        Pending::ready(self.swap_now(key, expected, value))
    }
}

/// What every process builds over the shared directory: the same KEK and
/// seed, its own clock.
struct Racer {
    clock: Arc<ManualClock>,
    store: Arc<Observed>,
    registry: Arc<TotpRegistry>,
    signer: KeySigner,
}

fn racer(dir: &Path) -> Racer {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("race").unwrap(),
        DataKey::new([0x33; 32]),
    ));
    let mut vault = Vault::new(kek.clone(), WalletScheme::Default);
    vault.set_master_seed(&[0x44; 64]).unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let store = Arc::new(Observed {
        inner: FileStore::open(dir).unwrap(),
        conflicts: AtomicUsize::new(0),
    });
    let registry = Arc::new(
        TotpRegistry::new(
            kek,
            store.clone(),
            Arc::new(MemoryAuditLog::new()),
            TotpConfig::new(WalletScheme::Default),
        )
        .unwrap()
        .with_clock(clock.clone()),
    );
    let gate: SharedBackend = Arc::new(TotpGate::new(Arc::new(vault), registry.clone()));
    let signer = KeySigner::pin(
        gate,
        KeyRef::Wallet {
            name: WALLET.into(),
            index: 0,
        },
    )
    .wait()
    .unwrap();
    Racer {
        clock,
        store,
        registry,
        signer,
    }
}

/// Runs `THREADS` racers presenting `code`; returns (signed, replayed).
fn race(r: &Racer, code: &str) -> (usize, usize) {
    let barrier = Arc::new(Barrier::new(THREADS));
    let results: Vec<Result<(), CoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    let auth = Authorization::totp(code);
                    barrier.wait();
                    r.signer
                        .sign(Digest32([0x5e; 32]), Intent::raw_digest(), &auth)
                        .wait()
                        .map(|_| ())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut signed = 0;
    let mut replayed = 0;
    for result in results {
        match result {
            Ok(()) => signed += 1,
            Err(CoreError::Denied(Denial::TotpReplayed)) => replayed += 1,
            Err(e) => panic!("unexpected outcome {e:?}"),
        }
    }
    (signed, replayed)
}

#[test]
#[ignore = "run as a child process by one_winner_across_threads_and_processes"]
fn child_racer() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let r = racer(Path::new(&dir));
    let mut out = std::io::stdout().lock();
    writeln!(out).unwrap();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("round"));
        let round: u64 = parts.next().unwrap().parse().unwrap();
        let time: u64 = parts.next().unwrap().parse().unwrap();
        let code = parts.next().unwrap().to_owned();
        r.clock.set(time);
        let (signed, replayed) = race(&r, &code);
        let conflicts = r.store.conflicts.swap(0, Ordering::SeqCst);
        writeln!(out, "result {round} {signed} {replayed} {conflicts}").unwrap();
        out.flush().unwrap();
    }
}

struct ChildProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl ChildProcess {
    fn spawn(dir: &Path) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_racer",
                "--nocapture",
                "--include-ignored",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut c = Self {
            child,
            stdin,
            stdout,
        };
        c.expect_line("ready");
        c
    }

    /// The next line that contains `prefix`, from `prefix` on.
    fn expect_line(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "child exited"
            );
            if let Some(at) = line.find(prefix) {
                return line[at..].trim_end().to_owned();
            }
        }
    }
}

#[test]
fn one_winner_across_threads_and_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let parent = racer(&dir);
    let enrolment = parent
        .registry
        .enrol(WALLET, EnrolMode::New)
        .wait()
        .unwrap();
    let mut children: Vec<ChildProcess> =
        (0..CHILDREN).map(|_| ChildProcess::spawn(&dir)).collect();
    let mut total_conflicts = 0;
    for round in 0..ROUNDS {
        let time = T0 + 30 * round;
        let code = enrolment
            .params()
            .code_at(enrolment.uri().expose_secret(), time)
            .unwrap();
        for c in &mut children {
            writeln!(c.stdin, "round {round} {time} {}", code.expose_str()).unwrap();
            c.stdin.flush().unwrap();
        }
        parent.clock.set(time);
        let (mut signed, mut replayed) = race(&parent, code.expose_str());
        total_conflicts += parent.store.conflicts.swap(0, Ordering::SeqCst);
        for c in &mut children {
            let line = c.expect_line("result ");
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .map(|x| x.parse().unwrap())
                .collect();
            assert_eq!(v[0], round);
            signed += usize::try_from(v[1]).unwrap();
            replayed += usize::try_from(v[2]).unwrap();
            total_conflicts += usize::try_from(v[3]).unwrap();
        }
        assert_eq!(
            signed, 1,
            "round {round}: {signed} signatures from one code"
        );
        assert_eq!(replayed, THREADS * (CHILDREN + 1) - 1, "round {round}");
    }
    for mut c in children {
        drop(c.stdin);
        assert!(c.child.wait().unwrap().success());
    }
    eprintln!(
        "{ROUNDS} rounds x {} racers: one winner each; {total_conflicts} compare-and-swaps lost a race",
        THREADS * (CHILDREN + 1)
    );
    assert!(total_conflicts > 0, "the racers never actually raced");
}
