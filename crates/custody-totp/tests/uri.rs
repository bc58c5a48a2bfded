//! otpauth URIs: round trips, one test per typed error, property tests
//! (parsing never panics; generate → parse is the identity), and
//! differential tests of the base32 and percent coders against independent
//! crates.

#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use custody_core::SecretVec;
use custody_totp::{
    Algorithm, Digits, Error, OtpAuthUri, Period, TotpParams, base32, parse_otpauth_uri, percent,
};
use proptest::prelude::*;

const SECRET: &[u8] = b"12345678901234567890";
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn uri(issuer: Option<&str>, account: &str) -> OtpAuthUri {
    OtpAuthUri::new(
        issuer,
        account,
        SecretVec::from_slice(SECRET),
        TotpParams::default(),
    )
    .unwrap()
}

fn assert_round_trip(u: &OtpAuthUri) {
    let text = u.to_uri();
    let back = OtpAuthUri::parse(&text).unwrap();
    assert_eq!(back.issuer(), u.issuer(), "{}", text.as_str());
    assert_eq!(back.account(), u.account(), "{}", text.as_str());
    assert_eq!(back.params(), u.params());
    assert_eq!(back.expose_secret(), u.expose_secret());
    // And the form is canonical: writing it again gives the same text.
    assert_eq!(back.to_uri().as_str(), text.as_str());
}

#[test]
fn email_utf8_and_colon_names_round_trip() {
    let email = uri(Some("custody"), "alice@example.com");
    assert_eq!(
        email.to_uri().as_str(),
        format!(
            "otpauth://totp/custody:alice%40example.com?secret={SECRET_B32}\
             &issuer=custody&algorithm=SHA1&digits=6&period=30"
        )
    );
    assert_round_trip(&email);

    let utf8 = uri(Some("ACME Co"), "Zoë 🦀 wallet");
    assert_eq!(
        utf8.to_uri().as_str(),
        format!(
            "otpauth://totp/ACME%20Co:Zo%C3%AB%20%F0%9F%A6%80%20wallet?secret={SECRET_B32}\
             &issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30"
        )
    );
    assert_round_trip(&utf8);

    // A ':' in the wallet name is escaped; the one literal ':' separates.
    let colon = uri(Some("custody"), "team:ops:hot");
    let text = colon.to_uri();
    assert!(text.starts_with("otpauth://totp/custody:team%3Aops%3Ahot?"));
    assert_eq!(text.matches(':').count(), 2, "scheme and separator only");
    assert_round_trip(&colon);

    // Without an issuer the whole label is the account, ':' and all.
    let bare = uri(None, "a:b");
    assert!(bare.to_uri().starts_with("otpauth://totp/a%3Ab?secret="));
    assert_round_trip(&bare);

    // Every parameter survives.
    let odd = OtpAuthUri::new(
        Some("x"),
        "y",
        SecretVec::from_slice(&[0xA5; 64]),
        TotpParams {
            algorithm: Algorithm::Sha512,
            digits: Digits::EIGHT,
            period: Period::new(u64::MAX).unwrap(),
        },
    )
    .unwrap();
    assert_round_trip(&odd);
}

#[test]
fn labels_written_by_other_tools() {
    // Key Uri Format: the separator may be %3A, and the label's issuer may
    // be omitted when the parameter names it.
    let long = "otpauth://totp/ACME%20Co%3Ajohn.doe%40email.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co";
    let u = parse_otpauth_uri(long).unwrap();
    assert_eq!(u.issuer(), Some("ACME Co"));
    assert_eq!(u.account(), "john.doe@email.com");
    let u = parse_otpauth_uri(
        "otpauth://totp/john?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME",
    )
    .unwrap();
    assert_eq!((u.issuer(), u.account()), (Some("ACME"), "john"));
    // Defaults when parameters are absent; lower-case base32, padding, case
    // of scheme/type/algorithm, unknown parameters, empty '&&'.
    let u = parse_otpauth_uri(
        "OTPAUTH://TOTP/a?secret=gezdgnbvgy3tqojqgezdgnbvgy3tqojq&&image=x&algorithm=sha256",
    )
    .unwrap();
    assert_eq!(u.issuer(), None);
    assert_eq!(u.expose_secret(), SECRET);
    assert_eq!(u.params().algorithm, Algorithm::Sha256);
    assert_eq!(u.params().digits, Digits::SIX);
    assert_eq!(u.params().period.seconds(), 30);
    let padded = parse_otpauth_uri(
        "otpauth://totp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGE%3D%3D%3D%3D%3D%3D",
    )
    .unwrap();
    assert_eq!(padded.expose_secret().len(), 21);
    // '+' is a literal plus, not a space.
    let plus = parse_otpauth_uri(&format!("otpauth://totp/a+b?secret={SECRET_B32}")).unwrap();
    assert_eq!(plus.account(), "a+b");
}

