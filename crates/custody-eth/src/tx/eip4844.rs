//! EIP-4844 blob transactions (type 3), in the canonical form that is
//! signed, hashed and included in blocks (the network form with blobs,
//! commitments and proofs is not handled here).

use custody_core::RecoverableSignature;
use rlp::RlpStream;

use crate::tx::{TxType, TypedFields, decode_typed_signature};
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

impl TypedFields for TxEip4844 {
    const TYPE: TxType = TxType::Eip4844;
    const FIELDS: usize = 11;

    fn append_fields(&self, s: &mut RlpStream) {
        s.append(&self.chain_id);
        s.append(&self.nonce);
        codec::append_u256(s, &self.max_priority_fee_per_gas);
        codec::append_u256(s, &self.max_fee_per_gas);
        s.append(&self.gas_limit);
        codec::append_address(s, &self.to);
        codec::append_u256(s, &self.value);
        codec::append_bytes(s, &self.data);
        self.access_list.append(s);
        codec::append_u256(s, &self.max_fee_per_blob_gas);
        s.begin_list(self.blob_versioned_hashes.len());
        for h in &self.blob_versioned_hashes {
            codec::append_bytes(s, h);
        }
    }
}

impl TxEip4844 {
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
