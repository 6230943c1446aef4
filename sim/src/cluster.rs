//! A cluster of real keel members on simulated hosts, each on keel-wal's
//! simulated disks, and a control host that asks them for their status.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keel_server::api::ApiLimits;
use keel_server::config::ClusterState;
use keel_server::node::serve::{Listeners, Member};
use keel_server::node::{NodeSettings, NodeStorage};
use keel_server::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use keel_server::proto::etcdserverpb::{MoveLeaderRequest, StatusRequest};
use keel_server::transport::TransportLimits;
use keel_wal::{SimConfig, SimStorage};
use madsim::runtime::{Handle, NodeHandle};
use madsim::task::NodeId;

use crate::NodeAddr;
use crate::scenario::Scenario;
use crate::sim_log::SharedLog;

/// How long a control-plane request (status, hash) may take.
pub const CONTROL_TIMEOUT_MS: u64 = 500;
/// How long a leader transfer may take (two election timeouts and some).
pub const MOVE_LEADER_TIMEOUT_MS: u64 = 3_000;

/// One member's host and disks.
#[derive(Clone)]
pub struct Host {
    /// madsim's id of the member's host.
    pub node: NodeId,
    /// Its WAL and snapshot disks; they outlive kills and restarts.
    pub storage: NodeStorage<SimStorage>,
    /// False between a kill and the restart.
    pub running: bool,
    /// True between a pause and the resume.
    pub paused: bool,
    /// True while the host's member belongs to the cluster (from its start
    /// or join until its removal); spare and removed hosts are idle.
    pub member: bool,
    /// What the host boots on each start (its settings and disks); `None`
    /// leaves it idle.
    boot: BootSlot,
    /// How many times the host joined the cluster on fresh disks.
    generation: u64,
}

/// A member's settings and disks, as its host's init reads them at every
/// start and restart.
#[derive(Clone)]
struct Boot {
    settings: NodeSettings,
    storage: NodeStorage<SimStorage>,
}

/// A host's boot plan, shared with its init closure.
type BootSlot = Arc<Mutex<Option<Boot>>>;

/// A member's answer to Maintenance.Status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    /// The member's Raft id.
    pub member_id: u64,
    /// The leader it follows (0: none).
    pub leader: u64,
    /// Its current term.
    pub term: u64,
}

/// A running cluster of `members` keel members on hosts `10.0.0.1..`.
pub struct Cluster {
    /// The members' hosts, by member index.
    pub hosts: Vec<Host>,
    /// The host control-plane requests run on (`10.0.2.1`).
    pub control: NodeHandle,
    handle: Handle,
    ids: BTreeMap<u64, u8>,
    seed: u64,
}

/// keel's default settings for member `index` (`m<index>` on
/// [`NodeAddr::member`]) of a `members`-member cluster bootstrapped
/// together.
pub fn member_settings(index: u8, members: u8) -> NodeSettings {
    let initial_cluster: BTreeMap<String, Vec<String>> = (0..members)
        .map(|i| (format!("m{i}"), vec![NodeAddr::member(i).peer_url()]))
        .collect();
    let addr = NodeAddr::member(index);
    let mut settings = NodeSettings::single(&format!("m{index}"), &addr.peer_url());
    settings.initial_cluster = initial_cluster;
    settings.client_urls = vec![addr.client_url()];
    settings
}

/// Settings of member `index` of a scenario's `members`-member cluster:
/// [`member_settings`] with a per-member seed drawn from the run's
/// `seed`, and snapshots and WAL segments small enough to be exercised.
pub fn settings(index: u8, members: u8, seed: u64) -> NodeSettings {
    let mut settings = member_settings(index, members);
    settings.seed = seed.wrapping_mul(31).wrapping_add(u64::from(index));
    settings.snapshot_count = 200;
    settings.snapshot_catchup_entries = 50;
    settings.wal.segment_size_bytes = 64 * 1024;
    settings
}

