//! Zero-filling ahead of the log's end.
//!
//! Segments are preallocated with `fallocate`, which reserves blocks but
//! leaves them "unwritten": the first write into such a block changes the
//! file's extent map, so the `fdatasync` after it must also commit the file
//! system journal. With many small appends per block that cost is shared;
//! a group commit writing 16 KiB per fsync pays it on every fsync (measured
//! on this project's CI disk: 5.3k/s against 8.2k/s for 16 KiB
//! write+fdatasync). The log therefore writes zeros a [`ZERO_FILL_BYTES`]
//! chunk ahead of its end, so most fsyncs only flush data — the same reason
//! PostgreSQL zero-fills new WAL files (`wal_init_zero`). Zeros past the
//! log's end are what recovery already reads as its end. A segment written
//! over a purged segment's file needs none (see [`crate::next_segment`]):
//! the whole file was written before.

use std::io;

/// How far ahead of the last record the segment is zero-filled, in bytes.
pub const ZERO_FILL_BYTES: u64 = 1 << 20;

/// Zeros written per call to the storage (a whole chunk, so a direct
/// write moves it in one go).
static ZEROS: [u8; ZERO_FILL_BYTES as usize] = [0; ZERO_FILL_BYTES as usize];

/// Where the zero-filled region should end once data reaches `data_end`:
/// the next multiple of [`ZERO_FILL_BYTES`] after it, but never past
/// `allocated_bytes` (nor before `data_end`).
pub fn fill_end(data_end: u64, allocated_bytes: u64) -> u64 {
    let chunk_end = (data_end / ZERO_FILL_BYTES + 1) * ZERO_FILL_BYTES;
    chunk_end.min(allocated_bytes).max(data_end)
}

/// Writes zeros over bytes `[from, to)` through `write(offset, bytes)`.
///
/// Errors: the first write error (the range may be partly written).
pub fn write_zeros(
    from: u64,
    to: u64,
    mut write: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut offset = from;
    while offset < to {
        let n = (to - offset).min(ZEROS.len() as u64);
        write(offset, &ZEROS[..n as usize])?;
        offset += n;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::storage::{SimConfig, SimStorage, Storage};

    #[test]
    fn fill_end_is_the_next_chunk_boundary_within_the_allocation() {
        let mib = ZERO_FILL_BYTES;
        assert_eq!(fill_end(100, 64 * mib), mib);
        assert_eq!(fill_end(mib, 64 * mib), 2 * mib);
        assert_eq!(fill_end(mib + 1, 64 * mib), 2 * mib);
        assert_eq!(fill_end(63 * mib + 5, 64 * mib), 64 * mib);
        assert_eq!(fill_end(100, 4096), 4096);
        // A record larger than the allocation ends past it.
        assert_eq!(fill_end(5000, 4096), 5000);
    }

    #[test]
    fn zeros_overwrite_the_range_only() {
        let disk = SimStorage::new(SimConfig::default());
        let file = disk.create("f").unwrap();
        let len = 2 * ZERO_FILL_BYTES as usize;
        disk.write_at(&file, 0, &vec![7; len]).unwrap();
        write_zeros(10, 3 * ZERO_FILL_BYTES / 2, |at, zeros| {
            disk.write_at(&file, at, zeros)
        })
        .unwrap();
        let data = disk.read_all("f").unwrap();
        assert!(data[..10].iter().all(|&b| b == 7));
        let end = 3 * ZERO_FILL_BYTES as usize / 2;
        assert!(data[10..end].iter().all(|&b| b == 0));
        assert!(data[end..].iter().all(|&b| b == 7));
    }
}
