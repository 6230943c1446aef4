//! Offline snapshot tools for keel (etcd's `etcdctl snapshot status|restore`
//! in 3.4, `etcdutl` in 3.5): read a snapshot file, report its status, and
//! restore it into the data directory of a member of a new cluster.
//!
//! Two kinds of files are accepted, told apart by their first bytes:
//! * keel's own snapshots (what `etcdctl snapshot save` or `keelctl snapshot
//!   save` writes against keel: the kernel's state-machine snapshot, padded,
//!   with a SHA-256 appended);
//! * etcd v3 snapshots (what `etcdctl snapshot save` writes against etcd: a
//!   bbolt database with a SHA-256 appended), read by the small read-only
//!   bbolt reader in [`bbolt`] and converted by [`etcd::convert`]: this is
//!   the migration path from etcd to keel.
//!
//! Entry points: [`status`] with [`render_status`], and [`restore`] with
//! [`RestoreOptions`]. Errors are [`SnapshotError`]. See
//! `docs/snapshots.md` for the operator's view.

pub mod bbolt;
mod datadir;
pub mod error;
pub mod etcd;
pub mod format;
pub mod keel_file;
pub mod restore;
pub mod status;

pub use error::SnapshotError;
pub use format::SnapshotFormat;
pub use restore::{ProgressFn, RestoreOptions, RestoreReport, RestoreStep, restore};
pub use status::{SnapshotStatus, WriteOut, render_status, status, status_of};
