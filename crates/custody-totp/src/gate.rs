//! [`TotpGate`]: a [`KeyBackend`] that lets nothing reach an enrolled
//! wallet's keys, or an enrolled non-HD key, without a fresh TOTP code.
//!
//! See [`TotpGate`] for what it covers and how.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use custody_core::{
    AuditEvent, AuditOp, AuditOutcome, Authorization, ChildNumber, Clearance, Cleared,
    DecryptRequest, Decrypted, DecryptingBackend, DeferredWrite, Denial, DerivationPath, Digest32,
    ExportingBackend, IntentKind, KeyBackend, KeyKinds, KeyRef, Pending, PinnedKey,
    PrivateKeyBytes, SharedBackend, SignRequest, Signed, SigningBackend, WrappingBackend,
};

use crate::registry::{Attempt, Loaded, Recording};
use crate::{Error, TotpRegistry};

/// The route a request takes to a key.
#[derive(Debug, Clone, Copy)]
enum Route<'a> {
    Sign {
        digest: &'a Digest32,
        intent: IntentKind,
    },
    /// An unseal (key agreement or decryption): gated as a signature is.
    Decrypt {
        digest: &'a Digest32,
        intent: IntentKind,
    },
    Export,
}

impl Route<'_> {
    fn name(&self) -> &'static str {
        match self {
            Self::Sign { .. } => "sign",
            Self::Decrypt { .. } => "decrypt",
            Self::Export => "export",
        }
    }

    fn op(&self) -> AuditOp {
        match self {
            Self::Sign { .. } => AuditOp::SIGN,
            Self::Decrypt { .. } => AuditOp::DECRYPT,
            Self::Export => AuditOp::EXPORT,
        }
    }

    /// The digest and intent of a signature or an unseal.
    fn named(&self) -> Option<(&Digest32, IntentKind)> {
        match *self {
            Self::Sign { digest, intent } | Self::Decrypt { digest, intent } => {
                Some((digest, intent))
            }
            Self::Export => None,
        }
    }
}

/// What the gate decided about a request it lets through.
enum Admitted {
    /// The key belongs to no enrolled wallet and is no enrolled key:
    /// nothing to check.
    Open,
    /// A code was accepted for this enrolment at this step, and spent (or,
    /// with `deferred`, to be spent by the audit layer with the record).
    Cleared {
        loaded: Loaded,
        step: u64,
        deferred: Vec<DeferredWrite>,
    },
}

