//! BIP32 hierarchical deterministic keys over secp256k1, written directly on
//! `k256`.
//!
//! Three layers, from the signing hot path up:
//!
//! - [`ChainNode`]: a private key and a chain code, nothing else. Deriving a
//!   hardened child costs one HMAC-SHA512 and one scalar addition; a
//!   non-hardened child also needs the parent's compressed public key, which
//!   [`ChainNode::derive`] computes (one scalar multiplication).
//!   [`ChainNode::derive_path`] therefore never computes a public key for a
//!   hardened step.
//! - [`HdNode`]: a [`ChainNode`] with its compressed public key computed once,
//!   and its HMAC-SHA512 keyed with the chain code once.
//!   [`HdNode::child_secret`] is what the signing hot path calls on a cached
//!   wallet node: exactly one HMAC-SHA512 (two SHA-512 compressions: the
//!   padded key blocks are already hashed) and one scalar addition, hardened
//!   or not.
//! - [`ExtendedPrivateKey`] / [`ExtendedPublicKey`]: full BIP32 keys with
//!   depth, parent fingerprint and child number, `xprv`/`xpub` serialization
//!   (mainnet versions `0x0488ADE4` / `0x0488B21E`, Base58Check) and strict
//!   parsing (every invalid key of BIP32 test vector 5 is rejected with
//!   [`Error::InvalidExtendedKey`]).
//!
//! Private keys live in [`PrivateKeyBytes`] and chain codes in
//! `Zeroizing<[u8; 32]>`; HMAC outputs and scalar temporaries are wiped when
//! they go out of scope. No private type here is `Clone`, and their `Debug`
//! shows public identifiers only (fingerprint, depth, child number).
//!
//! Every [`ChainNode`] holds a valid secret key (an integer in `1..n-1`): the
//! only ways to build one ([`ChainNode::from_seed`], [`ChainNode::from_parts`],
//! derivation, parsing an `xprv`) check it.

use std::fmt;
use std::str::FromStr;

use hmac::digest::FixedOutput;
use hmac::{Hmac, KeyInit, Mac};
use k256::elliptic_curve::PrimeField;
use k256::{FieldBytes, NonZeroScalar, ProjectivePoint, Scalar};
use ripemd::Ripemd160;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{ChildNumber, DerivationPath, Error, PrivateKeyBytes, PublicKey};

type HmacSha512 = Hmac<Sha512>;

/// Version bytes of a mainnet extended private key (`xprv`).
const XPRV_VERSION: [u8; 4] = 0x0488_ADE4_u32.to_be_bytes();
/// Version bytes of a mainnet extended public key (`xpub`).
const XPUB_VERSION: [u8; 4] = 0x0488_B21E_u32.to_be_bytes();
/// Serialized extended key without its checksum.
const PAYLOAD_LEN: usize = 78;
/// Serialized extended key with its 4-byte checksum.
const CHECKED_LEN: usize = PAYLOAD_LEN + 4;
/// Longest Base58 string accepted by the parsers (a serialized key is 111
/// characters; anything much longer is rejected before decoding).
const MAX_ENCODED_LEN: usize = 120;
/// Room for the Base58 encoding of [`CHECKED_LEN`] bytes (at most 113).
const ENCODE_BUF_LEN: usize = 128;
/// HMAC key of the BIP32 master key generation.
const MASTER_HMAC_KEY: &[u8] = b"Bitcoin seed";

// ---------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------

/// HMAC-SHA512 of `data` under `key`, into a zeroizing buffer.
fn hmac_sha512(key: &[u8], data: &[u8]) -> Result<Zeroizing<[u8; 64]>, Error> {
    // HMAC accepts keys of any length; the error arm is never taken.
    let mut mac =
        <HmacSha512 as KeyInit>::new_from_slice(key).map_err(|_| Error::DerivationFailed)?;
    Mac::update(&mut mac, data);
    let mut out = Zeroizing::new([0u8; 64]);
    mac.finalize_into((&mut *out).into());
    Ok(out)
}

/// Splits an HMAC-SHA512 output into `I_L` and `I_R` (zeroizing copies).
fn split_i(i: &[u8; 64]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut il = Zeroizing::new([0u8; 32]);
    let mut ir = Zeroizing::new([0u8; 32]);
    let (l, r) = i.split_at(32);
    il.copy_from_slice(l);
    ir.copy_from_slice(r);
    (il, ir)
}

/// `bytes` as a scalar if it is below the group order `n` (zero allowed).
fn scalar_below_n(bytes: &[u8; 32]) -> Option<Zeroizing<Scalar>> {
    let repr = Zeroizing::new(FieldBytes::from(*bytes));
    Option::<Scalar>::from(Scalar::from_repr(*repr)).map(Zeroizing::new)
}

/// `bytes` as a secret scalar if it is in `1..n-1`.
fn secret_scalar(bytes: &[u8; 32]) -> Option<Zeroizing<NonZeroScalar>> {
    let repr = Zeroizing::new(FieldBytes::from(*bytes));
    Option::<NonZeroScalar>::from(NonZeroScalar::from_repr(*repr)).map(Zeroizing::new)
}

/// The public key of a secret key.
fn public_from_secret(key: &PrivateKeyBytes) -> Result<PublicKey, Error> {
    let scalar = secret_scalar(key.expose_secret())
        .ok_or(Error::InvalidKeyMaterial("not a secp256k1 secret key"))?;
    Ok(PublicKey::from(k256::PublicKey::from_secret_scalar(
        &scalar,
    )))
}

/// `RIPEMD160(SHA256(data))`.
fn hash160(data: &[u8]) -> [u8; 20] {
    let sha = Sha256::digest(data);
    Ripemd160::digest(sha).into()
}

