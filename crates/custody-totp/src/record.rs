//! The state-store records of custody-totp (format v1, see `SPEC.md`).
//!
//! | key | value |
//! |---|---|
//! | `totp/v1/scheme` | the wallet scheme the index was built with |
//! | `totp/v1/node/<h>` | the enrolment of the wallet whose node is `P` |
//! | `totp/v1/guard/<h>` | replay counter and lockout of that enrolment |
//! | `totp/v1/under/<h>` | how many enrolled nodes lie strictly below `P` |
//! | `totp/v1/key/<k>` | the enrolment of the non-HD key `K` |
//! | `totp/v1/key-guard/<k>` | replay counter and lockout of that enrolment |
//!
//! `<h>` is the lower-case hex SHA-256 of the path `P` written as
//! [`DerivationPath`]'s `Display` does (`m/44'/60'/…`); `<k>` is the
//! lower-case hex SHA-256 of the 33-byte compressed SEC 1 encoding of the
//! public key `K`. Values are JSON objects with a `v` (format version)
//! field; decoding is strict (unknown fields, a wrong version or
//! out-of-range values are [`custody_core::Error::MalformedRecord`]). No
//! value holds a secret: the TOTP secret is inside an envelope sealed under
//! the KEK.

use custody_core::{
    AnyPublicKey, DerivationPath, EncryptionContext, Envelope, PublicKey, WalletScheme,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Algorithm, Digits, Error, MAX_WALLET_NAME_BYTES, Period, Subject, TotpParams};

/// The format version of every record here.
const V1: u32 = 1;
/// The key of the scheme record.
pub(crate) const SCHEME_KEY: &str = "totp/v1/scheme";

fn malformed(what: &'static str) -> Error {
    Error::Core(custody_core::Error::MalformedRecord(what))
}

fn path_hash(path: &DerivationPath) -> String {
    hex::encode(Sha256::digest(path.to_string().as_bytes()))
}

fn public_key_hash(key: &PublicKey) -> String {
    hex::encode(Sha256::digest(key.to_compressed()))
}

/// The key of the enrolment record of the wallet whose node is `node`.
pub(crate) fn node_key(node: &DerivationPath) -> String {
    format!("totp/v1/node/{}", path_hash(node))
}

/// The key of the guard (replay counter, lockout) of the enrolment at `node`.
pub(crate) fn guard_key(node: &DerivationPath) -> String {
    format!("totp/v1/guard/{}", path_hash(node))
}

/// The key of the counter of enrolled nodes strictly below `path`.
pub(crate) fn under_key(path: &DerivationPath) -> String {
    format!("totp/v1/under/{}", path_hash(path))
}

/// The key of the enrolment record of the non-HD key `key`.
pub(crate) fn key_record_key(key: &PublicKey) -> String {
    format!("totp/v1/key/{}", public_key_hash(key))
}

/// The key of the guard (replay counter, lockout) of the enrolment of `key`.
pub(crate) fn key_guard_key(key: &PublicKey) -> String {
    format!("totp/v1/key-guard/{}", public_key_hash(key))
}

/// SHA-256 over a key's algorithm name, a zero byte and its public key
/// bytes ([`AnyPublicKey::to_bytes`]), hex: names a key of another
/// algorithm than secp256k1 in the state store (a P-256 key's compressed
/// encoding has the shape of a secp256k1 key's, so the algorithm is part
/// of the name).
fn other_key_hash(key: &AnyPublicKey) -> String {
    let mut h = Sha256::new();
    h.update(key.algorithm().as_str().as_bytes());
    h.update([0]);
    h.update(key.to_bytes());
    hex::encode(h.finalize())
}

