//! Per-user merged permission ranges (etcd `auth/range_perm_cache.go`),
//! rebuilt on every auth change so that a permission check is a binary
//! search instead of a walk over every role.

use std::collections::BTreeMap;

use super::{KeyRange, Permission, PermissionType, Role, User};

/// The key ranges one user may read and may write, each merged into sorted,
/// disjoint intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct RangePerms {
    read: Vec<KeyRange>,
    write: Vec<KeyRange>,
}

impl RangePerms {
    /// The merged ranges of `user`'s roles (roles missing from `roles` give
    /// nothing; the `root` role is handled by the caller).
    pub fn build(user: &User, roles: &BTreeMap<String, Role>) -> RangePerms {
        let permissions: Vec<&Permission> = user
            .roles
            .iter()
            .filter_map(|name| roles.get(name))
            .flat_map(|role| role.permissions.iter())
            .collect();
        let ranges = |need: PermissionType| {
            let allowed = permissions.iter().filter(|p| p.perm_type.allows(need));
            KeyRange::merge(allowed.map(|p| p.key_range()).collect())
        };
        RangePerms {
            read: ranges(PermissionType::Read),
            write: ranges(PermissionType::Write),
        }
    }

    /// True when the user may do a `need` (`Read` or `Write`) operation on
    /// every key of `want`.
    pub fn allows(&self, want: &KeyRange, need: PermissionType) -> bool {
        let merged = if need == PermissionType::Read {
            &self.read
        } else {
            &self.write
        };
        KeyRange::merged_covers(merged, want)
    }
}

/// The merged ranges of every user.
pub(super) fn build_all(
    users: &BTreeMap<String, User>,
    roles: &BTreeMap<String, Role>,
) -> BTreeMap<String, RangePerms> {
    users
        .iter()
        .map(|(name, user)| (name.clone(), RangePerms::build(user, roles)))
        .collect()
}
