//! [`TotpRegistry`]: enrolment and verification, with the replay guard and
//! lockout kept in the state store.
//!
//! See [`TotpRegistry`] for the records, the concurrency and the cost.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use custody_core::{
    AuditEvent, AuditOp, AuditOutcome, AuditSink, CasOutcome, ChildNumber, Denial, DerivationPath,
    Digest32, Envelope, IntentKind, OneTimeCode, SecretVec, SharedBackend, StateStore, Versioned,
    WalletScheme, WrappingBackend, fill_random,
};
use zeroize::Zeroizing;

use crate::cache::{Bounded, CachedSecret, DecodedEnrolment, NodeSlot};
use crate::guard::{Decision, Matches, decide};
use crate::otp::KeyedSecret;
use crate::record::{
    EnrolmentRecord, GuardState, SCHEME_KEY, decode_counter, decode_scheme, encode_counter,
    encode_scheme, node_key, secret_context, under_key,
};
use crate::{
    Clock, Error, MAX_WALLET_NAME_BYTES, OtpAuthUri, QrCode, SystemClock, TotpConfig, TotpParams,
};

/// How often a compare-and-swap is retried after conflicts before giving up
/// (each conflict means another writer made progress).
const MAX_CAS_ATTEMPTS: usize = 64;

/// The outcome of checking a code. Every refusal maps to a
/// [`custody_core::Denial`] with [`Verification::denial`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The code is valid for this fresh step, which is now spent.
    Accepted {
        /// The accepted time step.
        step: u64,
    },
    /// The wallet is not enrolled: there is nothing to check.
    NotEnrolled,
    /// The wallet is enrolled and no code was given.
    Required,
    /// The code is wrong (counted towards the lockout).
    Invalid,
    /// The code is valid only for a step at or before the last accepted
    /// one (refused, not counted).
    Replayed,
    /// The wallet is locked after repeated wrong codes; nothing was checked.
    Locked {
        /// When the lock ends (UNIX seconds).
        until_unix: u64,
    },
}

impl Verification {
    /// The refusal this outcome is, if it is one (`Accepted` and
    /// `NotEnrolled` are not).
    #[must_use]
    pub fn denial(&self) -> Option<Denial> {
        match self {
            Self::Accepted { .. } | Self::NotEnrolled => None,
            Self::Required => Some(Denial::TotpRequired),
            Self::Invalid => Some(Denial::TotpInvalid),
            Self::Replayed => Some(Denial::TotpReplayed),
            Self::Locked { until_unix } => Some(Denial::TotpLocked {
                until_unix: *until_unix,
            }),
        }
    }

    /// Whether the code was accepted.
    #[must_use]
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }
}

impl From<Decision> for Verification {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Accept(step) => Self::Accepted { step },
            Decision::Replayed => Self::Replayed,
            Decision::Invalid => Self::Invalid,
            Decision::Locked(until_unix) => Self::Locked { until_unix },
        }
    }
}

/// How [`TotpRegistry::enrol`] treats a wallet that is already enrolled.
#[non_exhaustive]
#[derive(Debug)]
pub enum EnrolMode {
    /// Enrol a wallet that is not enrolled; refuse ([`Error::AlreadyEnrolled`])
    /// if it is.
    New,
    /// Replace the secret of an enrolled wallet, proving possession of the
    /// current one with a fresh code (checked, and spent, like any other:
    /// a wrong code counts towards the lockout). Enrols a wallet that is not
    /// enrolled yet.
    Rotate(OneTimeCode),
    /// Replace the secret without a code: the administrative recovery for a
    /// lost device. Whoever can call this can take over the wallet's second
    /// factor; expose it only to operators. Audited as such.
    ForceRotate,
}

/// A completed enrolment: what to show the user, once.
pub struct Enrolment {
    node: DerivationPath,
    uri: OtpAuthUri,
}

impl Enrolment {
    /// The wallet name.
    #[must_use]
    pub fn wallet(&self) -> &str {
        self.uri.account()
    }

    /// The wallet's BIP32 node (everything at or under it is gated).
    #[must_use]
    pub fn node_path(&self) -> &DerivationPath {
        &self.node
    }

    /// Algorithm, digits and period.
    #[must_use]
    pub fn params(&self) -> TotpParams {
        self.uri.params()
    }

