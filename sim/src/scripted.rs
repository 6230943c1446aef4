//! Scripted cluster scenarios: real keel members on simulated hosts that a
//! test starts, kills, restarts and joins one at a time, and whose node
//! handles it can read (what a member reports about itself, such as the
//! leader snapshots it installed); the calls a script makes through the
//! etcd gRPC API from a client host, each bounded and retried while the
//! error says nothing was done (no leader, a dropped proposal, a member
//! that cannot be reached yet).
//!
//! The random scenarios use [`crate::cluster::Cluster`]; these hosts are
//! for tests that follow one script on a fixed seed
//! (`tests/cluster_membership.rs`, `tests/cluster_recovery.rs`).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keel_server::api::ApiLimits;
use keel_server::node::serve::{Listeners, Member};
use keel_server::node::{NodeHandle, NodeSettings, NodeStorage};
use keel_server::proto::etcdserverpb::cluster_client::ClusterClient;
use keel_server::proto::etcdserverpb::kv_client::KvClient;
use keel_server::proto::etcdserverpb::{
    Member as ClusterMember, MemberAddRequest, MemberListRequest, MemberPromoteRequest,
    MemberRemoveRequest, PutRequest, RangeRequest,
};
use keel_server::transport::TransportLimits;
use keel_wal::{SimConfig, SimStorage};
use madsim::runtime::{Handle, Runtime};
use madsim::task::NodeId;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::NodeAddr;
use crate::cluster::member_status;
use crate::sim_log::SharedLog;

/// How long (simulated) one gRPC call may take before it counts as failed.
pub const CALL_TIMEOUT_MS: u64 = 2_000;
/// How long a retried call keeps retrying before the script fails.
pub const RETRY_BOUND_MS: u64 = 20_000;
/// Pause between two tries of a call, and between two looks at a condition.
pub const POLL_MS: u64 = 100;
/// Simulated time a scripted test may take in all before madsim stops it.
pub const TEST_TIME_LIMIT_MS: u64 = 300_000;

/// What a member host boots at each start: its settings, or nothing.
type BootSlot = Arc<Mutex<Option<NodeSettings>>>;
/// The handle of the member a host runs now, if it started.
type RunningSlot = Arc<Mutex<Option<NodeHandle>>>;

/// One member host: its disks outlive kills and restarts.
struct ScriptedHost {
    node: NodeId,
    storage: NodeStorage<SimStorage>,
    boot: BootSlot,
    running: RunningSlot,
}

/// Member hosts `10.0.0.1..` (idle until started) and a client host
/// (`10.0.1.1`) the script's gRPC calls run on.
pub struct ScriptedCluster {
    hosts: Vec<ScriptedHost>,
    client: madsim::runtime::NodeHandle,
    handle: Handle,
    /// Why members did not start or stopped serving, for failure messages.
    pub log: SharedLog,
}

/// Runs `test` in a fresh madsim runtime on `seed` with a time limit of
/// [`TEST_TIME_LIMIT_MS`]: a scripted test runs its one seed, not the
/// `MADSIM_TEST_NUM` seeds of a `#[madsim::test]`.
pub fn run_seed<F: Future<Output = ()> + 'static>(seed: u64, test: impl FnOnce() -> F) {
    let mut runtime = Runtime::with_seed_and_config(seed, madsim::Config::default());
    runtime.set_time_limit(Duration::from_millis(TEST_TIME_LIMIT_MS));
    runtime.block_on(test());
}

/// Settings of member `index` of a cluster whose initial members are
/// `initial` (indexes), bootstrapped together, seeded from `index`.
pub fn settings_among(index: u8, initial: &[u8]) -> NodeSettings {
    let addr = NodeAddr::member(index);
    let mut settings = NodeSettings::single(&format!("m{index}"), &addr.peer_url());
    settings.initial_cluster = initial
        .iter()
        .map(|&i| (format!("m{i}"), vec![NodeAddr::member(i).peer_url()]))
        .collect();
    settings.client_urls = vec![addr.client_url()];
    settings.seed = u64::from(index) + 1;
    settings
}

/// Fresh simulated disks for host `index`.
fn fresh_disks(index: u8) -> NodeStorage<SimStorage> {
    let disk = |salt: u64| {
        SimStorage::new(SimConfig {
            seed: u64::from(index) << 8 | salt,
            ..SimConfig::default()
        })
    };
    NodeStorage {
        wal: disk(1),
        snap: disk(2),
    }
}

