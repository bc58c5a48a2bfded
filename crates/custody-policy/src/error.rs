//! [`PolicyError`]: why a policy, an operation or an approval was refused.

/// Why a policy document was refused, or an evaluation could not run.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy JSON breaks the schema: `path` names the member
    /// (`$.rules[2].when.maxAmount`), `reason` says how.
    #[error("invalid policy at {path}: {reason}")]
    Invalid {
        /// A JSONPath-like location of the member at fault.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored policy log is broken at entry `index`: `reason` names the
    /// check (a missing or edited entry, a bad link, an entry its
    /// authorisation does not cover).
    #[error("policy log broken at entry {index}: {reason}")]
    LogBroken {
        /// The first bad entry.
        index: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The log is shorter than a checkpoint already seen: rolled back.
    #[error("policy log rolled back: entry {known} was seen, the log ends at {found:?}")]
    RolledBack {
        /// The checkpoint's index.
        known: u64,
        /// The log's last index (`None`: empty).
        found: Option<u64>,
    },
    /// The log holds another entry at a checkpoint already seen: forked.
    #[error("policy log forked at entry {index}")]
    Forked {
        /// The checkpoint's index.
        index: u64,
    },
    /// An approval was refused.
    #[error("approval by {approver:?} refused: {reason}")]
    Approval {
        /// The approver it claims.
        approver: String,
        /// Why.
        reason: String,
    },
    /// Another writer appended to the log first: read it again.
    #[error("the policy log moved under this append; read it again")]
    Conflict,
    /// The state store failed.
    #[error("state store: {0}")]
    State(#[from] custody_core::Error),
}

impl PolicyError {
    pub(crate) fn invalid(path: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    /// A stable lower-case kind, as the CLI reports it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "policy-invalid",
            Self::LogBroken { .. } | Self::RolledBack { .. } | Self::Forked { .. } => {
                "policy-log-broken"
            }
            Self::Approval { .. } => "approval-invalid",
            Self::Conflict => "conflict",
            Self::State(e) => e.kind(),
        }
    }
}

impl custody_core::BackendError for PolicyError {
    fn kind(&self) -> &'static str {
        PolicyError::kind(self)
    }
}
