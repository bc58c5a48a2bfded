//! The fuzz targets of `custody-kms` on the stable toolchain: every committed
//! seed (`fuzz/seeds/<name>/`) and regression input
//! (`fuzz/regressions/<name>/`) runs through the very function the
//! cargo-fuzz target calls (`custody_kms::fuzzing::fuzz_<name>`), which
//! panics when a property fails.
#![expect(
    clippy::unwrap_used,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use std::path::Path;

#[path = "support/nitro.rs"]
mod synth;

use custody_core::fuzzing::run_corpus_accepting;
use custody_kms::fuzzing::TARGETS;

const FUZZ_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz");

/// Runs every input of `name` through its body and returns (accepted, all),
/// with `accepts` telling whether the decoder takes an input.
fn run(name: &str, accepts: fn(&[u8]) -> bool) -> (usize, usize) {
    let (_, body) = TARGETS.iter().find(|(n, _)| *n == name).unwrap();
    run_corpus_accepting(Path::new(FUZZ_DIR), name, *body, accepts).unwrap()
}

#[test]
fn pkcs11_uri() {
    let (accepted, all) = run("pkcs11_uri", |b| {
        std::str::from_utf8(b).is_ok_and(|s| custody_kms::Pkcs11Uri::parse(s).is_ok())
    });
    // The seeds include both valid URIs (which reach the round-trip
    // properties) and near misses.
    assert!(accepted >= 3 && accepted < all, "{accepted} of {all}");
}

#[test]
fn ec_spki() {
    // Accepted here means: read, and a secp256k1 point (what the signer pins).
    let (accepted, all) = run("ec_spki", |b| {
        b.len() == 88
            && b[..23] == custody_kms::fuzzing::SECP256K1_SPKI_PREFIX
            && custody_core::PublicKey::from_sec1_bytes(&b[23..]).is_ok()
    });
    assert!(accepted >= 1 && accepted < all, "{accepted} of {all}");
}

#[test]
fn nitro_document() {
    // Accepted here means: parsed (the real documents, and the synthetic
    // ones, also verify; the near misses do not parse).
    let (accepted, all) = run("nitro_document", |b| {
        custody_kms::nitro::AttestationDocument::parse(b).is_ok()
    });
    assert!(accepted >= 4 && accepted < all, "{accepted} of {all}");
}

#[test]
fn nitro_recipient() {
    // Accepted here means: read (the seeds are the Python vectors of
    // vectors/nitro-recipient: every encoding of valid structures, which
    // read, and the refused ones, most of which do not).
    let (accepted, all) = run("nitro_recipient", |b| {
        custody_kms::nitro::CiphertextForRecipient::parse(b).is_ok()
    });
    assert!(accepted >= 15 && accepted < all, "{accepted} of {all}");
}

#[cfg(feature = "nitro-transport")]
#[test]
fn nitro_frame() {
    // Accepted here means: the first frame holds a message.
    let (accepted, all) = run("nitro_frame", |b| {
        custody_kms::nitro::transport::split_frame(b)
            .is_ok_and(|(p, _)| custody_kms::nitro::transport::Message::decode(p).is_ok())
    });
    assert!(accepted >= 5 && accepted < all, "{accepted} of {all}");
}

#[test]
fn every_target_is_wired_up() {
    let manifest = std::fs::read_to_string(Path::new(FUZZ_DIR).join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let src = std::fs::read_to_string(
            Path::new(FUZZ_DIR)
                .join("fuzz_targets")
                .join(format!("{name}.rs")),
        )
        .unwrap();
        assert!(src.contains(&format!("custody_kms::fuzzing::fuzz_{name}(")));
        assert!(manifest.contains(&format!("name = \"{name}\"")));
    }
    let names: Vec<_> = TARGETS.iter().map(|(n, _)| *n).collect();
    let mut expected = vec!["pkcs11_uri", "ec_spki", "nitro_document", "nitro_recipient"];
    if cfg!(feature = "nitro-transport") {
        expected.push("nitro_frame");
    }
    // Every target is in fuzz/Cargo.toml whatever this build's features.
    assert!(manifest.contains("name = \"nitro_frame\""));
    assert_eq!(names, expected, "a #[test] per target");
}

