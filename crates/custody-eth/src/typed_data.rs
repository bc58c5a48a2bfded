//! EIP-712 typed structured data, read from the JSON that
//! `eth_signTypedData_v4` takes, and its signing digest
//! `keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(message))`. The
//! rules are on [`TypedData`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use custody_core::Digest32;
use serde::de::{Deserialize, Deserializer, Error as _};
use serde::ser::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::json::{self, StrictValue};
use crate::keccak::keccak256_parts;
use crate::{Address, Error, MessageSignature, U256, keccak256};

/// The deepest nesting of structs and array dimensions accepted (the
/// primary type's object counts as one level).
pub const MAX_TYPED_DATA_DEPTH: usize = 64;

/// The domain type's name.
const DOMAIN_TYPE: &str = "EIP712Domain";

/// The EIP-712 domain fields, in their order, with their types.
const DOMAIN_FIELDS: [(&str, &str); 5] = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
];

fn err(what: &'static str, reason: &'static str) -> Error {
    Error::TypedData { what, reason }
}

/// Re-labels an error of the JSON readers as a typed-data error of `what`.
fn relabel(what: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::Json { reason, .. } => err(what, reason),
        Error::Overflow(_) => err(what, "value out of range for its type"),
        Error::InvalidLength { .. } => err(what, "byte string of the wrong length for its type"),
        other => other,
    }
}

/// An atomic type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atomic {
    Bool,
    Address,
    String,
    Bytes,
    FixedBytes(usize),
    Uint(usize),
    Int(usize),
}

/// The base of a member type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Base {
    Atomic(Atomic),
    Struct(String),
}

/// A member type: a base and its array dimensions, as written (the last is
/// the outermost: `T[2][3]` is three arrays of two `T`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldType {
    base: Base,
    dims: Vec<Option<usize>>,
}

/// A struct member.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: String,
    type_name: String,
    ty: FieldType,
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

/// A canonical decimal: digits only, no leading zero.
fn canonical_number(s: &str) -> Option<usize> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `fixedMxN` and `ufixedMxN` (and the bare names): Solidity types EIP-712
/// does not define, so not usable as struct names either.
fn is_fixed_point(s: &str) -> bool {
    s.strip_prefix("ufixed")
        .or_else(|| s.strip_prefix("fixed"))
        .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit() || b == b'x'))
}

fn parse_base(s: &str) -> Result<Base, Error> {
    let malformed = || err("types", "malformed type name");
    let digits = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    Ok(Base::Atomic(match s {
        "bool" => Atomic::Bool,
        "address" => Atomic::Address,
        "string" => Atomic::String,
        "bytes" => Atomic::Bytes,
        "uint" | "int" => {
            return Err(err(
                "types",
                "uint and int must be written with their width (uint256)",
            ));
        }
        "function" | "tuple" => return Err(malformed()),
        _ => {
            if let Some(rest) = s.strip_prefix("bytes")
                && digits(rest)
            {
                match canonical_number(rest) {
                    Some(n @ 1..=32) => Atomic::FixedBytes(n),
                    _ => return Err(malformed()),
                }
            } else if let Some(rest) = s.strip_prefix("uint")
                && digits(rest)
            {
                match canonical_number(rest) {
                    Some(n @ 8..=256) if n % 8 == 0 => Atomic::Uint(n),
                    _ => return Err(malformed()),
                }
            } else if let Some(rest) = s.strip_prefix("int")
                && digits(rest)
            {
                match canonical_number(rest) {
                    Some(n @ 8..=256) if n % 8 == 0 => Atomic::Int(n),
                    _ => return Err(malformed()),
                }
            } else if is_identifier(s) && !is_fixed_point(s) {
                return Ok(Base::Struct(s.to_owned()));
            } else {
                return Err(malformed());
            }
        }
    }))
}

fn parse_type(s: &str) -> Result<FieldType, Error> {
    let malformed = || err("types", "malformed array type");
    let (base, mut rest) = s.split_at(s.find('[').unwrap_or(s.len()));
    let mut dims = Vec::new();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or_else(malformed)?;
        let end = inner.find(']').ok_or_else(malformed)?;
        let (len, tail) = inner.split_at(end);
        dims.push(if len.is_empty() {
            None
        } else {
            Some(canonical_number(len).ok_or_else(malformed)?)
        });
        rest = tail.get(1..).unwrap_or_default();
        if dims.len() > MAX_TYPED_DATA_DEPTH {
            return Err(err("types", "nested too deeply"));
        }
    }
    Ok(FieldType {
        base: parse_base(base)?,
        dims,
    })
}

