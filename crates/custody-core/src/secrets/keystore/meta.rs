//! `keystore.json`: formats v1 and v2 (`SPEC.md`, "Keystore directory").
//!
//! Parsing checks every field that needs no key: a damaged file is reported
//! as damaged before any KDF work or backend call.

use serde::{Deserialize, Serialize};

use crate::secrets::hd::ExtendedPublicKey;
use crate::{Error, KdfParams, KekId, WalletScheme};

pub(crate) const FORMAT: &str = "custody-keystore";
/// Largest keystore.json accepted (a hostile file is refused before parsing).
const MAX_META_BYTES: usize = 64 * 1024;
/// Longest backend URI recorded (AWS ARNs and RFC 7512 URIs fit easily).
const MAX_URI_BYTES: usize = 2048;

/// Which layout a keystore directory has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Every secret is sealed directly under the passphrase KEK.
    V1,
    /// The root KEK seals one keyring (`keyring.env`); every other secret
    /// is sealed under the keyring's current key.
    V2,
}

impl Layout {
    /// The `version` of `keystore.json` in this layout.
    pub(crate) fn version(self) -> u32 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}

/// The root KEK as `keystore.json` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootRecord {
    /// A scrypt KEK from the keystore passphrase.
    Passphrase {
        kdf: KdfParams,
        kek_id: KekId,
        kek_check: [u8; 32],
    },
    /// A KEK held by a backend (a KMS key, an HSM key), named by a URI.
    Backend { uri: String, kek_id: KekId },
}

/// The parsed, checked metadata.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub(crate) layout: Layout,
    pub(crate) generation: u64,
    pub(crate) root: RootRecord,
    pub(crate) scheme: WalletScheme,
    pub(crate) xpub: String,
    pub(crate) fingerprint: [u8; 4],
}

#[derive(Deserialize)]
struct Probe {
    format: String,
    version: u32,
}

/// Format v1 (SPEC.md, "Keystore directory v1").
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetaV1 {
    format: String,
    version: u32,
    generation: u64,
    kdf: KdfParams,
    kek_id: String,
    kek_check: String,
    wallet_scheme: String,
    xpub: String,
    fingerprint: String,
}

/// Format v2 (SPEC.md, "Keystore directory v2").
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetaV2 {
    format: String,
    version: u32,
    generation: u64,
    kek: KekJson,
    wallet_scheme: String,
    xpub: String,
    fingerprint: String,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum KekJson {
    Passphrase {
        kdf: KdfParams,
        #[serde(rename = "kekId")]
        kek_id: String,
        #[serde(rename = "kekCheck")]
        kek_check: String,
    },
    Backend {
        uri: String,
        #[serde(rename = "kekId")]
        kek_id: String,
    },
}

/// `0x` and 8 hex digits.
pub(crate) fn hex_fingerprint(fingerprint: [u8; 4]) -> String {
    format!("0x{}", hex::encode(fingerprint))
}

fn malformed(what: &'static str) -> Error {
    Error::MalformedRecord(what)
}

fn parse_check(hex_str: &str) -> Result<[u8; 32], Error> {
    let mut check = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut check)
        .map_err(|_| malformed("kekCheck is not 64 hex digits"))?;
    Ok(check)
}

fn parse_fingerprint(s: &str) -> Result<[u8; 4], Error> {
    let hexpart = s.strip_prefix("0x").ok_or(malformed("fingerprint"))?;
    let mut out = [0u8; 4];
    hex::decode_to_slice(hexpart, &mut out).map_err(|_| malformed("fingerprint"))?;
    Ok(out)
}

/// A passphrase root: the KDF parameters bounded, the id the one the salt
/// gives.
fn passphrase_root(kdf: KdfParams, kek_id: &str, kek_check: &str) -> Result<RootRecord, Error> {
    kdf.validate()?;
    let kek_check = parse_check(kek_check)?;
    let expected = kdf.kek_id()?;
    if expected.as_str() != kek_id {
        return Err(malformed("kekId does not match the KDF salt"));
    }
    Ok(RootRecord::Passphrase {
        kdf,
        kek_id: expected,
        kek_check,
    })
}

/// Checks a backend URI: a scheme, then printable ASCII without spaces.
pub(crate) fn check_backend_uri(uri: &str) -> Result<(), Error> {
    let ok = !uri.is_empty()
        && uri.len() <= MAX_URI_BYTES
        && uri.bytes().all(|b| b.is_ascii_graphic())
        && uri
            .split_once(':')
            .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty());
    if ok && uri != "passphrase" {
        Ok(())
    } else {
        Err(Error::InvalidKeyId(
            "a backend KEK is named by a URI such as aws-kms:KEY or pkcs11:…",
        ))
    }
}

