//! Wallet schemes against an independent implementation:
//! tests/vectors/wallet_schemes.json, written by
//! tests/vectors/gen_wallet_schemes.py (hashlib/base64 for the path rules,
//! python-bip32 over libsecp256k1 for the keys).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a malformed vector file is a test failure"
)]

use custody_core::{ChainNode, DerivationPath, ExtendedPrivateKey, HdNode, Mnemonic, WalletScheme};
use serde_json::Value;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/wallet_schemes.json"
));

fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap()
}

#[test]
fn generator_is_named() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(
        s(&doc, "generator"),
        "crates/custody-core/tests/vectors/gen_wallet_schemes.py"
    );
    assert!(s(&doc, "library").starts_with("python-bip32 "));
}

#[test]
fn paths_keys_and_xpubs_match() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let mut keys_checked = 0;
    let mut schemes_seen = [0; 2];
    for seed_case in doc["seeds"].as_array().unwrap() {
        let mnemonic = Mnemonic::parse(s(seed_case, "mnemonic")).unwrap();
        let seed = mnemonic.to_seed(s(seed_case, "passphrase"));
        assert_eq!(hex::encode(seed.expose_secret()), s(seed_case, "seed"));
        let master = ExtendedPrivateKey::from_seed(seed.expose_secret()).unwrap();
        assert_eq!(
            master.to_extended_public().to_string(),
            s(seed_case, "master_xpub")
        );
        let root = ChainNode::from_seed(seed.expose_secret()).unwrap();

        for wallet in seed_case["wallets"].as_array().unwrap() {
            let scheme: WalletScheme = s(wallet, "scheme").parse().unwrap();
            schemes_seen[usize::from(scheme == WalletScheme::Fortanix)] += 1;
            let name = s(wallet, "wallet_name");
            assert_eq!(
                hex::encode(name.as_bytes()),
                s(wallet, "wallet_name_utf8_hex")
            );
            let label = format!("{} {scheme} {name:?}", s(seed_case, "name"));

            // The wallet node: path, and xpub with full metadata.
            let wallet_path = scheme.wallet_path(name).unwrap();
            assert_eq!(wallet_path.to_string(), s(wallet, "wallet_path"), "{label}");
            let node_key = master.derive_path(&wallet_path).unwrap();
            assert_eq!(
                node_key.to_extended_public().to_string(),
                s(wallet, "wallet_xpub"),
                "{label}"
            );

            // The cached wallet node of the signing hot path.
            let cached = HdNode::new(root.derive_path(&wallet_path).unwrap()).unwrap();
            assert_eq!(cached.public_key(), node_key.public_key(), "{label}");

            for key in wallet["keys"].as_array().unwrap() {
                let index = u32::try_from(key["index"].as_u64().unwrap()).unwrap();
                let label = format!("{label} #{index}");
                let path = scheme.key_path(name, index).unwrap();
                assert_eq!(path.to_string(), s(key, "path"), "{label}");
                assert_eq!(
                    path.split_last().unwrap(),
                    (wallet_path.clone(), scheme.key_child(index).unwrap())
                );
                // The string round-trips through DerivationPath.
                assert_eq!(s(key, "path").parse::<DerivationPath>().unwrap(), path);

                // Full derivation from the master.
                let full = master.derive_path(&path).unwrap();
                assert_eq!(
                    hex::encode(full.expose_secret_key().expose_secret()),
                    s(key, "private_key"),
                    "{label}"
                );
                assert_eq!(
                    hex::encode(full.public_key().to_compressed()),
                    s(key, "public_key"),
                    "{label}"
                );

                // Hot path: one HMAC and one scalar add from the cached node.
                let secret = cached
                    .child_secret(scheme.key_child(index).unwrap())
                    .unwrap();
                assert_eq!(
                    hex::encode(secret.expose_secret()),
                    s(key, "private_key"),
                    "{label}"
                );

                // Public derivation from the wallet xpub, where the index is
                // a normal child.
                if index < custody_core::HARDENED {
                    let child = node_key
                        .to_extended_public()
                        .derive_child(scheme.key_child(index).unwrap())
                        .unwrap();
                    assert_eq!(
                        hex::encode(child.compressed_public_key()),
                        s(key, "public_key"),
                        "{label}"
                    );
                }
                keys_checked += 1;
            }
        }
    }
    // 2 seeds × 6 names × (4 default + 5 fortanix indices).
    assert_eq!(keys_checked, 2 * 6 * 9);
    assert_eq!(schemes_seen, [12, 12]);
}

#[test]
fn default_scheme_refuses_hardened_index() {
    assert!(WalletScheme::Default.key_path("alice", 1 << 31).is_err());
    assert!(WalletScheme::Fortanix.key_path("alice", 1 << 31).is_ok());
}
