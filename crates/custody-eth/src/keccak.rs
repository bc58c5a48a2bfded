//! Keccak-256, the hash Ethereum uses everywhere (the original Keccak
//! padding, not FIPS 202 SHA3-256).

use sha3::{Digest, Keccak256};

/// Keccak-256 of `data`.
#[must_use]
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    Keccak256::digest(data).into()
}

/// Keccak-256 of the concatenation of `parts`, without copying them.
pub(crate) fn keccak256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Keccak256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // keccak256("") and keccak256("abc"), as Ethereum tooling reports them.
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
        assert_eq!(
            hex::encode(keccak256(b"abc")),
            "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
        );
        assert_eq!(keccak256_parts(&[b"a", b"", b"bc"]), keccak256(b"abc"));
    }
}
