//! The register workload against 3 real keel members under each fault, a
//! short run each (10 s): every run must be `valid` (`disk` and `member`
//! and `clock` included). Also: bad arguments
//! are refused with exit 2, and an interrupted run (SIGTERM) leaves no
//! member process or namespace behind.

mod support;

use std::time::Duration;

use support::{assert_verdict, keel_binary, run};

/// Wall-time bound of one 10 s run (start, recovery, check included).
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Runs the register workload under `nemesis`; returns `faults.json`.
fn register_run(nemesis: &str) -> String {
    let results = tempfile::tempdir().expect("temporary directory");
    let keel = keel_binary();
    let args = [
        "--time-limit",
        "10",
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
    assert_verdict(&output, "valid");
    let run_dir = output.run_dir.expect("the run printed its directory");
    for file in [
        "history.jsonl",
        "verdict.json",
        "faults.json",
        "n1.keel.log",
    ] {
        assert!(
            run_dir.join(file).exists(),
            "{file} missing in {}",
            run_dir.display()
        );
    }
    let faults = std::fs::read_to_string(run_dir.join("faults.json")).expect("faults.json");
    if nemesis != "none" {
        assert!(
            faults.contains("start_ns"),
            "no fault was injected: {faults}"
        );
    }
    faults
}

#[test]
fn no_faults_is_valid() {
    register_run("none");
}

#[test]
fn kill_is_valid() {
    register_run("kill");
}

#[test]
fn pause_is_valid() {
    register_run("pause");
}

/// `auto` picks namespaces with root, TCP proxies without; every cut must
/// hold (no write through the minority succeeds during it).
#[test]
fn partition_is_valid_and_holds() {
    let faults = register_run("partition");
    assert!(faults.contains("cut by "), "{faults}");
    assert!(
        faults.contains("served no write during the cut"),
        "{faults}"
    );
    assert!(!faults.contains("did not hold"), "{faults}");
}

#[test]
fn leader_kill_pause_partition_is_valid() {
    register_run("leader,kill,pause,partition");
}

#[test]
fn member_remove_and_re_add_is_valid() {
    let faults = register_run("member");
    assert!(faults.contains("added back as new member"), "{faults}");
}

/// The damaged member must repair its log or refuse to start (then it is
/// replaced); either way the data must stay right (`valid`).
#[test]
fn disk_damage_is_valid_and_says_how_the_member_took_it() {
    let faults = register_run("disk");
    assert!(
        faults.contains("started on the damaged log") || faults.contains("refused to start"),
        "{faults}"
    );
    for line in faults
        .lines()
        .filter(|l| l.contains("refused") || l.contains("started on") || l.contains(".wal"))
    {
        eprintln!("disk fault: {}", line.trim());
    }
}

/// A member restarted with its ticks slowed or sped up, then at the normal
/// rate: the data must stay right (`valid`).
#[test]
fn clock_skew_is_valid_and_says_the_tick_rate() {
    let faults = register_run("clock");
    assert!(
        faults.contains("--heartbeat-interval=") && faults.contains("normal tick rate"),
        "{faults}"
    );
}

#[test]
fn unknown_fault_and_faults_on_endpoints_are_refused() {
    let results = tempfile::tempdir().expect("temporary directory");
    let output = run(&["--nemesis", "flood"], results.path(), RUN_LIMIT);
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(output.stderr.contains("unknown fault"), "{output:?}");
    let output = run(
        &["--endpoints", "http://127.0.0.1:1", "--nemesis", "kill"],
        results.path(),
        RUN_LIMIT,
    );
    assert_eq!(output.code, Some(2), "{output:?}");
    assert!(output.stderr.contains("refused"), "{output:?}");
}

#[test]
fn sigterm_cleans_up_members_and_namespaces() {
    let results = tempfile::tempdir().expect("temporary directory");
    let keel = keel_binary();
    let mut child = std::process::Command::new(support::runner_binary())
        .args(["--time-limit", "60", "--nemesis", "partition", "--keel-bin"])
        .arg(&keel)
        .arg("--results")
        .arg(results.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start keel-jepsen");
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(6));
    let prefix = format!("kj{pid}-");
    let bridge = format!("kjb{pid}");
    assert!(
        !support::nothing_left_of(&prefix),
        "the run made no namespaces"
    );
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    let status = child.wait().expect("wait for keel-jepsen");
    assert_eq!(status.code(), Some(2), "an interrupted run is unknown");
    assert!(support::nothing_left_of(&prefix), "namespaces left behind");
    assert!(support::nothing_left_of(&bridge), "bridge left behind");
    let members = std::process::Command::new("pgrep")
        .args(["-f", &results.path().display().to_string()])
        .output()
        .expect("pgrep");
    assert!(members.stdout.is_empty(), "member processes left behind");
}
