//! Quorum arithmetic (Raft thesis §4.3): a majority configuration and the
//! joint configuration whose decisions need a majority of both halves.

use super::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    /// Not decided yet: enough votes are still outstanding to go either way.
    Pending,
    /// A quorum granted.
    Won,
    /// A quorum can no longer be reached.
    Lost,
}

/// A set of voters deciding by simple majority.
pub type MajorityConfig = BTreeSet<NodeId>;

/// The highest index acknowledged by a majority of `voters`, where
/// `acked(id)` gives the index each voter has (0 if unknown). An empty
/// configuration commits everything (`u64::MAX`), so that it does not
/// constrain a joint configuration.
pub fn majority_committed_index(voters: &MajorityConfig, acked: impl Fn(NodeId) -> u64) -> u64 {
    let n = voters.len();
    if n == 0 {
        return u64::MAX;
    }
    let mut stack = [0u64; 16];
    let mut heap = Vec::new();
    let indexes: &mut [u64] = if n <= stack.len() {
        &mut stack[..n]
    } else {
        heap.resize(n, 0);
        &mut heap
    };
    for (slot, id) in indexes.iter_mut().zip(voters.iter()) {
        *slot = acked(*id);
    }
    indexes.sort_unstable_by(|a, b| b.cmp(a));
    indexes[n / 2]
}

/// Counts `votes` (true = granted) among `voters`.
pub fn majority_vote_result(voters: &MajorityConfig, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut granted, mut missing) = (0, 0);
    for id in voters {
        match votes.get(id) {
            Some(true) => granted += 1,
            Some(false) => {}
            None => missing += 1,
        }
    }
    let quorum = voters.len() / 2 + 1;
    if granted >= quorum {
        VoteResult::Won
    } else if granted + missing >= quorum {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// The voters of a configuration: `incoming` alone, or during joint
/// consensus both `incoming` and `outgoing`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JointConfig {
    /// Voters of the new (or only) configuration.
    pub incoming: MajorityConfig,
    /// Voters of the old configuration while joint; empty otherwise.
    pub outgoing: MajorityConfig,
}

impl JointConfig {
    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Every voter of either half, ascending.
    pub fn ids(&self) -> BTreeSet<NodeId> {
        self.incoming.union(&self.outgoing).copied().collect()
    }

    /// Whether `id` votes in either half.
    pub fn contains(&self, id: NodeId) -> bool {
        self.incoming.contains(&id) || self.outgoing.contains(&id)
    }

    /// Highest index acknowledged by a quorum of both halves.
    pub fn committed_index(&self, acked: impl Fn(NodeId) -> u64) -> u64 {
        let a = majority_committed_index(&self.incoming, &acked);
        let b = majority_committed_index(&self.outgoing, &acked);
        a.min(b)
    }

    /// Joint vote result: won only if both halves won, lost if either lost.
    pub fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        let a = majority_vote_result(&self.incoming, votes);
        let b = majority_vote_result(&self.outgoing, votes);
        match (a, b) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> MajorityConfig {
        ids.iter().copied().collect()
    }

    #[test]
    fn committed_index_is_the_majority_minimum() {
        let acked = |id: u64| [0, 5, 3, 9, 1, 7][id as usize];
        assert_eq!(majority_committed_index(&set(&[1, 2, 3]), acked), 5);
        assert_eq!(majority_committed_index(&set(&[1, 2, 3, 4]), acked), 3);
        assert_eq!(majority_committed_index(&set(&[1, 2, 3, 4, 5]), acked), 5);
        let joint = JointConfig {
            incoming: set(&[1, 3, 5]),
            outgoing: set(&[2, 4]),
        };
        assert_eq!(joint.committed_index(acked), 1);
    }

    #[test]
    fn votes_need_both_halves_when_joint() {
        let votes: BTreeMap<u64, bool> = [(1, true), (2, true), (3, false)].into();
        assert_eq!(
            majority_vote_result(&set(&[1, 2, 3]), &votes),
            VoteResult::Won
        );
        assert_eq!(
            majority_vote_result(&set(&[3, 4, 5]), &votes),
            VoteResult::Pending
        );
        assert_eq!(
            majority_vote_result(&set(&[3, 4]), &votes),
            VoteResult::Lost
        );
        let joint = JointConfig {
            incoming: set(&[1, 2, 3]),
            outgoing: set(&[3, 4, 5]),
        };
        assert_eq!(joint.vote_result(&votes), VoteResult::Pending);
        let joint = JointConfig {
            incoming: set(&[1, 2]),
            outgoing: set(&[3, 4]),
        };
        assert_eq!(joint.vote_result(&votes), VoteResult::Lost);
    }
}
