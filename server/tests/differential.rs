//! Differential test: the same seeded, randomized operation sequence (puts,
//! deletes, txns, ranges with options, compactions, lease grant/revoke/
//! time-to-live/list) is sent through the `etcd-client` crate to a fresh real
//! etcd and a fresh keel, one operation at a time; every response (or error
//! code and message) must be equal except the header's cluster id, member id
//! and raft term, and a lease's remaining TTL, which must have counted down
//! by about the time that passed since its grant
//! (`support::normalize::remaining_ttl_band`). A fixed list of edge cases
//! (oversized request, 129-op txn, duplicate txn keys, empty keys, bad lease
//! TTLs/ids, odd compaction revisions) is compared the same way.
//!
//! Each seed runs: a watch on all keys (with previous values) opened before
//! the first operation; half the operations; an expiry phase (two leases of
//! a few seconds with keys attached, waited out on both servers: keys and
//! leases must be gone the same way, the longer lease's TTL must have counted
//! down meanwhile); the other half; then the watch's whole event stream, and
//! watches opened afterwards from past revisions (some compacted), are
//! compared. Clusters are reached through one member (with 3 members, a
//! follower), which applied a write when it acknowledges it, so the
//! serializable reads and lease lists it serves are deterministic.
//!
//! What CI runs (each test prints its time; the file took about 35 s on 2
//! cores): seeds 1..=3 with 1 member, seeds 4 and 5 with 3 members, 200
//! operations each; the self-check (the same workload, seed 6, against two
//! etcds must compare equal), and a check that
//! the comparison does not hide a value, a revision or a TTL that did not
//! count down. Environment: `KEEL_DIFF_SEEDS=N` runs seeds 1..=N,
//! `KEEL_DIFF_SEED=S` replays only seed S, `KEEL_DIFF_OPS=M` sets the
//! operations per seed, `KEEL_DIFF_MEMBERS=3` runs those seeds with 3 members
//! (the 3-member test then runs the same seeds), `KEEL_DIFF_SUBJECT=etcd`
//! compares etcd with a second etcd everywhere, `KEEL_DIFF_PRINT=1` prints
//! every operation and its outcome. A failure prints the seed and the command
//! that replays it.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, LeaseGrantOptions,
    LeaseTimeToLiveOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp, WatchOptions,
    WatchStream,
};
use support::cluster::{Cluster, Flavor};
use support::normalize::{Window, remaining_ttl_band, replace_number_after};

/// Seeds 1..=this run with one member by default.
const SEEDS_DEFAULT: u64 = 3;
/// The seeds the 3-member test runs by default.
const SEEDS_THREE_MEMBERS: [u64; 2] = [4, 5];
/// The seed the etcd-against-etcd self-check runs by default.
const SEED_SELF_CHECK: u64 = 6;
/// Operations per seed by default (half before the expiry phase).
const OPS_DEFAULT: usize = 200;
/// Leases of the expiry phase (never drawn by the random operations).
const SHORT_LEASE_IDS: [i64; 2] = [201, 202];
/// The first short lease lives this or one more second (etcd's minimum is
/// 2 s with the default election timeout)...
const SHORT_TTL_SECS: i64 = 2;
/// ... the second this much longer, so that both servers have seen the
/// first one expire well before the second does.
const SHORT_TTL_GAP_SECS: i64 = 4;
/// Longest wait for a lease to expire once its TTL has passed.
const EXPIRY_WAIT_MAX: Duration = Duration::from_secs(15);
/// Pause between two "is it gone yet" questions.
const EXPIRY_POLL: Duration = Duration::from_millis(100);
/// Longest wait for a watch's confirmation or its next events.
const WATCH_WAIT_MAX: Duration = Duration::from_secs(10);
/// A watch opened at the end also starts this many revisions back.
const WATCH_BACK_REVISIONS: i64 = 10;
/// Keys share prefixes so prefix and range reads cover several of them.
const KEYS: [&str; 8] = ["a", "a/1", "a/2", "ab", "b", "b/1", "c", "d"];
const VALUES: [&str; 4] = ["x", "y", "zz", ""];
/// Lease ids used by the test (explicit ids, so both servers use the same);
/// the last one is never granted.
const LEASE_IDS: [i64; 4] = [101, 102, 103, 999];
/// Operations shown before a failing one.
const HISTORY_SHOWN: usize = 25;

