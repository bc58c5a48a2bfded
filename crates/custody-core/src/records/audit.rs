//! A hash-chained, append-only audit log.
//!
//! Every sensitive operation (sign, unwrap, enrol, import, export, rotate,
//! TOTP verification) appends one [`AuditEvent`]. Each record carries the
//! SHA-256 hash of the record before it, so an edited, dropped, inserted,
//! duplicated or reordered record breaks the chain and
//! [`AuditLog::verify`] names the first record that fails.
//!
//! **No secret ever goes in.** An event holds public identifiers only: the
//! operation, its outcome, and fields such as the wallet name, key id or
//! BIP32 path, public key or address, the digest signed, the backend's name;
//! the record adds its sequence number and a timestamp. Never put a key,
//! seed, mnemonic, passphrase, TOTP secret or code, or a plaintext payload
//! in a field. Free text is limited to `&'static str` details
//! ([`AuditEvent::with_detail`]), so no run-time data slips in through it.
//!
//! **What the chain proves, and what it does not.** The chain makes any
//! change *inside* the log evident. It cannot show that records were cut
//! off the *end*: a truncated log is a valid shorter log. Anchor the head
//! ([`AuditHead`], returned by every append) outside the machine (a
//! different host, a transparency log, a ticket) and check against it with
//! [`AuditLog::verify_against`].
//!
//! The record format and the canonical encoding that is hashed are
//! specified in `SPEC.md` ("Audit log records") and pinned by
//! `tests/vectors/audit_v1.jsonl`.

use std::any::Any;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::records::fsutil;
use crate::{DerivationPath, Digest32, Error, Pending, PublicKey};

/// Domain tag at the start of every hashed record encoding.
const HASH_DOMAIN: &[u8] = b"custody/audit/v1\0";
/// Longest operation or field name, in bytes.
const MAX_NAME_BYTES: usize = 64;

/// Whether `s` is a short kebab-case name: 1 to 64 bytes of `a-z`, `0-9`
/// and single inner `-`.
fn is_kebab(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_NAME_BYTES {
        return false;
    }
    // One pass: allowed bytes only, and every `-` has a non-`-` before it
    // and after it (so none leads, trails or doubles).
    let mut prev_hyphen = true;
    for &b in bytes {
        let hyphen = b == b'-';
        if !(hyphen || b.is_ascii_lowercase() || b.is_ascii_digit()) || (hyphen && prev_hyphen) {
            return false;
        }
        prev_hyphen = hyphen;
    }
    !prev_hyphen
}

/// The operation an [`AuditEvent`] records: a short kebab-case name.
///
/// The SDK's own operations are the associated constants; other crates name
/// theirs with [`AuditOp::new`] (e.g. `"jwt-sign"`), so adding an operation
/// never changes this crate or the log format.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AuditOp(Cow<'static, str>);

impl AuditOp {
    /// A digest or transaction was signed.
    pub const SIGN: Self = Self(Cow::Borrowed("sign"));
    /// A wrapped secret (data key, seed, TOTP secret) was unwrapped.
    pub const UNWRAP: Self = Self(Cow::Borrowed("unwrap"));
    /// A wallet was enrolled for a second factor.
    pub const ENROL: Self = Self(Cow::Borrowed("enrol"));
    /// A key was imported.
    pub const IMPORT: Self = Self(Cow::Borrowed("import"));
    /// A key was exported.
    pub const EXPORT: Self = Self(Cow::Borrowed("export"));
    /// A key-encryption key was rotated (secrets re-wrapped).
    pub const ROTATE: Self = Self(Cow::Borrowed("rotate"));
    /// A TOTP code was checked.
    pub const TOTP_VERIFY: Self = Self(Cow::Borrowed("totp-verify"));
    /// A key agreed or decrypted (a sealed secret opened,
    /// [`crate::DecryptingBackend`]).
    pub const DECRYPT: Self = Self(Cow::Borrowed("decrypt"));

    /// An operation name: 1 to 64 bytes of lower-case ASCII letters, digits
    /// and single inner hyphens.
    ///
    /// # Errors
    /// [`Error::InvalidAuditEvent`] if `name` is not such a name.
    pub fn new(name: impl Into<String>) -> Result<Self, Error> {
        let name = name.into();
        if !is_kebab(&name) {
            return Err(Error::InvalidAuditEvent(
                "operation names are 1-64 bytes of kebab-case (a-z, 0-9, -)",
            ));
        }
        Ok(Self(Cow::Owned(name)))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AuditOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AuditOp {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl From<AuditOp> for String {
    fn from(op: AuditOp) -> Self {
        op.0.into_owned()
    }
}

/// How an audited operation ended.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditOutcome {
    /// The operation was carried out.
    Success,
    /// A gate or policy refused it.
    Denied,
    /// It was attempted and failed (backend error, bad input).
    Failed,
}

impl AuditOutcome {
    /// The stable name used in records: `success`, `denied`, `failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// One audited operation: what was done, how it ended, and the public
/// identifiers it concerned.
///
/// Fields are a sorted map from a kebab-case name to a string. The builder
/// methods fill the conventional names (`wallet`, `index`, `key`, `path`,
/// `public-key`, `digest`, `backend`, `detail`); other crates add their own
/// (`address`, `chain-id`, `tx-hash`, ...) with [`AuditEvent::with_field`].
///
/// **Public identifiers only.** Every field is written in the clear to a
/// file auditors and operators read. Never put secret material, a TOTP code,
/// or anything derived from a secret other than a public key in one.
///
/// In JSON (inside a record) an event is an object with `op`, `outcome` and
/// then the fields, e.g.
/// `{"op":"sign","outcome":"success","digest":"…","wallet":"alice"}`.
#[derive(Clone, Deserialize)]
#[serde(try_from = "EventRepr")]
pub struct AuditEvent {
    op: AuditOp,
    outcome: AuditOutcome,
    /// The fields in ascending byte order of their names (unique), each
    /// with the range of its value in `text`.
    fields: Vec<Field>,
    /// The values, back to back: an event is two allocations however many
    /// fields it has (it is built twice per signature on the hot path, and
    /// an in-memory log keeps every one). A replaced value's old bytes stay
    /// unused in `text` until the event is dropped.
    text: String,
}

/// One field of an [`AuditEvent`].
#[derive(Clone)]
struct Field {
    /// Borrowed for the conventional and known names, so that setting
    /// them allocates nothing; a `Cow<str>` orders as the `str` it holds.
    name: Cow<'static, str>,
    /// Where the value lies in the event's `text` (whole `str`s are
    /// appended there, so both ends are character boundaries).
    value: std::ops::Range<usize>,
}

/// Room reserved for a new event: every event the SDK builds on the
/// signing hot path fits without growing.
const EVENT_FIELDS: usize = 8;
/// See [`EVENT_FIELDS`].
const EVENT_TEXT_BYTES: usize = 256;

/// The parsed form of an [`AuditEvent`] (fields flattened beside `op` and
/// `outcome`).
#[derive(Deserialize)]
struct EventRepr {
    op: AuditOp,
    outcome: AuditOutcome,
    #[serde(flatten)]
    fields: BTreeMap<String, String>,
}

impl TryFrom<EventRepr> for AuditEvent {
    type Error = Error;

    fn try_from(r: EventRepr) -> Result<Self, Error> {
        let mut event = Self {
            op: r.op,
            outcome: r.outcome,
            fields: Vec::with_capacity(r.fields.len()),
            text: String::with_capacity(r.fields.values().map(String::len).sum()),
        };
        // A BTreeMap iterates in ascending byte order of its keys: each
        // field goes at the end.
        for (name, value) in r.fields {
            check_field_name(&name)?;
            event = event.put(Cow::Owned(name), |text| text.push_str(&value));
        }
        Ok(event)
    }
}

impl Serialize for AuditEvent {
    /// `op`, `outcome`, then the fields in ascending byte order of their
    /// names: the map `#[serde(flatten)]` wrote before, written without
    /// cloning the event.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.fields.len().saturating_add(2)))?;
        map.serialize_entry("op", self.op.as_str())?;
        map.serialize_entry("outcome", self.outcome.as_str())?;
        for (name, value) in self.fields() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

impl PartialEq for AuditEvent {
    /// Same operation, outcome and fields (however the values are laid out).
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.outcome == other.outcome && self.fields().eq(other.fields())
    }
}

impl Eq for AuditEvent {}

impl fmt::Debug for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Fields<'a>(&'a AuditEvent);
        impl fmt::Debug for Fields<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.0.fields()).finish()
            }
        }
        f.debug_struct("AuditEvent")
            .field("op", &self.op)
            .field("outcome", &self.outcome)
            .field("fields", &Fields(self))
            .finish()
    }
}

fn check_field_name(name: &str) -> Result<(), Error> {
    if !is_kebab(name) {
        return Err(Error::InvalidAuditEvent(
            "field names are 1-64 bytes of kebab-case (a-z, 0-9, -)",
        ));
    }
    if name == "op" || name == "outcome" {
        return Err(Error::InvalidAuditEvent(
            "`op` and `outcome` are not field names",
        ));
    }
    Ok(())
}

