//! Membership changes (Raft thesis §4), by **joint consensus**:
//!
//! * A [`ConfChange`] with exactly one change that alters at most one voter
//!   (add/remove a node, add/promote/demote a learner) is applied directly
//!   ("simple" change, thesis §4.1).
//! * A change with several entries enters a joint configuration (thesis
//!   §4.3): decisions need a majority of the old and of the new voters. The
//!   leader leaves it automatically (`auto_leave`) by proposing an empty
//!   `ConfChange` once the joint configuration is applied.
//! * An empty `ConfChange` leaves the joint configuration.
//!
//! A configuration takes effect when its entry is applied (as in
//! etcd-io/raft); the leader allows one unapplied change at a time, and a
//! new leader accepts none until its own no-op entry is applied.

use super::tracker::TrackerConfig;
use super::{ConfChange, ConfChangeSingle, ConfChangeType, ConfState, NodeId, RaftError};

fn reject(why: impl Into<String>) -> RaftError {
    RaftError::ConfChangeRejected(why.into())
}

/// The configuration after applying `cc` to `config`.
///
/// Errors (`ConfChangeRejected`): node id 0, leaving when not joint,
/// entering joint when already joint, a simple change that alters more than
/// one voter, or a result with no voters.
pub fn apply(config: &TrackerConfig, cc: &ConfChange) -> Result<TrackerConfig, RaftError> {
    if cc.changes.iter().any(|c| c.node_id == 0) {
        return Err(reject("node id 0 is reserved"));
    }
    let next = if cc.is_leave_joint() {
        leave_joint(config)?
    } else if cc.changes.len() == 1 {
        simple(config, cc.changes[0])?
    } else {
        enter_joint(config, &cc.changes)?
    };
    check(&next)?;
    Ok(next)
}

fn simple(config: &TrackerConfig, change: ConfChangeSingle) -> Result<TrackerConfig, RaftError> {
    if config.voters.is_joint() {
        return Err(reject("can't apply simple config change in joint config"));
    }
    let mut next = config.clone();
    apply_one(&mut next, change);
    let changed = config
        .voters
        .incoming
        .symmetric_difference(&next.voters.incoming)
        .count();
    if changed > 1 {
        return Err(reject(
            "more than one voter changed without entering joint config",
        ));
    }
    Ok(next)
}

fn enter_joint(
    config: &TrackerConfig,
    changes: &[ConfChangeSingle],
) -> Result<TrackerConfig, RaftError> {
    if config.voters.is_joint() {
        return Err(reject("config is already joint"));
    }
    if config.voters.incoming.is_empty() {
        return Err(reject("can't make a zero-voter config joint"));
    }
    let mut next = config.clone();
    next.voters.outgoing = config.voters.incoming.clone();
    for change in changes {
        apply_one(&mut next, *change);
    }
    next.auto_leave = true;
    Ok(next)
}

fn leave_joint(config: &TrackerConfig) -> Result<TrackerConfig, RaftError> {
    if !config.voters.is_joint() {
        return Err(reject("can't leave a non-joint config"));
    }
    let mut next = config.clone();
    let demoted = std::mem::take(&mut next.learners_next);
    next.learners.extend(demoted);
    next.voters.outgoing.clear();
    next.auto_leave = false;
    Ok(next)
}

fn apply_one(next: &mut TrackerConfig, change: ConfChangeSingle) {
    let id = change.node_id;
    match change.change_type {
        ConfChangeType::AddNode => {
            next.learners.remove(&id);
            next.learners_next.remove(&id);
            next.voters.incoming.insert(id);
        }
        ConfChangeType::AddLearnerNode => {
            if next.learners.contains(&id) {
                return;
            }
            next.voters.incoming.remove(&id);
            if next.voters.outgoing.contains(&id) {
                next.learners_next.insert(id);
            } else {
                next.learners.insert(id);
            }
        }
        ConfChangeType::RemoveNode => {
            next.voters.incoming.remove(&id);
            next.learners.remove(&id);
            next.learners_next.remove(&id);
        }
    }
}

fn check(config: &TrackerConfig) -> Result<(), RaftError> {
    if config.voters.incoming.is_empty() {
        return Err(reject("removed all voters"));
    }
    match config.inconsistency() {
        Some(why) => Err(reject(why)),
        None => Ok(()),
    }
}

/// The configuration described by a persisted [`ConfState`] (restart or
/// snapshot). An all-empty state (a node that has not joined yet) is allowed.
/// Errors: `ConfChangeRejected` if the sets are inconsistent.
pub fn restore(cs: &ConfState) -> Result<TrackerConfig, RaftError> {
    let ids = |v: &[NodeId]| v.iter().copied().collect();
    let config = TrackerConfig {
        voters: super::quorum::JointConfig {
            incoming: ids(&cs.voters),
            outgoing: ids(&cs.voters_outgoing),
        },
        learners: ids(&cs.learners),
        learners_next: ids(&cs.learners_next),
        auto_leave: cs.auto_leave,
    };
    if *cs == ConfState::default() {
        return Ok(config);
    }
    check(&config)?;
    Ok(config)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cc(changes: &[(ConfChangeType, u64)]) -> ConfChange {
        let changes = changes
            .iter()
            .map(|&(change_type, node_id)| ConfChangeSingle {
                change_type,
                node_id,
            })
            .collect();
        ConfChange {
            changes,
            context: Default::default(),
        }
    }

    fn base() -> TrackerConfig {
        restore(&ConfState {
            voters: vec![1, 2, 3],
            ..ConfState::default()
        })
        .unwrap()
    }

    #[test]
    fn simple_changes_add_promote_and_remove() {
        use ConfChangeType::*;
        let c = apply(&base(), &cc(&[(AddLearnerNode, 4)])).unwrap();
        assert!(c.learners.contains(&4));
        let c = apply(&c, &cc(&[(AddNode, 4)])).unwrap();
        assert!(c.voters.incoming.contains(&4) && c.learners.is_empty());
        let c = apply(&c, &cc(&[(RemoveNode, 1)])).unwrap();
        assert_eq!(c.voters.incoming.len(), 3);
        let one = restore(&ConfState {
            voters: vec![1],
            ..ConfState::default()
        })
        .unwrap();
        assert!(
            apply(&one, &cc(&[(RemoveNode, 1)])).is_err(),
            "no voters left"
        );
        assert!(apply(&base(), &cc(&[(AddNode, 0)])).is_err());
    }

    #[test]
    fn joint_enter_and_leave() {
        use ConfChangeType::*;
        let joint = apply(&base(), &cc(&[(AddNode, 4), (AddLearnerNode, 3)])).unwrap();
        assert!(joint.voters.is_joint() && joint.auto_leave);
        assert!(joint.learners_next.contains(&3));
        assert!(apply(&joint, &cc(&[(AddNode, 5)])).is_err());
        assert!(apply(&joint, &cc(&[(AddNode, 5), (AddNode, 6)])).is_err());
        let left = apply(&joint, &ConfChange::default()).unwrap();
        assert!(!left.voters.is_joint());
        assert!(left.learners.contains(&3));
        assert_eq!(
            left.voters.incoming.iter().copied().collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
        assert!(apply(&left, &ConfChange::default()).is_err());
        assert_eq!(restore(&joint.to_conf_state()).unwrap(), joint);
    }
}
