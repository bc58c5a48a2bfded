//! The fuzz targets of `custody-core` on the stable toolchain: every
//! committed seed (`fuzz/seeds/<target>/`) and every committed regression
//! input (`fuzz/regressions/<target>/`) runs through the very function the
//! cargo-fuzz target calls (`custody_core::fuzzing`), which panics when a
//! property fails. CI has no nightly, so this is where a fixed fuzz finding
//! stays fixed.
//!
//! `write_seeds` (ignored) regenerates `fuzz/seeds/` from the public vectors:
//! `cargo test -p custody-core --test fuzz_corpus -- --ignored write_seeds`.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use custody_core::fuzzing::{TARGETS, run_corpus};
use custody_core::{
    CreateOptions, DataKey, DerivationPath, KdfParams, KekId, Keystore, LocalKek, MemoryAuditLog,
    Passphrase, RootKek, Seed, StateStore, WalletScheme,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors");
const CRATE_VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

/// Runs every input of `target` through its body; fails naming every input
/// that panicked, and if there were no inputs at all.
fn run(target: &str) {
    let (_, body) = TARGETS.iter().find(|(name, _)| *name == target).unwrap();
    let passed = run_corpus(Path::new(FUZZ_DIR), target, *body).unwrap();
    eprintln!("{target}: {passed} inputs passed");
}

#[test]
fn envelope() {
    run("envelope");
}

#[test]
fn bip32_path() {
    run("bip32_path");
}

#[test]
fn xkey() {
    run("xkey");
}

#[test]
fn der_signature() {
    run("der_signature");
}

#[test]
fn state_record() {
    run("state_record");
}

#[test]
fn audit_log() {
    run("audit_log");
}

#[test]
fn keystore_meta() {
    run("keystore_meta");
}

#[test]
fn keyring() {
    run("keyring");
}

#[test]
fn mnemonic() {
    run("mnemonic");
}

#[test]
fn ecdsa_sign() {
    run("ecdsa_sign");
}

/// Every target here has a cargo-fuzz target file that calls it and a
/// `[[bin]]` in `fuzz/Cargo.toml`, and a test above (the list must match).
#[test]
fn cbor() {
    run("cbor");
}

#[test]
fn every_target_is_wired_up() {
    let manifest = std::fs::read_to_string(Path::new(FUZZ_DIR).join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let file = Path::new(FUZZ_DIR)
            .join("fuzz_targets")
            .join(format!("{name}.rs"));
        let src = std::fs::read_to_string(&file).unwrap();
        assert!(
            src.contains(&format!("custody_core::fuzzing::fuzz_{name}(")),
            "{} does not call fuzz_{name}",
            file.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
    let tested = [
        "envelope",
        "bip32_path",
        "xkey",
        "der_signature",
        "state_record",
        "audit_log",
        "keystore_meta",
        "keyring",
        "mnemonic",
        "ecdsa_sign",
        "cbor",
    ];
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, tested, "add a #[test] for each new target");
}

// ---------------------------------------------------------------------------
// Seed generation (ignored: run by hand when the vectors change)
// ---------------------------------------------------------------------------

fn json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap();
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).unwrap()
}

/// Seeds of one target: file name → bytes (names are `<label>-<hash>`).
#[derive(Default)]
struct Seeds(BTreeMap<String, Vec<u8>>);

impl Seeds {
    fn add(&mut self, label: &str, bytes: impl Into<Vec<u8>>) {
        let bytes = bytes.into();
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let hash = hex::encode(&Sha256::digest(&bytes)[..4]);
        self.0.insert(format!("{label}-{hash}"), bytes);
    }

