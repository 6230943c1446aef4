//! Restores against real servers: an etcd 3.4 snapshot restored into keel
//! answers every range like the etcd it came from; a keel snapshot saved
//! with etcdctl (an etcd-format bbolt file) restores into a new 1- and
//! 3-member keel cluster with every key and revision, and into real etcd
//! (keel -> etcd migration). Needs `/usr/bin/etcd`, `etcdctl` and the keel binary
//! (`cargo build -p keel-server --bin keel`).

mod support;

use std::path::Path;

use keel_snapshot::{RestoreOptions, SnapshotFormat, restore, status};
use support::{Flavor, MemberSpec, Servers, current_revision, etcdctl_ok, range_at};

/// A seeded workload through etcdctl: puts, overwrites, deletes, a txn
/// with several puts (sub-revisions), a lease with keys; returns the
/// revision to compact at (a middle one).
fn fill(endpoints: &str, seed: u64) -> i64 {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..40 {
        let key = format!("key/{}", next() % 12);
        match next() % 5 {
            0 => {
                etcdctl_ok(endpoints, &["del", &key]);
            }
            _ => {
                etcdctl_ok(
                    endpoints,
                    &["put", &key, &format!("value-{i}-{}", next() % 1000)],
                );
            }
        }
    }
    let txn = "\n\nput txn/a 1\nput txn/b 2\nput txn/c 3\n\n";
    let out = std::process::Command::new("etcdctl")
        .args(["--endpoints", endpoints, "txn"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(txn.as_bytes())?;
            child.wait()
        })
        .expect("etcdctl txn");
    assert!(out.success());
    let middle = current_revision(endpoints);
    let lease = etcdctl_ok(endpoints, &["lease", "grant", "600"]);
    let lease_id = lease
        .split_whitespace()
        .nth(1)
        .expect("lease id")
        .to_owned();
    for i in 0..3 {
        etcdctl_ok(
            endpoints,
            &["put", &format!("leased/{i}"), "v", "--lease", &lease_id],
        );
    }
    etcdctl_ok(endpoints, &["lease", "grant", "900"]);
    for i in 40..60 {
        let key = format!("key/{}", next() % 12);
        etcdctl_ok(endpoints, &["put", &key, &format!("late-{i}")]);
    }
    middle
}

/// Auth users and roles (auth stays disabled so reads need no token).
fn add_auth(endpoints: &str) {
    etcdctl_ok(
        endpoints,
        &["user", "add", "alice", "--new-user-password=secret"],
    );
    etcdctl_ok(endpoints, &["role", "add", "reader"]);
    etcdctl_ok(
        endpoints,
        &[
            "role",
            "grant-permission",
            "reader",
            "--prefix",
            "read",
            "key/",
        ],
    );
    etcdctl_ok(endpoints, &["user", "grant-role", "alice", "reader"]);
}

/// Every answer compared between the source and the restored cluster.
fn answers(endpoints: &str, from_revision: i64) -> Vec<String> {
    let last = current_revision(endpoints);
    let mut out: Vec<String> = (from_revision..=last)
        .map(|rev| range_at(endpoints, rev))
        .collect();
    // A limited range still counts every key (etcd's `count`, `more`).
    out.push(support::without_header(&etcdctl_ok(
        endpoints,
        &["get", "key/", "--prefix", "--limit", "2", "-w", "json"],
    )));
    let leases = etcdctl_ok(endpoints, &["lease", "list"]);
    out.push(leases.clone());
    for id in leases.lines().skip(1) {
        let ttl = etcdctl_ok(
            endpoints,
            &["lease", "timetolive", id, "--keys", "-w", "json"],
        );
        let value: serde_json::Value = serde_json::from_str(&ttl).expect("json");
        assert!(
            value["granted-ttl"].as_i64().is_some_and(|t| t >= 600),
            "{ttl}"
        );
        // etcd lists a lease's keys in its map's order, which varies
        // from run to run: compare them as a set.
        // (A lease without keys has no `keys` field.)
        let mut keys: Vec<String> = value["keys"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|k| k.to_string())
            .collect();
        keys.sort();
        out.push(format!("{} {} {keys:?}", value["id"], value["granted-ttl"]));
    }
    out.push(etcdctl_ok(endpoints, &["user", "list"]));
    out.push(etcdctl_ok(endpoints, &["role", "list"]));
    out.push(etcdctl_ok(endpoints, &["role", "get", "reader"]));
    out.push(etcdctl_ok(endpoints, &["user", "get", "alice"]));
    out
}

