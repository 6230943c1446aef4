//! The users, roles, keys and leases of the authorization matrix, set up
//! the same way on etcd and keel through raw gRPC, and the principals
//! (tokens) the requests are sent as.

use keel_server::proto::authpb::{Permission, permission::Type};
use keel_server::proto::etcdserverpb as pb;
use tonic::transport::Channel;

use super::call::{authed, must};

/// Lease of root's, attached to `/b/lease` (read by bob, written by no one
/// but root).
pub const LEASE_B: i64 = 7002;

/// A role: name and its permissions `(type, key, range_end)`.
type RoleSpec = (&'static str, &'static [(Type, &'static str, &'static str)]);

const ROLES: &[RoleSpec] = &[
    ("a-rw", &[(Type::Readwrite, "/a/", "/a0")]),
    ("b-r", &[(Type::Read, "/b/", "/b0")]),
    ("shared-rw", &[(Type::Readwrite, "/shared", "")]),
    ("w-only", &[(Type::Write, "/w/", "/w0")]),
    ("erin-rw", &[(Type::Readwrite, "/a/", "/a0")]),
    ("frank-rw", &[(Type::Readwrite, "/a/", "/a0")]),
];

/// Users, their roles; every password is `<name>pw`.
const USERS: &[(&str, &[&str])] = &[
    ("root", &["root"]),
    ("alice", &["a-rw"]),
    ("bob", &["b-r", "shared-rw"]),
    ("carol", &[]),
    ("wally", &["w-only"]),
    ("dave", &["a-rw"]),
    ("erin", &["erin-rw"]),
    ("frank", &["frank-rw"]),
    ("gina", &["a-rw"]),
];

/// Who a request is sent as: a name for reports and the token, if any.
#[derive(Clone, Debug)]
pub struct Principal {
    /// `alice`, `anonymous`, `made-up`, `dave(deleted)`, ...
    pub name: &'static str,
    /// The token sent in `token` metadata.
    pub token: Option<String>,
}

fn permission(perm_type: Type, key: &str, range_end: &str) -> Permission {
    Permission {
        perm_type: perm_type as i32,
        key: key.as_bytes().to_vec().into(),
        range_end: range_end.as_bytes().to_vec().into(),
    }
}

async fn put(channel: &Channel, key: &str, lease: i64) {
    let put = pb::PutRequest {
        key: key.as_bytes().to_vec().into(),
        value: b"v".to_vec().into(),
        lease,
        ..pb::PutRequest::default()
    };
    let mut kv = pb::kv_client::KvClient::new(channel.clone());
    must(kv.put(put.clone()).await);
}

async fn add_roles_and_users(channel: &Channel) {
    let mut auth = pb::auth_client::AuthClient::new(channel.clone());
    for (role, perms) in ROLES {
        let name = role.to_string();
        must(
            auth.role_add(pb::AuthRoleAddRequest { name: name.clone() })
                .await,
        );
        for (perm_type, key, end) in perms.iter() {
            let grant = pb::AuthRoleGrantPermissionRequest {
                name: name.clone(),
                perm: Some(permission(*perm_type, key, end)),
            };
            must(auth.role_grant_permission(grant.clone()).await);
        }
    }
    for (user, roles) in USERS {
        let add = pb::AuthUserAddRequest {
            name: user.to_string(),
            password: format!("{user}pw"),
            ..pb::AuthUserAddRequest::default()
        };
        must(auth.user_add(add.clone()).await);
        for role in roles.iter() {
            let grant = pb::AuthUserGrantRoleRequest {
                user: user.to_string(),
                role: role.to_string(),
            };
            must(auth.user_grant_role(grant.clone()).await);
        }
    }
}

