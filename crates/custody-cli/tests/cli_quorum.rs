//! End-to-end: the quorum boot through the built binary (shared/CLI.md,
//! "Quorum boot"): `quorum split`, `quorum enclave start --nsm fake`,
//! `quorum seal-share` by two holders, `quorum boot`; then every refusal
//! with its stable kind and exit code. The fake NSM is switched on for the
//! tests only (custody-cli's dev-dependency on itself with `nsm-fake`; see
//! its Cargo.toml). Deliberately not `cfg(feature = "nsm-fake")`: a binary
//! built without it fails these tests (kind `unsupported`) instead of
//! skipping them.
#![cfg(feature = "nitro")]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use custody_kms::nitro::fake::{Chain, Doc, FakeNsm};
use custody_kms::nitro::{AttestRequest, Nsm};
use serde_json::Value;

#[path = "support/world.rs"]
mod world;
use world::{json_or_null, now};

struct Run {
    code: i32,
    out: Value,
    err: Value,
    stdout: String,
}

fn custody(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_custody"))
        .args(args)
        .env_remove("CUSTODY_KEYSTORE")
        .env_remove("CUSTODY_STATE")
        .output()
        .unwrap();
    Run {
        code: status.code().unwrap(),
        out: json_or_null(&stdout),
        err: json_or_null(&stderr),
        stdout: String::from_utf8(stdout).unwrap(),
    }
}

fn ok(r: Run) -> Value {
    assert_eq!(r.code, 0, "{:?}", r.err);
    assert_eq!(r.err, Value::Null);
    r.out
}

