//! The node driver: one task per member that owns the Raft node, the WAL and
//! the state machine, and a cheap [`NodeHandle`] implementing
//! [`Replica`](crate::replica::Replica) for the API layer.
//!
//! - [`settings`]: what the driver needs from the configuration.
//! - [`bootstrap`]: fresh start or restart from the data directory.
//! - [`driver`]: the Ready loop (ticks, peer messages, proposals, ReadIndex;
//!   send, persist with group commit, send after fsync, apply, release
//!   reads, advance) and what it calls.
//! - The driver's decisions, pure and tested alone: [`mode`] (running,
//!   stalled, failed), [`alarm_policy`] (NOSPACE), [`lease_duties`] (the
//!   leader's revocations and checkpoints), [`snapshot_policy`] (when to
//!   snapshot, how much log to keep), [`db_size`], [`conf_waiters`].
//! - [`proposals`]: request waiters; [`read_index`]: read batching.
//! - [`peers`]: outbound peer streams; [`handle`]: the `Replica`.
//! - [`compaction`]: automatic history compaction on the leader.
//! - `segment_pipeline`: the WAL's next segment prepared in the background.
//! - [`serve`]: running a whole member (node + API + peer servers).

pub mod alarm_policy;
mod background;
pub mod bootstrap;
pub mod compaction;
pub mod conf_waiters;
pub mod db_size;
pub mod disk_full;
pub mod driver;
pub mod handle;
pub mod join;
pub mod lease_duties;
pub mod mode;
pub mod peers;
#[cfg(feature = "planted-bug-apply-twice-after-restart")]
mod planted_apply_twice;
pub mod proposals;
mod purge_pipeline;
pub mod read_index;
pub mod removal;
mod segment_pipeline;
pub mod serve;
pub mod settings;
pub mod shutdown;
pub mod snapshot_policy;
mod snapshot_saver;

pub use bootstrap::{BootError, NodeStorage};
pub use handle::NodeHandle;
pub use settings::NodeSettings;

use keel_wal::Storage;
use tokio::sync::{mpsc, oneshot, watch};

use crate::transport::TransportLimits;
use crate::transport::inbox::FileInbox;
use crate::transport::receive::PeerService;

/// Inbound peer items buffered before peers are slowed down.
pub const INBOUND_QUEUE_MAX: usize = 1024;
/// Commands (proposals, reads, conf changes) buffered for the driver.
pub const COMMAND_QUEUE_MAX: usize = 16 * 1024;

/// A running member's node driver.
pub struct Node {
    handle: NodeHandle,
    published: watch::Receiver<bool>,
    stop: Option<oneshot::Sender<()>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Boots the member from `storage` (see [`bootstrap::boot`]; a member
    /// joining with `--initial-cluster-state existing` first asks its peers
    /// for the cluster, [`join::discover`]) and spawns its
    /// driver task. Returns the node and the peer service to serve on the
    /// member's peer URLs (it feeds the driver).
    ///
    /// Errors: see [`BootError`].
    pub async fn launch<S: Storage>(
        settings: NodeSettings,
        storage: NodeStorage<S>,
        limits: TransportLimits,
    ) -> Result<(Node, PeerService), BootError> {
        let joining = settings.initial_cluster_state == crate::config::ClusterState::Existing
            && !bootstrap::has_wal(&storage)?;
        let join = match joining {
            true => Some(join::discover(&settings).await?),
            false => None,
        };
        Node::start_with(settings, storage, limits, join)
    }

    /// As [`Node::launch`] without asking peers: a new cluster or a restart
    /// (`--initial-cluster-state existing` on an empty directory fails).
    ///
    /// Errors: see [`BootError`].
    pub fn start<S: Storage>(
        settings: NodeSettings,
        storage: NodeStorage<S>,
        limits: TransportLimits,
    ) -> Result<(Node, PeerService), BootError> {
        Node::start_with(settings, storage, limits, None)
    }

    fn start_with<S: Storage>(
        settings: NodeSettings,
        storage: NodeStorage<S>,
        limits: TransportLimits,
        join: Option<bootstrap::JoinInfo>,
    ) -> Result<(Node, PeerService), BootError> {
        let booted = bootstrap::boot(&settings, storage, join)?;
        // Before anything writes snapshot files: removes what a crash left.
        let inbox = FileInbox::for_member(booted.snapshots.clone())?;
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE_MAX);
        let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE_MAX);
        let (cluster_id, member_id) = (booted.cluster_id, booted.member_id);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (driver, handle) = driver::Driver::new(
            booted,
            settings.clone(),
            limits,
            driver::Channels {
                commands: command_rx,
                command_tx,
                inbound: inbound_rx,
                stop: stop_rx,
            },
        );
        let peer_service = PeerService::new(cluster_id, member_id, limits, inbound_tx)
            .with_lease_authority(std::sync::Arc::new(handle.clone()))
            .with_snapshot_inbox(std::sync::Arc::new(inbox));
        let driver = tokio::spawn(driver.run());
        let published = handle.publish_attributes_in_background();
        tokio::spawn(compaction::run(handle.clone(), settings.auto_compaction));
        Ok((
            Node {
                handle,
                published,
                stop: Some(stop_tx),
                driver,
            },
            peer_service,
        ))
    }

    /// The handle the API layer uses.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Turns `true` once this member's attributes are published through
    /// Raft (etcd's `ReadyNotify`); closed if the member stops before.
    pub fn published(&self) -> watch::Receiver<bool> {
        self.published.clone()
    }

    /// Resolves once this member stopped because it was removed from the
    /// cluster (see [`removal`]); pending forever otherwise.
    pub fn removed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut removed = self.handle.shared().removed.subscribe();
        async move {
            if removed.wait_for(|removed| *removed).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Resolves with the reason once this member stopped taking part in
    /// Raft for good because its log lost acknowledged entries (see
    /// `RaftError::LogLost`); pending forever otherwise.
    pub fn failed(&self) -> impl Future<Output = String> + Send + 'static {
        let mut failed = self.handle.shared().failed.subscribe();
        async move {
            let why = match failed.wait_for(Option::is_some).await {
                Ok(why) => why.clone(),
                Err(_) => None,
            };
            match why {
                Some(why) => why,
                None => std::future::pending::<String>().await,
            }
        }
    }

    /// If this member leads and has other voters, hands leadership to the
    /// most up-to-date one before stopping (see [`shutdown`]); bounded.
    pub async fn transfer_leadership_on_shutdown(&self) -> Option<u64> {
        shutdown::transfer_leadership(&self.handle).await
    }

    /// Stops the driver: waiting requests fail with `Stopped`; what was
    /// acknowledged is durable already.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.driver).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod cluster_tests;
#[cfg(test)]
mod gated_disk;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod local_state_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod snapshot_tests;
