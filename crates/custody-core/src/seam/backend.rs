//! The one seam, [`KeyBackend`], and the key model under it (see the trait's docs).
use std::any::Any;
use std::fmt;
use std::sync::{Arc, OnceLock};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{
    AnyPublicKey, DataKey, DecryptingBackend, Denial, DerivationPath, Digest32, EncryptionContext,
    Error, KeyAlgorithm, Pending, PrivateKeyBytes, PublicKey, RawSignature, SignatureScheme,
    StateStore, WalletScheme,
};

fn valid_id(s: &str, what: &'static str) -> Result<(), Error> {
    if s.is_empty() || s.len() > 2048 {
        return Err(Error::InvalidKeyId(what));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidKeyId(what));
    }
    Ok(())
}

/// Identifier of a key a backend holds: an imported key's id, a KMS key id or
/// ARN, an HSM object label. 1–2048 printable ASCII characters, no spaces.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Validates and wraps an id.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] if empty, too long, or not printable ASCII.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        valid_id(&id, "key ids are 1-2048 printable ASCII characters")?;
        Ok(Self(id))
    }

    /// The id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// Identifier of a key-encryption key (KEK). Same syntax as [`KeyId`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KekId(String);

impl KekId {
    /// Validates and wraps an id.
    ///
    /// # Errors
    /// [`Error::InvalidKeyId`] if empty, too long, or not printable ASCII.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        valid_id(&id, "KEK ids are 1-2048 printable ASCII characters")?;
        Ok(Self(id))
    }

    /// The id as a string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KekId({})", self.0)
    }
}

/// A reference to a signing key, before it is pinned.
#[derive(Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyRef {
    /// A key the backend holds by id (HSM/KMS key, imported key).
    Stored(KeyId),
    /// A key derived by BIP32 from the backend's HD master.
    Path(DerivationPath),
    /// Key `index` of wallet `name`, mapped to a path by the backend's
    /// wallet scheme ([`crate::WalletScheme`]).
    Wallet {
        /// The wallet name (any UTF-8 label, e.g. an e-mail address).
        name: String,
        /// The key index within the wallet.
        index: u32,
    },
}

impl fmt::Debug for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stored(id) => write!(f, "Stored({id})"),
            Self::Path(p) => write!(f, "Path({p})"),
            Self::Wallet { name, index } => write!(f, "Wallet({name:?}, {index})"),
        }
    }
}

/// A key resolved by its backend, with its public key pinned.
///
/// Made by [`SigningBackend::pin`]; every signature is checked against
/// [`PinnedKey::public`] (see [`crate::normalize`] for secp256k1 and
/// [`crate::check_signature`] for the other algorithms).
#[derive(Clone, PartialEq, Eq)]
pub struct PinnedKey {
    reference: KeyRef,
    path: Option<DerivationPath>,
    public: AnyPublicKey,
    /// The audit text of the public key and path, rendered once at pinning
    /// (every signature's audit record carries them).
    rendered: Arc<RenderedKey>,
}

/// A pinned key's public identifiers as audit records write them, and
/// what its path was last checked against.
struct RenderedKey {
    public_key: String,
    path: Option<String>,
    /// The last [`PinnedKey::is_scheme_path`] answer: the scheme asked
    /// about and the answer (the reference and path never change).
    scheme_check: OnceLock<(WalletScheme, bool)>,
}

impl PartialEq for RenderedKey {
    /// The text only: whether a key was checked does not make it another.
    fn eq(&self, other: &Self) -> bool {
        self.public_key == other.public_key && self.path == other.path
    }
}

impl Eq for RenderedKey {}

impl PinnedKey {
    /// Records what a backend resolved `reference` to: a secp256k1 key.
    /// Backends call this from [`SigningBackend::pin`]; `path` is the full
    /// BIP32 path for HD keys.
    #[must_use]
    pub fn new(reference: KeyRef, path: Option<DerivationPath>, public_key: PublicKey) -> Self {
        Self::with_public(reference, path, AnyPublicKey::Secp256k1(public_key))
    }

    /// Records what a backend resolved `reference` to: a key of any
    /// algorithm ([`AnyPublicKey`]).
    #[must_use]
    pub fn with_public(
        reference: KeyRef,
        path: Option<DerivationPath>,
        public: AnyPublicKey,
    ) -> Self {
        let rendered = Arc::new(RenderedKey {
            // RSA: the SPKI's SHA-256, not a 4096-bit modulus per record.
            public_key: hex::encode(public.audit_id()),
            path: path.as_ref().map(ToString::to_string),
            scheme_check: OnceLock::new(),
        });
        Self {
            reference,
            path,
            public,
            rendered,
        }
    }

    /// The compressed public key in lower-case hex (an RSA key's SPKI
    /// SHA-256, [`AnyPublicKey::audit_id`]), as audit records carry it
    /// (rendered once).
    pub(crate) fn public_key_hex(&self) -> &str {
        &self.rendered.public_key
    }

    /// The path as audit records carry it (rendered once).
    pub(crate) fn path_text(&self) -> Option<&str> {
        self.rendered.path.as_deref()
    }

