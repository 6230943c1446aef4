//! The watch registry (etcd `watchableStore` and `watchStream`): watchers on
//! a key or range, fed with the events of every applied write, with history
//! replay from any uncompacted revision.
//!
//! Flow: the server calls [`WatchRegistry::notify`] with the events of each
//! write, in revision order; [`WatchRegistry::sync`] now and then (etcd does
//! it every 100 ms) to replay history to watchers that are behind; and
//! [`WatchRegistry::poll`] to take a watcher's next response.
//!
//! A watcher is *synced* when it has everything up to the current revision
//! queued, else *unsynced*. Watchers that start in the past begin unsynced.
//! A synced watcher whose pending buffer cannot take a revision's events
//! becomes unsynced and is caught up later from the store's history, so
//! writers never block and no event is dropped. A watcher whose next
//! revision has been compacted gets one response with `canceled` and
//! `compact_revision` and is removed. Events of one revision are always
//! delivered in one response.
//!
//! Watch ids follow etcd's per-stream rules; a server gives each gRPC watch
//! stream its own registry, or maps ids.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use super::kv::{Event, EventType};
use super::store::Store;

/// Watch id (etcd `WatchID`).
pub type WatchId = i64;

/// A request to create a watcher (etcd `WatchCreateRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchCreate {
    /// The key, or the first key of the range.
    pub key: Vec<u8>,
    /// Empty: the key alone; `[0]`: every key `>= key`; else `[key, range_end)`.
    pub range_end: Vec<u8>,
    /// First revision to deliver; 0 = the next write.
    pub start_revision: i64,
    /// Deliver `prev_kv` with each event.
    pub prev_kv: bool,
    /// Filter NOPUT: drop put events.
    pub no_put: bool,
    /// Filter NODELETE: drop delete events.
    pub no_delete: bool,
    /// The id to use; 0 = assign the lowest free id counting up from 0.
    pub watch_id: WatchId,
}

/// One message for a watcher (etcd `WatchResponse` without the header's
/// cluster fields).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchResponse {
    /// The watcher.
    pub watch_id: WatchId,
    /// Header revision, as etcd's watch sets it: the last event's revision
    /// for live events, the store's revision at replay time for replayed
    /// ones (`syncWatchers`' `curRev`), 0 for a compaction cancel.
    pub revision: i64,
    /// Whole revisions of events, oldest first.
    pub events: Vec<Event>,
    /// Set when the watcher was canceled because its next revision was
    /// compacted: the store's compacted revision.
    pub compact_revision: i64,
    /// The watcher is gone; nothing more will come for it.
    pub canceled: bool,
}

/// Bounds of a registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchLimits {
    /// Most watchers at once.
    pub max_watchers: usize,
    /// Events a synced watcher may have queued before it is moved to the
    /// unsynced set (one revision is always accepted into an empty queue).
    pub max_pending_events: usize,
    /// Events one sync step replays to one watcher (whole revisions).
    pub max_sync_events: usize,
}

impl Default for WatchLimits {
    fn default() -> WatchLimits {
        WatchLimits {
            max_watchers: 100_000,
            max_pending_events: 1024,
            max_sync_events: 512,
        }
    }
}

/// Why a watcher was not created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchError {
    /// The registry holds `max_watchers` already.
    TooManyWatchers,
    /// The requested id is in use.
    DuplicateId,
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WatchError::TooManyWatchers => "mvcc: too many watchers",
            WatchError::DuplicateId => "mvcc: duplicate watch ID provided on the WatchStream",
        })
    }
}

impl std::error::Error for WatchError {}

#[derive(Clone, Debug)]
struct Watcher {
    spec: WatchCreate,
    /// First revision not yet queued.
    next_revision: i64,
    synced: bool,
    pending: VecDeque<Event>,
    /// The store's revision at the last replay that queued events: the
    /// header revision of responses carrying replayed events (etcd's
    /// `syncWatchers` sends `curRev`); 0 before any replay. Live events
    /// always have later revisions, so it never raises theirs.
    replayed_at: i64,
    /// Set once the watcher is canceled by compaction.
    compacted: Option<i64>,
}

/// Whether `key` is in the span `start`/`end` (`end` as in a range).
fn span_contains(start: &[u8], end: &[u8], key: &[u8]) -> bool {
    match end {
        [] => key == start,
        [0] => key >= start,
        _ => key >= start && key < end,
    }
}

impl Watcher {
    /// The event as this watcher gets it, or `None` if filtered out.
    fn shape(&self, event: &Event) -> Option<Event> {
        let dropped = match event.event_type {
            EventType::Put => self.spec.no_put,
            EventType::Delete => self.spec.no_delete,
        };
        if dropped {
            return None;
        }
        let mut event = event.clone();
        if !self.spec.prev_kv {
            event.prev_kv = None;
        }
        Some(event)
    }
}

