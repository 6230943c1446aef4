//! Why a snapshot could not be read, checked or restored. Nothing is
//! written when restore fails before the data directory is created, and a
//! data directory restore created is removed again when it fails later.

use std::path::PathBuf;

use crate::bbolt::BoltError;
use crate::bbolt::write::WriteError;

/// Why `status` or `restore` refused a snapshot or a request.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read or the data directory written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`read`, `create`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Neither a keel snapshot nor an etcd v3 (bbolt) snapshot (etcd:
    /// `invalid database`).
    #[error("invalid database: neither a keel snapshot nor an etcd v3 snapshot")]
    NotASnapshot,
    /// The file ends before its own lengths say it does.
    #[error("snapshot is truncated: {0}")]
    Truncated(String),
    /// The SHA-256 appended by `snapshot save` does not match the data
    /// (etcd: `expected sha256 ..., got ...`).
    #[error("expected sha256 {expected}, got {actual}")]
    HashMismatch {
        /// The appended hash, hex.
        expected: String,
        /// The hash of the data, hex.
        actual: String,
    },
    /// No SHA-256 is appended (the file was not written by `snapshot save`,
    /// for example a copied `member/snap/db`) and the check was not skipped
    /// (etcd's message).
    #[error("snapshot missing hash but --skip-hash-check=false")]
    MissingHash,
    /// The keel snapshot's own checksums or structure are wrong.
    #[error("corrupt keel snapshot: {0}")]
    CorruptKeel(String),
    /// The etcd database's pages are damaged.
    #[error("corrupt etcd snapshot: {0}")]
    CorruptBolt(#[from] BoltError),
    /// The etcd database is readable but its contents are not what etcd
    /// writes (a bad revision key, a value that is not the expected
    /// protobuf message, impossible key history).
    #[error("invalid etcd snapshot: {0}")]
    InvalidEtcd(String),
    /// The restore options are wrong (bad `--initial-cluster`, `--name` not
    /// in it, advertised peer URLs that differ from it).
    #[error("{0}")]
    BadOptions(String),
    /// The data directory exists and is not empty (etcd 3.5's message).
    #[error("data-dir {0:?} not empty or could not be read")]
    DataDirExists(PathBuf),
    /// keel's state could not be written as an etcd database (a key or
    /// value beyond bbolt's limits).
    #[error("cannot write an etcd snapshot: {0}")]
    Export(#[from] WriteError),
    /// Writing the WAL or snapshot file of the new data directory failed.
    #[error("cannot write the data directory: {0}")]
    Write(String),
}

impl SnapshotError {
    /// An I/O error on `path`.
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        SnapshotError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}
