#![doc = include_str!("../README.md")]

mod encoding;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

/// The [`StateStore`] conformance suite, for stores in other crates
/// (test-only: feature `conformance`).
#[cfg(feature = "conformance")]
pub use records::conformance;
mod records;
mod seam;
mod secrets;

#[cfg(feature = "hazmat")]
pub use secrets::hazmat;

pub use encoding::cbor;
pub use encoding::json;
pub use error::{BackendError, Denial, Error, ErrorReport};
pub use records::audit::{
    AuditEvent, AuditHead, AuditLog, AuditOp, AuditOutcome, AuditRecord, AuditSink, ChainVerifier,
    MemoryAuditLog,
};
pub use records::path::{ChildNumber, DerivationPath, HARDENED, MAX_DEPTH};
pub use records::state::{
    CasOutcome, FileStore, MAX_STATE_KEY_BYTES, MAX_STATE_KEYS_PER_READ,
    MAX_STATE_SWAPS_PER_COMMIT, MAX_STATE_VALUE_BYTES, MemoryStore, RecordedSwaps, StateStore,
    Swap, Versioned, check_state_keys, check_swaps,
};
pub use records::wallet::WalletScheme;
pub use seam::algorithm::{
    AnyPublicKey, Ed25519PublicKey, KeyAlgorithm, MAX_RSA_BITS, MIN_RSA_BITS, P256PublicKey,
    RsaPublicKey, SchemeSignature, SignatureScheme, check_signature,
};
pub use seam::audited::{Audited, describe_key};
pub use seam::backend::{
    Authorization, Capabilities, Clearance, Cleared, DeferredWrite, Evidence, ExportingBackend,
    Intent, IntentKind, KekId, KeyBackend, KeyId, KeyKinds, KeyRef, OneTimeCode, Origin, PinnedKey,
    SharedBackend, SignRequest, Signed, SigningBackend, WrappingBackend,
};
pub use seam::context::{EncryptionContext, MAX_CONTEXT_BYTES};
pub use seam::decrypt::{DecryptRequest, Decrypted, DecryptingBackend, Decryption};
pub use seam::pending::{BoxFuture, Pending};
pub use seam::signature::{
    Digest32, PublicKey, RawSignature, RecoverableSignature, normalize, parse_der,
};
pub use seam::signer::KeySigner;
pub use secrets::envelope::Envelope;
pub use secrets::hd::{ChainNode, ExtendedPrivateKey, ExtendedPublicKey, HdNode};
pub use secrets::keystore::{
    CreateOptions, KekKind, Keystore, Records, RewrapReport, RootKek, Unlock,
};
pub use secrets::local_kek::{KdfParams, LocalKek};
pub use secrets::mnemonic::{Mnemonic, MnemonicLanguage};
pub use secrets::secret::{DataKey, Passphrase, PrivateKeyBytes, SecretVec, Seed, fill_random};
pub use secrets::vault::{DEFAULT_NODE_CACHE, SharedVault, Vault};
