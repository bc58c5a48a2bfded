//! The body of the `raw_tx` cargo-fuzz target in `fuzz/`. **Not part of the
//! API**: hidden from the docs, and free to change in any release.
//!
//! As in `custody_core::fuzzing`: `fuzz/fuzz_targets/raw_tx.rs` calls
//! [`fuzz_raw_tx`] in one line, and `tests/fuzz_corpus.rs` (stable, in CI)
//! feeds it every input under `fuzz/seeds/raw_tx/` and
//! `fuzz/regressions/raw_tx/`. It **panics when a property fails**.

use std::fmt;

use custody_core::RecoverableSignature;

use crate::{Error, SignedTransaction, Transaction, TxType, TypedData, decode_signed, keccak256};

/// The body of a fuzz target: arbitrary bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target of this crate: its name (the file
/// `fuzz/fuzz_targets/<name>.rs` and the directories `fuzz/seeds/<name>/`,
/// `fuzz/regressions/<name>/`) and its body.
pub const TARGETS: &[(&str, Target)] = &[
    ("raw_tx", fuzz_raw_tx),
    ("tx_json", fuzz_tx_json),
    ("typed_data", fuzz_typed_data),
    ("keystore_v3", fuzz_keystore_v3),
];

/// The value of `result`, or a panic naming the property that failed.
#[expect(
    clippy::panic,
    reason = "a failed property must abort the fuzz run: that is the report"
)]
fn must<T, E: fmt::Debug>(result: Result<T, E>, property: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{property}: {e:?}"),
    }
}

/// Whether `e` is one of the errors [`SignedTransaction::decode`] documents.
fn is_decode_error(e: &Error) -> bool {
    matches!(
        e,
        Error::Empty
            | Error::NotATransaction(_)
            | Error::UnsupportedType(_)
            | Error::Rlp { .. }
            | Error::TrailingBytes
            | Error::FieldCount { .. }
            | Error::InvalidLength { .. }
            | Error::LeadingZeros(_)
            | Error::Overflow(_)
            | Error::MissingTo(_)
            | Error::InvalidV
            | Error::InvalidYParity
            | Error::HighS
            | Error::InvalidSignature
    )
}

