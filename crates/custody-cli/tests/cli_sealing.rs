//! Sealed secrets through the built `custody` binary (shared/CLI.md,
//! "JOSE"; issue #18, items 4 and 5): `sealing-key create|retire|revoke|
//! list`, `seal`, `unseal`, `reseal`. JWEs cross with Python jwcrypto (the
//! oracle, where $CUSTODY_TEST_PYTHON is set) both ways; the lifecycle
//! (rotation, reseal, retirement, revocation) is checked across processes,
//! so every step reloads the scope's keyring from the keystore; every
//! error kind and exit code, the 0600 plaintext file, the TOTP gate and the
//! audit records are checked; and the KMS variant runs on the emulator
//! where $CUSTODY_TEST_KMS_ENDPOINT is set.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers unwrap: a failure is a test failure"
)]

#[path = "support/jose.rs"]
mod jose;
#[path = "support/world.rs"]
mod world;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use jose::{SCOPE, jwcrypto, protected_header as header, python, tampered, thumbprint};
use serde_json::{Value, json};
use world::{Run, World, code_at, custody_with, failure, now, ok};

impl World {
    fn create(&self, scope: &str, extra: &[&str]) -> Value {
        let mut args = vec!["sealing-key", "create", "--scope", scope];
        args.extend_from_slice(extra);
        ok(self.run(&args))
    }

    fn seal(&self, jwk: &Value, scope: &str, alg: &str, plaintext: &[u8]) -> Run {
        let k = self.file("recipient.jwk", &jwk.to_string());
        custody_with(
            &self.ks,
            &[
                "seal", "--jwk", &k, "--scope", scope, "--alg", alg, "--in", "-",
            ],
            Some(plaintext),
            &[],
        )
    }

