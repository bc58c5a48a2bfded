//! AWS Nitro attestation document verification (feature `nitro`): the two
//! real documents of `vectors/nitro/` (one production, one debug-mode)
//! verified at their pinned times and refused a day later, and a synthetic
//! chain under a test root (`support/nitro.rs`) for every rejection path,
//! one named test per check.
#![cfg(feature = "nitro")]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[path = "support/nitro.rs"]
mod synth;

use std::collections::BTreeMap;
use std::path::PathBuf;

use custody_core::cbor::{CborErrorKind, Value};
use custody_kms::nitro::{
    AWS_NITRO_ROOT_G1_SHA256, AttestationDocument, AttestationError, ChainPosition, Expectations,
    MAX_CABUNDLE, MAX_DOCUMENT_BYTES, TrustAnchor, VerificationTime, VerifiedAttestation, Verifier,
};
use sha2::{Digest, Sha256};
use synth::{Chain, DOC_MS, Doc, T0, basic_constraints, extension, key, key_usage, oid, pcr};

const DAY: u64 = 86_400;

// ---------------------------------------------------------------------------
// The real documents
// ---------------------------------------------------------------------------

fn vector(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../vectors/nitro")
        .join(path)
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(vector(path)).unwrap()
}

/// A real document, its summary (`payload_fields`, the pinned time).
struct Real {
    bytes: Vec<u8>,
    summary: serde_json::Value,
}

impl Real {
    fn production() -> Self {
        Self::load(
            "nitro_attest_sample/attestation.cose",
            "nitro_attest_sample/summary.json",
        )
    }

    fn debug_mode() -> Self {
        Self::load("eternis_sample/doc.cose.bin", "eternis_sample/summary.json")
    }

    fn load(doc: &str, summary: &str) -> Self {
        Self {
            bytes: read(doc),
            summary: serde_json::from_slice(&read(summary)).unwrap(),
        }
    }

    fn pinned_time(&self) -> u64 {
        self.summary["verification_time_unix_s"].as_u64().unwrap()
    }

    fn field(&self, name: &str) -> &serde_json::Value {
        &self.summary["payload_fields"][name]
    }

    fn hex_field(&self, name: &str) -> Option<Vec<u8>> {
        self.field(name).as_str().map(|h| hex::decode(h).unwrap())
    }

    fn pcr(&self, index: u8) -> Vec<u8> {
        hex::decode(self.field("pcrs")[index.to_string()].as_str().unwrap()).unwrap()
    }

    /// Every decoded field equals the summary's.
    fn assert_fields(&self, verified: &VerifiedAttestation) {
        assert_eq!(
            verified.module_id(),
            self.field("module_id").as_str().unwrap()
        );
        assert_eq!(verified.digest(), self.field("digest").as_str().unwrap());
        assert_eq!(
            verified.timestamp_ms(),
            self.field("timestamp_ms").as_u64().unwrap()
        );
        let expected: BTreeMap<u8, Vec<u8>> = self
            .field("pcrs")
            .as_object()
            .unwrap()
            .iter()
            .map(|(i, h)| {
                (
                    i.parse().unwrap(),
                    hex::decode(h.as_str().unwrap()).unwrap(),
                )
            })
            .collect();
        assert_eq!(verified.pcrs(), &expected);
        assert_eq!(
            verified.public_key(),
            self.hex_field("public_key").as_deref()
        );
        assert_eq!(verified.user_data(), self.hex_field("user_data").as_deref());
        assert_eq!(verified.nonce(), self.hex_field("nonce").as_deref());
        assert_eq!(
            verified.document().cabundle().len() as u64,
            self.field("cabundle_len").as_u64().unwrap()
        );
    }
}

fn aws() -> Verifier {
    Verifier::new(TrustAnchor::aws_nitro_root_g1().unwrap())
}

