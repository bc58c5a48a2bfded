//! BIP32 test vectors 1–5 (vectors/bip32/bip32.json, transcribed from
//! bip-0032.mediawiki; see vectors/SOURCES.md).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a malformed vector file is a test failure"
)]

use custody_core::{
    ChainNode, DerivationPath, Error, ExtendedPrivateKey, ExtendedPublicKey, HdNode,
};
use serde_json::Value;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/bip32/bip32.json"
));

fn vectors() -> Vec<Value> {
    let v: Value = serde_json::from_str(VECTORS).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

fn path_of(entry: &Value) -> DerivationPath {
    entry["path"].as_str().unwrap().parse().unwrap()
}

fn s<'a>(entry: &'a Value, field: &str) -> &'a str {
    entry[field].as_str().unwrap()
}

#[test]
fn vectors_1_to_4_derive_every_chain_entry() {
    let mut checked = 0;
    for vector in vectors() {
        let Some(chain) = vector["chain"].as_array() else {
            continue;
        };
        let seed = hex::decode(s(&vector, "seed_hex")).unwrap();
        let master = ExtendedPrivateKey::from_seed(&seed).unwrap();
        let root = ChainNode::from_seed(&seed).unwrap();

        // Step by step, each entry from the previous one (derive_child).
        let mut previous: Option<ExtendedPrivateKey> = None;
        for entry in chain {
            let path = path_of(entry);
            let name = format!("vector {} {}", vector["vector"], path);

            // From the master with derive_path.
            let key = master.derive_path(&path).unwrap();
            assert_eq!(
                key.expose_xprv().unwrap().as_str(),
                s(entry, "xprv"),
                "{name}"
            );
            let xpub = key.to_extended_public();
            assert_eq!(xpub.to_string(), s(entry, "xpub"), "{name}");
            assert_eq!(
                u64::from(key.depth()),
                entry["depth"].as_u64().unwrap(),
                "{name}"
            );
            assert_eq!(
                hex::encode(key.parent_fingerprint()),
                s(entry, "parent_fingerprint"),
                "{name}"
            );
            assert_eq!(
                u64::from(key.child_number().0),
                entry["child_number"].as_u64().unwrap(),
                "{name}"
            );
            assert_eq!(
                hex::encode(key.expose_chain_code()),
                s(entry, "chain_code"),
                "{name}"
            );
            assert_eq!(
                hex::encode(key.expose_secret_key().expose_secret()),
                s(entry, "private_key"),
                "{name}"
            );
            assert_eq!(
                hex::encode(key.public_key().to_compressed()),
                s(entry, "public_key"),
                "{name}"
            );
            assert_eq!(xpub.depth(), key.depth());
            assert_eq!(xpub.fingerprint(), key.fingerprint());

            // Step by step.
            let stepped = match (&previous, path.split_last()) {
                (None, None) => ExtendedPrivateKey::from_seed(&seed).unwrap(),
                (Some(parent), Some((_, last))) => {
                    // The parent's fingerprint is this key's parent fingerprint.
                    assert_eq!(parent.fingerprint(), key.parent_fingerprint(), "{name}");
                    parent.derive_child(last).unwrap()
                }
                _ => panic!("chain entries are not consecutive in {name}"),
            };
            assert_eq!(
                stepped.expose_xprv().unwrap(),
                key.expose_xprv().unwrap(),
                "{name}"
            );

            // Fast paths: ChainNode::derive_path and HdNode::child_secret.
            let node = root.derive_path(&path).unwrap();
            assert_eq!(
                hex::encode(node.expose_secret_key().expose_secret()),
                s(entry, "private_key"),
                "{name}"
            );
            assert_eq!(
                hex::encode(node.expose_chain_code()),
                s(entry, "chain_code"),
                "{name}"
            );
            assert_eq!(
                hex::encode(node.public_key().to_compressed()),
                s(entry, "public_key"),
                "{name}"
            );
            if let Some((parent_path, last)) = path.split_last() {
                let parent = HdNode::new(root.derive_path(&parent_path).unwrap()).unwrap();
                let secret = parent.child_secret(last).unwrap();
                assert_eq!(
                    hex::encode(secret.expose_secret()),
                    s(entry, "private_key"),
                    "{name}"
                );
                assert_eq!(
                    hex::encode(parent.fingerprint()),
                    s(entry, "parent_fingerprint"),
                    "{name}"
                );
            }

            // Public derivation where the last step is normal.
            if let (Some(parent), Some((_, last))) = (&previous, path.split_last())
                && !last.is_hardened()
            {
                let child = parent.to_extended_public().derive_child(last).unwrap();
                assert_eq!(child.to_string(), s(entry, "xpub"), "{name}");
            }

            // Round trips: parse then serialize.
            let parsed = ExtendedPrivateKey::parse(s(entry, "xprv")).unwrap();
            assert_eq!(
                parsed.expose_xprv().unwrap().as_str(),
                s(entry, "xprv"),
                "{name}"
            );
            assert_eq!(
                parsed.to_extended_public().to_string(),
                s(entry, "xpub"),
                "{name}"
            );
            assert_eq!(parsed.fingerprint(), key.fingerprint(), "{name}");
            let parsed_pub: ExtendedPublicKey = s(entry, "xpub").parse().unwrap();
            assert_eq!(parsed_pub, xpub, "{name}");
            assert_eq!(parsed_pub.to_string(), s(entry, "xpub"), "{name}");

            previous = Some(key);
            checked += 1;
        }
    }
    // 6 + 6 + 2 + 3 entries in vectors 1–4.
    assert_eq!(checked, 17);
}

