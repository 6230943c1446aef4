//! Server processes for the benchmarks that compare keel with etcd: a
//! cluster of real `keel` or `etcd` processes started with the same etcd
//! flags on free loopback ports, data in a temporary directory, killed on
//! drop.

#![allow(dead_code)] // each benchmark uses part of it

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Which server a [`Cluster`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Real etcd from PATH (Debian's `etcd-server`).
    Etcd,
    /// keel: `$KEEL_BIN`, else this workspace's `target/release/keel`.
    Keel,
}

impl Flavor {
    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Etcd => "etcd",
            Flavor::Keel => "keel",
        }
    }

    /// The program to run.
    pub fn program(self) -> PathBuf {
        match self {
            Flavor::Etcd => PathBuf::from("etcd"),
            Flavor::Keel => keel_binary(),
        }
    }
}

/// `$KEEL_BIN`, else `target/release/keel` of this workspace.
pub fn keel_binary() -> PathBuf {
    match std::env::var_os("KEEL_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/keel"),
    }
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Keeps a child's environment free of the caller's `ETCD_*`/`ETCDCTL_*`
/// variables, which both servers read as flags.
pub fn remove_etcd_environment(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("ETCD_") || text.starts_with("ETCDCTL_") {
            command.env_remove(&name);
        }
    }
}

/// One member: its URLs and, while it runs, its process.
pub struct Member {
    /// Member name (`m0`, ...).
    pub name: String,
    /// `http://127.0.0.1:<port>` serving clients.
    pub client_url: String,
    /// `http://127.0.0.1:<port>` serving peers.
    pub peer_url: String,
    child: Option<Child>,
}

/// A cluster of real server processes on loopback.
pub struct Cluster {
    /// Which server runs.
    pub flavor: Flavor,
    /// The members, in start order.
    pub members: Vec<Member>,
    initial_cluster: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `size` members of `flavor` as one new cluster (not waiting
    /// for them to serve). Panics when a process cannot be started.
    pub fn start(flavor: Flavor, size: usize) -> Cluster {
        let members: Vec<Member> = (0..size)
            .map(|i| Member {
                name: format!("m{i}"),
                client_url: format!("http://127.0.0.1:{}", free_port()),
                peer_url: format!("http://127.0.0.1:{}", free_port()),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            flavor,
            members,
            initial_cluster,
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        for i in 0..size {
            cluster.spawn(i);
        }
        cluster
    }

    /// Starts member `i`'s process (again, after [`Cluster::kill`]) on its
    /// ports and data directory.
    pub fn spawn(&mut self, i: usize) {
        let member = &self.members[i];
        let log_path = self.dir.path().join(format!("{}.log", member.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("a log file");
        let mut command = Command::new(self.flavor.program());
        remove_etcd_environment(&mut command);
        command
            .args(["--name", &member.name, "--data-dir"])
            .arg(self.dir.path().join(format!("{}.data", member.name)))
            .args(["--listen-client-urls", &member.client_url])
            .args(["--advertise-client-urls", &member.client_url])
            .args(["--listen-peer-urls", &member.peer_url])
            .args(["--initial-advertise-peer-urls", &member.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.flavor.program().display()));
        self.members[i].child = Some(child);
    }

    /// Kills member `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every member's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for member in &self.members {
            let path = self.dir.path().join(format!("{}.log", member.name));
            let log = std::fs::read_to_string(path).unwrap_or_default();
            text.push_str(&format!("---- {} ----\n{log}", member.name));
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