    /// The provisioning URI (with the secret) as a structure.
    #[must_use]
    pub fn uri(&self) -> &OtpAuthUri {
        &self.uri
    }

    /// The `otpauth://totp/…` text. Holds the secret.
    #[must_use]
    pub fn to_uri(&self) -> Zeroizing<String> {
        self.uri.to_uri()
    }

    /// The secret in base32, for manual entry. Key material.
    #[must_use]
    pub fn secret_base32(&self) -> Zeroizing<String> {
        self.uri.secret_base32()
    }

    /// The URI as a QR code, to draw on a terminal or as SVG.
    ///
    /// # Errors
    /// [`Error::QrTooLong`] for a URI too long for a QR code (wallet names
    /// of more than about 700 bytes).
    pub fn qr(&self) -> Result<QrCode, Error> {
        QrCode::encode(&self.to_uri())
    }
}

impl fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrolment")
            .field("wallet", &self.wallet())
            .field("node", &self.node)
            .field("params", &self.params())
            .finish_non_exhaustive()
    }
}

/// An enrolment record as read: its node (with the node's state-store
/// keys), the version it was read at, and its decoding.
pub(crate) struct Loaded {
    slot: Arc<NodeSlot>,
    version: u64,
    decoded: Arc<DecodedEnrolment>,
}

impl Loaded {
    pub(crate) fn node(&self) -> &DerivationPath {
        &self.slot.node
    }

    fn record(&self) -> &EnrolmentRecord {
        &self.decoded.record
    }
}

/// What a verification is for, for its audit record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attempt<'a> {
    /// `sign`, `export`, `verify` or `rotate`.
    pub(crate) route: &'static str,
    pub(crate) digest: Option<&'a Digest32>,
    pub(crate) intent: Option<IntentKind>,
    pub(crate) key_path: Option<&'a DerivationPath>,
    pub(crate) index: Option<u32>,
}

/// Whether [`TotpRegistry::check_recording`] records an accepted code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recording {
    /// Every attempt: accepted, refused or failed.
    Every,
    /// Refusals and failures only: the caller hands the acceptance up to an
    /// audit layer that records it with the signature.
    RefusalsOnly,
}

/// The version and state of a guard record as the store holds it (`None`:
/// no record yet, the default state).
fn guard_of(
    slot: &NodeSlot,
    record: Option<&Versioned>,
) -> Result<(Option<u64>, GuardState), Error> {
    match record {
        None => Ok((None, GuardState::default())),
        Some(v) => Ok((Some(v.version), slot.guard(Some(v.version), &v.value)?)),
    }
}

/// The `totp-verify` audit event of an attempt.
fn attempt_event(
    loaded: &Loaded,
    attempt: Attempt<'_>,
    outcome: AuditOutcome,
    detail: &'static str,
    step: u64,
) -> Result<AuditEvent, Error> {
    let mut event = AuditEvent::new(AuditOp::TOTP_VERIFY, outcome)
        .with_wallet(&loaded.record().wallet)
        .with_path(attempt.key_path.unwrap_or(loaded.node()))
        .with_detail(detail)
        .with_field("route", attempt.route)?
        .with_field("step", step.to_string())?;
    if let Some(digest) = attempt.digest {
        event = event.with_digest(digest);
    }
    if let Some(intent) = attempt.intent {
        event = event.with_field("intent", intent.as_str())?;
    }
    if let Some(index) = attempt.index {
        event = event.with_index(index);
    }
    Ok(event)
}

impl Attempt<'_> {
    const VERIFY: Attempt<'static> = Attempt {
        route: "verify",
        digest: None,
        intent: None,
        key_path: None,
        index: None,
    };
    const ROTATE: Attempt<'static> = Attempt {
        route: "rotate",
        ..Attempt::VERIFY
    };
}

