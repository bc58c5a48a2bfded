//! [`Subject`]: what one enrolment gates, a wallet's BIP32 node or a key
//! that is not HD-derived.

use std::hash::{Hash, Hasher};

use custody_core::{DerivationPath, PublicKey};

/// What one enrolment gates.
///
/// A subject is canonical: one wallet is one node (whatever reference
/// reaches it), and one non-HD key is one public key (whatever id, ARN,
/// alias or label names it), so naming a key differently never bypasses
/// its enrolment.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A wallet's BIP32 node (the node the wallet scheme maps its name
    /// to): every key at or under it is gated.
    Node(DerivationPath),
    /// A key that is not HD-derived (an imported key, a KMS or HSM key),
    /// by its public key: the key is gated wherever it is pinned without a
    /// BIP32 path.
    Key(PublicKey),
}

impl Subject {
    /// The wallet node, for a wallet's subject.
    #[must_use]
    pub fn node(&self) -> Option<&DerivationPath> {
        match self {
            Self::Node(node) => Some(node),
            Self::Key(_) => None,
        }
    }

    /// The public key, for a key's subject.
    #[must_use]
    pub fn public_key(&self) -> Option<&PublicKey> {
        match self {
            Self::Node(_) => None,
            Self::Key(key) => Some(key),
        }
    }
}

impl Hash for Subject {
    /// Consistent with `Eq`: two public keys are equal exactly when their
    /// compressed encodings are.
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Self::Node(node) => {
                state.write_u8(0);
                node.hash(state);
            }
            Self::Key(key) => {
                state.write_u8(1);
                key.to_compressed().hash(state);
            }
        }
    }
}
