//! A fake Nitro Security Module and the synthetic certificate chains under
//! it (feature `nsm-fake`): **for tests and local ceremonies only**.
//!
//! [`FakeNsm`] answers [`Nsm::attest`] with a real COSE_Sign1 document
//! (ES384, AWS's payload fields) signed by the leaf of a [`Chain`] under a
//! test root, so that the very [`Verifier`](super::Verifier) that checks
//! AWS's documents checks these, with [`FakeNsm::anchor`] as its
//! [`TrustAnchor`]. A verifier pinned to AWS's root
//! ([`TrustAnchor::aws_nitro_root_g1`]) refuses every one of them
//! ([`AttestationError::UntrustedRoot`]).
//!
//! The chain is written in DER by hand so that a test can make any one
//! field of any certificate wrong ([`CertSpec`]); every key comes from a
//! fixed scalar ([`key`]), so every run builds the same chain. These keys
//! are public: nothing they sign proves anything outside a test.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use custody_core::cbor::{self, Value};
use p384::ecdsa::signature::Signer as _;
use p384::ecdsa::{DerSignature, Signature, SigningKey};

use super::nsm::{AttestRequest, Nsm, NsmError, PcrDescription};
use super::{AttestationError, MAX_PUBLIC_KEY_BYTES, MAX_USER_DATA_BYTES, TrustAnchor};

/// The verification time of the synthetic chain (2025-06-15T15:06:40Z).
pub const T0: u64 = 1_750_000_000;
/// The synthetic document's timestamp: ten seconds before `T0`, in ms.
pub const DOC_MS: u64 = (T0 - 10) * 1000 + 123;

/// DER OBJECT IDENTIFIERs (tag, length, value).
pub mod oid {
    /// ecdsa-with-SHA384 (RFC 5758).
    pub const ECDSA_WITH_SHA384: &[u8] =
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    /// ecdsa-with-SHA256 (RFC 5758).
    pub const ECDSA_WITH_SHA256: &[u8] =
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    /// id-ecPublicKey (RFC 5480).
    pub const ID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// secp384r1 (RFC 5480).
    pub const SECP384R1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    /// prime256v1 (RFC 5480).
    pub const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    /// id-ce-basicConstraints (RFC 5280).
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x13];
    /// id-ce-keyUsage (RFC 5280).
    pub const KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0f];
    /// id-ce-certificatePolicies (RFC 5280).
    pub const CERTIFICATE_POLICIES: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x20];
    /// id-at-commonName (X.520).
    pub const COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
}

/// keyUsage bit digitalSignature (RFC 5280 §4.2.1.3).
pub const DIGITAL_SIGNATURE: u8 = 0;
/// keyUsage bit keyCertSign.
pub const KEY_CERT_SIGN: u8 = 5;
/// keyUsage bit cRLSign.
pub const CRL_SIGN: u8 = 6;

/// A DER TLV: `tag`, the shortest definite length, `body`.
#[must_use]
pub fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        out.push(0x80 | (bytes.len() - first) as u8);
        out.extend_from_slice(&bytes[first..]);
    }
    out.extend_from_slice(body);
    out
}

/// A DER SEQUENCE of already encoded parts.
#[must_use]
pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A name of one RDN: CN = `cn` (UTF8String).
#[must_use]
pub fn name(cn: &str) -> Vec<u8> {
    let atv = seq(&[oid::COMMON_NAME, &tlv(0x0c, cn.as_bytes())]);
    seq(&[&tlv(0x31, &atv)])
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A certificate time: UTCTime through 2049, GeneralizedTime from 2050
/// (RFC 5280 §4.1.2.5).
#[must_use]
pub fn time(unix: u64) -> Vec<u8> {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let (y, m, d) = civil(days);
    let (hh, mm, ss) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if y < 2050 {
        let s = format!("{:02}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z", y % 100);
        tlv(0x17, s.as_bytes())
    } else {
        let s = format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}Z");
        tlv(0x18, s.as_bytes())
    }
}

/// A P-384 `SubjectPublicKeyInfo` (uncompressed point) naming `curve`.
#[must_use]
pub fn spki(key: &SigningKey, curve: &[u8]) -> Vec<u8> {
    let point = key.verifying_key().to_sec1_point(false);
    let mut bits = vec![0];
    bits.extend_from_slice(point.as_bytes());
    seq(&[&seq(&[oid::ID_EC_PUBLIC_KEY, curve]), &tlv(0x03, &bits)])
}