/// The BIP32 key identifier's first 4 bytes.
fn fingerprint_of(compressed: &[u8; 33]) -> [u8; 4] {
    let h = hash160(compressed);
    [h[0], h[1], h[2], h[3]]
}

/// The first 4 bytes of `SHA256(SHA256(data))`.
fn checksum4(data: &[u8]) -> [u8; 4] {
    let first = Zeroizing::new(Sha256::digest(data));
    let second = Sha256::digest(first.as_slice());
    [second[0], second[1], second[2], second[3]]
}

/// CKDpriv: the child of (`parent`, `chain_code`) at `child`.
///
/// `parent_public` must be the parent's compressed public key when `child` is
/// not hardened; it is ignored otherwise.
fn ckd_priv(
    parent: &PrivateKeyBytes,
    chain_code: &[u8; 32],
    parent_public: Option<&[u8; 33]>,
    child: ChildNumber,
) -> Result<ChainNode, Error> {
    ckd_priv_keyed(parent, keyed_mac(chain_code)?, parent_public, child)
}

/// HMAC-SHA512 keyed with a chain code: the inner and outer padded key
/// blocks already hashed, so that each child costs two SHA-512
/// compressions instead of four. Key material: its hash states are wiped
/// on drop (see [`_keyed_mac_is_wiped_on_drop`]).
fn keyed_mac(chain_code: &[u8; 32]) -> Result<HmacSha512, Error> {
    // HMAC accepts keys of any length; the error arm is never taken.
    <HmacSha512 as KeyInit>::new_from_slice(chain_code).map_err(|_| Error::DerivationFailed)
}

/// Compile-time proof that a keyed [`HmacSha512`] wipes its state on drop:
/// its two SHA-512 states and its block buffer implement `ZeroizeOnDrop`
/// (the `zeroize` features of `sha2` and `hmac`, which reach `digest` and
/// `block-buffer`). Never called.
fn _keyed_mac_is_wiped_on_drop() {
    fn wiped<T: zeroize::ZeroizeOnDrop>() {}
    wiped::<<Sha512 as hmac::EagerHash>::Core>();
    wiped::<hmac::digest::block_api::Buffer<<Sha512 as hmac::EagerHash>::Core>>();
}

/// CKDpriv with the HMAC already keyed by the parent's chain code.
fn ckd_priv_keyed(
    parent: &PrivateKeyBytes,
    mut mac: HmacSha512,
    parent_public: Option<&[u8; 33]>,
    child: ChildNumber,
) -> Result<ChainNode, Error> {
    // data = 0x00 ‖ ser256(k_par) ‖ ser32(i)  (hardened)
    //      = serP(K_par) ‖ ser32(i)           (normal)
    let mut data = Zeroizing::new([0u8; 37]);
    if child.is_hardened() {
        data[1..33].copy_from_slice(parent.expose_secret());
    } else {
        let public = parent_public.ok_or(Error::DerivationFailed)?;
        data[..33].copy_from_slice(public);
    }
    data[33..].copy_from_slice(&child.0.to_be_bytes());
    Mac::update(&mut mac, data.as_slice());
    let mut i = Zeroizing::new([0u8; 64]);
    mac.finalize_into((&mut *i).into());
    let (il, ir) = split_i(&i);

    // k_i = parse256(I_L) + k_par (mod n); invalid if I_L ≥ n or k_i = 0.
    let tweak = scalar_below_n(&il).ok_or(Error::DerivationFailed)?;
    let parent_scalar = secret_scalar(parent.expose_secret())
        .ok_or(Error::InvalidKeyMaterial("not a secp256k1 secret key"))?;
    let child_scalar = Zeroizing::new(*tweak + Scalar::from(&*parent_scalar));
    if bool::from(child_scalar.is_zero()) {
        return Err(Error::DerivationFailed);
    }
    let child_bytes = Zeroizing::new(child_scalar.to_bytes());
    Ok(ChainNode {
        key: PrivateKeyBytes::from_slice(child_bytes.as_slice())?,
        chain_code: ir,
    })
}

// ---------------------------------------------------------------------------
// ChainNode
// ---------------------------------------------------------------------------

/// A BIP32 node without metadata: a private key and a chain code.
///
/// The cheapest form to derive with (see [`HdNode`] for many children of one
/// node). Not `Clone` (a copy of a secret is a second place to wipe); both
/// fields are wiped on drop.
pub struct ChainNode {
    key: PrivateKeyBytes,
    chain_code: Zeroizing<[u8; 32]>,
}

impl ChainNode {
    /// The BIP32 master node of `seed`: `I = HMAC-SHA512("Bitcoin seed",
    /// seed)`, key `I_L`, chain code `I_R`.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if the seed is not 16 to 64 bytes long,
    /// or if `I_L` is zero or not below the group order (BIP32 says such a
    /// seed is invalid; probability below 2^-127).
    pub fn from_seed(seed: &[u8]) -> Result<Self, Error> {
        if !(16..=64).contains(&seed.len()) {
            return Err(Error::InvalidKeyMaterial(
                "a BIP32 seed must be 16 to 64 bytes long",
            ));
        }
        let i = hmac_sha512(MASTER_HMAC_KEY, seed)?;
        let (il, ir) = split_i(&i);
        if secret_scalar(&il).is_none() {
            return Err(Error::InvalidKeyMaterial(
                "the seed gives an invalid BIP32 master key",
            ));
        }
        Ok(Self {
            key: PrivateKeyBytes::from_slice(il.as_slice())?,
            chain_code: ir,
        })
    }

