//! An in-memory cluster of `RawNode`s for the Raft scenario and randomized
//! tests: a network with optional loss, duplication, delay (hence
//! reordering) and partitions; crashes that keep only what was persisted;
//! and a checker of the Raft safety properties run after every step.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use bytes::Bytes;
use keel_kernel::raft::*;
use std::collections::{BTreeMap, BTreeSet};

/// Network faults applied to every message sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Percent of messages lost.
    pub drop_pct: u64,
    /// Percent of messages delivered twice.
    pub dup_pct: u64,
    /// Maximum delivery delay in steps (random in `0..=max_delay`).
    pub max_delay: u64,
    /// Percent of Readys whose persistence is held back 1..=3 steps (a slow
    /// disk): immediate messages go out, the node keeps stepping messages,
    /// and a crash meanwhile loses the Ready.
    pub slow_persist_pct: u64,
}

/// One node: the Raft node (its storage is the persisted state) and a
/// model state machine summarised by a digest chain over applied entries.
pub struct TestNode {
    pub raw: RawNode<MemoryStorage>,
    pub applied_index: u64,
    pub digest: u64,
    /// Normal entries with data applied by this incarnation.
    pub applied: Vec<Entry>,
    pub read_states: Vec<ReadState>,
    pub last_commit: u64,
    /// A Ready whose persistence is in progress, and the step it completes.
    held: Option<(Ready, u64)>,
}

impl TestNode {
    pub fn raft(&self) -> &Raft<MemoryStorage> {
        self.raw.raft()
    }
}

fn mix(digest: u64, term: u64, data: &[u8]) -> u64 {
    let mut h = digest ^ 0x9e37_79b9_7f4a_7c15 ^ term.rotate_left(17);
    for b in data {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    h.rotate_left(5).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Properties checked after every step, across the whole run.
#[derive(Default)]
pub struct Checker {
    /// Leader seen for each term (election safety).
    leaders: BTreeMap<u64, NodeId>,
    /// Committed index -> (entry term, a term in which it was known committed).
    committed: BTreeMap<u64, (u64, u64)>,
    /// Applied index -> state machine digest (state machine safety).
    digests: BTreeMap<u64, u64>,
}

/// What a run exercised, so a randomized sweep can fail when its
/// generator stops reaching a fault path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Distinct terms in which some node became leader.
    pub elections: u64,
    /// Snapshots installed from a leader (Ready carried a snapshot).
    pub snapshot_installs: u64,
    /// `TimeoutNow` messages delivered: leader transfers that reached the
    /// transferee.
    pub transfers: u64,
    /// Ready rounds after which a node was in a joint configuration.
    pub joint_configs: u64,
    /// Partitions that left a leader with a minority (counted by the
    /// test that makes them).
    pub isolated_leaders: u64,
}

impl Coverage {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Coverage) {
        self.elections += other.elections;
        self.snapshot_installs += other.snapshot_installs;
        self.transfers += other.transfers;
        self.joint_configs += other.joint_configs;
        self.isolated_leaders += other.isolated_leaders;
    }
}

pub struct Cluster {
    pub nodes: BTreeMap<NodeId, TestNode>,
    /// Persisted storage of crashed nodes.
    pub down: BTreeMap<NodeId, MemoryStorage>,
    net: BTreeMap<(u64, u64), Message>,
    pub now: u64,
    /// Directed links that drop everything.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub faults: Faults,
    pub rng: SplitMix64,
    pub make_config: fn(NodeId) -> Config,
    pub checker: Checker,
    /// Snapshot and compact every this many applied entries (0 = never).
    pub snapshot_every: u64,
    /// ReadIndex requests by context: the highest commit index any node
    /// knew when the read was requested (a linearizable read must not
    /// return an earlier read index).
    reads: BTreeMap<Bytes, u64>,
    seq: u64,
    /// What this run exercised so far.
    pub coverage: Coverage,
    /// Terms in which a leader was seen (for `coverage.elections`).
    leader_terms: BTreeSet<u64>,
}

pub fn default_config(id: NodeId) -> Config {
    let mut c = Config::new(id);
    c.election_tick = 10;
    c.heartbeat_tick = 1;
    c.max_size_per_msg_bytes = 4096;
    c.max_inflight_msgs = 16;
    c
}

