//! keel-sim: deterministic simulation of keel clusters under madsim.
//!
//! Build and run it with madsim's simulated tokio and tonic:
//!
//! ```text
//! RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target-madsim cargo test -p keel-sim
//! ```
//!
//! `MADSIM_TEST_SEED=<n>` replays one seed, `MADSIM_TEST_NUM=<k>` runs k seeds.
//! The cluster simulator itself arrives with its own issue; for now the
//! crate's tests check the seam: real keel-server services running on
//! simulated nodes over madsim's simulated network (`tests/peer_transport.rs`),
//! and a smoke test of a whole 3-member keel cluster (`tests/smoke.rs`).
//! [`NodeAddr`] names the simulated hosts those tests use.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Address of simulated member `index` (0-based): `10.0.0.<index + 1>`, with
/// etcd's client (2379) and peer (2380) ports. Only madsim's simulated
/// network ever sees these addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeAddr {
    /// The node's simulated IP address.
    pub ip: IpAddr,
}

/// Most members a simulated cluster may have (addresses stay in one /24).
pub const NODES_MAX: u8 = 250;

impl NodeAddr {
    /// The address of member `index`. Panics in debug builds if
    /// `index >= NODES_MAX`; release builds wrap into the /24.
    pub fn member(index: u8) -> NodeAddr {
        debug_assert!(index < NODES_MAX, "at most {NODES_MAX} simulated members");
        NodeAddr {
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, index.wrapping_add(1))),
        }
    }

    /// Socket address for the peer transport (port 2380).
    pub fn peer(&self) -> SocketAddr {
        SocketAddr::new(self.ip, 2380)
    }

    /// `http://<ip>:2380`, as a member advertises its peer URL.
    pub fn peer_url(&self) -> String {
        format!("http://{}", self.peer())
    }

    /// Socket address for the etcd API (port 2379).
    pub fn client(&self) -> SocketAddr {
        SocketAddr::new(self.ip, 2379)
    }

    /// `http://<ip>:2379`, as a member advertises its client URL.
    pub fn client_url(&self) -> String {
        format!("http://{}", self.client())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn member_addresses_are_distinct_and_use_etcd_ports() {
        assert_eq!(NodeAddr::member(0).peer_url(), "http://10.0.0.1:2380");
        assert_eq!(NodeAddr::member(2).peer().to_string(), "10.0.0.3:2380");
        assert_ne!(NodeAddr::member(0), NodeAddr::member(1));
        assert_eq!(NodeAddr::member(1).client_url(), "http://10.0.0.2:2379");
    }
}
