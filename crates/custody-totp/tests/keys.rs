//! Keys that are not HD-derived (imported into a vault, held by a KMS or an
//! HSM: `KeyRef::Stored`, pinned without a path), enrolled by public key
//! and gated by `TotpGate` exactly as a wallet is.
//!
//! Expected codes come from totp-rs (an independent implementation) fed
//! the secret decoded from the enrolment's base32 by the `base32` crate.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers outside #[test] fns: a failed unwrap or panic is a failed test"
)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use custody_core::{
    AuditOutcome, Audited, Authorization, CasOutcome, Clearance, DataKey, Denial, Digest32,
    Error as CoreError, ExportingBackend, FileStore, Intent, KekId, KeyBackend, KeyId, KeyKinds,
    KeyRef, KeySigner, LocalKek, MemoryAuditLog, MemoryStore, OneTimeCode, Pending, PinnedKey,
    PrivateKeyBytes, PublicKey, SharedBackend, SignRequest, Signed, SigningBackend, StateStore,
    Vault, Versioned, WalletScheme, WrappingBackend,
};
use custody_totp::{
    Algorithm, Clock, EnrolMode, Enrolment, Error, ManualClock, OtpAuthUri, Subject, TotpConfig,
    TotpGate, TotpParams, TotpRegistry, Verification,
};
use sha2::{Digest, Sha256};

const NOW: u64 = 1_700_000_015;
const ALICE: &str = "alice@example.com";
const LABEL: &str = "kms:arn:aws:kms:eu-west-1:111122223333:key/1234abcd";
const KEY_A: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd";
const ALIAS_A: &str = "alias/treasury";
const KEY_B: &str = "imported-b";
const SECRET_A: [u8; 32] = [0x11; 32];
const SECRET_B: [u8; 32] = [0x22; 32];

/// Counts what reaches the backend under the gate; can be told to fail.
#[derive(Debug)]
struct Counting {
    inner: SharedBackend,
    signs: AtomicUsize,
    exports: AtomicUsize,
    fail_sign: AtomicBool,
}

impl SigningBackend for Counting {
    fn key_kinds(&self) -> KeyKinds {
        self.inner.signing().unwrap().key_kinds()
    }
    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, CoreError>> {
        self.inner.signing().unwrap().pin(key)
    }
    fn sign_digest<'a>(
        &'a self,
        request: SignRequest<'a>,
    ) -> Pending<'a, Result<Signed, CoreError>> {
        self.signs.fetch_add(1, Ordering::SeqCst);
        if self.fail_sign.load(Ordering::SeqCst) {
            return Pending::ready(Err(CoreError::Unsupported("the HSM is on fire")));
        }
        self.inner.signing().unwrap().sign_digest(request)
    }
}

impl ExportingBackend for Counting {
    fn export_private_key<'a>(
        &'a self,
        key: &'a PinnedKey,
        auth: &'a Authorization,
    ) -> Pending<'a, Result<PrivateKeyBytes, CoreError>> {
        self.exports.fetch_add(1, Ordering::SeqCst);
        self.inner
            .exporting()
            .unwrap()
            .export_private_key(key, auth)
    }
}

impl KeyBackend for Counting {
    fn name(&self) -> &str {
        "counting"
    }
    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }
    fn wrapping(&self) -> Option<&dyn WrappingBackend> {
        self.inner.wrapping()
    }
    fn exporting(&self) -> Option<&dyn ExportingBackend> {
        Some(self)
    }
}

/// A state store that logs the keys it is asked for.
#[derive(Debug)]
struct Logged {
    inner: Arc<dyn StateStore>,
    reads: Mutex<Vec<String>>,
    writes: Mutex<Vec<String>>,
}

impl Logged {
    fn new(inner: Arc<dyn StateStore>) -> Self {
        Self {
            inner,
            reads: Mutex::new(Vec::new()),
            writes: Mutex::new(Vec::new()),
        }
    }

    /// The keys read and written since the last call.
    fn take(&self) -> (Vec<String>, Vec<String>) {
        (
            std::mem::take(&mut *self.reads.lock().unwrap()),
            std::mem::take(&mut *self.writes.lock().unwrap()),
        )
    }
}

impl Logged {
    fn get_now(&self, key: &str) -> Result<Option<Versioned>, CoreError> {
        self.reads.lock().unwrap().push(key.to_owned());
        self.inner.get(key).wait()
    }
    fn swap_now(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
    ) -> Result<CasOutcome, CoreError> {
        self.writes.lock().unwrap().push(key.to_owned());
        self.inner.compare_and_swap(key, expected, value).wait()
    }
}

impl StateStore for Logged {
    fn get<'a>(&'a self, key: &'a str) -> Pending<'a, Result<Option<Versioned>, CoreError>> {
        Pending::ready(self.get_now(key))
    }
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<u64>,
        value: &'a [u8],
    ) -> Pending<'a, Result<CasOutcome, CoreError>> {
        Pending::ready(self.swap_now(key, expected, value))
    }
}

