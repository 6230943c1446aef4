//! A member that listens for peers on a loopback address dials its peers
//! from that address (server/src/transport/dial.rs), so that something
//! between members on one host (keel-jepsen's TCP proxies) can tell which
//! member a connection comes from. Two real keel processes, n1 on
//! 127.0.0.11 and n2 on 127.0.0.12, are each started alone in a
//! three-member cluster whose third member, n3 on 127.0.0.13, is this
//! test's listener: every peer connection it accepts must come from the
//! running member's own address (the OS would pick 127.0.0.1).
#![cfg(not(madsim))]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a lone member may take to dial its peers (it campaigns after
/// an election timeout of 1 s, then again and again).
const DIAL_WAIT: Duration = Duration::from_secs(20);

/// Kills the member when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn keel_binary() -> std::path::PathBuf {
    match std::env::var_os("KEEL_BIN") {
        Some(path) => path.into(),
        None => env!("CARGO_BIN_EXE_keel").into(),
    }
}

fn free_port(ip: Ipv4Addr) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Starts member `name` on `ip` (peer port `peer_port`) in `initial_cluster`.
fn start(name: &str, ip: Ipv4Addr, peer_port: u16, initial_cluster: &str, dir: &Path) -> Running {
    let peer_url = format!("http://{ip}:{peer_port}");
    let client_url = format!("http://{ip}:{}", free_port(ip));
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    let child = Command::new(keel_binary())
        .args(["--name", name])
        .arg("--data-dir")
        .arg(dir.join(name))
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", initial_cluster])
        .args(["--initial-cluster-token", "peer-source"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("start keel");
    Running(child)
}

/// The source addresses of the connections `listener` accepts until one
/// comes from `wanted` or [`DIAL_WAIT`] runs out.
fn sources_until(listener: &TcpListener, wanted: Ipv4Addr) -> BTreeSet<IpAddr> {
    let deadline = Instant::now() + DIAL_WAIT;
    let mut sources = BTreeSet::new();
    while Instant::now() < deadline && !sources.contains(&IpAddr::V4(wanted)) {
        match listener.accept() {
            Ok((_, from)) => {
                sources.insert(from.ip());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    sources
}

#[test]
fn members_listening_on_loopback_dial_peers_from_their_own_address() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let ips = [1, 2, 3].map(|i| Ipv4Addr::new(127, 0, 0, 10 + i));
    let n3 = TcpListener::bind((ips[2], 0)).expect("bind n3");
    n3.set_nonblocking(true).expect("non-blocking");
    let n3_port = n3.local_addr().expect("n3 address").port();
    let ports = [free_port(ips[0]), free_port(ips[1])];
    let initial_cluster = format!(
        "n1=http://{}:{},n2=http://{}:{},n3=http://{}:{n3_port}",
        ips[0], ports[0], ips[1], ports[1], ips[2]
    );
    for (i, name) in ["n1", "n2"].into_iter().enumerate() {
        let member = start(name, ips[i], ports[i], &initial_cluster, dir.path());
        let sources = sources_until(&n3, ips[i]);
        drop(member);
        assert!(
            sources.contains(&IpAddr::V4(ips[i])),
            "{name} never dialed n3 from {} (sources seen: {sources:?}; log in {})",
            ips[i],
            dir.path().display()
        );
        // Before this member: only the earlier one (its late connections).
        let allowed: BTreeSet<IpAddr> = ips[..=i].iter().map(|ip| IpAddr::V4(*ip)).collect();
        assert!(
            sources.is_subset(&allowed),
            "{name}'s peer connections came from {sources:?}, not only from {allowed:?}"
        );
    }
}
