//! The alloy drop-in (feature `alloy`): [`AlloySigner`] implements alloy's
//! [`Signer`], [`SignerSync`], [`TxSigner`] and [`TxSignerSync`] over an
//! [`EthSigner`], so an `EthereumWallet` and a provider sign through
//! custody's gates (`Audited(TotpGate(…))`, a policy gate) and the key stays
//! wherever its backend keeps it.
//!
//! # Nothing bypasses a gate
//! alloy hands a signer a transaction, a message or typed data; every one
//! of them reaches custody *as what it is*, with its typed intent, never as
//! a bare digest: a transaction is rebuilt as a custody [`Transaction`] from
//! alloy's fields and signed with [`EthSigner::sign_transaction`] (and
//! refused if its signing hash is not the one alloy computed, so what the
//! gates read is exactly what is signed); a message goes through
//! [`EthSigner::sign_personal_message`]; typed data through
//! [`EthSigner::sign_typed_data`], after the same cross-check. Only
//! [`Signer::sign_hash`] signs a bare digest, with the raw-digest intent
//! the gates treat as such.
//!
//! # The second factor: [`ConsentHook`]
//! alloy's traits carry no second factor, so the signer asks a
//! [`ConsentHook`] for the [`Consent`] (a TOTP code, approvals) of each
//! request just before it signs, showing it the [`SigningRequest`]. Use a
//! closure, or [`NextConsent`]: a one-shot slot that the service fills with
//! the code the user typed for the next request. A hook that has nothing
//! answers an empty consent, and a gate that needs one refuses (the error
//! is the gate's own, e.g. kind `totp-required`, inside alloy's
//! [`alloy_signer::Error::Other`]: downcast it to [`crate::Error`]).
//!
//! # Chain ids
//! As alloy's local signer: with a chain id set, a transaction without one
//! gets it (EIP-155 for legacy) and one with another is refused
//! ([`alloy_signer::Error::TransactionChainIdMismatch`]).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use alloy_consensus::SignableTransaction;
use alloy_network::{TxSigner, TxSignerSync};
use alloy_primitives::{B256, ChainId, Signature, TxKind};
use alloy_signer::{Signer, SignerSync};
use alloy_sol_types::{Eip712Domain as SolDomain, SolStruct};
use custody_core::{Authorization as Consent, Digest32, Pending, RecoverableSignature};

use crate::{
    AccessList, AccessListItem, Address, Error, EthSigner, PersonalMessage, SignedAuthorization,
    Transaction, TxEip1559, TxEip2930, TxEip4844, TxEip7702, TxLegacy, TypedData, U256,
};

