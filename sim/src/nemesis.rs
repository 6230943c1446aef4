//! The nemesis: draws faults from the seed (madsim's deterministic RNG),
//! applies them to the cluster, heals them, and logs each step.

use std::time::Duration;

use madsim::net::NetSim;
use madsim::rand::Rng;
use madsim::rand::seq::SliceRandom;

use keel_server::transport::sim_faults::{MessageFaults, set_message_faults};

use crate::cluster::Cluster;
use crate::membership::Membership;
use crate::partition::{self, Shape};
use crate::scenario::FaultKind;
use crate::sim_log::SharedLog;

/// A fault in force, remembered so that `heal` undoes exactly it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The partition's links are cut.
    Partition(Shape),
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
    /// Every message between hosts takes 20-200 ms instead of 1-10 ms.
    SlowNetwork,
    /// Members drop and duplicate the Raft messages they send.
    LossyNetwork {
        /// Messages dropped, per mille.
        drop_per_mille: u32,
        /// Messages sent twice, per mille of those not dropped.
        duplicate_per_mille: u32,
    },
    /// The member's next WAL fsync fails: it stops taking part (what
    /// reached its disk is unknown). Healed by a power loss and restart.
    FsyncFailed {
        /// The member.
        member: u8,
    },
    /// The leader was asked to hand leadership over (MoveLeader); nothing
    /// to heal.
    LeaderMoved {
        /// The leader asked.
        from: u8,
        /// The member asked to take over.
        to: u8,
    },
}

/// Latency of every message while [`Fault::SlowNetwork`] is in force.
const SLOW_LATENCY_MS: std::ops::Range<u64> = 20..200;
/// How many Raft messages in a thousand [`Fault::LossyNetwork`] drops, and
/// duplicates.
const LOSS_PER_MILLE: std::ops::Range<u32> = 50..300;
/// madsim's default message latency, restored at heal.
const NORMAL_LATENCY_MS: std::ops::Range<u64> = 1..10;

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
        let leader = cluster.leader().await.map(|(index, _)| index);
        let fault = draw(kind, &cluster.members(), leader);
        let leader_text = leader.map_or("none".into(), |m| format!("m{m}"));
        self.log.push(format!(
            "nemesis: {kind:?} (leader {leader_text}) -> {fault:?}"
        ));
        if let Fault::LeaderMoved { from, to } = fault {
            let answer = cluster.move_leader(from, to).await;
            self.log
                .push(format!("nemesis: MoveLeader m{from} -> m{to}: {answer:?}"));
        }
        apply(cluster, &fault);
        fault
    }

    /// Undoes `fault`.
    pub fn heal(&self, cluster: &mut Cluster, fault: &Fault) {
        match fault {
            Fault::Partition(shape) => set_links(cluster, shape, false),
            Fault::Crashed { member } => cluster.restart(*member),
            Fault::Paused { member } => cluster.resume(*member),
            Fault::SlowNetwork => set_latency_ms(NORMAL_LATENCY_MS),
            Fault::LossyNetwork { .. } => set_message_faults(MessageFaults::default(), 0),
            Fault::FsyncFailed { member } => {
                cluster.hosts[usize::from(*member)]
                    .storage
                    .wal
                    .fail_next_syncs(0);
                cluster.crash(*member);
                cluster.restart(*member);
            }
            Fault::LeaderMoved { .. } => {}
        }
        self.log.push(format!("nemesis: healed {fault:?}"));
    }

    /// Runs faults for `duration_ms`: strike, hold 1–4 s, heal, rest
    /// 0.5–2 s, again. With `membership`, its changes run while each
    /// fault holds and at each rest's end.
    pub async fn run(
        &self,
        cluster: &mut Cluster,
        duration_ms: u64,
        mut membership: Option<&mut Membership>,
    ) {
        let end = madsim::time::Instant::now() + Duration::from_millis(duration_ms);
        while madsim::time::Instant::now() < end {
            let fault = self.strike(cluster).await;
            let hold_ms = between_ms(1000, 4000);
            hold(cluster, hold_ms, membership.as_deref_mut()).await;
            self.heal(cluster, &fault);
            sleep_between_ms(500, 2000).await;
            if let Some(membership) = membership.as_deref_mut() {
                membership.step(cluster).await;
            }
        }
    }
}

