//! [`PolicyLog`]: a wallet's policies and approvers' devices as an
//! append-only, hash-chained log of signed entries in a state store.
//!
//! Each entry changes one thing — the wallet's policy, or an approver's
//! device — and carries the proof that whoever may make that change made
//! it, over the change's operation hash
//! ([`Operation::PolicyChange`]: the wallet, the SHA-256 of the change's
//! canonical JSON, and the hash of the entry it extends):
//!
//! | change | authorised by |
//! |---|---|
//! | the wallet's first policy | the policy key's signature |
//! | a later policy | assertions of the current policy's `governance` quorum |
//! | a new approver's device | the policy key's signature (the node vouches for the user–credential pair) |
//! | another device of an approver | an assertion of one of that approver's devices |
//! | a recovery (a new device for an approver who lost theirs) | assertions of the policy's `recovery` threshold (2 or more) of distinct support approvers, not the one recovered |
//! | a veto of a pending recovery | an assertion of any existing (active) device of the log |
//!
//! A credential (by id or by key) appears at most once in a log.
//!
//! # Recovery
//! An approver who lost every device gets a new one through a `recovery`
//! entry: the new credential, the approver, and `activatesAt`, a time at
//! least the policy's `recovery.delaySeconds` after the entry's. Its
//! authorisation is the assertions of `recovery.threshold` distinct
//! members of the policy's `recovery.group` (a group of role `support`)
//! over the entry's operation hash, so the new key is signed by two (or
//! more) support keys. The device counts for approvals only from
//! `activatesAt` on ([`LogState::settle`]: at each later entry's time on
//! replay, at the decision's time in [`crate::gate::PolicyNode`]), and
//! never if a `veto` entry names the recovery (its entry hash) before
//! then: any existing device of the log may veto, so every approver who
//! still has a device sees the recovery and can stop it during the delay.
//! A veto at or after `activatesAt` is refused, as are a second veto, a
//! recovery by one support approver (even twice, or with two of their
//! devices), a delay shorter than the policy's, and a recovery replayed
//! (its credential is in the log; its assertions sign the log position
//! they were made for). Entry times never go back, so an appender cannot
//! date a veto before a recovery's activation after the fact without
//! dating everything after it too.
//!
//! Storage: entries are immutable, under
//! `policy/<wallet>/entry/<index>/<entry hash>` (content-addressed, so two
//! replicas racing to append never overwrite each other's entry), and one
//! mutable head `policy/<wallet>/head` moved by compare-and-swap: the
//! first to move it appended; the loser's entry is an unreferenced orphan.
//! (`<wallet>` is the hex of the wallet name's UTF-8.) `policy/governed`
//! lists the wallets that have a log, so a gate knows which keys it
//! governs.
//!
//! Reading a log replays it from its first entry: the chain of hashes,
//! each entry's index, and each entry's authorisation against the log as
//! it stood before it. A reader that has seen a [`Checkpoint`] refuses a
//! log that does not extend it (rolled back, or forked).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use custody_core::{CasOutcome, Digest32, Pending, PublicKey, RecoverableSignature, StateStore};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::error::PolicyError;
use crate::operation::{Operation, OperationHash};
use crate::policy::Policy;
use crate::webauthn::{
    AssertionResponse, Credential, CredentialKey, CredentialStore, RelyingParty, to_base64url,
};

/// The domain tag of an entry's hash.
const ENTRY_TAG: &[u8] = b"custody/policy-log/v1\0";

/// Most bytes of a stored entry (within the state store's value limit).
const MAX_ENTRY_BYTES: usize = 60 * 1024;

/// Most approvals on one entry.
const MAX_APPROVALS: usize = 64;

/// A position in a log: an entry's index and hash. A reader that keeps the
/// last one it saw detects a log rolled back or forked behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The entry's index (0 for the first).
    pub index: u64,
    /// The entry's hash.
    pub hash: [u8; 32],
}

/// What one entry changes.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The wallet's policy from this entry on.
    Policy(Box<Policy>),
    /// A device (WebAuthn credential) of an approver.
    Device {
        /// The approver's id (as policies name approvers).
        approver: String,
        /// The credential.
        credential: Credential,
    },
    /// Account recovery: a new device for an approver who lost theirs,
    /// usable from `activates_at` on unless vetoed before (see the module
    /// doc, "Recovery").
    Recovery {
        /// The approver recovered.
        approver: String,
        /// The new device.
        credential: Credential,
        /// Unix seconds from which the device counts; at least the
        /// policy's delay after the entry.
        activates_at: u64,
    },
    /// Cancels a pending recovery.
    Veto {
        /// The recovery's id: the hash of its entry.
        recovery: [u8; 32],
    },
}

