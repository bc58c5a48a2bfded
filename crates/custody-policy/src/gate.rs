//! The two roles: [`PolicyNode`] decides (approvals verified, the policy
//! evaluated, an allow signed as a verdict with the policy key) and
//! [`PolicyGate`] enforces (it wraps a [`KeyBackend`] and is one, and signs
//! for a governed wallet only a digest that a valid verdict covers).
//!
//! In one process (the embedded default) the gate holds the node and
//! decides in-line from the approvals in the request's
//! [`Authorization::approvals`]; split, the verdict travels with the
//! request ([`Authorization::verdict`]) and the gate only checks it. Either
//! way the same checks run: the verdict is the policy key's, for this
//! wallet, operation, digest, key and kind, made at the log's current head
//! (a policy change voids older verdicts), within its validity window, and
//! not used before (spent by compare-and-swap in the state store).
//!
//! Nothing is spent for a request that does not sign: the gate checks
//! first, reading only (an in-line decision verifies the approvals and
//! checks their counters without writing them), calls the backend below,
//! and only once it signed spends the approvals' counters, the transfers
//! against the velocity limits and the verdict's one use. Under an audit
//! layer ([`SignRequest::recorded_above`]) these are not written by the
//! gate: each is a compare-and-swap from what the decision read, handed up
//! with the signature ([`DeferredWrite`]) for [`custody_core::Audited`] to
//! commit with the signature's record, so that a verdict is used, counters
//! move and velocity is spent if and only if the record naming the verdict
//! is kept. A commit that conflicts (a concurrent request spent the same
//! verdict, approval or history first) writes nothing of this request and
//! withholds the signature, refused with the conflicting write's kind
//! (`verdict-invalid` for the verdict and the history, `approvals-required`
//! for a counter). Without an audit layer the gate commits them itself
//! once the key signed.
//!
//! Which keys are governed: a wallet's keys once its policy log exists —
//! by wallet name, and by BIP32 path at or under the wallet's node (so a
//! `--path` request is no route around it). Exports of a governed wallet's
//! keys are refused.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use custody_core::{
    AuditSink, Authorization, CasOutcome, Clearance, Cleared, DecryptRequest, Decrypted,
    DecryptingBackend, DeferredWrite, Denial, Error, ExportingBackend, Intent, IntentKind,
    KeyBackend, KeyKinds, KeyRef, KeySigner, Pending, PinnedKey, PrivateKeyBytes, SharedBackend,
    SignRequest, Signed, SigningBackend, StateStore, WalletScheme, WrappingBackend,
};
use custody_eth::{Authorization as EthAuthorization, PersonalMessage, Transaction, TypedData};
use serde_json::{Value, json};

use crate::delay::{MAX_PROPOSAL_APPROVALS, Proposal, Veto, proposal_key, veto_key};
use crate::error::PolicyError;
use crate::facts::{Asset, Facts};
use crate::log::{MAX_CAS_ATTEMPTS, PolicyLog, distinct};
use crate::operation::{Operation, OperationHash};
use crate::policy::{Decision, EvaluationInput, Spend};
use crate::verdict::{SignedVerdict, Verdict, VerdictError};
use crate::webauthn::AssertionResponse;
use crate::webauthn::CounterSwap;

/// A source of Unix seconds (injected so tests control time).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The system clock.
#[must_use]
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// What a node decided: the evaluation (decision and trace) and, for an
/// allow, the signed verdict.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The evaluation.
    pub evaluation: crate::policy::Verdict,
    /// The signed verdict, if allowed.
    pub signed: Option<SignedVerdict>,
}

/// What an allow used, to commit once the signature it covers is made
/// ([`PolicyNode::decide_pending`], [`PolicyNode::commit`]): the
/// approvals' counters and the operation's transfers.
#[derive(Debug, Clone)]
pub struct Spending {
    wallet: String,
    /// (approver, credential id, counter presented).
    counters: Vec<(String, Vec<u8>, u32)>,
    /// The writes that record those counters, from the versions the
    /// decision read (for a commit deferred to the signature's record).
    counter_swaps: Vec<CounterSwap>,
    history: Vec<Spend>,
    version: Option<u64>,
    facts: Facts,
    policy: crate::policy::Policy,
    now: u64,
}

impl Spending {
    /// The writes that spend what the allow used, each a compare-and-swap
    /// from what the decision read, for the audit layer to commit with the
    /// signature's record ([`DeferredWrite`]): the approvals' counters
    /// (`counters` is the store they live in) and the spend history (in
    /// `state`). A concurrent request that moved any of them first makes
    /// the commit conflict: nothing of this one is then written, and the
    /// signature is withheld.
    fn deferred(
        &self,
        counters: &Arc<dyn StateStore>,
        state: &Arc<dyn StateStore>,
    ) -> Vec<DeferredWrite> {
        let mut writes: Vec<DeferredWrite> = self
            .counter_swaps
            .iter()
            .map(|swap| {
                deferred(
                    counters,
                    swap.key.clone(),
                    swap.expected,
                    swap.value.to_vec(),
                )
                .refused_as(Denial::ApprovalsRequired)
            })
            .collect();
        if let Some(history) =
            next_history(self.history.clone(), &self.facts, self.now, &self.policy)
        {
            // Decided on a history another signature has since moved: the
            // verdict is stale.
            writes.push(
                deferred(
                    state,
                    spends_key(&self.wallet),
                    self.version,
                    encode_history(&history),
                )
                .refused_as(Denial::VerdictInvalid),
            );
        }
        writes
    }
}

