//! A cluster of real server processes (keel or etcd) that the runner starts,
//! kills (SIGKILL) and restarts on the same data directory, pauses
//! (SIGSTOP) and resumes (SIGCONT). Members listen where the run's
//! [`MemberNetwork`] puts them: free ports on 127.0.0.1, their own
//! namespace's address, or their own loopback address behind a TCP proxy.
//! Every process is registered with [`crate::cleanup`] and killed when the
//! cluster drops.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cleanup;
use crate::member_network::MemberNetwork;

/// How to start one kind of server: the program and the cluster token.
#[derive(Debug, Clone)]
pub struct ServerProgram {
    /// The binary (keel or etcd); both take etcd's flags.
    pub path: PathBuf,
    /// Lower-case name for log file names (`keel`, `etcd`).
    pub name: &'static str,
}

/// One member's fixed identity: the same across restarts.
#[derive(Debug)]
pub struct Member {
    /// Name (`n1`, `n2`, ...).
    pub name: String,
    /// Client URL.
    pub client_url: String,
    /// Peer URL it advertises (`--initial-advertise-peer-urls`; with TCP
    /// proxies, its proxy's).
    pub peer_url: String,
    /// Peer URL it listens on (`--listen-peer-urls`).
    pub listen_peer_url: String,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// stdout and stderr, appended across restarts.
    pub log_path: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// Removed from the cluster (Cluster.MemberRemove) and wiped.
    removed: bool,
    /// Starts with `--initial-cluster-state existing` (re-added member).
    joins_existing: bool,
    /// Its Raft tick period as a percentage of the default (100: etcd's
    /// 100 ms heartbeat and 1000 ms election timeout; 50 ticks twice as
    /// fast, 300 three times slower); the `clock` fault sets it.
    tick_percent: u64,
}

/// The started cluster.
#[derive(Debug)]
pub struct Cluster {
    program: ServerProgram,
    members: Vec<Member>,
    initial_cluster: String,
    network: MemberNetwork,
}

fn pid_of(child: &Child) -> Option<Pid> {
    i32::try_from(child.id()).ok().map(Pid::from_raw)
}

impl Cluster {
    /// Starts `size` members of `program` with data directories and logs
    /// under `dir`, without waiting for them to be healthy, at the URLs
    /// `network` gives them ([`MemberNetwork::urls`]).
    /// Errors: a port, log file or process could not be had.
    pub fn start(
        program: ServerProgram,
        size: usize,
        dir: &Path,
        network: MemberNetwork,
    ) -> std::io::Result<Cluster> {
        let mut members = Vec::with_capacity(size);
        for i in 0..size {
            let name = format!("n{}", i + 1);
            let urls = network.urls(i)?;
            members.push(Member {
                data_dir: dir.join(format!("{name}.data")),
                log_path: dir.join(format!("{name}.{}.log", program.name)),
                name,
                client_url: urls.client,
                peer_url: urls.advertise_peer,
                listen_peer_url: urls.listen_peer,
                child: None,
                paused: false,
                removed: false,
                joins_existing: false,
                tick_percent: 100,
            });
        }
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            program,
            members,
            initial_cluster,
            network,
        };
        for i in 0..size {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    /// The members, in start order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Every member's client URL.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// The member network (cuts partitions).
    pub fn network_mut(&mut self) -> &mut MemberNetwork {
        &mut self.network
    }

    /// The member network.
    pub fn network(&self) -> &MemberNetwork {
        &self.network
    }

    fn command(&self, i: usize) -> Command {
        match self.network.namespace(i) {
            Some(namespace) => {
                let mut command = Command::new("ip");
                command
                    .args(["netns", "exec", namespace])
                    .arg(&self.program.path);
                command
            }
            None => Command::new(&self.program.path),
        }
    }

    fn spawn(&mut self, i: usize) -> std::io::Result<()> {
        let member = &self.members[i];
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log_path)?;
        let data_dir = member.data_dir.display().to_string();
        let state = match member.joins_existing {
            true => "existing",
            false => "new",
        };
        let flags = [
            ("name", member.name.as_str()),
            ("data-dir", data_dir.as_str()),
            ("listen-client-urls", member.client_url.as_str()),
            ("advertise-client-urls", member.client_url.as_str()),
            ("listen-peer-urls", member.listen_peer_url.as_str()),
            ("initial-advertise-peer-urls", member.peer_url.as_str()),
            ("initial-cluster", self.initial_cluster.as_str()),
            ("initial-cluster-token", "keel-jepsen"),
            ("initial-cluster-state", state),
        ];
        let mut command = self.command(i);
        for (flag, value) in flags {
            command.arg(format!("--{flag}")).arg(value);
        }
        if member.tick_percent != 100 {
            let (heartbeat_ms, election_ms) = tick_flags_ms(member.tick_percent);
            command
                .arg(format!("--heartbeat-interval={heartbeat_ms}"))
                .arg(format!("--election-timeout={election_ms}"));
        }
        // The member is configured by flags only.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(key);
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        cleanup::register_pid(child.id());
        self.members[i].child = Some(child);
        self.members[i].paused = false;
        Ok(())
    }

