//! [`EthSigner`]: Ethereum signing through a [`KeySigner`], so the key stays
//! wherever its backend keeps it (software vault, KMS, HSM, enclave).
//!
//! Every method returns a [`Pending`]: `.wait()` it from synchronous code,
//! `.await` it from async code. One implementation serves both; a software
//! backend answers without allocating a future.
//!
//! Each request names what it signs ([`Intent`]) so that gates and policy on
//! the way can read it: transactions, EIP-7702 authorizations, EIP-191
//! personal messages and EIP-712 typed data are typed intents carrying the
//! value itself; a bare 32-byte digest goes through the separately named
//! [`EthSigner::sign_hash_raw`], and passes the same gates.
//!
//! Message signatures (EIP-191, EIP-712) carry `v` = 27/28 and never an
//! EIP-155 value: chain binding for messages is the EIP-712 domain's
//! `chainId`, not `v`.

use std::fmt;

use custody_core::{
    Authorization as Consent, Digest32, Intent, IntentKind, KeySigner, Pending, PublicKey,
    RecoverableSignature,
};

use crate::tx::UnsignedEncoding;
use crate::{
    Address, Authorization, Error, MessageSignature, PersonalMessage, SignedAuthorization,
    SignedTransaction, Transaction, TypedData,
};

/// Signs Ethereum transactions, authorizations and messages with one pinned
/// key.
#[derive(Clone)]
pub struct EthSigner {
    signer: KeySigner,
    public_key: PublicKey,
    address: Address,
}

impl EthSigner {
    /// Wraps a pinned secp256k1 key; its address is computed once, here.
    ///
    /// # Errors
    /// [`Error::Core`] ([`custody_core::Error::Unsupported`]) for a key of
    /// another algorithm (a JOSE key): it has no Ethereum address.
    pub fn new(signer: KeySigner) -> Result<Self, Error> {
        let public_key = *signer.key().secp256k1()?;
        let address = Address::from_public_key(&public_key);
        Ok(Self {
            signer,
            public_key,
            address,
        })
    }

    /// The pinned secp256k1 public key.
    #[must_use]
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The address of the pinned key.
    #[must_use]
    pub fn address(&self) -> Address {
        self.address
    }

    /// The underlying key signer.
    #[must_use]
    pub fn key_signer(&self) -> &KeySigner {
        &self.signer
    }

    /// Signs `tx` (its [`Transaction::signing_hash`]) with intent
    /// [`IntentKind::Transaction`], presenting `consent` to every gate.
    ///
    /// The signature is normalized (low `s`, parity that recovers the pinned
    /// key) and encoded with the `v` of the transaction's type: 27/28 for
    /// legacy without a chain id, `chainId * 2 + 35/36` for EIP-155, `yParity`
    /// for typed transactions.
    ///
    /// # Errors
    /// [`Error::Core`]: a gate's denial, a backend failure, or a signature
    /// that does not verify against the pinned key.
    pub fn sign_transaction<'a>(
        &'a self,
        tx: &'a Transaction,
        consent: &'a Consent,
    ) -> Pending<'a, Result<SignedTransaction, Error>> {
        let intent = Intent::typed(IntentKind::Transaction, tx);
        // One encoding of the fields: the unsigned payload is hashed here,
        // and the signed form copies its fields.
        let unsigned = UnsignedEncoding::new(tx);
        self.signer
            .sign(unsigned.signing_hash(), intent, consent)
            .map(move |sig| Ok(SignedTransaction::from_encoding(&unsigned, sig?)))
    }

    /// Signs an EIP-7702 authorization with intent
    /// [`IntentKind::Authorization`]: this key becomes the authority that
    /// delegates its code to `authorization.address`.
    ///
    /// # Errors
    /// As [`EthSigner::sign_transaction`].
    pub fn sign_authorization<'a>(
        &'a self,
        authorization: &'a Authorization,
        consent: &'a Consent,
    ) -> Pending<'a, Result<SignedAuthorization, Error>> {
        let intent = Intent::typed(IntentKind::Authorization, authorization);
        self.signer
            .sign(authorization.signing_hash(), intent, consent)
            .map(move |sig| Ok(authorization.into_signed(&sig?)))
    }

    /// Signs an EIP-191 personal message (`personal_sign`): the digest
    /// [`PersonalMessage::signing_hash`], with intent
    /// [`IntentKind::PersonalMessage`] carrying the message. `v` is 27/28.
    ///
    /// # Errors
    /// As [`EthSigner::sign_transaction`].
    pub fn sign_personal_message<'a>(
        &'a self,
        message: &'a PersonalMessage,
        consent: &'a Consent,
    ) -> Pending<'a, Result<MessageSignature, Error>> {
        let intent = Intent::typed(IntentKind::PersonalMessage, message);
        self.signer
            .sign(message.signing_hash(), intent, consent)
            .map(|sig| Ok(MessageSignature::new(sig?)))
    }

    /// Signs EIP-712 typed data (`eth_signTypedData_v4`): the digest
    /// [`TypedData::signing_hash`], with intent [`IntentKind::TypedData`]
    /// carrying the typed data. `v` is 27/28.
    ///
    /// It takes the typed data itself, never a digest computed by the
    /// caller: a [`TypedData`] can only be made by parsing and hashing the
    /// data, so what a gate reads is what is signed. Typed data read
    /// leniently ([`TypedData::from_json_value_lenient`]) with fields left
    /// out of the hash carries them to the audit record as the field
    /// `ignored-fields` (a JSON array of their paths).
    ///
    /// # Errors
    /// As [`EthSigner::sign_transaction`].
    pub fn sign_typed_data<'a>(
        &'a self,
        typed_data: &'a TypedData,
        consent: &'a Consent,
    ) -> Pending<'a, Result<MessageSignature, Error>> {
        let mut intent = Intent::typed(IntentKind::TypedData, typed_data);
        if let Some(ignored) = typed_data.ignored_note() {
            intent = intent.with_note("ignored-fields", ignored);
        }
        self.signer
            .sign(typed_data.signing_hash(), intent, consent)
            .map(|sig| Ok(MessageSignature::new(sig?)))
    }

    /// Signs a bare 32-byte digest, with intent [`IntentKind::RawDigest`]:
    /// nothing about what it means reaches the gates, which treat it as
    /// such. Prefer the typed methods; this exists for hashes computed
    /// elsewhere.
    ///
    /// # Errors
    /// As [`EthSigner::sign_transaction`].
    pub fn sign_hash_raw<'a>(
        &'a self,
        digest: Digest32,
        consent: &'a Consent,
    ) -> Pending<'a, Result<RecoverableSignature, Error>> {
        self.signer
            .sign(digest, Intent::raw_digest(), consent)
            .map(|sig| Ok(sig?))
    }
}

impl fmt::Debug for EthSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EthSigner")
            .field("address", &self.address)
            .field("key", self.signer.key())
            .finish()
    }
}
