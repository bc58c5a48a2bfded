//! The enclave ↔ host link (feature `nitro-transport`): length-prefixed
//! frames over any tokio [`AsyncRead`] + [`AsyncWrite`] (a vsock stream in
//! production; a Unix socket or [`tokio::io::duplex`] in tests), and the
//! small request/response protocol of an attested unwrap.
//!
//! # Frames
//! A frame is a 4-byte big-endian length `n` (1 ≤ `n` ≤
//! [`MAX_FRAME_BYTES`]) and `n` bytes: one [`Message`]. A length of 0 or
//! over the maximum is refused before anything is read or allocated
//! ([`TransportError::Oversize`], [`TransportError::EmptyFrame`]); a
//! stream ending inside a frame is [`TransportError::Truncated`], and one
//! ending between frames [`TransportError::Closed`].
//!
//! # Messages
//! The first byte is the type; the rest is its one field:
//!
//! | type | message | from | field |
//! |---|---|---|---|
//! | 1 | [`Message::AttestationRequest`] | host | the nonce (0–512 bytes) |
//! | 2 | [`Message::AttestationDocument`] | enclave | the COSE_Sign1 document |
//! | 3 | [`Message::CiphertextForRecipient`] | host | KMS's answer, as KMS gave it |
//! | 4 | [`Message::Unwrapped`] | enclave | none |
//! | 5 | [`Message::Refused`] | either | one byte, a [`Refusal`] |
//!
//! # The attested unwrap
//! 1. The host sends a fresh nonce ([`HostLink::request_attestation`]).
//! 2. The enclave ([`EnclaveLink::serve_unwrap`]) makes an
//!    [`EphemeralRsaKey`], has its [`Nsm`] attest the key's public key,
//!    the nonce and its user data, and answers with the document.
//! 3. The host checks the document (its own [`Verifier`], expected PCRs,
//!    the nonce it sent) before anything else, then calls KMS `Decrypt`
//!    with the document as `Recipient` (see
//!    `AttestedKek::decrypt_for_recipient`, feature `nitro-kms`) and
//!    forwards the
//!    `CiphertextForRecipient` ([`HostLink::forward`]). The host never
//!    holds the plaintext.
//! 4. The enclave opens it with the one-shot key and says
//!    [`Message::Unwrapped`]; the plaintext stays inside.

use std::fmt;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{
    AttestationError, EphemeralRsaKey, Expectations, MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES,
    MAX_DOCUMENT_BYTES, MAX_USER_DATA_BYTES, Nsm, NsmError, RecipientError, RecipientPlaintext,
    VerificationTime, VerifiedAttestation, Verifier,
};

/// The largest frame read or written: room for the largest attestation
/// document or `CiphertextForRecipient` and the type byte.
pub const MAX_FRAME_BYTES: usize = 1 + if MAX_DOCUMENT_BYTES > MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES {
    MAX_DOCUMENT_BYTES
} else {
    MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES
};

/// Why the other side refused a step (the one byte of
/// [`Message::Refused`]). Carries no detail on purpose: the enclave tells
/// the host no more than that it refused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The request was not the one expected now.
    Protocol,
    /// The NSM could not attest.
    Attestation,
    /// The answer could not be opened.
    Decryption,
    /// The host refused the enclave's document.
    Untrusted,
}

impl Refusal {
    fn code(self) -> u8 {
        match self {
            Self::Protocol => 1,
            Self::Attestation => 2,
            Self::Decryption => 3,
            Self::Untrusted => 4,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Protocol,
            2 => Self::Attestation,
            3 => Self::Decryption,
            4 => Self::Untrusted,
            _ => return None,
        })
    }
}

/// One message of the protocol (see the module docs).
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// Host → enclave: attest a fresh key with this nonce.
    AttestationRequest {
        /// The nonce, 0–512 bytes.
        nonce: Vec<u8>,
    },
    /// Enclave → host: the attestation document.
    AttestationDocument {
        /// The COSE_Sign1 bytes.
        document: Vec<u8>,
    },
    /// Host → enclave: KMS's answer for the attested key.
    CiphertextForRecipient {
        /// The BER `CiphertextForRecipient`.
        ciphertext: Vec<u8>,
    },
    /// Enclave → host: opened.
    Unwrapped,
    /// Either way: a step refused.
    Refused(Refusal),
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AttestationRequest { nonce } => {
                write!(f, "AttestationRequest({} bytes)", nonce.len())
            }
            Self::AttestationDocument { document } => {
                write!(f, "AttestationDocument({} bytes)", document.len())
            }
            Self::CiphertextForRecipient { ciphertext } => {
                write!(f, "CiphertextForRecipient({} bytes)", ciphertext.len())
            }
            Self::Unwrapped => f.write_str("Unwrapped"),
            Self::Refused(r) => write!(f, "Refused({r:?})"),
        }
    }
}