/// Field names other crates of the SDK set with [`AuditEvent::with_field`]:
/// these are stored borrowed, so that setting them allocates nothing.
/// Any other valid name works the same, with one allocation.
const KNOWN_FIELD_NAMES: &[&str] = &[
    "address",
    "denial",
    "factor",
    "fingerprint",
    "intent",
    "kek",
    "locked-until",
    "route",
    "step",
    "totp-step",
];

fn field_name(name: &str) -> Cow<'static, str> {
    match KNOWN_FIELD_NAMES.iter().find(|k| **k == name) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(name.to_owned()),
    }
}

/// The order of field names: ascending byte order, as `str::cmp` (and a
/// `BTreeMap<String, _>`) has it, compared byte by byte: names are short
/// and mostly differ in their first byte, where a call to `memcmp` costs
/// more than the comparison.
fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes().cmp(b.bytes())
}

/// Appends the lower-case hex of `bytes` to `text` (table-driven, through a
/// stack buffer; `hex::encode` goes through a `char` iterator and a
/// `String` of its own).
fn push_hex(text: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        let Some(out) = buf.get_mut(..chunk.len() * 2) else {
            return;
        };
        // `out` is exactly twice as long as `chunk`: encoding cannot fail,
        // and hex digits are ASCII.
        if hex::encode_to_slice(chunk, out).is_ok()
            && let Ok(digits) = std::str::from_utf8(out)
        {
            text.push_str(digits);
        }
    }
}

/// Appends `n` in decimal to `text`.
fn push_decimal(text: &mut String, mut n: u64) {
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
    // Only ASCII digits were written into `buf[pos..]`.
    text.push_str(std::str::from_utf8(&buf[pos..]).unwrap_or_default());
}

impl AuditEvent {
    /// An event with no fields yet.
    #[must_use]
    pub fn new(op: AuditOp, outcome: AuditOutcome) -> Self {
        Self {
            op,
            outcome,
            fields: Vec::with_capacity(EVENT_FIELDS),
            text: String::with_capacity(EVENT_TEXT_BYTES),
        }
    }

    /// Sets field `name` to what `write` appends to the event's text
    /// (replacing an earlier value of `name`).
    fn put(mut self, name: Cow<'static, str>, write: impl FnOnce(&mut String)) -> Self {
        let start = self.text.len();
        write(&mut self.text);
        let value = start..self.text.len();
        match self.fields.binary_search_by(|f| name_order(&f.name, &name)) {
            Ok(i) => {
                if let Some(f) = self.fields.get_mut(i) {
                    f.value = value;
                }
            }
            Err(i) => self.fields.insert(i, Field { name, value }),
        }
        self
    }

    /// Sets a field the SDK names itself to `value` (e.g. text rendered
    /// beforehand).
    pub(crate) fn set(self, name: &'static str, value: &str) -> Self {
        self.put(Cow::Borrowed(name), |text| text.push_str(value))
    }

    /// Sets `wallet`: the wallet name.
    #[must_use]
    pub fn with_wallet(self, name: &str) -> Self {
        self.set("wallet", name)
    }

    /// Sets `index`: the key index within the wallet (decimal).
    #[must_use]
    pub fn with_index(self, index: u32) -> Self {
        self.put(Cow::Borrowed("index"), |text| {
            push_decimal(text, u64::from(index));
        })
    }

    /// Sets a field the SDK names itself to `value` in decimal (no
    /// allocation beyond the event's own).
    pub(crate) fn with_decimal(self, name: &'static str, value: u64) -> Self {
        self.put(Cow::Borrowed(name), |text| push_decimal(text, value))
    }

    /// Sets `key`: a key or KEK id (an imported key's id, a KMS key ARN).
    #[must_use]
    pub fn with_key(self, id: &str) -> Self {
        self.set("key", id)
    }

    /// Sets `path`: a BIP32 path (`m/44'/60'/0'/0/0`).
    #[must_use]
    pub fn with_path(self, path: &DerivationPath) -> Self {
        self.put(Cow::Borrowed("path"), |text| path.push_to(text))
    }

    /// Sets `public-key`: the compressed SEC 1 public key, lower-case hex.
    #[must_use]
    pub fn with_public_key(self, key: &PublicKey) -> Self {
        self.put(Cow::Borrowed("public-key"), |text| {
            push_hex(text, &key.to_compressed());
        })
    }

    /// Sets `digest`: the digest signed or checked, lower-case hex.
    #[must_use]
    pub fn with_digest(self, digest: &Digest32) -> Self {
        self.put(Cow::Borrowed("digest"), |text| {
            push_hex(text, digest.as_bytes());
        })
    }

    /// Sets `backend`: the backend's name ([`crate::KeyBackend::name`]).
    #[must_use]
    pub fn with_backend(self, name: &str) -> Self {
        self.set("backend", name)
    }

    /// Sets `detail`: a fixed explanation (e.g. why a request was denied).
    /// A `&'static str` on purpose: no run-time data goes in through it.
    #[must_use]
    pub fn with_detail(self, detail: &'static str) -> Self {
        self.set("detail", detail)
    }

    /// Sets any field (replacing an earlier value). `value` must be a public
    /// identifier (see the type's docs).
    ///
    /// # Errors
    /// [`Error::InvalidAuditEvent`] if `name` is not 1-64 bytes of
    /// kebab-case, or is `op` or `outcome`.
    pub fn with_field(self, name: &str, value: impl Into<String>) -> Result<Self, Error> {
        check_field_name(name)?;
        let value = value.into();
        Ok(self.put(field_name(name), |text| text.push_str(&value)))
    }

    /// The operation.
    #[must_use]
    pub fn op(&self) -> &AuditOp {
        &self.op
    }

    /// The outcome.
    #[must_use]
    pub fn outcome(&self) -> AuditOutcome {
        self.outcome
    }

    fn value(&self, field: &Field) -> &str {
        self.text.get(field.value.clone()).unwrap_or_default()
    }

    /// The value of field `name`.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&str> {
        let i = self
            .fields
            .binary_search_by(|f| name_order(&f.name, name))
            .ok()?;
        self.fields.get(i).map(|f| self.value(f))
    }

    /// All fields, sorted by name.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|f| (f.name.as_ref(), self.value(f)))
    }
}

/// The head of a chain: the sequence number and hash of its last record
/// ([`AuditHead::GENESIS`] for an empty log). Anchor it outside the machine
/// and check the log against it with [`AuditLog::verify_against`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number of the last record (0 for an empty log).
    pub seq: u64,
    /// Hash of the last record (all zeros for an empty log).
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

impl AuditHead {
    /// The head of an empty log.
    pub const GENESIS: Self = Self {
        seq: 0,
        hash: [0; 32],
    };
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    seq: u64,
    time: u64,
    #[serde(with = "hex32")]
    prev: [u8; 32],
    event: AuditEvent,
    #[serde(with = "hex32")]
    hash: [u8; 32],
}

impl AuditRecord {
    /// Seals `event` as record `prev.seq + 1`, chained to `prev`, at `time`
    /// (milliseconds since the UNIX epoch): how a sink that keeps records
    /// elsewhere (a database) makes the same records as [`AuditLog`].
    ///
    /// # Errors
    /// [`Error::AuditChainBroken`] if `prev.seq` is `u64::MAX`.
    pub fn seal(prev: &AuditHead, time: u64, event: AuditEvent) -> Result<Self, Error> {
        let seq = prev.seq.checked_add(1).ok_or(Error::AuditChainBroken {
            seq: prev.seq,
            reason: "sequence number overflow",
        })?;
        let hash = chain_hash(seq, time, &prev.hash, &event);
        Ok(Self {
            seq,
            time,
            prev: prev.hash,
            event,
            hash,
        })
    }

    /// Parses one line (without its newline). Checks the syntax only, not
    /// the hash or the chain: that is [`AuditLog::verify`]'s job.
    ///
    /// # Errors
    /// [`Error::MalformedRecord`] if the line is not an audit record.
    pub fn from_line(line: &str) -> Result<Self, Error> {
        serde_json::from_str(line)
            .map_err(|_| Error::MalformedRecord("not an audit record (JSON of the wrong shape)"))
    }

    /// The record as one line of JSON (without the newline), in canonical
    /// form.
    ///
    /// # Errors
    /// [`Error::MalformedRecord`] if serialization fails (it does not for the
    /// types here: all map keys are strings and no serializer errors).
    pub fn to_line(&self) -> Result<String, Error> {
        serde_json::to_string(self)
            .map_err(|_| Error::MalformedRecord("audit record could not be serialized"))
    }

    /// The sequence number (1 for the first record).
    #[must_use]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// When the record was appended, in milliseconds since the UNIX epoch,
    /// by the appending process's clock (not checked for monotonicity).
    #[must_use]
    pub fn time_ms(&self) -> u64 {
        self.time
    }