impl Cluster {
    /// A cluster whose voters are `voters`, with extra `learners`.
    pub fn new(voters: &[NodeId], seed: u64, make_config: fn(NodeId) -> Config) -> Cluster {
        Self::with_members(voters, &[], seed, make_config)
    }

    pub fn with_members(
        voters: &[NodeId],
        learners: &[NodeId],
        seed: u64,
        make_config: fn(NodeId) -> Config,
    ) -> Cluster {
        let mut cluster = Cluster {
            nodes: BTreeMap::new(),
            down: BTreeMap::new(),
            net: BTreeMap::new(),
            now: 0,
            cut: BTreeSet::new(),
            faults: Faults::default(),
            rng: SplitMix64::new(seed),
            make_config,
            checker: Checker::default(),
            snapshot_every: 0,
            reads: BTreeMap::new(),
            seq: 0,
            coverage: Coverage::default(),
            leader_terms: BTreeSet::new(),
        };
        let cs = ConfState {
            voters: voters.to_vec(),
            learners: learners.to_vec(),
            ..ConfState::default()
        };
        for id in voters.iter().chain(learners) {
            let mut storage = MemoryStorage::new();
            storage.set_conf_state(cs.clone());
            cluster.start(*id, storage, seed);
        }
        cluster
    }

    /// Starts a node that is not yet a member, knowing the initial
    /// configuration `initial` (as etcd's `--initial-cluster`); it is added
    /// by a conf change and learns later changes by replaying the log.
    pub fn add_joining_node(&mut self, id: NodeId, initial: &[NodeId]) {
        let seed = self.rng.next_u64();
        let mut storage = MemoryStorage::new();
        storage.set_conf_state(ConfState {
            voters: initial.to_vec(),
            ..ConfState::default()
        });
        self.start(id, storage, seed);
    }

    /// One network hop: delivers the messages due now, then handles Ready.
    pub fn hop(&mut self) {
        self.now += 1;
        self.deliver_due();
        self.process_all();
    }

    fn start(&mut self, id: NodeId, storage: MemoryStorage, seed: u64) {
        let snap = storage.snapshot().unwrap();
        let mut config = (self.make_config)(id);
        config.seed = seed ^ id;
        config.applied = snap.metadata.index;
        let raw = RawNode::new(&config, storage).unwrap();
        let digest = decode_digest(&snap.data);
        let last_commit = raw.raft().log.committed();
        let node = TestNode {
            raw,
            applied_index: snap.metadata.index,
            digest,
            applied: Vec::new(),
            read_states: Vec::new(),
            last_commit,
            held: None,
        };
        self.nodes.insert(id, node);
    }

