//! The quorum key: [`QuorumSecret`] (32 bytes, a P-256 private key),
//! its [`QuorumPublicKey`], and what a completed boot yields,
//! [`QuorumKey`], whose [`QuorumKey::kek`] wraps user keys.

use std::fmt;
use std::str::FromStr;

use hkdf::Hkdf;
use p256::elliptic_curve::sec1::ToSec1Point;
use p256::{PublicKey, SecretKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::Error;
use crate::kek::QuorumKek;

/// The HKDF salt of the quorum KEK (`SPEC.md`, "Quorum KEK").
const KEK_SALT: &[u8] = b"custody/quorum-kek/v1";

/// The quorum secret: 32 bytes that are a P-256 private key (a non-zero
/// scalar below the group order), big-endian.
///
/// Zeroized on drop; no `Clone`; `Debug` prints the type name only. It is
/// what [`crate::split`] splits and an [`crate::EnclaveBoot`] rebuilds; its
/// public key ([`QuorumSecret::public_key`]) is published in the share set
/// and checked after every reconstruction.
pub struct QuorumSecret(Zeroizing<[u8; 32]>);

impl QuorumSecret {
    /// A fresh secret from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Rng`] if the generator fails.
    pub fn generate() -> Result<Self, Error> {
        let key = crate::hpke::generate_secret_key()?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(key.to_bytes().as_slice());
        Ok(Self(bytes))
    }

    /// A secret from its 32 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidParameters`] if the bytes are not a P-256 private
    /// key (zero, or not below the group order).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, Error> {
        SecretKey::from_slice(bytes).map_err(|_| {
            Error::InvalidParameters("the quorum secret is not a P-256 private key")
        })?;
        Ok(Self(Zeroizing::new(*bytes)))
    }

    /// The secret bytes. **Key material**: every call site handles the
    /// quorum secret.
    #[must_use]
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }

    /// The public key of this secret.
    #[must_use]
    pub fn public_key(&self) -> QuorumPublicKey {
        // The bytes were checked to be a P-256 private key when this value
        // was made (`generate`, `from_bytes`); the fallback cannot be taken.
        match SecretKey::from_slice(self.0.as_slice()) {
            Ok(key) => QuorumPublicKey::from_key(&key.public_key()),
            Err(_) => QuorumPublicKey([0; 33]),
        }
    }
}

impl fmt::Debug for QuorumSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QuorumSecret(<redacted>)")
    }
}

/// The quorum public key: a P-256 point, SEC 1 compressed (33 bytes). In
/// JSON and `Display`, 66 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuorumPublicKey([u8; 33]);

impl QuorumPublicKey {
    fn from_key(key: &PublicKey) -> Self {
        let point = key.as_affine().to_sec1_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        Self(out)
    }

    /// Reads a compressed SEC 1 P-256 point.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] if `bytes` are not 33 bytes of a
    /// compressed point on the curve.
    pub fn from_sec1_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let invalid = Error::InvalidPublicKey("not a compressed P-256 point");
        if bytes.len() != 33 || !matches!(bytes.first(), Some(0x02 | 0x03)) {
            return Err(invalid);
        }
        PublicKey::from_sec1_bytes(bytes).map_err(|_| invalid.clone())?;
        let mut out = [0u8; 33];
        out.copy_from_slice(bytes);
        Ok(Self(out))
    }

    /// The compressed SEC 1 encoding.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 33] {
        self.0
    }

    /// Constant-time equality (the check of a reconstructed key).
    #[must_use]
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// The KEK id of the quorum KEK this key identifies:
    /// `quorum:` and the first 8 bytes of SHA-256 of the compressed key, in
    /// hex.
    #[must_use]
    pub fn kek_id_text(&self) -> String {
        let digest = Sha256::digest(self.0);
        format!("quorum:{}", hex::encode(&digest[..8]))
    }
}

impl fmt::Display for QuorumPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for QuorumPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QuorumPublicKey({self})")
    }
}

impl FromStr for QuorumPublicKey {
    type Err = Error;

    /// 66 lower-case hex digits of a compressed point.
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut bytes = [0u8; 33];
        if !crate::format::decode_hex(s, &mut bytes) {
            return Err(Error::InvalidPublicKey("not 66 lower-case hex digits"));
        }
        Self::from_sec1_bytes(&bytes)
    }
}

impl Serialize for QuorumPublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for QuorumPublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes: [u8; 33] = crate::format::hex_array::deserialize(deserializer)?;
        Self::from_sec1_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

/// The quorum key as a completed boot yields it: the secret, checked
/// against the share set's public key.
///
/// `Debug` shows the public key only; the secret is zeroized on drop.
pub struct QuorumKey {
    secret: QuorumSecret,
    public: QuorumPublicKey,
}

impl QuorumKey {
    /// A quorum key from a secret (e.g. on the machine that split it).
    #[must_use]
    pub fn from_secret(secret: QuorumSecret) -> Self {
        let public = secret.public_key();
        Self { secret, public }
    }

    /// The quorum public key.
    #[must_use]
    pub fn public_key(&self) -> &QuorumPublicKey {
        &self.public
    }

    /// The secret. **Key material.**
    #[must_use]
    pub fn expose_secret(&self) -> &QuorumSecret {
        &self.secret
    }

    /// The quorum KEK, a [`custody_core::WrappingBackend`] that user keys
    /// are wrapped under: an AES-256-GCM key derived from the secret
    /// (HKDF-SHA256, salt `"custody/quorum-kek/v1"`, info the compressed
    /// public key), with the id [`QuorumPublicKey::kek_id_text`].
    ///
    /// # Errors
    /// None in practice; [`Error::InvalidParameters`] if the id is refused
    /// by `custody-core` (it never is: it is 23 printable characters).
    pub fn kek(&self) -> Result<QuorumKek, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(KEK_SALT), self.secret.expose_secret().as_slice())
            .expand(&self.public.to_bytes(), key.as_mut_slice())
            .map_err(|_| Error::InvalidParameters("HKDF output length"))?;
        QuorumKek::new(&self.public, &key)
    }
}

impl fmt::Debug for QuorumKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuorumKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}
