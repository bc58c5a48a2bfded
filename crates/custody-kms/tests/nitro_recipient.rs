//! The enclave's side of an attested unwrap (feature `nitro`): KMS's
//! `CiphertextForRecipient` read by the strict BER walker and opened by
//! the one-shot ephemeral RSA key, checked against structures built
//! independently (the committed Python vectors of `vectors/nitro-recipient/`,
//! Python live when `CUSTODY_TEST_PYTHON` is set, and a Rust builder in
//! `support/recipient.rs`), and the fake NSM's documents checked by the
//! very verifier that checks AWS's.
#![cfg(all(feature = "nitro", feature = "nsm-fake"))]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[path = "support/recipient.rs"]
mod build;

use std::path::PathBuf;

use custody_kms::nitro::fake::{Doc, FakeNsm, T0, pcr};
use custody_kms::nitro::{
    AttestRequest, AttestationError, BerError, CiphertextForRecipient, EPHEMERAL_RSA_BITS,
    EphemeralRsaKey, Expectations, MAX_BER_DEPTH, MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES, Nsm,
    NsmError, RecipientError, TrustAnchor, VerificationTime, Verifier,
};
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;

// ---------------------------------------------------------------------------
// The committed Python vectors
// ---------------------------------------------------------------------------

struct Vectors {
    key: Vec<u8>,
    other_key: Vec<u8>,
    cases: Vec<serde_json::Value>,
}

fn vectors() -> Vectors {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../vectors/nitro-recipient/vectors.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let hex_of = |name: &str| hex::decode(doc[name].as_str().unwrap()).unwrap();
    Vectors {
        key: hex_of("key_pkcs8"),
        other_key: hex_of("other_key_pkcs8"),
        cases: doc["cases"].as_array().unwrap().clone(),
    }
}

fn error_name(e: &RecipientError) -> &'static str {
    match e {
        RecipientError::TooLarge { .. } => "TooLarge",
        RecipientError::Ber { .. } => "Ber",
        RecipientError::ContentType => "ContentType",
        RecipientError::Version { .. } => "Version",
        RecipientError::Unsupported(_) => "Unsupported",
        RecipientError::RecipientCount(_) => "RecipientCount",
        RecipientError::RecipientIdentifier => "RecipientIdentifier",
        RecipientError::KeyEncryptionAlgorithm => "KeyEncryptionAlgorithm",
        RecipientError::EncryptedContentType => "EncryptedContentType",
        RecipientError::ContentEncryptionAlgorithm => "ContentEncryptionAlgorithm",
        RecipientError::IvLength(_) => "IvLength",
        RecipientError::ContentLength(_) => "ContentLength",
        RecipientError::DecryptionFailed => "DecryptionFailed",
        RecipientError::KeyGeneration => "KeyGeneration",
        _ => "other",
    }
}

#[test]
fn python_vectors_open_to_their_plaintext_in_every_encoding() {
    let v = vectors();
    let mut opened = 0;
    for case in v.cases.iter().filter(|c| c["error"].is_null()) {
        let name = case["name"].as_str().unwrap();
        let ber = hex::decode(case["ber"].as_str().unwrap()).unwrap();
        let expected = hex::decode(case["plaintext"].as_str().unwrap()).unwrap();
        let key = EphemeralRsaKey::from_pkcs8_der_for_tests(&v.key).unwrap();
        let plaintext = key.open(&ber).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(plaintext.expose_secret(), &expected[..], "{name}");
        opened += 1;
    }
    // 5 plaintexts × 7 encodings, and the explicit empty label.
    assert_eq!(opened, 36);
}

#[test]
fn python_vectors_refused_with_their_named_error() {
    let v = vectors();
    let mut refused = 0;
    for case in v.cases.iter().filter(|c| !c["error"].is_null()) {
        let name = case["name"].as_str().unwrap();
        let ber = hex::decode(case["ber"].as_str().unwrap()).unwrap();
        let key = EphemeralRsaKey::from_pkcs8_der_for_tests(&v.key).unwrap();
        let err = key.open(&ber).unwrap_err();
        assert_eq!(
            error_name(&err),
            case["error"].as_str().unwrap(),
            "{name}: {err:?}"
        );
        refused += 1;
    }
    assert_eq!(refused, 18);
}

