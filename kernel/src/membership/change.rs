//! Turning a client's membership request (etcd's MemberAdd, MemberRemove,
//! MemberPromote) into the conf change that is proposed, checked here as it
//! will be checked at apply.

use crate::raft::{ConfChange, ConfChangeSingle, ConfChangeType};

use super::{Cluster, ConfChangeContext, Member, MembershipError};

/// A membership change a client asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipRequest {
    /// Add a member (a learner when `is_learner`) reached at `peer_urls`.
    Add {
        /// The new member's peer URLs.
        peer_urls: Vec<String>,
        /// Add it as a non-voting learner.
        is_learner: bool,
    },
    /// Remove a member.
    Remove {
        /// The member to remove.
        member_id: u64,
    },
    /// Make a learner a voter.
    Promote {
        /// The learner to promote.
        member_id: u64,
    },
}

impl Cluster {
    /// The conf change for `request` and the id of the member it concerns
    /// (for `Add`, the new id, derived as etcd's `NewMember` does from the
    /// peer URLs, `cluster_token` and `unix_secs`, the wall clock's second).
    ///
    /// Runs etcd's strict reconfiguration check
    /// ([`Cluster::check_started_quorum`]) and then the apply-time check
    /// ([`Cluster::validate_conf_change`]), so a change that apply would
    /// refuse is refused before it is proposed.
    ///
    /// Errors: every [`MembershipError`] those checks return.
    pub fn conf_change_for(
        &self,
        request: &MembershipRequest,
        cluster_token: &str,
        unix_secs: u64,
    ) -> Result<(ConfChange, u64), MembershipError> {
        let (change, id) = build(request, cluster_token, unix_secs);
        self.check_started_quorum(&change)?;
        self.validate_conf_change(&change)?;
        Ok((change, id))
    }
}

fn build(request: &MembershipRequest, cluster_token: &str, unix_secs: u64) -> (ConfChange, u64) {
    let (change_type, context, id) = match request {
        MembershipRequest::Add {
            peer_urls,
            is_learner,
        } => {
            let member = Member::new("", peer_urls, cluster_token, Some(unix_secs), *is_learner);
            let change_type = if *is_learner {
                ConfChangeType::AddLearnerNode
            } else {
                ConfChangeType::AddNode
            };
            let id = member.id;
            let context = ConfChangeContext {
                members: vec![member],
                is_promote: false,
            };
            (change_type, context, id)
        }
        MembershipRequest::Remove { member_id } => (
            ConfChangeType::RemoveNode,
            ConfChangeContext::default(),
            *member_id,
        ),
        MembershipRequest::Promote { member_id } => (
            ConfChangeType::AddNode,
            ConfChangeContext {
                members: Vec::new(),
                is_promote: true,
            },
            *member_id,
        ),
    };
    let change = ConfChange {
        changes: vec![ConfChangeSingle {
            change_type,
            node_id: id,
        }],
        context: context.encode(),
    };
    (change, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Cluster {
        let urls = |port: u16| vec![format!("http://127.0.0.1:{port}")];
        let members = vec![
            Member::new("a", &urls(1), "token", None, false),
            Member::new("b", &urls(2), "token", None, false),
        ];
        Cluster::bootstrap(members).expect("two members bootstrap")
    }

    #[test]
    fn add_derives_etcds_member_id_and_carries_the_member() {
        let peer_urls = vec!["http://127.0.0.1:9".to_owned()];
        let request = MembershipRequest::Add {
            peer_urls: peer_urls.clone(),
            is_learner: true,
        };
        let (change, id) = cluster()
            .conf_change_for(&request, "token", 1_700_000_000)
            .expect("a new member may join");
        assert_eq!(
            id,
            Member::compute_id(&peer_urls, "token", Some(1_700_000_000))
        );
        assert_eq!(
            change.changes[0].change_type,
            ConfChangeType::AddLearnerNode
        );
        let context = ConfChangeContext::decode(&change.context).expect("context decodes");
        assert_eq!(context.member(id).map(|m| m.is_learner), Some(true));
    }

    #[test]
    fn a_change_apply_would_refuse_is_refused_here() {
        let existing = cluster().members()[0].peer_urls.clone();
        let duplicate = MembershipRequest::Add {
            peer_urls: existing,
            is_learner: false,
        };
        assert!(cluster().conf_change_for(&duplicate, "token", 1).is_err());
        let unknown = MembershipRequest::Remove { member_id: 42 };
        assert!(cluster().conf_change_for(&unknown, "token", 1).is_err());
        let not_learner = cluster().members()[0].id;
        let promote = MembershipRequest::Promote {
            member_id: not_learner,
        };
        assert!(cluster().conf_change_for(&promote, "token", 1).is_err());
    }
}
