//! The policy's parts, and reading them from JSON.

use std::collections::{BTreeMap, BTreeSet};

use custody_eth::{Address, U256};
use serde_json::Value;

use super::{Groups, MAX_GROUPS, MAX_LIMITS, MAX_LIST, MAX_NAME_BYTES, MAX_RULES, POLICY_FORMAT};
use crate::error::PolicyError;
use crate::facts::Asset;
use crate::operation::OperationKind;

/// A wallet's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) wallet: String,
    pub(crate) groups: Groups,
    pub(crate) governance: Requirement,
    pub(crate) rules: Vec<Rule>,
    pub(crate) limits: Vec<Limit>,
    pub(crate) allow_raw_digest: bool,
    pub(crate) require_user_verification: bool,
    pub(crate) recovery: Option<RecoveryRule>,
}

impl Policy {
    /// The wallet the policy governs.
    #[must_use]
    pub fn wallet(&self) -> &str {
        &self.wallet
    }

    /// The approver groups, by name.
    #[must_use]
    pub fn groups(&self) -> &BTreeMap<String, Group> {
        &self.groups
    }

    /// Who must approve a change of this policy (or of a device).
    #[must_use]
    pub fn governance(&self) -> &Requirement {
        &self.governance
    }

    /// The rules, in document order.
    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The rolling-window limits.
    #[must_use]
    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// Whether bare digests may be signed at all (off unless opted in).
    #[must_use]
    pub fn allow_raw_digest(&self) -> bool {
        self.allow_raw_digest
    }

    /// Whether approvals need user verification (UV), not only presence.
    #[must_use]
    pub fn require_user_verification(&self) -> bool {
        self.require_user_verification
    }

    /// How an approver's account is recovered, if the policy allows it
    /// (see [`crate::log`], "Recovery").
    #[must_use]
    pub fn recovery(&self) -> Option<&RecoveryRule> {
        self.recovery.as_ref()
    }
}

/// The policy's `recovery` member: a new device for an approver who lost
/// theirs, authorised by `threshold` (at least 2) distinct members of
/// `group` (a group of role [`RECOVERY_ROLE`]), usable only once at least
/// `delay_seconds` have passed, during which any existing device can veto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRule {
    /// The group whose members authorise a recovery (its role must be
    /// [`RECOVERY_ROLE`]).
    pub group: String,
    /// How many distinct members (2 or more).
    pub threshold: u32,
    /// The shortest delay between a recovery entry and its device's first
    /// use, in seconds (1 or more).
    pub delay_seconds: u64,
}

/// The role of the group a [`RecoveryRule`] names.
pub const RECOVERY_ROLE: &str = "support";

/// The longest recovery delay a policy may set (one year).
pub const MAX_RECOVERY_DELAY_SECONDS: u64 = 366 * 86_400;

/// A group of approvers with a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The role (e.g. `owner`, `support`).
    pub role: String,
    /// Approver ids.
    pub members: BTreeSet<String>,
}

/// At least `threshold` distinct members of `group` approve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The group's name.
    pub group: String,
    /// How many of its members.
    pub threshold: u32,
}

/// Whether a rule allows or denies what it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Allows, once its requirements are met.
    Allow,
    /// Denies; a matching deny always wins.
    Deny,
}

/// A rule: an effect on the operations its conditions match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// A unique id, named in every verdict it decides.
    pub id: String,
    /// Allow or deny.
    pub effect: Effect,
    /// A note for people.
    pub description: Option<String>,
    /// What the rule matches (every given condition must hold).
    pub when: Conditions,
    /// Approvals an allow needs (all of them); none: no approval.
    pub require: Vec<Requirement>,
    /// Seconds between an allowed operation's proposal and its signing,
    /// during which any member of the governance group can veto it.
    pub delay_seconds: u64,
}

