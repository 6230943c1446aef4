//! A TCP proxy in front of one member's peer port, for the `partition`
//! fault without network namespaces ([`crate::proxy_network`]). Members
//! dial their peers from their own loopback address (keel binds its peer
//! dials to the IP of its loopback `--listen-peer-urls`), so the proxy
//! knows from each accepted connection's source IP which member it comes
//! from. Cutting a source closes that source's open connections and drops
//! its new ones at accept until [`PeerProxy::heal`]. Bounded: at most
//! [`ProxyLimits::connections_max`] connections at once (more are dropped
//! at accept), and each direction of a connection copies through one
//! buffer of [`ProxyLimits::buffer_bytes`].

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

/// How much a proxy holds at once.
#[derive(Debug, Clone, Copy)]
pub struct ProxyLimits {
    /// Open connections at most; one more is dropped at accept.
    pub connections_max: usize,
    /// Buffer of each direction of one connection, in bytes.
    pub buffer_bytes: usize,
    /// Time to connect to the member behind the proxy, in milliseconds;
    /// the accepted connection is closed when it runs out.
    pub connect_timeout_ms: u64,
}

impl Default for ProxyLimits {
    /// 64 connections (a member has a few per peer), 64 KiB per direction,
    /// 1 s to connect.
    fn default() -> ProxyLimits {
        ProxyLimits {
            connections_max: 64,
            buffer_bytes: 64 * 1024,
            connect_timeout_ms: 1000,
        }
    }
}

/// What a proxy did with its connections, counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProxyStats {
    /// Connections accepted and forwarded.
    pub forwarded: u64,
    /// Connections dropped at accept because their source was cut.
    pub refused: u64,
    /// Open connections closed because their source was cut.
    pub closed: u64,
    /// Connections dropped at accept because the proxy was full.
    pub over_limit: u64,
    /// Connections forwarded from a source that is no member's address
    /// (a member that does not bind its peer dials): no cut can stop them.
    pub unattributed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    forwarded: AtomicU64,
    refused: AtomicU64,
    closed: AtomicU64,
    over_limit: AtomicU64,
    unattributed: AtomicU64,
}

impl Counters {
    fn stats(&self) -> ProxyStats {
        ProxyStats {
            forwarded: self.forwarded.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
            over_limit: self.over_limit.load(Ordering::Relaxed),
            unattributed: self.unattributed.load(Ordering::Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A running proxy; stops (closing every connection) when dropped.
#[derive(Debug)]
pub struct PeerProxy {
    listen_addr: SocketAddr,
    cut: watch::Sender<BTreeSet<IpAddr>>,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl PeerProxy {
    /// Starts forwarding connections accepted on `listener` to `upstream`.
    /// `members` are the members' source addresses; a connection from any
    /// other source is forwarded and counted as unattributed. Must be
    /// called inside a tokio runtime. Errors: the listener cannot be handed
    /// to tokio or has no local address.
    pub fn start(
        listener: std::net::TcpListener,
        upstream: SocketAddr,
        members: BTreeSet<IpAddr>,
        limits: ProxyLimits,
    ) -> std::io::Result<PeerProxy> {
        listener.set_nonblocking(true)?;
        let listen_addr = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let (cut, _) = watch::channel(BTreeSet::new());
        let counters = Arc::new(Counters::default());
        let accept = Accept {
            listener,
            upstream,
            members,
            limits,
            cut: cut.clone(),
            counters: counters.clone(),
        };
        let task = tokio::spawn(accept.run());
        Ok(PeerProxy {
            listen_addr,
            cut,
            counters,
            task,
        })
    }

    /// The address the proxy listens on (what the member advertises).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// Cuts `source`: closes its open connections, drops its new ones.
    pub fn cut(&self, source: IpAddr) {
        self.cut.send_modify(|cut| {
            cut.insert(source);
        });
    }

    /// Lets every source through again.
    pub fn heal(&self) {
        self.cut.send_modify(BTreeSet::clear);
    }

    /// The sources cut now.
    #[cfg(test)]
    pub fn cut_sources(&self) -> BTreeSet<IpAddr> {
        self.cut.borrow().clone()
    }

    /// The counts so far.
    pub fn stats(&self) -> ProxyStats {
        self.counters.stats()
    }
}

impl Drop for PeerProxy {
    fn drop(&mut self) {
        // The accept task owns the connection tasks: they are aborted too.
        self.task.abort();
    }
}

/// The accept loop's state.
struct Accept {
    listener: TcpListener,
    upstream: SocketAddr,
    members: BTreeSet<IpAddr>,
    limits: ProxyLimits,
    cut: watch::Sender<BTreeSet<IpAddr>>,
    counters: Arc<Counters>,
}

/// Pause after a failed accept (e.g. out of file descriptors), in ms.
const ACCEPT_RETRY_MS: u64 = 10;

impl Accept {
    async fn run(self) {
        let slots = Arc::new(Semaphore::new(self.limits.connections_max));
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let (inbound, from) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                    continue;
                }
            };
            let source = from.ip();
            if self.cut.borrow().contains(&source) {
                bump(&self.counters.refused);
                continue;
            }
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                bump(&self.counters.over_limit);
                continue;
            };
            bump(&self.counters.forwarded);
            if !self.members.contains(&source) {
                bump(&self.counters.unattributed);
            }
            let connection = Connection {
                inbound,
                source,
                upstream: self.upstream,
                limits: self.limits,
                cut: self.cut.subscribe(),
                counters: self.counters.clone(),
            };
            connections.spawn(async move {
                connection.forward().await;
                drop(slot);
            });
        }
    }
}

/// One accepted connection.
struct Connection {
    inbound: TcpStream,
    source: IpAddr,
    upstream: SocketAddr,
    limits: ProxyLimits,
    cut: watch::Receiver<BTreeSet<IpAddr>>,
    counters: Arc<Counters>,
}

impl Connection {
    /// Copies both ways until either side closes or the source is cut;
    /// dropping the streams closes both connections.
    async fn forward(mut self) {
        let timeout = Duration::from_millis(self.limits.connect_timeout_ms);
        let connect = tokio::time::timeout(timeout, TcpStream::connect(self.upstream));
        let Ok(Ok(mut outbound)) = connect.await else {
            return;
        };
        let _ = self.inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let source = self.source;
        let size = self.limits.buffer_bytes;
        tokio::select! {
            _ = tokio::io::copy_bidirectional_with_sizes(&mut self.inbound, &mut outbound, size, size) => {}
            cut = self.cut.wait_for(|cut| cut.contains(&source)) => {
                if cut.is_ok() {
                    bump(&self.counters.closed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const WAIT: Duration = Duration::from_secs(5);

    /// An echo server on 127.0.0.1; returns its address.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let addr = listener.local_addr().expect("echo address");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut reader, mut writer) = stream.split();
                    let _ = tokio::io::copy(&mut reader, &mut writer).await;
                });
            }
        });
        addr
    }