/// An extension: `SEQUENCE { extnID, critical (only if TRUE), extnValue }`.
#[must_use]
pub fn extension(id: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = vec![id];
    let critical_der = [0x01, 0x01, 0xff];
    if critical {
        parts.push(&critical_der);
    }
    let octets = tlv(0x04, value);
    parts.push(&octets);
    seq(&parts)
}

/// basicConstraints' value: `SEQUENCE { cA (only if TRUE), pathLen? }`.
#[must_use]
pub fn basic_constraints(ca: bool, path_len: Option<u8>) -> Vec<u8> {
    let mut body = Vec::new();
    if ca {
        body.extend_from_slice(&[0x01, 0x01, 0xff]);
    }
    if let Some(n) = path_len {
        body.extend_from_slice(&tlv(0x02, &[n]));
    }
    tlv(0x30, &body)
}

/// keyUsage's value: a DER BIT STRING of the named bits (trailing zero
/// bits dropped, RFC 5280 / X.690 §11.2.2). Bits above 15 are ignored.
#[must_use]
pub fn key_usage(bits: &[u8]) -> Vec<u8> {
    let mut value: u16 = 0;
    for b in bits.iter().filter(|b| **b < 16) {
        value |= 0x8000 >> b;
    }
    let bytes = value.to_be_bytes();
    let len = if bytes[1] != 0 { 2 } else { 1 };
    let last = bytes[len - 1];
    let unused = if last == 0 {
        0
    } else {
        last.trailing_zeros() as u8
    };
    let mut body = vec![unused];
    body.extend_from_slice(&bytes[..len]);
    tlv(0x03, &body)
}

/// A P-384 key from a fixed scalar (`01 ‖ seed × 47`): public, for tests.
#[must_use]
#[expect(
    clippy::expect_used,
    reason = "a 48-byte scalar starting 0x01 is non-zero and below P-384's order (0xffff...), so it is always a valid key"
)]
pub fn key(seed: u8) -> SigningKey {
    let mut scalar = [seed; 48];
    scalar[0] = 0x01;
    SigningKey::from_slice(&scalar).expect("a scalar in [1, n) is a key")
}

/// One certificate to write; every field may be set wrong on purpose.
#[derive(Clone)]
pub struct CertSpec {
    /// The certificate's own key.
    pub key: SigningKey,
    /// The subject's common name.
    pub subject: String,
    /// The issuer's common name; `None`: the parent's subject (or its own,
    /// for the root).
    pub issuer: Option<String>,
    /// notBefore, Unix seconds.
    pub not_before: u64,
    /// notAfter, Unix seconds.
    pub not_after: u64,
    /// The DER extensions ([`extension`]).
    pub extensions: Vec<Vec<u8>>,
    /// The signatureAlgorithm of the certificate.
    pub outer_alg: &'static [u8],
    /// The signature algorithm inside its TBS part.
    pub inner_alg: &'static [u8],
    /// The curve named in its `SubjectPublicKeyInfo`.
    pub curve: &'static [u8],
    /// Version 1: no version field and no extensions.
    pub v1: bool,
    /// Signs with this key instead of the parent's (a broken link).
    pub signed_by: Option<SigningKey>,
    /// The serial number (its low 7 bits).
    pub serial: u8,
}

