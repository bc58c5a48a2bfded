//! Approvals and policies (`shared/CLI.md`, "Approvals and policy"): the
//! relying party approvals are bound to, approvers' devices, challenges,
//! the signed policy log, and the decision every signature of a governed
//! wallet needs.
//!
//! Where things live:
//! - the relying-party configuration (RP ID and origins) in the state
//!   store `--state` names (the keystore directory's, or PostgreSQL shared
//!   by every signer), under `webauthn/relying-party`;
//! - each wallet's policy log (policies and approvers' devices, as
//!   custody-policy's `PolicyLog` keeps it) in that same store, and the
//!   role each approver was added with under `cli/approver-roles/<wallet>`;
//! - the policy key, which signs first policies, new approvers and
//!   verdicts, is the keystore's key of wallet [`POLICY_WALLET`], index 0:
//!   derived from the keystore's master, sealed by its KEK, used through
//!   `KeyBackend` with its signatures in the audit log. The CLI refuses to
//!   sign anything else with it or to export it (or a key that exposes it).
//!
//! Every signature of a governed wallet's key passes
//! `Audited(TotpGate(PolicyGate(…)))` (`crate::commands::gated`): the
//! command hands the gate the approvals, and the gate decides in-line
//! (`PolicyNode`: approvals verified once, the allow signed as a verdict)
//! after the TOTP code passed, so the verdict is in the signature's own
//! audit record; the approvals' counters, the velocity amounts and the
//! verdict are spent only once the key signed. What the gate decided is
//! reported from its observer (`Witness`): the rule and verdict of an
//! allow, the rule or approval that refused.
#![allow(
    rustdoc::bare_urls,
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    reason = "these doc comments are clap's --help text, printed verbatim: URLs, [:port] and <placeholders> are meant literally, and rustdoc markup would show in the terminal (expect cannot be used: rustdoc lints are not checked by rustc, so the expectation would be unfulfilled under clippy)"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64ct::{Base64UrlUnpadded, Encoding};
use clap::{Args, Subcommand};
use custody_core::{
    Audited, Authorization, CasOutcome, DerivationPath, Digest32, Intent, IntentKind, KeyRef,
    KeySigner, Keystore, PinnedKey, RecoverableSignature, SharedBackend, StateStore,
};
use custody_eth::EthSigner;
use custody_policy::gate::{Decided, Observed, Observer, PolicyGate, PolicyNode};
use custody_policy::log::{Change, Entry, EntryAuth, LogState, PolicyLog, RecoveryStatus};
use custody_policy::operation::Operation;
use custody_policy::policy::{Decision, Policy};
use custody_policy::webauthn::{
    AssertionResponse, Credential, CredentialKey, RegistrationResponse, RelyingParty, to_base64url,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::args::{SignHashArgs, SignMessageArgs, SignTxArgs, SignTypedDataArgs};
use crate::error::CliError;

/// The wallet whose key (index 0) is the keystore's policy key.
pub(crate) const POLICY_WALLET: &str = "custody-policy";

/// The state key of the relying-party configuration.
const RP_KEY: &str = "webauthn/relying-party";

/// How long a verdict made by a signing command stays valid (seconds): it
/// is spent by the same command a moment later.
const VERDICT_TTL: u64 = 120;

/// Most bytes of an approvals or credential file.
const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Most assertions in an approvals file.
const MAX_APPROVALS: usize = 64;

/// Most compare-and-swap attempts on a shared record.
const MAX_CAS_ATTEMPTS: usize = 16;

// --- arguments -----------------------------------------------------------------

/// `custody webauthn ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum WebauthnCommand {
    /// Bind this keystore's approvals to a WebAuthn relying party: the RP ID
    /// (a domain) and the exact origins (scheme://host[:port]) approvers'
    /// pages are served from. Needed once before the first `approver add`;
    /// kept in the state store (--state), so every signer sharing it uses
    /// the same one. The origins can be changed later; the RP ID only while
    /// no wallet has a policy log.
    ///
    /// Prints {"rpId", "origins"}.
    ///
    /// Example: custody webauthn config --rp-id custody.example.com --origin https://custody.example.com
    Config(WebauthnConfigArgs),
}

/// `custody webauthn config`.
#[derive(Debug, Args)]
pub(crate) struct WebauthnConfigArgs {
    /// The relying party ID: a domain such as custody.example.com.
    #[arg(long, value_name = "ID")]
    pub(crate) rp_id: String,
    /// An origin approvals may come from, e.g. https://custody.example.com
    /// (repeat for several).
    #[arg(long = "origin", value_name = "URL", required = true)]
    pub(crate) origins: Vec<String>,
}

/// `custody approver ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ApproverCommand {
    /// Add an approver's device (a WebAuthn registration response, as
    /// PublicKeyCredential.toJSON() gives it) to a wallet's policy log.
    ///
    /// A new approver is vouched for by the policy key (the keystore's
    /// wallet `custody-policy`, index 0): the entry is signed with it. Its
    /// id is `<role>-<n>` unless --approver names it; policies name
    /// approvers by these ids, and `policy set` checks that each group's
    /// members were added with the group's role. Another device of an
    /// existing approver (--approver ID) needs --approvals: an assertion of
    /// one of that approver's devices over the challenge `custody
    /// challenge approver-add` prints.
    ///
    /// Prints {"approverId", "credentialId", "fingerprint" (SHA-256 of the
    /// credential's COSE public key), "logIndex"}.
    ///
    /// Example: custody approver add --wallet treasury --role owner --credential ann.json
    Add(ApproverAddArgs),
    /// Recover the account of an approver who lost their devices: a new
    /// device (a registration response) for --approver, signed by the
    /// policy's recovery threshold of distinct support approvers (not the
    /// one recovered): --approvals holds their assertions over the
    /// challenge `custody challenge approver-recover` prints, with the
    /// --activates-at it printed. The device counts for approvals only
    /// from --activates-at on (at least the policy's recovery.delaySeconds
    /// after the entry), and never if any existing device of the wallet
    /// vetoes it before (`custody approver veto`). Both are log entries.
    ///
    /// Prints {"wallet", "recovery" (its id: the entry's hash),
    /// "approverId", "credentialId", "fingerprint", "activatesAt",
    /// "logIndex"}.
    ///
    /// Example: custody approver recover --wallet treasury --approver owner-1 --credential new.json --activates-at 1767225600 --approvals support.json
    Recover(ApproverRecoverArgs),
    /// Veto a pending recovery: an assertion of any existing device of the
    /// wallet (not the recovering one) over the challenge `custody
    /// challenge approver-veto` prints. Refused once the recovery's
    /// activation time has come, or if it is vetoed already.
    ///
    /// Prints {"wallet", "recovery", "approverId" (the one whose recovery
    /// was stopped), "vetoedBy", "logIndex"}.
    ///
    /// Example: custody approver veto --wallet treasury --recovery 0x6a… --approvals mine.json
    Veto(ApproverVetoArgs),
}

