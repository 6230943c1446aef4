//! The membership driver of the `membership` scenario: while the nemesis
//! strikes, it changes the cluster through the Cluster API and starts or
//! retires hosts to match, in a cycle: add a learner on a spare (or
//! removed) host with empty disks, started with `initial-cluster-state
//! existing`; promote it once it is in sync; remove a voter (half the time
//! the current leader); re-add the removed host; and so on. Every step
//! first reads the member list linearizably and reconciles the hosts with
//! it, so a change whose answer was lost (a timeout) is taken up once the
//! list shows it. At the end, [`Membership::settle`] promotes what is left
//! and requires every member's list to agree.

use std::collections::BTreeSet;
use std::time::Duration;

use madsim::rand::Rng;
use madsim::rand::seq::SliceRandom;

use crate::NodeAddr;
use crate::cluster::Cluster;
use crate::member_api::{MemberInfo, member_add, member_list, member_promote, member_remove};
use crate::sim_log::SharedLog;

/// Drives membership changes; counts what the cluster acknowledged.
pub struct Membership {
    voters_min: usize,
    reuse_addresses: bool,
    used: BTreeSet<u8>,
    log: SharedLog,
    acknowledged: u32,
}

/// The host (by index) whose member has `member`'s peer URL, if any.
fn host_of(cluster: &Cluster, member: &MemberInfo) -> Option<u8> {
    (0..cluster.size()).find(|&i| member.peer_urls.contains(&NodeAddr::member(i).peer_url()))
}

/// Runs `call` on the control host; `Err` if the task ended abnormally.
async fn on_control<T: Send + 'static>(
    cluster: &Cluster,
    call: impl std::future::Future<Output = Result<T, String>> + Send + 'static,
) -> Result<T, String> {
    cluster
        .control
        .spawn(call)
        .await
        .unwrap_or_else(|_| Err("the control task ended abnormally".into()))
}

impl Membership {
    /// A driver for a cluster started with members `0..voters_min`; it
    /// keeps at least `voters_min` voters (it removes only above that),
    /// logging to `log`. With `reuse_addresses` a removed member's host
    /// (its peer URL) is re-added on empty disks, as etcd's runbook for
    /// replacing a failed member does; otherwise each added member gets a
    /// host never used before (see `Scenario::spare_hosts`).
    pub fn new(voters_min: u8, reuse_addresses: bool, log: SharedLog) -> Membership {
        Membership {
            voters_min: usize::from(voters_min),
            reuse_addresses,
            used: (0..voters_min).collect(),
            log,
            acknowledged: 0,
        }
    }

    /// The idle host the next learner is added on: any idle host when
    /// addresses are reused, else one never used.
    fn idle_host(&self, cluster: &Cluster) -> Option<u8> {
        (0..cluster.size()).find(|&i| {
            !cluster.hosts[usize::from(i)].member
                && (self.reuse_addresses || !self.used.contains(&i))
        })
    }

    /// Starts host `index` as a joining member (see [`Cluster::join`]).
    fn join(&mut self, cluster: &mut Cluster, index: u8) {
        self.used.insert(index);
        let current = cluster.members();
        cluster.join(index, &current);
    }

    /// Membership changes the cluster acknowledged so far.
    pub fn acknowledged(&self) -> u32 {
        self.acknowledged
    }

    /// One step: read the list, reconcile the hosts, then promote a
    /// learner, remove a voter above the minimum, or add a learner on an
    /// idle host, whichever the list calls for.
    pub async fn step(&mut self, cluster: &mut Cluster) {
        let Some(list) = self.read_list(cluster).await else {
            self.log.push("membership: no member answered MemberList");
            return;
        };
        self.reconcile(cluster, &list);
        let voters: Vec<&MemberInfo> = list.iter().filter(|m| !m.is_learner).collect();
        if let Some(learner) = list.iter().find(|m| m.is_learner) {
            self.promote(cluster, learner.id).await;
        } else if voters.len() > self.voters_min {
            self.remove_voter(cluster, &voters).await;
        } else if let Some(idle) = self.idle_host(cluster) {
            self.add_learner(cluster, idle).await;
        }
    }

    /// A running member to send a call through, at random.
    fn through(cluster: &Cluster) -> Option<u8> {
        let running: Vec<u8> = cluster
            .members()
            .into_iter()
            .filter(|&i| cluster.hosts[usize::from(i)].running)
            .collect();
        running.choose(&mut madsim::rand::thread_rng()).copied()
    }

    /// The member list, read linearizably through the members in a random
    /// order until one answers (learners refuse, as in etcd).
    async fn read_list(&self, cluster: &Cluster) -> Option<Vec<MemberInfo>> {
        let mut members = cluster.members();
        members.shuffle(&mut madsim::rand::thread_rng());
        for index in members {
            if !cluster.hosts[usize::from(index)].running {
                continue;
            }
            if let Ok(list) = on_control(cluster, member_list(index, true)).await {
                return Some(list);
            }
        }
        None
    }