/// Reads the members of one struct type.
fn parse_members(v: &Value) -> Result<Vec<Member>, Error> {
    let list = v
        .as_array()
        .ok_or(err("types", "a type must be an array of {name, type}"))?;
    let mut names = BTreeSet::new();
    list.iter()
        .map(|m| {
            let obj = m
                .as_object()
                .ok_or(err("types", "a member must be an object {name, type}"))?;
            if obj.len() != 2 {
                return Err(err("types", "a member must have exactly name and type"));
            }
            let name = obj
                .get("name")
                .and_then(Value::as_str)
                .ok_or(err("types", "a member name must be a string"))?;
            let type_name = obj
                .get("type")
                .and_then(Value::as_str)
                .ok_or(err("types", "a member type must be a string"))?;
            if !is_identifier(name) {
                return Err(err("types", "malformed member name"));
            }
            if !names.insert(name) {
                return Err(err("types", "duplicate member name"));
            }
            Ok(Member {
                name: name.to_owned(),
                type_name: type_name.to_owned(),
                ty: parse_type(type_name)?,
            })
        })
        .collect()
}

/// The struct types, checked as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Types {
    structs: BTreeMap<String, Vec<Member>>,
}

#[derive(Clone, Copy)]
enum Visit {
    InProgress,
    Done(usize),
}

impl Types {
    /// Checks references, cycles, depth and use from `primary`.
    fn new(structs: BTreeMap<String, Vec<Member>>, primary: &str) -> Result<Self, Error> {
        for members in structs.values() {
            for m in members {
                if let Base::Struct(name) = &m.ty.base
                    && !structs.contains_key(name)
                {
                    return Err(if name == DOMAIN_TYPE {
                        err("types", "EIP712Domain is only the domain type")
                    } else {
                        err("types", "undefined type")
                    });
                }
            }
        }
        let mut visits = BTreeMap::new();
        let height = Self::visit(&structs, primary, 1, &mut visits)?;
        if height > MAX_TYPED_DATA_DEPTH {
            return Err(err("types", "nested too deeply"));
        }
        if visits.len() != structs.len() {
            return Err(err("types", "a type is not used by primaryType"));
        }
        Ok(Self { structs })
    }

    /// Depth-first walk from `name`: detects cycles and returns the nesting
    /// height of a value of this type. Recursion is bounded: a path longer
    /// than [`MAX_TYPED_DATA_DEPTH`] is rejected before going deeper.
    fn visit<'a>(
        structs: &'a BTreeMap<String, Vec<Member>>,
        name: &'a str,
        path_len: usize,
        visits: &mut BTreeMap<&'a str, Visit>,
    ) -> Result<usize, Error> {
        match visits.get(name) {
            Some(Visit::Done(h)) => return Ok(*h),
            Some(Visit::InProgress) => return Err(err("types", "cyclic type")),
            None => {}
        }
        if path_len > MAX_TYPED_DATA_DEPTH {
            return Err(err("types", "nested too deeply"));
        }
        visits.insert(name, Visit::InProgress);
        let members = structs.get(name).ok_or(err("types", "undefined type"))?;
        let mut below = 0usize;
        for m in members {
            let mut h = m.ty.dims.len();
            if let Base::Struct(child) = &m.ty.base {
                h = h.saturating_add(Self::visit(
                    structs,
                    child,
                    path_len.saturating_add(1).saturating_add(m.ty.dims.len()),
                    visits,
                )?);
            }
            below = below.max(h);
        }
        let height = below.saturating_add(1);
        visits.insert(name, Visit::Done(height));
        Ok(height)
    }

    /// `Name(type1 name1,...)`.
    fn format_struct(out: &mut String, name: &str, members: &[Member]) {
        out.push_str(name);
        out.push('(');
        for (i, m) in members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&m.type_name);
            out.push(' ');
            out.push_str(&m.name);
        }
        out.push(')');
    }

    /// `encodeType`: the struct, then every struct it references (directly
    /// or not), sorted by name. The types are acyclic and checked.
    fn encode_type_of(structs: &BTreeMap<String, Vec<Member>>, name: &str) -> String {
        let mut deps = BTreeSet::new();
        let mut stack = vec![name];
        while let Some(n) = stack.pop() {
            for m in structs.get(n).into_iter().flatten() {
                if let Base::Struct(child) = &m.ty.base
                    && child != name
                    && deps.insert(child.as_str())
                {
                    stack.push(child);
                }
            }
        }
        let mut out = String::new();
        for n in std::iter::once(name).chain(deps) {
            if let Some(members) = structs.get(n) {
                Self::format_struct(&mut out, n, members);
            }
        }
        out
    }
}

/// Encodes values of checked types. Type hashes are computed when a value
/// of the type is first met (not for every declared type up front), so the
/// work done is bounded by the message, not by how the types are wired.
struct Encoder<'a> {
    structs: &'a BTreeMap<String, Vec<Member>>,
    type_hashes: BTreeMap<&'a str, [u8; 32]>,
    /// `Some` in a lenient parse: the path of the value being encoded
    /// (below `message`) and the fields left out of the hash so far.
    lenient: Option<Lenient<'a>>,
}