    /// The reference this key was pinned from.
    #[must_use]
    pub fn reference(&self) -> &KeyRef {
        &self.reference
    }

    /// The BIP32 path, for HD-derived keys.
    #[must_use]
    pub fn path(&self) -> Option<&DerivationPath> {
        self.path.as_ref()
    }

    /// The wallet name and index, for keys referenced by wallet.
    #[must_use]
    pub fn wallet(&self) -> Option<(&str, u32)> {
        match &self.reference {
            KeyRef::Wallet { name, index } => Some((name, *index)),
            _ => None,
        }
    }

    /// The pinned public key, whatever its algorithm.
    #[must_use]
    pub fn public(&self) -> &AnyPublicKey {
        &self.public
    }

    /// The key's algorithm.
    #[must_use]
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.public.algorithm()
    }

    /// The pinned secp256k1 public key: what Ethereum addresses, recovery
    /// and [`crate::normalize`] need.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a key of another algorithm.
    pub fn secp256k1(&self) -> Result<&PublicKey, Error> {
        self.public
            .secp256k1()
            .ok_or(Error::Unsupported("this key is not a secp256k1 key"))
    }

    /// Whether this key, pinned by wallet, is at the path `scheme` gives
    /// its wallet and index ([`WalletScheme::is_key_path`]; false for keys
    /// not pinned by wallet or without a path). A gate asks this of every
    /// request to catch a backend that put a wallet's key elsewhere; the
    /// answer for the scheme asked first is kept with the key (its
    /// reference and path never change), so a long-lived pinned key pays
    /// for the check, a hash of the wallet name, once.
    #[must_use]
    pub fn is_scheme_path(&self, scheme: WalletScheme) -> bool {
        let (Some((name, index)), Some(path)) = (self.wallet(), self.path()) else {
            return false;
        };
        if let Some((checked, answer)) = self.rendered.scheme_check.get()
            && *checked == scheme
        {
            return *answer;
        }
        let answer = scheme.is_key_path(name, index, path);
        // A race sets it once; any other scheme is checked afresh each time.
        let _first = self.rendered.scheme_check.set((scheme, answer));
        answer
    }
}

impl fmt::Debug for PinnedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedKey")
            .field("reference", &self.reference)
            .field("path", &self.path)
            .field("public", &self.public)
            .finish()
    }
}

/// What a digest is, so that gates and policy can read what is being signed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntentKind {
    /// A bare 32-byte hash: the explicitly named raw entry point.
    RawDigest,
    /// A transaction's signing hash.
    Transaction,
    /// An EIP-191 personal message.
    PersonalMessage,
    /// EIP-712 typed data.
    TypedData,
    /// An EIP-7702 authorization tuple.
    Authorization,
    /// A checkpoint of an audit log (the heads of its chains), signed so
    /// that records cut off a chain's end are detected against it.
    AuditCheckpoint,
    /// An entry of a wallet's policy log (a policy, an approver's device),
    /// signed by the policy key: the operation hash of the change.
    PolicyEntry,
    /// A policy node's verdict on an operation, signed by the policy key so
    /// that a signing node elsewhere can check it.
    Verdict,
    /// A JWS/JWT signing input (`custody-jose`): the detail is the token's
    /// header and claims, so a gate can read what it is asked to sign.
    Jwt,
    /// Opening a sealed secret (a JWE's key agreement or key decryption,
    /// [`crate::DecryptRequest`]): the detail is the JWE's protected header
    /// and the note its scope.
    Unseal,
}

impl IntentKind {
    /// A stable lower-case name (used in audit records).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RawDigest => "raw-digest",
            Self::Transaction => "transaction",
            Self::PersonalMessage => "personal-message",
            Self::TypedData => "typed-data",
            Self::Authorization => "authorization",
            Self::AuditCheckpoint => "audit-checkpoint",
            Self::PolicyEntry => "policy-entry",
            Self::Verdict => "verdict",
            Self::Jwt => "jwt",
            Self::Unseal => "unseal",
        }
    }
}

/// The intent of a signing request: its kind and, for typed intents, the
/// value being signed (a policy gate downcasts it to e.g. a
/// `custody_eth::Transaction`).
#[derive(Clone, Copy)]
pub struct Intent<'a> {
    kind: IntentKind,
    detail: Option<&'a (dyn Any + Send + Sync)>,
    note: Option<(&'static str, &'a str)>,
}

impl<'a> Intent<'a> {
    /// A bare digest with nothing known about it.
    #[must_use]
    pub fn raw_digest() -> Self {
        Self {
            kind: IntentKind::RawDigest,
            detail: None,
            note: None,
        }
    }

    /// An intent of `kind` carrying the value it is about.
    #[must_use]
    pub fn typed(kind: IntentKind, detail: &'a (dyn Any + Send + Sync)) -> Self {
        Self {
            kind,
            detail: Some(detail),
            note: None,
        }
    }

