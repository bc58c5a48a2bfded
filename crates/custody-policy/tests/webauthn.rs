//! The WebAuthn verifier: real browser assertions (py_webauthn's vectors),
//! a test authenticator built here from the specification (P-256 and
//! Ed25519 keys signing authenticator data ‖ SHA-256(client data)) with one
//! named test per check, the same assertions checked by py_webauthn itself
//! (a differential test, when `CUSTODY_TEST_PYTHON` has it), and the
//! credential store's counters and registrations.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

use std::sync::{Arc, Barrier};

use custody_core::{FileStore, MemoryStore, StateStore};
use custody_policy::webauthn::{
    AssertionResponse, AuthenticatorData, Credential, CredentialKey, CredentialStore,
    RegistrationResponse, RelyingParty, WebAuthnError,
};
use serde_json::{Value, json};

#[path = "support/authenticator.rs"]
mod authenticator;
use authenticator::*;

fn verify(device: &Device, challenge: &[u8], json: &str) -> Result<u32, WebAuthnError> {
    let response = AssertionResponse::from_json(json)?;
    rp().verify_assertion(&device.credential(), challenge, &response)
        .map(|v| v.sign_count)
}

fn kind(result: Result<u32, WebAuthnError>) -> &'static str {
    result.expect_err("refused").kind()
}

// ------------------------------------------------------------ real vectors

#[test]
fn real_browser_assertions_verify_as_py_webauthn_says() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../vectors/webauthn/py_webauthn_assertions.json"
    ))
    .unwrap();
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let origins: Vec<&str> = case["origins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        let rp = RelyingParty::new(case["rp_id"].as_str().unwrap(), origins)
            .unwrap()
            .user_verification(case["require_uv"].as_bool().unwrap());
        let response = AssertionResponse::from_json(&case["credential"].to_string()).unwrap();
        let credential = Credential {
            id: response.credential_id.clone(),
            key: CredentialKey::from_cose(&unb64(case["public_key"].as_str().unwrap())).unwrap(),
        };
        let challenge = unb64(case["challenge"].as_str().unwrap());
        let result = rp.verify_assertion(&credential, &challenge, &response);
        if case["expect"]["ok"].as_bool().unwrap() {
            let verified = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                u64::from(verified.sign_count),
                case["expect"]["sign_count"].as_u64().unwrap(),
                "{name}"
            );
            assert!(u64::from(verified.sign_count) > case["stored_count"].as_u64().unwrap());
            // The COSE key round-trips to the same bytes.
            assert_eq!(
                credential.key.to_cose(),
                unb64(case["public_key"].as_str().unwrap()),
                "{name}"
            );
            // And the same assertion over another challenge is refused.
            let mut other = challenge.clone();
            other[0] ^= 1;
            assert_eq!(
                rp.verify_assertion(&credential, &other, &response)
                    .unwrap_err()
                    .kind(),
                "webauthn-challenge-mismatch"
            );
        } else {
            assert_eq!(
                result.unwrap_err().kind(),
                case["expect"]["kind"].as_str().unwrap(),
                "{name}"
            );
        }
    }
}

// ------------------------------------------------------ one test per check

#[test]
fn a_good_assertion_verifies_with_p256_and_ed25519_keys() {
    for mut device in [Device::p256(1), Device::ed25519(2)] {
        let challenge = [7u8; 32];
        let json = device.assert(&challenge);
        assert_eq!(verify(&device, &challenge, &json).unwrap(), 1);
        let json = device.assert(&challenge);
        assert_eq!(verify(&device, &challenge, &json).unwrap(), 2);
    }
}

#[test]
fn the_challenge_must_be_the_operation_hash() {
    let mut d = Device::p256(1);
    let json = d.assert(&[7; 32]);
    assert_eq!(
        kind(verify(&d, &[8; 32], &json)),
        "webauthn-challenge-mismatch"
    );
}

