//! End-to-end: approvals and policies through the built binary (shared/CLI.md,
//! "Approvals and policy"), with approvers' devices played by the software
//! WebAuthn authenticator of custody-policy's tests (written from the
//! specification, not with the crate under test). Signatures are checked
//! with k256 and Keccak-256 (sha3), independently of custody-eth.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers unwrap and panic: a failure is a test failure"
)]

use std::path::{Path, PathBuf};

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[path = "../../custody-policy/tests/support/authenticator.rs"]
mod authenticator;
use authenticator::{ClientData, Device, ORIGIN, RP_ID, UP, UV, b64, unb64};
#[path = "support/world.rs"]
mod world;
use world::{Run, custody};

const WALLET: &str = "treasury";
const ALICE: &str = "0x1111111111111111111111111111111111111111";
const MIXER: &str = "0x722122dF12D4e14e13Ac3b6895a86e84145b6967";
const ONE_ETH: u128 = 1_000_000_000_000_000_000;

/// A scratch directory with a keystore and the relying party configured.
struct World {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ks: PathBuf,
    files: u32,
    rp_id: String,
}

impl World {
    fn new() -> Self {
        Self::for_rp(RP_ID, ORIGIN)
    }

    fn for_rp(rp_id: &str, origin: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        let ks = root.join("ks");
        custody(&ks, &["init", "--light-kdf"]).ok();
        let out = custody(
            &ks,
            &["webauthn", "config", "--rp-id", rp_id, "--origin", origin],
        )
        .ok();
        assert_eq!(out, json!({"rpId": rp_id, "origins": [origin]}));
        Self {
            _tmp: tmp,
            root,
            ks,
            files: 0,
            rp_id: rp_id.to_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        custody(&self.ks, args)
    }

    /// Writes `text` to a fresh file and returns its path.
    fn file(&mut self, text: &str) -> String {
        self.files += 1;
        let path = self.root.join(format!("f{}.json", self.files));
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Adds `device` as a new approver of `role`; returns the answer.
    fn add(&mut self, device: &mut Device, role: &str) -> Value {
        let registration = device.register(&[0x5a; 32], "packed");
        self.add_registration(&registration, role)
    }

    /// Adds the credential of `registration` (a registration's JSON) as a
    /// new approver of `role`; returns the answer.
    fn add_registration(&mut self, registration: &str, role: &str) -> Value {
        let file = self.file(registration);
        self.run(&[
            "approver",
            "add",
            "--wallet",
            WALLET,
            "--role",
            role,
            "--credential",
            &file,
        ])
        .ok()
    }

    /// The challenge bytes `custody challenge ARGS` prints (checked
    /// against its operation hash and RP ID).
    fn challenge(&self, args: &[&str]) -> Vec<u8> {
        let mut all = vec!["challenge"];
        all.extend_from_slice(args);
        let out = self.run(&all).ok();
        let challenge = unb64(out["challenge"].as_str().unwrap());
        assert_eq!(challenge.len(), 32);
        assert_eq!(
            out["operationHash"],
            format!("0x{}", hex::encode(&challenge))
        );
        assert_eq!(out["rpId"], self.rp_id.as_str());
        challenge
    }

    /// `policy set` of the policy file `policy` with the approvals file
    /// `approvals`.
    fn set_policy(&self, policy: &str, approvals: &str) -> Run {
        self.run(&[
            "policy",
            "set",
            "--wallet",
            WALLET,
            "--file",
            policy,
            "--approvals",
            approvals,
        ])
    }

    /// The address of the wallet's key 0.
    fn address(&self) -> String {
        self.run(&["derive", "--wallet", WALLET, "--index", "0"])
            .ok()["address"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// An approvals file of `assertions`.
    fn approvals(&mut self, assertions: &[String]) -> String {
        let items: Vec<Value> = assertions
            .iter()
            .map(|a| serde_json::from_str(a).unwrap())
            .collect();
        self.file(&Value::Array(items).to_string())
    }
}

fn policy_doc() -> Value {
    json!({
        "schema": "custody-policy/v1",
        "wallet": WALLET,
        "groups": {"owners": {"role": "owner", "members": ["owner-1", "owner-2", "owner-3"]}},
        "governance": {"group": "owners", "threshold": 2},
        "rules": [
            {"id": "no-mixer", "effect": "deny", "when": {"destinationsAnyOf": [MIXER]}},
            {"id": "small", "effect": "allow",
             "when": {"kinds": ["transaction"], "assets": ["native"], "maxAmount": ONE_ETH.to_string()},
             "require": [{"group": "owners", "threshold": 1}]},
            {"id": "large", "effect": "allow",
             "when": {"kinds": ["transaction"], "assets": ["native"]},
             "require": [{"group": "owners", "threshold": 2}]},
            {"id": "messages", "effect": "allow", "when": {"kinds": ["personal-message"]},
             "require": [{"group": "owners", "threshold": 1}]}
        ],
        "limits": [{"id": "daily", "asset": "native", "windowSeconds": 86400,
                    "max": (10 * ONE_ETH).to_string()}]
    })
}

fn tx(to: &str, value: u128, nonce: u64) -> String {
    json!({
        "type": "0x2", "chainId": "0x1", "nonce": format!("0x{nonce:x}"), "to": to,
        "value": format!("0x{value:x}"), "gas": "0x5208",
        "maxFeePerGas": "0x3b9aca00", "maxPriorityFeePerGas": "0x1", "data": "0x"
    })
    .to_string()
}

fn keccak(data: &[u8]) -> [u8; 32] {
    use sha3::Digest as _;
    sha3::Keccak256::digest(data).into()
}

/// Checks a `sign-tx` answer with k256: its signature over `signingHash`
/// recovers to `address`, and `hash` is Keccak-256 of `raw`.
#[track_caller]
fn check_tx_signature(out: &Value, address: &str) {
    assert_eq!(out["from"], address);
    let field = |name: &str| hex::decode(&out[name].as_str().unwrap()[2..]).unwrap();
    let mut rs = field("r");
    rs.extend(field("s"));
    let sig = Signature::from_slice(&rs).unwrap();
    let parity = u8::try_from(out["v"].as_u64().unwrap()).unwrap();
    let key = VerifyingKey::recover_from_prehash(
        &field("signingHash"),
        &sig,
        RecoveryId::from_byte(parity).unwrap(),
    )
    .unwrap();
    let point = key.to_sec1_point(false);
    let recovered = keccak(&point.as_bytes()[1..]);
    assert_eq!(
        format!("0x{}", hex::encode(&recovered[12..])),
        address.to_lowercase()
    );
    assert_eq!(
        out["hash"],
        format!("0x{}", hex::encode(keccak(&field("raw"))))
    );
}

/// Three owners, the policy set with two of them; returns the world, the
/// devices, the wallet's address and the policy hash.
fn governed() -> (World, [Device; 3], String, String) {
    let mut w = World::new();
    let mut devices = [Device::p256(1), Device::ed25519(2), Device::p256(3)];
    for (i, device) in devices.iter_mut().enumerate() {
        let out = w.add(device, "owner");
        assert_eq!(out["approverId"], format!("owner-{}", i + 1));
        assert_eq!(out["role"], "owner");
        assert_eq!(out["credentialId"], b64(&device.id));
        assert_eq!(
            out["fingerprint"],
            format!("0x{}", hex::encode(Sha256::digest(device.cose())))
        );
        assert_eq!(out["logIndex"], i as u64);
    }
    let policy = w.file(&policy_doc().to_string());
    let challenge = w.challenge(&["policy-set", "--wallet", WALLET, "--file", &policy]);

    // One owner is not the new policy's governance quorum.
    let one = w.approvals(&[devices[0].assert(&challenge)]);
    let set = |w: &World, approvals: &str| w.set_policy(&policy, approvals);
    set(&w, &one).refused(
        "approvals-required",
        3,
        "1 more approval(s) of group \"owners\"",
    );

    let two = w.approvals(&[devices[0].assert(&challenge), devices[1].assert(&challenge)]);
    let out = set(&w, &two).ok();
    assert_eq!(out["logIndex"], 3);
    let policy_hash = out["policyHash"].as_str().unwrap().to_owned();
    assert_eq!(policy_hash.len(), 66);

    let address = w.address();
    (w, devices, address, policy_hash)
}

/// `COMMAND --wallet treasury --index 0 FLAG VALUE`: a request of the
/// wallet's key 0.
fn key0<'a>(command: &'a str, flag: &'a str, value: &'a str) -> Vec<&'a str> {
    vec![command, "--wallet", WALLET, "--index", "0", flag, value]
}

/// Runs the request `args`, with the approvals file `approvals` if given.
fn request<'a>(w: &World, mut args: Vec<&'a str>, approvals: Option<&'a str>) -> Run {
    if let Some(file) = approvals {
        args.extend(["--approvals", file]);
    }
    w.run(&args)
}

/// `sign-tx` of `tx_file` by the wallet's key 0.
fn sign_tx(w: &World, tx_file: &str, approvals: Option<&str>) -> Run {
    request(w, key0("sign-tx", "--tx", tx_file), approvals)
}

/// `sign-message` of `message` by the wallet's key 0.
fn sign_message(w: &World, message: &str, approvals: Option<&str>) -> Run {
    request(w, key0("sign-message", "--message", message), approvals)
}

/// The challenge `custody challenge sign-tx` gives for the wallet's key 0
/// signing `tx_file`.
fn tx_challenge(w: &World, tx_file: &str) -> Vec<u8> {
    w.challenge(&key0("sign-tx", "--tx", tx_file))
}

/// The challenge `custody challenge sign-message` gives for the wallet's
/// key 0 signing `message`.
fn message_challenge(w: &World, message: &str) -> Vec<u8> {
    w.challenge(&key0("sign-message", "--message", message))
}

/// `out`, a `sign-tx` answer, is a signature by `address` under the
/// policy of log index `log_index` and hash `policy_hash`, by its rule
/// "large".
#[track_caller]
fn assert_signed_large(out: &Value, address: &str, log_index: u64, policy_hash: &str) {
    check_tx_signature(out, address);
    assert_eq!(out["policy"]["logIndex"], log_index);
    assert_eq!(out["policy"]["policyHash"], policy_hash);
    assert_eq!(out["policy"]["rule"], "large");
}

#[test]
fn two_of_three_owners_approve_a_transaction() {
    let (mut w, mut devices, address, policy_hash) = governed();
    let tx_file = w.file(&tx(ALICE, 2 * ONE_ETH, 0));
    let challenge = tx_challenge(&w, &tx_file);

    // No approvals, then one: the "large" rule names how many more.
    sign_tx(&w, &tx_file, None).refused(
        "approvals-required",
        3,
        "rule \"large\" of wallet \"treasury\" needs 2 approval(s): 2 more of group \"owners\"",
    );
    let one = w.approvals(&[devices[2].assert(&challenge)]);
    sign_tx(&w, &tx_file, Some(&one)).refused(
        "approvals-required",
        3,
        "needs 1 approval(s): 1 more of group \"owners\"",
    );

    let approvals = [devices[0].assert(&challenge), devices[2].assert(&challenge)];
    let file = w.approvals(&approvals);
    let out = sign_tx(&w, &tx_file, Some(&file)).ok();
    assert_signed_large(&out, &address, 3, policy_hash.as_str());
    assert_eq!(out["policy"]["verdict"].as_str().unwrap().len(), 66);

    // The same assertions again: their counters were spent.
    sign_tx(&w, &tx_file, Some(&file)).refused("approvals-required", 3, "counter");

    // A personal message under its own rule, one owner.
    let challenge = message_challenge(&w, "pay day");
    let file = w.approvals(&[devices[1].assert(&challenge)]);
    let signed = sign_message(&w, "pay day", Some(&file)).ok();
    assert_eq!(signed["address"], address.as_str());
    assert_eq!(signed["policy"]["rule"], "messages");
    sign_message(&w, "pay day", None).refused(
        "approvals-required",
        3,
        "1 more of group \"owners\"",
    );

    // Another device of owner-2: vouched for by one of theirs, not by the
    // policy key.
    let mut second = Device::p256(7);
    let registration = w.file(&second.register(&[3; 32], "none"));
    let add = [
        "--wallet",
        WALLET,
        "--approver",
        "owner-2",
        "--credential",
        &registration,
    ];
    let mut args = vec!["approver", "add"];
    args.extend(add);
    w.run(&args).refused("approvals-required", 3, "owner-2");
    let mut args = vec!["challenge", "approver-add"];
    args.extend(add);
    let challenge = w.challenge(&args[1..]);
    let by_another = w.approvals(&[devices[0].assert(&challenge)]);
    let mut args = vec!["approver", "add"];
    args.extend(add);
    args.extend(["--approvals", &by_another]);
    w.run(&args).refused("approvals-required", 3, "owner-2");
    let by_them = w.approvals(&[devices[1].assert(&challenge)]);
    let mut args = vec!["approver", "add"];
    args.extend(add);
    args.extend(["--approvals", &by_them]);
    let added = w.run(&args).ok();
    assert_eq!(
        (added["approverId"].as_str(), added["role"].as_str()),
        (Some("owner-2"), Some("owner"))
    );
    assert_eq!(added["logIndex"], 4);
    // The new device approves for owner-2 from now on.
    let challenge = message_challenge(&w, "again");
    let file = w.approvals(&[second.assert(&challenge)]);
    sign_message(&w, "again", Some(&file)).ok();

    // The audit log holds the signature with the verdict that cleared it.
    let audit = std::fs::read_to_string(w.ks.join("audit.log")).unwrap();
    let verdict = &out["policy"]["verdict"].as_str().unwrap()[2..];
    assert!(audit.contains(verdict), "the audit log names the verdict");
    w.run(&["audit", "verify"]).ok();
}

#[test]
fn refusals_name_what_refused() {
    let (mut w, mut devices, _, _) = governed();

    // A denied destination: the deny rule wins, approvals or not.
    let mixer = w.file(&tx(MIXER, 1, 0));
    let challenge = tx_challenge(&w, &mixer);
    sign_tx(&w, &mixer, None).refused("policy-denied", 3, "rule \"no-mixer\"");
    let file = w.approvals(&[devices[0].assert(&challenge), devices[1].assert(&challenge)]);
    sign_tx(&w, &mixer, Some(&file)).refused("policy-denied", 3, "rule \"no-mixer\"");

    // Assertions over another transaction's challenge.
    let first = w.file(&tx(ALICE, 2 * ONE_ETH, 0));
    let second = w.file(&tx(ALICE, 2 * ONE_ETH, 1));
    let challenge = tx_challenge(&w, &first);
    let file = w.approvals(&[devices[0].assert(&challenge), devices[1].assert(&challenge)]);
    sign_tx(&w, &second, Some(&file)).refused("approvals-required", 3, "challenge");

    // An assertion made on a page of another origin.
    let challenge = tx_challenge(&w, &second);
    let data = devices[0].auth_data(RP_ID, UP | UV);
    let client = ClientData {
        origin: "https://evil.example.com".into(),
        ..ClientData::get(&challenge)
    };
    let phished = devices[0].assertion_from(&data, &client.to_json());
    let file = w.approvals(&[phished, devices[1].assert(&challenge)]);
    sign_tx(&w, &second, Some(&file)).refused("approvals-required", 3, "origin");

    // A device no approver of the wallet has.
    let stranger = Device::p256(9).assert(&challenge);
    let file = w.approvals(&[stranger]);
    sign_tx(&w, &second, Some(&file)).refused("approvals-required", 3, "no approver's device");

    // Not an approvals file.
    let junk = w.file("{\"not\": \"an array\"}");
    sign_tx(&w, &second, Some(&junk)).refused("bad-input", 2, "--approvals");

    // Every other route to the wallet's keys passes the same gate: a bare
    // digest by BIP32 path (this policy does not opt in to raw digests),
    // and an export.
    let path = w.run(&["derive", "--wallet", WALLET, "--index", "0"]).ok()["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let hash = format!("0x{}", "ab".repeat(32));
    w.run(&["sign-hash", "--path", &path, "--hash", &hash])
        .refused("policy-denied", 3, "allowRawDigest");
    let export = w.run(&[
        "keystore",
        "export",
        "--wallet",
        WALLET,
        "--index",
        "0",
        "--light-kdf",
    ]);
    assert_eq!((export.code, export.kind()), (1, "forbidden"));

    // The policy key signs entries and verdicts only.
    w.run(&[
        "sign-hash",
        "--wallet",
        "custody-policy",
        "--index",
        "0",
        "--hash",
        &hash,
    ])
    .refused("forbidden", 1, "policy key");
    let export = w.run(&[
        "keystore",
        "export",
        "--wallet",
        "custody-policy",
        "--index",
        "0",
        "--light-kdf",
    ]);
    export.refused("forbidden", 1, "policy key");
    let export = w.run(&["keystore", "export", "--path", "m", "--light-kdf"]);
    assert_eq!((export.code, export.kind()), (1, "forbidden"));

    // An ungoverned wallet signs as before, and refuses approvals it
    // cannot use.
    let other = w.file(&tx(ALICE, 1, 0));
    let out = w
        .run(&["sign-tx", "--wallet", "ops", "--index", "0", "--tx", &other])
        .ok();
    assert!(out.get("policy").is_none());
    let file = w.approvals(&[devices[0].assert(&challenge)]);
    w.run(&[
        "sign-tx",
        "--wallet",
        "ops",
        "--index",
        "0",
        "--tx",
        &other,
        "--approvals",
        &file,
    ])
    .refused("bad-input", 2, "no policy governs this key");
}

#[test]
fn a_later_policy_needs_the_current_quorum_and_the_log_verifies() {
    let (mut w, mut devices, address, first_hash) = governed();

    // A small payment needs one owner under the first policy.
    let small = w.file(&tx(ALICE, ONE_ETH / 2, 0));
    let challenge = tx_challenge(&w, &small);
    let file = w.approvals(&[devices[1].assert(&challenge)]);
    let out = sign_tx(&w, &small, Some(&file)).ok();
    check_tx_signature(&out, &address);
    assert_eq!(out["policy"]["rule"], "small");

    // The second policy: every payment needs two owners.
    let mut doc = policy_doc();
    doc["rules"][1]["require"][0]["threshold"] = json!(2);
    let policy = w.file(&doc.to_string());
    let challenge = w.challenge(&["policy-set", "--wallet", WALLET, "--file", &policy]);
    let file = w.approvals(&[devices[2].assert(&challenge)]);
    w.set_policy(&policy, &file).refused(
        "approvals-required",
        3,
        "the current policy's governance quorum",
    );
    let file = w.approvals(&[devices[0].assert(&challenge), devices[2].assert(&challenge)]);
    let out = w.set_policy(&policy, &file).ok();
    assert_eq!(out["logIndex"], 4);
    let second_hash = out["policyHash"].as_str().unwrap().to_owned();
    assert_ne!(second_hash, first_hash);

    let small = w.file(&tx(ALICE, ONE_ETH / 2, 1));
    let challenge = tx_challenge(&w, &small);
    let file = w.approvals(&[devices[1].assert(&challenge)]);
    sign_tx(&w, &small, Some(&file)).refused("approvals-required", 3, "1 more of group \"owners\"");

    let shown = w.run(&["policy", "show", "--wallet", WALLET]).ok();
    assert_eq!(shown["logIndex"], 4);
    assert_eq!(shown["policyHash"], second_hash.as_str());
    assert_eq!(shown["policy"]["rules"][1]["require"][0]["threshold"], 2);
    let ids: Vec<&str> = shown["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["approverId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["owner-1", "owner-2", "owner-3"]);

    let log = w
        .run(&["policy", "log", "--wallet", WALLET, "--verify"])
        .ok();
    assert_eq!(log["verified"], true);
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[3]["policyHash"], first_hash.as_str());
    assert!(entries[3]["auth"]["policyKey"].is_string());
    assert_eq!(entries[4]["auth"]["approvals"].as_array().unwrap().len(), 2);
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["previous"], pair[0]["hash"]);
    }
}

