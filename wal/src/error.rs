//! Errors of the write-ahead log and snapshot files. Every error that comes
//! from a file names the file and, where it applies, the byte offset.

use std::fmt;
use std::io;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, WalError>;

/// What went wrong in the WAL, the snapshot files or their storage.
#[derive(Debug)]
pub enum WalError {
    /// An I/O operation failed. `op` names the operation (`"write"`,
    /// `"fsync"`, ...), `file` the file (empty for the directory itself).
    Io {
        /// The storage operation that failed.
        op: &'static str,
        /// The file concerned, relative to the storage root.
        file: String,
        /// Byte offset of the operation, when it has one.
        offset: Option<u64>,
        /// The underlying error.
        source: io::Error,
    },
    /// Stored bytes are damaged outside the repairable tail, or do not form a
    /// valid log (etcd: `wal: crc mismatch`, `wal: slice bounds out of range`).
    Corrupt {
        /// The file holding the damaged bytes.
        file: String,
        /// Byte offset of the damaged record in `file`.
        offset: u64,
        /// What was found.
        reason: String,
    },
    /// The directory holds no WAL (nothing to recover), or already holds one
    /// when a new WAL was to be created.
    Directory(String),
    /// A caller error: the argument is described in the message.
    InvalidArgument(String),
    /// A previous write or fsync failed; the log refuses further writes
    /// because the state of the unsynced data on disk is unknown (a failed
    /// fsync must never be retried as if nothing happened).
    Poisoned(String),
}

impl WalError {
    /// Builds an [`WalError::Io`] from an `io::Error`.
    pub fn io(op: &'static str, file: &str, offset: Option<u64>, source: io::Error) -> WalError {
        WalError::Io {
            op,
            file: file.to_string(),
            offset,
            source,
        }
    }

    /// Builds a [`WalError::Corrupt`].
    pub fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> WalError {
        WalError::Corrupt {
            file: file.to_string(),
            offset,
            reason: reason.into(),
        }
    }

    /// A closure turning an `io::Error` into [`WalError::Io`] for `op` on
    /// `file` (for `map_err`).
    pub fn io_for<'a>(op: &'static str, file: &'a str) -> impl FnOnce(io::Error) -> WalError + 'a {
        move |source| WalError::io(op, file, None, source)
    }

    /// True when the error means the disk is full (ENOSPC).
    pub fn is_storage_full(&self) -> bool {
        matches!(self, WalError::Io { source, .. } if source.kind() == io::ErrorKind::StorageFull)
    }
}

impl fmt::Display for WalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalError::Io {
                op,
                file,
                offset: Some(offset),
                source,
            } => {
                write!(f, "wal: {op} {file} at offset {offset}: {source}")
            }
            WalError::Io {
                op,
                file,
                offset: None,
                source,
            } => {
                write!(f, "wal: {op} {file}: {source}")
            }
            WalError::Corrupt {
                file,
                offset,
                reason,
            } => {
                write!(f, "wal: {reason} in {file} at offset {offset}")
            }
            WalError::Directory(msg) => write!(f, "wal: {msg}"),
            WalError::InvalidArgument(msg) => write!(f, "wal: invalid argument: {msg}"),
            WalError::Poisoned(msg) => write!(f, "wal: log unusable after earlier failure: {msg}"),
        }
    }
}

impl std::error::Error for WalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_and_offset() {
        let e = WalError::corrupt(
            "0000000000000001-0000000000000005.wal",
            4096,
            "crc mismatch",
        );
        assert_eq!(
            e.to_string(),
            "wal: crc mismatch in 0000000000000001-0000000000000005.wal at offset 4096"
        );
        let e = WalError::io("fsync", "a.wal", Some(8), io::Error::other("boom"));
        assert_eq!(e.to_string(), "wal: fsync a.wal at offset 8: boom");
        let e = WalError::io(
            "rename",
            "a.wal",
            None,
            io::Error::from(io::ErrorKind::StorageFull),
        );
        assert!(e.is_storage_full());
        assert!(std::error::Error::source(&e).is_some());
    }
}