#[test]
fn the_type_must_be_webauthn_get() {
    let mut d = Device::p256(1);
    let data = d.auth_data(RP_ID, UP | UV);
    for wrong in ["webauthn.create", "payment.get", ""] {
        let client = ClientData {
            kind: wrong,
            ..ClientData::get(&[7; 32])
        };
        let json = d.assertion_from(&data, &client.to_json());
        assert_eq!(
            kind(verify(&d, &[7; 32], &json)),
            "webauthn-wrong-type",
            "{wrong}"
        );
    }
}

#[test]
fn the_origin_must_be_one_of_the_relying_partys() {
    let mut d = Device::p256(1);
    let data = d.auth_data(RP_ID, UP | UV);
    for wrong in [
        "https://evil.example.com",
        "http://custody.example.com",
        "https://custody.example.com:8443",
        "https://custody.example.com/",
    ] {
        let client = ClientData {
            origin: wrong.to_owned(),
            ..ClientData::get(&[7; 32])
        };
        let json = d.assertion_from(&data, &client.to_json());
        assert_eq!(
            kind(verify(&d, &[7; 32], &json)),
            "webauthn-origin-not-allowed",
            "{wrong}"
        );
    }
}

#[test]
fn a_cross_origin_ceremony_is_refused() {
    let mut d = Device::p256(1);
    let data = d.auth_data(RP_ID, UP | UV);
    let client = ClientData {
        extra: r#","crossOrigin":true,"topOrigin":"https://evil.example.com""#,
        ..ClientData::get(&[7; 32])
    };
    let json = d.assertion_from(&data, &client.to_json());
    assert_eq!(kind(verify(&d, &[7; 32], &json)), "webauthn-cross-origin");
    let client = ClientData {
        extra: r#","crossOrigin":"no""#,
        ..ClientData::get(&[7; 32])
    };
    let json = d.assertion_from(&data, &client.to_json());
    assert_eq!(kind(verify(&d, &[7; 32], &json)), "webauthn-malformed");
}

#[test]
fn client_data_with_a_member_twice_is_refused() {
    // Two challenges: a lenient reader takes the last, another the first.
    let mut d = Device::p256(1);
    let data = d.auth_data(RP_ID, UP | UV);
    let client = ClientData {
        extra: r#","challenge":"AAAA""#,
        ..ClientData::get(&[7; 32])
    };
    let json = d.assertion_from(&data, &client.to_json());
    let e = verify(&d, &[7; 32], &json).unwrap_err();
    assert!(
        matches!(e, WebAuthnError::ClientDataJson(ref m) if m.contains("twice")),
        "{e}"
    );
}

#[test]
fn the_rp_id_hash_must_be_the_relying_partys() {
    let mut d = Device::p256(1);
    let data = d.auth_data("evil.example.com", UP | UV);
    let json = d.assertion_from(&data, &ClientData::get(&[7; 32]).to_json());
    assert_eq!(kind(verify(&d, &[7; 32], &json)), "webauthn-rp-id-mismatch");
}

#[test]
fn user_presence_is_required() {
    let mut d = Device::p256(1);
    let data = d.auth_data(RP_ID, UV);
    let json = d.assertion_from(&data, &ClientData::get(&[7; 32]).to_json());
    assert_eq!(
        kind(verify(&d, &[7; 32], &json)),
        "webauthn-user-not-present"
    );
}

#[test]
fn user_verification_is_required_unless_the_relying_party_waives_it() {
    let mut d = Device::p256(1);
    let data = d.auth_data(RP_ID, UP);
    let json = d.assertion_from(&data, &ClientData::get(&[7; 32]).to_json());
    assert_eq!(
        kind(verify(&d, &[7; 32], &json)),
        "webauthn-user-not-verified"
    );
    let lenient = rp().user_verification(false);
    let response = AssertionResponse::from_json(&json).unwrap();
    let verified = lenient
        .verify_assertion(&d.credential(), &[7; 32], &response)
        .unwrap();
    assert!(!verified.user_verified);
}

