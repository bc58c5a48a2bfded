//! Sealed secrets (`shared/CLI.md`, "JOSE"; issue #18, items 4 and 5):
//! a persistent sealing keyring per scope, `seal`, `unseal` and `reseal`.
//!
//! A scope's keyring is its **membership**: which keys belong to it (keys
//! of the keystore by id, KMS or HSM keys by URI, each with its `kid`, the
//! RFC 7638 thumbprint of its public JWK), which one is current (what new
//! secrets are sealed to), which previous ones still open, and which `kid`s
//! are revoked. The membership holds references and public identifiers
//! only, never key material; it is one record of the keystore's state
//! store (`--state`: the keystore directory, or the shared database), under
//! `sealing-keyring:SCOPE`, replaced by compare-and-swap (a record is
//! written whole or not at all, and two rotations racing cannot both
//! win), each change recorded in the audit log (ops `sealing-key-create`,
//! `sealing-key-rotate`, `sealing-key-retire`, `sealing-key-revoke`).
//!
//! The record (format 1) is one JSON object: `format` (1), `scope`,
//! `current` (a member), `previous` (members, newest first) and `revoked`
//! (kids); a member is `{"kid", "keyId"}` for a keystore key or `{"kid",
//! "key"}` with a backend URI. Read strictly: an unknown or repeated
//! member, a kid that is not 43 base64url characters, a kid listed twice
//! (or both a member and revoked), another scope's record or another
//! format is kind `malformed` (`the_record_format_is_frozen` pins it).
//!
//! Opening builds a [`SealingKeyring`] from the membership, so the rules
//! (a retired key no longer opens, a revoked one fails as revoked before
//! any backend is asked) are custody-jose's, whatever process reloads them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};
use custody_core::{
    AnyPublicKey, AuditEvent, AuditOp, AuditOutcome, CasOutcome, EncryptionContext, Envelope,
    KeyAlgorithm, KeyId, KeyRef, KeySigner, Keystore, PrivateKeyBytes, RecordedSwaps, SecretVec,
    SharedBackend, Swap, Vault,
};
use custody_jose::jwe::{self, JweAlgorithm};
use custody_jose::{CompactJwe, OpenError, Recipient, Scope, SealError, SealingKeyring};
use serde_json::{Map, Value, json};

use crate::error::CliError;

/// `custody sealing-key ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum SealingKeyCommand {
    /// Create a scope's sealing key: a P-256 key generated in the keystore
    /// (wrapped by its KEK like every secret), or with --key a KMS or HSM
    /// RSA or P-256 key that decrypts (an AWS KMS RSA ENCRYPT_DECRYPT or
    /// ECC_NIST_P256 KEY_AGREEMENT key). For a scope that has one already
    /// this rotates: the new key becomes current (what `seal` senders and
    /// `reseal` use), the old one still opens until retired. Recorded in
    /// the audit log.
    ///
    /// Prints {"keyId", "jwk" (the public JWK, "use": "enc", "kid" its
    /// RFC 7638 thumbprint), "scope"}.
    ///
    /// Example: custody sealing-key create --scope importer/api-keys
    Create(CreateArgs),
    /// Retire a previous (not the current) key of a scope, once its secrets
    /// are resealed: what is still sealed to it no longer opens.
    ///
    /// Prints {"scope", "kid", "status": "retired"}.
    ///
    /// Example: custody sealing-key retire --scope importer/api-keys --kid NzbLsXh8...
    Retire(KidArgs),
    /// Revoke a key of a scope (believed compromised; not the current one:
    /// create a new key first): every secret sealed to it fails to open,
    /// with a message saying it is revoked. A retired key can be revoked.
    ///
    /// Prints {"scope", "kid", "status": "revoked"}.
    ///
    /// Example: custody sealing-key revoke --scope importer/api-keys --kid NzbLsXh8...
    Revoke(KidArgs),
    /// Show a scope's keyring: the current key, the previous keys that
    /// still open (newest first) and the revoked kids.
    ///
    /// Prints {"scope", "current": {"kid", "keyId"}, "previous": [...],
    /// "revoked": [kid...]}.
    ///
    /// Example: custody sealing-key list --scope importer/api-keys
    List(ScopeArgs),
}

/// `custody sealing-key create`.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The scope: service/purpose, e.g. importer/api-keys (a-z, 0-9, `.`,
    /// `_`, `-`).
    #[arg(long, value_name = "SCOPE")]
    pub(crate) scope: String,
    /// A KMS or HSM key instead of a new keystore key: `aws-kms:KEY` (RSA
    /// ENCRYPT_DECRYPT or ECC_NIST_P256 KEY_AGREEMENT) or `pkcs11:…`.
    #[arg(long, value_name = "URI", conflicts_with = "kek")]
    pub(crate) key: Option<String>,
    /// The KEK that wraps the new keystore key instead of the keystore's
    /// own: `aws-kms:KEY` (a SYMMETRIC_DEFAULT key) or `pkcs11:…` (an AES
    /// key). Opening a secret sealed to the key then needs that KEK's
    /// backend, reached on every unseal.
    #[arg(long, value_name = "URI")]
    pub(crate) kek: Option<String>,
}

/// A scope and one of its keys.
#[derive(Debug, Args)]
pub(crate) struct KidArgs {
    /// The scope.
    #[arg(long, value_name = "SCOPE")]
    pub(crate) scope: String,
    /// The key's kid (its RFC 7638 thumbprint, as `list` shows it; it may
    /// start with `-`).
    #[arg(long, value_name = "KID", allow_hyphen_values = true)]
    pub(crate) kid: String,
}

/// A scope.
#[derive(Debug, Args)]
pub(crate) struct ScopeArgs {
    /// The scope.
    #[arg(long, value_name = "SCOPE")]
    pub(crate) scope: String,
}

