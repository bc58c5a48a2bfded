//! Property tests for `custody_eth::keystore_v3`: parsing never panics, on
//! arbitrary bytes, arbitrary JSON or mutations of a valid keystore; export
//! and import round-trip for any valid key and any password bytes. KDF
//! parameters stay tiny so that each case costs microseconds.
#![cfg(test)]

use custody_core::{Passphrase, PrivateKeyBytes};
use custody_eth::Error;
use custody_eth::keystore_v3::{self, KdfChoice, V3Kdf};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};

/// Files whose KDF asks for more than this are parsed but not decrypted.
const MAX_WORK_DECRYPTED: u128 = 1 << 12;

const NAMES: &[&str] = &[
    "version",
    "crypto",
    "Crypto",
    "cipher",
    "cipherparams",
    "iv",
    "ciphertext",
    "kdf",
    "kdfparams",
    "n",
    "r",
    "p",
    "c",
    "dklen",
    "prf",
    "salt",
    "mac",
    "address",
    "id",
];

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u32..64).prop_map(|k| Value::from(1u64 << k)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        "(0x)?[0-9a-fA-F]{0,80}".prop_map(Value::String),
        select(vec![
            "scrypt",
            "pbkdf2",
            "aes-128-ctr",
            "hmac-sha256",
            "3",
            "3198bc9c-6672-5ab3-d995-4942343ae5b6",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![select(NAMES).prop_map(str::to_owned), "[a-zA-Z-]{0,8}",]
}

fn arb_json() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(arb_key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn tiny_kdf() -> impl Strategy<Value = V3Kdf> {
    prop_oneof![
        (1u8..=4, 1u32..=4, 1u32..=4).prop_map(|(log_n, r, p)| V3Kdf::Scrypt { log_n, r, p }),
        (1u32..=16).prop_map(|c| V3Kdf::Pbkdf2 { c }),
    ]
}

fn valid_key() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>().prop_filter("a secp256k1 secret key", |k| {
        k256::SecretKey::from_slice(k).is_ok()
    })
}

/// A keystore (with its address member) for `key` under `password`.
fn export(key: &[u8; 32], password: &[u8], kdf: V3Kdf) -> Value {
    let doc = keystore_v3::encrypt(
        &PrivateKeyBytes::new(*key),
        &Passphrase::new(password.to_vec()),
        KdfChoice::Custom(kdf),
    )
    .unwrap();
    serde_json::from_str(&doc).unwrap()
}

/// Paths of the members a mutation may touch (slash-separated).
const PATHS: &[&str] = &[
    "",
    "version",
    "address",
    "id",
    "crypto",
    "crypto/cipher",
    "crypto/cipherparams",
    "crypto/cipherparams/iv",
    "crypto/ciphertext",
    "crypto/kdf",
    "crypto/kdfparams",
    "crypto/kdfparams/n",
    "crypto/kdfparams/r",
    "crypto/kdfparams/p",
    "crypto/kdfparams/c",
    "crypto/kdfparams/dklen",
    "crypto/kdfparams/prf",
    "crypto/kdfparams/salt",
    "crypto/mac",
];

/// Values that often pass the parser: hex of the lengths the format uses,
/// small numbers and powers of two, the names it knows.
fn plausible() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<[u8; 16]>().prop_map(|b| Value::String(hex::encode(b))),
        any::<[u8; 20]>().prop_map(|b| Value::String(hex::encode(b))),
        any::<[u8; 32]>().prop_map(|b| Value::String(hex::encode(b))),
        (0u64..10).prop_map(Value::from),
        (0u32..24).prop_map(|k| Value::from(1u64 << k)),
        select(vec!["scrypt", "pbkdf2", "aes-128-ctr", "hmac-sha256"])
            .prop_map(|s| Value::String(s.to_owned())),
        Just(Value::Null),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace (`Some`) or remove (`None`) the member at a path.
    Set(&'static str, Option<Value>),
    /// Flip one bit of a hex member (if it is one).
    Flip(&'static str, usize, u8),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (
            select(PATHS),
            prop::option::weighted(0.8, prop_oneof![1 => arb_json(), 3 => plausible()]),
        )
            .prop_map(|(path, value)| Mutation::Set(path, value)),
        (select(PATHS), any::<usize>(), 0u8..8)
            .prop_map(|(path, i, bit)| Mutation::Flip(path, i, bit)),
    ]
}

fn apply(doc: &mut Value, m: Mutation) {
    match m {
        Mutation::Set(path, value) => mutate(doc, path, value),
        Mutation::Flip(path, i, bit) => {
            let pointer = format!("/{path}");
            let flipped = doc
                .pointer(&pointer)
                .and_then(Value::as_str)
                .and_then(|s| hex::decode(s).ok())
                .filter(|b| !b.is_empty())
                .map(|mut b| {
                    let n = b.len();
                    b[i % n] ^= 1 << bit;
                    Value::String(hex::encode(b))
                });
            if let Some(v) = flipped {
                mutate(doc, path, Some(v));
            }
        }
    }
}

/// Replaces (or with `None` removes) the member at `path`; the empty path
/// replaces the whole document.
fn mutate(doc: &mut Value, path: &str, value: Option<Value>) {
    if path.is_empty() {
        *doc = value.unwrap_or(Value::Null);
        return;
    }
    let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
    let mut node = doc;
    for part in parent.split('/').filter(|p| !p.is_empty()) {
        match node.get_mut(part) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(obj) = node.as_object_mut() {
        match value {
            Some(v) => obj.insert(last.to_owned(), v),
            None => obj.remove(last),
        };
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_never_panics_on_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let _ = keystore_v3::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn parse_never_panics_on_json(doc in arb_json()) {
        if let Ok(ks) = keystore_v3::parse(&doc.to_string())
            && ks.kdf().work() <= MAX_WORK_DECRYPTED
        {
            let _ = ks.decrypt(&Passphrase::from_str_copy(""));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any mutation of a valid keystore either is refused with a typed error
    /// or, if it still opens with the right password and names an address,
    /// yields the original key: the MAC covers the KDF output and the
    /// ciphertext, and the address member catches what it does not cover
    /// (the IV).
    #[test]
    fn mutated_keystores_fail_cleanly(
        key in valid_key(),
        password in vec(any::<u8>(), 0..24),
        kdf in tiny_kdf(),
        mutations in vec(arb_mutation(), 1..4),
    ) {
        let mut doc = export(&key, &password, kdf);
        for m in mutations {
            apply(&mut doc, m);
        }
        if let Ok(ks) = keystore_v3::parse(&doc.to_string())
            && ks.kdf().work() <= MAX_WORK_DECRYPTED
        {
            match ks.decrypt(&Passphrase::new(password.clone())) {
                // Without an address member nothing covers the IV (a
                // property of the v3 format): a changed IV opens to another
                // key. With one, only the original key gets through.
                Ok(got) if ks.address().is_some() => {
                    prop_assert_eq!(got.expose_secret(), &key);
                }
                Ok(_) => {}
                Err(
                    Error::WrongPassword
                    | Error::InvalidPrivateKey
                    | Error::KeystoreAddressMismatch,
                ) => {}
                Err(other) => prop_assert!(false, "unexpected error after parse: {other:?}"),
            }
        }
    }

    #[test]
    fn export_import_round_trip(
        key in valid_key(),
        password in vec(any::<u8>(), 0..100),
        other in vec(any::<u8>(), 0..100),
        kdf in tiny_kdf(),
    ) {
        let doc = export(&key, &password, kdf).to_string();
        let ks = keystore_v3::parse(&doc).unwrap();
        prop_assert_eq!(ks.kdf(), kdf);
        let got = ks.decrypt(&Passphrase::new(password.clone())).unwrap();
        prop_assert_eq!(got.expose_secret(), &key);
        if other != password {
            prop_assert!(matches!(
                ks.decrypt(&Passphrase::new(other)),
                Err(Error::WrongPassword)
            ));
        }
    }
}