impl fmt::Debug for CertSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertSpec")
            .field("subject", &self.subject)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertSpec {
    /// A CA certificate as AWS writes them: critical basicConstraints (cA,
    /// `path_len`), critical keyUsage (digitalSignature, keyCertSign,
    /// cRLSign), ecdsa-with-SHA384, a P-384 key from `seed`.
    #[must_use]
    pub fn ca(seed: u8, cn: &str, not_before: u64, not_after: u64, path_len: Option<u8>) -> Self {
        Self {
            key: key(seed),
            subject: cn.to_owned(),
            issuer: None,
            not_before,
            not_after,
            extensions: vec![
                extension(
                    oid::BASIC_CONSTRAINTS,
                    true,
                    &basic_constraints(true, path_len),
                ),
                extension(
                    oid::KEY_USAGE,
                    true,
                    &key_usage(&[DIGITAL_SIGNATURE, KEY_CERT_SIGN, CRL_SIGN]),
                ),
            ],
            outer_alg: oid::ECDSA_WITH_SHA384,
            inner_alg: oid::ECDSA_WITH_SHA384,
            curve: oid::SECP384R1,
            v1: false,
            signed_by: None,
            serial: seed,
        }
    }

    /// A leaf certificate: basicConstraints cA false, keyUsage
    /// digitalSignature and nonRepudiation.
    #[must_use]
    pub fn leaf(seed: u8, cn: &str, not_before: u64, not_after: u64) -> Self {
        let mut spec = Self::ca(seed, cn, not_before, not_after, None);
        spec.extensions = vec![
            extension(
                oid::BASIC_CONSTRAINTS,
                true,
                &basic_constraints(false, None),
            ),
            extension(oid::KEY_USAGE, false, &key_usage(&[DIGITAL_SIGNATURE, 1])),
        ];
        spec
    }

    /// This certificate's DER, signed by `parent` (subject, key) or, for
    /// the root, by itself.
    #[must_use]
    pub fn build(&self, parent: Option<(&str, &SigningKey)>) -> Vec<u8> {
        let issuer = self
            .issuer
            .clone()
            .unwrap_or_else(|| parent.map_or(self.subject.clone(), |(s, _)| s.to_owned()));
        let signer = self
            .signed_by
            .as_ref()
            .unwrap_or_else(|| parent.map_or(&self.key, |(_, k)| k));
        let mut tbs_parts: Vec<Vec<u8>> = Vec::new();
        if !self.v1 {
            tbs_parts.push(tlv(0xa0, &tlv(0x02, &[2])));
        }
        tbs_parts.push(tlv(0x02, &[self.serial & 0x7f]));
        tbs_parts.push(seq(&[self.inner_alg]));
        tbs_parts.push(name(&issuer));
        tbs_parts.push(seq(&[&time(self.not_before), &time(self.not_after)]));
        tbs_parts.push(name(&self.subject));
        tbs_parts.push(spki(&self.key, self.curve));
        if !self.v1 && !self.extensions.is_empty() {
            tbs_parts.push(tlv(0xa3, &tlv(0x30, &self.extensions.concat())));
        }
        let tbs = tlv(0x30, &tbs_parts.concat());
        let signature: DerSignature = signer.sign(&tbs);
        let mut bits = vec![0];
        bits.extend_from_slice(signature.as_bytes());
        seq(&[&tbs, &seq(&[self.outer_alg]), &tlv(0x03, &bits)])
    }
}

/// A chain: root, intermediates (top down), leaf.
#[derive(Clone, Debug)]
pub struct Chain {
    /// The self-signed root.
    pub root: CertSpec,
    /// The CAs below it, top down.
    pub intermediates: Vec<CertSpec>,
    /// The leaf whose key signs documents.
    pub leaf: CertSpec,
}

/// The DER of a built chain.
#[derive(Clone, Debug)]
pub struct BuiltChain {
    /// The root certificate.
    pub root: Vec<u8>,
    /// `cabundle`: the root, then the intermediates.
    pub cabundle: Vec<Vec<u8>>,
    /// The leaf certificate.
    pub leaf: Vec<u8>,
}

impl Chain {
    /// AWS's shape: root (no pathLen), regional (pathLen 2), zonal (1),
    /// instance (0), leaf; each valid around [`T0`] (the leaf for about
    /// three hours, like AWS's).
    #[must_use]
    pub fn valid() -> Self {
        Self::valid_at(T0)
    }

    /// The same shape, valid around `t0` (Unix seconds) instead.
    #[must_use]
    pub fn valid_at(t0: u64) -> Self {
        Self {
            root: CertSpec::ca(
                0x10,
                "test.nitro-enclaves",
                t0.saturating_sub(5 * 365 * 86_400),
                t0 + 25 * 365 * 86_400,
                None,
            ),
            intermediates: vec![
                CertSpec::ca(
                    0x11,
                    "regional.test.nitro-enclaves",
                    t0.saturating_sub(10 * 86_400),
                    t0 + 20 * 86_400,
                    Some(2),
                ),
                CertSpec::ca(
                    0x12,
                    "zonal.test.nitro-enclaves",
                    t0.saturating_sub(2 * 86_400),
                    t0 + 3 * 86_400,
                    Some(1),
                ),
                CertSpec::ca(
                    0x13,
                    "instance.test.nitro-enclaves",
                    t0.saturating_sub(3600),
                    t0 + 86_400,
                    Some(0),
                ),
            ],
            leaf: CertSpec::leaf(
                0x14,
                "i-test-enc0000.test.aws",
                t0.saturating_sub(600),
                t0 + 3 * 3600 - 600,
            ),
        }
    }

