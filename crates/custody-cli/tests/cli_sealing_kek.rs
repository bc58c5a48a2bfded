//! `custody sealing-key create --scope SCOPE --kek URI` (shared/CLI.md,
//! "JOSE"): a P-256 sealing key of the keystore wrapped by a KEK of its
//! own, an AWS KMS key (the emulator, where $CUSTODY_TEST_KMS_ENDPOINT is
//! set) or an AES key on a PKCS#11 token (SoftHSM2, where
//! $CUSTODY_TEST_PKCS11_MODULE is set), so that a secret sealed to it opens
//! only while that KEK is reachable. The scope's keyring records the key's
//! id and the KEK's URI, never key material; the key's envelope lives in
//! the state store, and no file of the keystore holds the key in the clear
//! (raw, hex or base64). Every failure to open, a KEK out of reach or
//! disabled as much as a bad ciphertext, is the one opaque `unseal-failed`
//! (shared/CLI.md), and writes nothing.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::expect_used,
    reason = "test helpers unwrap: a failure is a test failure"
)]

#[path = "support/jose.rs"]
mod jose;
#[path = "support/world.rs"]
mod world;

use std::path::Path;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use jose::{SCOPE, b64, tampered, thumbprint};
use serde_json::Value;
use world::{Run, World, custody_with, failure, ok};

/// The environment a run is given (beside the passphrase).
type Vars = Vec<(String, String)>;

