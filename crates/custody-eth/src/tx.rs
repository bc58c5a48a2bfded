//! [`Transaction`]: the five Ethereum transaction types, their RLP
//! encodings, signing hashes and signed forms.
//!
//! | type | struct | unsigned payload (what is hashed and signed) |
//! |---|---|---|
//! | legacy | [`TxLegacy`] | `rlp([nonce, gasPrice, gas, to, value, data])`, or with EIP-155 `rlp([…, chainId, 0, 0])` |
//! | `0x01` | [`TxEip2930`] | `0x01 ‖ rlp([chainId, nonce, gasPrice, gas, to, value, data, accessList])` |
//! | `0x02` | [`TxEip1559`] | `0x02 ‖ rlp([chainId, nonce, maxPriorityFee, maxFee, gas, to, value, data, accessList])` |
//! | `0x03` | [`TxEip4844`] | `0x03 ‖ rlp([… as 0x02 …, maxFeePerBlobGas, blobVersionedHashes])` |
//! | `0x04` | [`TxEip7702`] | `0x04 ‖ rlp([… as 0x02 …, authorizationList])` |
//!
//! The signing hash is the Keccak-256 of the unsigned payload. The signed
//! form appends `v, r, s` to the list (legacy: `v` = 27/28, or
//! `chainId * 2 + 35/36` with EIP-155) or `yParity, r, s` (typed); the
//! transaction hash is the Keccak-256 of the signed form.
//!
//! Blob and set-code transactions cannot create contracts, so their `to` is
//! an [`Address`], not an `Option`: a value without a recipient cannot be
//! built, and decoding one is [`Error::MissingTo`].

mod eip1559;
mod eip2930;
mod eip4844;
mod eip7702;
mod encoding;
mod legacy;
mod signed;

use std::fmt;

use custody_core::{Digest32, RecoverableSignature};
use rlp::Rlp;

pub use eip1559::TxEip1559;
pub use eip2930::TxEip2930;
pub use eip4844::{BLOB_GAS_PER_BLOB, TxEip4844};
pub use eip7702::TxEip7702;
pub(crate) use encoding::{UnsignedEncoding, optional_address};
pub use legacy::TxLegacy;
pub(crate) use legacy::chain_id_and_parity;
pub use signed::{SignedTransaction, decode_signed};

use crate::{Address, Error, U256, codec, keccak256};

/// An EIP-2718 transaction type.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxType {
    /// Legacy (type 0, not prefixed with a type byte), with or without EIP-155.
    Legacy,
    /// EIP-2930 access-list transaction (type 1).
    Eip2930,
    /// EIP-1559 fee-market transaction (type 2).
    Eip1559,
    /// EIP-4844 blob transaction (type 3).
    Eip4844,
    /// EIP-7702 set-code transaction (type 4).
    Eip7702,
}

impl TxType {
    /// The type number (`0` for legacy).
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Legacy => 0,
            Self::Eip2930 => 1,
            Self::Eip1559 => 2,
            Self::Eip4844 => 3,
            Self::Eip7702 => 4,
        }
    }
}

impl TryFrom<u8> for TxType {
    type Error = Error;

    /// # Errors
    /// [`Error::UnsupportedType`] for any number but 0 to 4.
    fn try_from(t: u8) -> Result<Self, Error> {
        match t {
            0 => Ok(Self::Legacy),
            1 => Ok(Self::Eip2930),
            2 => Ok(Self::Eip1559),
            3 => Ok(Self::Eip4844),
            4 => Ok(Self::Eip7702),
            other => Err(Error::UnsupportedType(other)),
        }
    }
}

impl fmt::Display for TxType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.as_u8())
    }
}

/// An unsigned transaction of any supported type.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transaction {
    /// Legacy, with or without EIP-155 replay protection.
    Legacy(TxLegacy),
    /// EIP-2930 (type 1).
    Eip2930(TxEip2930),
    /// EIP-1559 (type 2).
    Eip1559(TxEip1559),
    /// EIP-4844 (type 3), in its canonical form (no blob sidecar).
    Eip4844(TxEip4844),
    /// EIP-7702 (type 4).
    Eip7702(TxEip7702),
}

