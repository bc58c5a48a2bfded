//! TOTP enrolment through the C ABI: the otpauth URI comes back in a
//! library-owned string that is wiped when freed.

use std::ffi::c_char;

use custody_core::{ErrorReport, OneTimeCode};
use custody_totp::EnrolMode;

use crate::error::{CustodyError, enter};
use crate::input::{self, Out};
use crate::keystore::{CustodyKeystore, handle, registry};
use crate::memory::hand_out_string;

/// Enrols `wallet` for TOTP (`custody totp register --wallet NAME`) and
/// sets `*out_uri` to its `otpauth://totp/...` URI, which holds the new
/// secret: show it to the user once (e.g. as a QR code), then free it with
/// `custody_string_free`, which wipes it. From then on every signature and
/// export of the wallet's keys needs a fresh code.
///
/// `issuer` (NULL for the default) names the service in authenticator
/// apps. `rotate_code` NULL enrols a wallet that is not enrolled yet
/// (kind `already-exists` otherwise); a current code replaces an enrolled
/// wallet's secret (the CLI's `--rotate --code C`; a wallet not enrolled
/// yet is simply enrolled).
///
/// Errors: `bad-input` (a null or non-UTF-8 argument, a bad wallet name or
/// issuer), `already-exists`, `totp-invalid` / `totp-replayed` /
/// `totp-locked` (the rotation's code), `conflict`.
///
/// # Safety
/// `ks` is any value (it is looked up, not dereferenced); `wallet` is NULL
/// or a NUL-terminated string, and so are `issuer` and `rotate_code`;
/// `out_uri` is NULL or writable for one pointer; `err` is NULL or writable
/// for one `CustodyError`.
#[expect(unsafe_code, reason = "a C entry point")]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn custody_totp_enrol(
    ks: *const CustodyKeystore,
    wallet: *const c_char,
    issuer: *const c_char,
    rotate_code: *const c_char,
    out_uri: *mut *mut c_char,
    err: *mut CustodyError,
) -> i32 {
    // SAFETY: every pointer is forwarded under this function's contract.
    unsafe {
        enter(err, || {
            let out = Out::new(out_uri, "out_uri")?;
            let handle = handle(ks)?;
            let wallet = input::text(wallet, "wallet")?;
            let issuer = input::optional_text(issuer, "issuer")?;
            let rotate = input::optional_text(rotate_code, "rotate_code")?;
            let registry = match issuer {
                Some(issuer) => registry(handle.keystore(), Some(issuer))?,
                None => handle.registry().clone(),
            };
            let mode = match rotate {
                Some(code) => EnrolMode::Rotate(OneTimeCode::new(code)),
                None => EnrolMode::New,
            };
            let enrolment = registry
                .enrol(wallet, mode)
                .wait()
                .map_err(ErrorReport::from)?;
            let uri = enrolment.to_uri();
            out.set(hand_out_string(uri.as_str())?);
            Ok(())
        })
    }
}
