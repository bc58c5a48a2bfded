//! Signing through the C ABI: a transaction, an EIP-191 personal message
//! and EIP-712 typed data, each from the same input the CLI takes and
//! through the same gates (`Audited(TotpGate(...))`), the TOTP code an
//! argument. Results are the CLI's JSON objects.

use std::ffi::c_char;

use custody_core::{Authorization, Digest32, ErrorReport};
use custody_eth::{EthSigner, MessageSignature, PersonalMessage, Transaction, TypedData};
use serde_json::{Value, json};

use crate::error::{CustodyError, enter};
use crate::input::{self, Out};
use crate::keystore::{CustodyKeystore, handle, hex0x};
use crate::memory::hand_out_string;

/// The authorization a code argument gives: NULL is none.
pub(crate) fn consent(code: Option<&str>) -> Authorization {
    code.map_or_else(Authorization::none, Authorization::totp)
}

/// A JSON number when it fits in 64 bits, else a 0x quantity (as the CLI).
fn quantity(v: u128) -> Value {
    u64::try_from(v).map_or_else(|_| Value::String(format!("0x{v:x}")), |n| json!(n))
}

fn message_json(digest: Digest32, sig: &MessageSignature, signer: &EthSigner) -> Value {
    json!({
        "digest": hex0x(digest.0),
        "signature": sig.to_string(),
        "address": signer.address().to_checksum(),
    })
}

/// Signs `tx` with `signer` (gated): the CLI's `sign-tx` result.
pub(crate) fn transaction_json(
    signer: &EthSigner,
    tx: &Transaction,
    code: Option<&str>,
) -> Result<Value, ErrorReport> {
    let signed = signer
        .sign_transaction(tx, &consent(code))
        .wait()
        .map_err(ErrorReport::from)?;
    let sig = signed.signature();
    Ok(json!({
        "raw": hex0x(signed.encoded()),
        "hash": hex0x(signed.hash()),
        "signingHash": hex0x(signed.signing_hash().0),
        "from": signer.address().to_checksum(),
        "r": hex0x(sig.r()),
        "s": hex0x(sig.s()),
        "v": quantity(signed.v()),
    }))
}

/// Signs an EIP-191 personal message with `signer` (gated): the CLI's
/// `sign-message` result.
pub(crate) fn personal_message_json(
    signer: &EthSigner,
    message: &PersonalMessage,
    code: Option<&str>,
) -> Result<Value, ErrorReport> {
    let sig = signer
        .sign_personal_message(message, &consent(code))
        .wait()
        .map_err(ErrorReport::from)?;
    Ok(message_json(message.signing_hash(), &sig, signer))
}

/// Signs EIP-712 typed data with `signer` (gated): the CLI's
/// `sign-typed-data` result.
pub(crate) fn typed_data_result(
    signer: &EthSigner,
    typed: &TypedData,
    code: Option<&str>,
) -> Result<Value, ErrorReport> {
    let sig = signer
        .sign_typed_data(typed, &consent(code))
        .wait()
        .map_err(ErrorReport::from)?;
    Ok(message_json(typed.signing_hash(), &sig, signer))
}

