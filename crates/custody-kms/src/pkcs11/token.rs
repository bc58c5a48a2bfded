//! [`Pkcs11Token`]: a token found by label, with a bounded pool of logged-in
//! sessions that recovers once when the token drops them.

use std::fmt;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;

use super::error::{Fault, Pkcs11Error, ReturnCode, error_of, fault_of};
use super::module::Pkcs11Module;
use super::pin::Pin;
use super::uri::Pkcs11Uri;

/// How many sessions a token opens at most unless told otherwise.
const DEFAULT_MAX_SESSIONS: NonZeroUsize = match NonZeroUsize::new(8) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};
/// How long a caller waits for a free session before giving up.
const SESSION_WAIT: Duration = Duration::from_secs(30);

/// What a token handle has done so far: for monitoring, and for the tests
/// that prove keys are looked up once, not per signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TokenCounters {
    /// Object searches (`C_FindObjectsInit` … `C_FindObjectsFinal`).
    pub object_searches: u64,
    /// Sessions opened (`C_OpenSession`).
    pub sessions_opened: u64,
    /// Logins attempted (`C_Login`; none when the token already had the
    /// user logged in).
    pub logins: u64,
    /// Recoveries: a session found dropped, re-opened and logged in again,
    /// and the call retried.
    pub recoveries: u64,
}

/// A token of a [`Pkcs11Module`], found by label across the module's slots,
/// with a bounded pool of R/W user sessions. Cheap to clone (clones share
/// the pool); a [`crate::Pkcs11Signer`] and a [`crate::Pkcs11Kek`] can share
/// one.
///
/// - Sessions are opened on demand up to a bound (8 by default); each serves
///   one caller at a time (a PKCS#11 session is not safe for concurrent
///   use) and goes back to the pool after the call. A caller that finds all
///   of them busy waits up to 30 s for one.
/// - The user is logged in once: a session that opens already in the user
///   state is not logged in again, and `CKR_USER_ALREADY_LOGGED_IN` counts as
///   success.
/// - A PIN the token refuses (`CKR_PIN_INCORRECT`, `CKR_PIN_LOCKED`, ...) is
///   never tried again by this handle: every later call fails at once with
///   the same `access-denied` error, so retries cannot lock the token.
/// - When a call finds its session dropped (`CKR_SESSION_HANDLE_INVALID`,
///   `CKR_SESSION_CLOSED`, `CKR_USER_NOT_LOGGED_IN`, `CKR_DEVICE_REMOVED`,
///   `CKR_DEVICE_ERROR`, `CKR_TOKEN_NOT_PRESENT`,
///   `CKR_CRYPTOKI_NOT_INITIALIZED`, ...) or an object handle stale, the idle
///   sessions are discarded, the module re-initialized if it was finalized,
///   the token found again by label, a session re-opened and logged in, the
///   objects looked up again, and the call retried **once**; a second
///   failure is `unavailable`.
///
/// `Debug` shows the token label and module path; never the PIN.
#[derive(Clone)]
pub struct Pkcs11Token {
    inner: Arc<Inner>,
}

struct Selector {
    label: String,
    serial: Option<String>,
    manufacturer: Option<String>,
    model: Option<String>,
}

struct Pooled {
    session: Session,
    generation: u64,
}

struct Pool {
    idle: Vec<Pooled>,
    open: usize,
}

struct Inner {
    module: Pkcs11Module,
    selector: Selector,
    pin: Pin,
    slot: Mutex<Slot>,
    pool: Mutex<Pool>,
    freed: Condvar,
    max_sessions: usize,
    pin_refused: Mutex<Option<ReturnCode>>,
    /// Bumped on every recovery: object handles cached before it are looked
    /// up again before use.
    epoch: AtomicU64,
    /// Serializes recoveries: one thread at a time re-initializes the
    /// module and finds the slot again (both idempotent), so no thread
    /// retries on a module another is still re-initializing.
    recovering: Mutex<()>,
    object_searches: AtomicU64,
    sessions_opened: AtomicU64,
    logins: AtomicU64,
    recoveries: AtomicU64,
}