#[test]
fn backed_up_without_backup_eligibility_is_refused() {
    let mut d = Device::p256(1);
    let data = d.auth_data(RP_ID, UP | UV | BS);
    let json = d.assertion_from(&data, &ClientData::get(&[7; 32]).to_json());
    assert_eq!(kind(verify(&d, &[7; 32], &json)), "webauthn-flags");
    let data = d.auth_data(RP_ID, UP | UV | BE | BS);
    let json = d.assertion_from(&data, &ClientData::get(&[7; 32]).to_json());
    let response = AssertionResponse::from_json(&json).unwrap();
    let v = rp()
        .verify_assertion(&d.credential(), &[7; 32], &response)
        .unwrap();
    assert!(v.backup_eligible && v.backed_up);
}

#[test]
fn authenticator_data_is_accounted_for_byte_by_byte() {
    let mut d = Device::p256(1);
    let client = ClientData::get(&[7; 32]).to_json();
    // Truncated.
    let data = d.auth_data(RP_ID, UP | UV);
    let json = d.assertion_from(&data[..36], &client);
    assert_eq!(kind(verify(&d, &[7; 32], &json)), "webauthn-malformed");
    // Bytes no flag announces.
    let mut data = d.auth_data(RP_ID, UP | UV);
    data.push(0);
    let json = d.assertion_from(&data, &client);
    assert_eq!(kind(verify(&d, &[7; 32], &json)), "webauthn-malformed");
    // Extensions announced: a CBOR map, strictly, and nothing after it.
    let mut data = d.auth_data(RP_ID, UP | UV | ED);
    data.extend_from_slice(&[0xa1, 0x63, b'f', b'o', b'o', 0xf5]);
    let json = d.assertion_from(&data, &client);
    assert_eq!(verify(&d, &[7; 32], &json).unwrap(), d.counter);
    for bad in [
        &[0xa1, 0x63, b'f', b'o', b'o'][..],
        &[0x80],
        &[0xa0, 0x00],
        &[],
    ] {
        let mut data = d.auth_data(RP_ID, UP | UV | ED);
        data.extend_from_slice(bad);
        let json = d.assertion_from(&data, &client);
        assert_eq!(
            kind(verify(&d, &[7; 32], &json)),
            "webauthn-malformed",
            "{bad:?}"
        );
    }
    // Attested credential data has no place in an assertion.
    let mut data = d.auth_data(RP_ID, UP | UV | AT);
    data.extend_from_slice(&[0; 16]);
    data.extend_from_slice(&[0, 16]);
    data.extend_from_slice(&d.id.clone());
    data.extend_from_slice(&d.cose());
    let json = d.assertion_from(&data, &client);
    assert_eq!(kind(verify(&d, &[7; 32], &json)), "webauthn-flags");
}

#[test]
fn the_signature_must_verify_with_the_registered_key() {
    let mut d = Device::p256(1);
    let json = d.assert(&[7; 32]);
    // Another device's key.
    let other = Device::p256(2);
    let response = AssertionResponse::from_json(&json).unwrap();
    let wrong = Credential {
        id: d.id.clone(),
        key: other.public(),
    };
    assert_eq!(
        rp().verify_assertion(&wrong, &[7; 32], &response)
            .unwrap_err()
            .kind(),
        "webauthn-bad-signature"
    );
    // A flipped bit in the signed data (the counter) after signing.
    let mut tampered: Value = serde_json::from_str(&json).unwrap();
    let mut data = unb64(tampered["response"]["authenticatorData"].as_str().unwrap());
    data[36] ^= 1;
    tampered["response"]["authenticatorData"] = json!(b64(&data));
    assert_eq!(
        kind(verify(&d, &[7; 32], &tampered.to_string())),
        "webauthn-bad-signature"
    );
    // Garbage, empty and Ed25519-length signatures for a P-256 key.
    for sig in [vec![], vec![0x30, 0x00], vec![1; 64]] {
        let mut t: Value = serde_json::from_str(&json).unwrap();
        t["response"]["signature"] = json!(b64(&sig));
        assert_eq!(
            kind(verify(&d, &[7; 32], &t.to_string())),
            "webauthn-bad-signature"
        );
    }
}

