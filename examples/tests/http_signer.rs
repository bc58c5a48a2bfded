//! The HTTP signer (`custody_examples::signer_service`) served by axum on a
//! loopback port and called with a real HTTP client (ureq): every signing
//! method answers what alloy's local signer makes with the same key, the
//! TOTP code is taken from the request and refused without it or when
//! replayed, and bad requests get the JSON-RPC errors they should.
#![expect(clippy::unwrap_used, reason = "test code: a failure is a test failure")]

use std::sync::Arc;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Bytes, TxKind, U256, address};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use custody_core::{
    Audited, DataKey, KekId, KeyId, KeyRef, KeySigner, LocalKek, MemoryAuditLog, MemoryStore,
    PrivateKeyBytes, SharedBackend, Vault, WalletScheme,
};
use custody_eth::EthSigner;
use custody_examples::signer_service::SignerService;
use custody_totp::{EnrolMode, ManualClock, OtpAuthUri, TotpConfig, TotpGate, TotpRegistry};
use serde_json::{Value, json};

/// Anvil's first account.
const KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ADDRESS: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const T0: u64 = 1_800_000_000;

struct Server {
    url: String,
    uri: OtpAuthUri,
    clock: Arc<ManualClock>,
    audit: Arc<MemoryAuditLog>,
}

impl Server {
    /// A signer service over `Audited(TotpGate(vault))` holding anvil's key,
    /// enrolled for TOTP, served on a free loopback port.
    fn start() -> Self {
        let kek: SharedBackend = Arc::new(LocalKek::from_key(
            KekId::new("test-kek").unwrap(),
            DataKey::new([0x5a; 32]),
        ));
        let vault = Arc::new(Vault::new(kek, WalletScheme::Default));
        vault
            .insert_key(
                KeyId::new("anvil0").unwrap(),
                PrivateKeyBytes::from_slice(&hex::decode(KEY).unwrap()).unwrap(),
            )
            .unwrap();
        let audit = Arc::new(MemoryAuditLog::new());
        let clock = Arc::new(ManualClock::new(T0));
        let registry = Arc::new(
            TotpRegistry::new(
                vault.clone(),
                Arc::new(MemoryStore::new()),
                audit.clone(),
                TotpConfig::new(WalletScheme::Default),
            )
            .unwrap()
            .with_clock(clock.clone()),
        );
        let gate: SharedBackend = Arc::new(TotpGate::new(vault, registry.clone()));
        let backend: SharedBackend = Arc::new(Audited::new(gate, audit.clone()));
        let key = KeySigner::pin(backend, KeyRef::Stored(KeyId::new("anvil0").unwrap()))
            .wait()
            .unwrap();
        let uri = OtpAuthUri::parse(
            "otpauth://totp/custody:anvil0?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=custody&period=30",
        )
        .unwrap();
        registry
            .import_key(
                "anvil0",
                key.key().secp256k1().unwrap(),
                &uri,
                EnrolMode::New,
            )
            .wait()
            .unwrap();
        let service = Arc::new(SignerService::new([EthSigner::new(key).unwrap()]));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            runtime
                .block_on(async { axum::serve(listener, service.router()).await })
                .unwrap();
        });
        Self {
            url,
            uri,
            clock,
            audit,
        }
    }

    /// POSTs `body`; the response body as JSON (`Null` for 204).
    fn post(&self, body: &str) -> Value {
        let mut response = ureq::post(&self.url)
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        let text = response.body_mut().read_to_string().unwrap();
        if response.status() == 204 {
            assert!(text.is_empty());
            return Value::Null;
        }
        assert_eq!(response.status(), 200);
        serde_json::from_str(&text).unwrap()
    }

    /// Calls `method` with `params` and, if given, the TOTP code of `time`.
    fn call(&self, method: &str, params: Value, code_at: Option<u64>) -> Value {
        let mut request = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        if let Some(time) = code_at {
            self.clock.set(time);
            let code = self
                .uri
                .params()
                .code_at(self.uri.expose_secret(), time)
                .unwrap();
            request["authorization"] = json!({"totp": code.expose_str()});
        }
        let answer = self.post(&request.to_string());
        assert_eq!(
            (&answer["jsonrpc"], &answer["id"]),
            (&json!("2.0"), &json!(7))
        );
        answer
    }
}