#[test]
fn approvers_and_config_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let ks = tmp.path().join("ks");
    custody(&ks, &["init", "--light-kdf"]).ok();
    let cred = tmp.path().join("cred.json");
    std::fs::write(&cred, Device::p256(1).register(&[1; 32], "none")).unwrap();
    let add = |dir: &Path| {
        custody(
            dir,
            &[
                "approver",
                "add",
                "--wallet",
                WALLET,
                "--role",
                "owner",
                "--credential",
                cred.to_str().unwrap(),
            ],
        )
    };
    add(&ks).refused("not-found", 1, "webauthn config");

    for (args, says) in [
        (
            vec!["--rp-id", "https://x.example", "--origin", ORIGIN],
            "--rp-id",
        ),
        (
            vec!["--rp-id", RP_ID, "--origin", "https://other.example"],
            "RP ID",
        ),
        (
            vec!["--rp-id", RP_ID, "--origin", "http://custody.example.com"],
            "https://",
        ),
    ] {
        let mut all = vec!["webauthn", "config"];
        all.extend(args);
        custody(&ks, &all).refused("bad-input", 2, says);
    }
    custody(
        &ks,
        &["webauthn", "config", "--rp-id", RP_ID, "--origin", ORIGIN],
    )
    .ok();
    let out = add(&ks).ok();
    assert_eq!(out["approverId"], "owner-1");
    add(&ks).refused("already-exists", 1, "owner-1");

    // A registration for another RP ID, and a malformed one.
    let mut device = Device::p256(2);
    let registration = device.register(&[1; 32], "none");
    let mut value: Value = serde_json::from_str(&registration).unwrap();
    value["response"]["attestationObject"] = json!("AAAA");
    std::fs::write(&cred, value.to_string()).unwrap();
    let r = add(&ks);
    assert_eq!(r.code, 1);
    assert!(r.kind().starts_with("webauthn-"), "{}", r.err);
    std::fs::write(&cred, "not json").unwrap();
    assert!(add(&ks).kind().starts_with("webauthn-"));

    // A policy whose group holds someone who is not an approver, or one of
    // another role.
    let mut doc = policy_doc();
    doc["governance"]["threshold"] = json!(1);
    doc["rules"][2]["require"][0]["threshold"] = json!(1);
    let policy = tmp.path().join("policy.json");
    std::fs::write(&policy, doc.to_string()).unwrap();
    let empty = tmp.path().join("empty.json");
    std::fs::write(&empty, "[]").unwrap();
    let set = [
        "policy",
        "set",
        "--wallet",
        WALLET,
        "--file",
        policy.to_str().unwrap(),
        "--approvals",
        empty.to_str().unwrap(),
    ];
    custody(&ks, &set).refused("policy-invalid", 1, "\"owner-2\" is no approver");

    // The RP ID is fixed once a wallet has a log; the origins are not.
    custody(
        &ks,
        &[
            "webauthn",
            "config",
            "--rp-id",
            "example.org",
            "--origin",
            "https://example.org",
        ],
    )
    .refused("already-exists", 1, RP_ID);
    let out = custody(
        &ks,
        &[
            "webauthn",
            "config",
            "--rp-id",
            RP_ID,
            "--origin",
            ORIGIN,
            "--origin",
            "https://app.custody.example.com:8443",
        ],
    )
    .ok();
    assert_eq!(out["origins"].as_array().unwrap().len(), 2);
    custody(&ks, &["policy", "show", "--wallet", "nobody"]).refused(
        "not-found",
        1,
        "no policy log",
    );
}

