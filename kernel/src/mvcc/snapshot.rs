//! Deterministic store snapshot encoding: every key with all its
//! uncompacted history, plus the current and compacted revisions.
//!
//! Format (integers LEB128, signed ones zig-zag; see `varint`):
//! `"KEELMVCC" [format = 1] [current_revision] [compact_revision]
//! [key_count] ([blob_len][key index blob])* [crc32 of all before: u32 LE]`,
//! keys in ascending order. Equal stores give equal bytes.

use std::io::{self, Write};

use super::crc_writer::Crc32Writer;
use super::error::MvccError;
use super::index::key_index::KeyIndex;
use super::index::varint;
use super::index::{Index, Loader};
use super::store::Store;

const MAGIC: &[u8; 8] = b"KEELMVCC";
const FORMAT: u8 = 1;

impl Store {
    /// Encodes the whole store (see the module doc for the format).
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.snapshot_len_bytes());
        self.encode_snapshot_into(&mut out);
        out
    }

    /// Appends the encoding of [`Store::encode_snapshot`] to `out`, whose
    /// checksum covers only the appended bytes: [`Store::snapshot_len_bytes`]
    /// of them. The caller reserves them first if it wants to (sizing walks
    /// the whole index, so it is left to the caller, who often needs the
    /// size too).
    pub fn encode_snapshot_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        // Writing into a Vec cannot fail.
        let _ = self.write_snapshot(&mut *out);
        debug_assert_eq!(out.len() - start, self.snapshot_len_bytes());
    }

    /// Streams the encoding of [`Store::encode_snapshot`] into `out`
    /// (exactly [`Store::snapshot_len_bytes`] bytes, checksum computed on
    /// the way): memory stays bounded by `out`'s own buffering whatever the
    /// store's size. Pass a buffered writer: this writes each key's length
    /// and history separately. Meant for a clone of the store (cheap: see
    /// `index`), encoded while the original keeps changing.
    ///
    /// Errors: the first error `out` returns; the bytes written until then
    /// are a truncated encoding.
    pub fn write_snapshot<W: Write>(&self, out: W) -> io::Result<()> {
        let mut out = Crc32Writer::new(out);
        let mut header = Vec::with_capacity(MAGIC.len() + 1 + 3 * varint::MAX_BYTES);
        header.extend_from_slice(MAGIC);
        header.push(FORMAT);
        varint::put_i64(&mut header, self.current_revision);
        varint::put_i64(&mut header, self.compact_revision);
        varint::put_u64(&mut header, self.index.len() as u64);
        out.write_all(&header)?;
        let mut blob_len = [0u8; varint::MAX_BYTES];
        for ki in self.index.iter() {
            let mut len = 0;
            varint::write_u64(&mut blob_len, &mut len, ki.blob().len() as u64);
            out.write_all(&blob_len[..len])?;
            out.write_all(ki.blob())?;
        }
        let crc = out.crc();
        out.into_inner().write_all(&crc.to_le_bytes())
    }

    /// Exact length in bytes of [`Store::encode_snapshot`]'s output, without
    /// encoding (one pass over the index, reading no key history).
    pub fn snapshot_len_bytes(&self) -> usize {
        let blobs: usize = self
            .index
            .iter()
            .map(|ki| varint::len_u64(ki.blob().len() as u64) + ki.blob().len())
            .sum();
        MAGIC.len()
            + 1
            + varint::len_i64(self.current_revision)
            + varint::len_i64(self.compact_revision)
            + varint::len_u64(self.index.len() as u64)
            + blobs
            + 4
    }

    /// Decodes bytes written by [`Store::encode_snapshot`]. The result has
    /// the default txn limits.
    ///
    /// Errors: `CorruptSnapshot` when the bytes are truncated, fail the
    /// checksum, have another format, keys out of order, malformed
    /// histories, or revisions outside `(compact, current]` rules.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<Store, MvccError> {
        let corrupt = |why: &str| MvccError::CorruptSnapshot(why.to_string());
        let body_len = bytes
            .len()
            .checked_sub(4)
            .ok_or_else(|| corrupt("truncated"))?;
        let (body, crc) = bytes.split_at(body_len);
        let mut crc_bytes = [0u8; 4];
        crc_bytes.copy_from_slice(crc);
        if crc32fast::hash(body) != u32::from_le_bytes(crc_bytes) {
            return Err(corrupt("checksum mismatch"));
        }
        if body.len() < MAGIC.len() + 1
            || &body[..MAGIC.len()] != MAGIC
            || body[MAGIC.len()] != FORMAT
        {
            return Err(corrupt("not a keel mvcc snapshot of format 1"));
        }
        let mut pos = MAGIC.len() + 1;
        let current = varint::get_i64(body, &mut pos).ok_or_else(|| corrupt("truncated header"))?;
        let compact = varint::get_i64(body, &mut pos).ok_or_else(|| corrupt("truncated header"))?;
        let count = varint::get_u64(body, &mut pos).ok_or_else(|| corrupt("truncated header"))?;
        if current < 1 || compact < -1 || compact > current {
            return Err(corrupt("bad revisions"));
        }
        let mut store = Store::new();
        store.current_revision = current;
        store.compact_revision = compact;
        load_keys(body, &mut pos, count, current, &mut store.index)?;
        if pos != body.len() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(store)
    }
}

fn load_keys(
    body: &[u8],
    pos: &mut usize,
    count: u64,
    current: i64,
    index: &mut Index,
) -> Result<(), MvccError> {
    let corrupt = |why: String| MvccError::CorruptSnapshot(why);
    let mut loader = Loader::new(index);
    for n in 0..count {
        let len = varint::get_u64(body, pos).and_then(|l| usize::try_from(l).ok());
        let end = len
            .and_then(|l| pos.checked_add(l))
            .filter(|end| *end <= body.len());
        let end = end.ok_or_else(|| corrupt(format!("key {n}: truncated")))?;
        let ki = KeyIndex::from_blob(body[*pos..end].to_vec())
            .map_err(|why| corrupt(format!("key {n}: {why}")))?;
        if ki.latest().rev.main > current {
            return Err(corrupt(format!(
                "key {n}: revision above the current revision"
            )));
        }
        if !loader.push(ki) {
            return Err(corrupt(format!("key {n}: keys out of order")));
        }
        *pos = end;
    }
    Ok(())
}
