//! Seeded random interleavings of watch streams against the applied
//! history: etcd's watch guarantees (ordered, unique, atomic, reliable)
//! for every watcher, whatever the order of writes, broadcasts, creates,
//! cancels and compactions.
//!
//! Each seed starts the Watch service over loopback gRPC on a
//! [`TestReplica`] whose applied events are broadcast only when the test
//! releases them, so the state is often ahead of the events offered to
//! the streams, as in the node driver between apply and broadcast; the
//! small event channel makes streams lag and restart from history.
//! Writes (puts, deletes, two-key txns) go straight to the replica and
//! their events form the history; watchers (a key, a range or a prefix,
//! from now or from a past revision, with or without `prev_kv`) are
//! created and canceled through the streams.
//!
//! At the end every event is released and one txn writes every key; each
//! watcher must then have received exactly the history of its span from
//! its first revision (start revision, or the creation header's revision
//! plus one) in responses that never split or repeat a revision, unless it
//! was canceled: then what it received is a prefix of that, and a
//! compaction cancel reports a revision above the next one it was owed.
//!
//! `KEEL_WATCH_SEED=N` replays one seed; `KEEL_WATCH_SEEDS=N` runs seeds
//! `0..N` (default [`SEEDS`]).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use keel_kernel::apply::Request;
use keel_kernel::mvcc::{
    CompactionRequest, DeleteRangeRequest, Event, EventType, PutRequest, RequestOp, TxnRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::ApiLimits;
use super::test_replica::TestReplica;
use super::tests::start;
use crate::proto::etcdserverpb as pb;
use crate::replica::Replica;
use pb::watch_request::RequestUnion;

/// Seeds run by default.
const SEEDS: u64 = 40;
/// Random steps per seed.
const STEPS: usize = 70;
/// Watch streams per seed (watchers are spread over them).
const STREAMS: usize = 3;
/// Keys written; watchers cover one key, a range or all of them.
const KEYS: [&str; 4] = ["k/a", "k/b", "k/c", "k/d"];
/// Applied entries the event channel holds before a stream lags.
const EVENT_CAPACITY: usize = 4;
/// Bound on waiting for a stream's answer or for the final deliveries.
const WAIT: Duration = Duration::from_secs(10);
/// Responses buffered per stream between its reader task and the test.
const RESPONSES_MAX: usize = 100_000;

/// Limits small enough that watchers go unsynced, responses are cut at a
/// few events, and stream buffers fill.
fn limits() -> ApiLimits {
    ApiLimits {
        watch_sync_interval_ms: 5,
        watch_max_pending_events: 3,
        watch_max_events_per_response: 2,
        stream_buffer_responses: 2,
        ..ApiLimits::default()
    }
}

/// One gRPC watch stream: its request sender and the responses read so far.
struct WatchStreamClient {
    requests: mpsc::Sender<pb::WatchRequest>,
    responses: mpsc::Receiver<pb::WatchResponse>,
}

/// What the test knows of one watcher.
#[derive(Debug)]
struct Tracked {
    stream: usize,
    watch_id: i64,
    key: Vec<u8>,
    range_end: Vec<u8>,
    prev_kv: bool,
    /// First revision it is owed.
    from_revision: i64,
    /// Responses with events, each with the store's compacted revision
    /// when it was read.
    responses: Vec<(pb::WatchResponse, i64)>,
    cancel_sent: bool,
    /// The `canceled` response, once received.
    canceled: Option<pb::WatchResponse>,
}

impl Tracked {
    fn last_revision(&self) -> i64 {
        self.responses
            .iter()
            .flat_map(|(r, _)| &r.events)
            .filter_map(|e| e.kv.as_ref())
            .map(|kv| kv.mod_revision)
            .max()
            .unwrap_or(0)
    }

    fn contains(&self, key: &[u8]) -> bool {
        match self.range_end.as_slice() {
            [] => key == self.key.as_slice(),
            [0] => key >= self.key.as_slice(),
            end => key >= self.key.as_slice() && key < end,
        }
    }
}

/// One seed's world.
struct World {
    seed: u64,
    rng: StdRng,
    replica: TestReplica,
    streams: Vec<WatchStreamClient>,
    tracked: Vec<Tracked>,
    by_id: BTreeMap<(usize, i64), usize>,
    history: Vec<Event>,
    value: u64,
}

/// Opens a watch stream whose responses a reader task forwards.
///
/// The call returns with the first response, so it is spawned; the first
/// create request is what makes that response come.
fn open_stream(channel: &Channel) -> WatchStreamClient {
    let (requests, request_rx) = mpsc::channel(64);
    let (response_tx, responses) = mpsc::channel(RESPONSES_MAX);
    let mut client = pb::watch_client::WatchClient::new(channel.clone());
    tokio::spawn(async move {
        let Ok(call) = client.watch(ReceiverStream::new(request_rx)).await else {
            return;
        };
        let mut stream = call.into_inner();
        while let Ok(Some(response)) = stream.message().await {
            if response_tx.send(response).await.is_err() {
                return;
            }
        }
    });
    WatchStreamClient {
        requests,
        responses,
    }
}

impl World {
    async fn new(seed: u64) -> World {
        let replica = TestReplica::with_deferred_events(EVENT_CAPACITY);
        let channel = start(replica.clone(), limits()).await;
        World {
            seed,
            rng: StdRng::seed_from_u64(seed),
            replica,
            streams: (0..STREAMS).map(|_| open_stream(&channel)).collect(),
            tracked: Vec::new(),
            by_id: BTreeMap::new(),
            history: Vec::new(),
            value: 0,
        }
    }

    fn replay(&self) -> String {
        format!(
            "seed {}; replay: KEEL_WATCH_SEED={} cargo test -p keel-server --lib api::watch_random",
            self.seed, self.seed
        )
    }

    async fn write(&mut self, request: Request) {
        let applied = self.replica.propose(request, None).await.unwrap();
        assert!(applied.result.is_ok(), "{}: {:?}", self.replay(), applied);
        self.history.extend(applied.events);
    }

    fn put_op(&mut self, key: &str) -> PutRequest {
        self.value += 1;
        PutRequest {
            key: key.as_bytes().to_vec(),
            value: self.value.to_be_bytes().to_vec(),
            ..PutRequest::default()
        }
    }

    fn random_key(&mut self) -> &'static str {
        KEYS[self.rng.random_range(0..KEYS.len())]
    }

    async fn step(&mut self) {
        match self.rng.random_range(0..100) {
            0..30 => {
                let key = self.random_key();
                let put = self.put_op(key);
                self.write(Request::Put(put)).await;
            }
            30..36 => {
                let key = self.random_key().as_bytes().to_vec();
                let delete = DeleteRangeRequest {
                    key,
                    range_end: Vec::new(),
                    prev_kv: false,
                };
                self.write(Request::DeleteRange(delete)).await;
            }
            36..44 => {
                // Two different keys: etcd refuses a txn that puts one key twice.
                let first = self.rng.random_range(0..KEYS.len());
                let second = (first + self.rng.random_range(1..KEYS.len())) % KEYS.len();
                let (first, second) = (KEYS[first], KEYS[second]);
                let success = vec![
                    RequestOp::Put(self.put_op(first)),
                    RequestOp::Put(self.put_op(second)),
                ];
                let txn = TxnRequest {
                    success,
                    ..TxnRequest::default()
                };
                self.write(Request::Txn(txn)).await;
            }
            44..62 => {
                let count = self.rng.random_range(1..=2 * EVENT_CAPACITY);
                self.replica.release_events(count);
            }
            62..78 => self.create().await,
            78..84 => self.cancel().await,
            84..88 => self.compact().await,
            _ => tokio::time::sleep(Duration::from_millis(self.rng.random_range(0..3))).await,
        }
        self.pump();
    }

    fn current_revision(&self) -> i64 {
        self.replica
            .with_state(|state| state.store().current_revision())
    }

    fn compact_revision(&self) -> i64 {
        self.replica
            .with_state(|state| state.store().compact_revision())
    }

    async fn compact(&mut self) {
        let (current, compacted) = (self.current_revision(), self.compact_revision());
        if current <= compacted + 1 {
            return;
        }
        let revision = self.rng.random_range(compacted + 1..current);
        let compaction = CompactionRequest {
            revision,
            physical: false,
        };
        self.write(Request::Compaction(compaction)).await;
    }

    /// A key, a two-key range or the whole prefix.
    fn random_span(&mut self) -> (Vec<u8>, Vec<u8>) {
        let key = self.random_key().as_bytes().to_vec();
        match self.rng.random_range(0..3) {
            0 => (key, Vec::new()),
            1 => {
                let mut end = key.clone();
                if let Some(last) = end.last_mut() {
                    *last += 2;
                }
                (key, end)
            }
            _ => (b"k/".to_vec(), b"k0".to_vec()),
        }
    }

    async fn create(&mut self) {
        let stream = self.rng.random_range(0..STREAMS);
        let (key, range_end) = self.random_span();
        let prev_kv = self.rng.random_bool(0.5);
        let current = self.current_revision();
        let start_revision = match self.rng.random_bool(0.6) {
            true => 0,
            false => self.rng.random_range(1..=current + 1),
        };
        let create = pb::WatchCreateRequest {
            key: Bytes::from(key.clone()),
            range_end: Bytes::from(range_end.clone()),
            start_revision,
            prev_kv,
            ..pb::WatchCreateRequest::default()
        };
        let request = RequestUnion::CreateRequest(create);
        self.send(stream, request).await;
        let created = self.await_created(stream).await;
        let from_revision = match start_revision {
            0 => created.header.map_or(0, |h| h.revision) + 1,
            revision => revision,
        };
        let index = self.tracked.len();
        self.by_id.insert((stream, created.watch_id), index);
        self.tracked.push(Tracked {
            stream,
            watch_id: created.watch_id,
            key,
            range_end,
            prev_kv,
            from_revision,
            responses: Vec::new(),
            cancel_sent: false,
            canceled: None,
        });
    }

    async fn cancel(&mut self) {
        let live: Vec<usize> = (0..self.tracked.len())
            .filter(|i| !self.tracked[*i].cancel_sent && self.tracked[*i].canceled.is_none())
            .collect();
        if live.is_empty() {
            return;
        }
        let index = live[self.rng.random_range(0..live.len())];
        let (stream, watch_id) = (self.tracked[index].stream, self.tracked[index].watch_id);
        self.tracked[index].cancel_sent = true;
        let cancel = pb::WatchCancelRequest { watch_id };
        self.send(stream, RequestUnion::CancelRequest(cancel)).await;
    }

    async fn send(&mut self, stream: usize, request: RequestUnion) {
        let request = pb::WatchRequest {
            request_union: Some(request),
        };
        self.streams[stream].requests.send(request).await.unwrap();
    }

    /// Reads `stream` until a `created` response, recording the others.
    async fn await_created(&mut self, stream: usize) -> pb::WatchResponse {
        loop {
            let next = tokio::time::timeout(WAIT, self.streams[stream].responses.recv()).await;
            let Ok(Some(response)) = next else {
                panic!("{}: no created response on stream {stream}", self.replay());
            };
            if response.created {
                assert!(
                    !response.canceled,
                    "{}: refused: {response:?}",
                    self.replay()
                );
                return response;
            }
            self.record(stream, response);
        }
    }

    /// Records every response already received.
    fn pump(&mut self) {
        for stream in 0..STREAMS {
            while let Ok(response) = self.streams[stream].responses.try_recv() {
                self.record(stream, response);
            }
        }
    }

    fn record(&mut self, stream: usize, response: pb::WatchResponse) {
        let replay = self.replay();
        let compacted = self.compact_revision();
        let Some(index) = self.by_id.get(&(stream, response.watch_id)).copied() else {
            panic!("{replay}: response for an unknown watcher on stream {stream}: {response:?}");
        };
        let tracked = &mut self.tracked[index];
        assert!(
            tracked.canceled.is_none(),
            "{replay}: response after the cancel: {response:?}"
        );
        if response.canceled {
            tracked.canceled = Some(response);
        } else {
            tracked.responses.push((response, compacted));
        }
    }

    /// Releases everything, writes every key in one txn, and waits until
    /// every watcher has it or its cancel.
    async fn finish(&mut self) -> i64 {
        let success: Vec<RequestOp> = KEYS
            .iter()
            .map(|key| RequestOp::Put(self.put_op(key)))
            .collect();
        let txn = TxnRequest {
            success,
            ..TxnRequest::default()
        };
        self.write(Request::Txn(txn)).await;
        self.replica.release_events(usize::MAX);
        let last = self.current_revision();
        let deadline = tokio::time::Instant::now() + WAIT;
        while !self.all_delivered(last) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: not delivered by revision {last}: {:#?}",
                self.replay(),
                self.tracked
                    .iter()
                    .filter(|t| !delivered(t, last))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.pump();
        }
        last
    }

    fn all_delivered(&self, last: i64) -> bool {
        self.tracked.iter().all(|t| delivered(t, last))
    }

    fn check(&self) {
        for tracked in &self.tracked {
            check_watcher(tracked, &self.history, &self.replay());
        }
    }
}

