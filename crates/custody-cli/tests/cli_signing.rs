//! End-to-end: signing commands, the TOTP gate and concurrency, through the
//! built binary, checked against public vectors and an independent TOTP
//! implementation (totp-rs).
#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

#[path = "support/world.rs"]
mod world;
use world::{Run, code_at, now};

fn custody_stdin(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
    cmd.arg("--keystore").arg(dir).args(args);
    cmd.env("CUSTODY_PASSPHRASE", "pw")
        .env_remove("CUSTODY_KEYSTORE");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut pipe = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            pipe.write_all(s.as_bytes()).unwrap();
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    let parse = |b: &[u8]| -> Value {
        if b.is_empty() {
            Value::Null
        } else {
            // --qr draws on stderr before the (absent) error object.
            let text = String::from_utf8_lossy(b);
            let last = text.lines().last().unwrap_or("");
            serde_json::from_str(last).unwrap_or(Value::Null)
        }
    };
    Run {
        code: status.code().unwrap(),
        out: parse(&stdout),
        err: parse(&stderr),
    }
}

fn custody(dir: &Path, args: &[&str]) -> Run {
    custody_stdin(dir, args, None)
}

fn kind(r: &Run) -> String {
    r.err["error"]["kind"].as_str().unwrap_or("").to_owned()
}

