//! An HTTP signer in the shape teams run beside a node (feature `http`):
//! JSON-RPC 2.0 over `POST /`, the signing methods of a node's wallet,
//! every request through the gates of the signers it holds.
//!
//! Methods: `eth_accounts`; `eth_signTransaction` (`[tx]`, the JSON-RPC
//! transaction object with its `from`; answers the raw signed transaction);
//! `eth_sign` (`[address, data]`) and `personal_sign` (`[data, address]`),
//! both EIP-191 personal messages (answers the 65-byte signature, `v`
//! 27/28); `eth_signTypedData_v4` (`[address, typedData]`, the typed data as
//! an object or as a JSON string).
//!
//! The second factor is a member of the request object beside `params`:
//! `"authorization": {"totp": "123456"}`. A refusal by a gate is error code
//! 4100 (EIP-1193's "unauthorized") with the refusal's kind in `data.kind`
//! (`totp-required`, `totp-replayed`, …); a failure of the backend is
//! -32000 with its kind; bad input -32700, -32600, -32601 or -32602 as
//! JSON-RPC says, naming what is wrong. Batches are answered in order.
//!
//! The service holds its signers as [`EthSigner`]s over one
//! `Arc<dyn KeyBackend>` (any stack: `Audited(TotpGate(…))` over a vault,
//! KMS or an HSM) and awaits every signature: over a remote state store or
//! key backend, a signature in flight never blocks the executor. (Over the
//! embedded file store a gate's state calls are short file I/O done in
//! place.)

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::post;
use custody_core::Authorization;
use custody_eth::{Address, EthSigner, PersonalMessage, Transaction, TypedData};
use serde_json::{Map, Value, json};

/// Most requests in one batch.
pub const MAX_BATCH: usize = 64;

/// The signers a service answers for, by address.
pub struct SignerService {
    signers: HashMap<[u8; 20], EthSigner>,
    /// Addresses in the order given, for `eth_accounts`.
    order: Vec<Address>,
}

impl std::fmt::Debug for SignerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerService")
            .field("accounts", &self.order)
            .finish()
    }
}

/// A JSON-RPC error: code, message and optional data.
#[derive(Debug)]
struct RpcError {
    code: i64,
    message: String,
    data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }

    /// A custody error: a gate's refusal is 4100, the rest -32000, each
    /// with its stable kind.
    fn custody(e: &custody_eth::Error) -> Self {
        let (code, kind) = match e {
            custody_eth::Error::Core(custody_core::Error::Denied(denial)) => (4100, denial.kind()),
            custody_eth::Error::Core(core) => (-32000, core.kind()),
            _ => (-32602, "bad-input"),
        };
        Self {
            code,
            message: e.to_string(),
            data: Some(json!({ "kind": kind })),
        }
    }
}

type Answer = Result<Value, RpcError>;

impl SignerService {
    /// A service for `signers` (one per account).
    #[must_use]
    pub fn new(signers: impl IntoIterator<Item = EthSigner>) -> Self {
        let mut map = HashMap::new();
        let mut order = Vec::new();
        for signer in signers {
            let address = signer.address();
            if map.insert(address.0, signer).is_none() {
                order.push(address);
            }
        }
        Self {
            signers: map,
            order,
        }
    }

