//! The verification decision: which steps a code matches (in constant
//! time), and what that means given the replay counter and the lockout.
//!
//! [`Matches::compute`] runs once per request. It computes the code of the
//! current step and compares it with the presented code with `subtle`; only
//! if that does not match does it compute and compare every other step of
//! the window (each with `subtle`, without an early exit). So a wrong code
//! always costs the whole window, and the only thing the time of a check
//! tells is that the code matched the current step, which the answer (an
//! acceptance, or a refusal as replayed) says anyway. Most codes are typed
//! within their own step: they cost one HMAC instead of `2·skew+1`.
//! [`decide`] is a pure function of the
//! stored [`GuardState`], the time and the matches, so that a
//! compare-and-swap that loses a race can re-read the state and decide again
//! without recomputing a single HMAC.

use subtle::{Choice, ConditionallySelectable};

use crate::otp::KeyedSecret;
use crate::record::GuardState;
use crate::{Error, Lockout, MAX_SKEW_STEPS, TotpParams};

/// The most steps a window holds.
const MAX_WINDOW: usize = 2 * MAX_SKEW_STEPS as usize + 1;

/// Which steps of the window the presented code matches. `hits` are
/// `subtle::Choice`s: nothing branches on them until [`decide`] reveals the
/// outcome.
pub(crate) struct Matches {
    steps: [u64; MAX_WINDOW],
    hits: [Choice; MAX_WINDOW],
    len: usize,
}

impl Matches {
    /// Compares `presented` with the code of the step at `now` and, unless
    /// it matches, with the code of every other step within `skew` steps of
    /// it, under `secret` (keyed with the algorithm of `params`). A match of
    /// the current step leaves the other steps unmatched: the current step
    /// is then the one accepted (if fresh) or the code is a replay.
    pub(crate) fn compute(
        secret: &KeyedSecret,
        params: &TotpParams,
        presented: &[u8],
        now: u64,
        skew: u8,
    ) -> Result<Self, Error> {
        let mut out = Self {
            steps: [0; MAX_WINDOW],
            hits: [Choice::from(0); MAX_WINDOW],
            len: 0,
        };
        // The format of a code is public (its length is fixed by the
        // enrolment): a malformed code matches nothing.
        let well_formed = presented.len() == usize::from(params.digits.get())
            && presented.iter().all(u8::is_ascii_digit);
        let current = params.step_at(now);
        let skew = u64::from(skew.min(MAX_SKEW_STEPS));
        let first = current.saturating_sub(skew);
        let last = current.saturating_add(skew);
        for (slot, step) in out.steps.iter_mut().zip(first..=last) {
            *slot = step;
            out.len += 1;
        }
        if !well_formed {
            return Ok(out);
        }
        // The current step's slot: `current - first` is at most the skew.
        let at = usize::try_from(current - first).unwrap_or(usize::MAX);
        let current_hit = secret.code(current, params.digits)?.ct_matches(presented);
        if let Some(hit) = out.hits.get_mut(at) {
            *hit = current_hit;
        }
        // Revealed on purpose (see the module docs): a match of the current
        // step is the outcome's own news.
        if bool::from(current_hit) {
            return Ok(out);
        }
        let others = out.steps.iter().zip(out.hits.iter_mut()).take(out.len);
        for (_, (step, hit)) in others.enumerate().filter(|(i, _)| *i != at) {
            *hit = secret.code(*step, params.digits)?.ct_matches(presented);
        }
        Ok(out)
    }

    /// Whether any step matched.
    fn any(&self) -> Choice {
        self.hits
            .iter()
            .take(self.len)
            .fold(Choice::from(0), |acc, hit| acc | *hit)
    }

    /// The smallest matched step after `last` (a fresh one), in constant
    /// time over the window.
    fn smallest_fresh(&self, last: Option<u64>) -> (Choice, u64) {
        let mut found = Choice::from(0);
        let mut chosen = 0u64;
        for (step, hit) in self.steps.iter().zip(self.hits.iter()).take(self.len) {
            // Whether a step is after the last accepted one is public.
            let after = Choice::from(u8::from(last.is_none_or(|l| *step > l)));
            let take = *hit & after & !found;
            chosen.conditional_assign(step, take);
            found |= take;
        }
        (found, chosen)
    }
}

/// What a presented code amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Valid for this fresh step.
    Accept(u64),
    /// Valid, but only for steps at or before the last accepted one.
    Replayed,
    /// Matches no step in the window (or is malformed).
    Invalid,
    /// The wallet is locked until this UNIX time.
    Locked(u64),
}