fn kek() -> SharedBackend {
    Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([7; 32]),
    ))
}

struct Fixture {
    clock: Arc<ManualClock>,
    store: Arc<Logged>,
    audit: Arc<MemoryAuditLog>,
    counting: Arc<Counting>,
    registry: Arc<TotpRegistry>,
    gate: Arc<TotpGate>,
    /// The public key of `SECRET_A`, held as `KEY_A` and `ALIAS_A`.
    a: PublicKey,
    /// The public key of `SECRET_B`, held as `KEY_B`.
    b: PublicKey,
}

/// A vault with an HD master and two imported keys, A under two ids.
fn vault(kek: SharedBackend) -> (Arc<Vault>, PublicKey, PublicKey) {
    let mut vault = Vault::new(kek, WalletScheme::Default);
    vault.set_master_seed(&[0x42; 64]).unwrap();
    let a = vault
        .insert_key(KeyId::new(KEY_A).unwrap(), PrivateKeyBytes::new(SECRET_A))
        .unwrap();
    let alias = vault
        .insert_key(KeyId::new(ALIAS_A).unwrap(), PrivateKeyBytes::new(SECRET_A))
        .unwrap();
    assert_eq!(a, alias);
    let b = vault
        .insert_key(KeyId::new(KEY_B).unwrap(), PrivateKeyBytes::new(SECRET_B))
        .unwrap();
    assert_ne!(a, b);
    (Arc::new(vault), a, b)
}

fn fixture_over(store: Arc<dyn StateStore>, require_enrolment: bool) -> Fixture {
    let clock = Arc::new(ManualClock::new(NOW));
    let store = Arc::new(Logged::new(store));
    let audit = Arc::new(MemoryAuditLog::new());
    let kek = kek();
    let (vault, a, b) = vault(kek.clone());
    let counting = Arc::new(Counting {
        inner: vault,
        signs: AtomicUsize::new(0),
        exports: AtomicUsize::new(0),
        fail_sign: AtomicBool::new(false),
    });
    let registry = Arc::new(
        TotpRegistry::new(
            kek.clone(),
            store.clone(),
            audit.clone(),
            TotpConfig::new(WalletScheme::Default),
        )
        .unwrap()
        .with_clock(clock.clone()),
    );
    let gate = Arc::new(
        TotpGate::new(counting.clone(), registry.clone()).require_enrolment(require_enrolment),
    );
    Fixture {
        clock,
        store,
        audit,
        counting,
        registry,
        gate,
        a,
        b,
    }
}

fn fixture() -> Fixture {
    fixture_over(Arc::new(MemoryStore::new()), false)
}

fn stored(id: &str) -> KeyRef {
    KeyRef::Stored(KeyId::new(id).unwrap())
}

fn wallet(name: &str, index: u32) -> KeyRef {
    KeyRef::Wallet {
        name: name.into(),
        index,
    }
}

/// The code an authenticator shows for `e` at `time`, by totp-rs.
fn code_at(e: &Enrolment, time: u64) -> String {
    oracle_code(&e.secret_base32(), e.params(), time)
}

/// The code for the base32 secret `secret_b32` with `params` at `time`,
/// by totp-rs.
fn oracle_code(secret_b32: &str, params: TotpParams, time: u64) -> String {
    let algorithm = match params.algorithm {
        Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
        Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
        _ => totp_rs::Algorithm::SHA512,
    };
    let secret = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, secret_b32).unwrap();
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(params.digits.get())
        .with_step_duration(params.period.seconds())
        .with_secret(secret)
        .build()
        .unwrap()
        .generate(time)
        .to_string()
}