#[test]
fn aws_root_g1_is_pinned_by_its_published_fingerprint() {
    let anchor = TrustAnchor::aws_nitro_root_g1().unwrap();
    assert_eq!(
        hex::encode(AWS_NITRO_ROOT_G1_SHA256),
        "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
    );
    assert_eq!(anchor.fingerprint(), &AWS_NITRO_ROOT_G1_SHA256);
    let digest: [u8; 32] = Sha256::digest(anchor.der()).into();
    assert_eq!(digest, AWS_NITRO_ROOT_G1_SHA256);
    // The embedded DER is the PEM AWS publishes (vectors/nitro).
    let pem = String::from_utf8(read("aws_nitro_root_g1.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(anchor.der(), base64_decode(&b64));
    // And both real documents carry it as cabundle[0].
    for real in [Real::production(), Real::debug_mode()] {
        let doc = AttestationDocument::parse(&real.bytes).unwrap();
        assert_eq!(doc.cabundle()[0], anchor.der());
    }
    // Pinned by another fingerprint, the same certificate is refused.
    let mut other = AWS_NITRO_ROOT_G1_SHA256;
    other[0] ^= 1;
    assert_eq!(
        TrustAnchor::pinned(anchor.der(), &other),
        Err(AttestationError::UntrustedRoot)
    );
}

/// Standard base64 (RFC 4648 §4), for the PEM and `.b64` vectors.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn production_document_verifies_at_its_pinned_time() {
    let real = Real::production();
    let at = real.pinned_time();
    let verified = aws()
        .verify(
            &real.bytes,
            &Expectations::any_image(),
            VerificationTime::At(at),
        )
        .unwrap();
    real.assert_fields(&verified);
    assert_eq!(verified.verified_at(), at);
    assert!(!verified.document().is_tagged(), "the sample is untagged");
    // PCR0-4 of the image, compared exactly.
    let expected = Expectations::for_image(&real.pcr(0), &real.pcr(1), &real.pcr(2))
        .with_pcr(3, &real.pcr(3))
        .with_pcr(4, &real.pcr(4))
        .with_public_key(&real.hex_field("public_key").unwrap());
    aws()
        .verify(&real.bytes, &expected, VerificationTime::At(at))
        .unwrap();
}

#[test]
fn production_document_refused_a_day_later() {
    let real = Real::production();
    let err = aws()
        .verify(
            &real.bytes,
            &Expectations::any_image(),
            VerificationTime::At(real.pinned_time() + DAY),
        )
        .unwrap_err();
    // The instance CA (cabundle[3]) expires before the leaf; the chain is
    // checked from the top down.
    assert_eq!(
        err,
        AttestationError::Expired(ChainPosition::Intermediate(3))
    );
}

#[test]
fn production_document_refused_before_its_chain_was_issued() {
    let real = Real::production();
    let err = aws()
        .verify(
            &real.bytes,
            &Expectations::any_image(),
            VerificationTime::At(real.pinned_time() - DAY),
        )
        .unwrap_err();
    assert!(matches!(err, AttestationError::NotYetValid(_)), "{err:?}");
}

#[test]
fn production_document_verifies_at_its_own_time_when_archived() {
    let real = Real::production();
    let verified = aws()
        .verify(
            &real.bytes,
            &Expectations::any_image(),
            VerificationTime::DocumentTime,
        )
        .unwrap();
    assert_eq!(
        verified.verified_at(),
        real.field("timestamp_ms").as_u64().unwrap() / 1000
    );
}

#[test]
fn debug_mode_document_verifies_at_its_pinned_time_when_debug_is_allowed() {
    let real = Real::debug_mode();
    let expected = Expectations::any_image()
        .allow_debug_mode()
        .with_nonce(&real.hex_field("nonce").unwrap())
        .with_user_data(&real.hex_field("user_data").unwrap())
        .with_public_key(&real.hex_field("public_key").unwrap());
    let verified = aws()
        .verify(
            &real.bytes,
            &expected,
            VerificationTime::At(real.pinned_time()),
        )
        .unwrap();
    real.assert_fields(&verified);
    // The base64 form is the same document.
    let b64 = String::from_utf8(read("eternis_sample/doc.cose.b64")).unwrap();
    assert_eq!(base64_decode(&b64), real.bytes);
}

#[test]
fn debug_mode_document_refused_a_day_later() {
    let real = Real::debug_mode();
    let err = aws()
        .verify(
            &real.bytes,
            &Expectations::any_image().allow_debug_mode(),
            VerificationTime::At(real.pinned_time() + DAY),
        )
        .unwrap_err();
    assert!(matches!(err, AttestationError::Expired(_)), "{err:?}");
}

#[test]
fn debug_mode_document_refused_unless_debug_is_allowed() {
    let real = Real::debug_mode();
    for time in [
        VerificationTime::At(real.pinned_time()),
        VerificationTime::DocumentTime,
    ] {
        let err = aws()
            .verify(&real.bytes, &Expectations::any_image(), time)
            .unwrap_err();
        assert_eq!(err, AttestationError::DebugMode(0));
        assert_eq!(err.check(), "debug-mode");
    }
}

#[test]
fn real_documents_refuse_a_wrong_pcr_nonce_or_user_data() {
    let real = Real::production();
    let at = VerificationTime::At(real.pinned_time());
    let mut pcr0 = real.pcr(0);
    pcr0[47] ^= 1;
    let expected = Expectations::for_image(&pcr0, &real.pcr(1), &real.pcr(2));
    assert_eq!(
        aws().verify(&real.bytes, &expected, at),
        Err(AttestationError::PcrMismatch(0))
    );
    // PCR8 (the image's signing certificate) is all zeros in this
    // document: an expectation of another value fails.
    let expected = Expectations::any_image().with_pcr(8, &[0x88; 48]);
    assert_eq!(
        aws().verify(&real.bytes, &expected, at),
        Err(AttestationError::PcrMismatch(8))
    );
    // It has no nonce and no user data: expecting one fails.
    let expected = Expectations::any_image().with_nonce(b"session");
    assert_eq!(
        aws().verify(&real.bytes, &expected, at),
        Err(AttestationError::NonceMismatch)
    );
    let expected = Expectations::any_image().with_user_data(b"");
    assert_eq!(
        aws().verify(&real.bytes, &expected, at),
        Err(AttestationError::UserDataMismatch)
    );

    let real = Real::debug_mode();
    let at = VerificationTime::At(real.pinned_time());
    let mut nonce = real.hex_field("nonce").unwrap();
    nonce[0] ^= 1;
    let expected = Expectations::any_image()
        .allow_debug_mode()
        .with_nonce(&nonce);
    assert_eq!(
        aws().verify(&real.bytes, &expected, at),
        Err(AttestationError::NonceMismatch)
    );
}

#[test]
fn real_document_refused_under_another_root() {
    let real = Real::production();
    let verifier = Verifier::new(Doc::valid().anchor().unwrap());
    assert_eq!(
        verifier.verify(
            &real.bytes,
            &Expectations::any_image(),
            VerificationTime::DocumentTime
        ),
        Err(AttestationError::UntrustedRoot)
    );
}

#[test]
fn real_document_with_an_edited_payload_fails_the_cose_signature() {
    let real = Real::production();
    let doc = AttestationDocument::parse(&real.bytes).unwrap();
    let module_id = doc.module_id().as_bytes().to_vec();
    // Change one character of module_id inside the payload: still well
    // formed, no longer what AWS signed.
    let at = real
        .bytes
        .windows(module_id.len())
        .position(|w| w == module_id)
        .unwrap();
    let mut edited = real.bytes.clone();
    edited[at] = if edited[at] == b'i' { b'j' } else { b'i' };
    assert_eq!(
        aws().verify(
            &edited,
            &Expectations::any_image(),
            VerificationTime::DocumentTime
        ),
        Err(AttestationError::CoseSignature)
    );
    // And a flipped bit in the signature's s.
    let mut edited = real.bytes.clone();
    let last = edited.len() - 1;
    edited[last] ^= 1;
    assert_eq!(
        aws().verify(
            &edited,
            &Expectations::any_image(),
            VerificationTime::DocumentTime
        ),
        Err(AttestationError::CoseSignature)
    );
}

#[test]
fn real_document_verifies_tagged_too() {
    let real = Real::production();
    let mut tagged = vec![0xd2];
    tagged.extend_from_slice(&real.bytes);
    let verified = aws()
        .verify(
            &tagged,
            &Expectations::any_image(),
            VerificationTime::At(real.pinned_time()),
        )
        .unwrap();
    assert!(verified.document().is_tagged());
    // Under any other tag (98: COSE_Sign) it is refused.
    tagged[0] = 0xd8;
    tagged.insert(1, 98);
    let err = AttestationDocument::parse(&tagged).unwrap_err();
    assert!(matches!(
        err,
        AttestationError::Cbor { part: "COSE_Sign1", source } if source.kind() == CborErrorKind::TagNotAllowed { tag: 98 }
    ));
}

#[test]
fn real_document_refused_with_a_trailing_byte_or_truncated() {
    let real = Real::production();
    let mut long = real.bytes.clone();
    long.push(0);
    let err = AttestationDocument::parse(&long).unwrap_err();
    assert!(matches!(
        err,
        AttestationError::Cbor { source, .. } if source.kind() == CborErrorKind::TrailingBytes
    ));
    for cut in [1, 100, real.bytes.len() / 2, real.bytes.len() - 1] {
        assert!(matches!(
            AttestationDocument::parse(&real.bytes[..cut]),
            Err(AttestationError::Cbor { .. })
        ));
    }
}

// ---------------------------------------------------------------------------
// The synthetic chain: the baseline
// ---------------------------------------------------------------------------

fn verify(
    doc: &Doc,
    bytes: &[u8],
    expected: &Expectations,
) -> Result<VerifiedAttestation, AttestationError> {
    Verifier::new(doc.anchor().unwrap()).verify(bytes, expected, VerificationTime::At(T0))
}

/// The synthetic document's image.
fn image() -> Expectations {
    Expectations::for_image(&pcr(0), &pcr(1), &pcr(2))
}

fn verify_doc(doc: &Doc) -> Result<VerifiedAttestation, AttestationError> {
    verify(doc, &doc.encode(), &image())
}

#[test]
fn synthetic_document_verifies() {
    let doc = Doc::valid();
    let expected = image()
        .with_pcr(3, &pcr(3))
        .with_pcr(8, &pcr(8))
        .with_nonce(doc.nonce.as_deref().unwrap())
        .with_user_data(doc.user_data.as_deref().unwrap())
        .with_public_key(doc.public_key.as_deref().unwrap())
        .with_max_age(10);
    let verified = verify(&doc, &doc.encode(), &expected).unwrap();
    assert_eq!(verified.module_id(), doc.module_id);
    assert_eq!(verified.timestamp_ms(), DOC_MS);
    assert_eq!(verified.pcrs(), &doc.pcrs);
    assert_eq!(verified.nonce(), doc.nonce.as_deref());
    // Tagged, too.
    let tagged = Doc {
        tagged: true,
        ..doc
    };
    assert!(verify_doc(&tagged).unwrap().document().is_tagged());
}

#[test]
fn synthetic_document_verifies_at_its_own_time_long_after() {
    let doc = Doc::valid();
    let verifier = Verifier::new(doc.anchor().unwrap());
    let bytes = doc.encode();
    let archived = verifier
        .verify(&bytes, &image(), VerificationTime::DocumentTime)
        .unwrap();
    assert_eq!(archived.verified_at(), DOC_MS / 1000);
    assert_eq!(
        verifier.verify(&bytes, &image(), VerificationTime::At(T0 + 365 * DAY)),
        // The regional CA (20 days) is the first, from the top, to expire.
        Err(AttestationError::Expired(ChainPosition::Intermediate(1)))
    );
}

#[test]
fn certificates_are_valid_on_both_ends_of_their_window() {
    let doc = Doc::valid();
    let verifier = Verifier::new(doc.anchor().unwrap());
    let bytes = doc.encode();
    let leaf = &doc.chain.leaf;
    let doc_s = DOC_MS / 1000;
    // The document's own second, up to the leaf's notAfter inclusive.
    for at in [doc_s, leaf.not_after] {
        verifier
            .verify(&bytes, &image(), VerificationTime::At(at))
            .unwrap();
    }
    assert_eq!(
        verifier.verify(&bytes, &image(), VerificationTime::At(leaf.not_after + 1)),
        Err(AttestationError::Expired(ChainPosition::Leaf))
    );
}

// ---------------------------------------------------------------------------
// The chain: one test per check
// ---------------------------------------------------------------------------

fn with_chain(edit: impl FnOnce(&mut Chain)) -> Doc {
    let mut doc = Doc::valid();
    edit(&mut doc.chain);
    doc
}

#[test]
fn expired_leaf_is_refused() {
    let doc = with_chain(|c| c.leaf.not_after = T0 - 1);
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::Expired(ChainPosition::Leaf))
    );
}

