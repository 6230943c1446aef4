//! Real server processes for integration tests: a cluster of 1 or 3 members
//! of either real etcd or keel, started with the SAME etcd command-line flags
//! on free loopback ports, data in a temporary directory, killed on drop.
//!
//! Members can be killed with SIGKILL (`kill -9`) and restarted with the same
//! data directory and ports, which the durability tests use. Every wait is
//! bounded.

use std::fs::OpenOptions;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{Etcdctl, free_port, remove_etcd_environment};

/// How long a started (or restarted) cluster may take until every member
/// answers `etcdctl endpoint health`.
pub const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(40);
/// Port choices tried before giving up on starting a cluster.
const START_ATTEMPTS_MAX: usize = 3;
/// Pause between two health probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Which server a [`Cluster`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Real etcd (Debian `etcd-server`), the reference.
    Etcd,
    /// keel, the binary built from this crate.
    Keel,
}

impl Flavor {
    /// Lower-case name, used in messages and member names' log files.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Etcd => "etcd",
            Flavor::Keel => "keel",
        }
    }

    /// The program to run: `etcd` from PATH, or the `keel` binary cargo built
    /// for this test (`KEEL_BIN` overrides it).
    fn program(self) -> PathBuf {
        match self {
            Flavor::Etcd => PathBuf::from("etcd"),
            Flavor::Keel => keel_binary(),
        }
    }
}

/// The keel binary: `$KEEL_BIN` if set, else the one cargo built next to this
/// test (`CARGO_BIN_EXE_keel`). Panics when neither exists.
pub fn keel_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KEEL_BIN") {
        return PathBuf::from(path);
    }
    match option_env!("CARGO_BIN_EXE_keel") {
        Some(path) => PathBuf::from(path),
        None => panic!("the keel binary was not built with this test and KEEL_BIN is not set"),
    }
}

/// One member's fixed identity: name, URLs and data directory stay the same
/// across restarts.
#[derive(Debug)]
pub struct Member {
    /// Member name (`m0`, `m1`, ...).
    pub name: String,
    /// Client URL, e.g. `http://127.0.0.1:40123`.
    pub client_url: String,
    /// Peer URL.
    pub peer_url: String,
    /// Data directory (`--data-dir`).
    pub data_dir: PathBuf,
    /// Where the process's stdout and stderr go (appended across restarts).
    pub log_path: PathBuf,
    /// For a member added at runtime: the `--initial-cluster` it joins
    /// with (`--initial-cluster-state existing`); `None` for the founders.
    join: Option<String>,
    child: Option<Child>,
}

/// How members are launched, the same at start and on every restart.
#[derive(Clone, Debug, Default)]
struct Launch {
    /// Extra etcd flags for every member.
    extra_args: Vec<String>,
    /// Configure through `ETCD_*` variables instead of flags.
    via_environment: bool,
    /// Where data directories go; `None`: the cluster's temporary directory.
    data_root: Option<PathBuf>,
}

impl Launch {
    fn with_args(extra_args: &[&str]) -> Launch {
        Launch {
            extra_args: extra_args.iter().map(|a| (*a).to_owned()).collect(),
            ..Launch::default()
        }
    }
}

/// A cluster of real server processes on loopback.
pub struct Cluster {
    flavor: Flavor,
    launch: Launch,
    members: Vec<Member>,
    initial_cluster: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `size` members of `flavor` as one new cluster and waits until
    /// every member is healthy. Retries with fresh ports when a port was taken.
    /// Errors: a member exited or the cluster was not healthy in time.
    pub fn start(flavor: Flavor, size: usize) -> io::Result<Cluster> {
        Self::start_with(flavor, size, &[])
    }

    /// As [`Cluster::start`], passing `extra_args` (etcd flags, e.g.
    /// `--snapshot-count=20`) to every member, also on restart.
    pub fn start_with(flavor: Flavor, size: usize, extra_args: &[&str]) -> io::Result<Cluster> {
        Self::start_attempts(flavor, size, Launch::with_args(extra_args))
    }

    /// As [`Cluster::start_with`], with the members' data directories under
    /// `data_root` (e.g. a small file system) instead of the cluster's
    /// temporary directory.
    pub fn start_with_data_root(
        flavor: Flavor,
        size: usize,
        extra_args: &[&str],
        data_root: &std::path::Path,
    ) -> io::Result<Cluster> {
        let launch = Launch {
            data_root: Some(data_root.to_owned()),
            ..Launch::with_args(extra_args)
        };
        Self::start_attempts(flavor, size, launch)
    }

    /// As [`Cluster::start`], configuring members through `ETCD_*`
    /// environment variables instead of command-line flags.
    pub fn start_via_environment(flavor: Flavor, size: usize) -> io::Result<Cluster> {
        let launch = Launch {
            via_environment: true,
            ..Launch::default()
        };
        Self::start_attempts(flavor, size, launch)
    }

