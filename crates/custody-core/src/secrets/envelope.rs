//! Envelope encryption: [`Envelope`] (the format is documented there and in
//! `SPEC.md`, "Envelope v1").

use std::fmt;

use aes_gcm::aead::Nonce;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit, Tag};
use zeroize::Zeroize;

use crate::{DataKey, EncryptionContext, Error, KekId, Pending, SecretVec, WrappingBackend};

const MAGIC: &[u8; 7] = b"CUSTENV";
const VERSION_1: u8 = 0x01;
const ALG_AES_256_GCM: u8 = 0x01;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// magic ‖ version ‖ algorithm.
const PREFIX_LEN: usize = MAGIC.len() + 2;
/// Longest KEK id ([`KekId`] allows 2048 characters).
const MAX_KEK_ID_LEN: usize = 2048;

/// AES-256-GCM encryption of `buffer` in place; returns the tag.
///
/// The one AES-GCM code path of the crate: envelopes, the local KEK wrap and
/// the Wycheproof test all go through it.
pub(crate) fn gcm_encrypt_in_place(
    key: &DataKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buffer: &mut [u8],
) -> Result<[u8; TAG_LEN], Error> {
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    let nonce: &Nonce<Aes256Gcm> = nonce.into();
    cipher
        .encrypt_inout_detached(nonce, aad, buffer.into())
        .map(<[u8; TAG_LEN]>::from)
        // Only possible for inputs beyond AES-GCM's limits (2^36 bytes), which
        // every caller rules out first.
        .map_err(|_| Error::MalformedEnvelope("input exceeds AES-GCM limits"))
}

/// AES-256-GCM decryption of `buffer` in place. The tag is checked before
/// anything is decrypted: on failure `buffer` still holds the ciphertext.
pub(crate) fn gcm_decrypt_in_place(
    key: &DataKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), Error> {
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    let nonce: &Nonce<Aes256Gcm> = nonce.into();
    cipher
        .decrypt_inout_detached(nonce, aad, buffer.into(), &Tag::from(*tag))
        .map_err(|_| Error::DecryptionFailed)
}

/// The payload's additional data: the header fields that never change and
/// the context. Fixed-length prefix, so the encoding is injective.
fn payload_aad(nonce: &[u8; NONCE_LEN], context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(PREFIX_LEN + NONCE_LEN + context.len());
    aad.extend_from_slice(MAGIC);
    aad.push(VERSION_1);
    aad.push(ALG_AES_256_GCM);
    aad.extend_from_slice(nonce);
    aad.extend_from_slice(context);
    aad
}

fn random_nonce() -> Result<[u8; NONCE_LEN], Error> {
    let mut nonce = [0u8; NONCE_LEN];
    crate::fill_random(&mut nonce)?;
    Ok(nonce)
}

/// Writes `magic ‖ version ‖ algorithm ‖ u16 ‖ KEK id ‖ u32 ‖ wrapped key`
/// into a buffer with room for `payload_len` more bytes. Returns the buffer
/// and the offset of the wrapped key.
fn header(kek: &KekId, wrapped: &[u8], payload_len: usize) -> Result<(Vec<u8>, usize), Error> {
    let kek_bytes = kek.as_str().as_bytes();
    let kek_len = u16::try_from(kek_bytes.len())
        .ok()
        .filter(|&n| usize::from(n) <= MAX_KEK_ID_LEN)
        .ok_or(Error::MalformedEnvelope("KEK id longer than 2048 bytes"))?;
    if wrapped.is_empty() || wrapped.len() > Envelope::MAX_WRAPPED_KEY_LEN {
        return Err(Error::MalformedEnvelope(
            "wrapped key length outside 1..=65536",
        ));
    }
    let wrapped_len = u32::try_from(wrapped.len())
        .map_err(|_| Error::MalformedEnvelope("wrapped key length outside 1..=65536"))?;
    let len = PREFIX_LEN + 2 + kek_bytes.len() + 4 + wrapped.len() + payload_len;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(MAGIC);
    out.push(VERSION_1);
    out.push(ALG_AES_256_GCM);
    out.extend_from_slice(&kek_len.to_be_bytes());
    out.extend_from_slice(kek_bytes);
    out.extend_from_slice(&wrapped_len.to_be_bytes());
    let wrapped_start = out.len();
    out.extend_from_slice(wrapped);
    Ok((out, wrapped_start))
}

