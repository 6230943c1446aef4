//! etcd's strict reconfiguration check on *started* members (etcd
//! `membership/cluster.go` `IsReadyToAddVotingMember`,
//! `IsReadyToRemoveVotingMember`, `IsReadyToPromoteMember`, called from
//! `server.go` `mayAddMember`, `mayRemoveMember`, `mayPromoteMember` with
//! `--strict-reconfig-check`, etcd's default): a membership change must
//! leave at least a quorum of the voters started.
//!
//! A member is *started* once its name is known: the initial members
//! (named by `--initial-cluster`) and every added member that has
//! published its attributes. A voter added but never started counts
//! toward the quorum size but cannot vote, so adding a second one, or
//! removing a started voter beside it, may leave no quorum.
//!
//! This rule reads the applied membership only, so any member may check
//! it before proposing, as etcd does. Whether peers are reachable now is
//! a separate rule, checked by the leader (`raft::active_quorum`).

use super::{Cluster, ConfChangeContext, Member, MembershipError};
use crate::raft::{ConfChange, ConfChangeType};

impl Cluster {
    /// Checks that `change` (as proposed by the server: one add, remove or
    /// promote) leaves a quorum of started voters. Adding a learner and
    /// removing a learner are never refused here.
    ///
    /// Errors: [`MembershipError::NotEnoughStartedMembers`]; a context that
    /// does not decode → [`MembershipError::InvalidContext`].
    pub fn check_started_quorum(&self, change: &ConfChange) -> Result<(), MembershipError> {
        let context = ConfChangeContext::decode(&change.context)?;
        for single in &change.changes {
            let ready = match single.change_type {
                ConfChangeType::AddLearnerNode => true,
                ConfChangeType::AddNode if context.is_promote => self.ready_to_promote(),
                ConfChangeType::AddNode => self.ready_to_add_voter(),
                ConfChangeType::RemoveNode => self.ready_to_remove(single.node_id),
            };
            if !ready {
                return Err(MembershipError::NotEnoughStartedMembers);
            }
        }
        Ok(())
    }

    /// etcd `IsReadyToAddVotingMember`: with the new voter counted (not
    /// started), a quorum must be started; a one-member cluster may always
    /// grow to two (etcd's restore procedure).
    fn ready_to_add_voter(&self) -> bool {
        let (voters, started) = self.count_voters(None);
        let (members, started) = (voters + 1, started);
        (started == 1 && members == 2) || started >= quorum(members)
    }

    /// etcd `IsReadyToRemoveVotingMember`: without `id`, a quorum of the
    /// remaining voters must be started. Removing a learner always passes.
    fn ready_to_remove(&self, id: u64) -> bool {
        if self.member(id).is_some_and(|member| member.is_learner) {
            return true;
        }
        let (members, started) = self.count_voters(Some(id));
        started >= quorum(members)
    }

    /// etcd `IsReadyToPromoteMember`: the learner counts as a started
    /// voter.
    fn ready_to_promote(&self) -> bool {
        let (voters, started) = self.count_voters(None);
        started + 1 >= quorum(voters + 1)
    }

    /// (voters, started voters), leaving out `except`.
    fn count_voters(&self, except: Option<u64>) -> (usize, usize) {
        let voters = || {
            self.members()
                .into_iter()
                .filter(|member| !member.is_learner && Some(member.id) != except)
        };
        (voters().count(), voters().filter(|m| is_started(m)).count())
    }
}

/// A member is started once its name is known (etcd `Member.IsStarted`).
fn is_started(member: &Member) -> bool {
    !member.name.is_empty()
}

/// Votes needed among `members` voters.
fn quorum(members: usize) -> usize {
    members / 2 + 1
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::raft::ConfChangeSingle;

    /// A cluster of voters named by `names` (`""` = never started) and
    /// ids 1, 2, ...
    fn cluster(names: &[&str]) -> Cluster {
        let members = names
            .iter()
            .enumerate()
            .map(|(i, name)| Member {
                id: i as u64 + 1,
                name: (*name).to_owned(),
                peer_urls: vec![format!("http://m{i}:2380")],
                client_urls: Vec::new(),
                is_learner: false,
            })
            .collect();
        Cluster::bootstrap(members).unwrap()
    }

    fn change(change_type: ConfChangeType, node_id: u64, is_promote: bool) -> ConfChange {
        let context = ConfChangeContext {
            members: Vec::new(),
            is_promote,
        };
        ConfChange {
            changes: vec![ConfChangeSingle {
                change_type,
                node_id,
            }],
            context: context.encode(),
        }
    }

    const REFUSED: Result<(), MembershipError> = Err(MembershipError::NotEnoughStartedMembers);

    #[test]
    fn adding_a_voter_needs_a_started_quorum_with_it() {
        let add = change(ConfChangeType::AddNode, 9, false);
        assert_eq!(cluster(&["a"]).check_started_quorum(&add), Ok(()));
        assert_eq!(cluster(&["a", "b"]).check_started_quorum(&add), Ok(()));
        assert_eq!(cluster(&["a", ""]).check_started_quorum(&add), REFUSED);
        // Four voters, two started: short of three.
        assert_eq!(cluster(&["a", "b", ""]).check_started_quorum(&add), REFUSED);
        assert_eq!(cluster(&["a", "", ""]).check_started_quorum(&add), REFUSED);
        let five = cluster(&["a", "b", "c", ""]);
        assert_eq!(five.check_started_quorum(&add), Ok(()));
        let learner = change(ConfChangeType::AddLearnerNode, 9, false);
        assert_eq!(
            cluster(&["a", "", ""]).check_started_quorum(&learner),
            Ok(())
        );
    }

    #[test]
    fn removing_a_voter_needs_a_started_quorum_without_it() {
        let remove = |id| change(ConfChangeType::RemoveNode, id, false);
        assert_eq!(
            cluster(&["a", "b", ""]).check_started_quorum(&remove(3)),
            Ok(())
        );
        assert_eq!(
            cluster(&["a", "b", ""]).check_started_quorum(&remove(1)),
            REFUSED
        );
        assert_eq!(
            cluster(&["a", "b", "c"]).check_started_quorum(&remove(1)),
            Ok(())
        );
        assert_eq!(cluster(&["a"]).check_started_quorum(&remove(1)), REFUSED);
    }

    #[test]
    fn promoting_counts_the_learner_as_started() {
        let promote = change(ConfChangeType::AddNode, 9, true);
        assert_eq!(cluster(&["a", ""]).check_started_quorum(&promote), Ok(()));
        assert_eq!(
            cluster(&["a", "", ""]).check_started_quorum(&promote),
            REFUSED
        );
    }
}
