//! CLI errors: one JSON object on stderr with a stable kind, and the exit
//! code the contract gives it (shared/CLI.md, "Errors"). The kinds, the
//! messages and the exit codes come from [`custody_core::ErrorReport`],
//! the one mapping every front end (this binary, the C ABI) shares.

use std::fmt;

use custody_core::ErrorReport;

/// A failure as the CLI reports it.
#[derive(Debug)]
pub(crate) struct CliError(ErrorReport);

impl CliError {
    /// An error of `kind` (a stable kebab-case name) with a human sentence.
    /// Messages are built from static text, field names and public values
    /// only: never from a secret.
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self(ErrorReport::new(kind, message))
    }

    /// Bad input or usage (exit 2).
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self::new("bad-input", message)
    }

    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> i32 {
        i32::from(self.0.status())
    }

    /// The JSON object printed on stderr.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "kind": self.0.kind(), "message": self.0.message() } })
    }

    /// Prefixes the message with the argument or field it is about.
    pub(crate) fn context(self, what: &str) -> Self {
        Self(self.0.context(what))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ErrorReport> for CliError {
    fn from(report: ErrorReport) -> Self {
        Self(report)
    }
}

impl From<custody_core::Error> for CliError {
    fn from(e: custody_core::Error) -> Self {
        Self(e.into())
    }
}

impl From<custody_totp::Error> for CliError {
    fn from(e: custody_totp::Error) -> Self {
        Self(e.into())
    }
}

impl From<custody_eth::Error> for CliError {
    fn from(e: custody_eth::Error) -> Self {
        Self(e.into())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::new("io", e.to_string())
    }
}

impl From<custody_policy::PolicyError> for CliError {
    /// A refused approval is a missing one (kind `approvals-required`, as
    /// the policy gate reports it), its message naming the approver and
    /// the check that failed; the rest keep the policy crate's kinds.
    fn from(e: custody_policy::PolicyError) -> Self {
        use custody_policy::PolicyError;
        match e {
            PolicyError::State(e) => e.into(),
            PolicyError::Approval { approver, reason } => {
                let who = if approver.is_empty() {
                    "an approval".to_owned()
                } else {
                    format!("the approval of {approver:?}")
                };
                Self::new("approvals-required", format!("{who} was refused: {reason}"))
            }
            other => Self::new(other.kind(), other.to_string()),
        }
    }
}

impl From<custody_policy::webauthn::WebAuthnError> for CliError {
    fn from(e: custody_policy::webauthn::WebAuthnError) -> Self {
        use custody_policy::webauthn::WebAuthnError;
        match e {
            WebAuthnError::State(e) => e.into(),
            other => Self::new(other.kind(), other.to_string()),
        }
    }
}
