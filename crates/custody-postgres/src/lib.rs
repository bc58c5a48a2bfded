#![doc = include_str!("../README.md")]

mod audit;
mod batch;
mod error;
mod migrate;
mod options;
mod pool;
mod read;
mod store;
mod task;

pub use audit::{AuditBreak, AuditReport, Checkpoint, OPERATIONS_CHAIN, PgAuditLog, chain_of};
pub use error::{PgError, SqlCode};
pub use migrate::SCHEMA_VERSION;
pub use options::PgOptions;
pub use store::PgStateStore;

/// The PostgreSQL client this crate is built on, re-exported so that a
/// caller builds its [`tokio_postgres::Config`] with the same version.
pub use tokio_postgres;

/// The TLS library of [`PgOptions::with_tls`] (feature `tls`), re-exported
/// so that a caller builds its `rustls::ClientConfig` with the same version.
#[cfg(feature = "tls")]
pub use rustls;
