//! The strict decoding of an attestation document: the COSE_Sign1 envelope
//! (RFC 9052 §4.2) and AWS's payload map. Nothing here is trusted yet: the
//! verifier ([`Verifier`](super::Verifier)) checks the chain and the
//! signature of what this decodes.

use std::collections::BTreeMap;

use custody_core::cbor::{self, Limits, Value};

use super::error::AttestationError;

/// The longest document accepted, in bytes. The NSM driver's whole response
/// (`NSM_RESPONSE_MAX_SIZE`, 0x3000 = 12 KiB) carries the document, and
/// AWS's own C sample reads it into a 16 KiB buffer; a real one is about
/// 4.5 KiB.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;

/// The most certificates in `cabundle` (the root included). AWS's chains
/// have four (root, regional, zonal, instance).
pub const MAX_CABUNDLE: usize = 8;

/// The longest certificate (AWS: each DER certificate is 1..=1024 bytes).
pub const MAX_CERTIFICATE_BYTES: usize = 1024;

/// The longest `user_data` and `nonce` (AWS: 0..=512 bytes each).
pub const MAX_USER_DATA_BYTES: usize = 512;

/// The longest `public_key` (AWS: up to 1024 bytes).
pub const MAX_PUBLIC_KEY_BYTES: usize = 1024;

/// The only `digest` AWS documents and this verifier accepts.
pub const DIGEST_SHA384: &str = "SHA384";

/// The COSE_Sign1 tag (RFC 9052 §4.2), allowed on the outermost item only.
const COSE_SIGN1_TAG: u64 = 18;

/// COSE header labels (RFC 9052 §3.1): `alg` and `crit`.
const LABEL_ALG: i64 = 1;
const LABEL_CRIT: i64 = 2;

/// ES384: ECDSA with SHA-384 on P-384 (RFC 9053 §2.1).
pub(crate) const ALG_ES384: i64 = -35;

/// An ES384 signature: `r ‖ s`, 48 bytes each (RFC 9053 §2.1).
pub(crate) const SIGNATURE_LEN: usize = 96;

/// A PCR of a SHA-384 document.
const PCR_LEN: usize = 48;

/// PCR indexes run 0..=31.
const MAX_PCR_INDEX: u64 = 31;

/// CBOR limits for each part: the envelope, its protected header and the
/// payload are small, flat structures (depth 2 at most; a payload with 32
/// PCRs and 8 certificates is about 100 items).
const LIMITS: Limits = Limits {
    max_input: MAX_DOCUMENT_BYTES,
    max_depth: 4,
    max_items: 256,
};

/// A decoded, **not yet verified** AWS Nitro attestation document.
///
/// [`AttestationDocument::parse`] checks the encoding only: strict CBOR,
/// the COSE_Sign1 structure, an ES384 protected header, a 96-byte
/// signature, `digest` `"SHA384"`, every required field present, non-null
/// and of the documented type and size. Whether AWS signed it is for
/// [`Verifier::verify`](super::Verifier::verify) to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationDocument {
    tagged: bool,
    protected: Vec<u8>,
    payload: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
    module_id: String,
    timestamp_ms: u64,
    pcrs: BTreeMap<u8, Vec<u8>>,
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    public_key: Option<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
}

fn cbor_error(part: &'static str) -> impl Fn(cbor::CborError) -> AttestationError {
    move |source| AttestationError::Cbor { part, source }
}

