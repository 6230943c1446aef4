//! What applying an entry produces: the response for the waiting client,
//! its header, the events for watchers, and any membership change.

use crate::auth::Permission;
use crate::lease::LeaseId;
use crate::mvcc::{
    CompactionResponse, DeleteRangeResponse, Event, PutResponse, RangeResponse, TxnResponse,
};
use crate::raft::ConfChange;

use super::{AlarmMember, ApplyError, LocalChange};

/// etcd's `ResponseHeader`. The state machine fills `revision`; the server
/// fills the cluster id, its member id and its current Raft term.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResponseHeader {
    /// Cluster id (server-filled).
    pub cluster_id: u64,
    /// Id of the member answering (server-filled).
    pub member_id: u64,
    /// The KV store's revision after the request.
    pub revision: i64,
    /// The answering member's Raft term (server-filled).
    pub raft_term: u64,
}

/// The body of a successful response, per request kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Nothing to answer (empty no-op entry, conf change, server request
    /// without a payload, entry already applied).
    Empty,
    /// Answer to a read.
    Range(RangeResponse),
    /// Answer to a put.
    Put(PutResponse),
    /// Answer to a delete.
    DeleteRange(DeleteRangeResponse),
    /// Answer to a txn.
    Txn(TxnResponse),
    /// Answer to a compaction.
    Compaction(CompactionResponse),
    /// A granted lease.
    LeaseGrant {
        /// Lease id.
        id: LeaseId,
        /// Granted TTL in seconds (raised to the minimum TTL).
        ttl_secs: i64,
    },
    /// Alarms listed, raised or cleared.
    Alarm(Vec<AlarmMember>),
    /// The token of a successful login.
    Authenticate {
        /// The simple token.
        token: String,
    },
    /// A user's roles.
    UserGet {
        /// Role names, ascending.
        roles: Vec<String>,
    },
    /// All user names, ascending.
    UserList(Vec<String>),
    /// A role's permissions.
    RoleGet(Vec<Permission>),
    /// All role names, ascending.
    RoleList(Vec<String>),
    /// A request with an empty etcd response (lease revoke, auth and member
    /// changes) succeeded.
    Done,
}

/// A conf-change entry as applied: the change, and whether membership
/// accepted it. The server passes an accepted change to Raft; a refused
/// one must not change Raft's configuration either (etcd applies an empty
/// change instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfChangeApplied {
    /// The decoded change.
    pub change: ConfChange,
    /// True when membership applied it.
    pub accepted: bool,
}

/// Everything applying one committed entry produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyResult {
    /// Log index of the entry.
    pub index: u64,
    /// Term of the entry.
    pub term: u64,
    /// The proposer's request id (0: none, nobody waits).
    pub request_id: u64,
    /// Response header (see [`ResponseHeader`]).
    pub header: ResponseHeader,
    /// The response, or why the request failed (nothing changed then).
    pub result: Result<Response, ApplyError>,
    /// Changes for watchers, in `(revision, sub revision)` order, with
    /// `prev_kv` filled in (unless `StateMachine::set_events_prev_kv`
    /// turned it off).
    pub events: Vec<Event>,
    /// For conf-change entries: the change and its fate.
    pub conf_change: Option<ConfChangeApplied>,
    /// What the member-local state must follow (empty when the request
    /// failed); see [`super::LocalState::follow`].
    pub local_changes: Vec<LocalChange>,
}
