//! EIP-191 personal messages (`personal_sign`, version `0x45`) and the
//! 65-byte `r‖s‖v` signatures that message signing returns.
//!
//! A message signature's `v` is always 27 or 28: EIP-155 replay protection
//! belongs to legacy transactions only, and applying it to a message
//! signature (a bug peers shipped) makes it unverifiable by every other tool.
//! Chain binding for messages is EIP-712's domain `chainId`.

use std::fmt;

use custody_core::{Digest32, RecoverableSignature};

use crate::keccak::keccak256_parts;
use crate::{Address, Error};

/// The EIP-191 version `0x45` prefix, before the decimal message length.
const PREFIX: &[u8] = b"\x19Ethereum Signed Message:\n";

/// The digest `personal_sign` signs:
/// `keccak256("\x19Ethereum Signed Message:\n" ‖ len(message) ‖ message)`,
/// with the length in decimal ASCII.
#[must_use]
pub fn personal_message_hash(message: &[u8]) -> Digest32 {
    let len = message.len().to_string();
    Digest32(keccak256_parts(&[PREFIX, len.as_bytes(), message]))
}

/// A message to sign with EIP-191 `personal_sign`: any bytes, often UTF-8
/// text. Gates and policy see it as the intent detail of the request.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonalMessage(Vec<u8>);

impl PersonalMessage {
    /// A message of raw bytes (signed as they are, never hex-decoded).
    #[must_use]
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// A text message, signed as its UTF-8 bytes.
    #[must_use]
    pub fn from_text(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }

    /// The bytes signed.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The message as text, if it is valid UTF-8 (for display by a gate).
    #[must_use]
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The digest signed: [`personal_message_hash`] of the bytes.
    #[must_use]
    pub fn signing_hash(&self) -> Digest32 {
        personal_message_hash(&self.0)
    }

    /// The address whose key made `signature` over this message.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] if no public key recovers.
    pub fn recover_signer(&self, signature: &MessageSignature) -> Result<Address, Error> {
        signature.recover_address(&self.signing_hash())
    }
}

impl fmt::Debug for PersonalMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // What is being signed is not secret, but it can be long: show its
        // size and digest, as an audit record would.
        f.debug_struct("PersonalMessage")
            .field("len", &self.0.len())
            .field("signing_hash", &self.signing_hash())
            .finish()
    }
}

/// A signature over an EIP-191 or EIP-712 digest, as wallets return it:
/// 65 bytes `r‖s‖v` with `v` = 27 or 28 (never an EIP-155 value).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MessageSignature(RecoverableSignature);

impl MessageSignature {
    /// Wraps a normalized signature.
    #[must_use]
    pub fn new(signature: RecoverableSignature) -> Self {
        Self(signature)
    }

    /// The signature (`r`, low `s`, parity).
    #[must_use]
    pub fn signature(&self) -> &RecoverableSignature {
        &self.0
    }

    /// `v`: 27 + the recovery parity.
    #[must_use]
    pub fn v(&self) -> u8 {
        27 + u8::from(self.0.y_parity())
    }

    /// `r‖s‖v`, 65 bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        let (rs, v) = out.split_at_mut(64);
        rs.copy_from_slice(&self.0.to_compact());
        v.fill(self.v());
        out
    }

    /// Parses `r‖s‖v`. `v` may be 27/28 or 0/1 (some hardware wallets
    /// write the bare parity); EIP-155 values (35 and up) are rejected, as
    /// is a high `s` (EIP-2) or an `r` or `s` out of range.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] unless 65 bytes; [`Error::InvalidV`];
    /// [`Error::HighS`]; [`Error::InvalidSignature`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bytes = <&[u8; 65]>::try_from(bytes).map_err(|_| Error::InvalidLength {
            field: "signature",
            expected: 65,
            found: bytes.len(),
        })?;
        let (rs, v) = bytes.split_at(64);
        let parity = match v {
            [0 | 27] => false,
            [1 | 28] => true,
            _ => return Err(Error::InvalidV),
        };
        let (r, s) = rs.split_at(32);
        let r = crate::U256::from_be_slice(r)?;
        let s = crate::U256::from_be_slice(s)?;
        crate::tx::signature_from_parts(&r, &s, parity).map(Self)
    }

    /// The address whose key made this signature over `digest`.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] if no public key recovers.
    pub fn recover_address(&self, digest: &Digest32) -> Result<Address, Error> {
        self.0
            .recover(digest)
            .map(|key| Address::from_public_key(&key))
            .map_err(|_| Error::InvalidSignature)
    }
}

impl fmt::Display for MessageSignature {
    /// `0x` and 130 lower-case hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for MessageSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageSignature({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_is_decimal_and_counts_bytes() {
        // 1000 bytes: the length is the four ASCII digits "1000".
        let msg = vec![b'a'; 1000];
        let mut preimage = PREFIX.to_vec();
        preimage.extend_from_slice(b"1000");
        preimage.extend_from_slice(&msg);
        assert_eq!(personal_message_hash(&msg).0, crate::keccak256(&preimage));
        // "é" is two bytes.
        let m = PersonalMessage::from_text("é");
        assert_eq!(m.as_bytes().len(), 2);
        assert_eq!(
            m.signing_hash().0,
            crate::keccak256(b"\x19Ethereum Signed Message:\n2\xc3\xa9")
        );
        assert_eq!(m.as_text(), Some("é"));
        assert_eq!(PersonalMessage::from_bytes(vec![0xff]).as_text(), None);
    }

    #[test]
    fn signature_bytes_reject_eip155_v_and_bad_lengths() {
        let mut bytes = [0u8; 65];
        bytes[31] = 1;
        bytes[63] = 1;
        for (v, parity) in [(27u8, false), (28, true), (0, false), (1, true)] {
            bytes[64] = v;
            let sig = MessageSignature::from_bytes(&bytes).unwrap();
            assert_eq!(sig.signature().y_parity(), parity);
            assert_eq!(sig.v(), 27 + u8::from(parity));
        }
        for v in [2u8, 26, 29, 35, 36, 37, 38, 255] {
            bytes[64] = v;
            assert!(matches!(
                MessageSignature::from_bytes(&bytes),
                Err(Error::InvalidV)
            ));
        }
        assert!(matches!(
            MessageSignature::from_bytes(&bytes[..64]),
            Err(Error::InvalidLength { found: 64, .. })
        ));
        bytes[64] = 27;
        bytes[32] = 0xff;
        assert!(matches!(
            MessageSignature::from_bytes(&bytes),
            Err(Error::HighS | Error::InvalidSignature)
        ));
    }
}
