//! Exponential backoff with full jitter for reconnects. The random source is passed in
//! (tests use a fixed one); the shell uses `getrandom`.

use std::time::Duration;

/// Reconnect delays: `base * 2^attempt`, capped, then a random point in `[cap/2, cap]`.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            attempt: 0,
        }
    }

    /// The delay before the next attempt; `random` is any `u32` (uniform).
    pub fn next_delay(&mut self, random: u32) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(20));
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = exp.min(self.max);
        let half = ceiling / 2;
        half + half.mul_f64(f64::from(random) / f64::from(u32::MAX))
    }

    /// After a success, start again from `base`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

/// A random `u32` from the OS, or a fixed midpoint if none is available.
pub(crate) fn os_random() -> u32 {
    let mut b = [0u8; 4];
    match getrandom::fill(&mut b) {
        Ok(()) => u32::from_le_bytes(b),
        Err(_) => u32::MAX / 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(b.next_delay(u32::MAX), Duration::from_secs(1));
        assert_eq!(b.next_delay(u32::MAX), Duration::from_secs(2));
        assert_eq!(
            b.next_delay(0),
            Duration::from_secs(2),
            "jitter floor is half"
        );
        for _ in 0..20 {
            assert!(b.next_delay(u32::MAX) <= Duration::from_secs(60));
        }
        assert!(b.next_delay(0) >= Duration::from_secs(30));
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay(u32::MAX), Duration::from_secs(1));
    }
}