#[test]
fn python_vectors_are_ber_with_indefinite_lengths_and_chunks() {
    let v = vectors();
    let case = |n: &str| {
        let c = v.cases.iter().find(|c| c["name"] == n).unwrap();
        hex::decode(c["ber"].as_str().unwrap()).unwrap()
    };
    let indefinite = case("valid/data-key-32/indefinite-chunked-16");
    assert_eq!(&indefinite[..2], &[0x30, 0x80], "ContentInfo indefinite");
    assert_eq!(&indefinite[indefinite.len() - 2..], &[0, 0], "ends in EOC");
    // The encrypted content [0] constructed, of 16-byte OCTET STRING chunks.
    let parsed = CiphertextForRecipient::parse(&indefinite).unwrap();
    assert_eq!(parsed.encrypted_content().len(), 48);
    let content = parsed.encrypted_content();
    let mut chunked = vec![0xa0, 0x80, 0x04, 0x10];
    chunked.extend_from_slice(&content[..16]);
    assert!(
        indefinite.windows(chunked.len()).any(|w| w == chunked),
        "chunked content"
    );
    // The same structure in DER has the same fields.
    let der = CiphertextForRecipient::parse(&case("valid/data-key-32/der")).unwrap();
    assert_eq!(der.encrypted_content(), parsed.encrypted_content());
    assert_eq!(der.iv(), parsed.iv());
    assert_eq!(der.encrypted_key().len(), 256);
    assert_eq!(der.subject_key_identifier(), &[0x11; 32]);
}

#[test]
fn python_vector_for_the_other_key_does_not_open_with_it_either_way_round() {
    let v = vectors();
    let c = v
        .cases
        .iter()
        .find(|c| c["name"] == "valid/data-key-32/indefinite")
        .unwrap();
    let ber = hex::decode(c["ber"].as_str().unwrap()).unwrap();
    let other = EphemeralRsaKey::from_pkcs8_der_for_tests(&v.other_key).unwrap();
    assert_eq!(
        other.open(&ber).unwrap_err(),
        RecipientError::DecryptionFailed
    );
}

#[test]
fn live_differential_against_python_cryptography() {
    let Some(python) = std::env::var_os("CUSTODY_TEST_PYTHON") else {
        eprintln!("skipped: CUSTODY_TEST_PYTHON is not set");
        return;
    };
    let keys: Vec<EphemeralRsaKey> = (0..6)
        .map(|_| EphemeralRsaKey::generate().unwrap())
        .collect();
    let request = serde_json::json!({
        "spki": keys.iter().map(|k| hex::encode(k.public_key_der())).collect::<Vec<_>>(),
    });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/gen_recipient_vectors.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .arg("live")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases = answer["cases"].as_array().unwrap();
    assert_eq!(cases.len(), keys.len());
    for (key, case) in keys.into_iter().zip(cases) {
        let ber = hex::decode(case["ber"].as_str().unwrap()).unwrap();
        let expected = hex::decode(case["plaintext"].as_str().unwrap()).unwrap();
        assert_eq!(key.open(&ber).unwrap().expose_secret(), &expected[..]);
    }
}

// ---------------------------------------------------------------------------
// The Rust-built structures: the key, padding, lengths
// ---------------------------------------------------------------------------

#[test]
fn ephemeral_key_is_a_fresh_rsa_2048_spki() {
    let a = EphemeralRsaKey::generate().unwrap();
    let b = EphemeralRsaKey::generate().unwrap();
    assert_ne!(a.public_key_der(), b.public_key_der());
    let public = rsa::PublicKey::from_public_key_der(a.public_key_der()).unwrap();
    assert_eq!(public.size() * 8, EPHEMERAL_RSA_BITS);
    assert_eq!(
        public.e().to_be_bytes_trimmed_vartime().as_ref(),
        &[1, 0, 1]
    );
    // DER SubjectPublicKeyInfo with rsaEncryption: 294 bytes for 2048 bits.
    assert_eq!(a.public_key_der().len(), 294);
    assert_eq!(format!("{a:?}"), "EphemeralRsaKey(..)");
}

#[test]
fn rust_built_structures_open_in_der_and_ber() {
    for style in [build::DER, build::BER] {
        let key = EphemeralRsaKey::generate().unwrap();
        let parts = build::Parts::new(b"a data key of thirty-two bytes!!");
        let ber = build::build(key.public_key_der(), &parts, style);
        let plaintext = key.open(&ber).unwrap();
        assert_eq!(
            plaintext.expose_secret(),
            b"a data key of thirty-two bytes!!"
        );
        assert_eq!(format!("{plaintext:?}"), "RecipientPlaintext(..)");
    }
}