/// `custody approver recover` (and `custody challenge approver-recover`).
#[derive(Debug, Args)]
pub(crate) struct ApproverRecoverArgs {
    /// The wallet.
    #[arg(long, value_name = "NAME")]
    pub(crate) wallet: String,
    /// The approver recovered (an existing approver's id).
    #[arg(long, value_name = "ID")]
    pub(crate) approver: String,
    /// The approver's role, checked against the one they were added with.
    #[arg(long, value_name = "R")]
    pub(crate) role: Option<String>,
    /// The new device's registration response JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) credential: PathBuf,
    /// Unix seconds from which the new device counts: what the challenge
    /// printed (the challenge's default: now, plus the policy's delay,
    /// plus an hour to collect the approvals).
    #[arg(long, value_name = "UNIX")]
    pub(crate) activates_at: Option<u64>,
    /// A JSON array of the support approvers' assertions over the
    /// recovery's challenge.
    #[arg(long, value_name = "FILE")]
    pub(crate) approvals: Option<PathBuf>,
}

/// `custody approver veto` (and `custody challenge approver-veto`).
#[derive(Debug, Args)]
pub(crate) struct ApproverVetoArgs {
    /// The wallet.
    #[arg(long, value_name = "NAME")]
    pub(crate) wallet: String,
    /// The recovery's id (hex, as `approver recover` printed it).
    #[arg(long, value_name = "ID")]
    pub(crate) recovery: String,
    /// A JSON array holding an assertion of an existing device of the
    /// wallet over the veto's challenge.
    #[arg(long, value_name = "FILE")]
    pub(crate) approvals: Option<PathBuf>,
}

/// `custody approver add` (and `custody challenge approver-add`).
#[derive(Debug, Args)]
pub(crate) struct ApproverAddArgs {
    /// The wallet.
    #[arg(long, value_name = "NAME")]
    pub(crate) wallet: String,
    /// The approver's role, e.g. owner or support (letters, digits, `_`, `.`;
    /// needed for a new approver).
    #[arg(long, value_name = "R")]
    pub(crate) role: Option<String>,
    /// The registration response JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) credential: PathBuf,
    /// The approver's id: a new one, or an existing approver's (to add
    /// another of their devices, with --approvals).
    #[arg(long, value_name = "ID")]
    pub(crate) approver: Option<String>,
    /// For another device of an existing approver: a JSON array holding an
    /// assertion of one of their devices over this change's challenge.
    #[arg(long, value_name = "FILE")]
    pub(crate) approvals: Option<PathBuf>,
}

/// `custody challenge ...`: the same arguments as the command.
#[derive(Debug, Subcommand)]
pub(crate) enum ChallengeCommand {
    /// The challenge of `custody sign-tx` with these arguments.
    ///
    /// Prints {"operationHash", "challenge" (base64url), "rpId"}.
    ///
    /// Example: custody challenge sign-tx --wallet treasury --index 0 --tx tx.json
    SignTx(SignTxArgs),
    /// The challenge of `custody sign-message` with these arguments.
    SignMessage(SignMessageArgs),
    /// The challenge of `custody sign-typed-data` with these arguments.
    SignTypedData(SignTypedDataArgs),
    /// The challenge of `custody sign-hash` with these arguments.
    SignHash(SignHashArgs),
    /// The challenge of `custody policy set` with this wallet and policy
    /// (it extends the log's current head: a change appended meanwhile
    /// changes it).
    ///
    /// Example: custody challenge policy-set --wallet treasury --file policy.json
    PolicySet(PolicyFileArgs),
    /// The challenge of `custody approver add --approver ID` adding another
    /// device of an existing approver.
    ApproverAdd(ApproverAddArgs),
    /// The challenge of `custody approver recover` with these arguments,
    /// and the activation time it is for.
    ///
    /// Prints {"operationHash", "challenge", "rpId", "activatesAt"}.
    ApproverRecover(ApproverRecoverArgs),
    /// The challenge of `custody approver veto` with these arguments.
    ApproverVeto(ApproverVetoArgs),
}

/// A wallet and a policy file.
#[derive(Debug, Args)]
pub(crate) struct PolicyFileArgs {
    /// The wallet.
    #[arg(long, value_name = "NAME")]
    pub(crate) wallet: String,
    /// The policy JSON (schema: custody-policy's policy.schema.json).
    #[arg(long, value_name = "POLICY.json")]
    pub(crate) file: PathBuf,
}

/// `custody policy ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Set a wallet's policy, appending it to the wallet's signed log in the
    /// state store (--state). --approvals holds assertions over the
    /// challenge `custody challenge policy-set` prints: the governance
    /// quorum of the current policy, or for the first policy of the new one
    /// (whose entry the policy key then signs). From then on every
    /// signature of the wallet's keys needs the policy's approvals.
    ///
    /// Prints {"policyHash", "logIndex"}.
    ///
    /// Example: custody policy set --wallet treasury --file policy.json --approvals approvals.json
    Set(PolicySetArgs),
    /// Show a wallet's current policy, approvers and recoveries, from its
    /// verified log, as a decision now sees them (a recovered device counts
    /// once its activation time has come).
    ///
    /// Prints {"wallet", "logIndex", "policyHash", "policy", "approvers",
    /// "recoveries" (each with "status": pending, vetoed or active)}.
    ///
    /// Example: custody policy show --wallet treasury
    Show(WalletArgs),
    /// List a wallet's policy log entries; with --verify, replay the chain
    /// from its first entry (links, hashes, each entry's authorisation) and
    /// fail with kind policy-log-broken naming the first bad entry.
    ///
    /// Prints {"wallet", "entries", "verified"}.
    ///
    /// Example: custody policy log --wallet treasury --verify
    Log(PolicyLogArgs),
}

/// `custody policy set`.
#[derive(Debug, Args)]
pub(crate) struct PolicySetArgs {
    #[command(flatten)]
    pub(crate) policy: PolicyFileArgs,
    /// A JSON array of approvers' assertions over the change's challenge.
    #[arg(long, value_name = "FILE")]
    pub(crate) approvals: PathBuf,
}

/// A wallet.
#[derive(Debug, Args)]
pub(crate) struct WalletArgs {
    /// The wallet.
    #[arg(long, value_name = "NAME")]
    pub(crate) wallet: String,
}

/// `custody policy log`.
#[derive(Debug, Args)]
pub(crate) struct PolicyLogArgs {
    /// The wallet.
    #[arg(long, value_name = "NAME")]
    pub(crate) wallet: String,
    /// Replay and verify the whole chain.
    #[arg(long)]
    pub(crate) verify: bool,
}

// --- the keystore's policy setup -------------------------------------------------

fn hex0x(bytes: impl AsRef<[u8]>) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The relying party as stored: what `webauthn config` was given.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RpConfig {
    rp_id: String,
    origins: Vec<String>,
}

impl RpConfig {
    fn to_json(&self) -> Value {
        json!({ "rpId": self.rp_id, "origins": self.origins })
    }

    fn relying_party(&self) -> Result<RelyingParty, CliError> {
        Ok(RelyingParty::new(
            self.rp_id.as_str(),
            self.origins.iter().cloned(),
        )?)
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(bytes).ok()?;
        let rp_id = value.get("rpId")?.as_str()?.to_owned();
        let origins = value
            .get("origins")?
            .as_array()?
            .iter()
            .map(|o| o.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { rp_id, origins })
    }

