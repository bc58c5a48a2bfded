//! [`CredentialStore`]: approvers' credentials and their signature
//! counters in a [`StateStore`], so that every replica sees the same ones.

use std::sync::Arc;

use custody_core::{CasOutcome, Pending, StateStore};
use sha2::{Digest, Sha256};

use super::WebAuthnError;
use super::ceremony::{Credential, RegisteredCredential};
use super::data::CredentialKey;

/// How many times a counter update re-reads after a conflict.
const MAX_CAS_ATTEMPTS: usize = 16;

/// Registered credentials and their counters, in a state store (the
/// embedded file store, or PostgreSQL for many replicas).
///
/// Keys: `webauthn/credential/<SHA-256 of the id>` (the COSE key),
/// `webauthn/key/<SHA-256 of the COSE key>` (marks a key as taken) and
/// `webauthn/counter/<SHA-256 of the id>` (4 bytes, big-endian).
#[derive(Clone)]
pub struct CredentialStore {
    state: Arc<dyn StateStore>,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore")
            .field("state", &self.state)
            .finish()
    }
}

fn key_of(kind: &str, bytes: &[u8]) -> String {
    format!("webauthn/{kind}/{}", hex::encode(Sha256::digest(bytes)))
}

impl CredentialStore {
    /// Credentials kept in `state`.
    #[must_use]
    pub fn new(state: Arc<dyn StateStore>) -> Self {
        Self { state }
    }

    /// The state store the credentials and counters are kept in.
    #[must_use]
    pub fn state(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    /// Records a newly registered credential and its counter. A credential
    /// whose id *or* public key was registered before is refused (one
    /// device, one approver: a key cannot be enrolled twice, e.g. for two
    /// approvers of one quorum).
    ///
    /// # Errors
    /// [`WebAuthnError::AlreadyRegistered`]; state-store errors.
    pub fn register<'a>(
        &'a self,
        registered: &'a RegisteredCredential,
    ) -> Pending<'a, Result<(), WebAuthnError>> {
        Pending::drive(async move {
            let credential = &registered.credential;
            let cose = credential.key.to_cose();
            // The key first: a crash between the two writes leaves the key
            // taken and the credential absent, which refuses (never doubles)
            // a second registration of that key.
            for (key, value) in [
                (key_of("key", &cose), credential.credential_id.clone()),
                (
                    key_of("credential", &credential.credential_id),
                    cose.clone(),
                ),
            ] {
                match self.state.compare_and_swap(&key, None, &value).await? {
                    CasOutcome::Swapped { .. } => {}
                    CasOutcome::Conflict { .. } => return Err(WebAuthnError::AlreadyRegistered),
                }
            }
            self.record_counter(&credential.credential_id, registered.sign_count)
                .await
        })
    }

    /// The registered credential with `id`, if any.
    ///
    /// # Errors
    /// State-store errors; [`WebAuthnError::InvalidKey`] and the like for a
    /// stored key that no longer parses.
    pub fn credential<'a>(
        &'a self,
        id: &'a [u8],
    ) -> Pending<'a, Result<Option<Credential>, WebAuthnError>> {
        Pending::drive(async move {
            let Some(record) = self.state.get(&key_of("credential", id)).await? else {
                return Ok(None);
            };
            Ok(Some(Credential {
                id: id.to_vec(),
                key: CredentialKey::from_cose(&record.value)?,
            }))
        })
    }

    /// Checks, reading only, that `presented` would be recorded for the
    /// credential `id` by [`CredentialStore::record_counter`] as things
    /// stand: what a decision checks before anything is signed (the
    /// counter itself is written once the signature is made). Returns the
    /// write that records it, by compare-and-swap from the version read
    /// ([`CounterSwap`]; `None` when there is nothing to write: a stored
    /// 0 and a presented 0, an authenticator that keeps no counter), for a
    /// caller that commits it later with other writes.
    ///
    /// # Errors
    /// [`WebAuthnError::CounterRegressed`]; state-store errors.
    pub fn check_counter<'a>(
        &'a self,
        id: &'a [u8],
        presented: u32,
    ) -> Pending<'a, Result<Option<CounterSwap>, WebAuthnError>> {
        Pending::drive(async move {
            let key = key_of("counter", id);
            let current = self.state.get(&key).await?;
            match current
                .as_ref()
                .map(|r| stored_counter(&r.value))
                .transpose()?
            {
                Some(0) if presented == 0 => Ok(None),
                Some(stored) if presented <= stored => {
                    Err(WebAuthnError::CounterRegressed { stored, presented })
                }
                _ => Ok(Some(CounterSwap {
                    key,
                    expected: current.map(|r| r.version),
                    value: presented.to_be_bytes(),
                })),
            }
        })
    }

    /// Records `presented`, a verified assertion's counter, for the
    /// credential `id` by compare-and-swap: it must be above the one
    /// recorded, unless both are 0 (an authenticator that keeps no
    /// counter, as synced passkeys do). Two replicas racing one counter
    /// value: exactly one succeeds.
    ///
    /// # Errors
    /// [`WebAuthnError::CounterRegressed`]; state-store errors.
    pub fn record_counter<'a>(
        &'a self,
        id: &'a [u8],
        presented: u32,
    ) -> Pending<'a, Result<(), WebAuthnError>> {
        Pending::drive(async move {
            let key = key_of("counter", id);
            let mut current = self.state.get(&key).await?;
            for _ in 0..MAX_CAS_ATTEMPTS {
                let stored = match &current {
                    None => None,
                    Some(record) => Some(stored_counter(&record.value)?),
                };
                match stored {
                    Some(0) if presented == 0 => return Ok(()),
                    Some(stored) if presented <= stored => {
                        return Err(WebAuthnError::CounterRegressed { stored, presented });
                    }
                    _ => {}
                }
                let version = current.as_ref().map(|r| r.version);
                match self
                    .state
                    .compare_and_swap(&key, version, &presented.to_be_bytes())
                    .await?
                {
                    CasOutcome::Swapped { .. } => return Ok(()),
                    CasOutcome::Conflict { current: now } => current = now,
                }
            }
            Err(WebAuthnError::Contention)
        })
    }
}

/// The write that records a checked counter
/// ([`CredentialStore::check_counter`]): a compare-and-swap of `key` from
/// the version read to the counter presented. A concurrent request that
/// recorded the counter first makes it conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterSwap {
    /// The counter's state-store key.
    pub key: String,
    /// The version read (`None`: no counter was recorded).
    pub expected: Option<u64>,
    /// The counter presented, 4 bytes big-endian.
    pub value: [u8; 4],
}

/// A stored counter: 4 bytes, big-endian.
fn stored_counter(value: &[u8]) -> Result<u32, WebAuthnError> {
    <[u8; 4]>::try_from(value)
        .map(u32::from_be_bytes)
        .map_err(|_| {
            WebAuthnError::State(custody_core::Error::MalformedRecord(
                "a WebAuthn counter is 4 bytes",
            ))
        })
}
