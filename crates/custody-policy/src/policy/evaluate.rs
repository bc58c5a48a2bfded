//! Evaluation: one deterministic pass, every step recorded.
//!
//! 1. Every rule is matched against the operation's [`Facts`], in document
//!    order, each match or miss (with the condition that missed) a step.
//! 2. A matching deny rule decides: explicit deny wins, whatever allows.
//! 3. A bare digest is denied unless the policy opts in
//!    (`allowRawDigest`).
//! 4. Every limit on an asset the operation moves: what left within the
//!    window plus this operation's amount must not exceed the limit.
//! 5. No matching allow rule: denied (anything unmatched is denied).
//! 6. Every matching allow rule whose approvals are all met offers an
//!    outcome: allowed now (no delay, or its delay has passed since the
//!    operation was proposed), delayed until a time, or vetoed (a veto
//!    stops every delayed rule). The best outcome decides, the first rule
//!    in document order among equals. If no rule's approvals are met,
//!    approvals are required, naming the rule that needs the fewest more.
//!
//! Amounts are summed without overflow: a sum past 2^256 − 1 exceeds
//! every limit.

use std::collections::BTreeSet;

use custody_eth::U256;

use super::model::{Effect, Policy, Rule};
use crate::facts::{Asset, Facts};
use crate::operation::OperationKind;

/// Value that left the wallet at a time (an entry of the spend history the
/// limits are computed from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spend {
    /// Unix seconds when it was signed.
    pub at: u64,
    /// What left.
    pub asset: Asset,
    /// How much.
    pub amount: U256,
}

/// What an evaluation needs besides the policy and the operation.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationInput<'a> {
    /// Approver ids whose assertions over this operation verified.
    pub approvers: &'a BTreeSet<String>,
    /// The wallet's earlier spends (any order; old ones are ignored).
    pub history: &'a [Spend],
    /// Unix seconds now.
    pub now: u64,
    /// When the operation was proposed, for delayed rules.
    pub proposed_at: Option<u64>,
    /// The approver who vetoed the operation, if one did.
    pub vetoed_by: Option<&'a str>,
}

/// What the policy decided.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by this rule.
    Allow {
        /// The rule that allowed.
        rule: String,
    },
    /// Denied by this rule or limit (`no-rule-allows` when nothing
    /// matched, `allowRawDigest` for a bare digest not opted in).
    Deny {
        /// What denied.
        rule: String,
    },
    /// A matching rule would allow with more approvals.
    ApprovalsRequired {
        /// The rule needing the fewest more approvals.
        rule: String,
        /// Per group: how many more of its members must approve.
        missing: Vec<(String, u32)>,
    },
    /// Allowed once the rule's delay has passed.
    Delayed {
        /// The rule that will allow.
        rule: String,
        /// Unix seconds from which it may be signed.
        until: u64,
    },
    /// Vetoed during its delay.
    Vetoed {
        /// The delayed rule.
        rule: String,
        /// Who vetoed.
        by: String,
    },
}

impl Decision {
    /// Whether the operation may be signed now.
    #[must_use]
    pub fn is_allow(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }

    /// A stable lower-case name of the decision.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow { .. } => "allow",
            Self::Deny { .. } => "deny",
            Self::ApprovalsRequired { .. } => "approvals-required",
            Self::Delayed { .. } => "delayed",
            Self::Vetoed { .. } => "vetoed",
        }
    }
}

/// The outcome of one step.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// Every condition held.
    Matched,
    /// This condition did not hold.
    NotMatched {
        /// The condition's member name.
        condition: &'static str,
    },
    /// A limit with room: spent in the window plus this amount, of the max.
    WithinLimit {
        /// Spent in the window, this operation included.
        total: U256,
    },
    /// A limit this operation would exceed.
    LimitExceeded {
        /// Spent in the window, this operation included (saturated).
        total: U256,
    },
    /// The rule's approvals are met.
    ApprovalsMet,
    /// The rule's approvals are not met.
    ApprovalsMissing {
        /// Per group: how many more.
        missing: Vec<(String, u32)>,
    },
    /// The decision.
    Decided,
}

/// One step of an evaluation: a rule, limit or built-in check, and what
/// it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The rule or limit id.
    pub rule: String,
    /// What it found.
    pub result: StepResult,
}

/// A decision and the trace of steps that reached it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// Every step, in order.
    pub trace: Vec<Step>,
}

/// The rule id of a built-in denial: nothing allows.
pub(crate) const NO_RULE_ALLOWS: &str = "no-rule-allows";
/// The rule id of a built-in denial: a bare digest not opted in.
pub(crate) const RAW_DIGEST_OFF: &str = "allowRawDigest";

/// A 256-bit sum that remembers overflowing.
#[derive(Clone, Copy)]
struct Sum {
    value: U256,
    overflowed: bool,
}

