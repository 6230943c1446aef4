//! The leader's side of the lease clock: deciding expiry from the instants
//! passed in, extending leases on promotion, and scheduling checkpoints
//! (etcd `lessor.Promote`, `Demote`, `revokeExpiredLeases`,
//! `findDueScheduledCheckpoints`).

use super::spread::spread_delays_ms;
use super::{
    CHECKPOINT_BATCH_MAX, EXPIRED_BATCH_MAX, EXPIRED_RETRY_INTERVAL_MS, LeaseCheckpoint,
    LeaseClock, LeaseId, Lessor,
};

impl LeaseClock {
    /// Leader only: leases whose expiry is at or before `now_ms`, ascending
    /// by expiry, at most [`EXPIRED_BATCH_MAX`]. The server proposes a
    /// revoke for each; a lease still present after
    /// [`super::EXPIRED_RETRY_INTERVAL_MS`] is reported again.
    pub fn expired(&mut self, now_ms: u64) -> Vec<LeaseId> {
        let mut expired = Vec::new();
        while expired.len() < EXPIRED_BATCH_MAX {
            let Some(&(at_ms, id)) = self.expiry_queue.first() else {
                break;
            };
            if at_ms > now_ms {
                break;
            }
            self.expiry_queue.remove(&(at_ms, id));
            self.expiry_check_ms.remove(&id);
            let due = self
                .expiry_ms(id)
                .is_some_and(|expiry_ms| expiry_ms <= now_ms);
            assert!(
                due,
                "lessor: lease {id} queued for expiry at {at_ms} ms but not expired at {now_ms} ms"
            );
            if due {
                expired.push(id);
                self.schedule_expiry_check(id, now_ms.saturating_add(EXPIRED_RETRY_INTERVAL_MS));
            }
        }
        expired
    }

    /// Makes this clock the leader's: every lease's expiry restarts at
    /// `now_ms + extend_ms + remaining TTL` (checkpointed, else granted), so
    /// no lease expires only because leadership moved. `extend_ms` is
    /// typically the election timeout.
    pub fn promote(&mut self, lessor: &Lessor, now_ms: u64, extend_ms: u64) {
        self.primary = true;
        self.stop_timing();
        let ids = lessor.leases();
        for &id in &ids {
            self.refresh(lessor, id, now_ms, extend_ms);
        }
        self.spread_expiries(lessor, now_ms, extend_ms);
        for id in ids {
            self.schedule_checkpoint(lessor, id, now_ms);
        }
    }

    /// Pushes back the expiry of leases that would otherwise expire in the
    /// same second as too many others (see [`spread_delays_ms`]).
    fn spread_expiries(&mut self, lessor: &Lessor, now_ms: u64, extend_ms: u64) {
        let mut sorted: Vec<(u64, LeaseId)> = self
            .expiry_ms
            .iter()
            .map(|(&id, &expiry_ms)| (expiry_ms.saturating_sub(now_ms), id))
            .collect();
        sorted.sort_unstable();
        for (id, delay_ms) in spread_delays_ms(&sorted) {
            self.refresh(lessor, id, now_ms, extend_ms.saturating_add(delay_ms));
        }
    }

    /// Stops deciding expiry (leadership lost): every lease lives forever
    /// on this member until a revoke is applied.
    pub fn demote(&mut self) {
        self.primary = false;
        self.stop_timing();
    }

    /// Forgets every expiry and queued check (not the keep-alives that
    /// cleared a checkpoint here: that checkpoint may still be applied).
    fn stop_timing(&mut self) {
        self.expiry_ms.clear();
        self.expiry_queue.clear();
        self.expiry_check_ms.clear();
        self.checkpoint_queue.clear();
    }

    /// Leader only: checkpoints due at `now_ms` (at most
    /// [`CHECKPOINT_BATCH_MAX`]), for the server to propose through Raft.
    /// A lease is checkpointed only while its remaining TTL is below its
    /// granted TTL; applying the checkpoint schedules the next one.
    pub fn checkpoints_due(&mut self, lessor: &Lessor, now_ms: u64) -> Vec<LeaseCheckpoint> {
        let mut due = Vec::new();
        while due.len() < CHECKPOINT_BATCH_MAX {
            let Some(&(at_ms, id)) = self.checkpoint_queue.first() else {
                break;
            };
            if at_ms > now_ms {
                break;
            }
            self.checkpoint_queue.remove(&(at_ms, id));
            let Some(lease) = lessor.lease(id) else {
                continue;
            };
            let Some(expiry_ms) = self.expiry_ms(id).filter(|&expiry_ms| expiry_ms > now_ms) else {
                continue;
            };
            let remaining_ttl_secs =
                i64::try_from((expiry_ms - now_ms).div_ceil(1000)).unwrap_or(i64::MAX);
            if remaining_ttl_secs < lease.ttl_secs {
                due.push(LeaseCheckpoint {
                    id,
                    remaining_ttl_secs,
                });
            }
        }
        due
    }

    /// Restarts the expiry of lease `id` at `now_ms + extend_ms + TTL`.
    pub(super) fn refresh(&mut self, lessor: &Lessor, id: LeaseId, now_ms: u64, extend_ms: u64) {
        let Some(lease) = lessor.lease(id) else {
            return;
        };
        let ttl_ms = u64::try_from(self.refresh_ttl_secs(lease))
            .unwrap_or(0)
            .saturating_mul(1000);
        let expiry_ms = now_ms.saturating_add(extend_ms).saturating_add(ttl_ms);
        self.expiry_ms.insert(id, expiry_ms);
        self.schedule_expiry_check(id, expiry_ms);
    }

    fn schedule_expiry_check(&mut self, id: LeaseId, at_ms: u64) {
        if let Some(old_ms) = self.expiry_check_ms.insert(id, at_ms) {
            self.expiry_queue.remove(&(old_ms, id));
        }
        self.expiry_queue.insert((at_ms, id));
        assert_eq!(
            self.expiry_queue.len(),
            self.expiry_check_ms.len(),
            "lessor: expiry queue and expiry instants out of step"
        );
    }

    /// Queues a checkpoint of lease `id` one interval from `now_ms` if the
    /// lease outlives that interval (etcd `scheduleCheckpointIfNeeded`).
    pub(super) fn schedule_checkpoint(&mut self, lessor: &Lessor, id: LeaseId, now_ms: u64) {
        let interval_ms = self.config.checkpoint_interval_ms;
        let Some(lease) = lessor.lease(id) else {
            return;
        };
        let remaining_ms = u64::try_from(self.refresh_ttl_secs(lease))
            .unwrap_or(0)
            .saturating_mul(1000);
        if interval_ms > 0 && remaining_ms > interval_ms {
            self.checkpoint_queue
                .insert((now_ms.saturating_add(interval_ms), id));
        }
    }
}
