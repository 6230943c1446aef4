//! keel's replicated state written as an etcd 3.4 backend (the reverse of
//! [`super::convert`]): the buckets etcd's `mvcc/kvstore.go`,
//! `lease/lessor.go`, `auth/store.go`,
//! `etcdserver/api/membership/store.go` and `etcdserver/api/v3alarm`
//! write, in a fresh bbolt image ([`crate::bbolt::write`]).
//!
//! * `key`: every stored version under its revision key (17 bytes, a
//!   trailing `t` for a delete), the value an `mvccpb.KeyValue` (a delete:
//!   the key only). A key whose oldest kept version is a delete at the
//!   compaction revision has no entry (etcd's compaction removed it).
//! * `meta`: `consistent_index` (8 bytes big-endian, the applied index),
//!   `scheduledCompactRev` and `finishedCompactRev` (revision keys) once
//!   compacted.
//! * `lease`: id (8 bytes big-endian) -> `leasepb.Lease`.
//! * `auth`: `authEnabled` (`[1]` or `[0]`), `authRevision` (8 bytes
//!   big-endian); `authUsers` / `authRoles`: name -> `authpb.User` /
//!   `authpb.Role`.
//! * `members`: hex id -> the member's JSON; `members_removed`: hex id ->
//!   `removed`; `cluster`: `clusterVersion` -> `3.4.0`; `alarm`:
//!   `etcdserverpb.AlarmMember` -> empty.

use std::collections::BTreeMap;

use keel_kernel::apply::{AlarmType, StateMachineConfig, StateParts};
use keel_kernel::auth::{PermissionType, Role, User};
use keel_kernel::membership::Member;
use keel_kernel::mvcc::ImportedVersion;
use prost::Message;

use super::{proto, revision};
use crate::bbolt::write::{BucketData, write_db};
use crate::error::SnapshotError;
use crate::keel_file;

/// The cluster version written to the `cluster` bucket.
pub const CLUSTER_VERSION: &str = "3.4.0";

/// The state-machine setting used only to decode (it is not part of the
/// snapshot and does not change what is exported).
const DECODE_ELECTION_TIMEOUT_MS: u64 = 1000;

/// Transaction id of the written database's newest meta page.
const TXID: u64 = 2;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// `parts` as an etcd 3.4 bbolt database image (without the SHA-256 that
/// `snapshot save` appends), 4096-byte pages.
///
/// Errors: [`SnapshotError::Export`] when a key or value exceeds bbolt's
/// limits (keel's own request limits keep them far below).
pub fn to_bolt(parts: &StateParts) -> Result<Vec<u8>, SnapshotError> {
    let mut buckets: BTreeMap<&[u8], Entries> = BTreeMap::new();
    buckets.insert(b"key", key_bucket(parts));
    buckets.insert(b"meta", meta_bucket(parts));
    buckets.insert(b"lease", lease_bucket(parts));
    buckets.insert(b"auth", auth_bucket(parts));
    buckets.insert(b"authUsers", users_bucket(&parts.auth.users));
    buckets.insert(b"authRoles", roles_bucket(&parts.auth.roles));
    buckets.insert(b"members", members_bucket(&parts.cluster.members));
    buckets.insert(b"members_removed", removed_bucket(&parts.cluster.removed));
    buckets.insert(
        b"cluster",
        vec![(
            b"clusterVersion".to_vec(),
            CLUSTER_VERSION.as_bytes().to_vec(),
        )],
    );
    buckets.insert(b"alarm", alarm_bucket(parts));
    let data: Vec<BucketData> = buckets
        .into_iter()
        .map(|(name, mut entries)| {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            BucketData {
                name: name.to_vec(),
                entries,
            }
        })
        .collect();
    Ok(write_db(&data, TXID)?)
}

/// A keel state-machine snapshot (`KEELSNAP`, as the kernel's
/// `StateMachine::snapshot` encodes it, padded or not) as an etcd 3.4 bbolt
/// image: what keel's Maintenance.Snapshot streams.
///
/// Errors: [`SnapshotError::CorruptKeel`] / [`SnapshotError::Truncated`]
/// when the keel snapshot does not decode; [`SnapshotError::Export`].
pub fn from_keel_snapshot(keel_snapshot: &[u8]) -> Result<Vec<u8>, SnapshotError> {
    let config = StateMachineConfig::new(DECODE_ELECTION_TIMEOUT_MS);
    let parts = keel_file::decode(keel_snapshot, config)?.into_parts();
    to_bolt(&parts)
}