    /// The same intent with a public note that the audit record of the
    /// request carries as the field `name` (kebab-case), e.g. the fields of
    /// EIP-712 data that a lenient parse left out of the hash
    /// (`ignored-fields`). One note per intent; a later call replaces it.
    /// `value` must be public: audit records are not secret.
    #[must_use]
    pub fn with_note(self, name: &'static str, value: &'a str) -> Self {
        Self {
            note: Some((name, value)),
            ..self
        }
    }

    /// The audit note, if any: its field name and value.
    #[must_use]
    pub fn note(&self) -> Option<(&'static str, &'a str)> {
        self.note
    }

    /// The kind.
    #[must_use]
    pub fn kind(&self) -> IntentKind {
        self.kind
    }

    /// The value being signed, if given.
    #[must_use]
    pub fn detail(&self) -> Option<&'a (dyn Any + Send + Sync)> {
        self.detail
    }
}

impl fmt::Debug for Intent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intent")
            .field("kind", &self.kind)
            .field("note", &self.note)
            .finish_non_exhaustive()
    }
}

/// A one-time code (TOTP). Short-lived but secret until used: redacted in
/// `Debug`, wiped on drop, compared in constant time.
pub struct OneTimeCode(Zeroizing<String>);

impl OneTimeCode {
    /// Wraps a code as the user typed it.
    #[must_use]
    pub fn new(code: impl Into<String>) -> Self {
        Self(Zeroizing::new(code.into()))
    }

    /// The code. Every call site handles a secret.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison with a computed code.
    #[must_use]
    pub fn ct_matches(&self, expected: &str) -> bool {
        self.0.as_bytes().ct_eq(expected.as_bytes()).into()
    }
}

impl fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeCode(<redacted>)")
    }
}

/// Proof of consent carried with a request to every gate it passes.
#[non_exhaustive]
#[derive(Debug, Default)]
pub struct Authorization {
    /// A TOTP code, for wallets enrolled in 2FA.
    pub totp: Option<OneTimeCode>,
    /// Approvers' WebAuthn assertions over the request's operation hash,
    /// each as `PublicKeyCredential.toJSON()` text, for wallets governed by
    /// a policy whose node runs in this process. Public data (signatures
    /// over a public challenge).
    pub approvals: Vec<String>,
    /// A policy node's signed verdict on the request (its wire form), for
    /// wallets governed by a policy whose node runs elsewhere.
    pub verdict: Option<Vec<u8>>,
}

impl Authorization {
    /// No second factor.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// A TOTP code.
    #[must_use]
    pub fn totp(code: impl Into<String>) -> Self {
        Self {
            totp: Some(OneTimeCode::new(code)),
            ..Self::default()
        }
    }

    /// The same, with approvers' assertions added.
    #[must_use]
    pub fn with_approvals(mut self, approvals: impl IntoIterator<Item = String>) -> Self {
        self.approvals.extend(approvals);
        self
    }

    /// The same, with a policy node's signed verdict.
    #[must_use]
    pub fn with_verdict(mut self, verdict: Vec<u8>) -> Self {
        self.verdict = Some(verdict);
        self
    }
}

/// One request to sign a digest (or, for Ed25519, a message).
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    /// The key to sign with.
    pub key: &'a PinnedKey,
    /// The digest to sign; for a scheme that signs the message itself
    /// ([`SignatureScheme::signs_message`]), the message's SHA-256, which
    /// names it in audit records.
    pub digest: Digest32,
    /// What the digest is.
    pub intent: Intent<'a>,
    /// Second factors and approvals.
    pub auth: &'a Authorization,
    /// The signature scheme: ECDSA over secp256k1 unless made by
    /// [`SignRequest::with_scheme`]. A backend signs only the schemes it
    /// holds keys for ([`SignRequest::require_scheme`]).
    pub scheme: SignatureScheme,
    /// The message, for a scheme that signs it (Ed25519); `None` otherwise.
    pub message: Option<&'a [u8]>,
    /// Set only by [`crate::Audited`]: the outcome will be recorded above.
    recorded_above: bool,
}

impl<'a> SignRequest<'a> {
    /// A request to sign `digest` with `key` (a secp256k1 key: ECDSA, the
    /// Ethereum hot path) for `intent`, presenting `auth`.
    #[must_use]
    pub fn new(
        key: &'a PinnedKey,
        digest: Digest32,
        intent: Intent<'a>,
        auth: &'a Authorization,
    ) -> Self {
        Self {
            key,
            digest,
            intent,
            auth,
            scheme: SignatureScheme::EcdsaSecp256k1,
            message: None,
            recorded_above: false,
        }
    }