/// `custody seal`.
#[derive(Debug, Args)]
pub(crate) struct SealArgs {
    /// The recipient's public JWK (as `sealing-key create` prints it): EC
    /// P-256 or RSA.
    #[arg(long, value_name = "FILE")]
    pub(crate) jwk: PathBuf,
    /// The scope the secret is sealed for (bound in the protected header).
    #[arg(long, value_name = "SCOPE")]
    pub(crate) scope: String,
    /// RSA-OAEP-256 (an RSA key), ECDH-ES or ECDH-ES+A256KW (a P-256 key).
    #[arg(long, value_name = "ALG")]
    pub(crate) alg: String,
    /// The secret: a file, or `-` for stdin (bytes, at most 128 KiB).
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: String,
}

/// `custody unseal`.
#[derive(Debug, Args)]
pub(crate) struct UnsealArgs {
    /// The scope the secret was sealed for.
    #[arg(long, value_name = "SCOPE")]
    pub(crate) scope: String,
    /// The compact JWE: a file, or `-` for stdin.
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: String,
    /// A new file for the plaintext (mode 0600; an existing path is
    /// refused, and nothing is left behind on failure).
    #[arg(long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// A TOTP code, for sealing keys enrolled in 2FA.
    #[arg(long, value_name = "C")]
    pub(crate) code: Option<String>,
}

/// `custody reseal`.
#[derive(Debug, Args)]
pub(crate) struct ResealArgs {
    /// The scope the secret was sealed for.
    #[arg(long, value_name = "SCOPE")]
    pub(crate) scope: String,
    /// The compact JWE: a file, or `-` for stdin.
    #[arg(long = "in", value_name = "FILE")]
    pub(crate) input: String,
    /// A TOTP code, for sealing keys enrolled in 2FA.
    #[arg(long, value_name = "C")]
    pub(crate) code: Option<String>,
}

/// The state-store key of a scope's membership record.
fn record_key(scope: &Scope) -> String {
    format!("sealing-keyring:{}", scope.as_str())
}

/// The format number of the membership record.
const FORMAT: u64 = 1;
/// Most kids (members and revoked) one scope's record holds.
const MAX_KIDS: usize = 256;
/// The length of a kid: a base64url SHA-256, unpadded.
const KID_LEN: usize = 43;

/// Where a member key lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A key of the keystore, by id.
    Stored(KeyId),
    /// A KMS or HSM key, by backend URI.
    External(String),
    /// A P-256 key of the keystore wrapped by its own KEK (`sealing-key
    /// create --kek URI`): its envelope in the state store, under
    /// [`envelope_key`], opened by the KEK `kek` names on every use.
    Wrapped {
        /// The key's id (`p256-…`, as the keystore's generated keys).
        id: KeyId,
        /// The KEK's backend URI.
        kek: String,
    },
}

impl Location {
    /// What `keyId` shows: the keystore id, or the URI's label.
    fn label(&self) -> &str {
        match self {
            Self::Stored(id) | Self::Wrapped { id, .. } => id.as_str(),
            Self::External(uri) => custody_kms::BackendUri::label(uri),
        }
    }
}

/// One key of a scope's keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    kid: String,
    key: Location,
}

impl Member {
    fn to_json(&self) -> Value {
        match &self.key {
            Location::Stored(id) => json!({ "kid": self.kid, "keyId": id.as_str() }),
            Location::External(uri) => json!({ "kid": self.kid, "key": uri }),
            Location::Wrapped { id, kek } => {
                json!({ "kid": self.kid, "keyId": id.as_str(), "kek": kek })
            }
        }
    }

    fn from_json(value: &Value) -> Result<Self, CliError> {
        let members = value.as_object().ok_or_else(|| malformed("a member"))?;
        let kid = kid_of(members.get("kid"))?;
        let key = match (members.get("keyId"), members.get("key"), members.len()) {
            (Some(Value::String(id)), None, 2) if is_sealing_key_id(id) => Location::Stored(
                KeyId::new(id.as_str()).map_err(|_| malformed("a member's keyId"))?,
            ),
            (Some(Value::String(id)), None, 3) if is_sealing_key_id(id) => {
                let Some(Value::String(kek)) = members.get("kek") else {
                    return Err(malformed("a member (kid, keyId and kek)"));
                };
                match crate::backends::parse(kek, "the sealing keyring") {
                    Ok(custody_kms::BackendUri::AwsKms(_) | custody_kms::BackendUri::Pkcs11(_)) => {
                    }
                    _ => return Err(malformed("a member's KEK URI")),
                }
                Location::Wrapped {
                    id: KeyId::new(id.as_str()).map_err(|_| malformed("a member's keyId"))?,
                    kek: kek.clone(),
                }
            }
            (None, Some(Value::String(uri)), 2) => {
                crate::backends::parse(uri, "the sealing keyring")
                    .map_err(|_| malformed("a member's key URI"))?;
                Location::External(uri.clone())
            }
            _ => return Err(malformed("a member (kid and one of keyId, key)")),
        };
        Ok(Self { kid, key })
    }
}

