//! An etcd v3 database turned into keel's replicated state: every stored
//! version of every key (`key` bucket) with its revisions, version, lease
//! and value; the compaction revision (`meta` bucket); the leases (`lease`
//! bucket, their keys found from the keys' current versions, as etcd's
//! lessor does on recovery); users, roles, the auth revision and enabled
//! flag (`auth`, `authUsers`, `authRoles`). Membership, alarms and the
//! consistent index do not come over: the restored cluster has its own.

use std::collections::{BTreeMap, BTreeSet};

use keel_kernel::apply::StateParts;
use keel_kernel::auth::{AuthSnapshot, Permission, PermissionType, Role, User};
use keel_kernel::lease::LeaseSnapshot;
use keel_kernel::membership::ClusterSnapshot;
use keel_kernel::mvcc::{ImportedVersion, Store};
use prost::Message;

use super::{proto, revision};
use crate::bbolt::{Bucket, Db};
use crate::error::SnapshotError;

/// Most versions read from the `key` bucket (each costs memory while the
/// store is built; 2^32 is far beyond etcd's 8 GiB backend limit).
const VERSIONS_MAX: usize = 1 << 32;

fn invalid(why: String) -> SnapshotError {
    SnapshotError::InvalidEtcd(why)
}

/// Reads the etcd database in `data` into state parts with an empty
/// membership and applied index 0 (restore sets both).
///
/// Errors: [`SnapshotError::CorruptBolt`] for damaged pages;
/// [`SnapshotError::InvalidEtcd`] for missing buckets, undecodable values,
/// or key histories that break etcd's own rules.
pub fn to_parts(data: &[u8]) -> Result<StateParts, SnapshotError> {
    let db = Db::open(data)?;
    let buckets: BTreeMap<&[u8], Bucket<'_>> = db.buckets()?.into_iter().collect();
    let key_bucket = *buckets
        .get(&b"key"[..])
        .ok_or_else(|| invalid("no `key` bucket".to_owned()))?;
    let mut versions = read_versions(&db, key_bucket)?;
    let compact_revision = read_compact_revision(&db, buckets.get(&b"meta"[..]).copied())?;
    let last_main = versions.iter().map(|v| v.revision.main).max().unwrap_or(0);
    let current_revision = last_main.max(compact_revision).max(1);
    versions.sort_by(|a, b| (&a.key, a.revision).cmp(&(&b.key, b.revision)));
    let leases = read_leases(&db, buckets.get(&b"lease"[..]).copied(), &versions)?;
    let store = Store::import(current_revision, compact_revision, versions)
        .map_err(|e| invalid(e.to_string()))?;
    let auth = read_auth(&db, &buckets)?;
    Ok(StateParts {
        store,
        leases,
        auth,
        cluster: ClusterSnapshot {
            cluster_id: 0,
            members: Vec::new(),
            removed: Vec::new(),
        },
        alarms: Vec::new(),
        applied_index: 0,
        applied_term: 0,
    })
}

/// Every version in the `key` bucket, in revision order.
fn read_versions(db: &Db<'_>, bucket: Bucket<'_>) -> Result<Vec<ImportedVersion>, SnapshotError> {
    let mut versions = Vec::new();
    db.for_each(bucket, |key, value| {
        if versions.len() >= VERSIONS_MAX {
            return Err(invalid(format!("more than {VERSIONS_MAX} stored versions")));
        }
        let at = revision::parse(key).map_err(invalid)?;
        let kv = proto::KeyValue::decode(value)
            .map_err(|e| invalid(format!("the version at revision {}: {e}", at.revision.main)))?;
        if !at.tombstone && kv.mod_revision != at.revision.main {
            return Err(invalid(format!(
                "the version at revision {} says mod_revision {}",
                at.revision.main, kv.mod_revision
            )));
        }
        versions.push(ImportedVersion {
            key: kv.key,
            revision: at.revision,
            create_revision: kv.create_revision,
            version: kv.version,
            lease: kv.lease,
            value: (!at.tombstone).then_some(kv.value),
        });
        Ok(())
    })?;
    Ok(versions)
}

/// The scheduled compaction's main revision (`meta/scheduledCompactRev`);
/// -1 when never compacted (keel's value for that).
fn read_compact_revision(db: &Db<'_>, meta: Option<Bucket<'_>>) -> Result<i64, SnapshotError> {
    let Some(meta) = meta else {
        return Ok(-1);
    };
    let mut compact = -1;
    db.for_each(meta, |key, value| {
        if key == b"scheduledCompactRev" {
            compact = revision::parse(value)
                .map_err(|why| invalid(format!("scheduledCompactRev: {why}")))?
                .revision
                .main;
        }
        Ok::<(), SnapshotError>(())
    })?;
    Ok(if compact > 0 { compact } else { -1 })
}

/// The leases, each with the keys whose current version names it.
fn read_leases(
    db: &Db<'_>,
    bucket: Option<Bucket<'_>>,
    sorted_versions: &[ImportedVersion],
) -> Result<Vec<LeaseSnapshot>, SnapshotError> {
    let mut leases: BTreeMap<i64, LeaseSnapshot> = BTreeMap::new();
    if let Some(bucket) = bucket {
        db.for_each(bucket, |_, value| {
            let lease =
                proto::Lease::decode(value).map_err(|e| invalid(format!("a lease: {e}")))?;
            if lease.id == 0 {
                return Err(invalid("a lease with id 0".to_owned()));
            }
            leases.insert(
                lease.id,
                LeaseSnapshot {
                    id: lease.id,
                    ttl_secs: lease.ttl,
                    remaining_ttl_secs: lease.remaining_ttl,
                    keys: Vec::new(),
                },
            );
            Ok(())
        })?;
    }
    for current in current_versions(sorted_versions) {
        if let (Some(_), Some(lease)) = (&current.value, leases.get_mut(&current.lease)) {
            lease.keys.push(current.key.clone());
        }
    }
    Ok(leases.into_values().collect())
}

