//! The TOTP gate: one test per typed outcome and per route to a key.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers outside #[test] fns: a failed unwrap or panic is a failed test"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use custody_core::{
    AuditOutcome, Audited, Authorization, Capabilities, CasOutcome, Clearance, CreateOptions,
    DataKey, DecryptRequest, DecryptingBackend, Decryption, Denial, DerivationPath, Digest32,
    Error as CoreError, ExportingBackend, Intent, IntentKind, KekId, KeyBackend, KeyId, KeyKinds,
    KeyRef, KeySigner, Keystore, LocalKek, MemoryAuditLog, MemoryStore, Passphrase, Pending,
    PinnedKey, PrivateKeyBytes, Seed, SharedBackend, SignRequest, Signed, SigningBackend,
    StateStore, Versioned, WalletScheme, WrappingBackend,
};
use custody_totp::{
    Clock, EnrolMode, Enrolment, Error, ManualClock, OtpAuthUri, TotpConfig, TotpGate,
    TotpRegistry, Verification,
};

const T0: u64 = 1_700_000_010; // a step boundary (30 s) ...
const NOW: u64 = T0 + 5; // ... and a moment inside that step
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const SEALING: &str = "sealing-p256";

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
    fn decrypting(&self) -> Option<&dyn DecryptingBackend> {
        self.inner.decrypting()
    }
}

/// A state store that can be told to fail its reads or its writes.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStore,
    fail_get: AtomicBool,
    fail_cas: AtomicBool,
}

fn io_error() -> CoreError {
    CoreError::Io(std::io::Error::other("disk gone"))
}

impl FlakyStore {
    fn get_now(&self, key: &str) -> Result<Option<Versioned>, CoreError> {
        if self.fail_get.load(Ordering::SeqCst) {
            return Err(io_error());
        }
        self.inner.get(key).wait()
    }
    fn swap_now(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
    ) -> Result<CasOutcome, CoreError> {
        if self.fail_cas.load(Ordering::SeqCst) {
            return Err(io_error());
        }
        self.inner.compare_and_swap(key, expected, value).wait()
    }
}

impl StateStore for FlakyStore {
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

struct Fixture {
    clock: Arc<ManualClock>,
    store: Arc<FlakyStore>,
    audit: Arc<MemoryAuditLog>,
    kek: SharedBackend,
    vault: SharedBackend,
    counting: Arc<Counting>,
    registry: Arc<TotpRegistry>,
    gate: Arc<TotpGate>,
}

fn vault(kek: SharedBackend, scheme: WalletScheme) -> SharedBackend {
    let mut vault = custody_core::Vault::new(kek, scheme);
    vault.set_master_seed(&[0x42; 64]).unwrap();
    // A P-256 key held by id, for the unseal (ECDH) route.
    vault
        .insert_algorithm_key(
            KeyId::new(SEALING).unwrap(),
            custody_core::KeyAlgorithm::P256,
            PrivateKeyBytes::from_slice(&[0x5a; 32]).unwrap(),
        )
        .unwrap();
    Arc::new(vault)
}

fn fixture_with(config: TotpConfig, require_enrolment: bool) -> Fixture {
    let clock = Arc::new(ManualClock::new(NOW));
    let store = Arc::new(FlakyStore::default());
    let audit = Arc::new(MemoryAuditLog::new());
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([7; 32]),
    ));
    let vault = vault(kek.clone(), config.scheme);
    let counting = Arc::new(Counting {
        inner: vault.clone(),
        signs: AtomicUsize::new(0),
        exports: AtomicUsize::new(0),
        fail_sign: AtomicBool::new(false),
    });
    let registry = Arc::new(
        TotpRegistry::new(kek.clone(), store.clone(), audit.clone(), config)
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
        kek,
        vault,
        counting,
        registry,
        gate,
    }
}

fn fixture() -> Fixture {
    fixture_with(TotpConfig::new(WalletScheme::Default), false)
}

fn code_at(e: &Enrolment, time: u64) -> String {
    e.params()
        .code_at(e.uri().expose_secret(), time)
        .unwrap()
        .expose_str()
        .to_owned()
}

/// A code that is valid at no step near `time` (digits of pi, not zeros,
/// so that it does not turn up in hex or timestamps by accident).
fn wrong_code(e: &Enrolment, time: u64) -> String {
    let near: Vec<String> = (0..=4)
        .map(|i| code_at(e, (time + 60).saturating_sub(i * 30)))
        .collect();
    let digits = usize::from(e.params().digits.get());
    (0..)
        .map(|n: u64| {
            format!(
                "{:0digits$}",
                (31_415_926 + 7_919 * n) % 10u64.pow(digits as u32)
            )
        })
        .find(|c| !near.contains(c))
        .unwrap()
}

impl Fixture {
    fn now(&self) -> u64 {
        self.clock.now_unix()
    }

    fn enrol(&self, wallet: &str) -> Enrolment {
        self.registry.enrol(wallet, EnrolMode::New).wait().unwrap()
    }

    fn signer(&self, key: KeyRef) -> KeySigner {
        KeySigner::pin(self.gate.clone(), key).wait().unwrap()
    }

    fn sign(&self, key: KeyRef, code: Option<&str>) -> Result<(), CoreError> {
        let signer = self.signer(key);
        let auth = code.map_or_else(Authorization::none, Authorization::totp);
        let digest = Digest32([9; 32]);
        signer
            .sign(digest, Intent::raw_digest(), &auth)
            .wait()
            .map(|sig| {
                assert_eq!(
                    &sig.recover(&digest).unwrap(),
                    signer.key().secp256k1().unwrap()
                )
            })
    }

    /// `key` pinned through the gate.
    fn pinned(&self, key: &KeyRef) -> PinnedKey {
        self.gate.signing().unwrap().pin(key).wait().unwrap()
    }

    /// A raw-digest request for `key` straight to the gate (no audit layer
    /// above it).
    fn request<'a>(
        &'a self,
        key: &'a PinnedKey,
        auth: &'a Authorization,
    ) -> Pending<'a, Result<Signed, CoreError>> {
        self.gate.signing().unwrap().sign_digest(SignRequest::new(
            key,
            Digest32([5; 32]),
            Intent::raw_digest(),
            auth,
        ))
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

fn wallet(name: &str, index: u32) -> KeyRef {
    KeyRef::Wallet {
        name: name.into(),
        index,
    }
}

fn path(p: &str) -> KeyRef {
    KeyRef::Path(p.parse().unwrap())
}

fn denied(r: Result<impl Sized, CoreError>) -> Denial {
    match r {
        Err(CoreError::Denied(d)) => d,
        Err(e) => panic!("expected a denial, got {e:?}"),
        Ok(_) => panic!("expected a denial, got success"),
    }
}

#[test]
fn enrolled_wallet_without_code_is_required() {
    let f = fixture();
    f.enrol(ALICE);
    assert_eq!(denied(f.sign(wallet(ALICE, 0), None)), Denial::TotpRequired);
    assert_eq!(f.reached(), 0);
}

