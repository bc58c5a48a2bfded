//! [`U256`]: the 256-bit unsigned integers of Ethereum (values, fees).
//!
//! A plain big-endian byte array with the few operations this crate needs:
//! parsing from text, the minimal big-endian form RLP uses, and checked
//! addition and multiplication by a `u64` (for [`crate::Transaction::max_cost`]).
//! Not a general bignum type on purpose.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// An unsigned 256-bit integer, stored big-endian.
///
/// Orders numerically (big-endian byte order is numeric order).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct U256([u8; 32]);

impl U256 {
    /// Zero.
    pub const ZERO: Self = Self([0; 32]);
    /// 2^256 - 1.
    pub const MAX: Self = Self([0xff; 32]);

    /// From 32 big-endian bytes.
    #[must_use]
    pub const fn from_be_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 big-endian bytes.
    #[must_use]
    pub const fn to_be_bytes(self) -> [u8; 32] {
        self.0
    }

    /// The 32 big-endian bytes, borrowed.
    #[must_use]
    pub const fn as_be_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// From a big-endian byte string of any length; leading zero bytes are
    /// ignored.
    ///
    /// # Errors
    /// [`Error::Overflow`] if the value needs more than 32 bytes.
    pub fn from_be_slice(bytes: &[u8]) -> Result<Self, Error> {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let digits = bytes.get(start..).unwrap_or_default();
        let Some(offset) = 32usize.checked_sub(digits.len()) else {
            return Err(Error::Overflow("U256"));
        };
        let mut out = [0u8; 32];
        if let Some(tail) = out.get_mut(offset..) {
            tail.copy_from_slice(digits);
        }
        Ok(Self(out))
    }

    /// From a `u64`.
    #[must_use]
    pub const fn from_u64(v: u64) -> Self {
        Self::from_u128(v as u128)
    }

    /// From a `u128`.
    #[must_use]
    pub const fn from_u128(v: u128) -> Self {
        let mut out = [0u8; 32];
        let (_, low) = out.split_at_mut(16);
        low.copy_from_slice(&v.to_be_bytes());
        Self(out)
    }

