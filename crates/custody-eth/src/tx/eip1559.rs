//! EIP-1559 fee-market transactions (type 2).

use custody_core::RecoverableSignature;

use crate::rlp_encode::Sink;
use crate::tx::{decode_typed_signature, optional_address};
use crate::{AccessList, Address, Error, U256, codec};

/// An EIP-1559 transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxEip1559 {
    /// The chain id.
    pub chain_id: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// The most wei per gas paid to the block producer above the base fee.
    pub max_priority_fee_per_gas: U256,
    /// The most wei per gas paid in all (base fee plus priority fee).
    pub max_fee_per_gas: U256,
    /// The gas limit.
    pub gas_limit: u64,
    /// The recipient; `None` creates a contract.
    pub to: Option<Address>,
    /// Wei transferred.
    pub value: U256,
    /// Call data or init code.
    pub data: Vec<u8>,
    /// Accounts and storage slots the transaction declares.
    pub access_list: AccessList,
}

impl TxEip1559 {
    /// Puts into `s` the fields both forms share, in order.
    pub(crate) fn fields<S: Sink>(&self, s: &mut S) {
        s.u64(self.chain_id);
        s.u64(self.nonce);
        s.uint(self.max_priority_fee_per_gas.minimal_be_bytes());
        s.uint(self.max_fee_per_gas.minimal_be_bytes());
        s.u64(self.gas_limit);
        s.bytes(optional_address(self.to.as_ref()));
        s.uint(self.value.minimal_be_bytes());
        s.bytes(&self.data);
        s.item(&self.access_list);
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
            y,
            r,
            s,
        ] = codec::top_fields(payload, "type 0x2 transaction")?;
        let tx = Self {
            chain_id: codec::u64(&chain_id, "chain_id")?,
            nonce: codec::u64(&nonce, "nonce")?,
            max_priority_fee_per_gas: codec::u256(&max_priority, "max_priority_fee_per_gas")?,
            max_fee_per_gas: codec::u256(&max_fee, "max_fee_per_gas")?,
            gas_limit: codec::u64(&gas_limit, "gas_limit")?,
            to: codec::optional_address(&to, "to")?,
            value: codec::u256(&value, "value")?,
            data: codec::bytes(&data, "data")?.to_vec(),
            access_list: AccessList::decode(&access_list)?,
        };
        Ok((tx, decode_typed_signature(&y, &r, &s)?))
    }
}
