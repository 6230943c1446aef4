//! What reaches the driver: commands from handles (proposals, reads,
//! membership changes, leadership transfers) and messages and events from
//! peers. A member that is not running answers commands with its mode's
//! refusal and drops what peers send, as a partition would.

use keel_kernel::raft::{Message, RaftError};
use keel_wal::Storage;

use super::{COMMANDS_PER_ROUND_MAX, Driver, INBOUND_PER_ROUND_MAX};
use crate::node::handle::Command;
use crate::node::mode::Refusal;
use crate::node::peers::PeerEvent;
use crate::replica::ServerError;
use crate::transport::Inbound;

impl<S: Storage> Driver<S> {
    /// Handles `first` and every command already queued behind it, up to
    /// [`COMMANDS_PER_ROUND_MAX`] (they share the next Ready: group commit).
    pub(super) fn on_commands(&mut self, first: Command) {
        self.on_command(first);
        for _ in 1..COMMANDS_PER_ROUND_MAX {
            match self.commands.try_recv() {
                Ok(command) => self.on_command(command),
                Err(_) => break,
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        if let Some(refusal) = self.mode.refusal() {
            refuse(&self.shared, command, refusal);
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

    /// The error for a proposal Raft dropped: no leader known, or one that
    /// did not take it.
    pub(super) fn no_leader_error(&self) -> ServerError {
        if self.leader_id == 0 {
            ServerError::NoLeader
        } else {
            ServerError::ProposalDropped
        }
    }

    /// Steps `first` and every peer item already queued behind it, up to
    /// [`INBOUND_PER_ROUND_MAX`].
    pub(super) fn on_inbound(&mut self, first: Inbound) {
        self.step_inbound(first);
        for _ in 1..INBOUND_PER_ROUND_MAX {
            match self.inbound.try_recv() {
                Ok(item) => self.step_inbound(item),
                Err(_) => break,
            }
        }
    }

    fn step_inbound(&mut self, item: Inbound) {
        if !self.mode.is_running() {
            return;
        }
        if let Inbound::Raft {
            from,
            sender_peer_url: Some(url),
            ..
        } = &item
            && !self.peers.knows(*from)
        {
            self.peers.add_remote(*from, url);
        }
        for message in decode_inbound(item) {
            match self.raw.step(message) {
                Ok(()) => {}
                Err(err @ RaftError::LogLost { .. }) => {
                    self.on_log_lost(&err);
                    return;
                }
                Err(err) => tracing::debug!(%err, "raft refused a peer message"),
            }
        }
    }

    pub(super) fn on_peer_event(&mut self, event: PeerEvent) {
        match event {
            PeerEvent::Unreachable(id) => self.raw.report_unreachable(id),
            PeerEvent::SnapshotSent(id, ok) => self.raw.report_snapshot(id, ok),
            PeerEvent::Removed(by) => {
                let how = format!("peer {by:x} refused its messages");
                self.learn_removed(&how);
            }
        }
    }
}

/// The Raft messages in a peer delivery; undecodable ones are dropped (the
/// sender retries as after a lost message). A snapshot message gets the
/// snapshot data that was streamed beside it.
fn decode_inbound(item: Inbound) -> Vec<Message> {
    match item {
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
    }
}

/// Answers a command without running it: `refusal.write` for proposals and
/// membership changes, `refusal.read` for reads.
fn refuse(shared: &crate::node::handle::Shared, command: Command, refusal: Refusal) {
    match command {
        Command::Propose { id, .. } => {
            shared.proposals().complete(id, Err(refusal.write));
        }
        Command::Read(reply) => {
            let _ = reply.send(Err(refusal.read));
        }
        Command::ConfChange { reply, .. } => {
            let _ = reply.send(Err(refusal.write));
        }
        // Its caller times out waiting for the new leader.
        Command::TransferLeader { .. } => {}
        Command::TransferOnShutdown(reply) => {
            let _ = reply.send(None);
        }
    }
}