impl Sum {
    const ZERO: Self = Self {
        value: U256::ZERO,
        overflowed: false,
    };

    fn add(self, amount: U256) -> Self {
        match self.value.checked_add(amount) {
            Some(value) => Self {
                value,
                overflowed: self.overflowed,
            },
            None => Self {
                value: U256::MAX,
                overflowed: true,
            },
        }
    }

    fn exceeds(self, max: U256) -> bool {
        self.overflowed || self.value > max
    }
}

impl Policy {
    /// Evaluates an operation (by its facts) against this policy.
    #[must_use]
    pub fn evaluate(&self, facts: &Facts, input: &EvaluationInput<'_>) -> Verdict {
        let mut trace = Vec::new();
        let mut matched: Vec<&Rule> = Vec::new();
        for rule in &self.rules {
            let result = match conditions_hold(rule, facts) {
                Ok(()) => {
                    matched.push(rule);
                    StepResult::Matched
                }
                Err(condition) => StepResult::NotMatched { condition },
            };
            trace.push(Step {
                rule: rule.id.clone(),
                result,
            });
        }
        let deny = |rule: &str, mut trace: Vec<Step>| {
            trace.push(Step {
                rule: rule.to_owned(),
                result: StepResult::Decided,
            });
            Verdict {
                decision: Decision::Deny {
                    rule: rule.to_owned(),
                },
                trace,
            }
        };
        if let Some(rule) = matched.iter().find(|r| r.effect == Effect::Deny) {
            return deny(&rule.id, trace);
        }
        if facts.kind == OperationKind::RawDigest && !self.allow_raw_digest {
            return deny(RAW_DIGEST_OFF, trace);
        }
        for limit in &self.limits {
            let moved = facts
                .transfers
                .iter()
                .filter(|t| t.asset == limit.asset)
                .fold(Sum::ZERO, |sum, t| sum.add(t.amount));
            if !moved.overflowed && moved.value.is_zero() {
                continue;
            }
            let earliest = input.now.saturating_sub(limit.window_seconds);
            let total = input
                .history
                .iter()
                .filter(|s| s.asset == limit.asset && s.at > earliest)
                .fold(moved, |sum, s| sum.add(s.amount));
            if total.exceeds(limit.max) {
                trace.push(Step {
                    rule: limit.id.clone(),
                    result: StepResult::LimitExceeded { total: total.value },
                });
                return deny(&limit.id, trace);
            }
            trace.push(Step {
                rule: limit.id.clone(),
                result: StepResult::WithinLimit { total: total.value },
            });
        }
        let mut closest: Option<(&Rule, Vec<(String, u32)>)> = None;
        let mut best: Option<(&Rule, Decision)> = None;
        for rule in matched.iter().filter(|r| r.effect == Effect::Allow) {
            let missing = self.missing_approvals(rule, input.approvers);
            if missing.is_empty() {
                trace.push(Step {
                    rule: rule.id.clone(),
                    result: StepResult::ApprovalsMet,
                });
                let outcome = timed(rule, input);
                if best.as_ref().is_none_or(|(_, b)| rank(&outcome) < rank(b)) {
                    best = Some((rule, outcome));
                }
                continue;
            }
            trace.push(Step {
                rule: rule.id.clone(),
                result: StepResult::ApprovalsMissing {
                    missing: missing.clone(),
                },
            });
            let more: u64 = missing.iter().map(|(_, n)| u64::from(*n)).sum();
            let fewer = closest
                .as_ref()
                .is_none_or(|(_, m)| more < m.iter().map(|(_, n)| u64::from(*n)).sum());
            if fewer {
                closest = Some((rule, missing));
            }
        }
        let Some((rule, decision)) = best else {
            return match closest {
                Some((rule, missing)) => Verdict {
                    decision: Decision::ApprovalsRequired {
                        rule: rule.id.clone(),
                        missing,
                    },
                    trace,
                },
                None => deny(NO_RULE_ALLOWS, trace),
            };
        };
        trace.push(Step {
            rule: rule.id.clone(),
            result: StepResult::Decided,
        });
        Verdict { decision, trace }
    }

    /// Per required group, how many more distinct members must approve.
    fn missing_approvals(&self, rule: &Rule, approvers: &BTreeSet<String>) -> Vec<(String, u32)> {
        rule.require
            .iter()
            .filter_map(|req| {
                let have = self
                    .groups
                    .get(&req.group)
                    .map_or(0, |g| g.members.intersection(approvers).count());
                let have = u32::try_from(have).unwrap_or(u32::MAX);
                (have < req.threshold).then(|| (req.group.clone(), req.threshold - have))
            })
            .collect()
    }

    /// Whether `approvers` meet the governance requirement (policy and
    /// device changes), and if not how many more are needed.
    #[must_use]
    pub fn governance_missing(&self, approvers: &BTreeSet<String>) -> u32 {
        let have = self
            .groups
            .get(&self.governance.group)
            .map_or(0, |g| g.members.intersection(approvers).count());
        self.governance
            .threshold
            .saturating_sub(u32::try_from(have).unwrap_or(u32::MAX))
    }
}

