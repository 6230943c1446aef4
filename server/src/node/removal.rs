//! A member removed from the cluster stops serving, as etcd's does.
//!
//! etcd learns it two ways, and so does keel:
//! - it applies its own `RemoveNode` (etcd `server.go` `applyConfChange`
//!   returns `shouldStop`, then `stopWithDelay` gives the response to the
//!   client that asked a moment to leave);
//! - a peer refuses its Raft messages because its id is removed (etcd's
//!   rafthttp answers `410 Gone`, "the member has been permanently removed
//!   from the cluster"): a removed follower never hears the commit of its
//!   own removal, since the leader stops replicating to it.
//!
//! Either way it logs etcd's two lines ("the member has been permanently
//! removed from the cluster", "the data-dir used by this member must be
//! removed.") and stops; the `keel` binary then exits.

use tonic::{Code, Status};

/// etcd's wording (`rafthttp/http.go` `errMemberRemoved`), also the message
/// of the status a peer answers a removed member with.
pub const REMOVED_MESSAGE: &str = "the member has been permanently removed from the cluster";

/// The gRPC code a peer refuses a removed member's messages with (etcd:
/// HTTP 410 Gone).
pub const REMOVED_CODE: Code = Code::PermissionDenied;

/// The status a peer answers a removed member's Raft stream with.
pub fn removed_status() -> Status {
    Status::new(REMOVED_CODE, REMOVED_MESSAGE)
}

/// True when `status` is a peer telling this member it was removed.
pub fn is_removed_status(status: &Status) -> bool {
    status.code() == REMOVED_CODE && status.message() == REMOVED_MESSAGE
}

/// When a removed member stops: never until it learns of its removal, then
/// `delay_ms` later (etcd: ten ticks).
#[derive(Debug, Default)]
pub struct Removal {
    stop_at_ms: Option<u64>,
}

impl Removal {
    /// Records that member `member_id` learned at `now_ms` (ms) that it was
    /// removed (`how`: which way), logging it once; it stops `delay_ms`
    /// later.
    pub fn removed(&mut self, member_id: u64, how: &str, now_ms: u64, delay_ms: u64) {
        if self.stop_at_ms.is_some() {
            return;
        }
        let member = format!("{member_id:x}");
        tracing::error!(%member, how, "{REMOVED_MESSAGE}");
        tracing::info!(%member, "the data-dir used by this member must be removed.");
        self.stop_at_ms = Some(now_ms.saturating_add(delay_ms));
    }

    /// Whether the member learned it was removed.
    pub fn is_removed(&self) -> bool {
        self.stop_at_ms.is_some()
    }

    /// Whether the member must stop now (`now_ms`, ms).
    pub fn must_stop(&self, now_ms: u64) -> bool {
        self.stop_at_ms.is_some_and(|at| now_ms >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_once_the_delay_after_the_first_notice_passed() {
        let mut removal = Removal::default();
        assert!(!removal.must_stop(u64::MAX));
        removal.removed(1, "applied", 1_000, 500);
        removal.removed(1, "peer refused", 5_000, 500);
        assert!(removal.is_removed());
        assert!(!removal.must_stop(1_499));
        assert!(removal.must_stop(1_500));
    }

    #[test]
    fn the_refusal_status_is_recognised() {
        assert!(is_removed_status(&removed_status()));
        assert!(!is_removed_status(&Status::permission_denied("other")));
    }
}
