//! Errors across the boundary: every function returns a status and, when
//! the caller passes one, fills a [`CustodyError`] with the stable kind and
//! a message. Kinds, messages and statuses are exactly the `custody` CLI's
//! (one mapping, [`custody_core::ErrorReport`]); a panic is caught at every
//! entry point and reported as kind `internal`.

use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use custody_core::ErrorReport;

/// The call succeeded.
pub const CUSTODY_OK: i32 = 0;
/// Any failure that is neither bad input nor an authentication failure
/// (`not-found`, `io`, `unsupported`, `forbidden`, `internal`, ...): the
/// CLI's exit code 1.
pub const CUSTODY_ERR_OTHER: i32 = 1;
/// Bad input or misuse (kind `bad-input`: a null pointer, invalid UTF-8, a
/// wrong length, malformed JSON, a freed handle): the CLI's exit code 2.
pub const CUSTODY_ERR_BAD_INPUT: i32 = 2;
/// An authentication failure (`wrong-passphrase`, `totp-required`,
/// `totp-invalid`, `totp-replayed`, `totp-locked`, `access-denied`): the
/// CLI's exit code 3.
pub const CUSTODY_ERR_AUTH: i32 = 3;

/// Bytes of [`CustodyError::kind`], the terminating NUL included.
pub const CUSTODY_ERROR_KIND_LEN: usize = 32;
/// Bytes of [`CustodyError::message`], the terminating NUL included.
pub const CUSTODY_ERROR_MESSAGE_LEN: usize = 512;

/// The error out-parameter every function takes last.
///
/// Pass a pointer to one (a zero-initialised local will do) or NULL if you
/// only want the status. Every call overwrites all of it: on success
/// `status` is `CUSTODY_OK` and `kind` and `message` are empty strings. It
/// holds no pointer, so there is nothing to free, and each thread can use
/// its own.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CustodyError {
    /// The status the call returned: `CUSTODY_OK` or one of `CUSTODY_ERR_*`.
    pub status: i32,
    /// The stable kebab-case kind (`bad-input`, `totp-required`, ...), as
    /// the `custody` CLI prints it; NUL-terminated, empty on success.
    pub kind: [c_char; CUSTODY_ERROR_KIND_LEN],
    /// A human sentence naming the offending argument; NUL-terminated,
    /// cut on a UTF-8 character boundary if longer than the array. Never
    /// holds a secret.
    pub message: [c_char; CUSTODY_ERROR_MESSAGE_LEN],
}

impl CustodyError {
    /// What a call that ended with `report` (or succeeded, `None`) writes.
    pub(crate) fn of(report: Option<&ErrorReport>) -> Self {
        let mut out = Self {
            status: CUSTODY_OK,
            kind: [0; CUSTODY_ERROR_KIND_LEN],
            message: [0; CUSTODY_ERROR_MESSAGE_LEN],
        };
        if let Some(report) = report {
            out.status = status(report);
            copy_truncated(report.kind(), &mut out.kind);
            copy_truncated(report.message(), &mut out.message);
        }
        out
    }
}

/// The status of a report: the CLI's exit code for its kind.
fn status(report: &ErrorReport) -> i32 {
    i32::from(report.status())
}

/// Copies `text` into `out` as a NUL-terminated C string, cut at the last
/// UTF-8 character boundary that leaves room for the NUL.
fn copy_truncated(text: &str, out: &mut [c_char]) {
    let room = out.len().saturating_sub(1);
    let mut end = text.len().min(room);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    for (slot, byte) in out.iter_mut().zip(text.as_bytes().iter().take(end)) {
        *slot = c_char::from_ne_bytes([*byte]);
    }
    if let Some(nul) = out.get_mut(end) {
        *nul = 0;
    }
}

/// Bad input or misuse (status 2), the message naming the argument.
pub(crate) fn bad_input(message: impl Into<String>) -> ErrorReport {
    ErrorReport::new("bad-input", message)
}

/// Runs one entry point's body: a panic becomes kind `internal` instead
/// of unwinding into C, the outcome is written to `err` (if not NULL), and
/// the status is returned.
///
/// # Safety
/// `err` is NULL or valid for writes of one `CustodyError` (aligned, not
/// aliased by anything the body reads).
#[expect(unsafe_code, reason = "writes the caller's error out-parameter")]
pub(crate) unsafe fn enter(
    err: *mut CustodyError,
    body: impl FnOnce() -> Result<(), ErrorReport>,
) -> i32 {
    let report = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => None,
        Ok(Err(report)) => Some(report),
        Err(_) => Some(ErrorReport::new(
            "internal",
            "a panic was caught at the C boundary (a bug in custody; please report it)",
        )),
    };
    let value = CustodyError::of(report.as_ref());
    if !err.is_null() {
        // SAFETY: `err` is not null, and the caller guarantees it is valid
        // for writes of one aligned `CustodyError`. `write` does not read
        // or drop the old value (plain data, possibly uninitialised).
        unsafe {
            err.write(value);
        }
    }
    value.status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: &[c_char]) -> String {
        let bytes: Vec<u8> = raw
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| c.to_ne_bytes()[0])
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        // 'é' is 2 bytes: 600 of them cannot end on an odd byte.
        let long = "é".repeat(600);
        let e = CustodyError::of(Some(&ErrorReport::new("bad-input", long)));
        let message = text(&e.message);
        assert_eq!(message.len(), CUSTODY_ERROR_MESSAGE_LEN - 2);
        assert!(message.chars().all(|c| c == 'é'));
        assert_eq!(text(&e.kind), "bad-input");
        assert_eq!(e.status, CUSTODY_ERR_BAD_INPUT);
    }

    #[test]
    fn success_clears_everything() {
        let e = CustodyError::of(None);
        assert_eq!(e.status, CUSTODY_OK);
        assert_eq!(text(&e.kind), "");
        assert_eq!(text(&e.message), "");
    }

    #[test]
    fn a_panic_is_an_internal_error_not_an_unwind() {
        let mut e = CustodyError::of(Some(&bad_input("stale")));
        // SAFETY: `e` is a live local.
        #[expect(unsafe_code, reason = "test of the entry guard")]
        let status = unsafe {
            enter(&raw mut e, || {
                let v: Vec<u8> = Vec::new();
                // Out of bounds on purpose: a panic inside the body.
                let _ = v[usize::from(v.is_empty())];
                Ok(())
            })
        };
        assert_eq!(status, CUSTODY_ERR_OTHER);
        assert_eq!(text(&e.kind), "internal");
    }

    #[test]
    fn statuses_are_the_cli_exit_codes() {
        for (kind, status) in [
            ("bad-input", CUSTODY_ERR_BAD_INPUT),
            ("totp-required", CUSTODY_ERR_AUTH),
            ("wrong-passphrase", CUSTODY_ERR_AUTH),
            ("not-found", CUSTODY_ERR_OTHER),
        ] {
            let e = CustodyError::of(Some(&ErrorReport::new(kind, "x")));
            assert_eq!(e.status, status, "{kind}");
        }
    }
}