/// The keys of the enrolment record and of the guard of `subject`.
pub(crate) fn subject_keys(subject: &Subject) -> (String, String) {
    match subject {
        Subject::Node(node) => (node_key(node), guard_key(node)),
        Subject::Key(key) => (key_record_key(key), key_guard_key(key)),
        Subject::OtherKey(key) => {
            let h = other_key_hash(key);
            (
                format!("totp/v1/other-key/{h}"),
                format!("totp/v1/other-key-guard/{h}"),
            )
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemeJson {
    v: u32,
    scheme: String,
}

/// Encodes the scheme record.
pub(crate) fn encode_scheme(scheme: WalletScheme) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(&SchemeJson {
        v: V1,
        scheme: scheme.as_str().to_owned(),
    })
    .map_err(|_| malformed("totp scheme record could not be encoded"))
}

/// Decodes the scheme record.
pub(crate) fn decode_scheme(bytes: &[u8]) -> Result<WalletScheme, Error> {
    let json: SchemeJson =
        serde_json::from_slice(bytes).map_err(|_| malformed("totp scheme record"))?;
    if json.v != V1 {
        return Err(malformed("totp scheme record: unsupported version"));
    }
    json.scheme
        .parse()
        .map_err(|_| malformed("totp scheme record: unknown scheme"))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CounterJson {
    v: u32,
    count: u64,
}

/// Encodes an ancestor counter.
pub(crate) fn encode_counter(count: u64) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(&CounterJson { v: V1, count })
        .map_err(|_| malformed("totp counter record could not be encoded"))
}

/// Decodes an ancestor counter.
pub(crate) fn decode_counter(bytes: &[u8]) -> Result<u64, Error> {
    let json: CounterJson =
        serde_json::from_slice(bytes).map_err(|_| malformed("totp counter record"))?;
    if json.v != V1 {
        return Err(malformed("totp counter record: unsupported version"));
    }
    Ok(json.count)
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnrolmentJson {
    v: u32,
    wallet: String,
    issuer: String,
    algorithm: String,
    digits: u8,
    period: u64,
    node: String,
    envelope: String,
    enrolled_at: u64,
}

/// The enrolment record of a key: its label, the code parameters and its
/// public key. A secp256k1 key's record has no `keyAlgorithm` and names
/// the key by its compressed point; a key of another algorithm names it
/// (`keyAlgorithm`: `P-256`, `Ed25519`) beside its public key
/// ([`AnyPublicKey::to_bytes`], hex). Either field's presence where it
/// does not belong is refused on decoding.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyEnrolmentJson {
    v: u32,
    label: String,
    issuer: String,
    algorithm: String,
    digits: u8,
    period: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_algorithm: Option<String>,
    public_key: String,
    envelope: String,
    enrolled_at: u64,
}

/// An enrolment: what it gates, with which parameters, and the sealed
/// secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnrolmentRecord {
    /// The wallet node or the key the record gates (checked on decoding
    /// against the state-store key it was read from).
    pub(crate) subject: Subject,
    /// The wallet name (a node's record; it maps to the node) or the
    /// key's label (a key's record; shown in authenticator apps only).
    pub(crate) name: String,
    pub(crate) issuer: String,
    pub(crate) params: TotpParams,
    pub(crate) envelope: Envelope,
    pub(crate) enrolled_at: u64,
}

/// The encryption context of a TOTP secret: its purpose, what it gates
/// (the wallet name for a wallet, the compressed public key for a key),
/// and the code parameters (so a record moved to another wallet or key,
/// or whose parameters were edited, no longer opens).
pub(crate) fn secret_context(
    subject: &Subject,
    name: &str,
    params: &TotpParams,
) -> Result<EncryptionContext, Error> {
    let context = EncryptionContext::new().with("custody", "totp-secret")?;
    let context = match subject {
        Subject::Node(_) => context.with("wallet", name)?,
        Subject::Key(key) => context.with("public-key", &hex::encode(key.to_compressed()))?,
        Subject::OtherKey(key) => context
            .with("public-key", &hex::encode(key.to_bytes()))?
            .with("key-algorithm", key.algorithm().as_str())?,
    };
    Ok(context
        .with("algorithm", params.algorithm.as_str())?
        .with("digits", &params.digits.get().to_string())?
        .with("period", &params.period.seconds().to_string())?)
}

fn decode_params(algorithm: &str, digits: u8, period: u64) -> Result<TotpParams, Error> {
    Ok(TotpParams {
        algorithm: Algorithm::from_name(algorithm)
            .map_err(|_| malformed("totp enrolment record: algorithm"))?,
        digits: Digits::new(digits).map_err(|_| malformed("totp enrolment record: digits"))?,
        period: Period::new(period).map_err(|_| malformed("totp enrolment record: period"))?,
    })
}

fn decode_envelope(hex_text: &str, what: &'static str) -> Result<Envelope, Error> {
    let bytes = hex::decode(hex_text).map_err(|_| malformed(what))?;
    Ok(Envelope::from_vec(bytes)?)
}

impl EnrolmentRecord {
    pub(crate) fn context(&self) -> Result<EncryptionContext, Error> {
        secret_context(&self.subject, &self.name, &self.params)
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        let encoded = match &self.subject {
            Subject::Node(node) => serde_json::to_vec(&EnrolmentJson {
                v: V1,
                wallet: self.name.clone(),
                issuer: self.issuer.clone(),
                algorithm: self.params.algorithm.as_str().to_owned(),
                digits: self.params.digits.get(),
                period: self.params.period.seconds(),
                node: node.to_string(),
                envelope: hex::encode(self.envelope.as_bytes()),
                enrolled_at: self.enrolled_at,
            }),
            Subject::Key(_) | Subject::OtherKey(_) => {
                let (key_algorithm, public_key) = key_record_names(&self.subject);
                serde_json::to_vec(&KeyEnrolmentJson {
                    v: V1,
                    label: self.name.clone(),
                    issuer: self.issuer.clone(),
                    algorithm: self.params.algorithm.as_str().to_owned(),
                    digits: self.params.digits.get(),
                    period: self.params.period.seconds(),
                    key_algorithm,
                    public_key,
                    envelope: hex::encode(self.envelope.as_bytes()),
                    enrolled_at: self.enrolled_at,
                })
            }
        };
        encoded.map_err(|_| malformed("totp enrolment record could not be encoded"))
    }

    /// Decodes the record stored for `expected` (the subject whose
    /// state-store key it was read from), and checks that it is that
    /// subject's: a wallet's record must name that node and a wallet that
    /// `scheme` maps there; a key's record must name that public key.
    pub(crate) fn decode(
        bytes: &[u8],
        expected: &Subject,
        scheme: WalletScheme,
    ) -> Result<Self, Error> {
        match expected {
            Subject::Node(node) => Self::decode_node(bytes, node, scheme),
            Subject::Key(_) | Subject::OtherKey(_) => Self::decode_key(bytes, expected),
        }
    }

    fn decode_node(
        bytes: &[u8],
        expected_node: &DerivationPath,
        scheme: WalletScheme,
    ) -> Result<Self, Error> {
        let json: EnrolmentJson =
            serde_json::from_slice(bytes).map_err(|_| malformed("totp enrolment record"))?;
        if json.v != V1 {
            return Err(malformed("totp enrolment record: unsupported version"));
        }
        let params = decode_params(&json.algorithm, json.digits, json.period)?;
        let node: DerivationPath = json
            .node
            .parse()
            .map_err(|_| malformed("totp enrolment record: node"))?;
        if &node != expected_node {
            return Err(malformed("totp enrolment record belongs to another node"));
        }
        let wallet_node = scheme
            .wallet_path(&json.wallet)
            .map_err(|_| malformed("totp enrolment record: wallet"))?;
        if wallet_node != node {
            return Err(malformed(
                "totp enrolment record: the wallet does not map to its node",
            ));
        }
        let envelope =
            decode_envelope(&json.envelope, "totp enrolment record: envelope is not hex")?;
        Ok(Self {
            subject: Subject::Node(node),
            name: json.wallet,
            issuer: json.issuer,
            params,
            envelope,
            enrolled_at: json.enrolled_at,
        })
    }

    /// A key's record (`expected` is [`Subject::Key`] or
    /// [`Subject::OtherKey`]).
    fn decode_key(bytes: &[u8], expected: &Subject) -> Result<Self, Error> {
        let json: KeyEnrolmentJson =
            serde_json::from_slice(bytes).map_err(|_| malformed("totp key enrolment record"))?;
        if json.v != V1 {
            return Err(malformed("totp key enrolment record: unsupported version"));
        }
        let params = decode_params(&json.algorithm, json.digits, json.period)?;
        // Exactly the canonical text (lower-case hex of the compressed
        // point, or of the key's bytes with its algorithm's name): any
        // other spelling of any key is refused.
        let (key_algorithm, public_key) = key_record_names(expected);
        if json.key_algorithm != key_algorithm || json.public_key != public_key {
            return Err(malformed(
                "totp key enrolment record belongs to another key",
            ));
        }
        if json.label.is_empty() || json.label.len() > MAX_WALLET_NAME_BYTES {
            return Err(malformed("totp key enrolment record: label"));
        }
        let envelope = decode_envelope(
            &json.envelope,
            "totp key enrolment record: envelope is not hex",
        )?;
        Ok(Self {
            subject: expected.clone(),
            name: json.label,
            issuer: json.issuer,
            params,
            envelope,
            enrolled_at: json.enrolled_at,
        })
    }
}

/// How a key's record names its key: `keyAlgorithm` (absent for
/// secp256k1) and `publicKey`. A wallet node's record names no key (it
/// is an [`EnrolmentJson`], never decoded as a key's record).
fn key_record_names(subject: &Subject) -> (Option<String>, String) {
    match subject {
        Subject::Key(key) => (None, hex::encode(key.to_compressed())),
        Subject::OtherKey(key) => (
            Some(key.algorithm().as_str().to_owned()),
            hex::encode(key.to_bytes()),
        ),
        Subject::Node(_) => (None, String::new()),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GuardJson {
    v: u32,
    last_step: Option<u64>,
    failures: u32,
    lock_level: u32,
    locked_until: u64,
}

/// The replay counter and lockout of one enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct GuardState {
    /// The last accepted step; codes for it and earlier steps are replays.
    pub(crate) last_step: Option<u64>,
    /// Consecutive wrong codes since the last accepted one.
    pub(crate) failures: u32,
    /// Locks in a row since the last accepted code (sets the back-off).
    pub(crate) lock_level: u32,
    /// Refuse everything before this UNIX time.
    pub(crate) locked_until: u64,
}

/// Appends `n` in decimal (as `serde_json` writes integers) to `out`.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    loop {
        // 20 digits hold any u64: `pos` never underflows.
        pos -= 1;
        // `n % 10` is one decimal digit: the cast cannot truncate.
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[pos..]);
}