/// The id of a P-256 key the keystore generated: `p256-` and 16
/// lower-case hex digits (`Keystore::generate_key`).
fn is_sealing_key_id(id: &str) -> bool {
    id.strip_prefix("p256-").is_some_and(|h| {
        h.len() == 16
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn kid_of(value: Option<&Value>) -> Result<String, CliError> {
    match value {
        Some(Value::String(kid)) if is_kid(kid) => Ok(kid.clone()),
        _ => Err(malformed("a kid")),
    }
}

/// A kid as custody makes them: 43 base64url characters.
fn is_kid(kid: &str) -> bool {
    kid.len() == KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A record that does not parse: the typed error of the state store's own
/// corrupt records (kind `malformed`), naming what was wrong.
fn malformed(what: &'static str) -> CliError {
    CliError::new(
        "malformed",
        format!("the scope's sealing keyring record is malformed: {what}"),
    )
}

/// Why a change to a keyring is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The key is the current one (retire or revoke it after a rotation).
    Current,
    /// The key is revoked (it cannot join again).
    Revoked,
    /// The key is already a member.
    Member,
    /// No previous key has that kid.
    NotAMember,
    /// The record would hold more than [`MAX_KIDS`] kids.
    Full,
}

impl From<Refusal> for CliError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Current => CliError::bad_input(
                "--kid: the scope's current key cannot be retired or revoked; create a new key \
                 for the scope first (sealing-key create rotates)",
            ),
            Refusal::Revoked => CliError::bad_input("the key is revoked for this scope"),
            Refusal::Member => CliError::new(
                "already-exists",
                "the key is already a sealing key of this scope",
            ),
            Refusal::NotAMember => {
                CliError::new("not-found", "--kid: no previous key of the scope has it")
            }
            Refusal::Full => CliError::bad_input("the scope's keyring holds too many keys"),
        }
    }
}

/// A scope's keyring membership (see the [module](self) docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    scope: Scope,
    current: Member,
    /// Newest first.
    previous: Vec<Member>,
    revoked: Vec<String>,
}

impl Membership {
    /// A keyring whose only key is `current`.
    pub(crate) fn new(scope: Scope, current: Member) -> Self {
        Self {
            scope,
            current,
            previous: Vec::new(),
            revoked: Vec::new(),
        }
    }

    fn members(&self) -> impl Iterator<Item = &Member> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    fn is_member(&self, kid: &str) -> bool {
        self.members().any(|m| m.kid == kid)
    }

    fn check_size(&self) -> Result<(), Refusal> {
        if 1 + self.previous.len() + self.revoked.len() > MAX_KIDS {
            return Err(Refusal::Full);
        }
        Ok(())
    }

    /// Makes `next` current; the current key becomes the newest previous.
    pub(crate) fn rotate(&mut self, next: Member) -> Result<(), Refusal> {
        if self.revoked.contains(&next.kid) {
            return Err(Refusal::Revoked);
        }
        if self.is_member(&next.kid) {
            return Err(Refusal::Member);
        }
        let old = std::mem::replace(&mut self.current, next);
        self.previous.insert(0, old);
        self.check_size()
    }

    /// Drops the previous key `kid`.
    pub(crate) fn retire(&mut self, kid: &str) -> Result<(), Refusal> {
        if kid == self.current.kid {
            return Err(Refusal::Current);
        }
        let before = self.previous.len();
        self.previous.retain(|m| m.kid != kid);
        if self.previous.len() == before {
            return Err(Refusal::NotAMember);
        }
        Ok(())
    }

    /// Revokes `kid` (dropping it if it is a previous key).
    pub(crate) fn revoke(&mut self, kid: &str) -> Result<(), Refusal> {
        if kid == self.current.kid {
            return Err(Refusal::Current);
        }
        self.previous.retain(|m| m.kid != kid);
        if !self.revoked.iter().any(|r| r == kid) {
            self.revoked.push(kid.to_owned());
        }
        self.check_size()
    }

    /// The record's JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "format": FORMAT,
            "scope": self.scope.as_str(),
            "current": self.current.to_json(),
            "previous": self.previous.iter().map(Member::to_json).collect::<Vec<_>>(),
            "revoked": self.revoked,
        })
    }

    /// Parses a record (strict JSON: a member twice, an unknown member,
    /// a kid twice or a kid both a member and revoked are refused), which
    /// must be `scope`'s.
    ///
    /// # Errors
    /// Kind `malformed`.
    pub(crate) fn from_bytes(bytes: &[u8], scope: &Scope) -> Result<Self, CliError> {
        let value = custody_core::json::parse_strict(bytes).map_err(|_| malformed("not JSON"))?;
        let Value::Object(members) = value else {
            return Err(malformed("not an object"));
        };
        let known = ["format", "scope", "current", "previous", "revoked"];
        if members.len() != known.len() || !known.iter().all(|k| members.contains_key(*k)) {
            return Err(malformed("its members"));
        }
        if members["format"].as_u64() != Some(FORMAT) {
            return Err(malformed("an unknown format"));
        }
        if members["scope"].as_str() != Some(scope.as_str()) {
            return Err(malformed("another scope's record"));
        }
        let current = Member::from_json(&members["current"])?;
        let previous = array(&members, "previous")?
            .iter()
            .map(Member::from_json)
            .collect::<Result<Vec<_>, _>>()?;
        let revoked = array(&members, "revoked")?
            .iter()
            .map(|v| kid_of(Some(v)))
            .collect::<Result<Vec<_>, _>>()?;
        let parsed = Self {
            scope: scope.clone(),
            current,
            previous,
            revoked,
        };
        let mut kids: Vec<&str> = parsed
            .members()
            .map(|m| m.kid.as_str())
            .chain(parsed.revoked.iter().map(String::as_str))
            .collect();
        let total = kids.len();
        kids.sort_unstable();
        kids.dedup();
        if kids.len() != total {
            return Err(malformed("a kid listed twice"));
        }
        parsed
            .check_size()
            .map_err(|_| malformed("too many kids"))?;
        Ok(parsed)
    }

    /// What `list` prints.
    fn report(&self) -> Value {
        let show = |m: &Member| match &m.key {
            Location::Wrapped { kek, .. } => json!({
                "kid": m.kid,
                "keyId": m.key.label(),
                "kek": custody_kms::BackendUri::label(kek),
            }),
            _ => json!({ "kid": m.kid, "keyId": m.key.label() }),
        };
        json!({
            "scope": self.scope.as_str(),
            "current": show(&self.current),
            "previous": self.previous.iter().map(show).collect::<Vec<_>>(),
            "revoked": self.revoked,
        })
    }

    /// The keyring over these members, each pinned by `pin` and checked to
    /// be the key its kid names; with `only`, the current key and the
    /// previous key of that kid alone (what opening one secret needs: a
    /// previous KMS key out of reach does not stop the others).
    ///
    /// # Errors
    /// `pin`'s errors; kind `malformed` for a member whose key is no longer
    /// the one its kid names.
    pub(crate) fn keyring(
        &self,
        pin: &dyn Fn(&Location) -> Result<KeySigner, CliError>,
        only: Option<&str>,
    ) -> Result<SealingKeyring, CliError> {
        let pinned = |m: &Member| -> Result<KeySigner, CliError> {
            let signer = pin(&m.key)?;
            let recipient = Recipient::from_pinned(signer.key())
                .map_err(|_| malformed("a member is not a sealing key"))?;
            if recipient.kid() != m.kid {
                return Err(malformed("a member's key is not the one its kid names"));
            }
            Ok(signer)
        };
        let mut chain: Vec<&Member> = self
            .previous
            .iter()
            .rev()
            .filter(|m| only.is_none_or(|k| m.kid == k))
            .collect();
        chain.push(&self.current);
        let mut keys = chain.into_iter();
        let first = keys.next().ok_or_else(|| malformed("no current key"))?;
        let mut ring = SealingKeyring::new(self.scope.clone(), pinned(first)?)
            .map_err(|_| malformed("a member is not a sealing key"))?;
        for member in keys {
            ring.rotate(pinned(member)?)
                .map_err(|_| malformed("a member listed twice"))?;
        }
        for kid in &self.revoked {
            ring.revoke(kid)
                .map_err(|_| malformed("the current key is revoked"))?;
        }
        Ok(ring)
    }
}

