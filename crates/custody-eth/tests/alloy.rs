//! The alloy drop-in (`custody_eth::alloy::AlloySigner`, feature `alloy`)
//! against alloy's own local signer with the same key: every transaction
//! type built with alloy's `TransactionRequest` builder and signed through
//! an `EthereumWallet` (and through `TxSignerSync`) gives byte-identical
//! raw transactions; messages and typed data (a `sol!` struct and
//! `eth_signTypedData_v4` JSON) give identical signatures; and behind a real
//! TOTP gate, the second factor comes only through the consent hook: no
//! code, no signature, a code used once, and the audit record names what
//! was signed.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

#[allow(
    dead_code,
    reason = "shared by several test binaries, each using a subset"
)]
#[path = "support/common.rs"]
mod common;

use std::sync::Arc;

use alloy_consensus::{SignableTransaction, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_eips::eip7702::Authorization as AlloyAuthorization;
use alloy_network::{
    Ethereum, EthereumWallet, Network, NetworkWallet, TransactionBuilder, TxSigner, TxSignerSync,
};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, address};
use alloy_signer::{Signer, SignerSync};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{eip712_domain, sol};
use common::{signer_for, unhex};
use custody_core::{
    Authorization as Consent, DataKey, KekId, KeyId, KeyRef, KeySigner, LocalKek, MemoryAuditLog,
    MemoryStore, Pending, PrivateKeyBytes, SharedBackend, Vault, WalletScheme,
};
use custody_eth::EthSigner;
use custody_eth::alloy::{AlloySigner, NextConsent, SigningRequest};
use custody_totp::{EnrolMode, ManualClock, OtpAuthUri, TotpConfig, TotpGate, TotpRegistry};

/// Anvil's first account.
const KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

type Request = <Ethereum as Network>::TransactionRequest;

/// Runs an async call to its end on this thread.
fn run<T: Send>(call: impl Future<Output = T> + Send) -> T {
    Pending::drive(call).wait()
}

fn local() -> PrivateKeySigner {
    PrivateKeySigner::from_slice(&unhex(KEY)).unwrap()
}