    /// Replaces `fuzz/seeds/<target>/` with these seeds.
    fn write(&self, target: &str) {
        let dir = Path::new(FUZZ_DIR).join("seeds").join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &self.0 {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        eprintln!("{target}: {} seeds", self.0.len());
    }
}

fn envelope_seeds() -> Seeds {
    let mut s = Seeds::default();
    let v = json(&format!("{CRATE_VECTORS}/envelope_v1.json"));
    for (i, case) in v["cases"].as_array().unwrap().iter().enumerate() {
        s.add(&format!("vector{i}"), unhex(&case["envelope"]));
    }
    s
}

fn bip32_path_seeds() -> Seeds {
    let mut s = Seeds::default();
    let v = json(&format!("{VECTORS}/bip32/bip32.json"));
    for vector in v["vectors"].as_array().unwrap() {
        for link in vector["chain"].as_array().into_iter().flatten() {
            let path = link["path"].as_str().unwrap();
            s.add("bip32", path.as_bytes());
        }
    }
    // The other spellings the parser accepts, and the edges of its ranges.
    for path in [
        "m/44'/60'/0'/0/7",
        "m/44h/60h/0h/0/0",
        "m/007/0H",
        "m/2147483647'/2147483647",
    ] {
        s.add("syntax", path.as_bytes());
    }
    let deepest = DerivationPath::from_components(vec![custody_core::ChildNumber(1); 255]).unwrap();
    s.add("depth255", deepest.to_string().into_bytes());
    s
}

fn xkey_seeds() -> Seeds {
    let mut s = Seeds::default();
    let v = json(&format!("{VECTORS}/bip32/bip32.json"));
    for vector in v["vectors"].as_array().unwrap() {
        let n = &vector["vector"];
        for (i, link) in vector["chain"].as_array().into_iter().flatten().enumerate() {
            for kind in ["xpub", "xprv"] {
                let text = link[kind].as_str().unwrap();
                s.add(&format!("v{n}-{i}-{kind}"), text.as_bytes());
                if i == 0 {
                    // The 78-byte payload (checksum stripped): the harness
                    // re-adds the checksum, so mutations reach the field checks.
                    let raw = bs58::decode(text).into_vec().unwrap();
                    s.add(&format!("v{n}-{i}-{kind}-payload"), &raw[..78]);
                }
            }
        }
        for (i, bad) in vector["invalid"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            s.add(
                &format!("v{n}-invalid{i}"),
                bad["key"].as_str().unwrap().as_bytes(),
            );
        }
    }
    s
}

fn der_signature_seeds() -> Seeds {
    let mut s = Seeds::default();
    let v = json(&format!(
        "{VECTORS}/wycheproof/ecdsa_secp256k1_sha256_test.json"
    ));
    // The group the harness pins (its key signs "123400" in every test):
    // the DER-structure cases come first, then the arithmetic edge cases,
    // of which every eighth is kept.
    let group = &v["testGroups"][1];
    assert_eq!(
        group["publicKey"]["uncompressed"].as_str().unwrap(),
        "04b838ff44e5bc177bf21189d0766082fc9d843226887fc9760371100b7ee20a6ff0c9d75bfba7b31a6bca1974496eeb56de357071955d83c4b1badaa0b21832e9"
    );
    for (i, test) in group["tests"].as_array().unwrap().iter().enumerate() {
        if test["msg"] != "313233343030" || (i >= 40 && i % 8 != 0) {
            continue;
        }
        let id = &test["tcId"];
        let result = test["result"].as_str().unwrap();
        s.add(&format!("tc{id}-{result}"), unhex(&test["sig"]));
    }
    s
}

fn state_record_seeds() -> Seeds {
    let mut s = Seeds::default();
    let frozen = std::fs::read(format!("{CRATE_VECTORS}/state_record_v1.bin")).unwrap();
    // Without its checksum too: the harness appends one, so mutations of
    // the body get past it.
    s.add("body_v1", &frozen[..frozen.len() - 32]);
    s.add("vector_v1", frozen);
    let dir = tempfile::tempdir().unwrap();
    let store = custody_core::FileStore::open(dir.path()).unwrap();
    let big = vec![0xa5; 300];
    for (key, value) in [
        ("a", &b""[..]),
        ("wallet:Zoë/totp", &b"{\"last_step\":1}"[..]),
        ("鍵", &big[..]),
    ] {
        let _ = store.compare_and_swap(key, None, value).wait().unwrap();
        let _ = store.compare_and_swap(key, Some(1), value).wait().unwrap();
    }
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none() {
            s.add("filestore", std::fs::read(&path).unwrap());
        }
    }
    s
}

