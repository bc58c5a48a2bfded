//! Shares of the quorum secret and the public [`ShareSet`] they are
//! checked against: [`split`], [`Share`], [`ShareSet`], [`Commitment`],
//! [`SetId`]. Formats in `SPEC.md`.

use std::convert::Infallible;
use std::fmt;

use rand_core::{TryCryptoRng, TryRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use vsss_rs::{Gf256, IdentifierGf256};
use zeroize::{Zeroize, Zeroizing};

use crate::format::{self, SecretHex32, VERSION_1, Versioned, hex_array};
use crate::{Error, QuorumKey, QuorumPublicKey, QuorumSecret};

/// Domain tag of a share commitment.
const COMMITMENT_DOMAIN: &[u8] = b"custody/quorum-share-commitment/v1";
/// Domain tag of a share set's digest.
const SHARESET_DOMAIN: &[u8] = b"custody/quorum-shareset/v1";

/// The identifier of one split: 16 random bytes, 32 hex digits in JSON.
/// Every share and commitment of the split is bound to it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SetId(#[serde(with = "hex_array")] [u8; 16]);

impl SetId {
    /// The id's bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 16] {
        self.0
    }
}

impl fmt::Display for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SetId({self})")
    }
}

/// The public commitment to one share: SHA-256 over the domain tag
/// `"custody/quorum-share-commitment/v1"`, the set id (16 bytes), the
/// index (1 byte), the share's salt (32 bytes) and its value (32 bytes).
/// The salt, random per share and kept only in the share file, hides the
/// value from anyone holding the share set alone. 64 hex digits in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Commitment(#[serde(with = "hex_array")] [u8; 32]);

impl Commitment {
    fn compute(set_id: &SetId, index: u8, salt: &[u8; 32], value: &[u8; 32]) -> Self {
        let mut hash = Sha256::new();
        hash.update(COMMITMENT_DOMAIN);
        hash.update(set_id.0);
        hash.update([index]);
        hash.update(salt);
        hash.update(value);
        Self(hash.finalize().into())
    }

    /// The commitment's bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl fmt::Debug for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Commitment({})", hex::encode(self.0))
    }
}

/// One holder's share of the quorum secret: the set id, its index `i`
/// (the x-coordinate, 1..=N), its salt and its value (the 32 bytes of
/// `f(i)`, one GF(256) polynomial per secret byte).
///
/// Secret: no `Clone`, no `Serialize` (written only by
/// [`Share::to_json`], into zeroizing memory), `Debug` shows the set id and
/// index only, the value is zeroized on drop.
pub struct Share {
    set_id: SetId,
    index: u8,
    salt: Zeroizing<[u8; 32]>,
    value: Zeroizing<[u8; 32]>,
}

impl Share {
    pub(crate) fn from_parts(
        set_id: SetId,
        index: u8,
        salt: Zeroizing<[u8; 32]>,
        value: Zeroizing<[u8; 32]>,
    ) -> Self {
        Self {
            set_id,
            index,
            salt,
            value,
        }
    }

    /// The set this share belongs to.
    #[must_use]
    pub fn set_id(&self) -> &SetId {
        &self.set_id
    }

    /// The share's index (1..=N).
    #[must_use]
    pub fn index(&self) -> u8 {
        self.index
    }

    /// The share's salt (kept private with the share; it is not secret on
    /// its own, but with the share set it would let anyone test guesses of
    /// the value).
    pub(crate) fn salt(&self) -> &[u8; 32] {
        &self.salt
    }

    /// The share's value. **Key material**: `threshold` of these rebuild
    /// the quorum secret.
    #[must_use]
    pub fn expose_value(&self) -> &[u8; 32] {
        &self.value
    }

    /// This share's commitment.
    #[must_use]
    pub fn commitment(&self) -> Commitment {
        Commitment::compute(&self.set_id, self.index, &self.salt, &self.value)
    }

    /// Checks this share against `set`: same set id, an index of the set,
    /// and the commitment published for that index (compared in constant
    /// time). A holder runs it before sealing; the enclave runs it on every
    /// share it opens.
    ///
    /// # Errors
    /// [`Error::ForeignShare`], [`Error::UnknownIndex`], or
    /// [`Error::ShareInvalid`] naming the index.
    pub fn verify(&self, set: &ShareSet) -> Result<(), Error> {
        let index = self.index;
        if self.set_id != set.set_id {
            return Err(Error::ForeignShare { index });
        }
        let published = set.commitment(index).ok_or(Error::UnknownIndex { index })?;
        if bool::from(self.commitment().0.ct_eq(&published.0)) {
            Ok(())
        } else {
            Err(Error::ShareInvalid { index })
        }
    }