/// `n / 2` for the secp256k1 group order `n`: EIP-2 requires `s ≤ n/2`.
const HALF_ORDER: U256 = U256::from_be_bytes([
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

/// A signature from decoded parts: `s ≤ n/2` (EIP-2), `0 < r, s < n`.
pub(crate) fn signature_from_parts(
    r: &U256,
    s: &U256,
    y_parity: bool,
) -> Result<RecoverableSignature, Error> {
    if *s > HALF_ORDER {
        return Err(Error::HighS);
    }
    RecoverableSignature::from_parts(r.to_be_bytes(), s.to_be_bytes(), y_parity)
        .map_err(|_| Error::InvalidSignature)
}

/// Decodes the trailing `yParity, r, s` of a typed transaction.
pub(crate) fn decode_typed_signature(
    y_parity: &Rlp<'_>,
    r: &Rlp<'_>,
    s: &Rlp<'_>,
) -> Result<RecoverableSignature, Error> {
    let y = codec::u256(y_parity, "y_parity")?;
    let parity = if y.is_zero() {
        false
    } else if y == U256::from_u64(1) {
        true
    } else {
        return Err(Error::InvalidYParity);
    };
    signature_from_parts(&codec::u256(r, "r")?, &codec::u256(s, "s")?, parity)
}

impl Transaction {
    /// The transaction type.
    #[must_use]
    pub fn tx_type(&self) -> TxType {
        match self {
            Self::Legacy(_) => TxType::Legacy,
            Self::Eip2930(_) => TxType::Eip2930,
            Self::Eip1559(_) => TxType::Eip1559,
            Self::Eip4844(_) => TxType::Eip4844,
            Self::Eip7702(_) => TxType::Eip7702,
        }
    }

    /// The chain id; `None` only for a legacy transaction without EIP-155.
    #[must_use]
    pub fn chain_id(&self) -> Option<u64> {
        match self {
            Self::Legacy(tx) => tx.chain_id,
            Self::Eip2930(tx) => Some(tx.chain_id),
            Self::Eip1559(tx) => Some(tx.chain_id),
            Self::Eip4844(tx) => Some(tx.chain_id),
            Self::Eip7702(tx) => Some(tx.chain_id),
        }
    }

    /// The sender's nonce.
    #[must_use]
    pub fn nonce(&self) -> u64 {
        match self {
            Self::Legacy(tx) => tx.nonce,
            Self::Eip2930(tx) => tx.nonce,
            Self::Eip1559(tx) => tx.nonce,
            Self::Eip4844(tx) => tx.nonce,
            Self::Eip7702(tx) => tx.nonce,
        }
    }

    /// The gas limit.
    #[must_use]
    pub fn gas_limit(&self) -> u64 {
        match self {
            Self::Legacy(tx) => tx.gas_limit,
            Self::Eip2930(tx) => tx.gas_limit,
            Self::Eip1559(tx) => tx.gas_limit,
            Self::Eip4844(tx) => tx.gas_limit,
            Self::Eip7702(tx) => tx.gas_limit,
        }
    }

    /// The recipient; `None` creates a contract.
    #[must_use]
    pub fn to(&self) -> Option<Address> {
        match self {
            Self::Legacy(tx) => tx.to,
            Self::Eip2930(tx) => tx.to,
            Self::Eip1559(tx) => tx.to,
            Self::Eip4844(tx) => Some(tx.to),
            Self::Eip7702(tx) => Some(tx.to),
        }
    }

    /// The wei transferred.
    #[must_use]
    pub fn value(&self) -> U256 {
        match self {
            Self::Legacy(tx) => tx.value,
            Self::Eip2930(tx) => tx.value,
            Self::Eip1559(tx) => tx.value,
            Self::Eip4844(tx) => tx.value,
            Self::Eip7702(tx) => tx.value,
        }
    }

    /// The call data (or init code for a contract creation).
    #[must_use]
    pub fn data(&self) -> &[u8] {
        match self {
            Self::Legacy(tx) => &tx.data,
            Self::Eip2930(tx) => &tx.data,
            Self::Eip1559(tx) => &tx.data,
            Self::Eip4844(tx) => &tx.data,
            Self::Eip7702(tx) => &tx.data,
        }
    }

    /// The most wei the transaction can take from its sender: `value` plus
    /// `gas_limit` times the gas price (legacy, type 1) or the max fee per gas
    /// (types 2–4), plus for blob transactions the blob gas times
    /// `max_fee_per_blob_gas`. A policy gate compares this with a limit.
    ///
    /// # Errors
    /// [`Error::Overflow`] (`"max_cost"`) if it does not fit 256 bits. Nodes
    /// reject such transactions (e.g. `GasLimitPriceProductOverflow`); the
    /// codec still encodes and decodes them, as the format allows.
    pub fn max_cost(&self) -> Result<U256, Error> {
        let (price, blob) = match self {
            Self::Legacy(tx) => (tx.gas_price, None),
            Self::Eip2930(tx) => (tx.gas_price, None),
            Self::Eip1559(tx) => (tx.max_fee_per_gas, None),
            Self::Eip4844(tx) => (tx.max_fee_per_gas, Some(tx)),
            Self::Eip7702(tx) => (tx.max_fee_per_gas, None),
        };
        let mut cost = price
            .checked_mul_u64(self.gas_limit())
            .and_then(|c| c.checked_add(self.value()))
            .ok_or(Error::Overflow("max_cost"))?;
        if let Some(tx) = blob {
            let blobs = u64::try_from(tx.blob_versioned_hashes.len())
                .map_err(|_| Error::Overflow("max_cost"))?;
            cost = BLOB_GAS_PER_BLOB
                .checked_mul(blobs)
                .and_then(|gas| tx.max_fee_per_blob_gas.checked_mul_u64(gas))
                .and_then(|fee| cost.checked_add(fee))
                .ok_or(Error::Overflow("max_cost"))?;
        }
        Ok(cost)
    }

    /// The `v` a signature with recovery parity `y_parity` is encoded with:
    /// 27/28 or `chainId * 2 + 35/36` (EIP-155) for legacy, `yParity` (0/1)
    /// for typed transactions.
    pub(crate) fn signature_v(&self, y_parity: bool) -> u128 {
        match self {
            Self::Legacy(tx) => tx.v(y_parity),
            _ => u128::from(y_parity),
        }
    }

    /// The unsigned payload: the bytes whose Keccak-256 is signed.
    #[must_use]
    pub fn encode_unsigned(&self) -> Vec<u8> {
        UnsignedEncoding::new(self).into_payload()
    }

    /// The digest to sign: Keccak-256 of [`Transaction::encode_unsigned`].
    #[must_use]
    pub fn signing_hash(&self) -> Digest32 {
        UnsignedEncoding::new(self).signing_hash()
    }

    /// The signed encoding, as sent with `eth_sendRawTransaction`.
    /// `signature` is taken as given: it is not checked against any key.
    #[must_use]
    pub fn encode_signed(&self, signature: &RecoverableSignature) -> Vec<u8> {
        encoding::encode_signed(self, signature)
    }

    /// The transaction hash once signed with `signature`: Keccak-256 of
    /// [`Transaction::encode_signed`].
    #[must_use]
    pub fn tx_hash(&self, signature: &RecoverableSignature) -> [u8; 32] {
        keccak256(&self.encode_signed(signature))
    }

    /// Attaches a signature.
    #[must_use]
    pub fn into_signed(self, signature: RecoverableSignature) -> SignedTransaction {
        SignedTransaction::new(self, signature)
    }
}

impl From<TxLegacy> for Transaction {
    fn from(tx: TxLegacy) -> Self {
        Self::Legacy(tx)
    }
}

impl From<TxEip2930> for Transaction {
    fn from(tx: TxEip2930) -> Self {
        Self::Eip2930(tx)
    }
}

impl From<TxEip1559> for Transaction {
    fn from(tx: TxEip1559) -> Self {
        Self::Eip1559(tx)
    }
}

impl From<TxEip4844> for Transaction {
    fn from(tx: TxEip4844) -> Self {
        Self::Eip4844(tx)
    }
}

impl From<TxEip7702> for Transaction {
    fn from(tx: TxEip7702) -> Self {
        Self::Eip7702(tx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_cost_adds_value_gas_and_blob_gas() {
        let tx = Transaction::from(TxEip1559 {
            max_fee_per_gas: U256::from_u64(2),
            gas_limit: 21_000,
            value: U256::from_u64(5),
            ..TxEip1559::default()
        });
        assert_eq!(tx.max_cost().unwrap(), U256::from_u64(42_005));
        let blob = Transaction::from(TxEip4844 {
            max_fee_per_gas: U256::from_u64(2),
            gas_limit: 21_000,
            value: U256::from_u64(5),
            max_fee_per_blob_gas: U256::from_u64(3),
            blob_versioned_hashes: vec![[1; 32]; 2],
            ..TxEip4844::default()
        });
        assert_eq!(
            blob.max_cost().unwrap(),
            U256::from_u64(42_005 + 2 * (1 << 17) * 3)
        );
        let legacy = Transaction::from(TxLegacy {
            gas_price: U256::MAX,
            gas_limit: 1,
            value: U256::from_u64(1),
            ..TxLegacy::default()
        });
        assert!(matches!(
            legacy.max_cost(),
            Err(Error::Overflow("max_cost"))
        ));
    }

    #[test]
    fn half_order_is_n_over_2() {
        // n = 2 * HALF_ORDER + 1 for the odd secp256k1 order.
        let n = HALF_ORDER
            .checked_mul_u64(2)
            .and_then(|x| x.checked_add(U256::from_u64(1)));
        assert_eq!(
            format!("{:x}", n.unwrap()),
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
        );
    }
}
