//! The `custody` binary with its root of trust off the local disk
//! (shared/CLI.md, "Backends"): `init --kek`, `keystore rewrap --kek`,
//! `--key` on derive and sign-*, `totp register --key`, against the real
//! components: the AWS SDK against the KMS emulator (moto, started by
//! `.ci/run`) and cryptoki against SoftHSM2. Tests that need one are skipped
//! only when its variables are unset (`.ci/run` sets them all); the rest
//! (the frozen v1 keystore, passphrase rewraps) always run.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use serde_json::Value;

#[path = "support/world.rs"]
mod world;
use world::{ABANDON, Run, code_at, json_or_null, now};

const HASH: &str = "0x1111111111111111111111111111111111111111111111111111111111111111";

/// How the binary is run: its keystore and environment.
#[derive(Clone, Default)]
struct Env {
    vars: Vec<(String, String)>,
}

impl Env {
    fn with(mut self, k: &str, v: impl Into<String>) -> Self {
        self.vars.push((k.to_owned(), v.into()));
        self
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
        cmd.arg("--keystore").arg(dir).args(args);
        for v in [
            "CUSTODY_PASSPHRASE",
            "CUSTODY_NEW_PASSPHRASE",
            "CUSTODY_KEYSTORE",
            "CUSTODY_PKCS11_PIN",
            "CUSTODY_PKCS11_MODULE",
        ] {
            cmd.env_remove(v);
        }
        // Never a developer's own AWS profile or instance metadata.
        cmd.env("AWS_CONFIG_FILE", "/nonexistent/custody-test")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/custody-test")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, dir: &Path, args: &[&str]) -> Run {
        let Output {
            status,
            stdout,
            stderr,
        } = self.command(dir, args).output().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            out: json_or_null(&stdout),
            err: json_or_null(&stderr),
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Checks a `sign-hash` answer with k256: the signature recovers, from the
/// hash alone, to the answer's address, which is `address`.
#[track_caller]
fn check_signature(out: &Value, address: &str) {
    assert_eq!(out["address"], address);
    let rs = hex::decode(&out["signature"].as_str().unwrap()[2..]).unwrap();
    let sig = Signature::from_slice(&rs[..64]).unwrap();
    assert_eq!(sig.normalize_s(), sig, "low s");
    let v = rs[64];
    let recid = RecoveryId::from_byte(v - 27).unwrap();
    let hash = hex::decode(&HASH[2..]).unwrap();
    let key = VerifyingKey::recover_from_prehash(&hash, &sig, recid).unwrap();
    let point = key.to_sec1_point(false);
    let digest = keccak(&point.as_bytes()[1..]);
    assert_eq!(
        format!("0x{}", hex::encode(&digest[12..])),
        address.to_lowercase()
    );
}

fn keccak(data: &[u8]) -> [u8; 32] {
    use sha3::Digest;
    sha3::Keccak256::digest(data).into()
}

// ------------------------------------------------------------- no services

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

/// A frozen keystore directory of custody-core's vectors, copied.
fn fixture(tmp: &Path, version: u32) -> (PathBuf, Value) {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../custody-core/tests/vectors");
    let v: Value = serde_json::from_slice(
        &std::fs::read(vectors.join(format!("keystore_v{version}.json"))).unwrap(),
    )
    .unwrap();
    let dir = tmp.join("ks");
    copy_dir(&vectors.join(format!("keystore_v{version}")), &dir);
    (dir, v)
}

fn v1_fixture(tmp: &Path) -> (PathBuf, Value) {
    fixture(tmp, 1)
}

#[test]
fn the_frozen_v2_keystore_gates_its_wallet_and_its_imported_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, v) = fixture(tmp.path(), 2);
    let env = Env::default().with("CUSTODY_PASSPHRASE", v["passphrase"].as_str().unwrap());
    let alice = &v["wallets"][0];
    let imported = &v["importedKey"];
    let id = imported["keyId"].as_str().unwrap();
    for (key, secret, address) in [
        (
            vec!["--wallet", "alice@example.com", "--index", "0"],
            alice["totpSecret"].as_str().unwrap(),
            alice["address"].as_str().unwrap(),
        ),
        (
            vec!["--key-id", id],
            imported["totpSecret"].as_str().unwrap(),
            imported["address"].as_str().unwrap(),
        ),
    ] {
        let r = env.run(&dir, &[&["sign-hash", "--hash", HASH][..], &key].concat());
        assert_eq!((r.code, r.kind()), (3, "totp-required"), "{key:?}");
        let c = code_at(secret, now());
        let out = env
            .run(
                &dir,
                &[&["sign-hash", "--hash", HASH, "--code", &c][..], &key].concat(),
            )
            .ok();
        check_signature(&out, address);
    }
    // Export of the enrolled imported key needs a code too.
    let r = env.run(&dir, &["keystore", "export", "--key-id", id, "--light-kdf"]);
    assert_eq!((r.code, r.kind()), (3, "totp-required"));
}

