//! BIP32 derivation paths: `m/44'/60'/0'/0/7` (`'`, `h` or `H` mark hardened).

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The first hardened index, 2^31.
pub const HARDENED: u32 = 0x8000_0000;

/// One component of a derivation path: a raw BIP32 index (`≥ 2^31` is
/// hardened).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildNumber(pub u32);

impl ChildNumber {
    /// A hardened child `index'`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `index ≥ 2^31`.
    pub fn hardened(index: u32) -> Result<Self, Error> {
        if index >= HARDENED {
            return Err(Error::InvalidPath("index must be below 2^31"));
        }
        Ok(Self(index | HARDENED))
    }

    /// A normal (non-hardened) child `index`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `index ≥ 2^31`.
    pub fn normal(index: u32) -> Result<Self, Error> {
        if index >= HARDENED {
            return Err(Error::InvalidPath("index must be below 2^31"));
        }
        Ok(Self(index))
    }

    /// Whether this is a hardened child.
    #[must_use]
    pub fn is_hardened(self) -> bool {
        self.0 >= HARDENED
    }

    /// The index without the hardened bit.
    #[must_use]
    pub fn index(self) -> u32 {
        self.0 & !HARDENED
    }
}

impl fmt::Display for ChildNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_hardened() {
            write!(f, "{}'", self.index())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl fmt::Debug for ChildNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A BIP32 derivation path from the master (`m`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DerivationPath(Vec<ChildNumber>);

/// Longest path accepted (BIP32 serializes depth as one byte).
pub const MAX_DEPTH: usize = 255;

impl DerivationPath {
    /// The master itself (`m`).
    #[must_use]
    pub fn master() -> Self {
        Self(Vec::new())
    }

    /// A path from its components.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if deeper than [`MAX_DEPTH`].
    pub fn from_components(c: Vec<ChildNumber>) -> Result<Self, Error> {
        if c.len() > MAX_DEPTH {
            return Err(Error::InvalidPath("deeper than 255 levels"));
        }
        Ok(Self(c))
    }

    /// The components, from the master down.
    #[must_use]
    pub fn components(&self) -> &[ChildNumber] {
        &self.0
    }

    /// Depth (number of components).
    #[must_use]
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// The parent path and the last component, or `None` for `m`.
    #[must_use]
    pub fn split_last(&self) -> Option<(DerivationPath, ChildNumber)> {
        let (last, parent) = self.0.split_last()?;
        Some((Self(parent.to_vec()), *last))
    }

    /// This path with one more component.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if the result would be deeper than [`MAX_DEPTH`].
    pub fn child(&self, c: ChildNumber) -> Result<Self, Error> {
        let mut v = self.0.clone();
        v.push(c);
        Self::from_components(v)
    }

    /// Whether `self` is `other` or lies below it.
    #[must_use]
    pub fn starts_with(&self, other: &DerivationPath) -> bool {
        self.0.starts_with(&other.0)
    }
}

impl FromStr for DerivationPath {
    type Err = Error;

    /// Parses `m`, `m/0`, `m/44'/60h/0H/0/7`. Components are decimal indices
    /// below 2^31 with no sign, no leading `+`, no whitespace; leading zeros
    /// are accepted (`m/007` is `m/7`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let mut parts = s.split('/');
        if parts.next() != Some("m") {
            return Err(Error::InvalidPath("must start with 'm'"));
        }
        let mut out = Vec::new();
        for part in parts {
            let (digits, hardened) = match part.strip_suffix(['\'', 'h', 'H']) {
                Some(d) => (d, true),
                None => (part, false),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::InvalidPath("components must be decimal indices"));
            }
            let index: u32 = digits
                .parse()
                .map_err(|_| Error::InvalidPath("index must be below 2^31"))?;
            out.push(if hardened {
                ChildNumber::hardened(index)?
            } else {
                ChildNumber::normal(index)?
            });
            if out.len() > MAX_DEPTH {
                return Err(Error::InvalidPath("deeper than 255 levels"));
            }
        }
        Ok(Self(out))
    }
}

impl fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("m")?;
        for c in &self.0 {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DerivationPath({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_all_hardened_markers() {
        let p: DerivationPath = "m/44'/60h/0H/0/7".parse().unwrap();
        assert_eq!(p.to_string(), "m/44'/60'/0'/0/7");
        assert_eq!(p.components()[1], ChildNumber(60 | HARDENED));
        assert_eq!("m".parse::<DerivationPath>().unwrap().depth(), 0);
        assert_eq!(
            "m/2147483647'"
                .parse::<DerivationPath>()
                .unwrap()
                .components()[0]
                .0,
            u32::MAX
        );
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "",
            "M/0",
            "0/1",
            "m/",
            "m//0",
            "m/-1",
            "m/+1",
            "m/1 ",
            "m/ 1",
            "m/0x1",
            "m/1''",
            "m/2147483648",
            "m/2147483648'",
            "m/99999999999",
            "m/1'h",
            "m/a",
            "n/0",
            "m0",
            "m/1/",
            "/m/1",
            "m/１",
        ] {
            assert!(
                matches!(bad.parse::<DerivationPath>(), Err(Error::InvalidPath(_))),
                "{bad:?} should be rejected"
            );
        }
        let deep = format!("m{}", "/0".repeat(256));
        assert!(deep.parse::<DerivationPath>().is_err());
        let ok = format!("m{}", "/0".repeat(255));
        assert!(ok.parse::<DerivationPath>().is_ok());
    }

    #[test]
    fn ancestry() {
        let a: DerivationPath = "m/1'/2".parse().unwrap();
        let b: DerivationPath = "m/1'/2/3".parse().unwrap();
        assert!(b.starts_with(&a) && a.starts_with(&a) && !a.starts_with(&b));
        let (parent, last) = b.split_last().unwrap();
        assert_eq!(parent, a);
        assert_eq!(last, ChildNumber(3));
        assert!(DerivationPath::master().split_last().is_none());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(v in proptest::collection::vec(any::<u32>(), 0..20)) {
            let p = DerivationPath::from_components(v.into_iter().map(ChildNumber).collect()).unwrap();
            let s = p.to_string();
            prop_assert_eq!(s.parse::<DerivationPath>().unwrap(), p);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<DerivationPath>();
        }
    }
}