#[test]
fn vector_5_every_invalid_key_is_rejected() {
    let mut checked = 0;
    for vector in vectors() {
        let Some(invalid) = vector["invalid"].as_array() else {
            continue;
        };
        for case in invalid {
            let key = s(case, "key");
            let reason = s(case, "reason");
            let private = ExtendedPrivateKey::parse(key);
            let public = key.parse::<ExtendedPublicKey>();
            assert!(
                matches!(private, Err(Error::InvalidExtendedKey(_))),
                "{reason}: xprv parse gave {private:?}"
            );
            assert!(
                matches!(public, Err(Error::InvalidExtendedKey(_))),
                "{reason}: xpub parse gave {public:?}"
            );
            // The parser for the key's own prefix names the rule BIP32 gives.
            let ours = if key.starts_with("xprv") {
                private.err()
            } else {
                public.err()
            };
            let Some(Error::InvalidExtendedKey(ours)) = ours else {
                unreachable!()
            };
            let expected = match reason {
                "pubkey version / prvkey mismatch" => "public key must start with 0x02 or 0x03",
                "prvkey version / pubkey mismatch" => "private key data must start with 0x00",
                r if r.starts_with("invalid pubkey prefix") => {
                    "public key must start with 0x02 or 0x03"
                }
                r if r.starts_with("invalid prvkey prefix") => {
                    "private key data must start with 0x00"
                }
                "zero depth with non-zero parent fingerprint" => {
                    "zero depth with non-zero parent fingerprint"
                }
                "zero depth with non-zero index" => "zero depth with non-zero child number",
                "unknown extended key version" => "unknown version",
                r if r.starts_with("private key") => "private key not in 1..n-1",
                r if r.starts_with("invalid pubkey ") => "public key is not on the curve",
                "invalid checksum" => "bad checksum",
                other => panic!("unexpected vector 5 case {other:?}"),
            };
            assert_eq!(ours, expected, "{reason}: {key}");
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
}

#[test]
fn corrupted_vector_keys_are_rejected() {
    let v = vectors();
    let entry = &v[0]["chain"][1];
    let xprv = s(entry, "xprv");
    // Every single-character change breaks the checksum.
    for i in 0..xprv.len() {
        let original = &xprv[i..=i];
        let replacement = if original == "z" { "y" } else { "z" };
        let bad = format!("{}{}{}", &xprv[..i], replacement, &xprv[i + 1..]);
        assert!(
            matches!(
                ExtendedPrivateKey::parse(&bad),
                Err(Error::InvalidExtendedKey(_))
            ),
            "position {i}"
        );
    }
    // Truncated and extended strings have the wrong length.
    assert!(matches!(
        ExtendedPrivateKey::parse(&xprv[..xprv.len() - 1]),
        Err(Error::InvalidExtendedKey(_))
    ));
    assert!(matches!(
        ExtendedPrivateKey::parse(&format!("{xprv}1")),
        Err(Error::InvalidExtendedKey(_))
    ));
}