/// Opens a structure whose padded content is `padded`.
fn open_padded(padded: Vec<u8>) -> Result<Vec<u8>, RecipientError> {
    let key = EphemeralRsaKey::generate().unwrap();
    let mut parts = build::Parts::new(b"");
    parts.padded = padded;
    let ber = build::build(key.public_key_der(), &parts, build::BER);
    key.open(&ber).map(|p| p.expose_secret().to_vec())
}

#[test]
fn padding_of_a_full_block_is_removed() {
    let mut padded = b"0123456789abcdef".to_vec();
    padded.extend([16u8; 16]);
    assert_eq!(open_padded(padded).unwrap(), b"0123456789abcdef");
}

#[test]
fn padding_byte_zero_is_refused_opaquely() {
    let mut padded = vec![7u8; 15];
    padded.push(0);
    assert_eq!(open_padded(padded), Err(RecipientError::DecryptionFailed));
}

#[test]
fn padding_byte_over_sixteen_is_refused_opaquely() {
    let mut padded = vec![17u8; 16];
    padded[15] = 17;
    assert_eq!(open_padded(padded), Err(RecipientError::DecryptionFailed));
}

#[test]
fn padding_with_an_inconsistent_byte_is_refused_opaquely() {
    // Four bytes of padding claimed, one of them not 4.
    let mut padded = vec![0x41u8; 12];
    padded.extend([4, 4, 3, 4]);
    assert_eq!(open_padded(padded), Err(RecipientError::DecryptionFailed));
    // The byte just before the padding may be anything.
    let mut padded = vec![0x41u8; 11];
    padded.extend([4, 4, 4, 4, 4]);
    assert_eq!(
        open_padded(padded).unwrap(),
        vec![0x41u8; 11].into_iter().chain([4]).collect::<Vec<_>>()
    );
}

#[test]
fn content_key_other_than_32_bytes_is_refused_opaquely() {
    let key = EphemeralRsaKey::generate().unwrap();
    let mut parts = build::Parts::new(b"x");
    parts.content_key = vec![9; 16];
    let ber = build::build(key.public_key_der(), &parts, build::BER);
    assert_eq!(
        key.open(&ber).unwrap_err(),
        RecipientError::DecryptionFailed
    );
}

#[test]
fn tampered_encrypted_key_is_refused_opaquely() {
    let key = EphemeralRsaKey::generate().unwrap();
    let ber = build::build(key.public_key_der(), &build::Parts::new(b"x"), build::DER);
    let parsed = CiphertextForRecipient::parse(&ber).unwrap();
    let at = ber
        .windows(parsed.encrypted_key().len())
        .position(|w| w == parsed.encrypted_key())
        .unwrap();
    let mut tampered = ber.clone();
    tampered[at + 100] ^= 0x80;
    assert_eq!(
        key.open(&tampered).unwrap_err(),
        RecipientError::DecryptionFailed
    );
}

// ---------------------------------------------------------------------------
// The BER walker: every refusal
// ---------------------------------------------------------------------------

fn ber_error(bytes: &[u8]) -> BerError {
    match CiphertextForRecipient::parse(bytes) {
        Err(RecipientError::Ber { source, .. }) => source,
        other => panic!("expected a BER error, got {other:?}"),
    }
}

fn valid_ber() -> Vec<u8> {
    let key = EphemeralRsaKey::generate().unwrap();
    build::build(key.public_key_der(), &build::Parts::new(b"k"), build::BER)
}

#[test]
fn ber_high_number_tag_refused() {
    assert_eq!(
        ber_error(&[0x1f, 0x81, 0x00, 0x00]),
        BerError::HighTagNumber
    );
    // Inside the structure too.
    let mut ber = valid_ber();
    ber[2] = 0x1f; // the OID's tag
    assert_eq!(ber_error(&ber), BerError::HighTagNumber);
}

#[test]
fn ber_length_of_five_octets_refused() {
    assert_eq!(
        ber_error(&[0x30, 0x85, 0, 0, 0, 0, 1, 0]),
        BerError::LengthTooLong
    );
}

#[test]
fn ber_reserved_length_refused() {
    assert_eq!(ber_error(&[0x30, 0xff, 0]), BerError::LengthTooLong);
}

#[test]
fn ber_indefinite_length_on_a_primitive_refused() {
    assert_eq!(
        ber_error(&[0x30, 0x80, 0x04, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00]),
        BerError::IndefinitePrimitive
    );
}