#[test]
fn wrong_code_is_invalid() {
    let mut config = TotpConfig::new(WalletScheme::Default);
    config.lockout.max_failures = 10;
    let f = fixture_with(config, false);
    let e = f.enrol(ALICE);
    let wrong = wrong_code(&e, f.now());
    assert_eq!(
        denied(f.sign(wallet(ALICE, 0), Some(&wrong))),
        Denial::TotpInvalid
    );
    // Malformed codes are wrong codes too.
    for bad in ["12345", "1234567", "12a456", "", " 123456"] {
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(bad))),
            Denial::TotpInvalid
        );
    }
    assert_eq!(f.reached(), 0);
}

#[test]
fn valid_code_signs_once_then_is_replayed() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let code = code_at(&e, f.now());
    f.sign(wallet(ALICE, 0), Some(&code)).unwrap();
    assert_eq!(f.reached(), 1);
    // The same code, for any key of the wallet: replayed.
    assert_eq!(
        denied(f.sign(wallet(ALICE, 0), Some(&code))),
        Denial::TotpReplayed
    );
    assert_eq!(
        denied(f.sign(wallet(ALICE, 7), Some(&code))),
        Denial::TotpReplayed
    );
    // Replays do not count towards the lockout.
    for _ in 0..20 {
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(&code))),
            Denial::TotpReplayed
        );
    }
    f.clock.advance(30);
    f.sign(wallet(ALICE, 0), Some(&code_at(&e, f.now())))
        .unwrap();
    assert_eq!(f.reached(), 2);
}

#[test]
fn codes_at_or_before_the_last_accepted_step_are_replayed() {
    let f = fixture();
    let e = f.enrol(ALICE);
    // The next step's code (inside the ±1 window) is accepted first ...
    let next = code_at(&e, f.now() + 30);
    f.sign(wallet(ALICE, 0), Some(&next)).unwrap();
    // ... and then the current and previous steps' codes are stale.
    let current = code_at(&e, f.now());
    let previous = code_at(&e, f.now() - 30);
    assert_eq!(
        denied(f.sign(wallet(ALICE, 0), Some(&current))),
        Denial::TotpReplayed
    );
    assert_eq!(
        denied(f.sign(wallet(ALICE, 0), Some(&previous))),
        Denial::TotpReplayed
    );
    assert_eq!(f.reached(), 1);
}

#[test]
fn skew_window_is_one_step_by_default_and_configurable() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let two_ahead = code_at(&e, f.now() + 60);
    assert_eq!(
        denied(f.sign(wallet(ALICE, 0), Some(&two_ahead))),
        Denial::TotpInvalid
    );
    f.sign(wallet(ALICE, 0), Some(&code_at(&e, f.now() - 30)))
        .unwrap();

    let mut config = TotpConfig::new(WalletScheme::Default);
    config.skew_steps = 5;
    let f = fixture_with(config, false);
    let e = f.enrol(ALICE);
    f.sign(wallet(ALICE, 0), Some(&code_at(&e, f.now() - 150)))
        .unwrap();
    f.sign(wallet(ALICE, 0), Some(&code_at(&e, f.now() + 150)))
        .unwrap();
    assert_eq!(
        denied(f.sign(wallet(ALICE, 0), Some(&code_at(&e, f.now() + 180)))),
        Denial::TotpInvalid
    );
}

#[test]
fn five_wrong_codes_lock_the_wallet() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let wrong = wrong_code(&e, f.now());
    for _ in 0..5 {
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(&wrong))),
            Denial::TotpInvalid
        );
    }
    let until = f.now() + 30;
    // Now even a valid code is refused, unchecked and not spent.
    let valid = code_at(&e, f.now());
    assert_eq!(
        denied(f.sign(wallet(ALICE, 0), Some(&valid))),
        Denial::TotpLocked { until_unix: until }
    );
    assert_eq!(
        denied(f.sign(wallet(ALICE, 0), Some(&wrong))),
        Denial::TotpLocked { until_unix: until }
    );
    assert_eq!(f.reached(), 0);
    assert_eq!(
        f.registry
            .verify(ALICE, Some(&custody_core::OneTimeCode::new(valid)))
            .wait()
            .unwrap(),
        Verification::Locked { until_unix: until }
    );
}

#[test]
fn lock_expires_and_back_off_grows() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let lock = |expected_secs: u64| {
        let wrong = wrong_code(&e, f.now());
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(&wrong))),
            Denial::TotpInvalid
        );
        let until = f.now() + expected_secs;
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(&wrong))),
            Denial::TotpLocked { until_unix: until }
        );
        // One second before the end: still locked; at the end: open.
        f.clock.set(until - 1);
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(&wrong))),
            Denial::TotpLocked { until_unix: until }
        );
        f.clock.set(until);
    };
    // Four wrong codes, then the fifth locks for 30 s ...
    for _ in 0..4 {
        let wrong = wrong_code(&e, f.now());
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(&wrong))),
            Denial::TotpInvalid
        );
    }
    lock(30);
    // ... and after that every wrong code locks again, twice as long.
    lock(60);
    lock(120);
    lock(240);
    // A valid code after the lock resets everything.
    f.sign(wallet(ALICE, 0), Some(&code_at(&e, f.now())))
        .unwrap();
    f.clock.advance(30);
    for _ in 0..4 {
        let wrong = wrong_code(&e, f.now());
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(&wrong))),
            Denial::TotpInvalid
        );
    }
    lock(30);
}

#[test]
fn back_off_is_capped() {
    let mut config = TotpConfig::new(WalletScheme::Default);
    config.lockout.max_failures = 1;
    config.lockout.base_secs = 100;
    config.lockout.max_secs = 250;
    let f = fixture_with(config, false);
    let e = f.enrol(ALICE);
    for secs in [100, 200, 250, 250] {
        let wrong = wrong_code(&e, f.now());
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(&wrong))),
            Denial::TotpInvalid
        );
        let until = f.now() + secs;
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), None)),
            Denial::TotpRequired,
            "a missing code is just required"
        );
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(&wrong))),
            Denial::TotpLocked { until_unix: until }
        );
        f.clock.set(until);
    }
}

