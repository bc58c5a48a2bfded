//! EIP-2930 access-list transactions (type 1).

use custody_core::RecoverableSignature;
use rlp::RlpStream;

use crate::tx::{TxType, TypedFields, decode_typed_signature};
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

impl TypedFields for TxEip2930 {
    const TYPE: TxType = TxType::Eip2930;
    const FIELDS: usize = 8;

    fn append_fields(&self, s: &mut RlpStream) {
        s.append(&self.chain_id);
        s.append(&self.nonce);
        codec::append_u256(s, &self.gas_price);
        s.append(&self.gas_limit);
        codec::append_optional_address(s, self.to.as_ref());
        codec::append_u256(s, &self.value);
        codec::append_bytes(s, &self.data);
        self.access_list.append(s);
    }
}

impl TxEip2930 {
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
