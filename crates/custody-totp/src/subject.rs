//! [`Subject`]: what one enrolment gates, a wallet's BIP32 node or a key
//! that is not HD-derived.

use std::hash::{Hash, Hasher};

use custody_core::{AnyPublicKey, DerivationPath, PublicKey};

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
    /// A key of another algorithm than secp256k1 (a P-256 or Ed25519 key
    /// that signs JWTs or opens sealed secrets), by its public key: gated
    /// like [`Subject::Key`]. A secp256k1 key is never this variant
    /// ([`Subject::of_key`] makes it a [`Subject::Key`]).
    OtherKey(AnyPublicKey),
}

impl Subject {
    /// The subject of a key that is not HD-derived, of any algorithm: a
    /// secp256k1 key is a [`Subject::Key`] (as it always was), any other a
    /// [`Subject::OtherKey`].
    #[must_use]
    pub fn of_key(key: &AnyPublicKey) -> Self {
        match key.secp256k1() {
            Some(public) => Self::Key(*public),
            None => Self::OtherKey(key.clone()),
        }
    }

    /// The public key of any algorithm, for a key's subject.
    #[must_use]
    pub fn any_public_key(&self) -> Option<AnyPublicKey> {
        match self {
            Self::Node(_) => None,
            Self::Key(key) => Some(AnyPublicKey::Secp256k1(*key)),
            Self::OtherKey(key) => Some(key.clone()),
        }
    }

    /// The wallet node, for a wallet's subject.
    #[must_use]
    pub fn node(&self) -> Option<&DerivationPath> {
        match self {
            Self::Node(node) => Some(node),
            Self::Key(_) | Self::OtherKey(_) => None,
        }
    }

    /// The secp256k1 public key, for a secp256k1 key's subject.
    #[must_use]
    pub fn public_key(&self) -> Option<&PublicKey> {
        match self {
            Self::Node(_) | Self::OtherKey(_) => None,
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
            Self::OtherKey(key) => {
                state.write_u8(2);
                key.algorithm().as_str().hash(state);
                key.to_bytes().hash(state);
            }
        }
    }
}