    /// A request of `scheme`: for ECDSA, `payload` is the 32-byte digest;
    /// for Ed25519, the message (the request's digest is then its
    /// SHA-256).
    ///
    /// # Errors
    /// [`Error::Unsupported`] if `key` is not of the scheme's algorithm;
    /// [`Error::InvalidKeyMaterial`] (never for Ed25519) if an ECDSA
    /// payload is not 32 bytes.
    pub fn with_scheme(
        key: &'a PinnedKey,
        scheme: SignatureScheme,
        payload: &'a [u8],
        intent: Intent<'a>,
        auth: &'a Authorization,
    ) -> Result<Self, Error> {
        if key.algorithm() != scheme.key_algorithm() {
            return Err(Error::Unsupported(
                "the signature scheme is not one of the key's algorithm",
            ));
        }
        let (digest, message) = if scheme.signs_message() {
            use sha2::Digest as _;
            (
                Digest32(sha2::Sha256::digest(payload).into()),
                Some(payload),
            )
        } else {
            let digest: [u8; 32] = payload
                .try_into()
                .map_err(|_| Error::InvalidKeyMaterial("an ECDSA digest is 32 bytes"))?;
            (Digest32(digest), None)
        };
        Ok(Self {
            key,
            digest,
            intent,
            auth,
            scheme,
            message,
            recorded_above: false,
        })
    }

    /// Refuses a request of another scheme than `scheme`: what a backend
    /// that signs one scheme calls first, so that no request ever reaches
    /// a signing primitive of another algorithm.
    ///
    /// # Errors
    /// [`Error::Unsupported`].
    pub fn require_scheme(&self, scheme: SignatureScheme) -> Result<(), Error> {
        if self.scheme == scheme {
            Ok(())
        } else {
            Err(Error::Unsupported(
                "this backend does not sign with this scheme",
            ))
        }
    }

    /// Whether an audit layer ([`crate::Audited`]) above this point will
    /// record the request's outcome together with the [`Clearance`]s of the
    /// answer. A gate that sees `true` hands its evidence up as a clearance
    /// instead of writing a record of its own (one record per signature);
    /// a gate that sees `false` records what it let through itself. Only
    /// [`crate::Audited`] can set it, so a caller cannot silence a gate:
    ///
    /// ```compile_fail
    /// # use custody_core::{Authorization, Digest32, Intent, PinnedKey, SignRequest};
    /// # fn forge<'a>(key: &'a PinnedKey, auth: &'a Authorization) -> SignRequest<'a> {
    /// SignRequest {
    ///     key,
    ///     digest: Digest32([0; 32]),
    ///     intent: Intent::raw_digest(),
    ///     auth,
    ///     recorded_above: true, // private: does not compile
    /// }
    /// # }
    /// ```
    #[must_use]
    pub fn recorded_above(&self) -> bool {
        self.recorded_above
    }

    /// The same request, marked as recorded by the audit layer forwarding it.
    pub(crate) fn recorded(self) -> Self {
        Self {
            recorded_above: true,
            ..self
        }
    }
}

/// What a gate established about a signing request it let through. It
/// travels up with the signature ([`Signed::clearances`]) so that the audit
/// layer writes one record per signature holding the whole story: the key,
/// the digest, the intent, the outcome, and each gate's evidence.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clearance {
    /// A TOTP code was accepted for this time step and spent (a TOTP gate).
    /// Recorded as the audit field `totp-step`.
    Totp {
        /// The accepted time step (`floor((unix time - T0) / period)`).
        step: u64,
    },
    /// A policy verdict covered the request and was spent (a policy
    /// gate). Recorded as the audit fields `policy-log-index` (the log
    /// position whose policy decided) and `verdict` (the verdict's hash):
    /// which policy version approved each signature.
    Policy {
        /// The policy log's head index the verdict was made at.
        log_index: u64,
        /// SHA-256 of the verdict.
        verdict: [u8; 32],
    },
    /// Value that leaves a governed wallet with this signature (a policy
    /// gate), so that velocity limits are recomputed from the audit log's
    /// records and not from a state record anyone with access to the
    /// store could reset. Recorded as the audit fields `wallet` (set when
    /// the key was pinned by path, so the record is in the wallet's
    /// chain), `spend-at` (the decision's Unix seconds) and `spend`
    /// (`asset:amount` pairs joined by `,`; the asset `native` or a
    /// token's 0x address, the amount in decimal).
    Spend {
        /// The governed wallet.
        wallet: String,
        /// Unix seconds of the decision.
        at: u64,
        /// The `spend` field's text.
        amounts: String,
    },
}

impl Clearance {
    /// Adds this clearance's audit fields to `event`.
    ///
    /// # Errors
    /// As [`crate::AuditEvent::with_field`] (it does not fail for the names
    /// used here).
    pub fn describe(&self, event: crate::AuditEvent) -> Result<crate::AuditEvent, Error> {
        match self {
            Self::Totp { step } => Ok(event.with_decimal("totp-step", *step)),
            Self::Policy { log_index, verdict } => event
                .with_decimal("policy-log-index", *log_index)
                .with_field("verdict", hex::encode(verdict)),
            Self::Spend {
                wallet,
                at,
                amounts,
            } => {
                let event = match event.field("wallet") {
                    Some(_) => event,
                    None => event.with_wallet(wallet),
                };
                event
                    .with_decimal("spend-at", *at)
                    .with_field("spend", amounts.as_str())
            }
        }
    }
}