/// Member `index`'s fresh simulated disks, seeded from the run's `seed`;
/// with `reorder_sectors`, a power loss persists the unsynced sectors of
/// the last writes in any order.
fn disks(index: u8, seed: u64, reorder_sectors: bool) -> NodeStorage<SimStorage> {
    disks_of_generation(index, seed, reorder_sectors, 0)
}

/// As [`disks`], for the `generation`-th time the host joins on fresh
/// disks (0: its first start).
fn disks_of_generation(
    index: u8,
    seed: u64,
    reorder_sectors: bool,
    generation: u64,
) -> NodeStorage<SimStorage> {
    let disk = |salt: u64| {
        SimStorage::new(SimConfig {
            seed: seed ^ (u64::from(index) << 8 | salt) ^ (generation << 32),
            reorder_sectors,
            ..SimConfig::default()
        })
    };
    NodeStorage {
        wal: disk(1),
        snap: disk(2),
    }
}

/// How often a joining member retries its start (it asks its peers for
/// the cluster first, which fails while they are cut off), and how long it
/// waits between tries.
const JOIN_ATTEMPTS_MAX: u32 = 60;
/// Wait between a joining member's start attempts.
const JOIN_RETRY_MS: u64 = 1_000;

/// Creates member `index`'s host; each start and restart boots what `boot`
/// holds then (nothing: the host stays idle).
fn start_member(handle: &Handle, index: u8, boot: BootSlot, log: SharedLog) -> NodeId {
    let addr = NodeAddr::member(index);
    handle
        .create_node()
        .name(format!("m{index}"))
        .ip(addr.ip)
        .init(move || {
            let plan = boot.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let log = log.clone();
            async move {
                if let Some(plan) = plan {
                    serve_member(index, plan, &log).await;
                }
            }
        })
        .build()
        .id()
}

/// Runs member `index` from `plan` until it stops serving. A member that
/// cannot start or stops serving (a failed fsync) leaves its host idle
/// until the nemesis restarts it; the checks judge what clients saw, the
/// log says why. A joining member (`initial-cluster-state existing`)
/// retries its start, as its peers may be unreachable for a while.
async fn serve_member(index: u8, plan: Boot, log: &SharedLog) {
    let addr = NodeAddr::member(index);
    let joining = plan.settings.initial_cluster_state == ClusterState::Existing;
    let attempts = if joining { JOIN_ATTEMPTS_MAX } else { 1 };
    for attempt in 1..=attempts {
        let listeners = Listeners {
            client_addrs: vec![addr.client()],
            peer_addrs: vec![addr.peer()],
            api_limits: ApiLimits::default(),
            transport_limits: TransportLimits::default(),
        };
        match Member::start(plan.settings.clone(), plan.storage.clone(), listeners).await {
            Ok(mut member) => {
                let error = member.server_error().await;
                log.push(format!("m{index} stopped serving: {error}"));
                return;
            }
            Err(error) if attempt < attempts => {
                log.push(format!(
                    "m{index} did not start (attempt {attempt}): {error}"
                ));
                madsim::time::sleep(Duration::from_millis(JOIN_RETRY_MS)).await;
            }
            Err(error) => log.push(format!("m{index} did not start: {error}")),
        }
    }
}

/// Slowest and fastest clock rate a drifting member gets, in per mille of
/// real time (1000: exact).
const CLOCK_RATE_PER_MILLE: std::ops::Range<u64> = 600..1600;

/// `settings` for a member whose clock runs at a rate drawn from the seed:
/// its heartbeat interval and election timeout, which it measures with its
/// own clock, scale inversely with the rate. Logs the rate.
fn with_clock_drift(mut settings: NodeSettings, index: u8, log: &SharedLog) -> NodeSettings {
    use madsim::rand::Rng;
    let rate = madsim::rand::thread_rng().gen_range(CLOCK_RATE_PER_MILLE);
    settings.heartbeat_interval_ms = settings.heartbeat_interval_ms * 1000 / rate;
    settings.election_timeout_ms = settings.election_timeout_ms * 1000 / rate;
    log.push(format!(
        "m{index}'s clock runs at {rate}/1000: heartbeat {} ms, election timeout {} ms",
        settings.heartbeat_interval_ms, settings.election_timeout_ms
    ));
    settings
}

