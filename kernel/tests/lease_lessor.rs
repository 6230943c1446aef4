//! Lessor and lease-clock scenarios with a fake clock: expiry on the
//! leader, extension on leader change, checkpoints carrying the remaining
//! TTL across a change, keep-alive, revoke with attached keys, snapshot
//! round-trip. The property test checks `Lessor::check_invariants` and
//! `LeaseClock::check_invariants` after every operation.

#![allow(clippy::unwrap_used)] // tests may unwrap (project guide)

use std::ops::{Deref, DerefMut};

use keel_kernel::InvariantViolation;
use keel_kernel::lease::{
    EXPIRED_RETRY_INTERVAL_MS, LeaseCheckpoint, LeaseClock, LeaseError, LeaseId, LeaseRenewal,
    LeaseStatus, Lessor, LessorConfig, MAX_LEASE_TTL_SECS, NO_LEASE,
};

const ELECTION_TIMEOUT_MS: u64 = 1000;

/// One member's leases: the replicated lessor, changed by the operations
/// apply performs, and the member-local clock following it as
/// `LocalState::follow` makes it (reads go to the lessor).
struct Member {
    lessor: Lessor,
    clock: LeaseClock,
}

impl Deref for Member {
    type Target = Lessor;
    fn deref(&self) -> &Lessor {
        &self.lessor
    }
}

impl DerefMut for Member {
    fn deref_mut(&mut self) -> &mut Lessor {
        &mut self.lessor
    }
}

impl Member {
    fn new(config: LessorConfig) -> Member {
        Member {
            lessor: Lessor::new(config),
            clock: LeaseClock::new(config),
        }
    }

    /// Apply of a grant at `now_ms`.
    fn grant(&mut self, id: LeaseId, ttl_secs: i64, now_ms: u64) -> Result<i64, LeaseError> {
        let granted = self.lessor.grant(id, ttl_secs)?;
        self.clock.granted(&self.lessor, id, now_ms);
        Ok(granted)
    }

    /// Apply of a revoke.
    fn revoke(&mut self, id: LeaseId) -> Result<Vec<Vec<u8>>, LeaseError> {
        let keys = self.lessor.revoke(id)?;
        self.clock.revoked(id);
        Ok(keys)
    }

    /// Apply of a checkpoint at `now_ms`.
    fn checkpoint(&mut self, checkpoint: LeaseCheckpoint, now_ms: u64) {
        if self.lessor.checkpoint(checkpoint) {
            self.clock.checkpointed(&self.lessor, checkpoint.id, now_ms);
        }
    }

    fn renew(&mut self, id: LeaseId, now_ms: u64) -> Result<LeaseRenewal, LeaseError> {
        self.clock.renew(&self.lessor, id, now_ms)
    }

    fn time_to_live(&self, id: LeaseId, now_ms: u64) -> Result<LeaseStatus, LeaseError> {
        self.clock.time_to_live(&self.lessor, id, now_ms)
    }

    fn expired(&mut self, now_ms: u64) -> Vec<LeaseId> {
        self.clock.expired(now_ms)
    }

    fn promote(&mut self, now_ms: u64, extend_ms: u64) {
        self.clock.promote(&self.lessor, now_ms, extend_ms);
    }

    fn demote(&mut self) {
        self.clock.demote();
    }

    fn checkpoints_due(&mut self, now_ms: u64) -> Vec<LeaseCheckpoint> {
        self.clock.checkpoints_due(&self.lessor, now_ms)
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.lessor.check_invariants()?;
        self.clock.check_invariants(&self.lessor)
    }
}

fn leader() -> Member {
    let mut lessor = follower();
    lessor.promote(0, 0);
    lessor
}

fn follower() -> Member {
    Member::new(LessorConfig::new(ELECTION_TIMEOUT_MS))
}

