//! Properties of policy evaluation over random policies and operations —
//! a policy never approves what a stricter policy denies; limit sums never
//! overflow — and the published JSON Schema checked against the parser by
//! an independent validator (Python `jsonschema`, when
//! `CUSTODY_TEST_PYTHON` has it).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure is a test failure"
)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};

use custody_core::{Digest32, PublicKey};
use custody_eth::{Address, Transaction, TxEip1559, U256};
use custody_policy::facts::{Asset, ERC20_APPROVE, ERC20_TRANSFER, Facts};
use custody_policy::operation::Operation;
use custody_policy::policy::{Decision, EvaluationInput, POLICY_SCHEMA, Policy, Spend};
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

const PEOPLE: [&str; 5] = ["ann", "ben", "cat", "dan", "eve"];
const ADDRESSES: [&str; 3] = [
    "0x1111111111111111111111111111111111111111",
    "0x2222222222222222222222222222222222222222",
    "0x3333333333333333333333333333333333333333",
];
const TOKEN: &str = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
const NOW: u64 = 1_800_000_000;

fn amounts() -> impl Strategy<Value = U256> {
    prop_oneof![
        Just(U256::ZERO),
        (1u64..1000).prop_map(U256::from_u64),
        (1u64..10).prop_map(|n| U256::from_u64(n * 1_000_000_000_000_000_000)),
        Just(U256::MAX),
        any::<[u8; 32]>().prop_map(U256::from_be_bytes),
    ]
}

fn amount_text() -> impl Strategy<Value = String> {
    amounts().prop_map(|a| a.to_string())
}

fn subset<T: Clone + std::fmt::Debug + 'static>(
    items: &'static [T],
) -> impl Strategy<Value = Vec<T>> {
    proptest::sample::subsequence(items.to_vec(), 1..=items.len())
}

fn conditions() -> impl Strategy<Value = Value> {
    (
        proptest::option::weighted(
            0.25,
            subset(&[
                "transaction",
                "personal-message",
                "typed-data",
                "raw-digest",
            ]),
        ),
        proptest::option::weighted(0.25, subset(&[1u64, 10])),
        proptest::option::weighted(0.25, subset(&ADDRESSES)),
        proptest::option::weighted(0.25, subset(&ADDRESSES)),
        proptest::option::weighted(0.25, subset(&["native", TOKEN])),
        proptest::option::weighted(0.25, amount_text()),
        proptest::option::weighted(0.25, subset(&["0xa9059cbb", "0x095ea7b3", "0x12345678"])),
        proptest::option::weighted(0.25, any::<bool>()),
    )
        .prop_map(
            |(kinds, chains, within, any_of, assets, max, selectors, creation)| {
                let mut c = serde_json::Map::new();
                if let Some(v) = kinds {
                    c.insert("kinds".into(), json!(v));
                }
                if let Some(v) = chains {
                    c.insert("chainIds".into(), json!(v));
                }
                if let Some(v) = within {
                    c.insert("destinationsWithin".into(), json!(v));
                }
                if let Some(v) = any_of {
                    c.insert("destinationsAnyOf".into(), json!(v));
                }
                if let Some(v) = assets {
                    c.insert("assets".into(), json!(v));
                }
                if let Some(v) = max {
                    c.insert("maxAmount".into(), json!(v));
                }
                if let Some(v) = selectors {
                    c.insert("calls".into(), json!([{"contract": TOKEN, "selectors": v}]));
                }
                if let Some(v) = creation {
                    c.insert("contractCreation".into(), json!(v));
                }
                Value::Object(c)
            },
        )
}

fn rule(index: usize) -> impl Strategy<Value = Value> {
    (proptest::bool::weighted(0.2), conditions(), 0u32..4, 0u32..3, prop_oneof![Just(0u64), Just(60u64)]).prop_map(
        move |(deny, when, owners, support, delay)| {
            let mut r = json!({"id": format!("r{index}"), "effect": if deny { "deny" } else { "allow" }, "when": when});
            if !deny {
                let mut require = Vec::new();
                if owners > 0 {
                    require.push(json!({"group": "owners", "threshold": owners}));
                }
                if support > 0 {
                    require.push(json!({"group": "support", "threshold": support}));
                }
                if !require.is_empty() {
                    r["require"] = json!(require);
                }
                if delay > 0 {
                    r["delaySeconds"] = json!(delay);
                }
            }
            r
        },
    )
}

