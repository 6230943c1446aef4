//! Runs the `keel-jepsen` binary in a test: bounded wall time, results in a
//! temporary directory, one run at a time per test binary (two cores are
//! shared by every member). The keel binary is `$KEEL_BIN` or `keel` next
//! to `keel-jepsen` (cargo builds it with the workspace).
#![allow(dead_code)] // each test binary uses its own part

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Serializes runs inside one test binary.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct RunOutput {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// The last line of stdout: the verdict.
    pub verdict: String,
    /// All of stdout.
    pub stdout: String,
    /// All of stderr.
    pub stderr: String,
    /// The run's result directory (inside the test's temporary directory).
    pub run_dir: Option<PathBuf>,
}

/// The `keel-jepsen` binary cargo built for this test.
pub fn runner_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keel-jepsen"))
}

/// The keel binary: `$KEEL_BIN`, else `keel` beside `keel-jepsen`. Panics
/// (the test fails) with the command that builds it when it is missing.
pub fn keel_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KEEL_BIN") {
        return PathBuf::from(path);
    }
    let path = runner_binary().with_file_name("keel");
    assert!(
        path.exists(),
        "no keel binary at {}: run `cargo build -p keel-server --bin keel` first (or set KEEL_BIN)",
        path.display()
    );
    path
}

/// Runs `keel-jepsen args` with `--results` in `results`, killing it after
/// `limit`. Panics if it could not be started or overran its limit.
pub fn run(args: &[&str], results: &Path, limit: Duration) -> RunOutput {
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut child = Command::new(runner_binary())
        .args(args)
        .arg("--results")
        .arg(results)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keel-jepsen");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for keel-jepsen") {
            break status;
        }
        if Instant::now() > deadline {
            // SIGTERM lets the runner clean up its members and namespaces.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            panic!("keel-jepsen {args:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    let verdict = stdout.lines().last().unwrap_or_default().to_owned();
    let run_dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .map(PathBuf::from);
    RunOutput {
        code: status.code(),
        verdict,
        stdout,
        stderr,
        run_dir,
    }
}

/// Panics with the run's output and member logs unless it was `expected`
/// with the matching exit code.
pub fn assert_verdict(output: &RunOutput, expected: &str) {
    let code = match expected {
        "valid" => 0,
        "invalid" => 1,
        _ => 2,
    };
    if output.verdict == expected && output.code == Some(code) {
        return;
    }
    let mut logs = String::new();
    if let Some(dir) = &output.run_dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".log") {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                logs += &format!(
                    "--- {name} (last lines, newest first)\n{}\n",
                    tail.join("\n")
                );
            }
        }
    }
    panic!(
        "expected {expected} (exit {code}), got {:?} (exit {:?})\nstdout:\n{}\nstderr:\n{}\n{logs}",
        output.verdict, output.code, output.stdout, output.stderr
    );
}

/// Whether no network namespace or bridge of the run with process id
/// `pid` is left behind.
pub fn nothing_left_of(pid_prefix: &str) -> bool {
    let namespaces = Command::new("ip").args(["netns", "list"]).output();
    let links = Command::new("ip").args(["-o", "link"]).output();
    let text = |o: std::io::Result<std::process::Output>| {
        o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    !text(namespaces).contains(pid_prefix) && !text(links).contains(pid_prefix)
}