impl Spending {
    /// The spend the signature's record carries ([`Clearance::Spend`]),
    /// if value leaves.
    fn clearance(&self) -> Option<Clearance> {
        crate::velocity::spend_text(&self.facts).map(|amounts| Clearance::Spend {
            wallet: self.wallet.clone(),
            at: self.now,
            amounts,
        })
    }
}

/// A deferred compare-and-swap whose outcome nothing caches.
fn deferred(
    store: &Arc<dyn StateStore>,
    key: String,
    expected: Option<u64>,
    value: Vec<u8>,
) -> DeferredWrite {
    DeferredWrite::new(Arc::clone(store), key, expected, value, Arc::new(|_| {}))
}

/// The policy role: verifies approvals, evaluates the wallet's policy, and
/// signs allows as verdicts with the policy key.
#[derive(Clone)]
pub struct PolicyNode {
    log: PolicyLog,
    key: KeySigner,
    state: Arc<dyn StateStore>,
    ttl: u64,
    /// The audit log velocity is counted from ([`crate::velocity`]).
    records: Option<Arc<dyn AuditSink>>,
}

impl fmt::Debug for PolicyNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyNode")
            .field("log", &self.log)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn spends_key(wallet: &str) -> String {
    format!("policy/{}/spends", hex::encode(wallet.as_bytes()))
}

fn verdict_key(wallet: &str, hash: &[u8; 32]) -> String {
    format!(
        "policy/{}/verdict/{}",
        hex::encode(wallet.as_bytes()),
        hex::encode(hash)
    )
}

impl PolicyNode {
    /// A node deciding over `log`, signing verdicts valid for `ttl`
    /// seconds with `key` (the policy key: its public key must be the
    /// log's), keeping spends in `state`.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`] if `key` is not the log's policy key.
    pub fn new(
        log: PolicyLog,
        key: KeySigner,
        state: Arc<dyn StateStore>,
        ttl: u64,
    ) -> Result<Self, PolicyError> {
        if key.key().secp256k1().ok() != Some(log.policy_key()) {
            return Err(PolicyError::invalid(
                "policy key",
                "the signer is not the log's policy key",
            ));
        }
        Ok(Self {
            log,
            key,
            state,
            ttl,
            records: None,
        })
    }

    /// The same node counting velocity limits from `records`, the audit
    /// log the signatures of its wallets are recorded in (see
    /// [`crate::velocity`]): the state store's spend history is then only
    /// a cache, and editing it does not reset a limit.
    #[must_use]
    pub fn with_records(mut self, records: Arc<dyn AuditSink>) -> Self {
        self.records = Some(records);
        self
    }

    /// What `wallet` spent that the limits of `policy` can see at `now`:
    /// from the audit log if the node has one, else `cached` (the state
    /// store's history).
    async fn counted(
        &self,
        wallet: &str,
        policy: &crate::policy::Policy,
        now: u64,
        cached: &[Spend],
    ) -> Result<Vec<Spend>, PolicyError> {
        let Some(records) = &self.records else {
            return Ok(cached.to_vec());
        };
        let window = policy
            .limits()
            .iter()
            .map(|l| l.window_seconds)
            .max()
            .unwrap_or(0);
        if window == 0 {
            return Ok(Vec::new());
        }
        let since = now
            .saturating_sub(window)
            .saturating_sub(crate::velocity::CLOCK_SLACK_SECONDS)
            .saturating_mul(1000);
        let read = records.wallet_records(wallet, since).await?;
        crate::velocity::spends_of_records(&read)
    }

    /// The log the node decides over.
    #[must_use]
    pub fn log(&self) -> &PolicyLog {
        &self.log
    }