/// Whether an error is the expected one.
type IsExpected = fn(&Error) -> bool;

/// One case per typed error.
#[test]
fn typed_errors() {
    let s = SECRET_B32;
    let long = format!("otpauth://totp/a?secret={s}&x={}", "y".repeat(4096));
    let cases: Vec<(String, IsExpected)> = vec![
        (long, |e| matches!(e, Error::UriTooLong)),
        (format!("otpauth://totp/a b?secret={s}"), |e| {
            matches!(e, Error::MalformedUri(_))
        }),
        (format!("otpauth://totp/é?secret={s}"), |e| {
            matches!(e, Error::MalformedUri(_))
        }),
        (format!("otpauth:totp/a?secret={s}"), |e| {
            matches!(e, Error::MalformedUri(_))
        }),
        (format!("otpauth://totp/a?secret={s}#frag"), |e| {
            matches!(e, Error::MalformedUri(_))
        }),
        (format!("otpauth://totp/a?secret={s}&digits"), |e| {
            matches!(e, Error::MalformedUri(_))
        }),
        (format!("https://totp/a?secret={s}"), |e| {
            matches!(e, Error::BadScheme)
        }),
        ("no-colon".to_owned(), |e| matches!(e, Error::BadScheme)),
        (format!("otpauth://hotp/a?secret={s}&counter=0"), |e| {
            matches!(e, Error::UnsupportedType)
        }),
        (format!("otpauth://motp/a?secret={s}"), |e| {
            matches!(e, Error::BadType)
        }),
        (format!("otpauth://totp:80/a?secret={s}"), |e| {
            matches!(e, Error::BadType)
        }),
        (format!("otpauth://totp?secret={s}"), |e| {
            matches!(e, Error::MissingAccount)
        }),
        (format!("otpauth://totp/?secret={s}"), |e| {
            matches!(e, Error::MissingAccount)
        }),
        (format!("otpauth://totp/ACME:?secret={s}"), |e| {
            matches!(e, Error::MissingAccount)
        }),
        (format!("otpauth://totp/:a?secret={s}"), |e| {
            matches!(e, Error::InvalidIssuer(_))
        }),
        (format!("otpauth://totp/A%3AB:a?secret={s}"), |e| {
            matches!(e, Error::InvalidIssuer(_))
        }),
        (format!("otpauth://totp/a?secret={s}&issuer="), |e| {
            matches!(e, Error::InvalidIssuer(_))
        }),
        (format!("otpauth://totp/a?secret={s}&issuer=x%3Ay"), |e| {
            matches!(e, Error::InvalidIssuer(_))
        }),
        (
            format!("otpauth://totp/ACME:a?secret={s}&issuer=Evil"),
            |e| matches!(e, Error::IssuerMismatch),
        ),
        (format!("otpauth://totp/a%2?secret={s}"), |e| {
            matches!(e, Error::PercentEncoding)
        }),
        (format!("otpauth://totp/a%FF?secret={s}"), |e| {
            matches!(e, Error::PercentEncoding)
        }),
        (format!("otpauth://totp/a?secret={s}&issuer=%zz"), |e| {
            matches!(e, Error::PercentEncoding)
        }),
        (format!("otpauth://totp/a?secret={s}&secret={s}"), |e| {
            matches!(e, Error::DuplicateParameter("secret"))
        }),
        (
            format!("otpauth://totp/a?secret={s}&digits=6&digits=6"),
            |e| matches!(e, Error::DuplicateParameter("digits")),
        ),
        (
            format!("otpauth://totp/a?secret={s}&image=a&image=b"),
            |e| matches!(e, Error::DuplicateParameter(_)),
        ),
        (format!("otpauth://totp/a?secret={s}&%73ecret={s}"), |e| {
            matches!(e, Error::DuplicateParameter("secret"))
        }),
        ("otpauth://totp/a?issuer=x".to_owned(), |e| {
            matches!(e, Error::MissingSecret)
        }),
        ("otpauth://totp/a?secret=".to_owned(), |e| {
            matches!(e, Error::MissingSecret)
        }),
        (
            "otpauth://totp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1".to_owned(),
            |e| matches!(e, Error::InvalidSecret),
        ),
        (
            "otpauth://totp/a?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQG".to_owned(),
            |e| matches!(e, Error::InvalidSecret),
        ),
        // Google's own example secret is 80 bits: below RFC 4226's minimum.
        (
            "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
                .to_owned(),
            |e| matches!(e, Error::SecretTooShort),
        ),
        (
            format!("otpauth://totp/a?secret={}", "A".repeat(416)),
            |e| matches!(e, Error::SecretTooLong),
        ),
        (format!("otpauth://totp/a?secret={s}&algorithm=MD5"), |e| {
            matches!(e, Error::UnknownAlgorithm)
        }),
        (format!("otpauth://totp/a?secret={s}&digits=5"), |e| {
            matches!(e, Error::InvalidDigits)
        }),
        (format!("otpauth://totp/a?secret={s}&digits=9"), |e| {
            matches!(e, Error::InvalidDigits)
        }),
        (format!("otpauth://totp/a?secret={s}&digits=+6"), |e| {
            matches!(e, Error::InvalidDigits)
        }),
        (format!("otpauth://totp/a?secret={s}&digits=0006"), |e| {
            matches!(e, Error::InvalidDigits)
        }),
        (format!("otpauth://totp/a?secret={s}&period=0"), |e| {
            matches!(e, Error::InvalidPeriod)
        }),
        (format!("otpauth://totp/a?secret={s}&period=-30"), |e| {
            matches!(e, Error::InvalidPeriod)
        }),
        (
            format!("otpauth://totp/a?secret={s}&period=18446744073709551616"),
            |e| matches!(e, Error::InvalidPeriod),
        ),
        (format!("otpauth://totp/a?secret={s}&period="), |e| {
            matches!(e, Error::InvalidPeriod)
        }),
    ];
    for (text, is_expected) in cases {
        match OtpAuthUri::parse(&text) {
            Ok(u) => panic!("{text:?} parsed as {u:?}"),
            Err(e) => {
                assert!(is_expected(&e), "{text:?}: got {e:?}");
                // No error names the secret or echoes the input.
                assert!(!e.to_string().contains(SECRET_B32));
            }
        }
    }
}

