//! Account recovery through the built binary (issue #17, item 5): an
//! owner who lost their device gets a new one signed by the two support
//! approvers (`custody approver recover`), counted only after the
//! policy's delay, during which any existing device can veto it
//! (`custody approver veto`); every step a policy-log entry that `policy
//! log --verify` replays. Approvers' devices are custody-policy's
//! software authenticator.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers unwrap and panic: a failure is a test failure"
)]

use std::time::Duration;

use serde_json::{Value, json};

#[path = "../../custody-policy/tests/support/authenticator.rs"]
mod authenticator;
#[path = "support/governed.rs"]
mod governed;
#[path = "support/world.rs"]
mod world;
use authenticator::Device;
use governed::{ALICE, Keystore, WALLET};
use world::{Run, now};

/// The policy's recovery delay (seconds).
const DELAY: u64 = 3;

/// The wallet's approvers: owners 1 to 3 and support 1 and 2.
struct Approvers {
    owners: [Device; 3],
    support: [Device; 2],
}

/// Three owners (payments need two) and two support approvers who may
/// recover an owner with a delay of [`DELAY`] seconds.
fn governed(ks: &Keystore) -> Approvers {
    let mut owners = [Device::p256(1), Device::ed25519(2), Device::p256(3)];
    let mut support = [Device::p256(4), Device::p256(5)];
    for device in &mut owners {
        ks.enrol(device, "owner");
    }
    for device in &mut support {
        ks.enrol(device, "support");
    }
    let policy = json!({
        "schema": "custody-policy/v1",
        "wallet": WALLET,
        "groups": {
            "owners": {"role": "owner", "members": ["owner-1", "owner-2", "owner-3"]},
            "helpdesk": {"role": "support", "members": ["support-1", "support-2"]}
        },
        "governance": {"group": "owners", "threshold": 2},
        "rules": [
            {"id": "payments", "effect": "allow", "when": {"kinds": ["transaction"]},
             "require": [{"group": "owners", "threshold": 2}]}
        ],
        "recovery": {"group": "helpdesk", "threshold": 2, "delaySeconds": DELAY}
    });
    let [a, b, _] = &mut owners;
    ks.set_policy(&policy, &mut [a, b]);
    Approvers { owners, support }
}

/// `custody approver recover` of owner-1 with `device`, activating at
/// `activates_at`, approved by `approving`.
fn recover(
    ks: &Keystore,
    device: &mut Device,
    activates_at: u64,
    approving: &mut [&mut Device],
) -> Run {
    let credential = ks.file(&device.register(&[0x5b; 32], "packed"));
    let at = activates_at.to_string();
    let args = [
        "--wallet",
        WALLET,
        "--approver",
        "owner-1",
        "--role",
        "owner",
        "--credential",
        &credential,
        "--activates-at",
        &at,
    ];
    let challenge = ks.run(&[&["challenge", "approver-recover"], &args[..]].concat());
    if challenge.code != 0 {
        return challenge;
    }
    assert_eq!(challenge.out["activatesAt"], json!(activates_at));
    let challenge = authenticator::unb64(challenge.out["challenge"].as_str().unwrap());
    let approvals = ks.approvals(approving, &challenge);
    ks.run(
        &[
            &["approver", "recover"],
            &args[..],
            &["--approvals", &approvals],
        ]
        .concat(),
    )
}

/// `custody approver veto` of `recovery` by `device`.
fn veto(ks: &Keystore, recovery: &str, device: &mut Device) -> Run {
    let args = ["--wallet", WALLET, "--recovery", recovery];
    let challenge = ks.run(&[&["challenge", "approver-veto"], &args[..]].concat());
    if challenge.code != 0 {
        return challenge;
    }
    let challenge = authenticator::unb64(challenge.out["challenge"].as_str().unwrap());
    let approvals = ks.approvals(&mut [device], &challenge);
    ks.run(
        &[
            &["approver", "veto"],
            &args[..],
            &["--approvals", &approvals],
        ]
        .concat(),
    )
}

/// The wallet's recoveries as `policy show` lists them.
fn recoveries(ks: &Keystore) -> Vec<Value> {
    let shown = ks.run(&["policy", "show", "--wallet", WALLET]).ok();
    shown["recoveries"].as_array().unwrap().clone()
}

