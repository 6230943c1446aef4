//! A cluster of real `keel` or `etcd` processes for `compare`: 1 or 3
//! members started with the same etcd flags on free loopback ports, data
//! and logs in a temporary directory, killed and removed on drop.

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

/// A running cluster.
pub struct Cluster {
    /// Which server runs.
    pub flavor: Flavor,
    /// Client URLs, one per member (`http://127.0.0.1:<port>`).
    pub endpoints: Vec<String>,
    processes: Vec<ProcessId>,
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
            processes: Vec::new(),
            dir,
        };
        for i in 0..members {
            let mut command = member_command(
                program,
                cluster.dir.path(),
                i,
                &client_urls[i],
                &peer_urls[i],
                &initial_cluster,
            )?;
            let id = processes::spawn(&mut command, Some(cluster.dir.path().to_path_buf()))?;
            cluster.processes.push(id);
        }
        cluster.wait_ready().await?;
        Ok(cluster)
    }

    /// Waits until the cluster accepts a put (it has a leader).
    async fn wait_ready(&self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            for &id in &self.processes {
                if let Some(status) = processes::exited(id) {
                    bail!(
                        "{} exited with {status}:\n{}",
                        self.flavor.name(),
                        self.logs()
                    );
                }
            }
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
        for &id in &self.processes {
            processes::kill(id);
        }
    }
}

/// The command of member `i`: etcd's flags, log to `dir/m<i>.log`, data in
/// `dir/m<i>.data`, the caller's `ETCD_*` variables removed (both servers
/// read them as flags).
fn member_command(
    program: &Path,
    dir: &Path,
    i: usize,
    client_url: &str,
    peer_url: &str,
    initial_cluster: &str,
) -> Result<Command> {
    let log =
        std::fs::File::create(dir.join(format!("m{i}.log"))).context("cannot create a log file")?;
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("ETCD_") || text.starts_with("ETCDCTL_") {
            command.env_remove(&name);
        }
    }
    let data: PathBuf = dir.join(format!("m{i}.data"));
    command
        .args(["--name", &format!("m{i}"), "--data-dir"])
        .arg(data)
        .args(["--listen-client-urls", client_url])
        .args(["--advertise-client-urls", client_url])
        .args(["--listen-peer-urls", peer_url])
        .args(["--initial-advertise-peer-urls", peer_url])
        .args(["--initial-cluster", initial_cluster])
        .args(["--initial-cluster-state", "new"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share a log file")?)
        .stderr(log);
    Ok(command)
}