impl Cluster {
    /// Starts the `scenario`'s members in the current madsim runtime, on
    /// the disks and clocks it asks for; members that stop serving say why
    /// in `log`.
    pub fn start(scenario: Scenario, seed: u64, log: &SharedLog) -> Cluster {
        let handle = Handle::current();
        let members = scenario.members();
        let hosts = (0..members + scenario.spare_hosts())
            .map(|i| {
                let storage = disks(i, seed, scenario.reordering_disks());
                let plan = (i < members).then(|| {
                    let mut settings = settings(i, members, seed);
                    if scenario.clock_drift() {
                        settings = with_clock_drift(settings, i, log);
                    }
                    Boot {
                        settings,
                        storage: storage.clone(),
                    }
                });
                let running = plan.is_some();
                let boot: BootSlot = Arc::new(Mutex::new(plan));
                let node = start_member(&handle, i, boot.clone(), log.clone());
                Host {
                    node,
                    storage,
                    running,
                    paused: false,
                    member: running,
                    boot,
                    generation: 0,
                }
            })
            .collect();
        let control = handle
            .create_node()
            .name("control")
            .ip(std::net::IpAddr::from([10, 0, 2, 1]))
            .build();
        Cluster {
            hosts,
            control,
            handle,
            ids: BTreeMap::new(),
            seed,
        }
    }

    /// The hosts whose members belong to the cluster (voters and
    /// learners), by index.
    pub fn members(&self) -> Vec<u8> {
        (0..self.size())
            .filter(|&i| self.hosts[usize::from(i)].member)
            .collect()
    }

