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

#[cfg(test)]
mod tests {
    use super::*;

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
