//! Log replication (Raft paper §5.3): the follower's AppendEntries,
//! heartbeat and InstallSnapshot handling, and the leader's proposals,
//! pipelined appends within the inflight window, snapshots for lagging
//! followers, conflict-hint back-off and commitment by quorum of
//! current-term entries (§5.4.2).

use super::confchange;
use super::config::ReadOnlyOption;
use super::message::{Message, MessageType};
use super::progress::ProgressState;
use super::quorum::VoteResult;
use super::raft::{Raft, StateRole};
use super::storage::Storage;
use super::{ConfChange, Entry, EntryType, NO_NODE, NodeId, RaftError};
use bytes::Bytes;

impl<S: Storage> Raft<S> {
    pub(crate) fn handle_append(&mut self, m: Message) -> Result<(), RaftError> {
        let mut resp = Message::new(MessageType::AppendResponse, self.id, m.from, self.term);
        if m.index < self.log.committed {
            resp.index = self.log.committed;
            self.msgs.push(resp);
            return Ok(());
        }
        if self
            .log
            .conflicts_with_committed(m.index, m.log_term, &m.entries)
        {
            // Only a faulty peer sends this (etcd panics); refuse it.
            return Err(RaftError::StepRejected(
                "append conflicts with committed entries",
            ));
        }
        match self
            .log
            .maybe_append(m.index, m.log_term, m.commit, m.entries)
        {
            Some(last_new) => resp.index = last_new,
            None => {
                let hint = m.index.min(self.log.last_index());
                let hint = self.log.find_conflict_by_term(hint, m.log_term);
                resp.reject = true;
                resp.index = m.index;
                resp.reject_hint = hint;
                resp.log_term = self.log.term(hint).unwrap_or(0);
            }
        }
        self.msgs.push(resp);
        Ok(())
    }

    /// A heartbeat's commit is the leader's match index for this member
    /// (capped by its commit index), so it never passes our last index
    /// unless our storage lost acknowledged entries: then
    /// [`RaftError::LogLost`], and no answer (the leader would otherwise
    /// keep taking this member for up to date, and it would never catch
    /// up).
    pub(crate) fn handle_heartbeat(&mut self, m: &Message) -> Result<(), RaftError> {
        let last_index = self.log.last_index();
        if m.commit > last_index {
            return Err(RaftError::LogLost {
                commit: m.commit,
                last_index,
            });
        }
        self.log.commit_to(m.commit);
        let mut resp = Message::new(MessageType::HeartbeatResponse, self.id, m.from, self.term);
        resp.context = m.context.clone();
        self.msgs.push(resp);
        Ok(())
    }

    pub(crate) fn handle_snapshot(&mut self, m: Message) {
        let mut resp = Message::new(MessageType::AppendResponse, self.id, m.from, self.term);
        let restored = m.snapshot.is_some_and(|snap| self.restore(snap));
        resp.index = if restored {
            self.log.last_index()
        } else {
            self.log.committed
        };
        self.msgs.push(resp);
    }

    /// Installs `snapshot` if it is ahead of the log; returns whether the
    /// log was replaced (the snapshot must then be persisted and applied).
    pub fn restore(&mut self, snapshot: super::Snapshot) -> bool {
        let meta = &snapshot.metadata;
        if meta.index <= self.log.committed {
            return false;
        }
        if self.log.match_term(meta.index, meta.term) {
            self.log.commit_to(meta.index);
            return false;
        }
        let Ok(config) = confchange::restore(&meta.conf_state) else {
            return false;
        };
        let next = meta.index + 1;
        self.log.restore(snapshot);
        self.tracker.apply_config(config, next);
        true
    }

    // ---- leader side of replication -------------------------------------

