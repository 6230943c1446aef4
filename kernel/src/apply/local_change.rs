//! What an applied entry asks of the member-local state: the replicated
//! state machine changes only itself, and reports the changes each
//! member's lease clock and token table must follow
//! ([`super::LocalState::follow`]).

use crate::lease::LeaseId;

/// One change of the member-local state that an applied entry implies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LocalChange {
    /// A lease was granted: the leader starts timing it.
    LeaseGranted {
        /// The lease.
        id: LeaseId,
    },
    /// A lease was revoked: nobody times it any more.
    LeaseRevoked {
        /// The lease.
        id: LeaseId,
    },
    /// A checkpoint of an existing lease was recorded: its remaining TTL
    /// is in force, and the leader schedules the next checkpoint.
    LeaseCheckpointed {
        /// The lease.
        id: LeaseId,
    },
    /// A login succeeded: every member records the token (etcd's simple
    /// tokens are assigned when the login is applied).
    TokenIssued {
        /// The simple token.
        token: String,
        /// The user it stands for.
        username: String,
    },
    /// A user was deleted or changed its password: its tokens die.
    UserTokensRevoked {
        /// The user.
        username: String,
    },
    /// Auth was disabled: every token dies.
    AllTokensRevoked,
}