/// A state-store write that a gate leaves to the audit layer, to be
/// committed *with the signature's record*: a TOTP code spent by the same
/// commit that records what it was spent on.
///
/// # Why the seam carries it
///
/// Over a shared database, a gated signature used to cost two durable
/// commits: the gate's (the guard spent, with its own record) and the audit
/// layer's (the signature's record). A gate whose request will be recorded
/// above ([`SignRequest::recorded_above`]) and whose store keeps that
/// log may instead decide on a freshly read guard, sign, and hand the guard
/// write up with the signature; [`crate::Audited`] then commits the write
/// and the signature's record together
/// ([`crate::StateStore::compare_and_swap_all_recorded`]): one commit per
/// signature, and still no spent code without its record and no record of
/// a code that was not spent. If the write conflicts (another replica
/// moved the guard first), the signature is withheld and the request is
/// refused; or, for a write the gate made on records it cached
/// ([`DeferredWrite::optimistic`]), run once more. A signature that reaches [`crate::KeySigner`] with a write
/// still attached is refused too: its gate's condition was never committed
/// (fail closed). Local stores never defer: their path is unchanged.
///
/// A gate may also hand up a check ([`DeferredWrite::unchanged`]): a record
/// it decided on and does not write, which must still be at the version it
/// read when the signature's record commits (see [`crate::Swap`] for why).
#[derive(Clone)]
pub struct DeferredWrite {
    store: Arc<dyn StateStore>,
    key: String,
    expected: Option<u64>,
    /// `None`: a check.
    value: Option<Vec<u8>>,
    done: Arc<dyn Fn(Option<u64>) + Send + Sync>,
    refusal: Denial,
    optimistic: bool,
}

impl DeferredWrite {
    /// A compare-and-swap of `key` in `store` from `expected` to `value`;
    /// `done` is told the new version once it is committed (`None`: it
    /// conflicted and nothing was written), so the gate's cache follows.
    #[must_use]
    pub fn new(
        store: Arc<dyn StateStore>,
        key: String,
        expected: Option<u64>,
        value: Vec<u8>,
        done: Arc<dyn Fn(Option<u64>) + Send + Sync>,
    ) -> Self {
        Self {
            store,
            key,
            expected,
            value: Some(value),
            done,
            refusal: Denial::TotpReplayed,
            optimistic: false,
        }
    }

    /// A check that the record under `key` in `store` is still at `version`
    /// when the signature's record commits, writing nothing; `done` is told
    /// `version` if it held (`None`: it did not, and nothing of the commit
    /// was written).
    #[must_use]
    pub fn unchanged(
        store: Arc<dyn StateStore>,
        key: String,
        version: u64,
        done: Arc<dyn Fn(Option<u64>) + Send + Sync>,
    ) -> Self {
        Self {
            store,
            key,
            expected: Some(version),
            value: None,
            done,
            refusal: Denial::TotpReplayed,
            optimistic: false,
        }
    }

    /// The same write, refusing the request with `refusal` if it conflicts
    /// (what was spent: [`Denial::TotpReplayed`] for a TOTP guard, the
    /// default; [`Denial::VerdictInvalid`] for a policy verdict used
    /// twice).
    #[must_use]
    pub fn refused_as(mut self, refusal: Denial) -> Self {
        self.refusal = refusal;
        self
    }

    /// The same write, made on records the gate cached rather than read
    /// for this request: if it conflicts, the audit layer withholds the
    /// answer and runs the request once more (the gate, told `None`, reads
    /// afresh then) instead of refusing it, since a cached record that
    /// moved on says nothing about the request. Only the conflict of an
    /// optimistic write or check is run again; any other is refused.
    #[must_use]
    pub fn optimistic(mut self) -> Self {
        self.optimistic = true;
        self
    }

    /// Whether the write was made on cached records
    /// ([`DeferredWrite::optimistic`]).
    #[must_use]
    pub fn is_optimistic(&self) -> bool {
        self.optimistic
    }

    /// The refusal of a request whose write conflicted.
    #[must_use]
    pub fn refusal(&self) -> Denial {
        self.refusal
    }

    /// The store written to.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The key written.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The version the record must still be at (`None`: absent).
    #[must_use]
    pub fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// The value written (`None`: a check, which writes nothing).
    #[must_use]
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }

    /// The commit's [`crate::Swap`] for this write or check.
    #[must_use]
    pub fn swap(&self) -> crate::Swap<'_> {
        crate::Swap {
            key: &self.key,
            expected: self.expected,
            value: self.value(),
        }
    }

    /// Tells the gate the outcome.
    pub fn finish(&self, version: Option<u64>) {
        (self.done)(version);
    }
}

impl PartialEq for DeferredWrite {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.expected == other.expected
            && self.value == other.value
            && self.refusal == other.refusal
            && self.optimistic == other.optimistic
    }
}

impl Eq for DeferredWrite {}

impl fmt::Debug for DeferredWrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredWrite")
            .field("store", &self.store)
            .field("key", &self.key)
            .field("expected", &self.expected)
            .field("refusal", &self.refusal)
            .field("optimistic", &self.optimistic)
            .finish_non_exhaustive()
    }
}

