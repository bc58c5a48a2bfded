//! [`Pkcs11Uri`]: RFC 7512 `pkcs11:` URIs.

use std::path::{Path, PathBuf};

use super::error::Pkcs11Error;

/// The kind of object a URI names (`type=`, RFC 7512 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectType {
    /// `public`: a public key.
    Public,
    /// `private`: a private key (a signing key).
    Private,
    /// `cert`: a certificate.
    Cert,
    /// `secret-key` (also accepted as `secret`): a secret key (a KEK).
    SecretKey,
    /// `data`: a data object.
    Data,
}

/// A parsed RFC 7512 PKCS#11 URI:
/// `pkcs11:token=LABEL;object=LABEL;id=%01%02;type=private?pin-source=file:/path&module-path=/path`.
///
/// - Path attributes (`;`-separated): `token`, `manufacturer`, `serial`,
///   `model`, `slot-id`, `object`, `id`, `type` are read; the other RFC 7512
///   attributes (`library-*`, `slot-description`, `slot-manufacturer`) and
///   attributes this crate does not know are accepted and ignored (RFC 7512
///   §2.3 lets a consumer ignore what it does not know). An attribute given
///   twice is refused.
/// - Query attributes (`&`-separated): `pin-source` (a `file:` URI or an
///   absolute path; commands, `|prog`, are refused), `module-path` (an
///   absolute path), `module-name` (kept, but not used to find a module);
///   unknown ones are ignored. `pin-value` is refused: a PIN in a URI ends
///   up in shell histories, process lists and logs.
/// - Values are percent-decoded; a malformed escape (`%`, `%4`, `%zz`) or a
///   character the RFC requires to be escaped is a `bad-input`
///   [`Pkcs11Error`]. Text attributes must decode to UTF-8; `id` is bytes.
///
/// Nothing in a URI is secret (the PIN stays in its file), so `Debug` shows
/// all of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    token: Option<String>,
    manufacturer: Option<String>,
    serial: Option<String>,
    model: Option<String>,
    slot_id: Option<u64>,
    object: Option<String>,
    id: Option<Vec<u8>>,
    object_type: Option<ObjectType>,
    pin_source: Option<PathBuf>,
    module_path: Option<PathBuf>,
    module_name: Option<String>,
}

/// Characters RFC 7512 lets a value hold unescaped, besides ALPHA / DIGIT:
/// `unreserved` and `pk11-res-avail`.
const COMMON: &[u8] = b"-._~:[]@!$'()*+,=";

fn allowed_in_path(b: u8) -> bool {
    b.is_ascii_alphanumeric() || COMMON.contains(&b) || b == b'&'
}

fn allowed_in_query(b: u8) -> bool {
    b.is_ascii_alphanumeric() || COMMON.contains(&b) || matches!(b, b'/' | b'?' | b'|')
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `value`, checking every unescaped byte with `allowed`.
fn decode(value: &str, allowed: fn(u8) -> bool) -> Result<Vec<u8>, Pkcs11Error> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_digit);
            let lo = bytes.get(i + 2).copied().and_then(hex_digit);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(Pkcs11Error::bad_input(
                    "malformed percent-escape in a pkcs11: URI (a '%' must be followed by two hex digits)",
                ));
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else if allowed(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(Pkcs11Error::bad_input(
                "a pkcs11: URI holds a character that must be percent-encoded",
            ));
        }
    }
    Ok(out)
}

fn text(bytes: Vec<u8>) -> Result<String, Pkcs11Error> {
    String::from_utf8(bytes)
        .map_err(|_| Pkcs11Error::bad_input("a pkcs11: URI attribute does not decode to UTF-8"))
}

