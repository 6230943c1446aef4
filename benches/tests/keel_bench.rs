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

use keel_bench::servers::cluster::{Cluster, Flavor};

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

/// The numbers in the `keel` and `etcd` columns of the row `name` of
/// every `scale` table in `stdout`, one pair per table.
fn scale_row(stdout: &str, name: &str) -> Vec<(f64, f64)> {
    stdout
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            // "| name | keel | etcd | keel/etcd | goal |" splits into 7 cells.
            if cells.len() == 7 && cells[1] == name {
                Some((cells[2].parse().ok()?, cells[3].parse().ok()?))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn scale_small_fills_every_measure_for_both_servers() {
    if !etcd_installed() {
        assert_eq!(
            std::env::var("KEEL_ALLOW_MISSING_ETCD").as_deref(),
            Ok("1"),
            "etcd not installed (scripts/setup.sh installs Debian's etcd-server); set KEEL_ALLOW_MISSING_ETCD=1 to skip"
        );
        eprintln!("SKIPPED scale_small_fills_every_measure_for_both_servers: etcd not installed");
        return;
    }
    let keel = keel_binary();
    let started = Instant::now();
    let output = keel_bench(&[
        "scale",
        "--keys",
        "500,2000",
        "--val-size",
        "32",
        "--gets",
        "1000",
        "--load-clients",
        "8",
        "--load-conns",
        "2",
        "--keel-bin",
        keel.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for heading in ["N = 500 keys", "N = 2000 keys", "issue 26 goal (keel)"] {
        assert!(stdout.contains(heading), "{heading}: {}", text(&output));
    }
    let positive = [
        "load rate (puts/s)",
        "put p99 (ms)",
        "put max (ms)",
        "disk write_bytes per put (B)",
        "wchar per put (B)",
        "RssAnon after load (MB)",
        "RssFile after load (MB)",
        "data dir, file sizes (MB)",
        "restart to serving (s)",
        "gets after restart (gets/s)",
        "RssAnon after gets (MB)",
    ];
    for name in positive {
        let rows = scale_row(&stdout, name);
        assert_eq!(rows.len(), 2, "{name}: {}", text(&output));
        for (keel, etcd) in rows {
            assert!(keel > 0.0 && etcd > 0.0, "{name}: {}", text(&output));
        }
    }
    // Loading 2000 keys of 48 bytes writes more than their bytes (WAL and
    // state) but not more than a few KB each.
    for (keel, etcd) in scale_row(&stdout, "wchar per put (B)") {
        assert!((48.0..100_000.0).contains(&keel), "{}", text(&output));
        assert!((48.0..100_000.0).contains(&etcd), "{}", text(&output));
    }
    assert_eq!(
        scale_row(&stdout, "failed puts + gets"),
        [(0.0, 0.0), (0.0, 0.0)],
        "{}",
        text(&output)
    );
    for goal in ["ms bound: ", "<= etcd: ", "<= 3 s: "] {
        assert!(stdout.contains(goal), "{goal}: {}", text(&output));
    }
    assert!(
        stdout.contains("keel bytes written per put flat in N: "),
        "{}",
        text(&output)
    );
    eprintln!("scale test ran for {:?}", started.elapsed());
}

#[test]
fn scale_json_has_both_servers_figures() {
    if !etcd_installed() {
        assert_eq!(
            std::env::var("KEEL_ALLOW_MISSING_ETCD").as_deref(),
            Ok("1"),
            "etcd not installed; set KEEL_ALLOW_MISSING_ETCD=1 to skip"
        );
        eprintln!("SKIPPED scale_json_has_both_servers_figures: etcd not installed");
        return;
    }
    let keel = keel_binary();
    let output = keel_bench(&[
        "scale",
        "--json",
        "--keys",
        "300",
        "--val-size",
        "16",
        "--gets",
        "200",
        "--load-clients",
        "4",
        "--load-conns",
        "2",
        "--keel-bin",
        keel.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let run = &value["runs"][0];
    assert_eq!(run["keys"], 300, "{value}");
    for server in ["keel", "etcd"] {
        let figures = &run[server];
        assert_eq!(figures["load"]["count"], 300, "{server}: {value}");
        assert_eq!(figures["gets"]["count"], 200, "{server}: {value}");
        assert!(
            figures["load_io"]["wchar_bytes"].as_u64().unwrap() > 300 * 32,
            "{server}: {value}"
        );
        assert!(
            figures["memory_after_load"]["rss_anon_bytes"]
                .as_u64()
                .unwrap()
                > 0,
            "{server}: {value}"
        );
        assert!(
            figures["data_dir"]["files"].as_u64().unwrap() > 0,
            "{server}: {value}"
        );
    }
    let measures = run["measures"].as_array().unwrap();
    let goals: Vec<&str> = measures
        .iter()
        .filter_map(|m| m["goal"]["verdict"].as_str())
        .collect();
    assert_eq!(goals.len(), 5, "{value}");
    assert!(
        goals
            .iter()
            .all(|v| ["met", "bound-only", "not-met"].contains(v)),
        "{value}"
    );
    assert_eq!(value["settings"]["quota_backend_bytes"], 8u64 << 30);
    assert!(value["bytes_per_put_growth"].is_null(), "{value}");
}

#[test]
fn scale_refuses_flags_it_would_ignore() {
    let output = keel_bench(&["scale", "--clients", "4", "--keys", "10"]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--load-clients"),
        "{}",
        text(&output)
    );
}
