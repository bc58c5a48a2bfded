//! Time-delayed operations and their vetoes, as the policy node keeps them.
//!
//! A rule with `delaySeconds` allows an operation only that long after it
//! was *proposed*: the first time the node saw it with approvals that
//! satisfy the rule. The node then writes a [`Proposal`] to the state
//! store and answers "delayed until T"; asked again at or after T, it
//! allows (and signs a verdict) unless an approver vetoed in between. The
//! approvals given at proposal time count at maturity: the caller need not
//! gather them twice.
//!
//! # What protects what
//! - **The proposal time is signed.** A proposal carries the policy key's
//!   signature over [`Proposal::digest`] (wallet, operation hash, policy
//!   hash, proposal time, the approvals), so whoever can write the state
//!   store cannot move a proposal back in time to skip its delay, nor
//!   carry it over to another policy. (The signature goes through the
//!   policy key's `KeyBackend` with the intent `verdict`: a proposal is the
//!   node's "delayed" verdict, and lands in the audit log as one.)
//! - **The approvals are the approvers' own signatures.** A proposal
//!   stores the assertions themselves (public data), and the node verifies
//!   them again at maturity against the operation's hash and the devices
//!   the log registers, so a stored proposal cannot claim an approver who
//!   did not approve. Their signature counters were spent at proposal time.
//! - **A veto is an approver's assertion** over a
//!   [`crate::operation::Operation::Veto`] naming the wallet and the
//!   operation hash, by any device of any approver of the wallet's policy
//!   (one device is enough: a veto stops, it does not move value). It is
//!   stored beside the proposal and verified again whenever it is read.
//! - **Not protected:** whoever can write the state store can *delete* a
//!   veto or a proposal (a deleted proposal only restarts the delay). The
//!   store's writers are the signers' own database role; the audit log
//!   records the proposal's signature and every refusal a veto causes.
//!   SECURITY.md says so.

use sha2::{Digest as _, Sha256};

use crate::canonical;
use crate::error::PolicyError;
use crate::operation::OperationHash;
use custody_core::{Digest32, PublicKey, RecoverableSignature};
use serde_json::{Map, Value};

/// The domain tag of a proposal's digest.
const PROPOSAL_TAG: &[u8] = b"custody/proposal/v1";

/// The most assertions a proposal keeps (a policy's groups are small; this
/// bounds what a stored record can make the node verify).
pub const MAX_PROPOSAL_APPROVALS: usize = 64;

/// The state-store key of the proposal of `operation` on `wallet`.
#[must_use]
pub fn proposal_key(wallet: &str, operation: &OperationHash) -> String {
    format!(
        "policy/{}/proposal/{}",
        hex::encode(wallet.as_bytes()),
        hex::encode(operation.as_bytes())
    )
}

/// The state-store key of the veto of `operation` on `wallet`.
#[must_use]
pub fn veto_key(wallet: &str, operation: &OperationHash) -> String {
    format!(
        "policy/{}/veto/{}",
        hex::encode(wallet.as_bytes()),
        hex::encode(operation.as_bytes())
    )
}

/// A delayed operation as first proposed, signed by the policy key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// The wallet.
    pub wallet: String,
    /// The operation's hash.
    pub operation: OperationHash,
    /// SHA-256 of the canonical policy it was proposed under.
    pub policy_hash: [u8; 32],
    /// Unix seconds when it was proposed.
    pub proposed_at: u64,
    /// The approvals given then: (approver id, assertion JSON).
    pub approvals: Vec<(String, String)>,
    /// The policy key's signature over [`Proposal::digest`].
    pub signature: Option<RecoverableSignature>,
}

