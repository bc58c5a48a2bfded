//! The bodies of the cargo-fuzz targets in `fuzz/`, one function per
//! decoder of untrusted input. **Not part of the API**: hidden from the docs,
//! and free to change in any release.
//!
//! They live here, and not in the fuzz crate, so that two callers run the
//! very same code: each `fuzz/fuzz_targets/<target>.rs` (nightly features,
//! libFuzzer) calls one of them in one line, and `tests/fuzz_corpus.rs`
//! (stable, in CI) feeds them every committed seed and regression input
//! under `fuzz/seeds/<target>/` and `fuzz/regressions/<target>/`.
//!
//! Each function takes arbitrary bytes and **panics when a property fails**:
//! that is how libFuzzer and the corpus test learn of a bug. Beyond "the
//! decoder does not panic", each checks what the decoder promises: the
//! error kind it returns for bad input, and for accepted input a round trip
//! through the matching encoder (decode, encode, decode again: equal values,
//! and for strict formats the very same bytes), so the fuzzer finds logic
//! bugs and not only crashes.
//!
//! One target is not a decoder: `ecdsa_sign` searches for a (key, digest)
//! on which the vault's ECDSA, whose RFC 6979 nonce this crate derives
//! itself, differs from `k256`'s.
//!
//! Where a format carries a checksum or hash the fuzzer cannot forge (state
//! records, extended keys, the audit chain), the function also runs the
//! input a second time with the checksum computed for it, so that mutations
//! reach the checks behind it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use k256::ecdsa::{Signature, SigningKey, VerifyingKey, signature::hazmat::PrehashVerifier};
use sha2::{Digest, Sha256};

use crate::encoding::cbor::{self, CborErrorKind, Limits};
use crate::records::audit::{AuditHead, AuditLog, AuditRecord};
use crate::records::state::{decode_record, encode_record, parse_record};
use crate::secrets::keystore::{Meta, keyring_decode, keyring_encode};
use crate::{
    ChildNumber, DataKey, DerivationPath, Digest32, EncryptionContext, Envelope, Error,
    ExtendedPrivateKey, ExtendedPublicKey, HARDENED, KdfParams, KekId, LocalKek, MAX_DEPTH,
    MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES, Mnemonic, PrivateKeyBytes, PublicKey, RawSignature,
    Vault, WalletScheme, WrappingBackend, hazmat, normalize, parse_der,
};

/// The body of a fuzz target: arbitrary bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target of this crate: its name (the file `fuzz/fuzz_targets/<name>.rs`
/// and the directories `fuzz/seeds/<name>/`, `fuzz/regressions/<name>/`) and
/// its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("envelope", fuzz_envelope),
    ("bip32_path", fuzz_bip32_path),
    ("xkey", fuzz_xkey),
    ("der_signature", fuzz_der_signature),
    ("state_record", fuzz_state_record),
    ("audit_log", fuzz_audit_log),
    ("keystore_meta", fuzz_keystore_meta),
    ("keyring", fuzz_keyring),
    ("mnemonic", fuzz_mnemonic),
    ("ecdsa_sign", fuzz_ecdsa_sign),
    ("cbor", fuzz_cbor),
];