    /// A node from a stored private key and chain code.
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if `key` is not in `1..n-1`.
    pub fn from_parts(
        key: PrivateKeyBytes,
        chain_code: Zeroizing<[u8; 32]>,
    ) -> Result<Self, Error> {
        if secret_scalar(key.expose_secret()).is_none() {
            return Err(Error::InvalidKeyMaterial("not a secp256k1 secret key"));
        }
        Ok(Self { key, chain_code })
    }

    /// CKDpriv: the child at `child`. A hardened child costs one HMAC-SHA512
    /// and one scalar addition; a normal child also computes this node's
    /// compressed public key (use [`HdNode`] to compute it once for many
    /// children).
    ///
    /// # Errors
    /// [`Error::DerivationFailed`] if the child is invalid (`I_L ≥ n` or a
    /// zero key; probability below 2^-127). BIP32 says to go on with the next
    /// index; callers choose.
    pub fn derive(&self, child: ChildNumber) -> Result<Self, Error> {
        if child.is_hardened() {
            ckd_priv(&self.key, &self.chain_code, None, child)
        } else {
            let public = public_from_secret(&self.key)?.to_compressed();
            ckd_priv(&self.key, &self.chain_code, Some(&public), child)
        }
    }

    /// Derives every component of `path` in turn, below this node (for a
    /// master node, the path as written). No public key is computed for a
    /// hardened step; each normal step computes its parent's.
    ///
    /// # Errors
    /// [`Error::DerivationFailed`] as [`Self::derive`].
    pub fn derive_path(&self, path: &DerivationPath) -> Result<Self, Error> {
        let mut components = path.components().iter();
        let Some(first) = components.next() else {
            return self.duplicate();
        };
        let mut node = self.derive(*first)?;
        for child in components {
            node = node.derive(*child)?;
        }
        Ok(node)
    }

    /// The public key (one scalar multiplication).
    #[must_use]
    #[expect(
        clippy::expect_used,
        reason = "every constructor of ChainNode checks that the key is in 1..n-1 \
                  (from_seed, from_parts, ckd_priv, ExtendedPrivateKey::parse), \
                  so the conversion cannot fail"
    )]
    pub fn public_key(&self) -> PublicKey {
        public_from_secret(&self.key).expect("ChainNode keys are valid secret keys")
    }

    /// The private key. Key material: keep the borrow short.
    #[must_use]
    pub fn expose_secret_key(&self) -> &PrivateKeyBytes {
        &self.key
    }

    /// The chain code. Key material (with it and this node's public key, any
    /// normal child's private key reveals this node's): keep the borrow
    /// short.
    #[must_use]
    pub fn expose_chain_code(&self) -> &[u8; 32] {
        &self.chain_code
    }

    /// A second copy of this node. Private on purpose (no `Clone`): used only
    /// where an API returns a fresh node for the empty path.
    fn duplicate(&self) -> Result<Self, Error> {
        let mut chain_code = Zeroizing::new([0u8; 32]);
        chain_code.copy_from_slice(self.chain_code.as_slice());
        Ok(Self {
            key: PrivateKeyBytes::from_slice(self.key.expose_secret())?,
            chain_code,
        })
    }
}

impl fmt::Debug for ChainNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainNode(<redacted>)")
    }
}

// ---------------------------------------------------------------------------
// HdNode
// ---------------------------------------------------------------------------

/// A [`ChainNode`] with its compressed public key, computed once, and its
/// HMAC-SHA512 keyed with the chain code once (the keyed state is key
/// material: it lives only here and is wiped on drop).
///
/// Cache one per wallet node: [`Self::child_secret`] then derives a key with
/// one HMAC-SHA512 (two SHA-512 compressions) and one scalar addition and no
/// elliptic-curve multiplication, hardened child or not.
pub struct HdNode {
    node: ChainNode,
    public: PublicKey,
    compressed: [u8; 33],
    /// HMAC-SHA512 keyed with the chain code (wiped on drop).
    mac: HmacSha512,
}

impl HdNode {
    /// Computes the public key of `node` (one scalar multiplication).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if the key is not a valid secret key
    /// (cannot happen for a [`ChainNode`] built by this module).
    pub fn new(node: ChainNode) -> Result<Self, Error> {
        let public = public_from_secret(&node.key)?;
        let compressed = public.to_compressed();
        let mac = keyed_mac(&node.chain_code)?;
        Ok(Self {
            node,
            public,
            compressed,
            mac,
        })
    }

    /// The private key of the child at `child`: exactly one HMAC-SHA512 and
    /// one scalar addition (the cached public key serves normal children).
    /// The signing hot path.
    ///
    /// # Errors
    /// [`Error::DerivationFailed`] if the child is invalid (probability below
    /// 2^-127).
    pub fn child_secret(&self, child: ChildNumber) -> Result<PrivateKeyBytes, Error> {
        let ChainNode { key, .. } = self.derive(child)?;
        Ok(key)
    }

    /// The child node at `child` (key and chain code), with the same cost as
    /// [`Self::child_secret`].
    ///
    /// # Errors
    /// [`Error::DerivationFailed`] if the child is invalid (probability below
    /// 2^-127).
    pub fn derive(&self, child: ChildNumber) -> Result<ChainNode, Error> {
        ckd_priv_keyed(
            &self.node.key,
            self.mac.clone(),
            Some(&self.compressed),
            child,
        )
    }

    /// The public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The compressed SEC 1 public key (`02/03‖x`).
    #[must_use]
    pub fn compressed_public_key(&self) -> &[u8; 33] {
        &self.compressed
    }