    /// Checks an RP ID and origins a browser would accept together.
    fn checked(rp_id: &str, origins: &[String]) -> Result<Self, CliError> {
        let domain_ok = !rp_id.is_empty()
            && rp_id.len() <= 253
            && rp_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !rp_id.starts_with('.')
            && !rp_id.ends_with('.');
        if !domain_ok {
            return Err(CliError::bad_input(
                "--rp-id: expected a lower-case domain such as custody.example.com (no scheme, no port)",
            ));
        }
        if origins.len() > 16 {
            return Err(CliError::bad_input("--origin: at most 16 origins"));
        }
        let mut out = Vec::with_capacity(origins.len());
        for origin in origins {
            let bad = |why: &str| CliError::bad_input(format!("--origin {origin:?}: {why}"));
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .ok_or_else(|| bad("expected https://HOST[:PORT] (or http:// for localhost)"))?;
            if rest.contains(['/', '?', '#', '@']) || rest.is_empty() {
                return Err(bad(
                    "an origin has no path, query or user: scheme://host[:port]",
                ));
            }
            let host = match rest.rsplit_once(':') {
                Some((host, port)) if !port.is_empty() && port.parse::<u16>().is_ok() => host,
                Some(_) => return Err(bad("the port is not a number")),
                None => rest,
            };
            if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
                return Err(bad("its host is neither the RP ID nor a subdomain of it"));
            }
            if origin.starts_with("http://") && host != "localhost" {
                return Err(bad(
                    "browsers allow WebAuthn over http:// only on localhost: use https://",
                ));
            }
            if !out.contains(origin) {
                out.push(origin.clone());
            }
        }
        Ok(Self {
            rp_id: rp_id.to_owned(),
            origins: out,
        })
    }
}

/// The keystore's policy setup: the relying party (if configured), the
/// policy log and the policy key.
struct Policies {
    rp: Option<RpConfig>,
    log: PolicyLog,
    key: KeySigner,
    state: Arc<dyn StateStore>,
    policy_path: DerivationPath,
    scheme: custody_core::WalletScheme,
}

impl Policies {
    fn open(ks: &Keystore) -> Result<Self, CliError> {
        let state = ks.state();
        // The policy key signs through the audit layer: every entry and
        // verdict it signs is in the audit log.
        let backend: SharedBackend = Arc::new(Audited::new(ks.backend(), ks.audit()));
        let key = KeySigner::pin(
            backend,
            KeyRef::Wallet {
                name: POLICY_WALLET.to_owned(),
                index: 0,
            },
        )
        .wait()?;
        let rp = match state.get(RP_KEY).wait()? {
            None => None,
            Some(record) => Some(RpConfig::parse(&record.value).ok_or_else(|| {
                CliError::new(
                    "policy-log-broken",
                    "the stored relying-party configuration does not parse: run custody webauthn config again",
                )
            })?),
        };
        // Without a relying party no approval verifies: governed wallets
        // (if the configuration was removed) stay refused, never open.
        let relying_party = match &rp {
            Some(config) => config.relying_party()?,
            None => RelyingParty::new("unconfigured.invalid", ["https://unconfigured.invalid"])?,
        };
        let log = PolicyLog::new(Arc::clone(&state), relying_party, *key.key().secp256k1()?);
        let scheme = ks.scheme();
        Ok(Self {
            rp,
            log,
            key,
            state,
            policy_path: scheme.wallet_path(POLICY_WALLET)?,
            scheme,
        })
    }

    /// `wallet`'s verified log as it stands at `at` (Unix seconds):
    /// recovered devices whose delay ran out by then count.
    fn state_at(&self, wallet: &str, at: u64) -> Result<LogState, CliError> {
        let mut state = self.log.load(wallet, None).wait()?;
        state.settle(at);
        Ok(state)
    }

    /// The configured relying party, or `not-found`.
    fn configured(&self) -> Result<&RpConfig, CliError> {
        self.rp.as_ref().ok_or_else(|| {
            CliError::new(
                "not-found",
                "no WebAuthn relying party is configured: run custody webauthn config --rp-id ID --origin URL first",
            )
        })
    }

    /// Signs a log entry's operation with the policy key.
    fn sign_entry(&self, operation: &Operation) -> Result<RecoverableSignature, CliError> {
        Ok(self
            .key
            .sign(
                Digest32(operation.hash().0),
                Intent::typed(IntentKind::PolicyEntry, operation),
                &Authorization::none(),
            )
            .wait()?)
    }

    /// The governed wallet `key` belongs to, if any (as the gate decides
    /// it: by wallet name, or by a path at or under a governed wallet's
    /// node).
    fn wallet_of(&self, key: &PinnedKey) -> Result<Option<String>, CliError> {
        let governed = self.log.governed().wait()?;
        if let Some((name, _)) = key.wallet()
            && governed.iter().any(|w| w == name)
        {
            return Ok(Some(name.to_owned()));
        }
        if let Some(path) = key.path() {
            for wallet in governed {
                if path.starts_with(&self.scheme.wallet_path(&wallet)?) {
                    return Ok(Some(wallet));
                }
            }
        }
        Ok(None)
    }

    /// Refuses a request to sign with the policy key (or a key under its
    /// node) for anyone but the policy log.
    fn refuse_policy_key(&self, key: &PinnedKey) -> Result<(), CliError> {
        if key.path().is_some_and(|p| p.starts_with(&self.policy_path)) {
            return Err(policy_key_forbidden());
        }
        Ok(())
    }

    /// Refuses to export a key that exposes the policy key: at or under its
    /// node, or (with the public xpubs) one whose private key yields an
    /// ancestor of it through its trailing normal steps.
    fn refuse_export(&self, key: &PinnedKey) -> Result<(), CliError> {
        let Some(path) = key.path() else {
            return Ok(());
        };
        let components = path.components();
        let kept = components
            .iter()
            .rposition(|c| c.is_hardened())
            .map_or(0, |i| i + 1);
        let exposed = DerivationPath::from_components(components[..kept].to_vec())?;
        if path.starts_with(&self.policy_path) {
            return Err(policy_key_forbidden());
        }
        if self.policy_path.starts_with(&exposed) {
            // Worded as the TOTP gate's refusal of the same shape, which
            // this check runs before.
            return Err(CliError::new(
                "forbidden",
                format!(
                    "export refused: with the public xpubs, this private key exposes an ancestor \
                     of an enrolled wallet's node or of the keystore's policy key (wallet \
                     {POLICY_WALLET:?}); sign with it instead"
                ),
            ));
        }
        Ok(())
    }

    fn check_wallet(&self, wallet: &str) -> Result<(), CliError> {
        if wallet == POLICY_WALLET {
            return Err(policy_key_forbidden());
        }
        self.scheme
            .wallet_path(wallet)
            .map_err(|e| CliError::from(e).context("--wallet"))?;
        Ok(())
    }
}

fn policy_key_forbidden() -> CliError {
    CliError::new(
        "forbidden",
        format!(
            "wallet {POLICY_WALLET:?} holds the keystore's policy key: it signs policy entries \
             and verdicts only, and never leaves the keystore"
        ),
    )
}

/// `Audited(TotpGate(PolicyGate(inner)))` is built by the caller; this is
/// the `PolicyGate(inner)` layer over the keystore's policy logs, deciding
/// in-line (`PolicyNode`, the policy key signing verdicts) from the
/// approvals a request carries, and telling `witness` what it decided.
///
/// The node counts velocity limits from the keystore's audit log (the
/// file `audit.log`, or the database's per-wallet chains with `--state
/// postgres://`), the same log the `Audited` layer records every signature
/// and its spend in: the state store's spend history is then a cache, and
/// editing or zeroing it resets no limit (`custody_policy::velocity`).
pub(crate) fn gate(
    ks: &Keystore,
    inner: SharedBackend,
    witness: Option<&Witness>,
) -> Result<SharedBackend, CliError> {
    let policies = Policies::open(ks)?;
    let node = PolicyNode::new(
        policies.log.clone(),
        policies.key.clone(),
        Arc::clone(&policies.state),
        VERDICT_TTL,
    )?
    .with_records(ks.audit());
    let mut gate =
        PolicyGate::new(inner, policies.log, policies.state, policies.scheme).with_node(node);
    if let Some(witness) = witness {
        gate = gate.with_observer(witness.observer());
    }
    Ok(Arc::new(gate))
}

