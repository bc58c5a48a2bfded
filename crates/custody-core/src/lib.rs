#![doc = include_str!("../README.md")]

mod backend;
mod context;
mod error;
mod path;
mod pending;
mod secret;
mod signature;
mod signer;

pub use backend::{
    Authorization, Capabilities, ExportingBackend, Intent, IntentKind, KekId, KeyBackend, KeyId,
    KeyKinds, KeyRef, OneTimeCode, PinnedKey, SharedBackend, SignRequest, SigningBackend,
    WrappingBackend,
};
pub use context::{EncryptionContext, MAX_CONTEXT_BYTES};
pub use error::{Denial, Error};
pub use path::{ChildNumber, DerivationPath, HARDENED, MAX_DEPTH};
pub use pending::{BoxFuture, Pending};
pub use secret::{DataKey, Passphrase, PrivateKeyBytes, SecretVec, Seed, fill_random};
pub use signature::{Digest32, PublicKey, RawSignature, RecoverableSignature, normalize, parse_der};
pub use signer::KeySigner;
