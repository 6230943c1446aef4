//! One gRPC watch stream: its watchers (a kernel [`WatchRegistry`] per
//! stream, so watch ids follow etcd's per-stream rules), fed with the
//! replica's applied events, replaying history from the store, and sending
//! responses in order through a bounded channel.
//!
//! Never blocking writers: the applied-event channel is a bounded
//! broadcast. A stream that falls behind (slow client) gets
//! `RecvError::Lagged`; its synced watchers are then rewound, keeping their
//! ids, to just after the last revision they were sent, and caught up from
//! the store's history like any watcher that starts in the past. Watchers whose resume point
//! was compacted meanwhile are canceled with `compact_revision`, as etcd's.

use std::collections::BTreeMap;
use std::time::Duration;

use keel_kernel::apply::ApplyError;
use keel_kernel::auth::{AuthError, AuthInfo};
use keel_kernel::mvcc::{WatchCreate, WatchId, WatchLimits, WatchRegistry, WatchResponse};
use prost::Message;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::ApiLimits;
use super::convert;
use super::header::from_status;
use super::status::watch_refusal;
use super::watch_gauges::StreamCount;
use crate::proto::etcdserverpb as pb;
use crate::replica::{AppliedEvents, Replica};

/// etcd's watch id for responses not about one watcher (`clientv3.InvalidWatchID`).
pub const INVALID_WATCH_ID: i64 = -1;

/// What the stream remembers of a watcher besides the registry's state.
#[derive(Clone, Debug)]
struct WatcherMeta {
    /// Send empty progress responses periodically.
    progress_notify: bool,
    /// Split responses larger than the request limit.
    fragment: bool,
    /// The first revision this watcher may ever be sent: a restart never
    /// goes below it, nor below the revision after the last one sent.
    resume_from: i64,
}

/// The state of one watch stream (runs as one task).
pub struct WatchStream<B> {
    replica: B,
    limits: ApiLimits,
    /// The caller, or why every watch create is refused (a bad token).
    auth: Result<AuthInfo, AuthError>,
    registry: WatchRegistry,
    watchers: BTreeMap<WatchId, WatcherMeta>,
    /// Every revision up to this one has been offered to the registry
    /// (or is in the store's history for watchers restarted from it).
    known_revision: i64,
    /// A RequestProgress waits until every watcher is synced.
    progress_requested: bool,
    /// Watchers still behind after the last history replay step; while
    /// any are, replay continues without waiting for the sync tick.
    unsynced_watchers: usize,
    sender: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    /// This stream and its watchers in the member's watch gauges.
    count: StreamCount,
}

/// The stream ended: the client went away or the node stopped.
struct Closed;

impl<B: Replica> WatchStream<B> {
    /// A stream for the caller `auth` (an error refuses every create, as
    /// etcd does for a bad token), sending its responses to `sender`.
    pub fn new(
        replica: B,
        limits: ApiLimits,
        auth: Result<AuthInfo, AuthError>,
        sender: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    ) -> WatchStream<B> {
        let registry = WatchRegistry::new(WatchLimits {
            max_watchers: limits.watch_max_watchers_per_stream,
            max_pending_events: limits.watch_max_pending_events,
            max_sync_events: limits.watch_max_events_per_response,
        });
        let count = replica.watch_gauges().open_stream();
        WatchStream {
            replica,
            limits,
            auth,
            registry,
            watchers: BTreeMap::new(),
            known_revision: 0,
            progress_requested: false,
            unsynced_watchers: 0,
            sender,
            count,
        }
    }