#[test]
fn ber_nesting_deeper_than_the_limit_refused() {
    let depth = MAX_BER_DEPTH + 1;
    let mut bytes = Vec::new();
    for _ in 0..depth {
        bytes.extend_from_slice(&[0x30, 0x80]);
    }
    for _ in 0..depth {
        bytes.extend_from_slice(&[0, 0]);
    }
    assert_eq!(ber_error(&bytes), BerError::TooDeep);
    // Definite lengths too: 17 nested empty... SEQUENCEs.
    let mut definite = vec![0x04, 0x00];
    for _ in 0..depth {
        definite = build::prim(0x30, &definite);
    }
    // The outer structures are read level by level; the ContentInfo's
    // first child is where the depth is exceeded.
    let mut wrapped = build::prim(0x06, &[0x2a]);
    wrapped.extend_from_slice(&definite);
    let err = CiphertextForRecipient::parse(&build::prim(0x30, &wrapped)).unwrap_err();
    assert!(matches!(err, RecipientError::ContentType), "{err:?}");
}

#[test]
fn ber_chunks_nested_deeper_than_the_limit_refused() {
    // A constructed OCTET STRING of constructed OCTET STRINGs, 20 deep.
    let mut chunk = build::prim(0x04, b"x");
    for _ in 0..20 {
        chunk = build::prim(0x24, &chunk);
    }
    let key = EphemeralRsaKey::generate().unwrap();
    let eci = build::prim(
        0x30,
        &[
            build::oid(build::DATA),
            build::prim(
                0x30,
                &[build::oid(build::AES256_CBC), build::prim(0x04, &[0; 16])].concat(),
            ),
            build::prim(0xa0, &chunk),
        ]
        .concat(),
    );
    let ktri_ber = build::build(key.public_key_der(), &build::Parts::new(b"k"), build::DER);
    // Splice: ContentInfo { oid, [0] { EnvelopedData { 2, SET{ktri}, eci } } }
    let set = extract_recipient_set(&ktri_ber);
    let env = build::prim(0x30, &[build::prim(0x02, &[2]), set, eci].concat());
    let ci = build::prim(
        0x30,
        &[build::oid(build::ENVELOPED_DATA), build::prim(0xa0, &env)].concat(),
    );
    assert_eq!(ber_error(&ci), BerError::TooDeep);
}

/// The DER `SET { KeyTransRecipientInfo }` of a DER-built structure.
fn extract_recipient_set(der: &[u8]) -> Vec<u8> {
    let start = der.iter().position(|b| *b == 0x31).unwrap();
    let len = match der[start + 1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (der[start + 2] as usize, 3),
        0x82 => (
            ((der[start + 2] as usize) << 8) | der[start + 3] as usize,
            4,
        ),
        _ => panic!(),
    };
    der[start..start + len.1 + len.0].to_vec()
}

#[test]
fn ber_end_of_contents_with_a_length_refused() {
    assert_eq!(
        ber_error(&[0x30, 0x80, 0x00, 0x01, 0x00]),
        BerError::BadEndOfContents
    );
}

#[test]
fn ber_end_of_contents_inside_a_definite_element_refused() {
    assert_eq!(
        ber_error(&[0x30, 0x02, 0x00, 0x00]),
        BerError::BadEndOfContents
    );
}

#[test]
fn ber_missing_end_of_contents_refused() {
    let mut ber = valid_ber();
    ber.truncate(ber.len() - 2);
    assert_eq!(ber_error(&ber), BerError::Truncated);
}

