//! The nemesis: injects one fault at a time into a started [`Cluster`]
//! (fault for `interval`, then heal and calm for `interval`), records each
//! fault's start and end, and heals everything at the end.
//!
//! Faults (Jepsen's etcd test names): `kill` SIGKILLs a member and restarts
//! it on its data directory; `pause` SIGSTOPs a member and SIGCONTs it;
//! `partition` cuts the network between a minority and the majority (with
//! namespaces or TCP proxies, see [`crate::partition`]) and checks that the
//! minority stopped serving writes; `leader` aims the faults at the
//! member that currently leads (alone: kill and pause of the leader);
//! `member` removes a member (Cluster.MemberRemove), wipes it, and heals by
//! adding it back as a new member (Cluster.MemberAdd, empty data
//! directory, `--initial-cluster-state existing`); `disk` kills a member,
//! damages its WAL tail ([`crate::disk`]) and restarts it: it must repair
//! or refuse to start (recorded in the fault's `outcome`); one that refused
//! is replaced as by `member`; `clock` restarts a member with its Raft
//! ticks slowed or sped up ([`CLOCK_TICK_PERCENTS`]), and restarts it at
//! the normal rate when healed.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::client;
use crate::cluster::Cluster;
use crate::disk::{self, Damage};
use crate::partition;
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
    /// Remove a member and wipe it, then add it back as a new member.
    Member,
    /// Kill a member, damage its WAL tail, restart it.
    Disk,
    /// Restart a member with its ticks slowed or sped up, then restart it
    /// at the normal rate.
    Clock,
}

/// The tick periods the `clock` fault gives a member, in percent of the
/// default (100 ms heartbeat, 1000 ms election timeout): twice and four
/// times as fast, two and three times as slow. A slowed leader's
/// heartbeats still come within the others' election timeout; a sped-up
/// follower calls elections early (pre-vote and the leader's lease must
/// keep it from disrupting a healthy leader). The real process's clock is
/// untouched (no root time changes): what changes is how often its Raft
/// timers fire, as the simulator's clock-skew scenario does per member.
pub const CLOCK_TICK_PERCENTS: [u64; 4] = [25, 50, 200, 300];

