//! The history of one key (etcd `keyIndex`), stored compactly: the key and
//! every uncompacted version of it share one allocation.
//!
//! A key's history is a sequence of generations: puts with versions 1, 2, ...
//! ended by a tombstone (a delete); the next put starts a new generation at
//! version 1. Each version records its own create revision and version
//! number, so compaction can drop older versions without losing them.
//!
//! Layout of the blob (LEB128 integers, see `varint`):
//! `[key_len][key][latest_offset: u64 LE][record]*`, records in ascending
//! revision order, where a record is
//! `[main][sub][main - create_revision][version][tag][lease (zig-zag)][value]`
//! and `tag = value_len << 1 | is_tombstone`. `latest_offset` points at the
//! newest record so current reads need not walk the history.

use bytes::Bytes;

use super::prefetch::prefetch_slice;
use super::varint;
use crate::mvcc::kv::KeyValue;
use crate::mvcc::revision::Revision;

/// Bytes of the fixed-width latest-record offset.
const OFFSET_BYTES: usize = 8;

/// Most bytes of a record before its value: six varints of up to 10 bytes.
const RECORD_HEAD_MAX_BYTES: usize = 6 * varint::MAX_BYTES;

/// Below this size a key's blob grows to exactly what it needs.
const EXACT_GROWTH_MAX_BYTES: usize = 4096;

/// One version of a key as stored: a put (with value) or a tombstone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Version<'a> {
    /// Revision of the change.
    pub rev: Revision,
    /// Main revision that created the generation (0 for a tombstone).
    pub create_revision: i64,
    /// Version number within the generation (0 for a tombstone).
    pub version: i64,
    /// Attached lease (0 for none or a tombstone).
    pub lease: i64,
    /// The value; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
}

impl<'a> Version<'a> {
    /// A tombstone at `rev`.
    pub fn tombstone(rev: Revision) -> Version<'a> {
        Version {
            rev,
            create_revision: 0,
            version: 0,
            lease: 0,
            value: None,
        }
    }

    /// True for a delete marker.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// The client view of this version of `key`; the value (copied out of
    /// the store) is left empty when `keys_only`.
    pub fn to_key_value(self, key: Bytes, keys_only: bool) -> KeyValue {
        let value = match (keys_only, self.value) {
            (false, Some(value)) => Bytes::copy_from_slice(value),
            _ => Bytes::new(),
        };
        self.with_bytes(key, value)
    }

    /// The client view of this version with `key` and `value` given (the
    /// caller has them as [`Bytes`] already; `value` should be this
    /// version's value, or empty).
    pub fn with_bytes(self, key: Bytes, value: Bytes) -> KeyValue {
        debug_assert!(value.is_empty() || self.value == Some(&value[..]));
        KeyValue {
            key,
            create_revision: self.create_revision,
            mod_revision: self.rev.main,
            version: self.version,
            value,
            lease: self.lease,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut head = [0u8; RECORD_HEAD_MAX_BYTES];
        let head_len = self.encode_head(&mut head);
        out.extend_from_slice(&head[..head_len]);
        out.extend_from_slice(self.value.unwrap_or_default());
    }

    /// Writes the record's header fields and lease (everything before the
    /// value) into `head`; returns how many bytes that took.
    fn encode_head(&self, head: &mut [u8; RECORD_HEAD_MAX_BYTES]) -> usize {
        debug_assert!(self.rev.main > 0 && self.rev.sub >= 0);
        debug_assert!(self.is_tombstone() || (self.create_revision > 0 && self.version > 0));
        let mut len = 0;
        for field in self.header() {
            varint::write_u64(head, &mut len, field);
        }
        varint::write_i64(head, &mut len, self.lease);
        debug_assert_eq!(len + self.value.map_or(0, <[u8]>::len), self.encoded_len());
        len
    }

    /// The unsigned header fields in encoding order: main, sub, main -
    /// create_revision, version, tag.
    fn header(&self) -> [u64; 5] {
        let create_delta = if self.is_tombstone() {
            0
        } else {
            self.rev.main - self.create_revision
        };
        let (len, tombstone) = self.value.map_or((0, 1), |v| (v.len() as u64, 0));
        [
            self.rev.main as u64,
            self.rev.sub as u64,
            create_delta as u64,
            self.version as u64,
            (len << 1) | tombstone,
        ]
    }

    /// Exact bytes [`Version::encode`] appends.
    fn encoded_len(&self) -> usize {
        let header: usize = self.header().iter().map(|f| varint::len_u64(*f)).sum();
        header + varint::len_i64(self.lease) + self.value.map_or(0, <[u8]>::len)
    }
}

