//! A cluster of real `keel` or `etcd` processes: 1 or 3 members started
//! with the same etcd flags on free loopback ports, data and logs in a
//! temporary directory, killed and removed on drop. A member can be
//! killed (SIGKILL) and restarted on its own data directory and ports.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use etcd_client::{Client, ConnectOptions};

use super::processes::{self, ProcessId};

/// How long a started cluster may take to accept a put.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which server a cluster runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// keel.
    Keel,
    /// etcd.
    Etcd,
}

impl Flavor {
    /// Lower-case name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Keel => "keel",
            Flavor::Etcd => "etcd",
        }
    }
}

/// How every member of a cluster is started.
#[derive(Clone, Debug)]
struct Launch {
    program: PathBuf,
    client_urls: Vec<String>,
    peer_urls: Vec<String>,
    initial_cluster: String,
    /// Flags added after the common ones (e.g. `--snapshot-count`).
    extra_args: Vec<String>,
}

/// A running cluster.
pub struct Cluster {
    /// Which server runs.
    pub flavor: Flavor,
    /// Client URLs, one per member (`http://127.0.0.1:<port>`).
    pub endpoints: Vec<String>,
    /// The running process of each member (`None` while killed).
    processes: Vec<Option<ProcessId>>,
    launch: Launch,
    dir: tempfile::TempDir,
}

/// A free loopback port (bound, read, released).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Cluster {
    /// Starts `members` members of `program` as one new cluster and waits
    /// until it accepts a put. Errors with the members' logs when a
    /// process cannot start, exits, or the cluster is not ready within
    /// [`START_TIMEOUT`].
    pub async fn start(flavor: Flavor, program: &Path, members: usize) -> Result<Cluster> {
        Cluster::start_with_args(flavor, program, members, &[]).await
    }

    /// [`Cluster::start`], each member also given `extra_args` (flags both
    /// servers take, e.g. `--snapshot-count 100000`).
    pub async fn start_with_args(
        flavor: Flavor,
        program: &Path,
        members: usize,
        extra_args: &[String],
    ) -> Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("keel-bench-{}-", flavor.name()))
            .tempdir()
            .context("cannot create a temporary directory")?;
        let mut client_urls = Vec::new();
        let mut peer_urls = Vec::new();
        for _ in 0..members {
            client_urls.push(format!("http://127.0.0.1:{}", free_port()?));
            peer_urls.push(format!("http://127.0.0.1:{}", free_port()?));
        }
        let initial_cluster = peer_urls
            .iter()
            .enumerate()
            .map(|(i, url)| format!("m{i}={url}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            flavor,
            endpoints: client_urls.clone(),
            processes: vec![None; members],
            launch: Launch {
                program: program.to_path_buf(),
                client_urls,
                peer_urls,
                initial_cluster,
                extra_args: extra_args.to_vec(),
            },
            dir,
        };
        for i in 0..members {
            cluster.spawn_member(i)?;
        }
        cluster.wait_ready().await?;
        Ok(cluster)
    }

    /// Starts member `i`'s process (on its existing data, if any).
    fn spawn_member(&mut self, i: usize) -> Result<()> {
        let mut command = member_command(&self.launch, self.dir.path(), i)?;
        let id = processes::spawn(&mut command, Some(self.dir.path().to_path_buf()))?;
        self.processes[i] = Some(id);
        Ok(())
    }

    /// Kills member `i` with SIGKILL (no chance to flush or close
    /// anything) and reaps it; its data directory stays.
    pub fn kill_member(&mut self, i: usize) {
        if let Some(id) = self.processes.get_mut(i).and_then(Option::take) {
            processes::kill(id);
        }
    }

    /// Starts member `i` again with the same flags, ports and data
    /// directory; returns without waiting for it to serve. Errors when
    /// `i` is not a member or its process cannot be started.
    pub fn restart_member(&mut self, i: usize) -> Result<()> {
        if i >= self.processes.len() {
            bail!("no member {i} in a cluster of {}", self.processes.len());
        }
        self.kill_member(i);
        self.spawn_member(i)
    }

    /// Member `i`'s operating system process id (`None` while it is
    /// killed or when there is no member `i`).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.processes
            .get(i)
            .copied()
            .flatten()
            .and_then(processes::pid)
    }

    /// Member `i`'s data directory (`--data-dir`).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("m{i}.data"))
    }

    /// An error naming the member that exited, with every member's log,
    /// or `Ok` while every started member runs.
    pub fn check_running(&self) -> Result<()> {
        for id in self.processes.iter().flatten() {
            if let Some(status) = processes::exited(*id) {
                bail!(
                    "{} exited with {status}:\n{}",
                    self.flavor.name(),
                    self.logs()
                );
            }
        }
        Ok(())
    }

    /// Waits until the cluster accepts a put (it has a leader).
    async fn wait_ready(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            self.check_running()?;
            let options = ConnectOptions::new()
                .with_connect_timeout(Duration::from_secs(1))
                .with_timeout(Duration::from_secs(2));
            if let Ok(mut client) = Client::connect(&self.endpoints, Some(options)).await
                && client.put("keel-bench/ready", "1", None).await.is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "{} did not accept a put within {START_TIMEOUT:?}:\n{}",
            self.flavor.name(),
            self.logs()
        )
    }

    /// Every member's log (for error messages).
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for i in 0..self.processes.len() {
            let log = std::fs::read_to_string(self.dir.path().join(format!("m{i}.log")))
                .unwrap_or_default();
            text.push_str(&format!("---- m{i} ----\n{log}"));
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.processes.len() {
            self.kill_member(i);
        }
    }
}

/// The command of member `i`: etcd's flags, then `launch.extra_args`, log
/// appended to `dir/m<i>.log`, data in `dir/m<i>.data`, the caller's
/// `ETCD_*` variables removed (both servers read them as flags).
fn member_command(launch: &Launch, dir: &Path, i: usize) -> Result<Command> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("m{i}.log")))
        .context("cannot create a log file")?;
    let mut command = Command::new(&launch.program);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("ETCD_") || text.starts_with("ETCDCTL_") {
            command.env_remove(&name);
        }
    }
    let data: PathBuf = dir.join(format!("m{i}.data"));
    let (client_url, peer_url) = (&launch.client_urls[i], &launch.peer_urls[i]);
    command
        .args(["--name", &format!("m{i}"), "--data-dir"])
        .arg(data)
        .args(["--listen-client-urls", client_url])
        .args(["--advertise-client-urls", client_url])
        .args(["--listen-peer-urls", peer_url])
        .args(["--initial-advertise-peer-urls", peer_url])
        .args(["--initial-cluster", &launch.initial_cluster])
        .args(["--initial-cluster-state", "new"])
        .args(&launch.extra_args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share a log file")?)
        .stderr(log);
    Ok(command)
}
