//! How the run's members are wired, and how a partition is cut: plain
//! loopback (no partition possible), network namespaces
//! ([`crate::network`], needs root), or TCP proxies
//! ([`crate::proxy_network`], no root; keel only). The runner names the
//! one it used in its output, the report and `verdict.json`.

use crate::network::Network;
use crate::proxy_network::ProxyNetwork;

/// The `--network` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkChoice {
    /// Namespaces when the run needs a partition and can make them (root
    /// and `ip`), else TCP proxies; plain loopback without `partition`.
    Auto,
    /// Network namespaces joined by veth pairs (root and `ip`).
    Namespaces,
    /// TCP proxies in front of each member's peer port (keel only).
    Proxy,
}

/// One member's URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberUrls {
    /// `--listen-client-urls` and `--advertise-client-urls`.
    pub client: String,
    /// `--listen-peer-urls`.
    pub listen_peer: String,
    /// `--initial-advertise-peer-urls`, and the member's entry in
    /// `--initial-cluster`.
    pub advertise_peer: String,
}

/// The run's member network.
#[derive(Debug)]
pub enum MemberNetwork {
    /// Every member on 127.0.0.1; no partitions.
    Loopback,
    /// One namespace per member; partitions are blackhole routes.
    Namespaces(Network),
    /// One loopback address and one proxy per member; partitions are
    /// sources the proxies refuse.
    Proxy(ProxyNetwork),
}

/// A free TCP port on 127.0.0.1 (bound, then released).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl MemberNetwork {
    /// Its name in the output and `verdict.json`: `loopback`,
    /// `namespaces` or `tcp-proxy`.
    pub fn name(&self) -> &'static str {
        match self {
            MemberNetwork::Loopback => "loopback",
            MemberNetwork::Namespaces(_) => "namespaces",
            MemberNetwork::Proxy(_) => "tcp-proxy",
        }
    }

    /// A sentence on how partitions are cut.
    pub fn description(&self) -> &'static str {
        match self {
            MemberNetwork::Loopback => "every member on 127.0.0.1; no partition fault",
            MemberNetwork::Namespaces(_) => {
                "one namespace per member, veth pairs to a bridge; partitions cut by blackhole routes"
            }
            MemberNetwork::Proxy(_) => {
                "one loopback address per member (127.0.0.11, ...), a TCP proxy in front of each peer port; partitions cut by the proxies refusing the other side's source address"
            }
        }
    }

    /// Member `i`'s URLs. Errors: no free port (loopback).
    pub fn urls(&self, i: usize) -> std::io::Result<MemberUrls> {
        Ok(match self {
            MemberNetwork::Loopback => {
                let peer = format!("http://127.0.0.1:{}", free_port()?);
                MemberUrls {
                    client: format!("http://127.0.0.1:{}", free_port()?),
                    listen_peer: peer.clone(),
                    advertise_peer: peer,
                }
            }
            MemberNetwork::Namespaces(net) => MemberUrls {
                client: format!("http://{}:2379", net.member_ip(i)),
                listen_peer: format!("http://{}:2380", net.member_ip(i)),
                advertise_peer: format!("http://{}:2380", net.member_ip(i)),
            },
            MemberNetwork::Proxy(net) => MemberUrls {
                client: net.client_url(i),
                listen_peer: net.listen_peer_url(i),
                advertise_peer: net.advertise_peer_url(i),
            },
        })
    }

    /// Member `i`'s namespace, when members run in namespaces.
    pub fn namespace(&self, i: usize) -> Option<&str> {
        match self {
            MemberNetwork::Namespaces(net) => Some(net.namespace(i)),
            _ => None,
        }
    }

    /// Cuts every link between members of different `groups`, both
    /// directions. Errors: a loopback network, or what the cut failed on.
    pub fn partition(&mut self, groups: &[Vec<usize>]) -> Result<(), String> {
        match self {
            MemberNetwork::Loopback => {
                Err("partition needs namespaces or TCP proxies (the run has neither)".into())
            }
            MemberNetwork::Namespaces(net) => net.partition(groups),
            MemberNetwork::Proxy(net) => net.partition(groups),
        }
    }

    /// Removes every cut. Errors: a route that could not be removed.
    pub fn heal(&mut self) -> Result<(), String> {
        match self {
            MemberNetwork::Loopback => Ok(()),
            MemberNetwork::Namespaces(net) => net.heal(),
            MemberNetwork::Proxy(net) => {
                net.heal();
                Ok(())
            }
        }
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        match self {
            MemberNetwork::Loopback => false,
            MemberNetwork::Namespaces(net) => net.is_partitioned(),
            MemberNetwork::Proxy(net) => net.is_partitioned(),
        }
    }

    /// What the proxies did so far (`forwarded`, `refused`, `closed`
    /// connections), for a fault's outcome; `None` without proxies.
    pub fn proxy_summary(&self) -> Option<String> {
        let MemberNetwork::Proxy(net) = self else {
            return None;
        };
        let s = net.stats();
        Some(format!(
            "proxies so far: {} connections forwarded ({} from no member's address, which no cut stops), {} refused and {} closed by cuts, {} over the limit",
            s.forwarded, s.unattributed, s.refused, s.closed, s.over_limit
        ))
    }
}