    fn start_attempts(flavor: Flavor, size: usize, launch: Launch) -> io::Result<Cluster> {
        assert!(size >= 1, "a cluster has at least one member");
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS_MAX {
            match Self::start_once(flavor, size, launch.clone()) {
                Ok(cluster) => return Ok(cluster),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("cluster did not start")))
    }

    fn start_once(flavor: Flavor, size: usize, launch: Launch) -> io::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let mut members = Vec::with_capacity(size);
        for i in 0..size {
            let name = format!("m{i}");
            let root = launch.data_root.as_deref().unwrap_or(dir.path());
            let data_dir = root.join(format!("{name}.data"));
            if data_dir.exists() {
                // A previous attempt on the same data root.
                std::fs::remove_dir_all(&data_dir)?;
            }
            members.push(Member {
                client_url: format!("http://127.0.0.1:{}", free_port()?),
                peer_url: format!("http://127.0.0.1:{}", free_port()?),
                data_dir,
                log_path: dir.path().join(format!("{name}.{}.log", flavor.name())),
                name,
                join: None,
                child: None,
            });
        }
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            flavor,
            launch,
            members,
            initial_cluster,
            dir,
        };
        for i in 0..size {
            cluster.spawn(i)?;
        }
        cluster.wait_all_healthy(CLUSTER_START_TIMEOUT)?;
        Ok(cluster)
    }

    /// Which server this cluster runs.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The members, in start order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The temporary directory holding every member's data and log.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// All client URLs, comma-separated (etcdctl's `--endpoints`).
    pub fn endpoints(&self) -> String {
        self.client_urls().join(",")
    }

    /// All client URLs.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// An etcdctl talking to every member.
    pub fn etcdctl(&self) -> Etcdctl {
        Etcdctl::new(&self.endpoints())
    }

    /// An etcdctl talking to member `i` only.
    pub fn member_etcdctl(&self, i: usize) -> Etcdctl {
        Etcdctl::new(&self.members[i].client_url)
    }

    /// Process id of member `i`, if it is running.
    #[allow(dead_code)] // not every test binary uses it
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// Whether member `i`'s process is running (started and not killed).
    pub fn is_running(&self, i: usize) -> bool {
        self.members[i].child.is_some()
    }

    /// Starts member `i`'s process with the cluster's flags and its own data
    /// directory (etcd and keel ignore the `--initial-*` flags when the data
    /// directory already holds a member).
    fn spawn(&mut self, i: usize) -> io::Result<()> {
        let member = &self.members[i];
        debug_assert!(member.child.is_none(), "member {i} is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log_path)?;
        let mut command = Command::new(self.flavor.program());
        remove_etcd_environment(&mut command);
        let data_dir = member.data_dir.display().to_string();
        let (initial_cluster, state) = match &member.join {
            Some(initial_cluster) => (initial_cluster.as_str(), "existing"),
            None => (self.initial_cluster.as_str(), "new"),
        };
        let settings = [
            ("name", member.name.as_str()),
            ("data-dir", data_dir.as_str()),
            ("listen-client-urls", member.client_url.as_str()),
            ("advertise-client-urls", member.client_url.as_str()),
            ("listen-peer-urls", member.peer_url.as_str()),
            ("initial-advertise-peer-urls", member.peer_url.as_str()),
            ("initial-cluster", initial_cluster),
            ("initial-cluster-token", "keel-e2e"),
            ("initial-cluster-state", state),
        ];
        for (flag, value) in settings {
            if self.launch.via_environment {
                // etcd's rule: ETCD_ + the flag in upper case, '-' as '_'.
                let name = format!("ETCD_{}", flag.to_uppercase().replace('-', "_"));
                command.env(name, value);
            } else {
                command.arg(format!("--{flag}")).arg(value);
            }
        }
        command
            .args(&self.launch.extra_args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = command.spawn()?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Names a member to add at runtime (`name`) with fresh ports, not yet
    /// started: its URLs go to `etcdctl member add`, then
    /// [`Cluster::join`] starts it. Returns its index.
    #[allow(dead_code)] // not every test binary uses it
    pub fn reserve_member(&mut self, name: &str) -> io::Result<usize> {
        self.members.push(Member {
            client_url: format!("http://127.0.0.1:{}", free_port()?),
            peer_url: format!("http://127.0.0.1:{}", free_port()?),
            data_dir: self.dir.path().join(format!("{name}.data")),
            log_path: self
                .dir
                .path()
                .join(format!("{name}.{}.log", self.flavor.name())),
            name: name.to_owned(),
            join: None,
            child: None,
        });
        Ok(self.members.len() - 1)
    }

    /// Starts reserved member `i` with `--initial-cluster-state existing`
    /// and `initial_cluster` (what `member add` printed), without waiting.
    #[allow(dead_code)] // not every test binary uses it
    pub fn join(&mut self, i: usize, initial_cluster: &str) -> io::Result<()> {
        self.members[i].join = Some(initial_cluster.to_owned());
        self.spawn(i)
    }

    /// Sends SIGTERM to member `i` (a graceful stop).
    #[allow(dead_code)] // not every test binary uses it
    pub fn terminate(&self, i: usize) -> io::Result<()> {
        self.signal(i, "TERM")
    }

    /// Waits (at most `timeout`) for member `i`'s process to exit on its
    /// own, and reaps it. Returns its exit status, `None` if it still runs.
    #[allow(dead_code)] // not every test binary uses it
    pub fn wait_exit(&mut self, i: usize, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(child) = self.members[i].child.as_mut() else {
                return Err(io::Error::other(format!("member {i} is not running")));
            };
            if let Some(status) = child.try_wait()? {
                self.members[i].child = None;
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Member `i`'s log so far.
    #[allow(dead_code)] // not every test binary uses it
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.members[i].log_path).unwrap_or_default()
    }

    /// Kills member `i` with SIGKILL (nothing is flushed) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts killed member `i` again on the same ports and data directory
    /// without waiting for it to be healthy (a test that watches it start).
    #[allow(dead_code)] // not every test binary uses it
    pub fn launch(&mut self, i: usize) -> io::Result<()> {
        self.spawn(i)
    }

    /// Stops member `i` with SIGSTOP (`kill -STOP`): it keeps its sockets
    /// and state but answers nothing until [`Cluster::resume`].
    #[allow(dead_code)] // not every test binary uses it
    pub fn pause(&self, i: usize) -> io::Result<()> {
        self.signal(i, "STOP")
    }

    /// Continues member `i` after [`Cluster::pause`] (SIGCONT).
    #[allow(dead_code)] // not every test binary uses it
    pub fn resume(&self, i: usize) -> io::Result<()> {
        self.signal(i, "CONT")
    }

    fn signal(&self, i: usize, signal: &str) -> io::Result<()> {
        let pid = self.members[i]
            .child
            .as_ref()
            .map(Child::id)
            .ok_or_else(|| io::Error::other(format!("member {i} is not running")))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        match status.success() {
            true => Ok(()),
            false => Err(io::Error::other(format!("kill -{signal} {pid}: {status}"))),
        }
    }

    /// Kills every member with SIGKILL.
    pub fn kill_all(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }

    /// Restarts a killed member `i` on the same ports and data directory and
    /// waits until it is healthy. Errors: it exited or was not healthy in time.
    pub fn restart(&mut self, i: usize) -> io::Result<()> {
        self.spawn(i)?;
        self.wait_healthy(i, Instant::now() + CLUSTER_START_TIMEOUT)
    }

    /// Restarts every killed member, then waits until all are healthy.
    pub fn restart_all(&mut self) -> io::Result<()> {
        for i in 0..self.members.len() {
            if !self.is_running(i) {
                self.spawn(i)?;
            }
        }
        self.wait_all_healthy(CLUSTER_START_TIMEOUT)
    }

    fn wait_all_healthy(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        for i in 0..self.members.len() {
            if self.is_running(i) {
                self.wait_healthy(i, deadline)?;
            }
        }
        Ok(())
    }

    /// Waits until member `i` answers `etcdctl endpoint health` (a
    /// linearizable read, so it also needs a leader), or `deadline` passes.
    pub fn wait_healthy(&mut self, i: usize, deadline: Instant) -> io::Result<()> {
        let ctl = self.member_etcdctl(i);
        while Instant::now() < deadline {
            self.check_alive(i)?;
            let probe = ctl.run(&["endpoint", "health", "--command-timeout=1s"])?;
            if probe.success() {
                return Ok(());
            }
            thread::sleep(PROBE_INTERVAL);
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "{} member {i} not healthy in time:\n{}",
                self.flavor.name(),
                self.logs()
            ),
        ))
    }

    /// Errors if member `i` was started and has exited on its own.
    fn check_alive(&mut self, i: usize) -> io::Result<()> {
        let flavor = self.flavor.name();
        let Some(child) = self.members[i].child.as_mut() else {
            return Err(io::Error::other(format!(
                "{flavor} member {i} is not running"
            )));
        };
        if let Some(status) = child.try_wait()? {
            self.members[i].child = None;
            return Err(io::Error::other(format!(
                "{flavor} member {i} exited with {status}:\n{}",
                self.logs()
            )));
        }
        Ok(())
    }

    /// Every member's log (the tail of each), for failure messages.
    pub fn logs(&self) -> String {
        const TAIL_BYTES: usize = 6000;
        let mut text = String::new();
        for m in &self.members {
            let log = std::fs::read_to_string(&m.log_path).unwrap_or_default();
            let start = log.len().saturating_sub(TAIL_BYTES);
            let start = (start..log.len())
                .find(|&b| log.is_char_boundary(b))
                .unwrap_or(log.len());
            text.push_str(&format!(
                "---- {} log of {} ----\n",
                self.flavor.name(),
                m.name
            ));
            text.push_str(&log[start..]);
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}
