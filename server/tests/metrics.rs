//! `/metrics` of real keel processes moves as etcd's does, and
//! `--listen-metrics-urls` serves `/metrics` and `/health` on a port of
//! its own (issue 22):
//!
//! - `a_three_member_cluster_counts_what_happens`: after puts, every member
//!   shows WAL fsyncs, a snapshot file, commit >= applied, a leader seen,
//!   and a round trip to each of its two peers (labelled with the peer's
//!   id); open etcdctl watches show in the watcher and stream gauges and
//!   leave them at 0 once closed; killing the leader moves the survivors'
//!   `leader_changes_seen_total`; a proposal to a leader cut off from its
//!   quorum shows as pending, then as failed when the leader steps down.
//! - `metrics_urls_serve_metrics_and_health`: etcd 3.4 and keel, each with
//!   `--listen-metrics-urls`, answer `/metrics` and `/health` there, and
//!   Go's 404 for anything else.
//!
//! Every wait is bounded. About 20 s on 2 cores.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::Background;
use support::cluster::{Cluster, Flavor};
use support::metrics::{http_get, samples, scrape, value, value_at, wait_for_value, wait_until};

/// Longest wait for a metric to show what is expected.
const WAIT: Duration = Duration::from_secs(30);
/// Puts made before the first look (over `--snapshot-count`).
const PUTS: usize = 15;
/// Watches opened at once.
const WATCHES: usize = 3;

