//! The test world the `custody` binary's tests share: a keystore made from
//! the "abandon … about" mnemonic in a temporary directory, the binary run
//! with its passphrase (and stdin, where given), its one JSON object on
//! stdout or stderr parsed, and the audit log read back.
#![allow(
    dead_code,
    reason = "each test file that includes this uses a part of it"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The BIP39 test mnemonic of every wallet's documentation.
pub(crate) const ABANDON: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

/// One run of the binary: its exit code and the JSON it printed.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) out: Value,
    pub(crate) err: Value,
}

impl Run {
    /// The error kind it printed, or `""`.
    pub(crate) fn kind(&self) -> &str {
        self.err["error"]["kind"].as_str().unwrap_or("")
    }

    /// The error message it printed, or `""`.
    pub(crate) fn message(&self) -> &str {
        self.err["error"]["message"].as_str().unwrap_or("")
    }

    /// The output of a run that must succeed.
    #[track_caller]
    pub(crate) fn ok(self) -> Value {
        assert_eq!(self.code, 0, "{}", self.err);
        self.out
    }

    /// Asserts a refusal of `kind` with `exit`, whose message says `says`.
    #[track_caller]
    pub(crate) fn refused(&self, kind: &str, exit: i32, says: &str) {
        assert_eq!(
            (self.code, self.kind()),
            (exit, kind),
            "{} / {}",
            self.out,
            self.err
        );
        assert!(
            self.message().contains(says),
            "{:?} does not say {says:?}",
            self.message()
        );
    }
}

/// Runs `custody --keystore DIR ARGS` with the passphrase `pw`, feeding
/// `stdin` if given.
pub(crate) fn custody_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    custody_with(dir, args, stdin.map(str::as_bytes), &[])
}

/// [`custody_in`] with bytes on stdin and more environment variables.
pub(crate) fn custody_with(
    dir: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    vars: &[(&str, &str)],
) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
    cmd.arg("--keystore").arg(dir).args(args);
    cmd.env_remove("CUSTODY_KEYSTORE")
        .env_remove("CUSTODY_STATE")
        .env("CUSTODY_PASSPHRASE", "pw")
        // Never a developer's own database password.
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", "/nonexistent/custody-test")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write as _;
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            // A command refused before it reads stdin closes the pipe:
            // that is its answer, not the test's failure.
            if let Err(e) = input.write_all(bytes) {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
            }
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap(),
        out: json_or_null(&stdout),
        err: json_or_null(&stderr),
    }
}

/// What the binary printed on one stream: its one JSON object, or `Null`
/// for nothing.
#[track_caller]
pub(crate) fn json_or_null(b: &[u8]) -> Value {
    if b.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(b)
            .map_err(|_| format!("not one JSON object: {}", String::from_utf8_lossy(b)))
            .unwrap()
    }
}

/// [`custody_in`] without stdin.
pub(crate) fn custody(dir: &Path, args: &[&str]) -> Run {
    custody_in(dir, args, None)
}

/// The output of a run that must succeed.
#[track_caller]
pub(crate) fn ok(r: Run) -> Value {
    assert_eq!(r.code, 0, "{:?}", r.err);
    r.out
}

/// The error kind and exit code of a failed run (stdout empty).
#[track_caller]
pub(crate) fn failure(r: &Run) -> (&str, i32) {
    assert_eq!(r.out, Value::Null, "a failure prints nothing on stdout");
    (r.err["error"]["kind"].as_str().unwrap_or(""), r.code)
}

/// A keystore (`init --light-kdf` from [`ABANDON`]) in a temporary
/// directory, with room for the files a test writes beside it.
pub(crate) struct World {
    _tmp: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) ks: PathBuf,
}

impl World {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let ks = root.join("ks");
        let m = root.join("mnemonic.txt");
        std::fs::write(&m, format!("{ABANDON}\n")).unwrap();
        ok(custody(
            &ks,
            &[
                "init",
                "--light-kdf",
                "--mnemonic-file",
                m.to_str().unwrap(),
            ],
        ));
        Self {
            _tmp: tmp,
            root,
            ks,
        }
    }

    /// Writes `text` to the file `name` beside the keystore; its path.
    pub(crate) fn file(&self, name: &str, text: &str) -> String {
        let p = self.root.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    }

    /// The path of `name` beside the keystore (not created).
    pub(crate) fn path(&self, name: &str) -> String {
        self.root.join(name).to_str().unwrap().to_owned()
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        custody(&self.ks, args)
    }

    /// `keystore generate --alg ALG`: the key's id and public JWK.
    pub(crate) fn generate(&self, alg: &str) -> (String, Value) {
        let out = ok(self.run(&["keystore", "generate", "--alg", alg]));
        (
            out["keyId"].as_str().unwrap().to_owned(),
            out["jwk"].clone(),
        )
    }

    /// The events of the keystore's audit log, oldest first.
    pub(crate) fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.ks.join("audit.log"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
            .collect()
    }
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code an authenticator app shows at `unix`, computed by totp-rs.
pub(crate) fn code_at(secret_b32: &str, unix: u64) -> String {
    let secret = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, secret_b32).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    totp.generate(unix).to_string()
}
