//! Lessor scenarios with a fake clock: expiry on the leader, extension on
//! leader change, checkpoints carrying the remaining TTL across a change,
//! keep-alive, revoke with attached keys, snapshot round-trip.

#![allow(clippy::unwrap_used)] // tests may unwrap (project guide)

use keel_kernel::lease::{
    EXPIRED_RETRY_INTERVAL_MS, LeaseCheckpoint, LeaseError, Lessor, LessorConfig,
    MAX_LEASE_TTL_SECS, NO_LEASE,
};

const ELECTION_TIMEOUT_MS: u64 = 1000;

fn leader() -> Lessor {
    let mut lessor = Lessor::new(LessorConfig::new(ELECTION_TIMEOUT_MS));
    lessor.promote(0, 0);
    lessor
}

fn follower() -> Lessor {
    Lessor::new(LessorConfig::new(ELECTION_TIMEOUT_MS))
}

#[test]
fn grant_enforces_id_ttl_limits_and_uniqueness() {
    let mut lessor = leader();
    assert_eq!(lessor.grant(NO_LEASE, 10, 0), Err(LeaseError::NotFound));
    assert_eq!(
        lessor.grant(1, MAX_LEASE_TTL_SECS + 1, 0),
        Err(LeaseError::TtlTooLarge)
    );
    assert_eq!(lessor.grant(1, 1, 0), Ok(2), "raised to the minimum TTL");
    assert_eq!(lessor.grant(1, 10, 0), Err(LeaseError::AlreadyExists));
    assert_eq!(
        lessor.grant(2, MAX_LEASE_TTL_SECS, 0),
        Ok(MAX_LEASE_TTL_SECS)
    );
    assert_eq!(lessor.leases(), vec![1, 2]);
    assert_eq!(
        LeaseError::TtlTooLarge.to_string(),
        "etcdserver: too large lease TTL"
    );
    assert_eq!(
        LeaseError::NotFound.to_string(),
        "etcdserver: requested lease not found"
    );
    assert_eq!(
        LeaseError::AlreadyExists.to_string(),
        "etcdserver: lease already exists"
    );
}

#[test]
fn leader_expires_leases_at_their_deadline_and_retries() {
    let mut lessor = leader();
    lessor.grant(7, 10, 1_000).unwrap();
    lessor.grant(8, 20, 1_000).unwrap();
    assert!(lessor.expired(10_999).is_empty());
    assert_eq!(lessor.expired(11_000), vec![7]);
    assert!(
        lessor.expired(11_001).is_empty(),
        "not reported twice at once"
    );
    assert_eq!(lessor.expired(11_000 + EXPIRED_RETRY_INTERVAL_MS), vec![7]);
    assert_eq!(
        lessor.renew(7, 11_000),
        Err(LeaseError::NotFound),
        "expired"
    );
    lessor.revoke(7).unwrap();
    assert!(lessor.expired(30_000).contains(&8));
    assert!(!lessor.expired(60_000).contains(&7));
}

#[test]
fn keep_alive_restarts_the_ttl_and_ttl_query_counts_down() {
    let mut lessor = leader();
    lessor.grant(3, 10, 0).unwrap();
    assert_eq!(lessor.time_to_live(3, 2_500).unwrap().ttl_secs, 7);
    let renewal = lessor.renew(3, 9_000).unwrap();
    assert_eq!(renewal.ttl_secs, 10);
    assert_eq!(renewal.checkpoint, None);
    assert!(lessor.expired(18_999).is_empty());
    assert_eq!(lessor.expired(19_000), vec![3]);
    assert_eq!(follower().renew(3, 0), Err(LeaseError::NotPrimary));
    assert_eq!(lessor.time_to_live(99, 0), Err(LeaseError::NotFound));
}

#[test]
fn followers_never_expire_and_new_leader_extends_every_lease() {
    let mut old_leader = leader();
    let mut new_leader = follower();
    for lessor in [&mut old_leader, &mut new_leader] {
        lessor.grant(1, 10, 0).unwrap();
    }
    // The follower never expires anything on its own.
    assert!(new_leader.expired(1_000_000).is_empty());
    // Old leader dies at 9.5 s; the new one is elected at 10.5 s.
    new_leader.promote(10_500, ELECTION_TIMEOUT_MS);
    assert!(
        new_leader.expired(21_499).is_empty(),
        "extended by ttl + election timeout"
    );
    assert_eq!(new_leader.expired(21_500), vec![1]);
    // Demotion stops expiry again.
    new_leader.demote();
    assert!(new_leader.expired(u64::MAX).is_empty());
}