/// What a satisfied allow rule decides, given its delay.
fn timed(rule: &Rule, input: &EvaluationInput<'_>) -> Decision {
    if rule.delay_seconds == 0 {
        return Decision::Allow {
            rule: rule.id.clone(),
        };
    }
    if let Some(by) = input.vetoed_by {
        return Decision::Vetoed {
            rule: rule.id.clone(),
            by: by.to_owned(),
        };
    }
    let until = input
        .proposed_at
        .unwrap_or(input.now)
        .saturating_add(rule.delay_seconds);
    if input.proposed_at.is_some() && input.now >= until {
        Decision::Allow {
            rule: rule.id.clone(),
        }
    } else {
        Decision::Delayed {
            rule: rule.id.clone(),
            until,
        }
    }
}

/// The order of satisfied rules' outcomes, best first: allowed now, then
/// the earliest delay, then vetoed. Taking the best keeps evaluation
/// monotone: a rule removed or made stricter can only take options away.
fn rank(decision: &Decision) -> (u8, u64) {
    match decision {
        Decision::Allow { .. } => (0, 0),
        Decision::Delayed { until, .. } => (1, *until),
        _ => (2, 0),
    }
}

/// `Ok` if every given condition of `rule` holds, else the first that
/// does not.
///
/// Two conditions are implied for allow rules, because an allow must see
/// what it allows: calldata is allowed only by a rule with `calls` (which
/// names the contract and selector), and a contract creation only by a
/// rule with `"contractCreation": true`. Deny rules match without them.
fn conditions_hold(rule: &Rule, facts: &Facts) -> Result<(), &'static str> {
    let when = &rule.when;
    if rule.effect == Effect::Allow {
        if facts.call.is_some() && when.calls.is_none() {
            return Err("calls");
        }
        if facts.creates_contract && when.contract_creation != Some(true) {
            return Err("contractCreation");
        }
    }
    if let Some(kinds) = &when.kinds
        && !kinds.contains(&facts.kind)
    {
        return Err("kinds");
    }
    if let Some(ids) = &when.chain_ids {
        let on_listed_chain = facts
            .chain_id
            .and_then(|id| id.to_u64())
            .is_some_and(|id| ids.contains(&id));
        if !on_listed_chain {
            return Err("chainIds");
        }
    }
    if let Some(allowed) = &when.destinations_within
        && (facts.destinations.is_empty()
            || !facts.destinations.iter().all(|d| allowed.contains(d)))
    {
        return Err("destinationsWithin");
    }
    if let Some(listed) = &when.destinations_any_of
        && !facts.destinations.iter().any(|d| listed.contains(d))
    {
        return Err("destinationsAnyOf");
    }
    if let Some(assets) = &when.assets
        && (facts.transfers.is_empty()
            || !facts.transfers.iter().all(|t| assets.contains(&t.asset)))
    {
        return Err("assets");
    }
    if let Some(max) = &when.max_amount
        && !facts.transfers.iter().all(|t| t.amount <= *max)
    {
        return Err("maxAmount");
    }
    if let Some(calls) = &when.calls {
        let allowed = facts.call.is_some_and(|call| {
            calls.iter().any(|rule| {
                rule.contract == call.contract
                    && call.selector.is_some_and(|s| rule.selectors.contains(&s))
            })
        });
        if !allowed {
            return Err("calls");
        }
    }
    if let Some(creation) = when.contract_creation
        && creation != facts.creates_contract
    {
        return Err("contractCreation");
    }
    if let Some(rule) = &when.typed_data {
        let Some(typed) = &facts.typed else {
            return Err("typedData");
        };
        if let Some(domains) = &rule.domains {
            let domain = &typed.domain;
            let any = domains.iter().any(|d| {
                d.name
                    .as_ref()
                    .is_none_or(|n| domain.name.as_ref() == Some(n))
                    && d.version
                        .as_ref()
                        .is_none_or(|v| domain.version.as_ref() == Some(v))
                    && d.chain_id
                        .is_none_or(|c| domain.chain_id == Some(U256::from_u64(c)))
                    && d.verifying_contract
                        .is_none_or(|c| domain.verifying_contract == Some(c))
            });
            if !any {
                return Err("typedData.domains");
            }
        }
        if let Some(types) = &rule.primary_types
            && !types.contains(&typed.primary_type)
        {
            return Err("typedData.primaryTypes");
        }
        if let Some(spenders) = &rule.spenders {
            let ok = match typed.spender {
                Some(spender) => spenders.contains(&spender),
                None => !typed.is_permit,
            };
            if !ok {
                return Err("typedData.spenders");
            }
        }
    }
    Ok(())
}
