//! The nemesis: injects one fault at a time into a started [`Cluster`]
//! (fault for `interval`, then heal and calm for `interval`), records each
//! fault's start and end, and heals everything at the end.
//!
//! Faults (Jepsen's etcd test names): `kill` SIGKILLs a member and restarts
//! it on its data directory; `pause` SIGSTOPs a member and SIGCONTs it;
//! `partition` cuts the network between a minority and the majority (with
//! namespaces, see [`crate::network`]); `leader` aims the faults at the
//! member that currently leads (alone: kill and pause of the leader).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client;
use crate::cluster::Cluster;
use crate::recorder::Recorder;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// SIGKILL, then restart.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// Cut the network between groups of members, then heal.
    Partition,
}

/// The faults a run injects and how it picks their targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NemesisPlan {
    /// Faults to choose from (empty: no faults).
    pub faults: Vec<Fault>,
    /// Aim every fault at the current leader.
    pub target_leader: bool,
}

impl NemesisPlan {
    /// Parses `--nemesis` names (kill, pause, partition, leader, none).
    /// Errors name an unknown fault.
    pub fn parse(names: &[String]) -> Result<NemesisPlan, String> {
        let mut plan = NemesisPlan::default();
        for name in names {
            match name.trim() {
                "kill" => plan.faults.push(Fault::Kill),
                "pause" => plan.faults.push(Fault::Pause),
                "partition" => plan.faults.push(Fault::Partition),
                "leader" => plan.target_leader = true,
                "none" | "" => {}
                other => {
                    return Err(format!(
                        "unknown fault {other:?} (known: kill, pause, partition, leader, none)"
                    ));
                }
            }
        }
        if plan.target_leader && plan.faults.is_empty() {
            plan.faults = vec![Fault::Kill, Fault::Pause];
        }
        plan.faults.dedup();
        Ok(plan)
    }

    /// Whether the plan needs a partitionable network.
    pub fn needs_network(&self) -> bool {
        self.faults.contains(&Fault::Partition)
    }
}

/// One injected fault, for the history's timeline and the report.
#[derive(Debug, Clone, Serialize)]
pub struct FaultEvent {
    /// The fault.
    pub fault: Fault,
    /// Names of the members it hit (for a partition: the minority side).
    pub members: Vec<String>,
    /// When it started, nanoseconds since the run started.
    pub start_ns: u64,
    /// When it was healed.
    pub end_ns: Option<u64>,
    /// Whether the target was the leader.
    pub leader: bool,
    /// What went wrong injecting or healing it, if anything.
    pub error: Option<String>,
}

/// Runs the plan until `deadline` (a fault is only started when it can
/// also be healed before the deadline), then heals everything.
pub async fn run(
    cluster: &mut Cluster,
    plan: &NemesisPlan,
    recorder: &Recorder,
    interval: Duration,
    deadline: Instant,
) -> Vec<FaultEvent> {
    let mut events = Vec::new();
    if plan.faults.is_empty() {
        return events;
    }
    loop {
        if Instant::now() + interval * 2 > deadline {
            break;
        }
        tokio::time::sleep(interval).await;
        let fault = plan.faults[fastrand::usize(0..plan.faults.len())];
        let mut event = inject(cluster, plan, fault, recorder).await;
        tokio::time::sleep(interval).await;
        if let Err(e) = heal(cluster) {
            event.error.get_or_insert(e);
        }
        event.end_ns = Some(recorder.now_ns());
        events.push(event);
    }
    if let Err(e) = heal(cluster)
        && let Some(last) = events.last_mut()
    {
        last.error.get_or_insert(e);
    }
    events
}

async fn pick_target(cluster: &Cluster, plan: &NemesisPlan) -> (usize, bool) {
    if plan.target_leader
        && let Some(leader) = client::leader(&cluster.client_urls()).await
    {
        return (leader, true);
    }
    (fastrand::usize(0..cluster.members().len()), false)
}

