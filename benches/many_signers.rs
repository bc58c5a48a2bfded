//! Many signers over one PostgreSQL: TOTP-gated signatures per second with
//! 1, 2, 4 and 8 wallets signing at once, spread over 2 processes (signer
//! replicas), every signature through `Audited(TotpGate(Vault))` with the
//! guard and the audit log in the database; beside, in the same run and on
//! the same server, `pgbench` running a one-row-update transaction with as
//! many clients (the engine's own limit for one durable commit at that
//! concurrency), and the same signers over the embedded file store.
//!
//! `xacts/sig` is the database's committed transactions (read-only ones
//! included) per signature, from `pg_stat_database`. The signer processes
//! commit each signature on its own, as by default;
//! `CUSTODY_BENCH_COMMIT_BATCH=32` measures with group commit
//! (`PgOptions::with_commit_batch`). They batch their reads
//! (`PgOptions::with_read_batch`, on by default);
//! `CUSTODY_BENCH_READ_BATCH=1` measures without. `CUSTODY_BENCH_WALLETS`
//! (e.g. `8`, or `1,8`) measures only those concurrencies.
//!
//! Two shapes of signer process over PostgreSQL: *threads* (a sync caller:
//! one thread per wallet, each waiting on its signatures while the store's
//! own runtime runs the database calls) and *tasks* (an async service: one
//! task per wallet on a tokio runtime the store is given, `.await`ing its
//! signatures); the file store is measured with threads only (its calls are
//! synchronous file I/O, which has no place on an async executor).
//!
//! `cpu µs/sig` is CPU time per signature over the PostgreSQL threads run,
//! from `/proc` (the server on this machine): `client` is the signer
//! processes' own (every thread: signing, the TOTP check, the store's
//! runtime), `server` their database backends' (found by the
//! `application_name` each process gives its connections). Unlike
//! signatures per second, it holds still when other work shares the
//! machine, so it is what compares two runs on a loaded one; `-` when
//! `/proc` cannot be read. `pgbench µs/xact` is pgbench's the same way (its
//! client process, and its backends found by their `application_name`),
//! sampled from 1 s into its run to 1 s before its end, the transactions
//! counted from the rows it updates.
//!
//! `CUSTODY_BENCH_CORES=split` models signers on machines of their own
//! (production: the database on its own host): the server (its postmaster
//! and every backend, new ones included) is pinned to the first half of
//! the machine's CPUs and everything this bench starts (the signer
//! processes, pgbench's client, psql) to the other half, with `taskset`,
//! for the whole run; pgbench and the signers then share one server
//! budget and neither's client takes CPU from it. The server's affinity is
//! set back to every CPU at the end. Needs the right to set the server's
//! affinity (its owner, or root) and at least 2 CPUs.
//!
//! `CUSTODY_BENCH_ROUTE=spread` models a queue that routes each request
//! to any replica rather than a wallet's to one (the default, *sticky*):
//! each wallet is signed through two replicas in turn, each its own store
//! (its own pool, batches and runtime) and its own registry, so every
//! signature finds its replica's last look at the wallet stale (the other
//! one signed since) and pays what that costs: a commit on warm records
//! that conflicts, then a read and a commit. The two replicas live in the
//! wallet's process (two processes still share the wallets).
//!
//! Not a criterion bench: one measurement spans processes. Each process
//! signs for its wallets for `SECONDS`; a wallet signs one transaction per
//! TOTP step (its clock moves one period per signature, so every code is
//! fresh). The parent prints a table and writes
//! `target/criterion/many_signers/results.json` (`results-split.json` with
//! the cores split, `-spread` added with requests spread).
//!
//! Needs `CUSTODY_TEST_POSTGRES_URL` and `CUSTODY_TEST_POSTGRES_BIN` (for
//! `psql` and `pgbench`), as `.ci/run` and `tests/start_postgres.sh` set
//! them: `cargo bench -p custody-benches --features postgres --bench many_signers`.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark driver: a failure is a broken benchmark, and it reports on stdout"
)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use custody_benches::{eip1559, gated_stack, vault};
use custody_core::{AuditLog, AuditSink, Authorization, FileStore, KeyRef, KeySigner, StateStore};
use custody_eth::EthSigner;
use custody_postgres::{PgOptions, PgStateStore};
use custody_totp::{EnrolMode, ManualClock, OtpAuthUri};

