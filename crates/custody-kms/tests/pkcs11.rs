//! The `pkcs11` backends end to end, against a real SoftHSM2 token.
//!
//! The runner sets two variables (CI does; see the crate's CI notes):
//! - `SOFTHSM2_CONF`: a `softhsm2.conf` whose `directories.tokendir` is an
//!   empty, writable directory (`objectstore.backend = file`);
//! - `CUSTODY_TEST_PKCS11_MODULE`: the module, e.g.
//!   `/usr/lib/softhsm/libsofthsm2.so`.
//!
//! Each test initializes a fresh token with a unique label (`C_InitToken` on
//! the free slot, then `C_InitPIN`), through cryptoki, in this process. The
//! tests are skipped, saying so, when `CUSTODY_TEST_PKCS11_MODULE` is unset.
//! Everything runs in one process on one module (SoftHSM2's multi-process
//! use is flaky upstream, softhsm/SoftHSMv2#757). The tests that finalize
//! the module under the backend take a write lock that every other test
//! holds for reading, so they never run beside one.
#![cfg(feature = "pkcs11")]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures and helpers panic on failure, like the tests that call them"
)]

use std::num::NonZeroUsize;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass};
use custody_core::{
    Authorization, Capabilities, DataKey, Digest32, EncryptionContext, Envelope, Error, Intent,
    KekId, KeyBackend, KeyRef, KeySigner, PublicKey, RawSignature, SharedBackend, SignRequest,
    SigningBackend, WrappingBackend,
};
use custody_kms::{Pin, Pkcs11Kek, Pkcs11Module, Pkcs11Signer, Pkcs11Token, Pkcs11Uri};
use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::{Signature, VerifyingKey};

// ---------------------------------------------------------------- fixtures

/// Held for reading by every test, for writing by those that finalize the
/// module (which drops every session of the process).
fn disruption() -> &'static RwLock<()> {
    static LOCK: RwLock<()> = RwLock::new(());
    &LOCK
}

fn shared() -> RwLockReadGuard<'static, ()> {
    disruption()
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    disruption()
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many tokens the process-wide fixture makes (one per test).
const TOKENS: usize = 24;

#[path = "support/pkcs11.rs"]
mod fixture;
use fixture::*;

fn digest(i: u32) -> Digest32 {
    let mut d = [0u8; 32];
    d[..4].copy_from_slice(&i.to_be_bytes());
    d[4..8].copy_from_slice(b"p11!");
    for (j, b) in d.iter_mut().enumerate().skip(8) {
        *b = u8::try_from(j).unwrap().wrapping_mul(31) ^ u8::try_from(i % 251).unwrap();
    }
    Digest32(d)
}

/// `⌊n/2⌋` of secp256k1.
const HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

fn check_signature(pinned: &PublicKey, d: &Digest32, sig: &custody_core::RecoverableSignature) {
    let vk = VerifyingKey::from(*pinned.as_k256());
    let mut rs = [0u8; 64];
    rs[..32].copy_from_slice(sig.r());
    rs[32..].copy_from_slice(sig.s());
    let k = Signature::from_slice(&rs).unwrap();
    vk.verify_prehash(&d.0, &k).unwrap();
    assert!(sig.s() <= &HALF_ORDER, "not low-s");
    assert_eq!(&sig.recover(d).unwrap(), pinned);
}

/// A signature of `d` by `signer` as callers ask for it (no
/// authorization), checked with [`check_signature`] against the pinned
/// key.
fn sign_checked(signer: &KeySigner, d: Digest32) -> custody_core::RecoverableSignature {
    let sig = signer
        .sign(d, Intent::raw_digest(), &Authorization::none())
        .wait()
        .unwrap();
    check_signature(signer.key().secp256k1().unwrap(), &d, &sig);
    sig
}

// ---------------------------------------------------------------- signing

