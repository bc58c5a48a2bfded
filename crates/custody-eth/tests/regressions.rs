//! Named regression tests for mistakes peers shipped (shared/DESIGN.md) and
//! for each rule of the strict decoder.
#![cfg(test)]

#[allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]
#[path = "support/common.rs"]
mod common;

use std::sync::{Arc, Mutex};

use common::*;
use custody_core::{
    Authorization as Consent, Denial, Digest32, Error as CoreError, IntentKind, KeyBackend,
    KeyKinds, KeyRef, KeySigner, Pending, PinnedKey, SharedBackend, SignRequest, Signed,
    SigningBackend,
};
use custody_eth::{
    Address, Authorization, Error, EthSigner, MessageSignature, PersonalMessage, Transaction,
    TxEip1559, TxEip4844, TxEip7702, TxLegacy, TxType, TypedData, U256, decode_signed, keccak256,
    personal_message_hash,
};
use serde_json::json;

/// The signed raw forms of the first ethers subset entry, one per type
/// (legacy, EIP-155, 1, 2, 3), plus a signed type 4 (ox).
fn valid_raws() -> Vec<Vec<u8>> {
    let v = load_json("eth-tx/ethers_transactions_subset_with_hashes.json");
    let signed = &v["vectors"][0]["signed"];
    let mut out: Vec<Vec<u8>> = [
        "signedLegacy",
        "signedEip155",
        "signedBerlin",
        "signedLondon",
        "signedCancun",
    ]
    .iter()
    .map(|k| unhex(signed[*k]["raw"].as_str().unwrap()))
    .collect();
    let ox = load_json("eth-tx/eip7702_ox_vectors.json");
    out.push(unhex(
        ox["transactions"][0]["signed_serialized"].as_str().unwrap(),
    ));
    out
}

/// Splits a raw transaction into its type byte (if any) and the raw RLP of
/// each list item, lets `f` edit the items, and re-encodes.
fn rewrite(raw: &[u8], f: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let (ty, body) = if raw[0] < 0x80 {
        (Some(raw[0]), &raw[1..])
    } else {
        (None, raw)
    };
    let list = rlp::Rlp::new(body);
    let mut items: Vec<Vec<u8>> = list.iter().map(|i| i.as_raw().to_vec()).collect();
    f(&mut items);
    let mut s = rlp::RlpStream::new_list(items.len());
    for item in &items {
        s.append_raw(item, 1);
    }
    let mut out: Vec<u8> = ty.into_iter().collect();
    out.extend_from_slice(&s.out());
    out
}

fn rlp_bytes(b: &[u8]) -> Vec<u8> {
    let mut s = rlp::RlpStream::new();
    s.append(&b);
    s.out().to_vec()
}

fn rlp_u256(v: &U256) -> Vec<u8> {
    rlp_bytes(v.minimal_be_bytes())
}

fn signer() -> EthSigner {
    signer_for("0x4646464646464646464646464646464646464646464646464646464646464646")
}

/// `n - s` for the secp256k1 order `n` (big-endian byte subtraction).
fn order_minus(s: &U256) -> U256 {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];
    let s = s.to_be_bytes();
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        out[i] = (d + 256 * borrow) as u8;
    }
    U256::from_be_bytes(out)
}

// ------------------------------------------------------ peers' mistakes

