//! RLP encoding (Ethereum Yellow Paper, Appendix B), by hand: every
//! encoder here has a twin that returns the exact length of its output, so
//! a caller sizes one buffer (`Vec::with_capacity(len)`) and then writes
//! each byte once, in order. (The `rlp` crate, which [`crate::codec`]
//! still decodes with, encodes through `RlpStream`, which counts items as
//! it goes and moves the payload of each finished list to insert its
//! header.)
//!
//! The rules, for a payload of `n` bytes:
//! - a single byte below `0x80` is itself;
//! - any other byte string is `0x80 + n` then the bytes if `n ≤ 55`, else
//!   `0xb7 + len(n)` then `n` in big-endian (no leading zeros) then the bytes;
//! - a list is `0xc0 + n` then its items' encodings if `n ≤ 55`, else
//!   `0xf7 + len(n)` then `n` in big-endian then the items;
//! - an integer is the byte string of its big-endian form without leading
//!   zeros (so 0 is the empty string, `0x80`).
//!
//! Lengths are plain `usize` sums: every length describes bytes that are
//! about to be written to memory, from values already held in memory, and
//! an encoding is never more than a small constant times the size of the
//! values it encodes, so no sum can come near `usize::MAX`. A length that
//! disagreed with its writer would only cost the buffer a reallocation,
//! never a wrong byte; the tests check that they agree.

/// The longest payload whose header is a single byte.
const SHORT: usize = 55;
/// The header offset of a byte string.
const STRING: u8 = 0x80;
/// The header offset of a list.
const LIST: u8 = 0xc0;

/// The number of bytes of `n` in big-endian without leading zeros (0 for 0).
fn be_len(n: usize) -> usize {
    // At most `usize::BITS / 8`, so the cast is exact.
    (usize::BITS - n.leading_zeros()).div_ceil(8) as usize
}

/// The length of the header of an item (byte string or list) whose payload
/// is `payload_len` bytes.
#[inline]
fn header_len(payload_len: usize) -> usize {
    if payload_len <= SHORT {
        1
    } else {
        1 + be_len(payload_len)
    }
}

/// Writes the header of an item whose payload is `payload_len` bytes:
/// `offset` is [`STRING`] or [`LIST`].
#[inline]
fn write_header(out: &mut Vec<u8>, offset: u8, payload_len: usize) {
    if payload_len <= SHORT {
        // `payload_len` ≤ 55 here, so it fits a byte and the sum stays
        // below 0x80 + 56 or 0xc0 + 56.
        out.push(offset + payload_len as u8);
    } else {
        write_long_header(out, offset, payload_len);
    }
}

/// [`write_header`] for a payload longer than [`SHORT`]: the length of the
/// length, then the length in big-endian.
fn write_long_header(out: &mut Vec<u8>, offset: u8, payload_len: usize) {
    let len_len = be_len(payload_len);
    // `len_len` ≤ 8 (`usize` is at most 64 bits), so the sum is at most
    // 0xb7 + 8 or 0xf7 + 8 = 0xff.
    out.push(offset + SHORT as u8 + len_len as u8);
    let be = payload_len.to_be_bytes();
    out.extend(be.iter().skip(be.len() - len_len));
}

/// `be` without its leading zero bytes: the form RLP gives integers.
#[inline]
fn minimal(be: &[u8]) -> &[u8] {
    let mut rest = be;
    while let [0, tail @ ..] = rest {
        rest = tail;
    }
    rest
}

/// The encoded length of the byte string `bytes`.
#[inline]
pub(crate) fn bytes_len(bytes: &[u8]) -> usize {
    match bytes {
        [b] if *b < STRING => 1,
        _ => header_len(bytes.len()) + bytes.len(),
    }
}

/// Writes the byte string `bytes`.
#[inline]
pub(crate) fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match bytes {
        [b] if *b < STRING => out.push(*b),
        _ => {
            write_header(out, STRING, bytes.len());
            out.extend_from_slice(bytes);
        }
    }
}

/// The encoded length of the unsigned integer whose big-endian bytes are
/// `be` (leading zeros allowed: they are not encoded).
#[inline]
pub(crate) fn uint_len(be: &[u8]) -> usize {
    bytes_len(minimal(be))
}

