//! [`SignedVerdict`]: a policy node's allow on one operation, signed with
//! the policy key, which a signing node checks before it signs.
//!
//! A verdict names everything the signing node must match: the wallet, the
//! operation hash, the digest to sign and the key to sign it with, the
//! policy-log position (so a verdict made under a policy since replaced is
//! stale), the rule that allowed, and a validity window. The encoding:
//!
//! ```text
//! verdict = "custody/verdict/v1" ‖ lp(wallet) ‖ operation hash (32)
//!         ‖ digest (32) ‖ lp(signer) ‖ kind (1) ‖ log index (8) ‖ log hash (32)
//!         ‖ policy hash (32) ‖ lp(rule) ‖ issued at (8) ‖ expires at (8)
//! wire    = verdict ‖ signature (r ‖ s ‖ parity, 65 bytes)
//! lp(x)   = len(x) as 2 bytes big-endian ‖ x  (at most 1024 bytes)
//! ```
//!
//! The signature is the policy key's over SHA-256(verdict), made through a
//! `KeyBackend` with intent `verdict`.

use custody_core::{Digest32, PublicKey, RecoverableSignature};
use sha2::{Digest, Sha256};

use crate::log::Checkpoint;
use crate::operation::{OperationHash, OperationKind};

/// The domain tag of a verdict.
pub const VERDICT_TAG: &[u8] = b"custody/verdict/v1";

/// Longest variable field (wallet, signer, rule) of a verdict.
const MAX_FIELD: usize = 1024;

/// A policy node's allow on one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The wallet.
    pub wallet: String,
    /// The operation's hash.
    pub operation: OperationHash,
    /// The digest the signing node may sign.
    pub digest: Digest32,
    /// The key that may sign it (SEC 1 compressed).
    pub signer: Vec<u8>,
    /// The operation's kind.
    pub kind: OperationKind,
    /// The policy log's head the decision was made at.
    pub log: Checkpoint,
    /// The hash of the policy in force there.
    pub policy_hash: [u8; 32],
    /// The rule that allowed.
    pub rule: String,
    /// Unix seconds when it was made.
    pub issued_at: u64,
    /// Unix seconds after which it is void.
    pub expires_at: u64,
}

/// Why a verdict was refused. One variant per check, so a refusal names
/// it; none carries the verdict's bytes.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerdictError {
    /// The bytes are not a verdict.
    #[error("malformed verdict: {0}")]
    Malformed(&'static str),
    /// The signature is not the policy key's over this verdict.
    #[error("the verdict is not signed by the policy key")]
    BadSignature,
    /// A field does not match the request: which one.
    #[error("the verdict is for another {0}")]
    Mismatch(&'static str),
    /// Outside its validity window.
    #[error("the verdict is not valid now")]
    Expired,
    /// Made under a policy-log head that is no longer the head.
    #[error("the verdict was made under a policy since replaced")]
    Stale,
    /// Already used for a signature.
    #[error("the verdict was already used")]
    Spent,
}

fn lp(out: &mut Vec<u8>, bytes: &[u8]) {
    // Every field is checked to be at most MAX_FIELD bytes before encoding.
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

impl Verdict {
    /// The canonical encoding (what the signature covers).
    ///
    /// # Errors
    /// [`VerdictError::Malformed`] if the wallet, signer or rule is over
    /// 1024 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, VerdictError> {
        if [self.wallet.len(), self.signer.len(), self.rule.len()]
            .iter()
            .any(|&n| n > MAX_FIELD)
        {
            return Err(VerdictError::Malformed("a field is over 1024 bytes"));
        }
        let mut out = Vec::with_capacity(256 + self.wallet.len() + self.rule.len());
        out.extend_from_slice(VERDICT_TAG);
        lp(&mut out, self.wallet.as_bytes());
        out.extend_from_slice(self.operation.as_bytes());
        out.extend_from_slice(self.digest.as_bytes());
        lp(&mut out, &self.signer);
        out.push(self.kind.code());
        out.extend_from_slice(&self.log.index.to_be_bytes());
        out.extend_from_slice(&self.log.hash);
        out.extend_from_slice(&self.policy_hash);
        lp(&mut out, self.rule.as_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        Ok(out)
    }

    /// SHA-256 of the encoding: the digest the policy key signs.
    ///
    /// # Errors
    /// As [`Verdict::encode`].
    pub fn hash(&self) -> Result<Digest32, VerdictError> {
        Ok(Digest32(Sha256::digest(self.encode()?).into()))
    }
}

/// A verdict and the policy key's signature over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVerdict {
    /// The verdict.
    pub verdict: Verdict,
    /// The policy key's signature over [`Verdict::hash`].
    pub signature: RecoverableSignature,
}

/// A cursor over untrusted bytes.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], VerdictError> {
        if self.0.len() < n {
            return Err(VerdictError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], VerdictError> {
        self.take(N)?
            .try_into()
            .map_err(|_| VerdictError::Malformed("truncated"))
    }

    fn u64(&mut self) -> Result<u64, VerdictError> {
        self.array::<8>().map(u64::from_be_bytes)
    }

    fn field(&mut self) -> Result<&'a [u8], VerdictError> {
        let len = usize::from(u16::from_be_bytes(self.array::<2>()?));
        if len > MAX_FIELD {
            return Err(VerdictError::Malformed("a field is over 1024 bytes"));
        }
        self.take(len)
    }
}