/// What the policy gate of one signing command decided, kept for the
/// command's output (the verdict and rule of an allow) and its refusal
/// (the rule, or the approval, that refused): the seam's error carries
/// only the denial's kind.
#[derive(Clone, Default)]
pub(crate) struct Witness(Arc<Mutex<Option<Seen>>>);

enum Seen {
    Decided {
        wallet: String,
        decided: Box<Decided>,
    },
    Refused(CliError),
}

impl Witness {
    fn observer(&self) -> Observer {
        let slot = Arc::clone(&self.0);
        Arc::new(move |observed: Observed<'_>| {
            let seen = match observed {
                Observed::Decided { wallet, decided } => Seen::Decided {
                    wallet: wallet.to_owned(),
                    decided: Box::new(decided.clone()),
                },
                Observed::Refused { error, .. } => match approval_refusal(error) {
                    Some(e) => Seen::Refused(e),
                    None => return,
                },
                _ => return,
            };
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(seen);
            }
        })
    }

    /// The command's answer from the signing `result` and what the gate
    /// decided: with an allow, the `"policy"` member of the output; a
    /// refusal with the rule or approval that refused.
    pub(crate) fn report<T>(
        &self,
        result: Result<T, custody_eth::Error>,
    ) -> Result<(T, Option<Value>), CliError> {
        let seen = self.0.lock().ok().and_then(|mut slot| slot.take());
        match (result, seen) {
            (Ok(value), Some(Seen::Decided { wallet, decided })) => {
                let (Some(signed), Decision::Allow { rule }) =
                    (decided.signed, &decided.evaluation.decision)
                else {
                    return Ok((value, None));
                };
                let verdict_error = |e: custody_policy::verdict::VerdictError| {
                    CliError::new("verdict-invalid", format!("the verdict: {e}"))
                };
                let hash = signed.verdict.hash().map_err(verdict_error)?;
                let output = json!({
                    "wallet": wallet,
                    "logIndex": signed.verdict.log.index,
                    "policyHash": hex0x(signed.verdict.policy_hash),
                    "verdict": hex0x(hash.0),
                    "decision": "allow",
                    "rule": rule,
                });
                Ok((value, Some(output)))
            }
            (Ok(value), _) => Ok((value, None)),
            (Err(_), Some(Seen::Refused(e))) => Err(e),
            (Err(e), Some(Seen::Decided { wallet, decided })) => match decided.signed {
                None => Err(refusal(&wallet, &decided.evaluation.decision)),
                Some(_) => Err(e.into()),
            },
            (Err(e), None) => Err(e.into()),
        }
    }
}

/// A refusal of the approvals or the log as the CLI reports it (a
/// state-store error is reported from the seam's own error instead).
fn approval_refusal(e: &custody_policy::PolicyError) -> Option<CliError> {
    use custody_policy::PolicyError;
    match e {
        PolicyError::State(_) => None,
        PolicyError::Approval { approver, reason } => {
            let who = if approver.is_empty() {
                "an approval".to_owned()
            } else {
                format!("the approval of {approver:?}")
            };
            Some(CliError::new(
                "approvals-required",
                format!("{who} was refused: {reason}"),
            ))
        }
        other => Some(CliError::new(other.kind(), other.to_string())),
    }
}

/// Refuses exports that would expose the policy key (`keystore export`).
pub(crate) fn refuse_export(ks: &Keystore, key: &PinnedKey) -> Result<(), CliError> {
    Policies::open(ks)?.refuse_export(key)
}

// --- approvals files --------------------------------------------------------------

fn read_file(path: &Path, flag: &str) -> Result<String, CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::bad_input(format!("{flag}: {e}")))?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(CliError::bad_input(format!(
            "{flag}: over {MAX_FILE_BYTES} bytes"
        )));
    }
    String::from_utf8(bytes).map_err(|_| CliError::bad_input(format!("{flag}: not UTF-8")))
}

/// An approvals file: a JSON array of assertions, each the object
/// `PublicKeyCredential.toJSON()` gives (or that object's JSON text).
fn read_approvals(path: &Path) -> Result<Vec<String>, CliError> {
    let text = read_file(path, "--approvals")?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::bad_input(format!("--approvals: not JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(CliError::bad_input(
            "--approvals: expected a JSON array of assertions (PublicKeyCredential.toJSON())",
        ));
    };
    if items.len() > MAX_APPROVALS {
        return Err(CliError::bad_input(format!(
            "--approvals: at most {MAX_APPROVALS} assertions"
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(_) => Ok(item.to_string()),
            Value::String(s) => Ok(s),
            _ => Err(CliError::bad_input(format!(
                "--approvals[{i}]: expected an assertion object"
            ))),
        })
        .collect()
}

/// Each assertion with the approver whose device made it.
fn claim(state: &LogState, assertions: &[String]) -> Result<Vec<(String, String)>, CliError> {
    assertions
        .iter()
        .enumerate()
        .map(|(i, json)| {
            let response = AssertionResponse::from_json(json)
                .map_err(|e| CliError::from(e).context(&format!("--approvals[{i}]")))?;
            let owner = state.owner_of(&response.credential_id).ok_or_else(|| {
                CliError::new(
                    "approvals-required",
                    format!(
                        "--approvals[{i}]: credential {} is no approver's device of this wallet",
                        to_base64url(&response.credential_id)
                    ),
                )
            })?;
            Ok((owner.to_owned(), json.clone()))
        })
        .collect()
}

// --- roles ------------------------------------------------------------------------

fn roles_key(wallet: &str) -> String {
    format!("cli/approver-roles/{}", hex::encode(wallet.as_bytes()))
}

fn load_roles(
    state: &dyn StateStore,
    wallet: &str,
) -> Result<(BTreeMap<String, String>, Option<u64>), CliError> {
    match state.get(&roles_key(wallet)).wait()? {
        None => Ok((BTreeMap::new(), None)),
        Some(record) => {
            let roles = serde_json::from_slice(&record.value).map_err(|_| {
                CliError::new(
                    "policy-log-broken",
                    "the stored approver roles do not parse",
                )
            })?;
            Ok((roles, Some(record.version)))
        }
    }
}

fn record_role(
    state: &dyn StateStore,
    wallet: &str,
    approver: &str,
    role: &str,
) -> Result<(), CliError> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let (mut roles, version) = load_roles(state, wallet)?;
        roles.insert(approver.to_owned(), role.to_owned());
        let bytes = serde_json::to_vec(&roles)
            .map_err(|e| CliError::new("io", format!("approver roles: {e}")))?;
        match state
            .compare_and_swap(&roles_key(wallet), version, &bytes)
            .wait()?
        {
            CasOutcome::Swapped { .. } => return Ok(()),
            CasOutcome::Conflict { .. } => {}
        }
    }
    Err(CliError::new(
        "conflict",
        "the approver roles kept changing: try again",
    ))
}