    fn sealed(&self, jwk: &Value, alg: &str, plaintext: &[u8]) -> String {
        ok(self.seal(jwk, SCOPE, alg, plaintext))["jwe"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `unseal` into a fresh file; the run and the file's path.
    fn unseal(&self, scope: &str, jwe: &str, extra: &[&str]) -> (Run, String) {
        let input = self.file("in.jwe", jwe);
        let out = self.path(&format!("plain-{}.bin", unique()));
        let mut args = vec!["unseal", "--scope", scope, "--in", &input, "--out", &out];
        args.extend_from_slice(extra);
        (self.run(&args), out)
    }

    /// `unseal` that must succeed: the plaintext, checked against the
    /// output's byte count and the file's mode.
    fn opened(&self, jwe: &str) -> Vec<u8> {
        let (r, out) = self.unseal(SCOPE, jwe, &[]);
        let v = ok(r);
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(v["bytes"].as_u64().unwrap(), bytes.len() as u64);
        assert_eq!(v["kid"], header(jwe)["kid"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&out).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the plaintext file is private");
        }
        bytes
    }

    /// `unseal` that must fail: its kind, exit code and message; no file.
    fn refused(&self, scope: &str, jwe: &str) -> (String, i32, String) {
        let (r, out) = self.unseal(scope, jwe, &[]);
        let (kind, code) = failure(&r);
        assert!(
            !std::path::Path::new(&out).exists(),
            "no plaintext file on failure"
        );
        (
            kind.to_owned(),
            code,
            r.err["error"]["message"].as_str().unwrap().to_owned(),
        )
    }

    /// `sealing-key ACTION --scope SCOPE --kid=KID` (retire or revoke).
    fn lifecycle(&self, action: &str, scope: &str, kid: &str) -> Run {
        self.run(&[
            "sealing-key",
            action,
            "--scope",
            scope,
            &format!("--kid={kid}"),
        ])
    }

    fn reseal(&self, jwe: &str) -> Value {
        let input = self.file("reseal.jwe", jwe);
        ok(self.run(&["reseal", "--scope", SCOPE, "--in", &input]))
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

fn secret(n: usize, salt: u8) -> Vec<u8> {
    (0..n)
        .map(|i| u8::try_from(i * 7 % 251).unwrap() ^ salt)
        .collect()
}

#[test]
fn a_sealing_key_opens_what_custody_and_jwcrypto_seal_and_jwcrypto_opens_custodys() {
    let w = World::new();
    let created = w.create(SCOPE, &[]);
    let jwk = created["jwk"].clone();
    assert_eq!(created["scope"], SCOPE);
    assert!(created["keyId"].as_str().unwrap().starts_with("p256-"));
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    assert_eq!(jwk["use"], "enc");
    assert_eq!(jwk["kid"].as_str().unwrap(), thumbprint(&jwk));
    assert!(jwk.get("d").is_none(), "a public JWK only");

    // custody seal (stdin, any bytes) -> custody unseal, both ECDH algorithms.
    for (alg, len) in [("ECDH-ES", 1), ("ECDH-ES+A256KW", 300), ("ECDH-ES", 0)] {
        let plaintext = secret(len, 0x5a);
        let jwe = w.sealed(&jwk, alg, &plaintext);
        let h = header(&jwe);
        assert_eq!(h["alg"], alg);
        assert_eq!(h["enc"], "A256GCM");
        assert_eq!(h["kid"], jwk["kid"]);
        assert_eq!(h["scope"], SCOPE);
        assert_eq!(h["crit"], json!(["scope"]));
        assert_eq!(w.opened(&jwe), plaintext, "{alg}");
    }

    let Some(python) = python("the jwcrypto crossings") else {
        return;
    };
    // jwcrypto seals to the JWK custody printed; custody opens.
    let plaintexts: Vec<Vec<u8>> = (0..2).map(|i| secret(40 + i, 0x11)).collect();
    let sealed = jwcrypto(
        &python,
        "key = jwk.JWK(**v['jwk'])\n\
         out = []\n\
         for alg, p in zip(['ECDH-ES', 'ECDH-ES+A256KW'], v['plaintexts']):\n\
         \x20   h = {'alg': alg, 'enc': 'A256GCM', 'kid': v['jwk']['kid'], 'scope': v['scope'], 'crit': ['scope']}\n\
         \x20   e = jwe.JWE(bytes(p), protected=json_encode(h), header_registry=registry)\n\
         \x20   e.add_recipient(key)\n\
         \x20   out.append(e.serialize(compact=True))\n\
         print(json.dumps(out))\n",
        &json!({"jwk": jwk, "scope": SCOPE, "plaintexts": plaintexts}),
    );
    for (jwe, plaintext) in sealed.as_array().unwrap().iter().zip(&plaintexts) {
        assert_eq!(&w.opened(jwe.as_str().unwrap()), plaintext);
    }

    // custody seal to keys jwcrypto made (P-256 and RSA 2048); jwcrypto
    // opens with their private halves.
    let keys = jwcrypto(
        &python,
        "ec = jwk.JWK.generate(kty='EC', crv='P-256')\n\
         rsa = jwk.JWK.generate(kty='RSA', size=2048)\n\
         print(json.dumps({k: [json.loads(x.export_public()), json.loads(x.export_private())] for k, x in [('ec', ec), ('rsa', rsa)]}))\n",
        &json!({}),
    );
    let mut cases = Vec::new();
    for (which, alg) in [
        ("ec", "ECDH-ES"),
        ("ec", "ECDH-ES+A256KW"),
        ("rsa", "RSA-OAEP-256"),
    ] {
        let plaintext = secret(77, alg.len() as u8);
        let out = ok(w.seal(&keys[which][0], "billing/api-keys", alg, &plaintext));
        let jwe = out["jwe"].as_str().unwrap().to_owned();
        assert_eq!(
            header(&jwe)["kid"].as_str().unwrap(),
            thumbprint(&keys[which][0])
        );
        cases.push(json!({"key": keys[which][1], "jwe": jwe, "plaintext": plaintext}));
    }
    let opened = jwcrypto(
        &python,
        "out = []\n\
         for c in v['cases']:\n\
         \x20   d = jwe.JWE(header_registry=registry)\n\
         \x20   d.deserialize(c['jwe'], key=jwk.JWK(**c['key']))\n\
         \x20   assert json.loads(d.objects['protected'])['scope'] == 'billing/api-keys'\n\
         \x20   out.append(list(d.payload))\n\
         print(json.dumps(out))\n",
        &json!({"cases": cases}),
    );
    for (case, payload) in cases.iter().zip(opened.as_array().unwrap()) {
        assert_eq!(&case["plaintext"], payload);
    }
}

#[test]
fn rotation_reseal_retirement_and_revocation_hold_across_processes() {
    let w = World::new();
    let first = w.create(SCOPE, &[]);
    let k1 = first["jwk"].clone();
    let kid1 = k1["kid"].as_str().unwrap().to_owned();
    let old = w.sealed(&k1, "ECDH-ES", b"sealed to the first key");

    // A second create rotates: the new key is current, the old still opens.
    let second = w.create(SCOPE, &[]);
    let k2 = second["jwk"].clone();
    let kid2 = k2["kid"].as_str().unwrap().to_owned();
    assert_ne!(kid1, kid2);
    let listed = ok(w.run(&["sealing-key", "list", "--scope", SCOPE]));
    assert_eq!(
        listed,
        json!({
            "scope": SCOPE,
            "current": {"kid": kid2, "keyId": second["keyId"]},
            "previous": [{"kid": kid1, "keyId": first["keyId"]}],
            "revoked": [],
        })
    );
    assert_eq!(w.opened(&old), b"sealed to the first key");

    // Reseal moves it to the current key, in process.
    let moved = w.reseal(&old);
    assert_eq!(moved["kid"], kid2.as_str());
    let moved = moved["jwe"].as_str().unwrap().to_owned();
    assert_eq!(header(&moved)["kid"], kid2.as_str());
    assert_eq!(header(&moved)["scope"], SCOPE);
    assert_eq!(w.opened(&moved), b"sealed to the first key");

    // Retired: the old JWE no longer opens, the resealed one does.
    let r = w.lifecycle("retire", SCOPE, &kid1);
    assert_eq!(
        ok(r),
        json!({"scope": SCOPE, "kid": kid1, "status": "retired"})
    );
    let (kind, code, _) = w.refused(SCOPE, &old);
    assert_eq!((kind.as_str(), code), ("unseal-failed", 3));
    let input = w.file("old.jwe", &old);
    let r = w.run(&["reseal", "--scope", SCOPE, "--in", &input]);
    assert_eq!(failure(&r), ("unseal-failed", 3));
    assert_eq!(w.opened(&moved), b"sealed to the first key");

    // Revocation: rotate to a third key, revoke the second; what is sealed
    // to it fails, saying revoked, and the key cannot come back.
    let third = w.create(SCOPE, &[]);
    let kid3 = third["jwk"]["kid"].as_str().unwrap().to_owned();
    let to2 = w.sealed(&k2, "ECDH-ES+A256KW", b"sealed to the second key");
    assert_eq!(w.opened(&to2), b"sealed to the second key");
    let r = w.lifecycle("revoke", SCOPE, &kid2);
    assert_eq!(
        ok(r),
        json!({"scope": SCOPE, "kid": kid2, "status": "revoked"})
    );
    for jwe in [&to2, &moved] {
        let (kind, code, message) = w.refused(SCOPE, jwe);
        assert_eq!((kind.as_str(), code), ("unseal-failed", 3));
        assert!(message.contains("revoked"), "{message}");
    }
    // A retired key can be revoked too; its JWE then says revoked.
    ok(w.lifecycle("revoke", SCOPE, &kid1));
    let (_, _, message) = w.refused(SCOPE, &old);
    assert!(message.contains("revoked"), "{message}");
    let listed = ok(w.run(&["sealing-key", "list", "--scope", SCOPE]));
    assert_eq!(listed["current"]["kid"], kid3.as_str());
    assert_eq!(listed["previous"], json!([]));
    assert_eq!(listed["revoked"], json!([kid2, kid1]));

    // The current key can be neither retired nor revoked; an unknown kid
    // is not found; a kid that is not one is bad input.
    for action in ["retire", "revoke"] {
        let r = w.lifecycle(action, SCOPE, &kid3);
        assert_eq!(failure(&r), ("bad-input", 2), "{action}");
        let r = w.lifecycle(action, SCOPE, "nope");
        assert_eq!(failure(&r), ("bad-input", 2), "{action}");
        let r = w.lifecycle(action, "billing/api-keys", &kid1);
        assert_eq!(failure(&r), ("not-found", 1), "{action}");
    }
    let r = w.lifecycle("retire", SCOPE, &kid1);
    assert_eq!(failure(&r), ("not-found", 1));

    // Every change is in the audit log, with its scope and kid.
    let log = w.audit();
    let changes: Vec<(String, String)> = log
        .iter()
        .filter(|e| e["op"].as_str().unwrap().starts_with("sealing-key-"))
        .map(|e| {
            assert_eq!(e["scope"], SCOPE);
            assert_eq!(e["outcome"], "success");
            (
                e["op"].as_str().unwrap().to_owned(),
                e["kid"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |op: &str, kid: &str| (format!("sealing-key-{op}"), kid.to_owned());
    assert_eq!(
        changes,
        vec![
            expect("create", &kid1),
            expect("rotate", &kid2),
            expect("retire", &kid1),
            expect("rotate", &kid3),
            expect("revoke", &kid2),
            expect("revoke", &kid1),
        ]
    );
    let rotate = log
        .iter()
        .find(|e| e["op"] == "sealing-key-rotate")
        .unwrap();
    assert_eq!(rotate["previous-kid"], kid1.as_str());
    assert_eq!(rotate["key"], second["keyId"]);
}

#[test]
fn unseal_is_gated_audited_and_bound_to_its_scope() {
    let w = World::new();
    let created = w.create(SCOPE, &[]);
    let jwk = created["jwk"].clone();
    let key_id = created["keyId"].as_str().unwrap().to_owned();
    let jwe = w.sealed(&jwk, "ECDH-ES", b"api key");
    assert_eq!(w.opened(&jwe), b"api key");

    // Another scope: sealed for billing, opened as importer (and the
    // other way round), refused before any key is asked.
    let billing = ok(w.seal(&jwk, "billing/api-keys", "ECDH-ES", b"x"))["jwe"]
        .as_str()
        .unwrap()
        .to_owned();
    let (kind, code, message) = w.refused(SCOPE, &billing);
    assert_eq!((kind.as_str(), code), ("unseal-failed", 3));
    assert!(message.contains("scope"), "{message}");
    let (kind, _, _) = w.refused("billing/api-keys", &jwe);
    assert_eq!(kind, "unseal-failed");
    // The same key made billing's too: the JWE's scope is the scope's.
    let r = w.run(&["sealing-key", "list", "--scope", "billing/api-keys"]);
    assert_eq!(failure(&r), ("not-found", 1));

    // Enrolled in TOTP: a code is required, and the refusal keeps its kind.
    let enrol = ok(w.run(&["totp", "register", "--key-id", &key_id]));
    let totp = enrol["secret"].as_str().unwrap().to_owned();
    let (kind, code, _) = w.refused(SCOPE, &jwe);
    assert_eq!((kind.as_str(), code), ("totp-required", 3));
    let input = w.file("gated.jwe", &jwe);
    let r = w.run(&["reseal", "--scope", SCOPE, "--in", &input]);
    assert_eq!(failure(&r), ("totp-required", 3));
    let code_now = code_at(&totp, now());
    let (r, out) = w.unseal(SCOPE, &jwe, &["--code", &code_now]);
    assert_eq!(ok(r)["bytes"], 7);
    assert_eq!(std::fs::read(out).unwrap(), b"api key");
    let (r, _) = w.unseal(SCOPE, &jwe, &["--code", &code_now]);
    assert_eq!(failure(&r), ("totp-replayed", 3));

    // The audit log: one decrypt record per unseal, intent unseal, the
    // key and scope; the refusals recorded as denied.
    let decrypts: Vec<Value> = w
        .audit()
        .into_iter()
        .filter(|e| e["op"] == "decrypt")
        .collect();
    let successes: Vec<&Value> = decrypts
        .iter()
        .filter(|e| e["outcome"] == "success")
        .collect();
    assert_eq!(successes.len(), 2, "{decrypts:?}");
    for e in &successes {
        assert_eq!(e["intent"], "unseal");
        assert_eq!(e["key"], key_id.as_str());
        assert_eq!(e["scope"], SCOPE);
        assert_eq!(e["algorithm"], "P-256");
    }
    assert!(decrypts.iter().any(|e| e["outcome"] == "denied"));
}

#[test]
fn every_sealing_error_has_its_kind_and_exit_code() {
    let w = World::new();
    let jwk = w.create(SCOPE, &[])["jwk"].clone();
    let jwe = w.sealed(&jwk, "ECDH-ES", b"secret");

    // seal: an algorithm that is not the key's, one that is not a JWE
    // algorithm here, a bad scope, a private or signing JWK, no file.
    let r = w.seal(&jwk, SCOPE, "RSA-OAEP-256", b"s");
    assert_eq!(failure(&r), ("algorithm-mismatch", 2));
    for alg in ["RSA-OAEP", "A256KW", "dir", "ecdh-es"] {
        assert_eq!(
            failure(&w.seal(&jwk, SCOPE, alg, b"s")),
            ("bad-input", 2),
            "{alg}"
        );
    }
    for scope in ["importer", "Importer/keys", "a/b/c", ""] {
        let r = w.seal(&jwk, scope, "ECDH-ES", b"s");
        assert_eq!(failure(&r), ("bad-input", 2), "{scope:?}");
    }
    let mut private = jwk.clone();
    private["d"] = json!(Base64UrlUnpadded::encode_string(&[7u8; 32]));
    assert_eq!(
        failure(&w.seal(&private, SCOPE, "ECDH-ES", b"s")),
        ("bad-input", 2)
    );
    let (_, signing) = w.generate("P-256");
    assert_eq!(
        failure(&w.seal(&signing, SCOPE, "ECDH-ES", b"s")),
        ("bad-input", 2)
    );
    let r = w.run(&[
        "seal",
        "--jwk",
        "/nonexistent",
        "--scope",
        SCOPE,
        "--alg",
        "ECDH-ES",
        "--in",
        "-",
    ]);
    assert_eq!(failure(&r), ("bad-input", 2));
    let big = vec![0u8; 128 * 1024 + 1];
    assert_eq!(
        failure(&w.seal(&jwk, SCOPE, "ECDH-ES", &big)),
        ("bad-input", 2)
    );

    // unseal: every failure to open is unseal-failed, exit 3, no file.
    let tampered = tampered(&jwe);
    let other_key = w.generate("P-256").1;
    let mut unsigned = other_key.clone();
    unsigned.as_object_mut().unwrap().remove("alg");
    unsigned["use"] = json!("enc");
    let to_stranger = ok(w.seal(&unsigned, SCOPE, "ECDH-ES", b"x"))["jwe"]
        .as_str()
        .unwrap()
        .to_owned();
    for (what, text) in [
        ("a flipped tag bit", tampered.as_str()),
        ("not a JWE", "not.a.jwe"),
        ("empty", ""),
        ("a key not in the keyring", to_stranger.as_str()),
    ] {
        let (kind, code, _) = w.refused(SCOPE, text);
        assert_eq!((kind.as_str(), code), ("unseal-failed", 3), "{what}");
    }
    // A scope with no keyring.
    let (kind, code, _) = w.refused("payroll/keys", &jwe);
    assert_eq!((kind.as_str(), code), ("unseal-failed", 3));

    // --out: an existing file is refused and left as it was; stdout never.
    let existing = w.file("existing.txt", "keep me");
    let input = w.file("in.jwe", &jwe);
    let r = w.run(&[
        "unseal", "--scope", SCOPE, "--in", &input, "--out", &existing,
    ]);
    assert_eq!(failure(&r), ("already-exists", 1));
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    let r = w.run(&["unseal", "--scope", SCOPE, "--in", &input, "--out", "-"]);
    assert_eq!(failure(&r), ("bad-input", 2));
    let r = w.run(&["unseal", "--scope", SCOPE, "--in", &input]);
    assert_eq!(failure(&r), ("bad-input", 2), "--out is required");
    let r = w.run(&[
        "unseal",
        "--scope",
        SCOPE,
        "--in",
        "/nonexistent",
        "--out",
        &w.path("o"),
    ]);
    assert_eq!(failure(&r), ("bad-input", 2));
    // From stdin, to a relative path in a directory that exists.
    let out = w.path("from-stdin.txt");
    let r = custody_with(
        &w.ks,
        &["unseal", "--scope", SCOPE, "--in", "-", "--out", &out],
        Some(format!("{jwe}\n").as_bytes()),
        &[],
    );
    assert_eq!(ok(r)["bytes"], 6);
    assert_eq!(std::fs::read(&out).unwrap(), b"secret");

    // sealing-key: a bad scope, an unknown backend, a key that cannot seal.
    let r = w.run(&["sealing-key", "create", "--scope", "nope"]);
    assert_eq!(failure(&r), ("bad-input", 2));
    let r = w.run(&[
        "sealing-key",
        "create",
        "--scope",
        SCOPE,
        "--key",
        "gcp-kms:k",
    ]);
    assert_eq!(failure(&r).1, 2);
    let r = w.run(&["sealing-key", "list", "--scope", "payroll/keys"]);
    assert_eq!(failure(&r), ("not-found", 1));
    // No keystore.
    let missing = w.root.join("missing");
    let r = world::custody(&missing, &["sealing-key", "create", "--scope", SCOPE]);
    assert_eq!(failure(&r), ("not-found", 1));
    // seal needs no keystore at all.
    let k = w.file("k.jwk", &jwk.to_string());
    let p = w.file("p.txt", "plain");
    let r = world::custody(
        &missing,
        &[
            "seal", "--jwk", &k, "--scope", SCOPE, "--alg", "ECDH-ES", "--in", &p,
        ],
    );
    let sealed = ok(r)["jwe"].as_str().unwrap().to_owned();
    assert_eq!(w.opened(&sealed), b"plain");
}

// ------------------------------------------------------------------ AWS KMS

/// The emulator, shared with the other KMS tests (keys made with boto3,
/// another SDK than custody's).
#[path = "../../../testing/kms_emulator.rs"]
mod kms_emulator;

#[test]
fn kms_sealing_keys_rotate_and_open_through_kms() {
    let Some(kms) = kms_emulator::emulator("kms_sealing_keys_rotate_and_open_through_kms") else {
        return;
    };
    let w = World::new();
    let env = kms.aws_env();
    let vars: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = |args: &[&str]| custody_with(&w.ks, args, None, &vars);
    let rsa = format!(
        "aws-kms:{}",
        kms.create_key("RSA_2048", "ENCRYPT_DECRYPT").0
    );
    let ec = format!(
        "aws-kms:{}",
        kms.create_key("ECC_NIST_P256", "KEY_AGREEMENT").0
    );

    // An RSA key in KMS: the JWK is its public half; RSA-OAEP-256 opens
    // through KMS Decrypt.
    let created = ok(run(&[
        "sealing-key",
        "create",
        "--scope",
        SCOPE,
        "--key",
        &rsa,
    ]));
    assert_eq!(created["keyId"], rsa.as_str());
    let rsa_jwk = created["jwk"].clone();
    assert_eq!(rsa_jwk["kty"], "RSA");
    assert_eq!(rsa_jwk["kid"].as_str().unwrap(), thumbprint(&rsa_jwk));
    let to_rsa = w.sealed(&rsa_jwk, "RSA-OAEP-256", b"kms rsa secret");
    let open = |jwe: &str| -> Vec<u8> {
        let input = w.file("kms.jwe", jwe);
        let out = w.path(&format!("kms-{}.bin", unique()));
        let v = ok(run(&[
            "unseal", "--scope", SCOPE, "--in", &input, "--out", &out,
        ]));
        assert_eq!(v["kid"], header(jwe)["kid"]);
        std::fs::read(out).unwrap()
    };
    assert_eq!(open(&to_rsa), b"kms rsa secret");

    // Rotate to a P-256 KMS key (DeriveSharedSecret); reseal moves the
    // RSA secret to it; retire the RSA key.
    let created = ok(run(&[
        "sealing-key",
        "create",
        "--scope",
        SCOPE,
        "--key",
        &ec,
    ]));
    let ec_jwk = created["jwk"].clone();
    assert_eq!(ec_jwk["crv"], "P-256");
    for alg in ["ECDH-ES", "ECDH-ES+A256KW"] {
        let jwe = w.sealed(&ec_jwk, alg, b"kms ec secret");
        assert_eq!(open(&jwe), b"kms ec secret", "{alg}");
    }
    assert_eq!(open(&to_rsa), b"kms rsa secret", "the previous key opens");
    let input = w.file("kms-reseal.jwe", &to_rsa);
    let moved = ok(run(&["reseal", "--scope", SCOPE, "--in", &input]));
    assert_eq!(moved["kid"], ec_jwk["kid"]);
    let kid = rsa_jwk["kid"].as_str().unwrap();
    ok(run(&[
        "sealing-key",
        "retire",
        "--scope",
        SCOPE,
        &format!("--kid={kid}"),
    ]));
    assert_eq!(open(moved["jwe"].as_str().unwrap()), b"kms rsa secret");
    let out = w.path("kms-retired.bin");
    let r = run(&["unseal", "--scope", SCOPE, "--in", &input, "--out", &out]);
    assert_eq!(failure(&r), ("unseal-failed", 3));

    // The unseals went through the audit log as any signature does.
    let kms_decrypts = w
        .audit()
        .into_iter()
        .filter(|e| e["op"] == "decrypt" && e["intent"] == "unseal" && e["outcome"] == "success")
        .count();
    assert_eq!(kms_decrypts, 6);
}
