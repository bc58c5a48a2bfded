//! Web3 Secret Storage v3 keystores: the encrypted-key JSON files that geth,
//! MetaMask, ethers and eth-account write and read.
//!
//! # The format
//! ```text
//! {
//!   "address": "<20 bytes hex, optional>",
//!   "crypto": {                      // geth's old files spell it "Crypto"
//!     "cipher": "aes-128-ctr",
//!     "cipherparams": { "iv": "<16 bytes hex>" },
//!     "ciphertext": "<32 bytes hex>",
//!     "kdf": "scrypt" | "pbkdf2",
//!     "kdfparams": { "dklen": 32, "n", "r", "p", "salt" }          // scrypt
//!                | { "c", "dklen": 32, "prf": "hmac-sha256", "salt" }, // pbkdf2
//!     "mac": "<32 bytes hex>"
//!   },
//!   "id": "<UUID>",
//!   "version": 3
//! }
//! ```
//! The KDF turns the password into a 32-byte derived key `DK`;
//! `mac = keccak256(DK[16..32] ‖ ciphertext)`; the private key is
//! `AES-128-CTR(key = DK[0..16], iv)` of the ciphertext, the counter being
//! the whole 128-bit IV, big-endian, wrapping as Go's `cipher.NewCTR` does.
//!
//! # What is accepted
//! [`parse`] checks the structure only, and cheaply (a fuzz target calls
//! it): `version` must be the integer 3; `cipher` `aes-128-ctr`; `kdf`
//! `scrypt` (`n` a power of two, `r`, `p` at least 1) or `pbkdf2` (`prf`
//! `hmac-sha256`, `c` at least 1); `dklen` 32; the IV, ciphertext and MAC
//! exactly 16, 32 and 32 bytes; hex in either case with an optional `0x`
//! (eth-keyfile accepts both); `address`, if present, 20 bytes (an EIP-55
//! mixed-case address, as eth-account writes it, must carry a correct
//! checksum); `id`, if present, any UUID. Members this crate does not know
//! (ethers' `x-ethers`, MetaMask's extras) are ignored. Everything else is a
//! typed [`Error`], never a panic.
//!
//! The KDF cost a file asks for is bounded before any work is done:
//! scrypt `n ≤ 2^20` ([`MAX_SCRYPT_LOG_N`]), memory `128·r·n ≤ 1 GiB`
//! ([`MAX_SCRYPT_MEMORY_BYTES`]) and work `n·r·p ≤ 2^24`
//! ([`MAX_SCRYPT_WORK`], eight times geth's standard parameters); PBKDF2
//! `c ≤ 10 000 000` ([`MAX_PBKDF2_ITERATIONS`]); salts up to
//! [`MAX_SALT_BYTES`]. Beyond them: [`Error::KeystoreKdfLimit`].
//!
//! [`V3Keystore::decrypt`] derives the key, compares the MAC in constant time
//! (a mismatch is [`Error::WrongPassword`], whatever its cause), decrypts,
//! checks that the result is a valid secp256k1 secret key
//! ([`Error::InvalidPrivateKey`]) and, if the file names an address, that it
//! is this key's ([`Error::KeystoreAddressMismatch`]).
//!
//! # Export
//! [`encrypt`] writes what geth writes: a random 32-byte salt, 16-byte IV
//! and UUID v4 `id` from the OS generator, the lower-case `address` without
//! `0x`, and the KDF parameters of [`KdfChoice`] (geth's standard and
//! `--lightkdf` scrypt, or PBKDF2 with 262 144 iterations).
//!
//! ```
//! use custody_core::{Passphrase, PrivateKeyBytes};
//! use custody_eth::keystore_v3::{self, KdfChoice};
//!
//! # fn main() -> Result<(), custody_eth::Error> {
//! let secret = PrivateKeyBytes::new([0x46; 32]);
//! let password = Passphrase::from_str_copy("correct horse battery staple");
//! let json = keystore_v3::encrypt(&secret, &password, KdfChoice::ScryptLight)?;
//!
//! let keystore = keystore_v3::parse(&json)?;
//! assert_eq!(
//!     keystore.address().map(|a| a.to_checksum()).as_deref(),
//!     Some("0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F")
//! );
//! assert_eq!(keystore.decrypt(&password)?, secret);
//! assert!(matches!(
//!     keystore.decrypt(&Passphrase::from_str_copy("wrong")),
//!     Err(custody_eth::Error::WrongPassword)
//! ));
//! # Ok(())
//! # }
//! ```
//!
//! Intermediate derived keys and the decrypted key live in `Zeroizing`
//! buffers, and the AES key schedule and CTR state are wiped on drop. The
//! `scrypt` crate's internal work buffers are not wiped (it offers no way
//! to): they hold password-derived state only until they are freed.

