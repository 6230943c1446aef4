//! The ordered index from key to its history (etcd `treeIndex`).
//!
//! A two-level B+-tree. Leaves are [`Chunk`]s of up to
//! [`CHUNK_CAPACITY`] key indexes; the top level is a sorted array of
//! separators (the first key of each chunk but the first), searched by
//! binary search on inline windows (see `window`), narrowed first by a
//! summary of every 8th window, so a lookup touches a few contiguous arrays
//! and only one or two keys on the heap. Each key is stored once, inside
//! its [`KeyIndex`]; separators copy about one key in a hundred. About 45
//! bytes per key beyond the key index itself.
//!
//! A random lookup in a store much larger than the cache misses: the
//! separator block and the chunk's head (a copy kept in `heads`, both
//! usually in the last-level cache), then one windows line with its key
//! indexes (fetched together), then the key's blob (prefetched whole).
//!
//! Internals, one file each: `key_index` (a key and its versions in one
//! allocation), `chunk` (a leaf of up to [`CHUNK_CAPACITY`] key indexes),
//! `window` (inline 8-byte key windows and their search), `prefetch`
//! (cache-line prefetch hints) and `varint` (LEB128, shared with the
//! snapshot format).
//!
//! Invariants: chunk `i + 1` holds keys `>= separators[i]` and below
//! `separators[i + 1]`; chunk 0 holds keys below `separators[0]`; the
//! separators are strictly ascending and all start with `separator_prefix`;
//! `heads[i]` equals `chunks[i].head()`; no chunk is empty unless the index
//! is.
//!
//! Copy-on-write: chunks are shared [`Arc`]s and separators [`Arc`]ed
//! keys, so [`Index::clone`] costs O(number of chunks) pointer copies (no
//! key is copied): a snapshot takes such a clone as its frozen view under
//! the state lock and encodes it afterwards. A write to a chunk still
//! shared with a clone copies that one chunk first (`Arc::make_mut`); when
//! it is not shared, that is one atomic check.

mod chunk;
pub(crate) mod key_index;
mod prefetch;
pub(crate) mod varint;
mod window;

use std::sync::Arc;

use crate::invariant::{InvariantViolation, ensure};
use chunk::{CHUNK_CAPACITY, Chunk, ChunkHead};
use key_index::KeyIndex;
use window::{Probe, common_prefix, summarize, window};

/// Ordered map of key -> [`KeyIndex`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Index {
    /// `separators[i]` is the lowest key of chunk `i + 1` (shared, so a
    /// clone copies pointers).
    separators: Vec<Arc<[u8]>>,
    /// `window(separators[i], separator_prefix.len())`, kept apart so the
    /// binary search walks a dense array.
    separator_windows: Vec<u64>,
    /// Every `BLOCK_KEYS`th separator window (see `window`): a small array
    /// that stays in cache and narrows a search to one block of windows.
    separator_summary: Vec<u64>,
    separator_prefix: Box<[u8]>,
    /// Shared copy-on-write: adding a chunk moves pointers, cloning the
    /// index copies them.
    chunks: Vec<Arc<Chunk>>,
    /// `heads[i]` = a copy of `chunks[i].head()`: a dense array (about 1%
    /// of the store) that stays in cache, so a lookup's first miss in a
    /// chunk is the one line of windows it needs.
    heads: Vec<ChunkHead>,
    len: usize,
}

/// Indexes are equal when they hold equal keys and histories, however
/// they are chunked.
impl PartialEq for Index {
    fn eq(&self, other: &Index) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Index {}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The chunk whose span holds `key` (0 when the index is empty).
    fn chunk_for(&self, key: &[u8]) -> usize {
        if self.separators.is_empty() {
            return 0;
        }
        // Chunk i + 1 starts at separator i: count the separators <= key.
        let probe = Probe::new(key, &self.separator_prefix);
        let span = probe.candidates(&self.separator_summary, self.separators.len());
        match probe.search_between(&self.separator_windows, span, |at| &self.separators[at]) {
            Ok(at) => at + 1,
            Err(at) => at,
        }
    }

    /// The history of `key`, if the index holds it.
    pub fn get(&self, key: &[u8]) -> Option<&KeyIndex> {
        let at = self.chunk_for(key);
        self.chunks.get(at)?.get(self.heads.get(at)?, key)
    }

    /// Mutable access to the history of `key`. The key's chunk is copied
    /// first if a clone of the index still shares it (only when the key is
    /// there).
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut KeyIndex> {
        let at = self.chunk_for(key);
        let position = self.chunks.get(at)?.search_with(self.heads.get(at)?, key);
        let position = position.ok()?;
        let chunk = self.chunks.get_mut(at)?;
        Arc::make_mut(chunk).entry_mut(position)
    }