/// The TOTP gate: a [`KeyBackend`] that lets nothing reach an enrolled
/// wallet's keys, or an enrolled non-HD key, without a fresh TOTP code.
///
/// # What it covers
/// The gate wraps any backend and is itself one. Every route to a key goes
/// through it: digest signing (typed intents and the raw-digest intent
/// alike) and private-key export. For each request it looks at every path
/// the inner backend could use: the pinned key's BIP32 path and the path
/// its reference names ([`KeyRef::Wallet`] through the configured wallet
/// scheme, [`KeyRef::Path`] as given), so a hand-made [`PinnedKey`] whose
/// reference and path disagree is checked on both. A wallet key pinned at
/// another path than the gate's scheme gives is refused
/// ([`Error::SchemeMismatch`]): the gate and the keystore disagree on the
/// scheme, and the gate would look for enrolled wallets at the wrong nodes.
///
/// A key pinned **without a BIP32 path** (an imported key, a KMS or HSM
/// key: [`KeyRef::Stored`]) is looked up by its pinned public key
/// ([`TotpRegistry::enrol_key`]), so every id, ARN or alias of one key
/// meets the same enrolment. If it is enrolled, signing with it and
/// exporting it need a valid, fresh code, exactly as for a wallet's key
/// (the same guard, lockout, [`Clearance`] and records). A key pinned
/// with a path is never looked up by public key: an HD key is gated
/// through its wallet.
///
/// - **Signing** with a key at or under an enrolled wallet's node needs a
///   valid, fresh code ([`Authorization::totp`]). Signing with any other
///   key (an ancestor's included: a signature exposes no key) is allowed,
///   unless the gate [requires enrolment](TotpGate::require_enrolment).
/// - **Export** of a key is judged by what it exposes. With BIP32, a
///   normal (non-hardened) child's private key and its parent's extended
///   public key give the parent's private key, so exporting `P` exposes
///   `P` with its trailing normal steps stripped (e.g. exporting `m/0`
///   exposes `m`, whose xpub `custody init` prints). If that exposed node is
///   an ancestor of an enrolled wallet's node, the export is refused with
///   [`Denial::Forbidden`], code or not; if it is at or under one, it needs
///   a fresh code like signing.
/// - Wrapping is forwarded untouched.
///
/// # What it records
/// Every refusal and every failure gets a `totp-verify` audit record from
/// the gate. An accepted code for a signature is handed up as
/// [`Clearance::Totp`] in the answer; when an audit layer
/// ([`custody_core::Audited`]) is above the gate
/// ([`SignRequest::recorded_above`]), that layer's one record of the
/// signature carries it as `totp-step` and the gate writes nothing more
/// (if the inner backend then fails, the gate records the spent code
/// itself). Without an audit layer above, the gate records the accepted
/// code before the inner backend is called. Exports are always recorded by
/// the gate as well.
///
/// # Fails closed
/// Any error while reading the enrolment or the guard, unwrapping the
/// secret or writing the audit record refuses the request: the inner
/// backend is not called. (The Fortanix plugin signs without a code when
/// its lookup fails.)
///
/// # The check and the signature are one step
/// A code that passes is spent (its compare-and-swap committed) *before*
/// the inner backend is called: it stays spent even if signing then fails,
/// and a request whose check fails never reaches the inner backend.
///
/// # Cost
/// On the software path the gate returns the inner backend's [`Pending`]
/// as is (ready and allocation-free when the inner one is). For an
/// enrolled wallet it adds one read of the node record, one of the guard,
/// one compare-and-swap, one HMAC for a code of the current step
/// (`2·skew+1` for any other) and one audit field (the secret,
/// the node's state-store keys and the decodings of its records are
/// cached, each used only while the bytes read are those it was made from:
/// see [`TotpRegistry`]); for a wallet that is not enrolled, one read. No
/// public key is computed. A key pinned without a path costs the same,
/// with its key record read instead of a node record (plus encoding its
/// pinned public key, compressed, to find its cached slot); a key pinned
/// with a path costs nothing more for the existence of key enrolments.
pub struct TotpGate {
    inner: SharedBackend,
    registry: Arc<TotpRegistry>,
    require_enrolment: bool,
}

/// `path` without its trailing normal (non-hardened) steps: the node whose
/// private key an export of `path` exposes, given its extended public key.
fn exposed_by_export(path: &DerivationPath) -> &[ChildNumber] {
    let c = path.components();
    let keep = c.iter().rposition(|n| n.is_hardened()).map_or(0, |i| i + 1);
    c.get(..keep).unwrap_or_default()
}

/// The id a stored key's reference names, for audit records.
fn stored_id(key: &PinnedKey) -> Option<&str> {
    match key.reference() {
        KeyRef::Stored(id) => Some(id.as_str()),
        _ => None,
    }
}

impl TotpGate {
    /// Gates `inner` with the enrolments of `registry`. Use the same wallet
    /// scheme for both (the keystore's).
    #[must_use]
    pub fn new(inner: SharedBackend, registry: Arc<TotpRegistry>) -> Self {
        Self {
            inner,
            registry,
            require_enrolment: false,
        }
    }

    /// With `true`, a key that belongs to no enrolled wallet and is not
    /// itself enrolled (a wallet that is not enrolled, an ancestor path, an
    /// imported or KMS key that is not enrolled) is refused with
    /// [`Denial::Forbidden`]: every signature and export then needs a code.
    /// The default (`false`) signs such keys without one, as the Fortanix
    /// plugin does for wallets that are not registered.
    #[must_use]
    pub fn require_enrolment(mut self, require: bool) -> Self {
        self.require_enrolment = require;
        self
    }

