//! A fixed-size bit set: the set of operations linearized so far, part of
//! the search's memo key.

/// A set of indexes below a fixed capacity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    /// An empty set for indexes `0..capacity`.
    pub(crate) fn new(capacity: usize) -> BitSet {
        BitSet {
            words: vec![0; capacity.div_ceil(64)],
        }
    }

    /// Adds `index` (below the capacity).
    pub(crate) fn insert(&mut self, index: usize) {
        self.words[index / 64] |= 1 << (index % 64);
    }

    /// Removes `index` (below the capacity).
    pub(crate) fn remove(&mut self, index: usize) {
        self.words[index / 64] &= !(1 << (index % 64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_and_remove_change_equality() {
        let mut a = BitSet::new(130);
        let b = BitSet::new(130);
        a.insert(129);
        assert_ne!(a, b);
        a.remove(129);
        assert_eq!(a, b);
    }
}
