//! A small strict BER walker (ITU-T X.690 §8), enough for KMS's
//! `CiphertextForRecipient`: definite and indefinite lengths, constructed
//! (chunked) OCTET STRINGs, bounded depth. It reads; it never allocates
//! except to join the chunks of a constructed string.
//!
//! Refused, each as its own [`BerError`]: multi-byte (high-number) tags,
//! lengths of more than four octets or the reserved `0xff`, an indefinite
//! length on a primitive element, an end-of-contents that is not `00 00`
//! or stands where no indefinite element is open, nesting deeper than
//! [`MAX_BER_DEPTH`], an element running past its container, and bytes
//! after the outermost element. Non-minimal definite lengths are BER and
//! are read.

/// The deepest nesting of constructed elements read (CMS EnvelopedData as
/// KMS writes it nests seven deep, a chunked string one more).
pub const MAX_BER_DEPTH: usize = 16;

/// Why bytes are not the BER this walker reads.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BerError {
    /// An element or its header runs past the end of its container.
    #[error("truncated")]
    Truncated,
    /// A tag number of 31 or more (the multi-byte tag form).
    #[error("high-number tag")]
    HighTagNumber,
    /// A length of more than four octets, or the reserved form `0xff`.
    #[error("length too long")]
    LengthTooLong,
    /// An indefinite length on a primitive element.
    #[error("indefinite length on a primitive element")]
    IndefinitePrimitive,
    /// Constructed elements nested deeper than [`MAX_BER_DEPTH`].
    #[error("nested too deep")]
    TooDeep,
    /// An end-of-contents marker with a non-zero length, or one where no
    /// indefinite-length element is open.
    #[error("misplaced or malformed end-of-contents")]
    BadEndOfContents,
    /// Bytes after the outermost element, or after the last element a
    /// structure has.
    #[error("trailing bytes")]
    TrailingBytes,
    /// Another element than the one the structure has here.
    #[error("expected tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag {
        /// The identifier octet expected.
        expected: u8,
        /// The identifier octet found.
        found: u8,
    },
    /// The structure ends before a required element.
    #[error("a required element is missing")]
    Missing,
    /// An INTEGER that is empty, negative or wider than 64 bits.
    #[error("integer out of range")]
    Integer,
}

/// One element: its identifier octet and the bytes of its contents (for an
/// indefinite length, those before its end-of-contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Element<'a> {
    /// The identifier octet (class, constructed bit, tag number).
    pub(crate) tag: u8,
    /// The contents octets.
    pub(crate) body: &'a [u8],
    /// How deep it is (the outermost element: 1).
    depth: usize,
}

/// The constructed bit of an identifier octet.
pub(crate) const CONSTRUCTED: u8 = 0x20;

impl<'a> Element<'a> {
    /// Whether it is constructed (its body is elements).
    pub(crate) fn is_constructed(&self) -> bool {
        self.tag & CONSTRUCTED != 0
    }

    /// A reader of its children.
    ///
    /// # Errors
    /// [`BerError::UnexpectedTag`] if it is primitive.
    pub(crate) fn children(&self) -> Result<Reader<'a>, BerError> {
        if !self.is_constructed() {
            return Err(BerError::UnexpectedTag {
                expected: self.tag | CONSTRUCTED,
                found: self.tag,
            });
        }
        Ok(Reader {
            rest: self.body,
            depth: self.depth,
        })
    }

    /// The value of an OCTET STRING whose identifier is `tag` (primitive)
    /// or `tag | CONSTRUCTED` (chunks, each a universal OCTET STRING, in
    /// turn primitive or constructed), joined.
    pub(crate) fn octets(&self) -> Result<Vec<u8>, BerError> {
        let mut out = Vec::with_capacity(self.body.len());
        self.append_octets(&mut out)?;
        Ok(out)
    }

    fn append_octets(&self, out: &mut Vec<u8>) -> Result<(), BerError> {
        if !self.is_constructed() {
            out.extend_from_slice(self.body);
            return Ok(());
        }
        let mut chunks = self.children()?;
        while let Some(chunk) = chunks.next()? {
            if chunk.tag & !CONSTRUCTED != OCTET_STRING {
                return Err(BerError::UnexpectedTag {
                    expected: OCTET_STRING,
                    found: chunk.tag,
                });
            }
            chunk.append_octets(out)?;
        }
        Ok(())
    }

    /// A non-negative INTEGER of at most 64 bits.
    pub(crate) fn small_uint(&self) -> Result<u64, BerError> {
        match self.body {
            [] => Err(BerError::Integer),
            [first, ..] if first & 0x80 != 0 => Err(BerError::Integer),
            body => {
                let body = match body {
                    [0, rest @ ..] if !rest.is_empty() => rest,
                    b => b,
                };
                if body.len() > 8 {
                    return Err(BerError::Integer);
                }
                Ok(body.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
            }
        }
    }
}