/// The committed inputs of `target` under the fuzz directory `fuzz_dir`:
/// the files of `seeds/<target>/` and `regressions/<target>/` (either may be
/// missing), sorted. What each crate's stable corpus test feeds its targets.
///
/// # Errors
/// An I/O error reading a directory that exists.
pub fn corpus_inputs(fuzz_dir: &Path, target: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir.join(kind).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Runs every committed input of `target` ([`corpus_inputs`]) through
/// `body` and returns how many there were.
///
/// # Errors
/// A message naming every input whose properties failed (its body
/// panicked), or saying there were no inputs, or an I/O error.
pub fn run_corpus(fuzz_dir: &Path, target: &str, body: Target) -> Result<usize, String> {
    run_corpus_accepting(fuzz_dir, target, body, |_| false).map(|(_, all)| all)
}

/// As [`run_corpus`], and counts the inputs `accepts` says the decoder
/// under test accepts (so a test can check the seeds reach past the first
/// checks): `(accepted, all)`.
///
/// # Errors
/// As [`run_corpus`].
pub fn run_corpus_accepting(
    fuzz_dir: &Path,
    target: &str,
    body: Target,
    accepts: impl Fn(&[u8]) -> bool,
) -> Result<(usize, usize), String> {
    let files = corpus_inputs(fuzz_dir, target).map_err(|e| format!("{target}: {e}"))?;
    if files.is_empty() {
        return Err(format!(
            "no inputs for {target} under fuzz/seeds or fuzz/regressions"
        ));
    }
    let mut failed = Vec::new();
    let mut accepted = 0;
    for path in &files {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if std::panic::catch_unwind(|| body(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
        if accepts(&bytes) {
            accepted += 1;
        }
    }
    if failed.is_empty() {
        Ok((accepted, files.len()))
    } else {
        Err(format!("{target}: properties fail for {failed:?}"))
    }
}

/// The value of `result`, or a panic naming the property that failed.
#[expect(
    clippy::panic,
    reason = "a failed property must abort the fuzz run: that is the report"
)]
fn must<T, E: fmt::Debug>(result: Result<T, E>, property: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{property}: {e:?}"),
    }
}

// ---------------------------------------------------------------------------
// envelope
// ---------------------------------------------------------------------------

/// The KEK of the frozen envelope vectors
/// (`tests/vectors/envelope_v1.json`: `vector-kek-1`, key `00 01 … 1f`), so
/// that the seeds open and mutations of them reach the decryption path.
fn vector_kek() -> Result<(KekId, LocalKek), Error> {
    let mut key = [0u8; 32];
    for (b, i) in key.iter_mut().zip(0u8..) {
        *b = i;
    }
    let id = KekId::new("vector-kek-1")?;
    Ok((id.clone(), LocalKek::from_key(id, DataKey::new(key))))
}

/// The encryption contexts of the envelope vectors.
fn vector_contexts() -> Result<[EncryptionContext; 3], Error> {
    Ok([
        EncryptionContext::new(),
        EncryptionContext::new()
            .with("wallet", "alice@example.com")?
            .with("purpose", "seed")?,
        EncryptionContext::new()
            .with("é", "ü")?
            .with("a", "")?
            .with("Z", "zz")?,
    ])
}

/// `Envelope::from_bytes`: strict, so what it accepts is exactly its own
/// encoding; opening with a fixed `LocalKek` gives a plaintext or
/// `DecryptionFailed`/`UnknownKek`, and an envelope that opens is rebuilt
/// byte for byte from its parts and survives KEK rotation.
pub fn fuzz_envelope(data: &[u8]) {
    let Ok(envelope) = Envelope::from_bytes(data) else {
        return;
    };
    assert_eq!(envelope.as_bytes(), data, "an envelope keeps its bytes");
    let again = must(
        Envelope::from_vec(envelope.to_bytes()),
        "to_bytes re-parses",
    );
    assert_eq!(again, envelope, "from_bytes(to_bytes(e)) == e");
    assert_eq!(
        envelope.ciphertext().len(),
        envelope.plaintext_len() + 16,
        "ciphertext is plaintext plus tag"
    );

    let (kek_id, kek) = must(vector_kek(), "vector KEK");
    let (_, other_id, rotated) = must(rotation_kek(), "rotation KEK");
    for context in must(vector_contexts(), "vector contexts") {
        let opened = envelope.open(&kek, &context).wait();
        let plaintext = match opened {
            Ok(p) => p,
            Err(Error::UnknownKek) => {
                assert_ne!(envelope.kek(), &kek_id, "the held KEK is not unknown");
                continue;
            }
            Err(Error::DecryptionFailed) => continue,
            Err(e) => must(Err(e), "open fails only with DecryptionFailed/UnknownKek"),
        };
        assert_eq!(plaintext.len(), envelope.plaintext_len());
        // Deterministic re-seal from the unwrapped data key: the same bytes.
        let data_key = must(
            kek.unwrap(envelope.kek(), envelope.wrapped_key(), &context)
                .wait(),
            "the wrapped key of an envelope that opened unwraps",
        );
        let resealed = must(
            hazmat::seal_envelope_with_parts(
                &data_key,
                envelope.kek(),
                envelope.wrapped_key(),
                envelope.nonce(),
                &context,
                plaintext.expose_secret(),
            ),
            "re-seal from parts",
        );
        assert_eq!(resealed.as_bytes(), data, "seal(open(e)) == e");
        // Rotation keeps the payload and opens under the new KEK.
        let moved = must(
            envelope.rewrap(&rotated, &other_id, &context).wait(),
            "an envelope that opens can be rewrapped",
        );
        assert_eq!(moved.kek(), &other_id);
        assert_eq!(moved.nonce(), envelope.nonce());
        assert_eq!(moved.ciphertext(), envelope.ciphertext());
        let reopened = must(
            moved.open(&rotated, &context).wait(),
            "a rewrapped envelope opens",
        );
        assert_eq!(reopened.expose_secret(), plaintext.expose_secret());
    }
}

