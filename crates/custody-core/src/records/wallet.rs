//! Wallet schemes: how a wallet name and a key index become a BIP32 path.
//!
//! The rules below are a **compatibility contract**: a key's address depends
//! on them, so they never change for an existing scheme (a new rule is a new
//! [`WalletScheme`] variant). Both are pinned by committed test vectors
//! (`tests/vectors/wallet_schemes.json`, computed by an independent Python
//! implementation).
//!
//! A wallet name is any non-empty UTF-8 string (an e-mail address, a user id,
//! `"Zoë 🦀 wallet"`), used **byte for byte**: no Unicode normalization, no
//! case folding, no trimming. `"Zoë"` written with `U+00EB` and with
//! `e` + `U+0308` are two different wallets; callers that want one wallet for
//! both normalize the name before calling. There is no length limit.
//!
//! # `default` ([`WalletScheme::Default`])
//!
//! ```text
//! h   = SHA-256( "custody/wallet/v1" ‖ 0x00 ‖ UTF-8 bytes of name )
//! w_i = big-endian u32 of h[4i .. 4i+4] with the top bit cleared,  i = 0, 1, 2, 3
//! wallet node = m/44'/60'/w0'/w1'/w2'/w3'
//! key path    = m/44'/60'/w0'/w1'/w2'/w3'/index      (index < 2^31, a normal child)
//! ```
//!
//! - Every step of the wallet node is hardened: exporting one wallet's node or
//!   keys (with its chain code) never exposes another wallet's keys, nor the
//!   master. The key index is a normal child so that a wallet's xpub can
//!   derive its addresses, and so that the signing hot path derives a key from
//!   the cached wallet node with one HMAC-SHA512 and one scalar addition.
//!   An index of 2^31 or more is refused ([`Error::InvalidWallet`]).
//! - 4 × 31 = 124 bits of SHA-256 pick the wallet node: among 10^9 wallet
//!   names the probability that two share a node is about
//!   (10^9)² / 2^125 ≈ 2^-65.
//! - The key path has depth 7, so it never coincides with a standard BIP44
//!   account key (`m/44'/60'/a'/0/i`, depth 5) made from the same seed.
//! - The domain-separation prefix `custody/wallet/v1` and the `0x00` byte
//!   after it keep these hashes apart from any other use of SHA-256 on names.
//!
//! # `fortanix` ([`WalletScheme::Fortanix`])
//!
//! The rule of the Fortanix DSM "TOTP ETH Signer" plugin, for keys that must
//! match the ones it derives:
//!
//! ```text
//! h   = SHA-256( standard base64, with '=' padding, of the UTF-8 bytes of name )
//! w_j = big-endian u32 of h[4(j-1) .. 4j],  j = 1 … 8   (raw BIP32 indices)
//! wallet node = m/w1/w2/w3/w4/w5/w6/w7/w8
//! key path    = m/w1/…/w8/keyIndex                     (keyIndex: any u32, raw)
//! ```
//!
//! Each `w_j` and the key index are used as raw BIP32 indices: a value of 2^31
//! or more is a hardened step, a smaller one a normal step. So about half the
//! steps of a Fortanix path are normal, and a wallet node's chain code together
//! with any one of its normal children's private keys yields its own private
//! key; use this scheme only for compatibility.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::{ChildNumber, DerivationPath, Error, HARDENED};

/// The domain-separation prefix of the `default` scheme.
const DEFAULT_DOMAIN: &[u8] = b"custody/wallet/v1";