fn check_name(value: &str, flag: &str) -> Result<(), CliError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(CliError::bad_input(format!(
            "{flag}: 1 to 64 letters, digits, '_', '.', '-' or '@'"
        )))
    }
}

// --- commands ---------------------------------------------------------------------

/// `custody webauthn config`.
pub(crate) fn webauthn_config(ks: &Keystore, a: &WebauthnConfigArgs) -> Result<Value, CliError> {
    let config = RpConfig::checked(&a.rp_id, &a.origins)?;
    let policies = Policies::open(ks)?;
    let bytes = serde_json::to_vec(&config.to_json())
        .map_err(|e| CliError::new("io", format!("relying party: {e}")))?;
    let current = policies.state.get(RP_KEY).wait()?;
    if let Some(old) = &policies.rp
        && old.rp_id != config.rp_id
        && !policies.log.governed().wait()?.is_empty()
    {
        return Err(CliError::new(
            "already-exists",
            format!(
                "the RP ID is {:?} and approvers' devices are bound to it: only the origins can change",
                old.rp_id
            ),
        ));
    }
    match policies
        .state
        .compare_and_swap(RP_KEY, current.map(|r| r.version), &bytes)
        .wait()?
    {
        CasOutcome::Swapped { .. } => Ok(config.to_json()),
        CasOutcome::Conflict { .. } => Err(CliError::new(
            "conflict",
            "the relying party was changed meanwhile: try again",
        )),
    }
}

/// The challenge carried by a registration's client data (a registration
/// is vouched for by the policy key's signature on its log entry, so its
/// challenge is the browser's, not one the CLI issued).
fn registration_challenge(response: &RegistrationResponse) -> Result<Vec<u8>, CliError> {
    let bad = || {
        CliError::new(
            "webauthn-malformed",
            "--credential: clientDataJSON.challenge",
        )
    };
    let client: Value = serde_json::from_slice(&response.client_data_json).map_err(|_| bad())?;
    let challenge = client
        .get("challenge")
        .and_then(Value::as_str)
        .ok_or_else(bad)?;
    Base64UrlUnpadded::decode_vec(challenge).map_err(|_| bad())
}

/// The credential of a registration response (`--credential`), new to
/// the log: neither its id nor its key is a device's or a recovery's.
fn new_credential(
    policies: &Policies,
    state: &LogState,
    roles: &BTreeMap<String, String>,
    path: &Path,
) -> Result<Credential, CliError> {
    let rp = policies.configured()?.relying_party()?;
    let text = read_file(path, "--credential")?;
    let response = RegistrationResponse::from_json(&text)
        .map_err(|e| CliError::from(e).context("--credential"))?;
    let challenge = registration_challenge(&response)?;
    let registered = rp
        .verify_registration(&challenge, &response)
        .map_err(|e| CliError::from(e).context("--credential"))?;
    let credential = registered.credential();
    if let Some(owner) = state.owner_of(&credential.id) {
        return Err(CliError::new(
            "already-exists",
            format!("this credential is already a device of approver {owner:?}"),
        ));
    }
    let same_key = |k: &CredentialKey| k.to_cose() == credential.key.to_cose();
    if let Some(owner) = roles
        .keys()
        .find(|id| state.devices(id).iter().any(|c| same_key(&c.key)))
    {
        return Err(CliError::new(
            "already-exists",
            format!("this credential's key is already a device of approver {owner:?}"),
        ));
    }
    if let Some(recovery) = state
        .recoveries()
        .iter()
        .find(|r| r.credential.id == credential.id || same_key(&r.credential.key))
    {
        return Err(CliError::new(
            "already-exists",
            format!(
                "this credential is already the device of a recovery of approver {:?}",
                recovery.approver
            ),
        ));
    }
    Ok(credential)
}

/// SHA-256 of a credential's COSE public key, as both sides show it.
fn fingerprint(key: &CredentialKey) -> String {
    hex0x(Sha256::digest(key.to_cose()))
}

/// The device change `approver add` makes, and whose it is.
struct DeviceChange {
    approver: String,
    role: String,
    new: bool,
    change: Change,
    fingerprint: String,
    credential_id: Vec<u8>,
}

fn device_change(
    policies: &Policies,
    state: &LogState,
    a: &ApproverAddArgs,
) -> Result<DeviceChange, CliError> {
    policies.check_wallet(&a.wallet)?;
    let (roles, _) = load_roles(policies.state.as_ref(), &a.wallet)?;
    let credential = new_credential(policies, state, &roles, &a.credential)?;
    if let Some(role) = &a.role {
        check_name(role, "--role")?;
    }
    let (approver, role, new) = match &a.approver {
        Some(id) => {
            check_name(id, "--approver")?;
            let existing = !state.devices(id).is_empty();
            let role = match (roles.get(id), &a.role) {
                (Some(recorded), Some(given)) if recorded != given => {
                    return Err(CliError::bad_input(format!(
                        "--role: approver {id:?} was added with role {recorded:?}"
                    )));
                }
                (Some(recorded), _) => recorded.clone(),
                (None, Some(given)) => given.clone(),
                (None, None) => {
                    return Err(CliError::bad_input("--role: required for a new approver"));
                }
            };
            (id.clone(), role, !existing)
        }
        None => {
            let role = a
                .role
                .clone()
                .ok_or_else(|| CliError::bad_input("--role: required for a new approver"))?;
            let taken = |id: &str| roles.contains_key(id) || !state.devices(id).is_empty();
            let mut n = roles.values().filter(|r| **r == role).count() + 1;
            while taken(&format!("{role}-{n}")) {
                n += 1;
            }
            (format!("{role}-{n}"), role, true)
        }
    };
    let fingerprint = fingerprint(&credential.key);
    let credential_id = credential.id.clone();
    Ok(DeviceChange {
        change: Change::Device {
            approver: approver.clone(),
            credential,
        },
        approver,
        role,
        new,
        fingerprint,
        credential_id,
    })
}

/// `custody approver add`.
pub(crate) fn approver_add(ks: &Keystore, a: &ApproverAddArgs) -> Result<Value, CliError> {
    let policies = Policies::open(ks)?;
    let state = policies.state_at(&a.wallet, now())?;
    let device = device_change(&policies, &state, a)?;
    let operation = state.next_operation(&device.change);
    let auth = if device.new {
        if a.approvals.is_some() {
            return Err(CliError::bad_input(
                "--approvals: a new approver is vouched for by the policy key; approvals are for another device of an existing one",
            ));
        }
        EntryAuth::PolicyKey(policies.sign_entry(&operation)?)
    } else {
        let path = a.approvals.as_deref().ok_or_else(|| {
            CliError::new(
                "approvals-required",
                format!(
                    "another device of approver {:?} needs an assertion of one of theirs over \
                     the challenge of custody challenge approver-add (--approvals)",
                    device.approver
                ),
            )
        })?;
        let claimed = claim(&state, &read_approvals(path)?)?;
        if !claimed.iter().any(|(who, _)| *who == device.approver) {
            return Err(CliError::new(
                "approvals-required",
                format!(
                    "another device of approver {:?} needs an assertion of one of theirs",
                    device.approver
                ),
            ));
        }
        EntryAuth::Approvals(claimed)
    };
    let checkpoint = policies
        .log
        .append(&a.wallet, device.change, auth, now())
        .wait()?;
    record_role(
        policies.state.as_ref(),
        &a.wallet,
        &device.approver,
        &device.role,
    )?;
    Ok(json!({
        "approverId": device.approver,
        "role": device.role,
        "credentialId": to_base64url(&device.credential_id),
        "fingerprint": device.fingerprint,
        "logIndex": checkpoint.index,
    }))
}

