//! Operations: what an approver approves, as one canonical byte string and
//! its 32-byte hash (the WebAuthn challenge).
//!
//! The encoding (frozen by vectors in `tests/operation.rs`; see `SPEC.md`):
//!
//! ```text
//! operation = "custody/operation/v1" ‖ kind (1 byte) ‖ lp(signer) ‖ lp(payload)
//! lp(x)     = len(x) as 8 bytes big-endian ‖ x
//! hash      = SHA-256(operation)
//! ```
//!
//! `signer` is the SEC 1 compressed public key of the key that will sign
//! (a wallet name can be re-pointed; a key cannot), empty for a policy
//! change or a veto, which no wallet key signs. The payload is what the signature
//! will cover, byte for byte, so an approval can never be moved to other
//! data:
//!
//! | kind | byte | payload |
//! |---|---|---|
//! | transaction | 1 | the unsigned EIP-2718 encoding (what its signing hash hashes) |
//! | personal-message | 2 | the message bytes (before the EIP-191 prefix) |
//! | typed-data | 3 | `0x19 0x01 ‖ domainSeparator ‖ hashStruct(message)` |
//! | authorization | 4 | chain id (32 bytes) ‖ address (20) ‖ nonce (8, big-endian) |
//! | raw-digest | 5 | the 32-byte digest |
//! | policy-change | 6 | lp(wallet) ‖ SHA-256 of the change's canonical JSON (a policy or a device) ‖ the log head it extends (32 bytes) |
//! | veto | 7 | lp(wallet) ‖ the vetoed operation's hash (32 bytes); signer empty |

use custody_core::{Digest32, IntentKind, PublicKey};
use custody_eth::{Authorization, Transaction, TypedData};
use sha2::{Digest, Sha256};

/// The domain tag every operation encoding starts with.
pub const OPERATION_TAG: &[u8] = b"custody/operation/v1";

/// The kind of an operation, as its encoding names it.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperationKind {
    /// An Ethereum transaction (any type).
    Transaction,
    /// An EIP-191 personal message.
    PersonalMessage,
    /// EIP-712 typed data.
    TypedData,
    /// An EIP-7702 authorization.
    Authorization,
    /// A bare 32-byte digest.
    RawDigest,
    /// A change of a wallet's policy log (a policy or a device).
    PolicyChange,
    /// A veto of a delayed operation, by an approver's device.
    Veto,
}

impl OperationKind {
    /// Every kind, in encoding order.
    pub const ALL: [Self; 7] = [
        Self::Transaction,
        Self::PersonalMessage,
        Self::TypedData,
        Self::Authorization,
        Self::RawDigest,
        Self::PolicyChange,
        Self::Veto,
    ];

    /// The byte that names the kind in the encoding.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Transaction => 1,
            Self::PersonalMessage => 2,
            Self::TypedData => 3,
            Self::Authorization => 4,
            Self::RawDigest => 5,
            Self::PolicyChange => 6,
            Self::Veto => 7,
        }
    }

    /// The kind's name in policies (kebab-case, as audit records name
    /// intents).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Transaction => "transaction",
            Self::PersonalMessage => "personal-message",
            Self::TypedData => "typed-data",
            Self::Authorization => "authorization",
            Self::RawDigest => "raw-digest",
            Self::PolicyChange => "policy-change",
            Self::Veto => "veto",
        }
    }

    /// The kind named `name` in a policy.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The operation kind of a signing intent (`None` for intents no
    /// approver is asked about, e.g. audit checkpoints).
    #[must_use]
    pub fn of_intent(kind: IntentKind) -> Option<Self> {
        match kind {
            IntentKind::Transaction => Some(Self::Transaction),
            IntentKind::PersonalMessage => Some(Self::PersonalMessage),
            IntentKind::TypedData => Some(Self::TypedData),
            IntentKind::Authorization => Some(Self::Authorization),
            IntentKind::RawDigest => Some(Self::RawDigest),
            _ => None,
        }
    }
}

/// The 32-byte hash of an operation: the challenge its approvers' devices
/// sign.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperationHash(pub [u8; 32]);

impl OperationHash {
    /// The hash's bytes (the WebAuthn challenge).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex with a `0x` prefix.
    #[must_use]
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }
}

impl std::fmt::Debug for OperationHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OperationHash({})", self.to_hex())
    }
}