impl Change {
    /// The change as canonical JSON (what its hash covers).
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Self::Policy(policy) => json!({ "policy": policy.to_json() }),
            Self::Device {
                approver,
                credential,
            } => json!({ "device": device_json(approver, credential) }),
            Self::Recovery {
                approver,
                credential,
                activates_at,
            } => {
                let mut recovery = device_json(approver, credential);
                recovery.insert("activatesAt".into(), (*activates_at).into());
                json!({ "recovery": recovery })
            }
            Self::Veto { recovery } => json!({ "veto": { "recovery": hex::encode(recovery) } }),
        }
    }

    /// SHA-256 of the canonical JSON.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(canonical(&self.to_json())).into()
    }

    fn from_json(value: &Value, index: u64) -> Result<Self, PolicyError> {
        let broken = |reason: &'static str| PolicyError::LogBroken { index, reason };
        let Value::Object(map) = value else {
            return Err(broken("the change is not an object"));
        };
        if map.len() != 1 {
            return Err(broken("the change is not exactly one member"));
        }
        if let Some(policy) = map.get("policy") {
            let bytes = canonical(policy);
            return Ok(Self::Policy(Box::new(Policy::from_json(&bytes)?)));
        }
        if let Some(Value::Object(device)) = map.get("device") {
            if device.len() != 3 {
                return Err(broken("a device is not exactly its three members"));
            }
            let (approver, credential) = device_of(device, index)?;
            return Ok(Self::Device {
                approver,
                credential,
            });
        }
        if let Some(Value::Object(recovery)) = map.get("recovery") {
            if recovery.len() != 4 {
                return Err(broken("a recovery is not exactly its four members"));
            }
            let (approver, credential) = device_of(recovery, index)?;
            let activates_at = recovery
                .get("activatesAt")
                .and_then(Value::as_u64)
                .ok_or(broken("a recovery's activatesAt is not a number"))?;
            return Ok(Self::Recovery {
                approver,
                credential,
                activates_at,
            });
        }
        if let Some(Value::Object(veto)) = map.get("veto") {
            if veto.len() != 1 {
                return Err(broken("a veto is not exactly its one member"));
            }
            let recovery = hash_member(veto, "recovery").ok_or(broken("a veto's recovery"))?;
            return Ok(Self::Veto { recovery });
        }
        Err(broken(
            "the change is neither a policy, a device, a recovery nor a veto",
        ))
    }
}

/// The members a `device` and a `recovery` change share.
fn device_json(approver: &str, credential: &Credential) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("approver".into(), approver.into());
    out.insert("credentialId".into(), to_base64url(&credential.id).into());
    out.insert(
        "publicKey".into(),
        to_base64url(&credential.key.to_cose()).into(),
    );
    out
}

/// The approver and credential of a `device` or `recovery` change.
fn device_of(device: &Map<String, Value>, index: u64) -> Result<(String, Credential), PolicyError> {
    let broken = |reason: &'static str| PolicyError::LogBroken { index, reason };
    let field = |name: &str| {
        device
            .get(name)
            .and_then(Value::as_str)
            .ok_or(broken("a device member is missing"))
    };
    let decode = |name: &str| {
        crate::webauthn::from_base64url(field(name)?, "device")
            .map_err(|_| broken("a device member is not base64url"))
    };
    let key = CredentialKey::from_cose(&decode("publicKey")?)
        .map_err(|_| broken("a device key does not parse"))?;
    Ok((
        field("approver")?.to_owned(),
        Credential {
            id: decode("credentialId")?,
            key,
        },
    ))
}

/// The proof that an entry's change was made by whoever may make it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryAuth {
    /// The policy key's signature over the change's operation hash.
    PolicyKey(RecoverableSignature),
    /// Approvers' WebAuthn assertions over the operation hash: each an
    /// approver id and the assertion as `PublicKeyCredential.toJSON()`.
    Approvals(Vec<(String, String)>),
}

/// One entry of a policy log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The wallet.
    pub wallet: String,
    /// Its position (0 for the first).
    pub index: u64,
    /// The hash of the entry before (zero for the first).
    pub previous: [u8; 32],
    /// Unix seconds when it was appended.
    pub at: u64,
    /// What it changes.
    pub change: Change,
    /// Who authorised it.
    pub auth: EntryAuth,
}

impl Entry {
    /// The operation whose hash the entry's authorisation signs.
    #[must_use]
    pub fn operation(&self) -> Operation {
        Operation::PolicyChange {
            wallet: self.wallet.clone(),
            change_hash: self.change.hash(),
            previous: self.previous,
        }
    }

