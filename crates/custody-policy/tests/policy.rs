//! Operations, facts, policies and their evaluation: the canonical
//! encoding against its specification, policy documents read strictly (and
//! against the published JSON Schema by an independent validator), and
//! every step of evaluation a named test.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

use std::collections::BTreeSet;

use custody_core::{Digest32, PublicKey};
use custody_eth::{Address, Authorization, Transaction, TxEip1559, TypedData, U256};
use custody_policy::facts::{Asset, ERC20_APPROVE, ERC20_TRANSFER, ERC20_TRANSFER_FROM, Facts};
use custody_policy::operation::{OPERATION_TAG, Operation, OperationKind};
use custody_policy::policy::{Decision, EvaluationInput, Policy, Spend, StepResult};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ALICE: &str = "0x1111111111111111111111111111111111111111";
const BOB: &str = "0x2222222222222222222222222222222222222222";
const MIXER: &str = "0x722122df12d4e14e13ac3b6895a86e84145b6967";
const USDC: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
const PERMIT2: &str = "0x000000000022d473030f116ddee9f6b43ac78ba3";
const ROUTER: &str = "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad";

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

fn signer() -> PublicKey {
    let secret = k256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    PublicKey::from_sec1_bytes(&secret.public_key().to_sec1_bytes()).unwrap()
}

fn eth(n: u64) -> U256 {
    U256::from_u64(n)
        .checked_mul_u64(1_000_000_000_000_000_000)
        .unwrap()
}

fn tx(to: Option<&str>, value: U256, data: Vec<u8>, chain_id: u64) -> Transaction {
    Transaction::Eip1559(TxEip1559 {
        chain_id,
        nonce: 3,
        max_priority_fee_per_gas: U256::from_u64(1_000_000_000),
        max_fee_per_gas: U256::from_u64(30_000_000_000),
        gas_limit: 21_000,
        to: to.map(addr),
        value,
        data,
        access_list: Default::default(),
    })
}

fn tx_op(tx: Transaction) -> Operation {
    Operation::Transaction {
        signer: signer(),
        tx,
    }
}

fn word_address(a: &str) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(addr(a).as_bytes());
    w
}

fn calldata(selector: [u8; 4], words: &[[u8; 32]]) -> Vec<u8> {
    let mut out = selector.to_vec();
    for w in words {
        out.extend_from_slice(w);
    }
    out
}

fn erc20_transfer(to: &str, amount: U256) -> Vec<u8> {
    calldata(ERC20_TRANSFER, &[word_address(to), amount.to_be_bytes()])
}

fn permit(spender: &str) -> TypedData {
    let doc = json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "PermitSingle": [
                {"name": "details", "type": "PermitDetails"},
                {"name": "spender", "type": "address"},
                {"name": "sigDeadline", "type": "uint256"}
            ],
            "PermitDetails": [
                {"name": "token", "type": "address"},
                {"name": "amount", "type": "uint160"},
                {"name": "expiration", "type": "uint48"},
                {"name": "nonce", "type": "uint48"}
            ]
        },
        "primaryType": "PermitSingle",
        "domain": {"name": "Permit2", "chainId": 1, "verifyingContract": PERMIT2},
        "message": {
            "details": {"token": USDC, "amount": "1000000", "expiration": "1700000000", "nonce": "0"},
            "spender": spender,
            "sigDeadline": "1700000000"
        }
    });
    TypedData::from_json_value(&doc).unwrap()
}

// --- the operation encoding ---------------------------------------------------

/// `len ‖ bytes`, as the specification writes `lp`.
fn lp(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u64).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

fn spec_encoding(kind: u8, signer: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = b"custody/operation/v1".to_vec();
    out.push(kind);
    out.extend(lp(signer));
    out.extend(lp(payload));
    out
}

