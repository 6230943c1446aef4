//! `keel-bench` end to end: the binary against a real keel on loopback,
//! `compare --quick` on one tiny case against keel and etcd 3.4, and a
//! bad endpoint. Every run is bounded by [`RUN_TIMEOUT`].
//!
//! keel is `$KEEL_BIN`, else the `keel` cargo built next to this test
//! (`cargo test --workspace` builds it; alone, run `cargo build -p
//! keel-server --bin keel` first). etcd is Debian's `/usr/bin/etcd`; the
//! compare test fails when it is missing unless `KEEL_ALLOW_MISSING_ETCD=1`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use keel_bench::compare::cluster::{Cluster, Flavor};

/// Longest any one `keel-bench` run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The keel binary to test against; panics with how to get one.
fn keel_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KEEL_BIN") {
        return PathBuf::from(path);
    }
    // target/<profile>/deps/keel_bench-<hash> → target/<profile>/keel
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("keel");
    assert!(
        path.exists(),
        "{} not found: run `cargo build -p keel-server --bin keel` first or set KEEL_BIN",
        path.display()
    );
    path
}

/// Runs `keel-bench args`, killing it after [`RUN_TIMEOUT`].
fn keel_bench(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keel-bench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + RUN_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "keel-bench {args:?} ran over {RUN_TIMEOUT:?}:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_200_against_keel_reports_200_requests() {
    let keel = Cluster::start(Flavor::Keel, &keel_binary(), 1)
        .await
        .unwrap();
    let endpoints = keel.endpoints.join(",");
    let args: Vec<String> = [
        "--endpoints",
        endpoints.as_str(),
        "--clients",
        "4",
        "--conns",
        "2",
        "put",
        "--total",
        "200",
        "--key-space-size",
        "50",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let output = tokio::task::spawn_blocking(move || {
        let plain: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut with_json = plain.clone();
        with_json.push("--json");
        (keel_bench(&plain), keel_bench(&with_json))
    })
    .await
    .unwrap();
    let (plain, json) = output;
    assert!(plain.status.success(), "{}", text(&plain));
    let report = String::from_utf8_lossy(&plain.stdout);
    for heading in [
        "Summary:",
        "Requests/sec:",
        "Response time histogram:",
        "Latency distribution:",
    ] {
        assert!(
            report.contains(heading),
            "{heading} missing: {}",
            text(&plain)
        );
    }
    assert!(json.status.success(), "{}", text(&json));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let summary = &value["summaries"]["Requests"];
    assert_eq!(summary["count"], 200, "{value}");
    assert!(summary["errors"].as_object().unwrap().is_empty(), "{value}");
    assert!(
        summary["requests_per_sec"].as_f64().unwrap() > 0.0,
        "{value}"
    );
}

#[test]
fn compare_quick_reports_both_servers() {
    if !etcd_installed() {
        assert_eq!(
            std::env::var("KEEL_ALLOW_MISSING_ETCD").as_deref(),
            Ok("1"),
            "etcd not installed (scripts/setup.sh installs Debian's etcd-server); set KEEL_ALLOW_MISSING_ETCD=1 to skip"
        );
        eprintln!("SKIPPED compare_quick_reports_both_servers: etcd not installed");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let keel = keel_binary();
    let output = keel_bench(&[
        "compare",
        "--quick",
        "--members",
        "1",
        "--client-counts",
        "2",
        "--workloads",
        "put",
        "--keel-bin",
        keel.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("keel/etcd rate"),
        "{}",
        text(&output)
    );
    let json = std::fs::read_to_string(out.path().join("compare.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let cases = value["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{json}");
    let case = &cases[0];
    assert_eq!(
        (
            case["workload"].as_str(),
            case["members"].as_u64(),
            case["clients"].as_u64()
        ),
        (Some("put"), Some(1), Some(2))
    );
    for server in ["keel", "etcd"] {
        assert!(
            case[server]["count"].as_u64().unwrap() > 0,
            "{server}: {json}"
        );
        assert!(
            case[server]["rate_per_sec"].as_f64().unwrap() > 0.0,
            "{server}: {json}"
        );
        assert!(
            case[server]["p99_ms"].as_f64().unwrap() > 0.0,
            "{server}: {json}"
        );
    }
    assert!(case["rate_ratio"].as_f64().unwrap() > 0.0, "{json}");
    assert!(
        value["settings"]["etcd_version"]
            .as_str()
            .unwrap()
            .contains("3.4"),
        "{json}"
    );
    let png = std::fs::read(out.path().join("compare.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
}

/// Whether `etcd` is on PATH and runs.
fn etcd_installed() -> bool {
    Command::new("etcd")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_dead_endpoint_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("127.0.0.1:{port}");
    let output = keel_bench(&["--endpoints", endpoint.as_str(), "put", "--total", "10"]);
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("keel-bench:") && stderr.contains(&endpoint),
        "{}",
        text(&output)
    );
}