/// How long `custody challenge approver-recover` gives, by default, to
/// collect the support approvals and run `approver recover` (seconds,
/// added to the policy's delay).
const RECOVERY_COLLECT_SECONDS: u64 = 3600;

/// The recovery `approver recover` appends, checked against the log and
/// the policy before anyone is asked to approve it.
struct RecoveryChange {
    change: Change,
    group: String,
    threshold: u32,
    fingerprint: String,
    credential_id: Vec<u8>,
    activates_at: u64,
}

/// The recovery of `a.approver` with `a.credential`, activating at
/// `activates_at`, appended at `at`.
fn recovery_change(
    policies: &Policies,
    state: &LogState,
    a: &ApproverRecoverArgs,
    activates_at: Option<u64>,
    at: u64,
) -> Result<RecoveryChange, CliError> {
    policies.check_wallet(&a.wallet)?;
    check_name(&a.approver, "--approver")?;
    let (roles, _) = load_roles(policies.state.as_ref(), &a.wallet)?;
    if state.devices(&a.approver).is_empty() {
        return Err(CliError::new(
            "not-found",
            format!(
                "--approver: {:?} is no approver of wallet {:?} (a recovery gives an existing approver a new device)",
                a.approver, a.wallet
            ),
        ));
    }
    if let Some(role) = &a.role
        && roles.get(&a.approver) != Some(role)
    {
        return Err(CliError::bad_input(format!(
            "--role: approver {:?} was not added with role {role:?}",
            a.approver
        )));
    }
    let Some(rule) = state.policy().and_then(Policy::recovery) else {
        return Err(CliError::new(
            "policy-denied",
            format!(
                "the policy of wallet {:?} allows no recovery (it has no \"recovery\" member)",
                a.wallet
            ),
        ));
    };
    let earliest = at.saturating_add(rule.delay_seconds);
    let activates_at = activates_at.unwrap_or(earliest.saturating_add(RECOVERY_COLLECT_SECONDS));
    if activates_at < earliest {
        return Err(CliError::bad_input(format!(
            "--activates-at: {activates_at} is less than the policy's {} seconds from now; \
             ask for a new challenge (custody challenge approver-recover)",
            rule.delay_seconds
        )));
    }
    let credential = new_credential(policies, state, &roles, &a.credential)?;
    Ok(RecoveryChange {
        fingerprint: fingerprint(&credential.key),
        credential_id: credential.id.clone(),
        change: Change::Recovery {
            approver: a.approver.clone(),
            credential,
            activates_at,
        },
        group: rule.group.clone(),
        threshold: rule.threshold,
        activates_at,
    })
}

/// `custody approver recover`.
pub(crate) fn approver_recover(ks: &Keystore, a: &ApproverRecoverArgs) -> Result<Value, CliError> {
    let policies = Policies::open(ks)?;
    let rp = policies.configured()?.relying_party()?;
    let at = now();
    let state = policies.state_at(&a.wallet, at)?;
    let Some(activates_at) = a.activates_at else {
        return Err(CliError::bad_input(
            "--activates-at: required, as custody challenge approver-recover printed it (the approvals sign it)",
        ));
    };
    let recovery = recovery_change(&policies, &state, a, Some(activates_at), at)?;
    let path = a.approvals.as_deref().ok_or_else(|| {
        CliError::new(
            "approvals-required",
            format!(
                "a recovery needs {} approvals of group {:?} over the challenge of custody challenge approver-recover (--approvals)",
                recovery.threshold, recovery.group
            ),
        )
    })?;
    let claimed = claim(&state, &read_approvals(path)?)?;
    let operation = state.next_operation(&recovery.change);
    let uv = state.policy().is_none_or(Policy::require_user_verification);
    let verified = state.verify_approvals(&rp, &operation.hash(), &claimed, uv)?;
    let members = state
        .policy()
        .and_then(|p| p.groups().get(&recovery.group))
        .map(|g| g.members.clone())
        .unwrap_or_default();
    let approving: std::collections::BTreeSet<&String> = verified
        .iter()
        .map(|(who, _, _)| who)
        .filter(|who| members.contains(*who) && **who != a.approver)
        .collect();
    let have = u32::try_from(approving.len()).unwrap_or(u32::MAX);
    if have < recovery.threshold {
        return Err(CliError::new(
            "approvals-required",
            format!(
                "{} more approval(s) of group {:?} needed (a recovery: {} distinct members, not the approver recovered)",
                recovery.threshold - have,
                recovery.group,
                recovery.threshold
            ),
        ));
    }
    let checkpoint = policies
        .log
        .append(
            &a.wallet,
            recovery.change,
            EntryAuth::Approvals(claimed),
            at,
        )
        .wait()?;
    Ok(json!({
        "wallet": a.wallet,
        "recovery": hex0x(checkpoint.hash),
        "approverId": a.approver,
        "credentialId": to_base64url(&recovery.credential_id),
        "fingerprint": recovery.fingerprint,
        "activatesAt": recovery.activates_at,
        "logIndex": checkpoint.index,
    }))
}

/// The recovery `--recovery` names, pending in `state` (settled at the
/// veto's time).
fn pending_recovery<'s>(
    state: &'s LogState,
    a: &ApproverVetoArgs,
) -> Result<&'s custody_policy::log::Recovery, CliError> {
    let text = a.recovery.strip_prefix("0x").unwrap_or(&a.recovery);
    let mut id = [0u8; 32];
    hex::decode_to_slice(text, &mut id)
        .map_err(|_| CliError::bad_input("--recovery: expected the recovery's 32-byte hex id"))?;
    let recovery = state
        .recoveries()
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| {
            CliError::new(
                "not-found",
                format!(
                    "--recovery: no recovery {} in wallet {:?}'s log",
                    a.recovery, a.wallet
                ),
            )
        })?;
    match recovery.status {
        RecoveryStatus::Pending => Ok(recovery),
        RecoveryStatus::Vetoed { by } => Err(CliError::new(
            "policy-denied",
            format!("the recovery is vetoed already (log entry {by})"),
        )),
        RecoveryStatus::Active => Err(CliError::new(
            "policy-denied",
            format!(
                "the recovery is active since UNIX time {}: too late to veto",
                recovery.activates_at
            ),
        )),
    }
}

/// `custody approver veto`.
pub(crate) fn approver_veto(ks: &Keystore, a: &ApproverVetoArgs) -> Result<Value, CliError> {
    let policies = Policies::open(ks)?;
    policies.check_wallet(&a.wallet)?;
    let rp = policies.configured()?.relying_party()?;
    let at = now();
    let state = policies.state_at(&a.wallet, at)?;
    let recovery = pending_recovery(&state, a)?;
    let (id, approver) = (recovery.id, recovery.approver.clone());
    let change = Change::Veto { recovery: id };
    let path = a.approvals.as_deref().ok_or_else(|| {
        CliError::new(
            "approvals-required",
            "a veto needs an assertion of an existing device of the wallet over the challenge of custody challenge approver-veto (--approvals)",
        )
    })?;
    let claimed = claim(&state, &read_approvals(path)?)?;
    let uv = state.policy().is_none_or(Policy::require_user_verification);
    let verified =
        state.verify_approvals(&rp, &state.next_operation(&change).hash(), &claimed, uv)?;
    let by: std::collections::BTreeSet<String> =
        verified.into_iter().map(|(who, _, _)| who).collect();
    let checkpoint = policies
        .log
        .append(&a.wallet, change, EntryAuth::Approvals(claimed), at)
        .wait()?;
    Ok(json!({
        "wallet": a.wallet,
        "recovery": hex0x(id),
        "approverId": approver,
        "vetoedBy": by,
        "logIndex": checkpoint.index,
    }))
}

