//! Watchers: each watches one register key from revision 1 through a
//! random member, and when its stream breaks resumes from the revision
//! after its last event through another member (etcd's resumable
//! watches), recording every event for `keel-jepsen`'s watch checks.
//!
//! The compaction client compacts now and then, so a resume can ask for a
//! compacted revision: etcd then cancels the watch with `compact_revision`
//! set, and a client that wants to go on resumes from that revision,
//! knowing it missed what lies before. A watcher does so and starts a new
//! segment of its log there; each segment is checked on its own (events
//! between two segments were compacted away, not missed), and every such
//! cancel is recorded for [`WatcherLog::compaction_violations`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use keel_jepsen::{WatchEvent, WatchEventKind, WatchLog};
use keel_server::proto::etcdserverpb::watch_client::WatchClient;
use keel_server::proto::etcdserverpb::{WatchCreateRequest, WatchRequest, watch_request};
use keel_server::proto::mvccpb::{Event, event::EventType};
use madsim::rand::Rng;

use crate::NodeAddr;

/// Most events one watcher records; past it the watcher stops.
pub const WATCH_EVENTS_MAX: usize = 20_000;

/// How long a watcher waits for its next response before it resumes
/// through another member (a partitioned member's stream goes silent).
pub const WATCH_SILENCE_MS: u64 = 3_000;

/// A watch canceled because its start revision was compacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactedCancel {
    /// The revision the watch asked to start from.
    pub start_revision: i64,
    /// The `compact_revision` the cancel carried.
    pub compact_revision: i64,
}

/// What one watcher received: one log segment per stretch of contiguous
/// history (a new one after each compacted cancel), and those cancels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherLog {
    /// The segments, oldest first; never empty.
    pub segments: Vec<WatchLog>,
    /// The compacted cancels, in order.
    pub compacted: Vec<CompactedCancel>,
}

impl WatcherLog {
    /// Events received, over every segment.
    pub fn events(&self) -> usize {
        self.segments.iter().map(|s| s.events.len()).sum()
    }

    /// Compacted cancels that break etcd's rule (etcd `mvcc/watchable_store.go`,
    /// `chooseAll`: a watcher whose next revision is below the compacted
    /// revision is canceled with that revision): the cancel's
    /// `compact_revision` must be above the requested start revision and at
    /// most `compacted_max`, the highest revision any client asked to
    /// compact at.
    pub fn compaction_violations(&self, compacted_max: i64) -> Vec<String> {
        let watcher = self.segments.first().map_or(0, |s| s.watcher);
        self.compacted
            .iter()
            .filter(|c| c.compact_revision <= c.start_revision || c.compact_revision > compacted_max)
            .map(|c| {
                format!(
                    "watcher {watcher}: a watch from revision {} was canceled as compacted at {} (highest compaction asked: {compacted_max})",
                    c.start_revision, c.compact_revision
                )
            })
            .collect()
    }
}

/// A watcher's log as the run shares it.
pub type SharedWatchLog = Arc<Mutex<WatcherLog>>;

fn segment(watcher: u64, key: &str, start_revision: i64) -> WatchLog {
    WatchLog {
        watcher,
        key: key.into(),
        range_end: String::new(),
        start_revision,
        events: Vec::new(),
    }
}

/// A new, empty log for watcher `watcher` of `key` from revision 1.
pub fn new_log(watcher: u64, key: &str) -> SharedWatchLog {
    Arc::new(Mutex::new(WatcherLog {
        segments: vec![segment(watcher, key, 1)],
        compacted: Vec::new(),
    }))
}

/// Most compacted cancels (segments) one watcher records; past it the
/// watcher stops.
pub const COMPACTED_CANCELS_MAX: usize = 1_000;

/// Watches until `stop`, through `members` members, appending to `log`.
pub async fn watch(members: u8, log: SharedWatchLog, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let member = madsim::rand::thread_rng().gen_range(0..members);
        // Errors and silence both end in a resume through another member.
        let _ = watch_through(member, &log, &stop).await;
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
}

fn lock(log: &SharedWatchLog) -> std::sync::MutexGuard<'_, WatcherLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One watch stream through `member`, from the revision after the last
/// recorded event; returns when it breaks, goes silent, or `stop`.
async fn watch_through(member: u8, log: &SharedWatchLog, stop: &AtomicBool) -> Option<()> {
    let (key, from) = {
        let watcher = lock(log);
        let log = watcher.segments.last()?;
        let last = log
            .events
            .last()
            .map_or(log.start_revision - 1, |e| e.revision);
        (log.key.clone(), last + 1)
    };
    let silence = Duration::from_millis(WATCH_SILENCE_MS);
    let url = NodeAddr::member(member).client_url();
    let mut client = madsim::time::timeout(silence, WatchClient::connect(url))
        .await
        .ok()?
        .ok()?;
    let create = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: Bytes::from(key.clone()),
                start_revision: from,
                ..WatchCreateRequest::default()
            },
        )),
    };
    // The request stream stays open: closing it would end the watch.
    let requests = futures_util::stream::iter([create]).chain(futures_util::stream::pending());
    let mut responses = madsim::time::timeout(silence, client.watch(requests))
        .await
        .ok()?
        .ok()?
        .into_inner();
    while !stop.load(Ordering::Relaxed) {
        let response = madsim::time::timeout(silence, responses.message())
            .await
            .ok()?
            .ok()??;
        let mut watcher = lock(log);
        if response.canceled {
            if response.compact_revision > 0 && watcher.compacted.len() < COMPACTED_CANCELS_MAX {
                resume_after_compaction(&mut watcher, from, response.compact_revision);
            }
            return None;
        }
        let events = watcher.events();
        let log = watcher.segments.last_mut()?;
        for event in &response.events {
            if events + log.events.len() >= WATCH_EVENTS_MAX {
                return None;
            }
            log.events.push(convert(event));
        }
    }
    Some(())
}

/// Records a compacted cancel of a watch from `from` and starts a new
/// segment at `compact_revision` (where etcd's clients resume).
fn resume_after_compaction(watcher: &mut WatcherLog, from: i64, compact_revision: i64) {
    watcher.compacted.push(CompactedCancel {
        start_revision: from,
        compact_revision,
    });
    let Some(last) = watcher.segments.last() else {
        return;
    };
    let next = segment(last.watcher, &last.key.clone(), compact_revision.max(from));
    watcher.segments.push(next);
}

/// A watch event as the checker sees it; values the workload never
/// writes read as `u64::MAX`.
fn convert(event: &Event) -> WatchEvent {
    let kv = event.kv.clone().unwrap_or_default();
    let key = String::from_utf8_lossy(&kv.key).into_owned();
    let kind = if event.r#type == EventType::Delete as i32 {
        WatchEventKind::Delete
    } else {
        let value = std::str::from_utf8(&kv.value)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(u64::MAX);
        WatchEventKind::Put(value)
    };
    WatchEvent {
        revision: kv.mod_revision,
        key,
        kind,
    }
}
