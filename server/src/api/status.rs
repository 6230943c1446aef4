//! Errors as etcd's clients see them: every [`ServerError`] and
//! [`ApplyError`] becomes a `tonic::Status` with the gRPC code and message
//! of etcd's `api/v3rpc/rpctypes/error.go` (`ErrGRPC*`), so etcdctl and the
//! client libraries recognise them (they match on the message text).

use keel_kernel::apply::ApplyError;
use keel_kernel::auth::AuthError;
use keel_kernel::lease::LeaseError;
use keel_kernel::membership::MembershipError;
use keel_kernel::mvcc::MvccError;
use tonic::{Code, Status};

use crate::replica::ServerError;

/// etcd's `ErrGRPCEmptyKey`.
pub const EMPTY_KEY: &str = "etcdserver: key is not provided";
/// etcd's `ErrGRPCTooManyOps`.
pub const TOO_MANY_OPS: &str = "etcdserver: too many operations in txn request";
/// etcd's `ErrGRPCRequestTooLarge`.
pub const REQUEST_TOO_LARGE: &str = "etcdserver: request is too large";
/// etcd's `ErrGRPCDuplicateKey`.
pub const DUPLICATE_KEY: &str = "etcdserver: duplicate key given in txn request";
/// etcd's `ErrGRPCNoLeader`.
pub const NO_LEADER: &str = "etcdserver: no leader";

/// The status for a failure of the node (`ServerError`), etcd's code and
/// message for each (`ErrGRPCNoLeader`, `ErrGRPCTimeout`,
/// `ErrGRPCTimeoutDueToLeaderFail`, `ErrGRPCRequestTooLarge`,
/// `ErrGRPCTooManyRequests`, `ErrGRPCStopped`, `ErrGRPCNoSpace`).
pub fn server_error(err: &ServerError) -> Status {
    match err {
        ServerError::Apply(apply) => apply_error(apply),
        ServerError::NoLeader => Status::unavailable(NO_LEADER),
        ServerError::Timeout => Status::unavailable("etcdserver: request timed out"),
        ServerError::ProposalDropped => Status::unavailable(
            "etcdserver: request timed out, possibly due to previous leader failure",
        ),
        ServerError::RequestTooLarge => Status::invalid_argument(REQUEST_TOO_LARGE),
        ServerError::TooManyRequests => Status::resource_exhausted("etcdserver: too many requests"),
        ServerError::Stopped => Status::unavailable("etcdserver: server stopped"),
        ServerError::Unhealthy => Status::unavailable("etcdserver: unhealthy cluster"),
        ServerError::NotLeader => Status::failed_precondition("etcdserver: not leader"),
        ServerError::BadLeaderTransferee => {
            Status::failed_precondition("etcdserver: bad leader transferee")
        }
        ServerError::LeaderTransferTimeout => {
            Status::unknown("etcdserver: request timed out, leader transfer took too long")
        }
        ServerError::Storage(why) => Status::internal(format!("etcdserver: {why}")),
    }
}

/// The status for a request the state machine refused.
pub fn apply_error(err: &ApplyError) -> Status {
    match err {
        ApplyError::Mvcc(mvcc) => mvcc_error(mvcc),
        ApplyError::Lease(lease) => lease_error(*lease),
        ApplyError::Auth(auth) => auth_error(*auth),
        ApplyError::Membership(membership) => membership_error(*membership),
        ApplyError::NoSpace => Status::resource_exhausted(err.to_string()),
        ApplyError::Corrupt => Status::data_loss(err.to_string()),
        ApplyError::RequestTooLarge => Status::invalid_argument(REQUEST_TOO_LARGE),
        ApplyError::BadEntry(_) => Status::internal(err.to_string()),
    }
}

/// KV errors. etcd's gRPC messages for compaction errors carry an
/// "etcdserver: " prefix the store's own messages lack.
pub fn mvcc_error(err: &MvccError) -> Status {
    match err {
        MvccError::Compacted | MvccError::FutureRevision => {
            Status::out_of_range(format!("etcdserver: {err}"))
        }
        MvccError::LeaseNotFound => Status::not_found(err.to_string()),
        MvccError::CorruptSnapshot(_) => Status::data_loss(err.to_string()),
        MvccError::DuplicateKey
        | MvccError::TooManyOps
        | MvccError::EmptyKey
        | MvccError::ValueProvided
        | MvccError::LeaseProvided
        | MvccError::KeyNotFound => Status::invalid_argument(err.to_string()),
    }
}

