//! Buffers handed to C: every string and byte buffer a function returns is
//! owned by this library until the caller gives it back to
//! [`custody_string_free`] or [`custody_buffer_free`], which wipe it
//! (zeroize) before releasing it.
//!
//! The library keeps each buffer it hands out in a table keyed by its
//! address, so freeing checks what it is given: a pointer it never handed
//! out, one freed already, a string given to the buffer function (or the
//! reverse) or a wrong length is a `bad-input` error and frees nothing.
//! (A double free is caught as long as the allocator has not reused the
//! address for a newer buffer of this library; then the newer buffer is
//! the one freed, so do not rely on the check.)
//!
//! The table owns the memory (a zeroizing `Vec`), so freeing is plain safe
//! Rust: the C pointer is only ever compared, never turned back into an
//! owner.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::sync::{Mutex, MutexGuard, PoisonError};

use custody_core::ErrorReport;
use zeroize::Zeroizing;

use crate::error::{CustodyError, bad_input, enter};

/// What a buffer was handed out as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A NUL-terminated string (`char *`).
    String,
    /// A byte buffer with a length (`uint8_t *`, `size_t`).
    Buffer,
}

/// One buffer in C's hands: its bytes (wiped when dropped) and its kind.
struct Handed {
    bytes: Zeroizing<Vec<u8>>,
    kind: Kind,
}

/// Every buffer handed out and not yet freed, by address.
static HANDED: Mutex<BTreeMap<usize, Handed>> = Mutex::new(BTreeMap::new());

fn table() -> MutexGuard<'static, BTreeMap<usize, Handed>> {
    // A panic while the lock was held (caught at the boundary) leaves the
    // map itself consistent: every operation on it is a single insert or
    // remove.
    HANDED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps `bytes` in the table and returns the address C gets.
fn keep(mut bytes: Zeroizing<Vec<u8>>, kind: Kind) -> *mut u8 {
    let ptr = bytes.as_mut_ptr();
    // Moving the Vec into the table moves its header, not its heap
    // allocation: `ptr` stays valid until the entry is removed. Every
    // buffer handed out is non-empty (a string has its NUL, an exported
    // key 32 bytes), so no two live entries share an address.
    table().insert(ptr.addr(), Handed { bytes, kind });
    ptr
}

/// Hands `text` to C as a NUL-terminated string, copied once into a buffer
/// that is wiped when freed; `text` is the caller's to wipe (pass a
/// `Zeroizing<String>` for secrets).
pub(crate) fn hand_out_string(text: &str) -> Result<*mut c_char, ErrorReport> {
    if text.as_bytes().contains(&0) {
        return Err(ErrorReport::new(
            "internal",
            "a string for C holds a NUL byte (a bug in custody)",
        ));
    }
    // Exactly the capacity needed: no reallocation leaves an unwiped copy.
    let mut bytes = Zeroizing::new(Vec::with_capacity(text.len() + 1));
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(0);
    Ok(keep(bytes, Kind::String).cast())
}

/// Hands `bytes` (not empty) to C as a byte buffer wiped when freed.
pub(crate) fn hand_out_bytes(data: &[u8]) -> Result<*mut u8, ErrorReport> {
    if data.is_empty() {
        return Err(ErrorReport::new(
            "internal",
            "an empty buffer for C (a bug in custody)",
        ));
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(data.len()));
    bytes.extend_from_slice(data);
    Ok(keep(bytes, Kind::Buffer))
}

/// Removes and wipes the buffer at `addr` if it is of `kind` (and `len`
/// bytes, when given).
fn release(addr: usize, kind: Kind, len: Option<usize>) -> Result<(), ErrorReport> {
    let mut table = table();
    let Some(handed) = table.get(&addr) else {
        return Err(bad_input(match kind {
            Kind::String => "s: not a string this library handed out, or freed already",
            Kind::Buffer => "ptr: not a buffer this library handed out, or freed already",
        }));
    };
    if handed.kind != kind {
        return Err(bad_input(match kind {
            Kind::String => "s: a byte buffer, not a string: free it with custody_buffer_free",
            Kind::Buffer => "ptr: a string, not a byte buffer: free it with custody_string_free",
        }));
    }
    if let Some(len) = len
        && len != handed.bytes.len()
    {
        return Err(bad_input(format!(
            "len: {len}, but the buffer has {} bytes; nothing was freed",
            handed.bytes.len()
        )));
    }
    // Dropping the `Zeroizing<Vec<u8>>` wipes its whole capacity, then
    // frees it.
    drop(table.remove(&addr));
    Ok(())
}