    /// The value as a `u64`, if it fits.
    #[must_use]
    pub fn to_u64(&self) -> Option<u64> {
        let (high, low) = self.0.split_at(24);
        if high.iter().any(|&b| b != 0) {
            return None;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(low);
        Some(u64::from_be_bytes(b))
    }

    /// The value as a `u128`, if it fits.
    #[must_use]
    pub fn to_u128(&self) -> Option<u128> {
        let (high, low) = self.0.split_at(16);
        if high.iter().any(|&b| b != 0) {
            return None;
        }
        let mut b = [0u8; 16];
        b.copy_from_slice(low);
        Some(u128::from_be_bytes(b))
    }

    /// Whether the value is zero.
    #[must_use]
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    /// The big-endian bytes without leading zeros (empty for zero): the
    /// payload of the value's RLP encoding.
    #[must_use]
    pub fn minimal_be_bytes(&self) -> &[u8] {
        // Eight bytes at a time (this is on the signing path, for every fee
        // and value): the first non-zero word holds the first non-zero byte.
        let (words, _) = self.0.as_chunks::<8>();
        let mut start = 32;
        for (i, word) in words.iter().enumerate() {
            let word = u64::from_be_bytes(*word);
            if word != 0 {
                // `leading_zeros() / 8` is below 8: the cast is exact.
                start = i * 8 + (word.leading_zeros() / 8) as usize;
                break;
            }
        }
        self.0.get(start..).unwrap_or_default()
    }

    /// `self + rhs`, or `None` on overflow.
    #[must_use]
    pub fn checked_add(self, rhs: Self) -> Option<Self> {
        let mut a = self.limbs();
        let mut carry = 0u128;
        for (x, y) in a.iter_mut().zip(rhs.limbs()) {
            let t = u128::from(*x) + u128::from(y) + carry;
            *x = t as u64;
            carry = t >> 64;
        }
        (carry == 0).then(|| Self::from_limbs(a))
    }

    /// `self * rhs`, or `None` on overflow.
    #[must_use]
    pub fn checked_mul_u64(self, rhs: u64) -> Option<Self> {
        let mut a = self.limbs();
        let mut carry = 0u128;
        for x in &mut a {
            let t = u128::from(*x) * u128::from(rhs) + carry;
            *x = t as u64;
            carry = t >> 64;
        }
        (carry == 0).then(|| Self::from_limbs(a))
    }

    /// Parses a number written as `0x`-prefixed hexadecimal (either case,
    /// leading zeros allowed) or as decimal digits.
    ///
    /// # Errors
    /// [`Error::InvalidNumber`] if the text is empty or has a character that
    /// is not a digit of its base (signs, spaces and `_` included);
    /// [`Error::Overflow`] if the value does not fit 256 bits.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) => Self::parse_hex(hex),
            None => Self::parse_decimal(s),
        }
    }

    fn parse_hex(digits: &str) -> Result<Self, Error> {
        if digits.is_empty() {
            return Err(Error::InvalidNumber("no hex digits after 0x"));
        }
        let mut out = [0u8; 32];
        let significant = digits.trim_start_matches('0').as_bytes();
        if significant.len() > 64 {
            // Still report a bad digit before an overflow.
            if !significant.iter().all(u8::is_ascii_hexdigit) {
                return Err(Error::InvalidNumber("not a hex digit"));
            }
            return Err(Error::Overflow("U256"));
        }
        // Fill from the least significant nibble.
        for (i, &c) in significant.iter().rev().enumerate() {
            let nibble = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(Error::InvalidNumber("not a hex digit")),
            };
            let Some(byte) = out.get_mut(31 - i / 2) else {
                return Err(Error::Overflow("U256"));
            };
            *byte |= if i.is_multiple_of(2) {
                nibble
            } else {
                nibble << 4
            };
        }
        Ok(Self(out))
    }

    fn parse_decimal(digits: &str) -> Result<Self, Error> {
        if digits.is_empty() {
            return Err(Error::InvalidNumber("empty"));
        }
        let mut v = Self::ZERO;
        for c in digits.bytes() {
            if !c.is_ascii_digit() {
                return Err(Error::InvalidNumber("not a decimal digit"));
            }
            v = v
                .checked_mul_u64(10)
                .and_then(|v| v.checked_add(Self::from_u64(u64::from(c - b'0'))))
                .ok_or(Error::Overflow("U256"))?;
        }
        Ok(v)
    }

    /// Little-endian 64-bit limbs.
    fn limbs(self) -> [u64; 4] {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().zip(self.0.rchunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *limb = u64::from_be_bytes(b);
        }
        limbs
    }

    fn from_limbs(limbs: [u64; 4]) -> Self {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.rchunks_exact_mut(8).zip(limbs) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        Self(out)
    }
}

impl From<u64> for U256 {
    fn from(v: u64) -> Self {
        Self::from_u64(v)
    }
}

impl From<u128> for U256 {
    fn from(v: u128) -> Self {
        Self::from_u128(v)
    }
}

impl FromStr for U256 {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for U256 {
    /// Decimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const CHUNK: u64 = 10_000_000_000_000_000_000; // 10^19, the largest power of 10 in a u64
        let mut limbs = self.limbs();
        let mut chunks = Vec::new();
        loop {
            // limbs /= 10^19, keeping the remainder (long division, most
            // significant limb first).
            let mut rem = 0u128;
            for limb in limbs.iter_mut().rev() {
                let cur = (rem << 64) | u128::from(*limb);
                *limb = (cur / u128::from(CHUNK)) as u64;
                rem = cur % u128::from(CHUNK);
            }
            chunks.push(rem as u64);
            if limbs.iter().all(|&l| l == 0) {
                break;
            }
        }
        let mut s = String::new();
        for (i, c) in chunks.iter().rev().enumerate() {
            if i == 0 {
                s.push_str(&c.to_string());
            } else {
                s.push_str(&format!("{c:019}"));
            }
        }
        f.pad_integral(true, "", &s)
    }
}

impl fmt::LowerHex for U256 {
    /// Minimal lower-case hex (`0` for zero); `{:#x}` adds `0x`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode(self.minimal_be_bytes());
        let digits = h.trim_start_matches('0');
        f.pad_integral(true, "0x", if digits.is_empty() { "0" } else { digits })
    }
}