    /// The registry of enrolments.
    #[must_use]
    pub fn registry(&self) -> &Arc<TotpRegistry> {
        &self.registry
    }

    /// The wrapped backend.
    #[must_use]
    pub fn inner(&self) -> &SharedBackend {
        &self.inner
    }

    /// Decides whether a request may reach the inner backend; spends the
    /// code when it does.
    async fn admit(
        &self,
        key: &PinnedKey,
        auth: &Authorization,
        route: Route<'_>,
        recording: Recording,
    ) -> Result<Admitted, custody_core::Error> {
        let depth = self.registry.node_depth();
        let pinned = key.path();
        let scheme = self.registry.scheme();
        // The path the reference names, where it differs from the pinned one.
        let named: Option<Cow<'_, DerivationPath>> = match key.reference() {
            KeyRef::Wallet { name, index } => match pinned {
                Some(_) if key.is_scheme_path(scheme) => None,
                Some(_) => {
                    // The backend put the wallet's key elsewhere than our
                    // scheme does: a forged key, or a gate configured with
                    // another scheme than the keystore (whose enrolled
                    // nodes we would not find). An invalid index says so.
                    scheme.key_path(name, *index)?;
                    return Err(Error::SchemeMismatch.into());
                }
                None => Some(Cow::Owned(scheme.key_path(name, *index)?)),
            },
            KeyRef::Path(p) => (Some(p) != pinned).then_some(Cow::Borrowed(p)),
            KeyRef::Stored(_) => None,
            _ => {
                return Err(custody_core::Error::Unsupported(
                    "the TOTP gate does not know this kind of key reference",
                ));
            }
        };
        let second = named.as_deref();
        // A check that defers its guard write decides on a fresh guard:
        // read it with the enrolment (one round trip to a remote store).
        let fetch = self
            .registry
            .fetch_for(recording == Recording::RefusalsOnly, auth.totp.is_some());
        let mut enrolled: Option<Loaded> = None;
        for path in [pinned, second].into_iter().flatten() {
            // The wallet node the path is at or under, if it is that deep.
            let node = match route {
                // An unseal, like a signature, uses the key without
                // exposing it.
                Route::Sign { .. } | Route::Decrypt { .. } => path.components().get(..depth),
                Route::Export => {
                    let exposed = exposed_by_export(path);
                    if exposed.len() < depth {
                        let exposed = DerivationPath::from_components(exposed.to_vec())?;
                        if self.registry.enrolled_below(&exposed).await? {
                            return Err(self.refuse(key, route, "exposes-enrolled-wallet").await);
                        }
                    }
                    exposed.get(..depth)
                }
            };
            let Some(node) = node else { continue };
            if let Some(loaded) = self.registry.lookup(node, fetch).await? {
                if enrolled
                    .as_ref()
                    .is_some_and(|e| e.subject() != loaded.subject())
                {
                    // Two wallets' keys in one request: no one code serves.
                    return Err(self.refuse(key, route, "two-wallets").await);
                }
                enrolled = Some(loaded);
            }
        }
        // A key without a path (stored: imported, KMS, HSM) is its own
        // subject, named by its public key whatever the reference says. A
        // key with a path never pays for this read. A key of any algorithm
        // (a JOSE key: P-256, Ed25519) is enrolled by its public key the
        // same way, so its JWTs and unseals need a code as a transaction
        // does.
        if pinned.is_none()
            && let Some(loaded) = self.registry.lookup_any_key(key.public(), fetch).await?
        {
            if enrolled.is_some() {
                // A wallet's path and an enrolled key in one request.
                return Err(self.refuse(key, route, "two-subjects").await);
            }
            enrolled = Some(loaded);
        }
        let Some(mut loaded) = enrolled else {
            return self.unenrolled(key, route).await;
        };
        let (digest, intent) = route.named().unzip();
        let attempt = Attempt {
            route: route.name(),
            digest,
            intent,
            key_path: pinned.or(second),
            key_id: stored_id(key),
            index: key.wallet().map(|(_, index)| index),
        };
        let (verification, deferred) = if recording == Recording::RefusalsOnly {
            match self
                .registry
                .check_deferring(&loaded, auth.totp.as_ref(), attempt)
                .await?
            {
                Some(checked) => checked,
                // The warm records would not accept: decide on records
                // read afresh (which always answers).
                None => {
                    let Some(fresh) = self.registry.reload(&loaded).await? else {
                        return self.unenrolled(key, route).await;
                    };
                    loaded = fresh;
                    self.registry
                        .check_deferring(&loaded, auth.totp.as_ref(), attempt)
                        .await?
                        .ok_or(custody_core::Error::InvalidStateRecord(
                            "an enrolment read afresh was not decided on",
                        ))?
                }
            }
        } else {
            let v = self
                .registry
                .check_recording(&loaded, auth.totp.as_ref(), attempt, recording)
                .await?;
            (v, Vec::new())
        };
        match verification {
            crate::Verification::Accepted { step } => Ok(Admitted::Cleared {
                loaded,
                step,
                deferred,
            }),
            v => Err(custody_core::Error::Denied(
                v.denial().unwrap_or(Denial::TotpRequired),
            )),
        }
    }

    /// What the gate does with a request for no enrolled subject: refuses
    /// it where enrolment is required, else lets it through unchecked.
    async fn unenrolled(
        &self,
        key: &PinnedKey,
        route: Route<'_>,
    ) -> Result<Admitted, custody_core::Error> {
        if self.require_enrolment {
            return Err(self.refuse(key, route, "not-enrolled").await);
        }
        Ok(Admitted::Open)
    }

    /// Audits a refusal the gate makes itself and returns it (or the audit
    /// error: either way, refused).
    async fn refuse(
        &self,
        key: &PinnedKey,
        route: Route<'_>,
        detail: &'static str,
    ) -> custody_core::Error {
        let mut event =
            custody_core::describe_key(AuditEvent::new(route.op(), AuditOutcome::Denied), key)
                .with_detail(detail);
        if let Some((digest, _)) = route.named() {
            event = event.with_digest(digest);
        }
        let recorded = match event.with_field("denial", Denial::Forbidden.kind()) {
            Ok(e) => self.registry.audit().append(e).await,
            Err(e) => Err(e),
        };
        match recorded {
            Ok(_) => custody_core::Error::Denied(Denial::Forbidden),
            Err(e) => e,
        }
    }
}

