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

/// Longest rendered component: `/`, at most 10 digits (every index is below
/// 2^31) and `'`.
const COMPONENT_BUF: usize = 12;

/// Writes `/index` or `/index'` at the start of `out` and returns its
/// length. Written out by hand (not with `write!`): paths are rendered on
/// the signing hot path, for audit records and state-store keys.
fn render_component(c: ChildNumber, out: &mut [u8; COMPONENT_BUF]) -> usize {
    let mut n = c.index();
    let digits = match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1_000..=9_999 => 4,
        10_000..=99_999 => 5,
        100_000..=999_999 => 6,
        1_000_000..=9_999_999 => 7,
        10_000_000..=99_999_999 => 8,
        100_000_000..=999_999_999 => 9,
        _ => 10,
    };
    // Indices stay in range: 1 + 10 + 1 bytes at most, in a 12-byte buffer.
    out[0] = b'/';
    for slot in out[1..=digits].iter_mut().rev() {
        // `n % 10` is a single decimal digit: the cast cannot truncate.
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    if c.is_hardened() {
        out[digits + 1] = b'\'';
        digits + 2
    } else {
        digits + 1
    }
}

/// Room for the rendering of a path: `m` and 21 components at most, then
/// the rendering goes out in pieces of this size.
const RENDER_BUF: usize = 256;

impl DerivationPath {
    /// Renders the path as `Display` writes it, handing it to `out` in as
    /// few pieces as fit in a stack buffer (one for any path of 21 or
    /// fewer components).
    fn render(&self, mut out: impl FnMut(&str) -> fmt::Result) -> fmt::Result {
        let mut buf = [0u8; RENDER_BUF];
        buf[0] = b'm';
        let mut len = 1;
        for c in &self.0 {
            if len + COMPONENT_BUF > RENDER_BUF {
                // Only ASCII is ever written into `buf`.
                out(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)?;
                len = 0;
            }
            let Some(room) = buf
                .get_mut(len..len + COMPONENT_BUF)
                .and_then(|r| <&mut [u8; COMPONENT_BUF]>::try_from(r).ok())
            else {
                return Err(fmt::Error);
            };
            len += render_component(*c, room);
        }
        out(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
    }

    /// Appends the path as `Display` writes it to `out`, without the
    /// formatting machinery (audit records render paths on the signing hot
    /// path).
    pub(crate) fn push_to(&self, out: &mut String) {
        // Rendering only fails on non-UTF-8 bytes, which are never written.
        let _ = self.render(|s| {
            out.push_str(s);
            Ok(())
        });
    }
}

impl fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.render(|s| f.write_str(s))
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
    fn display_of_extreme_components() {
        let p = DerivationPath::from_components(vec![
            ChildNumber(0),
            ChildNumber(HARDENED),
            ChildNumber(HARDENED - 1),
            ChildNumber(u32::MAX),
            ChildNumber(9),
            ChildNumber(10),
        ])
        .unwrap();
        assert_eq!(p.to_string(), "m/0/0'/2147483647/2147483647'/9/10");
        assert_eq!(DerivationPath::master().to_string(), "m");
        // The deepest path, rendered in several pieces.
        let deep = DerivationPath::from_components(vec![ChildNumber(u32::MAX); MAX_DEPTH]).unwrap();
        let expected = format!("m{}", "/2147483647'".repeat(MAX_DEPTH));
        assert_eq!(deep.to_string(), expected);
        let mut pushed = String::new();
        deep.push_to(&mut pushed);
        assert_eq!(pushed, expected);
        assert_eq!(format!("{:?}", deep), format!("DerivationPath({expected})"));
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

        /// The hand-written rendering against `std`'s integer formatting.
        #[test]
        fn display_matches_std_formatting(v in proptest::collection::vec(any::<u32>(), 0..80)) {
            let p = DerivationPath::from_components(v.iter().copied().map(ChildNumber).collect()).unwrap();
            let mut expected = String::from("m");
            for c in &v {
                if *c >= HARDENED {
                    expected.push_str(&format!("/{}'", c & !HARDENED));
                } else {
                    expected.push_str(&format!("/{c}"));
                }
            }
            prop_assert_eq!(p.to_string(), expected.clone());
            let mut pushed = String::from("x");
            p.push_to(&mut pushed);
            prop_assert_eq!(pushed, format!("x{expected}"));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = s.parse::<DerivationPath>();
        }
    }
}