/// A `LocalKek` whose current KEK is `fuzz-kek-2`, with the vector KEK
/// retired.
fn rotation_kek() -> Result<(KekId, KekId, LocalKek), Error> {
    let (old_id, old) = vector_kek()?;
    let new_id = KekId::new("fuzz-kek-2")?;
    let kek = LocalKek::from_key(new_id.clone(), DataKey::new([0x5a; 32])).with_retired(old)?;
    Ok((old_id, new_id, kek))
}

// ---------------------------------------------------------------------------
// bip32_path
// ---------------------------------------------------------------------------

/// An independent reading of the path grammar `DerivationPath` documents:
/// `m`, then `/`-separated decimal indices below 2^31 (leading zeros
/// allowed), each optionally followed by one of `'`, `h`, `H`; at most 255
/// components.
fn reference_path(s: &str) -> Option<Vec<u32>> {
    let mut parts = s.split('/');
    if parts.next()? != "m" {
        return None;
    }
    let mut out = Vec::new();
    for part in parts {
        let (digits, hardened) = match part.as_bytes().last()? {
            b'\'' | b'h' | b'H' => (part.get(..part.len() - 1)?, true),
            _ => (part, false),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = digits.trim_start_matches('0');
        if trimmed.len() > 10 {
            return None;
        }
        let value: u64 = if trimmed.is_empty() {
            0
        } else {
            trimmed.parse().ok()?
        };
        if value >= u64::from(HARDENED) {
            return None;
        }
        let value = u32::try_from(value).ok()?;
        out.push(if hardened { value | HARDENED } else { value });
    }
    (out.len() <= MAX_DEPTH).then_some(out)
}

/// `DerivationPath::from_str`: agrees with an independent reading of the
/// grammar, and `Display` round-trips.
pub fn fuzz_bip32_path(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = s.parse::<DerivationPath>();
    let reference = reference_path(s);
    match (&parsed, &reference) {
        (Ok(path), Some(indices)) => {
            let got: Vec<u32> = path.components().iter().map(|c| c.0).collect();
            assert_eq!(&got, indices, "components agree with the reference");
        }
        (Err(Error::InvalidPath(_)), None) => return,
        _ => must(
            Err(format!("{parsed:?} vs {reference:?}")),
            "DerivationPath and the reference grammar disagree",
        ),
    }
    let path = must(parsed, "accepted");
    let shown = path.to_string();
    let again = must(shown.parse::<DerivationPath>(), "Display re-parses");
    assert_eq!(again, path, "parse(display(p)) == p");
    assert_eq!(again.to_string(), shown, "display is canonical");
    assert_eq!(
        must(
            DerivationPath::from_components(path.components().to_vec()),
            "components rebuild the path",
        ),
        path
    );
    if let Some((parent, last)) = path.split_last() {
        assert_eq!(must(parent.child(last), "parent.child(last)"), path);
        assert!(path.starts_with(&parent));
    }
}

// ---------------------------------------------------------------------------
// xkey
// ---------------------------------------------------------------------------

/// Length of a serialized extended key before its checksum.
const XKEY_PAYLOAD_LEN: usize = 78;

/// `ExtendedPublicKey::parse` and `ExtendedPrivateKey::parse`: the
/// serialization round-trips exactly, at most one of them accepts, and a
/// private key's public half matches. A 78-byte input is also tried as a
/// raw payload with its Base58Check checksum computed, so that mutations
/// reach the checks behind the checksum.
pub fn fuzz_xkey(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        check_xkey(s);
    }
    if data.len() == XKEY_PAYLOAD_LEN {
        let check = Sha256::digest(Sha256::digest(data));
        let mut raw = data.to_vec();
        raw.extend_from_slice(&check[..4]);
        check_xkey(&bs58::encode(raw).into_string());
    }
}