/// etcd's revision key (`revToBytes`): main and sub big-endian around `_`,
/// with `t` appended for a tombstone.
pub fn revision_key(main: i64, sub: i64, tombstone: bool) -> Vec<u8> {
    let mut key = Vec::with_capacity(revision::REVISION_BYTES + 1);
    key.extend_from_slice(&main.to_be_bytes());
    key.push(b'_');
    key.extend_from_slice(&sub.to_be_bytes());
    if tombstone {
        key.push(b't');
    }
    key
}

fn key_bucket(parts: &StateParts) -> Entries {
    let mut entries = Vec::new();
    let mut previous_key: Option<Vec<u8>> = None;
    for version in parts.store.export_versions() {
        let first_of_key = previous_key.as_deref() != Some(version.key.as_slice());
        if first_of_key {
            previous_key = Some(version.key.clone());
        }
        if first_of_key && version.value.is_none() {
            continue; // a delete whose put was compacted away
        }
        entries.push(key_entry(version));
    }
    entries
}

fn key_entry(version: ImportedVersion) -> (Vec<u8>, Vec<u8>) {
    let tombstone = version.value.is_none();
    let key = revision_key(version.revision.main, version.revision.sub, tombstone);
    let kv = match version.value {
        None => proto::KeyValue {
            key: version.key,
            create_revision: 0,
            mod_revision: 0,
            version: 0,
            value: Vec::new(),
            lease: 0,
        },
        Some(value) => proto::KeyValue {
            key: version.key,
            create_revision: version.create_revision,
            mod_revision: version.revision.main,
            version: version.version,
            value,
            lease: version.lease,
        },
    };
    (key, kv.encode_to_vec())
}

fn meta_bucket(parts: &StateParts) -> Entries {
    let mut entries = vec![(
        b"consistent_index".to_vec(),
        parts.applied_index.to_be_bytes().to_vec(),
    )];
    let compacted = parts.store.compact_revision();
    if compacted > 0 {
        let at = revision_key(compacted, 0, false);
        entries.push((b"finishedCompactRev".to_vec(), at.clone()));
        entries.push((b"scheduledCompactRev".to_vec(), at));
    }
    entries
}

fn lease_bucket(parts: &StateParts) -> Entries {
    parts
        .leases
        .iter()
        .map(|lease| {
            let value = proto::Lease {
                id: lease.id,
                ttl: lease.ttl_secs,
                remaining_ttl: lease.remaining_ttl_secs,
            };
            (lease.id.to_be_bytes().to_vec(), value.encode_to_vec())
        })
        .collect()
}

fn auth_bucket(parts: &StateParts) -> Entries {
    vec![
        (b"authEnabled".to_vec(), vec![u8::from(parts.auth.enabled)]),
        (
            b"authRevision".to_vec(),
            parts.auth.revision.to_be_bytes().to_vec(),
        ),
    ]
}

fn users_bucket(users: &[User]) -> Entries {
    users
        .iter()
        .map(|user| {
            let value = proto::User {
                name: user.name.as_bytes().to_vec(),
                password: user
                    .password_hash
                    .as_deref()
                    .unwrap_or_default()
                    .as_bytes()
                    .to_vec(),
                roles: user.roles.iter().cloned().collect(),
                options: Some(proto::UserAddOptions {
                    no_password: user.password_hash.is_none(),
                }),
            };
            (user.name.as_bytes().to_vec(), value.encode_to_vec())
        })
        .collect()
}

fn roles_bucket(roles: &[Role]) -> Entries {
    roles
        .iter()
        .map(|role| {
            let value = proto::Role {
                name: role.name.as_bytes().to_vec(),
                key_permission: role
                    .permissions
                    .iter()
                    .map(|p| proto::Permission {
                        perm_type: match p.perm_type {
                            PermissionType::Read => 0,
                            PermissionType::Write => 1,
                            PermissionType::ReadWrite => 2,
                        },
                        key: p.key.clone(),
                        range_end: p.range_end.clone(),
                    })
                    .collect(),
            };
            (role.name.as_bytes().to_vec(), value.encode_to_vec())
        })
        .collect()
}