/// What a [`ConsentHook`] is asked to consent to: the request as custody
/// will sign it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum SigningRequest<'a> {
    /// A transaction.
    Transaction(&'a Transaction),
    /// An EIP-191 personal message.
    PersonalMessage(&'a PersonalMessage),
    /// EIP-712 typed data.
    TypedData(&'a TypedData),
    /// A bare 32-byte digest ([`Signer::sign_hash`]).
    Hash(&'a Digest32),
}

/// Supplies the second factor or approvals of each request (see the
/// module doc). Called once per request, just before it is signed.
pub trait ConsentHook: Send + Sync {
    /// The consent to present with `request`.
    ///
    /// # Errors
    /// Whatever the hook cannot do (e.g. the user cancelled): the request
    /// is not signed and alloy's caller gets this error.
    fn consent(&self, request: &SigningRequest<'_>) -> alloy_signer::Result<Consent>;
}

impl<F> ConsentHook for F
where
    F: Fn(&SigningRequest<'_>) -> alloy_signer::Result<Consent> + Send + Sync,
{
    fn consent(&self, request: &SigningRequest<'_>) -> alloy_signer::Result<Consent> {
        self(request)
    }
}

/// A one-shot consent slot: [`NextConsent::set`] puts the consent of the
/// next request (e.g. the code the user just typed), and that request
/// takes it; a request that finds the slot empty presents no consent (a
/// gate that needs one refuses). A code is never presented twice.
#[derive(Default)]
pub struct NextConsent(Mutex<Option<Consent>>);

impl NextConsent {
    /// An empty slot.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts the consent of the next request, replacing any unused one.
    pub fn set(&self, consent: Consent) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(consent);
    }

    /// Whether a consent is waiting.
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

impl fmt::Debug for NextConsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the consent itself: it holds a code.
        f.debug_struct("NextConsent")
            .field("set", &self.is_set())
            .finish()
    }
}

impl ConsentHook for NextConsent {
    fn consent(&self, _: &SigningRequest<'_>) -> alloy_signer::Result<Consent> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default())
    }
}

/// An [`EthSigner`] as an alloy signer (see the module doc).
#[derive(Clone)]
pub struct AlloySigner {
    signer: EthSigner,
    address: alloy_primitives::Address,
    chain_id: Option<ChainId>,
    consent: Arc<dyn ConsentHook>,
}

impl AlloySigner {
    /// `signer` asking `consent` for each request's consent; no chain id.
    #[must_use]
    pub fn new(signer: EthSigner, consent: Arc<dyn ConsentHook>) -> Self {
        let address = alloy_primitives::Address::from(signer.address().0);
        Self {
            signer,
            address,
            chain_id: None,
            consent,
        }
    }

    /// The custody signer underneath.
    #[must_use]
    pub fn eth_signer(&self) -> &EthSigner {
        &self.signer
    }

    /// Signs `tx` through the gates; shared by the async and sync traits.
    fn sign_tx<'a>(
        &'a self,
        tx: &mut dyn SignableTransaction<Signature>,
    ) -> alloy_signer::Result<Pending<'a, alloy_signer::Result<Signature>>> {
        if let Some(chain_id) = self.chain_id
            && !tx.set_chain_id_checked(chain_id)
        {
            return Err(alloy_signer::Error::TransactionChainIdMismatch {
                signer: chain_id,
                tx: tx.chain_id().unwrap_or_default(),
            });
        }
        let ours = transaction_of(&*tx).map_err(alloy_signer::Error::other)?;
        if ours.signing_hash().0 != tx.signature_hash().0 {
            // Custody would sign (and its gates read) another transaction.
            return Err(alloy_signer::Error::other(Error::Mismatch(
                "alloy's signing hash",
            )));
        }
        let consent = self.consent.consent(&SigningRequest::Transaction(&ours))?;
        Ok(Pending::drive(async move {
            let signed = self
                .signer
                .sign_transaction(&ours, &consent)
                .await
                .map_err(alloy_signer::Error::other)?;
            Ok(signature(signed.signature()))
        }))
    }

    /// Signs a bare digest through the gates (raw-digest intent).
    fn sign_digest(&self, hash: &B256) -> alloy_signer::Result<Pending<'_, SigResult>> {
        let digest = Digest32(hash.0);
        let consent = self.consent.consent(&SigningRequest::Hash(&digest))?;
        Ok(Pending::drive(async move {
            let sig = self
                .signer
                .sign_hash_raw(digest, &consent)
                .await
                .map_err(alloy_signer::Error::other)?;
            Ok(signature(&sig))
        }))
    }

    /// Signs an EIP-191 message through the gates (its typed intent).
    fn sign_personal(&self, message: &[u8]) -> alloy_signer::Result<Pending<'_, SigResult>> {
        let message = PersonalMessage::from_bytes(message);
        let consent = self
            .consent
            .consent(&SigningRequest::PersonalMessage(&message))?;
        Ok(Pending::drive(async move {
            let sig = self
                .signer
                .sign_personal_message(&message, &consent)
                .await
                .map_err(alloy_signer::Error::other)?;
            Ok(signature(sig.signature()))
        }))
    }

    /// Signs alloy's typed data through the gates, after checking that
    /// custody reads it with the signing hash alloy computed.
    fn sign_typed(
        &self,
        typed: &alloy_dyn_abi::TypedData,
    ) -> alloy_signer::Result<Pending<'_, SigResult>> {
        let expected = typed
            .eip712_signing_hash()
            .map_err(alloy_signer::Error::other)?;
        let json = serde_json::to_value(typed).map_err(alloy_signer::Error::other)?;
        let ours = TypedData::from_json_value(&json).map_err(alloy_signer::Error::other)?;
        if ours.signing_hash().0 != expected.0 {
            // Custody would sign (and its gates read) other typed data.
            return Err(alloy_signer::Error::other(Error::Mismatch(
                "alloy's EIP-712 signing hash",
            )));
        }
        let consent = self.consent.consent(&SigningRequest::TypedData(&ours))?;
        Ok(Pending::drive(async move {
            let sig = self
                .signer
                .sign_typed_data(&ours, &consent)
                .await
                .map_err(alloy_signer::Error::other)?;
            Ok(signature(sig.signature()))
        }))
    }
}

type SigResult = alloy_signer::Result<Signature>;

impl fmt::Debug for AlloySigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlloySigner")
            .field("signer", &self.signer)
            .field("chain_id", &self.chain_id)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Signer for AlloySigner {
    async fn sign_hash(&self, hash: &B256) -> SigResult {
        self.sign_digest(hash)?.await
    }

    async fn sign_message(&self, message: &[u8]) -> SigResult {
        self.sign_personal(message)?.await
    }

    async fn sign_typed_data<T: SolStruct + Send + Sync>(
        &self,
        payload: &T,
        domain: &SolDomain,
    ) -> SigResult {
        self.sign_typed(&typed_data_of(payload, domain)?)?.await
    }

    async fn sign_dynamic_typed_data(&self, payload: &alloy_dyn_abi::TypedData) -> SigResult {
        self.sign_typed(payload)?.await
    }

    fn address(&self) -> alloy_primitives::Address {
        self.address
    }

    fn chain_id(&self) -> Option<ChainId> {
        self.chain_id
    }

    fn set_chain_id(&mut self, chain_id: Option<ChainId>) {
        self.chain_id = chain_id;
    }
}

