//! A software WebAuthn authenticator for tests, written from the
//! specification (WebAuthn Level 3 §6.1 authenticator data, §6.5 attestation
//! objects; RFC 9053 COSE keys), not with the crate under test: P-256 and
//! Ed25519 keys signing authenticator data ‖ SHA-256(client data).
#![allow(
    dead_code,
    reason = "each test file that includes this uses a part of it"
)]

use custody_policy::webauthn::{Credential, CredentialKey, RelyingParty, to_base64url};
use ed25519_dalek::Signer as _;
use serde_json::json;
use sha2::{Digest, Sha256};

pub(crate) const RP_ID: &str = "custody.example.com";
pub(crate) const ORIGIN: &str = "https://custody.example.com";
pub(crate) const UP: u8 = 0x01;
pub(crate) const UV: u8 = 0x04;
pub(crate) const BE: u8 = 0x08;
pub(crate) const BS: u8 = 0x10;
pub(crate) const AT: u8 = 0x40;
pub(crate) const ED: u8 = 0x80;

pub(crate) fn b64(bytes: &[u8]) -> String {
    to_base64url(bytes)
}

pub(crate) fn unb64(text: &str) -> Vec<u8> {
    <base64ct::Base64UrlUnpadded as base64ct::Encoding>::decode_vec(text).unwrap()
}

pub(crate) fn rp() -> RelyingParty {
    RelyingParty::new(RP_ID, [ORIGIN]).unwrap()
}

/// A test authenticator: a key, a credential id, a counter.
pub(crate) enum DeviceKey {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

pub(crate) struct Device {
    pub(crate) key: DeviceKey,
    pub(crate) id: Vec<u8>,
    pub(crate) counter: u32,
}

/// What a ceremony's client data says (each field can be made wrong).
pub(crate) struct ClientData {
    pub(crate) kind: &'static str,
    pub(crate) challenge: String,
    pub(crate) origin: String,
    pub(crate) extra: &'static str,
}

impl ClientData {
    pub(crate) fn get(challenge: &[u8]) -> Self {
        Self {
            kind: "webauthn.get",
            challenge: b64(challenge),
            origin: ORIGIN.to_owned(),
            extra: r#","crossOrigin":false"#,
        }
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        format!(
            r#"{{"type":"{}","challenge":"{}","origin":"{}"{}}}"#,
            self.kind, self.challenge, self.origin, self.extra
        )
        .into_bytes()
    }
}

impl Device {
    pub(crate) fn p256(seed: u8) -> Self {
        let mut scalar = [0x11; 32];
        scalar[31] = seed;
        Self {
            key: DeviceKey::P256(p256::ecdsa::SigningKey::from_slice(&scalar).unwrap()),
            id: vec![seed; 16],
            counter: 0,
        }
    }