#[test]
fn checkpoints_carry_the_remaining_ttl_across_a_leader_change() {
    let config = LessorConfig {
        checkpoint_interval_ms: 60_000,
        ..LessorConfig::new(1000)
    };
    let mut old_leader = Lessor::new(config);
    old_leader.promote(0, 0);
    let mut new_leader = Lessor::new(config);
    for lessor in [&mut old_leader, &mut new_leader] {
        lessor.grant(5, 600, 0).unwrap();
    }
    assert!(old_leader.checkpoints_due(59_999).is_empty());
    let due = old_leader.checkpoints_due(60_000);
    assert_eq!(
        due,
        vec![LeaseCheckpoint {
            id: 5,
            remaining_ttl_secs: 540
        }]
    );
    // Applied on every member through Raft.
    for lessor in [&mut old_leader, &mut new_leader] {
        lessor.checkpoint(due[0], 60_000);
    }
    assert_eq!(old_leader.checkpoints_due(119_999), vec![]);
    assert_eq!(
        old_leader.checkpoints_due(120_000)[0].remaining_ttl_secs,
        480
    );
    // New leader at 100 s: 540 s remain from the checkpoint, not 600.
    new_leader.promote(100_000, 1_000);
    assert!(new_leader.expired(640_999).is_empty());
    assert_eq!(new_leader.expired(641_000), vec![5]);
    // A keep-alive clears the checkpoint everywhere.
    let renewal = new_leader.renew(5, 200_000).unwrap();
    assert_eq!(
        renewal.checkpoint,
        Some(LeaseCheckpoint {
            id: 5,
            remaining_ttl_secs: 0
        })
    );
    assert_eq!(new_leader.lease(5).unwrap().remaining_ttl_secs, 0);
    assert!(new_leader.expired(799_999).is_empty());
    assert_eq!(new_leader.expired(800_000), vec![5]);
}

#[test]
fn attached_keys_move_between_leases_and_come_back_on_revoke() {
    let mut lessor = leader();
    lessor.grant(1, 10, 0).unwrap();
    lessor.grant(2, 10, 0).unwrap();
    lessor.attach(1, b"a").unwrap();
    lessor.attach(1, b"b").unwrap();
    lessor.attach(2, b"c").unwrap();
    assert_eq!(lessor.attach(3, b"d"), Err(LeaseError::NotFound));
    lessor.attach(2, b"b").unwrap();
    assert_eq!(lessor.lease_of(b"b"), 2);
    assert_eq!(lessor.time_to_live(1, 0).unwrap().keys, vec![b"a".to_vec()]);
    assert_eq!(lessor.detach(b"c"), 2);
    lessor.attach(NO_LEASE, b"a").unwrap();
    assert_eq!(lessor.lease_of(b"a"), NO_LEASE);
    assert_eq!(lessor.revoke(2).unwrap(), vec![b"b".to_vec()]);
    assert_eq!(lessor.revoke(2), Err(LeaseError::NotFound));
    assert_eq!(lessor.lease_of(b"b"), NO_LEASE);
}

#[test]
fn snapshot_round_trip_keeps_replicated_state() {
    let mut lessor = leader();
    lessor.grant(1, 100, 0).unwrap();
    lessor.grant(2, 30, 0).unwrap();
    lessor.attach(1, b"k1").unwrap();
    lessor.checkpoint(
        LeaseCheckpoint {
            id: 2,
            remaining_ttl_secs: 12,
        },
        0,
    );
    let snapshot = lessor.snapshot();
    let restored = Lessor::restore(lessor.config(), snapshot.clone()).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    assert!(!restored.is_primary());
    assert_eq!(restored.lease_of(b"k1"), 1);
    let mut duplicate = snapshot.clone();
    duplicate.push(snapshot[0].clone());
    assert!(Lessor::restore(lessor.config(), duplicate).is_err());
}
