//! A leaf of the index: up to [`CHUNK_CAPACITY`] key indexes in ascending
//! key order, with an inline window per key (see `window`) taken after the
//! prefix all keys of the chunk share, so a binary search reads the
//! windows array and dereferences at most one or two keys.
//!
//! Cache layout: what a search needs first, the shared prefix and a
//! summary of every [`BLOCK_KEYS`]th window, is the chunk's [`ChunkHead`],
//! of which the index keeps a copy in one dense array that stays in cache.
//! The chunk itself is one 64-byte aligned block: the windows (one cache
//! line per block of [`BLOCK_KEYS`]), then the key indexes inline. So a
//! lookup's misses are: the one windows line that can hold the key together
//! with that block's key indexes (their addresses known from the head
//! alone), then the key's blob, prefetched whole.
//!
//! Chunks are shared copy-on-write ([`Arc`]): the index holds
//! `Arc<Chunk>`s, so a clone of the index (a snapshot's frozen view) copies
//! pointers, and a write to a chunk still shared with such a clone copies
//! that chunk first (`Arc::make_mut`).

use std::sync::Arc;

use super::key_index::KeyIndex;
use super::prefetch::{CACHE_LINE_BYTES, prefetch_slice};
use super::window::{BLOCK_KEYS, Probe, common_prefix, summarize, window};

/// Most key indexes in one chunk.
pub(crate) const CHUNK_CAPACITY: usize = 128;

/// Summary entries: one per block of windows.
const BLOCKS: usize = CHUNK_CAPACITY / BLOCK_KEYS;

const _: () = assert!(BLOCK_KEYS * size_of::<u64>() == CACHE_LINE_BYTES);
const _: () = assert!(BLOCKS * BLOCK_KEYS == CHUNK_CAPACITY && BLOCKS >= 2);
const _: () = assert!(size_of::<ChunkHead>() == 3 * CACHE_LINE_BYTES);

/// Shared prefixes up to this long are kept inline (no key dereference):
/// room for etcd-style paths such as `/registry/services/endpoints/`
/// followed by a namespace, and the head fills exactly three cache lines.
const INLINE_PREFIX_BYTES: usize = 48;

/// `CHUNK_CAPACITY` windows, aligned to a cache line (so each block of
/// [`BLOCK_KEYS`] is one line).
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
struct Windows([u64; CHUNK_CAPACITY]);

/// What a search reads before the chunk: the number of keys, their shared
/// prefix and the summary of their windows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct ChunkHead {
    len: usize,
    prefix_len: usize,
    /// The shared prefix when it is at most [`INLINE_PREFIX_BYTES`] long.
    prefix_inline: [u8; INLINE_PREFIX_BYTES],
    /// `summary[b] = windows[b * BLOCK_KEYS]` for the blocks in use.
    summary: [u64; BLOCKS],
}

impl ChunkHead {
    /// The summary entries of the blocks in use.
    fn summary(&self) -> &[u64] {
        &self.summary[..self.len.div_ceil(BLOCK_KEYS)]
    }
}

/// A sorted run of key indexes. Invariants: `entries[..head.len]` are all
/// `Some`, keys strictly ascending, and the slots past them `None`;
/// `prefix_len` = common prefix of the first and last key (so of all);
/// `windows[i] = window(key i, prefix_len)` and the summary as in
/// [`ChunkHead`] for the keys present, zero past them (so equal chunks
/// compare equal); never empty once in an index.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub(crate) struct Chunk {
    windows: Windows,
    entries: [Option<KeyIndex>; CHUNK_CAPACITY],
    head: ChunkHead,
}

impl Chunk {
    /// A chunk of `entries` (ascending, at most [`CHUNK_CAPACITY`]),
    /// behind an [`Arc`]: the index moves and shares pointers, not chunks.
    pub fn new(entries: Vec<KeyIndex>) -> Arc<Chunk> {
        debug_assert!(entries.len() <= CHUNK_CAPACITY);
        debug_assert!(entries.windows(2).all(|w| w[0].key() < w[1].key()));
        let mut chunk = Chunk {
            windows: Windows([0; CHUNK_CAPACITY]),
            entries: std::array::from_fn(|_| None),
            head: ChunkHead {
                len: entries.len().min(CHUNK_CAPACITY),
                prefix_len: 0,
                prefix_inline: [0; INLINE_PREFIX_BYTES],
                summary: [0; BLOCKS],
            },
        };
        for (slot, ki) in chunk.entries.iter_mut().zip(entries) {
            *slot = Some(ki);
        }
        chunk.reindex();
        Arc::new(chunk)
    }