/// `SignedTransaction::decode` (`decode_signed`): only documented errors;
/// its final canonical-encoding check never fires (the field decoders are
/// strict on their own); an accepted transaction re-encodes to the input,
/// hashes to Keccak-256 of it, has a normalized signature and a `v` that
/// matches its chain id, and sender recovery, `max_cost` and authority
/// recovery return typed results.
pub fn fuzz_raw_tx(data: &[u8]) {
    let signed = match SignedTransaction::decode(data) {
        Ok(signed) => signed,
        Err(e) => {
            assert!(is_decode_error(&e), "undocumented decode error: {e:?}");
            assert!(
                !matches!(
                    e,
                    Error::Rlp {
                        field: "transaction",
                        reason: "non-canonical encoding",
                    }
                ),
                "a field decoder accepted bytes that do not re-encode to the input"
            );
            return;
        }
    };
    assert_eq!(signed.encoded(), data, "encode(decode(b)) == b");
    assert_eq!(signed.hash(), keccak256(data));
    assert_eq!(
        must(decode_signed(signed.encoded()), "re-decodes"),
        signed,
        "decode(encode(t)) == t"
    );

    let tx = signed.transaction();
    let sig = *signed.signature();
    assert_eq!(tx.encode_signed(&sig), data);
    assert_eq!(tx.tx_hash(&sig), signed.hash());
    assert_eq!(SignedTransaction::new(tx.clone(), sig), signed);
    assert_eq!(tx.signing_hash().0, keccak256(&tx.encode_unsigned()));
    assert_eq!(
        must(
            RecoverableSignature::from_parts(*sig.r(), *sig.s(), sig.y_parity()),
            "the signature is normalized (0 < r < n, 0 < s <= n/2)",
        ),
        sig
    );

    // The envelope: a type byte for typed transactions, a bare RLP list for
    // legacy ones; the `rlp` crate reads the same list, filling the input.
    let body = match tx.tx_type() {
        TxType::Legacy => {
            assert!(data[0] >= 0xc0);
            data
        }
        t => {
            assert_eq!(data[0], t.as_u8());
            &data[1..]
        }
    };
    let list = rlp::Rlp::new(body);
    assert!(list.is_list());
    let info = must(list.payload_info(), "the rlp crate reads the list");
    assert_eq!(info.header_len + info.value_len, body.len());

    // `v`: yParity for typed transactions; 27/28 or EIP-155 for legacy.
    let parity = u128::from(sig.y_parity());
    let expected_v = match (tx, tx.chain_id()) {
        (Transaction::Legacy(_), None) => 27 + parity,
        (Transaction::Legacy(_), Some(id)) => u128::from(id) * 2 + 35 + parity,
        _ => parity,
    };
    assert_eq!(signed.v(), expected_v);

    match signed.recover_sender() {
        Ok(_) | Err(Error::InvalidSignature) => {}
        Err(e) => must(Err(e), "recover_sender fails only with InvalidSignature"),
    }
    match tx.max_cost() {
        Ok(_) | Err(Error::Overflow("max_cost")) => {}
        Err(e) => must(Err(e), "max_cost fails only with Overflow"),
    }
    if let Transaction::Eip7702(t) = tx {
        for a in &t.authorization_list {
            match a.recover_authority() {
                Ok(_) | Err(Error::InvalidYParity | Error::HighS | Error::InvalidSignature) => {}
                Err(e) => must(Err(e), "recover_authority fails with a typed error"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// tx_json
// ---------------------------------------------------------------------------

/// The JSON-RPC transaction object (`Transaction::from_json_str`, and the
/// signed form `SignedTransaction::from_json_str`): never a panic; an
/// accepted unsigned transaction writes JSON that reads back to the same
/// transaction with the same signing hash.
pub fn fuzz_tx_json(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tx) = Transaction::from_json_str(s) {
        let json = tx.to_json();
        let again = must(
            Transaction::from_json_value(&json),
            "written transaction JSON re-reads",
        );
        assert_eq!(again, tx, "JSON round trip");
        assert_eq!(again.signing_hash(), tx.signing_hash());
    }
    if let Ok(signed) = SignedTransaction::from_json_str(s) {
        let again = must(
            SignedTransaction::decode(signed.encoded()),
            "a transaction read from JSON decodes from its own encoding",
        );
        assert_eq!(again.encoded(), signed.encoded());
    }
}

// ---------------------------------------------------------------------------
// typed_data
// ---------------------------------------------------------------------------

/// EIP-712 typed data as `eth_signTypedData_v4` takes it: never a panic; an
/// accepted document writes JSON that reads back to the same document with
/// the same digest.
pub fn fuzz_typed_data(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(typed) = TypedData::from_json_str(s) else {
        return;
    };
    let digest = typed.signing_hash();
    let again = must(
        TypedData::from_json_value(&typed.to_json()),
        "written typed data re-reads",
    );
    assert_eq!(
        again.signing_hash(),
        digest,
        "digest survives the round trip"
    );
}

// ---------------------------------------------------------------------------
// keystore_v3
// ---------------------------------------------------------------------------

/// Web3 Secret Storage v3 JSON (`keystore_v3::parse`): never a panic, KDF
/// cost bounded before any work; when the KDF is cheap, decryption with a
/// fixed password gives a key or a typed error, never a panic.
pub fn fuzz_keystore_v3(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ks) = crate::keystore_v3::parse(s) else {
        return;
    };
    if ks.kdf().work() <= 1 << 14 {
        let password = custody_core::Passphrase::from_str_copy("testpassword");
        let _ = ks.decrypt(&password);
    }
}