impl SignerSync for AlloySigner {
    fn sign_hash_sync(&self, hash: &B256) -> SigResult {
        self.sign_digest(hash)?.wait()
    }

    fn sign_message_sync(&self, message: &[u8]) -> SigResult {
        self.sign_personal(message)?.wait()
    }

    fn sign_typed_data_sync<T: SolStruct>(&self, payload: &T, domain: &SolDomain) -> SigResult {
        self.sign_typed(&typed_data_of(payload, domain)?)?.wait()
    }

    fn sign_dynamic_typed_data_sync(&self, payload: &alloy_dyn_abi::TypedData) -> SigResult {
        self.sign_typed(payload)?.wait()
    }

    fn chain_id_sync(&self) -> Option<ChainId> {
        self.chain_id
    }
}

#[async_trait::async_trait]
impl TxSigner<Signature> for AlloySigner {
    fn address(&self) -> alloy_primitives::Address {
        self.address
    }

    async fn sign_transaction(&self, tx: &mut dyn SignableTransaction<Signature>) -> SigResult {
        self.sign_tx(tx)?.await
    }
}

impl TxSignerSync<Signature> for AlloySigner {
    fn address(&self) -> alloy_primitives::Address {
        self.address
    }

    fn sign_transaction_sync(&self, tx: &mut dyn SignableTransaction<Signature>) -> SigResult {
        self.sign_tx(tx)?.wait()
    }
}

/// A Solidity struct and its domain as EIP-712 typed data (the types from
/// the struct's own type string, the message from its values), so that it
/// is signed with its typed intent. (alloy's own `TypedData::from_struct`
/// needs the struct to be `Serialize`, which `SolStruct` does not promise.)
fn typed_data_of<T: SolStruct>(
    payload: &T,
    domain: &SolDomain,
) -> alloy_signer::Result<alloy_dyn_abi::TypedData> {
    let mut resolver = alloy_dyn_abi::eip712::Resolver::from_struct::<T>();
    resolver
        .ingest_string(domain.encode_type())
        .map_err(alloy_signer::Error::other)?;
    let ty = resolver
        .resolve(T::NAME)
        .map_err(alloy_signer::Error::other)?;
    let value = ty
        .abi_decode(&abi_encode::<T>(payload))
        .map_err(alloy_signer::Error::other)?;
    Ok(alloy_dyn_abi::TypedData {
        domain: domain.clone(),
        resolver,
        primary_type: T::NAME.into(),
        message: json_of(&value)?,
    })
}

/// The ABI encoding of a value of the Solidity type `S`.
fn abi_encode<S: alloy_sol_types::SolType>(value: &S::RustType) -> Vec<u8> {
    S::abi_encode(value)
}

/// The JSON of an EIP-712 value, as `eth_signTypedData_v4` writes it:
/// numbers as decimal strings, bytes and addresses as `0x` hex, structs as
/// objects.
fn json_of(value: &alloy_dyn_abi::DynSolValue) -> alloy_signer::Result<serde_json::Value> {
    use alloy_dyn_abi::DynSolValue as V;
    use serde_json::Value as J;
    let hex = |bytes: &[u8]| J::String(format!("0x{}", hex::encode(bytes)));
    Ok(match value {
        V::Bool(b) => J::Bool(*b),
        V::Int(i, _) => J::String(i.to_string()),
        V::Uint(u, _) => J::String(u.to_string()),
        V::FixedBytes(word, size) => hex(word.get(..*size).unwrap_or_default()),
        V::Address(a) => hex(a.as_slice()),
        V::Bytes(b) => hex(b),
        V::String(s) => J::String(s.clone()),
        V::Array(items) | V::FixedArray(items) => {
            J::Array(items.iter().map(json_of).collect::<Result<_, _>>()?)
        }
        V::CustomStruct {
            prop_names, tuple, ..
        } if prop_names.len() == tuple.len() => J::Object(
            prop_names
                .iter()
                .zip(tuple)
                .map(|(name, v)| Ok((name.clone(), json_of(v)?)))
                .collect::<alloy_signer::Result<_>>()?,
        ),
        _ => {
            return Err(alloy_signer::Error::other(Error::Mismatch(
                "an EIP-712 value that is not a struct member type",
            )));
        }
    })
}