/// Why an operation run through the pool failed.
#[derive(Debug)]
pub(crate) enum OpError {
    /// A PKCS#11 call failed (classified by the pool: retried if the
    /// session was lost, else mapped to a [`Pkcs11Error`]).
    Ck(CkError),
    /// A typed failure, not retried.
    Typed(Pkcs11Error),
    /// A core failure (decryption failed, key mismatch), not retried.
    Core(custody_core::Error),
}

impl From<CkError> for OpError {
    fn from(e: CkError) -> Self {
        Self::Ck(e)
    }
}

impl From<Pkcs11Error> for OpError {
    fn from(e: Pkcs11Error) -> Self {
        Self::Typed(e)
    }
}

/// Why no session could be had.
enum Acquire {
    /// Opening or logging in failed as if the session were dropped (module
    /// finalized, token removed): worth the one recovery.
    Lost(CkError),
    /// Anything else (PIN refused, pool busy): final.
    Failed(Pkcs11Error),
}

/// Whether a failure means the session (or an object handle) is gone.
fn is_lost(e: &CkError) -> bool {
    matches!(fault_of(e), Fault::SessionLost | Fault::StaleHandle)
}

/// The outcome of a failed [`Pkcs11Token::run`].
#[derive(Debug)]
pub(crate) enum RunError {
    Typed(Pkcs11Error),
    Core(custody_core::Error),
}

impl RunError {
    pub(crate) fn into_core(self, not_found: custody_core::Error) -> custody_core::Error {
        match self {
            Self::Typed(e) => e.into_core(not_found),
            Self::Core(e) => e,
        }
    }
}

