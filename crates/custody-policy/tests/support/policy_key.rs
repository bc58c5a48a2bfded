//! The policy key of the log tests (`log.rs`, `recovery.rs`): a secp256k1
//! key signing digests as a `KeyBackend` would (RFC 6979, low s), here
//! with k256 directly, and a log in memory checked against it.
#![allow(
    dead_code,
    reason = "each test file that includes this uses a part of it"
)]

use std::sync::Arc;

use custody_core::{MemoryStore, PublicKey, RecoverableSignature, StateStore};
use custody_policy::log::PolicyLog;
use custody_policy::webauthn::RelyingParty;

use crate::authenticator::{ORIGIN, RP_ID};

/// A policy log in a fresh memory store, its entries checked against
/// `key` and the test relying party.
pub(crate) fn memory_log(key: &PolicyKey) -> (Arc<MemoryStore>, PolicyLog) {
    let store = Arc::new(MemoryStore::new());
    let log = PolicyLog::new(
        Arc::clone(&store) as Arc<dyn StateStore>,
        RelyingParty::new(RP_ID, [ORIGIN]).unwrap(),
        key.public(),
    );
    (store, log)
}

/// A secp256k1 signing key.
pub(crate) struct PolicyKey(k256::ecdsa::SigningKey);

impl PolicyKey {
    /// The key whose secret is 32 bytes of `seed`.
    pub(crate) fn new(seed: u8) -> Self {
        Self(k256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap())
    }

    pub(crate) fn public(&self) -> PublicKey {
        PublicKey::from_sec1_bytes(&self.0.verifying_key().to_sec1_bytes()).unwrap()
    }

    /// k256 signs with low s and the matching recovery id.
    pub(crate) fn sign(&self, digest: &[u8; 32]) -> RecoverableSignature {
        let (sig, recid) = self.0.sign_prehash_recoverable(digest);
        let bytes = sig.to_bytes();
        RecoverableSignature::from_parts(
            bytes[..32].try_into().unwrap(),
            bytes[32..].try_into().unwrap(),
            recid.is_y_odd(),
        )
        .unwrap()
    }
}