/// Lease errors (`ErrGRPCLeaseNotFound` NotFound, `ErrGRPCLeaseExist`
/// FailedPrecondition, `ErrGRPCLeaseTTLTooLarge` OutOfRange,
/// `ErrGRPCNotLeader` Unavailable).
pub fn lease_error(err: LeaseError) -> Status {
    let code = match err {
        LeaseError::NotFound => Code::NotFound,
        LeaseError::AlreadyExists => Code::FailedPrecondition,
        LeaseError::TtlTooLarge => Code::OutOfRange,
        LeaseError::NotPrimary => Code::Unavailable,
    };
    Status::new(code, err.to_string())
}

/// Auth errors, with etcd's codes (`ErrGRPCPermissionDenied`
/// PermissionDenied, `ErrGRPCInvalidAuthToken` Unauthenticated, ...;
/// `auth.ErrNoPasswordUser` has no gRPC twin in etcd, so Unknown).
pub fn auth_error(err: AuthError) -> Status {
    let code = match err {
        AuthError::UserEmpty
        | AuthError::RoleEmpty
        | AuthError::AuthFailed
        | AuthError::InvalidAuthMgmt
        | AuthError::AuthOldRevision => Code::InvalidArgument,
        AuthError::RootUserNotExist
        | AuthError::RootRoleNotExist
        | AuthError::UserAlreadyExist
        | AuthError::UserNotFound
        | AuthError::RoleAlreadyExist
        | AuthError::RoleNotFound
        | AuthError::RoleNotGranted
        | AuthError::PermissionNotGranted
        | AuthError::AuthNotEnabled => Code::FailedPrecondition,
        AuthError::PermissionDenied => Code::PermissionDenied,
        AuthError::InvalidAuthToken => Code::Unauthenticated,
        AuthError::PasswordHashFailed => Code::Internal,
        AuthError::NoPasswordUser => Code::Unknown,
    };
    Status::new(code, err.to_string())
}

/// Membership errors (`ErrGRPCMemberNotFound` NotFound,
/// `ErrGRPCMemberBadURLs` InvalidArgument, the rest FailedPrecondition).
pub fn membership_error(err: MembershipError) -> Status {
    let code = match err {
        MembershipError::NotFound | MembershipError::IdRemoved => Code::NotFound,
        MembershipError::BadUrls | MembershipError::InvalidContext => Code::InvalidArgument,
        MembershipError::IdExists
        | MembershipError::PeerUrlExists
        | MembershipError::NotLearner
        | MembershipError::LearnerNotReady
        | MembershipError::NotEnoughStartedMembers
        | MembershipError::TooManyLearners => Code::FailedPrecondition,
    };
    Status::new(code, err.to_string())
}

/// What Go's `status.Error(...).Error()` prints for `status`:
/// `rpc error: code = <Code> desc = <message>`. etcd puts this text in a
/// refused watch's `cancel_reason` (`rpctypes.ErrGRPCPermissionDenied.Error()`
/// and friends), and clients print it as is.
pub fn go_error_text(status: &Status) -> String {
    let code = match status.code() {
        Code::Ok => "OK".to_string(),
        Code::Cancelled => "Canceled".to_string(),
        other => format!("{other:?}"),
    };
    format!("rpc error: code = {code} desc = {}", status.message())
}

/// The `cancel_reason` of a watch create refused for `err` (etcd
/// `watch.go` `recvLoop`: invalid token, old auth revision and empty user
/// keep their own status text, every other refusal is reported as
/// "permission denied").
pub fn watch_refusal(err: AuthError) -> String {
    let reported = match err {
        AuthError::InvalidAuthToken | AuthError::AuthOldRevision | AuthError::UserEmpty => err,
        _ => AuthError::PermissionDenied,
    };
    go_error_text(&auth_error(reported))
}