/// What the gates an answer passed on its way up established and left to
/// the audit layer: their clearances and their deferred state writes. A
/// [`Signed`] and a [`crate::Decrypted`] each carry one, so gates add to it
/// through one set of builders ([`Cleared`]) whatever the answer is, and
/// [`crate::Audited`] reads it the same way.
///
/// Both lists are empty on a path no gate cleared: an empty `Vec` does not
/// allocate, so a bare backend's answer costs nothing more.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// What each gate on the way established, innermost first.
    pub clearances: Vec<Clearance>,
    /// The gates' state writes that the audit layer commits with the
    /// record, all or nothing ([`DeferredWrite`]); empty on every local
    /// path.
    pub deferred: Vec<DeferredWrite>,
}

impl Evidence {
    /// No clearance and no deferred write (no allocation).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            clearances: Vec::new(),
            deferred: Vec::new(),
        }
    }
}

/// A backend's answer to a [`SignRequest`]: the signature as the backend
/// made it (normalized later by [`crate::KeySigner`]), where it was made,
/// and the evidence of the gates it passed on its way up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The signature, as the backend made it.
    pub signature: RawSignature,
    /// Where it was computed: whether [`crate::KeySigner`] verifies it
    /// against the pinned key before releasing it ([`Origin`]).
    pub origin: Origin,
    /// The gates' clearances and deferred writes ([`Evidence`]).
    pub evidence: Evidence,
}

impl Signed {
    /// A signature made outside this process, no gate has cleared yet
    /// (what a KMS, HSM or enclave backend returns): [`Origin::Backend`],
    /// verified against the pinned key before it is released.
    #[must_use]
    pub fn new(signature: RawSignature) -> Self {
        Self {
            signature,
            origin: Origin::Backend,
            evidence: Evidence::new(),
        }
    }

    /// A signature computed in this process from the held secret (the
    /// software [`crate::Vault`]): [`Origin::InProcess`], released without
    /// a second verification.
    #[must_use]
    pub fn in_process(signature: RawSignature) -> Self {
        Self {
            origin: Origin::InProcess,
            ..Self::new(signature)
        }
    }
}

/// Where a signature was computed, which decides whether
/// [`crate::KeySigner`] verifies it against the pinned key before releasing
/// it ("verify after sign"). Decided once, here, for every algorithm and
/// every front end:
///
/// - [`Origin::Backend`]: a KMS, an HSM, an enclave, anything across a
///   process or device boundary. **Always verified** (ECDSA by the
///   verification equation, which also yields the recovery id a KMS or
///   token does not return; Ed25519 strictly; RSA by `rsa`): the seam
///   cannot see the computation, and what the check catches there is real
///   and not the caller's to prevent: a key alias or token label that now
///   names another key, a faulty device or transport, and a fault induced
///   in a device's deterministic signing (RFC 6979 ECDSA and EdDSA give
///   up their key from one faulted signature beside a correct one of the
///   same message: Ambrose et al., CT-RSA 2018; Poddebniak et al., IEEE
///   EuroS&P 2018; Romailler and Pelissier, FDTC 2017). A network call or
///   a token's signature costs far more than the check.
/// - [`Origin::InProcess`]: computed by this process's software vault
///   from the secret it holds. **Not verified again**, for secp256k1
///   (the Ethereum hot path, which never was: its recovery id comes from
///   the signing computation itself) and for P-256 and Ed25519 alike. The
///   check would cost one verification per signature (JWT signing
///   through the vault took 2.1 to 2.6 times as long with it on, in one
///   run of `benches/jwt.rs`), which the hot path's budget (custody ≤ 1.10×
///   a raw signature) cannot carry, and it guards less here: a fault
///   attacker inside this process's memory or CPU (Rowhammer) shares the
///   address space with the secret and with the check. The signers Ethereum
///   services use (geth, alloy's local signer, k256, ed25519-dalek,
///   libsodium) do not verify either; Bitcoin Core's `CKey::Sign` does, and
///   BIP 340 recommends it. A deployment that fears faults in its own
///   hosts turns the check on for the vault
///   ([`crate::Vault::with_verify_after_sign`]: its answers are then
///   [`Origin::Backend`]) or holds its keys in a KMS or HSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Made outside this process (or by a vault asked to be checked):
    /// verified against the pinned key before release.
    Backend,
    /// Made in this process by the holder of the secret: released as is.
    InProcess,
}

/// An answer that gates clear on its way up to the audit layer: a
/// [`Signed`] or a [`crate::Decrypted`]. Gates are written once over it, so
/// a signature and an unseal pass the same checks and carry the same
/// [`Evidence`], added to by the one set of builders below.
pub trait Cleared: Sized {
    /// The evidence so far.
    fn evidence(&self) -> &Evidence;

    /// The evidence, to add to or take from.
    fn evidence_mut(&mut self) -> &mut Evidence;

    /// The clearances so far, innermost first.
    fn clearances(&self) -> &[Clearance] {
        &self.evidence().clearances
    }

    /// Adds a gate's clearance.
    #[must_use]
    fn with_clearance(mut self, clearance: Clearance) -> Self {
        self.evidence_mut().clearances.push(clearance);
        self
    }