    /// The key at `at` (< len).
    fn key_at(&self, at: usize) -> &[u8] {
        self.entries[at]
            .as_ref()
            .map(KeyIndex::key)
            .unwrap_or_default()
    }

    fn reindex(&mut self) {
        let len = self.head.len;
        let p = match len {
            0 => 0,
            n => common_prefix(self.key_at(0), self.key_at(n - 1)),
        };
        let mut prefix_inline = [0; INLINE_PREFIX_BYTES];
        if len > 0 && p <= INLINE_PREFIX_BYTES {
            prefix_inline[..p].copy_from_slice(&self.key_at(0)[..p]);
        }
        for at in 0..CHUNK_CAPACITY {
            self.windows.0[at] = if at < len {
                window(self.key_at(at), p)
            } else {
                0
            };
        }
        self.head.prefix_len = p;
        self.head.prefix_inline = prefix_inline;
        self.summarize();
    }

    /// Recomputes the summary from the windows.
    fn summarize(&mut self) {
        self.head.summary = [0; BLOCKS];
        let windows = &self.windows.0[..self.head.len];
        for (slot, start) in self.head.summary.iter_mut().zip(summarize(windows)) {
            *slot = start;
        }
    }

    /// The chunk's head (the index keeps a copy).
    pub fn head(&self) -> &ChunkHead {
        &self.head
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.head.len
    }

    /// True when full.
    pub fn is_full(&self) -> bool {
        self.head.len >= CHUNK_CAPACITY
    }

