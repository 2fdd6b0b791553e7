//! What `/readyz` reports for the monitor: targets loaded and the producer publishing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Readiness {
    pub targets_loaded: AtomicBool,
    /// Set by the publisher: true while its last transactional call succeeded and none hangs.
    pub producer_ready: Arc<AtomicBool>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.targets_loaded.load(Ordering::Relaxed) && self.producer_ready.load(Ordering::Relaxed)
    }
}