/// Decodes the record at `*pos`, advancing `*pos`; `None` if malformed.
fn decode_record<'a>(blob: &'a [u8], pos: &mut usize) -> Option<Version<'a>> {
    let main = i64::try_from(varint::get_u64(blob, pos)?).ok()?;
    let sub = i64::try_from(varint::get_u64(blob, pos)?).ok()?;
    let create_delta = i64::try_from(varint::get_u64(blob, pos)?).ok()?;
    let version = i64::try_from(varint::get_u64(blob, pos)?).ok()?;
    let tag = varint::get_u64(blob, pos)?;
    let lease = varint::get_i64(blob, pos)?;
    let len = usize::try_from(tag >> 1).ok()?;
    let end = pos.checked_add(len)?;
    let value = if tag & 1 == 1 {
        None
    } else {
        Some(blob.get(*pos..end)?)
    };
    *pos = end;
    let create_revision = if value.is_none() {
        0
    } else {
        main.checked_sub(create_delta)?
    };
    Some(Version {
        rev: Revision::new(main, sub),
        create_revision,
        version,
        lease,
        value,
    })
}

/// One key and its uncompacted history. Never empty: it holds at least
/// one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    blob: Vec<u8>,
}

impl KeyIndex {
    /// A key whose first stored version is `first`.
    pub fn new(key: &[u8], first: &Version<'_>) -> KeyIndex {
        debug_assert!(!key.is_empty());
        let key_len = varint::len_u64(key.len() as u64);
        let size = key_len + key.len() + OFFSET_BYTES + first.encoded_len();
        // Exact capacity: with one version per key this is the bulk of the
        // store's memory.
        let mut blob = Vec::with_capacity(size);
        varint::put_u64(&mut blob, key.len() as u64);
        blob.extend_from_slice(key);
        let latest = blob.len() + OFFSET_BYTES;
        blob.extend_from_slice(&(latest as u64).to_le_bytes());
        first.encode(&mut blob);
        debug_assert_eq!(blob.len(), blob.capacity());
        KeyIndex { blob }
    }

    /// Checks a blob read from a snapshot and wraps it.
    ///
    /// Errors (as text) when the blob is malformed: bad key length, bad
    /// records, revisions not strictly ascending, wrong latest offset,
    /// versions or create revisions inconsistent with their generation.
    pub fn from_blob(blob: Vec<u8>) -> Result<KeyIndex, String> {
        let mut pos = 0;
        let key_len = varint::get_u64(&blob, &mut pos).ok_or("bad key length")?;
        let key_len = usize::try_from(key_len).map_err(|_| "bad key length")?;
        let offset_at = pos.checked_add(key_len).ok_or("bad key length")?;
        if key_len == 0 || offset_at + OFFSET_BYTES > blob.len() {
            return Err("bad key length".into());
        }
        let mut offset_bytes = [0u8; OFFSET_BYTES];
        offset_bytes.copy_from_slice(&blob[offset_at..offset_at + OFFSET_BYTES]);
        let latest = u64::from_le_bytes(offset_bytes);
        let mut pos = offset_at + OFFSET_BYTES;
        let (mut last_start, mut prev): (usize, Option<Version<'_>>) = (pos, None);
        while pos < blob.len() {
            last_start = pos;
            let record = decode_record(&blob, &mut pos).ok_or("bad record")?;
            check_successor(prev.as_ref(), &record)?;
            prev = Some(record);
        }
        if prev.is_none() || latest != last_start as u64 {
            return Err("missing record or wrong latest offset".into());
        }
        Ok(KeyIndex { blob })
    }

    /// The encoded form (for snapshots and hashing).
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// Hints that the key and its newest records will be read soon (the
    /// first few cache lines of the blob).
    pub fn prefetch(&self) {
        prefetch_slice(&self.blob);
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        let mut pos = 0;
        let len = varint::get_u64(&self.blob, &mut pos).unwrap_or(0) as usize;
        &self.blob[pos..pos + len]
    }

    fn records_start(&self) -> usize {
        let mut pos = 0;
        let len = varint::get_u64(&self.blob, &mut pos).unwrap_or(0) as usize;
        pos + len + OFFSET_BYTES
    }

    fn latest_offset(&self) -> usize {
        let at = self.records_start() - OFFSET_BYTES;
        let mut bytes = [0u8; OFFSET_BYTES];
        bytes.copy_from_slice(&self.blob[at..at + OFFSET_BYTES]);
        u64::from_le_bytes(bytes) as usize
    }

    /// The newest version (a put or a tombstone).
    pub fn latest(&self) -> Version<'_> {
        let mut pos = self.latest_offset();
        let record = decode_record(&self.blob, &mut pos);
        debug_assert!(record.is_some(), "key index blob is validated on creation");
        record.unwrap_or(Version::tombstone(Revision::default()))
    }