impl From<Pkcs11Error> for RunError {
    fn from(e: Pkcs11Error) -> Self {
        Self::Typed(e)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pkcs11Token {
    /// The token labelled `label` on `module`, logged in with `pin`, with
    /// at most 8 sessions. One session is opened and logged in here, so a
    /// wrong PIN or a missing token fails now rather than at the first
    /// signature.
    ///
    /// # Errors
    /// `not-found` if no token carries that label; `bad-input` if two do;
    /// `access-denied` if the token refuses the PIN; `unavailable` or
    /// `backend` for other failures ([`Pkcs11Error`]).
    pub fn open(module: &Pkcs11Module, label: &str, pin: Pin) -> Result<Self, Pkcs11Error> {
        Self::open_with(module, label, pin, DEFAULT_MAX_SESSIONS)
    }

    /// As [`Pkcs11Token::open`], with at most `max_sessions` sessions.
    ///
    /// # Errors
    /// As [`Pkcs11Token::open`].
    pub fn open_with(
        module: &Pkcs11Module,
        label: &str,
        pin: Pin,
        max_sessions: NonZeroUsize,
    ) -> Result<Self, Pkcs11Error> {
        Self::open_selected(
            module,
            Selector {
                label: label.to_owned(),
                serial: None,
                manufacturer: None,
                model: None,
            },
            pin,
            max_sessions,
        )
    }

    /// The token a `pkcs11:` URI names (`token=`, and `serial=`,
    /// `manufacturer=`, `model=` if given), on the module of its
    /// `module-path=` or else `default_module`, logged in with the PIN of
    /// its `pin-source=` or else `pin`. (A URI's own attributes win: they
    /// are the more specific.) [`crate::BackendConfig::from_env`] passes
    /// `CUSTODY_PKCS11_MODULE` and `CUSTODY_PKCS11_PIN` as the defaults;
    /// this function reads no environment.
    ///
    /// # Errors
    /// `bad-input` if the URI names no token, no module is given either way,
    /// no PIN is given either way, or the PIN file cannot be read; else as
    /// [`Pkcs11Module::load`] and [`Pkcs11Token::open`].
    pub fn open_uri(
        uri: &Pkcs11Uri,
        default_module: Option<&Path>,
        pin: Option<Pin>,
    ) -> Result<Self, Pkcs11Error> {
        let label = uri.token().ok_or_else(|| {
            Pkcs11Error::bad_input("the pkcs11: URI names no token (token=LABEL)")
        })?;
        let module_path = uri.module_path().or(default_module).ok_or_else(|| {
            Pkcs11Error::bad_input(
                "no PKCS#11 module: give module-path= in the URI or a module path",
            )
        })?;
        let pin = match uri.pin_source() {
            Some(file) => Pin::from_file(file)?,
            None => pin.ok_or_else(|| {
                Pkcs11Error::bad_input("no PIN: give pin-source=file: in the URI or a PIN")
            })?,
        };
        let module = Pkcs11Module::load(module_path)?;
        Self::open_selected(
            &module,
            Selector {
                label: label.to_owned(),
                serial: uri.serial().map(str::to_owned),
                manufacturer: uri.manufacturer().map(str::to_owned),
                model: uri.model().map(str::to_owned),
            },
            pin,
            DEFAULT_MAX_SESSIONS,
        )
    }

    fn open_selected(
        module: &Pkcs11Module,
        selector: Selector,
        pin: Pin,
        max_sessions: NonZeroUsize,
    ) -> Result<Self, Pkcs11Error> {
        let slot = find_slot(module, &selector)?;
        let token = Self {
            inner: Arc::new(Inner {
                module: module.clone(),
                selector,
                pin,
                slot: Mutex::new(slot),
                pool: Mutex::new(Pool {
                    idle: Vec::new(),
                    open: 0,
                }),
                freed: Condvar::new(),
                max_sessions: max_sessions.get(),
                pin_refused: Mutex::new(None),
                epoch: AtomicU64::new(0),
                recovering: Mutex::new(()),
                object_searches: AtomicU64::new(0),
                sessions_opened: AtomicU64::new(0),
                logins: AtomicU64::new(0),
                recoveries: AtomicU64::new(0),
            }),
        };
        // Fail now on a wrong PIN; the session stays in the pool.
        let first = token.acquire().map_err(|a| token.acquire_error(a))?;
        token.release(first);
        Ok(token)
    }

    /// The token label.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.inner.selector.label
    }

    /// The module.
    #[must_use]
    pub fn module(&self) -> &Pkcs11Module {
        &self.inner.module
    }

    /// What this token handle has done so far.
    #[must_use]
    pub fn counters(&self) -> TokenCounters {
        let i = &self.inner;
        TokenCounters {
            object_searches: i.object_searches.load(Ordering::Relaxed),
            sessions_opened: i.sessions_opened.load(Ordering::Relaxed),
            logins: i.logins.load(Ordering::Relaxed),
            recoveries: i.recoveries.load(Ordering::Relaxed),
        }
    }

    /// The current recovery epoch: object handles cached in an older epoch
    /// must be looked up again.
    pub(crate) fn epoch(&self) -> u64 {
        self.inner.epoch.load(Ordering::SeqCst)
    }

    /// `C_FindObjects` with `template`, counted.
    pub(crate) fn find(
        &self,
        session: &Session,
        template: &[Attribute],
    ) -> Result<Vec<ObjectHandle>, CkError> {
        self.inner.object_searches.fetch_add(1, Ordering::Relaxed);
        session.find_objects(template)
    }

    /// The slot the token is in now.
    pub(crate) fn slot(&self) -> Slot {
        *lock(&self.inner.slot)
    }

    /// Runs `f` on a pooled session. If the session turns out dropped (or
    /// an object handle stale), recovers (see the type's docs) and runs `f`
    /// once more on a fresh session; `f` gets the recovery epoch so it can
    /// look its objects up again.
    pub(crate) fn run<T>(
        &self,
        operation: &'static str,
        name: &str,
        mut f: impl FnMut(&Session, u64) -> Result<T, OpError>,
    ) -> Result<T, RunError> {
        let mut retried = false;
        loop {
            let pooled = match self.acquire() {
                Ok(p) => p,
                // No session could even be opened (module finalized, token
                // gone): that is the one recovery too.
                Err(Acquire::Lost(ck)) if !retried => {
                    retried = true;
                    self.recover(&ck)?;
                    continue;
                }
                Err(a) => return Err(RunError::Typed(self.acquire_error(a))),
            };
            match f(&pooled.session, self.epoch()) {
                Ok(v) => {
                    self.release(pooled);
                    return Ok(v);
                }
                Err(OpError::Ck(ck)) if !retried && is_lost(&ck) => {
                    self.discard(pooled);
                    retried = true;
                    self.recover(&ck)?;
                }
                Err(e) => {
                    self.settle(pooled, &e);
                    return Err(self.finish(e, operation, name));
                }
            }
        }
    }

    /// After a failed call: a session the token dropped, or one left with
    /// an operation active, is closed; any other goes back to the pool (a
    /// failed single-part call ends its operation). Keeping it matters:
    /// closing the application's last session logs the user out of the
    /// token.
    fn settle(&self, p: Pooled, e: &OpError) {
        let broken = matches!(e, OpError::Ck(ck)
            if is_lost(ck) || matches!(ck, CkError::Pkcs11(RvError::OperationActive, _)));
        if broken {
            self.discard(p);
        } else {
            self.release(p);
        }
    }

    fn finish(&self, e: OpError, operation: &'static str, name: &str) -> RunError {
        match e {
            OpError::Ck(ck) => RunError::Typed(error_of(&ck, operation, self.label(), name)),
            OpError::Typed(t) => RunError::Typed(t),
            OpError::Core(c) => RunError::Core(c),
        }
    }

    /// After a dropped session: forget the idle sessions, re-initialize a
    /// finalized module, find the token's slot again, and move to a new
    /// epoch so objects are looked up again.
    fn recover(&self, err: &CkError) -> Result<(), Pkcs11Error> {
        let i = &self.inner;
        i.recoveries.fetch_add(1, Ordering::Relaxed);
        i.epoch.fetch_add(1, Ordering::SeqCst);
        let _one_at_a_time = lock(&i.recovering);
        let drained: Vec<Pooled> = {
            let mut pool = lock(&i.pool);
            let d: Vec<Pooled> = pool.idle.drain(..).collect();
            pool.open = pool.open.saturating_sub(d.len());
            d
        };
        i.freed.notify_all();
        let result = self.reattach(err);
        for p in drained {
            self.close(p);
        }
        result
    }

    /// Re-initializes the module if it was finalized and finds the token's
    /// slot again (both idempotent).
    fn reattach(&self, err: &CkError) -> Result<(), Pkcs11Error> {
        let i = &self.inner;
        // A no-op (CKR_CRYPTOKI_ALREADY_INITIALIZED) unless another
        // component of the process finalized the module.
        i.module
            .reinitialize()
            .map_err(|e| Pkcs11Error::Unavailable {
                token: self.label().to_owned(),
                operation: "C_Initialize",
                code: ReturnCode::of(&e),
                reason: "the module was finalized and cannot be initialized again",
            })?;
        let slot = find_slot(&i.module, &i.selector).map_err(|e| match e {
            Pkcs11Error::NotFound { .. } => Pkcs11Error::Unavailable {
                token: self.label().to_owned(),
                operation: "C_GetSlotList",
                code: ReturnCode::of(err),
                reason: "the token is no longer present in any slot",
            },
            other => other,
        })?;
        *lock(&i.slot) = slot;
        Ok(())
    }

    /// A session from the pool, or a newly opened and logged-in one.
    fn acquire(&self) -> Result<Pooled, Acquire> {
        let i = &self.inner;
        let deadline = Instant::now() + SESSION_WAIT;
        let mut pool = lock(&i.pool);
        loop {
            if let Some(p) = pool.idle.pop() {
                return Ok(p);
            }
            if pool.open < i.max_sessions {
                pool.open += 1;
                drop(pool);
                return self.open_session().inspect_err(|_| {
                    let mut pool = lock(&i.pool);
                    pool.open = pool.open.saturating_sub(1);
                    drop(pool);
                    i.freed.notify_one();
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Acquire::Failed(Pkcs11Error::Unavailable {
                    token: self.label().to_owned(),
                    operation: "C_OpenSession",
                    code: ReturnCode::default(),
                    reason: "every session of the pool stayed busy for 30 s",
                }));
            }
            pool = i
                .freed
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The error a caller sees when no session could be had.
    fn acquire_error(&self, a: Acquire) -> Pkcs11Error {
        match a {
            Acquire::Lost(ck) => error_of(&ck, "C_OpenSession", self.label(), self.label()),
            Acquire::Failed(e) => e,
        }
    }

    fn open_session(&self) -> Result<Pooled, Acquire> {
        let i = &self.inner;
        if let Some(code) = *lock(&i.pin_refused) {
            return Err(Acquire::Failed(Pkcs11Error::AccessDenied {
                token: self.label().to_owned(),
                code,
                advice: "the token refused this PIN before; it is not tried again (so that the token does not lock): fix the PIN and open the token again",
            }));
        }
        let generation = i.module.generation();
        let session = i
            .module
            .ctx()
            .open_rw_session_no_drop(self.slot())
            .map_err(|e| {
                if is_lost(&e) {
                    Acquire::Lost(e)
                } else {
                    Acquire::Failed(error_of(&e, "C_OpenSession", self.label(), self.label()))
                }
            })?;
        i.sessions_opened.fetch_add(1, Ordering::Relaxed);
        let pooled = Pooled {
            session,
            generation,
        };
        let logged_in = pooled
            .session
            .get_session_info()
            .is_ok_and(|info| info.session_state() == SessionState::RwUser);
        if logged_in {
            return Ok(pooled);
        }
        i.logins.fetch_add(1, Ordering::Relaxed);
        let auth = i.pin.to_auth_pin();
        match pooled.session.login(UserType::User, Some(&auth)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(pooled),
            Err(e) if is_lost(&e) => {
                self.close(pooled);
                Err(Acquire::Lost(e))
            }
            Err(e) => {
                let err = error_of(&e, "C_Login", self.label(), self.label());
                if let Pkcs11Error::AccessDenied { code, .. } = &err {
                    *lock(&i.pin_refused) = Some(*code);
                }
                self.close(pooled);
                Err(Acquire::Failed(err))
            }
        }
    }

    /// Puts a session back for the next caller.
    fn release(&self, p: Pooled) {
        lock(&self.inner.pool).idle.push(p);
        self.inner.freed.notify_one();
    }

    /// Drops a session that failed a call (it may be dead, or hold an
    /// unfinished operation).
    fn discard(&self, p: Pooled) {
        {
            let mut pool = lock(&self.inner.pool);
            pool.open = pool.open.saturating_sub(1);
        }
        self.inner.freed.notify_one();
        self.close(p);
    }

    /// `C_CloseSession`, unless the module was re-initialized since the
    /// session was opened (its handle may now be someone else's session).
    fn close(&self, p: Pooled) {
        if p.generation == self.inner.module.generation() {
            // A session the token already dropped fails to close: nothing
            // more to do about it.
            let _closed = p.session.close();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let generation = self.module.generation();
        let pool = self.pool.get_mut().unwrap_or_else(PoisonError::into_inner);
        for p in pool.idle.drain(..) {
            if p.generation == generation {
                let _closed = p.session.close();
            }
        }
    }
}

/// The slot holding the token `selector` names, searched across every slot
/// with a token (its slot number is not stable: SoftHSM2 moves a token to a
/// random slot when it is initialized).
fn find_slot(module: &Pkcs11Module, selector: &Selector) -> Result<Slot, Pkcs11Error> {
    let slots = module
        .ctx()
        .get_slots_with_token()
        .map_err(|e| error_of(&e, "C_GetSlotList", &selector.label, &selector.label))?;
    let mut found = None;
    for slot in slots {
        let Ok(info) = module.ctx().get_token_info(slot) else {
            continue; // removed between the two calls
        };
        let matches = info.label().trim_end() == selector.label
            && selector
                .serial
                .as_deref()
                .is_none_or(|s| info.serial_number().trim_end() == s)
            && selector
                .manufacturer
                .as_deref()
                .is_none_or(|m| info.manufacturer_id().trim_end() == m)
            && selector
                .model
                .as_deref()
                .is_none_or(|m| info.model().trim_end() == m);
        if matches {
            if found.is_some() {
                return Err(Pkcs11Error::bad_input(
                    "two tokens carry this label: name the token by serial= too",
                ));
            }
            found = Some(slot);
        }
    }
    found.ok_or_else(|| Pkcs11Error::NotFound {
        what: "token",
        name: selector.label.clone(),
        advice: "check the token label (pkcs11-tool --list-slots) and the module path",
    })
}

impl fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("label", &self.inner.selector.label)
            .field("module", &self.inner.module.path())
            .finish_non_exhaustive()
    }
}
