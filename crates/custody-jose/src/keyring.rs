//! Rotation and revocation of a scope's sealing keys, planned: a
//! [`SealingKeyring`] holds one scope's **current** key (what new secrets
//! are sealed to) and its **previous** keys (which still open what was
//! sealed to them, until retired), each known by its `kid`, the RFC 7638
//! thumbprint of its public JWK, and a list of **revoked** `kid`s.
//!
//! - [`SealingKeyring::rotate`] makes a new key current; the old one keeps
//!   opening.
//! - [`SealingKeyring::reseal`] opens a secret with whichever key it names
//!   and seals it to the current key in the same process: the plaintext
//!   exists only in zeroizing memory and is never returned.
//! - [`SealingKeyring::retire`] drops a previous key once everything has
//!   been resealed: what still names it is [`OpenError::UnknownKey`].
//! - [`SealingKeyring::revoke`] is an explicit decision (a key believed
//!   compromised): every secret sealed to it fails with
//!   [`OpenError::Revoked`], before any backend is asked, distinct from a
//!   decryption failure. A revoked key cannot be made current again.
//!
//! The keyring is a value the service persists as it likes (its keys are
//! references to keys that stay in their backends, never key material).

use custody_core::{Authorization, KeySigner, Pending, SecretVec};

use crate::JoseError;
use crate::jwe::{self, CompactJwe, OpenError, Recipient, Scope, SealError};

/// One key of a keyring: the signer that reaches it and its recipient.
#[derive(Debug, Clone)]
struct Entry {
    signer: KeySigner,
    recipient: Recipient,
}

impl Entry {
    fn new(signer: KeySigner) -> Result<Self, JoseError> {
        let recipient = Recipient::from_pinned(signer.key())?;
        Ok(Self { signer, recipient })
    }
}

/// A scope's sealing keys: see the [module](self) docs.
#[derive(Debug, Clone)]
pub struct SealingKeyring {
    scope: Scope,
    current: Entry,
    previous: Vec<Entry>,
    revoked: Vec<String>,
}

impl SealingKeyring {
    /// A keyring for `scope` whose current key is `current` (a P-256 or
    /// RSA key whose backend decrypts).
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for a key that is not a sealing key.
    pub fn new(scope: Scope, current: KeySigner) -> Result<Self, JoseError> {
        Ok(Self {
            scope,
            current: Entry::new(current)?,
            previous: Vec::new(),
            revoked: Vec::new(),
        })
    }

    /// The scope.
    #[must_use]
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The current key's `kid`.
    #[must_use]
    pub fn current_kid(&self) -> &str {
        self.current.recipient.kid()
    }

    /// The current key's public JWK (`use` `enc`), what senders seal to.
    #[must_use]
    pub fn recipient(&self) -> &Recipient {
        &self.current.recipient
    }