/// Regression (found while building format v2): a v1 passphrase change
/// re-wrapped the directory's envelopes but not the TOTP secrets sealed
/// under the same KEK in the state store, so an enrolled wallet could never
/// be verified again. The frozen v1 keystore, moved to a new passphrase,
/// still checks the enrolled wallet's codes.
#[test]
fn totp_enrolment_survives_a_rewrap_of_a_v1_keystore() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, v) = v1_fixture(tmp.path());
    let old = Env::default().with("CUSTODY_PASSPHRASE", v["passphrase"].as_str().unwrap());
    let alice = &v["wallets"][0];
    let secret = alice["totpSecret"].as_str().unwrap();
    let wallet = ["--wallet", "alice@example.com", "--index", "0"];
    let r = old.run(
        &dir,
        &[&["sign-hash", "--hash", HASH][..], &wallet].concat(),
    );
    assert_eq!((r.code, r.kind()), (3, "totp-required"));
    let c1 = code_at(secret, now() - 30);
    let out = old
        .run(
            &dir,
            &[&["sign-hash", "--hash", HASH, "--code", &c1][..], &wallet].concat(),
        )
        .ok();
    check_signature(&out, alice["address"].as_str().unwrap());

    let new = Env::default()
        .with("CUSTODY_PASSPHRASE", v["passphrase"].as_str().unwrap())
        .with("CUSTODY_NEW_PASSPHRASE", "the new passphrase");
    let out = new
        .run(
            &dir,
            &["keystore", "rewrap", "--kek", "passphrase", "--light-kdf"],
        )
        .ok();
    assert_eq!(out["kek"], "passphrase");
    assert_eq!(
        out["rewrapped"], 3,
        "keyring, master seed, one imported key"
    );
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("keystore.json")).unwrap()).unwrap();
    assert_eq!(meta["version"], 2);

    let after = Env::default().with("CUSTODY_PASSPHRASE", "the new passphrase");
    let r = after.run(
        &dir,
        &[&["sign-hash", "--hash", HASH][..], &wallet].concat(),
    );
    assert_eq!((r.code, r.kind()), (3, "totp-required"), "still gated");
    let c2 = code_at(secret, now());
    let out = after
        .run(
            &dir,
            &[&["sign-hash", "--hash", HASH, "--code", &c2][..], &wallet].concat(),
        )
        .ok();
    check_signature(&out, alice["address"].as_str().unwrap());
    // The imported key and an unenrolled wallet: unchanged.
    let out = after
        .run(
            &dir,
            &[
                "derive",
                "--key-id",
                v["importedKey"]["keyId"].as_str().unwrap(),
            ],
        )
        .ok();
    assert_eq!(out["address"], v["importedKey"]["address"]);
    let bob = &v["wallets"][1];
    let out = after
        .run(&dir, &["derive", "--wallet", "bob", "--index", "3"])
        .ok();
    assert_eq!(out["address"], bob["address"]);
    let r = old.run(&dir, &["derive", "--wallet", "bob", "--index", "3"]);
    assert_eq!((r.code, r.kind()), (3, "wrong-passphrase"));
}

#[test]
fn rewrap_to_a_new_passphrase_needs_it_given_and_keeps_every_address() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let m = write(tmp.path(), "m.txt", ABANDON);
    let env = Env::default().with("CUSTODY_PASSPHRASE", "pw");
    let out = env
        .run(&dir, &["init", "--light-kdf", "--mnemonic-file", &m])
        .ok();
    assert_eq!(out["kek"], "passphrase");
    let before = env
        .run(&dir, &["derive", "--path", "m/44h/60h/0h/0/0"])
        .ok();
    assert_eq!(
        before["address"],
        "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    );
    let r = env.run(&dir, &["keystore", "rewrap", "--kek", "passphrase"]);
    assert_eq!(
        (r.code, r.kind()),
        (2, "bad-input"),
        "no new passphrase given"
    );
    assert!(
        r.err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("CUSTODY_NEW_PASSPHRASE")
    );
    let r = env.run(&dir, &["keystore", "rewrap", "--kek", "nonsense:"]);
    assert_eq!((r.code, r.kind()), (2, "bad-input"));
    let newpw = write(tmp.path(), "new.txt", "second\n");
    let out = env
        .run(
            &dir,
            &[
                "keystore",
                "rewrap",
                "--kek",
                "passphrase",
                "--new-passphrase-file",
                &newpw,
                "--light-kdf",
            ],
        )
        .ok();
    assert_eq!(
        (out["kek"].as_str(), out["rewrapped"].as_u64()),
        (Some("passphrase"), Some(2))
    );
    let after = Env::default().with("CUSTODY_PASSPHRASE", "second");
    let out = after
        .run(&dir, &["derive", "--path", "m/44h/60h/0h/0/0"])
        .ok();
    assert_eq!(out["address"], before["address"]);
}

