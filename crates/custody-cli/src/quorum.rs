//! `custody quorum ...` (shared/CLI.md, "Quorum boot"): the ceremony of
//! custody-quorum run as commands. `split` on the machine that makes the
//! quorum key, `seal-share` on each holder's, `enclave start` and `boot`
//! in the enclave (its working directory holds its ephemeral key between
//! the two steps; `boot` deletes it).
//!
//! Files: share files are secrets (mode 0600); the share set, the
//! attestation document, `enclave.json` and sealed shares are public. Every
//! file is written to a temporary name, synced, and linked into place, so
//! none is ever torn or replaced.

pub(crate) mod args;

use std::io::Write;
use std::path::{Path, PathBuf};

use custody_core::ErrorReport;
use custody_quorum::{EnclaveBoot, EnclaveSecretKey, SealedShare, ShareSet};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::attestation::{base64_decode, read_bounded};
use crate::error::CliError;
use args::{BootArgs, EnclaveCommand, QuorumCommand, SplitArgs};

/// The enclave's secret key file in its directory.
const ENCLAVE_KEY_FILE: &str = "enclave-key";
/// The enclave's public state: its key and the manifest (`user_data`).
const ENCLAVE_FILE: &str = "enclave.json";
/// The attestation document `enclave start` writes.
#[cfg(feature = "nitro")]
const ATTESTATION_FILE: &str = "attestation.cose";
/// The fake NSM's root certificate.
#[cfg(feature = "nsm-fake")]
const TEST_ROOT_FILE: &str = "test-root.pem";
/// The public share set `split` writes.
const SHARESET_FILE: &str = "shareset.json";

/// Runs one `custody quorum` command.
pub(crate) fn run(command: QuorumCommand) -> Result<Value, CliError> {
    match command {
        QuorumCommand::Split(a) => split(&a),
        QuorumCommand::Enclave(EnclaveCommand::Start(a)) => nitro::enclave_start(&a),
        QuorumCommand::SealShare(a) => nitro::seal_share(&a),
        QuorumCommand::Boot(a) => boot(&a),
    }
}

/// A custody-quorum error with its stable kind (custody-quorum's
/// `Error::kind`), the message prefixed with the input it is about.
fn quorum_error(e: custody_quorum::Error, what: &str) -> CliError {
    let report = ErrorReport::from(e).context(what);
    CliError::new(report.kind(), report.message())
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn split(a: &SplitArgs) -> Result<Value, CliError> {
    let (key, set, shares) = custody_quorum::generate(a.threshold, a.shares)
        .map_err(|e| quorum_error(e, "--threshold/--shares"))?;
    let quorum_public_key = *key.public_key();
    // Only the shares leave this process.
    drop(key);
    create_private_dir(&a.out)?;
    let names: Vec<String> = shares
        .iter()
        .map(|s| format!("share-{}.json", s.index()))
        .collect();
    for name in names.iter().map(String::as_str).chain([SHARESET_FILE]) {
        if a.out.join(name).exists() {
            return Err(CliError::new(
                "already-exists",
                format!("--out: {} exists: a split never replaces a file", name),
            ));
        }
    }
    let mut share_files = Vec::with_capacity(shares.len());
    for (share, name) in shares.iter().zip(&names) {
        let json = share.to_json();
        write_new(&a.out, name, json.as_bytes(), Mode::Secret)?;
        share_files.push(Value::String(a.out.join(name).display().to_string()));
    }
    // Last: its presence says the split finished.
    write_new(
        &a.out,
        SHARESET_FILE,
        set.to_json().as_bytes(),
        Mode::Public,
    )?;
    Ok(json!({
        "quorumPublicKey": hex0x(&quorum_public_key.to_bytes()),
        "threshold": set.threshold(),
        "shares": set.shares(),
        "shareSet": a.out.join(SHARESET_FILE).display().to_string(),
        "setId": set.set_id().to_string(),
        "shareFiles": share_files,
    }))
}

fn read_share_set(path: &Path) -> Result<ShareSet, CliError> {
    let bytes = read_bounded(path, "--shareset")?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| CliError::bad_input("--shareset: not UTF-8"))?;
    ShareSet::from_json(text).map_err(|e| quorum_error(e, "--shareset"))
}

