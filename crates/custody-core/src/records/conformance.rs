//! The conformance suite every [`StateStore`] implementation must pass,
//! public so that stores in other crates (the PostgreSQL store) run it
//! unchanged. Test-only: behind the feature `conformance`, never in a
//! normal build.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a conformance failure is a test failure: panics say where"
)]

use std::sync::Arc;

use crate::records::state::{
    CasOutcome, MAX_STATE_KEY_BYTES, MAX_STATE_KEYS_PER_READ, MAX_STATE_SWAPS_PER_COMMIT,
    MAX_STATE_VALUE_BYTES, RecordedSwaps, StateStore, Swap, Versioned,
};
use crate::{AuditEvent, AuditOp, AuditOutcome, AuditSink, Error};

/// The version of a `Swapped` outcome; panics on a conflict.
pub fn swapped(o: CasOutcome) -> u64 {
    match o {
        CasOutcome::Swapped { version } => version,
        CasOutcome::Conflict { current } => panic!("unexpected conflict: {current:?}"),
    }
}

/// The current record of a `Conflict` outcome; panics on a swap.
pub fn conflict(o: CasOutcome) -> Option<Versioned> {
    match o {
        CasOutcome::Conflict { current } => current,
        CasOutcome::Swapped { version } => panic!("unexpected swap to {version}"),
    }
}

/// `Some(Versioned { version, value })`.
pub fn v(version: u64, value: &[u8]) -> Option<Versioned> {
    Some(Versioned {
        version,
        value: Arc::from(value),
    })
}

