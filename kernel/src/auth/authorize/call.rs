//! Who may make the calls a member answers itself, without proposing them
//! through Raft, whose permission depends only on who the caller is:
//! maintenance (etcd `v3rpc/maintenance.go` `authMaintenanceServer`:
//! `isAuthenticated` = root), membership changes and AuthStatus (etcd
//! `v3_server.go` `needAdminPermission`), and the calls any user may make
//! (etcd 3.6.9+/3.5.28+/3.4.42+ `requireAuthInfo`). The API layer names the
//! call; this table decides.

use crate::auth::{AuthError, AuthInfo, AuthStore};

/// A call answered by the member that receives it (or by the leader it is
/// forwarded to) rather than applied through Raft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberCall {
    /// `Maintenance.Status`.
    Status,
    /// `Maintenance.Alarm` listing, answered locally while the disk is full.
    AlarmList,
    /// `Cluster.MemberList`.
    MemberList,
    /// `Maintenance.Hash`.
    Hash,
    /// `Maintenance.HashKV`.
    HashKv,
    /// `Maintenance.Snapshot` (the whole store, every key).
    Snapshot,
    /// `Maintenance.Defragment`.
    Defragment,
    /// `Cluster.MemberAdd`, `MemberRemove`, `MemberUpdate`, `MemberPromote`.
    MemberChange,
    /// `Auth.AuthStatus` (etcd 3.5+ answers root only).
    AuthStatus,
}

/// What a [`MemberCall`] needs of its caller while auth is enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallerNeeds {
    /// Any authenticated user ([`AuthStore::require_user`]).
    User,
    /// A user with the `root` role ([`AuthStore::check_admin`]).
    Admin,
}

impl MemberCall {
    /// What this call needs of its caller (the table of the module
    /// documentation).
    pub fn needs(self) -> CallerNeeds {
        match self {
            MemberCall::Status | MemberCall::AlarmList | MemberCall::MemberList => {
                CallerNeeds::User
            }
            MemberCall::Hash
            | MemberCall::HashKv
            | MemberCall::Snapshot
            | MemberCall::Defragment
            | MemberCall::MemberChange
            | MemberCall::AuthStatus => CallerNeeds::Admin,
        }
    }
}

impl AuthStore {
    /// Checks that `info` may make `call` (see [`MemberCall::needs`]).
    /// Always allowed while auth is disabled.
    ///
    /// Errors: as [`AuthStore::require_user`] for a user's call, as
    /// [`AuthStore::check_admin`] for an administrator's.
    pub fn authorize_call(&self, info: &AuthInfo, call: MemberCall) -> Result<(), AuthError> {
        match call.needs() {
            CallerNeeds::User => self.require_user(info),
            CallerNeeds::Admin => self.check_admin(info),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::auth::AuthStore;

    const USER_CALLS: [MemberCall; 3] = [
        MemberCall::Status,
        MemberCall::AlarmList,
        MemberCall::MemberList,
    ];
    const ADMIN_CALLS: [MemberCall; 6] = [
        MemberCall::Hash,
        MemberCall::HashKv,
        MemberCall::Snapshot,
        MemberCall::Defragment,
        MemberCall::MemberChange,
        MemberCall::AuthStatus,
    ];

    /// Auth enabled with `root` (root role) and `alice` (no role).
    fn store() -> AuthStore {
        let mut s = AuthStore::new();
        s.user_add("root", None).unwrap();
        s.user_grant_role("root", "root").unwrap();
        s.user_add("alice", None).unwrap();
        s.enable().unwrap();
        s
    }

    fn info(s: &AuthStore, name: &str) -> AuthInfo {
        AuthInfo {
            username: name.into(),
            revision: s.revision(),
        }
    }

    #[test]
    fn root_makes_every_call_a_user_only_the_users_calls() {
        let s = store();
        let (root, alice) = (info(&s, "root"), info(&s, "alice"));
        for call in USER_CALLS.into_iter().chain(ADMIN_CALLS) {
            assert_eq!(s.authorize_call(&root, call), Ok(()), "{call:?}");
        }
        for call in USER_CALLS {
            assert_eq!(s.authorize_call(&alice, call), Ok(()), "{call:?}");
        }
        for call in ADMIN_CALLS {
            let got = s.authorize_call(&alice, call);
            assert_eq!(got, Err(AuthError::PermissionDenied), "{call:?}");
        }
    }

    #[test]
    fn no_user_is_refused_while_enabled_and_anyone_passes_while_disabled() {
        let nobody = AuthInfo::default();
        let s = store();
        for call in USER_CALLS.into_iter().chain(ADMIN_CALLS) {
            let got = s.authorize_call(&nobody, call);
            assert_eq!(got, Err(AuthError::UserEmpty), "{call:?}");
            let disabled = AuthStore::new();
            assert_eq!(disabled.authorize_call(&nobody, call), Ok(()), "{call:?}");
        }
    }
}