/// Member `i`'s id and the leader it knows (`etcdctl endpoint status`).
fn member_and_leader(cluster: &Cluster, i: usize) -> (u64, u64) {
    let out = cluster
        .member_etcdctl(i)
        .run(&["endpoint", "status", "-w", "json"])
        .unwrap();
    assert!(out.success(), "endpoint status of m{i}: {}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let status = &json[0]["Status"];
    let member = status["header"]["member_id"].as_u64().unwrap();
    (member, status["leader"].as_u64().unwrap())
}

/// The peers (`To` labels) a member's round-trip histogram has samples for.
fn probed_peers(text: &str) -> BTreeSet<String> {
    samples(text, "etcd_network_peer_round_trip_time_seconds_count")
        .into_iter()
        .filter(|(_, count)| *count >= 1.0)
        .map(|(labels, _)| labels)
        .collect()
}

/// Waits until `url`'s `/metrics` satisfies `holds`; panics naming `what`.
fn expect(cluster: &Cluster, url: &str, what: &str, holds: impl FnMut(&str) -> bool) -> String {
    match wait_until(url, WAIT, holds) {
        Ok(text) => text,
        Err(last) => panic!(
            "{url}: never {what}; last scrape:\n{last}\n{}",
            cluster.logs()
        ),
    }
}

/// Waits until the unlabelled `name` on `url` satisfies `holds`.
fn expect_value(cluster: &Cluster, url: &str, name: &str, holds: impl Fn(f64) -> bool) -> f64 {
    let (seen, held) = wait_for_value(WAIT, || value_at(url, name), holds);
    assert!(held, "{url}: {name} stayed at {seen}\n{}", cluster.logs());
    seen
}

#[test]
fn a_three_member_cluster_counts_what_happens() {
    let args = ["--snapshot-count=10", "--election-timeout=3000"];
    let mut cluster = Cluster::start_with(Flavor::Keel, 3, &args).unwrap();
    let urls: Vec<String> = cluster.client_urls();
    for i in 0..PUTS {
        let out = cluster
            .member_etcdctl(0)
            .run(&["put", &format!("k{i}"), "v"]);
        assert!(out.unwrap().success());
    }
    let ids: Vec<u64> = (0..3).map(|i| member_and_leader(&cluster, i).0).collect();
    for (i, url) in urls.iter().enumerate() {
        let peers: BTreeSet<String> = (0..3)
            .filter(|&j| j != i)
            .map(|j| format!("To=\"{:x}\"", ids[j]))
            .collect();
        let count = |text: &str, name: &str| value(text, name).unwrap_or(0.0);
        let text = expect(&cluster, url, "showed its disk, raft and peers", |text| {
            probed_peers(text) == peers
                && count(text, "etcd_disk_wal_fsync_duration_seconds_count") > 0.0
                && count(text, "etcd_disk_backend_snapshot_duration_seconds_count") >= 1.0
                && count(text, "etcd_server_proposals_applied_total") >= PUTS as f64
        });
        let committed = count(&text, "etcd_server_proposals_committed_total");
        let applied = count(&text, "etcd_server_proposals_applied_total");
        assert!(
            committed >= applied,
            "{url}: commit {committed} < applied {applied}"
        );
        assert!(count(&text, "etcd_server_leader_changes_seen_total") >= 1.0);
        assert_eq!(value(&text, "etcd_server_has_leader"), Some(1.0));
        assert!(value(&text, "etcd_server_proposals_pending").is_some());
        assert!(value(&text, "etcd_server_proposals_failed_total").is_some());
    }
    watchers_come_and_go(&cluster, &urls[0]);
    let survivors = leader_change_is_counted(&mut cluster, &ids);
    a_cut_off_leader_fails_its_proposal(&cluster, survivors);
}

/// Open etcdctl watches show in member 0's gauges, and leave them.
fn watchers_come_and_go(cluster: &Cluster, url: &str) {
    let watches: Vec<Background> = (0..WATCHES)
        .map(|i| {
            let key = format!("w{i}");
            cluster.member_etcdctl(0).spawn(&["watch", &key]).unwrap()
        })
        .collect();
    let open = WATCHES as f64;
    expect(cluster, url, "counted the open watches", |text| {
        value(text, "etcd_debugging_mvcc_watcher_total") == Some(open)
            && value(text, "etcd_debugging_mvcc_watch_stream_total") == Some(open)
    });
    drop(watches);
    expect(cluster, url, "forgot the closed watches", |text| {
        value(text, "etcd_debugging_mvcc_watcher_total") == Some(0.0)
            && value(text, "etcd_debugging_mvcc_watch_stream_total") == Some(0.0)
    });
}

/// Kills the leader; both survivors count a new leader. Returns the new
/// leader's and the other survivor's indexes.
fn leader_change_is_counted(cluster: &mut Cluster, ids: &[u64]) -> (usize, usize) {
    let leader_id = member_and_leader(cluster, 0).1;
    let leader = ids.iter().position(|id| *id == leader_id).unwrap();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let urls = cluster.client_urls();
    let changes = "etcd_server_leader_changes_seen_total";
    let before: Vec<f64> = survivors
        .iter()
        .map(|&i| value_at(&urls[i], changes))
        .collect();
    cluster.kill(leader);
    for (&i, seen) in survivors.iter().zip(before) {
        expect_value(cluster, &urls[i], changes, |now| now > seen);
        expect_value(cluster, &urls[i], "etcd_server_has_leader", |now| {
            now == 1.0
        });
    }
    let new_leader_id = member_and_leader(cluster, survivors[0]).1;
    match ids.iter().position(|id| *id == new_leader_id) {
        Some(l) if l == survivors[0] => (survivors[0], survivors[1]),
        Some(l) if l == survivors[1] => (survivors[1], survivors[0]),
        other => panic!("the new leader {new_leader_id:x} ({other:?}) is not a survivor"),
    }
}

/// With its only follower paused, the leader holds a put as pending until
/// it steps down (check quorum, one election timeout), failing it.
fn a_cut_off_leader_fails_its_proposal(cluster: &Cluster, (leader, follower): (usize, usize)) {
    let url = &cluster.client_urls()[leader];
    let failed = "etcd_server_proposals_failed_total";
    let failed_before = value_at(url, failed);
    cluster.pause(follower).unwrap();
    let put = cluster
        .member_etcdctl(leader)
        .spawn(&["put", "cut-off", "v"]);
    let put = put.unwrap();
    expect_value(cluster, url, "etcd_server_proposals_pending", |n| n == 1.0);
    expect_value(cluster, url, failed, |n| n > failed_before);
    expect_value(cluster, url, "etcd_server_proposals_pending", |n| n == 0.0);
    drop(put);
    cluster.resume(follower).unwrap();
}

/// `/metrics` and `/health` on the `--listen-metrics-urls` port, as etcd
/// serves them there; other paths are not found.
#[test]
fn metrics_urls_serve_metrics_and_health() {
    if !support::require_etcd("metrics_urls_serve_metrics_and_health") {
        return;
    }
    for flavor in [Flavor::Etcd, Flavor::Keel] {
        let base = format!("http://127.0.0.1:{}", support::free_port().unwrap());
        let flag = format!("--listen-metrics-urls={base}");
        let cluster = Cluster::start_with(flavor, 1, &[flag.as_str()]).unwrap();
        let name = flavor.name();
        let text = expect(&cluster, &base, "served its metrics", |text| {
            value(text, "etcd_server_has_leader") == Some(1.0)
        });
        assert!(
            value(&text, "etcd_debugging_mvcc_watcher_total").is_some(),
            "{name}"
        );
        let health = http_get(&base, "/health").unwrap();
        assert_eq!(health.status, 200, "{name}: {health:?}");
        assert!(
            health.body.contains("\"health\":\"true\""),
            "{name}: {health:?}"
        );
        let other = http_get(&base, "/version").unwrap();
        assert_eq!(other.status, 404, "{name}: {other:?}");
        assert_eq!(other.body, "404 page not found\n", "{name}");
        // The client port keeps serving them too.
        let client = &cluster.client_urls()[0];
        assert!(
            value(&scrape(client), "etcd_server_has_leader").is_some(),
            "{name}"
        );
    }
}