    /// The entry's hash: SHA-256 over a tag and the canonical JSON of
    /// everything but the authorisation (which signs it, via the
    /// operation hash).
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        let body = json!({
            "wallet": self.wallet,
            "index": self.index,
            "previous": hex::encode(self.previous),
            "at": self.at,
            "change": self.change.to_json(),
        });
        let mut hasher = Sha256::new();
        hasher.update(ENTRY_TAG);
        hasher.update(canonical(&body));
        hasher.finalize().into()
    }

    /// The entry as stored: its body and its authorisation.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let auth = match &self.auth {
            EntryAuth::PolicyKey(signature) => {
                let mut bytes = signature.to_compact().to_vec();
                bytes.push(u8::from(signature.y_parity()));
                json!({ "policyKey": hex::encode(bytes) })
            }
            EntryAuth::Approvals(approvals) => json!({ "approvals": approvals
                .iter()
                .map(|(approver, assertion)| json!({"approver": approver, "assertion": assertion}))
                .collect::<Vec<_>>() }),
        };
        json!({
            "wallet": self.wallet,
            "index": self.index,
            "previous": hex::encode(self.previous),
            "at": self.at,
            "change": self.change.to_json(),
            "auth": auth,
        })
    }

    /// Reads a stored entry (untrusted bytes: every member checked).
    ///
    /// # Errors
    /// [`PolicyError::LogBroken`] naming what is wrong.
    pub fn from_json(bytes: &[u8], index: u64) -> Result<Self, PolicyError> {
        let broken = |reason: &'static str| PolicyError::LogBroken { index, reason };
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(broken("the entry is too large"));
        }
        let value = crate::webauthn::strict_json(bytes).map_err(|_| broken("not strict JSON"))?;
        let Value::Object(map) = &value else {
            return Err(broken("the entry is not an object"));
        };
        const MEMBERS: [&str; 6] = ["wallet", "index", "previous", "at", "change", "auth"];
        if map.len() != MEMBERS.len() || !MEMBERS.iter().all(|m| map.contains_key(*m)) {
            return Err(broken("the entry's members are not exactly the six"));
        }
        let wallet = map
            .get("wallet")
            .and_then(Value::as_str)
            .ok_or(broken("wallet"))?
            .to_owned();
        let stored_index = map
            .get("index")
            .and_then(Value::as_u64)
            .ok_or(broken("index"))?;
        if stored_index != index {
            return Err(broken("the entry's index is not its position"));
        }
        let previous = hash_member(map, "previous").ok_or(broken("previous"))?;
        let at = map.get("at").and_then(Value::as_u64).ok_or(broken("at"))?;
        let change = Change::from_json(map.get("change").unwrap_or(&Value::Null), index)?;
        let auth = match map.get("auth") {
            Some(Value::Object(auth)) if auth.len() == 1 => {
                if let Some(sig) = auth.get("policyKey").and_then(Value::as_str) {
                    let bytes = hex::decode(sig).map_err(|_| broken("policyKey"))?;
                    let (compact, parity) = match bytes.split_last() {
                        Some((&parity @ (0 | 1), compact)) if compact.len() == 64 => {
                            (compact, parity == 1)
                        }
                        _ => return Err(broken("policyKey is not 65 bytes")),
                    };
                    let (r, s) = compact.split_at(32);
                    let signature = RecoverableSignature::from_parts(
                        r.try_into().map_err(|_| broken("policyKey"))?,
                        s.try_into().map_err(|_| broken("policyKey"))?,
                        parity,
                    )
                    .map_err(|_| broken("policyKey is not a signature"))?;
                    EntryAuth::PolicyKey(signature)
                } else if let Some(Value::Array(items)) = auth.get("approvals") {
                    if items.is_empty() || items.len() > MAX_APPROVALS {
                        return Err(broken("approvals: not 1 to 64"));
                    }
                    let mut approvals = Vec::with_capacity(items.len());
                    for item in items {
                        let (Some(approver), Some(assertion)) = (
                            item.get("approver").and_then(Value::as_str),
                            item.get("assertion").and_then(Value::as_str),
                        ) else {
                            return Err(broken("an approval lacks approver or assertion"));
                        };
                        approvals.push((approver.to_owned(), assertion.to_owned()));
                    }
                    EntryAuth::Approvals(approvals)
                } else {
                    return Err(broken("auth is neither policyKey nor approvals"));
                }
            }
            _ => return Err(broken("auth")),
        };
        Ok(Self {
            wallet,
            index,
            previous,
            at,
            change,
            auth,
        })
    }
}

fn hash_member(map: &Map<String, Value>, name: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(map.get(name)?.as_str()?, &mut out).ok()?;
    Some(out)
}

/// Canonical JSON ([`crate::canonical`]).
fn canonical(value: &Value) -> Vec<u8> {
    crate::canonical::to_vec(value)
}

/// A recovery entry of a log and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Its id: the hash of its entry.
    pub id: [u8; 32],
    /// Its entry's index.
    pub index: u64,
    /// The approver recovered.
    pub approver: String,
    /// The new device.
    pub credential: Credential,
    /// Unix seconds from which the device counts, unless vetoed before.
    pub activates_at: u64,
    /// Where it stands.
    pub status: RecoveryStatus,
}