    /// The hash of the previous record (zeros for the first).
    #[must_use]
    pub fn prev(&self) -> &[u8; 32] {
        &self.prev
    }

    /// The event.
    #[must_use]
    pub fn event(&self) -> &AuditEvent {
        &self.event
    }

    /// This record's hash, as stored.
    #[must_use]
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    /// The head of a chain that ends with this record.
    #[must_use]
    pub fn head(&self) -> AuditHead {
        AuditHead {
            seq: self.seq,
            hash: self.hash,
        }
    }

    /// Checks that the stored hash is the hash of the contents.
    fn hash_is_valid(&self) -> bool {
        chain_hash(self.seq, self.time, &self.prev, &self.event) == self.hash
    }
}

/// Size of the staging buffer of [`CanonicalHasher`]: most records' whole
/// canonical encoding fits, so it reaches SHA-256 in one `update`.
const STAGING_BYTES: usize = 512;

/// SHA-256 over a canonical encoding written in small pieces: the pieces
/// are staged in a buffer and handed to the hash in large `update`s (the
/// same bytes, in the same order, so the same digest; a record is about 30
/// pieces, most of them 8-byte lengths).
struct CanonicalHasher {
    hash: Sha256,
    staged: [u8; STAGING_BYTES],
    len: usize,
}

impl CanonicalHasher {
    fn new() -> Self {
        Self {
            hash: Sha256::new(),
            staged: [0; STAGING_BYTES],
            len: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        if let Some(room) = self.staged.get_mut(self.len..self.len + bytes.len()) {
            room.copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        self.flush();
        if bytes.len() >= STAGING_BYTES {
            self.hash.update(bytes);
        } else if let Some(room) = self.staged.get_mut(..bytes.len()) {
            room.copy_from_slice(bytes);
            self.len = bytes.len();
        }
    }

    /// Appends `u64be(len) ‖ bytes`.
    fn put_str(&mut self, s: &str) {
        // Lossless: usize is at most 64 bits on every target Rust supports.
        self.put(&(s.len() as u64).to_be_bytes());
        self.put(s.as_bytes());
    }

    fn flush(&mut self) {
        self.hash
            .update(self.staged.get(..self.len).unwrap_or_default());
        self.len = 0;
    }

    fn finalize(mut self) -> [u8; 32] {
        self.flush();
        self.hash.finalize().into()
    }
}

/// The record hash over the canonical encoding (see `SPEC.md`):
/// `SHA-256("custody/audit/v1\0" ‖ u64be(seq) ‖ u64be(time) ‖ prev ‖
/// str(op) ‖ str(outcome) ‖ u64be(n) ‖ (str(name) ‖ str(value))*)` with
/// `str(s) = u64be(len(s)) ‖ s`, fields in ascending byte order of name.
fn chain_hash(seq: u64, time: u64, prev: &[u8; 32], event: &AuditEvent) -> [u8; 32] {
    let mut h = CanonicalHasher::new();
    h.put(HASH_DOMAIN);
    h.put(&seq.to_be_bytes());
    h.put(&time.to_be_bytes());
    h.put(prev);
    h.put_str(event.op.as_str());
    h.put_str(event.outcome.as_str());
    h.put(&(event.fields.len() as u64).to_be_bytes());
    // Fields are kept in ascending byte order of their names.
    for (name, value) in event.fields() {
        h.put_str(name);
        h.put_str(value);
    }
    h.finalize()
}

/// Serde for 32-byte hashes as 64 lower-case hex digits.
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de, ser};

    pub(super) fn serialize<S: Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        let mut out = [0u8; 64];
        hex::encode_to_slice(b, &mut out).map_err(ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&out).map_err(ser::Error::custom)?)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.as_bytes(), &mut out)
            .map_err(|_| de::Error::custom("expected 64 hex digits"))?;
        Ok(out)
    }
}

/// Where audit events go. Implemented by [`AuditLog`] (a file) and
/// [`MemoryAuditLog`]; a service may add its own (a remote log, a
/// transparency log, the PostgreSQL log of `custody-postgres`) as long as
/// it keeps the same chain.
///
/// # Why `append` returns [`Pending`]
///
/// Decided with the first remote sink (the audit log in PostgreSQL), as
/// [`crate::StateStore`] was: a database append is network I/O, and the
/// audit layer ([`crate::Audited`]) appends inside a signature's
/// [`Pending`], so a blocking `append` would stall an async service's
/// executor thread for a round trip per signature. The file and memory
/// logs answer [`Pending::Ready`], inline and without allocation, so the
/// local hot path pays a `match`; sync callers take the answer with
/// [`Pending::wait`]. ([`AuditLog::append`] and [`MemoryAuditLog::append`]
/// stay plain synchronous methods on the concrete types.)
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Appends `event` and returns the new head once the record is kept (for
    /// a durable sink such as [`AuditLog`]: once it is on disk; for a
    /// database: once the transaction has committed).
    ///
    /// # Errors
    /// [`Error::Io`] or another error of the sink: the event may not have
    /// been recorded, and a caller about to do a sensitive operation should
    /// not do it (fail closed).
    fn append(&self, event: AuditEvent) -> Pending<'_, Result<AuditHead, Error>>;

    /// This sink as [`Any`], so that a state store can recognize its own
    /// log ([`crate::StateStore::compare_and_swap_all_recorded`]). `None` (the
    /// default) for a sink no store records into.
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }

    /// The records of `wallet` (events whose `wallet` field names it)
    /// kept at or after `since_ms` (the record's time, milliseconds since
    /// the epoch), oldest first: what a policy node recomputes velocity
    /// limits from, so that editing the state store cannot reset them.
    ///
    /// # Why it is on the sink
    /// The records that prove what was signed are the ones the policy must
    /// count, and only the sink knows where it keeps them (a file, a
    /// database's per-wallet chain); a separate reader handed the same
    /// location could be handed another. So it is one method with a
    /// default, the smallest read that serves: one wallet, a time bound
    /// (a database answers it from an index; a file is read through).
    /// `Unsupported` (the default) for a sink that cannot read back.
    ///
    /// # Errors
    /// [`Error::Unsupported`] (the default); [`Error::AuditChainBroken`]
    /// if the records read do not chain (a reader must not count from an
    /// edited log); [`Error::Io`] or the sink's own errors.
    fn wallet_records<'a>(
        &'a self,
        wallet: &'a str,
        since_ms: u64,
    ) -> Pending<'a, Result<Vec<AuditRecord>, Error>> {
        let _ = (wallet, since_ms);
        Pending::ready(Err(Error::Unsupported(
            "this audit sink does not read its records back",
        )))
    }
}

/// The records of `records` naming `wallet`, kept at or after `since_ms`.
fn of_wallet(
    records: impl IntoIterator<Item = AuditRecord>,
    wallet: &str,
    since_ms: u64,
) -> Vec<AuditRecord> {
    records
        .into_iter()
        .filter(|r| r.time_ms() >= since_ms && r.event().field("wallet") == Some(wallet))
        .collect()
}

/// Milliseconds since the UNIX epoch by the system clock (0 before 1970).
fn system_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The audit log in a file: JSON Lines, one [`AuditRecord`] per line.
///
/// Safe to append to from many threads and many processes at once: a write
/// takes an exclusive OS lock on `<path>.lock`, reads the last record from
/// the file (so it chains onto whatever another process appended), appends,
/// and fsyncs before any caller is answered. The returned [`AuditHead`] is
/// the acknowledgement: that record survives a crash.
///
/// **Group commit.** Appends from threads of one process that arrive while
/// a write is in progress are written together by the next one: one lock,
/// one read of the tail, one write and one fsync for the whole batch (at
/// most [`AuditLog::MAX_BATCH`] records), each caller answered with its own
/// record's head only after that fsync. A lone append is written at once,
/// as before; the file format and the chain are the same either way. If a
/// batch cannot be written, every caller in it gets an error (and withholds
/// what it was about to release). Handles made by cloning share one queue;
/// separate [`AuditLog::open`]s of one file are still safe (the OS lock
/// orders them) but batch separately.
///
/// A crash in the middle of an append can leave an incomplete last line
/// (never acknowledged); the next [`AuditLog::open`] or append removes it.
#[derive(Clone)]
pub struct AuditLog {
    path: PathBuf,
    lock_path: PathBuf,
    clock: fn() -> u64,
    group: Arc<Group>,
}

/// The appends of one process waiting for a write, and their answers.
#[derive(Default)]
struct Group {
    state: Mutex<GroupState>,
    written: Condvar,
    syncs: AtomicU64,
}

