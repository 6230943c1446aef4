//! Users and roles (etcd `authpb.User`, `authpb.Role`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Permission, ROOT};

/// A user: a bcrypt password hash (none for `no_password` users, who can
/// only authenticate by other means such as TLS common names) and roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique, non-empty name.
    pub name: String,
    /// bcrypt hash (`$2b$...`); `None` for a `no_password` user.
    pub password_hash: Option<String>,
    /// Granted role names, ascending.
    pub roles: BTreeSet<String>,
}

impl User {
    /// True when the user has the `root` role (all permissions).
    pub fn has_root_role(&self) -> bool {
        self.roles.contains(ROOT)
    }
}

/// A role: permissions over key ranges, sorted by key as etcd keeps them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Unique, non-empty name.
    pub name: String,
    /// Permissions, ascending by `(key, range_end)`; at most one per range.
    pub permissions: Vec<Permission>,
}