    /// The BIP32 fingerprint: the first 4 bytes of
    /// `RIPEMD160(SHA256(compressed public key))`.
    #[must_use]
    pub fn fingerprint(&self) -> [u8; 4] {
        fingerprint_of(&self.compressed)
    }

    /// The key and chain code.
    #[must_use]
    pub fn chain_node(&self) -> &ChainNode {
        &self.node
    }

    /// Gives back the key and chain code.
    #[must_use]
    pub fn into_chain_node(self) -> ChainNode {
        self.node
    }
}

impl fmt::Debug for HdNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HdNode")
            .field(
                "fingerprint",
                &format_args!("{}", hex::encode(self.fingerprint())),
            )
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// Serialization helpers
// ---------------------------------------------------------------------------

/// The metadata every extended key carries.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Meta {
    depth: u8,
    parent_fingerprint: [u8; 4],
    child_number: ChildNumber,
}

impl Meta {
    const MASTER: Meta = Meta {
        depth: 0,
        parent_fingerprint: [0; 4],
        child_number: ChildNumber(0),
    };
}

/// `version ‖ depth ‖ parent fingerprint ‖ child number ‖ chain code ‖ key ‖
/// checksum`, Base58-encoded into a zeroizing string.
fn encode_extended(
    version: [u8; 4],
    meta: Meta,
    chain_code: &[u8; 32],
    key: &[u8; 33],
) -> Result<Zeroizing<String>, Error> {
    let mut raw = Zeroizing::new([0u8; CHECKED_LEN]);
    raw[..4].copy_from_slice(&version);
    raw[4] = meta.depth;
    raw[5..9].copy_from_slice(&meta.parent_fingerprint);
    raw[9..13].copy_from_slice(&meta.child_number.0.to_be_bytes());
    raw[13..45].copy_from_slice(chain_code);
    raw[45..PAYLOAD_LEN].copy_from_slice(key);
    let check = checksum4(&raw[..PAYLOAD_LEN]);
    raw[PAYLOAD_LEN..].copy_from_slice(&check);

    let mut buf = Zeroizing::new([0u8; ENCODE_BUF_LEN]);
    let len = bs58::encode(raw.as_slice())
        .onto(&mut buf[..])
        .map_err(|_| Error::InvalidExtendedKey("encoding failed"))?;
    let encoded = buf
        .get(..len)
        .ok_or(Error::InvalidExtendedKey("encoding failed"))?;
    let text =
        std::str::from_utf8(encoded).map_err(|_| Error::InvalidExtendedKey("encoding failed"))?;
    let mut out = Zeroizing::new(String::with_capacity(len));
    out.push_str(text);
    Ok(out)
}

/// The fields of a decoded extended key, checks on them not yet done.
struct Decoded {
    version: [u8; 4],
    meta: Meta,
    chain_code: Zeroizing<[u8; 32]>,
    key: Zeroizing<[u8; 33]>,
}

/// Base58Check-decodes `s` and checks length, checksum and the metadata rules
/// that do not depend on the key type.
fn decode_extended(s: &str) -> Result<Decoded, Error> {
    if s.len() > MAX_ENCODED_LEN {
        return Err(Error::InvalidExtendedKey("wrong length"));
    }
    let mut buf = Zeroizing::new([0u8; MAX_ENCODED_LEN]);
    let len = bs58::decode(s).onto(&mut buf[..]).map_err(|e| match e {
        bs58::decode::Error::BufferTooSmall => Error::InvalidExtendedKey("wrong length"),
        _ => Error::InvalidExtendedKey("invalid base58"),
    })?;
    if len != CHECKED_LEN {
        return Err(Error::InvalidExtendedKey("wrong length"));
    }
    let (payload, check) = buf[..CHECKED_LEN].split_at(PAYLOAD_LEN);
    if !bool::from(checksum4(payload).ct_eq(check)) {
        return Err(Error::InvalidExtendedKey("bad checksum"));
    }

    let mut version = [0u8; 4];
    version.copy_from_slice(&payload[..4]);
    let depth = payload[4];
    let mut parent_fingerprint = [0u8; 4];
    parent_fingerprint.copy_from_slice(&payload[5..9]);
    let mut child = [0u8; 4];
    child.copy_from_slice(&payload[9..13]);
    let child_number = ChildNumber(u32::from_be_bytes(child));
    let mut chain_code = Zeroizing::new([0u8; 32]);
    chain_code.copy_from_slice(&payload[13..45]);
    let mut key = Zeroizing::new([0u8; 33]);
    key.copy_from_slice(&payload[45..PAYLOAD_LEN]);

    if depth == 0 && parent_fingerprint != [0; 4] {
        return Err(Error::InvalidExtendedKey(
            "zero depth with non-zero parent fingerprint",
        ));
    }
    if depth == 0 && child_number.0 != 0 {
        return Err(Error::InvalidExtendedKey(
            "zero depth with non-zero child number",
        ));
    }
    Ok(Decoded {
        version,
        meta: Meta {
            depth,
            parent_fingerprint,
            child_number,
        },
        chain_code,
        key,
    })
}

/// The depth `extra` levels below `depth`.
fn deeper(depth: u8, extra: usize) -> Result<u8, Error> {
    usize::from(depth)
        .checked_add(extra)
        .and_then(|d| u8::try_from(d).ok())
        .ok_or(Error::InvalidPath("deeper than 255 levels"))
}

// ---------------------------------------------------------------------------
// ExtendedPrivateKey
// ---------------------------------------------------------------------------

