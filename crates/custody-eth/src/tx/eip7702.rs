//! EIP-7702 set-code transactions (type 4).

use custody_core::RecoverableSignature;
use rlp::RlpStream;

use crate::tx::{TxType, TypedFields, decode_typed_signature};
use crate::{AccessList, Address, Error, SignedAuthorization, U256, codec};

/// An EIP-7702 transaction: an EIP-1559 transaction that also carries signed
/// authorizations delegating the authorities' code. It cannot create a
/// contract, so `to` is required.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxEip7702 {
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
    /// The signed authorizations, as given (each is checked only when the
    /// transaction executes; see [`SignedAuthorization::recover_authority`]).
    pub authorization_list: Vec<SignedAuthorization>,
}

impl TypedFields for TxEip7702 {
    const TYPE: TxType = TxType::Eip7702;
    const FIELDS: usize = 10;

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
        s.begin_list(self.authorization_list.len());
        for a in &self.authorization_list {
            a.append(s);
        }
    }
}

impl TxEip7702 {
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
            authorizations,
            y,
            r,
            s,
        ] = codec::top_fields(payload, "type 0x4 transaction")?;
        let tx = Self {
            chain_id: codec::u64(&chain_id, "chain_id")?,
            nonce: codec::u64(&nonce, "nonce")?,
            max_priority_fee_per_gas: codec::u256(&max_priority, "max_priority_fee_per_gas")?,
            max_fee_per_gas: codec::u256(&max_fee, "max_fee_per_gas")?,
            gas_limit: codec::u64(&gas_limit, "gas_limit")?,
            to: codec::optional_address(&to, "to")?.ok_or(Error::MissingTo(TxType::Eip7702))?,
            value: codec::u256(&value, "value")?,
            data: codec::bytes(&data, "data")?.to_vec(),
            access_list: AccessList::decode(&access_list)?,
            authorization_list: codec::list(&authorizations, "authorization_list")?
                .iter()
                .map(SignedAuthorization::decode)
                .collect::<Result<_, _>>()?,
        };
        Ok((tx, decode_typed_signature(&y, &r, &s)?))
    }
}