    /// The share file (`SPEC.md`, "Share file"), in zeroizing memory.
    #[must_use]
    pub fn to_json(&self) -> Zeroizing<String> {
        let mut value_hex = Zeroizing::new([0u8; 64]);
        let mut salt_hex = Zeroizing::new([0u8; 64]);
        // Both buffers are exactly twice the input: these cannot fail.
        let _ = hex::encode_to_slice(self.value.as_slice(), value_hex.as_mut_slice());
        let _ = hex::encode_to_slice(self.salt.as_slice(), salt_hex.as_mut_slice());
        let mut out = Zeroizing::new(String::with_capacity(256));
        out.push_str("{\"version\":1,\"setId\":\"");
        out.push_str(&self.set_id.to_string());
        out.push_str("\",\"index\":");
        out.push_str(&self.index.to_string());
        out.push_str(",\"salt\":\"");
        out.push_str(std::str::from_utf8(salt_hex.as_slice()).unwrap_or_default());
        out.push_str("\",\"value\":\"");
        out.push_str(std::str::from_utf8(value_hex.as_slice()).unwrap_or_default());
        out.push_str("\"}");
        out
    }

    /// Reads a share file strictly (`SPEC.md`): version 1, every member
    /// present once, no other member, lower-case hex of the exact lengths,
    /// an index in 1..=255.
    ///
    /// # Errors
    /// [`Error::Malformed`] for anything else.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let file: ShareFile = format::from_json(json, "share file")?;
        if file.index == 0 {
            return Err(Error::Malformed("share file"));
        }
        Ok(Self {
            set_id: file.set_id,
            index: file.index,
            salt: file.salt.0,
            value: file.value.0,
        })
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("set_id", &self.set_id)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// The share file as read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ShareFile {
    version: u32,
    set_id: SetId,
    index: u8,
    salt: SecretHex32,
    value: SecretHex32,
}

impl Versioned for ShareFile {
    fn version(&self) -> u32 {
        self.version
    }
}

/// The public description of a split, given to every holder and to the
/// enclave: the set id, the threshold M, the quorum public key, and one
/// [`Commitment`] per share index 1..=N (N is the number of commitments).
#[derive(Clone, PartialEq, Eq)]
pub struct ShareSet {
    set_id: SetId,
    threshold: u8,
    quorum_public_key: QuorumPublicKey,
    commitments: Vec<Commitment>,
}

impl ShareSet {
    /// The set id.
    #[must_use]
    pub fn set_id(&self) -> &SetId {
        &self.set_id
    }

    /// The threshold M: shares needed to rebuild the secret.
    #[must_use]
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The number of shares N.
    #[must_use]
    pub fn shares(&self) -> u8 {
        // At most 255 commitments (checked when made or read).
        u8::try_from(self.commitments.len()).unwrap_or(u8::MAX)
    }

    /// The quorum public key a reconstruction must match.
    #[must_use]
    pub fn quorum_public_key(&self) -> &QuorumPublicKey {
        &self.quorum_public_key
    }

    /// The commitment of share `index` (1..=N), if the set has one.
    #[must_use]
    pub fn commitment(&self, index: u8) -> Option<&Commitment> {
        usize::from(index)
            .checked_sub(1)
            .and_then(|i| self.commitments.get(i))
    }

    /// The set's digest: SHA-256 over `"custody/quorum-shareset/v1"`, the
    /// set id, M, N, the compressed quorum public key and the commitments in
    /// index order. Every sealed share is bound to it (`SPEC.md`).
    #[must_use]
    pub fn digest(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(SHARESET_DOMAIN);
        hash.update(self.set_id.0);
        hash.update([self.threshold, self.shares()]);
        hash.update(self.quorum_public_key.to_bytes());
        for c in &self.commitments {
            hash.update(c.0);
        }
        hash.finalize().into()
    }

    /// The share set file (`SPEC.md`, "Share set").
    #[must_use]
    pub fn to_json(&self) -> String {
        let json = ShareSetJson {
            version: VERSION_1,
            set_id: self.set_id,
            threshold: self.threshold,
            shares: self.shares(),
            quorum_public_key: self.quorum_public_key,
            commitments: self.commitments.clone(),
        };
        // Strings and integers only: serialization cannot fail.
        serde_json::to_string_pretty(&json).unwrap_or_default()
    }