fn policies() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(0usize..6, 1..6),
        proptest::collection::vec((prop_oneof![Just("native"), Just(TOKEN)], 1u64..200_000, amount_text()), 0..2),
        any::<bool>(),
    )
        .prop_flat_map(|(rule_slots, limits, raw)| {
            let rules: Vec<_> = (0..rule_slots.len()).map(rule).collect();
            (rules, Just(limits), Just(raw))
        })
        .prop_map(|(rules, limits, raw)| {
            let limits: Vec<_> = limits
                .into_iter()
                .enumerate()
                .map(|(i, (asset, window, max))| {
                    json!({"id": format!("l{i}"), "asset": asset, "windowSeconds": window, "max": max})
                })
                .collect();
            json!({
                "schema": "custody-policy/v1",
                "wallet": "w",
                "groups": {
                    "owners": {"role": "owner", "members": ["ann", "ben", "cat"]},
                    "support": {"role": "support", "members": ["dan", "eve"]}
                },
                "governance": {"group": "owners", "threshold": 2},
                "rules": rules,
                "limits": limits,
                "allowRawDigest": raw
            })
        })
}

fn signer() -> PublicKey {
    let secret = k256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    PublicKey::from_sec1_bytes(&secret.public_key().to_sec1_bytes()).unwrap()
}

fn operations() -> impl Strategy<Value = Operation> {
    let to = prop_oneof![
        Just(None),
        proptest::sample::select(ADDRESSES.to_vec()).prop_map(Some),
        Just(Some(TOKEN)),
    ];
    let data = prop_oneof![
        Just(Vec::new()),
        (
            proptest::sample::select(ADDRESSES.to_vec()),
            amounts(),
            any::<bool>()
        )
            .prop_map(|(who, amount, approve)| {
                let mut d = if approve {
                    ERC20_APPROVE
                } else {
                    ERC20_TRANSFER
                }
                .to_vec();
                d.extend_from_slice(&[0; 12]);
                d.extend_from_slice(Address::parse(who).unwrap().as_bytes());
                d.extend_from_slice(&amount.to_be_bytes());
                d
            }),
        proptest::collection::vec(any::<u8>(), 1..8),
    ];
    prop_oneof![
        4 => (to, amounts(), data, prop_oneof![Just(1u64), Just(10), Just(5)]).prop_map(
            |(to, value, data, chain_id)| Operation::Transaction {
                signer: signer(),
                tx: Transaction::Eip1559(TxEip1559 {
                    chain_id,
                    nonce: 0,
                    max_priority_fee_per_gas: U256::ZERO,
                    max_fee_per_gas: U256::ZERO,
                    gas_limit: 21_000,
                    to: to.map(|a| Address::parse(a).unwrap()),
                    value,
                    data,
                    access_list: Default::default(),
                }),
            }
        ),
        1 => any::<[u8; 32]>().prop_map(|d| Operation::RawDigest { signer: signer(), digest: Digest32(d) }),
        1 => proptest::collection::vec(any::<u8>(), 0..8)
            .prop_map(|m| Operation::PersonalMessage { signer: signer(), message: m }),
    ]
}

fn histories() -> impl Strategy<Value = Vec<Spend>> {
    proptest::collection::vec(
        (
            0u64..300_000,
            prop_oneof![
                Just(Asset::Native),
                Just(Asset::Token(Address::parse(TOKEN).unwrap()))
            ],
            amounts(),
        )
            .prop_map(|(ago, asset, amount)| Spend {
                at: NOW - ago,
                asset,
                amount,
            }),
        0..4,
    )
}

fn approvers() -> impl Strategy<Value = BTreeSet<String>> {
    proptest::sample::subsequence(PEOPLE.to_vec(), 0..=PEOPLE.len())
        .prop_map(|v| v.into_iter().map(str::to_owned).collect())
}