fn array<'a>(members: &'a Map<String, Value>, name: &'static str) -> Result<&'a [Value], CliError> {
    members[name]
        .as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| malformed(name))
}

/// A scope argument.
fn scope(text: &str) -> Result<Scope, CliError> {
    Scope::new(text).map_err(|e| CliError::bad_input(format!("--scope: {e}")))
}

/// A kid argument.
fn kid(text: &str) -> Result<&str, CliError> {
    if is_kid(text) {
        Ok(text)
    } else {
        Err(CliError::bad_input(
            "--kid: not a kid (43 base64url characters, as sealing-key list shows)",
        ))
    }
}

/// The scope's membership and the version it was read at, if it has one.
fn load(ks: &Keystore, scope: &Scope) -> Result<Option<(Membership, u64)>, CliError> {
    let key = record_key(scope);
    match ks.state().get(&key).wait()? {
        None => Ok(None),
        Some(record) => Ok(Some((
            Membership::from_bytes(&record.value, scope)?,
            record.version,
        ))),
    }
}

/// Applies `change` to the scope's membership (`None` for a scope with no
/// keyring yet) and stores the result with its audit record, retrying
/// when another process changed the record meanwhile.
fn update(
    ks: &Keystore,
    scope: &Scope,
    mut change: impl FnMut(Option<Membership>) -> Result<(Membership, AuditEvent), CliError>,
) -> Result<Membership, CliError> {
    let store = ks.state();
    let audit = ks.audit();
    let key = record_key(scope);
    for _ in 0..8 {
        let (current, version) = match load(ks, scope)? {
            Some((m, v)) => (Some(m), Some(v)),
            None => (None, None),
        };
        let (next, event) = change(current)?;
        let bytes = serde_json::to_vec(&next.to_json())
            .map_err(|_| CliError::new("io", "could not encode the keyring record"))?;
        let swapped = if store.records_into(audit.as_ref()) {
            let swap = [Swap::write(&key, version, &bytes)];
            matches!(
                store
                    .compare_and_swap_all_recorded(&swap, event, audit.as_ref())
                    .wait()?,
                RecordedSwaps::Swapped { .. }
            )
        } else {
            match store.compare_and_swap(&key, version, &bytes).wait()? {
                CasOutcome::Swapped { .. } => {
                    audit.append(event).wait()?;
                    true
                }
                CasOutcome::Conflict { .. } => false,
            }
        };
        if swapped {
            return Ok(next);
        }
    }
    Err(CliError::new(
        "conflict",
        "the scope's sealing keyring kept changing under this command; try again",
    ))
}

fn event(op: &str, scope: &Scope, kid: &str) -> Result<AuditEvent, CliError> {
    Ok(AuditEvent::new(AuditOp::new(op)?, AuditOutcome::Success)
        .with_field("scope", scope.as_str())?
        .with_field("kid", kid)?)
}

