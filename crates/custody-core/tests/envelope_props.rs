//! Property tests of envelopes: round trips, encode/decode, and that no
//! truncation, bit flip or random input panics or opens to other plaintext.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test fixtures and helpers panic on failure, like the tests that call them"
)]

use std::collections::BTreeMap;

use custody_core::{DataKey, EncryptionContext, Envelope, Error, KekId, LocalKek};
use proptest::prelude::*;

fn kek(name: &str, byte: u8) -> LocalKek {
    LocalKek::from_key(KekId::new(name).unwrap(), DataKey::new([byte; 32]))
}

fn context_from(pairs: &BTreeMap<String, String>) -> EncryptionContext {
    let mut ctx = EncryptionContext::new();
    for (k, v) in pairs {
        ctx.insert(k, v).unwrap();
    }
    ctx
}

fn contexts() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-zA-Z0-9é/_-]{1,12}", "\\PC{0,16}", 0..5)
}

/// Every way the bytes of `env` can be cut short or have one bit flipped
/// either fails to parse or fails to open; nothing opens to other bytes.
fn assert_no_mutation_opens(env: &Envelope, kek: &LocalKek, ctx: &EncryptionContext) {
    let bytes = env.as_bytes();
    for n in 0..bytes.len() {
        assert!(
            matches!(
                Envelope::from_bytes(&bytes[..n]),
                Err(Error::MalformedEnvelope(_))
            ),
            "truncation to {n} parsed"
        );
    }
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        match Envelope::from_bytes(&flipped) {
            Err(Error::MalformedEnvelope(_)) => {}
            Err(e) => panic!("bit {bit}: unexpected parse error {e:?}"),
            Ok(parsed) => match parsed.open(kek, ctx).wait() {
                // A flip inside the KEK id names a KEK the backend does not hold.
                Err(Error::DecryptionFailed | Error::UnknownKek) => {}
                Err(e) => panic!("bit {bit}: unexpected open error {e:?}"),
                Ok(_) => panic!("bit {bit}: a mutated envelope opened"),
            },
        }
    }
}

#[test]
fn no_truncation_or_bit_flip_opens() {
    let k = kek("kek-a", 1);
    let ctx = EncryptionContext::new().with("wallet", "alice").unwrap();
    for plaintext in [&b""[..], b"x", b"a 32-byte private key, exactly!!"] {
        let env = Envelope::seal(&k, k.current_kek(), &ctx, plaintext)
            .wait()
            .unwrap();
        assert_no_mutation_opens(&env, &k, &ctx);
    }
}

proptest! {
    #[test]
    fn seal_open_round_trip(
        plaintext in prop::collection::vec(any::<u8>(), 0..2048),
        pairs in contexts(),
    ) {
        let k = kek("kek-a", 1);
        let ctx = context_from(&pairs);
        let env = Envelope::seal(&k, k.current_kek(), &ctx, &plaintext).wait().unwrap();
        prop_assert_eq!(env.plaintext_len(), plaintext.len());
        let opened = env.open(&k, &ctx).wait().unwrap();
        prop_assert_eq!(opened.expose_secret(), plaintext.as_slice());
    }

    #[test]
    fn encode_decode_round_trip(
        plaintext in prop::collection::vec(any::<u8>(), 0..512),
        pairs in contexts(),
        kek_id in "[!-~]{1,64}",
    ) {
        let k = kek(&kek_id, 3);
        let env = Envelope::seal(&k, k.current_kek(), &context_from(&pairs), &plaintext)
            .wait()
            .unwrap();
        let decoded = Envelope::from_bytes(&env.to_bytes()).unwrap();
        prop_assert_eq!(&decoded, &env);
        prop_assert_eq!(decoded.kek(), k.current_kek());
        prop_assert_eq!(Envelope::from_vec(env.clone().into_bytes()).unwrap(), env);
    }

    #[test]
    fn rewrap_round_trip(
        plaintext in prop::collection::vec(any::<u8>(), 0..1024),
        pairs in contexts(),
        old_byte in any::<u8>(),
        new_byte in any::<u8>(),
    ) {
        let old = kek("kek-old", old_byte);
        let ctx = context_from(&pairs);
        let env = Envelope::seal(&old, old.current_kek(), &ctx, &plaintext).wait().unwrap();
        let rotating = kek("kek-new", new_byte).with_retired(kek("kek-old", old_byte)).unwrap();
        let rotated = env.rewrap(&rotating, rotating.current_kek(), &ctx).wait().unwrap();
        prop_assert_eq!(rotated.ciphertext(), env.ciphertext());
        prop_assert_eq!(rotated.nonce(), env.nonce());
        let opened = rotated.open(&kek("kek-new", new_byte), &ctx).wait().unwrap();
        prop_assert_eq!(opened.expose_secret(), plaintext.as_slice());
        prop_assert!(matches!(rotated.open(&old, &ctx).wait(), Err(Error::UnknownKek)));
    }

    #[test]
    fn from_bytes_never_panics_on_random_input(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Envelope::from_bytes(&bytes);
    }

    #[test]
    fn from_bytes_never_panics_past_the_magic(tail in prop::collection::vec(any::<u8>(), 0..512)) {
        let bytes = [b"CUSTENV\x01\x01".as_slice(), &tail].concat();
        if let Ok(env) = Envelope::from_bytes(&bytes) {
            // Whatever parses re-encodes to the same bytes and never opens.
            prop_assert_eq!(env.as_bytes(), bytes.as_slice());
            let k = kek("kek-a", 1);
            prop_assert!(env.open(&k, &EncryptionContext::new()).wait().is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn no_mutation_of_a_random_envelope_opens(
        plaintext in prop::collection::vec(any::<u8>(), 0..48),
        pairs in contexts(),
    ) {
        let k = kek("kek-a", 1);
        let ctx = context_from(&pairs);
        let env = Envelope::seal(&k, k.current_kek(), &ctx, &plaintext).wait().unwrap();
        assert_no_mutation_opens(&env, &k, &ctx);
    }
}