/// Writes the unsigned integer whose big-endian bytes are `be`, without its
/// leading zeros.
#[inline]
pub(crate) fn write_uint(out: &mut Vec<u8>, be: &[u8]) {
    write_bytes(out, minimal(be));
}

/// The number of bytes of `v` in big-endian without leading zeros.
fn u64_significant_bytes(v: u64) -> usize {
    // At most 8: the cast is exact.
    (8 - v.leading_zeros() / 8) as usize
}

/// The encoded length of the integer `v`.
#[inline]
pub(crate) fn u64_len(v: u64) -> usize {
    if v < u64::from(STRING) {
        1
    } else {
        1 + u64_significant_bytes(v)
    }
}

/// Writes the integer `v`.
#[inline]
pub(crate) fn write_u64(out: &mut Vec<u8>, v: u64) {
    if v == 0 {
        out.push(STRING);
    } else if v < u64::from(STRING) {
        // Below 0x80: the cast is exact.
        out.push(v as u8);
    } else {
        let n = u64_significant_bytes(v);
        // `n` ≤ 8.
        out.push(STRING + n as u8);
        let be = v.to_be_bytes();
        out.extend(be.iter().skip(be.len() - n));
    }
}

/// The encoded length of a list whose items' encodings add up to
/// `payload_len` bytes.
#[inline]
pub(crate) fn list_len(payload_len: usize) -> usize {
    header_len(payload_len) + payload_len
}

/// Writes the header of a list whose items' encodings add up to
/// `payload_len` bytes; the caller writes the items after it.
#[inline]
pub(crate) fn write_list_header(out: &mut Vec<u8>, payload_len: usize) {
    write_header(out, LIST, payload_len);
}

/// The encoded length of one 32-byte string: a one-byte header and the bytes.
const HASH_LEN: usize = 1 + 32;

/// A value with an RLP encoding of its own (a list, usually): its length,
/// and a writer of exactly that many bytes.
pub(crate) trait Encode {
    /// The length of the encoding.
    fn encoded_len(&self) -> usize;
    /// Appends the encoding, [`Encode::encoded_len`] bytes, to `out`.
    fn write(&self, out: &mut Vec<u8>);
}

/// A list of 32-byte strings (storage keys, blob versioned hashes).
impl Encode for [[u8; 32]] {
    fn encoded_len(&self) -> usize {
        list_len(self.len() * HASH_LEN)
    }

    fn write(&self, out: &mut Vec<u8>) {
        write_list_header(out, self.len() * HASH_LEN);
        for h in self {
            write_bytes(out, h);
        }
    }
}

/// Where the items of a list go, one after the other: [`Length`] adds up
/// their encoded lengths, a `Vec<u8>` receives their encodings. A list's
/// items are named once, in a function generic over the sink, which runs
/// first with a [`Length`] (to size the buffer and the list header) and
/// then with the buffer; each runs as straight-line code.
pub(crate) trait Sink {
    /// An integer.
    fn u64(&mut self, v: u64);
    /// An unsigned integer as big-endian bytes (leading zeros are not
    /// encoded).
    fn uint(&mut self, be: &[u8]);
    /// A byte string.
    fn bytes(&mut self, bytes: &[u8]);
    /// A value that encodes itself.
    fn item<E: Encode + ?Sized>(&mut self, item: &E);
}

/// A [`Sink`] that only adds up encoded lengths.
#[derive(Debug)]
pub(crate) struct Length(usize);

impl Sink for Length {
    fn u64(&mut self, v: u64) {
        self.0 += u64_len(v);
    }

    fn uint(&mut self, be: &[u8]) {
        self.0 += uint_len(be);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.0 += bytes_len(bytes);
    }

    fn item<E: Encode + ?Sized>(&mut self, item: &E) {
        self.0 += item.encoded_len();
    }
}

impl Sink for Vec<u8> {
    fn u64(&mut self, v: u64) {
        write_u64(self, v);
    }

    fn uint(&mut self, be: &[u8]) {
        write_uint(self, be);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        write_bytes(self, bytes);
    }

    fn item<E: Encode + ?Sized>(&mut self, item: &E) {
        item.write(self);
    }
}

