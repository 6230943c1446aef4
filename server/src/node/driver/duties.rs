//! What a tick starts: Raft's logical clock, stale reads retried, and every
//! [`DUTY_INTERVAL_MS`](crate::node::lease_duties::DUTY_INTERVAL_MS) the
//! leader's lease duties and the NOSPACE alarm check. The decisions are
//! `lease_duties.rs`'s and `alarm_policy.rs`'s; this file feeds them what
//! the member sees and proposes what they ask for.

use keel_kernel::apply::{AlarmMember, AlarmType};
use keel_wal::Storage;

use super::Driver;
use crate::node::alarm_policy::{self, AlarmView};
use crate::node::lease_duties::{lease_duty_requests, performs_lease_duties};

impl<S: Storage> Driver<S> {
    /// One heartbeat interval passed. A member that is not running does not
    /// tick (see `disk_full.rs`).
    pub(super) fn on_tick(&mut self) {
        if !self.mode.is_running() {
            return;
        }
        self.ticks += 1;
        self.raw.tick();
        let now_ms = self.shared.now_ms();
        self.reads.retry_stale(self.ticks, false);
        if self.duties.due(now_ms) {
            if performs_lease_duties(self.is_leader) {
                self.lease_duties(now_ms);
            }
            self.check_alarms();
            self.shared.status().alarm_checks += 1;
        }
    }

    /// Revokes the leases expired at `now_ms` and checkpoints remaining
    /// TTLs through Raft (the member-local lease clock decides which).
    fn lease_duties(&mut self, now_ms: u64) {
        let (expired, checkpoints) = self.shared.state.with_local(|state, local| {
            let expired = local.lease_expired(now_ms);
            (expired, local.lease_checkpoints_due(state, now_ms))
        });
        for request in lease_duty_requests(expired, checkpoints) {
            self.propose_internal(request);
        }
    }

    /// Proposes this member's NOSPACE alarm when `alarm_policy` asks for it
    /// (over `--quota-backend-bytes`, or after a full disk), and settles
    /// the local disk-full report once the alarm is applied.
    pub(super) fn check_alarms(&mut self) {
        let view = self.alarm_view();
        let decision = alarm_policy::decide(view);
        if decision.settle_disk_full {
            self.shared.status().disk_full = false;
        }
        if decision.propose {
            if alarm_policy::over_quota(view.db_size_bytes, view.quota_bytes) {
                tracing::warn!(
                    db_size_bytes = view.db_size_bytes,
                    quota_bytes = ?view.quota_bytes,
                    "state over quota; raising the NOSPACE alarm"
                );
            }
            self.propose_internal(alarm_policy::nospace_request(self.shared.member_id));
        }
    }

    /// Once this member's NOSPACE alarm is applied, its local disk-full
    /// report stops, so an operator's later `alarm disarm` is not undone;
    /// checked right after every apply.
    pub(super) fn settle_disk_full(&mut self) {
        if !self.shared.status().disk_full {
            return;
        }
        if alarm_policy::decide(self.alarm_view()).settle_disk_full {
            self.shared.status().disk_full = false;
        }
    }

    fn alarm_view(&self) -> AlarmView {
        let member_id = self.shared.member_id;
        let nospace_applied = self
            .shared
            .read_state()
            .alarms()
            .list()
            .contains(&AlarmMember {
                member_id,
                alarm: AlarmType::NoSpace,
            });
        AlarmView {
            db_size_bytes: self.db_size.bytes(),
            quota_bytes: self.settings.quota_backend_bytes,
            has_leader: self.leader_id != 0,
            running: self.mode.is_running(),
            disk_full_reported: self.shared.status().disk_full,
            nospace_applied,
        }
    }
}