/// alloy's form of a custody signature.
fn signature(sig: &RecoverableSignature) -> Signature {
    Signature::new(
        alloy_primitives::U256::from_be_bytes(*sig.r()),
        alloy_primitives::U256::from_be_bytes(*sig.s()),
        sig.y_parity(),
    )
}

/// The custody transaction with alloy's fields, of alloy's type. A type
/// custody does not know is refused, never signed as another.
///
/// The caller checks that the result's signing hash is alloy's (a field
/// alloy signs that custody does not read shows there); the signer does.
///
/// # Errors
/// [`Error::UnsupportedType`]; [`Error::MissingTo`] for a type 3 or 4
/// without a recipient; [`Error::Mismatch`] for a typed transaction
/// without a chain id.
pub fn transaction_of(tx: &dyn SignableTransaction<Signature>) -> Result<Transaction, Error> {
    let ty = tx.ty();
    let to = match tx.kind() {
        TxKind::Call(to) => Some(Address(to.0.0)),
        TxKind::Create => None,
    };
    let chain_id = || {
        tx.chain_id()
            .ok_or(Error::Mismatch("a typed transaction without a chain id"))
    };
    let value = U256::from_be_bytes(tx.value().to_be_bytes());
    let data = tx.input().to_vec();
    let access_list = || AccessList(tx.access_list().map_or_else(Vec::new, access_list_of));
    let fee = U256::from_u128;
    let recipient = |t| to.ok_or(Error::MissingTo(t));
    Ok(match crate::TxType::try_from(ty)? {
        crate::TxType::Legacy => Transaction::Legacy(TxLegacy {
            chain_id: tx.chain_id(),
            nonce: tx.nonce(),
            gas_price: fee(tx.gas_price().unwrap_or_default()),
            gas_limit: tx.gas_limit(),
            to,
            value,
            data,
        }),
        crate::TxType::Eip2930 => Transaction::Eip2930(TxEip2930 {
            chain_id: chain_id()?,
            nonce: tx.nonce(),
            gas_price: fee(tx.gas_price().unwrap_or_default()),
            gas_limit: tx.gas_limit(),
            to,
            value,
            data,
            access_list: access_list(),
        }),
        crate::TxType::Eip1559 => Transaction::Eip1559(TxEip1559 {
            chain_id: chain_id()?,
            nonce: tx.nonce(),
            max_priority_fee_per_gas: fee(tx.max_priority_fee_per_gas().unwrap_or_default()),
            max_fee_per_gas: fee(tx.max_fee_per_gas()),
            gas_limit: tx.gas_limit(),
            to,
            value,
            data,
            access_list: access_list(),
        }),
        crate::TxType::Eip4844 => Transaction::Eip4844(TxEip4844 {
            chain_id: chain_id()?,
            nonce: tx.nonce(),
            max_priority_fee_per_gas: fee(tx.max_priority_fee_per_gas().unwrap_or_default()),
            max_fee_per_gas: fee(tx.max_fee_per_gas()),
            gas_limit: tx.gas_limit(),
            to: recipient(crate::TxType::Eip4844)?,
            value,
            data,
            access_list: access_list(),
            max_fee_per_blob_gas: fee(tx.max_fee_per_blob_gas().unwrap_or_default()),
            blob_versioned_hashes: tx
                .blob_versioned_hashes()
                .unwrap_or_default()
                .iter()
                .map(|h| h.0)
                .collect(),
        }),
        crate::TxType::Eip7702 => Transaction::Eip7702(TxEip7702 {
            chain_id: chain_id()?,
            nonce: tx.nonce(),
            max_priority_fee_per_gas: fee(tx.max_priority_fee_per_gas().unwrap_or_default()),
            max_fee_per_gas: fee(tx.max_fee_per_gas()),
            gas_limit: tx.gas_limit(),
            to: recipient(crate::TxType::Eip7702)?,
            value,
            data,
            access_list: access_list(),
            authorization_list: tx
                .authorization_list()
                .unwrap_or_default()
                .iter()
                .map(authorization_of)
                .collect(),
        }),
    })
}

fn access_list_of(list: &alloy_eips::eip2930::AccessList) -> Vec<AccessListItem> {
    list.0
        .iter()
        .map(|item| AccessListItem {
            address: Address(item.address.0.0),
            storage_keys: item.storage_keys.iter().map(|k| k.0).collect(),
        })
        .collect()
}

fn authorization_of(a: &alloy_eips::eip7702::SignedAuthorization) -> SignedAuthorization {
    SignedAuthorization {
        chain_id: U256::from_be_bytes(a.chain_id().to_be_bytes()),
        address: Address(a.address().0.0),
        nonce: a.nonce(),
        y_parity: a.y_parity(),
        r: U256::from_be_bytes(a.r().to_be_bytes()),
        s: U256::from_be_bytes(a.s().to_be_bytes()),
    }
}
