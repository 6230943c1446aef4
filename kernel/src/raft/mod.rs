//! The Raft consensus protocol as a deterministic, synchronous state machine.
//!
//! The application drives a [`RawNode`] (tick, step, propose), takes a
//! [`Ready`], performs the I/O it describes, and calls `advance`. See the
//! Raft paper and Diego Ongaro's thesis for the protocol; etcd-io/raft and
//! raft-rs for the API shape. Nothing here performs I/O, reads a clock or
//! uses global randomness: time is `tick()`, randomness a seeded PRNG.
//!
//! One file per concept: [`log`](RaftLog) (+ `log_unstable`), `storage`,
//! `progress`, `inflights`, `quorum`, `tracker`, `confchange` (membership by
//! joint consensus), `read_only` + `read_index` (ReadIndex), `raft` (state,
//! roles, ticks, dispatch, transfer, membership), `election`, `replication`,
//! `raw_node` (Ready/advance), `message` (wire format), `rng`.
//!
//! Tests: unit tests beside each file; `kernel/tests/raft_scenarios.rs`
//! (one scenario per feature), `raft_random.rs` (randomized clusters,
//! `KEEL_RAFT_SEED`/`KEEL_RAFT_SEEDS`), `raft_step_arbitrary.rs` (no panic on
//! malformed peer input). Benchmark: `cargo bench -p keel-bench --bench raft`.

mod active_quorum;
mod codec;
pub mod confchange;
mod config;
mod election;
mod error;
mod inflights;
mod log;
mod log_unstable;
mod message;
mod progress;
mod promotion;
pub mod quorum;
#[allow(clippy::module_inception)]
mod raft;
mod raw_node;
mod read_index;
mod read_only;
mod replication;
mod rng;
mod storage;
#[cfg(test)]
mod test_util;
mod tracker;
mod types;

pub use codec::DecodeError;
pub use config::{Config, ReadOnlyOption};
pub use error::{RaftError, StorageError};
pub use inflights::Inflights;
pub use log::RaftLog;
pub use message::{MAX_TERM_OR_INDEX, Message, MessageType};
pub use progress::{Progress, ProgressState};
pub use raft::{CAMPAIGN_TRANSFER, Raft, SoftState, StateRole};
pub use raw_node::{RawNode, Ready};
pub use read_only::ReadState;
pub use rng::SplitMix64;
pub use storage::{MemoryStorage, RaftState, Storage};
pub use tracker::{ProgressTracker, TrackerConfig};
pub use types::*;