/// Enrolment and verification of TOTP second factors, keyed by wallet,
/// with the replay guard and lockout kept in the state store.
///
/// # Records and the index
/// Each enrolled wallet has one record under its BIP32 *node* (the node the
/// configured [`WalletScheme`] maps its name to), holding the name, the
/// code parameters and the secret sealed in an [`Envelope`] (context:
/// `custody=totp-secret`, the wallet name and the parameters). Beside it, a
/// guard record holds the last accepted step, the wrong-code count and the
/// lock. For every strict ancestor of an enrolled node (`m` down to the
/// node's parent) a counter says how many enrolled nodes lie below it. So
/// "is this path at or under an enrolled node?" is one read (all nodes of a
/// scheme have the same depth), and "is this path an ancestor of one?" is
/// one read; nothing ever scans the wallets. See `SPEC.md`.
///
/// # Concurrency
/// Every write is a [`StateStore::compare_and_swap`]. A verification reads
/// the guard, decides, and swaps; on a conflict it re-reads and decides
/// again (without recomputing codes), so two threads or processes that
/// present the same code get exactly one acceptance. An enrolment raises the
/// ancestor counters *before* it creates the node record: a crash in
/// between leaves counters too high, which refuses more exports, never
/// fewer (fail closed).
///
/// # Cost of a verification
/// One read of the node record, one of the guard, one compare-and-swap of
/// the guard (when the state changes), one HMAC for a code of the current
/// step and `2·skew+1` for any other (two hash compressions each: the
/// secret is kept keyed into its HMAC), and for a
/// warm wallet nothing else: its state-store keys are computed once, and its
/// records are decoded and its secret unwrapped only when the bytes read
/// differ from those of the cached decoding (bounded caches, see
/// [`TotpConfig::node_cache`] and [`TotpConfig::secret_cache`]; the secret
/// in zeroizing memory). A secret-cache miss costs one unwrap by the KEK
/// backend; with a network KEK (KMS) that call blocks the calling thread.
pub struct TotpRegistry {
    kek: SharedBackend,
    state: Arc<dyn StateStore>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    config: TotpConfig,
    node_depth: usize,
    scheme_confirmed: AtomicBool,
    nodes: Bounded<DerivationPath, Arc<NodeSlot>>,
    secrets: Bounded<DerivationPath, Arc<CachedSecret>>,
}

fn check_wallet(wallet: &str) -> Result<(), Error> {
    if wallet.is_empty() {
        return Err(Error::InvalidWallet("the wallet name is empty"));
    }
    if wallet.len() > MAX_WALLET_NAME_BYTES {
        return Err(Error::InvalidWallet(
            "wallet names are at most 1024 bytes for TOTP enrolment",
        ));
    }
    Ok(())
}

/// The strict prefixes of `path`: `m` down to its parent.
fn strict_prefixes(path: &DerivationPath) -> Result<Vec<DerivationPath>, Error> {
    let c = path.components();
    (0..c.len())
        .map(|n| {
            DerivationPath::from_components(c.get(..n).unwrap_or_default().to_vec())
                .map_err(Error::from)
        })
        .collect()
}

impl TotpRegistry {
    /// A registry sealing secrets under `kek`'s wrapping capability,
    /// keeping records in `state` and recording every enrolment and check
    /// in `audit`. For the embedded keystore: `keystore.backend()`,
    /// `keystore.state()`, `keystore.audit()` and the keystore's scheme.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`TotpConfig::validate`];
    /// [`custody_core::Error::Unsupported`] if `kek` cannot wrap.
    pub fn new(
        kek: SharedBackend,
        state: Arc<dyn StateStore>,
        audit: Arc<dyn AuditSink>,
        config: TotpConfig,
    ) -> Result<Self, Error> {
        config.validate()?;
        if kek.wrapping().is_none() {
            return Err(Error::Core(custody_core::Error::Unsupported(
                "the TOTP registry needs a backend that wraps data keys",
            )));
        }
        let node_depth = config.scheme.wallet_path("depth")?.depth();
        Ok(Self {
            kek,
            state,
            audit,
            clock: Arc::new(SystemClock),
            nodes: Bounded::new(config.node_cache),
            secrets: Bounded::new(config.secret_cache),
            config,
            node_depth,
            scheme_confirmed: AtomicBool::new(false),
        })
    }

