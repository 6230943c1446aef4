//! Starting a member: a fresh bootstrap from the configuration, or a restart
//! from the data directory (newest valid snapshot file + WAL replay), as etcd's
//! `etcdserver/bootstrap.go`.
//!
//! A fresh member of a new cluster writes, like etcd, one `AddNode`
//! conf-change entry per initial member (term 1, indexes `1..=n`, ascending
//! member id, the member's attributes in the context) and a hard state
//! committing them. Every initial member writes the same entries, so their
//! logs match; Raft and the state machine learn the initial configuration by
//! applying them, and a restart or a later member replays them like any entry.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use keel_kernel::apply::{StateMachine, StateMachineConfig};
use keel_kernel::membership::{Cluster, Member};
use keel_kernel::raft::{self, Entry, HardState, MemoryStorage, RawNode};
use keel_wal::segment::SegmentName;
use keel_wal::{FsStorage, Metadata, SnapshotFiles, Storage, Wal, WalError};

use super::settings::NodeSettings;
use crate::config::ClusterState;

/// Most snapshot files one save leaves on disk (etcd keeps 5). Once a
/// snapshot and its WAL marker are durable the driver removes every older
/// file (the WAL below it is purged, so they are of no use), so a member
/// holds at most two: the newest, and one being written.
pub const SNAPSHOT_FILES_KEPT: usize = 5;

/// The two directories a member writes: `<data-dir>/member/wal` and
/// `<data-dir>/member/snap` (etcd's layout), over any [`Storage`].
#[derive(Clone, Debug)]
pub struct NodeStorage<S: Storage> {
    /// Where WAL segments live.
    pub wal: S,
    /// Where state-machine snapshot files live.
    pub snap: S,
}

impl NodeStorage<FsStorage> {
    /// Real directories under `data_dir`, created if missing.
    /// Errors: a directory cannot be created.
    pub fn on_disk(data_dir: &Path) -> io::Result<NodeStorage<FsStorage>> {
        let member = data_dir.join("member");
        Ok(NodeStorage {
            wal: FsStorage::open(member.join("wal"))?,
            snap: FsStorage::open(member.join("snap"))?,
        })
    }
}

/// Why a member could not start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The WAL or a snapshot file could not be read or written.
    #[error("keel: storage: {0}")]
    Wal(#[from] WalError),
    /// The configuration describes an impossible cluster.
    #[error("keel: {0}")]
    Config(String),
    /// The recovered state is inconsistent (Raft refused it, or a snapshot
    /// file does not decode).
    #[error("keel: recovered state is unusable: {0}")]
    Recovered(String),
    /// The member's metrics registry could not be built (a bug: a metric
    /// name the `prometheus` crate refuses, or registered twice).
    #[error("keel: cannot build the metrics registry: {0}")]
    Metrics(String),
    /// A client or peer address could not be bound (in use, not a local
    /// address, no permission).
    #[error("keel: cannot listen for {kind} traffic on {addr}: {reason}")]
    Listen {
        /// `client`, `peer` or `metrics`.
        kind: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The operating system's error.
        reason: String,
    },
}

/// Everything the node driver starts with.
pub struct Booted<S: Storage> {
    /// The Raft node over the in-memory copy of the durable log.
    pub raw: RawNode<MemoryStorage>,
    /// The open WAL, ready to append.
    pub wal: Wal<S>,
    /// The snapshot files.
    pub snapshots: SnapshotFiles<S>,
    /// The state machine as of the newest snapshot (or empty).
    pub state: StateMachine,
    /// This member's id.
    pub member_id: u64,
    /// The cluster id.
    pub cluster_id: u64,
    /// Index of the newest snapshot (0: none).
    pub snapshot_index: u64,
    /// True when the member was restarted from an existing data directory.
    pub restarted: bool,
    /// Peers (id -> peer URL) to talk to until the state machine knows the
    /// members (a joining member learns them from the log).
    pub known_peers: BTreeMap<u64, String>,
}

/// What a member joining a running cluster learned from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinInfo {
    /// The cluster id.
    pub cluster_id: u64,
    /// This member's id, as `member add` chose it.
    pub member_id: u64,
    /// The other members' first peer URLs.
    pub peers: BTreeMap<u64, String>,
}