    /// Reads a share set strictly (`SPEC.md`): version 1, every member once,
    /// no other member, `1 <= threshold <= shares <= 255`, exactly `shares`
    /// commitments, pairwise distinct, and a valid compressed P-256 quorum
    /// public key.
    ///
    /// # Errors
    /// [`Error::Malformed`] for anything else.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let file: ShareSetJson = format::from_json(json, "share set")?;
        check_parameters(file.threshold, file.shares).map_err(|_| Error::Malformed("share set"))?;
        if file.commitments.len() != usize::from(file.shares) {
            return Err(Error::Malformed("share set"));
        }
        for (i, c) in file.commitments.iter().enumerate() {
            if file.commitments[..i].contains(c) {
                return Err(Error::Malformed("share set"));
            }
        }
        Ok(Self {
            set_id: file.set_id,
            threshold: file.threshold,
            quorum_public_key: file.quorum_public_key,
            commitments: file.commitments,
        })
    }
}

impl fmt::Debug for ShareSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareSet")
            .field("set_id", &self.set_id)
            .field("threshold", &self.threshold)
            .field("shares", &self.shares())
            .field("quorum_public_key", &self.quorum_public_key)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ShareSetJson {
    version: u32,
    set_id: SetId,
    threshold: u8,
    shares: u8,
    quorum_public_key: QuorumPublicKey,
    commitments: Vec<Commitment>,
}

impl Versioned for ShareSetJson {
    fn version(&self) -> u32 {
        self.version
    }
}

fn check_parameters(threshold: u8, shares: u8) -> Result<(), Error> {
    if threshold == 0 {
        return Err(Error::InvalidParameters("the threshold is at least 1"));
    }
    if shares < threshold {
        return Err(Error::InvalidParameters(
            "the number of shares is at least the threshold",
        ));
    }
    Ok(())
}

/// A source of random bytes that may fail: the operating system's
/// generator, or (feature `hazmat`) a seeded stream for frozen vectors.
pub(crate) type Fill<'a> = dyn FnMut(&mut [u8]) -> Result<(), Error> + 'a;

fn os_fill(out: &mut [u8]) -> Result<(), Error> {
    getrandom::fill(out).map_err(|_| Error::Rng)
}

/// A [`Fill`] as the infallible RNG vsss-rs asks for: a failure is
/// recorded (and zeros served) instead of a panic, and the split then
/// discards everything and reports [`Error::Rng`].
struct FillRng<'a, 'b> {
    fill: &'b mut Fill<'a>,
    failed: bool,
}

impl TryRng for FillRng<'_, '_> {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        if (self.fill)(dst).is_err() {
            dst.fill(0);
            self.failed = true;
        }
        Ok(())
    }
}

impl TryCryptoRng for FillRng<'_, '_> {}

fn random<const N: usize>(fill: &mut Fill<'_>) -> Result<Zeroizing<[u8; N]>, Error> {
    let mut out = Zeroizing::new([0u8; N]);
    fill(out.as_mut_slice())?;
    Ok(out)
}

/// Splits `secret` into `shares` shares, any `threshold` of which rebuild
/// it (Shamir over GF(256), byte by byte, with vsss-rs; share `i` is the
/// polynomials at `x = i`), and returns the public [`ShareSet`] with the
/// shares in index order.
///
/// `threshold` 1 is allowed (the polynomial is constant: every share is the
/// secret itself, and any one holder can boot); vsss-rs is used from 2 up.
///
/// # Errors
/// [`Error::InvalidParameters`] unless `1 <= threshold <= shares` (and
/// `shares <= 255` by type); [`Error::Rng`] if the generator fails.
pub fn split(
    secret: &QuorumSecret,
    threshold: u8,
    shares: u8,
) -> Result<(ShareSet, Vec<Share>), Error> {
    split_with(secret, threshold, shares, &mut os_fill)
}

