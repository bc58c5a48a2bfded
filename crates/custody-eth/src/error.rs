//! The one error type of `custody-eth`.
//!
//! Variants carry only `&'static str` field names and reasons, small numbers
//! and the wrapped [`custody_core::Error`]: nothing taken from the input, so
//! an error can be logged without leaking what was being signed.

use crate::TxType;

/// Errors of `custody-eth`.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not strict, canonical RLP where `field` was expected:
    /// truncated, a list where bytes were expected (or the reverse), a length
    /// written in more bytes than needed, a single byte below `0x80` wrapped
    /// in a string header, or a list whose items do not fill it exactly.
    #[error("{field}: malformed RLP ({reason})")]
    Rlp {
        /// The field being decoded.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Bytes follow the end of the transaction.
    #[error("trailing bytes after the transaction")]
    TrailingBytes,
    /// The input is empty.
    #[error("empty input")]
    Empty,
    /// The first byte is neither an EIP-2718 type byte nor an RLP list
    /// header, so this is not a transaction envelope.
    #[error("not a transaction envelope (first byte 0x{0:02x})")]
    NotATransaction(u8),
    /// An EIP-2718 transaction type this crate does not implement. Never
    /// treated as legacy.
    #[error("unsupported transaction type 0x{0:02x}")]
    UnsupportedType(u8),
    /// A list has the wrong number of items.
    #[error("{what}: expected {expected} fields, found {found}")]
    FieldCount {
        /// What the list is (a transaction type, an access-list entry, ...).
        what: &'static str,
        /// How many items the format requires.
        expected: usize,
        /// How many the input holds.
        found: usize,
    },
    /// A fixed-size byte string (an address, a storage key, a versioned
    /// hash) has the wrong length.
    #[error("{field}: expected {expected} bytes, found {found}")]
    InvalidLength {
        /// The field.
        field: &'static str,
        /// The required length.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// An RLP integer starts with a zero byte (non-canonical).
    #[error("{0}: integer with leading zero bytes")]
    LeadingZeros(&'static str),
    /// A number does not fit its type (`u64` nonce, 256-bit value, ...).
    #[error("{0}: value out of range")]
    Overflow(&'static str),
    /// A text number is malformed (empty, bad digit, missing prefix).
    #[error("invalid number: {0}")]
    InvalidNumber(&'static str),
    /// A blob (type 3) or set-code (type 4) transaction without a recipient:
    /// these types cannot create contracts.
    #[error("a type {0} transaction must have a `to` address")]
    MissingTo(TxType),
    /// A legacy `v` that is neither 27/28 nor `chainId * 2 + 35/36` for a
    /// 64-bit chain id.
    #[error("invalid legacy v value")]
    InvalidV,
    /// A typed transaction's `yParity` is not 0 or 1.
    #[error("invalid yParity")]
    InvalidYParity,
    /// `s` lies in the upper half of the curve order, which EIP-2 forbids.
    #[error("signature s value is too high (EIP-2)")]
    HighS,
    /// `r` or `s` is zero or not below the curve order, or no public key
    /// recovers from the signature.
    #[error("invalid signature")]
    InvalidSignature,
    /// An address string is malformed.
    #[error("invalid address: {0}")]
    InvalidAddress(&'static str),
    /// A mixed-case address whose EIP-55 checksum is wrong.
    #[error("address checksum mismatch (EIP-55)")]
    AddressChecksum,
    /// A JSON field is malformed: a bad hex digit, an odd-length byte
    /// string, a JSON number above 2^53 - 1, a value of the wrong JSON type.
    #[error("{field}: {reason}")]
    Json {
        /// The field, as the JSON form names it (`maxFeePerGas`,
        /// `accessList.storageKeys`, ...).
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A field the transaction type requires is absent (or `null`).
    #[error("{field}: missing for a type {tx_type} transaction")]
    MissingField {
        /// The field.
        field: &'static str,
        /// The transaction type.
        tx_type: TxType,
    },
    /// A field that does not belong to the transaction type, such as
    /// `gasPrice` on a type 0x2 transaction or `accessList` on a legacy one.
    #[error("{field}: not a field of a type {tx_type} transaction")]
    FieldNotAllowed {
        /// The field.
        field: &'static str,
        /// The transaction type.
        tx_type: TxType,
    },
    /// Two names for the same field (`input` and `data`, `gas` and
    /// `gasLimit`, `yParity` and `v`) are both present and differ.
    #[error("{field} and {other} are both present and differ")]
    ConflictingFields {
        /// The first name.
        field: &'static str,
        /// The second name.
        other: &'static str,
    },
    /// A JSON object has a key its format does not define. The key itself
    /// is not echoed (it is input).
    #[error("{object}: unknown field")]
    UnknownField {
        /// The object (`transaction`, `accessList`, `authorizationList`).
        object: &'static str,
    },
    /// A field of a signed transaction's JSON (`hash`, `from`, `chainId`)
    /// does not match what the transaction and its signature give.
    #[error("{0}: does not match the transaction")]
    Mismatch(&'static str),
    /// The text is not JSON.
    #[error("invalid JSON at line {line}, column {column}")]
    JsonSyntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// A JSON object has the same key twice (readers disagree on which
    /// value counts, so neither is taken).
    #[error("duplicate key in a JSON object at line {line}, column {column}")]
    DuplicateKey {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// EIP-712 typed data is malformed: an undefined, cyclic, unused or
    /// malformed type, a missing or extra field, a value out of range for
    /// its type. Names from the input are not echoed.
    #[error("typed data: {what}: {reason}")]
    TypedData {
        /// Where: `types`, `primaryType`, `domain` or `message`.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A Web3 Secret Storage (v3 keystore) document is malformed at `field`
    /// (a dotted JSON path such as `crypto.kdfparams.n`): not JSON, not an
    /// object, a member missing or of the wrong type, a value out of its
    /// domain.
    #[error("keystore {field}: {reason}")]
    KeystoreMalformed {
        /// The member (dotted JSON path).
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A v3 keystore member that must be hex is not (odd length or a
    /// non-hex digit).
    #[error("keystore {0}: invalid hex")]
    KeystoreHex(&'static str),
    /// A v3 keystore names a version, cipher, KDF, PRF or derived-key length
    /// this crate does not implement.
    #[error("keystore {0}: unsupported value")]
    KeystoreUnsupported(&'static str),
    /// A v3 keystore's KDF parameters exceed this crate's cost limits
    /// (memory, work or salt size); refused before any derivation work.
    #[error("keystore {0}: KDF parameters exceed the allowed cost")]
    KeystoreKdfLimit(&'static str),
    /// The password does not open the keystore: the MAC does not match. A
    /// wrong password and a tampered MAC or ciphertext are deliberately
    /// indistinguishable.
    #[error("wrong password")]
    WrongPassword,
    /// The keystore's `address` member is not the address of the key it
    /// holds.
    #[error("keystore address does not match its key")]
    KeystoreAddressMismatch,
    /// A keystore holds (or an export was asked for) 32 bytes that are not a
    /// valid secp256k1 secret key (zero, or not below the group order).
    #[error("not a valid secp256k1 private key")]
    InvalidPrivateKey,
    /// The key backend failed or refused (shown as its own error).
    #[error(transparent)]
    Core(#[from] custody_core::Error),
}

impl Error {
    /// A stable kebab-case name for this error's kind (as
    /// [`custody_core::Error::kind`]): `wrong-passphrase` for a v3
    /// keystore's wrong password, `unsupported` for a v3 keystore this crate
    /// does not implement, the core error's kind for [`Error::Core`], and
    /// `bad-input` for everything else (malformed input).
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Core(e) => e.kind(),
            Self::WrongPassword => "wrong-passphrase",
            Self::KeystoreUnsupported(_) => "unsupported",
            _ => "bad-input",
        }
    }
}

impl From<Error> for custody_core::ErrorReport {
    /// Core errors report as core reports them (a backend speaks for
    /// itself); the rest with [`Error::kind`] and their `Display`.
    fn from(e: Error) -> Self {
        match e {
            Error::Core(core) => core.into(),
            other => Self::new(other.kind(), other.to_string()),
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn kinds_and_reports() {
        assert_eq!(Error::WrongPassword.kind(), "wrong-passphrase");
        assert_eq!(Error::KeystoreUnsupported("version").kind(), "unsupported");
        assert_eq!(Error::Overflow("nonce").kind(), "bad-input");
        let denied = Error::Core(custody_core::Error::Denied(
            custody_core::Denial::TotpInvalid,
        ));
        assert_eq!(denied.kind(), "totp-invalid");
        let report = custody_core::ErrorReport::from(denied);
        assert_eq!(report.kind(), "totp-invalid");
        assert_eq!(report.status(), 3);
        let report = custody_core::ErrorReport::from(Error::Overflow("nonce"));
        assert_eq!(report.message(), "nonce: value out of range");
        assert_eq!(report.status(), 2);
    }
}
