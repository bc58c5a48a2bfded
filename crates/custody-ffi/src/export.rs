//! The one way a secret leaves the library: the explicit export of a
//! wallet key's private key, through the same gates as a signature.

use std::ffi::c_char;

use custody_core::ErrorReport;

use crate::error::{CustodyError, enter};
use crate::input::{self, Out, OutLen};
use crate::keystore::{CustodyKeystore, handle};
use crate::memory::hand_out_bytes;
use crate::signing::consent;

/// Exports the private key of (`wallet`, `index`): sets `*out_key` to a
/// library-owned buffer of the 32-byte big-endian secp256k1 secret and
/// `*out_len` to 32. This is key material: use it, then hand it back to
/// `custody_buffer_free(key, len, err)`, which wipes it.
///
/// The export passes the TOTP gate and the audit log exactly as `custody
/// keystore export --wallet NAME --index N --code C` does: an enrolled
/// wallet needs a valid, unused `code`, and the export is audited.
///
/// Errors: `bad-input`, `totp-required`, `totp-invalid`, `totp-replayed`,
/// `totp-locked`, `forbidden`, `unsupported`.
///
/// # Safety
/// `ks` is any value (it is looked up, not dereferenced); `wallet` is NULL
/// or a NUL-terminated string, and so is `code`; `out_key` is NULL or
/// writable for one pointer and `out_len` for one `size_t`; `err` is NULL
/// or writable for one `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_export_private_key(
    ks: *const CustodyKeystore,
    wallet: *const c_char,
    index: u32,
    code: *const c_char,
    out_key: *mut *mut u8,
    out_len: *mut usize,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_key, "out_key")?;
            let len = OutLen::new(out_len, "out_len")?;
            let handle = handle(ks)?;
            let wallet = input::text(wallet, "wallet")?;
            let code = input::optional_text(code, "code")?;
            let signer = handle.gated_signer(wallet, index)?;
            let exporting = handle.gated().exporting().ok_or_else(|| {
                ErrorReport::new("unsupported", "keys of this backend cannot be exported")
            })?;
            let secret = exporting
                .export_private_key(signer.key_signer().key(), &consent(code))
                .wait()
                .map_err(ErrorReport::from)?;
            let bytes = secret.expose_secret();
            out.set(hand_out_bytes(bytes)?);
            len.set(bytes.len());
            Ok(())
        })
    }
}