    /// Adds a key that is not in the index yet. Panics if it is there: the
    /// store looks a key up before inserting it.
    pub fn insert(&mut self, key_index: KeyIndex) {
        let at = self.chunk_for(key_index.key());
        let is_last = at + 1 == self.chunks.len();
        let Some(chunk) = self.chunks.get_mut(at) else {
            self.push_chunk(Chunk::new(vec![key_index]));
            self.len = 1;
            return;
        };
        let Err(position) = chunk.search(key_index.key()) else {
            panic!("mvcc index: insert of a key already present");
        };
        let chunk = Arc::make_mut(chunk);
        self.len += 1;
        if !chunk.is_full() {
            chunk.insert(position, key_index);
            self.heads[at] = chunk.head().clone();
            return;
        }
        // Full: an append to the last chunk starts a new chunk (so ascending
        // loads fill chunks completely); any other insert splits it in half.
        let mut upper = if is_last && position == chunk.len() {
            Chunk::new(Vec::new())
        } else {
            chunk.split_off(CHUNK_CAPACITY / 2)
        };
        let lower_len = chunk.len();
        if upper.len() == 0 || position > lower_len {
            Arc::make_mut(&mut upper).insert(position - lower_len, key_index);
        } else {
            chunk.insert(position, key_index);
        }
        self.heads[at] = chunk.head().clone();
        self.add_chunk(at + 1, upper);
    }

    /// Adds the first chunk.
    fn push_chunk(&mut self, chunk: Arc<Chunk>) {
        assert!(
            self.chunks.is_empty(),
            "mvcc index: first chunk added twice"
        );
        self.heads.push(chunk.head().clone());
        self.chunks.push(chunk);
    }

    /// Puts `chunk` at position `at` (>= 1), its first key as separator.
    fn add_chunk(&mut self, at: usize, chunk: Arc<Chunk>) {
        assert!(
            at >= 1 && chunk.len() > 0,
            "mvcc index: chunk added at {at} with {} keys",
            chunk.len()
        );
        let key: Arc<[u8]> = chunk.first_key().into();
        let prefix_len = if self.separators.is_empty() {
            key.len()
        } else {
            common_prefix(&self.separator_prefix, &key)
        };
        if self.separators.is_empty() || prefix_len < self.separator_prefix.len() {
            self.separator_prefix = key[..prefix_len].into();
            let windows = self.separators.iter().map(|sep| window(sep, prefix_len));
            self.separator_windows = windows.collect();
        }
        self.separator_windows
            .insert(at - 1, window(&key, prefix_len));
        self.separators.insert(at - 1, key);
        self.separator_summary.clear();
        let summary = summarize(&self.separator_windows);
        self.separator_summary.extend(summary);
        self.heads.insert(at, chunk.head().clone());
        self.chunks.insert(at, chunk);
    }

    /// Key indexes with keys in `[start, end)` in ascending key order
    /// (`end = None`: no upper bound).
    pub fn range<'a, 'b>(
        &'a self,
        start: &'b [u8],
        end: Option<&'b [u8]>,
    ) -> impl Iterator<Item = &'a KeyIndex> + 'b
    where
        'a: 'b,
    {
        let first = self.chunk_for(start);
        let skip = self
            .chunks
            .get(first)
            .map_or(0, |c| c.search(start).unwrap_or_else(|at| at));
        self.chunks
            .get(first..)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .flat_map(move |(i, chunk)| chunk.entries_from(if i == 0 { skip } else { 0 }))
            .take_while(move |ki| end.is_none_or(|end| ki.key() < end))
    }

    /// Every key index in key order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyIndex> {
        self.chunks.iter().flat_map(|chunk| chunk.entries())
    }

    /// Replaces every key index by `f(key_index)`, dropping those for which
    /// it returns `None`, and repacks the chunks. O(number of keys).
    pub fn rebuild(&mut self, mut f: impl FnMut(KeyIndex) -> Option<KeyIndex>) {
        let old = std::mem::take(self);
        let mut loader = Loader::new(self);
        for ki in old
            .chunks
            .into_iter()
            .flat_map(|chunk| Arc::unwrap_or_clone(chunk).into_entries())
        {
            if let Some(next) = f(ki) {
                let pushed = loader.push(next);
                debug_assert!(pushed, "rebuild keeps key order");
            }
        }
    }
}

const STRUCTURE: &str = "mvcc index";

