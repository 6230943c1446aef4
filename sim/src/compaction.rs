//! The compaction client: now and then it compacts the store at a random
//! past revision through a random member (`KV.Compact`), and after each
//! acknowledged compaction checks etcd's behaviour at the boundary through
//! a member that has applied it:
//!
//! - a linearizable read at the revision below the compaction fails with
//!   ErrCompacted (etcd `mvcc/kvstore_txn.go` `rangeKeys`: a revision below
//!   the compacted one is `ErrCompacted`, "mvcc: required revision has
//!   been compacted"); that answer is what shows the member applied it;
//! - a read at the compacted revision itself is served (etcd keeps it);
//! - a watch through that member from the revision below the compaction is
//!   canceled with `compact_revision` at or above the compaction
//!   (etcd `mvcc/watchable_store.go` `chooseAll`, `etcdserver/api/v3rpc/watch.go`
//!   `sendLoop`: `Canceled` when `CompactRevision != 0`) and delivers no
//!   event before that.
//!
//! Compactions ask for increasing revisions only, above every earlier ask
//! whatever its outcome (a lower one than the store's compacted revision
//! is itself ErrCompacted; and an ask that timed out may still apply after
//! a later, lower one was acknowledged, which would then rightly refuse
//! the read at that lower revision).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use keel_server::proto::etcdserverpb::kv_client::KvClient;
use keel_server::proto::etcdserverpb::watch_client::WatchClient;
use keel_server::proto::etcdserverpb::{
    CompactionRequest, RangeRequest, WatchCreateRequest, WatchRequest, watch_request,
};
use madsim::rand::Rng;
use tonic::transport::Channel;

use crate::NodeAddr;
use crate::rpc::{bytes_of, random_member, sleep_ms, within};

/// etcd's ErrCompacted text (etcd `mvcc/kvstore.go`).
pub const ERR_COMPACTED: &str = "mvcc: required revision has been compacted";
/// The key the boundary reads and watches use (a register key).
const PROBE_KEY: &str = "r0";
/// Per-request timeout.
const REQUEST_TIMEOUT_MS: u64 = 1_000;
/// How long the boundary watch may take to be canceled.
const WATCH_WAIT_MS: u64 = 3_000;
/// Compactions ask for a revision at most this far behind the current one.
const COMPACT_BEHIND_MAX: i64 = 50;
/// Most violations the log keeps.
const VIOLATIONS_MAX: usize = 100;

/// What the compaction client did and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionLog {
    /// The highest revision any compaction asked for (answered or not):
    /// no watch may be canceled as compacted above it.
    pub requested_max: i64,
    /// Compactions acknowledged, by revision.
    pub acknowledged: Vec<i64>,
    /// Boundary checks that found etcd's behaviour (read refused, watch
    /// canceled), counted.
    pub boundaries_checked: u64,
    /// What broke etcd's behaviour.
    pub violations: Vec<String>,
}

/// The compaction log as the run shares it.
pub type SharedCompactionLog = Arc<Mutex<CompactionLog>>;

fn lock(log: &SharedCompactionLog) -> std::sync::MutexGuard<'_, CompactionLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

fn violation(log: &SharedCompactionLog, text: String) {
    let mut log = lock(log);
    if log.violations.len() < VIOLATIONS_MAX {
        log.violations.push(text);
    }
}

async fn kv(member: u8) -> Option<KvClient<Channel>> {
    KvClient::connect(NodeAddr::member(member).client_url())
        .await
        .ok()
}

/// A linearizable read of [`PROBE_KEY`] through `member` at `revision`
/// (0: the latest): the answer, or `None` without one in time.
async fn read_at(member: u8, revision: i64) -> Option<Result<i64, tonic::Status>> {
    within(REQUEST_TIMEOUT_MS, async {
        let request = RangeRequest {
            key: bytes_of(PROBE_KEY),
            revision,
            ..RangeRequest::default()
        };
        let answer = kv(member).await?.range(request).await;
        Some(answer.map(|r| r.into_inner().header.map_or(0, |h| h.revision)))
    })
    .await
}

