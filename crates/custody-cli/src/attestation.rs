//! `custody attestation verify` (shared/CLI.md, "Quorum boot"): reads the
//! document and the caller's expectations, asks custody-kms's Nitro
//! verifier, and prints the document's fields. The only clock read is
//! here: without `--at`, "now" is the system clock.

use serde_json::Value;

use crate::args::AttestationVerifyArgs;
use crate::error::CliError;

/// Verifies the document of `a` and prints its fields.
#[cfg(feature = "nitro")]
pub(crate) fn verify(a: &AttestationVerifyArgs) -> Result<Value, CliError> {
    use custody_kms::nitro::{Expectations, TrustAnchor, VerificationTime, Verifier};

    let document = document_bytes(read_bounded(&a.doc, "--doc")?)?;
    let mut expected = Expectations::any_image();
    if let Some(path) = &a.expect_pcrs {
        for (index, value) in expected_pcrs(path)? {
            expected = expected.with_pcr(index, &value);
        }
    }
    if a.allow_debug {
        expected = expected.allow_debug_mode();
    }
    if let Some(nonce) = &a.nonce {
        expected = expected.with_nonce(&hex_arg(nonce, "--nonce")?);
    }
    if let Some(user_data) = &a.user_data {
        expected = expected.with_user_data(&hex_arg(user_data, "--user-data")?);
    }
    let at = match a.at {
        Some(at) => at,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| CliError::new("io", "the system clock is before 1970"))?
            .as_secs(),
    };

    let invalid = |e: custody_kms::nitro::AttestationError| {
        CliError::new("attestation-invalid", e.to_string())
    };
    let verifier = Verifier::new(TrustAnchor::aws_nitro_root_g1().map_err(invalid)?);
    let verified = verifier
        .verify(&document, &expected, VerificationTime::At(at))
        .map_err(invalid)?;

    let hex0x = |b: &[u8]| format!("0x{}", hex::encode(b));
    let pcrs: serde_json::Map<String, Value> = verified
        .pcrs()
        .iter()
        .map(|(i, v)| (i.to_string(), Value::String(hex0x(v))))
        .collect();
    let optional = |b: Option<&[u8]>| b.map_or(Value::Null, |b| Value::String(hex0x(b)));
    Ok(serde_json::json!({
        "moduleId": verified.module_id(),
        "timestamp": verified.timestamp_ms(),
        "digest": verified.digest(),
        "pcrs": pcrs,
        "publicKey": optional(verified.public_key()),
        "userData": optional(verified.user_data()),
        "nonce": optional(verified.nonce()),
    }))
}

/// Without the `nitro` feature the command exists but cannot run.
#[cfg(not(feature = "nitro"))]
pub(crate) fn verify(_: &AttestationVerifyArgs) -> Result<Value, CliError> {
    Err(CliError::new(
        "unsupported",
        "attestation verify: this custody was built without the nitro feature",
    ))
}

/// The most the command reads of an input file: a document is at most
/// 16 KiB (`MAX_DOCUMENT_BYTES`), about 22 KiB as base64, so a longer file
/// is refused before it is read whole. (The quorum commands read their
/// files, all smaller, through the same bound.)
const MAX_INPUT_FILE: u64 = 64 * 1024;