/// An ungated custody signer over the same key, asking no consent.
fn ungated() -> AlloySigner {
    AlloySigner::new(
        signer_for(KEY),
        Arc::new(|_: &SigningRequest<'_>| Ok(Consent::none())),
    )
}

/// One request of every transaction type, built with alloy's builder.
fn requests() -> Vec<(&'static str, Request)> {
    let to = address!("0x3535353535353535353535353535353535353535");
    let base = || {
        Request::default()
            .with_from(local().address())
            .with_to(to)
            .with_nonce(7)
            .with_chain_id(1)
            .with_value(U256::from(1_000_000_000_000_000_000u128))
            .with_gas_limit(21_000)
            .with_input(Bytes::from_static(&[0xa9, 0x05, 0x9c, 0xbb, 0x01]))
    };
    let access_list = AccessList(vec![AccessListItem {
        address: to,
        storage_keys: vec![B256::repeat_byte(0x11), B256::repeat_byte(0x22)],
    }]);
    let legacy = base().with_gas_price(20_000_000_000);
    let eip2930 = base()
        .with_gas_price(20_000_000_000)
        .with_access_list(access_list.clone());
    let eip1559 = base()
        .with_max_fee_per_gas(30_000_000_000)
        .with_max_priority_fee_per_gas(1_000_000_000)
        .with_access_list(access_list);
    let mut eip4844 = base()
        .with_max_fee_per_gas(30_000_000_000)
        .with_max_priority_fee_per_gas(1_000_000_000);
    eip4844.max_fee_per_blob_gas = Some(5_000_000_000);
    // alloy's builder wants the sidecar; nobody checks its proofs here
    // (the signature covers the versioned hashes only).
    let sidecar = alloy_eips::eip4844::BlobTransactionSidecar {
        blobs: vec![alloy_eips::eip4844::Blob::repeat_byte(0)],
        commitments: vec![alloy_eips::eip4844::Bytes48::repeat_byte(0xc0)],
        proofs: vec![alloy_eips::eip4844::Bytes48::repeat_byte(0xc0)],
    };
    eip4844.blob_versioned_hashes = Some(sidecar.versioned_hashes().collect());
    eip4844.sidecar = Some(alloy_eips::eip7594::BlobTransactionSidecarVariant::Eip4844(
        sidecar,
    ));
    let authorization = AlloyAuthorization {
        chain_id: U256::from(1),
        address: address!("0x000000000000000000000000000000000000beef"),
        nonce: 8,
    };
    let signed_authorization = local()
        .sign_hash_sync(&authorization.signature_hash())
        .map(|sig| authorization.into_signed(sig))
        .unwrap();
    let mut eip7702 = base()
        .with_max_fee_per_gas(30_000_000_000)
        .with_max_priority_fee_per_gas(1_000_000_000);
    eip7702.authorization_list = Some(vec![signed_authorization]);
    let deploy = Request::default()
        .with_from(local().address())
        .with_nonce(0)
        .with_chain_id(1)
        .with_gas_limit(100_000)
        .with_max_fee_per_gas(30_000_000_000)
        .with_max_priority_fee_per_gas(1_000_000_000)
        .with_deploy_code(Bytes::from_static(&[0x60, 0x00, 0x60, 0x00, 0xf3]));
    vec![
        ("legacy (EIP-155)", legacy),
        ("EIP-2930", eip2930),
        ("EIP-1559", eip1559),
        ("EIP-4844", eip4844),
        ("EIP-7702", eip7702),
        ("EIP-1559 contract creation", deploy),
    ]
}

#[test]
fn an_ethereum_wallet_signs_every_type_byte_identical_to_alloys_local_signer() {
    let ours = EthereumWallet::new(ungated());
    let theirs = EthereumWallet::new(local());
    assert_eq!(
        NetworkWallet::<Ethereum>::default_signer_address(&ours),
        local().address()
    );
    for (name, request) in requests() {
        let a = run(request.clone().build(&ours)).unwrap();
        let b = run(request.build(&theirs)).unwrap();
        assert_eq!(a.encoded_2718(), b.encoded_2718(), "{name}");
        assert_eq!(a.tx_hash(), b.tx_hash(), "{name}");
    }
}

#[test]
fn the_sync_and_async_tx_signers_agree_with_alloys_including_pre_eip155_legacy() {
    let ours = ungated();
    let theirs = local();
    assert_eq!(TxSignerSync::address(&ours), theirs.address());
    let mut unsigned: Vec<(&str, alloy_consensus::TypedTransaction)> = requests()
        .into_iter()
        .map(|(name, r)| (name, r.build_unsigned().unwrap()))
        .collect();
    // A legacy transaction without a chain id (no EIP-155: v is 27/28).
    unsigned.push((
        "legacy (no chain id)",
        TxLegacy {
            chain_id: None,
            nonce: 1,
            gas_price: 1,
            gas_limit: 21_000,
            to: TxKind::Create,
            value: U256::ZERO,
            input: Bytes::from_static(&[0x00]),
        }
        .into(),
    ));
    for (name, tx) in unsigned {
        let expected: Signature = theirs.sign_transaction_sync(&mut tx.clone()).unwrap();
        let mut a = tx.clone();
        let mut b = tx;
        assert_eq!(
            ours.sign_transaction_sync(&mut a).unwrap(),
            expected,
            "{name}"
        );
        assert_eq!(
            run(TxSigner::sign_transaction(&ours, &mut b)).unwrap(),
            expected,
            "{name}"
        );
    }
}

#[test]
fn a_chain_id_is_applied_or_a_mismatch_refused_as_alloys_local_signer_does() {
    let ours = ungated().with_chain_id(Some(10));
    let theirs = local().with_chain_id(Some(10));
    // No chain id in the transaction: the signer's is applied (EIP-155).
    let tx = || TxLegacy {
        chain_id: None,
        nonce: 1,
        gas_price: 1,
        gas_limit: 21_000,
        to: TxKind::Create,
        value: U256::ZERO,
        input: Bytes::new(),
    };
    let (mut a, mut b) = (tx(), tx());
    assert_eq!(
        ours.sign_transaction_sync(&mut a).unwrap(),
        theirs.sign_transaction_sync(&mut b).unwrap()
    );
    assert_eq!((a.chain_id, b.chain_id), (Some(10), Some(10)));
    // Another chain id in the transaction: refused by both.
    let mut other = tx();
    other.chain_id = Some(1);
    for e in [
        ours.sign_transaction_sync(&mut other.clone()).unwrap_err(),
        theirs.sign_transaction_sync(&mut other).unwrap_err(),
    ] {
        assert!(
            matches!(
                e,
                alloy_signer::Error::TransactionChainIdMismatch { signer: 10, tx: 1 }
            ),
            "{e:?}"
        );
    }
}

sol! {
    struct Person {
        string name;
        address wallet;
    }

    struct Mail {
        Person from;
        Person to;
        string contents;
        uint256[] amounts;
        bytes attachment;
        bytes4 tag;
    }
}

#[test]
fn messages_and_typed_data_sign_as_alloys_local_signer_does() {
    let ours = ungated();
    let theirs = local();
    for message in [&b"hello world"[..], &[], &[0xff; 100]] {
        let expected = theirs.sign_message_sync(message).unwrap();
        assert_eq!(ours.sign_message_sync(message).unwrap(), expected);
        assert_eq!(run(ours.sign_message(message)).unwrap(), expected);
    }
    // A `sol!` struct with nested structs, a dynamic array, bytes and a
    // fixed-size bytes member: signed as typed data, not as a digest.
    let mail = Mail {
        from: Person {
            name: "Cow".into(),
            wallet: address!("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"),
        },
        to: Person {
            name: "Bob".into(),
            wallet: address!("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"),
        },
        contents: "Hello, Bob!".into(),
        amounts: vec![U256::from(1), U256::MAX],
        attachment: Bytes::from_static(&[1, 2, 3]),
        tag: [0xde, 0xad, 0xbe, 0xef].into(),
    };
    let domain = eip712_domain! {
        name: "Ether Mail",
        version: "1",
        chain_id: 1,
        verifying_contract: address!("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"),
    };
    let expected = theirs.sign_typed_data_sync(&mail, &domain).unwrap();
    assert_eq!(ours.sign_typed_data_sync(&mail, &domain).unwrap(), expected);
    assert_eq!(run(ours.sign_typed_data(&mail, &domain)).unwrap(), expected);
    // `eth_signTypedData_v4` JSON (an EIP-2612 permit).
    let permit: alloy_dyn_abi::TypedData = serde_json::from_value(serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"}
            ]
        },
        "primaryType": "Permit",
        "domain": {
            "name": "USD Coin", "version": "2", "chainId": 1,
            "verifyingContract": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
        },
        "message": {
            "owner": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "spender": "0x000000000022D473030F116dDEE9F6B43aC78BA3",
            "value": "1000000", "nonce": 0, "deadline": "1800000000"
        }
    }))
    .unwrap();
    let expected = theirs.sign_dynamic_typed_data_sync(&permit).unwrap();
    assert_eq!(
        ours.sign_dynamic_typed_data_sync(&permit).unwrap(),
        expected
    );
    assert_eq!(
        run(ours.sign_dynamic_typed_data(&permit)).unwrap(),
        expected
    );
    // A bare digest.
    let digest = B256::repeat_byte(0x42);
    assert_eq!(
        ours.sign_hash_sync(&digest).unwrap(),
        theirs.sign_hash_sync(&digest).unwrap()
    );
}