/// A code valid at no step near `time` for any of `enrolments`.
fn wrong_code(enrolments: &[&Enrolment], time: u64) -> String {
    let near: Vec<String> = enrolments
        .iter()
        .flat_map(|e| (0..=4).map(move |i| code_at(e, (time + 60).saturating_sub(i * 30))))
        .collect();
    (0..)
        .map(|n: u64| format!("{:06}", (31_415_926 + 7_919 * n) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}

fn denied(r: Result<impl Sized, CoreError>) -> Denial {
    match r {
        Err(CoreError::Denied(d)) => d,
        Err(e) => panic!("expected a denial, got {e:?}"),
        Ok(_) => panic!("expected a denial, got success"),
    }
}

fn otc(code: &str) -> OneTimeCode {
    OneTimeCode::new(code)
}

/// The state-store key of a key's enrolment record, as `SPEC.md` gives it.
fn record_key(key: &PublicKey) -> String {
    format!(
        "totp/v1/key/{}",
        hex::encode(Sha256::digest(key.to_compressed()))
    )
}

impl Fixture {
    fn now(&self) -> u64 {
        self.clock.now_unix()
    }

    fn enrol_a(&self) -> Enrolment {
        self.registry
            .enrol_key(LABEL, &self.a, EnrolMode::New)
            .wait()
            .unwrap()
    }

    fn pinned(&self, key: &KeyRef) -> PinnedKey {
        self.gate.signing().unwrap().pin(key).wait().unwrap()
    }

    /// Signs through the gate alone; the signature is checked against the
    /// pinned key and returned with its clearances.
    fn sign(&self, key: KeyRef, code: Option<&str>) -> Result<Vec<Clearance>, CoreError> {
        let pinned = self.pinned(&key);
        let auth = code.map_or_else(Authorization::none, Authorization::totp);
        let digest = Digest32([9; 32]);
        let signed = self
            .gate
            .signing()
            .unwrap()
            .sign_digest(SignRequest::new(
                &pinned,
                digest,
                Intent::raw_digest(),
                &auth,
            ))
            .wait()?;
        let sig = custody_core::normalize(&signed.signature, pinned.secp256k1().unwrap(), &digest)
            .unwrap();
        assert_eq!(&sig.recover(&digest).unwrap(), pinned.secp256k1().unwrap());
        Ok(signed.evidence.clearances)
    }

    fn export(&self, key: KeyRef, code: Option<&str>) -> Result<PrivateKeyBytes, CoreError> {
        let pinned = self.pinned(&key);
        let auth = code.map_or_else(Authorization::none, Authorization::totp);
        self.gate
            .exporting()
            .unwrap()
            .export_private_key(&pinned, &auth)
            .wait()
    }

    fn reached(&self) -> usize {
        self.counting.signs.load(Ordering::SeqCst) + self.counting.exports.load(Ordering::SeqCst)
    }
}

#[test]
fn an_enrolled_stored_key_needs_a_code_and_each_code_signs_once() {
    let f = fixture();
    assert!(!f.registry.is_key_enrolled(&f.a).wait().unwrap());
    let e = f.enrol_a();
    assert!(f.registry.is_key_enrolled(&f.a).wait().unwrap());
    assert!(!f.registry.is_key_enrolled(&f.b).wait().unwrap());

    assert_eq!(denied(f.sign(stored(KEY_A), None)), Denial::TotpRequired);
    let wrong = wrong_code(&[&e], f.now());
    assert_eq!(
        denied(f.sign(stored(KEY_A), Some(&wrong))),
        Denial::TotpInvalid
    );
    assert_eq!(f.reached(), 0);

    let code = code_at(&e, f.now());
    let clearances = f.sign(stored(KEY_A), Some(&code)).unwrap();
    assert_eq!(clearances, [Clearance::Totp { step: NOW / 30 }]);
    assert_eq!(f.reached(), 1);
    assert_eq!(
        denied(f.sign(stored(KEY_A), Some(&code))),
        Denial::TotpReplayed
    );
    assert_eq!(f.reached(), 1);

    // The next step's code signs once more.
    f.clock.advance(30);
    let next = code_at(&e, f.now());
    assert_eq!(
        f.sign(stored(KEY_A), Some(&next)).unwrap(),
        [Clearance::Totp { step: NOW / 30 + 1 }]
    );
    assert_eq!(f.reached(), 2);
}

#[test]
fn wrong_codes_lock_the_key() {
    let f = fixture();
    let e = f.enrol_a();
    let wrong = wrong_code(&[&e], f.now());
    for _ in 0..5 {
        assert_eq!(
            denied(f.sign(stored(KEY_A), Some(&wrong))),
            Denial::TotpInvalid
        );
    }
    // Locked: even a valid code is refused, unchecked, for 30 s.
    let valid = code_at(&e, f.now());
    assert_eq!(
        denied(f.sign(stored(KEY_A), Some(&valid))),
        Denial::TotpLocked {
            until_unix: NOW + 30
        }
    );
    assert_eq!(
        f.registry
            .verify_key(&f.a, Some(&otc(&valid)))
            .wait()
            .unwrap(),
        Verification::Locked {
            until_unix: NOW + 30
        }
    );
    assert_eq!(f.reached(), 0);
    // Another key is not locked with it.
    f.sign(stored(KEY_B), None).unwrap();
    f.clock.advance(30);
    f.sign(stored(KEY_A), Some(&code_at(&e, f.now()))).unwrap();
}

#[test]
fn every_name_of_one_key_meets_one_enrolment() {
    // KEY_A and ALIAS_A hold the same key: enrolled once by public key, a
    // request naming either needs a code, and a code spent through one name
    // is a replay through the other.
    let f = fixture();
    let e = f.enrol_a();
    assert_eq!(denied(f.sign(stored(ALIAS_A), None)), Denial::TotpRequired);
    let code = code_at(&e, f.now());
    f.sign(stored(KEY_A), Some(&code)).unwrap();
    assert_eq!(
        denied(f.sign(stored(ALIAS_A), Some(&code))),
        Denial::TotpReplayed
    );
    assert_eq!(
        denied(f.export(stored(ALIAS_A), Some(&code))),
        Denial::TotpReplayed
    );
    // Enrolling it again under its other name is enrolling it again.
    assert!(matches!(
        f.registry.enrol_key(ALIAS_A, &f.a, EnrolMode::New).wait(),
        Err(Error::AlreadyEnrolled)
    ));
}

#[test]
fn keys_that_are_not_enrolled_still_sign_and_are_not_gated_by_another() {
    let f = fixture();
    let e = f.enrol_a();
    // B is not enrolled: it signs (and exports) without a code, untouched
    // by A's enrolment, its guard or its lock.
    assert!(f.sign(stored(KEY_B), None).unwrap().is_empty());
    assert_eq!(
        f.export(stored(KEY_B), None).unwrap(),
        PrivateKeyBytes::new(SECRET_B)
    );
    let wrong = wrong_code(&[&e], f.now());
    for _ in 0..5 {
        let _ = f.sign(stored(KEY_A), Some(&wrong));
    }
    assert!(f.sign(stored(KEY_B), None).unwrap().is_empty());
    // A code of A's does not clear B (no clearance is handed up for B)...
    assert!(
        f.sign(stored(KEY_B), Some(&code_at(&e, f.now())))
            .unwrap()
            .is_empty()
    );
    // ...and wallets are not gated by a key's enrolment.
    assert!(f.sign(wallet(ALICE, 0), None).unwrap().is_empty());
    assert_eq!(
        f.registry
            .verify_key(&f.b, Some(&otc("123456")))
            .wait()
            .unwrap(),
        Verification::NotEnrolled
    );
    assert!(!f.registry.is_enrolled(ALICE).wait().unwrap());
}

#[test]
fn a_wallet_enrolment_does_not_gate_stored_keys_and_vice_versa() {
    let f = fixture();
    let w = f.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    assert!(f.sign(stored(KEY_A), None).unwrap().is_empty());
    let k = f.enrol_a();
    assert_eq!(denied(f.sign(wallet(ALICE, 0), None)), Denial::TotpRequired);
    assert_eq!(denied(f.sign(stored(KEY_A), None)), Denial::TotpRequired);
    // Each subject has its own secret and guard: spending this step for
    // the wallet leaves it fresh for the key, and the other way round.
    f.sign(wallet(ALICE, 0), Some(&code_at(&w, f.now())))
        .unwrap();
    f.sign(stored(KEY_A), Some(&code_at(&k, f.now()))).unwrap();
    assert_eq!(f.reached(), 3);
    // A code of the wallet's is not the key's.
    let wallet_only = wrong_code(&[&k], f.now());
    assert_eq!(
        f.registry
            .verify_key(&f.a, Some(&otc(&wallet_only)))
            .wait()
            .unwrap(),
        Verification::Invalid
    );
}

#[test]
fn export_of_an_enrolled_stored_key_needs_a_fresh_code() {
    let f = fixture();
    let e = f.enrol_a();
    assert_eq!(denied(f.export(stored(KEY_A), None)), Denial::TotpRequired);
    let wrong = wrong_code(&[&e], f.now());
    assert_eq!(
        denied(f.export(stored(KEY_A), Some(&wrong))),
        Denial::TotpInvalid
    );
    assert_eq!(f.reached(), 0);
    let code = code_at(&e, f.now());
    assert_eq!(
        f.export(stored(KEY_A), Some(&code)).unwrap(),
        PrivateKeyBytes::new(SECRET_A)
    );
    assert_eq!(f.reached(), 1);
    // Spent by the export: signing with it is a replay.
    assert_eq!(
        denied(f.sign(stored(KEY_A), Some(&code))),
        Denial::TotpReplayed
    );
    assert_eq!(
        denied(f.export(stored(KEY_A), Some(&code))),
        Denial::TotpReplayed
    );
    assert_eq!(f.reached(), 1);
}

#[test]
fn require_enrolment_refuses_a_stored_key_that_is_not_enrolled() {
    let f = fixture_over(Arc::new(MemoryStore::new()), true);
    let e = f.enrol_a();
    assert_eq!(denied(f.sign(stored(KEY_B), None)), Denial::Forbidden);
    assert_eq!(denied(f.export(stored(KEY_B), None)), Denial::Forbidden);
    assert_eq!(denied(f.sign(stored(KEY_A), None)), Denial::TotpRequired);
    f.sign(stored(KEY_A), Some(&code_at(&e, f.now()))).unwrap();
    assert_eq!(f.reached(), 1);
    let refusal = f
        .audit
        .records()
        .into_iter()
        .find(|r| r.event().field("detail") == Some("not-enrolled"))
        .unwrap();
    assert_eq!(refusal.event().field("key"), Some(KEY_B));
    assert_eq!(
        refusal.event().field("public-key"),
        Some(&*hex::encode(f.b.to_compressed()))
    );
}

#[test]
fn two_processes_over_one_file_store_accept_a_code_once() {
    let dir = tempfile::tempdir().unwrap();
    let one = fixture_over(Arc::new(FileStore::open(dir.path()).unwrap()), false);
    let two = fixture_over(Arc::new(FileStore::open(dir.path()).unwrap()), false);
    two.clock.set(one.now());
    let e = one.enrol_a();
    // The other process sees the enrolment, and the same subject.
    assert!(two.registry.is_key_enrolled(&two.a).wait().unwrap());
    assert_eq!(
        denied(two.sign(stored(ALIAS_A), None)),
        Denial::TotpRequired
    );
    let code = code_at(&e, one.now());
    one.sign(stored(KEY_A), Some(&code)).unwrap();
    assert_eq!(
        denied(two.sign(stored(KEY_A), Some(&code))),
        Denial::TotpReplayed
    );
    // And the other way round, with both warm.
    one.clock.advance(30);
    two.clock.advance(30);
    let code = code_at(&e, one.now());
    assert!(
        two.registry
            .verify_key(&two.a, Some(&otc(&code)))
            .wait()
            .unwrap()
            .is_accepted()
    );
    assert_eq!(
        one.registry
            .verify_key(&one.a, Some(&otc(&code)))
            .wait()
            .unwrap(),
        Verification::Replayed
    );
    // A lock set by one process holds in the other.
    one.clock.advance(30);
    two.clock.advance(30);
    let wrong = wrong_code(&[&e], one.now());
    for _ in 0..5 {
        assert_eq!(
            one.registry
                .verify_key(&one.a, Some(&otc(&wrong)))
                .wait()
                .unwrap(),
            Verification::Invalid
        );
    }
    assert!(matches!(
        denied(two.sign(stored(KEY_A), Some(&code_at(&e, two.now())))),
        Denial::TotpLocked { .. }
    ));
}

#[test]
fn a_record_copied_into_another_keys_slot_is_refused() {
    let store = Arc::new(MemoryStore::new());
    let f = fixture_over(store.clone(), false);
    let e = f.enrol_a();
    let a_record = store.get(&record_key(&f.a)).wait().unwrap().unwrap();
    // Copy A's record (and with it A's secret) into B's slot.
    assert!(matches!(
        store
            .compare_and_swap(&record_key(&f.b), None, &a_record.value)
            .wait()
            .unwrap(),
        CasOutcome::Swapped { .. }
    ));
    let code = code_at(&e, f.now());
    assert!(matches!(
        f.registry.verify_key(&f.b, Some(&otc(&code))).wait(),
        Err(Error::Core(CoreError::MalformedRecord(_)))
    ));
    assert!(matches!(
        f.registry.is_key_enrolled(&f.b).wait(),
        Err(Error::Core(CoreError::MalformedRecord(_)))
    ));
    // The gate fails closed for B (code or not), and A's code is unspent.
    assert!(matches!(
        f.sign(stored(KEY_B), None),
        Err(CoreError::MalformedRecord(_))
    ));
    assert!(matches!(
        f.sign(stored(KEY_B), Some(&code)),
        Err(CoreError::MalformedRecord(_))
    ));
    assert_eq!(f.reached(), 0);
    f.sign(stored(KEY_A), Some(&code)).unwrap();

    // A record whose public key was rewritten to B's (so that it names the
    // slot it sits in) does not open: the envelope binds A's key.
    let text = std::str::from_utf8(&a_record.value).unwrap();
    let forged = text.replace(
        &hex::encode(f.a.to_compressed()),
        &hex::encode(f.b.to_compressed()),
    );
    assert_ne!(forged, text);
    let current = store.get(&record_key(&f.b)).wait().unwrap().unwrap();
    assert!(matches!(
        store
            .compare_and_swap(&record_key(&f.b), Some(current.version), forged.as_bytes())
            .wait()
            .unwrap(),
        CasOutcome::Swapped { .. }
    ));
    assert!(f.registry.is_key_enrolled(&f.b).wait().unwrap());
    f.clock.advance(30);
    assert!(matches!(
        f.sign(stored(KEY_B), Some(&code_at(&e, f.now()))),
        Err(CoreError::DecryptionFailed)
    ));
    assert_eq!(f.reached(), 1);

    // A wallet's record copied into a key's slot: refused too.
    let w = f.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    let node_key = format!(
        "totp/v1/node/{}",
        hex::encode(Sha256::digest(
            w.node_path().unwrap().to_string().as_bytes()
        ))
    );
    let wallet_record = store.get(&node_key).wait().unwrap().unwrap();
    let current = store.get(&record_key(&f.b)).wait().unwrap().unwrap();
    assert!(matches!(
        store
            .compare_and_swap(
                &record_key(&f.b),
                Some(current.version),
                &wallet_record.value,
            )
            .wait()
            .unwrap(),
        CasOutcome::Swapped { .. }
    ));
    assert!(matches!(
        f.sign(stored(KEY_B), None),
        Err(CoreError::MalformedRecord(_))
    ));
}

#[test]
fn rotation_and_forced_rotation_of_a_key() {
    let f = fixture();
    let old = f.enrol_a();
    // A second plain enrolment is refused (and audited).
    assert!(matches!(
        f.registry.enrol_key(LABEL, &f.a, EnrolMode::New).wait(),
        Err(Error::AlreadyEnrolled)
    ));
    // Rotation needs a valid, fresh code of the current secret.
    let wrong = wrong_code(&[&old], f.now());
    assert!(matches!(
        f.registry
            .enrol_key(LABEL, &f.a, EnrolMode::Rotate(otc(&wrong)))
            .wait(),
        Err(Error::Denied(Denial::TotpInvalid))
    ));
    let code = code_at(&old, f.now());
    let new = f
        .registry
        .enrol_key("renamed", &f.a, EnrolMode::Rotate(otc(&code)))
        .wait()
        .unwrap();
    assert_eq!(new.label(), "renamed");
    assert_ne!(*new.secret_base32(), *old.secret_base32());
    // The rotation spent that code, and the old secret no longer works.
    f.clock.advance(30);
    let old_code = code_at(&old, f.now());
    let new_code = code_at(&new, f.now());
    if old_code != new_code {
        assert_eq!(
            denied(f.sign(stored(KEY_A), Some(&old_code))),
            Denial::TotpInvalid
        );
    }
    f.sign(stored(KEY_A), Some(&new_code)).unwrap();
    // Forced rotation: no code, a new secret.
    let forced = f
        .registry
        .enrol_key(LABEL, &f.a, EnrolMode::ForceRotate)
        .wait()
        .unwrap();
    f.clock.advance(30);
    f.sign(stored(KEY_A), Some(&code_at(&forced, f.now())))
        .unwrap();
    // Rotating a key that is not enrolled enrols it.
    let b = f
        .registry
        .enrol_key(KEY_B, &f.b, EnrolMode::ForceRotate)
        .wait()
        .unwrap();
    assert_eq!(denied(f.sign(stored(KEY_B), None)), Denial::TotpRequired);
    f.sign(stored(KEY_B), Some(&code_at(&b, f.now()))).unwrap();

    let details: Vec<String> = f
        .audit
        .records()
        .into_iter()
        .filter(|r| r.event().op().as_str() == "enrol")
        .map(|r| {
            assert_eq!(r.event().field("factor"), Some("totp"));
            assert!(r.event().field("wallet").is_none());
            r.event().field("detail").unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        details,
        [
            "enrolled",
            "already-enrolled",
            "rotated",
            "force-rotated",
            "enrolled"
        ]
    );
}

#[test]
fn imported_secret_gates_a_key_with_its_own_parameters() {
    let f = fixture();
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let uri = OtpAuthUri::parse(&format!(
        "otpauth://totp/Other:someone?secret={secret}&issuer=Other&digits=8&period=60&algorithm=SHA256"
    ))
    .unwrap();
    f.registry
        .import_key(LABEL, &f.a, &uri, EnrolMode::New)
        .wait()
        .unwrap();
    let code = oracle_code(secret, uri.params(), f.now());
    assert_eq!(code.len(), 8);
    // The 30 s, SHA-1, 6-digit code of the same secret is not it.
    let default = oracle_code(secret, TotpParams::default(), f.now());
    assert_eq!(
        f.registry
            .verify_key(&f.a, Some(&otc(&default)))
            .wait()
            .unwrap(),
        Verification::Invalid
    );
    assert_eq!(denied(f.sign(stored(KEY_A), None)), Denial::TotpRequired);
    f.sign(stored(KEY_A), Some(&code)).unwrap();
    assert!(matches!(
        f.registry
            .import_key(LABEL, &f.a, &uri, EnrolMode::New)
            .wait(),
        Err(Error::AlreadyEnrolled)
    ));
}

#[test]
fn key_enrolments_show_their_label_and_never_their_secret() {
    let f = fixture();
    let e = f.enrol_a();
    assert_eq!(e.subject(), &Subject::Key(f.a));
    assert_eq!(e.public_key(), Some(&f.a));
    assert_eq!((e.wallet(), e.node_path()), (None, None));
    assert_eq!(e.label(), LABEL);
    let uri = e.to_uri();
    assert!(
        uri.starts_with("otpauth://totp/custody:kms%3Aarn%3Aaws%3Akms%3Aeu-west-1%3A"),
        "{}",
        uri.as_str()
    );
    let parsed = OtpAuthUri::parse(&uri).unwrap();
    assert_eq!(parsed.account(), LABEL);
    assert_eq!(
        base32::encode(
            base32::Alphabet::Rfc4648 { padding: false },
            parsed.expose_secret()
        ),
        *e.secret_base32()
    );
    assert!(e.qr().unwrap().size() > 0);
    let secret = e.secret_base32().to_string();
    let debug = format!("{e:?}");
    assert!(debug.contains(&hex::encode(f.a.to_compressed())), "{debug}");
    assert!(debug.contains(LABEL), "{debug}");
    assert!(!debug.contains(&secret), "{debug}");
    assert!(!debug.to_lowercase().contains(&secret.to_lowercase()));
    assert!(!debug.contains(&hex::encode(e.uri().expose_secret())));
    assert!(!format!("{:?}", f.registry).contains(&secret));
    // A wallet's enrolment says what it is too.
    let w = f.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    assert_eq!(w.wallet(), Some(ALICE));
    assert_eq!(w.label(), ALICE);
    assert_eq!(w.public_key(), None);
    assert_eq!(
        w.subject(),
        &Subject::Node(WalletScheme::Default.wallet_path(ALICE).unwrap())
    );
}

#[test]
fn labels_are_checked() {
    let f = fixture();
    assert!(matches!(
        f.registry.enrol_key("", &f.a, EnrolMode::New).wait(),
        Err(Error::InvalidLabel(_))
    ));
    let long = "k".repeat(1025);
    assert!(matches!(
        f.registry.enrol_key(&long, &f.a, EnrolMode::New).wait(),
        Err(Error::InvalidLabel(_))
    ));
    assert!(!f.registry.is_key_enrolled(&f.a).wait().unwrap());
    f.registry
        .enrol_key(&"k".repeat(1024), &f.a, EnrolMode::New)
        .wait()
        .unwrap();
}

#[test]
fn audit_records_name_the_key_and_never_the_code_or_secret() {
    let f = fixture();
    let e = f.enrol_a();
    let secret = e.secret_base32().to_string();
    let wrong = wrong_code(&[&e], f.now());
    let code = code_at(&e, f.now());
    let _ = f.sign(stored(ALIAS_A), None);
    let _ = f.sign(stored(KEY_A), Some(&wrong));
    f.sign(stored(KEY_A), Some(&code)).unwrap();
    let _ = f.export(stored(KEY_A), Some(&code));
    assert_eq!(
        f.registry
            .verify_key(&f.a, Some(&otc(&code)))
            .wait()
            .unwrap(),
        Verification::Replayed
    );
    let records = f.audit.records();
    let public = hex::encode(f.a.to_compressed());
    let enrol = records[0].event();
    assert_eq!(enrol.op().as_str(), "enrol");
    assert_eq!(enrol.field("public-key"), Some(&*public));
    let verifies: Vec<_> = records
        .iter()
        .map(custody_core::AuditRecord::event)
        .filter(|e| e.op().as_str() == "totp-verify")
        .collect();
    let seen: Vec<(Option<&str>, Option<&str>, Option<&str>)> = verifies
        .iter()
        .map(|e| (e.field("detail"), e.field("route"), e.field("key")))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("totp-required"), Some("sign"), Some(ALIAS_A)),
            (Some("totp-invalid"), Some("sign"), Some(KEY_A)),
            (Some("accepted"), Some("sign"), Some(KEY_A)),
            (Some("totp-replayed"), Some("export"), Some(KEY_A)),
            (Some("totp-replayed"), Some("verify"), None),
        ]
    );
    for v in &verifies {
        assert_eq!(v.field("public-key"), Some(&*public));
        assert!(v.field("wallet").is_none() && v.field("path").is_none());
        assert_eq!(v.field("step"), Some(&*(NOW / 30).to_string()));
    }
    assert_eq!(verifies[2].outcome(), AuditOutcome::Success);
    assert_eq!(verifies[2].field("digest"), Some(&*hex::encode([9u8; 32])));
    let log = f.audit.to_jsonl().unwrap();
    for c in [&code, &wrong] {
        assert!(!log.contains(&format!("\"{c}\"")));
    }
    assert!(!log.contains(&secret) && !log.contains(&secret.to_lowercase()));
}