#[test]
fn not_yet_valid_intermediate_is_refused() {
    let doc = with_chain(|c| c.intermediates[0].not_before = T0 + 1);
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::NotYetValid(ChainPosition::Intermediate(
            1
        )))
    );
}

#[test]
fn expired_root_is_refused() {
    let doc = with_chain(|c| c.root.not_after = T0 - 1);
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::Expired(ChainPosition::Root))
    );
}

#[test]
fn chain_under_another_root_is_refused() {
    // The document carries a chain under a second test root; the verifier
    // pins the first.
    let pinned = Doc::valid().anchor().unwrap();
    let doc = with_chain(|c| c.root.key = key(0x20));
    assert_eq!(
        Verifier::new(pinned).verify(&doc.encode(), &image(), VerificationTime::At(T0)),
        Err(AttestationError::UntrustedRoot)
    );
    // Nor does AWS's root accept it.
    assert_eq!(
        aws().verify(&doc.encode(), &image(), VerificationTime::At(T0)),
        Err(AttestationError::UntrustedRoot)
    );
}

#[test]
fn bundle_root_is_never_trusted_even_with_the_pinned_subject() {
    // cabundle[0] claims the pinned root's name but has another key and
    // signs the rest: its fingerprint differs.
    let pinned = Doc::valid().anchor().unwrap();
    let doc = with_chain(|c| c.root.key = key(0x21));
    assert_eq!(doc.chain.root.subject, Doc::valid().chain.root.subject);
    assert_eq!(
        Verifier::new(pinned).verify(&doc.encode(), &image(), VerificationTime::At(T0)),
        Err(AttestationError::UntrustedRoot)
    );
}

#[test]
fn broken_link_signature_is_refused() {
    // cabundle[2] names cabundle[1] as issuer but another key signed it.
    let doc = with_chain(|c| c.intermediates[1].signed_by = Some(key(0x30)));
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::ChainSignature(
            ChainPosition::Intermediate(2)
        ))
    );
    let doc = with_chain(|c| c.leaf.signed_by = Some(key(0x31)));
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::ChainSignature(ChainPosition::Leaf))
    );
}

#[test]
fn issuer_name_mismatch_is_refused() {
    let doc = with_chain(|c| c.leaf.issuer = Some("someone else".to_owned()));
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::IssuerMismatch(ChainPosition::Leaf))
    );
}

/// Test bytes that outlive the payload being edited.
fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

#[test]
fn missing_intermediate_is_refused() {
    // Drop the zonal CA from the bundle: the instance CA's issuer is then
    // not the certificate above it.
    let doc = Doc::valid();
    let mut bundle = doc.chain.build().cabundle;
    bundle.remove(2);
    let bundle: Vec<&'static [u8]> = bundle.into_iter().map(leak).collect();
    let bytes =
        doc.encode_with(|e| e[5].1 = Value::Array(bundle.into_iter().map(Value::Bytes).collect()));
    assert_eq!(
        verify(&doc, &bytes, &image()),
        Err(AttestationError::IssuerMismatch(
            ChainPosition::Intermediate(2)
        ))
    );
}