/// Identifier octets used here.
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;
pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
/// `[n]` context-specific, constructed.
pub(crate) const fn context_constructed(n: u8) -> u8 {
    0xa0 | n
}
/// `[n]` context-specific, primitive.
pub(crate) const fn context_primitive(n: u8) -> u8 {
    0x80 | n
}

/// The elements of one container, in order.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    /// The depth of the container (0: the top level).
    depth: usize,
}

impl<'a> Reader<'a> {
    /// A reader of the top level of `input`.
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self {
            rest: input,
            depth: 0,
        }
    }

    /// The one element `input` is, with nothing after it.
    pub(crate) fn single(input: &'a [u8]) -> Result<Element<'a>, BerError> {
        let mut reader = Self::new(input);
        let element = reader.next()?.ok_or(BerError::Truncated)?;
        reader.finish()?;
        Ok(element)
    }

    /// The next element, or `None` at the end of the container.
    pub(crate) fn next(&mut self) -> Result<Option<Element<'a>>, BerError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (element, rest) = read_element(self.rest, self.depth + 1)?;
        let Some(element) = element else {
            // An end-of-contents here: the containers handed out never
            // include their own, so it stands where none is open.
            return Err(BerError::BadEndOfContents);
        };
        self.rest = rest;
        Ok(Some(element))
    }

    /// The next element, which must have identifier `tag`.
    pub(crate) fn expect(&mut self, tag: u8) -> Result<Element<'a>, BerError> {
        let element = self.next()?.ok_or(BerError::Missing)?;
        if element.tag != tag {
            return Err(BerError::UnexpectedTag {
                expected: tag,
                found: element.tag,
            });
        }
        Ok(element)
    }

    /// The next element if its identifier is `tag`; nothing consumed
    /// otherwise.
    pub(crate) fn optional(&mut self, tag: u8) -> Result<Option<Element<'a>>, BerError> {
        let mut ahead = self.clone();
        match ahead.next()? {
            Some(e) if e.tag == tag => {
                *self = ahead;
                Ok(Some(e))
            }
            _ => Ok(None),
        }
    }

    /// The identifier of the next element, if any (nothing consumed).
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Checks that the container has nothing more.
    pub(crate) fn finish(self) -> Result<(), BerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(BerError::TrailingBytes)
        }
    }
}

/// Reads one element at `depth` from the front of `input`: `None` for an
/// end-of-contents (`00 00`), and the bytes after it.
fn read_element(input: &[u8], depth: usize) -> Result<(Option<Element<'_>>, &[u8]), BerError> {
    let (&tag, rest) = input.split_first().ok_or(BerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(BerError::HighTagNumber);
    }
    let (&first, mut rest) = rest.split_first().ok_or(BerError::Truncated)?;
    if tag == 0 {
        return if first == 0 {
            Ok((None, rest))
        } else {
            Err(BerError::BadEndOfContents)
        };
    }
    if depth > MAX_BER_DEPTH {
        return Err(BerError::TooDeep);
    }
    let constructed = tag & CONSTRUCTED != 0;
    let len = match first {
        0..=0x7f => usize::from(first),
        0x80 => {
            if !constructed {
                return Err(BerError::IndefinitePrimitive);
            }
            // Walk the children up to the end-of-contents.
            let start = rest;
            loop {
                let (child, after) = read_element(rest, depth + 1)?;
                let consumed = start.len() - rest.len();
                rest = after;
                if child.is_none() {
                    let element = Element {
                        tag,
                        body: &start[..consumed],
                        depth,
                    };
                    return Ok((Some(element), rest));
                }
            }
        }
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            if rest.len() < n {
                return Err(BerError::Truncated);
            }
            let (bytes, after) = rest.split_at(n);
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        }
        _ => return Err(BerError::LengthTooLong),
    };
    if rest.len() < len {
        return Err(BerError::Truncated);
    }
    let (body, after) = rest.split_at(len);
    Ok((Some(Element { tag, body, depth }), after))
}