    pub fn node(&self, id: NodeId) -> &TestNode {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut TestNode {
        self.nodes.get_mut(&id).unwrap()
    }

    /// Crashes `id`: everything not persisted is lost.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.remove(&id) {
            self.down.insert(id, node.raw.storage().clone());
        }
    }

    /// Crashes `id` in the middle of handling a Ready: the messages that
    /// may go before persistence are sent, nothing is persisted.
    pub fn crash_before_persist(&mut self, id: NodeId) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        if node.held.is_none() && node.raw.has_ready() {
            let rd = node.raw.ready();
            self.send(rd.messages);
        }
        self.crash(id);
    }

    /// Restarts a crashed node from its persisted storage.
    pub fn restart(&mut self, id: NodeId) {
        if let Some(storage) = self.down.remove(&id) {
            let seed = self.rng.next_u64();
            self.start(id, storage, seed);
        }
    }

    /// The leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.raw.is_leader())
            .max_by_key(|(_, n)| n.raft().term)
            .map(|(id, _)| *id)
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut_link(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a, b));
        self.cut.insert((b, a));
    }

    /// Splits the nodes into `group` and everybody else.
    pub fn partition(&mut self, group: &[NodeId]) {
        let all: Vec<NodeId> = self.all_ids();
        for a in group {
            for b in &all {
                if !group.contains(b) {
                    self.cut_link(*a, *b);
                }
            }
        }
    }

    pub fn all_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().chain(self.down.keys()).copied().collect()
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    fn send(&mut self, msgs: Vec<Message>) {
        for m in msgs {
            if self.faults.drop_pct > 0 && self.rng.range(0, 100) < self.faults.drop_pct {
                self.report_drop(&m);
                continue;
            }
            let copies = if self.rng.range(0, 100) < self.faults.dup_pct {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let delay = self.rng.range(0, self.faults.max_delay + 1);
                self.seq += 1;
                let order = if self.faults.max_delay > 0 {
                    self.rng.next_u64()
                } else {
                    self.seq
                };
                self.net.insert((self.now + delay, order), m.clone());
            }
        }
    }

    fn report_drop(&mut self, m: &Message) {
        if m.msg_type == MessageType::Snapshot
            && let Some(n) = self.nodes.get_mut(&m.from)
        {
            n.raw.report_snapshot(m.to, false);
        }
    }

    /// Delivers due messages to `id` only, without handling its Ready.
    pub fn deliver_due_unprocessed(&mut self, id: NodeId) {
        let due: Vec<(u64, u64)> = self
            .net
            .range(..(self.now + 1, 0))
            .filter(|(_, m)| m.to == id)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let Some(m) = self.net.remove(&key) else {
                continue;
            };
            if self.cut.contains(&(m.from, m.to)) {
                self.report_drop(&m);
                continue;
            }
            let (from, is_snapshot) = (m.from, m.msg_type == MessageType::Snapshot);
            if let Some(n) = self.nodes.get_mut(&id) {
                step_checked(&mut n.raw, m);
            }
            if let Some(n) = self.nodes.get_mut(&from).filter(|_| is_snapshot) {
                n.raw.report_snapshot(id, true);
            }
        }
    }

    /// Delivers every message due by now; returns how many were delivered.
    pub fn deliver_due(&mut self) -> usize {
        let due: Vec<(u64, u64)> = self
            .net
            .range(..(self.now + 1, 0))
            .map(|(k, _)| *k)
            .collect();
        let mut delivered = 0;
        for key in due {
            let Some(m) = self.net.remove(&key) else {
                continue;
            };
            if self.cut.contains(&(m.from, m.to)) || !self.nodes.contains_key(&m.to) {
                self.report_drop(&m);
                if let Some(n) = self.nodes.get_mut(&m.from) {
                    n.raw.report_unreachable(m.to);
                }
                continue;
            }
            // Every message crosses the wire format.
            let m = Message::decode(&m.encode()).unwrap();
            let (from, to, is_snapshot) = (m.from, m.to, m.msg_type == MessageType::Snapshot);
            if m.msg_type == MessageType::TimeoutNow {
                self.coverage.transfers += 1;
            }
            step_checked(&mut self.node_mut(to).raw, m);
            self.process(to);
            if is_snapshot {
                // The transport reports a delivered snapshot (etcd ReportSnapshot).
                if let Some(n) = self.nodes.get_mut(&from) {
                    n.raw.report_snapshot(to, true);
                }
            }
            delivered += 1;
        }
        delivered
    }

    /// Handles Ready for every node until none has work.
    pub fn process_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            self.process(id);
        }
    }

    /// Handles `id`'s Ready repeatedly (bounded) until it has none.
    pub fn process(&mut self, id: NodeId) {
        for _ in 0..64 {
            let Some(node) = self.nodes.get_mut(&id) else {
                return;
            };
            if let Some((rd, done_at)) = node.held.take() {
                if self.now < done_at {
                    node.held = Some((rd, done_at));
                    return;
                }
                self.persist_and_apply(id, rd);
                continue;
            }
            if !node.raw.has_ready() {
                return;
            }
            let rd = node.raw.ready();
            self.send(rd.messages.clone());
            if self.rng.range(0, 100) < self.faults.slow_persist_pct {
                let done_at = self.now + self.rng.range(1, 4);
                self.node_mut(id).held = Some((rd, done_at));
                return;
            }
            self.persist_and_apply(id, rd);
        }
    }

    fn persist_and_apply(&mut self, id: NodeId, rd: Ready) {
        let node = self.nodes.get_mut(&id).unwrap();
        let store = node.raw.storage_mut();
        if let Some(snap) = &rd.snapshot {
            store.apply_snapshot(snap.clone()).unwrap();
        }
        store.append(&rd.entries).unwrap();
        if let Some(hs) = rd.hard_state {
            store.set_hard_state(hs);
        }
        if let Some(snap) = &rd.snapshot {
            self.coverage.snapshot_installs += 1;
            node.applied_index = snap.metadata.index;
            node.digest = decode_digest(&snap.data);
            let seen = self.checker.digests.get(&snap.metadata.index);
            assert!(
                seen.is_none_or(|d| *d == node.digest),
                "node {id} installed a snapshot at {} that differs from applied state",
                snap.metadata.index
            );
        }
        for e in &rd.committed_entries {
            apply_entry(&mut self.checker, id, node, e);
        }
        for rs in &rd.read_states {
            let must_see = self.reads.get(&rs.request_ctx).copied().unwrap_or(0);
            assert!(
                rs.index >= must_see,
                "stale read on node {id}: read index {} but {must_see} was committed before the read",
                rs.index
            );
        }
        node.read_states.extend(rd.read_states);
        node.raw.advance();
        let raft = node.raw.raft();
        if !raft.conf_state().voters_outgoing.is_empty() {
            self.coverage.joint_configs += 1;
        }
        if node.raw.is_leader() && self.leader_terms.insert(raft.term) {
            self.coverage.elections += 1;
        }
        self.maybe_snapshot(id);
        self.send(rd.persisted_messages);
    }

    fn maybe_snapshot(&mut self, id: NodeId) {
        if self.snapshot_every == 0 {
            return;
        }
        let node = self.nodes.get_mut(&id).unwrap();
        let applied = node.applied_index;
        let snap_index = node.raw.storage().snapshot().unwrap().metadata.index;
        if applied < snap_index + self.snapshot_every {
            return;
        }
        let cs = node.raw.raft().conf_state();
        let data = Bytes::copy_from_slice(&node.digest.to_le_bytes());
        let store = node.raw.storage_mut();
        store.create_snapshot(applied, cs, data).unwrap();
        store.compact(applied).unwrap();
    }

    /// One time step: tick every node, deliver due messages, handle Ready.
    pub fn step(&mut self) {
        self.now += 1;
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in &ids {
            self.node_mut(*id).raw.tick();
        }
        self.process_all();
        self.deliver_due();
        self.process_all();
    }

    /// Delivers messages (no ticks) until the network is empty (bounded).
    pub fn settle(&mut self) {
        self.process_all();
        for _ in 0..10_000 {
            if self.net.is_empty() {
                return;
            }
            self.now += 1;
            self.deliver_due();
            self.process_all();
        }
        panic!("network did not settle");
    }

    /// Ticks every node `n` times, settling the network after each.
    pub fn tick_settle(&mut self, n: usize) {
        for _ in 0..n {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                self.node_mut(id).raw.tick();
            }
            self.settle();
        }
    }

    /// Starts a ReadIndex read on `id`, remembering what it must observe.
    pub fn read_index(&mut self, id: NodeId, ctx: Bytes) -> Result<(), RaftError> {
        let known_commit = self.nodes.values().map(|n| n.raft().log.committed()).max();
        self.reads.insert(ctx.clone(), known_commit.unwrap_or(0));
        self.node_mut(id).raw.read_index(ctx)
    }

    /// Makes `id` campaign and settles; returns whether it became leader.
    pub fn elect(&mut self, id: NodeId) -> bool {
        self.node_mut(id).raw.campaign();
        self.settle();
        self.node(id).raw.is_leader()
    }

    pub fn propose(&mut self, id: NodeId, data: &'static [u8]) -> Result<(), RaftError> {
        let r = self.node_mut(id).raw.propose(Bytes::from_static(data));
        self.process(id);
        r
    }

    /// Data of the normal entries `id` applied (this incarnation).
    pub fn applied_data(&self, id: NodeId) -> Vec<Bytes> {
        self.node(id)
            .applied
            .iter()
            .map(|e| e.data.clone())
            .collect()
    }

    /// Runs the safety checks; `Err` describes the first violation.
    pub fn check(&mut self) -> Result<(), String> {
        let checker = &mut self.checker;
        for (id, node) in self.nodes.iter_mut() {
            node.raw
                .check_invariants()
                .map_err(|e| format!("node {id}: {e}"))?;
            let raft = node.raw.raft();
            if raft.role == StateRole::Leader {
                let prev = checker.leaders.entry(raft.term).or_insert(*id);
                if *prev != *id {
                    return Err(format!(
                        "two leaders in term {}: {prev} and {id}",
                        raft.term
                    ));
                }
            }
            let commit = raft.log.committed();
            let prev = node.last_commit;
            if commit < prev {
                return Err(format!("node {id} commit went back {prev} -> {commit}"));
            }
            node.last_commit = commit;
            if commit > raft.log.last_index() {
                return Err(format!("node {id} commit {commit} beyond last index"));
            }
            for index in raft.log.first_index().max(prev)..=commit {
                let Ok(term) = raft.log.term(index) else {
                    continue;
                };
                let known = checker.committed.entry(index).or_insert((term, raft.term));
                if known.0 != term {
                    return Err(format!(
                        "node {id} committed term {term} at {index}, another node term {}",
                        known.0
                    ));
                }
            }
        }
        check_log_matching(&self.nodes)?;
        check_leader_completeness(&self.nodes, &self.checker)
    }
}