/// Where a [`Recovery`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryStatus {
    /// Waiting for its `activates_at`; a veto can still cancel it.
    Pending,
    /// Cancelled by the veto entry at this index; its device never counts.
    Vetoed {
        /// The veto entry's index.
        by: u64,
    },
    /// Its device counts for approvals.
    Active,
}

/// A log replayed: the wallet's current policy and approvers' devices.
#[derive(Debug, Clone, Default)]
pub struct LogState {
    wallet: String,
    head: Option<Checkpoint>,
    hashes: Vec<[u8; 32]>,
    policy: Option<Policy>,
    devices: BTreeMap<String, Vec<Credential>>,
    owners: BTreeMap<Vec<u8>, String>,
    keys: BTreeSet<Vec<u8>>,
    recoveries: Vec<Recovery>,
    /// The last entry's time: entries' times never go back.
    last_at: u64,
}

impl LogState {
    /// The last entry, if any.
    #[must_use]
    pub fn head(&self) -> Option<Checkpoint> {
        self.head
    }

    /// The current policy, if one was set.
    #[must_use]
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }

    /// The devices of `approver`.
    #[must_use]
    pub fn devices(&self, approver: &str) -> &[Credential] {
        self.devices.get(approver).map_or(&[], Vec::as_slice)
    }

    /// The approver a credential belongs to.
    #[must_use]
    pub fn owner_of(&self, credential_id: &[u8]) -> Option<&str> {
        self.owners.get(credential_id).map(String::as_str)
    }

    /// The log's recoveries, first first, as they stand at the last
    /// entry's time, or at the time of the last [`LogState::settle`].
    #[must_use]
    pub fn recoveries(&self) -> &[Recovery] {
        &self.recoveries
    }

    /// The state at `now` (Unix seconds): every pending recovery whose
    /// `activates_at` has come becomes active, its device counting for
    /// approvals from then on. A vetoed recovery never does. A decision
    /// at `now` settles the log it loaded first; replay settles at each
    /// entry's time.
    pub fn settle(&mut self, now: u64) {
        for recovery in &mut self.recoveries {
            if recovery.status == RecoveryStatus::Pending && recovery.activates_at <= now {
                recovery.status = RecoveryStatus::Active;
                self.owners
                    .insert(recovery.credential.id.clone(), recovery.approver.clone());
                self.devices
                    .entry(recovery.approver.clone())
                    .or_default()
                    .push(recovery.credential.clone());
            }
        }
    }

    /// Whether a credential (by id or by key) is in the log already, as a
    /// device or a recovery's, whatever became of it.
    fn knows(&self, credential: &Credential) -> bool {
        self.owners.contains_key(&credential.id)
            || self.keys.contains(&credential.key.to_cose())
            || self
                .recoveries
                .iter()
                .any(|r| r.credential.id == credential.id)
    }

    /// The operation a change appended next would be authorised over.
    #[must_use]
    pub fn next_operation(&self, change: &Change) -> Operation {
        Operation::PolicyChange {
            wallet: self.wallet.clone(),
            change_hash: change.hash(),
            previous: self.head.map_or([0; 32], |h| h.hash),
        }
    }

    /// Approver ids whose assertions over `challenge` verify with one of
    /// their own devices (user verification required if `uv`), with the
    /// counters presented. An assertion by a device of another approver
    /// than the one it claims, or by an unknown device, is refused.
    ///
    /// # Errors
    /// [`PolicyError::Approval`] for the first assertion that fails.
    pub fn verify_approvals(
        &self,
        rp: &RelyingParty,
        challenge: &OperationHash,
        approvals: &[(String, String)],
        uv: bool,
    ) -> Result<Vec<(String, Vec<u8>, u32)>, PolicyError> {
        let mut out = Vec::with_capacity(approvals.len());
        for (approver, json) in approvals {
            let fail = |reason: String| PolicyError::Approval {
                approver: approver.clone(),
                reason,
            };
            let response = AssertionResponse::from_json(json).map_err(|e| fail(e.to_string()))?;
            let credential = self
                .devices(approver)
                .iter()
                .find(|c| c.id == response.credential_id)
                .ok_or_else(|| fail("not a device of this approver".into()))?;
            let verified = rp
                .verify_assertion(credential, challenge.as_bytes(), &response)
                .map_err(|e| fail(e.to_string()))?;
            if uv && !verified.user_verified {
                return Err(fail("the policy requires user verification".into()));
            }
            out.push((approver.clone(), credential.id.clone(), verified.sign_count));
        }
        Ok(out)
    }

    /// Applies `entry`, checking that it extends this state and is
    /// authorised by it.
    fn apply(
        &mut self,
        entry: Entry,
        hash: [u8; 32],
        rp: &RelyingParty,
        policy_key: &PublicKey,
    ) -> Result<Vec<(String, Vec<u8>, u32)>, PolicyError> {
        let index = entry.index;
        let broken = |reason: &'static str| PolicyError::LogBroken { index, reason };
        let expected = self.head.map_or(0, |h| h.index + 1);
        if entry.index != expected || entry.wallet != self.wallet {
            return Err(broken("the entry is not the next of this wallet's log"));
        }
        if entry.previous != self.head.map_or([0; 32], |h| h.hash) {
            return Err(broken("the entry does not extend the one before"));
        }
        if entry.at < self.last_at {
            return Err(broken("the entry's time is before the one before"));
        }
        // Recoveries whose delay ran out before this entry count for it
        // (and can no longer be vetoed by it).
        self.settle(entry.at);
        let challenge = entry.operation().hash();
        let policy_key_signed = |auth: &EntryAuth| match auth {
            EntryAuth::PolicyKey(signature) => signature
                .recover(&Digest32(challenge.0))
                .is_ok_and(|key| key == *policy_key),
            EntryAuth::Approvals(_) => false,
        };
        let mut counters = Vec::new();
        match &entry.change {
            Change::Policy(policy) => {
                if policy.wallet() != self.wallet {
                    return Err(broken("the policy is for another wallet"));
                }
                match (&self.policy, &entry.auth) {
                    (None, auth) => {
                        if !policy_key_signed(auth) {
                            return Err(broken("the first policy is not signed by the policy key"));
                        }
                    }
                    (Some(current), EntryAuth::Approvals(approvals)) => {
                        counters = self.verify_approvals(
                            rp,
                            &challenge,
                            approvals,
                            current.require_user_verification(),
                        )?;
                        let approvers = distinct(&counters);
                        if current.governance_missing(&approvers) > 0 {
                            return Err(broken(
                                "the change lacks the current policy's governance quorum",
                            ));
                        }
                    }
                    (Some(_), EntryAuth::PolicyKey(_)) => {
                        return Err(broken(
                            "a later policy needs the governance quorum, not the policy key",
                        ));
                    }
                }
            }
            Change::Device {
                approver,
                credential,
            } => {
                if self.knows(credential) {
                    return Err(broken("the device is already in the log"));
                }
                if self.devices.contains_key(approver) {
                    let EntryAuth::Approvals(approvals) = &entry.auth else {
                        return Err(broken("another device of an approver needs one of theirs"));
                    };
                    counters = self.verify_approvals(rp, &challenge, approvals, self.uv())?;
                    if counters.iter().all(|(who, _, _)| who != approver) {
                        return Err(broken("another device of an approver needs one of theirs"));
                    }
                } else if !policy_key_signed(&entry.auth) {
                    return Err(broken("a new approver is not signed by the policy key"));
                }
            }
            Change::Recovery {
                approver,
                credential,
                activates_at,
            } => {
                counters = self.authorise_recovery(
                    approver,
                    credential,
                    *activates_at,
                    &entry,
                    rp,
                    &challenge,
                )?;
            }
            Change::Veto { recovery } => {
                counters = self.authorise_veto(recovery, &entry, rp, &challenge)?;
            }
        }
        match entry.change {
            Change::Policy(policy) => self.policy = Some(*policy),
            Change::Device {
                approver,
                credential,
            } => {
                self.owners.insert(credential.id.clone(), approver.clone());
                self.keys.insert(credential.key.to_cose());
                self.devices.entry(approver).or_default().push(credential);
            }
            Change::Recovery {
                approver,
                credential,
                activates_at,
            } => {
                self.keys.insert(credential.key.to_cose());
                self.recoveries.push(Recovery {
                    id: hash,
                    index,
                    approver,
                    credential,
                    activates_at,
                    status: RecoveryStatus::Pending,
                });
            }
            Change::Veto { recovery } => {
                if let Some(r) = self.recoveries.iter_mut().find(|r| r.id == recovery) {
                    r.status = RecoveryStatus::Vetoed { by: index };
                }
            }
        }
        self.last_at = entry.at;
        self.head = Some(Checkpoint { index, hash });
        self.hashes.push(hash);
        Ok(counters)
    }
}