    /// Decides `operation` on `wallet` with `approvals` (assertions as
    /// `toJSON()` text) at `now`, and for an allow commits what it used at
    /// once: the approvals' counters are spent and the operation's
    /// transfers counted against the limits. This is the split policy
    /// node's call (it cannot see whether the signature is then made); an
    /// in-line [`PolicyGate`] uses [`PolicyNode::decide_pending`] and
    /// commits only once the key signed.
    ///
    /// # Errors
    /// [`PolicyError::Approval`] for an assertion that does not verify,
    /// comes from no approver's device or presents a counter that did not
    /// go up; log and state-store errors.
    pub fn decide<'a>(
        &'a self,
        wallet: &'a str,
        operation: &'a Operation,
        approvals: &'a [String],
        now: u64,
    ) -> Pending<'a, Result<Decided, PolicyError>> {
        Pending::drive(async move {
            let (decided, spending) = self
                .decide_pending(wallet, operation, approvals, now)
                .await?;
            if let Some(spending) = &spending {
                self.commit(spending).await?;
            }
            Ok(decided)
        })
    }

    /// Decides as [`PolicyNode::decide`] does but writes nothing for an
    /// allow: the approvals' counters are checked against the stored ones
    /// (read only), the verdict is signed, and what the allow uses (the
    /// counters, the transfers) is returned as a [`Spending`] for
    /// [`PolicyNode::commit`] once the signature it covers is made. A
    /// request refused later (by another gate, by the backend) thus spends
    /// no approval and no limit. A delayed operation seen for the first
    /// time is still proposed (that is its outcome: the delay starts, its
    /// approvals' counters spent with the proposal).
    ///
    /// # Errors
    /// As [`PolicyNode::decide`].
    pub fn decide_pending<'a>(
        &'a self,
        wallet: &'a str,
        operation: &'a Operation,
        approvals: &'a [String],
        now: u64,
    ) -> Pending<'a, Result<(Decided, Option<Spending>), PolicyError>> {
        Pending::drive(async move {
            let mut state = self.log.load(wallet, None).await?;
            // Recovered devices count once their delay has run out.
            state.settle(now);
            let (Some(policy), Some(head)) = (state.policy(), state.head()) else {
                return Err(PolicyError::invalid("wallet", "no policy governs it"));
            };
            let mut claimed = Vec::with_capacity(approvals.len());
            for json in approvals {
                let response =
                    AssertionResponse::from_json(json).map_err(|e| PolicyError::Approval {
                        approver: String::new(),
                        reason: e.to_string(),
                    })?;
                let owner = state.owner_of(&response.credential_id).ok_or_else(|| {
                    PolicyError::Approval {
                        approver: String::new(),
                        reason: "the credential is no approver's device".into(),
                    }
                })?;
                claimed.push((owner.to_owned(), json.clone()));
            }
            let hash = operation.hash();
            let uv = policy.require_user_verification();
            let rp = self.log.relying_party();
            let verified = state.verify_approvals(rp, &hash, &claimed, uv)?;
            // A replayed assertion (its counter not above the stored one)
            // is refused now, before anything is signed; the counters are
            // written only by the commit.
            let mut counter_swaps = Vec::with_capacity(verified.len());
            for (approver, credential, count) in &verified {
                let swap = self
                    .log
                    .counters()
                    .check_counter(credential, *count)
                    .await
                    .map_err(|e| PolicyError::Approval {
                        approver: approver.clone(),
                        reason: e.to_string(),
                    })?;
                counter_swaps.extend(swap);
            }
            // A delayed operation proposed before: its approvals (verified
            // again; their counters were spent when it was proposed) count
            // with today's, and its time starts the delay.
            let proposal = self.proposal(wallet, &hash, policy.hash()).await?;
            let earlier = match &proposal {
                Some(p) => state.verify_approvals(rp, &hash, &p.approvals, uv)?,
                None => Vec::new(),
            };
            let vetoed_by = self.vetoed_by(&state, wallet, &hash).await?;
            let (history, version) = self.spends(wallet).await?;
            let counted = self.counted(wallet, policy, now, &history).await?;
            let mut approvers: BTreeSet<String> = distinct(&verified);
            approvers.extend(distinct(&earlier));
            let facts = Facts::of(operation);
            let evaluation = policy.evaluate(
                &facts,
                &EvaluationInput {
                    approvers: &approvers,
                    history: &counted,
                    now,
                    proposed_at: proposal.as_ref().map(|p| p.proposed_at),
                    vetoed_by: vetoed_by.as_deref(),
                },
            );
            if matches!(evaluation.decision, Decision::Delayed { .. }) && proposal.is_none() {
                self.propose(wallet, hash, policy.hash(), now, &claimed, &verified)
                    .await?;
            }
            let Decision::Allow { rule } = &evaluation.decision else {
                return Ok((
                    Decided {
                        evaluation,
                        signed: None,
                    },
                    None,
                ));
            };
            let (Some(signer), Some(digest)) = (operation.signer(), operation.signing_digest())
            else {
                return Err(PolicyError::invalid("operation", "nothing to sign"));
            };
            let verdict = Verdict {
                wallet: wallet.to_owned(),
                operation: hash,
                digest,
                signer: signer.to_compressed().to_vec(),
                kind: operation.kind(),
                log: head,
                policy_hash: policy.hash(),
                rule: rule.clone(),
                issued_at: now,
                expires_at: now.saturating_add(self.ttl),
            };
            let verdict_hash = verdict
                .hash()
                .map_err(|e| PolicyError::invalid("verdict", e.to_string()))?;
            let signature = self
                .key
                .sign(
                    verdict_hash,
                    Intent::typed(IntentKind::Verdict, &verdict),
                    &Authorization::none(),
                )
                .await?;
            let spending = Spending {
                wallet: wallet.to_owned(),
                counters: verified,
                counter_swaps,
                history,
                version,
                facts,
                policy: policy.clone(),
                now,
            };
            Ok((
                Decided {
                    evaluation,
                    signed: Some(SignedVerdict { verdict, signature }),
                },
                Some(spending),
            ))
        })
    }

    /// Commits what an allow used ([`PolicyNode::decide_pending`]): each
    /// approval's counter (by compare-and-swap: an assertion used by a
    /// concurrent request meanwhile is refused here) and the operation's
    /// transfers in the spend history the limits read.
    ///
    /// # Errors
    /// [`PolicyError::Approval`] for a counter that another request spent
    /// first; state-store errors; [`PolicyError::Conflict`].
    pub fn commit<'a>(&'a self, spending: &'a Spending) -> Pending<'a, Result<(), PolicyError>> {
        Pending::drive(async move {
            for (approver, credential, count) in &spending.counters {
                self.log
                    .counters()
                    .record_counter(credential, *count)
                    .await
                    .map_err(|e| PolicyError::Approval {
                        approver: approver.clone(),
                        reason: e.to_string(),
                    })?;
            }
            self.record_spends(
                &spending.wallet,
                spending.history.clone(),
                spending.version,
                &spending.facts,
                spending.now,
                &spending.policy,
            )
            .await
        })
    }

    /// Vetoes `operation` (a delayed operation's hash) on `wallet` with
    /// `assertion` (`toJSON()` text) over the hash of
    /// [`Operation::Veto`]`{wallet, operation}`, from any device of any
    /// approver the wallet's current policy names. The first veto stands
    /// (a later one changes nothing); a veto given before the operation is
    /// proposed holds too. Returns the approver who vetoed.
    ///
    /// The log is settled at `now` (Unix seconds) first, as
    /// [`PolicyNode::decide`] settles it: a device added by a recovery
    /// whose delay has run out vetoes as its approver, one still pending
    /// does not.
    ///
    /// # Errors
    /// [`PolicyError::Approval`] for an assertion that does not verify,
    /// comes from no approver's device or from one the policy does not
    /// name, or whose counter went back; log and state-store errors.
    pub fn veto<'a>(
        &'a self,
        wallet: &'a str,
        operation: OperationHash,
        assertion: &'a str,
        now: u64,
    ) -> Pending<'a, Result<String, PolicyError>> {
        Pending::drive(async move {
            let mut state = self.log.load(wallet, None).await?;
            state.settle(now);
            let (approver, credential, count) =
                verify_veto(&self.log, &state, wallet, &operation, assertion)?;
            let key = veto_key(wallet, &operation);
            if let Some(existing) = self.state.get(&key).await? {
                return Ok(Veto::from_json(&existing.value)?.approver);
            }
            self.log
                .counters()
                .record_counter(&credential, count)
                .await
                .map_err(|e| PolicyError::Approval {
                    approver: approver.clone(),
                    reason: e.to_string(),
                })?;
            let veto = Veto {
                approver: approver.clone(),
                assertion: assertion.to_owned(),
            };
            match self
                .state
                .compare_and_swap(&key, None, &veto.to_json())
                .await?
            {
                CasOutcome::Swapped { .. } => Ok(approver),
                CasOutcome::Conflict { current } => match current {
                    Some(record) => Ok(Veto::from_json(&record.value)?.approver),
                    None => Err(PolicyError::Conflict),
                },
            }
        })
    }

    /// The stored proposal of `operation`, if it is signed by the policy
    /// key, is for this wallet and operation, and was made under the
    /// policy in force (`policy_hash`); a proposal made under another
    /// policy is ignored (its delay starts again).
    ///
    /// # Errors
    /// [`PolicyError::LogBroken`] for a stored proposal that does not
    /// parse or whose signature is not the policy key's (fail closed: a
    /// forged proposal must not restart a delay silently either).
    async fn proposal(
        &self,
        wallet: &str,
        operation: &OperationHash,
        policy_hash: [u8; 32],
    ) -> Result<Option<Proposal>, PolicyError> {
        let Some(record) = self.state.get(&proposal_key(wallet, operation)).await? else {
            return Ok(None);
        };
        let broken = |reason| PolicyError::LogBroken { index: 0, reason };
        let proposal = Proposal::from_json(&record.value)
            .map_err(|_| broken("a stored proposal does not parse"))?;
        if proposal.wallet != wallet
            || proposal.operation != *operation
            || !proposal.is_signed_by(self.log.policy_key())
        {
            return Err(broken("a stored proposal is not the policy key's"));
        }
        Ok((proposal.policy_hash == policy_hash).then_some(proposal))
    }

    /// Records the first proposal of a delayed operation: now, under
    /// `policy_hash`, with the approvals that made it (their counters
    /// spent), signed by the policy key. Another replica's proposal made
    /// first wins.
    async fn propose(
        &self,
        wallet: &str,
        operation: OperationHash,
        policy_hash: [u8; 32],
        now: u64,
        claimed: &[(String, String)],
        verified: &[(String, Vec<u8>, u32)],
    ) -> Result<(), PolicyError> {
        if claimed.len() > MAX_PROPOSAL_APPROVALS {
            return Err(PolicyError::invalid(
                "approvals",
                "too many for one proposal",
            ));
        }
        for (approver, credential, count) in verified {
            self.log
                .counters()
                .record_counter(credential, *count)
                .await
                .map_err(|e| PolicyError::Approval {
                    approver: approver.clone(),
                    reason: e.to_string(),
                })?;
        }
        let mut proposal = Proposal {
            wallet: wallet.to_owned(),
            operation,
            policy_hash,
            proposed_at: now,
            approvals: claimed.to_vec(),
            signature: None,
        };
        let signature = self
            .key
            .sign(
                proposal.digest(),
                Intent::typed(IntentKind::Verdict, &proposal),
                &Authorization::none(),
            )
            .await?;
        proposal.signature = Some(signature);
        let key = proposal_key(wallet, &operation);
        let old = self.state.get(&key).await?.map(|r| r.version);
        // An existing record here is a proposal under an older policy (a
        // current one was read above): this one replaces it.
        match self
            .state
            .compare_and_swap(&key, old, &proposal.to_json())
            .await?
        {
            CasOutcome::Swapped { .. } | CasOutcome::Conflict { .. } => Ok(()),
        }
    }

    /// Who vetoed `operation`, checked again from the stored assertion.
    ///
    /// # Errors
    /// [`PolicyError::LogBroken`] for a stored veto that does not verify
    /// (fail closed: the operation is refused rather than let through).
    async fn vetoed_by(
        &self,
        state: &crate::log::LogState,
        wallet: &str,
        operation: &OperationHash,
    ) -> Result<Option<String>, PolicyError> {
        let Some(record) = self.state.get(&veto_key(wallet, operation)).await? else {
            return Ok(None);
        };
        let broken = || PolicyError::LogBroken {
            index: 0,
            reason: "a stored veto does not verify",
        };
        let veto = Veto::from_json(&record.value).map_err(|_| broken())?;
        let (approver, _, _) = verify_veto(&self.log, state, wallet, operation, &veto.assertion)
            .map_err(|_| broken())?;
        if approver != veto.approver {
            return Err(broken());
        }
        Ok(Some(approver))
    }

    async fn spends(&self, wallet: &str) -> Result<(Vec<Spend>, Option<u64>), PolicyError> {
        let Some(record) = self.state.get(&spends_key(wallet)).await? else {
            return Ok((Vec::new(), None));
        };
        let broken = || PolicyError::LogBroken {
            index: 0,
            reason: "the spend history does not parse",
        };
        let items: Vec<Value> = serde_json::from_slice(&record.value).map_err(|_| broken())?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let at = item.get("at").and_then(Value::as_u64).ok_or_else(broken)?;
            let asset = match item.get("asset").and_then(Value::as_str) {
                Some("native") => Asset::Native,
                Some(a) => Asset::Token(custody_eth::Address::parse(a).map_err(|_| broken())?),
                None => return Err(broken()),
            };
            let amount = item
                .get("amount")
                .and_then(Value::as_str)
                .and_then(|a| custody_eth::U256::parse(a).ok())
                .ok_or_else(broken)?;
            out.push(Spend { at, asset, amount });
        }
        Ok((out, Some(record.version)))
    }

    /// Adds the operation's transfers to the history (dropping what no
    /// limit's window still sees), by compare-and-swap: two replicas
    /// deciding at once re-read, so neither's spend is lost.
    async fn record_spends(
        &self,
        wallet: &str,
        mut history: Vec<Spend>,
        mut version: Option<u64>,
        facts: &Facts,
        now: u64,
        policy: &crate::policy::Policy,
    ) -> Result<(), PolicyError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(next) = next_history(history, facts, now, policy) else {
                return Ok(());
            };
            match self
                .state
                .compare_and_swap(&spends_key(wallet), version, &encode_history(&next))
                .await?
            {
                CasOutcome::Swapped { .. } => return Ok(()),
                CasOutcome::Conflict { .. } => {
                    (history, version) = self.spends(wallet).await?;
                }
            }
        }
        Err(PolicyError::Conflict)
    }
}