    /// Every certificate's DER.
    #[must_use]
    pub fn build(&self) -> BuiltChain {
        let root = self.root.build(None);
        let mut cabundle = vec![root.clone()];
        let mut parent = (&self.root.subject, &self.root.key);
        for spec in &self.intermediates {
            cabundle.push(spec.build(Some((parent.0, parent.1))));
            parent = (&spec.subject, &spec.key);
        }
        let leaf = self.leaf.build(Some((parent.0, parent.1)));
        BuiltChain {
            root,
            cabundle,
            leaf,
        }
    }
}

/// The payload map's entries being built, which a test may edit.
pub type PayloadEntries<'v> = Vec<(Value<'v>, Value<'v>)>;

/// A document's fields and envelope, each of which a test may spoil.
#[derive(Clone, Debug)]
pub struct Doc {
    /// The chain whose leaf signs it.
    pub chain: Chain,
    /// `module_id`.
    pub module_id: String,
    /// `digest`.
    pub digest: String,
    /// `timestamp`, in milliseconds.
    pub timestamp_ms: u64,
    /// `pcrs`.
    pub pcrs: BTreeMap<u8, Vec<u8>>,
    /// `public_key`.
    pub public_key: Option<Vec<u8>>,
    /// `user_data`.
    pub user_data: Option<Vec<u8>>,
    /// `nonce`.
    pub nonce: Option<Vec<u8>>,
    /// Tagged 18 (COSE_Sign1) or not.
    pub tagged: bool,
    /// The protected header's `alg`.
    pub alg: i64,
    /// Signs the COSE structure with this key instead of the leaf's.
    pub cose_key: Option<SigningKey>,
}

/// The expected image PCRs of the synthetic document: 48 bytes of
/// `0xa0 | index`.
#[must_use]
pub fn pcr(index: u8) -> Vec<u8> {
    vec![0xa0 | index; 48]
}

impl Doc {
    /// A document that verifies at [`T0`] under [`Chain::valid`]: PCR0–4
    /// and PCR8 set ([`pcr`]), the others zero; a public key, user data
    /// and a nonce.
    #[must_use]
    pub fn valid() -> Self {
        let pcrs = (0..16u8)
            .map(|i| (i, if i < 5 || i == 8 { pcr(i) } else { vec![0; 48] }))
            .collect();
        Self {
            chain: Chain::valid(),
            module_id: "i-test-enc0000".to_owned(),
            digest: "SHA384".to_owned(),
            timestamp_ms: DOC_MS,
            pcrs,
            public_key: Some(b"enclave session key".to_vec()),
            user_data: Some(vec![0x55; 32]),
            nonce: Some(vec![0x4e; 20]),
            tagged: false,
            alg: -35,
            cose_key: None,
        }
    }

    /// The payload map's entries, in AWS's order; `edit` may change them.
    #[must_use]
    pub fn payload_with(
        &self,
        built: &BuiltChain,
        edit: impl FnOnce(&mut PayloadEntries<'_>),
    ) -> Vec<u8> {
        fn opt(v: Option<&Vec<u8>>) -> Value<'_> {
            v.map_or(Value::Null, |v| Value::Bytes(v))
        }
        let pcrs = self
            .pcrs
            .iter()
            .map(|(i, v)| (Value::Unsigned(u64::from(*i)), Value::Bytes(v)))
            .collect();
        let mut entries = vec![
            (Value::Text("module_id"), Value::Text(&self.module_id)),
            (Value::Text("digest"), Value::Text(&self.digest)),
            (Value::Text("timestamp"), Value::Unsigned(self.timestamp_ms)),
            (Value::Text("pcrs"), Value::Map(pcrs)),
            (Value::Text("certificate"), Value::Bytes(&built.leaf)),
            (
                Value::Text("cabundle"),
                Value::Array(built.cabundle.iter().map(|c| Value::Bytes(c)).collect()),
            ),
            (Value::Text("public_key"), opt(self.public_key.as_ref())),
            (Value::Text("user_data"), opt(self.user_data.as_ref())),
            (Value::Text("nonce"), opt(self.nonce.as_ref())),
        ];
        edit(&mut entries);
        Value::Map(entries).to_vec()
    }

    /// The protected header: `{1: alg}`.
    #[must_use]
    pub fn protected(&self) -> Vec<u8> {
        Value::Map(vec![(Value::Unsigned(1), Value::from_i64(self.alg))]).to_vec()
    }

    /// The ES384 signature over the `Sig_structure` with the leaf's key.
    #[must_use]
    pub fn sign(&self, protected: &[u8], payload: &[u8]) -> Vec<u8> {
        let key = self.cose_key.as_ref().unwrap_or(&self.chain.leaf.key);
        let to_be_signed = super::sig_structure(protected, payload);
        let signature: Signature = key.sign(&to_be_signed);
        signature.to_bytes().to_vec()
    }