impl LogState {
    /// Whether an entry's approvals need user verification: as the current
    /// policy says, and yes before any policy.
    fn uv(&self) -> bool {
        self.policy
            .as_ref()
            .is_none_or(Policy::require_user_verification)
    }

    /// Checks a recovery entry against the log before it: the policy
    /// allows recovery, the approver has devices, the credential is new,
    /// the delay is at least the policy's, and the approvals verify and
    /// come from the policy's threshold of distinct support approvers
    /// other than the one recovered. Returns the approvals' counters.
    fn authorise_recovery(
        &self,
        approver: &str,
        credential: &Credential,
        activates_at: u64,
        entry: &Entry,
        rp: &RelyingParty,
        challenge: &OperationHash,
    ) -> Result<Vec<(String, Vec<u8>, u32)>, PolicyError> {
        let index = entry.index;
        let broken = |reason: &'static str| PolicyError::LogBroken { index, reason };
        let Some(policy) = &self.policy else {
            return Err(broken("a recovery before any policy"));
        };
        let Some(rule) = policy.recovery() else {
            return Err(broken("the policy allows no recovery"));
        };
        if !self.devices.contains_key(approver) {
            return Err(broken("the recovery names no approver with a device"));
        }
        if self.knows(credential) {
            return Err(broken("the device is already in the log"));
        }
        if activates_at < entry.at.saturating_add(rule.delay_seconds) {
            return Err(broken("the recovery's delay is shorter than the policy's"));
        }
        let EntryAuth::Approvals(approvals) = &entry.auth else {
            return Err(broken("a recovery needs the support group's approvals"));
        };
        let counters =
            self.verify_approvals(rp, challenge, approvals, policy.require_user_verification())?;
        let support = policy
            .groups()
            .get(&rule.group)
            .map(|g| &g.members)
            .ok_or(broken("the recovery group is gone"))?;
        let approving = distinct(&counters)
            .into_iter()
            .filter(|who| support.contains(who) && who != approver)
            .count();
        if approving < usize::try_from(rule.threshold).unwrap_or(usize::MAX) {
            return Err(broken(
                "a recovery lacks the policy's threshold of distinct support approvers",
            ));
        }
        Ok(counters)
    }

