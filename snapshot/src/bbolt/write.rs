//! A writer of fresh, compact bbolt database images (the reverse of
//! [`super::Db`]), written from bbolt's file format: pages 0 and 1 are the
//! meta pages (the same meta, transaction ids `txid` and `txid - 1`, as
//! bbolt's `Tx.WriteTo` writes them), page 2 an empty freelist, then every
//! bucket's B+tree bottom-up (leaves packed full, branches above them), then
//! the tree of the root bucket whose leaf elements are the top-level
//! buckets. Every page below the high-water mark is reachable, so bbolt's
//! `Tx.Check` (run by `etcdctl snapshot status`) finds nothing to report.
//!
//! Page layout (bbolt `page.go`): a 16-byte header (`id` u64, `flags` u16,
//! `count` u16, `overflow` u32, little-endian), then `count` 16-byte
//! elements, then the elements' keys and values; an element's `pos` is the
//! offset of its key from the element itself. A node larger than a page
//! spans `1 + overflow` consecutive pages. Only top-level buckets are
//! written (etcd has no nested buckets); each is a page-rooted bucket.

use super::meta::{MAGIC, VERSION, fnv1a_64};
use super::page::{
    ELEMENT_BYTES, FLAG_BRANCH, FLAG_BUCKET, FLAG_FREELIST, FLAG_LEAF, FLAG_META, PAGE_HEADER_BYTES,
};

/// The page size written, in bytes (bbolt's default on Linux).
pub const PAGE_SIZE_BYTES: usize = 4096;
/// bbolt's `MaxKeySize`, in bytes.
pub const KEY_SIZE_MAX_BYTES: usize = 32768;
/// bbolt's `MaxValueSize`, in bytes.
pub const VALUE_SIZE_MAX_BYTES: usize = (1 << 31) - 2;

/// Page id of the (empty) freelist.
const FREELIST_PAGE: u64 = 2;
/// Bytes of a bucket header (root page id, sequence) in its parent.
const BUCKET_HEADER_BYTES: usize = 16;

/// One top-level bucket to write: its name and its key/value pairs,
/// ascending by key, keys unique and non-empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketData {
    /// Bucket name (non-empty).
    pub name: Vec<u8>,
    /// Key/value pairs, ascending by key.
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Why an image could not be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// Bucket names or keys are not strictly ascending.
    #[error("{0}: not strictly ascending")]
    Unsorted(String),
    /// An empty name or key (bbolt refuses them).
    #[error("{0}: empty")]
    Empty(String),
    /// A key or value above bbolt's limits.
    #[error("{0}: too large ({1} bytes)")]
    TooLarge(String, usize),
    /// `txid` must be at least 1 (meta 1 carries `txid - 1`).
    #[error("transaction id 0")]
    ZeroTxid,
}

/// A leaf element (key, value, flags) or a branch element (key, child).
enum Element<'a> {
    Leaf(&'a [u8], &'a [u8], u32),
    Branch(&'a [u8], u64),
}

impl Element<'_> {
    fn key(&self) -> &[u8] {
        match self {
            Element::Leaf(key, _, _) | Element::Branch(key, _) => key,
        }
    }

    fn data_bytes(&self) -> usize {
        match self {
            Element::Leaf(key, value, _) => key.len() + value.len(),
            Element::Branch(key, _) => key.len(),
        }
    }
}

/// The image under construction: whole pages, appended in id order.
struct Image {
    bytes: Vec<u8>,
}

impl Image {
    fn next_page_id(&self) -> u64 {
        (self.bytes.len() / PAGE_SIZE_BYTES) as u64
    }

