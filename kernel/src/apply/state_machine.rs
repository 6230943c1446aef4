//! The replicated state machine: applies committed entries in log order to
//! the MVCC store, lessor, auth store, membership and alarms (etcd
//! `etcdserver/apply.go` with its auth and alarm appliers). Apply is the
//! only writer of this state and reads no clock: the same entries give the
//! same state on every member. Member-local state is `local_state.rs`'s.

use crate::auth::{
    AuthError, AuthInfo, AuthStore, MemberCall, PermissionType, SIMPLE_TOKEN_TTL_MS,
};
use crate::lease::{LeaseId, LeaseStatus, Lessor, LessorConfig};
use crate::limits::Limits;
use crate::membership::Cluster;
use crate::mvcc::{Event, EventType, RangeRequest, RangeResponse, RequestOp, Store, TxnRequest};
use crate::raft::{ConfChange, Entry, EntryType};

use super::{
    AlarmType, Alarms, ApplyError, ApplyResult, ConfChangeApplied, LocalChange, Request,
    RequestEnvelope, Response, ResponseHeader,
};
use crate::auth::Authorizer;

/// Settings of a [`StateMachine`] and its [`super::LocalState`]; the same
/// on every member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateMachineConfig {
    /// Lessor settings (minimum TTL from the election timeout, checkpoints).
    pub lessor: LessorConfig,
    /// Simple-token TTL in milliseconds (etcd `--auth-token-ttl`); used by
    /// the member-local token table only.
    pub token_ttl_ms: u64,
    /// Request limits; the txn operation limit decides at apply whether a
    /// txn runs, so it must be the same on every member.
    pub limits: Limits,
}

impl StateMachineConfig {
    /// etcd's defaults for a cluster with this election timeout (ms).
    pub fn new(election_timeout_ms: u64) -> StateMachineConfig {
        StateMachineConfig {
            lessor: LessorConfig::new(election_timeout_ms),
            token_ttl_ms: SIMPLE_TOKEN_TTL_MS,
            limits: Limits::default(),
        }
    }
}

/// Everything a member replicates, and the index of the last entry applied
/// to it (the consistent index).
#[derive(Clone, Debug)]
pub struct StateMachine {
    pub(super) config: StateMachineConfig,
    pub(super) store: Store,
    pub(super) lessor: Lessor,
    pub(super) auth: AuthStore,
    pub(super) cluster: Cluster,
    pub(super) alarms: Alarms,
    pub(super) applied_index: u64,
    pub(super) applied_term: u64,
}