/// splitmix64: a tiny deterministic generator, so a seed replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Which keys a range or delete covers.
#[derive(Clone, Debug)]
enum Span {
    Key(&'static str),
    Prefix(&'static str),
    Range(&'static str, &'static str),
    FromKey(&'static str),
}

#[derive(Clone, Debug)]
enum Op {
    Put {
        key: &'static str,
        value: &'static str,
        lease: Option<i64>,
        prev_kv: bool,
    },
    Get {
        span: Span,
        revision: i64,
        limit: i64,
        sort: Option<(SortTarget, SortOrder)>,
        keys_only: bool,
        count_only: bool,
        serializable: bool,
    },
    Delete {
        span: Span,
        prev_kv: bool,
    },
    Txn {
        compares: Vec<Compare>,
        success: Vec<SimpleOp>,
        failure: Vec<SimpleOp>,
    },
    Compact {
        revision: i64,
    },
    Grant {
        id: i64,
        ttl_secs: i64,
    },
    Revoke {
        id: i64,
    },
    TimeToLive {
        id: i64,
    },
    Leases,
}

/// An operation inside a txn.
#[derive(Clone, Debug)]
enum SimpleOp {
    Put(&'static str, &'static str),
    Get(Span),
    Delete(Span),
}

fn span(rng: &mut Rng) -> Span {
    let key = rng.pick(&KEYS);
    match rng.below(6) {
        0 | 1 => Span::Key(key),
        2 => Span::Prefix(rng.pick(&["a", "a/", "b", ""])),
        3 => Span::FromKey(key),
        _ => {
            let end = rng.pick(&KEYS);
            Span::Range(key.min(end), key.max(end))
        }
    }
}

/// Draws the next operation; `revision` is the store's current revision (as
/// etcd reported it), so revisions asked for are near the interesting range.
fn draw(rng: &mut Rng, revision: i64) -> Op {
    let near = |rng: &mut Rng| (revision - 4 + rng.below(7) as i64).max(1);
    match rng.below(21) {
        0..=5 => Op::Put {
            key: rng.pick(&KEYS),
            value: rng.pick(&VALUES),
            lease: rng.percent(20).then(|| rng.pick(&LEASE_IDS)),
            prev_kv: rng.percent(30),
        },
        6..=9 => Op::Get {
            span: span(rng),
            revision: if rng.percent(30) { near(rng) } else { 0 },
            limit: if rng.percent(30) {
                1 + rng.below(3) as i64
            } else {
                0
            },
            sort: rng.percent(30).then(|| {
                let order = rng.pick(&[SortOrder::Ascend, SortOrder::Descend]);
                (SortTarget::Key, order)
            }),
            keys_only: rng.percent(15),
            count_only: rng.percent(10),
            serializable: rng.percent(20),
        },
        10..=11 => Op::Delete {
            span: span(rng),
            prev_kv: rng.percent(50),
        },
        12..=14 => draw_txn(rng, revision),
        15 => Op::Compact {
            revision: near(rng),
        },
        16..=17 => Op::Grant {
            id: rng.pick(&LEASE_IDS[..3]),
            ttl_secs: 60 + rng.below(60) as i64,
        },
        18 => Op::Revoke {
            id: rng.pick(&LEASE_IDS),
        },
        19 => Op::TimeToLive {
            id: rng.pick(&LEASE_IDS),
        },
        _ => Op::Leases,
    }
}

fn draw_txn(rng: &mut Rng, revision: i64) -> Op {
    let compares = (0..rng.below(3))
        .map(|_| {
            let key = rng.pick(&KEYS);
            let op = rng.pick(&[
                CompareOp::Equal,
                CompareOp::Greater,
                CompareOp::Less,
                CompareOp::NotEqual,
            ]);
            match rng.below(4) {
                0 => Compare::value(key, op, rng.pick(&VALUES)),
                1 => Compare::version(key, op, rng.below(3) as i64),
                2 => Compare::create_revision(key, op, rng.below(revision as usize + 1) as i64),
                _ => Compare::mod_revision(key, op, rng.below(revision as usize + 1) as i64),
            }
        })
        .collect();
    let mut simple_ops = |n: usize| -> Vec<SimpleOp> {
        (0..n)
            .map(|_| match rng.below(3) {
                0 => SimpleOp::Put(rng.pick(&KEYS), rng.pick(&VALUES)),
                1 => SimpleOp::Get(span(rng)),
                _ => SimpleOp::Delete(span(rng)),
            })
            .collect()
    };
    let success = simple_ops(3);
    let failure = simple_ops(2);
    Op::Txn {
        compares,
        success,
        failure,
    }
}

fn get_options(span: &Span) -> (&'static str, GetOptions) {
    match *span {
        Span::Key(k) => (k, GetOptions::new()),
        Span::Prefix(k) => (k, GetOptions::new().with_prefix()),
        Span::Range(k, end) => (k, GetOptions::new().with_range(end)),
        Span::FromKey(k) => (k, GetOptions::new().with_from_key()),
    }
}

fn delete_options(span: &Span) -> (&'static str, DeleteOptions) {
    match *span {
        Span::Key(k) => (k, DeleteOptions::new()),
        Span::Prefix(k) => (k, DeleteOptions::new().with_prefix()),
        Span::Range(k, end) => (k, DeleteOptions::new().with_range(end)),
        Span::FromKey(k) => (k, DeleteOptions::new().with_from_key()),
    }
}

fn txn_op(op: &SimpleOp) -> TxnOp {
    match op {
        SimpleOp::Put(k, v) => TxnOp::put(*k, *v, None),
        SimpleOp::Get(span) => {
            let (k, o) = get_options(span);
            TxnOp::get(k, Some(o))
        }
        SimpleOp::Delete(span) => {
            let (k, o) = delete_options(span);
            TxnOp::delete(k, Some(o))
        }
    }
}

/// One side of the comparison: a cluster, a client connected to one of its
/// members, what the test knows about the leases it granted there, and a
/// watch on all keys opened before the first operation.
struct Side {
    cluster: Cluster,
    client: Client,
    /// When each lease still alive was granted (for the remaining-TTL band).
    granted: BTreeMap<i64, Window>,
    watch: WatchStream,
}

impl Side {
    /// Starts `flavor` with `members` members, connects to one (a follower
    /// when there are several, so requests take the forwarding paths) and
    /// opens the watch.
    async fn start(flavor: Flavor, members: usize) -> Side {
        let cluster = Cluster::start(flavor, members).unwrap();
        let reached = match members {
            1 => 0,
            _ => (support::client::leader(&cluster).await + 1) % members,
        };
        let mut client = connect(&cluster.members()[reached].client_url).await;
        let watch = watch_from(&mut client, 0).await;
        Side {
            cluster,
            client,
            granted: BTreeMap::new(),
            watch,
        }
    }

    /// Sends `op` and describes the outcome with the header's ids and term
    /// hidden; remembers when leases were granted.
    async fn apply(&mut self, op: &Op) -> String {
        let sent = Instant::now();
        let outcome = match op {
            Op::TimeToLive { id } => self.time_to_live(*id).await,
            _ => send(&mut self.client, op).await,
        };
        match op {
            Op::Grant { id, .. } if outcome.is_ok() => {
                self.granted.insert(*id, Window::since(sent));
            }
            Op::Revoke { id } if outcome.is_ok() => {
                self.granted.remove(id);
            }
            _ => {}
        }
        describe_outcome(outcome)
    }

    async fn time_to_live(&mut self, id: i64) -> Result<String, etcd_client::Error> {
        let sent = Instant::now();
        let options = LeaseTimeToLiveOptions::new().with_keys();
        let r = self.client.lease_time_to_live(id, Some(options)).await?;
        let asked = Window::since(sent);
        let band = self
            .granted
            .get(&id)
            .map(|granted| remaining_ttl_band(r.granted_ttl(), *granted, asked));
        Ok(describe_ttl(&TtlAnswer {
            id: r.id(),
            granted: r.granted_ttl(),
            remaining: r.ttl(),
            keys: r.keys().to_vec(),
            revision: r.header().map(|h| h.revision()),
            band,
        }))
    }

    /// Waits (bounded) until lease `id` is gone; forgets its grant time.
    async fn wait_expired(&mut self, id: i64) -> Result<(), String> {
        let deadline = Instant::now() + EXPIRY_WAIT_MAX;
        loop {
            let r = self.client.lease_time_to_live(id, None).await;
            if matches!(&r, Ok(r) if r.ttl() == -1) {
                self.granted.remove(&id);
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "lease {id} still there after {EXPIRY_WAIT_MAX:?}: {r:?}"
                ));
            }
            tokio::time::sleep(EXPIRY_POLL).await;
        }
    }

    /// The current revision, read through a linearizable range.
    async fn revision(&mut self) -> i64 {
        // Any key: the header carries the store's revision.
        let r = self
            .client
            .get("a", Some(GetOptions::new().with_count_only()))
            .await;
        r.unwrap().header().unwrap().revision()
    }
}

/// Sends `op` (but time-to-live, see [`Side::time_to_live`]) and renders
/// the answer with `{:?}`.
async fn send(client: &mut Client, op: &Op) -> Result<String, etcd_client::Error> {
    match op {
        Op::Put {
            key,
            value,
            lease,
            prev_kv,
        } => {
            let mut o = PutOptions::new();
            if let Some(lease) = lease {
                o = o.with_lease(*lease);
            }
            if *prev_kv {
                o = o.with_prev_key();
            }
            client
                .put(*key, *value, Some(o))
                .await
                .map(|r| format!("{r:?}"))
        }
        Op::Get { .. } => get(client, op).await,
        Op::Delete { span, prev_kv } => {
            let (key, mut o) = delete_options(span);
            if *prev_kv {
                o = o.with_prev_key();
            }
            client.delete(key, Some(o)).await.map(|r| format!("{r:?}"))
        }
        Op::Txn {
            compares,
            success,
            failure,
        } => {
            let txn = Txn::new()
                .when(compares.clone())
                .and_then(success.iter().map(txn_op).collect::<Vec<_>>())
                .or_else(failure.iter().map(txn_op).collect::<Vec<_>>());
            client.txn(txn).await.map(|r| format!("{r:?}"))
        }
        Op::Compact { revision } => client
            .compact(*revision, None)
            .await
            .map(|r| format!("{r:?}")),
        Op::Grant { id, ttl_secs } => client
            .lease_grant(*ttl_secs, Some(LeaseGrantOptions::new().with_id(*id)))
            .await
            .map(|r| format!("{r:?}")),
        Op::Revoke { id } => client.lease_revoke(*id).await.map(|r| format!("{r:?}")),
        Op::TimeToLive { .. } => unreachable!("sent by Side::time_to_live"),
        Op::Leases => client.leases().await.map(|r| {
            let mut ids: Vec<i64> = r.leases().iter().map(|l| l.id()).collect();
            ids.sort_unstable();
            format!(
                "leases({ids:?}, revision={:?})",
                r.header().map(|h| h.revision())
            )
        }),
    }
}

async fn get(client: &mut Client, op: &Op) -> Result<String, etcd_client::Error> {
    let Op::Get {
        span,
        revision,
        limit,
        sort,
        keys_only,
        count_only,
        serializable,
    } = op
    else {
        unreachable!("get() takes Op::Get")
    };
    let (key, mut o) = get_options(span);
    o = o.with_revision(*revision).with_limit(*limit);
    if let Some((target, order)) = sort {
        o = o.with_sort(*target, *order);
    }
    if *keys_only {
        o = o.with_keys_only();
    }
    if *count_only {
        o = o.with_count_only();
    }
    if *serializable {
        o = o.with_serializable();
    }
    client.get(key, Some(o)).await.map(|r| format!("{r:?}"))
}

fn describe_outcome(outcome: Result<String, etcd_client::Error>) -> String {
    match outcome {
        Ok(text) => hide_header_ids(&text),
        Err(etcd_client::Error::GRpcStatus(status)) => {
            format!("Err({:?}: {})", status.code(), status.message())
        }
        Err(other) => format!("Err(client: {other})"),
    }
}

fn hide_header_ids(text: &str) -> String {
    let text = replace_number_after(text, "cluster_id: ", "_");
    let text = replace_number_after(&text, "member_id: ", "_");
    replace_number_after(&text, "raft_term: ", "_")
}

/// A time-to-live answer, with the band its remaining TTL must lie in
/// (`None` when the test did not grant the lease in this run).
struct TtlAnswer {
    id: i64,
    granted: i64,
    remaining: i64,
    keys: Vec<Vec<u8>>,
    revision: Option<i64>,
    band: Option<RangeInclusive<i64>>,
}

/// Everything exact but the remaining TTL, which is `counted down` when it
/// lies in its band (it depends on when each server was asked) and printed
/// with the band it missed otherwise. The keys come from a map in etcd, so
/// their order is not defined: they are sorted.
fn describe_ttl(answer: &TtlAnswer) -> String {
    let mut keys = answer.keys.clone();
    keys.sort();
    let remaining = match &answer.band {
        _ if answer.remaining == -1 => "-1".to_owned(),
        Some(band) if band.contains(&answer.remaining) => "counted down".to_owned(),
        Some(band) => format!("{}s, expected {band:?}", answer.remaining),
        None => format!("{}s, countdown start unknown", answer.remaining),
    };
    format!(
        "ttl(id={}, granted={}, remaining={remaining}, keys={keys:?}, revision={:?})",
        answer.id, answer.granted, answer.revision
    )
}

async fn connect(url: &str) -> Client {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(10));
    Client::connect([url], Some(options)).await.unwrap()
}