/// An encrypted payload and its wrapped data key, in the v1 binary format:
/// the payload sealed with AES-256-GCM under a fresh data key, the data key
/// wrapped by a key-encryption key (KEK) a [`WrappingBackend`] holds.
///
/// # What is bound to what
///
/// - Every envelope has its own data key, made by
///   [`WrappingBackend::generate_data_key`] (KMS `GenerateDataKey`, or the OS
///   CSPRNG for [`crate::LocalKek`]). A data key encrypts exactly one payload,
///   so a (key, nonce) pair is never reused even if a nonce repeats.
/// - The caller's [`EncryptionContext`] is authenticated twice: the backend
///   binds it to the wrapped data key (as AWS KMS does), and the payload's
///   AES-GCM additional data contains its canonical bytes. The context is
///   **not stored** in the envelope: whoever opens it must present it again.
/// - The payload's additional data covers the header fields that never
///   change (magic, version, algorithm, nonce) but *not* the KEK id or the
///   wrapped key. KEK rotation ([`Envelope::rewrap`]) therefore re-wraps the
///   data key and rewrites the header while the payload bytes stay identical.
///
/// Every authentication failure — wrong context, wrong KEK, any tampered byte
/// in the wrapped key, nonce, ciphertext or tag — is the one opaque
/// [`Error::DecryptionFailed`]. Bytes that do not even parse are
/// [`Error::MalformedEnvelope`]; a KEK the backend does not hold is
/// [`Error::UnknownKek`].
///
/// # Format (version 1)
///
/// All integers are big-endian; `SPEC.md` ("Envelope v1") is normative.
///
/// ```text
/// offset  size  field
/// 0       7     magic "CUSTENV"
/// 7       1     version = 0x01
/// 8       1     algorithm = 0x01 (AES-256-GCM, 96-bit nonce, 128-bit tag)
/// 9       2     k = length of the KEK id (1..=2048)
/// 11      k     KEK id (printable ASCII)
/// 11+k    4     w = length of the wrapped data key (1..=65536)
/// 15+k    w     wrapped data key (backend-specific)
/// 15+k+w  12    nonce
/// 27+k+w  8     n = plaintext length (0..=64 MiB)
/// 35+k+w  n     ciphertext
/// 35+k+w+n 16   tag
/// ```
///
/// Payload additional data: `magic ‖ version ‖ algorithm ‖ nonce ‖
/// context.canonical_bytes()`.
///
/// Not secret: an envelope may be stored and copied anywhere. It keeps its
/// encoded bytes, so [`Envelope::as_bytes`] and [`Envelope::into_bytes`] cost
/// nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The v1 encoding, validated.
    bytes: Vec<u8>,
    /// The KEK id, parsed from `bytes`.
    kek: KekId,
    /// Offset of the wrapped key in `bytes`.
    wrapped_start: usize,
    /// Offset of the nonce (end of the wrapped key) in `bytes`.
    nonce_start: usize,
}

impl Envelope {
    /// Largest plaintext an envelope holds: 64 MiB. Envelopes hold keys,
    /// seeds and secrets, not bulk data; the cap bounds what a hostile
    /// envelope can make a reader allocate.
    pub const MAX_PLAINTEXT_LEN: usize = 64 * 1024 * 1024;

    /// Largest wrapped data key an envelope holds: 64 KiB (a KMS ciphertext
    /// blob is a few hundred bytes; a local wrap is 61).
    pub const MAX_WRAPPED_KEY_LEN: usize = 64 * 1024;