/// A BIP32 extended private key: key, chain code, depth, parent fingerprint
/// and child number.
///
/// Serializes to an `xprv` string only through [`Self::expose_xprv`] (a
/// zeroizing string); there is no `Display`. `Debug` shows the fingerprint,
/// depth, parent fingerprint and child number. Not `Clone`.
pub struct ExtendedPrivateKey {
    node: HdNode,
    meta: Meta,
}

impl ExtendedPrivateKey {
    /// The master key of `seed` (see [`ChainNode::from_seed`]).
    ///
    /// # Errors
    /// [`Error::InvalidKeyMaterial`] if the seed is not 16 to 64 bytes long or
    /// gives an invalid master key.
    pub fn from_seed(seed: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            node: HdNode::new(ChainNode::from_seed(seed)?)?,
            meta: Meta::MASTER,
        })
    }

    /// The child at `child` (CKDpriv), with its metadata.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if this key is at depth 255;
    /// [`Error::DerivationFailed`] if the child is invalid (probability below
    /// 2^-127).
    pub fn derive_child(&self, child: ChildNumber) -> Result<Self, Error> {
        let depth = deeper(self.meta.depth, 1)?;
        Ok(Self {
            node: HdNode::new(self.node.derive(child)?)?,
            meta: Meta {
                depth,
                parent_fingerprint: self.node.fingerprint(),
                child_number: child,
            },
        })
    }

    /// Derives every component of `path` in turn, below this key (for a
    /// master key, the path as written). Public keys are computed only for
    /// normal steps and for the last two nodes (the parent's fingerprint is
    /// part of the result).
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if the result would be deeper than 255;
    /// [`Error::DerivationFailed`] if a child is invalid (probability below
    /// 2^-127).
    pub fn derive_path(&self, path: &DerivationPath) -> Result<Self, Error> {
        let depth = deeper(self.meta.depth, path.depth())?;
        let Some((last, init)) = path.components().split_last() else {
            return Ok(Self {
                node: HdNode::new(self.node.chain_node().duplicate()?)?,
                meta: self.meta,
            });
        };
        let Some((first, rest)) = init.split_first() else {
            return self.derive_child(*last);
        };
        let mut parent = self.node.derive(*first)?;
        for child in rest {
            parent = parent.derive(*child)?;
        }
        let parent = HdNode::new(parent)?;
        Ok(Self {
            node: HdNode::new(parent.derive(*last)?)?,
            meta: Meta {
                depth,
                parent_fingerprint: parent.fingerprint(),
                child_number: *last,
            },
        })
    }

    /// The public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        self.node.public_key()
    }

    /// This key's fingerprint (first 4 bytes of `HASH160` of the compressed
    /// public key).
    #[must_use]
    pub fn fingerprint(&self) -> [u8; 4] {
        self.node.fingerprint()
    }

    /// Depth below the master (0 for the master).
    #[must_use]
    pub fn depth(&self) -> u8 {
        self.meta.depth
    }

    /// The parent's fingerprint (`[0; 4]` for the master).
    #[must_use]
    pub fn parent_fingerprint(&self) -> [u8; 4] {
        self.meta.parent_fingerprint
    }

    /// The child number this key was derived at (0 for the master).
    #[must_use]
    pub fn child_number(&self) -> ChildNumber {
        self.meta.child_number
    }

    /// The key and chain code with the public key cached, for fast
    /// derivation ([`HdNode::child_secret`]).
    #[must_use]
    pub fn hd_node(&self) -> &HdNode {
        &self.node
    }

    /// Gives back the key and chain code with the public key cached.
    #[must_use]
    pub fn into_hd_node(self) -> HdNode {
        self.node
    }

    /// The private key. Key material: keep the borrow short.
    #[must_use]
    pub fn expose_secret_key(&self) -> &PrivateKeyBytes {
        self.node.chain_node().expose_secret_key()
    }

    /// The chain code. Key material: keep the borrow short.
    #[must_use]
    pub fn expose_chain_code(&self) -> &[u8; 32] {
        self.node.chain_node().expose_chain_code()
    }

    /// The matching extended public key.
    #[must_use]
    pub fn to_extended_public(&self) -> ExtendedPublicKey {
        ExtendedPublicKey {
            public: self.node.public_key(),
            compressed: *self.node.compressed_public_key(),
            chain_code: *self.expose_chain_code(),
            meta: self.meta,
        }
    }

    /// The `xprv` serialization (BIP32, mainnet version `0x0488ADE4`,
    /// Base58Check). Key material, in a zeroizing string.
    ///
    /// # Errors
    /// [`Error::InvalidExtendedKey`] if Base58 encoding fails (it does not
    /// for 82 bytes).
    pub fn expose_xprv(&self) -> Result<Zeroizing<String>, Error> {
        let mut key = Zeroizing::new([0u8; 33]);
        key[1..].copy_from_slice(self.expose_secret_key().expose_secret());
        encode_extended(XPRV_VERSION, self.meta, self.expose_chain_code(), &key)
    }

    /// Parses an `xprv` string. Rejects, with [`Error::InvalidExtendedKey`]:
    /// bad Base58, a decoded length other than 82 bytes, a bad checksum, a
    /// version other than `xprv` (an `xpub` version included), depth 0 with a
    /// non-zero parent fingerprint or child number, key data not starting with
    /// `0x00`, and a private key of 0 or not below the group order.
    ///
    /// # Errors
    /// [`Error::InvalidExtendedKey`] naming the first rule broken.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let decoded = decode_extended(s)?;
        if decoded.version == XPUB_VERSION {
            return Err(Error::InvalidExtendedKey(
                "public key version where a private key was expected",
            ));
        }
        if decoded.version != XPRV_VERSION {
            return Err(Error::InvalidExtendedKey("unknown version"));
        }
        let (prefix, secret) = decoded.key.split_at(1);
        if prefix != [0] {
            return Err(Error::InvalidExtendedKey(
                "private key data must start with 0x00",
            ));
        }
        let key = PrivateKeyBytes::from_slice(secret)
            .map_err(|_| Error::InvalidExtendedKey("wrong length"))?;
        let node = ChainNode::from_parts(key, decoded.chain_code)
            .map_err(|_| Error::InvalidExtendedKey("private key not in 1..n-1"))?;
        Ok(Self {
            node: HdNode::new(node)?,
            meta: decoded.meta,
        })
    }
}