/// How long a restarted member gets, in milliseconds, to either serve a
/// write (it repaired its log) or exit (it refused the damaged log, at
/// start or once the leader showed it lost acknowledged entries).
const DISK_VERDICT_WAIT_MS: u64 = 20_000;
/// Timeout of one serving probe of that member, in milliseconds.
const DISK_PROBE_TIMEOUT_MS: u64 = 1000;

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
                "member" => plan.faults.push(Fault::Member),
                "disk" => plan.faults.push(Fault::Disk),
                "clock" => plan.faults.push(Fault::Clock),
                "leader" => plan.target_leader = true,
                "none" | "" => {}
                other => {
                    return Err(format!(
                        "unknown fault {other:?} (known: kill, pause, partition, member, disk, clock, leader, none)"
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
    /// What the fault did and how the member took it (`disk`: the damage,
    /// then whether the member repaired or refused to start; `member`: the
    /// ids removed and added).
    pub outcome: Vec<String>,
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
        let (mut event, target) = inject(cluster, plan, fault, recorder).await;
        match fault == Fault::Partition && event.error.is_none() {
            true => hold_partition(cluster, &mut event, interval).await,
            false => tokio::time::sleep(interval).await,
        }
        if fault == Fault::Disk {
            disk_verdict(cluster, target, &mut event).await;
        }
        if fault == Fault::Clock {
            match cluster.restart_with_ticks(target, 100) {
                Ok(()) => event
                    .outcome
                    .push("restarted at the normal tick rate".into()),
                Err(e) => {
                    event.error.get_or_insert(format!("restart: {e}"));
                }
            }
        }
        if fault == Fault::Member && cluster.is_removed(target) {
            match add_member(cluster, target).await {
                Ok(text) => event.outcome.push(text),
                Err(e) => {
                    event.error.get_or_insert(e);
                }
            }
        }
        if let Err(e) = heal(cluster).await {
            event.error.get_or_insert(e);
        }
        event.end_ns = Some(recorder.now_ns());
        events.push(event);
    }
    if let Err(e) = heal(cluster).await
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
) -> (FaultEvent, usize) {
    let (target, leader) = pick_target(cluster, plan).await;
    let start_ns = recorder.now_ns();
    let mut minority = vec![target];
    let mut outcome = Vec::new();
    let result = match fault {
        Fault::Member => remove_member(cluster, target)
            .await
            .map(|t| outcome.push(t)),
        Fault::Disk => damage_disk(cluster, target).map(|t| outcome.push(t)),
        Fault::Kill => {
            cluster.kill(target);
            Ok(())
        }
        Fault::Pause => cluster.pause(target),
        Fault::Clock => skew_ticks(cluster, target).map(|t| outcome.push(t)),
        Fault::Partition => {
            minority = pick_minority(cluster.members().len(), target, leader);
            partition::cut(cluster, &minority).map(|t| outcome.push(t))
        }
    };
    let names = minority
        .iter()
        .map(|&i| cluster.members()[i].name.clone())
        .collect();
    let event = FaultEvent {
        fault,
        members: names,
        start_ns,
        end_ns: None,
        leader,
        error: result.err(),
        outcome,
    };
    (event, target)
}

/// Every member's client URL but `target`'s.
fn other_urls(cluster: &Cluster, target: usize) -> Vec<String> {
    let mut urls = cluster.client_urls();
    urls.remove(target);
    urls
}

/// Removes member `target` through another member, then kills and wipes
/// it. Returns what was done. Errors: the removal was refused (the member
/// is left as it was).
async fn remove_member(cluster: &mut Cluster, target: usize) -> Result<String, String> {
    let others = other_urls(cluster, target);
    let peer_url = cluster.members()[target].peer_url.clone();
    let id = client::member_id(&others, &peer_url).await?;
    client::member_remove(&others, id).await?;
    cluster
        .wipe(target)
        .map_err(|e| format!("wiping {}: {e}", cluster.members()[target].name))?;
    Ok(format!(
        "removed member {id:x} and wiped its data directory"
    ))
}

/// Adds wiped member `i` back through another member and starts it.
async fn add_member(cluster: &mut Cluster, i: usize) -> Result<String, String> {
    let others = other_urls(cluster, i);
    let peer_url = cluster.members()[i].peer_url.clone();
    let id = client::member_add(&others, &peer_url).await?;
    cluster
        .rejoin(i)
        .map_err(|e| format!("starting {}: {e}", cluster.members()[i].name))?;
    Ok(format!(
        "added back as new member {id:x} (empty data directory)"
    ))
}

/// Restarts member `target` with its ticks at a random one of
/// [`CLOCK_TICK_PERCENTS`]. Returns what was done. Errors: the restart.
fn skew_ticks(cluster: &mut Cluster, target: usize) -> Result<String, String> {
    let percent = CLOCK_TICK_PERCENTS[fastrand::usize(0..CLOCK_TICK_PERCENTS.len())];
    let (heartbeat_ms, election_ms) = crate::cluster::tick_flags_ms(percent);
    cluster
        .restart_with_ticks(target, percent)
        .map_err(|e| format!("restart: {e}"))?;
    Ok(format!(
        "restarted with ticks at {percent}% of the default period (--heartbeat-interval={heartbeat_ms} --election-timeout={election_ms})"
    ))
}

/// Kills member `target`, damages its WAL tail, restarts it.
fn damage_disk(cluster: &mut Cluster, target: usize) -> Result<String, String> {
    cluster.kill(target);
    let damage = match fastrand::bool() {
        true => Damage::Truncate,
        false => Damage::FlipBit,
    };
    let done = disk::damage_wal_tail(&cluster.wal_dir(target), damage);
    cluster
        .restart(target)
        .map_err(|e| format!("restart: {e}"))?;
    done
}

/// Records whether the member the `disk` fault hit kept running (it
/// repaired its log, or the damage was past its last record) or refused
/// to start; one that refused is replaced by a new member.
async fn disk_verdict(cluster: &mut Cluster, target: usize, event: &mut FaultEvent) {
    let url = cluster.client_urls()[target].clone();
    let deadline = Instant::now() + Duration::from_millis(DISK_VERDICT_WAIT_MS);
    let status = loop {
        if let Some(status) = cluster.exited(target) {
            break status;
        }
        if client::serves(&url, DISK_PROBE_TIMEOUT_MS).await {
            event
                .outcome
                .push("started on the damaged log (repaired it) and serves".into());
            return;
        }
        if Instant::now() >= deadline {
            event.error.get_or_insert(format!(
                "the member neither served nor exited within {DISK_VERDICT_WAIT_MS} ms of its restart on a damaged log"
            ));
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    event.outcome.push(format!("refused to start ({status})"));
    let replaced = async {
        let removed = remove_member(cluster, target).await?;
        let added = add_member(cluster, target).await?;
        Ok::<_, String>(format!("replaced: {removed}; {added}"))
    };
    match replaced.await {
        Ok(text) => event.outcome.push(text),
        Err(e) => {
            event
                .error
                .get_or_insert(format!("replacing the refused member: {e}"));
        }
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

/// Holds a partition for `interval` and records whether its minority
/// stopped serving writes (and, with proxies, what they did).
async fn hold_partition(cluster: &Cluster, event: &mut FaultEvent, interval: Duration) {
    match partition::hold(cluster, &event.members, interval).await {
        Ok(text) => event.outcome.push(text),
        Err(e) => {
            event.error.get_or_insert(e);
        }
    }
    if let Some(summary) = cluster.network().proxy_summary() {
        event.outcome.push(summary);
    }
}

/// Heals every fault: resumes paused members, adds removed ones back,
/// restarts killed (or crashed) ones, removes every network cut. Errors:
/// the first failure.
pub async fn heal(cluster: &mut Cluster) -> Result<(), String> {
    let mut first_error = Ok(());
    let mut keep = |result: Result<(), String>| {
        if first_error.is_ok() {
            first_error = result;
        }
    };
    let network = cluster.network_mut();
    if network.is_partitioned() {
        keep(network.heal());
    }
    for i in 0..cluster.members().len() {
        if cluster.is_removed(i) {
            keep(add_member(cluster, i).await.map(|_| ()));
            continue;
        }
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
        let plan = NemesisPlan::parse(&names(&["member", "disk"])).expect("member, disk");
        assert_eq!(plan.faults, vec![Fault::Member, Fault::Disk]);
        let clock = NemesisPlan::parse(&names(&["kill", "clock"])).expect("kill, clock");
        assert_eq!(clock.faults, vec![Fault::Kill, Fault::Clock]);
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
