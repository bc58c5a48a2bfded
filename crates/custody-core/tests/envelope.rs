//! Envelope encryption and the local KEK: round trips, KEK rotation, every
//! typed error, the async (`Pending::Later`) path, and redacted `Debug`.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test fixtures and helpers panic on failure, like the tests that call them"
)]

use std::sync::Arc;

use custody_core::{
    Capabilities, DataKey, EncryptionContext, Envelope, Error, KdfParams, KekId, LocalKek,
    Passphrase, Pending, SharedBackend, WrappingBackend,
};

fn id(s: &str) -> KekId {
    KekId::new(s).unwrap()
}

fn ctx() -> EncryptionContext {
    EncryptionContext::new()
        .with("wallet", "alice")
        .unwrap()
        .with("purpose", "seed")
        .unwrap()
}

fn local(name: &str, byte: u8) -> LocalKek {
    LocalKek::from_key(id(name), DataKey::new([byte; 32]))
}

fn seal(kek: &LocalKek, plaintext: &[u8]) -> Envelope {
    Envelope::seal(kek, kek.current_kek(), &ctx(), plaintext)
        .wait()
        .unwrap()
}

fn open_err(env: &Envelope, kek: &LocalKek, ctx: &EncryptionContext) -> Error {
    match env.open(kek, ctx).wait() {
        Ok(_) => panic!("opened"),
        Err(e) => e,
    }
}

/// A backend that answers through a boxed future, like a KMS adapter.
#[derive(Debug)]
struct Remote(LocalKek);

impl WrappingBackend for Remote {
    fn default_kek(&self) -> KekId {
        self.0.default_kek()
    }

    fn wrap<'a>(
        &'a self,
        kek: &KekId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<Vec<u8>, Error>> {
        let answer = self.0.wrap(kek, key, context).wait();
        Pending::later(async move { answer })
    }

    fn unwrap<'a>(
        &'a self,
        kek: &KekId,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Pending<'a, Result<DataKey, Error>> {
        let answer = self.0.unwrap(kek, wrapped, context).wait();
        Pending::later(async move { answer })
    }
}

#[test]
fn seal_and_open_round_trip_without_a_future() {
    let kek = local("kek-a", 1);
    let sealing = Envelope::seal(&kek, kek.current_kek(), &ctx(), b"seed bytes");
    assert!(
        sealing.is_ready(),
        "the software path must not box a future"
    );
    let env = sealing.wait().unwrap();
    assert_eq!(env.kek(), &id("kek-a"));
    assert_eq!(env.plaintext_len(), 10);
    let opening = env.open(&kek, &ctx());
    assert!(opening.is_ready());
    assert_eq!(opening.wait().unwrap().expose_secret(), b"seed bytes");
    // Context order does not matter.
    let reordered = EncryptionContext::new()
        .with("purpose", "seed")
        .unwrap()
        .with("wallet", "alice")
        .unwrap();
    assert_eq!(
        env.open(&kek, &reordered).wait().unwrap().expose_secret(),
        b"seed bytes"
    );
}

#[test]
fn every_envelope_has_a_fresh_data_key_and_nonce() {
    let kek = local("kek-a", 1);
    let a = seal(&kek, b"same");
    let b = seal(&kek, b"same");
    assert_ne!(a.wrapped_key(), b.wrapped_key());
    assert_ne!(a.nonce(), b.nonce());
    assert_ne!(a.ciphertext(), b.ciphertext());
    let ka = kek.unwrap(a.kek(), a.wrapped_key(), &ctx()).wait().unwrap();
    let kb = kek.unwrap(b.kek(), b.wrapped_key(), &ctx()).wait().unwrap();
    assert_ne!(ka, kb);
}

#[test]
fn empty_and_large_plaintexts() {
    let kek = local("kek-a", 1);
    let env = seal(&kek, b"");
    assert_eq!(env.open(&kek, &ctx()).wait().unwrap().len(), 0);
    let big: Vec<u8> = (0..1_000_003u32).map(|i| i as u8).collect();
    let env = seal(&kek, &big);
    assert_eq!(
        env.open(&kek, &ctx()).wait().unwrap().expose_secret(),
        big.as_slice()
    );
}

#[test]
fn plaintext_over_the_cap_is_refused_before_any_work() {
    let kek = local("kek-a", 1);
    let huge = vec![0u8; Envelope::MAX_PLAINTEXT_LEN + 1];
    assert!(matches!(
        Envelope::seal(&kek, kek.current_kek(), &ctx(), &huge).wait(),
        Err(Error::MalformedEnvelope(_))
    ));
}

