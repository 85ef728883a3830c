//! The write fence's clock: until when this replica may write, to AWS and to the API server.
//!
//! The leader publishes its renew deadline here, on this process's monotonic clock; the AWS
//! clients (`aws::fence`) check it before every attempt they transmit and the Kubernetes writer
//! (`controller::writer`) before every request. It needs nothing but the clock, so that every layer
//! can check it without depending on the election itself.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// Milliseconds on this process's monotonic clock (it keeps counting while the process is
/// stopped, so a replica frozen past its deadline wakes up no longer leading).
pub fn monotonic_ms() -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as i64
}

/// Whether this replica may write: open while this replica leads (or without election), shut the
/// moment the renew deadline passes, on its own clock, even if the task that renews is stuck.
/// Every write of the controller, to AWS or to the API server, checks it just before it is sent.
#[derive(Clone, Debug)]
pub struct WriteGate(std::sync::Arc<AtomicI64>);

impl WriteGate {
    /// A gate that is open forever (no leader election).
    pub fn open() -> Self {
        Self(std::sync::Arc::new(AtomicI64::new(i64::MAX)))
    }

    /// A gate that is shut until `lead_until` opens it.
    pub fn shut() -> Self {
        Self(std::sync::Arc::new(AtomicI64::new(i64::MIN)))
    }

    pub fn lead_until(&self, until_ms: Option<i64>) {
        self.0.store(until_ms.unwrap_or(i64::MIN), Ordering::SeqCst);
    }

    pub fn is_open(&self) -> bool {
        monotonic_ms() < self.0.load(Ordering::SeqCst)
    }

    /// How long writes stay allowed from now (None: shut). A write is bounded by it, so that
    /// one that hangs cannot land after the deadline.
    pub fn remaining(&self) -> Option<Duration> {
        let left = self.0.load(Ordering::SeqCst).saturating_sub(monotonic_ms());
        (left > 0).then(|| Duration::from_millis(left as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_is_open_until_its_deadline_and_says_how_long_is_left() {
        let gate = WriteGate::shut();
        assert!(!gate.is_open());
        assert_eq!(gate.remaining(), None);
        gate.lead_until(Some(monotonic_ms() + 60_000));
        assert!(gate.is_open());
        assert!(gate.remaining().is_some_and(|left| left > Duration::from_secs(50)));
        gate.lead_until(Some(monotonic_ms() - 1));
        assert!(!gate.is_open());
        gate.lead_until(None);
        assert!(!gate.is_open());
        assert!(WriteGate::open().is_open());
    }
}
