//! The bodies of the `pkcs11_uri`, `ec_spki`, `nitro_document`,
//! `nitro_recipient` and `nitro_frame` cargo-fuzz targets in `fuzz/`. **Not part of the API**: hidden from the docs, and free to change
//! in any release.
//!
//! `fuzz/fuzz_targets/<name>.rs` calls `fuzz_<name>` in one line, and
//! `tests/fuzz_corpus.rs` (stable, in CI) feeds it every input under
//! `fuzz/seeds/<name>/` and `fuzz/regressions/<name>/`. They **panic when a
//! property fails**.

use std::fmt::Write as _;
use std::path::Path;

use custody_core::PublicKey;
use custody_core::cbor::{self, Limits, Value};

#[cfg(feature = "nitro-transport")]
use crate::nitro::transport::{Message, TransportError, read_frame, split_frame};
use crate::nitro::{
    AttestationDocument, AttestationError, Expectations, MAX_CABUNDLE, MAX_CERTIFICATE_BYTES,
    MAX_DOCUMENT_BYTES, MAX_PUBLIC_KEY_BYTES, MAX_USER_DATA_BYTES, TrustAnchor, VerificationTime,
    Verifier,
};
use crate::nitro::{
    BerError, CiphertextForRecipient, EphemeralRsaKey, MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES,
    RecipientError,
};
use crate::spki::secp256k1_point;
use crate::{ObjectType, Pkcs11Uri};

/// The body of a fuzz target: arbitrary bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target of this crate, by name.
pub const TARGETS: &[(&str, Target)] = &[
    ("pkcs11_uri", fuzz_pkcs11_uri),
    ("ec_spki", fuzz_ec_spki),
    ("nitro_document", fuzz_nitro_document),
    ("nitro_recipient", fuzz_nitro_recipient),
    // The enclave link (feature `nitro-transport`, which brings tokio's I/O
    // traits: not implied by `fuzzing`, so that the crate's dev-dependency
    // on itself pulls no tokio into what `cargo deny` sees; fuzz/ switches
    // it on).
    #[cfg(feature = "nitro-transport")]
    ("nitro_frame", fuzz_nitro_frame),
];

/// `Pkcs11Uri::parse`: never a panic; an accepted URI, written back
/// canonically from its accessors (every byte of every value as `%XX`),
/// parses to the same attributes, and parsing that text twice gives equal
/// results that write the same text again.
#[expect(
    clippy::panic,
    reason = "a failed property must abort the fuzz run: that is the report"
)]
pub fn fuzz_pkcs11_uri(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = Pkcs11Uri::parse(s) else {
        return;
    };
    let canonical = canonical_uri(&uri);
    let again = match Pkcs11Uri::parse(&canonical) {
        Ok(u) => u,
        Err(e) => panic!("the canonical URI {canonical:?} re-parses: {e:?}"),
    };
    assert_eq!(again.token(), uri.token(), "token");
    assert_eq!(again.manufacturer(), uri.manufacturer(), "manufacturer");
    assert_eq!(again.serial(), uri.serial(), "serial");
    assert_eq!(again.model(), uri.model(), "model");
    assert_eq!(again.slot_id(), uri.slot_id(), "slot-id");
    assert_eq!(again.object(), uri.object(), "object");
    assert_eq!(again.id(), uri.id(), "id");
    assert_eq!(again.object_type(), uri.object_type(), "type");
    assert_eq!(again.pin_source(), uri.pin_source(), "pin-source");
    assert_eq!(again.module_path(), uri.module_path(), "module-path");
    assert_eq!(again.module_name(), uri.module_name(), "module-name");
    assert_eq!(again, uri, "every field");
    let third = match Pkcs11Uri::parse(&canonical) {
        Ok(u) => u,
        Err(e) => panic!("the canonical URI {canonical:?} parses twice: {e:?}"),
    };
    assert_eq!(third, again, "parsing is deterministic");
    assert_eq!(canonical_uri(&again), canonical, "stable text");
}

/// Every byte of `value` as `%XX`.
fn escape(out: &mut String, value: &[u8]) {
    for b in value {
        let _ = write!(out, "%{b:02X}");
    }
}

