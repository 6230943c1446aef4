//! State-machine snapshot round-trip: encode -> restore -> identical
//! answers, hashes and bytes, identical behaviour afterwards; corrupt or
//! truncated bytes are rejected without panicking.
//!
//! `KEEL_SEEDS=<n>` runs `n` random workloads instead of 16.

#![allow(clippy::unwrap_used)] // tests may unwrap (project guide)

use keel_kernel::apply::{
    AlarmAction, AlarmRequest, AlarmType, ApplyResult, AuthRequest, Request, RequestEnvelope,
    SnapshotError, StateMachine, StateMachineConfig,
};
use keel_kernel::auth::{Permission, PermissionType, ROOT};
use keel_kernel::lease::LeaseCheckpoint;
use keel_kernel::membership::{Cluster, Member};
use keel_kernel::mvcc::{
    CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, SortOrder,
    SortTarget, TxnRequest,
};
use keel_kernel::raft::{Entry, EntryType};
use proptest::prelude::*;

/// A small deterministic generator (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

/// Seeds to run: 16 by default; `KEEL_SEEDS=<n>` for a longer sweep.
fn seed_count() -> u64 {
    std::env::var("KEEL_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(16)
}

fn config() -> StateMachineConfig {
    StateMachineConfig::new(1000)
}

fn fresh() -> StateMachine {
    let members = (1..=3)
        .map(|i| {
            Member::new(
                &format!("n{i}"),
                &[format!("http://n{i}:2380")],
                "t",
                None,
                false,
            )
        })
        .collect();
    StateMachine::new(config(), Cluster::bootstrap(members).unwrap())
}

fn entry(index: u64, request: Request) -> Entry {
    let data = RequestEnvelope {
        id: index,
        auth: None,
        request,
    }
    .encode()
    .unwrap();
    Entry {
        term: 2,
        index,
        entry_type: EntryType::Normal,
        data,
    }
}

fn key(rng: &mut Lcg) -> Vec<u8> {
    format!("k{:02}", rng.next(40)).into_bytes()
}

/// A random request from a mix of KV, lease, auth and alarm operations.
fn random_request(rng: &mut Lcg, revision: i64) -> Request {
    match rng.next(13) {
        0..=4 => Request::Put(PutRequest {
            key: key(rng),
            value: format!("v{}", rng.next(1000)).into_bytes(),
            lease: [0, 0, 1, 2][rng.next(4) as usize],
            ..Default::default()
        }),
        5 => Request::DeleteRange(DeleteRangeRequest {
            key: key(rng),
            range_end: key(rng),
            prev_kv: true,
        }),
        6 => Request::Txn(TxnRequest {
            compare: vec![],
            success: vec![
                RequestOp::Put(PutRequest {
                    key: key(rng),
                    value: b"t".to_vec(),
                    ..Default::default()
                }),
                RequestOp::Range(RangeRequest {
                    key: key(rng),
                    ..Default::default()
                }),
            ],
            failure: vec![],
        }),
        7 => Request::Compaction(CompactionRequest {
            revision: revision / 2,
            physical: false,
        }),
        8 => Request::LeaseGrant {
            id: 1 + rng.next(3) as i64,
            ttl_secs: 30 + rng.next(100) as i64,
        },
        9 => Request::LeaseRevoke {
            id: 1 + rng.next(3) as i64,
        },
        10 => Request::LeaseCheckpoint(vec![LeaseCheckpoint {
            id: 1 + rng.next(3) as i64,
            remaining_ttl_secs: 9,
        }]),
        11 => Request::Put(PutRequest {
            key: key(rng),
            value: b"kept lease".to_vec(),
            ignore_lease: true,
            ..Default::default()
        }),
        _ => Request::Auth(AuthRequest::RoleAdd {
            name: format!("role{}", rng.next(5)),
        }),
    }
}

/// A state machine after `count` random entries (plus fixed auth, alarm
/// and lease setup), and the index of its last entry.
fn populated(seed: u64, count: u64) -> (StateMachine, u64) {
    let mut sm = fresh();
    let mut index = 0;
    let mut apply = |sm: &mut StateMachine, request: Request| -> ApplyResult {
        index += 1;
        sm.apply(&entry(index, request))
    };
    let setup = vec![
        Request::LeaseGrant {
            id: 1,
            ttl_secs: 60,
        },
        Request::LeaseGrant {
            id: 2,
            ttl_secs: 120,
        },
        Request::Auth(AuthRequest::UserAdd {
            name: ROOT.into(),
            password_hash: None,
        }),
        Request::Auth(AuthRequest::UserGrantRole {
            user: ROOT.into(),
            role: ROOT.into(),
        }),
        Request::Auth(AuthRequest::RoleAdd {
            name: "reader".into(),
        }),
        Request::Auth(AuthRequest::RoleGrantPermission {
            name: "reader".into(),
            permission: Permission {
                perm_type: PermissionType::Read,
                key: b"k".to_vec(),
                range_end: b"l".to_vec(),
            },
        }),
        Request::Alarm(AlarmRequest {
            action: AlarmAction::Activate,
            member_id: 9,
            alarm: AlarmType::Corrupt,
        }),
        Request::Alarm(AlarmRequest {
            action: AlarmAction::Deactivate,
            member_id: 9,
            alarm: AlarmType::Corrupt,
        }),
    ];
    for request in setup {
        apply(&mut sm, request).result.unwrap();
    }
    let mut rng = Lcg(seed);
    for _ in 0..count {
        let request = random_request(&mut rng, sm.store().current_revision());
        apply(&mut sm, request);
    }
    (sm, index)
}

fn ranges() -> Vec<RangeRequest> {
    let mut requests = Vec::new();
    for (key, end) in [
        ("k00", ""),
        ("k05", "k20"),
        ("\0", "\0"),
        ("k1", "\0"),
        ("k39", ""),
    ] {
        for revision in [0, 5, 20, 60] {
            requests.push(RangeRequest {
                key: key.as_bytes().to_vec(),
                range_end: end.as_bytes().to_vec(),
                revision,
                sort_order: SortOrder::Descend,
                sort_target: SortTarget::Mod,
                ..Default::default()
            });
        }
    }
    requests
}

/// Every live key's `lease` field agrees with the lessor's attachments,
/// and every attached key is live.
fn assert_leases_match_store(sm: &StateMachine) {
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    let kvs = sm.range(None, &all).unwrap().kvs;
    let mut attached = 0;
    for kv in &kvs {
        assert_eq!(sm.lessor().lease_of(&kv.key), kv.lease, "{:?}", kv.key);
        attached += usize::from(kv.lease != 0);
    }
    let total: usize = sm
        .lessor()
        .snapshot()
        .iter()
        .map(|lease| lease.keys.len())
        .sum();
    assert_eq!(total, attached);
}

fn assert_same_answers(a: &StateMachine, b: &StateMachine) {
    assert_eq!(a.applied_index(), b.applied_index());
    assert_eq!(a.applied_term(), b.applied_term());
    for request in ranges() {
        assert_eq!(
            a.range(None, &request),
            b.range(None, &request),
            "{request:?}"
        );
    }
    for revision in [0, 10, 30, a.store().current_revision()] {
        assert_eq!(a.store().hash_kv(revision), b.store().hash_kv(revision));
    }
    assert_eq!(a.lessor().snapshot(), b.lessor().snapshot());
    for id in 1..=3 {
        assert_eq!(
            a.lease_time_to_live(None, id, true),
            b.lease_time_to_live(None, id, true)
        );
    }
    assert_eq!(a.auth().snapshot(), b.auth().snapshot());
    assert_eq!(a.cluster(), b.cluster());
    assert_eq!(a.alarms(), b.alarms());
}

#[test]
fn round_trip_gives_identical_answers_hashes_and_bytes() {
    let mut seeds_with_leases = 0;
    for seed in 0..seed_count() {
        let (original, last_index) = populated(seed, 300);
        assert!(
            original.store().current_revision() > 50,
            "the workload writes (seed {seed}: {})",
            original.store().current_revision()
        );
        assert!(original.store().compact_revision() > 0, "and compacts");
        assert!(original.auth().role_list().len() > 1);
        seeds_with_leases += usize::from(!original.lessor().is_empty());
        assert_leases_match_store(&original);
        let bytes = original.snapshot();
        assert_eq!(original.snapshot_len_bytes(), bytes.len());
        let reused = original.snapshot_into(b"old content".repeat(1000));
        assert_eq!(reused, bytes, "a reused buffer holds the same bytes");
        let restored = StateMachine::restore(config(), &bytes).unwrap();
        assert_same_answers(&original, &restored);
        assert_eq!(restored.snapshot(), bytes, "re-encoding is byte-identical");
        // Both go on identically.
        let (mut a, mut b) = (original, restored);
        let mut rng = Lcg(seed + 100);
        for index in last_index + 1..last_index + 100 {
            let request = random_request(&mut rng, a.store().current_revision());
            let e = entry(index, request);
            assert_eq!(a.apply(&e), b.apply(&e));
            assert_leases_match_store(&a);
        }
        assert_same_answers(&a, &b);
    }
    assert!(
        seeds_with_leases > 0,
        "the workload keeps some leases alive"
    );
}

#[test]
fn empty_state_round_trips() {
    let sm = fresh();
    assert_eq!(sm.snapshot_len_bytes(), sm.snapshot().len());
    let restored = StateMachine::restore(config(), &sm.snapshot()).unwrap();
    assert_same_answers(&sm, &restored);
}

#[test]
fn corrupt_or_truncated_bytes_are_rejected() {
    let (sm, _) = populated(7, 100);
    let bytes = sm.snapshot();
    for position in (0..bytes.len()).step_by(7).chain(0..16) {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x40;
        assert!(
            StateMachine::restore(config(), &damaged).is_err(),
            "flip at {position}"
        );
    }
    for len in (0..bytes.len()).step_by(13) {
        assert!(
            StateMachine::restore(config(), &bytes[..len]).is_err(),
            "truncated to {len}"
        );
    }
    assert_eq!(
        StateMachine::restore(config(), b"short").unwrap_err(),
        SnapshotError::Truncated
    );
    let mut damaged = bytes.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert_eq!(
        StateMachine::restore(config(), &damaged).unwrap_err(),
        SnapshotError::ChecksumMismatch
    );
    // A valid checksum over a wrong header is still refused.
    let mut wrong = b"NOTKEEL!".to_vec();
    wrong.extend_from_slice(&bytes[8..bytes.len() - 4]);
    let crc = crc32fast::hash(&wrong);
    wrong.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(
        StateMachine::restore(config(), &wrong).unwrap_err(),
        SnapshotError::BadHeader
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut framed = b"KEELSNAP\x01".to_vec();
        framed.extend_from_slice(&bytes);
        let crc = crc32fast::hash(&framed);
        framed.extend_from_slice(&crc.to_le_bytes());
        prop_assert!(StateMachine::restore(config(), &framed).is_err());
        prop_assert!(StateMachine::restore(config(), &bytes).is_err());
    }
}

#[test]
fn a_snapshot_whose_sections_break_an_invariant_is_refused() {
    let mut cluster = fresh().cluster().snapshot();
    let shared = cluster.members[0].peer_urls.clone();
    cluster.members[1].peer_urls = shared;
    let broken = Cluster::restore(cluster).unwrap();
    assert!(broken.check_invariants().is_err());
    let bytes = StateMachine::new(config(), broken).snapshot();
    let got = StateMachine::restore(config(), &bytes)
        .err()
        .map(|e| e.to_string());
    let got = got.unwrap_or_default();
    assert!(
        got.starts_with("snapshot: invalid state: cluster invariant violated: peer URL"),
        "{got}"
    );
    assert!(StateMachine::restore(config(), &fresh().snapshot()).is_ok());
}
