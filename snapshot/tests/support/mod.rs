//! Test support: real etcd and keel processes on free loopback ports in a
//! temporary directory, etcdctl runs with bounded time, and the `keel`
//! binary cargo built for the workspace (`KEEL_BIN` overrides it; build it
//! with `cargo build -p keel-server --bin keel`). Every process is killed
//! on drop.
#![allow(dead_code)] // each test binary uses its own part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to answer `endpoint health`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Hard limit for one etcdctl run.
const ETCDCTL_TIMEOUT: Duration = Duration::from_secs(15);

/// The keel binary: `$KEEL_BIN`, else `keel` in the target directory this
/// test runs from. Panics with the build command when it is missing.
pub fn keel_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KEEL_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let target = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let keel = target.join("keel");
    assert!(
        keel.exists(),
        "{} is missing: run `cargo build -p keel-server --bin keel` (or set KEEL_BIN)",
        keel.display()
    );
    keel
}

/// A free loopback port.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Which server a [`Server`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `/usr/bin/etcd`.
    Etcd,
    /// keel.
    Keel,
}

/// One member's flags.
#[derive(Clone, Debug)]
pub struct MemberSpec {
    /// `--name`.
    pub name: String,
    /// Client URL.
    pub client_url: String,
    /// Peer URL.
    pub peer_url: String,
    /// `--data-dir`.
    pub data_dir: PathBuf,
}

impl MemberSpec {
    /// A member named `name` with fresh ports and data dir `dir/<name>.data`.
    pub fn new(name: &str, dir: &Path) -> MemberSpec {
        MemberSpec {
            name: name.to_owned(),
            client_url: format!("http://127.0.0.1:{}", free_port()),
            peer_url: format!("http://127.0.0.1:{}", free_port()),
            data_dir: dir.join(format!("{name}.data")),
        }
    }
}

/// `name=peer,...` for `--initial-cluster`.
pub fn initial_cluster(members: &[MemberSpec]) -> String {
    members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url))
        .collect::<Vec<_>>()
        .join(",")
}

/// Running server processes, killed on drop.
pub struct Servers {
    children: Vec<Child>,
    /// Client URLs, comma-separated.
    pub endpoints: String,
}

impl Servers {
    /// Starts every member of `members` as one cluster with `token` and
    /// waits until each answers `endpoint health`.
    pub fn start(flavor: Flavor, members: &[MemberSpec], token: &str, log_dir: &Path) -> Servers {
        let cluster = initial_cluster(members);
        let mut servers = Servers {
            children: Vec::new(),
            endpoints: members
                .iter()
                .map(|m| m.client_url.clone())
                .collect::<Vec<_>>()
                .join(","),
        };
        for member in members {
            let program = match flavor {
                Flavor::Etcd => PathBuf::from("etcd"),
                Flavor::Keel => keel_binary(),
            };
            let log =
                std::fs::File::create(log_dir.join(format!("{}.{flavor:?}.log", member.name)))
                    .expect("create the log");
            let child = Command::new(program)
                .args(["--name", &member.name])
                .arg("--data-dir")
                .arg(&member.data_dir)
                .args(["--listen-client-urls", &member.client_url])
                .args(["--advertise-client-urls", &member.client_url])
                .args(["--listen-peer-urls", &member.peer_url])
                .args(["--initial-advertise-peer-urls", &member.peer_url])
                .args(["--initial-cluster", &cluster])
                .args(["--initial-cluster-token", token])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone the log"))
                .stderr(log)
                .spawn()
                .expect("start the server");
            servers.children.push(child);
        }
        for member in members {
            wait_healthy(&member.client_url);
        }
        servers
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_healthy(endpoint: &str) {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if etcdctl(endpoint, &["endpoint", "health"]).status.success() {
            return;
        }
        thread::sleep(Duration::from_millis(200));
    }
    panic!("{endpoint} was not healthy within {START_TIMEOUT:?}");
}

/// Runs etcdctl (API v3) against `endpoints`, killed after a bounded time.
pub fn etcdctl(endpoints: &str, args: &[&str]) -> Output {
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            endpoints,
            "--dial-timeout",
            "3s",
            "--command-timeout",
            "10s",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcdctl is installed (Debian etcd-client)");
    let deadline = Instant::now() + ETCDCTL_TIMEOUT;
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return child.wait_with_output().expect("etcdctl output");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().expect("etcdctl output")
}

/// etcdctl's stdout, panicking with its stderr when it failed.
pub fn etcdctl_ok(endpoints: &str, args: &[&str]) -> String {
    let out = etcdctl(endpoints, args);
    assert!(
        out.status.success(),
        "etcdctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `get "" --prefix -w json` at `revision` (0: current), without the
/// response header (ids and the server's revision differ between servers).
pub fn range_at(endpoints: &str, revision: i64) -> String {
    let rev = format!("--rev={revision}");
    without_header(&etcdctl_ok(
        endpoints,
        &["get", "", "--prefix", "-w", "json", &rev],
    ))
}

/// etcdctl's json answer without its `header`.
pub fn without_header(json: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(json).expect("etcdctl's json");
    if let Some(object) = value.as_object_mut() {
        object.remove("header");
    }
    value.to_string()
}

/// The header revision of a range.
pub fn current_revision(endpoints: &str) -> i64 {
    let json = etcdctl_ok(endpoints, &["get", "x", "-w", "json"]);
    let value: serde_json::Value = serde_json::from_str(&json).expect("etcdctl's json");
    value["header"]["revision"]
        .as_i64()
        .expect("a header revision")
}
