//! The registry's caches (state-store keys, decoded records, unwrapped
//! secrets) never let a stale view decide: a rotation, a lock or any other
//! change to the records, made by another registry (another process) or
//! written straight into the store, takes effect on the very next request
//! of a registry whose caches are warm. And the caches stay bounded.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers outside #[test] fns: a failed unwrap or panic is a failed test"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use custody_core::{
    Authorization, CasOutcome, DataKey, Denial, Digest32, Error as CoreError, Intent, KekId,
    KeyRef, KeySigner, LocalKek, MemoryAuditLog, MemoryStore, OneTimeCode, Pending, SharedBackend,
    StateStore, Versioned, WalletScheme,
};
use custody_totp::{
    EnrolMode, Enrolment, ManualClock, TotpConfig, TotpGate, TotpRegistry, Verification,
};
use sha2::{Digest, Sha256};

const NOW: u64 = 1_700_000_015;
const ALICE: &str = "alice@example.com";

/// A state store whose reads of some keys can be overridden: what another
/// process, an operator or a restored backup could leave there, versions
/// included.
#[derive(Debug, Default)]
struct Patchable {
    inner: MemoryStore,
    overrides: Mutex<HashMap<String, Versioned>>,
}

impl Patchable {
    fn patch(&self, key: &str, record: Option<Versioned>) {
        let mut o = self.overrides.lock().unwrap();
        match record {
            Some(r) => o.insert(key.to_owned(), r),
            None => o.remove(key),
        };
    }
}

impl Patchable {
    fn get_now(&self, key: &str) -> Result<Option<Versioned>, CoreError> {
        if let Some(r) = self.overrides.lock().unwrap().get(key) {
            return Ok(Some(r.clone()));
        }
        self.inner.get(key).wait()
    }
    fn swap_now(
        &self,
        key: &str,
        expected: Option<u64>,
        value: &[u8],
    ) -> Result<CasOutcome, CoreError> {
        self.inner.compare_and_swap(key, expected, value).wait()
    }
}

impl StateStore for Patchable {
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

fn vault(kek: SharedBackend) -> SharedBackend {
    let mut v = custody_core::Vault::new(kek, WalletScheme::Default);
    v.set_master_seed(&[0x42; 64]).unwrap();
    Arc::new(v)
}

/// One "process": a registry and a gate over a shared store and KEK.
struct Process {
    registry: Arc<TotpRegistry>,
    signer: KeySigner,
}

impl Process {
    fn new(
        kek: &SharedBackend,
        store: Arc<dyn StateStore>,
        clock: &Arc<ManualClock>,
        config: TotpConfig,
    ) -> Self {
        let registry = Arc::new(
            TotpRegistry::new(kek.clone(), store, Arc::new(MemoryAuditLog::new()), config)
                .unwrap()
                .with_clock(clock.clone()),
        );
        let gate: SharedBackend = Arc::new(TotpGate::new(vault(kek.clone()), registry.clone()));
        let signer = KeySigner::pin(
            gate,
            KeyRef::Wallet {
                name: ALICE.into(),
                index: 0,
            },
        )
        .wait()
        .unwrap();
        Self { registry, signer }
    }

