//! [`TotpRegistry`]: enrolment and verification of wallets and non-HD keys,
//! with the replay guard and lockout kept in the state store.
//!
//! See [`TotpRegistry`] for the records, the concurrency and the cost.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use custody_core::{
    AnyPublicKey, AuditEvent, AuditOp, AuditOutcome, AuditSink, CasOutcome, ChildNumber,
    DeferredWrite, Denial, DerivationPath, Digest32, Envelope, IntentKind, OneTimeCode, Pending,
    PublicKey, RecordedSwaps, SecretVec, SharedBackend, StateStore, Swap, Versioned, WalletScheme,
    WrappingBackend, fill_random,
};
use zeroize::Zeroizing;

use crate::cache::{Bounded, CachedSecret, DecodedEnrolment, Slot};
use crate::guard::{Decision, Matches, decide};
use crate::otp::KeyedSecret;
use crate::record::{
    EnrolmentRecord, GuardState, SCHEME_KEY, decode_counter, decode_scheme, encode_counter,
    encode_scheme, secret_context, subject_keys, under_key,
};
use crate::{
    Clock, Error, MAX_WALLET_NAME_BYTES, OtpAuthUri, QrCode, Subject, SystemClock, TotpConfig,
    TotpParams,
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
    /// The wallet (or key) is not enrolled: there is nothing to check.
    NotEnrolled,
    /// The wallet (or key) is enrolled and no code was given.
    Required,
    /// The code is wrong (counted towards the lockout).
    Invalid,
    /// The code is valid only for a step at or before the last accepted
    /// one (refused, not counted).
    Replayed,
    /// The wallet (or key) is locked after repeated wrong codes; nothing
    /// was checked.
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

/// How [`TotpRegistry::enrol`] (and [`TotpRegistry::enrol_key`]) treats a
/// wallet (a key) that is already enrolled.
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
///
/// Its [`Subject`] says what it gates: a wallet's node
/// ([`TotpRegistry::enrol`]) or a non-HD key ([`TotpRegistry::enrol_key`]).
/// The URI's account name is the wallet name or the key's label. `Debug`
/// shows the subject, the label and the parameters, never the secret.
pub struct Enrolment {
    subject: Subject,
    uri: OtpAuthUri,
}

impl Enrolment {
    /// What this enrolment gates: a wallet's node or a key.
    #[must_use]
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The account name authenticator apps show: the wallet name, or the
    /// key's label.
    #[must_use]
    pub fn label(&self) -> &str {
        self.uri.account()
    }

    /// The wallet name, for a wallet's enrolment.
    #[must_use]
    pub fn wallet(&self) -> Option<&str> {
        self.subject.node().map(|_| self.uri.account())
    }

    /// The wallet's BIP32 node (everything at or under it is gated), for a
    /// wallet's enrolment.
    #[must_use]
    pub fn node_path(&self) -> Option<&DerivationPath> {
        self.subject.node()
    }

    /// The key's public key, for a key's enrolment.
    #[must_use]
    pub fn public_key(&self) -> Option<&PublicKey> {
        self.subject.public_key()
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
    /// or labels of more than about 700 bytes).
    pub fn qr(&self) -> Result<QrCode, Error> {
        QrCode::encode(&self.to_uri())
    }
}

impl fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrolment")
            .field("subject", &self.subject)
            .field("label", &self.label())
            .field("params", &self.params())
            .finish_non_exhaustive()
    }
}

/// An enrolment record as read: its subject (with the subject's
/// state-store keys), the version it was read at, and its decoding.
pub(crate) struct Loaded {
    slot: Arc<Slot>,
    version: u64,
    decoded: Arc<DecodedEnrolment>,
    /// The guard as read with the enrolment, for a check that must decide
    /// on a fresh one ([`Fetch::AndGuard`]).
    guard: Option<(Option<u64>, GuardState)>,
    /// Whether the enrolment and guard are this process's warm records
    /// ([`crate::cache::Warm`]), not read for this request.
    optimistic: bool,
    /// Whether the guard, read for this request, had moved on from where
    /// this process last read or wrote it: another writer (a replica that
    /// a queue spreads this subject's requests to) signs for the subject
    /// too. An acceptance decided on it then leaves no warm records: the
    /// next one would find them stale, and a commit that conflicts costs
    /// more than the read it saves. The first read that finds the guard
    /// where this process left it makes the subject warm again.
    contended: bool,
}

/// What a lookup reads besides the enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fetch {
    /// The enrolment alone.
    Enrolment,
    /// The enrolment and, in the same read (one round trip to a remote
    /// store: [`StateStore::get_many`]), its guard: for a check that
    /// defers its guard write and so decides on a fresh guard.
    AndGuard,
}

