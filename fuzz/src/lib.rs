//! Input format shared by the fuzz targets and the seed-corpus generator: the
//! fuzzer's bytes become a small directory of WAL segment files.
//!
//! ```text
//! count u8 (files = count % 4 + 1)
//! per file: first_index u64 LE, length u16 LE, then `length` bytes
//!           (the last file takes all remaining bytes)
//! ```
//! File `i` is named as segment `i` of the log with that first index, so the
//! recovery code sees a plausible directory and reaches deep paths.

use keel_wal::segment::SegmentName;

/// Most files an input becomes.
pub const MAX_FILES: usize = 4;

/// Splits fuzzer input into `(name, content)` files. Never fails: missing
/// fields read as zero, lengths are clamped to the bytes left.
pub fn split_files(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let Some((&count, mut rest)) = data.split_first() else {
        return Vec::new();
    };
    let count = usize::from(count) % MAX_FILES + 1;
    let mut files = Vec::with_capacity(count);
    for sequence in 0..count as u64 {
        let mut first = [0u8; 8];
        let n = rest.len().min(8);
        first[..n].copy_from_slice(&rest[..n]);
        rest = &rest[n..];
        let len = if sequence + 1 == count as u64 {
            rest.len()
        } else {
            let mut len = [0u8; 2];
            let n = rest.len().min(2);
            len[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            usize::from(u16::from_le_bytes(len)).min(rest.len())
        };
        let (content, tail) = rest.split_at(len);
        rest = tail;
        let name = SegmentName {
            sequence,
            first_index: u64::from_le_bytes(first),
        };
        files.push((name.file_name(), content.to_vec()));
    }
    files
}

/// The inverse of [`split_files`] for segment files named by
/// [`SegmentName`] (used to build seed inputs from real logs). Files longer
/// than 65535 bytes (except the last) are cut.
pub fn join_files(files: &[(SegmentName, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![(files.len().clamp(1, MAX_FILES) - 1) as u8];
    for (i, (name, content)) in files.iter().take(MAX_FILES).enumerate() {
        out.extend_from_slice(&name.first_index.to_le_bytes());
        if i + 1 == files.len().min(MAX_FILES) {
            out.extend_from_slice(content);
        } else {
            let len = content.len().min(usize::from(u16::MAX));
            out.extend_from_slice(&(len as u16).to_le_bytes());
            out.extend_from_slice(&content[..len]);
        }
    }
    out
}
