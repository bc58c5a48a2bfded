//! EIP-7702 authorizations: an account (the *authority*) signs
//! `(chain_id, address, nonce)` to delegate its code to `address`.
//!
//! Not to be confused with [`custody_core::Authorization`], the proof of
//! consent (a TOTP code) presented to gates with every signing request.

use custody_core::{Digest32, RecoverableSignature};
use rlp::Rlp;

use crate::rlp_encode::{Encode, Sink, items_len, list_len, write_list_header};
use crate::tx::signature_from_parts;
use crate::{Address, Error, U256, codec, keccak256};

/// The EIP-7702 `MAGIC` byte that prefixes an authorization's signing payload.
pub const AUTHORIZATION_MAGIC: u8 = 0x05;

/// An unsigned EIP-7702 authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Authorization {
    /// The chain it is valid on; 0 means every chain. A 256-bit integer, as
    /// EIP-7702 specifies.
    pub chain_id: U256,
    /// The contract whose code the authority delegates to.
    pub address: Address,
    /// The authority's nonce at the time the authorization is used.
    pub nonce: u64,
}

impl Authorization {
    /// The digest the authority signs:
    /// `keccak256(0x05 ‖ rlp([chain_id, address, nonce]))`.
    #[must_use]
    pub fn signing_hash(&self) -> Digest32 {
        let payload_len = items_len(|n| self.fields(n));
        let mut payload = Vec::with_capacity(1 + list_len(payload_len));
        payload.push(AUTHORIZATION_MAGIC);
        write_list_header(&mut payload, payload_len);
        self.fields(&mut payload);
        Digest32(keccak256(&payload))
    }

    /// Puts `chain_id, address, nonce` into `s`: the fields of the signing
    /// payload, and the first three of a signed authorization.
    fn fields<S: Sink>(&self, s: &mut S) {
        s.uint(self.chain_id.minimal_be_bytes());
        s.bytes(self.address.as_bytes());
        s.u64(self.nonce);
    }

    /// Attaches a signature.
    #[must_use]
    pub fn into_signed(self, signature: &RecoverableSignature) -> SignedAuthorization {
        SignedAuthorization {
            chain_id: self.chain_id,
            address: self.address,
            nonce: self.nonce,
            y_parity: u8::from(signature.y_parity()),
            r: U256::from_be_bytes(*signature.r()),
            s: U256::from_be_bytes(*signature.s()),
        }
    }
}

/// A signed EIP-7702 authorization as a type 4 transaction carries it:
/// `[chain_id, address, nonce, y_parity, r, s]`.
///
/// The fields hold what the wire holds. EIP-7702 makes a transaction invalid
/// only when a field exceeds its width (checked when decoding); an
/// authorization with a bad signature is skipped at execution, not rejected
/// with its transaction, so the signature is checked only by
/// [`SignedAuthorization::recover_authority`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SignedAuthorization {
    /// The chain it is valid on; 0 means every chain.
    pub chain_id: U256,
    /// The contract whose code the authority delegates to.
    pub address: Address,
    /// The authority's nonce.
    pub nonce: u64,
    /// The recovery parity (valid values: 0 and 1).
    pub y_parity: u8,
    /// The signature's `r`.
    pub r: U256,
    /// The signature's `s` (valid values: `0 < s ≤ n/2`).
    pub s: U256,
}

impl SignedAuthorization {
    /// The unsigned tuple.
    #[must_use]
    pub fn authorization(&self) -> Authorization {
        Authorization {
            chain_id: self.chain_id,
            address: self.address,
            nonce: self.nonce,
        }
    }

    /// The signature, checked as EIP-7702 checks it before use.
    ///
    /// # Errors
    /// [`Error::InvalidYParity`] unless `y_parity` is 0 or 1;
    /// [`Error::HighS`] if `s > n/2`; [`Error::InvalidSignature`] if `r` or
    /// `s` is zero or not below the curve order.
    pub fn signature(&self) -> Result<RecoverableSignature, Error> {
        let parity = match self.y_parity {
            0 => false,
            1 => true,
            _ => return Err(Error::InvalidYParity),
        };
        signature_from_parts(&self.r, &self.s, parity)
    }

