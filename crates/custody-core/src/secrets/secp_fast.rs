//! The optional fast path: the software vault signs with libsecp256k1.
//!
//! # What the `secp256k1` feature does
//!
//! With the cargo feature `secp256k1` (off by default), [`crate::Vault`]
//! computes its ECDSA signatures with libsecp256k1, the C library Bitcoin
//! Core signs with, through the `secp256k1` crate (0.31, whose
//! `secp256k1-sys` vendors libsecp256k1 v0.6 and compiles it with `cc`, so
//! the build needs a C compiler). Nothing else changes: the
//! [`crate::KeyBackend`] seam, the vault's key handling, the node cache,
//! public keys (still `k256`), pinning and [`crate::normalize`] are the same
//! code. Only the arithmetic of one function, the vault's `sign_prehash`, is
//! swapped, and it returns the same [`crate::RawSignature::Recoverable`]
//! (`r‖s` and the parity of `R.y`).
//!
//! # Same signatures, bit for bit
//!
//! Both paths are ECDSA over secp256k1 with RFC 6979 deterministic nonces
//! (HMAC-SHA-256, no extra data), both reduce a digest `≥ n` modulo `n` before
//! it enters the nonce derivation (RFC 6979 §2.3.4 `bits2octets`), and both
//! return `s ≤ n/2` with the recovery parity flipped to match. So a given
//! (key, digest) gives the same `(r, s, y_parity)` whichever path signed, and
//! the switch cannot change a signature a caller has already seen (a replay
//! of a signed transaction, a cached EIP-712 signature). The test
//! `tests/signing_differential.rs` proves it against `k256`'s
//! `SigningKey::sign_prehash_recoverable` for thousands of random keys and
//! digests and the edge cases (digest 0, `2²⁵⁶ − 1`, `n`, `n + 1`; key 1 and
//! `n − 1`), and CI runs the whole custody-core suite in both builds.
//!
//! # Why it is off by default
//!
//! It puts about 20 000 lines of C (besides precomputed tables) into the
//! build, behind an `unsafe` FFI layer. The default build is pure Rust, with
//! `unsafe_code` forbidden in our crates, and that is what an auditor reads;
//! a team that wants the speed (a raw signature in about two thirds of
//! `k256`'s time on the machine we measured: `benches/secp256k1.rs`) opts in
//! and takes libsecp256k1, a library with a long public review record, into
//! its own audit.
//!
//! # The context
//!
//! libsecp256k1 signs with a *context*. Each vault holds one, made on its
//! first signature and kept for the vault's life (no process-wide state:
//! custody-core keeps none); signing only reads it, so every thread shares
//! it without a lock. It is a signing-only context, **randomized** with 32
//! bytes from the OS CSPRNG: libsecp256k1's `k·G` is constant time, and the
//! randomization additionally blinds it (a random offset and projective
//! coordinates), a defence in depth against power and electromagnetic side
//! channels that the library's header "highly recommends". Making and
//! randomizing a context costs about one signature, once per vault. If the OS
//! generator fails, signing fails with [`crate::Error::Rng`] (nothing is
//! signed with an unblinded context) and the next signature tries again.
//!
//! The context is randomized once, as Bitcoin Core does with its signing
//! context. The header also suggests re-randomizing "before every few
//! computations" as further defence in depth; we do not, because that needs
//! exclusive access to the shared context (a lock on the hot path, or a
//! context per thread).
//!
//! We pin the 0.31 line of the crate, the newest whose signing takes a
//! caller-held context: from 0.33 on, the crate signs with a context of its
//! own (thread-local with `std`) that it re-randomizes after *every*
//! signature, one more scalar multiplication per signature (we measured it
//! slower than `k256`, which defeats the purpose), from a seed it computes
//! as `key ⊕ digest` in a stack buffer it does not wipe.
//!
//! # The secret key
//!
//! The key arrives as [`crate::PrivateKeyBytes`] (zeroizing) and is copied
//! into a `secp256k1::SecretKey`, which is `Copy` and does **not** wipe itself
//! on drop. It lives only inside [`sign_prehash`], in a guard whose `Drop`
//! calls `SecretKey::non_secure_erase` (a volatile overwrite and a compiler
//! fence), on every exit including an unwind. As with the `k256` path (its
//! `FieldBytes` and scalar), the by-value copy that `SecretKey::from_byte_array`
//! takes may leave bytes in a stack slot that safe Rust cannot reach;
//! libsecp256k1 clears its own internal copies (the scalar, the nonce, the
//! RFC 6979 state) before it returns.

use std::fmt;
use std::sync::OnceLock;

use secp256k1::ecdsa::RecoveryId;
use secp256k1::{Message, Secp256k1, SecretKey, SignOnly};
use zeroize::Zeroizing;

use crate::{Digest32, Error, PrivateKeyBytes, RawSignature, fill_random};

/// A vault's libsecp256k1 signing context: made and randomized on first
/// use, then shared read-only by every thread that signs.
pub(crate) struct Context(OnceLock<Secp256k1<SignOnly>>);

