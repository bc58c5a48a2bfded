//! The TOTP replay guard across signer replicas sharing one PostgreSQL
//! database: `PROCESSES` processes × `THREADS` threads, each thread a
//! replica of its own (its own `TotpRegistry` over its own `PgStateStore`,
//! the same KEK, its own clock), present the same valid code at once,
//! round after round: exactly one of them is accepted, every other one is
//! refused as a replay.
//!
//! The test binary re-executes itself (as `postgres.rs` and custody-totp's
//! `tests/race.rs` do): `child_racer` is ignored, and a no-op unless the
//! environment names the server and the schema. The parent enrols the
//! wallet (imported from a fixed otpauth URI, so that every process computes
//! the codes itself, with totp-rs) and is one of the racing processes.
//! Per round the parent sends every child `round <n> <time>`; each process
//! advances its clocks by one period, computes the code, starts its racers
//! (held at a barrier) and answers `armed <n>`; when all are armed the
//! parent sends `go <n>` and releases its own. Each process then reports
//! `result <n> <accepted> <replayed> <contention> <conflicts> <spans>`:
//! the outcomes, the compare-and-swaps that lost a race, and when each
//! verification ran (wall-clock nanoseconds), from which the parent
//! computes how many were in flight at once: proof that they raced.
//!
//! Without `CUSTODY_TEST_POSTGRES_URL` the test is skipped, saying so.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[allow(dead_code, reason = "shared with postgres.rs; this test uses a subset")]
#[path = "support/db.rs"]
mod db;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{SystemTime, UNIX_EPOCH};

use custody_core::{
    Authorization, CasOutcome, DataKey, Denial, Digest32, Error as CoreError, Intent, KekId,
    KeyRef, KeySigner, LocalKek, MemoryAuditLog, OneTimeCode, Pending, SharedBackend, StateStore,
    Vault, Versioned, WalletScheme,
};
use custody_postgres::{PgOptions, PgStateStore};
use custody_totp::{
    Clock, EnrolMode, Error as TotpError, ManualClock, OtpAuthUri, TotpConfig, TotpGate,
    TotpRegistry, Verification,
};

use db::Schema;

/// Names the schema of a racing child process.
const SCHEMA_ENV: &str = "CUSTODY_TEST_PG_TOTP_RACE_SCHEMA";
/// Racing processes, the parent included.
const PROCESSES: usize = 4;
/// Replicas (threads) per process.
const THREADS: usize = 4;
const ROUNDS: u64 = 10;
const PERIOD: u64 = 30;
const T0: u64 = 1_800_000_000;
const WALLET: &str = "racer@example.com";
/// The wallet's secret: fixed, so that every process computes the codes.
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

/// The code an authenticator shows at `time`, by totp-rs (SHA-1, 6
/// digits, 30 s: the URI's parameters).
fn code_at(time: u64) -> String {
    let secret = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, SECRET_B32).unwrap();
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(PERIOD)
        .with_secret(secret)
        .build()
        .unwrap()
        .generate(time)
        .to_string()
}

fn uri() -> OtpAuthUri {
    OtpAuthUri::parse(&format!(
        "otpauth://totp/custody:racer%40example.com?secret={SECRET_B32}&issuer=custody&algorithm=SHA1&digits=6&period={PERIOD}"
    ))
    .unwrap()
}

/// A store that counts the compare-and-swaps that lost a race.
#[derive(Debug)]
struct Counted {
    inner: PgStateStore,
    conflicts: Arc<AtomicU64>,
}

impl StateStore for Counted {
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Result<Option<Versioned>, CoreError>> {
        self.inner.get(key)
    }

    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
    ) -> Pending<'a, Result<CasOutcome, CoreError>> {
        self.inner
            .compare_and_swap(key, expected, value)
            .map(|out| {
                if let Ok(CasOutcome::Conflict { .. }) = &out {
                    self.conflicts.fetch_add(1, Ordering::SeqCst);
                }
                out
            })
    }
}

fn kek() -> SharedBackend {
    Arc::new(LocalKek::from_key(
        KekId::new("totp-race").unwrap(),
        DataKey::new([0x33; 32]),
    ))
}

/// One signer replica: its own connection pool, registry and clock.
struct Replica {
    clock: Arc<ManualClock>,
    registry: Arc<TotpRegistry>,
}

fn replica(schema: &Schema, conflicts: &Arc<AtomicU64>) -> Replica {
    // Group commit on (off by default): a process's racing threads' commits
    // then share batches, the path with the most to get wrong.
    let store = PgStateStore::connect(
        schema.config(),
        PgOptions::new().with_pool_size(1).with_commit_batch(32),
    )
    .wait()
    .unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let registry = TotpRegistry::new(
        kek(),
        Arc::new(Counted {
            inner: store,
            conflicts: Arc::clone(conflicts),
        }),
        Arc::new(MemoryAuditLog::new()),
        TotpConfig::new(WalletScheme::Default),
    )
    .unwrap()
    .with_clock(clock.clone());
    Replica {
        clock,
        registry: Arc::new(registry),
    }
}