/// The approver whose device made `assertion` over the veto of
/// `operation` on `wallet`, with the credential and the counter it
/// presented, if that approver is named by the wallet's current policy and
/// the assertion verifies (the counter is the caller's to spend).
fn verify_veto(
    log: &PolicyLog,
    state: &crate::log::LogState,
    wallet: &str,
    operation: &OperationHash,
    assertion: &str,
) -> Result<(String, Vec<u8>, u32), PolicyError> {
    let refused = |approver: &str, reason: &str| PolicyError::Approval {
        approver: approver.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(policy) = state.policy() else {
        return Err(PolicyError::invalid("wallet", "no policy governs it"));
    };
    let response =
        AssertionResponse::from_json(assertion).map_err(|e| refused("", &e.to_string()))?;
    let approver = state
        .owner_of(&response.credential_id)
        .ok_or_else(|| refused("", "the credential is no approver's device"))?
        .to_owned();
    if !policy
        .groups()
        .values()
        .any(|g| g.members.contains(&approver))
    {
        return Err(refused(
            &approver,
            "the wallet's policy does not name this approver",
        ));
    }
    let challenge = Operation::Veto {
        wallet: wallet.to_owned(),
        operation: *operation,
    }
    .hash();
    state
        .verify_approvals(
            log.relying_party(),
            &challenge,
            &[(approver.clone(), assertion.to_owned())],
            false,
        )?
        .pop()
        .ok_or_else(|| refused(&approver, "no assertion"))
}

/// `history` with the operation's transfers added at `now` and what no
/// limit's window still sees dropped; `None` if the operation transfers
/// nothing (nothing to write).
fn next_history(
    mut history: Vec<Spend>,
    facts: &Facts,
    now: u64,
    policy: &crate::policy::Policy,
) -> Option<Vec<Spend>> {
    if facts.transfers.iter().all(|t| t.amount.is_zero()) {
        return None;
    }
    let window = policy
        .limits()
        .iter()
        .map(|l| l.window_seconds)
        .max()
        .unwrap_or(0);
    // Spends are kept in at most ~64 buckets per limited asset: a
    // bucket holds the sum of its spends at the time of its latest, so
    // it counts while any of them could (a limit may refuse up to a
    // 64th of its window early, never allow more). Assets no limit
    // names are not kept.
    let granularity = (window / 64).max(1);
    history.retain(|s| s.at.saturating_add(window) > now);
    history.extend(facts.transfers.iter().map(|t| Spend {
        at: now,
        asset: t.asset,
        amount: t.amount,
    }));
    history.retain(|s| policy.limits().iter().any(|l| l.asset == s.asset));
    Some(compact(history, granularity))
}

/// The spend history as the state store keeps it (JSON).
fn encode_history(history: &[Spend]) -> Vec<u8> {
    let value: Vec<Value> = history
        .iter()
        .map(|s| json!({"at": s.at, "asset": s.asset.name(), "amount": s.amount.to_string()}))
        .collect();
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Merges spends of one asset within one `granularity`-second bucket: the
/// sum (saturating: a sum past 2^256 − 1 exceeds every limit anyway), at
/// the latest time.
fn compact(history: Vec<Spend>, granularity: u64) -> Vec<Spend> {
    let mut buckets: std::collections::BTreeMap<(Asset, u64), Spend> =
        std::collections::BTreeMap::new();
    for spend in history {
        buckets
            .entry((spend.asset, spend.at / granularity))
            .and_modify(|b| {
                b.at = b.at.max(spend.at);
                b.amount = b
                    .amount
                    .checked_add(spend.amount)
                    .unwrap_or(custody_eth::U256::MAX);
            })
            .or_insert(spend);
    }
    buckets.into_values().collect()
}

/// What an in-line [`PolicyGate`] decided about a request, shown to its
/// observer ([`PolicyGate::with_observer`]) so that a caller can report
/// the rule and the verdict (the seam's errors carry only the denial's
/// kind). Observation only: the gate's answer is the same with or without
/// one.
#[derive(Debug)]
#[non_exhaustive]
pub enum Observed<'a> {
    /// The policy decided: the evaluation (with its trace) and, for an
    /// allow, the verdict the signature is then made under (if the
    /// request succeeds).
    Decided {
        /// The governed wallet.
        wallet: &'a str,
        /// The decision.
        decided: &'a Decided,
    },
    /// The approvals or the log refused before any decision.
    Refused {
        /// The governed wallet.
        wallet: &'a str,
        /// Why.
        error: &'a PolicyError,
    },
}

/// An observer of an in-line gate's decisions ([`Observed`]).
pub type Observer = Arc<dyn Fn(Observed<'_>) + Send + Sync>;

/// The signing role: a gate over a [`KeyBackend`] that signs for a
/// governed wallet only what a valid verdict covers.
pub struct PolicyGate {
    inner: SharedBackend,
    log: PolicyLog,
    state: Arc<dyn StateStore>,
    scheme: WalletScheme,
    node: Option<PolicyNode>,
    clock: Clock,
    observer: Option<Observer>,
}

impl fmt::Debug for PolicyGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyGate")
            .field("inner", &self.inner)
            .field("log", &self.log)
            .field("in_line", &self.node.is_some())
            .finish_non_exhaustive()
    }
}

