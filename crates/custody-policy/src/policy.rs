//! [`Policy`]: a wallet's rules as data a person can read (JSON, schema in
//! `policy.schema.json`, exported as [`POLICY_SCHEMA`]), read strictly and
//! evaluated deterministically ([`Policy::evaluate`]).
//!
//! ```json
//! {
//!   "schema": "custody-policy/v1",
//!   "wallet": "treasury",
//!   "groups": {
//!     "owners": { "role": "owner", "members": ["alice", "bob", "carol"] }
//!   },
//!   "governance": { "group": "owners", "threshold": 2 },
//!   "rules": [
//!     { "id": "no-mixer", "effect": "deny",
//!       "when": { "destinationsAnyOf": ["0x722122dF12D4e14e13Ac3b6895a86e84145b6967"] } },
//!     { "id": "small-eth", "effect": "allow",
//!       "when": { "kinds": ["transaction"], "chainIds": [1], "assets": ["native"],
//!                 "maxAmount": "1000000000000000000" },
//!       "require": [{ "group": "owners", "threshold": 1 }] }
//!   ],
//!   "limits": [
//!     { "id": "eth-per-day", "asset": "native", "windowSeconds": 86400,
//!       "max": "5000000000000000000" }
//!   ]
//! }
//! ```
//!
//! The canonical form of a policy (what its hash covers and the log keeps)
//! is its JSON re-serialized from the parsed value: members in sorted
//! order, no whitespace, addresses in EIP-55 form, amounts in decimal, so
//! two spellings of one policy have one hash.

mod evaluate;
mod model;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use evaluate::{Decision, EvaluationInput, Spend, Step, StepResult, Verdict};
pub use model::{
    CallRule, Conditions, DomainRule, Effect, Group, Limit, MAX_RECOVERY_DELAY_SECONDS, Policy,
    RECOVERY_ROLE, RecoveryRule, Requirement, Rule, TypedRule,
};

use crate::error::PolicyError;

/// The JSON Schema (draft 2020-12) of a policy document.
pub const POLICY_SCHEMA: &str = include_str!("policy/policy.schema.json");

/// The `schema` member every policy carries.
pub const POLICY_FORMAT: &str = "custody-policy/v1";

/// Most bytes of policy JSON read.
pub const MAX_POLICY_BYTES: usize = 48 * 1024;
/// Most rules in a policy.
pub const MAX_RULES: usize = 256;
/// Most velocity limits in a policy.
pub const MAX_LIMITS: usize = 64;
/// Most approver groups in a policy.
pub const MAX_GROUPS: usize = 32;
/// Most members of a group, and entries of any list in a rule.
pub const MAX_LIST: usize = 1024;
/// Most bytes of a name (wallet, rule id, group, role, member, description).
pub const MAX_NAME_BYTES: usize = 256;

impl Policy {
    /// Reads a policy from its JSON, strictly: one object, no member twice,
    /// no unknown member, every reference resolved, every list bounded.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`] naming the member at fault and why.
    pub fn from_json(bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::invalid(
                "$",
                format!("over {MAX_POLICY_BYTES} bytes"),
            ));
        }
        let value = crate::webauthn::strict_json(bytes)
            .map_err(|reason| PolicyError::invalid("$", reason))?;
        model::parse(&value)
    }

    /// The canonical JSON (sorted members, no whitespace).
    #[must_use]
    pub fn to_canonical_json(&self) -> Vec<u8> {
        crate::canonical::to_vec(&self.to_json())
    }

    /// SHA-256 of the canonical JSON.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.to_canonical_json()).into()
    }

    /// The policy as a JSON value (the canonical form's members).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("schema".into(), POLICY_FORMAT.into());
        out.insert("wallet".into(), self.wallet.clone().into());
        let groups: Map<String, Value> = self
            .groups
            .iter()
            .map(|(name, group)| {
                let mut g = Map::new();
                g.insert("role".into(), group.role.clone().into());
                g.insert(
                    "members".into(),
                    group.members.iter().cloned().collect::<Vec<_>>().into(),
                );
                (name.clone(), Value::Object(g))
            })
            .collect();
        out.insert("groups".into(), Value::Object(groups));
        out.insert("governance".into(), requirement_json(&self.governance));
        out.insert(
            "rules".into(),
            self.rules.iter().map(rule_json).collect::<Vec<_>>().into(),
        );
        out.insert(
            "limits".into(),
            self.limits
                .iter()
                .map(|limit| {
                    let mut l = Map::new();
                    l.insert("id".into(), limit.id.clone().into());
                    l.insert("asset".into(), limit.asset.name().into());
                    l.insert("windowSeconds".into(), limit.window_seconds.into());
                    l.insert("max".into(), limit.max.to_string().into());
                    Value::Object(l)
                })
                .collect::<Vec<_>>()
                .into(),
        );
        out.insert("allowRawDigest".into(), self.allow_raw_digest.into());
        out.insert(
            "requireUserVerification".into(),
            self.require_user_verification.into(),
        );
        // Only when set: a policy without recovery hashes as it always did.
        if let Some(recovery) = &self.recovery {
            out.insert(
                "recovery".into(),
                serde_json::json!({
                    "group": recovery.group,
                    "threshold": recovery.threshold,
                    "delaySeconds": recovery.delay_seconds,
                }),
            );
        }
        Value::Object(out)
    }
}

