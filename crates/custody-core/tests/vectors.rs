//! Frozen test vectors of the on-disk formats in `SPEC.md`.
//!
//! Each vector is checked three ways: the code reads it, the code writes it
//! again byte for byte (so the format cannot drift), and an independent
//! reading of the spec written here, not shared with the library, agrees
//! with it (so the spec and the code cannot drift apart).

#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use std::sync::atomic::{AtomicU64, Ordering};

use custody_core::{
    AuditEvent, AuditHead, AuditLog, AuditOp, AuditOutcome, AuditRecord, CasOutcome,
    DerivationPath, Digest32, FileStore, PublicKey, StateStore, Versioned,
};
use sha2::{Digest, Sha256};

const AUDIT_V1: &str = include_str!("vectors/audit_v1.jsonl");
const STATE_RECORD_V1: &[u8] = include_bytes!("vectors/state_record_v1.bin");

/// 2026-01-01T00:00:00Z in milliseconds.
const T0: u64 = 1_767_225_600_000;
/// Only `audit_vector_is_regenerated_byte_for_byte` uses this clock.
static NEXT_TIME: AtomicU64 = AtomicU64::new(T0);

fn vector_clock() -> u64 {
    NEXT_TIME.fetch_add(1_500, Ordering::SeqCst)
}

/// The three events of `audit_v1.jsonl`.
fn audit_events() -> Vec<AuditEvent> {
    // The secp256k1 generator: the public key of the secret scalar 1.
    let g = PublicKey::from_sec1_bytes(
        &hex::decode("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798").unwrap(),
    )
    .unwrap();
    let path: DerivationPath = "m/44'/60'/0'/0/0".parse().unwrap();
    vec![
        AuditEvent::new(AuditOp::ENROL, AuditOutcome::Success)
            .with_wallet("alice@example.com")
            .with_backend("software")
            .with_field("factor", "totp")
            .unwrap(),
        AuditEvent::new(AuditOp::TOTP_VERIFY, AuditOutcome::Denied)
            .with_wallet("alice@example.com")
            .with_detail("code already used"),
        AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success)
            // Non-ASCII, a quote and a tab: pins the JSON escaping.
            .with_wallet("Zoë \"z\"\t鍵")
            .with_index(0)
            .with_path(&path)
            .with_public_key(&g)
            .with_digest(&Digest32([0x11; 32]))
            .with_backend("software")
            .with_field("address", "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")
            .unwrap(),
    ]
}

/// The record hash as `SPEC.md` defines it, written out independently.
fn spec_hash(record: &serde_json::Value) -> [u8; 32] {
    fn put(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let mut m = b"custody/audit/v1\0".to_vec();
    m.extend_from_slice(&record["seq"].as_u64().unwrap().to_be_bytes());
    m.extend_from_slice(&record["time"].as_u64().unwrap().to_be_bytes());
    m.extend_from_slice(&hex::decode(record["prev"].as_str().unwrap()).unwrap());
    let event = record["event"].as_object().unwrap();
    put(&mut m, event["op"].as_str().unwrap());
    put(&mut m, event["outcome"].as_str().unwrap());
    let mut fields: Vec<(&String, &str)> = event
        .iter()
        .filter(|(k, _)| *k != "op" && *k != "outcome")
        .map(|(k, v)| (k, v.as_str().unwrap()))
        .collect();
    fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    m.extend_from_slice(&(fields.len() as u64).to_be_bytes());
    for (k, v) in fields {
        put(&mut m, k);
        put(&mut m, v);
    }
    Sha256::digest(&m).into()
}

#[test]
fn audit_vector_verifies() {
    let head = AuditLog::verify(AUDIT_V1.as_bytes()).unwrap();
    assert_eq!(head.seq, 3);
    assert_eq!(
        hex::encode(head.hash),
        "53ca8b05f444b4282606ddd34b6cde965ffcd7dfc45eb505acd083be8c8feef6"
    );
    assert_eq!(
        AuditLog::verify_against(AUDIT_V1.as_bytes(), &head).unwrap(),
        head
    );
    let events = audit_events();
    let mut prev = [0u8; 32];
    for (i, line) in AUDIT_V1.lines().enumerate() {
        let record = AuditRecord::from_line(line).unwrap();
        assert_eq!(record.seq(), i as u64 + 1);
        assert_eq!(record.time_ms(), T0 + 1_500 * i as u64);
        assert_eq!(record.event(), &events[i]);
        // The spec, read independently, gives the same chain.
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["prev"].as_str().unwrap(), hex::encode(prev));
        let hash = spec_hash(&value);
        assert_eq!(value["hash"].as_str().unwrap(), hex::encode(hash));
        prev = hash;
    }
    assert_eq!(head.hash, prev);
}