/// Opens a watch on all keys with previous values from `start_revision`
/// (0 = from now) and waits (bounded) until the server confirmed it.
async fn watch_from(client: &mut Client, start_revision: i64) -> WatchStream {
    let options = WatchOptions::new()
        .with_all_keys()
        .with_prev_key()
        .with_start_revision(start_revision);
    let mut stream = client.watch("", Some(options)).await.unwrap();
    let created = tokio::time::timeout(WATCH_WAIT_MAX, stream.message()).await;
    let created = created.unwrap().unwrap().unwrap();
    assert!(created.created(), "first watch response: {created:?}");
    stream
}

/// Describes the watch responses that arrive until an event at revision
/// `last` (bounded by [`WATCH_WAIT_MAX`]), the stream is canceled or it ends.
/// Events are listed one by one (servers may batch them differently);
/// other responses only by what they mean (cancel, compact revision).
async fn collect_events(stream: &mut WatchStream, first: i64, last: i64) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WATCH_WAIT_MAX;
    let mut reached = first > last;
    while !reached {
        let message = tokio::time::timeout_at(deadline, stream.message()).await;
        let response = match message {
            Err(_) => {
                seen.push(format!("timed out waiting for revision {last}"));
                break;
            }
            Ok(Ok(Some(response))) => response,
            Ok(other) => {
                seen.push(format!("stream ended: {other:?}"));
                break;
            }
        };
        for event in response.events() {
            let revision = event.kv().map_or(0, |kv| kv.mod_revision());
            reached |= revision >= last;
            seen.push(format!("{event:?}"));
        }
        if response.canceled() || response.compact_revision() != 0 {
            seen.push(format!(
                "canceled={} compact_revision={} reason={:?}",
                response.canceled(),
                response.compact_revision(),
                response.cancel_reason()
            ));
            break;
        }
    }
    seen
}

