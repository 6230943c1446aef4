//! State-machine snapshot files, named `{term:016x}-{index:016x}.snap` like
//! etcd's. Layout (little-endian):
//!
//! ```text
//! magic "KEELSNP1" | index u64 | term u64 | configuration (see payload.rs)
//! | data length u64 | data | CRC32 of everything before it, u32
//! ```
//!
//! A file is written as `<name>.tmp`, fsynced, renamed into place and the
//! directory fsynced, so a snapshot file is either complete or absent. Its
//! data is streamed in ([`SnapshotFiles::save_streaming`], through a
//! [`SnapshotDataWriter`] that buffers at most
//! [`SNAPSHOT_WRITE_BUFFER_BYTES`]), so a state of any size is written
//! without a copy of it in memory. Loading takes the newest file that checks
//! out; a damaged one is renamed to `<name>.broken` (as etcd does) and the
//! previous one is tried. Old files are removed by the caller once a newer
//! one is durable ([`SnapshotFiles::remove_older_than`]); `keep` only caps
//! how many a save leaves.

use crate::error::{Result, WalError};
use crate::payload::{Reader, decode_conf_state, encode_conf_state};
use crate::segment::BROKEN_SUFFIX;
use crate::storage::Storage;
use bytes::Bytes;
use keel_kernel::raft::{Snapshot, SnapshotMetadata};
use std::io::{self, Write};

/// Magic bytes opening every snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"KEELSNP1";
/// Suffix of snapshot files.
pub const SNAPSHOT_SUFFIX: &str = ".snap";
/// Suffix of the temporary files a snapshot is written under before it is
/// complete and durable (a save's `<name>.tmp`, a received snapshot's
/// `<name>.<transfer>.recv.tmp`, see `snapshot_receive.rs`).
pub const TEMP_SUFFIX: &str = ".tmp";
/// Most bytes a [`SnapshotDataWriter`] holds before writing them to the
/// file (4 MiB: large sequential writes, bounded memory).
pub const SNAPSHOT_WRITE_BUFFER_BYTES: usize = 4 << 20;

/// The snapshot files of one member, in their own [`Storage`] directory.
#[derive(Clone, Debug)]
pub struct SnapshotFiles<S: Storage> {
    storage: S,
    keep: usize,
}

/// The file name of the snapshot at `index` taken in `term`:
/// `{term:016x}-{index:016x}.snap`.
pub fn snapshot_name(term: u64, index: u64) -> String {
    format!("{term:016x}-{index:016x}{SNAPSHOT_SUFFIX}")
}

/// `(index, term)` of a snapshot file name; `None` for other names.
pub fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    let (term, index) = stem.split_once('-')?;
    if term.len() != 16
        || index.len() != 16
        || !stem.bytes().all(|b| b == b'-' || b.is_ascii_hexdigit())
    {
        return None;
    }
    Some((
        u64::from_str_radix(index, 16).ok()?,
        u64::from_str_radix(term, 16).ok()?,
    ))
}

/// Encodes a snapshot file's content.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let mut buf = encode_header(&snapshot.metadata, snapshot.data.len() as u64);
    buf.extend_from_slice(&snapshot.data);
    let crc = crc32fast::hash(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// The bytes of a snapshot file before its data, for `data_len_bytes` of
/// data (the file's CRC covers them and the data).
pub(crate) fn encode_header(metadata: &SnapshotMetadata, data_len_bytes: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(64);
    header.extend_from_slice(SNAPSHOT_MAGIC);
    header.extend_from_slice(&metadata.index.to_le_bytes());
    header.extend_from_slice(&metadata.term.to_le_bytes());
    encode_conf_state(&mut header, &metadata.conf_state);
    header.extend_from_slice(&data_len_bytes.to_le_bytes());
    header
}

/// Streams a snapshot's data into its temporary file (see
/// [`SnapshotFiles::save_streaming`]): buffers up to
/// [`SNAPSHOT_WRITE_BUFFER_BYTES`], writes larger runs at increasing
/// offsets, and checksums everything on the way. More data than the
/// length announced in the header is refused (`InvalidInput`).
pub struct SnapshotDataWriter<'a, S: Storage> {
    storage: &'a S,
    file: &'a S::File,
    /// File offset the buffer's first byte goes to.
    offset: u64,
    buffer: Vec<u8>,
    hasher: crc32fast::Hasher,
    /// Data bytes accepted so far, and the most the header announced.
    data_bytes: u64,
    data_len_bytes: u64,
}

