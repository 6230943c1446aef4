//! Scenario tests of the Raft core: one test per feature, on an in-memory
//! cluster with a fault-free, in-order network unless a test cuts links.

#![allow(missing_docs, clippy::unwrap_used)]

mod raft_support;

use bytes::Bytes;
use keel_kernel::raft::*;
use raft_support::{Cluster, default_config};

fn no_pre_vote(id: NodeId) -> Config {
    let mut c = default_config(id);
    c.pre_vote = false;
    c
}

fn three() -> Cluster {
    let mut c = Cluster::new(&[1, 2, 3], 1, default_config);
    assert!(c.elect(1));
    c
}

#[test]
fn single_node_elects_itself_and_commits() {
    let mut c = Cluster::new(&[1], 1, default_config);
    assert!(c.elect(1));
    c.propose(1, b"x").unwrap();
    c.settle();
    assert_eq!(c.applied_data(1), vec![Bytes::from_static(b"x")]);
    c.check().unwrap();
}

#[test]
fn election_replicates_a_noop_and_commits_proposals() {
    let mut c = three();
    for id in [1, 2, 3] {
        let raft = c.node(id).raft();
        assert_eq!((raft.term, raft.leader_id), (1, 1));
        assert_eq!(raft.log.committed(), 1, "the leader's no-op is committed");
    }
    c.propose(1, b"a").unwrap();
    c.propose(2, b"b").unwrap(); // forwarded to the leader
    c.tick_settle(1);
    for id in [1, 2, 3] {
        assert_eq!(
            c.applied_data(id),
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
    }
    c.check().unwrap();
}

#[test]
fn election_timeout_elects_a_leader_without_help() {
    let mut c = Cluster::new(&[1, 2, 3], 7, default_config);
    c.tick_settle(30);
    let leader = c.leader().expect("a leader after 3 election timeouts");
    assert!(c.nodes.values().all(|n| n.raft().leader_id == leader));
    c.check().unwrap();
}

#[test]
fn split_vote_then_a_later_election_succeeds() {
    let mut c = Cluster::new(&[1, 2, 3, 4], 3, no_pre_vote);
    c.cut_link(1, 4);
    c.cut_link(2, 3);
    c.node_mut(1).raw.campaign();
    c.node_mut(2).raw.campaign();
    c.settle();
    assert_eq!(c.leader(), None, "2 of 4 votes each: no quorum");
    assert_eq!(c.node(1).raft().role, StateRole::Candidate);
    c.heal();
    c.tick_settle(40);
    assert!(c.leader().is_some());
    c.check().unwrap();
}

#[test]
fn partitioned_leader_steps_down_and_stale_leader_rejoins() {
    let mut c = three();
    c.partition(&[1]);
    c.propose(1, b"lost").unwrap();
    c.tick_settle(30);
    assert_eq!(
        c.node(1).raft().role,
        StateRole::Follower,
        "check-quorum stepped it down"
    );
    let new_leader = c.leader().unwrap();
    assert_ne!(new_leader, 1);
    c.propose(new_leader, b"kept").unwrap();
    c.settle();
    c.heal();
    c.tick_settle(5);
    assert_eq!(c.leader(), Some(new_leader));
    for id in [1, 2, 3] {
        assert_eq!(
            c.applied_data(id),
            vec![Bytes::from_static(b"kept")],
            "node {id}"
        );
        assert_eq!(
            c.node(id).raft().log.last_index(),
            c.node(new_leader).raft().log.last_index()
        );
    }
    c.check().unwrap();
}

#[test]
fn divergent_follower_log_is_repaired() {
    // Without check-quorum the isolated leader keeps leading and appending.
    fn cfg(id: NodeId) -> Config {
        let mut c = default_config(id);
        c.check_quorum = false;
        c.pre_vote = false;
        c
    }
    let mut c = Cluster::new(&[1, 2, 3], 5, cfg);
    assert!(c.elect(1));
    c.partition(&[1]);
    for _ in 0..20 {
        c.propose(1, b"stale").unwrap();
    }
    c.settle();
    assert!(c.elect(2));
    c.propose(2, b"fresh").unwrap();
    c.settle();
    assert_eq!(c.node(1).raft().log.last_index(), 21);
    c.heal();
    c.tick_settle(3);
    assert_eq!(c.leader(), Some(2));
    let leader_last = c.node(2).raft().log.last_index();
    assert_eq!(
        c.node(1).raft().log.last_index(),
        leader_last,
        "stale suffix truncated"
    );
    assert_eq!(c.applied_data(1), vec![Bytes::from_static(b"fresh")]);
    c.check().unwrap();
}

#[test]
fn pre_vote_keeps_an_isolated_node_from_raising_its_term() {
    let mut c = three();
    c.partition(&[3]);
    c.tick_settle(50);
    assert_eq!(c.node(3).raft().term, 1, "pre-votes fail, term unchanged");
    c.heal();
    c.tick_settle(5);
    assert_eq!(c.leader(), Some(1));
    assert_eq!(c.node(1).raft().term, 1, "the leader was not disrupted");
}

#[test]
fn votes_are_refused_while_the_leader_lease_holds() {
    // Node 3 runs without pre-vote and campaigns at a higher term; the
    // followers still hear from leader 1 and ignore it (check-quorum lease).
    let mut c = Cluster::new(&[1, 2, 3], 2, |id| {
        let mut cfg = default_config(id);
        cfg.pre_vote = id != 3;
        cfg
    });
    assert!(c.elect(1));
    c.node_mut(3).raw.campaign();
    c.settle();
    assert_eq!(c.node(2).raft().term, 1, "vote request ignored in lease");
    assert!(c.node(1).raw.is_leader());
    c.check().unwrap();
}

#[test]
fn check_quorum_leader_steps_down_without_a_quorum() {
    let mut c = three();
    c.crash(2);
    c.crash(3);
    c.tick_settle(21);
    assert_eq!(c.node(1).raft().role, StateRole::Follower);
}

#[test]
fn leader_transfer_to_an_up_to_date_follower() {
    let mut c = three();
    c.propose(1, b"a").unwrap();
    c.settle();
    c.node_mut(1).raw.transfer_leader(2);
    c.settle();
    assert_eq!(c.leader(), Some(2));
    assert_eq!(c.node(2).raft().term, 2);
    c.propose(2, b"b").unwrap();
    c.tick_settle(1);
    assert_eq!(c.applied_data(3).len(), 2);
    c.check().unwrap();
}

#[test]
fn leader_transfer_catches_up_a_lagging_follower_first() {
    let mut c = three();
    c.partition(&[3]);
    c.propose(1, b"a").unwrap();
    c.settle();
    c.heal();
    c.node_mut(1).raw.transfer_leader(3);
    assert!(
        c.node_mut(1).raw.propose(Bytes::from_static(b"x")).is_err(),
        "dropped in transfer"
    );
    c.tick_settle(2);
    assert_eq!(c.leader(), Some(3));
    c.check().unwrap();
}

#[test]
fn read_index_is_confirmed_by_a_heartbeat_round() {
    let mut c = three();
    c.propose(1, b"a").unwrap();
    c.settle();
    c.node_mut(1)
        .raw
        .read_index(Bytes::from_static(b"r1"))
        .unwrap();
    c.node_mut(2)
        .raw
        .read_index(Bytes::from_static(b"r2"))
        .unwrap();
    c.settle();
    let commit = c.node(1).raft().log.committed();
    let rs1 = &c.node(1).read_states;
    let rs2 = &c.node(2).read_states;
    assert_eq!(
        rs1,
        &vec![ReadState {
            index: commit,
            request_ctx: "r1".into()
        }]
    );
    assert_eq!(
        rs2,
        &vec![ReadState {
            index: commit,
            request_ctx: "r2".into()
        }]
    );
}

#[test]
fn read_index_during_leadership_change_is_not_served_by_the_old_leader() {
    let mut c = three();
    c.partition(&[1]);
    c.node_mut(1)
        .raw
        .read_index(Bytes::from_static(b"old"))
        .unwrap();
    c.settle();
    assert!(c.node(1).read_states.is_empty(), "no quorum acknowledged");
    c.tick_settle(30);
    assert!(!c.node(1).raw.is_leader(), "check-quorum stepped it down");
    let leader = c.leader().unwrap();
    c.propose(leader, b"w").unwrap();
    c.settle();
    c.node_mut(leader)
        .raw
        .read_index(Bytes::from_static(b"new"))
        .unwrap();
    c.settle();
    let commit = c.node(leader).raft().log.committed();
    let expected = vec![ReadState {
        index: commit,
        request_ctx: "new".into(),
    }];
    assert_eq!(c.node(leader).read_states, expected);
    c.heal();
    c.tick_settle(3);
    assert!(
        c.node(1).read_states.is_empty(),
        "the stale request died with the leadership"
    );
    assert_eq!(c.node(1).raft().leader_id, leader);
}

#[test]
fn read_index_waits_for_the_new_leaders_first_commit() {
    fn cfg(id: NodeId) -> Config {
        let mut c = no_pre_vote(id);
        c.check_quorum = false;
        c
    }
    let mut c = Cluster::new(&[1, 2, 3], 1, cfg);
    assert!(c.elect(1));
    c.node_mut(2).raw.campaign();
    c.process(2);
    c.hop(); // vote requests arrive, responses are sent
    c.cut.insert((2, 1)); // one-way: node 2 hears the votes but its appends are lost
    c.cut.insert((2, 3));
    c.hop(); // node 2 wins; its no-op cannot be replicated
    assert!(c.node(2).raw.is_leader());
    c.node_mut(2)
        .raw
        .read_index(Bytes::from_static(b"r"))
        .unwrap();
    c.settle();
    assert!(
        c.node(2).read_states.is_empty(),
        "no commit in this term yet"
    );
    c.heal();
    c.tick_settle(2);
    assert_eq!(c.node(2).read_states.len(), 1);
    assert_eq!(
        c.node(2).read_states[0].index,
        c.node(2).raft().log.committed()
    );
}

#[test]
fn lease_based_reads_answer_at_once() {
    let mut c = Cluster::new(&[1, 2, 3], 1, |id| {
        let mut cfg = default_config(id);
        cfg.read_only_option = ReadOnlyOption::LeaseBased;
        cfg
    });
    assert!(c.elect(1));
    c.node_mut(1)
        .raw
        .read_index(Bytes::from_static(b"r"))
        .unwrap();
    c.process(1);
    assert_eq!(c.node(1).read_states.len(), 1);
}

#[test]
fn membership_add_learner_promote_and_remove() {
    let mut c = three();
    c.add_joining_node(4, &[1, 2, 3]);
    let add_learner = ConfChange {
        changes: vec![ConfChangeSingle {
            change_type: ConfChangeType::AddLearnerNode,
            node_id: 4,
        }],
        context: Bytes::new(),
    };
    c.node_mut(1).raw.propose_conf_change(&add_learner).unwrap();
    c.process(1);
    c.tick_settle(3);
    assert_eq!(c.node(1).raft().conf_state().learners, vec![4]);
    c.propose(1, b"a").unwrap();
    c.tick_settle(2);
    assert_eq!(
        c.applied_data(4),
        vec![Bytes::from_static(b"a")],
        "learner receives the log"
    );
    let promote = ConfChange {
        changes: vec![ConfChangeSingle {
            change_type: ConfChangeType::AddNode,
            node_id: 4,
        }],
        context: Bytes::new(),
    };
    c.node_mut(1).raw.propose_conf_change(&promote).unwrap();
    // A second change before the first is applied is refused.
    let again = c.node_mut(1).raw.propose_conf_change(&promote);
    assert!(matches!(again, Err(RaftError::ConfChangeRejected(_))));
    c.tick_settle(3);
    assert_eq!(c.node(4).raft().conf_state().voters, vec![1, 2, 3, 4]);
    let remove_leader = ConfChange {
        changes: vec![ConfChangeSingle {
            change_type: ConfChangeType::RemoveNode,
            node_id: 1,
        }],
        context: Bytes::new(),
    };
    c.node_mut(1)
        .raw
        .propose_conf_change(&remove_leader)
        .unwrap();
    c.tick_settle(3);
    assert!(!c.node(1).raw.is_leader(), "a removed leader steps down");
    c.crash(1);
    c.tick_settle(40);
    let leader = c.leader().unwrap();
    assert_ne!(leader, 1);
    assert_eq!(c.node(leader).raft().conf_state().voters, vec![2, 3, 4]);
    c.check().unwrap();
}

#[test]
fn joint_consensus_change_is_left_automatically() {
    let mut c = three();
    c.add_joining_node(4, &[1, 2, 3]);
    c.add_joining_node(5, &[1, 2, 3]);
    let cc = ConfChange {
        changes: vec![
            ConfChangeSingle {
                change_type: ConfChangeType::AddNode,
                node_id: 4,
            },
            ConfChangeSingle {
                change_type: ConfChangeType::AddNode,
                node_id: 5,
            },
            ConfChangeSingle {
                change_type: ConfChangeType::RemoveNode,
                node_id: 3,
            },
        ],
        context: Bytes::new(),
    };
    c.node_mut(1).raw.propose_conf_change(&cc).unwrap();
    c.tick_settle(5);
    let cs = c.node(1).raft().conf_state();
    assert_eq!(cs.voters, vec![1, 2, 4, 5]);
    assert!(cs.voters_outgoing.is_empty(), "joint config left: {cs:?}");
    c.propose(1, b"after").unwrap();
    c.tick_settle(2);
    assert_eq!(c.applied_data(5), vec![Bytes::from_static(b"after")]);
    c.check().unwrap();
}

#[test]
fn snapshot_catch_up_after_compaction() {
    let mut c = three();
    c.snapshot_every = 5;
    c.crash(3);
    for _ in 0..30 {
        c.propose(1, b"e").unwrap();
    }
    c.tick_settle(2);
    assert!(
        c.node(1).raw.storage().first_index().unwrap() > 2,
        "leader compacted"
    );
    c.restart(3);
    c.tick_settle(5);
    let (l, f) = (
        c.node(1).raft().log.committed(),
        c.node(3).raft().log.committed(),
    );
    assert_eq!(l, f);
    assert_eq!(c.node(3).applied_index, c.node(1).applied_index);
    assert_eq!(
        c.node(3).digest,
        c.node(1).digest,
        "same state machine via snapshot"
    );
    c.check().unwrap();
}

#[test]
fn restart_keeps_term_vote_and_log() {
    let mut c = three();
    c.propose(1, b"a").unwrap();
    c.settle();
    let before = c.node(2).raft().hard_state();
    c.crash(2);
    c.restart(2);
    let raft = c.node(2).raft();
    assert_eq!(raft.hard_state(), before);
    assert_eq!(raft.log.last_index(), 2);
    c.tick_settle(2);
    assert_eq!(
        c.applied_data(2),
        vec![Bytes::from_static(b"a")],
        "re-applied after restart"
    );
}

#[test]
fn ready_splits_messages_by_persistence() {
    let mut c = three();
    let leader = &mut c.node_mut(1).raw;
    leader.propose(Bytes::from_static(b"a")).unwrap();
    let rd = leader.ready();
    assert_eq!(rd.entries.len(), 1);
    assert!(
        rd.messages
            .iter()
            .all(|m| m.msg_type == MessageType::Append)
    );
    assert_eq!(
        rd.messages.len(),
        2,
        "appends go out before the leader's fsync"
    );
    assert!(rd.persisted_messages.is_empty());
    let appends = rd.messages.clone();
    leader.storage_mut().append(&rd.entries).unwrap();
    leader.advance();
    let follower = &mut c.node_mut(2).raw;
    follower.step(appends[0].clone()).unwrap();
    let rd = follower.ready();
    assert!(rd.must_sync);
    assert!(rd.messages.is_empty());
    assert_eq!(
        rd.persisted_messages[0].msg_type,
        MessageType::AppendResponse
    );
}

#[test]
fn proposals_without_a_leader_are_dropped() {
    let mut c = Cluster::new(&[1, 2, 3], 1, default_config);
    assert_eq!(c.propose(2, b"x"), Err(RaftError::ProposalDropped));
    assert_eq!(
        c.node_mut(2).raw.read_index(Bytes::new()),
        Err(RaftError::NotLeader { leader: NO_NODE })
    );
}

#[test]
fn limits_on_uncommitted_bytes_message_size_and_ready_size() {
    let mut c = Cluster::new(&[1, 2, 3], 1, |id| {
        let mut cfg = default_config(id);
        cfg.max_uncommitted_entries_size_bytes = 1000;
        cfg.max_size_per_msg_bytes = 300;
        cfg.max_committed_size_per_ready_bytes = 200;
        cfg
    });
    assert!(c.elect(1));
    c.partition(&[1]);
    let big = Bytes::from(vec![7u8; 400]);
    let leader = &mut c.node_mut(1).raw;
    leader.propose(big.clone()).unwrap();
    leader.propose(big.clone()).unwrap();
    assert_eq!(leader.propose(big.clone()), Err(RaftError::ProposalDropped));
    let small = Bytes::from(vec![1u8; 50]);
    for _ in 0..3 {
        leader.propose(small.clone()).unwrap();
    }
    c.heal();
    let rd = c.node_mut(1).raw.ready();
    for m in rd
        .messages
        .iter()
        .filter(|m| m.msg_type == MessageType::Append)
    {
        assert!(
            m.entries.len() == 1 || m.entries_size_bytes() <= 300,
            "{}",
            m.entries.len()
        );
    }
    c.node_mut(1).raw.storage_mut().append(&rd.entries).unwrap();
    c.node_mut(1).raw.advance();
    c.tick_settle(3);
    // Every Ready of committed entries stayed within 200 bytes or one entry.
    assert_eq!(c.applied_data(2).len(), 5);
    c.check().unwrap();
}

#[test]
fn invalid_config_is_refused() {
    let mut cfg = Config::new(1);
    cfg.heartbeat_tick = 0;
    let err = RawNode::new(&cfg, MemoryStorage::new_with_voters(&[1]))
        .err()
        .unwrap();
    assert!(matches!(err, RaftError::InvalidConfig(_)));
}

#[test]
fn old_term_entries_commit_only_with_a_current_term_entry() {
    // Raft paper §5.4.2 / Figure 8: a new leader must not commit an entry of
    // an earlier term by counting replicas; it commits it together with its
    // own no-op.
    fn cfg(id: NodeId) -> Config {
        let mut c = no_pre_vote(id);
        c.check_quorum = false;
        c.max_size_per_msg_bytes = 1; // one entry per Append
        c
    }
    let mut c = Cluster::new(&[1, 2, 3], 1, cfg);
    assert!(c.elect(1));
    c.partition(&[1]);
    c.propose(1, b"old").unwrap(); // index 2, term 1, only on node 1
    c.settle();
    c.crash(1);
    c.restart(1);
    c.heal();
    c.crash(3);
    assert!(!c.node(1).raw.is_leader());
    c.node_mut(1).raw.campaign();
    let mut commits = vec![c.node(1).raft().log.committed()];
    for _ in 0..20 {
        c.hop();
        let commit = c.node(1).raft().log.committed();
        if commits.last() != Some(&commit) {
            commits.push(commit);
        }
    }
    assert!(c.node(1).raw.is_leader());
    assert_eq!(c.node(1).raft().term, 2);
    assert_eq!(
        commits,
        vec![1, 3],
        "index 2 (term 1) is never committed on its own"
    );
    c.check().unwrap();
}

#[test]
fn leader_counts_its_own_entries_only_once_persisted() {
    let mut c = three();
    c.partition(&[3]);
    let leader = &mut c.node_mut(1).raw;
    leader.propose(Bytes::from_static(b"a")).unwrap();
    let rd = leader.ready();
    let index = rd.entries[0].index;
    let before = leader.raft().log.committed();
    // The append reaches node 2, which persists it and acknowledges.
    let to_two = rd.messages.iter().find(|m| m.to == 2).unwrap().clone();
    let follower = &mut c.node_mut(2).raw;
    follower.step(to_two).unwrap();
    let frd = follower.ready();
    follower.storage_mut().append(&frd.entries).unwrap();
    follower.advance();
    let ack = frd.persisted_messages[0].clone();
    let leader = &mut c.node_mut(1).raw;
    leader.step(ack).unwrap();
    assert_eq!(
        leader.raft().log.committed(),
        before,
        "only one durable copy so far"
    );
    leader.storage_mut().append(&rd.entries).unwrap();
    leader.advance();
    assert_eq!(
        leader.raft().log.committed(),
        index,
        "committed once the leader's fsync is done"
    );
}

#[test]
fn follower_behind_a_compacted_leader_log_gets_a_snapshot_with_the_config() {
    let mut c = three();
    c.snapshot_every = 4;
    c.crash(2);
    for _ in 0..12 {
        c.propose(1, b"e").unwrap();
    }
    c.tick_settle(2);
    // Node 2 comes back with its own log (index 1), far behind the
    // leader's compacted one. (A node that lost its disk is refused
    // instead: `a_follower_that_lost_acknowledged_entries_refuses_the_heartbeat`.)
    c.restart(2);
    c.tick_settle(4);
    let n2 = c.node(2);
    assert!(
        n2.raw.storage().snapshot().unwrap().metadata.index >= 4,
        "caught up through the leader's snapshot"
    );
    assert_eq!(
        n2.raw
            .storage()
            .snapshot()
            .unwrap()
            .metadata
            .conf_state
            .voters,
        vec![1, 2, 3]
    );
    assert_eq!(n2.applied_index, c.node(1).applied_index);
    assert_eq!(n2.digest, c.node(1).digest);
    c.check().unwrap();
}

#[test]
fn restart_restores_from_the_nodes_own_snapshot() {
    let mut c = three();
    c.snapshot_every = 4;
    for _ in 0..10 {
        c.propose(1, b"e").unwrap();
    }
    c.tick_settle(2);
    let snap_index = c.node(2).raw.storage().snapshot().unwrap().metadata.index;
    assert!(snap_index >= 4);
    let digest = c.node(2).digest;
    c.crash(2);
    c.restart(2);
    assert_eq!(
        c.node(2).applied_index,
        snap_index,
        "state machine restored from the snapshot"
    );
    assert_eq!(c.node(2).raft().log.first_index(), snap_index + 1);
    c.tick_settle(2);
    assert_eq!(
        c.node(2).digest,
        digest,
        "remaining entries re-applied to the same state"
    );
    c.check().unwrap();
}

#[test]
fn a_learner_with_a_higher_term_rejoins_without_pre_vote_or_check_quorum() {
    // A member that cannot campaign but holds a newer term must still make
    // the stale leader step down, or it would never catch up.
    fn cfg(id: NodeId) -> Config {
        let mut c = no_pre_vote(id);
        c.check_quorum = false;
        c
    }
    let mut c = Cluster::with_members(&[1, 2], &[3], 1, cfg);
    assert!(c.elect(1));
    c.crash(3);
    let storage = c.down.get_mut(&3).unwrap();
    let hs = storage.hard_state();
    storage.set_hard_state(HardState { term: 5, ..hs });
    c.restart(3);
    c.propose(1, b"a").unwrap();
    c.tick_settle(40);
    let leader = c.leader().unwrap();
    assert!(c.node(leader).raft().term > 5);
    assert_eq!(c.applied_data(3), vec![Bytes::from_static(b"a")]);
    c.check().unwrap();
}

/// Number of appends carrying entries that leader 1 sends to node 2 for
/// `proposals` separate 50-byte proposals when no acknowledgement returns.
fn appends_sent_without_acks(make_config: fn(NodeId) -> Config, proposals: usize) -> usize {
    let mut c = Cluster::new(&[1, 2, 3], 1, make_config);
    assert!(c.elect(1));
    c.tick_settle(1);
    let pr = &c.node(1).raft().tracker.progress[&2];
    assert_eq!(pr.state, ProgressState::Replicate);
    let leader = &mut c.node_mut(1).raw;
    let mut sent = 0;
    for _ in 0..proposals {
        leader.propose(Bytes::from(vec![0u8; 50])).unwrap();
        let rd = leader.ready();
        let appends = rd
            .messages
            .iter()
            .filter(|m| m.to == 2 && !m.entries.is_empty());
        sent += appends.count();
        leader.storage_mut().append(&rd.entries).unwrap();
        leader.advance();
    }
    sent
}

/// A heartbeat response frees an in-flight append only when the window is
/// full (etcd-io/raft: so a follower whose acks were lost can be probed
/// again); below that, the window keeps counting unacknowledged appends.
#[test]
fn a_heartbeat_response_frees_no_inflight_slot_below_the_limit() {
    let mut c = Cluster::new(&[1, 2, 3], 1, |id| Config {
        max_inflight_msgs: 4,
        ..default_config(id)
    });
    assert!(c.elect(1));
    c.tick_settle(1);
    let leader = &mut c.node_mut(1).raw;
    for _ in 0..2 {
        leader.propose(Bytes::from_static(b"x")).unwrap();
        let rd = leader.ready();
        leader.storage_mut().append(&rd.entries).unwrap();
        leader.advance();
    }
    let inflight = |c: &Cluster| c.node(1).raft().tracker.progress[&2].inflights.count();
    assert_eq!(inflight(&c), 2);
    let term = c.node(1).raft().term;
    let response = Message::new(MessageType::HeartbeatResponse, 2, 1, term);
    c.node_mut(1).raw.step(response).unwrap();
    assert_eq!(inflight(&c), 2, "below the limit nothing is freed");
}

#[test]
fn pipelining_is_bounded_by_inflight_count_and_bytes() {
    assert_eq!(
        appends_sent_without_acks(default_config, 10),
        10,
        "window not reached"
    );
    let by_count = appends_sent_without_acks(
        |id| Config {
            max_inflight_msgs: 2,
            ..default_config(id)
        },
        10,
    );
    assert_eq!(by_count, 2);
    // Each 50-byte entry counts 74 bytes: the third append fills 200 bytes.
    let by_bytes = appends_sent_without_acks(
        |id| Config {
            max_inflight_bytes: 200,
            ..default_config(id)
        },
        10,
    );
    assert_eq!(by_bytes, 3);
}

fn single(change_type: ConfChangeType, node_id: NodeId) -> ConfChange {
    ConfChange {
        changes: vec![ConfChangeSingle {
            change_type,
            node_id,
        }],
        context: Bytes::new(),
    }
}

/// Issue 28 item 9: a learner that never started (or lags) is not promoted,
/// neither through the leader (etcd's "can only promote a learner member
/// which is in sync with leader") nor through a follower that forwards the
/// change; once it has caught up, it is.
#[test]
fn a_learner_is_promoted_only_once_in_sync_with_the_leader() {
    let mut c = three();
    let add = single(ConfChangeType::AddLearnerNode, 4);
    c.node_mut(1).raw.propose_conf_change(&add).unwrap();
    c.tick_settle(3);
    assert_eq!(c.node(1).raft().conf_state().learners, vec![4]);
    c.propose(1, b"a").unwrap();
    c.tick_settle(2);
    let promote = single(ConfChangeType::AddNode, 4);
    let refused = c.node_mut(1).raw.propose_conf_change(&promote);
    assert_eq!(refused, Err(RaftError::LearnerNotReady { id: 4 }));
    c.node_mut(2).raw.propose_conf_change(&promote).unwrap();
    c.tick_settle(3);
    assert_eq!(c.node(1).raft().conf_state().voters, vec![1, 2, 3]);
    assert_eq!(c.node(1).raft().conf_state().learners, vec![4]);

    c.add_joining_node(4, &[1, 2, 3]);
    c.tick_settle(5);
    c.node_mut(1).raw.propose_conf_change(&promote).unwrap();
    c.tick_settle(3);
    assert_eq!(c.node(4).raft().conf_state().voters, vec![1, 2, 3, 4]);
    c.check().unwrap();
}

fn unhealthy(change_type: ConfChangeType, node_id: NodeId) -> Result<(), RaftError> {
    Err(RaftError::Unhealthy {
        change: ConfChangeSingle {
            change_type,
            node_id,
        },
    })
}

/// Issue 28 item 9 (etcd `mayAddMember`, strict reconfiguration): with a
/// voter down, adding a voter would raise the quorum to three of four with
/// only two able to vote; the leader refuses it, whoever proposes it.
/// Learners may still be added; once the voter is back, voters may too.
#[test]
fn a_voter_is_added_only_while_every_voter_is_active() {
    let mut c = three();
    c.crash(3);
    // Two check-quorum windows (election_tick 10) without word from 3.
    c.tick_settle(21);
    assert_eq!(c.leader(), Some(1));
    let add = single(ConfChangeType::AddNode, 4);
    let refused = c.node_mut(1).raw.propose_conf_change(&add);
    assert_eq!(refused, unhealthy(ConfChangeType::AddNode, 4));
    c.node_mut(2).raw.propose_conf_change(&add).unwrap();
    c.tick_settle(3);
    assert_eq!(c.node(1).raft().conf_state().voters, vec![1, 2, 3]);
    let learner = single(ConfChangeType::AddLearnerNode, 4);
    c.node_mut(1).raw.propose_conf_change(&learner).unwrap();
    c.tick_settle(3);
    assert_eq!(c.node(1).raft().conf_state().learners, vec![4]);

    c.restart(3);
    c.tick_settle(3);
    let add = single(ConfChangeType::AddNode, 5);
    c.node_mut(1).raw.propose_conf_change(&add).unwrap();
    c.tick_settle(3);
    assert_eq!(c.node(1).raft().conf_state().voters, vec![1, 2, 3, 5]);
    c.check().unwrap();
}

/// Promoting a learner is not an added voter for the active-quorum check
/// (etcd 3.4 `mayPromoteMember` asks only that the learner is in sync and
/// that enough members have started): with a voter down, a learner in sync
/// is promoted, and the three live voters of four commit.
#[test]
fn a_learner_in_sync_is_promoted_while_a_voter_is_down() {
    let mut c = three();
    let learner = single(ConfChangeType::AddLearnerNode, 4);
    c.node_mut(1).raw.propose_conf_change(&learner).unwrap();
    c.tick_settle(3);
    c.add_joining_node(4, &[1, 2, 3]);
    c.tick_settle(5);
    c.crash(3);
    c.tick_settle(21);
    assert_eq!(c.leader(), Some(1));
    let promote = single(ConfChangeType::AddNode, 4);
    c.node_mut(1).raw.propose_conf_change(&promote).unwrap();
    c.tick_settle(3);
    assert_eq!(c.node(4).raft().conf_state().voters, vec![1, 2, 3, 4]);
    c.propose(1, b"after the promotion").unwrap();
    c.settle();
    assert_eq!(
        c.applied_data(4).last(),
        Some(&Bytes::from_static(b"after the promotion"))
    );
    c.check().unwrap();
}

/// A peer that answers every heartbeat stays active when a check-quorum
/// window starts and the leader has not heard from it yet in the new one.
#[test]
fn a_new_check_quorum_window_does_not_make_live_peers_inactive() {
    let mut c = three();
    c.tick_settle(3);
    // Ten leader ticks without delivering anything: the tenth starts a new
    // window, clearing every peer's recent activity.
    for _ in 0..10 {
        c.node_mut(1).raw.tick();
    }
    let add = single(ConfChangeType::AddNode, 4);
    c.node_mut(1).raw.propose_conf_change(&add).unwrap();
    c.settle();
    c.check().unwrap();
}

/// Issue 28 item 9 (etcd `mayRemoveMember`): with one of three voters
/// down, removing a live voter (leader included) would leave one active
/// voter of two: refused, and the cluster keeps committing. The voter
/// that is down may be removed.
#[test]
fn a_voter_is_removed_only_if_an_active_quorum_remains() {
    let mut c = three();
    c.crash(3);
    c.tick_settle(21);
    for id in [2, 1] {
        let remove = single(ConfChangeType::RemoveNode, id);
        let refused = c.node_mut(1).raw.propose_conf_change(&remove);
        assert_eq!(refused, unhealthy(ConfChangeType::RemoveNode, id));
    }
    c.propose(1, b"still serving").unwrap();
    c.settle();
    assert_eq!(
        c.applied_data(2).last(),
        Some(&Bytes::from_static(b"still serving"))
    );
    let remove_down = single(ConfChangeType::RemoveNode, 3);
    c.node_mut(1).raw.propose_conf_change(&remove_down).unwrap();
    c.tick_settle(3);
    assert_eq!(c.node(1).raft().conf_state().voters, vec![1, 2]);
    c.check().unwrap();
}

/// All voters live: a voter may be removed.
#[test]
fn a_live_voter_is_removed_from_a_healthy_cluster() {
    let mut c = three();
    c.tick_settle(21);
    let remove = single(ConfChangeType::RemoveNode, 2);
    c.node_mut(1).raw.propose_conf_change(&remove).unwrap();
    c.tick_settle(3);
    assert_eq!(c.node(1).raft().conf_state().voters, vec![1, 3]);
}

/// A follower whose storage lost entries it acknowledged (a truncated WAL)
/// learns it from the leader's heartbeat, whose commit is the leader's
/// match index for it, and refuses to go on (etcd-raft panics in
/// `commitTo`). Clamping the commit instead left the member waiting
/// forever: the leader took it for up to date and ignored its rejections.
#[test]
fn a_follower_that_lost_acknowledged_entries_refuses_the_heartbeat() {
    let mut c = three();
    let last = c.node(2).raw.raft().log.last_index();
    let mut heartbeat = Message::new(MessageType::Heartbeat, 1, 2, 1);
    heartbeat.commit = last + 3;
    let err = c.node_mut(2).raw.step(heartbeat).unwrap_err();
    assert!(
        matches!(err, RaftError::LogLost { commit, last_index } if commit == last + 3 && last_index == last),
        "{err}"
    );
    let mut fine = Message::new(MessageType::Heartbeat, 1, 2, 1);
    fine.commit = last;
    c.node_mut(2).raw.step(fine).unwrap();
}