/// What a lenient parse keeps while it encodes.
#[derive(Default)]
struct Lenient<'a> {
    path: Vec<PathStep<'a>>,
    ignored: Vec<String>,
}

/// One step of a path below `message`.
enum PathStep<'a> {
    Field(&'a str),
    Index(usize),
}

/// Appends `.name`, or `["name"]` (JSON-escaped) for a name that is not a
/// plain identifier, so that every path reads back to one field.
fn push_field(out: &mut String, name: &str) {
    let plain = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if plain {
        out.push('.');
        out.push_str(name);
    } else {
        out.push('[');
        out.push_str(&Value::String(name.to_owned()).to_string());
        out.push(']');
    }
}

impl Lenient<'_> {
    /// The path of field `name` of the value being encoded.
    fn path_of(&self, name: &str) -> String {
        let mut out = String::from("message");
        for step in &self.path {
            match step {
                PathStep::Field(f) => push_field(&mut out, f),
                PathStep::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        push_field(&mut out, name);
        out
    }
}

impl<'a> Encoder<'a> {
    fn new(types: &'a Types, undeclared: UndeclaredFields) -> Self {
        Self {
            structs: &types.structs,
            type_hashes: BTreeMap::new(),
            lenient: match undeclared {
                UndeclaredFields::Refuse => None,
                UndeclaredFields::Ignore => Some(Lenient::default()),
            },
        }
    }

    /// `encodeData(name, value)`: the type hash, then each member's word.
    fn encode_data(&mut self, name: &str, value: &Value, depth: usize) -> Result<Vec<u8>, Error> {
        let structs = self.structs;
        let Some((name, members)) = structs.get_key_value(name) else {
            return Err(err("types", "undefined type"));
        };
        let type_hash = *self
            .type_hashes
            .entry(name)
            .or_insert_with(|| keccak256(Types::encode_type_of(structs, name).as_bytes()));
        let obj = value
            .as_object()
            .ok_or(err("message", "expected an object for a struct"))?;
        let mut out = Vec::with_capacity(32 * (members.len() + 1));
        out.extend_from_slice(&type_hash);
        for m in members {
            let v = obj
                .get(&m.name)
                .ok_or(err("message", "missing a field of its type"))?;
            if let Some(l) = &mut self.lenient {
                l.path.push(PathStep::Field(&m.name));
            }
            let word = self.encode_value(&m.ty, m.ty.dims.len(), v, depth + 1);
            if let Some(l) = &mut self.lenient {
                l.path.pop();
            }
            out.extend_from_slice(&word?);
        }
        if obj.len() != members.len() {
            // Every member was found, so there are more keys than members.
            let Some(l) = &mut self.lenient else {
                return Err(err("message", "a field its type does not declare"));
            };
            // Sorted by key, whatever order serde_json keeps (another crate
            // in a build can switch on its `preserve_order`).
            let mut extra: Vec<&String> = obj
                .keys()
                .filter(|key| !members.iter().any(|m| m.name == **key))
                .collect();
            extra.sort_unstable();
            for key in extra {
                let path = l.path_of(key);
                l.ignored.push(path);
            }
        }
        Ok(out)
    }

    /// The 32-byte word of `value` as a `ty` with the first `dims`
    /// dimensions (the outermost being `dims - 1`).
    fn encode_value(
        &mut self,
        ty: &FieldType,
        dims: usize,
        value: &Value,
        depth: usize,
    ) -> Result<[u8; 32], Error> {
        if depth > MAX_TYPED_DATA_DEPTH {
            return Err(err("message", "nested too deeply"));
        }
        if let Some(outer) = dims.checked_sub(1) {
            let items = value
                .as_array()
                .ok_or(err("message", "expected an array"))?;
            if let Some(Some(len)) = ty.dims.get(outer)
                && items.len() != *len
            {
                return Err(err("message", "fixed-size array of the wrong length"));
            }
            let mut buf = Vec::with_capacity(items.len().saturating_mul(32));
            for (i, item) in items.iter().enumerate() {
                if let Some(l) = &mut self.lenient {
                    l.path.push(PathStep::Index(i));
                }
                let word = self.encode_value(ty, outer, item, depth + 1);
                if let Some(l) = &mut self.lenient {
                    l.path.pop();
                }
                buf.extend_from_slice(&word?);
            }
            return Ok(keccak256(&buf));
        }
        match &ty.base {
            Base::Struct(name) => Ok(keccak256(&self.encode_data(name, value, depth)?)),
            Base::Atomic(a) => encode_atomic(*a, value, "message"),
        }
    }
}

/// What a parse does with a struct value's field that its type does not
/// declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UndeclaredFields {
    /// Refuse the typed data (the default).
    Refuse,
    /// Leave the field out of the hash and report it.
    Ignore,
}