/// A rule's conditions; absent ones hold for every operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// The operation's kind is one of these.
    pub kinds: Option<BTreeSet<OperationKind>>,
    /// The operation names one of these chains.
    pub chain_ids: Option<BTreeSet<u64>>,
    /// Every destination is one of these (and there is one).
    pub destinations_within: Option<BTreeSet<Address>>,
    /// Some destination is one of these (a deny-list).
    pub destinations_any_of: Option<BTreeSet<Address>>,
    /// The operation moves value, and every transfer is of one of these
    /// assets.
    pub assets: Option<BTreeSet<Asset>>,
    /// Every transfer moves at most this much.
    pub max_amount: Option<U256>,
    /// The operation is a call of an allowed selector of one of these
    /// contracts. An allow rule without it never matches calldata.
    pub calls: Option<Vec<CallRule>>,
    /// The operation does (or does not) create a contract. An allow rule
    /// matches a creation only with `true`.
    pub contract_creation: Option<bool>,
    /// EIP-712 rules.
    pub typed_data: Option<TypedRule>,
}

/// The selectors allowed on one contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRule {
    /// The contract.
    pub contract: Address,
    /// The function selectors.
    pub selectors: BTreeSet<[u8; 4]>,
}

/// Conditions on EIP-712 typed data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypedRule {
    /// The domain matches one of these.
    pub domains: Option<Vec<DomainRule>>,
    /// The primary type is one of these.
    pub primary_types: Option<BTreeSet<String>>,
    /// The message's `spender` is one of these (and a permit names one).
    pub spenders: Option<BTreeSet<Address>>,
}

/// An EIP-712 domain pattern: each given field must equal the domain's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainRule {
    /// `name`.
    pub name: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `chainId`.
    pub chain_id: Option<u64>,
    /// `verifyingContract`.
    pub verifying_contract: Option<Address>,
}

/// A rolling-window limit on one asset's outflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// A unique id, named in the verdicts it decides.
    pub id: String,
    /// The asset.
    pub asset: Asset,
    /// The window's length in seconds.
    pub window_seconds: u64,
    /// Most of the asset that may leave within any window.
    pub max: U256,
}

// --- reading -----------------------------------------------------------------

/// A JSON object's members, each read at most once; what is left at the
/// end is unknown and refused.
struct Members<'a> {
    path: String,
    members: BTreeMap<&'a str, &'a Value>,
}

impl<'a> Members<'a> {
    fn of(value: &'a Value, path: &str) -> Result<Self, PolicyError> {
        let Value::Object(map) = value else {
            return Err(PolicyError::invalid(path, "not an object"));
        };
        Ok(Self {
            path: path.to_owned(),
            members: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
        })
    }

    fn path(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    fn take(&mut self, name: &str) -> Option<&'a Value> {
        self.members.remove(name)
    }

    fn required(&mut self, name: &str) -> Result<&'a Value, PolicyError> {
        self.take(name)
            .ok_or_else(|| PolicyError::invalid(&self.path(name), "missing"))
    }

    fn finish(self) -> Result<(), PolicyError> {
        match self.members.keys().next() {
            Some(unknown) => Err(PolicyError::invalid(
                &format!("{}.{unknown}", self.path),
                "unknown member",
            )),
            None => Ok(()),
        }
    }
}

fn name(value: &Value, path: &str) -> Result<String, PolicyError> {
    let Value::String(s) = value else {
        return Err(PolicyError::invalid(path, "not a string"));
    };
    if s.is_empty() || s.len() > MAX_NAME_BYTES || s.chars().any(char::is_control) {
        return Err(PolicyError::invalid(
            path,
            format!("not 1 to {MAX_NAME_BYTES} bytes without control characters"),
        ));
    }
    Ok(s.clone())
}

fn boolean(value: &Value, path: &str) -> Result<bool, PolicyError> {
    value
        .as_bool()
        .ok_or_else(|| PolicyError::invalid(path, "not true or false"))
}

fn unsigned(value: &Value, path: &str) -> Result<u64, PolicyError> {
    value
        .as_u64()
        .ok_or_else(|| PolicyError::invalid(path, "not an integer from 0 to 2^64-1"))
}