    /// Every stored version, oldest first.
    pub fn versions(&self) -> Versions<'_> {
        Versions {
            blob: &self.blob,
            pos: self.records_start(),
        }
    }

    /// The newest version with `rev.main <= main` (may be a tombstone);
    /// `None` if every stored version is newer.
    pub fn at(&self, main: i64) -> Option<Version<'_>> {
        let latest = self.latest();
        if latest.rev.main <= main {
            return Some(latest);
        }
        self.versions().take_while(|v| v.rev.main <= main).last()
    }

    /// The live (non-tombstone) version at main revision `main`, if any.
    pub fn live_at(&self, main: i64) -> Option<Version<'_>> {
        self.at(main).filter(|v| !v.is_tombstone())
    }

    /// Appends a newer version (revision must exceed the latest).
    pub fn push(&mut self, next: &Version<'_>) {
        debug_assert!(check_successor(Some(&self.latest()), next).is_ok());
        let at = self.records_start() - OFFSET_BYTES;
        let offset = self.blob.len() as u64;
        self.blob[at..at + OFFSET_BYTES].copy_from_slice(&offset.to_le_bytes());
        // Small histories grow exactly (no slack on the common 1-3
        // versions), into a fresh allocation (measured: cheaper than
        // glibc's realloc, which first tries to grow in place); long ones
        // grow geometrically (amortized O(1) pushes).
        let mut head = [0u8; RECORD_HEAD_MAX_BYTES];
        let head_len = next.encode_head(&mut head);
        let value = next.value.unwrap_or_default();
        let extra = head_len + value.len();
        if self.blob.len() < EXACT_GROWTH_MAX_BYTES {
            if self.blob.capacity() - self.blob.len() < extra {
                let mut grown = Vec::with_capacity(self.blob.len() + extra);
                grown.extend_from_slice(&self.blob);
                self.blob = grown;
            }
        } else {
            self.blob.reserve(extra);
        }
        self.blob.extend_from_slice(&head[..head_len]);
        self.blob.extend_from_slice(value);
    }

    /// The key after compaction at `at`: versions at or above `at` are
    /// kept, and of the older ones only the newest, unless it is a
    /// tombstone. `None` when nothing remains (the key leaves the index).
    /// Returns `self` unchanged when there is nothing to drop.
    ///
    /// etcd (`keyIndex.compact`) also drops a tombstone at exactly `at`,
    /// which loses that delete event for watchers starting at `at`; keeping
    /// it costs one record and changes no read.
    pub fn compact(self, at: i64) -> Option<KeyIndex> {
        let Some(keep_from) = self.at(at - 1).map(|v| (v.rev, v.is_tombstone())) else {
            return Some(self);
        };
        let first = self.versions().next().map(|v| v.rev);
        if first == Some(keep_from.0) && !keep_from.1 {
            return Some(self);
        }
        let mut kept = self
            .versions()
            .filter(|v| v.rev > keep_from.0 || (v.rev == keep_from.0 && !keep_from.1));
        let first = kept.next()?;
        let mut out = KeyIndex::new(self.key(), &first);
        kept.for_each(|v| out.push(&v));
        out.blob.shrink_to_fit();
        Some(out)
    }
}