impl Message {
    /// Its name, for errors.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::AttestationRequest { .. } => "AttestationRequest",
            Self::AttestationDocument { .. } => "AttestationDocument",
            Self::CiphertextForRecipient { .. } => "CiphertextForRecipient",
            Self::Unwrapped => "Unwrapped",
            Self::Refused(_) => "Refused",
        }
    }

    /// Its frame payload: the type byte and the field.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let (kind, field): (u8, &[u8]) = match self {
            Self::AttestationRequest { nonce } => (1, nonce),
            Self::AttestationDocument { document } => (2, document),
            Self::CiphertextForRecipient { ciphertext } => (3, ciphertext),
            Self::Unwrapped => (4, &[]),
            Self::Refused(r) => return vec![5, r.code()],
        };
        let mut out = Vec::with_capacity(1 + field.len());
        out.push(kind);
        out.extend_from_slice(field);
        out
    }

    /// Reads a frame payload.
    ///
    /// # Errors
    /// [`TransportError::EmptyFrame`]; [`TransportError::UnknownMessage`]
    /// for an unknown type; [`TransportError::Malformed`] for a field of
    /// the wrong size (a nonce over 512 bytes, anything after
    /// `Unwrapped`, a refusal that is not one known byte).
    pub fn decode(payload: &[u8]) -> Result<Self, TransportError> {
        let (&kind, field) = payload.split_first().ok_or(TransportError::EmptyFrame)?;
        match kind {
            1 if field.len() <= MAX_USER_DATA_BYTES => Ok(Self::AttestationRequest {
                nonce: field.to_vec(),
            }),
            1 => Err(TransportError::Malformed("AttestationRequest")),
            2 if !field.is_empty() && field.len() <= MAX_DOCUMENT_BYTES => {
                Ok(Self::AttestationDocument {
                    document: field.to_vec(),
                })
            }
            2 => Err(TransportError::Malformed("AttestationDocument")),
            3 if !field.is_empty() && field.len() <= MAX_CIPHERTEXT_FOR_RECIPIENT_BYTES => {
                Ok(Self::CiphertextForRecipient {
                    ciphertext: field.to_vec(),
                })
            }
            3 => Err(TransportError::Malformed("CiphertextForRecipient")),
            4 if field.is_empty() => Ok(Self::Unwrapped),
            4 => Err(TransportError::Malformed("Unwrapped")),
            5 => match field {
                [code] => Refusal::from_code(*code)
                    .map(Self::Refused)
                    .ok_or(TransportError::Malformed("Refused")),
                _ => Err(TransportError::Malformed("Refused")),
            },
            other => Err(TransportError::UnknownMessage(other)),
        }
    }
}