#[test]
fn eip155_v_for_chain_id_above_2_pow_32() {
    // Regression: `v` kept in a 32-bit (or 64-bit) integer overflows for
    // large chain ids. v = chainId * 2 + 35 + parity, in u128.
    let signer = signer();
    let mut parities = [false; 2];
    for chain_id in [
        (1u64 << 32) - 1,
        1 << 32,
        (1 << 32) + 1,
        0x1_a5ee_289c,
        1 << 62,
        (1 << 63) + 7,
        u64::MAX,
    ] {
        for nonce in 0..4 {
            let tx = Transaction::from(TxLegacy {
                chain_id: Some(chain_id),
                nonce,
                gas_price: U256::from_u64(1),
                gas_limit: 21_000,
                to: Some(Address([0x35; 20])),
                ..TxLegacy::default()
            });
            let signed = signer
                .sign_transaction(&tx, &Consent::none())
                .wait()
                .unwrap();
            let parity = signed.signature().y_parity();
            parities[usize::from(parity)] = true;
            let v = u128::from(chain_id) * 2 + 35 + u128::from(parity);
            assert_eq!(signed.v(), v);
            // The encoded v is that number, minimal big-endian.
            let list = rlp::Rlp::new(signed.encoded());
            let encoded_v: Vec<u8> = list.at(6).unwrap().data().unwrap().to_vec();
            assert_eq!(encoded_v, U256::from_u128(v).minimal_be_bytes());
            if chain_id >= 1 << 63 {
                assert_eq!(encoded_v.len(), 9, "this v does not even fit a u64");
            }
            // And it decodes back to the chain id and the sender.
            let decoded = decode_signed(signed.encoded()).unwrap();
            assert_eq!(decoded.transaction().chain_id(), Some(chain_id));
            assert_eq!(decoded, signed);
            assert_eq!(decoded.recover_sender().unwrap(), signer.address());
        }
    }
    assert_eq!(parities, [true, true], "both parities exercised");
}

#[test]
fn unsupported_type_is_not_signed_as_legacy() {
    // Regression: an unknown type byte read (or signed) as legacy.
    assert!(matches!(
        TxType::try_from(5),
        Err(Error::UnsupportedType(5))
    ));
    assert!(matches!(
        TxType::try_from(0x7f),
        Err(Error::UnsupportedType(0x7f))
    ));
    for t in 0..=4u8 {
        assert_eq!(TxType::try_from(t).unwrap().as_u8(), t);
    }
    let raws = valid_raws();
    let legacy = &raws[0];
    let eip1559 = &raws[3];
    assert!(decode_signed(legacy).is_ok());
    for t in std::iter::once(0u8).chain(5..=0x7f) {
        // A valid legacy transaction behind an unknown type byte...
        let mut prefixed = vec![t];
        prefixed.extend_from_slice(legacy);
        assert!(matches!(decode_signed(&prefixed), Err(Error::UnsupportedType(x)) if x == t));
        // ... and a valid type 2 body relabelled.
        let mut relabelled = eip1559.clone();
        relabelled[0] = t;
        assert!(matches!(decode_signed(&relabelled), Err(Error::UnsupportedType(x)) if x == t));
    }
    for b in 0x80..=0xbfu8 {
        assert!(matches!(decode_signed(&[b, 0, 0]), Err(Error::NotATransaction(x)) if x == b));
    }
    // The type of what is signed is carried through: a type 2 transaction
    // signs and encodes as type 2.
    let tx = Transaction::from(TxEip1559 {
        chain_id: 1,
        ..TxEip1559::default()
    });
    let signed = signer()
        .sign_transaction(&tx, &Consent::none())
        .wait()
        .unwrap();
    assert_eq!(signed.encoded()[0], 2);
    assert_eq!(
        decode_signed(signed.encoded())
            .unwrap()
            .transaction()
            .tx_type(),
        TxType::Eip1559
    );
}