impl AttestationDocument {
    /// Decodes a COSE_Sign1 attestation document (tagged with 18 or not).
    ///
    /// # Errors
    /// The [`AttestationError`] naming the first encoding check that failed:
    /// [`TooLarge`](AttestationError::TooLarge),
    /// [`Cbor`](AttestationError::Cbor),
    /// [`CoseStructure`](AttestationError::CoseStructure),
    /// [`CoseAlgorithm`](AttestationError::CoseAlgorithm),
    /// [`CoseCritical`](AttestationError::CoseCritical),
    /// [`SignatureLength`](AttestationError::SignatureLength), or a payload
    /// check ([`MissingField`](AttestationError::MissingField),
    /// [`NullField`](AttestationError::NullField),
    /// [`FieldType`](AttestationError::FieldType),
    /// [`FieldLength`](AttestationError::FieldLength),
    /// [`UnknownField`](AttestationError::UnknownField),
    /// [`Digest`](AttestationError::Digest),
    /// [`PcrIndex`](AttestationError::PcrIndex),
    /// [`PcrLength`](AttestationError::PcrLength),
    /// [`ChainTooLong`](AttestationError::ChainTooLong)).
    pub fn parse(bytes: &[u8]) -> Result<Self, AttestationError> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(AttestationError::TooLarge {
                len: bytes.len(),
                max: MAX_DOCUMENT_BYTES,
            });
        }
        let (tag, envelope) = cbor::decode_tagged(bytes, &LIMITS, &[COSE_SIGN1_TAG])
            .map_err(cbor_error("COSE_Sign1"))?;
        let Value::Array(parts) = envelope else {
            return Err(AttestationError::CoseStructure("not an array"));
        };
        let [protected, unprotected, payload, signature] = parts.as_slice() else {
            return Err(AttestationError::CoseStructure("not 4 elements"));
        };
        let protected = protected.as_bytes().ok_or(AttestationError::CoseStructure(
            "protected header not a byte string",
        ))?;
        let Value::Map(unprotected) = unprotected else {
            return Err(AttestationError::CoseStructure(
                "unprotected header not a map",
            ));
        };
        let payload = match payload {
            Value::Bytes(p) => *p,
            Value::Null => return Err(AttestationError::CoseStructure("detached payload")),
            _ => return Err(AttestationError::CoseStructure("payload not a byte string")),
        };
        let signature = signature.as_bytes().ok_or(AttestationError::CoseStructure(
            "signature not a byte string",
        ))?;

        check_headers(protected, unprotected)?;
        let signature: [u8; SIGNATURE_LEN] =
            signature
                .try_into()
                .map_err(|_| AttestationError::SignatureLength {
                    len: signature.len(),
                })?;

        let fields = cbor::decode(payload, &LIMITS).map_err(cbor_error("payload"))?;
        let fields = Fields::read(&fields)?;
        Ok(Self {
            tagged: tag.is_some(),
            protected: protected.to_vec(),
            payload: payload.to_vec(),
            signature,
            module_id: fields.module_id,
            timestamp_ms: fields.timestamp_ms,
            pcrs: fields.pcrs,
            certificate: fields.certificate,
            cabundle: fields.cabundle,
            public_key: fields.public_key,
            user_data: fields.user_data,
            nonce: fields.nonce,
        })
    }

    /// Whether the envelope carried the COSE_Sign1 tag (18).
    #[must_use]
    pub fn is_tagged(&self) -> bool {
        self.tagged
    }

    /// The protected header, as encoded (what the signature covers).
    #[must_use]
    pub fn protected_header(&self) -> &[u8] {
        &self.protected
    }

    /// The payload, as encoded (what the signature covers).
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The ES384 signature, `r ‖ s`.
    #[must_use]
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// `module_id`: the enclave's id (non-empty).
    #[must_use]
    pub fn module_id(&self) -> &str {
        &self.module_id
    }

    /// `digest`: always `"SHA384"` (anything else is refused).
    #[must_use]
    pub fn digest(&self) -> &'static str {
        DIGEST_SHA384
    }

    /// `timestamp`: when the NSM made the document, in milliseconds since
    /// the UNIX epoch.
    #[must_use]
    pub fn timestamp_ms(&self) -> u64 {
        self.timestamp_ms
    }

    /// `pcrs`: every PCR in the document, by index (0..=31), 48 bytes each.
    #[must_use]
    pub fn pcrs(&self) -> &BTreeMap<u8, Vec<u8>> {
        &self.pcrs
    }

    /// PCR `index`, if the document has it.
    #[must_use]
    pub fn pcr(&self, index: u8) -> Option<&[u8]> {
        self.pcrs.get(&index).map(Vec::as_slice)
    }

    /// `certificate`: the leaf certificate (DER), whose key signs the
    /// document.
    #[must_use]
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// `cabundle`: the CA certificates (DER), root first.
    #[must_use]
    pub fn cabundle(&self) -> &[Vec<u8>] {
        &self.cabundle
    }

    /// `public_key`, if present and not null.
    #[must_use]
    pub fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }

    /// `user_data`, if present and not null (possibly empty).
    #[must_use]
    pub fn user_data(&self) -> Option<&[u8]> {
        self.user_data.as_deref()
    }

    /// `nonce`, if present and not null (possibly empty).
    #[must_use]
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_deref()
    }
}

