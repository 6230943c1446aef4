//! The knobs of one run: how long the faults last, the workload's shape,
//! the bounds the checks hold the cluster to.

/// How a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// Whether the bank (multi-key txn) and compaction clients run beside
    /// the registers ([`crate::bank`], [`crate::compaction`] in the madsim
    /// build). On in [`RunOptions::full`] and [`RunOptions::ci`]. (They
    /// were off in CI while a seed run beside other seeds diverged now and
    /// then: tokio's `select!` drew its branch order from a process-wide
    /// counter, not madsim's seed; keel's `select!`s are biased under
    /// madsim since, see `keel_server`'s `replayable_select`.)
    pub side_workloads: bool,
    /// Clients running the lease-based lock workload
    /// ([`crate::lock_client`] in the madsim build): 2 in
    /// [`RunOptions::full`] and [`RunOptions::ci`]. (It was off while its
    /// overlaps waited on a diagnosis: three keel bugs, fixed. Members
    /// raised a lease's TTL each to its own minimum, so a leader with a
    /// shorter election timeout expired leases early; a leader cut off from
    /// its quorum renewed leases; and Lock granted a lock on the state of a
    /// ReadIndex round that began before its key's lease expired.)
    pub lock_clients: usize,
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
            side_workloads: true,
            lock_clients: 2,
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

impl RunOptions {
    /// The `keel-sim run` flags that give these options: `--ci` for
    /// [`RunOptions::ci`]'s shape, `--states-max` when it is not that
    /// shape's, `--reuse-member-addresses` when set. `None` when no flags
    /// give them (a test's own options).
    pub fn replay_flags(&self) -> Option<Vec<String>> {
        // The fields flags set aside, is `self` shaped as `base`?
        let shaped_as = |base: RunOptions| {
            base == RunOptions {
                states_max: base.states_max,
                reuse_member_addresses: base.reuse_member_addresses,
                side_workloads: base.side_workloads,
                lock_clients: base.lock_clients,
                ..*self
            }
        };
        let (ci, full) = (RunOptions::ci(), RunOptions::full());
        let (mut flags, base) = if shaped_as(ci) {
            (vec!["--ci".to_string()], ci)
        } else if shaped_as(full) {
            (Vec::new(), full)
        } else {
            return None;
        };
        if self.side_workloads != base.side_workloads {
            flags.push(format!("--side-workloads {}", self.side_workloads));
        }
        if self.states_max != base.states_max {
            flags.push(format!("--states-max {}", self.states_max));
        }
        if self.reuse_member_addresses {
            flags.push("--reuse-member-addresses".to_string());
        }
        if self.lock_clients != base.lock_clients {
            flags.push(format!("--lock-clients {}", self.lock_clients));
        }
        Some(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_flags_name_every_option_that_differs_from_a_full_run() {
        assert_eq!(RunOptions::full().replay_flags(), Some(vec![]));
        let options = RunOptions {
            reuse_member_addresses: true,
            states_max: 5,
            lock_clients: 1,
            side_workloads: false,
            ..RunOptions::ci()
        };
        let flags = options.replay_flags().map(|f| f.join(" "));
        assert_eq!(
            flags.as_deref(),
            Some(
                "--ci --side-workloads false --states-max 5 --reuse-member-addresses --lock-clients 1"
            )
        );
        let quiet = RunOptions {
            side_workloads: false,
            ..RunOptions::full()
        };
        let flags = quiet.replay_flags().map(|f| f.join(" "));
        assert_eq!(flags.as_deref(), Some("--side-workloads false"));
        let custom = RunOptions {
            safety_phase_ms: 1,
            ..RunOptions::full()
        };
        assert_eq!(custom.replay_flags(), None);
    }
}