/// Which workload a seed runs and against what.
#[derive(Clone, Copy, Debug)]
struct Plan {
    seed: u64,
    ops: usize,
    members: usize,
    subject: Flavor,
}

impl Plan {
    fn replay(&self) -> String {
        let subject = match self.subject {
            Flavor::Etcd => " KEEL_DIFF_SUBJECT=etcd",
            Flavor::Keel => "",
        };
        format!(
            "KEEL_DIFF_SEED={} KEEL_DIFF_OPS={} KEEL_DIFF_MEMBERS={}{subject} cargo test -p keel-server --test differential",
            self.seed, self.ops, self.members
        )
    }
}

/// A seed's run: etcd (the reference) and the subject, in lockstep.
struct Run {
    plan: Plan,
    etcd: Side,
    subject: Side,
    rng: Rng,
    /// The store's revision as etcd last reported it.
    revision: i64,
    history: Vec<String>,
}

impl Run {
    async fn start(plan: Plan) -> Run {
        let (etcd, subject) = tokio::join!(
            Side::start(Flavor::Etcd, plan.members),
            Side::start(plan.subject, plan.members)
        );
        Run {
            plan,
            etcd,
            subject,
            rng: Rng(plan.seed),
            revision: 1,
            history: Vec::new(),
        }
    }

