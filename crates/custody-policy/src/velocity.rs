//! Velocity limits counted from the audit log's records, not from a state
//! record (issue #17, item 3).
//!
//! # Why from the records
//! A rolling-window limit needs what left the wallet in the window. The
//! policy node used to read it from one state-store record
//! (`policy/<wallet>/spends`), which anyone who can write the store can
//! reset, and then spend the limit again. The signature's audit record is
//! a better witness: it is written in the same commit as the spend
//! ([`crate::gate::PolicyGate`] defers its writes to it), it names the
//! verdict that allowed it (signed by the policy key), and the log is
//! hash-chained (a reader refuses a broken chain, and signed checkpoints
//! catch a cut end). So the gate adds the transfers to that record
//! ([`custody_core::Clearance::Spend`]: fields `spend` and `spend-at`,
//! and `wallet` so the record is in the wallet's chain even for a key
//! pinned by path), and a node given the log
//! ([`crate::gate::PolicyNode::with_records`]) sums the window from the
//! wallet's successful, verdict-bearing records
//! ([`custody_core::AuditSink::wallet_records`]).
//!
//! The state record stays: it is what concurrent decisions on one wallet
//! serialise on (each spend is a compare-and-swap of it), and the history
//! a node without a log reads. For a node with the log it is a cache the
//! records overrule: zeroing it changes nothing the limits see.
//!
//! Sums cannot overflow: amounts are parsed as 256-bit integers (text that
//! is not one is a broken record, refused), and the evaluation adds them
//! in a wider integer, so any total past a limit refuses.

use custody_core::{AuditOutcome, AuditRecord};
use custody_eth::{Address, U256};

use crate::error::PolicyError;
use crate::facts::{Asset, Facts};
use crate::policy::Spend;

/// Seconds the node reads before its window starts, for a sink whose
/// clock is behind the node's (records are selected by the sink's time,
/// then counted by the decision time they carry).
pub const CLOCK_SLACK_SECONDS: u64 = 3600;

/// The `spend` field's text for the operation's transfers (`None` when
/// nothing of value leaves).
#[must_use]
pub fn spend_text(facts: &Facts) -> Option<String> {
    let parts: Vec<String> = facts
        .transfers
        .iter()
        .filter(|t| !t.amount.is_zero())
        .map(|t| format!("{}:{}", t.asset.name(), t.amount))
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}

/// The spends `records` (one wallet's) prove: each successful signature
/// record that names a verdict and carries a `spend` field.
///
/// # Errors
/// [`PolicyError::LogBroken`] for a spend field or time that does not
/// parse (fail closed: a limit is never computed from a record it cannot
/// read).
pub fn spends_of_records(records: &[AuditRecord]) -> Result<Vec<Spend>, PolicyError> {
    let broken = || PolicyError::LogBroken {
        index: 0,
        reason: "an audit record's spend does not parse",
    };
    let mut out = Vec::new();
    for record in records {
        let event = record.event();
        if event.outcome() != AuditOutcome::Success
            || event.op().as_str() != "sign"
            || event.field("verdict").is_none()
        {
            continue;
        }
        let Some(text) = event.field("spend") else {
            continue;
        };
        let at = event
            .field("spend-at")
            .and_then(|a| a.parse::<u64>().ok())
            .ok_or_else(broken)?;
        for part in text.split(',') {
            let (asset, amount) = part.split_once(':').ok_or_else(broken)?;
            let asset = match asset {
                "native" => Asset::Native,
                token => Asset::Token(Address::parse(token).map_err(|_| broken())?),
            };
            let amount = U256::parse(amount).map_err(|_| broken())?;
            out.push(Spend { at, asset, amount });
        }
    }
    Ok(out)
}