/// An error of the link.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The stream failed.
    #[error("enclave link I/O error")]
    Io(#[source] std::io::Error),
    /// The stream ended between frames.
    #[error("the enclave link was closed")]
    Closed,
    /// The stream ended inside a frame.
    #[error("the enclave link ended inside a frame ({got} of {expected} bytes)")]
    Truncated {
        /// The bytes the frame (or its header) has.
        expected: usize,
        /// The bytes read before the end.
        got: usize,
    },
    /// A frame length over [`MAX_FRAME_BYTES`] (nothing of it read).
    #[error("a frame of {len} bytes is over the limit of {max}")]
    Oversize {
        /// The length announced or asked for.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame of length 0.
    #[error("an empty frame")]
    EmptyFrame,
    /// A message type this side does not know.
    #[error("unknown message type {0}")]
    UnknownMessage(u8),
    /// A known message whose field is not of its size.
    #[error("malformed {0} message")]
    Malformed(&'static str),
    /// Another message than the protocol has here.
    #[error("expected {expected}, got {got}")]
    Unexpected {
        /// The message expected.
        expected: &'static str,
        /// The message received.
        got: &'static str,
    },
    /// The other side refused the step.
    #[error("the other side refused: {0:?}")]
    Refused(Refusal),
    /// The host's check of the enclave's document failed.
    #[error("the enclave's attestation document was refused")]
    Attestation(#[source] AttestationError),
    /// The enclave's NSM failed.
    #[error("the enclave could not attest")]
    Nsm(#[source] NsmError),
    /// The enclave could not make its key or open the answer.
    #[error("the enclave could not open the answer")]
    Recipient(#[source] RecipientError),
}

/// Reads one frame's length prefix and then exactly that many bytes from
/// a byte slice: the decoder [`read_frame`] runs, for callers (and the
/// fuzz target) that hold the bytes already. Returns the payload and what
/// follows it.
///
/// # Errors
/// As [`read_frame`], with `Closed` for empty input.
pub fn split_frame(bytes: &[u8]) -> Result<(&[u8], &[u8]), TransportError> {
    if bytes.is_empty() {
        return Err(TransportError::Closed);
    }
    let Some((header, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(TransportError::Truncated {
            expected: 4,
            got: bytes.len(),
        });
    };
    let len = frame_len(*header)?;
    if rest.len() < len {
        return Err(TransportError::Truncated {
            expected: len,
            got: rest.len(),
        });
    }
    Ok(rest.split_at(len))
}

/// The payload length a header announces, checked.
fn frame_len(header: [u8; 4]) -> Result<usize, TransportError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(TransportError::EmptyFrame);
    }
    if len > MAX_FRAME_BYTES {
        return Err(TransportError::Oversize {
            len,
            max: MAX_FRAME_BYTES,
        });
    }
    Ok(len)
}

/// Reads into `buf` until full or the end of the stream; the count read.
async fn read_full<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut [u8],
) -> Result<usize, TransportError> {
    let mut got = 0;
    while got < buf.len() {
        let n = reader
            .read(&mut buf[got..])
            .await
            .map_err(TransportError::Io)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Reads one frame's payload.
///
/// # Errors
/// [`TransportError::Closed`] at the end of the stream before a frame;
/// [`TransportError::Truncated`] inside one; [`TransportError::EmptyFrame`]
/// and [`TransportError::Oversize`] for a bad length (refused before any
/// allocation); [`TransportError::Io`].
pub async fn read_frame<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Vec<u8>, TransportError> {
    let mut header = [0u8; 4];
    match read_full(reader, &mut header).await? {
        0 => return Err(TransportError::Closed),
        4 => {}
        got => return Err(TransportError::Truncated { expected: 4, got }),
    }
    let len = frame_len(header)?;
    let mut payload = vec![0u8; len];
    let got = read_full(reader, &mut payload).await?;
    if got < len {
        return Err(TransportError::Truncated { expected: len, got });
    }
    Ok(payload)
}

/// Writes one frame (and flushes).
///
/// # Errors
/// [`TransportError::EmptyFrame`], [`TransportError::Oversize`] (nothing
/// written); [`TransportError::Io`].
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    payload: &[u8],
) -> Result<(), TransportError> {
    if payload.is_empty() {
        return Err(TransportError::EmptyFrame);
    }
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|l| *l as usize <= MAX_FRAME_BYTES)
        .ok_or(TransportError::Oversize {
            len: payload.len(),
            max: MAX_FRAME_BYTES,
        })?;
    writer
        .write_all(&len.to_be_bytes())
        .await
        .map_err(TransportError::Io)?;
    writer
        .write_all(payload)
        .await
        .map_err(TransportError::Io)?;
    writer.flush().await.map_err(TransportError::Io)
}

/// Reads one message.
///
/// # Errors
/// As [`read_frame`] and [`Message::decode`].
pub async fn read_message<R: AsyncRead + Unpin>(reader: &mut R) -> Result<Message, TransportError> {
    Message::decode(&read_frame(reader).await?)
}

/// Writes one message.
///
/// # Errors
/// As [`write_frame`].
pub async fn write_message<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &Message,
) -> Result<(), TransportError> {
    write_frame(writer, &message.encode()).await
}

/// The enclave's end of the link.
#[derive(Debug)]
pub struct EnclaveLink<S> {
    stream: S,
}

impl<S: AsyncRead + AsyncWrite + Unpin> EnclaveLink<S> {
    /// The enclave's end over `stream`.
    pub fn new(stream: S) -> Self {
        Self { stream }
    }

    /// The stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Serves one attested unwrap (steps 2 and 4 of the module docs): on
    /// the host's [`Message::AttestationRequest`], a fresh
    /// [`EphemeralRsaKey`] attested by `nsm` with the host's nonce and
    /// `user_data`; on the host's [`Message::CiphertextForRecipient`], that
    /// key (consumed) opens it. Returns the plaintext, which never crosses
    /// the link. Any other message is answered with
    /// [`Message::Refused`] and ends the exchange.
    ///
    /// # Errors
    /// [`TransportError::Unexpected`] or [`TransportError::Refused`] for
    /// a host off the protocol; [`TransportError::Nsm`];
    /// [`TransportError::Recipient`] if the answer does not open (the
    /// host is told [`Refusal::Decryption`]); the frame errors.
    pub async fn serve_unwrap(
        &mut self,
        nsm: &dyn Nsm,
        user_data: Option<&[u8]>,
    ) -> Result<RecipientPlaintext, TransportError> {
        let nonce = match read_message(&mut self.stream).await? {
            Message::AttestationRequest { nonce } => nonce,
            other => return Err(self.off_protocol("AttestationRequest", &other).await),
        };
        let key = match EphemeralRsaKey::generate() {
            Ok(k) => k,
            Err(e) => {
                self.refuse(Refusal::Attestation).await;
                return Err(TransportError::Recipient(e));
            }
        };
        let document = match key.attest(nsm, user_data, Some(&nonce)) {
            Ok(d) => d,
            Err(e) => {
                self.refuse(Refusal::Attestation).await;
                return Err(TransportError::Nsm(e));
            }
        };
        write_message(&mut self.stream, &Message::AttestationDocument { document }).await?;
        let ciphertext = match read_message(&mut self.stream).await? {
            Message::CiphertextForRecipient { ciphertext } => ciphertext,
            other => return Err(self.off_protocol("CiphertextForRecipient", &other).await),
        };
        match key.open(&ciphertext) {
            Ok(plaintext) => {
                write_message(&mut self.stream, &Message::Unwrapped).await?;
                Ok(plaintext)
            }
            Err(e) => {
                self.refuse(Refusal::Decryption).await;
                Err(TransportError::Recipient(e))
            }
        }
    }

    async fn refuse(&mut self, why: Refusal) {
        // Best effort: the error returned is what matters.
        let _ = write_message(&mut self.stream, &Message::Refused(why)).await;
    }

    async fn off_protocol(&mut self, expected: &'static str, got: &Message) -> TransportError {
        if let Message::Refused(why) = got {
            return TransportError::Refused(*why);
        }
        self.refuse(Refusal::Protocol).await;
        TransportError::Unexpected {
            expected,
            got: got.name(),
        }
    }
}

/// The host's end of the link.
#[derive(Debug)]
pub struct HostLink<S> {
    stream: S,
}

impl<S: AsyncRead + AsyncWrite + Unpin> HostLink<S> {
    /// The host's end over `stream`.
    pub fn new(stream: S) -> Self {
        Self { stream }
    }

    /// The stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Step 1 and the host's check of step 3: asks the enclave for a
    /// document with `nonce` and verifies it with `verifier` against
    /// `expected` (to which the nonce is added) at `time`. The document
    /// must carry a public key (the enclave's ephemeral key). Returns the
    /// document bytes (what KMS's `Recipient` carries) and what was
    /// verified. A refused document is answered with
    /// [`Refusal::Untrusted`].
    ///
    /// # Errors
    /// [`TransportError::Attestation`] for a document the verifier
    /// refuses (another root, other PCRs, another nonce, no public key);
    /// [`TransportError::Refused`] if the enclave refused; the frame
    /// errors.
    pub async fn request_attestation(
        &mut self,
        nonce: &[u8],
        verifier: &Verifier,
        expected: &Expectations,
        time: VerificationTime,
    ) -> Result<(Vec<u8>, VerifiedAttestation), TransportError> {
        if nonce.len() > MAX_USER_DATA_BYTES {
            return Err(TransportError::Malformed("AttestationRequest"));
        }
        write_message(
            &mut self.stream,
            &Message::AttestationRequest {
                nonce: nonce.to_vec(),
            },
        )
        .await?;
        let document = match read_message(&mut self.stream).await? {
            Message::AttestationDocument { document } => document,
            Message::Refused(why) => return Err(TransportError::Refused(why)),
            other => {
                return Err(TransportError::Unexpected {
                    expected: "AttestationDocument",
                    got: other.name(),
                });
            }
        };
        let expected = expected.clone().with_nonce(nonce);
        let verified = verifier.verify(&document, &expected, time).and_then(|v| {
            if v.public_key().is_some() {
                Ok(v)
            } else {
                Err(AttestationError::MissingField("public_key"))
            }
        });
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                let _ =
                    write_message(&mut self.stream, &Message::Refused(Refusal::Untrusted)).await;
                return Err(TransportError::Attestation(e));
            }
        };
        Ok((document, verified))
    }

    /// Step 3's forwarding: sends KMS's `CiphertextForRecipient` and waits
    /// for the enclave's [`Message::Unwrapped`].
    ///
    /// # Errors
    /// [`TransportError::Refused`] if the enclave could not open it; the
    /// frame errors.
    pub async fn forward(&mut self, ciphertext_for_recipient: &[u8]) -> Result<(), TransportError> {
        write_message(
            &mut self.stream,
            &Message::CiphertextForRecipient {
                ciphertext: ciphertext_for_recipient.to_vec(),
            },
        )
        .await?;
        match read_message(&mut self.stream).await? {
            Message::Unwrapped => Ok(()),
            Message::Refused(why) => Err(TransportError::Refused(why)),
            other => Err(TransportError::Unexpected {
                expected: "Unwrapped",
                got: other.name(),
            }),
        }
    }
}
