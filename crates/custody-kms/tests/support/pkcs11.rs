//! The SoftHSM2 test fixtures shared by `pkcs11.rs`,
//! `pkcs11_algorithms.rs` and `conformance.rs`: the module path (or a
//! skip), fresh tokens made once per process before any test touches the
//! module (`super::TOKENS` of them), a test's own logged-in sessions, and
//! the keys and errors the tests name.

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use custody_core::{Error, KeyId, KeyRef};
use custody_kms::{Pin, Pkcs11Error, Pkcs11Module, Pkcs11Token};

pub(crate) const MODULE_VAR: &str = "CUSTODY_TEST_PKCS11_MODULE";
pub(crate) const SO_PIN: &str = "so-pin-0000";
pub(crate) const USER_PIN: &str = "user-pin-1234";

/// The key labelled (or named by the `pkcs11:` URI) `id`.
pub(crate) fn stored(id: &str) -> KeyRef {
    KeyRef::Stored(KeyId::new(id).unwrap())
}

/// The `Pkcs11Error` inside a core error, whose kind travels with it, or
/// a panic saying what came instead.
pub(crate) fn p11_error(e: &Error) -> &Pkcs11Error {
    match e {
        Error::Backend { kind, source } => {
            let p = source
                .downcast_ref::<Pkcs11Error>()
                .unwrap_or_else(|| panic!("not a Pkcs11Error: {e:?}"));
            assert_eq!(*kind, p.kind(), "the kind travels with the error");
            p
        }
        other => panic!("not a backend error: {other:?}"),
    }
}

/// The module path, or `None` after saying the test is skipped.
pub(crate) fn module_path(test: &str) -> Option<PathBuf> {
    match std::env::var_os(MODULE_VAR) {
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => {
            println!(
                "skipped {test}: set {MODULE_VAR}=/usr/lib/softhsm/libsofthsm2.so and SOFTHSM2_CONF to a softhsm2.conf with an empty token directory"
            );
            None
        }
    }
}

/// The test's own handle on the module (the same loaded library the
/// backend uses: a module is initialized once per process).
pub(crate) fn raw(path: &PathBuf) -> Pkcs11 {
    let ctx = Pkcs11::new(path).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    ctx
}

/// A freshly initialized token.
pub(crate) struct Fixture {
    pub(crate) path: PathBuf,
    pub(crate) label: String,
}

impl Fixture {
    pub(crate) fn module(&self) -> Pkcs11Module {
        Pkcs11Module::load(&self.path).unwrap()
    }

    pub(crate) fn open(&self) -> Pkcs11Token {
        Pkcs11Token::open(&self.module(), &self.label, Pin::new(USER_PIN)).unwrap()
    }

    pub(crate) fn raw(&self) -> Pkcs11 {
        raw(&self.path)
    }

    /// A session of the test's own, logged in as the user (already being
    /// logged in, through the backend's sessions, counts).
    pub(crate) fn user_session(&self) -> cryptoki::session::Session {
        let session = self.raw().open_rw_session(self.slot()).unwrap();
        match session.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => session,
            Err(e) => panic!("C_Login: {e}"),
        }
    }

    pub(crate) fn slot(&self) -> cryptoki::slot::Slot {
        let ctx = self.raw();
        ctx.get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == self.label)
            .unwrap()
    }
}

/// Initializes one token on the free slot (unique label, user PIN set).
pub(crate) fn init_token(ctx: &Pkcs11, label: &str) {
    let slot = ctx
        .get_all_slots()
        .unwrap()
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .is_ok_and(|info| !info.token_initialized())
        })
        .expect("SoftHSM2 always offers one uninitialized slot");
    ctx.init_token(slot, &AuthPin::new(SO_PIN.into()), label)
        .unwrap();
    // The token moves to another slot once initialized: find it by label.
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == label)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::new(SO_PIN.into())))
        .unwrap();
    session.init_pin(&AuthPin::new(USER_PIN.into())).unwrap();
    session.logout().unwrap();
}

/// The process-wide fixture: fresh tokens, all made before any test
/// touches the module (SoftHSM2's slot list is not safe to grow while
/// other threads list it), handed out one per test.
pub(crate) fn token_pool(path: &PathBuf) -> &'static Mutex<Vec<String>> {
    static POOL: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let ctx = raw(path);
        // Unique across runs sharing a token directory.
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
            % 1_000_000_000;
        let labels: Vec<String> = (0..super::TOKENS)
            .map(|n| format!("cu-{}-{run}-{n}", std::process::id()))
            .collect();
        for label in &labels {
            init_token(&ctx, label);
        }
        Mutex::new(labels)
    })
}

/// A fresh token of the fixture, or `None` if the tests are skipped.
pub(crate) fn fresh_token(test: &str) -> Option<Fixture> {
    let path = module_path(test)?;
    let label = token_pool(&path)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .pop()
        .expect("raise TOKENS: more tests than fixture tokens");
    Some(Fixture { path, label })
}