/// A custody key behind `Audited(TotpGate(vault))`, enrolled for TOTP, as
/// an alloy signer whose consent comes from a [`NextConsent`] slot.
struct Gated {
    signer: AlloySigner,
    slot: Arc<NextConsent>,
    uri: OtpAuthUri,
    clock: Arc<ManualClock>,
    audit: Arc<MemoryAuditLog>,
    asked: Arc<std::sync::Mutex<Vec<&'static str>>>,
}

const T0: u64 = 1_800_000_000;

fn gated() -> Gated {
    let kek: SharedBackend = Arc::new(LocalKek::from_key(
        KekId::new("test-kek").unwrap(),
        DataKey::new([0x5a; 32]),
    ));
    let vault = Arc::new(Vault::new(kek, WalletScheme::Default));
    vault
        .insert_key(
            KeyId::new("anvil0").unwrap(),
            PrivateKeyBytes::from_slice(&unhex(KEY)).unwrap(),
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
    let backend: SharedBackend = Arc::new(custody_core::Audited::new(gate, audit.clone()));
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
    let slot = Arc::new(NextConsent::new());
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (hook_slot, hook_asked) = (slot.clone(), asked.clone());
    // The hook sees what it consents to, then hands over the slot's code.
    let hook = move |request: &SigningRequest<'_>| {
        hook_asked.lock().unwrap().push(match request {
            SigningRequest::Transaction(_) => "transaction",
            SigningRequest::PersonalMessage(_) => "personal-message",
            SigningRequest::TypedData(_) => "typed-data",
            SigningRequest::Hash(_) => "hash",
            _ => "other",
        });
        custody_eth::alloy::ConsentHook::consent(&*hook_slot, request)
    };
    Gated {
        signer: AlloySigner::new(EthSigner::new(key).unwrap(), Arc::new(hook)),
        slot,
        uri,
        clock,
        audit,
        asked,
    }
}

