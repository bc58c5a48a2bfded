//! [`Facts`]: what a policy can see of an operation: its chain, where
//! value goes and how much, which contract and function it calls, which
//! EIP-712 domain and spender it names.
//!
//! Token movements are recognised from ERC-20 calldata only when the
//! calldata is exactly the ABI encoding of one of these, with every
//! address word's 12 high bytes zero:
//!
//! | function | selector | transfer |
//! |---|---|---|
//! | `transfer(address to, uint256 amount)` | `0xa9059cbb` | `amount` of the token to `to` |
//! | `transferFrom(address from, address to, uint256 amount)` | `0x23b872dd` | `amount` of the token to `to` |
//! | `approve(address spender, uint256 amount)` | `0x095ea7b3` | `amount` of the token to `spender` |
//!
//! An approval counts as a transfer of its amount to the spender: an
//! allowance is value the spender can take, so limits and allow-lists
//! treat it as sent (an unlimited approval meets every finite limit). Any
//! other calldata is a plain contract call, visible to `calls` rules by
//! its contract and selector.

use custody_eth::{Address, Transaction, TypedData, U256};
use serde_json::Value;

use crate::operation::{Operation, OperationKind};

/// `transfer(address,uint256)`.
pub const ERC20_TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// `transferFrom(address,address,uint256)`.
pub const ERC20_TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];
/// `approve(address,uint256)`.
pub const ERC20_APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];

/// EIP-712 primary types of token permits (EIP-2612 and Uniswap's
/// Permit2): their `spender` is where the value can go, so a permit
/// without a readable `spender` matches no spender rule.
pub const PERMIT_TYPES: [&str; 6] = [
    "Permit",
    "PermitSingle",
    "PermitBatch",
    "PermitTransferFrom",
    "PermitBatchTransferFrom",
    "PermitWitnessTransferFrom",
];

/// An asset: the chain's native coin or an ERC-20 token (by contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Asset {
    /// Wei.
    Native,
    /// The token at this contract.
    Token(Address),
}

impl Asset {
    /// `native`, or the token contract's EIP-55 address.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::Native => "native".to_owned(),
            Self::Token(address) => address.to_checksum(),
        }
    }
}

/// Value leaving the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// What moves.
    pub asset: Asset,
    /// Where it goes (`None`: a contract creation's endowment).
    pub recipient: Option<Address>,
    /// How much, in the asset's smallest unit.
    pub amount: U256,
}

/// A contract call: the contract and the function selector (the first
/// four bytes of calldata; `None` if the calldata is shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// The called contract.
    pub contract: Address,
    /// The function selector.
    pub selector: Option<[u8; 4]>,
}

/// What a policy sees of EIP-712 typed data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedFacts {
    /// The domain.
    pub domain: custody_eth::Eip712Domain,
    /// The primary type.
    pub primary_type: String,
    /// The message's top-level `spender`, if it has one that is an address.
    pub spender: Option<Address>,
    /// Whether the primary type is a known permit ([`PERMIT_TYPES`]).
    pub is_permit: bool,
}

/// What a policy can see of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The operation's kind.
    pub kind: OperationKind,
    /// The chain it is for: a transaction's chain id, an authorization's
    /// (0: every chain), typed data's domain `chainId`; `None` for a
    /// message, a raw digest or a legacy transaction without EIP-155.
    pub chain_id: Option<U256>,
    /// Where value or control goes: a transaction's recipient (the token
    /// recipient for a recognised token transfer, else `to`), a permit's
    /// spender, an authorization's delegate.
    pub destinations: Vec<Address>,
    /// Value leaving the wallet.
    pub transfers: Vec<Transfer>,
    /// The contract call, for a transaction with calldata to an address.
    pub call: Option<Call>,
    /// Whether a transaction creates a contract.
    pub creates_contract: bool,
    /// EIP-712 details.
    pub typed: Option<TypedFacts>,
}

impl Facts {
    /// The facts of `operation`.
    #[must_use]
    pub fn of(operation: &Operation) -> Self {
        let mut facts = Self {
            kind: operation.kind(),
            chain_id: None,
            destinations: Vec::new(),
            transfers: Vec::new(),
            call: None,
            creates_contract: false,
            typed: None,
        };
        match operation {
            Operation::Transaction { tx, .. } => facts.transaction(tx),
            Operation::TypedData { data, .. } => facts.typed_data(data),
            Operation::Authorization { authorization, .. } => {
                facts.chain_id = Some(authorization.chain_id);
                facts.destinations.push(authorization.address);
            }
            _ => {}
        }
        facts
    }

    fn transaction(&mut self, tx: &Transaction) {
        self.chain_id = tx.chain_id().map(U256::from_u64);
        let value = tx.value();
        let data = tx.data();
        let Some(to) = tx.to() else {
            self.creates_contract = true;
            if !value.is_zero() {
                self.transfers.push(Transfer {
                    asset: Asset::Native,
                    recipient: None,
                    amount: value,
                });
            }
            return;
        };
        if !value.is_zero() || data.is_empty() {
            self.destinations.push(to);
            self.transfers.push(Transfer {
                asset: Asset::Native,
                recipient: Some(to),
                amount: value,
            });
        }
        if data.is_empty() {
            return;
        }
        self.call = Some(Call {
            contract: to,
            selector: data.first_chunk::<4>().copied(),
        });
        match token_transfer(data) {
            Some((recipient, amount)) => {
                push_unique(&mut self.destinations, recipient);
                self.transfers.push(Transfer {
                    asset: Asset::Token(to),
                    recipient: Some(recipient),
                    amount,
                });
            }
            None => push_unique(&mut self.destinations, to),
        }
    }

    fn typed_data(&mut self, data: &TypedData) {
        let domain = data.domain().clone();
        self.chain_id = domain.chain_id;
        let spender = data
            .message()
            .get("spender")
            .and_then(Value::as_str)
            .and_then(|s| Address::parse(s).ok());
        if let Some(spender) = spender {
            self.destinations.push(spender);
        }
        self.typed = Some(TypedFacts {
            domain,
            primary_type: data.primary_type().to_owned(),
            spender,
            is_permit: PERMIT_TYPES.contains(&data.primary_type()),
        });
    }
}

fn push_unique(list: &mut Vec<Address>, address: Address) {
    if !list.contains(&address) {
        list.push(address);
    }
}

/// The recipient and amount of an ERC-20 `transfer`, `transferFrom` or
/// `approve` call, if `data` is exactly one.
fn token_transfer(data: &[u8]) -> Option<(Address, U256)> {
    let (selector, args) = data.split_first_chunk::<4>()?;
    let (words, rest) = args.as_chunks::<32>();
    if !rest.is_empty() {
        return None;
    }
    let (recipient, amount) = match (*selector, words) {
        (ERC20_TRANSFER | ERC20_APPROVE, [to, amount]) => (to, amount),
        (ERC20_TRANSFER_FROM, [from, to, amount]) => {
            address_word(from)?;
            (to, amount)
        }
        _ => return None,
    };
    Some((address_word(recipient)?, U256::from_be_bytes(*amount)))
}

/// The address in an ABI word, if its 12 high bytes are zero.
fn address_word(word: &[u8; 32]) -> Option<Address> {
    let (high, low) = word.split_first_chunk::<12>()?;
    if high.iter().any(|&b| b != 0) {
        return None;
    }
    Address::from_slice(low).ok()
}
