//! The replicated state machine (etcd `etcdserver/apply.go`) and its
//! snapshots.
//!
//! * [`RequestEnvelope`] / [`Request`]: what a normal Raft entry carries
//!   (request id, caller identity, one KV, lease, auth, alarm or member
//!   request), with a deterministic encoding.
//! * [`StateMachine::apply`]: decodes a committed entry (skipping empty
//!   no-ops; conf changes go to membership), checks alarms and
//!   permissions, runs it against the MVCC store, lessor, auth store and
//!   membership, advances the consistent index, and returns an
//!   [`ApplyResult`]: the client's response with its header revision, and
//!   the events for watchers.
//!   Apply is the only writer of the replicated state, and it uses no
//!   clock.
//! * [`LocalState`]: the member-local state beside it (lease expiry as
//!   this member sees it, simple tokens), changed by the [`LocalChange`]s
//!   each apply reports and by calls that take the member's `now_ms`.
//! * [`StateMachine::check_invariants`]: the store's, lessor's, auth
//!   store's and cluster's invariants at once.
//! * [`StateMachine::snapshot`] / [`StateMachine::restore`]: the whole
//!   replicated state as checksummed bytes.

mod alarm;
mod auth_request;
mod error;
mod invariants;
mod local_change;
mod local_state;
mod parts;
mod request;
mod response;
mod snapshot;
mod state_machine;

pub use alarm::{AlarmAction, AlarmMember, AlarmRequest, AlarmType, Alarms};
pub use auth_request::AuthRequest;
pub use error::ApplyError;
pub use local_change::LocalChange;
pub use local_state::LocalState;
pub use parts::StateParts;
pub use request::{MAX_REQUEST_SIZE_BYTES, Request, RequestEnvelope};
pub use response::{ApplyResult, ConfChangeApplied, Response, ResponseHeader};
pub use snapshot::{SnapshotEncoder, SnapshotError};
pub use state_machine::{StateMachine, StateMachineConfig};
