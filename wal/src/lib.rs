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
//! Known limits: damage inside the last write unit of the last segment (the
//! records written since everything before them was last durable) cannot
//! be told from a torn write, whose sectors may reach the disk in any
//! order, and is cut off as one (the damaged file is kept as `.broken`);
//! etcd's WAL makes the same choice for a zero-filled sector, and
//! PostgreSQL ends its log at any bad record. Damage followed by a later
//! unit is corruption. Whether bytes after a break are a record of the
//! segment is judged from their header alone (their CRC needs the record
//! before them), so entry data that holds a well-formed header with the
//! segment's tag can turn a torn tail into reported corruption: the
//! member then refuses to start rather than lose data. A deleted last
//! segment cannot be detected. Entries returned
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