fn delivered(tracked: &Tracked, last: i64) -> bool {
    match (&tracked.canceled, tracked.cancel_sent) {
        (Some(_), _) => true,
        (None, true) => false,
        (None, false) => tracked.last_revision() >= last,
    }
}

/// `(type, key, value, mod_revision, prev value)` as compared.
type Seen = (i32, Vec<u8>, Vec<u8>, i64, Option<Vec<u8>>);

fn seen_of(event: &crate::proto::mvccpb::Event) -> Seen {
    let kv = event.kv.clone().unwrap_or_default();
    let prev = event.prev_kv.as_ref().map(|p| p.value.to_vec());
    (
        event.r#type,
        kv.key.to_vec(),
        kv.value.to_vec(),
        kv.mod_revision,
        prev,
    )
}

fn expected_of(event: &Event, prev_kv: bool) -> Seen {
    let kind = match event.event_type {
        EventType::Put => 0,
        EventType::Delete => 1,
    };
    let prev = match prev_kv {
        true => event.prev_kv.as_ref().map(|p| p.value.to_vec()),
        false => None,
    };
    let kv = &event.kv;
    (
        kind,
        kv.key.to_vec(),
        kv.value.to_vec(),
        kv.mod_revision,
        prev,
    )
}

/// Ordered, unique, atomic responses; exactly the history of the span
/// (a prefix of it for a canceled watcher).
fn check_watcher(tracked: &Tracked, history: &[Event], replay: &str) {
    let what = format!("{replay}: watcher {tracked:?}");
    let mut previous = tracked.from_revision - 1;
    let mut got = Vec::new();
    for (response, compacted) in &tracked.responses {
        let revisions: Vec<i64> = response.events.iter().map(|e| seen_of(e).3).collect();
        assert!(!revisions.is_empty(), "{what}: empty response {response:?}");
        assert!(
            revisions.windows(2).all(|w| w[0] <= w[1]) && previous < revisions[0],
            "{what}: revisions out of order, repeated or split: {previous} then {revisions:?}"
        );
        previous = revisions[revisions.len() - 1];
        let header = response.header.map_or(0, |h| h.revision);
        assert!(
            header >= previous,
            "{what}: header {header} below {previous}"
        );
        got.extend(response.events.iter().map(|e| (seen_of(e), *compacted)));
    }
    let want: Vec<Seen> = history
        .iter()
        .filter(|e| e.kv.mod_revision >= tracked.from_revision && tracked.contains(&e.kv.key))
        .map(|e| expected_of(e, tracked.prev_kv))
        .collect();
    assert!(got.len() <= want.len(), "{what}: more than owed");
    for ((g, compacted), w) in got.iter().zip(&want) {
        // An event replayed at or below the compacted revision of the time
        // it was read has lost its previous version (etcd sends none then).
        let lost_prev =
            g.4.is_none() && g.3 <= *compacted && (g.0, &g.1, &g.2, g.3) == (w.0, &w.1, &w.2, w.3);
        assert!(g == w || lost_prev, "{what}: got {g:?}, owed {w:?}");
    }
    match &tracked.canceled {
        None => assert_eq!(got.len(), want.len(), "{what}: events missing"),
        Some(cancel) if cancel.compact_revision != 0 => {
            let next = previous + 1;
            assert!(
                next < cancel.compact_revision,
                "{what}: canceled at {} but owed {next}, which was not compacted",
                cancel.compact_revision
            );
        }
        Some(_) => {}
    }
}

fn seeds() -> Vec<u64> {
    let parse = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    match (parse("KEEL_WATCH_SEED"), parse("KEEL_WATCH_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, Some(count)) => (0..count).collect(),
        (None, None) => (0..SEEDS).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_get_exactly_their_history_in_random_interleavings() {
    for seed in seeds() {
        let mut world = World::new(seed).await;
        for _ in 0..STEPS {
            world.step().await;
        }
        world.finish().await;
        world.check();
    }
}
