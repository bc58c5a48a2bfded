//! Synthetic AWS Nitro attestation documents for the `nitro` tests: a
//! certificate chain under a test root (written here in DER by hand, so
//! that any one field of any certificate can be made wrong), and
//! COSE_Sign1 documents signed with the chain's leaf key (encoded with
//! custody-core's CBOR encoder). Keys come from fixed scalars: every run
//! builds the same chain.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of the fixture"
)]

use std::collections::BTreeMap;

use custody_core::cbor::{self, Value};
use p384::ecdsa::signature::Signer as _;
use p384::ecdsa::{DerSignature, Signature, SigningKey};

/// The verification time of the synthetic chain (2025-06-15T15:06:40Z).
pub const T0: u64 = 1_750_000_000;
/// The synthetic document's timestamp: ten seconds before `T0`, in ms.
pub const DOC_MS: u64 = (T0 - 10) * 1000 + 123;

/// DER OBJECT IDENTIFIERs (tag, length, value).
pub mod oid {
    pub const ECDSA_WITH_SHA384: &[u8] =
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    pub const ECDSA_WITH_SHA256: &[u8] =
        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub const ID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const SECP384R1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
    pub const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x13];
    pub const KEY_USAGE: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x0f];
    pub const CERTIFICATE_POLICIES: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x20];
    pub const COMMON_NAME: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
}

/// keyUsage bits (RFC 5280 §4.2.1.3), as bit numbers.
pub const DIGITAL_SIGNATURE: u8 = 0;
pub const KEY_CERT_SIGN: u8 = 5;
pub const CRL_SIGN: u8 = 6;

/// A DER TLV with a short or long definite length.
pub fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(body);
    out
}

pub fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A name of one RDN: CN = `cn` (UTF8String).
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

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
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

/// A P-384 `SubjectPublicKeyInfo` (uncompressed point) under `curve`.
pub fn spki(key: &SigningKey, curve: &[u8]) -> Vec<u8> {
    let point = key.verifying_key().to_sec1_point(false);
    let mut bits = vec![0];
    bits.extend_from_slice(point.as_bytes());
    seq(&[&seq(&[oid::ID_EC_PUBLIC_KEY, curve]), &tlv(0x03, &bits)])
}