    /// Leaves `write` to the audit layer above ([`DeferredWrite`]), after
    /// any a gate below left.
    #[must_use]
    fn with_deferred(mut self, write: DeferredWrite) -> Self {
        self.evidence_mut().deferred.push(write);
        self
    }

    /// Takes the deferred writes (the audit layer commits them).
    fn take_deferred(&mut self) -> Vec<DeferredWrite> {
        std::mem::take(&mut self.evidence_mut().deferred)
    }
}

impl Cleared for Signed {
    fn evidence(&self) -> &Evidence {
        &self.evidence
    }
    fn evidence_mut(&mut self) -> &mut Evidence {
        &mut self.evidence
    }
}

/// Which kinds of [`KeyRef`] a signing backend resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyKinds {
    /// [`KeyRef::Stored`].
    pub stored: bool,
    /// [`KeyRef::Path`] and [`KeyRef::Wallet`] (an HD master is held).
    pub hd: bool,
}

/// Signing with keys that stay in the backend: a 32-byte digest in, a raw
/// signature out.
pub trait SigningBackend: Send + Sync {
    /// Which key references this backend resolves (no I/O).
    fn key_kinds(&self) -> KeyKinds;

    /// Resolves a key reference and pins its public key. Call once per key
    /// and keep the [`PinnedKey`]: signing never fetches a public key.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::Unsupported`] for a kind of reference
    /// the backend does not resolve, or a backend error.
    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, Error>>;

    /// Signs `request.digest` with `request.key`. Implementations return the
    /// signature their hardware gives, wrapped in [`Signed::new`] (a gate
    /// adds its [`Clearance`] on the way up); [`crate::KeySigner`]
    /// verifies it against the pinned key and normalizes it. Only a signer
    /// computing in this process from the secret it holds answers
    /// [`Signed::in_process`], which is released without that verification
    /// ([`Origin`] says why).
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::Denied`] from a gate, or a backend
    /// error.
    fn sign_digest<'a>(&'a self, request: SignRequest<'a>) -> Pending<'a, Result<Signed, Error>>;
}

/// Wrapping and unwrapping of data keys under a key-encryption key.
pub trait WrappingBackend: Send + Sync {
    /// The KEK new envelopes are wrapped under.
    fn default_kek(&self) -> KekId;

    /// Wraps `key` under `kek`, binding `context`. Arguments are borrowed
    /// only for the call: an implementation that does I/O copies what it
    /// sends before returning.
    ///
    /// # Errors
    /// [`Error::UnknownKek`], or a backend error.
    fn wrap<'a>(
        &'a self,
        kek: &KekId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<Vec<u8>, Error>>;

    /// Unwraps a data key; `context` must equal the one it was wrapped with.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`] for a wrong context, KEK or tampered bytes;
    /// [`Error::UnknownKek`]; or a backend error.
    fn unwrap<'a>(
        &'a self,
        kek: &KekId,
        wrapped: &[u8],
        context: &EncryptionContext,
    ) -> Pending<'a, Result<DataKey, Error>>;

    /// A fresh data key and its wrapped form. The default draws the key from
    /// the OS CSPRNG and calls [`WrappingBackend::wrap`]; KMS overrides it
    /// with `GenerateDataKey`.
    ///
    /// # Errors
    /// As [`WrappingBackend::wrap`], or [`Error::Rng`].
    fn generate_data_key<'a>(
        &'a self,
        kek: &KekId,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<(DataKey, Vec<u8>), Error>> {
        let key = match DataKey::random() {
            Ok(k) => k,
            Err(e) => return Pending::ready(Err(e)),
        };
        self.wrap(kek, &key, context)
            .map(move |r| r.map(|w| (key, w)))
    }
}

/// Export of private keys the backend holds in process (the software vault).
/// HSM and KMS backends do not implement it: their keys cannot leave.
pub trait ExportingBackend: Send + Sync {
    /// The raw secret scalar of a pinned key.
    ///
    /// # Errors
    /// [`Error::KeyNotFound`], [`Error::Denied`] from a gate.
    fn export_private_key<'a>(
        &'a self,
        key: &'a PinnedKey,
        auth: &'a Authorization,
    ) -> Pending<'a, Result<PrivateKeyBytes, Error>>;
}