/// The number of significant bits.
fn bit_len(v: &U256) -> usize {
    let b = v.minimal_be_bytes();
    match b.first() {
        None => 0,
        Some(top) => b.len() * 8 - top.leading_zeros() as usize,
    }
}

/// `-m` in 256-bit two's complement.
fn negate(m: &U256) -> [u8; 32] {
    let mut out = m.to_be_bytes();
    for b in &mut out {
        *b = !*b;
    }
    for b in out.iter_mut().rev() {
        let (sum, carry) = b.overflowing_add(1);
        *b = sum;
        if !carry {
            break;
        }
    }
    out
}

/// The word of an atomic value.
fn encode_atomic(ty: Atomic, value: &Value, what: &'static str) -> Result<[u8; 32], Error> {
    let mut word = [0u8; 32];
    match ty {
        Atomic::Bool => {
            let b = value.as_bool().ok_or(err(what, "expected true or false"))?;
            word[31] = u8::from(b);
        }
        Atomic::Address => {
            let a = json::address(value, what).map_err(relabel(what))?;
            word[12..].copy_from_slice(a.as_bytes());
        }
        Atomic::String => {
            let s = value.as_str().ok_or(err(what, "expected a string"))?;
            word = keccak256(s.as_bytes());
        }
        Atomic::Bytes => {
            word = keccak256(&json::bytes(value, what).map_err(relabel(what))?);
        }
        Atomic::FixedBytes(n) => {
            let b = json::bytes(value, what).map_err(relabel(what))?;
            if b.len() != n {
                return Err(err(what, "byte string of the wrong length for its type"));
            }
            word[..n].copy_from_slice(&b);
        }
        Atomic::Uint(bits) => {
            let (negative, m) = json::signed(value, what).map_err(relabel(what))?;
            if negative {
                return Err(err(what, "negative value for an unsigned type"));
            }
            if bit_len(&m) > bits {
                return Err(err(what, "value out of range for its type"));
            }
            word = m.to_be_bytes();
        }
        Atomic::Int(bits) => {
            let (negative, m) = json::signed(value, what).map_err(relabel(what))?;
            // Non-negative: m < 2^(bits-1), i.e. bit_len(m) < bits.
            // Negative: m ≤ 2^(bits-1), i.e. bit_len(m - 1) < bits (m is
            // not zero: "-0" reads as non-negative).
            let magnitude_bits = if negative {
                bit_len(&minus_one(&m))
            } else {
                bit_len(&m)
            };
            if magnitude_bits >= bits {
                return Err(err(what, "value out of range for its type"));
            }
            word = if negative {
                negate(&m)
            } else {
                m.to_be_bytes()
            };
        }
    }
    Ok(word)
}

/// `m - 1` for `m > 0`.
fn minus_one(m: &U256) -> U256 {
    let mut out = m.to_be_bytes();
    for b in out.iter_mut().rev() {
        let (diff, borrow) = b.overflowing_sub(1);
        *b = diff;
        if !borrow {
            break;
        }
    }
    U256::from_be_bytes(out)
}

/// The EIP-712 domain: whichever of its five fields the typed data gives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Eip712Domain {
    /// The signing domain's user-readable name (the dapp or protocol).
    pub name: Option<String>,
    /// The current major version of the signing domain.
    pub version: Option<String>,
    /// The EIP-155 chain id the signature is meant for.
    pub chain_id: Option<U256>,
    /// The contract that will verify the signature.
    pub verifying_contract: Option<Address>,
    /// A disambiguating salt.
    pub salt: Option<[u8; 32]>,
}

impl Eip712Domain {
    /// Which of the five fields are present, in order.
    fn present(&self) -> [bool; 5] {
        [
            self.name.is_some(),
            self.version.is_some(),
            self.chain_id.is_some(),
            self.verifying_contract.is_some(),
            self.salt.is_some(),
        ]
    }

    /// `encodeType` of the domain: `EIP712Domain(...)` with the fields
    /// present, in the order EIP-712 gives them.
    #[must_use]
    pub fn encode_type(&self) -> String {
        let mut out = String::from("EIP712Domain(");
        let mut first = true;
        for ((name, ty), present) in DOMAIN_FIELDS.iter().zip(self.present()) {
            if present {
                if !first {
                    out.push(',');
                }
                first = false;
                out.push_str(ty);
                out.push(' ');
                out.push_str(name);
            }
        }
        out.push(')');
        out
    }