#[test]
fn re_enrolment_is_refused_and_rotation_is_explicit() {
    let f = fixture();
    let first = f.enrol(ALICE);
    assert!(matches!(
        f.registry.enrol(ALICE, EnrolMode::New).wait(),
        Err(Error::AlreadyEnrolled)
    ));
    // Rotation needs a valid code of the current secret.
    let wrong = wrong_code(&first, f.now());
    assert!(matches!(
        f.registry
            .enrol(
                ALICE,
                EnrolMode::Rotate(custody_core::OneTimeCode::new(wrong))
            )
            .wait(),
        Err(Error::Denied(Denial::TotpInvalid))
    ));
    let code = code_at(&first, f.now());
    let second = f
        .registry
        .enrol(
            ALICE,
            EnrolMode::Rotate(custody_core::OneTimeCode::new(code.clone())),
        )
        .wait()
        .unwrap();
    assert_ne!(
        second.secret_base32().as_str(),
        first.secret_base32().as_str()
    );
    // The rotation spent the code; the old secret no longer works.
    f.clock.advance(30);
    let old = code_at(&first, f.now());
    let new = code_at(&second, f.now());
    if old != new {
        assert_eq!(
            denied(f.sign(wallet(ALICE, 0), Some(&old))),
            Denial::TotpInvalid
        );
    }
    f.sign(wallet(ALICE, 0), Some(&new)).unwrap();
    // The operator's recovery: no code.
    let third = f
        .registry
        .enrol(ALICE, EnrolMode::ForceRotate)
        .wait()
        .unwrap();
    f.clock.advance(30);
    f.sign(wallet(ALICE, 0), Some(&code_at(&third, f.now())))
        .unwrap();
    // The audit trail says which was which.
    let details: Vec<String> = f
        .audit
        .records()
        .iter()
        .filter(|r| r.event().op().as_str() == "enrol")
        .map(|r| r.event().field("detail").unwrap().to_owned())
        .collect();
    assert_eq!(
        details,
        ["enrolled", "already-enrolled", "rotated", "force-rotated"]
    );
}

#[test]
fn wallet_that_is_not_enrolled_signs_without_a_code() {
    let f = fixture();
    f.enrol(ALICE);
    f.sign(wallet("bob@example.com", 0), None).unwrap();
    f.export(wallet("bob@example.com", 0), None).unwrap();
    assert_eq!(
        f.registry.verify("bob@example.com", None).wait().unwrap(),
        Verification::NotEnrolled
    );
    assert!(!f.registry.is_enrolled("bob@example.com").wait().unwrap());
    assert!(f.registry.is_enrolled(ALICE).wait().unwrap());
    // Before any enrolment at all, too.
    let g = fixture();
    g.sign(wallet(ALICE, 0), None).unwrap();
    g.sign(path("m/44'/60'/0'/0/0"), None).unwrap();
}

#[test]
fn require_enrolment_refuses_what_is_not_enrolled() {
    let f = fixture_with(TotpConfig::new(WalletScheme::Default), true);
    assert_eq!(denied(f.sign(wallet(ALICE, 0), None)), Denial::Forbidden);
    let e = f.enrol(ALICE);
    assert_eq!(denied(f.sign(wallet("bob", 0), None)), Denial::Forbidden);
    assert_eq!(
        denied(f.sign(path("m/44'/60'/0'/0/0"), None)),
        Denial::Forbidden
    );
    assert_eq!(denied(f.sign(path("m"), None)), Denial::Forbidden);
    assert_eq!(f.reached(), 0);
    f.sign(wallet(ALICE, 0), Some(&code_at(&e, f.now())))
        .unwrap();
}

#[test]
fn paths_at_and_under_the_wallet_node_are_gated() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let node = e.node_path().unwrap().to_string();
    assert_eq!(
        node,
        WalletScheme::Default
            .wallet_path(ALICE)
            .unwrap()
            .to_string()
    );
    for p in [
        node.clone(),
        format!("{node}/0"),
        format!("{node}/5"),
        format!("{node}/5/3"),
        format!("{node}/7'/1"),
    ] {
        assert_eq!(denied(f.sign(path(&p), None)), Denial::TotpRequired, "{p}");
        assert_eq!(
            denied(f.export(path(&p), None)),
            Denial::TotpRequired,
            "{p}"
        );
    }
    assert_eq!(f.reached(), 0);
    // With a code, a path under the node signs (and spends the code).
    let code = code_at(&e, f.now());
    f.sign(path(&format!("{node}/5/3")), Some(&code)).unwrap();
    assert_eq!(
        denied(f.sign(wallet(ALICE, 5), Some(&code))),
        Denial::TotpReplayed
    );
    // The wallet reference and the path reach the same key.
    f.clock.advance(30);
    let by_path = f
        .export(path(&format!("{node}/5")), Some(&code_at(&e, f.now())))
        .unwrap();
    f.clock.advance(30);
    let by_wallet = f
        .export(wallet(ALICE, 5), Some(&code_at(&e, f.now())))
        .unwrap();
    assert_eq!(by_path, by_wallet);
}

#[test]
fn exporting_an_ancestor_is_forbidden_even_with_a_code() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let node: DerivationPath = e.node_path().unwrap().clone();
    let c = node.components();
    let mut ancestors = vec!["m".to_owned()];
    for n in 1..c.len() {
        ancestors.push(
            DerivationPath::from_components(c[..n].to_vec())
                .unwrap()
                .to_string(),
        );
    }
    for a in &ancestors {
        assert_eq!(denied(f.export(path(a), None)), Denial::Forbidden, "{a}");
        assert_eq!(
            denied(f.export(path(a), Some(&code_at(&e, f.now())))),
            Denial::Forbidden,
            "{a}"
        );
    }
    assert_eq!(f.reached(), 0);
    // Forbidden refusals are audited.
    let forbidden = f
        .audit
        .records()
        .iter()
        .filter(|r| {
            r.event().op().as_str() == "export" && r.event().outcome() == AuditOutcome::Denied
        })
        .count();
    assert_eq!(forbidden, 2 * ancestors.len());
}

#[test]
fn export_of_normal_child_of_ancestor_is_forbidden() {
    // BIP32: xpub(m) (which `custody init` prints) and the private key of
    // m/0 give the private key of m. So exporting m/0, or any path whose
    // steps below the last hardened one are normal and which thereby
    // exposes an ancestor of an enrolled node, is forbidden.
    let f = fixture();
    let e = f.enrol(ALICE);
    let c = e.node_path().unwrap().components();
    let parent = DerivationPath::from_components(c[..c.len() - 1].to_vec()).unwrap();
    for p in [
        "m/0".to_owned(),
        "m/0/1/2".to_owned(),
        "m/44'/0".to_owned(),
        "m/44'/60'/5".to_owned(),
        format!("{parent}/0"),
        format!("{parent}/0/9"),
    ] {
        assert_eq!(denied(f.export(path(&p), None)), Denial::Forbidden, "{p}");
        // Signing with these keys exposes nothing: allowed.
        f.sign(path(&p), None).unwrap();
    }
    // A hardened step cuts the chain: m/44'/60'/0' is not an ancestor of
    // alice's node, so the standard BIP44 account exports freely.
    f.export(path("m/44'/60'/0'/0/0"), None).unwrap();
    f.export(path("m/1'/0"), None).unwrap();
}

#[test]
fn signing_with_an_ancestor_is_allowed() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let c = e.node_path().unwrap().components();
    for n in 0..c.len() {
        let a = DerivationPath::from_components(c[..n].to_vec()).unwrap();
        f.sign(KeyRef::Path(a), None).unwrap();
    }
    assert_eq!(f.reached(), c.len());
}