/// The registry of watchers. Deterministic: ids and delivery order depend
/// only on the calls made.
#[derive(Clone, Debug, Default)]
pub struct WatchRegistry {
    limits: WatchLimits,
    watchers: BTreeMap<WatchId, Watcher>,
    /// Single-key watchers by key.
    by_key: BTreeMap<Vec<u8>, BTreeSet<WatchId>>,
    /// Range watchers grouped by `(key, range_end)`, in key order (etcd's
    /// watcher groups): an event is matched against each distinct range
    /// starting at or below its key once.
    ranged: BTreeMap<(Vec<u8>, Vec<u8>), BTreeSet<WatchId>>,
    next_id: WatchId,
}

impl WatchRegistry {
    /// An empty registry with the given bounds.
    pub fn new(limits: WatchLimits) -> WatchRegistry {
        WatchRegistry {
            limits,
            ..WatchRegistry::default()
        }
    }

    /// Number of watchers (including canceled ones not yet polled).
    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    /// True when there are no watchers.
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// Creates a watcher on `store`'s state and returns its id.
    ///
    /// `start_revision` 0 or above the current revision: synced, delivering
    /// from the next write (or from `start_revision`). At or below the
    /// current revision: unsynced, replayed by [`WatchRegistry::sync`].
    /// Below the compacted revision: canceled (its one response reports
    /// the compacted revision).
    ///
    /// Errors: `TooManyWatchers`, `DuplicateId`.
    pub fn create(&mut self, store: &Store, spec: WatchCreate) -> Result<WatchId, WatchError> {
        if self.watchers.len() >= self.limits.max_watchers {
            return Err(WatchError::TooManyWatchers);
        }
        let id = self.pick_id(spec.watch_id)?;
        let current = store.current_revision();
        // The planted bug treats a watcher starting at the current revision
        // as registered after it: that revision's events, already
        // dispatched, never reach it.
        let late = cfg!(feature = "planted-bug-watch-misses-start-revision")
            && spec.start_revision == current;
        let next_revision = if spec.start_revision <= 0 || late {
            current + 1
        } else {
            spec.start_revision
        };
        let compacted =
            (next_revision < store.compact_revision()).then_some(store.compact_revision());
        let watcher = Watcher {
            next_revision,
            synced: next_revision > current,
            pending: VecDeque::new(),
            replayed_at: 0,
            compacted,
            spec: WatchCreate {
                watch_id: id,
                ..spec
            },
        };
        if watcher.spec.range_end.is_empty() {
            self.by_key
                .entry(watcher.spec.key.clone())
                .or_default()
                .insert(id);
        } else {
            let span = (watcher.spec.key.clone(), watcher.spec.range_end.clone());
            self.ranged.entry(span).or_default().insert(id);
        }
        self.watchers.insert(id, watcher);
        Ok(id)
    }

    fn pick_id(&mut self, requested: WatchId) -> Result<WatchId, WatchError> {
        if requested != 0 {
            return match self.watchers.contains_key(&requested) {
                true => Err(WatchError::DuplicateId),
                false => Ok(requested),
            };
        }
        // At most `max_watchers` ids are taken, so this ends within that many steps.
        while self.watchers.contains_key(&self.next_id) {
            self.next_id += 1;
        }
        self.next_id += 1;
        Ok(self.next_id - 1)
    }

