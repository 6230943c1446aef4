//! Errors returned by the Raft API and by [`Storage`](super::Storage).

use super::{ConfChangeSingle, NodeId};
use std::fmt;

/// Errors a [`Storage`](super::Storage) implementation reports (the same
/// cases as etcd-io/raft's storage errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// The requested index is below the first index: it was compacted away.
    Compacted,
    /// The requested index is beyond the last index.
    Unavailable,
    /// The snapshot offered is older than the one already stored.
    SnapshotOutOfDate,
    /// No snapshot can be produced right now; the leader retries later.
    SnapshotTemporarilyUnavailable,
    /// Entries given to append leave a gap after the last index.
    Gap {
        /// Index the next entry was expected at.
        expected: u64,
        /// Index of the first entry given.
        got: u64,
    },
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Compacted => {
                write!(f, "requested index is unavailable due to compaction")
            }
            StorageError::Unavailable => write!(f, "requested entry at index is unavailable"),
            StorageError::SnapshotOutOfDate => {
                write!(f, "requested index is older than the existing snapshot")
            }
            StorageError::SnapshotTemporarilyUnavailable => {
                write!(f, "snapshot is temporarily unavailable")
            }
            StorageError::Gap { expected, got } => {
                write!(
                    f,
                    "missing log entries: expected index {expected}, got {got}"
                )
            }
        }
    }
}

impl std::error::Error for StorageError {}

/// Errors returned by [`RawNode`](super::RawNode) operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RaftError {
    /// The configuration is invalid; the message says which field and why.
    InvalidConfig(String),
    /// Storage failed.
    Storage(StorageError),
    /// The proposal was dropped (no leader known, leader transfer in
    /// progress, uncommitted-size limit reached). etcd: "raft proposal dropped".
    ProposalDropped,
    /// This node is not the leader; `leader` is the known leader or
    /// [`NO_NODE`](super::NO_NODE). Returned where forwarding is impossible.
    NotLeader {
        /// Current leader, if known.
        leader: NodeId,
    },
    /// A membership change was refused; the message says why.
    ConfChangeRejected(String),
    /// Promoting a learner that has not caught up with the leader (etcd
    /// `ErrLearnerNotReady`).
    LearnerNotReady {
        /// The learner.
        id: NodeId,
    },
    /// A membership change that would leave the voters without an active
    /// quorum (etcd `ErrUnhealthy`, strict reconfiguration check; see
    /// `active_quorum`).
    Unhealthy {
        /// The refused change.
        change: ConfChangeSingle,
    },
    /// The message cannot be stepped (e.g. from an unknown peer or of a
    /// local-only kind).
    StepRejected(&'static str),
    /// The leader's heartbeat says this member acknowledged entries up to
    /// `commit`, but its log ends at `last_index`: its storage lost entries
    /// it had made durable (a truncated or damaged WAL). Raft's safety
    /// rests on stable storage, so the member must stop; etcd-raft panics
    /// here (`raftLog.commitTo`: "tocommit is out of range"). The operator
    /// removes the member and adds it back with an empty data dir.
    LogLost {
        /// The commit index the leader sent (its match index for us).
        commit: u64,
        /// This member's last log index.
        last_index: u64,
    },
}

impl fmt::Display for RaftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaftError::InvalidConfig(why) => write!(f, "invalid raft config: {why}"),
            RaftError::Storage(e) => write!(f, "raft storage: {e}"),
            RaftError::ProposalDropped => write!(f, "raft proposal dropped"),
            RaftError::NotLeader { leader } => write!(f, "not leader (leader is {leader})"),
            RaftError::ConfChangeRejected(why) => write!(f, "conf change rejected: {why}"),
            RaftError::LearnerNotReady { id } => {
                write!(f, "learner {id:x} is not in sync with the leader")
            }
            RaftError::Unhealthy { change } => write!(
                f,
                "{:?} {:x} would leave no active quorum",
                change.change_type, change.node_id
            ),
            RaftError::StepRejected(why) => write!(f, "raft: cannot step message: {why}"),
            RaftError::LogLost { commit, last_index } => write!(
                f,
                "raft log lost acknowledged entries: the leader commits {commit} for this \
                 member but its log ends at {last_index} (was the WAL truncated or lost?)"
            ),
        }
    }
}

impl std::error::Error for RaftError {}

impl From<StorageError> for RaftError {
    fn from(e: StorageError) -> Self {
        RaftError::Storage(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The storage errors read as etcd-io/raft's (`storage.go`: `ErrCompacted`,
    /// `ErrUnavailable`, `ErrSnapOutOfDate`, `ErrSnapshotTemporarilyUnavailable`),
    /// so logs and wrapped errors match etcd's.
    #[test]
    fn storage_errors_read_as_etcd_raft_s() {
        let cases = [
            (
                StorageError::Compacted,
                "requested index is unavailable due to compaction",
            ),
            (
                StorageError::Unavailable,
                "requested entry at index is unavailable",
            ),
            (
                StorageError::SnapshotOutOfDate,
                "requested index is older than the existing snapshot",
            ),
            (
                StorageError::SnapshotTemporarilyUnavailable,
                "snapshot is temporarily unavailable",
            ),
            (
                StorageError::Gap {
                    expected: 5,
                    got: 7,
                },
                "missing log entries: expected index 5, got 7",
            ),
        ];
        for (error, message) in cases {
            assert_eq!(error.to_string(), message);
            assert_eq!(
                RaftError::from(error).to_string(),
                format!("raft storage: {message}")
            );
        }
    }
}
