//! A leaf of the index: up to [`CHUNK_CAPACITY`] key indexes in ascending
//! key order, with an inline window per key (see `window`) taken after the
//! prefix all keys of the chunk share, so a binary search reads the
//! windows array and dereferences at most one or two keys.

use super::key_index::KeyIndex;
use super::window::{Probe, common_prefix, window};

/// Most key indexes in one chunk.
pub(crate) const CHUNK_CAPACITY: usize = 128;

/// Shared prefixes up to this long are kept inline (no key dereference).
const INLINE_PREFIX_BYTES: usize = 16;

/// A sorted run of key indexes. Invariants: keys strictly ascending;
/// `prefix_len` = common prefix of the first and last key (so of all);
/// `windows[i] = window(entries[i].key(), prefix_len)`; never empty once
/// in an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    prefix_len: usize,
    /// The shared prefix when it is at most [`INLINE_PREFIX_BYTES`] long.
    prefix_inline: [u8; INLINE_PREFIX_BYTES],
    windows: Vec<u64>,
    entries: Vec<KeyIndex>,
}

impl Chunk {
    /// A chunk of `entries` (ascending, at most [`CHUNK_CAPACITY`]).
    pub fn new(entries: Vec<KeyIndex>) -> Chunk {
        debug_assert!(entries.len() <= CHUNK_CAPACITY);
        debug_assert!(entries.windows(2).all(|w| w[0].key() < w[1].key()));
        let mut chunk = Chunk {
            prefix_len: 0,
            prefix_inline: [0; INLINE_PREFIX_BYTES],
            windows: Vec::with_capacity(CHUNK_CAPACITY),
            entries,
        };
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
        self.windows.clear();
        self.windows
            .extend(self.entries.iter().map(|ki| window(ki.key(), p)));
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
    pub fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let Some(first) = self.entries.first() else {
            return Err(0);
        };
        let prefix = match self.prefix_len {
            p if p <= INLINE_PREFIX_BYTES => &self.prefix_inline[..p],
            p => &first.key()[..p],
        };
        Probe::new(key, prefix).search(&self.windows, |at| self.entries[at].key())
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
            self.windows.insert(at, key_window);
        } else {
            self.reindex();
        }
    }

    /// Moves the keys from `at` on into a new chunk.
    pub fn split_off(&mut self, at: usize) -> Chunk {
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