/// How long each measurement runs.
const SECONDS: u64 = 4;
/// The concurrencies measured (wallets signing at once, over 2 processes).
const WALLETS: [usize; 4] = [1, 2, 4, 8];
const PROCESSES: usize = 2;
const PERIOD: u64 = 30;
const T0: u64 = 1_800_000_000;

const CHILD_ENV: &str = "CUSTODY_BENCH_MANY_SIGNERS_CHILD";
/// The signer processes' group-commit bound (`PgOptions::with_commit_batch`).
const BATCH_ENV: &str = "CUSTODY_BENCH_COMMIT_BATCH";
/// The signer processes' read-batch bound (`PgOptions::with_read_batch`).
const READ_BATCH_ENV: &str = "CUSTODY_BENCH_READ_BATCH";
/// `split`: the server and the clients on separate CPUs (module doc).
const CORES_ENV: &str = "CUSTODY_BENCH_CORES";
/// `spread`: each wallet signed through two replicas in turn.
const ROUTE_ENV: &str = "CUSTODY_BENCH_ROUTE";

fn wallet(w: usize) -> String {
    format!("signer{w}@example.com")
}

/// Wallet `w`'s TOTP secret: fixed, so that every process computes codes.
fn uri(w: usize) -> OtpAuthUri {
    // 20 bytes of base32 ("AAAA…" + the wallet number).
    let secret = format!(
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ{}",
        (b'A' + u8::try_from(w).unwrap()) as char
    );
    OtpAuthUri::parse(&format!(
        "otpauth://totp/custody:{}?secret={secret}&issuer=custody&algorithm=SHA1&digits=6&period={PERIOD}",
        wallet(w).replace('@', "%40")
    ))
    .unwrap()
}

/// How a signer process calls: see the module doc.
#[derive(Clone, Copy)]
enum Shape {
    Threads,
    Tasks,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Self::Threads => "threads",
            Self::Tasks => "tasks",
        }
    }
}

/// Where the guard and the log live.
#[derive(Clone)]
enum Store {
    Postgres { url: String, schema: String },
    File { dir: PathBuf },
}

impl Store {
    fn arg(&self, shape: Shape) -> String {
        match self {
            Self::Postgres { url, schema } => format!("pg {url} {schema} {}", shape.name()),
            Self::File { dir } => format!("file {} {}", dir.display(), shape.name()),
        }
    }

    fn parse(arg: &str) -> (Self, Shape) {
        let parts: Vec<&str> = arg.split(' ').collect();
        let shape = |name: &str| match name {
            "threads" => Shape::Threads,
            "tasks" => Shape::Tasks,
            _ => panic!("bad shape {name}"),
        };
        match parts.as_slice() {
            ["pg", url, schema, s] => (
                Self::Postgres {
                    url: (*url).to_owned(),
                    schema: (*schema).to_owned(),
                },
                shape(s),
            ),
            ["file", dir, s] => (
                Self::File {
                    dir: PathBuf::from(dir),
                },
                shape(s),
            ),
            _ => panic!("bad store argument {arg}"),
        }
    }

    /// The state store and audit log of one process (the database calls on
    /// `runtime` if given, else on the store's own).
    fn open(
        &self,
        runtime: Option<tokio::runtime::Handle>,
    ) -> (Arc<dyn StateStore>, Arc<dyn AuditSink>) {
        match self {
            Self::Postgres { url, schema } => {
                let mut config: custody_postgres::tokio_postgres::Config = url.parse().unwrap();
                config.options(format!("-c search_path={schema}"));
                // Named per process: the child finds its backends by it.
                config.application_name(format!("custody-bench-{}", std::process::id()));
                let mut options = PgOptions::new().with_pool_size(8);
                // Group commit is off by default; `CUSTODY_BENCH_COMMIT_BATCH=32`
                // measures with it.
                if let Some(n) = std::env::var(BATCH_ENV).ok().and_then(|n| n.parse().ok()) {
                    options = options.with_commit_batch(n);
                }
                // Read batching likewise: `CUSTODY_BENCH_READ_BATCH=1` is off.
                if let Some(n) = std::env::var(READ_BATCH_ENV)
                    .ok()
                    .and_then(|n| n.parse().ok())
                {
                    options = options.with_read_batch(n);
                }
                if let Some(handle) = runtime {
                    options = options.with_runtime(handle);
                }
                let store = PgStateStore::connect(config, options).wait().unwrap();
                let log = store.audit_log();
                (Arc::new(store), Arc::new(log))
            }
            Self::File { dir } => (
                Arc::new(FileStore::open(dir.join("state")).unwrap()),
                Arc::new(AuditLog::open(dir.join("audit.log")).unwrap()),
            ),
        }
    }
}

