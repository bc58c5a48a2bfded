//! Frozen Envelope v1 / Local KEK wrap v1 vectors (`vectors/envelope_v1.json`,
//! computed independently by `vectors/gen_envelope_v1.py` with pyca
//! `cryptography`): rebuilt byte for byte and opened.

#![expect(
    clippy::unwrap_used,
    reason = "test fixtures and helpers panic on failure, like the tests that call them"
)]

use std::collections::BTreeMap;

use custody_core::hazmat::{local_wrap_with_nonce, seal_envelope_with_parts};
use custody_core::{
    DataKey, EncryptionContext, Envelope, Error, KdfParams, KekId, LocalKek, Passphrase,
    WrappingBackend,
};
use serde_json::Value;

const VECTORS: &str = include_str!("vectors/envelope_v1.json");

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn context(v: &Value) -> EncryptionContext {
    let pairs: BTreeMap<String, String> = serde_json::from_value(v.clone()).unwrap();
    let mut ctx = EncryptionContext::new();
    for (k, v) in &pairs {
        ctx.insert(k, v).unwrap();
    }
    ctx
}

#[test]
fn envelopes_match_the_frozen_vectors() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let kek_id = KekId::new(doc["kekId"].as_str().unwrap()).unwrap();
    let kek_key = || DataKey::from_slice(&bytes(&doc["kekKey"])).unwrap();
    let data_key = DataKey::from_slice(&bytes(&doc["dataKey"])).unwrap();
    let wrap_nonce: [u8; 12] = bytes(&doc["wrapNonce"]).try_into().unwrap();
    let payload_nonce: [u8; 12] = bytes(&doc["payloadNonce"]).try_into().unwrap();
    let kek = LocalKek::from_key(kek_id.clone(), kek_key());
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let ctx = context(&case["context"]);
        assert_eq!(
            ctx.canonical_bytes(),
            bytes(&case["contextCanonical"]),
            "{name}"
        );
        let plaintext = bytes(&case["plaintext"]);
        let expected = bytes(&case["envelope"]);

        let wrapped =
            local_wrap_with_nonce(&kek_key(), &kek_id, wrap_nonce, &data_key, &ctx).unwrap();
        assert_eq!(wrapped, bytes(&case["wrappedKey"]), "{name}: wrapped key");
        let built = seal_envelope_with_parts(
            &data_key,
            &kek_id,
            &wrapped,
            payload_nonce,
            &ctx,
            &plaintext,
        )
        .unwrap();
        assert_eq!(
            built.as_bytes(),
            expected.as_slice(),
            "{name}: envelope bytes"
        );

        let parsed = Envelope::from_bytes(&expected).unwrap();
        assert_eq!(parsed, built, "{name}");
        assert_eq!(parsed.kek(), &kek_id);
        assert_eq!(parsed.nonce(), payload_nonce);
        assert_eq!(parsed.plaintext_len(), plaintext.len());
        assert_eq!(
            kek.unwrap(&kek_id, parsed.wrapped_key(), &ctx)
                .wait()
                .unwrap(),
            data_key
        );
        let opened = parsed.open(&kek, &ctx).wait().unwrap();
        assert_eq!(
            opened.expose_secret(),
            plaintext.as_slice(),
            "{name}: plaintext"
        );

        let other = ctx.clone().with("extra", "pair").unwrap();
        assert!(matches!(
            parsed.open(&kek, &other).wait(),
            Err(Error::DecryptionFailed)
        ));
    }
}

#[test]
fn passphrase_kek_matches_the_frozen_vector() {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    let v = &doc["passphrase"];
    let params: KdfParams = serde_json::from_value(v["kdf"].clone()).unwrap();
    assert_eq!((params.log_n(), params.r(), params.p()), (12, 8, 1));
    let pass = Passphrase::from_str_copy(v["passphrase"].as_str().unwrap());
    let kek = LocalKek::from_passphrase(&pass, &params).unwrap();
    assert_eq!(kek.current_kek().as_str(), v["kekId"].as_str().unwrap());
    assert_eq!(kek.check_value().to_vec(), bytes(&v["checkValue"]));
    assert!(kek.verify_check_value(&bytes(&v["checkValue"])));

    // The derived key is the one Python's hashlib.scrypt gives.
    let raw = LocalKek::from_key(
        kek.current_kek().clone(),
        DataKey::from_slice(&bytes(&v["kekKey"])).unwrap(),
    );
    assert_eq!(raw.check_value(), kek.check_value());

    let ctx = context(&v["context"]);
    let wrapped = local_wrap_with_nonce(
        &DataKey::from_slice(&bytes(&v["kekKey"])).unwrap(),
        kek.current_kek(),
        bytes(&doc["wrapNonce"]).try_into().unwrap(),
        &DataKey::from_slice(&bytes(&doc["dataKey"])).unwrap(),
        &ctx,
    )
    .unwrap();
    assert_eq!(wrapped, bytes(&v["wrappedKey"]));
    let env = Envelope::from_bytes(&bytes(&v["envelope"])).unwrap();
    assert_eq!(
        env.open(&kek, &ctx).wait().unwrap().expose_secret(),
        bytes(&v["plaintext"]).as_slice()
    );

    // Serialization of the parameters is stable.
    assert_eq!(serde_json::to_value(&params).unwrap(), v["kdf"]);
}
