//! [`PgError`]: what went wrong talking to PostgreSQL, in the stable kinds
//! of the CLI contract, and the classification of tokio-postgres's errors
//! into it.

use std::error::Error as _;
use std::fmt;
use std::io;

/// A SQLSTATE code (`57P01`, `42501`, ...) as the server sent it, kept only
/// if it looks like one (five ASCII upper-case letters or digits), so that
/// no message text or data rides along.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SqlCode(Option<[u8; 5]>);

impl SqlCode {
    pub(crate) fn new(code: Option<&str>) -> Self {
        Self(code.and_then(|c| {
            let bytes: [u8; 5] = c.as_bytes().try_into().ok()?;
            bytes
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                .then_some(bytes)
        }))
    }

    /// The code, if the server sent one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        // Only ASCII is ever stored, so this never fails.
        self.0.as_ref().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The code's class (its first two characters: `08` connection
    /// exception, `28` invalid authorization, ...).
    fn class(&self) -> Option<&str> {
        self.as_str().and_then(|c| c.get(..2))
    }
}

impl fmt::Display for SqlCode {
    /// ` (SQLSTATE xxxxx)` or nothing, to follow a sentence.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(c) => write!(f, " (SQLSTATE {c})"),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for SqlCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(c) => write!(f, "SqlCode({c})"),
            None => f.write_str("SqlCode(none)"),
        }
    }
}

/// A failure of a PostgreSQL state-store call.
///
/// [`PgError::kind`] is the stable kebab-case name of the CLI contract:
/// `unavailable` (retryable: the server could not be reached, went away,
/// timed out, or is shutting down), `access-denied`, `bad-input`,
/// `malformed` (a row that breaks the schema) or `backend`. Messages name
/// the operation, the SQLSTATE and what to check; they never carry the
/// password, record keys or values, or the server's free-text message
/// (which can quote a failing row).
///
/// The store hands it to callers inside [`custody_core::Error::Backend`];
/// read it back with `source.downcast_ref::<PgError>()`.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum PgError {
    /// The server could not be reached, closed the connection, timed out or
    /// is shutting down or failing over. Retryable: the pool opens a fresh
    /// connection on the next call. A compare-and-swap that fails this way
    /// may or may not have been committed: read again before retrying.
    #[error("PostgreSQL was unavailable for {operation}{code}: {reason}")]
    Unavailable {
        /// The operation (`connect`, `get`, `compare-and-swap`, `migrate`).
        operation: &'static str,
        /// The SQLSTATE, if the server sent one.
        code: SqlCode,
        /// What failed.
        reason: &'static str,
    },
    /// The server refused the credentials, or the role lacks a privilege.
    #[error("PostgreSQL refused {operation}{code}: {reason}")]
    AccessDenied {
        /// The operation.
        operation: &'static str,
        /// The SQLSTATE, if the server sent one.
        code: SqlCode,
        /// What to fix.
        reason: &'static str,
    },
    /// The connection configuration or options are not usable, or the
    /// server rejected a parameter as invalid.
    #[error("PostgreSQL rejected {operation} as invalid{code}: {reason}")]
    BadInput {
        /// The operation.
        operation: &'static str,
        /// The SQLSTATE, if the server sent one.
        code: SqlCode,
        /// What is wrong.
        reason: &'static str,
    },
    /// The server answered with a row that breaks the schema (a version
    /// below 1, a value over the size limit, a column of another type or
    /// `NULL`): nothing is trusted from it.
    #[error("PostgreSQL returned a row that breaks the custody schema for {operation}: {reason}")]
    Malformed {
        /// The operation.
        operation: &'static str,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// Anything else: a missing table (run [`crate::PgStateStore::migrate`]),
    /// a protocol error, a TLS failure, an unclassified SQLSTATE.
    #[error("PostgreSQL failed {operation}{code}: {reason}")]
    Backend {
        /// The operation.
        operation: &'static str,
        /// The SQLSTATE, if the server sent one.
        code: SqlCode,
        /// What to check.
        reason: &'static str,
    },
}

