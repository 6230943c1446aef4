//! Test support shared by keel-server's integration tests: start a real etcd
//! on free loopback ports in a temporary directory, run `etcdctl` against any
//! endpoint capturing its output, and stop everything on drop. Every wait is
//! bounded.
//!
//! - [`cluster`]: 1- or 3-member clusters of etcd or keel processes with the
//!   same flags; kill -9 and restart.
//! - [`session`]: etcdctl sessions played against a fresh etcd and a fresh
//!   keel, transcripts compared after [`normalize`].
//! - [`client`]: etcd-client helpers (connect, find the leader).
//! - [`metrics`]: `GET /metrics` (and other plain HTTP) and bounded waits
//!   on the values.
//!
//! etcd and etcdctl come from Debian's `etcd-server` and `etcd-client`
//! packages, installed by `scripts/setup.sh`; tests fail when they are missing
//! unless `KEEL_ALLOW_MISSING_ETCD=1`. `KEEL_BIN` runs another keel binary
//! than the one cargo built for the test.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod client;
pub mod cluster;
pub mod metrics;
pub mod normalize;
pub mod session;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a started etcd may take to answer `endpoint health`.
pub const ETCD_START_TIMEOUT: Duration = Duration::from_secs(20);
/// Hard limit for one etcdctl run (etcdctl's own command timeout is shorter).
pub const ETCDCTL_TIMEOUT: Duration = Duration::from_secs(15);
/// Port choices tried before giving up on starting etcd.
const START_ATTEMPTS_MAX: usize = 3;

/// Whether a program is on PATH (and runs).
pub fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Set to `1` to let tests that need etcd/etcdctl skip (with a message)
/// when they are missing, instead of failing.
pub const ALLOW_MISSING_ETCD_ENV: &str = "KEEL_ALLOW_MISSING_ETCD";

/// Whether etcd and etcdctl are installed. When they are not, panics (so CI
/// fails loudly) unless `KEEL_ALLOW_MISSING_ETCD=1`, then prints why `test`
/// is skipped and returns false.
pub fn require_etcd(test: &str) -> bool {
    if installed("etcd") && installed("etcdctl") {
        return true;
    }
    let why = "etcd/etcdctl not installed (scripts/setup.sh installs Debian's etcd-server and etcd-client)";
    cannot_run(test, why, ALLOW_MISSING_ETCD_ENV);
    false
}

/// Set to `1` to let tests that need root (a tmpfs mount) skip, with a
/// message, instead of failing.
pub const ALLOW_UNPRIVILEGED_ENV: &str = "KEEL_ALLOW_UNPRIVILEGED";

/// `test` cannot run here because of `why`: panics, so that no test passes
/// without running, unless the variable `allow` is `1`; then prints
/// `SKIPPED test: why` and returns (the caller returns too).
pub fn cannot_run(test: &str, why: &str, allow: &str) {
    if std::env::var(allow).as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: {why}");
        return;
    }
    panic!("{test}: {why}; set {allow}=1 to skip instead");
}

/// Starts etcd, or returns `None` when etcd/etcdctl are missing and
/// [`require_etcd`] allows skipping. Panics if etcd is installed but fails.
pub fn start_etcd_or_skip(test: &str) -> Option<EtcdProcess> {
    if !require_etcd(test) {
        return None;
    }
    Some(EtcdProcess::start().expect("start etcd"))
}

/// A free TCP port on 127.0.0.1 (free when asked; another process may take it
/// before it is used, which [`EtcdProcess::start`] survives by retrying).
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A single-member etcd cluster running as a child process.
pub struct EtcdProcess {
    child: Child,
    dir: tempfile::TempDir,
    client_url: String,
}

impl EtcdProcess {
    /// Starts `etcd` named `test` with its data and log in a fresh temporary
    /// directory, and waits until `etcdctl endpoint health` succeeds.
    pub fn start() -> io::Result<EtcdProcess> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS_MAX {
            match Self::start_once() {
                Ok(etcd) => return Ok(etcd),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("etcd did not start")))
    }

    fn start_once() -> io::Result<EtcdProcess> {
        let dir = tempfile::tempdir()?;
        let client_url = format!("http://127.0.0.1:{}", free_port()?);
        let peer_url = format!("http://127.0.0.1:{}", free_port()?);
        let log = File::create(dir.path().join("etcd.log"))?;
        let mut command = Command::new("etcd");
        command
            .args(["--name", "test", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("test={peer_url}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        remove_etcd_environment(&mut command);
        let child = command.spawn()?;
        let mut etcd = EtcdProcess {
            child,
            dir,
            client_url,
        };
        etcd.wait_healthy()?;
        Ok(etcd)
    }

    fn wait_healthy(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + ETCD_START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "etcd exited with {status}:\n{}",
                    self.log()
                )));
            }
            let probe = self
                .etcdctl()
                .run(&["endpoint", "health", "--command-timeout=1s"])?;
            if probe.success() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("etcd not healthy in time:\n{}", self.log()),
        ))
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    /// An etcdctl bound to this etcd.
    pub fn etcdctl(&self) -> Etcdctl {
        Etcdctl::new(&self.client_url)
    }

    /// The temporary directory holding data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// etcd's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        // SIGKILL, then reap: wait() returns promptly after a kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keeps a child's environment free of the caller's `ETCD_*`/`ETCDCTL_*`
