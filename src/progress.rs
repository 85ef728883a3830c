//! How far long work has come (files verified, accounts reconciled): counted where the work is
//! done, shown by the CLI while stderr is a terminal (`cli::progress`). A `Progress` nobody
//! watches counts nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, Default)]
pub struct Progress(Option<Arc<Counts>>);

#[derive(Debug, Default)]
struct Counts {
    done: AtomicU64,
    total: AtomicU64,
}

impl Progress {
    /// Counts nothing (the controller, the tests, a CLI writing to a pipe).
    pub fn none() -> Self {
        Self(None)
    }

    /// Counts, for someone to show.
    pub fn counting() -> Self {
        Self(Some(Arc::default()))
    }

    /// More work became known (the total grows as the work finds it, e.g. a digest's log files).
    pub fn add_total(&self, n: u64) {
        if let Some(c) = &self.0 {
            c.total.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// `n` more done.
    pub fn advance(&self, n: u64) {
        if let Some(c) = &self.0 {
            c.done.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// (done, total) so far.
    pub fn counts(&self) -> (u64, u64) {
        self.0.as_ref().map_or((0, 0), |c| {
            (c.done.load(Ordering::Relaxed), c.total.load(Ordering::Relaxed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_when_counting() {
        let none = Progress::none();
        none.add_total(3);
        none.advance(1);
        assert_eq!(none.counts(), (0, 0));
        let counting = Progress::counting();
        counting.add_total(3);
        counting.clone().advance(2);
        assert_eq!(counting.counts(), (2, 3));
    }
}