#[test]
fn export_of_a_wallet_key_needs_a_fresh_code() {
    let f = fixture();
    let e = f.enrol(ALICE);
    assert_eq!(
        denied(f.export(wallet(ALICE, 3), None)),
        Denial::TotpRequired
    );
    let code = code_at(&e, f.now());
    let key = f.export(wallet(ALICE, 3), Some(&code)).unwrap();
    assert_eq!(
        denied(f.export(wallet(ALICE, 3), Some(&code))),
        Denial::TotpReplayed
    );
    assert_eq!(
        denied(f.sign(wallet(ALICE, 3), Some(&code))),
        Denial::TotpReplayed
    );
    // The exported key is the wallet's key.
    let direct = f
        .vault
        .exporting()
        .unwrap()
        .export_private_key(
            &f.vault
                .signing()
                .unwrap()
                .pin(&wallet(ALICE, 3))
                .wait()
                .unwrap(),
            &Authorization::none(),
        )
        .wait()
        .unwrap();
    assert_eq!(key, direct);
}

#[test]
fn typed_intents_are_gated_like_raw_digests() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let signer = f.signer(wallet(ALICE, 0));
    let tx = String::from("a transaction");
    for kind in [
        IntentKind::Transaction,
        IntentKind::PersonalMessage,
        IntentKind::TypedData,
        IntentKind::Authorization,
    ] {
        let r = signer
            .sign(
                Digest32([1; 32]),
                Intent::typed(kind, &tx),
                &Authorization::none(),
            )
            .wait();
        assert_eq!(denied(r), Denial::TotpRequired, "{kind:?}");
    }
    let code = code_at(&e, f.now());
    signer
        .sign(
            Digest32([1; 32]),
            Intent::typed(IntentKind::Transaction, &tx),
            &Authorization::totp(code),
        )
        .wait()
        .unwrap();
}

#[test]
fn a_pinned_key_is_checked_on_its_path_and_its_reference() {
    // A hand-made PinnedKey: the vault signs with the *path*, whatever the
    // reference says. The gate checks both.
    let f = fixture();
    f.enrol(ALICE);
    let real = f
        .vault
        .signing()
        .unwrap()
        .pin(&wallet(ALICE, 0))
        .wait()
        .unwrap();
    let forged = PinnedKey::new(
        KeyRef::Stored(KeyId::new("innocent").unwrap()),
        real.path().cloned(),
        *real.secp256k1().unwrap(),
    );
    let r = f
        .gate
        .signing()
        .unwrap()
        .sign_digest(SignRequest::new(
            &forged,
            Digest32([3; 32]),
            Intent::raw_digest(),
            &Authorization::none(),
        ))
        .wait();
    assert_eq!(denied(r), Denial::TotpRequired);
    let r = f
        .gate
        .exporting()
        .unwrap()
        .export_private_key(&forged, &Authorization::none())
        .wait();
    assert_eq!(denied(r), Denial::TotpRequired);
    // And the other way round: a wallet reference pinned at another path
    // (a forgery, or a keystore with another wallet scheme): refused.
    let forged = PinnedKey::new(
        wallet(ALICE, 0),
        Some("m/44'/60'/0'/0/0".parse().unwrap()),
        *real.secp256k1().unwrap(),
    );
    let r = f
        .gate
        .exporting()
        .unwrap()
        .export_private_key(&forged, &Authorization::none())
        .wait();
    assert!(matches!(r, Err(CoreError::Backend { .. })), "{r:?}");
    assert_eq!(f.reached(), 0);
}

#[test]
fn a_gate_with_another_scheme_than_the_keystore_fails_closed() {
    // The vault maps wallets with `fortanix`, the gate with `default`.
    let f = fixture();
    f.enrol(ALICE);
    let fortanix = vault(f.kek.clone(), WalletScheme::Fortanix);
    let gate: SharedBackend = Arc::new(TotpGate::new(fortanix, f.registry.clone()));
    let signer = KeySigner::pin(gate, wallet(ALICE, 0)).wait().unwrap();
    let r = signer
        .sign(
            Digest32([1; 32]),
            Intent::raw_digest(),
            &Authorization::none(),
        )
        .wait();
    match r {
        Err(CoreError::Backend { source: e, .. }) => {
            assert!(matches!(
                e.downcast_ref::<Error>(),
                Some(Error::SchemeMismatch)
            ));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn failed_check_never_reaches_backend() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let wrong = wrong_code(&e, f.now());
    let code = code_at(&e, f.now());
    f.sign(wallet(ALICE, 0), Some(&code)).unwrap();
    assert_eq!(f.reached(), 1);
    let _ = f.sign(wallet(ALICE, 0), None);
    let _ = f.sign(wallet(ALICE, 0), Some(&code));
    let _ = f.export(wallet(ALICE, 0), Some(&code));
    for _ in 0..6 {
        let _ = f.sign(wallet(ALICE, 0), Some(&wrong));
    }
    let _ = f.sign(wallet(ALICE, 0), Some(&code_at(&e, f.now() + 30)));
    let _ = f.export(path("m"), Some(&code));
    assert_eq!(f.reached(), 1);
}

#[test]
fn passed_code_is_spent_even_if_inner_signing_fails() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let code = code_at(&e, f.now());
    f.counting.fail_sign.store(true, Ordering::SeqCst);
    assert!(matches!(
        f.sign(wallet(ALICE, 0), Some(&code)),
        Err(CoreError::Unsupported(_))
    ));
    assert_eq!(f.reached(), 1);
    f.counting.fail_sign.store(false, Ordering::SeqCst);
    assert_eq!(
        denied(f.sign(wallet(ALICE, 0), Some(&code))),
        Denial::TotpReplayed
    );
    assert_eq!(f.reached(), 1);
}

#[test]
fn lookup_error_fails_closed() {
    // The Fortanix plugin treats a failed lookup as "not registered" and
    // signs without a code. We refuse.
    let f = fixture();
    let e = f.enrol(ALICE);
    let code = code_at(&e, f.now());
    f.store.fail_get.store(true, Ordering::SeqCst);
    for r in [
        f.sign(wallet(ALICE, 0), None),
        f.sign(wallet(ALICE, 0), Some(&code)),
        f.sign(wallet("bob", 0), None),
        f.sign(path("m/44'/60'/0'/0/0/0"), None),
        f.export(path("m/1'"), None).map(|_| ()),
    ] {
        assert!(matches!(r, Err(CoreError::Io(_))), "{r:?}");
    }
    // A path shallower than any wallet node cannot lie under one: signing
    // with it needs no lookup, so there is nothing to fail.
    f.sign(path("m/44'/60'/0'/0/0"), None).unwrap();
    assert_eq!(f.reached(), 1);
    f.counting.signs.store(0, Ordering::SeqCst);
    assert!(f.registry.verify(ALICE, None).wait().is_err());
    assert_eq!(f.reached(), 0);
    // A guard that cannot be written: refused, nothing signed.
    f.store.fail_get.store(false, Ordering::SeqCst);
    f.store.fail_cas.store(true, Ordering::SeqCst);
    assert!(matches!(
        f.sign(wallet(ALICE, 0), Some(&code)),
        Err(CoreError::Io(_))
    ));
    assert_eq!(f.reached(), 0);
    // The code was not spent: it works once the store is back.
    f.store.fail_cas.store(false, Ordering::SeqCst);
    f.sign(wallet(ALICE, 0), Some(&code)).unwrap();
}

#[test]
fn damaged_or_foreign_records_fail_closed() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let code = code_at(&e, f.now());
    // A registry whose KEK cannot open the sealed secret.
    let other_kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([8; 32]),
    ));
    let registry = Arc::new(
        TotpRegistry::new(
            other_kek,
            f.store.clone(),
            f.audit.clone(),
            TotpConfig::new(WalletScheme::Default),
        )
        .unwrap()
        .with_clock(f.clock.clone()),
    );
    let gate = TotpGate::new(f.counting.clone(), registry);
    let signer = KeySigner::pin(Arc::new(gate), wallet(ALICE, 0))
        .wait()
        .unwrap();
    let r = signer
        .sign(
            Digest32([1; 32]),
            Intent::raw_digest(),
            &Authorization::totp(code.clone()),
        )
        .wait();
    assert!(matches!(r, Err(CoreError::DecryptionFailed)), "{r:?}");
    // A registry configured for another wallet scheme over the same state.
    let registry = Arc::new(
        TotpRegistry::new(
            f.kek.clone(),
            f.store.clone(),
            f.audit.clone(),
            TotpConfig::new(WalletScheme::Fortanix),
        )
        .unwrap(),
    );
    let gate = TotpGate::new(f.counting.clone(), registry.clone());
    let signer = KeySigner::pin(Arc::new(gate), wallet(ALICE, 0))
        .wait()
        .unwrap();
    let r = signer
        .sign(
            Digest32([1; 32]),
            Intent::raw_digest(),
            &Authorization::none(),
        )
        .wait();
    assert!(matches!(r, Err(CoreError::Backend { .. })), "{r:?}");
    assert!(matches!(
        registry.enrol("carol", EnrolMode::New).wait(),
        Err(Error::SchemeMismatch)
    ));
    assert_eq!(f.reached(), 0);
}