fn list<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], PolicyError> {
    let Value::Array(items) = value else {
        return Err(PolicyError::invalid(path, "not an array"));
    };
    if items.is_empty() || items.len() > MAX_LIST {
        return Err(PolicyError::invalid(
            path,
            format!("not 1 to {MAX_LIST} entries"),
        ));
    }
    Ok(items)
}

/// A set read from a list, each entry read by `read`; a repeated entry is
/// refused (it would mean the author thought of two things).
fn set<T: Ord>(
    value: &Value,
    path: &str,
    read: impl Fn(&Value, &str) -> Result<T, PolicyError>,
) -> Result<BTreeSet<T>, PolicyError> {
    let mut out = BTreeSet::new();
    for (i, item) in list(value, path)?.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        if !out.insert(read(item, &item_path)?) {
            return Err(PolicyError::invalid(&item_path, "repeated"));
        }
    }
    Ok(out)
}

fn address(value: &Value, path: &str) -> Result<Address, PolicyError> {
    let text = value
        .as_str()
        .ok_or_else(|| PolicyError::invalid(path, "not a string"))?;
    Address::parse(text).map_err(|e| PolicyError::invalid(path, e.to_string()))
}

fn amount(value: &Value, path: &str) -> Result<U256, PolicyError> {
    let text = value
        .as_str()
        .ok_or_else(|| PolicyError::invalid(path, "not a string (amounts are decimal strings)"))?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PolicyError::invalid(path, "not a decimal number"));
    }
    U256::parse(text).map_err(|e| PolicyError::invalid(path, e.to_string()))
}

fn asset(value: &Value, path: &str) -> Result<Asset, PolicyError> {
    match value.as_str() {
        Some("native") => Ok(Asset::Native),
        Some(_) => address(value, path).map(Asset::Token),
        None => Err(PolicyError::invalid(path, "not a string")),
    }
}

fn selector(value: &Value, path: &str) -> Result<[u8; 4], PolicyError> {
    let text = value.as_str().and_then(|s| s.strip_prefix("0x"));
    let mut out = [0u8; 4];
    match text {
        Some(digits) if digits.len() == 8 && hex::decode_to_slice(digits, &mut out).is_ok() => {
            Ok(out)
        }
        _ => Err(PolicyError::invalid(path, "not 0x and 8 hex digits")),
    }
}

fn kind(value: &Value, path: &str) -> Result<OperationKind, PolicyError> {
    match value.as_str().and_then(OperationKind::from_name) {
        Some(OperationKind::PolicyChange) => Err(PolicyError::invalid(
            path,
            "policy changes follow `governance`, not rules",
        )),
        Some(OperationKind::Veto) => Err(PolicyError::invalid(
            path,
            "a veto signs nothing: any approver's device may veto a delayed operation",
        )),
        Some(kind) => Ok(kind),
        None => Err(PolicyError::invalid(
            path,
            "not one of transaction, personal-message, typed-data, authorization, raw-digest",
        )),
    }
}

fn requirement(value: &Value, path: &str, groups: &Groups) -> Result<Requirement, PolicyError> {
    let mut m = Members::of(value, path)?;
    let group_path = m.path("group");
    let group = name(m.required("group")?, &group_path)?;
    let Some(members) = groups.get(&group).map(|g| g.members.len()) else {
        return Err(PolicyError::invalid(&group_path, "no such group"));
    };
    let threshold_path = m.path("threshold");
    let threshold = unsigned(m.required("threshold")?, &threshold_path)?;
    if threshold == 0 || threshold > members as u64 {
        return Err(PolicyError::invalid(
            &threshold_path,
            format!("not 1 to the group's {members} members"),
        ));
    }
    m.finish()?;
    Ok(Requirement {
        group,
        // At most MAX_LIST (1024), checked just above.
        threshold: u32::try_from(threshold).unwrap_or(u32::MAX),
    })
}