impl StateMachine {
    /// A fresh state machine (empty store at revision 1, no leases, auth
    /// disabled) for `cluster`, at applied index 0.
    pub fn new(config: StateMachineConfig, cluster: Cluster) -> StateMachine {
        let mut store = Store::new();
        store.set_max_txn_ops(config.limits.max_txn_ops);
        StateMachine {
            config,
            store,
            lessor: Lessor::new(config.lessor),
            auth: AuthStore::new(),
            cluster,
            alarms: Alarms::default(),
            applied_index: 0,
            applied_term: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> StateMachineConfig {
        self.config
    }

    /// Index of the last applied entry (etcd's consistent index).
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Term of the last applied entry.
    pub fn applied_term(&self) -> u64 {
        self.applied_term
    }

    /// Sets whether the events of applied writes carry `prev_kv` (default:
    /// yes; see [`Store::set_events_prev_kv`]). A server may turn it off
    /// while none of its watchers asks for `prev_kv`, and must turn it on
    /// before it feeds events to one that does. A restored state machine
    /// starts with it on.
    pub fn set_events_prev_kv(&mut self, events_prev_kv: bool) {
        self.store.set_events_prev_kv(events_prev_kv);
    }

    /// The KV store (read-only: writes go through [`StateMachine::apply`]).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The lessor (read-only).
    pub fn lessor(&self) -> &Lessor {
        &self.lessor
    }

    /// The auth store (read-only).
    pub fn auth(&self) -> &AuthStore {
        &self.auth
    }

    /// Cluster membership (read-only).
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Raised alarms (read-only).
    pub fn alarms(&self) -> &Alarms {
        &self.alarms
    }

    /// Applies one committed entry. Entries at or below the applied index
    /// (replayed after a restart) are skipped with an empty response and
    /// `request_id` 0. Empty normal entries (a leader's no-op) only move
    /// the applied index. A failed request changes nothing but the applied
    /// index; its error is in `result`. The member-local state follows the
    /// result's `local_changes` ([`super::LocalState::follow`]).
    pub fn apply(&mut self, entry: &Entry) -> ApplyResult {
        let mut result = ApplyResult {
            index: entry.index,
            term: entry.term,
            request_id: 0,
            header: ResponseHeader::default(),
            result: Ok(Response::Empty),
            events: Vec::new(),
            conf_change: None,
            local_changes: Vec::new(),
        };
        if entry.index > self.applied_index {
            assert_eq!(
                entry.index,
                self.applied_index + 1,
                "state machine: entries apply in order"
            );
            assert!(
                entry.term >= self.applied_term,
                "state machine: term {} applied after term {}",
                entry.term,
                self.applied_term
            );
            self.applied_index = entry.index;
            self.applied_term = entry.term;
            match entry.entry_type {
                EntryType::Normal if entry.data.is_empty() => {}
                EntryType::Normal => self.apply_normal(entry, &mut result),
                EntryType::ConfChange => self.apply_conf_change(entry, &mut result),
            }
        }
        result.header.revision = self.store.current_revision();
        result
    }

    /// A read served outside the log (serializable, or linearizable after
    /// ReadIndex), with the same checks as a replicated one. `auth` is
    /// `None` only for the server's own reads.
    ///
    /// Errors: permission errors; a CORRUPT alarm; the store's range errors.
    pub fn range(
        &self,
        auth: Option<&AuthInfo>,
        request: &RangeRequest,
    ) -> Result<RangeResponse, ApplyError> {
        if self.alarms.is_raised(AlarmType::Corrupt) {
            return Err(ApplyError::Corrupt);
        }
        if let Some(info) = auth {
            self.authorizer(info).range(request)?;
        }
        Ok(self.store.range(request)?)
    }

    /// Checks that `auth` may watch `(key, range_end)` (READ).
    ///
    /// Errors: as [`AuthStore::check_permission`].
    pub fn check_watch(
        &self,
        auth: &AuthInfo,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), ApplyError> {
        Ok(self
            .auth
            .check_permission(auth, key, range_end, PermissionType::Read)?)
    }

    /// Checks that `auth` may make `call`, one the member answers itself
    /// (maintenance, membership, AuthStatus; see
    /// [`crate::auth::MemberCall::needs`]).
    ///
    /// Errors: as [`AuthStore::authorize_call`].
    pub fn authorize_call(&self, auth: &AuthInfo, call: MemberCall) -> Result<(), ApplyError> {
        Ok(self.auth.authorize_call(auth, call)?)
    }

    /// Checks a login before proposing it (see [`AuthStore::check_password`]).
    ///
    /// Errors: [`AuthError::AuthNotEnabled`], [`AuthError::AuthFailed`].
    pub fn check_password(&self, name: &str, password: &str) -> Result<u64, AuthError> {
        self.auth.check_password(name, password)
    }

    /// The lock-free half of a login check (see [`AuthStore::login_check`]):
    /// verify the returned check's password after releasing the state.
    ///
    /// Errors: [`AuthError::AuthNotEnabled`], [`AuthError::AuthFailed`].
    pub fn login_check(&self, name: &str) -> Result<crate::auth::LoginCheck, AuthError> {
        self.auth.login_check(name)
    }

    /// Lease TTL query as every member knows it (the checkpointed or
    /// granted TTL; [`super::LocalState::lease_time_to_live`] answers with
    /// this member's clock); with `keys`, the caller must be able to read
    /// every attached key (etcd 3.5).
    ///
    /// Errors: [`crate::lease::LeaseError::NotFound`]; permission errors.
    pub fn lease_time_to_live(
        &self,
        auth: Option<&AuthInfo>,
        id: LeaseId,
        keys: bool,
    ) -> Result<LeaseStatus, ApplyError> {
        if let Some(info) = auth {
            self.auth.require_user(info)?;
        }
        let mut status = self.lessor.time_to_live(id)?;
        if keys {
            if let Some(info) = auth {
                self.authorizer(info).lease_keys(id, PermissionType::Read)?;
            }
        } else {
            status.keys.clear();
        }
        Ok(status)
    }

    /// Checks that `auth` may keep lease `id` alive (etcd 3.6.9+
    /// `checkLeaseRenew`): a user while auth is enabled, and, unless root,
    /// WRITE on every key attached to the lease. Checked by the member a
    /// client sends its keep-alive to, before it renews or forwards.
    ///
    /// Errors: [`AuthError::UserEmpty`], [`AuthError::AuthOldRevision`],
    /// [`AuthError::PermissionDenied`].
    pub fn check_lease_renew(&self, auth: &AuthInfo, id: LeaseId) -> Result<(), ApplyError> {
        Ok(self.authorizer(auth).lease_renew(id)?)
    }

    /// Ids of every lease, ascending, if `auth` may list them (etcd 3.6.9+
    /// `LeaseLeases` / `checkLeaseLeases`): a user while auth is enabled,
    /// and, unless root, READ on every key attached to any lease.
    ///
    /// Errors: as [`StateMachine::check_lease_renew`].
    pub fn lease_leases(&self, auth: &AuthInfo) -> Result<Vec<LeaseId>, ApplyError> {
        self.authorizer(auth).lease_list()?;
        Ok(self.lessor.leases())
    }

    fn authorizer<'a>(&'a self, info: &'a AuthInfo) -> Authorizer<'a> {
        Authorizer {
            auth: &self.auth,
            lessor: &self.lessor,
            info,
        }
    }

    fn apply_normal(&mut self, entry: &Entry, result: &mut ApplyResult) {
        let envelope = match RequestEnvelope::decode(&entry.data) {
            Ok(envelope) => envelope,
            Err(err) => {
                result.result = Err(err);
                return;
            }
        };
        result.request_id = envelope.id;
        let local = &mut result.local_changes;
        let outcome = self
            .check(&envelope)
            .and_then(|()| self.execute(&envelope.request, entry.index, local));
        result.result = outcome.map(|(response, events)| {
            result.events = events;
            response
        });
    }

    fn apply_conf_change(&mut self, entry: &Entry, result: &mut ApplyResult) {
        let change = match ConfChange::decode(&entry.data) {
            Ok(change) => change,
            Err(err) => {
                result.result = Err(ApplyError::BadEntry(format!("conf change: {err}")));
                return;
            }
        };
        let outcome = self.cluster.apply_conf_change(&change);
        result.conf_change = Some(ConfChangeApplied {
            change,
            accepted: outcome.is_ok(),
        });
        result.result = outcome.map(|()| Response::Empty).map_err(ApplyError::from);
    }

    /// Alarm gates, then permissions (etcd's capped/corrupt and auth appliers).
    fn check(&self, envelope: &RequestEnvelope) -> Result<(), ApplyError> {
        let request = &envelope.request;
        if self.alarms.is_raised(AlarmType::Corrupt) && is_kv_or_lease(request) {
            return Err(ApplyError::Corrupt);
        }
        if self.alarms.is_raised(AlarmType::NoSpace) && needs_space(request) {
            return Err(ApplyError::NoSpace);
        }
        if let Some(info) = &envelope.auth {
            self.authorizer(info).request(request)?;
        }
        Ok(())
    }

    /// Runs a checked request; returns the response and the events of the
    /// keys it wrote (attachments to leases follow them), and pushes onto
    /// `local` what the member-local state must follow.
    fn execute(
        &mut self,
        request: &Request,
        index: u64,
        local: &mut Vec<LocalChange>,
    ) -> Result<(Response, Vec<Event>), ApplyError> {
        let none = Vec::new;
        let lessor = &self.lessor;
        let lease_exists = |id: LeaseId| lessor.lease(id).is_some();
        let (response, events) = match request {
            Request::Put(put) => {
                let write = self.store.put(put, &lease_exists)?;
                (Response::Put(write.response), write.events)
            }
            Request::DeleteRange(delete) => {
                let write = self.store.delete_range(delete)?;
                (Response::DeleteRange(write.response), write.events)
            }
            Request::Txn(txn) => {
                let write = self.store.txn(txn, &lease_exists)?;
                (Response::Txn(write.response), write.events)
            }
            Request::Compaction(compaction) => (
                Response::Compaction(self.store.compact(compaction)?),
                none(),
            ),
            Request::LeaseRevoke { id } => {
                let keys = self.lessor.revoke(*id)?;
                local.push(LocalChange::LeaseRevoked { id: *id });
                (Response::Done, self.store.delete_keys(&keys).events)
            }
            Request::LeaseGrant { id, ttl_secs } => {
                let ttl_secs = self.lessor.grant(*id, *ttl_secs)?;
                local.push(LocalChange::LeaseGranted { id: *id });
                (Response::LeaseGrant { id: *id, ttl_secs }, none())
            }
            Request::LeaseCheckpoint(checkpoints) => {
                for checkpoint in checkpoints {
                    if self.lessor.checkpoint(*checkpoint) {
                        local.push(LocalChange::LeaseCheckpointed { id: checkpoint.id });
                    }
                }
                (Response::Done, none())
            }
            Request::Alarm(alarm) => (Response::Alarm(self.alarms.apply(alarm)), none()),
            Request::Auth(auth) => (auth.apply(&mut self.auth, index, local)?, none()),
            Request::MemberAttrSet {
                member_id,
                name,
                client_urls,
            } => {
                self.cluster.set_attributes(*member_id, name, client_urls)?;
                (Response::Done, none())
            }
            Request::MemberUpdate {
                member_id,
                peer_urls,
            } => {
                self.cluster.update_peer_urls(*member_id, peer_urls)?;
                (Response::Done, none())
            }
        };
        self.track_leases(&events);
        Ok((response, events))
    }

    /// Keeps lease attachments in step with the writes: a put attaches its
    /// key to the kv's lease (detaching it from the previous one), a delete
    /// detaches it.
    fn track_leases(&mut self, events: &[Event]) {
        for event in events {
            match event.event_type {
                EventType::Put => {
                    let attached = self.lessor.attach(event.kv.lease, &event.kv.key);
                    debug_assert!(attached.is_ok(), "the store checked the lease exists");
                }
                EventType::Delete => {
                    self.lessor.detach(&event.kv.key);
                }
            }
        }
    }
}

/// Requests a CORRUPT alarm refuses (etcd `applierV3Corrupt`).
fn is_kv_or_lease(request: &Request) -> bool {
    matches!(
        request,
        Request::Put(_)
            | Request::DeleteRange(_)
            | Request::Txn(_)
            | Request::Compaction(_)
            | Request::LeaseGrant { .. }
            | Request::LeaseRevoke { .. }
    )
}

/// Requests a NOSPACE alarm refuses (etcd `applierV3Capped`): puts, txns
/// that write, lease grants.
fn needs_space(request: &Request) -> bool {
    match request {
        Request::Put(_) | Request::LeaseGrant { .. } => true,
        Request::Txn(txn) => !txn_is_read_only(txn, 0),
        _ => false,
    }
}

fn txn_is_read_only(txn: &TxnRequest, depth: usize) -> bool {
    depth <= 64
        && txn.success.iter().chain(&txn.failure).all(|op| match op {
            RequestOp::Range(_) => true,
            RequestOp::Txn(nested) => txn_is_read_only(nested, depth + 1),
            RequestOp::Put(_) | RequestOp::DeleteRange(_) => false,
        })
}