#[test]
fn audit_log_records_every_attempt_but_never_the_code_or_secret() {
    // Eight digits, so that no code turns up in a hex field by chance.
    let mut config = TotpConfig::new(WalletScheme::Default);
    config.params.digits = custody_totp::Digits::EIGHT;
    let f = fixture_with(config, false);
    let e = f.enrol(ALICE);
    let secret_b32 = e.secret_base32().to_string();
    let secret_hex = hex::encode(e.uri().expose_secret());
    let mut codes = Vec::new();
    let wrong = wrong_code(&e, f.now());
    codes.push(wrong.clone());
    let _ = f.sign(wallet(ALICE, 0), None);
    let _ = f.sign(wallet(ALICE, 0), Some(&wrong));
    for _ in 0..3 {
        let code = code_at(&e, f.now());
        codes.push(code.clone());
        f.sign(wallet(ALICE, 1), Some(&code)).unwrap();
        let _ = f.sign(wallet(ALICE, 1), Some(&code));
        let _ = f.export(wallet(ALICE, 1), Some(&code));
        f.clock.advance(30);
    }
    let log = f.audit.to_jsonl().unwrap();
    for code in &codes {
        assert!(!log.contains(code.as_str()), "code {code} in the audit log");
    }
    for secret in [&secret_b32, &secret_b32.to_lowercase(), &secret_hex] {
        assert!(!log.contains(secret.as_str()));
    }
    // Every attempt is there, with its outcome, step and digest.
    let verifies: Vec<_> = f
        .audit
        .records()
        .into_iter()
        .filter(|r| r.event().op().as_str() == "totp-verify")
        .collect();
    assert_eq!(verifies.len(), 2 + 3 * 3);
    let details: Vec<&str> = verifies
        .iter()
        .map(|r| r.event().field("detail").unwrap())
        .collect();
    assert_eq!(
        details,
        [
            "totp-required",
            "totp-invalid",
            "accepted",
            "totp-replayed",
            "totp-replayed",
            "accepted",
            "totp-replayed",
            "totp-replayed",
            "accepted",
            "totp-replayed",
            "totp-replayed"
        ]
    );
    let accepted = &verifies[2];
    assert_eq!(accepted.event().outcome(), AuditOutcome::Success);
    assert_eq!(accepted.event().field("wallet"), Some(ALICE));
    assert_eq!(accepted.event().field("route"), Some("sign"));
    assert_eq!(accepted.event().field("index"), Some("1"));
    assert_eq!(
        accepted.event().field("step"),
        Some(&*(NOW / 30).to_string())
    );
    assert_eq!(
        accepted.event().field("digest"),
        Some(&*hex::encode([9u8; 32]))
    );
    assert_eq!(verifies[4].event().field("route"), Some("export"));
    assert!(verifies[4].event().field("digest").is_none());
    assert!(!format!("{:?}", f.registry).contains(&secret_b32));
    assert!(!format!("{e:?}").contains(&secret_b32));
}

#[test]
fn pending_is_ready_on_the_software_path() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let key = f.pinned(&wallet(ALICE, 0));
    let auth = Authorization::totp(code_at(&e, f.now()));
    let pending = f.request(&key, &auth);
    assert!(pending.is_ready());
    assert!(pending.wait().is_ok());
    let refused = f.request(&key, &auth);
    assert!(refused.is_ready());
    // A cached secret: enrolment opened nothing; the first check unwrapped
    // once, the rest hit the cache.
    assert_eq!(f.registry.cached_secrets(), 1);
}

#[test]
fn gate_is_a_composable_backend() {
    let f = fixture();
    let gate: SharedBackend = f.gate.clone();
    assert_eq!(Capabilities::of(&*gate), Capabilities::of(&*f.vault));
    assert_eq!(gate.name(), "counting");
    // Wrapping is forwarded.
    let kek = gate.wrapping().unwrap().default_kek();
    assert_eq!(kek.as_str(), "test-kek");
    // A backend without signing or export: the gate has none either.
    let registry = f.registry.clone();
    let wrap_only = TotpGate::new(f.kek.clone(), registry);
    assert!(wrap_only.signing().is_none() && wrap_only.exporting().is_none());
    assert!(wrap_only.wrapping().is_some());
    let _: Vec<SharedBackend> = vec![Arc::new(wrap_only)];
}

#[test]
fn imported_uri_gates_with_its_own_secret_and_parameters() {
    let f = fixture();
    let uri = OtpAuthUri::parse(
        "otpauth://totp/Old%20Signer:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA\
         &issuer=Old%20Signer&algorithm=SHA256&digits=8&period=60",
    )
    .unwrap();
    f.registry
        .import(ALICE, &uri, EnrolMode::New)
        .wait()
        .unwrap();
    assert!(matches!(
        f.registry.import(ALICE, &uri, EnrolMode::New).wait(),
        Err(Error::AlreadyEnrolled)
    ));
    let code = uri.params().code_at(uri.expose_secret(), f.now()).unwrap();
    assert_eq!(code.expose_str().len(), 8);
    f.sign(wallet(ALICE, 0), Some(code.expose_str())).unwrap();
}