    /// Checks a veto entry: it names a recovery still pending at the
    /// entry's time (settled before this is called), and carries
    /// assertions of existing (active) devices that verify.
    fn authorise_veto(
        &self,
        recovery: &[u8; 32],
        entry: &Entry,
        rp: &RelyingParty,
        challenge: &OperationHash,
    ) -> Result<Vec<(String, Vec<u8>, u32)>, PolicyError> {
        let index = entry.index;
        let broken = |reason: &'static str| PolicyError::LogBroken { index, reason };
        let Some(found) = self.recoveries.iter().find(|r| r.id == *recovery) else {
            return Err(broken("the veto names no recovery of this log"));
        };
        match found.status {
            RecoveryStatus::Pending => {}
            RecoveryStatus::Vetoed { .. } => {
                return Err(broken("the recovery is vetoed already"));
            }
            RecoveryStatus::Active => {
                return Err(broken("the recovery is active: too late to veto"));
            }
        }
        let EntryAuth::Approvals(approvals) = &entry.auth else {
            return Err(broken("a veto needs an existing device's assertion"));
        };
        self.verify_approvals(rp, challenge, approvals, self.uv())
    }
}

/// The distinct approver ids of verified approvals.
pub(crate) fn distinct(verified: &[(String, Vec<u8>, u32)]) -> BTreeSet<String> {
    verified.iter().map(|(who, _, _)| who.clone()).collect()
}

/// Policy logs of wallets in a state store.
#[derive(Clone)]
pub struct PolicyLog {
    state: Arc<dyn StateStore>,
    rp: RelyingParty,
    policy_key: PublicKey,
    counters: CredentialStore,
    /// The last verified state of each wallet's log, by its head: entries
    /// are immutable and named by their hashes, so a log whose head is
    /// unchanged is the log verified before (one read instead of a replay).
    verified: Arc<std::sync::Mutex<std::collections::HashMap<String, LogState>>>,
}

impl std::fmt::Debug for PolicyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyLog")
            .field("rp_id", &self.rp.rp_id())
            .field("policy_key", &self.policy_key)
            .finish_non_exhaustive()
    }
}

fn wallet_prefix(wallet: &str) -> String {
    format!("policy/{}", hex::encode(wallet.as_bytes()))
}

impl PolicyLog {
    /// Logs in `state`, whose approvals are assertions for `rp` and whose
    /// first entries are signed by `policy_key`. Signature counters are
    /// kept in the same store ([`CredentialStore`]).
    #[must_use]
    pub fn new(state: Arc<dyn StateStore>, rp: RelyingParty, policy_key: PublicKey) -> Self {
        Self {
            counters: CredentialStore::new(Arc::clone(&state)),
            state,
            rp,
            policy_key,
            verified: Arc::default(),
        }
    }

    /// The relying party approvals are verified for.
    #[must_use]
    pub fn relying_party(&self) -> &RelyingParty {
        &self.rp
    }

    /// The key that signs first policies and new approvers.
    #[must_use]
    pub fn policy_key(&self) -> &PublicKey {
        &self.policy_key
    }

    /// Where signature counters are kept.
    #[must_use]
    pub fn counters(&self) -> &CredentialStore {
        &self.counters
    }

