//! Errors of membership changes, with the messages etcd's clients see
//! (`api/v3rpc/rpctypes/error.go`; etcd maps `membership.ErrIDRemoved` to
//! "member not found").

use std::fmt;

/// Why a membership change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipError {
    /// Unknown member id.
    NotFound,
    /// The id was removed from the cluster and can never come back.
    IdRemoved,
    /// Adding a member whose id exists.
    IdExists,
    /// Adding a member with a peer URL another member has.
    PeerUrlExists,
    /// Promoting a member that is not a learner.
    NotLearner,
    /// Promoting a learner that has not caught up with the leader.
    LearnerNotReady,
    /// Adding a learner beyond [`super::MAX_LEARNERS`].
    TooManyLearners,
    /// The change would leave fewer started voters than a quorum (etcd
    /// `ErrNotEnoughStartedMembers`, strict reconfiguration check).
    NotEnoughStartedMembers,
    /// No peer URL, or an empty one.
    BadUrls,
    /// The conf change's context is missing, undecodable, or names
    /// another member than the change.
    InvalidContext,
}

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MembershipError::NotFound | MembershipError::IdRemoved => {
                "etcdserver: member not found"
            }
            MembershipError::IdExists => "etcdserver: member ID already exist",
            MembershipError::PeerUrlExists => "etcdserver: Peer URLs already exists",
            MembershipError::NotLearner => "etcdserver: can only promote a learner member",
            MembershipError::LearnerNotReady => {
                "etcdserver: can only promote a learner member which is in sync with leader"
            }
            MembershipError::TooManyLearners => "etcdserver: too many learner members in cluster",
            MembershipError::NotEnoughStartedMembers => {
                "etcdserver: re-configuration failed due to not enough started members"
            }
            MembershipError::BadUrls => "etcdserver: given member URLs are invalid",
            MembershipError::InvalidContext => "etcdserver: invalid conf change context",
        })
    }
}

impl std::error::Error for MembershipError {}