#[test]
fn fortanix_scheme_gates_its_deeper_nodes() {
    let f = fixture_with(TotpConfig::new(WalletScheme::Fortanix), false);
    assert_eq!(f.registry.node_depth(), 8);
    let e = f.enrol("alice@acme.com");
    assert_eq!(
        e.node_path().unwrap().to_string(),
        "m/647304866/787048181'/570856188'/1822678761'/1357525188/1716378172'/1796893184/862241229"
    );
    assert_eq!(
        denied(f.sign(wallet("alice@acme.com", 0), None)),
        Denial::TotpRequired
    );
    assert_eq!(
        denied(f.sign(path(&format!("{}/3", e.node_path().unwrap())), None)),
        Denial::TotpRequired
    );
    // The node's last two steps are normal: exporting a normal child of the
    // node exposes the node's ancestors (given their xpubs), which a code
    // for this wallet does not cover.
    assert_eq!(
        denied(f.export(wallet("alice@acme.com", 0), Some(&code_at(&e, f.now())))),
        Denial::Forbidden
    );
    // A hardened child of the node exposes only the node's subtree: a code
    // is enough.
    f.export(
        wallet("alice@acme.com", 0x8000_0001),
        Some(&code_at(&e, f.now())),
    )
    .unwrap();
}

#[test]
fn wallet_names_are_checked() {
    let f = fixture();
    assert!(matches!(
        f.registry.enrol("", EnrolMode::New).wait(),
        Err(Error::InvalidWallet(_))
    ));
    let long = "w".repeat(1025);
    assert!(matches!(
        f.registry.enrol(&long, EnrolMode::New).wait(),
        Err(Error::InvalidWallet(_))
    ));
    assert!(!f.registry.is_enrolled(&long).wait().unwrap());
    // Such a wallet cannot be enrolled, so it signs as not enrolled.
    f.sign(wallet(&long, 0), None).unwrap();
    // UTF-8 and ':' in names.
    for name in ["Zoë 🦀 wallet", "team:ops:hot"] {
        let e = f.enrol(name);
        let back = OtpAuthUri::parse(&e.to_uri()).unwrap();
        assert_eq!(back.account(), name);
        assert_eq!(back.issuer(), Some("custody"));
        assert_eq!(denied(f.sign(wallet(name, 0), None)), Denial::TotpRequired);
        f.sign(wallet(name, 0), Some(&code_at(&e, f.now())))
            .unwrap();
    }
}

#[test]
fn real_keystore_with_the_gate_under_audited() {
    let dir = tempfile::tempdir().unwrap();
    let ks = Keystore::create(
        &dir.path().join("ks"),
        &Passphrase::from_str_copy("correct horse"),
        &Seed::new([0x11; 64]),
        &CreateOptions::light().unwrap(),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::new(NOW));
    let registry = Arc::new(
        TotpRegistry::new(
            ks.backend(),
            ks.state(),
            ks.audit(),
            TotpConfig::new(ks.vault().scheme()),
        )
        .unwrap()
        .with_clock(clock.clone()),
    );
    let e = registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    let gate: SharedBackend = Arc::new(TotpGate::new(ks.backend(), registry));
    let audited: SharedBackend = Arc::new(custody_core::Audited::new(gate, ks.audit()));
    let signer = KeySigner::pin(audited.clone(), wallet(ALICE, 2))
        .wait()
        .unwrap();
    let digest = Digest32([0xAB; 32]);
    let r = signer
        .sign(digest, Intent::raw_digest(), &Authorization::none())
        .wait();
    assert_eq!(denied(r), Denial::TotpRequired);
    let code = code_at(&e, clock.now_unix());
    let sig = signer
        .sign(
            digest,
            Intent::raw_digest(),
            &Authorization::totp(code.clone()),
        )
        .wait()
        .unwrap();
    assert_eq!(
        &sig.recover(&digest).unwrap(),
        signer.key().secp256k1().unwrap()
    );
    let r = signer
        .sign(
            digest,
            Intent::raw_digest(),
            &Authorization::totp(code.clone()),
        )
        .wait();
    assert_eq!(denied(r), Denial::TotpReplayed);
    // Export through the same stack.
    clock.advance(30);
    let pinned = signer.key().clone();
    let exported = audited
        .exporting()
        .unwrap()
        .export_private_key(&pinned, &Authorization::totp(code_at(&e, clock.now_unix())))
        .wait()
        .unwrap();
    assert_eq!(exported.expose_secret().len(), 32);

    // The log verifies, holds gate and Audited records, and no code.
    let head = custody_core::AuditLog::open(dir.path().join("ks/audit.log"))
        .unwrap()
        .verify_file()
        .unwrap();
    assert!(head.seq >= 8);
    let text = std::fs::read_to_string(dir.path().join("ks/audit.log")).unwrap();
    assert!(!text.contains(&code));
    assert!(!text.contains(e.secret_base32().as_str()));
    let ops: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let r = custody_core::AuditRecord::from_line(l).unwrap();
            (
                r.event().op().as_str().to_owned(),
                r.event().outcome().as_str().to_owned(),
            )
        })
        .filter(|(op, _)| op != "create" && op != "unwrap")
        .collect();
    let expected = [
        ("enrol", "success"),
        ("totp-verify", "denied"),
        ("sign", "denied"),
        // One record for the signature: the gate's step is in it.
        ("sign", "success"),
        ("totp-verify", "denied"),
        ("sign", "denied"),
        ("totp-verify", "success"),
        ("export", "success"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(ops, expected);

    // And it survives reopening the keystore (state is durable).
    drop(ks);
    let ks = Keystore::open(
        &dir.path().join("ks"),
        &Passphrase::from_str_copy("correct horse"),
    )
    .unwrap();
    let registry = Arc::new(
        TotpRegistry::new(ks.backend(), ks.state(), ks.audit(), TotpConfig::default())
            .unwrap()
            .with_clock(clock.clone()),
    );
    assert!(registry.is_enrolled(ALICE).wait().unwrap());
    let code_again = custody_core::OneTimeCode::new(code_at(&e, clock.now_unix()));
    assert_eq!(
        registry.verify(ALICE, Some(&code_again)).wait().unwrap(),
        Verification::Replayed
    );
}

/// The records appended to `log` since it held `before` of them, as
/// (op, outcome, detail).
fn records_since(log: &MemoryAuditLog, before: usize) -> Vec<custody_core::AuditRecord> {
    log.records().split_off(before)
}

#[test]
fn one_record_per_signature_under_an_audit_layer() {
    // DESIGN.md's hot path ends in *one* audit record: under Audited the
    // gate hands its accepted step up and the signature's record holds it.
    let f = fixture();
    let e = f.enrol(ALICE);
    let audited: SharedBackend = Arc::new(Audited::new(f.gate.clone(), f.audit.clone()));
    let signer = KeySigner::pin(audited, wallet(ALICE, 2)).wait().unwrap();
    let digest = Digest32([4; 32]);
    let code = code_at(&e, f.now());

    let before = f.audit.records().len();
    signer
        .sign(
            digest,
            Intent::raw_digest(),
            &Authorization::totp(code.clone()),
        )
        .wait()
        .unwrap();
    let new = records_since(&f.audit, before);
    assert_eq!(new.len(), 1, "{new:?}");
    let event = new[0].event();
    assert_eq!(event.op().as_str(), "sign");
    assert_eq!(event.outcome(), AuditOutcome::Success);
    assert_eq!(event.field("totp-step"), Some(&*(f.now() / 30).to_string()));
    assert_eq!(event.field("wallet"), Some(ALICE));
    assert_eq!(event.field("index"), Some("2"));
    assert_eq!(event.field("digest"), Some(&*hex::encode([4u8; 32])));

    // A refusal keeps the gate's own record (its reason, its step) and
    // Audited's; neither carries a totp-step clearance.
    let before = f.audit.records().len();
    let r = signer
        .sign(digest, Intent::raw_digest(), &Authorization::totp(code))
        .wait();
    assert_eq!(denied(r), Denial::TotpReplayed);
    let new = records_since(&f.audit, before);
    let ops: Vec<(&str, AuditOutcome, Option<&str>)> = new
        .iter()
        .map(|r| {
            (
                r.event().op().as_str(),
                r.event().outcome(),
                r.event().field("detail"),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("totp-verify", AuditOutcome::Denied, Some("totp-replayed")),
            ("sign", AuditOutcome::Denied, Some("totp-replayed")),
        ]
    );
    assert!(new.iter().all(|r| r.event().field("totp-step").is_none()));

    // A wallet that is not enrolled: one record, no clearance.
    let other = KeySigner::pin(signer.backend().clone(), wallet(BOB, 0))
        .wait()
        .unwrap();
    let before = f.audit.records().len();
    other
        .sign(digest, Intent::raw_digest(), &Authorization::none())
        .wait()
        .unwrap();
    let new = records_since(&f.audit, before);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].event().op().as_str(), "sign");
    assert!(new[0].event().field("totp-step").is_none());
    let jsonl = f.audit.to_jsonl().unwrap();
    let head = custody_core::AuditLog::verify(jsonl.as_bytes()).unwrap();
    assert_eq!(head, f.audit.head());
}

