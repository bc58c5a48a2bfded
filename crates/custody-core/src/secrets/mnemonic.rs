//! BIP39 mnemonics, on the `bip39` crate.
//!
//! - Phrases are normalized as BIP39 requires (Unicode NFKD; words separated
//!   by any whitespace) before they are checked, and the language is detected
//!   among all the word lists the `bip39` crate carries (English, Simplified
//!   and Traditional Chinese, Czech, French, Italian, Japanese, Korean,
//!   Portuguese, Spanish). A phrase valid in more than one list (Chinese
//!   phrases whose characters are in both Chinese lists) is read in the first
//!   list, in that order, whose checksum it passes; the seed is the same
//!   either way, since it depends only on the normalized words.
//! - Any failure to parse (unknown word, bad checksum, bad word count) is the
//!   one opaque [`Error::InvalidMnemonic`]: the error never says which word
//!   was wrong.
//! - The seed is PBKDF2-HMAC-SHA512 of the normalized phrase with the salt
//!   `"mnemonic" ‖ NFKD(passphrase)`, 2048 rounds (BIP39).
//! - [`Mnemonic`] is wiped on drop, has no `Clone`, no `Display`, and its
//!   `Debug` prints only the type name. The phrase comes out only through
//!   [`Mnemonic::expose_phrase`], in a zeroizing string. Normalized copies of
//!   phrases and passphrases made along the way are wiped too.

use std::borrow::Cow;
use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::{Error, Seed, fill_random};

/// A BIP39 word list.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MnemonicLanguage {
    /// English (the BIP39 reference list).
    English,
    /// Simplified Chinese.
    ChineseSimplified,
    /// Traditional Chinese.
    ChineseTraditional,
    /// Czech.
    Czech,
    /// French.
    French,
    /// Italian.
    Italian,
    /// Japanese (phrases are written with the ideographic space U+3000).
    Japanese,
    /// Korean.
    Korean,
    /// Portuguese.
    Portuguese,
    /// Spanish.
    Spanish,
}

impl MnemonicLanguage {
    fn to_bip39(self) -> bip39::Language {
        match self {
            Self::English => bip39::Language::English,
            Self::ChineseSimplified => bip39::Language::SimplifiedChinese,
            Self::ChineseTraditional => bip39::Language::TraditionalChinese,
            Self::Czech => bip39::Language::Czech,
            Self::French => bip39::Language::French,
            Self::Italian => bip39::Language::Italian,
            Self::Japanese => bip39::Language::Japanese,
            Self::Korean => bip39::Language::Korean,
            Self::Portuguese => bip39::Language::Portuguese,
            Self::Spanish => bip39::Language::Spanish,
        }
    }

    fn from_bip39(language: bip39::Language) -> Self {
        match language {
            bip39::Language::English => Self::English,
            bip39::Language::SimplifiedChinese => Self::ChineseSimplified,
            bip39::Language::TraditionalChinese => Self::ChineseTraditional,
            bip39::Language::Czech => Self::Czech,
            bip39::Language::French => Self::French,
            bip39::Language::Italian => Self::Italian,
            bip39::Language::Japanese => Self::Japanese,
            bip39::Language::Korean => Self::Korean,
            bip39::Language::Portuguese => Self::Portuguese,
            bip39::Language::Spanish => Self::Spanish,
        }
    }
}

/// Entropy length in bytes for a word count.
fn entropy_len(word_count: usize) -> Result<usize, Error> {
    match word_count {
        12 | 15 | 18 | 21 | 24 => Ok(word_count / 3 * 4),
        _ => Err(Error::InvalidKeyMaterial(
            "a mnemonic has 12, 15, 18, 21 or 24 words",
        )),
    }
}

/// Wipes a normalized copy if normalization made one.
fn wipe(cow: Cow<'_, str>) {
    if let Cow::Owned(mut s) = cow {
        s.zeroize();
    }
}