    /// The domain separator: `hashStruct(domain)`.
    #[must_use]
    pub fn separator(&self) -> [u8; 32] {
        let mut data = Vec::with_capacity(32 * 6);
        data.extend_from_slice(&keccak256(self.encode_type().as_bytes()));
        if let Some(name) = &self.name {
            data.extend_from_slice(&keccak256(name.as_bytes()));
        }
        if let Some(version) = &self.version {
            data.extend_from_slice(&keccak256(version.as_bytes()));
        }
        if let Some(id) = &self.chain_id {
            data.extend_from_slice(id.as_be_bytes());
        }
        if let Some(a) = &self.verifying_contract {
            data.extend_from_slice(&[0; 12]);
            data.extend_from_slice(a.as_bytes());
        }
        if let Some(salt) = &self.salt {
            data.extend_from_slice(salt);
        }
        keccak256(&data)
    }

    /// Reads the `domain` object; `declared` is `types.EIP712Domain`.
    fn parse(value: &Value, declared: Option<&[Member]>) -> Result<Self, Error> {
        let obj = value
            .as_object()
            .ok_or(err("domain", "expected an object"))?;
        if !obj
            .keys()
            .all(|k| DOMAIN_FIELDS.iter().any(|(name, _)| name == k))
        {
            return Err(err(
                "domain",
                "a field EIP-712 does not define (name, version, chainId, verifyingContract, salt)",
            ));
        }
        if let Some(members) = declared {
            let mut canonical = DOMAIN_FIELDS.iter();
            for m in members {
                if !canonical.any(|(name, ty)| m.name == *name && m.type_name == *ty) {
                    return Err(err(
                        "types",
                        "EIP712Domain must list name string, version string, chainId uint256, verifyingContract address, salt bytes32 (any of them, in this order)",
                    ));
                }
            }
            if members.iter().any(|m| !obj.contains_key(&m.name)) {
                return Err(err("domain", "missing a field EIP712Domain declares"));
            }
            if obj.len() != members.len() {
                return Err(err("domain", "a field EIP712Domain does not declare"));
            }
        }
        let string = |key: &str| -> Result<Option<String>, Error> {
            obj.get(key)
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or(err("domain", "name and version must be strings"))
                })
                .transpose()
        };
        let word = |key: &str, ty: Atomic| -> Result<Option<[u8; 32]>, Error> {
            obj.get(key)
                .map(|v| encode_atomic(ty, v, "domain"))
                .transpose()
        };
        Ok(Self {
            name: string("name")?,
            version: string("version")?,
            chain_id: word("chainId", Atomic::Uint(256))?.map(U256::from_be_bytes),
            verifying_contract: word("verifyingContract", Atomic::Address)?.map(|w| {
                let mut a = [0u8; 20];
                a.copy_from_slice(&w[12..]);
                Address(a)
            }),
            salt: word("salt", Atomic::FixedBytes(32))?,
        })
    }

    /// The domain as JSON (chain id as a decimal string, so that any value
    /// reads back exactly).
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(name) = &self.name {
            m.insert("name".into(), Value::String(name.clone()));
        }
        if let Some(version) = &self.version {
            m.insert("version".into(), Value::String(version.clone()));
        }
        if let Some(id) = &self.chain_id {
            m.insert("chainId".into(), Value::String(id.to_string()));
        }
        if let Some(a) = &self.verifying_contract {
            m.insert("verifyingContract".into(), json::address_value(a));
        }
        if let Some(salt) = &self.salt {
            m.insert("salt".into(), json::hex_bytes(salt));
        }
        Value::Object(m)
    }
}