fn requirement_json(req: &Requirement) -> Value {
    let mut r = Map::new();
    r.insert("group".into(), req.group.clone().into());
    r.insert("threshold".into(), req.threshold.into());
    Value::Object(r)
}

fn addresses_json(set: &BTreeSet<custody_eth::Address>) -> Value {
    set.iter()
        .map(custody_eth::Address::to_checksum)
        .collect::<Vec<_>>()
        .into()
}

fn rule_json(rule: &Rule) -> Value {
    let mut r = Map::new();
    r.insert("id".into(), rule.id.clone().into());
    r.insert(
        "effect".into(),
        match rule.effect {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
        .into(),
    );
    if let Some(description) = &rule.description {
        r.insert("description".into(), description.clone().into());
    }
    r.insert("when".into(), conditions_json(&rule.when));
    if !rule.require.is_empty() {
        r.insert(
            "require".into(),
            rule.require
                .iter()
                .map(requirement_json)
                .collect::<Vec<_>>()
                .into(),
        );
    }
    if rule.delay_seconds != 0 {
        r.insert("delaySeconds".into(), rule.delay_seconds.into());
    }
    Value::Object(r)
}

fn conditions_json(when: &Conditions) -> Value {
    let mut c = Map::new();
    if let Some(kinds) = &when.kinds {
        c.insert(
            "kinds".into(),
            kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().into(),
        );
    }
    if let Some(ids) = &when.chain_ids {
        c.insert(
            "chainIds".into(),
            ids.iter().copied().collect::<Vec<_>>().into(),
        );
    }
    if let Some(set) = &when.destinations_within {
        c.insert("destinationsWithin".into(), addresses_json(set));
    }
    if let Some(set) = &when.destinations_any_of {
        c.insert("destinationsAnyOf".into(), addresses_json(set));
    }
    if let Some(assets) = &when.assets {
        c.insert(
            "assets".into(),
            assets.iter().map(|a| a.name()).collect::<Vec<_>>().into(),
        );
    }
    if let Some(max) = &when.max_amount {
        c.insert("maxAmount".into(), max.to_string().into());
    }
    if let Some(calls) = &when.calls {
        c.insert(
            "calls".into(),
            calls
                .iter()
                .map(|call| {
                    let mut m = Map::new();
                    m.insert("contract".into(), call.contract.to_checksum().into());
                    m.insert(
                        "selectors".into(),
                        call.selectors
                            .iter()
                            .map(|s| format!("0x{}", hex::encode(s)))
                            .collect::<Vec<_>>()
                            .into(),
                    );
                    Value::Object(m)
                })
                .collect::<Vec<_>>()
                .into(),
        );
    }
    if let Some(creation) = when.contract_creation {
        c.insert("contractCreation".into(), creation.into());
    }
    if let Some(typed) = &when.typed_data {
        let mut t = Map::new();
        if let Some(domains) = &typed.domains {
            t.insert(
                "domains".into(),
                domains.iter().map(domain_json).collect::<Vec<_>>().into(),
            );
        }
        if let Some(types) = &typed.primary_types {
            t.insert(
                "primaryTypes".into(),
                types.iter().cloned().collect::<Vec<_>>().into(),
            );
        }
        if let Some(spenders) = &typed.spenders {
            t.insert("spenders".into(), addresses_json(spenders));
        }
        c.insert("typedData".into(), Value::Object(t));
    }
    Value::Object(c)
}

fn domain_json(domain: &DomainRule) -> Value {
    let mut d = Map::new();
    if let Some(name) = &domain.name {
        d.insert("name".into(), name.clone().into());
    }
    if let Some(version) = &domain.version {
        d.insert("version".into(), version.clone().into());
    }
    if let Some(chain_id) = &domain.chain_id {
        d.insert("chainId".into(), (*chain_id).into());
    }
    if let Some(contract) = &domain.verifying_contract {
        d.insert("verifyingContract".into(), contract.to_checksum().into());
    }
    Value::Object(d)
}

/// Groups by name (used by the model and the evaluator).
pub(crate) type Groups = BTreeMap<String, Group>;