fn main() {
    if let Ok(arg) = std::env::var(CHILD_ENV) {
        child(&arg);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too,
    // and that must stay quick: measure only under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("many_signers: run with `cargo bench` to measure");
        return;
    }
    let (Ok(url), Ok(bin)) = (
        std::env::var("CUSTODY_TEST_POSTGRES_URL"),
        std::env::var("CUSTODY_TEST_POSTGRES_BIN"),
    ) else {
        println!(
            "many_signers skipped: set CUSTODY_TEST_POSTGRES_URL and CUSTODY_TEST_POSTGRES_BIN"
        );
        return;
    };
    let bin = PathBuf::from(bin);
    let split =
        (std::env::var(CORES_ENV).as_deref() == Ok("split")).then(|| Split::new(&bin, &url));
    let replicas = if std::env::var(ROUTE_ENV).as_deref() == Ok("spread") {
        println!("routing spread: each wallet signed through 2 replicas in turn");
        2
    } else {
        1
    };
    let schema = format!("bench_{}", std::process::id());
    psql(&bin, &url, &format!("CREATE SCHEMA {schema}"));
    let pg = Store::Postgres {
        url: url.clone(),
        schema: schema.clone(),
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = Store::File {
        dir: tmp.path().to_path_buf(),
    };
    // The schema, and every wallet enrolled in both stores.
    {
        let (state, audit) = pg.open(None);
        let mut config: custody_postgres::tokio_postgres::Config = url.parse().unwrap();
        config.options(format!("-c search_path={schema}"));
        PgStateStore::connect(config, PgOptions::new())
            .wait()
            .unwrap()
            .migrate()
            .wait()
            .unwrap();
        enrol(state, audit);
        let (state, audit) = file.open(None);
        enrol(state, audit);
    }
    // pgbench's table: one row per client, each client updating its own
    // (as each wallet has its own guard row).
    psql(
        &bin,
        &url,
        &format!(
            "CREATE TABLE {schema}.one_row (id int PRIMARY KEY, n bigint NOT NULL); \
             INSERT INTO {schema}.one_row SELECT g, 0 FROM generate_series(0, 15) g"
        ),
    );
    let script = tmp.path().join("one_row.sql");
    std::fs::write(
        &script,
        format!("UPDATE {schema}.one_row SET n = n + 1 WHERE id = :client_id;\n"),
    )
    .unwrap();

    println!(
        "{:>7} | {:>11} | {:>15} | {:>5} | {:>13} | {:>5} | {:>9} | {:>11} | {:>21} | {:>22}",
        "wallets",
        "pgbench tps",
        "pg sigs/s (thr)",
        "share",
        "pg sigs/s (task)",
        "share",
        "xacts/sig",
        "file sigs/s",
        "cpu µs/sig cli + srv",
        "pgbench µs/xact cli + srv"
    );
    let mut rows = Vec::new();
    // Each measurement's steps start past the last one's: codes never reused.
    let mut runs = 0..;
    let mut run = || runs.next().unwrap();
    // `CUSTODY_BENCH_WALLETS=8` (a comma list) measures only those.
    let concurrencies: Vec<usize> = std::env::var("CUSTODY_BENCH_WALLETS").map_or_else(
        |_| WALLETS.to_vec(),
        |list| {
            list.split(',')
                .map(|n| n.trim().parse().unwrap())
                .filter(|n| WALLETS.contains(n))
                .collect()
        },
    );
    for &wallets in &concurrencies {
        let (pgbench, pgbench_cpu) = pgbench(&bin, &url, &schema, &script, wallets);
        let commits_before = commits(&bin, &url);
        let on_pg = signers(&pg, Shape::Threads, wallets, replicas, run());
        let commit_count = commits(&bin, &url) - commits_before;
        let on_pg_tasks = signers(&pg, Shape::Tasks, wallets, replicas, run());
        let on_file = signers(&file, Shape::Threads, wallets, replicas, run());
        let rate = |run: &Run| run.signatures as f64 / run.elapsed.as_secs_f64();
        let (pg_rate, task_rate, file_rate) = (rate(&on_pg), rate(&on_pg_tasks), rate(&on_file));
        let per_sig = commit_count as f64 / on_pg.signatures as f64;
        let micros = |cpu: Option<u64>| cpu.map(|ns| ns as f64 / 1e3 / on_pg.signatures as f64);
        let (client_cpu, server_cpu) = (micros(on_pg.client_cpu), micros(on_pg.server_cpu));
        let split = |c: Option<f64>, s: Option<f64>| match (c, s) {
            (Some(c), Some(s)) => format!("{c:.0} + {s:.0}"),
            _ => "-".to_owned(),
        };
        let cpu = split(client_cpu, server_cpu);
        let (pgbench_client, pgbench_server) = (pgbench_cpu.map(|c| c.0), pgbench_cpu.map(|c| c.1));
        let pgbench_split = split(pgbench_client, pgbench_server);
        println!(
            "{wallets:>7} | {pgbench:>11.0} | {pg_rate:>15.0} | {:>4.0}% | {task_rate:>16.0} | {:>4.0}% | {per_sig:>9.2} | {file_rate:>11.0} | {cpu:>21} | {pgbench_split:>22}",
            100.0 * pg_rate / pgbench,
            100.0 * task_rate / pgbench,
        );
        let json = |v: Option<f64>| v.map_or_else(|| "null".to_owned(), |v| format!("{v:.1}"));
        rows.push(format!(
            "{{\"wallets\":{wallets},\"pgbench_tps\":{pgbench:.1},\"pg_signatures_per_s\":{pg_rate:.1},\"share\":{:.3},\"pg_tasks_signatures_per_s\":{task_rate:.1},\"tasks_share\":{:.3},\"commits_per_signature\":{per_sig:.2},\"file_signatures_per_s\":{file_rate:.1},\"client_cpu_us_per_signature\":{},\"server_cpu_us_per_signature\":{},\"pgbench_client_cpu_us_per_xact\":{},\"pgbench_server_cpu_us_per_xact\":{}}}",
            pg_rate / pgbench,
            task_rate / pgbench,
            json(client_cpu),
            json(server_cpu),
            json(pgbench_client),
            json(pgbench_server),
        ));
    }
    let out = results_dir();
    let name = format!(
        "results{}{}.json",
        if split.is_some() { "-split" } else { "" },
        if replicas > 1 { "-spread" } else { "" }
    );
    std::fs::write(out.join(name), format!("[{}]\n", rows.join(","))).unwrap();
    psql(&bin, &url, &format!("DROP SCHEMA {schema} CASCADE"));
    drop(split);
}

/// The server pinned to the first half of the CPUs and this process (and
/// so everything it starts) to the other half, while it lives; dropping it
/// gives the server every CPU again.
struct Split {
    postmaster: String,
    all: String,
}

impl Split {
    fn new(bin: &Path, url: &str) -> Self {
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert!(cpus >= 2, "{CORES_ENV}=split needs at least 2 CPUs");
        let half = cpus / 2;
        // The postmaster: the first line of its pid file (the server's
        // own backends come and go too fast to ask for their parent).
        let data = psql(bin, url, "SHOW data_directory");
        let pid_file = std::fs::read_to_string(Path::new(&data).join("postmaster.pid"))
            .expect("the server's postmaster.pid (run on the server's host, as its owner or root)");
        let postmaster = pid_file.lines().next().unwrap().trim().to_owned();
        let split = Self {
            postmaster,
            all: format!("0-{}", cpus - 1),
        };
        split.pin_server(&format!("0-{}", half - 1));
        taskset(
            &format!("{half}-{}", cpus - 1),
            &std::process::id().to_string(),
        );
        println!(
            "cores split: server on CPUs 0-{}, signers and pgbench on {half}-{}",
            half - 1,
            cpus - 1
        );
        split
    }

    /// The postmaster and every process it started (backends, background
    /// workers), all threads; backends started later inherit it.
    fn pin_server(&self, cpus: &str) {
        taskset(cpus, &self.postmaster);
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if pid.bytes().all(|b| b.is_ascii_digit())
                && parent_of(&pid).as_deref() == Some(self.postmaster.as_str())
            {
                // A backend may exit meanwhile: only the postmaster must take it.
                let _ = taskset_command(cpus, &pid).output();
            }
        }
    }
}