// ------------------------------------------------ a real browser's WebAuthn

/// A headless Chromium driven over the Chrome DevTools Protocol (the
/// workspace's one copy, shared with custody-jose's browser test), with a
/// virtual authenticator (CTAP2, internal, resident keys, user verified):
/// the approver's ceremonies run in a real browser on a page of a loopback
/// origin, and the JSON `PublicKeyCredential.toJSON()` gives is what the
/// CLI is handed.
#[path = "../../../testing/chromium.rs"]
mod browser;

/// Serves the approvers' one small page on a loopback port.
fn serve_page() -> u16 {
    browser::serve(Box::new(|_path: &str| {
        Some((
            "text/html",
            b"<!doctype html><meta charset=utf-8><title>custody approvals</title>".to_vec(),
        ))
    }))
}

/// base64url helpers and the two ceremonies, as a page would run them.
const PAGE_JS: &str = r"
const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const fromB64u = (s) => Uint8Array.from(
    atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - s.length % 4) % 4)),
    (c) => c.charCodeAt(0));
const asJson = (credential) => JSON.stringify(
    typeof credential.toJSON === 'function' ? credential.toJSON() : {
        id: credential.id, rawId: b64u(credential.rawId), type: credential.type,
        authenticatorAttachment: credential.authenticatorAttachment,
        clientExtensionResults: credential.getClientExtensionResults(),
        response: credential.response.attestationObject ? {
            clientDataJSON: b64u(credential.response.clientDataJSON),
            attestationObject: b64u(credential.response.attestationObject),
            transports: credential.response.getTransports(),
        } : {
            clientDataJSON: b64u(credential.response.clientDataJSON),
            authenticatorData: b64u(credential.response.authenticatorData),
            signature: b64u(credential.response.signature),
            userHandle: credential.response.userHandle && b64u(credential.response.userHandle),
        },
    });
