//! An in-process single-member keel on free loopback ports, in a temporary
//! directory, stopped on drop. Start-up waits (bounded) until etcdctl
//! reads from it.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use keel_server::config::Config;
use keel_server::node::serve::{Listeners, Member};
use keel_server::node::{NodeSettings, NodeStorage};
use keel_server::tls::MemberTls;

/// How long a started keel may take to serve a read.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How a test member serves its clients.
#[derive(Debug, Clone, Default)]
pub struct Serving {
    /// Whether the client URL is `https://` (needs `--cert-file`, `--key-file`).
    pub tls: bool,
    /// Extra keel flags (`--cert-file=...`, `--client-cert-auth`, ...).
    pub flags: Vec<String>,
    /// The etcdctl flags a client needs (`--cacert=...`), for the start-up probe.
    pub ctl_flags: Vec<String>,
}

/// A running keel member.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    member: Option<Member>,
    dir: tempfile::TempDir,
    /// Client URL, e.g. `http://127.0.0.1:40123`.
    pub client_url: String,
    /// Peer URL.
    pub peer_url: String,
    /// The etcdctl flags a client needs to reach it.
    pub ctl_flags: Vec<String>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

impl Server {
    /// Starts a member named `name` serving plain HTTP and waits until it
    /// serves.
    pub fn start(name: &str) -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        Server::start_in(name, dir, &Serving::default())
    }

    /// Starts a member named `name` in `dir` serving as `serving` says and
    /// waits until it serves.
    pub fn start_in(name: &str, dir: tempfile::TempDir, serving: &Serving) -> Server {
        let scheme = if serving.tls { "https" } else { "http" };
        let client_url = format!("{scheme}://127.0.0.1:{}", free_port());
        let peer_url = format!("http://127.0.0.1:{}", free_port());
        let data_dir = dir.path().join("data");
        let mut args: Vec<String> = vec![
            "keel".into(),
            "--name".into(),
            name.into(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen-client-urls".into(),
            client_url.clone(),
            "--advertise-client-urls".into(),
            client_url.clone(),
            "--listen-peer-urls".into(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            peer_url.clone(),
            "--initial-cluster".into(),
            format!("{name}={peer_url}"),
        ];
        args.extend(serving.flags.iter().cloned());
        let config = Config::from_args(args).expect("keel flags");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let member = runtime.block_on(start_member(config));
        let server = Server {
            runtime,
            member: Some(member),
            dir,
            client_url,
            peer_url,
            ctl_flags: serving.ctl_flags.clone(),
        };
        server.wait_serving();
        server
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn wait_serving(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            let status = Command::new("etcdctl")
                .env("ETCDCTL_API", "3")
                .arg(format!("--endpoints={}", self.client_url))
                .args(&self.ctl_flags)
                .args(["--command-timeout=1s", "get", "probe"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run etcdctl");
            if status.success() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "keel at {} did not serve within {START_TIMEOUT:?}",
            self.client_url
        );
    }
}

async fn start_member(config: Config) -> Member {
    let mut settings = NodeSettings::from_config(&config);
    let storage = NodeStorage::on_disk(&config.data_dir).expect("data directory");
    let tls = MemberTls::load(&config).expect("tls settings");
    let listeners = Listeners {
        client_addrs: config.client_bind_addrs().expect("client addresses"),
        peer_addrs: config.peer_bind_addrs().expect("peer addresses"),
        api_limits: keel_server::api::ApiLimits::default(),
        transport_limits: keel_server::transport::TransportLimits::default(),
    };
    settings.peer_dialer = tls.dialer;
    Member::start_tls(settings, storage, listeners, tls.serve)
        .await
        .expect("start keel")
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(member) = self.member.take() {
            self.runtime.block_on(member.stop());
        }
    }
}