fn restore_member(file: &Path, member: &MemberSpec, members: &[MemberSpec], token: &str) {
    let opts = RestoreOptions {
        data_dir: member.data_dir.clone(),
        name: member.name.clone(),
        initial_cluster: support::initial_cluster(members),
        initial_cluster_token: token.to_owned(),
        initial_advertise_peer_urls: vec![member.peer_url.clone()],
        ..RestoreOptions::new()
    };
    let report = restore(file, &opts).expect("restore");
    assert_eq!(report.snapshot_index, members.len() as u64);
}

#[test]
fn an_etcd_snapshot_restored_into_keel_answers_like_etcd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = [MemberSpec::new("etcd0", dir.path())];
    let etcd = Servers::start(Flavor::Etcd, &source, "source", dir.path());
    let compact_at = fill(&etcd.endpoints, 0x5eed_0019);
    add_auth(&etcd.endpoints);
    etcdctl_ok(&etcd.endpoints, &["compact", &compact_at.to_string()]);
    let file = dir.path().join("etcd.db");
    etcdctl_ok(
        &etcd.endpoints,
        &["snapshot", "save", &file.display().to_string()],
    );
    let expected = answers(&etcd.endpoints, compact_at);
    drop(etcd);

    let printed = etcdctl_ok(
        "127.0.0.1:1",
        &[
            "snapshot",
            "status",
            &file.display().to_string(),
            "-w",
            "json",
        ],
    );
    let ours = status(&file).expect("status");
    assert_eq!(ours.format, SnapshotFormat::Etcd);
    assert_eq!(
        keel_snapshot::render_status(&ours, keel_snapshot::WriteOut::Json),
        printed,
        "snapshot status -w json"
    );

    let members = [MemberSpec::new("k0", dir.path())];
    restore_member(&file, &members[0], &members, "restored");
    let keel = Servers::start(Flavor::Keel, &members, "restored", dir.path());
    let got = answers(&keel.endpoints, compact_at);
    assert_eq!(got.len(), expected.len());
    for (i, (got, expected)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got, expected, "answer {i}");
    }
    let too_old = support::etcdctl(
        &keel.endpoints,
        &[
            "get",
            "key/",
            "--prefix",
            &format!("--rev={}", compact_at - 1),
        ],
    );
    assert!(
        String::from_utf8_lossy(&too_old.stderr).contains("required revision has been compacted")
    );
}

/// `snapshot status -w json` of `file` by etcdctl and by keel-snapshot:
/// equal (hash, revision, total keys, size); returns keel-snapshot's.
fn status_agrees_with_etcdctl(file: &Path) -> keel_snapshot::SnapshotStatus {
    let path = file.display().to_string();
    let printed = etcdctl_ok("127.0.0.1:1", &["snapshot", "status", &path, "-w", "json"]);
    let ours = status(file).expect("status");
    assert_eq!(
        keel_snapshot::render_status(&ours, keel_snapshot::WriteOut::Json),
        printed,
        "snapshot status -w json"
    );
    ours
}