/// The URI of `uri`'s attributes, every value fully percent-encoded.
fn canonical_uri(uri: &Pkcs11Uri) -> String {
    fn path_bytes(p: Option<&Path>) -> Option<&[u8]> {
        p.map(|p| p.as_os_str().as_encoded_bytes())
    }
    let slot_id = uri.slot_id().map(|n| n.to_string());
    let object_type = uri.object_type().map(|t| match t {
        ObjectType::Public => "public",
        ObjectType::Private => "private",
        ObjectType::Cert => "cert",
        ObjectType::SecretKey => "secret-key",
        ObjectType::Data => "data",
    });
    let path: [(&str, Option<&[u8]>); 8] = [
        ("token", uri.token().map(str::as_bytes)),
        ("manufacturer", uri.manufacturer().map(str::as_bytes)),
        ("serial", uri.serial().map(str::as_bytes)),
        ("model", uri.model().map(str::as_bytes)),
        ("slot-id", slot_id.as_deref().map(str::as_bytes)),
        ("object", uri.object().map(str::as_bytes)),
        ("id", uri.id()),
        ("type", object_type.map(str::as_bytes)),
    ];
    let query: [(&str, Option<&[u8]>); 3] = [
        ("pin-source", path_bytes(uri.pin_source())),
        ("module-path", path_bytes(uri.module_path())),
        ("module-name", uri.module_name().map(str::as_bytes)),
    ];
    let mut out = String::from("pkcs11:");
    for (i, (name, value)) in path
        .iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .enumerate()
    {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name);
        out.push('=');
        escape(&mut out, value);
    }
    for (i, (name, value)) in query
        .iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .enumerate()
    {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        out.push('=');
        escape(&mut out, value);
    }
    out
}

/// The DER of a secp256k1 `SubjectPublicKeyInfo` up to the 65 bytes of an
/// uncompressed point: `SEQUENCE(86) { SEQUENCE(16) { OID id-ecPublicKey,
/// OID secp256k1 }, BIT STRING(66) 00 }`.
pub const SECP256K1_SPKI_PREFIX: [u8; 23] = [
    0x30, 0x56, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x0a, 0x03, 0x42, 0x00,
];

/// A DER definite length (X.690 §10.1: the shortest form).
fn der_length(out: &mut Vec<u8>, len: usize) {
    let bytes = len.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let significant = &bytes[first..];
    match significant {
        [] => out.push(0),
        [b] if *b < 0x80 => out.push(*b),
        _ => {
            out.push(0x80 | u8::try_from(significant.len()).unwrap_or(0x7f));
            out.extend_from_slice(significant);
        }
    }
}

fn der_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    der_length(out, value.len());
    out.extend_from_slice(value);
}

/// The DER `SubjectPublicKeyInfo` of an EC key on secp256k1 whose
/// subjectPublicKey is `point` (written independently of the reader).
fn canonical_spki(point: &[u8]) -> Vec<u8> {
    let mut algorithm = Vec::new();
    der_tlv(
        &mut algorithm,
        0x06,
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01],
    );
    der_tlv(&mut algorithm, 0x06, &[0x2b, 0x81, 0x04, 0x00, 0x0a]);
    let mut bits = vec![0];
    bits.extend_from_slice(point);
    let mut body = Vec::new();
    der_tlv(&mut body, 0x30, &algorithm);
    der_tlv(&mut body, 0x03, &bits);
    let mut out = Vec::new();
    der_tlv(&mut out, 0x30, &body);
    out
}

