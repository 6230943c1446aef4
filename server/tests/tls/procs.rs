//! keel or etcd processes started with TLS flags on free loopback ports,
//! each member's flags chosen by the test; killed on drop. Every wait is
//! bounded.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::cluster::{Flavor, keel_binary};
use crate::support::{CmdOutput, Etcdctl, free_port, remove_etcd_environment};

/// How long members may take to become healthy.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two probes of a condition.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// One member's addresses, files and process.
pub struct Node {
    /// `m0`, `m1`, ...
    pub name: String,
    /// Its client URL (`http://` or `https://`).
    pub client_url: String,
    /// Its peer URL.
    pub peer_url: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its stdout and stderr.
    pub log_path: PathBuf,
    child: Option<Child>,
}

/// Members of one cluster, started by the test one by one.
pub struct Procs {
    /// The members.
    pub nodes: Vec<Node>,
    flavor: Flavor,
    dir: tempfile::TempDir,
}

impl Procs {
    /// `size` members of `flavor` on free ports with `client_scheme` and
    /// `peer_scheme` (`http` or `https`) URLs; none started yet.
    pub fn new(flavor: Flavor, size: usize, client_scheme: &str, peer_scheme: &str) -> Procs {
        let dir = tempfile::tempdir().unwrap();
        let url = |scheme: &str| format!("{scheme}://127.0.0.1:{}", free_port().unwrap());
        let nodes = (0..size)
            .map(|i| Node {
                name: format!("m{i}"),
                client_url: url(client_scheme),
                peer_url: url(peer_scheme),
                data_dir: dir.path().join(format!("m{i}.data")),
                log_path: dir.path().join(format!("m{i}.log")),
                child: None,
            })
            .collect();
        Procs { nodes, flavor, dir }
    }

    /// A directory for the test's files, removed with the members.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// `--initial-cluster` of every member.
    pub fn initial_cluster(&self) -> String {
        self.initial_cluster_of(self.nodes.len())
    }

    /// `--initial-cluster` of the first `count` members.
    pub fn initial_cluster_of(&self, count: usize) -> String {
        self.nodes[..count]
            .iter()
            .map(|n| format!("{}={}", n.name, n.peer_url))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts member `i` with its flags and `extra` ones, without waiting.
    pub fn start(&mut self, i: usize, extra: &[String]) {
        self.start_with_env(i, extra, &[]);
    }

    /// Starts member `i` as one of a new cluster of the first `count`
    /// members, with `extra` flags, without waiting.
    pub fn start_in(&mut self, i: usize, count: usize, extra: &[String]) {
        let command = self.command(i, &self.initial_cluster_of(count), extra);
        self.spawn(i, command);
    }

    /// Starts member `i` joining the cluster of the members before it
    /// (added beforehand with `member add`), with `extra` flags.
    pub fn start_joining(&mut self, i: usize, extra: &[String]) {
        let mut command = self.command(i, &self.initial_cluster_of(i + 1), extra);
        command.arg("--initial-cluster-state=existing");
        self.spawn(i, command);
    }

    fn spawn(&mut self, i: usize, mut command: Command) {
        self.nodes[i].child = Some(command.spawn().unwrap());
    }

    /// As [`Procs::start`], with `env` (`ETCD_*` variables) set.
    pub fn start_with_env(&mut self, i: usize, extra: &[String], env: &[(&str, &Path)]) {
        let mut command = self.command(i, &self.initial_cluster(), extra);
        command.envs(env.iter().copied());
        self.nodes[i].child = Some(command.spawn().unwrap());
    }

    /// Waits until member `i` exits on its own; `None` when `timeout`
    /// passes first.
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.nodes[i].child.as_mut().unwrap();
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            thread::sleep(PROBE_INTERVAL);
        }
        None
    }

    fn command(&self, i: usize, cluster: &str, extra: &[String]) -> Command {
        let node = &self.nodes[i];
        let program = match self.flavor {
            Flavor::Keel => keel_binary(),
            Flavor::Etcd => PathBuf::from("etcd"),
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_path)
            .unwrap();
        let mut command = Command::new(program);
        remove_etcd_environment(&mut command);
        command
            .arg(format!("--name={}", node.name))
            .arg(format!("--data-dir={}", node.data_dir.display()))
            .arg(format!("--listen-client-urls={}", node.client_url))
            .arg(format!("--advertise-client-urls={}", node.client_url))
            .arg(format!("--listen-peer-urls={}", node.peer_url))
            .arg(format!("--initial-advertise-peer-urls={}", node.peer_url))
            .arg(format!("--initial-cluster={cluster}"))
            .arg("--initial-cluster-token=keel-tls")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        command
    }

    /// An etcdctl for member `i` passing `tls` (e.g. `--cacert=...`)
    /// before every command.
    pub fn ctl(&self, i: usize, tls: &[String]) -> Ctl {
        Ctl {
            etcdctl: Etcdctl::new(&self.nodes[i].client_url),
            tls: tls.to_vec(),
        }
    }

    /// Waits until member `i` answers `endpoint health` through `ctl`.
    /// Panics with the logs when it exits or `START_TIMEOUT` passes.
    pub fn wait_healthy(&mut self, i: usize, ctl: &Ctl) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            self.assert_running(i);
            if ctl
                .run(&["endpoint", "health", "--command-timeout=1s"])
                .success()
            {
                return;
            }
            thread::sleep(PROBE_INTERVAL);
        }
        panic!("member {i} not healthy in time:\n{}", self.logs());
    }

    /// Panics with the logs when member `i` has exited.
    pub fn assert_running(&mut self, i: usize) {
        let child = self.nodes[i].child.as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            panic!("member {i} exited with {status}:\n{}", self.logs());
        }
    }

    /// Waits until member `i`'s log contains `text`; false when
    /// `timeout` passes first.
    pub fn wait_log(&self, i: usize, text: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.log(i).contains(text) {
                return true;
            }
            thread::sleep(PROBE_INTERVAL);
        }
        false
    }

    /// Member `i`'s log so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log_path).unwrap_or_default()
    }

    /// Every member's log tail, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let log = self.log(i);
            let tail: String = log
                .chars()
                .rev()
                .take(4000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            text.push_str(&format!("---- {} ----\n{tail}\n", node.name));
        }
        text
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// etcdctl with TLS flags.
pub struct Ctl {
    etcdctl: Etcdctl,
    tls: Vec<String>,
}

impl Ctl {
    /// Runs `etcdctl <tls flags> <args>` (bounded by the support module).
    pub fn run(&self, args: &[&str]) -> CmdOutput {
        let mut all: Vec<&str> = self.tls.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        self.etcdctl.run(&all).unwrap()
    }

    /// Runs `args` and returns stdout; panics with both streams on failure.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.success(),
            "etcdctl {args:?} failed: {}{}",
            out.stdout,
            out.stderr
        );
        out.stdout
    }
}