/// `custody sealing-key create`.
pub(crate) fn create(ks: &Keystore, a: &CreateArgs) -> Result<Value, CliError> {
    let scope = scope(&a.scope)?;
    let (location, signer) = match (&a.key, &a.kek) {
        (None, Some(kek)) => {
            let (id, backend) = wrap_new_key(ks, &scope, kek)?;
            let signer = crate::jose::pin_any(backend, KeyRef::Stored(id.clone()))?;
            let location = Location::Wrapped {
                id,
                kek: kek.clone(),
            };
            (location, signer)
        }
        (None, None) => {
            let (id, _) = ks.generate_key(KeyAlgorithm::P256)?;
            let signer = crate::jose::pin_any(ks.backend(), KeyRef::Stored(id.clone()))?;
            (Location::Stored(id), signer)
        }
        (Some(uri), _) => {
            let (inner, key) =
                crate::backends::signer(&crate::backends::parse(uri, "--key")?, "--key")?;
            let signer = crate::jose::pin_any(inner, key)?;
            if signer.backend().decrypting().is_none() {
                return Err(CliError::new(
                    "unsupported",
                    "--key: this backend does not decrypt: it cannot hold a sealing key",
                ));
            }
            (Location::External(uri.clone()), signer)
        }
    };
    let recipient = Recipient::from_pinned(signer.key()).map_err(|_| {
        CliError::bad_input(format!(
            "--key: a {} key is not a sealing key (P-256 or RSA)",
            signer.key().algorithm()
        ))
    })?;
    let member = Member {
        kid: recipient.kid().to_owned(),
        key: location.clone(),
    };
    let located = |e: AuditEvent| -> Result<AuditEvent, CliError> {
        let e = e.with_key(location.label());
        Ok(match &location {
            Location::Wrapped { kek, .. } => {
                e.with_field("kek", custody_kms::BackendUri::label(kek))?
            }
            _ => e,
        })
    };
    update(ks, &scope, |existing| match existing {
        None => Ok((
            Membership::new(scope.clone(), member.clone()),
            located(event("sealing-key-create", &scope, &member.kid)?)?,
        )),
        Some(mut m) => {
            let old = m.current.kid.clone();
            m.rotate(member.clone())?;
            let e = located(event("sealing-key-rotate", &scope, &member.kid)?)?
                .with_field("previous-kid", old)?;
            Ok((m, e))
        }
    })?;
    let jwk: Value = serde_json::from_str(&recipient.to_json())
        .map_err(|_| CliError::new("io", "could not re-read the JWK"))?;
    Ok(json!({ "keyId": location.label(), "jwk": jwk, "scope": scope.as_str() }))
}

/// The state-store key of a wrapped sealing key's envelope.
fn envelope_key(id: &KeyId) -> String {
    format!("sealing-key-envelope:{}", id.as_str())
}

/// What a wrapped sealing key's envelope binds (AAD): its id, its
/// algorithm and its scope, so that an envelope moved under another id or
/// scope does not open.
fn envelope_context(id: &KeyId, scope: &Scope) -> Result<EncryptionContext, CliError> {
    Ok(EncryptionContext::new()
        .with("custody", "sealing-key")?
        .with("keyId", id.as_str())?
        .with("algorithm", KeyAlgorithm::P256.as_str())?
        .with("scope", scope.as_str())?)
}

/// The id of a P-256 key, as the keystore names the keys it generates:
/// `p256-` and the first 16 hex digits of SHA-256 over the algorithm's
/// name, a zero byte and the compressed public key.
fn p256_key_id(public: &AnyPublicKey) -> Result<KeyId, CliError> {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(KeyAlgorithm::P256.as_str().as_bytes());
    h.update([0]);
    h.update(public.to_bytes());
    Ok(KeyId::new(format!(
        "p256-{}",
        hex::encode(&h.finalize()[..8])
    ))?)
}

/// A vault of its own holding the P-256 `secret` under its id (checked to
/// be `expected` when given), its KEK backend `kek`.
fn wrapped_vault(
    kek: SharedBackend,
    ks: &Keystore,
    secret: &[u8],
    expected: Option<&KeyId>,
) -> Result<(KeyId, SharedBackend), CliError> {
    let probe = Vault::new(kek.clone(), ks.scheme());
    let public = probe.insert_algorithm_key(
        KeyId::new("probe")?,
        KeyAlgorithm::P256,
        PrivateKeyBytes::from_slice(secret)?,
    )?;
    let id = p256_key_id(&public)?;
    if expected.is_some_and(|e| *e != id) {
        return Err(malformed(
            "a wrapped member's key is not the one its id names",
        ));
    }
    let vault = Vault::new(kek, ks.scheme());
    vault.insert_algorithm_key(
        id.clone(),
        KeyAlgorithm::P256,
        PrivateKeyBytes::from_slice(secret)?,
    )?;
    Ok((id, Arc::new(vault)))
}

/// `sealing-key create --kek URI`: a fresh P-256 key sealed by that KEK
/// into an envelope stored (create-only) in the state store; its id and a
/// vault holding it.
fn wrap_new_key(
    ks: &Keystore,
    scope: &Scope,
    kek_uri: &str,
) -> Result<(KeyId, SharedBackend), CliError> {
    let uri = crate::backends::parse(kek_uri, "--kek")?;
    if uri == custody_kms::BackendUri::Passphrase {
        return Err(CliError::bad_input(
            "--kek: a sealing key's own KEK is aws-kms:KEY or pkcs11:...; a passphrase is not \
             supported here (without --kek the key is wrapped by the keystore's own KEK)",
        ));
    }
    let kek = crate::backends::kek(&uri, "--kek")?;
    let wrapping = kek.wrapping().ok_or_else(|| {
        CliError::new("unsupported", "--kek: this backend does not wrap data keys")
    })?;
    // A random 32-byte string is a P-256 scalar unless it is zero or at
    // least the group order (probability below 2^-32): draw again then.
    let mut drawn = None;
    for _ in 0..8 {
        let secret = PrivateKeyBytes::random()?;
        if let Ok(v) = wrapped_vault(kek.clone(), ks, secret.expose_secret(), None) {
            drawn = Some((secret, v));
            break;
        }
    }
    let (secret, (id, vault)) = drawn.ok_or(custody_core::Error::Rng)?;
    let envelope = Envelope::seal(
        wrapping,
        &wrapping.default_kek(),
        &envelope_context(&id, scope)?,
        secret.expose_secret(),
    )
    .wait()
    .map_err(|e| CliError::from(e).context("--kek"))?;
    match ks
        .state()
        .compare_and_swap(&envelope_key(&id), None, envelope.as_bytes())
        .wait()?
    {
        CasOutcome::Swapped { .. } => Ok((id, vault)),
        CasOutcome::Conflict { .. } => Err(CliError::new(
            "already-exists",
            "a wrapped sealing key of that id exists",
        )),
    }
}

