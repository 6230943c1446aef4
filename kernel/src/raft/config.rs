//! Static configuration of a Raft node, validated before use.

use super::{NO_NODE, NodeId, RaftError};

/// How the leader confirms it is still leader before serving a ReadIndex
/// read (Raft thesis §6.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReadOnlyOption {
    /// Confirm leadership with a heartbeat round acknowledged by a quorum
    /// (thesis §6.4). Safe without any clock assumption.
    #[default]
    Safe,
    /// Serve from the leader's lease (thesis §6.4.1): no extra round trip.
    /// **Clock assumption**: correct only if clock drift between nodes is
    /// bounded so that no other node can win an election while this leader
    /// still believes in its lease (ticks on all nodes advance at roughly the
    /// same rate, within a fraction of the election timeout). Requires
    /// `check_quorum`, so a leader cut off from a quorum steps down within one
    /// election timeout, and followers refuse votes while they hear from it.
    LeaseBased,
}

/// Configuration of one Raft node (etcd-io/raft `Config`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id; must not be 0.
    pub id: NodeId,
    /// Ticks without hearing from a leader before campaigning; the actual
    /// timeout is randomized in `[election_tick, 2 * election_tick)`.
    /// Must be greater than `heartbeat_tick`.
    pub election_tick: u64,
    /// Ticks between leader heartbeats; must be at least 1.
    pub heartbeat_tick: u64,
    /// Last index the application has applied (on restart); entries after
    /// it are handed out again. Must not exceed the persisted commit index.
    pub applied: u64,
    /// Upper bound on the entry bytes in one `Append` message (at least one
    /// entry is always sent).
    pub max_size_per_msg_bytes: u64,
    /// Maximum unacknowledged `Append` messages per follower (Replicate state).
    pub max_inflight_msgs: usize,
    /// Maximum unacknowledged entry bytes per follower.
    pub max_inflight_bytes: u64,
    /// Maximum payload bytes the leader holds uncommitted; proposals beyond
    /// it are dropped (`ProposalDropped`). A single proposal is always
    /// accepted when nothing is uncommitted.
    pub max_uncommitted_entries_size_bytes: u64,
    /// Upper bound on the bytes of committed entries in one `Ready` (at
    /// least one entry is always included).
    pub max_committed_size_per_ready_bytes: u64,
    /// Leader steps down when it has not heard from a quorum for an
    /// election timeout; followers refuse votes while a leader's lease holds.
    pub check_quorum: bool,
    /// Run a pre-vote round before incrementing the term (thesis §9.6).
    pub pre_vote: bool,
    /// How ReadIndex confirms leadership.
    pub read_only_option: ReadOnlyOption,
    /// Seed of the node's PRNG (randomized election timeouts).
    pub seed: u64,
    /// Maximum ReadIndex requests waiting at the leader; more are dropped.
    pub max_pending_read_index: usize,
}

impl Config {
    /// Defaults like etcd's: election 10 ticks, heartbeat 1 tick, 1 MiB
    /// messages, 256 inflight messages, check-quorum and pre-vote on.
    pub fn new(id: NodeId) -> Config {
        Config {
            id,
            election_tick: 10,
            heartbeat_tick: 1,
            applied: 0,
            max_size_per_msg_bytes: 1024 * 1024,
            max_inflight_msgs: 256,
            max_inflight_bytes: 64 * 1024 * 1024,
            max_uncommitted_entries_size_bytes: 1 << 30,
            max_committed_size_per_ready_bytes: 64 * 1024 * 1024,
            check_quorum: true,
            pre_vote: true,
            read_only_option: ReadOnlyOption::Safe,
            seed: id,
            max_pending_read_index: 4096,
        }
    }

    /// Checks the configuration.
    /// Errors: `InvalidConfig` naming the first offending field.
    pub fn validate(&self) -> Result<(), RaftError> {
        let bad = |why: &str| Err(RaftError::InvalidConfig(why.to_string()));
        if self.id == NO_NODE {
            return bad("cannot use none as id");
        }
        if self.heartbeat_tick == 0 {
            return bad("heartbeat tick must be greater than 0");
        }
        if self.election_tick <= self.heartbeat_tick {
            return bad("election tick must be greater than heartbeat tick");
        }
        if self.max_inflight_msgs == 0 {
            return bad("max inflight messages must be greater than 0");
        }
        if self.max_inflight_bytes == 0 {
            return bad("max inflight bytes must be greater than 0");
        }
        if self.max_uncommitted_entries_size_bytes == 0 {
            return bad("max uncommitted entries size must be greater than 0");
        }
        if self.max_committed_size_per_ready_bytes == 0 {
            return bad("max committed size per ready must be greater than 0");
        }
        if self.max_pending_read_index == 0 {
            return bad("max pending read index must be greater than 0");
        }
        if self.read_only_option == ReadOnlyOption::LeaseBased && !self.check_quorum {
            return bad("check quorum must be enabled when read only option is lease based");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_problem() {
        assert!(Config::new(1).validate().is_ok());
        type Case = (fn(&mut Config), &'static str);
        let cases: [Case; 4] = [
            (|c| c.id = 0, "none as id"),
            (|c| c.election_tick = 1, "election tick"),
            (|c| c.max_inflight_msgs = 0, "inflight"),
            (
                |c| {
                    c.read_only_option = ReadOnlyOption::LeaseBased;
                    c.check_quorum = false;
                },
                "lease based",
            ),
        ];
        for (mutate, needle) in cases {
            let mut c = Config::new(1);
            mutate(&mut c);
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
