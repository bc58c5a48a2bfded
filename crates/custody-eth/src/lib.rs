#![doc = include_str!("../README.md")]

mod access_list;
mod address;
#[cfg(feature = "alloy")]
pub mod alloy;
mod authorization;
mod codec;
mod error;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod json;
mod keccak;
pub mod keystore_v3;
mod message;
mod rlp_encode;
mod rpc;
mod signer;
mod tx;
mod typed_data;
mod u256;

pub use access_list::{AccessList, AccessListItem};
pub use address::Address;
pub use authorization::{AUTHORIZATION_MAGIC, Authorization, SignedAuthorization};
pub use error::Error;
pub use keccak::keccak256;
pub use message::{MessageSignature, PersonalMessage, personal_message_hash};
pub use signer::EthSigner;
pub use tx::{
    BLOB_GAS_PER_BLOB, SignedTransaction, Transaction, TxEip1559, TxEip2930, TxEip4844, TxEip7702,
    TxLegacy, TxType, decode_signed,
};
pub use typed_data::{Eip712Domain, MAX_TYPED_DATA_DEPTH, TypedData};
pub use u256::U256;