/// Signs one transaction given as Ethereum JSON-RPC JSON (exactly what
/// `custody sign-tx --tx` reads: `type` 0x0-0x4, `chainId`, `nonce`, `to`,
/// `value`, `data`/`input`, `gas`, fees, `accessList`, blobs,
/// `authorizationList`) with the key of (`wallet`, `index`), and sets
/// `*out_json` to the CLI's result: `{"from", "hash", "r", "raw", "s",
/// "signingHash", "v"}`. Free it with `custody_string_free`.
///
/// `code` is the wallet's current TOTP code, or NULL: an enrolled wallet
/// refuses to sign without a valid, unused one.
///
/// Errors: `bad-input` (a null or non-UTF-8 argument, malformed JSON, the
/// message naming the field), `totp-required`, `totp-invalid`,
/// `totp-replayed`, `totp-locked`.
///
/// # Safety
/// `ks` is any value (it is looked up, not dereferenced); `wallet` and
/// `tx_json` are NULL or NUL-terminated strings, and so is `code`;
/// `out_json` is NULL or writable for one pointer; `err` is NULL or
/// writable for one `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_sign_transaction(
    ks: *const CustodyKeystore,
    wallet: *const c_char,
    index: u32,
    tx_json: *const c_char,
    code: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_json, "out_json")?;
            let handle = handle(ks)?;
            let wallet = input::text(wallet, "wallet")?;
            let text = input::text(tx_json, "tx_json")?;
            let code = input::optional_text(code, "code")?;
            let tx = Transaction::from_json_str(text).map_err(ErrorReport::from)?;
            let signer = handle.gated_signer(wallet, index)?;
            let value = transaction_json(&signer, &tx, code)?;
            out.set(hand_out_string(&value.to_string())?);
            Ok(())
        })
    }
}

/// Signs an EIP-191 personal message (`message_len` bytes at `message`;
/// the CLI's `sign-message --message-hex`, or `--message` for UTF-8 text)
/// with the key of (`wallet`, `index`), and sets `*out_json` to
/// `{"address", "digest", "signature"}` (65-byte r‖s‖v, v 27/28). Free it
/// with `custody_string_free`.
///
/// `code` as for `custody_sign_transaction`.
///
/// Errors: `bad-input`, `totp-required`, `totp-invalid`, `totp-replayed`,
/// `totp-locked`.
///
/// # Safety
/// `ks` is any value (it is looked up, not dereferenced); `wallet` is NULL
/// or a NUL-terminated string, and so is `code`; `message` is NULL (with
/// `message_len` 0) or readable for `message_len` bytes; `out_json` is NULL
/// or writable for one pointer; `err` is NULL or writable for one
/// `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_sign_message(
    ks: *const CustodyKeystore,
    wallet: *const c_char,
    index: u32,
    message: *const u8,
    message_len: usize,
    code: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_json, "out_json")?;
            let handle = handle(ks)?;
            let wallet = input::text(wallet, "wallet")?;
            let message =
                PersonalMessage::from_bytes(input::bytes(message, message_len, "message")?);
            let code = input::optional_text(code, "code")?;
            let signer = handle.gated_signer(wallet, index)?;
            let value = personal_message_json(&signer, &message, code)?;
            out.set(hand_out_string(&value.to_string())?);
            Ok(())
        })
    }
}

/// Signs EIP-712 typed data given as the JSON `eth_signTypedData_v4` takes
/// (`types`, `primaryType`, `domain`, `message`; what `custody
/// sign-typed-data --file` reads, strictly: an undeclared field is
/// refused) with the key of (`wallet`, `index`), and sets `*out_json` to
/// `{"address", "digest", "signature"}`. Free it with
/// `custody_string_free`.
///
/// `code` as for `custody_sign_transaction`.
///
/// Errors: `bad-input`, `totp-required`, `totp-invalid`, `totp-replayed`,
/// `totp-locked`.
///
/// # Safety
/// `ks` is any value (it is looked up, not dereferenced); `wallet` and
/// `typed_data_json` are NULL or NUL-terminated strings, and so is `code`;
/// `out_json` is NULL or writable for one pointer; `err` is NULL or
/// writable for one `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_sign_typed_data(
    ks: *const CustodyKeystore,
    wallet: *const c_char,
    index: u32,
    typed_data_json: *const c_char,
    code: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_json, "out_json")?;
            let handle = handle(ks)?;
            let wallet = input::text(wallet, "wallet")?;
            let text = input::text(typed_data_json, "typed_data_json")?;
            let code = input::optional_text(code, "code")?;
            let typed = TypedData::from_json_str(text).map_err(ErrorReport::from)?;
            let signer = handle.gated_signer(wallet, index)?;
            let value = typed_data_result(&signer, &typed, code)?;
            out.set(hand_out_string(&value.to_string())?);
            Ok(())
        })
    }
}