/// Compacts at `revision` through `member`: `Some(true)` acknowledged,
/// `Some(false)` refused, `None` unknown.
async fn compact(member: u8, revision: i64) -> Option<bool> {
    within(REQUEST_TIMEOUT_MS, async {
        let request = CompactionRequest {
            revision,
            physical: false,
        };
        Some(kv(member).await?.compact(request).await.is_ok())
    })
    .await
}

/// Compacts every 1-3 s through random members of `members` until `stop`,
/// checking each acknowledged compaction's boundary.
pub async fn compaction_client(members: u8, log: SharedCompactionLog, stop: Arc<AtomicBool>) {
    // The highest revision asked for so far, acknowledged or not.
    let mut asked = 0i64;
    while !stop.load(Ordering::Relaxed) {
        let pause_ms = madsim::rand::thread_rng().gen_range(1_000..3_000);
        sleep_ms(pause_ms).await;
        let Some(Ok(current)) = read_at(random_member(members), 0).await else {
            continue;
        };
        if current - 1 <= asked {
            continue;
        }
        let lowest = (asked + 1).max(current - COMPACT_BEHIND_MAX);
        let target = madsim::rand::thread_rng().gen_range(lowest..current);
        {
            let mut log = lock(&log);
            log.requested_max = log.requested_max.max(target);
        }
        asked = target;
        if compact(random_member(members), target).await == Some(true) {
            lock(&log).acknowledged.push(target);
            check_boundary(random_member(members), target, &log).await;
        }
    }
}

fn is_compacted(status: &tonic::Status) -> bool {
    status.message().contains(ERR_COMPACTED)
}

/// The checks after a compaction at `target` was acknowledged, through
/// `member`: see the module doc.
async fn check_boundary(member: u8, target: i64, log: &SharedCompactionLog) {
    if target < 2 {
        return;
    }
    match read_at(member, target - 1).await {
        Some(Err(status)) if is_compacted(&status) => {}
        Some(Ok(_)) => {
            return violation(
                log,
                format!(
                    "compaction: m{member} served a read at revision {} after the compaction at {target} was acknowledged",
                    target - 1
                ),
            );
        }
        // No answer, or another error: this member shows nothing.
        _ => return,
    }
    if let Some(Err(status)) = read_at(member, target).await
        && is_compacted(&status)
    {
        violation(
            log,
            format!(
                "compaction: m{member} refused a read at the compacted revision {target} itself: {status}"
            ),
        );
    }
    match watch_from(member, target - 1).await {
        Some(WatchAnswer::Canceled(revision)) if revision >= target => {
            lock(log).boundaries_checked += 1;
        }
        Some(answer) => violation(
            log,
            format!(
                "compaction: m{member} answered a watch from revision {} after compacting at {target} with {answer:?} (expected a cancel with compact_revision >= {target})",
                target - 1
            ),
        ),
        None => {}
    }
}

/// How a watch from a compacted revision was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchAnswer {
    /// Canceled with this `compact_revision` (0: canceled without one).
    Canceled(i64),
    /// Events arrived, the first at this revision.
    Events(i64),
}

/// A watch of [`PROBE_KEY`] from `start_revision` through `member`: its
/// first answer that cancels it or carries events.
async fn watch_from(member: u8, start_revision: i64) -> Option<WatchAnswer> {
    let wait = Duration::from_millis(WATCH_WAIT_MS);
    let work = async {
        let url = NodeAddr::member(member).client_url();
        let mut client = WatchClient::connect(url).await.ok()?;
        let create = WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                WatchCreateRequest {
                    key: bytes_of(PROBE_KEY),
                    start_revision,
                    ..WatchCreateRequest::default()
                },
            )),
        };
        let requests = futures_util::stream::iter([create]).chain(futures_util::stream::pending());
        let mut responses = client.watch(requests).await.ok()?.into_inner();
        loop {
            let response = responses.message().await.ok()??;
            if response.canceled {
                return Some(WatchAnswer::Canceled(response.compact_revision));
            }
            if let Some(event) = response.events.first() {
                let revision = event.kv.as_ref().map_or(0, |kv| kv.mod_revision);
                return Some(WatchAnswer::Events(revision));
            }
        }
    };
    madsim::time::timeout(wait, work).await.ok().flatten()
}