impl<S: Storage> SnapshotDataWriter<'_, S> {
    /// Writes the buffered bytes to the file.
    fn write_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.storage
            .write_at(self.file, self.offset, &self.buffer)?;
        self.offset += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Writes what is buffered and then the CRC after the data; the data
    /// must be complete. Returns the file's length in bytes.
    fn finish(mut self) -> io::Result<u64> {
        if self.data_bytes != self.data_len_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "snapshot data of {} bytes, {} announced",
                    self.data_bytes, self.data_len_bytes
                ),
            ));
        }
        let crc = self.hasher.clone().finalize();
        self.buffer.extend_from_slice(&crc.to_le_bytes());
        self.write_buffer()?;
        Ok(self.offset)
    }
}

impl<S: Storage> Write for SnapshotDataWriter<'_, S> {
    /// Accepts all of `bytes` (buffered or written through), unless they
    /// would exceed the announced data length.
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let len = bytes.len() as u64;
        if self.data_bytes + len > self.data_len_bytes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "snapshot data longer than the {} bytes announced",
                    self.data_len_bytes
                ),
            ));
        }
        self.hasher.update(bytes);
        self.data_bytes += len;
        if self.buffer.len() + bytes.len() > SNAPSHOT_WRITE_BUFFER_BYTES {
            self.write_buffer()?;
        }
        if bytes.len() >= SNAPSHOT_WRITE_BUFFER_BYTES {
            self.storage.write_at(self.file, self.offset, bytes)?;
            self.offset += len;
        } else {
            self.buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    /// Writes the buffered bytes to the file (not durably).
    fn flush(&mut self) -> io::Result<()> {
        self.write_buffer()
    }
}

/// Reads the bytes of a snapshot file before its data: the snapshot's
/// metadata and the data's length in bytes. Errors: the reason the header
/// is invalid.
fn decode_header(r: &mut Reader) -> std::result::Result<(SnapshotMetadata, usize), &'static str> {
    if r.take(8)? != SNAPSHOT_MAGIC {
        return Err("bad snapshot magic");
    }
    let index = r.u64()?;
    let term = r.u64()?;
    let conf_state = decode_conf_state(r)?;
    let data_len = usize::try_from(r.u64()?).map_err(|_| "snapshot data length too large")?;
    let metadata = SnapshotMetadata {
        index,
        term,
        conf_state,
    };
    Ok((metadata, data_len))
}

/// Decodes a snapshot file's content; the data is a zero-copy slice of
/// `file`. Errors: the reason the content is invalid.
pub fn decode(file: &Bytes) -> std::result::Result<Snapshot, &'static str> {
    let body_len = file.len().checked_sub(4).ok_or("snapshot file too short")?;
    let (body, crc) = file.split_at(body_len);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err("snapshot crc mismatch");
    }
    let mut r = Reader::new(body);
    let (metadata, data_len) = decode_header(&mut r)?;
    let start = r.position();
    r.take(data_len)?;
    r.finish()?;
    let data = file.slice(start..start + data_len);
    Ok(Snapshot { metadata, data })
}

/// Where the data of the snapshot file `file` lies, reading the header's
/// bytes only (not the checksum). Errors: the reason the header does not
/// decode, or the stored data length or the file's size does not match a
/// file holding `data_len` bytes of data.
fn data_range(file: &[u8], data_len: usize) -> std::result::Result<std::ops::Range<usize>, String> {
    let mut r = Reader::new(file);
    let (_, stored_len) =
        decode_header(&mut r).map_err(|why| format!("not a snapshot file: {why}"))?;
    if stored_len != data_len {
        return Err(format!(
            "snapshot data of another length: {stored_len} bytes stored, {data_len} expected"
        ));
    }
    let data_at = r.position();
    // Header, data, then the CRC's 4 bytes.
    let end = data_at
        .checked_add(data_len)
        .filter(|end| end.checked_add(4) == Some(file.len()));
    let Some(end) = end else {
        return Err(format!(
            "snapshot file of another length: {} bytes for {data_len} bytes of data",
            file.len()
        ));
    };
    Ok(data_at..end)
}

impl<S: Storage> SnapshotFiles<S> {
    /// Snapshot files in `storage`, keeping the newest `keep` (at least 1) on save.
    pub fn new(storage: S, keep: usize) -> SnapshotFiles<S> {
        SnapshotFiles {
            storage,
            keep: keep.max(1),
        }
    }

