//! Errors across the boundary: every failure is a
//! [`custody_core::ErrorReport`] (the CLI's and the C ABI's one mapping of
//! kinds and statuses), raised in Python as the `custody.errors` class
//! named after its kind (`totp-required` is `TotpRequired`), a subclass of
//! `CustodyError` carrying `.kind`, `.status` and `.message`.
//!
//! The classes are written in Python (`python/custody/errors.py`), where
//! they are documented and typed; this module only looks one up by kind.

use std::panic::{AssertUnwindSafe, catch_unwind};

use custody_core::ErrorReport;
use pyo3::prelude::*;

/// The Python exception for `report`: `custody.errors._from_report(kind,
/// message, status)`, the class of the kind (`CustodyError` itself for a
/// kind this version does not name).
pub(crate) fn raise(py: Python<'_>, report: &ErrorReport) -> PyErr {
    let made = py
        .import("custody.errors")
        .and_then(|m| m.getattr("_from_report"))
        .and_then(|f| f.call1((report.kind(), report.message(), report.status())));
    match made {
        Ok(exception) => PyErr::from_value(exception),
        // The package's own module is missing or broken: say so rather
        // than lose the report.
        Err(e) => e,
    }
}

/// Bad input or misuse (`BadInput`), the message naming the argument.
pub(crate) fn bad_input(message: impl Into<String>) -> ErrorReport {
    ErrorReport::new("bad-input", message)
}

/// Runs `work` with the GIL released (KDFs, signatures and file I/O let
/// other Python threads run meanwhile), a panic caught and reported as
/// kind `internal` (as the C ABI does) instead of unwinding into Python,
/// and a failure raised as its `custody.errors` class.
///
/// `work` sees no Python object: everything it needs is extracted before.
pub(crate) fn detached<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Result<T, ErrorReport> + Send,
{
    let outcome = py.detach(move || {
        catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| {
            Err(ErrorReport::new(
                "internal",
                "a panic was caught at the Python boundary (a bug in custody; please report it)",
            ))
        })
    });
    outcome.map_err(|report| raise(py, &report))
}

/// `report` raised as its class (for work done with the GIL held).
pub(crate) fn raised<T>(py: Python<'_>, result: Result<T, ErrorReport>) -> PyResult<T> {
    result.map_err(|report| raise(py, &report))
}