    /// `[protected, unprotected, payload, signature]`, tagged 18 if asked.
    #[must_use]
    pub fn envelope(
        tagged: bool,
        protected: &[u8],
        unprotected: Value<'_>,
        payload: &[u8],
        signature: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::new();
        if tagged {
            cbor::encode_tag(18, &mut out);
        }
        Value::Array(vec![
            Value::Bytes(protected),
            unprotected,
            Value::Bytes(payload),
            Value::Bytes(signature),
        ])
        .encode(&mut out);
        out
    }

    /// The document with its payload edited by `edit`, correctly signed.
    #[must_use]
    pub fn encode_with(&self, edit: impl FnOnce(&mut PayloadEntries<'_>)) -> Vec<u8> {
        let built = self.chain.build();
        let payload = self.payload_with(&built, edit);
        let protected = self.protected();
        let signature = self.sign(&protected, &payload);
        Self::envelope(
            self.tagged,
            &protected,
            Value::Map(vec![]),
            &payload,
            &signature,
        )
    }

    /// The document, correctly signed.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(|_| {})
    }

    /// The root this document's chain ends in, as a trust anchor.
    ///
    /// # Errors
    /// [`AttestationError`] if a test spoiled the root so that it is no
    /// longer a valid anchor.
    pub fn anchor(&self) -> Result<TrustAnchor, AttestationError> {
        TrustAnchor::from_der(&self.chain.root.build(None))
    }
}

/// A fake Nitro Security Module: [`Nsm::attest`] signs a [`Doc`] (the
/// template's chain, module id and PCRs; the request's public key, user
/// data and nonce; the fake's current time) under a test root.
///
/// Its clock is set by the caller ([`FakeNsm::set_time_ms`]), never read
/// from the system. The real NSM's input limits apply (user data and
/// nonce at most 512 bytes, public key at most 1024). `Debug` shows the
/// module id only.
pub struct FakeNsm {
    template: Doc,
    time_ms: Mutex<u64>,
}

impl FakeNsm {
    /// A fake whose documents are [`Doc::valid`]'s (the chain valid around
    /// [`T0`], the document time [`DOC_MS`]).
    #[must_use]
    pub fn new() -> Self {
        Self::with_template(Doc::valid())
    }

    /// A fake signing documents shaped like `template` (its chain, module
    /// id, digest, PCRs, envelope), at the template's timestamp until
    /// [`FakeNsm::set_time_ms`].
    #[must_use]
    pub fn with_template(template: Doc) -> Self {
        let time_ms = Mutex::new(template.timestamp_ms);
        Self { template, time_ms }
    }

    /// Sets the timestamp of the documents it makes next.
    pub fn set_time_ms(&self, ms: u64) {
        *self
            .time_ms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ms;
    }

    /// The root of its chain: the [`TrustAnchor`] a test's verifier pins.
    ///
    /// # Errors
    /// [`AttestationError`] if the template's root is not a valid anchor.
    pub fn anchor(&self) -> Result<TrustAnchor, AttestationError> {
        self.template.anchor()
    }

    /// The template its documents are made from.
    #[must_use]
    pub fn template(&self) -> &Doc {
        &self.template
    }
}

impl Default for FakeNsm {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FakeNsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeNsm")
            .field("module_id", &self.template.module_id)
            .finish_non_exhaustive()
    }
}

impl Nsm for FakeNsm {
    fn attest(&self, request: &AttestRequest<'_>) -> Result<Vec<u8>, NsmError> {
        request.check()?;
        let mut doc = self.template.clone();
        doc.timestamp_ms = *self
            .time_ms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        doc.public_key = request.public_key.map(<[u8]>::to_vec);
        doc.user_data = request.user_data.map(<[u8]>::to_vec);
        doc.nonce = request.nonce.map(<[u8]>::to_vec);
        Ok(doc.encode())
    }

    fn describe_pcr(&self, index: u16) -> Result<PcrDescription, NsmError> {
        let value = u8::try_from(index)
            .ok()
            .and_then(|i| self.template.pcrs.get(&i))
            .ok_or(NsmError::InvalidIndex(index))?;
        Ok(PcrDescription {
            // PCR0-15 are locked at boot on a real enclave.
            locked: index < 16,
            value: value.clone(),
        })
    }
}

// The limits the fake enforces are the verifier's.
const _: () = assert!(MAX_USER_DATA_BYTES == 512 && MAX_PUBLIC_KEY_BYTES == 1024);