/// variables, which would silently change flags.
pub fn remove_etcd_environment(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("ETCD_") || text.starts_with("ETCDCTL_") {
            command.env_remove(&name);
        }
    }
}

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded as UTF-8.
    pub stdout: String,
    /// Standard error, lossily decoded as UTF-8.
    pub stderr: String,
}

impl CmdOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// Runs etcdctl (v3 API) against one endpoint.
#[derive(Debug, Clone)]
pub struct Etcdctl {
    endpoint: String,
}

impl Etcdctl {
    /// An etcdctl for `endpoint` (e.g. `http://127.0.0.1:2379`).
    pub fn new(endpoint: &str) -> Etcdctl {
        Etcdctl {
            endpoint: endpoint.to_owned(),
        }
    }

    /// Runs `etcdctl --endpoints=<endpoint> <args>` with empty stdin.
    pub fn run(&self, args: &[&str]) -> io::Result<CmdOutput> {
        self.run_with_stdin(args, "")
    }

    /// Runs etcdctl feeding `stdin` (as `etcdctl txn -i` reads it).
    /// Errors: spawning failed, or it ran past [`ETCDCTL_TIMEOUT`] (then it is killed).
    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> io::Result<CmdOutput> {
        run_bounded(self.command(args), stdin, ETCDCTL_TIMEOUT)
    }

    /// Starts a long-running etcdctl (e.g. `watch`) in the background.
    pub fn spawn(&self, args: &[&str]) -> io::Result<Background> {
        Background::spawn(self.command(args))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("etcdctl");
        remove_etcd_environment(&mut command);
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint))
            .args(["--dial-timeout=2s", "--command-timeout=5s"])
            .args(args);
        command
    }
}

/// A long-running command (e.g. `etcdctl watch`) whose output is collected
/// while it runs; killed on drop.
pub struct Background {
    child: Child,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Background {
    /// Sends SIGINT (what Ctrl-C sends): etcdctl's `lock` and `elect`
    /// then release the lock or resign, and exit.
    pub fn interrupt(&self) -> io::Result<()> {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill -INT exited with {status}")))
        }
    }

    /// Spawns `command` with empty stdin, collecting stdout and stderr.
    pub fn spawn(mut command: Command) -> io::Result<Background> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stdout.take(), Arc::clone(&stdout));
        collect(child.stderr.take(), Arc::clone(&stderr));
        Ok(Background {
            child,
            stdout,
            stderr,
        })
    }

    /// Standard output so far.
    pub fn stdout(&self) -> String {
        let bytes = self.stdout.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Standard error so far.
    pub fn stderr(&self) -> String {
        let bytes = self.stderr.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until stdout holds at least `lines` lines, the command exits,
    /// or `timeout` passes, and says which came first.
    pub fn wait_lines(&mut self, lines: usize, timeout: Duration) -> Waited {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stdout().lines().count() >= lines {
                return Waited::Lines;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                // Let the reader threads take what the pipes still hold.
                thread::sleep(Duration::from_millis(100));
                return if self.stdout().lines().count() >= lines {
                    Waited::Lines
                } else {
                    Waited::Exited
                };
            }
            if Instant::now() >= deadline {
                return Waited::TimedOut;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How [`Background::wait_lines`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// The output reached the expected number of lines.
    Lines,
    /// The command exited first.
    Exited,
    /// The time limit passed first.
    TimedOut,
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends everything read from a pipe to `sink`, on a thread.
fn collect(pipe: Option<impl Read + Send + 'static>, sink: Arc<Mutex<Vec<u8>>>) {
    let Some(mut pipe) = pipe else {
        return;
    };
    thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buffer) {
            if n == 0 {
                break;
            }
            if let Ok(mut sink) = sink.lock() {
                sink.extend_from_slice(&buffer[..n]);
            }
        }
    });
}

/// Runs a command to completion with a time limit, capturing its output.
pub fn run_bounded(mut command: Command, stdin: &str, timeout: Duration) -> io::Result<CmdOutput> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{command:?} ran past {timeout:?}"),
            ));
        }
        thread::sleep(Duration::from_millis(5));
    };
    let join = |h: thread::JoinHandle<Vec<u8>>| {
        String::from_utf8_lossy(&h.join().unwrap_or_default()).into_owned()
    };
    Ok(CmdOutput {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

/// Reads a pipe to its end on a thread, so a chatty child never blocks on a full pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}
