//! What the operations return: small immutable Python objects with the
//! fields eth-account uses for the same things (`raw_transaction`, `hash`,
//! `r`, `s`, `v`, `signature`, `message_hash`), byte strings as `bytes`
//! and integers as `int`.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt};

/// A 32-byte big-endian integer (r, s) as a Python `int`.
fn int_of<'py>(py: Python<'py>, bytes: &[u8; 32]) -> PyResult<Bound<'py, PyAny>> {
    py.get_type::<PyInt>()
        .call_method1("from_bytes", (PyBytes::new(py, bytes), "big"))
}

/// `0x` and lowercase hex.
fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// A derived key's public data: `custody.DerivedKey`.
#[pyclass(frozen, module = "custody", name = "DerivedKey")]
pub(crate) struct DerivedKey {
    pub(crate) address: String,
    pub(crate) public_key: [u8; 65],
    pub(crate) path: Option<String>,
    pub(crate) wallet: Option<String>,
    pub(crate) index: Option<u32>,
    pub(crate) key_id: Option<String>,
    pub(crate) key: Option<String>,
}

#[pymethods]
impl DerivedKey {
    /// The EIP-55 checksummed address.
    #[getter]
    fn address(&self) -> &str {
        &self.address
    }

    /// The 65-byte uncompressed SEC 1 public key (`0x04 || x || y`).
    #[getter]
    fn public_key<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.public_key)
    }

    /// The full BIP32 path (`m/44'/60'/...`), if the key has one.
    #[getter]
    fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The wallet name, if the key was named by wallet.
    #[getter]
    fn wallet(&self) -> Option<&str> {
        self.wallet.as_deref()
    }

    /// The key index, if the key was named by wallet.
    #[getter]
    fn index(&self) -> Option<u32> {
        self.index
    }

    /// The imported key's id, if the key was named by `key_id`.
    #[getter]
    fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The external key's URI, if the key was named by `key`.
    #[getter]
    fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    fn __repr__(&self) -> String {
        format!(
            "DerivedKey(address={:?}, path={})",
            self.address,
            self.path
                .as_deref()
                .map_or_else(|| "None".to_owned(), |p| format!("{p:?}"))
        )
    }
}

/// A signed transaction: `custody.SignedTransaction`.
#[pyclass(frozen, module = "custody", name = "SignedTransaction")]
pub(crate) struct SignedTransaction {
    pub(crate) raw_transaction: Vec<u8>,
    pub(crate) hash: [u8; 32],
    pub(crate) signing_hash: [u8; 32],
    pub(crate) sender: String,
    pub(crate) r: [u8; 32],
    pub(crate) s: [u8; 32],
    pub(crate) v: u128,
}

#[pymethods]
impl SignedTransaction {
    /// The signed transaction as broadcast (`eth_sendRawTransaction`):
    /// EIP-2718 typed bytes, or RLP for legacy.
    #[getter]
    fn raw_transaction<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.raw_transaction)
    }

    /// The transaction hash (keccak256 of the raw transaction).
    #[getter]
    fn hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.hash)
    }

    /// The digest that was signed.
    #[getter]
    fn signing_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.signing_hash)
    }

    /// The signer's EIP-55 address.
    #[getter]
    fn sender(&self) -> &str {
        &self.sender
    }

    /// The signature's r.
    #[getter]
    fn r<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_of(py, &self.r)
    }

    /// The signature's s (low-s).
    #[getter]
    fn s<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        int_of(py, &self.s)
    }

    /// `v` as the transaction encodes it: the y parity (0/1) for typed
    /// transactions, 27/28 or the EIP-155 value for legacy ones.
    #[getter]
    fn v(&self) -> u128 {
        self.v
    }

    fn __repr__(&self) -> String {
        format!(
            "SignedTransaction(hash={:?}, sender={:?})",
            hex0x(&self.hash),
            self.sender
        )
    }
}

/// An EIP-191 or EIP-712 signature: `custody.SignedMessage`.
#[pyclass(frozen, module = "custody", name = "SignedMessage")]
pub(crate) struct SignedMessage {
    pub(crate) message_hash: [u8; 32],
    pub(crate) signature: [u8; 65],
    pub(crate) address: String,
}

#[pymethods]
impl SignedMessage {
    /// The digest that was signed (EIP-191 or EIP-712).
    #[getter]
    fn message_hash<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.message_hash)
    }

    /// The 65-byte signature `r || s || v`, v 27 or 28.
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.signature)
    }

    /// The signer's EIP-55 address.
    #[getter]
    fn address(&self) -> &str {
        &self.address
    }

    /// The signature's r.
    #[getter]
    fn r<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut r = [0u8; 32];
        r.copy_from_slice(&self.signature[..32]);
        int_of(py, &r)
    }

    /// The signature's s (low-s).
    #[getter]
    fn s<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut s = [0u8; 32];
        s.copy_from_slice(&self.signature[32..64]);
        int_of(py, &s)
    }

    /// 27 or 28 (never an EIP-155 value: messages have no chain).
    #[getter]
    fn v(&self) -> u8 {
        self.signature[64]
    }

    fn __repr__(&self) -> String {
        format!(
            "SignedMessage(message_hash={:?}, address={:?})",
            hex0x(&self.message_hash),
            self.address
        )
    }
}

/// A TOTP enrolment: `custody.TotpEnrolment`. It holds the new secret:
/// show it to the user once (the URI as a QR code), then drop it. Its
/// `repr` names the wallet only.
#[pyclass(frozen, module = "custody", name = "TotpEnrolment")]
pub(crate) struct TotpEnrolment {
    pub(crate) wallet: String,
    pub(crate) uri: zeroize::Zeroizing<String>,
    pub(crate) secret: zeroize::Zeroizing<String>,
}

#[pymethods]
impl TotpEnrolment {
    /// The wallet enrolled.
    #[getter]
    fn wallet(&self) -> &str {
        &self.wallet
    }

    /// The `otpauth://totp/...` provisioning URI: holds the secret.
    #[getter]
    fn uri(&self) -> &str {
        &self.uri
    }

    /// The shared secret, RFC 4648 base32 without padding (for typing into
    /// an authenticator app by hand).
    #[getter]
    fn secret(&self) -> &str {
        &self.secret
    }

    fn __repr__(&self) -> String {
        format!("TotpEnrolment(wallet={:?})", self.wallet)
    }
}