#[test]
fn ecdsa_with_sha256_is_refused() {
    let doc = with_chain(|c| {
        c.intermediates[0].outer_alg = oid::ECDSA_WITH_SHA256;
        c.intermediates[0].inner_alg = oid::ECDSA_WITH_SHA256;
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::SignatureAlgorithm(
            ChainPosition::Intermediate(1)
        ))
    );
    let doc = with_chain(|c| {
        c.leaf.outer_alg = oid::ECDSA_WITH_SHA256;
        c.leaf.inner_alg = oid::ECDSA_WITH_SHA256;
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::SignatureAlgorithm(ChainPosition::Leaf))
    );
}

#[test]
fn outer_and_inner_signature_algorithms_must_agree() {
    let doc = with_chain(|c| c.intermediates[2].inner_alg = oid::ECDSA_WITH_SHA256);
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::SignatureAlgorithm(
            ChainPosition::Intermediate(3)
        ))
    );
}

#[test]
fn key_on_another_curve_is_refused() {
    let doc = with_chain(|c| c.leaf.curve = oid::PRIME256V1);
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::PublicKey(ChainPosition::Leaf))
    );
}

#[test]
fn version_1_certificate_is_refused() {
    let doc = with_chain(|c| c.leaf.v1 = true);
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::CertificateVersion(ChainPosition::Leaf))
    );
}

#[test]
fn missing_basic_constraints_is_refused() {
    let doc = with_chain(|c| {
        c.intermediates[1].extensions.remove(0);
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::BasicConstraints(
            ChainPosition::Intermediate(2),
            "missing"
        ))
    );
}

#[test]
fn non_critical_basic_constraints_is_refused() {
    let doc = with_chain(|c| {
        c.intermediates[0].extensions[0] = extension(
            oid::BASIC_CONSTRAINTS,
            false,
            &basic_constraints(true, Some(2)),
        );
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::BasicConstraints(
            ChainPosition::Intermediate(1),
            "not marked critical"
        ))
    );
}

#[test]
fn ca_certificate_with_ca_false_is_refused() {
    let doc = with_chain(|c| {
        c.intermediates[2].extensions[0] = extension(
            oid::BASIC_CONSTRAINTS,
            true,
            &basic_constraints(false, None),
        );
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::BasicConstraints(
            ChainPosition::Intermediate(3),
            "cA is false"
        ))
    );
}

#[test]
fn ca_without_key_cert_sign_is_refused() {
    let doc = with_chain(|c| {
        c.intermediates[1].extensions[1] = extension(
            oid::KEY_USAGE,
            true,
            &key_usage(&[synth::DIGITAL_SIGNATURE, synth::CRL_SIGN]),
        );
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::KeyUsage(
            ChainPosition::Intermediate(2),
            "no keyCertSign"
        ))
    );
    let doc = with_chain(|c| {
        c.intermediates[1].extensions.remove(1);
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::KeyUsage(
            ChainPosition::Intermediate(2),
            "missing"
        ))
    );
}

#[test]
fn path_length_constraint_violated_is_refused() {
    // The regional CA allows one CA below it; two follow.
    let doc = with_chain(|c| {
        c.intermediates[0].extensions[0] = extension(
            oid::BASIC_CONSTRAINTS,
            true,
            &basic_constraints(true, Some(1)),
        );
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::PathLength(ChainPosition::Intermediate(1)))
    );
    // The root, too: pathLen 2 over three intermediates.
    let doc = with_chain(|c| {
        c.root.extensions[0] = extension(
            oid::BASIC_CONSTRAINTS,
            true,
            &basic_constraints(true, Some(2)),
        );
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::PathLength(ChainPosition::Root))
    );
    // pathLen 0 on the last CA is exactly enough.
    assert!(verify_doc(&Doc::valid()).is_ok());
}

#[test]
fn leaf_that_is_a_ca_is_refused() {
    let doc = with_chain(|c| {
        c.leaf.extensions[0] =
            extension(oid::BASIC_CONSTRAINTS, true, &basic_constraints(true, None));
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::BasicConstraints(
            ChainPosition::Leaf,
            "the leaf is a CA"
        ))
    );
}

#[test]
fn leaf_without_digital_signature_is_refused() {
    let doc = with_chain(|c| {
        c.leaf.extensions[1] =
            extension(oid::KEY_USAGE, false, &key_usage(&[synth::KEY_CERT_SIGN]));
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::KeyUsage(
            ChainPosition::Leaf,
            "no digitalSignature"
        ))
    );
}

#[test]
fn unknown_critical_extension_is_refused() {
    let doc = with_chain(|c| {
        c.intermediates[0].extensions.push(extension(
            oid::CERTIFICATE_POLICIES,
            true,
            &[0x30, 0x00],
        ));
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::Extension(ChainPosition::Intermediate(1)))
    );
    // Not critical: ignored, as RFC 5280 allows.
    let doc = with_chain(|c| {
        c.intermediates[0].extensions.push(extension(
            oid::CERTIFICATE_POLICIES,
            false,
            &[0x30, 0x00],
        ));
    });
    assert!(verify_doc(&doc).is_ok());
}

#[test]
fn duplicate_extension_is_refused() {
    let doc = with_chain(|c| {
        let again = c.leaf.extensions[0].clone();
        c.leaf.extensions.push(again);
    });
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::Extension(ChainPosition::Leaf))
    );
}

#[test]
fn certificate_that_is_not_der_is_refused() {
    let doc = Doc::valid();
    let bytes = doc.encode_with(|entries| entries[4].1 = Value::Bytes(b"not a certificate"));
    assert_eq!(
        verify(&doc, &bytes, &image()),
        Err(AttestationError::CertificateDecode(ChainPosition::Leaf))
    );
    // A byte after a valid certificate.
    let mut leaf = doc.chain.build().leaf;
    leaf.push(0);
    let leaf = leak(leaf);
    let bytes = doc.encode_with(|entries| entries[4].1 = Value::Bytes(leaf));
    assert_eq!(
        verify(&doc, &bytes, &image()),
        Err(AttestationError::CertificateDecode(ChainPosition::Leaf))
    );
}