/// True when `storage` holds a WAL (the member restarts from it).
/// Errors: the directory cannot be listed.
pub fn has_wal<S: Storage>(storage: &NodeStorage<S>) -> Result<bool, BootError> {
    Ok(storage
        .wal
        .list()
        .map_err(|e| WalError::io("list", "", None, e))?
        .iter()
        .any(|name| SegmentName::parse(name).is_some()))
}

/// Starts from `storage`: restarts if it holds a WAL, bootstraps otherwise.
///
/// `join` is what [`super::join::discover`] learned for `--initial-cluster-state
/// existing` (ignored when restarting).
///
/// Errors: [`BootError::Config`] for a cluster that cannot be formed (or
/// `existing` without `join`), [`BootError::Wal`] for storage failures or
/// damage, [`BootError::Recovered`] for inconsistent recovered state.
pub fn boot<S: Storage>(
    settings: &NodeSettings,
    storage: NodeStorage<S>,
    join: Option<JoinInfo>,
) -> Result<Booted<S>, BootError> {
    if has_wal(&storage)? {
        return restart(settings, storage);
    }
    match join {
        Some(join) => bootstrap_join(settings, storage, join),
        None => bootstrap_new(settings, storage),
    }
}

/// A member added with `member add` starting with an empty data directory:
/// an empty log; the leader sends it the log (or a snapshot), whose
/// conf-change entries give it the configuration.
fn bootstrap_join<S: Storage>(
    settings: &NodeSettings,
    storage: NodeStorage<S>,
    join: JoinInfo,
) -> Result<Booted<S>, BootError> {
    let metadata = Metadata {
        cluster_id: join.cluster_id,
        node_id: join.member_id,
    };
    let mut wal = Wal::create(storage.wal, settings.wal.clone(), metadata)?;
    wal.sync()?;
    let state = StateMachine::new(state_config(settings), Cluster::empty(join.cluster_id));
    let raw = new_raw_node(settings, join.member_id, 0, MemoryStorage::new())?;
    tracing::info!(
        member = %format!("{:x}", join.member_id),
        cluster = %format!("{:x}", join.cluster_id),
        "joining an existing cluster"
    );
    Ok(Booted {
        raw,
        wal,
        snapshots: SnapshotFiles::new(storage.snap, SNAPSHOT_FILES_KEPT),
        state,
        member_id: join.member_id,
        cluster_id: join.cluster_id,
        snapshot_index: 0,
        restarted: false,
        known_peers: join.peers,
    })
}

/// The initial members from `--initial-cluster`, ascending by id.
///
/// Errors: [`BootError::Config`] for duplicate ids or peer URLs.
pub fn initial_members(
    initial_cluster: &BTreeMap<String, Vec<String>>,
    token: &str,
) -> Result<Vec<Member>, BootError> {
    let members: Vec<Member> = initial_cluster
        .iter()
        .map(|(name, urls)| Member::new(name, urls, token, None, false))
        .collect();
    let cluster = Cluster::bootstrap(members).map_err(|e| BootError::Config(e.to_string()))?;
    Ok(cluster.members().into_iter().cloned().collect())
}

/// The bootstrap entries: one `AddNode` per member, term 1, indexes from 1
/// (see [`keel_kernel::membership::bootstrap_entries`]).
pub fn bootstrap_entries(members: &[Member]) -> Vec<Entry> {
    keel_kernel::membership::bootstrap_entries(members)
}