/// What is being asked for, with the signer it is asked of.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Operation {
    /// Sign a transaction.
    Transaction {
        /// The key that will sign.
        signer: PublicKey,
        /// The transaction.
        tx: Transaction,
    },
    /// Sign an EIP-191 personal message.
    PersonalMessage {
        /// The key that will sign.
        signer: PublicKey,
        /// The message bytes.
        message: Vec<u8>,
    },
    /// Sign EIP-712 typed data.
    TypedData {
        /// The key that will sign.
        signer: PublicKey,
        /// The typed data.
        data: Box<TypedData>,
    },
    /// Sign an EIP-7702 authorization.
    Authorization {
        /// The key that will sign.
        signer: PublicKey,
        /// The authorization.
        authorization: Authorization,
    },
    /// Sign a bare digest.
    RawDigest {
        /// The key that will sign.
        signer: PublicKey,
        /// The digest.
        digest: Digest32,
    },
    /// Append a change to a wallet's policy log: a new policy, or an
    /// approver's device.
    PolicyChange {
        /// The wallet whose policy changes.
        wallet: String,
        /// SHA-256 of the change's canonical JSON (a policy, or an
        /// approver's device).
        change_hash: [u8; 32],
        /// The hash of the log entry it extends (zero for the first).
        previous: [u8; 32],
    },
    /// Veto a delayed operation of a wallet (see [`crate::delay`]): any
    /// device of any approver of the wallet's policy may.
    Veto {
        /// The wallet.
        wallet: String,
        /// The hash of the delayed operation.
        operation: OperationHash,
    },
}

impl Operation {
    /// The operation's kind.
    #[must_use]
    pub fn kind(&self) -> OperationKind {
        match self {
            Self::Transaction { .. } => OperationKind::Transaction,
            Self::PersonalMessage { .. } => OperationKind::PersonalMessage,
            Self::TypedData { .. } => OperationKind::TypedData,
            Self::Authorization { .. } => OperationKind::Authorization,
            Self::RawDigest { .. } => OperationKind::RawDigest,
            Self::PolicyChange { .. } => OperationKind::PolicyChange,
            Self::Veto { .. } => OperationKind::Veto,
        }
    }

    /// The key that will sign (none for a policy change or a veto).
    #[must_use]
    pub fn signer(&self) -> Option<&PublicKey> {
        match self {
            Self::Transaction { signer, .. }
            | Self::PersonalMessage { signer, .. }
            | Self::TypedData { signer, .. }
            | Self::Authorization { signer, .. }
            | Self::RawDigest { signer, .. } => Some(signer),
            Self::PolicyChange { .. } | Self::Veto { .. } => None,
        }
    }

    /// The digest the signer will sign (none for a policy change or a
    /// veto): the
    /// digest a verdict for this operation covers.
    #[must_use]
    pub fn signing_digest(&self) -> Option<Digest32> {
        match self {
            Self::Transaction { tx, .. } => Some(tx.signing_hash()),
            Self::PersonalMessage { message, .. } => {
                Some(custody_eth::personal_message_hash(message))
            }
            Self::TypedData { data, .. } => Some(data.signing_hash()),
            Self::Authorization { authorization, .. } => Some(authorization.signing_hash()),
            Self::RawDigest { digest, .. } => Some(*digest),
            Self::PolicyChange { .. } | Self::Veto { .. } => None,
        }
    }

    /// The canonical encoding (see the module documentation).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let signer = self
            .signer()
            .map(|key| key.to_compressed().to_vec())
            .unwrap_or_default();
        let payload = self.payload();
        let mut out = Vec::with_capacity(OPERATION_TAG.len() + 17 + signer.len() + payload.len());
        out.extend_from_slice(OPERATION_TAG);
        out.push(self.kind().code());
        length_prefixed(&mut out, &signer);
        length_prefixed(&mut out, &payload);
        out
    }

    /// SHA-256 of the canonical encoding: the challenge approvers sign.
    #[must_use]
    pub fn hash(&self) -> OperationHash {
        OperationHash(Sha256::digest(self.encode()).into())
    }

    fn payload(&self) -> Vec<u8> {
        match self {
            Self::Transaction { tx, .. } => tx.encode_unsigned(),
            Self::PersonalMessage { message, .. } => message.clone(),
            Self::TypedData { data, .. } => {
                let mut out = Vec::with_capacity(66);
                out.extend_from_slice(&[0x19, 0x01]);
                out.extend_from_slice(&data.domain_separator());
                out.extend_from_slice(&data.struct_hash());
                out
            }
            Self::Authorization { authorization, .. } => {
                let mut out = Vec::with_capacity(60);
                out.extend_from_slice(authorization.chain_id.as_be_bytes());
                out.extend_from_slice(authorization.address.as_bytes());
                out.extend_from_slice(&authorization.nonce.to_be_bytes());
                out
            }
            Self::RawDigest { digest, .. } => digest.as_bytes().to_vec(),
            Self::PolicyChange {
                wallet,
                change_hash,
                previous,
            } => {
                let mut out = Vec::with_capacity(72 + wallet.len());
                length_prefixed(&mut out, wallet.as_bytes());
                out.extend_from_slice(change_hash);
                out.extend_from_slice(previous);
                out
            }
            Self::Veto { wallet, operation } => {
                let mut out = Vec::with_capacity(40 + wallet.len());
                length_prefixed(&mut out, wallet.as_bytes());
                out.extend_from_slice(operation.as_bytes());
                out
            }
        }
    }
}

/// Appends `bytes` with its length as 8 bytes big-endian (`usize` is at
/// most 64 bits on every target Rust supports, so the length is exact).
fn length_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}