    pub(crate) fn ed25519(seed: u8) -> Self {
        Self {
            key: DeviceKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32])),
            id: vec![seed; 32],
            counter: 0,
        }
    }

    pub(crate) fn public(&self) -> CredentialKey {
        match &self.key {
            DeviceKey::P256(k) => CredentialKey::Es256(*k.verifying_key()),
            DeviceKey::Ed25519(k) => CredentialKey::Ed25519(k.verifying_key()),
        }
    }

    pub(crate) fn credential(&self) -> Credential {
        Credential {
            id: self.id.clone(),
            key: self.public(),
        }
    }

    /// The COSE_Key, written here from RFC 9053 (not with the crate).
    pub(crate) fn cose(&self) -> Vec<u8> {
        match &self.key {
            DeviceKey::P256(k) => {
                let full = k.verifying_key().to_sec1_point(false);
                let mut out = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
                out.extend_from_slice(full.x().unwrap());
                out.extend_from_slice(&[0x22, 0x58, 0x20]);
                out.extend_from_slice(full.y().unwrap());
                out
            }
            DeviceKey::Ed25519(k) => {
                let mut out = vec![0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20];
                out.extend_from_slice(k.verifying_key().as_bytes());
                out
            }
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            DeviceKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            DeviceKey::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
        }
    }

    /// Authenticator data for `rp_id` with `flags`, the next counter value.
    pub(crate) fn auth_data(&mut self, rp_id: &str, flags: u8) -> Vec<u8> {
        self.counter += 1;
        let mut data = Sha256::digest(rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend_from_slice(&self.counter.to_be_bytes());
        data
    }

    /// A `toJSON()` assertion from the parts given (signed over them).
    pub(crate) fn assertion_from(&self, auth_data: &[u8], client: &[u8]) -> String {
        let mut signed = auth_data.to_vec();
        signed.extend_from_slice(&Sha256::digest(client));
        let signature = self.sign(&signed);
        json!({
            "id": b64(&self.id), "rawId": b64(&self.id), "type": "public-key",
            "response": {
                "clientDataJSON": b64(client),
                "authenticatorData": b64(auth_data),
                "signature": b64(&signature),
                "userHandle": null
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "cross-platform"
        })
        .to_string()
    }

    /// A well-formed assertion over `challenge`, user present and verified.
    pub(crate) fn assert(&mut self, challenge: &[u8]) -> String {
        let data = self.auth_data(RP_ID, UP | UV);
        self.assertion_from(&data, &ClientData::get(challenge).to_json())
    }

    /// A `toJSON()` registration over `challenge` with attestation `fmt`
    /// (`none`, or `packed` self-attestation).
    pub(crate) fn register(&mut self, challenge: &[u8], fmt: &str) -> String {
        let mut data = self.auth_data(RP_ID, UP | UV | AT);
        data.extend_from_slice(&[0xAA; 16]); // AAGUID
        data.extend_from_slice(&u16::try_from(self.id.len()).unwrap().to_be_bytes());
        data.extend_from_slice(&self.id);
        data.extend_from_slice(&self.cose());
        let client = ClientData {
            kind: "webauthn.create",
            ..ClientData::get(challenge)
        }
        .to_json();
        let statement = match fmt {
            "none" => vec![0xa0],
            "packed" => {
                let mut signed = data.clone();
                signed.extend_from_slice(&Sha256::digest(&client));
                let sig = self.sign(&signed);
                let alg: u8 = match self.key {
                    DeviceKey::P256(_) => 0x26,    // -7
                    DeviceKey::Ed25519(_) => 0x27, // -8
                };
                let mut s = vec![0xa2, 0x63, b'a', b'l', b'g', alg, 0x63, b's', b'i', b'g'];
                s.extend_from_slice(&cbor_bytes_header(sig.len()));
                s.extend_from_slice(&sig);
                s
            }
            other => panic!("no such format {other}"),
        };
        let mut object = vec![0xa3, 0x63, b'f', b'm', b't'];
        object.push(0x60 + u8::try_from(fmt.len()).unwrap());
        object.extend_from_slice(fmt.as_bytes());
        object.extend_from_slice(&[0x67, b'a', b't', b't', b'S', b't', b'm', b't']);
        object.extend_from_slice(&statement);
        object.extend_from_slice(&[0x68, b'a', b'u', b't', b'h', b'D', b'a', b't', b'a']);
        object.extend_from_slice(&cbor_bytes_header(data.len()));
        object.extend_from_slice(&data);
        json!({
            "id": b64(&self.id), "rawId": b64(&self.id), "type": "public-key",
            "response": {"clientDataJSON": b64(&client), "attestationObject": b64(&object),
                         "transports": ["usb"]},
            "clientExtensionResults": {}
        })
        .to_string()
    }
}

/// A CBOR byte string header for `len` bytes (shortest form).
pub(crate) fn cbor_bytes_header(len: usize) -> Vec<u8> {
    match len {
        0..=23 => vec![0x40 + u8::try_from(len).unwrap()],
        24..=255 => vec![0x58, u8::try_from(len).unwrap()],
        _ => {
            let mut h = vec![0x59];
            h.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            h
        }
    }
}