#[test]
fn wrong_context_is_an_opaque_failure() {
    let kek = local("kek-a", 1);
    let env = seal(&kek, b"secret");
    let missing = EncryptionContext::new().with("wallet", "alice").unwrap();
    let extra = ctx().with("extra", "x").unwrap();
    let changed_value = ctx().with("wallet", "bob").unwrap();
    let changed_key = EncryptionContext::new()
        .with("wallet", "alice")
        .unwrap()
        .with("purpose2", "seed")
        .unwrap();
    for wrong in [
        EncryptionContext::new(),
        missing,
        extra,
        changed_value,
        changed_key,
    ] {
        assert!(
            matches!(open_err(&env, &kek, &wrong), Error::DecryptionFailed),
            "{wrong:?}"
        );
    }
}

#[test]
fn the_payload_is_bound_to_the_context_even_if_the_backend_is_not() {
    // Wrap and payload are bound independently: a data key unwrapped by some
    // other means still does not decrypt the payload under another context.
    let kek = local("kek-a", 1);
    let env = seal(&kek, b"secret");
    let wrong = ctx().with("wallet", "bob").unwrap();
    let key = kek
        .unwrap(env.kek(), env.wrapped_key(), &ctx())
        .wait()
        .unwrap();
    let mut buf = env.ciphertext()[..6].to_vec();
    let tag: [u8; 16] = env.ciphertext()[6..].try_into().unwrap();
    let aad_for = |c: &EncryptionContext| {
        [
            b"CUSTENV\x01\x01".as_slice(),
            &env.nonce(),
            &c.canonical_bytes(),
        ]
        .concat()
    };
    assert!(matches!(
        custody_core::hazmat::aes256gcm_decrypt_in_place(
            &key,
            &env.nonce(),
            &aad_for(&wrong),
            &mut buf,
            &tag
        ),
        Err(Error::DecryptionFailed)
    ));
    custody_core::hazmat::aes256gcm_decrypt_in_place(
        &key,
        &env.nonce(),
        &aad_for(&ctx()),
        &mut buf,
        &tag,
    )
    .unwrap();
    assert_eq!(buf, b"secret");
}

#[test]
fn wrong_kek_bytes_under_the_same_id_is_an_opaque_failure() {
    let env = seal(&local("kek-a", 1), b"secret");
    assert!(matches!(
        open_err(&env, &local("kek-a", 2), &ctx()),
        Error::DecryptionFailed
    ));
}

#[test]
fn a_kek_the_backend_does_not_hold_is_unknown() {
    let env = seal(&local("kek-a", 1), b"secret");
    assert!(matches!(
        open_err(&env, &local("kek-b", 1), &ctx()),
        Error::UnknownKek
    ));
    let kek = local("kek-a", 1);
    assert!(matches!(
        Envelope::seal(&kek, &id("kek-z"), &ctx(), b"x").wait(),
        Err(Error::UnknownKek)
    ));
}

#[test]
fn truncated_envelopes_are_malformed() {
    let bytes = seal(&local("kek-a", 1), b"secret").into_bytes();
    for n in 0..bytes.len() {
        assert!(
            matches!(
                Envelope::from_bytes(&bytes[..n]),
                Err(Error::MalformedEnvelope(_))
            ),
            "{n}"
        );
    }
}

#[test]
fn unknown_version_and_algorithm_are_malformed() {
    let bytes = seal(&local("kek-a", 1), b"secret").into_bytes();
    let mut v = bytes.clone();
    v[7] = 0x02;
    assert!(matches!(
        Envelope::from_bytes(&v),
        Err(Error::MalformedEnvelope("unsupported envelope version"))
    ));
    let mut a = bytes.clone();
    a[8] = 0x02;
    assert!(matches!(
        Envelope::from_bytes(&a),
        Err(Error::MalformedEnvelope("unsupported envelope algorithm"))
    ));
    let mut m = bytes;
    m[..7].copy_from_slice(b"AGEENV!");
    assert!(matches!(
        Envelope::from_bytes(&m),
        Err(Error::MalformedEnvelope(_))
    ));
}