/// Users, roles, keys `/a/1 /b/1 /shared /w/1 /z/1`, lease [`LEASE_B`] on
/// `/b/lease`; auth enabled. Returns root's token.
pub async fn set_up(channel: &Channel) -> String {
    add_roles_and_users(channel).await;
    for key in ["/a/1", "/b/1", "/shared", "/w/1", "/z/1"] {
        put(channel, key, 0).await;
    }
    let mut lease = pb::lease_client::LeaseClient::new(channel.clone());
    let grant = pb::LeaseGrantRequest {
        ttl: 3600,
        id: LEASE_B,
    };
    must(lease.lease_grant(grant).await);
    put(channel, "/b/lease", LEASE_B).await;
    let mut auth = pb::auth_client::AuthClient::new(channel.clone());
    must(auth.auth_enable(pb::AuthEnableRequest {}).await);
    login(channel, "root").await
}

/// Logs `user` in with its password; returns the token.
pub async fn login(channel: &Channel, user: &str) -> String {
    let mut auth = pb::auth_client::AuthClient::new(channel.clone());
    let request = pb::AuthenticateRequest {
        name: user.to_string(),
        password: format!("{user}pw"),
    };
    must(auth.authenticate(request.clone()).await).token
}

/// The principals that log in as a user, named `user` or `user(what
/// happens to it)`.
pub const USER_PRINCIPALS: [&str; 8] = [
    "alice",
    "bob",
    "carol",
    "wally(write-only)",
    "dave(deleted)",
    "erin(role revoked)",
    "frank(permission revoked)",
    "gina(password changed)",
];

/// The principals without a user of their own.
pub const OTHER_PRINCIPALS: [&str; 3] = ["anonymous", "made-up", "root"];

/// The user a principal's name stands for.
fn user_of(name: &str) -> &str {
    name.split('(').next().unwrap_or(name)
}

/// Every principal, root last (its admin steps change what follows):
/// users with prefix, single-key, read-only and write-only grants, one
/// without roles, anonymous, a made-up token and stale tokens of a deleted
/// user, a user whose role was revoked, a user whose role lost its
/// permission and a user whose password changed.
pub async fn principals(channel: &Channel, root: &str) -> Vec<Principal> {
    let mut tokens = Vec::new();
    for name in USER_PRINCIPALS {
        tokens.push(login(channel, user_of(name)).await);
    }
    make_stale(channel, root).await;
    let mut principals: Vec<Principal> = USER_PRINCIPALS
        .into_iter()
        .zip(tokens)
        .map(|(name, token)| Principal {
            name,
            token: Some(token),
        })
        .collect();
    principals.push(Principal {
        name: "anonymous",
        token: None,
    });
    principals.push(Principal {
        name: "made-up",
        token: Some("madeuptoken.42".to_string()),
    });
    principals.push(Principal {
        name: "root",
        token: Some(root.to_string()),
    });
    principals
}

/// Deletes dave, revokes erin's role, revokes frank's role's permission,
/// changes gina's password (as root).
async fn make_stale(channel: &Channel, root: &str) {
    let mut auth = pb::auth_client::AuthClient::new(channel.clone());
    let delete = pb::AuthUserDeleteRequest {
        name: "dave".into(),
    };
    must(auth.user_delete(authed(delete.clone(), Some(root))).await);
    let revoke = pb::AuthUserRevokeRoleRequest {
        name: "erin".into(),
        role: "erin-rw".into(),
    };
    must(
        auth.user_revoke_role(authed(revoke.clone(), Some(root)))
            .await,
    );
    let revoke_perm = pb::AuthRoleRevokePermissionRequest {
        role: "frank-rw".into(),
        key: b"/a/".to_vec().into(),
        range_end: b"/a0".to_vec().into(),
    };
    must(
        auth.role_revoke_permission(authed(revoke_perm.clone(), Some(root)))
            .await,
    );
    let passwd = pb::AuthUserChangePasswordRequest {
        name: "gina".into(),
        password: "ginapw2".into(),
        ..pb::AuthUserChangePasswordRequest::default()
    };
    must(
        auth.user_change_password(authed(passwd.clone(), Some(root)))
            .await,
    );
}