    /// The axum router: `POST /` takes JSON-RPC requests.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new().route("/", post(serve)).with_state(self)
    }

    /// Answers one JSON-RPC body (a request or a batch): the response
    /// body, or `None` for notifications only.
    pub async fn answer(&self, body: &[u8]) -> Option<Value> {
        let request: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Some(response(
                    Value::Null,
                    Err(RpcError::new(-32700, e.to_string())),
                ));
            }
        };
        match request {
            Value::Array(batch) if batch.is_empty() => Some(response(
                Value::Null,
                Err(RpcError::new(-32600, "an empty batch")),
            )),
            Value::Array(batch) if batch.len() > MAX_BATCH => Some(response(
                Value::Null,
                Err(RpcError::new(
                    -32600,
                    format!("more than {MAX_BATCH} requests in a batch"),
                )),
            )),
            Value::Array(batch) => {
                let mut answers = Vec::new();
                for one in batch {
                    if let Some(a) = self.answer_one(one).await {
                        answers.push(a);
                    }
                }
                (!answers.is_empty()).then_some(Value::Array(answers))
            }
            one => self.answer_one(one).await,
        }
    }

    async fn answer_one(&self, request: Value) -> Option<Value> {
        let Value::Object(request) = request else {
            return Some(response(
                Value::Null,
                Err(RpcError::new(-32600, "a request is a JSON object")),
            ));
        };
        let id = request.get("id").cloned();
        let result = self.call(&request).await;
        // A request without an id is a notification: no answer.
        id.map(|id| response(id, result))
    }

    async fn call(&self, request: &Map<String, Value>) -> Answer {
        if request.get("jsonrpc") != Some(&json!("2.0")) {
            return Err(RpcError::new(-32600, "jsonrpc must be \"2.0\""));
        }
        let Some(Value::String(method)) = request.get("method") else {
            return Err(RpcError::new(-32600, "method must be a string"));
        };
        let params = match request.get("params") {
            None => &[][..],
            Some(Value::Array(p)) => p.as_slice(),
            Some(_) => return Err(RpcError::invalid_params("params must be an array")),
        };
        let consent = authorization(request.get("authorization"))?;
        match method.as_str() {
            "eth_accounts" => Ok(Value::Array(
                self.order
                    .iter()
                    .map(|a| Value::String(a.to_checksum()))
                    .collect(),
            )),
            "eth_signTransaction" => {
                let [tx] = exactly(params)?;
                let from = tx
                    .get("from")
                    .ok_or_else(|| RpcError::invalid_params("the transaction has no from"))?;
                let signer = self.signer(from)?;
                // The transaction's own fields (custody's reader is strict:
                // `from` names the signer, it is not part of what is signed).
                let mut fields = tx.clone();
                if let Some(object) = fields.as_object_mut() {
                    object.remove("from");
                }
                let tx =
                    Transaction::from_json_value(&fields).map_err(|e| RpcError::custody(&e))?;
                let signed = signer
                    .sign_transaction(&tx, &consent)
                    .await
                    .map_err(|e| RpcError::custody(&e))?;
                Ok(hex_value(signed.encoded()))
            }
            "eth_sign" => {
                let [address, data] = exactly(params)?;
                self.personal(address, data, &consent).await
            }
            "personal_sign" => {
                let [data, address] = exactly(params)?;
                self.personal(address, data, &consent).await
            }
            "eth_signTypedData_v4" => {
                let [address, typed] = exactly(params)?;
                let signer = self.signer(address)?;
                let typed = match typed {
                    Value::String(text) => TypedData::from_json_str(text),
                    other => TypedData::from_json_value(other),
                }
                .map_err(|e| RpcError::custody(&e))?;
                let sig = signer
                    .sign_typed_data(&typed, &consent)
                    .await
                    .map_err(|e| RpcError::custody(&e))?;
                Ok(hex_value(&sig.to_bytes()))
            }
            other => Err(RpcError::new(-32601, format!("no method {other}"))),
        }
    }

    async fn personal(&self, address: &Value, data: &Value, consent: &Authorization) -> Answer {
        let signer = self.signer(address)?;
        let Value::String(data) = data else {
            return Err(RpcError::invalid_params("the data must be a 0x-hex string"));
        };
        let bytes = data
            .strip_prefix("0x")
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| RpcError::invalid_params("the data must be a 0x-hex string"))?;
        let message = PersonalMessage::from_bytes(bytes);
        let sig = signer
            .sign_personal_message(&message, consent)
            .await
            .map_err(|e| RpcError::custody(&e))?;
        Ok(hex_value(&sig.to_bytes()))
    }

    /// The signer of the account named by `address` (a JSON string).
    fn signer(&self, address: &Value) -> Result<&EthSigner, RpcError> {
        let Value::String(text) = address else {
            return Err(RpcError::invalid_params("an address must be a string"));
        };
        let address = Address::parse(text).map_err(|e| RpcError::custody(&e))?;
        self.signers.get(&address.0).ok_or_else(|| {
            RpcError::invalid_params(format!("no account {}", address.to_checksum()))
        })
    }
}

/// Exactly `N` params.
fn exactly<const N: usize>(params: &[Value]) -> Result<&[Value; N], RpcError> {
    params
        .try_into()
        .map_err(|_| RpcError::invalid_params(format!("expected {N} params, got {}", params.len())))
}

/// The request's `authorization` member: `{"totp": "123456"}` or absent.
fn authorization(value: Option<&Value>) -> Result<Authorization, RpcError> {
    let Some(value) = value else {
        return Ok(Authorization::none());
    };
    let Value::Object(fields) = value else {
        return Err(RpcError::new(-32600, "authorization must be an object"));
    };
    let mut consent = Authorization::none();
    for (name, value) in fields {
        match (name.as_str(), value) {
            ("totp", Value::String(code)) => consent = Authorization::totp(code.as_str()),
            ("totp", _) => {
                return Err(RpcError::new(-32600, "authorization.totp must be a string"));
            }
            (other, _) => {
                return Err(RpcError::new(
                    -32600,
                    format!("unknown authorization field {other}"),
                ));
            }
        }
    }
    Ok(consent)
}

fn hex_value(bytes: &[u8]) -> Value {
    Value::String(format!("0x{}", hex::encode(bytes)))
}

fn response(id: Value, result: Answer) -> Value {
    match result {
        Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
        Err(e) => {
            let mut error = json!({ "code": e.code, "message": e.message });
            if let (Some(data), Some(object)) = (e.data, error.as_object_mut()) {
                object.insert("data".into(), data);
            }
            json!({ "jsonrpc": "2.0", "id": id, "error": error })
        }
    }
}

async fn serve(State(service): State<Arc<SignerService>>, body: Bytes) -> impl IntoResponse {
    match service.answer(&body).await {
        Some(answer) => ([(CONTENT_TYPE, "application/json")], answer.to_string()).into_response(),
        None => axum::http::StatusCode::NO_CONTENT.into_response(),
    }
}