impl Loaded {
    /// What the enrolment gates.
    pub(crate) fn subject(&self) -> &Subject {
        &self.slot.subject
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
    /// The id of a stored key (`KeyRef::Stored`), when the request names one.
    pub(crate) key_id: Option<&'a str>,
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
fn guard_of(slot: &Slot, record: Option<&Versioned>) -> Result<(Option<u64>, GuardState), Error> {
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
    let mut event = match loaded.subject() {
        Subject::Node(node) => AuditEvent::new(AuditOp::TOTP_VERIFY, outcome)
            .with_wallet(&loaded.record().name)
            .with_path(attempt.key_path.unwrap_or(node)),
        Subject::Key(key) => {
            let mut event = AuditEvent::new(AuditOp::TOTP_VERIFY, outcome).with_public_key(key);
            if let Some(path) = attempt.key_path {
                event = event.with_path(path);
            }
            event
        }
        Subject::OtherKey(key) => AuditEvent::new(AuditOp::TOTP_VERIFY, outcome)
            .with_field("public-key", hex::encode(key.to_bytes()))?
            .with_field("algorithm", key.algorithm().as_str())?,
    };
    if let Some(id) = attempt.key_id {
        event = event.with_key(id);
    }
    event = event
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
        key_id: None,
        index: None,
    };
    const ROTATE: Attempt<'static> = Attempt {
        route: "rotate",
        ..Attempt::VERIFY
    };
}

