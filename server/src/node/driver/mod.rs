//! The node driver: one task per member owning the Raft node, the WAL and
//! the state machine (shared with readers through [`Shared`]). This file is
//! the Ready loop; what the loop calls lives beside it:
//!
//! - `applied_state.rs`: the state machine and the member-local state,
//!   whose write lock only this module reaches (apply, snapshot install);
//! - `intake.rs`: commands from handles and messages from peers;
//! - `duties.rs`: what a tick starts (lease duties, the NOSPACE alarm);
//! - `membership.rs`: conf changes proposed, applied, and peers followed;
//! - `snapshots.rs`: snapshot files written, installed and purged.
//!
//! The decisions they take are pure functions in files named after them
//! (`mode.rs`, `alarm_policy.rs`, `lease_duties.rs`, `snapshot_policy.rs`,
//! `db_size.rs`, `conf_waiters.rs`), which tests and the simulator call.
//!
//! The loop waits for a tick (every `--heartbeat-interval`), peer messages,
//! commands from handles or peer-task events; it drains every queued
//! command before handling the next `Ready`, so many proposals share one
//! WAL append and one fsync (group commit). Each `Ready` is handled in the
//! order `kernel/src/raft/raw_node.rs` documents: send `messages`; persist
//! snapshot, entries and hard state (fsync when `must_sync`); send
//! `persisted_messages`; apply committed entries (conf changes through
//! `apply_conf_change`); release ReadIndex reads applied far enough;
//! `advance`. Nothing is acknowledged before the fsync that covers it.
//!
//! WAL and snapshot-file I/O blocks: it runs on tokio's blocking pool in a
//! real build, inline under madsim (which forbids threads; the simulated
//! `Storage` is used there).

mod applied_state;
mod duties;
mod intake;
mod membership;
mod snapshots;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_kernel::apply::{ApplyResult, Request, RequestEnvelope, StateMachine};
use keel_kernel::raft::{
    Entry, MemoryStorage, Message, RaftError, RawNode, Ready, SoftState, StateRole,
};
use keel_wal::{Storage, SyncJob, Wal, WalError};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::bootstrap::Booted;
use super::conf_waiters::ConfWaiters;
use super::db_size::DbSizeEstimate;
use super::disk_full::{DISK_FULL_RETRY_MS, Stalled, is_retryable_full_disk};
use super::handle::{Command, EVENTS_BUFFER, NodeHandle, PROPOSALS_MAX, Shared, unix_ms};
use super::lease_duties::{Cadence, DUTY_INTERVAL_MS};
use super::mode::Mode;
use super::peers::{PeerEvent, Peers};
use super::proposals::{Proposals, RequestIds};
use super::purge_pipeline::PurgePipeline;
use super::read_index::ReadBatcher;
use super::removal::Removal;
use super::segment_pipeline::SegmentPipeline;
use super::settings::NodeSettings;
use crate::api::watch_gauges::WatchGauges;
use crate::blocking::run_blocking;
use crate::replica::{AppliedEvents, NodeStatus, ServerError};
use crate::transport::{Inbound, TransportLimits};
pub use applied_state::AppliedState;
use snapshots::SnapshotWork;

/// Commands drained before one Ready is handled (the group-commit batch).
pub const COMMANDS_PER_ROUND_MAX: usize = 4096;
/// Inbound peer items drained before one Ready is handled.
pub const INBOUND_PER_ROUND_MAX: usize = 256;
/// Readies handled in a row before the loop looks at its inputs again.
pub const READIES_PER_ROUND_MAX: usize = 64;
/// Reads waiting at once.
pub const READS_MAX: usize = 64 * 1024;
/// An fsync slower than this is logged.
pub const SLOW_FSYNC: Duration = Duration::from_secs(1);
/// Debug and simulation builds check every invariant of the Raft node and
/// the state machine once per this many Readies.
pub const INVARIANT_CHECK_READIES: u64 = 64;

/// The channels a driver reads.
pub struct Channels {
    /// Commands from handles.
    pub commands: mpsc::Receiver<Command>,
    /// The sending side, kept in the shared state for handles.
    pub command_tx: mpsc::Sender<Command>,
    /// What peers delivered.
    pub inbound: mpsc::Receiver<Inbound>,
    /// Fires when the member must stop.
    pub stop: oneshot::Receiver<()>,
}

