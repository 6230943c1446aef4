//! A leaf of the index: up to [`CHUNK_CAPACITY`] key indexes in ascending
//! key order, with an inline window per key (see `window`) taken after the
//! prefix all keys of the chunk share, so a binary search reads the
//! windows array and dereferences at most one or two keys.
//!
//! Cache layout: a chunk is one 64-byte aligned block: the header line
//! (prefix, entries), then a summary of every [`BLOCK_KEYS`]th window (two
//! lines), then the windows in blocks of one line each. A search reads the
//! header and summary (fetched together), then the one windows line that
//! can hold the key, while the entries of that block are prefetched: three
//! dependent cache misses instead of one per binary-search step.

use super::key_index::KeyIndex;
use super::prefetch::{CACHE_LINE_BYTES, prefetch, prefetch_slice};
use super::window::{BLOCK_KEYS, Probe, common_prefix, summarize, window};

/// Most key indexes in one chunk.
pub(crate) const CHUNK_CAPACITY: usize = 128;

/// Summary entries: one per block of windows.
const BLOCKS: usize = CHUNK_CAPACITY / BLOCK_KEYS;

const _: () = assert!(BLOCK_KEYS * size_of::<u64>() == CACHE_LINE_BYTES);
const _: () = assert!(BLOCKS * BLOCK_KEYS == CHUNK_CAPACITY && BLOCKS >= 2);

/// Shared prefixes up to this long are kept inline (no key dereference).
const INLINE_PREFIX_BYTES: usize = 16;

/// `N` windows, aligned to a cache line (so each block of [`BLOCK_KEYS`]
/// is one line).
#[derive(Clone, Debug)]
#[repr(C, align(64))]
struct Windows<const N: usize>([u64; N]);

/// A sorted run of key indexes. Invariants: keys strictly ascending;
/// `prefix_len` = common prefix of the first and last key (so of all);
/// `windows[i] = window(entries[i].key(), prefix_len)` and
/// `summary[b] = windows[b * BLOCK_KEYS]` for the entries present (the
/// slots past them are unused); never empty once in an index.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub(crate) struct Chunk {
    prefix_len: usize,
    /// The shared prefix when it is at most [`INLINE_PREFIX_BYTES`] long.
    prefix_inline: [u8; INLINE_PREFIX_BYTES],
    entries: Vec<KeyIndex>,
    summary: Windows<BLOCKS>,
    windows: Windows<CHUNK_CAPACITY>,
}

/// Chunks are equal when their entries and the windows in use are.
impl PartialEq for Chunk {
    fn eq(&self, other: &Chunk) -> bool {
        self.prefix_len == other.prefix_len
            && self.prefix_inline == other.prefix_inline
            && self.entries == other.entries
            && self.windows() == other.windows()
            && self.summary() == other.summary()
    }
}

impl Eq for Chunk {}

impl Chunk {
    /// A chunk of `entries` (ascending, at most [`CHUNK_CAPACITY`]), boxed:
    /// the index moves pointers, not chunks.
    pub fn new(entries: Vec<KeyIndex>) -> Box<Chunk> {
        debug_assert!(entries.len() <= CHUNK_CAPACITY);
        debug_assert!(entries.windows(2).all(|w| w[0].key() < w[1].key()));
        let mut chunk = Box::new(Chunk {
            prefix_len: 0,
            prefix_inline: [0; INLINE_PREFIX_BYTES],
            entries,
            summary: Windows([0; BLOCKS]),
            windows: Windows([0; CHUNK_CAPACITY]),
        });
        chunk
            .entries
            .reserve_exact(CHUNK_CAPACITY.saturating_sub(chunk.entries.len()));
        chunk.reindex();
        chunk
    }

    fn reindex(&mut self) {
        self.prefix_len = match (self.entries.first(), self.entries.last()) {
            (Some(first), Some(last)) => common_prefix(first.key(), last.key()),
            _ => 0,
        };
        let p = self.prefix_len;
        self.prefix_inline = [0; INLINE_PREFIX_BYTES];
        if let Some(first) = self.entries.first()
            && p <= INLINE_PREFIX_BYTES
        {
            self.prefix_inline[..p].copy_from_slice(&first.key()[..p]);
        }
        for (slot, ki) in self.windows.0.iter_mut().zip(&self.entries) {
            *slot = window(ki.key(), p);
        }
        self.summarize();
    }

    /// Recomputes the summary from the windows.
    fn summarize(&mut self) {
        let len = self.entries.len();
        for (slot, start) in self
            .summary
            .0
            .iter_mut()
            .zip(summarize(&self.windows.0[..len]))
        {
            *slot = start;
        }
    }

    /// The windows of the entries present.
    fn windows(&self) -> &[u64] {
        &self.windows.0[..self.entries.len()]
    }

