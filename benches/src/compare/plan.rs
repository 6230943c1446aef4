//! The cases `compare` runs: each workload with each client count, on
//! each cluster size.

use std::time::Duration;

use clap::ValueEnum;
use serde::Serialize;

/// A workload `compare` can run.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseWorkload {
    /// `put` of random keys among the key space.
    Put,
    /// `txn-put` of one put per transaction.
    TxnPut,
    /// Linearizable single-key `range`.
    RangeL,
    /// Serializable single-key `range`.
    RangeS,
    /// Watch fan-out: one putting client, `--watchers` watchers of the key;
    /// figures are events delivered.
    Watch,
    /// `lease-keepalive`.
    LeaseKeepalive,
}

impl CaseWorkload {
    /// Every workload, in report order.
    pub const ALL: [CaseWorkload; 6] = [
        CaseWorkload::Put,
        CaseWorkload::TxnPut,
        CaseWorkload::RangeL,
        CaseWorkload::RangeS,
        CaseWorkload::Watch,
        CaseWorkload::LeaseKeepalive,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            CaseWorkload::Put => "put",
            CaseWorkload::TxnPut => "txn-put",
            CaseWorkload::RangeL => "range-l",
            CaseWorkload::RangeS => "range-s",
            CaseWorkload::Watch => "watch",
            CaseWorkload::LeaseKeepalive => "lease-keepalive",
        }
    }

    /// Whether the client count varies for this workload (the watch
    /// fan-out always has one putting client).
    pub fn varies_clients(self) -> bool {
        self != CaseWorkload::Watch
    }
}

/// One measured case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Case {
    /// Cluster members.
    pub members: usize,
    /// What runs.
    pub workload: CaseWorkload,
    /// Concurrent clients (putting clients for `watch`).
    pub clients: usize,
}

/// Every case of `members` × `workloads` × `clients` (one client count,
/// 1, for `watch`), in run order.
pub fn cases(members: &[usize], workloads: &[CaseWorkload], clients: &[usize]) -> Vec<Case> {
    let mut cases = Vec::new();
    for &members in members {
        for &workload in workloads {
            let counts: &[usize] = if workload.varies_clients() {
                clients
            } else {
                &[1]
            };
            for &clients in counts {
                cases.push(Case {
                    members,
                    workload,
                    clients,
                });
            }
        }
    }
    cases
}

/// How long each case runs per server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Timing {
    /// Slices per server and case; servers alternate slice by slice.
    pub slices: usize,
    /// Length of one slice, milliseconds.
    pub slice_ms: u64,
}

impl Timing {
    /// Length of one slice.
    pub fn slice(&self) -> Duration {
        Duration::from_millis(self.slice_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_runs_once_per_cluster_size() {
        let cases = cases(
            &[1, 3],
            &[CaseWorkload::Put, CaseWorkload::Watch],
            &[1, 16, 64],
        );
        assert_eq!(cases.len(), 2 * (3 + 1));
        assert_eq!(
            cases
                .iter()
                .filter(|c| c.workload == CaseWorkload::Watch)
                .count(),
            2
        );
        assert!(cases[..4].iter().all(|c| c.members == 1));
    }
}