";

/// The test's browser, or `None` after saying the test is skipped.
fn chromium(test: &str) -> Option<PathBuf> {
    match std::env::var_os("CUSTODY_TEST_CHROMIUM") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            println!("skipped {test}: set CUSTODY_TEST_CHROMIUM to a Chromium binary");
            None
        }
    }
}

#[test]
fn a_browser_approver_registers_and_approves_a_transaction() {
    let Some(binary) = chromium("a_browser_approver_registers_and_approves_a_transaction") else {
        return;
    };
    let port = serve_page();
    let origin = format!("http://localhost:{port}");
    let mut b = browser::Chromium::start(&binary);
    add_authenticator(&mut b);
    b.open(&format!("{origin}/"));
    assert_eq!(b.eval("window.isSecureContext"), true);

    let mut w = World::for_rp("localhost", &origin);

    // Registration: navigator.credentials.create() on the page.
    let registration = browser_register(&mut b, 1);
    let added = w.add_registration(&registration, "owner");
    assert_eq!(added["approverId"], "owner-1");
    let credential_id = added["credentialId"].as_str().unwrap().to_owned();
    let registered: Value = serde_json::from_str(&registration).unwrap();
    assert_eq!(registered["rawId"], credential_id.as_str());

    // Assertions: navigator.credentials.get() over a custody challenge.
    let approve =
        |b: &mut browser::Chromium, challenge: &[u8]| browser_assert(b, &credential_id, challenge);

    let mut doc = policy_doc();
    doc["groups"]["owners"]["members"] = json!(["owner-1"]);
    doc["governance"]["threshold"] = json!(1);
    doc["rules"][2]["require"][0]["threshold"] = json!(1);
    let policy = w.file(&doc.to_string());
    let challenge = w.challenge(&["policy-set", "--wallet", WALLET, "--file", &policy]);
    let assertion = approve(&mut b, &challenge);
    let file = w.approvals(&[assertion]);
    let set = w.set_policy(&policy, &file).ok();
    assert_eq!(set["logIndex"], 1);

    let address = w.address();
    let tx_file = w.file(&tx(ALICE, 2 * ONE_ETH, 0));
    sign_tx(&w, &tx_file, None).refused("approvals-required", 3, "1 more of group \"owners\"");
    let challenge = tx_challenge(&w, &tx_file);
    let assertion = approve(&mut b, &challenge);
    let file = w.approvals(&[assertion]);
    let out = sign_tx(&w, &tx_file, Some(&file)).ok();
    assert_signed_large(&out, &address, 1, set["policyHash"].as_str().unwrap());

    // The browser's assertion, presented again: its counter was spent.
    sign_tx(&w, &tx_file, Some(&file)).refused("approvals-required", 3, "counter");
}