/// EIP-712 typed data, parsed, validated and hashed: the digest
/// `keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(message))`.
///
/// A [`TypedData`] can only be made by parsing the typed data itself, and
/// [`crate::EthSigner::sign_typed_data`] takes nothing else: no API here
/// takes a caller-computed digest as "typed data" (a bare digest goes through
/// the separately named [`crate::EthSigner::sign_hash_raw`]). The whole input
/// is validated and hashed when it is parsed, so a `TypedData` always has a
/// digest and a gate reading it sees exactly what is signed.
///
/// # What is accepted
///
/// - `types`: an object of struct types, each a list of `{name, type}`.
///   Type names are Solidity identifiers; member types are `bool`,
///   `address`, `string`, `bytes`, `bytes1`..`bytes32`, `uint8`..`uint256`
///   and `int8`..`int256` (multiples of 8, written canonically: no `uint`
///   alias, no leading zeros), a struct name, or any of these with array
///   suffixes `[]` or `[N]` (`N ≥ 1`), any number of them.
/// - `EIP712Domain` may be declared in `types` or left out. Declared, it must
///   list a subset of `name string`, `version string`, `chainId uint256`,
///   `verifyingContract address`, `salt bytes32`, in that order, and the
///   `domain` object must hold exactly those fields; left out, it is
///   inferred from the fields `domain` holds, in that order.
/// - `primaryType`: a struct type of `types` (not `EIP712Domain`).
/// - `domain`: an object with (a subset of) the five domain fields.
/// - `message`: an object of the primary type.
///
/// Values: `bool` is `true`/`false`; integers are JSON numbers (safe
/// integers, |n| ≤ 2^53 - 1), decimal strings or `0x`-hex strings, with a
/// leading `-` for negative values of `intN`, range-checked for their width
/// and encoded in two's complement; `address` is 40 hex digits (EIP-55
/// checked when mixed-case); `bytesN` is exactly `N` bytes of `0x`-hex;
/// `bytes` is `0x`-hex; `string` is a JSON string; arrays are JSON arrays
/// (of exactly `N` items for `[N]`); structs are JSON objects.
///
/// # What is rejected, and why
///
/// The stricter choice wherever implementations differ, because what a
/// wallet shows must be what is signed:
/// - a struct value with a field its type does not declare (viem ignores
///   extra fields; a user would be shown a field the signature does not
///   cover) or without one it declares; the explicit opt-in
///   [`TypedData::from_json_value_lenient`] hashes as those wallets do and
///   reports every field it left out;
/// - an undefined type, a cyclic type (ethers rejects them too), a type that
///   `primaryType` does not use (ethers rejects them as ambiguous), a
///   duplicate member name, a malformed type or member name (a `,`, space or
///   `)` in a name would make `encodeType` ambiguous);
/// - a value out of range for its type, a `bytesN` of the wrong length, an
///   array of the wrong length, a JSON number that is not a safe integer;
/// - nesting of structs and arrays deeper than [`MAX_TYPED_DATA_DEPTH`].
#[derive(Clone, PartialEq, Eq)]
pub struct TypedData {
    /// The paths of the struct fields a lenient parse left out of the hash
    /// (empty for a strict parse), and the same as one JSON array for the
    /// audit record.
    ignored_fields: Vec<String>,
    ignored_note: Option<String>,
    types: Types,
    primary_type: String,
    domain: Eip712Domain,
    message: Value,
    encode_type: String,
    encoded_message: Vec<u8>,
    domain_separator: [u8; 32],
    struct_hash: [u8; 32],
}

impl TypedData {
    /// Reads the JSON object `eth_signTypedData_v4` takes
    /// (`{types, primaryType, domain, message}`), or a JSON string holding
    /// it (as the RPC parameter is often sent), and hashes it.
    ///
    /// # Errors
    /// [`Error::TypedData`] naming the part at fault (`types`,
    /// `primaryType`, `domain`, `message`) and the reason; for a string,
    /// [`Error::JsonSyntax`] or [`Error::DuplicateKey`].
    pub fn from_json_value(value: &Value) -> Result<Self, Error> {
        Self::parse(value, UndeclaredFields::Refuse)
    }

    /// Reads typed data as [`TypedData::from_json_value`] does, except
    /// that a struct value's fields that its type does not declare are left
    /// out of the hash instead of refused, as MetaMask, ethers, viem and
    /// eth-account hash (OpenSea's Seaport orders carry
    /// `totalOriginalConsiderationItems`, which `OrderComponents` does not
    /// declare). Every field left out is reported by its path
    /// ([`TypedData::ignored_fields`]), shown by the CLI and written to the
    /// audit record of the signature: what the signature does not cover
    /// is never silent. The domain stays strict (those wallets disagree on
    /// how to hash a domain field `EIP712Domain` does not declare), and so
    /// does everything else listed on [`TypedData`].
    ///
    /// # Errors
    /// As [`TypedData::from_json_value`], less the undeclared struct field.
    pub fn from_json_value_lenient(value: &Value) -> Result<Self, Error> {
        Self::parse(value, UndeclaredFields::Ignore)
    }

    /// Parses JSON text and reads it as
    /// [`TypedData::from_json_value_lenient`] does. Duplicate keys are
    /// rejected.
    ///
    /// # Errors
    /// [`Error::JsonSyntax`], [`Error::DuplicateKey`], or as
    /// [`TypedData::from_json_value_lenient`].
    pub fn from_json_str_lenient(s: &str) -> Result<Self, Error> {
        Self::from_json_value_lenient(&json::parse_str(s)?)
    }

    /// The paths (`message.totalOriginalConsiderationItems`,
    /// `message.offer[0].note`, `message["odd key"]`) of the struct fields
    /// a lenient parse left out of the hash: in the order their parents are
    /// encoded, sorted by key within each; always empty after a strict
    /// parse.
    #[must_use]
    pub fn ignored_fields(&self) -> &[String] {
        &self.ignored_fields
    }

    /// The ignored fields as one JSON array of strings, for the audit
    /// record (`None` when there are none).
    pub(crate) fn ignored_note(&self) -> Option<&str> {
        self.ignored_note.as_deref()
    }

