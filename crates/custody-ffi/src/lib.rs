#![doc = include_str!("../README.md")]

mod error;
mod export;
mod input;
mod key;
mod keystore;
mod memory;
mod signing;
mod totp;

pub use error::{
    CUSTODY_ERR_AUTH, CUSTODY_ERR_BAD_INPUT, CUSTODY_ERR_OTHER, CUSTODY_ERROR_KIND_LEN,
    CUSTODY_ERROR_MESSAGE_LEN, CUSTODY_OK, CustodyError,
};
pub use export::custody_export_private_key;
pub use key::{
    CustodyKey, custody_key_derive, custody_key_free, custody_key_open, custody_key_open_id,
    custody_key_sign_message, custody_key_sign_transaction, custody_key_sign_typed_data,
};
pub use keystore::{
    CustodyKeystore, custody_derive, custody_keystore_free, custody_keystore_import_v3,
    custody_keystore_open, custody_version,
};
pub use memory::{custody_buffer_free, custody_outstanding_buffers, custody_string_free};
pub use signing::{custody_sign_message, custody_sign_transaction, custody_sign_typed_data};
pub use totp::custody_totp_enrol;
