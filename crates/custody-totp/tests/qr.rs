//! The rendered QR codes decode, with an independent decoder (`rqrr`), to
//! exactly the URI they were made from: the terminal text (parsed back from
//! its half blocks) and the SVG (parsed back from its path).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "helpers outside #[test] fns: a failed unwrap or panic is a failed test"
)]

use custody_core::SecretVec;
use custody_totp::{Error, OtpAuthUri, QUIET_ZONE, QrCode, TotpParams};

/// Decodes a bitmap (`true` = dark), drawn at 4 pixels per module.
fn decode(bitmap: &[Vec<bool>]) -> String {
    const SCALE: usize = 4;
    let h = bitmap.len();
    let w = bitmap[0].len();
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * SCALE, h * SCALE, |x, y| {
        if bitmap[y / SCALE][x / SCALE] { 0 } else { 255 }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code in the picture");
    grids[0].decode().unwrap().1
}

/// Reads the terminal rendering back into modules (quiet zone included).
fn from_terminal(text: &str, dark_is_ink: bool) -> Vec<Vec<bool>> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let (mut top, mut bottom) = (Vec::new(), Vec::new());
        for c in line.chars() {
            let (t, b) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected {other:?}"),
            };
            top.push(t == dark_is_ink);
            bottom.push(b == dark_is_ink);
        }
        rows.push(top);
        rows.push(bottom);
    }
    rows
}

/// Reads the SVG back: the viewBox size and every `M{x},{y}h1v1h-1z`.
fn from_svg(svg: &str) -> Vec<Vec<bool>> {
    let vb = svg.split("viewBox=\"0 0 ").nth(1).unwrap();
    let side: usize = vb.split(' ').next().unwrap().parse().unwrap();
    let d = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let mut bitmap = vec![vec![false; side]; side];
    for cmd in d.split_whitespace() {
        let xy = cmd
            .strip_prefix('M')
            .unwrap()
            .strip_suffix("h1v1h-1z")
            .unwrap();
        let (x, y) = xy.split_once(',').unwrap();
        bitmap[y.parse::<usize>().unwrap()][x.parse::<usize>().unwrap()] = true;
    }
    bitmap
}

fn check(text: &str) {
    let qr = QrCode::encode(text).unwrap();
    let side = qr.size() + 2 * QUIET_ZONE;

    let light_bg = from_terminal(&qr.to_terminal(), true);
    assert_eq!(light_bg[0].len(), side);
    assert!(light_bg.len() == side || light_bg.len() == side + 1);
    // The quiet zone is light all round.
    for (y, row) in light_bg.iter().enumerate().take(side) {
        for (x, &dark) in row.iter().enumerate() {
            if x < QUIET_ZONE || y < QUIET_ZONE || x >= side - QUIET_ZONE || y >= side - QUIET_ZONE
            {
                assert!(!dark, "quiet zone at ({x}, {y})");
            }
        }
    }
    assert_eq!(decode(&light_bg[..side]), text);

    let dark_bg = from_terminal(&qr.to_terminal_inverted(), false);
    assert_eq!(dark_bg[..side], light_bg[..side]);

    let svg = qr.to_svg();
    assert!(svg.starts_with("<?xml"));
    let bitmap = from_svg(&svg);
    assert_eq!(bitmap, light_bg[..side]);
    assert_eq!(decode(&bitmap), text);
    assert!(!format!("{qr:?}").contains("otpauth"));
}

#[test]
fn enrolment_uris_decode_back() {
    for (issuer, account) in [
        ("custody", "alice@example.com"),
        ("ACME Co", "Zoë 🦀 wallet"),
        ("custody", "team:ops:hot"),
    ] {
        let secret = SecretVec::from_slice(&[0x5a; 20]);
        let uri = OtpAuthUri::new(Some(issuer), account, secret, TotpParams::default()).unwrap();
        check(&uri.to_uri());
    }
    // Longer data: a large symbol, still readable.
    check(&"x".repeat(600));
}

#[test]
fn too_long_is_a_typed_error() {
    assert!(matches!(
        QrCode::encode(&"\u{e9}".repeat(2000)),
        Err(Error::QrTooLong)
    ));
}