impl Drop for Split {
    fn drop(&mut self) {
        self.pin_server(&self.all);
    }
}

/// `taskset` setting the CPU affinity of every thread of process `pid` to
/// `cpus`.
fn taskset_command(cpus: &str, pid: &str) -> Command {
    let mut command = Command::new("taskset");
    command.args(["-a", "-p", "-c", cpus, pid]);
    command
}

/// Sets the CPU affinity of every thread of process `pid` to `cpus`.
fn taskset(cpus: &str, pid: &str) {
    checked(
        &mut taskset_command(cpus, pid),
        &format!("taskset -a -p -c {cpus} {pid}"),
    );
}

/// The parent process id of `pid`, from `/proc/<pid>/stat`.
fn parent_of(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // State, then the parent's pid.
    rest.split_whitespace().nth(1).map(str::to_owned)
}

fn results_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("criterion").join("many_signers");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn enrol(state: Arc<dyn StateStore>, audit: Arc<dyn AuditSink>) {
    let clock = Arc::new(ManualClock::new(T0));
    let (registry, _) = gated_stack(vault(), state, audit, clock);
    for w in 0..WALLETS[WALLETS.len() - 1] {
        registry
            .import(&wallet(w), &uri(w), EnrolMode::New)
            .wait()
            .unwrap();
    }
}