#[test]
fn under_an_audit_layer_one_record_per_signature_and_spent_codes_are_recorded() {
    let f = fixture();
    let e = f.enrol_a();
    let audited: SharedBackend = Arc::new(Audited::new(f.gate.clone(), f.audit.clone()));
    let signer = KeySigner::pin(audited, stored(KEY_A)).wait().unwrap();
    let before = f.audit.records().len();
    signer
        .sign(
            Digest32([4; 32]),
            Intent::raw_digest(),
            &Authorization::totp(code_at(&e, f.now())),
        )
        .wait()
        .unwrap();
    let new = f.audit.records().split_off(before);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0].event().op().as_str(), "sign");
    assert_eq!(
        new[0].event().field("totp-step"),
        Some(&*(NOW / 30).to_string())
    );
    assert_eq!(new[0].event().field("key"), Some(KEY_A));

    // The inner backend fails after the code was spent: the gate records
    // the spent code, the layer above the failure.
    f.clock.advance(30);
    let code = code_at(&e, f.now());
    f.counting.fail_sign.store(true, Ordering::SeqCst);
    let before = f.audit.records().len();
    let r = signer
        .sign(
            Digest32([6; 32]),
            Intent::raw_digest(),
            &Authorization::totp(code.clone()),
        )
        .wait();
    assert!(matches!(r, Err(CoreError::Unsupported(_))), "{r:?}");
    let new = f.audit.records().split_off(before);
    assert_eq!(new.len(), 2, "{new:?}");
    let spent = new[0].event();
    assert_eq!(spent.op().as_str(), "totp-verify");
    assert_eq!(spent.outcome(), AuditOutcome::Success);
    assert_eq!(spent.field("inner-error"), Some("unsupported"));
    assert_eq!(spent.field("key"), Some(KEY_A));
    assert_eq!(
        spent.field("public-key"),
        Some(&*hex::encode(f.a.to_compressed()))
    );
    assert_eq!(new[1].event().outcome(), AuditOutcome::Failed);
    f.counting.fail_sign.store(false, Ordering::SeqCst);
    let r = signer
        .sign(
            Digest32([6; 32]),
            Intent::raw_digest(),
            &Authorization::totp(code),
        )
        .wait();
    assert_eq!(denied(r), Denial::TotpReplayed);
}