fn check_xkey(s: &str) {
    let public = ExtendedPublicKey::parse(s);
    let private = ExtendedPrivateKey::parse(s);
    assert!(
        public.is_err() || private.is_err(),
        "a string is an xpub or an xprv, never both"
    );
    for e in [public.as_ref().err(), private.as_ref().err()]
        .into_iter()
        .flatten()
    {
        assert!(
            matches!(e, Error::InvalidExtendedKey(_)),
            "parse errors are InvalidExtendedKey: {e:?}"
        );
    }
    if let Ok(xpub) = &public {
        assert_eq!(xpub.to_string(), s, "xpub round trip is exact");
        assert_eq!(
            &must(s.parse::<ExtendedPublicKey>(), "FromStr agrees"),
            xpub
        );
        assert_eq!(
            xpub.public_key().to_compressed(),
            *xpub.compressed_public_key()
        );
    }
    if let Ok(xprv) = &private {
        let text = must(xprv.expose_xprv(), "xprv encodes");
        assert_eq!(text.as_str(), s, "xprv round trip is exact");
        let xpub = xprv.to_extended_public();
        let reparsed = must(
            ExtendedPublicKey::parse(&xpub.to_string()),
            "the public half re-parses",
        );
        assert_eq!(reparsed, xpub);
        assert_eq!(xpub.public_key(), xprv.public_key());
        assert_eq!(xpub.depth(), xprv.depth());
        assert_eq!(xpub.parent_fingerprint(), xprv.parent_fingerprint());
        assert_eq!(xpub.child_number(), xprv.child_number());
        assert_eq!(xpub.fingerprint(), xprv.fingerprint());
        // CKDpriv then neuter == neuter then CKDpub (BIP32).
        let child = ChildNumber(1);
        match (xprv.derive_child(child), xpub.derive_child(child)) {
            (Ok(a), Ok(b)) => assert_eq!(a.to_extended_public(), b, "CKDpub == N(CKDpriv)"),
            (Err(_), Err(_)) => assert_eq!(xprv.depth(), u8::MAX, "only depth 255 fails"),
            (a, b) => must(
                Err(format!("{:?} vs {:?}", a.err(), b.err())),
                "CKDpriv and CKDpub disagree",
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// der_signature
// ---------------------------------------------------------------------------

/// Wycheproof `ecdsa_secp256k1_sha256_test.json`, test group 2: the key
/// whose 290 tests all sign the message `"123400"`.
const WYCHEPROOF_KEY: &str = "04b838ff44e5bc177bf21189d0766082fc9d843226887fc9760371100b7ee20a6ff0c9d75bfba7b31a6bca1974496eeb56de357071955d83c4b1badaa0b21832e9";
/// The message of those tests.
const WYCHEPROOF_MSG: &[u8] = b"123400";

/// The strict DER encoding of `r‖s` (the inverse of `parse_der`).
fn der_encode(compact: &[u8; 64]) -> Vec<u8> {
    fn integer(be: &[u8]) -> Vec<u8> {
        let start = be.iter().position(|&b| b != 0).unwrap_or(be.len() - 1);
        let digits = &be[start..];
        let mut out = vec![0x02];
        let pad = digits[0] & 0x80 != 0;
        out.push(u8::try_from(digits.len() + usize::from(pad)).unwrap_or(u8::MAX));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(digits);
        out
    }
    let mut body = integer(&compact[..32]);
    body.extend(integer(&compact[32..]));
    let mut out = vec![0x30];
    let len = u8::try_from(body.len()).unwrap_or(u8::MAX);
    if len >= 0x80 {
        out.push(0x81);
    }
    out.push(len);
    out.extend(body);
    out
}

/// `parse_der` and `normalize`: what `parse_der` accepts is strict DER
/// (re-encodes to the same bytes) and agrees with the `k256`/`der` parser;
/// `normalize` against a pinned Wycheproof key fails only with
/// `InvalidSignature`, and what it returns has a low `s`, recovers the
/// pinned key and verifies. A 64-byte input is also tried as `r‖s`, a
/// 65-byte one as `r‖s‖parity`.
pub fn fuzz_der_signature(data: &[u8]) {
    let pinned = must(
        hex::decode(WYCHEPROOF_KEY)
            .map_err(|_| Error::InvalidKeyMaterial("hex"))
            .and_then(|b| PublicKey::from_sec1_bytes(&b)),
        "pinned key",
    );
    let digest = Digest32(Sha256::digest(WYCHEPROOF_MSG).into());

    let parsed = parse_der(data);
    match &parsed {
        Ok(compact) => assert_eq!(
            der_encode(compact),
            data,
            "parse_der accepts strict DER only"
        ),
        Err(e) => assert!(matches!(e, Error::InvalidSignature), "{e:?}"),
    }
    // Differential: the `der` crate's strict parser, wherever r and s are
    // valid scalars (it refuses zero and out-of-range values, which
    // `parse_der` leaves to `normalize`).
    let theirs = Signature::from_der(data).ok();
    let ours = parsed
        .as_ref()
        .ok()
        .and_then(|c| Signature::from_slice(c).ok());
    assert_eq!(ours, theirs, "parse_der and k256's from_der disagree");

    check_normalized(&RawSignature::Der(data.to_vec()), &pinned, &digest);
    if let Ok(compact) = <[u8; 64]>::try_from(data) {
        check_normalized(&RawSignature::Compact(compact), &pinned, &digest);
    }
    if let Some((&parity, rest)) = data.split_last()
        && let Ok(compact) = <[u8; 64]>::try_from(rest)
    {
        check_normalized(
            &RawSignature::Recoverable {
                compact,
                y_parity: parity & 1 == 1,
            },
            &pinned,
            &digest,
        );
    }
}

fn check_normalized(raw: &RawSignature, pinned: &PublicKey, digest: &Digest32) {
    let sig = match normalize(raw, pinned, digest) {
        Ok(sig) => sig,
        Err(e) => {
            assert!(matches!(e, Error::InvalidSignature), "{e:?}");
            return;
        }
    };
    let k = must(
        Signature::from_slice(&sig.to_compact()),
        "normalized scalars are in range",
    );
    assert!(k.normalize_s() == k, "normalized s is low");
    if let RawSignature::Recoverable { .. } = raw {
        // Trusted in-process parity: not checked against the pinned key.
        return;
    }
    assert_eq!(
        must(sig.recover(digest), "normalized signature recovers"),
        *pinned,
        "recovers the pinned key"
    );
    let vk = VerifyingKey::from(pinned.as_k256());
    assert!(
        vk.verify_prehash(digest.as_bytes(), &k).is_ok(),
        "a signature normalize accepts verifies"
    );
}

// ---------------------------------------------------------------------------
// ecdsa_sign
// ---------------------------------------------------------------------------

/// The vault whose signing arithmetic `ecdsa_sign` checks (made once: with
/// the `secp256k1` feature it holds a randomized libsecp256k1 context).
static SIGNING_VAULT: LazyLock<Vault> = LazyLock::new(|| {
    Vault::new(
        Arc::new(LocalKek::from_key(
            must(KekId::new("fuzz"), "a valid KEK id"),
            DataKey::new([7; 32]),
        )),
        WalletScheme::Default,
    )
});

/// The vault's ECDSA over a prehash (this build's: `k256` arithmetic with
/// this crate's RFC 6979 nonces, or libsecp256k1 with the `secp256k1`
/// feature) against `k256`'s `SigningKey::sign_prehash_recoverable`. The
/// input is `key ‖ digest`, 32 bytes each (missing bytes are zero, extra
/// ones ignored). A key outside 1..n−1 is refused by both, the vault with
/// `InvalidKeyMaterial`; any other key signs the very same low-`s`
/// signature with the same recovery parity, and it verifies.
pub fn fuzz_ecdsa_sign(data: &[u8]) {
    let mut input = [0u8; 64];
    for (b, d) in input.iter_mut().zip(data) {
        *b = *d;
    }
    let (key, digest) = input.split_at(32);
    let key: [u8; 32] = must(key.try_into(), "32-byte key");
    let digest = Digest32(must(digest.try_into(), "32-byte digest"));
    let ours =
        crate::secrets::vault::sign_prehash(&SIGNING_VAULT, &PrivateKeyBytes::new(key), &digest);
    let Ok(reference) = SigningKey::from_slice(&key) else {
        assert!(
            matches!(ours, Err(Error::InvalidKeyMaterial(_))),
            "a key k256 refuses is refused: {ours:?}"
        );
        return;
    };
    let (sig, recid) = reference.sign_prehash_recoverable(&digest.0);
    let ours = must(ours, "a key k256 accepts signs");
    assert_eq!(
        ours,
        RawSignature::Recoverable {
            compact: sig.to_bytes().into(),
            y_parity: recid.is_y_odd(),
        },
        "the same signature as k256"
    );
    assert!(
        reference
            .verifying_key()
            .verify_prehash(&digest.0, &sig)
            .is_ok(),
        "it verifies"
    );
}

// ---------------------------------------------------------------------------
// state_record
// ---------------------------------------------------------------------------

/// The `FileStore` record decoder: accepted records re-encode to the same
/// bytes and are refused under another key; rejections are
/// `MalformedRecord`. The input is also tried as a record body with its
/// SHA-256 checksum appended, so that mutations reach the field checks.
pub fn fuzz_state_record(data: &[u8]) {
    check_state_record(data);
    let mut sealed = data.to_vec();
    sealed.extend_from_slice(&Sha256::digest(data));
    check_state_record(&sealed);
}

fn check_state_record(bytes: &[u8]) {
    let (key, record) = match parse_record(bytes) {
        Ok(parsed) => parsed,
        Err(e) => {
            assert!(matches!(e, Error::MalformedRecord(_)), "{e:?}");
            return;
        }
    };
    assert!(record.version >= 1);
    assert!(!key.is_empty() && key.len() <= MAX_STATE_KEY_BYTES);
    assert!(record.value.len() <= MAX_STATE_VALUE_BYTES);
    let encoded = must(
        encode_record(key, record.version, &record.value),
        "an accepted record encodes",
    );
    assert_eq!(encoded, bytes, "encode(decode(b)) == b");
    assert_eq!(
        must(decode_record(bytes, key), "decodes under its own key"),
        record
    );
    let other = if key == "k" { "l" } else { "k" };
    assert!(matches!(
        decode_record(bytes, other),
        Err(Error::MalformedRecord(_))
    ));
}

// ---------------------------------------------------------------------------
// audit_log
// ---------------------------------------------------------------------------

/// `AuditRecord::from_line` and `AuditLog::verify`: a log that verifies is
/// its records' canonical lines, chained, and fails against a later anchor;
/// every line that parses survives `to_line`/`from_line`; and the parsed
/// events, re-sealed into a fresh chain, always verify (the encoder and the
/// verifier agree on any event the parser lets through).
pub fn fuzz_audit_log(data: &[u8]) {
    match AuditLog::verify(data) {
        Ok(head) => {
            let lines: Vec<&[u8]> = data
                .strip_suffix(b"\n")
                .map(|d| d.split(|&b| b == b'\n').collect())
                .unwrap_or_default();
            assert_eq!(
                u64::try_from(lines.len()).ok(),
                Some(head.seq),
                "one record per line"
            );
            assert_eq!(
                must(AuditLog::verify_against(data, &head), "own head anchors"),
                head
            );
            let beyond = AuditHead {
                seq: head.seq.saturating_add(1),
                hash: head.hash,
            };
            if beyond.seq > head.seq {
                assert!(matches!(
                    AuditLog::verify_against(data, &beyond),
                    Err(Error::AuditChainBroken { .. })
                ));
            }
        }
        Err(e) => assert!(matches!(e, Error::AuditChainBroken { .. }), "{e:?}"),
    }

    let mut prev = AuditHead::GENESIS;
    let mut resealed = String::new();
    for line in data.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let record = match AuditRecord::from_line(line) {
            Ok(r) => r,
            Err(e) => {
                assert!(matches!(e, Error::MalformedRecord(_)), "{e:?}");
                continue;
            }
        };
        let canonical = must(record.to_line(), "a parsed record serializes");
        let again = must(AuditRecord::from_line(&canonical), "to_line re-parses");
        assert_eq!(again, record, "from_line(to_line(r)) == r");
        assert_eq!(must(again.to_line(), "serializes"), canonical);

        let Ok(sealed) = AuditRecord::seal(&prev, record.time_ms(), record.event().clone()) else {
            break; // sequence number overflow: cannot happen from GENESIS
        };
        resealed.push_str(&must(sealed.to_line(), "a sealed record serializes"));
        resealed.push('\n');
        prev = sealed.head();
    }
    assert_eq!(
        must(
            AuditLog::verify(resealed.as_bytes()),
            "a freshly sealed chain verifies"
        ),
        prev
    );
}

// ---------------------------------------------------------------------------
// keystore_meta
// ---------------------------------------------------------------------------

/// The `keystore.json` parser and every check it makes before the KDF:
/// rejections are `MalformedRecord`, accepted metadata round-trips through
/// its JSON form, and `KdfParams` on its own accepts only parameters that
/// validate (so no hostile file can ask the KDF for a huge allocation).
pub fn fuzz_keystore_meta(data: &[u8]) {
    match Meta::parse(data) {
        Ok(meta) => {
            let json = must(meta.to_json(), "accepted metadata serializes");
            let again = must(Meta::parse(&json), "serialized metadata re-parses");
            assert_eq!(must(again.to_json(), "serializes"), json, "stable JSON");
        }
        Err(e) => assert!(matches!(e, Error::MalformedRecord(_)), "{e:?}"),
    }
    if let Ok(params) = serde_json::from_slice::<KdfParams>(data) {
        must(params.validate(), "deserialized KDF parameters validate");
        let json = must(serde_json::to_vec(&params), "KDF parameters serialize");
        let again: KdfParams = must(serde_json::from_slice(&json), "re-parse");
        assert_eq!(again, params);
    }
}

// ---------------------------------------------------------------------------
// keyring
// ---------------------------------------------------------------------------

/// The keyring a v2 keystore seals under its root KEK: rejections are
/// `MalformedRecord`; an accepted keyring re-encodes to the very same bytes
/// (the format is strict: one encoding per keyring).
pub fn fuzz_keyring(data: &[u8]) {
    match keyring_decode(data) {
        Ok(kek) => {
            let again = must(keyring_encode(&kek), "an accepted keyring encodes");
            assert_eq!(again.expose_secret(), data, "one encoding per keyring");
        }
        Err(e) => assert!(matches!(e, Error::MalformedRecord(_)), "{e:?}"),
    }
}

// ---------------------------------------------------------------------------
// mnemonic
// ---------------------------------------------------------------------------

/// `Mnemonic::parse`: rejections are the opaque `InvalidMnemonic`; an
/// accepted phrase re-parses from its normalized form to the same words,
/// language and length.
pub fn fuzz_mnemonic(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mnemonic = match Mnemonic::parse(s) {
        Ok(m) => m,
        Err(e) => {
            assert!(matches!(e, Error::InvalidMnemonic), "{e:?}");
            return;
        }
    };
    assert!(matches!(mnemonic.word_count(), 12 | 15 | 18 | 21 | 24));
    let phrase = mnemonic.expose_phrase();
    let again = must(Mnemonic::parse(&phrase), "the normalized phrase re-parses");
    assert_eq!(again.expose_phrase(), phrase, "phrase round trip");
    assert_eq!(again.language(), mnemonic.language());
    assert_eq!(again.word_count(), mnemonic.word_count());
}

// ---------------------------------------------------------------------------
// cbor
// ---------------------------------------------------------------------------

/// Tight limits, to reach the depth and item bounds with small inputs.
const TIGHT: Limits = Limits {
    max_input: 4096,
    max_depth: 3,
    max_items: 24,
};

/// The strict CBOR decoder (`cbor::decode`, `cbor::decode_tagged`): never a
/// panic; an error's offset lies within the input; an accepted input is the
/// preferred serialization of what it decodes to (the encoder writes it
/// back byte for byte), with or without the one allowed outermost tag; and
/// the limits only ever take away: what tight limits accept, the default
/// ones accept equally, and what they refuse beyond the default is refused
/// for a limit.
pub fn fuzz_cbor(data: &[u8]) {
    let default = cbor::decode(data, &Limits::DEFAULT);
    match &default {
        Ok(value) => {
            assert_eq!(value.to_vec(), data, "encode(decode(b)) == b");
            let again = must(cbor::decode(data, &Limits::DEFAULT), "decodes twice");
            assert_eq!(&again, value, "deterministic");
        }
        Err(e) => assert!(
            e.offset() <= data.len(),
            "offset {} within the input",
            e.offset()
        ),
    }

    // The tagged entry point (COSE_Sign1's tag 18 allowed).
    match cbor::decode_tagged(data, &Limits::DEFAULT, &[18]) {
        Ok((tag, value)) => {
            let mut out = Vec::new();
            if let Some(tag) = tag {
                assert_eq!(tag, 18, "only the allowed tag");
                cbor::encode_tag(tag, &mut out);
            } else {
                assert_eq!(default.as_ref().ok(), Some(&value), "untagged: as decode");
            }
            value.encode(&mut out);
            assert_eq!(out, data, "tag and item re-encode to the input");
        }
        Err(e) => {
            // Without a leading tag the two entry points agree.
            if data.first().is_none_or(|b| b >> 5 != 6) {
                assert_eq!(default.as_ref().err(), Some(&e), "same error as decode");
            }
        }
    }

    match cbor::decode(data, &TIGHT) {
        Ok(value) => assert_eq!(default.as_ref().ok(), Some(&value), "tight ⊆ default"),
        Err(e) => {
            if default.is_ok() {
                assert!(
                    matches!(
                        e.kind(),
                        CborErrorKind::TooDeep
                            | CborErrorKind::TooManyItems
                            | CborErrorKind::InputTooLong
                    ),
                    "refused only for a limit: {e:?}"
                );
            }
        }
    }
}