fn lp(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl Proposal {
    /// What the policy key signs: SHA-256 of `"custody/proposal/v1" ‖
    /// lp(wallet) ‖ operation ‖ policy hash ‖ proposed-at (8 bytes, big
    /// endian) ‖ count (8 bytes) ‖ (lp(approver) ‖ lp(assertion))…`, each
    /// `lp` an 8-byte big-endian length then the bytes.
    #[must_use]
    pub fn digest(&self) -> Digest32 {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(PROPOSAL_TAG);
        lp(&mut out, self.wallet.as_bytes());
        out.extend_from_slice(self.operation.as_bytes());
        out.extend_from_slice(&self.policy_hash);
        out.extend_from_slice(&self.proposed_at.to_be_bytes());
        out.extend_from_slice(&(self.approvals.len() as u64).to_be_bytes());
        for (approver, json) in &self.approvals {
            lp(&mut out, approver.as_bytes());
            lp(&mut out, json.as_bytes());
        }
        Digest32(Sha256::digest(&out).into())
    }

    /// Whether the signature is `policy_key`'s over [`Proposal::digest`].
    #[must_use]
    pub fn is_signed_by(&self, policy_key: &PublicKey) -> bool {
        self.signature
            .as_ref()
            .and_then(|s| s.recover(&self.digest()).ok())
            .is_some_and(|k| k == *policy_key)
    }

    /// The stored form (canonical JSON).
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("wallet".into(), self.wallet.clone().into());
        m.insert("operation".into(), self.operation.to_hex().into());
        m.insert(
            "policyHash".into(),
            format!("0x{}", hex::encode(self.policy_hash)).into(),
        );
        m.insert("proposedAt".into(), self.proposed_at.into());
        m.insert(
            "approvals".into(),
            Value::Array(
                self.approvals
                    .iter()
                    .map(|(a, j)| Value::Array(vec![a.clone().into(), j.clone().into()]))
                    .collect(),
            ),
        );
        if let Some(sig) = &self.signature {
            let mut bytes = sig.to_compact().to_vec();
            bytes.push(u8::from(sig.y_parity()));
            m.insert(
                "signature".into(),
                format!("0x{}", hex::encode(bytes)).into(),
            );
        }
        canonical::to_vec(&Value::Object(m))
    }

    /// Reads a stored proposal. Strict: every member present and well
    /// formed, nothing else.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`] naming the member at fault.
    pub fn from_json(bytes: &[u8]) -> Result<Self, PolicyError> {
        let bad =
            |path: &str, reason: &str| PolicyError::invalid(&format!("proposal.{path}"), reason);
        let value = custody_core::json::parse_strict(bytes)
            .map_err(|_| bad("", "not strict JSON (a member twice, or a syntax error)"))?;
        let Value::Object(m) = value else {
            return Err(bad("", "not an object"));
        };
        if m.len() != 6 {
            return Err(bad(
                "",
                "not exactly wallet, operation, policyHash, proposedAt, approvals, signature",
            ));
        }
        let wallet = m
            .get("wallet")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("wallet", "not a string"))?
            .to_owned();
        let operation = OperationHash(
            hex32(m.get("operation"))
                .ok_or_else(|| bad("operation", "not 0x and 64 hex digits"))?,
        );
        let policy_hash = hex32(m.get("policyHash"))
            .ok_or_else(|| bad("policyHash", "not 0x and 64 hex digits"))?;
        let proposed_at = m
            .get("proposedAt")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("proposedAt", "not an unsigned integer"))?;
        let items = m
            .get("approvals")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("approvals", "not an array"))?;
        if items.len() > MAX_PROPOSAL_APPROVALS {
            return Err(bad("approvals", "too many"));
        }
        let mut approvals = Vec::with_capacity(items.len());
        for item in items {
            match item.as_array().map(Vec::as_slice) {
                Some([Value::String(a), Value::String(j)]) => {
                    approvals.push((a.clone(), j.clone()))
                }
                _ => {
                    return Err(bad(
                        "approvals",
                        "not [approver, assertion] pairs of strings",
                    ));
                }
            }
        }
        let signature = m
            .get("signature")
            .and_then(Value::as_str)
            .and_then(|s| s.strip_prefix("0x"))
            .and_then(|s| hex::decode(s).ok())
            .and_then(|b| {
                let (rs, parity) = b.split_at_checked(64)?;
                let [p @ (0 | 1)] = parity else { return None };
                let r: [u8; 32] = rs[..32].try_into().ok()?;
                let s: [u8; 32] = rs[32..].try_into().ok()?;
                RecoverableSignature::from_parts(r, s, *p == 1).ok()
            })
            .ok_or_else(|| {
                bad(
                    "signature",
                    "not 0x and 65 bytes r‖s‖parity of a low-s signature",
                )
            })?;
        Ok(Self {
            wallet,
            operation,
            policy_hash,
            proposed_at,
            approvals,
            signature: Some(signature),
        })
    }
}

fn hex32(value: Option<&Value>) -> Option<[u8; 32]> {
    let s = value?.as_str()?.strip_prefix("0x")?;
    if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

/// A stored veto: who vetoed, and the assertion that proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veto {
    /// The approver id.
    pub approver: String,
    /// The assertion JSON over the veto operation's hash.
    pub assertion: String,
}