/// Creates host `index`; each start boots what `boot` holds (nothing:
/// idle) on `storage`, and records the member's handle in `running`.
fn create_host(
    handle: &Handle,
    index: u8,
    storage: NodeStorage<SimStorage>,
    boot: BootSlot,
    running: RunningSlot,
    log: SharedLog,
) -> NodeId {
    let addr = NodeAddr::member(index);
    handle
        .create_node()
        .name(format!("m{index}"))
        .ip(addr.ip)
        .init(move || {
            let settings = boot.lock().unwrap_or_else(PoisonError::into_inner).clone();
            let (storage, running, log) = (storage.clone(), running.clone(), log.clone());
            async move {
                if let Some(settings) = settings {
                    serve(index, settings, storage, running, &log).await;
                }
            }
        })
        .build()
        .id()
}

/// Runs member `index` until it stops serving; says why in `log`.
async fn serve(
    index: u8,
    settings: NodeSettings,
    storage: NodeStorage<SimStorage>,
    running: RunningSlot,
    log: &SharedLog,
) {
    let addr = NodeAddr::member(index);
    let listeners = Listeners {
        client_addrs: vec![addr.client()],
        peer_addrs: vec![addr.peer()],
        api_limits: ApiLimits::default(),
        transport_limits: TransportLimits::default(),
    };
    match Member::start(settings, storage, listeners).await {
        Ok(mut member) => {
            *running.lock().unwrap_or_else(PoisonError::into_inner) = Some(member.handle());
            let error = member.server_error().await;
            log.push(format!("m{index} stopped serving: {error}"));
        }
        Err(error) => log.push(format!("m{index} did not start: {error}")),
    }
}

impl ScriptedCluster {
    /// Creates `hosts` idle member hosts and the client host in the
    /// current madsim runtime.
    pub fn new(hosts: u8) -> ScriptedCluster {
        let handle = Handle::current();
        let log = SharedLog::new();
        let hosts = (0..hosts)
            .map(|index| {
                let storage = fresh_disks(index);
                let (boot, running) = (BootSlot::default(), RunningSlot::default());
                let node = create_host(
                    &handle,
                    index,
                    storage.clone(),
                    boot.clone(),
                    running.clone(),
                    log.clone(),
                );
                ScriptedHost {
                    node,
                    storage,
                    boot,
                    running,
                }
            })
            .collect();
        let client = handle
            .create_node()
            .name("client")
            .ip(std::net::IpAddr::from([10, 0, 1, 1]))
            .build();
        ScriptedCluster {
            hosts,
            client,
            handle,
            log,
        }
    }

    fn host(&self, index: u8) -> &ScriptedHost {
        &self.hosts[usize::from(index)]
    }

    /// Starts member `index` with `settings` on its disks (what an earlier
    /// run left there, or nothing), replacing whatever ran there.
    pub fn start(&self, index: u8, settings: NodeSettings) {
        let host = self.host(index);
        *host.boot.lock().unwrap_or_else(PoisonError::into_inner) = Some(settings);
        *host.running.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.handle.restart(host.node);
    }

    /// Starts members `indexes`, bootstrapped together as one cluster.
    pub fn start_together(&self, indexes: &[u8], tune: impl Fn(&mut NodeSettings)) {
        for &index in indexes {
            let mut settings = settings_among(index, indexes);
            tune(&mut settings);
            self.start(index, settings);
        }
    }

