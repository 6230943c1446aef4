//! Response headers as etcd fills them (etcd `etcdserverpb.ResponseHeader`):
//! the cluster id, the answering member's id and Raft term, and the store
//! revision the answer reflects.

use crate::proto::etcdserverpb as pb;
use crate::replica::{NodeStatus, Replica};

/// The header of a response reflecting store revision `revision`, with the
/// member's ids and term from `status`.
pub fn from_status(status: &NodeStatus, revision: i64) -> pb::ResponseHeader {
    pb::ResponseHeader {
        cluster_id: status.cluster_id,
        member_id: status.member_id,
        revision,
        raft_term: status.raft_term,
    }
}

/// The header of a response reflecting store revision `revision`, with the
/// replica's current ids and term.
pub fn header<B: Replica>(replica: &B, revision: i64) -> Option<pb::ResponseHeader> {
    Some(from_status(&replica.status(), revision))
}

/// The header of a response that is not about a particular write: the
/// store's current revision.
pub fn current<B: Replica>(replica: &B) -> Option<pb::ResponseHeader> {
    let revision = replica.with_state(|state| state.store().current_revision());
    header(replica, revision)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn header_copies_ids_and_term() {
        let status = NodeStatus {
            member_id: 3,
            cluster_id: 4,
            raft_term: 5,
            ..NodeStatus::default()
        };
        let header = from_status(&status, 9);
        assert_eq!(
            (
                header.cluster_id,
                header.member_id,
                header.revision,
                header.raft_term
            ),
            (4, 3, 9, 5)
        );
    }
}
