//! When a member proposes its NOSPACE alarm.
//!
//! Two conditions raise it, both etcd's: the state grew over
//! `--quota-backend-bytes` (etcd's quota check), or the disk was found full
//! (see `disk_full.rs`; the member reports the alarm locally until the
//! replicated one is applied). The alarm is replicated state, so it is only
//! ever proposed through Raft, and only while a leader is known. Once a
//! disk-full alarm is seen applied the member stops asking for it, so an
//! operator's later `alarm disarm` is not undone.

use keel_kernel::apply::{AlarmAction, AlarmRequest, AlarmType, Request};

/// What the alarm decision looks at, read from the driver and the applied
/// state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmView {
    /// The estimated state size (bytes).
    pub db_size_bytes: u64,
    /// `--quota-backend-bytes`; `None` when the member checks no quota.
    pub quota_bytes: Option<u64>,
    /// A leader is known (a proposal can be forwarded).
    pub has_leader: bool,
    /// Raft is running (not stalled on a full disk or failed).
    pub running: bool,
    /// The disk was found full and the alarm not yet seen applied
    /// (the member's local `disk_full` report).
    pub disk_full_reported: bool,
    /// This member's NOSPACE alarm is in the applied alarm list.
    pub nospace_applied: bool,
}

/// The outcome of one alarm check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlarmDecision {
    /// Propose this member's NOSPACE alarm now.
    pub propose: bool,
    /// The disk-full alarm is applied: stop reporting it locally.
    pub settle_disk_full: bool,
}

/// True when the state is over the quota.
pub fn over_quota(db_size_bytes: u64, quota_bytes: Option<u64>) -> bool {
    quota_bytes.is_some_and(|quota| db_size_bytes > quota)
}

/// Decides whether to propose the NOSPACE alarm and whether the local
/// disk-full report is settled. Pure: the driver and the simulator call it
/// with what they see.
pub fn decide(view: AlarmView) -> AlarmDecision {
    let settle_disk_full = view.disk_full_reported && view.nospace_applied;
    let wanted = over_quota(view.db_size_bytes, view.quota_bytes)
        || (view.disk_full_reported && view.running);
    AlarmDecision {
        propose: wanted && view.has_leader && !view.nospace_applied,
        settle_disk_full,
    }
}

/// The request that raises `member_id`'s NOSPACE alarm.
pub fn nospace_request(member_id: u64) -> Request {
    Request::Alarm(AlarmRequest {
        action: AlarmAction::Activate,
        member_id,
        alarm: AlarmType::NoSpace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm() -> AlarmView {
        AlarmView {
            db_size_bytes: 10,
            quota_bytes: Some(100),
            has_leader: true,
            running: true,
            disk_full_reported: false,
            nospace_applied: false,
        }
    }

    #[test]
    fn under_quota_and_disk_fine_proposes_nothing() {
        assert_eq!(decide(calm()), AlarmDecision::default());
    }

    #[test]
    fn over_quota_proposes_until_applied() {
        let over = AlarmView {
            db_size_bytes: 101,
            ..calm()
        };
        assert!(decide(over).propose);
        let at_quota = AlarmView {
            db_size_bytes: 100,
            ..calm()
        };
        assert!(
            !decide(at_quota).propose,
            "etcd raises only above the quota"
        );
        let applied = AlarmView {
            nospace_applied: true,
            ..over
        };
        assert!(!decide(applied).propose);
        let no_quota = AlarmView {
            quota_bytes: None,
            ..over
        };
        assert!(!decide(no_quota).propose);
    }

    #[test]
    fn nothing_is_proposed_without_a_leader() {
        let view = AlarmView {
            db_size_bytes: 101,
            has_leader: false,
            disk_full_reported: true,
            ..calm()
        };
        assert!(!decide(view).propose);
    }

    #[test]
    fn a_full_disk_proposes_once_raft_runs_again() {
        let stalled = AlarmView {
            disk_full_reported: true,
            running: false,
            ..calm()
        };
        assert!(!decide(stalled).propose, "a frozen raft cannot propose");
        let resumed = AlarmView {
            running: true,
            ..stalled
        };
        assert_eq!(
            decide(resumed),
            AlarmDecision {
                propose: true,
                settle_disk_full: false
            }
        );
    }

    #[test]
    fn an_applied_disk_full_alarm_settles_the_local_report() {
        let view = AlarmView {
            disk_full_reported: true,
            nospace_applied: true,
            ..calm()
        };
        assert_eq!(
            decide(view),
            AlarmDecision {
                propose: false,
                settle_disk_full: true
            }
        );
    }
}
