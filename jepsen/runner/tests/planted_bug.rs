//! A keel built with `planted-bug-read-without-readindex` (linearizable
//! reads answered from the member's own state, without ReadIndex) must be
//! reported `invalid` under partitions: a minority member serves stale
//! reads. Building that keel costs a full server build, so the test runs
//! only with `KEEL_JEPSEN_PLANTED_BUG=1` (scripts/jepsen.sh sets it); it
//! builds into `$KEEL_JEPSEN_PLANTED_TARGET` (default
//! `target/jepsen-planted`), or takes a prebuilt one from
//! `KEEL_JEPSEN_PLANTED_BIN`. Without the variable it says it did not run.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{assert_verdict, run};

const ENABLE_ENV: &str = "KEEL_JEPSEN_PLANTED_BUG";
const RUN_LIMIT: Duration = Duration::from_secs(180);

/// Builds keel with the planted bug; returns the binary.
fn build_planted_keel() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("KEEL_JEPSEN_PLANTED_TARGET")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target/jepsen-planted"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&workspace)
        .args(["build", "--locked", "-p", "keel-server", "--bin", "keel"])
        .args(["--features", "planted-bug-read-without-readindex"])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the planted-bug keel failed");
    target.join("debug/keel")
}

#[test]
fn read_without_readindex_is_invalid_under_partitions() {
    if std::env::var_os(ENABLE_ENV).is_none() {
        eprintln!(
            "NOT RUN: set {ENABLE_ENV}=1 to build the planted-bug keel and run this test (scripts/jepsen.sh)"
        );
        return;
    }
    let keel = match std::env::var_os("KEEL_JEPSEN_PLANTED_BIN") {
        Some(path) => PathBuf::from(path),
        None => build_planted_keel(),
    };
    let results = tempfile::tempdir().expect("temporary directory");
    let args = [
        "--time-limit",
        "20",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "3",
        "--concurrency",
        "9",
        "--keel-bin",
        keel.to_str().expect("utf-8 path"),
    ];
    let output = run(&args, results.path(), RUN_LIMIT);
    assert_verdict(&output, "invalid");
}