fn run(w: &World, args: &[&str], vars: &Vars) -> Run {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&**k, &**v)).collect();
    // Never a developer's own AWS profile or instance metadata.
    let mut all = vec![
        ("AWS_CONFIG_FILE", "/nonexistent/custody-test"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/custody-test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    all.extend(vars);
    custody_with(&w.ks, args, None, &all)
}

fn seal(w: &World, jwk: &Value, alg: &str, plaintext: &str) -> String {
    let jwk = w.file("recipient.jwk", &jwk.to_string());
    let input = w.file("plain.txt", plaintext);
    ok(run(
        w,
        &[
            "seal", "--jwk", &jwk, "--scope", SCOPE, "--alg", alg, "--in", &input,
        ],
        &Vars::new(),
    ))["jwe"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `unseal` into a fresh file under `vars`: the run, and the plaintext if
/// a file was written (never on a failure).
fn unseal(w: &World, jwe: &str, vars: &Vars) -> (Run, Option<Vec<u8>>) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let input = w.file(&format!("in-{n}.jwe"), jwe);
    let out = w.path(&format!("out-{n}.bin"));
    let r = run(
        w,
        &["unseal", "--scope", SCOPE, "--in", &input, "--out", &out],
        vars,
    );
    (r, std::fs::read(&out).ok())
}

/// The bytes of every file under `dir`, concatenated.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

/// Whether `bytes` hold the P-256 private key of `public` in the clear:
/// any 32 bytes of them, or of what a run of hex or base64 characters in
/// them decodes to, that is the scalar of `public`.
fn holds_private_key(bytes: &[u8], public: &p256::PublicKey) -> bool {
    let is_key = |c: &[u8]| p256::SecretKey::from_slice(c).is_ok_and(|k| k.public_key() == *public);
    let mut candidates = vec![bytes.to_vec()];
    for run in bytes.split(|b| !(b.is_ascii_alphanumeric() || b"+/-_".contains(b))) {
        let Ok(text) = std::str::from_utf8(run) else {
            continue;
        };
        candidates.extend(hex::decode(text));
        candidates.extend(Base64UrlUnpadded::decode_vec(text));
        candidates.extend(base64ct::Base64Unpadded::decode_vec(text));
    }
    candidates.iter().any(|c| c.windows(32).any(is_key))
}

/// The scan above finds a key that is there, in each form.
#[test]
fn the_private_key_scan_finds_a_key_in_the_clear() {
    let key = p256::SecretKey::from_slice(&[0x5a; 32]).unwrap();
    let public = key.public_key();
    let raw = key.to_bytes();
    for form in [
        [b"{\"d\":".as_slice(), &raw, b"}"].concat(),
        format!("{{\"d\":\"{}\"}}", hex::encode(raw)).into_bytes(),
        format!("d={}.", Base64UrlUnpadded::encode_string(&raw)).into_bytes(),
        format!("d={}", base64ct::Base64::encode_string(&raw)).into_bytes(),
    ] {
        assert!(holds_private_key(&form, &public), "{form:?}");
    }
    assert!(!holds_private_key(
        &hex::encode([0x5b; 32]).into_bytes(),
        &public
    ));
}

/// What every KEK backend's test checks once the key is created under
/// `kek` (reachable under `vars`): the record, the keystore's files, the
/// round trip, a bad ciphertext, the audit records, rotation and reseal.
/// Returns a secret sealed to the wrapped key.
fn the_wrapped_key_works(w: &World, kek: &str, vars: &Vars) -> String {
    let created = ok(run(
        w,
        &["sealing-key", "create", "--scope", SCOPE, "--kek", kek],
        vars,
    ));
    let jwk = created["jwk"].clone();
    let id = created["keyId"].as_str().unwrap().to_owned();
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert_eq!(jwk["kid"].as_str().unwrap(), thumbprint(&jwk));
    assert!(id.starts_with("p256-") && id.len() == 21, "{id}");

    // The keyring names the key and its KEK; the key is not in the
    // keystore's own secrets (nothing under the keystore's root holds it).
    let list = ok(run(w, &["sealing-key", "list", "--scope", SCOPE], vars));
    assert_eq!(list["current"]["keyId"], id.as_str());
    assert_eq!(list["current"]["kid"], jwk["kid"]);
    assert_eq!(list["current"]["kek"], custody_kms::BackendUri::label(kek));
    let generation = std::fs::read_dir(&w.ks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("secrets.")
        })
        .unwrap();
    assert!(
        !generation
            .join("generated")
            .join(format!("{id}.env"))
            .exists()
    );
    let files = all_bytes(&generation);
    assert!(!files.windows(id.len()).any(|s| s == id.as_bytes()));
    // On disk, the keystore names the key's KEK, and no file holds the
    // key's private scalar in the clear.
    let everything = all_bytes(&w.ks);
    assert!(everything.windows(kek.len()).any(|s| s == kek.as_bytes()));
    let public = p256::PublicKey::from_sec1_bytes(
        &[
            &[4][..],
            &b64(jwk["x"].as_str().unwrap()),
            &b64(jwk["y"].as_str().unwrap()),
        ]
        .concat(),
    )
    .unwrap();
    assert!(!holds_private_key(&everything, &public));

    let mut sealed = Vec::new();
    for alg in ["ECDH-ES", "ECDH-ES+A256KW"] {
        let jwe = seal(w, &jwk, alg, &format!("api key for {alg}"));
        let (r, plain) = unseal(w, &jwe, vars);
        let out = ok(r);
        assert_eq!(plain.unwrap(), format!("api key for {alg}").as_bytes());
        assert_eq!(out["kid"], jwk["kid"]);
        sealed.push(jwe);
    }
    // While the KEK is reachable a bad ciphertext is still the one opaque
    // kind, and writes nothing.
    let (r, plain) = unseal(w, &tampered(&sealed[0]), vars);
    assert_eq!(failure(&r), ("unseal-failed", 3));
    assert_eq!(plain, None);

    // Every open unwrapped the key through its KEK, recorded, and every
    // unseal is a decrypt record of the key, as a signature is.
    let audit = w.audit();
    let unwraps = audit
        .iter()
        .filter(|e| e["op"] == "unwrap" && e["key"] == id.as_str())
        .collect::<Vec<_>>();
    assert_eq!(unwraps.len(), 3, "{audit:?}");
    let label = custody_kms::BackendUri::label(kek);
    assert!(unwraps.iter().all(|e| e["kek"] == label), "{unwraps:?}");
    let decrypts = audit
        .iter()
        .filter(|e| e["op"] == "decrypt" && e["intent"] == "unseal" && e["key"] == id.as_str())
        .count();
    assert_eq!(decrypts, 3, "{audit:?}");

    // Rotation to a key under the keystore's own KEK: the wrapped key
    // still opens (while its KEK is reachable), and reseal moves the
    // secret to the new key, which then opens with no KEK backend at all.
    let next = ok(run(w, &["sealing-key", "create", "--scope", SCOPE], vars));
    let (r, plain) = unseal(w, &sealed[1], vars);
    ok(r);
    assert_eq!(plain.unwrap(), b"api key for ECDH-ES+A256KW");
    let input = w.file("reseal.jwe", &sealed[1]);
    let moved = ok(run(w, &["reseal", "--scope", SCOPE, "--in", &input], vars));
    assert_eq!(moved["kid"], next["jwk"]["kid"]);
    let (r, plain) = unseal(w, moved["jwe"].as_str().unwrap(), &Vars::new());
    ok(r);
    assert_eq!(plain.unwrap(), b"api key for ECDH-ES+A256KW");
    sealed.swap_remove(0)
}

// ------------------------------------------------------------------ AWS KMS

/// The emulator, shared with the other KMS tests (keys made with boto3,
/// another SDK than custody's).
#[path = "../../../testing/kms_emulator.rs"]
mod kms_emulator;

/// The standard AWS environment, pointed at `endpoint`.
fn aws(endpoint: &str) -> Vars {
    kms_emulator::aws_env(endpoint)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// A KMS endpoint that answers every call as AWS answers one on a
/// disabled key (HTTP 400, `DisabledException`); its URL.
fn disabled_kms() -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            // The whole request (headers, then Content-Length bytes).
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = stream.read(&mut chunk).unwrap_or(0);
                request.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                let complete = text.split_once("\r\n\r\n").is_some_and(|(head, body)| {
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap_or(0));
                    body.len() >= length
                });
                if n == 0 || complete {
                    break;
                }
            }
            let body = r#"{"__type":"DisabledException","message":"arn:aws:kms:us-east-1:123456789012:key/k is disabled."}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-RequestId: disabled\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_sealing_key_under_a_kms_kek_opens_only_while_the_kek_is_reachable() {
    let Some(kms) = kms_emulator::emulator(
        "a_sealing_key_under_a_kms_kek_opens_only_while_the_kek_is_reachable",
    ) else {
        return;
    };
    let kek = format!("aws-kms:{}", kms.kek());
    let w = World::new();
    let up = aws(&kms.endpoint);
    let jwe = the_wrapped_key_works(&w, &kek, &up);

    // KMS unreachable (a loopback port nothing listens on), or no access
    // to AWS at all (no region, no credentials): the one opaque kind, and
    // no file.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    for vars in [aws(&url), Vars::new()] {
        let (r, plain) = unseal(&w, &jwe, &vars);
        assert_eq!(failure(&r), ("unseal-failed", 3), "{}", r.err);
        assert_eq!(plain, None);
    }

    // The KEK disabled: unseal-failed, no file. moto does not enforce key
    // state (shared/tools/moto_kms_server.py), so the KMS here answers as
    // AWS does for a disabled key: DisabledException.
    let (r, plain) = unseal(&w, &jwe, &aws(&disabled_kms()));
    assert_eq!(failure(&r), ("unseal-failed", 3), "{}", r.err);
    assert!(r.err.to_string().contains("disabled"), "{}", r.err);
    assert_eq!(plain, None);
    // The emulator again: it opens.
    let (r, plain) = unseal(&w, &jwe, &up);
    ok(r);
    assert_eq!(plain.unwrap(), b"api key for ECDH-ES");

    // The rotated keyring still names the wrapped key and its KEK.
    let list = ok(run(&w, &["sealing-key", "list", "--scope", SCOPE], &up));
    assert_eq!(list["previous"][0]["kek"], kek.as_str());
}