    /// The summary entries of the blocks present.
    fn summary(&self) -> &[u64] {
        &self.summary.0[..self.entries.len().div_ceil(BLOCK_KEYS)]
    }

    /// Hints that this chunk's header and summary will be read soon.
    pub fn prefetch(&self) {
        let at: *const Chunk = self;
        prefetch(at);
        prefetch(&self.summary.0[0]);
        prefetch(&self.summary.0[BLOCK_KEYS]);
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when full.
    pub fn is_full(&self) -> bool {
        self.entries.len() >= CHUNK_CAPACITY
    }

    /// The key indexes, ascending.
    pub fn entries(&self) -> &[KeyIndex] {
        &self.entries
    }

    /// Takes the key indexes out.
    pub fn into_entries(self) -> Vec<KeyIndex> {
        self.entries
    }

    /// The first key (empty for an empty chunk).
    pub fn first_key(&self) -> &[u8] {
        self.entries.first().map(KeyIndex::key).unwrap_or_default()
    }

    /// `Ok(position)` of `key`, or `Err(position)` where it would go.
    ///
    /// The summary narrows the search to the positions whose windows can
    /// equal the probe's (usually part of one block); those entries are
    /// prefetched and the key of each candidate is hinted before it is
    /// compared, so the key's history arrives with its key bytes.
    pub fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let Some(first) = self.entries.first() else {
            return Err(0);
        };
        let prefix = match self.prefix_len {
            p if p <= INLINE_PREFIX_BYTES => &self.prefix_inline[..p],
            p => &first.key()[..p],
        };
        let probe = Probe::new(key, prefix);
        let (low, high) = probe.candidates(self.summary(), self.entries.len());
        prefetch_slice(&self.entries[low..high]);
        probe.search_between(self.windows(), (low, high), |at| {
            let ki = &self.entries[at];
            ki.prefetch();
            ki.key()
        })
    }

    /// The key index of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<&KeyIndex> {
        self.search(key).ok().map(|at| &self.entries[at])
    }

    /// Mutable access to the key index of `key`, if present.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut KeyIndex> {
        let at = self.search(key).ok()?;
        self.entries.get_mut(at)
    }

    /// Inserts at `at` (from [`Chunk::search`]); the chunk must not be full.
    pub fn insert(&mut self, at: usize, key_index: KeyIndex) {
        debug_assert!(!self.is_full());
        let len = self.entries.len();
        // For sorted keys a < b <= c, lcp(a, c) <= lcp(b, c): the shared
        // prefix can only shrink, and only when a new first or last key comes.
        let prefix_len = match (self.entries.first(), self.entries.last()) {
            (Some(_), Some(last)) if at == 0 => common_prefix(key_index.key(), last.key()),
            (Some(first), Some(_)) if at == len => common_prefix(first.key(), key_index.key()),
            (Some(_), Some(_)) => self.prefix_len,
            _ => key_index.key().len(),
        };
        let key_window = window(key_index.key(), prefix_len);
        self.entries.insert(at, key_index);
        if prefix_len == self.prefix_len && len > 0 {
            self.windows.0.copy_within(at..len, at + 1);
            self.windows.0[at] = key_window;
            self.summarize();
        } else {
            self.reindex();
        }
    }

    /// Moves the keys from `at` on into a new chunk.
    pub fn split_off(&mut self, at: usize) -> Box<Chunk> {
        let upper = self.entries.split_off(at);
        self.reindex();
        Chunk::new(upper)
    }

    /// Appends a key above every key in the chunk (must not be full).
    pub fn push(&mut self, key_index: KeyIndex) {
        let at = self.entries.len();
        self.insert(at, key_index);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::mvcc::key_index::Version;
    use crate::mvcc::revision::Revision;

    fn entry(key: &[u8]) -> KeyIndex {
        let v = Version {
            rev: Revision::new(1, 0),
            create_revision: 1,
            version: 1,
            lease: 0,
            value: Some(b"v"),
        };
        KeyIndex::new(key, &v)
    }

    proptest! {
        /// Keys that often share whole windows (long runs of equal bytes),
        /// so summary ties span blocks.
        #[test]
        fn search_matches_a_plain_binary_search(
            keys in prop::collection::btree_set(
                prop::collection::vec(prop::sample::select(vec![0u8, 1, 255]), 1..20),
                1..=CHUNK_CAPACITY),
            probe in prop::collection::vec(prop::sample::select(vec![0u8, 1, 255]), 1..20),
        ) {
            let keys: Vec<Vec<u8>> = keys.into_iter().collect();
            let chunk = Chunk::new(keys.iter().map(|k| entry(k)).collect());
            prop_assert_eq!(chunk.search(&probe), keys.binary_search(&probe));
            for (i, key) in keys.iter().enumerate() {
                prop_assert_eq!(chunk.search(key), Ok(i));
            }
        }
    }
}