/// What one process saw in one round.
#[derive(Debug, Default)]
struct Tally {
    accepted: u64,
    replayed: u64,
    /// `Error::Contention`: the registry's documented give-up after too
    /// many lost compare-and-swaps (never accepted).
    contention: u64,
    conflicts: u64,
    /// When each verification started and ended (ns since the epoch).
    spans: Vec<(u128, u128)>,
}

impl Tally {
    fn line(&self, round: u64) -> String {
        let spans: Vec<String> = self.spans.iter().map(|(s, e)| format!("{s}-{e}")).collect();
        format!(
            "result {round} {} {} {} {} {}",
            self.accepted,
            self.replayed,
            self.contention,
            self.conflicts,
            spans.join(" ")
        )
    }

    fn parse(line: &str, round: u64) -> Self {
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("result"));
        let mut number = || parts.next().unwrap().parse::<u64>().unwrap();
        assert_eq!(number(), round);
        let (accepted, replayed, contention, conflicts) = (number(), number(), number(), number());
        let spans = parts
            .map(|span| {
                let (s, e) = span.split_once('-').unwrap();
                (s.parse().unwrap(), e.parse().unwrap())
            })
            .collect();
        Self {
            accepted,
            replayed,
            contention,
            conflicts,
            spans,
        }
    }

    fn add(&mut self, other: Self) {
        self.accepted += other.accepted;
        self.replayed += other.replayed;
        self.contention += other.contention;
        self.conflicts += other.conflicts;
        self.spans.extend(other.spans);
    }

    /// The most verifications in flight at one instant.
    fn peak_overlap(&self) -> usize {
        let mut events: Vec<(u128, i8)> = self
            .spans
            .iter()
            .flat_map(|&(s, e)| [(s, 1), (e, -1)])
            .collect();
        // At equal times, ends before starts: touching is not overlapping.
        events.sort_unstable();
        let (mut now, mut peak) = (0i64, 0i64);
        for (_, d) in events {
            now += i64::from(d);
            peak = peak.max(now);
        }
        usize::try_from(peak).unwrap()
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// One round in one process: advances every replica's clock to `time`,
/// starts one racer per replica (held at a barrier), calls `arm` (which
/// returns when every process is armed), releases them and tallies.
fn race(
    replicas: &[Replica],
    conflicts: &AtomicU64,
    round: u64,
    time: u64,
    arm: impl FnOnce(),
) -> Tally {
    let code = OneTimeCode::new(code_at(time));
    for r in replicas {
        r.clock.advance(PERIOD);
        assert_eq!(
            r.clock.now_unix(),
            time,
            "round {round}: the clocks drifted"
        );
    }
    let barrier = Barrier::new(replicas.len() + 1);
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = replicas
            .iter()
            .map(|r| {
                let (barrier, code) = (&barrier, &code);
                s.spawn(move || {
                    barrier.wait();
                    let start = now_ns();
                    let outcome = r.registry.verify(WALLET, Some(code)).wait();
                    (outcome, (start, now_ns()))
                })
            })
            .collect();
        arm();
        barrier.wait();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut tally = Tally::default();
    for (outcome, span) in outcomes {
        match outcome {
            Ok(Verification::Accepted { step }) => {
                assert_eq!(step, time / PERIOD, "round {round}");
                tally.accepted += 1;
            }
            Ok(Verification::Replayed) => tally.replayed += 1,
            Err(TotpError::Contention) => tally.contention += 1,
            other => panic!("round {round}: unexpected outcome {other:?}"),
        }
        tally.spans.push(span);
    }
    tally.conflicts = conflicts.swap(0, Ordering::SeqCst);
    tally
}

/// The replicas of one process.
fn replicas(schema: &Schema, conflicts: &Arc<AtomicU64>) -> Vec<Replica> {
    (0..THREADS).map(|_| replica(schema, conflicts)).collect()
}

/// Child: races every round the parent announces, until its stdin closes.
#[test]
#[ignore = "run as a child process by one_winner_per_round_across_replicas"]
fn child_racer() {
    let (Ok(url), Ok(schema)) = (std::env::var(db::URL_ENV), std::env::var(SCHEMA_ENV)) else {
        return;
    };
    let schema = Schema::existing(url, schema);
    let conflicts = Arc::new(AtomicU64::new(0));
    let replicas = replicas(&schema, &conflicts);
    let mut out = std::io::stdout().lock();
    // libtest may have printed "test child_racer ... " without a newline.
    writeln!(out, "\nready").unwrap();
    out.flush().unwrap();
    let mut lines = std::io::stdin().lock().lines();
    while let Some(line) = lines.next() {
        let line = line.unwrap();
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("round"));
        let round: u64 = parts.next().unwrap().parse().unwrap();
        let time: u64 = parts.next().unwrap().parse().unwrap();
        let tally = race(&replicas, &conflicts, round, time, || {
            writeln!(out, "armed {round}").unwrap();
            out.flush().unwrap();
            assert_eq!(lines.next().unwrap().unwrap(), format!("go {round}"));
        });
        writeln!(out, "{}", tally.line(round)).unwrap();
        out.flush().unwrap();
    }
}