/// A rule mapping (wallet name, key index) to a BIP32 path.
///
/// A compatibility contract: the rules never change for an existing variant.
/// Wallet names are non-empty UTF-8 used byte for byte (no Unicode
/// normalization, no case folding, no trimming: callers normalize). The full
/// rationale is in the module documentation of `wallet.rs`; the exact rules
/// are on each variant.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WalletScheme {
    /// `"default"`:
    ///
    /// ```text
    /// h   = SHA-256( "custody/wallet/v1" ‖ 0x00 ‖ UTF-8 bytes of name )
    /// w_i = big-endian u32 of h[4i .. 4i+4] with the top bit cleared,  i = 0, 1, 2, 3
    /// wallet node = m/44'/60'/w0'/w1'/w2'/w3'
    /// key path    = m/44'/60'/w0'/w1'/w2'/w3'/index      (index < 2^31, a normal child)
    /// ```
    ///
    /// Every wallet step is hardened, so one wallet's exported keys never
    /// expose another's; 124 bits of hash pick the node.
    #[default]
    Default,
    /// `"fortanix"`, the rule of the Fortanix DSM "TOTP ETH Signer" plugin:
    ///
    /// ```text
    /// h   = SHA-256( standard base64, with '=' padding, of the UTF-8 bytes of name )
    /// w_j = big-endian u32 of h[4(j-1) .. 4j],  j = 1 … 8   (raw BIP32 indices)
    /// wallet node = m/w1/w2/w3/w4/w5/w6/w7/w8
    /// key path    = m/w1/…/w8/keyIndex                     (keyIndex: any u32, raw)
    /// ```
    ///
    /// A raw index of 2^31 or more is a hardened step. About half the steps
    /// are normal; use this scheme only to match keys the plugin derives.
    Fortanix,
}

impl WalletScheme {
    /// The scheme's name: `"default"` or `"fortanix"`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Fortanix => "fortanix",
        }
    }

    /// The path of the wallet's node (the node to cache for signing).
    ///
    /// # Errors
    /// [`Error::InvalidWallet`] if `name` is empty.
    pub fn wallet_path(&self, name: &str) -> Result<DerivationPath, Error> {
        if name.is_empty() {
            return Err(Error::InvalidWallet("the wallet name is empty"));
        }
        let (components, depth) = self.wallet_components(name);
        DerivationPath::from_components(components.get(..depth).unwrap_or_default().to_vec())
    }

    /// The wallet node's path components (at most 8) and how many there
    /// are, for a non-empty `name`: computed without allocating for the
    /// default scheme.
    fn wallet_components(&self, name: &str) -> ([ChildNumber; 8], usize) {
        let mut c = [ChildNumber(0); 8];
        match self {
            Self::Default => {
                let h = Sha256::new()
                    .chain_update(DEFAULT_DOMAIN)
                    .chain_update([0u8])
                    .chain_update(name.as_bytes())
                    .finalize();
                let levels = [ChildNumber(44 | HARDENED), ChildNumber(60 | HARDENED)]
                    .into_iter()
                    .chain(words(&h).take(4).map(|w| ChildNumber(w | HARDENED)));
                for (slot, n) in c.iter_mut().zip(levels) {
                    *slot = n;
                }
                (c, 6)
            }
            Self::Fortanix => {
                let h = Sha256::digest(base64_std(name.as_bytes()).as_bytes());
                for (slot, w) in c.iter_mut().zip(words(&h)) {
                    *slot = ChildNumber(w);
                }
                (c, 8)
            }
        }
    }

    /// Whether `path` is key `index` of wallet `name` under this scheme
    /// (what [`WalletScheme::key_path`] gives), checked without building
    /// the path: the TOTP gate asks this on every request.
    #[must_use]
    pub fn is_key_path(&self, name: &str, index: u32, path: &DerivationPath) -> bool {
        let (Ok(child), Some((last, node))) =
            (self.key_child(index), path.components().split_last())
        else {
            return false;
        };
        if name.is_empty() || *last != child {
            return false;
        }
        let (components, depth) = self.wallet_components(name);
        components.get(..depth) == Some(node)
    }

    /// The last path component for key `index` of a wallet: what to derive
    /// from the cached wallet node.
    ///
    /// # Errors
    /// [`Error::InvalidWallet`] if the scheme is `default` and
    /// `index ≥ 2^31`.
    pub fn key_child(&self, index: u32) -> Result<ChildNumber, Error> {
        match self {
            Self::Default if index >= HARDENED => {
                Err(Error::InvalidWallet("the key index must be below 2^31"))
            }
            Self::Default | Self::Fortanix => Ok(ChildNumber(index)),
        }
    }

    /// The full path of key `index` of wallet `name`.
    ///
    /// # Errors
    /// [`Error::InvalidWallet`] if `name` is empty, or the scheme is
    /// `default` and `index ≥ 2^31`.
    pub fn key_path(&self, name: &str, index: u32) -> Result<DerivationPath, Error> {
        let child = self.key_child(index)?;
        self.wallet_path(name)?.child(child)
    }
}

