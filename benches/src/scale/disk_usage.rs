//! The size of a data directory: every regular file under it, by length
//! and by allocated blocks.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// Most entries [`measure`] visits before it gives up (a data directory
/// holds a few hundred files; this bounds a walk gone wrong).
pub const ENTRIES_MAX: usize = 1_000_000;

/// What a directory tree holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DirSize {
    /// Regular files.
    pub files: u64,
    /// Sum of the files' lengths, bytes (what `du --apparent-size` says).
    pub apparent_bytes: u64,
    /// Sum of the files' allocated blocks × 512, bytes (what `du` says:
    /// preallocated space counts, holes do not).
    pub allocated_bytes: u64,
}

/// Walks `dir` (symbolic links are not followed) and sums its regular
/// files. Errors when an entry cannot be read or there are more than
/// [`ENTRIES_MAX`] entries.
pub fn measure(dir: &Path) -> Result<DirSize> {
    let mut size = DirSize::default();
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    let mut visited = 0usize;
    while let Some(path) = pending.pop() {
        visited += 1;
        if visited > ENTRIES_MAX {
            bail!("{} has more than {ENTRIES_MAX} entries", dir.display());
        }
        let metadata = std::fs::symlink_metadata(&path)
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path)
                .with_context(|| format!("cannot list {}", path.display()))?
            {
                pending.push(entry?.path());
            }
        } else if metadata.is_file() {
            size.files += 1;
            size.apparent_bytes += metadata.len();
            size.allocated_bytes += metadata.blocks() * 512;
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_files_in_nested_directories() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("a"), vec![1u8; 10_000]).expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/b"), b"hello").expect("write");
        let size = measure(dir.path()).expect("measures");
        assert_eq!(size.files, 2);
        assert_eq!(size.apparent_bytes, 10_005);
        assert!(size.allocated_bytes >= 10_000, "{size:?}");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(measure(&dir.path().join("nope")).is_err());
    }
}