/// `secp256k1_point` (the reader of KMS `GetPublicKey` answers): never a
/// panic. Its documented contract is the SEC 1 point *as encoded* (the BIT
/// STRING's bytes, not checked to be on the curve: its caller does that
/// with `PublicKey::from_sec1_bytes`), so for an accepted input:
///
/// - the point is not empty, and the input is exactly the canonical DER
///   `SubjectPublicKeyInfo` of that point (the reader is strict DER, not
///   BER: shortest lengths, no trailing bytes); for a 65-byte point that is
///   [`SECP256K1_SPKI_PREFIX`] ‖ point;
/// - when `PublicKey::from_sec1_bytes` takes the point (what the signer
///   pins), a 65-byte point is already its `04‖x‖y`, and the canonical
///   SPKI of `04‖x‖y` is read back to the same point and key.
#[expect(
    clippy::panic,
    reason = "a failed property must abort the fuzz run: that is the report"
)]
pub fn fuzz_ec_spki(data: &[u8]) {
    let Ok(point) = secp256k1_point(data) else {
        return;
    };
    assert!(!point.is_empty(), "an accepted point is not empty");
    assert_eq!(
        canonical_spki(point),
        data,
        "an accepted input is the canonical DER of its point"
    );
    if point.len() == 65 {
        assert_eq!(data[..23], SECP256K1_SPKI_PREFIX, "the fixed prefix");
    }
    let Ok(key) = PublicKey::from_sec1_bytes(point) else {
        return;
    };
    let uncompressed = key.to_uncompressed();
    if point.len() == 65 {
        assert_eq!(point, &uncompressed[..], "a 65-byte point is 04‖x‖y");
    }
    let mut canonical = SECP256K1_SPKI_PREFIX.to_vec();
    canonical.extend_from_slice(&uncompressed);
    assert_eq!(canonical_spki(&uncompressed), canonical, "the fixed prefix");
    let again = match secp256k1_point(&canonical) {
        Ok(p) => p,
        Err(e) => panic!("the canonical SPKI of a key is read: {e:?}"),
    };
    assert_eq!(again, &uncompressed[..], "the same point");
    match PublicKey::from_sec1_bytes(again) {
        Ok(k) => assert!(k == key, "the same key"),
        Err(e) => panic!("the point read back is a key: {e:?}"),
    }
}

/// The AWS Nitro root G1 of the real documents in the seeds.
#[expect(
    clippy::panic,
    reason = "a failed property must abort the fuzz run: that is the report"
)]
fn aws_verifier() -> Verifier {
    match TrustAnchor::aws_nitro_root_g1() {
        Ok(anchor) => Verifier::new(anchor),
        Err(e) => panic!("the embedded AWS root is a valid anchor: {e:?}"),
    }
}

/// `AttestationDocument::parse` and `Verifier::verify` on arbitrary bytes:
/// never a panic, and for an accepted document:
///
/// - every field within its documented bounds (size, PCR indexes 0..=31
///   and 48-byte values, `cabundle` 1..=8 certificates of 1..=1024 bytes,
///   `user_data`/`nonce` at most 512 bytes, `public_key` at most 1024,
///   a non-empty `module_id`, `digest` `"SHA384"`);
/// - the payload it kept decodes (strict CBOR) to exactly those fields, and
///   the protected header to a map with `alg` −35;
/// - the envelope rebuilt from its parts (untagged, empty unprotected
///   header) parses to the same document;
/// - verification against AWS's root at the document's own time gives a
///   verified document with the very fields parsed, or a typed error.
#[expect(
    clippy::panic,
    reason = "a failed property must abort the fuzz run: that is the report"
)]
pub fn fuzz_nitro_document(data: &[u8]) {
    let document = match AttestationDocument::parse(data) {
        Ok(d) => d,
        Err(AttestationError::TooLarge { len, max }) => {
            assert!(len == data.len() && len > max && max == MAX_DOCUMENT_BYTES);
            return;
        }
        Err(_) => return,
    };
    assert!(data.len() <= MAX_DOCUMENT_BYTES);
    assert!(!document.module_id().is_empty(), "module_id non-empty");
    assert_eq!(document.digest(), "SHA384");
    assert!(!document.pcrs().is_empty(), "pcrs non-empty");
    for (index, pcr) in document.pcrs() {
        assert!(
            *index <= 31 && pcr.len() == 48,
            "PCR{index}: {} bytes",
            pcr.len()
        );
    }
    let certificates = || {
        std::iter::once(document.certificate()).chain(document.cabundle().iter().map(Vec::as_slice))
    };
    assert!((1..=MAX_CABUNDLE).contains(&document.cabundle().len()));
    assert!(certificates().all(|c| (1..=MAX_CERTIFICATE_BYTES).contains(&c.len())));
    assert!(
        document
            .user_data()
            .is_none_or(|u| u.len() <= MAX_USER_DATA_BYTES)
    );
    assert!(
        document
            .nonce()
            .is_none_or(|n| n.len() <= MAX_USER_DATA_BYTES)
    );
    assert!(
        document
            .public_key()
            .is_none_or(|k| k.len() <= MAX_PUBLIC_KEY_BYTES)
    );
    assert_eq!(document.signature().len(), 96);

    // What it kept is what it read.
    let limits = Limits::DEFAULT;
    let header = match cbor::decode(document.protected_header(), &limits) {
        Ok(h) => h,
        Err(e) => panic!("the protected header kept decodes: {e:?}"),
    };
    assert_eq!(header.get_int_key(1).and_then(Value::as_i64), Some(-35));
    let payload = match cbor::decode(document.payload(), &limits) {
        Ok(p) => p,
        Err(e) => panic!("the payload kept decodes: {e:?}"),
    };
    let bytes_of = |name: &str| payload.get_text_key(name).and_then(Value::as_bytes);
    assert_eq!(
        payload.get_text_key("module_id").and_then(Value::as_text),
        Some(document.module_id())
    );
    assert_eq!(
        payload.get_text_key("timestamp").and_then(Value::as_u64),
        Some(document.timestamp_ms())
    );
    assert_eq!(bytes_of("certificate"), Some(document.certificate()));
    assert_eq!(bytes_of("public_key"), document.public_key());
    assert_eq!(bytes_of("user_data"), document.user_data());
    assert_eq!(bytes_of("nonce"), document.nonce());
    let pcrs = payload
        .get_text_key("pcrs")
        .and_then(Value::as_map)
        .map(<[_]>::len);
    assert_eq!(pcrs, Some(document.pcrs().len()), "one PCR per entry");

    // The envelope rebuilt from its parts is the same document.
    let rebuilt = Value::Array(vec![
        Value::Bytes(document.protected_header()),
        Value::Map(vec![]),
        Value::Bytes(document.payload()),
        Value::Bytes(document.signature()),
    ])
    .to_vec();
    match AttestationDocument::parse(&rebuilt) {
        Ok(again) => {
            assert!(!again.is_tagged());
            assert_eq!(again.payload(), document.payload());
            assert_eq!(again.pcrs(), document.pcrs());
            assert_eq!(again.cabundle(), document.cabundle());
        }
        Err(e) => panic!("the rebuilt envelope parses: {e:?}"),
    }

    // Verification (once: a real document's chain is six P-384
    // signatures): a typed result, and a verified document is the parsed
    // one, checked at its own time.
    let expected = Expectations::any_image().allow_debug_mode();
    if let Ok(verified) = aws_verifier().verify(data, &expected, VerificationTime::DocumentTime) {
        assert_eq!(verified.document(), &document, "verified what was parsed");
        assert_eq!(verified.verified_at(), document.timestamp_ms() / 1000);
    }
}