#[test]
fn grant_enforces_id_ttl_limits_and_uniqueness() {
    let mut lessor = leader();
    assert_eq!(lessor.grant(NO_LEASE, 10, 0), Err(LeaseError::NotFound));
    assert_eq!(
        lessor.grant(1, MAX_LEASE_TTL_SECS + 1, 0),
        Err(LeaseError::TtlTooLarge)
    );
    assert_eq!(lessor.ttl_to_grant_secs(1), 2, "raised to the minimum TTL");
    assert_eq!(
        lessor.grant(1, 1, 0),
        Ok(1),
        "applied as the proposer decided"
    );
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
fn promotion_spreads_a_pile_of_expiries_over_seconds() {
    let mut lessor = follower();
    for id in 1..=3000 {
        lessor.grant(id, 10, 0).unwrap();
    }
    lessor.promote(0, 1_000);
    let mut revoked = 0;
    let mut per_second = Vec::new();
    for second in 0..30u64 {
        let now_ms = second * 1000 + 999;
        let expired = lessor.expired(now_ms);
        for &id in &expired {
            lessor.revoke(id).unwrap();
        }
        revoked += expired.len();
        per_second.push(expired.len());
    }
    assert_eq!(revoked, 3000, "all expire eventually: {per_second:?}");
    assert!(per_second.iter().all(|&n| n <= 1000), "{per_second:?}");
    assert!(
        per_second.iter().filter(|&&n| n > 0).count() >= 3,
        "{per_second:?}"
    );
    assert!(
        per_second[..11].iter().all(|&n| n == 0),
        "none before ttl + extension"
    );
}

#[test]
fn checkpoints_carry_the_remaining_ttl_across_a_leader_change() {
    let config = LessorConfig {
        checkpoint_interval_ms: 60_000,
        ..LessorConfig::new(1000)
    };
    let mut old_leader = Member::new(config);
    old_leader.promote(0, 0);
    let mut new_leader = Member::new(config);
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
    // A keep-alive clears the checkpoint everywhere, through Raft: the
    // replicated remaining TTL changes only when that checkpoint applies
    // (the leader times the lease from its full TTL meanwhile).
    let renewal = new_leader.renew(5, 200_000).unwrap();
    let clear = LeaseCheckpoint {
        id: 5,
        remaining_ttl_secs: 0,
    };
    assert_eq!(renewal.checkpoint, Some(clear));
    assert_eq!(new_leader.lease(5).unwrap().remaining_ttl_secs, 540);
    assert_eq!(new_leader.renew(5, 200_000).unwrap().checkpoint, None);
    for lessor in [&mut old_leader, &mut new_leader] {
        lessor.checkpoint(clear, 200_000);
        assert_eq!(lessor.lease(5).unwrap().remaining_ttl_secs, 0);
    }
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
    assert_eq!(lessor.check_invariants(), Ok(()));
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
    assert_eq!(restored.lease_of(b"k1"), 1);
    assert_eq!(restored.check_invariants(), Ok(()));
    // A keep-alive changes the leader's clock, never the snapshot.
    lessor.renew(2, 1_000).unwrap();
    assert_eq!(lessor.snapshot(), snapshot);
    let mut duplicate = snapshot.clone();
    duplicate.push(snapshot[0].clone());
    assert!(Lessor::restore(lessor.config(), duplicate).is_err());
}

mod model {
    //! Property test: the lessor against a plain model (a map of lease to
    //! TTL, checkpointed TTL, expiry and last report) under random
    //! operations and a clock that only moves forward.

    use std::collections::BTreeMap;

    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Advance(u64),
        Grant(i64, i64),
        Revoke(i64),
        Renew(i64),
        Checkpoint(i64, i64),
        Promote(u64),
        Demote,
        Expired,
    }

    fn op() -> impl Strategy<Value = Op> {
        let id = 1..6i64;
        prop_oneof![
            3 => (0..20_000u64).prop_map(Op::Advance),
            3 => (id.clone(), 0..30i64).prop_map(|(id, ttl)| Op::Grant(id, ttl)),
            1 => id.clone().prop_map(Op::Revoke),
            2 => id.clone().prop_map(Op::Renew),
            1 => (id, -2..30i64).prop_map(|(id, ttl)| Op::Checkpoint(id, ttl)),
            1 => (0..3_000u64).prop_map(Op::Promote),
            1 => Just(Op::Demote),
            3 => Just(Op::Expired),
        ]
    }

    #[derive(Default)]
    struct ModelLease {
        ttl: i64,
        remaining: i64,
        expiry_ms: Option<u64>,
        reported_ms: Option<u64>,
    }

    #[derive(Default)]
    struct Model {
        leases: BTreeMap<i64, ModelLease>,
        primary: bool,
    }

    impl Model {
        fn refresh(lease: &mut ModelLease, now: u64, extend: u64) {
            let ttl = if lease.remaining > 0 {
                lease.remaining
            } else {
                lease.ttl
            };
            lease.expiry_ms = Some(now + extend + ttl as u64 * 1000);
            lease.reported_ms = None;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn lessor_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
            let mut lessor = follower();
            let mut model = Model::default();
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Advance(ms) => now += ms,
                    Op::Grant(id, ttl) => {
                        let expected = if model.leases.contains_key(&id) {
                            Err(LeaseError::AlreadyExists)
                        } else {
                            let mut lease = ModelLease { ttl, ..Default::default() };
                            if model.primary {
                                Model::refresh(&mut lease, now, 0);
                            }
                            let granted = lease.ttl;
                            model.leases.insert(id, lease);
                            Ok(granted)
                        };
                        prop_assert_eq!(lessor.grant(id, ttl, now), expected);
                    }
                    Op::Revoke(id) => {
                        let expected = model.leases.remove(&id).map(|_| Vec::new()).ok_or(LeaseError::NotFound);
                        prop_assert_eq!(lessor.revoke(id), expected);
                    }
                    Op::Renew(id) => {
                        let expected = match model.leases.get_mut(&id) {
                            _ if !model.primary => Err(LeaseError::NotPrimary),
                            None => Err(LeaseError::NotFound),
                            Some(lease) if lease.expiry_ms.is_some_and(|e| e <= now) => Err(LeaseError::NotFound),
                            Some(lease) => {
                                lease.remaining = 0;
                                Model::refresh(lease, now, 0);
                                Ok(lease.ttl)
                            }
                        };
                        prop_assert_eq!(lessor.renew(id, now).map(|r| r.ttl_secs), expected);
                    }
                    Op::Checkpoint(id, remaining) => {
                        if let Some(lease) = model.leases.get_mut(&id) {
                            lease.remaining = remaining.max(0);
                        }
                        lessor.checkpoint(LeaseCheckpoint { id, remaining_ttl_secs: remaining }, now);
                    }
                    Op::Promote(extend) => {
                        model.primary = true;
                        for lease in model.leases.values_mut() {
                            Model::refresh(lease, now, extend);
                        }
                        lessor.promote(now, extend);
                    }
                    Op::Demote => {
                        model.primary = false;
                        for lease in model.leases.values_mut() {
                            lease.expiry_ms = None;
                            lease.reported_ms = None;
                        }
                        lessor.demote();
                    }
                    Op::Expired => {
                        let mut expected = Vec::new();
                        for (id, lease) in model.leases.iter_mut() {
                            let due = model.primary
                                && lease.expiry_ms.is_some_and(|e| e <= now)
                                && lease.reported_ms.is_none_or(|r| r + EXPIRED_RETRY_INTERVAL_MS <= now);
                            if due {
                                lease.reported_ms = Some(now);
                                expected.push(*id);
                            }
                        }
                        let mut actual = lessor.expired(now);
                        actual.sort_unstable();
                        prop_assert_eq!(actual, expected);
                    }
                }
                prop_assert_eq!(lessor.check_invariants(), Ok(()));
                prop_assert_eq!(lessor.leases(), model.leases.keys().copied().collect::<Vec<_>>());
                for (id, lease) in &model.leases {
                    let expected_ttl = match lease.expiry_ms {
                        Some(expiry) => (expiry.saturating_sub(now) / 1000) as i64,
                        None if lease.remaining > 0 => lease.remaining,
                        None => lease.ttl,
                    };
                    prop_assert_eq!(lessor.time_to_live(*id, now).unwrap().ttl_secs, expected_ttl);
                }
            }
        }
    }
}

