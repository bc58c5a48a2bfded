//! A PKCS#11 token through custody against the same token calls made raw
//! with cryptoki, in the same run, on a fresh SoftHSM2 token of the module
//! named by `CUSTODY_TEST_PKCS11_MODULE` (`SOFTHSM2_CONF` names a
//! `softhsm2.conf` with a writable token directory):
//!
//! - `pkcs11_paired/sign`: a digest signed through `KeySigner` over
//!   `Pkcs11Signer` (a pooled session, one `C_Sign` with `CKM_ECDSA` on the
//!   cached key handle, then custody's normalization: low-s, recovery id
//!   found against the pinned key) interleaved with a raw cryptoki
//!   `Session::sign` of the same kind of digest on a session of the bench's
//!   own, logged in to the same token, with the key handle found once (see
//!   `Pairing`): the ratio is custody's overhead on a token signature;
//! - `pkcs11_paired/floor`: the raw `C_Sign` followed by custody's public
//!   `normalize` (the recovery id, which a token does not return and
//!   Ethereum needs) against the raw `C_Sign` alone: the floor under any
//!   correct caller of the token; `pkcs11_paired/sign_vs_floor`: custody's
//!   whole path against that floor (what custody adds beyond it);
//! - `pkcs11_paired/open`: an envelope opened under `Pkcs11Kek` (one
//!   `C_UnwrapKey` into a session object, its `CKA_VALUE` read, the object
//!   destroyed, the context hash checked, then AES-256-GCM) interleaved
//!   with the same three raw calls on the same wrapped bytes.
//!
//! The token's own counters (`TokenCounters`: object searches, sessions
//! opened, logins, recoveries) over each timed run are written beside the
//! results (`calls.json`): no object look-up after pin, no session opened
//! or login after the first, no recovery (so each signature was exactly
//! one `C_Sign` attempt, each open one `C_UnwrapKey`).
//!
//! Run `SOFTHSM2_CONF=... CUSTODY_TEST_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so
//! cargo bench -p custody-benches --features pkcs11 --bench pkcs11`; without
//! `CUSTODY_TEST_PKCS11_MODULE` the bench is skipped, saying so.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup: a failure is a broken benchmark"
)]
#![allow(missing_docs, reason = "criterion_main generates an undocumented main")]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use custody_benches::{Pairing, save_calls};
use custody_core::{
    Authorization, Digest32, EncryptionContext, Envelope, Intent, KekId, KeyId, KeyRef, KeySigner,
    RawSignature, normalize,
};
use custody_kms::{Pin, Pkcs11Kek, Pkcs11Module, Pkcs11Signer, Pkcs11Token, TokenCounters};

const MODULE_VAR: &str = "CUSTODY_TEST_PKCS11_MODULE";
const SO_PIN: &str = "bench-so-0000";
const USER_PIN: &str = "bench-user-1234";
const SIGNING_KEY: &str = "bench-sign";
const KEK: &str = "bench-kek";

/// The bench's own handle on the module (the same loaded library custody
/// uses: `C_Initialize` once per process, "already initialized" is fine).
fn raw(path: &Path) -> Pkcs11 {
    let ctx = Pkcs11::new(path).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .or_else(|e| match e {
            CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _) => Ok(()),
            e => Err(e),
        })
        .unwrap();
    ctx
}

/// The slot of the token labelled `label`.
fn slot_of(ctx: &Pkcs11, label: &str) -> Slot {
    ctx.get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == label)
        .unwrap()
}

/// Initializes a fresh token labelled `label` on the free slot and sets
/// its user PIN.
fn init_token(ctx: &Pkcs11, label: &str) {
    let free = ctx
        .get_all_slots()
        .unwrap()
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .is_ok_and(|info| !info.token_initialized())
        })
        .unwrap();
    ctx.init_token(free, &AuthPin::new(SO_PIN.into()), label)
        .unwrap();
    // SoftHSM2 moves a token to another slot once initialized.
    let session = ctx.open_rw_session(slot_of(ctx, label)).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
        .unwrap();
    session.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    session.logout().unwrap();
}

/// A session of the bench's own on the token, logged in as the user (the
/// login custody's token made already covers it: logins are per
/// application).
fn user_session(ctx: &Pkcs11, label: &str) -> Session {
    let session = ctx.open_rw_session(slot_of(ctx, label)).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::new(USER_PIN.into())))
        .or_else(|e| match e {
            CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _) => Ok(()),
            e => Err(e),
        })
        .unwrap();
    session
}

/// The one object of `class` labelled `label`.
fn find_one(session: &Session, class: ObjectClass, label: &str) -> ObjectHandle {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1, "one {class} labelled {label}");
    found[0]
}

/// The counters' growth from `before` to `after`, by the PKCS#11 call each
/// one counts.
fn grown(before: TokenCounters, after: TokenCounters) -> Vec<(&'static str, u64)> {
    vec![
        (
            "C_FindObjects",
            after.object_searches - before.object_searches,
        ),
        (
            "C_OpenSession",
            after.sessions_opened - before.sessions_opened,
        ),
        ("C_Login", after.logins - before.logins),
        ("recoveries", after.recoveries - before.recoveries),
    ]
}

fn digest(i: u64) -> Digest32 {
    let mut d = [0x5a; 32];
    d[..8].copy_from_slice(&i.to_be_bytes());
    Digest32(d)
}