use std::fmt;

use aes::cipher::{KeyIvInit, StreamCipher};
use custody_core::{Passphrase, PrivateKeyBytes, PublicKey, fill_random};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::keccak::keccak256_parts;
use crate::{Address, Error};

/// The largest keystore document [`parse`] reads, in bytes (a keystore is
/// about 500 bytes; ethers' extra members stay well under this).
pub const MAX_JSON_BYTES: usize = 64 * 1024;
/// The largest scrypt `log2(n)` accepted (`n ≤ 2^20`).
pub const MAX_SCRYPT_LOG_N: u8 = 20;
/// The most memory scrypt may need, `128·r·n` bytes (1 GiB).
pub const MAX_SCRYPT_MEMORY_BYTES: u64 = 1 << 30;
/// The most scrypt work accepted, `n·r·p` (eight times geth's standard
/// `2^18·8·1`).
pub const MAX_SCRYPT_WORK: u64 = 1 << 24;
/// The most PBKDF2 iterations accepted.
pub const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The longest KDF salt accepted, in bytes.
pub const MAX_SALT_BYTES: usize = 1024;

/// The derived-key length (`dklen`) of every v3 keystore this crate reads
/// and writes.
const DKLEN: u64 = 32;
/// The salt length [`encrypt`] writes (geth's).
const SALT_LEN: usize = 32;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// A key derivation function and its cost parameters, as a v3 keystore
/// states them (the salt aside).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V3Kdf {
    /// scrypt (RFC 7914) with `n = 2^log_n`.
    Scrypt {
        /// `log2(n)`.
        log_n: u8,
        /// Block size `r`.
        r: u32,
        /// Parallelism `p`.
        p: u32,
    },
    /// PBKDF2 (RFC 8018) with HMAC-SHA-256.
    Pbkdf2 {
        /// Iteration count `c`.
        c: u32,
    },
}

impl V3Kdf {
    /// The work this KDF asks for: `n·r·p` for scrypt, `c` for PBKDF2 (a
    /// caller can refuse expensive files before calling
    /// [`V3Keystore::decrypt`]).
    #[must_use]
    pub fn work(&self) -> u128 {
        match *self {
            Self::Scrypt { log_n, r, p } => {
                (1u128 << log_n.min(127)) * u128::from(r) * u128::from(p)
            }
            Self::Pbkdf2 { c } => u128::from(c),
        }
    }

    /// Checks the parameters against this module's domain and cost limits.
    fn check(&self) -> Result<(), Error> {
        match *self {
            Self::Scrypt { log_n, r, p } => {
                if log_n == 0 {
                    return Err(Error::KeystoreMalformed {
                        field: "crypto.kdfparams.n",
                        reason: "must be a power of two greater than 1",
                    });
                }
                if r == 0 {
                    return Err(Error::KeystoreMalformed {
                        field: "crypto.kdfparams.r",
                        reason: "must be at least 1",
                    });
                }
                if p == 0 {
                    return Err(Error::KeystoreMalformed {
                        field: "crypto.kdfparams.p",
                        reason: "must be at least 1",
                    });
                }
                if log_n > MAX_SCRYPT_LOG_N {
                    return Err(Error::KeystoreKdfLimit("crypto.kdfparams.n"));
                }
                let n = 1u128 << log_n;
                if 128 * u128::from(r) * n > u128::from(MAX_SCRYPT_MEMORY_BYTES) {
                    return Err(Error::KeystoreKdfLimit("crypto.kdfparams.r"));
                }
                if self.work() > u128::from(MAX_SCRYPT_WORK) {
                    return Err(Error::KeystoreKdfLimit("crypto.kdfparams.p"));
                }
                Ok(())
            }
            Self::Pbkdf2 { c } => {
                if c == 0 {
                    return Err(Error::KeystoreMalformed {
                        field: "crypto.kdfparams.c",
                        reason: "must be at least 1",
                    });
                }
                if c > MAX_PBKDF2_ITERATIONS {
                    return Err(Error::KeystoreKdfLimit("crypto.kdfparams.c"));
                }
                Ok(())
            }
        }
    }
}