    /// Starts host `index` as a new member on fresh, empty disks, joining
    /// the cluster of `current` (member indexes) with
    /// `initial-cluster-state existing`; the member must have been added
    /// through the Cluster API first. Kills whatever ran there.
    pub fn join(&mut self, index: u8, current: &[u8]) {
        let (seed, size) = (self.seed, self.size());
        let host = &mut self.hosts[usize::from(index)];
        host.generation += 1;
        let storage = disks_of_generation(index, seed, false, host.generation);
        let mut settings = settings(index, size, seed ^ host.generation);
        settings.initial_cluster = current
            .iter()
            .chain(std::iter::once(&index))
            .map(|&i| (format!("m{i}"), vec![NodeAddr::member(i).peer_url()]))
            .collect();
        settings.initial_cluster_state = ClusterState::Existing;
        *host.boot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Boot {
            settings,
            storage: storage.clone(),
        });
        host.storage = storage;
        self.handle.restart(host.node);
        host.running = true;
        host.paused = false;
        host.member = true;
        self.ids.retain(|_, i| *i != index);
    }

    /// Stops host `index` for good: its member was removed from the
    /// cluster. Its disks are dropped at its next join.
    pub fn retire(&mut self, index: u8) {
        let host = &mut self.hosts[usize::from(index)];
        self.handle.kill(host.node);
        *host.boot.lock().unwrap_or_else(PoisonError::into_inner) = None;
        host.running = false;
        host.paused = false;
        host.member = false;
        self.ids.retain(|_, i| *i != index);
    }

    /// How many hosts the cluster has (members, and spare or removed
    /// hosts).
    pub fn size(&self) -> u8 {
        self.hosts.len() as u8
    }

    /// Kills member `index`'s host and crashes its disks (unsynced writes
    /// are lost, the last one may be torn).
    pub fn crash(&mut self, index: u8) {
        let host = &mut self.hosts[usize::from(index)];
        self.handle.kill(host.node);
        host.storage.wal.crash();
        host.storage.snap.crash();
        host.running = false;
        host.paused = false;
    }

    /// Restarts member `index` on its disks, if it was crashed and still
    /// belongs to the cluster.
    pub fn restart(&mut self, index: u8) {
        let host = &mut self.hosts[usize::from(index)];
        if !host.running && host.member {
            self.handle.restart(host.node);
            host.running = true;
        }
    }

    /// Pauses member `index`'s host: its tasks stop running.
    pub fn pause(&mut self, index: u8) {
        let host = &mut self.hosts[usize::from(index)];
        if host.running && !host.paused {
            self.handle.pause(host.node);
            host.paused = true;
        }
    }

    /// Resumes member `index`'s host if paused.
    pub fn resume(&mut self, index: u8) {
        let host = &mut self.hosts[usize::from(index)];
        if host.paused {
            self.handle.resume(host.node);
            host.paused = false;
        }
    }

    /// Member `index`'s status (asked from the control host), or `None`
    /// if it does not answer in time.
    pub async fn status(&self, index: u8) -> Option<MemberStatus> {
        self.control
            .spawn(member_status(index))
            .await
            .ok()
            .flatten()
    }

    /// Every answering member's status, by index.
    pub async fn statuses(&mut self) -> BTreeMap<u8, MemberStatus> {
        let mut seen = BTreeMap::new();
        for index in 0..self.size() {
            let host = &self.hosts[usize::from(index)];
            if !host.running || host.paused {
                continue;
            }
            if let Some(status) = self.status(index).await {
                self.ids.insert(status.member_id, index);
                seen.insert(index, status);
            }
        }
        seen
    }

    /// Member `index`'s Raft id, once a status answer named it.
    pub fn member_id(&self, index: u8) -> Option<u64> {
        self.ids
            .iter()
            .find(|(_, i)| **i == index)
            .map(|(id, _)| *id)
    }

    /// Asks member `leader` to hand leadership to member `transferee`
    /// (Maintenance.MoveLeader, from the control host); the answer, or why
    /// there was none.
    pub async fn move_leader(&self, leader: u8, transferee: u8) -> Result<(), String> {
        let target_id = self
            .member_id(transferee)
            .ok_or_else(|| format!("m{transferee}'s id is not known yet"))?;
        let url = NodeAddr::member(leader).client_url();
        let ask = async move {
            let mut client = MaintenanceClient::connect(url)
                .await
                .map_err(|e| e.to_string())?;
            let request = MoveLeaderRequest { target_id };
            client
                .move_leader(request)
                .await
                .map(|_| ())
                .map_err(|e| format!("{}: {}", e.code(), e.message()))
        };
        let timeout = Duration::from_millis(MOVE_LEADER_TIMEOUT_MS);
        let call = async move {
            madsim::time::timeout(timeout, ask)
                .await
                .unwrap_or_else(|_| Err("timed out".into()))
        };
        self.control
            .spawn(call)
            .await
            .unwrap_or_else(|_| Err("the control task ended abnormally".into()))
    }

    /// The leader of the highest term any answering member knows, as a
    /// member index, and that term.
    pub async fn leader(&mut self) -> Option<(u8, u64)> {
        let statuses = self.statuses().await;
        statuses
            .values()
            .filter(|s| s.leader != 0)
            .max_by_key(|s| s.term)
            .and_then(|s| Some((*self.ids.get(&s.leader)?, s.term)))
    }
}

/// Member `index`'s status, or `None` if it does not answer within
/// [`CONTROL_TIMEOUT_MS`]. Runs on the calling task's host.
pub async fn member_status(index: u8) -> Option<MemberStatus> {
    let url = NodeAddr::member(index).client_url();
    let ask = async move {
        let mut client = MaintenanceClient::connect(url).await.ok()?;
        let status = client.status(StatusRequest {}).await.ok()?.into_inner();
        Some(MemberStatus {
            member_id: status.header.map_or(0, |h| h.member_id),
            leader: status.leader,
            term: status.raft_term,
        })
    };
    madsim::time::timeout(Duration::from_millis(CONTROL_TIMEOUT_MS), ask)
        .await
        .ok()
        .flatten()
}
