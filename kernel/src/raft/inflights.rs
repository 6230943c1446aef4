//! The window of `Append` messages sent to one follower but not yet
//! acknowledged, bounded both by message count and by bytes (etcd-io/raft
//! `tracker.Inflights`). A full window pauses replication to that follower.

use std::collections::VecDeque;

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
        debug_assert!(max_count >= 1);
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
        debug_assert!(!self.full(), "inflights overflow");
        debug_assert!(self.window.back().is_none_or(|(i, _)| *i < last_index));
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
    }
}