/// Gives the current page a CTAP2 platform authenticator (CDP's virtual
/// authenticator: resident keys, user verification, presence simulated).
fn add_authenticator(b: &mut browser::Chromium) {
    b.call("WebAuthn.enable", json!({"enableUI": false}));
    b.call(
        "WebAuthn.addVirtualAuthenticator",
        json!({"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true,
            "automaticPresenceSimulation": true
        }}),
    );
}

/// A page's registration ceremony: `navigator.credentials.create()` for
/// user `user` (its `toJSON()` text).
fn browser_register(b: &mut browser::Chromium, user: u8) -> String {
    let value = b.eval(&format!(
        "(async () => {{ {PAGE_JS}
            const credential = await navigator.credentials.create({{ publicKey: {{
                challenge: crypto.getRandomValues(new Uint8Array(32)),
                rp: {{ id: 'localhost', name: 'custody' }},
                user: {{ id: new Uint8Array([{user}]), name: 'owner-{user}', displayName: 'Owner {user}' }},
                pubKeyCredParams: [{{ type: 'public-key', alg: -7 }}, {{ type: 'public-key', alg: -8 }}],
                authenticatorSelection: {{ residentKey: 'required', userVerification: 'required' }},
                attestation: 'none',
            }} }});
            return asJson(credential);
        }})()"
    ));
    value.as_str().unwrap().to_owned()
}

