//! The transaction encoder: each type names its fields once, in a
//! function generic over a [`Sink`], and the unsigned payload and the
//! signed form are both written from it with [`crate::rlp_encode`], each
//! into a buffer of its exact length.
//!
//! Both forms are `[type byte] ‖ rlp([fields…, trailer…])`: the fields are
//! the same bytes in both, only the trailer differs (nothing, or EIP-155's
//! `chainId, 0, 0`, when unsigned; `v, r, s` when signed). So
//! [`UnsignedEncoding`] keeps the unsigned payload it hashed, and the
//! signed form copies the fields out of it rather than encoding them again:
//! signing a transaction encodes its fields once.

use std::ops::Range;

use custody_core::{Digest32, RecoverableSignature};

use crate::rlp_encode::{Sink, items_len, list_len, u64_len, uint_len, write_list_header};
use crate::{Address, Transaction, TxType, keccak256};

/// The byte string for a `to` that may be absent (contract creation): the
/// address, or the empty string.
pub(crate) fn optional_address(to: Option<&Address>) -> &[u8] {
    to.map_or(&[], |a| a.as_bytes().as_slice())
}

impl Transaction {
    /// Puts into `s` the fields of this transaction's RLP list that its
    /// unsigned and signed forms share, in order (everything but EIP-155's
    /// `chainId, 0, 0` and the signature).
    fn fields<S: Sink>(&self, s: &mut S) {
        match self {
            Self::Legacy(tx) => tx.fields(s),
            Self::Eip2930(tx) => tx.fields(s),
            Self::Eip1559(tx) => tx.fields(s),
            Self::Eip4844(tx) => tx.fields(s),
            Self::Eip7702(tx) => tx.fields(s),
        }
    }

    /// The EIP-2718 type byte that prefixes a typed transaction's
    /// encodings; none for legacy.
    fn type_prefix(&self) -> Option<u8> {
        match self.tx_type() {
            TxType::Legacy => None,
            typed => Some(typed.as_u8()),
        }
    }

    /// The chain id of EIP-155's `chainId, 0, 0`, which ends the unsigned
    /// payload of a legacy transaction with a chain id.
    fn eip155_chain_id(&self) -> Option<u64> {
        match self {
            Self::Legacy(tx) => tx.chain_id,
            _ => None,
        }
    }
}

/// A transaction's unsigned payload, encoded once: its signing hash and,
/// given a signature, its signed encoding (whose fields are copied from
/// the payload, not encoded again) both come from it.
#[derive(Debug)]
pub(crate) struct UnsignedEncoding<'a> {
    /// The transaction encoded.
    tx: &'a Transaction,
    /// The unsigned payload, as [`Transaction::encode_unsigned`] returns it.
    payload: Vec<u8>,
    /// Where the fields shared with the signed form lie in `payload`
    /// (after the type byte and the list header, before any EIP-155
    /// trailer).
    fields: Range<usize>,
}

impl<'a> UnsignedEncoding<'a> {
    /// Encodes the unsigned payload of `tx`:
    /// `[type byte] ‖ rlp([fields…, (EIP-155: chainId, 0, 0)])`.
    pub(crate) fn new(tx: &'a Transaction) -> Self {
        let prefix = tx.type_prefix();
        let eip155 = tx.eip155_chain_id();
        // `0, 0` are two empty strings of one byte each.
        let trailer_len = eip155.map_or(0, |id| u64_len(id) + 2);
        let list_payload = items_len(|n| tx.fields(n)) + trailer_len;
        let mut payload =
            Vec::with_capacity(usize::from(prefix.is_some()) + list_len(list_payload));
        payload.extend(prefix);
        write_list_header(&mut payload, list_payload);
        let start = payload.len();
        tx.fields(&mut payload);
        let end = payload.len();
        if let Some(id) = eip155 {
            payload.u64(id);
            payload.u64(0);
            payload.u64(0);
        }
        Self {
            tx,
            payload,
            fields: start..end,
        }
    }

    /// The transaction encoded.
    pub(crate) fn transaction(&self) -> &'a Transaction {
        self.tx
    }

    /// The digest to sign: Keccak-256 of the unsigned payload.
    pub(crate) fn signing_hash(&self) -> Digest32 {
        Digest32(keccak256(&self.payload))
    }

    /// The unsigned payload.
    pub(crate) fn into_payload(self) -> Vec<u8> {
        self.payload
    }

    /// The signed encoding with `signature`, the fields copied from the
    /// unsigned payload.
    pub(crate) fn encode_signed(&self, signature: &RecoverableSignature) -> Vec<u8> {
        // `fields` was recorded while writing `payload`, so it is in range;
        // were it not, the empty slice would make a signed encoding that
        // every test (and `SignedTransaction::decode`'s re-encoding check)
        // rejects, rather than a panic.
        let fields = self.payload.get(self.fields.clone()).unwrap_or_default();
        signed(self.tx, fields.len(), signature, |out| {
            out.extend_from_slice(fields);
        })
    }
}