/// Wipes and frees a string this library returned (JSON results, the
/// otpauth URI). NULL is allowed and does nothing.
///
/// Returns `CUSTODY_OK`, or `CUSTODY_ERR_BAD_INPUT` (nothing freed) for a
/// pointer this library did not hand out as a string or has freed already.
///
/// # Safety
/// `err` is NULL or valid for writes of one `CustodyError`. `s` is only
/// compared with the library's own table, never read, so any value is safe;
/// after a successful call it must not be used again.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_string_free(s: *mut c_char, err: *mut CustodyError) -> i32 {
    // SAFETY: `err` is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            if s.is_null() {
                return Ok(());
            }
            release(s.addr(), Kind::String, None)
        })
    }
}

/// Wipes and frees a byte buffer this library returned (an exported
/// private key), given with the length it was returned with. NULL with
/// length 0 is allowed and does nothing.
///
/// Returns `CUSTODY_OK`, or `CUSTODY_ERR_BAD_INPUT` (nothing freed) for a
/// pointer this library did not hand out as a byte buffer, one freed
/// already, or a length other than the one it was returned with.
///
/// # Safety
/// `err` is NULL or valid for writes of one `CustodyError`. `ptr` is only
/// compared with the library's own table, never read, so any value is
/// safe; after a successful call it must not be used again.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_buffer_free(
    ptr: *mut u8,
    len: usize,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: `err` is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            if ptr.is_null() {
                if len == 0 {
                    return Ok(());
                }
                return Err(bad_input(format!("ptr: null pointer with length {len}")));
            }
            release(ptr.addr(), Kind::Buffer, Some(len))
        })
    }
}

/// How many strings and byte buffers this library has handed out that
/// have not been freed yet (in the whole process). A leak check for tests:
/// it is 0 once a program has freed everything it was given.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub extern "C" fn custody_outstanding_buffers() -> usize {
    catch_count().unwrap_or(usize::MAX)
}

fn catch_count() -> Option<usize> {
    std::panic::catch_unwind(|| table().len()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[expect(unsafe_code, reason = "tests of the free functions")]
    fn frees_check_kind_length_and_liveness() {
        let s = hand_out_string("hello").unwrap();
        let b = hand_out_bytes(&[7; 32]).unwrap();
        // SAFETY: `err` is a live local; the pointers are only
        // compared by the library.
        unsafe {
            let mut err = CustodyError::of(None);
            assert_eq!(custody_buffer_free(s.cast(), 6, &raw mut err), 2);
            assert_eq!(custody_string_free(b.cast(), &raw mut err), 2);
            assert_eq!(custody_buffer_free(b, 31, &raw mut err), 2);
            assert_eq!(custody_buffer_free(b, 32, &raw mut err), 0);
            assert_eq!(custody_buffer_free(b, 32, &raw mut err), 2, "double free");
            assert_eq!(custody_string_free(s, &raw mut err), 0);
            assert_eq!(custody_string_free(s, &raw mut err), 2, "double free");
            assert_eq!(custody_string_free(std::ptr::null_mut(), &raw mut err), 0);
            assert_eq!(
                custody_buffer_free(std::ptr::null_mut(), 0, &raw mut err),
                0
            );
            assert_eq!(
                custody_buffer_free(std::ptr::null_mut(), 1, &raw mut err),
                2
            );
            assert_eq!(
                custody_string_free(std::ptr::null_mut(), std::ptr::null_mut()),
                0
            );
        }
        assert!(hand_out_bytes(&[]).is_err());
        assert!(hand_out_string("a\0b").is_err());
    }
}