#[test]
fn blob_and_setcode_tx_without_to_are_rejected() {
    // Construction: `to` of types 3 and 4 is an `Address`, not an `Option`,
    // so a value without a recipient does not type-check. Decoding: an empty
    // `to` is a typed error, even under a valid signature.
    let signer = signer();
    let blob = Transaction::from(TxEip4844 {
        chain_id: 1,
        blob_versioned_hashes: vec![[1; 32]],
        ..TxEip4844::default()
    });
    let setcode = Transaction::from(TxEip7702 {
        chain_id: 1,
        ..TxEip7702::default()
    });
    for (tx, ty) in [(blob, TxType::Eip4844), (setcode, TxType::Eip7702)] {
        assert!(tx.to().is_some());
        let signed = signer
            .sign_transaction(&tx, &Consent::none())
            .wait()
            .unwrap();
        assert!(decode_signed(signed.encoded()).is_ok());
        let no_to = rewrite(signed.encoded(), |items| items[5] = vec![0x80]);
        assert!(
            matches!(decode_signed(&no_to), Err(Error::MissingTo(t)) if t == ty),
            "{ty}"
        );
    }
    // Types 0 to 2 may create contracts.
    let raws = valid_raws();
    for raw in &raws[..4] {
        let to_index = if raw[0] >= 0xc0 {
            3
        } else if raw[0] == 1 {
            4
        } else {
            5
        };
        let creation = rewrite(raw, |items| items[to_index] = vec![0x80]);
        let decoded = decode_signed(&creation).unwrap();
        assert_eq!(decoded.transaction().to(), None);
    }
}

#[test]
fn high_s_in_raw_tx_is_rejected() {
    // Regression: accepting (or producing) s > n/2, forbidden by EIP-2. The
    // malleated signature (r, n - s) with the parity flipped is
    // mathematically valid for the same key; only the rule rejects it.
    for raw in valid_raws() {
        let decoded = decode_signed(&raw).unwrap();
        let s = U256::from_be_bytes(*decoded.signature().s());
        let high = order_minus(&s);
        assert!(high > s);
        let malleated = rewrite(&raw, |items| {
            let n = items.len();
            items[n - 1] = rlp_u256(&high);
            // Flip the parity so the pair still recovers the same key.
            let p = u128::from(decoded.signature().y_parity());
            let v = decoded.v() - p + (1 - p);
            items[n - 3] = rlp_u256(&U256::from_u128(v));
        });
        assert!(
            matches!(decode_signed(&malleated), Err(Error::HighS)),
            "type {}",
            raw[0]
        );
    }
}

// --------------------------------------------------- the decoder's rules

#[test]
fn decoder_rejects_each_malformation_with_a_typed_error() {
    assert!(matches!(decode_signed(&[]), Err(Error::Empty)));
    for raw in valid_raws() {
        let ty = raw[0];
        let typed = ty < 0x80;
        // Wrong field count: one missing, one extra.
        let short = rewrite(&raw, |items| {
            items.pop();
        });
        assert!(
            matches!(decode_signed(&short), Err(Error::FieldCount { .. })),
            "{ty}"
        );
        let long = rewrite(&raw, |items| items.push(vec![0x80]));
        assert!(
            matches!(decode_signed(&long), Err(Error::FieldCount { .. })),
            "{ty}"
        );
        // Trailing bytes.
        let mut trailing = raw.clone();
        trailing.push(0);
        assert!(
            matches!(decode_signed(&trailing), Err(Error::TrailingBytes)),
            "{ty}"
        );
        // The nonce (field 0 of legacy, 1 of typed) with a leading zero, and
        // as a non-canonical single byte.
        let nonce = usize::from(typed);
        let zeros = rewrite(&raw, |items| items[nonce] = vec![0x83, 0x00, 0x02, 0x88]);
        assert!(
            matches!(decode_signed(&zeros), Err(Error::LeadingZeros("nonce"))),
            "{ty}"
        );
        let wrapped = rewrite(&raw, |items| items[nonce] = vec![0x81, 0x05]);
        assert!(
            matches!(
                decode_signed(&wrapped),
                Err(Error::Rlp { field: "nonce", .. })
            ),
            "{ty}"
        );
        // A nonce wider than 64 bits.
        let wide = rewrite(&raw, |items| items[nonce] = rlp_bytes(&[1; 9]));
        assert!(
            matches!(decode_signed(&wide), Err(Error::Overflow("nonce"))),
            "{ty}"
        );
        // `to` of 19 and 21 bytes.
        let to = if !typed {
            3
        } else if ty == 1 {
            4
        } else {
            5
        };
        for len in [19, 21] {
            let bad = rewrite(&raw, |items| items[to] = rlp_bytes(&vec![0x11; len]));
            assert!(
                matches!(decode_signed(&bad), Err(Error::InvalidLength { field: "to", found, .. }) if found == len),
                "{ty}"
            );
        }
        // A list where bytes belong.
        let list = rewrite(&raw, |items| items[nonce] = vec![0xc0]);
        assert!(
            matches!(decode_signed(&list), Err(Error::Rlp { field: "nonce", .. })),
            "{ty}"
        );
        // r = 0.
        let zero_r = rewrite(&raw, |items| {
            let n = items.len();
            items[n - 2] = vec![0x80];
        });
        assert!(
            matches!(decode_signed(&zero_r), Err(Error::InvalidSignature)),
            "{ty}"
        );
        // Invalid v / yParity.
        if typed {
            for y in [2u8, 27, 0x7f] {
                let bad = rewrite(&raw, |items| {
                    let n = items.len();
                    items[n - 3] = vec![y];
                });
                assert!(
                    matches!(decode_signed(&bad), Err(Error::InvalidYParity)),
                    "{ty}"
                );
            }
        } else {
            for v in [0u64, 1, 26, 29, 34] {
                let bad = rewrite(&raw, |items| items[6] = rlp_u256(&U256::from_u64(v)));
                assert!(matches!(decode_signed(&bad), Err(Error::InvalidV)), "v={v}");
            }
            // A chain id above u64.
            let v = U256::from_u128(u128::from(u64::MAX) * 2 + 37);
            let bad = rewrite(&raw, |items| items[6] = rlp_u256(&v));
            assert!(matches!(decode_signed(&bad), Err(Error::InvalidV)));
        }
    }
}

