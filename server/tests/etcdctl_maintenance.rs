//! etcdctl maintenance and cluster sessions (compaction, endpoint status and
//! health, member list, snapshot save, alarm list, defrag) against a fresh
//! real etcd and a fresh keel, with 1 and 3 members; and the file `snapshot
//! save` writes, checked against a model of the writes.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeMap;

use keel_kernel::apply::{StateMachine, StateMachineConfig};
use keel_kernel::mvcc::RangeRequest;
use sha2::{Digest, Sha256};
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

/// What the snapshot test writes: puts in order, then one delete.
const SNAPSHOT_PUTS: [(&str, &str); 4] = [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4")];
const SNAPSHOT_DELETE: &str = "b";
/// SHA-256 digest length: etcd's snapshot file ends with the digest of the
/// bytes before it.
const DIGEST_BYTES: usize = 32;
/// etcdctl 3.4 accepts a download of `k * 512 + 32` bytes only.
const SNAPSHOT_PAGE_BYTES: usize = 512;

/// One key as the writes above leave it: value, version, create and mod
/// revisions.
#[derive(Debug, PartialEq, Eq)]
struct ModelKey {
    value: Vec<u8>,
    version: i64,
    create_revision: i64,
    mod_revision: i64,
}

/// The store the writes leave, computed from the writes alone (revision 1
/// is the empty store; each put or delete of an existing key adds one), and
/// its revision.
fn snapshot_model() -> (BTreeMap<Vec<u8>, ModelKey>, i64) {
    let mut keys: BTreeMap<Vec<u8>, ModelKey> = BTreeMap::new();
    let mut revision = 1;
    for (key, value) in SNAPSHOT_PUTS {
        revision += 1;
        let entry = keys.entry(key.as_bytes().to_vec()).or_insert(ModelKey {
            value: Vec::new(),
            version: 0,
            create_revision: revision,
            mod_revision: revision,
        });
        entry.value = value.as_bytes().to_vec();
        entry.version += 1;
        entry.mod_revision = revision;
    }
    if keys.remove(SNAPSHOT_DELETE.as_bytes()).is_some() {
        revision += 1;
    }
    (keys, revision)
}

/// Writes the model's requests through etcdctl, saves a snapshot and
/// returns its bytes and what `etcdctl snapshot status -w json` said.
fn save_snapshot(cluster: &Cluster) -> (Vec<u8>, support::CmdOutput) {
    let etcdctl = cluster.etcdctl();
    for (key, value) in SNAPSHOT_PUTS {
        assert!(etcdctl.run(&["put", key, value]).unwrap().success());
    }
    assert!(etcdctl.run(&["del", SNAPSHOT_DELETE]).unwrap().success());
    let path = cluster.dir().join("snap.db");
    let path = path.to_str().unwrap();
    let saved = etcdctl.run(&["snapshot", "save", path]).unwrap();
    assert!(saved.success(), "snapshot save: {saved:?}");
    assert!(saved.stdout.contains("Snapshot saved at"), "{saved:?}");
    let status = etcdctl
        .run(&["snapshot", "status", path, "-w", "json"])
        .unwrap();
    (std::fs::read(path).unwrap(), status)
}

/// etcd's snapshot file format, as etcdctl 3.4 writes and `snapshot
/// restore` checks it: a body of whole 512-byte pages, then the SHA-256 of
/// the body. Returns the body.
fn check_digest(file: &[u8]) -> &[u8] {
    assert!(
        file.len() > DIGEST_BYTES,
        "snapshot of {} bytes",
        file.len()
    );
    let (body, digest) = file.split_at(file.len() - DIGEST_BYTES);
    assert_eq!(
        body.len() % SNAPSHOT_PAGE_BYTES,
        0,
        "body of {} bytes",
        body.len()
    );
    assert_eq!(digest, Sha256::digest(body).as_slice(), "trailing SHA-256");
    body
}

/// The revision in `snapshot status -w json` (`{"hash":..,"revision":6,..}`).
fn status_revision(json: &str) -> Option<i64> {
    let at = json.find("\"revision\":")? + "\"revision\":".len();
    let digits: String = json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The keys and revision of a snapshot body (an etcd-format bbolt
/// database, keel's or etcd's), read with keel-snapshot's bbolt reader and
/// etcd conversion.
fn snapshot_keys(body: &[u8]) -> (BTreeMap<Vec<u8>, ModelKey>, i64) {
    let parts = keel_snapshot::etcd::convert::to_parts(body).unwrap();
    let state = StateMachine::from_parts(StateMachineConfig::new(1_000), parts).unwrap();
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..RangeRequest::default()
    };
    let kvs = state.store().range(&all).unwrap().kvs;
    let keys = kvs
        .into_iter()
        .map(|kv| {
            let key = ModelKey {
                value: kv.value.to_vec(),
                version: kv.version,
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
            };
            (kv.key.to_vec(), key)
        })
        .collect();
    (keys, state.store().current_revision())
}

/// `snapshot save` is checked beyond its "Snapshot saved" line: the file
/// must be in etcd's format (whole pages and a trailing SHA-256 of them),
/// `snapshot status` must read it and report the model's revision (model
/// built from the writes), and it must hold the model's keys, for etcd and
/// keel alike.
#[test]
fn snapshot_file_holds_the_written_keys() {
    if !support::require_etcd("snapshot_file_holds_the_written_keys") {
        return;
    }
    let (model, revision) = snapshot_model();
    let etcd = Cluster::start(Flavor::Etcd, 1).unwrap();
    let (file, status) = save_snapshot(&etcd);
    let etcd_keys = snapshot_keys(check_digest(&file));
    assert!(status.success(), "etcd's snapshot status: {status:?}");
    assert_eq!(
        status_revision(&status.stdout),
        Some(revision),
        "{status:?}"
    );
    drop(etcd);
    let keel = Cluster::start(Flavor::Keel, 1).unwrap();
    let (file, status) = save_snapshot(&keel);
    let body = check_digest(&file);
    assert!(status.success(), "keel's snapshot status: {status:?}");
    assert_eq!(
        status_revision(&status.stdout),
        Some(revision),
        "{status:?}"
    );
    assert_eq!(snapshot_keys(body), etcd_keys);
    assert_eq!(etcd_keys, (model, revision));
}