    /// The `kid`s of the keys that still open, current first.
    #[must_use]
    pub fn kids(&self) -> Vec<&str> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|e| e.recipient.kid())
            .collect()
    }

    /// The revoked `kid`s.
    #[must_use]
    pub fn revoked(&self) -> &[String] {
        &self.revoked
    }

    /// Makes `next` the current key; the current one becomes a previous
    /// key (it still opens).
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for a key that is not a sealing key, one
    /// already in the keyring, or a revoked one.
    pub fn rotate(&mut self, next: KeySigner) -> Result<(), JoseError> {
        let entry = Entry::new(next)?;
        let kid = entry.recipient.kid();
        if self.revoked.iter().any(|r| r == kid) {
            return Err(JoseError::InvalidKey {
                what: "a revoked key cannot become current",
            });
        }
        if self.kids().contains(&kid) {
            return Err(JoseError::InvalidKey {
                what: "the key is already in the keyring",
            });
        }
        let old = std::mem::replace(&mut self.current, entry);
        self.previous.insert(0, old);
        Ok(())
    }

    /// Drops the previous key `kid`: secrets still sealed to it no longer
    /// open ([`OpenError::UnknownKey`]).
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for the current key (rotate first);
    /// [`JoseError::UnknownKey`] for a `kid` not among the previous keys.
    pub fn retire(&mut self, kid: &str) -> Result<(), JoseError> {
        if kid == self.current_kid() {
            return Err(JoseError::InvalidKey {
                what: "the current key cannot be retired (rotate first)",
            });
        }
        let before = self.previous.len();
        self.previous.retain(|e| e.recipient.kid() != kid);
        if self.previous.len() == before {
            return Err(JoseError::UnknownKey);
        }
        Ok(())
    }

    /// Revokes the key `kid`: it is dropped, and every secret sealed to it
    /// fails with [`OpenError::Revoked`]. Revoking a key that has already
    /// been retired (or was never here) records it all the same.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] for the current key: rotate to a new key
    /// first, so that sealing never goes to a revoked key.
    pub fn revoke(&mut self, kid: &str) -> Result<(), JoseError> {
        if kid == self.current_kid() {
            return Err(JoseError::InvalidKey {
                what: "the current key cannot be revoked (rotate first)",
            });
        }
        self.previous.retain(|e| e.recipient.kid() != kid);
        if !self.revoked.iter().any(|r| r == kid) {
            self.revoked.push(kid.to_owned());
        }
        Ok(())
    }

    /// Seals `plaintext` to the current key for the keyring's scope.
    ///
    /// # Errors
    /// As [`jwe::seal`].
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, SealError> {
        jwe::seal(&self.current.recipient, &self.scope, plaintext)
    }

    /// The key a parsed JWE names, by `kid`.
    fn select(&self, parsed: &CompactJwe) -> Result<&Entry, OpenError> {
        let kid = parsed.header().kid().ok_or(OpenError::UnknownKey)?;
        if self.revoked.iter().any(|r| r == kid) {
            return Err(OpenError::Revoked);
        }
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|e| e.recipient.kid() == kid)
            .ok_or(OpenError::UnknownKey)
    }

    /// Opens `jwe` with the key its `kid` names, through that key's
    /// backend, presenting `auth` to every gate on the way.
    ///
    /// # Errors
    /// [`OpenError::Jose`] for a JWE that does not parse;
    /// [`OpenError::ScopeMismatch`]; [`OpenError::Revoked`] for a revoked
    /// `kid`; [`OpenError::UnknownKey`] for no `kid` or one not in the
    /// keyring; then as [`jwe::open`].
    pub fn open<'a>(
        &'a self,
        jwe: &str,
        auth: &'a Authorization,
    ) -> Pending<'a, Result<SecretVec, OpenError>> {
        let parsed = match CompactJwe::parse(jwe) {
            Ok(parsed) => parsed,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        Pending::drive(async move { self.open_parsed(&parsed, auth).await })
    }

    async fn open_parsed(
        &self,
        parsed: &CompactJwe,
        auth: &Authorization,
    ) -> Result<SecretVec, OpenError> {
        if parsed.header().scope() != Some(&self.scope) {
            return Err(OpenError::ScopeMismatch);
        }
        let entry = self.select(parsed)?;
        jwe::open_parsed(
            entry.signer.backend().as_ref(),
            entry.signer.key(),
            parsed,
            &self.scope,
            auth,
        )
        .await
    }

    /// Opens `jwe` (as [`open`](Self::open)) and seals its plaintext to
    /// the current key: the returned JWE holds the same secret. The
    /// plaintext never leaves zeroizing memory.
    ///
    /// # Errors
    /// As [`open`](Self::open); a [`SealError`] as
    /// [`OpenError::Jose`] (or [`OpenError::Backend`] with
    /// [`custody_core::Error::Rng`] for the generator).
    pub fn reseal<'a>(
        &'a self,
        jwe: &str,
        auth: &'a Authorization,
    ) -> Pending<'a, Result<String, OpenError>> {
        let parsed = match CompactJwe::parse(jwe) {
            Ok(parsed) => parsed,
            Err(e) => return Pending::ready(Err(e.into())),
        };
        Pending::drive(async move {
            let plaintext = self.open_parsed(&parsed, auth).await?;
            self.seal(plaintext.expose_secret()).map_err(|e| match e {
                SealError::Jose(j) => OpenError::Jose(j),
                _ => OpenError::Backend(custody_core::Error::Rng),
            })
        })
    }
}
