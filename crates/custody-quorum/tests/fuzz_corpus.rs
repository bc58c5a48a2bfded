//! The fuzz targets of `custody-quorum` on the stable toolchain: every
//! committed seed (`fuzz/seeds/<name>/`) and regression input
//! (`fuzz/regressions/<name>/`) runs through the very function the
//! cargo-fuzz target calls (`custody_quorum::fuzzing::fuzz_<name>`), which
//! panics when a property fails; and the seeds reach past the first checks
//! (some are accepted by each decoder).
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use std::path::Path;

use custody_core::fuzzing::run_corpus_accepting;
use custody_quorum::fuzzing::{FIXTURE_ENCLAVE_KEY, FIXTURE_MANIFEST, TARGETS, fixture};
use custody_quorum::hazmat::{enclave_boot_with_key, seal_share_with_ephemeral};
use custody_quorum::{SealedShare, Share, ShareSet};

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

/// Runs every input of `name` through its body and returns (accepted, all).
fn run(name: &str, accepts: fn(&[u8]) -> bool) -> (usize, usize) {
    let (_, body) = TARGETS.iter().find(|(n, _)| *n == name).unwrap();
    run_corpus_accepting(Path::new(FUZZ_DIR), name, *body, accepts).unwrap()
}

#[test]
fn quorum_json() {
    let (accepted, all) = run("quorum_json", |b| {
        std::str::from_utf8(b).is_ok_and(|t| {
            Share::from_json(t).is_ok()
                || ShareSet::from_json(t).is_ok()
                || SealedShare::from_json(t).is_ok()
        })
    });
    assert!(accepted >= 4 && accepted < all, "{accepted} of {all}");
}

#[test]
fn sealed_share() {
    let (accepted, all) = run("sealed_share", |b| {
        let Ok(text) = std::str::from_utf8(b) else {
            return false;
        };
        let Ok(sealed) = SealedShare::from_json(text) else {
            return false;
        };
        let set = ShareSet::from_json(&fixture().0).unwrap();
        let mut boot = enclave_boot_with_key(set, FIXTURE_MANIFEST, &FIXTURE_ENCLAVE_KEY).unwrap();
        boot.accept(&sealed).is_ok()
    });
    assert!(accepted >= 2 && accepted < all, "{accepted} of {all}");
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
            src.contains(&format!("custody_quorum::fuzzing::fuzz_{name}(")),
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
        ["quorum_json", "sealed_share"],
        "add a #[test] for each new target"
    );
}

/// Writes the seeds (run by hand: `cargo test -p custody-quorum --test
/// fuzz_corpus -- --ignored`), from the fixed fixture, so they can be
/// made again.
#[test]
#[ignore = "writes fuzz/seeds; run by hand"]
fn write_seeds() {
    let (set_json, share_jsons) = fixture();
    let set = ShareSet::from_json(set_json).unwrap();
    let boot = enclave_boot_with_key(set.clone(), FIXTURE_MANIFEST, &FIXTURE_ENCLAVE_KEY).unwrap();
    let sealed: Vec<String> = share_jsons
        .iter()
        .enumerate()
        .map(|(i, json)| {
            let share = Share::from_json(json).unwrap();
            let eph = [0x50 + u8::try_from(i).unwrap(); 32];
            seal_share_with_ephemeral(&share, &set, boot.public_key(), FIXTURE_MANIFEST, &eph)
                .unwrap()
                .to_json()
        })
        .collect();
    let write = |target: &str, name: &str, text: &str| {
        let dir = Path::new(FUZZ_DIR).join("seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    };
    write("quorum_json", "shareset", set_json);
    for (i, s) in share_jsons.iter().enumerate() {
        write("quorum_json", &format!("share_{}", i + 1), s);
    }
    write("quorum_json", "sealed_1", &sealed[0]);
    let share = &share_jsons[0];
    write(
        "quorum_json",
        "share_unknown_member",
        &share.replace("{", "{\"x\":1,"),
    );
    write(
        "quorum_json",
        "share_repeated_member",
        &share.replace("{", "{\"index\":2,"),
    );
    write(
        "quorum_json",
        "share_version_2",
        &share.replace("\"version\":1", "\"version\":2"),
    );
    write(
        "quorum_json",
        "share_index_0",
        &share.replace("\"index\":1", "\"index\":0"),
    );
    write("quorum_json", "share_upper_hex", &share.to_uppercase());
    write(
        "quorum_json",
        "shareset_trailing",
        &format!("{set_json} {{}}"),
    );
    write(
        "quorum_json",
        "shareset_threshold_above",
        &set_json.replace("\"threshold\": 2", "\"threshold\": 4"),
    );
    for (i, s) in sealed.iter().enumerate() {
        write("sealed_share", &format!("sealed_{}", i + 1), s);
    }
    write(
        "sealed_share",
        "sealed_relabelled",
        &sealed[0].replace("\"index\":1", "\"index\":2"),
    );
    write(
        "sealed_share",
        "sealed_unknown_index",
        &sealed[0].replace("\"index\":1", "\"index\":9"),
    );
    let set_id = set.set_id().to_string();
    write(
        "sealed_share",
        "sealed_foreign_set",
        &sealed[1].replace(&set_id, &"0".repeat(32)),
    );
    let ct_at = sealed[2].find("\"ciphertext\":\"").unwrap() + 14;
    let mut tampered = sealed[2].clone();
    let c = if &tampered[ct_at..=ct_at] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(ct_at..=ct_at, c);
    write("sealed_share", "sealed_tampered", &tampered);
}