/// The total encoded length of what `items` puts into a sink.
pub(crate) fn items_len(items: impl FnOnce(&mut Length)) -> usize {
    let mut length = Length(0);
    items(&mut length);
    length.0
}

#[cfg(test)]
mod tests {
    //! Differential against the `rlp` crate's `RlpStream`, which stays a
    //! dependency (for decoding) and so serves as the oracle here.

    use proptest::collection::vec;
    use proptest::prelude::*;
    use rlp::RlpStream;

    use super::*;

    /// An RLP item to encode.
    #[derive(Debug, Clone)]
    enum Tree {
        /// An unsigned integer as big-endian bytes, possibly with leading
        /// zeros (0 to 32 bytes).
        Uint(Vec<u8>),
        /// A byte string.
        Bytes(Vec<u8>),
        /// A list.
        List(Vec<Tree>),
    }

    /// The items of a list, through the [`Sink`]s (so that the tests
    /// cover [`Length`], the `Vec<u8>` sink and [`items_len`] too).
    fn list_items<S: Sink>(items: &[Tree], s: &mut S) {
        for item in items {
            match item {
                Tree::Uint(be) => s.uint(be),
                Tree::Bytes(b) => s.bytes(b),
                Tree::List(_) => s.item(item),
            }
        }
    }

    impl Encode for Tree {
        fn encoded_len(&self) -> usize {
            match self {
                Tree::Uint(be) => uint_len(be),
                Tree::Bytes(b) => bytes_len(b),
                Tree::List(items) => list_len(items_len(|n| list_items(items, n))),
            }
        }

        fn write(&self, out: &mut Vec<u8>) {
            match self {
                Tree::Uint(be) => write_uint(out, be),
                Tree::Bytes(b) => write_bytes(out, b),
                Tree::List(items) => {
                    write_list_header(out, items_len(|n| list_items(items, n)));
                    list_items(items, out);
                }
            }
        }
    }

    fn encode(t: &Tree) -> Vec<u8> {
        let len = t.encoded_len();
        let mut out = Vec::with_capacity(len);
        t.write(&mut out);
        assert_eq!(out.len(), len, "length and writer disagree");
        out
    }

    /// The oracle: `RlpStream`. Integers of up to 16 bytes go through the
    /// crate's own `u128` encoding; wider ones (which it has no type for
    /// without `ethereum-types`) as the byte string of their significant
    /// bytes, found here by a different route than [`minimal`].
    fn oracle_append(s: &mut RlpStream, t: &Tree) {
        match t {
            Tree::Uint(be) => {
                let significant: Vec<u8> = be.iter().copied().skip_while(|b| *b == 0).collect();
                if significant.len() <= 16 {
                    let v = be.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
                    s.append(&v);
                } else {
                    s.append(&significant.as_slice());
                }
            }
            Tree::Bytes(b) => {
                s.append(&b.as_slice());
            }
            Tree::List(items) => {
                s.begin_list(items.len());
                for item in items {
                    oracle_append(s, item);
                }
            }
        }
    }

    fn oracle(t: &Tree) -> Vec<u8> {
        let mut s = RlpStream::new();
        oracle_append(&mut s, t);
        s.out().to_vec()
    }

