//! etcdctl maintenance and cluster sessions (compaction, endpoint status and
//! health, member list, snapshot save, alarm list, defrag) against a fresh
//! real etcd and a fresh keel, with 1 and 3 members.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use support::cluster::{Cluster, Flavor};
use support::normalize::Norm;
use support::session::{Session, assert_same_as_etcd, assert_same_as_etcd_with};

#[test]
fn compaction_and_compacted_reads() {
    let mut s = Session::new();
    s.run("put a 1")
        .run("put a 2")
        .run("put a 3")
        .run("put b 1");
    s.run("compaction 3");
    s.run("get a --rev=2")
        .run("get a --rev=3")
        .run("get a --rev=4");
    s.run("compaction 2")
        .run("compaction 3")
        .run("compaction 100");
    s.run("get a --rev=100");
    s.watch("compacted", "watch a --rev=1");
    s.collect("compacted", 1);
    s.run("compaction 5 --physical");
    s.run("get a --prefix");
    assert_same_as_etcd("compaction_and_compacted_reads", &s, 1);
}

/// With `http://` endpoints etcdctl 3.4 sends `:authority:
/// http://127.0.0.1:P` on its per-endpoint calls (endpoint status, defrag,
/// hashkv); keel repairs it before tonic's HTTP/2 layer sees it
/// (`keel_server::h2_authority`), so the session matches etcd's.
#[test]
fn status_health_members_snapshot_single() {
    let mut s = Session::new();
    s.run("put a 1");
    s.run_norm("endpoint status", Norm::EndpointStatus);
    s.run("endpoint status -w json");
    s.run_norm("endpoint health", Norm::EndpointHealth);
    s.run_norm("member list", Norm::MemberList);
    s.run("member list -w json");
    s.run("snapshot save {dir}/snap.db");
    s.run("alarm list");
    s.run("defrag");
    s.run("get a");
    assert_same_as_etcd("status_health_members_snapshot_single", &s, 1);
}

/// The same calls with `host:port` endpoints, where etcdctl sends a
/// well-formed `:authority` that keel passes through untouched.
#[test]
fn status_health_members_snapshot_bare_endpoints() {
    let mut s = Session::new();
    s.bare_endpoints();
    s.run("put a 1");
    s.run_norm("endpoint status", Norm::EndpointStatus);
    s.run("endpoint status -w json");
    s.run_norm("endpoint health", Norm::EndpointHealth);
    s.run("defrag");
    s.run("snapshot save {dir}/snap.db");
    assert_same_as_etcd("status_health_members_snapshot_bare_endpoints", &s, 1);
}

#[test]
fn three_member_cluster_session() {
    let mut s = Session::new();
    s.run("put a 1")
        .run("put b 2")
        .run("get a --prefix")
        .run("get b -w json");
    s.run_norm("endpoint health", Norm::EndpointHealth);
    s.run_norm("endpoint status", Norm::EndpointStatusCluster);
    s.run("defrag");
    s.run_norm("member list", Norm::MemberList);
    s.run("del a").run("get --from-key a");
    assert_same_as_etcd("three_member_cluster_session", &s, 3);
}

/// A 3-member cluster configured only through `ETCD_*` environment
/// variables (no flags) comes up the same way.
#[test]
fn three_members_configured_by_environment() {
    let mut s = Session::new();
    s.run("put a 1").run("get a -w json");
    s.run_norm("endpoint health", Norm::EndpointHealth);
    s.run_norm("member list", Norm::MemberList);
    let start = |flavor: Flavor| Cluster::start_via_environment(flavor, 3);
    assert_same_as_etcd_with("three_members_configured_by_environment", &s, start);
}