#[test]
fn tampering_with_any_authenticated_region_fails_opaquely() {
    let kek = local("kek-a", 1);
    let env = seal(&kek, b"secret payload");
    let bytes = env.as_bytes().to_vec();
    let wrapped_at = 9 + 2 + 5 + 4;
    let nonce_at = wrapped_at + env.wrapped_key().len();
    let ct_at = nonce_at + 12 + 8;
    let tag_at = bytes.len() - 16;
    for (what, at) in [
        ("wrapped key version", wrapped_at),
        ("wrapped key nonce", wrapped_at + 3),
        ("wrapped key ciphertext", wrapped_at + 20),
        ("wrapped key tag", nonce_at - 1),
        ("payload nonce", nonce_at + 5),
        ("ciphertext", ct_at + 2),
        ("tag", tag_at + 7),
    ] {
        let mut t = bytes.clone();
        t[at] ^= 0x01;
        let tampered = Envelope::from_bytes(&t).unwrap();
        assert!(
            matches!(open_err(&tampered, &kek, &ctx()), Error::DecryptionFailed),
            "{what}"
        );
    }
}

#[test]
fn a_payload_spliced_from_another_envelope_does_not_open_or_rewrap() {
    let kek = local("kek-a", 1);
    let a = seal(&kek, b"alice's seed");
    let b = seal(&kek, b"bob's seed!!");
    let payload_at = a.as_bytes().len() - (12 + 8 + a.ciphertext().len());
    let spliced = [&a.as_bytes()[..payload_at], &b.as_bytes()[payload_at..]].concat();
    let spliced = Envelope::from_bytes(&spliced).unwrap();
    assert!(matches!(
        open_err(&spliced, &kek, &ctx()),
        Error::DecryptionFailed
    ));
    let new = local("kek-new", 9).with_retired(local("kek-a", 1)).unwrap();
    assert!(matches!(
        spliced.rewrap(&new, new.current_kek(), &ctx()).wait(),
        Err(Error::DecryptionFailed)
    ));
}

#[test]
fn kek_rotation_rewrites_the_header_and_leaves_the_payload_alone() {
    let old = local("kek-old", 1);
    let env = seal(&old, b"the master seed");
    let rotating = local("kek-new", 2)
        .with_retired(local("kek-old", 1))
        .unwrap();
    assert_eq!(rotating.current_kek(), &id("kek-new"));
    let rewrapping = env.rewrap(&rotating, &id("kek-new"), &ctx());
    assert!(rewrapping.is_ready());
    let rotated = rewrapping.wait().unwrap();

    assert_eq!(rotated.kek(), &id("kek-new"));
    assert_ne!(rotated.wrapped_key(), env.wrapped_key());
    // The payload bytes are identical: nonce, length, ciphertext and tag.
    assert_eq!(rotated.nonce(), env.nonce());
    assert_eq!(rotated.ciphertext(), env.ciphertext());
    let suffix = 12 + 8 + env.ciphertext().len();
    assert_eq!(
        &rotated.as_bytes()[rotated.as_bytes().len() - suffix..],
        &env.as_bytes()[env.as_bytes().len() - suffix..]
    );
    // The same data key, now wrapped under the new KEK.
    assert_eq!(
        rotating
            .unwrap(rotated.kek(), rotated.wrapped_key(), &ctx())
            .wait()
            .unwrap(),
        old.unwrap(env.kek(), env.wrapped_key(), &ctx())
            .wait()
            .unwrap()
    );

    // It opens only under the new KEK.
    let new_only = local("kek-new", 2);
    assert_eq!(
        rotated
            .open(&new_only, &ctx())
            .wait()
            .unwrap()
            .expose_secret(),
        b"the master seed"
    );
    assert!(matches!(
        open_err(&rotated, &old, &ctx()),
        Error::UnknownKek
    ));
    assert!(matches!(
        open_err(&rotated, &local("kek-new", 3), &ctx()),
        Error::DecryptionFailed
    ));
    // The original still opens under the old KEK (until it is replaced).
    assert_eq!(
        env.open(&old, &ctx()).wait().unwrap().expose_secret(),
        b"the master seed"
    );
    // Round trip through bytes.
    assert_eq!(Envelope::from_bytes(&rotated.to_bytes()).unwrap(), rotated);
}

#[test]
fn rewrap_errors() {
    let old = local("kek-old", 1);
    let env = seal(&old, b"seed");
    let rotating = local("kek-new", 2)
        .with_retired(local("kek-old", 1))
        .unwrap();
    let wrong = ctx().with("wallet", "mallory").unwrap();
    assert!(matches!(
        env.rewrap(&rotating, &id("kek-new"), &wrong).wait(),
        Err(Error::DecryptionFailed)
    ));
    assert!(matches!(
        env.rewrap(&rotating, &id("kek-nowhere"), &ctx()).wait(),
        Err(Error::UnknownKek)
    ));
    assert!(matches!(
        env.rewrap(&local("kek-new", 2), &id("kek-new"), &ctx())
            .wait(),
        Err(Error::UnknownKek)
    ));
}