#[test]
fn trust_anchor_must_be_a_self_signed_p384_ca() {
    let chain = Chain::valid().build();
    assert!(TrustAnchor::from_der(&chain.root).is_ok());
    // An intermediate is not self-signed.
    assert_eq!(
        TrustAnchor::from_der(&chain.cabundle[1]),
        Err(AttestationError::IssuerMismatch(ChainPosition::Root))
    );
    // A leaf is no CA (it fails before its issuer is looked at).
    assert_eq!(
        TrustAnchor::from_der(&chain.leaf),
        Err(AttestationError::BasicConstraints(
            ChainPosition::Root,
            "cA is false"
        ))
    );
    assert_eq!(
        TrustAnchor::from_der(b"junk"),
        Err(AttestationError::CertificateDecode(ChainPosition::Root))
    );
    // A root whose self-signature is broken.
    let mut spec = Chain::valid().root;
    spec.signed_by = Some(key(0x40));
    assert_eq!(
        TrustAnchor::from_der(&spec.build(None)),
        Err(AttestationError::ChainSignature(ChainPosition::Root))
    );
}

// ---------------------------------------------------------------------------
// COSE_Sign1: one test per check
// ---------------------------------------------------------------------------

#[test]
fn bad_cose_signature_is_refused() {
    let doc = Doc {
        cose_key: Some(key(0x50)),
        ..Doc::valid()
    };
    assert_eq!(verify_doc(&doc), Err(AttestationError::CoseSignature));
    assert_eq!(AttestationError::CoseSignature.check(), "cose-signature");
}

#[test]
fn zero_signature_is_refused() {
    let doc = Doc::valid();
    let built = doc.chain.build();
    let payload = doc.payload_with(&built, |_| {});
    let bytes = Doc::envelope(
        false,
        &doc.protected(),
        Value::Map(vec![]),
        &payload,
        &[0; 96],
    );
    assert_eq!(
        verify(&doc, &bytes, &image()),
        Err(AttestationError::CoseSignature)
    );
}

#[test]
fn algorithm_other_than_es384_is_refused() {
    for alg in [-7, -36, -37, 1] {
        let doc = Doc {
            alg,
            ..Doc::valid()
        };
        assert_eq!(
            verify_doc(&doc),
            Err(AttestationError::CoseAlgorithm),
            "alg {alg}"
        );
    }
}

/// A document with the given headers, correctly signed over them.
fn with_headers(protected: &[u8], unprotected: Value<'_>) -> (Doc, Vec<u8>) {
    let doc = Doc::valid();
    let built = doc.chain.build();
    let payload = doc.payload_with(&built, |_| {});
    let signature = doc.sign(protected, &payload);
    let bytes = Doc::envelope(false, protected, unprotected, &payload, &signature);
    (doc, bytes)
}

#[test]
fn missing_or_unprotected_algorithm_is_refused() {
    // No alg.
    let (doc, bytes) = with_headers(&Value::Map(vec![]).to_vec(), Value::Map(vec![]));
    assert_eq!(
        verify(&doc, &bytes, &image()),
        Err(AttestationError::CoseAlgorithm)
    );
    // An empty protected header (the empty map's short form).
    let (doc, bytes) = with_headers(&[], Value::Map(vec![]));
    assert_eq!(
        verify(&doc, &bytes, &image()),
        Err(AttestationError::CoseAlgorithm)
    );
    // alg only in the unprotected bucket.
    let alg = || Value::Map(vec![(Value::Unsigned(1), Value::from_i64(-35))]);
    let (doc, bytes) = with_headers(&Value::Map(vec![]).to_vec(), alg());
    assert_eq!(
        verify(&doc, &bytes, &image()),
        Err(AttestationError::CoseAlgorithm)
    );
    // alg in both.
    let (doc, bytes) = with_headers(&alg().to_vec(), alg());
    assert_eq!(
        verify(&doc, &bytes, &image()),
        Err(AttestationError::CoseAlgorithm)
    );
    // alg as text.
    let protected = Value::Map(vec![(Value::Unsigned(1), Value::Text("ES384"))]).to_vec();
    let (doc, bytes) = with_headers(&protected, Value::Map(vec![]));
    assert_eq!(
        verify(&doc, &bytes, &image()),
        Err(AttestationError::CoseAlgorithm)
    );
}

#[test]
fn critical_header_parameters_are_refused() {
    let protected = Value::Map(vec![
        (Value::Unsigned(1), Value::from_i64(-35)),
        (Value::Unsigned(2), Value::Array(vec![Value::Unsigned(99)])),
    ])
    .to_vec();
    let (doc, bytes) = with_headers(&protected, Value::Map(vec![]));
    assert_eq!(
        verify(&doc, &bytes, &image()),
        Err(AttestationError::CoseCritical)
    );
}

#[test]
fn unknown_header_parameters_are_ignored() {
    // A key id (label 4) in either bucket is not critical.
    let protected = Value::Map(vec![
        (Value::Unsigned(1), Value::from_i64(-35)),
        (Value::Unsigned(4), Value::Bytes(b"kid")),
    ])
    .to_vec();
    let unprotected = Value::Map(vec![(Value::Unsigned(4), Value::Bytes(b"kid"))]);
    let (doc, bytes) = with_headers(&protected, unprotected);
    assert!(verify(&doc, &bytes, &image()).is_ok());
}

#[test]
fn signature_not_96_bytes_is_refused() {
    let doc = Doc::valid();
    let built = doc.chain.build();
    let payload = doc.payload_with(&built, |_| {});
    let good = doc.sign(&doc.protected(), &payload);
    for len in [0, 64, 95, 97, 104] {
        let mut signature = good.clone();
        signature.resize(len, 0);
        let bytes = Doc::envelope(
            false,
            &doc.protected(),
            Value::Map(vec![]),
            &payload,
            &signature,
        );
        assert_eq!(
            AttestationDocument::parse(&bytes),
            Err(AttestationError::SignatureLength { len })
        );
    }
}