/// keel -> etcd migration: a keel cluster with history, a compaction,
/// leases and auth, saved with etcdctl, restored with `etcdctl snapshot
/// restore` and served by real etcd, answers every range from the
/// compaction revision to the head, the leases and the users and roles as
/// keel did.
#[test]
fn a_keel_snapshot_restored_into_etcd_answers_like_keel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = [MemberSpec::new("src", dir.path())];
    let keel = Servers::start(Flavor::Keel, &source, "source", dir.path());
    let compact_at = fill(&keel.endpoints, 0x6b65_656c);
    add_auth(&keel.endpoints);
    etcdctl_ok(&keel.endpoints, &["compact", &compact_at.to_string()]);
    etcdctl_ok(&keel.endpoints, &["put", "after/compaction", "1"]);
    let file = dir.path().join("keel.db");
    let path = file.display().to_string();
    etcdctl_ok(&keel.endpoints, &["snapshot", "save", &path]);
    let expected = answers(&keel.endpoints, compact_at);
    let revision = current_revision(&keel.endpoints);
    drop(keel);
    let saved = status_agrees_with_etcdctl(&file);
    assert_eq!(saved.revision, revision);

    let member = MemberSpec::new("etcd0", dir.path());
    let members = [member.clone()];
    let cluster = support::initial_cluster(&members);
    let data_dir = member.data_dir.display().to_string();
    etcdctl_ok(
        "127.0.0.1:1",
        &[
            "snapshot",
            "restore",
            &path,
            "--name",
            &member.name,
            "--data-dir",
            &data_dir,
            "--initial-cluster",
            &cluster,
            "--initial-cluster-token",
            "migrated",
            "--initial-advertise-peer-urls",
            &member.peer_url,
        ],
    );
    let etcd = Servers::start(Flavor::Etcd, &members, "migrated", dir.path());
    assert_eq!(current_revision(&etcd.endpoints), revision);
    let got = answers(&etcd.endpoints, compact_at);
    assert_eq!(got.len(), expected.len());
    for (i, (got, expected)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got, expected, "answer {i}");
    }
    let too_old = support::etcdctl(
        &etcd.endpoints,
        &[
            "get",
            "key/",
            "--prefix",
            &format!("--rev={}", compact_at - 1),
        ],
    );
    assert!(
        String::from_utf8_lossy(&too_old.stderr).contains("required revision has been compacted")
    );
    etcdctl_ok(&etcd.endpoints, &["put", "after", "migration"]);
}

/// Saves a keel cluster with etcdctl, restores it into `size` members and
/// compares every revision's range.
fn keel_round_trip(size: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = [MemberSpec::new("src", dir.path())];
    let keel = Servers::start(Flavor::Keel, &source, "source", dir.path());
    fill(&keel.endpoints, 0x0019_5eed + size as u64);
    add_auth(&keel.endpoints);
    let file = dir.path().join("keel.snap");
    etcdctl_ok(
        &keel.endpoints,
        &["snapshot", "save", &file.display().to_string()],
    );
    let expected = answers(&keel.endpoints, 1);
    let revision = current_revision(&keel.endpoints);
    drop(keel);
    let saved = status_agrees_with_etcdctl(&file);
    assert_eq!(saved.format, SnapshotFormat::Etcd);
    assert_eq!(saved.revision, revision);

    let members: Vec<MemberSpec> = (0..size)
        .map(|i| MemberSpec::new(&format!("r{i}"), dir.path()))
        .collect();
    for member in &members {
        restore_member(&file, member, &members, "restored");
    }
    let restored = Servers::start(Flavor::Keel, &members, "restored", dir.path());
    for member in &members {
        let got = answers(&member.client_url, 1);
        assert_eq!(got, expected, "member {}", member.name);
    }
    let list = etcdctl_ok(&restored.endpoints, &["member", "list"]);
    assert_eq!(list.lines().count(), size, "{list}");
    etcdctl_ok(&restored.endpoints, &["put", "after", "restore"]);
}

#[test]
fn a_keel_snapshot_restores_into_one_member() {
    keel_round_trip(1);
}

#[test]
fn a_keel_snapshot_restores_into_three_members() {
    keel_round_trip(3);
}
