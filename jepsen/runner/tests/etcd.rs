//! The runner against real etcd 3.4 (Debian `etcd-server`): three members it
//! starts itself under kill and partition faults, and a member this test
//! starts, tested through `--endpoints`, and the append workload under kill
//! and partition. All must be `valid`. Fails when
//! etcd is not installed (scripts/setup.sh installs it).

mod support;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{assert_verdict, run};

const RUN_LIMIT: Duration = Duration::from_secs(120);

fn require_etcd() {
    let found = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "etcd is not installed (apt-get install etcd-server, or scripts/setup.sh)"
    );
}

#[test]
fn etcd_started_by_the_runner_under_kill_and_partition_is_valid() {
    require_etcd();
    let results = tempfile::tempdir().expect("temporary directory");
    let args = [
        "--server",
        "etcd",
        "--time-limit",
        "10",
        "--nemesis",
        "kill,partition",
        "--nemesis-interval",
        "2",
        "--concurrency",
        "6",
    ];
    let output = run(&args, results.path(), RUN_LIMIT);
    assert_verdict(&output, "valid");
    assert!(
        output.stdout.contains("network: namespaces"),
        "{}",
        output.stdout
    );
}

#[test]
fn etcd_append_under_kill_and_partition_is_valid() {
    require_etcd();
    let results = tempfile::tempdir().expect("temporary directory");
    let args = [
        "--server",
        "etcd",
        "--workload",
        "append",
        "--time-limit",
        "8",
        "--nemesis",
        "kill,partition",
        "--nemesis-interval",
        "2",
        "--concurrency",
        "6",
    ];
    let output = run(&args, results.path(), RUN_LIMIT);
    assert_verdict(&output, "valid");
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// Kills the etcd member when the test ends, passing or not.
struct EtcdGuard(std::process::Child);

impl Drop for EtcdGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn etcd_through_endpoints_is_valid() {
    require_etcd();
    let dir = tempfile::tempdir().expect("temporary directory");
    let client = format!("http://127.0.0.1:{}", free_port());
    let peer = format!("http://127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.path().join("etcd.log")).expect("log file");
    let child = Command::new("etcd")
        .args(["--name", "solo", "--data-dir"])
        .arg(dir.path().join("solo.data"))
        .args([
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
        ])
        .args([
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ])
        .args(["--initial-cluster", &format!("solo={peer}")])
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("start etcd");
    let _etcd = EtcdGuard(child);
    let results = dir.path().join("results");
    let args = [
        "--endpoints",
        &client,
        "--time-limit",
        "5",
        "--concurrency",
        "4",
    ];
    let output = run(&args, &results, RUN_LIMIT);
    assert_verdict(&output, "valid");
    assert!(
        output.stdout.contains("network: external endpoints"),
        "{}",
        output.stdout
    );
}