/// The contents of `path`, refused (bad input) beyond [`MAX_INPUT_FILE`].
pub(crate) fn read_bounded(path: &std::path::Path, flag: &str) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| CliError::bad_input(format!("{flag}: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::bad_input(format!("{flag}: {e}")))?;
    if bytes.len() as u64 > MAX_INPUT_FILE {
        return Err(CliError::bad_input(format!(
            "{flag}: larger than {MAX_INPUT_FILE} bytes"
        )));
    }
    Ok(bytes)
}

/// The document's COSE_Sign1 bytes: the file as is when it starts like a
/// COSE_Sign1 (an array of 4, `0x84`, or tag 18, `0xd2`: neither is a
/// base64 character), else the file as standard or URL-safe base64
/// (whitespace ignored, padding optional).
#[cfg(feature = "nitro")]
pub(crate) fn document_bytes(raw: Vec<u8>) -> Result<Vec<u8>, CliError> {
    if matches!(raw.first(), Some(0x84 | 0xd2)) {
        return Ok(raw);
    }
    base64_decode(&raw)
        .ok_or_else(|| CliError::bad_input("--doc: neither COSE_Sign1 bytes nor their base64"))
}

/// RFC 4648 base64, either alphabet (§4 or §5), whitespace ignored,
/// trailing `=` padding optional; `None` for any other character or a
/// length no encoding has, or non-zero unused bits.
pub(crate) fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut symbols: Vec<u8> = text
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    while symbols.last() == Some(&b'=') {
        symbols.pop();
    }
    if symbols.is_empty() || symbols.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in symbols {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
            acc &= (1 << bits) - 1;
        }
    }
    // The leftover bits of the last symbol must be zero (canonical).
    (acc == 0).then_some(out)
}

#[cfg(feature = "nitro")]
/// A hex argument, `0x` optional.
pub(crate) fn hex_arg(value: &str, flag: &str) -> Result<Vec<u8>, CliError> {
    let digits = value.strip_prefix("0x").unwrap_or(value);
    hex::decode(digits).map_err(|e| CliError::bad_input(format!("{flag}: not hex: {e}")))
}

#[cfg(feature = "nitro")]
/// `--expect-pcrs`: a JSON object from PCR index (decimal, 0..=31) to its
/// hex value.
pub(crate) fn expected_pcrs(path: &std::path::Path) -> Result<Vec<(u8, Vec<u8>)>, CliError> {
    let flag = "--expect-pcrs";
    let text = read_bounded(path, flag)?;
    let json: Value = serde_json::from_slice(&text)
        .map_err(|e| CliError::bad_input(format!("{flag}: not JSON: {e}")))?;
    let Value::Object(map) = json else {
        return Err(CliError::bad_input(format!(
            "{flag}: not a JSON object of PCR index to hex"
        )));
    };
    let mut pcrs = Vec::with_capacity(map.len());
    for (index, value) in &map {
        let i = index
            .parse::<u8>()
            .ok()
            .filter(|i| *i <= 31 && i.to_string() == *index)
            .ok_or_else(|| {
                CliError::bad_input(format!("{flag}: PCR index {index:?} is not 0..31"))
            })?;
        let Value::String(hex_value) = value else {
            return Err(CliError::bad_input(format!(
                "{flag}: PCR{i} is not a hex string"
            )));
        };
        pcrs.push((i, hex_arg(hex_value, &format!("{flag}: PCR{i}"))?));
    }
    Ok(pcrs)
}

#[cfg(all(test, feature = "nitro"))]
mod tests {
    use super::*;

    #[test]
    fn base64_both_alphabets_with_or_without_padding() {
        assert_eq!(base64_decode(b"AAEC/w=="), Some(vec![0, 1, 2, 0xff]));
        assert_eq!(base64_decode(b"AAEC_w"), Some(vec![0, 1, 2, 0xff]));
        assert_eq!(base64_decode(b" AAEC\n/w==\n"), Some(vec![0, 1, 2, 0xff]));
        assert_eq!(base64_decode(b"AAEC/x=="), None, "non-zero unused bits");
        assert_eq!(base64_decode(b"AAECA"), None, "impossible length");
        assert_eq!(base64_decode(b"AA*C"), None);
        assert_eq!(base64_decode(b""), None);
    }

    #[test]
    fn raw_cose_is_taken_as_is() {
        assert_eq!(
            document_bytes(vec![0x84, 0x40]).ok(),
            Some(vec![0x84, 0x40])
        );
        assert_eq!(
            document_bytes(vec![0xd2, 0x84]).ok(),
            Some(vec![0xd2, 0x84])
        );
        assert_eq!(
            document_bytes(b"hIQ=".to_vec()).ok(),
            Some(vec![0x84, 0x84])
        );
        assert!(document_bytes(vec![0x00, 0x01]).is_err());
    }
}