/// The vault holding the wrapped sealing key `id` of `scope`, its envelope
/// opened by the KEK `kek_uri` names (one unwrap by that backend, recorded
/// in the audit log): the KEK's backend must be reachable.
///
/// # Errors
/// The KEK backend's own kinds (`unavailable`, `access-denied`,
/// `key-disabled`, `not-found`, ...): a configuration or reachability
/// problem, not one of the sealed secret; kind `malformed` for a missing
/// envelope or one that is not the key its id names.
fn open_wrapped(
    ks: &Keystore,
    scope: &Scope,
    id: &KeyId,
    kek_uri: &str,
) -> Result<SharedBackend, CliError> {
    let flag = "the sealing key's KEK";
    let kek = crate::backends::kek(&crate::backends::parse(kek_uri, flag)?, flag)?;
    let wrapping = kek
        .wrapping()
        .ok_or_else(|| CliError::new("unsupported", "the sealing key's KEK does not unwrap"))?;
    let record = ks
        .state()
        .get(&envelope_key(id))
        .wait()?
        .ok_or_else(|| malformed("a wrapped member's envelope is missing"))?;
    let secret = Envelope::from_vec(record.value.to_vec())
        .map_err(|_| malformed("a wrapped member's envelope"))?
        .open(wrapping, &envelope_context(id, scope)?)
        .wait()
        .map_err(|e| CliError::from(e).context(flag))?;
    let (_, vault) = wrapped_vault(kek.clone(), ks, secret.expose_secret(), Some(id))?;
    ks.audit()
        .append(
            AuditEvent::new(AuditOp::UNWRAP, AuditOutcome::Success)
                .with_detail("sealing key unwrapped by its own KEK")
                .with_key(id.as_str())
                .with_field("scope", scope.as_str())?
                .with_field("kek", custody_kms::BackendUri::label(kek_uri))?,
        )
        .wait()?;
    Ok(vault)
}

/// `custody sealing-key retire`.
pub(crate) fn retire(ks: &Keystore, a: &KidArgs) -> Result<Value, CliError> {
    lifecycle(ks, a, "retired", Membership::retire, "sealing-key-retire")
}

/// `custody sealing-key revoke`.
pub(crate) fn revoke(ks: &Keystore, a: &KidArgs) -> Result<Value, CliError> {
    lifecycle(ks, a, "revoked", Membership::revoke, "sealing-key-revoke")
}

fn lifecycle(
    ks: &Keystore,
    a: &KidArgs,
    status: &str,
    change: fn(&mut Membership, &str) -> Result<(), Refusal>,
    op: &str,
) -> Result<Value, CliError> {
    let scope = scope(&a.scope)?;
    let kid = kid(&a.kid)?;
    update(ks, &scope, |existing| {
        let mut m = existing.ok_or_else(|| no_keyring(&scope))?;
        change(&mut m, kid)?;
        Ok((m, event(op, &scope, kid)?))
    })?;
    Ok(json!({ "scope": scope.as_str(), "kid": kid, "status": status }))
}

fn no_keyring(scope: &Scope) -> CliError {
    CliError::new(
        "not-found",
        format!("no sealing key for the scope {scope} (sealing-key create makes one)"),
    )
}

/// `custody sealing-key list`.
pub(crate) fn list(ks: &Keystore, a: &ScopeArgs) -> Result<Value, CliError> {
    let scope = scope(&a.scope)?;
    let (m, _) = load(ks, &scope)?.ok_or_else(|| no_keyring(&scope))?;
    Ok(m.report())
}

/// `custody seal`: what a browser does, with no keystore.
pub(crate) fn seal(a: &SealArgs) -> Result<Value, CliError> {
    let jwk = std::fs::read(&a.jwk).map_err(|e| CliError::bad_input(format!("--jwk: {e}")))?;
    let recipient =
        Recipient::from_json(&jwk).map_err(|e| CliError::bad_input(format!("--jwk: {e}")))?;
    let scope = scope(&a.scope)?;
    let alg = JweAlgorithm::from_name(&a.alg).ok_or_else(|| {
        CliError::bad_input("--alg: must be one of RSA-OAEP-256, ECDH-ES, ECDH-ES+A256KW")
    })?;
    let plaintext = SecretVec::new(crate::commands::read_input_bytes(&a.input, "--in")?);
    let sealed = jwe::seal_with(&recipient, alg, &scope, plaintext.expose_secret()).map_err(
        |e| match e {
            SealError::Jose(custody_jose::JoseError::AlgorithmMismatch) => CliError::new(
                "algorithm-mismatch",
                format!("--alg: {} does not fit the JWK's key", alg.name()),
            ),
            SealError::Jose(e) => CliError::bad_input(format!("--in: {e}")),
            other => CliError::new(other.kind(), other.to_string()),
        },
    )?;
    Ok(json!({ "jwe": sealed }))
}