impl SigningBackend for TotpGate {
    fn key_kinds(&self) -> KeyKinds {
        self.inner
            .signing()
            .map(SigningBackend::key_kinds)
            .unwrap_or_default()
    }

    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, custody_core::Error>> {
        match self.inner.signing() {
            Some(s) => s.pin(key),
            None => Pending::ready(Err(custody_core::Error::Unsupported(
                "this backend does not sign",
            ))),
        }
    }

    fn sign_digest<'a>(
        &'a self,
        request: SignRequest<'a>,
    ) -> Pending<'a, Result<Signed, custody_core::Error>> {
        let Some(inner) = self.inner.signing() else {
            return Pending::ready(Err(custody_core::Error::Unsupported(
                "this backend does not sign",
            )));
        };
        let gated = Gated {
            key: request.key,
            auth: request.auth,
            digest: request.digest,
            intent: request.intent.kind(),
            recorded_above: request.recorded_above(),
            decrypt: false,
        };
        self.gate(gated, move || inner.sign_digest(request))
    }
}

impl DecryptingBackend for TotpGate {
    fn decrypt<'a>(
        &'a self,
        request: DecryptRequest<'a>,
    ) -> Pending<'a, Result<Decrypted, custody_core::Error>> {
        let Some(inner) = self.inner.decrypting() else {
            return Pending::ready(Err(custody_core::Error::Unsupported(
                "this backend does not decrypt",
            )));
        };
        let gated = Gated {
            key: request.key,
            auth: request.auth,
            digest: request.digest,
            intent: request.intent.kind(),
            recorded_above: request.recorded_above(),
            decrypt: true,
        };
        self.gate(gated, move || inner.decrypt(request))
    }
}