/// Waits `hold_ms` while a fault holds; `membership`'s changes run
/// meanwhile, one step after another (a step may end past the hold).
async fn hold(cluster: &mut Cluster, hold_ms: u64, membership: Option<&mut Membership>) {
    let end = madsim::time::Instant::now() + Duration::from_millis(hold_ms);
    let Some(membership) = membership else {
        madsim::time::sleep_until(end).await;
        return;
    };
    while madsim::time::Instant::now() < end {
        membership.step(cluster).await;
        sleep_between_ms(200, 600).await;
    }
}

/// The fault of `kind` for a cluster of `members` (host indexes) whose
/// leader (by index) is `leader`, if one is known; faults aimed at the
/// leader hit a random member when none is. Partitions are drawn over the
/// members' positions and renamed to their hosts.
fn draw(kind: FaultKind, members: &[u8], leader: Option<u8>) -> Fault {
    let size = members.len() as u8;
    let position = |host: u8| members.iter().position(|&m| m == host).map(|p| p as u8);
    let random_member = madsim::rand::thread_rng().gen_range(0..size.max(1));
    let target = leader.and_then(position).unwrap_or(random_member);
    let fault = draw_positions(kind, size, target, random_member);
    rename(fault, members)
}

/// [`draw`] over positions `0..size`: `target` is the leader's (or a
/// random member's), `random_member` a random one.
fn draw_positions(kind: FaultKind, size: u8, target: u8, random_member: u8) -> Fault {
    match kind {
        FaultKind::PartitionHalves => Fault::Partition(partition::random_halves(size)),
        FaultKind::IsolateLeader => Fault::Partition(partition::leader_minority(size, target)),
        FaultKind::Bridge => Fault::Partition(partition::bridge(size)),
        FaultKind::Ring => Fault::Partition(partition::ring(size)),
        FaultKind::LeaderCannotSend => Fault::Partition(Shape::OneWayFrom { from: target }),
        FaultKind::LeaderCannotHear => Fault::Partition(Shape::OneWayTo { to: target }),
        FaultKind::CrashMember => Fault::Crashed {
            member: random_member,
        },
        FaultKind::CrashLeader => Fault::Crashed { member: target },
        FaultKind::PauseLeader => Fault::Paused { member: target },
        FaultKind::SlowNetwork => Fault::SlowNetwork,
        FaultKind::LossyNetwork => {
            let mut rng = madsim::rand::thread_rng();
            Fault::LossyNetwork {
                drop_per_mille: rng.gen_range(LOSS_PER_MILLE),
                duplicate_per_mille: rng.gen_range(LOSS_PER_MILLE),
            }
        }
        FaultKind::FsyncFailure => Fault::FsyncFailed {
            member: random_member,
        },
        FaultKind::TransferLeader => Fault::LeaderMoved {
            from: target,
            to: (target + madsim::rand::thread_rng().gen_range(1..size.max(2))) % size,
        },
    }
}

/// `fault` drawn over positions in `members`, naming hosts instead.
fn rename(fault: Fault, members: &[u8]) -> Fault {
    let name = |m: u8| members.get(usize::from(m)).copied().unwrap_or(m);
    match fault {
        Fault::Partition(shape) => Fault::Partition(shape.renamed(members)),
        Fault::Crashed { member } => Fault::Crashed {
            member: name(member),
        },
        Fault::Paused { member } => Fault::Paused {
            member: name(member),
        },
        Fault::FsyncFailed { member } => Fault::FsyncFailed {
            member: name(member),
        },
        Fault::LeaderMoved { from, to } => Fault::LeaderMoved {
            from: name(from),
            to: name(to),
        },
        Fault::SlowNetwork => Fault::SlowNetwork,
        lossy @ Fault::LossyNetwork { .. } => lossy,
    }
}