fn members_bucket(members: &[Member]) -> Entries {
    members
        .iter()
        .map(|m| {
            (
                format!("{:x}", m.id).into_bytes(),
                member_json(m).into_bytes(),
            )
        })
        .collect()
}

/// A member as Go's `encoding/json` marshals etcd's `membership.Member`:
/// `id`, `peerURLs`, then `isLearner`, `name` and `clientURLs` when set.
pub fn member_json(member: &Member) -> String {
    let strings = |list: &[String]| serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
    let mut json = format!(
        "{{\"id\":{},\"peerURLs\":{}",
        member.id,
        strings(&member.peer_urls)
    );
    if member.is_learner {
        json.push_str(",\"isLearner\":true");
    }
    if !member.name.is_empty() {
        let name = serde_json::to_string(&member.name).unwrap_or_else(|_| "\"\"".into());
        json.push_str(&format!(",\"name\":{name}"));
    }
    if !member.client_urls.is_empty() {
        json.push_str(&format!(",\"clientURLs\":{}", strings(&member.client_urls)));
    }
    json.push('}');
    json
}

fn removed_bucket(removed: &[u64]) -> Entries {
    removed
        .iter()
        .map(|id| (format!("{id:x}").into_bytes(), b"removed".to_vec()))
        .collect()
}

