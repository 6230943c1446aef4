//! A real full disk: a keel member whose data directory is on a small tmpfs
//! fills it up. The write that needs a new WAL segment times out, later
//! writes get etcd's NOSPACE error, `etcdctl alarm list` shows the alarm;
//! after space is freed the member resumes, the alarm refuses writes until
//! `etcdctl alarm disarm`, and after `kill -9` every acknowledged write is
//! still there. (etcd itself exits when its WAL cannot be written, so there
//! is no etcd run to compare with.)
//!
//! Mounting a tmpfs needs root (CI runs as root); elsewhere the test fails
//! unless `KEEL_ALLOW_UNPRIVILEGED=1`, with which it says SKIPPED.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::client::connect;
use support::cluster::{Cluster, Flavor};

/// Size of the file system holding the data directory: room for three
/// 64 MiB WAL segments once the filler is gone. While it is there, the
/// member has its first segment and (if its job ran before the filler took
/// the space) the next one prepared ahead; it fills them and fails to
/// allocate the one after. Freeing the filler leaves room for that one.
const TMPFS_MIB: u64 = 224;
/// Space left free after the filler file.
const LEFT_FREE_BYTES: u64 = 4 << 20;
/// Value size of the writes that fill the WAL segment.
const VALUE_BYTES: usize = 1 << 20;

/// A tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    fn mount(size_mib: u64) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(Tmpfs { _dir: dir, path })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Free bytes of the file system holding `path` (`df`).
fn available_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().last().unwrap().trim().parse().unwrap()
}

/// Takes all but [`LEFT_FREE_BYTES`] of the file system with one file.
/// The member may still be preparing its next WAL segment (zeros written
/// into a preallocated file), so the free space can shrink between `df`
/// and `fallocate`: a failed attempt is retried with a fresh reading
/// (bounded).
fn fill_disk(root: &Path) -> PathBuf {
    let filler = root.join("filler");
    for _ in 0..50 {
        let size = available_bytes(root).saturating_sub(LEFT_FREE_BYTES);
        let status = Command::new("fallocate")
            .args(["-l", &size.to_string()])
            .arg(&filler)
            .status()
            .unwrap();
        if status.success() {
            return filler;
        }
        let _ = std::fs::remove_file(&filler);
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("fallocate never took the free space of {}", root.display());
}

/// Waits until `check` holds, polling; panics with `what` and the member's
/// log after 20 s.
/// keel's `keel_server_alarm_checks_total` from `GET <url>/metrics` (0 when
/// it cannot be read).
fn alarm_checks(url: &str) -> u64 {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    let mut text = String::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_string(&mut text).is_err() {
        return 0;
    }
    text.lines()
        .find_map(|line| line.strip_prefix("keel_server_alarm_checks_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

fn wait_for(what: &str, cluster: &Cluster, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}\n{}", cluster.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_raises_nospace_and_loses_nothing() {
    if !support::require_etcd("a_full_disk_raises_nospace_and_loses_nothing") {
        return;
    }
    let Some(disk) = Tmpfs::mount(TMPFS_MIB) else {
        let test = "a_full_disk_raises_nospace_and_loses_nothing";
        let why = "cannot mount a tmpfs (needs root)";
        support::cannot_run(test, why, support::ALLOW_UNPRIVILEGED_ENV);
        return;
    };
    let mut cluster = Cluster::start_with_data_root(Flavor::Keel, 1, &[], &disk.path).unwrap();
    let url = cluster.members()[0].client_url.clone();
    let ctl = cluster.etcdctl();
    let filler = fill_disk(&disk.path);

    // Fill the WAL segment until the next one cannot be allocated.
    let mut client = connect(vec![url.clone()]).await;
    let value = vec![b'v'; VALUE_BYTES];
    let mut acked = 0;
    let failure = loop {
        assert!(acked < 200, "the disk never filled up");
        match client
            .put(format!("fill{acked}"), value.clone(), None)
            .await
        {
            Ok(_) => acked += 1,
            Err(err) => break err.to_string(),
        }
    };
    assert!(
        failure.contains("etcdserver: request timed out"),
        "{failure}"
    );
    let refused = ctl.run(&["put", "more", "x"]).unwrap();
    assert!(!refused.success());
    assert!(
        refused
            .stderr
            .contains("etcdserver: mvcc: database space exceeded"),
        "{refused:?}"
    );
    let alarms = ctl.run(&["alarm", "list"]).unwrap();
    assert!(alarms.stdout.contains("alarm:NOSPACE"), "{alarms:?}");

    // Free the space: the waiting write commits and raft resumes.
    std::fs::remove_file(&filler).unwrap();
    let timed_out_key = format!("fill{acked}");
    wait_for("the member to resume", &cluster, || {
        ctl.run(&["get", &timed_out_key, "--keys-only"])
            .is_ok_and(|out| out.stdout.trim() == timed_out_key)
    });
    let alarms = ctl.run(&["alarm", "list"]).unwrap();
    assert!(alarms.stdout.contains("alarm:NOSPACE"), "{alarms:?}");
    let refused = ctl.run(&["put", "more", "x"]).unwrap();
    assert!(
        refused.stderr.contains("database space exceeded"),
        "{refused:?}"
    );
    assert!(ctl.run(&["alarm", "disarm"]).unwrap().success());
    // A disarmed alarm stays disarmed: two more alarm checks run (keel's
    // `/metrics` counts them), and writes are taken.
    let url = &cluster.members()[0].client_url;
    let checks = alarm_checks(url);
    wait_for("two alarm checks after the disarm", &cluster, || {
        alarm_checks(url) >= checks + 2
    });
    let alarms = ctl.run(&["alarm", "list"]).unwrap();
    assert_eq!(alarms.stdout, "", "{alarms:?}");
    assert_eq!(ctl.run(&["put", "after", "disarm"]).unwrap().stdout, "OK\n");

    cluster.kill(0);
    cluster.restart(0).unwrap();
    let count = ctl
        .run(&["get", "fill", "--prefix", "--keys-only"])
        .unwrap();
    let keys = count.stdout.lines().filter(|l| !l.is_empty()).count();
    assert_eq!(keys, acked + 1, "{}", cluster.logs());
    let after = ctl.run(&["get", "after", "--print-value-only"]).unwrap();
    assert_eq!(after.stdout, "disarm\n");
    drop(cluster);
}