fn local() -> PrivateKeySigner {
    PrivateKeySigner::from_slice(&hex::decode(KEY).unwrap()).unwrap()
}

fn hex_of(bytes: &[u8]) -> Value {
    Value::String(format!("0x{}", hex::encode(bytes)))
}

/// The error's code and kind.
fn refusal(answer: &Value) -> (i64, &str) {
    (
        answer["error"]["code"].as_i64().unwrap(),
        answer["error"]["data"]["kind"].as_str().unwrap_or(""),
    )
}

#[test]
fn every_signing_method_answers_what_alloys_local_signer_makes() {
    let s = Server::start();
    assert_eq!(
        s.call("eth_accounts", json!([]), None)["result"],
        json!([ADDRESS])
    );
    // eth_signTransaction: an EIP-1559 transaction from our account.
    let tx = json!({
        "from": ADDRESS, "type": "0x2", "chainId": "0x1", "nonce": "0x9",
        "to": "0x3535353535353535353535353535353535353535", "value": "0xde0b6b3a7640000",
        "gas": "0x5208", "maxFeePerGas": "0x6fc23ac00", "maxPriorityFeePerGas": "0x3b9aca00",
        "input": "0xa9059cbb"
    });
    let theirs = TxEip1559 {
        chain_id: 1,
        nonce: 9,
        gas_limit: 21_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(address!("0x3535353535353535353535353535353535353535")),
        value: U256::from(1_000_000_000_000_000_000u128),
        access_list: Default::default(),
        input: Bytes::from_static(&[0xa9, 0x05, 0x9c, 0xbb]),
    };
    let sig = local().sign_hash_sync(&theirs.signature_hash()).unwrap();
    let raw = TxEnvelope::from(theirs.into_signed(sig)).encoded_2718();
    let answer = s.call("eth_signTransaction", json!([tx]), Some(T0));
    assert_eq!(answer["result"], hex_of(&raw), "{answer}");
    // personal_sign and eth_sign: EIP-191, v 27/28.
    let expected = hex_of(&local().sign_message_sync(b"hello").unwrap().as_bytes());
    let answer = s.call(
        "personal_sign",
        json!(["0x68656c6c6f", ADDRESS]),
        Some(T0 + 30),
    );
    assert_eq!(answer["result"], expected, "{answer}");
    let answer = s.call("eth_sign", json!([ADDRESS, "0x68656c6c6f"]), Some(T0 + 60));
    assert_eq!(answer["result"], expected, "{answer}");
    // eth_signTypedData_v4: the typed data as an object and as a string.
    let typed = json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Mail": [{"name": "to", "type": "address"}, {"name": "contents", "type": "string"}]
        },
        "primaryType": "Mail",
        "domain": {"name": "Ether Mail", "chainId": 1,
                   "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
        "message": {"to": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB", "contents": "Hello, Bob!"}
    });
    let their_typed: alloy_dyn_abi::TypedData = serde_json::from_value(typed.clone()).unwrap();
    let expected = hex_of(
        &local()
            .sign_dynamic_typed_data_sync(&their_typed)
            .unwrap()
            .as_bytes(),
    );
    let answer = s.call(
        "eth_signTypedData_v4",
        json!([ADDRESS, typed]),
        Some(T0 + 90),
    );
    assert_eq!(answer["result"], expected, "{answer}");
    let answer = s.call(
        "eth_signTypedData_v4",
        json!([ADDRESS, typed.to_string()]),
        Some(T0 + 120),
    );
    assert_eq!(answer["result"], expected, "{answer}");
    // Every signature left its record, naming what was signed.
    let intents: Vec<String> = s
        .audit
        .records()
        .iter()
        .filter(|r| r.event().op().as_str() == "sign")
        .filter_map(|r| r.event().field("intent").map(str::to_owned))
        .collect();
    assert_eq!(
        intents,
        [
            "transaction",
            "personal-message",
            "personal-message",
            "typed-data",
            "typed-data"
        ]
    );
}

