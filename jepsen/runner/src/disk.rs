//! The `disk` fault's damage: the tail of a stopped member's write-ahead
//! log, truncated or with one bit flipped, as a torn or corrupted last
//! write. Segments may be preallocated with zeros, so "the tail" is the
//! last non-zero byte of the newest segment that has any.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes before the end of the data that the damage may hit.
const TAIL_BYTES_MAX: u64 = 32;
/// Bytes of a segment read to find its end of data (keel's and etcd's
/// segments are 64 MiB).
const SEGMENT_BYTES_MAX: u64 = 256 << 20;

/// How the tail was damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Cut the segment short inside its last record(s).
    Truncate,
    /// Flip one bit near the end of the data.
    FlipBit,
}

/// The `.wal` segments of `wal_dir`, sorted by name (their order).
fn segments(wal_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(wal_dir).map_err(|e| format!("{}: {e}", wal_dir.display()))?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    found.sort();
    Ok(found)
}

/// The length of `path`'s data: the offset after its last non-zero byte.
fn data_end(path: &Path) -> Result<u64, String> {
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.take(SEGMENT_BYTES_MAX)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(bytes
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |p| p as u64 + 1))
}

/// Damages the end of the newest segment with data in `wal_dir` and
/// syncs it. Returns what was done, e.g. `flipped bit 3 of byte 4107 of
/// 0000000000000000-0000000000000000.wal (data ends at 4112)`. Errors: no
/// segment with data, or the file could not be changed.
pub fn damage_wal_tail(wal_dir: &Path, damage: Damage) -> Result<String, String> {
    for path in segments(wal_dir)?.iter().rev() {
        let end = data_end(path)?;
        if end == 0 {
            continue;
        }
        let back = fastrand::u64(1..=TAIL_BYTES_MAX.min(end));
        let offset = end - back;
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let io = |e: std::io::Error| format!("{}: {e}", path.display());
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let text = match damage {
            Damage::Truncate => {
                file.set_len(offset).map_err(io)?;
                format!("truncated {name} to {offset} bytes (data ended at {end})")
            }
            Damage::FlipBit => {
                let bit = fastrand::u8(0..8);
                let mut byte = [0u8];
                file.seek(SeekFrom::Start(offset)).map_err(io)?;
                file.read_exact(&mut byte).map_err(io)?;
                byte[0] ^= 1 << bit;
                file.seek(SeekFrom::Start(offset)).map_err(io)?;
                file.write_all(&byte).map_err(io)?;
                format!("flipped bit {bit} of byte {offset} of {name} (data ends at {end})")
            }
        };
        file.sync_all().map_err(io)?;
        return Ok(text);
    }
    Err(format!("no WAL segment with data in {}", wal_dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment_with(dir: &Path, data: &[u8], zeros: usize) -> PathBuf {
        let path = dir.join("0000000000000000-0000000000000000.wal");
        let mut bytes = data.to_vec();
        bytes.extend(std::iter::repeat_n(0u8, zeros));
        std::fs::write(&path, bytes).expect("write segment");
        path
    }

    #[test]
    fn truncation_cuts_inside_the_data_not_the_zeros() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = segment_with(dir.path(), &[7u8; 100], 1000);
        let text = damage_wal_tail(dir.path(), Damage::Truncate).expect("damaged");
        let len = std::fs::metadata(&path).expect("metadata").len();
        assert!((68..100).contains(&len), "{text}: {len}");
    }

    #[test]
    fn a_flip_changes_one_bit_near_the_end() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = segment_with(dir.path(), &[0xaa; 64], 64);
        damage_wal_tail(dir.path(), Damage::FlipBit).expect("damaged");
        let after = std::fs::read(&path).expect("read");
        let changed: Vec<usize> = (0..after.len())
            .filter(|&i| after[i] != if i < 64 { 0xaa } else { 0 })
            .collect();
        assert_eq!(changed.len(), 1);
        assert!((32..64).contains(&changed[0]));
        assert_eq!((after[changed[0]] ^ 0xaa).count_ones(), 1);
    }

    #[test]
    fn an_empty_log_is_an_error() {
        let dir = tempfile::tempdir().expect("temporary directory");
        segment_with(dir.path(), &[], 10);
        assert!(damage_wal_tail(dir.path(), Damage::FlipBit).is_err());
        assert!(damage_wal_tail(&dir.path().join("missing"), Damage::Truncate).is_err());
    }
}
