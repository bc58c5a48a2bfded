//! End-to-end: the built `custody` binary, run as a user runs it.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

#[path = "support/world.rs"]
mod world;
use world::{ABANDON, Run, json_or_null};

fn custody(dir: &Path, pass: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_custody"));
    cmd.arg("--keystore").arg(dir).args(args);
    cmd.env_remove("CUSTODY_PASSPHRASE")
        .env_remove("CUSTODY_KEYSTORE");
    if let Some(p) = pass {
        cmd.env("CUSTODY_PASSPHRASE", p);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    Run {
        code: status.code().unwrap(),
        out: json_or_null(&stdout),
        err: json_or_null(&stderr),
    }
}

fn init_abandon(dir: &Path) {
    let m = dir.parent().unwrap().join("mnemonic.txt");
    std::fs::write(&m, format!("{ABANDON}\n")).unwrap();
    let r = custody(
        dir,
        Some("pw"),
        &[
            "init",
            "--light-kdf",
            "--mnemonic-file",
            m.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{:?}", r.err);
}

fn kind(r: &Run) -> &str {
    r.err["error"]["kind"].as_str().unwrap_or("")
}

#[test]
fn init_and_derive_match_the_well_known_bip44_address() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    init_abandon(&dir);
    // The first BIP44 Ethereum account of the "abandon ... about" mnemonic,
    // as every wallet (MetaMask, Ledger, hardhat) shows it.
    let r = custody(&dir, Some("pw"), &["derive", "--path", "m/44h/60h/0h/0/0"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.out["address"],
        "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    );
    assert_eq!(r.out["path"], "m/44'/60'/0'/0/0");
    assert_eq!(r.out["publicKey"].as_str().unwrap().len(), 2 + 130);
    let w = custody(
        &dir,
        Some("pw"),
        &["derive", "--wallet", "alice@example.com", "--index", "3"],
    );
    assert_eq!(w.out["wallet"], "alice@example.com");
    assert_eq!(w.out["index"], 3);
    let path = w.out["path"].as_str().unwrap().to_owned();
    let p = custody(&dir, Some("pw"), &["derive", "--path", &path]);
    assert_eq!(p.out["address"], w.out["address"]);
}

#[test]
fn sign_hash_signature_recovers_the_address() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    init_abandon(&dir);
    let hash = format!("0x{}", "ab".repeat(32));
    let r = custody(
        &dir,
        Some("pw"),
        &["sign-hash", "--path", "m/44'/60'/0'/0/0", "--hash", &hash],
    );
    assert_eq!(r.code, 0, "{:?}", r.err);
    let sig = hex::decode(
        r.out["signature"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
    )
    .unwrap();
    assert_eq!(sig.len(), 65);
    let v = sig[64];
    assert_eq!(u64::from(v), r.out["v"].as_u64().unwrap());
    assert_eq!(u64::from(v - 27), r.out["yParity"].as_u64().unwrap());
    let rs = k256::ecdsa::Signature::from_slice(&sig[..64]).unwrap();
    assert_eq!(rs.normalize_s(), rs, "low-s");
    let vk = k256::ecdsa::VerifyingKey::recover_from_prehash(
        &[0xab; 32],
        &rs,
        k256::ecdsa::RecoveryId::new(v == 28, false),
    )
    .unwrap();
    let pk = custody_core::PublicKey::from(k256::PublicKey::from(&vk));
    assert_eq!(
        custody_eth::Address::from_public_key(&pk).to_checksum(),
        "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    );
    assert_eq!(
        r.out["address"],
        "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    );
}

#[test]
fn errors_are_one_json_object_with_a_stable_kind_and_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    let missing = custody(&dir, Some("pw"), &["derive", "--path", "m"]);
    assert_eq!((missing.code, kind(&missing)), (1, "not-found"));
    init_abandon(&dir);
    let again = custody(&dir, Some("pw"), &["init", "--light-kdf"]);
    assert_eq!((again.code, kind(&again)), (1, "already-exists"));
    let wrong = custody(&dir, Some("nope"), &["derive", "--path", "m"]);
    assert_eq!((wrong.code, kind(&wrong)), (3, "wrong-passphrase"));
    let none = custody(&dir, None, &["derive", "--path", "m"]);
    assert_eq!((none.code, kind(&none)), (2, "bad-input"));
    for bad in ["m/x", "44'/0", "m/2147483648", "m//1", "m/1'/"] {
        let r = custody(&dir, Some("pw"), &["derive", "--path", bad]);
        assert_eq!((r.code, kind(&r)), (2, "bad-input"), "{bad}");
        assert!(
            r.err["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("--path")
        );
    }
    let both = custody(
        &dir,
        Some("pw"),
        &["derive", "--path", "m", "--wallet", "a", "--index", "0"],
    );
    assert_eq!((both.code, kind(&both)), (2, "bad-input"));
    let no_index = custody(&dir, Some("pw"), &["derive", "--wallet", "a"]);
    assert_eq!((no_index.code, kind(&no_index)), (2, "bad-input"));
    let unknown_key = custody(
        &dir,
        Some("pw"),
        &["derive", "--key-id", "key-0000000000000000"],
    );
    assert_eq!((unknown_key.code, kind(&unknown_key)), (1, "not-found"));
    for bad_hash in ["0x12", "12", "0xzz", &format!("0x{}", "00".repeat(33))] {
        let r = custody(
            &dir,
            Some("pw"),
            &["sign-hash", "--path", "m", "--hash", bad_hash],
        );
        assert_eq!((r.code, kind(&r)), (2, "bad-input"), "{bad_hash}");
    }
    let unknown_flag = custody(&dir, Some("pw"), &["derive", "--frobnicate"]);
    assert_eq!((unknown_flag.code, kind(&unknown_flag)), (2, "bad-input"));
}

#[test]
fn passphrase_file_drops_one_trailing_newline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    init_abandon(&dir);
    let f = tmp.path().join("pass");
    std::fs::write(&f, "pw\r\n").unwrap();
    let r = custody(
        &dir,
        None,
        &[
            "--passphrase-file",
            f.to_str().unwrap(),
            "derive",
            "--path",
            "m",
        ],
    );
    assert_eq!(r.code, 0, "{:?}", r.err);
    std::fs::write(&f, "pw\n\n").unwrap();
    let r = custody(
        &dir,
        None,
        &[
            "derive",
            "--path",
            "m",
            "--passphrase-file",
            f.to_str().unwrap(),
        ],
    );
    assert_eq!((r.code, kind(&r)), (3, "wrong-passphrase"));
}

#[test]
fn imported_key_keeps_its_id_and_signs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    init_abandon(&dir);
    let f = tmp.path().join("key.hex");
    // Account #0 of the well-known hardhat/anvil test mnemonic.
    std::fs::write(
        &f,
        "  0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n",
    )
    .unwrap();
    let a = custody(
        &dir,
        Some("pw"),
        &[
            "keystore",
            "import",
            "--private-key-file",
            f.to_str().unwrap(),
        ],
    );
    assert_eq!(a.code, 0, "{:?}", a.err);
    assert_eq!(
        a.out["address"],
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    );
    let b = custody(
        &dir,
        Some("pw"),
        &[
            "keystore",
            "import",
            "--private-key-file",
            f.to_str().unwrap(),
        ],
    );
    assert_eq!(a.out["keyId"], b.out["keyId"]);
    let id = a.out["keyId"].as_str().unwrap();
    let d = custody(&dir, Some("pw"), &["derive", "--key-id", id]);
    assert_eq!(
        d.out["address"],
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    );
    std::fs::write(&f, "0x1234").unwrap();
    let bad = custody(
        &dir,
        Some("pw"),
        &[
            "keystore",
            "import",
            "--private-key-file",
            f.to_str().unwrap(),
        ],
    );
    assert_eq!((bad.code, kind(&bad)), (2, "bad-input"));
}

fn v3_vectors() -> Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../custody-eth/tests/vectors/keystore_v3/eth_account/index.json"
    );
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn v3_files_from_eth_account_import_and_export_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    init_abandon(&dir);
    let index = v3_vectors();
    let base = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../custody-eth/tests/vectors/keystore_v3/eth_account/"
    );
    // The light and PBKDF2 files (the standard-scrypt one is covered by the
    // library's own tests; a CLI test need not pay its second).
    let mut imported = 0;
    for v in index["vectors"].as_array().unwrap() {
        if v["kdf"].as_str().unwrap().contains("262144 r=8") {
            continue;
        }
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, v["password"].as_str().unwrap()).unwrap();
        let file = format!("{base}{}", v["file"].as_str().unwrap());
        let r = custody(
            &dir,
            Some("pw"),
            &[
                "keystore",
                "import",
                "--file",
                &file,
                "--password-file",
                pw.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 0, "{}: {:?}", v["file"], r.err);
        let address = r.out["address"].as_str().unwrap().to_lowercase();
        assert_eq!(address, format!("0x{}", v["address"].as_str().unwrap()));
        imported += 1;

        // Export it again to a new password and import that into a fresh
        // keystore: the same address comes back.
        let id = r.out["keyId"].as_str().unwrap().to_owned();
        let pw2 = tmp.path().join("pw2");
        std::fs::write(&pw2, "export password\n").unwrap();
        let e = custody(
            &dir,
            Some("pw"),
            &[
                "keystore",
                "export",
                "--key-id",
                &id,
                "--password-file",
                pw2.to_str().unwrap(),
                "--light-kdf",
            ],
        );
        assert_eq!(e.code, 0, "{:?}", e.err);
        assert_eq!(e.out["version"], 3);
        assert_eq!(e.out["crypto"]["kdf"], "scrypt");
        let exported = tmp.path().join("exported.json");
        std::fs::write(&exported, e.out.to_string()).unwrap();
        let dir2 = tmp.path().join(format!("ks2-{imported}"));
        init_abandon(&dir2);
        let back = custody(
            &dir2,
            Some("pw"),
            &[
                "keystore",
                "import",
                "--file",
                exported.to_str().unwrap(),
                "--password-file",
                pw2.to_str().unwrap(),
            ],
        );
        assert_eq!(back.code, 0, "{:?}", back.err);
        assert_eq!(
            back.out["address"].as_str().unwrap().to_lowercase(),
            address
        );
        assert_eq!(back.out["keyId"], id.as_str());
    }
    assert!(imported >= 3);
}

#[test]
fn v3_errors_are_typed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    init_abandon(&dir);
    let base = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../custody-eth/tests/vectors/keystore_v3/eth_account/"
    );
    let file = format!("{base}scrypt_light_p6_whitespace.json");
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "definitely not it").unwrap();
    let r = custody(
        &dir,
        Some("pw"),
        &[
            "keystore",
            "import",
            "--file",
            &file,
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert_eq!((r.code, kind(&r)), (3, "wrong-passphrase"));
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{\"version\": 3}").unwrap();
    let r = custody(
        &dir,
        Some("pw"),
        &["keystore", "import", "--file", junk.to_str().unwrap()],
    );
    assert_eq!((r.code, kind(&r)), (2, "bad-input"));
    assert!(
        r.err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("--file")
    );
    let r = custody(&dir, Some("pw"), &["keystore", "import"]);
    assert_eq!((r.code, kind(&r)), (2, "bad-input"));
    // Exporting the master under a wallet path works; the default export
    // password is the keystore passphrase.
    let e = custody(
        &dir,
        Some("pw"),
        &[
            "keystore",
            "export",
            "--path",
            "m/44'/60'/0'/0/0",
            "--light-kdf",
        ],
    );
    assert_eq!(e.code, 0, "{:?}", e.err);
    assert_eq!(e.out["address"], "9858effd232b4033e47d90003d41ec34ecaeda94");
}

#[test]
fn unsupported_and_io_errors_have_their_kinds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ks");
    init_abandon(&dir);
    // A v3 file with a cipher nobody implements: `unsupported`, exit 1.
    let base = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../custody-eth/tests/vectors/keystore_v3/eth_account/scrypt_light_p6_whitespace.json"
    );
    let mut v3: Value = serde_json::from_slice(&std::fs::read(base).unwrap()).unwrap();
    v3["crypto"]["cipher"] = Value::String("aes-256-ctr".into());
    let f = tmp.path().join("v3.json");
    std::fs::write(&f, v3.to_string()).unwrap();
    let r = custody(
        &dir,
        Some("pw"),
        &["keystore", "import", "--file", f.to_str().unwrap()],
    );
    assert_eq!((r.code, kind(&r)), (1, "unsupported"), "{:?}", r.err);
    // A keystore path that is a regular file: `io`, exit 1.
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let r = custody(&file, Some("pw"), &["init", "--light-kdf"]);
    assert_eq!((r.code, kind(&r)), (1, "io"), "{:?}", r.err);
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in [
        vec!["init"],
        vec!["derive"],
        vec!["sign-hash"],
        vec!["sign-tx"],
        vec!["sign-message"],
        vec!["sign-typed-data"],
        vec!["totp", "register"],
        vec!["keystore", "import"],
        vec!["keystore", "export"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_custody"))
            .args(&cmd)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{cmd:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Example: custody "),
            "{cmd:?} help lacks an example:\n{text}"
        );
    }
}

#[test]
fn export_help_states_the_rule_the_gate_enforces() {
    let out = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(["keystore", "export", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap().replace('\n', " ");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for phrase in [
        "judged by what it exposes",
        "trailing normal (non-hardened) steps",
        "a normal child of one",
        "refused (kind forbidden), code or not",
        "needs --code",
        "a signature exposes nothing",
    ] {
        assert!(text.contains(phrase), "help lacks {phrase:?}:\n{text}");
    }
}