/// The driver of one member.
pub struct Driver<S: Storage> {
    raw: RawNode<MemoryStorage>,
    wal: Wal<S>,
    /// Prepares the WAL's next segment off the driver.
    segments: SegmentPipeline<S>,
    /// Removes WAL segments below snapshots off the driver.
    purges: PurgePipeline,
    /// Snapshot files, their writer and their schedule.
    snapshots: SnapshotWork<S>,
    shared: Arc<Shared>,
    settings: NodeSettings,
    peers: Peers,
    peer_events: mpsc::Receiver<PeerEvent>,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Receiver<Inbound>,
    stop: oneshot::Receiver<()>,
    reads: ReadBatcher,
    conf_waiters: ConfWaiters,
    ticks: u64,
    leader_id: u64,
    is_leader: bool,
    db_size: DbSizeEstimate,
    /// Peers to use until the state machine knows the members (joining).
    known_peers: BTreeMap<u64, String>,
    /// When the periodic duties run next.
    duties: Cadence,
    /// Running, stalled on a full disk, or failed.
    mode: Mode,
    /// Set once this member learns it was removed from the cluster.
    removal: Removal,
    /// Readies handled (for the sampled invariant checks).
    readies: u64,
}

impl<S: Storage> Driver<S> {
    /// A driver for a booted member, and the handle sharing its state.
    pub fn new(
        booted: Booted<S>,
        settings: NodeSettings,
        limits: TransportLimits,
        channels: Channels,
    ) -> (Driver<S>, NodeHandle) {
        let Booted {
            raw,
            wal,
            snapshots,
            state,
            member_id,
            cluster_id,
            snapshot_index,
            known_peers,
            ..
        } = booted;
        let db_size = DbSizeEstimate::new(state.snapshot_len_bytes() as u64);
        let ids = (member_id, cluster_id);
        let shared = Arc::new(shared_state(
            ids,
            state,
            &settings,
            db_size,
            channels.command_tx,
        ));
        let (event_tx, peer_events) = mpsc::channel(1024);
        let peers = Peers::new(
            cluster_id,
            member_id,
            limits,
            event_tx,
            settings.observer.clone(),
        )
        .with_dialer(settings.peer_dialer.clone())
        .with_sender_peer_url(settings.peer_urls.first().cloned().unwrap_or_default());
        let round_ticks = settings.election_ticks();
        let snapshots = SnapshotWork::new(snapshots, &settings, snapshot_index);
        let mut driver = Driver {
            raw,
            wal,
            segments: SegmentPipeline::new(),
            purges: PurgePipeline::new(),
            snapshots,
            shared: shared.clone(),
            settings,
            peers,
            peer_events,
            commands: channels.commands,
            inbound: channels.inbound,
            stop: channels.stop,
            reads: ReadBatcher::new(member_id, READS_MAX, round_ticks),
            conf_waiters: ConfWaiters::default(),
            ticks: 0,
            leader_id: 0,
            is_leader: false,
            db_size,
            known_peers,
            duties: Cadence::new(DUTY_INTERVAL_MS),
            mode: Mode::Running,
            removal: Removal::default(),
            readies: 0,
        };
        driver.refresh_peers();
        (driver, NodeHandle::new(shared))
    }