/// A policy file for `--wallet`.
fn read_policy(a: &PolicyFileArgs) -> Result<Policy, CliError> {
    let text = read_file(&a.file, "--file")?;
    let policy =
        Policy::from_json(text.as_bytes()).map_err(|e| CliError::from(e).context("--file"))?;
    if policy.wallet() != a.wallet {
        return Err(CliError::bad_input(format!(
            "--file: the policy is for wallet {:?}, not {:?}",
            policy.wallet(),
            a.wallet
        )));
    }
    Ok(policy)
}

/// Every member of every group is an approver of the wallet, added with
/// the group's role.
fn check_members(
    policies: &Policies,
    state: &LogState,
    policy: &Policy,
    wallet: &str,
) -> Result<(), CliError> {
    let (roles, _) = load_roles(policies.state.as_ref(), wallet)?;
    for (name, group) in policy.groups() {
        for member in &group.members {
            if state.devices(member).is_empty() {
                return Err(CliError::new(
                    "policy-invalid",
                    format!(
                        "--file: group {name:?}: {member:?} is no approver of wallet {wallet:?} \
                         (add their device with custody approver add)"
                    ),
                ));
            }
            match roles.get(member) {
                Some(role) if *role == group.role => {}
                Some(role) => {
                    return Err(CliError::new(
                        "policy-invalid",
                        format!(
                            "--file: group {name:?} has role {:?}, but {member:?} was added as {role:?}",
                            group.role
                        ),
                    ));
                }
                None => {
                    return Err(CliError::new(
                        "policy-invalid",
                        format!("--file: group {name:?}: {member:?} has no recorded role"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `custody policy set`.
pub(crate) fn policy_set(ks: &Keystore, a: &PolicySetArgs) -> Result<Value, CliError> {
    let policies = Policies::open(ks)?;
    let wallet = a.policy.wallet.as_str();
    policies.check_wallet(wallet)?;
    let rp = policies.configured()?.relying_party()?;
    let policy = read_policy(&a.policy)?;
    let state = policies.state_at(wallet, now())?;
    check_members(&policies, &state, &policy, wallet)?;
    let claimed = claim(&state, &read_approvals(&a.approvals)?)?;
    let change = Change::Policy(Box::new(policy.clone()));
    let operation = state.next_operation(&change);
    // The first policy is agreed by its own governance quorum (and signed
    // by the policy key); a later one by the current policy's quorum.
    let governing = state.policy().unwrap_or(&policy);
    let verified = state.verify_approvals(
        &rp,
        &operation.hash(),
        &claimed,
        governing.require_user_verification(),
    )?;
    let approvers = verified.iter().map(|(who, _, _)| who.clone()).collect();
    let missing = governing.governance_missing(&approvers);
    if missing > 0 {
        let which = if state.policy().is_some() {
            "the current policy's"
        } else {
            "the new policy's"
        };
        return Err(CliError::new(
            "approvals-required",
            format!(
                "{missing} more approval(s) of group {:?} needed ({which} governance quorum: {} of it)",
                governing.governance().group,
                governing.governance().threshold
            ),
        ));
    }
    let auth = if state.policy().is_none() {
        for (approver, credential, count) in &verified {
            policies
                .log
                .counters()
                .record_counter(credential, *count)
                .wait()
                .map_err(|e| {
                    CliError::from(custody_policy::PolicyError::Approval {
                        approver: approver.clone(),
                        reason: e.to_string(),
                    })
                })?;
        }
        EntryAuth::PolicyKey(policies.sign_entry(&operation)?)
    } else {
        EntryAuth::Approvals(claimed)
    };
    let checkpoint = policies.log.append(wallet, change, auth, now()).wait()?;
    Ok(json!({
        "wallet": wallet,
        "policyHash": hex0x(policy.hash()),
        "logIndex": checkpoint.index,
    }))
}

/// `custody policy show`.
pub(crate) fn policy_show(ks: &Keystore, a: &WalletArgs) -> Result<Value, CliError> {
    let policies = Policies::open(ks)?;
    // As a decision now sees it: recovered devices whose delay ran out
    // count.
    let state = policies.state_at(&a.wallet, now())?;
    let Some(head) = state.head() else {
        return Err(CliError::new(
            "not-found",
            format!("wallet {:?} has no policy log", a.wallet),
        ));
    };
    let (roles, _) = load_roles(policies.state.as_ref(), &a.wallet)?;
    let approvers: Vec<Value> = roles
        .iter()
        .filter(|(id, _)| !state.devices(id).is_empty())
        .map(|(id, role)| {
            let devices: Vec<Value> = state
                .devices(id)
                .iter()
                .map(|c| {
                    json!({
                        "credentialId": to_base64url(&c.id),
                        "fingerprint": fingerprint(&c.key),
                    })
                })
                .collect();
            json!({ "approverId": id, "role": role, "devices": devices })
        })
        .collect();
    let recoveries: Vec<Value> = state
        .recoveries()
        .iter()
        .map(|r| {
            let (status, vetoed_by) = match r.status {
                RecoveryStatus::Pending => ("pending", None),
                RecoveryStatus::Vetoed { by } => ("vetoed", Some(by)),
                RecoveryStatus::Active => ("active", None),
            };
            json!({
                "recovery": hex0x(r.id),
                "logIndex": r.index,
                "approverId": r.approver,
                "credentialId": to_base64url(&r.credential.id),
                "fingerprint": fingerprint(&r.credential.key),
                "activatesAt": r.activates_at,
                "status": status,
                "vetoedAt": vetoed_by,
            })
        })
        .collect();
    Ok(json!({
        "wallet": a.wallet,
        "logIndex": head.index,
        "policyHash": state.policy().map(|p| hex0x(p.hash())),
        "policy": state.policy().map(Policy::to_json),
        "approvers": approvers,
        "recoveries": recoveries,
    }))
}

/// The stored entries of `wallet`'s log, head back to the first, read
/// without replaying their authorisations (what `policy log` lists).
fn stored_entries(state: &dyn StateStore, wallet: &str) -> Result<Vec<Entry>, CliError> {
    let prefix = format!("policy/{}", hex::encode(wallet.as_bytes()));
    let broken = |index: u64, reason: &str| {
        CliError::new(
            "policy-log-broken",
            format!("policy log of {wallet:?}, entry {index}: {reason}"),
        )
    };
    let Some(head) = state.get(&format!("{prefix}/head")).wait()? else {
        return Ok(Vec::new());
    };
    let head: Value =
        serde_json::from_slice(&head.value).map_err(|_| broken(0, "the head does not parse"))?;
    let (Some(mut index), Some(mut hash)) = (
        head.get("index").and_then(Value::as_u64),
        head.get("hash").and_then(Value::as_str).map(str::to_owned),
    ) else {
        return Err(broken(0, "the head does not parse"));
    };
    let mut entries = Vec::new();
    loop {
        let record = state
            .get(&format!("{prefix}/entry/{index}/{hash}"))
            .wait()?
            .ok_or_else(|| broken(index, "the entry is missing"))?;
        let entry = Entry::from_json(&record.value, index)?;
        if hex::encode(entry.hash()) != hash {
            return Err(broken(
                index,
                "the entry's hash is not the one that names it",
            ));
        }
        hash = hex::encode(entry.previous);
        entries.push(entry);
        if index == 0 {
            break;
        }
        index -= 1;
    }
    entries.reverse();
    Ok(entries)
}

/// `custody policy log`.
pub(crate) fn policy_log(ks: &Keystore, a: &PolicyLogArgs) -> Result<Value, CliError> {
    let policies = Policies::open(ks)?;
    let entries = if a.verify {
        policies.log.entries(&a.wallet).wait()?
    } else {
        stored_entries(policies.state.as_ref(), &a.wallet)?
    };
    if entries.is_empty() {
        return Err(CliError::new(
            "not-found",
            format!("wallet {:?} has no policy log", a.wallet),
        ));
    }
    let entries: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let mut value = entry.to_json();
            value["hash"] = Value::String(hex0x(entry.hash()));
            value["previous"] = Value::String(hex0x(entry.previous));
            if let Change::Policy(policy) = &entry.change {
                value["policyHash"] = Value::String(hex0x(policy.hash()));
            }
            value
        })
        .collect();
    Ok(json!({
        "wallet": a.wallet,
        "entries": entries,
        "verified": a.verify.then_some(true),
    }))
}

// --- challenges and signing ----------------------------------------------------------

/// The challenge JSON of an operation.
fn challenge_json(policies: &Policies, operation: &Operation) -> Result<Value, CliError> {
    let rp = policies.configured()?;
    let hash = operation.hash();
    Ok(json!({
        "operationHash": hash.to_hex(),
        "challenge": to_base64url(hash.as_bytes()),
        "rpId": rp.rp_id,
    }))
}

/// `custody challenge sign-*`: the operation the signer would be asked.
pub(crate) fn challenge(ks: &Keystore, operation: &Operation) -> Result<Value, CliError> {
    challenge_json(&Policies::open(ks)?, operation)
}

/// `custody challenge policy-set`.
pub(crate) fn challenge_policy_set(ks: &Keystore, a: &PolicyFileArgs) -> Result<Value, CliError> {
    let policies = Policies::open(ks)?;
    policies.check_wallet(&a.wallet)?;
    let policy = read_policy(a)?;
    let state = policies.state_at(&a.wallet, now())?;
    let operation = state.next_operation(&Change::Policy(Box::new(policy)));
    challenge_json(&policies, &operation)
}

/// `custody challenge approver-add`.
pub(crate) fn challenge_approver_add(
    ks: &Keystore,
    a: &ApproverAddArgs,
) -> Result<Value, CliError> {
    let policies = Policies::open(ks)?;
    let state = policies.state_at(&a.wallet, now())?;
    let device = device_change(&policies, &state, a)?;
    if device.new {
        return Err(CliError::bad_input(
            "--approver: a new approver needs no approvals (the policy key vouches for them); \
             name an existing approver to add another of their devices",
        ));
    }
    challenge_json(&policies, &state.next_operation(&device.change))
}

/// `custody challenge approver-recover`.
pub(crate) fn challenge_approver_recover(
    ks: &Keystore,
    a: &ApproverRecoverArgs,
) -> Result<Value, CliError> {
    let policies = Policies::open(ks)?;
    let state = policies.state_at(&a.wallet, now())?;
    let recovery = recovery_change(&policies, &state, a, a.activates_at, now())?;
    let mut out = challenge_json(&policies, &state.next_operation(&recovery.change))?;
    out["activatesAt"] = recovery.activates_at.into();
    Ok(out)
}

/// `custody challenge approver-veto`.
pub(crate) fn challenge_approver_veto(
    ks: &Keystore,
    a: &ApproverVetoArgs,
) -> Result<Value, CliError> {
    let policies = Policies::open(ks)?;
    policies.check_wallet(&a.wallet)?;
    let state = policies.state_at(&a.wallet, now())?;
    let id = pending_recovery(&state, a)?.id;
    challenge_json(
        &policies,
        &state.next_operation(&Change::Veto { recovery: id }),
    )
}

/// The operation a signing command asks of `signer`'s key.
pub(crate) fn operation_of(signer: &EthSigner, kind: OperationInput) -> Operation {
    let signer = *signer.public_key();
    match kind {
        OperationInput::Transaction(tx) => Operation::Transaction { signer, tx },
        OperationInput::Message(message) => Operation::PersonalMessage { signer, message },
        OperationInput::TypedData(data) => Operation::TypedData {
            signer,
            data: Box::new(data),
        },
        OperationInput::Digest(digest) => Operation::RawDigest { signer, digest },
    }
}

/// What a signing command signs.
pub(crate) enum OperationInput {
    /// A transaction.
    Transaction(custody_eth::Transaction),
    /// An EIP-191 message's bytes.
    Message(Vec<u8>),
    /// EIP-712 typed data.
    TypedData(custody_eth::TypedData),
    /// A bare digest.
    Digest(Digest32),
}

/// The authorization a signing command hands its gated signer: for a
/// governed key, `auth` with the approvals of `approvals` (the policy gate
/// decides from them, in-line, inside `Audited(TotpGate(PolicyGate(…)))`,
/// so the verdict lands in the signature's audit record and nothing is
/// spent unless the key signs). A key no policy governs passes unchanged
/// (approvals for it are refused as bad input); the policy key itself is
/// refused.
pub(crate) fn authorize(
    ks: &Keystore,
    signer: &EthSigner,
    approvals: Option<&Path>,
    auth: Authorization,
) -> Result<Authorization, CliError> {
    let policies = Policies::open(ks)?;
    let key = signer.key_signer().key();
    policies.refuse_policy_key(key)?;
    if policies.wallet_of(key)?.is_none() {
        if approvals.is_some() {
            return Err(CliError::bad_input(
                "--approvals: no policy governs this key",
            ));
        }
        return Ok(auth);
    }
    Ok(match approvals {
        Some(path) => auth.with_approvals(read_approvals(path)?),
        None => auth,
    })
}

/// A decision other than allow as the CLI reports it.
fn refusal(wallet: &str, decision: &Decision) -> CliError {
    match decision {
        Decision::Deny { rule } => CliError::new(
            "policy-denied",
            format!("the policy of wallet {wallet:?} denies this operation: rule {rule:?}"),
        ),
        Decision::Vetoed { rule, by } => CliError::new(
            "policy-denied",
            format!("rule {rule:?} of wallet {wallet:?}: vetoed by {by:?}"),
        ),
        Decision::ApprovalsRequired { rule, missing } => {
            let needs: Vec<String> = missing
                .iter()
                .map(|(group, n)| format!("{n} more of group {group:?}"))
                .collect();
            CliError::new(
                "approvals-required",
                format!(
                    "rule {rule:?} of wallet {wallet:?} needs {} approval(s): {}",
                    missing.iter().map(|(_, n)| n).sum::<u32>(),
                    needs.join(", ")
                ),
            )
        }
        Decision::Delayed { rule, until } => CliError::new(
            "approvals-required",
            format!("rule {rule:?} of wallet {wallet:?} allows this from UNIX time {until}"),
        ),
        other => CliError::new(
            "policy-denied",
            format!("the policy of wallet {wallet:?} decided {}", other.as_str()),
        ),
    }
}
