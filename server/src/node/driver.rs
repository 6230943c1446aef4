//! The node driver: one task per member owning the Raft node, the WAL and
//! the state machine (shared with readers through [`Shared`]).
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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use keel_kernel::apply::{
    AlarmAction, AlarmMember, AlarmRequest, AlarmType, ApplyError, ApplyResult, ConfChangeApplied,
    Request, RequestEnvelope, StateMachine,
};
use keel_kernel::membership::MembershipError;
use keel_kernel::raft::{
    ConfChange, ConfChangeType, Entry, MemoryStorage, Message, RaftError, RawNode, Ready, Snapshot,
    SoftState, StateRole,
};
use keel_wal::{SnapshotFiles, SnapshotMarker, Storage, SyncJob, Wal, WalError};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::bootstrap::{Booted, state_config};
use super::disk_full::{DISK_FULL_RETRY_MS, Stalled, is_retryable_full_disk};
use super::handle::{Command, EVENTS_BUFFER, NodeHandle, PROPOSALS_MAX, Shared, unix_ms};
use super::peers::{PeerEvent, Peers};
use super::proposals::{Proposals, RequestIds};
use super::purge_pipeline::PurgePipeline;
use super::read_index::ReadBatcher;
use super::removal::Removal;
use super::segment_pipeline::SegmentPipeline;
use super::settings::NodeSettings;
use super::snapshot_buffer::SnapshotBuffer;
use super::snapshot_saver::{SaveResult, Saved, Saving, SnapshotSaver, save_and_map};
use crate::api::watch_gauges::WatchGauges;
use crate::backend::{AppliedEvents, NodeStatus, ServerError};
use crate::transport::{Inbound, TransportLimits};

/// Commands drained before one Ready is handled (the group-commit batch).
pub const COMMANDS_PER_ROUND_MAX: usize = 4096;
/// Inbound peer items drained before one Ready is handled.
pub const INBOUND_PER_ROUND_MAX: usize = 256;
/// Readies handled in a row before the loop looks at its inputs again.
pub const READIES_PER_ROUND_MAX: usize = 64;
/// Reads waiting at once.
pub const READS_MAX: usize = 64 * 1024;
/// Membership changes waiting at once.
pub const CONF_CHANGES_MAX: usize = 16;
/// How often the leader looks for expired leases and due checkpoints.
pub const LEASE_CHECK_INTERVAL_MS: u64 = 500;
/// An fsync slower than this is logged.
pub const SLOW_FSYNC: Duration = Duration::from_secs(1);

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
    /// Writes snapshot files off the driver.
    saver: SnapshotSaver,
    /// Memory for the next snapshot's encoding, prepared off the driver.
    snapshot_buffer: SnapshotBuffer,
    snapshots: SnapshotFiles<S>,
    shared: Arc<Shared>,
    settings: NodeSettings,
    peers: Peers,
    peer_events: mpsc::Receiver<PeerEvent>,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Receiver<Inbound>,
    stop: oneshot::Receiver<()>,
    reads: ReadBatcher,
    conf_waiters: Vec<(ConfChange, oneshot::Sender<Result<(), ServerError>>)>,
    ticks: u64,
    leader_id: u64,
    is_leader: bool,
    snapshot_index: u64,
    /// Estimated state size: the last measured snapshot plus the bytes of
    /// every entry applied since (never shrinks until the next snapshot,
    /// like etcd's backend file until a defragment).
    db_size_bytes: u64,
    /// Peers to use until the state machine knows the members (joining).
    known_peers: BTreeMap<u64, String>,
    last_lease_check_ms: u64,
    /// Set once storage failed: the member stops taking part in Raft.
    failed: Option<ServerError>,
    /// A Ready waiting for disk space; Raft is frozen meanwhile (see
    /// `disk_full.rs`).
    stalled: Option<Stalled>,
    /// No snapshot file is attempted before this time (ms) after a full
    /// disk refused one.
    snapshot_retry_at_ms: u64,
    /// Set once this member learns it was removed from the cluster.
    removal: Removal,
}

