//! Maintenance.Downgrade for a cluster at keel's only version (the etcd
//! API version in [`super::ETCD_VERSION`], 3.5), after etcd v3.5
//! `server/etcdserver/v3_server.go` (`Downgrade`, `downgradeValidate`,
//! `downgradeEnable`, `downgradeCancel`) and `cluster_util.go`
//! (`convertToClusterVersion`):
//!
//! - VALIDATE of the one allowed target (one minor version lower, 3.4)
//!   answers the cluster version; any other target is "invalid downgrade
//!   target version"; text that is not `MAJOR.MINOR[.PATCH]` is "wrong
//!   downgrade target version format".
//! - ENABLE validates the same way. keel has no older version its members
//!   could be replaced by, so it never starts a downgrade job: the allowed
//!   target is refused too, as an invalid target.
//! - CANCEL: no job is ever in flight, so "no inflight downgrade job".

use tonic::Status;

use crate::proto::etcdserverpb::downgrade_request::DowngradeAction;

/// The cluster version etcd reports (`major.minor.0`).
pub const CLUSTER_VERSION: (u64, u64) = (3, 5);

/// etcd `ErrGRPCWrongDowngradeVersionFormat`.
fn wrong_format() -> Status {
    Status::invalid_argument("etcdserver: wrong downgrade target version format")
}

/// etcd `ErrGRPCInvalidDowngradeTargetVersion`.
fn invalid_target() -> Status {
    Status::invalid_argument("etcdserver: invalid downgrade target version")
}

/// etcd `ErrGRPCNoInflightDowngrade`.
fn no_inflight() -> Status {
    Status::failed_precondition("etcdserver: no inflight downgrade job")
}

/// etcd `ErrGRPCUnknownMethod` for an action outside the enum.
fn unknown_method() -> Status {
    Status::invalid_argument("etcdserver: unknown method")
}

/// The `(major, minor)` of a target version as etcd reads it (go-semver
/// `MAJOR.MINOR.PATCH[-pre][+meta]`, or `MAJOR.MINOR`); `None` when it
/// does not parse.
pub fn parse_target(text: &str) -> Option<(u64, u64)> {
    let core = text.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let number = |part: &str| -> Option<u64> {
        let plain = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        let no_leading_zero = part == "0" || !part.starts_with('0');
        (plain && no_leading_zero)
            .then(|| part.parse().ok())
            .flatten()
    };
    match parts.as_slice() {
        [major, minor] | [major, minor, _] if parts.len() == 2 || number(parts[2]).is_some() => {
            Some((number(major)?, number(minor)?))
        }
        _ => None,
    }
}

/// Answers a Downgrade request with `action` (the raw enum value) and
/// target `version`: the cluster version text etcd puts in the response.
///
/// Errors: as the module documents (InvalidArgument, FailedPrecondition).
pub fn answer(action: i32, version: &str) -> Result<String, Status> {
    match DowngradeAction::try_from(action) {
        Ok(DowngradeAction::Validate) => validate(version),
        Ok(DowngradeAction::Enable) => {
            validate(version)?;
            Err(invalid_target())
        }
        Ok(DowngradeAction::Cancel) => Err(no_inflight()),
        Err(_) => Err(unknown_method()),
    }
}

fn validate(version: &str) -> Result<String, Status> {
    let target = parse_target(version).ok_or_else(wrong_format)?;
    let (major, minor) = CLUSTER_VERSION;
    if minor == 0 || target != (major, minor - 1) {
        return Err(invalid_target());
    }
    Ok(format!("{major}.{minor}.0"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    const VALIDATE: i32 = DowngradeAction::Validate as i32;
    const ENABLE: i32 = DowngradeAction::Enable as i32;
    const CANCEL: i32 = DowngradeAction::Cancel as i32;

    fn refusal(result: Result<String, Status>) -> (tonic::Code, String) {
        let status = result.unwrap_err();
        (status.code(), status.message().to_owned())
    }

    #[test]
    fn versions_parse_as_go_semver_reads_them() {
        assert_eq!(parse_target("3.4"), Some((3, 4)));
        assert_eq!(parse_target("3.4.0"), Some((3, 4)));
        assert_eq!(parse_target("3.4.2-rc.1"), Some((3, 4)));
        for bad in ["", "3", "v3.4", "3.x", "3.4.x", "03.4", "3.4.0.1"] {
            assert_eq!(parse_target(bad), None, "{bad}");
        }
    }

    #[test]
    fn validate_accepts_only_the_previous_minor() {
        assert_eq!(answer(VALIDATE, "3.4").unwrap(), "3.5.0");
        assert_eq!(answer(VALIDATE, "3.4.9").unwrap(), "3.5.0");
        let invalid = (
            tonic::Code::InvalidArgument,
            "etcdserver: invalid downgrade target version".to_owned(),
        );
        for target in ["3.3", "3.5", "3.6", "2.4"] {
            assert_eq!(refusal(answer(VALIDATE, target)), invalid, "{target}");
            assert_eq!(refusal(answer(ENABLE, target)), invalid, "{target}");
        }
        assert_eq!(
            refusal(answer(VALIDATE, "three")),
            (
                tonic::Code::InvalidArgument,
                "etcdserver: wrong downgrade target version format".to_owned()
            )
        );
    }

    #[test]
    fn enable_never_starts_a_job_and_cancel_finds_none() {
        assert_eq!(
            refusal(answer(ENABLE, "3.4")).0,
            tonic::Code::InvalidArgument
        );
        assert_eq!(
            refusal(answer(CANCEL, "")),
            (
                tonic::Code::FailedPrecondition,
                "etcdserver: no inflight downgrade job".to_owned()
            )
        );
        assert_eq!(refusal(answer(7, "3.4")).0, tonic::Code::InvalidArgument);
    }
}