    /// Appends proposals to the leader's log and replicates them.
    /// Errors: `ProposalDropped` during a leader transfer or beyond the
    /// uncommitted-size limit; `ConfChangeRejected` for a conf change that
    /// cannot be accepted now; `NotLeader`/`ProposalDropped` on a non-leader
    /// that cannot forward.
    pub fn propose_entries(&mut self, mut entries: Vec<Entry>) -> Result<(), RaftError> {
        if self.role != StateRole::Leader {
            let mut m = Message::new(MessageType::Propose, self.id, NO_NODE, 0);
            m.entries = entries;
            return match self.role {
                StateRole::Follower => self.forward_to_leader(m),
                _ => Err(RaftError::ProposalDropped),
            };
        }
        if entries.is_empty() {
            return Ok(());
        }
        if self.lead_transferee != NO_NODE {
            return Err(RaftError::ProposalDropped);
        }
        self.check_conf_changes(&entries)?;
        let payload: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
        if self.uncommitted_size_bytes > 0
            && self.uncommitted_size_bytes + payload
                > self.config.max_uncommitted_entries_size_bytes
        {
            return Err(RaftError::ProposalDropped);
        }
        self.uncommitted_size_bytes += payload;
        let last = self.log.last_index();
        for (i, e) in entries.iter_mut().enumerate() {
            e.term = self.term;
            e.index = last + 1 + i as u64;
            if e.entry_type == EntryType::ConfChange {
                self.pending_conf_index = e.index;
            }
        }
        // A leader only appends: it never overwrites its own log (§5.3).
        assert_eq!(
            entries[0].index,
            last + 1,
            "raft: a leader appends right after its last index"
        );
        self.log.append(entries);
        self.bcast_append();
        Ok(())
    }

    pub(crate) fn check_conf_changes(&self, entries: &[Entry]) -> Result<(), RaftError> {
        let mut seen = false;
        for e in entries
            .iter()
            .filter(|e| e.entry_type == EntryType::ConfChange)
        {
            let cc = ConfChange::decode(&e.data)
                .map_err(|err| RaftError::ConfChangeRejected(err.to_string()))?;
            if seen || self.pending_conf_index > self.log.applied {
                return Err(RaftError::ConfChangeRejected(
                    "possible unapplied conf change".into(),
                ));
            }
            seen = true;
            let joint = self.tracker.config.voters.is_joint();
            if joint && !cc.is_leave_joint() {
                return Err(RaftError::ConfChangeRejected(
                    "must leave joint config first".into(),
                ));
            }
            if !joint && cc.is_leave_joint() {
                return Err(RaftError::ConfChangeRejected("not in joint config".into()));
            }
            confchange::apply(&self.tracker.config, &cc)?;
            self.check_promotions(&cc)?;
            self.check_active_quorum(&cc)?;
        }
        Ok(())
    }

    /// Called once entries up to the log's persisted index are durable: the
    /// leader counts its own copy only now (thesis §10.2.1 lets followers
    /// persist in parallel), which may commit.
    pub(crate) fn on_persisted(&mut self) {
        if self.role != StateRole::Leader {
            return;
        }
        let persisted = self.log.persisted;
        let updated = self
            .tracker
            .progress
            .get_mut(&self.id)
            .is_some_and(|pr| pr.maybe_update(persisted));
        if updated && self.maybe_commit() {
            self.bcast_append();
        }
    }