#[test]
fn with_retired_refuses_two_keys_under_one_id() {
    assert!(matches!(
        local("a", 1).with_retired(local("a", 2)),
        Err(Error::InvalidKeyMaterial(_))
    ));
    let same = local("a", 1).with_retired(local("a", 1)).unwrap();
    assert_eq!(same.kek_ids().count(), 1);
    let two = local("a", 1).with_retired(local("b", 2)).unwrap();
    assert_eq!(
        two.kek_ids().cloned().collect::<Vec<_>>(),
        vec![id("a"), id("b")]
    );
    assert!(two.holds(&id("b")) && !two.holds(&id("c")));
}

#[test]
fn the_async_path_works_end_to_end() {
    let remote = Remote(local("kek-a", 1).with_retired(local("kek-0", 7)).unwrap());
    let sealing = Envelope::seal(&remote, &id("kek-0"), &ctx(), b"via KMS");
    assert!(!sealing.is_ready());
    let env = sealing.wait().unwrap();
    let opening = env.open(&remote, &ctx());
    assert!(!opening.is_ready());
    assert_eq!(opening.wait().unwrap().expose_secret(), b"via KMS");
    let rewrapping = env.rewrap(&remote, &id("kek-a"), &ctx());
    assert!(!rewrapping.is_ready());
    let rotated = rewrapping.wait().unwrap();
    assert_eq!(rotated.ciphertext(), env.ciphertext());
    assert_eq!(
        rotated
            .open(&local("kek-a", 1), &ctx())
            .wait()
            .unwrap()
            .expose_secret(),
        b"via KMS"
    );
    assert!(matches!(
        env.open(&remote, &EncryptionContext::new()).wait(),
        Err(Error::DecryptionFailed)
    ));
    assert!(matches!(
        env.rewrap(&remote, &id("kek-a"), &EncryptionContext::new())
            .wait(),
        Err(Error::DecryptionFailed)
    ));
    // The envelope made on the async path opens on the sync one.
    let sync = local("kek-0", 7);
    assert_eq!(
        env.open(&sync, &ctx()).wait().unwrap().expose_secret(),
        b"via KMS"
    );
}

#[test]
fn local_kek_is_a_wrapping_only_backend() {
    let shared: SharedBackend = Arc::new(local("kek-a", 1));
    assert_eq!(shared.name(), "local");
    let caps = Capabilities::of(shared.as_ref());
    assert!(caps.wrapping && caps.signing.is_none() && !caps.exporting);
    let wrapping = shared.wrapping().unwrap();
    assert_eq!(wrapping.default_kek(), id("kek-a"));
    let env = Envelope::seal(wrapping, &wrapping.default_kek(), &ctx(), b"x")
        .wait()
        .unwrap();
    assert_eq!(
        env.open(wrapping, &ctx()).wait().unwrap().expose_secret(),
        b"x"
    );
}

#[test]
fn debug_shows_ids_and_lengths_only() {
    let kek = LocalKek::from_key(id("kek-new"), DataKey::new([0xAB; 32]))
        .with_retired(LocalKek::from_key(id("kek-old"), DataKey::new([0xCD; 32])))
        .unwrap();
    let s = format!("{kek:?}");
    assert_eq!(
        s,
        "LocalKek { current: KekId(kek-new), retired: [KekId(kek-old)] }"
    );
    let s = format!("{kek:#?}");
    for leak in ["ab", "AB", "171", "cd", "CD", "205"] {
        assert!(!s.contains(leak), "{s}");
    }
    let env = Envelope::seal(&kek, kek.current_kek(), &ctx(), b"hunter2")
        .wait()
        .unwrap();
    let s = format!("{env:?}");
    assert!(s.contains("kek-new") && !s.contains("hunter2"), "{s}");
    assert!(!s.contains(&hex::encode(env.wrapped_key())[..8]), "{s}");
}

