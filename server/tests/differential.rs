//! Differential test: the same seeded, randomized operation sequence (puts,
//! deletes, txns, ranges with options, compactions, lease grant/revoke/
//! time-to-live/list) is sent through the `etcd-client` crate to a fresh real
//! etcd and a fresh keel, one operation at a time; every response (or error
//! code and message) must be equal except the header's cluster id, member id
//! and raft term. A fixed list of edge cases (oversized request, 129-op txn,
//! duplicate txn keys, empty keys, bad lease TTLs/ids, odd compaction
//! revisions) is compared the same way.
//!
//! Default: seeds 1..=2, 150 operations each. Environment:
//! `KEEL_DIFF_SEEDS=N` runs seeds 1..=N, `KEEL_DIFF_SEED=S` replays only seed
//! S, `KEEL_DIFF_OPS=M` sets the operations per seed, `KEEL_DIFF_SUBJECT=etcd`
//! compares etcd with a second etcd (checks the test itself), `KEEL_DIFF_PRINT=1`
//! prints every operation and its outcome. A failure
//! prints the seed and the command that replays it.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, LeaseGrantOptions,
    LeaseTimeToLiveOptions, PutOptions, SortOrder, SortTarget, Txn, TxnOp,
};
use support::cluster::{Cluster, Flavor};
use support::normalize::replace_number_after;

const SEEDS_DEFAULT: u64 = 2;
const OPS_DEFAULT: usize = 150;
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

/// Sends `op` and describes the outcome with the header's ids and term hidden.
async fn apply(client: &mut Client, op: &Op) -> String {
    let outcome = match op {
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
            client.put(*key, *value, Some(o)).await.map(|r| format!("{r:?}"))
        }
        Op::Get {
            span,
            revision,
            limit,
            sort,
            keys_only,
            count_only,
            serializable,
        } => {
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
        Op::TimeToLive { id } => client
            .lease_time_to_live(*id, Some(LeaseTimeToLiveOptions::new().with_keys()))
            .await
            .map(|r| {
                // Remaining TTL depends on when each server was asked; the
                // keys come from a map in etcd, so their order is not defined.
                let mut keys = r.keys().to_vec();
                keys.sort();
                let ttl_ok = r.ttl() == -1 || (r.ttl() > 0 && r.ttl() <= r.granted_ttl());
                format!(
                    "ttl(id={}, granted={}, remaining_in_range={ttl_ok}, keys={keys:?}, revision={:?})",
                    r.id(),
                    r.granted_ttl(),
                    r.header().map(|h| h.revision())
                )
            }),
        Op::Leases => client.leases().await.map(|r| {
            let mut ids: Vec<i64> = r.leases().iter().map(|l| l.id()).collect();
            ids.sort_unstable();
            format!("leases({ids:?}, revision={:?})", r.header().map(|h| h.revision()))
        }),
    };
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

async fn connect(cluster: &Cluster) -> Client {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(10));
    Client::connect(cluster.client_urls(), Some(options))
        .await
        .unwrap()
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
async fn run_seed(seed: u64, ops: usize) -> Result<(), String> {
    let etcd = Cluster::start(Flavor::Etcd, 1).unwrap();
    // KEEL_DIFF_SUBJECT=etcd compares etcd with a second etcd: a check that
    // the test itself only compares what etcd defines.
    let subject = match std::env::var("KEEL_DIFF_SUBJECT").as_deref() {
        Ok("etcd") => Flavor::Etcd,
        _ => Flavor::Keel,
    };
    let keel = Cluster::start(subject, 1).unwrap();
    let (mut etcd_client, mut keel_client) = (connect(&etcd).await, connect(&keel).await);
    let mut rng = Rng(seed);
    let mut revision = 1;
    let mut history: Vec<String> = Vec::new();
    for step in 0..ops {
        let op = draw(&mut rng, revision);
        let expected = apply(&mut etcd_client, &op).await;
        let actual = apply(&mut keel_client, &op).await;
        if expected != actual {
            let start = history.len().saturating_sub(HISTORY_SHOWN);
            return Err(format!(
                "seed {seed}, operation {step}: {op:?}\n  etcd: {expected}\n  keel: {actual}\n\
                 earlier operations (last {HISTORY_SHOWN}):\n{}\n\
                 replay: KEEL_DIFF_SEED={seed} KEEL_DIFF_OPS={ops} cargo test -p keel-server --test differential\n{}",
                history[start..].join("\n"),
                keel.logs()
            ));
        }
        if let Some(r) = revision_of(&expected) {
            revision = revision.max(r);
        }
        history.push(format!("  #{step} {op:?} -> {expected}"));
        if std::env::var_os("KEEL_DIFF_PRINT").is_some() {
            eprintln!("{}", history[history.len() - 1]);
        }
    }
    Ok(())
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
    let etcd = Cluster::start(Flavor::Etcd, 1).unwrap();
    let expected = edge_cases(&mut connect(&etcd).await).await;
    drop(etcd);
    let keel = Cluster::start(Flavor::Keel, 1).unwrap();
    let actual = edge_cases(&mut connect(&keel).await).await;
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

#[tokio::test]
async fn random_operations_match_etcd() {
    if !support::require_etcd("random_operations_match_etcd") {
        return;
    }
    let ops = env_number("KEEL_DIFF_OPS").map_or(OPS_DEFAULT, |n| n as usize);
    let seeds: Vec<u64> = match env_number("KEEL_DIFF_SEED") {
        Some(seed) => vec![seed],
        None => (1..=env_number("KEEL_DIFF_SEEDS").unwrap_or(SEEDS_DEFAULT)).collect(),
    };
    for seed in seeds {
        if let Err(report) = run_seed(seed, ops).await {
            panic!("keel differs from etcd: {report}");
        }
    }
}
