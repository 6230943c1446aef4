//! Automatic history compaction (`--auto-compaction-mode`,
//! `--auto-compaction-retention`; etcd `etcdserver/api/v3compactor`).
//!
//! - revision mode: every 5 minutes, compact to `current - retention`;
//! - periodic mode: sample the current revision every `retention / 10`
//!   (at least 1 s), keep the last 11 samples, and compact to the newest
//!   sample that is at least `retention` old, so about `retention` of
//!   history stays.
//!
//! Only the leader proposes compactions; [`Compactor`] is the pure schedule,
//! [`run`] the task that drives it through the node's handle.

use std::collections::VecDeque;
use std::time::Duration;

use keel_kernel::apply::{Request, Response};
use keel_kernel::mvcc::CompactionRequest;

use super::NodeHandle;
use crate::config::AutoCompaction;
use crate::replica::Replica;

/// How often revision mode compacts (etcd: 5 minutes).
pub const REVISION_MODE_INTERVAL_MS: u64 = 5 * 60 * 1000;
/// Samples periodic mode keeps.
const SAMPLES_MAX: usize = 11;

/// The compaction schedule of one policy.
#[derive(Debug, Clone)]
pub struct Compactor {
    policy: AutoCompaction,
    samples: VecDeque<(u64, i64)>,
    compacted: i64,
}

impl Compactor {
    /// A schedule for `policy`.
    pub fn new(policy: AutoCompaction) -> Compactor {
        Compactor {
            policy,
            samples: VecDeque::with_capacity(SAMPLES_MAX + 1),
            compacted: 0,
        }
    }

    /// Milliseconds between samples, `None` when compaction is disabled.
    pub fn interval_ms(&self) -> Option<u64> {
        match self.policy {
            AutoCompaction::Disabled => None,
            AutoCompaction::Revision { .. } => Some(REVISION_MODE_INTERVAL_MS),
            AutoCompaction::Periodic { retention } => {
                Some((retention.as_millis() as u64 / 10).max(1000))
            }
        }
    }

    /// Records the current revision at `now_ms`; returns the revision to
    /// compact to, if one is due and above the last compaction.
    pub fn on_sample(&mut self, now_ms: u64, current_revision: i64) -> Option<i64> {
        let target = match self.policy {
            AutoCompaction::Disabled => return None,
            AutoCompaction::Revision {
                retention_revisions,
            } => current_revision.saturating_sub(i64::try_from(retention_revisions).ok()?),
            AutoCompaction::Periodic { retention } => {
                self.samples.push_back((now_ms, current_revision));
                while self.samples.len() > SAMPLES_MAX {
                    self.samples.pop_front();
                }
                let retention_ms = retention.as_millis() as u64;
                self.samples
                    .iter()
                    .rev()
                    .find(|(at_ms, _)| at_ms + retention_ms <= now_ms)
                    .map(|(_, revision)| *revision)?
            }
        };
        (target > self.compacted && target > 0).then_some(target)
    }

    /// Records that history up to `revision` is compacted.
    pub fn compacted(&mut self, revision: i64) {
        self.compacted = self.compacted.max(revision);
    }
}

/// Drives `policy` through `handle` until the member stops.
pub async fn run(handle: NodeHandle, policy: AutoCompaction) {
    let mut compactor = Compactor::new(policy);
    let Some(interval_ms) = compactor.interval_ms() else {
        return;
    };
    loop {
        tokio::time::sleep(Duration::from_millis(interval_ms)).await;
        if handle.shared().commands.is_closed() {
            return;
        }
        let now_ms = handle.shared().now_ms();
        let revision = handle.with_state(|sm| sm.store().current_revision());
        let Some(target) = compactor.on_sample(now_ms, revision) else {
            continue;
        };
        if handle.status().leader_id != handle.member_id() {
            continue;
        }
        let request = Request::Compaction(CompactionRequest {
            revision: target,
            physical: false,
        });
        match handle.propose(request, None).await.map(|r| r.result) {
            Ok(Ok(Response::Compaction(_))) => {
                compactor.compacted(target);
                tracing::info!(revision = target, "auto-compacted history");
            }
            // Compacted already (by a client): nothing below it to do.
            Ok(Err(_)) => compactor.compacted(target),
            Ok(Ok(_)) | Err(_) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn revision_mode_keeps_the_last_n_revisions() {
        let mut c = Compactor::new(AutoCompaction::Revision {
            retention_revisions: 10,
        });
        assert_eq!(c.interval_ms(), Some(REVISION_MODE_INTERVAL_MS));
        assert_eq!(c.on_sample(0, 5), None, "nothing old enough");
        assert_eq!(c.on_sample(1, 25), Some(15));
        c.compacted(15);
        assert_eq!(c.on_sample(2, 25), None, "already compacted there");
        assert_eq!(c.on_sample(3, 30), Some(20));
    }

    #[test]
    fn periodic_mode_compacts_to_the_newest_sample_older_than_retention() {
        let mut c = Compactor::new(AutoCompaction::Periodic {
            retention: Duration::from_secs(100),
        });
        assert_eq!(c.interval_ms(), Some(10_000));
        let mut due = Vec::new();
        for step in 0..=20u64 {
            let now_ms = step * 10_000;
            if let Some(target) = c.on_sample(now_ms, 1 + step as i64 * 7) {
                c.compacted(target);
                due.push((step, target));
            }
        }
        // At step 10 the first sample (revision 1) turns 100 s old, and each
        // later step releases the sample taken 100 s before it.
        assert_eq!(due.first(), Some(&(10, 1)));
        assert_eq!(due.last(), Some(&(20, 71)));
        assert!(c.samples.len() <= SAMPLES_MAX);
    }

    #[test]
    fn disabled_never_compacts() {
        let mut c = Compactor::new(AutoCompaction::Disabled);
        assert_eq!(c.interval_ms(), None);
        assert_eq!(c.on_sample(1 << 40, 1 << 40), None);
    }
}