impl Veto {
    /// The stored form (canonical JSON).
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let mut m = Map::new();
        m.insert("approver".into(), self.approver.clone().into());
        m.insert("assertion".into(), self.assertion.clone().into());
        canonical::to_vec(&Value::Object(m))
    }

    /// Reads a stored veto.
    ///
    /// # Errors
    /// [`PolicyError::Invalid`] naming the member at fault.
    pub fn from_json(bytes: &[u8]) -> Result<Self, PolicyError> {
        let bad = |path: &str, reason: &str| PolicyError::invalid(&format!("veto.{path}"), reason);
        let value = custody_core::json::parse_strict(bytes)
            .map_err(|_| bad("", "not strict JSON (a member twice, or a syntax error)"))?;
        let Value::Object(m) = value else {
            return Err(bad("", "not an object"));
        };
        match (m.len(), m.get("approver"), m.get("assertion")) {
            (2, Some(Value::String(approver)), Some(Value::String(assertion))) => Ok(Self {
                approver: approver.clone(),
                assertion: assertion.clone(),
            }),
            _ => Err(bad("", "not exactly the strings approver and assertion")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal() -> Proposal {
        Proposal {
            wallet: "treasury".into(),
            operation: OperationHash([7; 32]),
            policy_hash: [9; 32],
            proposed_at: 1_700_000_000,
            approvals: vec![("alice".into(), "{\"id\":\"x\"}".into())],
            signature: Some(RecoverableSignature::from_parts([1; 32], [2; 32], true).unwrap()),
        }
    }

    #[test]
    fn a_proposal_round_trips_and_each_field_moves_its_digest() {
        let p = proposal();
        assert_eq!(Proposal::from_json(&p.to_json()).unwrap(), p);
        let base = p.digest();
        let mut moved = Vec::new();
        let mut q = p.clone();
        q.wallet.push('x');
        moved.push(q.digest());
        let mut q = p.clone();
        q.operation.0[0] ^= 1;
        moved.push(q.digest());
        let mut q = p.clone();
        q.policy_hash[31] ^= 1;
        moved.push(q.digest());
        let mut q = p.clone();
        q.proposed_at -= 1;
        moved.push(q.digest());
        let mut q = p.clone();
        q.approvals.clear();
        moved.push(q.digest());
        let mut q = p.clone();
        q.approvals[0].1.push(' ');
        moved.push(q.digest());
        for d in moved {
            assert_ne!(d, base);
        }
        // The signature is not part of what it signs.
        let mut q = p;
        q.signature = None;
        assert_eq!(q.digest(), base);
    }

    #[test]
    fn stored_proposals_and_vetoes_are_read_strictly() {
        let good = String::from_utf8(proposal().to_json()).unwrap();
        for (from, to) in [
            ("\"proposedAt\":1700000000", "\"proposedAt\":-1"),
            ("\"proposedAt\":1700000000", "\"proposedAt\":\"1700000000\""),
            ("\"wallet\":\"treasury\"", "\"wallet\":7"),
            ("0x0707", "0X0707"),
            ("\"approvals\":[[", "\"approvals\":[[1,"),
        ] {
            let bad = good.replacen(from, to, 1);
            assert_ne!(bad, good, "{from}");
            assert!(Proposal::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
        // A parity byte other than 0 or 1, a high s, a missing member.
        let sig_hex = good.split("\"signature\":\"0x").nth(1).unwrap()[..130].to_owned();
        let wrong_parity = format!("{}02", &sig_hex[..128]);
        assert!(Proposal::from_json(good.replace(&sig_hex, &wrong_parity).as_bytes()).is_err());
        let high_s = format!("{}{}01", &sig_hex[..64], "ff".repeat(32));
        assert!(Proposal::from_json(good.replace(&sig_hex, &high_s).as_bytes()).is_err());
        let mut v: Value = serde_json::from_str(&good).unwrap();
        v.as_object_mut().unwrap().remove("signature");
        assert!(Proposal::from_json(&serde_json::to_vec(&v).unwrap()).is_err());
        v.as_object_mut()
            .unwrap()
            .insert("signature".into(), Value::Null);
        v.as_object_mut()
            .unwrap()
            .insert("extra".into(), Value::Null);
        assert!(Proposal::from_json(&serde_json::to_vec(&v).unwrap()).is_err());

        // A member twice (serde_json alone would keep the last).
        let twice = good.replacen("{", "{\"proposedAt\":1,", 1);
        assert!(Proposal::from_json(twice.as_bytes()).is_err(), "{twice}");
        assert!(Veto::from_json(br#"{"approver":"a","approver":"b","assertion":"{}"}"#).is_err());

        let veto = Veto {
            approver: "bob".into(),
            assertion: "{}".into(),
        };
        assert_eq!(Veto::from_json(&veto.to_json()).unwrap(), veto);
        for bad in [
            "{}",
            "[]",
            "{\"approver\":\"bob\"}",
            "{\"approver\":1,\"assertion\":\"{}\"}",
            "{\"approver\":\"bob\",\"assertion\":\"{}\",\"x\":1}",
        ] {
            assert!(Veto::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