    /// Starts the hosts of listed members that do not run (an add whose
    /// answer was lost) and retires those of members no longer listed.
    fn reconcile(&mut self, cluster: &mut Cluster, list: &[MemberInfo]) {
        for index in 0..cluster.size() {
            let url = NodeAddr::member(index).peer_url();
            let listed = list.iter().any(|m| m.peer_urls.contains(&url));
            let member = cluster.hosts[usize::from(index)].member;
            if listed && !member {
                self.log.push(format!(
                    "membership: m{index} is listed: starts it on empty disks"
                ));
                self.join(cluster, index);
            } else if !listed && member {
                self.log.push(format!(
                    "membership: m{index} is no longer listed: retires its host"
                ));
                cluster.retire(index);
            }
        }
    }

    /// MemberAdd of host `index` as a learner; on success, starts it on
    /// empty disks with `initial-cluster-state existing`.
    async fn add_learner(&mut self, cluster: &mut Cluster, index: u8) {
        let Some(through) = Membership::through(cluster) else {
            return;
        };
        let url = NodeAddr::member(index).peer_url();
        let answer = on_control(cluster, member_add(through, url, true)).await;
        self.log.push(format!(
            "membership: MemberAdd learner m{index} via m{through}: {}",
            answer
                .as_ref()
                .map_or_else(Clone::clone, |id| format!("added {id:x}"))
        ));
        if answer.is_ok() {
            self.acknowledged += 1;
            self.join(cluster, index);
        }
    }

    /// MemberPromote of learner `id`; refused until it is in sync.
    async fn promote(&mut self, cluster: &Cluster, id: u64) {
        let Some(through) = Membership::through(cluster) else {
            return;
        };
        let answer = on_control(cluster, member_promote(through, id)).await;
        self.log.push(format!(
            "membership: MemberPromote {id:x} via m{through}: {answer:?}"
        ));
        self.acknowledged += u32::from(answer.is_ok());
    }

    /// MemberRemove of the current leader (half the time, when known) or
    /// of a random voter; on success, retires its host.
    async fn remove_voter(&mut self, cluster: &mut Cluster, voters: &[&MemberInfo]) {
        let leader = match madsim::rand::thread_rng().gen_bool(0.5) {
            true => cluster.leader().await.map(|(index, _)| index),
            false => None,
        };
        let target = leader
            .and_then(|l| voters.iter().find(|m| host_of(cluster, m) == Some(l)))
            .or_else(|| voters.choose(&mut madsim::rand::thread_rng()));
        let (Some(target), Some(through)) = (target, Membership::through(cluster)) else {
            return;
        };
        let Some(host) = host_of(cluster, target) else {
            return;
        };
        let role = if leader == Some(host) { "leader " } else { "" };
        let answer = on_control(cluster, member_remove(through, target.id)).await;
        self.log.push(format!(
            "membership: MemberRemove {role}m{host} ({:x}) via m{through}: {answer:?}",
            target.id
        ));
        if answer.is_ok() {
            self.acknowledged += 1;
            cluster.retire(host);
        }
    }

    /// After the faults healed: promotes any learner and waits until every
    /// member's own MemberList equals the linearizable one and every
    /// listed member runs, within `bound_ms`. Returns the members' hosts.
    pub async fn settle(
        &mut self,
        cluster: &mut Cluster,
        bound_ms: u64,
    ) -> Result<Vec<u8>, String> {
        let deadline = madsim::time::Instant::now() + Duration::from_millis(bound_ms);
        let mut last = String::from("no member answered MemberList");
        while madsim::time::Instant::now() < deadline {
            if let Some(list) = self.read_list(cluster).await {
                self.reconcile(cluster, &list);
                match list.iter().find(|m| m.is_learner) {
                    Some(learner) => {
                        last = format!("learner {:x} not promoted", learner.id);
                        self.promote(cluster, learner.id).await;
                    }
                    None => match self.disagreement(cluster, &list).await {
                        None => return Ok(cluster.members()),
                        Some(why) => last = why,
                    },
                }
            }
            madsim::time::sleep(Duration::from_millis(300)).await;
        }
        Err(format!(
            "membership: the member lists did not converge within {bound_ms} ms of healing: {last}"
        ))
    }

    /// Why the members' own lists do not all equal `list`, if they do not.
    async fn disagreement(&self, cluster: &Cluster, list: &[MemberInfo]) -> Option<String> {
        for index in cluster.members() {
            match on_control(cluster, member_list(index, false)).await {
                Ok(own) if own == list => {}
                Ok(own) => return Some(format!("m{index} lists {own:?}, the cluster {list:?}")),
                Err(error) => return Some(format!("m{index} gave no MemberList: {error}")),
            }
        }
        None
    }
}
