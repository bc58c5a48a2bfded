//! The two ceremonies as a relying party verifies them: an assertion
//! (WebAuthn §7.2, an approver signing an operation's hash) and a
//! registration (§7.1, an approver's device enrolled).

use custody_core::cbor::{self, Limits, Value};
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use super::WebAuthnError;
use super::data::{AttestedCredential, AuthenticatorData, CredentialKey};
use super::json::{self, base64url, base64url_member, string};

/// The limits for an attestation object.
const ATTESTATION_LIMITS: Limits = Limits {
    max_input: 16 * 1024,
    max_depth: 8,
    max_items: 512,
};

/// A relying party: the RP ID its credentials are scoped to, the origins
/// its pages are served from, and what it asks of an authenticator.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    rp_id: String,
    rp_id_hash: [u8; 32],
    origins: Vec<String>,
    require_user_verification: bool,
}

impl RelyingParty {
    /// `rp_id` (a domain, e.g. `custody.example.com`) and the exact origins
    /// (`https://custody.example.com`) a ceremony may come from. User
    /// verification is required unless [`Self::user_verification`] says
    /// otherwise; cross-origin ceremonies (iframes) are refused.
    ///
    /// # Errors
    /// [`WebAuthnError::Config`] for an empty RP ID or no origin.
    pub fn new<S: Into<String>>(
        rp_id: impl Into<String>,
        origins: impl IntoIterator<Item = S>,
    ) -> Result<Self, WebAuthnError> {
        let rp_id = rp_id.into();
        let origins: Vec<String> = origins.into_iter().map(Into::into).collect();
        if rp_id.is_empty() {
            return Err(WebAuthnError::Config("an empty RP ID"));
        }
        if origins.is_empty() || origins.iter().any(String::is_empty) {
            return Err(WebAuthnError::Config("at least one non-empty origin"));
        }
        Ok(Self {
            rp_id_hash: Sha256::digest(rp_id.as_bytes()).into(),
            rp_id,
            origins,
            require_user_verification: true,
        })
    }

    /// Whether the UV flag is required (`true` by default).
    #[must_use]
    pub fn user_verification(mut self, required: bool) -> Self {
        self.require_user_verification = required;
        self
    }