/// The conformance suite every [`StateStore`] must pass (the memory and
/// file stores here, the PostgreSQL store in `custody-postgres`). Uses keys
/// `a`, `b`, `big` and a few UTF-8 ones: give it an empty store.
pub fn state_store(store: &dyn StateStore) {
    // Absent.
    assert_eq!(store.get("a").wait().unwrap(), None);
    // Only "must not exist" creates; a version for an absent key conflicts.
    assert_eq!(
        conflict(store.compare_and_swap("a", Some(1), b"x").wait().unwrap()),
        None
    );
    assert_eq!(store.get("a").wait().unwrap(), None);
    // Create-if-absent.
    assert_eq!(
        swapped(store.compare_and_swap("a", None, b"one").wait().unwrap()),
        1
    );
    assert_eq!(store.get("a").wait().unwrap(), v(1, b"one"));
    // A second create conflicts and returns the current record.
    assert_eq!(
        conflict(store.compare_and_swap("a", None, b"two").wait().unwrap()),
        v(1, b"one")
    );
    // A stale or future version conflicts.
    assert_eq!(
        conflict(store.compare_and_swap("a", Some(0), b"two").wait().unwrap()),
        v(1, b"one")
    );
    assert_eq!(
        conflict(store.compare_and_swap("a", Some(2), b"two").wait().unwrap()),
        v(1, b"one")
    );
    // Versions grow by exactly one per swap.
    for i in 1..=5u64 {
        let value = format!("value {i}");
        assert_eq!(
            swapped(
                store
                    .compare_and_swap("a", Some(i), value.as_bytes())
                    .wait()
                    .unwrap()
            ),
            i + 1
        );
        assert_eq!(store.get("a").wait().unwrap(), v(i + 1, value.as_bytes()));
    }
    // Failed swaps do not bump the version.
    assert_eq!(
        conflict(store.compare_and_swap("a", Some(3), b"z").wait().unwrap()),
        v(6, b"value 5")
    );
    assert_eq!(store.get("a").wait().unwrap(), v(6, b"value 5"));
    // Keys are independent.
    assert_eq!(store.get("b").wait().unwrap(), None);
    assert_eq!(
        swapped(store.compare_and_swap("b", None, b"").wait().unwrap()),
        1
    );
    assert_eq!(store.get("b").wait().unwrap(), v(1, b""));
    assert_eq!(store.get("a").wait().unwrap(), v(6, b"value 5"));
    // Arbitrary UTF-8 keys (wallet names are e-mails, any script).
    for key in [
        "alice@example.com",
        "wallet:Zoë/totp",
        "鍵",
        "a b\tc\n",
        "/../etc/passwd",
        "A",
    ] {
        let before = store.get(key).wait().unwrap();
        let expected = before.as_ref().map(|b| b.version);
        let version = swapped(
            store
                .compare_and_swap(key, expected, key.as_bytes())
                .wait()
                .unwrap(),
        );
        assert_eq!(
            store.get(key).wait().unwrap(),
            v(version, key.as_bytes()),
            "{key:?}"
        );
    }
    // Key limits.
    let longest = "é".repeat(MAX_STATE_KEY_BYTES / 2);
    assert_eq!(
        swapped(store.compare_and_swap(&longest, None, b"x").wait().unwrap()),
        1
    );
    assert_eq!(store.get(&longest).wait().unwrap(), v(1, b"x"));
    let too_long = "k".repeat(MAX_STATE_KEY_BYTES + 1);
    for key in ["", too_long.as_str()] {
        assert!(matches!(
            store.get(key).wait(),
            Err(Error::InvalidStateRecord(_))
        ));
        assert!(matches!(
            store.compare_and_swap(key, None, b"x").wait(),
            Err(Error::InvalidStateRecord(_))
        ));
    }
    // Value limits.
    let big = vec![0xA5; MAX_STATE_VALUE_BYTES];
    assert_eq!(
        swapped(store.compare_and_swap("big", None, &big).wait().unwrap()),
        1
    );
    assert_eq!(store.get("big").wait().unwrap(), v(1, &big));
    let too_big = vec![0; MAX_STATE_VALUE_BYTES + 1];
    assert!(matches!(
        store.compare_and_swap("big", Some(1), &too_big).wait(),
        Err(Error::InvalidStateRecord(_))
    ));
    assert_eq!(store.get("big").wait().unwrap(), v(1, &big));
    // Many keys in one read: in the order asked, absent ones `None`, a key
    // asked twice answered twice, every key as `get` answers it.
    let keys = ["b", "absent", "a", "鍵", "a", longest.as_str()];
    let many = store.get_many(&keys).wait().unwrap();
    let one_by_one: Vec<_> = keys.iter().map(|k| store.get(k).wait().unwrap()).collect();
    assert_eq!(many, one_by_one);
    assert_eq!(
        many.iter().take(3).cloned().collect::<Vec<_>>(),
        [v(1, b""), None, v(6, b"value 5")]
    );
    assert_eq!(store.get_many(&[]).wait().unwrap(), Vec::new());
    let most = ["a"; MAX_STATE_KEYS_PER_READ];
    assert_eq!(
        store.get_many(&most).wait().unwrap(),
        vec![v(6, b"value 5"); MAX_STATE_KEYS_PER_READ]
    );
    let too_many = ["a"; MAX_STATE_KEYS_PER_READ + 1];
    for keys in [&too_many[..], &["a", ""], &["a", too_long.as_str()]] {
        assert!(matches!(
            store.get_many(keys).wait(),
            Err(Error::InvalidStateRecord(_))
        ));
    }
}