#[test]
fn every_operation_kind_encodes_as_the_specification_says() {
    let key = signer().to_compressed();
    assert_eq!(OPERATION_TAG, b"custody/operation/v1");

    // A transaction: its unsigned EIP-2718 encoding, which is what its
    // signing hash hashes (checked against keccak, so the payload is the
    // signed bytes and nothing else).
    let t = tx(Some(ALICE), eth(1), vec![], 1);
    let op = tx_op(t.clone());
    assert_eq!(op.encode(), spec_encoding(1, &key, &t.encode_unsigned()));
    assert_eq!(
        custody_eth::keccak256(&t.encode_unsigned()),
        *op.signing_digest().unwrap().as_bytes()
    );

    let message = b"hello \x00 world".to_vec();
    let op = Operation::PersonalMessage {
        signer: signer(),
        message: message.clone(),
    };
    assert_eq!(op.encode(), spec_encoding(2, &key, &message));

    // Typed data: 0x1901 ‖ domainSeparator ‖ hashStruct, whose keccak is
    // the EIP-712 signing hash.
    let data = permit(ROUTER);
    let op = Operation::TypedData {
        signer: signer(),
        data: Box::new(data.clone()),
    };
    let mut payload = vec![0x19, 0x01];
    payload.extend_from_slice(&data.domain_separator());
    payload.extend_from_slice(&data.struct_hash());
    assert_eq!(op.encode(), spec_encoding(3, &key, &payload));
    assert_eq!(
        custody_eth::keccak256(&payload),
        *op.signing_digest().unwrap().as_bytes()
    );

    let authorization = Authorization {
        chain_id: U256::from_u64(10),
        address: addr(ROUTER),
        nonce: 0x0102_0304_0506_0708,
    };
    let op = Operation::Authorization {
        signer: signer(),
        authorization,
    };
    let mut payload = U256::from_u64(10).to_be_bytes().to_vec();
    payload.extend_from_slice(addr(ROUTER).as_bytes());
    payload.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(op.encode(), spec_encoding(4, &key, &payload));

    let op = Operation::RawDigest {
        signer: signer(),
        digest: Digest32([0xab; 32]),
    };
    assert_eq!(op.encode(), spec_encoding(5, &key, &[0xab; 32]));

    let op = Operation::PolicyChange {
        wallet: "treasury".into(),
        change_hash: [1; 32],
        previous: [2; 32],
    };
    let mut payload = lp(b"treasury");
    payload.extend_from_slice(&[1; 32]);
    payload.extend_from_slice(&[2; 32]);
    assert_eq!(op.encode(), spec_encoding(6, &[], &payload));
    assert_eq!(op.signer(), None);
    assert_eq!(op.signing_digest(), None);

    let vetoed = op.hash();
    let op = Operation::Veto {
        wallet: "treasury".into(),
        operation: vetoed,
    };
    let mut payload = lp(b"treasury");
    payload.extend_from_slice(vetoed.as_bytes());
    assert_eq!(op.encode(), spec_encoding(7, &[], &payload));
    assert_eq!(op.signer(), None);
    assert_eq!(op.signing_digest(), None);

    // The hash is SHA-256 of the encoding.
    assert_eq!(op.hash().0, <[u8; 32]>::from(Sha256::digest(op.encode())));
}

#[test]
fn the_operation_hash_binds_the_signer_the_kind_and_every_byte() {
    let base = tx_op(tx(Some(ALICE), eth(1), vec![], 1));
    let other_key = {
        let secret = k256::SecretKey::from_slice(&[8u8; 32]).unwrap();
        PublicKey::from_sec1_bytes(&secret.public_key().to_sec1_bytes()).unwrap()
    };
    let variants = [
        Operation::Transaction {
            signer: other_key,
            tx: tx(Some(ALICE), eth(1), vec![], 1),
        },
        tx_op(tx(Some(BOB), eth(1), vec![], 1)),
        tx_op(tx(Some(ALICE), eth(2), vec![], 1)),
        tx_op(tx(Some(ALICE), eth(1), vec![], 5)),
        tx_op(tx(Some(ALICE), eth(1), vec![0], 1)),
        // The same 32 bytes as a raw digest are another operation.
        Operation::RawDigest {
            signer: signer(),
            digest: base.signing_digest().unwrap(),
        },
    ];
    let hashes: BTreeSet<_> = variants.iter().map(Operation::hash).collect();
    assert_eq!(hashes.len(), variants.len());
    assert!(!hashes.contains(&base.hash()));
    // And a message whose bytes are another kind's payload is still
    // another operation (the kind byte and lengths separate them).
    let message = Operation::PersonalMessage {
        signer: signer(),
        message: [0xab; 32].to_vec(),
    };
    let digest = Operation::RawDigest {
        signer: signer(),
        digest: Digest32([0xab; 32]),
    };
    assert_ne!(message.hash(), digest.hash());
}

#[test]
fn operation_kinds_have_stable_names_and_codes() {
    let names: Vec<_> = OperationKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "transaction",
            "personal-message",
            "typed-data",
            "authorization",
            "raw-digest",
            "policy-change",
            "veto"
        ]
    );
    for (i, kind) in OperationKind::ALL.iter().enumerate() {
        assert_eq!(usize::from(kind.code()), i + 1);
        assert_eq!(OperationKind::from_name(kind.as_str()), Some(*kind));
    }
    assert_eq!(OperationKind::from_name("Transaction"), None);
}

// --- facts -------------------------------------------------------------------

#[test]
fn a_plain_payment_is_a_native_transfer_to_its_recipient() {
    let facts = Facts::of(&tx_op(tx(Some(ALICE), eth(2), vec![], 1)));
    assert_eq!(facts.chain_id, Some(U256::from_u64(1)));
    assert_eq!(facts.destinations, [addr(ALICE)]);
    assert_eq!(facts.transfers.len(), 1);
    assert_eq!(facts.transfers[0].asset, Asset::Native);
    assert_eq!(facts.transfers[0].recipient, Some(addr(ALICE)));
    assert_eq!(facts.transfers[0].amount, eth(2));
    assert_eq!(facts.call, None);
}