/// The KDF [`encrypt`] uses.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KdfChoice {
    /// scrypt `n = 2^18, r = 8, p = 1`: geth's `StandardScryptN/P` and
    /// eth-account's default (256 MiB, about a second).
    ScryptStandard,
    /// scrypt `n = 4096, r = 8, p = 6`: geth's `--lightkdf`
    /// (`LightScryptN/P`), for tests and constrained devices.
    ScryptLight,
    /// PBKDF2-HMAC-SHA-256 with `c = 262 144`.
    Pbkdf2,
    /// Explicit parameters, for interoperability tests. They must lie within
    /// the limits [`parse`] enforces; nothing stops them being weak, so
    /// prefer the named presets.
    Custom(V3Kdf),
}

impl KdfChoice {
    /// The parameters this choice stands for.
    #[must_use]
    pub fn params(self) -> V3Kdf {
        match self {
            Self::ScryptStandard => V3Kdf::Scrypt {
                log_n: 18,
                r: 8,
                p: 1,
            },
            Self::ScryptLight => V3Kdf::Scrypt {
                log_n: 12,
                r: 8,
                p: 6,
            },
            Self::Pbkdf2 => V3Kdf::Pbkdf2 { c: 262_144 },
            Self::Custom(kdf) => kdf,
        }
    }
}

/// A parsed, structurally valid v3 keystore, not yet decrypted.
///
/// Its KDF parameters are within this module's limits, so
/// [`Self::decrypt`] costs at most what those limits allow. `Debug` shows
/// the KDF, address and id, never the salt, IV, ciphertext or MAC.
pub struct V3Keystore {
    kdf: V3Kdf,
    salt: Vec<u8>,
    iv: [u8; 16],
    ciphertext: [u8; 32],
    mac: [u8; 32],
    address: Option<Address>,
    id: Option<String>,
}

impl V3Keystore {
    /// The KDF and its cost parameters.
    #[must_use]
    pub fn kdf(&self) -> V3Kdf {
        self.kdf
    }

    /// The address the file states, if any (not yet checked against the
    /// key: [`Self::decrypt`] does that).
    #[must_use]
    pub fn address(&self) -> Option<Address> {
        self.address
    }

    /// The file's `id` (a UUID), if any.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Derives the key from `password`, checks the MAC in constant time,
    /// decrypts the private key and checks it.
    ///
    /// # Errors
    /// [`Error::WrongPassword`] if the MAC does not match (a wrong password,
    /// or a tampered MAC or ciphertext: deliberately indistinguishable);
    /// [`Error::InvalidPrivateKey`] if the decrypted bytes are not a valid
    /// secp256k1 secret key; [`Error::KeystoreAddressMismatch`] if the file's
    /// `address` is not this key's.
    pub fn decrypt(&self, password: &Passphrase) -> Result<PrivateKeyBytes, Error> {
        let dk = derive_key(&self.kdf, &self.salt, password.expose_secret())?;
        let (enc_key, mac_key) = dk.split_at(16);
        let mac = keccak256_parts(&[mac_key, &self.ciphertext]);
        if !bool::from(mac.ct_eq(&self.mac)) {
            return Err(Error::WrongPassword);
        }
        let mut plain = Zeroizing::new(self.ciphertext);
        aes_128_ctr(enc_key, &self.iv, plain.as_mut_slice())?;
        let secret = PrivateKeyBytes::from_slice(plain.as_slice())?;
        let address = address_of(&secret)?;
        if let Some(stated) = self.address
            && stated != address
        {
            return Err(Error::KeystoreAddressMismatch);
        }
        Ok(secret)
    }
}

impl fmt::Debug for V3Keystore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V3Keystore")
            .field("kdf", &self.kdf)
            .field("address", &self.address)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Parses a v3 keystore document: structure only, no KDF work.
