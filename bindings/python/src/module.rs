//! The extension module `custody._custody`, which `custody/__init__.py`
//! re-exports.

use custody_core::Mnemonic;
use pyo3::prelude::*;

use crate::error::{bad_input, detached};
use crate::keystore::PyKeystore;
use crate::results::{DerivedKey, SignedMessage, SignedTransaction, TotpEnrolment};

/// A fresh English BIP39 mnemonic of `word_count` words (12, 15, 18, 21 or
/// 24) from the OS generator: the one function whose purpose is to return
/// a mnemonic (write it down, then give it to `Keystore.create`).
#[pyfunction]
#[pyo3(signature = (word_count=24))]
fn generate_mnemonic(py: Python<'_>, word_count: usize) -> PyResult<String> {
    let phrase = detached(py, move || {
        if ![12, 15, 18, 21, 24].contains(&word_count) {
            return Err(bad_input("word_count: must be 12, 15, 18, 21 or 24"));
        }
        Ok(Mnemonic::generate(word_count)?.expose_phrase())
    })?;
    Ok(phrase.as_str().to_owned())
}

#[pymodule]
fn _custody(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyKeystore>()?;
    m.add_class::<DerivedKey>()?;
    m.add_class::<SignedTransaction>()?;
    m.add_class::<SignedMessage>()?;
    m.add_class::<TotpEnrolment>()?;
    m.add_function(wrap_pyfunction!(generate_mnemonic, m)?)?;
    Ok(())
}