struct ChildProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl ChildProcess {
    fn spawn(schema: &Schema) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_racer",
                "--nocapture",
                "--include-ignored",
                "--test-threads=1",
            ])
            .env(db::URL_ENV, &schema.url)
            .env(SCHEMA_ENV, &schema.name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
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
fn one_winner_per_round_across_replicas() {
    let Some(schema) = Schema::fresh("totp_race") else {
        return;
    };
    // The schema, and the wallet enrolled once, by an admin replica that
    // then checks each round's spent code through a `TotpGate`.
    let _migrated = schema.store(PgOptions::new().with_pool_size(1));
    let admin = replica(&schema, &Arc::new(AtomicU64::new(0)));
    let uri = uri();
    admin
        .registry
        .import(WALLET, &uri, EnrolMode::New)
        .wait()
        .unwrap();
    // totp-rs agrees with custody-totp on the codes.
    assert_eq!(
        uri.params()
            .code_at(uri.expose_secret(), T0)
            .unwrap()
            .expose_str(),
        code_at(T0)
    );
    let mut vault = Vault::new(kek(), WalletScheme::Default);
    vault.set_master_seed(&[0x44; 64]).unwrap();
    let gate: SharedBackend = Arc::new(TotpGate::new(Arc::new(vault), admin.registry.clone()));
    let signer = KeySigner::pin(
        gate,
        KeyRef::Wallet {
            name: WALLET.into(),
            index: 0,
        },
    )
    .wait()
    .unwrap();

    let mut children: Vec<ChildProcess> = (1..PROCESSES)
        .map(|_| ChildProcess::spawn(&schema))
        .collect();
    for c in &mut children {
        c.expect_line("ready");
    }
    let conflicts = Arc::new(AtomicU64::new(0));
    let own = replicas(&schema, &conflicts);

    let (mut winners, mut lost, mut total_conflicts, mut contention) = (0, 0, 0, 0);
    let mut peaks = Vec::new();
    for round in 1..=ROUNDS {
        let time = T0 + PERIOD * round;
        for c in &mut children {
            c.send(&format!("round {round} {time}"));
        }
        let mut tally = race(&own, &conflicts, round, time, || {
            for c in &mut children {
                c.expect_line(&format!("armed {round}"));
            }
            for c in &mut children {
                c.send(&format!("go {round}"));
            }
        });
        for c in &mut children {
            tally.add(Tally::parse(&c.expect_line("result "), round));
        }
        assert_eq!(
            tally.accepted, 1,
            "round {round}: {} replicas accepted one code",
            tally.accepted
        );
        assert_eq!(
            tally.replayed + tally.contention,
            (PROCESSES * THREADS - 1) as u64,
            "round {round}: {tally:?}"
        );
        assert_eq!(tally.spans.len(), PROCESSES * THREADS);
        winners += tally.accepted;
        lost += tally.replayed + tally.contention;
        contention += tally.contention;
        total_conflicts += tally.conflicts;
        peaks.push(tally.peak_overlap());

        // A replica behind the gate finds the code spent too.
        admin.clock.advance(PERIOD);
        let refused = signer
            .sign(
                Digest32([0x5e; 32]),
                Intent::raw_digest(),
                &Authorization::totp(code_at(time)),
            )
            .wait();
        assert!(
            matches!(refused, Err(CoreError::Denied(Denial::TotpReplayed))),
            "round {round}: the gate gave {refused:?}"
        );
    }
    for mut c in children {
        drop(c.stdin);
        assert!(c.child.wait().unwrap().success());
    }
    println!(
        "{PROCESSES} processes x {THREADS} threads, {ROUNDS} rounds: {winners} winners, {lost} lost races, {total_conflicts} CAS conflicts"
    );
    println!(
        "  verifications in flight at once, per round: {peaks:?} (of {}); {contention} gave up on contention",
        PROCESSES * THREADS
    );
    assert_eq!(winners, ROUNDS);
    assert_eq!(lost, ROUNDS * (PROCESSES * THREADS - 1) as u64);
    assert!(total_conflicts > 0, "the replicas never raced");
}