/// The newest version of each key (input sorted by key, then revision).
fn current_versions(sorted: &[ImportedVersion]) -> impl Iterator<Item = &ImportedVersion> {
    sorted
        .iter()
        .enumerate()
        .filter(|(i, v)| sorted.get(i + 1).is_none_or(|next| next.key != v.key))
        .map(|(_, v)| v)
}

/// Users, roles, the enabled flag and the auth revision.
fn read_auth(
    db: &Db<'_>,
    buckets: &BTreeMap<&[u8], Bucket<'_>>,
) -> Result<AuthSnapshot, SnapshotError> {
    let mut auth = AuthSnapshot {
        enabled: false,
        revision: 1,
        users: Vec::new(),
        roles: Vec::new(),
    };
    if let Some(bucket) = buckets.get(&b"auth"[..]) {
        db.for_each(*bucket, |key, value| {
            match key {
                b"authEnabled" => auth.enabled = value == [1],
                b"authRevision" => {
                    let bytes: [u8; 8] = value
                        .try_into()
                        .map_err(|_| invalid("authRevision is not 8 bytes".to_owned()))?;
                    auth.revision = u64::from_be_bytes(bytes);
                }
                _ => {}
            }
            Ok::<(), SnapshotError>(())
        })?;
    }
    if let Some(bucket) = buckets.get(&b"authUsers"[..]) {
        db.for_each(*bucket, |_, value| {
            auth.users.push(to_user(value)?);
            Ok::<(), SnapshotError>(())
        })?;
    }
    if let Some(bucket) = buckets.get(&b"authRoles"[..]) {
        db.for_each(*bucket, |_, value| {
            auth.roles.push(to_role(value)?);
            Ok::<(), SnapshotError>(())
        })?;
    }
    Ok(auth)
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String, SnapshotError> {
    String::from_utf8(bytes).map_err(|_| invalid(format!("{what} is not UTF-8")))
}

fn to_user(value: &[u8]) -> Result<User, SnapshotError> {
    let user = proto::User::decode(value).map_err(|e| invalid(format!("a user: {e}")))?;
    let name = utf8(user.name, "a user name")?;
    let no_password = user.options.is_some_and(|o| o.no_password) || user.password.is_empty();
    let password_hash = if no_password {
        None
    } else {
        Some(utf8(user.password, "a password hash")?)
    };
    Ok(User {
        name,
        password_hash,
        roles: user.roles.into_iter().collect::<BTreeSet<_>>(),
    })
}

fn to_role(value: &[u8]) -> Result<Role, SnapshotError> {
    let role = proto::Role::decode(value).map_err(|e| invalid(format!("a role: {e}")))?;
    let name = utf8(role.name, "a role name")?;
    let mut permissions = role
        .key_permission
        .into_iter()
        .map(|p| {
            let perm_type = match p.perm_type {
                0 => PermissionType::Read,
                1 => PermissionType::Write,
                2 => PermissionType::ReadWrite,
                other => return Err(invalid(format!("role {name}: permission type {other}"))),
            };
            Ok(Permission {
                perm_type,
                key: p.key,
                range_end: p.range_end,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    permissions.sort_by(|a, b| (&a.key, &a.range_end).cmp(&(&b.key, &b.range_end)));
    permissions.dedup_by(|a, b| (&a.key, &a.range_end) == (&b.key, &b.range_end));
    Ok(Role { name, permissions })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use keel_kernel::mvcc::RangeRequest;

    /// etcd 3.4.23: put k1 k2 k3 (revisions 2-4), del k2 (5), lease grant
    /// 100 s, put lk with it (6), root user, role r1 with readwrite on
    /// prefix k, user u1 with r1, compact 3.
    const ETCD_DB: &[u8] = include_bytes!("../../tests/data/etcd-3.4.db");

    #[test]
    fn converts_keys_leases_and_auth() {
        let data = crate::format::strip_hash(ETCD_DB, false).unwrap();
        let parts = to_parts(data).unwrap();
        assert_eq!(parts.store.current_revision(), 6);
        assert_eq!(parts.store.compact_revision(), 3);
        let all = parts
            .store
            .range(&RangeRequest {
                key: vec![0],
                range_end: vec![0],
                ..RangeRequest::default()
            })
            .unwrap();
        let keys: Vec<_> = all
            .kvs
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(&kv.key).into_owned(),
                    kv.mod_revision,
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("k1".to_owned(), 2),
                ("k3".to_owned(), 4),
                ("lk".to_owned(), 6)
            ]
        );
        assert_eq!(parts.leases.len(), 1);
        assert_eq!(parts.leases[0].ttl_secs, 100);
        assert_eq!(parts.leases[0].keys, [b"lk".to_vec()]);
        let users: Vec<_> = parts.auth.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(users, ["root", "u1"]);
        assert!(parts.auth.users[1].roles.contains("r1"));
        assert_eq!(parts.auth.roles[0].name, "r1");
        assert_eq!(
            parts.auth.roles[0].permissions[0].perm_type,
            PermissionType::ReadWrite
        );
    }
}
