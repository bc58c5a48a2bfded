//! Legacy transactions, with (EIP-155) and without replay protection.

use custody_core::RecoverableSignature;

use crate::rlp_encode::Sink;
use crate::tx::{optional_address, signature_from_parts};
use crate::{Address, Error, U256, codec};

/// A legacy transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxLegacy {
    /// `Some` signs with EIP-155 replay protection for that chain; `None` is
    /// a pre-EIP-155 transaction, valid on every chain (`v` = 27/28).
    pub chain_id: Option<u64>,
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
}

impl TxLegacy {
    /// Puts into `s` the fields both forms share, in order: `nonce,
    /// gasPrice, gas, to, value, data` (EIP-155's `chainId, 0, 0` and the
    /// signature follow).
    pub(crate) fn fields<S: Sink>(&self, s: &mut S) {
        s.u64(self.nonce);
        s.uint(self.gas_price.minimal_be_bytes());
        s.u64(self.gas_limit);
        s.bytes(optional_address(self.to.as_ref()));
        s.uint(self.value.minimal_be_bytes());
        s.bytes(&self.data);
    }

    /// The `v` this transaction's signature is encoded with: 27/28, or
    /// `chainId * 2 + 35 + parity` (EIP-155). Computed in `u128`: with a
    /// 64-bit chain id it is below 2^66 and cannot overflow.
    #[must_use]
    pub fn v(&self, y_parity: bool) -> u128 {
        let parity = u128::from(y_parity);
        match self.chain_id {
            None => 27 + parity,
            Some(id) => u128::from(id) * 2 + 35 + parity,
        }
    }

    /// Decodes `rlp([nonce, gasPrice, gas, to, value, data, v, r, s])`.
    pub(crate) fn decode_signed(raw: &[u8]) -> Result<(Self, RecoverableSignature), Error> {
        let [nonce, gas_price, gas_limit, to, value, data, v, r, s] =
            codec::top_fields(raw, "legacy transaction")?;
        let (chain_id, y_parity) = chain_id_and_parity(&codec::u256(&v, "v")?)?;
        let tx = Self {
            chain_id,
            nonce: codec::u64(&nonce, "nonce")?,
            gas_price: codec::u256(&gas_price, "gas_price")?,
            gas_limit: codec::u64(&gas_limit, "gas_limit")?,
            to: codec::optional_address(&to, "to")?,
            value: codec::u256(&value, "value")?,
            data: codec::bytes(&data, "data")?.to_vec(),
        };
        let sig = signature_from_parts(&codec::u256(&r, "r")?, &codec::u256(&s, "s")?, y_parity)?;
        Ok((tx, sig))
    }
}

/// Splits a legacy `v` into the chain id (EIP-155) and the recovery parity.
/// Accepts 27/28 (no chain id) and every `v ≥ 35` whose chain id
/// `(v - 35) / 2` fits a `u64` (chain id 0 included, as other encoders
/// produce it); anything else is [`Error::InvalidV`].
pub(crate) fn chain_id_and_parity(v: &U256) -> Result<(Option<u64>, bool), Error> {
    let v = v.to_u128().ok_or(Error::InvalidV)?;
    match v {
        27 => Ok((None, false)),
        28 => Ok((None, true)),
        35.. => {
            let x = v - 35;
            let chain_id = u64::try_from(x / 2).map_err(|_| Error::InvalidV)?;
            Ok((Some(chain_id), !x.is_multiple_of(2)))
        }
        _ => Err(Error::InvalidV),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v_round_trips_for_every_chain_id_width() {
        for id in [
            0,
            1,
            37,
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 1,
            1 << 62,
            u64::MAX,
        ] {
            for parity in [false, true] {
                let tx = TxLegacy {
                    chain_id: Some(id),
                    ..TxLegacy::default()
                };
                let v = tx.v(parity);
                assert_eq!(v, u128::from(id) * 2 + 35 + u128::from(parity));
                assert_eq!(
                    chain_id_and_parity(&U256::from_u128(v)).unwrap(),
                    (Some(id), parity)
                );
            }
        }
        assert_eq!(
            chain_id_and_parity(&U256::from_u64(27)).unwrap(),
            (None, false)
        );
        assert_eq!(
            chain_id_and_parity(&U256::from_u64(28)).unwrap(),
            (None, true)
        );
        for bad in [0u64, 1, 26, 29, 30, 34] {
            assert!(matches!(
                chain_id_and_parity(&U256::from_u64(bad)),
                Err(Error::InvalidV)
            ));
        }
        let too_big = U256::from_u128(u128::from(u64::MAX) * 2 + 37);
        assert!(matches!(
            chain_id_and_parity(&too_big),
            Err(Error::InvalidV)
        ));
        assert!(matches!(
            chain_id_and_parity(&U256::MAX),
            Err(Error::InvalidV)
        ));
    }
}