// ------------------------------------------------------------------ AWS KMS

/// The emulator (the workspace's one copy of its set-up, shared with
/// custody-ffi's KMS test): `kms(test)` is it, or `None` after saying the
/// test is skipped.
#[path = "../../../testing/kms_emulator.rs"]
mod kms_emulator;
use kms_emulator::{KmsEmulator, aws_env, emulator as kms};

impl KmsEmulator {
    /// The standard AWS environment the binary reads, pointed at the emulator.
    fn env(&self) -> Env {
        self.env_at(&self.endpoint)
    }

    fn env_at(&self, endpoint: &str) -> Env {
        aws_env(endpoint)
            .into_iter()
            .fold(Env::default(), |env, (k, v)| env.with(k, v))
    }
}

#[test]
fn a_keystore_under_a_kms_kek_opens_without_a_passphrase_and_moves_between_keks() {
    let Some(kms) =
        kms("a_keystore_under_a_kms_kek_opens_without_a_passphrase_and_moves_between_keks")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let m = write(tmp.path(), "m.txt", ABANDON);
    let first = format!("aws-kms:{}", kms.kek());
    let env = kms.env();
    let out = env
        .run(&dir, &["init", "--kek", &first, "--mnemonic-file", &m])
        .ok();
    assert_eq!(out["kek"], first.as_str());
    assert_eq!(out["fingerprint"], "0x73c5da0a");
    let path = ["derive", "--path", "m/44h/60h/0h/0/0"];
    // No passphrase anywhere: the KMS key opens it.
    let out = env.run(&dir, &path).ok();
    assert_eq!(out["address"], "0x9858EfFD232B4033E47d90003D41EC34EcaEda94");
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("keystore.json")).unwrap()).unwrap();
    assert_eq!(meta["kek"]["type"], "backend");
    assert_eq!(meta["kek"]["uri"], first.as_str());
    let out = env.run(&dir, &["totp", "register", "--wallet", "w"]).ok();
    let secret = out["secret"].as_str().unwrap().to_owned();

    // KMS -> another KMS key -> a passphrase -> KMS again.
    let second = format!("aws-kms:{}", kms.kek());
    let out = env
        .run(&dir, &["keystore", "rewrap", "--kek", &second])
        .ok();
    assert_eq!(
        (out["kek"].as_str(), out["rewrapped"].as_u64()),
        (Some(second.as_str()), Some(2))
    );
    assert_eq!(
        env.run(&dir, &path).ok()["address"],
        "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    );
    let wallet = ["sign-hash", "--wallet", "w", "--index", "0", "--hash", HASH];
    let c1 = code_at(&secret, now() - 30);
    env.run(&dir, &[&wallet[..], &["--code", &c1]].concat())
        .ok();
    let to_pw = env.clone().with("CUSTODY_NEW_PASSPHRASE", "pw2");
    to_pw
        .run(
            &dir,
            &["keystore", "rewrap", "--kek", "passphrase", "--light-kdf"],
        )
        .ok();
    let r = env.run(&dir, &path);
    assert_eq!(
        (r.code, r.kind()),
        (2, "bad-input"),
        "now it needs the passphrase"
    );
    let pw = env.clone().with("CUSTODY_PASSPHRASE", "pw2");
    assert_eq!(
        pw.run(&dir, &path).ok()["address"],
        "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    );
    let c2 = code_at(&secret, now());
    pw.run(&dir, &[&wallet[..], &["--code", &c2]].concat()).ok();
    pw.run(&dir, &["keystore", "rewrap", "--kek", &first]).ok();
    let r = env.run(&dir, &[&wallet[..], &["--code", &c2]].concat());
    assert_eq!(
        (r.code, r.kind()),
        (3, "totp-replayed"),
        "the guard moved with it"
    );

    // A key that does not exist: a typed error, nothing written.
    let meta_before = std::fs::read(dir.join("keystore.json")).unwrap();
    let r = env.run(
        &dir,
        &[
            "keystore",
            "rewrap",
            "--kek",
            "aws-kms:00000000-0000-0000-0000-000000000000",
        ],
    );
    assert_eq!((r.code, r.kind()), (1, "not-found"), "{}", r.err);
    assert_eq!(
        std::fs::read(dir.join("keystore.json")).unwrap(),
        meta_before
    );
}

#[test]
fn an_unreachable_kms_is_a_typed_error_and_changes_nothing() {
    let Some(kms) = kms("an_unreachable_kms_is_a_typed_error_and_changes_nothing") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let kek = format!("aws-kms:{}", kms.kek());
    kms.env().run(&dir, &["init", "--kek", &kek]).ok();
    let meta = std::fs::read(dir.join("keystore.json")).unwrap();
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let down = kms.env_at(&url);
    let r = down.run(&dir, &["derive", "--path", "m/0"]);
    assert_eq!((r.code, r.kind()), (1, "unavailable"), "{}", r.err);
    let r = down.run(&dir, &["keystore", "rewrap", "--kek", &kek]);
    assert_eq!((r.code, r.kind()), (1, "unavailable"), "{}", r.err);
    assert_eq!(std::fs::read(dir.join("keystore.json")).unwrap(), meta);
    assert!(!dir.join("secrets.2").exists());
    kms.env().run(&dir, &["derive", "--path", "m/0"]).ok();
}

/// A rewrap killed at any moment leaves a keystore that opens with exactly
/// one of the two KEKs, every address unchanged; a later rewrap finishes
/// the job.
#[test]
fn a_rewrap_killed_midway_leaves_exactly_one_kek_working() {
    let Some(kms) = kms("a_rewrap_killed_midway_leaves_exactly_one_kek_working") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let m = write(tmp.path(), "m.txt", ABANDON);
    let kek = format!("aws-kms:{}", kms.kek());
    let pw = kms.env().with("CUSTODY_PASSPHRASE", "pw");
    let path = ["derive", "--path", "m/44h/60h/0h/0/0"];
    let expected = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94";
    // How long a whole rewrap takes here, to spread the kills across it.
    let timed = tmp.path().join("timed");
    pw.run(&timed, &["init", "--light-kdf", "--mnemonic-file", &m])
        .ok();
    let start = std::time::Instant::now();
    pw.run(&timed, &["keystore", "rewrap", "--kek", &kek]).ok();
    let full = start.elapsed().max(Duration::from_millis(20));
    let (mut old_kek, mut new_kek) = (0, 0);
    for round in 0..12u32 {
        let dir = tmp.path().join(format!("ks{round}"));
        pw.run(&dir, &["init", "--light-kdf", "--mnemonic-file", &m])
            .ok();
        let mut child = pw
            .command(&dir, &["keystore", "rewrap", "--kek", &kek])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full * round / 10);
        let _ = child.kill();
        let _ = child.wait();
        // Each opener has one KEK only: the passphrase, or the KMS.
        let by_pw = Env::default()
            .with("CUSTODY_PASSPHRASE", "pw")
            .run(&dir, &path);
        let by_kms = kms.env().run(&dir, &path);
        match (by_pw.code, by_kms.code) {
            (0, 0) => panic!("round {round}: both KEKs open it"),
            (0, _) => {
                old_kek += 1;
                assert_eq!(by_pw.out["address"], expected);
                assert_eq!(
                    by_kms.kind(),
                    "bad-input",
                    "the KMS alone cannot open it yet"
                );
            }
            (_, 0) => {
                new_kek += 1;
                assert_eq!(by_kms.out["address"], expected);
            }
            _ => panic!(
                "round {round}: neither KEK opens it: {} / {}",
                by_pw.err, by_kms.err
            ),
        }
        // Whatever state it was left in, a rewrap completes.
        let finish = if by_pw.code == 0 {
            pw.clone()
        } else {
            kms.env()
        };
        let target = if by_pw.code == 0 {
            kek.clone()
        } else {
            format!("aws-kms:{}", kms.kek())
        };
        finish
            .run(&dir, &["keystore", "rewrap", "--kek", &target])
            .ok();
        assert_eq!(kms.env().run(&dir, &path).ok()["address"], expected);
    }
    println!("killed rewraps: {old_kek} left the old KEK, {new_kek} the new one");
    assert!(old_kek > 0, "no kill landed before the switch");
}

