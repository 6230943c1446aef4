//! Segment files: names and creation.
//!
//! A segment is named `{sequence:016x}-{first_index:016x}.wal` (etcd's
//! `{seq}-{index}.wal`, in hex). It is created as `{sequence:016x}.wal.tmp`,
//! its opening records are written, it is preallocated to the segment size
//! and fsynced, then renamed into place and the directory fsynced, so a
//! segment that exists under its final name always starts with a durable,
//! valid header. A segment prepared ahead of the cut follows the same order
//! (see [`crate::next_segment`]).

use crate::error::{Result, WalError};
use crate::storage::Storage;

/// Suffix of segment files.
pub const SEGMENT_SUFFIX: &str = ".wal";
/// Suffix of segments being created (removed on open).
pub const TEMP_SUFFIX: &str = ".wal.tmp";
/// Suffix of a purged segment's file kept for reuse (see
/// [`crate::WalOptions::recycled_segments_max`]); never read as a segment.
pub const RECYCLED_SUFFIX: &str = ".wal.free";
/// Suffix of damaged copies kept beside a repaired file.
pub const BROKEN_SUFFIX: &str = ".broken";

/// A segment's place in the log, as its name states it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentName {
    /// Position of the segment in the log.
    pub sequence: u64,
    /// Index of the first entry expected in the segment.
    pub first_index: u64,
}

impl SegmentName {
    /// The file name, e.g. `0000000000000001-00000000000003e9.wal`.
    pub fn file_name(&self) -> String {
        format!(
            "{:016x}-{:016x}{SEGMENT_SUFFIX}",
            self.sequence, self.first_index
        )
    }

    /// The temporary name used while the segment is created.
    pub fn temp_name(&self) -> String {
        format!("{:016x}{TEMP_SUFFIX}", self.sequence)
    }

    /// The name its file takes when a purge keeps it for reuse, e.g.
    /// `0000000000000001.wal.free`.
    pub fn recycled_name(&self) -> String {
        format!("{:016x}{RECYCLED_SUFFIX}", self.sequence)
    }

    /// Parses a segment file name; `None` for any other name.
    pub fn parse(name: &str) -> Option<SegmentName> {
        let stem = name.strip_suffix(SEGMENT_SUFFIX)?;
        let (sequence, first_index) = stem.split_once('-')?;
        if sequence.len() != 16 || first_index.len() != 16 {
            return None;
        }
        let hex = |s: &str| {
            if s.bytes().all(|b| b.is_ascii_hexdigit()) {
                u64::from_str_radix(s, 16).ok()
            } else {
                None
            }
        };
        Some(SegmentName {
            sequence: hex(sequence)?,
            first_index: hex(first_index)?,
        })
    }
}

/// Creates segment `name` holding `opening` (already framed records), with
/// the file preallocated to `size_bytes`; durable when this returns.
/// Errors: any storage failure, naming the file; the half-made file is
/// removed (best effort), so a full disk gets its space back.
pub fn create<S: Storage>(
    storage: &S,
    name: &SegmentName,
    opening: &[u8],
    size_bytes: u64,
) -> Result<S::File> {
    let temp = name.temp_name();
    let final_name = name.file_name();
    if storage
        .list()
        .map_err(|e| WalError::io("list", "", None, e))?
        .contains(&temp)
    {
        storage
            .remove(&temp)
            .map_err(|e| WalError::io("remove", &temp, None, e))?;
    }
    let file = match write_temp(storage, &temp, opening, size_bytes) {
        Ok(file) => file,
        Err(e) => {
            // Free the space a full disk needs back; a leftover is removed
            // on the next attempt or at open anyway.
            let _ = storage.remove(&temp);
            return Err(e);
        }
    };
    storage
        .rename(&temp, &final_name)
        .map_err(|e| WalError::io("rename", &temp, None, e))?;
    if let Err(e) = storage.sync_dir() {
        // Undo the rename so a later attempt (with another first index)
        // cannot leave two segments with the same sequence.
        let _ = storage.remove(&final_name);
        return Err(WalError::io("fsync directory", "", None, e));
    }
    Ok(file)
}

/// Creates the temporary file with the opening records, allocated to
/// `size_bytes` and durable.
fn write_temp<S: Storage>(
    storage: &S,
    temp: &str,
    opening: &[u8],
    size_bytes: u64,
) -> Result<S::File> {
    let file = storage
        .create(temp)
        .map_err(|e| WalError::io("create", temp, None, e))?;
    storage
        .write_at(&file, 0, opening)
        .map_err(|e| WalError::io("write", temp, Some(0), e))?;
    storage
        .preallocate(&file, size_bytes)
        .map_err(|e| WalError::io("preallocate", temp, None, e))?;
    storage
        .sync(&file)
        .map_err(|e| WalError::io("fsync", temp, None, e))?;
    Ok(file)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::storage::{SimConfig, SimStorage};

    #[test]
    fn names_round_trip_and_junk_is_ignored() {
        let n = SegmentName {
            sequence: 1,
            first_index: 1001,
        };
        assert_eq!(n.file_name(), "0000000000000001-00000000000003e9.wal");
        assert_eq!(SegmentName::parse(&n.file_name()), Some(n));
        for junk in [
            "x.wal",
            "0000000000000001.wal.tmp",
            "1-2.wal",
            "000000000000000g-0000000000000001.wal",
            "0000000000000001-00000000000003e9.wal.broken",
        ] {
            assert_eq!(SegmentName::parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn creation_is_durable_and_replaces_a_stale_temp() {
        let disk = SimStorage::new(SimConfig::default());
        let name = SegmentName {
            sequence: 0,
            first_index: 1,
        };
        disk.create(&name.temp_name()).unwrap();
        create(&disk, &name, b"opening!", 4096).unwrap();
        disk.crash();
        assert_eq!(disk.list().unwrap(), vec![name.file_name()]);
        let data = disk.read_all(&name.file_name()).unwrap();
        assert_eq!((&data[..8], data.len()), (&b"opening!"[..], 4096));
    }

    #[test]
    fn creation_reports_a_full_disk() {
        let disk = SimStorage::new(SimConfig {
            capacity_bytes: 100,
            ..SimConfig::default()
        });
        let err = create(
            &disk,
            &SegmentName {
                sequence: 0,
                first_index: 1,
            },
            b"x",
            4096,
        )
        .unwrap_err();
        assert!(err.is_storage_full(), "{err}");
        assert!(err.to_string().contains("0000000000000000.wal.tmp"));
    }
}