fn pkcs11(c: &mut Criterion) {
    let Some(path) = std::env::var_os(MODULE_VAR).filter(|v| !v.is_empty()) else {
        println!(
            "skipped: set {MODULE_VAR}=/usr/lib/softhsm/libsofthsm2.so and SOFTHSM2_CONF to a softhsm2.conf with a writable token directory"
        );
        return;
    };
    let path = PathBuf::from(path);
    let ctx = raw(&path);
    // Unique across runs sharing a token directory (labels are <= 32 bytes).
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 1_000_000_000;
    let label = format!("bench-{}-{run}", std::process::id());
    init_token(&ctx, &label);

    let module = Pkcs11Module::load(&path).unwrap();
    let token = Pkcs11Token::open(&module, &label, Pin::new(USER_PIN)).unwrap();
    let backend = Arc::new(Pkcs11Signer::new(token.clone()));
    backend.generate(SIGNING_KEY).unwrap();
    let kek = Pkcs11Kek::new(token.clone(), KekId::new(KEK).unwrap()).unwrap();
    let kek_id = kek.generate(KEK).unwrap();

    // The baseline's own session, its handles found once, here.
    let session = user_session(&ctx, &label);
    let private = find_one(&session, ObjectClass::PRIVATE_KEY, SIGNING_KEY);
    let aes = find_one(&session, ObjectClass::SECRET_KEY, KEK);

    let mut g = c.benchmark_group("pkcs11_paired");
    g.sample_size(10);

    // Signing: pinned once (the private key, then its public key), then
    // counted from here.
    let signer = KeySigner::pin(backend, KeyRef::Stored(KeyId::new(SIGNING_KEY).unwrap()))
        .wait()
        .unwrap();
    let none = Authorization::none();
    let raw_sign = |i: u64| {
        let sig = session
            .sign(&Mechanism::Ecdsa, private, &digest(i).0)
            .unwrap();
        black_box(sig);
    };
    assert_eq!(
        session
            .sign(&Mechanism::Ecdsa, private, &digest(0).0)
            .unwrap()
            .len(),
        64,
        "CKM_ECDSA on secp256k1 gives r‖s"
    );
    let before = token.counters();
    let mut pairing = Pairing::default();
    let mut signatures = 0u64;
    g.bench_function("sign", |b| {
        b.iter_custom(|iters| {
            signatures += iters;
            let mut n = 0;
            pairing.run(
                iters,
                || {
                    raw_sign(n);
                    n += 1;
                },
                |i| {
                    let sig = signer
                        .sign(digest(i as u64), Intent::raw_digest(), &none)
                        .wait()
                        .unwrap();
                    black_box(sig);
                },
            )
        });
    });
    pairing.save("pkcs11_paired", "sign");
    save_calls(
        "pkcs11_paired",
        "sign",
        "signature",
        signatures,
        &grown(before, token.counters()),
    );

    // The floor under any correct client of this token: the raw C_Sign
    // followed by the one computation no caller can skip, the recovery id
    // (`normalize`: low-s, then the parity of R found against the pinned
    // key; PKCS#11 returns r‖s only, and Ethereum needs v). `floor` is that
    // floor against the raw call alone; `sign_vs_floor` is custody against
    // the floor, i.e. what custody adds beyond it.
    let pinned = *signer.key().secp256k1().unwrap();
    let floor_sign = |i: u64| {
        let d = digest(i);
        let sig = session.sign(&Mechanism::Ecdsa, private, &d.0).unwrap();
        let compact: [u8; 64] = sig.as_slice().try_into().unwrap();
        black_box(normalize(&RawSignature::Compact(compact), &pinned, &d).unwrap());
    };
    let mut pairing = Pairing::default();
    g.bench_function("floor", |b| {
        b.iter_custom(|iters| {
            let mut n = 0;
            pairing.run(
                iters,
                || {
                    raw_sign(n);
                    n += 1;
                },
                |i| floor_sign(i as u64),
            )
        });
    });
    pairing.save("pkcs11_paired", "floor");
    let mut pairing = Pairing::default();
    g.bench_function("sign_vs_floor", |b| {
        b.iter_custom(|iters| {
            let mut n = 0;
            pairing.run(
                iters,
                || {
                    floor_sign(n);
                    n += 1;
                },
                |i| {
                    let sig = signer
                        .sign(digest(i as u64), Intent::raw_digest(), &none)
                        .wait()
                        .unwrap();
                    black_box(sig);
                },
            )
        });
    });
    pairing.save("pkcs11_paired", "sign_vs_floor");

    // Opening an envelope under the token KEK: one C_UnwrapKey into a
    // session object, read and destroyed.
    let context = EncryptionContext::new().with("purpose", "bench").unwrap();
    let envelope = Envelope::seal(&kek, &kek_id, &context, &[7; 64])
        .wait()
        .unwrap();
    // custody's wrapped bytes: format version, mechanism tag, then the
    // token's RFC 5649 output (CKM_AES_KEY_WRAP_PAD on SoftHSM2).
    assert_eq!(kek.mechanism_name(), "CKM_AES_KEY_WRAP_PAD");
    let wrapped = envelope.wrapped_key()[2..].to_vec();
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::GENERIC_SECRET),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
    ];
    let raw_unwrap = || {
        let secret = session
            .unwrap_key(&Mechanism::AesKeyWrapPad, aes, &wrapped, &template)
            .unwrap();
        let value = session
            .get_attributes(secret, &[AttributeType::Value])
            .unwrap();
        session.destroy_object(secret).unwrap();
        black_box(value);
    };
    let before = token.counters();
    let mut pairing = Pairing::default();
    let mut opens = 0u64;
    g.bench_function("open", |b| {
        b.iter_custom(|iters| {
            opens += iters;
            pairing.run(iters, raw_unwrap, |_| {
                black_box(envelope.open(&kek, &context).wait().unwrap());
            })
        });
    });
    pairing.save("pkcs11_paired", "open");
    save_calls(
        "pkcs11_paired",
        "open",
        "open",
        opens,
        &grown(before, token.counters()),
    );
    g.finish();
}

criterion_group!(benches, pkcs11);
criterion_main!(benches);