#[test]
fn constructor_checks_and_debug_redacts() {
    let secret = || SecretVec::from_slice(SECRET);
    let p = TotpParams::default();
    assert!(matches!(
        OtpAuthUri::new(Some("a:b"), "x", secret(), p),
        Err(Error::InvalidIssuer(_))
    ));
    assert!(matches!(
        OtpAuthUri::new(Some(""), "x", secret(), p),
        Err(Error::InvalidIssuer(_))
    ));
    assert!(matches!(
        OtpAuthUri::new(None, "", secret(), p),
        Err(Error::MissingAccount)
    ));
    assert!(matches!(
        OtpAuthUri::new(None, "x", SecretVec::from_slice(&[1; 15]), p),
        Err(Error::SecretTooShort)
    ));
    let u = uri(Some("custody"), "alice");
    let debug = format!("{u:?}");
    assert!(debug.contains("alice") && debug.contains("<redacted>"));
    assert!(!debug.contains(SECRET_B32) && !debug.contains("1234567890"));
}

/// A strategy for strings that look like otpauth URIs, to get past the
/// first checks of the parser.
fn near_uri() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("otpauth://".to_owned()),
        Just("totp/".to_owned()),
        Just("hotp/".to_owned()),
        Just(":".to_owned()),
        Just("?".to_owned()),
        Just("&".to_owned()),
        Just("=".to_owned()),
        Just("%".to_owned()),
        Just("%3A".to_owned()),
        Just("secret=".to_owned()),
        Just(SECRET_B32.to_owned()),
        Just("issuer=".to_owned()),
        Just("digits=".to_owned()),
        Just("period=".to_owned()),
        Just("algorithm=".to_owned()),
        "[ -~]{0,6}",
        "\\PC{0,3}",
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