/// Enrolment and verification of TOTP second factors, keyed by wallet (or
/// by public key, for keys that are not HD-derived), with the replay guard
/// and lockout kept in the state store.
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
/// # Keys that are not HD-derived
/// An imported key, or a key in a KMS or an HSM, has no BIP32 path; it is
/// enrolled by its public key ([`TotpRegistry::enrol_key`]), the one name
/// it has whatever id, ARN or alias a request uses. Its record lives under
/// the hash of its compressed public key, with a guard beside it, and its
/// secret's envelope binds that public key instead of a wallet name. It is
/// gated by [`crate::TotpGate`] wherever it is pinned without a path, with
/// the same codes, guard, lockout, audit records and caches as a wallet.
/// (An HD-derived key is gated through its wallet, never by public key.)
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
/// One read of the node (or key) record, one of the guard, one
/// compare-and-swap of the guard (when the state changes), one HMAC for a
/// code of the current step and `2·skew+1` for any other (two hash
/// compressions each: the secret is kept keyed into its HMAC), and for a
/// warm wallet or key nothing else: its state-store keys are computed
/// once, and its records are decoded and its secret unwrapped only when
/// the bytes read differ from those of the cached decoding (bounded
/// caches, see [`TotpConfig::node_cache`] and
/// [`TotpConfig::secret_cache`]; the secret in zeroizing memory). A secret-cache miss costs one unwrap by the KEK
/// backend; with a network KEK (KMS) that call blocks the calling thread.
pub struct TotpRegistry {
    kek: SharedBackend,
    state: Arc<dyn StateStore>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    config: TotpConfig,
    node_depth: usize,
    scheme_confirmed: AtomicBool,
    nodes: Bounded<DerivationPath, Arc<Slot>>,
    /// Key subjects' slots, by compressed public key.
    keys: Bounded<[u8; 33], Arc<Slot>>,
    secrets: Bounded<Subject, Arc<CachedSecret>>,
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

fn check_label(label: &str) -> Result<(), Error> {
    if label.is_empty() {
        return Err(Error::InvalidLabel("the label is empty"));
    }
    if label.len() > MAX_WALLET_NAME_BYTES {
        return Err(Error::InvalidLabel(
            "labels are at most 1024 bytes for TOTP enrolment",
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
            keys: Bounded::new(config.node_cache),
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

    /// How many non-HD keys' state-store keys and decoded records are
    /// cached now (bounded by [`TotpConfig::node_cache`] too, separately).
    #[must_use]
    pub fn cached_keys(&self) -> usize {
        self.keys.len()
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
    async fn scheme_recorded(&self) -> Result<bool, Error> {
        if self.scheme_confirmed.load(Ordering::Acquire) {
            return Ok(true);
        }
        match self.state.get(SCHEME_KEY).await? {
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
    async fn record_scheme(&self) -> Result<(), Error> {
        if self.scheme_recorded().await? {
            return Ok(());
        }
        let bytes = encode_scheme(self.config.scheme)?;
        match self
            .state
            .compare_and_swap(SCHEME_KEY, None, &bytes)
            .await?
        {
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
    fn slot(&self, node: &[ChildNumber]) -> Result<Arc<Slot>, Error> {
        if let Some(slot) = self.nodes.get(node) {
            return Ok(slot);
        }
        let path = DerivationPath::from_components(node.to_vec())?;
        let slot = Arc::new(Slot::new(Subject::Node(path.clone())));
        self.nodes.insert(path, Arc::clone(&slot));
        Ok(slot)
    }

    /// The slot of the non-HD key `key`: its state-store keys and cached
    /// decodings.
    fn key_slot(&self, key: &PublicKey) -> Arc<Slot> {
        let compressed = key.to_compressed();
        if let Some(slot) = self.keys.get(&compressed) {
            return slot;
        }
        let slot = Arc::new(Slot::new(Subject::Key(*key)));
        self.keys.insert(compressed, Arc::clone(&slot));
        slot
    }

    /// The enrolment at `node`, if any: read from the state store on every
    /// call (decoded again only if its bytes changed).
    pub(crate) async fn lookup(
        &self,
        node: &[ChildNumber],
        fetch: Fetch,
    ) -> Result<Option<Loaded>, Error> {
        if !self.scheme_recorded().await? {
            return Ok(None);
        }
        self.load(self.slot(node)?, fetch).await
    }

    /// The enrolment of the non-HD key `key`, if any: read from the state
    /// store on every call (decoded again only if its bytes changed).
    pub(crate) async fn lookup_key(
        &self,
        key: &PublicKey,
        fetch: Fetch,
    ) -> Result<Option<Loaded>, Error> {
        if !self.scheme_recorded().await? {
            return Ok(None);
        }
        self.load(self.key_slot(key), fetch).await
    }

    /// The enrolment of the non-HD key `key` of any algorithm, if any (a
    /// secp256k1 key: [`Self::lookup_key`]; another algorithm's key is
    /// read through a slot of its own, made per lookup).
    pub(crate) async fn lookup_any_key(
        &self,
        key: &AnyPublicKey,
        fetch: Fetch,
    ) -> Result<Option<Loaded>, Error> {
        match Subject::of_key(key) {
            Subject::Key(public) => self.lookup_key(&public, fetch).await,
            subject => {
                if !self.scheme_recorded().await? {
                    return Ok(None);
                }
                self.load(Arc::new(Slot::new(subject)), fetch).await
            }
        }
    }

    /// The enrolment of `subject`, if any.
    async fn lookup_subject(&self, subject: &Subject) -> Result<Option<Loaded>, Error> {
        match subject {
            Subject::Node(node) => self.lookup(node.components(), Fetch::Enrolment).await,
            Subject::Key(key) => self.lookup_key(key, Fetch::Enrolment).await,
            Subject::OtherKey(key) => self.lookup_any_key(key, Fetch::Enrolment).await,
        }
    }

    /// Reads the enrolment record of `slot` (and its guard, as `fetch`
    /// says).
    async fn load(&self, slot: Arc<Slot>, fetch: Fetch) -> Result<Option<Loaded>, Error> {
        // The records this process's last recorded commit left: decided on
        // without a read, checked by the commit (see `accept_cached`).
        if fetch == Fetch::AndGuard
            && let Some(warm) = slot.warm()
        {
            return Ok(Some(Loaded {
                slot,
                version: warm.enrolment_version,
                decoded: warm.enrolment,
                guard: Some((Some(warm.guard_version), warm.guard)),
                optimistic: true,
                contended: false,
            }));
        }
        let (raw, guard) = match fetch {
            Fetch::Enrolment => (self.state.get(&slot.record_key).await?, None),
            // Boxed: only a remote store takes this arm, where a round trip
            // dwarfs an allocation, and the future every gated signature
            // over a local store builds stays as small as it was.
            Fetch::AndGuard => {
                let (raw, guard) = Box::pin(self.read_with_guard(&slot)).await?;
                (raw, Some(guard))
            }
        };
        let Some(raw) = raw else {
            return Ok(None);
        };
        let decoded = slot.enrolment(&raw.value, self.config.scheme)?;
        // The guard's version as read, and as this process knew it before
        // (compared before `guard_of` makes the read the known guard).
        let read = guard.as_ref().map(|g| g.as_ref().map(|g| g.version));
        let known = slot.known_guard().map(|(version, _)| version);
        let contended = matches!((read, known), (Some(read), Some(known)) if read != known);
        let guard = guard.map(|g| guard_of(&slot, g.as_ref())).transpose()?;
        Ok(Some(Loaded {
            slot,
            version: raw.version,
            decoded,
            guard,
            optimistic: false,
            contended,
        }))
    }

    /// `loaded`'s subject read afresh (its warm records forgotten), with
    /// its guard: for a decision the warm records would not make.
    pub(crate) async fn reload(&self, loaded: &Loaded) -> Result<Option<Loaded>, Error> {
        loaded.slot.cool();
        self.load(Arc::clone(&loaded.slot), Fetch::AndGuard).await
    }

    /// The enrolment and guard records of `slot`, in one read.
    async fn read_with_guard(
        &self,
        slot: &Slot,
    ) -> Result<(Option<Versioned>, Option<Versioned>), Error> {
        let keys = [slot.record_key.as_str(), slot.guard_key.as_str()];
        let [raw, guard] = <[_; 2]>::try_from(self.state.get_many(&keys).await?).map_err(|_| {
            custody_core::Error::InvalidStateRecord(
                "the state store answered a read of two keys with another number of records",
            )
        })?;
        Ok((raw, guard))
    }

    /// What a gate's lookup reads for a check: with the guard when the
    /// check will decide on a fresh one (a code to check, deferred to the
    /// audit layer over a store that keeps the audit log; see
    /// [`Self::check_deferring`]), else the enrolment alone.
    pub(crate) fn fetch_for(&self, deferring: bool, code: bool) -> Fetch {
        if deferring && code && self.state.records_into(self.audit.as_ref()) {
            Fetch::AndGuard
        } else {
            Fetch::Enrolment
        }
    }

    /// Whether any enrolled node lies strictly below `path`.
    pub(crate) async fn enrolled_below(&self, path: &DerivationPath) -> Result<bool, Error> {
        if path.depth() >= self.node_depth || !self.scheme_recorded().await? {
            return Ok(false);
        }
        match self.state.get(&under_key(path)).await? {
            None => Ok(false),
            Some(v) => Ok(decode_counter(&v.value)? > 0),
        }
    }

    /// Whether `wallet` is enrolled.
    ///
    /// # Errors
    /// [`Error::InvalidWallet`]; state-store errors.
    ///
    /// Returns a [`Pending`]: ready at once over a local state store,
    /// a future to `.await` over a remote one (sync callers `.wait()`).
    pub fn is_enrolled<'a>(&'a self, wallet: &'a str) -> Pending<'a, Result<bool, Error>> {
        Pending::drive(self.is_enrolled_async(wallet))
    }

    /// See the public method of the same name without `_async`.
    async fn is_enrolled_async(&self, wallet: &str) -> Result<bool, Error> {
        if wallet.len() > MAX_WALLET_NAME_BYTES {
            // Such a name cannot have been enrolled.
            return Ok(false);
        }
        let node = self.node_path(wallet)?;
        Ok(self
            .lookup(node.components(), Fetch::Enrolment)
            .await?
            .is_some())
    }

    /// Whether the non-HD key whose public key is `key` is enrolled.
    ///
    /// # Errors
    /// [`Error::SchemeMismatch`]; state-store errors (a damaged record:
    /// [`custody_core::Error::MalformedRecord`]).
    ///
    /// Returns a [`Pending`]: ready at once over a local state store,
    /// a future to `.await` over a remote one (sync callers `.wait()`).
    pub fn is_key_enrolled<'a>(&'a self, key: &'a PublicKey) -> Pending<'a, Result<bool, Error>> {
        Pending::drive(self.is_key_enrolled_async(key))
    }

    /// See the public method of the same name without `_async`.
    async fn is_key_enrolled_async(&self, key: &PublicKey) -> Result<bool, Error> {
        Ok(self.lookup_key(key, Fetch::Enrolment).await?.is_some())
    }

    /// Whether the non-HD key `key`, of any algorithm, is enrolled.
    ///
    /// # Errors
    /// As [`TotpRegistry::is_key_enrolled`].
    ///
    /// Returns a [`Pending`]: ready at once over a local state store,
    /// a future to `.await` over a remote one (sync callers `.wait()`).
    pub fn is_any_key_enrolled<'a>(
        &'a self,
        key: &'a AnyPublicKey,
    ) -> Pending<'a, Result<bool, Error>> {
        Pending::drive(
            async move { Ok(self.lookup_any_key(key, Fetch::Enrolment).await?.is_some()) },
        )
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
    ///
    /// Returns a [`Pending`]: ready at once over a local state store,
    /// a future to `.await` over a remote one (sync callers `.wait()`).
    pub fn enrol<'a>(
        &'a self,
        wallet: &'a str,
        mode: EnrolMode,
    ) -> Pending<'a, Result<Enrolment, Error>> {
        Pending::drive(self.enrol_async(wallet, mode))
    }

    /// See the public method of the same name without `_async`.
    async fn enrol_async(&self, wallet: &str, mode: EnrolMode) -> Result<Enrolment, Error> {
        let subject = Subject::Node(self.node_path(wallet)?);
        self.enrol_subject(subject, wallet, mode).await
    }

    /// Enrols the key that is not HD-derived (an imported key, a KMS or HSM
    /// key) whose public key is `key`, with a fresh secret from the OS RNG:
    /// from then on [`crate::TotpGate`] wants a code for it wherever it is
    /// pinned without a BIP32 path, however the request names it.
    /// `label` is the account name authenticator apps show (e.g. the key's
    /// URI; 1 to [`MAX_WALLET_NAME_BYTES`] bytes); it identifies nothing:
    /// the public key does. [`EnrolMode`] as for a wallet (a rotation may
    /// change the label). Returns what to show the user.
    ///
    /// # Errors
    /// [`Error::InvalidLabel`]; otherwise as [`TotpRegistry::enrol`].
    ///
    /// Returns a [`Pending`]: ready at once over a local state store,
    /// a future to `.await` over a remote one (sync callers `.wait()`).
    pub fn enrol_key<'a>(
        &'a self,
        label: &'a str,
        key: &'a PublicKey,
        mode: EnrolMode,
    ) -> Pending<'a, Result<Enrolment, Error>> {
        Pending::drive(self.enrol_key_async(label, key, mode))
    }

    /// See the public method of the same name without `_async`.
    async fn enrol_key_async(
        &self,
        label: &str,
        key: &PublicKey,
        mode: EnrolMode,
    ) -> Result<Enrolment, Error> {
        check_label(label)?;
        self.enrol_subject(Subject::Key(*key), label, mode).await
    }

    /// Enrols the non-HD key `key` of any algorithm (a secp256k1 key as
    /// [`TotpRegistry::enrol_key`] does; a P-256 or Ed25519 key that signs
    /// JWTs or opens sealed secrets likewise, named in the state store by
    /// its algorithm and public key): from then on [`crate::TotpGate`]
    /// wants a code for every operation of the key (a JWT, an unseal)
    /// exactly as for a transaction.
    ///
    /// # Errors
    /// As [`TotpRegistry::enrol_key`].
    ///
    /// Returns a [`Pending`]: ready at once over a local state store,
    /// a future to `.await` over a remote one (sync callers `.wait()`).
    pub fn enrol_any_key<'a>(
        &'a self,
        label: &'a str,
        key: &'a AnyPublicKey,
        mode: EnrolMode,
    ) -> Pending<'a, Result<Enrolment, Error>> {
        Pending::drive(async move {
            check_label(label)?;
            self.enrol_subject(Subject::of_key(key), label, mode).await
        })
    }

    async fn enrol_subject(
        &self,
        subject: Subject,
        name: &str,
        mode: EnrolMode,
    ) -> Result<Enrolment, Error> {
        let mut secret = Zeroizing::new(vec![0u8; self.config.secret_bytes]);
        fill_random(&mut secret)?;
        let issuer = self.config.issuer.clone();
        let params = self.config.params;
        self.install(&subject, name, mode, &secret, params, &issuer)
            .await?;
        let uri = OtpAuthUri::new(Some(&issuer), name, SecretVec::from_slice(&secret), params)?;
        Ok(Enrolment { subject, uri })
    }

    /// Enrols `wallet` with the secret and parameters of an otpauth URI
    /// (e.g. moving a wallet from another signer). The URI's account name
    /// is not used; its issuer is kept (the configured one if it has none).
    ///
    /// # Errors
    /// As [`TotpRegistry::enrol`].
    ///
    /// Returns a [`Pending`]: ready at once over a local state store,
    /// a future to `.await` over a remote one (sync callers `.wait()`).
    pub fn import<'a>(
        &'a self,
        wallet: &'a str,
        uri: &'a OtpAuthUri,
        mode: EnrolMode,
    ) -> Pending<'a, Result<DerivationPath, Error>> {
        Pending::drive(self.import_async(wallet, uri, mode))
    }