    /// Whether member `i` runs (started, not killed).
    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].child.is_some()
    }

    /// Whether member `i` is paused.
    pub fn is_paused(&self, i: usize) -> bool {
        self.members[i].paused
    }

    /// Kills member `i` with SIGKILL (nothing flushed) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            if let Some(pid) = pid_of(&child) {
                let _ = kill(pid, Signal::SIGCONT);
            }
            let _ = child.kill();
            let _ = child.wait();
            cleanup::forget_pid(child.id());
        }
        self.members[i].paused = false;
    }

    /// Starts killed member `i` again on its data directory and URLs.
    /// Errors: the process could not be started. A running or removed
    /// member is left alone.
    pub fn restart(&mut self, i: usize) -> std::io::Result<()> {
        if self.is_running(i) || self.is_removed(i) {
            return Ok(());
        }
        self.spawn(i)
    }

    /// Stops member `i` with SIGSTOP. Errors: not running, or kill(2) failed.
    pub fn pause(&mut self, i: usize) -> Result<(), String> {
        self.signal(i, Signal::SIGSTOP)?;
        self.members[i].paused = true;
        Ok(())
    }

    /// Continues member `i` with SIGCONT. Errors as [`Cluster::pause`].
    pub fn resume(&mut self, i: usize) -> Result<(), String> {
        self.signal(i, Signal::SIGCONT)?;
        self.members[i].paused = false;
        Ok(())
    }

    fn signal(&self, i: usize, signal: Signal) -> Result<(), String> {
        let pid = self.members[i]
            .child
            .as_ref()
            .and_then(pid_of)
            .ok_or_else(|| format!("member {} is not running", self.members[i].name))?;
        kill(pid, signal).map_err(|e| format!("kill -{signal} {pid}: {e}"))
    }

    /// Member `i` exited on its own (crashed, or refused to start):
    /// reaps it and returns its status.
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        let child = self.members[i].child.as_mut()?;
        let status = child.try_wait().ok().flatten()?;
        cleanup::forget_pid(child.id());
        self.members[i].child = None;
        Some(status)
    }

    /// Member `i`'s WAL directory (keel and etcd: `member/wal`).
    pub fn wal_dir(&self, i: usize) -> PathBuf {
        self.members[i].data_dir.join("member").join("wal")
    }

    /// Whether member `i` was removed from the cluster and not re-added.
    pub fn is_removed(&self, i: usize) -> bool {
        self.members[i].removed
    }

    /// Kills member `i` and deletes its data directory: what is left of a
    /// member removed with Cluster.MemberRemove. Errors: the directory
    /// could not be deleted.
    pub fn wipe(&mut self, i: usize) -> std::io::Result<()> {
        self.kill(i);
        self.members[i].removed = true;
        match std::fs::remove_dir_all(&self.members[i].data_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Starts wiped member `i` as a new member of the running cluster
    /// (after Cluster.MemberAdd): same name and URLs, an empty data
    /// directory, `--initial-cluster-state existing`. Errors: the process
    /// could not be started.
    pub fn rejoin(&mut self, i: usize) -> std::io::Result<()> {
        self.members[i].removed = false;
        self.members[i].joins_existing = true;
        self.kill(i);
        self.spawn(i)
    }

    /// Restarts member `i` with its Raft ticks at `tick_percent` of the
    /// default period (see [`tick_flags_ms`]): the `clock` fault, a member
    /// whose clock runs slow (above 100) or fast (below 100). Errors: the
    /// process could not be started.
    pub fn restart_with_ticks(&mut self, i: usize, tick_percent: u64) -> std::io::Result<()> {
        self.kill(i);
        self.members[i].tick_percent = tick_percent;
        self.spawn(i)
    }

    /// Kills every member.
    pub fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// etcd's default heartbeat interval, in milliseconds.
const HEARTBEAT_DEFAULT_MS: u64 = 100;
/// etcd's default election timeout, in milliseconds.
const ELECTION_DEFAULT_MS: u64 = 1000;

/// `--heartbeat-interval` and `--election-timeout` (milliseconds) of a
/// member whose ticks take `tick_percent` of the default period: both
/// scale together, as a member's timers do when its clock runs at another
/// rate, and keep etcd's 1:10 ratio.
pub fn tick_flags_ms(tick_percent: u64) -> (u64, u64) {
    let scale = |ms: u64| (ms * tick_percent / 100).max(1);
    (scale(HEARTBEAT_DEFAULT_MS), scale(ELECTION_DEFAULT_MS))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Processes first: a namespace with a process inside outlives `ip
        // netns del`.
        self.kill_all();
    }
}