#[test]
fn signatures_verify_recover_and_are_low_s() {
    let _g = shared();
    let Some(fx) = fresh_token("signatures_verify_recover_and_are_low_s") else {
        return;
    };
    let backend = Arc::new(Pkcs11Signer::new(fx.open()));
    let generated = backend.generate("hot-1").unwrap();
    let signer = KeySigner::pin(backend.clone(), stored("hot-1"))
        .wait()
        .unwrap();
    assert_eq!(
        signer.key().secp256k1().unwrap(),
        generated.secp256k1().unwrap()
    );
    let pinned = *signer.key().secp256k1().unwrap();
    let auth = Authorization::none();
    let (mut high, mut low, mut parity) = (0, 0, [false; 2]);
    for i in 0..48 {
        let d = digest(i);
        // The raw answer: both halves of the s range must occur.
        let raw = backend
            .sign_digest(SignRequest::new(
                signer.key(),
                d,
                Intent::raw_digest(),
                &auth,
            ))
            .wait()
            .unwrap();
        let RawSignature::Compact(rs) = raw.signature else {
            panic!("CKM_ECDSA gives r‖s: {:?}", raw.signature)
        };
        if rs[32..] > HALF_ORDER[..] {
            high += 1;
        } else {
            low += 1;
        }
        let sig = signer.sign(d, Intent::raw_digest(), &auth).wait().unwrap();
        check_signature(&pinned, &d, &sig);
        parity[usize::from(sig.y_parity())] = true;
    }
    assert!(high > 0 && low > 0, "high-s {high}, low-s {low}");
    assert_eq!(parity, [true, true], "both recovery parities were found");
}

#[test]
fn key_looked_up_once_not_per_signature() {
    // Regression (ethsigner#327): a key looked up on every PKCS#11 call
    // took a signer from 100 to 1 transaction per second.
    let _g = shared();
    let Some(fx) = fresh_token("key_looked_up_once_not_per_signature") else {
        return;
    };
    let token = fx.open();
    Pkcs11Signer::new(token.clone()).generate("k").unwrap();
    let backend = Arc::new(Pkcs11Signer::new(token.clone()));
    let before = token.counters().object_searches;
    let signer = KeySigner::pin(backend, stored("k")).wait().unwrap();
    let at_pin = token.counters().object_searches;
    assert_eq!(at_pin - before, 2, "the private key, then its public key");
    for i in 0..32 {
        let d = digest(i);
        sign_checked(&signer, d);
    }
    let c = token.counters();
    assert_eq!(c.object_searches, at_pin, "no lookup per signature");
    assert_eq!(c.recoveries, 0);
    assert_eq!(c.logins, 1, "logged in once");
}

#[test]
fn keys_named_by_uri_and_by_another_signer_are_found() {
    let _g = shared();
    let Some(fx) = fresh_token("keys_named_by_uri_and_by_another_signer_are_found") else {
        return;
    };
    let token = fx.open();
    let pinned = Pkcs11Signer::new(token.clone()).generate("hot-2").unwrap();
    let uri = format!("pkcs11:token={};object=hot-2;type=private", fx.label);
    let backend = Pkcs11Signer::new(token.clone());
    let by_uri = backend.pin(&stored(&uri)).wait().unwrap();
    assert_eq!(by_uri.secp256k1().unwrap(), pinned.secp256k1().unwrap());
    // A key pinned by another signer instance is looked up once, here.
    let other = Pkcs11Signer::new(token.clone());
    let auth = Authorization::none();
    let s = other
        .sign_digest(SignRequest::new(
            &pinned,
            digest(1),
            Intent::raw_digest(),
            &auth,
        ))
        .wait()
        .unwrap();
    assert!(matches!(s.signature, RawSignature::Compact(_)));
    // A URI for another token, or a public-key type, is refused.
    let e = backend
        .pin(&stored("pkcs11:token=elsewhere;object=hot-2"))
        .wait()
        .unwrap_err();
    assert_eq!(p11_error(&e).kind(), "not-found");
    let e = backend
        .pin(&stored("pkcs11:object=hot-2;type=public"))
        .wait()
        .unwrap_err();
    assert_eq!(p11_error(&e).kind(), "wrong-key-usage");
}

