//! Rate-limited warnings: a place that drops messages logs at most one line per period,
//! saying how many lines it held back since the last.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often a dropping place may log a warning.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// One line per period; counts the lines held back in between.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    state: Mutex<(Option<Instant>, u64)>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(WARN_EVERY)
    }
}

impl Throttle {
    /// At most one line per `every`.
    pub const fn new(every: Duration) -> Self {
        Throttle { every, state: Mutex::new((None, 0)) }
    }

    /// `Some(held_back)` when a line may be logged now (`held_back`: lines suppressed since
    /// the last one), `None` when this one is to be held back.
    pub fn check(&self) -> Option<u64> {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match s.0 {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                s.1 += 1;
                None
            }
            _ => {
                let held = std::mem::take(&mut s.1);
                s.0 = Some(now);
                Some(held)
            }
        }
    }
}

/// One line per key (a sender), for up to `capacity` keys; beyond them, the keys not
/// yet seen share one [`Throttle`].
#[derive(Debug)]
pub(crate) struct OncePerKey {
    capacity: usize,
    seen: Mutex<std::collections::HashSet<String>>,
    overflow: Throttle,
}

impl OncePerKey {
    pub(crate) fn new(capacity: usize) -> Self {
        OncePerKey { capacity, seen: Mutex::default(), overflow: Throttle::default() }
    }

    /// `true` when a line about `key` may be logged now.
    pub(crate) fn first(&self, key: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains(key) {
            return false;
        }
        if seen.len() >= self.capacity {
            return self.overflow.check().is_some();
        }
        seen.insert(key.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_key_and_bounded() {
        let once = OncePerKey::new(2);
        assert!(once.first("a"));
        assert!(!once.first("a"));
        assert!(once.first("b"));
        assert!(!once.first("b"));
        // full: unseen keys share one throttled line
        assert!(once.first("c"));
        assert!(!once.first("d"));
        assert!(!once.first("a"));
    }

    #[test]
    fn one_line_per_period_and_the_count_of_the_rest() {
        let t = Throttle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.check_at(t0), Some(0));
        assert_eq!(t.check_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.check_at(t0 + Duration::from_secs(9)), None);
        assert_eq!(t.check_at(t0 + Duration::from_secs(10)), Some(2));
        assert_eq!(t.check_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(t.check_at(t0 + Duration::from_secs(30)), Some(1));
    }
}
