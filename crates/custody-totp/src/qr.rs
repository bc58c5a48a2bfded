//! QR codes of enrolment URIs, drawn as terminal text and as SVG.
//!
//! The QR symbol is computed by `qrcodegen-no-heap` (Nayuki's reference
//! encoder, no dependencies, `forbid(unsafe_code)`) into buffers we own and
//! wipe: the URI holds the shared secret, and so does every buffer that saw
//! it. Rendering is ours: two rows of modules per line of Unicode half blocks
//! for a terminal, one `<path>` for SVG, each with the 4-module quiet zone
//! ISO/IEC 18004 asks for. Error correction level M (15 %), raised when it
//! costs no extra size.

use std::fmt::{self, Write as _};

use qrcodegen_no_heap::{QrCode as Symbol, QrCodeEcc, Version};
use zeroize::Zeroizing;

use crate::Error;

/// Width of the light border around the symbol, in modules.
pub const QUIET_ZONE: usize = 4;

/// A QR code: a square of dark and light modules. Holds what it encodes
/// (an enrolment URI holds the TOTP secret): wiped on drop, and `Debug`
/// shows only its size.
pub struct QrCode {
    size: usize,
    /// Row-major, 1 = dark.
    modules: Zeroizing<Vec<u8>>,
}

impl QrCode {
    /// Encodes `text` (byte mode, or a denser mode when the text allows).
    ///
    /// # Errors
    /// [`Error::QrTooLong`] if it does not fit in a version-40 symbol at
    /// error correction level M (about 2300 bytes).
    pub fn encode(text: &str) -> Result<Self, Error> {
        let len = Version::MAX.buffer_len();
        let mut temp = Zeroizing::new(vec![0u8; len]);
        let mut out = Zeroizing::new(vec![0u8; len]);
        let symbol = Symbol::encode_text(
            text,
            &mut temp,
            &mut out,
            QrCodeEcc::Medium,
            Version::MIN,
            Version::MAX,
            None,
            true,
        )
        .map_err(|_| Error::QrTooLong)?;
        // 21..=177 modules per side.
        let size = usize::try_from(symbol.size()).map_err(|_| Error::QrTooLong)?;
        let mut modules = Zeroizing::new(Vec::with_capacity(size * size));
        for y in 0..symbol.size() {
            for x in 0..symbol.size() {
                modules.push(u8::from(symbol.get_module(x, y)));
            }
        }
        Ok(Self { size, modules })
    }

    /// Modules per side, without the quiet zone (21 to 177).
    #[must_use]
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the module at column `x`, row `y` is dark (`false` outside
    /// the symbol, as in the quiet zone).
    #[must_use]
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.size
            && y < self.size
            && self.modules.get(y * self.size + x).is_some_and(|&m| m == 1)
    }

    /// Dark-ness with the quiet zone: `(x, y)` counts from the outer corner.
    fn dark_with_border(&self, x: usize, y: usize) -> bool {
        x >= QUIET_ZONE && y >= QUIET_ZONE && self.is_dark(x - QUIET_ZONE, y - QUIET_ZONE)
    }

    /// Terminal text: each character is two modules stacked (`█ ▀ ▄` and
    /// space), dark modules drawn in the text colour. For terminals with
    /// dark text on a light background (and for print); see
    /// [`QrCode::to_terminal_inverted`] for light-on-dark terminals. Lines
    /// end with `\n`. It shows the secret: write it only to the user.
    #[must_use]
    pub fn to_terminal(&self) -> Zeroizing<String> {
        self.render_terminal(false)
    }

    /// Terminal text for light text on a dark background (most terminals):
    /// light modules are drawn in the text colour, as `qrencode -t UTF8`
    /// does.
    #[must_use]
    pub fn to_terminal_inverted(&self) -> Zeroizing<String> {
        self.render_terminal(true)
    }

    fn render_terminal(&self, invert: bool) -> Zeroizing<String> {
        let side = self.size + 2 * QUIET_ZONE;
        let lines = side.div_ceil(2);
        // Each half block is 3 bytes of UTF-8; the capacity is exact so the
        // buffer is never reallocated (no stray copy of the picture).
        let mut out = Zeroizing::new(String::with_capacity(lines * (side * 3 + 1)));
        for row in 0..lines {
            for x in 0..side {
                // Past the last row (odd side) is light, like the border.
                let top = self.dark_with_border(x, 2 * row) != invert;
                let bottom =
                    (2 * row + 1 < side && self.dark_with_border(x, 2 * row + 1)) != invert;
                out.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
        }
        out
    }

    /// A standalone SVG image: a white square with the dark modules as one
    /// black path, 1 user unit per module, quiet zone included. It shows
    /// the secret: serve it only to the user enrolling.
    #[must_use]
    pub fn to_svg(&self) -> Zeroizing<String> {
        let side = self.size + 2 * QUIET_ZONE;
        let dark = self.modules.iter().filter(|&&m| m == 1).count();
        // Each dark module is "M{x},{y}h1v1h-1z" with x, y below 182.
        let mut out = Zeroizing::new(String::with_capacity(400 + dark * 21));
        let _ = self.write_svg(&mut out, side);
        out
    }

    fn write_svg(&self, out: &mut String, side: usize) -> fmt::Result {
        write!(
            out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" \
             viewBox=\"0 0 {side} {side}\" stroke=\"none\" shape-rendering=\"crispEdges\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"#FFFFFF\"/>\n<path d=\""
        )?;
        let mut first = true;
        for y in 0..self.size {
            for x in 0..self.size {
                if self.is_dark(x, y) {
                    if !first {
                        out.push(' ');
                    }
                    first = false;
                    write!(out, "M{},{}h1v1h-1z", x + QUIET_ZONE, y + QUIET_ZONE)?;
                }
            }
        }
        out.push_str("\" fill=\"#000000\"/>\n</svg>\n");
        Ok(())
    }
}

impl fmt::Debug for QrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QrCode")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}
