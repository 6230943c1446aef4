//! Permission checks of the lease requests a member answers without Raft
//! (etcd 3.6.9+ `v3_server.go` `checkLeaseRenew`, `checkLeaseLeases`,
//! backported to 3.5.28 and 3.4.42): a keep-alive acts on the keys
//! attached to its lease, and a lease listing reveals every lease, so a
//! non-root user needs a permission over the keys concerned.

use crate::auth::{AuthError, PermissionType};
use crate::lease::LeaseId;

use super::request::Authorizer;

impl Authorizer<'_> {
    /// Checks a keep-alive of lease `id` (etcd `checkLeaseRenew`): any
    /// user while auth is enabled; root passes; anyone else needs WRITE
    /// on every key attached to the lease. An unknown lease passes (the
    /// renewal then answers TTL 0).
    ///
    /// Errors: no user → [`AuthError::UserEmpty`]; a stale user →
    /// [`AuthError::AuthOldRevision`]; a key the user may not write →
    /// [`AuthError::PermissionDenied`].
    pub fn lease_renew(&self, id: LeaseId) -> Result<(), AuthError> {
        let keys = self.lessor.lease(id).into_iter().flat_map(|l| &l.keys);
        self.non_root_keys(keys, PermissionType::Write)
    }

    /// Checks a listing of every lease (etcd `checkLeaseLeases`): any user
    /// while auth is enabled; root passes; anyone else needs READ on
    /// every key attached to any lease. The whole listing is refused
    /// otherwise; etcd does not filter it.
    ///
    /// Errors: as [`Authorizer::lease_renew`].
    pub fn lease_list(&self) -> Result<(), AuthError> {
        let ids = self.lessor.leases();
        let keys = ids
            .iter()
            .filter_map(|id| self.lessor.lease(*id))
            .flat_map(|l| &l.keys);
        self.non_root_keys(keys, PermissionType::Read)
    }

    /// Passes while auth is disabled and for root; otherwise needs a user
    /// allowed `need` on each of `keys`.
    fn non_root_keys<'k>(
        &self,
        mut keys: impl Iterator<Item = &'k Vec<u8>>,
        need: PermissionType,
    ) -> Result<(), AuthError> {
        if !self.auth.is_enabled() {
            return Ok(());
        }
        self.auth.require_user(self.info)?;
        if self.auth.check_admin(self.info).is_ok() {
            return Ok(());
        }
        keys.try_for_each(|key| self.auth.check_permission(self.info, key, &[], need))
    }
}