impl Index {
    /// Checks every invariant in this module's doc: keys ascending and
    /// counted, one separator per chunk after the first, chunks non-empty
    /// and within capacity with their windows, prefix and head copies up
    /// to date, each chunk's keys within its separators, separator windows
    /// and summary up to date. O(number of keys).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let keys: Vec<&[u8]> = self.iter().map(KeyIndex::key).collect();
        ensure(keys.windows(2).all(|w| w[0] < w[1]), STRUCTURE, || {
            "keys not strictly ascending".into()
        })?;
        ensure(keys.len() == self.len, STRUCTURE, || {
            format!("len {} but {} keys", self.len, keys.len())
        })?;
        let (separators, chunks) = (self.separators.len(), self.chunks.len());
        ensure(separators + 1 == chunks.max(1), STRUCTURE, || {
            format!("{separators} separators for {chunks} chunks")
        })?;
        ensure(self.heads.len() == chunks, STRUCTURE, || {
            format!("{} head copies for {chunks} chunks", self.heads.len())
        })?;
        for at in 0..chunks {
            self.check_chunk(at)?;
        }
        self.check_separators()
    }

    /// Chunk `at`: non-empty, within capacity, windows and head up to
    /// date, keys within its separators.
    fn check_chunk(&self, at: usize) -> Result<(), InvariantViolation> {
        let chunk = &self.chunks[at];
        let len = chunk.len();
        ensure(len > 0 && len <= CHUNK_CAPACITY, STRUCTURE, || {
            format!("chunk {at} holds {len} keys")
        })?;
        let rebuilt = Chunk::new(chunk.entries().cloned().collect());
        ensure(**chunk == *rebuilt, STRUCTURE, || {
            format!("chunk {at} windows or prefix out of date")
        })?;
        ensure(self.heads[at] == *chunk.head(), STRUCTURE, || {
            format!("head copy of chunk {at} out of date")
        })?;
        let low = at.checked_sub(1).map(|s| &*self.separators[s]);
        let high = self.separators.get(at).map(|s| &**s);
        let within = |k: &[u8]| low.is_none_or(|l| k >= l) && high.is_none_or(|h| k < h);
        ensure(
            chunk.entries().all(|ki| within(ki.key())),
            STRUCTURE,
            || format!("chunk {at} holds a key outside its separators"),
        )
    }

    /// Separators share the prefix; their windows and summary are up to date.
    fn check_separators(&self) -> Result<(), InvariantViolation> {
        ensure(
            self.separators.len() == self.separator_windows.len(),
            STRUCTURE,
            || "separator windows out of step".into(),
        )?;
        let prefix_len = self.separator_prefix.len();
        for (sep, w) in self.separators.iter().zip(&self.separator_windows) {
            let fresh = sep.starts_with(&self.separator_prefix) && *w == window(sep, prefix_len);
            ensure(fresh, STRUCTURE, || {
                format!("separator {sep:?} window or prefix out of date")
            })?;
        }
        let summary: Vec<u64> = summarize(&self.separator_windows).collect();
        ensure(self.separator_summary == summary, STRUCTURE, || {
            "separator summary out of date".into()
        })
    }
}

/// Appends keys in ascending order to an index, filling chunks fully.
pub(crate) struct Loader<'a> {
    index: &'a mut Index,
}

