//! EIP-2930 access-list transactions (type 1).

use custody_core::RecoverableSignature;

use crate::rlp_encode::Sink;
use crate::tx::{decode_typed_signature, optional_address};
use crate::{AccessList, Address, Error, U256, codec};

/// An EIP-2930 transaction: legacy pricing plus an access list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxEip2930 {
    /// The chain id.
    pub chain_id: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// Wei per gas.
    pub gas_price: U256,
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

impl TxEip2930 {
    /// Puts into `s` the fields both forms share, in order.
    pub(crate) fn fields<S: Sink>(&self, s: &mut S) {
        s.u64(self.chain_id);
        s.u64(self.nonce);
        s.uint(self.gas_price.minimal_be_bytes());
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
            gas_price,
            gas_limit,
            to,
            value,
            data,
            access_list,
            y,
            r,
            s,
        ] = codec::top_fields(payload, "type 0x1 transaction")?;
        let tx = Self {
            chain_id: codec::u64(&chain_id, "chain_id")?,
            nonce: codec::u64(&nonce, "nonce")?,
            gas_price: codec::u256(&gas_price, "gas_price")?,
            gas_limit: codec::u64(&gas_limit, "gas_limit")?,
            to: codec::optional_address(&to, "to")?,
            value: codec::u256(&value, "value")?,
            data: codec::bytes(&data, "data")?.to_vec(),
            access_list: AccessList::decode(&access_list)?,
        };
        Ok((tx, decode_typed_signature(&y, &r, &s)?))
    }
}