    /// Reads and verifies `wallet`'s whole log. With `known`, the log must
    /// extend it: hold the same entry at its index. A log whose head is the
    /// one this `PolicyLog` (or a clone) verified last is not replayed
    /// again: one read of the head. [`PolicyLog::entries`] always replays
    /// (what an audit of the stored log uses).
    ///
    /// # Errors
    /// [`PolicyError::LogBroken`] naming the first bad entry;
    /// [`PolicyError::RolledBack`] or [`PolicyError::Forked`] against
    /// `known`; state-store errors.
    pub fn load<'a>(
        &'a self,
        wallet: &'a str,
        known: Option<Checkpoint>,
    ) -> Pending<'a, Result<LogState, PolicyError>> {
        Pending::drive(async move {
            let head = match self
                .state
                .get(&format!("{}/head", wallet_prefix(wallet)))
                .await?
            {
                None => None,
                Some(record) => Some(parse_head(&record.value).ok_or(PolicyError::LogBroken {
                    index: 0,
                    reason: "the head does not parse",
                })?),
            };
            let cached = self
                .cached(wallet)
                .filter(|state| state.head.map(|h| (h.index, h.hash)) == head && head.is_some());
            let state = match cached {
                Some(state) => state,
                None => {
                    let (entries, _) = self.chain(wallet).await?;
                    let state = self.replay(wallet, entries.into_iter())?;
                    if let Ok(mut verified) = self.verified.lock() {
                        verified.insert(wallet.to_owned(), state.clone());
                    }
                    state
                }
            };
            if let Some(known) = known {
                check_extends(&state.hashes, known)?;
            }
            Ok(state)
        })
    }

    /// The last verified state of `wallet`'s log, if any.
    fn cached(&self, wallet: &str) -> Option<LogState> {
        self.verified.lock().ok()?.get(wallet).cloned()
    }

    /// Every entry of `wallet`'s log, verified, first first.
    ///
    /// # Errors
    /// As [`PolicyLog::load`].
    pub fn entries<'a>(&'a self, wallet: &'a str) -> Pending<'a, Result<Vec<Entry>, PolicyError>> {
        Pending::drive(async move {
            let (entries, _) = self.chain(wallet).await?;
            self.replay(wallet, entries.iter().cloned())?;
            Ok(entries.into_iter().map(|(e, _)| e).collect())
        })
    }

    /// Replays entries from the first, verifying each against the log
    /// before it.
    fn replay(
        &self,
        wallet: &str,
        entries: impl Iterator<Item = (Entry, [u8; 32])>,
    ) -> Result<LogState, PolicyError> {
        let mut state = LogState {
            wallet: wallet.to_owned(),
            ..LogState::default()
        };
        for (entry, hash) in entries {
            state.apply(entry, hash, &self.rp, &self.policy_key)?;
        }
        Ok(state)
    }

    /// The entries from the head back to the first (unverified), and the
    /// head's version.
    async fn chain(
        &self,
        wallet: &str,
    ) -> Result<(Vec<(Entry, [u8; 32])>, Option<u64>), PolicyError> {
        let prefix = wallet_prefix(wallet);
        let Some(head) = self.state.get(&format!("{prefix}/head")).await? else {
            return Ok((Vec::new(), None));
        };
        let Some((mut index, mut hash)) = parse_head(&head.value) else {
            return Err(PolicyError::LogBroken {
                index: 0,
                reason: "the head does not parse",
            });
        };
        let mut entries = Vec::new();
        loop {
            let key = format!("{prefix}/entry/{index}/{}", hex::encode(hash));
            let Some(record) = self.state.get(&key).await? else {
                return Err(PolicyError::LogBroken {
                    index,
                    reason: "the entry is missing",
                });
            };
            let entry = Entry::from_json(&record.value, index)?;
            if entry.hash() != hash {
                return Err(PolicyError::LogBroken {
                    index,
                    reason: "the entry's hash is not the one that names it",
                });
            }
            let previous = entry.previous;
            entries.push((entry, hash));
            if index == 0 {
                break;
            }
            index -= 1;
            hash = previous;
        }
        entries.reverse();
        Ok((entries, Some(head.version)))
    }

    /// Appends `change` to `wallet`'s log with its authorisation, at time
    /// `at` (or the last entry's time, if that is later): the log is read and verified, the change checked against it
    /// (the approvals' counters recorded, so an assertion is spent once),
    /// the entry written and the head moved by compare-and-swap.
    ///
    /// # Errors
    /// [`PolicyError::LogBroken`] (for the new entry: index 0 past the
    /// head) if the change is not authorised; [`PolicyError::Approval`];
    /// [`PolicyError::Conflict`] if another writer appended first (read
    /// again and retry); state-store errors.
    pub fn append<'a>(
        &'a self,
        wallet: &'a str,
        change: Change,
        auth: EntryAuth,
        at: u64,
    ) -> Pending<'a, Result<Checkpoint, PolicyError>> {
        Pending::drive(async move {
            let (entries, version) = self.chain(wallet).await?;
            let mut state = self.replay(wallet, entries.into_iter())?;
            let entry = Entry {
                wallet: wallet.to_owned(),
                index: state.head.map_or(0, |h| h.index + 1),
                previous: state.head.map_or([0; 32], |h| h.hash),
                // Entry times never go back: a replica whose clock is
                // behind dates its entry at the last one's time.
                at: at.max(state.last_at),
                change,
                auth,
            };
            let hash = entry.hash();
            let body = canonical(&entry.to_json());
            if body.len() > MAX_ENTRY_BYTES {
                return Err(PolicyError::LogBroken {
                    index: entry.index,
                    reason: "the entry is too large",
                });
            }
            let index = entry.index;
            let counters = state.apply(entry, hash, &self.rp, &self.policy_key)?;
            for (approver, credential, count) in &counters {
                self.counters
                    .record_counter(credential, *count)
                    .await
                    .map_err(|e| PolicyError::Approval {
                        approver: approver.clone(),
                        reason: e.to_string(),
                    })?;
            }
            let prefix = wallet_prefix(wallet);
            let key = format!("{prefix}/entry/{index}/{}", hex::encode(hash));
            match self.state.compare_and_swap(&key, None, &body).await? {
                CasOutcome::Swapped { .. } => {}
                // The same entry (same hash) written by a retry: fine.
                CasOutcome::Conflict { .. } => {}
            }
            let head = serde_json::to_vec(&json!({"index": index, "hash": hex::encode(hash)}))
                .unwrap_or_default();
            if index == 0 {
                // Governed from the first entry on: listed before the head
                // moves, so no gate ever sees a log it does not enforce.
                self.mark_governed(wallet).await?;
            }
            match self
                .state
                .compare_and_swap(&format!("{prefix}/head"), version, &head)
                .await?
            {
                CasOutcome::Swapped { .. } => Ok(Checkpoint { index, hash }),
                CasOutcome::Conflict { .. } => Err(PolicyError::Conflict),
            }
        })
    }

    /// The wallets with a policy log (listed at their first append; a
    /// wallet is never unlisted).
    ///
    /// # Errors
    /// State-store errors; [`PolicyError::LogBroken`] if the list does not
    /// parse.
    pub fn governed(&self) -> Pending<'_, Result<Vec<String>, PolicyError>> {
        Pending::drive(async move {
            match self.state.get(GOVERNED_KEY).await? {
                None => Ok(Vec::new()),
                Some(record) => parse_governed(&record.value),
            }
        })
    }

    async fn mark_governed(&self, wallet: &str) -> Result<(), PolicyError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.state.get(GOVERNED_KEY).await?;
            let mut wallets = match &current {
                None => Vec::new(),
                Some(record) => parse_governed(&record.value)?,
            };
            if wallets.iter().any(|w| w == wallet) {
                return Ok(());
            }
            wallets.push(wallet.to_owned());
            let value = serde_json::to_vec(&wallets).unwrap_or_default();
            match self
                .state
                .compare_and_swap(GOVERNED_KEY, current.map(|r| r.version), &value)
                .await?
            {
                CasOutcome::Swapped { .. } => return Ok(()),
                CasOutcome::Conflict { .. } => {}
            }
        }
        Err(PolicyError::Conflict)
    }
}

