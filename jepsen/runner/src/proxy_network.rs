//! The partition fault without network namespaces (no root needed): every
//! member gets its own loopback address, 127.0.0.(11 + i) for member `i`
//! (all of 127.0.0.0/8 is local on Linux), listens for peers there on one
//! port and advertises a [`PeerProxy`] on another port of the same address.
//! keel dials its peers from the IP of its loopback `--listen-peer-urls`,
//! so member `j`'s proxy sees member `i`'s connections come from member
//! `i`'s address: cutting the link (i, j) is cutting that source at `j`'s
//! proxy. A partition cuts both directions of every link between groups.
//! etcd dials from 127.0.0.1 whatever it listens on, so its links cannot
//! be told apart: the runner refuses `partition` over proxies for etcd.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};

use crate::proxy::{PeerProxy, ProxyLimits, ProxyStats};

/// Largest cluster this network holds (addresses 127.0.0.11 to .26).
const MEMBERS_MAX: usize = 16;
/// Member 0's address is 127.0.0.(FIRST_HOST).
const FIRST_HOST: usize = 11;

/// One member's addresses and its proxy.
#[derive(Debug)]
struct ProxiedMember {
    ip: Ipv4Addr,
    /// The port the member listens on for peers (behind the proxy).
    peer_port: u16,
    /// The port it serves clients on.
    client_port: u16,
    proxy: PeerProxy,
}

/// The run's proxies and the links cut now.
#[derive(Debug)]
pub struct ProxyNetwork {
    members: Vec<ProxiedMember>,
    /// Directed links (from, to) cut at `to`'s proxy.
    cut: BTreeSet<(usize, usize)>,
}

/// A free port on `ip` (bound, then released).
fn free_port(ip: Ipv4Addr) -> Result<u16, String> {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on {ip}: {e}"))
}

impl ProxyNetwork {
    /// Starts one proxy per member (inside a tokio runtime). Errors: a
    /// size out of 1..=16, or an address that cannot be bound.
    pub fn create(members: usize) -> Result<ProxyNetwork, String> {
        if members == 0 || members > MEMBERS_MAX {
            return Err(format!("a proxy network holds 1 to {MEMBERS_MAX} members"));
        }
        let mut network = ProxyNetwork {
            members: Vec::with_capacity(members),
            cut: BTreeSet::new(),
        };
        let sources: BTreeSet<IpAddr> = (0..members).map(|i| IpAddr::V4(member_ip(i))).collect();
        for i in 0..members {
            let ip = member_ip(i);
            let peer_port = free_port(ip)?;
            let client_port = free_port(ip)?;
            let listener = TcpListener::bind((ip, 0))
                .map_err(|e| format!("cannot bind a proxy on {ip}: {e}"))?;
            let upstream = SocketAddr::new(IpAddr::V4(ip), peer_port);
            let proxy =
                PeerProxy::start(listener, upstream, sources.clone(), ProxyLimits::default())
                    .map_err(|e| format!("cannot start the proxy on {ip}: {e}"))?;
            network.members.push(ProxiedMember {
                ip,
                peer_port,
                client_port,
                proxy,
            });
        }
        Ok(network)
    }

    /// Member `i`'s client URL (not proxied: clients are never cut).
    pub fn client_url(&self, i: usize) -> String {
        let m = &self.members[i];
        format!("http://{}:{}", m.ip, m.client_port)
    }

    /// Where member `i` listens for peers (`--listen-peer-urls`).
    pub fn listen_peer_url(&self, i: usize) -> String {
        let m = &self.members[i];
        format!("http://{}:{}", m.ip, m.peer_port)
    }

    /// Member `i`'s proxy, the peer URL it advertises.
    pub fn advertise_peer_url(&self, i: usize) -> String {
        format!("http://{}", self.members[i].proxy.listen_addr())
    }

    /// Cuts every link between members of different `groups` (both
    /// directions). Links already cut stay cut. Errors: a member index out
    /// of range.
    pub fn partition(&mut self, groups: &[Vec<usize>]) -> Result<(), String> {
        let size = self.members.len();
        if let Some(bad) = groups.iter().flatten().find(|&&i| i >= size) {
            return Err(format!("no member {bad} in a {size}-member network"));
        }
        for (g, group) in groups.iter().enumerate() {
            for other in groups.iter().skip(g + 1) {
                for &a in group {
                    for &b in other {
                        self.cut_link(a, b);
                        self.cut_link(b, a);
                    }
                }
            }
        }
        Ok(())
    }

    fn cut_link(&mut self, from: usize, to: usize) {
        if self.cut.insert((from, to)) {
            let source = IpAddr::V4(self.members[from].ip);
            self.members[to].proxy.cut(source);
        }
    }

    /// Removes every cut.
    pub fn heal(&mut self) {
        self.cut.clear();
        for member in &self.members {
            member.proxy.heal();
        }
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }

    /// The proxies' counts added up.
    pub fn stats(&self) -> ProxyStats {
        let mut total = ProxyStats::default();
        for member in &self.members {
            let s = member.proxy.stats();
            total.forwarded += s.forwarded;
            total.refused += s.refused;
            total.closed += s.closed;
            total.over_limit += s.over_limit;
            total.unattributed += s.unattributed;
        }
        total
    }
}

/// Member `i`'s loopback address: 127.0.0.(11 + i).
pub fn member_ip(i: usize) -> Ipv4Addr {
    let host = u8::try_from(FIRST_HOST + i.min(MEMBERS_MAX)).unwrap_or(u8::MAX);
    Ipv4Addr::new(127, 0, 0, host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(network: &ProxyNetwork, i: usize) -> BTreeSet<IpAddr> {
        network.members[i].proxy.cut_sources()
    }

    #[tokio::test]
    async fn members_get_their_own_addresses_and_partitions_cut_both_directions() {
        let mut network = ProxyNetwork::create(3).expect("proxy network");
        assert!(network.listen_peer_url(0).starts_with("http://127.0.0.11:"));
        assert!(
            network
                .advertise_peer_url(2)
                .starts_with("http://127.0.0.13:")
        );
        assert_ne!(network.listen_peer_url(1), network.advertise_peer_url(1));
        network
            .partition(&[vec![0], vec![1, 2]])
            .expect("partition");
        let ip = |i: usize| IpAddr::V4(member_ip(i));
        assert_eq!(cut(&network, 0), BTreeSet::from([ip(1), ip(2)]));
        assert_eq!(cut(&network, 1), BTreeSet::from([ip(0)]));
        assert_eq!(cut(&network, 2), BTreeSet::from([ip(0)]));
        assert!(network.is_partitioned());
        network.heal();
        assert!(!network.is_partitioned());
        assert!((0..3).all(|i| cut(&network, i).is_empty()));
        assert!(network.partition(&[vec![0], vec![3]]).is_err());
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        assert!(ProxyNetwork::create(0).is_err());
        assert!(ProxyNetwork::create(MEMBERS_MAX + 1).is_err());
    }
}
