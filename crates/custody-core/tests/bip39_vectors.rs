//! BIP39 test vectors (vectors/bip39/vectors.json, trezor/python-mnemonic;
//! passphrase "TREZOR"): entropy → phrase, phrase → seed, seed → root xprv,
//! for every word list the `bip39` crate carries.

use std::borrow::Cow;

use custody_core::{Error, ExtendedPrivateKey, Mnemonic, MnemonicLanguage};
use serde_json::Value;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/bip39/vectors.json"
));

fn language(name: &str) -> Option<MnemonicLanguage> {
    Some(match name {
        "english" => MnemonicLanguage::English,
        "chinese_simplified" => MnemonicLanguage::ChineseSimplified,
        "chinese_traditional" => MnemonicLanguage::ChineseTraditional,
        "czech" => MnemonicLanguage::Czech,
        "french" => MnemonicLanguage::French,
        "italian" => MnemonicLanguage::Italian,
        "japanese" => MnemonicLanguage::Japanese,
        "korean" => MnemonicLanguage::Korean,
        "portuguese" => MnemonicLanguage::Portuguese,
        "spanish" => MnemonicLanguage::Spanish,
        _ => return None,
    })
}

/// NFKD, as BIP39 requires, with the `bip39` crate's own normalizer.
fn nfkd(s: &str) -> String {
    let mut cow = Cow::Borrowed(s);
    bip39::Mnemonic::normalize_utf8_cow(&mut cow);
    cow.into_owned()
}

#[test]
fn every_supported_language() {
    let all: serde_json::Map<String, Value> = serde_json::from_str(VECTORS).unwrap();
    let mut skipped = Vec::new();
    let mut checked = 0;
    for (name, cases) in &all {
        let Some(lang) = language(name) else {
            skipped.push(name.as_str());
            continue;
        };
        for case in cases.as_array().unwrap() {
            let [entropy, phrase, seed, xprv] = [0, 1, 2, 3].map(|i| case[i].as_str().unwrap());
            let label = format!("{name}: {entropy}");

            // entropy → phrase
            let m = Mnemonic::from_entropy(lang, &hex::decode(entropy).unwrap()).unwrap();
            assert_eq!(nfkd(&m.expose_phrase()), nfkd(phrase), "{label}");
            assert_eq!(m.language(), lang, "{label}");
            if lang == MnemonicLanguage::Japanese {
                assert!(m.expose_phrase().contains('\u{3000}'), "{label}");
            }

            // phrase → seed (the phrase exactly as the vector writes it, NFC
            // for Japanese, NFKD elsewhere)
            let parsed = Mnemonic::parse(phrase).unwrap();
            assert_eq!(parsed.word_count(), entropy.len() / 8 * 3, "{label}");
            match lang {
                // Phrases whose characters are in both Chinese lists are read
                // in the first; the seed does not depend on the list.
                MnemonicLanguage::ChineseSimplified | MnemonicLanguage::ChineseTraditional => {
                    assert!(matches!(
                        parsed.language(),
                        MnemonicLanguage::ChineseSimplified | MnemonicLanguage::ChineseTraditional
                    ));
                }
                _ => assert_eq!(parsed.language(), lang, "{label}"),
            }
            let s = parsed.to_seed("TREZOR");
            assert_eq!(hex::encode(s.expose_secret()), seed, "{label}");
            assert_eq!(m.to_seed("TREZOR"), s, "{label}");

            // seed → root xprv
            let root = ExtendedPrivateKey::from_seed(s.expose_secret()).unwrap();
            assert_eq!(root.expose_xprv().unwrap().as_str(), xprv, "{label}");
            checked += 1;
        }
    }
    skipped.sort_unstable();
    // The two lists of python-mnemonic that are not BIP39 lists in the
    // `bip39` crate.
    assert_eq!(skipped, ["russian", "turkish"]);
    assert_eq!(checked, 10 * 24);
}

#[test]
fn bad_phrases_are_rejected() {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    let good = all["english"][0][1].as_str().unwrap();
    assert!(Mnemonic::parse(good).is_ok());
    let words: Vec<&str> = good.split(' ').collect();
    assert_eq!(words.len(), 12);

    // Bad checksum: the last word changed to another valid word.
    let mut bad = words.clone();
    bad[11] = "abandon";
    // Unknown word.
    let mut unknown = words.clone();
    unknown[5] = "bitcoinz";
    // 13 words.
    let mut thirteen = words.clone();
    thirteen.push("abandon");
    // 11 words.
    let eleven = &words[..11];

    for phrase in [
        bad.join(" "),
        unknown.join(" "),
        thirteen.join(" "),
        eleven.join(" "),
    ] {
        assert!(
            matches!(Mnemonic::parse(&phrase), Err(Error::InvalidMnemonic)),
            "{phrase}"
        );
    }

    // A Japanese vector with one word replaced by an English one.
    let japanese = all["japanese"][0][1].as_str().unwrap();
    let mixed = japanese.replacen("あいこくしん", "abandon", 1);
    assert!(matches!(
        Mnemonic::parse(&mixed),
        Err(Error::InvalidMnemonic)
    ));
    // The error says nothing about which word was wrong.
    let msg = Mnemonic::parse(&unknown.join(" ")).unwrap_err().to_string();
    assert_eq!(msg, "invalid mnemonic");
}