#[test]
fn audit_vector_is_regenerated_byte_for_byte() {
    NEXT_TIME.store(T0, Ordering::SeqCst);
    let tmp = tempfile::tempdir().unwrap();
    let log = AuditLog::open_with_clock(tmp.path().join("audit.jsonl"), vector_clock).unwrap();
    let mut head = AuditHead::GENESIS;
    for e in audit_events() {
        head = log.append(e).unwrap();
    }
    let written = std::fs::read_to_string(log.path()).unwrap();
    assert_eq!(written, AUDIT_V1, "the audit record format drifted");
    assert_eq!(head, AuditLog::verify(AUDIT_V1.as_bytes()).unwrap());
}

const STATE_KEY: &str = "totp:zoë@example.com";
const STATE_VALUE: &[u8] = b"{\"last_step\":58908480,\"failures\":0}";

#[test]
fn state_vector_is_regenerated_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let mut expected = None;
    for value in [&b"first"[..], b"second", STATE_VALUE] {
        match store
            .compare_and_swap(STATE_KEY, expected, value)
            .wait()
            .unwrap()
        {
            CasOutcome::Swapped { version } => expected = Some(version),
            CasOutcome::Conflict { current } => panic!("conflict: {current:?}"),
        }
    }
    assert_eq!(expected, Some(3));
    let name = hex::encode(Sha256::digest(STATE_KEY.as_bytes()));
    let written = std::fs::read(tmp.path().join(name)).unwrap();
    assert_eq!(written, STATE_RECORD_V1, "the state record format drifted");
}

#[test]
fn state_vector_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let name = hex::encode(Sha256::digest(STATE_KEY.as_bytes()));
    std::fs::write(tmp.path().join(&name), STATE_RECORD_V1).unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    assert_eq!(
        store.get(STATE_KEY).wait().unwrap(),
        Some(Versioned {
            version: 3,
            value: STATE_VALUE.into()
        })
    );
    // Filed under another key's name, it is refused.
    let other = hex::encode(Sha256::digest(b"totp:mallory@example.com"));
    std::fs::write(tmp.path().join(other), STATE_RECORD_V1).unwrap();
    assert!(matches!(
        store.get("totp:mallory@example.com").wait(),
        Err(custody_core::Error::MalformedRecord(_))
    ));
}

#[test]
fn state_vector_matches_the_spec() {
    let b = STATE_RECORD_V1;
    let (body, checksum) = b.split_at(b.len() - 32);
    assert_eq!(Sha256::digest(body).as_slice(), checksum);
    assert_eq!(&body[..4], b"CSSR");
    assert_eq!(body[4], 1);
    assert_eq!(u64::from_be_bytes(body[5..13].try_into().unwrap()), 3);
    let key_len = usize::from(u16::from_be_bytes(body[13..15].try_into().unwrap()));
    assert_eq!(&body[15..15 + key_len], STATE_KEY.as_bytes());
    let v = 15 + key_len;
    let value_len = u32::from_be_bytes(body[v..v + 4].try_into().unwrap()) as usize;
    assert_eq!(&body[v + 4..], STATE_VALUE);
    assert_eq!(value_len, STATE_VALUE.len());
}
