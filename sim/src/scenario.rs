//! The named scenarios a user runs, and the faults each lets the nemesis
//! draw.

use std::fmt;
use std::str::FromStr;

/// A named simulation scenario: a safety phase under its faults, then a
/// liveness phase with every fault healed, then the end-of-run checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Partitions that isolate the current leader with a minority (split
    /// brain), and partitions into random halves.
    SplitBrain,
    /// The leader is killed (and restarted later) or paused.
    LeaderLoss,
    /// Members lose power (unsynced writes lost) and restart.
    CrashRestart,
    /// A member's WAL fsync fails (it stops), and members lose power on
    /// disks that persist unsynced sectors in any order.
    DiskFaults,
    /// Each member's clock runs at its own rate (0.6-1.6x), under leader
    /// pauses, slow networks and split brain.
    ClockSkew,
    /// Membership changes through the Cluster API (add a learner on an
    /// empty disk, promote it, remove a member or the leader, re-add the
    /// removed host) under partitions, crashes and leader loss.
    Membership,
    /// Every fault of the other scenarios, drawn at random.
    Random,
}

/// The kinds of fault the nemesis draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Split the members into two random halves.
    PartitionHalves,
    /// Cut the current leader off together with a minority.
    IsolateLeader,
    /// Kill a random member, crash its disks, restart it at heal.
    CrashMember,
    /// Kill the leader, crash its disks, restart it at heal.
    CrashLeader,
    /// Pause the leader's host, resume it at heal.
    PauseLeader,
    /// Two random halves joined only through one bridge member.
    Bridge,
    /// Each member reaches only its two neighbours around a random ring.
    Ring,
    /// Nothing the leader sends arrives; it still hears the others.
    LeaderCannotSend,
    /// The leader hears nobody; what it sends still arrives.
    LeaderCannotHear,
    /// Every message takes 20-200 ms.
    SlowNetwork,
    /// Members drop 5-30% of the Raft messages they send and send 5-30%
    /// of the rest twice (keel's transport hook for madsim: its simulated
    /// TCP loses nothing).
    LossyNetwork,
    /// A random member's next WAL fsync fails; at heal it loses power and
    /// restarts.
    FsyncFailure,
    /// The leader is asked to hand leadership to a random other member
    /// (Maintenance.MoveLeader).
    TransferLeader,
}

impl Scenario {
    /// Every scenario, in the order `sweep --scenario all` runs them.
    pub const ALL: [Scenario; 7] = [
        Scenario::SplitBrain,
        Scenario::LeaderLoss,
        Scenario::CrashRestart,
        Scenario::DiskFaults,
        Scenario::ClockSkew,
        Scenario::Membership,
        Scenario::Random,
    ];

    /// The scenario's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::SplitBrain => "split-brain",
            Scenario::LeaderLoss => "leader-loss",
            Scenario::CrashRestart => "crash-restart",
            Scenario::DiskFaults => "disk-faults",
            Scenario::ClockSkew => "clock-skew",
            Scenario::Membership => "membership",
            Scenario::Random => "random",
        }
    }

    /// The faults the nemesis may draw in this scenario.
    pub fn faults(self) -> &'static [FaultKind] {
        use FaultKind::*;
        match self {
            Scenario::SplitBrain => &[
                IsolateLeader,
                IsolateLeader,
                IsolateLeader,
                PartitionHalves,
                Bridge,
                Ring,
                LeaderCannotSend,
                LeaderCannotHear,
            ],
            Scenario::LeaderLoss => &[CrashLeader, PauseLeader, TransferLeader],
            Scenario::CrashRestart => &[CrashMember, CrashLeader],
            Scenario::DiskFaults => &[FsyncFailure, FsyncFailure, CrashMember, CrashLeader],
            Scenario::ClockSkew => &[PauseLeader, SlowNetwork, IsolateLeader],
            Scenario::Membership => &[
                IsolateLeader,
                PartitionHalves,
                LeaderCannotSend,
                CrashMember,
                CrashLeader,
                PauseLeader,
            ],
            Scenario::Random => &[
                PartitionHalves,
                IsolateLeader,
                Bridge,
                Ring,
                LeaderCannotSend,
                LeaderCannotHear,
                CrashMember,
                CrashLeader,
                PauseLeader,
                SlowNetwork,
                FsyncFailure,
                TransferLeader,
                LossyNetwork,
            ],
        }
    }

    /// How many members the scenario's cluster has: split brain needs a
    /// minority of two beside the leader, so it runs five.
    pub fn members(self) -> u8 {
        match self {
            Scenario::SplitBrain | Scenario::ClockSkew | Scenario::Random => 5,
            Scenario::LeaderLoss
            | Scenario::CrashRestart
            | Scenario::DiskFaults
            | Scenario::Membership => 3,
        }
    }

    /// Hosts beyond [`Scenario::members`] that start empty, for members
    /// added during the run (`membership`: four, a fresh address for each
    /// member added in a run; the cluster grows to four voters before a
    /// removal brings it back to three).
    pub fn spare_hosts(self) -> u8 {
        if self.changes_membership() { 4 } else { 0 }
    }

    /// Whether the run changes the cluster's membership through the
    /// Cluster API while the nemesis strikes.
    pub fn changes_membership(self) -> bool {
        matches!(self, Scenario::Membership)
    }

    /// Whether the members' simulated disks persist the unsynced sectors
    /// of their last writes in any order at a power loss (rather than in
    /// order, the last one torn).
    pub fn reordering_disks(self) -> bool {
        matches!(self, Scenario::DiskFaults | Scenario::Random)
    }

    /// Whether each member's clock runs at its own rate, drawn from the
    /// seed.
    pub fn clock_drift(self) -> bool {
        matches!(self, Scenario::ClockSkew | Scenario::Random)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(name: &str) -> Result<Scenario, String> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
                format!("unknown scenario {name:?}; known: {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for scenario in Scenario::ALL {
            assert_eq!(scenario.name().parse::<Scenario>(), Ok(scenario));
            assert!(!scenario.faults().is_empty());
        }
        assert!("nope".parse::<Scenario>().is_err());
    }
}
