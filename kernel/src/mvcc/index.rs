//! The ordered index from key to its history (etcd `treeIndex`).
//!
//! A two-level B+-tree: a `BTreeMap` from separator key to a sorted chunk
//! of up to [`CHUNK_CAPACITY`] key indexes. Each key is stored once, inside
//! its [`KeyIndex`]; only the first key of each chunk is copied as its
//! separator (about 1 in 40 keys). Chunks keep the index compact (about 32
//! bytes per key beyond the key index itself) and lookups short: a search
//! over a few thousand separators, then a binary search within one chunk.
//!
//! Invariants: the first chunk's separator is the empty key (stored keys
//! are never empty); every key of a chunk is `>=` its separator and `<` the
//! next separator; keys are strictly ascending inside a chunk; no chunk is
//! empty.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::key_index::KeyIndex;

/// Most key indexes in one chunk.
pub(crate) const CHUNK_CAPACITY: usize = 64;

/// Ordered map of key -> [`KeyIndex`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Index {
    chunks: BTreeMap<Box<[u8]>, Vec<KeyIndex>>,
    len: usize,
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    fn chunk_of(&self, key: &[u8]) -> Option<&Vec<KeyIndex>> {
        self.chunks
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
            .map(|(_, c)| c)
    }

    /// The history of `key`, if the index holds it.
    pub fn get(&self, key: &[u8]) -> Option<&KeyIndex> {
        let chunk = self.chunk_of(key)?;
        let at = chunk.binary_search_by(|ki| ki.key().cmp(key)).ok()?;
        chunk.get(at)
    }

    /// Mutable access to the history of `key`.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut KeyIndex> {
        let (_, chunk) = self
            .chunks
            .range_mut::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()?;
        let at = chunk.binary_search_by(|ki| ki.key().cmp(key)).ok()?;
        chunk.get_mut(at)
    }

    /// Adds a key that is not in the index yet (debug-asserted).
    pub fn insert(&mut self, key_index: KeyIndex) {
        let key = key_index.key();
        let is_last_chunk = self
            .chunks
            .range::<[u8], _>((Bound::Excluded(key), Bound::Unbounded))
            .next()
            .is_none();
        let Some((_, chunk)) = self
            .chunks
            .range_mut::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
            .next_back()
        else {
            self.chunks.insert(Box::default(), vec![key_index]);
            self.len = 1;
            return;
        };
        let Err(at) = chunk.binary_search_by(|ki| ki.key().cmp(key)) else {
            debug_assert!(false, "insert of a key already present");
            return;
        };
        self.len += 1;
        if chunk.len() < CHUNK_CAPACITY {
            chunk.insert(at, key_index);
            return;
        }
        // Full: an append to the last chunk starts a new chunk (so ascending
        // loads fill chunks completely); any other insert splits it in half.
        let mut upper = Vec::with_capacity(CHUNK_CAPACITY);
        if !(is_last_chunk && at == chunk.len()) {
            upper.extend(chunk.drain(CHUNK_CAPACITY / 2..));
        }
        let lower_len = chunk.len();
        if upper.is_empty() || at > lower_len {
            upper.insert(at - lower_len, key_index);
        } else {
            chunk.insert(at, key_index);
        }
        let separator: Box<[u8]> = upper[0].key().into();
        self.chunks.insert(separator, upper);
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
        let first = self
            .chunks
            .range::<[u8], _>((Bound::Unbounded, Bound::Included(start)))
            .next_back()
            .map(|(sep, _)| &**sep)
            .unwrap_or_default();
        self.chunks
            .range::<[u8], _>((Bound::Included(first), Bound::Unbounded))
            .flat_map(|(_, chunk)| chunk.iter())
            .skip_while(move |ki| ki.key() < start)
            .take_while(move |ki| end.is_none_or(|end| ki.key() < end))
    }

    /// Every key index in key order.
    pub fn iter(&self) -> impl Iterator<Item = &KeyIndex> {
        self.chunks.values().flat_map(|chunk| chunk.iter())
    }

    /// Replaces every key index by `f(key_index)`, dropping those for which
    /// it returns `None`, and repacks the chunks. O(number of keys).
    pub fn rebuild(&mut self, mut f: impl FnMut(KeyIndex) -> Option<KeyIndex>) {
        let old = std::mem::take(&mut self.chunks);
        self.len = 0;
        let mut loader = Loader::new(self);
        for ki in old.into_values().flat_map(Vec::into_iter) {
            if let Some(next) = f(ki) {
                let pushed = loader.push(next);
                debug_assert!(pushed, "rebuild keeps key order");
            }
        }
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
        let Some((_, last)) = self.index.chunks.iter_mut().next_back() else {
            self.index.chunks.insert(Box::default(), vec![key_index]);
            self.index.len = 1;
            return true;
        };
        if last
            .last()
            .is_some_and(|prev| prev.key() >= key_index.key())
        {
            return false;
        }
        self.index.len += 1;
        if last.len() < CHUNK_CAPACITY {
            last.push(key_index);
        } else {
            let separator: Box<[u8]> = key_index.key().into();
            let mut chunk = Vec::with_capacity(CHUNK_CAPACITY);
            chunk.push(key_index);
            self.index.chunks.insert(separator, chunk);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

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

    fn check_invariants(index: &Index) {
        let keys: Vec<&[u8]> = index.iter().map(KeyIndex::key).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "ascending");
        assert_eq!(keys.len(), index.len());
        let mut separators = index.chunks.keys();
        assert_eq!(
            separators.next().map(|s| s.len()),
            (!index.chunks.is_empty()).then_some(0)
        );
        for (sep, chunk) in &index.chunks {
            assert!(!chunk.is_empty() && chunk.len() <= CHUNK_CAPACITY);
            assert!(chunk.iter().all(|ki| ki.key() >= &**sep));
        }
    }

    proptest! {
        #[test]
        fn matches_a_btree_set(keys in prop::collection::vec(prop::collection::vec(0u8..8, 1..4), 0..600),
                               start in prop::collection::vec(0u8..8, 1..3),
                               end in prop::option::of(prop::collection::vec(0u8..8, 1..3))) {
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
            index.rebuild(|ki| (ki.key()[0] % 2 == 0).then_some(ki));
            check_invariants(&index);
            prop_assert_eq!(index.len(), model.iter().filter(|k| k[0] % 2 == 0).count());
        }
    }

    #[test]
    fn ascending_loads_fill_chunks() {
        let mut index = Index::new();
        for i in 0..(CHUNK_CAPACITY * 4) as u32 {
            index.insert(entry(&i.to_be_bytes()));
        }
        check_invariants(&index);
        assert_eq!(index.chunks.len(), 4);
    }
}