#[test]
fn erc20_transfer_transfer_from_and_approve_are_recognised() {
    let amount = U256::from_u64(5_000_000);
    let cases = [
        erc20_transfer(BOB, amount),
        calldata(
            ERC20_TRANSFER_FROM,
            &[word_address(ALICE), word_address(BOB), amount.to_be_bytes()],
        ),
        calldata(ERC20_APPROVE, &[word_address(BOB), amount.to_be_bytes()]),
    ];
    for data in cases {
        let facts = Facts::of(&tx_op(tx(Some(USDC), U256::ZERO, data.clone(), 1)));
        assert_eq!(facts.destinations, [addr(BOB)], "{}", hex::encode(&data));
        assert_eq!(facts.transfers.len(), 1);
        assert_eq!(facts.transfers[0].asset, Asset::Token(addr(USDC)));
        assert_eq!(facts.transfers[0].recipient, Some(addr(BOB)));
        assert_eq!(facts.transfers[0].amount, amount);
        assert_eq!(facts.call.unwrap().contract, addr(USDC));
        assert_eq!(
            facts.call.unwrap().selector,
            Some(data[..4].try_into().unwrap())
        );
    }
}

#[test]
fn calldata_that_is_not_exactly_a_token_transfer_is_a_plain_call() {
    let amount = U256::from_u64(5);
    let mut trailing = erc20_transfer(BOB, amount);
    trailing.push(0);
    let mut dirty = erc20_transfer(BOB, amount);
    dirty[4] = 1; // a high byte of the address word
    let short = erc20_transfer(BOB, amount)[..67].to_vec();
    let mut dirty_from = calldata(
        ERC20_TRANSFER_FROM,
        &[word_address(ALICE), word_address(BOB), amount.to_be_bytes()],
    );
    dirty_from[5] = 1;
    for data in [trailing, dirty, short, dirty_from, vec![0xa9, 0x05]] {
        let facts = Facts::of(&tx_op(tx(Some(USDC), U256::ZERO, data.clone(), 1)));
        assert!(facts.transfers.is_empty(), "{}", hex::encode(&data));
        assert_eq!(facts.destinations, [addr(USDC)]);
        let selector = data.get(..4).map(|s| <[u8; 4]>::try_from(s).unwrap());
        assert_eq!(facts.call.unwrap().selector, selector);
    }
}

#[test]
fn value_and_a_token_transfer_in_one_transaction_are_two_transfers() {
    let data = erc20_transfer(BOB, U256::from_u64(9));
    let facts = Facts::of(&tx_op(tx(Some(USDC), eth(1), data, 1)));
    assert_eq!(facts.destinations, [addr(USDC), addr(BOB)]);
    let assets: Vec<_> = facts.transfers.iter().map(|t| t.asset).collect();
    assert_eq!(assets, [Asset::Native, Asset::Token(addr(USDC))]);
}

#[test]
fn contract_creation_has_no_destination() {
    let facts = Facts::of(&tx_op(tx(None, eth(1), vec![0x60, 0x00], 1)));
    assert!(facts.creates_contract);
    assert!(facts.destinations.is_empty());
    assert_eq!(facts.transfers[0].recipient, None);
}

#[test]
fn a_permit_names_its_spender_and_domain() {
    let op = Operation::TypedData {
        signer: signer(),
        data: Box::new(permit(ROUTER)),
    };
    let facts = Facts::of(&op);
    let typed = facts.typed.unwrap();
    assert!(typed.is_permit);
    assert_eq!(typed.spender, Some(addr(ROUTER)));
    assert_eq!(typed.domain.name.as_deref(), Some("Permit2"));
    assert_eq!(facts.chain_id, Some(U256::from_u64(1)));
    assert_eq!(facts.destinations, [addr(ROUTER)]);
}

// --- policy documents ----------------------------------------------------------

fn base_policy() -> Value {
    json!({
        "schema": "custody-policy/v1",
        "wallet": "treasury",
        "groups": {
            "owners": {"role": "owner", "members": ["alice", "bob", "carol"]},
            "support": {"role": "support", "members": ["sam", "sue"]}
        },
        "governance": {"group": "owners", "threshold": 2},
        "rules": [
            {"id": "no-mixer", "effect": "deny", "when": {"destinationsAnyOf": [MIXER]}},
            {"id": "small-eth", "effect": "allow",
             "when": {"kinds": ["transaction"], "chainIds": [1], "assets": ["native"],
                      "maxAmount": eth(1).to_string()},
             "require": [{"group": "owners", "threshold": 1}]},
            {"id": "large-eth", "effect": "allow",
             "when": {"kinds": ["transaction"], "chainIds": [1], "assets": ["native"]},
             "require": [{"group": "owners", "threshold": 2}]},
            {"id": "usdc-to-bob", "effect": "allow",
             "when": {"calls": [{"contract": USDC, "selectors": ["0xa9059cbb"]}],
                      "destinationsWithin": [BOB]},
             "require": [{"group": "owners", "threshold": 1}]},
            {"id": "permit2-router", "effect": "allow",
             "when": {"kinds": ["typed-data"],
                      "typedData": {"domains": [{"name": "Permit2", "verifyingContract": PERMIT2}],
                                    "spenders": [ROUTER]}},
             "require": [{"group": "owners", "threshold": 1}]},
            {"id": "vault-sweep", "effect": "allow", "delaySeconds": 3600,
             "when": {"kinds": ["transaction"], "destinationsWithin": [ALICE], "chainIds": [10]}}
        ],
        "limits": [
            {"id": "eth-per-day", "asset": "native", "windowSeconds": 86400, "max": eth(5).to_string()},
            {"id": "usdc-per-hour", "asset": USDC, "windowSeconds": 3600, "max": "1000000000"}
        ]
    })
}

