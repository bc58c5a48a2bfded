#![doc = include_str!("../README.md")]

mod access_list;
mod address;
mod authorization;
mod codec;
mod error;
mod keccak;
pub mod keystore_v3;
mod signer;
mod tx;
mod u256;

pub use access_list::{AccessList, AccessListItem};
pub use address::Address;
pub use authorization::{AUTHORIZATION_MAGIC, Authorization, SignedAuthorization};
pub use error::Error;
pub use keccak::keccak256;
pub use signer::EthSigner;
pub use tx::{
    BLOB_GAS_PER_BLOB, SignedTransaction, Transaction, TxEip1559, TxEip2930, TxEip4844, TxEip7702,
    TxLegacy, TxType, decode_signed,
};
pub use u256::U256;
