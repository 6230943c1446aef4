//! The window of `Append` messages sent to one follower but not yet
//! acknowledged, bounded both by message count and by bytes (etcd-io/raft
//! `tracker.Inflights`). A full window pauses replication to that follower.

use std::collections::VecDeque;

use crate::invariant::{InvariantViolation, ensure};

const STRUCTURE: &str = "inflights";

/// Unacknowledged appends to one follower: `(last index, size in bytes)` in
/// sending order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inflights {
    window: VecDeque<(u64, u64)>,
    size_bytes: u64,
    max_count: usize,
    max_size_bytes: u64,
}

impl Inflights {
    /// An empty window holding at most `max_count` messages and
    /// `max_size_bytes` bytes (`max_count >= 1`).
    pub fn new(max_count: usize, max_size_bytes: u64) -> Inflights {
        assert!(max_count >= 1, "inflights: max_count must be at least 1");
        Inflights {
            window: VecDeque::with_capacity(max_count.min(256)),
            size_bytes: 0,
            max_count,
            max_size_bytes,
        }
    }

    /// Records an append whose last entry is `last_index` and whose
    /// entries total `size_bytes`. Indexes must increase.
    pub fn add(&mut self, last_index: u64, size_bytes: u64) {
        assert!(
            !self.full(),
            "inflights: add of {last_index} to a full window ({} messages, {} bytes)",
            self.window.len(),
            self.size_bytes
        );
        let back = self.window.back().map(|(i, _)| *i);
        assert!(
            back.is_none_or(|i| i < last_index),
            "inflights: index {last_index} added after {back:?}; indexes must increase"
        );
        self.window.push_back((last_index, size_bytes));
        self.size_bytes += size_bytes;
    }

    /// Frees every append whose last index is `<= index` (acknowledged).
    pub fn free_le(&mut self, index: u64) {
        while let Some(&(last, size)) = self.window.front() {
            if last > index {
                break;
            }
            self.window.pop_front();
            self.size_bytes -= size;
        }
    }

    /// Frees the oldest unacknowledged append (a heartbeat answer shows the
    /// follower is alive, so one more append may probe the window).
    pub fn free_first_one(&mut self) {
        if let Some((_, size)) = self.window.pop_front() {
            self.size_bytes -= size;
        }
    }

    /// Whether no more appends may be sent.
    pub fn full(&self) -> bool {
        self.window.len() >= self.max_count || self.size_bytes >= self.max_size_bytes
    }

    /// Number of unacknowledged appends.
    pub fn count(&self) -> usize {
        self.window.len()
    }

    /// Index of the last unacknowledged append, if any.
    pub fn last_index(&self) -> Option<u64> {
        self.window.back().map(|(i, _)| *i)
    }

    /// Checks that indexes strictly increase, that at most `max_count`
    /// appends are held, and that `size_bytes` is the sum of their sizes.
    /// O(window).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let count = self.window.len();
        ensure(count <= self.max_count, STRUCTURE, || {
            format!("{count} appends held, capacity {}", self.max_count)
        })?;
        let unordered = self
            .window
            .iter()
            .zip(self.window.iter().skip(1))
            .find(|(a, b)| a.0 >= b.0);
        ensure(unordered.is_none(), STRUCTURE, || {
            format!("indexes not increasing: {unordered:?}")
        })?;
        let sum: u64 = self.window.iter().map(|(_, size)| size).sum();
        ensure(sum == self.size_bytes, STRUCTURE, || {
            format!("size_bytes {} but appends total {sum}", self.size_bytes)
        })
    }

    /// Forgets every unacknowledged append.
    pub fn reset(&mut self) {
        self.window.clear();
        self.size_bytes = 0;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bounded_by_count_and_bytes() {
        let mut f = Inflights::new(3, 1000);
        f.add(1, 10);
        f.add(2, 10);
        assert!(!f.full());
        f.add(3, 10);
        assert!(f.full());
        f.free_le(2);
        assert_eq!(f.count(), 1);
        assert!(!f.full());
        f.add(4, 990);
        assert!(f.full(), "bytes bound");
        f.free_le(10);
        assert_eq!(f.count(), 0);
        f.add(11, 5);
        f.reset();
        assert!(!f.full());
        assert_eq!(f.check_invariants(), Ok(()));
    }

    #[test]
    fn disorder_overflow_and_miscounted_bytes_are_reported() {
        let mut f = Inflights::new(3, 1000);
        f.add(1, 10);
        f.add(2, 10);
        f.window.push_back((2, 0));
        assert!(f.check_invariants().is_err(), "indexes must increase");
        f.window.pop_back();
        f.window.extend([(3, 0), (4, 0)]);
        let err = f.check_invariants().err().map(|e| e.detail);
        assert_eq!(err.as_deref(), Some("4 appends held, capacity 3"));
        f.window.truncate(2);
        f.size_bytes = 5;
        assert!(f.check_invariants().is_err(), "size miscounted");
    }

    #[test]
    #[should_panic(expected = "indexes must increase")]
    fn adding_an_older_index_stops_the_member() {
        let mut f = Inflights::new(3, 1000);
        f.add(5, 10);
        f.add(5, 10);
    }
}
