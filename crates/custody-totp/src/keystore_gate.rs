//! The gates every front end composes over a [`Keystore`]: one place that
//! says what `Audited(TotpGate(...))` over a keystore's records is, so the
//! C ABI, the Python package (and any other binding) cannot drift from
//! each other.

use std::fmt;
use std::sync::Arc;

use custody_core::{Audited, Keystore, SharedBackend};

use crate::{Error, TotpConfig, TotpGate, TotpRegistry};

/// A keystore's TOTP registry and the gated backend built over it:
/// `Audited(TotpGate(inner))`, the registry, the state store (replay
/// guard, lockouts) and the audit log all the keystore's own.
///
/// Every signature and export of a front end goes through
/// [`KeystoreGate::backend`]: the TOTP gate refuses a wallet enrolled for
/// TOTP without a fresh code, and the audit layer records the outcome.
#[derive(Clone)]
pub struct KeystoreGate {
    registry: Arc<TotpRegistry>,
    backend: SharedBackend,
}

impl fmt::Debug for KeystoreGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeystoreGate")
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl KeystoreGate {
    /// `Audited(TotpGate(inner))` over `keystore`'s records, with the
    /// default issuer: `inner` is the keystore's own backend
    /// ([`Keystore::backend`]) or an external key's (a KMS or HSM key
    /// gated exactly as a wallet's).
    ///
    /// # Errors
    /// As [`KeystoreGate::registry_for`].
    pub fn new(keystore: &Keystore, inner: SharedBackend) -> Result<Self, Error> {
        let registry = Self::registry_for(keystore, None)?;
        let gate: SharedBackend = Arc::new(TotpGate::new(inner, registry.clone()));
        let backend: SharedBackend = Arc::new(Audited::new(gate, keystore.audit()));
        Ok(Self { registry, backend })
    }

    /// The TOTP registry over `keystore`'s KEK, state store and audit log,
    /// its wallet scheme, and `issuer` in enrolment URIs if given (else
    /// [`crate::DEFAULT_ISSUER`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an issuer the configuration refuses
    /// (empty, or holding a `:`); [`Error::Core`] for a keystore backend that
    /// does not wrap data keys.
    pub fn registry_for(
        keystore: &Keystore,
        issuer: Option<&str>,
    ) -> Result<Arc<TotpRegistry>, Error> {
        let mut config = TotpConfig::new(keystore.scheme());
        if let Some(issuer) = issuer {
            issuer.clone_into(&mut config.issuer);
        }
        Ok(Arc::new(TotpRegistry::new(
            keystore.backend(),
            keystore.state(),
            keystore.audit(),
            config,
        )?))
    }

    /// The gated backend: every signature and export goes through it.
    #[must_use]
    pub fn backend(&self) -> &SharedBackend {
        &self.backend
    }

    /// The registry the gate consults (the default issuer).
    #[must_use]
    pub fn registry(&self) -> &Arc<TotpRegistry> {
        &self.registry
    }
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use custody_core::{
        Authorization, CreateOptions, Denial, Digest32, Intent, KeyRef, KeySigner, Passphrase, Seed,
    };

    use super::*;
    use crate::EnrolMode;

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn the_gate_refuses_an_enrolled_wallet_without_a_fresh_code() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Keystore::create(
            &dir.path().join("ks"),
            &Passphrase::from_str_copy("correct horse"),
            &Seed::new([0x22; 64]),
            &CreateOptions::light().unwrap(),
        )
        .unwrap();
        let gate = KeystoreGate::new(&ks, ks.backend()).unwrap();
        assert!(format!("{gate:?}").starts_with("KeystoreGate { backend: "));
        let e = gate
            .registry()
            .enrol("alice", EnrolMode::New)
            .wait()
            .unwrap();
        let key = KeyRef::Wallet {
            name: "alice".to_owned(),
            index: 0,
        };
        let signer = KeySigner::pin(gate.backend().clone(), key).wait().unwrap();
        let digest = Digest32([0x5a; 32]);
        let refused = signer
            .sign(digest, Intent::raw_digest(), &Authorization::none())
            .wait();
        assert!(matches!(
            refused,
            Err(custody_core::Error::Denied(Denial::TotpRequired))
        ));
        let code = e
            .params()
            .code_at(e.uri().expose_secret(), now())
            .unwrap()
            .expose_str()
            .to_owned();
        let sig = signer
            .sign(
                digest,
                Intent::raw_digest(),
                &Authorization::totp(code.clone()),
            )
            .wait()
            .unwrap();
        assert_eq!(
            &sig.recover(&digest).unwrap(),
            signer.key().secp256k1().unwrap()
        );
        let replayed = signer
            .sign(digest, Intent::raw_digest(), &Authorization::totp(code))
            .wait();
        assert!(matches!(
            replayed,
            Err(custody_core::Error::Denied(Denial::TotpReplayed))
        ));
    }

    #[test]
    fn an_issuer_the_configuration_refuses_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let ks = Keystore::create(
            &dir.path().join("ks"),
            &Passphrase::from_str_copy("pw"),
            &Seed::new([0x33; 64]),
            &CreateOptions::light().unwrap(),
        )
        .unwrap();
        let e = KeystoreGate::registry_for(&ks, Some("a:b")).unwrap_err();
        assert_eq!(e.kind(), "bad-input");
        let registry = KeystoreGate::registry_for(&ks, Some("Example")).unwrap();
        assert_eq!(registry.config().issuer, "Example");
    }
}