///
/// # Errors
/// [`Error::KeystoreMalformed`] for input over [`MAX_JSON_BYTES`], invalid
/// JSON, a missing member, a member of the wrong type or out of its domain
/// (`n` not a power of two, `r`, `p` or `c` zero, an `id` that is not a
/// UUID, both `crypto` and `Crypto`); [`Error::KeystoreUnsupported`] for a
/// `version` other than 3, a `cipher` other than `aes-128-ctr`, a `kdf`
/// other than `scrypt`/`pbkdf2`, a `prf` other than `hmac-sha256`, or a
/// `dklen` other than 32; [`Error::KeystoreKdfLimit`] for KDF parameters
/// beyond the limits; [`Error::KeystoreHex`] for a member that is not hex;
/// [`Error::InvalidLength`] for an IV, ciphertext, MAC or address of the
/// wrong length; [`Error::AddressChecksum`] for a mixed-case address with
/// a wrong EIP-55 checksum.
pub fn parse(json: &str) -> Result<V3Keystore, Error> {
    if json.len() > MAX_JSON_BYTES {
        return Err(Error::KeystoreMalformed {
            field: "document",
            reason: "too large",
        });
    }
    let doc: Value = serde_json::from_str(json).map_err(|_| Error::KeystoreMalformed {
        field: "document",
        reason: "not valid JSON",
    })?;
    let root = as_object(&doc, "document")?;

    let version = integer(root, "version", "version")?;
    if version != 3 {
        return Err(Error::KeystoreUnsupported("version"));
    }

    let crypto = match (root.get("crypto"), root.get("Crypto")) {
        (Some(c), None) | (None, Some(c)) => as_object(c, "crypto")?,
        (Some(_), Some(_)) => {
            return Err(Error::KeystoreMalformed {
                field: "crypto",
                reason: "both crypto and Crypto present",
            });
        }
        (None, None) => return Err(missing("crypto")),
    };

    if string(crypto, "cipher", "crypto.cipher")? != "aes-128-ctr" {
        return Err(Error::KeystoreUnsupported("crypto.cipher"));
    }
    let cipherparams = object(crypto, "cipherparams", "crypto.cipherparams")?;
    let iv = hex_fixed::<16>(
        string(cipherparams, "iv", "crypto.cipherparams.iv")?,
        "crypto.cipherparams.iv",
    )?;
    let ciphertext = hex_fixed::<32>(
        string(crypto, "ciphertext", "crypto.ciphertext")?,
        "crypto.ciphertext",
    )?;
    let mac = hex_fixed::<32>(string(crypto, "mac", "crypto.mac")?, "crypto.mac")?;

    let kdf_name = string(crypto, "kdf", "crypto.kdf")?;
    let kdfparams = object(crypto, "kdfparams", "crypto.kdfparams")?;
    let kdf = match kdf_name {
        "scrypt" => parse_scrypt(kdfparams)?,
        "pbkdf2" => parse_pbkdf2(kdfparams)?,
        _ => return Err(Error::KeystoreUnsupported("crypto.kdf")),
    };
    if integer(kdfparams, "dklen", "crypto.kdfparams.dklen")? != DKLEN {
        return Err(Error::KeystoreUnsupported("crypto.kdfparams.dklen"));
    }
    kdf.check()?;
    let salt_hex = string(kdfparams, "salt", "crypto.kdfparams.salt")?;
    if salt_hex.len() > 2 + 2 * MAX_SALT_BYTES {
        return Err(Error::KeystoreKdfLimit("crypto.kdfparams.salt"));
    }
    let salt = hex_vec(salt_hex, "crypto.kdfparams.salt")?;
    if salt.len() > MAX_SALT_BYTES {
        return Err(Error::KeystoreKdfLimit("crypto.kdfparams.salt"));
    }

    let address = match root.get("address") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(parse_address(s)?),
        Some(_) => return Err(wrong_type("address", "expected a string")),
    };
    let id = match root.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_uuid(s) => Some(s.clone()),
        Some(Value::String(_)) => {
            return Err(Error::KeystoreMalformed {
                field: "id",
                reason: "not a UUID",
            });
        }
        Some(_) => return Err(wrong_type("id", "expected a string")),
    };

    Ok(V3Keystore {
        kdf,
        salt,
        iv,
        ciphertext,
        mac,
        address,
        id,
    })
}