/// The protected header must be a map with `alg` ES384 and no `crit`; the
/// unprotected header must name neither (RFC 9052 §3: a label appears in
/// one bucket only, and `crit` is protected only).
fn check_headers(
    protected: &[u8],
    unprotected: &[(Value<'_>, Value<'_>)],
) -> Result<(), AttestationError> {
    // An empty protected header (a zero-length string) is an empty map
    // (RFC 9052 §3): it has no algorithm.
    if protected.is_empty() {
        return Err(AttestationError::CoseAlgorithm);
    }
    let header = cbor::decode(protected, &LIMITS).map_err(cbor_error("protected header"))?;
    if header.as_map().is_none() {
        return Err(AttestationError::CoseStructure(
            "protected header not a map",
        ));
    }
    if header.get_int_key(LABEL_CRIT).is_some() {
        return Err(AttestationError::CoseCritical);
    }
    if header.get_int_key(LABEL_ALG).and_then(Value::as_i64) != Some(ALG_ES384) {
        return Err(AttestationError::CoseAlgorithm);
    }
    let unprotected_has = |label: i64| {
        let label = Value::from_i64(label);
        unprotected.iter().any(|(k, _)| *k == label)
    };
    if unprotected_has(LABEL_CRIT) {
        return Err(AttestationError::CoseCritical);
    }
    if unprotected_has(LABEL_ALG) {
        return Err(AttestationError::CoseAlgorithm);
    }
    Ok(())
}

/// The payload's fields, checked for type and size.
struct Fields {
    module_id: String,
    timestamp_ms: u64,
    pcrs: BTreeMap<u8, Vec<u8>>,
    certificate: Vec<u8>,
    cabundle: Vec<Vec<u8>>,
    public_key: Option<Vec<u8>>,
    user_data: Option<Vec<u8>>,
    nonce: Option<Vec<u8>>,
}

/// A byte string of `min..=max` bytes, for `field`.
fn sized_bytes(
    value: &Value<'_>,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, AttestationError> {
    let bytes = value.as_bytes().ok_or(AttestationError::FieldType(field))?;
    if !(min..=max).contains(&bytes.len()) {
        return Err(AttestationError::FieldLength {
            field,
            len: bytes.len(),
            min,
            max,
        });
    }
    Ok(bytes.to_vec())
}

/// A required field: present and not null.
fn required<'v, 'a>(
    value: Option<&'v Value<'a>>,
    field: &'static str,
) -> Result<&'v Value<'a>, AttestationError> {
    match value {
        None => Err(AttestationError::MissingField(field)),
        Some(Value::Null) => Err(AttestationError::NullField(field)),
        Some(v) => Ok(v),
    }
}

/// An optional byte-string field: absent or null is `None`.
fn optional_bytes(
    value: Option<&Value<'_>>,
    field: &'static str,
    max: usize,
) -> Result<Option<Vec<u8>>, AttestationError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => sized_bytes(v, field, 0, max).map(Some),
    }
}