#[test]
fn keys_with_a_path_read_nothing_more_and_a_warm_key_costs_what_a_warm_wallet_does() {
    let f = fixture();
    let w = f.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    let k = f.enrol_a();
    // Warm both (slots, decodings, secrets, guards).
    f.sign(wallet(ALICE, 0), Some(&code_at(&w, f.now())))
        .unwrap();
    f.sign(stored(KEY_A), Some(&code_at(&k, f.now()))).unwrap();
    f.clock.advance(30);
    let _ = f.store.take();

    // A wallet key, a path key, an HD key of no enrolled wallet: only node
    // records are read, never a key record.
    f.sign(wallet(ALICE, 0), Some(&code_at(&w, f.now())))
        .unwrap();
    let (wallet_reads, wallet_writes) = f.store.take();
    let _ = f.sign(wallet(ALICE, 1), None);
    let _ = f.sign(KeyRef::Path("m/44'/60'/0'/0/0".parse().unwrap()), None);
    let _ = f.export(wallet(ALICE, 1), None);
    let (more_reads, _) = f.store.take();
    for key in wallet_reads.iter().chain(&more_reads) {
        assert!(key.starts_with("totp/v1/node/"), "{key}");
    }

    // A warm stored key: the same number of reads and writes, of its own
    // records.
    f.sign(stored(KEY_A), Some(&code_at(&k, f.now()))).unwrap();
    let (key_reads, key_writes) = f.store.take();
    assert_eq!(
        (key_reads.len(), key_writes.len()),
        (wallet_reads.len(), wallet_writes.len())
    );
    assert_eq!(key_reads, [record_key(&f.a)]);
    assert_eq!(
        key_writes,
        [format!(
            "totp/v1/key-guard/{}",
            hex::encode(Sha256::digest(f.a.to_compressed()))
        )]
    );
    assert_eq!(f.registry.cached_keys(), 1);
    // A stored key that is not enrolled: one read.
    f.sign(stored(KEY_B), None).unwrap();
    assert_eq!(f.store.take().0, [record_key(&f.b)]);
}