// ------------------------------------------------ intents reach the gates

/// A gate that records the intent of every request and can deny them all.
#[derive(Debug)]
struct RecordingGate {
    inner: SharedBackend,
    seen: Mutex<Vec<(IntentKind, bool)>>,
    deny: bool,
}

impl KeyBackend for RecordingGate {
    fn name(&self) -> &str {
        "recording-gate"
    }
    fn signing(&self) -> Option<&dyn SigningBackend> {
        Some(self)
    }
}

impl SigningBackend for RecordingGate {
    fn key_kinds(&self) -> KeyKinds {
        self.inner.signing().unwrap().key_kinds()
    }
    fn pin<'a>(&'a self, key: &'a KeyRef) -> Pending<'a, Result<PinnedKey, CoreError>> {
        self.inner.signing().unwrap().pin(key)
    }
    fn sign_digest<'a>(
        &'a self,
        request: SignRequest<'a>,
    ) -> Pending<'a, Result<Signed, CoreError>> {
        let detail = request.intent.detail();
        let typed_ok = match request.intent.kind() {
            IntentKind::Transaction => detail
                .and_then(|d| d.downcast_ref::<Transaction>())
                .is_some_and(|tx| tx.signing_hash() == request.digest),
            IntentKind::Authorization => detail
                .and_then(|d| d.downcast_ref::<Authorization>())
                .is_some_and(|a| a.signing_hash() == request.digest),
            IntentKind::PersonalMessage => detail
                .and_then(|d| d.downcast_ref::<PersonalMessage>())
                .is_some_and(|m| m.signing_hash() == request.digest),
            IntentKind::TypedData => detail
                .and_then(|d| d.downcast_ref::<TypedData>())
                .is_some_and(|t| t.signing_hash() == request.digest),
            IntentKind::RawDigest => detail.is_none(),
            _ => false,
        };
        self.seen
            .lock()
            .unwrap()
            .push((request.intent.kind(), typed_ok));
        if self.deny {
            return Pending::ready(Err(CoreError::Denied(Denial::TotpRequired)));
        }
        self.inner.signing().unwrap().sign_digest(request)
    }
}