fn params() -> impl Strategy<Value = TotpParams> {
    (
        prop_oneof![
            Just(Algorithm::Sha1),
            Just(Algorithm::Sha256),
            Just(Algorithm::Sha512)
        ],
        6u8..=8,
        1u64..=u64::MAX,
    )
        .prop_map(|(algorithm, digits, period)| TotpParams {
            algorithm,
            digits: Digits::new(digits).unwrap(),
            period: Period::new(period).unwrap(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn parsing_arbitrary_strings_never_panics(s in "\\PC*") {
        let _ = parse_otpauth_uri(&s);
    }

    #[test]
    fn parsing_near_uris_never_panics(s in near_uri()) {
        if let Ok(u) = parse_otpauth_uri(&s) {
            // Whatever parses is well-formed and writes back to a URI that
            // parses to the same thing.
            let again = parse_otpauth_uri(&u.to_uri()).unwrap();
            prop_assert_eq!(again.account(), u.account());
            prop_assert_eq!(again.issuer(), u.issuer());
            prop_assert_eq!(again.expose_secret(), u.expose_secret());
            prop_assert_eq!(again.params(), u.params());
        }
    }

    #[test]
    fn generate_then_parse_is_identity(
        issuer in proptest::option::of("[^:]{1,24}"),
        account in "\\PC{1,48}",
        secret in proptest::collection::vec(any::<u8>(), 16..=64),
        params in params(),
    ) {
        let u = OtpAuthUri::new(issuer.as_deref(), &account, SecretVec::from_slice(&secret), params).unwrap();
        let text = u.to_uri();
        prop_assert!(text.len() <= custody_totp::MAX_URI_LEN);
        let back = parse_otpauth_uri(&text).unwrap();
        prop_assert_eq!(back.issuer(), issuer.as_deref());
        prop_assert_eq!(back.account(), account.as_str());
        prop_assert_eq!(back.expose_secret(), &secret[..]);
        prop_assert_eq!(back.params(), params);
    }

    /// Against the `base32` crate (RFC 4648, no padding).
    #[test]
    fn base32_matches_independent_crate(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let ours = base32::encode(&bytes);
        let oracle = ::base32::encode(::base32::Alphabet::Rfc4648 { padding: false }, &bytes);
        prop_assert_eq!(ours.as_str(), oracle.as_str());
        prop_assert_eq!(base32::decode(&ours).unwrap().to_vec(), bytes.clone());
        let padded = ::base32::encode(::base32::Alphabet::Rfc4648 { padding: true }, &bytes);
        prop_assert_eq!(base32::decode(&padded).unwrap().to_vec(), bytes.clone());
    }

    /// Whatever we accept, the `base32` crate decodes alike.
    #[test]
    fn base32_decoding_agrees(s in "[A-Z2-7a-z=]{0,24}") {
        if let Ok(ours) = base32::decode(&s) {
            let oracle = ::base32::decode(::base32::Alphabet::Rfc4648 { padding: false }, &s.to_uppercase().replace('=', ""));
            prop_assert_eq!(Some(ours.to_vec()), oracle);
        }
    }

    /// Against the `percent-encoding` crate with the RFC 3986 unreserved set.
    #[test]
    fn percent_matches_independent_crate(s in "\\PC{0,40}") {
        use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode, percent_decode_str};
        const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
        let ours = percent::encode(&s);
        prop_assert_eq!(&ours, &utf8_percent_encode(&s, UNRESERVED).to_string());
        prop_assert_eq!(percent::decode(&ours).unwrap(), s.clone());
        prop_assert_eq!(
            percent::decode(&ours).unwrap(),
            percent_decode_str(&ours).decode_utf8().unwrap().into_owned()
        );
    }
}