// ----------------------------------------------------------------- PKCS#11

/// The token, shared with the other PKCS#11 tests (made with
/// softhsm2-util; its AES KEK `root-kek` made through custody-kms).
#[path = "../../../testing/softhsm_token.rs"]
mod softhsm_token;

use softhsm_token::USER_PIN;

#[test]
fn a_sealing_key_under_an_hsm_kek_opens_only_with_the_token() {
    let Some(token) = softhsm_token::token(
        "a_sealing_key_under_an_hsm_kek_opens_only_with_the_token",
        "kek",
    ) else {
        return;
    };
    let module = token.module.to_str().unwrap().to_owned();
    let w = World::new();
    let kek = format!("pkcs11:token={};object=root-kek", token.label);
    let with = |pin: &str| -> Vars {
        vec![
            ("CUSTODY_PKCS11_MODULE".to_owned(), module.clone()),
            ("CUSTODY_PKCS11_PIN".to_owned(), pin.to_owned()),
        ]
    };
    let jwe = the_wrapped_key_works(&w, &kek, &with(USER_PIN));

    // A wrong PIN, or none: the one opaque kind, no file.
    let no_pin = vec![("CUSTODY_PKCS11_MODULE".to_owned(), module.clone())];
    for vars in [with("wrong-pin"), no_pin] {
        let (r, plain) = unseal(&w, &jwe, &vars);
        assert_eq!(failure(&r), ("unseal-failed", 3), "{}", r.err);
        assert_eq!(plain, None);
    }
    // The PIN back: it opens.
    let (r, plain) = unseal(&w, &jwe, &with(USER_PIN));
    ok(r);
    assert_eq!(plain.unwrap(), b"api key for ECDH-ES");
}

// ------------------------------------------------------------ no backend

#[test]
fn kek_arguments_are_checked_before_anything_is_written() {
    let w = World::new();
    // What a refused run may leave: the keystore's own unwrap record of
    // opening it; no sealing record, no keyring, no envelope.
    let written = |w: &World| {
        let records = w.audit().into_iter().filter(|e| e["op"] != "unwrap");
        (records.count(), all_bytes(&w.ks.join("state")))
    };
    let before = written(&w);
    for args in [
        ["--kek", "passphrase"].as_slice(),
        &["--kek", "nonsense:"],
        &["--kek", "aws-kms:k", "--key", "aws-kms:other"],
    ] {
        let mut all = vec!["sealing-key", "create", "--scope", SCOPE];
        all.extend(args.iter().copied());
        let r = run(&w, &all, &Vars::new());
        assert_eq!(failure(&r), ("bad-input", 2), "{args:?}: {}", r.err);
        if args[1] == "passphrase" {
            let message = r.err["error"]["message"].as_str().unwrap();
            assert!(message.contains("not supported"), "{message}");
        }
    }
    assert_eq!(written(&w), before);
    let r = run(&w, &["sealing-key", "list", "--scope", SCOPE], &Vars::new());
    assert_eq!(failure(&r), ("not-found", 1));
}