#[test]
fn every_entry_point_presents_its_intent_to_the_gates() {
    // Regression: a raw-hash path that skips the checks the typed paths get.
    let inner = signer().key_signer().backend().clone();
    for deny in [false, true] {
        let gate = Arc::new(RecordingGate {
            inner: inner.clone(),
            seen: Mutex::default(),
            deny,
        });
        let backend: SharedBackend = gate.clone();
        let key = KeyRef::Stored(custody_core::KeyId::new("test").unwrap());
        let signer = EthSigner::new(KeySigner::pin(backend, key).wait().unwrap()).unwrap();
        let consent = Consent::none();
        let tx = Transaction::from(TxEip1559 {
            chain_id: 1,
            ..TxEip1559::default()
        });
        let auth = Authorization {
            chain_id: U256::from_u64(1),
            ..Authorization::default()
        };
        let message = PersonalMessage::from_text("hello");
        let typed = TypedData::from_json_value(&mail()).unwrap();
        let results = [
            signer.sign_transaction(&tx, &consent).wait().err(),
            signer.sign_authorization(&auth, &consent).wait().err(),
            signer
                .sign_personal_message(&message, &consent)
                .wait()
                .err(),
            signer.sign_typed_data(&typed, &consent).wait().err(),
            signer
                .sign_hash_raw(Digest32([7; 32]), &consent)
                .wait()
                .err(),
        ];
        for r in results {
            if deny {
                assert!(matches!(
                    r,
                    Some(Error::Core(CoreError::Denied(Denial::TotpRequired)))
                ));
            } else {
                assert!(r.is_none());
            }
        }
        assert_eq!(
            *gate.seen.lock().unwrap(),
            [
                (IntentKind::Transaction, true),
                (IntentKind::Authorization, true),
                (IntentKind::PersonalMessage, true),
                (IntentKind::TypedData, true),
                (IntentKind::RawDigest, true)
            ]
        );
    }
}

#[test]
fn signatures_verify_against_the_signer_address() {
    let signer = signer();
    let digest = Digest32([9; 32]);
    let sig = signer
        .sign_hash_raw(digest, &Consent::none())
        .wait()
        .unwrap();
    let key = sig.recover(&digest).unwrap();
    assert_eq!(Address::from_public_key(&key), signer.address());
    assert!(format!("{signer:?}").contains(&signer.address().to_checksum()));
}

// ------------------------------------------------- JSON and messages

#[test]
fn input_and_data_are_the_same_field() {
    // Regression: calldata dropped because one side wrote `input` and the
    // other read `data`. Either name is read, both are written, and two
    // different values are an error rather than a silent choice.
    let base = json!({
        "type": "0x2", "chainId": "0x1", "nonce": "0x0", "gas": "0x5208",
        "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1",
        "to": "0x3535353535353535353535353535353535353535"
    });
    let calldata = vec![0xa9, 0x05, 0x9c, 0xbb, 0x00, 0x01];
    let with = |pairs: &[(&str, &str)]| {
        let mut v = base.clone();
        for (k, val) in pairs {
            v[*k] = json!(val);
        }
        Transaction::from_json_value(&v)
    };
    let by_input = with(&[("input", "0xa9059cbb0001")]).unwrap();
    let by_data = with(&[("data", "0xa9059cbb0001")]).unwrap();
    let by_both = with(&[("input", "0xa9059cbb0001"), ("data", "0xA9059CBB0001")]).unwrap();
    for tx in [&by_input, &by_data, &by_both] {
        assert_eq!(tx.data(), calldata);
    }
    assert_eq!(by_input, by_data);
    assert_eq!(by_input, by_both);
    assert!(matches!(
        with(&[("input", "0xa9059cbb0001"), ("data", "0x")]),
        Err(Error::ConflictingFields {
            field: "input",
            other: "data"
        })
    ));
    assert!(matches!(
        with(&[("input", "0x"), ("data", "0xa9059cbb0001")]),
        Err(Error::ConflictingFields { .. })
    ));
    // Written under both names, so a reader of either one gets the calldata.
    let out = by_input.to_json();
    assert_eq!(out["input"], json!("0xa9059cbb0001"));
    assert_eq!(out["data"], json!("0xa9059cbb0001"));
    for drop in ["input", "data"] {
        let mut one = out.clone();
        one.as_object_mut().unwrap().remove(drop);
        assert_eq!(
            Transaction::from_json_value(&one).unwrap(),
            by_input,
            "{drop}"
        );
    }
    // The signed transaction carries the calldata, and so does its JSON.
    let signed = signer()
        .sign_transaction(&by_data, &Consent::none())
        .wait()
        .unwrap();
    assert_eq!(
        decode_signed(signed.encoded())
            .unwrap()
            .transaction()
            .data(),
        calldata
    );
    let out = signed.to_json().unwrap();
    assert_eq!(out["input"], out["data"]);
    assert_eq!(out["input"], json!("0xa9059cbb0001"));
}