#[test]
fn a_kms_key_signs_behind_the_same_gates_however_it_is_named() {
    let Some(kms) = kms("a_kms_key_signs_behind_the_same_gates_however_it_is_named") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let env = kms.env().with("CUSTODY_PASSPHRASE", "pw");
    env.run(&dir, &["init", "--light-kdf"]).ok();
    let (id, arn) = kms.signing_key();
    let by_id = format!("aws-kms:{id}");
    let by_arn = format!("aws-kms:{arn}");
    let key = env.run(&dir, &["derive", "--key", &by_id]).ok();
    assert_eq!(key["key"], by_id.as_str());
    assert!(key.get("path").is_none());
    let address = key["address"].as_str().unwrap().to_owned();
    assert_eq!(
        env.run(&dir, &["derive", "--key", &by_arn]).ok()["address"],
        address.as_str()
    );

    let out = env
        .run(&dir, &["sign-hash", "--key", &by_id, "--hash", HASH])
        .ok();
    check_signature(&out, &address);
    let msg = env
        .run(
            &dir,
            &["sign-message", "--key", &by_id, "--message", "hello"],
        )
        .ok();
    assert_eq!(msg["address"], address.as_str());
    let tx = write(
        tmp.path(),
        "tx.json",
        r#"{"type":"0x2","chainId":"0x1","nonce":"0x0","to":"0x3535353535353535353535353535353535353535","value":"0x1","gas":"0x5208","maxFeePerGas":"0x3b9aca00","maxPriorityFeePerGas":"0x1"}"#,
    );
    let signed = env
        .run(&dir, &["sign-tx", "--key", &by_id, "--tx", &tx])
        .ok();
    assert_eq!(signed["from"], address.as_str());

    // Enrolled under one name, gated under every name.
    let out = env
        .run(
            &dir,
            &["totp", "register", "--key", &by_id, "--issuer", "t"],
        )
        .ok();
    assert!(
        out["uri"].as_str().unwrap().contains("aws-kms%3A"),
        "{}",
        out["uri"]
    );
    let secret = out["secret"].as_str().unwrap().to_owned();
    for name in [&by_id, &by_arn] {
        let r = env.run(&dir, &["sign-hash", "--key", name, "--hash", HASH]);
        assert_eq!((r.code, r.kind()), (3, "totp-required"), "{name}");
    }
    let r = env.run(
        &dir,
        &[
            "sign-hash",
            "--key",
            &by_arn,
            "--hash",
            HASH,
            "--code",
            "000000",
        ],
    );
    assert_eq!((r.code, r.kind()), (3, "totp-invalid"));
    let c = code_at(&secret, now());
    let out = env
        .run(
            &dir,
            &["sign-hash", "--key", &by_arn, "--hash", HASH, "--code", &c],
        )
        .ok();
    check_signature(&out, &address);
    let r = env.run(
        &dir,
        &["sign-hash", "--key", &by_id, "--hash", HASH, "--code", &c],
    );
    assert_eq!((r.code, r.kind()), (3, "totp-replayed"));
    let r = env.run(&dir, &["totp", "register", "--key", &by_arn]);
    assert_eq!((r.code, r.kind()), (1, "already-exists"), "{}", r.err);

    // One audit record per signature, naming the key as the command did.
    let log = std::fs::read_to_string(dir.join("audit.log")).unwrap();
    let signs: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].clone())
        .filter(|e| e["op"] == "sign" && e["outcome"] == "success")
        .collect();
    let keys: Vec<&str> = signs.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [&id, &id, &id, &arn],
        "sign-hash, -message, -tx, then with a code"
    );
    assert!(
        signs[3]["totp-step"].is_string(),
        "the code's clearance: {}",
        signs[3]
    );
    assert!(signs[..3].iter().all(|e| e.get("totp-step").is_none()));

    // A key that never leaves cannot be exported.
    let r = env.run(&dir, &["keystore", "export", "--key", &by_id, "--code", &c]);
    assert_eq!((r.code, r.kind()), (1, "unsupported"), "{}", r.err);

    // Options that cannot go together, and keys that are not there.
    let r = env.run(&dir, &["derive", "--key", &by_id, "--path", "m/0"]);
    assert_eq!((r.code, r.kind()), (2, "bad-input"));
    let r = env.run(
        &dir,
        &[
            "derive",
            "--key",
            "aws-kms:00000000-0000-0000-0000-000000000000",
        ],
    );
    assert_eq!((r.code, r.kind()), (1, "not-found"), "{}", r.err);
    let (kek_id, _) = (kms.kek(), ());
    let r = env.run(&dir, &["derive", "--key", &format!("aws-kms:{kek_id}")]);
    assert_ne!(r.code, 0, "a symmetric key is not a signing key");
}