/// Parses a normalized phrase, detecting its word list.
fn parse_normalized(phrase: &str) -> Result<bip39::Mnemonic, Error> {
    match bip39::Mnemonic::language_of(phrase) {
        Ok(language) => bip39::Mnemonic::parse_in_normalized(language, phrase)
            .map_err(|_| Error::InvalidMnemonic),
        Err(bip39::Error::AmbiguousLanguages(candidates)) => candidates
            .iter()
            .find_map(|language| bip39::Mnemonic::parse_in_normalized(language, phrase).ok())
            .ok_or(Error::InvalidMnemonic),
        Err(_) => Err(Error::InvalidMnemonic),
    }
}

/// A BIP39 mnemonic phrase. Wiped on drop; `Debug` is redacted.
pub struct Mnemonic(bip39::Mnemonic);

impl Mnemonic {
    /// A fresh English mnemonic of `word_count` words (12, 15, 18, 21 or 24),
    /// from the OS CSPRNG ([`fill_random`]).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] for another word count; [`Error::Rng`] if
    /// the OS generator fails.
    pub fn generate(word_count: usize) -> Result<Self, Error> {
        Self::generate_in(MnemonicLanguage::English, word_count)
    }

    /// A fresh mnemonic in `language`.
    ///
    /// # Errors
    /// As [`Self::generate`].
    pub fn generate_in(language: MnemonicLanguage, word_count: usize) -> Result<Self, Error> {
        let len = entropy_len(word_count)?;
        let mut entropy = Zeroizing::new([0u8; 32]);
        let buf = entropy
            .get_mut(..len)
            .ok_or(Error::InvalidKeyMaterial("bad entropy length"))?;
        fill_random(buf)?;
        Self::from_entropy(language, buf)
    }

    /// The mnemonic that encodes `entropy` (16, 20, 24, 28 or 32 bytes).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] for another entropy length.
    pub fn from_entropy(language: MnemonicLanguage, entropy: &[u8]) -> Result<Self, Error> {
        bip39::Mnemonic::from_entropy_in(language.to_bip39(), entropy)
            .map(Self)
            .map_err(|_| {
                Error::InvalidKeyMaterial(
                    "mnemonic entropy must be 16 to 32 bytes, a multiple of 4",
                )
            })
    }

    /// Parses a phrase in any supported word list (detected), after BIP39
    /// normalization (NFKD; any whitespace between words). Case is not
    /// folded: BIP39 words are lower case.
    ///
    /// # Errors
    /// [`Error::InvalidMnemonic`] (deliberately opaque) for an unknown word, a
    /// bad checksum or a word count other than 12, 15, 18, 21 or 24.
    pub fn parse(phrase: &str) -> Result<Self, Error> {
        let mut normalized = Cow::Borrowed(phrase);
        bip39::Mnemonic::normalize_utf8_cow(&mut normalized);
        let parsed = parse_normalized(&normalized);
        wipe(normalized);
        parsed.map(Self)
    }

    /// The BIP39 seed for `passphrase` (NFKD-normalized first; `""` for none).
    #[must_use]
    pub fn to_seed(&self, passphrase: &str) -> Seed {
        let mut normalized = Cow::Borrowed(passphrase);
        bip39::Mnemonic::normalize_utf8_cow(&mut normalized);
        let mut raw = self.0.to_seed_normalized(&normalized);
        wipe(normalized);
        let seed = Seed::new(raw);
        raw.zeroize();
        seed
    }

    /// The phrase: words separated by a space (an ideographic space U+3000 for
    /// Japanese, as BIP39 recommends), in the word list's normalized (NFKD)
    /// form. Key material, in a zeroizing string.
    #[must_use]
    pub fn expose_phrase(&self) -> Zeroizing<String> {
        let separator = if self.0.language() == bip39::Language::Japanese {
            "\u{3000}"
        } else {
            " "
        };
        // Reserve the exact length so that the string never reallocates
        // (a reallocation would leave an unwiped copy behind).
        let len = self
            .0
            .words()
            .map(|w| w.len() + separator.len())
            .sum::<usize>();
        let mut out = Zeroizing::new(String::with_capacity(len));
        for (i, word) in self.0.words().enumerate() {
            if i > 0 {
                out.push_str(separator);
            }
            out.push_str(word);
        }
        out
    }

