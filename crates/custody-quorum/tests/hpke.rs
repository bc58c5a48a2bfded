//! HPKE (RFC 9180) as this crate implements it: the official CFRG vectors of
//! its one suite (base mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256,
//! AES-256-GCM; `vectors/hpke/`), and a differential test against an
//! independent implementation, `pyhpke` (PyPI), when `CUSTODY_TEST_PYTHON`
//! has it: each side opens what the other sealed, both refuse the same
//! altered messages, and a share sealed by pyhpke by `SPEC.md` alone boots
//! an enclave.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test fixtures panic on failure, like the tests that call them"
)]

use std::io::Write;
use std::process::{Command, Stdio};

use custody_quorum::hazmat::{
    enclave_boot_with_key, hpke_setup_receiver, hpke_setup_sender, split_seeded,
};
use custody_quorum::{QuorumSecret, SealedShare};
use serde_json::{Value, json};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/hpke/rfc9180_base_p256_sha256_aes256gcm.json"
);

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn rfc9180_vectors_seal_and_open() {
    let all: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    assert_eq!(all.len(), 1);
    let v = &all[0];
    assert_eq!(
        (&v["mode"], &v["kem_id"], &v["kdf_id"], &v["aead_id"]),
        (&json!(0), &json!(16), &json!(1), &json!(2))
    );
    let info = h(&v["info"]);
    let (enc, mut sender) = hpke_setup_sender(&h(&v["skEm"]), &h(&v["pkRm"]), &info).unwrap();
    assert_eq!(enc, h(&v["enc"]));
    assert_eq!(enc, h(&v["pkEm"]));
    let mut receiver = hpke_setup_receiver(&h(&v["skRm"]), &enc, &info).unwrap();
    let encryptions = v["encryptions"].as_array().unwrap();
    assert_eq!(encryptions.len(), 257);
    for (seq, e) in encryptions.iter().enumerate() {
        let (aad, pt, ct) = (h(&e["aad"]), h(&e["pt"]), h(&e["ct"]));
        assert_eq!(sender.seal(&aad, &pt).unwrap(), ct, "seal, sequence {seq}");
        assert_eq!(
            *receiver.open(&aad, &ct).unwrap(),
            pt,
            "open, sequence {seq}"
        );
    }
    // Out of sequence, a message does not open: the nonce is the sequence's.
    let mut fresh = hpke_setup_receiver(&h(&v["skRm"]), &enc, &info).unwrap();
    let second = &encryptions[1];
    assert!(fresh.open(&h(&second["aad"]), &h(&second["ct"])).is_err());
    // Nor under another info, another aad, with a changed byte or cut short.
    let first = &encryptions[0];
    let (aad, ct) = (h(&first["aad"]), h(&first["ct"]));
    let mut other_info = hpke_setup_receiver(&h(&v["skRm"]), &enc, b"other").unwrap();
    assert!(other_info.open(&aad, &ct).is_err());
    for bad in [
        {
            let mut c = ct.clone();
            c[0] ^= 1;
            c
        },
        {
            let mut c = ct.clone();
            *c.last_mut().unwrap() ^= 0x80;
            c
        },
        ct[..ct.len() - 1].to_vec(),
        ct[..15].to_vec(),
    ] {
        let mut r = hpke_setup_receiver(&h(&v["skRm"]), &enc, &info).unwrap();
        assert!(r.open(&aad, &bad).is_err());
    }
    let mut r = hpke_setup_receiver(&h(&v["skRm"]), &enc, &info).unwrap();
    assert!(r.open(b"Count-1", &ct).is_err());
    // An enc that is not an uncompressed point is refused.
    let mut compressed = vec![2 + (enc[64] & 1)];
    compressed.extend_from_slice(&enc[1..33]);
    assert!(hpke_setup_receiver(&h(&v["skRm"]), &compressed, &info).is_err());
    let mut off_curve = enc.clone();
    off_curve[64] ^= 1;
    assert!(hpke_setup_receiver(&h(&v["skRm"]), &off_curve, &info).is_err());
}

/// Runs `script` with the test Python on one JSON document; `None` if no
/// Python with pyhpke is configured (outside CI).
fn pyhpke(script: &str, input: &Value) -> Option<Value> {
    let Some(python) = std::env::var_os("CUSTODY_TEST_PYTHON") else {
        println!("skipped: CUSTODY_TEST_PYTHON is not set");
        return None;
    };
    let probe = Command::new(&python)
        .args(["-c", "import pyhpke"])
        .output()
        .unwrap();
    if !probe.status.success() {
        if std::env::var_os("CI").is_some() {
            panic!("CI must install pyhpke (PyPI) in CUSTODY_TEST_PYTHON");
        }
        println!("skipped: no pyhpke in {python:?}");
        return None;
    }
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "pyhpke script failed");
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

const ORACLE: &str = r#"
import json, sys
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey

suite = CipherSuite.new(KEMId.DHKEM_P256_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)
req = json.load(sys.stdin)
h = bytes.fromhex
out = {"opened": [], "sealed": []}
for case in req["open"]:
    skr = suite.kem.deserialize_private_key(h(case["skR"]))
    try:
        ctx = suite.create_recipient_context(h(case["enc"]), skr, info=h(case["info"]))
        out["opened"].append(ctx.open(h(case["ct"]), aad=h(case["aad"])).hex())
    except Exception:
        out["opened"].append(None)