impl Gated {
    fn code_at(&self, time: u64) -> Consent {
        self.clock.set(time);
        Consent::totp(
            self.uri
                .params()
                .code_at(self.uri.expose_secret(), time)
                .unwrap()
                .expose_str(),
        )
    }
}

/// The custody error inside an alloy error, by kind.
fn kind(e: &alloy_signer::Error) -> String {
    let alloy_signer::Error::Other(inner) = e else {
        panic!("not a custody error: {e:?}")
    };
    inner
        .downcast_ref::<custody_eth::Error>()
        .map(|e| match e {
            custody_eth::Error::Core(core) => core.kind().to_owned(),
            other => format!("{other}"),
        })
        .expect("a custody_eth::Error")
}

#[test]
fn behind_a_totp_gate_the_code_comes_only_through_the_consent_hook() {
    let g = gated();
    let wallet = EthereumWallet::new(g.signer.clone());
    let theirs = EthereumWallet::new(local());
    let (_, request) = requests().swap_remove(2);
    // No code in the slot: the gate refuses, and nothing is signed.
    let e = run(request.clone().build(&wallet)).unwrap_err();
    let alloy_network::TransactionBuilderError::Signer(e) = e else {
        panic!("not a signer error: {e:?}")
    };
    assert_eq!(kind(&e), "totp-required");
    // The code for the next request: signed, byte-identical to alloy's.
    g.slot.set(g.code_at(T0));
    let signed = run(request.clone().build(&wallet)).unwrap();
    assert!(!g.slot.is_set(), "the slot's code was taken");
    assert_eq!(
        signed.encoded_2718(),
        run(request.clone().build(&theirs)).unwrap().encoded_2718()
    );
    // The audit record names a transaction, its digest and the code's step.
    let last = g.audit.records().last().cloned().unwrap();
    assert_eq!(
        (last.event().op().as_str(), last.event().outcome().as_str()),
        ("sign", "success")
    );
    assert_eq!(last.event().field("intent"), Some("transaction"));
    assert_eq!(
        last.event().field("totp-step"),
        Some((T0 / 30).to_string().as_str())
    );
    // The same code again: a replay, refused.
    g.slot.set(g.code_at(T0));
    let e = g
        .signer
        .sign_message_sync(b"again")
        .expect_err("a replayed code");
    assert_eq!(kind(&e), "totp-replayed");
    // Messages, typed data and bare digests pass the same gate.
    g.slot.set(g.code_at(T0 + 30));
    g.signer.sign_message_sync(b"hello").unwrap();
    let e = g.signer.sign_hash_sync(&B256::ZERO).unwrap_err();
    assert_eq!(kind(&e), "totp-required");
    g.slot.set(g.code_at(T0 + 60));
    g.signer.sign_hash_sync(&B256::ZERO).unwrap();
    assert_eq!(
        *g.asked.lock().unwrap(),
        [
            "transaction",
            "transaction",
            "personal-message",
            "personal-message",
            "hash",
            "hash"
        ]
    );
    let intents: Vec<String> = g
        .audit
        .records()
        .iter()
        .filter(|r| r.event().op().as_str() == "sign" && r.event().outcome().as_str() == "success")
        .filter_map(|r| r.event().field("intent").map(str::to_owned))
        .collect();
    assert_eq!(intents, ["transaction", "personal-message", "raw-digest"]);
}

