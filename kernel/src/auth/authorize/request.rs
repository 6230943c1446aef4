//! Permission checks of replicated requests (etcd `etcdserver/apply_auth.go`):
//! which permission each operation needs, walking every op of a txn
//! (both branches, nested txns, compares).

use crate::auth::{AuthError, AuthInfo, AuthStore, PermissionType};
use crate::lease::{LeaseId, Lessor};
use crate::mvcc::{Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest};

use crate::apply::{AlarmAction, AuthRequest, Request};

/// Largest txn nesting depth walked; deeper txns are refused (the store
/// caps txn sizes too, this keeps the walk bounded).
const TXN_DEPTH_MAX: usize = 64;

/// The checks for one request against the auth store and lessor.
pub(crate) struct Authorizer<'a> {
    pub auth: &'a AuthStore,
    pub lessor: &'a Lessor,
    pub info: &'a AuthInfo,
}

impl Authorizer<'_> {
    /// Checks a replicated request (admin-only requests need `root`), as
    /// the newest etcd releases do (see `docs/auth-compat.md` for where
    /// that is stricter than etcd 3.4.23).
    pub fn request(&self, request: &Request) -> Result<(), AuthError> {
        match request {
            Request::Put(put) => self.put(put),
            Request::DeleteRange(delete) => self.delete(delete),
            Request::Txn(txn) => self.txn(txn, 0),
            Request::LeaseGrant { .. } => self.auth.check_user(self.info),
            Request::LeaseRevoke { id } => self.lease_keys(*id, PermissionType::Write),
            Request::Auth(auth) => self.auth_request(auth),
            Request::Alarm(alarm) if alarm.action == AlarmAction::Get => {
                self.auth.require_user(self.info)
            }
            // Compaction needs root since etcd 3.6.9/3.5.28/3.4.42 (kvServer
            // Compact `isPermitted`), alarm changes likewise (Alarm).
            Request::Compaction(_)
            | Request::LeaseCheckpoint(_)
            | Request::Alarm(_)
            | Request::MemberAttrSet { .. }
            | Request::MemberUpdate { .. } => self.auth.check_admin(self.info),
        }
    }

    /// Logins are open; users may read themselves and the roles they hold;
    /// everything else in auth management needs `root`, changing one's own
    /// password included (etcd `apply_auth.go` `needAdminPermission`,
    /// `UserGet`, `RoleGet`, the same in 3.4, 3.5 and 3.6).
    fn auth_request(&self, request: &AuthRequest) -> Result<(), AuthError> {
        match request {
            AuthRequest::Authenticate { .. } => Ok(()),
            AuthRequest::UserGet { name } if self.is_self(name) => self.auth.check_user(self.info),
            AuthRequest::RoleGet { name } if self.has_role(name) => self.auth.check_user(self.info),
            _ => self.auth.check_admin(self.info),
        }
    }

    /// A read: READ over the range.
    pub fn range(&self, range: &RangeRequest) -> Result<(), AuthError> {
        self.check(&range.key, &range.range_end, PermissionType::Read)
    }

    /// Every key attached to lease `id` must allow `need` (etcd
    /// `checkLeasePuts`): attaching to or revoking a lease acts on them.
    pub fn lease_keys(&self, id: LeaseId, need: PermissionType) -> Result<(), AuthError> {
        if !self.auth.is_enabled() {
            return Ok(());
        }
        self.auth.check_user(self.info)?;
        let Some(lease) = self.lessor.lease(id) else {
            return Ok(());
        };
        lease
            .keys
            .iter()
            .try_for_each(|key| self.check(key, &[], need))
    }

    fn put(&self, put: &PutRequest) -> Result<(), AuthError> {
        self.check(&put.key, &[], PermissionType::Write)?;
        if put.prev_kv {
            self.check(&put.key, &[], PermissionType::Read)?;
        }
        if put.lease != 0 {
            self.lease_keys(put.lease, PermissionType::Write)?;
        }
        Ok(())
    }

    fn delete(&self, delete: &DeleteRangeRequest) -> Result<(), AuthError> {
        self.check(&delete.key, &delete.range_end, PermissionType::Write)?;
        if delete.prev_kv {
            self.check(&delete.key, &delete.range_end, PermissionType::Read)?;
        }
        Ok(())
    }

    fn compare(&self, compare: &Compare) -> Result<(), AuthError> {
        self.check(&compare.key, &compare.range_end, PermissionType::Read)
    }

    fn txn(&self, txn: &TxnRequest, depth: usize) -> Result<(), AuthError> {
        if depth > TXN_DEPTH_MAX {
            return Err(AuthError::PermissionDenied);
        }
        txn.compare
            .iter()
            .try_for_each(|compare| self.compare(compare))?;
        txn.success
            .iter()
            .chain(&txn.failure)
            .try_for_each(|op| self.op(op, depth))
    }

    fn op(&self, op: &RequestOp, depth: usize) -> Result<(), AuthError> {
        match op {
            RequestOp::Range(range) => self.range(range),
            RequestOp::Put(put) => self.put(put),
            RequestOp::DeleteRange(delete) => self.delete(delete),
            RequestOp::Txn(nested) => self.txn(nested, depth + 1),
        }
    }

    fn check(&self, key: &[u8], range_end: &[u8], need: PermissionType) -> Result<(), AuthError> {
        self.auth.check_permission(self.info, key, range_end, need)
    }

    fn is_self(&self, name: &str) -> bool {
        !name.is_empty() && self.info.username == name
    }

    fn has_role(&self, role: &str) -> bool {
        self.auth
            .user_get(&self.info.username)
            .is_ok_and(|user| user.roles.contains(role))
    }
}