fn vector(rel: &str) -> Value {
    let p = format!("{}/../../vectors/{rel}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn new_keystore(tmp: &Path) -> std::path::PathBuf {
    let dir = tmp.join("ks");
    let r = custody(&dir, &["init", "--light-kdf"]);
    assert_eq!(r.code, 0, "{:?}", r.err);
    dir
}

fn import_hex(dir: &Path, tmp: &Path, key: &str) -> String {
    let f = tmp.join("key.hex");
    std::fs::write(&f, key).unwrap();
    let r = custody(
        dir,
        &[
            "keystore",
            "import",
            "--private-key-file",
            f.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{:?}", r.err);
    r.out["keyId"].as_str().unwrap().to_owned()
}

#[test]
fn sign_tx_reproduces_the_eip155_example() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_keystore(tmp.path());
    let v = vector("eth-tx/eip155_example.json");
    let id = import_hex(&dir, tmp.path(), v["private_key"].as_str().unwrap());
    let t = &v["tx"];
    let tx = json!({
        "nonce": t["nonce"], "gasPrice": t["gasPrice"], "gas": t["gasLimit"], "to": t["to"],
        "value": t["value"], "input": t["data"], "chainId": t["chainId"],
    });
    let r = custody_stdin(
        &dir,
        &["sign-tx", "--key-id", &id, "--tx", "-"],
        Some(&tx.to_string()),
    );
    assert_eq!(r.code, 0, "{:?}", r.err);
    assert_eq!(r.out["raw"], v["signed_tx"]);
    assert_eq!(r.out["signingHash"], v["signing_hash"]);
    assert_eq!(r.out["v"], 37);
    assert_eq!(r.out["r"], v["r"]);
    // From a file, with `data` instead of `input`: the same transaction.
    let f = tmp.path().join("tx.json");
    let mut tx2 = tx.clone();
    tx2["data"] = tx2["input"].take();
    tx2.as_object_mut().unwrap().remove("input");
    std::fs::write(&f, tx2.to_string()).unwrap();
    let r2 = custody(
        &dir,
        &["sign-tx", "--key-id", &id, "--tx", f.to_str().unwrap()],
    );
    assert_eq!(r2.out["raw"], v["signed_tx"]);
}

#[test]
fn sign_tx_covers_every_type_and_names_bad_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_keystore(tmp.path());
    let to = "0x3535353535353535353535353535353535353535";
    let cases = [
        json!({"type": "0x1", "chainId": "0x1", "nonce": "0x0", "to": to, "value": "0x1", "gas": "0x5208", "gasPrice": "0x1", "accessList": []}),
        json!({"type": "0x2", "chainId": "0x1", "nonce": "0x1", "to": to, "value": "0x0", "gas": "0x5208", "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1", "input": "0xdeadbeef"}),
        json!({"type": "0x3", "chainId": "0x1", "nonce": "0x2", "to": to, "value": "0x0", "gas": "0x5208", "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1", "maxFeePerBlobGas": "0x1", "blobVersionedHashes": [format!("0x01{}", "00".repeat(31))]}),
        json!({"type": "0x4", "chainId": "0x1", "nonce": "0x3", "to": to, "value": "0x0", "gas": "0x5208", "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1", "authorizationList": []}),
        json!({"nonce": "0x4", "to": null, "value": "0x0", "gas": "0x5208", "gasPrice": "0x1", "input": "0x6000"}),
    ];
    let derive = custody(&dir, &["derive", "--wallet", "w", "--index", "0"]);
    for (i, tx) in cases.iter().enumerate() {
        let f = tmp.path().join(format!("tx{i}.json"));
        std::fs::write(&f, tx.to_string()).unwrap();
        let r = custody(
            &dir,
            &[
                "sign-tx",
                "--wallet",
                "w",
                "--index",
                "0",
                "--tx",
                f.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 0, "case {i}: {:?}", r.err);
        assert_eq!(r.out["from"], derive.out["address"]);
        let raw = hex::decode(r.out["raw"].as_str().unwrap().trim_start_matches("0x")).unwrap();
        let decoded = custody_eth::decode_signed(&raw).unwrap();
        assert_eq!(
            decoded.recover_sender().unwrap().to_checksum(),
            derive.out["address"].as_str().unwrap()
        );
        assert_eq!(
            format!("0x{}", hex::encode(decoded.hash())),
            r.out["hash"].as_str().unwrap()
        );
        let expected_v = if i == 4 {
            json!(27u8 + u8::from(decoded.signature().y_parity()))
        } else {
            json!(u8::from(decoded.signature().y_parity()))
        };
        assert_eq!(r.out["v"], expected_v, "case {i}");
    }
    let bad = [
        (
            json!({"type": "0x2", "chainId": "0x1", "nonce": "0x0", "to": to, "value": "0x0", "gas": "0x5208", "maxPriorityFeePerGas": "0x1"}),
            "maxFeePerGas",
        ),
        (
            json!({"type": "0x2", "chainId": "0x1", "nonce": "0x0", "to": to, "value": "0x0", "gas": "0x5208", "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1", "gasPrice": "0x1"}),
            "gasPrice",
        ),
        (
            json!({"type": "0x0", "nonce": "0x0", "to": to, "value": format!("0x1{}", "0".repeat(64)), "gas": "0x5208", "gasPrice": "0x1"}),
            "value",
        ),
        (
            json!({"type": "0x0", "nonce": "0xzz", "to": to, "value": "0x0", "gas": "0x5208", "gasPrice": "0x1"}),
            "nonce",
        ),
        (
            json!({"type": "0x0", "nonce": "0x0", "to": "0x1234", "value": "0x0", "gas": "0x5208", "gasPrice": "0x1"}),
            "to",
        ),
        (
            json!({"type": "0x0", "nonce": "0x0", "to": to, "value": "0x0", "gas": "0x5208", "gasPrice": "0x1", "data": "0x12", "input": "0x34"}),
            "input",
        ),
        (
            json!({"type": "0x7", "nonce": "0x0", "to": to, "value": "0x0", "gas": "0x5208", "gasPrice": "0x1"}),
            "type",
        ),
        (
            json!({"type": "0x4", "chainId": "0x1", "nonce": "0x0", "value": "0x0", "gas": "0x5208", "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1", "authorizationList": []}),
            "to",
        ),
    ];
    for (tx, field) in bad {
        let r = custody_stdin(
            &dir,
            &["sign-tx", "--wallet", "w", "--index", "0", "--tx", "-"],
            Some(&tx.to_string()),
        );
        assert_eq!((r.code, kind(&r).as_str()), (2, "bad-input"), "{tx}");
        let msg = r.err["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            msg.contains(field) || msg.to_lowercase().contains(&field.to_lowercase()),
            "{field}: {msg}"
        );
    }
    let r = custody_stdin(
        &dir,
        &["sign-tx", "--wallet", "w", "--index", "0", "--tx", "-"],
        Some("{not json"),
    );
    assert_eq!((r.code, kind(&r).as_str()), (2, "bad-input"));
}

#[test]
fn messages_match_the_public_vectors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_keystore(tmp.path());
    let vectors = vector("eip191/eip191_personal_sign_vectors.json");
    for v in vectors["vectors"].as_array().unwrap() {
        let id = import_hex(&dir, tmp.path(), v["privateKey"].as_str().unwrap());
        let r = custody(
            &dir,
            &[
                "sign-message",
                "--key-id",
                &id,
                "--message-hex",
                v["message_hex"].as_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 0, "{:?}", r.err);
        assert_eq!(r.out["signature"], v["signature"], "{}", v["name"]);
        assert_eq!(r.out["digest"], v["messageHash"]);
        assert_eq!(r.out["address"], v["address"]);
        if let Some(text) = v["message_utf8"].as_str() {
            let t = custody(&dir, &["sign-message", "--key-id", &id, "--message", text]);
            assert_eq!(t.out["signature"], v["signature"]);
        }
    }
    let mail = vector("eip712/eip712_mail.json");
    let id = import_hex(
        &dir,
        tmp.path(),
        mail["expected"]["signer_private_key"].as_str().unwrap(),
    );
    let r = custody_stdin(
        &dir,
        &["sign-typed-data", "--key-id", &id, "--file", "-"],
        Some(&mail["typedData"].to_string()),
    );
    assert_eq!(r.code, 0, "{:?}", r.err);
    assert_eq!(r.out["digest"], mail["expected"]["digest"]);
    let sig = &mail["expected"]["signature"];
    let expected = format!(
        "{}{}{:02x}",
        sig["r"].as_str().unwrap(),
        sig["s"].as_str().unwrap().trim_start_matches("0x"),
        sig["v"].as_u64().unwrap()
    );
    assert_eq!(r.out["signature"].as_str().unwrap(), expected);
    assert_eq!(
        r.out["address"].as_str().unwrap().to_lowercase(),
        mail["expected"]["signer_address"]
            .as_str()
            .unwrap()
            .to_lowercase()
    );
    let bad = custody_stdin(
        &dir,
        &["sign-typed-data", "--key-id", &id, "--file", "-"],
        Some("{\"types\": {}}"),
    );
    assert_eq!((bad.code, kind(&bad).as_str()), (2, "bad-input"));
}

#[test]
fn undeclared_typed_data_fields_are_refused_unless_allowed_and_then_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_keystore(tmp.path());
    // A Seaport listing in OpenSea's API shape, signed by eth-account.
    let v = vector("eip712/seaport_opensea_listing.json");
    let id = import_hex(&dir, tmp.path(), v["privateKey"].as_str().unwrap());
    let order = v["typedData"].to_string();
    let strict = custody_stdin(
        &dir,
        &["sign-typed-data", "--key-id", &id, "--file", "-"],
        Some(&order),
    );
    assert_eq!((strict.code, kind(&strict).as_str()), (2, "bad-input"));
    let message = strict.err["error"]["message"].as_str().unwrap();
    assert!(message.contains("does not declare"), "{message}");

    let lenient = custody_stdin(
        &dir,
        &[
            "sign-typed-data",
            "--key-id",
            &id,
            "--file",
            "-",
            "--allow-undeclared-fields",
        ],
        Some(&order),
    );
    assert_eq!(lenient.code, 0, "{:?}", lenient.err);
    assert_eq!(lenient.out["signature"], v["signature"]);
    assert_eq!(lenient.out["digest"], v["digest"]);
    assert_eq!(lenient.out["address"], v["address"]);
    assert_eq!(
        lenient.out["ignoredFields"],
        serde_json::json!(["message.totalOriginalConsiderationItems"])
    );
    // The audit record of that signature names the field too.
    let log = std::fs::read_to_string(dir.join("audit.log")).unwrap();
    let record = log.lines().rfind(|l| l.contains("typed-data")).unwrap();
    assert!(
        record.contains("message.totalOriginalConsiderationItems"),
        "{record}"
    );
}

#[test]
fn totp_gate_requires_rejects_replays_and_locks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_keystore(tmp.path());
    let hash = format!("0x{}", "22".repeat(32));
    let sign = |code: Option<&str>| {
        let mut args = vec![
            "sign-hash",
            "--wallet",
            "alice@example.com",
            "--index",
            "0",
            "--hash",
            hash.as_str(),
        ];
        if let Some(c) = code {
            args.extend(["--code", c]);
        }
        custody(&dir, &args)
    };
    // Not enrolled: signs without a code (the plugin's semantics).
    assert_eq!(sign(None).code, 0);
    let reg = custody(
        &dir,
        &[
            "totp",
            "register",
            "--wallet",
            "alice@example.com",
            "--issuer",
            "ACME",
            "--qr",
        ],
    );
    assert_eq!(reg.code, 0, "{:?}", reg.err);
    let uri = reg.out["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/ACME:alice%40example.com?secret="),
        "{uri}"
    );
    let secret = reg.out["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 32, "at least 160 bits of base32");
    let again = custody(&dir, &["totp", "register", "--wallet", "alice@example.com"]);
    assert_eq!((again.code, kind(&again).as_str()), (1, "already-exists"));

    let r = sign(None);
    assert_eq!((r.code, kind(&r).as_str()), (3, "totp-required"));
    // A path inside the wallet needs the code too.
    let node = custody(
        &dir,
        &["derive", "--wallet", "alice@example.com", "--index", "5"],
    );
    let path = node.out["path"].as_str().unwrap().to_owned();
    let by_path = custody(&dir, &["sign-hash", "--path", &path, "--hash", &hash]);
    assert_eq!(
        (by_path.code, kind(&by_path).as_str()),
        (3, "totp-required")
    );
    // Exporting an ancestor of the wallet's node is forbidden, code or not.
    let ancestor = custody(
        &dir,
        &["keystore", "export", "--path", "m/44'/60'", "--light-kdf"],
    );
    assert_eq!((ancestor.code, kind(&ancestor).as_str()), (1, "forbidden"));
    // So is a normal child of an ancestor: with the xpubs, its private key
    // gives the ancestor's (the rule CLI.md states), and the message says so.
    let normal_child = custody(
        &dir,
        &["keystore", "export", "--path", "m/44'/60'/7", "--light-kdf"],
    );
    assert_eq!(
        (normal_child.code, kind(&normal_child).as_str()),
        (1, "forbidden")
    );
    let message = normal_child.err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("exposes an ancestor of an enrolled wallet's node"),
        "{message}"
    );
    // A hardened child of an ancestor exposes only itself: not forbidden
    // (it is not under the wallet either, so no code is needed).
    let hardened_child = custody(
        &dir,
        &[
            "keystore",
            "export",
            "--path",
            "m/44'/60'/7'",
            "--light-kdf",
        ],
    );
    assert_eq!(hardened_child.code, 0, "{:?}", hardened_child.err);
    // Signing with an ancestor's key exposes nothing: allowed.
    assert_eq!(
        custody(&dir, &["sign-hash", "--path", "m/44'/60'", "--hash", &hash]).code,
        0
    );

    let t = now();
    let code = code_at(&secret, t);
    let ok = sign(Some(&code));
    if ok.code != 0 {
        // The step may have turned between computing and checking; the
        // window (±1 step) covers it, so this is a real failure.
        panic!("valid code refused: {:?}", ok.err);
    }
    let replay = sign(Some(&code));
    assert_eq!((replay.code, kind(&replay).as_str()), (3, "totp-replayed"));
    // Wrong codes: five lock the wallet; a replay did not count.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for i in 0..5 {
        let r = sign(Some(wrong));
        assert_eq!(
            (r.code, kind(&r).as_str()),
            (3, "totp-invalid"),
            "attempt {i}"
        );
    }
    let locked = sign(Some(&code_at(&secret, t + 30)));
    assert_eq!((locked.code, kind(&locked).as_str()), (3, "totp-locked"));
    // The audit log recorded the attempts, never the secret or a code.
    let log = std::fs::read_to_string(dir.join("audit.log")).unwrap();
    assert!(log.contains("totp-verify"));
    assert!(!log.contains(&secret) && !log.contains(&format!("\"{code}\"")));
}