/// A page's assertion ceremony: `navigator.credentials.get()` over
/// `challenge` with the credential `id` (base64url).
fn browser_assert(b: &mut browser::Chromium, id: &str, challenge: &[u8]) -> String {
    let value = b.eval(&format!(
        "(async () => {{ {PAGE_JS}
            const credential = await navigator.credentials.get({{ publicKey: {{
                challenge: fromB64u('{}'), rpId: 'localhost', userVerification: 'required',
                allowCredentials: [{{ type: 'public-key', id: fromB64u('{id}') }}],
            }} }});
            return asJson(credential);
        }})()",
        b64(challenge)
    ));
    value.as_str().unwrap().to_owned()
}

/// The signature counter an assertion's authenticator data carries.
fn sign_count(assertion: &str) -> u32 {
    let v: Value = serde_json::from_str(assertion).unwrap();
    let data = unb64(v["response"]["authenticatorData"].as_str().unwrap());
    u32::from_be_bytes(data[33..37].try_into().unwrap())
}

#[test]
fn three_browser_approvers_two_of_three_sign_and_replays_origins_and_stale_counters_are_refused() {
    let Some(binary) = chromium(
        "three_browser_approvers_two_of_three_sign_and_replays_origins_and_stale_counters_are_refused",
    ) else {
        return;
    };
    let port = serve_page();
    let origin = format!("http://localhost:{port}");
    // Another page, on an origin the relying party does not list (same RP
    // ID: the browser lets it ask for the credential; custody must not).
    let other_port = serve_page();
    let other_origin = format!("http://localhost:{other_port}");
    let mut b = browser::Chromium::start(&binary);
    let mut w = World::for_rp("localhost", &origin);

    // Three owners, each a tab with its own virtual authenticator.
    let mut pages = Vec::new();
    for user in 1..=3u8 {
        let session = b.new_page();
        // Every tab counts as focused, whichever is in front.
        b.call(
            "Emulation.setFocusEmulationEnabled",
            json!({"enabled": true}),
        );
        add_authenticator(&mut b);
        b.open(&format!("{origin}/"));
        let registration = browser_register(&mut b, user);
        let added = w.add_registration(&registration, "owner");
        assert_eq!(added["approverId"], format!("owner-{user}"));
        let id = added["credentialId"].as_str().unwrap().to_owned();
        pages.push((session, id));
    }
    // Each ceremony on its owner's page.
    let approve = |b: &mut browser::Chromium, owner: usize, challenge: &[u8]| {
        let (session, id) = &pages[owner];
        b.switch(session);
        browser_assert(b, id, challenge)
    };

    // The policy: two of the three owners govern it and approve large
    // payments (policy_doc), set with two of them.
    let policy = w.file(&policy_doc().to_string());
    let challenge = w.challenge(&["policy-set", "--wallet", WALLET, "--file", &policy]);
    let file = w.approvals(&[
        approve(&mut b, 0, &challenge),
        approve(&mut b, 1, &challenge),
    ]);
    let set = w.set_policy(&policy, &file).ok();
    assert_eq!(set["logIndex"], 3);
    let address = w.address();

    // 2 ETH: one owner is not enough, two are; the signature recovers
    // to the wallet's address. The refused request spent nothing: owner
    // 2's assertion from it counts in the one that signs.
    let first = w.file(&tx(ALICE, 2 * ONE_ETH, 0));
    let c1 = tx_challenge(&w, &first);
    let owner2 = approve(&mut b, 1, &c1);
    let one = w.approvals(std::slice::from_ref(&owner2));
    sign_tx(&w, &first, Some(&one)).refused("approvals-required", 3, "1 more of group \"owners\"");
    let two = w.approvals(&[approve(&mut b, 0, &c1), owner2]);
    let out = sign_tx(&w, &first, Some(&two)).ok();
    assert_signed_large(&out, &address, 3, set["policyHash"].as_str().unwrap());

    // A replayed assertion: the same approvals again.
    sign_tx(&w, &first, Some(&two)).refused("approvals-required", 3, "counter");

    // A wrong origin: owner 2's page moved to another origin; the browser
    // makes the assertion, custody refuses it.
    let second = w.file(&tx(ALICE, 2 * ONE_ETH, 1));
    let c2 = tx_challenge(&w, &second);
    b.switch(&pages[1].0);
    b.open(&format!("{other_origin}/"));
    let phished = approve(&mut b, 1, &c2);
    let v: Value = serde_json::from_str(&phished).unwrap();
    let client = unb64(v["response"]["clientDataJSON"].as_str().unwrap());
    let client: Value = serde_json::from_slice(&client).unwrap();
    assert_eq!(client["origin"], other_origin.as_str());
    let file = w.approvals(&[approve(&mut b, 0, &c2), phished]);
    sign_tx(&w, &second, Some(&file)).refused("approvals-required", 3, "origin");
    b.switch(&pages[1].0);
    b.open(&format!("{origin}/"));

    // A stale counter: owner 3 approves the third payment, then the
    // second; the second signs, and the older assertion (its counter
    // below the one now recorded) is refused.
    let third = w.file(&tx(ALICE, 2 * ONE_ETH, 2));
    let c3 = tx_challenge(&w, &third);
    let stale = approve(&mut b, 2, &c3);
    let newer = approve(&mut b, 2, &c2);
    assert!(sign_count(&newer) > sign_count(&stale));
    let file = w.approvals(&[approve(&mut b, 1, &c2), newer]);
    let out = sign_tx(&w, &second, Some(&file)).ok();
    check_tx_signature(&out, &address);
    let file = w.approvals(&[approve(&mut b, 0, &c3), stale]);
    sign_tx(&w, &third, Some(&file)).refused("approvals-required", 3, "counter");
    // Owner 3's fresh assertion: the third payment signs (6 of 10 ETH).
    let file = w.approvals(&[approve(&mut b, 0, &c3), approve(&mut b, 2, &c3)]);
    check_tx_signature(&sign_tx(&w, &third, Some(&file)).ok(), &address);
}