    /// Reads time from `clock` instead of the system clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &TotpConfig {
        &self.config
    }

    /// The clock.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The wallet scheme.
    #[must_use]
    pub fn scheme(&self) -> WalletScheme {
        self.config.scheme
    }

    /// The depth of every wallet node under the scheme (6 for `default`,
    /// 8 for `fortanix`).
    #[must_use]
    pub fn node_depth(&self) -> usize {
        self.node_depth
    }

    /// How many unwrapped secrets are cached now.
    #[must_use]
    pub fn cached_secrets(&self) -> usize {
        self.secrets.len()
    }

    /// How many wallet nodes' state-store keys and decoded records are
    /// cached now.
    #[must_use]
    pub fn cached_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// The audit sink.
    pub(crate) fn audit(&self) -> &Arc<dyn AuditSink> {
        &self.audit
    }

    fn wrapping(&self) -> Result<&dyn WrappingBackend, Error> {
        self.kek
            .wrapping()
            .ok_or(Error::Core(custody_core::Error::Unsupported(
                "the KEK backend no longer wraps",
            )))
    }

    /// Whether any enrolment may exist (the scheme record is there), and
    /// that it was made with our scheme.
    fn scheme_recorded(&self) -> Result<bool, Error> {
        if self.scheme_confirmed.load(Ordering::Acquire) {
            return Ok(true);
        }
        match self.state.get(SCHEME_KEY)? {
            None => Ok(false),
            Some(v) => {
                if decode_scheme(&v.value)? != self.config.scheme {
                    return Err(Error::SchemeMismatch);
                }
                self.scheme_confirmed.store(true, Ordering::Release);
                Ok(true)
            }
        }
    }

    /// Records our scheme before the first enrolment.
    fn record_scheme(&self) -> Result<(), Error> {
        if self.scheme_recorded()? {
            return Ok(());
        }
        let bytes = encode_scheme(self.config.scheme)?;
        match self.state.compare_and_swap(SCHEME_KEY, None, &bytes)? {
            CasOutcome::Swapped { .. } => {}
            CasOutcome::Conflict { current } => {
                let current = current.ok_or(Error::ConcurrentUpdate)?;
                if decode_scheme(&current.value)? != self.config.scheme {
                    return Err(Error::SchemeMismatch);
                }
            }
        }
        self.scheme_confirmed.store(true, Ordering::Release);
        Ok(())
    }

    /// The node `wallet` maps to.
    ///
    /// # Errors
    /// [`Error::InvalidWallet`] for an empty or too long name.
    pub fn node_path(&self, wallet: &str) -> Result<DerivationPath, Error> {
        check_wallet(wallet)?;
        Ok(self.config.scheme.wallet_path(wallet)?)
    }

    /// The slot of `node`: its state-store keys and cached decodings.
    fn slot(&self, node: &[ChildNumber]) -> Result<Arc<NodeSlot>, Error> {
        if let Some(slot) = self.nodes.get(node) {
            return Ok(slot);
        }
        let path = DerivationPath::from_components(node.to_vec())?;
        let slot = Arc::new(NodeSlot::new(path.clone()));
        self.nodes.insert(path, Arc::clone(&slot));
        Ok(slot)
    }

    /// The enrolment at `node`, if any: read from the state store on every
    /// call (decoded again only if its bytes changed).
    pub(crate) fn lookup(&self, node: &[ChildNumber]) -> Result<Option<Loaded>, Error> {
        if !self.scheme_recorded()? {
            return Ok(None);
        }
        let slot = self.slot(node)?;
        let Some(raw) = self.state.get(&slot.node_key)? else {
            return Ok(None);
        };
        let decoded = slot.enrolment(&raw.value, self.config.scheme)?;
        Ok(Some(Loaded {
            slot,
            version: raw.version,
            decoded,
        }))
    }

    /// Whether any enrolled node lies strictly below `path`.
    pub(crate) fn enrolled_below(&self, path: &DerivationPath) -> Result<bool, Error> {
        if path.depth() >= self.node_depth || !self.scheme_recorded()? {
            return Ok(false);
        }
        match self.state.get(&under_key(path))? {
            None => Ok(false),
            Some(v) => Ok(decode_counter(&v.value)? > 0),
        }
    }

    /// Whether `wallet` is enrolled.
    ///
    /// # Errors
    /// [`Error::InvalidWallet`]; state-store errors.
    pub fn is_enrolled(&self, wallet: &str) -> Result<bool, Error> {
        if wallet.len() > MAX_WALLET_NAME_BYTES {
            // Such a name cannot have been enrolled.
            return Ok(false);
        }
        let node = self.node_path(wallet)?;
        Ok(self.lookup(node.components())?.is_some())
    }

    /// Enrols `wallet` with a fresh secret from the OS RNG (see
    /// [`EnrolMode`] for an enrolled wallet). Returns what to show the user.
    ///
    /// # Errors
    /// [`Error::InvalidWallet`]; [`Error::AlreadyEnrolled`] for
    /// [`EnrolMode::New`] on an enrolled wallet; [`Error::Denied`] for
    /// [`EnrolMode::Rotate`] with a code that is not accepted;
    /// [`Error::ConcurrentUpdate`] if the record changed meanwhile;
    /// [`Error::SchemeMismatch`]; RNG, envelope, state-store and audit
    /// errors (after an audit error the enrolment is stored but its secret
    /// is not returned: rotate with [`EnrolMode::ForceRotate`]).
    pub fn enrol(&self, wallet: &str, mode: EnrolMode) -> Result<Enrolment, Error> {
        let mut secret = Zeroizing::new(vec![0u8; self.config.secret_bytes]);
        fill_random(&mut secret)?;
        let issuer = self.config.issuer.clone();
        let params = self.config.params;
        let node = self.install(wallet, mode, &secret, params, &issuer)?;
        let uri = OtpAuthUri::new(
            Some(&issuer),
            wallet,
            SecretVec::from_slice(&secret),
            params,
        )?;
        Ok(Enrolment { node, uri })
    }

    /// Enrols `wallet` with the secret and parameters of an otpauth URI
    /// (e.g. moving a wallet from another signer). The URI's account name
    /// is not used; its issuer is kept (the configured one if it has none).
    ///
    /// # Errors
    /// As [`TotpRegistry::enrol`].
    pub fn import(
        &self,
        wallet: &str,
        uri: &OtpAuthUri,
        mode: EnrolMode,
    ) -> Result<DerivationPath, Error> {
        let issuer = uri.issuer().unwrap_or(&self.config.issuer).to_owned();
        self.install(wallet, mode, uri.expose_secret(), uri.params(), &issuer)
    }

    fn install(
        &self,
        wallet: &str,
        mode: EnrolMode,
        secret: &[u8],
        params: TotpParams,
        issuer: &str,
    ) -> Result<DerivationPath, Error> {
        let node = self.node_path(wallet)?;
        self.record_scheme()?;
        let existing = self.lookup(node.components())?;
        let detail = match (&existing, &mode) {
            (None, _) => "enrolled",
            (Some(_), EnrolMode::New) => {
                self.audit_enrol(wallet, &node, AuditOutcome::Denied, "already-enrolled")?;
                return Err(Error::AlreadyEnrolled);
            }
            (Some(e), _) if e.record().wallet != wallet => {
                // Another name maps to this node (a 2^-124 event): theirs.
                self.audit_enrol(wallet, &node, AuditOutcome::Denied, "node-taken")?;
                return Err(Error::AlreadyEnrolled);
            }
            (Some(e), EnrolMode::Rotate(code)) => {
                let v = self.check(e, Some(code), Attempt::ROTATE)?;
                if let Some(denial) = v.denial() {
                    return Err(Error::Denied(denial));
                }
                "rotated"
            }
            (Some(_), _) => "force-rotated",
        };
        let record = EnrolmentRecord {
            wallet: wallet.to_owned(),
            issuer: issuer.to_owned(),
            params,
            node: node.clone(),
            envelope: Envelope::seal(
                self.wrapping()?,
                &self.wrapping()?.default_kek(),
                &secret_context(wallet, &params)?,
                secret,
            )
            .wait()?,
            enrolled_at: self.clock.now_unix(),
        };
        let bytes = record.encode()?;
        match existing {
            None => self.create(&node, &bytes)?,
            Some(e) => {
                match self
                    .state
                    .compare_and_swap(&e.slot.node_key, Some(e.version), &bytes)?
                {
                    CasOutcome::Swapped { .. } => {}
                    CasOutcome::Conflict { .. } => return Err(Error::ConcurrentUpdate),
                }
            }
        }
        self.audit_enrol(wallet, &node, AuditOutcome::Success, detail)?;
        Ok(node)
    }

    /// Creates a node record: ancestor counters first, then the record.
    fn create(&self, node: &DerivationPath, bytes: &[u8]) -> Result<(), Error> {
        let ancestors = strict_prefixes(node)?;
        for a in &ancestors {
            self.add_to_counter(a, 1)?;
        }
        match self.state.compare_and_swap(&node_key(node), None, bytes)? {
            CasOutcome::Swapped { .. } => Ok(()),
            CasOutcome::Conflict { .. } => {
                // Someone enrolled it first: take our counts back (if this
                // fails, the counters stay high: fail closed).
                for a in &ancestors {
                    self.add_to_counter(a, -1)?;
                }
                Err(Error::AlreadyEnrolled)
            }
        }
    }

    fn add_to_counter(&self, path: &DerivationPath, delta: i8) -> Result<(), Error> {
        let key = under_key(path);
        let mut current = self.state.get(&key)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let count = match &current {
                None => 0,
                Some(v) => decode_counter(&v.value)?,
            };
            let next = if delta >= 0 {
                count.saturating_add(delta.unsigned_abs().into())
            } else {
                count.saturating_sub(delta.unsigned_abs().into())
            };
            match self.state.compare_and_swap(
                &key,
                current.as_ref().map(|v| v.version),
                &encode_counter(next)?,
            )? {
                CasOutcome::Swapped { .. } => return Ok(()),
                CasOutcome::Conflict { current: c } => current = c,
            }
        }
        Err(Error::Contention)
    }

    fn audit_enrol(
        &self,
        wallet: &str,
        node: &DerivationPath,
        outcome: AuditOutcome,
        detail: &'static str,
    ) -> Result<(), Error> {
        self.audit.append(
            AuditEvent::new(AuditOp::ENROL, outcome)
                .with_wallet(wallet)
                .with_path(node)
                .with_detail(detail)
                .with_field("factor", "totp")?,
        )?;
        Ok(())
    }

    /// Checks `code` for `wallet` and, if it is accepted, spends it. Every
    /// call is audited (op `totp-verify`). A wallet that is not enrolled
    /// gives [`Verification::NotEnrolled`] (and no audit record).
    ///
    /// # Errors
    /// [`Error::InvalidWallet`]; [`Error::Contention`];
    /// [`Error::SchemeMismatch`]; state-store, envelope and audit errors.
    /// Any error means "not verified".
    pub fn verify(&self, wallet: &str, code: Option<&OneTimeCode>) -> Result<Verification, Error> {
        if wallet.len() > MAX_WALLET_NAME_BYTES {
            return Ok(Verification::NotEnrolled);
        }
        let node = self.node_path(wallet)?;
        match self.lookup(node.components())? {
            None => Ok(Verification::NotEnrolled),
            Some(loaded) => self.check(&loaded, code, Attempt::VERIFY),
        }
    }

    /// Checks a code against a loaded enrolment, commits the guard, and
    /// audits the attempt (an audit failure is returned as an error: the
    /// caller refuses).
    pub(crate) fn check(
        &self,
        loaded: &Loaded,
        code: Option<&OneTimeCode>,
        attempt: Attempt<'_>,
    ) -> Result<Verification, Error> {
        self.check_recording(loaded, code, attempt, Recording::Every)
    }

    /// [`Self::check`], recording an accepted code only if `recording` says
    /// so (refusals and errors are always recorded).
    pub(crate) fn check_recording(
        &self,
        loaded: &Loaded,
        code: Option<&OneTimeCode>,
        attempt: Attempt<'_>,
        recording: Recording,
    ) -> Result<Verification, Error> {
        let now = self.clock.now_unix();
        let result = self.decide_and_commit(loaded, code, now);
        let params = &loaded.record().params;
        let (outcome, detail, step) = match &result {
            Ok(Verification::Accepted { step }) => {
                if recording == Recording::RefusalsOnly {
                    return result;
                }
                (AuditOutcome::Success, "accepted", *step)
            }
            Ok(v) => (
                AuditOutcome::Denied,
                v.denial().map_or("not-enrolled", |d| d.kind()),
                params.step_at(now),
            ),
            Err(e) => (AuditOutcome::Failed, e.kind(), params.step_at(now)),
        };
        let mut event = attempt_event(loaded, attempt, outcome, detail, step)?;
        if let Ok(Verification::Locked { until_unix }) = &result {
            event = event.with_field("locked-until", until_unix.to_string())?;
        }
        self.audit.append(event)?;
        result
    }

    /// Records that a code was accepted (and spent) for `attempt` at `step`
    /// but no signature came out of it: the inner backend failed with
    /// `failure` (an [`custody_core::Error::kind`]). Used when the gate
    /// left the record of a success to the audit layer above it.
    pub(crate) fn record_spent_unused(
        &self,
        loaded: &Loaded,
        attempt: Attempt<'_>,
        step: u64,
        failure: &'static str,
    ) -> Result<(), Error> {
        let event = attempt_event(loaded, attempt, AuditOutcome::Success, "accepted", step)?
            .with_field("inner-error", failure)?;
        self.audit.append(event)?;
        Ok(())
    }

    fn decide_and_commit(
        &self,
        loaded: &Loaded,
        code: Option<&OneTimeCode>,
        now: u64,
    ) -> Result<Verification, Error> {
        let Some(code) = code else {
            return Ok(Verification::Required);
        };
        let slot = &loaded.slot;
        // Optimistic: start from the guard as this process last read or
        // wrote it. Every write is a compare-and-swap on that version, so a
        // stale start costs a conflict (which hands back the current
        // record), never a wrong acceptance; a refusal that writes nothing
        // (locked, replayed) is only given on a freshly read guard. An
        // accepted code on a warm node therefore costs one store operation.
        let (mut version, mut state, mut fresh) = match slot.known_guard() {
            Some((version, state)) => (version, state, false),
            None => {
                let (version, state) = self.read_guard(slot)?;
                (version, state, true)
            }
        };
        let mut matches: Option<Matches> = None;
        for _ in 0..MAX_CAS_ATTEMPTS {
            if now < state.locked_until {
                if fresh {
                    // Locked: not even checked.
                    return Ok(Verification::Locked {
                        until_unix: state.locked_until,
                    });
                }
                (version, state) = self.read_guard(slot)?;
                fresh = true;
                continue;
            }
            let m = match &mut matches {
                Some(m) => &*m,
                None => {
                    let secret = self.secret(loaded)?;
                    let computed = Matches::compute(
                        &secret.key,
                        &loaded.record().params,
                        code.expose_secret().as_bytes(),
                        now,
                        self.config.skew_steps,
                    )?;
                    drop(secret);
                    &*matches.insert(computed)
                }
            };
            let (decision, next) = decide(&state, now, m, &self.config.lockout);
            let Some(next) = next else {
                if fresh {
                    return Ok(decision.into());
                }
                (version, state) = self.read_guard(slot)?;
                fresh = true;
                continue;
            };
            let bytes = next.encode()?;
            match self
                .state
                .compare_and_swap(&slot.guard_key, version, &bytes)?
            {
                CasOutcome::Swapped { version } => {
                    slot.wrote_guard(version, bytes, next);
                    return Ok(decision.into());
                }
                CasOutcome::Conflict { current } => {
                    (version, state) = guard_of(slot, current.as_ref())?;
                    fresh = true;
                }
            }
        }
        Err(Error::Contention)
    }

    /// Reads the guard of `slot` from the state store (its version, and its
    /// state: the default if there is no record yet).
    fn read_guard(&self, slot: &NodeSlot) -> Result<(Option<u64>, GuardState), Error> {
        guard_of(slot, self.state.get(&slot.guard_key)?.as_ref())
    }

    /// The unwrapped secret of an enrolment (keyed into its HMAC), from
    /// the cache if it was unwrapped from exactly this record, else from
    /// the KEK.
    fn secret(&self, loaded: &Loaded) -> Result<Arc<CachedSecret>, Error> {
        let node = loaded.node();
        if let Some(cached) = self.secrets.get(node) {
            if cached.is_for(&loaded.decoded) {
                return Ok(cached);
            }
            // The record changed (rotated, rewritten): the old secret goes
            // now, not when it is evicted.
            self.secrets.remove(node);
        }
        let record = loaded.record();
        let secret = record
            .envelope
            .open(self.wrapping()?, &record.context()?)
            .wait()?;
        let cached = Arc::new(CachedSecret {
            from: Arc::clone(&loaded.decoded),
            key: KeyedSecret::new(secret.expose_secret(), record.params.algorithm)?,
        });
        drop(secret);
        self.secrets.insert(node.clone(), Arc::clone(&cached));
        Ok(cached)
    }
}

impl fmt::Debug for TotpRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpRegistry")
            .field("kek", &self.kek)
            .field("state", &self.state)
            .field("clock", &self.clock)
            .field("config", &self.config)
            .field("cached_nodes", &self.nodes.len())
            .field("cached_secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}
