//! Velocity limits counted from the signed audit records, not from the
//! state store, through the built binary (issue #17): a governed wallet
//! spends 8 of its 10 ETH a day, someone who can write the state store
//! zeroes the spend history the policy gate keeps there (checked to hold
//! the 8 ETH first), and the next 3 ETH
//! are still refused (`policy-denied`, the limit named) while 2 ETH, the
//! exact rest, still sign. Once with the file keystore (`audit.log`), once
//! with `--state postgres://` (the database's per-wallet chains; skipped
//! without `CUSTODY_TEST_POSTGRES_URL` and `CUSTODY_TEST_POSTGRES_BIN`).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers unwrap and panic: a failure is a test failure"
)]

use custody_core::StateStore as _;
use serde_json::{Value, json};

#[path = "../../custody-policy/tests/support/authenticator.rs"]
mod authenticator;
#[path = "support/governed.rs"]
mod governed;
#[path = "support/psql.rs"]
mod psql;
#[path = "support/world.rs"]
mod world;
use authenticator::Device;
use governed::{ALICE, Keystore, WALLET};
use psql::Db;
use world::Run;

const ONE_ETH: u128 = 1_000_000_000_000_000_000;

/// Three owners enrolled and a policy of 10 ETH a day (any transfer with
/// two of them) set by two.
fn governed(ks: &Keystore) -> [Device; 3] {
    let mut owners = [Device::p256(1), Device::ed25519(2), Device::p256(3)];
    for device in &mut owners {
        ks.enrol(device, "owner");
    }
    let policy = json!({
        "schema": "custody-policy/v1",
        "wallet": WALLET,
        "groups": {"owners": {"role": "owner", "members": ["owner-1", "owner-2", "owner-3"]}},
        "governance": {"group": "owners", "threshold": 2},
        "rules": [
            {"id": "payments", "effect": "allow",
             "when": {"kinds": ["transaction"], "assets": ["native"]},
             "require": [{"group": "owners", "threshold": 2}]}
        ],
        "limits": [{"id": "daily", "asset": "native", "windowSeconds": 86400,
                    "max": (10 * ONE_ETH).to_string()}]
    });
    let [a, b, _] = &mut owners;
    ks.set_policy(&policy, &mut [a, b]);
    owners
}

/// `eth` ETH to Alice at `nonce`, approved by the first two owners.
fn pay(ks: &Keystore, owners: &mut [Device; 3], eth: u128, nonce: u64) -> Run {
    let [a, b, _] = owners;
    ks.pay(&mut [a, b], ALICE, eth * ONE_ETH, nonce)
}

/// The state store's key of the wallet's spend history (custody-policy's
/// gate).
fn spends_key() -> String {
    format!("policy/{}/spends", hex::encode(WALLET.as_bytes()))
}

/// Spends 8 ETH, lets `zero` empty the state's spend history (checking
/// it held the 8 ETH), and checks the limit still holds: 3 ETH refused,
/// 2 ETH (exactly the rest) signed, then 1 more refused.
fn state_edited_limit_still_enforced(ks: &Keystore, zero: impl FnOnce(&Keystore)) {
    let mut owners = governed(ks);
    for nonce in 0..2 {
        let out = pay(ks, &mut owners, 4, nonce).ok();
        assert_eq!(out["policy"]["rule"], "payments", "{out}");
    }
    zero(ks);
    pay(ks, &mut owners, 3, 2).refused("policy-denied", 3, "daily");
    pay(ks, &mut owners, 2, 2).ok();
    pay(ks, &mut owners, 1, 3).refused("policy-denied", 3, "daily");
}

/// What the spend history lists in total (wei): spends of one asset close
/// in time are merged into one bucket, so only the sum is fixed.
fn listed_total(value: &[u8]) -> u128 {
    let spends: Value = serde_json::from_slice(value).unwrap();
    spends
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["amount"].as_str().unwrap().parse::<u128>().unwrap())
        .sum()
}

#[test]
fn state_edited_limit_still_enforced_with_the_file_log() {
    let ks = Keystore::new("file");
    state_edited_limit_still_enforced(&ks, |ks| {
        let store = custody_core::FileStore::open(ks.dir.join("state")).unwrap();
        let cached = store.get(&spends_key()).wait().unwrap().unwrap();
        assert_eq!(listed_total(&cached.value), 8 * ONE_ETH);
        assert!(matches!(
            store
                .compare_and_swap(&spends_key(), Some(cached.version), b"[]")
                .wait()
                .unwrap(),
            custody_core::CasOutcome::Swapped { .. }
        ));
    });
}

#[test]
fn state_edited_limit_still_enforced_with_postgres() {
    let Some(db) = Db::fresh("velocity") else {
        return;
    };
    let ks = Keystore::new(&db.url);
    let key = spends_key();
    state_edited_limit_still_enforced(&ks, |_| {
        let cached = db.sql(&format!(
            "SELECT convert_from(value, 'UTF8') FROM custody_state WHERE key = convert_to('{key}', 'UTF8')"
        ));
        assert_eq!(listed_total(cached.as_bytes()), 8 * ONE_ETH, "{cached}");
        // As the table's owner: the history emptied, its version moved on
        // as a writer's compare-and-swap would.
        db.sql(&format!(
            "UPDATE custody_state SET value = convert_to('[]', 'UTF8'), version = version + 1 \
             WHERE key = convert_to('{key}', 'UTF8')"
        ));
    });
    // The signatures and their spends are in the wallet's chain.
    assert_eq!(
        db.sql(&format!(
            "SELECT count(*) FROM custody_audit WHERE chain = 'wallet:{WALLET}' \
             AND record LIKE '%\"spend\":%'"
        )),
        "3"
    );
}
