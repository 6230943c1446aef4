//! State-machine snapshot files, named `{term:016x}-{index:016x}.snap` like
//! etcd's. Layout (little-endian):
//!
//! ```text
//! magic "KEELSNP1" | index u64 | term u64 | configuration (see payload.rs)
//! | data length u64 | data | CRC32 of everything before it, u32
//! ```
//!
//! A file is written as `<name>.tmp`, fsynced, renamed into place and the
//! directory fsynced, so a snapshot file is either complete or absent. Loading
//! takes the newest file that checks out; a damaged one is renamed to
//! `<name>.broken` (as etcd does) and the previous one is tried.

use crate::error::{Result, WalError};
use crate::payload::{Reader, decode_conf_state, encode_conf_state};
use crate::segment::BROKEN_SUFFIX;
use crate::storage::Storage;
use bytes::Bytes;
use keel_kernel::raft::{Snapshot, SnapshotMetadata};

/// Magic bytes opening every snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"KEELSNP1";
/// Suffix of snapshot files.
pub const SNAPSHOT_SUFFIX: &str = ".snap";

/// The snapshot files of one member, in their own [`Storage`] directory.
#[derive(Clone, Debug)]
pub struct SnapshotFiles<S: Storage> {
    storage: S,
    keep: usize,
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
    let (mut buf, crc) = encode_header_and_crc(snapshot);
    buf.extend_from_slice(&snapshot.data);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

/// The bytes of a snapshot file before its data, and the file's CRC (over
/// those bytes and the data), so the file can be written in three parts
/// without copying the data.
fn encode_header_and_crc(snapshot: &Snapshot) -> (Vec<u8>, u32) {
    let mut header = Vec::with_capacity(64);
    header.extend_from_slice(SNAPSHOT_MAGIC);
    header.extend_from_slice(&snapshot.metadata.index.to_le_bytes());
    header.extend_from_slice(&snapshot.metadata.term.to_le_bytes());
    encode_conf_state(&mut header, &snapshot.metadata.conf_state);
    header.extend_from_slice(&(snapshot.data.len() as u64).to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header);
    hasher.update(&snapshot.data);
    (header, hasher.finalize())
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
        let meta = &snapshot.metadata;
        let name = format!("{:016x}-{:016x}{SNAPSHOT_SUFFIX}", meta.term, meta.index);
        let temp = format!("{name}.tmp");
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
        if let Err(e) = self.write_temp(&temp, snapshot) {
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
        let mut names = self.names()?;
        if names.len() > self.keep {
            let excess = names.len() - self.keep;
            for (_, old) in names.drain(..excess) {
                self.storage
                    .remove(&old)
                    .map_err(WalError::io_for("remove", &old))?;
            }
            self.storage
                .sync_dir()
                .map_err(WalError::io_for("fsync directory", ""))?;
        }
        Ok(name)
    }

    /// Writes `snapshot` to the temporary file `temp`, durably.
    fn write_temp(&self, temp: &str, snapshot: &Snapshot) -> Result<()> {
        let file = self
            .storage
            .create(temp)
            .map_err(WalError::io_for("create", temp))?;
        let (header, crc) = encode_header_and_crc(snapshot);
        let data_at = header.len() as u64;
        let crc_at = data_at + snapshot.data.len() as u64;
        for (offset, bytes) in [
            (0, &header[..]),
            (data_at, &snapshot.data[..]),
            (crc_at, &crc.to_le_bytes()[..]),
        ] {
            self.storage
                .write_at(&file, offset, bytes)
                .map_err(WalError::io_for("write", temp))?;
        }
        self.storage
            .sync(&file)
            .map_err(WalError::io_for("fsync", temp))?;
        Ok(())
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
        let len_at = encode_header_and_crc(snapshot).0.len() - 8;
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