/// The gated signer of a member: `Audited(TotpGate(PolicyGate(backend)))`,
/// as every signature is.
fn gated_pin(ks: &Keystore, scope: &Scope, location: &Location) -> Result<KeySigner, CliError> {
    let (backend, key): (SharedBackend, KeyRef) = match location {
        Location::Stored(id) => (crate::commands::backend(ks)?, KeyRef::Stored(id.clone())),
        Location::Wrapped { id, kek } => (
            crate::commands::gated(ks, open_wrapped(ks, scope, id, kek)?)?,
            KeyRef::Stored(id.clone()),
        ),
        Location::External(uri) => {
            let (inner, key) = crate::backends::signer(
                &crate::backends::parse(uri, "the sealing keyring")?,
                "the sealing keyring",
            )?;
            (crate::commands::gated(ks, inner)?, key)
        }
    };
    crate::jose::pin_any(backend, key)
}

/// The one kind of every failure to open a sealed secret, but a gate's
/// refusal (a TOTP code required, a policy's denial), which keeps its own
/// kind as it does for a signature.
fn unseal_failed(message: impl std::fmt::Display) -> CliError {
    CliError::new(
        "unseal-failed",
        format!("the sealed secret could not be opened: {message}"),
    )
}

fn open_error(e: OpenError) -> CliError {
    match e {
        OpenError::Backend(e @ custody_core::Error::Denied(_)) => e.into(),
        other => unseal_failed(other),
    }
}

/// The JWE of `--in`, its scope's keyring (the current key and the one
/// the JWE names), all behind the gates.
///
/// A member key that cannot be reached (its KMS, its HSM, or the KEK that
/// wraps it unreachable, refusing or disabled) is `unseal-failed` like
/// every other failure to open (shared/CLI.md): one kind, the backend's
/// reason in the message only.
fn keyring_for(ks: &Keystore, scope: &Scope, text: &str) -> Result<SealingKeyring, CliError> {
    let (membership, _) = load(ks, scope)
        .map_err(unseal_failed)?
        .ok_or_else(|| unseal_failed(format!("no sealing key for the scope {scope}")))?;
    let parsed = CompactJwe::parse(text).map_err(|e| unseal_failed(OpenError::from(e)))?;
    let named = parsed.header().kid().unwrap_or("");
    membership
        .keyring(&|location| gated_pin(ks, scope, location), Some(named))
        .map_err(unseal_failed)
}

/// `custody unseal`.
pub(crate) fn unseal(ks: &Keystore, a: &UnsealArgs) -> Result<Value, CliError> {
    let scope = scope(&a.scope)?;
    let (dir, name) = out_path(&a.out)?;
    if std::fs::symlink_metadata(&a.out).is_ok() {
        return Err(exists(&a.out));
    }
    let text = crate::commands::read_input(&a.input, "--in")?;
    let text = text.trim();
    let ring = keyring_for(ks, &scope, text)?;
    let auth = crate::commands::consent(a.code.as_ref());
    let secret = ring.open(text, &auth).wait().map_err(open_error)?;
    let kid = CompactJwe::parse(text)
        .ok()
        .and_then(|p| p.header().kid().map(str::to_owned))
        .unwrap_or_default();
    crate::quorum::write_new(
        &dir,
        &name,
        secret.expose_secret(),
        crate::quorum::Mode::Secret,
    )?;
    Ok(json!({ "bytes": secret.expose_secret().len(), "kid": kid }))
}

/// `--out` as a directory and a file name; `-` (stdout) refused.
fn out_path(out: &Path) -> Result<(PathBuf, String), CliError> {
    if out.as_os_str() == "-" {
        return Err(CliError::bad_input(
            "--out: the plaintext goes to a new file, never to stdout",
        ));
    }
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::bad_input("--out: not a file name"))?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name.to_owned()))
}

fn exists(out: &Path) -> CliError {
    CliError::new(
        "already-exists",
        format!("--out: {} exists: it is never replaced", out.display()),
    )
}

