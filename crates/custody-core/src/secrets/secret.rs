//! Secret containers.
//!
//! Every secret in the SDK lives in one of these types. They
//! - zeroize their bytes when dropped,
//! - are not `Clone` (a copy is a second place to wipe) and not `Serialize`,
//! - print only their type name in `Debug` and have no `Display`,
//! - compare in constant time ([`subtle::ConstantTimeEq`]),
//! - expose their bytes only through methods named `expose_*`, which mark each
//!   place that touches key material for an auditor's `grep`.

use std::fmt;

use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Error;

/// Fills `buf` from the operating system's CSPRNG.
///
/// # Errors
/// [`Error::Rng`] if the OS generator fails.
pub fn fill_random(buf: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(buf).map_err(|_| Error::Rng)
}

macro_rules! fixed_secret {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        pub struct $name(Zeroizing<[u8; $len]>);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Takes ownership of key material. The caller's copy, if any, is
            /// the caller's to wipe; prefer [`Self::from_slice`] on a buffer
            /// that is itself zeroizing.
            #[must_use]
            pub fn new(bytes: [u8; $len]) -> Self {
                Self(Zeroizing::new(bytes))
            }

            /// Copies key material from a slice.
            ///
            /// # Errors
            /// [`Error::InvalidKeyMaterial`] if the slice has the wrong length.
            pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
                let mut out = Zeroizing::new([0u8; $len]);
                if bytes.len() != $len {
                    return Err(Error::InvalidKeyMaterial("wrong length"));
                }
                out.copy_from_slice(bytes);
                Ok(Self(out))
            }

            /// Fresh bytes from the OS CSPRNG.
            ///
            /// # Errors
            /// [`Error::Rng`] if the OS generator fails.
            pub fn random() -> Result<Self, Error> {
                let mut out = Zeroizing::new([0u8; $len]);
                fill_random(out.as_mut_slice())?;
                Ok(Self(out))
            }

            /// The raw key material. Every call site is a place that handles a
            /// secret: keep the borrow short and never copy it into a
            /// non-zeroizing buffer.
            #[must_use]
            pub fn expose_secret(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl ConstantTimeEq for $name {
            fn ct_eq(&self, other: &Self) -> Choice {
                self.0.as_slice().ct_eq(other.0.as_slice())
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.ct_eq(other).into()
            }
        }

        impl Eq for $name {}
    };
}

fixed_secret!(
    /// A 256-bit AES-GCM data key (one per envelope), or a key-encryption key.
    DataKey,
    32
);
fixed_secret!(
    /// A BIP39 seed (512 bits): the root of every HD-derived key.
    Seed,
    64
);
fixed_secret!(
    /// A raw secp256k1 secret scalar (32 bytes, big-endian, `1..n-1` when
    /// validated by the code that uses it).
    PrivateKeyBytes,
    32
);

/// Variable-length secret bytes (a decrypted envelope payload, a mnemonic
/// phrase, a TOTP secret).
pub struct SecretVec(Vec<u8>);

impl SecretVec {
    /// Takes ownership of the bytes (they are wiped when this is dropped).
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Copies the bytes into a new zeroizing buffer.
    #[must_use]
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The raw secret. Every call site handles a secret.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    /// The raw secret, mutable (for decryption in place). Every call site
    /// handles a secret.
    pub(crate) fn expose_secret_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Length in bytes (not secret).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for SecretVec {
    fn drop(&mut self) {
        // Wipes the bytes and the spare capacity, as `Zeroizing<Vec<u8>>`
        // would, but through the slice impls, which zeroize in bulk (a
        // `memset` behind an optimization barrier): `Vec<u8>::zeroize` writes
        // one volatile byte at a time, which costs more than AES-GCM itself
        // on a large envelope payload.
        self.0.as_mut_slice().zeroize();
        self.0.spare_capacity_mut().zeroize();
    }
}

impl ZeroizeOnDrop for SecretVec {}

impl fmt::Debug for SecretVec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretVec(<redacted>)")
    }
}

impl ConstantTimeEq for SecretVec {
    fn ct_eq(&self, other: &Self) -> Choice {
        // `subtle` compares lengths first (lengths are not secret).
        self.0.as_slice().ct_eq(other.0.as_slice())
    }
}

impl PartialEq for SecretVec {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for SecretVec {}

/// A passphrase or password (UTF-8 not required: it is used as bytes).
pub struct Passphrase(Zeroizing<Vec<u8>>);

impl Passphrase {
    /// Takes ownership of the passphrase bytes.
    #[must_use]
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies a string passphrase.
    #[must_use]
    pub fn from_str_copy(s: &str) -> Self {
        Self(Zeroizing::new(s.as_bytes().to_vec()))
    }

    /// Reads a passphrase from file contents: exactly one trailing newline
    /// (`\n` or `\r\n`) is removed, nothing else (the CLI contract).
    #[must_use]
    pub fn from_file_contents(mut bytes: Vec<u8>) -> Self {
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        Self(Zeroizing::new(bytes))
    }

    /// The passphrase bytes. Every call site handles a secret.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_bytes() {
        let k = DataKey::new([0xAB; 32]);
        let s = format!("{k:?}");
        assert_eq!(s, "DataKey(<redacted>)");
        assert!(!s.contains("ab") && !s.contains("AB") && !s.contains("171"));
        let v = SecretVec::from_slice(b"hunter2");
        assert!(!format!("{v:?}").contains("hunter2"));
        let p = Passphrase::from_str_copy("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
        let seed = Seed::new([7; 64]);
        assert_eq!(format!("{seed:?}"), "Seed(<redacted>)");
    }

    #[test]
    fn secrets_zeroize_on_drop() {
        fn zeroize_on_drop<T: ZeroizeOnDrop>() {}
        zeroize_on_drop::<SecretVec>();
        // The bulk wipe `SecretVec` uses covers every initialized byte and
        // the spare capacity.
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(b"secret");
        v.as_mut_slice().zeroize();
        v.spare_capacity_mut().zeroize();
        assert_eq!(v, [0; 6]);
    }

    #[test]
    fn constant_time_equality_matches_bytes() {
        assert_eq!(DataKey::new([1; 32]), DataKey::new([1; 32]));
        let mut other = [1; 32];
        other[31] = 2;
        assert_ne!(DataKey::new([1; 32]), DataKey::new(other));
        assert_ne!(SecretVec::from_slice(b"ab"), SecretVec::from_slice(b"abc"));
    }

    #[test]
    fn from_slice_rejects_wrong_length() {
        assert!(matches!(
            DataKey::from_slice(&[0; 31]),
            Err(Error::InvalidKeyMaterial(_))
        ));
        assert!(DataKey::from_slice(&[0; 32]).is_ok());
    }

    #[test]
    fn random_keys_differ() {
        let a = DataKey::random().unwrap();
        let b = DataKey::random().unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn passphrase_file_strips_exactly_one_newline() {
        assert_eq!(
            Passphrase::from_file_contents(b"pw\n".to_vec()).expose_secret(),
            b"pw"
        );
        assert_eq!(
            Passphrase::from_file_contents(b"pw\r\n".to_vec()).expose_secret(),
            b"pw"
        );
        assert_eq!(
            Passphrase::from_file_contents(b"pw\n\n".to_vec()).expose_secret(),
            b"pw\n"
        );
        assert_eq!(
            Passphrase::from_file_contents(b" pw ".to_vec()).expose_secret(),
            b" pw "
        );
    }
}