impl GuardState {
    /// The record's JSON, byte for byte what `serde_json` writes for
    /// [`GuardJson`] (written out by hand: the guard is rewritten on every
    /// accepted code; a test checks it against `serde_json`).
    pub(crate) fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(96);
        out.extend_from_slice(br#"{"v":"#);
        push_decimal(&mut out, u64::from(V1));
        out.extend_from_slice(br#","lastStep":"#);
        match self.last_step {
            None => out.extend_from_slice(b"null"),
            Some(step) => push_decimal(&mut out, step),
        }
        out.extend_from_slice(br#","failures":"#);
        push_decimal(&mut out, u64::from(self.failures));
        out.extend_from_slice(br#","lockLevel":"#);
        push_decimal(&mut out, u64::from(self.lock_level));
        out.extend_from_slice(br#","lockedUntil":"#);
        push_decimal(&mut out, self.locked_until);
        out.push(b'}');
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let json: GuardJson =
            serde_json::from_slice(bytes).map_err(|_| malformed("totp guard record"))?;
        if json.v != V1 {
            return Err(malformed("totp guard record: unsupported version"));
        }
        Ok(Self {
            last_step: json.last_step,
            failures: json.failures,
            lock_level: json.lock_level,
            locked_until: json.locked_until,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The public key of a vector's key enrolment, from its compressed
    /// encoding (computed by the generator with pyca/cryptography).
    fn vector_key(e: &serde_json::Value) -> PublicKey {
        PublicKey::from_sec1_bytes(&hex::decode(e["publicKey"].as_str().unwrap()).unwrap()).unwrap()
    }

    fn expected_context(v: &serde_json::Value) -> Vec<(String, String)> {
        let mut expected: Vec<(String, String)> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        expected.sort();
        expected
    }

    fn context_pairs(record: &EnrolmentRecord) -> Vec<(String, String)> {
        record
            .context()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// The frozen records (generated independently, see
    /// `tests/vectors/gen_state_records_v1.py`) decode and re-encode to the
    /// same bytes: the format cannot drift unnoticed.
    #[test]
    fn frozen_records_round_trip_byte_for_byte() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vectors/state_records_v1.json")).unwrap();
        let scheme = v["scheme"]["record"].as_str().unwrap().as_bytes();
        assert_eq!(decode_scheme(scheme).unwrap(), WalletScheme::Default);
        assert_eq!(encode_scheme(WalletScheme::Default).unwrap(), scheme);
        assert_eq!(v["scheme"]["key"], SCHEME_KEY);
        let counter = v["counter"]["record"].as_str().unwrap().as_bytes();
        assert_eq!(decode_counter(counter).unwrap(), 1);
        assert_eq!(encode_counter(1).unwrap(), counter);
        for e in v["enrolments"].as_array().unwrap() {
            let bytes = e["record"].as_str().unwrap().as_bytes();
            let node: DerivationPath = e["node"].as_str().unwrap().parse().unwrap();
            assert_eq!(node_key(&node), e["nodeKey"].as_str().unwrap());
            assert_eq!(guard_key(&node), e["guardKey"].as_str().unwrap());
            let subject = Subject::Node(node.clone());
            let record = EnrolmentRecord::decode(bytes, &subject, WalletScheme::Default).unwrap();
            assert_eq!(record.encode().unwrap(), bytes);
            assert_eq!(record.name, e["wallet"].as_str().unwrap());
            assert_eq!(context_pairs(&record), expected_context(&e["context"]));
            assert_eq!(subject_keys(&subject).0, e["nodeKey"].as_str().unwrap());
            // Copied to another node's slot, or read as a key's record:
            // refused.
            let other = Subject::Node(DerivationPath::master());
            assert!(EnrolmentRecord::decode(bytes, &other, WalletScheme::Default).is_err());
            assert!(EnrolmentRecord::decode(bytes, &subject, WalletScheme::Fortanix).is_err());
            let key = Subject::Key(vector_key(&v["keyEnrolments"][0]));
            assert!(EnrolmentRecord::decode(bytes, &key, WalletScheme::Default).is_err());
        }
        let keys = v["keyEnrolments"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        for (i, e) in keys.iter().enumerate() {
            let bytes = e["record"].as_str().unwrap().as_bytes();
            let key = vector_key(e);
            assert_eq!(key_record_key(&key), e["recordKey"].as_str().unwrap());
            assert_eq!(key_guard_key(&key), e["guardKey"].as_str().unwrap());
            let subject = Subject::Key(key);
            assert_eq!(
                subject_keys(&subject),
                (
                    e["recordKey"].as_str().unwrap().to_owned(),
                    e["guardKey"].as_str().unwrap().to_owned()
                )
            );
            let record = EnrolmentRecord::decode(bytes, &subject, WalletScheme::Default).unwrap();
            assert_eq!(record.encode().unwrap(), bytes);
            assert_eq!(record.name, e["label"].as_str().unwrap());
            assert_eq!(record.subject, subject);
            assert_eq!(context_pairs(&record), expected_context(&e["context"]));
            // The scheme does not matter to a key's record.
            assert_eq!(
                EnrolmentRecord::decode(bytes, &subject, WalletScheme::Fortanix).unwrap(),
                record
            );
            // Copied to another key's slot, or read as a node's record:
            // refused.
            let other = Subject::Key(vector_key(&keys[1 - i]));
            assert!(EnrolmentRecord::decode(bytes, &other, WalletScheme::Default).is_err());
            let node = Subject::Node(DerivationPath::master());
            assert!(EnrolmentRecord::decode(bytes, &node, WalletScheme::Default).is_err());
        }
        for g in v["guards"].as_array().unwrap() {
            let bytes = g["record"].as_str().unwrap().as_bytes();
            let state = GuardState::decode(bytes).unwrap();
            assert_eq!(state.last_step, g["lastStep"].as_u64());
            assert_eq!(u64::from(state.failures), g["failures"].as_u64().unwrap());
            assert_eq!(
                u64::from(state.lock_level),
                g["lockLevel"].as_u64().unwrap()
            );
            assert_eq!(state.locked_until, g["lockedUntil"].as_u64().unwrap());
            assert_eq!(state.encode().unwrap(), bytes);
        }
    }

    /// One record form serves both kinds of key: `keyAlgorithm` is absent
    /// from a secp256k1 key's record and required in another key's, and
    /// a record read as the other kind of key is refused.
    #[test]
    fn a_key_record_names_its_algorithm_exactly_when_it_is_not_secp256k1() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vectors/state_records_v1.json")).unwrap();
        let e = &v["keyEnrolments"][0];
        let bytes = e["record"].as_str().unwrap().as_bytes();
        let secp = Subject::Key(vector_key(e));
        let record = EnrolmentRecord::decode(bytes, &secp, WalletScheme::Default).unwrap();
        // A secp256k1 record that names an algorithm is not canonical.
        let mut json: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        json["keyAlgorithm"] = "secp256k1".into();
        let named = serde_json::to_vec(&json).unwrap();
        assert!(EnrolmentRecord::decode(&named, &secp, WalletScheme::Default).is_err());

        let point = p256::SecretKey::from_slice(&[7; 32])
            .unwrap()
            .public_key()
            .to_sec1_bytes();
        let p256_key =
            AnyPublicKey::P256(custody_core::P256PublicKey::from_sec1_bytes(&point).unwrap());
        let other = Subject::OtherKey(p256_key);
        let moved = EnrolmentRecord {
            subject: other.clone(),
            ..record
        };
        let encoded = moved.encode().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(json["keyAlgorithm"], "P-256");
        assert_eq!(json["publicKey"], hex::encode(other_bytes(&other)));
        assert_eq!(
            EnrolmentRecord::decode(&encoded, &other, WalletScheme::Default).unwrap(),
            moved
        );
        // Without its algorithm, or read as the secp256k1 key's: refused.
        let mut stripped = json.clone();
        stripped.as_object_mut().unwrap().remove("keyAlgorithm");
        let stripped = serde_json::to_vec(&stripped).unwrap();
        assert!(EnrolmentRecord::decode(&stripped, &other, WalletScheme::Default).is_err());
        assert!(EnrolmentRecord::decode(&encoded, &secp, WalletScheme::Default).is_err());
        assert!(EnrolmentRecord::decode(bytes, &other, WalletScheme::Default).is_err());
    }

    fn other_bytes(subject: &Subject) -> Vec<u8> {
        match subject {
            Subject::OtherKey(key) => key.to_bytes().to_vec(),
            _ => unreachable!("an other key"),
        }
    }

    proptest::proptest! {
        /// The hand-written encoder against `serde_json`.
        #[test]
        fn guard_encoding_is_what_serde_json_writes(
            last_step in proptest::option::of(proptest::prelude::any::<u64>()),
            failures in proptest::prelude::any::<u32>(),
            lock_level in proptest::prelude::any::<u32>(),
            locked_until in proptest::prelude::any::<u64>(),
        ) {
            let state = GuardState { last_step, failures, lock_level, locked_until };
            let expected = serde_json::to_vec(&GuardJson {
                v: V1,
                last_step,
                failures,
                lock_level,
                locked_until,
            })
            .unwrap();
            let bytes = state.encode().unwrap();
            proptest::prop_assert_eq!(&bytes, &expected);
            proptest::prop_assert_eq!(GuardState::decode(&bytes).unwrap(), state);
        }
    }

    #[test]
    fn guard_encoding_at_the_limits() {
        for state in [
            GuardState::default(),
            GuardState {
                last_step: Some(0),
                failures: u32::MAX,
                lock_level: u32::MAX,
                locked_until: u64::MAX,
            },
            GuardState {
                last_step: Some(u64::MAX),
                ..GuardState::default()
            },
        ] {
            let expected = serde_json::to_vec(&GuardJson {
                v: V1,
                last_step: state.last_step,
                failures: state.failures,
                lock_level: state.lock_level,
                locked_until: state.locked_until,
            })
            .unwrap();
            assert_eq!(state.encode().unwrap(), expected);
        }
        assert_eq!(
            GuardState::default().encode().unwrap(),
            br#"{"v":1,"lastStep":null,"failures":0,"lockLevel":0,"lockedUntil":0}"#
        );
    }

    #[test]
    fn malformed_records_are_typed_errors() {
        let bad: [&[u8]; 8] = [
            b"",
            b"{}",
            b"not json",
            br#"{"v":2,"lastStep":null,"failures":0,"lockLevel":0,"lockedUntil":0}"#,
            br#"{"v":1,"lastStep":null,"failures":0,"lockLevel":0,"lockedUntil":0,"x":1}"#,
            br#"{"v":1,"lastStep":-1,"failures":0,"lockLevel":0,"lockedUntil":0}"#,
            br#"{"v":1,"lastStep":null,"failures":4294967296,"lockLevel":0,"lockedUntil":0}"#,
            br#"{"v":1,"lastStep":null,"failures":0,"lockLevel":0}"#,
        ];
        for b in bad {
            assert!(matches!(
                GuardState::decode(b),
                Err(Error::Core(custody_core::Error::MalformedRecord(_)))
            ));
        }
        assert!(decode_counter(br#"{"v":1,"count":-1}"#).is_err());
        assert!(decode_scheme(br#"{"v":1,"scheme":"Default"}"#).is_err());
        let node = Subject::Node(DerivationPath::master());
        for b in [&b"{}"[..], b"[]", b"\xff"] {
            assert!(EnrolmentRecord::decode(b, &node, WalletScheme::Default).is_err());
        }
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../tests/vectors/state_records_v1.json")).unwrap();
        let e = &v["keyEnrolments"][0];
        let key = Subject::Key(vector_key(e));
        let good = e["record"].as_str().unwrap();
        assert!(EnrolmentRecord::decode(good.as_bytes(), &key, WalletScheme::Default).is_ok());
        let public = e["publicKey"].as_str().unwrap();
        let label = e["label"].as_str().unwrap();
        let uncompressed = hex::encode(vector_key(e).to_uncompressed());
        let long_label = "x".repeat(MAX_WALLET_NAME_BYTES + 1);
        let bad = [
            // Another spelling of the same key: refused (the key is named
            // canonically, lower-case hex of the compressed point).
            good.replace(public, &public.to_uppercase()),
            good.replace(public, &uncompressed),
            good.replace(&format!("\"label\":\"{label}\""), "\"label\":\"\""),
            good.replace(label, &long_label),
            good.replace("\"v\":1", "\"v\":2"),
            good.replace("\"digits\":8", "\"digits\":9"),
            good.replace("\"enrolledAt\"", "\"x\":1,\"enrolledAt\""),
            good.replace("\"envelope\":\"", "\"envelope\":\"zz"),
        ];
        for b in bad {
            assert_ne!(b, good);
            assert!(matches!(
                EnrolmentRecord::decode(b.as_bytes(), &key, WalletScheme::Default),
                Err(Error::Core(custody_core::Error::MalformedRecord(_)))
            ));
        }
    }
}