    /// Writes `snapshot` atomically and durably, then removes the oldest
    /// files beyond the newest `keep`. Returns the file name.
    /// Errors: storage failures (a failed save leaves older snapshots intact).
    pub fn save(&self, snapshot: &Snapshot) -> Result<String> {
        let data = &snapshot.data;
        self.save_streaming(&snapshot.metadata, data.len() as u64, |out| {
            out.write_all(data)
        })
    }

    /// As [`SnapshotFiles::save`], for a snapshot whose `data_len_bytes`
    /// bytes of data `write_data` streams into the writer it is given
    /// (buffered there, at most [`SNAPSHOT_WRITE_BUFFER_BYTES`]): a state
    /// of any size is written without being held in memory. The file has
    /// the same format and name as [`SnapshotFiles::save`] gives it.
    /// Errors: storage failures, `write_data`'s own error, and data of
    /// another length than announced (`InvalidInput`); the temporary file
    /// is removed then, and older snapshots are left intact.
    pub fn save_streaming(
        &self,
        metadata: &SnapshotMetadata,
        data_len_bytes: u64,
        write_data: impl FnOnce(&mut SnapshotDataWriter<'_, S>) -> io::Result<()>,
    ) -> Result<String> {
        let name = snapshot_name(metadata.term, metadata.index);
        let temp = format!("{name}{TEMP_SUFFIX}");
        if self
            .storage
            .list()
            .map_err(WalError::io_for("list", ""))?
            .contains(&temp)
        {
            self.storage
                .remove(&temp)
                .map_err(WalError::io_for("remove", &temp))?;
        }
        let written = self.write_temp(&temp, metadata, data_len_bytes, write_data);
        if let Err(e) = written {
            // Give a full disk its space back; a leftover would be removed
            // by the next save anyway.
            let _ = self.storage.remove(&temp);
            return Err(e);
        }
        self.storage
            .rename(&temp, &name)
            .map_err(WalError::io_for("rename", &temp))?;
        self.storage
            .sync_dir()
            .map_err(WalError::io_for("fsync directory", ""))?;
        let names = self.names()?;
        if let Some(((oldest_kept, _), _)) = names.iter().rev().nth(self.keep - 1) {
            self.remove_older_than(*oldest_kept)?;
        }
        Ok(name)
    }

    /// Writes the temporary file `temp` durably: header, the data
    /// `write_data` streams, CRC.
    fn write_temp(
        &self,
        temp: &str,
        metadata: &SnapshotMetadata,
        data_len_bytes: u64,
        write_data: impl FnOnce(&mut SnapshotDataWriter<'_, S>) -> io::Result<()>,
    ) -> Result<()> {
        let file = self
            .storage
            .create(temp)
            .map_err(WalError::io_for("create", temp))?;
        let header = encode_header(metadata, data_len_bytes);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&header);
        let mut writer = SnapshotDataWriter {
            storage: &self.storage,
            file: &file,
            offset: 0,
            buffer: Vec::with_capacity(
                SNAPSHOT_WRITE_BUFFER_BYTES.min(header.len() + 4 + data_len_bytes as usize),
            ),
            hasher,
            data_bytes: 0,
            data_len_bytes,
        };
        writer.buffer.extend_from_slice(&header);
        write_data(&mut writer).map_err(WalError::io_for("write", temp))?;
        writer.finish().map_err(WalError::io_for("write", temp))?;
        self.storage
            .sync(&file)
            .map_err(WalError::io_for("fsync", temp))?;
        Ok(())
    }

    /// The directory the files live in.
    pub(crate) fn storage(&self) -> &S {
        &self.storage
    }

    /// Removes every temporary file (name ending in [`TEMP_SUFFIX`]): what
    /// a crash left of a save or a transfer. Call it at start, before
    /// anything writes snapshot files. Returns how many were removed.
    /// Errors: storage failures.
    pub fn remove_temporary(&self) -> Result<usize> {
        let names = self.storage.list().map_err(WalError::io_for("list", ""))?;
        let temps: Vec<String> = names
            .into_iter()
            .filter(|name| name.ends_with(TEMP_SUFFIX))
            .collect();
        for name in &temps {
            self.storage
                .remove(name)
                .map_err(WalError::io_for("remove", name))?;
        }
        if !temps.is_empty() {
            self.storage
                .sync_dir()
                .map_err(WalError::io_for("fsync directory", ""))?;
        }
        Ok(temps.len())
    }

    /// Whether the snapshot file of `(index, term)` exists (complete and
    /// durable: files get their name only then). Errors: storage failures.
    pub fn contains(&self, index: u64, term: u64) -> Result<bool> {
        let name = snapshot_name(term, index);
        let names = self.storage.list().map_err(WalError::io_for("list", ""))?;
        Ok(names.contains(&name))
    }

    /// Removes the snapshot files of index below `index` (those a durable
    /// snapshot at or above `index` made unneeded), then fsyncs the
    /// directory. Returns how many were removed. Other files (temporary,
    /// `.broken`) are left alone.
    /// Errors: storage failures (the files not removed yet stay).
    pub fn remove_older_than(&self, index: u64) -> Result<usize> {
        let old: Vec<String> = self
            .names()?
            .into_iter()
            .filter(|((i, _), _)| *i < index)
            .map(|(_, name)| name)
            .collect();
        for name in &old {
            self.storage
                .remove(name)
                .map_err(WalError::io_for("remove", name))?;
        }
        if !old.is_empty() {
            self.storage
                .sync_dir()
                .map_err(WalError::io_for("fsync directory", ""))?;
        }
        Ok(old.len())
    }

    /// The data of the snapshot file `name` that [`SnapshotFiles::save`]
    /// just wrote, without reading it: on real files a zero-copy slice of
    /// the file mapped in memory, whose pages stay on disk until read, so
    /// the caller can drop its own copy of a large state. The checksum is
    /// not verified (the receiver of the data verifies its own).
    /// Errors: storage failures; [`WalError::Corrupt`] for a file whose
    /// header does not decode, whose header states another data length than
    /// `data_len`, or whose size is not that of a header, `data_len` bytes
    /// and a checksum.
    pub fn saved_data(&self, name: &str, data_len: usize) -> Result<Bytes> {
        let file = self
            .storage
            .map(name)
            .map_err(WalError::io_for("map", name))?;
        let data = data_range(&file, data_len).map_err(|why| WalError::corrupt(name, 0, why))?;
        Ok(file.slice(data))
    }

    /// Loads the newest snapshot that checks out, or `None` if there is none.
    /// Damaged files met on the way are renamed to `<name>.broken`.
    /// Errors: storage failures.
    pub fn load(&self) -> Result<Option<Snapshot>> {
        self.load_newest_of(|_, _| true)
    }

    /// As [`SnapshotFiles::load`], among the files whose `(index, term)`
    /// `wanted` accepts (those the WAL holds a marker for, as etcd's
    /// `LoadNewestAvailable`); the others are left alone, unread.
    /// Errors: storage failures.
    pub fn load_newest_of(&self, wanted: impl Fn(u64, u64) -> bool) -> Result<Option<Snapshot>> {
        let names = self.names()?;
        let candidates = names.into_iter().filter(|((i, t), _)| wanted(*i, *t));
        for (_, name) in candidates.rev() {
            let bytes = self
                .storage
                .read_all(&name)
                .map_err(WalError::io_for("read", &name))?;
            match decode(&bytes) {
                Ok(snapshot) => return Ok(Some(snapshot)),
                Err(_) => {
                    let broken = format!("{name}{BROKEN_SUFFIX}");
                    self.storage
                        .rename(&name, &broken)
                        .map_err(WalError::io_for("rename", &name))?;
                    self.storage
                        .sync_dir()
                        .map_err(WalError::io_for("fsync directory", ""))?;
                }
            }
        }
        Ok(None)
    }

    /// Snapshot files sorted oldest first by (index, term).
    fn names(&self) -> Result<Vec<((u64, u64), String)>> {
        let names = self
            .storage
            .list()
            .map_err(|e| WalError::io("list", "", None, e))?;
        let mut snaps: Vec<_> = names
            .into_iter()
            .filter_map(|n| parse_name(&n).map(|key| (key, n)))
            .collect();
        snaps.sort();
        Ok(snaps)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::storage::{SimConfig, SimStorage};
    use keel_kernel::raft::ConfState;

    fn snap(index: u64, data: &'static [u8]) -> Snapshot {
        let conf_state = ConfState {
            voters: vec![1, 2, 3],
            ..ConfState::default()
        };
        Snapshot {
            metadata: SnapshotMetadata {
                index,
                term: 2,
                conf_state,
            },
            data: Bytes::from_static(data),
        }
    }

    #[test]
    fn round_trip_and_every_bit_flip_is_caught() {
        let s = snap(10, b"state machine");
        let bytes = Bytes::from(encode(&s));
        assert_eq!(decode(&bytes), Ok(s));
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.to_vec();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&Bytes::from(bad)).is_err(), "bit {bit}");
        }
        assert_eq!(
            decode(&Bytes::from_static(b"abc")),
            Err("snapshot file too short")
        );
    }

    #[test]
    fn save_is_durable_and_keeps_the_last_n() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 2);
        assert_eq!(files.load().unwrap(), None);
        for i in 1..=4 {
            files.save(&snap(i * 10, b"x")).unwrap();
        }
        disk.crash();
        assert_eq!(
            disk.list().unwrap(),
            vec![
                "0000000000000002-000000000000001e.snap",
                "0000000000000002-0000000000000028.snap"
            ]
        );
        assert_eq!(files.load().unwrap().map(|s| s.metadata.index), Some(40));
    }

    #[test]
    fn a_saved_file_holds_the_encoding_and_maps_its_data_back() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 2);
        let snapshot = snap(10, b"state machine");
        let name = files.save(&snapshot).unwrap();
        assert_eq!(disk.read_all(&name).unwrap(), encode(&snapshot));
        let data = files.saved_data(&name, snapshot.data.len()).unwrap();
        assert_eq!(data, snapshot.data);
        let err = files.saved_data(&name, 3).unwrap_err();
        assert!(err.to_string().contains("another length"), "{err}");
        disk.flip_bit(&name, 0).unwrap();
        let err = files.saved_data(&name, snapshot.data.len()).unwrap_err();
        assert!(err.to_string().contains("not a snapshot file"), "{err}");
        assert!(err.to_string().contains("bad snapshot magic"), "{err}");
    }

    /// The encoding of `snapshot`, with the data length its header stores
    /// replaced by `len`.
    fn with_stored_len(snapshot: &Snapshot, len: u64) -> Vec<u8> {
        let mut content = encode(snapshot);
        let len_at = encode_header(&snapshot.metadata, 0).len() - 8;
        content[len_at..len_at + 8].copy_from_slice(&len.to_le_bytes());
        content
    }

    #[test]
    fn saved_data_checks_the_stored_length_and_the_file_size() {
        let snapshot = snap(10, b"state machine");
        let len = snapshot.data.len();
        let name = "0000000000000002-000000000000000a.snap";
        let disk_with = |content: Vec<u8>| {
            let disk = SimStorage::with_files(SimConfig::default(), vec![(name.into(), content)]);
            SnapshotFiles::new(disk, 2)
        };
        // The file is as long as `len` bytes of data make it, but its
        // header says otherwise.
        let files = disk_with(with_stored_len(&snapshot, len as u64 - 1));
        let err = files.saved_data(name, len).unwrap_err();
        assert!(
            err.to_string().contains("12 bytes stored, 13 expected"),
            "{err}"
        );
        // The header agrees with the caller, the file has a byte too few.
        let mut short = encode(&snapshot);
        short.pop();
        let err = disk_with(short).saved_data(name, len).unwrap_err();
        assert!(
            err.to_string().contains("snapshot file of another length"),
            "{err}"
        );
        // A stored length that overflows is refused, not added up.
        let files = disk_with(with_stored_len(&snapshot, u64::MAX));
        assert!(files.saved_data(name, usize::MAX).is_err());
        let data = disk_with(encode(&snapshot)).saved_data(name, len).unwrap();
        assert_eq!(data, snapshot.data);
    }

    #[test]
    fn only_wanted_files_are_loaded_and_the_others_left_alone() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 3);
        for index in [10, 20, 30] {
            files.save(&snap(index, b"x")).unwrap();
        }
        let newest = files.names().unwrap().pop().unwrap().1;
        disk.flip_bit(&newest, 100).unwrap();
        let loaded = files.load_newest_of(|index, term| index < 30 && term == 2);
        assert_eq!(loaded.unwrap().map(|s| s.metadata.index), Some(20));
        // The damaged file was not read, so not renamed either.
        assert!(disk.list().unwrap().contains(&newest));
        assert_eq!(files.load_newest_of(|_, term| term == 3).unwrap(), None);
    }

    #[test]
    fn a_corrupt_newest_falls_back_to_the_previous() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 3);
        files.save(&snap(10, b"old")).unwrap();
        let newest = files.save(&snap(20, b"new")).unwrap();
        disk.flip_bit(&newest, 100).unwrap();
        let loaded = files.load().unwrap().unwrap();
        assert_eq!((loaded.metadata.index, &loaded.data[..]), (10, &b"old"[..]));
        assert!(disk.list().unwrap().contains(&format!("{newest}.broken")));
    }

    #[test]
    fn a_full_disk_fails_the_save_and_frees_what_it_wrote() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 3);
        let old = files.save(&snap(10, b"old")).unwrap();
        disk.set_capacity_bytes(disk.list().unwrap().len() as u64 * 200);
        let err = files.save(&snap(20, &[7; 4096])).unwrap_err();
        assert!(err.is_storage_full(), "{err}");
        assert_eq!(disk.list().unwrap(), vec![old]);
        let loaded = files.load().unwrap().unwrap();
        assert_eq!(loaded.metadata.index, 10);
    }

    #[test]
    fn a_crash_during_save_leaves_the_previous_snapshot() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 3);
        files.save(&snap(10, b"old")).unwrap();
        disk.fail_next_syncs(1);
        assert!(files.save(&snap(20, b"new")).is_err());
        disk.crash();
        assert_eq!(files.load().unwrap().map(|s| s.metadata.index), Some(10));
        files.save(&snap(20, b"new")).unwrap();
        assert_eq!(files.load().unwrap().map(|s| s.metadata.index), Some(20));
    }

    #[test]
    fn a_streamed_save_writes_the_same_file_in_bounded_writes() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 3);
        // Past the buffer's size, in small pieces and one large run.
        let data: Vec<u8> = (0..SNAPSHOT_WRITE_BUFFER_BYTES * 2 + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        let (small, large) = data.split_at(SNAPSHOT_WRITE_BUFFER_BYTES + 7);
        let metadata = snap(10, b"").metadata;
        let name = files
            .save_streaming(&metadata, data.len() as u64, |out| {
                for piece in small.chunks(1000) {
                    out.write_all(piece)?;
                }
                out.write_all(large)
            })
            .unwrap();
        let whole = Snapshot {
            metadata,
            data: Bytes::from(data),
        };
        assert_eq!(disk.read_all(&name).unwrap(), encode(&whole));
        assert_eq!(files.load().unwrap(), Some(whole));
    }

    #[test]
    fn data_of_another_length_than_announced_is_refused_and_leaves_nothing() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 3);
        let old = files.save(&snap(10, b"old")).unwrap();
        let metadata = snap(20, b"").metadata;
        let short = files.save_streaming(&metadata, 5, |out| out.write_all(b"four"));
        assert!(
            short
                .unwrap_err()
                .to_string()
                .contains("4 bytes, 5 announced")
        );
        let long = files.save_streaming(&metadata, 3, |out| out.write_all(b"four"));
        assert!(
            long.unwrap_err()
                .to_string()
                .contains("longer than the 3 bytes")
        );
        let failed = files.save_streaming(&metadata, 3, |_| Err(io::Error::other("encoder")));
        assert!(failed.unwrap_err().to_string().contains("encoder"));
        assert_eq!(disk.list().unwrap(), vec![old]);
        assert_eq!(files.load().unwrap().map(|s| s.metadata.index), Some(10));
    }

    #[test]
    fn older_files_are_removed_on_request_only() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 5);
        let names: Vec<String> = [10, 20, 30]
            .iter()
            .map(|i| files.save(&snap(*i, b"x")).unwrap())
            .collect();
        assert_eq!(
            disk.list().unwrap(),
            names,
            "within `keep`, a save removes none"
        );
        assert_eq!(files.remove_older_than(20).unwrap(), 1);
        assert_eq!(files.remove_older_than(20).unwrap(), 0);
        disk.crash();
        assert_eq!(disk.list().unwrap(), names[1..], "the removal is durable");
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            parse_name("0000000000000002-000000000000001e.snap"),
            Some((30, 2))
        );
        assert_eq!(parse_name("2-1e.snap"), None);
        assert_eq!(
            parse_name("0000000000000002-000000000000001e.snap.broken"),
            None
        );
    }
}