/// A DER TLV (shortest definite length), for the canonical re-encodings.
fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_length(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// The DER of a `CiphertextForRecipient` with `parsed`'s fields, written
/// independently of the reader (RSAES-OAEP-params with SHA-256 and
/// MGF1-SHA-256, NULL hash parameters).
fn canonical_recipient(parsed: &CiphertextForRecipient) -> Vec<u8> {
    const OAEP: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07];
    const MGF1: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
    const SHA256: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    const AES256_CBC: [u8; 9] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
    const DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    const ENVELOPED: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
    let sha256 = der(0x30, &[der(0x06, &SHA256), der(0x05, &[])].concat());
    let params = der(
        0x30,
        &[
            der(0xa0, &sha256),
            der(
                0xa1,
                &der(0x30, &[der(0x06, &MGF1), sha256.clone()].concat()),
            ),
        ]
        .concat(),
    );
    let ktri = der(
        0x30,
        &[
            der(0x02, &[2]),
            der(0x80, parsed.subject_key_identifier()),
            der(0x30, &[der(0x06, &OAEP), params].concat()),
            der(0x04, parsed.encrypted_key()),
        ]
        .concat(),
    );
    let eci = der(
        0x30,
        &[
            der(0x06, &DATA),
            der(
                0x30,
                &[der(0x06, &AES256_CBC), der(0x04, parsed.iv())].concat(),
            ),
            der(0x80, parsed.encrypted_content()),
        ]
        .concat(),
    );
    let enveloped = der(0x30, &[der(0x02, &[2]), der(0x31, &ktri), eci].concat());
    der(
        0x30,
        &[der(0x06, &ENVELOPED), der(0xa0, &enveloped)].concat(),
    )
}

/// One RSA-2048 test key for the whole run (PKCS#8 DER), made once: an
/// accepted structure is opened with it, which it was not made for.
fn fuzz_key() -> Option<&'static [u8]> {
    use rsa::pkcs8::EncodePrivateKey as _;
    static KEY: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).ok()?;
        Some(key.to_pkcs8_der().ok()?.as_bytes().to_vec())
    })
    .as_deref()
}

