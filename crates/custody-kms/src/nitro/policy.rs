//! The verifier and the caller's policy: which enclave image (PCRs), whether
//! a debug-mode enclave may pass, what the document must carry for this
//! session (nonce, user data, public key), and how fresh it must be.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use super::chain::{TrustAnchor, verify_chain};
use super::cose::verify_signature;
use super::document::AttestationDocument;
use super::error::AttestationError;

/// When to check a document: the time every certificate of its chain must
/// be valid at. The library never reads a clock; the caller says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationTime {
    /// At this time, in seconds since the UNIX epoch (for a live session:
    /// now). The document's own timestamp must not be after it (beyond the
    /// allowed [clock skew](Expectations::with_clock_skew)), and not older
    /// than the [maximum age](Expectations::with_max_age) if one is set.
    At(u64),
    /// At the document's own timestamp (seconds, rounded down): for an
    /// archived document, whose leaf certificate (valid about three hours)
    /// has long expired. This proves the document was valid when made, by
    /// its own signed account of when that was; no freshness is checked.
    DocumentTime,
}

/// What the caller requires of a document beyond AWS's signature: the
/// enclave image, the session's values, the freshness.
///
/// Start from [`Expectations::for_image`] (PCR0–2 of the image you built,
/// as `nitro-cli build-enclave` prints them) or, to accept any enclave
/// image, [`Expectations::any_image`].
///
/// ```
/// # #[cfg(feature = "nitro")] {
/// use custody_kms::nitro::Expectations;
///
/// let (pcr0, pcr1, pcr2) = ([1u8; 48], [2u8; 48], [3u8; 48]);
/// let session_nonce = [9u8; 32];
/// let expected = Expectations::for_image(&pcr0, &pcr1, &pcr2)
///     .with_pcr(8, &[4u8; 48]) // the signing certificate of the image
///     .with_nonce(&session_nonce)
///     .with_max_age(300);
/// # let _ = expected; }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    pcrs: BTreeMap<u8, Vec<u8>>,
    allow_debug: bool,
    nonce: Option<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    public_key: Option<Vec<u8>>,
    max_age_s: Option<u64>,
    clock_skew_s: u64,
}

impl Expectations {
    /// A document of the enclave image whose PCR0 (image), PCR1 (kernel and
    /// boot ramfs) and PCR2 (application) are these, compared byte for byte.
    #[must_use]
    pub fn for_image(pcr0: &[u8], pcr1: &[u8], pcr2: &[u8]) -> Self {
        Self::default()
            .with_pcr(0, pcr0)
            .with_pcr(1, pcr1)
            .with_pcr(2, pcr2)
    }

    /// A document of any enclave image: no PCR is compared. The document
    /// then proves only that *some* Nitro enclave (not in debug mode,
    /// unless [allowed](Expectations::allow_debug_mode)) made it.
    #[must_use]
    pub fn any_image() -> Self {
        Self::default()
    }

    /// PCR `index` must be present and equal `value` (PCR3: the parent
    /// instance's IAM role; PCR4: its instance id; PCR8: the image's
    /// signing certificate). Replaces an earlier expectation of that PCR.
    /// An index above 31 never matches.
    #[must_use]
    pub fn with_pcr(mut self, index: u8, value: &[u8]) -> Self {
        self.pcrs.insert(index, value.to_vec());
        self
    }

    /// Accept a debug-mode enclave (PCR0, PCR1 or PCR2 all zeros), whose
    /// memory and console the parent instance can read: for development
    /// only. Off by default.
    #[must_use]
    pub fn allow_debug_mode(mut self) -> Self {
        self.allow_debug = true;
        self
    }

    /// The document's `nonce` must be present and equal `nonce` (the
    /// challenge this session sent the enclave).
    #[must_use]
    pub fn with_nonce(mut self, nonce: &[u8]) -> Self {
        self.nonce = Some(nonce.to_vec());
        self
    }