#[test]
fn a_high_s_p256_signature_verifies_as_browsers_may_send_one() {
    // WebAuthn does not ask authenticators for low-s: n - s is as valid.
    let mut d = Device::p256(1);
    let json = d.assert(&[7; 32]);
    let mut t: Value = serde_json::from_str(&json).unwrap();
    let der = unb64(t["response"]["signature"].as_str().unwrap());
    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
    let (r, s) = sig.split_scalars();
    let high = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
    assert_ne!(high, sig);
    t["response"]["signature"] = json!(b64(high.to_der().as_bytes()));
    assert_eq!(verify(&d, &[7; 32], &t.to_string()).unwrap(), 1);
}

#[test]
fn an_assertion_for_another_credential_is_refused() {
    let mut d = Device::p256(1);
    let json = d.assert(&[7; 32]);
    let response = AssertionResponse::from_json(&json).unwrap();
    let mut credential = d.credential();
    credential.id = vec![9; 16];
    assert_eq!(
        rp().verify_assertion(&credential, &[7; 32], &response)
            .unwrap_err()
            .kind(),
        "webauthn-credential-mismatch"
    );
}

/// A change made to a response's JSON.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn the_response_json_is_read_strictly() {
    let mut d = Device::p256(1);
    let good: Value = serde_json::from_str(&d.assert(&[7; 32])).unwrap();
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "no response",
            Box::new(|v| drop(v.as_object_mut().unwrap().remove("response"))),
        ),
        (
            "type not public-key",
            Box::new(|v| v["type"] = json!("password")),
        ),
        ("id not rawId", Box::new(|v| v["id"] = json!("AAAA"))),
        (
            "padded base64",
            Box::new(|v| {
                let s = v["response"]["signature"].as_str().unwrap().to_owned();
                v["response"]["signature"] = json!(format!("{s}=="));
            }),
        ),
        (
            "standard base64 alphabet",
            Box::new(|v| v["rawId"] = json!("ab+/")),
        ),
        (
            "userHandle a number",
            Box::new(|v| v["response"]["userHandle"] = json!(3)),
        ),
        (
            "no signature",
            Box::new(|v| drop(v["response"].as_object_mut().unwrap().remove("signature"))),
        ),
    ];
    for (name, mutate) in cases {
        let mut v = good.clone();
        mutate(&mut v);
        let e = AssertionResponse::from_json(&v.to_string()).unwrap_err();
        assert_eq!(e.kind(), "webauthn-malformed", "{name}: {e}");
    }
    // A member twice at the top level of the response JSON.
    let text = good.to_string();
    let twice = text.replacen(
        r#""type":"public-key""#,
        r#""type":"public-key","type":"public-key""#,
        1,
    );
    assert_ne!(twice, text);
    assert_eq!(
        AssertionResponse::from_json(&twice).unwrap_err().kind(),
        "webauthn-malformed"
    );
    for junk in ["", "[]", "null", "{", "\"x\""] {
        assert!(AssertionResponse::from_json(junk).is_err(), "{junk:?}");
    }
}