/// A sealed share file: its JSON, or the base64url of it (what
/// `seal-share` prints without `--out`).
fn read_sealed(path: &Path) -> Result<SealedShare, CliError> {
    let what = format!("--sealed {}", path.display());
    let bytes = read_bounded(path, &what)?;
    let json = if bytes.trim_ascii_start().starts_with(b"{") {
        bytes
    } else {
        base64_decode(&bytes).ok_or_else(|| {
            CliError::bad_input(format!("{what}: neither a sealed share nor its base64url"))
        })?
    };
    let text = std::str::from_utf8(&json)
        .map_err(|_| CliError::bad_input(format!("{what}: not UTF-8")))?;
    SealedShare::from_json(text).map_err(|e| quorum_error(e, &what))
}

/// A secret file (a share), read into zeroizing memory allocated once at
/// its bound (so no reallocation leaves a copy behind), refused beyond
/// custody-quorum's `MAX_JSON_BYTES`.
#[cfg(feature = "nitro")]
fn read_secret(path: &Path, flag: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    use std::io::Read;
    let max = custody_quorum::MAX_JSON_BYTES;
    let file =
        std::fs::File::open(path).map_err(|e| CliError::bad_input(format!("{flag}: {e}")))?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(max + 1));
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::bad_input(format!("{flag}: {e}")))?;
    if bytes.len() > max {
        return Err(CliError::bad_input(format!(
            "{flag}: larger than {max} bytes"
        )));
    }
    Ok(bytes)
}

/// The enclave's public state, as `enclave start` wrote it.
struct EnclaveState {
    enclave_key: String,
    manifest: Vec<u8>,
}

fn read_enclave_state(dir: &Path) -> Result<EnclaveState, CliError> {
    let path = dir.join(ENCLAVE_FILE);
    if !path.exists() {
        return Err(CliError::new(
            "not-found",
            format!("--dir: no {ENCLAVE_FILE}: run `custody quorum enclave start` first"),
        ));
    }
    let bytes = read_bounded(&path, "--dir")?;
    let bad = || CliError::bad_input(format!("--dir: {ENCLAVE_FILE} is malformed"));
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if value["version"] != 1 {
        return Err(bad());
    }
    let enclave_key = value["enclaveKey"].as_str().ok_or_else(bad)?.to_owned();
    let manifest = match &value["userData"] {
        Value::Null => Vec::new(),
        Value::String(h) => {
            hex::decode(h.strip_prefix("0x").ok_or_else(bad)?).map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    Ok(EnclaveState {
        enclave_key,
        manifest,
    })
}

fn read_enclave_key(dir: &Path) -> Result<EnclaveSecretKey, CliError> {
    let path = dir.join(ENCLAVE_KEY_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::new(
                "not-found",
                format!(
                    "--dir: no {ENCLAVE_KEY_FILE}: this enclave already booted (its key is \
                     deleted then) or never started"
                ),
            ));
        }
        Err(e) => {
            return Err(CliError::new(
                "io",
                format!("--dir: {ENCLAVE_KEY_FILE}: {e}"),
            ));
        }
    };
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::bad_input(format!("--dir: {ENCLAVE_KEY_FILE} is malformed")))?;
    EnclaveSecretKey::from_hex(text.trim_ascii())
        .map_err(|e| quorum_error(e, &format!("--dir: {ENCLAVE_KEY_FILE}")))
}

fn boot(a: &BootArgs) -> Result<Value, CliError> {
    let state = read_enclave_state(&a.dir)?;
    let set = read_share_set(&a.shareset)?;
    let key = read_enclave_key(&a.dir)?;
    if hex0x(&key.public_key().to_bytes()) != state.enclave_key {
        return Err(CliError::bad_input(format!(
            "--dir: {ENCLAVE_KEY_FILE} is not the key {ENCLAVE_FILE} names"
        )));
    }
    let mut boot = EnclaveBoot::with_secret_key(set, &state.manifest, key)
        .map_err(|e| quorum_error(e, "--dir"))?;
    for path in &a.sealed {
        let sealed = read_sealed(path)?;
        boot.accept(&sealed)
            .map_err(|e| quorum_error(e, &format!("--sealed {}", path.display())))?;
    }
    let used = boot.accepted();
    let key = boot.finish().map_err(|e| quorum_error(e, "--sealed"))?;
    let kek = key.kek().map_err(|e| quorum_error(e, "quorum KEK"))?;
    // One key, one boot: the shares sealed to it are public, so its copy
    // goes now. (A journaling file system may keep old blocks; the
    // enclave's directory lives in its memory.)
    std::fs::remove_file(a.dir.join(ENCLAVE_KEY_FILE))
        .map_err(|e| CliError::new("io", format!("--dir: removing {ENCLAVE_KEY_FILE}: {e}")))?;
    sync_dir(&a.dir)?;
    Ok(json!({
        "quorumPublicKey": hex0x(&key.public_key().to_bytes()),
        "sharesUsed": used,
        "kekId": kek.kek_id().to_string(),
    }))
}

