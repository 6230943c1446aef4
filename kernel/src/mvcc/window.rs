//! Key windows: comparing keys that share a known prefix by an inline
//! 8-byte number first, so most comparisons in the index touch no key bytes
//! on the heap (a cache miss each).
//!
//! For keys that both start with a prefix of length `p`, comparing
//! `(window(a, p), a[p..])` with `(window(b, p), b[p..])` gives the same
//! order as comparing `a` with `b`: windows are the next 8 bytes, big-endian
//! and zero padded, and a zero-padded tie falls through to the full bytes.

use std::cmp::Ordering;

/// The 8 bytes of `key` from `from` on, zero padded, as a big-endian number.
pub(crate) fn window(key: &[u8], from: usize) -> u64 {
    let mut bytes = [0u8; 8];
    let tail = key.get(from..).unwrap_or_default();
    let n = tail.len().min(8);
    bytes[..n].copy_from_slice(&tail[..n]);
    u64::from_be_bytes(bytes)
}

/// Length of the longest common prefix of `a` and `b`.
pub(crate) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A search key prepared for windowed comparisons against stored keys that
/// all start with `prefix`.
pub(crate) enum Probe<'a> {
    /// The key sorts before every stored key.
    Before,
    /// The key sorts after every stored key.
    After,
    /// The key shares the prefix; compare by `(window, key[prefix_len..])`.
    Within {
        window: u64,
        rest: &'a [u8],
        prefix_len: usize,
    },
}

impl<'a> Probe<'a> {
    /// Prepares `key` against stored keys sharing `prefix`.
    pub fn new(key: &'a [u8], prefix: &[u8]) -> Probe<'a> {
        if key.starts_with(prefix) {
            let prefix_len = prefix.len();
            Probe::Within {
                window: window(key, prefix_len),
                rest: &key[prefix_len..],
                prefix_len,
            }
        } else if key < prefix {
            Probe::Before
        } else {
            Probe::After
        }
    }

    /// Compares a stored key (given by its window and a way to get its
    /// bytes) with the probe. Only called for `Within`.
    pub fn stored_cmp<'k>(
        &self,
        stored_window: u64,
        stored_key: impl FnOnce() -> &'k [u8],
    ) -> Ordering {
        match self {
            Probe::Before => Ordering::Greater,
            Probe::After => Ordering::Less,
            Probe::Within {
                window,
                rest,
                prefix_len,
            } => stored_window.cmp(window).then_with(|| {
                stored_key()
                    .get(*prefix_len..)
                    .unwrap_or_default()
                    .cmp(rest)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn windowed_order_is_key_order(
            prefix in prop::collection::vec(0u8..3, 0..4),
            a in prop::collection::vec(0u8..3, 0..12),
            b in prop::collection::vec(0u8..3, 0..12),
        ) {
            let a = [prefix.clone(), a].concat();
            let b = [prefix.clone(), b].concat();
            let probe = Probe::new(&a, &prefix);
            prop_assert_eq!(probe.stored_cmp(window(&b, prefix.len()), || &b), b.cmp(&a));
            prop_assert!(common_prefix(&a, &b) >= prefix.len());
        }

        #[test]
        fn probes_outside_the_prefix(key in prop::collection::vec(0u8..3, 0..6), prefix in prop::collection::vec(0u8..3, 1..4)) {
            match Probe::new(&key, &prefix) {
                Probe::Before => prop_assert!(key < prefix),
                Probe::After => prop_assert!(key > prefix && !key.starts_with(&prefix)),
                Probe::Within { .. } => prop_assert!(key.starts_with(&prefix)),
            }
        }
    }
}