/// `custody reseal`.
pub(crate) fn reseal(ks: &Keystore, a: &ResealArgs) -> Result<Value, CliError> {
    let scope = scope(&a.scope)?;
    let text = crate::commands::read_input(&a.input, "--in")?;
    let text = text.trim();
    let ring = keyring_for(ks, &scope, text)?;
    let auth = crate::commands::consent(a.code.as_ref());
    let sealed = ring.reseal(text, &auth).wait().map_err(open_error)?;
    Ok(json!({ "jwe": sealed, "kid": ring.current_kid() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(n: u8, key: &str) -> Member {
        Member {
            kid: format!("{}{}", char::from(b'A' + n), "k".repeat(KID_LEN - 1)),
            key: if key.starts_with("aws-kms:") {
                Location::External(key.to_owned())
            } else if let Some((id, kek)) = key.split_once(" under ") {
                Location::Wrapped {
                    id: KeyId::new(id).unwrap(),
                    kek: kek.to_owned(),
                }
            } else {
                Location::Stored(KeyId::new(key).unwrap())
            },
        }
    }

    /// A key wrapped by its own KEK is a member of three fields, `kid`,
    /// `keyId` and `kek` (a KMS or PKCS#11 URI, never `passphrase`); the
    /// record holds the URI and the id, no key material.
    #[test]
    fn a_wrapped_member_survives_its_record_and_is_read_strictly() {
        let a = member(0, "p256-0123456789abcdef under aws-kms:alias/sealing-kek");
        let b = member(
            1,
            "p256-fedcba9876543210 under pkcs11:token=t;object=kek?pin-source=file:/run/pin",
        );
        let mut m = Membership::new(scope(), a.clone());
        m.rotate(b.clone()).unwrap();
        assert_eq!(reload(&m), m);
        let json = m.to_json();
        assert_eq!(
            json["previous"][0],
            json!({"kid": a.kid, "keyId": "p256-0123456789abcdef", "kek": "aws-kms:alias/sealing-kek"})
        );
        // `list` shows the KEK without its query (a local file's path).
        assert_eq!(m.report()["current"]["kek"], "pkcs11:token=t;object=kek");
        for (what, edit) in [
            ("passphrase is not a KEK of its own", json!("passphrase")),
            ("not a URI", json!("gcp:k")),
            ("not a string", json!(7)),
        ] {
            let mut v = json.clone();
            v["current"]["kek"] = edit;
            let e = Membership::from_bytes(&serde_json::to_vec(&v).unwrap(), &scope()).unwrap_err();
            assert_eq!(e.to_json()["error"]["kind"], "malformed", "{what}");
        }
        let mut v = json.clone();
        v["current"].as_object_mut().unwrap().remove("kek");
        v["current"]["other"] = json!("aws-kms:k");
        let e = Membership::from_bytes(&serde_json::to_vec(&v).unwrap(), &scope()).unwrap_err();
        assert_eq!(e.to_json()["error"]["kind"], "malformed");
    }

    fn scope() -> Scope {
        Scope::new("importer/api-keys").unwrap()
    }

    fn reload(m: &Membership) -> Membership {
        let bytes = serde_json::to_vec(&m.to_json()).unwrap();
        Membership::from_bytes(&bytes, &scope()).unwrap()
    }

    #[test]
    fn a_membership_survives_its_record_after_each_change() {
        let a = member(0, "p256-0123456789abcdef");
        let b = member(1, "aws-kms:alias/importer");
        let c = member(2, "p256-fedcba9876543210");
        let mut m = Membership::new(scope(), a.clone());
        assert_eq!(reload(&m), m);
        m.rotate(b.clone()).unwrap();
        m.rotate(c.clone()).unwrap();
        assert_eq!(m.previous, vec![b.clone(), a.clone()]);
        assert_eq!(reload(&m), m);
        m.retire(&a.kid).unwrap();
        assert_eq!(reload(&m), m);
        m.revoke(&b.kid).unwrap();
        let again = reload(&m);
        assert_eq!(again, m);
        assert_eq!(again.current, c);
        assert!(again.previous.is_empty());
        assert_eq!(again.revoked, vec![b.kid.clone()]);
        // The rules hold on the reloaded record.
        let mut r = again;
        assert_eq!(r.rotate(b.clone()), Err(Refusal::Revoked));
        assert_eq!(r.rotate(c.clone()), Err(Refusal::Member));
        assert_eq!(r.retire(&c.kid), Err(Refusal::Current));
        assert_eq!(r.revoke(&c.kid), Err(Refusal::Current));
        assert_eq!(r.retire(&a.kid), Err(Refusal::NotAMember));
        // A retired key may still be revoked; revoking twice records once.
        r.revoke(&a.kid).unwrap();
        r.revoke(&a.kid).unwrap();
        assert_eq!(r.revoked, vec![b.kid, a.kid]);
    }

    /// The record's format, frozen: a change that breaks reading what
    /// keystores hold fails here.
    #[test]
    fn the_record_format_is_frozen() {
        let frozen = br#"{"current":{"key":"aws-kms:alias/importer","kid":"Bkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"},"format":1,"previous":[{"keyId":"p256-0123456789abcdef","kid":"Akkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"}],"revoked":["Ckkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"],"scope":"importer/api-keys"}"#;
        let mut m = Membership::new(scope(), member(0, "p256-0123456789abcdef"));
        m.rotate(member(1, "aws-kms:alias/importer")).unwrap();
        m.revoke(&member(2, "p256-fedcba9876543210").kid).unwrap();
        assert_eq!(Membership::from_bytes(frozen, &scope()).unwrap(), m);
        let value: Value = serde_json::from_slice(frozen).unwrap();
        assert_eq!(m.to_json(), value);
    }

    #[test]
    fn a_malformed_record_is_a_typed_error() {
        let good = {
            let mut m = Membership::new(scope(), member(0, "p256-0123456789abcdef"));
            m.rotate(member(1, "aws-kms:alias/k")).unwrap();
            m.to_json()
        };
        let kid0 = good["current"]["kid"].clone();
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("not JSON", b"{".to_vec()),
            ("an array", b"[]".to_vec()),
            (
                "a member twice",
                br#"{"format":1,"format":1,"scope":"importer/api-keys","current":{},"previous":[],"revoked":[]}"#.to_vec(),
            ),
        ];
        let mut edit = |what: &'static str, f: &dyn Fn(&mut Value)| {
            let mut v = good.clone();
            f(&mut v);
            cases.push((what, serde_json::to_vec(&v).unwrap()));
        };
        edit("another scope", &|v| v["scope"] = json!("other/scope"));
        edit("another format", &|v| v["format"] = json!(2));
        edit("an unknown member", &|v| v["extra"] = json!(1));
        edit("a missing member", &|v| {
            v.as_object_mut().unwrap().remove("revoked");
        });
        edit("a short kid", &|v| v["current"]["kid"] = json!("abc"));
        edit("a kid with padding", &|v| {
            v["current"]["kid"] = json!(format!("{}=", "a".repeat(42)));
        });
        edit("both keyId and key", &|v| {
            v["current"]["keyId"] = json!("p256-0123456789abcdef");
        });
        edit("a bad key id", &|v| {
            v["previous"][0]["keyId"] = json!("../../x")
        });
        edit("a bad key URI", &|v| v["current"]["key"] = json!("gcp:k"));
        edit("a kid twice", &|v| v["previous"][0]["kid"] = kid0.clone());
        edit("a member revoked", &|v| {
            v["revoked"] = json!([kid0.clone()])
        });
        edit("revoked not an array", &|v| v["revoked"] = json!("x"));
        for (what, bytes) in cases {
            let Err(e) = Membership::from_bytes(&bytes, &scope()) else {
                panic!("{what}: accepted");
            };
            assert_eq!(e.to_json()["error"]["kind"], "malformed", "{what}");
        }
    }
}
