//! EIP-4844 blob transactions (type 3), in the canonical form that is
//! signed, hashed and included in blocks (the network form with blobs,
//! commitments and proofs is not handled here).

use custody_core::RecoverableSignature;

use crate::rlp_encode::Sink;
use crate::tx::{TxType, decode_typed_signature};
use crate::{AccessList, Address, Error, U256, codec};

/// Blob gas used per blob (EIP-4844 `GAS_PER_BLOB`, 2^17).
pub const BLOB_GAS_PER_BLOB: u64 = 1 << 17;

/// An EIP-4844 blob transaction. It cannot create a contract, so `to` is
/// required.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxEip4844 {
    /// The chain id.
    pub chain_id: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// The most wei per gas paid to the block producer above the base fee.
    pub max_priority_fee_per_gas: U256,
    /// The most wei per gas paid in all.
    pub max_fee_per_gas: U256,
    /// The gas limit.
    pub gas_limit: u64,
    /// The recipient (required).
    pub to: Address,
    /// Wei transferred.
    pub value: U256,
    /// Call data.
    pub data: Vec<u8>,
    /// Accounts and storage slots the transaction declares.
    pub access_list: AccessList,
    /// The most wei per blob gas.
    pub max_fee_per_blob_gas: U256,
    /// Versioned hashes of the blobs (32 bytes each).
    pub blob_versioned_hashes: Vec<[u8; 32]>,
}

impl TxEip4844 {
    /// Puts into `s` the fields both forms share, in order.
    pub(crate) fn fields<S: Sink>(&self, s: &mut S) {
        s.u64(self.chain_id);
        s.u64(self.nonce);
        s.uint(self.max_priority_fee_per_gas.minimal_be_bytes());
        s.uint(self.max_fee_per_gas.minimal_be_bytes());
        s.u64(self.gas_limit);
        s.bytes(self.to.as_bytes());
        s.uint(self.value.minimal_be_bytes());
        s.bytes(&self.data);
        s.item(&self.access_list);
        s.uint(self.max_fee_per_blob_gas.minimal_be_bytes());
        s.item(self.blob_versioned_hashes.as_slice());
    }

    /// Decodes the RLP list after the type byte.
    pub(crate) fn decode_signed(payload: &[u8]) -> Result<(Self, RecoverableSignature), Error> {
        let [
            chain_id,
            nonce,
            max_priority,
            max_fee,
            gas_limit,
            to,
            value,
            data,
            access_list,
            max_fee_per_blob_gas,
            hashes,
            y,
            r,
            s,
        ] = codec::top_fields(payload, "type 0x3 transaction")?;
        let tx = Self {
            chain_id: codec::u64(&chain_id, "chain_id")?,
            nonce: codec::u64(&nonce, "nonce")?,
            max_priority_fee_per_gas: codec::u256(&max_priority, "max_priority_fee_per_gas")?,
            max_fee_per_gas: codec::u256(&max_fee, "max_fee_per_gas")?,
            gas_limit: codec::u64(&gas_limit, "gas_limit")?,
            to: codec::optional_address(&to, "to")?.ok_or(Error::MissingTo(TxType::Eip4844))?,
            value: codec::u256(&value, "value")?,
            data: codec::bytes(&data, "data")?.to_vec(),
            access_list: AccessList::decode(&access_list)?,
            max_fee_per_blob_gas: codec::u256(&max_fee_per_blob_gas, "max_fee_per_blob_gas")?,
            blob_versioned_hashes: codec::list(&hashes, "blob_versioned_hashes")?
                .iter()
                .map(|h| codec::fixed::<32>(h, "blob_versioned_hash"))
                .collect::<Result<_, _>>()?,
        };
        Ok((tx, decode_typed_signature(&y, &r, &s)?))
    }
}