#[test]
fn ber_truncated_anywhere_refused_without_panic() {
    let ber = valid_ber();
    for cut in 0..ber.len() {
        let err = CiphertextForRecipient::parse(&ber[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                RecipientError::Ber { .. } | RecipientError::ContentLength(_)
            ),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn ber_trailing_bytes_refused() {
    let mut ber = valid_ber();
    ber.extend_from_slice(&[0x05, 0x00]);
    assert_eq!(ber_error(&ber), BerError::TrailingBytes);
}

#[test]
fn ber_chunk_that_is_not_an_octet_string_refused() {
    // Constructed [0] content whose chunk is a UTF8String.
    let key = EphemeralRsaKey::generate().unwrap();
    let ber = build::build(key.public_key_der(), &build::Parts::new(b"k"), build::BER);
    let mut bad = ber.clone();
    // The first chunk header `a0 80 04 10`: make the 04 a 0c.
    let at = ber
        .windows(4)
        .position(|w| w == [0xa0, 0x80, 0x04, 0x10])
        .unwrap();
    bad[at + 2] = 0x0c;
    assert_eq!(
        ber_error(&bad),
        BerError::UnexpectedTag {
            expected: 0x04,
            found: 0x0c
        }
    );
}

#[test]
fn oversize_structure_refused_before_reading() {
    let big = vec![0u8; MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES + 1];
    assert_eq!(
        CiphertextForRecipient::parse(&big),
        Err(RecipientError::TooLarge {
            len: MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES + 1,
            max: MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES
        })
    );
}

#[test]
fn not_enveloped_data_refused() {
    // ContentInfo { id-data, [0] ... }
    let ci = build::prim(
        0x30,
        &[
            build::oid(build::DATA),
            build::prim(0xa0, &build::prim(0x30, &[])),
        ]
        .concat(),
    );
    assert_eq!(
        CiphertextForRecipient::parse(&ci),
        Err(RecipientError::ContentType)
    );
}

#[test]
fn originator_info_refused() {
    let env = build::prim(
        0x30,
        &[
            build::prim(0x02, &[2]),
            build::prim(0xa0, &[]),
            build::prim(0x31, &[]),
        ]
        .concat(),
    );
    let ci = build::prim(
        0x30,
        &[build::oid(build::ENVELOPED_DATA), build::prim(0xa0, &env)].concat(),
    );
    assert_eq!(
        CiphertextForRecipient::parse(&ci),
        Err(RecipientError::Unsupported("originatorInfo"))
    );
}

#[test]
fn no_recipient_refused() {
    let env = build::prim(
        0x30,
        &[
            build::prim(0x02, &[2]),
            build::prim(0x31, &[]),
            build::prim(0x30, &[]),
        ]
        .concat(),
    );
    let ci = build::prim(
        0x30,
        &[build::oid(build::ENVELOPED_DATA), build::prim(0xa0, &env)].concat(),
    );
    assert_eq!(
        CiphertextForRecipient::parse(&ci),
        Err(RecipientError::RecipientCount(0))
    );
}

#[test]
fn negative_version_refused() {
    let env = build::prim(0x30, &[build::prim(0x02, &[0xff])].concat());
    let ci = build::prim(
        0x30,
        &[build::oid(build::ENVELOPED_DATA), build::prim(0xa0, &env)].concat(),
    );
    assert_eq!(
        CiphertextForRecipient::parse(&ci),
        Err(RecipientError::Ber {
            part: "EnvelopedData",
            source: BerError::Integer
        })
    );
}

// ---------------------------------------------------------------------------
// The fake NSM under the real verifier
// ---------------------------------------------------------------------------

#[test]
fn fake_nsm_document_binds_the_ephemeral_key_and_verifies_under_its_root() {
    let nsm = FakeNsm::new();
    let key = EphemeralRsaKey::generate().unwrap();
    let document = key
        .attest(&nsm, Some(b"manifest hash"), Some(b"nonce-1"))
        .unwrap();
    let verifier = Verifier::new(nsm.anchor().unwrap());
    let expected = Expectations::for_image(&pcr(0), &pcr(1), &pcr(2))
        .with_public_key(key.public_key_der())
        .with_user_data(b"manifest hash")
        .with_nonce(b"nonce-1");
    let verified = verifier
        .verify(&document, &expected, VerificationTime::At(T0))
        .unwrap();
    assert_eq!(verified.public_key(), Some(key.public_key_der()));
    assert_eq!(verified.module_id(), "i-test-enc0000");
    // Another key's document does not pass as this one's.
    let other = EphemeralRsaKey::generate().unwrap();
    let doc2 = other
        .attest(&nsm, Some(b"manifest hash"), Some(b"nonce-1"))
        .unwrap();
    assert_eq!(
        verifier.verify(&doc2, &expected, VerificationTime::At(T0)),
        Err(AttestationError::PublicKeyMismatch)
    );
}

#[test]
fn fake_nsm_document_refused_by_a_verifier_pinned_to_aws() {
    let nsm = FakeNsm::new();
    let document = nsm.attest(&AttestRequest::default()).unwrap();
    let aws = Verifier::new(TrustAnchor::aws_nitro_root_g1().unwrap());
    for time in [VerificationTime::At(T0), VerificationTime::DocumentTime] {
        assert_eq!(
            aws.verify(&document, &Expectations::any_image(), time),
            Err(AttestationError::UntrustedRoot)
        );
    }
}

#[test]
fn fake_nsm_refuses_inputs_over_the_nsm_limits() {
    let nsm = FakeNsm::new();
    let big = vec![0u8; 513];
    let huge = vec![0u8; 1025];
    let cases = [
        (
            AttestRequest {
                user_data: Some(&big),
                ..Default::default()
            },
            "user_data",
        ),
        (
            AttestRequest {
                nonce: Some(&big),
                ..Default::default()
            },
            "nonce",
        ),
        (
            AttestRequest {
                public_key: Some(&huge),
                ..Default::default()
            },
            "public_key",
        ),
    ];
    for (request, field) in cases {
        match nsm.attest(&request) {
            Err(NsmError::InputTooLarge(f)) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // At the limits it attests.
    let at_limit = vec![1u8; 512];
    nsm.attest(&AttestRequest {
        user_data: Some(&at_limit),
        nonce: Some(&at_limit),
        public_key: Some(&vec![2u8; 1024]),
    })
    .unwrap();
}

#[test]
fn fake_nsm_describes_its_pcrs_and_refuses_unknown_ones() {
    let nsm = FakeNsm::new();
    let pcr0 = nsm.describe_pcr(0).unwrap();
    assert_eq!(pcr0.value, pcr(0));
    assert!(pcr0.locked);
    assert!(matches!(
        nsm.describe_pcr(16),
        Err(NsmError::InvalidIndex(16))
    ));
    assert!(matches!(
        nsm.describe_pcr(300),
        Err(NsmError::InvalidIndex(300))
    ));
}

#[test]
fn fake_nsm_time_is_the_callers() {
    let nsm = FakeNsm::new();
    nsm.set_time_ms((T0 + 60) * 1000);
    let document = nsm.attest(&AttestRequest::default()).unwrap();
    let verifier = Verifier::new(nsm.anchor().unwrap());
    let verified = verifier
        .verify(
            &document,
            &Expectations::any_image(),
            VerificationTime::DocumentTime,
        )
        .unwrap();
    assert_eq!(verified.timestamp_ms(), (T0 + 60) * 1000);
    // A document from a fake under another template's root is refused by
    // this one's verifier.
    let mut other = Doc::valid();
    other.chain.root = custody_kms::nitro::fake::CertSpec::ca(0x40, "other root", 0, T0 * 2, None);
    let other_nsm = FakeNsm::with_template(other);
    let foreign = other_nsm.attest(&AttestRequest::default()).unwrap();
    assert_eq!(
        verifier.verify(
            &foreign,
            &Expectations::any_image(),
            VerificationTime::At(T0)
        ),
        Err(AttestationError::UntrustedRoot)
    );
}

/// The rid's subjectKeyIdentifier is not compared with the recipient key
/// (AWS documents no derivation for KMS's value; see
/// `CiphertextForRecipient::subject_key_identifier`): an answer opens
/// whatever identifier it carries, and the identifier read is the one
/// written.
#[test]
fn subject_key_identifier_is_read_but_not_compared_with_the_recipient_key() {
    let key_der = vectors().key;
    let spki = EphemeralRsaKey::from_pkcs8_der_for_tests(&key_der)
        .unwrap()
        .public_key_der()
        .to_vec();
    let plaintext = b"a data key of thirty-two bytes!!";
    let der = build::build(&spki, &build::Parts::new(plaintext), build::DER);
    // The builder's rid: [0] of 20 bytes 0xab, an identifier of no key.
    let rid = [&[0x80, 20][..], &[0xab; 20]].concat();
    let at = der.windows(rid.len()).position(|w| w == rid).unwrap();
    for other in [[0xcd; 20], [0x00; 20]] {
        let mut edited = der.clone();
        edited[at + 2..at + 22].copy_from_slice(&other);
        let parsed = CiphertextForRecipient::parse(&edited).unwrap();
        assert_eq!(parsed.subject_key_identifier(), &other);
        let key = EphemeralRsaKey::from_pkcs8_der_for_tests(&key_der).unwrap();
        assert_eq!(key.open(&edited).unwrap().expose_secret(), plaintext);
    }
    // The identifier does not make a foreign answer open: only the key
    // does.
    let other_key = EphemeralRsaKey::from_pkcs8_der_for_tests(&vectors().other_key).unwrap();
    assert!(matches!(
        other_key.open(&der),
        Err(RecipientError::DecryptionFailed)
    ));
}