/// Encrypts `secret` under `password` as a v3 keystore, returned as compact
/// JSON that geth and eth-account decrypt.
///
/// # Errors
/// [`Error::InvalidPrivateKey`] if `secret` is not a valid secp256k1
/// secret key; [`Error::KeystoreMalformed`] or [`Error::KeystoreKdfLimit`]
/// for [`KdfChoice::Custom`] parameters that [`parse`] would refuse;
/// [`Error::Core`] if the OS random generator fails.
pub fn encrypt(
    secret: &PrivateKeyBytes,
    password: &Passphrase,
    kdf: KdfChoice,
) -> Result<String, Error> {
    let params = kdf.params();
    params.check()?;
    let address = address_of(secret)?;

    let mut salt = [0u8; SALT_LEN];
    fill_random(&mut salt)?;
    let mut iv = [0u8; 16];
    fill_random(&mut iv)?;
    let mut uuid = [0u8; 16];
    fill_random(&mut uuid)?;

    let dk = derive_key(&params, &salt, password.expose_secret())?;
    let (enc_key, mac_key) = dk.split_at(16);
    let mut buf = Zeroizing::new([0u8; 32]);
    buf.copy_from_slice(secret.expose_secret());
    aes_128_ctr(enc_key, &iv, buf.as_mut_slice())?;
    // `buf` now holds the ciphertext, which is not secret.
    let ciphertext: [u8; 32] = *buf;
    let mac = keccak256_parts(&[mac_key, &ciphertext]);

    let kdfparams = match params {
        V3Kdf::Scrypt { log_n, r, p } => json!({
            "dklen": DKLEN,
            "n": 1u64 << log_n,
            "p": p,
            "r": r,
            "salt": hex::encode(salt),
        }),
        V3Kdf::Pbkdf2 { c } => json!({
            "c": c,
            "dklen": DKLEN,
            "prf": "hmac-sha256",
            "salt": hex::encode(salt),
        }),
    };
    let kdf_name = match params {
        V3Kdf::Scrypt { .. } => "scrypt",
        V3Kdf::Pbkdf2 { .. } => "pbkdf2",
    };
    let doc = json!({
        "address": hex::encode(address.as_bytes()),
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": { "iv": hex::encode(iv) },
            "ciphertext": hex::encode(ciphertext),
            "kdf": kdf_name,
            "kdfparams": kdfparams,
            "mac": hex::encode(mac),
        },
        "id": format_uuid_v4(uuid),
        "version": 3,
    });
    serde_json::to_string(&doc).map_err(|_| Error::KeystoreMalformed {
        field: "document",
        reason: "serialization failed",
    })
}

/// Runs the keystore's KDF into a zeroizing 32-byte buffer.
fn derive_key(kdf: &V3Kdf, salt: &[u8], password: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
    // Every caller has checked the parameters already; checking again keeps
    // this function safe to call on its own.
    kdf.check()?;
    let mut dk = Zeroizing::new([0u8; 32]);
    match *kdf {
        V3Kdf::Scrypt { log_n, r, p } => {
            let params = scrypt::Params::new(log_n, r, p)
                .map_err(|_| Error::KeystoreKdfLimit("crypto.kdfparams"))?;
            scrypt::scrypt(password, salt, &params, dk.as_mut_slice())
                .map_err(|_| Error::KeystoreKdfLimit("crypto.kdfparams.dklen"))?;
        }
        V3Kdf::Pbkdf2 { c } => {
            pbkdf2::pbkdf2::<pbkdf2::hmac::Hmac<sha2::Sha256>>(
                password,
                salt,
                c,
                dk.as_mut_slice(),
            )
            .map_err(|_| Error::KeystoreKdfLimit("crypto.kdfparams"))?;
        }
    }
    Ok(dk)
}

/// AES-128-CTR with a 128-bit big-endian counter starting at `iv` (which
/// wraps modulo 2^128, as Go's and pycryptodome's do), in place.
fn aes_128_ctr(key: &[u8], iv: &[u8; 16], buf: &mut [u8]) -> Result<(), Error> {
    let mut cipher = Aes128Ctr::new_from_slices(key, iv).map_err(|_| Error::InvalidLength {
        field: "aes-128-ctr key",
        expected: 16,
        found: key.len(),
    })?;
    cipher
        .try_apply_keystream(buf)
        .map_err(|_| Error::KeystoreMalformed {
            field: "crypto.ciphertext",
            reason: "longer than the CTR keystream",
        })
}

/// The address of a secret key, checking that it is a valid secp256k1
/// scalar (`1..n-1`).
fn address_of(secret: &PrivateKeyBytes) -> Result<Address, Error> {
    // `SecretKey` zeroizes itself on drop.
    let sk = k256::SecretKey::from_slice(secret.expose_secret())
        .map_err(|_| Error::InvalidPrivateKey)?;
    Ok(Address::from_public_key(&PublicKey::from(sk.public_key())))
}

fn parse_scrypt(params: &Map<String, Value>) -> Result<V3Kdf, Error> {
    let n = integer(params, "n", "crypto.kdfparams.n")?;
    let r = integer(params, "r", "crypto.kdfparams.r")?;
    let p = integer(params, "p", "crypto.kdfparams.p")?;
    if n < 2 || !n.is_power_of_two() {
        return Err(Error::KeystoreMalformed {
            field: "crypto.kdfparams.n",
            reason: "must be a power of two greater than 1",
        });
    }
    // `trailing_zeros` of a u64 is at most 63.
    let log_n = u8::try_from(n.trailing_zeros())
        .map_err(|_| Error::KeystoreKdfLimit("crypto.kdfparams.n"))?;
    let r = u32::try_from(r).map_err(|_| Error::KeystoreKdfLimit("crypto.kdfparams.r"))?;
    let p = u32::try_from(p).map_err(|_| Error::KeystoreKdfLimit("crypto.kdfparams.p"))?;
    Ok(V3Kdf::Scrypt { log_n, r, p })
}