/// Reads and checks a whole policy.
pub(super) fn parse(value: &Value) -> Result<Policy, PolicyError> {
    let mut m = Members::of(value, "$")?;
    let format_path = m.path("schema");
    if m.required("schema")?.as_str() != Some(POLICY_FORMAT) {
        return Err(PolicyError::invalid(
            &format_path,
            format!("not {POLICY_FORMAT:?}"),
        ));
    }
    let wallet_path = m.path("wallet");
    let wallet = name(m.required("wallet")?, &wallet_path)?;
    let groups_path = m.path("groups");
    let groups = parse_groups(m.required("groups")?, &groups_path)?;
    let governance_path = m.path("governance");
    let governance = requirement(m.required("governance")?, &governance_path, &groups)?;
    let rules_path = m.path("rules");
    let rules = match m.take("rules") {
        Some(value) => parse_rules(value, &rules_path, &groups)?,
        None => Vec::new(),
    };
    let limits_path = m.path("limits");
    let limits = match m.take("limits") {
        Some(value) => parse_limits(value, &limits_path)?,
        None => Vec::new(),
    };
    let raw_path = m.path("allowRawDigest");
    let allow_raw_digest = match m.take("allowRawDigest") {
        Some(v) => boolean(v, &raw_path)?,
        None => false,
    };
    let uv_path = m.path("requireUserVerification");
    let require_user_verification = match m.take("requireUserVerification") {
        Some(v) => boolean(v, &uv_path)?,
        None => true,
    };
    let recovery_path = m.path("recovery");
    let recovery = match m.take("recovery") {
        Some(v) => Some(recovery_rule(v, &recovery_path, &groups)?),
        None => None,
    };
    m.finish()?;
    Ok(Policy {
        wallet,
        groups,
        governance,
        rules,
        limits,
        allow_raw_digest,
        require_user_verification,
        recovery,
    })
}

fn recovery_rule(value: &Value, path: &str, groups: &Groups) -> Result<RecoveryRule, PolicyError> {
    let mut m = Members::of(value, path)?;
    let group_path = m.path("group");
    let group = name(m.required("group")?, &group_path)?;
    let Some(found) = groups.get(&group) else {
        return Err(PolicyError::invalid(&group_path, "no such group"));
    };
    if found.role != RECOVERY_ROLE {
        return Err(PolicyError::invalid(
            &group_path,
            format!("not a group of role {RECOVERY_ROLE:?}"),
        ));
    }
    let members = found.members.len() as u64;
    let threshold_path = m.path("threshold");
    let threshold = unsigned(m.required("threshold")?, &threshold_path)?;
    if threshold < 2 || threshold > members {
        return Err(PolicyError::invalid(
            &threshold_path,
            format!("not 2 to the group's {members} members"),
        ));
    }
    let delay_path = m.path("delaySeconds");
    let delay_seconds = unsigned(m.required("delaySeconds")?, &delay_path)?;
    if delay_seconds == 0 || delay_seconds > MAX_RECOVERY_DELAY_SECONDS {
        return Err(PolicyError::invalid(
            &delay_path,
            format!("not 1 to {MAX_RECOVERY_DELAY_SECONDS} seconds"),
        ));
    }
    m.finish()?;
    Ok(RecoveryRule {
        group,
        // At most the group's members (MAX_LIST), checked just above.
        threshold: u32::try_from(threshold).unwrap_or(u32::MAX),
        delay_seconds,
    })
}

fn parse_groups(value: &Value, path: &str) -> Result<Groups, PolicyError> {
    let Value::Object(map) = value else {
        return Err(PolicyError::invalid(path, "not an object"));
    };
    if map.is_empty() || map.len() > MAX_GROUPS {
        return Err(PolicyError::invalid(
            path,
            format!("not 1 to {MAX_GROUPS} groups"),
        ));
    }
    let mut groups = Groups::new();
    for (group_name, group) in map {
        let group_path = format!("{path}.{group_name}");
        name(&Value::String(group_name.clone()), &group_path)?;
        let mut g = Members::of(group, &group_path)?;
        let role_path = g.path("role");
        let role = name(g.required("role")?, &role_path)?;
        let members_path = g.path("members");
        let members = set(g.required("members")?, &members_path, name)?;
        g.finish()?;
        groups.insert(group_name.clone(), Group { role, members });
    }
    Ok(groups)
}