#[test]
fn the_totp_code_comes_from_the_request_and_is_spent_once() {
    let s = Server::start();
    let params = json!(["0x68656c6c6f", ADDRESS]);
    let answer = s.call("personal_sign", params.clone(), None);
    assert_eq!(refusal(&answer), (4100, "totp-required"), "{answer}");
    assert!(answer.get("result").is_none());
    let answer = s.call("personal_sign", params.clone(), Some(T0));
    assert!(answer["result"].is_string(), "{answer}");
    let answer = s.call("personal_sign", params.clone(), Some(T0));
    assert_eq!(refusal(&answer), (4100, "totp-replayed"), "{answer}");
    // A wrong code.
    let wrong = json!({"jsonrpc": "2.0", "id": 7, "method": "personal_sign",
                       "params": params, "authorization": {"totp": "000000"}});
    s.clock.set(T0 + 30);
    let answer = s.post(&wrong.to_string());
    let expected = if s
        .uri
        .params()
        .code_at(s.uri.expose_secret(), T0 + 30)
        .unwrap()
        .expose_str()
        == "000000"
    {
        "totp-replayed"
    } else {
        "totp-invalid"
    };
    assert_eq!(refusal(&answer), (4100, expected), "{answer}");
}

#[test]
fn bad_requests_get_the_json_rpc_errors_they_should() {
    let s = Server::start();
    let code = |answer: &Value| answer["error"]["code"].as_i64().unwrap();
    assert_eq!(code(&s.post("{not json")), -32700);
    assert_eq!(code(&s.post("[]")), -32600);
    assert_eq!(code(&s.post("3")), -32600);
    assert_eq!(
        code(&s.post(r#"{"jsonrpc":"1.0","id":1,"method":"eth_accounts"}"#)),
        -32600
    );
    assert_eq!(
        code(&s.call("eth_sendTransaction", json!([]), None)),
        -32601
    );
    // Params: wrong count, an account not held, a bad transaction field.
    assert_eq!(code(&s.call("eth_sign", json!([ADDRESS]), None)), -32602);
    let stranger = "0x0000000000000000000000000000000000000001";
    let answer = s.call("personal_sign", json!(["0x00", stranger]), None);
    assert_eq!(code(&answer), -32602);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no account")
    );
    let bad_tx = json!({"from": ADDRESS, "type": "0x2", "chainId": "0x1", "nonce": "0xzz",
                        "gas": "0x5208", "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1"});
    let answer = s.call("eth_signTransaction", json!([bad_tx]), None);
    assert_eq!(code(&answer), -32602, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nonce"),
        "{answer}"
    );
    assert_eq!(
        code(&s.call("personal_sign", json!(["hello", ADDRESS]), None)),
        -32602
    );
    // An unknown authorization field is refused, not ignored.
    let answer = s.post(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "eth_accounts",
                "authorization": {"totp": "123456", "approvals": []}})
        .to_string(),
    );
    assert_eq!(code(&answer), -32600);
    // A batch is answered in order; a notification gets no answer.
    let answer = s.post(
        &json!([
            {"jsonrpc": "2.0", "id": 1, "method": "eth_accounts"},
            {"jsonrpc": "2.0", "method": "eth_accounts"},
            {"jsonrpc": "2.0", "id": 2, "method": "nope"}
        ])
        .to_string(),
    );
    let ids: Vec<&Value> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(ids, [&json!(1), &json!(2)]);
    assert_eq!(answer[1]["error"]["code"], json!(-32601));
    assert_eq!(
        s.post(&json!({"jsonrpc": "2.0", "method": "eth_accounts"}).to_string()),
        Value::Null
    );
}
