//! Which kind of snapshot a file is, and the SHA-256 that `snapshot save`
//! appends to it (etcd's `hasChecksum`: the file length modulo 512 is 32).

use sha2::{Digest, Sha256};

use crate::bbolt;
use crate::error::SnapshotError;
use crate::keel_file;

/// Bytes of the appended SHA-256.
pub const HASH_BYTES: usize = 32;

/// `snapshot save` output is padded to this many bytes before the hash
/// (etcd: bbolt files are whole pages; keel pads its snapshot).
const PAD_BYTES: usize = 512;

/// The kind of a snapshot file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotFormat {
    /// keel's state-machine snapshot (`KEELSNAP`, written by keel's
    /// Maintenance.Snapshot).
    Keel,
    /// An etcd v3 backend: a bbolt database (etcd's Maintenance.Snapshot,
    /// or a copy of `member/snap/db`).
    Etcd,
}

impl std::fmt::Display for SnapshotFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SnapshotFormat::Keel => "keel",
            SnapshotFormat::Etcd => "etcd",
        })
    }
}

/// Tells the format from the first bytes.
///
/// Errors: [`SnapshotError::NotASnapshot`] when neither magic is present.
pub fn detect(bytes: &[u8]) -> Result<SnapshotFormat, SnapshotError> {
    if keel_file::has_magic(bytes) {
        Ok(SnapshotFormat::Keel)
    } else if bbolt::has_magic(bytes) {
        Ok(SnapshotFormat::Etcd)
    } else {
        Err(SnapshotError::NotASnapshot)
    }
}

/// True when `bytes` end with a SHA-256 appended by `snapshot save`.
pub fn has_hash(bytes: &[u8]) -> bool {
    bytes.len() % PAD_BYTES == HASH_BYTES
}

/// The data without the appended hash, after checking the hash unless
/// `skip_hash_check` (as etcd's `snapshot restore`).
///
/// Errors: [`SnapshotError::HashMismatch`] when the hash is wrong;
/// [`SnapshotError::MissingHash`] when there is none and the check is not
/// skipped.
pub fn strip_hash(bytes: &[u8], skip_hash_check: bool) -> Result<&[u8], SnapshotError> {
    if !has_hash(bytes) {
        return if skip_hash_check {
            Ok(bytes)
        } else {
            Err(SnapshotError::MissingHash)
        };
    }
    let (data, appended) = bytes.split_at(bytes.len() - HASH_BYTES);
    if !skip_hash_check {
        let actual = Sha256::digest(data);
        if actual.as_slice() != appended {
            return Err(SnapshotError::HashMismatch {
                expected: hex(appended),
                actual: hex(&actual),
            });
        }
    }
    Ok(data)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn saved(data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        out.extend_from_slice(&Sha256::digest(data));
        out
    }

    #[test]
    fn the_appended_hash_is_checked_and_removed() {
        let data = vec![7u8; 1024];
        assert_eq!(strip_hash(&saved(&data), false).unwrap(), &data[..]);
        let mut bad = saved(&data);
        bad[3] ^= 1;
        assert!(matches!(
            strip_hash(&bad, false),
            Err(SnapshotError::HashMismatch { .. })
        ));
        assert_eq!(strip_hash(&bad, true).unwrap().len(), 1024);
    }

    #[test]
    fn a_file_without_hash_needs_skip_hash_check() {
        let data = vec![7u8; 1024];
        assert!(matches!(
            strip_hash(&data, false),
            Err(SnapshotError::MissingHash)
        ));
        assert_eq!(strip_hash(&data, true).unwrap(), &data[..]);
    }

    #[test]
    fn garbage_is_not_a_snapshot() {
        assert!(matches!(
            detect(b"hello world"),
            Err(SnapshotError::NotASnapshot)
        ));
        assert!(matches!(detect(b""), Err(SnapshotError::NotASnapshot)));
    }
}