fn parse_rules(value: &Value, path: &str, groups: &Groups) -> Result<Vec<Rule>, PolicyError> {
    let Value::Array(items) = value else {
        return Err(PolicyError::invalid(path, "not an array"));
    };
    if items.len() > MAX_RULES {
        return Err(PolicyError::invalid(
            path,
            format!("over {MAX_RULES} rules"),
        ));
    }
    let mut ids = BTreeSet::new();
    let mut rules = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let rule_path = format!("{path}[{i}]");
        let rule = parse_rule(item, &rule_path, groups)?;
        if !ids.insert(rule.id.clone()) {
            return Err(PolicyError::invalid(
                &format!("{rule_path}.id"),
                "another rule has this id",
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn parse_rule(value: &Value, path: &str, groups: &Groups) -> Result<Rule, PolicyError> {
    let mut m = Members::of(value, path)?;
    let id_path = m.path("id");
    let id = name(m.required("id")?, &id_path)?;
    let effect_path = m.path("effect");
    let effect = match m.required("effect")?.as_str() {
        Some("allow") => Effect::Allow,
        Some("deny") => Effect::Deny,
        _ => return Err(PolicyError::invalid(&effect_path, "not allow or deny")),
    };
    let description_path = m.path("description");
    let description = m
        .take("description")
        .map(|v| name(v, &description_path))
        .transpose()?;
    let when_path = m.path("when");
    let when = match m.take("when") {
        Some(v) => parse_conditions(v, &when_path)?,
        None => Conditions::default(),
    };
    let require_path = m.path("require");
    let require = match m.take("require") {
        Some(v) => {
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for (i, item) in list(v, &require_path)?.iter().enumerate() {
                let item_path = format!("{require_path}[{i}]");
                let req = requirement(item, &item_path, groups)?;
                if !seen.insert(req.group.clone()) {
                    return Err(PolicyError::invalid(&item_path, "group required twice"));
                }
                out.push(req);
            }
            out
        }
        None => Vec::new(),
    };
    let delay_path = m.path("delaySeconds");
    let delay_seconds = match m.take("delaySeconds") {
        Some(v) => unsigned(v, &delay_path)?,
        None => 0,
    };
    m.finish()?;
    if effect == Effect::Deny && (!require.is_empty() || delay_seconds != 0) {
        return Err(PolicyError::invalid(
            path,
            "a deny rule takes no `require` or `delaySeconds`",
        ));
    }
    Ok(Rule {
        id,
        effect,
        description,
        when,
        require,
        delay_seconds,
    })
}

fn parse_conditions(value: &Value, path: &str) -> Result<Conditions, PolicyError> {
    let mut m = Members::of(value, path)?;
    let mut when = Conditions::default();
    if let Some(v) = m.take("kinds") {
        when.kinds = Some(set(v, &m.path("kinds"), kind)?);
    }
    if let Some(v) = m.take("chainIds") {
        when.chain_ids = Some(set(v, &m.path("chainIds"), unsigned)?);
    }
    if let Some(v) = m.take("destinationsWithin") {
        when.destinations_within = Some(set(v, &m.path("destinationsWithin"), address)?);
    }
    if let Some(v) = m.take("destinationsAnyOf") {
        when.destinations_any_of = Some(set(v, &m.path("destinationsAnyOf"), address)?);
    }
    if let Some(v) = m.take("assets") {
        when.assets = Some(set(v, &m.path("assets"), asset)?);
    }
    if let Some(v) = m.take("maxAmount") {
        when.max_amount = Some(amount(v, &m.path("maxAmount"))?);
    }
    if let Some(v) = m.take("calls") {
        let calls_path = m.path("calls");
        let mut contracts = BTreeSet::new();
        let mut calls = Vec::new();
        for (i, item) in list(v, &calls_path)?.iter().enumerate() {
            let item_path = format!("{calls_path}[{i}]");
            let mut c = Members::of(item, &item_path)?;
            let contract_path = c.path("contract");
            let contract = address(c.required("contract")?, &contract_path)?;
            if !contracts.insert(contract) {
                return Err(PolicyError::invalid(
                    &contract_path,
                    "contract listed twice",
                ));
            }
            let selectors_path = c.path("selectors");
            let selectors = set(c.required("selectors")?, &selectors_path, selector)?;
            c.finish()?;
            calls.push(CallRule {
                contract,
                selectors,
            });
        }
        when.calls = Some(calls);
    }
    if let Some(v) = m.take("contractCreation") {
        when.contract_creation = Some(boolean(v, &m.path("contractCreation"))?);
    }
    if let Some(v) = m.take("typedData") {
        when.typed_data = Some(parse_typed(v, &m.path("typedData"))?);
    }
    m.finish()?;
    Ok(when)
}

fn parse_typed(value: &Value, path: &str) -> Result<TypedRule, PolicyError> {
    let mut m = Members::of(value, path)?;
    let mut typed = TypedRule::default();
    if let Some(v) = m.take("domains") {
        let domains_path = m.path("domains");
        let mut domains = Vec::new();
        for (i, item) in list(v, &domains_path)?.iter().enumerate() {
            let item_path = format!("{domains_path}[{i}]");
            let mut d = Members::of(item, &item_path)?;
            let mut domain = DomainRule::default();
            if let Some(v) = d.take("name") {
                domain.name = Some(name(v, &d.path("name"))?);
            }
            if let Some(v) = d.take("version") {
                domain.version = Some(name(v, &d.path("version"))?);
            }
            if let Some(v) = d.take("chainId") {
                domain.chain_id = Some(unsigned(v, &d.path("chainId"))?);
            }
            if let Some(v) = d.take("verifyingContract") {
                domain.verifying_contract = Some(address(v, &d.path("verifyingContract"))?);
            }
            d.finish()?;
            if domain == DomainRule::default() {
                return Err(PolicyError::invalid(
                    &item_path,
                    "a domain pattern names at least one field",
                ));
            }
            domains.push(domain);
        }
        typed.domains = Some(domains);
    }
    if let Some(v) = m.take("primaryTypes") {
        typed.primary_types = Some(set(v, &m.path("primaryTypes"), name)?);
    }
    if let Some(v) = m.take("spenders") {
        typed.spenders = Some(set(v, &m.path("spenders"), address)?);
    }
    m.finish()?;
    Ok(typed)
}

fn parse_limits(value: &Value, path: &str) -> Result<Vec<Limit>, PolicyError> {
    let Value::Array(items) = value else {
        return Err(PolicyError::invalid(path, "not an array"));
    };
    if items.len() > MAX_LIMITS {
        return Err(PolicyError::invalid(
            path,
            format!("over {MAX_LIMITS} limits"),
        ));
    }
    let mut ids = BTreeSet::new();
    let mut limits = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let mut m = Members::of(item, &item_path)?;
        let id_path = m.path("id");
        let id = name(m.required("id")?, &id_path)?;
        if !ids.insert(id.clone()) {
            return Err(PolicyError::invalid(&id_path, "another limit has this id"));
        }
        let asset_path = m.path("asset");
        let asset = asset(m.required("asset")?, &asset_path)?;
        let window_path = m.path("windowSeconds");
        let window_seconds = unsigned(m.required("windowSeconds")?, &window_path)?;
        if window_seconds == 0 {
            return Err(PolicyError::invalid(&window_path, "zero"));
        }
        let max_path = m.path("max");
        let max = amount(m.required("max")?, &max_path)?;
        m.finish()?;
        limits.push(Limit {
            id,
            asset,
            window_seconds,
            max,
        });
    }
    Ok(limits)
}
