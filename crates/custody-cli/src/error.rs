//! CLI errors: one JSON object on stderr with a stable kind, and the exit
//! code the contract gives it (shared/CLI.md, "Errors").

use std::fmt;

/// A failure as the CLI reports it.
#[derive(Debug)]
pub(crate) struct CliError {
    kind: &'static str,
    message: String,
}

impl CliError {
    /// An error of `kind` (a stable kebab-case name) with a human sentence.
    /// Messages are built from static text, field names and public values
    /// only: never from a secret.
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// Bad input or usage (exit 2).
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self::new("bad-input", message)
    }

    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> i32 {
        match self.kind {
            "bad-input" => 2,
            "wrong-passphrase"
            | "totp-required"
            | "totp-invalid"
            | "totp-replayed"
            | "totp-locked"
            | "access-denied"
            | "attestation-invalid" => 3,
            _ => 1,
        }
    }

    /// The JSON object printed on stderr.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "kind": self.kind, "message": self.message } })
    }

    /// Prefixes the message with the argument or field it is about.
    pub(crate) fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl From<custody_core::Error> for CliError {
    fn from(e: custody_core::Error) -> Self {
        // Backends and gates report their own failures with their kind:
        // the message is theirs too.
        if let custody_core::Error::Backend { kind, source } = &e {
            return Self::new(kind, source.to_string());
        }
        Self::new(e.kind(), e.to_string())
    }
}

impl From<custody_totp::Error> for CliError {
    fn from(e: custody_totp::Error) -> Self {
        match e {
            custody_totp::Error::Core(core) => core.into(),
            other => Self::new(other.kind(), other.to_string()),
        }
    }
}

impl From<custody_eth::Error> for CliError {
    fn from(e: custody_eth::Error) -> Self {
        match e {
            custody_eth::Error::Core(core) => core.into(),
            custody_eth::Error::WrongPassword => Self::new("wrong-passphrase", e.to_string()),
            custody_eth::Error::KeystoreUnsupported(_) => Self::new("unsupported", e.to_string()),
            other => Self::bad_input(other.to_string()),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::new("io", e.to_string())
    }
}