impl FromStr for WalletScheme {
    type Err = Error;

    /// `"default"` or `"fortanix"` (exactly; no other spelling).
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "default" => Ok(Self::Default),
            "fortanix" => Ok(Self::Fortanix),
            _ => Err(Error::InvalidWallet("unknown wallet scheme")),
        }
    }
}

impl fmt::Display for WalletScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The big-endian `u32` words of a hash.
fn words(h: &[u8]) -> impl Iterator<Item = u32> + '_ {
    let (chunks, _) = h.as_chunks::<4>();
    chunks.iter().map(|c| u32::from_be_bytes(*c))
}

/// Standard base64 (RFC 4648 section 4: `A–Z a–z 0–9 + /`, `=` padding).
fn base64_std(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32, shift: u32| char::from(ALPHABET[((n >> shift) & 0x3f) as usize]);
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let (b0, b1, b2, len) = match *chunk {
            [a] => (a, 0, 0, 1),
            [a, b] => (a, b, 0, 2),
            [a, b, c] => (a, b, c, 3),
            _ => continue,
        };
        let n = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        out.push(sextet(n, 18));
        out.push(sextet(n, 12));
        out.push(if len > 1 { sextet(n, 6) } else { '=' });
        out.push(if len > 2 { sextet(n, 0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base64_rfc4648_vectors() {
        // RFC 4648 section 10.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_std(input.as_bytes()), expected, "{input:?}");
        }
        // Every alphabet position, including '+' and '/'.
        assert_eq!(base64_std(&[0xfb, 0xff, 0xbf]), "+/+/");
        assert_eq!(base64_std(&[0x00, 0x10, 0x83]), "ABCD");
        assert_eq!(base64_std("Zoë".as_bytes()), "Wm/Dqw==");
    }

    #[test]
    fn scheme_names_round_trip() {
        for s in [WalletScheme::Default, WalletScheme::Fortanix] {
            assert_eq!(s.as_str().parse::<WalletScheme>().unwrap(), s);
            assert_eq!(s.to_string(), s.as_str());
        }
        for bad in ["", "Default", "FORTANIX", " default", "v1"] {
            assert!(matches!(
                bad.parse::<WalletScheme>(),
                Err(Error::InvalidWallet(_))
            ));
        }
        assert_eq!(WalletScheme::default(), WalletScheme::Default);
    }

    #[test]
    fn default_scheme_shape() {
        let p = WalletScheme::Default
            .key_path("alice@example.com", 7)
            .unwrap();
        assert_eq!(p.depth(), 7);
        let c = p.components();
        assert_eq!(c[0], ChildNumber(44 | HARDENED));
        assert_eq!(c[1], ChildNumber(60 | HARDENED));
        assert!(c[..6].iter().all(|c| c.is_hardened()));
        assert_eq!(c[6], ChildNumber(7));
        assert_eq!(
            p.split_last().unwrap().0,
            WalletScheme::Default
                .wallet_path("alice@example.com")
                .unwrap()
        );
        assert!(WalletScheme::Default.key_path("a", HARDENED - 1).is_ok());
        assert!(matches!(
            WalletScheme::Default.key_path("a", HARDENED),
            Err(Error::InvalidWallet(_))
        ));
    }

    #[test]
    fn known_paths() {
        // Computed independently with Python's hashlib and base64.
        assert_eq!(
            WalletScheme::Default
                .wallet_path("alice")
                .unwrap()
                .to_string(),
            "m/44'/60'/1941363052'/986312896'/806825652'/1375909929'"
        );
        assert_eq!(
            WalletScheme::Fortanix
                .wallet_path("alice@acme.com")
                .unwrap()
                .to_string(),
            "m/647304866/787048181'/570856188'/1822678761'/1357525188/1716378172'/1796893184/862241229"
        );
    }

    #[test]
    fn fortanix_scheme_shape() {
        let p = WalletScheme::Fortanix
            .key_path("alice@acme.com", HARDENED + 5)
            .unwrap();
        assert_eq!(p.depth(), 9);
        assert_eq!(p.components()[8], ChildNumber(HARDENED + 5));
        let h = Sha256::digest(b"YWxpY2VAYWNtZS5jb20=");
        let expected: Vec<ChildNumber> = words(&h).map(ChildNumber).collect();
        assert_eq!(&p.components()[..8], &expected[..]);
        assert!(WalletScheme::Fortanix.key_path("x", u32::MAX).is_ok());
    }

    #[test]
    fn empty_name_is_refused() {
        for s in [WalletScheme::Default, WalletScheme::Fortanix] {
            assert!(matches!(s.wallet_path(""), Err(Error::InvalidWallet(_))));
            assert!(matches!(s.key_path("", 0), Err(Error::InvalidWallet(_))));
        }
    }

    #[test]
    fn names_are_byte_exact() {
        let composed = WalletScheme::Default.wallet_path("Zo\u{eb}").unwrap();
        let decomposed = WalletScheme::Default.wallet_path("Zoe\u{308}").unwrap();
        assert_ne!(composed, decomposed);
        assert_ne!(
            WalletScheme::Default.wallet_path("alice").unwrap(),
            WalletScheme::Default.wallet_path("Alice").unwrap()
        );
    }

    proptest! {
        #[test]
        fn base64_length_and_alphabet(input in proptest::collection::vec(any::<u8>(), 0..100)) {
            let s = base64_std(&input);
            prop_assert_eq!(s.len(), input.len().div_ceil(3) * 4);
            prop_assert!(s.trim_end_matches('=').bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'));
        }

        #[test]
        fn paths_are_well_formed(name in "\\PC{1,64}", index in 0u32..HARDENED) {
            let d = WalletScheme::Default.key_path(&name, index).unwrap();
            prop_assert_eq!(d.depth(), 7);
            prop_assert_eq!(d.to_string().parse::<DerivationPath>().unwrap(), d);
            let f = WalletScheme::Fortanix.key_path(&name, index).unwrap();
            prop_assert_eq!(f.depth(), 9);
        }

        #[test]
        fn is_key_path_agrees_with_key_path(
            name in "\\PC{1,64}",
            other in "\\PC{1,64}",
            index in any::<u32>(),
        ) {
            for scheme in [WalletScheme::Default, WalletScheme::Fortanix] {
                let Ok(path) = scheme.key_path(&name, index) else {
                    // Hardened indices under the default scheme: no path.
                    prop_assert!(index >= HARDENED);
                    let fake = WalletScheme::Fortanix.key_path(&name, index).unwrap();
                    prop_assert!(!scheme.is_key_path(&name, index, &fake));
                    continue;
                };
                prop_assert!(scheme.is_key_path(&name, index, &path));
                prop_assert!(!scheme.is_key_path(&name, index ^ 1, &path));
                prop_assert_eq!(other == name, scheme.is_key_path(&other, index, &path));
                let (node, last) = path.split_last().unwrap();
                prop_assert!(!scheme.is_key_path(&name, index, &node));
                prop_assert!(!scheme.is_key_path(&name, last.0, &path.child(last).unwrap()));
                prop_assert!(!scheme.is_key_path("", index, &path));
            }
        }
    }
}