    /// See the public method of the same name without `_async`.
    async fn import_async(
        &self,
        wallet: &str,
        uri: &OtpAuthUri,
        mode: EnrolMode,
    ) -> Result<DerivationPath, Error> {
        let node = self.node_path(wallet)?;
        let issuer = uri.issuer().unwrap_or(&self.config.issuer);
        self.install(
            &Subject::Node(node.clone()),
            wallet,
            mode,
            uri.expose_secret(),
            uri.params(),
            issuer,
        )
        .await?;
        Ok(node)
    }

    /// Enrols the non-HD key `key` (see [`TotpRegistry::enrol_key`]) with
    /// the secret and parameters of an otpauth URI. The URI's account name
    /// is not used (`label` is); its issuer is kept (the configured one if
    /// it has none).
    ///
    /// # Errors
    /// As [`TotpRegistry::enrol_key`].
    ///
    /// Returns a [`Pending`]: ready at once over a local state store,
    /// a future to `.await` over a remote one (sync callers `.wait()`).
    pub fn import_key<'a>(
        &'a self,
        label: &'a str,
        key: &'a PublicKey,
        uri: &'a OtpAuthUri,
        mode: EnrolMode,
    ) -> Pending<'a, Result<(), Error>> {
        Pending::drive(self.import_key_async(label, key, uri, mode))
    }

    /// See the public method of the same name without `_async`.
    async fn import_key_async(
        &self,
        label: &str,
        key: &PublicKey,
        uri: &OtpAuthUri,
        mode: EnrolMode,
    ) -> Result<(), Error> {
        check_label(label)?;
        let issuer = uri.issuer().unwrap_or(&self.config.issuer);
        self.install(
            &Subject::Key(*key),
            label,
            mode,
            uri.expose_secret(),
            uri.params(),
            issuer,
        )
        .await
    }

    /// Stores the enrolment of `subject` (`name`: the wallet name of a
    /// node, the label of a key) as `mode` says.
    async fn install(
        &self,
        subject: &Subject,
        name: &str,
        mode: EnrolMode,
        secret: &[u8],
        params: TotpParams,
        issuer: &str,
    ) -> Result<(), Error> {
        self.record_scheme().await?;
        let existing = self.lookup_subject(subject).await?;
        let detail = match (&existing, &mode) {
            (None, _) => "enrolled",
            (Some(_), EnrolMode::New) => {
                self.audit_enrol(subject, name, AuditOutcome::Denied, "already-enrolled")
                    .await?;
                return Err(Error::AlreadyEnrolled);
            }
            (Some(e), _) if subject.node().is_some() && e.record().name != name => {
                // Another name maps to this node (a 2^-124 event): theirs.
                self.audit_enrol(subject, name, AuditOutcome::Denied, "node-taken")
                    .await?;
                return Err(Error::AlreadyEnrolled);
            }
            (Some(e), EnrolMode::Rotate(code)) => {
                let v = self.check(e, Some(code), Attempt::ROTATE).await?;
                if let Some(denial) = v.denial() {
                    return Err(Error::Denied(denial));
                }
                "rotated"
            }
            (Some(_), _) => "force-rotated",
        };
        let record = EnrolmentRecord {
            subject: subject.clone(),
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            params,
            envelope: Envelope::seal(
                self.wrapping()?,
                &self.wrapping()?.default_kek(),
                &secret_context(subject, name, &params)?,
                secret,
            )
            .await?,
            enrolled_at: self.clock.now_unix(),
        };
        let bytes = record.encode()?;
        match existing {
            None => self.create(subject, &bytes).await?,
            Some(e) => {
                match self
                    .state
                    .compare_and_swap(&e.slot.record_key, Some(e.version), &bytes)
                    .await?
                {
                    // The next decision reads the new record (a warm one
                    // would only fail its commit's check).
                    CasOutcome::Swapped { .. } => e.slot.cool(),
                    CasOutcome::Conflict { .. } => return Err(Error::ConcurrentUpdate),
                }
            }
        }
        self.audit_enrol(subject, name, AuditOutcome::Success, detail)
            .await?;
        Ok(())
    }

    /// Creates an enrolment record: for a node, ancestor counters first,
    /// then the record; for a key (no ancestors), the record.
    async fn create(&self, subject: &Subject, bytes: &[u8]) -> Result<(), Error> {
        let (record_key, _) = subject_keys(subject);
        let ancestors = match subject {
            Subject::Node(node) => strict_prefixes(node)?,
            Subject::Key(_) | Subject::OtherKey(_) => Vec::new(),
        };
        for a in &ancestors {
            self.add_to_counter(a, 1).await?;
        }
        match self
            .state
            .compare_and_swap(&record_key, None, bytes)
            .await?
        {
            CasOutcome::Swapped { .. } => Ok(()),
            CasOutcome::Conflict { .. } => {
                // Someone enrolled it first: take our counts back (if this
                // fails, the counters stay high: fail closed).
                for a in &ancestors {
                    self.add_to_counter(a, -1).await?;
                }
                Err(Error::AlreadyEnrolled)
            }
        }
    }

    async fn add_to_counter(&self, path: &DerivationPath, delta: i8) -> Result<(), Error> {
        let key = under_key(path);
        let mut current = self.state.get(&key).await?;
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
            match self
                .state
                .compare_and_swap(
                    &key,
                    current.as_ref().map(|v| v.version),
                    &encode_counter(next)?,
                )
                .await?
            {
                CasOutcome::Swapped { .. } => return Ok(()),
                CasOutcome::Conflict { current: c } => current = c,
            }
        }
        Err(Error::Contention)
    }

    /// Audits an enrolment of `subject`: a wallet by name and node, a key
    /// by public key.
    async fn audit_enrol(
        &self,
        subject: &Subject,
        name: &str,
        outcome: AuditOutcome,
        detail: &'static str,
    ) -> Result<(), Error> {
        let event = AuditEvent::new(AuditOp::ENROL, outcome);
        let event = match subject {
            Subject::Node(node) => event.with_wallet(name).with_path(node),
            Subject::Key(key) => event.with_public_key(key),
            Subject::OtherKey(key) => event
                .with_field("public-key", hex::encode(key.to_bytes()))?
                .with_field("algorithm", key.algorithm().as_str())?,
        };
        self.audit
            .append(event.with_detail(detail).with_field("factor", "totp")?)
            .await?;
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
    ///
    /// Returns a [`Pending`]: ready at once over a local state store,
    /// a future to `.await` over a remote one (sync callers `.wait()`).
    pub fn verify<'a>(
        &'a self,
        wallet: &'a str,
        code: Option<&'a OneTimeCode>,
    ) -> Pending<'a, Result<Verification, Error>> {
        Pending::drive(self.verify_async(wallet, code))
    }

    /// See the public method of the same name without `_async`.
    async fn verify_async(
        &self,
        wallet: &str,
        code: Option<&OneTimeCode>,
    ) -> Result<Verification, Error> {
        if wallet.len() > MAX_WALLET_NAME_BYTES {
            return Ok(Verification::NotEnrolled);
        }
        let node = self.node_path(wallet)?;
        match self.lookup(node.components(), Fetch::Enrolment).await? {
            None => Ok(Verification::NotEnrolled),
            Some(loaded) => self.check(&loaded, code, Attempt::VERIFY).await,
        }
    }

    /// Checks `code` for the non-HD key `key` and, if it is accepted,
    /// spends it, exactly as [`TotpRegistry::verify`] does for a wallet
    /// (the same guard, lockout and audit records, identified by the
    /// public key). A key that is not enrolled gives
    /// [`Verification::NotEnrolled`] (and no audit record).
    ///
    /// # Errors
    /// [`Error::Contention`]; [`Error::SchemeMismatch`]; state-store,
    /// envelope and audit errors. Any error means "not verified".
    ///
    /// Returns a [`Pending`]: ready at once over a local state store,
    /// a future to `.await` over a remote one (sync callers `.wait()`).
    pub fn verify_key<'a>(
        &'a self,
        key: &'a PublicKey,
        code: Option<&'a OneTimeCode>,
    ) -> Pending<'a, Result<Verification, Error>> {
        Pending::drive(self.verify_key_async(key, code))
    }

    /// See the public method of the same name without `_async`.
    async fn verify_key_async(
        &self,
        key: &PublicKey,
        code: Option<&OneTimeCode>,
    ) -> Result<Verification, Error> {
        match self.lookup_key(key, Fetch::Enrolment).await? {
            None => Ok(Verification::NotEnrolled),
            Some(loaded) => self.check(&loaded, code, Attempt::VERIFY).await,
        }
    }

    /// Checks a code against a loaded enrolment, commits the guard, and
    /// audits the attempt (an audit failure is returned as an error: the
    /// caller refuses).
    pub(crate) async fn check(
        &self,
        loaded: &Loaded,
        code: Option<&OneTimeCode>,
        attempt: Attempt<'_>,
    ) -> Result<Verification, Error> {
        self.check_recording(loaded, code, attempt, Recording::Every)
            .await
    }

    /// [`Self::check`], recording an accepted code only if `recording` says
    /// so (refusals and errors are always recorded).
    pub(crate) async fn check_recording(
        &self,
        loaded: &Loaded,
        code: Option<&OneTimeCode>,
        attempt: Attempt<'_>,
        recording: Recording,
    ) -> Result<Verification, Error> {
        self.check_with(loaded, code, attempt, recording, None)
            .await
    }

    /// [`Self::check`] for a gate whose acceptance the audit layer above
    /// records with the signature: where the state store keeps that log,
    /// an accepted code is decided on a freshly read guard and *not*
    /// spent here; its guard write comes back as a [`DeferredWrite`] for the
    /// audit layer to commit with the signature's record (one commit). Where
    /// it does not, as [`Recording::RefusalsOnly`] (spent here, `None`).
    ///
    /// On warm records (`loaded` not read for this request), only an
    /// acceptance is decided, with nothing read or written: its guard write
    /// and a check of the enrolment's version are handed up as optimistic
    /// ([`DeferredWrite::optimistic`]), so that a commit finding either
    /// moved runs the request again rather than refusing it. Anything else
    /// (locked, a wrong or replayed code, no code) answers `None`: decide
    /// again on records read afresh ([`Self::reload`]), as a refusal is
    /// only ever given on those.
    pub(crate) async fn check_deferring(
        &self,
        loaded: &Loaded,
        code: Option<&OneTimeCode>,
        attempt: Attempt<'_>,
    ) -> Result<Option<(Verification, Vec<DeferredWrite>)>, Error> {
        if loaded.optimistic {
            return self.accept_cached(loaded, code).await;
        }
        let mut deferred = None;
        let verification = self
            .check_with(
                loaded,
                code,
                attempt,
                Recording::RefusalsOnly,
                Some(&mut deferred),
            )
            .await?;
        Ok(Some((verification, deferred.into_iter().collect())))
    }

    /// An acceptance decided on warm records, or `None` (see
    /// [`Self::check_deferring`]).
    async fn accept_cached(
        &self,
        loaded: &Loaded,
        code: Option<&OneTimeCode>,
    ) -> Result<Option<(Verification, Vec<DeferredWrite>)>, Error> {
        let (Some(code), Some((Some(version), state))) = (code, loaded.guard) else {
            return Ok(None);
        };
        if !self.state.records_into(self.audit.as_ref()) {
            return Ok(None);
        }
        let now = self.clock.now_unix();
        if now < state.locked_until {
            return Ok(None);
        }
        let matches = self.matches(loaded, code, now).await?;
        let (Decision::Accept(step), Some(next)) =
            decide(&state, now, &matches, &self.config.lockout)
        else {
            return Ok(None);
        };
        let guard = self
            .deferred_guard(loaded, Some(version), next, next.encode()?)
            .optimistic();
        let enrolment = DeferredWrite::unchanged(
            Arc::clone(&self.state),
            loaded.slot.record_key.clone(),
            loaded.version,
            Arc::new(|_| {}),
        )
        .optimistic();
        Ok(Some((
            Verification::Accepted { step },
            vec![guard, enrolment],
        )))
    }

    /// The guard write of an acceptance, left to the audit layer: from
    /// `version` to `next` (encoded as `bytes`). Once committed, the slot
    /// remembers it and the enrolment decided on as its warm records
    /// (unless `loaded` was [contended](Loaded::contended)); if it
    /// conflicts, the slot forgets them.
    fn deferred_guard(
        &self,
        loaded: &Loaded,
        version: Option<u64>,
        next: GuardState,
        bytes: Vec<u8>,
    ) -> DeferredWrite {
        let slot = Arc::clone(&loaded.slot);
        let written = bytes.clone();
        let (enrolment_version, enrolment) = (loaded.version, Arc::clone(&loaded.decoded));
        let contended = loaded.contended;
        DeferredWrite::new(
            Arc::clone(&self.state),
            slot.guard_key.clone(),
            version,
            bytes,
            Arc::new(move |committed: Option<u64>| match committed {
                Some(guard_version) => {
                    slot.wrote_guard(guard_version, written.clone(), next);
                    if contended {
                        return;
                    }
                    slot.set_warm(crate::cache::Warm {
                        enrolment_version,
                        enrolment: Arc::clone(&enrolment),
                        guard_version,
                        guard: next,
                    });
                }
                None => slot.cool(),
            }),
        )
    }

    async fn check_with(
        &self,
        loaded: &Loaded,
        code: Option<&OneTimeCode>,
        attempt: Attempt<'_>,
        recording: Recording,
        defer: Option<&mut Option<DeferredWrite>>,
    ) -> Result<Verification, Error> {
        let now = self.clock.now_unix();
        let (result, spent_with_record) = self
            .decide_and_commit(loaded, code, now, attempt, defer)
            .await;
        let params = &loaded.record().params;
        let (outcome, detail, step) = match &result {
            Ok(Verification::Accepted { step }) => {
                if spent_with_record || recording == Recording::RefusalsOnly {
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
        self.audit.append(event).await?;
        result
    }

    /// Records that a code was accepted (and spent) for `attempt` at `step`
    /// but no signature came out of it: the inner backend failed with
    /// `failure` (an [`custody_core::Error::kind`]). Used when the gate
    /// left the record of a success to the audit layer above it.
    pub(crate) async fn record_spent_unused(
        &self,
        loaded: &Loaded,
        attempt: Attempt<'_>,
        step: u64,
        failure: &'static str,
    ) -> Result<(), Error> {
        let event = attempt_event(loaded, attempt, AuditOutcome::Success, "accepted", step)?
            .with_field("inner-error", failure)?;
        self.audit.append(event).await?;
        Ok(())
    }

    /// Decides on `code` and commits the guard. The flag says whether the
    /// acceptance was recorded in the same commit as the guard (a store
    /// that keeps this registry's audit log: see
    /// [`StateStore::compare_and_swap_all_recorded`]); then the caller records
    /// nothing more for it, whatever its [`Recording`].
    async fn decide_and_commit(
        &self,
        loaded: &Loaded,
        code: Option<&OneTimeCode>,
        now: u64,
        attempt: Attempt<'_>,
        defer: Option<&mut Option<DeferredWrite>>,
    ) -> (Result<Verification, Error>, bool) {
        let mut recorded = false;
        let result = self
            .decide_and_commit_inner(loaded, code, now, attempt, &mut recorded, defer)
            .await;
        // (A deferred acceptance is recorded with the signature, above:
        // deferring runs as `Recording::RefusalsOnly`.)
        (result, recorded)
    }

    async fn decide_and_commit_inner(
        &self,
        loaded: &Loaded,
        code: Option<&OneTimeCode>,
        now: u64,
        attempt: Attempt<'_>,
        recorded: &mut bool,
        mut defer: Option<&mut Option<DeferredWrite>>,
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
        // A guard read with the enrolment (for a deferring check) is fresh.
        let (mut version, mut state, mut fresh) = match (loaded.guard, slot.known_guard()) {
            (Some((version, state)), _) => (version, state, true),
            (None, Some((version, state))) => (version, state, false),
            (None, None) => {
                let (version, state) = self.read_guard(slot).await?;
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
                (version, state) = self.read_guard(slot).await?;
                fresh = true;
                continue;
            }
            let m = match &mut matches {
                Some(m) => &*m,
                None => &*matches.insert(self.matches(loaded, code, now).await?),
            };
            let (decision, next) = decide(&state, now, m, &self.config.lockout);
            let Some(next) = next else {
                if fresh {
                    return Ok(decision.into());
                }
                (version, state) = self.read_guard(slot).await?;
                fresh = true;
                continue;
            };
            let bytes = next.encode()?;
            // Deferred: an acceptance decided on a freshly read guard, its
            // write handed up to be committed with the signature's record.
            if let (Decision::Accept(_), Some(out)) = (&decision, defer.as_mut())
                && self.state.records_into(self.audit.as_ref())
            {
                if !fresh {
                    (version, state) = self.read_guard(slot).await?;
                    fresh = true;
                    continue;
                }
                **out = Some(self.deferred_guard(loaded, version, next, bytes));
                return Ok(decision.into());
            }
            // An acceptance spends the code: where the store keeps this
            // registry's audit log, its record commits with the guard (both
            // or neither). The event is only built then.
            let outcome = match decision {
                Decision::Accept(step) if self.state.records_into(self.audit.as_ref()) => {
                    let event =
                        attempt_event(loaded, attempt, AuditOutcome::Success, "accepted", step)?;
                    let swap = [Swap::write(&slot.guard_key, version, &bytes)];
                    match self
                        .state
                        .compare_and_swap_all_recorded(&swap, event, self.audit.as_ref())
                        .await?
                    {
                        RecordedSwaps::Swapped { versions, .. } => {
                            *recorded = true;
                            let version = versions.first().copied().ok_or(
                                custody_core::Error::InvalidStateRecord(
                                    "a recorded swap returned no version",
                                ),
                            )?;
                            CasOutcome::Swapped { version }
                        }
                        RecordedSwaps::Conflict { current, .. } => CasOutcome::Conflict { current },
                    }
                }
                _ => {
                    self.state
                        .compare_and_swap(&slot.guard_key, version, &bytes)
                        .await?
                }
            };
            match outcome {
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

    /// Which steps of the window around `now` `code` matches, under the
    /// enrolment's secret (unwrapped, or from the cache).
    async fn matches(
        &self,
        loaded: &Loaded,
        code: &OneTimeCode,
        now: u64,
    ) -> Result<Matches, Error> {
        let secret = self.secret(loaded).await?;
        Matches::compute(
            &secret.key,
            &loaded.record().params,
            code.expose_secret().as_bytes(),
            now,
            self.config.skew_steps,
        )
    }

    /// Reads the guard of `slot` from the state store (its version, and its
    /// state: the default if there is no record yet).
    async fn read_guard(&self, slot: &Slot) -> Result<(Option<u64>, GuardState), Error> {
        guard_of(slot, self.state.get(&slot.guard_key).await?.as_ref())
    }

    /// The unwrapped secret of an enrolment (keyed into its HMAC), from
    /// the cache if it was unwrapped from exactly this record, else from
    /// the KEK.
    async fn secret(&self, loaded: &Loaded) -> Result<Arc<CachedSecret>, Error> {
        let subject = loaded.subject();
        if let Some(cached) = self.secrets.get(subject) {
            if cached.is_for(&loaded.decoded) {
                return Ok(cached);
            }
            // The record changed (rotated, rewritten): the old secret goes
            // now, not when it is evicted.
            self.secrets.remove(subject);
        }
        let record = loaded.record();
        let secret = record
            .envelope
            .open(self.wrapping()?, &record.context()?)
            .await?;
        let cached = Arc::new(CachedSecret {
            from: Arc::clone(&loaded.decoded),
            key: KeyedSecret::new(secret.expose_secret(), record.params.algorithm)?,
        });
        drop(secret);
        self.secrets.insert(subject.clone(), Arc::clone(&cached));
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
            .field("cached_keys", &self.keys.len())
            .field("cached_secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}
