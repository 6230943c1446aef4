//! The partition fault without network namespaces: members behind TCP
//! proxies (`--network proxy`, what a run without root gets). A short
//! register run under `partition` must be `valid`, must say it used the
//! proxies, and every partition must have held: a write through the
//! minority member, tried halfway through the cut, must not succeed
//! (a proxy that forwarded everything would let it commit). etcd cannot
//! be partitioned by proxies (it dials peers from 127.0.0.1): refused.

mod support;

use std::time::Duration;

use support::{assert_verdict, keel_binary, run};

/// Wall-time bound of one run (start, recovery, check included).
const RUN_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn partition_over_tcp_proxies_is_valid_and_the_minority_stops_committing() {
    let results = tempfile::tempdir().expect("temporary directory");
    let keel = keel_binary();
    let args = [
        "--network",
        "proxy",
        "--nemesis",
        "partition",
        "--workload",
        "register",
        "--time-limit",
        "12",
        "--nemesis-interval",
        "2",
        "--concurrency",
        "6",
        "--keel-bin",
        keel.to_str().expect("utf-8 path"),
    ];
    let output = run(&args, results.path(), RUN_LIMIT);
    assert_verdict(&output, "valid");
    assert!(
        output.stdout.contains("network: tcp-proxy"),
        "{}",
        output.stdout
    );
    let run_dir = output.run_dir.expect("the run printed its directory");
    let verdict = std::fs::read_to_string(run_dir.join("verdict.json")).expect("verdict.json");
    assert!(verdict.contains("\"network\": \"tcp-proxy\""), "{verdict}");
    let faults = std::fs::read_to_string(run_dir.join("faults.json")).expect("faults.json");
    let events: Vec<serde_json::Value> = serde_json::from_str(&faults).expect("faults.json");
    assert!(!events.is_empty(), "no partition was injected");
    for event in &events {
        assert_eq!(event["fault"], "partition", "{event}");
        assert!(event["error"].is_null(), "the partition failed: {event}");
        let outcome = event["outcome"].to_string();
        assert!(outcome.contains("cut by tcp-proxy"), "{event}");
        assert!(
            outcome.contains("served no write during the cut"),
            "{event}"
        );
    }
}

#[test]
fn etcd_partition_over_tcp_proxies_is_refused() {
    let results = tempfile::tempdir().expect("temporary directory");
    let args = [
        "--server",
        "etcd",
        "--network",
        "proxy",
        "--nemesis",
        "partition",
    ];
    let output = run(&args, results.path(), RUN_LIMIT);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(output.stderr.contains("etcd does not"), "{output:?}");
}
