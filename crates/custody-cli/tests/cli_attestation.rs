//! End-to-end: `custody attestation verify` on the two real AWS Nitro
//! attestation documents of `vectors/nitro/` (one production, one
//! debug-mode), run as a user runs the built binary (feature `nitro`, on by
//! default).
#![cfg(feature = "nitro")]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

#[path = "support/world.rs"]
mod world;
use world::json_or_null;

const DAY: u64 = 86_400;

struct Run {
    code: i32,
    out: Value,
    err: Value,
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
    }
}

fn vector(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../vectors/nitro")
        .join(path)
}

fn summary(sample: &str) -> Value {
    serde_json::from_slice(&std::fs::read(vector(&format!("{sample}/summary.json"))).unwrap())
        .unwrap()
}

fn pinned(summary: &Value) -> u64 {
    summary["verification_time_unix_s"].as_u64().unwrap()
}

/// The summary's hex field as the CLI prints it (0x…, or null).
fn hex0x(v: &Value) -> Value {
    v.as_str()
        .map_or(Value::Null, |h| Value::String(format!("0x{h}")))
}

fn verify(doc: &Path, at: u64, extra: &[&str]) -> Run {
    let at = at.to_string();
    let mut args = vec![
        "attestation",
        "verify",
        "--doc",
        doc.to_str().unwrap(),
        "--at",
        &at,
    ];
    args.extend_from_slice(extra);
    custody(&args)
}

fn assert_fields(r: &Run, summary: &Value) {
    let fields = &summary["payload_fields"];
    assert_eq!(r.out["moduleId"], fields["module_id"]);
    assert_eq!(r.out["timestamp"], fields["timestamp_ms"]);
    assert_eq!(r.out["digest"], fields["digest"]);
    let pcrs = fields["pcrs"].as_object().unwrap();
    assert_eq!(r.out["pcrs"].as_object().unwrap().len(), pcrs.len());
    for (i, v) in pcrs {
        assert_eq!(r.out["pcrs"][i], hex0x(v), "PCR{i}");
    }
    assert_eq!(r.out["publicKey"], hex0x(&fields["public_key"]));
    assert_eq!(r.out["userData"], hex0x(&fields["user_data"]));
    assert_eq!(r.out["nonce"], hex0x(&fields["nonce"]));
}

fn assert_invalid(r: &Run, words: &str) {
    assert_eq!(r.code, 3, "{:?}", r.err);
    assert_eq!(r.err["error"]["kind"], "attestation-invalid", "{:?}", r.err);
    let message = r.err["error"]["message"].as_str().unwrap();
    assert!(message.contains(words), "{message:?} names {words:?}");
    assert_eq!(r.out, Value::Null, "nothing on stdout");
}

#[test]
fn production_document_verifies_at_its_pinned_time() {
    let s = summary("nitro_attest_sample");
    let doc = vector("nitro_attest_sample/attestation.cose");
    let r = verify(&doc, pinned(&s), &[]);
    assert_eq!(r.code, 0, "{:?}", r.err);
    assert_fields(&r, &s);
}

#[test]
fn production_document_refused_a_day_later() {
    let s = summary("nitro_attest_sample");
    let doc = vector("nitro_attest_sample/attestation.cose");
    let r = verify(&doc, pinned(&s) + DAY, &[]);
    assert_invalid(&r, "expired");
}

#[test]
fn production_document_refused_now() {
    // Without --at the system clock is used: the chain expired long ago.
    let doc = vector("nitro_attest_sample/attestation.cose");
    let r = custody(&["attestation", "verify", "--doc", doc.to_str().unwrap()]);
    assert_invalid(&r, "expired");
}