/// The state key listing governed wallets.
const GOVERNED_KEY: &str = "policy/governed";

/// How many times a shared list's update re-reads after a conflict.
pub(crate) const MAX_CAS_ATTEMPTS: usize = 16;

fn parse_governed(bytes: &[u8]) -> Result<Vec<String>, PolicyError> {
    serde_json::from_slice(bytes).map_err(|_| PolicyError::LogBroken {
        index: 0,
        reason: "the list of governed wallets does not parse",
    })
}

/// Whether a verified chain (its entries' `hashes`, first first) extends
/// `known`: holds an entry at its index, with its hash.
fn check_extends(hashes: &[[u8; 32]], known: Checkpoint) -> Result<(), PolicyError> {
    let at = usize::try_from(known.index)
        .ok()
        .and_then(|i| hashes.get(i));
    match at {
        None => Err(PolicyError::RolledBack {
            known: known.index,
            found: hashes.len().checked_sub(1).map(|i| i as u64),
        }),
        Some(hash) if *hash == known.hash => Ok(()),
        Some(_) => Err(PolicyError::Forked { index: known.index }),
    }
}

fn parse_head(bytes: &[u8]) -> Option<(u64, [u8; 32])> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    let map = value.as_object()?;
    if map.len() != 2 {
        return None;
    }
    Some((map.get("index")?.as_u64()?, hash_member(map, "hash")?))
}