async fn inject(
    cluster: &mut Cluster,
    plan: &NemesisPlan,
    fault: Fault,
    recorder: &Recorder,
) -> FaultEvent {
    let (target, leader) = pick_target(cluster, plan).await;
    let start_ns = recorder.now_ns();
    let mut minority = vec![target];
    let result = match fault {
        Fault::Kill => {
            cluster.kill(target);
            Ok(())
        }
        Fault::Pause => cluster.pause(target),
        Fault::Partition => {
            minority = pick_minority(cluster.members().len(), target, leader);
            partition(cluster, &minority)
        }
    };
    let names = minority
        .iter()
        .map(|&i| cluster.members()[i].name.clone())
        .collect();
    FaultEvent {
        fault,
        members: names,
        start_ns,
        end_ns: None,
        leader,
        error: result.err(),
    }
}

/// The minority side of a partition: the leader alone, or 1 to
/// (size - 1) / 2 random members including `target`.
fn pick_minority(size: usize, target: usize, leader: bool) -> Vec<usize> {
    let mut minority = vec![target];
    if leader {
        return minority;
    }
    let extra = fastrand::usize(0..(size.saturating_sub(1) / 2).max(1));
    let mut others: Vec<usize> = (0..size).filter(|&i| i != target).collect();
    fastrand::shuffle(&mut others);
    minority.extend(others.into_iter().take(extra));
    minority.sort_unstable();
    minority
}

fn partition(cluster: &mut Cluster, minority: &[usize]) -> Result<(), String> {
    let size = cluster.members().len();
    let majority: Vec<usize> = (0..size).filter(|i| !minority.contains(i)).collect();
    let network = cluster
        .network_mut()
        .ok_or("partition needs the namespace network")?;
    network.partition(&[minority.to_vec(), majority])
}

/// Heals every fault: resumes paused members, restarts killed (or
/// crashed) ones, removes every network cut. Errors: the first failure.
pub fn heal(cluster: &mut Cluster) -> Result<(), String> {
    let mut first_error = Ok(());
    let mut keep = |result: Result<(), String>| {
        if first_error.is_ok() {
            first_error = result;
        }
    };
    if let Some(network) = cluster.network_mut()
        && network.is_partitioned()
    {
        keep(network.heal());
    }
    for i in 0..cluster.members().len() {
        if let Some(status) = cluster.exited(i) {
            let name = &cluster.members()[i].name;
            keep(Err(format!("{name} exited on its own: {status}")));
        }
        if cluster.is_paused(i) {
            keep(cluster.resume(i));
        }
        if !cluster.is_running(i) {
            keep(cluster.restart(i).map_err(|e| e.to_string()));
        }
    }
    first_error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn plans_parse_and_leader_alone_means_kill_and_pause() {
        let plan = NemesisPlan::parse(&names(&["kill", "partition"])).expect("known faults");
        assert_eq!(plan.faults, vec![Fault::Kill, Fault::Partition]);
        assert!(!plan.target_leader && plan.needs_network());
        let plan = NemesisPlan::parse(&names(&["leader"])).expect("leader");
        assert_eq!(plan.faults, vec![Fault::Kill, Fault::Pause]);
        assert!(plan.target_leader && !plan.needs_network());
        assert!(
            NemesisPlan::parse(&names(&["none"]))
                .expect("none")
                .faults
                .is_empty()
        );
        assert!(NemesisPlan::parse(&names(&["flood"])).is_err());
    }

    #[test]
    fn a_minority_holds_the_target_and_at_most_half_minus_one() {
        for _ in 0..100 {
            let minority = pick_minority(5, 3, false);
            assert!(minority.contains(&3) && (1..=2).contains(&minority.len()));
            assert_eq!(pick_minority(3, 1, false), vec![1]);
            assert_eq!(pick_minority(5, 4, true), vec![4]);
        }
    }
}