fn decode_digest(data: &[u8]) -> u64 {
    data.try_into().map(u64::from_le_bytes).unwrap_or(0)
}

fn apply_entry(checker: &mut Checker, id: NodeId, node: &mut TestNode, e: &Entry) {
    assert_eq!(
        e.index,
        node.applied_index + 1,
        "node {id} applied out of order"
    );
    node.applied_index = e.index;
    node.digest = mix(node.digest, e.term, &e.data);
    let seen = *checker.digests.entry(e.index).or_insert(node.digest);
    assert_eq!(
        seen, node.digest,
        "node {id} applied a different entry at index {}",
        e.index
    );
    match e.entry_type {
        EntryType::Normal if !e.data.is_empty() => node.applied.push(e.clone()),
        EntryType::Normal => {}
        EntryType::ConfChange => {
            let cc = ConfChange::decode(&e.data).unwrap();
            if let Ok(cs) = node.raw.apply_conf_change(&cc) {
                node.raw.storage_mut().set_conf_state(cs);
            }
        }
    }
}

/// Log matching (Raft paper §5.3): if two logs have an entry with the same
/// index and term, they are identical up to it.
fn check_log_matching(nodes: &BTreeMap<NodeId, TestNode>) -> Result<(), String> {
    let ids: Vec<&NodeId> = nodes.keys().collect();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            let (la, lb) = (&nodes[a].raft().log, &nodes[b].raft().log);
            let low = la.first_index().max(lb.first_index());
            let high = la.last_index().min(lb.last_index());
            let mut matched_from = None;
            for index in (low..=high).rev() {
                let (ta, tb) = (la.term(index).ok(), lb.term(index).ok());
                match matched_from {
                    None if ta == tb && ta.is_some() => matched_from = Some(index),
                    Some(m) if ta != tb => {
                        return Err(format!(
                            "log matching: nodes {a} and {b} agree at {m} but differ at {index}"
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// Leader completeness (§5.4): a leader of a term later than the one in
/// which an entry was known committed has that entry.
fn check_leader_completeness(
    nodes: &BTreeMap<NodeId, TestNode>,
    checker: &Checker,
) -> Result<(), String> {
    for (id, node) in nodes {
        let raft = node.raft();
        if raft.role != StateRole::Leader {
            continue;
        }
        for (index, (term, known_in)) in checker.committed.range(raft.log.first_index()..) {
            if raft.term > *known_in && raft.log.term(*index).ok() != Some(*term) {
                return Err(format!(
                    "leader {id} of term {} lacks entry {index} (term {term}) committed by term {known_in}",
                    raft.term
                ));
            }
        }
    }
    Ok(())
}

/// Steps `m`; other step errors are Raft's normal refusals, but the model's
/// storage never loses an acknowledged entry, so a
/// [`RaftError::LogLost`] is a bug in the kernel.
fn step_checked(raw: &mut RawNode<MemoryStorage>, m: Message) {
    if let Err(err @ RaftError::LogLost { .. }) = raw.step(m) {
        panic!("{err}");
    }
}
