//! EIP-7702 set-code transactions (type 4).

use custody_core::RecoverableSignature;

use crate::rlp_encode::Sink;
use crate::tx::{TxType, decode_typed_signature};
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

impl TxEip7702 {
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
        s.item(self.authorization_list.as_slice());
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