    /// Sends `op` to both sides; a difference is the failure report.
    async fn step(&mut self, op: &Op) -> Result<(), String> {
        let expected = self.etcd.apply(op).await;
        let actual = self.subject.apply(op).await;
        self.compare(&format!("{op:?}"), &expected, &actual)?;
        if let Some(r) = revision_of(&expected) {
            self.revision = self.revision.max(r);
        }
        Ok(())
    }

    /// Records a compared outcome, or reports the difference.
    fn compare(&mut self, what: &str, expected: &str, actual: &str) -> Result<(), String> {
        let step = self.history.len();
        if expected != actual {
            let start = step.saturating_sub(HISTORY_SHOWN);
            return Err(format!(
                "seed {}, step {step}: {what}\n  etcd: {expected}\n  {}: {actual}\n\
                 earlier steps (last {HISTORY_SHOWN}):\n{}\nreplay: {}\n{}",
                self.plan.seed,
                self.plan.subject.name(),
                self.history[start..].join("\n"),
                self.plan.replay(),
                self.subject.cluster.logs()
            ));
        }
        self.history.push(format!("  #{step} {what} -> {expected}"));
        if std::env::var_os("KEEL_DIFF_PRINT").is_some() {
            eprintln!("{}", self.history[step]);
        }
        Ok(())
    }