    /// The document's `user_data` must be present and equal `user_data`.
    #[must_use]
    pub fn with_user_data(mut self, user_data: &[u8]) -> Self {
        self.user_data = Some(user_data.to_vec());
        self
    }

    /// The document's `public_key` must be present and equal `public_key`
    /// (the key this session will encrypt to).
    #[must_use]
    pub fn with_public_key(mut self, public_key: &[u8]) -> Self {
        self.public_key = Some(public_key.to_vec());
        self
    }

    /// With [`VerificationTime::At`], the document must be at most
    /// `seconds` old. (Without it, only the leaf certificate's validity,
    /// about three hours, bounds its age.)
    #[must_use]
    pub fn with_max_age(mut self, seconds: u64) -> Self {
        self.max_age_s = Some(seconds);
        self
    }

    /// With [`VerificationTime::At`], the document's timestamp may be up to
    /// `seconds` after the verification time (the enclave's and the
    /// verifier's clocks differ). Default 0: not after it (timestamps are
    /// compared in whole seconds).
    #[must_use]
    pub fn with_clock_skew(mut self, seconds: u64) -> Self {
        self.clock_skew_s = seconds;
        self
    }
}

/// A document that passed every check, and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAttestation {
    document: AttestationDocument,
    verified_at: u64,
}

impl VerifiedAttestation {
    /// The whole decoded document.
    #[must_use]
    pub fn document(&self) -> &AttestationDocument {
        &self.document
    }

    /// The time (seconds since the UNIX epoch) every certificate was
    /// checked at.
    #[must_use]
    pub fn verified_at(&self) -> u64 {
        self.verified_at
    }

    /// `module_id`.
    #[must_use]
    pub fn module_id(&self) -> &str {
        self.document.module_id()
    }

    /// `timestamp`, in milliseconds since the UNIX epoch.
    #[must_use]
    pub fn timestamp_ms(&self) -> u64 {
        self.document.timestamp_ms()
    }

    /// `digest` (`"SHA384"`).
    #[must_use]
    pub fn digest(&self) -> &'static str {
        self.document.digest()
    }

    /// Every PCR, by index.
    #[must_use]
    pub fn pcrs(&self) -> &BTreeMap<u8, Vec<u8>> {
        self.document.pcrs()
    }

    /// PCR `index`, if present.
    #[must_use]
    pub fn pcr(&self, index: u8) -> Option<&[u8]> {
        self.document.pcr(index)
    }

    /// `public_key`, if present and not null.
    #[must_use]
    pub fn public_key(&self) -> Option<&[u8]> {
        self.document.public_key()
    }

    /// `user_data`, if present and not null.
    #[must_use]
    pub fn user_data(&self) -> Option<&[u8]> {
        self.document.user_data()
    }

    /// `nonce`, if present and not null.
    #[must_use]
    pub fn nonce(&self) -> Option<&[u8]> {
        self.document.nonce()
    }
}

/// Verifies AWS Nitro attestation documents against one pinned root.
///
/// ```no_run
/// # #[cfg(feature = "nitro")]
/// # fn demo(document: &[u8], now_unix: u64, nonce: &[u8]) -> Result<(), custody_kms::nitro::AttestationError> {
/// use custody_kms::nitro::{Expectations, TrustAnchor, VerificationTime, Verifier};
///
/// let verifier = Verifier::new(TrustAnchor::aws_nitro_root_g1()?);
/// let expected = Expectations::for_image(&[0x11; 48], &[0x22; 48], &[0x33; 48])
///     .with_nonce(nonce)
///     .with_max_age(60);
/// let verified = verifier.verify(document, &expected, VerificationTime::At(now_unix))?;
/// let enclave_key = verified.public_key();
/// # let _ = enclave_key; Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    anchor: TrustAnchor,
}