fn alarm_bucket(parts: &StateParts) -> Entries {
    parts
        .alarms
        .iter()
        .map(|a| {
            let key = proto::AlarmMember {
                member_id: a.member_id,
                alarm: match a.alarm {
                    AlarmType::None => 0,
                    AlarmType::NoSpace => 1,
                    AlarmType::Corrupt => 2,
                },
            };
            (key.encode_to_vec(), Vec::new())
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use std::collections::BTreeSet;

    use keel_kernel::apply::AlarmMember;
    use keel_kernel::auth::{AuthSnapshot, Permission};
    use keel_kernel::lease::LeaseSnapshot;
    use keel_kernel::membership::ClusterSnapshot;
    use keel_kernel::mvcc::{Revision, Store};

    use super::*;
    use crate::bbolt::{BoltError, Db};
    use crate::etcd::{convert, status};

    fn version(key: &str, main: i64, sub: i64, create: i64, n: i64, lease: i64) -> ImportedVersion {
        ImportedVersion {
            key: key.as_bytes().to_vec(),
            revision: Revision::new(main, sub),
            create_revision: create,
            version: n,
            lease,
            value: Some(format!("{key}@{main}").into_bytes()),
        }
    }

    fn deleted(key: &str, main: i64) -> ImportedVersion {
        ImportedVersion {
            create_revision: 0,
            version: 0,
            value: None,
            ..version(key, main, 0, 0, 0, 0)
        }
    }

    /// A state with history, a compaction, a lease, auth and members.
    fn parts() -> StateParts {
        let versions = vec![
            version("a", 2, 0, 2, 1, 0),
            version("a", 5, 1, 2, 2, 0),
            deleted("a", 6),
            version("a", 8, 0, 8, 1, 0),
            version("b", 3, 0, 3, 1, 0),
            version("big", 4, 0, 4, 1, 0),
            version("c", 5, 0, 5, 1, 0x77),
            version("d", 7, 0, 7, 1, 0),
            deleted("d", 9),
        ];
        let mut versions = versions;
        versions[5].value = Some(vec![b'x'; 10_000]); // spans overflow pages
        let store = Store::import(9, 4, versions).unwrap();
        StateParts {
            store,
            leases: vec![LeaseSnapshot {
                id: 0x77,
                ttl_secs: 600,
                remaining_ttl_secs: 0,
                keys: vec![b"c".to_vec()],
            }],
            auth: AuthSnapshot {
                enabled: false,
                revision: 7,
                users: vec![
                    User {
                        name: "alice".into(),
                        password_hash: Some("$2a$10$abcdefghijklmnopqrstuv".into()),
                        roles: BTreeSet::from(["reader".to_owned()]),
                    },
                    User {
                        name: "bob".into(),
                        password_hash: None,
                        roles: BTreeSet::new(),
                    },
                ],
                roles: vec![Role {
                    name: "reader".into(),
                    permissions: vec![Permission {
                        perm_type: PermissionType::Read,
                        key: b"key/".to_vec(),
                        range_end: b"key0".to_vec(),
                    }],
                }],
            },
            cluster: ClusterSnapshot {
                cluster_id: 9,
                members: vec![Member {
                    id: 0x8e9e_05c5_2164_694d,
                    name: "default".into(),
                    peer_urls: vec!["http://localhost:2380".into()],
                    client_urls: vec!["http://localhost:2379".into()],
                    is_learner: false,
                }],
                removed: vec![5],
            },
            alarms: vec![AlarmMember {
                member_id: 0x8e9e_05c5_2164_694d,
                alarm: AlarmType::NoSpace,
            }],
            applied_index: 42,
            applied_term: 3,
        }
    }

    #[test]
    fn exported_state_converts_back_to_the_same_state() {
        let original = parts();
        let image = to_bolt(&original).unwrap();
        let back = convert::to_parts(&image).unwrap();
        assert_eq!(back.store, original.store);
        assert_eq!(back.leases, original.leases);
        assert_eq!(back.auth, original.auth);
    }

    fn bucket(image: &[u8], name: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let db = Db::open(image).unwrap();
        let bucket = db.bucket(name).unwrap().unwrap();
        let mut out = Vec::new();
        db.for_each(bucket, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok::<(), BoltError>(())
        })
        .unwrap();
        out
    }

    #[test]
    fn buckets_hold_what_etcd_writes() {
        let image = to_bolt(&parts()).unwrap();
        let names: Vec<Vec<u8>> = Db::open(&image)
            .unwrap()
            .buckets()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n.to_vec())
            .collect();
        let expected: Vec<&[u8]> = vec![
            b"alarm",
            b"auth",
            b"authRoles",
            b"authUsers",
            b"cluster",
            b"key",
            b"lease",
            b"members",
            b"members_removed",
            b"meta",
        ];
        assert_eq!(names, expected);
        let meta = bucket(&image, b"meta");
        assert_eq!(
            meta[0],
            (b"consistent_index".to_vec(), 42u64.to_be_bytes().to_vec())
        );
        assert_eq!(meta[1].1, revision_key(4, 0, false));
        assert_eq!(meta[2].0, b"scheduledCompactRev".to_vec());
        let keys = bucket(&image, b"key");
        // Compaction at 4 keeps a@2 (a's value at 4); d's delete at 9 is a
        // tombstone key; the sub-revision of a@5.1 is in its key.
        assert_eq!(keys.len(), 9);
        assert_eq!(keys[0].0, revision_key(2, 0, false));
        assert!(keys.iter().any(|(k, _)| *k == revision_key(5, 1, false)));
        assert_eq!(keys[8].0, revision_key(9, 0, true));
        let tombstone = proto::KeyValue::decode(keys[8].1.as_slice()).unwrap();
        assert_eq!(
            (tombstone.key.as_slice(), tombstone.mod_revision),
            (&b"d"[..], 0)
        );
        let members = bucket(&image, b"members");
        assert_eq!(members[0].0, b"8e9e05c52164694d".to_vec());
        assert_eq!(
            String::from_utf8(members[0].1.clone()).unwrap(),
            format!(
                "{{\"id\":{},\"peerURLs\":[\"http://localhost:2380\"],\"name\":\"default\",\"clientURLs\":[\"http://localhost:2379\"]}}",
                0x8e9e_05c5_2164_694d_u64
            )
        );
        assert_eq!(
            bucket(&image, b"members_removed"),
            [(b"5".to_vec(), b"removed".to_vec())]
        );
        let auth = bucket(&image, b"auth");
        assert_eq!(auth[0], (b"authEnabled".to_vec(), vec![0]));
        assert_eq!(bucket(&image, b"alarm").len(), 1);
        let etcd_status = status::status(&image).unwrap();
        assert_eq!(etcd_status.revision, 9);
        assert_eq!(etcd_status.total_size_bytes, image.len() as u64);
    }
}