/// An extension: `SEQUENCE { extnID, critical (only if TRUE), extnValue }`.
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
/// bits dropped, RFC 5280 / X.690 §11.2.2).
pub fn key_usage(bits: &[u8]) -> Vec<u8> {
    let mut value: u16 = 0;
    for b in bits {
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

/// A P-384 key from a fixed scalar.
pub fn key(seed: u8) -> SigningKey {
    let mut scalar = [seed; 48];
    scalar[0] = 0x01; // below the group order whatever the seed
    SigningKey::from_slice(&scalar).unwrap()
}

/// One certificate to write.
#[derive(Clone)]
pub struct CertSpec {
    pub key: SigningKey,
    pub subject: String,
    /// `None`: the parent's subject (or its own, for the root).
    pub issuer: Option<String>,
    pub not_before: u64,
    pub not_after: u64,
    pub extensions: Vec<Vec<u8>>,
    /// The signatureAlgorithm of the certificate and of its TBS part.
    pub outer_alg: &'static [u8],
    pub inner_alg: &'static [u8],
    /// The curve named in its `SubjectPublicKeyInfo`.
    pub curve: &'static [u8],
    /// Version 1: no version field and no extensions.
    pub v1: bool,
    /// Signs with this key instead of the parent's (a broken link).
    pub signed_by: Option<SigningKey>,
    pub serial: u8,
}

impl CertSpec {
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
#[derive(Clone)]
pub struct Chain {
    pub root: CertSpec,
    pub intermediates: Vec<CertSpec>,
    pub leaf: CertSpec,
}

/// The DER of a built chain.
pub struct BuiltChain {
    pub root: Vec<u8>,
    /// `cabundle`: the root, then the intermediates.
    pub cabundle: Vec<Vec<u8>>,
    pub leaf: Vec<u8>,
}

impl Chain {
    /// AWS's shape: root (no pathLen), regional (pathLen 2), zonal (1),
    /// instance (0), leaf; each valid around `T0` (the leaf for about three
    /// hours, like AWS's).
    pub fn valid() -> Self {
        Self {
            root: CertSpec::ca(
                0x10,
                "test.nitro-enclaves",
                T0 - 5 * 365 * 86_400,
                T0 + 25 * 365 * 86_400,
                None,
            ),
            intermediates: vec![
                CertSpec::ca(
                    0x11,
                    "regional.test.nitro-enclaves",
                    T0 - 10 * 86_400,
                    T0 + 20 * 86_400,
                    Some(2),
                ),
                CertSpec::ca(
                    0x12,
                    "zonal.test.nitro-enclaves",
                    T0 - 2 * 86_400,
                    T0 + 3 * 86_400,
                    Some(1),
                ),
                CertSpec::ca(
                    0x13,
                    "instance.test.nitro-enclaves",
                    T0 - 3600,
                    T0 + 86_400,
                    Some(0),
                ),
            ],
            leaf: CertSpec::leaf(
                0x14,
                "i-test-enc0000.test.aws",
                T0 - 600,
                T0 + 3 * 3600 - 600,
            ),
        }
    }

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

/// A document's fields and envelope, each of which a test may spoil.
#[derive(Clone)]
pub struct Doc {
    pub chain: Chain,
    pub module_id: String,
    pub digest: String,
    pub timestamp_ms: u64,
    pub pcrs: BTreeMap<u8, Vec<u8>>,
    pub public_key: Option<Vec<u8>>,
    pub user_data: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
    pub tagged: bool,
    /// The protected header's `alg`.
    pub alg: i64,
    /// Signs the COSE structure with this key instead of the leaf's.
    pub cose_key: Option<SigningKey>,
}

/// The expected image PCRs of the synthetic document.
pub fn pcr(index: u8) -> Vec<u8> {
    vec![0xa0 | index; 48]
}

impl Doc {
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
    pub fn payload_with(
        &self,
        built: &BuiltChain,
        edit: impl FnOnce(&mut Vec<(Value<'_>, Value<'_>)>),
    ) -> Vec<u8> {
        fn opt(v: &Option<Vec<u8>>) -> Value<'_> {
            v.as_deref().map_or(Value::Null, Value::Bytes)
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
            (Value::Text("public_key"), opt(&self.public_key)),
            (Value::Text("user_data"), opt(&self.user_data)),
            (Value::Text("nonce"), opt(&self.nonce)),
        ];
        edit(&mut entries);
        Value::Map(entries).to_vec()
    }

    pub fn protected(&self) -> Vec<u8> {
        Value::Map(vec![(Value::Unsigned(1), Value::from_i64(self.alg))]).to_vec()
    }

    /// The ES384 signature over the `Sig_structure` with the leaf's key.
    pub fn sign(&self, protected: &[u8], payload: &[u8]) -> Vec<u8> {
        let key = self.cose_key.as_ref().unwrap_or(&self.chain.leaf.key);
        let to_be_signed = custody_kms::nitro::sig_structure(protected, payload);
        let signature: Signature = key.sign(&to_be_signed);
        signature.to_bytes().to_vec()
    }

    /// `[protected, unprotected, payload, signature]`, tagged 18 if asked.
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
    pub fn encode_with(&self, edit: impl FnOnce(&mut Vec<(Value<'_>, Value<'_>)>)) -> Vec<u8> {
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

    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(|_| {})
    }

    /// The root this document's chain ends in, as a trust anchor.
    pub fn anchor(&self) -> custody_kms::nitro::TrustAnchor {
        custody_kms::nitro::TrustAnchor::from_der(&self.chain.root.build(None)).unwrap()
    }
}