fn parse_pbkdf2(params: &Map<String, Value>) -> Result<V3Kdf, Error> {
    if string(params, "prf", "crypto.kdfparams.prf")? != "hmac-sha256" {
        return Err(Error::KeystoreUnsupported("crypto.kdfparams.prf"));
    }
    let c = integer(params, "c", "crypto.kdfparams.c")?;
    let c = u32::try_from(c).map_err(|_| Error::KeystoreKdfLimit("crypto.kdfparams.c"))?;
    Ok(V3Kdf::Pbkdf2 { c })
}

/// An address as keystores write it: 40 hex digits, `0x` optional; a
/// mixed-case one must carry a correct EIP-55 checksum.
fn parse_address(s: &str) -> Result<Address, Error> {
    // Typed errors for bad hex and length first; then only the checksum of
    // a mixed-case address can fail.
    hex_fixed::<20>(s, "address")?;
    let digits = s.strip_prefix("0x").unwrap_or(s);
    Address::parse(&format!("0x{digits}"))
}

fn missing(field: &'static str) -> Error {
    Error::KeystoreMalformed {
        field,
        reason: "missing",
    }
}

fn wrong_type(field: &'static str, reason: &'static str) -> Error {
    Error::KeystoreMalformed { field, reason }
}

fn as_object<'a>(value: &'a Value, field: &'static str) -> Result<&'a Map<String, Value>, Error> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(field, "expected an object"))
}

fn object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a Map<String, Value>, Error> {
    as_object(obj.get(key).ok_or_else(|| missing(field))?, field)
}

fn string<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a str, Error> {
    obj.get(key)
        .ok_or_else(|| missing(field))?
        .as_str()
        .ok_or_else(|| wrong_type(field, "expected a string"))
}

fn integer(obj: &Map<String, Value>, key: &str, field: &'static str) -> Result<u64, Error> {
    obj.get(key)
        .ok_or_else(|| missing(field))?
        .as_u64()
        .ok_or_else(|| wrong_type(field, "expected a non-negative integer"))
}

/// Hex (either case, `0x` optional) of any length.
fn hex_vec(s: &str, field: &'static str) -> Result<Vec<u8>, Error> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(digits).map_err(|_| Error::KeystoreHex(field))
}

/// Hex (either case, `0x` optional) of exactly `N` bytes.
fn hex_fixed<const N: usize>(s: &str, field: &'static str) -> Result<[u8; N], Error> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    if !digits.len().is_multiple_of(2) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::KeystoreHex(field));
    }
    let mut out = [0u8; N];
    if digits.len() != 2 * N {
        return Err(Error::InvalidLength {
            field,
            expected: N,
            found: digits.len() / 2,
        });
    }
    hex::decode_to_slice(digits, &mut out).map_err(|_| Error::KeystoreHex(field))?;
    Ok(out)
}

/// `8-4-4-4-12` hex digits (any version and variant).
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        })
}