#[test]
fn missing_and_wrong_keys_are_typed() {
    let _g = shared();
    let Some(fx) = fresh_token("missing_and_wrong_keys_are_typed") else {
        return;
    };
    let token = fx.open();
    let backend = Pkcs11Signer::new(token.clone());
    let e = backend.pin(&stored("missing")).wait().unwrap_err();
    assert!(matches!(e, Error::KeyNotFound), "{e:?}");
    assert_eq!(e.kind(), "not-found");
    let hd = backend
        .pin(&KeyRef::Path("m/44'/60'/0'/0/0".parse().unwrap()))
        .wait()
        .unwrap_err();
    assert!(matches!(hd, Error::Unsupported(_)), "{hd:?}");

    // A P-384 key (secp384r1, OID 1.3.132.0.34) is of a curve custody does
    // not use (P-256 keys are pinned: pkcs11_algorithms.rs).
    let session = fx.user_session();
    let p384 = vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(p384),
                Attribute::Verify(true),
                Attribute::Label(b"p384".to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::Label(b"p384".to_vec()),
            ],
        )
        .unwrap();
    drop(session);
    let e = backend.pin(&stored("p384")).wait().unwrap_err();
    let p = p11_error(&e);
    assert_eq!(p.kind(), "wrong-key-usage", "{p}");

    // Labels are unique: generating over an existing one is refused.
    backend.generate("dup").unwrap();
    let e = backend.generate("dup").unwrap_err();
    assert_eq!(p11_error(&e).kind(), "already-exists");
}