fn psql(bin: &Path, url: &str, sql: &str) -> String {
    checked(
        Command::new(bin.join("psql")).args([url, "-v", "ON_ERROR_STOP=1", "-Atc", sql]),
        sql,
    )
}

/// Runs `command` (`what` names it in a failure) and returns its output,
/// trimmed; a failure is a broken benchmark.
fn checked(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Transactions committed in the database so far.
fn commits(bin: &Path, url: &str) -> u64 {
    psql(
        bin,
        url,
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .parse()
    .unwrap()
}

/// pgbench's transactions per second: `clients` clients, each updating its
/// own row of `schema.one_row` in a one-statement transaction, prepared
/// statements; and its CPU per transaction in microseconds (client,
/// backends), sampled from 1 s into the run to 1 s before its end (`None`
/// if `/proc` cannot be read).
fn pgbench(
    bin: &Path,
    url: &str,
    schema: &str,
    script: &Path,
    clients: usize,
) -> (f64, Option<(f64, f64)>) {
    let name = format!("custody-pgbench-{}", std::process::id());
    let child = Command::new(bin.join("pgbench"))
        .env("PGAPPNAME", &name)
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
            "-T",
            &SECONDS.to_string(),
            "-f",
            script.to_str().unwrap(),
            url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Its transactions so far: the sum of the counters it increments.
    let updates = || -> u64 {
        psql(bin, url, &format!("SELECT sum(n) FROM {schema}.one_row"))
            .parse()
            .unwrap()
    };
    let sample = || {
        (
            process_cpu(&pid),
            backends_named(bin, url, &name),
            updates(),
        )
    };
    std::thread::sleep(Duration::from_secs(1));
    let (client_before, server_before, updates_before) = sample();
    std::thread::sleep(Duration::from_secs(SECONDS - 2));
    let (client_after, server_after, updates_after) = sample();
    let cpu = (|| {
        let xacts = updates_after
            .checked_sub(updates_before)
            .filter(|n| *n > 0)? as f64;
        let client = client_after?.checked_sub(client_before?)?;
        let server = backends_spent(server_before, server_after)?;
        Some((client as f64 / 1e3 / xacts, server as f64 / 1e3 / xacts))
    })();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tps = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .expect("pgbench printed no tps");
    (tps, cpu)
}

/// What one measurement's signer processes did.
struct Run {
    signatures: u64,
    /// The longest process's time.
    elapsed: Duration,
    /// CPU time of the processes, and of their database backends, over the
    /// measurement (`None` if some process could not read it).
    client_cpu: Option<u64>,
    server_cpu: Option<u64>,
}

/// `wallets` wallets signing at once over `store`, spread over the
/// processes, each through `replicas` replicas in turn.
fn signers(store: &Store, shape: Shape, wallets: usize, replicas: usize, run: u64) -> Run {
    let mut children: Vec<_> = (0..PROCESSES)
        .filter(|p| *p < wallets)
        .map(|p| {
            let mine: Vec<String> = (0..wallets)
                .filter(|w| w % PROCESSES == p)
                .map(|w| w.to_string())
                .collect();
            let arg = format!("{}|{}|{run}|{replicas}", store.arg(shape), mine.join(","));
            let mut child = Command::new(std::env::current_exe().unwrap())
                .env(CHILD_ENV, arg)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            (child, stdout)
        })
        .collect();
    for (_, out) in &mut children {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    }
    for (child, _) in &mut children {
        writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    }
    let mut total = Run {
        signatures: 0,
        elapsed: Duration::ZERO,
        client_cpu: Some(0),
        server_cpu: Some(0),
    };
    let add = |sum: Option<u64>, part: &str| Some(sum? + part.parse::<u64>().ok()?);
    for (mut child, mut out) in children {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("done"), "{line}");
        total.signatures += parts.next().unwrap().parse::<u64>().unwrap();
        total.elapsed = total
            .elapsed
            .max(Duration::from_nanos(parts.next().unwrap().parse().unwrap()));
        total.client_cpu = add(total.client_cpu, parts.next().unwrap());
        total.server_cpu = add(total.server_cpu, parts.next().unwrap());
        assert!(child.wait().unwrap().success());
    }
    total
}

/// CPU time (user and system) of process `pid` so far, in nanoseconds,
/// from `/proc/<pid>/stat` (every thread, living and ended), assuming the
/// usual 100 ticks per second.
fn process_cpu(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis: state is the first,
    // utime the 12th, stime the 13th.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let ticks = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000)
}

/// The CPU time so far of the database backends serving this process
/// (named `custody-bench-<pid>`), by pid; `None` for the file store or if
/// they cannot be found or read.
fn backends_cpu(store: &Store) -> Option<Vec<(String, u64)>> {
    let Store::Postgres { url, .. } = store else {
        return None;
    };
    let bin = PathBuf::from(std::env::var("CUSTODY_TEST_POSTGRES_BIN").ok()?);
    backends_named(&bin, url, &format!("custody-bench-{}", std::process::id()))
}

/// The CPU time so far of the database backends whose `application_name`
/// is `name`, by pid.
fn backends_named(bin: &Path, url: &str, name: &str) -> Option<Vec<(String, u64)>> {
    let pids = psql(
        bin,
        url,
        &format!("SELECT pid FROM pg_stat_activity WHERE application_name = '{name}'"),
    );
    pids.lines()
        .map(|pid| Some((pid.to_owned(), process_cpu(pid)?)))
        .collect()
}

/// The backends' CPU between two readings (a backend opened in between
/// counts whole).
fn backends_spent(
    before: Option<Vec<(String, u64)>>,
    after: Option<Vec<(String, u64)>>,
) -> Option<u64> {
    let (before, after) = (before?, after?);
    Some(
        after
            .iter()
            .map(|(pid, cpu)| {
                let was = before.iter().find(|(p, _)| p == pid).map_or(0, |(_, c)| *c);
                cpu.saturating_sub(was)
            })
            .sum(),
    )
}

/// A child process: one signer per wallet and replica, each with its own
/// registry and gate over its replica's store (one store per replica, each
/// wallet's replicas sharing its clock), a wallet's signatures taking its
/// replicas in turn, signing until time is up, as threads or as tasks;
/// prints `done <signatures> <nanoseconds> <client cpu> <server cpu>`.
fn child(arg: &str) {
    let mut parts = arg.split('|');
    let (store, shape) = Store::parse(parts.next().unwrap());
    let mine: Vec<usize> = parts
        .next()
        .unwrap()
        .split(',')
        .map(|w| w.parse().unwrap())
        .collect();
    let run: u64 = parts.next().unwrap().parse().unwrap();
    let replicas: usize = parts.next().unwrap().parse().unwrap();
    let runtime = match shape {
        Shape::Threads => None,
        Shape::Tasks => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        ),
    };
    let stores: Vec<_> = (0..replicas)
        .map(|_| store.open(runtime.as_ref().map(|r| r.handle().clone())))
        .collect();
    let vault = vault();
    let tx = Arc::new(eip1559(1));
    // Each wallet's signers (one per replica), warmed (the secret
    // unwrapped and cached, the guard read) by one signature each.
    let wallets: Vec<Wallet> = mine
        .iter()
        .map(|&w| {
            // Steps never reused across runs: each run starts far past the
            // last one's.
            let clock = Arc::new(ManualClock::new(T0 + PERIOD * (run + 1) * 10_000_000));
            let signers = stores
                .iter()
                .map(|(state, audit)| {
                    let (_, backend) =
                        gated_stack(vault.clone(), state.clone(), audit.clone(), clock.clone());
                    let key = KeyRef::Wallet {
                        name: wallet(w),
                        index: 0,
                    };
                    EthSigner::new(KeySigner::pin(backend, key).wait().unwrap()).unwrap()
                })
                .collect();
            let wallet = Wallet {
                signers,
                turn: AtomicUsize::new(0),
                uri: uri(w),
                clock,
            };
            for _ in 0..replicas {
                wallet
                    .signer()
                    .sign_transaction(&tx, &wallet.consent())
                    .wait()
                    .unwrap();
            }
            wallet
        })
        .collect();
    let own = || process_cpu("self");
    // Every replica's connections carry this process's name.
    let (client_before, server_before) = (own(), backends_cpu(&store));
    println!("ready");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let began = Instant::now();
    let deadline = began + Duration::from_secs(SECONDS);
    let total: u64 = match &runtime {
        None => std::thread::scope(|s| {
            let handles: Vec<_> = wallets
                .iter()
                .map(|wallet| {
                    let tx = &tx;
                    s.spawn(move || {
                        let mut n = 0u64;
                        while Instant::now() < deadline {
                            let auth = wallet.consent();
                            wallet.signer().sign_transaction(tx, &auth).wait().unwrap();
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        }),
        Some(runtime) => {
            let tasks: Vec<_> = wallets
                .into_iter()
                .map(|wallet| {
                    let tx = tx.clone();
                    runtime.spawn(async move {
                        let mut n = 0u64;
                        while Instant::now() < deadline {
                            let auth = wallet.consent();
                            wallet.signer().sign_transaction(&tx, &auth).await.unwrap();
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            runtime.block_on(async {
                let mut total = 0;
                for task in tasks {
                    total += task.await.unwrap();
                }
                total
            })
        }
    };
    let elapsed = began.elapsed();
    let client = own()
        .zip(client_before)
        .map(|(after, before)| after - before);
    let server = backends_spent(server_before, backends_cpu(&store));
    let cpu = |ns: Option<u64>| ns.map_or_else(|| "-".to_owned(), |ns| ns.to_string());
    println!(
        "done {total} {} {} {}",
        elapsed.as_nanos(),
        cpu(client),
        cpu(server)
    );
}

/// One wallet's signers (one per replica) in a child process.
struct Wallet {
    signers: Vec<EthSigner>,
    /// Which replica signs next.
    turn: AtomicUsize,
    uri: OtpAuthUri,
    clock: Arc<ManualClock>,
}

impl Wallet {
    /// The replica whose turn it is; the next call takes the next one.
    fn signer(&self) -> &EthSigner {
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        &self.signers[turn % self.signers.len()]
    }

    /// The next step's code: the wallet's clock moves one period first.
    fn consent(&self) -> Authorization {
        self.clock.advance(PERIOD);
        let code = self
            .uri
            .params()
            .code_at(
                self.uri.expose_secret(),
                custody_totp::Clock::now_unix(&*self.clock),
            )
            .unwrap();
        Authorization::totp(code.expose_str())
    }
}