impl fmt::Debug for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U256({self:#x})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_be_bytes_drops_exactly_the_leading_zeros() {
        // Every position of the first non-zero byte, against the plain
        // definition.
        for first in 0..=32 {
            for fill in [0x01u8, 0x80, 0xff] {
                let mut be = [0u8; 32];
                for b in be.iter_mut().skip(first) {
                    *b = fill;
                }
                let v = U256::from_be_bytes(be);
                let expected: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
                assert_eq!(v.minimal_be_bytes(), expected.as_slice(), "{first}");
            }
        }
    }

    #[test]
    fn parses_hex_and_decimal() {
        assert_eq!(U256::parse("0x0").unwrap(), U256::ZERO);
        assert_eq!(U256::parse("0").unwrap(), U256::ZERO);
        assert_eq!(U256::parse("0x00ff").unwrap(), U256::from_u64(255));
        assert_eq!(U256::parse("0XFf").unwrap(), U256::from_u64(255));
        assert_eq!(
            U256::parse("1000000000000000000").unwrap(),
            U256::from_u64(10u64.pow(18))
        );
        let max_dec =
            "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(U256::parse(max_dec).unwrap(), U256::MAX);
        assert_eq!(U256::MAX.to_string(), max_dec);
        assert_eq!(
            U256::parse(&format!("0x{}", "f".repeat(64))).unwrap(),
            U256::MAX
        );
        assert_eq!(
            U256::parse(&format!("0x000{}", "f".repeat(64))).unwrap(),
            U256::MAX
        );
    }

    #[test]
    fn rejects_overflow_and_junk() {
        let two_pow_256 =
            "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(matches!(U256::parse(two_pow_256), Err(Error::Overflow(_))));
        assert!(matches!(
            U256::parse(&format!("0x1{}", "0".repeat(64))),
            Err(Error::Overflow(_))
        ));
        for bad in [
            "", "0x", "-1", "+1", " 1", "1 ", "1_000", "0xg", "12a", "0x-1", "0b1",
        ] {
            assert!(
                matches!(U256::parse(bad), Err(Error::InvalidNumber(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn minimal_bytes_and_conversions() {
        assert_eq!(U256::ZERO.minimal_be_bytes(), &[] as &[u8]);
        assert_eq!(U256::from_u64(0x0102).minimal_be_bytes(), &[1, 2]);
        assert_eq!(U256::from_u128(u128::MAX).to_u128(), Some(u128::MAX));
        assert_eq!(U256::from_u128(u128::from(u64::MAX) + 1).to_u64(), None);
        assert_eq!(U256::from_be_slice(&[0, 0, 7]).unwrap(), U256::from_u64(7));
        assert!(U256::from_be_slice(&[1; 33]).is_err());
        assert_eq!(U256::from_be_slice(&[0; 40]).unwrap(), U256::ZERO);
        assert_eq!(format!("{:#x}", U256::from_u64(0xabc)), "0xabc");
        assert_eq!(format!("{:x}", U256::ZERO), "0");
        assert_eq!(U256::from_u64(12345).to_string(), "12345");
        assert_eq!(U256::ZERO.to_string(), "0");
        assert_eq!(
            U256::from_u128(10u128.pow(19)).to_string(),
            "10000000000000000000"
        );
    }

    #[test]
    fn checked_arithmetic() {
        assert_eq!(U256::MAX.checked_add(U256::from_u64(1)), None);
        assert_eq!(U256::MAX.checked_mul_u64(2), None);
        assert_eq!(U256::MAX.checked_mul_u64(1), Some(U256::MAX));
        let a = U256::from_u128(u128::MAX);
        let b = a.checked_add(U256::from_u64(1)).unwrap();
        assert_eq!(b.to_be_bytes()[15], 1);
        assert_eq!(
            U256::from_u64(u64::MAX)
                .checked_mul_u64(u64::MAX)
                .unwrap()
                .to_u128(),
            Some(u128::from(u64::MAX) * u128::from(u64::MAX))
        );
    }
}