impl PgError {
    /// The stable kebab-case kind (CLI contract): `unavailable`,
    /// `access-denied`, `bad-input`, `malformed` or `backend`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unavailable { .. } => "unavailable",
            Self::AccessDenied { .. } => "access-denied",
            Self::BadInput { .. } => "bad-input",
            Self::Malformed { .. } => "malformed",
            Self::Backend { .. } => "backend",
        }
    }

    /// Whether trying again later may succeed (kind `unavailable`).
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// The operation that failed.
    #[must_use]
    pub fn operation(&self) -> &'static str {
        match self {
            Self::Unavailable { operation, .. }
            | Self::AccessDenied { operation, .. }
            | Self::BadInput { operation, .. }
            | Self::Malformed { operation, .. }
            | Self::Backend { operation, .. } => operation,
        }
    }

    /// The SQLSTATE the server sent, if any.
    #[must_use]
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Unavailable { code, .. }
            | Self::AccessDenied { code, .. }
            | Self::BadInput { code, .. }
            | Self::Backend { code, .. } => code.as_str(),
            Self::Malformed { .. } => None,
        }
    }

    pub(crate) fn unavailable(operation: &'static str, reason: &'static str) -> Self {
        Self::Unavailable {
            operation,
            code: SqlCode::default(),
            reason,
        }
    }

    pub(crate) fn bad_input(operation: &'static str, reason: &'static str) -> Self {
        Self::BadInput {
            operation,
            code: SqlCode::default(),
            reason,
        }
    }

    pub(crate) fn backend(operation: &'static str, reason: &'static str) -> Self {
        Self::Backend {
            operation,
            code: SqlCode::default(),
            reason,
        }
    }
}

impl custody_core::BackendError for PgError {
    fn kind(&self) -> &'static str {
        PgError::kind(self)
    }
}

impl From<PgError> for custody_core::Error {
    /// [`custody_core::Error::Backend`], keeping the kind.
    fn from(e: PgError) -> Self {
        custody_core::Error::backend(e)
    }
}

/// What went wrong in one database exchange, before it is classified.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The client library or the server reported an error.
    Pg(tokio_postgres::Error),
    /// A row broke the schema.
    Row(&'static str),
    /// A client-side timeout expired.
    TimedOut(&'static str),
}

impl From<tokio_postgres::Error> for Fault {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl Fault {
    /// The SQLSTATE, if the server sent one.
    pub(crate) fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Pg(e) => e.code().map(tokio_postgres::error::SqlState::code),
            Self::Row(_) | Self::TimedOut(_) => None,
        }
    }

    /// A transient conflict the server rolled back (serialization failure
    /// or deadlock, which CockroachDB and YugabyteDB report under
    /// contention): the statement had no effect and may run again.
    pub(crate) fn is_serialization_failure(&self) -> bool {
        matches!(self.sqlstate(), Some("40001" | "40P01"))
    }

    pub(crate) fn classify(&self, operation: &'static str) -> PgError {
        match self {
            Self::Pg(e) => classify(e, operation),
            Self::Row(reason) => PgError::Malformed { operation, reason },
            Self::TimedOut(reason) => PgError::unavailable(operation, reason),
        }
    }
}

/// Classifies a tokio-postgres error: the server's SQLSTATE if it sent one,
/// else what the client library says went wrong. Only fixed strings and the
/// SQLSTATE are kept.
pub(crate) fn classify(e: &tokio_postgres::Error, operation: &'static str) -> PgError {
    if let Some(db) = e.as_db_error() {
        return classify_sqlstate(SqlCode::new(Some(db.code().code())), operation);
    }
    if e.is_closed() {
        return PgError::unavailable(operation, "the connection was closed");
    }
    // tokio-postgres's error kinds are private; its `Display` names them
    // with fixed strings, and the source says more. Neither is kept.
    let source = e.source();
    match e.to_string().as_str() {
        "error performing TLS handshake" => {
            return match source.and_then(|s| s.downcast_ref::<io::Error>()) {
                Some(io) if io.kind() != io::ErrorKind::InvalidData => {
                    PgError::unavailable(operation, io_reason(io.kind()))
                }
                _ => PgError::backend(
                    operation,
                    "the TLS handshake failed: check that the server's certificate is issued for the host by a CA the TLS configuration trusts, and that the server has TLS on",
                ),
            };
        }
        "timeout waiting for server" => {
            return PgError::unavailable(operation, "timed out connecting to the server");
        }
        "authentication error" => {
            return PgError::AccessDenied {
                operation,
                code: SqlCode::default(),
                reason: "authentication failed: the server asked for a method this client cannot do (or channel binding the connection cannot provide)",
            };
        }
        "invalid configuration" | "invalid connection string" => {
            if source.is_some_and(|s| s.to_string() == "password missing") {
                return PgError::AccessDenied {
                    operation,
                    code: SqlCode::default(),
                    reason: "the server asked for a password and the configuration has none",
                };
            }
            return PgError::bad_input(
                operation,
                "the connection configuration is not usable (no host, or a host and port count that disagree)",
            );
        }
        _ => {}
    }
    if let Some(io) = source.and_then(|s| s.downcast_ref::<io::Error>()) {
        return PgError::unavailable(operation, io_reason(io.kind()));
    }
    PgError::backend(
        operation,
        "the client library failed (an unexpected message, a protocol or encoding error)",
    )
}