    /// Removes a watcher; false if there is none with that id.
    pub fn cancel(&mut self, id: WatchId) -> bool {
        let Some(watcher) = self.watchers.remove(&id) else {
            return false;
        };
        if watcher.spec.range_end.is_empty() {
            if let Some(ids) = self.by_key.get_mut(&watcher.spec.key) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.by_key.remove(&watcher.spec.key);
                }
            }
        } else {
            let span = (watcher.spec.key, watcher.spec.range_end);
            if let Some(ids) = self.ranged.get_mut(&span) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.ranged.remove(&span);
                }
            }
        }
        true
    }

    /// Restarts watcher `id` at `next_revision`, keeping its id: its queued
    /// events are dropped and it is replayed from `store`'s history by
    /// [`WatchRegistry::sync`] (or synced at once when `next_revision` is
    /// above the current revision). A server whose stream missed applied
    /// events uses this to resume each watcher after the last revision it
    /// sent. A `next_revision` below the compacted revision cancels the
    /// watcher as [`WatchRegistry::create`] would. Returns false if there
    /// is no such watcher.
    pub fn rewind(&mut self, store: &Store, id: WatchId, next_revision: i64) -> bool {
        let Some(w) = self.watchers.get_mut(&id) else {
            return false;
        };
        let compacted = store.compact_revision();
        w.pending.clear();
        w.replayed_at = 0;
        w.next_revision = next_revision;
        w.synced = next_revision > store.current_revision();
        if next_revision < compacted {
            w.compacted = Some(compacted);
        }
        true
    }

    /// Whether the watcher has everything up to the current revision queued.
    pub fn is_synced(&self, id: WatchId) -> bool {
        self.watchers
            .get(&id)
            .is_some_and(|w| w.synced && w.compacted.is_none())
    }

    /// Offers the events of one applied write (all of main revision
    /// `revision`, as [`Store`] writes return them) to the synced
    /// watchers. Must be called for every write, in revision order.
    pub fn notify(&mut self, revision: i64, events: &[Event]) {
        debug_assert!(events.iter().all(|e| e.kv.mod_revision == revision));
        let mut batches: BTreeMap<WatchId, Vec<&Event>> = BTreeMap::new();
        for event in events {
            let key: &[u8] = &event.kv.key;
            let single = self.by_key.get(key).into_iter().flatten();
            let ranged = self
                .ranged
                .iter()
                .take_while(|((start, _), _)| start.as_slice() <= key)
                .filter(|((start, end), _)| span_contains(start, end, key))
                .flat_map(|(_, ids)| ids);
            for id in single.chain(ranged) {
                batches.entry(*id).or_default().push(event);
            }
        }
        let max_pending = self.limits.max_pending_events;
        for (id, batch) in batches {
            let Some(w) = self.watchers.get_mut(&id) else {
                continue;
            };
            if !w.synced || w.compacted.is_some() || revision < w.next_revision {
                continue;
            }
            let shaped: Vec<Event> = batch.into_iter().filter_map(|e| w.shape(e)).collect();
            if !w.pending.is_empty() && w.pending.len() + shaped.len() > max_pending {
                // Too far behind: replay this revision from history later.
                w.synced = false;
                continue;
            }
            w.pending.extend(shaped);
            w.next_revision = revision + 1;
        }
    }

    /// Replays history to unsynced watchers: one batch of at most about
    /// `max_sync_events` to each (whole revisions), skipping watchers whose
    /// queue is full. Watchers that reach the present become synced;
    /// watchers whose next revision was compacted are canceled. Returns
    /// how many watchers are still unsynced. Must be given the store whose
    /// writes were offered to [`WatchRegistry::notify`].
    pub fn sync(&mut self, store: &Store) -> usize {
        let max_pending = self.limits.max_pending_events;
        let max_batch = self.limits.max_sync_events;
        let current = store.current_revision();
        let mut unsynced = 0;
        for w in self
            .watchers
            .values_mut()
            .filter(|w| !w.synced && w.compacted.is_none())
        {
            if w.pending.len() >= max_pending {
                unsynced += 1;
                continue;
            }
            let (key, end) = (&w.spec.key, &w.spec.range_end);
            match store.history(key, end, w.next_revision, max_batch) {
                Err(_) => w.compacted = Some(store.compact_revision()),
                Ok(batch) => {
                    let shaped: Vec<Event> =
                        batch.events.iter().filter_map(|e| w.shape(e)).collect();
                    if !shaped.is_empty() {
                        w.replayed_at = current;
                    }
                    w.pending.extend(shaped);
                    w.next_revision = batch.next_revision;
                    w.synced = w.next_revision > current;
                    unsynced += usize::from(!w.synced);
                }
            }
        }
        unsynced
    }

    /// Ids of watchers with a response ready, ascending.
    pub fn ready(&self) -> Vec<WatchId> {
        let ready = |w: &&Watcher| !w.pending.is_empty() || w.compacted.is_some();
        self.watchers
            .values()
            .filter(ready)
            .map(|w| w.spec.watch_id)
            .collect()
    }

    /// Takes the watcher's next response: queued events (whole revisions,
    /// stopping once `max_events` are taken, but never splitting a
    /// revision), or, once the queue is empty, the cancel notice of a
    /// compacted watcher (which removes it). `None` if nothing is ready.
    pub fn poll(&mut self, id: WatchId, max_events: usize) -> Option<WatchResponse> {
        let w = self.watchers.get_mut(&id)?;
        if let Some(first) = w.pending.front() {
            let mut revision = first.kv.mod_revision;
            let mut events = Vec::new();
            while let Some(next) = w.pending.front() {
                if next.kv.mod_revision != revision && events.len() >= max_events {
                    break;
                }
                revision = next.kv.mod_revision;
                events.extend(w.pending.pop_front());
            }
            return Some(WatchResponse {
                watch_id: id,
                revision: revision.max(w.replayed_at),
                events,
                ..WatchResponse::default()
            });
        }
        let compact_revision = w.compacted?;
        self.cancel(id);
        // etcd's compaction notice carries no revision of its own.
        Some(WatchResponse {
            watch_id: id,
            revision: 0,
            compact_revision,
            canceled: true,
            ..WatchResponse::default()
        })
    }
}