#[test]
fn cose_keys_are_read_strictly() {
    let d = Device::p256(1);
    let cose = d.cose();
    assert_eq!(CredentialKey::from_cose(&cose).unwrap(), d.public());
    assert_eq!(d.public().to_cose(), cose);
    let e = Device::ed25519(2);
    assert_eq!(CredentialKey::from_cose(&e.cose()).unwrap(), e.public());
    assert_eq!(e.public().to_cose(), e.cose());
    let kinds = |bytes: &[u8]| CredentialKey::from_cose(bytes).unwrap_err().kind();
    // ES256 on another curve (crv 2, P-384).
    let mut other_curve = cose.clone();
    other_curve[6] = 0x02;
    assert_eq!(kinds(&other_curve), "webauthn-unsupported-key");
    // RS256 (alg -257) is not supported.
    assert_eq!(
        kinds(&[0xa3, 0x01, 0x03, 0x03, 0x39, 0x01, 0x00, 0x20, 0x40]),
        "webauthn-unsupported-key"
    );
    // A point not on the curve.
    let mut off = cose.clone();
    let last = off.len() - 1;
    off[last] ^= 1;
    assert_eq!(kinds(&off), "webauthn-invalid-key");
    // A small-order Ed25519 key (the identity).
    let mut weak = vec![
        0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20, 0x01,
    ];
    weak.extend_from_slice(&[0; 31]);
    assert_eq!(kinds(&weak), "webauthn-invalid-key");
    // An extra member, a member twice, trailing bytes, non-shortest CBOR.
    let mut extra = cose.clone();
    extra[0] = 0xa6;
    extra.extend_from_slice(&[0x04, 0x00]);
    assert_eq!(kinds(&extra), "webauthn-invalid-key");
    let mut twice = cose.clone();
    twice[0] = 0xa6;
    twice.extend_from_slice(&[0x01, 0x02]);
    assert_eq!(kinds(&twice), "webauthn-malformed");
    let mut trailing = cose.clone();
    trailing.push(0);
    assert_eq!(kinds(&trailing), "webauthn-malformed");
    assert_eq!(
        kinds(&[0xa2, 0x01, 0x18, 0x02, 0x03, 0x26]),
        "webauthn-malformed"
    );
}

// ------------------------------------------------------------ registration

#[test]
fn registration_with_none_and_packed_self_attestation() {
    for fmt in ["none", "packed"] {
        for mut device in [Device::p256(3), Device::ed25519(4)] {
            let json = device.register(&[5; 32], fmt);
            let response = RegistrationResponse::from_json(&json).unwrap();
            let registered = rp().verify_registration(&[5; 32], &response).unwrap();
            assert_eq!(registered.credential(), device.credential(), "{fmt}");
            assert_eq!(registered.attestation_format, fmt);
            assert_eq!(registered.credential.aaguid, [0xAA; 16]);
            assert_eq!(registered.credential.cose_key, device.cose());
            assert_eq!(registered.sign_count, 1);
            // The data parses to the same credential on its own.
            let object = unb64(
                serde_json::from_str::<Value>(&json).unwrap()["response"]["attestationObject"]
                    .as_str()
                    .unwrap(),
            );
            let start = object.len() - (37 + 16 + 2 + device.id.len() + device.cose().len());
            let data = AuthenticatorData::parse(&object[start..]).unwrap();
            assert_eq!(data.attested.unwrap().credential_id, device.id);
            // Another challenge, or an assertion-type client data: refused.
            assert_eq!(
                rp().verify_registration(&[6; 32], &response)
                    .unwrap_err()
                    .kind(),
                "webauthn-challenge-mismatch"
            );
        }
    }
}

#[test]
fn a_bad_packed_self_attestation_is_refused() {
    let mut d = Device::p256(3);
    let json = d.register(&[5; 32], "packed");
    // Flip a bit of the signature inside the attestation object.
    let mut v: Value = serde_json::from_str(&json).unwrap();
    let mut object = unb64(v["response"]["attestationObject"].as_str().unwrap());
    let sig_at = object
        .windows(3)
        .position(|w| w == [b's', b'i', b'g'])
        .unwrap()
        + 6;
    object[sig_at + 10] ^= 1;
    v["response"]["attestationObject"] = json!(b64(&object));
    let response = RegistrationResponse::from_json(&v.to_string()).unwrap();
    assert_eq!(
        rp().verify_registration(&[5; 32], &response)
            .unwrap_err()
            .kind(),
        "webauthn-attestation-invalid"
    );
}

