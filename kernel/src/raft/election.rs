//! Leader election (Raft paper §5.2): campaigns with randomized timeouts,
//! pre-vote (thesis §9.6), vote counting, and answering vote requests with
//! the up-to-date check of §5.4.1.

use super::message::{Message, MessageType};
use super::quorum::VoteResult;
use super::raft::{CAMPAIGN_TRANSFER, CampaignKind, Raft, StateRole};
use super::storage::Storage;
use super::{EntryType, NO_NODE, NodeId};
use bytes::Bytes;

impl<S: Storage> Raft<S> {
    /// Starts an election now if this node may (etcd `MsgHup`).
    pub fn hup(&mut self, transfer: bool) {
        if self.role == StateRole::Leader || !self.promotable() {
            return;
        }
        if self.has_unapplied_conf_change() {
            return;
        }
        let kind = match (transfer, self.config.pre_vote) {
            (true, _) => CampaignKind::Transfer,
            (false, true) => CampaignKind::PreElection,
            (false, false) => CampaignKind::Election,
        };
        self.campaign(kind);
    }

    /// Whether a committed conf change waits to be applied (a node must
    /// not campaign then: its configuration may be stale).
    pub(crate) fn has_unapplied_conf_change(&self) -> bool {
        const CHUNK_BYTES: u64 = 1 << 20;
        let (mut low, high) = (self.log.applied + 1, self.log.committed + 1);
        // Bounded: every chunk holds at least one entry, so `low` advances.
        while low < high {
            let Ok(chunk) = self.log.slice(low, high, CHUNK_BYTES) else {
                return true;
            };
            if chunk.iter().any(|e| e.entry_type == EntryType::ConfChange) {
                return true;
            }
            match chunk.last() {
                Some(last) => low = last.index + 1,
                None => return false,
            }
        }
        false
    }

    pub(crate) fn campaign(&mut self, kind: CampaignKind) {
        let (msg_type, term) = if kind == CampaignKind::PreElection {
            self.become_pre_candidate();
            (MessageType::RequestPreVote, self.term + 1)
        } else {
            self.become_candidate();
            (MessageType::RequestVote, self.term)
        };
        if self.poll(self.id, true) == VoteResult::Won {
            self.on_election_won();
            return;
        }
        let context = if kind == CampaignKind::Transfer {
            Bytes::from_static(CAMPAIGN_TRANSFER)
        } else {
            Bytes::new()
        };
        let (index, log_term) = (self.log.last_index(), self.log.last_term());
        for id in self.tracker.config.voters.ids() {
            if id == self.id {
                continue;
            }
            let mut m = Message::new(msg_type, self.id, id, term);
            m.index = index;
            m.log_term = log_term;
            m.context = context.clone();
            self.msgs.push(m);
        }
    }

    pub(crate) fn poll(&mut self, from: NodeId, granted: bool) -> VoteResult {
        self.tracker.record_vote(from, granted);
        self.tracker.tally_votes()
    }

    pub(crate) fn on_election_won(&mut self) {
        if self.role == StateRole::PreCandidate {
            self.campaign(CampaignKind::Election);
        } else {
            self.become_leader();
        }
    }

    pub(crate) fn handle_vote_request(&mut self, m: &Message) {
        let pre = m.msg_type == MessageType::RequestPreVote;
        let resp_type = if pre {
            MessageType::RequestPreVoteResponse
        } else {
            MessageType::RequestVoteResponse
        };
        let can_vote = self.vote == m.from
            || (self.vote == NO_NODE && self.leader_id == NO_NODE)
            || (pre && m.term > self.term);
        // Planted bug (off by default, for the simulator to find): the vote
        // is granted without Raft's log up-to-date check.
        let up_to_date = cfg!(feature = "planted-bug-vote-without-log-check")
            || self.log.is_up_to_date(m.index, m.log_term);
        if can_vote && up_to_date {
            self.msgs
                .push(Message::new(resp_type, self.id, m.from, m.term));
            if !pre {
                assert!(
                    self.vote == NO_NODE || self.vote == m.from,
                    "raft: vote for {} in term {} after voting for {}",
                    m.from,
                    self.term,
                    self.vote
                );
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            let mut resp = Message::new(resp_type, self.id, m.from, self.term);
            resp.reject = true;
            self.msgs.push(resp);
        }
    }
}