/// The signed encoding of `tx`, written straight from its fields.
pub(crate) fn encode_signed(tx: &Transaction, signature: &RecoverableSignature) -> Vec<u8> {
    let fields_len = items_len(|n| tx.fields(n));
    signed(tx, fields_len, signature, |out| tx.fields(out))
}

/// `[type byte] ‖ rlp([fields…, v, r, s])`, where `write_fields` writes
/// the `fields_len` bytes of the encoded fields.
fn signed(
    tx: &Transaction,
    fields_len: usize,
    signature: &RecoverableSignature,
    write_fields: impl FnOnce(&mut Vec<u8>),
) -> Vec<u8> {
    let v = tx.signature_v(signature.y_parity()).to_be_bytes();
    let (r, s) = (signature.r(), signature.s());
    let prefix = tx.type_prefix();
    let list_payload = fields_len + uint_len(&v) + uint_len(r) + uint_len(s);
    let mut out = Vec::with_capacity(usize::from(prefix.is_some()) + list_len(list_payload));
    out.extend(prefix);
    write_list_header(&mut out, list_payload);
    write_fields(&mut out);
    out.uint(&v);
    out.uint(r);
    out.uint(s);
    out
}

#[cfg(test)]
mod tests {
    //! The reuse path ([`UnsignedEncoding`] then
    //! [`SignedTransaction::from_encoding`], what the signer does) against
    //! the direct one ([`Transaction::encode_signed`] and
    //! [`SignedTransaction::new`]), for every type, with buffers of exactly
    //! the computed length. Conformance of the bytes themselves is the
    //! business of the ethers.js, ethereum/tests and alloy tests in
    //! `tests/`, which all sign through the reuse path.

    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::{
        AccessList, AccessListItem, SignedAuthorization, SignedTransaction, TxEip1559, TxEip2930,
        TxEip4844, TxEip7702, TxLegacy, U256,
    };

    fn u256() -> impl Strategy<Value = U256> {
        prop_oneof![
            Just(U256::ZERO),
            (0u64..0x100).prop_map(U256::from_u64),
            any::<u64>().prop_map(U256::from_u64),
            any::<[u8; 32]>().prop_map(U256::from_be_bytes),
        ]
    }

    fn u64_edge() -> impl Strategy<Value = u64> {
        prop_oneof![Just(0u64), 0..0x81u64, any::<u64>(), Just(u64::MAX)]
    }

    fn address() -> impl Strategy<Value = Address> {
        any::<[u8; 20]>().prop_map(Address)
    }