/// `CiphertextForRecipient::parse` (the BER walker) on arbitrary bytes:
/// never a panic; `TooLarge` only over the limit; for an accepted input,
/// a 16-byte IV and whole blocks of content, every field no longer than
/// the input, and the DER written from its fields (independently of the
/// reader) parses to the same fields; opening it with a key it was not
/// made for is the opaque `DecryptionFailed`, nothing else.
#[expect(
    clippy::panic,
    reason = "a failed property must abort the fuzz run: that is the report"
)]
pub fn fuzz_nitro_recipient(data: &[u8]) {
    let parsed = match CiphertextForRecipient::parse(data) {
        Ok(p) => p,
        Err(RecipientError::TooLarge { len, max }) => {
            assert!(len == data.len() && len > max && max == MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES);
            return;
        }
        Err(RecipientError::Ber {
            source: BerError::TooDeep,
            ..
        }) => {
            // Only reachable with more nesting than the bytes could hold
            // were every level two bytes: a cheap sanity bound.
            assert!(data.len() >= 2 * crate::nitro::MAX_BER_DEPTH);
            return;
        }
        Err(RecipientError::DecryptionFailed | RecipientError::KeyGeneration) => {
            panic!("parse never decrypts")
        }
        Err(_) => return,
    };
    assert!(data.len() <= MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES);
    let content = parsed.encrypted_content();
    assert!(
        !content.is_empty() && content.len() % 16 == 0,
        "whole blocks"
    );
    assert!(content.len() <= data.len());
    assert!(parsed.encrypted_key().len() <= data.len());
    assert!(parsed.subject_key_identifier().len() <= data.len());
    let canonical = canonical_recipient(&parsed);
    match CiphertextForRecipient::parse(&canonical) {
        Ok(again) => assert_eq!(again, parsed, "the DER of its fields reads the same"),
        // The canonical DER can only be larger than the limit if the input was
        // close to it (BER chunks are counted once in DER).
        Err(RecipientError::TooLarge { .. }) => {}
        Err(e) => panic!("the DER of an accepted structure parses: {e:?}"),
    }
    if let Some(der) = fuzz_key() {
        match EphemeralRsaKey::from_pkcs8_der_for_tests(der) {
            Ok(key) => assert_eq!(
                key.open_parsed(&parsed).map(|_| ()),
                Err(RecipientError::DecryptionFailed)
            ),
            Err(e) => panic!("the fuzz key loads: {e:?}"),
        }
    }
}

/// The enclave link's frame and message decoders on arbitrary bytes:
/// never a panic; `split_frame` (on a slice) and `read_frame` (on a
/// stream) agree on every frame of the input, frame by frame; a frame
/// read is `len ‖ payload` of the bytes consumed; a message decoded
/// re-encodes to its payload exactly.
#[cfg(feature = "nitro-transport")]
#[expect(
    clippy::panic,
    reason = "a failed property must abort the fuzz run: that is the report"
)]
pub fn fuzz_nitro_frame(data: &[u8]) {
    let mut rest = data;
    let mut reader: &[u8] = data;
    loop {
        let sliced = split_frame(rest);
        let streamed = custody_core::Pending::later(read_frame(&mut reader)).wait();
        match (&sliced, &streamed) {
            (Ok((payload, after)), Ok(read)) => {
                assert_eq!(*payload, &read[..], "the same payload");
                let consumed = rest.len() - after.len();
                assert_eq!(consumed, 4 + payload.len());
                let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
                assert_eq!(rest[..4], len.to_be_bytes());
                assert_eq!(
                    reader.len(),
                    after.len(),
                    "the stream is where the slice is"
                );
                if let Ok(message) = Message::decode(payload) {
                    assert_eq!(message.encode(), *payload, "canonical message");
                }
                rest = after;
            }
            (Err(TransportError::Closed), Err(TransportError::Closed)) => return,
            (
                Err(TransportError::Truncated {
                    expected: a,
                    got: b,
                }),
                Err(TransportError::Truncated {
                    expected: c,
                    got: d,
                }),
            ) => {
                assert_eq!((a, b), (c, d));
                return;
            }
            (Err(TransportError::EmptyFrame), Err(TransportError::EmptyFrame)) => return,
            (
                Err(TransportError::Oversize { len: a, .. }),
                Err(TransportError::Oversize { len: b, .. }),
            ) => {
                assert_eq!(a, b);
                return;
            }
            (a, b) => panic!("the decoders disagree: {a:?} vs {b:?}"),
        }
    }
}
