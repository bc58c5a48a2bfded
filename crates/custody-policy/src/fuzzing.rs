//! The bodies of the `webauthn_json`, `webauthn_cbor`, `policy_json`,
//! `verdict`, `policy_log_entry` and `policy_delay` cargo-fuzz targets in `fuzz/`. **Not part of the API**: hidden from the docs, and free to
//! change in any release.
//!
//! `fuzz/fuzz_targets/<name>.rs` calls `fuzz_<name>` in one line, and
//! `tests/fuzz_corpus.rs` (stable, in CI) feeds it every input under
//! `fuzz/seeds/<name>/` and `fuzz/regressions/<name>/`. They **panic when a
//! property fails**.

use crate::webauthn::{
    AssertionResponse, AuthenticatorData, Credential, CredentialKey, RegistrationResponse,
    RelyingParty,
};

/// The body of a fuzz target: arbitrary bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target of this crate, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("webauthn_json", fuzz_webauthn_json),
    ("webauthn_cbor", fuzz_webauthn_cbor),
    ("policy_json", fuzz_policy_json),
    ("verdict", fuzz_verdict),
    ("policy_log_entry", fuzz_policy_log_entry),
    ("policy_delay", fuzz_policy_delay),
];

/// A policy document: never a panic; an accepted policy's canonical form
/// reads back to the same policy, is its own canonical form, and has the
/// same hash.
#[expect(clippy::panic, reason = "a fuzz property failing is a panic")]
pub fn fuzz_policy_json(data: &[u8]) {
    let Ok(policy) = crate::policy::Policy::from_json(data) else {
        return;
    };
    let canonical = policy.to_canonical_json();
    match crate::policy::Policy::from_json(&canonical) {
        Ok(again) => {
            assert_eq!(again, policy, "the canonical form reads back differently");
            assert_eq!(again.to_canonical_json(), canonical, "canonical form moved");
            assert_eq!(again.hash(), policy.hash());
        }
        Err(e) => panic!("the canonical form of an accepted policy is refused: {e}"),
    }
}

/// A verdict's wire form: never a panic; an accepted one writes back to
/// exactly the bytes read (one encoding per verdict), and its signature
/// check answers without panicking.
#[expect(clippy::panic, reason = "a fuzz property failing is a panic")]
pub fn fuzz_verdict(data: &[u8]) {
    let Ok(signed) = crate::verdict::SignedVerdict::from_bytes(data) else {
        return;
    };
    match signed.to_bytes() {
        Ok(bytes) => assert_eq!(bytes, data, "a verdict re-encodes differently"),
        Err(e) => panic!("an accepted verdict does not encode: {e}"),
    }
    if let Ok(key) = custody_core::PublicKey::from_sec1_bytes(&signed.verdict.signer) {
        let _ = signed.verify(&key);
    }
}

/// A stored policy-log entry: never a panic; an accepted entry's stored
/// form reads back to the same entry with the same hash.
#[expect(clippy::panic, reason = "a fuzz property failing is a panic")]
pub fn fuzz_policy_log_entry(data: &[u8]) {
    let Ok(entry) = crate::log::Entry::from_json(data, 1) else {
        return;
    };
    let stored = serde_json::to_vec(&entry.to_json()).unwrap_or_default();
    match crate::log::Entry::from_json(&stored, 1) {
        Ok(again) => {
            assert_eq!(again, entry, "the stored form reads back differently");
            assert_eq!(again.hash(), entry.hash());
        }
        Err(e) => panic!("the stored form of an accepted entry is refused: {e}"),
    }
}

/// A stored proposal or veto of a delayed operation: never a panic; an
/// accepted one's stored form reads back to the same value and is its own
/// stored form, and a proposal's signature check answers without
/// panicking.
#[expect(clippy::panic, reason = "a fuzz property failing is a panic")]
pub fn fuzz_policy_delay(data: &[u8]) {
    use crate::delay::{Proposal, Veto};
    if let Ok(proposal) = Proposal::from_json(data) {
        let stored = proposal.to_json();
        match Proposal::from_json(&stored) {
            Ok(again) => {
                assert_eq!(again, proposal, "a stored proposal reads back differently");
                assert_eq!(again.to_json(), stored, "a stored proposal's form moved");
                assert_eq!(again.digest(), proposal.digest());
            }
            Err(e) => panic!("the stored form of an accepted proposal is refused: {e}"),
        }
        if let Some(Ok(key)) = proposal
            .signature
            .as_ref()
            .map(|s| s.recover(&proposal.digest()))
        {
            assert!(proposal.is_signed_by(&key));
        }
    }
    if let Ok(veto) = Veto::from_json(data) {
        let stored = veto.to_json();
        match Veto::from_json(&stored) {
            Ok(again) => {
                assert_eq!(again, veto, "a stored veto reads back differently");
                assert_eq!(again.to_json(), stored, "a stored veto's form moved");
            }
            Err(e) => panic!("the stored form of an accepted veto is refused: {e}"),
        }
    }
}