#[test]
fn gate_hands_its_clearance_up_and_records_itself_when_alone() {
    let f = fixture();
    let e = f.enrol(ALICE);
    let key = f.pinned(&wallet(ALICE, 0));
    let auth = Authorization::totp(code_at(&e, f.now()));
    let before = f.audit.records().len();
    let signed = f.request(&key, &auth).wait().unwrap();
    assert_eq!(
        signed.evidence.clearances,
        [Clearance::Totp { step: f.now() / 30 }]
    );
    // No audit layer above: the request was not marked, so the gate
    // recorded the accepted code itself.
    let new = records_since(&f.audit, before);
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].event().op().as_str(), "totp-verify");
    assert_eq!(new[0].event().field("detail"), Some("accepted"));

    // A key of no enrolled wallet: no clearance, no record from the gate.
    let bob = f.pinned(&wallet(BOB, 0));
    let before = f.audit.records().len();
    let none = Authorization::none();
    let signed = f.request(&bob, &none).wait().unwrap();
    assert!(signed.evidence.clearances.is_empty());
    assert_eq!(f.audit.records().len(), before);
}

#[test]
fn spent_code_whose_signature_failed_is_recorded_by_the_gate() {
    // Under Audited the gate leaves the success record to the layer above;
    // if no signature comes out, the spent code must still be on record.
    let f = fixture();
    let e = f.enrol(ALICE);
    let audited: SharedBackend = Arc::new(Audited::new(f.gate.clone(), f.audit.clone()));
    let signer = KeySigner::pin(audited, wallet(ALICE, 0)).wait().unwrap();
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
    let new = records_since(&f.audit, before);
    assert_eq!(new.len(), 2, "{new:?}");
    let spent = new[0].event();
    assert_eq!(spent.op().as_str(), "totp-verify");
    assert_eq!(spent.outcome(), AuditOutcome::Success);
    assert_eq!(spent.field("inner-error"), Some("unsupported"));
    assert_eq!(spent.field("step"), Some(&*(f.now() / 30).to_string()));
    let failed = new[1].event();
    assert_eq!(failed.op().as_str(), "sign");
    assert_eq!(failed.outcome(), AuditOutcome::Failed);
    assert!(failed.field("totp-step").is_none());
    // And the code stays spent.
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

/// A second registry over the same state store: another process.
fn other_process(f: &Fixture) -> TotpRegistry {
    TotpRegistry::new(
        f.kek.clone(),
        f.store.clone(),
        f.audit.clone(),
        TotpConfig::new(WalletScheme::Default),
    )
    .unwrap()
    .with_clock(f.clock.clone())
}

#[test]
fn a_stale_guard_in_one_process_never_accepts_what_another_refused_or_spent() {
    // Each process starts a check from the guard it last saw and writes by
    // compare-and-swap; these are the cases where its view is stale.
    let f = fixture();
    let e = f.enrol(ALICE);
    let other = other_process(&f);
    // Both processes warm: each has accepted a code and cached the guard.
    let code = code_at(&e, f.now());
    assert!(
        f.registry
            .verify(ALICE, Some(&custody_core::OneTimeCode::new(code)))
            .wait()
            .unwrap()
            .is_accepted()
    );
    f.clock.advance(30);
    let code = code_at(&e, f.now());
    assert!(
        other
            .verify(ALICE, Some(&custody_core::OneTimeCode::new(code)))
            .wait()
            .unwrap()
            .is_accepted()
    );
    f.clock.advance(30);

    // 1. The other process spends this step's code; ours (stale: it last
    //    saw two steps ago) must call it a replay.
    let code = code_at(&e, f.now());
    let otc = || custody_core::OneTimeCode::new(code.clone());
    assert!(
        other
            .verify(ALICE, Some(&otc()))
            .wait()
            .unwrap()
            .is_accepted()
    );
    assert_eq!(
        f.registry.verify(ALICE, Some(&otc())).wait().unwrap(),
        Verification::Replayed
    );

    // 2. The other process locks the wallet with wrong codes; ours (stale:
    //    unlocked) must refuse even a valid code as locked.
    f.clock.advance(30);
    for _ in 0..5 {
        let wrong = custody_core::OneTimeCode::new(wrong_code(&e, f.now()));
        assert!(
            !other
                .verify(ALICE, Some(&wrong))
                .wait()
                .unwrap()
                .is_accepted()
        );
    }
    let valid = custody_core::OneTimeCode::new(code_at(&e, f.now()));
    assert!(matches!(
        f.registry.verify(ALICE, Some(&valid)).wait().unwrap(),
        Verification::Locked { .. }
    ));
    // 3. Once the lock expires, our process accepts a fresh code (its stale
    //    view cost a conflict, not a refusal), and the other then sees it
    //    as spent.
    f.clock.advance(60);
    let fresh = custody_core::OneTimeCode::new(code_at(&e, f.now()));
    assert!(
        f.registry
            .verify(ALICE, Some(&fresh))
            .wait()
            .unwrap()
            .is_accepted()
    );
    assert_eq!(
        other.verify(ALICE, Some(&fresh)).wait().unwrap(),
        Verification::Replayed
    );
}

/// An unseal (ECDH with a held P-256 key) is gated like a signature: with
/// enrolment required, a key no one enrolled is refused before the vault
/// computes anything, and the refusal is recorded as a `decrypt`; without
/// it, the request reaches the vault and the shared secret is RustCrypto's.
#[test]
fn unseal_passes_the_same_gate_as_a_signature() {
    let secret = p256::SecretKey::from_slice(&[0x5a; 32]).unwrap();
    let peer_secret = p256::SecretKey::from_slice(&[0x33; 32]).unwrap();
    let peer = custody_core::P256PublicKey::from(peer_secret.public_key());
    let expected = p256::ecdh::diffie_hellman(
        secret.to_nonzero_scalar(),
        peer_secret.public_key().as_affine(),
    );
    for require in [true, false] {
        let f = fixture_with(TotpConfig::new(WalletScheme::Default), require);
        let id = KeyId::new(SEALING).unwrap();
        let key = f
            .vault
            .signing()
            .unwrap()
            .pin(&KeyRef::Stored(id))
            .wait()
            .unwrap();
        let auth = Authorization::none();
        let request = DecryptRequest::new(
            &key,
            Digest32([0xcd; 32]),
            Decryption::EcdhP256 { peer: &peer },
            Intent::typed(IntentKind::Unseal, &()),
            &auth,
        )
        .unwrap();
        let answer = f.gate.decrypting().unwrap().decrypt(request).wait();
        if require {
            assert_eq!(denied(answer.map(|_| ())), Denial::Forbidden);
            let records = f.audit.records();
            let last = records.last().unwrap();
            assert_eq!(last.event().op().as_str(), "decrypt");
            assert_eq!(last.event().outcome(), AuditOutcome::Denied);
        } else {
            let opened = answer.unwrap();
            assert_eq!(
                opened.secret.expose_secret(),
                expected.raw_secret_bytes().as_slice()
            );
        }
    }
}

/// A key of another algorithm than secp256k1, enrolled by its public key
/// (`enrol_any_key`), is gated exactly as a wallet is: a JWT by an enrolled
/// P-256 key without a code is refused (nothing reaches the vault), with a
/// fresh code it is signed (and verifies against the key's JWK), and the
/// same code is refused the second time; an unseal by that key needs a
/// code too. The enrolment names the key by algorithm and public key.
#[test]
fn a_jwt_by_an_enrolled_p256_key_needs_a_code_that_is_not_reusable() {
    let f = fixture();
    let id = KeyId::new(SEALING).unwrap();
    let gate: SharedBackend = f.gate.clone();
    let signer = KeySigner::pin(gate, KeyRef::Stored(id)).wait().unwrap();
    let public = signer.key().public().clone();
    assert_eq!(public.algorithm(), custody_core::KeyAlgorithm::P256);
    assert!(!f.registry.is_any_key_enrolled(&public).wait().unwrap());

    // Before enrolment the key is open (enrolment is not required here).
    let claims = serde_json::json!({"sub": "svc", "iat": NOW, "exp": NOW + 60});
    custody_jose::sign_jwt(&signer, &claims, &Authorization::none())
        .wait()
        .unwrap();
    let signs_before = f.counting.signs.load(Ordering::SeqCst);

    let enrolment = f
        .registry
        .enrol_any_key("jwt-signer", &public, EnrolMode::New)
        .wait()
        .unwrap();
    assert!(f.registry.is_any_key_enrolled(&public).wait().unwrap());
    // Not a secp256k1 enrolment: no secp256k1 subject is named.
    assert!(enrolment.public_key().is_none());

    // No code: refused before the vault is asked.
    let refused = custody_jose::sign_jwt(&signer, &claims, &Authorization::none()).wait();
    match refused {
        Err(custody_jose::SignError::Backend(CoreError::Denied(d))) => {
            assert_eq!(d, Denial::TotpRequired);
        }
        other => panic!("expected totp-required, got {other:?}"),
    }
    assert_eq!(f.counting.signs.load(Ordering::SeqCst), signs_before);

    // A fresh code: signed, and the token verifies against the key's JWK.
    let code = code_at(&enrolment, f.now());
    let token = custody_jose::sign_jwt(&signer, &claims, &Authorization::totp(code.clone()))
        .wait()
        .unwrap();
    let jwk = custody_jose::public_jwk(signer.key()).unwrap();
    let keys = custody_jose::JwkSet::from_keys(vec![jwk]).unwrap();
    let verified =
        custody_jose::jwt::verify(&token, &keys, &custody_jose::jwt::Validation::new(NOW)).unwrap();
    assert_eq!(verified.claims().sub(), Some("svc"));
    assert_eq!(f.counting.signs.load(Ordering::SeqCst), signs_before + 1);

    // The same code again: replayed, refused.
    let again = custody_jose::sign_jwt(&signer, &claims, &Authorization::totp(code)).wait();
    match again {
        Err(custody_jose::SignError::Backend(CoreError::Denied(d))) => {
            assert_eq!(d, Denial::TotpReplayed);
        }
        other => panic!("expected totp-replayed, got {other:?}"),
    }

    // An unseal by the enrolled key needs a code as well.
    let peer = custody_core::P256PublicKey::from(
        p256::SecretKey::from_slice(&[0x33; 32])
            .unwrap()
            .public_key(),
    );
    let auth = Authorization::none();
    let request = DecryptRequest::new(
        signer.key(),
        Digest32([0xcd; 32]),
        Decryption::EcdhP256 { peer: &peer },
        Intent::typed(IntentKind::Unseal, &()),
        &auth,
    )
    .unwrap();
    let answer = f.gate.decrypting().unwrap().decrypt(request).wait();
    assert_eq!(denied(answer.map(|_| ())), Denial::TotpRequired);

    // The enrolment's audit record names the key by algorithm and bytes.
    let records = f.audit.records();
    let enrol = records
        .iter()
        .find(|r| r.event().op().as_str() == "enrol")
        .unwrap();
    assert_eq!(enrol.event().field("algorithm"), Some("P-256"));
    assert_eq!(
        enrol.event().field("public-key"),
        Some(hex::encode(public.to_bytes()).as_str())
    );
}