    /// Serves the stream until the client goes away (a closed request
    /// side alone does not end it).
    pub async fn run(mut self, mut requests: Streaming<pb::WatchRequest>) {
        // Subscribe before reading the revision: every later write comes
        // through `events`, every earlier one is in the store.
        let mut events = self.replica.subscribe_events();
        self.known_revision = self
            .replica
            .with_state(|state| state.store().current_revision());
        let mut sync_tick = tokio::time::interval(millis(self.limits.watch_sync_interval_ms));
        let mut progress_tick =
            tokio::time::interval(millis(self.limits.watch_progress_notify_interval_ms));
        progress_tick.tick().await; // the first tick is immediate
        let mut requests_open = true;
        let client_gone = self.sender.clone();
        loop {
            if self.flush().await.is_err() {
                return;
            }
            let step = crate::replayable_select::replayable_select! {
                request = requests.message(), if requests_open => match request {
                    Ok(Some(request)) => self.handle(request).await,
                    // A client that closes its sending side still gets
                    // its watchers' events, as from etcd.
                    Ok(None) => {
                        requests_open = false;
                        Ok(())
                    }
                    Err(_) => Err(Closed),
                },
                _ = client_gone.closed() => Err(Closed),
                applied = events.recv() => self.on_applied(applied),
                _ = sync_tick.tick() => {
                    self.sync();
                    Ok(())
                }
                _ = std::future::ready(()), if self.unsynced_watchers > 0 => {
                    self.sync();
                    Ok(())
                }
                _ = progress_tick.tick() => self.progress_notify().await,
            };
            if step.is_err() {
                return;
            }
        }
    }

    async fn handle(&mut self, request: pb::WatchRequest) -> Result<(), Closed> {
        use pb::watch_request::RequestUnion;
        match request.request_union {
            Some(RequestUnion::CreateRequest(create)) => self.create(create).await,
            Some(RequestUnion::CancelRequest(cancel)) => self.cancel(cancel.watch_id).await,
            Some(RequestUnion::ProgressRequest(_)) => {
                self.progress_requested = true;
                self.answer_progress_request().await
            }
            None => Ok(()),
        }
    }

    /// Creates a watcher; answers `created` (or a created-and-canceled
    /// response with the reason, as etcd 3.5 does for refused creates).
    async fn create(&mut self, create: pb::WatchCreateRequest) -> Result<(), Closed> {
        use pb::watch_create_request::FilterType;
        let key = if create.key.is_empty() {
            vec![0] // etcd: the empty key means the smallest key
        } else {
            create.key.to_vec()
        };
        let spec = WatchCreate {
            key,
            range_end: create.range_end.to_vec(),
            start_revision: create.start_revision,
            prev_kv: create.prev_kv,
            no_put: create.filters.contains(&(FilterType::Noput as i32)),
            no_delete: create.filters.contains(&(FilterType::Nodelete as i32)),
            watch_id: create.watch_id,
        };
        let registry = &mut self.registry;
        let auth = &self.auth;
        let created = self.replica.with_state(|state| {
            let auth = auth.as_ref().map_err(|err| watch_refusal(*err))?;
            state
                .check_watch(auth, &spec.key, &spec.range_end)
                .map_err(|err| match err {
                    ApplyError::Auth(err) => watch_refusal(err),
                    other => other.to_string(),
                })?;
            let store = state.store();
            let id = registry
                .create(store, spec.clone())
                .map_err(|err| err.to_string())?;
            Ok::<_, String>((id, store.current_revision()))
        });
        let (id, revision) = match created {
            Ok(created) => created,
            Err(reason) => return self.send_refused(reason).await,
        };
        let resume_from = if spec.start_revision > 0 {
            spec.start_revision
        } else {
            revision + 1
        };
        let meta = WatcherMeta {
            progress_notify: create.progress_notify,
            fragment: create.fragment,
            resume_from,
        };
        self.watchers.insert(id, meta);
        self.count.set_watchers(self.watchers.len());
        self.send(pb::WatchResponse {
            header: Some(self.header(revision)),
            watch_id: id,
            created: true,
            ..pb::WatchResponse::default()
        })
        .await?;
        if !self.registry.is_synced(id) {
            self.sync();
        }
        Ok(())
    }

    async fn send_refused(&mut self, reason: String) -> Result<(), Closed> {
        let revision = self.current_revision();
        self.send(pb::WatchResponse {
            header: Some(self.header(revision)),
            watch_id: INVALID_WATCH_ID,
            created: true,
            canceled: true,
            cancel_reason: reason,
            ..pb::WatchResponse::default()
        })
        .await
    }