/// Checks that `next` may follow `prev` in one key's history: strictly
/// ascending revisions, versions counting up within a generation, the
/// create revision fixed within a generation, no tombstone after a tombstone.
pub(crate) fn check_successor(
    prev: Option<&Version<'_>>,
    next: &Version<'_>,
) -> Result<(), String> {
    if next.rev.main <= 0 || next.rev.sub < 0 {
        return Err("non-positive revision".into());
    }
    if next.is_tombstone() {
        return match prev {
            Some(p) if p.is_tombstone() => Err("tombstone after tombstone".into()),
            Some(p) if p.rev >= next.rev => Err("revisions not ascending".into()),
            _ => Ok(()),
        };
    }
    if next.create_revision <= 0 || next.create_revision > next.rev.main || next.version <= 0 {
        return Err("bad create revision or version".into());
    }
    match prev {
        Some(p) if p.rev >= next.rev => Err("revisions not ascending".into()),
        Some(p)
            if !p.is_tombstone()
                && (p.create_revision != next.create_revision || p.version + 1 != next.version) =>
        {
            Err("generation not continued".into())
        }
        Some(p)
            if p.is_tombstone() && (next.version != 1 || next.create_revision != next.rev.main) =>
        {
            Err("new generation must start at version 1".into())
        }
        _ => Ok(()),
    }
}

/// Iterator over a key's stored versions, oldest first.
pub(crate) struct Versions<'a> {
    blob: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Versions<'a> {
    type Item = Version<'a>;

    fn next(&mut self) -> Option<Version<'a>> {
        if self.pos >= self.blob.len() {
            return None;
        }
        let record = decode_record(self.blob, &mut self.pos);
        debug_assert!(record.is_some(), "key index blob is validated on creation");
        if record.is_none() {
            self.pos = self.blob.len();
        }
        record
    }
}

/// A key with one version (revision 1, value `v`), for index tests.
#[cfg(test)]
pub(crate) fn test_key_index(key: &[u8]) -> KeyIndex {
    let v = Version {
        rev: Revision::new(1, 0),
        create_revision: 1,
        version: 1,
        lease: 0,
        value: Some(b"v"),
    };
    KeyIndex::new(key, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(main: i64, create: i64, version: i64, value: &[u8]) -> Version<'_> {
        Version {
            rev: Revision::new(main, 0),
            create_revision: create,
            version,
            lease: 7,
            value: Some(value),
        }
    }

    fn sample() -> KeyIndex {
        let mut ki = KeyIndex::new(b"k", &put(2, 2, 1, b"a"));
        ki.push(&put(4, 2, 2, b"bb"));
        ki.push(&Version::tombstone(Revision::new(6, 1)));
        ki.push(&put(8, 8, 1, b"c"));
        ki
    }

    #[test]
    fn reads_history() {
        let ki = sample();
        assert_eq!(ki.key(), b"k");
        assert_eq!(ki.latest(), put(8, 8, 1, b"c"));
        assert_eq!(ki.at(1), None);
        assert_eq!(ki.at(5), Some(put(4, 2, 2, b"bb")));
        assert!(ki.live_at(6).is_none() && ki.at(7).is_some_and(|v| v.is_tombstone()));
        assert_eq!(ki.versions().count(), 4);
        assert_eq!(KeyIndex::from_blob(ki.blob().to_vec()), Ok(ki));
    }

    #[test]
    fn compacts_like_etcd() {
        let ki = sample();
        assert_eq!(ki.clone().compact(1), Some(ki.clone()));
        assert_eq!(ki.clone().compact(3), Some(ki.clone()));
        let at4 = ki.clone().compact(5).expect("kept");
        assert_eq!(at4.versions().next(), Some(put(4, 2, 2, b"bb")));
        assert_eq!(at4.versions().count(), 3);
        let at7 = ki.compact(7).expect("kept");
        assert_eq!(at7.versions().collect::<Vec<_>>(), vec![put(8, 8, 1, b"c")]);
        let mut dead = KeyIndex::new(b"d", &put(2, 2, 1, b"x"));
        dead.push(&Version::tombstone(Revision::new(3, 0)));
        assert!(dead.clone().compact(4).is_none());
        assert_eq!(dead.clone().compact(3), Some(dead));
    }

    #[test]
    fn rejects_bad_blobs() {
        let ki = sample();
        let blob = ki.blob().to_vec();
        for cut in 0..blob.len() {
            assert!(
                KeyIndex::from_blob(blob[..cut].to_vec()).is_err(),
                "cut {cut}"
            );
        }
        let mut wrong_version = KeyIndex::new(b"k", &put(2, 2, 1, b"a")).blob().to_vec();
        put(3, 2, 5, b"z").encode(&mut wrong_version);
        assert!(KeyIndex::from_blob(wrong_version).is_err());
    }
}