    /// Seals `plaintext` under a fresh data key from `backend`, wrapped under
    /// `kek`, with `context` bound to both the wrap and the payload.
    ///
    /// When the backend answers at once (the software path) the result is
    /// ready and the plaintext is copied exactly once, into the output, and
    /// encrypted there. When the backend does I/O, the plaintext is first
    /// copied into zeroizing memory so that nothing is borrowed past this
    /// call.
    ///
    /// # Errors
    /// [`Error::MalformedEnvelope`] if `plaintext` is longer than
    /// [`Envelope::MAX_PLAINTEXT_LEN`] or the backend's wrapped key is longer
    /// than [`Envelope::MAX_WRAPPED_KEY_LEN`]; [`Error::UnknownKek`];
    /// [`Error::Rng`]; or a backend error.
    pub fn seal<'a>(
        backend: &'a dyn WrappingBackend,
        kek: &KekId,
        context: &EncryptionContext,
        plaintext: &[u8],
    ) -> Pending<'a, Result<Self, Error>> {
        if plaintext.len() > Self::MAX_PLAINTEXT_LEN {
            return Pending::ready(Err(Error::MalformedEnvelope(
                "plaintext longer than 64 MiB",
            )));
        }
        let context_bytes = context.canonical_bytes();
        let kek_id = kek.clone();
        match backend.generate_data_key(kek, context) {
            Pending::Ready(Some(generated)) => {
                Pending::ready(generated.and_then(|(key, wrapped)| {
                    Self::seal_parts(
                        &key,
                        kek_id,
                        &wrapped,
                        random_nonce()?,
                        &context_bytes,
                        plaintext,
                    )
                }))
            }
            later => {
                let plaintext = SecretVec::from_slice(plaintext);
                later.map(move |generated| {
                    let (key, wrapped) = generated?;
                    Self::seal_parts(
                        &key,
                        kek_id,
                        &wrapped,
                        random_nonce()?,
                        &context_bytes,
                        plaintext.expose_secret(),
                    )
                })
            }
        }
    }

    /// Builds an envelope from all of its parts. Deterministic: only the
    /// frozen vectors (`hazmat::seal_envelope_with_parts`, feature `hazmat`) and
    /// [`Envelope::seal`] call it.
    pub(crate) fn seal_parts(
        key: &DataKey,
        kek: KekId,
        wrapped: &[u8],
        nonce: [u8; NONCE_LEN],
        context_bytes: &[u8],
        plaintext: &[u8],
    ) -> Result<Self, Error> {
        if plaintext.len() > Self::MAX_PLAINTEXT_LEN {
            return Err(Error::MalformedEnvelope("plaintext longer than 64 MiB"));
        }
        let (mut bytes, wrapped_start) =
            header(&kek, wrapped, NONCE_LEN + 8 + plaintext.len() + TAG_LEN)?;
        let nonce_start = bytes.len();
        bytes.extend_from_slice(&nonce);
        // usize -> u64 is lossless on every supported target.
        bytes.extend_from_slice(&(plaintext.len() as u64).to_be_bytes());
        let ct_start = bytes.len();
        // The capacity is exact, so this copy never reallocates (which would
        // leave a copy of the plaintext in freed memory).
        bytes.extend_from_slice(plaintext);
        let aad = payload_aad(&nonce, context_bytes);
        let sealed = match bytes.get_mut(ct_start..) {
            Some(buffer) => gcm_encrypt_in_place(key, &nonce, &aad, buffer),
            None => Err(Error::MalformedEnvelope("internal: payload offset")),
        };
        match sealed {
            Ok(tag) => bytes.extend_from_slice(&tag),
            Err(e) => {
                bytes.zeroize();
                return Err(e);
            }
        }
        Ok(Self {
            bytes,
            kek,
            wrapped_start,
            nonce_start,
        })
    }

    /// Opens the envelope: unwraps its data key with `backend` under the
    /// envelope's own KEK and decrypts the payload. `context` must equal the
    /// one it was sealed with.
    ///
    /// The ciphertext is copied once, into zeroizing memory, and decrypted
    /// there after its tag has been checked.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`] for a wrong context, a wrong KEK or
    /// tampered bytes; [`Error::UnknownKek`] if the backend does not hold the
    /// envelope's KEK; or a backend error.
    pub fn open<'a>(
        &self,
        backend: &'a dyn WrappingBackend,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<SecretVec, Error>> {
        let nonce = self.nonce();
        let tag = self.tag();
        let aad = payload_aad(&nonce, &context.canonical_bytes());
        // Ciphertext until the tag has been checked, the plaintext after.
        let mut buffer = SecretVec::from_slice(self.ciphertext_without_tag());
        backend
            .unwrap(&self.kek, self.wrapped_key(), context)
            .map(move |key| {
                gcm_decrypt_in_place(&key?, &nonce, &aad, buffer.expose_secret_mut(), &tag)?;
                Ok(buffer)
            })
    }

    /// KEK rotation: unwraps the data key under the envelope's own KEK and
    /// wraps it under `new_kek`. The payload (nonce, ciphertext, tag) is
    /// copied byte for byte; only the header changes.
    ///
    /// Before re-wrapping, the payload's tag is checked under the unwrapped
    /// key and `context`, so a damaged envelope or a wrong context fails here
    /// rather than producing an envelope that can never be opened. The data
    /// key stays in zeroizing memory throughout.
    ///
    /// # Errors
    /// As [`Envelope::open`] (for the current KEK) and as
    /// [`WrappingBackend::wrap`] (for `new_kek`).
    pub fn rewrap<'a>(
        &self,
        backend: &'a dyn WrappingBackend,
        new_kek: &KekId,
        context: &EncryptionContext,
    ) -> Pending<'a, Result<Self, Error>> {
        match backend.unwrap(&self.kek, self.wrapped_key(), context) {
            Pending::Ready(Some(key)) => {
                match key.and_then(|key| self.check_payload(&key, context).map(|()| key)) {
                    Ok(key) => self.finish_rewrap(backend.wrap(new_kek, &key, context), new_kek),
                    Err(e) => Pending::ready(Err(e)),
                }
            }
            later => {
                let this = self.clone();
                let new_kek = new_kek.clone();
                let context = context.clone();
                Pending::later(async move {
                    let key = later.await?;
                    this.check_payload(&key, &context)?;
                    this.finish_rewrap(backend.wrap(&new_kek, &key, &context), &new_kek)
                        .await
                })
            }
        }
    }

    fn finish_rewrap<'a>(
        &self,
        wrapped: Pending<'a, Result<Vec<u8>, Error>>,
        new_kek: &KekId,
    ) -> Pending<'a, Result<Self, Error>> {
        match wrapped {
            Pending::Ready(Some(wrapped)) => {
                Pending::ready(wrapped.and_then(|w| self.with_wrapped_key(new_kek.clone(), &w)))
            }
            later => {
                let this = self.clone();
                let new_kek = new_kek.clone();
                later.map(move |wrapped| wrapped.and_then(|w| this.with_wrapped_key(new_kek, &w)))
            }
        }
    }

    /// Checks the payload's tag under `key` (decrypting into a scratch
    /// buffer that is wiped on drop).
    fn check_payload(&self, key: &DataKey, context: &EncryptionContext) -> Result<(), Error> {
        let nonce = self.nonce();
        let aad = payload_aad(&nonce, &context.canonical_bytes());
        let mut scratch = SecretVec::from_slice(self.ciphertext_without_tag());
        gcm_decrypt_in_place(key, &nonce, &aad, scratch.expose_secret_mut(), &self.tag())
    }

    /// The same payload under a new header.
    fn with_wrapped_key(&self, kek: KekId, wrapped: &[u8]) -> Result<Self, Error> {
        let payload = self.bytes.get(self.nonce_start..).unwrap_or_default();
        let (mut bytes, wrapped_start) = header(&kek, wrapped, payload.len())?;
        let nonce_start = bytes.len();
        bytes.extend_from_slice(payload);
        Ok(Self {
            bytes,
            kek,
            wrapped_start,
            nonce_start,
        })
    }

    /// The id of the KEK the data key is wrapped under.
    #[must_use]
    pub fn kek(&self) -> &KekId {
        &self.kek
    }

    /// The wrapped data key (opaque, backend-specific; not secret).
    #[must_use]
    pub fn wrapped_key(&self) -> &[u8] {
        self.bytes
            .get(self.wrapped_start..self.nonce_start)
            .unwrap_or_default()
    }

    /// The payload nonce.
    #[must_use]
    pub fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        if let Some(src) = self
            .bytes
            .get(self.nonce_start..self.nonce_start + NONCE_LEN)
        {
            nonce.copy_from_slice(src);
        }
        nonce
    }

    /// The payload's ciphertext followed by its 16-byte tag: the bytes KEK
    /// rotation never changes (with the nonce).
    #[must_use]
    pub fn ciphertext(&self) -> &[u8] {
        self.bytes
            .get(self.ciphertext_start()..)
            .unwrap_or_default()
    }

    /// Length of the plaintext (not secret: the ciphertext has the same).
    #[must_use]
    pub fn plaintext_len(&self) -> usize {
        self.ciphertext().len().saturating_sub(TAG_LEN)
    }

    fn ciphertext_start(&self) -> usize {
        self.nonce_start + NONCE_LEN + 8
    }

    fn ciphertext_without_tag(&self) -> &[u8] {
        let end = self.bytes.len().saturating_sub(TAG_LEN);
        self.bytes
            .get(self.ciphertext_start()..end)
            .unwrap_or_default()
    }

    fn tag(&self) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        let start = self.bytes.len().saturating_sub(TAG_LEN);
        if let Some(src) = self.bytes.get(start..)
            && src.len() == TAG_LEN
        {
            tag.copy_from_slice(src);
        }
        tag
    }

    /// The encoded envelope.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A copy of the encoded envelope.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The encoded envelope, without copying.
    #[must_use]
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Parses an encoded envelope (copying it).
    ///
    /// Strict: unknown magic, version or algorithm, a length out of range,
    /// truncated input and trailing bytes are all rejected. Never panics and
    /// never allocates more than `bytes.len()`.
    ///
    /// # Errors
    /// [`Error::MalformedEnvelope`] saying what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::from_vec(bytes.to_vec())
    }

    /// Parses an encoded envelope, taking ownership of the buffer (no copy).
    ///
    /// # Errors
    /// As [`Envelope::from_bytes`].
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self, Error> {
        let (kek, wrapped_start, nonce_start) = parse(&bytes)?;
        Ok(Self {
            bytes,
            kek,
            wrapped_start,
            nonce_start,
        })
    }
}