impl Context {
    /// No context yet (making one costs nothing until the first signature).
    pub(crate) fn new() -> Self {
        Self(OnceLock::new())
    }

    /// The context, made and randomized now if this is the first use.
    fn get(&self) -> Result<&Secp256k1<SignOnly>, Error> {
        if let Some(ctx) = self.0.get() {
            return Ok(ctx);
        }
        // The blinding seed is secret: whoever knows it can undo the blinding.
        let mut seed = Zeroizing::new([0u8; 32]);
        fill_random(seed.as_mut_slice())?;
        let mut ctx = Secp256k1::signing_only();
        ctx.seeded_randomize(&seed);
        // Two threads may race here; one context wins and the other is
        // destroyed (libsecp256k1 clears its blinding values when it is).
        Ok(self.0.get_or_init(|| ctx))
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("made", &self.0.get().is_some())
            .finish()
    }
}

/// A `secp256k1::SecretKey` that is overwritten when it goes out of scope
/// (the type is `Copy` and has no `Drop` of its own).
struct ErasedOnDrop(SecretKey);

impl Drop for ErasedOnDrop {
    fn drop(&mut self) {
        self.0.non_secure_erase();
    }
}

/// RFC 6979 ECDSA over a prehash with libsecp256k1: the same signature as the
/// `k256` path (see the module docs), low `s`, with the parity of `R.y`.
///
/// # Errors
/// [`Error::InvalidKeyMaterial`] if `secret` is zero or not below the group
/// order; [`Error::Rng`] if the context's first randomization cannot draw
/// from the OS generator.
pub(crate) fn sign_prehash(
    context: &Context,
    secret: &PrivateKeyBytes,
    digest: &Digest32,
) -> Result<RawSignature, Error> {
    let ctx = context.get()?;
    let key = SecretKey::from_byte_array(*secret.expose_secret())
        .map(ErasedOnDrop)
        .map_err(|_| Error::InvalidKeyMaterial("not a valid secp256k1 secret key"))?;
    let signature = ctx.sign_ecdsa_recoverable(Message::from_digest(digest.0), &key.0);
    drop(key);
    let (recid, compact) = signature.serialize_compact();
    // Bit 0 of the recovery id is the parity of R.y (bit 1, "R.x ≥ n", has
    // probability below 2^-127 and is dropped exactly as the k256 path does).
    let y_parity = matches!(recid, RecoveryId::One | RecoveryId::Three);
    Ok(RawSignature::Recoverable { compact, y_parity })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::seam::signature::ORDER as N;

    #[test]
    fn keys_outside_one_to_n_minus_one_are_a_typed_error() {
        let ctx = Context::new();
        let mut above = N;
        above[31] = 0x42;
        for bad in [[0u8; 32], N, above, [0xff; 32]] {
            let secret = PrivateKeyBytes::new(bad);
            assert!(matches!(
                sign_prehash(&ctx, &secret, &Digest32([1; 32])),
                Err(Error::InvalidKeyMaterial(_))
            ));
        }
    }

    #[test]
    fn the_context_is_made_once_and_randomization_does_not_change_signatures() {
        // RFC 6979 is deterministic and blinding only changes how k·G is
        // computed: two independently randomized contexts agree.
        let (a, b) = (Context::new(), Context::new());
        assert_eq!(format!("{a:?}"), "Context { made: false }");
        let secret = PrivateKeyBytes::new([0x11; 32]);
        for i in 0u8..8 {
            let digest = Digest32([i; 32]);
            assert_eq!(
                sign_prehash(&a, &secret, &digest).unwrap(),
                sign_prehash(&b, &secret, &digest).unwrap()
            );
        }
        assert_eq!(format!("{a:?}"), "Context { made: true }");
        let first: *const _ = a.get().unwrap();
        assert!(std::ptr::eq(first, a.get().unwrap()));
    }

    #[test]
    fn a_signature_is_low_s_and_its_parity_recovers_the_key() {
        let ctx = Context::new();
        let secret = PrivateKeyBytes::new([0x22; 32]);
        let public = crate::secrets::vault::public_key_of(&secret).unwrap();
        let mut parities = [false; 2];
        for i in 0u8..32 {
            let digest = Digest32([i.wrapping_mul(37); 32]);
            let raw = sign_prehash(&ctx, &secret, &digest).unwrap();
            let RawSignature::Recoverable { compact, y_parity } = raw else {
                panic!("the fast path returns a recoverable signature");
            };
            parities[usize::from(y_parity)] = true;
            let (r, s) = compact.split_at(32);
            // Low s: RecoverableSignature::from_parts rejects a high s.
            let sig = crate::RecoverableSignature::from_parts(
                r.try_into().unwrap(),
                s.try_into().unwrap(),
                y_parity,
            )
            .unwrap();
            assert_eq!(sig.recover(&digest).unwrap(), public);
        }
        assert_eq!(parities, [true, true], "both parities occur");
    }
}