/// `threads` threads each add `per_thread` to the counter under key
/// `counter` with compare-and-swap loops; the total must be exact (no lost
/// update, no double count).
pub fn concurrent_counter(store: Arc<dyn StateStore>, threads: u64, per_thread: u64) {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    let mut seen = store.get("counter").wait().unwrap();
                    loop {
                        let n = seen
                            .as_ref()
                            .map_or(0, |s| u64::from_be_bytes((*s.value).try_into().unwrap()));
                        let expected = seen.as_ref().map(|s| s.version);
                        match store
                            .compare_and_swap("counter", expected, &(n + 1).to_be_bytes())
                            .wait()
                            .unwrap()
                        {
                            CasOutcome::Swapped { .. } => break,
                            CasOutcome::Conflict { current } => seen = current,
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let total = threads * per_thread;
    assert_eq!(
        store.get("counter").wait().unwrap(),
        v(total, &total.to_be_bytes())
    );
}

/// A swap of [`StateStore::compare_and_swap_all_recorded`].
pub fn swap<'a>(key: &'a str, expected: Option<u64>, value: &'a [u8]) -> Swap<'a> {
    Swap::write(key, expected, value)
}

/// The multi-swap case every [`StateStore`] must pass, with `audit` and
/// `records`, which counts the records `audit` keeps. A store that keeps
/// `audit` ([`StateStore::records_into`]) commits all swaps and the record
/// or nothing: on a conflict at any index no swap is written and no record
/// appended, and the record is present exactly when the swaps are. A store
/// that does not refuses with [`Error::Unsupported`] and writes nothing.
/// Checks ([`Swap::unchanged`]) hold or conflict as swaps do and write
/// nothing. Uses keys `m1`, `m2`, `m3` and `absent`: give it a store where
/// they are absent.
pub fn recorded_swaps(store: &dyn StateStore, audit: &dyn AuditSink, records: &dyn Fn() -> usize) {
    let event = |n: u32| {
        AuditEvent::new(AuditOp::SIGN, AuditOutcome::Success)
            .with_wallet("conformance")
            .with_index(n)
    };
    let keys = ["m1", "m2", "m3"];
    let read = || store.get_many(&keys).wait().unwrap();
    assert_eq!(read(), [None, None, None]);
    let before = records();
    if !store.records_into(audit) {
        let e = store
            .compare_and_swap_all_recorded(&[swap("m1", None, b"1")], event(0), audit)
            .wait()
            .unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{e:?}");
        assert_eq!(read(), [None, None, None], "nothing written");
        assert_eq!(records(), before, "nothing recorded");
        return;
    }
    let commit = |swaps: &[Swap<'_>], n: u32| {
        store
            .compare_and_swap_all_recorded(swaps, event(n), audit)
            .wait()
    };
    // Two creates, one commit, one record.
    let Ok(RecordedSwaps::Swapped { versions, head }) =
        commit(&[swap("m1", None, b"one"), swap("m2", None, b"two")], 1)
    else {
        panic!("two creates of absent keys")
    };
    assert_eq!(versions, [1, 1]);
    assert_eq!(records(), before + 1);
    assert_eq!(read(), [v(1, b"one"), v(1, b"two"), None]);
    // A conflict at the last index, after a swap that would succeed:
    // neither is written, nothing is recorded, the conflicting record is
    // answered.
    for (swaps, index, current) in [
        (
            [swap("m1", Some(1), b"x"), swap("m2", Some(5), b"y")],
            1,
            v(1, b"two"),
        ),
        (
            [swap("m1", Some(1), b"x"), swap("m2", None, b"y")],
            1,
            v(1, b"two"),
        ),
        (
            [swap("m3", Some(1), b"x"), swap("m1", Some(1), b"y")],
            0,
            None,
        ),
        (
            [swap("m1", Some(1), b"x"), swap("m3", Some(2), b"y")],
            1,
            None,
        ),
    ] {
        assert_eq!(
            commit(&swaps, 2).unwrap(),
            RecordedSwaps::Conflict { index, current },
            "{swaps:?}"
        );
        assert_eq!(read(), [v(1, b"one"), v(1, b"two"), None], "{swaps:?}");
        assert_eq!(records(), before + 1, "{swaps:?}");
    }
    // Swaps and a create in one commit, in any key order.
    let Ok(RecordedSwaps::Swapped {
        versions,
        head: next,
    }) = commit(
        &[
            swap("m2", Some(1), b"two'"),
            swap("m3", None, b"three"),
            swap("m1", Some(1), b"one'"),
        ],
        3,
    )
    else {
        panic!("every record at its expected version")
    };
    assert_eq!(versions, [2, 1, 2]);
    assert_eq!(records(), before + 2);
    assert_ne!(next, head);
    assert_eq!(read(), [v(2, b"one'"), v(2, b"two'"), v(1, b"three")]);
    // A single swap is a one-element slice.
    assert_eq!(
        match commit(&[swap("m3", Some(1), b"3")], 4).unwrap() {
            RecordedSwaps::Swapped { versions, .. } => versions,
            RecordedSwaps::Conflict { index, .. } => panic!("conflict at {index}"),
        },
        [2]
    );
    assert_eq!(records(), before + 3);
    // A check holds when its record is at its version, and writes nothing:
    // its version is answered unchanged.
    let Ok(RecordedSwaps::Swapped { versions, .. }) = commit(
        &[swap("m1", Some(2), b"one''"), Swap::unchanged("m2", 2)],
        5,
    ) else {
        panic!("m2 is at version 2")
    };
    assert_eq!(versions, [3, 2]);
    assert_eq!(records(), before + 4);
    assert_eq!(read(), [v(3, b"one''"), v(2, b"two'"), v(2, b"3")]);
    let Ok(RecordedSwaps::Swapped { versions, .. }) = commit(&[Swap::unchanged("m1", 3)], 6) else {
        panic!("m1 is at version 3")
    };
    assert_eq!(versions, [3], "a commit of a check alone is recorded");
    assert_eq!(records(), before + 5);
    // A failed check is a conflict like any other: nothing written or
    // recorded, the record as it is answered.
    for (swaps, index, current) in [
        (
            vec![swap("m3", Some(2), b"x"), Swap::unchanged("m2", 1)],
            1,
            v(2, b"two'"),
        ),
        (vec![Swap::unchanged("m1", 9)], 0, v(3, b"one''")),
        (
            vec![Swap::unchanged("absent", 1), swap("m3", Some(2), b"x")],
            0,
            None,
        ),
    ] {
        assert_eq!(
            commit(&swaps, 7).unwrap(),
            RecordedSwaps::Conflict { index, current },
            "{swaps:?}"
        );
        assert_eq!(read(), [v(3, b"one''"), v(2, b"two'"), v(2, b"3")]);
        assert_eq!(store.get("absent").wait().unwrap(), None, "{swaps:?}");
        assert_eq!(records(), before + 5, "{swaps:?}");
    }
    // Bad commits are refused before anything is written.
    let too_long = "k".repeat(MAX_STATE_KEY_BYTES + 1);
    let too_big = vec![0; MAX_STATE_VALUE_BYTES + 1];
    let many: Vec<String> = (0..=MAX_STATE_SWAPS_PER_COMMIT)
        .map(|i| format!("many{i}"))
        .collect();
    let many: Vec<Swap<'_>> = many.iter().map(|k| swap(k, None, b"")).collect();
    for bad in [
        &[][..],
        &[swap("m1", Some(2), b"a"), swap("m1", Some(2), b"b")][..],
        &[swap("m1", Some(2), b"a"), swap("", None, b"b")][..],
        &[swap("m1", Some(2), b"a"), swap(&too_long, None, b"b")][..],
        &[swap("m1", Some(2), b"a"), swap("m9", None, &too_big)][..],
        &many[..],
        // A check must name a version.
        &[Swap {
            key: "m3",
            expected: None,
            value: None,
        }][..],
    ] {
        assert!(
            matches!(commit(bad, 5), Err(Error::InvalidStateRecord(_))),
            "{bad:?}"
        );
    }
    assert_eq!(read(), [v(3, b"one''"), v(2, b"two'"), v(2, b"3")]);
    assert_eq!(store.get("many0").wait().unwrap(), None);
    assert_eq!(records(), before + 5);
}