    async fn random_ops(&mut self, count: usize) -> Result<(), String> {
        for _ in 0..count {
            let op = draw(&mut self.rng, self.revision);
            self.step(&op).await?;
        }
        Ok(())
    }

    /// Two short leases with keys attached, waited out: the first expires
    /// while the second still counts down, then the second.
    async fn expiry_phase(&mut self) -> Result<(), String> {
        let [first, second] = SHORT_LEASE_IDS;
        let ttl_secs = SHORT_TTL_SECS + self.rng.below(2) as i64;
        let mut ops = vec![
            Op::Grant {
                id: first,
                ttl_secs,
            },
            Op::Grant {
                id: second,
                ttl_secs: ttl_secs + SHORT_TTL_GAP_SECS,
            },
        ];
        for lease in [first, first, second] {
            ops.push(Op::Put {
                key: self.rng.pick(&KEYS),
                value: self.rng.pick(&VALUES),
                lease: Some(lease),
                prev_kv: true,
            });
        }
        ops.extend([Op::TimeToLive { id: first }, Op::TimeToLive { id: second }]);
        for op in &ops {
            self.step(op).await?;
        }
        self.wait_expired(first).await?;
        self.compare_state(&[first, second]).await?;
        self.wait_expired(second).await?;
        self.compare_state(&[first, second]).await
    }

    async fn wait_expired(&mut self, id: i64) -> Result<(), String> {
        let (etcd, subject) =
            tokio::join!(self.etcd.wait_expired(id), self.subject.wait_expired(id));
        etcd.map_err(|e| format!("etcd: {e}"))?;
        subject.map_err(|e| {
            format!(
                "{}: {e}\n{}",
                self.plan.subject.name(),
                self.subject.cluster.logs()
            )
        })
    }

    /// Compares every key (a linearizable read first, so the member reached
    /// applied everything), the lease list and the given leases' TTLs.
    async fn compare_state(&mut self, leases: &[i64]) -> Result<(), String> {
        let all = Op::Get {
            span: Span::Prefix(""),
            revision: 0,
            limit: 0,
            sort: None,
            keys_only: false,
            count_only: false,
            serializable: false,
        };
        self.step(&all).await?;
        self.step(&Op::Leases).await?;
        for id in leases {
            self.step(&Op::TimeToLive { id: *id }).await?;
        }
        Ok(())
    }

    /// Compares the event streams of the watch opened at the start and of
    /// watches opened now from past revisions.
    async fn compare_watches(&mut self) -> Result<(), String> {
        let last = self.etcd.revision().await;
        let expected = collect_events(&mut self.etcd.watch, 2, last).await;
        let actual = collect_events(&mut self.subject.watch, 2, last).await;
        self.compare_events("watch opened at the start", &expected, &actual)?;
        for start in [1, last - WATCH_BACK_REVISIONS, last] {
            let start = start.max(1);
            let what = format!("watch opened at the end from revision {start}");
            let mut etcd = watch_from(&mut self.etcd.client, start).await;
            let mut subject = watch_from(&mut self.subject.client, start).await;
            let expected = collect_events(&mut etcd, start, last).await;
            let actual = collect_events(&mut subject, start, last).await;
            self.compare_events(&what, &expected, &actual)?;
        }
        Ok(())
    }

    fn compare_events(
        &mut self,
        what: &str,
        expected: &[String],
        actual: &[String],
    ) -> Result<(), String> {
        let count = expected.len().max(actual.len());
        for i in 0..count {
            let none = "(nothing)".to_owned();
            let e = hide_header_ids(expected.get(i).unwrap_or(&none));
            let a = hide_header_ids(actual.get(i).unwrap_or(&none));
            self.compare(&format!("{what}, event {i}"), &e, &a)?;
        }
        Ok(())
    }
}