    /// Kills member `index`'s host (its disks keep what it synced: the
    /// simulated disks lose nothing without [`SimStorage::crash`]).
    pub fn kill(&self, index: u8) {
        let host = self.host(index);
        self.handle.kill(host.node);
        *host.running.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Starts member `index` again with the settings of its last start, on
    /// its disks.
    pub fn restart(&self, index: u8) {
        let host = self.host(index);
        *host.running.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.handle.restart(host.node);
    }

    /// Cuts member `index` off from every other member host, both ways
    /// (`cut`), or restores those links; the client host still reaches it.
    pub fn set_isolated(&self, index: u8, cut: bool) {
        let net = madsim::net::NetSim::current();
        let node = self.host(index).node;
        let others = self.hosts.iter().filter(|host| host.node != node);
        for other in others {
            for (from, to) in [(node, other.node), (other.node, node)] {
                if cut {
                    net.clog_link(from, to);
                } else {
                    net.unclog_link(from, to);
                }
            }
        }
    }

    /// The handle of the member host `index` runs, once it started.
    pub fn member(&self, index: u8) -> Option<NodeHandle> {
        let host = self.host(index);
        host.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits (simulated [`RETRY_BOUND_MS`] at most) until member `index`
    /// started; its handle. Panics with the log if it did not.
    pub async fn started(&self, index: u8) -> NodeHandle {
        let mut handle = None;
        wait_for(&format!("m{index} to start"), &self.log, || {
            handle = self.member(index);
            handle.is_some()
        })
        .await;
        handle.unwrap_or_else(|| unreachable!("wait_for returned without m{index}"))
    }

    /// Member `index`'s disks (WAL and snapshot files).
    pub fn storage(&self, index: u8) -> &NodeStorage<SimStorage> {
        &self.host(index).storage
    }

    /// Runs `work` on the client host (where gRPC calls have an address to
    /// come from) and returns its output; panics if it panicked.
    pub async fn on_client<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> T {
        match self.client.spawn(work).await {
            Ok(output) => output,
            Err(_) => panic!(
                "the client task panicked\nmember log:\n{}",
                self.log.snapshot()
            ),
        }
    }
}

/// Polls `done` every [`POLL_MS`] for [`RETRY_BOUND_MS`] (simulated); panics
/// naming `what`, with `log`, if it never held.
pub async fn wait_for(what: &str, log: &SharedLog, mut done: impl FnMut() -> bool) {
    let deadline = madsim::time::Instant::now() + Duration::from_millis(RETRY_BOUND_MS);
    while madsim::time::Instant::now() < deadline {
        if done() {
            return;
        }
        madsim::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    panic!(
        "waited {RETRY_BOUND_MS} ms for {what} in vain\nmember log:\n{}",
        log.snapshot()
    );
}

/// True if a call that failed with `status` did nothing and may be sent
/// again: the member had no leader, dropped the proposal at a leader
/// change, was not reachable, or the call was not answered in time (a
/// client-side timeout of a put that then commits only writes the same
/// value again).
pub fn retryable(status: &Status) -> bool {
    let message = status.message();
    let refused = message.contains("unhealthy cluster");
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => !refused,
        Code::Unknown => message.contains("connect") || message.contains("transport"),
        _ => false,
    }
}

/// Runs `call` (through member `through`) within [`CALL_TIMEOUT_MS`],
/// retried while its error is [`retryable`], for [`RETRY_BOUND_MS`] at
/// most; the answer, or the first error that is not retryable. Panics,
/// naming `what`, when the bound passes.
pub async fn retried<T, F, Fut>(what: &str, mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let deadline = madsim::time::Instant::now() + Duration::from_millis(RETRY_BOUND_MS);
    loop {
        let answer = madsim::time::timeout(Duration::from_millis(CALL_TIMEOUT_MS), call())
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("timed out on the client")));
        match answer {
            Err(status) if retryable(&status) => {
                if madsim::time::Instant::now() >= deadline {
                    panic!("{what}: still failing after {RETRY_BOUND_MS} ms: {status:?}");
                }
                madsim::time::sleep(Duration::from_millis(POLL_MS)).await;
            }
            other => return other,
        }
    }
}

/// A connect failure as a retryable status.
pub fn connect_failed(error: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("connect: {error}"))
}

