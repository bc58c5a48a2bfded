#![doc = include_str!("../README.md")]

mod audit;
mod audited;
mod backend;
mod context;
mod envelope;
mod error;
mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod hazmat;
mod hd;
mod keystore;
mod local_kek;
mod mnemonic;
mod path;
mod pending;
#[cfg(not(feature = "secp256k1"))]
mod rfc6979;
#[cfg(feature = "secp256k1")]
mod secp_fast;
mod secret;
mod signature;
mod signer;
mod state;
mod vault;
mod wallet;

pub use audit::{
    AuditEvent, AuditHead, AuditLog, AuditOp, AuditOutcome, AuditRecord, AuditSink, MemoryAuditLog,
};
pub use audited::{Audited, describe_key};
pub use backend::{
    Authorization, Capabilities, Clearance, ExportingBackend, Intent, IntentKind, KekId,
    KeyBackend, KeyId, KeyKinds, KeyRef, OneTimeCode, PinnedKey, SharedBackend, SignRequest,
    Signed, SigningBackend, WrappingBackend,
};
pub use context::{EncryptionContext, MAX_CONTEXT_BYTES};
pub use envelope::Envelope;
pub use error::{Denial, Error};
pub use hd::{ChainNode, ExtendedPrivateKey, ExtendedPublicKey, HdNode};
pub use keystore::{CreateOptions, Keystore};
pub use local_kek::{KdfParams, LocalKek};
pub use mnemonic::{Mnemonic, MnemonicLanguage};
pub use path::{ChildNumber, DerivationPath, HARDENED, MAX_DEPTH};
pub use pending::{BoxFuture, Pending};
pub use secret::{DataKey, Passphrase, PrivateKeyBytes, SecretVec, Seed, fill_random};
pub use signature::{
    Digest32, PublicKey, RawSignature, RecoverableSignature, normalize, parse_der,
};
pub use signer::KeySigner;
pub use state::{
    CasOutcome, FileStore, MAX_STATE_KEY_BYTES, MAX_STATE_VALUE_BYTES, MemoryStore, StateStore,
    Versioned,
};
pub use vault::{DEFAULT_NODE_CACHE, SharedVault, Vault};
pub use wallet::WalletScheme;