impl<'a> Loader<'a> {
    /// Starts appending to `index`.
    pub fn new(index: &'a mut Index) -> Loader<'a> {
        Loader { index }
    }

    /// Appends `key_index`, whose key must be above every key so far.
    /// Returns false (and adds nothing) if it is not.
    pub fn push(&mut self, key_index: KeyIndex) -> bool {
        let index = &mut *self.index;
        let Some(last) = index.chunks.last_mut() else {
            index.push_chunk(Chunk::new(vec![key_index]));
            index.len = 1;
            return true;
        };
        if last.last_key() >= key_index.key() {
            return false;
        }
        index.len += 1;
        if !last.is_full() {
            let last = Arc::make_mut(last);
            last.push(key_index);
            let head = last.head().clone();
            if let Some(copy) = index.heads.last_mut() {
                *copy = head;
            }
        } else {
            let at = index.chunks.len();
            index.add_chunk(at, Chunk::new(vec![key_index]));
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;
    use crate::mvcc::index::key_index::test_key_index as entry;

    fn check_invariants(index: &Index) {
        assert_eq!(index.check_invariants(), Ok(()));
    }

    /// Short keys from a small alphabet, often behind a shared prefix, so
    /// windows tie and prefixes shrink.
    fn key() -> impl Strategy<Value = Vec<u8>> {
        let tail = prop::collection::vec(0u8..4, 1..11);
        (
            prop::sample::select(vec![&b""[..], b"/registry/", b"/registry/pods/"]),
            tail,
        )
            .prop_map(|(prefix, tail)| [prefix, &tail].concat())
    }

    proptest! {
        #[test]
        fn matches_a_btree_set(keys in prop::collection::vec(key(), 0..1200),
                               start in key(),
                               end in prop::option::of(key())) {
            let mut index = Index::new();
            let mut model = BTreeSet::new();
            for key in &keys {
                if model.insert(key.clone()) {
                    index.insert(entry(key));
                }
                prop_assert!(index.get(key).is_some());
            }
            check_invariants(&index);
            let got: Vec<Vec<u8>> = index.range(&start, end.as_deref()).map(|ki| ki.key().to_vec()).collect();
            let want: Vec<Vec<u8>> = model
                .iter()
                .filter(|k| k.as_slice() >= start.as_slice() && end.as_ref().is_none_or(|e| k < &e))
                .cloned()
                .collect();
            prop_assert_eq!(got, want);
            prop_assert!(index.get(&[9]).is_none());
            for key in &model {
                prop_assert!(index.get(key).is_some());
            }
            index.rebuild(|ki| (ki.key().last().is_some_and(|b| b % 2 == 0)).then_some(ki));
            check_invariants(&index);
            prop_assert_eq!(index.len(), model.iter().filter(|k| k.last().is_some_and(|b| b % 2 == 0)).count());
        }
    }

    #[test]
    fn a_stale_head_or_a_misplaced_key_is_reported() {
        let mut index = Index::new();
        for i in 0..(CHUNK_CAPACITY * 2) as u32 {
            index.insert(entry(&i.to_be_bytes()));
        }
        check_invariants(&index);
        let mut stale = index.clone();
        stale.heads.swap(0, 1);
        let err = stale.check_invariants().err().map(|e| e.detail);
        assert_eq!(err.as_deref(), Some("head copy of chunk 0 out of date"));
        let mut miscounted = index.clone();
        miscounted.len += 1;
        assert!(miscounted.check_invariants().is_err());
        let mut misplaced = index;
        misplaced.separators[0] = vec![0xff; 4].into();
        assert!(misplaced.check_invariants().is_err());
    }

    #[test]
    fn a_stale_separator_window_is_reported() {
        let mut index = Index::new();
        for i in 0..(CHUNK_CAPACITY * 2) as u32 {
            index.insert(entry(&i.to_be_bytes()));
        }
        let mut stale = index;
        stale.separator_windows[0] ^= 1;
        let err = stale.check_invariants().err().map(|e| e.detail);
        assert!(
            err.as_deref()
                .is_some_and(|e| e.ends_with("window or prefix out of date")),
            "{err:?}"
        );
    }

    #[test]
    fn a_clone_shares_every_chunk_and_a_write_copies_only_its_own() {
        let mut index = Index::new();
        for i in 0..(CHUNK_CAPACITY * 4) as u32 {
            index.insert(entry(&i.to_be_bytes()));
        }
        let frozen = index.clone();
        let shared = |a: &Index, b: &Index| -> Vec<bool> {
            a.chunks
                .iter()
                .zip(&b.chunks)
                .map(|(x, y)| Arc::ptr_eq(x, y))
                .collect()
        };
        assert_eq!(shared(&index, &frozen), [true; 4]);
        let separators = index.separators.iter().zip(&frozen.separators);
        assert!(separators.into_iter().all(|(x, y)| Arc::ptr_eq(x, y)));
        // A key that is not there copies nothing; one that is copies its chunk.
        assert!(index.get_mut(&[9; 9]).is_none());
        assert_eq!(shared(&index, &frozen), [true; 4]);
        let key = (CHUNK_CAPACITY as u32 + 1).to_be_bytes();
        let replacement = key_index::test_key_index(&key);
        *index.get_mut(&key).unwrap() = replacement;
        assert_eq!(shared(&index, &frozen), [true, false, true, true]);
        // A write to a chunk no clone shares changes it in place.
        let copied = Arc::as_ptr(&index.chunks[1]);
        *index.get_mut(&key).unwrap() = key_index::test_key_index(&key);
        assert_eq!(Arc::as_ptr(&index.chunks[1]), copied);
        check_invariants(&index);
        check_invariants(&frozen);
    }

    #[test]
    fn a_loader_fills_chunks() {
        let mut index = Index::new();
        let mut loader = Loader::new(&mut index);
        for i in 0..(CHUNK_CAPACITY * 2 + 1) as u32 {
            assert!(loader.push(entry(&i.to_be_bytes())));
        }
        assert!(!loader.push(entry(&0u32.to_be_bytes())), "keys must ascend");
        check_invariants(&index);
        assert_eq!(index.chunks.len(), 3);
        assert_eq!(index.len(), CHUNK_CAPACITY * 2 + 1);
    }

    #[test]
    fn ascending_loads_fill_chunks() {
        let mut index = Index::new();
        for i in 0..(CHUNK_CAPACITY * 4) as u32 {
            index.insert(entry(&i.to_be_bytes()));
        }
        check_invariants(&index);
        assert_eq!(index.chunks.len(), 4);
        assert!(index.get(&5u32.to_be_bytes()).is_some());
    }
}