impl Verifier {
    /// A verifier of documents whose chain ends in `anchor`
    /// ([`TrustAnchor::aws_nitro_root_g1`] for real enclaves).
    #[must_use]
    pub fn new(anchor: TrustAnchor) -> Self {
        Self { anchor }
    }

    /// The pinned root.
    #[must_use]
    pub fn anchor(&self) -> &TrustAnchor {
        &self.anchor
    }

    /// Decodes and verifies `document` ([`AttestationDocument::parse`],
    /// then [`Verifier::verify_document`]).
    ///
    /// # Errors
    /// The [`AttestationError`] naming the first check that failed.
    pub fn verify(
        &self,
        document: &[u8],
        expectations: &Expectations,
        time: VerificationTime,
    ) -> Result<VerifiedAttestation, AttestationError> {
        self.verify_document(AttestationDocument::parse(document)?, expectations, time)
    }

    /// Verifies a decoded document, in this order:
    ///
    /// 1. the chain `certificate ← cabundle[N..1] ← root` at the
    ///    verification time (`cabundle[0]` must be the pinned root);
    /// 2. the COSE_Sign1 ES384 signature with the leaf's key;
    /// 3. the document's timestamp within the leaf's validity, and with
    ///    [`VerificationTime::At`] not after the verification time (plus
    ///    the clock skew) nor older than the maximum age;
    /// 4. no debug mode (PCR0–2 all zeros) unless allowed; every expected
    ///    PCR; the expected nonce, user data and public key.
    ///
    /// # Errors
    /// The [`AttestationError`] naming the first check that failed.
    pub fn verify_document(
        &self,
        document: AttestationDocument,
        expectations: &Expectations,
        time: VerificationTime,
    ) -> Result<VerifiedAttestation, AttestationError> {
        let document_s = document.timestamp_ms() / 1000;
        let at = match time {
            VerificationTime::At(t) => t,
            VerificationTime::DocumentTime => document_s,
        };

        let leaf = verify_chain(&self.anchor, &document, at)?;
        verify_signature(&leaf.key, &document)?;

        if document_s < leaf.not_before || document_s > leaf.not_after {
            return Err(AttestationError::TimestampOutsideLeaf);
        }
        if let VerificationTime::At(now) = time {
            if document_s > now.saturating_add(expectations.clock_skew_s) {
                return Err(AttestationError::FutureDated);
            }
            if let Some(max_s) = expectations.max_age_s {
                let age_s = now.saturating_sub(document_s);
                if age_s > max_s {
                    return Err(AttestationError::TooOld { age_s, max_s });
                }
            }
        }

        check_policy(&document, expectations)?;
        Ok(VerifiedAttestation {
            document,
            verified_at: at,
        })
    }
}

/// Byte strings equal in constant time (lengths are public).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The caller's expectations of a document whose signature verified.
fn check_policy(
    document: &AttestationDocument,
    expectations: &Expectations,
) -> Result<(), AttestationError> {
    if !expectations.allow_debug {
        for index in 0..=2 {
            if document
                .pcr(index)
                .is_some_and(|pcr| pcr.iter().all(|b| *b == 0))
            {
                return Err(AttestationError::DebugMode(index));
            }
        }
    }
    for (index, expected) in &expectations.pcrs {
        if !document.pcr(*index).is_some_and(|pcr| same(pcr, expected)) {
            return Err(AttestationError::PcrMismatch(*index));
        }
    }
    let bound = |actual: Option<&[u8]>, expected: &Option<Vec<u8>>| match expected {
        None => true,
        Some(expected) => actual.is_some_and(|actual| same(actual, expected)),
    };
    if !bound(document.nonce(), &expectations.nonce) {
        return Err(AttestationError::NonceMismatch);
    }
    if !bound(document.user_data(), &expectations.user_data) {
        return Err(AttestationError::UserDataMismatch);
    }
    if !bound(document.public_key(), &expectations.public_key) {
        return Err(AttestationError::PublicKeyMismatch);
    }
    Ok(())
}