/// Who may read a file written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Mode 0600: share files, the enclave key.
    Secret,
    /// Mode 0644: share sets, documents, sealed shares.
    Public,
}

/// Creates `dir` (mode 0700 for what is created) if missing.
fn create_private_dir(dir: &Path) -> Result<(), CliError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| CliError::new("io", format!("{}: {e}", dir.display())))
}

fn sync_dir(dir: &Path) -> Result<(), CliError> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CliError::new("io", format!("{}: {e}", dir.display())))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to the new file `dir/name`: a temporary file (created
/// exclusively, with the mode from the start), synced, then hard-linked to
/// its name, which fails if the name exists: never a torn file, never a
/// replaced one. `already-exists` if it does.
pub(crate) fn write_new(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: Mode,
) -> Result<PathBuf, CliError> {
    let target = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let io = |e: std::io::Error| CliError::new("io", format!("{}: {e}", target.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if mode == Mode::Secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(io)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::hard_link(&tmp, &target));
    drop(file);
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CliError::new(
                "already-exists",
                format!("{} exists: it is never replaced", target.display()),
            ));
        }
        Err(e) => return Err(io(e)),
    }
    sync_dir(dir)?;
    Ok(target)
}

/// The commands that read or make attestation documents (feature `nitro`).
#[cfg(feature = "nitro")]
mod nitro {
    use custody_kms::nitro::{
        AttestationDocument, AttestationError, Expectations, TrustAnchor, VerificationTime,
        Verifier,
    };
    use custody_quorum::{EnclavePublicKey, EnclaveSecretKey, Share};
    use serde_json::{Value, json};
    use zeroize::Zeroizing;

    use super::args::{EnclaveStartArgs, SealShareArgs};
    use super::{
        ATTESTATION_FILE, ENCLAVE_FILE, ENCLAVE_KEY_FILE, Mode, create_private_dir, hex0x,
        quorum_error, read_share_set, write_new,
    };
    use crate::attestation::{document_bytes, expected_pcrs, hex_arg, read_bounded};
    use crate::error::CliError;