    /// The key indexes, ascending.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &KeyIndex> {
        self.entries[..self.head.len].iter().flatten()
    }

    /// The key indexes from position `from` on, ascending.
    pub fn entries_from(&self, from: usize) -> impl Iterator<Item = &KeyIndex> {
        let from = from.min(self.head.len);
        self.entries[from..self.head.len].iter().flatten()
    }

    /// Takes the key indexes out, ascending.
    pub fn into_entries(self) -> impl Iterator<Item = KeyIndex> {
        self.entries.into_iter().flatten()
    }

    /// The first key (empty for an empty chunk).
    pub fn first_key(&self) -> &[u8] {
        self.key_at(0)
    }

    /// The last key (empty for an empty chunk).
    pub fn last_key(&self) -> &[u8] {
        self.key_at(self.head.len.saturating_sub(1))
    }

    /// `Ok(position)` of `key`, or `Err(position)` where it would go.
    pub fn search(&self, key: &[u8]) -> Result<usize, usize> {
        self.search_with(&self.head, key)
    }

    /// [`Chunk::search`] reading what it can from `head`, a copy of this
    /// chunk's head (kept in cache by the index).
    ///
    /// The summary narrows the search to the positions whose windows can
    /// equal the probe's (usually part of one block); that windows line and
    /// those key indexes are fetched together, and each candidate's blob is
    /// hinted before its key is compared, so the key's history arrives with
    /// its key bytes.
    pub fn search_with(&self, head: &ChunkHead, key: &[u8]) -> Result<usize, usize> {
        debug_assert_eq!(head, &self.head);
        if head.len == 0 {
            return Err(0);
        }
        let prefix = match head.prefix_len {
            p if p <= INLINE_PREFIX_BYTES => &head.prefix_inline[..p],
            p => &self.key_at(0)[..p],
        };
        let probe = Probe::new(key, prefix);
        let (low, high) = probe.candidates(head.summary(), head.len);
        prefetch_slice(&self.windows.0[low..high]);
        prefetch_slice(&self.entries[low..high]);
        probe.search_between(&self.windows.0[..head.len], (low, high), |at| {
            let ki = self.entries[at].as_ref();
            ki.map(KeyIndex::prefetch);
            ki.map(KeyIndex::key).unwrap_or_default()
        })
    }

    /// The key index of `key`, if present (`head` as in
    /// [`Chunk::search_with`]).
    pub fn get(&self, head: &ChunkHead, key: &[u8]) -> Option<&KeyIndex> {
        let at = self.search_with(head, key).ok()?;
        self.entries[at].as_ref()
    }

    /// Mutable access to the key index at `at` (a position
    /// [`Chunk::search_with`] found), if there is one.
    pub fn entry_mut(&mut self, at: usize) -> Option<&mut KeyIndex> {
        self.entries[..self.head.len].get_mut(at)?.as_mut()
    }

    /// Inserts at `at` (from [`Chunk::search`]); the chunk must not be full.
    pub fn insert(&mut self, at: usize, key_index: KeyIndex) {
        let len = self.head.len;
        assert!(
            len < CHUNK_CAPACITY && at <= len,
            "mvcc chunk: insert at {at} into {len} keys (capacity {CHUNK_CAPACITY})"
        );
        // For sorted keys a < b <= c, lcp(a, c) <= lcp(b, c): the shared
        // prefix can only shrink, and only when a new first or last key comes.
        let prefix_len = match len {
            0 => key_index.key().len(),
            _ if at == 0 => common_prefix(key_index.key(), self.last_key()),
            _ if at == len => common_prefix(self.first_key(), key_index.key()),
            _ => self.head.prefix_len,
        };
        let key_window = window(key_index.key(), prefix_len);
        self.entries[at..=len].rotate_right(1);
        self.entries[at] = Some(key_index);
        self.head.len = len + 1;
        if prefix_len == self.head.prefix_len && len > 0 {
            self.windows.0.copy_within(at..len, at + 1);
            self.windows.0[at] = key_window;
            self.summarize();
        } else {
            self.reindex();
        }
    }

    /// Moves the keys from `at` on into a new chunk.
    pub fn split_off(&mut self, at: usize) -> Arc<Chunk> {
        let at = at.min(self.head.len);
        let upper = self.entries[at..]
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        self.head.len = at;
        self.reindex();
        Chunk::new(upper)
    }

    /// Appends a key above every key in the chunk (must not be full).
    pub fn push(&mut self, key_index: KeyIndex) {
        let at = self.head.len;
        self.insert(at, key_index);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::mvcc::index::key_index::test_key_index as entry;

    proptest! {
        /// Keys that often share whole windows (long runs of equal bytes),
        /// so summary ties span blocks, behind a shared prefix that is
        /// either kept inline or too long for that.
        #[test]
        fn search_matches_a_plain_binary_search(
            tails in prop::collection::btree_set(
                prop::collection::vec(prop::sample::select(vec![0u8, 1, 255]), 1..20),
                1..=CHUNK_CAPACITY),
            probe in prop::collection::vec(prop::sample::select(vec![0u8, 1, 255]), 1..20),
            prefix_len in prop::sample::select(vec![0, INLINE_PREFIX_BYTES, INLINE_PREFIX_BYTES + 9]),
            probe_prefixed in prop::bool::weighted(0.8),
        ) {
            let prefix = vec![b'/'; prefix_len];
            let keys: Vec<Vec<u8>> = tails.into_iter().map(|t| [&prefix[..], &t].concat()).collect();
            // Unprefixed probes sort before or after every key.
            let probe = if probe_prefixed { [&prefix[..], &probe].concat() } else { probe };
            let chunk = Chunk::new(keys.iter().map(|k| entry(k)).collect());
            prop_assert_eq!(chunk.search(&probe), keys.binary_search(&probe));
            for (i, key) in keys.iter().enumerate() {
                prop_assert_eq!(chunk.search(key), Ok(i));
            }
            // Built by inserts and split, the same keys give an equal chunk.
            let mut built = Chunk::new(Vec::new());
            for key in keys.iter().rev() {
                let at = built.search(key).expect_err("a new key");
                Arc::make_mut(&mut built).insert(at, entry(key));
            }
            prop_assert_eq!(&built, &chunk);
            let upper = Arc::make_mut(&mut built).split_off(keys.len() / 2);
            prop_assert_eq!(built, Chunk::new(keys[..keys.len() / 2].iter().map(|k| entry(k)).collect()));
            prop_assert_eq!(upper, Chunk::new(keys[keys.len() / 2..].iter().map(|k| entry(k)).collect()));
        }
    }
}
