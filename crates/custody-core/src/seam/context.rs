//! Encryption contexts: the non-secret key/value pairs an envelope is bound
//! to, as AWS KMS binds an `EncryptionContext`.
//!
//! A context is authenticated, never encrypted and never stored in the
//! envelope: whoever opens the envelope must present the same pairs (wallet
//! name, purpose, ...), so an envelope copied into another wallet's slot fails
//! to open. Order does not matter; the canonical encoding sorts by key.

use std::collections::BTreeMap;
use std::fmt;

use crate::Error;

/// Total size limit of a context's keys and values, in bytes (AWS KMS's limit).
pub const MAX_CONTEXT_BYTES: usize = 8192;

/// Key/value pairs bound to an envelope as additional authenticated data.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// An empty context.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pair (replacing any earlier value for `key`).
    ///
    /// # Errors
    /// [`Error::InvalidContext`] if `key` is empty or the context would exceed
    /// [`MAX_CONTEXT_BYTES`].
    pub fn with(mut self, key: &str, value: &str) -> Result<Self, Error> {
        self.insert(key, value)?;
        Ok(self)
    }

    /// Adds a pair (replacing any earlier value for `key`).
    ///
    /// # Errors
    /// [`Error::InvalidContext`] if `key` is empty or the context would exceed
    /// [`MAX_CONTEXT_BYTES`].
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), Error> {
        if key.is_empty() {
            return Err(Error::InvalidContext("empty key"));
        }
        let old = self.0.insert(key.to_owned(), value.to_owned());
        if self.byte_len() > MAX_CONTEXT_BYTES {
            match old {
                Some(v) => self.0.insert(key.to_owned(), v),
                None => self.0.remove(key),
            };
            return Err(Error::InvalidContext("larger than 8192 bytes"));
        }
        Ok(())
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value for `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn byte_len(&self) -> usize {
        self.0.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// The canonical encoding that is authenticated:
    /// `u16 count ‖ (u16 key_len ‖ key ‖ u16 value_len ‖ value)*`, big-endian
    /// lengths, pairs sorted by the key's UTF-8 bytes. Injective: two
    /// different contexts never encode alike.
    #[must_use]
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + self.byte_len() + 4 * self.0.len());
        // Lengths fit in u16: the total is capped at 8192 bytes by `insert`.
        out.extend_from_slice(&u16_len(self.0.len()).to_be_bytes());
        for (k, v) in &self.0 {
            out.extend_from_slice(&u16_len(k.len()).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&u16_len(v.len()).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        out
    }
}

fn u16_len(n: usize) -> u16 {
    // `insert` caps the whole context at MAX_CONTEXT_BYTES < u16::MAX, and a
    // pair has at least one key byte, so counts fit too.
    u16::try_from(n).unwrap_or(u16::MAX)
}

impl fmt::Debug for EncryptionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_encoding_is_order_independent_and_injective() {
        let a = EncryptionContext::new()
            .with("wallet", "alice")
            .unwrap()
            .with("purpose", "seed")
            .unwrap();
        let b = EncryptionContext::new()
            .with("purpose", "seed")
            .unwrap()
            .with("wallet", "alice")
            .unwrap();
        assert_eq!(a.canonical_bytes(), b.canonical_bytes());
        // Shifting bytes between key and value changes the encoding.
        let c = EncryptionContext::new().with("ab", "c").unwrap();
        let d = EncryptionContext::new().with("a", "bc").unwrap();
        assert_ne!(c.canonical_bytes(), d.canonical_bytes());
        assert_eq!(EncryptionContext::new().canonical_bytes(), vec![0, 0]);
        assert_eq!(
            c.canonical_bytes(),
            vec![0, 1, 0, 2, b'a', b'b', 0, 1, b'c']
        );
    }

    #[test]
    fn limits_are_enforced_without_partial_update() {
        let mut ctx = EncryptionContext::new();
        assert!(matches!(ctx.insert("", "x"), Err(Error::InvalidContext(_))));
        ctx.insert("k", &"v".repeat(8000)).unwrap();
        assert!(ctx.insert("k2", &"v".repeat(500)).is_err());
        assert_eq!(ctx.get("k2"), None);
        assert!(ctx.insert("k", &"w".repeat(9000)).is_err());
        assert_eq!(ctx.get("k").map(str::len), Some(8000));
    }
}