#[test]
fn a_wrong_passphrase_is_told_apart_by_the_check_value() {
    let params = KdfParams::light().unwrap();
    let right = LocalKek::from_passphrase(&Passphrase::from_str_copy("right"), &params).unwrap();
    let check = right.check_value();
    let again = LocalKek::from_passphrase(&Passphrase::from_str_copy("right"), &params).unwrap();
    assert!(again.verify_check_value(&check));
    let wrong = LocalKek::from_passphrase(&Passphrase::from_str_copy("wrong"), &params).unwrap();
    assert!(!wrong.verify_check_value(&check));
    assert!(!right.verify_check_value(&check[..31]));
    assert!(!right.verify_check_value(&[]));
    // How the keystore turns it into a typed error.
    let unlock = |kek: &LocalKek| {
        if kek.verify_check_value(&check) {
            Ok(())
        } else {
            Err(Error::WrongPassphrase)
        }
    };
    assert!(matches!(unlock(&wrong), Err(Error::WrongPassphrase)));
    assert!(unlock(&again).is_ok());

    // Same salt, so the same public KEK id, but a different key.
    assert_eq!(wrong.current_kek(), right.current_kek());
    assert!(right.current_kek().as_str().starts_with("passphrase:"));
    assert_eq!(right.current_kek().as_str().len(), "passphrase:".len() + 16);
    let env = seal(&right, b"seed");
    assert!(matches!(
        open_err(&env, &wrong, &ctx()),
        Error::DecryptionFailed
    ));
    assert_eq!(
        env.open(&again, &ctx()).wait().unwrap().expose_secret(),
        b"seed"
    );

    // A different salt gives a different KEK id.
    let other = LocalKek::from_passphrase(
        &Passphrase::from_str_copy("right"),
        &KdfParams::light().unwrap(),
    )
    .unwrap();
    assert_ne!(other.current_kek(), right.current_kek());
}

#[test]
fn kdf_params_round_trip_through_json() {
    let params = KdfParams::standard().unwrap();
    let json = serde_json::to_string(&params).unwrap();
    assert!(
        json.starts_with(r#"{"algorithm":"scrypt","logN":17,"r":8,"p":1,"salt":""#),
        "{json}"
    );
    let back: KdfParams = serde_json::from_str(&json).unwrap();
    assert_eq!(back, params);
    back.validate().unwrap();
}

#[test]
fn hostile_kdf_params_are_rejected_without_work() {
    let salt = "00".repeat(32);
    let doc = |alg: &str, log_n: i64, r: i64, p: i64, salt: &str| {
        format!(r#"{{"algorithm":"{alg}","logN":{log_n},"r":{r},"p":{p},"salt":"{salt}"}}"#)
    };
    assert!(serde_json::from_str::<KdfParams>(&doc("scrypt", 12, 8, 1, &salt)).is_ok());
    let hostile = [
        (doc("scrypt", 9, 8, 1, &salt), "log_n outside"),
        (doc("scrypt", 23, 1, 1, &salt), "log_n outside"),
        (doc("scrypt", 63, 8, 1, &salt), "log_n outside"),
        (doc("scrypt", 300, 8, 1, &salt), "invalid value"),
        (doc("scrypt", -1, 8, 1, &salt), "invalid value"),
        (doc("scrypt", 22, 8, 1, &salt), "memory above 1 GiB"), // 4 GiB
        (doc("scrypt", 14, 0, 1, &salt), "r outside"),
        (doc("scrypt", 14, 4_294_967_295, 1, &salt), "r outside"),
        (doc("scrypt", 14, 8, 0, &salt), "p outside"),
        (doc("scrypt", 14, 8, 4_294_967_295, &salt), "p outside"),
        (doc("scrypt", 20, 8, 8, &salt), "work above 4 GiB"),
        (doc("argon2id", 14, 8, 1, &salt), "not scrypt"),
        (doc("scrypt", 14, 8, 1, "00"), "salt"),
        (doc("scrypt", 14, 8, 1, &"zz".repeat(32)), "salt"),
        (doc("scrypt", 14, 8, 1, &"00".repeat(33)), "salt"),
        (
            r#"{"algorithm":"scrypt","logN":14,"r":8,"p":1}"#.to_owned(),
            "missing field",
        ),
        (
            format!(
                r#"{{"algorithm":"scrypt","logN":14,"r":8,"p":1,"salt":"{salt}","dklen":4096}}"#
            ),
            "unknown field",
        ),
    ];
    for (json, why) in hostile {
        let err = serde_json::from_str::<KdfParams>(&json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{json}: {err}");
    }
    // Out-of-range parameters never reach scrypt.
    assert!(matches!(
        KdfParams::new(22, 8, 1, [0; 32]),
        Err(Error::MalformedRecord(_))
    ));
}