impl<S: Storage> Driver<S> {
    /// A driver for a booted member, and the handle sharing its state.
    pub fn new(
        booted: Booted<S>,
        settings: NodeSettings,
        limits: TransportLimits,
        channels: Channels,
    ) -> (Driver<S>, NodeHandle) {
        let (events, _) = broadcast::channel(EVENTS_BUFFER);
        let db_size_bytes = booted.state.snapshot_len_bytes() as u64;
        let shared = Arc::new(Shared {
            member_id: booted.member_id,
            cluster_id: booted.cluster_id,
            settings: settings.clone(),
            state: std::sync::RwLock::new(booted.state),
            status: Mutex::new(NodeStatus {
                member_id: booted.member_id,
                cluster_id: booted.cluster_id,
                db_size_bytes,
                db_size_quota_bytes: settings.quota_backend_bytes.unwrap_or(0),
                ..NodeStatus::default()
            }),
            proposals: Mutex::new(Proposals::new(PROPOSALS_MAX)),
            ids: Mutex::new(RequestIds::new(booted.member_id, unix_ms())),
            commands: channels.command_tx,
            events,
            started: Instant::now(),
            lease_clients: Mutex::new(BTreeMap::new()),
            leader: watch::channel(0).0,
            removed: watch::channel(false).0,
            watch_gauges: WatchGauges::new(),
        });
        let (event_tx, peer_events) = mpsc::channel(1024);
        let peers = Peers::new(
            booted.cluster_id,
            booted.member_id,
            limits,
            event_tx,
            settings.observer.clone(),
        )
        .with_dialer(settings.peer_dialer.clone());
        let round_ticks = settings.election_ticks();
        let mut driver = Driver {
            raw: booted.raw,
            wal: booted.wal,
            segments: SegmentPipeline::new(),
            purges: PurgePipeline::new(),
            saver: SnapshotSaver::new(),
            snapshot_buffer: SnapshotBuffer::new(),
            snapshots: booted.snapshots,
            shared: shared.clone(),
            settings,
            peers,
            peer_events,
            commands: channels.commands,
            inbound: channels.inbound,
            stop: channels.stop,
            reads: ReadBatcher::new(booted.member_id, READS_MAX, round_ticks),
            conf_waiters: Vec::new(),
            ticks: 0,
            leader_id: 0,
            is_leader: false,
            snapshot_index: booted.snapshot_index,
            db_size_bytes,
            known_peers: booted.known_peers,
            last_lease_check_ms: 0,
            failed: None,
            stalled: None,
            snapshot_retry_at_ms: 0,
            removal: Removal::default(),
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
            tokio::select! {
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
        if self.failed.is_some() || self.stalled.is_some() {
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
        for (_, reply) in self.conf_waiters.drain(..) {
            let _ = reply.send(Err(err.clone()));
        }
    }

    fn shutdown(&mut self) {
        self.fail_waiters(&ServerError::Stopped);
        self.peers.set_members(&BTreeMap::new());
        tracing::info!(member = %format!("{:x}", self.shared.member_id), "member stopped");
    }

    /// Starts a read round if reads wait, then handles Readies.
    async fn process(&mut self) {
        if self.failed.is_some() {
            return;
        }
        if let Some(stalled) = &self.stalled {
            if self.shared.now_ms() < stalled.retry_at_ms {
                return;
            }
            if let Err(err) = self.handle_ready().await {
                self.on_storage_failure(&err);
                return;
            }
            if self.stalled.is_some() {
                return;
            }
        }
        if let Some(ctx) = self.reads.start_round(self.ticks) {
            // Without a leader the round stays in flight and is retried later.
            let _ = self.raw.read_index(ctx);
        }
        for _ in 0..READIES_PER_ROUND_MAX {
            if !self.raw.has_ready() {
                break;
            }
            if let Err(err) = self.handle_ready().await {
                self.on_storage_failure(&err);
                return;
            }
        }
    }

    fn on_tick(&mut self) {
        if self.failed.is_some() || self.stalled.is_some() {
            return;
        }
        self.ticks += 1;
        self.raw.tick();
        let now_ms = self.shared.now_ms();
        self.shared.write_state().set_now_ms(now_ms);
        self.reads.retry_stale(self.ticks, false);
        if now_ms >= self.last_lease_check_ms + LEASE_CHECK_INTERVAL_MS {
            self.last_lease_check_ms = now_ms;
            if self.is_leader || cfg!(feature = "planted-bug-follower-expires-leases") {
                self.lease_duties();
            }
            self.check_quota();
            self.raise_nospace_alarm();
            self.shared.status().alarm_checks += 1;
        }
    }

    /// Leader: revoke expired leases and checkpoint remaining TTLs through Raft.
    fn lease_duties(&mut self) {
        let (expired, checkpoints) = {
            let mut state = self.shared.write_state();
            (state.lease_expired(), state.lease_checkpoints_due())
        };
        for id in expired {
            self.propose_internal(Request::LeaseRevoke { id });
        }
        if !checkpoints.is_empty() {
            self.propose_internal(Request::LeaseCheckpoint(checkpoints));
        }
    }

    /// Raises this member's NOSPACE alarm through Raft while the state is
    /// over `--quota-backend-bytes` (etcd's quota check); writes are then
    /// refused with "etcdserver: mvcc: database space exceeded".
    fn check_quota(&mut self) {
        let Some(quota_bytes) = self.settings.quota_backend_bytes else {
            return;
        };
        if self.db_size_bytes <= quota_bytes || self.leader_id == 0 {
            return;
        }
        let member_id = self.shared.member_id;
        let raised = self
            .shared
            .read_state()
            .alarms()
            .list()
            .contains(&AlarmMember {
                member_id,
                alarm: AlarmType::NoSpace,
            });
        if !raised {
            tracing::warn!(
                db_size_bytes = self.db_size_bytes,
                quota_bytes,
                "state over quota; raising the NOSPACE alarm"
            );
            self.propose_internal(Request::Alarm(AlarmRequest {
                action: AlarmAction::Activate,
                member_id,
                alarm: AlarmType::NoSpace,
            }));
        }
    }

    /// After a full disk: proposes this member's NOSPACE alarm until it is
    /// applied (see `disk_full.rs`); the member reports it locally until then.
    fn raise_nospace_alarm(&mut self) {
        if !self.nospace_alarm_wanted() || self.leader_id == 0 || self.stalled.is_some() {
            return;
        }
        if self.settle_nospace_alarm() {
            return;
        }
        self.propose_internal(Request::Alarm(AlarmRequest {
            action: AlarmAction::Activate,
            member_id: self.shared.member_id,
            alarm: AlarmType::NoSpace,
        }));
    }

    /// Once the wanted NOSPACE alarm is applied, stops asking for it, so an
    /// operator's later `alarm disarm` is not undone; checked right after
    /// every apply. Returns true when nothing is wanted any more.
    fn settle_nospace_alarm(&mut self) -> bool {
        if !self.nospace_alarm_wanted() {
            return true;
        }
        if !self.nospace_alarm_applied() {
            return false;
        }
        // From now on the applied alarm speaks for the member.
        self.shared.status().disk_full = false;
        true
    }

    /// Whether this member's NOSPACE alarm must still be proposed: its disk
    /// was found full and the alarm has not been seen applied. Kept in the
    /// shared status (`disk_full`), which also makes the API report it.
    fn nospace_alarm_wanted(&self) -> bool {
        self.shared.status().disk_full
    }

    fn nospace_alarm_applied(&self) -> bool {
        self.shared
            .read_state()
            .alarms()
            .list()
            .contains(&AlarmMember {
                member_id: self.shared.member_id,
                alarm: AlarmType::NoSpace,
            })
    }

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

    fn on_commands(&mut self, first: Command) {
        self.on_command(first);
        for _ in 1..COMMANDS_PER_ROUND_MAX {
            match self.commands.try_recv() {
                Ok(command) => self.on_command(command),
                Err(_) => break,
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        if let Some(err) = &self.failed {
            let err = err.clone();
            self.refuse(command, err.clone(), err);
            return;
        }
        if self.stalled.is_some() {
            // Writes and membership changes were never proposed, so they
            // are refused outright; linearizable reads time out (Raft is
            // frozen). See `disk_full.rs`.
            let nospace = ServerError::Apply(keel_kernel::apply::ApplyError::NoSpace);
            self.refuse(command, nospace, ServerError::Timeout);
            return;
        }
        match command {
            Command::Propose { id, data } => {
                if self.raw.propose(data).is_err() && id != 0 {
                    let err = self.no_leader_error();
                    self.shared.proposals().complete(id, Err(err));
                }
            }
            Command::Read(reply) => self.reads.push(reply),
            Command::ConfChange { change, reply } => self.propose_conf_change(change, reply),
            Command::TransferLeader { transferee } => {
                tracing::info!(transferee = %format!("{transferee:x}"), "leadership transfer starting");
                self.raw.transfer_leader(transferee);
            }
            Command::TransferOnShutdown(reply) => {
                let _ = reply.send(self.transfer_on_shutdown());
            }
        }
    }

    /// A leader about to stop starts handing leadership to its most
    /// up-to-date voter and returns it; `None` when this member does not
    /// lead or leads alone.
    fn transfer_on_shutdown(&mut self) -> Option<u64> {
        if !self.is_leader {
            return None;
        }
        let member_id = self.shared.member_id;
        let transferee = self.raw.raft().tracker.most_up_to_date_voter(member_id)?;
        tracing::info!(
            transferee = %format!("{transferee:x}"),
            "stopping as leader; leadership transfer starting"
        );
        self.raw.transfer_leader(transferee);
        Some(transferee)
    }

    /// Answers a command without running it: `write_err` for proposals and
    /// membership changes, `read_err` for reads.
    fn refuse(&mut self, command: Command, write_err: ServerError, read_err: ServerError) {
        match command {
            Command::Propose { id, .. } => {
                self.shared.proposals().complete(id, Err(write_err));
            }
            Command::Read(reply) => {
                let _ = reply.send(Err(read_err));
            }
            Command::ConfChange { reply, .. } => {
                let _ = reply.send(Err(write_err));
            }
            // Its caller times out waiting for the new leader.
            Command::TransferLeader { .. } => {}
            Command::TransferOnShutdown(reply) => {
                let _ = reply.send(None);
            }
        }
    }

    fn propose_conf_change(
        &mut self,
        change: ConfChange,
        reply: oneshot::Sender<Result<(), ServerError>>,
    ) {
        if self.conf_waiters.len() >= CONF_CHANGES_MAX {
            let _ = reply.send(Err(ServerError::TooManyRequests));
            return;
        }
        match self.raw.propose_conf_change(&change) {
            Ok(()) => self.conf_waiters.push((change, reply)),
            Err(RaftError::LearnerNotReady { id }) => {
                tracing::info!(learner = %format!("{id:x}"), "promotion refused: learner not in sync");
                let refusal = ApplyError::Membership(MembershipError::LearnerNotReady);
                let _ = reply.send(Err(ServerError::Apply(refusal)));
            }
            Err(err @ RaftError::Unhealthy { .. }) => {
                tracing::warn!(%err, "membership change refused: it would cost the active quorum");
                let _ = reply.send(Err(ServerError::Unhealthy));
            }
            Err(err) => {
                tracing::info!(%err, "membership change refused by raft");
                let _ = reply.send(Err(self.no_leader_error()));
            }
        }
    }

    fn no_leader_error(&self) -> ServerError {
        if self.leader_id == 0 {
            ServerError::NoLeader
        } else {
            ServerError::ProposalDropped
        }
    }

    fn on_inbound(&mut self, first: Inbound) {
        self.step_inbound(first);
        for _ in 1..INBOUND_PER_ROUND_MAX {
            match self.inbound.try_recv() {
                Ok(item) => self.step_inbound(item),
                Err(_) => break,
            }
        }
    }

    fn step_inbound(&mut self, item: Inbound) {
        // A frozen member drops what peers send, as a partition would.
        if self.failed.is_some() || self.stalled.is_some() {
            return;
        }
        let messages = match item {
            Inbound::Raft { messages, .. } => messages
                .iter()
                .filter_map(|bytes| Message::decode(bytes).ok())
                .collect(),
            Inbound::Snapshot(received) => match Message::decode(&received.message) {
                Ok(mut message) => {
                    if let Some(snapshot) = message.snapshot.as_mut() {
                        snapshot.data = received.data;
                    }
                    vec![message]
                }
                Err(err) => {
                    tracing::warn!(%err, "undecodable snapshot message");
                    Vec::new()
                }
            },
        };
        for message in messages {
            if let Err(err) = self.raw.step(message) {
                tracing::debug!(%err, "raft refused a peer message");
            }
        }
    }

    fn on_peer_event(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::Unreachable(id) => self.raw.report_unreachable(id),
            PeerEvent::SnapshotSent(id, ok) => self.raw.report_snapshot(id, ok),
            PeerEvent::Removed(by) => {
                let how = format!("peer {by:x} refused its messages");
                self.learn_removed(&how);
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
        let was_stalled = self.stalled.is_some();
        let mut ready = match self.stalled.take() {
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
            self.raise_nospace_alarm();
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
        self.settle_nospace_alarm();
        for read_state in &ready.read_states {
            self.reads
                .on_read_state(&read_state.request_ctx, read_state.index);
        }
        let applied = self.shared.read_state().applied_index();
        self.reads.release(applied);
        self.raw.advance();
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
        self.stalled = Some(Stalled {
            ready,
            retry_at_ms: self.shared.now_ms() + DISK_FULL_RETRY_MS,
        });
    }

    fn on_soft_state(&mut self, soft_state: SoftState) {
        let (old_leader, was_leader) = (self.leader_id, self.is_leader);
        self.leader_id = soft_state.leader_id;
        self.is_leader = soft_state.role == StateRole::Leader;
        let member = format!("{:x}", self.shared.member_id);
        if old_leader != self.leader_id {
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
        if self.is_leader && !was_leader {
            let now_ms = self.shared.now_ms();
            let mut state = self.shared.write_state();
            state.set_now_ms(now_ms);
            state.lease_promote(self.settings.election_timeout_ms);
        } else if was_leader && !self.is_leader {
            self.shared.write_state().lease_demote();
        }
    }

    /// Applies committed entries to the state machine, then answers waiters
    /// and broadcasts events.
    fn apply(&mut self, entries: &[Entry]) {
        if entries.is_empty() {
            return;
        }
        let now_ms = self.shared.now_ms();
        let applied_bytes: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
        self.db_size_bytes = self.db_size_bytes.saturating_add(applied_bytes);
        let results: Vec<ApplyResult> = {
            let mut state = self.shared.write_state();
            state.set_now_ms(now_ms);
            entries.iter().map(|entry| state.apply(entry)).collect()
        };
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

    fn on_conf_change_applied(&mut self, applied: ConfChangeApplied, result: &ApplyResult) {
        if applied.accepted {
            match self.raw.apply_conf_change(&applied.change) {
                Ok(conf_state) => self.raw.storage_mut().set_conf_state(conf_state),
                Err(err) => tracing::warn!(%err, "raft refused an accepted conf change"),
            }
            self.refresh_peers();
            tracing::info!(
                index = result.index,
                changes = ?applied.change.changes,
                "applied membership change"
            );
            let removes_self = applied.change.changes.iter().any(|c| {
                c.change_type == ConfChangeType::RemoveNode && c.node_id == self.shared.member_id
            });
            if removes_self {
                self.learn_removed("applied its own removal");
            }
        }
        let position = self
            .conf_waiters
            .iter()
            .position(|(change, _)| *change == applied.change);
        if let Some(position) = position {
            let (_, reply) = self.conf_waiters.swap_remove(position);
            let outcome = match &result.result {
                Ok(_) => Ok(()),
                Err(err) => Err(ServerError::Apply(err.clone())),
            };
            let _ = reply.send(outcome);
        }
    }

    /// This member was removed from the cluster: it stops one election
    /// timeout later (etcd `stopWithDelay`: ten ticks), leaving time to
    /// answer the client that removed it.
    fn learn_removed(&mut self, how: &str) {
        let now_ms = self.shared.now_ms();
        let delay_ms = self.settings.election_timeout_ms;
        self.removal
            .removed(self.shared.member_id, how, now_ms, delay_ms);
    }

    /// Points the peer senders at the current members' first peer URLs.
    fn refresh_peers(&mut self) {
        let members: BTreeMap<u64, String> = {
            let state = self.shared.read_state();
            state
                .cluster()
                .members()
                .into_iter()
                .filter(|m| m.id != self.shared.member_id)
                .filter_map(|m| m.peer_urls.first().map(|url| (m.id, url.clone())))
                .collect()
        };
        if members.is_empty() && !self.known_peers.is_empty() {
            self.peers.set_members(&self.known_peers);
        } else {
            self.peers.set_members(&members);
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
        status.db_size_bytes = self.db_size_bytes;
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

    /// Persists a snapshot received from the leader: the file, then its WAL
    /// marker. The snapshot's data becomes the saved file, mapped in memory,
    /// so Raft keeps that rather than the received copy (see
    /// `snapshot_saver.rs`).
    async fn save_snapshot_file(&mut self, snapshot: &mut Snapshot) -> Result<(), WalError> {
        // One writer of snapshot files at a time, and markers in order.
        if let Some(done) = self.saver.wait().await {
            self.finish_snapshot(done).await?;
        }
        let files = self.snapshots.clone();
        let to_save = snapshot.clone();
        let saved = run_blocking(move || save_and_map(&files, &to_save)).await?;
        self.settings.observer.snapshot_saved(saved.elapsed);
        if let Some(data) = saved.mapped {
            snapshot.data = data;
        }
        self.wal.append_snapshot_marker(&SnapshotMarker {
            index: snapshot.metadata.index,
            term: snapshot.metadata.term,
            conf_state: snapshot.metadata.conf_state.clone(),
        })?;
        Ok(())
    }

    /// Replaces the log and the state machine with a leader's snapshot.
    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let index = snapshot.metadata.index;
        match StateMachine::restore(state_config(&self.settings), &snapshot.data) {
            Ok(mut restored) => {
                restored.set_now_ms(self.shared.now_ms());
                let revision = restored.store().current_revision();
                *self.shared.write_state() = restored;
                // Watchers resume from the new store's history.
                let _ = self.shared.events.send(AppliedEvents {
                    revision,
                    events: Vec::new(),
                    restored: true,
                });
            }
            Err(err) => {
                tracing::error!(%err, index, "leader's snapshot does not decode");
                return;
            }
        }
        let size_bytes = snapshot.data.len() as u64;
        if let Err(err) = self.raw.storage_mut().apply_snapshot(snapshot) {
            tracing::warn!(%err, index, "snapshot older than the log");
        }
        self.snapshot_index = index;
        self.db_size_bytes = size_bytes;
        self.refresh_peers();
        self.shared.status().snapshots_installed += 1;
        tracing::info!(index, size_bytes, "installed snapshot from the leader");
    }

    /// Every `--snapshot-count` applied entries: encodes the state, hands it
    /// to Raft (for followers that need it) and starts writing its file in
    /// the background; once a file is durable, finishes that snapshot (see
    /// [`Driver::finish_snapshot`]). One file is written at a time.
    async fn maybe_snapshot(&mut self) -> Result<(), WalError> {
        if let Some(done) = self.saver.try_finish() {
            self.finish_snapshot(done).await?;
        }
        if self.saver.is_saving() {
            return Ok(());
        }
        let (applied, data) = {
            let state = self.shared.read_state();
            let applied = state.applied_index();
            if applied < self.snapshot_index + self.settings.snapshot_count
                || self.shared.now_ms() < self.snapshot_retry_at_ms
            {
                return Ok(());
            }
            // Encode into memory prepared off the driver (see
            // `snapshot_buffer.rs`); until it is ready, the next Ready asks again.
            let Some(buffer) = self.snapshot_buffer.take(|| state.snapshot_len_bytes()) else {
                return Ok(());
            };
            (applied, Bytes::from(state.snapshot_into(buffer)))
        };
        let conf_state = self.raw.storage().conf_state().clone();
        let size_bytes = data.len() as u64;
        match self
            .raw
            .storage_mut()
            .create_snapshot(applied, conf_state, data)
        {
            Ok(snapshot) => self.saver.start(&self.snapshots, snapshot),
            Err(err) => tracing::warn!(%err, applied, "cannot snapshot"),
        }
        self.db_size_bytes = size_bytes;
        Ok(())
    }

    /// Once a snapshot file is durable: marks the snapshot in the WAL,
    /// compacts the in-memory log (keeping `snapshot_catchup_entries` for
    /// slow followers) and starts purging the WAL segments below it. A full
    /// disk that refused the file raises NOSPACE and the snapshot is tried
    /// again later.
    async fn finish_snapshot(
        &mut self,
        (saving, result): (Saving, SaveResult),
    ) -> Result<(), WalError> {
        let index = saving.marker.index;
        let saved = match result {
            Ok(saved) => saved,
            Err(err) => {
                if !is_retryable_full_disk(&err, &self.wal) {
                    return Err(err);
                }
                tracing::error!(%err, index, "disk full: no snapshot taken; NOSPACE alarm raised");
                self.shared.status().disk_full = true;
                self.snapshot_retry_at_ms = self.shared.now_ms() + DISK_FULL_RETRY_MS;
                return Ok(());
            }
        };
        let Saved {
            name,
            mapped,
            elapsed,
        } = saved;
        self.settings.observer.snapshot_saved(elapsed);
        if let Some(data) = mapped {
            // Raft keeps the snapshot for lagging followers: from now on
            // it reads it from the file, and the heap copy is freed.
            self.raw.storage_mut().replace_snapshot_data(index, data);
        }
        if index <= self.snapshot_index {
            // A leader's newer snapshot was installed meanwhile.
            return Ok(());
        }
        self.wal.append_snapshot_marker(&saving.marker)?;
        self.sync_wal().await?;
        self.snapshot_index = index;
        let compact_to = index.saturating_sub(self.settings.snapshot_catchup_entries);
        let first_index = self.raw.storage().first_index_or_zero();
        if compact_to >= first_index
            && compact_to > 0
            && let Err(err) = self.raw.storage_mut().compact(compact_to)
        {
            tracing::warn!(%err, compact_to, "cannot compact the raft log");
        }
        self.purges.start(&mut self.wal, index)?;
        tracing::info!(index, size_bytes = saving.size_bytes, file = %name, "snapshot taken");
        Ok(())
    }

    fn on_storage_failure(&mut self, err: &WalError) {
        let failure = if err.is_storage_full() {
            ServerError::Apply(keel_kernel::apply::ApplyError::NoSpace)
        } else {
            ServerError::Storage(format!("storage failure: {err}"))
        };
        tracing::error!(%err, "storage failed; this member stops taking part in raft");
        self.fail_waiters(&failure);
        self.failed = Some(failure);
    }
}

/// First index of the in-memory log, 0 if unknown.
trait FirstIndex {
    fn first_index_or_zero(&self) -> u64;
}

impl FirstIndex for MemoryStorage {
    fn first_index_or_zero(&self) -> u64 {
        keel_kernel::raft::Storage::first_index(self).unwrap_or(0)
    }
}

/// Runs blocking I/O off the async workers (tokio's blocking pool); inline
/// under madsim, whose simulated disk does not block.
#[cfg(not(madsim))]
async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// Runs blocking I/O off the async workers (tokio's blocking pool); inline
/// under madsim, whose simulated disk does not block.
#[cfg(madsim)]
async fn run_blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    work()
}