fn audit_log_seeds() -> Seeds {
    let mut s = Seeds::default();
    let log = std::fs::read(format!("{CRATE_VECTORS}/audit_v1.jsonl")).unwrap();
    for (i, line) in log.split(|&b| b == b'\n').enumerate() {
        if !line.is_empty() {
            s.add(&format!("line{i}"), [line, b"\n"].concat());
        }
    }
    s.add("vector_v1", log);
    let memory = MemoryAuditLog::with_clock(|| 1_767_225_600_000);
    use custody_core::{AuditEvent, AuditOp, AuditOutcome};
    memory
        .append(
            AuditEvent::new(AuditOp::new("jwt-sign").unwrap(), AuditOutcome::Failed)
                .with_detail("backend timed out")
                .with_field("kid", "arn:aws:kms:eu-west-1:1:key/x")
                .unwrap(),
        )
        .unwrap();
    s.add("memory", memory.to_jsonl().unwrap().into_bytes());
    s
}

fn keystore_meta_seeds() -> Seeds {
    let mut s = Seeds::default();
    // `CreateOptions::light()`'s cost with a fixed salt, so that the seeds
    // are the same each time they are written.
    for (label, scheme) in [
        ("default", WalletScheme::Default),
        ("fortanix", WalletScheme::Fortanix),
    ] {
        let light = CreateOptions::light().unwrap();
        let kdf = KdfParams::new(light.kdf.log_n(), light.kdf.r(), light.kdf.p(), [0x61; 32]);
        let options = CreateOptions {
            kdf: kdf.unwrap(),
            scheme,
        };
        let dir = tempfile::tempdir().unwrap();
        Keystore::create(
            dir.path(),
            &Passphrase::from_str_copy("correct horse battery staple"),
            &Seed::new([0x42; 64]),
            &options,
        )
        .unwrap();
        s.add(
            label,
            std::fs::read(dir.path().join("keystore.json")).unwrap(),
        );
        if scheme == WalletScheme::Default {
            s.add("kdf", serde_json::to_vec(&options.kdf).unwrap());
        }
    }
    // A root KEK in a backend (a software KEK standing in for KMS).
    let dir = tempfile::tempdir().unwrap();
    Keystore::create_with(
        dir.path(),
        RootKek::Backend {
            uri: "aws-kms:alias/custody-root",
            backend: Arc::new(LocalKek::from_key(
                KekId::new("alias/custody-root").unwrap(),
                DataKey::new([3; 32]),
            )),
        },
        &Seed::new([0x42; 64]),
        &CreateOptions::light().unwrap(),
    )
    .unwrap();
    s.add(
        "backend",
        std::fs::read(dir.path().join("keystore.json")).unwrap(),
    );
    // Format v1, as the frozen v1 directory has it.
    s.add(
        "v1",
        std::fs::read(format!(
            "{}/tests/vectors/keystore_v1/keystore.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    );
    s
}

/// A keyring as `SPEC.md` ("Keyring v1") lays it out: one entry per
/// (id, key), the current one first.
fn keyring_bytes(entries: &[(&str, u8)]) -> Vec<u8> {
    let mut out = b"CKR1".to_vec();
    out.push(u8::try_from(entries.len()).unwrap());
    for (id, byte) in entries {
        out.push(u8::try_from(id.len()).unwrap());
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&[*byte; 32]);
    }
    out
}

fn keyring_seeds() -> Seeds {
    let mut s = Seeds::default();
    let one = keyring_bytes(&[("keystore:0011223344556677", 7)]);
    s.add("one", one.clone());
    s.add(
        "retired",
        keyring_bytes(&[
            ("keystore:8899aabbccddeeff", 1),
            ("passphrase:e5fbc6b9cdcd376e", 2),
        ]),
    );
    s.add("truncated", one[..one.len() - 3].to_vec());
    s
}

fn mnemonic_seeds() -> Seeds {
    let mut s = Seeds::default();
    let v = json(&format!("{VECTORS}/bip39/vectors.json"));
    for (language, cases) in v.as_object().unwrap() {
        // 12, 18 and 24 words (the vectors run 4×12, 4×18, 4×24, then cycle).
        let picks: &[usize] = if language == "english" {
            &[0, 3, 4, 7, 8, 11, 13, 14]
        } else {
            &[7, 8]
        };
        for &i in picks {
            let phrase = cases[i][1].as_str().unwrap();
            s.add(&format!("{language}{i}"), phrase.as_bytes());
        }
    }
    s
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand when the vectors change"]
fn write_seeds() {
    envelope_seeds().write("envelope");
    bip32_path_seeds().write("bip32_path");
    xkey_seeds().write("xkey");
    der_signature_seeds().write("der_signature");
    state_record_seeds().write("state_record");
    audit_log_seeds().write("audit_log");
    keystore_meta_seeds().write("keystore_meta");
    keyring_seeds().write("keyring");
    mnemonic_seeds().write("mnemonic");
    ecdsa_sign_seeds().write("ecdsa_sign");
    cbor_seeds().write("cbor");
}

/// The `cbor` seeds alone (the other targets' seeds unchanged):
/// `cargo test -p custody-core --test fuzz_corpus -- --ignored write_cbor_seeds`.
#[test]
#[ignore = "writes fuzz/seeds/cbor; run by hand"]
fn write_cbor_seeds() {
    cbor_seeds().write("cbor");
}

/// The two real Nitro attestation documents (`vectors/nitro`), tagged and
/// untagged, and their parts (protected header, payload, `Sig_structure`);
/// RFC 8949 Appendix A examples in preferred form; and near misses, one per
/// rule the decoder enforces (indefinite lengths, breaks, floats,
/// `undefined`, other simple values, non-shortest heads, duplicate keys,
/// trailing bytes, truncation, invalid UTF-8, tags, reserved additional
/// information, lengths beyond the input, nesting beyond the limit).
fn cbor_seeds() -> Seeds {
    use custody_core::cbor::{self, Limits};
    let mut s = Seeds::default();
    for (label, path) in [
        (
            "nitro_production",
            "nitro/nitro_attest_sample/attestation.cose",
        ),
        ("nitro_debug", "nitro/eternis_sample/doc.cose.bin"),
    ] {
        let doc = std::fs::read(format!("{VECTORS}/{path}")).unwrap();
        let value = cbor::decode(&doc, &Limits::DEFAULT).unwrap();
        let parts = value.as_array().unwrap();
        let protected = parts[0].as_bytes().unwrap();
        let payload = parts[2].as_bytes().unwrap();
        s.add(&format!("{label}_cose_sign1"), doc.clone());
        s.add(&format!("{label}_tagged"), [&[0xd2][..], &doc].concat());
        s.add(&format!("{label}_protected"), protected);
        s.add(&format!("{label}_payload"), payload);
        let sig_structure = cbor::Value::Array(vec![
            cbor::Value::Text("Signature1"),
            cbor::Value::Bytes(protected),
            cbor::Value::Bytes(&[]),
            cbor::Value::Bytes(payload),
        ]);
        s.add(&format!("{label}_sig_structure"), sig_structure.to_vec());
    }
    let examples: &[(&str, &[u8])] = &[
        ("uint_0", &[0x00]),
        ("uint_24", &[0x18, 0x18]),
        ("uint_1000", &[0x19, 0x03, 0xe8]),
        ("uint_1000000", &[0x1a, 0x00, 0x0f, 0x42, 0x40]),
        (
            "uint_max",
            &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        ("nint_minus_35", &[0x38, 0x22]),
        (
            "nint_min",
            &[0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        ("bytes", &[0x44, 0x01, 0x02, 0x03, 0x04]),
        ("text_unicode", &[0x64, 0xf0, 0x90, 0x85, 0x91]),
        (
            "array_nested",
            &[0x83, 0x01, 0x82, 0x02, 0x03, 0x82, 0x04, 0x05],
        ),
        (
            "map",
            &[0xa2, 0x61, 0x61, 0x01, 0x61, 0x62, 0x82, 0x02, 0x03],
        ),
        ("simple_values", &[0x83, 0xf4, 0xf5, 0xf6]),
        ("cose_header_es384", &[0xa1, 0x01, 0x38, 0x22]),
        ("tag_18_empty_array", &[0xd2, 0x80]),
        ("deep_4", &[0x81, 0x81, 0x81, 0x81, 0x00]),
        ("bad_indefinite_bytes", &[0x5f, 0x41, 0x00, 0xff]),
        ("bad_indefinite_array", &[0x9f, 0x01, 0xff]),
        ("bad_indefinite_map", &[0xbf, 0x01, 0x02, 0xff]),
        ("bad_break", &[0xff]),
        ("bad_half_float", &[0xf9, 0x3c, 0x00]),
        (
            "bad_double",
            &[0xfb, 0x3f, 0xf1, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a],
        ),
        ("bad_undefined", &[0xf7]),
        ("bad_simple_255", &[0xf8, 0xff]),
        ("bad_simple_short", &[0xf8, 0x14]),
        ("bad_non_minimal_uint", &[0x18, 0x17]),
        ("bad_non_minimal_len", &[0x58, 0x01, 0xaa]),
        ("bad_non_minimal_tag", &[0xd8, 0x12, 0x80]),
        ("bad_duplicate_key", &[0xa2, 0x01, 0x02, 0x01, 0x03]),
        ("bad_trailing", &[0x01, 0x00]),
        ("bad_truncated", &[0x19, 0x01]),
        ("bad_utf8", &[0x62, 0xc3, 0x28]),
        ("bad_tag_inside", &[0x81, 0xd2, 0x80]),
        ("bad_tag_other", &[0xc1, 0x1a, 0x51, 0x4b, 0x67, 0xb0]),
        ("bad_reserved", &[0x1c]),
        (
            "bad_huge_length",
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "bad_huge_map",
            &[0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        ("bad_deep", &[0x81; 80]),
    ];
    for (label, bytes) in examples {
        s.add(label, *bytes);
    }
    s
}

/// The secp256k1 group order n, big-endian (SEC 2 v2, §2.4.1).
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// `key ‖ digest` pairs: the published signatures of the eth vectors
/// (EIP-191 messages, ox's EIP-7702 transactions and authorizations), and
/// edge keys against edge digests (0, 1, n−1, n, n+1, 2^255, 2^256−1; keys
/// 0 and ≥ n are refused).
fn ecdsa_sign_seeds() -> Seeds {
    let mut s = Seeds::default();
    let pair = |key: &[u8], digest: &[u8]| [key, digest].concat();
    let v = json(&format!(
        "{VECTORS}/eip191/eip191_personal_sign_vectors.json"
    ));
    for (i, case) in v["vectors"].as_array().unwrap().iter().enumerate() {
        s.add(
            &format!("eip191_{i}"),
            pair(&unhex(&case["privateKey"]), &unhex(&case["messageHash"])),
        );
    }
    let v = json(&format!("{VECTORS}/eth-tx/eip7702_ox_vectors.json"));
    for kind in ["transactions", "authorizations"] {
        for (i, case) in v[kind].as_array().unwrap().iter().enumerate() {
            if case["privateKey"].is_null() {
                continue;
            }
            s.add(
                &format!("ox_{kind}_{i}"),
                pair(&unhex(&case["privateKey"]), &unhex(&case["signing_hash"])),
            );
        }
    }
    let with_last = |mut b: [u8; 32], last: u8| {
        b[31] = last;
        b
    };
    let mut top = [0u8; 32];
    top[0] = 0x80;
    let scalars = [
        ("0", [0u8; 32]),
        ("1", with_last([0; 32], 1)),
        ("n-1", with_last(N, 0x40)),
        ("n", N),
        ("n+1", with_last(N, 0x42)),
        ("2^255", top),
        ("2^256-1", [0xff; 32]),
    ];
    for (key_name, key) in &scalars {
        for (digest_name, digest) in &scalars {
            s.add(
                &format!("key_{key_name}_digest_{digest_name}"),
                pair(key, digest),
            );
        }
    }
    s
}