    async fn cancel(&mut self, id: WatchId) -> Result<(), Closed> {
        if !self.registry.cancel(id) {
            return Ok(());
        }
        self.watchers.remove(&id);
        self.count.set_watchers(self.watchers.len());
        let revision = self.current_revision();
        self.send(pb::WatchResponse {
            header: Some(self.header(revision)),
            watch_id: id,
            canceled: true,
            ..pb::WatchResponse::default()
        })
        .await
    }

    /// Offers applied events to the registry, one revision at a time.
    fn on_applied(&mut self, applied: Result<AppliedEvents, RecvError>) -> Result<(), Closed> {
        match applied {
            Ok(applied) if applied.restored => {
                self.known_revision = self.known_revision.max(applied.revision);
                self.restart_synced();
                Ok(())
            }
            Ok(applied) => {
                let mut events = applied.events.as_slice();
                while let Some(first) = events.first() {
                    let revision = first.kv.mod_revision;
                    let same = events
                        .iter()
                        .take_while(|e| e.kv.mod_revision == revision)
                        .count();
                    self.registry.notify(revision, &events[..same]);
                    events = &events[same..];
                }
                self.known_revision = self.known_revision.max(applied.revision);
                Ok(())
            }
            Err(RecvError::Lagged(_)) => {
                self.restart_synced();
                Ok(())
            }
            Err(RecvError::Closed) => Err(Closed),
        }
    }

    /// After missing applied events, or a state replaced by a leader's
    /// snapshot: rewind every synced watcher to the revision after the last
    /// one it was sent (keeping its id); the registry replays the gap from
    /// history (or cancels a watcher whose gap was compacted). Unsynced
    /// watchers replay from history already.
    fn restart_synced(&mut self) {
        let registry = &mut self.registry;
        let watchers = &self.watchers;
        self.replica.with_state(|state| {
            for (id, meta) in watchers {
                if registry.is_synced(*id) {
                    registry.rewind(state.store(), *id, meta.resume_from);
                }
            }
        });
        self.sync();
    }

    /// Replays history to watchers that are behind (bounded per call).
    fn sync(&mut self) {
        let registry = &mut self.registry;
        self.unsynced_watchers = self
            .replica
            .with_state(|state| registry.sync(state.store()));
    }

    /// Sends every ready response, whole revisions each, fragmenting where
    /// the watcher asked for it.
    async fn flush(&mut self) -> Result<(), Closed> {
        let max_events = self.limits.watch_max_events_per_response;
        for id in self.registry.ready() {
            while let Some(response) = self.registry.poll(id, max_events) {
                self.deliver(response).await?;
            }
        }
        self.answer_progress_request().await
    }

    async fn deliver(&mut self, response: WatchResponse) -> Result<(), Closed> {
        let fragment = match self.watchers.get_mut(&response.watch_id) {
            Some(meta) => {
                if let Some(last) = response.events.last() {
                    meta.resume_from = meta.resume_from.max(last.kv.mod_revision + 1);
                }
                meta.fragment
            }
            None => false,
        };
        if response.canceled {
            self.watchers.remove(&response.watch_id);
            self.count.set_watchers(self.watchers.len());
        }
        let wire = pb::WatchResponse {
            header: Some(self.header(response.revision)),
            watch_id: response.watch_id,
            created: false,
            canceled: response.canceled,
            compact_revision: response.compact_revision,
            cancel_reason: String::new(),
            fragment: false,
            events: response.events.into_iter().map(convert::event).collect(),
        };
        if fragment {
            for part in fragments(wire, self.limits.max_request_bytes()) {
                self.send(part).await?;
            }
            Ok(())
        } else {
            self.send(wire).await
        }
    }