/// A place where secrets live: the one seam every backend (software vault, AWS
/// KMS, CloudHSM, Nitro enclave) and every gate (audit, TOTP, policy) implements.
/// Object safe: services hold `Arc<dyn KeyBackend>` (a test proves it).
///
/// # Why it is shaped this way
///
/// **Two custody models, one trait.** A secret lives either *inside* the
/// backend and never leaves it (a KMS `ECC_SECG_P256K1` key, an HSM key: the
/// backend signs a 32-byte digest), or *outside* it, wrapped by a
/// key-encryption key (KEK) the backend holds (an HD seed, an imported key, a
/// TOTP secret: the backend wraps and unwraps data keys and the secret is used
/// in process, in zeroizing memory). A backend offers each model as a separate
/// capability trait: [`SigningBackend`], [`WrappingBackend`] and, for secrets
/// that may leave, [`ExportingBackend`]. [`KeyBackend`] is the object every
/// service holds (`Arc<dyn KeyBackend>`); its accessors return `None` for a
/// capability the backend lacks, so the *type* a caller gets back says what it
/// can do, and [`Capabilities::of`] reports all of it before any call is made.
/// An HSM-held key never has an `export` method to call by mistake.
///
/// **Composition, not inheritance.** A gate (TOTP, approvals, policy) wraps a
/// `KeyBackend` and is itself a `KeyBackend`, like alloy's `Either<A, B>` is a
/// `Signer`; so is [`crate::Vault`], which does HD derivation and in-process
/// signing over *any* wrapping backend (a passphrase KEK by default, KMS or
/// an enclave with the `custody-kms` features). Gates see every route to a key
/// (digest signing and export) because both are methods of the capability
/// traits they wrap, and each request carries its [`Intent`] and its
/// [`Authorization`] (TOTP code, later approvals) through every layer.
///
/// **Async without a tax.** A KMS call is network I/O and must not block an
/// executor thread; a software signature is ~50 µs of arithmetic and must not
/// pay for a future. Every method returns [`Pending`]: a ready value stored
/// inline (no allocation, no executor, one `match`) or a boxed future. Async
/// services `.await` it; sync callers (the CLI, FFI bindings) call
/// [`Pending::wait`]. One trait, so the TOTP gate and the Ethereum signer are
/// written once, not as sync and async twins. Methods take `&self`: backends
/// are `Send + Sync` and do their own interior locking, so one
/// `Arc<dyn KeyBackend>` serves every thread.
///
/// **Keys are pinned.** A [`KeyRef`] names a key (a stored id, a BIP32 path, or
/// a wallet name and index); [`SigningBackend::pin`] resolves it once and
/// returns a [`PinnedKey`] that carries its public key. Signing takes the
/// pinned key, so no public key is fetched per signature (a peer bug), and
/// [`crate::normalize`] can find the recovery id that KMS and HSMs do not
/// return by matching the pinned key, and catch a backend that signed with
/// the wrong one.
///
/// **Signatures are normalized in one place.** Backends return a
/// [`RawSignature`] (DER, `r‖s`, or `r‖s` with a recovery id). Callers never
/// see it: [`crate::KeySigner`] always passes it through [`crate::normalize`]
/// (low-s with the parity flipped, recovery id found by recovery).
///
/// **One audit record per signature.** A gate's evidence (the TOTP step it
/// accepted, later the approvals and the policy rule) travels *up* with the
/// answer as a [`Clearance`] in its [`Evidence`], and the audit layer
/// ([`crate::Audited`]) writes one record holding the request, its outcome
/// and every clearance. Gates learn that such a layer is above them from
/// [`SignRequest::recorded_above`], which only that layer can set; a gate
/// used without one records what it lets through itself, and every gate
/// records its own refusals. The alternative (each gate writing its own
/// record) costs a hash-chained, and in production fsynced, record per gate
/// per signature and splits one decision across records an auditor must
/// join.
///
/// **Raw-hash signing is named.** The backend only ever signs digests; the
/// [`Intent`] of a request says what the digest is. A bare 32-byte hash is
/// [`IntentKind::RawDigest`]: gates and policy see it as such and apply the
/// same checks as to a typed transaction.
pub trait KeyBackend: Send + Sync + fmt::Debug {
    /// A short stable name for audit records (`"software"`, `"aws-kms"`).
    fn name(&self) -> &str;

    /// Digest signing with keys held by this backend, if supported.
    fn signing(&self) -> Option<&dyn SigningBackend> {
        None
    }

    /// Data-key wrapping under a KEK held by this backend, if supported.
    fn wrapping(&self) -> Option<&dyn WrappingBackend> {
        None
    }

    /// Export of private keys, if this backend's keys may leave it.
    fn exporting(&self) -> Option<&dyn ExportingBackend> {
        None
    }

    /// Key agreement and decryption with keys held by this backend (a
    /// sealed secret's opening), if supported. A gate answers `Some` only
    /// if it gates it: see [`crate::DecryptingBackend`].
    fn decrypting(&self) -> Option<&dyn DecryptingBackend> {
        None
    }
}

/// What a backend can do, known before any call is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Digest signing, and with which kinds of key reference.
    pub signing: Option<KeyKinds>,
    /// Data-key wrapping.
    pub wrapping: bool,
    /// Private-key export.
    pub exporting: bool,
    /// Key agreement and decryption ([`crate::DecryptingBackend`]).
    pub decrypting: bool,
}

impl Capabilities {
    /// Reads a backend's capabilities from its accessors (so the declaration
    /// and the typed access can never disagree).
    #[must_use]
    pub fn of(backend: &dyn KeyBackend) -> Self {
        Self {
            signing: backend.signing().map(SigningBackend::key_kinds),
            wrapping: backend.wrapping().is_some(),
            exporting: backend.exporting().is_some(),
            decrypting: backend.decrypting().is_some(),
        }
    }
}

/// A shared backend.
pub type SharedBackend = Arc<dyn KeyBackend>;