/// `address` in EIP-55 form with the case of its first letter flipped.
fn bad_checksum(address: &str) -> String {
    let good = addr(address).to_checksum();
    let i = good[2..].find(|c: char| c.is_ascii_alphabetic()).unwrap() + 2;
    let mut bad = good.clone().into_bytes();
    bad[i] ^= 0x20;
    String::from_utf8(bad).unwrap()
}

fn parse(doc: &Value) -> Policy {
    Policy::from_json(&serde_json::to_vec(doc).unwrap()).unwrap()
}

fn refusal(doc: &Value) -> (String, String) {
    match Policy::from_json(&serde_json::to_vec(doc).unwrap()) {
        Err(custody_policy::PolicyError::Invalid { path, reason }) => (path, reason),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("accepted: {doc}"),
    }
}

#[test]
fn a_policy_reads_and_its_canonical_form_is_a_fixed_point() {
    let policy = parse(&base_policy());
    assert_eq!(policy.wallet(), "treasury");
    assert_eq!(policy.rules().len(), 6);
    assert_eq!(policy.limits().len(), 2);
    assert!(!policy.allow_raw_digest());
    assert!(policy.require_user_verification());
    let canonical = policy.to_canonical_json();
    let again = Policy::from_json(&canonical).unwrap();
    assert_eq!(again, policy);
    assert_eq!(again.to_canonical_json(), canonical);
    assert_eq!(again.hash(), <[u8; 32]>::from(Sha256::digest(&canonical)));
    // Canonical: members sorted, no whitespace.
    let text = String::from_utf8(canonical).unwrap();
    assert!(!text.contains(' ') || text.contains("\"description\""));
    assert!(text.starts_with("{\"allowRawDigest\":false,\"governance\":"));
}

#[test]
fn two_spellings_of_one_policy_have_one_hash() {
    let a = parse(&base_policy());
    // Upper-case hex addresses, members in another order, whitespace.
    let text = serde_json::to_string_pretty(&base_policy())
        .unwrap()
        .replace(&ROUTER[2..], &ROUTER[2..].to_uppercase());
    let b = Policy::from_json(text.as_bytes()).unwrap();
    assert_eq!(a.hash(), b.hash());
    // A real change is another hash.
    let mut doc = base_policy();
    doc["governance"]["threshold"] = json!(3);
    assert_ne!(parse(&doc).hash(), a.hash());
}

#[test]
fn every_malformed_policy_is_refused_naming_the_member() {
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 21] = [
        ("$.extra", |d| d["extra"] = json!(1), "unknown member"),
        (
            "$.schema",
            |d| d["schema"] = json!("custody-policy/v2"),
            "not",
        ),
        (
            "$.governance.group",
            |d| d["governance"]["group"] = json!("nobody"),
            "no such group",
        ),
        (
            "$.governance.threshold",
            |d| d["governance"]["threshold"] = json!(4),
            "members",
        ),
        (
            "$.governance.threshold",
            |d| d["governance"]["threshold"] = json!(0),
            "members",
        ),
        (
            "$.groups.owners.members[3]",
            |d| d["groups"]["owners"]["members"] = json!(["a", "b", "c", "a"]),
            "repeated",
        ),
        (
            "$.rules[1].id",
            |d| d["rules"][1]["id"] = json!("no-mixer"),
            "another rule",
        ),
        (
            "$.rules[0]",
            |d| d["rules"][0]["require"] = json!([{"group": "owners", "threshold": 1}]),
            "deny rule",
        ),
        (
            "$.rules[1].effect",
            |d| d["rules"][1]["effect"] = json!("permit"),
            "allow or deny",
        ),
        (
            "$.rules[1].when.kinds[0]",
            |d| d["rules"][1]["when"]["kinds"] = json!(["policy-change"]),
            "governance",
        ),
        (
            "$.rules[1].when.kinds[0]",
            |d| d["rules"][1]["when"]["kinds"] = json!(["veto"]),
            "veto",
        ),
        (
            "$.rules[1].when.kinds[0]",
            |d| d["rules"][1]["when"]["kinds"] = json!(["transfer"]),
            "not one of",
        ),
        (
            "$.rules[1].when.maxAmount",
            |d| d["rules"][1]["when"]["maxAmount"] = json!("0x10"),
            "decimal",
        ),
        (
            "$.rules[1].when.maxAmount",
            |d| d["rules"][1]["when"]["maxAmount"] = json!("1".repeat(79)),
            "U256",
        ),
        (
            "$.rules[1].when.chainIds",
            |d| d["rules"][1]["when"]["chainIds"] = json!([]),
            "entries",
        ),
        (
            "$.rules[3].when.calls[0].selectors[0]",
            |d| d["rules"][3]["when"]["calls"][0]["selectors"] = json!(["a9059cbb"]),
            "8 hex",
        ),
        (
            "$.rules[3].when.destinationsWithin[0]",
            |d| d["rules"][3]["when"]["destinationsWithin"] = json!([bad_checksum(USDC)]),
            "checksum",
        ),
        (
            "$.rules[4].when.typedData.domains[0]",
            |d| d["rules"][4]["when"]["typedData"]["domains"] = json!([{}]),
            "at least one",
        ),
        (
            "$.rules[1].require[1]",
            |d| {
                d["rules"][1]["require"] = json!([{"group": "owners", "threshold": 1}, {"group": "owners", "threshold": 2}])
            },
            "twice",
        ),
        (
            "$.limits[0].windowSeconds",
            |d| d["limits"][0]["windowSeconds"] = json!(0),
            "zero",
        ),
        (
            "$.limits[1].id",
            |d| d["limits"][1]["id"] = json!("eth-per-day"),
            "another limit",
        ),
    ];
    for (path, edit, reason) in cases {
        let mut doc = base_policy();
        edit(&mut doc);
        let (found_path, found_reason) = refusal(&doc);
        assert_eq!(found_path, path, "{doc}");
        assert!(
            found_reason.contains(reason),
            "{path}: {found_reason:?} lacks {reason:?}"
        );
    }
}