fn io_reason(kind: io::ErrorKind) -> &'static str {
    match kind {
        io::ErrorKind::ConnectionRefused => "the connection was refused",
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            "the connection was reset"
        }
        io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof => {
            "the server closed the connection"
        }
        io::ErrorKind::TimedOut => "the connection timed out",
        io::ErrorKind::NotFound => "the host or socket was not found",
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            "the host is unreachable"
        }
        _ => "I/O error on the connection",
    }
}

/// Classifies a SQLSTATE (PostgreSQL Appendix A; CockroachDB and YugabyteDB
/// use the same codes).
fn classify_sqlstate(code: SqlCode, operation: &'static str) -> PgError {
    let unavailable = |reason| PgError::Unavailable {
        operation,
        code,
        reason,
    };
    let denied = |reason| PgError::AccessDenied {
        operation,
        code,
        reason,
    };
    let other = |reason| PgError::Backend {
        operation,
        code,
        reason,
    };
    match (code.class(), code.as_str()) {
        (Some("08"), _) => unavailable("connection failure"),
        (_, Some("57P01")) => {
            unavailable("the server terminated the connection (administrator command or shutdown)")
        }
        (_, Some("57P02" | "57P03")) => {
            unavailable("the server is shutting down, restarting or not yet accepting connections")
        }
        (_, Some("57014")) => {
            unavailable("the statement was cancelled (a server-side statement timeout)")
        }
        (Some("53"), _) => {
            unavailable("the server is out of resources (too many connections, memory or disk)")
        }
        (_, Some("40001" | "40P01")) => unavailable(
            "the server rolled the statement back under contention (serialization failure or deadlock)",
        ),
        (_, Some("40003")) => unavailable(
            "the outcome of the statement is unknown (the commit's acknowledgement was lost)",
        ),
        (_, Some("25006")) => {
            unavailable("the server is read-only (a standby, or a failover in progress)")
        }
        (Some("28"), _) => {
            denied("the server refused the credentials: check the role and password")
        }
        (_, Some("42501")) => denied(
            "the role lacks a privilege: a signer needs SELECT, INSERT and UPDATE on custody_state (and USAGE on its schema); migrate needs CREATE",
        ),
        (_, Some("3D000")) => other("the database does not exist"),
        (_, Some("42P01")) => other(
            "the table custody_state does not exist in the search_path: run PgStateStore::migrate, or set search_path",
        ),
        (_, Some("3F000")) => other("the schema in search_path does not exist"),
        (Some("22" | "23"), _) => PgError::BadInput {
            operation,
            code,
            reason: "the server rejected a value (data exception or constraint violation)",
        },
        _ => other("the server reported an error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_keep_only_well_formed_codes() {
        assert_eq!(SqlCode::new(Some("57P01")).as_str(), Some("57P01"));
        assert_eq!(SqlCode::new(Some("57p01")).as_str(), None);
        assert_eq!(SqlCode::new(Some("5701")).as_str(), None);
        assert_eq!(SqlCode::new(Some("password")).as_str(), None);
        assert_eq!(SqlCode::new(None).as_str(), None);
        assert_eq!(SqlCode::new(Some("08006")).to_string(), " (SQLSTATE 08006)");
        assert_eq!(format!("{:?}", SqlCode::new(Some("x"))), "SqlCode(none)");
    }

    #[test]
    fn sqlstates_map_to_stable_kinds() {
        let kind = |c| classify_sqlstate(SqlCode::new(Some(c)), "get").kind();
        for c in [
            "08006", "08001", "57P01", "57P02", "57P03", "57014", "53300", "40001", "40P01",
            "40003", "25006",
        ] {
            assert_eq!(kind(c), "unavailable", "{c}");
        }
        for c in ["28P01", "28000", "42501"] {
            assert_eq!(kind(c), "access-denied", "{c}");
        }
        for c in ["22021", "23514", "22003"] {
            assert_eq!(kind(c), "bad-input", "{c}");
        }
        for c in ["42P01", "3D000", "XX000", "0A000"] {
            assert_eq!(kind(c), "backend", "{c}");
        }
        let e = classify_sqlstate(SqlCode::new(Some("42P01")), "compare-and-swap");
        assert_eq!(e.sqlstate(), Some("42P01"));
        assert_eq!(e.operation(), "compare-and-swap");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("migrate"), "{e}");
    }

    #[test]
    fn a_pg_error_keeps_its_kind_in_the_core_error() {
        let e: custody_core::Error =
            PgError::unavailable("get", "the connection was closed").into();
        assert_eq!(e.kind(), "unavailable");
        let custody_core::Error::Backend { source, .. } = &e else {
            panic!("{e:?}")
        };
        let pg = source.downcast_ref::<PgError>().unwrap();
        assert!(pg.is_retryable());
        assert_eq!(
            pg.to_string(),
            "PostgreSQL was unavailable for get: the connection was closed"
        );
    }
}