#[test]
fn unsupported_attestation_formats_are_named() {
    let mut d = Device::p256(3);
    let json = d.register(&[5; 32], "none");
    let mut v: Value = serde_json::from_str(&json).unwrap();
    let object = unb64(v["response"]["attestationObject"].as_str().unwrap());
    // "none" -> "tpm\0"-length-4 format name: same length as "none".
    let swapped: Vec<u8> = {
        let at = object.windows(4).position(|w| w == b"none").unwrap();
        let mut o = object.clone();
        o[at..at + 4].copy_from_slice(b"fido");
        o
    };
    v["response"]["attestationObject"] = json!(b64(&swapped));
    let response = RegistrationResponse::from_json(&v.to_string()).unwrap();
    let e = rp().verify_registration(&[5; 32], &response).unwrap_err();
    assert!(
        matches!(e, WebAuthnError::UnsupportedAttestation(ref f) if f == "fido"),
        "{e}"
    );
}

// --------------------------------------------------------- credential store

fn stores() -> Vec<(&'static str, Arc<dyn StateStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let file: Arc<dyn StateStore> = Arc::new(FileStore::open(dir.path()).unwrap());
    vec![
        ("memory", Arc::new(MemoryStore::new()), None),
        ("file", file, Some(dir)),
    ]
}

#[test]
fn a_credential_or_key_registered_before_is_refused() {
    for (name, state, _dir) in stores() {
        let store = CredentialStore::new(state);
        let mut d = Device::p256(3);
        let registered = rp()
            .verify_registration(
                &[5; 32],
                &RegistrationResponse::from_json(&d.register(&[5; 32], "none")).unwrap(),
            )
            .unwrap();
        store.register(&registered).wait().unwrap();
        assert_eq!(
            store.credential(&d.id).wait().unwrap(),
            Some(d.credential()),
            "{name}"
        );
        assert_eq!(store.credential(&[0; 8]).wait().unwrap(), None);
        // The same registration again.
        assert_eq!(
            store.register(&registered).wait().unwrap_err().kind(),
            "webauthn-already-registered"
        );
        // The same key under a new credential id.
        let mut again = Device::p256(3);
        again.id = vec![0x42; 20];
        let registered = rp()
            .verify_registration(
                &[5; 32],
                &RegistrationResponse::from_json(&again.register(&[5; 32], "none")).unwrap(),
            )
            .unwrap();
        assert_eq!(
            store.register(&registered).wait().unwrap_err().kind(),
            "webauthn-already-registered",
            "{name}"
        );
    }
}

#[test]
fn the_signature_counter_never_goes_back() {
    for (name, state, _dir) in stores() {
        let store = CredentialStore::new(state);
        let id = b"credential".as_slice();
        store.record_counter(id, 5).wait().unwrap();
        for (presented, ok) in [
            (5, false),
            (4, false),
            (0, false),
            (6, true),
            (100, true),
            (99, false),
        ] {
            let result = store.record_counter(id, presented).wait();
            assert_eq!(result.is_ok(), ok, "{name}: {presented}");
            if let Err(e) = result {
                assert!(
                    matches!(e, WebAuthnError::CounterRegressed { presented: p, .. } if p == presented)
                );
            }
        }
        // An authenticator that keeps no counter: 0 after 0 is fine.
        let passkey = b"passkey".as_slice();
        for _ in 0..3 {
            store.record_counter(passkey, 0).wait().unwrap();
        }
        store.record_counter(passkey, 1).wait().unwrap();
        assert_eq!(
            store.record_counter(passkey, 0).wait().unwrap_err().kind(),
            "webauthn-counter-regressed"
        );
    }
}