impl Fields {
    fn read(payload: &Value<'_>) -> Result<Self, AttestationError> {
        let Value::Map(entries) = payload else {
            return Err(AttestationError::CoseStructure("payload not a map"));
        };
        // Each of AWS's nine fields at most once (the decoder refuses
        // duplicate keys), nothing else.
        let mut slots: [Option<&Value<'_>>; 9] = [None; 9];
        for (key, value) in entries {
            let slot = match key.as_text() {
                Some("module_id") => 0,
                Some("digest") => 1,
                Some("timestamp") => 2,
                Some("pcrs") => 3,
                Some("certificate") => 4,
                Some("cabundle") => 5,
                Some("public_key") => 6,
                Some("user_data") => 7,
                Some("nonce") => 8,
                _ => return Err(AttestationError::UnknownField),
            };
            if let Some(s) = slots.get_mut(slot) {
                *s = Some(value);
            }
        }
        let [
            module_id,
            digest,
            timestamp,
            pcrs,
            certificate,
            cabundle,
            public_key,
            user_data,
            nonce,
        ] = slots;

        let module_id = required(module_id, "module_id")?
            .as_text()
            .ok_or(AttestationError::FieldType("module_id"))?;
        if module_id.is_empty() {
            return Err(AttestationError::FieldLength {
                field: "module_id",
                len: 0,
                min: 1,
                max: MAX_DOCUMENT_BYTES,
            });
        }
        let digest = required(digest, "digest")?
            .as_text()
            .ok_or(AttestationError::FieldType("digest"))?;
        if digest != DIGEST_SHA384 {
            return Err(AttestationError::Digest);
        }
        let timestamp_ms = required(timestamp, "timestamp")?
            .as_u64()
            .ok_or(AttestationError::FieldType("timestamp"))?;
        let pcrs = read_pcrs(required(pcrs, "pcrs")?)?;
        let certificate = sized_bytes(
            required(certificate, "certificate")?,
            "certificate",
            1,
            MAX_CERTIFICATE_BYTES,
        )?;
        let cabundle = required(cabundle, "cabundle")?
            .as_array()
            .ok_or(AttestationError::FieldType("cabundle"))?;
        if cabundle.is_empty() {
            return Err(AttestationError::FieldLength {
                field: "cabundle",
                len: 0,
                min: 1,
                max: MAX_CABUNDLE,
            });
        }
        if cabundle.len() > MAX_CABUNDLE {
            return Err(AttestationError::ChainTooLong {
                len: cabundle.len(),
                max: MAX_CABUNDLE,
            });
        }
        let cabundle = cabundle
            .iter()
            .map(|c| sized_bytes(c, "cabundle", 1, MAX_CERTIFICATE_BYTES))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            module_id: module_id.to_owned(),
            timestamp_ms,
            pcrs,
            certificate,
            cabundle,
            public_key: optional_bytes(public_key, "public_key", MAX_PUBLIC_KEY_BYTES)?,
            user_data: optional_bytes(user_data, "user_data", MAX_USER_DATA_BYTES)?,
            nonce: optional_bytes(nonce, "nonce", MAX_USER_DATA_BYTES)?,
        })
    }
}

/// `pcrs`: a non-empty map from indexes 0..=31 to 48-byte values.
fn read_pcrs(value: &Value<'_>) -> Result<BTreeMap<u8, Vec<u8>>, AttestationError> {
    let entries = value.as_map().ok_or(AttestationError::FieldType("pcrs"))?;
    if entries.is_empty() {
        return Err(AttestationError::FieldLength {
            field: "pcrs",
            len: 0,
            min: 1,
            max: 32,
        });
    }
    let mut pcrs = BTreeMap::new();
    for (index, pcr) in entries {
        let index = index
            .as_u64()
            .filter(|i| *i <= MAX_PCR_INDEX)
            .and_then(|i| u8::try_from(i).ok())
            .ok_or(AttestationError::PcrIndex)?;
        let pcr = pcr.as_bytes().ok_or(AttestationError::FieldType("pcrs"))?;
        if pcr.len() != PCR_LEN {
            return Err(AttestationError::PcrLength {
                index,
                len: pcr.len(),
            });
        }
        pcrs.insert(index, pcr.to_vec());
    }
    Ok(pcrs)
}
