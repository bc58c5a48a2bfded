//! The Concat KDF of JWA (RFC 7518 §4.6.2; NIST SP 800-56A §5.8.1) with
//! SHA-256, which ECDH-ES derives its keys with:
//!
//! ```text
//! K(i)      = SHA-256( i as u32 BE ‖ Z ‖ OtherInfo ),  i = 1, 2, ...
//! OtherInfo = lp32(AlgorithmID) ‖ lp32(PartyUInfo) ‖ lp32(PartyVInfo) ‖ keydatalen as u32 BE
//! key       = the first keydatalen / 8 bytes of K(1) ‖ K(2) ‖ ...
//! ```
//!
//! where `lp32(x)` is `x`'s length as a u32 BE followed by `x`,
//! AlgorithmID is the `enc` value (direct key agreement) or the `alg`
//! value (key agreement with key wrapping), and keydatalen is the length
//! in bits of the key that algorithm needs ([`key_data_len`]): for the
//! CBC-HMAC algorithms it is the *whole* key (MAC and encryption halves,
//! 256 bits for `A128CBC-HS256`), not the AES key size.
//!
//! `Z`, the ECDH shared secret, is a fixed 32-byte array (P-256's or
//! X25519's x-coordinate, big-endian as SEC 1 writes it): a secret with
//! leading zero bytes keeps them, and a shortened one cannot be passed.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::JoseError;

/// The keydatalen, in bits, that the Concat KDF derives for the JWA
/// algorithm `alg` (its AlgorithmID), or `None` for an algorithm not
/// listed: `A128GCM` 128, `A192GCM` 192, `A256GCM` 256, `ECDH-ES+A256KW`
/// 256, `A128CBC-HS256` 256, `A256CBC-HS512` 512.
#[must_use]
pub fn key_data_len(alg: &str) -> Option<u32> {
    match alg {
        "A128GCM" => Some(128),
        "A192GCM" => Some(192),
        "A256GCM" | "ECDH-ES+A256KW" | "A128CBC-HS256" => Some(256),
        "A256CBC-HS512" => Some(512),
        _ => None,
    }
}

/// Derives the key for `alg` from the shared secret `z` and the party
/// information `apu`, `apv` (the decoded `apu`/`apv` header values; empty
/// when absent). The key is [`key_data_len`]`(alg) / 8` bytes, in memory
/// that is zeroed on drop.
///
/// # Errors
/// [`JoseError::UnsupportedAlgorithm`] for an `alg` without a known key
/// length; [`JoseError::Malformed`] for an `apu` or `apv` over 4 GiB.
pub fn concat_kdf(
    z: &[u8; 32],
    alg: &str,
    apu: &[u8],
    apv: &[u8],
) -> Result<Zeroizing<Vec<u8>>, JoseError> {
    let bits = key_data_len(alg).ok_or(JoseError::UnsupportedAlgorithm)?;
    let lp32 = |field: &[u8]| {
        u32::try_from(field.len())
            .map(u32::to_be_bytes)
            .map_err(|_| JoseError::Malformed {
                what: "Concat KDF party info over 4 GiB",
            })
    };
    let (alg_len, apu_len, apv_len) = (lp32(alg.as_bytes())?, lp32(apu)?, lp32(apv)?);
    let len = (bits / 8) as usize;
    let mut out = Zeroizing::new(Vec::with_capacity(len + 32));
    let mut counter: u32 = 1;
    while out.len() < len {
        let mut hash = Sha256::new();
        hash.update(counter.to_be_bytes());
        hash.update(z);
        hash.update(alg_len);
        hash.update(alg.as_bytes());
        hash.update(apu_len);
        hash.update(apu);
        hash.update(apv_len);
        hash.update(apv);
        hash.update(bits.to_be_bytes());
        let block = Zeroizing::new(<[u8; 32]>::from(hash.finalize()));
        out.extend_from_slice(&block[..]);
        counter += 1;
    }
    out.truncate(len);
    Ok(out)
}