/// The EIP's Mail example.
fn mail() -> serde_json::Value {
    load_json("eip712/eip712_mail.json")["typedData"].clone()
}

#[test]
fn eip155_v_is_never_applied_to_messages() {
    // Regression: EIP-155 `v` (chainId * 2 + 35/36) applied to EIP-191 and
    // EIP-712 signatures. Message signatures carry 27/28 whatever the chain,
    // and a parsed signature with an EIP-155 v is refused.
    let signer = signer();
    let mut parities = [false; 2];
    for chain_id in [1u64, 5, 137, 0x1_a5ee_289c, u64::MAX] {
        // The same key's EIP-155 transaction does carry the chain in v...
        let tx = Transaction::from(TxLegacy {
            chain_id: Some(chain_id),
            ..TxLegacy::default()
        });
        let signed_tx = signer
            .sign_transaction(&tx, &Consent::none())
            .wait()
            .unwrap();
        assert!(signed_tx.v() >= 37);
        // ... its messages never do, whatever the domain's chain.
        let mut typed = mail();
        typed["domain"]["chainId"] = json!(chain_id.to_string());
        let typed = TypedData::from_json_value(&typed).unwrap();
        let message = PersonalMessage::from_text(&format!("chain {chain_id}"));
        for sig in [
            signer
                .sign_typed_data(&typed, &Consent::none())
                .wait()
                .unwrap(),
            signer
                .sign_personal_message(&message, &Consent::none())
                .wait()
                .unwrap(),
        ] {
            let bytes = sig.to_bytes();
            assert!(bytes[64] == 27 || bytes[64] == 28, "v = {}", bytes[64]);
            assert_eq!(bytes[64], sig.v());
            assert_eq!(sig.v(), 27 + u8::from(sig.signature().y_parity()));
            parities[usize::from(sig.signature().y_parity())] = true;
            // The EIP-155 form of the same signature is not accepted.
            let mut eip155 = bytes;
            let v155 = u128::from(chain_id) * 2 + 35 + u128::from(sig.signature().y_parity());
            eip155[64] = u8::try_from(v155 % 256).unwrap();
            if !matches!(eip155[64], 0 | 1 | 27 | 28) {
                assert!(matches!(
                    MessageSignature::from_bytes(&eip155),
                    Err(Error::InvalidV)
                ));
            }
        }
    }
    assert_eq!(parities, [true, true], "both parities exercised");
    // The public vectors agree: v = 27/28 (ethers, viem; EIP-712 Mail: 28).
    let v = load_json("eip191/eip191_personal_sign_vectors.json");
    for case in v["vectors"].as_array().unwrap() {
        let sig = unhex(case["signature"].as_str().unwrap());
        assert!(sig[64] == 27 || sig[64] == 28);
    }
}

