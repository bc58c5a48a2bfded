//! The fuzz target of `custody-eth` on the stable toolchain: every committed
//! seed (`fuzz/seeds/raw_tx/`) and regression input
//! (`fuzz/regressions/raw_tx/`) runs through the very function the
//! cargo-fuzz target calls (`custody_eth::fuzzing::fuzz_raw_tx`), which
//! panics when a property fails.
//!
//! `write_seeds` (ignored) regenerates `fuzz/seeds/raw_tx/` from the public
//! vectors: `cargo test -p custody-eth --test fuzz_corpus -- --ignored write_seeds`.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

use std::collections::BTreeMap;
use std::path::Path;

use custody_core::fuzzing::run_corpus;
use custody_eth::fuzzing::TARGETS;
use serde_json::Value;

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");
const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../vectors");

/// Runs every input of `target` through its body; fails naming every input
/// that panicked, and if there were no inputs at all.
fn run(target: &str) {
    let (_, body) = TARGETS.iter().find(|(name, _)| *name == target).unwrap();
    let passed = run_corpus(Path::new(FUZZ_DIR), target, *body).unwrap();
    eprintln!("{target}: {passed} inputs passed");
}

#[test]
fn raw_tx() {
    run("raw_tx");
}

#[test]
fn tx_json() {
    run("tx_json");
}

#[test]
fn typed_data() {
    run("typed_data");
}

#[test]
fn keystore_v3() {
    run("keystore_v3");
}

/// Every target here has a cargo-fuzz target file that calls it, a `[[bin]]`
/// in `fuzz/Cargo.toml`, and a test above.
#[test]
fn every_target_is_wired_up() {
    let manifest = std::fs::read_to_string(Path::new(FUZZ_DIR).join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let file = Path::new(FUZZ_DIR)
            .join("fuzz_targets")
            .join(format!("{name}.rs"));
        let src = std::fs::read_to_string(&file).unwrap();
        assert!(
            src.contains(&format!("custody_eth::fuzzing::fuzz_{name}(")),
            "{} does not call fuzz_{name}",
            file.display()
        );
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
    }
    let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["raw_tx", "tx_json", "typed_data", "keystore_v3"],
        "add a #[test] for each new target"
    );
}

// ---------------------------------------------------------------------------
// Seed generation (ignored: run by hand when the vectors change)
// ---------------------------------------------------------------------------

fn json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(format!("{VECTORS}/{path}")).unwrap()).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap();
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).unwrap()
}

#[test]
#[ignore = "writes fuzz/seeds; run by hand when the vectors change"]
fn write_seeds() {
    let mut seeds: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut add = |label: &str, bytes: Vec<u8>| {
        let hash = hex::encode(&custody_eth::keccak256(&bytes)[..4]);
        seeds.insert(format!("{label}-{hash}"), bytes);
    };
    // ethers.js: the first 10 entries, each signed as legacy, EIP-155 and
    // types 1, 2 and 3.
    let ethers = json("eth-tx/ethers_transactions_subset_with_hashes.json");
    for (i, vector) in ethers["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .take(10)
        .enumerate()
    {
        for (kind, signed) in vector["signed"].as_object().unwrap() {
            add(&format!("ethers{i}-{kind}"), unhex(&signed["raw"]));
        }
    }
    add(
        "eip155-example",
        unhex(&json("eth-tx/eip155_example.json")["signed_tx"]),
    );
    add(
        "eip7702-alloy",
        unhex(&json("eth-tx/eip7702_alloy_rpc_tx.json")["derived"]["raw_signed_tx"]),
    );
    let ox = json("eth-tx/eip7702_ox_vectors.json");
    // Signed, unsigned (a near miss: the fields without the signature) and
    // with encoding-only signatures (r = s = 0x60fd…, or zero).
    for (i, tx) in ox["transactions"].as_array().unwrap().iter().enumerate() {
        for kind in ["signed_serialized", "unsigned_serialized"] {
            if let Some(raw) = tx.get(kind) {
                add(&format!("eip7702-ox{i}-{kind}"), unhex(raw));
            }
        }
        for (j, raw) in tx
            .get("serialized_with_sig")
            .into_iter()
            .flat_map(|m| m.as_object().unwrap().values().enumerate())
        {
            add(&format!("eip7702-ox{i}-sig{j}"), unhex(raw));
        }
    }
    let tests = json("eth-tx/ethereum_tests_TransactionTests_selected.json");
    for (name, test) in tests["tests"].as_object().unwrap() {
        add(&format!("ethereum-tests-{name}"), unhex(&test["txbytes"]));
    }

    let dir = Path::new(FUZZ_DIR).join("seeds").join("raw_tx");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    eprintln!("raw_tx: {} seeds", seeds.len());
}

/// Writes `fuzz/seeds/<target>/` for the JSON targets from the vectors.
#[test]
#[ignore = "writes fuzz/seeds; run by hand when the vectors change"]
fn write_json_seeds() {
    fn write(target: &str, seeds: &BTreeMap<String, Vec<u8>>) {
        let dir = Path::new(FUZZ_DIR).join("seeds").join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        eprintln!("{target}: {} seeds", seeds.len());
    }
    let label = |bytes: &[u8]| hex::encode(&custody_eth::keccak256(bytes)[..4]);

    // tx_json: JSON-RPC objects of every type, unsigned and signed.
    let mut tx = BTreeMap::new();
    let ethers = json("eth-tx/ethers_transactions_subset_with_hashes.json");
    for vector in ethers["vectors"].as_array().unwrap().iter().take(10) {
        for signed in vector["signed"].as_object().unwrap().values() {
            let decoded = custody_eth::decode_signed(&unhex(&signed["raw"])).unwrap();
            let unsigned = decoded.transaction().to_json().to_string().into_bytes();
            tx.insert(format!("unsigned-{}", label(&unsigned)), unsigned);
            let full = decoded.to_json().unwrap().to_string().into_bytes();
            tx.insert(format!("signed-{}", label(&full)), full);
        }
    }
    let rpc = json("eth-tx/eip7702_alloy_rpc_tx.json")["rpc_transaction"]
        .to_string()
        .into_bytes();
    tx.insert(format!("alloy-7702-{}", label(&rpc)), rpc);
    write("tx_json", &tx);

    // typed_data: every ethers case and the EIP's Mail example.
    let mut typed = BTreeMap::new();
    let cases = json("eip712/ethers_typed-data.json");
    for case in cases.as_array().unwrap().iter().take(40) {
        let doc = serde_json::json!({
            "types": case["types"], "primaryType": case["primaryType"],
            "domain": case["domain"], "message": case["data"],
        })
        .to_string()
        .into_bytes();
        typed.insert(format!("ethers-{}", label(&doc)), doc);
    }
    let mail = json("eip712/eip712_mail.json")["typedData"]
        .to_string()
        .into_bytes();
    typed.insert(format!("mail-{}", label(&mail)), mail);
    write("typed_data", &typed);

    // keystore_v3: every committed interop vector.
    let mut v3 = BTreeMap::new();
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/keystore_v3");
    for sub in ["eth_account", "edge", "invalid", "ours"] {
        for entry in std::fs::read_dir(format!("{base}/{sub}")).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() == "index.json" {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            v3.insert(format!("{sub}-{}", label(&bytes)), bytes);
        }
    }
    write("keystore_v3", &v3);
}
