//! The one reconnect backoff policy of every transport.

use std::time::Duration;

/// How long a transport waits between two failed attempts to reconnect: exponential,
/// with jitter so that nodes restarted together do not reconnect in lockstep.
///
/// The first attempt is made at once when a loss is reported. After failed attempt `n`
/// (1, 2, ...) the wait is drawn uniformly from `[base × (1 − jitter), base]` where
/// `base = min(first × 2^(n−1), max)`: so no wait is longer than [`Backoff::max`] and
/// none shorter than `first × (1 − jitter)`.
///
/// Defaults ([`Backoff::default`]): `first` 100 ms, `max` 2 s, `jitter` 0.25 — after a
/// broker restart a node is back at most about 2 s after the broker answers again.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The wait after the first failed attempt (before jitter).
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
    /// The fraction (0.0 to 1.0) of a wait that is random: 0.25 makes a wait between 75%
    /// and 100% of its base.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { first: Duration::from_millis(100), max: Duration::from_secs(2), jitter: 0.25 }
    }
}

impl Backoff {
    /// A policy from `first` doubling up to `max`, with the default jitter.
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff { first, max: max.max(first), ..Backoff::default() }
    }

    /// The same policy with `jitter` (clamped to 0.0 ..= 1.0).
    pub fn with_jitter(self, jitter: f64) -> Self {
        Backoff { jitter: if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) }, ..self }
    }

    /// The wait before the next attempt, without jitter, after `failed` failed attempts
    /// (`failed` ≥ 1).
    pub fn base(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(31);
        self.first.saturating_mul(1u32 << doublings).min(self.max.max(self.first))
    }

    /// The wait before the next attempt after `failed` failed attempts, jittered.
    pub fn delay(&self, failed: u32) -> Duration {
        let base = self.base(failed);
        let jitter = if self.jitter.is_nan() { 0.0 } else { self.jitter.clamp(0.0, 1.0) };
        base.mul_f64(1.0 - jitter * fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Backoff;

    #[test]
    fn doubles_from_first_up_to_max() {
        let b = Backoff::default();
        let ms = |n| b.base(n).as_millis();
        assert_eq!([ms(1), ms(2), ms(3), ms(4), ms(5), ms(6)], [100, 200, 400, 800, 1600, 2000]);
        assert_eq!(b.base(1000), Duration::from_secs(2), "no overflow, capped");
        assert_eq!(b.base(0), b.first);
        let odd = Backoff::new(Duration::from_secs(3), Duration::from_secs(1));
        assert_eq!(odd.base(5), Duration::from_secs(3), "max below first is raised to first");
    }

    #[test]
    fn jitter_stays_within_its_range() {
        let b = Backoff::default();
        for failed in 1..12 {
            let base = b.base(failed);
            for _ in 0..200 {
                let d = b.delay(failed);
                assert!(d <= base && d >= base.mul_f64(0.75), "{d:?} outside 75%..100% of {base:?}");
                assert!(d <= b.max);
            }
        }
        let waits: Vec<Duration> = (0..50).map(|_| b.delay(3)).collect();
        assert!(waits.iter().any(|w| *w != waits[0]), "jittered");
        let exact = Backoff::default().with_jitter(0.0);
        assert_eq!(exact.delay(2), Duration::from_millis(200));
        assert_eq!(Backoff::default().with_jitter(7.0).jitter, 1.0);
    }
}