    /// Commits what a quorum has replicated, if it is from this term.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        let index = self.tracker.committed_index();
        if index == u64::MAX || !self.log.maybe_commit(index, self.term) {
            return false;
        }
        self.release_pending_read_index();
        true
    }

    pub(crate) fn bcast_append(&mut self) {
        let ids: Vec<NodeId> = self
            .tracker
            .progress
            .keys()
            .copied()
            .filter(|id| *id != self.id)
            .collect();
        for id in ids {
            self.send_append(id, true);
        }
    }

    /// Sends the next entries to `to` if its progress allows; returns
    /// whether a message was sent.
    pub(crate) fn send_append(&mut self, to: NodeId, send_if_empty: bool) -> bool {
        let Some(pr) = self.tracker.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let prev_index = pr.next_idx - 1;
        let prev_term = self.log.term(prev_index);
        let entries = self
            .log
            .entries(pr.next_idx, self.config.max_size_per_msg_bytes);
        let (Ok(log_term), Ok(entries)) = (prev_term, entries) else {
            return self.send_snapshot(to);
        };
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let Some(pr) = self.tracker.progress.get_mut(&to) else {
            return false;
        };
        if let Some(last) = entries.last()
            && pr.state == ProgressState::Replicate
        {
            let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
            pr.optimistic_update(last.index);
            pr.inflights.add(last.index, bytes);
        }
        if pr.state == ProgressState::Probe {
            pr.probe_sent = true;
        }
        let mut m = Message::new(MessageType::Append, self.id, to, self.term);
        m.index = prev_index;
        m.log_term = log_term;
        m.entries = entries;
        m.commit = self.log.committed;
        self.msgs.push(m);
        true
    }

    pub(crate) fn send_snapshot(&mut self, to: NodeId) -> bool {
        let Some(pr) = self.tracker.progress.get(&to) else {
            return false;
        };
        if !pr.recent_active {
            return false;
        }
        let snapshot = match self.log.snapshot() {
            Ok(s) if !s.is_empty() => s,
            _ => return false,
        };
        let index = snapshot.metadata.index;
        if let Some(pr) = self.tracker.progress.get_mut(&to) {
            pr.become_snapshot(index);
        }
        let mut m = Message::new(MessageType::Snapshot, self.id, to, self.term);
        m.snapshot = Some(snapshot);
        self.msgs.push(m);
        true
    }

    pub(crate) fn bcast_heartbeat(&mut self, ctx: Bytes) {
        let committed = self.log.committed;
        for (id, pr) in &self.tracker.progress {
            if *id == self.id {
                continue;
            }
            let mut m = Message::new(MessageType::Heartbeat, self.id, *id, self.term);
            m.commit = pr.matched.min(committed);
            m.context = ctx.clone();
            self.msgs.push(m);
        }
    }

    pub(crate) fn handle_append_response(&mut self, m: &Message) {
        let last_index = self.log.last_index();
        let Some(pr) = self.tracker.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        if m.index > last_index {
            return; // acknowledges entries this leader never sent
        }
        if m.reject {
            let hint = if m.log_term > 0 {
                self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            } else {
                m.reject_hint
            };
            if pr.maybe_decr_to(m.index, hint) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.send_append(m.from, true);
            }
            return;
        }
        let was_paused = pr.is_paused();
        if !pr.maybe_update(m.index) {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot if pr.matched + 1 >= self.log.first_index() => {
                pr.become_probe();
                pr.become_replicate();
            }
            ProgressState::Replicate => pr.inflights.free_le(m.index),
            ProgressState::Snapshot => {}
        }
        let matched = pr.matched;
        if self.maybe_commit() {
            self.bcast_append();
        } else if was_paused {
            self.send_append(m.from, true);
        }
        for _ in 0..=self.config.max_inflight_msgs {
            if !self.send_append(m.from, false) {
                break;
            }
        }
        if m.from == self.lead_transferee && matched == last_index {
            self.send_timeout_now(m.from);
        }
    }

    pub(crate) fn handle_heartbeat_response(&mut self, m: &Message) {
        let last_index = self.log.last_index();
        let Some(pr) = self.tracker.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        pr.probe_sent = false;
        if pr.state == ProgressState::Replicate && pr.inflights.full() {
            pr.inflights.free_first_one();
        }
        if pr.matched < last_index {
            self.send_append(m.from, true);
        }
        if self.config.read_only_option != ReadOnlyOption::Safe || m.context.is_empty() {
            return;
        }
        let voters = &self.tracker.config.voters;
        let Some(acks) = self.read_only.recv_ack(m.from, &m.context) else {
            return;
        };
        let votes = acks.iter().map(|id| (*id, true)).collect();
        if voters.vote_result(&votes) != VoteResult::Won {
            return;
        }
        for rs in self.read_only.advance(&m.context) {
            self.respond_read_index(rs.from, rs.index, rs.ctx);
        }
    }
}
