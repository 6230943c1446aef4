//! The cluster: members, removed ids, cluster id; conf-change validation
//! and application (etcd `membership.RaftCluster`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::member::first_u64;
use super::{ConfChangeContext, Member, MembershipError};
use crate::raft::{ConfChange, ConfChangeSingle, ConfChangeType};

/// Most learners a cluster may have at once (etcd 3.4/3.5 `maxLearners`).
pub const MAX_LEARNERS: usize = 1;

/// etcd's cluster id: the first 8 bytes (big-endian) of the sha1 of the
/// member ids sorted ascending, each as 8 big-endian bytes
/// (`RaftCluster.genID`).
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut hasher = Sha1::new();
    for id in ids {
        hasher.update(id.to_be_bytes());
    }
    first_u64(&hasher.finalize())
}

/// The replicated membership state, as stored in a state-machine snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSnapshot {
    /// Cluster id.
    pub cluster_id: u64,
    /// Members, ascending by id.
    pub members: Vec<Member>,
    /// Ids removed for good, ascending.
    pub removed: Vec<u64>,
}

/// Members of the cluster and ids removed from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    pub(super) cluster_id: u64,
    pub(super) members: BTreeMap<u64, Member>,
    pub(super) removed: BTreeSet<u64>,
}

impl Cluster {
    /// The cluster bootstrapped with `members` (`--initial-cluster`); its id
    /// is [`cluster_id`] of their ids.
    ///
    /// Errors: duplicate id → [`MembershipError::IdExists`]; a peer URL used
    /// twice → [`MembershipError::PeerUrlExists`]; a member without peer
    /// URLs → [`MembershipError::BadUrls`].
    pub fn bootstrap(members: Vec<Member>) -> Result<Cluster, MembershipError> {
        let mut cluster = Cluster::empty(0);
        for member in members {
            cluster.check_new_member(&member)?;
            cluster.members.insert(member.id, member);
        }
        let ids: Vec<u64> = cluster.members.keys().copied().collect();
        cluster.cluster_id = cluster_id(&ids);
        Ok(cluster)
    }

    /// A cluster with no members yet and a known id (a joining member that
    /// learns the members from the log or a snapshot).
    pub fn empty(cluster_id: u64) -> Cluster {
        Cluster {
            cluster_id,
            members: BTreeMap::new(),
            removed: BTreeSet::new(),
        }
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> u64 {
        self.cluster_id
    }

    /// Member `id`, if present.
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.get(&id)
    }

    /// All members, ascending by id.
    pub fn members(&self) -> Vec<&Member> {
        self.members.values().collect()
    }

    /// True when `id` was removed (it may never rejoin).
    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    /// Checks a conf change against the current members without applying
    /// it (the server calls this before proposing; apply calls it again).
    ///
    /// Errors: see [`Cluster::apply_conf_change`].
    pub fn validate_conf_change(&self, change: &ConfChange) -> Result<(), MembershipError> {
        self.clone().apply_conf_change(change)
    }

    /// Validates and applies a conf change, all its single changes or none.
    /// An empty change (leave joint consensus) changes no member.
    ///
    /// Errors: removed id → [`MembershipError::IdRemoved`]; adding an
    /// existing id → [`MembershipError::IdExists`]; a peer URL in use →
    /// [`MembershipError::PeerUrlExists`]; a second learner →
    /// [`MembershipError::TooManyLearners`]; promoting a voter →
    /// [`MembershipError::NotLearner`]; removing or promoting an unknown id
    /// → [`MembershipError::NotFound`]; a bad context →
    /// [`MembershipError::InvalidContext`].
    pub fn apply_conf_change(&mut self, change: &ConfChange) -> Result<(), MembershipError> {
        let context = ConfChangeContext::decode(&change.context)?;
        let mut next = self.clone();
        for single in &change.changes {
            next.apply_single(single, &context)?;
        }
        // O(members x peer URLs), once per membership change: checked in
        // release, so a member never serves with a broken member list.
        if let Err(violation) = next.check_invariants() {
            panic!("membership: applying {change:?} gave {violation}");
        }
        *self = next;
        Ok(())
    }