#[test]
fn many_threads_sign_at_once_through_one_backend() {
    let _g = shared();
    let Some(fx) = fresh_token("many_threads_sign_at_once_through_one_backend") else {
        return;
    };
    let token = Pkcs11Token::open_with(
        &fx.module(),
        &fx.label,
        Pin::new(USER_PIN),
        NonZeroUsize::new(3).unwrap(),
    )
    .unwrap();
    let backend = Arc::new(Pkcs11Signer::new(token.clone()));
    backend.generate("busy").unwrap();
    let signer = Arc::new(KeySigner::pin(backend, stored("busy")).wait().unwrap());
    let threads: Vec<_> = (0..8u32)
        .map(|t| {
            let signer = Arc::clone(&signer);
            std::thread::spawn(move || {
                for i in 0..12 {
                    let d = digest(t * 1000 + i);
                    sign_checked(&signer, d);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let c = token.counters();
    assert!(c.sessions_opened <= 3, "bounded pool: {c:?}");
    assert_eq!(c.recoveries, 0, "{c:?}");
}

#[test]
fn logged_out_token_is_logged_in_again_and_the_signature_retried() {
    let _g = shared();
    let Some(fx) = fresh_token("logged_out_token_is_logged_in_again_and_the_signature_retried")
    else {
        return;
    };
    let token = fx.open();
    let backend = Arc::new(Pkcs11Signer::new(token.clone()));
    backend.generate("relog").unwrap();
    let signer = KeySigner::pin(backend, stored("relog")).wait().unwrap();
    let auth = Authorization::none();
    signer
        .sign(digest(1), Intent::raw_digest(), &auth)
        .wait()
        .unwrap();
    // C_Logout from any session logs the application out of the token:
    // every pooled session is now a public session (CKR_USER_NOT_LOGGED_IN).
    let ctx = fx.raw();
    let session = ctx.open_rw_session(fx.slot()).unwrap();
    session.logout().unwrap();
    drop(session);
    let before = token.counters();
    sign_checked(&signer, digest(2));
    let after = token.counters();
    assert_eq!(after.recoveries - before.recoveries, 1, "{after:?}");
    assert_eq!(after.logins - before.logins, 1, "{after:?}");
}

#[test]
fn session_closed_under_the_signer_is_reopened_and_the_signature_retried() {
    // The module finalized under the backend (every session closed, every
    // handle void): the next signature re-initializes it, re-opens a
    // session, logs in, looks the key up again and succeeds.
    let _g = exclusive();
    let Some(fx) =
        fresh_token("session_closed_under_the_signer_is_reopened_and_the_signature_retried")
    else {
        return;
    };
    let token = fx.open();
    let backend = Arc::new(Pkcs11Signer::new(token.clone()));
    backend.generate("phoenix").unwrap();
    let kek = Pkcs11Kek::new(token.clone(), KekId::new("kek").unwrap()).unwrap();
    let kek_id = kek.generate("kek").unwrap();
    let ctx_ = EncryptionContext::new().with("wallet", "w").unwrap();
    let env = Envelope::seal(&kek, &kek_id, &ctx_, b"seed")
        .wait()
        .unwrap();
    let signer = KeySigner::pin(backend, stored("phoenix")).wait().unwrap();
    let auth = Authorization::none();
    signer
        .sign(digest(1), Intent::raw_digest(), &auth)
        .wait()
        .unwrap();

    fx.raw().finalize().unwrap();
    let before = token.counters();
    sign_checked(&signer, digest(2));
    let after = token.counters();
    assert_eq!(after.recoveries - before.recoveries, 1, "{after:?}");
    assert_eq!(
        after.object_searches - before.object_searches,
        2,
        "the key is looked up again once after the recovery"
    );
    // The KEK's handle is looked up again too.
    assert_eq!(
        env.open(&kek, &ctx_).wait().unwrap().expose_secret(),
        b"seed"
    );

    // And once more with the module re-initialized by someone else first:
    // the pooled handles are simply invalid now.
    let ctx = fx.raw();
    ctx.clone().finalize().unwrap();
    let ctx = raw(&fx.path);
    sign_checked(&signer, digest(3));
    assert_eq!(token.counters().recoveries - after.recoveries, 1);
    drop(ctx);
}

// ---------------------------------------------------------------- wrapping

#[path = "support/envelope.rs"]
mod envelope;
use envelope::{context, with_wrapped_key};

#[test]
fn envelope_round_trip_through_the_token_kek() {
    let _g = shared();
    let Some(fx) = fresh_token("envelope_round_trip_through_the_token_kek") else {
        return;
    };
    let token = fx.open();
    let kek = Pkcs11Kek::new(token.clone(), KekId::new("master").unwrap()).unwrap();
    assert_eq!(kek.mechanism_name(), "CKM_AES_KEY_WRAP_PAD");
    let kek_id = kek.generate("master").unwrap();
    let ctx = context("alice");
    let secret = b"an HD master seed, say".as_slice();
    let env = Envelope::seal(&kek, &kek_id, &ctx, secret).wait().unwrap();
    assert_eq!(env.kek(), &kek_id);
    assert_eq!(
        env.wrapped_key().len(),
        2 + 72,
        "tag, mechanism, RFC 5649 of 64 bytes"
    );
    assert_eq!(env.open(&kek, &ctx).wait().unwrap().expose_secret(), secret);

    // wrap/unwrap of a key made here, and the KEK named by URI.
    let key = DataKey::random().unwrap();
    let blob = kek.wrap(&kek_id, &key, &ctx).wait().unwrap();
    assert_eq!(kek.unwrap(&kek_id, &blob, &ctx).wait().unwrap(), key);
    let by_uri = KekId::new("pkcs11:object=master;type=secret-key").unwrap();
    assert_eq!(kek.unwrap(&by_uri, &blob, &ctx).wait().unwrap(), key);
    // Wrapping is randomized by nothing: the same key and context wrap
    // alike, another context differently.
    assert_eq!(kek.wrap(&kek_id, &key, &ctx).wait().unwrap(), blob);
    assert_ne!(
        kek.wrap(&kek_id, &key, &context("bob")).wait().unwrap(),
        blob
    );

    let e = kek.generate("master").unwrap_err();
    assert_eq!(p11_error(&e).kind(), "already-exists");
}

#[test]
fn wrong_context_wrong_kek_and_tampering_are_decryption_failed() {
    let _g = shared();
    let Some(fx) = fresh_token("wrong_context_wrong_kek_and_tampering_are_decryption_failed")
    else {
        return;
    };
    let token = fx.open();
    let kek = Pkcs11Kek::new(token.clone(), KekId::new("a").unwrap()).unwrap();
    let a = kek.generate("a").unwrap();
    let b = kek.generate("b").unwrap();
    let ctx = context("alice");
    let env = Envelope::seal(&kek, &a, &ctx, b"secret").wait().unwrap();

    for wrong in [context("mallory"), EncryptionContext::new()] {
        let e = env.open(&kek, &wrong).wait().unwrap_err();
        assert!(matches!(e, Error::DecryptionFailed), "{e:?}");
    }
    // The second AES key: the RFC 5649 integrity check fails.
    let e = kek.unwrap(&b, env.wrapped_key(), &ctx).wait().unwrap_err();
    assert!(matches!(e, Error::DecryptionFailed), "{e:?}");
    let e = with_wrapped_key(&env, &b, env.wrapped_key())
        .open(&kek, &ctx)
        .wait()
        .unwrap_err();
    assert!(matches!(e, Error::DecryptionFailed), "{e:?}");
    // Every byte flipped, truncations, extensions.
    let wrapped = env.wrapped_key().to_vec();
    for at in 0..wrapped.len() {
        let mut bad = wrapped.clone();
        bad[at] ^= 0x01;
        let e = kek.unwrap(&a, &bad, &ctx).wait().unwrap_err();
        assert!(matches!(e, Error::DecryptionFailed), "byte {at}: {e:?}");
    }
    for len in [0, 1, 2, 10, wrapped.len() - 8, wrapped.len() - 1] {
        let e = kek.unwrap(&a, &wrapped[..len], &ctx).wait().unwrap_err();
        assert!(matches!(e, Error::DecryptionFailed), "len {len}: {e:?}");
    }
    let mut longer = wrapped.clone();
    longer.extend_from_slice(&[0; 8]);
    let e = kek.unwrap(&a, &longer, &ctx).wait().unwrap_err();
    assert!(matches!(e, Error::DecryptionFailed), "{e:?}");

    // An unknown KEK is not a decryption failure.
    let e = kek
        .unwrap(&KekId::new("nope").unwrap(), &wrapped, &ctx)
        .wait()
        .unwrap_err();
    assert!(matches!(e, Error::UnknownKek), "{e:?}");
    // Nor is a signing key named as a KEK.
    Pkcs11Signer::new(token.clone()).generate("signer").unwrap();
    let e = kek
        .unwrap(&KekId::new("signer").unwrap(), &wrapped, &ctx)
        .wait()
        .unwrap_err();
    assert!(matches!(e, Error::UnknownKek), "{e:?}");
}

/// The wrapped-key format, frozen: `0x01 ‖ tag ‖ AES-KW(KEK, data key ‖
/// SHA-256("custody-kms/pkcs11/kek-context/v1\0" ‖ tag ‖ context))`, tag 1
/// for RFC 5649 (`CKM_AES_KEY_WRAP_PAD`), 2 for RFC 3394
/// (`CKM_AES_KEY_WRAP`). Computed independently with Python's
/// `cryptography` (`aes_key_wrap_with_padding`, `aes_key_wrap`) for KEK
/// `0x11 * 32`, data key `0x22 * 32`, context `{purpose: seed, wallet:
/// alice}`.
const FROZEN_KWP: &str = "0101c9d5f53cab56e6d12acb654eb9f565713f53434f0638ab3c763a9c01a00dd8b23c3a7d63ed5f2503ef602c44ec894fc3481cbdcd50383f1545f7b7518f563267b3e9261ab2d8b4ae";
const FROZEN_KW: &str = "010233efae24ed69e5ba12928a5b68846f9dd4fe01c999d6e2cd8b10b4e5e95b3d75cbf8a5696b879d12393c8c3c1ea541020b9ee1247dac73f80652fd9d9f4ed560ebfba1f4175d63e2";

#[test]
fn wrapped_key_format_is_frozen() {
    let _g = shared();
    let Some(fx) = fresh_token("wrapped_key_format_is_frozen") else {
        return;
    };
    let token = fx.open();
    // A KEK with a known value (imported, so the vectors can be checked).
    let session = fx.user_session();
    session
        .create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(cryptoki::object::KeyType::AES),
            Attribute::Value(vec![0x11; 32]),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Wrap(true),
            Attribute::Unwrap(true),
            Attribute::Label(b"frozen".to_vec()),
        ])
        .unwrap();
    drop(session);
    let id = KekId::new("frozen").unwrap();
    let kek = Pkcs11Kek::new(token, id.clone()).unwrap();
    let key = DataKey::new([0x22; 32]);
    let ctx = context("alice");
    let wrapped = kek.wrap(&id, &key, &ctx).wait().unwrap();
    assert_eq!(hex::encode(&wrapped), FROZEN_KWP);
    for vector in [FROZEN_KWP, FROZEN_KW] {
        let bytes = hex::decode(vector).unwrap();
        assert_eq!(kek.unwrap(&id, &bytes, &ctx).wait().unwrap(), key);
        let e = kek.unwrap(&id, &bytes, &context("bob")).wait().unwrap_err();
        assert!(matches!(e, Error::DecryptionFailed), "{e:?}");
    }
}

#[test]
fn unwrapping_leaves_no_objects_behind() {
    let _g = shared();
    let Some(fx) = fresh_token("unwrapping_leaves_no_objects_behind") else {
        return;
    };
    let token = fx.open();
    let kek = Pkcs11Kek::new(token.clone(), KekId::new("k").unwrap()).unwrap();
    let id = kek.generate("k").unwrap();
    let ctx = context("w");
    let searches = token.counters().object_searches;
    for _ in 0..10 {
        let env = Envelope::seal(&kek, &id, &ctx, b"x").wait().unwrap();
        env.open(&kek, &ctx).wait().unwrap();
        let _ = env.open(&kek, &context("other")).wait().unwrap_err();
    }
    assert_eq!(
        token.counters().object_searches,
        searches,
        "the KEK is looked up once, not per wrap"
    );
    // The backend's login covers this session too (logins are per
    // application): every object, session objects included, is visible.
    let session = fx.user_session();
    let all = session.find_objects(&[]).unwrap();
    assert_eq!(all.len(), 1, "only the KEK is left");
    let secret = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Token(false),
        ])
        .unwrap();
    assert!(secret.is_empty());
}

// ---------------------------------------------------------------- access

#[test]
fn wrong_pin_is_access_denied_and_not_retried() {
    let _g = shared();
    let Some(fx) = fresh_token("wrong_pin_is_access_denied_and_not_retried") else {
        return;
    };
    let e = Pkcs11Token::open(&fx.module(), &fx.label, Pin::new("hunter2")).unwrap_err();
    assert_eq!(e.kind(), "access-denied", "{e}");
    assert_eq!(e.return_code(), Some("CKR_PIN_INCORRECT"));
    assert!(!e.to_string().contains("hunter2"));
    assert!(!format!("{e:?}").contains("hunter2"));
    let core = Error::from(e);
    assert_eq!(p11_error(&core).kind(), "access-denied");
    // The right PIN still works (the token was not locked).
    let token = fx.open();
    assert_eq!(token.counters().logins, 1);
}

#[test]
fn unknown_token_and_module_are_typed() {
    let _g = shared();
    let Some(path) = module_path("unknown_token_and_module_are_typed") else {
        return;
    };
    let _made_first = token_pool(&path);
    let module = Pkcs11Module::load(&path).unwrap();
    assert_eq!(module, Pkcs11Module::load(&path).unwrap(), "loaded once");
    let e = Pkcs11Token::open(&module, "no-such-token", Pin::new("1")).unwrap_err();
    assert_eq!(e.kind(), "not-found", "{e}");
    let e = Pkcs11Module::load(std::path::Path::new("/nonexistent/libnope.so")).unwrap_err();
    assert_eq!(e.kind(), "unavailable", "{e}");
}

#[test]
fn uri_opens_the_token_with_its_pin_source_and_module_path() {
    let _g = shared();
    let Some(fx) = fresh_token("uri_opens_the_token_with_its_pin_source_and_module_path") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("custody-p11-{}", fx.label));
    std::fs::create_dir_all(&dir).unwrap();
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, format!("{USER_PIN}\n")).unwrap();
    let uri = Pkcs11Uri::parse(&format!(
        "pkcs11:token={};object=k?pin-source=file:{}&module-path={}",
        fx.label,
        pin_file.display(),
        fx.path.display()
    ))
    .unwrap();
    let token = Pkcs11Token::open_uri(&uri, None, None).unwrap();
    assert_eq!(token.label(), fx.label);
    // Without pin-source, the caller's PIN (the CLI's CUSTODY_PKCS11_PIN).
    let uri = Pkcs11Uri::parse(&format!("pkcs11:token={}", fx.label)).unwrap();
    let token = Pkcs11Token::open_uri(&uri, Some(&fx.path), Some(Pin::new(USER_PIN))).unwrap();
    assert_eq!(token.module(), &fx.module());
    let e = Pkcs11Token::open_uri(&uri, Some(&fx.path), None).unwrap_err();
    assert_eq!(e.kind(), "bad-input");
    let e = Pkcs11Token::open_uri(&uri, None, Some(Pin::new(USER_PIN))).unwrap_err();
    assert_eq!(e.kind(), "bad-input");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn debug_and_errors_show_no_secrets() {
    let _g = shared();
    let Some(fx) = fresh_token("debug_and_errors_show_no_secrets") else {
        return;
    };
    let token = fx.open();
    let signer = Pkcs11Signer::new(token.clone());
    let kek = Pkcs11Kek::new(token.clone(), KekId::new("kek").unwrap()).unwrap();
    for s in [
        format!("{token:?}"),
        format!("{signer:?}"),
        format!("{kek:?}"),
        format!("{:?}", Pin::new(USER_PIN)),
    ] {
        assert!(!s.contains(USER_PIN), "{s}");
    }
    assert!(format!("{token:?}").contains(&fx.label));
}

#[test]
fn backends_are_object_safe_and_declare_capabilities() {
    let _g = shared();
    let Some(fx) = fresh_token("backends_are_object_safe_and_declare_capabilities") else {
        return;
    };
    let token = fx.open();
    let signer: SharedBackend = Arc::new(Pkcs11Signer::new(token.clone()));
    let kek: SharedBackend = Arc::new(Pkcs11Kek::new(token, KekId::new("kek").unwrap()).unwrap());
    let c = Capabilities::of(signer.as_ref());
    assert!(c.signing.is_some_and(|k| k.stored && !k.hd));
    assert!(c.decrypting && !c.wrapping && !c.exporting);
    let c = Capabilities::of(kek.as_ref());
    assert!(c.signing.is_none() && c.wrapping && !c.exporting && !c.decrypting);
    assert_eq!(signer.name(), "pkcs11");
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Pkcs11Signer>();
    is_send_sync::<Pkcs11Kek>();
    is_send_sync::<Pkcs11Token>();
    let _: &dyn KeyBackend = kek.as_ref();
}