for case in req["seal"]:
    pkr = suite.kem.deserialize_public_key(h(case["pkR"]))
    enc, ctx = suite.create_sender_context(pkr, info=h(case["info"]))
    out["sealed"].append({"enc": enc.hex(), "ct": ctx.seal(h(case["pt"]), aad=h(case["aad"])).hex()})
print(json.dumps(out))
"#;

fn random_scalar() -> Vec<u8> {
    QuorumSecret::generate().unwrap().expose_secret().to_vec()
}

fn public_of(sk: &[u8]) -> Vec<u8> {
    // The enclave boot computes the uncompressed public key of a private key.
    let set = split_seeded(&QuorumSecret::from_bytes(&[7; 32]).unwrap(), 1, 1, &[0; 32])
        .unwrap()
        .0;
    enclave_boot_with_key(set, b"", sk.try_into().unwrap())
        .unwrap()
        .public_key()
        .to_bytes()
        .to_vec()
}

#[test]
fn pyhpke_agrees_both_ways() {
    // Ours seals, pyhpke opens (and refuses the altered ones).
    let mut open_cases = Vec::new();
    let mut expected = Vec::new();
    for i in 0..12u8 {
        let sk_r = random_scalar();
        let pk_r = public_of(&sk_r);
        let info: Vec<u8> = (0..i * 20).collect();
        let aad: Vec<u8> = vec![i; usize::from(i)];
        let pt: Vec<u8> = (0..u16::from(i) * 9).map(|b| (b % 251) as u8).collect();
        let (enc, mut ctx) = hpke_setup_sender(&random_scalar(), &pk_r, &info).unwrap();
        let mut ct = ctx.seal(&aad, &pt).unwrap();
        let good = i % 3 != 2;
        if !good {
            let at = usize::from(i) % ct.len();
            ct[at] ^= 4;
        }
        open_cases.push(json!({"skR": hex::encode(&sk_r), "enc": hex::encode(&enc),
            "info": hex::encode(&info), "aad": hex::encode(&aad), "ct": hex::encode(&ct)}));
        expected.push(good.then(|| hex::encode(&pt)));
    }
    // pyhpke seals, ours opens.
    let mut seal_cases = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..12u8 {
        let sk_r = random_scalar();
        let info = vec![0xa0 ^ i; usize::from(i) * 7];
        let aad = vec![i; 3];
        let pt: Vec<u8> = (0..usize::from(i) * 11 + 1)
            .map(|b| (b * 7 % 256) as u8)
            .collect();
        seal_cases.push(
            json!({"pkR": hex::encode(public_of(&sk_r)), "info": hex::encode(&info),
            "aad": hex::encode(&aad), "pt": hex::encode(&pt)}),
        );
        receivers.push((sk_r, info, aad, pt));
    }
    let Some(out) = pyhpke(ORACLE, &json!({"open": open_cases, "seal": seal_cases})) else {
        return;
    };
    let opened: Vec<Option<String>> = serde_json::from_value(out["opened"].clone()).unwrap();
    assert_eq!(opened, expected);
    for ((sk_r, info, aad, pt), sealed) in receivers.iter().zip(out["sealed"].as_array().unwrap()) {
        let enc = h(&sealed["enc"]);
        let ct = h(&sealed["ct"]);
        let mut ctx = hpke_setup_receiver(sk_r, &enc, info).unwrap();
        assert_eq!(&*ctx.open(aad, &ct).unwrap(), pt);
        let mut bad = ct.clone();
        bad[0] ^= 1;
        let mut ctx = hpke_setup_receiver(sk_r, &enc, info).unwrap();
        assert!(ctx.open(aad, &bad).is_err());
    }
}

#[test]
fn a_share_sealed_by_pyhpke_from_the_spec_boots_the_enclave() {
    let secret = QuorumSecret::from_bytes(&[0x24; 32]).unwrap();
    let (set, shares) = split_seeded(&secret, 2, 3, &[9; 32]).unwrap();
    let enclave_sk = random_scalar();
    let manifest = [0x6d; 32];
    let mut boot = enclave_boot_with_key(
        set.clone(),
        &manifest,
        enclave_sk.as_slice().try_into().unwrap(),
    )
    .unwrap();
    let pk = boot.public_key().to_bytes();
    let mut seal_cases = Vec::new();
    for share in &shares[1..] {
        let file: Value = serde_json::from_str(&share.to_json()).unwrap();
        // SPEC.md, "Sealed share": plaintext salt ‖ value; info the
        // manifest; aad "custody/quorum-seal/v1" ‖ set digest ‖ index.
        let mut aad = b"custody/quorum-seal/v1".to_vec();
        aad.extend_from_slice(&set.digest());
        aad.push(share.index());
        let pt = [h(&file["salt"]), h(&file["value"])].concat();
        seal_cases.push(
            json!({"pkR": hex::encode(pk), "info": hex::encode(manifest),
            "aad": hex::encode(&aad), "pt": hex::encode(&pt)}),
        );
    }
    let Some(out) = pyhpke(ORACLE, &json!({"open": [], "seal": seal_cases})) else {
        return;
    };
    for (share, sealed) in shares[1..].iter().zip(out["sealed"].as_array().unwrap()) {
        let file = json!({"version": 1, "setId": set.set_id().to_string(),
            "index": share.index(), "enc": sealed["enc"], "ciphertext": sealed["ct"]});
        boot.accept(&SealedShare::from_json(&file.to_string()).unwrap())
            .unwrap();
    }
    assert_eq!(boot.finish().unwrap().public_key(), &secret.public_key());
}