/// A random UUID (RFC 9562 version 4) from 16 random bytes, lower case.
fn format_uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    let mut out = String::with_capacity(36);
    for (i, c) in hex.chars().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keystore document with tiny scrypt parameters, for structure tests.
    fn tiny() -> Value {
        json!({
            "address": "008aeeda4d805471df9b2a5b0f38a0c3bcba786b",
            "crypto": {
                "cipher": "aes-128-ctr",
                "cipherparams": { "iv": "00112233445566778899aabbccddeeff" },
                "ciphertext": "11".repeat(32),
                "kdf": "scrypt",
                "kdfparams": { "dklen": 32, "n": 2, "r": 1, "p": 1, "salt": "ab" },
                "mac": "22".repeat(32),
            },
            "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
            "version": 3,
        })
    }

    #[test]
    fn the_tiny_document_parses() {
        let ks = parse(&tiny().to_string()).unwrap();
        assert_eq!(
            ks.kdf(),
            V3Kdf::Scrypt {
                log_n: 1,
                r: 1,
                p: 1
            }
        );
        assert_eq!(ks.id(), Some("3198bc9c-6672-5ab3-d995-4942343ae5b6"));
        assert_eq!(
            ks.address().unwrap().to_checksum(),
            "0x008AeEda4D805471dF9b2A5B0f38A0C3bCBA786b"
        );
    }

    #[test]
    fn debug_shows_no_ciphertext_mac_salt_or_iv() {
        let ks = parse(&tiny().to_string()).unwrap();
        let s = format!("{ks:?}");
        assert!(s.contains("Scrypt"), "{s}");
        for secretish in ["1111", "2222", "00112233", "salt", "ciphertext", "mac"] {
            assert!(!s.contains(secretish), "{s}");
        }
    }

    #[test]
    fn kdf_limits() {
        let ok = |kdf: V3Kdf| kdf.check().is_ok();
        let scrypt = |log_n, r, p| V3Kdf::Scrypt { log_n, r, p };
        // geth's standard and light parameters, the wiki's r = 1, p = 8.
        assert!(ok(scrypt(18, 8, 1)));
        assert!(ok(scrypt(12, 8, 6)));
        assert!(ok(scrypt(18, 1, 8)));
        // The memory limit: exactly 1 GiB passes, one more step does not.
        assert!(ok(scrypt(20, 8, 1)));
        assert!(matches!(
            scrypt(20, 9, 1).check(),
            Err(Error::KeystoreKdfLimit("crypto.kdfparams.r"))
        ));
        assert!(matches!(
            scrypt(21, 1, 1).check(),
            Err(Error::KeystoreKdfLimit("crypto.kdfparams.n"))
        ));
        // The work limit.
        assert!(ok(scrypt(20, 8, 2)));
        assert!(matches!(
            scrypt(20, 8, 3).check(),
            Err(Error::KeystoreKdfLimit("crypto.kdfparams.p"))
        ));
        assert!(matches!(
            scrypt(1, 1, u32::MAX).check(),
            Err(Error::KeystoreKdfLimit("crypto.kdfparams.p"))
        ));
        assert!(matches!(
            scrypt(1, u32::MAX, u32::MAX).check(),
            Err(Error::KeystoreKdfLimit(_))
        ));
        for bad in [scrypt(0, 8, 1), scrypt(10, 0, 1), scrypt(10, 8, 0)] {
            assert!(matches!(bad.check(), Err(Error::KeystoreMalformed { .. })));
        }
        assert!(ok(V3Kdf::Pbkdf2 { c: 1 }));
        assert!(ok(V3Kdf::Pbkdf2 {
            c: MAX_PBKDF2_ITERATIONS
        }));
        assert!(matches!(
            V3Kdf::Pbkdf2 {
                c: MAX_PBKDF2_ITERATIONS + 1
            }
            .check(),
            Err(Error::KeystoreKdfLimit("crypto.kdfparams.c"))
        ));
        assert!(matches!(
            V3Kdf::Pbkdf2 { c: 0 }.check(),
            Err(Error::KeystoreMalformed { .. })
        ));
        assert_eq!(scrypt(18, 8, 1).work(), 1 << 21);
        assert_eq!(V3Kdf::Pbkdf2 { c: 7 }.work(), 7);
    }

    #[test]
    fn presets_are_geths() {
        assert_eq!(
            KdfChoice::ScryptStandard.params(),
            V3Kdf::Scrypt {
                log_n: 18,
                r: 8,
                p: 1
            }
        );
        assert_eq!(
            KdfChoice::ScryptLight.params(),
            V3Kdf::Scrypt {
                log_n: 12,
                r: 8,
                p: 6
            }
        );
        assert_eq!(KdfChoice::Pbkdf2.params(), V3Kdf::Pbkdf2 { c: 262_144 });
    }

    #[test]
    fn hex_forms() {
        assert_eq!(hex_fixed::<2>("abCD", "f").unwrap(), [0xab, 0xcd]);
        assert_eq!(hex_fixed::<2>("0xabcd", "f").unwrap(), [0xab, 0xcd]);
        assert!(matches!(
            hex_fixed::<2>("0Xabcd", "f"),
            Err(Error::KeystoreHex("f"))
        ));
        assert!(matches!(
            hex_fixed::<2>("abc", "f"),
            Err(Error::KeystoreHex("f"))
        ));
        assert!(matches!(
            hex_fixed::<2>("abzz", "f"),
            Err(Error::KeystoreHex("f"))
        ));
        assert!(matches!(
            hex_fixed::<2>("ab", "f"),
            Err(Error::InvalidLength {
                field: "f",
                expected: 2,
                found: 1
            })
        ));
        assert!(matches!(
            hex_fixed::<2>(&"ab".repeat(1000), "f"),
            Err(Error::InvalidLength { found: 1000, .. })
        ));
        assert!(matches!(
            hex_fixed::<2>(&"zz".repeat(1000), "f"),
            Err(Error::KeystoreHex("f"))
        ));
        assert_eq!(hex_vec("", "f").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("3198bc9c-6672-5ab3-d995-4942343ae5b6"));
        assert!(is_uuid("3198BC9C-6672-5AB3-D995-4942343AE5B6"));
        assert!(!is_uuid("3198bc9c-6672-5ab3-d9954942343ae5b6"));
        assert!(!is_uuid("3198bc9c-6672-5ab3-d995-4942343ae5bg"));
        assert!(!is_uuid("3198bc9c66725ab3d9954942343ae5b6----"));
        let u = format_uuid_v4([0xff; 16]);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let u = format_uuid_v4([0; 16]);
        assert_eq!(u, "00000000-0000-4000-8000-000000000000");
        assert!(is_uuid(&u));
    }

    /// The PBKDF2 intermediates published with the Web3 Secret Storage
    /// definition (ethereum.org, "Test Vectors"): derived key, MAC and the
    /// cipher key for password "testpassword".
    #[test]
    fn spec_pbkdf2_intermediates() {
        let kdf = V3Kdf::Pbkdf2 { c: 262_144 };
        let salt = hex::decode("ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd")
            .unwrap();
        let dk = derive_key(&kdf, &salt, b"testpassword").unwrap();
        assert_eq!(
            hex::encode(*dk),
            "f06d69cdc7da0faffb1008270bca38f5e31891a3a773950e6d0fea48a7188551"
        );
        let ciphertext =
            hex::decode("5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46")
                .unwrap();
        let (_, mac_key) = dk.split_at(16);
        assert_eq!(
            hex::encode(keccak256_parts(&[mac_key, &ciphertext])),
            "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2"
        );
    }

    /// AES-128-CTR known answer: NIST SP 800-38A F.5.1 (CTR-AES128.Encrypt),
    /// whose counter block starts at f0f1…feff and so also crosses a
    /// 64-bit boundary in its low half.
    #[test]
    fn aes_128_ctr_sp800_38a() {
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let iv: [u8; 16] = hex::decode("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
            .unwrap()
            .try_into()
            .unwrap();
        let mut buf = hex::decode(concat!(
            "6bc1bee22e409f96e93d7e117393172a",
            "ae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52ef",
            "f69f2445df4f9b17ad2b417be66c3710",
        ))
        .unwrap();
        aes_128_ctr(&key, &iv, &mut buf).unwrap();
        assert_eq!(
            hex::encode(buf),
            concat!(
                "874d6191b620e3261bef6864990db6ce",
                "9806f66b7970fdff8617187bb9fffdff",
                "5ae4df3edbd5d35e5b4f09020db03eab",
                "1e031dda2fbe03d1792170a0f3009cee",
            )
        );
    }

    #[test]
    fn ctr_counter_wraps_like_go() {
        // An IV of all ones: the second block's counter is 0 (mod 2^128),
        // so its keystream equals the first block's of an all-zero IV.
        let key = [7u8; 16];
        let mut a = [0u8; 32];
        aes_128_ctr(&key, &[0xff; 16], &mut a).unwrap();
        let mut b = [0u8; 16];
        aes_128_ctr(&key, &[0; 16], &mut b).unwrap();
        assert_eq!(a[16..], b);
    }

    #[test]
    fn encrypt_refuses_invalid_keys_and_params() {
        let pw = Passphrase::from_str_copy("pw");
        let tiny = KdfChoice::Custom(V3Kdf::Scrypt {
            log_n: 1,
            r: 1,
            p: 1,
        });
        assert!(matches!(
            encrypt(&PrivateKeyBytes::new([0; 32]), &pw, tiny),
            Err(Error::InvalidPrivateKey)
        ));
        assert!(matches!(
            encrypt(&PrivateKeyBytes::new([0xff; 32]), &pw, tiny),
            Err(Error::InvalidPrivateKey)
        ));
        assert!(matches!(
            encrypt(
                &PrivateKeyBytes::new([1; 32]),
                &pw,
                KdfChoice::Custom(V3Kdf::Scrypt {
                    log_n: 21,
                    r: 1,
                    p: 1
                })
            ),
            Err(Error::KeystoreKdfLimit(_))
        ));
    }
}