/// The member every one of `indexes` names as its leader, once they agree
/// (asked through Maintenance.Status, [`RETRY_BOUND_MS`] at most); its
/// index. Runs on the calling task's host.
pub async fn agreed_leader(indexes: &[u8]) -> u8 {
    let deadline = madsim::time::Instant::now() + Duration::from_millis(RETRY_BOUND_MS);
    let mut seen = Vec::new();
    while madsim::time::Instant::now() < deadline {
        seen.clear();
        for &index in indexes {
            seen.push((index, member_status(index).await));
        }
        let leaders: Vec<u64> = seen
            .iter()
            .filter_map(|(_, s)| s.map(|s| s.leader))
            .collect();
        let first = leaders.first().copied().unwrap_or(0);
        let agreed =
            leaders.len() == indexes.len() && first != 0 && leaders.iter().all(|&l| l == first);
        let leader = seen
            .iter()
            .find(|(_, s)| s.is_some_and(|s| s.member_id == first));
        if let (true, Some((index, _))) = (agreed, leader) {
            return *index;
        }
        madsim::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    panic!("members {indexes:?} agreed on no leader within {RETRY_BOUND_MS} ms: {seen:?}");
}

/// `text` as the bytes of a key or value.
fn bytes_of(text: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(text.as_bytes())
}

/// Puts `key = value` through member `through`, retried as [`retried`]
/// does; the revision it was written at. Panics on any other error.
pub async fn put(through: u8, key: &str, value: &str) -> i64 {
    let request = PutRequest {
        key: bytes_of(key),
        value: bytes_of(value),
        ..PutRequest::default()
    };
    let url = NodeAddr::member(through).client_url();
    let answer = retried(&format!("put {key} through m{through}"), || {
        let (url, request) = (url.clone(), request.clone());
        async move {
            let mut kv = KvClient::connect(url).await.map_err(connect_failed)?;
            Ok::<_, Status>(kv.put(request).await?.into_inner())
        }
    })
    .await;
    match answer {
        Ok(response) => response.header.map_or(0, |h| h.revision),
        Err(status) => panic!("put {key} through m{through}: {status:?}"),
    }
}

/// Reads `key` through member `through`, linearizably unless
/// `serializable` (then from what the member applied); its value, if any.
/// Retried as [`retried`] does; panics on any other error.
pub async fn get(through: u8, key: &str, serializable: bool) -> Option<Vec<u8>> {
    let request = RangeRequest {
        key: bytes_of(key),
        serializable,
        ..RangeRequest::default()
    };
    let url = NodeAddr::member(through).client_url();
    let answer = retried(&format!("get {key} through m{through}"), || {
        let (url, request) = (url.clone(), request.clone());
        async move {
            let mut kv = KvClient::connect(url).await.map_err(connect_failed)?;
            Ok::<_, Status>(kv.range(request).await?.into_inner())
        }
    })
    .await;
    match answer {
        Ok(response) => response.kvs.first().map(|kv| kv.value.to_vec()),
        Err(status) => panic!("get {key} through m{through}: {status:?}"),
    }
}

/// Runs `call` on a Cluster client of member `through`, retried as
/// [`retried`] does (`what` names it).
async fn cluster_call<T, F, Fut>(what: &str, through: u8, call: F) -> Result<T, Status>
where
    F: Fn(ClusterClient<Channel>) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let url = NodeAddr::member(through).client_url();
    retried(&format!("{what} through m{through}"), || {
        let url = url.clone();
        let call = &call;
        async move {
            let client = ClusterClient::connect(url).await.map_err(connect_failed)?;
            call(client).await
        }
    })
    .await
}

/// MemberAdd of `peer_url` (a learner if `is_learner`) through member
/// `through`: the added member and the member list after the change.
pub async fn member_add(
    through: u8,
    peer_url: &str,
    is_learner: bool,
) -> Result<(ClusterMember, Vec<ClusterMember>), Status> {
    let request = MemberAddRequest {
        peer_ur_ls: vec![peer_url.to_owned()],
        is_learner,
    };
    cluster_call("member add", through, |mut client| {
        let request = request.clone();
        async move {
            let response = client.member_add(request).await?.into_inner();
            let added = response.member.unwrap_or_default();
            Ok::<_, Status>((added, response.members))
        }
    })
    .await
}

/// MemberPromote of learner `id` through member `through`.
pub async fn member_promote(through: u8, id: u64) -> Result<(), Status> {
    cluster_call("member promote", through, |mut client| async move {
        client.member_promote(MemberPromoteRequest { id }).await?;
        Ok::<_, Status>(())
    })
    .await
}

/// MemberRemove of member `id` through member `through`: the member list
/// after the change.
pub async fn member_remove(through: u8, id: u64) -> Result<Vec<ClusterMember>, Status> {
    cluster_call("member remove", through, |mut client| async move {
        let request = MemberRemoveRequest { id };
        Ok::<_, Status>(client.member_remove(request).await?.into_inner().members)
    })
    .await
}

/// MemberList through member `through`, confirmed with the leader first if
/// `linearizable`, else what the member applied.
pub async fn member_list(through: u8, linearizable: bool) -> Result<Vec<ClusterMember>, Status> {
    cluster_call("member list", through, |mut client| async move {
        let request = MemberListRequest { linearizable };
        Ok::<_, Status>(client.member_list(request).await?.into_inner().members)
    })
    .await
}
