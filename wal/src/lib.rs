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
//! # On disk
//!
//! A log is a directory of files (keel keeps its WAL in
//! `<data-dir>/member/wal/` and its snapshot files in
//! `<data-dir>/member/snap/`):
//!
//! ```text
//! {sequence:016x}-{first_index:016x}.wal   a segment, 64 MiB preallocated by default
//!                                          (WalOptions::segment_size_bytes)
//! {sequence:016x}.wal.free                 a purged segment kept for reuse (purge)
//! next.wal.tmp, {sequence:016x}.wal.tmp    a segment being prepared or created;
//!                                          removed when the log opens (next_segment, segment)
//! *.broken                                 a damaged file set aside by recovery
//! {term:016x}-{index:016x}.snap            a state-machine snapshot (snapshot_file)
//! ```
//!
//! Segments form one chain of records (framing: [`record`]): every record
//! is 8-byte aligned, typed, tagged with its segment, and carries a CRC32
//! chained from the record before it, across segments. A segment opens with
//! a `SegmentHeader` (magic, sequence, first index, the previous segment's
//! last CRC), the `Metadata` (cluster and member id), and the last
//! `SnapshotMarker` and `HardState` if there are any, so recovery can start
//! at any segment; after that come `Entry`, `HardState` and `SnapshotMarker`
//! records in the order they were appended (payloads: [`payload`]).
//!
//! Recovery ([`recover`], read-only; [`Wal::open`], which also repairs)
//! reads the segments in sequence order and stops at the log's end: zeros,
//! or a record with another segment's tag (the old contents of a reused
//! file). Damage in the last write unit of the last segment is a torn write
//! and is ignored, and cut off by [`Wal::open`] (which keeps the damaged
//! segment as `.broken` first); any other damage (a bad CRC or a gap before
//! a later unit, a missing segment in the sequence) is refused with the
//! file and offset. Opening a log fsyncs its last segment before appending, so
//! records a killed process left only in the page cache are durable before
//! anything builds on them.
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
pub mod snapshot_receive;
pub mod storage;
pub mod wal;
pub mod zero_fill;

pub use error::{Result, WalError};
pub use group_commit::{SyncJob, SyncOutcome, Ticket};
pub use next_segment::{PrepareJob, PrepareOutcome};
pub use payload::{Metadata, SnapshotMarker};
pub use purge::{PurgeJob, PurgeOutcome};
pub use recovery::{Recovered, recover};
pub use snapshot_file::{SnapshotDataWriter, SnapshotFiles};
pub use snapshot_receive::SnapshotReceiver;
pub use storage::{FsStorage, SimConfig, SimStorage, Storage};
pub use wal::{Wal, WalOptions};