    fn now() -> Result<u64, CliError> {
        Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| CliError::new("io", "the system clock is before 1970"))?
            .as_secs())
    }

    fn invalid(e: &AttestationError) -> CliError {
        CliError::new("attestation-invalid", e.to_string())
    }

    /// The NSM `--nsm` names.
    fn nsm(name: Option<&str>, now: u64) -> Result<Box<dyn custody_kms::nitro::Nsm>, CliError> {
        match name {
            #[cfg(feature = "nsm-fake")]
            Some("fake") => Ok(Box::new(fake_nsm(now))),
            #[cfg(not(feature = "nsm-fake"))]
            Some("fake") => {
                let _ = now;
                Err(CliError::new(
                    "unsupported",
                    "--nsm fake: this custody was built without the nsm-fake feature (tests \
                     and local runs only)",
                ))
            }
            Some(other) => Err(CliError::bad_input(format!(
                "--nsm: {other:?} is not an NSM this custody knows (fake)"
            ))),
            None => Err(CliError::new(
                "unsupported",
                "enclave start: this custody has no driver for the NSM device (/dev/nsm needs \
                 unsafe code, which this workspace forbids): run the enclave side in an enclave \
                 binary implementing custody_kms::nitro::Nsm, or --nsm fake for a local run",
            )),
        }
    }

    /// The fake NSM: its certificates valid around `now` under the fixed
    /// test root (`Chain::valid()`'s, valid 2020-2050), so every run's
    /// `test-root.pem` is the same certificate.
    #[cfg(feature = "nsm-fake")]
    fn fake_nsm(now: u64) -> custody_kms::nitro::fake::FakeNsm {
        use custody_kms::nitro::fake::{Chain, Doc, FakeNsm};
        let mut chain = Chain::valid_at(now);
        chain.root = Chain::valid().root;
        let mut template = Doc::valid();
        template.chain = chain;
        template.timestamp_ms = now.saturating_mul(1000);
        FakeNsm::with_template(template)
    }

    pub(super) fn enclave_start(a: &EnclaveStartArgs) -> Result<Value, CliError> {
        let user_data = a
            .user_data
            .as_deref()
            .map(|h| hex_arg(h, "--user-data"))
            .transpose()?;
        if user_data
            .as_ref()
            .is_some_and(|u| u.len() > custody_quorum::MAX_MANIFEST_BYTES)
        {
            return Err(CliError::bad_input("--user-data: more than 512 bytes"));
        }
        let now = now()?;
        let nsm = nsm(a.nsm.as_deref(), now)?;
        create_private_dir(&a.dir)?;
        if a.dir.join(ENCLAVE_KEY_FILE).exists() {
            return Err(CliError::new(
                "already-exists",
                format!(
                    "--dir: {ENCLAVE_KEY_FILE} exists: this enclave started and has not booted"
                ),
            ));
        }
        let key = EnclaveSecretKey::generate().map_err(|e| quorum_error(e, "enclave key"))?;
        let public = key.public_key().to_bytes();
        let document = nsm
            .attest(&custody_kms::nitro::AttestRequest {
                public_key: Some(&public),
                user_data: user_data.as_deref(),
                nonce: None,
            })
            .map_err(|e| CliError::new("enclave-attestation", e.to_string()))?;
        let parsed = AttestationDocument::parse(&document).map_err(|e| invalid(&e))?;

        let mut secret = Zeroizing::new([0u8; 65]);
        hex::encode_to_slice(key.expose_secret().as_slice(), &mut secret[..64])
            .map_err(|_| CliError::new("io", "encoding the enclave key"))?;
        secret[64] = b'\n';
        write_new(&a.dir, ENCLAVE_KEY_FILE, secret.as_slice(), Mode::Secret)?;
        let state = json!({
            "version": 1,
            "enclaveKey": hex0x(&public),
            "userData": user_data.as_deref().map(hex0x),
        });
        write_new(
            &a.dir,
            ENCLAVE_FILE,
            state.to_string().as_bytes(),
            Mode::Public,
        )?;
        let attestation = write_new(&a.dir, ATTESTATION_FILE, &document, Mode::Public)?;
        #[cfg(feature = "nsm-fake")]
        if a.nsm.as_deref() == Some("fake") {
            let root = fake_nsm(now)
                .anchor()
                .map_err(|e| CliError::new("io", e.to_string()))?;
            write_new(
                &a.dir,
                super::TEST_ROOT_FILE,
                pem_certificate(root.der()).as_bytes(),
                Mode::Public,
            )?;
        }

        let pcrs: serde_json::Map<String, Value> = parsed
            .pcrs()
            .iter()
            .map(|(i, v)| (i.to_string(), Value::String(hex0x(v))))
            .collect();
        Ok(json!({
            "attestation": attestation.display().to_string(),
            "enclaveKey": hex0x(&public),
            "pcrs": pcrs,
        }))
    }

    pub(super) fn seal_share(a: &SealShareArgs) -> Result<Value, CliError> {
        let share_bytes = super::read_secret(&a.share, "--share")?;
        let share_text = std::str::from_utf8(&share_bytes)
            .map_err(|_| CliError::bad_input("--share: not UTF-8"))?;
        let share = Share::from_json(share_text).map_err(|e| quorum_error(e, "--share"))?;
        let set = read_share_set(&a.shareset)?;

        let document = document_bytes(read_bounded(&a.attestation, "--attestation")?)?;
        let mut expected = Expectations::any_image();
        for (index, value) in expected_pcrs(&a.expect_pcrs)? {
            expected = expected.with_pcr(index, &value);
        }
        if a.allow_debug {
            expected = expected.allow_debug_mode();
        }
        if let Some(user_data) = &a.user_data {
            expected = expected.with_user_data(&hex_arg(user_data, "--user-data")?);
        }
        if let Some(enclave_key) = &a.enclave_key {
            let key: EnclavePublicKey = enclave_key
                .parse()
                .map_err(|e| quorum_error(e, "--enclave-key"))?;
            expected = expected.with_public_key(&key.to_bytes());
        }
        let anchor = match &a.root {
            Some(path) => {
                let der = pem_certificate_der(&read_bounded(path, "--root")?)?;
                TrustAnchor::from_der(&der).map_err(|e| invalid(&e))?
            }
            None => TrustAnchor::aws_nitro_root_g1().map_err(|e| invalid(&e))?,
        };
        let at = match a.at {
            Some(at) => at,
            None => now()?,
        };
        let verified = Verifier::new(anchor)
            .verify(&document, &expected, VerificationTime::At(at))
            .map_err(|e| invalid(&e))?;
        // Sealed to the key the enclave attested, never to one given
        // beside it.
        let public_key = verified.public_key().ok_or_else(|| {
            CliError::new(
                "attestation-invalid",
                "policy: the document carries no public_key to seal to",
            )
        })?;
        let enclave_key = EnclavePublicKey::from_sec1_bytes(public_key).map_err(|_| {
            CliError::new(
                "attestation-invalid",
                "policy: public_key is not an enclave key (an uncompressed P-256 point)",
            )
        })?;
        let manifest = verified.user_data().unwrap_or_default();
        let sealed = custody_quorum::seal_share(&share, &set, &enclave_key, manifest)
            .map_err(|e| quorum_error(e, "--share"))?;
        let sealed_json = sealed.to_json();
        let out = match &a.out {
            Some(path) => {
                let dir = super::parent_of(path);
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| CliError::bad_input("--out: not a file name"))?;
                write_new(dir, name, sealed_json.as_bytes(), Mode::Public)?;
                path.display().to_string()
            }
            None => base64url(sealed_json.as_bytes()),
        };
        Ok(json!({
            "sealedShare": out,
            "index": sealed.index(),
            "enclaveKey": hex0x(&enclave_key.to_bytes()),
        }))
    }

    /// The DER of the one `CERTIFICATE` in a PEM file.
    fn pem_certificate_der(pem: &[u8]) -> Result<Vec<u8>, CliError> {
        let bad = || CliError::bad_input("--root: not a PEM certificate");
        let text = std::str::from_utf8(pem).map_err(|_| bad())?;
        let body = text
            .trim()
            .strip_prefix("-----BEGIN CERTIFICATE-----")
            .and_then(|t| t.strip_suffix("-----END CERTIFICATE-----"))
            .ok_or_else(bad)?;
        crate::attestation::base64_decode(body.as_bytes()).ok_or_else(bad)
    }

    /// A certificate as PEM (RFC 7468): base64 in lines of 64.
    #[cfg(feature = "nsm-fake")]
    fn pem_certificate(der: &[u8]) -> String {
        let body = base64(der, STANDARD, true);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    #[cfg(feature = "nsm-fake")]
    const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// RFC 4648 §5 base64url, no padding.
    fn base64url(bytes: &[u8]) -> String {
        base64(bytes, URL_SAFE, false)
    }

    fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let symbols = chunk.len() + 1;
            for i in 0..4 {
                if i < symbols {
                    let v = (n >> (18 - 6 * i)) & 0x3f;
                    out.push(char::from(alphabet[v as usize]));
                } else if pad {
                    out.push('=');
                }
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn base64url_round_trips_through_the_reader() {
            for len in 0..10 {
                let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 250) as u8).collect();
                let text = base64url(&bytes);
                assert!(!text.contains('='));
                if len > 0 {
                    assert_eq!(
                        crate::attestation::base64_decode(text.as_bytes()),
                        Some(bytes)
                    );
                }
            }
            assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        }

        #[test]
        fn pem_reads_only_a_certificate() {
            assert_eq!(
                pem_certificate_der(
                    b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n"
                )
                .ok(),
                Some(vec![0, 1, 2])
            );
            assert!(
                pem_certificate_der(
                    b"-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----"
                )
                .is_err()
            );
        }
    }
}

/// Without the `nitro` feature these commands exist but cannot run.
#[cfg(not(feature = "nitro"))]
mod nitro {
    use serde_json::Value;

    use super::args::{EnclaveStartArgs, SealShareArgs};
    use crate::error::CliError;

    fn unsupported() -> CliError {
        CliError::new(
            "unsupported",
            "this custody was built without the nitro feature (attestation documents)",
        )
    }

    pub(super) fn enclave_start(_: &EnclaveStartArgs) -> Result<Value, CliError> {
        Err(unsupported())
    }

    pub(super) fn seal_share(_: &SealShareArgs) -> Result<Value, CliError> {
        Err(unsupported())
    }
}

/// The directory holding `path` (`.` for a bare name).
#[cfg(feature = "nitro")]
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
