//! Wycheproof AES-GCM vectors walked through the exact AES-256-GCM code path
//! envelopes and the local KEK wrap use (`hazmat::aes256gcm_*`).

#![expect(
    clippy::unwrap_used,
    reason = "test fixtures and helpers panic on failure, like the tests that call them"
)]

use custody_core::hazmat::{aes256gcm_decrypt_in_place, aes256gcm_encrypt_in_place};
use custody_core::{DataKey, Error};
use serde_json::Value;

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../vectors/wycheproof/aes_gcm_test.json"
);

fn field(test: &Value, name: &str) -> Vec<u8> {
    hex::decode(test[name].as_str().unwrap()).unwrap()
}

#[test]
fn wycheproof_aes_256_gcm() {
    let doc: Value = serde_json::from_slice(&std::fs::read(VECTORS).unwrap()).unwrap();
    assert_eq!(doc["algorithm"], "AES-GCM");
    let (mut valid, mut invalid) = (0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        if (
            group["keySize"].as_u64(),
            group["ivSize"].as_u64(),
            group["tagSize"].as_u64(),
        ) != (Some(256), Some(96), Some(128))
        {
            continue;
        }
        for test in group["tests"].as_array().unwrap() {
            let id = test["tcId"].as_u64().unwrap();
            let key = DataKey::from_slice(&field(test, "key")).unwrap();
            let nonce: [u8; 12] = field(test, "iv").try_into().unwrap();
            let aad = field(test, "aad");
            let msg = field(test, "msg");
            let ct = field(test, "ct");
            let tag: [u8; 16] = field(test, "tag").try_into().unwrap();
            match test["result"].as_str().unwrap() {
                "valid" => {
                    valid += 1;
                    let mut buf = msg.clone();
                    let got = aes256gcm_encrypt_in_place(&key, &nonce, &aad, &mut buf).unwrap();
                    assert_eq!(buf, ct, "tcId {id}: ciphertext");
                    assert_eq!(got, tag, "tcId {id}: tag");
                    aes256gcm_decrypt_in_place(&key, &nonce, &aad, &mut buf, &tag).unwrap();
                    assert_eq!(buf, msg, "tcId {id}: decryption");
                }
                "invalid" => {
                    invalid += 1;
                    let mut buf = ct.clone();
                    assert!(
                        matches!(
                            aes256gcm_decrypt_in_place(&key, &nonce, &aad, &mut buf, &tag),
                            Err(Error::DecryptionFailed)
                        ),
                        "tcId {id}: accepted an invalid tag"
                    );
                    assert_eq!(buf, ct, "tcId {id}: buffer changed on failure");
                }
                other => panic!("tcId {id}: unexpected result {other}"),
            }
        }
    }
    // Every AES-256 / 96-bit IV / 128-bit tag case in the file (SOURCES.md: 66).
    assert_eq!((valid, invalid), (39, 27));
}