fn revision_of(outcome: &str) -> Option<i64> {
    let at = outcome.find("revision: ")? + "revision: ".len();
    let digits: String = outcome[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Runs one seed; returns the failure report, if any.
async fn run_seed(plan: Plan) -> Result<(), String> {
    let mut run = Run::start(plan).await;
    let first_half = plan.ops / 2;
    run.random_ops(first_half).await?;
    run.expiry_phase().await?;
    run.random_ops(plan.ops - first_half).await?;
    run.compare_watches().await
}

/// Describes a result the way [`apply`] does.
fn describe<T: std::fmt::Debug>(result: Result<T, etcd_client::Error>) -> String {
    match result {
        Ok(response) => hide_header_ids(&format!("{response:?}")),
        Err(etcd_client::Error::GRpcStatus(status)) => {
            format!("Err({:?}: {})", status.code(), status.message())
        }
        Err(other) => format!("Err(client: {other})"),
    }
}

/// Requests etcd refuses or treats specially, each answered the same way by
/// both servers: oversized requests, too many txn operations, duplicate keys
/// in a txn, empty keys, bad lease TTLs and ids, odd compaction revisions.
async fn edge_cases(client: &mut Client) -> Vec<String> {
    let mut out = Vec::new();
    let big = vec![b'v'; 1_677_722]; // 1.6 MiB: over etcd's 1.5 MiB default
    out.push(describe(client.put("big", big, None).await));
    let ops: Vec<TxnOp> = (0..129)
        .map(|i| TxnOp::put(format!("t{i}"), "v", None))
        .collect();
    out.push(describe(client.txn(Txn::new().and_then(ops)).await));
    let ops: Vec<TxnOp> = (0..128)
        .map(|i| TxnOp::put(format!("t{i}"), "v", None))
        .collect();
    out.push(describe(client.txn(Txn::new().and_then(ops)).await));
    let twice = [TxnOp::put("dup", "1", None), TxnOp::put("dup", "2", None)];
    out.push(describe(client.txn(Txn::new().and_then(twice)).await));
    let put_and_delete = [TxnOp::put("dup", "1", None), TxnOp::delete("dup", None)];
    out.push(describe(
        client.txn(Txn::new().and_then(put_and_delete)).await,
    ));
    out.push(describe(client.put("", "no key", None).await));
    out.push(describe(client.get("", None).await));
    out.push(describe(client.delete("", None).await));
    let ignore = PutOptions::new().with_ignore_value();
    out.push(describe(client.put("absent", "", Some(ignore)).await));
    out.push(describe(
        client.lease_grant(0, None).await.map(|r| r.ttl() > 0),
    ));
    out.push(describe(
        client.lease_grant(-5, None).await.map(|r| r.ttl() > 0),
    ));
    let with_id = || Some(LeaseGrantOptions::new().with_id(77));
    out.push(describe(client.lease_grant(60, with_id()).await));
    out.push(describe(client.lease_grant(60, with_id()).await));
    out.push(describe(client.lease_revoke(78).await));
    out.push(describe(client.compact(0, None).await));
    out.push(describe(client.compact(-1, None).await));
    out.push(describe(
        client
            .get("t1", Some(GetOptions::new().with_revision(-3)))
            .await,
    ));
    out.push(describe(client.compact(2, None).await));
    out.push(describe(
        client
            .get("t1", Some(GetOptions::new().with_revision(1)))
            .await,
    ));
    out
}

#[tokio::test]
async fn edge_cases_match_etcd() {
    if !support::require_etcd("edge_cases_match_etcd") {
        return;
    }
    let started = Instant::now();
    let etcd = Cluster::start(Flavor::Etcd, 1).unwrap();
    let expected = edge_cases(&mut connect(&etcd.members()[0].client_url).await).await;
    drop(etcd);
    let keel = Cluster::start(Flavor::Keel, 1).unwrap();
    let actual = edge_cases(&mut connect(&keel.members()[0].client_url).await).await;
    eprintln!("edge_cases_match_etcd: {:?}", started.elapsed());
    let mut differences = String::new();
    assert_eq!(expected.len(), actual.len());
    for (i, (e, k)) in expected.iter().zip(&actual).enumerate() {
        if std::env::var_os("KEEL_DIFF_PRINT").is_some() {
            eprintln!("case {i}: {}", clip(e));
        }
        if e != k {
            let (e, k) = (clip(e), clip(k));
            differences.push_str(&format!("case {i}:\n  etcd: {e}\n  keel: {k}\n"));
        }
    }
    assert!(
        differences.is_empty(),
        "keel differs from etcd:\n{differences}"
    );
}

/// The first 600 characters (a 128-operation txn response is long).
fn clip(text: &str) -> String {
    text.chars().take(600).collect()
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The subject: keel, or etcd with `KEEL_DIFF_SUBJECT=etcd`.
fn subject() -> Flavor {
    match std::env::var("KEEL_DIFF_SUBJECT").as_deref() {
        Ok("etcd") => Flavor::Etcd,
        _ => Flavor::Keel,
    }
}

/// The seeds to run: `KEEL_DIFF_SEED`, else 1..=`KEEL_DIFF_SEEDS`, else
/// `default`.
fn seeds(default: Vec<u64>) -> Vec<u64> {
    match (env_number("KEEL_DIFF_SEED"), env_number("KEEL_DIFF_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, Some(n)) => (1..=n).collect(),
        (None, None) => default,
    }
}

/// Runs `seeds` with `members` members against `subject`; panics with the
/// first difference. Prints the time it took.
async fn run_seeds(test: &str, seeds: Vec<u64>, members: usize, subject: Flavor) {
    if !support::require_etcd(test) {
        return;
    }
    let started = Instant::now();
    let ops = env_number("KEEL_DIFF_OPS").map_or(OPS_DEFAULT, |n| n as usize);
    for seed in seeds {
        let plan = Plan {
            seed,
            ops,
            members,
            subject,
        };
        if let Err(report) = run_seed(plan).await {
            panic!("{} differs from etcd: {report}", subject.name());
        }
    }
    eprintln!("{test}: {:?}", started.elapsed());
}

#[tokio::test]
async fn random_operations_match_etcd() {
    let members = env_number("KEEL_DIFF_MEMBERS").unwrap_or(1) as usize;
    let seeds = seeds((1..=SEEDS_DEFAULT).collect());
    run_seeds("random_operations_match_etcd", seeds, members, subject()).await;
}

#[tokio::test]
async fn random_operations_match_etcd_three_members() {
    let seeds = seeds(SEEDS_THREE_MEMBERS.to_vec());
    run_seeds(
        "random_operations_match_etcd_three_members",
        seeds,
        3,
        subject(),
    )
    .await;
}

/// The self-check: the same workload against two etcds compares equal, so
/// every difference the test reports is one etcd itself does not have.
#[tokio::test]
async fn etcd_matches_itself() {
    let seeds = seeds(vec![SEED_SELF_CHECK]);
    let members = env_number("KEEL_DIFF_MEMBERS").unwrap_or(1) as usize;
    run_seeds("etcd_matches_itself", seeds, members, Flavor::Etcd).await;
}

/// The other half of the self-check: what the comparison hides (ids, terms,
/// a TTL that counted down) is all it hides. Answers that differ in a
/// value, a revision, a lease's keys or a TTL that did not count down, and
/// watch events that differ in a revision, must not compare equal.
#[test]
fn comparison_does_not_hide_differences() {
    let header = |cluster: u64, revision: i64, term: u64| {
        format!(
            "ResponseHeader {{ cluster_id: {cluster}, member_id: 9, revision: {revision}, raft_term: {term} }}"
        )
    };
    let get = |revision: i64, value: &str| {
        format!(
            "GetResponse {{ header: {}, kvs: [KeyValue {{ key: \"a\", value: \"{value}\", mod_revision: {revision} }}] }}",
            header(1, revision, 2)
        )
    };
    let same = |a: &str, b: &str| hide_header_ids(a) == hide_header_ids(b);
    // Ids and terms are hidden...
    assert_eq!(
        hide_header_ids(&header(1, 5, 2)),
        hide_header_ids(&header(7, 5, 3))
    );
    // ... values and revisions are not.
    assert!(!same(&get(5, "x"), &get(5, "y")));
    assert!(!same(&get(5, "x"), &get(6, "x")));
    assert!(!same(&header(1, 5, 2), &header(1, 6, 2)));
    let now = Instant::now();
    let asked = Window { from: now, to: now };
    let granted = Window {
        from: now - Duration::from_millis(3_100),
        to: now - Duration::from_millis(3_000),
    };
    let ttl = |remaining: i64, keys: &[&str]| {
        describe_ttl(&TtlAnswer {
            id: 101,
            granted: 60,
            remaining,
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
            revision: Some(9),
            band: Some(remaining_ttl_band(60, granted, asked)),
        })
    };
    // 3 s after the grant, 57 s (or 56) counted down; 60 s did not.
    assert_eq!(ttl(57, &["a", "b"]), ttl(56, &["b", "a"]));
    assert_ne!(ttl(57, &["a"]), ttl(60, &["a"]));
    assert_ne!(ttl(57, &["a"]), ttl(50, &["a"]));
    assert_ne!(ttl(57, &["a"]), ttl(57, &["b"]));
    assert_ne!(ttl(57, &["a"]), ttl(-1, &["a"]));
    let event = |revision: i64| {
        format!("Event {{ type: Put, kv: KeyValue {{ key: \"a\", mod_revision: {revision} }} }}")
    };
    assert!(!same(&event(4), &event(5)));
}