impl fmt::Debug for ExtendedPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtendedPrivateKey")
            .field(
                "fingerprint",
                &format_args!("{}", hex::encode(self.fingerprint())),
            )
            .field("depth", &self.meta.depth)
            .field(
                "parent_fingerprint",
                &format_args!("{}", hex::encode(self.meta.parent_fingerprint)),
            )
            .field("child_number", &self.meta.child_number)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// ExtendedPublicKey
// ---------------------------------------------------------------------------

/// A BIP32 extended public key: public key, chain code, depth, parent
/// fingerprint and child number. `Display` and [`FromStr`] use the `xpub`
/// serialization (mainnet version `0x0488B21E`, Base58Check).
///
/// Not secret, but not to be published lightly either: with the chain code,
/// any one non-hardened child private key reveals this node's private key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ExtendedPublicKey {
    public: PublicKey,
    compressed: [u8; 33],
    chain_code: [u8; 32],
    meta: Meta,
}

impl ExtendedPublicKey {
    /// CKDpub: the public child at a normal (non-hardened) `child`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] if `child` is hardened (that needs the private
    /// key) or this key is at depth 255; [`Error::DerivationFailed`] if the
    /// child is invalid (probability below 2^-127).
    pub fn derive_child(&self, child: ChildNumber) -> Result<Self, Error> {
        if child.is_hardened() {
            return Err(Error::InvalidPath(
                "a hardened child cannot be derived from a public key",
            ));
        }
        let depth = deeper(self.meta.depth, 1)?;
        let mut data = [0u8; 37];
        data[..33].copy_from_slice(&self.compressed);
        data[33..].copy_from_slice(&child.0.to_be_bytes());
        let i = hmac_sha512(&self.chain_code, &data)?;
        let (il, ir) = split_i(&i);
        let tweak = scalar_below_n(&il).ok_or(Error::DerivationFailed)?;
        let point =
            ProjectivePoint::mul_by_generator(&tweak) + self.public.as_k256().to_projective();
        let public = k256::PublicKey::from_affine(point.to_affine())
            .map(PublicKey::from)
            .map_err(|_| Error::DerivationFailed)?;
        Ok(Self {
            public,
            compressed: public.to_compressed(),
            chain_code: *ir,
            meta: Meta {
                depth,
                parent_fingerprint: self.fingerprint(),
                child_number: child,
            },
        })
    }

    /// Derives every component of `path` in turn, below this key. Every
    /// component must be normal (non-hardened).
    ///
    /// # Errors
    /// As [`Self::derive_child`].
    pub fn derive_path(&self, path: &DerivationPath) -> Result<Self, Error> {
        deeper(self.meta.depth, path.depth())?;
        let mut key = *self;
        for child in path.components() {
            key = key.derive_child(*child)?;
        }
        Ok(key)
    }

    /// The public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The compressed SEC 1 public key.
    #[must_use]
    pub fn compressed_public_key(&self) -> &[u8; 33] {
        &self.compressed
    }

    /// The chain code.
    #[must_use]
    pub fn chain_code(&self) -> &[u8; 32] {
        &self.chain_code
    }

    /// This key's fingerprint (first 4 bytes of `HASH160` of the compressed
    /// public key).
    #[must_use]
    pub fn fingerprint(&self) -> [u8; 4] {
        fingerprint_of(&self.compressed)
    }

    /// Depth below the master (0 for the master).
    #[must_use]
    pub fn depth(&self) -> u8 {
        self.meta.depth
    }

    /// The parent's fingerprint (`[0; 4]` for the master).
    #[must_use]
    pub fn parent_fingerprint(&self) -> [u8; 4] {
        self.meta.parent_fingerprint
    }

    /// The child number this key was derived at (0 for the master).
    #[must_use]
    pub fn child_number(&self) -> ChildNumber {
        self.meta.child_number
    }

    /// Parses an `xpub` string (same as [`FromStr`]). Rejects, with
    /// [`Error::InvalidExtendedKey`]: bad Base58, a decoded length other than
    /// 82 bytes, a bad checksum, a version other than `xpub` (an `xprv`
    /// version included), depth 0 with a non-zero parent fingerprint or child
    /// number, a key prefix other than `0x02`/`0x03`, and an `x` that is not
    /// on the curve.
    ///
    /// # Errors
    /// [`Error::InvalidExtendedKey`] naming the first rule broken.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let decoded = decode_extended(s)?;
        if decoded.version == XPRV_VERSION {
            return Err(Error::InvalidExtendedKey(
                "private key version where a public key was expected",
            ));
        }
        if decoded.version != XPUB_VERSION {
            return Err(Error::InvalidExtendedKey("unknown version"));
        }
        if !matches!(decoded.key.first(), Some(0x02 | 0x03)) {
            return Err(Error::InvalidExtendedKey(
                "public key must start with 0x02 or 0x03",
            ));
        }
        let public = PublicKey::from_sec1_bytes(decoded.key.as_slice())
            .map_err(|_| Error::InvalidExtendedKey("public key is not on the curve"))?;
        Ok(Self {
            public,
            compressed: *decoded.key,
            chain_code: *decoded.chain_code,
            meta: decoded.meta,
        })
    }

    /// The `xpub` serialization.
    fn encode(&self) -> Result<Zeroizing<String>, Error> {
        encode_extended(XPUB_VERSION, self.meta, &self.chain_code, &self.compressed)
    }
}