// ----------------------------------------------------------------- PKCS#11

/// A fresh token with a KEK and a signing key (the workspace's one copy
/// of its set-up, shared with the other crate's PKCS#11 test).
#[path = "../../../testing/softhsm_token.rs"]
mod softhsm_token;
use softhsm_token::USER_PIN;

#[test]
fn a_pkcs11_token_holds_the_kek_and_a_signing_key() {
    let Some(softhsm_token::Token { module, label, .. }) =
        softhsm_token::token("a_pkcs11_token_holds_the_kek_and_a_signing_key", "cli")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let m = write(tmp.path(), "m.txt", ABANDON);
    let pin_file = write(tmp.path(), "pin.txt", USER_PIN);
    let env = Env::default().with("CUSTODY_PKCS11_MODULE", module.to_str().unwrap());
    // The PIN from pin-source= in the URI.
    let kek = format!("pkcs11:token={label};object=root-kek?pin-source=file:{pin_file}");
    let out = env
        .run(&dir, &["init", "--kek", &kek, "--mnemonic-file", &m])
        .ok();
    assert_eq!(out["kek"], kek.as_str());
    let path = ["derive", "--path", "m/44h/60h/0h/0/0"];
    let out = env.run(&dir, &path).ok();
    assert_eq!(out["address"], "0x9858EfFD232B4033E47d90003D41EC34EcaEda94");

    // The PIN from the environment; a wrong one is access-denied (exit 3).
    // (Checked against a passphrase keystore: PKCS#11 logs a whole process
    // in, so once the keystore's KEK is open on this token any PIN passes.)
    let signer = format!("pkcs11:token={label};object=signer");
    let other = tmp.path().join("other");
    let pw = env.clone().with("CUSTODY_PASSPHRASE", "pw");
    pw.run(&other, &["init", "--light-kdf"]).ok();
    let r = pw.run(&other, &["derive", "--key", &signer]);
    assert_eq!(
        (r.code, r.kind()),
        (2, "bad-input"),
        "no PIN given: {}",
        r.err
    );
    let bad = pw.clone().with("CUSTODY_PKCS11_PIN", "wrong-pin");
    let r = bad.run(&other, &["derive", "--key", &signer]);
    assert_eq!((r.code, r.kind()), (3, "access-denied"), "{}", r.err);
    let with_pin = env.clone().with("CUSTODY_PKCS11_PIN", USER_PIN);
    let key = with_pin.run(&dir, &["derive", "--key", &signer]).ok();
    let address = key["address"].as_str().unwrap().to_owned();
    let out = with_pin
        .run(&dir, &["sign-hash", "--key", &signer, "--hash", HASH])
        .ok();
    check_signature(&out, &address);
    let out = with_pin
        .run(&dir, &["totp", "register", "--key", &signer])
        .ok();
    let secret = out["secret"].as_str().unwrap().to_owned();
    let r = with_pin.run(&dir, &["sign-hash", "--key", &signer, "--hash", HASH]);
    assert_eq!((r.code, r.kind()), (3, "totp-required"));
    let c = code_at(&secret, now());
    let out = with_pin
        .run(
            &dir,
            &["sign-hash", "--key", &signer, "--hash", HASH, "--code", &c],
        )
        .ok();
    check_signature(&out, &address);

    // Token KEK -> passphrase: same addresses, the token no longer needed.
    let to_pw = env.clone().with("CUSTODY_NEW_PASSPHRASE", "pw");
    let out = to_pw
        .run(
            &dir,
            &["keystore", "rewrap", "--kek", "passphrase", "--light-kdf"],
        )
        .ok();
    assert_eq!(out["rewrapped"], 2);
    let pw = Env::default().with("CUSTODY_PASSPHRASE", "pw");
    assert_eq!(
        pw.run(&dir, &path).ok()["address"],
        "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    );
    let r = with_pin.run(
        &dir,
        &[
            "keystore",
            "rewrap",
            "--kek",
            &format!("pkcs11:token={label};object=signer"),
        ],
    );
    assert_ne!(r.code, 0, "an EC key is not a KEK");
}
