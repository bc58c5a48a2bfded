//! Property tests of the strict CBOR decoder (`custody_core::cbor`) and its
//! encoder: every value the encoder writes decodes to itself and nothing
//! shorter decodes; whatever bytes the decoder accepts, the encoder writes
//! back byte for byte (the decoder accepts exactly the preferred
//! serialization); no input makes it panic.

use custody_core::cbor::{self, CborErrorKind, Limits, Value};
use proptest::prelude::*;

/// An owned CBOR value, to generate (a [`Value`] borrows its strings).
#[derive(Debug, Clone)]
enum Owned {
    Unsigned(u64),
    Negative(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Owned>),
    Map(Vec<(Owned, Owned)>),
    Bool(bool),
    Null,
}

impl Owned {
    fn value(&self) -> Value<'_> {
        match self {
            Self::Unsigned(n) => Value::Unsigned(*n),
            Self::Negative(n) => Value::Negative(*n),
            Self::Bytes(b) => Value::Bytes(b),
            Self::Text(s) => Value::Text(s),
            Self::Array(items) => Value::Array(items.iter().map(Self::value).collect()),
            Self::Map(entries) => {
                // Keep the first of equal keys: the decoder refuses duplicates.
                let mut seen = Vec::new();
                let mut out = Vec::new();
                for (k, v) in entries {
                    let key = k.value();
                    let bytes = key.to_vec();
                    if !seen.contains(&bytes) {
                        seen.push(bytes);
                        out.push((key, v.value()));
                    }
                }
                Value::Map(out)
            }
            Self::Bool(b) => Value::Bool(*b),
            Self::Null => Value::Null,
        }
    }
}

fn integer() -> impl Strategy<Value = u64> {
    // Every head width, and its edges.
    prop_oneof![
        0u64..30,
        prop::sample::select(vec![
            23,
            24,
            255,
            256,
            65_535,
            65_536,
            u64::from(u32::MAX),
            1 << 32,
            u64::MAX
        ]),
        any::<u64>(),
    ]
}

fn owned() -> impl Strategy<Value = Owned> {
    let leaf = prop_oneof![
        integer().prop_map(Owned::Unsigned),
        integer().prop_map(Owned::Negative),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Owned::Bytes),
        ".{0,30}".prop_map(Owned::Text),
        any::<bool>().prop_map(Owned::Bool),
        Just(Owned::Null),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Owned::Array),
            prop::collection::vec((inner.clone(), inner), 0..8).prop_map(Owned::Map),
        ]
    })
}

proptest! {
    #[test]
    fn encoded_values_decode_to_themselves(owned in owned()) {
        let value = owned.value();
        let bytes = value.to_vec();
        let decoded = cbor::decode(&bytes, &Limits::DEFAULT).unwrap();
        prop_assert_eq!(&decoded, &value);
        prop_assert_eq!(decoded.to_vec(), bytes.clone());
        // No proper prefix is a whole item.
        for cut in 0..bytes.len() {
            let err = cbor::decode(&bytes[..cut], &Limits::DEFAULT).unwrap_err();
            prop_assert!(
                matches!(err.kind(), CborErrorKind::Truncated | CborErrorKind::LengthExceedsInput),
                "{:?}", err
            );
        }
        // Nor is it followed by anything.
        let mut longer = bytes.clone();
        longer.push(0x00);
        prop_assert_eq!(
            cbor::decode(&longer, &Limits::DEFAULT).unwrap_err().kind(),
            CborErrorKind::TrailingBytes
        );
    }

    #[test]
    fn accepted_bytes_are_the_preferred_serialization(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(value) = cbor::decode(&bytes, &Limits::DEFAULT) {
            prop_assert_eq!(value.to_vec(), bytes);
        }
    }

    #[test]
    fn tagged_values_round_trip(owned in owned(), tag in integer()) {
        let value = owned.value();
        let mut bytes = Vec::new();
        cbor::encode_tag(tag, &mut bytes);
        value.encode(&mut bytes);
        let (got_tag, decoded) = cbor::decode_tagged(&bytes, &Limits::DEFAULT, &[tag]).unwrap();
        prop_assert_eq!(got_tag, Some(tag));
        prop_assert_eq!(decoded, value);
        let err = cbor::decode(&bytes, &Limits::DEFAULT).unwrap_err();
        prop_assert_eq!(err.kind(), CborErrorKind::TagNotAllowed { tag });
    }
}