impl Meta {
    /// Parses `keystore.json` (v1 or v2) and checks every field that needs
    /// no key: the format, version and generation, the root KEK record
    /// (KDF parameters bounded before any KDF work, the passphrase KEK id
    /// the salt's, a backend URI and KEK id well formed), the wallet scheme,
    /// the master xpub and the fingerprint (which must be the xpub's).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_META_BYTES {
            return Err(malformed("keystore.json is too large"));
        }
        let not_meta = || malformed("keystore.json is not valid keystore metadata");
        let probe: Probe = serde_json::from_slice(bytes).map_err(|_| not_meta())?;
        if probe.format != FORMAT {
            return Err(malformed("unsupported keystore format or version"));
        }
        let (layout, generation, root, scheme, xpub, fingerprint) = match probe.version {
            1 => {
                let m: MetaV1 = serde_json::from_slice(bytes).map_err(|_| not_meta())?;
                let root = passphrase_root(m.kdf, &m.kek_id, &m.kek_check)?;
                (
                    Layout::V1,
                    m.generation,
                    root,
                    m.wallet_scheme,
                    m.xpub,
                    m.fingerprint,
                )
            }
            2 => {
                let m: MetaV2 = serde_json::from_slice(bytes).map_err(|_| not_meta())?;
                let root = match m.kek {
                    KekJson::Passphrase {
                        kdf,
                        kek_id,
                        kek_check,
                    } => passphrase_root(kdf, &kek_id, &kek_check)?,
                    KekJson::Backend { uri, kek_id } => {
                        check_backend_uri(&uri)
                            .map_err(|_| malformed("kek.uri is not a backend URI"))?;
                        let kek_id = KekId::new(kek_id)
                            .map_err(|_| malformed("kek.kekId is not a KEK id"))?;
                        RootRecord::Backend { uri, kek_id }
                    }
                };
                (
                    Layout::V2,
                    m.generation,
                    root,
                    m.wallet_scheme,
                    m.xpub,
                    m.fingerprint,
                )
            }
            _ => return Err(malformed("unsupported keystore format or version")),
        };
        if generation == 0 {
            return Err(malformed("keystore generation must be at least 1"));
        }
        let scheme: WalletScheme = scheme
            .parse()
            .map_err(|_| malformed("unknown wallet scheme"))?;
        let parsed =
            ExtendedPublicKey::parse(&xpub).map_err(|_| malformed("xpub is not a valid xpub"))?;
        let fingerprint = parse_fingerprint(&fingerprint)?;
        if fingerprint != parsed.fingerprint() {
            return Err(malformed("fingerprint is not the xpub's fingerprint"));
        }
        Ok(Self {
            layout,
            generation,
            root,
            scheme,
            xpub,
            fingerprint,
        })
    }

    /// The JSON form, as written to `keystore.json` (in the layout's own
    /// format version).
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, Error> {
        let fingerprint = hex_fingerprint(self.fingerprint);
        let wallet_scheme = self.scheme.as_str().to_owned();
        let format = FORMAT.to_owned();
        let version = self.layout.version();
        let out = match (self.layout, &self.root) {
            (
                Layout::V1,
                RootRecord::Passphrase {
                    kdf,
                    kek_id,
                    kek_check,
                },
            ) => serde_json::to_vec_pretty(&MetaV1 {
                format,
                version,
                generation: self.generation,
                kdf: kdf.clone(),
                kek_id: kek_id.as_str().to_owned(),
                kek_check: hex::encode(kek_check),
                wallet_scheme,
                xpub: self.xpub.clone(),
                fingerprint,
            }),
            (Layout::V1, RootRecord::Backend { .. }) => {
                return Err(malformed("a v1 keystore has a passphrase KEK only"));
            }
            (Layout::V2, root) => serde_json::to_vec_pretty(&MetaV2 {
                format,
                version,
                generation: self.generation,
                kek: match root {
                    RootRecord::Passphrase {
                        kdf,
                        kek_id,
                        kek_check,
                    } => KekJson::Passphrase {
                        kdf: kdf.clone(),
                        kek_id: kek_id.as_str().to_owned(),
                        kek_check: hex::encode(kek_check),
                    },
                    RootRecord::Backend { uri, kek_id } => KekJson::Backend {
                        uri: uri.clone(),
                        kek_id: kek_id.as_str().to_owned(),
                    },
                },
                wallet_scheme,
                xpub: self.xpub.clone(),
                fingerprint,
            }),
        };
        out.map_err(|_| malformed("keystore metadata"))
    }
}
