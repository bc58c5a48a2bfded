//! Reading the caller's arguments: C strings, byte ranges and out-pointers,
//! each checked (null, length, UTF-8) into a typed `bad-input` error naming
//! the argument, never undefined behaviour on a null pointer.

use std::ffi::{CStr, c_char};

use custody_core::ErrorReport;

use crate::error::bad_input;

/// A required NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and
/// unchanged for `'a`.
#[expect(unsafe_code, reason = "reads or writes through a caller's pointer")]
pub(crate) unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, ErrorReport> {
    // SAFETY: forwarded from this function's contract.
    let text = unsafe { optional_text(ptr, what)? };
    text.ok_or_else(|| bad_input(format!("{what}: null pointer")))
}

/// An optional NUL-terminated UTF-8 string argument: NULL is `None`.
///
/// # Safety
/// As [`text`].
#[expect(unsafe_code, reason = "reads or writes through a caller's pointer")]
pub(crate) unsafe fn optional_text<'a>(
    ptr: *const c_char,
    what: &str,
) -> Result<Option<&'a str>, ErrorReport> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: `ptr` is not null, and the caller guarantees it points to a
    // NUL-terminated string valid and unchanged for `'a`, which is what
    // `CStr::from_ptr` requires.
    let raw = unsafe { CStr::from_ptr(ptr) };
    raw.to_str()
        .map(Some)
        .map_err(|_| bad_input(format!("{what}: not UTF-8")))
}

/// A byte-range argument (`ptr`, `len`): NULL is allowed only with `len`
/// 0 (an empty range).
///
/// # Safety
/// `ptr` is NULL or valid for reads of `len` bytes that stay unchanged for
/// `'a`.
#[expect(unsafe_code, reason = "reads or writes through a caller's pointer")]
pub(crate) unsafe fn bytes<'a>(
    ptr: *const u8,
    len: usize,
    what: &str,
) -> Result<&'a [u8], ErrorReport> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(bad_input(format!("{what}: null pointer with length {len}")));
    }
    if isize::try_from(len).is_err() {
        return Err(bad_input(format!("{what}: length {len} is not a length")));
    }
    // SAFETY: `ptr` is not null, `len` is at most `isize::MAX`, and the
    // caller guarantees `len` readable bytes at `ptr` that stay unchanged
    // for `'a`; `u8` has alignment 1.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    Ok(bytes)
}

/// An out-pointer argument (`T **`): checked not null and set to NULL at
/// once, so that it is NULL after any failure.
#[derive(Debug)]
pub(crate) struct Out<T>(*mut *mut T);

impl<T> Out<T> {
    /// Checks `ptr` and clears what it points to.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for writes of one aligned pointer, for as
    /// long as the returned `Out` is used.
    #[expect(unsafe_code, reason = "reads or writes through a caller's pointer")]
    pub(crate) unsafe fn new(ptr: *mut *mut T, what: &str) -> Result<Self, ErrorReport> {
        if ptr.is_null() {
            return Err(bad_input(format!("{what}: null pointer")));
        }
        let out = Self(ptr);
        // SAFETY: forwarded from this function's contract; `ptr` is not null.
        unsafe {
            out.set(std::ptr::null_mut());
        }
        Ok(out)
    }

    /// Writes `value` through the out-pointer.
    ///
    /// # Safety
    /// As [`Out::new`], which checked that the pointer is not null.
    #[expect(unsafe_code, reason = "reads or writes through a caller's pointer")]
    pub(crate) unsafe fn set(&self, value: *mut T) {
        // SAFETY: `self.0` is not null (checked by `new`) and valid for
        // writes of one aligned pointer (the contract of `new`); `write`
        // neither reads nor drops the old value, which may be
        // uninitialised.
        unsafe {
            self.0.write(value);
        }
    }
}

/// An out-parameter for a length (`size_t *`), checked not null and set to
/// 0 at once.
#[derive(Debug)]
pub(crate) struct OutLen(*mut usize);

impl OutLen {
    /// Checks `ptr` and clears what it points to.
    ///
    /// # Safety
    /// `ptr` is NULL or valid for writes of one aligned `size_t`, for as
    /// long as the returned `OutLen` is used.
    #[expect(unsafe_code, reason = "reads or writes through a caller's pointer")]
    pub(crate) unsafe fn new(ptr: *mut usize, what: &str) -> Result<Self, ErrorReport> {
        if ptr.is_null() {
            return Err(bad_input(format!("{what}: null pointer")));
        }
        let out = Self(ptr);
        // SAFETY: forwarded from this function's contract; `ptr` is not null.
        unsafe {
            out.set(0);
        }
        Ok(out)
    }

    /// Writes `value`.
    ///
    /// # Safety
    /// As [`OutLen::new`], which checked that the pointer is not null.
    #[expect(unsafe_code, reason = "reads or writes through a caller's pointer")]
    pub(crate) unsafe fn set(&self, value: usize) {
        // SAFETY: `self.0` is not null (checked by `new`) and valid for an
        // aligned write of one `usize` (the contract of `new`).
        unsafe {
            self.0.write(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(unsafe_code, reason = "tests of the argument readers")]
    fn null_and_bad_arguments_are_typed_errors() {
        // SAFETY: NULL, or pointers to live locals.
        unsafe {
            let e = text(std::ptr::null(), "wallet").unwrap_err();
            assert_eq!(
                (e.kind(), e.message()),
                ("bad-input", "wallet: null pointer")
            );
            assert_eq!(optional_text(std::ptr::null(), "code").unwrap(), None);
            let latin1 = [0xe9u8, 0];
            let e = text(latin1.as_ptr().cast(), "wallet").unwrap_err();
            assert_eq!(e.message(), "wallet: not UTF-8");
            assert_eq!(text(c"alice".as_ptr(), "wallet").unwrap(), "alice");
            assert_eq!(bytes(std::ptr::null(), 0, "m").unwrap(), b"");
            let e = bytes(std::ptr::null(), 3, "message").unwrap_err();
            assert_eq!(e.message(), "message: null pointer with length 3");
            let one = [1u8];
            let e = bytes(one.as_ptr(), usize::MAX, "message").unwrap_err();
            assert_eq!(e.kind(), "bad-input");
            assert_eq!(bytes(one.as_ptr(), 1, "m").unwrap(), &[1]);
            let e = Out::<u8>::new(std::ptr::null_mut(), "out").unwrap_err();
            assert_eq!(e.message(), "out: null pointer");
            let mut slot: *mut u8 = one.as_ptr().cast_mut();
            let _out = Out::new(&raw mut slot, "out").unwrap();
            assert!(slot.is_null(), "an out-pointer is cleared on entry");
            let mut len = 7usize;
            let _len = OutLen::new(&raw mut len, "len").unwrap();
            assert_eq!(len, 0);
        }
    }
}
