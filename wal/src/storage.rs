//! The storage seam: the few file-system operations the WAL and the snapshot
//! files need, over one flat directory. Two implementations: [`FsStorage`]
//! (real files) and [`SimStorage`] (a simulated disk with crash semantics).
//!
//! Durability contract (what the WAL relies on, and what the simulated disk
//! enforces): data written with [`Storage::write_at`] survives a crash only
//! after [`Storage::sync`] of that file; a created, renamed or removed name
//! survives only after [`Storage::sync_dir`].

mod direct;
pub mod fs;
pub mod sim;

pub use direct::LOG_BLOCK_BYTES;
pub use fs::FsStorage;
pub use sim::{SimConfig, SimStorage};

use bytes::Bytes;
use std::io;

/// A directory of files. Names are plain file names (no `/`). All methods take
/// `&self` so that a file can be fsynced while the owner of the log keeps
/// encoding the next batch (see [`crate::SyncJob`]).
pub trait Storage: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// An open file.
    type File: Clone + Send + Sync + std::fmt::Debug + 'static;

    /// Names of the files in the directory, sorted ascending.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Creates an empty file; fails with `AlreadyExists` if the name is taken.
    fn create(&self, name: &str) -> io::Result<Self::File>;
    /// Opens an existing file for reading and writing.
    fn open(&self, name: &str) -> io::Result<Self::File>;
    /// Current length of the file in bytes.
    fn len(&self, file: &Self::File) -> io::Result<u64>;
    /// Writes all of `data` at byte `offset`, growing the file if needed.
    /// Returns `StorageFull` when the disk is full.
    fn write_at(&self, file: &Self::File, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Writes all of `data` at byte `offset` of a file written as a log: the
    /// caller needs nothing in the file after its data, so the rest of the
    /// last [`LOG_BLOCK_BYTES`] block may be overwritten with zeros (never
    /// past the file's length). Real files use direct I/O here, so the next
    /// [`Storage::sync`] only has to flush the device (see
    /// `storage/direct.rs`). Durability as for [`Storage::write_at`].
    /// Returns `StorageFull` when the disk is full. Default: `write_at`.
    fn write_log_at(&self, file: &Self::File, offset: u64, data: &[u8]) -> io::Result<()> {
        self.write_at(file, offset, data)
    }
    /// The whole content of the named file (the real disk maps it in memory
    /// and reads it all at once).
    fn read_all(&self, name: &str) -> io::Result<Bytes>;
    /// As [`Storage::read_all`], for content that may never be read: the
    /// real disk maps the file without reading it, so its pages are read
    /// (and resident) only once touched. The file must not be written
    /// afterwards. Default: `read_all`.
    fn map(&self, name: &str) -> io::Result<Bytes> {
        self.read_all(name)
    }
    /// Makes the data of the file durable (`fdatasync`).
    fn sync(&self, file: &Self::File) -> io::Result<()>;
    /// Makes the directory's names durable (fsync of the directory).
    fn sync_dir(&self) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Sets the file length to `len_bytes` (cuts or zero-extends).
    fn truncate(&self, file: &Self::File, len_bytes: u64) -> io::Result<()>;
    /// Removes the named file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Reserves space so the file is at least `len_bytes` long, zero-filled
    /// beyond its current data. Returns `StorageFull` when the disk is full.
    fn preallocate(&self, file: &Self::File, len_bytes: u64) -> io::Result<()>;
}