#[test]
fn two_replicas_racing_one_counter_value_exactly_one_wins() {
    for (name, state, _dir) in stores() {
        let store = CredentialStore::new(state);
        let id = b"raced".as_slice();
        for round in 1..=50u32 {
            let barrier = Barrier::new(4);
            let wins: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        let (store, barrier) = (store.clone(), &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            usize::from(store.record_counter(id, round).wait().is_ok())
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(wins, 1, "{name}: round {round}");
        }
    }
}

// ------------------------------------------------------------ differential

/// py_webauthn (PyPI `webauthn`) verifies what this test authenticator
/// makes, and refuses the same tampered ones this verifier refuses.
#[test]
fn py_webauthn_agrees_on_the_test_authenticators_assertions() {
    let Some(python) = std::env::var_os("CUSTODY_TEST_PYTHON") else {
        println!("skipped: CUSTODY_TEST_PYTHON is not set");
        return;
    };
    let probe = std::process::Command::new(&python)
        .args(["-c", "import webauthn"])
        .output()
        .unwrap();
    if !probe.status.success() {
        if std::env::var_os("CI").is_some() {
            panic!("CI must install py_webauthn (PyPI webauthn) in CUSTODY_TEST_PYTHON");
        }
        println!("skipped: no py_webauthn in {python:?}");
        return;
    }
    let mut cases = Vec::new();
    for mut d in [Device::p256(1), Device::ed25519(2)] {
        let challenge = [7u8; 32];
        let good = d.assert(&challenge);
        let data = d.auth_data(RP_ID, UP | UV);
        let wrong_origin = d.assertion_from(
            &data,
            &ClientData {
                origin: "https://evil.example.com".into(),
                ..ClientData::get(&challenge)
            }
            .to_json(),
        );
        let data = d.auth_data("evil.example.com", UP | UV);
        let wrong_rp = d.assertion_from(&data, &ClientData::get(&challenge).to_json());
        let data = d.auth_data(RP_ID, UV);
        let no_up = d.assertion_from(&data, &ClientData::get(&challenge).to_json());
        for (json, cose) in [
            (good, d.cose()),
            (wrong_origin, d.cose()),
            (wrong_rp, d.cose()),
            (no_up, d.cose()),
            (d.assert(&challenge), Device::p256(9).cose()),
        ] {
            let ours = verify(&d, &challenge, &json).is_ok()
                && CredentialKey::from_cose(&cose).unwrap() == d.public();
            cases.push((json, b64(&cose), b64(&challenge), ours));
        }
    }
    let script = r#"
import json, sys
from webauthn import verify_authentication_response
from webauthn.helpers import base64url_to_bytes
for line in sys.stdin:
    case = json.loads(line)
    try:
        verify_authentication_response(
            credential=case["credential"],
            expected_challenge=base64url_to_bytes(case["challenge"]),
            expected_rp_id="custody.example.com",
            expected_origin="https://custody.example.com",
            credential_public_key=base64url_to_bytes(case["key"]),
            credential_current_sign_count=0,
            require_user_verification=True,
        )
        print("ok")
    except Exception as e:
        print("refused")
"#;
    let input: String = cases
        .iter()
        .map(|(json, key, challenge, _)| {
            format!(
                "{}\n",
                json!({"credential": json, "key": key, "challenge": challenge})
            )
        })
        .collect();
    let mut child = std::process::Command::new(&python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let theirs: Vec<bool> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| l == "ok")
        .collect();
    let ours: Vec<bool> = cases.iter().map(|c| c.3).collect();
    assert_eq!(ours, theirs);
    assert_eq!(
        ours.iter().filter(|ok| **ok).count(),
        2,
        "one good assertion per key type"
    );
}

// ------------------------------------------------------------ fuzz seeds

/// Writes the seeds of the `webauthn_json` and `webauthn_cbor` fuzz targets
/// (`fuzz/seeds/`): the real browser vectors, this file's test
/// authenticator's assertions and registrations, and near misses:
/// `cargo test -p custody-policy --test webauthn -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes fuzz/seeds/webauthn_*; run by hand"]
fn write_fuzz_seeds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../vectors/webauthn/py_webauthn_assertions.json"
    ))
    .unwrap();
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let mut json_seeds: Vec<(String, Vec<u8>)> = Vec::new();
    let mut cbor_seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, case) in vectors["cases"].as_array().unwrap().iter().enumerate() {
        json_seeds.push((
            format!("real_{i}"),
            case["credential"].to_string().into_bytes(),
        ));
        cbor_seeds.push((
            format!("real_key_{i}"),
            unb64(case["public_key"].as_str().unwrap()),
        ));
        cbor_seeds.push((
            format!("real_auth_data_{i}"),
            unb64(
                case["credential"]["response"]["authenticatorData"]
                    .as_str()
                    .unwrap(),
            ),
        ));
    }
    for (name, mut d) in [("p256", Device::p256(1)), ("ed25519", Device::ed25519(2))] {
        let assertion = d.assert(&[0; 32]);
        json_seeds.push((format!("{name}_assertion"), assertion.clone().into_bytes()));
        json_seeds.push((
            format!("{name}_assertion_twice"),
            assertion
                .replacen(
                    r#""type":"public-key""#,
                    r#""type":"public-key","type":"x""#,
                    1,
                )
                .into_bytes(),
        ));
        cbor_seeds.push((format!("{name}_key"), d.cose()));
        for fmt in ["none", "packed"] {
            let registration = d.register(&[0; 32], fmt);
            let v: Value = serde_json::from_str(&registration).unwrap();
            let object = unb64(v["response"]["attestationObject"].as_str().unwrap());
            let data_len = 37 + 16 + 2 + d.id.len() + d.cose().len();
            cbor_seeds.push((
                format!("{name}_{fmt}_auth_data"),
                object[object.len() - data_len..].to_vec(),
            ));
            cbor_seeds.push((format!("{name}_{fmt}_attestation_object"), object));
            json_seeds.push((
                format!("{name}_{fmt}_registration"),
                registration.into_bytes(),
            ));
        }
    }
    let mut extra = Device::p256(1).cose();
    extra[0] = 0xa6;
    extra.extend_from_slice(&[0x04, 0x00]);
    cbor_seeds.push(("near_key_extra_member".into(), extra));
    cbor_seeds.push(("near_auth_data_truncated".into(), vec![0; 36]));
    json_seeds.push((
        "near_padded".into(),
        br#"{"id":"AA==","rawId":"AA==","type":"public-key","response":{}}"#.to_vec(),
    ));
    for (dir, seeds) in [("webauthn_json", json_seeds), ("webauthn_cbor", cbor_seeds)] {
        let dir = root.join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

// ------------------------------------------------------------- wycheproof

fn wycheproof(name: &str) -> Value {
    let path = format!(
        "{}/../../vectors/wycheproof/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every Wycheproof ECDSA P-256/SHA-256 (DER) and Ed25519 test: a
/// credential key verifies exactly the valid signatures (the invalid ones
/// include BER and malformed encodings, wrong-length and small-order
/// values, and non-canonical Ed25519 encodings).
#[test]
fn credential_keys_verify_exactly_wycheproofs_valid_signatures() {
    let mut checked = [0usize; 2];
    for (i, file) in ["ecdsa_secp256r1_sha256_test.json", "ed25519_test.json"]
        .into_iter()
        .enumerate()
    {
        let vectors = wycheproof(file);
        for group in vectors["testGroups"].as_array().unwrap() {
            let key = &group["publicKey"];
            // The key as a COSE key, through the same checks a device's gets.
            let cose = if i == 0 {
                let mut c = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
                let point = hex::decode(key["uncompressed"].as_str().unwrap()).unwrap();
                c.extend_from_slice(&point[1..33]);
                c.extend_from_slice(&[0x22, 0x58, 0x20]);
                c.extend_from_slice(&point[33..65]);
                c
            } else {
                let mut c = vec![0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20];
                c.extend_from_slice(&hex::decode(key["pk"].as_str().unwrap()).unwrap());
                c
            };
            let credential = CredentialKey::from_cose(&cose);
            for test in group["tests"].as_array().unwrap() {
                let msg = hex::decode(test["msg"].as_str().unwrap()).unwrap();
                let sig = hex::decode(test["sig"].as_str().unwrap()).unwrap();
                let ours = credential
                    .as_ref()
                    .is_ok_and(|k| k.verify(&msg, &sig).is_ok());
                let expected = test["result"] == "valid";
                assert_eq!(ours, expected, "{file} tcId {}", test["tcId"]);
                checked[i] += 1;
            }
        }
    }
    assert_eq!(checked, [484, 151]);
}