    /// Periodic progress: an empty response with the stream's known
    /// revision to each synced, idle watcher that asked for it.
    async fn progress_notify(&mut self) -> Result<(), Closed> {
        let ids: Vec<WatchId> = self
            .watchers
            .iter()
            .filter(|(id, meta)| meta.progress_notify && self.registry.is_synced(**id))
            .map(|(id, _)| *id)
            .collect();
        let header = self.header(self.known_revision);
        for id in ids {
            self.send(pb::WatchResponse {
                header: Some(header),
                watch_id: id,
                ..pb::WatchResponse::default()
            })
            .await?;
        }
        Ok(())
    }

    /// Answers a pending RequestProgress once every watcher is synced
    /// (etcd 3.5: one response with watch id -1).
    async fn answer_progress_request(&mut self) -> Result<(), Closed> {
        if !self.progress_requested {
            return Ok(());
        }
        let all_synced = self.watchers.keys().all(|id| self.registry.is_synced(*id));
        if !all_synced || !self.registry.ready().is_empty() {
            return Ok(());
        }
        self.progress_requested = false;
        let header = self.header(self.known_revision);
        self.send(pb::WatchResponse {
            header: Some(header),
            watch_id: INVALID_WATCH_ID,
            ..pb::WatchResponse::default()
        })
        .await
    }

    async fn send(&self, response: pb::WatchResponse) -> Result<(), Closed> {
        self.sender.send(Ok(response)).await.map_err(|_| Closed)
    }

    fn header(&self, revision: i64) -> pb::ResponseHeader {
        from_status(&self.replica.status(), revision)
    }

    fn current_revision(&self) -> i64 {
        self.replica
            .with_state(|state| state.store().current_revision())
    }
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms.max(1))
}

/// Splits a response whose encoding exceeds `max_bytes` into parts of at
/// least one event each, every part but the last marked `fragment` (etcd's
/// `sendFragments`). A response within the limit is returned whole.
pub fn fragments(response: pb::WatchResponse, max_bytes: usize) -> Vec<pb::WatchResponse> {
    if response.encoded_len() <= max_bytes || response.events.len() < 2 {
        return vec![response];
    }
    let empty = pb::WatchResponse {
        events: Vec::new(),
        ..response.clone()
    };
    let base_bytes = empty.encoded_len();
    let mut parts = Vec::new();
    let mut current = empty.clone();
    let mut current_bytes = base_bytes;
    for event in response.events {
        let event_bytes = event.encoded_len() + 8;
        if !current.events.is_empty() && current_bytes + event_bytes > max_bytes {
            let next = empty.clone();
            parts.push(std::mem::replace(&mut current, next));
            current_bytes = base_bytes;
        }
        current_bytes += event_bytes;
        current.events.push(event);
    }
    parts.push(current);
    let last = parts.len() - 1;
    for part in &mut parts[..last] {
        part.fragment = true;
    }
    parts
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::mvccpb;
    use bytes::Bytes;

    fn event(value_bytes: usize) -> mvccpb::Event {
        mvccpb::Event {
            r#type: 0,
            kv: Some(mvccpb::KeyValue {
                key: Bytes::from_static(b"k"),
                value: Bytes::from(vec![7u8; value_bytes]),
                ..mvccpb::KeyValue::default()
            }),
            prev_kv: None,
        }
    }

    #[test]
    fn small_responses_are_not_fragmented() {
        let response = pb::WatchResponse {
            events: vec![event(10), event(10)],
            ..pb::WatchResponse::default()
        };
        let parts = fragments(response.clone(), 1024);
        assert_eq!(parts, vec![response]);
    }

    #[test]
    fn large_responses_split_with_fragment_flags() {
        let response = pb::WatchResponse {
            watch_id: 3,
            events: (0..10).map(|_| event(100)).collect(),
            ..pb::WatchResponse::default()
        };
        let parts = fragments(response, 350);
        assert!(parts.len() > 1);
        let total: usize = parts.iter().map(|p| p.events.len()).sum();
        assert_eq!(total, 10);
        assert!(parts[..parts.len() - 1].iter().all(|p| p.fragment));
        assert!(!parts[parts.len() - 1].fragment);
        assert!(parts.iter().all(|p| p.watch_id == 3));
        assert!(parts.iter().all(|p| p.encoded_len() <= 350));
    }
}