#[test]
fn recovery_needs_two_support_approvals_and_a_veto_stops_it() {
    let ks = Keystore::new("file");
    let Approvers {
        mut owners,
        mut support,
    } = governed(&ks);
    let mut lost = Device::p256(7);
    let later = now() + 3600;
    // One support approver is not enough; nor is one with an owner.
    let [s1, s2] = &mut support;
    recover(&ks, &mut lost, later, &mut [s1]).refused(
        "approvals-required",
        3,
        "1 more approval(s) of group \"helpdesk\"",
    );
    let [o1, o2, _] = &mut owners;
    recover(&ks, &mut Device::p256(9), later, &mut [s1, o2]).refused(
        "approvals-required",
        3,
        "1 more approval(s)",
    );
    // A delay shorter than the policy's.
    recover(&ks, &mut Device::p256(10), now() + 1, &mut [s1, s2]).refused(
        "bad-input",
        2,
        "--activates-at",
    );
    // Both support approvers: pending, with the device's fingerprint.
    let out = recover(&ks, &mut Device::p256(11), later, &mut [s1, s2]).ok();
    assert_eq!(
        (out["approverId"].as_str(), out["activatesAt"].as_u64()),
        (Some("owner-1"), Some(later))
    );
    let id = out["recovery"].as_str().unwrap().to_owned();
    let listed = recoveries(&ks);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0]["recovery"].as_str(), listed[0]["status"].as_str()),
        (Some(id.as_str()), Some("pending"))
    );
    assert_eq!(listed[0]["fingerprint"], out["fingerprint"]);
    // The recovering device cannot veto its own recovery (it is no device
    // of the wallet yet)...
    let mut recovering = Device::p256(11);
    veto(&ks, &id, &mut recovering).refused("approvals-required", 3, "no approver's device");
    // ...an owner's device can.
    let vetoed = veto(&ks, &id, o2).ok();
    assert_eq!(vetoed["vetoedBy"], json!(["owner-2"]));
    assert_eq!(vetoed["approverId"], "owner-1");
    let listed = recoveries(&ks);
    assert_eq!(
        (listed[0]["status"].as_str(), listed[0]["vetoedAt"].as_u64()),
        (Some("vetoed"), vetoed["logIndex"].as_u64())
    );
    // Once is enough; a veto of no recovery is not found.
    veto(&ks, &id, o1).refused("policy-denied", 3, "vetoed already");
    veto(&ks, &format!("0x{}", "11".repeat(32)), o1).refused("not-found", 1, "no recovery");
    // The whole log replays: 5 devices, the policy, the recovery, the veto.
    let log = ks
        .run(&["policy", "log", "--wallet", WALLET, "--verify"])
        .ok();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(log["verified"], true);
    assert_eq!(entries.len(), 8);
    assert_eq!(entries[6]["hash"].as_str(), Some(id.as_str()));
    assert_eq!(
        entries[7]["change"]["veto"]["recovery"],
        id.trim_start_matches("0x")
    );
}

#[test]
fn a_recovered_device_approves_only_after_the_delay_and_cannot_then_be_vetoed() {
    let ks = Keystore::new("file");
    let Approvers {
        mut owners,
        mut support,
    } = governed(&ks);
    let [s1, s2] = &mut support;
    let mut new = Device::ed25519(12);
    let activates_at = now() + DELAY + 2;
    let out = recover(&ks, &mut new, activates_at, &mut [s1, s2]).ok();
    let id = out["recovery"].as_str().unwrap().to_owned();
    let [_, o2, o3] = &mut owners;
    // Before the delay the new device is no approver's device.
    ks.pay(&mut [&mut new, o2], ALICE, 1, 0).refused(
        "approvals-required",
        3,
        "no approver's device",
    );
    // After it, the new device counts as owner-1's.
    while now() < activates_at {
        std::thread::sleep(Duration::from_millis(200));
    }
    let signed = ks.pay(&mut [&mut new, o2], ALICE, 1, 0).ok();
    assert_eq!(signed["policy"]["rule"], "payments", "{signed}");
    let listed = recoveries(&ks);
    assert_eq!(listed[0]["status"], "active");
    // And it vouches for another device of owner-1 (a log entry made
    // after the activation, from the state as it stands now).
    let another = ks.file(&Device::p256(13).register(&[0x5c; 32], "packed"));
    let args = [
        "--wallet",
        WALLET,
        "--approver",
        "owner-1",
        "--credential",
        &another,
    ];
    let challenge = ks.challenge(&[&["approver-add"], &args[..]].concat());
    let approvals = ks.approvals(&mut [&mut new], &challenge);
    let added = ks
        .run(
            &[
                &["approver", "add"],
                &args[..],
                &["--approvals", &approvals],
            ]
            .concat(),
        )
        .ok();
    assert_eq!(added["approverId"], "owner-1");
    // Too late to veto.
    veto(&ks, &id, o3).refused("policy-denied", 3, "too late to veto");
    assert_eq!(
        ks.run(&["policy", "log", "--wallet", WALLET, "--verify"])
            .ok()["verified"],
        true
    );
}