#[test]
fn the_key_slot_cache_is_bounded() {
    let mut config = TotpConfig::new(WalletScheme::Default);
    config.node_cache = 2;
    config.secret_cache = 2;
    let clock = Arc::new(ManualClock::new(NOW));
    let registry = TotpRegistry::new(
        kek(),
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryAuditLog::new()),
        config,
    )
    .unwrap()
    .with_clock(clock.clone());
    let keys: Vec<PublicKey> = (1..=5u8)
        .map(|i| {
            let v = Vault::new(kek(), WalletScheme::Default);
            v.insert_key(KeyId::new("k").unwrap(), PrivateKeyBytes::new([i; 32]))
                .unwrap()
        })
        .collect();
    let enrolments: Vec<Enrolment> = keys
        .iter()
        .map(|k| registry.enrol_key("k", k, EnrolMode::New).wait().unwrap())
        .collect();
    for (k, e) in keys.iter().zip(&enrolments) {
        assert!(
            registry
                .verify_key(k, Some(&otc(&code_at(e, NOW))))
                .wait()
                .unwrap()
                .is_accepted()
        );
        assert!(registry.cached_keys() <= 2 && registry.cached_secrets() <= 2);
    }
    assert_eq!((registry.cached_keys(), registry.cached_nodes()), (2, 0));
}