fn denied(denial: Denial) -> Error {
    Error::Denied(denial)
}

impl PolicyGate {
    /// A gate over `inner` for the wallets of `log` (keys mapped to wallets
    /// by `scheme`), checking verdicts that travel with requests. Spent
    /// verdicts are kept in `state`.
    #[must_use]
    pub fn new(
        inner: SharedBackend,
        log: PolicyLog,
        state: Arc<dyn StateStore>,
        scheme: WalletScheme,
    ) -> Self {
        Self {
            inner,
            log,
            state,
            scheme,
            node: None,
            clock: system_clock(),
            observer: None,
        }
    }

    /// The same gate telling `observer` what its in-line node decided
    /// about each request for a governed wallet ([`Observed`]).
    #[must_use]
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The same gate deciding in-line with `node` when a request carries
    /// approvals instead of a verdict (the embedded default).
    #[must_use]
    pub fn with_node(mut self, node: PolicyNode) -> Self {
        self.node = Some(node);
        self
    }

    /// The same gate reading time from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The governed wallet `key` belongs to, if any: by name, or by a path
    /// at or under a governed wallet's node.
    async fn wallet_of(&self, key: &PinnedKey) -> Result<Option<String>, Error> {
        let governed = self.log.governed().await.map_err(to_core)?;
        if governed.is_empty() {
            return Ok(None);
        }
        if let Some((name, _)) = key.wallet()
            && governed.iter().any(|w| w == name)
        {
            return Ok(Some(name.to_owned()));
        }
        if let Some(path) = key.path() {
            for wallet in &governed {
                if path.starts_with(&self.scheme.wallet_path(wallet)?) {
                    return Ok(Some(wallet.clone()));
                }
            }
        }
        Ok(None)
    }

