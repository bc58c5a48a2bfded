//! [`PolicyError`]: why a policy, an operation or an approval was refused.

/// Why a policy document was refused, or an evaluation could not run.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
        }
    }
}