fn bootstrap_new<S: Storage>(
    settings: &NodeSettings,
    storage: NodeStorage<S>,
) -> Result<Booted<S>, BootError> {
    if settings.initial_cluster_state == ClusterState::Existing {
        return Err(BootError::Config(
            "--initial-cluster-state existing: the cluster's members were not fetched".to_owned(),
        ));
    }
    let members = initial_members(&settings.initial_cluster, &settings.initial_cluster_token)?;
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let cluster_id = keel_kernel::membership::cluster_id(&ids);
    let member_id = settings.member_id();
    if !ids.contains(&member_id) {
        return Err(BootError::Config(format!(
            "member {member_id:x} ({}) is not in the initial cluster",
            settings.name
        )));
    }
    let entries = bootstrap_entries(&members);
    let hard_state = HardState {
        term: 1,
        vote: 0,
        commit: entries.len() as u64,
    };
    let metadata = Metadata {
        cluster_id,
        node_id: member_id,
    };
    let mut wal = Wal::create(storage.wal, settings.wal.clone(), metadata)?;
    wal.append(&entries, Some(&hard_state))?;
    wal.sync()?;
    let mut memory = MemoryStorage::new();
    memory
        .append(&entries)
        .map_err(|e| BootError::Recovered(e.to_string()))?;
    memory.set_hard_state(hard_state);
    let state = StateMachine::new(state_config(settings), Cluster::empty(cluster_id));
    let raw = new_raw_node(settings, member_id, 0, memory)?;
    tracing::info!(
        member = %format!("{member_id:x}"),
        cluster = %format!("{cluster_id:x}"),
        members = members.len(),
        "bootstrapped a new cluster member"
    );
    Ok(Booted {
        raw,
        wal,
        snapshots: SnapshotFiles::new(storage.snap, SNAPSHOT_FILES_KEPT),
        state,
        member_id,
        cluster_id,
        snapshot_index: 0,
        restarted: false,
        known_peers: BTreeMap::new(),
    })
}

fn restart<S: Storage>(
    settings: &NodeSettings,
    storage: NodeStorage<S>,
) -> Result<Booted<S>, BootError> {
    let snapshots = SnapshotFiles::new(storage.snap, SNAPSHOT_FILES_KEPT);
    // The newest snapshot file the WAL holds a marker for (etcd's
    // LoadNewestAvailable): a crash after a snapshot file was written but
    // before its marker was logged leaves a file the log cannot follow.
    let mut snapshot = None;
    let (wal, recovered) = Wal::open_choosing(storage.wal, settings.wal.clone(), |markers| {
        let logged = |index, term| markers.iter().any(|m| (m.index, m.term) == (index, term));
        snapshot = snapshots.load_newest_of(logged)?;
        Ok(snapshot.as_ref().map(|s| s.metadata.index))
    })?;
    if snapshot.is_none() && recovered.snapshot.index > 0 {
        return Err(BootError::Recovered(format!(
            "the WAL follows a snapshot at index {} but no snapshot file is readable",
            recovered.snapshot.index
        )));
    }
    let metadata = recovered.metadata;
    let config = state_config(settings);
    let mut memory = MemoryStorage::new();
    let (state, snapshot_index) = match snapshot {
        Some(snapshot) => {
            let state = StateMachine::restore(config, &snapshot.data)
                .map_err(|e| BootError::Recovered(format!("snapshot: {e}")))?;
            let index = snapshot.metadata.index;
            memory
                .apply_snapshot(snapshot)
                .map_err(|e| BootError::Recovered(e.to_string()))?;
            (state, index)
        }
        None => (
            StateMachine::new(config, Cluster::empty(metadata.cluster_id)),
            0,
        ),
    };
    let mut hard_state = recovered.hard_state;
    hard_state.commit = hard_state.commit.max(snapshot_index);
    hard_state.term = hard_state.term.max(memory.hard_state().term);
    memory.set_hard_state(hard_state);
    memory
        .append(&recovered.entries)
        .map_err(|e| BootError::Recovered(e.to_string()))?;
    #[cfg(feature = "planted-bug-apply-twice-after-restart")]
    let state = super::planted_apply_twice::replay_one_entry_early(
        state,
        snapshot_index,
        hard_state.commit,
        &recovered.entries,
    );
    let raw = new_raw_node(settings, metadata.node_id, snapshot_index, memory)?;
    tracing::info!(
        member = %format!("{:x}", metadata.node_id),
        snapshot_index,
        entries = recovered.entries.len(),
        term = hard_state.term,
        commit = hard_state.commit,
        "restarted member from its data directory"
    );
    Ok(Booted {
        raw,
        wal,
        snapshots,
        state,
        member_id: metadata.node_id,
        cluster_id: metadata.cluster_id,
        snapshot_index,
        restarted: true,
        known_peers: BTreeMap::new(),
    })
}