    /// Big-endian integers of 0 to 32 bytes, often with leading zeros.
    fn uint() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            vec(any::<u8>(), 0..=32),
            (0usize..=31, vec(any::<u8>(), 0..=32)).prop_map(|(zeros, mut tail)| {
                let mut be = vec![0; zeros];
                be.append(&mut tail);
                be.truncate(32);
                be
            }),
            (0u8..=0x81).prop_map(|b| vec![b]),
            any::<u64>().prop_map(|v| v.to_be_bytes().to_vec()),
        ]
    }

    /// Byte strings at every boundary of the header forms: empty, one byte
    /// on either side of 0x80, 55/56 (short/long header), 255/256 (one/two
    /// length bytes), 65535/65536 (two/three length bytes), and others.
    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        let sized = |n: usize| vec(any::<u8>(), n);
        prop_oneof![
            4 => Just(Vec::new()),
            4 => (0u8..0x80).prop_map(|b| vec![b]),
            4 => (0x80u8..=0xff).prop_map(|b| vec![b]),
            4 => sized(54),
            4 => sized(55),
            4 => sized(56),
            4 => sized(57),
            4 => sized(255),
            4 => sized(256),
            1 => sized(65_535),
            1 => sized(65_536),
            8 => vec(any::<u8>(), 0..80),
        ]
    }

    /// Nested lists whose payloads land on both sides of 55/56 bytes.
    fn tree() -> impl Strategy<Value = Tree> {
        let leaf = prop_oneof![uint().prop_map(Tree::Uint), bytes().prop_map(Tree::Bytes)];
        leaf.prop_recursive(4, 48, 12, |inner| vec(inner, 0..12).prop_map(Tree::List))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn matches_rlp_stream(t in tree()) {
            prop_assert_eq!(encode(&t), oracle(&t));
        }

        #[test]
        fn integers_match_rlp_stream(be in uint()) {
            let t = Tree::Uint(be);
            prop_assert_eq!(encode(&t), oracle(&t));
        }

        #[test]
        fn u64_matches_rlp_stream(v in prop_oneof![any::<u64>(), 0u64..=0x100]) {
            let mut out = Vec::new();
            write_u64(&mut out, v);
            prop_assert_eq!(out.len(), u64_len(v));
            let mut s = RlpStream::new();
            s.append(&v);
            prop_assert_eq!(out, s.out().to_vec());
        }
    }

    #[test]
    fn every_boundary_matches_rlp_stream() {
        // Each boundary length alone, as a string and as a list payload of
        // one-byte items (which are themselves), and lists whose payload is
        // exactly that long.
        for n in [0usize, 1, 54, 55, 56, 57, 255, 256, 65_535, 65_536] {
            for fill in [0x00u8, 0x7f, 0x80, 0xff] {
                let b = Tree::Bytes(vec![fill; n]);
                assert_eq!(encode(&b), oracle(&b), "string of {n} x {fill:#x}");
            }
            let list = Tree::List(vec![Tree::Bytes(vec![1]); n]);
            assert_eq!(encode(&list), oracle(&list), "list of {n} bytes");
            assert_eq!(list_len(n), header_len(n) + n);
        }
        // Integers at the single-byte boundary and their widths.
        for v in [0u64, 1, 0x7f, 0x80, 0xff, 0x100, u64::MAX] {
            let t = Tree::Uint(v.to_be_bytes().to_vec());
            assert_eq!(encode(&t), oracle(&t), "{v}");
        }
        // Known answers from the Yellow Paper / ethereum/tests rlptest.json.
        assert_eq!(encode(&Tree::Uint(vec![0, 0])), [0x80]);
        assert_eq!(encode(&Tree::Uint(vec![0x0f])), [0x0f]);
        assert_eq!(encode(&Tree::Uint(vec![0x04, 0x00])), [0x82, 0x04, 0x00]);
        assert_eq!(encode(&Tree::Bytes(b"dog".to_vec())), b"\x83dog");
        assert_eq!(encode(&Tree::List(Vec::new())), [0xc0]);
    }

    #[test]
    fn hash_lists_match_rlp_stream() {
        // 0, 1 and 2 hashes (payload 0, 33, 66: both header forms).
        for n in 0..=2u8 {
            let hashes: Vec<[u8; 32]> = (0..n).map(|i| [i; 32]).collect();
            let mut out = Vec::with_capacity(hashes.encoded_len());
            hashes.write(&mut out);
            assert_eq!(out.len(), hashes.encoded_len());
            let mut s = RlpStream::new_list(hashes.len());
            for h in &hashes {
                s.append(&h.as_slice());
            }
            assert_eq!(out, s.out().to_vec(), "{n} hashes");
        }
    }

    #[test]
    fn header_lengths_at_every_width() {
        assert_eq!(be_len(0), 0);
        assert_eq!(be_len(0xff), 1);
        assert_eq!(be_len(0x100), 2);
        assert_eq!(be_len(usize::MAX), size_of::<usize>());
        let mut out = Vec::new();
        write_header(&mut out, LIST, usize::MAX);
        let mut expected = vec![0xf7 + size_of::<usize>() as u8];
        expected.extend(usize::MAX.to_be_bytes());
        assert_eq!(out, expected);
        assert_eq!(out.len(), header_len(usize::MAX));
    }
}
