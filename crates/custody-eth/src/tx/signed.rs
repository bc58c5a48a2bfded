//! [`SignedTransaction`] and the strict decoder for raw signed transactions.

use custody_core::{Digest32, RecoverableSignature};

use crate::tx::UnsignedEncoding;
use crate::{
    Address, Error, Transaction, TxEip1559, TxEip2930, TxEip4844, TxEip7702, TxLegacy, TxType,
    keccak256,
};

/// A transaction with its signature and its signed encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransaction {
    tx: Transaction,
    signature: RecoverableSignature,
    encoded: Vec<u8>,
}

impl SignedTransaction {
    /// Attaches `signature` to `tx` and encodes it. The signature is taken
    /// as given; [`SignedTransaction::recover_sender`] says whose it is.
    #[must_use]
    pub fn new(tx: Transaction, signature: RecoverableSignature) -> Self {
        let encoded = tx.encode_signed(&signature);
        Self {
            tx,
            signature,
            encoded,
        }
    }

    /// Attaches `signature` to the transaction `unsigned` encodes, copying
    /// the encoded fields out of its unsigned payload rather than encoding
    /// them again (what [`SignedTransaction::new`] does): the signer hashes
    /// that payload, then builds its answer here.
    pub(crate) fn from_encoding(
        unsigned: &UnsignedEncoding<'_>,
        signature: RecoverableSignature,
    ) -> Self {
        Self {
            tx: unsigned.transaction().clone(),
            encoded: unsigned.encode_signed(&signature),
            signature,
        }
    }

    /// Decodes a raw signed transaction of any supported type, strictly.
    ///
    /// The first byte selects the type (EIP-2718): `0x01`–`0x04` are typed
    /// transactions, `0xc0` and above a legacy RLP list; any other type byte
    /// is [`Error::UnsupportedType`] (never read as legacy). Then:
    /// canonical RLP only, exactly the fields of the type, nothing after
    /// them, integers without leading zeros and within their width, 20-byte
    /// addresses (and a `to` for types 3 and 4), a legacy `v` of 27/28 or a
    /// valid EIP-155 value, a typed `yParity` of 0 or 1, `0 < r < n` and
    /// `0 < s ≤ n/2` (EIP-2). What is accepted re-encodes to the same bytes.
    ///
    /// # Errors
    /// [`Error::Empty`], [`Error::NotATransaction`],
    /// [`Error::UnsupportedType`], [`Error::Rlp`], [`Error::TrailingBytes`],
    /// [`Error::FieldCount`], [`Error::InvalidLength`],
    /// [`Error::LeadingZeros`], [`Error::Overflow`], [`Error::MissingTo`],
    /// [`Error::InvalidV`], [`Error::InvalidYParity`], [`Error::HighS`],
    /// [`Error::InvalidSignature`].
    pub fn decode(raw: &[u8]) -> Result<Self, Error> {
        let (&first, payload) = raw.split_first().ok_or(Error::Empty)?;
        let (tx, signature) = match first {
            0xc0..=0xff => {
                let (tx, sig) = TxLegacy::decode_signed(raw)?;
                (Transaction::Legacy(tx), sig)
            }
            0x80..=0xbf => return Err(Error::NotATransaction(first)),
            t => match TxType::try_from(t)? {
                TxType::Eip2930 => {
                    let (tx, sig) = TxEip2930::decode_signed(payload)?;
                    (Transaction::Eip2930(tx), sig)
                }
                TxType::Eip1559 => {
                    let (tx, sig) = TxEip1559::decode_signed(payload)?;
                    (Transaction::Eip1559(tx), sig)
                }
                TxType::Eip4844 => {
                    let (tx, sig) = TxEip4844::decode_signed(payload)?;
                    (Transaction::Eip4844(tx), sig)
                }
                TxType::Eip7702 => {
                    let (tx, sig) = TxEip7702::decode_signed(payload)?;
                    (Transaction::Eip7702(tx), sig)
                }
                // Type 0 is never written as a prefix byte.
                TxType::Legacy => return Err(Error::UnsupportedType(t)),
            },
        };
        let signed = Self::new(tx, signature);
        // Belt and braces: the field decoders are strict, so this holds by
        // construction; checking it makes "accepted implies canonical" (and
        // so `hash()` being the hash of `raw`) independent of them.
        if signed.encoded != raw {
            return Err(Error::Rlp {
                field: "transaction",
                reason: "non-canonical encoding",
            });
        }
        Ok(signed)
    }

    /// The transaction.
    #[must_use]
    pub fn transaction(&self) -> &Transaction {
        &self.tx
    }

    /// The signature (low `s`, with its recovery parity).
    #[must_use]
    pub fn signature(&self) -> &RecoverableSignature {
        &self.signature
    }

    /// The `v` as the encoding carries it: `yParity` (0/1) for typed
    /// transactions; 27/28, or `chainId * 2 + 35/36` (EIP-155), for legacy.
    #[must_use]
    pub fn v(&self) -> u128 {
        self.tx.signature_v(self.signature.y_parity())
    }

    /// The signed encoding (for `eth_sendRawTransaction`).
    #[must_use]
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// The transaction hash: Keccak-256 of [`SignedTransaction::encoded`],
    /// computed on each call (signing does not pay for it: a service that
    /// only broadcasts the encoding never needs it).
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        keccak256(&self.encoded)
    }

    /// The digest that was signed.
    #[must_use]
    pub fn signing_hash(&self) -> Digest32 {
        self.tx.signing_hash()
    }

    /// The address whose key made the signature.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] if no public key recovers (an `r` that is
    /// not the x coordinate of a curve point).
    pub fn recover_sender(&self) -> Result<Address, Error> {
        self.signature
            .recover(&self.signing_hash())
            .map(|key| Address::from_public_key(&key))
            .map_err(|_| Error::InvalidSignature)
    }

    /// The transaction and its signature.
    #[must_use]
    pub fn into_parts(self) -> (Transaction, RecoverableSignature) {
        (self.tx, self.signature)
    }
}

/// Decodes a raw signed transaction: [`SignedTransaction::decode`].
///
/// # Errors
/// As [`SignedTransaction::decode`].
pub fn decode_signed(raw: &[u8]) -> Result<SignedTransaction, Error> {
    SignedTransaction::decode(raw)
}
