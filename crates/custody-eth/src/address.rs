//! [`Address`]: a 20-byte Ethereum account address, its derivation from a
//! public key, and the EIP-55 mixed-case checksum.

use std::fmt;
use std::str::FromStr;

use custody_core::PublicKey;

use crate::{Error, keccak256};

/// A 20-byte Ethereum address.
///
/// `Display` and `Debug` print the EIP-55 checksummed form.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The zero address.
    pub const ZERO: Self = Self([0; 20]);

    /// The address of a public key: the last 20 bytes of the Keccak-256 of
    /// the 64-byte uncompressed point (`x‖y`, without the `04` prefix).
    #[must_use]
    pub fn from_public_key(key: &PublicKey) -> Self {
        let uncompressed = key.to_uncompressed();
        let (_, xy) = uncompressed.split_at(1);
        let hash = keccak256(xy);
        let (_, tail) = hash.split_at(12);
        let mut out = [0u8; 20];
        out.copy_from_slice(tail);
        Self(out)
    }

    /// From exactly 20 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        <[u8; 20]>::try_from(bytes)
            .map(Self)
            .map_err(|_| Error::InvalidLength {
                field: "address",
                expected: 20,
                found: bytes.len(),
            })
    }

    /// The 20 bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The EIP-55 checksummed form, `0x`-prefixed: each hex letter is upper
    /// case when the matching nibble of `keccak256(lower-case hex)` is ≥ 8.
    #[must_use]
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = keccak256(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            if c.is_ascii_alphabetic() && hash_nibble(&hash, i) >= 8 {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// Parses a `0x`-prefixed 40-digit hex address. All-lower-case and
    /// all-upper-case forms carry no checksum and are accepted as they are;
    /// a mixed-case form must carry a correct EIP-55 checksum.
    ///
    /// # Errors
    /// [`Error::InvalidAddress`] if the prefix, length or a digit is wrong;
    /// [`Error::AddressChecksum`] for a mixed-case address whose checksum
    /// does not match.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let digits = s
            .strip_prefix("0x")
            .ok_or(Error::InvalidAddress("missing 0x prefix"))?;
        if digits.len() != 40 {
            return Err(Error::InvalidAddress("expected 40 hex digits"));
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(digits, &mut bytes)
            .map_err(|_| Error::InvalidAddress("not a hex digit"))?;
        let address = Self(bytes);
        let has_lower = digits.bytes().any(|c| c.is_ascii_lowercase());
        let has_upper = digits.bytes().any(|c| c.is_ascii_uppercase());
        if has_lower && has_upper && address.to_checksum().get(2..) != Some(digits) {
            return Err(Error::AddressChecksum);
        }
        Ok(address)
    }
}

/// Nibble `i` (0 = high nibble of byte 0) of a 32-byte hash.
fn hash_nibble(hash: &[u8; 32], i: usize) -> u8 {
    let byte = hash.get(i / 2).copied().unwrap_or(0);
    if i.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0f
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl From<[u8; 20]> for Address {
    fn from(b: [u8; 20]) -> Self {
        Self(b)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.to_checksum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_shapes_are_rejected() {
        let good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
        assert!(Address::parse(good).is_ok());
        assert!(matches!(
            Address::parse(&good[2..]),
            Err(Error::InvalidAddress(_))
        ));
        assert!(matches!(
            Address::parse(&good[..41]),
            Err(Error::InvalidAddress(_))
        ));
        assert!(matches!(
            Address::parse(&format!("{good}0")),
            Err(Error::InvalidAddress(_))
        ));
        assert!(matches!(
            Address::parse("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg"),
            Err(Error::InvalidAddress(_))
        ));
        assert!(matches!(
            Address::parse("0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            Err(Error::InvalidAddress(_))
        ));
        // Multi-byte UTF-8 of the right byte length must not panic.
        assert!(Address::parse(&format!("0x{}", "é".repeat(20))).is_err());
        assert!(Address::from_slice(&[0; 19]).is_err());
    }
}