    /// Runs until stopped; then fails every waiter with `Stopped`.
    pub async fn run(mut self) {
        let mut ticker =
            tokio::time::interval(Duration::from_millis(self.settings.heartbeat_interval_ms));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Apply what the log already commits (bootstrap entries, replay),
        // then a lone voter elects itself at once instead of waiting for an
        // election timeout.
        self.process().await;
        if self.raw.storage().conf_state().voters == [self.shared.member_id] {
            self.raw.campaign();
            self.process().await;
        }
        loop {
            crate::replayable_select::replayable_select! {
                _ = &mut self.stop => break,
                _ = ticker.tick() => self.on_tick(),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_commands(command),
                    None => break,
                },
                Some(item) = self.inbound.recv() => self.on_inbound(item),
                Some(event) = self.peer_events.recv() => self.on_peer_event(event),
            }
            self.process().await;
            if self.removal.must_stop(self.shared.now_ms()) {
                self.shared.removed.send_replace(true);
                break;
            }
        }
        self.sync_before_stopping().await;
        self.shutdown();
    }

    /// Makes whatever the WAL buffered durable before the member stops
    /// (what was acknowledged is durable already; this covers entries
    /// appended since the last Ready).
    async fn sync_before_stopping(&mut self) {
        if !self.mode.is_running() {
            return;
        }
        if let Err(err) = self.sync_wal().await {
            tracing::warn!(%err, "final WAL sync failed while stopping");
        }
    }

    /// Answers every waiting proposal, read and membership change with `err`.
    fn fail_waiters(&mut self, err: &ServerError) {
        self.shared.proposals().fail_all(err);
        self.reads.fail_all(err);
        self.conf_waiters.fail_all(err);
    }

    fn shutdown(&mut self) {
        self.fail_waiters(&ServerError::Stopped);
        self.peers.set_members(&BTreeMap::new());
        tracing::info!(member = %format!("{:x}", self.shared.member_id), "member stopped");
    }

    /// Retries a stalled Ready when due, starts a read round if reads wait,
    /// then handles Readies.
    async fn process(&mut self) {
        match &self.mode {
            Mode::Failed(_) => return,
            Mode::Stalled(stalled) if self.shared.now_ms() < stalled.retry_at_ms => return,
            Mode::Stalled(_) => {
                if let Err(err) = self.handle_ready().await {
                    self.on_storage_failure(&err);
                    return;
                }
                if !self.mode.is_running() {
                    return;
                }
            }
            Mode::Running => {}
        }
        if let Some(ctx) = self.reads.start_round(self.ticks) {
            // Without a leader the round stays in flight and is retried later.
            let _ = self.raw.read_index(ctx);
        }
        for _ in 0..READIES_PER_ROUND_MAX {
            // A stalled Ready waits for its retry time, not the next turn.
            if !self.mode.is_running() || !self.raw.has_ready() {
                break;
            }
            if let Err(err) = self.handle_ready().await {
                self.on_storage_failure(&err);
                return;
            }
        }
    }

    fn send(&mut self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        for id in self.peers.send(messages) {
            self.raw.report_unreachable(id);
        }
    }

    /// Handles one Ready in the documented order.
    /// A Ready that cannot be persisted for lack of space is kept and
    /// retried later (see `disk_full.rs`).
    async fn handle_ready(&mut self) -> Result<(), WalError> {
        let stalled = self.mode.take_stalled();
        let was_stalled = stalled.is_some();
        let mut ready = match stalled {
            Some(stalled) => stalled.ready,
            None => self.take_ready(),
        };
        if let Err(err) = self.persist(&mut ready).await {
            if !is_retryable_full_disk(&err, &self.wal) {
                return Err(err);
            }
            self.stall(ready, was_stalled, &err);
            return Ok(());
        }
        if was_stalled {
            tracing::warn!(
                "disk has space again; raft resumes (NOSPACE alarm stays until disarmed)"
            );
            self.check_alarms();
        }
        if let Some(snapshot) = ready.snapshot.take() {
            self.install_snapshot(snapshot);
        }
        let storage = self.raw.storage_mut();
        if let Err(err) = storage.append(&ready.entries) {
            debug_assert!(false, "raft handed out entries that do not fit: {err}");
            tracing::error!(%err, "cannot append entries to the in-memory log");
        }
        if let Some(hard_state) = ready.hard_state {
            storage.set_hard_state(hard_state);
        }
        self.send(std::mem::take(&mut ready.persisted_messages));
        self.apply(&ready.committed_entries);
        self.settle_disk_full();
        for read_state in &ready.read_states {
            self.reads
                .on_read_state(&read_state.request_ctx, read_state.index);
        }
        let applied = self.shared.read_state().applied_index();
        self.reads.release(applied);
        self.raw.advance();
        self.check_invariants_sampled();
        self.refresh_status();
        self.maybe_snapshot().await
    }

    /// Takes the next Ready and sends the messages that need no persistence.
    fn take_ready(&mut self) -> Ready {
        let mut ready = self.raw.ready();
        if let Some(soft_state) = ready.soft_state.take() {
            self.on_soft_state(soft_state);
        }
        self.send(std::mem::take(&mut ready.messages));
        ready
    }

    /// Persists a Ready's snapshot, entries and hard state (fsync when
    /// `must_sync`). Repeating it after a full disk is harmless: the
    /// snapshot file is rewritten and entries overwrite themselves.
    async fn persist(&mut self, ready: &mut Ready) -> Result<(), WalError> {
        if let Some(snapshot) = &mut ready.snapshot {
            self.save_snapshot_file(snapshot).await?;
        }
        if !ready.entries.is_empty() || ready.hard_state.is_some() {
            self.wal.append(&ready.entries, ready.hard_state.as_ref())?;
        }
        if ready.must_sync {
            self.sync_wal().await?;
        }
        self.segments.poll(&mut self.wal);
        self.purges.poll(&mut self.wal);
        Ok(())
    }

    /// Keeps `ready` for a retry and freezes Raft (see `disk_full.rs`).
    fn stall(&mut self, ready: Ready, was_stalled: bool, err: &WalError) {
        if !was_stalled {
            tracing::error!(
                %err,
                retry_ms = DISK_FULL_RETRY_MS,
                "disk full: writes refused, NOSPACE alarm raised; retrying until space is freed"
            );
            // Before the waiters wake, so they see the alarm.
            self.shared.status().disk_full = true;
            // Their entries may still commit: the honest answer is a timeout.
            self.fail_waiters(&ServerError::Timeout);
        }
        self.mode = Mode::Stalled(Box::new(Stalled {
            ready,
            retry_at_ms: self.shared.now_ms() + DISK_FULL_RETRY_MS,
        }));
    }

    fn on_soft_state(&mut self, soft_state: SoftState) {
        let (old_leader, was_leader) = (self.leader_id, self.is_leader);
        self.leader_id = soft_state.leader_id;
        self.is_leader = soft_state.role == StateRole::Leader;
        if old_leader != self.leader_id {
            self.on_leader_changed(old_leader);
        }
        if self.is_leader && !was_leader {
            let now_ms = self.shared.now_ms();
            let extend_ms = self.settings.election_timeout_ms;
            self.shared
                .state
                .with_local(|state, local| local.lease_promote(state, now_ms, extend_ms));
        } else if was_leader && !self.is_leader {
            self.shared.state.local().lease_demote();
        }
    }

    /// Publishes the new leader, logs it, drops the old leader's
    /// proposals and retries reads it was serving.
    fn on_leader_changed(&mut self, old_leader: u64) {
        if self.leader_id != 0 {
            self.shared.status().leader_changes_seen += 1;
        }
        let leader_id = self.leader_id;
        self.shared.leader.send_if_modified(|known| {
            let changed = *known != leader_id;
            *known = leader_id;
            changed
        });
        let term = self.raw.raft().term;
        let member = format!("{:x}", self.shared.member_id);
        if self.leader_id == 0 {
            tracing::info!(%member, term, "lost the leader");
        } else {
            let leader = format!("{:x}", self.leader_id);
            tracing::info!(%member, %leader, term, "leader elected");
        }
        if old_leader != 0 {
            self.shared
                .proposals()
                .fail_all(&ServerError::ProposalDropped);
        }
        self.reads.retry_stale(self.ticks, true);
    }

    /// Applies committed entries to the state machine, then answers waiters
    /// and broadcasts events.
    fn apply(&mut self, entries: &[Entry]) {
        if entries.is_empty() {
            return;
        }
        let now_ms = self.shared.now_ms();
        self.db_size
            .applied(entries.iter().map(|e| e.data.len() as u64).sum());
        let results: Vec<ApplyResult> = self.shared.state.apply(entries, now_ms);
        let term = self.raw.raft().term;
        for mut result in results {
            if let Some(applied) = result.conf_change.take() {
                self.on_conf_change_applied(applied, &result);
            }
            if !result.events.is_empty() {
                let _ = self.shared.events.send(AppliedEvents {
                    revision: result.header.revision,
                    events: result.events.clone(),
                    restored: false,
                });
            }
            if result.request_id != 0 {
                result.header.cluster_id = self.shared.cluster_id;
                result.header.member_id = self.shared.member_id;
                result.header.raft_term = term;
                let id = result.request_id;
                self.shared.proposals().complete(id, Ok(result));
            }
        }
    }

    /// In debug and simulation builds, every [`INVARIANT_CHECK_READIES`]
    /// Readies: checks the Raft node's and the state machine's invariants
    /// (`check_invariants`, O(state)). A violation panics while holding the
    /// state's write lock, which poisons it: the member stops and nothing
    /// is served from that state afterwards, not even serializable reads.
    fn check_invariants_sampled(&mut self) {
        if !cfg!(debug_assertions) {
            return;
        }
        self.readies += 1;
        if !self.readies.is_multiple_of(INVARIANT_CHECK_READIES) {
            return;
        }
        let state = self.shared.state.write();
        let local = self.shared.state.local();
        let broken = self
            .raw
            .check_invariants()
            .err()
            .or_else(|| state.check_invariants().err())
            .or_else(|| local.check_invariants(&state).err());
        if let Some(violation) = broken {
            panic!("keel: invariant broken, member stops: {violation}");
        }
    }

    fn refresh_status(&self) {
        let raft = self.raw.raft();
        let is_learner = self
            .raw
            .storage()
            .conf_state()
            .learners
            .contains(&self.shared.member_id);
        let mut status = self.shared.status();
        status.leader_id = self.leader_id;
        status.raft_term = raft.term;
        status.raft_index = raft.log.last_index();
        status.raft_commit_index = raft.log.committed();
        status.is_learner = is_learner;
        status.db_size_bytes = self.db_size.bytes();
    }

    /// Writes and fsyncs what the log buffered, off the async workers; the
    /// driver appends nothing meanwhile, so the job holds the log and writes
    /// with direct I/O (`Wal::begin_exclusive_sync`).
    async fn sync_wal(&mut self) -> Result<(), WalError> {
        let job = self.wal.begin_exclusive_sync()?;
        let synced = job.is_some();
        let started = Instant::now();
        let outcome = run_blocking(move || job.map(SyncJob::run)).await;
        let elapsed = started.elapsed();
        if elapsed > SLOW_FSYNC {
            tracing::warn!(took_ms = elapsed.as_millis() as u64, "slow fsync");
        }
        if synced {
            self.settings.observer.wal_fsynced(elapsed);
        }
        self.wal.finish_sync(outcome)?;
        Ok(())
    }

    /// The leader showed that this member's log lost entries it had
    /// acknowledged (`RaftError::LogLost`): Raft's safety rests on them,
    /// so the member stops taking part for good and says why; the binary
    /// exits (etcd-raft panics here).
    fn on_log_lost(&mut self, err: &RaftError) {
        let why = format!(
            "{err}; remove this member and add it back with an empty data dir \
             (etcd's runbook for a member whose data is damaged)"
        );
        tracing::error!(%why, "this member stops taking part in raft");
        let failure = ServerError::Storage(why.clone());
        self.fail_waiters(&failure);
        self.mode = Mode::Failed(failure);
        self.shared.failed.send_replace(Some(why));
    }

    fn on_storage_failure(&mut self, err: &WalError) {
        let failure = if err.is_storage_full() {
            ServerError::Apply(keel_kernel::apply::ApplyError::NoSpace)
        } else {
            ServerError::Storage(format!("storage failure: {err}"))
        };
        tracing::error!(%err, "storage failed; this member stops taking part in raft");
        self.fail_waiters(&failure);
        self.mode = Mode::Failed(failure);
    }

    /// Proposes a request nobody waits for (id 0): lease revocations and
    /// checkpoints, alarms. A proposal Raft drops (no leader) is asked
    /// again at the next duty round.
    fn propose_internal(&mut self, request: Request) {
        let envelope = RequestEnvelope {
            id: 0,
            auth: None,
            request,
        };
        if let Ok(data) = envelope.encode()
            && let Err(err) = self.raw.propose(data)
        {
            tracing::debug!(%err, "internal proposal dropped");
        }
    }
}

/// The state the driver shares with every handle: `(member_id,
/// cluster_id)` and the booted state machine.
fn shared_state(
    (member_id, cluster_id): (u64, u64),
    state: StateMachine,
    settings: &NodeSettings,
    db_size: DbSizeEstimate,
    commands: mpsc::Sender<Command>,
) -> Shared {
    let (events, _) = broadcast::channel(EVENTS_BUFFER);
    Shared {
        member_id,
        cluster_id,
        settings: settings.clone(),
        state: AppliedState::new(state),
        status: Mutex::new(NodeStatus {
            member_id,
            cluster_id,
            db_size_bytes: db_size.bytes(),
            db_size_quota_bytes: settings.quota_backend_bytes.unwrap_or(0),
            ..NodeStatus::default()
        }),
        proposals: Mutex::new(Proposals::new(PROPOSALS_MAX)),
        ids: Mutex::new(RequestIds::new(member_id, unix_ms())),
        commands,
        events,
        started: Instant::now(),
        lease_clients: Mutex::new(BTreeMap::new()),
        leader: watch::channel(0).0,
        removed: watch::channel(false).0,
        failed: watch::channel(None).0,
        watch_gauges: WatchGauges::new(),
    }
}