/// What the gate reads of a signing or decryption request.
#[derive(Clone, Copy)]
struct Gated<'a> {
    key: &'a PinnedKey,
    auth: &'a Authorization,
    digest: Digest32,
    intent: IntentKind,
    recorded_above: bool,
    decrypt: bool,
}

impl TotpGate {
    /// The one body of [`SigningBackend::sign_digest`] and
    /// [`DecryptingBackend::decrypt`]: admits the request (spending the
    /// code, or deferring its spending to the audit layer), calls the
    /// inner backend, and hands the clearance up with its answer.
    fn gate<'a, T: Cleared + Send + 'a>(
        &'a self,
        gated: Gated<'a>,
        call: impl FnOnce() -> Pending<'a, Result<T, custody_core::Error>> + Send + 'a,
    ) -> Pending<'a, Result<T, custody_core::Error>> {
        let Gated {
            key,
            auth,
            digest,
            intent,
            recorded_above,
            decrypt,
        } = gated;
        let recording = if recorded_above {
            Recording::RefusalsOnly
        } else {
            Recording::Every
        };
        // Written once, over `Pending` answers: over a local state store and
        // a software backend this is ready at once (one allocation).
        Pending::drive(async move {
            let route = if decrypt {
                Route::Decrypt {
                    digest: &digest,
                    intent,
                }
            } else {
                Route::Sign {
                    digest: &digest,
                    intent,
                }
            };
            let (loaded, step, deferred) = match self.admit(key, auth, route, recording).await? {
                Admitted::Open => return call().await,
                Admitted::Cleared {
                    loaded,
                    step,
                    deferred,
                } => (loaded, step, deferred),
            };
            match call().await {
                Ok(answer) => {
                    let answer = answer.with_clearance(Clearance::Totp { step });
                    // The code is spent by the audit layer's commit, with
                    // the answer's record.
                    Ok(deferred.into_iter().fold(answer, Cleared::with_deferred))
                }
                // A deferred code was never spent: nothing to record but
                // the failure, which the layer above records.
                Err(e) if !deferred.is_empty() => Err(e),
                Err(e) => {
                    if recording == Recording::RefusalsOnly {
                        // The code is spent and no signature came out: the
                        // record above will say the signing failed, this
                        // one that the code was used. The signing error is
                        // the one returned either way.
                        let attempt = Attempt {
                            route: route.name(),
                            digest: Some(&digest),
                            intent: Some(intent),
                            key_path: key.path(),
                            key_id: stored_id(key),
                            index: key.wallet().map(|(_, index)| index),
                        };
                        let _recorded = self
                            .registry
                            .record_spent_unused(&loaded, attempt, step, e.kind())
                            .await;
                    }
                    Err(e)
                }
            }
        })
    }
}

impl ExportingBackend for TotpGate {
    fn export_private_key<'a>(
        &'a self,
        key: &'a PinnedKey,
        auth: &'a Authorization,
    ) -> Pending<'a, Result<PrivateKeyBytes, custody_core::Error>> {
        let Some(inner) = self.inner.exporting() else {
            return Pending::ready(Err(custody_core::Error::Unsupported(
                "keys of this backend cannot leave it",
            )));
        };
        Pending::drive(async move {
            self.admit(key, auth, Route::Export, Recording::Every)
                .await?;
            inner.export_private_key(key, auth).await
        })
    }
}

impl KeyBackend for TotpGate {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signing(&self) -> Option<&dyn SigningBackend> {
        self.inner.signing().map(|_| self as &dyn SigningBackend)
    }

    fn wrapping(&self) -> Option<&dyn WrappingBackend> {
        self.inner.wrapping()
    }

    fn exporting(&self) -> Option<&dyn ExportingBackend> {
        self.inner
            .exporting()
            .map(|_| self as &dyn ExportingBackend)
    }

    fn decrypting(&self) -> Option<&dyn DecryptingBackend> {
        self.inner
            .decrypting()
            .map(|_| self as &dyn DecryptingBackend)
    }
}

impl fmt::Debug for TotpGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpGate")
            .field("inner", &self.inner)
            .field("registry", &self.registry)
            .field("require_enrolment", &self.require_enrolment)
            .finish()
    }
}