impl FromStr for ExtendedPublicKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for ExtendedPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.encode().map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

impl fmt::Debug for ExtendedPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtendedPublicKey")
            .field(
                "fingerprint",
                &format_args!("{}", hex::encode(self.fingerprint())),
            )
            .field("depth", &self.meta.depth)
            .field(
                "parent_fingerprint",
                &format_args!("{}", hex::encode(self.meta.parent_fingerprint)),
            )
            .field("child_number", &self.meta.child_number)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HARDENED;
    use proptest::prelude::*;

    // BIP32 test vector 1.
    const SEED1: &str = "000102030405060708090a0b0c0d0e0f";
    const XPRV1: &str = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";
    const XPUB1: &str = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";

    fn master() -> ExtendedPrivateKey {
        ExtendedPrivateKey::from_seed(&hex::decode(SEED1).unwrap()).unwrap()
    }

    #[test]
    fn master_matches_vector_1() {
        let m = master();
        assert_eq!(m.expose_xprv().unwrap().as_str(), XPRV1);
        assert_eq!(m.to_extended_public().to_string(), XPUB1);
        assert_eq!(hex::encode(m.fingerprint()), "3442193e");
        assert_eq!(m.depth(), 0);
    }

    #[test]
    fn debug_shows_no_secret() {
        let m = master();
        let secret_hex = hex::encode(m.expose_secret_key().expose_secret());
        let chain_hex = hex::encode(m.expose_chain_code());
        let xprv = m.expose_xprv().unwrap();
        let outputs = [
            format!("{m:?}"),
            format!("{:?}", m.hd_node()),
            format!("{:?}", m.hd_node().chain_node()),
            format!("{:?}", m.to_extended_public()),
        ];
        for s in &outputs {
            assert!(!s.contains(&secret_hex), "{s}");
            assert!(!s.contains(&chain_hex), "{s}");
            assert!(!s.contains(xprv.as_str()), "{s}");
        }
        assert_eq!(outputs[2], "ChainNode(<redacted>)");
        assert!(outputs[0].contains("3442193e"), "{}", outputs[0]);
        assert!(outputs[1].contains("3442193e"), "{}", outputs[1]);
    }

    #[test]
    fn seed_length_is_checked() {
        for len in [0, 15, 65, 128] {
            assert!(matches!(
                ChainNode::from_seed(&vec![1; len]),
                Err(Error::InvalidKeyMaterial(_))
            ));
        }
        for len in [16, 32, 64] {
            assert!(ChainNode::from_seed(&vec![1; len]).is_ok());
        }
    }

    #[test]
    fn from_parts_rejects_invalid_keys() {
        let n = hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
            .unwrap();
        for bad in [vec![0u8; 32], n] {
            let key = PrivateKeyBytes::from_slice(&bad).unwrap();
            assert!(matches!(
                ChainNode::from_parts(key, Zeroizing::new([0; 32])),
                Err(Error::InvalidKeyMaterial(_))
            ));
        }
    }

    #[test]
    fn public_derivation_refuses_hardened() {
        let xpub = master().to_extended_public();
        assert!(matches!(
            xpub.derive_child(ChildNumber(HARDENED)),
            Err(Error::InvalidPath(_))
        ));
        let path: DerivationPath = "m/1/2'".parse().unwrap();
        assert!(matches!(
            xpub.derive_path(&path),
            Err(Error::InvalidPath(_))
        ));
    }

    #[test]
    fn depth_255_is_the_limit() {
        let m = master();
        let deep: DerivationPath = format!("m{}", "/0".repeat(255)).parse().unwrap();
        let k = m.derive_path(&deep).unwrap();
        assert_eq!(k.depth(), 255);
        assert!(matches!(
            k.derive_child(ChildNumber(0)),
            Err(Error::InvalidPath(_))
        ));
        let one: DerivationPath = "m/0".parse().unwrap();
        assert!(matches!(k.derive_path(&one), Err(Error::InvalidPath(_))));
        assert!(matches!(
            k.to_extended_public().derive_child(ChildNumber(0)),
            Err(Error::InvalidPath(_))
        ));
    }

    #[test]
    fn empty_path_returns_the_same_key() {
        let m = master();
        let same = m.derive_path(&DerivationPath::master()).unwrap();
        assert_eq!(same.expose_xprv().unwrap(), m.expose_xprv().unwrap());
        let node = m
            .hd_node()
            .chain_node()
            .derive_path(&DerivationPath::master())
            .unwrap();
        assert_eq!(node.expose_secret_key(), m.expose_secret_key());
    }

    #[test]
    fn derive_path_equals_stepwise_derivation() {
        let m = master();
        let path: DerivationPath = "m/44'/60'/0'/0/7".parse().unwrap();
        let fast = m.derive_path(&path).unwrap();
        let mut slow = m.derive_child(path.components()[0]).unwrap();
        for c in &path.components()[1..] {
            slow = slow.derive_child(*c).unwrap();
        }
        assert_eq!(fast.expose_xprv().unwrap(), slow.expose_xprv().unwrap());
        assert_eq!(fast.parent_fingerprint(), slow.parent_fingerprint());
    }

    #[test]
    fn public_derivation_matches_private() {
        let m = master();
        let path: DerivationPath = "m/0'/1".parse().unwrap();
        let parent = m.derive_path(&path).unwrap();
        let sub: DerivationPath = "m/2/3/2147483647".parse().unwrap();
        let private = parent.derive_path(&sub).unwrap().to_extended_public();
        let public = parent.to_extended_public().derive_path(&sub).unwrap();
        assert_eq!(private, public);
        assert_eq!(private.to_string(), public.to_string());
    }

    #[test]
    fn parse_names_the_rule_broken() {
        // A valid xprv parsed as an xpub and vice versa.
        assert!(matches!(
            ExtendedPublicKey::parse(XPRV1),
            Err(Error::InvalidExtendedKey(r)) if r.contains("private key version")
        ));
        assert!(matches!(
            ExtendedPrivateKey::parse(XPUB1),
            Err(Error::InvalidExtendedKey(r)) if r.contains("public key version")
        ));
        assert!(matches!(
            ExtendedPublicKey::parse(&XPUB1[..110]),
            Err(Error::InvalidExtendedKey(_))
        ));
        assert!(matches!(
            ExtendedPublicKey::parse(&"1".repeat(500)),
            Err(Error::InvalidExtendedKey("wrong length"))
        ));
        assert!(matches!(
            ExtendedPublicKey::parse("xpub0OIl"),
            Err(Error::InvalidExtendedKey("invalid base58"))
        ));
        assert!(matches!(
            ExtendedPublicKey::parse(""),
            Err(Error::InvalidExtendedKey("wrong length"))
        ));
    }

    /// Builds a Base58Check string from raw payload bytes (tests only).
    fn encode_raw(payload: &[u8; PAYLOAD_LEN]) -> String {
        let mut raw = payload.to_vec();
        raw.extend_from_slice(&checksum4(payload));
        bs58::encode(raw).into_string()
    }

    proptest! {
        #[test]
        fn hd_node_child_secret_equals_chain_node_derive(
            seed in proptest::collection::vec(any::<u8>(), 16..=64),
            index in any::<u32>(),
        ) {
            let root = ChainNode::from_seed(&seed).unwrap();
            let slow = root.derive(ChildNumber(index)).unwrap();
            let hd = HdNode::new(ChainNode::from_seed(&seed).unwrap()).unwrap();
            let fast = hd.child_secret(ChildNumber(index)).unwrap();
            prop_assert_eq!(&fast, slow.expose_secret_key());
            let node = hd.derive(ChildNumber(index)).unwrap();
            prop_assert_eq!(node.expose_chain_code(), slow.expose_chain_code());
            prop_assert_eq!(hd.public_key(), root.public_key());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,130}") {
            let _ = ExtendedPrivateKey::parse(&s);
            let _ = s.parse::<ExtendedPublicKey>();
        }

        #[test]
        fn parse_never_panics_on_base58(s in "[1-9A-HJ-NP-Za-km-z]{100,115}") {
            let _ = ExtendedPrivateKey::parse(&s);
            let _ = s.parse::<ExtendedPublicKey>();
        }

        #[test]
        fn parse_checks_valid_checksum_payloads(
            version in prop_oneof![Just(XPRV_VERSION), Just(XPUB_VERSION), any::<[u8; 4]>()],
            depth in prop_oneof![Just(0u8), any::<u8>()],
            parent in prop_oneof![Just([0u8; 4]), any::<[u8; 4]>()],
            child in prop_oneof![Just(0u32), any::<u32>()],
            chain_code in any::<[u8; 32]>(),
            prefix in prop_oneof![Just(0u8), Just(2u8), Just(3u8), Just(4u8), any::<u8>()],
            key in prop_oneof![
                any::<[u8; 32]>(),
                Just([0u8; 32]),
                Just([0xffu8; 32]),
            ],
        ) {
            let mut raw = [0u8; PAYLOAD_LEN];
            raw[..4].copy_from_slice(&version);
            raw[4] = depth;
            raw[5..9].copy_from_slice(&parent);
            raw[9..13].copy_from_slice(&child.to_be_bytes());
            raw[13..45].copy_from_slice(&chain_code);
            raw[45] = prefix;
            raw[46..].copy_from_slice(&key);
            let s = encode_raw(&raw);
            // Whatever the bytes, a parse either fails with a typed error or
            // round-trips exactly.
            match ExtendedPrivateKey::parse(&s) {
                Ok(k) => {
                    let xprv = k.expose_xprv().unwrap();
                    prop_assert_eq!(xprv.as_str(), s.as_str());
                }
                Err(e) => prop_assert!(matches!(e, Error::InvalidExtendedKey(_))),
            }
            match ExtendedPublicKey::parse(&s) {
                Ok(k) => prop_assert_eq!(k.to_string(), s),
                Err(e) => prop_assert!(matches!(e, Error::InvalidExtendedKey(_))),
            }
        }

        #[test]
        fn serialization_round_trips(
            seed in proptest::collection::vec(any::<u8>(), 16..=64),
            path in proptest::collection::vec(any::<u32>(), 0..4),
        ) {
            let path = DerivationPath::from_components(path.into_iter().map(ChildNumber).collect()).unwrap();
            let k = ExtendedPrivateKey::from_seed(&seed).unwrap().derive_path(&path).unwrap();
            let xprv = k.expose_xprv().unwrap();
            let back = ExtendedPrivateKey::parse(&xprv).unwrap();
            prop_assert_eq!(back.expose_secret_key(), k.expose_secret_key());
            prop_assert_eq!(back.expose_xprv().unwrap(), xprv);
            let xpub = k.to_extended_public();
            prop_assert_eq!(xpub.to_string().parse::<ExtendedPublicKey>().unwrap(), xpub);
        }
    }
}