#[test]
fn debug_document_verifies_from_base64_with_allow_debug_and_its_session_values() {
    let s = summary("eternis_sample");
    let fields = &s["payload_fields"];
    let doc = vector("eternis_sample/doc.cose.b64");
    let r = verify(
        &doc,
        pinned(&s),
        &[
            "--allow-debug",
            "--nonce",
            &format!("0x{}", fields["nonce"].as_str().unwrap()),
            "--user-data",
            fields["user_data"].as_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{:?}", r.err);
    assert_fields(&r, &s);
    // The raw bytes give the same answer.
    let raw = verify(
        &vector("eternis_sample/doc.cose.bin"),
        pinned(&s),
        &["--allow-debug"],
    );
    assert_eq!(raw.code, 0, "{:?}", raw.err);
    assert_eq!(raw.out, r.out);
}

#[test]
fn debug_document_refused_without_allow_debug() {
    let s = summary("eternis_sample");
    let r = verify(&vector("eternis_sample/doc.cose.bin"), pinned(&s), &[]);
    assert_invalid(&r, "debug");
}

#[test]
fn debug_document_refused_a_day_later() {
    let s = summary("eternis_sample");
    let r = verify(
        &vector("eternis_sample/doc.cose.bin"),
        pinned(&s) + DAY,
        &["--allow-debug"],
    );
    assert_invalid(&r, "expired");
}

#[test]
fn expected_pcrs_are_compared() {
    let s = summary("nitro_attest_sample");
    let doc = vector("nitro_attest_sample/attestation.cose");
    let pcrs = &s["payload_fields"]["pcrs"];
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("pcrs.json");
    let expect = |pcr2: String| {
        let json = serde_json::json!({
            "0": pcrs["0"], "1": format!("0x{}", pcrs["1"].as_str().unwrap()), "2": pcr2, "4": pcrs["4"],
        });
        std::fs::write(&file, json.to_string()).unwrap();
    };
    expect(pcrs["2"].as_str().unwrap().to_owned());
    let r = verify(&doc, pinned(&s), &["--expect-pcrs", file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{:?}", r.err);

    // One byte off in PCR2.
    let mut wrong = hex::decode(pcrs["2"].as_str().unwrap()).unwrap();
    wrong[0] ^= 1;
    expect(hex::encode(wrong));
    let r = verify(&doc, pinned(&s), &["--expect-pcrs", file.to_str().unwrap()]);
    assert_invalid(&r, "PCR2");
}

#[test]
fn wrong_nonce_or_user_data_is_refused() {
    let s = summary("eternis_sample");
    let doc = vector("eternis_sample/doc.cose.bin");
    let r = verify(&doc, pinned(&s), &["--allow-debug", "--nonce", "0x01"]);
    assert_invalid(&r, "nonce");
    let r = verify(&doc, pinned(&s), &["--allow-debug", "--user-data", "00"]);
    assert_invalid(&r, "user_data");
}

#[test]
fn edited_document_is_refused() {
    let s = summary("nitro_attest_sample");
    let mut bytes = std::fs::read(vector("nitro_attest_sample/attestation.cose")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tmp = tempfile::tempdir().unwrap();
    let doc = tmp.path().join("edited.cose");
    std::fs::write(&doc, &bytes).unwrap();
    let r = verify(&doc, pinned(&s), &[]);
    assert_invalid(&r, "COSE signature");
}

#[test]
fn bad_arguments_are_bad_input() {
    let s = summary("nitro_attest_sample");
    let doc = vector("nitro_attest_sample/attestation.cose");
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, "not a document!").unwrap();
    let pcrs = tmp.path().join("pcrs.json");
    std::fs::write(&pcrs, r#"{"32": "00"}"#).unwrap();
    let missing = tmp.path().join("missing");
    let huge = tmp.path().join("huge");
    std::fs::write(&huge, vec![b'A'; 64 * 1024 + 4]).unwrap();
    for (path, extra) in [
        (doc.as_path(), vec!["--nonce", "0xzz"]),
        (doc.as_path(), vec!["--expect-pcrs", pcrs.to_str().unwrap()]),
        (junk.as_path(), vec![]),
        (missing.as_path(), vec![]),
        (huge.as_path(), vec![]),
    ] {
        let r = verify(path, pinned(&s), &extra);
        assert_eq!(r.code, 2, "{extra:?}: {:?}", r.err);
        assert_eq!(r.err["error"]["kind"], "bad-input");
    }
}