    /// The RP ID.
    #[must_use]
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Verifies an assertion by `credential` over `challenge` (for an
    /// approval, the operation hash): client data (type `webauthn.get`,
    /// the challenge, an allowed origin, not cross-origin), authenticator
    /// data (the RP ID hash, UP, UV if required, consistent flags, no
    /// attested data), and the signature over authenticator data ‖
    /// SHA-256(client data) with the credential key. The signature counter
    /// is returned, not checked: [`super::CredentialStore::record_counter`]
    /// keeps it across replicas.
    ///
    /// # Errors
    /// The [`WebAuthnError`] of the first check that fails.
    pub fn verify_assertion(
        &self,
        credential: &Credential,
        challenge: &[u8],
        response: &AssertionResponse,
    ) -> Result<VerifiedAssertion, WebAuthnError> {
        if response.credential_id != credential.id {
            return Err(WebAuthnError::CredentialMismatch);
        }
        self.check_client_data(&response.client_data_json, "webauthn.get", challenge)?;
        let data = AuthenticatorData::parse(&response.authenticator_data)?;
        self.check_authenticator_data(&data)?;
        if data.attested.is_some() {
            return Err(WebAuthnError::Flags(
                "attested credential data in an assertion",
            ));
        }
        credential.key.verify(
            &signed_bytes(&response.authenticator_data, &response.client_data_json),
            &response.signature,
        )?;
        Ok(VerifiedAssertion {
            credential_id: response.credential_id.clone(),
            sign_count: data.sign_count,
            user_verified: data.user_verified(),
            backup_eligible: data.backup_eligible(),
            backed_up: data.backed_up(),
        })
    }

    /// Verifies a registration over `challenge`: client data (type
    /// `webauthn.create`), authenticator data with attested credential data
    /// whose id is the response's, and the attestation statement: `none`
    /// (empty) or `packed` self-attestation (signed by the new credential's
    /// own key, with its algorithm). A packed statement with a certificate
    /// chain, or another format, is refused as unsupported.
    ///
    /// # Errors
    /// The [`WebAuthnError`] of the first check that fails.
    pub fn verify_registration(
        &self,
        challenge: &[u8],
        response: &RegistrationResponse,
    ) -> Result<RegisteredCredential, WebAuthnError> {
        self.check_client_data(&response.client_data_json, "webauthn.create", challenge)?;
        let object =
            cbor::decode(&response.attestation_object, &ATTESTATION_LIMITS).map_err(|source| {
                WebAuthnError::Cbor {
                    what: "attestation object",
                    source,
                }
            })?;
        let map = object.as_map().ok_or(WebAuthnError::Malformed {
            what: "attestation object",
        })?;
        if map.len() != 3 {
            return Err(WebAuthnError::Malformed {
                what: "attestation object (fmt, attStmt, authData and nothing else)",
            });
        }
        let fmt = object.get_text_key("fmt").and_then(Value::as_text).ok_or(
            WebAuthnError::Malformed {
                what: "attestation object fmt",
            },
        )?;
        let statement = object
            .get_text_key("attStmt")
            .filter(|s| s.as_map().is_some())
            .ok_or(WebAuthnError::Malformed {
                what: "attestation object attStmt",
            })?;
        let auth_data = object
            .get_text_key("authData")
            .and_then(Value::as_bytes)
            .ok_or(WebAuthnError::Malformed {
                what: "attestation object authData",
            })?;
        let data = AuthenticatorData::parse(auth_data)?;
        self.check_authenticator_data(&data)?;
        let attested = data.attested.clone().ok_or(WebAuthnError::Flags(
            "no attested credential data in a registration",
        ))?;
        if attested.credential_id != response.credential_id {
            return Err(WebAuthnError::CredentialMismatch);
        }
        match fmt {
            "none" => {
                if statement.as_map().is_some_and(|m| !m.is_empty()) {
                    return Err(WebAuthnError::AttestationInvalid(
                        "a none statement is an empty map",
                    ));
                }
            }
            "packed" => {
                if statement.get_text_key("x5c").is_some() {
                    return Err(WebAuthnError::UnsupportedAttestation(
                        "packed with a certificate chain (full attestation)".into(),
                    ));
                }
                if statement.as_map().is_some_and(|m| m.len() != 2) {
                    return Err(WebAuthnError::AttestationInvalid(
                        "a packed self-attestation is alg and sig",
                    ));
                }
                let alg = statement
                    .get_text_key("alg")
                    .and_then(Value::as_i64)
                    .ok_or(WebAuthnError::AttestationInvalid("no alg"))?;
                let sig = statement
                    .get_text_key("sig")
                    .and_then(Value::as_bytes)
                    .ok_or(WebAuthnError::AttestationInvalid("no sig"))?;
                if alg != attested.key.algorithm() {
                    return Err(WebAuthnError::AttestationInvalid(
                        "alg is not the credential key's",
                    ));
                }
                attested
                    .key
                    .verify(&signed_bytes(auth_data, &response.client_data_json), sig)
                    .map_err(|_| {
                        WebAuthnError::AttestationInvalid("the self-attestation does not verify")
                    })?;
            }
            other => return Err(WebAuthnError::UnsupportedAttestation(other.to_owned())),
        }
        Ok(RegisteredCredential {
            credential: attested,
            sign_count: data.sign_count,
            user_verified: data.user_verified(),
            backup_eligible: data.backup_eligible(),
            attestation_format: fmt.to_owned(),
        })
    }

    /// Client data checks common to both ceremonies (§7.1 steps 7–11,
    /// §7.2 steps 11–15).
    fn check_client_data(
        &self,
        bytes: &[u8],
        expected_type: &'static str,
        challenge: &[u8],
    ) -> Result<(), WebAuthnError> {
        let client = json::object(bytes).map_err(WebAuthnError::ClientDataJson)?;
        let kind = string(&client, "type", "clientDataJSON.type")?;
        if kind != expected_type {
            return Err(WebAuthnError::WrongType {
                expected: expected_type,
                found: kind.to_owned(),
            });
        }
        let presented = base64url_member(&client, "challenge", "clientDataJSON.challenge")?;
        if presented != challenge {
            return Err(WebAuthnError::ChallengeMismatch);
        }
        let origin = string(&client, "origin", "clientDataJSON.origin")?;
        if !self.origins.iter().any(|o| o == origin) {
            return Err(WebAuthnError::OriginNotAllowed(origin.to_owned()));
        }
        match client.get("crossOrigin") {
            None | Some(Json::Bool(false)) => {}
            Some(Json::Bool(true)) => return Err(WebAuthnError::CrossOrigin),
            Some(_) => {
                return Err(WebAuthnError::Malformed {
                    what: "clientDataJSON.crossOrigin",
                });
            }
        }
        Ok(())
    }

    /// Authenticator data checks common to both ceremonies.
    fn check_authenticator_data(&self, data: &AuthenticatorData) -> Result<(), WebAuthnError> {
        if data.rp_id_hash != self.rp_id_hash {
            return Err(WebAuthnError::RpIdHashMismatch);
        }
        if !data.user_present() {
            return Err(WebAuthnError::UserNotPresent);
        }
        if self.require_user_verification && !data.user_verified() {
            return Err(WebAuthnError::UserNotVerified);
        }
        Ok(())
    }
}

/// What an authenticator signs: its data ‖ SHA-256 of the client data.
fn signed_bytes(authenticator_data: &[u8], client_data_json: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(authenticator_data.len() + 32);
    signed.extend_from_slice(authenticator_data);
    signed.extend_from_slice(&Sha256::digest(client_data_json));
    signed
}

/// A registered credential: its id and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The credential id (`rawId`).
    pub id: Vec<u8>,
    /// The credential public key.
    pub key: CredentialKey,
}