fn set<T>(slot: &mut Option<T>, value: T) -> Result<(), Pkcs11Error> {
    if slot.is_some() {
        return Err(Pkcs11Error::bad_input(
            "a pkcs11: URI attribute is given twice",
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn object_type(value: &str) -> Result<ObjectType, Pkcs11Error> {
    Ok(match value {
        "public" => ObjectType::Public,
        "private" => ObjectType::Private,
        "cert" => ObjectType::Cert,
        "secret-key" | "secret" => ObjectType::SecretKey,
        "data" => ObjectType::Data,
        _ => {
            return Err(Pkcs11Error::bad_input(
                "unknown type in a pkcs11: URI (public, private, cert, secret-key or data)",
            ));
        }
    })
}

/// `file:/p`, `file:///p`, `file://localhost/p` or a bare absolute path.
fn pin_source_path(value: &str) -> Result<PathBuf, Pkcs11Error> {
    let path = if let Some(rest) = value.strip_prefix("file:") {
        if let Some(authority_path) = rest.strip_prefix("//") {
            if let Some(p) = authority_path.strip_prefix("localhost") {
                p
            } else {
                authority_path
            }
        } else {
            rest
        }
    } else if value.starts_with('|') {
        return Err(Pkcs11Error::bad_input(
            "pin-source commands (|program) are refused: name a file",
        ));
    } else {
        value
    };
    if !path.starts_with('/') {
        return Err(Pkcs11Error::bad_input(
            "pin-source must be a file: URI or an absolute path",
        ));
    }
    Ok(PathBuf::from(path))
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI (RFC 7512).
    ///
    /// # Errors
    /// A `bad-input` [`Pkcs11Error`] for a string that is not a `pkcs11:`
    /// URI, a malformed percent-escape or a character that must be escaped,
    /// an attribute given twice, a text attribute that is not UTF-8, an
    /// unknown `type`, a non-numeric `slot-id`, a `pin-value`, a
    /// `pin-source` that is not a file, a relative `module-path`.
    pub fn parse(uri: &str) -> Result<Self, Pkcs11Error> {
        let rest = uri
            .get(..7)
            .filter(|scheme| scheme.eq_ignore_ascii_case("pkcs11:"))
            .and_then(|_| uri.get(7..))
            .ok_or_else(|| Pkcs11Error::bad_input("not a pkcs11: URI"))?;
        if rest.contains('#') {
            return Err(Pkcs11Error::bad_input(
                "a pkcs11: URI has no fragment ('#' must be percent-encoded)",
            ));
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let mut out = Self::default();
        let mut seen_other: Vec<&str> = Vec::new();
        if !path.is_empty() {
            for attr in path.split(';') {
                let (name, value) = attr.split_once('=').ok_or_else(|| {
                    Pkcs11Error::bad_input("a pkcs11: URI path attribute has no '='")
                })?;
                if name.is_empty() {
                    return Err(Pkcs11Error::bad_input(
                        "a pkcs11: URI path attribute has no name",
                    ));
                }
                let value = decode(value, allowed_in_path)?;
                match name {
                    "token" => set(&mut out.token, text(value)?)?,
                    "manufacturer" => set(&mut out.manufacturer, text(value)?)?,
                    "serial" => set(&mut out.serial, text(value)?)?,
                    "model" => set(&mut out.model, text(value)?)?,
                    "object" => set(&mut out.object, text(value)?)?,
                    "id" => set(&mut out.id, value)?,
                    "type" => set(&mut out.object_type, object_type(&text(value)?)?)?,
                    "slot-id" => {
                        let id = text(value)?
                            .parse::<u64>()
                            .map_err(|_| Pkcs11Error::bad_input("slot-id is not a number"))?;
                        set(&mut out.slot_id, id)?;
                    }
                    other => {
                        // Known or not, an attribute may appear once.
                        if seen_other.contains(&other) {
                            return Err(Pkcs11Error::bad_input(
                                "a pkcs11: URI attribute is given twice",
                            ));
                        }
                        seen_other.push(other);
                    }
                }
            }
        }
        if let Some(query) = query {
            for attr in query.split('&').filter(|a| !a.is_empty()) {
                let (name, value) = attr.split_once('=').ok_or_else(|| {
                    Pkcs11Error::bad_input("a pkcs11: URI query attribute has no '='")
                })?;
                let value = decode(value, allowed_in_query)?;
                match name {
                    "pin-value" => {
                        return Err(Pkcs11Error::bad_input(
                            "pin-value in a pkcs11: URI is refused: use pin-source=file:/path (or pass the PIN separately)",
                        ));
                    }
                    "pin-source" => {
                        set(&mut out.pin_source, pin_source_path(&text(value)?)?)?;
                    }
                    "module-path" => {
                        let p = PathBuf::from(text(value)?);
                        if !p.is_absolute() {
                            return Err(Pkcs11Error::bad_input(
                                "module-path must be an absolute path",
                            ));
                        }
                        set(&mut out.module_path, p)?;
                    }
                    "module-name" => set(&mut out.module_name, text(value)?)?,
                    _ => {} // vendor or future attributes: ignored (RFC 7512 §2.3)
                }
            }
        }
        Ok(out)
    }

    /// Whether `s` looks like a `pkcs11:` URI (its scheme), as opposed to a
    /// bare object label.
    #[must_use]
    pub fn is_uri(s: &str) -> bool {
        s.get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("pkcs11:"))
    }

    /// `token=`: the token label.
    #[must_use]
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// `manufacturer=`: the token's manufacturer id.
    #[must_use]
    pub fn manufacturer(&self) -> Option<&str> {
        self.manufacturer.as_deref()
    }

    /// `serial=`: the token's serial number.
    #[must_use]
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_deref()
    }

    /// `model=`: the token's model.
    #[must_use]
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// `slot-id=`: the slot number.
    #[must_use]
    pub fn slot_id(&self) -> Option<u64> {
        self.slot_id
    }

    /// `object=`: the object label (`CKA_LABEL`).
    #[must_use]
    pub fn object(&self) -> Option<&str> {
        self.object.as_deref()
    }

    /// `id=`: the object id (`CKA_ID`), decoded bytes.
    #[must_use]
    pub fn id(&self) -> Option<&[u8]> {
        self.id.as_deref()
    }

    /// `type=`: the object class.
    #[must_use]
    pub fn object_type(&self) -> Option<ObjectType> {
        self.object_type
    }

    /// `pin-source=`: the file holding the user PIN.
    #[must_use]
    pub fn pin_source(&self) -> Option<&Path> {
        self.pin_source.as_deref()
    }

    /// `module-path=`: the PKCS#11 module to load.
    #[must_use]
    pub fn module_path(&self) -> Option<&Path> {
        self.module_path.as_deref()
    }

    /// `module-name=`: a module name without a path (not used to load one:
    /// give `module-path` or the module explicitly).
    #[must_use]
    pub fn module_name(&self) -> Option<&str> {
        self.module_name.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7512_examples_parse() {
        // RFC 7512 §3.
        let u = Pkcs11Uri::parse("pkcs11:").unwrap();
        assert_eq!(u, Pkcs11Uri::default());
        let u = Pkcs11Uri::parse("pkcs11:object=my-pubkey;type=public").unwrap();
        assert_eq!(u.object(), Some("my-pubkey"));
        assert_eq!(u.object_type(), Some(ObjectType::Public));
        let u = Pkcs11Uri::parse("pkcs11:object=my-key;type=private?pin-source=file:/etc/token")
            .unwrap();
        assert_eq!(u.pin_source(), Some(Path::new("/etc/token")));
        let u = Pkcs11Uri::parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=",
        )
        .unwrap();
        assert_eq!(u.token(), Some("The Software PKCS#11 Softtoken"));
        assert_eq!(u.manufacturer(), Some("Snake Oil, Inc."));
        assert_eq!(u.model(), Some("1.0"));
        assert_eq!(u.serial(), Some(""));
        assert_eq!(u.object_type(), Some(ObjectType::Cert));
        assert_eq!(
            u.id(),
            Some(&[0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91][..])
        );
        let u = Pkcs11Uri::parse(
            "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
        );
        assert_eq!(u.unwrap_err().kind(), "bad-input", "pin-value is refused");
        let u = Pkcs11Uri::parse("pkcs11:slot-description=Sun%20Metaslot").unwrap();
        assert_eq!(u, Pkcs11Uri::default(), "known but unused: ignored");
        let u = Pkcs11Uri::parse(
            "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23",
        )
        .unwrap();
        assert_eq!(u, Pkcs11Uri::default());
        let u = Pkcs11Uri::parse(
            "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
        )
        .unwrap();
        assert_eq!(u.token(), Some("A name with a substring %;"));
        let u = Pkcs11Uri::parse(
            "pkcs11:token=Name%20with%20a%20small%20amount%20of%20chars%20%C5%99%C4%8D%C5%99%C4%8D;object=my-certificate;type=cert",
        )
        .unwrap();
        assert_eq!(u.token(), Some("Name with a small amount of chars řčřč"));
        let u = Pkcs11Uri::parse("pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b").unwrap();
        assert_eq!(u.token(), Some("my-token"));
        assert_eq!(u.pin_source(), Some(Path::new("/etc/token_pin")));
        let u = Pkcs11Uri::parse("pkcs11:object=my-sign-key;type=private?module-name=mypkcs11")
            .unwrap();
        assert_eq!(u.module_name(), Some("mypkcs11"));
        let u = Pkcs11Uri::parse(
            "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
        )
        .unwrap();
        assert_eq!(u.module_path(), Some(Path::new("/mnt/libmypkcs11.so.1")));
    }

    #[test]
    fn custody_uris_parse() {
        let u = Pkcs11Uri::parse(
            "pkcs11:token=custody;object=hot-1;id=%01%02;type=private?pin-source=file:///run/pin&module-path=/usr/lib/softhsm/libsofthsm2.so",
        )
        .unwrap();
        assert_eq!(u.token(), Some("custody"));
        assert_eq!(u.object(), Some("hot-1"));
        assert_eq!(u.id(), Some(&[1, 2][..]));
        assert_eq!(u.object_type(), Some(ObjectType::Private));
        assert_eq!(u.pin_source(), Some(Path::new("/run/pin")));
        assert_eq!(
            u.module_path(),
            Some(Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        let u = Pkcs11Uri::parse("PKCS11:object=kek;type=secret").unwrap();
        assert_eq!(u.object_type(), Some(ObjectType::SecretKey));
        let u = Pkcs11Uri::parse("pkcs11:slot-id=3?pin-source=/p").unwrap();
        assert_eq!(u.slot_id(), Some(3));
        assert_eq!(u.pin_source(), Some(Path::new("/p")));
        let u = Pkcs11Uri::parse("pkcs11:object=a%2Fb%3Bc%3Fd").unwrap();
        assert_eq!(u.object(), Some("a/b;c?d"));
        assert!(Pkcs11Uri::is_uri("pkcs11:object=x"));
        assert!(!Pkcs11Uri::is_uri("hot-1"));
    }

    #[test]
    fn malformed_uris_are_typed_errors() {
        for bad in [
            "pkcs12:object=a",
            "object=a",
            "pkcs11",
            "pkcs11:object=a%",
            "pkcs11:object=a%4",
            "pkcs11:object=a%zz",
            "pkcs11:object=a%g0",
            "pkcs11:object=%%41",
            "pkcs11:id=%0",
            "pkcs11:object=a b",
            "pkcs11:object=a/b",
            "pkcs11:object=a#frag",
            "pkcs11:object",
            "pkcs11:=a",
            "pkcs11:object=a;;type=private",
            "pkcs11:object=a;object=b",
            "pkcs11:vendor-x=1;vendor-x=2",
            "pkcs11:type=key",
            "pkcs11:slot-id=x",
            "pkcs11:object=%FF",
            "pkcs11:object=a?pin-source=relative/pin",
            "pkcs11:object=a?pin-source=|/bin/echo%201234",
            "pkcs11:object=a?pin-source=https://example.invalid/pin",
            "pkcs11:object=a?module-path=libsofthsm2.so",
            "pkcs11:object=a?pin-value=1234",
            "pkcs11:object=a?pin-source=file:/a&pin-source=file:/b",
            "pkcs11:object=a?module-path=/a%",
            "pkcs11:object=a?noequals",
        ] {
            let e = Pkcs11Uri::parse(bad).expect_err(bad);
            assert_eq!(e.kind(), "bad-input", "{bad}");
        }
    }

    #[test]
    fn errors_do_not_echo_the_uri() {
        let e = Pkcs11Uri::parse("pkcs11:object=a?pin-value=hunter2").unwrap_err();
        assert!(!e.to_string().contains("hunter2"));
        assert!(!format!("{e:?}").contains("hunter2"));
    }

    mod properties {
        use super::*;
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_never_panics(s in "\\PC{0,80}") {
                let _ = Pkcs11Uri::parse(&s);
                let _ = Pkcs11Uri::parse(&format!("pkcs11:{s}"));
            }

            #[test]
            fn parse_never_panics_on_uri_like_bytes(s in "[a-z=;?&%0-9A-F/:|.-]{0,60}") {
                let _ = Pkcs11Uri::parse(&format!("pkcs11:{s}"));
            }

            #[test]
            fn percent_encoded_labels_round_trip(token in "\\PC{1,32}", object in "\\PC{1,32}", id in proptest::collection::vec(any::<u8>(), 1..20)) {
                let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
                let id_enc: String = id.iter().map(|b| format!("%{b:02x}")).collect();
                let uri = format!("pkcs11:token={};object={};id={id_enc};type=private", enc(&token), enc(&object));
                let u = Pkcs11Uri::parse(&uri).unwrap();
                prop_assert_eq!(u.token(), Some(token.as_str()));
                prop_assert_eq!(u.object(), Some(object.as_str()));
                prop_assert_eq!(u.id(), Some(id.as_slice()));
            }
        }
    }
}
