//! keel-sim: deterministic simulation of keel clusters under madsim.
//!
//! Real `keel-server` members (node driver, etcd gRPC API, peer transport)
//! run on simulated hosts over madsim's simulated network, each on
//! keel-wal's simulated disks (a crash loses unsynced writes). Client
//! processes drive a register workload through the real gRPC clients and
//! record a history; a nemesis draws faults from the seed; the history is
//! checked by `keel-jepsen` (linearizability), and the members' stores by
//! HashKV.
//!
//! Beside the registers ([`RunOptions::side_workloads`], on in full runs):
//! [`bank`] transfers money between account keys in multi-key txns guarded
//! by `mod_revision` compares and checks every all-accounts read for the
//! same total; [`compaction`] compacts at random past revisions and checks
//! ErrCompacted reads and compacted watch cancels at the boundary (the
//! watchers resume from `compact_revision`). With `--lock-clients N`,
//! [`lock_client`] takes etcd's lease-based lock and reports overlapping
//! holds: those a lease expiry explains are counted, others fail.
//!
//! # Running
//!
//! The simulation only exists in the madsim build (`RUSTFLAGS="--cfg
//! madsim"`, which swaps tokio and tonic for madsim's simulated ones; keep
//! its own target dir so the normal build stays warm). `scripts/sim.sh`
//! sets both and passes its arguments to the `keel-sim` binary:
//!
//! ```text
//! scripts/sim.sh run --scenario split-brain --seed 1234
//! scripts/sim.sh sweep --scenario all --seeds 1000 [--first 1]
//! ```
//!
//! Built without `--cfg madsim`, `keel-sim` says so and exits with 2.
//! Every failure prints the scenario, the seed, the event log (faults,
//! heals, leadership claims, phases), the offending operations and the
//! command that replays it: `run` with the same scenario and seed is the
//! replay, bit for bit (every random choice comes from the seed).
//!
//! # Scenarios
//!
//! [`Scenario`]: `split-brain` (isolate the leader with a minority, random
//! halves, a bridge, a ring, one-way links from or to the leader; 5
//! members), `leader-loss` (crash or pause the leader, or move leadership
//! with MoveLeader; 3), `crash-restart` (power loss of any member or the
//! leader; 3), `disk-faults` (failed WAL fsyncs, power loss on disks that
//! persist unsynced sectors in any order; 3), `clock-skew` (each member's
//! clock ticks 0.6-1.6x as fast, under leader pauses, slow networks and
//! split brain; 5), `membership` (3 members and 4 spare hosts: through the
//! Cluster API, add a learner on empty disks started with
//! `initial-cluster-state existing`, promote it, remove a voter or the
//! leader, re-add, under partitions, crashes and leader loss; the member
//! lists must converge after healing, see [`membership`]), `random` (all
//! faults, and lossy networks: members drop 5-30% of the Raft messages
//! they send and duplicate 5-30%, through keel's cfg(madsim) hook
//! `keel_server::transport::sim_faults`, as madsim's TCP loses nothing; 5). Each runs a safety phase under faults with the
//! workload, a liveness phase with faults healed (a write must commit
//! within [`RunOptions::liveness_bound_ms`]), then final reads of every key
//! through every member, the linearizability check of the whole history
//! (which covers acknowledged writes that went missing), the watch checks
//! of two resuming watchers per key, the lease check, and HashKV equality
//! at the liveness write's revision.
//!
//! # Planted bugs
//!
//! keel-sim's features (off by default) build keel with one bug each:
//! `planted-bug-ack-before-fsync`, `planted-bug-vote-without-log-check`,
//! `planted-bug-read-without-readindex`, `planted-bug-commit-previous-term`,
//! `planted-bug-apply-twice-after-restart` (a restarted member applies the
//! first entry after its snapshot twice), `planted-bug-keep-conflicting-suffix`,
//! `planted-bug-watch-misses-start-revision` and
//! `planted-bug-follower-expires-leases` ([`runner::planted_bugs`] lists
//! the ones a build has; a failure's replay command names them). `KEEL_SIM_FEATURES=<feature> scripts/sim.sh
//! sweep ... --stop-at-failure` measures the seeds to the first failure,
//! and `scripts/sim-planted-bugs.sh` does it for all of them.
//!
//! # Determinism
//!
//! Every choice (faults, timings, client operations, members' election
//! jitter, disks) comes from the seed. Some dependencies initialise
//! process-wide state lazily through `getrandom`, which madsim answers from
//! the running seed, so [`runner::warm_up`] runs every scenario once per
//! process before the first real run: a seed then replays the same alone,
//! in a sweep, and in madsim's determinism check.
//!
//! # Tests
//!
//! ```text
//! RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo test -p keel-sim
//! ```
//!
//! `MADSIM_TEST_SEED=<n>` replays one seed, `MADSIM_TEST_NUM=<k>` runs k
//! seeds: `tests/scenarios.rs` runs every scenario (shortened,
//! [`RunOptions::ci`]) per seed (`membership`: a fixed set of seeds that
//! pass, as the rest find keel bugs), and checks that one seed run twice gives
//! the same event log and history. `tests/smoke.rs` and
//! `tests/peer_transport.rs` test the seam. [`NodeAddr`] names the
//! simulated hosts.

mod event_log;
mod options;
mod planted;
mod report;
mod scenario;

pub use event_log::{EventLog, LogEntry};
pub use options::RunOptions;
pub use planted::planted_bugs;
pub use report::{Fnv, RunReport};
pub use scenario::{FaultKind, Scenario};

#[cfg(madsim)]
pub mod bank;
#[cfg(madsim)]
pub mod checks;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod compaction;
#[cfg(madsim)]
pub mod kv_ops;
#[cfg(madsim)]
pub mod lease_client;
#[cfg(madsim)]
pub mod lock_client;
#[cfg(madsim)]
pub mod member_api;
#[cfg(madsim)]
pub mod membership;
#[cfg(madsim)]
pub mod monitor;
#[cfg(madsim)]
pub mod nemesis;
#[cfg(madsim)]
pub mod partition;
#[cfg(madsim)]
pub mod rpc;
#[cfg(madsim)]
pub mod run;
#[cfg(madsim)]
pub mod runner;
#[cfg(madsim)]
pub mod scripted;
#[cfg(madsim)]
pub mod sim_log;
#[cfg(madsim)]
pub mod watcher;
#[cfg(madsim)]
pub mod workload;

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