/// A cursor over untrusted bytes; every read is bounds-checked.
struct Reader<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], Error> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(Error::MalformedEnvelope("truncated"))?;
        let out = self
            .bytes
            .get(self.pos..end)
            .ok_or(Error::MalformedEnvelope("truncated"))?;
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
}

/// Validates an encoding; returns the KEK id and the offsets of the wrapped
/// key and of the nonce.
fn parse(bytes: &[u8]) -> Result<(KekId, usize, usize), Error> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(Error::MalformedEnvelope(
            "not a custody envelope (bad magic)",
        ));
    }
    let [version] = r.array::<1>()?;
    if version != VERSION_1 {
        return Err(Error::MalformedEnvelope("unsupported envelope version"));
    }
    let [algorithm] = r.array::<1>()?;
    if algorithm != ALG_AES_256_GCM {
        return Err(Error::MalformedEnvelope("unsupported envelope algorithm"));
    }
    let kek_len = usize::from(u16::from_be_bytes(r.array()?));
    if kek_len == 0 || kek_len > MAX_KEK_ID_LEN {
        return Err(Error::MalformedEnvelope("KEK id length outside 1..=2048"));
    }
    let kek = std::str::from_utf8(r.take(kek_len)?)
        .ok()
        .and_then(|s| KekId::new(s).ok())
        .ok_or(Error::MalformedEnvelope("KEK id is not printable ASCII"))?;
    let wrapped_len = usize::try_from(u32::from_be_bytes(r.array()?)).unwrap_or(usize::MAX);
    if wrapped_len == 0 || wrapped_len > Envelope::MAX_WRAPPED_KEY_LEN {
        return Err(Error::MalformedEnvelope(
            "wrapped key length outside 1..=65536",
        ));
    }
    let wrapped_start = r.pos;
    r.take(wrapped_len)?;
    let nonce_start = r.pos;
    r.take(NONCE_LEN)?;
    let ct_len = usize::try_from(u64::from_be_bytes(r.array()?)).unwrap_or(usize::MAX);
    if ct_len > Envelope::MAX_PLAINTEXT_LEN {
        return Err(Error::MalformedEnvelope("payload longer than 64 MiB"));
    }
    r.take(ct_len)?;
    r.take(TAG_LEN)?;
    if r.pos != bytes.len() {
        return Err(Error::MalformedEnvelope("trailing bytes"));
    }
    Ok((kek, wrapped_start, nonce_start))
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("kek", &self.kek)
            .field("wrapped_key_len", &self.wrapped_key().len())
            .field("plaintext_len", &self.plaintext_len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek() -> KekId {
        KekId::new("kek-1").unwrap()
    }

    fn sample(plaintext: &[u8]) -> Envelope {
        Envelope::seal_parts(
            &DataKey::new([1; 32]),
            kek(),
            &[9; 61],
            [2; 12],
            &EncryptionContext::new().canonical_bytes(),
            plaintext,
        )
        .unwrap()
    }

    #[test]
    fn layout_matches_the_spec() {
        let e = sample(b"abc");
        let b = e.as_bytes();
        assert_eq!(&b[..7], b"CUSTENV");
        assert_eq!(b[7], 1);
        assert_eq!(b[8], 1);
        assert_eq!(&b[9..11], &[0, 5]);
        assert_eq!(&b[11..16], b"kek-1");
        assert_eq!(&b[16..20], &[0, 0, 0, 61]);
        assert_eq!(e.wrapped_key(), &[9; 61]);
        assert_eq!(&b[81..93], &[2; 12]);
        assert_eq!(&b[93..101], &[0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(b.len(), 101 + 3 + 16);
        assert_eq!(e.ciphertext(), &b[101..]);
        assert_eq!(e.plaintext_len(), 3);
        assert_eq!(e.tag(), <[u8; 16]>::try_from(&b[104..]).unwrap());
    }

    #[test]
    fn parse_rejects_every_malformation() {
        let good = sample(b"abc").into_bytes();
        assert!(Envelope::from_bytes(&good).is_ok());
        let reason = |bytes: &[u8]| match Envelope::from_bytes(bytes) {
            Err(Error::MalformedEnvelope(r)) => r,
            other => panic!("expected MalformedEnvelope, got {other:?}"),
        };
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(reason(&b), "not a custody envelope (bad magic)");
        let mut b = good.clone();
        b[7] = 2;
        assert_eq!(reason(&b), "unsupported envelope version");
        let mut b = good.clone();
        b[8] = 2;
        assert_eq!(reason(&b), "unsupported envelope algorithm");
        let mut b = good.clone();
        b[9..11].copy_from_slice(&[0, 0]);
        assert_eq!(reason(&b), "KEK id length outside 1..=2048");
        let mut b = good.clone();
        b[9..11].copy_from_slice(&[0x08, 0x01]);
        assert_eq!(reason(&b), "KEK id length outside 1..=2048");
        let mut b = good.clone();
        b[12] = b' ';
        assert_eq!(reason(&b), "KEK id is not printable ASCII");
        let mut b = good.clone();
        b[16..20].copy_from_slice(&[0, 1, 0, 1]);
        assert_eq!(reason(&b), "wrapped key length outside 1..=65536");
        let mut b = good.clone();
        b[16..20].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(reason(&b), "wrapped key length outside 1..=65536");
        let mut b = good.clone();
        b[93..101].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(reason(&b), "payload longer than 64 MiB");
        let mut b = good.clone();
        b[93..101].copy_from_slice(&(64u64 << 20).to_be_bytes());
        assert_eq!(reason(&b), "truncated");
        let mut b = good.clone();
        b.push(0);
        assert_eq!(reason(&b), "trailing bytes");
        for n in 0..good.len() {
            reason(&good[..n]);
        }
        assert_eq!(reason(&good[..good.len() - 1]), "truncated");
    }

    #[test]
    fn gcm_round_trip_and_tamper() {
        let key = DataKey::new([3; 32]);
        let mut buf = *b"hello";
        let tag = gcm_encrypt_in_place(&key, &[0; 12], b"aad", &mut buf).unwrap();
        let ct = buf;
        gcm_decrypt_in_place(&key, &[0; 12], b"aad", &mut buf, &tag).unwrap();
        assert_eq!(&buf, b"hello");
        let mut bad = ct;
        assert!(matches!(
            gcm_decrypt_in_place(&key, &[0; 12], b"aae", &mut bad, &tag),
            Err(Error::DecryptionFailed)
        ));
        // On failure nothing was decrypted.
        assert_eq!(bad, ct);
    }

    #[test]
    fn debug_shows_no_bytes() {
        let e = sample(b"secret");
        let s = format!("{e:?}");
        assert_eq!(
            s,
            "Envelope { kek: KekId(kek-1), wrapped_key_len: 61, plaintext_len: 6, .. }"
        );
    }
}