    /// The number of words (12, 15, 18, 21 or 24).
    #[must_use]
    pub fn word_count(&self) -> usize {
        self.0.word_count()
    }

    /// The word list the phrase is in.
    #[must_use]
    pub fn language(&self) -> MnemonicLanguage {
        MnemonicLanguage::from_bip39(self.0.language())
    }
}

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mnemonic(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

    #[test]
    fn generate_gives_each_word_count() {
        for n in [12, 15, 18, 21, 24] {
            let m = Mnemonic::generate(n).unwrap();
            assert_eq!(m.word_count(), n);
            assert_eq!(m.language(), MnemonicLanguage::English);
            let again = Mnemonic::parse(&m.expose_phrase()).unwrap();
            assert_eq!(again.expose_phrase(), m.expose_phrase());
        }
        for n in [0, 11, 13, 25, 48] {
            assert!(matches!(
                Mnemonic::generate(n),
                Err(Error::InvalidKeyMaterial(_))
            ));
        }
        assert_ne!(
            Mnemonic::generate(12).unwrap().expose_phrase(),
            Mnemonic::generate(12).unwrap().expose_phrase()
        );
    }

    #[test]
    fn debug_is_redacted() {
        let m = Mnemonic::parse(ABANDON).unwrap();
        let s = format!("{m:?}");
        assert_eq!(s, "Mnemonic(<redacted>)");
        assert!(!s.contains("abandon"));
    }

    #[test]
    fn known_seed() {
        // BIP39 reference vector: entropy 00…00, passphrase "TREZOR".
        let m = Mnemonic::parse(ABANDON).unwrap();
        assert_eq!(
            hex::encode(m.to_seed("TREZOR").expose_secret()),
            "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
        );
    }

    #[test]
    fn whitespace_and_normalization() {
        let spaced = format!("  {}\t\n", ABANDON.replace(' ', "   "));
        let m = Mnemonic::parse(&spaced).unwrap();
        assert_eq!(m.expose_phrase().as_str(), ABANDON);
        // NFC "ábaco" (Spanish) is accepted as well as NFKD.
        let nfc = "\u{e1}baco ".repeat(11) + "abierto";
        let nfkd = "a\u{301}baco ".repeat(11) + "abierto";
        let a = Mnemonic::parse(&nfc).unwrap();
        let b = Mnemonic::parse(&nfkd).unwrap();
        assert_eq!(a.language(), MnemonicLanguage::Spanish);
        assert_eq!(a.to_seed("x"), b.to_seed("x"));
    }

    #[test]
    fn bad_phrases_are_opaque_errors() {
        let bad_checksum = "abandon ".repeat(11) + "abandon";
        let unknown = "abandon ".repeat(11) + "aboutt";
        let thirteen = format!("{ABANDON} abandon");
        for bad in [
            bad_checksum.as_str(),
            unknown.as_str(),
            thirteen.as_str(),
            "",
            "   ",
            "ABANDON abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        ] {
            assert!(
                matches!(Mnemonic::parse(bad), Err(Error::InvalidMnemonic)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn entropy_length_is_checked() {
        for len in [0, 12, 15, 17, 36] {
            assert!(matches!(
                Mnemonic::from_entropy(MnemonicLanguage::English, &vec![0; len]),
                Err(Error::InvalidKeyMaterial(_))
            ));
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            let _ = Mnemonic::parse(&s);
        }

        #[test]
        fn entropy_round_trips(entropy in proptest::collection::vec(any::<u8>(), 16..=32)) {
            let len = entropy.len() / 4 * 4;
            let m = Mnemonic::from_entropy(MnemonicLanguage::English, &entropy[..len]).unwrap();
            let back = Mnemonic::parse(&m.expose_phrase()).unwrap();
            prop_assert_eq!(back.word_count(), len * 3 / 4);
            prop_assert_eq!(back.to_seed(""), m.to_seed(""));
        }
    }
}