impl From<ServerError> for Status {
    fn from(err: ServerError) -> Status {
        server_error(&err)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pair(status: &Status) -> (Code, &str) {
        (status.code(), status.message())
    }

    #[test]
    fn kv_errors_match_etcd() {
        let compacted = mvcc_error(&MvccError::Compacted);
        assert_eq!(
            pair(&compacted),
            (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision has been compacted"
            )
        );
        let future = mvcc_error(&MvccError::FutureRevision);
        assert_eq!(
            pair(&future),
            (
                Code::OutOfRange,
                "etcdserver: mvcc: required revision is a future revision"
            )
        );
        assert_eq!(
            pair(&mvcc_error(&MvccError::TooManyOps)),
            (Code::InvalidArgument, TOO_MANY_OPS)
        );
        assert_eq!(
            pair(&mvcc_error(&MvccError::EmptyKey)),
            (Code::InvalidArgument, EMPTY_KEY)
        );
        assert_eq!(
            pair(&mvcc_error(&MvccError::DuplicateKey)),
            (Code::InvalidArgument, DUPLICATE_KEY)
        );
        assert_eq!(
            pair(&mvcc_error(&MvccError::LeaseNotFound)),
            (Code::NotFound, "etcdserver: requested lease not found")
        );
    }

    #[test]
    fn server_errors_match_etcd() {
        assert_eq!(
            pair(&server_error(&ServerError::NoLeader)),
            (Code::Unavailable, "etcdserver: no leader")
        );
        assert_eq!(
            pair(&server_error(&ServerError::Timeout)),
            (Code::Unavailable, "etcdserver: request timed out")
        );
        assert_eq!(
            pair(&server_error(&ServerError::RequestTooLarge)),
            (Code::InvalidArgument, "etcdserver: request is too large")
        );
        assert_eq!(
            pair(&server_error(&ServerError::TooManyRequests)),
            (Code::ResourceExhausted, "etcdserver: too many requests")
        );
        assert_eq!(
            pair(&server_error(&ServerError::Unhealthy)),
            (Code::Unavailable, "etcdserver: unhealthy cluster")
        );
        let not_started = MembershipError::NotEnoughStartedMembers;
        assert_eq!(
            pair(&membership_error(not_started)),
            (
                Code::FailedPrecondition,
                "etcdserver: re-configuration failed due to not enough started members"
            )
        );
        let nospace = server_error(&ServerError::Apply(ApplyError::NoSpace));
        assert_eq!(
            pair(&nospace),
            (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded"
            )
        );
        assert_eq!(
            pair(&server_error(&ServerError::Storage(
                "storage failure: x".into()
            ))),
            (Code::Internal, "etcdserver: storage failure: x")
        );
    }

    #[test]
    fn watch_refusals_carry_gos_status_text() {
        assert_eq!(
            watch_refusal(AuthError::PermissionDenied),
            "rpc error: code = PermissionDenied desc = etcdserver: permission denied"
        );
        assert_eq!(
            watch_refusal(AuthError::InvalidAuthToken),
            "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"
        );
        assert_eq!(
            watch_refusal(AuthError::UserEmpty),
            "rpc error: code = InvalidArgument desc = etcdserver: user name is empty"
        );
        assert_eq!(
            watch_refusal(AuthError::UserNotFound),
            watch_refusal(AuthError::PermissionDenied)
        );
        assert_eq!(
            go_error_text(&Status::cancelled("x")),
            "rpc error: code = Canceled desc = x"
        );
    }

    #[test]
    fn lease_auth_membership_errors_match_etcd() {
        assert_eq!(
            pair(&apply_error(&ApplyError::Lease(LeaseError::NotFound))),
            (Code::NotFound, "etcdserver: requested lease not found")
        );
        assert_eq!(
            pair(&lease_error(LeaseError::TtlTooLarge)),
            (Code::OutOfRange, "etcdserver: too large lease TTL")
        );
        assert_eq!(
            pair(&auth_error(AuthError::PermissionDenied)),
            (Code::PermissionDenied, "etcdserver: permission denied")
        );
        assert_eq!(
            pair(&auth_error(AuthError::InvalidAuthToken)),
            (Code::Unauthenticated, "etcdserver: invalid auth token")
        );
        assert_eq!(
            pair(&auth_error(AuthError::AuthFailed)),
            (
                Code::InvalidArgument,
                "etcdserver: authentication failed, invalid user ID or password"
            )
        );
        assert_eq!(
            pair(&auth_error(AuthError::UserAlreadyExist)),
            (
                Code::FailedPrecondition,
                "etcdserver: user name already exists"
            )
        );
        assert_eq!(
            pair(&membership_error(MembershipError::NotFound)),
            (Code::NotFound, "etcdserver: member not found")
        );
        assert_eq!(
            membership_error(MembershipError::PeerUrlExists).code(),
            Code::FailedPrecondition
        );
    }
}
