//! An independent Rust builder of KMS `CiphertextForRecipient` structures
//! for the tests: the CMS written with its own TLV helpers (DER or with
//! indefinite lengths and chunked content), the key transport with the
//! `rsa` crate's public-key OAEP encryption, the content with `cbc`'s
//! encryptor. It shares nothing with the reader but the crypto crates'
//! public-key and encryption halves.
#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test binary uses part of it"
)]

use aes::Aes256;
use cbc::cipher::{BlockModeEncrypt, KeyIvInit};
use rsa::pkcs8::DecodePublicKey;

/// How to write it.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub indefinite: bool,
    /// Split the encrypted content into constructed chunks of this size.
    pub chunk: Option<usize>,
}

pub const DER: Style = Style {
    indefinite: false,
    chunk: None,
};
pub const BER: Style = Style {
    indefinite: true,
    chunk: Some(16),
};

fn len(out: &mut Vec<u8>, n: usize) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend_from_slice(&[0x81, n as u8]);
    } else {
        out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
}

pub fn prim(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    len(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

pub fn cons(style: Style, tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let body = parts.concat();
    if style.indefinite {
        let mut out = vec![tag, 0x80];
        out.extend_from_slice(&body);
        out.extend_from_slice(&[0, 0]);
        out
    } else {
        prim(tag, &body)
    }
}

pub fn oid(dotted_der: &[u8]) -> Vec<u8> {
    prim(0x06, dotted_der)
}

pub const ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
pub const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
pub const RSAES_OAEP: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x07];
pub const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
pub const AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];

/// What goes in, each part replaceable.
pub struct Parts {
    pub content_key: Vec<u8>,
    pub iv: [u8; 16],
    /// The padded plaintext (PKCS#7 unless a test spoils it).
    pub padded: Vec<u8>,
}

impl Parts {
    pub fn new(plaintext: &[u8]) -> Self {
        let pad = 16 - plaintext.len() % 16;
        let mut padded = plaintext.to_vec();
        padded.extend(std::iter::repeat_n(pad as u8, pad));
        Self {
            content_key: (0..32).map(|i| i as u8 ^ 0x5c).collect(),
            iv: [0x1f; 16],
            padded,
        }
    }
}

/// A `CiphertextForRecipient` for the RSA public key `spki` (DER).
pub fn build(spki: &[u8], parts: &Parts, style: Style) -> Vec<u8> {
    let public = rsa::PublicKey::from_public_key_der(spki).unwrap();
    let encrypted_key = public
        .oaep_encrypt::<rsa::sha2::Sha256>(&parts.content_key)
        .unwrap();
    let key: [u8; 32] = parts.content_key[..].try_into().unwrap_or([0; 32]);
    let mut content = parts.padded.clone();
    let mut enc = cbc::Encryptor::<Aes256>::new(&key.into(), &parts.iv.into());
    for block in content.chunks_exact_mut(16) {
        let b: &mut [u8; 16] = block.try_into().unwrap();
        enc.encrypt_block(b.into());
    }
    let sha256 = cons(style, 0x30, &[&oid(SHA256), &prim(0x05, &[])]);
    let oaep_params = cons(
        style,
        0x30,
        &[
            &cons(style, 0xa0, &[&sha256]),
            &cons(style, 0xa1, &[&cons(style, 0x30, &[&oid(MGF1), &sha256])]),
        ],
    );
    let ktri = cons(
        style,
        0x30,
        &[
            &prim(0x02, &[2]),
            &prim(0x80, &[0xab; 20]),
            &cons(style, 0x30, &[&oid(RSAES_OAEP), &oaep_params]),
            &prim(0x04, &encrypted_key),
        ],
    );
    let encrypted_content = match style.chunk {
        Some(size) => {
            let chunks: Vec<Vec<u8>> = content.chunks(size).map(|c| prim(0x04, c)).collect();
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            cons(style, 0xa0, &refs)
        }
        None => prim(0x80, &content),
    };
    let eci = cons(
        style,
        0x30,
        &[
            &oid(DATA),
            &cons(style, 0x30, &[&oid(AES256_CBC), &prim(0x04, &parts.iv)]),
            &encrypted_content,
        ],
    );
    let enveloped = cons(
        style,
        0x30,
        &[&prim(0x02, &[2]), &cons(style, 0x31, &[&ktri]), &eci],
    );
    cons(
        style,
        0x30,
        &[&oid(ENVELOPED_DATA), &cons(style, 0xa0, &[&enveloped])],
    )
}