#[test]
fn two_processes_signing_at_once_against_one_keystore() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = new_keystore(tmp.path());
    let reg = custody(&dir, &["totp", "register", "--wallet", "race"]);
    let secret = reg.out["secret"].as_str().unwrap().to_owned();
    let code = code_at(&secret, now());
    let hash = format!("0x{}", "33".repeat(32));
    // Two processes present the same valid code at once: exactly one signs.
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_custody"))
            .arg("--keystore")
            .arg(&dir)
            .args([
                "sign-hash",
                "--wallet",
                "race",
                "--index",
                "0",
                "--hash",
                &hash,
                "--code",
                &code,
            ])
            .env("CUSTODY_PASSPHRASE", "pw")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code().unwrap(), b.status.code().unwrap()];
    assert!(
        codes.contains(&0) && codes.contains(&3),
        "{codes:?}: {} {}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    // Unenrolled wallets in parallel: all succeed, the audit log stays valid.
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_custody"))
                .arg("--keystore")
                .arg(&dir)
                .args([
                    "sign-hash",
                    "--wallet",
                    &format!("p{i}"),
                    "--index",
                    "0",
                    "--hash",
                    &hash,
                ])
                .env("CUSTODY_PASSPHRASE", "pw")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log = std::fs::read(dir.join("audit.log")).unwrap();
    custody_core::AuditLog::verify(log.as_slice()).unwrap();
}
