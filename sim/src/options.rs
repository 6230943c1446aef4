//! The knobs of one run: how long the faults last, the workload's shape,
//! the bounds the checks hold the cluster to.

/// How a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Simulated milliseconds of faults (the safety phase).
    pub safety_phase_ms: u64,
    /// Once healed, a write must commit within this many simulated ms.
    pub liveness_bound_ms: u64,
    /// Concurrent client processes.
    pub processes: u64,
    /// Register keys the clients share.
    pub keys: u8,
    /// Per-request timeout of the clients.
    pub request_timeout_ms: u64,
    /// Search states the linearizability check may explore per key.
    pub states_max: u64,
    /// `membership`: re-add removed members at their old address (peer
    /// URL) on empty disks, rather than at a host never used.
    pub reuse_member_addresses: bool,
}

impl RunOptions {
    /// The runs `keel-sim run` and `sweep` do.
    pub fn full() -> RunOptions {
        RunOptions {
            safety_phase_ms: 20_000,
            liveness_bound_ms: 10_000,
            processes: 5,
            keys: 3,
            request_timeout_ms: 1_000,
            states_max: 2_000_000,
            reuse_member_addresses: false,
        }
    }

    /// Shorter runs for the CI seed set.
    pub fn ci() -> RunOptions {
        RunOptions {
            safety_phase_ms: 8_000,
            ..RunOptions::full()
        }
    }
}