    /// A proxy on 127.0.0.21 in front of a fresh echo server.
    async fn proxy(limits: ProxyLimits) -> PeerProxy {
        let upstream = echo_server().await;
        let listener = std::net::TcpListener::bind("127.0.0.21:0").expect("bind proxy");
        let members = ["127.0.0.31", "127.0.0.32", "127.0.0.33"].map(ip).into();
        PeerProxy::start(listener, upstream, members, limits).expect("start proxy")
    }

    /// Connects to `to` from `from` (port chosen by the OS).
    async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        let local: SocketAddr = format!("{from}:0").parse().expect("source address");
        socket.bind(local).expect("bind source");
        socket.connect(to).await.expect("connect")
    }

    /// Whether `stream` echoes a message back within [`WAIT`] (false: it
    /// was closed or reset).
    async fn echoes(stream: &mut TcpStream) -> bool {
        let exchange = async {
            stream.write_all(b"ping").await?;
            let mut reply = [0u8; 4];
            stream.read_exact(&mut reply).await?;
            Ok::<_, std::io::Error>(&reply == b"ping")
        };
        matches!(tokio::time::timeout(WAIT, exchange).await, Ok(Ok(true)))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[tokio::test]
    async fn a_cut_closes_the_sources_connections_and_refuses_new_ones_until_healed() {
        let proxy = proxy(ProxyLimits::default()).await;
        let to = proxy.listen_addr();
        let mut cut_side = connect_from("127.0.0.31", to).await;
        let mut other_side = connect_from("127.0.0.32", to).await;
        assert!(echoes(&mut cut_side).await && echoes(&mut other_side).await);

        proxy.cut(ip("127.0.0.31"));
        assert!(
            !echoes(&mut cut_side).await,
            "an open connection survived the cut"
        );
        let mut during = connect_from("127.0.0.31", to).await;
        assert!(
            !echoes(&mut during).await,
            "a new connection got through the cut"
        );
        assert!(echoes(&mut other_side).await, "the cut hit another source");
        assert_eq!(proxy.cut_sources(), BTreeSet::from([ip("127.0.0.31")]));

        proxy.heal();
        let mut after = connect_from("127.0.0.31", to).await;
        assert!(
            echoes(&mut after).await,
            "the healed source is still refused"
        );
        let stats = proxy.stats();
        assert_eq!((stats.closed, stats.refused), (1, 1), "{stats:?}");
        assert_eq!((stats.forwarded, stats.unattributed), (3, 0), "{stats:?}");
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_dropped_at_accept() {
        let limits = ProxyLimits {
            connections_max: 1,
            ..ProxyLimits::default()
        };
        let proxy = proxy(limits).await;
        let mut first = connect_from("127.0.0.33", proxy.listen_addr()).await;
        assert!(echoes(&mut first).await);
        let mut second = connect_from("127.0.0.33", proxy.listen_addr()).await;
        assert!(
            !echoes(&mut second).await,
            "a connection past the limit got through"
        );
        assert!(echoes(&mut first).await);
        assert_eq!(proxy.stats().over_limit, 1);
        drop(first);
        // The slot comes back once the first connection is gone.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut third = connect_from("127.0.0.33", proxy.listen_addr()).await;
            if echoes(&mut third).await {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the slot never came back"
            );
        }
    }

    #[tokio::test]
    async fn a_dropped_proxy_closes_its_connections() {
        let proxy = proxy(ProxyLimits::default()).await;
        let mut stream = connect_from("127.0.0.34", proxy.listen_addr()).await;
        assert!(echoes(&mut stream).await);
        assert_eq!(proxy.stats().unattributed, 1, "127.0.0.34 is no member");
        drop(proxy);
        assert!(
            !echoes(&mut stream).await,
            "a connection outlived its proxy"
        );
    }
}