#[derive(Default)]
struct GroupState {
    /// Events not yet taken by a writer, with their tickets, oldest first.
    queue: Vec<(u64, AuditEvent)>,
    /// Answers for tickets whose batch was written (or failed).
    answers: HashMap<u64, Result<AuditHead, Error>>,
    next_ticket: u64,
    /// Whether a thread is writing a batch now.
    writing: bool,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        // Every change to the state is complete before the lock is released.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Clears the writer flag and wakes the waiters when a writer is done,
/// however it leaves (so that a failed writer never strands the queue).
struct Writing<'a>(&'a Group);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.lock().writing = false;
        self.0.written.notify_all();
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The last complete record of a log file.
struct Tail {
    head: AuditHead,
    /// Length of the file up to and including the last newline.
    complete_len: u64,
}

impl AuditLog {
    /// Opens (creating if missing, mode `0o600`; its directory `0o700`) the
    /// log at `path`, with the system clock.
    ///
    /// Checks the last record (its hash, not the whole chain: that is
    /// [`AuditLog::verify_file`]) and removes an incomplete last line left by
    /// a crash.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::MalformedRecord`] or
    /// [`Error::AuditChainBroken`] if the last record is not valid.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with_clock(path, system_time_ms)
    }

    /// As [`AuditLog::open`], with `clock` giving the time of new records in
    /// milliseconds since the UNIX epoch (tests and test vectors use a fixed
    /// clock).
    ///
    /// # Errors
    /// As [`AuditLog::open`].
    pub fn open_with_clock(path: impl AsRef<Path>, clock: fn() -> u64) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fsutil::create_private_dir(dir)?;
        }
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let log = Self {
            path,
            lock_path: lock_path.into(),
            clock,
            group: Arc::default(),
        };
        let _lock = fsutil::DirLock::lock(&log.lock_path)?;
        let (mut file, created) = log.open_file()?;
        log.recover(&mut file, created)?;
        Ok(log)
    }

    /// The log file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the log file for reading and appending; says whether it was
    /// created.
    fn open_file(&self) -> Result<(File, bool), Error> {
        let existed = self.path.exists();
        let file = fsutil::open_append(&self.path)?;
        Ok((file, !existed))
    }

    /// Reads the tail under the lock, cuts an incomplete last line, and
    /// makes a newly created file's directory entry durable.
    fn recover(&self, file: &mut File, created: bool) -> Result<AuditHead, Error> {
        let tail = read_tail(file)?;
        if tail.complete_len < file.metadata()?.len() {
            // An append that crashed before finishing its line: it was never
            // acknowledged, so nothing acknowledged is lost by cutting it.
            file.set_len(tail.complete_len)?;
            file.sync_all()?;
        }
        if created {
            file.sync_all()?;
            fsutil::sync_dir(fsutil::parent_dir(&self.path))?;
        }
        Ok(tail.head)
    }

    /// The head of the log as it is on disk now.
    ///
    /// # Errors
    /// As [`AuditLog::open`].
    pub fn head(&self) -> Result<AuditHead, Error> {
        let _lock = fsutil::DirLock::lock(&self.lock_path)?;
        let (mut file, created) = self.open_file()?;
        self.recover(&mut file, created)
    }

    /// The most records one write takes from the queue.
    pub const MAX_BATCH: usize = 1024;

    /// Appends `event` and returns the new head once the record is on disk
    /// (see the type's docs for how concurrent appends are grouped).
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::MalformedRecord`] or
    /// [`Error::AuditChainBroken`] if the log's last record is not valid
    /// (nothing is appended to a log whose tail is damaged). When a batch
    /// fails, one of its callers gets that error and the others an
    /// [`Error::Io`] of the same kind (`Other` for a non-I/O error).
    pub fn append(&self, event: AuditEvent) -> Result<AuditHead, Error> {
        let group = &*self.group;
        let mut state = group.lock();
        let ticket = state.next_ticket;
        state.next_ticket = state.next_ticket.wrapping_add(1);
        state.queue.push((ticket, event));
        loop {
            if let Some(answer) = state.answers.remove(&ticket) {
                return answer;
            }
            if state.writing {
                state = group
                    .written
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Nobody is writing and our answer is not in: our event is
            // still queued. Write everything queued, ours included.
            state.writing = true;
            let take = state.queue.len().min(Self::MAX_BATCH);
            let batch: Vec<(u64, AuditEvent)> = state.queue.drain(..take).collect();
            drop(state);
            let writing = Writing(group);
            let (tickets, events): (Vec<u64>, Vec<AuditEvent>) = batch.into_iter().unzip();
            let answers = self.write_batch(events);
            state = group.lock();
            for (t, answer) in tickets.into_iter().zip(answers) {
                state.answers.insert(t, answer);
            }
            drop(state);
            drop(writing);
            state = group.lock();
        }
    }

    /// How many times this log (this handle and its clones) has fsynced a
    /// batch of records: with [`AuditLog::append`] calls counted
    /// separately, the ratio is the average batch size.
    #[must_use]
    pub fn syncs(&self) -> u64 {
        self.group.syncs.load(Ordering::Relaxed)
    }

    /// Writes `events` as consecutive records under the OS lock with one
    /// fsync; one answer per event, in order.
    fn write_batch(&self, events: Vec<AuditEvent>) -> Vec<Result<AuditHead, Error>> {
        let count = events.len();
        match self.write_records(events) {
            Ok(heads) => heads.into_iter().map(Ok).collect(),
            Err(e) => {
                let kind = match &e {
                    Error::Io(io) => io.kind(),
                    _ => io::ErrorKind::Other,
                };
                let mut answers: Vec<Result<AuditHead, Error>> = (1..count)
                    .map(|_| {
                        Err(Error::Io(io::Error::new(
                            kind,
                            "the audit batch holding this record was not written",
                        )))
                    })
                    .collect();
                // The last caller in the batch is as good as any to get the
                // original error; every one of them fails.
                answers.push(Err(e));
                answers
            }
        }
    }

    fn write_records(&self, events: Vec<AuditEvent>) -> Result<Vec<AuditHead>, Error> {
        let _lock = fsutil::DirLock::lock(&self.lock_path)?;
        let (mut file, created) = self.open_file()?;
        let mut prev = self.recover(&mut file, created)?;
        let mut heads = Vec::with_capacity(events.len());
        let mut lines = String::new();
        for event in events {
            let record = AuditRecord::seal(&prev, (self.clock)(), event)?;
            lines.push_str(&record.to_line()?);
            lines.push('\n');
            prev = record.head();
            heads.push(prev);
        }
        // The file is opened in append mode: the lines go at the end, and
        // the lock keeps other appenders out until they are synced.
        file.write_all(lines.as_bytes())?;
        file.sync_all()?;
        self.group.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(heads)
    }

    /// Verifies the whole file with [`AuditLog::verify`].
    ///
    /// # Errors
    /// As [`AuditLog::verify`].
    pub fn verify_file(&self) -> Result<AuditHead, Error> {
        Self::verify(io::BufReader::new(File::open(&self.path)?))
    }

    /// Verifies a log read from `reader` and returns its head.
    ///
    /// Every line must be a record in canonical form; sequence numbers must
    /// run 1, 2, 3, … with no gap; each `prev` must be the hash of the record
    /// before (zeros for the first); each `hash` must be the hash of its
    /// record. So any edited, dropped, inserted, duplicated or reordered
    /// record is found, reported as [`Error::AuditChainBroken`] with the
    /// sequence number the first bad line should have had.
    ///
    /// Records cut off the end cannot be found this way (a prefix of a log
    /// is a valid log): use [`AuditLog::verify_against`] with an anchored
    /// head.
    ///
    /// # Errors
    /// [`Error::AuditChainBroken`]; [`Error::Io`] from the reader.
    pub fn verify<R: BufRead>(reader: R) -> Result<AuditHead, Error> {
        verify_lines(reader, None)
    }

    /// As [`AuditLog::verify`], and the log must contain the record `expected`
    /// names (same sequence number and hash): a log that ends before it was
    /// cut, one with a different record there was rewritten. Records after
    /// it are fine (the log has grown since the head was anchored).
    ///
    /// # Errors
    /// [`Error::AuditChainBroken`]; [`Error::Io`] from the reader.
    pub fn verify_against<R: BufRead>(reader: R, expected: &AuditHead) -> Result<AuditHead, Error> {
        verify_lines(reader, Some(expected))
    }
}

impl AuditSink for AuditLog {
    fn append(&self, event: AuditEvent) -> Pending<'_, Result<AuditHead, Error>> {
        Pending::ready(AuditLog::append(self, event))
    }

    /// Reads the whole file through, checking the chain as
    /// [`AuditLog::verify`] does (a broken chain is an error, not a
    /// shorter answer). A torn last line (an append that never finished)
    /// is not a record and is skipped.
    fn wallet_records<'a>(
        &'a self,
        wallet: &'a str,
        since_ms: u64,
    ) -> Pending<'a, Result<Vec<AuditRecord>, Error>> {
        Pending::ready((|| {
            let mut verifier = ChainVerifier::new();
            let mut records = Vec::new();
            let text = std::fs::read(&self.path)?;
            let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            for line in text
                .get(..complete)
                .unwrap_or_default()
                .split(|&b| b == b'\n')
            {
                if line.is_empty() {
                    continue;
                }
                records.push(verifier.push_bytes(line)?);
            }
            Ok(of_wallet(records, wallet, since_ms))
        })())
    }
}

/// Finds the last complete line of the file and the head it records.
fn read_tail(file: &mut File) -> Result<Tail, Error> {
    let len = file.metadata()?.len();
    let mut window: u64 = 4096;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        // Sized up front: `read_to_end` from an empty Vec reads in growing
        // steps (32, 32, 64, ... bytes), one system call each.
        let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
        Read::by_ref(file).take(len - start).read_to_end(&mut buf)?;
        let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
            if start == 0 {
                // No complete line at all: an empty log (or a torn first line).
                return Ok(Tail {
                    head: AuditHead::GENESIS,
                    complete_len: 0,
                });
            }
            window = window.saturating_mul(2);
            continue;
        };
        let line_start = match buf[..last_nl].iter().rposition(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if start == 0 => 0,
            None => {
                window = window.saturating_mul(2);
                continue;
            }
        };
        // `last_nl` indexes `buf`, which is at most `len - start` bytes long.
        let complete_len = start + last_nl as u64 + 1;
        let line = std::str::from_utf8(&buf[line_start..last_nl])
            .map_err(|_| Error::MalformedRecord("last audit record is not UTF-8"))?;
        let record = AuditRecord::from_line(line)?;
        if !record.hash_is_valid() {
            return Err(Error::AuditChainBroken {
                seq: record.seq,
                reason: "the last record's hash does not match its contents",
            });
        }
        return Ok(Tail {
            head: record.head(),
            complete_len,
        });
    }
}

/// Checks one line (without its newline) as the record after `prev`.
fn check_line(line: &[u8], prev: &AuditHead) -> Result<AuditRecord, &'static str> {
    let line = std::str::from_utf8(line).map_err(|_| "record is not UTF-8")?;
    let record =
        AuditRecord::from_line(line).map_err(|_| "record is not a well-formed audit record")?;
    if Some(record.seq) != prev.seq.checked_add(1) {
        return Err("sequence number is not the next one (record dropped, inserted or moved)");
    }
    if record.prev != prev.hash {
        return Err("prev is not the previous record's hash");
    }
    if !record.hash_is_valid() {
        return Err("hash does not match the record's contents");
    }
    // The hash covers the decoded record; this makes the bytes themselves
    // canonical too (no duplicate keys, reordered keys, escapes or spaces
    // that another JSON reader could read differently).
    if record.to_line().ok().as_deref() != Some(line) {
        return Err("record is not in canonical form");
    }
    Ok(record)
}

fn verify_lines<R: BufRead>(mut reader: R, anchor: Option<&AuditHead>) -> Result<AuditHead, Error> {
    let mut chain = match anchor {
        Some(a) => ChainVerifier::anchored(*a)?,
        None => ChainVerifier::new(),
    };
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        if buf.pop() != Some(b'\n') {
            return Err(Error::AuditChainBroken {
                seq: chain.head().seq.saturating_add(1),
                reason: "last record is incomplete (no final newline)",
            });
        }
        chain.push_bytes(&buf)?;
    }
    chain.finish()
}

/// Checks one chain of records in order, one at a time: the checks of
/// [`AuditLog::verify`] (each record the next sequence number, chained to
/// the one before, its hash its contents' hash, its line canonical) for
/// records kept somewhere other than a file (a database, records shipped
/// off the machine). `AuditLog::verify` is this over the file's lines.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: AuditHead,
    anchor: Option<AuditHead>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    /// A verifier for a chain from its first record.
    #[must_use]
    pub fn new() -> Self {
        Self {
            head: AuditHead::GENESIS,
            anchor: None,
        }
    }

    /// A verifier that also checks the chain against `anchor`, a head
    /// recorded earlier (e.g. in a signed checkpoint): the record at
    /// `anchor.seq` must have `anchor.hash`, and [`ChainVerifier::finish`]
    /// fails if the chain ends before it (records cut off the end).
    ///
    /// # Errors
    /// [`Error::AuditChainBroken`] for an anchor at 0 with a non-zero hash.
    pub fn anchored(anchor: AuditHead) -> Result<Self, Error> {
        if anchor.seq == 0 && anchor.hash != [0; 32] {
            return Err(Error::AuditChainBroken {
                seq: 0,
                reason: "anchored head 0 must have a zero hash",
            });
        }
        Ok(Self {
            head: AuditHead::GENESIS,
            anchor: Some(anchor),
        })
    }

    /// Checks the next record, given as its line (without the newline),
    /// and returns it decoded.
    ///
    /// # Errors
    /// [`Error::AuditChainBroken`] naming the record's expected sequence
    /// number and what is wrong with it.
    pub fn push_line(&mut self, line: &str) -> Result<AuditRecord, Error> {
        self.push_bytes(line.as_bytes())
    }

    fn push_bytes(&mut self, line: &[u8]) -> Result<AuditRecord, Error> {
        let seq = self.head.seq.saturating_add(1);
        let broken = |reason| Error::AuditChainBroken { seq, reason };
        let record = check_line(line, &self.head).map_err(broken)?;
        self.head = record.head();
        if let Some(a) = &self.anchor
            && a.seq == seq
            && a.hash != self.head.hash
        {
            return Err(broken(
                "record differs from the anchored head (log rewritten)",
            ));
        }
        Ok(record)
    }

    /// The head of the records checked so far.
    #[must_use]
    pub fn head(&self) -> AuditHead {
        self.head
    }

    /// Ends the chain: its head, if it reaches the anchor (if any).
    ///
    /// # Errors
    /// [`Error::AuditChainBroken`] if the chain ends before the anchored
    /// head.
    pub fn finish(self) -> Result<AuditHead, Error> {
        if self.anchor.is_some_and(|a| a.seq > self.head.seq) {
            return Err(Error::AuditChainBroken {
                seq: self.head.seq.saturating_add(1),
                reason: "log ends before the anchored head (records cut off the end)",
            });
        }
        Ok(self.head)
    }
}

/// An audit log in memory, for tests and embedding. Same records and chain
/// as [`AuditLog`]; [`MemoryAuditLog::to_jsonl`] gives the file form. A
/// service that ships records elsewhere takes them with
/// [`MemoryAuditLog::drain`]; the chain goes on from the last one.
pub struct MemoryAuditLog {
    clock: fn() -> u64,
    inner: Mutex<Kept>,
}

/// The records kept since the last drain, and the head of the whole chain.
struct Kept {
    records: Vec<AuditRecord>,
    head: AuditHead,
}

impl Default for MemoryAuditLog {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryAuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAuditLog")
            .field("head", &self.head())
            .finish_non_exhaustive()
    }
}

impl MemoryAuditLog {
    /// An empty log with the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::with_clock(system_time_ms)
    }

    /// An empty log with `clock` (milliseconds since the UNIX epoch).
    #[must_use]
    pub fn with_clock(clock: fn() -> u64) -> Self {
        Self {
            clock,
            inner: Mutex::new(Kept {
                records: Vec::new(),
                head: AuditHead::GENESIS,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // A poisoned lock is safe to reuse: a record and its head are
        // stored together after the record is complete.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `event` and returns the new head.
    ///
    /// # Errors
    /// [`Error::AuditChainBroken`] only if the sequence number would
    /// overflow.
    pub fn append(&self, event: AuditEvent) -> Result<AuditHead, Error> {
        let mut kept = self.lock();
        let record = AuditRecord::seal(&kept.head, (self.clock)(), event)?;
        let head = record.head();
        kept.records.push(record);
        kept.head = head;
        Ok(head)
    }

    /// The current head (of the whole chain, drained records included).
    #[must_use]
    pub fn head(&self) -> AuditHead {
        self.lock().head
    }

    /// A copy of the records kept since the last [`MemoryAuditLog::drain`].
    #[must_use]
    pub fn records(&self) -> Vec<AuditRecord> {
        self.lock().records.clone()
    }

    /// Removes and returns the records kept so far, oldest first. The
    /// chain continues: the next record links to the last one returned, so
    /// the drained batches written one after another (as JSON Lines) verify
    /// as one log ([`AuditLog::verify`]).
    #[must_use]
    pub fn drain(&self) -> Vec<AuditRecord> {
        let mut kept = self.lock();
        let capacity = kept.records.capacity();
        std::mem::replace(&mut kept.records, Vec::with_capacity(capacity))
    }

    /// The records kept since the last drain in file form (JSON Lines,
    /// each line ending in `\n`).
    ///
    /// # Errors
    /// As [`AuditRecord::to_line`].
    pub fn to_jsonl(&self) -> Result<String, Error> {
        let mut out = String::new();
        for r in &self.lock().records {
            out.push_str(&r.to_line()?);
            out.push('\n');
        }
        Ok(out)
    }
}

impl AuditSink for MemoryAuditLog {
    fn append(&self, event: AuditEvent) -> Pending<'_, Result<AuditHead, Error>> {
        Pending::ready(MemoryAuditLog::append(self, event))
    }

    /// `Some`: a [`crate::MemoryStore`] made with this log records into it.
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn wallet_records<'a>(
        &'a self,
        wallet: &'a str,
        since_ms: u64,
    ) -> Pending<'a, Result<Vec<AuditRecord>, Error>> {
        Pending::ready(Ok(of_wallet(self.records(), wallet, since_ms)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn fixed_clock() -> u64 {
        1_767_225_600_000
    }

    fn sample(i: u32) -> AuditEvent {
        AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success)
            .with_wallet("alice@example.com")
            .with_index(i)
            .with_digest(&Digest32([u8::try_from(i % 256).unwrap(); 32]))
            .with_backend("software")
    }

    fn log_with(n: u32) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open_with_clock(dir.path().join("audit.jsonl"), fixed_clock).unwrap();
        for i in 0..n {
            log.append(sample(i)).unwrap();
        }
        (dir, log)
    }

    fn lines(log: &AuditLog) -> Vec<String> {
        std::fs::read_to_string(log.path())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn chain_verifier_checks_records_one_at_a_time_like_the_file_verifier() {
        let log = MemoryAuditLog::with_clock(fixed_clock);
        for i in 0..4 {
            log.append(sample(i)).unwrap();
        }
        let lines: Vec<String> = log.records().iter().map(|r| r.to_line().unwrap()).collect();
        let mut v = ChainVerifier::new();
        for line in &lines {
            v.push_line(line).unwrap();
        }
        assert_eq!(v.clone().finish().unwrap(), log.head());
        // Anchored past the end: records were cut off.
        let mut short = ChainVerifier::anchored(log.head()).unwrap();
        for line in &lines[..3] {
            short.push_line(line).unwrap();
        }
        assert_eq!(broken_at(short.finish()), 4);
        // A record out of place is named by the sequence number expected.
        let mut swapped = ChainVerifier::new();
        swapped.push_line(&lines[0]).unwrap();
        assert!(matches!(
            swapped.push_line(&lines[2]),
            Err(Error::AuditChainBroken { seq: 2, .. })
        ));
    }

    fn verify_lines_of(lines: &[String]) -> Result<AuditHead, Error> {
        let mut text = lines.join("\n");
        if !lines.is_empty() {
            text.push('\n');
        }
        AuditLog::verify(text.as_bytes())
    }

    fn broken_at(r: Result<AuditHead, Error>) -> u64 {
        match r {
            Err(Error::AuditChainBroken { seq, .. }) => seq,
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    /// The canonical encoding of `SPEC.md` written out plainly, one
    /// `update` per piece: the staged hasher must give the same digest.
    fn reference_hash(seq: u64, time: u64, prev: &[u8; 32], event: &AuditEvent) -> [u8; 32] {
        fn put_str(h: &mut Sha256, s: &str) {
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
        let mut h = Sha256::new();
        h.update(b"custody/audit/v1\0");
        h.update(seq.to_be_bytes());
        h.update(time.to_be_bytes());
        h.update(prev);
        put_str(&mut h, event.op().as_str());
        put_str(&mut h, event.outcome().as_str());
        let fields: Vec<(&str, &str)> = event.fields().collect();
        h.update((fields.len() as u64).to_be_bytes());
        for (name, value) in fields {
            put_str(&mut h, name);
            put_str(&mut h, value);
        }
        h.finalize().into()
    }

    proptest::proptest! {
        #[test]
        fn staged_hash_is_the_canonical_hash(
            seq in proptest::prelude::any::<u64>(),
            time in proptest::prelude::any::<u64>(),
            prev in proptest::prelude::any::<[u8; 32]>(),
            fields in proptest::collection::vec(("[a-z][a-z0-9]{0,12}", "\\PC{0,400}"), 0..12),
        ) {
            let mut event = AuditEvent::new(AuditOp::SIGN, AuditOutcome::Denied);
            for (name, value) in fields {
                if check_field_name(&name).is_ok() {
                    event = event.with_field(&name, value).unwrap();
                }
            }
            proptest::prop_assert_eq!(
                chain_hash(seq, time, &prev, &event),
                reference_hash(seq, time, &prev, &event)
            );
        }
    }

    proptest::proptest! {
        /// The packed fields behave as the sorted map they stand for:
        /// order, replacement, lookup, equality and the JSON round trip.
        #[test]
        fn fields_behave_as_a_sorted_map(
            sets in proptest::collection::vec(("[a-e][a-e0-9-]{0,3}[a-e]", "\\PC{0,40}"), 0..20),
        ) {
            let mut model = BTreeMap::new();
            let mut event = AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success);
            let mut fresh = AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success);
            for (name, value) in &sets {
                if check_field_name(name).is_err() {
                    continue;
                }
                model.insert(name.clone(), value.clone());
                event = event.with_field(name, value.clone()).unwrap();
            }
            // The same map built in order, without replacements.
            for (name, value) in &model {
                fresh = fresh.with_field(name, value.clone()).unwrap();
            }
            let got: Vec<(&str, &str)> = event.fields().collect();
            let want: Vec<(&str, &str)> =
                model.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            proptest::prop_assert_eq!(&got, &want);
            for (name, value) in &model {
                proptest::prop_assert_eq!(event.field(name), Some(value.as_str()));
            }
            proptest::prop_assert_eq!(event.field("zz"), None);
            proptest::prop_assert_eq!(&event, &fresh);
            proptest::prop_assert_eq!(format!("{event:?}"), format!("{fresh:?}"));
            let json = serde_json::to_string(&event).unwrap();
            let back: AuditEvent = serde_json::from_str(&json).unwrap();
            proptest::prop_assert_eq!(&back, &event);
            proptest::prop_assert_eq!(serde_json::to_string(&back).unwrap(), json);
        }
    }

    proptest::proptest! {
        /// The one-pass check against the rule written plainly.
        #[test]
        fn kebab_check_is_the_rule(s in "[a-c0-9_A-]{0,6}|\\PC{0,70}|[a-z-]{60,70}") {
            let rule = !s.is_empty()
                && s.len() <= MAX_NAME_BYTES
                && !s.starts_with('-')
                && !s.ends_with('-')
                && !s.contains("--")
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            proptest::prop_assert_eq!(is_kebab(&s), rule);
        }

        #[test]
        fn name_order_is_str_order(a in "\\PC{0,12}", b in "\\PC{0,12}") {
            proptest::prop_assert_eq!(name_order(&a, &b), a.cmp(&b));
        }
    }

    #[test]
    fn builders_write_the_values_they_name() {
        let path: DerivationPath = "m/44'/60'/0'/0/7".parse().unwrap();
        let e = AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success)
            .with_index(u32::MAX)
            .with_path(&path)
            .with_digest(&Digest32([0xab; 32]))
            .with_wallet("Zoë 🦀")
            .with_index(0)
            .with_detail("why");
        assert_eq!(e.field("index"), Some("0"));
        assert_eq!(e.field("path"), Some("m/44'/60'/0'/0/7"));
        assert_eq!(e.field("digest"), Some(&*"ab".repeat(32)));
        assert_eq!(e.field("wallet"), Some("Zoë 🦀"));
        let names: Vec<&str> = e.fields().map(|(k, _)| k).collect();
        assert_eq!(names, ["detail", "digest", "index", "path", "wallet"]);
        let big = AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success).with_index(u32::MAX);
        assert_eq!(big.field("index"), Some("4294967295"));
        assert_eq!(
            format!("{big:?}"),
            r#"AuditEvent { op: AuditOp("sign"), outcome: Success, fields: {"index": "4294967295"} }"#
        );
    }

    #[test]
    fn staged_hash_handles_pieces_around_the_buffer_size() {
        for len in [0, 1, 400, 431, 432, 433, 511, 512, 513, 1024, 5000] {
            let event = sample(1)
                .with_field("intent", "x".repeat(len))
                .unwrap()
                .with_field("zz", "y".repeat(len / 2 + 1))
                .unwrap();
            assert_eq!(
                chain_hash(7, 8, &[3; 32], &event),
                reference_hash(7, 8, &[3; 32], &event),
                "{len}"
            );
        }
    }

    #[test]
    fn known_and_other_field_names_behave_alike() {
        let a = AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success)
            .with_field("intent", "transaction")
            .unwrap()
            .with_field("my-field", "1")
            .unwrap();
        assert_eq!(a.field("intent"), Some("transaction"));
        assert_eq!(a.field("my-field"), Some("1"));
        let names: Vec<&str> = a.fields().map(|(k, _)| k).collect();
        assert_eq!(names, ["intent", "my-field"]);
        // A parsed event (owned names) equals a built one (borrowed names).
        let mem = MemoryAuditLog::with_clock(fixed_clock);
        mem.append(a.clone()).unwrap();
        let line = mem.to_jsonl().unwrap();
        assert_eq!(AuditRecord::from_line(line.trim_end()).unwrap().event(), &a);
        assert!(line.contains(
            r#""event":{"op":"sign","outcome":"success","intent":"transaction","my-field":"1"}"#
        ));
    }

    #[test]
    fn op_names_are_kebab_case() {
        for op in [
            AuditOp::SIGN,
            AuditOp::UNWRAP,
            AuditOp::ENROL,
            AuditOp::IMPORT,
            AuditOp::EXPORT,
            AuditOp::ROTATE,
            AuditOp::TOTP_VERIFY,
        ] {
            assert_eq!(AuditOp::new(op.as_str()).unwrap(), op);
        }
        for good in ["a", "jwt-sign", "x9", &"a".repeat(64)] {
            assert!(AuditOp::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a--b",
            "A",
            "a_b",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(AuditOp::new(bad), Err(Error::InvalidAuditEvent(_))),
                "{bad}"
            );
        }
        let e = AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success);
        for bad in ["op", "outcome", "Wallet", "", "a.b"] {
            assert!(matches!(
                e.clone().with_field(bad, "x"),
                Err(Error::InvalidAuditEvent(_))
            ));
        }
    }

    #[test]
    fn record_json_holds_exactly_the_fields_given() {
        let mem = MemoryAuditLog::with_clock(fixed_clock);
        let e = AuditEvent::new(AuditOp::TOTP_VERIFY, AuditOutcome::Denied)
            .with_wallet("bob")
            .with_detail("code replayed");
        mem.append(e.clone()).unwrap();
        let jsonl = mem.to_jsonl().unwrap();
        let value: serde_json::Value = serde_json::from_str(jsonl.trim_end()).unwrap();
        let obj = value.as_object().unwrap();
        // Sorted: serde_json keeps document order when another crate in
        // the build switches on its `preserve_order` feature.
        let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["event", "hash", "prev", "seq", "time"]);
        let event = obj["event"].as_object().unwrap();
        let mut fields: Vec<_> = event
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            [
                ("detail", "code replayed"),
                ("op", "totp-verify"),
                ("outcome", "denied"),
                ("wallet", "bob")
            ]
        );
        // And the line reads back as the same event.
        let record = AuditRecord::from_line(jsonl.trim_end()).unwrap();
        assert_eq!(record.event(), &e);
        assert_eq!(record.event().field("wallet"), Some("bob"));
        assert_eq!(record.seq(), 1);
        assert_eq!(record.time_ms(), fixed_clock());
        assert_eq!(record.prev(), &[0; 32]);
    }

    #[test]
    fn append_then_verify() {
        let (_dir, log) = log_with(5);
        let head = log.head().unwrap();
        assert_eq!(head.seq, 5);
        assert_eq!(log.verify_file().unwrap(), head);
        let text = std::fs::read(log.path()).unwrap();
        assert_eq!(
            AuditLog::verify_against(text.as_slice(), &head).unwrap(),
            head
        );
        // An empty log verifies to GENESIS.
        assert_eq!(AuditLog::verify(&b""[..]).unwrap(), AuditHead::GENESIS);
    }

    #[test]
    fn memory_and_file_logs_write_the_same_bytes() {
        let (_dir, log) = log_with(4);
        let mem = MemoryAuditLog::with_clock(fixed_clock);
        for i in 0..4 {
            mem.append(sample(i)).unwrap();
        }
        assert_eq!(
            mem.to_jsonl().unwrap(),
            std::fs::read_to_string(log.path()).unwrap()
        );
        assert_eq!(mem.head(), log.head().unwrap());
    }

    #[test]
    fn reopening_continues_the_chain() {
        let (_dir, log) = log_with(3);
        let again = AuditLog::open_with_clock(log.path(), fixed_clock).unwrap();
        assert_eq!(again.append(sample(9)).unwrap().seq, 4);
        // The first handle sees what the second appended.
        assert_eq!(log.append(sample(10)).unwrap().seq, 5);
        assert_eq!(log.verify_file().unwrap().seq, 5);
    }

    #[test]
    fn any_edited_byte_is_found_at_its_record() {
        let (_dir, log) = log_with(4);
        let original = lines(&log);
        for (i, line) in original.iter().enumerate() {
            let seq = i as u64 + 1;
            for pos in 0..line.len() {
                let mut bytes = line.clone().into_bytes();
                // Flip a bit that keeps the byte ASCII (so the line stays
                // mostly text): every position must still be caught.
                bytes[pos] ^= 0x01;
                let mut edited = original.clone();
                edited[i] = String::from_utf8(bytes).unwrap();
                assert_eq!(
                    broken_at(verify_lines_of(&edited)),
                    seq,
                    "line {seq} byte {pos}"
                );
            }
        }
    }

    #[test]
    fn edited_event_field_is_found_at_its_record() {
        let (_dir, log) = log_with(4);
        let mut l = lines(&log);
        l[2] = l[2].replace("alice@example.com", "alice@example.org");
        assert_eq!(broken_at(verify_lines_of(&l)), 3);
    }

    #[test]
    fn dropped_inserted_moved_records_are_found() {
        let (_dir, log) = log_with(5);
        let l = lines(&log);
        // Drop a middle record: seq 3 is missing, record 4 is found where 3 should be.
        let mut d = l.clone();
        d.remove(2);
        assert_eq!(broken_at(verify_lines_of(&d)), 3);
        // Drop the first.
        let mut d = l.clone();
        d.remove(0);
        assert_eq!(broken_at(verify_lines_of(&d)), 1);
        // Swap two.
        let mut d = l.clone();
        d.swap(1, 2);
        assert_eq!(broken_at(verify_lines_of(&d)), 2);
        // Duplicate one.
        let mut d = l.clone();
        d.insert(2, l[2].clone());
        assert_eq!(broken_at(verify_lines_of(&d)), 4);
        // Insert a forged record (valid on its own, chained to nothing).
        let mem = MemoryAuditLog::with_clock(fixed_clock);
        mem.append(sample(7)).unwrap();
        let mut d = l.clone();
        d.insert(1, mem.to_jsonl().unwrap().trim_end().to_owned());
        assert_eq!(broken_at(verify_lines_of(&d)), 2);
        // Renumbered and re-chained but not re-hashed.
        let mut d = l.clone();
        d[1] = d[1].replacen("\"seq\":2", "\"seq\":7", 1);
        assert_eq!(broken_at(verify_lines_of(&d)), 2);
        // A blank line, a torn last line.
        let mut d = l.clone();
        d.insert(3, String::new());
        assert_eq!(broken_at(verify_lines_of(&d)), 4);
        let mut text = l.join("\n");
        text.push('\n');
        text.push_str(&l[0][..20]);
        assert_eq!(broken_at(AuditLog::verify(text.as_bytes())), 6);
    }

    #[test]
    fn non_canonical_lines_are_rejected() {
        let (_dir, log) = log_with(2);
        let l = lines(&log);
        let hash_hex = hex::encode(AuditRecord::from_line(&l[0]).unwrap().hash());
        for edited in [
            // Same JSON value, different bytes.
            l[0].replacen("{\"seq\"", "{ \"seq\"", 1),
            l[0].replacen("\"op\":\"sign\"", "\"op\":\"\\u0073ign\"", 1),
            // A duplicate key some readers take first and some take last.
            l[0].replacen("\"wallet\":", "\"wallet\":\"mallory\",\"wallet\":", 1),
            // Upper-case hex.
            l[0].replace(&hash_hex, &hash_hex.to_uppercase()),
        ] {
            assert_ne!(edited, l[0]);
            let d = vec![edited, l[1].clone()];
            assert_eq!(broken_at(verify_lines_of(&d)), 1, "{}", d[0]);
        }
    }

    #[test]
    fn verify_against_catches_a_cut_tail_and_a_rewrite() {
        let (_dir, log) = log_with(5);
        let l = lines(&log);
        let head = log.head().unwrap();
        // Cut the last two records: still a valid chain...
        let cut = &l[..3];
        assert_eq!(verify_lines_of(cut).unwrap().seq, 3);
        // ...but not against the anchored head.
        let mut text = cut.join("\n");
        text.push('\n');
        assert_eq!(
            broken_at(AuditLog::verify_against(text.as_bytes(), &head)),
            4
        );
        // An older anchor still passes on the grown log.
        let mid = verify_lines_of(&l[..2]).unwrap();
        let full = std::fs::read(log.path()).unwrap();
        assert_eq!(
            AuditLog::verify_against(full.as_slice(), &mid).unwrap(),
            head
        );
        // A whole log rebuilt from record 2 on (fresh hashes) fails the anchor.
        let forged = MemoryAuditLog::with_clock(fixed_clock);
        for i in [0, 5, 6] {
            forged.append(sample(i)).unwrap();
        }
        let forged = forged.to_jsonl().unwrap();
        assert_eq!(AuditLog::verify(forged.as_bytes()).unwrap().seq, 3);
        assert_eq!(
            broken_at(AuditLog::verify_against(forged.as_bytes(), &mid)),
            2
        );
        // A bogus genesis anchor.
        let bogus = AuditHead {
            seq: 0,
            hash: [1; 32],
        };
        assert_eq!(
            broken_at(AuditLog::verify_against(full.as_slice(), &bogus)),
            0
        );
        assert_eq!(
            AuditLog::verify_against(full.as_slice(), &AuditHead::GENESIS).unwrap(),
            head
        );
    }

    #[test]
    fn concurrent_appends_form_one_chain() {
        let (_dir, log) = log_with(0);
        let log = Arc::new(log);
        let other = Arc::new(AuditLog::open(log.path()).unwrap());
        let threads: u32 = 6;
        let per_thread: u32 = 15;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                // Half the threads use a second handle, like another process.
                let log: Arc<dyn AuditSink> = if t % 2 == 0 {
                    log.clone()
                } else {
                    other.clone()
                };
                std::thread::spawn(move || {
                    let mut seqs = Vec::new();
                    for i in 0..per_thread {
                        seqs.push(log.append(sample(t * 100 + i)).wait().unwrap().seq);
                    }
                    seqs
                })
            })
            .collect();
        let mut seqs: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        seqs.sort_unstable();
        let total = u64::from(threads * per_thread);
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
        assert_eq!(log.verify_file().unwrap().seq, total);
    }

    #[test]
    fn concurrent_memory_appends_form_one_chain() {
        let mem = Arc::new(MemoryAuditLog::new());
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let mem = Arc::clone(&mem);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        mem.append(sample(t * 100 + i)).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let head = AuditLog::verify(mem.to_jsonl().unwrap().as_bytes()).unwrap();
        assert_eq!(head.seq, 200);
        assert_eq!(head, mem.head());
    }

    #[test]
    fn a_torn_last_line_is_cut_on_open() {
        let (_dir, log) = log_with(3);
        let good = std::fs::read(log.path()).unwrap();
        let mut torn = good.clone();
        torn.extend_from_slice(b"{\"seq\":4,\"time\":17");
        std::fs::write(log.path(), &torn).unwrap();
        assert_eq!(broken_at(log.verify_file()), 4);
        let reopened = AuditLog::open_with_clock(log.path(), fixed_clock).unwrap();
        assert_eq!(std::fs::read(log.path()).unwrap(), good);
        assert_eq!(reopened.append(sample(3)).unwrap().seq, 4);
        assert_eq!(log.verify_file().unwrap().seq, 4);
        // A torn first line leaves an empty log.
        std::fs::write(log.path(), b"{\"seq\":1").unwrap();
        assert_eq!(log.head().unwrap(), AuditHead::GENESIS);
        assert_eq!(std::fs::read(log.path()).unwrap(), b"");
    }

    #[test]
    fn nothing_is_appended_to_a_damaged_tail() {
        let (_dir, log) = log_with(3);
        let mut l = lines(&log);
        l[2] = l[2].replace("alice@example.com", "eve@example.com");
        std::fs::write(log.path(), l.join("\n") + "\n").unwrap();
        assert!(matches!(
            log.append(sample(3)),
            Err(Error::AuditChainBroken { seq: 3, .. })
        ));
        std::fs::write(log.path(), "not json\n").unwrap();
        assert!(matches!(
            log.append(sample(3)),
            Err(Error::MalformedRecord(_))
        ));
        assert!(matches!(
            AuditLog::open(log.path()),
            Err(Error::MalformedRecord(_))
        ));
    }

    #[test]
    fn tail_is_found_past_the_first_window() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open_with_clock(dir.path().join("a.jsonl"), fixed_clock).unwrap();
        let long = "w".repeat(10_000);
        for i in 0..3 {
            log.append(sample(i).with_wallet(&long)).unwrap();
        }
        assert_eq!(log.head().unwrap().seq, 3);
        assert_eq!(log.append(sample(3)).unwrap().seq, 4);
        assert_eq!(log.verify_file().unwrap().seq, 4);
    }

    #[test]
    fn sinks_are_object_safe() {
        let (_dir, log) = log_with(0);
        let sinks: Vec<Arc<dyn AuditSink>> = vec![Arc::new(MemoryAuditLog::new()), Arc::new(log)];
        for s in &sinks {
            assert_eq!(s.append(sample(0)).wait().unwrap().seq, 1);
        }
    }

    #[test]
    fn head_round_trips_through_json() {
        let (_dir, log) = log_with(2);
        let head = log.head().unwrap();
        let json = serde_json::to_string(&head).unwrap();
        assert_eq!(
            json,
            format!("{{\"seq\":2,\"hash\":\"{}\"}}", hex::encode(head.hash))
        );
        assert_eq!(serde_json::from_str::<AuditHead>(&json).unwrap(), head);
    }

    /// Holds the log's OS lock, starts `n` appending threads, and releases
    /// the lock once the first (the writer, blocked on the lock) has taken
    /// its own event and the other `n - 1` are queued behind it.
    fn appends_behind_a_held_lock(
        log: &AuditLog,
        n: u32,
        before_release: impl FnOnce(),
    ) -> Vec<(u32, Result<AuditHead, Error>)> {
        let held = fsutil::DirLock::lock(&log.lock_path).unwrap();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let log = log.clone();
                    scope.spawn(move || (i, log.append(sample(100 + i))))
                })
                .collect();
            while log.group.lock().queue.len() < n as usize - 1 || !log.group.lock().writing {
                std::thread::yield_now();
            }
            before_release();
            drop(held);
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn concurrent_appends_are_written_in_one_sync_each_acknowledged_by_its_own_head() {
        let (_dir, log) = log_with(2);
        let syncs = log.syncs();
        let results = appends_behind_a_held_lock(&log, 8, || {});
        // The writer's own record, then the seven that queued behind it.
        assert_eq!(log.syncs() - syncs, 2);
        let head = log.verify_file().unwrap();
        assert_eq!(head.seq, 10);
        let text = std::fs::read_to_string(log.path()).unwrap();
        let records: Vec<AuditRecord> = text
            .lines()
            .map(|l| AuditRecord::from_line(l).unwrap())
            .collect();
        let mut seqs = Vec::new();
        for (i, result) in results {
            let acked = result.unwrap();
            let record = &records[acked.seq as usize - 1];
            // Each caller's head is the record holding its own event.
            assert_eq!(record.head(), acked);
            assert_eq!(record.event(), &sample(100 + i));
            seqs.push(acked.seq);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (3..=10).collect::<Vec<u64>>());
    }

    #[test]
    fn a_batch_that_cannot_be_written_fails_every_caller_in_it() {
        let (_dir, log) = log_with(1);
        let results = appends_behind_a_held_lock(&log, 5, || {
            // Damage the tail while they wait: nothing may be appended.
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(log.path())
                .unwrap();
            f.write_all(b"{\"seq\":2}\n").unwrap();
        });
        assert_eq!(results.len(), 5);
        for (_, r) in &results {
            assert!(r.is_err(), "{r:?}");
        }
        let kinds: Vec<&str> = results
            .iter()
            .map(|(_, r)| r.as_ref().unwrap_err().kind())
            .collect();
        // Each of the two batches (the writer's own record, then the four
        // queued behind it) gives its error to one caller, `io` to the rest.
        assert_eq!(
            kinds.iter().filter(|k| **k == "malformed").count(),
            2,
            "{kinds:?}"
        );
        assert!(
            kinds.iter().all(|k| *k == "malformed" || *k == "io"),
            "{kinds:?}"
        );
        assert_eq!(lines(&log).len(), 2, "nothing was appended");
    }

    #[test]
    fn drained_batches_verify_as_one_log() {
        let mem = MemoryAuditLog::with_clock(fixed_clock);
        let mut file = String::new();
        let mut drained = 0;
        for batch in [3, 0, 1, 5] {
            for i in 0..batch {
                mem.append(AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success).with_index(i))
                    .unwrap();
            }
            let before = mem.head();
            let records = mem.drain();
            assert_eq!(records.len(), batch as usize);
            assert!(mem.records().is_empty());
            assert_eq!(mem.head(), before, "draining does not move the head");
            for r in &records {
                file.push_str(&r.to_line().unwrap());
                file.push('\n');
            }
            drained += records.len();
        }
        let head = AuditLog::verify(file.as_bytes()).unwrap();
        assert_eq!(head, mem.head());
        assert_eq!(head.seq, drained as u64);
        // The next record links to the last drained one.
        mem.append(AuditEvent::new(AuditOp::SIGN, AuditOutcome::Denied))
            .unwrap();
        file.push_str(&mem.to_jsonl().unwrap());
        assert_eq!(AuditLog::verify(file.as_bytes()).unwrap(), mem.head());
        // A batch on its own does not verify from genesis.
        assert!(AuditLog::verify(mem.to_jsonl().unwrap().as_bytes()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn log_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, log) = log_with(1);
        let mode = std::fs::metadata(log.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o600, 0, "mode {mode:o}");
    }
}