#[test]
fn the_readme_policy_reads() {
    let readme = include_str!("../../../README.md");
    let start = readme.find("## Policies and approvals").unwrap();
    let block = &readme[start..];
    let json = &block[block.find("```json\n").unwrap() + 8..];
    let json = &json[..json.find("```").unwrap()];
    let policy = Policy::from_json(json.as_bytes()).unwrap();
    assert_eq!(policy.wallet(), "treasury");
    assert_eq!(policy.rules().len(), 3);
}

#[test]
fn a_member_given_twice_is_refused() {
    let text = br#"{"schema":"custody-policy/v1","wallet":"a","wallet":"b","groups":{"o":{"role":"owner","members":["x"]}},"governance":{"group":"o","threshold":1}}"#;
    let err = Policy::from_json(text).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    assert_eq!(err.kind(), "policy-invalid");
}

// --- evaluation ----------------------------------------------------------------

struct Eval {
    approvers: BTreeSet<String>,
    history: Vec<Spend>,
    now: u64,
    proposed_at: Option<u64>,
    vetoed_by: Option<String>,
}

impl Eval {
    fn new() -> Self {
        Self {
            approvers: BTreeSet::new(),
            history: Vec::new(),
            now: 1_800_000_000,
            proposed_at: None,
            vetoed_by: None,
        }
    }