#[test]
fn typed_data_is_not_hashed_with_the_personal_prefix() {
    // Regression: typed data hashed as a personal message (with the
    // "\x19Ethereum Signed Message:\n" prefix) instead of with "\x19\x01".
    let v = load_json("eip712/eip712_mail.json");
    let e = &v["expected"];
    let separator = hex32(e["domainSeparator"].as_str().unwrap());
    let struct_hash = hex32(e["hashStruct_Mail"].as_str().unwrap());
    let mut preimage = vec![0x19, 0x01];
    preimage.extend_from_slice(&separator);
    preimage.extend_from_slice(&struct_hash);
    let digest = keccak256(&preimage);
    assert_eq!(digest, hex32(e["digest"].as_str().unwrap()));

    let typed = TypedData::from_json_value(&v["typedData"]).unwrap();
    assert_eq!(typed.signing_hash().0, digest);
    // None of the personal-prefix variants peers computed.
    let text = serde_json::to_string(&v["typedData"]).unwrap();
    for wrong in [
        personal_message_hash(&preimage),
        personal_message_hash(&digest),
        personal_message_hash(&struct_hash),
        personal_message_hash(text.as_bytes()),
    ] {
        assert_ne!(typed.signing_hash(), wrong);
    }
    // The signature is the EIP's, over the 0x1901 digest.
    let signer = signer_for(e["signer_private_key"].as_str().unwrap());
    let sig = signer
        .sign_typed_data(&typed, &Consent::none())
        .wait()
        .unwrap();
    assert_eq!(
        sig.signature().r(),
        &hex32(e["signature"]["r"].as_str().unwrap())
    );
    assert_eq!(
        sig.signature().s(),
        &hex32(e["signature"]["s"].as_str().unwrap())
    );
    assert_eq!(
        sig.recover_address(&Digest32(digest)).unwrap(),
        signer.address()
    );
    assert_ne!(
        sig.recover_address(&personal_message_hash(&preimage)).ok(),
        Some(signer.address())
    );
}

#[test]
fn typed_data_api_takes_no_prehashed_digest() {
    // Regression: typed-data signing APIs that take a digest the caller
    // computed, so that what a gate is shown and what is signed can differ.
    // `sign_typed_data` takes a `TypedData`, which only parsing makes; the
    // gate gets it as the intent detail and the digest signed is its hash.
    let inner = signer().key_signer().backend().clone();
    let gate = Arc::new(RecordingGate {
        inner,
        seen: Mutex::default(),
        deny: false,
    });
    let backend: SharedBackend = gate.clone();
    let key = KeyRef::Stored(custody_core::KeyId::new("test").unwrap());
    let signer = EthSigner::new(KeySigner::pin(backend, key).wait().unwrap()).unwrap();
    let typed = TypedData::from_json_value(&mail()).unwrap();
    let sig = signer
        .sign_typed_data(&typed, &Consent::none())
        .wait()
        .unwrap();
    assert_eq!(typed.recover_signer(&sig).unwrap(), signer.address());
    // A caller holding only the digest can sign it solely through the raw
    // entry point, and the gate sees it as a raw digest with no detail.
    let raw = signer
        .sign_hash_raw(typed.signing_hash(), &Consent::none())
        .wait()
        .unwrap();
    assert_eq!(raw, *sig.signature());
    assert_eq!(
        *gate.seen.lock().unwrap(),
        [(IntentKind::TypedData, true), (IntentKind::RawDigest, true)]
    );
    // A digest is not typed data: the reader does not take one.
    let digest_hex = format!("0x{}", hex::encode(typed.signing_hash().0));
    for not_typed in [
        json!(digest_hex),
        json!({ "digest": digest_hex }),
        json!({ "types": {}, "primaryType": "", "domain": {}, "message": digest_hex }),
    ] {
        assert!(
            TypedData::from_json_value(&not_typed).is_err(),
            "{not_typed}"
        );
    }
}