    /// Whether `key` is a BIP32 ancestor of a governed wallet's node: its
    /// private key derives the wallet's (so it may not leave either).
    async fn is_ancestor_of_governed(&self, key: &PinnedKey) -> Result<bool, Error> {
        let Some(path) = key.path() else {
            return Ok(false);
        };
        for wallet in self.log.governed().await.map_err(to_core)? {
            if self.scheme.wallet_path(&wallet)?.starts_with(path) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Checks `signed` covers `request` for `wallet` and has not been
    /// used, reading only, and returns the clearance with the write that
    /// uses the verdict: a compare-and-swap of its state-store record from
    /// absent, so that of two requests racing one verdict exactly one
    /// commits it (the other is refused as [`Denial::VerdictInvalid`]).
    /// The write is committed once the key signed: by the audit layer with
    /// the signature's record, or by [`PolicyGate::commit`].
    async fn admit(
        &self,
        wallet: &str,
        operation: &Operation,
        request: &SignRequest<'_>,
        signed: &SignedVerdict,
    ) -> Result<(Clearance, DeferredWrite), Error> {
        let invalid = |_: VerdictError| denied(Denial::VerdictInvalid);
        signed.verify(self.log.policy_key()).map_err(invalid)?;
        let v = &signed.verdict;
        let now = (self.clock)();
        let matches = v.wallet == wallet
            && v.operation == operation.hash()
            && v.digest == request.digest
            && v.signer == request.key.public().to_bytes()
            && v.kind == operation.kind();
        if !matches || now < v.issued_at.saturating_sub(60) || now > v.expires_at {
            return Err(denied(Denial::VerdictInvalid));
        }
        let state = self.log.load(wallet, None).await.map_err(to_core)?;
        if state.head() != Some(v.log) {
            return Err(denied(Denial::VerdictInvalid));
        }
        let hash = v.hash().map_err(invalid)?;
        let key = verdict_key(wallet, &hash.0);
        // Used before: refused before the key is asked (the write below
        // catches a use made meanwhile).
        if self.state.get(&key).await?.is_some() {
            return Err(denied(Denial::VerdictInvalid));
        }
        let clearance = Clearance::Policy {
            log_index: v.log.index,
            verdict: hash.0,
        };
        let used = deferred(&self.state, key, None, now.to_be_bytes().to_vec())
            .refused_as(Denial::VerdictInvalid);
        Ok((clearance, used))
    }

    /// Commits what a signature used, in this gate, when no audit layer
    /// above commits it with the record: the in-line allow's counters and
    /// spends ([`PolicyNode::commit`]), then the verdict's use. A conflict
    /// withholds the signature (fail closed: what was committed before it
    /// stays spent).
    async fn commit(&self, spending: Option<&Spending>, used: &DeferredWrite) -> Result<(), Error> {
        if let (Some(node), Some(spending)) = (&self.node, spending) {
            node.commit(spending).await.map_err(to_core)?;
        }
        // This gate's own write (`deferred` above): never a check.
        let value = used.value().ok_or(Error::InvalidStateRecord(
            "a verdict's use is a write, not a check",
        ))?;
        match self
            .state
            .compare_and_swap(used.key(), used.expected(), value)
            .await?
        {
            CasOutcome::Swapped { .. } => Ok(()),
            CasOutcome::Conflict { .. } => Err(denied(used.refusal())),
        }
    }
}

/// A policy error as the seam's error: refusals as denials, the rest as
/// a backend error of the policy's kind.
fn to_core(e: PolicyError) -> Error {
    match e {
        PolicyError::State(e) => e,
        PolicyError::Approval { .. } => denied(Denial::ApprovalsRequired),
        other => Error::backend(other),
    }
}

/// The operation a signing request is, from its intent's detail.
fn operation_of(request: &SignRequest<'_>) -> Result<Operation, Error> {
    let signer = *request.key.secp256k1()?;
    let detail = request.intent.detail();
    let operation = match request.intent.kind() {
        IntentKind::Transaction => detail
            .and_then(|d| d.downcast_ref::<Transaction>())
            .map(|tx| Operation::Transaction {
                signer,
                tx: tx.clone(),
            }),
        IntentKind::PersonalMessage => detail
            .and_then(|d| d.downcast_ref::<PersonalMessage>())
            .map(|m| Operation::PersonalMessage {
                signer,
                message: m.as_bytes().to_vec(),
            }),
        IntentKind::TypedData => detail
            .and_then(|d| d.downcast_ref::<TypedData>())
            .map(|data| Operation::TypedData {
                signer,
                data: Box::new(data.clone()),
            }),
        IntentKind::Authorization => detail
            .and_then(|d| d.downcast_ref::<EthAuthorization>())
            .map(|authorization| Operation::Authorization {
                signer,
                authorization: *authorization,
            }),
        IntentKind::RawDigest => Some(Operation::RawDigest {
            signer,
            digest: request.digest,
        }),
        // Audit checkpoints, policy entries, verdicts: not a wallet's
        // movement of value, and no wallet key signs them.
        _ => None,
    };
    // An intent without its value, or a digest that is not the value's,
    // cannot be judged: refused, never waved through.
    match operation {
        Some(op) if op.signing_digest() == Some(request.digest) => Ok(op),
        _ => Err(denied(Denial::PolicyDenied)),
    }
}

impl SigningBackend for PolicyGate {
    fn key_kinds(&self) -> KeyKinds {
        self.inner
            .signing()
            .map(SigningBackend::key_kinds)
            .unwrap_or_default()
    }

    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, Error>> {
        match self.inner.signing() {
            Some(s) => s.pin(key),
            None => Pending::ready(Err(Error::Unsupported("this backend does not sign"))),
        }
    }

    fn sign_digest<'a>(&'a self, request: SignRequest<'a>) -> Pending<'a, Result<Signed, Error>> {
        let Some(inner) = self.inner.signing() else {
            return Pending::ready(Err(Error::Unsupported("this backend does not sign")));
        };
        Pending::drive(async move {
            let Some(wallet) = self.wallet_of(request.key).await? else {
                return inner.sign_digest(request).await;
            };
            let operation = operation_of(&request)?;
            let (signed, spending) = match (&request.auth.verdict, &self.node) {
                (Some(bytes), _) => (
                    SignedVerdict::from_bytes(bytes).map_err(|_| denied(Denial::VerdictInvalid))?,
                    None,
                ),
                (None, Some(node)) => {
                    let pending = node
                        .decide_pending(
                            &wallet,
                            &operation,
                            &request.auth.approvals,
                            (self.clock)(),
                        )
                        .await;
                    if let Some(observer) = &self.observer {
                        observer(match &pending {
                            Ok((decided, _)) => Observed::Decided {
                                wallet: &wallet,
                                decided,
                            },
                            Err(error) => Observed::Refused {
                                wallet: &wallet,
                                error,
                            },
                        });
                    }
                    let (decided, spending) = pending.map_err(to_core)?;
                    match (decided.signed, decided.evaluation.decision) {
                        (Some(signed), _) => (signed, spending),
                        (None, Decision::Deny { .. } | Decision::Vetoed { .. }) => {
                            return Err(denied(Denial::PolicyDenied));
                        }
                        // Too few approvals, or a delay still running (the
                        // operation is now proposed: the same request
                        // succeeds once it has passed, unless vetoed).
                        (None, _) => return Err(denied(Denial::ApprovalsRequired)),
                    }
                }
                (None, None) => return Err(denied(Denial::ApprovalsRequired)),
            };
            let (clearance, used) = self.admit(&wallet, &operation, &request, &signed).await?;
            let recorded_above = request.recorded_above();
            let answer = inner.sign_digest(request).await?;
            // Only now is anything spent: the approvals' counters, the
            // transfers against the limits, the verdict's one use. Under an
            // audit layer they are committed with the signature's record,
            // all or nothing; if one of them was spent meanwhile by a
            // concurrent request, the signature is withheld (fail closed).
            if !recorded_above {
                self.commit(spending.as_ref(), &used).await?;
                return Ok(answer.with_clearance(clearance));
            }
            let node_state = self.node.as_ref().map(|n| &n.state);
            let mut answer = answer.with_clearance(clearance);
            let writes = match (spending, node_state) {
                (Some(spending), Some(state)) => {
                    if let Some(spend) = spending.clearance() {
                        answer = answer.with_clearance(spend);
                    }
                    spending.deferred(self.log.counters().state(), state)
                }
                _ => Vec::new(),
            };
            Ok(writes
                .into_iter()
                .chain([used])
                .fold(answer, Cleared::with_deferred))
        })
    }
}

impl ExportingBackend for PolicyGate {
    fn export_private_key<'a>(
        &'a self,
        key: &'a PinnedKey,
        auth: &'a Authorization,
    ) -> Pending<'a, Result<PrivateKeyBytes, Error>> {
        let Some(inner) = self.inner.exporting() else {
            return Pending::ready(Err(Error::Unsupported(
                "keys of this backend cannot leave it",
            )));
        };
        Pending::drive(async move {
            if self.wallet_of(key).await?.is_some() || self.is_ancestor_of_governed(key).await? {
                return Err(denied(Denial::Forbidden));
            }
            inner.export_private_key(key, auth).await
        })
    }
}

impl DecryptingBackend for PolicyGate {
    /// An unseal with a governed wallet's key is refused (no policy rule
    /// covers one: a wallet's keys sign movements of value, sealing keys
    /// are keys of their own); any other key's passes to the inner
    /// backend.
    fn decrypt<'a>(&'a self, request: DecryptRequest<'a>) -> Pending<'a, Result<Decrypted, Error>> {
        let Some(inner) = self.inner.decrypting() else {
            return Pending::ready(Err(Error::Unsupported("this backend does not decrypt")));
        };
        Pending::drive(async move {
            if self.wallet_of(request.key).await?.is_some() {
                return Err(denied(Denial::PolicyDenied));
            }
            inner.decrypt(request).await
        })
    }
}

impl KeyBackend for PolicyGate {
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