#[test]
fn envelope_that_is_not_a_cose_sign1_is_refused() {
    let doc = Doc::valid();
    let built = doc.chain.build();
    let payload = doc.payload_with(&built, |_| {});
    let protected = doc.protected();
    let signature = doc.sign(&protected, &payload);
    let cases: Vec<(Value<'_>, &str)> = vec![
        (Value::Map(vec![]), "not an array"),
        (
            Value::Array(vec![
                Value::Bytes(&protected),
                Value::Map(vec![]),
                Value::Bytes(&payload),
            ]),
            "not 4 elements",
        ),
        (
            Value::Array(vec![
                Value::Map(vec![]),
                Value::Map(vec![]),
                Value::Bytes(&payload),
                Value::Bytes(&signature),
            ]),
            "protected header not a byte string",
        ),
        (
            Value::Array(vec![
                Value::Bytes(&protected),
                Value::Array(vec![]),
                Value::Bytes(&payload),
                Value::Bytes(&signature),
            ]),
            "unprotected header not a map",
        ),
        (
            Value::Array(vec![
                Value::Bytes(&protected),
                Value::Map(vec![]),
                Value::Null,
                Value::Bytes(&signature),
            ]),
            "detached payload",
        ),
        (
            Value::Array(vec![
                Value::Bytes(&protected),
                Value::Map(vec![]),
                Value::Text("payload"),
                Value::Bytes(&signature),
            ]),
            "payload not a byte string",
        ),
        (
            Value::Array(vec![
                Value::Bytes(&protected),
                Value::Map(vec![]),
                Value::Bytes(&payload),
                Value::Text("signature"),
            ]),
            "signature not a byte string",
        ),
    ];
    for (envelope, reason) in cases {
        assert_eq!(
            AttestationDocument::parse(&envelope.to_vec()),
            Err(AttestationError::CoseStructure(reason))
        );
    }
    // A protected header that is not a map.
    let protected = Value::Array(vec![]).to_vec();
    let (_, bytes) = with_headers(&protected, Value::Map(vec![]));
    assert_eq!(
        AttestationDocument::parse(&bytes),
        Err(AttestationError::CoseStructure(
            "protected header not a map"
        ))
    );
    // A payload that is not a map.
    let bytes = Doc::envelope(
        false,
        &doc.protected(),
        Value::Map(vec![]),
        &[0x80],
        &signature,
    );
    assert_eq!(
        AttestationDocument::parse(&bytes),
        Err(AttestationError::CoseStructure("payload not a map"))
    );
}

fn cbor_kind(
    result: Result<AttestationDocument, AttestationError>,
) -> (&'static str, CborErrorKind) {
    match result {
        Err(AttestationError::Cbor { part, source }) => (part, source.kind()),
        other => panic!("not a CBOR error: {other:?}"),
    }
}

#[test]
fn non_strict_cbor_is_refused_in_every_part() {
    let doc = Doc::valid();
    let good = doc.encode();
    // The envelope as an indefinite-length array (0x9f ... 0xff).
    let mut indefinite = vec![0x9f];
    indefinite.extend_from_slice(&good[1..]);
    indefinite.push(0xff);
    assert_eq!(
        cbor_kind(AttestationDocument::parse(&indefinite)),
        ("COSE_Sign1", CborErrorKind::IndefiniteLength)
    );
    // The array's length in a two-byte form.
    let mut long_form = vec![0x98, 0x04];
    long_form.extend_from_slice(&good[1..]);
    assert_eq!(
        cbor_kind(AttestationDocument::parse(&long_form)),
        ("COSE_Sign1", CborErrorKind::NonMinimal)
    );
    // A duplicate payload key, correctly signed.
    let bytes = doc.encode_with(|entries| {
        entries.push((Value::Text("nonce"), Value::Null));
    });
    assert_eq!(
        cbor_kind(AttestationDocument::parse(&bytes)),
        ("payload", CborErrorKind::DuplicateKey)
    );
    // A float in the payload.
    let built = doc.chain.build();
    let mut payload = doc.payload_with(&built, |entries| {
        entries[2].1 = Value::Unsigned(0x1234_5678_9abc);
    });
    let at = payload
        .windows(9)
        .position(|w| w == [0x1b, 0, 0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc])
        .unwrap();
    payload[at] = 0xfb; // the same eight bytes as a double
    let protected = doc.protected();
    let signature = doc.sign(&protected, &payload);
    let bytes = Doc::envelope(false, &protected, Value::Map(vec![]), &payload, &signature);
    assert_eq!(
        cbor_kind(AttestationDocument::parse(&bytes)),
        ("payload", CborErrorKind::Float)
    );
    // Trailing bytes in the protected header.
    let mut protected = doc.protected();
    protected.push(0x00);
    let (_, bytes) = with_headers(&protected, Value::Map(vec![]));
    assert_eq!(
        cbor_kind(AttestationDocument::parse(&bytes)),
        ("protected header", CborErrorKind::TrailingBytes)
    );
}

#[test]
fn document_above_the_size_limit_is_refused() {
    let mut bytes = Doc::valid().encode();
    bytes.resize(MAX_DOCUMENT_BYTES + 1, 0);
    assert_eq!(
        AttestationDocument::parse(&bytes),
        Err(AttestationError::TooLarge {
            len: MAX_DOCUMENT_BYTES + 1,
            max: MAX_DOCUMENT_BYTES
        })
    );
}

// ---------------------------------------------------------------------------
// The payload: one test per check
// ---------------------------------------------------------------------------

fn parse_with(
    edit: impl FnOnce(&mut Vec<(Value<'_>, Value<'_>)>),
) -> Result<AttestationDocument, AttestationError> {
    AttestationDocument::parse(&Doc::valid().encode_with(edit))
}

const REQUIRED: [&str; 6] = [
    "module_id",
    "digest",
    "timestamp",
    "pcrs",
    "certificate",
    "cabundle",
];

#[test]
fn missing_required_field_is_refused() {
    for field in REQUIRED {
        let result = parse_with(|entries| entries.retain(|(k, _)| k.as_text() != Some(field)));
        assert_eq!(result, Err(AttestationError::MissingField(field)));
    }
}

#[test]
fn null_required_field_is_refused() {
    for field in REQUIRED {
        let result = parse_with(|entries| {
            for (k, v) in entries.iter_mut() {
                if k.as_text() == Some(field) {
                    *v = Value::Null;
                }
            }
        });
        assert_eq!(result, Err(AttestationError::NullField(field)));
    }
}

#[test]
fn optional_fields_may_be_absent_null_or_empty() {
    for optional in ["public_key", "user_data", "nonce"] {
        let doc =
            parse_with(|entries| entries.retain(|(k, _)| k.as_text() != Some(optional))).unwrap();
        let null = parse_with(|entries| {
            for (k, v) in entries.iter_mut() {
                if k.as_text() == Some(optional) {
                    *v = Value::Null;
                }
            }
        })
        .unwrap();
        let empty = parse_with(|entries| {
            for (k, v) in entries.iter_mut() {
                if k.as_text() == Some(optional) {
                    *v = Value::Bytes(&[]);
                }
            }
        })
        .unwrap();
        let get = |d: &AttestationDocument| match optional {
            "public_key" => d.public_key().map(<[u8]>::to_vec),
            "user_data" => d.user_data().map(<[u8]>::to_vec),
            _ => d.nonce().map(<[u8]>::to_vec),
        };
        assert_eq!(get(&doc), None);
        assert_eq!(get(&null), None);
        assert_eq!(get(&empty), Some(vec![]));
    }
}