impl SignedVerdict {
    /// The wire form: the encoding, then the 65-byte signature.
    ///
    /// # Errors
    /// As [`Verdict::encode`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, VerdictError> {
        let mut out = self.verdict.encode()?;
        out.extend_from_slice(&self.signature.to_compact());
        out.push(u8::from(self.signature.y_parity()));
        Ok(out)
    }

    /// Reads the wire form strictly (every byte accounted for). The
    /// signature is not checked here: see [`SignedVerdict::verify`].
    ///
    /// # Errors
    /// [`VerdictError::Malformed`] naming what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VerdictError> {
        let mut r = Reader(bytes);
        if r.take(VERDICT_TAG.len())? != VERDICT_TAG {
            return Err(VerdictError::Malformed("not a custody verdict"));
        }
        let wallet = std::str::from_utf8(r.field()?)
            .map_err(|_| VerdictError::Malformed("the wallet is not UTF-8"))?
            .to_owned();
        let operation = OperationHash(r.array()?);
        let digest = Digest32(r.array()?);
        let signer = r.field()?.to_vec();
        let [kind] = r.array::<1>()?;
        let kind = OperationKind::ALL
            .into_iter()
            .find(|k| k.code() == kind)
            .ok_or(VerdictError::Malformed("unknown operation kind"))?;
        let log = Checkpoint {
            index: r.u64()?,
            hash: r.array()?,
        };
        let policy_hash = r.array()?;
        let rule = std::str::from_utf8(r.field()?)
            .map_err(|_| VerdictError::Malformed("the rule is not UTF-8"))?
            .to_owned();
        let issued_at = r.u64()?;
        let expires_at = r.u64()?;
        let r_bytes = r.array::<32>()?;
        let s_bytes = r.array::<32>()?;
        let parity = match r.array::<1>()? {
            [0] => false,
            [1] => true,
            _ => {
                return Err(VerdictError::Malformed(
                    "the signature's parity is not 0 or 1",
                ));
            }
        };
        if !r.0.is_empty() {
            return Err(VerdictError::Malformed("trailing bytes"));
        }
        let signature = RecoverableSignature::from_parts(r_bytes, s_bytes, parity)
            .map_err(|_| VerdictError::Malformed("not a signature"))?;
        Ok(Self {
            verdict: Verdict {
                wallet,
                operation,
                digest,
                signer,
                kind,
                log,
                policy_hash,
                rule,
                issued_at,
                expires_at,
            },
            signature,
        })
    }

    /// Checks the signature is `policy_key`'s over the verdict.
    ///
    /// # Errors
    /// [`VerdictError::BadSignature`]; [`VerdictError::Malformed`].
    pub fn verify(&self, policy_key: &PublicKey) -> Result<(), VerdictError> {
        let hash = self.verdict.hash()?;
        match self.signature.recover(&hash) {
            Ok(key) if key == *policy_key => Ok(()),
            _ => Err(VerdictError::BadSignature),
        }
    }
}
