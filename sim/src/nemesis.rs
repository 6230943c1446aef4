//! The nemesis: draws faults from the seed (madsim's deterministic RNG),
//! applies them to the cluster, heals them, and logs each step.

use std::time::Duration;

use madsim::net::NetSim;
use madsim::rand::Rng;
use madsim::rand::seq::SliceRandom;

use crate::cluster::Cluster;
use crate::scenario::FaultKind;
use crate::sim_log::SharedLog;

/// A fault in force, remembered so that `heal` undoes exactly it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Links between the two sides are cut both ways.
    Partition {
        /// One side (the other side is every other member).
        side: Vec<u8>,
    },
    /// The member was killed and its disks crashed.
    Crashed {
        /// The member.
        member: u8,
    },
    /// The member's host is paused.
    Paused {
        /// The member.
        member: u8,
    },
}

/// Draws and applies faults of the scenario's kinds.
pub struct Nemesis {
    kinds: &'static [FaultKind],
    log: SharedLog,
}

impl Nemesis {
    /// A nemesis drawing from `kinds`, logging to `log`.
    pub fn new(kinds: &'static [FaultKind], log: SharedLog) -> Nemesis {
        Nemesis { kinds, log }
    }

    /// Draws one fault and applies it to `cluster`; returns it for `heal`.
    pub async fn strike(&self, cluster: &mut Cluster) -> Fault {
        let kind = *self
            .kinds
            .choose(&mut madsim::rand::thread_rng())
            .unwrap_or(&FaultKind::PartitionHalves);
        let size = cluster.size();
        let leader = cluster.leader().await.map(|(index, _)| index);
        let random_member = madsim::rand::thread_rng().gen_range(0..size);
        let fault = match kind {
            FaultKind::PartitionHalves => Fault::Partition {
                side: random_side(size),
            },
            FaultKind::IsolateLeader => Fault::Partition {
                side: leader_minority(size, leader.unwrap_or(random_member)),
            },
            FaultKind::CrashMember => Fault::Crashed {
                member: random_member,
            },
            FaultKind::CrashLeader => Fault::Crashed {
                member: leader.unwrap_or(random_member),
            },
            FaultKind::PauseLeader => Fault::Paused {
                member: leader.unwrap_or(random_member),
            },
        };
        let leader_text = leader.map_or("none".into(), |m| format!("m{m}"));
        self.log.push(format!(
            "nemesis: {kind:?} (leader {leader_text}) -> {fault:?}"
        ));
        apply(cluster, &fault);
        fault
    }

    /// Undoes `fault`.
    pub fn heal(&self, cluster: &mut Cluster, fault: &Fault) {
        match fault {
            Fault::Partition { side } => set_partition(cluster, side, false),
            Fault::Crashed { member } => cluster.restart(*member),
            Fault::Paused { member } => cluster.resume(*member),
        }
        self.log.push(format!("nemesis: healed {fault:?}"));
    }

    /// Runs faults for `duration_ms`: strike, hold 1–4 s, heal, rest
    /// 0.5–2 s, again.
    pub async fn run(&self, cluster: &mut Cluster, duration_ms: u64) {
        let end = madsim::time::Instant::now() + Duration::from_millis(duration_ms);
        while madsim::time::Instant::now() < end {
            let fault = self.strike(cluster).await;
            sleep_between_ms(1000, 4000).await;
            self.heal(cluster, &fault);
            sleep_between_ms(500, 2000).await;
        }
    }
}

fn apply(cluster: &mut Cluster, fault: &Fault) {
    match fault {
        Fault::Partition { side } => set_partition(cluster, side, true),
        Fault::Crashed { member } => cluster.crash(*member),
        Fault::Paused { member } => cluster.pause(*member),
    }
}

/// Cuts (or restores) every link between `side` and the other members,
/// both ways.
fn set_partition(cluster: &Cluster, side: &[u8], cut: bool) {
    let net = NetSim::current();
    for a in 0..cluster.size() {
        for b in 0..cluster.size() {
            if side.contains(&a) == side.contains(&b) {
                continue;
            }
            let (na, nb) = (
                cluster.hosts[usize::from(a)].node,
                cluster.hosts[usize::from(b)].node,
            );
            if cut {
                net.clog_link(na, nb);
            } else {
                net.unclog_link(na, nb);
            }
        }
    }
}

/// A random side of at most half the members (at least one).
fn random_side(size: u8) -> Vec<u8> {
    let mut members: Vec<u8> = (0..size).collect();
    members.shuffle(&mut madsim::rand::thread_rng());
    let count = madsim::rand::thread_rng().gen_range(1..=(size / 2).max(1));
    members.truncate(usize::from(count));
    members.sort_unstable();
    members
}

/// `leader` and as many other random members as keep the side a minority:
/// the old leader keeps followers that still hear it, while the majority
/// elects a new leader (split brain).
fn leader_minority(size: u8, leader: u8) -> Vec<u8> {
    let mut others: Vec<u8> = (0..size).filter(|&m| m != leader).collect();
    others.shuffle(&mut madsim::rand::thread_rng());
    let minority = usize::from((size - 1) / 2);
    let mut side: Vec<u8> = others
        .into_iter()
        .take(minority.saturating_sub(1))
        .collect();
    side.push(leader);
    side.sort_unstable();
    side
}

/// Sleeps a random time in `[low_ms, high_ms)`.
pub async fn sleep_between_ms(low_ms: u64, high_ms: u64) {
    let ms = madsim::rand::thread_rng().gen_range(low_ms..high_ms);
    madsim::time::sleep(Duration::from_millis(ms)).await;
}