/// An assertion as the browser returns it (`PublicKeyCredential.toJSON()`
/// of a `navigator.credentials.get()`), decoded but not yet verified.
#[derive(Debug, Clone)]
pub struct AssertionResponse {
    /// `rawId`.
    pub credential_id: Vec<u8>,
    /// `response.clientDataJSON`.
    pub client_data_json: Vec<u8>,
    /// `response.authenticatorData`.
    pub authenticator_data: Vec<u8>,
    /// `response.signature`.
    pub signature: Vec<u8>,
    /// `response.userHandle`, if any.
    pub user_handle: Option<Vec<u8>>,
}

impl AssertionResponse {
    /// Reads the JSON of `PublicKeyCredential.toJSON()`: `id` and `rawId`
    /// the same credential, `type` `public-key`, and the response's
    /// members in base64url.
    ///
    /// # Errors
    /// [`WebAuthnError::Malformed`], [`WebAuthnError::Base64`],
    /// [`WebAuthnError::ClientDataJson`] (for a duplicate member anywhere).
    pub fn from_json(text: &str) -> Result<Self, WebAuthnError> {
        let (credential_id, response) = credential_json(text)?;
        let user_handle = match response.get("userHandle") {
            None | Some(Json::Null) => None,
            Some(Json::String(h)) => Some(base64url(h, "response.userHandle")?),
            Some(_) => {
                return Err(WebAuthnError::Malformed {
                    what: "response.userHandle",
                });
            }
        };
        Ok(Self {
            credential_id,
            client_data_json: base64url_member(
                &response,
                "clientDataJSON",
                "response.clientDataJSON",
            )?,
            authenticator_data: base64url_member(
                &response,
                "authenticatorData",
                "response.authenticatorData",
            )?,
            signature: base64url_member(&response, "signature", "response.signature")?,
            user_handle,
        })
    }
}

/// A registration as the browser returns it (`toJSON()` of a
/// `navigator.credentials.create()`), decoded but not yet verified.
#[derive(Debug, Clone)]
pub struct RegistrationResponse {
    /// `rawId`.
    pub credential_id: Vec<u8>,
    /// `response.clientDataJSON`.
    pub client_data_json: Vec<u8>,
    /// `response.attestationObject`.
    pub attestation_object: Vec<u8>,
}

impl RegistrationResponse {
    /// Reads the JSON of `PublicKeyCredential.toJSON()` after a
    /// registration.
    ///
    /// # Errors
    /// As [`AssertionResponse::from_json`].
    pub fn from_json(text: &str) -> Result<Self, WebAuthnError> {
        let (credential_id, response) = credential_json(text)?;
        Ok(Self {
            credential_id,
            client_data_json: base64url_member(
                &response,
                "clientDataJSON",
                "response.clientDataJSON",
            )?,
            attestation_object: base64url_member(
                &response,
                "attestationObject",
                "response.attestationObject",
            )?,
        })
    }
}

/// The credential id and the `response` object of a `toJSON()` credential.
fn credential_json(text: &str) -> Result<(Vec<u8>, Map<String, Json>), WebAuthnError> {
    let object = json::object(text.as_bytes()).map_err(WebAuthnError::ClientDataJson)?;
    if string(&object, "type", "type")? != "public-key" {
        return Err(WebAuthnError::Malformed {
            what: "type (public-key)",
        });
    }
    let raw_id = base64url_member(&object, "rawId", "rawId")?;
    if base64url_member(&object, "id", "id")? != raw_id {
        return Err(WebAuthnError::Malformed {
            what: "id (not rawId)",
        });
    }
    match object.get("response") {
        Some(Json::Object(response)) => Ok((raw_id, response.clone())),
        _ => Err(WebAuthnError::Malformed { what: "response" }),
    }
}

/// A verified assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The credential that signed.
    pub credential_id: Vec<u8>,
    /// The authenticator's signature counter (0: it keeps none).
    pub sign_count: u32,
    /// Whether the user was verified (UV).
    pub user_verified: bool,
    /// Whether the credential may be backed up (BE).
    pub backup_eligible: bool,
    /// Whether it is backed up (BS).
    pub backed_up: bool,
}

/// A verified registration: the new credential.
#[derive(Debug, Clone)]
pub struct RegisteredCredential {
    /// The credential id, key and AAGUID.
    pub credential: AttestedCredential,
    /// The counter at registration.
    pub sign_count: u32,
    /// Whether the user was verified (UV).
    pub user_verified: bool,
    /// Whether the credential may be backed up (BE).
    pub backup_eligible: bool,
    /// The attestation statement format (`none` or `packed`).
    pub attestation_format: String,
}

impl RegisteredCredential {
    /// The credential, for later assertions.
    #[must_use]
    pub fn credential(&self) -> Credential {
        Credential {
            id: self.credential.credential_id.clone(),
            key: self.credential.key.clone(),
        }
    }
}