/// The state machine settings every member of the cluster shares.
pub fn state_config(settings: &NodeSettings) -> StateMachineConfig {
    let mut config = StateMachineConfig::new(settings.election_timeout_ms);
    config.token_ttl_ms = settings.operations.auth_token_ttl_secs.saturating_mul(1000);
    config.limits = settings.limits;
    if !settings.operations.lease_checkpoint {
        // etcd's default: no checkpoints (`--experimental-enable-lease-checkpoint`).
        config.lessor.checkpoint_interval_ms = 0;
    }
    config
}

fn new_raw_node(
    settings: &NodeSettings,
    member_id: u64,
    applied: u64,
    memory: MemoryStorage,
) -> Result<RawNode<MemoryStorage>, BootError> {
    let mut config = raft::Config::new(member_id);
    config.election_tick = settings.election_ticks();
    config.heartbeat_tick = 1;
    config.applied = applied;
    config.seed = member_id ^ settings.seed;
    RawNode::new(&config, memory).map_err(|e| BootError::Recovered(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use keel_kernel::raft::EntryType;
    use keel_wal::{SimConfig, SimStorage};

    fn sim() -> NodeStorage<SimStorage> {
        NodeStorage {
            wal: SimStorage::new(SimConfig::default()),
            snap: SimStorage::new(SimConfig::default()),
        }
    }

    #[test]
    fn empty_dir_bootstraps_single_member_default() {
        let settings = NodeSettings::single("default", "http://localhost:2380");
        let booted = boot(&settings, sim(), None).unwrap();
        assert!(!booted.restarted);
        // etcd's id for `default` at http://localhost:2380, token etcd-cluster.
        assert_eq!(booted.member_id, 0x8e9e05c52164694d);
        assert_eq!(booted.cluster_id, 0xcdf818194e3a8c32);
        assert_eq!(booted.wal.last_index(), 1);
        assert_eq!(booted.raw.raft().log.committed(), 1);
    }

    #[test]
    fn every_initial_member_writes_the_same_bootstrap_entries() {
        let mut a = NodeSettings::single("a", "http://10.0.0.1:2380");
        a.initial_cluster
            .insert("b".into(), vec!["http://10.0.0.2:2380".into()]);
        a.initial_cluster
            .insert("c".into(), vec!["http://10.0.0.3:2380".into()]);
        let mut b = a.clone();
        b.name = "b".into();
        b.peer_urls = vec!["http://10.0.0.2:2380".into()];
        let booted_a = boot(&a, sim(), None).unwrap();
        let booted_b = boot(&b, sim(), None).unwrap();
        assert_ne!(booted_a.member_id, booted_b.member_id);
        assert_eq!(booted_a.cluster_id, booted_b.cluster_id);
        let log = |x: &Booted<SimStorage>| x.raw.storage().entries(1, 4, u64::MAX).unwrap();
        assert_eq!(log(&booted_a), log(&booted_b));
        assert_eq!(log(&booted_a).len(), 3);
    }

    #[test]
    fn existing_dir_restarts_with_its_log() {
        let settings = NodeSettings::single("default", "http://localhost:2380");
        let storage = sim();
        let mut booted = boot(&settings, storage.clone(), None).unwrap();
        let entry = Entry {
            term: 2,
            index: 2,
            entry_type: EntryType::Normal,
            data: bytes::Bytes::new(),
        };
        let hs = HardState {
            term: 2,
            vote: booted.member_id,
            commit: 2,
        };
        booted.wal.append(&[entry], Some(&hs)).unwrap();
        booted.wal.sync().unwrap();
        drop(booted);
        let again = boot(&settings, storage, None).unwrap();
        assert!(again.restarted);
        assert_eq!(again.raw.raft().term, 2);
        assert_eq!(again.raw.raft().log.committed(), 2);
        assert_eq!(again.raw.storage().last_index().unwrap(), 2);
    }

    #[test]
    fn joining_without_discovery_is_refused_clearly() {
        let mut settings = NodeSettings::single("default", "http://localhost:2380");
        settings.initial_cluster_state = ClusterState::Existing;
        assert!(matches!(
            boot(&settings, sim(), None),
            Err(BootError::Config(_))
        ));
    }

    use keel_kernel::raft::Storage as _;
}