fn apply(cluster: &mut Cluster, fault: &Fault) {
    match fault {
        Fault::Partition(shape) => set_links(cluster, shape, true),
        Fault::Crashed { member } => cluster.crash(*member),
        Fault::Paused { member } => cluster.pause(*member),
        Fault::SlowNetwork => set_latency_ms(SLOW_LATENCY_MS),
        Fault::LossyNetwork {
            drop_per_mille,
            duplicate_per_mille,
        } => {
            let faults = MessageFaults {
                drop_per_mille: *drop_per_mille,
                duplicate_per_mille: *duplicate_per_mille,
            };
            set_message_faults(faults, madsim::rand::thread_rng().r#gen());
        }
        Fault::FsyncFailed { member } => {
            cluster.hosts[usize::from(*member)]
                .storage
                .wal
                .fail_next_syncs(1);
        }
        Fault::LeaderMoved { .. } => {}
    }
}

/// Cuts (or restores) every link `shape` cuts.
fn set_links(cluster: &Cluster, shape: &Shape, cut: bool) {
    let net = NetSim::current();
    for (a, b) in shape.cut_links(cluster.size()) {
        let (from, to) = (
            cluster.hosts[usize::from(a)].node,
            cluster.hosts[usize::from(b)].node,
        );
        if cut {
            net.clog_link(from, to);
        } else {
            net.unclog_link(from, to);
        }
    }
}

/// Sets the latency of every message between hosts to `range_ms`.
fn set_latency_ms(range_ms: std::ops::Range<u64>) {
    NetSim::current().update_config(|config| {
        config.send_latency =
            Duration::from_millis(range_ms.start)..Duration::from_millis(range_ms.end);
    });
}

/// A random time in `[low_ms, high_ms)`, in ms.
fn between_ms(low_ms: u64, high_ms: u64) -> u64 {
    madsim::rand::thread_rng().gen_range(low_ms..high_ms)
}

/// Sleeps a random time in `[low_ms, high_ms)`.
pub async fn sleep_between_ms(low_ms: u64, high_ms: u64) {
    madsim::time::sleep(Duration::from_millis(between_ms(low_ms, high_ms))).await;
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use keel_server::transport::sim_faults::{MessageFaults, apply, set_message_faults};

    fn messages() -> Vec<Bytes> {
        (0..100u8).map(|i| Bytes::from(vec![i])).collect()
    }

    #[test]
    fn the_transport_hook_drops_and_duplicates_as_set() {
        set_message_faults(MessageFaults::default(), 1);
        assert_eq!(apply(messages()), messages());
        let all_dropped = MessageFaults {
            drop_per_mille: 1000,
            duplicate_per_mille: 0,
        };
        set_message_faults(all_dropped, 1);
        assert!(apply(messages()).is_empty());
        let all_twice = MessageFaults {
            drop_per_mille: 0,
            duplicate_per_mille: 1000,
        };
        set_message_faults(all_twice, 1);
        let doubled: Vec<Bytes> = messages()
            .into_iter()
            .flat_map(|m| [m.clone(), m])
            .collect();
        assert_eq!(apply(messages()), doubled);
        let some = MessageFaults {
            drop_per_mille: 200,
            duplicate_per_mille: 200,
        };
        set_message_faults(some, 7);
        let first = apply(messages());
        set_message_faults(some, 7);
        assert_eq!(apply(messages()), first, "the same seed draws the same");
        assert!(first.len() != 100 && !first.is_empty());
        set_message_faults(MessageFaults::default(), 0);
    }
}