/// The refusal's kind, exit code and a phrase of its message; nothing on
/// stdout.
fn refused(r: &Run, kind: &str, code: i32, words: &str) {
    assert_eq!(r.code, code, "{:?}", r.err);
    assert_eq!(r.err["error"]["kind"], kind, "{:?}", r.err);
    let message = r.err["error"]["message"].as_str().unwrap();
    assert!(message.contains(words), "{message:?} names {words:?}");
    assert_eq!(r.out, Value::Null, "nothing on stdout");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const USER_DATA: &str = "0x6d616e6966657374206861736820233432";

/// A split (2 of 3) and a started enclave, in one temporary directory.
struct Ceremony {
    dir: tempfile::TempDir,
    split: Value,
    start: Value,
}

impl Ceremony {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("holders");
        let split = ok(custody(&[
            "quorum",
            "split",
            "--threshold",
            "2",
            "--shares",
            "3",
            "--out",
            s(&out),
        ]));
        let enclave = dir.path().join("enclave");
        let start = ok(custody(&[
            "quorum",
            "enclave",
            "start",
            "--dir",
            s(&enclave),
            "--nsm",
            "fake",
            "--user-data",
            USER_DATA,
        ]));
        let c = Self { dir, split, start };
        // The PCRs a holder expects: the image's (here, the fake's).
        std::fs::write(c.path("pcrs.json"), c.start["pcrs"].to_string()).unwrap();
        c
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn share(&self, i: u8) -> PathBuf {
        self.path(&format!("holders/share-{i}.json"))
    }

    fn shareset(&self) -> PathBuf {
        self.path("holders/shareset.json")
    }

    fn enclave(&self) -> PathBuf {
        self.path("enclave")
    }

    fn attestation(&self) -> PathBuf {
        PathBuf::from(self.start["attestation"].as_str().unwrap())
    }

    fn root(&self) -> PathBuf {
        self.path("enclave/test-root.pem")
    }

    fn seal_with(&self, share: &Path, attestation: &Path, extra: &[&str]) -> Run {
        let pcrs = self.path("pcrs.json");
        let root = self.root();
        let set = self.shareset();
        let mut args = vec![
            "quorum",
            "seal-share",
            "--share",
            s(share),
            "--shareset",
            s(&set),
            "--attestation",
            s(attestation),
            "--expect-pcrs",
            s(&pcrs),
            "--root",
            s(&root),
        ];
        args.extend_from_slice(extra);
        custody(&args)
    }

    /// Holder `i` seals to the enclave's document; the sealed share's file.
    fn seal(&self, i: u8) -> PathBuf {
        let out = self.path(&format!("sealed-{i}.json"));
        let key = self.start["enclaveKey"].as_str().unwrap().to_owned();
        let r = ok(self.seal_with(
            &self.share(i),
            &self.attestation(),
            &[
                "--user-data",
                USER_DATA,
                "--enclave-key",
                &key,
                "--out",
                s(&out),
            ],
        ));
        assert_eq!(r["index"], i);
        assert_eq!(r["sealedShare"], s(&out));
        out
    }

    fn boot(&self, sealed: &[&Path]) -> Run {
        let dir = self.enclave();
        let set = self.shareset();
        let mut args = vec![
            "quorum",
            "boot",
            "--dir",
            s(&dir),
            "--shareset",
            s(&set),
            "--sealed",
        ];
        args.extend(sealed.iter().map(|p| s(p)));
        custody(&args)
    }

    /// A document from the same fake NSM as `enclave start --nsm fake`
    /// (the fixed test root), shaped by `edit`, for the refusals.
    fn document(
        &self,
        name: &str,
        edit: impl FnOnce(&mut Doc),
        public_key: Option<&[u8]>,
    ) -> PathBuf {
        let t = now();
        let mut chain = Chain::valid_at(t);
        chain.root = Chain::valid().root;
        let mut doc = Doc::valid();
        doc.chain = chain;
        doc.timestamp_ms = t * 1000;
        edit(&mut doc);
        let user_data = hex::decode(&USER_DATA[2..]).unwrap();
        let bytes = FakeNsm::with_template(doc)
            .attest(&AttestRequest {
                public_key,
                user_data: Some(&user_data),
                nonce: None,
            })
            .unwrap();
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn enclave_key(&self) -> Vec<u8> {
        hex::decode(&self.start["enclaveKey"].as_str().unwrap()[2..]).unwrap()
    }
}

#[test]
fn two_of_three_holders_boot_the_enclave_through_the_binary() {
    let c = Ceremony::new();
    // split: the public key, the set, the files; no share on stdout.
    let qpk = c.split["quorumPublicKey"].as_str().unwrap().to_owned();
    assert!(qpk.starts_with("0x0") && qpk.len() == 68, "{qpk}");
    assert_eq!(c.split["threshold"], 2);
    assert_eq!(c.split["shares"], 3);
    assert_eq!(c.split["shareSet"], s(&c.shareset()));
    let set: Value = serde_json::from_slice(&std::fs::read(c.shareset()).unwrap()).unwrap();
    assert_eq!(
        format!("0x{}", set["quorumPublicKey"].as_str().unwrap()),
        qpk
    );
    assert_eq!(set["commitments"].as_array().unwrap().len(), 3);
    for i in 1..=3 {
        let share: Value = serde_json::from_slice(&std::fs::read(c.share(i)).unwrap()).unwrap();
        assert_eq!(share["index"], i);
        let value = share["value"].as_str().unwrap();
        assert!(!c.split.to_string().contains(value), "a share on stdout");
        #[cfg(unix)]
        assert_eq!(mode(&c.share(i)), 0o600, "share {i}");
    }

    // enclave start: the document binds the key and the user data.
    let key = c.start["enclaveKey"].as_str().unwrap();
    assert!(key.starts_with("0x04") && key.len() == 132, "{key}");
    #[cfg(unix)]
    assert_eq!(mode(&c.enclave().join("enclave-key")), 0o600);
    // `attestation verify` pins AWS's root: the fake's document is refused.
    let r = custody(&["attestation", "verify", "--doc", s(&c.attestation())]);
    refused(&r, "attestation-invalid", 3, "pinned root");

    // Holders 1 and 3 verify and seal (one to a file, one on stdout).
    let sealed_1 = c.seal(1);
    let r = ok(c.seal_with(&c.share(3), &c.attestation(), &["--user-data", USER_DATA]));
    assert_eq!(r["index"], 3);
    assert_eq!(r["enclaveKey"], key);
    let printed = r["sealedShare"].as_str().unwrap();
    assert!(
        printed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "base64url: {printed}"
    );
    let sealed_3 = c.path("sealed-3.b64");
    std::fs::write(&sealed_3, printed).unwrap();
    let share_3: Value = serde_json::from_slice(&std::fs::read(c.share(3)).unwrap()).unwrap();
    assert!(
        !std::fs::read_to_string(&sealed_1)
            .unwrap()
            .contains(share_3["value"].as_str().unwrap())
    );

    // boot: the quorum key rebuilt and checked, the KEK id of it.
    let r = c.boot(&[&sealed_1, &sealed_3]);
    assert!(!r.stdout.contains(share_3["value"].as_str().unwrap()));
    let booted = ok(r);
    assert_eq!(booted["quorumPublicKey"], qpk.as_str());
    assert_eq!(booted["sharesUsed"], serde_json::json!([1, 3]));
    let public: custody_quorum::QuorumPublicKey = qpk[2..].parse().unwrap();
    assert_eq!(booted["kekId"], public.kek_id_text());
    // One key, one boot: the enclave key is gone, a second boot finds none.
    assert!(!c.enclave().join("enclave-key").exists());
    refused(
        &c.boot(&[&sealed_1, &sealed_3]),
        "not-found",
        1,
        "enclave-key",
    );
}

#[test]
fn any_two_shares_boot_to_the_same_key_and_one_is_quorum_incomplete() {
    let c = Ceremony::new();
    let (s1, s2) = (c.seal(1), c.seal(2));
    refused(&c.boot(&[&s2]), "quorum-incomplete", 1, "1 of 2 shares");
    // A refused boot leaves the enclave key: the ceremony goes on.
    let booted = ok(c.boot(&[&s2, &s1]));
    assert_eq!(booted["quorumPublicKey"], c.split["quorumPublicKey"]);
    assert_eq!(booted["sharesUsed"], serde_json::json!([1, 2]));
}

#[test]
fn a_repeated_share_is_share_invalid_naming_its_index() {
    let c = Ceremony::new();
    let s2 = c.seal(2);
    refused(
        &c.boot(&[&s2, &s2]),
        "share-invalid",
        1,
        "share 2 was already accepted",
    );
    let s3 = c.seal(3);
    assert_eq!(
        ok(c.boot(&[&s2, &s3]))["sharesUsed"],
        serde_json::json!([2, 3])
    );
}

#[test]
fn a_share_of_another_quorum_is_refused_by_the_holder_and_by_the_enclave() {
    let c = Ceremony::new();
    let other = c.path("other");
    ok(custody(&[
        "quorum",
        "split",
        "--threshold",
        "2",
        "--shares",
        "3",
        "--out",
        s(&other),
    ]));
    // The holder's own check: the share is not one of this share set's.
    let r = c.seal_with(&other.join("share-1.json"), &c.attestation(), &[]);
    refused(&r, "share-invalid", 1, "--share: share 1");
    // A share sealed for the other set, handed to this enclave.
    let set = other.join("shareset.json");
    let foreign = c.path("foreign.json");
    let pcrs = c.path("pcrs.json");
    let root = c.root();
    ok(custody(&[
        "quorum",
        "seal-share",
        "--share",
        s(&other.join("share-1.json")),
        "--shareset",
        s(&set),
        "--attestation",
        s(&c.attestation()),
        "--expect-pcrs",
        s(&pcrs),
        "--root",
        s(&root),
        "--out",
        s(&foreign),
    ]));
    let s2 = c.seal(2);
    refused(
        &c.boot(&[&s2, &foreign]),
        "share-invalid",
        1,
        "share 1 belongs to another share set",
    );
}

#[test]
fn a_share_sealed_to_another_enclave_or_altered_is_share_invalid() {
    let c = Ceremony::new();
    let s1 = c.seal(1);
    let s2 = c.seal(2);
    // One changed ciphertext digit: the seal does not open.
    let text = std::fs::read_to_string(&s2).unwrap();
    let at = text.find("\"ciphertext\":\"").unwrap() + 14;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let altered = c.path("altered.json");
    std::fs::write(&altered, bytes).unwrap();
    refused(
        &c.boot(&[&s1, &altered]),
        "share-invalid",
        1,
        "sealed share 2 did not open",
    );
    // Not a sealed share at all: bad input.
    let junk = c.path("junk.json");
    std::fs::write(&junk, "{\"version\":1}").unwrap();
    refused(&c.boot(&[&s1, &junk]), "bad-input", 2, "junk.json");
}

#[test]
fn a_tampered_attestation_is_refused() {
    let c = Ceremony::new();
    let mut bytes = std::fs::read(c.attestation()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = c.path("tampered.cose");
    std::fs::write(&tampered, bytes).unwrap();
    refused(
        &c.seal_with(&c.share(1), &tampered, &[]),
        "attestation-invalid",
        3,
        "COSE signature",
    );
    // Without --root, AWS's root is pinned: the fake's chain is not AWS's.
    let pcrs = c.path("pcrs.json");
    let set = c.shareset();
    let r = custody(&[
        "quorum",
        "seal-share",
        "--share",
        s(&c.share(1)),
        "--shareset",
        s(&set),
        "--attestation",
        s(&c.attestation()),
        "--expect-pcrs",
        s(&pcrs),
    ]);
    refused(&r, "attestation-invalid", 3, "pinned root");
}

#[test]
fn wrong_pcrs_or_user_data_are_refused() {
    let c = Ceremony::new();
    let mut pcrs = c.start["pcrs"].clone();
    pcrs["0"] = Value::String(format!("0x{}", "11".repeat(48)));
    let wrong = c.path("wrong-pcrs.json");
    std::fs::write(&wrong, pcrs.to_string()).unwrap();
    let set = c.shareset();
    let root = c.root();
    let r = custody(&[
        "quorum",
        "seal-share",
        "--share",
        s(&c.share(1)),
        "--shareset",
        s(&set),
        "--attestation",
        s(&c.attestation()),
        "--expect-pcrs",
        s(&wrong),
        "--root",
        s(&root),
    ]);
    refused(&r, "attestation-invalid", 3, "PCR0 does not match");
    let r = c.seal_with(&c.share(1), &c.attestation(), &["--user-data", "0x00"]);
    refused(&r, "attestation-invalid", 3, "user_data does not match");
}

#[test]
fn a_debug_mode_document_needs_allow_debug() {
    let c = Ceremony::new();
    let key = c.enclave_key();
    let debug = c.document(
        "debug.cose",
        |doc| {
            for i in 0..3 {
                doc.pcrs.insert(i, vec![0; 48]);
            }
        },
        Some(&key),
    );
    let none = c.path("no-pcrs.json");
    std::fs::write(&none, "{}").unwrap();
    let set = c.shareset();
    let root = c.root();
    let share = c.share(1);
    let seal = |extra: &[&str]| {
        let mut args = vec![
            "quorum",
            "seal-share",
            "--share",
            s(&share),
            "--shareset",
            s(&set),
            "--attestation",
            s(&debug),
            "--expect-pcrs",
            s(&none),
            "--root",
            s(&root),
        ];
        args.extend_from_slice(extra);
        custody(&args)
    };
    refused(&seal(&[]), "attestation-invalid", 3, "debug mode");
    let out = c.path("sealed-debug.json");
    let r = ok(seal(&["--allow-debug", "--out", s(&out)]));
    assert_eq!(r["index"], 1);
    // It is this enclave's key: the share opens in the boot.
    let s2 = c.seal(2);
    assert_eq!(
        ok(c.boot(&[&out, &s2]))["quorumPublicKey"],
        c.split["quorumPublicKey"]
    );
}

#[test]
fn an_attestation_whose_public_key_is_not_the_enclave_key_is_refused() {
    let c = Ceremony::new();
    let enclave_key = c.start["enclaveKey"].as_str().unwrap().to_owned();
    // A genuine document of the right image, binding someone else's key.
    let other = custody_quorum::EnclaveSecretKey::generate()
        .unwrap()
        .public_key()
        .to_bytes();
    let swapped = c.document("swapped.cose", |_| {}, Some(&other));
    let r = c.seal_with(&c.share(1), &swapped, &["--enclave-key", &enclave_key]);
    refused(&r, "attestation-invalid", 3, "public_key does not match");
    // A public_key that is no enclave key at all (an RSA key's place).
    let rsa = c.document(
        "rsa.cose",
        |_| {},
        Some(b"\x30\x82 an RSA SubjectPublicKeyInfo"),
    );
    refused(
        &c.seal_with(&c.share(1), &rsa, &[]),
        "attestation-invalid",
        3,
        "not an enclave key",
    );
    // No public_key: nothing to seal to.
    let bare = c.document("bare.cose", |_| {}, None);
    refused(
        &c.seal_with(&c.share(1), &bare, &[]),
        "attestation-invalid",
        3,
        "no public_key",
    );
}

#[test]
fn bad_arguments_and_existing_files_are_refused() {
    let c = Ceremony::new();
    let holders = c.path("holders");
    let r = custody(&[
        "quorum",
        "split",
        "--threshold",
        "2",
        "--shares",
        "3",
        "--out",
        s(&holders),
    ]);
    refused(&r, "already-exists", 1, "never replaces");
    let fresh = c.path("fresh");
    let r = custody(&[
        "quorum",
        "split",
        "--threshold",
        "3",
        "--shares",
        "2",
        "--out",
        s(&fresh),
    ]);
    refused(&r, "bad-input", 2, "--threshold");
    assert!(!fresh.exists(), "nothing written for refused parameters");
    let r = custody(&[
        "quorum",
        "split",
        "--threshold",
        "0",
        "--shares",
        "2",
        "--out",
        s(&fresh),
    ]);
    refused(&r, "bad-input", 2, "");
    // A started enclave is not started again (its key would be replaced).
    let dir = c.enclave();
    let r = custody(&[
        "quorum",
        "enclave",
        "start",
        "--dir",
        s(&dir),
        "--nsm",
        "fake",
    ]);
    refused(&r, "already-exists", 1, "enclave-key");
    // Without --nsm there is no NSM driver in this binary.
    let other = c.path("enclave-2");
    let r = custody(&["quorum", "enclave", "start", "--dir", s(&other)]);
    refused(&r, "unsupported", 1, "NSM");
    let r = custody(&[
        "quorum",
        "enclave",
        "start",
        "--dir",
        s(&other),
        "--nsm",
        "real",
    ]);
    refused(&r, "bad-input", 2, "--nsm");
    // A boot in a directory where no enclave started.
    let set = c.shareset();
    let s1 = c.seal(1);
    let r = custody(&[
        "quorum",
        "boot",
        "--dir",
        s(&other),
        "--shareset",
        s(&set),
        "--sealed",
        s(&s1),
    ]);
    refused(&r, "not-found", 1, "enclave start");
}