    /// Replaces the peer URLs of member `id` (etcd `MemberUpdate`).
    ///
    /// Errors: [`MembershipError::NotFound`]; [`MembershipError::BadUrls`];
    /// a URL of another member → [`MembershipError::PeerUrlExists`].
    pub fn update_peer_urls(
        &mut self,
        id: u64,
        peer_urls: &[String],
    ) -> Result<(), MembershipError> {
        if !self.members.contains_key(&id) {
            return Err(MembershipError::NotFound);
        }
        check_urls(peer_urls)?;
        let taken = self
            .members
            .values()
            .filter(|member| member.id != id)
            .any(|member| member.peer_urls.iter().any(|url| peer_urls.contains(url)));
        if taken {
            return Err(MembershipError::PeerUrlExists);
        }
        if let Some(member) = self.members.get_mut(&id) {
            member.peer_urls = peer_urls.to_vec();
            member.peer_urls.sort();
        }
        Ok(())
    }

    /// Records the name and client URLs a started member publishes (etcd
    /// `ClusterMemberAttrSet`).
    ///
    /// Errors: [`MembershipError::NotFound`] (also for a removed id).
    pub fn set_attributes(
        &mut self,
        id: u64,
        name: &str,
        client_urls: &[String],
    ) -> Result<(), MembershipError> {
        let member = self.members.get_mut(&id).ok_or(MembershipError::NotFound)?;
        member.name = name.to_string();
        member.client_urls = client_urls.to_vec();
        Ok(())
    }

    /// The replicated state, for a snapshot.
    pub fn snapshot(&self) -> ClusterSnapshot {
        ClusterSnapshot {
            cluster_id: self.cluster_id,
            members: self.members.values().cloned().collect(),
            removed: self.removed.iter().copied().collect(),
        }
    }

    /// The cluster held by `snapshot`.
    ///
    /// Errors: a duplicate or removed member id → [`MembershipError::IdExists`].
    pub fn restore(snapshot: ClusterSnapshot) -> Result<Cluster, MembershipError> {
        let mut cluster = Cluster::empty(snapshot.cluster_id);
        cluster.removed = snapshot.removed.into_iter().collect();
        for member in snapshot.members {
            if cluster.removed.contains(&member.id) {
                return Err(MembershipError::IdExists);
            }
            if cluster.members.insert(member.id, member).is_some() {
                return Err(MembershipError::IdExists);
            }
        }
        Ok(cluster)
    }

    fn apply_single(
        &mut self,
        single: &ConfChangeSingle,
        context: &ConfChangeContext,
    ) -> Result<(), MembershipError> {
        let id = single.node_id;
        if self.removed.contains(&id) {
            return Err(MembershipError::IdRemoved);
        }
        match single.change_type {
            ConfChangeType::AddNode if context.is_promote => self.promote(id),
            ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => {
                let member = context.member(id).ok_or(MembershipError::InvalidContext)?;
                let is_learner = single.change_type == ConfChangeType::AddLearnerNode;
                if member.is_learner != is_learner {
                    return Err(MembershipError::InvalidContext);
                }
                self.add(member.clone())
            }
            ConfChangeType::RemoveNode => {
                self.members.remove(&id).ok_or(MembershipError::NotFound)?;
                self.removed.insert(id);
                Ok(())
            }
        }
    }

    fn add(&mut self, member: Member) -> Result<(), MembershipError> {
        self.check_new_member(&member)?;
        let learners = self.members.values().filter(|m| m.is_learner).count();
        if member.is_learner && learners + 1 > MAX_LEARNERS {
            return Err(MembershipError::TooManyLearners);
        }
        self.members.insert(member.id, member);
        Ok(())
    }

    fn promote(&mut self, id: u64) -> Result<(), MembershipError> {
        let member = self.members.get_mut(&id).ok_or(MembershipError::NotFound)?;
        if !member.is_learner {
            return Err(MembershipError::NotLearner);
        }
        member.is_learner = false;
        Ok(())
    }

    fn check_new_member(&self, member: &Member) -> Result<(), MembershipError> {
        if member.id == 0 {
            return Err(MembershipError::InvalidContext);
        }
        if self.members.contains_key(&member.id) {
            return Err(MembershipError::IdExists);
        }
        check_urls(&member.peer_urls)?;
        let taken = self
            .members
            .values()
            .any(|m| m.peer_urls.iter().any(|url| member.peer_urls.contains(url)));
        if taken {
            return Err(MembershipError::PeerUrlExists);
        }
        Ok(())
    }
}

fn check_urls(urls: &[String]) -> Result<(), MembershipError> {
    if urls.is_empty() || urls.iter().any(|url| url.is_empty()) {
        return Err(MembershipError::BadUrls);
    }
    Ok(())
}