/// Writes `fuzz/seeds/nitro_document/` (the other targets' seeds are
/// written by hand): the two real documents of `vectors/nitro` (untagged
/// and tagged), synthetic documents under the test root of
/// `support/nitro.rs` (valid, tagged, optional fields null or absent,
/// debug-mode PCRs), and near misses (an ES256 header, a 64-byte signature,
/// `digest` "SHA256", a missing and a null field, an unknown field, a
/// PCR index 32, a truncated and an indefinite-length envelope):
/// `cargo test -p custody-kms --test fuzz_corpus -- --ignored write_seeds`.
#[test]
#[ignore = "writes fuzz/seeds/nitro_document; run by hand"]
fn write_seeds() {
    use custody_core::cbor::Value;
    use synth::Doc;

    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors/nitro");
    let mut seeds: Vec<(&str, Vec<u8>)> = Vec::new();
    for (label, path) in [
        ("real_production", "nitro_attest_sample/attestation.cose"),
        ("real_debug", "eternis_sample/doc.cose.bin"),
    ] {
        let doc = std::fs::read(vectors.join(path)).unwrap();
        seeds.push((label, doc.clone()));
        let tagged = [&[0xd2][..], &doc].concat();
        seeds.push((
            if label == "real_debug" {
                "real_debug_tagged"
            } else {
                "real_production_tagged"
            },
            tagged,
        ));
    }
    let valid = Doc::valid();
    seeds.push(("synthetic_valid", valid.encode()));
    seeds.push((
        "synthetic_tagged",
        Doc {
            tagged: true,
            ..valid.clone()
        }
        .encode(),
    ));
    seeds.push((
        "synthetic_optional_null",
        Doc {
            public_key: None,
            user_data: None,
            nonce: None,
            ..valid.clone()
        }
        .encode(),
    ));
    seeds.push((
        "synthetic_optional_absent",
        valid.encode_with(|e| e.truncate(6)),
    ));
    let mut debug = valid.clone();
    for i in 0..3 {
        debug.pcrs.insert(i, vec![0; 48]);
    }
    seeds.push(("synthetic_debug_mode", debug.encode()));
    seeds.push((
        "bad_alg_es256",
        Doc {
            alg: -7,
            ..valid.clone()
        }
        .encode(),
    ));
    seeds.push((
        "bad_digest_sha256",
        Doc {
            digest: "SHA256".to_owned(),
            ..valid.clone()
        }
        .encode(),
    ));
    seeds.push((
        "bad_missing_certificate",
        valid.encode_with(|e| {
            e.remove(4);
        }),
    ));
    seeds.push((
        "bad_null_cabundle",
        valid.encode_with(|e| e[5].1 = Value::Null),
    ));
    seeds.push((
        "bad_unknown_field",
        valid.encode_with(|e| e.push((Value::Text("extra"), Value::Null))),
    ));
    seeds.push((
        "bad_pcr_index_32",
        valid.encode_with(|e| {
            e[3].1 = Value::Map(vec![(Value::Unsigned(32), Value::Bytes(&[1; 48]))])
        }),
    ));
    let good = valid.encode();
    let mut short_signature = good.clone();
    // The signature is the last item: a 96-byte string (0x58 0x60 ...).
    let at = short_signature.len() - 98;
    assert_eq!(short_signature[at..at + 2], [0x58, 0x60]);
    short_signature.truncate(at + 2 + 64);
    short_signature[at + 1] = 0x40;
    seeds.push(("bad_signature_64_bytes", short_signature));
    seeds.push(("bad_truncated", good[..good.len() / 2].to_vec()));
    seeds.push((
        "bad_indefinite",
        [&[0x9f][..], &good[1..], &[0xff]].concat(),
    ));

    let dir = Path::new(FUZZ_DIR).join("seeds").join("nitro_document");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    for (label, bytes) in &seeds {
        std::fs::write(dir.join(label), bytes).unwrap();
    }
    eprintln!("nitro_document: {} seeds", seeds.len());
}