/// A stricter version of `doc`: it allows nothing `doc` does not.
fn stricter(doc: Value) -> impl Strategy<Value = Value> {
    let rules = doc["rules"].as_array().map_or(0, Vec::len);
    (0usize..8, 0..rules.max(1), rule(99), amount_text(), conditions()).prop_map(
        move |(how, which, extra, max, extra_when)| {
            let mut d = doc.clone();
            let rules = d["rules"].as_array_mut().unwrap();
            let allow_at = rules.get(which).filter(|r| r["effect"] == "allow").is_some();
            match how {
                // Another rule, made a deny.
                0 => {
                    let mut extra = extra;
                    extra["effect"] = json!("deny");
                    extra.as_object_mut().unwrap().remove("require");
                    extra.as_object_mut().unwrap().remove("delaySeconds");
                    rules.push(extra);
                }
                // An allow rule removed.
                1 if allow_at => {
                    rules.remove(which);
                }
                // One more owner required.
                2 if allow_at => {
                    let r = &mut rules[which];
                    let require = r["require"].as_array().cloned().unwrap_or_default();
                    let owners = require
                        .iter()
                        .find(|q| q["group"] == "owners")
                        .map_or(0, |q| q["threshold"].as_u64().unwrap());
                    if owners < 3 {
                        let mut require: Vec<_> =
                            require.into_iter().filter(|q| q["group"] != "owners").collect();
                        require.push(json!({"group": "owners", "threshold": owners + 1}));
                        r["require"] = json!(require);
                    }
                }
                // A lower (or new) per-transaction maximum.
                3 if allow_at => {
                    let r = &mut rules[which];
                    let new = U256::parse(&max).unwrap();
                    let old = r["when"]["maxAmount"].as_str().map(|s| U256::parse(s).unwrap());
                    if old.is_none_or(|old| new < old) {
                        r["when"]["maxAmount"] = json!(max);
                    }
                }
                // A new limit.
                4 => {
                    let limits = d["limits"].as_array_mut().unwrap();
                    limits.push(json!({"id": "extra", "asset": "native", "windowSeconds": 3600, "max": max}));
                }
                // A delay on an allow rule.
                5 if allow_at => {
                    rules[which]["delaySeconds"] = json!(3600);
                }
                // Conditions added to an allow rule (each absent one only).
                // Not `calls` or `contractCreation`: for an allow rule they
                // are permissions (calldata and creations match no allow
                // rule without them), so adding one is no restriction.
                6 if allow_at => {
                    let when = rules[which]["when"].as_object_mut().unwrap();
                    for (k, v) in extra_when.as_object().unwrap() {
                        if k != "calls" && k != "contractCreation" {
                            when.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
                7 => {
                    d["allowRawDigest"] = json!(false);
                }
                _ => {}
            }
            d
        },
    )
}

fn evaluate(
    policy: &Policy,
    op: &Operation,
    approvers: &BTreeSet<String>,
    history: &[Spend],
) -> Decision {
    policy
        .evaluate(
            &Facts::of(op),
            &EvaluationInput {
                approvers,
                history,
                now: NOW,
                proposed_at: None,
                vetoed_by: None,
            },
        )
        .decision
}

fn read(doc: &Value) -> Policy {
    Policy::from_json(&serde_json::to_vec(doc).unwrap()).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

#[test]
fn a_policy_never_approves_what_a_stricter_policy_denies() {
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        ..Config::default()
    });
    let strategy = policies()
        .prop_flat_map(|doc| (stricter(doc.clone()), Just(doc)))
        .prop_flat_map(|(strict, doc)| {
            (
                Just(doc),
                Just(strict),
                operations(),
                approvers(),
                histories(),
            )
        });
    let allowed_by_both = std::cell::Cell::new(0u32);
    runner
        .run(&strategy, |(doc, strict, op, approvers, history)| {
            let base = read(&doc);
            let strict = read(&strict);
            let strict_says = evaluate(&strict, &op, &approvers, &history);
            let base_says = evaluate(&base, &op, &approvers, &history);
            if strict_says.is_allow() {
                prop_assert!(
                    base_says.is_allow(),
                    "the stricter policy allows ({strict_says:?}) what the base denies ({base_says:?})"
                );
                allowed_by_both.set(allowed_by_both.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    // The property is not vacuous: many cases were allowed.
    let allowed = allowed_by_both.get();
    assert!(allowed > 45, "only {allowed} allowed");
}

/// `a + b` exactly, in five 64-bit limbs (the test's own arithmetic).
fn wide_add(a: [u64; 5], b: &U256) -> [u64; 5] {
    let bytes = b.to_be_bytes();
    let mut out = [0u64; 5];
    let mut carry = 0u128;
    for i in 0..5 {
        let limb = if i < 4 {
            u64::from_be_bytes(bytes[32 - 8 * (i + 1)..32 - 8 * i].try_into().unwrap())
        } else {
            0
        };
        let t = u128::from(a[i]) + u128::from(limb) + carry;
        out[i] = t as u64;
        carry = t >> 64;
    }
    out
}

fn wide_gt(a: [u64; 5], b: &U256) -> bool {
    let b = wide_add([0; 5], b);
    for i in (0..5).rev() {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    false
}

#[test]
fn limit_sums_never_overflow_and_velocity_sums_from_records_neither() {
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        ..Config::default()
    });
    let strategy = (
        amounts(),
        amounts(),
        proptest::collection::vec((0u64..7200, amounts()), 0..6),
    );
    runner
        .run(&strategy, |(max, value, spends)| {
            let doc = json!({
                "schema": "custody-policy/v1", "wallet": "w",
                "groups": {"o": {"role": "owner", "members": ["ann"]}},
                "governance": {"group": "o", "threshold": 1},
                "rules": [{"id": "pay", "effect": "allow", "when": {"assets": ["native"]}}],
                "limits": [{"id": "cap", "asset": "native", "windowSeconds": 3600, "max": max.to_string()}]
            });
            let policy = read(&doc);
            let history: Vec<_> = spends
                .iter()
                .map(|(ago, amount)| Spend { at: NOW - ago, asset: Asset::Native, amount: *amount })
                .collect();
            let op = Operation::Transaction {
                signer: signer(),
                tx: Transaction::Eip1559(TxEip1559 {
                    chain_id: 1,
                    nonce: 0,
                    max_priority_fee_per_gas: U256::ZERO,
                    max_fee_per_gas: U256::ZERO,
                    gas_limit: 21_000,
                    to: Some(Address::parse(ADDRESSES[0]).unwrap()),
                    value,
                    data: Vec::new(),
                    access_list: Default::default(),
                }),
            };
            let mut exact = wide_add([0; 5], &value);
            for (ago, amount) in &spends {
                if *ago < 3600 {
                    exact = wide_add(exact, amount);
                }
            }
            let over = wide_gt(exact, &max);
            // The same spends as a policy node counts them from the
            // signatures' audit records (custody_policy::velocity).
            let log = custody_core::MemoryAuditLog::new();
            for spend in &history {
                let event = custody_core::AuditEvent::new(
                    custody_core::AuditOp::SIGN,
                    custody_core::AuditOutcome::Success,
                )
                .with_wallet("w")
                .with_field("verdict", "00".repeat(32))
                .unwrap()
                .with_field("spend-at", spend.at.to_string())
                .unwrap()
                .with_field("spend", format!("native:{}", spend.amount))
                .unwrap();
                log.append(event).unwrap();
            }
            let recorded = custody_policy::velocity::spends_of_records(&log.records()).unwrap();
            prop_assert_eq!(&recorded, &history);
            let decision = evaluate(&policy, &op, &BTreeSet::new(), &history);
            let expected = if value.is_zero() || !over {
                Decision::Allow { rule: "pay".into() }
            } else {
                Decision::Deny { rule: "cap".into() }
            };
            prop_assert_eq!(decision, expected);
            Ok(())
        })
        .unwrap();
}

// --- the published schema, checked by an independent validator ---------------

/// Runs Python `jsonschema` (Draft 2020-12) over `docs`: whether each is
/// valid under [`POLICY_SCHEMA`].
fn schema_says(docs: &[Value]) -> Option<Vec<bool>> {
    let Some(python) = std::env::var_os("CUSTODY_TEST_PYTHON") else {
        println!("skipped: CUSTODY_TEST_PYTHON is not set");
        return None;
    };
    let probe = Command::new(&python)
        .args(["-c", "import jsonschema"])
        .output()
        .unwrap();
    if !probe.status.success() {
        if std::env::var_os("CI").is_some() {
            panic!("CI must install jsonschema in CUSTODY_TEST_PYTHON");
        }
        println!("skipped: no jsonschema in {python:?}");
        return None;
    }
    let script = r#"
import json, sys
from jsonschema import Draft202012Validator, FormatChecker
data = json.load(sys.stdin)
Draft202012Validator.check_schema(data["schema"])
v = Draft202012Validator(data["schema"])
print(json.dumps([v.is_valid(d) for d in data["docs"]]))
"#;
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input =
        json!({"schema": serde_json::from_str::<Value>(POLICY_SCHEMA).unwrap(), "docs": docs});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn the_schema_accepts_every_policy_the_parser_accepts() {
    let mut runner = TestRunner::new(Config {
        cases: 1,
        ..Config::default()
    });
    let mut docs = Vec::new();
    for _ in 0..300 {
        let doc = policies().new_tree(&mut runner).unwrap().current();
        // What the parser reads, and its canonical form.
        let policy = read(&doc);
        docs.push(doc);
        docs.push(policy.to_json());
    }
    let Some(verdicts) = schema_says(&docs) else {
        return;
    };
    for (doc, valid) in docs.iter().zip(verdicts) {
        assert!(valid, "the schema refuses a policy the parser reads: {doc}");
    }
}

#[test]
fn the_schema_and_the_parser_refuse_the_same_malformed_policies() {
    let base = json!({
        "schema": "custody-policy/v1", "wallet": "w",
        "groups": {"owners": {"role": "owner", "members": ["ann", "ben"]}},
        "governance": {"group": "owners", "threshold": 1},
        "rules": [{"id": "r", "effect": "allow", "when": {"kinds": ["transaction"], "maxAmount": "5"},
                   "require": [{"group": "owners", "threshold": 1}]}],
        "limits": [{"id": "l", "asset": "native", "windowSeconds": 60, "max": "9"}]
    });
    type Edit = fn(&mut Value);
    // Structural faults: both refuse.
    let structural: Vec<Edit> = vec![
        |d| d["extra"] = json!(true),
        |d| {
            d.as_object_mut().unwrap().remove("governance");
        },
        |d| d["schema"] = json!("custody-policy/v0"),
        |d| d["wallet"] = json!(""),
        |d| d["wallet"] = json!("a\u{7}b"),
        |d| d["groups"] = json!({}),
        |d| d["groups"]["owners"]["members"] = json!([]),
        |d| d["groups"]["owners"]["members"] = json!(["ann", "ann"]),
        |d| d["groups"]["owners"]["extra"] = json!(1),
        |d| d["governance"]["threshold"] = json!(0),
        |d| d["governance"]["threshold"] = json!("1"),
        |d| d["rules"][0]["effect"] = json!("maybe"),
        |d| d["rules"][0]["when"]["kinds"] = json!(["policy-change"]),
        |d| d["rules"][0]["when"]["kinds"] = json!([]),
        |d| d["rules"][0]["when"]["maxAmount"] = json!(5),
        |d| d["rules"][0]["when"]["maxAmount"] = json!("-5"),
        |d| d["rules"][0]["when"]["maxAmount"] = json!("0x5"),
        |d| d["rules"][0]["when"]["chainIds"] = json!([-1]),
        |d| d["rules"][0]["when"]["destinationsWithin"] = json!(["0x123"]),
        |d| d["rules"][0]["when"]["calls"] = json!([{"contract": TOKEN, "selectors": ["0x1234"]}]),
        |d| d["rules"][0]["when"]["typedData"] = json!({"domains": [{}]}),
        |d| d["rules"][0]["when"]["unknown"] = json!(1),
        |d| d["rules"][0]["require"] = json!([]),
        |d| {
            d["rules"][0]["effect"] = json!("deny");
        },
        |d| d["rules"][0]["delaySeconds"] = json!(-1),
        |d| d["limits"][0]["windowSeconds"] = json!(0),
        |d| {
            d["limits"][0].as_object_mut().unwrap().remove("max");
        },
        |d| d["limits"][0]["asset"] = json!("ether"),
        |d| d["allowRawDigest"] = json!("no"),
    ];
    // Semantic faults a JSON Schema cannot express: the parser refuses,
    // the schema accepts (the README says so).
    let semantic: Vec<Edit> = vec![
        |d| d["governance"]["group"] = json!("nobody"),
        |d| d["governance"]["threshold"] = json!(3),
        |d| {
            let r = d["rules"][0].clone();
            d["rules"].as_array_mut().unwrap().push(r);
        },
        |d| d["rules"][0]["when"]["maxAmount"] = json!("9".repeat(78)),
        |d| {
            d["rules"][0]["when"]["destinationsWithin"] =
                json!(["0xA0b86991c6218b36c1d19d4a2e9eb0ce3606eB48"])
        },
        |d| {
            d["rules"][0]["require"] =
                json!([{"group": "owners", "threshold": 1}, {"group": "owners", "threshold": 2}])
        },
    ];
    let mut docs = vec![base.clone()];
    for edit in structural.iter().chain(&semantic) {
        let mut d = base.clone();
        edit(&mut d);
        assert!(
            Policy::from_json(&serde_json::to_vec(&d).unwrap()).is_err(),
            "the parser accepts {d}"
        );
        docs.push(d);
    }
    assert!(Policy::from_json(&serde_json::to_vec(&base).unwrap()).is_ok());
    let Some(verdicts) = schema_says(&docs) else {
        return;
    };
    assert!(verdicts[0], "the schema refuses the base policy");
    for (i, (doc, valid)) in docs.iter().zip(&verdicts).enumerate().skip(1) {
        let is_semantic = i > structural.len();
        assert_eq!(*valid, is_semantic, "schema verdict {valid} for {doc}");
    }
}