    fn approved_by(mut self, who: &[&str]) -> Self {
        self.approvers = who.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    fn run(&self, policy: &Policy, op: &Operation) -> custody_policy::policy::Verdict {
        policy.evaluate(
            &Facts::of(op),
            &EvaluationInput {
                approvers: &self.approvers,
                history: &self.history,
                now: self.now,
                proposed_at: self.proposed_at,
                vetoed_by: self.vetoed_by.as_deref(),
            },
        )
    }
}

fn allow(rule: &str) -> Decision {
    Decision::Allow { rule: rule.into() }
}

fn deny(rule: &str) -> Decision {
    Decision::Deny { rule: rule.into() }
}

#[test]
fn an_explicit_deny_wins_over_every_allow() {
    let mut doc = base_policy();
    // An allow-everything rule that needs no approval, after the deny.
    doc["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "anything", "effect": "allow"}));
    let policy = parse(&doc);
    let op = tx_op(tx(Some(MIXER), U256::from_u64(1), vec![], 1));
    let verdict = Eval::new()
        .approved_by(&["alice", "bob", "carol"])
        .run(&policy, &op);
    assert_eq!(verdict.decision, deny("no-mixer"));
    // The trace shows the allow rule matched too, and still lost.
    assert!(
        verdict
            .trace
            .iter()
            .any(|s| s.rule == "anything" && s.result == StepResult::Matched)
    );
    // A token transfer to the mixer is denied as well.
    let op = tx_op(tx(
        Some(USDC),
        U256::ZERO,
        erc20_transfer(MIXER, U256::from_u64(1)),
        1,
    ));
    assert_eq!(Eval::new().run(&policy, &op).decision, deny("no-mixer"));
}

#[test]
fn anything_no_rule_matches_is_denied() {
    let policy = parse(&base_policy());
    let cases = [
        // Another chain.
        tx_op(tx(Some(ALICE), U256::from_u64(1), vec![], 5)),
        // A personal message: no rule names the kind.
        Operation::PersonalMessage {
            signer: signer(),
            message: b"hi".to_vec(),
        },
        // USDC to someone not on the list.
        tx_op(tx(
            Some(USDC),
            U256::ZERO,
            erc20_transfer(ALICE, U256::from_u64(1)),
            1,
        )),
    ];
    for op in cases {
        let verdict = Eval::new().approved_by(&["alice", "bob"]).run(&policy, &op);
        assert_eq!(verdict.decision, deny("no-rule-allows"), "{op:?}");
        assert_eq!(verdict.trace.last().unwrap().result, StepResult::Decided);
    }
}

#[test]
fn raw_digests_are_off_unless_opted_in() {
    let mut doc = base_policy();
    doc["rules"].as_array_mut().unwrap().push(
        json!({"id": "digests", "effect": "allow", "when": {"kinds": ["raw-digest"]},
                     "require": [{"group": "owners", "threshold": 2}]}),
    );
    let op = Operation::RawDigest {
        signer: signer(),
        digest: Digest32([1; 32]),
    };
    let eval = Eval::new().approved_by(&["alice", "bob"]);
    assert_eq!(eval.run(&parse(&doc), &op).decision, deny("allowRawDigest"));
    doc["allowRawDigest"] = json!(true);
    assert_eq!(eval.run(&parse(&doc), &op).decision, allow("digests"));
}

#[test]
fn approvals_are_counted_per_distinct_group_member() {
    let policy = parse(&base_policy());
    let op = tx_op(tx(Some(ALICE), eth(3), vec![], 1));
    // Two ETH is over small-eth's max: only large-eth (2 of owners) matches.
    let none = Eval::new().run(&policy, &op);
    assert_eq!(
        none.decision,
        Decision::ApprovalsRequired {
            rule: "large-eth".into(),
            missing: vec![("owners".into(), 2)]
        }
    );
    // Support members are not owners.
    let support = Eval::new()
        .approved_by(&["sam", "sue", "alice"])
        .run(&policy, &op);
    assert_eq!(
        support.decision,
        Decision::ApprovalsRequired {
            rule: "large-eth".into(),
            missing: vec![("owners".into(), 1)]
        }
    );
    let two = Eval::new()
        .approved_by(&["alice", "carol"])
        .run(&policy, &op);
    assert_eq!(two.decision, allow("large-eth"));
}

#[test]
fn a_satisfied_allow_rule_decides_and_the_closest_is_named() {
    let policy = parse(&base_policy());
    let small = tx_op(tx(Some(ALICE), eth(1), vec![], 1));
    // Both small-eth (1 owner) and large-eth (2 owners) match; with no
    // approval the one needing fewer is named.
    let verdict = Eval::new().run(&policy, &small);
    assert_eq!(
        verdict.decision,
        Decision::ApprovalsRequired {
            rule: "small-eth".into(),
            missing: vec![("owners".into(), 1)]
        }
    );
    let verdict = Eval::new().approved_by(&["bob"]).run(&policy, &small);
    assert_eq!(verdict.decision, allow("small-eth"));
    let steps: Vec<_> = verdict.trace.iter().map(|s| s.rule.as_str()).collect();
    assert_eq!(
        steps,
        [
            "no-mixer",
            "small-eth",
            "large-eth",
            "usdc-to-bob",
            "permit2-router",
            "vault-sweep",
            "eth-per-day",
            "small-eth",
            "large-eth",
            "small-eth"
        ]
    );
    assert_eq!(
        verdict.trace[0].result,
        StepResult::NotMatched {
            condition: "destinationsAnyOf"
        }
    );
}

#[test]
fn a_per_transaction_limit_is_a_max_amount() {
    let policy = parse(&base_policy());
    let just = tx_op(tx(Some(ALICE), eth(1), vec![], 1));
    let over = tx_op(tx(
        Some(ALICE),
        eth(1).checked_add(U256::from_u64(1)).unwrap(),
        vec![],
        1,
    ));
    let eval = Eval::new().approved_by(&["alice"]);
    assert_eq!(eval.run(&policy, &just).decision, allow("small-eth"));
    let verdict = eval.run(&policy, &over);
    assert_eq!(
        verdict.trace[1].result,
        StepResult::NotMatched {
            condition: "maxAmount"
        }
    );
}

#[test]
fn a_rolling_window_counts_what_left_within_it() {
    let policy = parse(&base_policy());
    let op = tx_op(tx(Some(ALICE), eth(1), vec![], 1));
    let mut eval = Eval::new().approved_by(&["alice"]);
    let day = 86_400;
    // 4 ETH in the window: 4 + 1 = 5, at the limit, allowed.
    eval.history = vec![
        Spend {
            at: eval.now - 10,
            asset: Asset::Native,
            amount: eth(3),
        },
        Spend {
            at: eval.now - day + 1,
            asset: Asset::Native,
            amount: eth(1),
        },
        // Outside the window (exactly one day old), and another asset.
        Spend {
            at: eval.now - day,
            asset: Asset::Native,
            amount: eth(100),
        },
        Spend {
            at: eval.now,
            asset: Asset::Token(addr(USDC)),
            amount: eth(100),
        },
    ];
    let verdict = eval.run(&policy, &op);
    assert_eq!(verdict.decision, allow("small-eth"));
    assert!(verdict.trace.contains(&custody_policy::policy::Step {
        rule: "eth-per-day".into(),
        result: StepResult::WithinLimit { total: eth(5) },
    }));
    // One wei more in the window: denied by the limit, naming it.
    eval.history.push(Spend {
        at: eval.now - 5,
        asset: Asset::Native,
        amount: U256::from_u64(1),
    });
    let verdict = eval.run(&policy, &op);
    assert_eq!(verdict.decision, deny("eth-per-day"));
    // A spend recorded in the future (another replica's clock) counts.
    eval.history.pop();
    eval.history.push(Spend {
        at: eval.now + 60,
        asset: Asset::Native,
        amount: U256::from_u64(1),
    });
    assert_eq!(eval.run(&policy, &op).decision, deny("eth-per-day"));
}

#[test]
fn token_limits_count_recognised_transfers() {
    let policy = parse(&base_policy());
    let op = |amount: u64| {
        tx_op(tx(
            Some(USDC),
            U256::ZERO,
            erc20_transfer(BOB, U256::from_u64(amount)),
            1,
        ))
    };
    let mut eval = Eval::new().approved_by(&["carol"]);
    eval.history = vec![Spend {
        at: eval.now - 100,
        asset: Asset::Token(addr(USDC)),
        amount: U256::from_u64(600_000_000),
    }];
    assert_eq!(
        eval.run(&policy, &op(400_000_000)).decision,
        allow("usdc-to-bob")
    );
    assert_eq!(
        eval.run(&policy, &op(400_000_001)).decision,
        deny("usdc-per-hour")
    );
    // An unlimited approval exceeds every finite limit.
    let approve = calldata(ERC20_APPROVE, &[word_address(BOB), U256::MAX.to_be_bytes()]);
    let mut doc = base_policy();
    doc["rules"][3]["when"]["calls"][0]["selectors"] = json!(["0xa9059cbb", "0x095ea7b3"]);
    let verdict = Eval::new()
        .approved_by(&["carol"])
        .run(&parse(&doc), &tx_op(tx(Some(USDC), U256::ZERO, approve, 1)));
    assert_eq!(verdict.decision, deny("usdc-per-hour"));
}

#[test]
fn a_sum_past_two_to_the_256_exceeds_every_limit() {
    let mut doc = base_policy();
    doc["limits"][0]["max"] = json!(U256::MAX.to_string());
    let policy = parse(&doc);
    let op = tx_op(tx(Some(ALICE), U256::from_u64(2), vec![], 1));
    let mut eval = Eval::new().approved_by(&["alice", "bob"]);
    eval.history = vec![Spend {
        at: eval.now,
        asset: Asset::Native,
        amount: U256::MAX,
    }];
    // 2^256 - 1 + 2 overflows: it must not wrap to 1 and pass.
    assert_eq!(eval.run(&policy, &op).decision, deny("eth-per-day"));
    eval.history[0].amount = {
        let mut b = U256::MAX.to_be_bytes();
        b[31] = 0xfd; // 2^256 - 3: plus 2 is 2^256 - 1, exactly the max
        U256::from_be_bytes(b)
    };
    assert_eq!(eval.run(&policy, &op).decision, allow("small-eth"));
}

#[test]
fn contract_calls_are_allowed_by_selector() {
    let policy = parse(&base_policy());
    let eval = Eval::new().approved_by(&["alice"]);
    let good = tx_op(tx(
        Some(USDC),
        U256::ZERO,
        erc20_transfer(BOB, U256::from_u64(1)),
        1,
    ));
    assert_eq!(eval.run(&policy, &good).decision, allow("usdc-to-bob"));
    // The same call to another contract, or another selector.
    let elsewhere = tx_op(tx(
        Some(ROUTER),
        U256::ZERO,
        erc20_transfer(BOB, U256::from_u64(1)),
        1,
    ));
    assert_eq!(
        eval.run(&policy, &elsewhere).decision,
        deny("no-rule-allows")
    );
    let approve = calldata(ERC20_APPROVE, &[word_address(BOB), [0; 32]]);
    let other = tx_op(tx(Some(USDC), U256::ZERO, approve, 1));
    let verdict = eval.run(&policy, &other);
    assert_eq!(verdict.decision, deny("no-rule-allows"));
    assert_eq!(
        verdict.trace[3].result,
        StepResult::NotMatched { condition: "calls" }
    );
}

#[test]
fn contract_creation_matches_only_a_rule_that_says_so() {
    let mut doc = base_policy();
    doc["rules"].as_array_mut().unwrap().push(json!({
        "id": "deploy", "effect": "allow",
        "when": {"kinds": ["transaction"], "contractCreation": true, "maxAmount": "0"},
        "require": [{"group": "owners", "threshold": 3}]
    }));
    let policy = parse(&doc);
    let deploy = tx_op(tx(None, U256::ZERO, vec![0x60, 0x00], 1));
    let eval = Eval::new().approved_by(&["alice", "bob", "carol"]);
    assert_eq!(eval.run(&policy, &deploy).decision, allow("deploy"));
    // A payment is not a deployment.
    let verdict = eval.run(
        &policy,
        &tx_op(tx(Some(ALICE), U256::from_u64(1), vec![], 7)),
    );
    assert_eq!(verdict.decision, deny("no-rule-allows"));
}

#[test]
fn calldata_and_contract_creation_need_a_rule_that_names_them() {
    // small-eth allows native payments; a payment that also carries
    // calldata does something the rule cannot see, and a zero-value call
    // moves no native asset at all: neither matches it.
    let policy = parse(&base_policy());
    let eval = Eval::new().approved_by(&["alice", "bob", "carol"]);
    for op in [
        tx_op(tx(Some(ROUTER), eth(1), vec![0x12, 0x34, 0x56, 0x78], 1)),
        tx_op(tx(
            Some(ROUTER),
            U256::ZERO,
            vec![0x12, 0x34, 0x56, 0x78],
            1,
        )),
        tx_op(tx(None, U256::ZERO, vec![0x60, 0x00], 1)),
        tx_op(tx(None, U256::from_u64(1), vec![0x60, 0x00], 1)),
    ] {
        let verdict = eval.run(&policy, &op);
        assert_eq!(verdict.decision, deny("no-rule-allows"), "{op:?}");
        let small = &verdict.trace[1];
        assert!(
            matches!(
                small.result,
                StepResult::NotMatched {
                    condition: "calls" | "contractCreation" | "assets"
                }
            ),
            "{small:?}"
        );
    }
}

#[test]
fn permits_are_allowed_only_for_listed_domains_and_spenders() {
    let policy = parse(&base_policy());
    let eval = Eval::new().approved_by(&["alice"]);
    let typed = |data: TypedData| Operation::TypedData {
        signer: signer(),
        data: Box::new(data),
    };
    assert_eq!(
        eval.run(&policy, &typed(permit(ROUTER))).decision,
        allow("permit2-router")
    );
    let verdict = eval.run(&policy, &typed(permit(BOB)));
    assert_eq!(verdict.decision, deny("no-rule-allows"));
    assert_eq!(
        verdict.trace[4].result,
        StepResult::NotMatched {
            condition: "typedData.spenders"
        }
    );
    // Another domain (a look-alike contract).
    let mut doc = permit(ROUTER).to_json();
    doc["domain"]["verifyingContract"] = json!(BOB);
    let verdict = eval.run(&policy, &typed(TypedData::from_json_value(&doc).unwrap()));
    assert_eq!(
        verdict.trace[4].result,
        StepResult::NotMatched {
            condition: "typedData.domains"
        }
    );
}

#[test]
fn a_delayed_rule_waits_and_can_be_vetoed() {
    let policy = parse(&base_policy());
    let op = tx_op(tx(Some(ALICE), eth(2), vec![], 10));
    let mut eval = Eval::new();
    assert_eq!(
        eval.run(&policy, &op).decision,
        Decision::Delayed {
            rule: "vault-sweep".into(),
            until: eval.now + 3600
        }
    );
    eval.proposed_at = Some(eval.now - 3599);
    assert_eq!(
        eval.run(&policy, &op).decision,
        Decision::Delayed {
            rule: "vault-sweep".into(),
            until: eval.now + 1
        }
    );
    eval.proposed_at = Some(eval.now - 3600);
    assert_eq!(eval.run(&policy, &op).decision, allow("vault-sweep"));
    // The delay does not lift a limit: 9 ETH is over the daily one.
    let large = tx_op(tx(Some(ALICE), eth(9), vec![], 10));
    assert_eq!(eval.run(&policy, &large).decision, deny("eth-per-day"));
    eval.vetoed_by = Some("carol".into());
    assert_eq!(
        eval.run(&policy, &op).decision,
        Decision::Vetoed {
            rule: "vault-sweep".into(),
            by: "carol".into()
        }
    );
}

#[test]
fn a_rule_that_allows_now_beats_a_delayed_one() {
    // Found by the stricter-policy property: if the first satisfied rule
    // were taken, removing a delayed rule would turn "delayed" into
    // "allowed", so a smaller policy would allow more.
    let mut doc = base_policy();
    let rules = doc["rules"].as_array_mut().unwrap();
    rules.insert(
        1,
        json!({"id": "slow", "effect": "allow", "delaySeconds": 600,
               "when": {"kinds": ["transaction"], "assets": ["native"]}}),
    );
    let policy = parse(&doc);
    let op = tx_op(tx(Some(ALICE), eth(1), vec![], 1));
    let eval = Eval::new();
    assert_eq!(
        eval.run(&policy, &op).decision,
        Decision::Delayed {
            rule: "slow".into(),
            until: eval.now + 600
        }
    );
    let eval = eval.approved_by(&["ann", "alice"]);
    assert_eq!(eval.run(&policy, &op).decision, allow("small-eth"));
}

#[test]
fn governance_counts_owners_only() {
    let policy = parse(&base_policy());
    let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
    assert_eq!(policy.governance_missing(&set(&[])), 2);
    assert_eq!(policy.governance_missing(&set(&["sam", "sue", "alice"])), 1);
    assert_eq!(policy.governance_missing(&set(&["alice", "carol"])), 0);
}