    /// Appends a node holding `elements` (all leaf or all branch); returns
    /// its page id.
    fn write_node(&mut self, flags: u16, elements: &[Element<'_>]) -> u64 {
        let id = self.next_page_id();
        let size = node_bytes(elements);
        let pages = size.div_ceil(PAGE_SIZE_BYTES).max(1);
        let start = self.bytes.len();
        self.bytes.resize(start + pages * PAGE_SIZE_BYTES, 0);
        let page = &mut self.bytes[start..];
        put_header(page, id, flags, elements.len(), pages - 1);
        let mut data_at = PAGE_HEADER_BYTES + elements.len() * ELEMENT_BYTES;
        for (i, element) in elements.iter().enumerate() {
            let at = PAGE_HEADER_BYTES + i * ELEMENT_BYTES;
            let pos = (data_at - at) as u32;
            match element {
                Element::Leaf(key, value, leaf_flags) => {
                    put_u32(page, at, *leaf_flags);
                    put_u32(page, at + 4, pos);
                    put_u32(page, at + 8, key.len() as u32);
                    put_u32(page, at + 12, value.len() as u32);
                    page[data_at..data_at + key.len()].copy_from_slice(key);
                    let value_at = data_at + key.len();
                    page[value_at..value_at + value.len()].copy_from_slice(value);
                }
                Element::Branch(key, child) => {
                    put_u32(page, at, pos);
                    put_u32(page, at + 4, key.len() as u32);
                    put_u64(page, at + 8, *child);
                    page[data_at..data_at + key.len()].copy_from_slice(key);
                }
            }
            data_at += element.data_bytes();
        }
        id
    }

    /// Writes a B+tree over `leaf` elements (ascending); returns its root.
    fn write_tree(&mut self, leaf: &[Element<'_>]) -> u64 {
        let mut level: Vec<(Vec<u8>, u64)> = pack(leaf)
            .into_iter()
            .map(|node| {
                let first = node.first().map(|e| e.key().to_vec()).unwrap_or_default();
                (first, self.write_node(FLAG_LEAF, node))
            })
            .collect();
        while level.len() > 1 {
            let branch: Vec<Element<'_>> = level
                .iter()
                .map(|(key, child)| Element::Branch(key, *child))
                .collect();
            let mut next = Vec::new();
            for node in pack(&branch) {
                let first = node.first().map(|e| e.key().to_vec()).unwrap_or_default();
                next.push((first, self.write_node(FLAG_BRANCH, node)));
            }
            level = next;
        }
        level.first().map_or(0, |(_, id)| *id)
    }
}

/// Bytes a node of `elements` needs (header, elements, keys and values).
fn node_bytes(elements: &[Element<'_>]) -> usize {
    PAGE_HEADER_BYTES
        + elements
            .iter()
            .map(|e| ELEMENT_BYTES + e.data_bytes())
            .sum::<usize>()
}

/// Splits `elements` into nodes that each fit one page, greedily; an
/// element too large for a page gets a node (with overflow pages) of its
/// own. No elements give one empty node.
fn pack<'e, 'a>(elements: &'e [Element<'a>]) -> Vec<&'e [Element<'a>]> {
    let mut nodes = Vec::new();
    let (mut start, mut size) = (0, PAGE_HEADER_BYTES);
    for (i, element) in elements.iter().enumerate() {
        let add = ELEMENT_BYTES + element.data_bytes();
        if i > start && size + add > PAGE_SIZE_BYTES {
            nodes.push(&elements[start..i]);
            (start, size) = (i, PAGE_HEADER_BYTES);
        }
        size += add;
    }
    nodes.push(&elements[start..]);
    nodes
}

fn put_header(page: &mut [u8], id: u64, flags: u16, count: usize, overflow: usize) {
    put_u64(page, 0, id);
    page[8..10].copy_from_slice(&flags.to_le_bytes());
    page[10..12].copy_from_slice(&(count as u16).to_le_bytes());
    put_u32(page, 12, overflow as u32);
}

fn put_u32(page: &mut [u8], at: usize, value: u32) {
    page[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

fn put_u64(page: &mut [u8], at: usize, value: u64) {
    page[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Checks names and keys: non-empty, strictly ascending, within bbolt's
/// size limits.
fn check(buckets: &[BucketData]) -> Result<(), WriteError> {
    for (i, bucket) in buckets.iter().enumerate() {
        let name = String::from_utf8_lossy(&bucket.name).into_owned();
        if bucket.name.is_empty() {
            return Err(WriteError::Empty("a bucket name".to_owned()));
        }
        if bucket.name.len() > KEY_SIZE_MAX_BYTES {
            return Err(WriteError::TooLarge(
                "a bucket name".to_owned(),
                bucket.name.len(),
            ));
        }
        if i > 0 && buckets[i - 1].name >= bucket.name {
            return Err(WriteError::Unsorted(format!("bucket {name:?}")));
        }
        for (j, (key, value)) in bucket.entries.iter().enumerate() {
            if key.is_empty() {
                return Err(WriteError::Empty(format!("a key in bucket {name:?}")));
            }
            if key.len() > KEY_SIZE_MAX_BYTES {
                return Err(WriteError::TooLarge(
                    format!("a key in {name:?}"),
                    key.len(),
                ));
            }
            if value.len() > VALUE_SIZE_MAX_BYTES {
                return Err(WriteError::TooLarge(
                    format!("a value in {name:?}"),
                    value.len(),
                ));
            }
            if j > 0 && bucket.entries[j - 1].0 >= *key {
                return Err(WriteError::Unsorted(format!("the keys of bucket {name:?}")));
            }
        }
    }
    Ok(())
}

/// Writes a bbolt database holding `buckets` (ascending by name) as the
/// committed transaction `txid`; returns the image (a whole number of
/// 4096-byte pages, the database's size).
///
/// Errors: [`WriteError`] for unsorted, empty or oversized names, keys and
/// values, or `txid == 0`.
pub fn write_db(buckets: &[BucketData], txid: u64) -> Result<Vec<u8>, WriteError> {
    check(buckets)?;
    if txid == 0 {
        return Err(WriteError::ZeroTxid);
    }
    let mut image = Image {
        bytes: vec![0; 3 * PAGE_SIZE_BYTES],
    };
    put_header(
        &mut image.bytes[2 * PAGE_SIZE_BYTES..],
        FREELIST_PAGE,
        FLAG_FREELIST,
        0,
        0,
    );
    let mut headers = Vec::with_capacity(buckets.len());
    for bucket in buckets {
        let leaf: Vec<Element<'_>> = bucket
            .entries
            .iter()
            .map(|(k, v)| Element::Leaf(k, v, 0))
            .collect();
        let root = image.write_tree(&leaf);
        let mut header = [0u8; BUCKET_HEADER_BYTES];
        header[..8].copy_from_slice(&root.to_le_bytes());
        headers.push(header);
    }
    let root_leaf: Vec<Element<'_>> = buckets
        .iter()
        .zip(&headers)
        .map(|(b, h)| Element::Leaf(&b.name, h, FLAG_BUCKET))
        .collect();
    let root = image.write_tree(&root_leaf);
    let high_water = image.next_page_id();
    write_meta(&mut image.bytes, 0, root, high_water, txid);
    write_meta(&mut image.bytes, 1, root, high_water, txid - 1);
    Ok(image.bytes)
}

/// Writes meta page `id` (0 or 1).
fn write_meta(bytes: &mut [u8], id: u64, root: u64, high_water: u64, txid: u64) {
    let start = id as usize * PAGE_SIZE_BYTES;
    let page = &mut bytes[start..start + PAGE_SIZE_BYTES];
    put_header(page, id, FLAG_META, 0, 0);
    let meta = &mut page[PAGE_HEADER_BYTES..];
    put_u32(meta, 0, MAGIC);
    put_u32(meta, 4, VERSION);
    put_u32(meta, 8, PAGE_SIZE_BYTES as u32);
    put_u32(meta, 12, 0); // flags
    put_u64(meta, 16, root);
    put_u64(meta, 24, 0); // root bucket's sequence
    put_u64(meta, 32, FREELIST_PAGE);
    put_u64(meta, 40, high_water);
    put_u64(meta, 48, txid);
    let checksum = fnv1a_64(&meta[..56]);
    put_u64(meta, 56, checksum);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::bbolt::{BoltError, Db};
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn read_back(image: &[u8]) -> Vec<BucketData> {
        let db = Db::open(image).unwrap();
        db.buckets()
            .unwrap()
            .into_iter()
            .map(|(name, bucket)| {
                let mut entries = Vec::new();
                db.for_each(bucket, |k, v| {
                    entries.push((k.to_vec(), v.to_vec()));
                    Ok::<(), BoltError>(())
                })
                .unwrap();
                BucketData {
                    name: name.to_vec(),
                    entries,
                }
            })
            .collect()
    }

    fn buckets_strategy() -> impl Strategy<Value = Vec<BucketData>> {
        let key = prop::collection::vec(any::<u8>(), 1..40);
        // Mostly small values, some spanning several pages.
        let value = prop_oneof![
            8 => prop::collection::vec(any::<u8>(), 0..64),
            1 => prop::collection::vec(any::<u8>(), 3000..13000),
        ];
        let entries = prop::collection::btree_map(key, value, 0..400);
        prop::collection::btree_map(prop::collection::vec(any::<u8>(), 1..12), entries, 0..6)
            .prop_map(|map: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Vec<u8>>>| {
                map.into_iter()
                    .map(|(name, entries)| BucketData {
                        name,
                        entries: entries.into_iter().collect(),
                    })
                    .collect()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn written_buckets_read_back_equal(buckets in buckets_strategy()) {
            let image = write_db(&buckets, 7).unwrap();
            prop_assert_eq!(image.len() % PAGE_SIZE_BYTES, 0);
            let db = Db::open(&image).unwrap();
            prop_assert_eq!(db.txid(), 7);
            prop_assert_eq!(db.size_bytes(), image.len() as u64);
            prop_assert_eq!(read_back(&image), buckets);
        }
    }

    #[test]
    fn many_keys_build_branch_levels() {
        let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..60_000u32)
            .map(|i| (format!("key{i:08}").into_bytes(), vec![b'v'; 20]))
            .collect();
        let buckets = vec![BucketData {
            name: b"key".to_vec(),
            entries,
        }];
        let image = write_db(&buckets, 2).unwrap();
        assert_eq!(read_back(&image), buckets);
    }

    #[test]
    fn both_metas_are_valid_and_meta_0_is_newer() {
        let image = write_db(&[], 5).unwrap();
        let body = |id: usize| &image[id * PAGE_SIZE_BYTES + PAGE_HEADER_BYTES..][..64];
        for id in 0..2 {
            let meta = body(id);
            assert_eq!(fnv1a_64(&meta[..56]).to_le_bytes(), meta[56..64]);
        }
        assert_eq!(Db::open(&image).unwrap().txid(), 5);
        // With meta 0 damaged, meta 1 (txid 4) is used.
        let mut damaged = image.clone();
        damaged[PAGE_HEADER_BYTES + 20] ^= 1;
        assert_eq!(Db::open(&damaged).unwrap().txid(), 4);
    }

    #[test]
    fn bad_input_is_refused() {
        let bucket = |name: &[u8], keys: &[&[u8]]| BucketData {
            name: name.to_vec(),
            entries: keys.iter().map(|k| (k.to_vec(), Vec::new())).collect(),
        };
        let unsorted_keys = [bucket(b"a", &[b"y", b"x"])];
        assert!(matches!(
            write_db(&unsorted_keys, 1),
            Err(WriteError::Unsorted(_))
        ));
        let unsorted_names = [bucket(b"b", &[]), bucket(b"a", &[])];
        assert!(matches!(
            write_db(&unsorted_names, 1),
            Err(WriteError::Unsorted(_))
        ));
        assert!(matches!(
            write_db(&[bucket(b"a", &[b""])], 1),
            Err(WriteError::Empty(_))
        ));
        assert!(matches!(
            write_db(&[bucket(b"", &[])], 1),
            Err(WriteError::Empty(_))
        ));
        assert_eq!(write_db(&[], 0), Err(WriteError::ZeroTxid));
    }
}