/// Decides, and says what the guard record must become (`None`: unchanged).
pub(crate) fn decide(
    state: &GuardState,
    now: u64,
    matches: &Matches,
    lockout: &Lockout,
) -> (Decision, Option<GuardState>) {
    if now < state.locked_until {
        return (Decision::Locked(state.locked_until), None);
    }
    let (found, step) = matches.smallest_fresh(state.last_step);
    if bool::from(found) {
        let next = GuardState {
            last_step: Some(step),
            failures: 0,
            lock_level: 0,
            locked_until: 0,
        };
        return (Decision::Accept(step), Some(next));
    }
    if bool::from(matches.any()) {
        // Proves knowledge of a recent code: refused, not counted.
        return (Decision::Replayed, None);
    }
    let failures = state.failures.saturating_add(1);
    let mut next = GuardState { failures, ..*state };
    if failures >= lockout.max_failures {
        // The count is not reset by a lock: once it has been reached, every
        // wrong code after a lock expires locks again, twice as long.
        next.lock_level = state.lock_level.saturating_add(1);
        next.locked_until = now.saturating_add(lockout.duration(next.lock_level));
    }
    (Decision::Invalid, Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digits;

    const KEY: &[u8] = b"12345678901234567890";

    fn params() -> TotpParams {
        TotpParams {
            digits: Digits::EIGHT,
            ..TotpParams::default()
        }
    }

    fn matches(code: &str, now: u64, skew: u8) -> Matches {
        let key = KeyedSecret::new(KEY, params().algorithm).unwrap();
        Matches::compute(&key, &params(), code.as_bytes(), now, skew).unwrap()
    }

    #[test]
    fn window_and_matches() {
        // RFC 6238 Appendix B: T = 59 s -> step 1 -> 94287082.
        let m = matches("94287082", 59, 1);
        assert_eq!(&m.steps[..m.len], &[0, 1, 2]);
        let (found, step) = m.smallest_fresh(None);
        assert!(bool::from(found));
        assert_eq!(step, 1);
        // Same code a step later is still in the window; two later is not.
        assert!(bool::from(matches("94287082", 89, 1).any()));
        assert!(!bool::from(matches("94287082", 119, 1).any()));
        // Skew 0: only the current step.
        assert!(!bool::from(matches("94287082", 89, 0).any()));
        // Malformed codes match nothing.
        for bad in ["9428708", "942870820", "9428708a", "+4287082", ""] {
            assert!(!bool::from(matches(bad, 59, 1).any()), "{bad:?}");
        }
    }

    /// How many codes `f` computes on this thread.
    fn codes_computed(f: impl FnOnce()) -> usize {
        let before = crate::otp::CODES_COMPUTED.with(std::cell::Cell::get);
        f();
        crate::otp::CODES_COMPUTED.with(std::cell::Cell::get) - before
    }

    #[test]
    fn a_wrong_code_costs_the_whole_window_and_a_current_one_a_single_hmac() {
        // RFC 6238 Appendix B: step 1 -> 94287082; at T = 59 that is the
        // current step, at T = 89 the previous one.
        for skew in [0, 1, 3] {
            let window = 2 * usize::from(skew) + 1;
            assert_eq!(
                codes_computed(|| _ = matches("12345678", 3000, skew)),
                window
            );
            assert_eq!(codes_computed(|| _ = matches("94287082", 59, skew)), 1);
        }
        // Matching a neighbouring step is found only after the whole window.
        let mut m = None;
        assert_eq!(codes_computed(|| m = Some(matches("94287082", 89, 1))), 3);
        let m = m.unwrap();
        assert_eq!(&m.steps[..m.len], &[1, 2, 3]);
        assert_eq!(m.smallest_fresh(None).1, 1);
        // Malformed codes compute nothing.
        assert_eq!(codes_computed(|| _ = matches("9428708", 59, 1)), 0);
    }

    #[test]
    fn a_current_match_is_accepted_at_the_current_step_or_is_a_replay() {
        let lockout = Lockout::default();
        let m = matches("94287082", 59, 1);
        // Only the current step is marked: accepted there when fresh ...
        assert_eq!(m.smallest_fresh(None).1, 1);
        let (d, next) = decide(&GuardState::default(), 59, &m, &lockout);
        assert_eq!(d, Decision::Accept(1));
        // ... and a replay once it is spent (not counted as a failure).
        assert_eq!(
            decide(&next.unwrap(), 59, &m, &lockout),
            (Decision::Replayed, None)
        );
    }

    #[test]
    fn window_saturates_at_both_ends() {
        let m = matches("00000000", 0, 10);
        assert_eq!(&m.steps[..m.len], &(0..=10).collect::<Vec<_>>()[..]);
        let p = TotpParams {
            period: crate::Period::new(1).unwrap(),
            ..params()
        };
        let key = KeyedSecret::new(KEY, p.algorithm).unwrap();
        let m = Matches::compute(&key, &p, b"00000000", u64::MAX, 2).unwrap();
        assert_eq!(&m.steps[..m.len], &[u64::MAX - 2, u64::MAX - 1, u64::MAX]);
    }

    #[test]
    fn decisions() {
        let lockout = Lockout::default();
        let fresh = GuardState::default();
        let m = matches("94287082", 59, 1);
        let (d, next) = decide(&fresh, 59, &m, &lockout);
        assert_eq!(d, Decision::Accept(1));
        let next = next.unwrap();
        assert_eq!(next.last_step, Some(1));
        // Replayed: not counted, not written.
        assert_eq!(decide(&next, 59, &m, &lockout), (Decision::Replayed, None));
        // Wrong: counted.
        let wrong = matches("12345678", 59, 1);
        let (d, after) = decide(&next, 59, &wrong, &lockout);
        assert_eq!(d, Decision::Invalid);
        assert_eq!(after.unwrap().failures, 1);
        // Locked: nothing checked.
        let locked = GuardState {
            locked_until: 100,
            ..next
        };
        assert_eq!(
            decide(&locked, 99, &m, &lockout),
            (Decision::Locked(100), None)
        );
    }
}