/// The relying party the targets verify against (the py_webauthn
/// vectors' `localhost`).
#[expect(
    clippy::panic,
    reason = "a constant configuration: a panic is a bug here"
)]
fn relying_party() -> RelyingParty {
    match RelyingParty::new("localhost", ["http://localhost:5000"]) {
        Ok(rp) => rp.user_verification(false),
        Err(e) => panic!("{e}"),
    }
}

/// A P-256 COSE key (from the py_webauthn EC2 vector) to verify against.
const ES256_KEY: [u8; 77] = [
    0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20, 0x87, 0x83, 0x4d, 0xef, 0xa0, 0x37,
    0xc0, 0x3e, 0xcd, 0x07, 0x25, 0x1e, 0x84, 0x67, 0x18, 0x55, 0x8d, 0xf1, 0xe8, 0x4c, 0xd5, 0xbe,
    0xf2, 0x02, 0xc6, 0xbc, 0x23, 0xc2, 0x88, 0xbe, 0x6a, 0x65, 0x22, 0x58, 0x20, 0xe2, 0x71, 0x46,
    0x4f, 0x9a, 0x71, 0xf2, 0x8e, 0xa0, 0xa4, 0xf6, 0x59, 0x84, 0xed, 0x35, 0xc1, 0xdc, 0xbd, 0x72,
    0xb0, 0xd2, 0x03, 0xf3, 0x60, 0xb6, 0x4c, 0x74, 0xbc, 0x6a, 0x6f, 0x3c, 0x72,
];

/// A `toJSON()` assertion or registration: never a panic; what decodes is
/// verified (to a typed answer) against a fixed credential and challenge.
pub fn fuzz_webauthn_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let rp = relying_party();
    if let Ok(assertion) = AssertionResponse::from_json(text)
        && let Ok(key) = CredentialKey::from_cose(&ES256_KEY)
    {
        let credential = Credential {
            id: assertion.credential_id.clone(),
            key,
        };
        let _ = rp.verify_assertion(&credential, &[0; 32], &assertion);
    }
    if let Ok(registration) = RegistrationResponse::from_json(text) {
        let _ = rp.verify_registration(&[0; 32], &registration);
    }
}

/// CBOR and binary structures: a COSE key that parses writes back to a key
/// that parses to it; authenticator data that parses carries a COSE key
/// whose own bytes parse to the same key; an attestation object (behind
/// client data that passes) is verified to a typed answer.
#[expect(
    clippy::panic,
    reason = "a failed property must abort the fuzz run: that is the report"
)]
pub fn fuzz_webauthn_cbor(data: &[u8]) {
    if let Ok(key) = CredentialKey::from_cose(data) {
        match CredentialKey::from_cose(&key.to_cose()) {
            Ok(again) if again == key => {}
            other => panic!("a COSE key does not round-trip: {other:?}"),
        }
    }
    if let Ok(parsed) = AuthenticatorData::parse(data)
        && let Some(attested) = parsed.attested
    {
        match CredentialKey::from_cose(&attested.cose_key) {
            Ok(key) if key == attested.key => {}
            other => panic!("the attested key's bytes parse to another key: {other:?}"),
        }
    }
    // The challenge is 32 zero bytes.
    let client = br#"{"type":"webauthn.create","challenge":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","origin":"http://localhost:5000"}"#;
    let registration = RegistrationResponse {
        credential_id: vec![0x01; 16],
        client_data_json: client.to_vec(),
        attestation_object: data.to_vec(),
    };
    let _ = relying_party().verify_registration(&[0; 32], &registration);
}
