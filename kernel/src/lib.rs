//! keel's consensus kernel: a pure, deterministic state machine with no I/O.
//!
//! * [`raft`]: the Raft protocol (etcd-io/raft style `Ready`/`advance` API).
//! * [`mvcc`]: the multi-version key-value store and its B-tree index.
//! * [`lease`]: leases, their expiry and checkpoints.
//! * [`auth`]: users, roles, permissions and tokens.
//! * [`membership`]: cluster members and cluster id.
//! * [`invariant`]: [`InvariantViolation`], what every `check_invariants`
//!   reports.
//! * [`apply`]: the replicated state machine that applies committed entries,
//!   and its snapshots.
//! * [`limits`]: [`Limits`], the request limits the API checks early and
//!   the state machine applies.
//!
//! Nothing here reads a clock, a socket or a file, or spawns a thread: time
//! arrives as ticks or as instants passed in, randomness as seeds.

pub mod apply;
pub mod auth;
pub mod invariant;
pub mod lease;
pub mod limits;
pub mod membership;
pub mod mvcc;
pub mod raft;

pub use invariant::InvariantViolation;
pub use limits::Limits;
