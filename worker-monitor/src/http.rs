//! What `/readyz` reports for the monitor: targets loaded and the producer initialised.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Readiness {
    pub targets_loaded: AtomicBool,
    pub producer_ready: AtomicBool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.targets_loaded.load(Ordering::Relaxed) && self.producer_ready.load(Ordering::Relaxed)
    }
}