    fn sign(&self, code: &str) -> Result<(), CoreError> {
        self.signer
            .sign(
                Digest32([3; 32]),
                Intent::raw_digest(),
                &Authorization::totp(code),
            )
            .wait()
            .map(|_| ())
    }
}

fn config() -> TotpConfig {
    TotpConfig::new(WalletScheme::Default)
}

fn code_at(e: &Enrolment, time: u64) -> String {
    e.params()
        .code_at(e.uri().expose_secret(), time)
        .unwrap()
        .expose_str()
        .to_owned()
}

/// A code that is valid at no step near `time` under any of `enrolments`.
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

fn denied(r: Result<(), CoreError>) -> Denial {
    match r {
        Err(CoreError::Denied(d)) => d,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// The key of a node's enrolment record, as `SPEC.md` defines it.
fn node_key(registry: &TotpRegistry, wallet: &str) -> String {
    let node = registry.node_path(wallet).unwrap().to_string();
    format!(
        "totp/v1/node/{}",
        hex::encode(Sha256::digest(node.as_bytes()))
    )
}

/// A code of `e` at `time` that no other enrolment of `others` shares
/// (advancing the clock a step at a time until one is found).
fn distinct_step(clock: &ManualClock, e: &Enrolment, others: &[&Enrolment]) -> String {
    loop {
        clock.advance(30);
        let t = custody_totp::Clock::now_unix(clock);
        let code = code_at(e, t);
        if others
            .iter()
            .all(|o| (0..=2).all(|i| code_at(o, t + 30 - i * 30) != code))
        {
            return code;
        }
    }
}

#[test]
fn a_rotation_by_another_process_takes_effect_on_a_warm_cache() {
    let (kek, clock) = (kek(), Arc::new(ManualClock::new(NOW)));
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let a = Process::new(&kek, store.clone(), &clock, config());
    let b = Process::new(&kek, store, &clock, config());
    let first = a.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    // Warm: A has decoded the record and holds the secret.
    a.sign(&code_at(&first, NOW)).unwrap();
    assert_eq!(
        (a.registry.cached_nodes(), a.registry.cached_secrets()),
        (1, 1)
    );
    // B rotates the secret.
    let second = b
        .registry
        .enrol(ALICE, EnrolMode::ForceRotate)
        .wait()
        .unwrap();
    // The old secret's code no longer opens A's gate; the new one does.
    let old = distinct_step(&clock, &first, &[&second]);
    assert_eq!(denied(a.sign(&old)), Denial::TotpInvalid);
    let now = custody_totp::Clock::now_unix(&*clock);
    a.sign(&code_at(&second, now)).unwrap();
    // A keeps one secret for the node: the new one replaced the old.
    assert_eq!(a.registry.cached_secrets(), 1);
    // And A's own rotation is seen by B, whose cache is warm too.
    b.sign(&distinct_step(&clock, &second, &[])).unwrap();
    let third = a
        .registry
        .enrol(ALICE, EnrolMode::ForceRotate)
        .wait()
        .unwrap();
    let stale = distinct_step(&clock, &second, &[&third]);
    assert_eq!(denied(b.sign(&stale)), Denial::TotpInvalid);
    let now = custody_totp::Clock::now_unix(&*clock);
    b.sign(&code_at(&third, now)).unwrap();
}

#[test]
fn a_lock_set_by_another_process_takes_effect_on_a_warm_cache() {
    let (kek, clock) = (kek(), Arc::new(ManualClock::new(NOW)));
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let a = Process::new(&kek, store.clone(), &clock, config());
    let b = Process::new(&kek, store, &clock, config());
    let e = a.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    a.sign(&code_at(&e, NOW)).unwrap();
    // B sees five wrong codes: the wallet locks.
    let wrong = wrong_code(&[&e], NOW);
    for _ in 0..5 {
        assert_eq!(denied(b.sign(&wrong)), Denial::TotpInvalid);
    }
    // A, warm, refuses a valid fresh code, unchecked and unspent.
    let next = code_at(&e, NOW + 30);
    assert_eq!(
        denied(a.sign(&next)),
        Denial::TotpLocked {
            until_unix: NOW + 30
        }
    );
    // The lock ends for A as for B; the code was not spent.
    clock.advance(30);
    a.sign(&next).unwrap();
    // A replay through B after A accepted it: refused (the guard A wrote).
    assert_eq!(denied(b.sign(&next)), Denial::TotpReplayed);
}

#[test]
fn a_guard_written_straight_into_the_store_is_honoured() {
    let (kek, clock) = (kek(), Arc::new(ManualClock::new(NOW)));
    let store = Arc::new(MemoryStore::new());
    let a = Process::new(&kek, store.clone(), &clock, config());
    let e = a.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    a.sign(&code_at(&e, NOW)).unwrap();
    // An operator (or another tool) locks the wallet by rewriting its guard.
    let node = a.registry.node_path(ALICE).unwrap().to_string();
    let key = format!(
        "totp/v1/guard/{}",
        hex::encode(Sha256::digest(node.as_bytes()))
    );
    let current = store.get(&key).wait().unwrap().unwrap();
    let locked = format!(
        r#"{{"v":1,"lastStep":{},"failures":0,"lockLevel":1,"lockedUntil":{}}}"#,
        NOW / 30,
        NOW + 600
    );
    assert!(matches!(
        store
            .compare_and_swap(&key, Some(current.version), locked.as_bytes())
            .wait()
            .unwrap(),
        CasOutcome::Swapped { .. }
    ));
    assert_eq!(
        denied(a.sign(&code_at(&e, NOW + 30))),
        Denial::TotpLocked {
            until_unix: NOW + 600
        }
    );
    // A guard that no longer decodes fails closed.
    let current = store.get(&key).wait().unwrap().unwrap();
    assert!(matches!(
        store
            .compare_and_swap(&key, Some(current.version), b"{}")
            .wait()
            .unwrap(),
        CasOutcome::Swapped { .. }
    ));
    assert!(matches!(
        a.sign(&code_at(&e, NOW + 30)),
        Err(CoreError::MalformedRecord(_))
    ));
}

#[test]
fn a_record_replaced_at_the_same_version_is_decoded_and_unwrapped_again() {
    // Two stores in which alice enrolled with two different secrets: both
    // records are at version 1. A registry warm on the first must use the
    // second as soon as its bytes are what the store returns (a restored
    // backup, a store whose versions started again): the caches go by the
    // exact bytes, not by the version.
    let (kek, clock) = (kek(), Arc::new(ManualClock::new(NOW)));
    let store = Arc::new(Patchable::default());
    let a = Process::new(&kek, store.clone(), &clock, config());
    let first = a.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    let other_store = Arc::new(MemoryStore::new());
    let other = Process::new(&kek, other_store.clone(), &clock, config());
    let second = other.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    let key = node_key(&a.registry, ALICE);
    let mine = store.get(&key).wait().unwrap().unwrap();
    let theirs = other_store.get(&key).wait().unwrap().unwrap();
    assert_eq!((mine.version, theirs.version), (1, 1));
    assert_ne!(mine.value, theirs.value);

    a.sign(&code_at(&first, NOW)).unwrap();
    store.patch(&key, Some(theirs));
    let stale = distinct_step(&clock, &first, &[&second]);
    assert_eq!(denied(a.sign(&stale)), Denial::TotpInvalid);
    let now = custody_totp::Clock::now_unix(&*clock);
    a.sign(&code_at(&second, now)).unwrap();

    // Back to the first record: the first secret again.
    store.patch(&key, None);
    let stale = distinct_step(&clock, &second, &[&first]);
    assert_eq!(denied(a.sign(&stale)), Denial::TotpInvalid);
    let now = custody_totp::Clock::now_unix(&*clock);
    a.sign(&code_at(&first, now)).unwrap();
}

#[test]
fn a_damaged_record_fails_closed_even_with_its_decoding_cached() {
    let (kek, clock) = (kek(), Arc::new(ManualClock::new(NOW)));
    let store = Arc::new(Patchable::default());
    let a = Process::new(&kek, store.clone(), &clock, config());
    let e = a.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    a.sign(&code_at(&e, NOW)).unwrap();
    let key = node_key(&a.registry, ALICE);
    let good = store.get(&key).wait().unwrap().unwrap();
    // One byte of the record changed (the issuer, so that it still parses
    // but is not what was decoded), and then the record made unreadable.
    let mut edited = good.value.to_vec();
    let at = edited.windows(8).position(|w| w == b"custody\"").unwrap();
    edited[at] = b'C';
    store.patch(
        &key,
        Some(Versioned {
            version: good.version,
            value: edited.into(),
        }),
    );
    // The edited record decodes and seals the same secret: still gated by
    // it (the caches hold nothing the record does not say).
    let code = code_at(&e, NOW + 30);
    a.sign(&code).unwrap();
    store.patch(
        &key,
        Some(Versioned {
            version: good.version,
            value: b"{\"v\":1}".as_slice().into(),
        }),
    );
    clock.advance(60);
    let code = code_at(&e, NOW + 60);
    assert!(matches!(a.sign(&code), Err(CoreError::MalformedRecord(_))));
    // A record whose envelope was sealed for another wallet: refused, not
    // opened with the cached secret.
    let mut foreign = good.value.to_vec();
    let at = foreign
        .windows(ALICE.len())
        .position(|w| w == ALICE.as_bytes())
        .unwrap();
    foreign[at] = b'A';
    store.patch(
        &key,
        Some(Versioned {
            version: good.version,
            value: foreign.into(),
        }),
    );
    assert!(a.sign(&code).is_err());
    // Restored: the code (never spent) works.
    store.patch(&key, None);
    a.sign(&code).unwrap();
}

#[test]
fn caches_are_bounded_and_optional() {
    let (kek, clock) = (kek(), Arc::new(ManualClock::new(NOW)));
    let mut small = config();
    small.node_cache = 2;
    small.secret_cache = 2;
    let registry = TotpRegistry::new(
        kek.clone(),
        Arc::new(MemoryStore::new()),
        Arc::new(MemoryAuditLog::new()),
        small,
    )
    .unwrap()
    .with_clock(clock.clone());
    let wallets: Vec<String> = (0..5).map(|i| format!("user{i}@example.com")).collect();
    let enrolments: Vec<Enrolment> = wallets
        .iter()
        .map(|w| registry.enrol(w, EnrolMode::New).wait().unwrap())
        .collect();
    for round in 0..3u64 {
        let now = NOW + 30 * round;
        clock.set(now);
        for (w, e) in wallets.iter().zip(&enrolments) {
            let code = OneTimeCode::new(code_at(e, now));
            assert!(matches!(
                registry.verify(w, Some(&code)).wait().unwrap(),
                Verification::Accepted { .. }
            ));
            assert!(registry.cached_nodes() <= 2 && registry.cached_secrets() <= 2);
        }
    }
    assert_eq!((registry.cached_nodes(), registry.cached_secrets()), (2, 2));

    // With both caches off, everything works the same and nothing is kept.
    let mut off = config();
    off.node_cache = 0;
    off.secret_cache = 0;
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
    let p = Process::new(&kek, store, &clock, off);
    clock.set(NOW);
    let e = p.registry.enrol(ALICE, EnrolMode::New).wait().unwrap();
    p.sign(&code_at(&e, NOW)).unwrap();
    assert_eq!(denied(p.sign(&code_at(&e, NOW))), Denial::TotpReplayed);
    let wrong = wrong_code(&[&e], NOW);
    for _ in 0..5 {
        assert_eq!(denied(p.sign(&wrong)), Denial::TotpInvalid);
    }
    assert!(matches!(
        denied(p.sign(&code_at(&e, NOW + 30))),
        Denial::TotpLocked { .. }
    ));
    assert_eq!(
        (p.registry.cached_nodes(), p.registry.cached_secrets()),
        (0, 0)
    );
}