    fn parse(value: &Value, undeclared: UndeclaredFields) -> Result<Self, Error> {
        if let Value::String(s) = value {
            let inner = json::parse_str(s)?;
            if inner.is_string() {
                return Err(err("typedData", "expected an object"));
            }
            return Self::parse(&inner, undeclared);
        }
        let obj = value
            .as_object()
            .ok_or(err("typedData", "expected an object"))?;
        if !obj
            .keys()
            .all(|k| matches!(k.as_str(), "types" | "primaryType" | "domain" | "message"))
        {
            return Err(err(
                "typedData",
                "a field other than types, primaryType, domain and message",
            ));
        }
        let types = obj.get("types").ok_or(err("types", "missing"))?;
        let primary = obj
            .get("primaryType")
            .ok_or(err("primaryType", "missing"))?
            .as_str()
            .ok_or(err("primaryType", "expected a string"))?;
        let domain = obj.get("domain").ok_or(err("domain", "missing"))?;
        let message = obj.get("message").ok_or(err("message", "missing"))?;

        let types_obj = types
            .as_object()
            .ok_or(err("types", "expected an object"))?;
        let mut structs = BTreeMap::new();
        let mut declared_domain = None;
        for (name, members) in types_obj {
            let members = parse_members(members)?;
            if name == DOMAIN_TYPE {
                declared_domain = Some(members);
            } else if matches!(parse_base(name)?, Base::Struct(_)) {
                structs.insert(name.clone(), members);
            } else {
                return Err(err("types", "a type name that is an atomic type"));
            }
        }
        if primary == DOMAIN_TYPE {
            return Err(err(
                "primaryType",
                "EIP712Domain is the domain, not a message type",
            ));
        }
        if !structs.contains_key(primary) {
            return Err(err("primaryType", "undefined type"));
        }
        let domain = Eip712Domain::parse(domain, declared_domain.as_deref())?;
        let types = Types::new(structs, primary)?;
        let mut encoder = Encoder::new(&types, undeclared);
        let encoded_message = encoder.encode_data(primary, message, 1)?;
        let ignored_fields = encoder.lenient.map(|l| l.ignored).unwrap_or_default();
        let ignored_note =
            (!ignored_fields.is_empty()).then(|| Value::from(ignored_fields.clone()).to_string());
        let struct_hash = keccak256(&encoded_message);
        let domain_separator = domain.separator();
        Ok(Self {
            ignored_fields,
            ignored_note,
            encode_type: Types::encode_type_of(&types.structs, primary),
            types,
            primary_type: primary.to_owned(),
            domain,
            message: message.clone(),
            encoded_message,
            domain_separator,
            struct_hash,
        })
    }

    /// Parses JSON text and reads it as [`TypedData::from_json_value`]
    /// does. Duplicate keys are rejected.
    ///
    /// # Errors
    /// [`Error::JsonSyntax`], [`Error::DuplicateKey`], or as
    /// [`TypedData::from_json_value`].
    pub fn from_json_str(s: &str) -> Result<Self, Error> {
        Self::from_json_value(&json::parse_str(s)?)
    }

    /// The typed data as the JSON object `eth_signTypedData_v4` takes, with
    /// `EIP712Domain` listed in `types`. It reads back to the same digest.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let member = |name: &str, ty: &str| {
            let mut m = Map::new();
            m.insert("name".into(), Value::String(name.to_owned()));
            m.insert("type".into(), Value::String(ty.to_owned()));
            Value::Object(m)
        };
        let mut types = Map::new();
        types.insert(
            DOMAIN_TYPE.into(),
            Value::Array(
                DOMAIN_FIELDS
                    .iter()
                    .zip(self.domain.present())
                    .filter(|(_, present)| *present)
                    .map(|((name, ty), _)| member(name, ty))
                    .collect(),
            ),
        );
        for (name, members) in &self.types.structs {
            types.insert(
                name.clone(),
                Value::Array(
                    members
                        .iter()
                        .map(|m| member(&m.name, &m.type_name))
                        .collect(),
                ),
            );
        }
        let mut out = Map::new();
        out.insert("types".into(), Value::Object(types));
        out.insert(
            "primaryType".into(),
            Value::String(self.primary_type.clone()),
        );
        out.insert("domain".into(), self.domain.to_json());
        out.insert("message".into(), self.message.clone());
        Value::Object(out)
    }

    /// The primary type's name.
    #[must_use]
    pub fn primary_type(&self) -> &str {
        &self.primary_type
    }

    /// The domain (a policy gate checks its `chain_id` and
    /// `verifying_contract`).
    #[must_use]
    pub fn domain(&self) -> &Eip712Domain {
        &self.domain
    }

    /// The message, as given.
    #[must_use]
    pub fn message(&self) -> &Value {
        &self.message
    }

    /// `encodeType(primaryType)`.
    #[must_use]
    pub fn encode_type(&self) -> &str {
        &self.encode_type
    }

    /// `encodeData(primaryType, message)`: the type hash followed by one
    /// 32-byte word per member.
    #[must_use]
    pub fn encoded_message(&self) -> &[u8] {
        &self.encoded_message
    }

    /// `hashStruct(message)`.
    #[must_use]
    pub fn struct_hash(&self) -> [u8; 32] {
        self.struct_hash
    }

    /// `hashStruct(domain)`.
    #[must_use]
    pub fn domain_separator(&self) -> [u8; 32] {
        self.domain_separator
    }

    /// The digest signed:
    /// `keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(message))`.
    #[must_use]
    pub fn signing_hash(&self) -> Digest32 {
        Digest32(keccak256_parts(&[
            b"\x19\x01",
            &self.domain_separator,
            &self.struct_hash,
        ]))
    }

    /// The address whose key made `signature` over this typed data.
    ///
    /// # Errors
    /// [`Error::InvalidSignature`] if no public key recovers.
    pub fn recover_signer(&self, signature: &MessageSignature) -> Result<Address, Error> {
        signature.recover_address(&self.signing_hash())
    }
}

