//! Watchers: each watches one register key from revision 1 through a
//! random member, and when its stream breaks resumes from the revision
//! after its last event through another member (etcd's resumable
//! watches), recording every event for `keel-jepsen`'s watch checks.

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

/// A watcher's log as the run shares it.
pub type SharedWatchLog = Arc<Mutex<WatchLog>>;

/// A new, empty log for watcher `watcher` of `key` from revision 1.
pub fn new_log(watcher: u64, key: &str) -> SharedWatchLog {
    Arc::new(Mutex::new(WatchLog {
        watcher,
        key: key.into(),
        range_end: String::new(),
        start_revision: 1,
        events: Vec::new(),
    }))
}

/// Watches until `stop`, through `members` members, appending to `log`.
pub async fn watch(members: u8, log: SharedWatchLog, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let member = madsim::rand::thread_rng().gen_range(0..members);
        // Errors and silence both end in a resume through another member.
        let _ = watch_through(member, &log, &stop).await;
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
}

fn lock(log: &SharedWatchLog) -> std::sync::MutexGuard<'_, WatchLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One watch stream through `member`, from the revision after the last
/// recorded event; returns when it breaks, goes silent, or `stop`.
async fn watch_through(member: u8, log: &SharedWatchLog, stop: &AtomicBool) -> Option<()> {
    let (key, from) = {
        let log = lock(log);
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
        if response.canceled {
            return None;
        }
        let mut log = lock(log);
        for event in &response.events {
            if log.events.len() >= WATCH_EVENTS_MAX {
                return None;
            }
            log.events.push(convert(event));
        }
    }
    Some(())
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
