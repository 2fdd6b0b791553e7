//! Retry with capped exponential backoff: the one helper every retry loop uses.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Waits between attempts: `first`, doubling, at most `max`; `reset` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            attempt: 0,
        }
    }

    /// Failed attempts since the last success.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The wait before the next attempt; counts a failed attempt.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self
            .first
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Sleeps the next delay; false when `cancel` fired first (stop retrying).
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = cancel.cancelled() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.attempt(), 6);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn wait_stops_when_cancelled() {
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert!(!b.wait(&cancel).await);
    }
}