#[test]
fn a_transaction_custody_would_read_differently_is_refused_not_signed() {
    // alloy's signing hash and custody's must agree; a type custody does
    // not know is refused by type, never signed as another.
    let ours = ungated();
    let mut tx = alloy_consensus::TxEip1559 {
        chain_id: 1,
        nonce: 0,
        gas_limit: 21_000,
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 1,
        to: TxKind::Call(Address::ZERO),
        value: U256::ZERO,
        access_list: AccessList::default(),
        input: Bytes::new(),
    };
    assert!(ours.sign_transaction_sync(&mut tx).is_ok());
    let mut unknown = Odd {
        tx: tx.clone(),
        ty: 0x7f,
        extra: &[],
    };
    let e = ours.sign_transaction_sync(&mut unknown).unwrap_err();
    assert_eq!(kind(&e), "unsupported transaction type 0x7f");
    // An EIP-1559 transaction whose signing payload carries a field custody
    // does not read: refused, the hashes differ.
    let mut extended = Odd {
        tx,
        ty: 2,
        extra: &[0x80],
    };
    let e = ours.sign_transaction_sync(&mut extended).unwrap_err();
    assert_eq!(
        kind(&e),
        "alloy's signing hash: does not match the transaction"
    );
}

/// An EIP-1559 transaction that says it is of type `ty` and signs `extra`
/// after its fields.
#[derive(Debug)]
struct Odd {
    tx: alloy_consensus::TxEip1559,
    ty: u8,
    extra: &'static [u8],
}

impl alloy_eips::Typed2718 for Odd {
    fn ty(&self) -> u8 {
        self.ty
    }
}

impl alloy_consensus::Transaction for Odd {
    fn chain_id(&self) -> Option<u64> {
        self.tx.chain_id()
    }
    fn nonce(&self) -> u64 {
        self.tx.nonce()
    }
    fn gas_limit(&self) -> u64 {
        self.tx.gas_limit()
    }
    fn gas_price(&self) -> Option<u128> {
        self.tx.gas_price()
    }
    fn max_fee_per_gas(&self) -> u128 {
        self.tx.max_fee_per_gas()
    }
    fn max_priority_fee_per_gas(&self) -> Option<u128> {
        self.tx.max_priority_fee_per_gas()
    }
    fn max_fee_per_blob_gas(&self) -> Option<u128> {
        None
    }
    fn priority_fee_or_price(&self) -> u128 {
        self.tx.priority_fee_or_price()
    }
    fn effective_gas_price(&self, base_fee: Option<u64>) -> u128 {
        self.tx.effective_gas_price(base_fee)
    }
    fn is_dynamic_fee(&self) -> bool {
        true
    }
    fn kind(&self) -> TxKind {
        self.tx.kind()
    }
    fn is_create(&self) -> bool {
        false
    }
    fn value(&self) -> U256 {
        self.tx.value()
    }
    fn input(&self) -> &Bytes {
        self.tx.input()
    }
    fn access_list(&self) -> Option<&AccessList> {
        self.tx.access_list()
    }
    fn blob_versioned_hashes(&self) -> Option<&[B256]> {
        None
    }
    fn authorization_list(&self) -> Option<&[alloy_eips::eip7702::SignedAuthorization]> {
        None
    }
}

impl SignableTransaction<Signature> for Odd {
    fn set_chain_id(&mut self, chain_id: u64) {
        self.tx.set_chain_id(chain_id);
    }
    fn encode_for_signing(&self, out: &mut dyn alloy_primitives::bytes::BufMut) {
        self.tx.encode_for_signing(out);
        out.put_slice(self.extra);
    }
    fn payload_len_for_signature(&self) -> usize {
        self.tx.payload_len_for_signature() + self.extra.len()
    }
}