    /// The address that signed this authorization (the account whose code
    /// it delegates).
    ///
    /// # Errors
    /// As [`SignedAuthorization::signature`], or [`Error::InvalidSignature`]
    /// if no public key recovers.
    pub fn recover_authority(&self) -> Result<Address, Error> {
        self.signature()?
            .recover(&self.authorization().signing_hash())
            .map(|key| Address::from_public_key(&key))
            .map_err(|_| Error::InvalidSignature)
    }

    /// Puts the fields into `s`, in order.
    fn fields<S: Sink>(&self, s: &mut S) {
        self.authorization().fields(s);
        s.u64(u64::from(self.y_parity));
        s.uint(self.r.minimal_be_bytes());
        s.uint(self.s.minimal_be_bytes());
    }

    /// Decodes `[chain_id, address, nonce, y_parity, r, s]`, strictly.
    pub(crate) fn decode(rlp: &Rlp<'_>) -> Result<Self, Error> {
        let [chain_id, address, nonce, y_parity, r, s] = codec::fields(rlp, "authorization")?;
        Ok(Self {
            chain_id: codec::u256(&chain_id, "authorization.chain_id")?,
            address: codec::address(&address, "authorization.address")?,
            nonce: codec::u64(&nonce, "authorization.nonce")?,
            y_parity: codec::u8(&y_parity, "authorization.y_parity")?,
            r: codec::u256(&r, "authorization.r")?,
            s: codec::u256(&s, "authorization.s")?,
        })
    }
}

/// `[chain_id, address, nonce, y_parity, r, s]`.
impl Encode for SignedAuthorization {
    fn encoded_len(&self) -> usize {
        list_len(items_len(|n| self.fields(n)))
    }

    fn write(&self, out: &mut Vec<u8>) {
        write_list_header(out, items_len(|n| self.fields(n)));
        self.fields(out);
    }
}

/// An EIP-7702 authorization list: the list of the authorizations.
impl Encode for [SignedAuthorization] {
    fn encoded_len(&self) -> usize {
        list_len(self.iter().map(Encode::encoded_len).sum())
    }

    fn write(&self, out: &mut Vec<u8>) {
        write_list_header(out, self.iter().map(Encode::encoded_len).sum());
        for a in self {
            a.write(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_core::PublicKey;
    use k256::ecdsa::SigningKey;

    fn signed() -> (SignedAuthorization, Address) {
        let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
        let authority =
            Address::from_public_key(&PublicKey::from(k256::PublicKey::from(key.verifying_key())));
        let auth = Authorization {
            chain_id: U256::from_u64(1),
            address: Address([0xaa; 20]),
            nonce: 3,
        };
        let (sig, id) = key.sign_prehash_recoverable(auth.signing_hash().as_bytes());
        let low = sig.normalize_s();
        // Low-s normalization flips the recovery parity with s.
        let parity = id.is_y_odd() ^ (low != sig);
        let (r, s) = low.split_bytes();
        let sig = RecoverableSignature::from_parts(r.into(), s.into(), parity).unwrap();
        (auth.into_signed(&sig), authority)
    }

    #[test]
    fn authority_recovers_and_bad_signatures_are_typed_errors() {
        let (good, authority) = signed();
        assert_eq!(good.recover_authority().unwrap(), authority);
        let flipped = SignedAuthorization {
            y_parity: good.y_parity ^ 1,
            ..good
        };
        assert_ne!(flipped.recover_authority().ok(), Some(authority));
        let bad_parity = SignedAuthorization {
            y_parity: 2,
            ..good
        };
        assert!(matches!(
            bad_parity.recover_authority(),
            Err(Error::InvalidYParity)
        ));
        let high_s = SignedAuthorization {
            s: U256::MAX,
            ..good
        };
        assert!(matches!(high_s.recover_authority(), Err(Error::HighS)));
        let zero_r = SignedAuthorization {
            r: U256::ZERO,
            ..good
        };
        assert!(matches!(
            zero_r.recover_authority(),
            Err(Error::InvalidSignature)
        ));
        assert_eq!(good.authorization().nonce, 3);
    }
}
