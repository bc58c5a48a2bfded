//! [`Pin`]: a token's user PIN, in zeroizing memory.

use std::fmt;
use std::path::Path;

use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::error::Pkcs11Error;

/// A token's user PIN. Wiped on drop; `Debug` prints only the type name; no
/// error or message ever carries it.
///
/// The PKCS#11 types never read the environment: a caller hands the PIN
/// over with [`Pin::new`], or a URI's `pin-source=file:` is read with
/// [`Pin::from_file`]. Only [`crate::BackendConfig::from_env`], when a front
/// end asks for the CLI contract's configuration, reads `CUSTODY_PKCS11_PIN`.
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Takes ownership of a PIN (wiped when this is dropped).
    #[must_use]
    pub fn new(pin: impl Into<String>) -> Self {
        Self(Zeroizing::new(pin.into()))
    }

    /// Reads a PIN file: its contents, less exactly one trailing newline
    /// (`\n` or `\r\n`), as `echo PIN > file` leaves it.
    ///
    /// # Errors
    /// A `bad-input` [`Pkcs11Error`] if the file cannot be read, is not
    /// UTF-8, or is empty. The message names neither the path's contents
    /// nor the PIN.
    pub fn from_file(path: &Path) -> Result<Self, Pkcs11Error> {
        let bytes = Zeroizing::new(
            std::fs::read(path)
                .map_err(|_| Pkcs11Error::bad_input("the PIN file cannot be read"))?,
        );
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| Pkcs11Error::bad_input("the PIN file is not UTF-8"))?;
        let text = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        if text.is_empty() {
            return Err(Pkcs11Error::bad_input("the PIN file is empty"));
        }
        Ok(Self::new(text))
    }

    /// The PIN as cryptoki takes it (a `secrecy` string, wiped on drop).
    pub(crate) fn to_auth_pin(&self) -> AuthPin {
        AuthPin::new(self.0.as_str().into())
    }

    /// The PIN. Every call site handles a secret.
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let p = Pin::new("123456");
        assert_eq!(format!("{p:?}"), "Pin(<redacted>)");
    }

    #[test]
    fn pin_file_strips_one_newline() {
        let dir = std::env::temp_dir().join(format!("custody-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pin");
        for (contents, want) in [
            (&b"1234\n"[..], "1234"),
            (b"1234\r\n", "1234"),
            (b"1234", "1234"),
            (b"12 34\n\n", "12 34\n"),
        ] {
            std::fs::write(&f, contents).unwrap();
            assert_eq!(Pin::from_file(&f).unwrap().expose_secret(), want);
        }
        std::fs::write(&f, b"\n").unwrap();
        assert_eq!(Pin::from_file(&f).unwrap_err().kind(), "bad-input");
        let e = Pin::from_file(&dir.join("missing")).unwrap_err();
        assert_eq!(e.kind(), "bad-input");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