    /// Call data at each header boundary (55/56, 255/256, 65535/65536).
    fn data() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => vec(any::<u8>(), 0..3),
            4 => vec(any::<u8>(), 54..58),
            2 => vec(any::<u8>(), 254..258),
            1 => vec(any::<u8>(), 65_534..65_538),
        ]
    }

    fn access_list() -> impl Strategy<Value = AccessList> {
        vec(
            (address(), vec(any::<[u8; 32]>(), 0..4)).prop_map(|(address, storage_keys)| {
                AccessListItem {
                    address,
                    storage_keys,
                }
            }),
            0..4,
        )
        .prop_map(AccessList)
    }

    fn authorizations() -> impl Strategy<Value = Vec<SignedAuthorization>> {
        vec(
            (u256(), address(), u64_edge(), 0u8..3, u256(), u256()).prop_map(
                |(chain_id, address, nonce, y_parity, r, s)| SignedAuthorization {
                    chain_id,
                    address,
                    nonce,
                    y_parity,
                    r,
                    s,
                },
            ),
            0..4,
        )
    }

    /// Chain id, nonce, two prices, gas limit, value, data, access list.
    type Common = (u64, u64, U256, U256, u64, U256, Vec<u8>, AccessList);

    // Boxed, as the branches of `transaction` are: unboxed, the nested
    // strategy types overflow a test thread's stack in debug builds.
    fn common() -> BoxedStrategy<Common> {
        (
            u64_edge(),
            u64_edge(),
            u256(),
            u256(),
            u64_edge(),
            u256(),
            data(),
            access_list(),
        )
            .boxed()
    }

    fn transaction() -> impl Strategy<Value = Transaction> {
        prop_oneof![
            (
                proptest::option::of(u64_edge()),
                common(),
                proptest::option::of(address())
            )
                .prop_map(
                    |(chain_id, (_, nonce, gas_price, _, gas_limit, value, data, _), to)| {
                        Transaction::Legacy(TxLegacy {
                            chain_id,
                            nonce,
                            gas_price,
                            gas_limit,
                            to,
                            value,
                            data,
                        })
                    }
                )
                .boxed(),
            (common(), proptest::option::of(address()))
                .prop_map(
                    |((chain_id, nonce, gas_price, _, gas_limit, value, data, access_list), to)| {
                        Transaction::Eip2930(TxEip2930 {
                            chain_id,
                            nonce,
                            gas_price,
                            gas_limit,
                            to,
                            value,
                            data,
                            access_list,
                        })
                    }
                )
                .boxed(),
            (common(), proptest::option::of(address()))
                .prop_map(
                    |((chain_id, nonce, tip, max_fee, gas_limit, value, data, access_list), to)| {
                        Transaction::Eip1559(TxEip1559 {
                            chain_id,
                            nonce,
                            max_priority_fee_per_gas: tip,
                            max_fee_per_gas: max_fee,
                            gas_limit,
                            to,
                            value,
                            data,
                            access_list,
                        })
                    }
                )
                .boxed(),
            (common(), address(), u256(), vec(any::<[u8; 32]>(), 0..3))
                .prop_map(
                    |(
                        (chain_id, nonce, tip, max_fee, gas_limit, value, data, access_list),
                        to,
                        max_fee_per_blob_gas,
                        blob_versioned_hashes,
                    )| {
                        Transaction::Eip4844(TxEip4844 {
                            chain_id,
                            nonce,
                            max_priority_fee_per_gas: tip,
                            max_fee_per_gas: max_fee,
                            gas_limit,
                            to,
                            value,
                            data,
                            access_list,
                            max_fee_per_blob_gas,
                            blob_versioned_hashes,
                        })
                    }
                )
                .boxed(),
            (common(), address(), authorizations())
                .prop_map(
                    |(
                        (chain_id, nonce, tip, max_fee, gas_limit, value, data, access_list),
                        to,
                        authorization_list,
                    )| {
                        Transaction::Eip7702(TxEip7702 {
                            chain_id,
                            nonce,
                            max_priority_fee_per_gas: tip,
                            max_fee_per_gas: max_fee,
                            gas_limit,
                            to,
                            value,
                            data,
                            access_list,
                            authorization_list,
                        })
                    }
                )
                .boxed(),
        ]
    }

    /// A valid low-`s` signature whose `r` and `s` may have leading zero
    /// bytes (which the encoding drops).
    fn signature() -> impl Strategy<Value = RecoverableSignature> {
        (
            0usize..3,
            any::<[u8; 32]>(),
            0usize..3,
            any::<[u8; 32]>(),
            any::<bool>(),
        )
            .prop_map(|(r_zeros, mut r, s_zeros, mut s, parity)| {
                r[0] &= 0x7f;
                s[0] &= 0x7f;
                r[..r_zeros].fill(0);
                s[..s_zeros].fill(0);
                r[31] |= 1;
                s[31] |= 1;
                RecoverableSignature::from_parts(r, s, parity).unwrap()
            })
    }

    /// `v` was allocated with exactly the length it holds (a length function
    /// that disagreed with its writer would leave the buffer longer, or make
    /// it grow).
    fn assert_exact(v: &[u8], capacity: usize, what: &str) {
        assert_eq!(
            v.len(),
            capacity,
            "{what}: computed length is not the written one"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn reuse_path_matches_direct_encoding(tx in transaction(), sig in signature()) {
            let unsigned = UnsignedEncoding::new(&tx);
            assert_exact(&unsigned.payload, unsigned.payload.capacity(), "unsigned");
            prop_assert_eq!(unsigned.signing_hash(), tx.signing_hash());
            prop_assert_eq!(unsigned.signing_hash().0, keccak256(&tx.encode_unsigned()));

            let reused = SignedTransaction::from_encoding(&unsigned, sig);
            let direct = SignedTransaction::new(tx.clone(), sig);
            prop_assert_eq!(&reused, &direct);
            let encoded = tx.encode_signed(&sig);
            assert_exact(&encoded, encoded.capacity(), "signed (direct)");
            let copied = unsigned.encode_signed(&sig);
            assert_exact(&copied, copied.capacity(), "signed (reused)");
            prop_assert_eq!(reused.encoded(), encoded.as_slice());

            // The signed form decodes back to the same transaction when it
            // is decodable (authorizations with an out-of-range y_parity
            // still encode, and so does every field the decoder reads).
            let decoded = SignedTransaction::decode(reused.encoded()).unwrap();
            prop_assert_eq!(decoded, reused);
        }
    }

    #[test]
    fn authorization_signing_payload_is_magic_then_list() {
        // EIP-7702: keccak256(0x05 ‖ rlp([chain_id, address, nonce])), with
        // the list built by the rlp crate as the oracle.
        for (chain_id, nonce) in [
            (U256::ZERO, 0u64),
            (U256::from_u64(1), 0x80),
            (U256::MAX, u64::MAX),
        ] {
            let auth = crate::Authorization {
                chain_id,
                address: Address([0xab; 20]),
                nonce,
            };
            let mut s = rlp::RlpStream::new_list(3);
            s.append(&chain_id.minimal_be_bytes());
            s.append(&auth.address.as_bytes().as_slice());
            s.append(&nonce);
            let mut expected = vec![crate::AUTHORIZATION_MAGIC];
            expected.extend_from_slice(&s.out());
            assert_eq!(auth.signing_hash().0, keccak256(&expected));
        }
    }
}
