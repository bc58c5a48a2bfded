//! The PostgreSQL server of the `custody` binary's `--state postgres://`
//! tests: the one `CUSTODY_TEST_POSTGRES_URL` names (`.ci/run` starts it),
//! a fresh schema per test so that tests run in parallel, and `psql` from
//! `CUSTODY_TEST_POSTGRES_BIN` (another client than the one under test)
//! to look inside and to edit behind the binary's back.
#![allow(
    dead_code,
    reason = "each test file that includes this uses a part of it"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The test server, a fresh schema in it, and `psql` to look inside.
pub(crate) struct Db {
    /// The server's URL with the schema as its `search_path`: the
    /// `--state` of the test's runs.
    pub(crate) url: String,
    psql: PathBuf,
}

impl Db {
    /// A fresh schema `cli_TEST_RANDOM`, or `None` after saying `test` is
    /// skipped (either variable unset).
    pub(crate) fn fresh(test: &str) -> Option<Self> {
        let (Ok(base), Ok(bin)) = (
            std::env::var("CUSTODY_TEST_POSTGRES_URL"),
            std::env::var("CUSTODY_TEST_POSTGRES_BIN"),
        ) else {
            println!("skipped {test}: set CUSTODY_TEST_POSTGRES_URL and CUSTODY_TEST_POSTGRES_BIN");
            return None;
        };
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix).unwrap();
        let schema = format!("cli_{test}_{}", hex::encode(suffix));
        let db = Self {
            url: format!("{base}?options=-c%20search_path%3D{schema}"),
            psql: Path::new(&bin).join("psql"),
        };
        db.sql(&format!("CREATE SCHEMA {schema}"));
        Some(db)
    }

    /// Runs `sql` with `psql` as the URL's user, in the schema, stopping
    /// at the first error (a failed test); its output, trimmed.
    pub(crate) fn sql(&self, sql: &str) -> String {
        let out = Command::new(&self.psql)
            .args([&self.url, "-v", "ON_ERROR_STOP=1", "-Atc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}
