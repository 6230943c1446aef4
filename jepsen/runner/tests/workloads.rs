//! The append, watch and lock workloads against 3 real keel members:
//! list-append transactions must be strict serializable and watches must
//! stay ordered, gap-free and agreed under kill and partition; the lock
//! must exclude without faults; under pauses the lock's failure rate is
//! measured and printed (a lease-based lock cannot promise exclusion when
//! its holder is cut off from its lease, so either verdict is accepted
//! there, but the run must produce one).

mod support;

use std::time::Duration;

use support::{assert_verdict, keel_binary, run};

const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Runs `workload` under `nemesis`; the temporary directory holding the
/// results lives as long as the returned value.
fn keel_run(
    workload: &str,
    nemesis: &str,
    seconds: &str,
) -> (tempfile::TempDir, support::RunOutput) {
    let results = tempfile::tempdir().expect("temporary directory");
    let keel = keel_binary();
    let args = [
        "--workload",
        workload,
        "--time-limit",
        seconds,
        "--nemesis",
        nemesis,
        "--nemesis-interval",
        "2",
        "--concurrency",
        "6",
        "--keel-bin",
        keel.to_str().expect("utf-8 path"),
    ];
    let output = run(&args, results.path(), RUN_LIMIT);
    (results, output)
}

#[test]
fn watch_under_kill_and_partition_is_valid() {
    let (_results, output) = keel_run("watch", "kill,partition", "10");
    assert_verdict(&output, "valid");
    let dir = output.run_dir.expect("run directory");
    assert!(dir.join("watches.jsonl").exists());
}

#[test]
fn append_under_kill_and_partition_is_strict_serializable() {
    let (_results, output) = keel_run("append", "kill,partition", "10");
    assert_verdict(&output, "valid");
    assert!(
        output.stdout.contains("append: valid (strict serializable"),
        "{}",
        output.stdout
    );
    let dir = output.run_dir.expect("run directory");
    let history = std::fs::read_to_string(dir.join("history.jsonl")).expect("history.jsonl");
    assert!(history.contains("\"append\"") && history.contains("\"type\":\"ok\""));
}

#[test]
fn lock_without_faults_excludes() {
    let (_results, output) = keel_run("lock", "none", "8");
    assert_verdict(&output, "valid");
}

#[test]
fn lock_under_pauses_reports_its_failure_rate() {
    let (_results, output) = keel_run("lock", "pause", "12");
    assert!(
        matches!(output.code, Some(0) | Some(1)),
        "no verdict: {output:?}"
    );
    let dir = output.run_dir.expect("run directory");
    let verdict = std::fs::read_to_string(dir.join("verdict.json")).expect("verdict.json");
    assert!(verdict.contains("overlap_rate"), "{verdict}");
    let summary = output
        .stdout
        .lines()
        .find(|l| l.starts_with("lock: "))
        .unwrap_or_default();
    eprintln!("lock under pauses: {summary}");
}
