//! The server stopped (`pg_ctl stop -m fast`) and started again under
//! load: calls fail with typed, retryable errors during the outage, the
//! pool reconnects afterwards, and no acknowledged swap is lost.
//!
//! A binary of its own (cargo runs test binaries one at a time), so that no
//! other test runs while the server is down. Needs the server's data
//! directory and binaries (`CUSTODY_TEST_POSTGRES_DATA`,
//! `CUSTODY_TEST_POSTGRES_BIN`, and `CUSTODY_TEST_POSTGRES_OS_USER` when the
//! tests run as root), as `tests/start_postgres.sh` exports them; skipped,
//! saying so, without them.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[allow(dead_code, reason = "shared with postgres.rs, which uses more of it")]
#[path = "support/db.rs"]
mod db;

#[allow(dead_code, reason = "shared with postgres.rs")]
#[path = "support/counter.rs"]
mod counter;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use custody_postgres::PgOptions;

/// `pg_ctl` on the test server's data directory, as the server's OS user.
struct PgCtl {
    bin: PathBuf,
    data: PathBuf,
    os_user: Option<String>,
    stopped: bool,
}

impl PgCtl {
    fn from_env() -> Option<Self> {
        let (Ok(data), Ok(bin)) = (
            std::env::var("CUSTODY_TEST_POSTGRES_DATA"),
            std::env::var("CUSTODY_TEST_POSTGRES_BIN"),
        ) else {
            println!(
                "skipped server_restart_loses_nothing_acknowledged: set CUSTODY_TEST_POSTGRES_DATA and CUSTODY_TEST_POSTGRES_BIN (tests/start_postgres.sh exports them)"
            );
            return None;
        };
        Some(Self {
            bin: bin.into(),
            data: data.into(),
            os_user: std::env::var("CUSTODY_TEST_POSTGRES_OS_USER").ok(),
            stopped: false,
        })
    }

    fn run(&self, args: &[&str]) {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = match &self.os_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&pg_ctl);
                c
            }
            None => Command::new(&pg_ctl),
        };
        cmd.arg("-D").arg(&self.data).args(args);
        let status = cmd.status().unwrap();
        assert!(status.success(), "pg_ctl {args:?}: {status}");
    }

    fn stop(&mut self) {
        self.stopped = true;
        self.run(&["-m", "fast", "-w", "stop"]);
    }

    fn start(&mut self) {
        // Appends to the log start_postgres.sh started; the port, socket
        // directory and the rest are in postgresql.conf.
        let log = self.data.parent().unwrap().join("postgres.log");
        self.run(&["-w", "-t", "60", "-l", log.to_str().unwrap(), "start"]);
        self.stopped = false;
    }
}

impl Drop for PgCtl {
    /// A failed test leaves the server running for the next binaries.
    fn drop(&mut self) {
        if self.stopped {
            self.start();
        }
    }
}

#[test]
fn server_restart_loses_nothing_acknowledged() {
    const WRITERS: usize = 4;
    let Some(schema) = db::Schema::fresh("server_restart_loses_nothing_acknowledged") else {
        return;
    };
    let Some(mut pg_ctl) = PgCtl::from_env() else {
        return;
    };
    // Plain swaps, recorded ones (each its own statement) and recorded ones
    // with group commit, each on a store of its own.
    let options = PgOptions::new()
        .with_pool_size(3)
        .with_connect_timeout(Duration::from_secs(2))
        .with_statement_timeout(Duration::from_secs(60));
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(counter::Live::default());
    let fleet = counter::Fleet::start(&schema, &options, WRITERS, &stop, &live);
    let acks = || live.acks.load(Ordering::Relaxed);
    let errors = || live.errors.load(Ordering::Relaxed);

    std::thread::sleep(Duration::from_millis(700));
    let acked_before = acks();
    assert!(acked_before > 0, "no swap before the restart");
    pg_ctl.stop();
    let down = Instant::now();
    // Answers already on their way when the server went down are in.
    std::thread::sleep(Duration::from_millis(100));
    let errors_at_stop = errors();
    let acked_at_stop = acks();
    std::thread::sleep(Duration::from_millis(1500));
    let errors_during_outage = errors() - errors_at_stop;
    // Nothing is acknowledged while the server is down.
    assert_eq!(
        acks(),
        acked_at_stop,
        "a swap was acknowledged with the server down"
    );
    pg_ctl.start();
    let outage = down.elapsed();
    let acked_at_start = acks();
    // Recovery: swaps are acknowledged again within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acks() < acked_at_start + 50 {
        assert!(
            Instant::now() < deadline,
            "the store did not recover after the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    fleet.finish(&schema);
    println!(
        "outage {outage:?}: {errors_during_outage} `unavailable` errors while down; {acked_before} acknowledged before the stop, {} after the start",
        acks() - acked_at_start,
    );
    assert!(
        errors_during_outage > 0,
        "no call failed while the server was down"
    );
}