impl fmt::Debug for TypedData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedData")
            .field("primary_type", &self.primary_type)
            .field("domain", &self.domain)
            .field("signing_hash", &self.signing_hash())
            .finish_non_exhaustive()
    }
}

impl Serialize for TypedData {
    /// As [`TypedData::to_json`].
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TypedData {
    /// As [`TypedData::from_json_value`], rejecting duplicate keys.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let StrictValue(v) = StrictValue::deserialize(deserializer)?;
        Self::from_json_value(&v).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        for ok in [
            "bool", "address", "string", "bytes", "bytes1", "bytes32", "uint8", "uint256", "int8",
            "int256", "Foo", "_x", "$y", "bytesX", "integer", "uints",
        ] {
            assert!(parse_base(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "uint",
            "int",
            "uint7",
            "uint264",
            "uint08",
            "int0",
            "bytes0",
            "bytes33",
            "bytes01",
            "1Foo",
            "Fo o",
            "Foo,",
            "Foo)",
            "function",
            "fixed128x18",
            "ufixed",
            "tuple",
            "é",
        ] {
            assert!(parse_base(bad).is_err(), "{bad}");
        }
        let t = parse_type("uint8[2][][3]").unwrap();
        assert_eq!(t.dims, [Some(2), None, Some(3)]);
        for bad in [
            "uint8[",
            "uint8]",
            "uint8[0]",
            "uint8[01]",
            "uint8[x]",
            "uint8[2]x",
            "[2]",
        ] {
            assert!(parse_type(bad).is_err(), "{bad}");
        }
        assert!(parse_type(&format!("bool{}", "[]".repeat(65))).is_err());
        assert!(parse_type(&format!("bool{}", "[]".repeat(64))).is_ok());
    }

    #[test]
    fn integer_ranges_and_twos_complement() {
        let enc = |ty, v: Value| encode_atomic(ty, &v, "message");
        assert_eq!(enc(Atomic::Int(8), Value::from(-128)).unwrap()[31], 0x80);
        assert_eq!(enc(Atomic::Int(8), Value::from(-128)).unwrap()[0], 0xff);
        assert!(enc(Atomic::Int(8), Value::from(-129)).is_err());
        assert!(enc(Atomic::Int(8), Value::from(128)).is_err());
        assert!(enc(Atomic::Int(8), Value::from(127)).is_ok());
        assert!(enc(Atomic::Uint(8), Value::from(255)).is_ok());
        assert!(enc(Atomic::Uint(8), Value::from(256)).is_err());
        assert!(enc(Atomic::Uint(8), Value::from(-1)).is_err());
        assert_eq!(
            enc(Atomic::Int(256), Value::from("-1")).unwrap(),
            [0xff; 32]
        );
        let min = "-57896044618658097711785492504343953926634992332820282019728792003956564819968";
        let w = enc(Atomic::Int(256), Value::from(min)).unwrap();
        assert_eq!(w[0], 0x80);
        assert!(w[1..].iter().all(|&b| b == 0));
        let below =
            "-57896044618658097711785492504343953926634992332820282019728792003956564819969";
        assert!(enc(Atomic::Int(256), Value::from(below)).is_err());
        assert_eq!(enc(Atomic::Int(16), Value::from("-0")).unwrap(), [0; 32]);
        assert_eq!(bit_len(&U256::ZERO), 0);
        assert_eq!(bit_len(&U256::from_u64(1)), 1);
        assert_eq!(bit_len(&U256::MAX), 256);
        assert_eq!(minus_one(&U256::from_u64(256)), U256::from_u64(255));
    }
}
