//! keel's segmented write-ahead log and snapshot files.
//!
//! - [`Wal`]: append Raft entries, hard state and snapshot markers; group
//!   commit through [`Ticket`]s and [`SyncJob`]s; segment cuts (into a
//!   segment made ready ahead by a [`PrepareJob`], over a purged segment's
//!   file where one was kept) and purging (by a [`PurgeJob`] that may run
//!   on another thread).
//! - [`recover`] / [`Wal::open`]: rebuild metadata, snapshot marker, hard
//!   state and entries; repair a torn tail, refuse other damage.
//! - [`SnapshotFiles`]: state-machine snapshots written atomically with a
//!   checksum, newest valid one loaded, the last N kept.
//! - [`Storage`]: the disk seam, with [`FsStorage`] (real files) and
//!   [`SimStorage`] (deterministic simulated disk with crash semantics).
//!
//! The on-disk format is described in [`record`], [`payload`] and [`segment`].
//!
//! Known limits (shared with etcd's WAL): damage to the last record of the
//! last segment, or to a record holding a zero-filled 512-byte sector, cannot
//! be told from a torn write and is cut off as one (the damaged file is kept
//! as `.broken`); a deleted last segment cannot be detected. In a reused
//! segment file, a last write whose sectors reached the disk out of order
//! can read as corruption instead of a torn tail (see [`recovery`]). Entries returned
//! by recovery share memory with the mapped segment files, so a purged
//! segment's disk space is released when those entries are dropped. Purge
//! only below the oldest snapshot the node may fall back to
//! ([`Wal::open_at`]).

pub mod error;
pub mod group_commit;
pub mod next_segment;
pub mod payload;
pub mod purge;
pub mod record;
pub mod recovery;
pub mod segment;
pub mod snapshot_file;
pub mod storage;
pub mod wal;
pub mod zero_fill;

pub use error::{Result, WalError};
pub use group_commit::{SyncJob, SyncOutcome, Ticket};
pub use next_segment::{PrepareJob, PrepareOutcome};
pub use payload::{Metadata, SnapshotMarker};
pub use purge::{PurgeJob, PurgeOutcome};
pub use recovery::{Recovered, recover};
pub use snapshot_file::SnapshotFiles;
pub use storage::{FsStorage, SimConfig, SimStorage, Storage};
pub use wal::{Wal, WalOptions};