#[test]
fn digest_other_than_sha384_is_refused() {
    for digest in ["SHA256", "SHA512", "sha384", "SHA384 ", ""] {
        let doc = Doc {
            digest: digest.to_owned(),
            ..Doc::valid()
        };
        assert_eq!(
            AttestationDocument::parse(&doc.encode()),
            Err(AttestationError::Digest)
        );
    }
}

#[test]
fn unknown_payload_field_is_refused() {
    assert_eq!(
        parse_with(|e| e.push((Value::Text("extra"), Value::Null))),
        Err(AttestationError::UnknownField)
    );
    assert_eq!(
        parse_with(|e| e.push((Value::Unsigned(1), Value::Null))),
        Err(AttestationError::UnknownField)
    );
}

#[test]
fn field_of_the_wrong_type_is_refused() {
    let cases: [(usize, Value<'static>, &str); 9] = [
        (0, Value::Bytes(b"id"), "module_id"),
        (1, Value::Unsigned(384), "digest"),
        (2, Value::Negative(5), "timestamp"),
        (3, Value::Array(vec![]), "pcrs"),
        (4, Value::Text("cert"), "certificate"),
        (5, Value::Bytes(b"bundle"), "cabundle"),
        (6, Value::Text("key"), "public_key"),
        (7, Value::Bool(true), "user_data"),
        (8, Value::Unsigned(1), "nonce"),
    ];
    for (index, value, field) in cases {
        let result = parse_with(|e| e[index].1 = value);
        assert_eq!(result, Err(AttestationError::FieldType(field)));
    }
    // A PCR value that is not bytes.
    let result = parse_with(|e| {
        e[3].1 = Value::Map(vec![(Value::Unsigned(0), Value::Text("pcr"))]);
    });
    assert_eq!(result, Err(AttestationError::FieldType("pcrs")));
    // A cabundle entry that is not bytes.
    let result = parse_with(|e| e[5].1 = Value::Array(vec![Value::Null]));
    assert_eq!(result, Err(AttestationError::FieldType("cabundle")));
}

fn field_length(result: Result<AttestationDocument, AttestationError>) -> (&'static str, usize) {
    match result {
        Err(AttestationError::FieldLength { field, len, .. }) => (field, len),
        other => panic!("not a length error: {other:?}"),
    }
}

#[test]
fn fields_outside_their_documented_sizes_are_refused() {
    static BIG: [u8; 1025] = [7; 1025];
    assert_eq!(
        field_length(parse_with(|e| e[0].1 = Value::Text(""))),
        ("module_id", 0)
    );
    assert_eq!(
        field_length(parse_with(|e| e[3].1 = Value::Map(vec![]))),
        ("pcrs", 0)
    );
    assert_eq!(
        field_length(parse_with(|e| e[4].1 = Value::Bytes(&[]))),
        ("certificate", 0)
    );
    assert_eq!(
        field_length(parse_with(|e| e[4].1 = Value::Bytes(&BIG))),
        ("certificate", 1025)
    );
    assert_eq!(
        field_length(parse_with(|e| e[5].1 = Value::Array(vec![]))),
        ("cabundle", 0)
    );
    assert_eq!(
        field_length(parse_with(
            |e| e[5].1 = Value::Array(vec![Value::Bytes(&[])])
        )),
        ("cabundle", 0)
    );
    assert_eq!(
        field_length(parse_with(
            |e| e[5].1 = Value::Array(vec![Value::Bytes(&BIG)])
        )),
        ("cabundle", 1025)
    );
    assert_eq!(
        field_length(parse_with(|e| e[6].1 = Value::Bytes(&BIG))),
        ("public_key", 1025)
    );
    assert_eq!(
        field_length(parse_with(|e| e[7].1 = Value::Bytes(&BIG[..513]))),
        ("user_data", 513)
    );
    assert_eq!(
        field_length(parse_with(|e| e[8].1 = Value::Bytes(&BIG[..513]))),
        ("nonce", 513)
    );
    // The largest allowed sizes pass.
    let doc = parse_with(|e| {
        e[6].1 = Value::Bytes(&BIG[..1024]);
        e[7].1 = Value::Bytes(&BIG[..512]);
        e[8].1 = Value::Bytes(&BIG[..512]);
    })
    .unwrap();
    assert_eq!(doc.public_key().map(<[u8]>::len), Some(1024));
    assert_eq!(doc.nonce().map(<[u8]>::len), Some(512));
}

#[test]
fn cabundle_longer_than_the_limit_is_refused() {
    let root = leak(Chain::valid().build().root);
    let long: Vec<Value<'static>> =
        std::iter::repeat_n(Value::Bytes(root), MAX_CABUNDLE + 1).collect();
    let doc = Doc::valid();
    let bytes = doc.encode_with(|e| e[5].1 = Value::Array(long));
    assert_eq!(
        AttestationDocument::parse(&bytes),
        Err(AttestationError::ChainTooLong {
            len: MAX_CABUNDLE + 1,
            max: MAX_CABUNDLE
        })
    );
}

#[test]
fn pcr_index_outside_0_to_31_is_refused() {
    for index in [
        Value::Unsigned(32),
        Value::Unsigned(u64::MAX),
        Value::Negative(0),
        Value::Text("0"),
    ] {
        let result = parse_with(|e| {
            e[3].1 = Value::Map(vec![(index, Value::Bytes(&[0; 48]))]);
        });
        assert_eq!(result, Err(AttestationError::PcrIndex));
    }
    // 31 is the last index.
    let doc =
        parse_with(|e| e[3].1 = Value::Map(vec![(Value::Unsigned(31), Value::Bytes(&[1; 48]))]))
            .unwrap();
    assert_eq!(doc.pcr(31), Some(&[1; 48][..]));
}

#[test]
fn pcr_not_48_bytes_is_refused() {
    for len in [0, 32, 47, 49, 64] {
        let value = leak(vec![1u8; len]);
        let result =
            parse_with(|e| e[3].1 = Value::Map(vec![(Value::Unsigned(5), Value::Bytes(value))]));
        assert_eq!(result, Err(AttestationError::PcrLength { index: 5, len }));
    }
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

#[test]
fn document_older_than_the_maximum_age_is_refused() {
    let doc = Doc::valid();
    let age = T0 - DOC_MS / 1000;
    assert!(verify(&doc, &doc.encode(), &image().with_max_age(age)).is_ok());
    assert_eq!(
        verify(&doc, &doc.encode(), &image().with_max_age(age - 1)),
        Err(AttestationError::TooOld {
            age_s: age,
            max_s: age - 1
        })
    );
}

#[test]
fn future_dated_document_is_refused() {
    let doc = Doc {
        timestamp_ms: (T0 + 5) * 1000,
        ..Doc::valid()
    };
    assert_eq!(verify_doc(&doc), Err(AttestationError::FutureDated));
    // Within the allowed clock skew it passes.
    assert!(verify(&doc, &doc.encode(), &image().with_clock_skew(5)).is_ok());
    assert_eq!(
        verify(&doc, &doc.encode(), &image().with_clock_skew(4)),
        Err(AttestationError::FutureDated)
    );
    // The same second (milliseconds later) is not the future.
    let doc = Doc {
        timestamp_ms: T0 * 1000 + 999,
        ..Doc::valid()
    };
    assert!(verify_doc(&doc).is_ok());
}

#[test]
fn timestamp_outside_the_leaf_validity_is_refused() {
    // Made before its leaf was issued, checked at a time the chain is valid.
    let doc = Doc {
        timestamp_ms: (T0 - 3600) * 1000,
        ..Doc::valid()
    };
    assert_eq!(
        verify_doc(&doc),
        Err(AttestationError::TimestampOutsideLeaf)
    );
}

#[test]
fn archived_document_is_checked_at_its_own_timestamp() {
    // A document whose timestamp falls after its leaf expired fails at its
    // own time, as the leaf's.
    let doc = Doc {
        timestamp_ms: (Chain::valid().leaf.not_after + 1) * 1000,
        ..Doc::valid()
    };
    let verifier = Verifier::new(doc.anchor().unwrap());
    assert_eq!(
        verifier.verify(&doc.encode(), &image(), VerificationTime::DocumentTime),
        Err(AttestationError::Expired(ChainPosition::Leaf))
    );
    // And no freshness applies to an archived document.
    let doc = Doc::valid();
    let verifier = Verifier::new(doc.anchor().unwrap());
    assert!(
        verifier
            .verify(
                &doc.encode(),
                &image().with_max_age(0),
                VerificationTime::DocumentTime
            )
            .is_ok()
    );
}

// ---------------------------------------------------------------------------
// The caller's policy
// ---------------------------------------------------------------------------

#[test]
fn all_zero_pcrs_are_refused_unless_debug_is_allowed() {
    for index in 0..=2u8 {
        let mut doc = Doc::valid();
        doc.pcrs.insert(index, vec![0; 48]);
        assert_eq!(
            verify(&doc, &doc.encode(), &Expectations::any_image()),
            Err(AttestationError::DebugMode(index))
        );
        assert!(
            verify(
                &doc,
                &doc.encode(),
                &Expectations::any_image().allow_debug_mode()
            )
            .is_ok()
        );
    }
    // Allowing debug mode does not skip the PCR comparison.
    let mut doc = Doc::valid();
    doc.pcrs.insert(0, vec![0; 48]);
    assert_eq!(
        verify(&doc, &doc.encode(), &image().allow_debug_mode()),
        Err(AttestationError::PcrMismatch(0))
    );
}

#[test]
fn pcr_mismatch_is_refused() {
    let doc = Doc::valid();
    for index in [0u8, 1, 2, 3, 8] {
        let mut wrong = pcr(index);
        wrong[0] ^= 0x80;
        let expected = image().with_pcr(index, &wrong);
        assert_eq!(
            verify(&doc, &doc.encode(), &expected),
            Err(AttestationError::PcrMismatch(index))
        );
    }
    // A PCR the document does not have.
    let mut doc = Doc::valid();
    doc.pcrs.remove(&8);
    assert_eq!(
        verify(&doc, &doc.encode(), &image().with_pcr(8, &pcr(8))),
        Err(AttestationError::PcrMismatch(8))
    );
    // A prefix of the value is not the value.
    let doc = Doc::valid();
    assert_eq!(
        verify(
            &doc,
            &doc.encode(),
            &Expectations::for_image(&pcr(0)[..32], &pcr(1), &pcr(2))
        ),
        Err(AttestationError::PcrMismatch(0))
    );
}

#[test]
fn nonce_mismatch_is_refused() {
    let doc = Doc::valid();
    assert_eq!(
        verify(&doc, &doc.encode(), &image().with_nonce(b"another session")),
        Err(AttestationError::NonceMismatch)
    );
    let absent = Doc {
        nonce: None,
        ..Doc::valid()
    };
    assert_eq!(
        verify(&absent, &absent.encode(), &image().with_nonce(b"")),
        Err(AttestationError::NonceMismatch)
    );
}

#[test]
fn user_data_mismatch_is_refused() {
    let doc = Doc::valid();
    let mut other = doc.user_data.clone().unwrap();
    other.pop();
    assert_eq!(
        verify(&doc, &doc.encode(), &image().with_user_data(&other)),
        Err(AttestationError::UserDataMismatch)
    );
    let absent = Doc {
        user_data: None,
        ..Doc::valid()
    };
    assert_eq!(
        verify(&absent, &absent.encode(), &image().with_user_data(&other)),
        Err(AttestationError::UserDataMismatch)
    );
}

#[test]
fn public_key_mismatch_is_refused() {
    let doc = Doc::valid();
    assert_eq!(
        verify(
            &doc,
            &doc.encode(),
            &image().with_public_key(b"attacker key")
        ),
        Err(AttestationError::PublicKeyMismatch)
    );
    let absent = Doc {
        public_key: None,
        ..Doc::valid()
    };
    assert_eq!(
        verify(
            &absent,
            &absent.encode(),
            &image().with_public_key(b"enclave session key")
        ),
        Err(AttestationError::PublicKeyMismatch)
    );
}

#[test]
fn every_error_names_its_check() {
    // The messages the CLI prints say which check failed.
    let cases = [
        (
            AttestationError::Expired(ChainPosition::Intermediate(3)),
            "cabundle[3] has expired",
        ),
        (AttestationError::CoseSignature, "COSE signature"),
        (AttestationError::DebugMode(0), "debug mode"),
        (AttestationError::PcrMismatch(2), "PCR2"),
        (AttestationError::UntrustedRoot, "pinned root"),
        (AttestationError::Digest, "digest"),
    ];
    for (err, words) in cases {
        assert!(err.to_string().contains(words), "{err}");
    }
}