#[test]
fn only_a_promoted_clock_is_primary() {
    let mut lessor = follower();
    assert!(!lessor.clock.is_primary());
    lessor.promote(0, 0);
    assert!(lessor.clock.is_primary());
    lessor.demote();
    assert!(!lessor.clock.is_primary());
}

/// A renewal proposes a checkpoint only to clear a remaining TTL recorded
/// by an earlier checkpoint, and only while checkpoints are enabled (etcd
/// 3.5 `Renew`); it is refused once the lease has expired.
#[test]
fn renew_checkpoints_only_to_clear_a_recorded_remaining_ttl() {
    let mut lessor = leader();
    lessor.grant(1, 10, 0).unwrap();
    let fresh = lessor.renew(1, 1_000).unwrap();
    assert_eq!((fresh.ttl_secs, fresh.checkpoint), (10, None));
    let recorded = LeaseCheckpoint {
        id: 1,
        remaining_ttl_secs: 4,
    };
    lessor.checkpoint(recorded, 2_000);
    let cleared = lessor.renew(1, 3_000).unwrap();
    let clear = LeaseCheckpoint {
        id: 1,
        remaining_ttl_secs: 0,
    };
    assert_eq!(cleared.checkpoint, Some(clear));
    assert_eq!(lessor.renew(1, 4_000).unwrap().checkpoint, None);
    // Alive until its deadline (14 s), expired from it on.
    assert_eq!(lessor.renew(1, 13_999).map(|r| r.ttl_secs), Ok(10));
    assert_eq!(lessor.renew(1, 23_999), Err(LeaseError::NotFound));

    let config = LessorConfig {
        checkpoint_interval_ms: 0,
        ..LessorConfig::new(ELECTION_TIMEOUT_MS)
    };
    let mut unchecked = Member::new(config);
    unchecked.promote(0, 0);
    unchecked.grant(2, 10, 0).unwrap();
    unchecked.checkpoint(
        LeaseCheckpoint {
            id: 2,
            remaining_ttl_secs: 4,
        },
        0,
    );
    assert_eq!(unchecked.renew(2, 1_000).unwrap().checkpoint, None);
}