/// [`split`] drawing from `fill`.
pub(crate) fn split_with(
    secret: &QuorumSecret,
    threshold: u8,
    shares: u8,
    fill: &mut Fill<'_>,
) -> Result<(ShareSet, Vec<Share>), Error> {
    check_parameters(threshold, shares)?;
    let set_id = SetId(*random::<16>(fill)?);
    let values = if threshold == 1 {
        (0..shares)
            .map(|_| Zeroizing::new(*secret.expose_secret()))
            .collect()
    } else {
        gf256_split(secret, threshold, shares, fill)?
    };
    let mut out = Vec::with_capacity(values.len());
    for (index, value) in (1..=shares).zip(values) {
        out.push(Share {
            set_id,
            index,
            salt: random::<32>(fill)?,
            value,
        });
    }
    let set = ShareSet {
        set_id,
        threshold,
        quorum_public_key: secret.public_key(),
        commitments: out.iter().map(Share::commitment).collect(),
    };
    Ok((set, out))
}

/// A fresh quorum secret, split: the [`QuorumKey`] (to be dropped on an
/// air-gapped splitting machine once the shares are out), the share set and
/// the shares.
///
/// # Errors
/// As [`split`].
pub fn generate(threshold: u8, shares: u8) -> Result<(QuorumKey, ShareSet, Vec<Share>), Error> {
    check_parameters(threshold, shares)?;
    let secret = QuorumSecret::generate()?;
    let (set, shares) = split(&secret, threshold, shares)?;
    Ok((QuorumKey::from_secret(secret), set, shares))
}

/// Shamir over GF(256) by vsss-rs, threshold ≥ 2.
///
/// vsss-rs keeps each byte's polynomial (the secret byte and the random
/// coefficients) in a buffer it reuses for the next byte and frees without
/// wiping. So the secret goes in with one random pad byte after it: the
/// buffer left behind holds the pad's polynomial, not a secret byte's; the
/// pad's shares are cut off here.
fn gf256_split(
    secret: &QuorumSecret,
    threshold: u8,
    shares: u8,
    fill: &mut Fill<'_>,
) -> Result<Vec<Zeroizing<[u8; 32]>>, Error> {
    let mut padded = Zeroizing::new([0u8; 33]);
    padded[..32].copy_from_slice(secret.expose_secret());
    padded[32] = random::<1>(fill)?[0];
    let mut rng = FillRng {
        fill,
        failed: false,
    };
    let ids = (1..=shares).map(|i| IdentifierGf256(Gf256(i)));
    let mut raw = Gf256::split_bytes_with_participant_ids_iter(
        usize::from(threshold),
        usize::from(shares),
        padded.as_slice(),
        &mut rng,
        ids,
    )
    .map_err(|_| Error::InvalidParameters("vsss-rs refused the split"))?;
    let mut values = Vec::with_capacity(raw.len());
    let mut wellformed = raw.len() == usize::from(shares);
    for (share, index) in raw.iter().zip(1..=shares) {
        // Each share is [x, f(x) for the 33 bytes]: x must be its index.
        match (share.first(), share.get(1..33)) {
            (Some(x), Some(value)) if *x == index && share.len() == 34 => {
                let mut v = Zeroizing::new([0u8; 32]);
                v.copy_from_slice(value);
                values.push(v);
            }
            _ => wellformed = false,
        }
    }
    for share in &mut raw {
        share.zeroize();
    }
    if rng.failed {
        return Err(Error::Rng);
    }
    if !wellformed {
        return Err(Error::InvalidParameters(
            "vsss-rs returned unexpected shares",
        ));
    }
    Ok(values)
}

/// Rebuilds the secret from shares already checked against one share set
/// (distinct indices, at least its threshold of them).
pub(crate) fn combine<'a>(
    threshold: u8,
    shares: impl ExactSizeIterator<Item = &'a Share>,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let mut out = Zeroizing::new([0u8; 32]);
    if threshold == 1 {
        let first = shares
            .into_iter()
            .next()
            .ok_or(Error::QuorumIncomplete { have: 0, need: 1 })?;
        out.copy_from_slice(first.expose_value());
        return Ok(out);
    }
    let mut raw: Vec<Vec<u8>> = Vec::with_capacity(shares.len());
    for share in shares {
        let mut v = Vec::with_capacity(33);
        v.push(share.index());
        v.extend_from_slice(share.expose_value());
        raw.push(v);
    }
    let combined = Gf256::combine_bytes(&raw).map(Zeroizing::new);
    for share in &mut raw {
        share.zeroize();
    }
    let combined = combined.map_err(|_| Error::InvalidParameters("vsss-rs refused the shares"))?;
    if combined.len() != 32 {
        return Err(Error::InvalidParameters(
            "vsss-rs returned a secret of another length",
        ));
    }
    out.copy_from_slice(&combined);
    Ok(out)
}
