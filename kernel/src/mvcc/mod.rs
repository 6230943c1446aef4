//! The multi-version key-value store (etcd v3 `mvcc`), its ordered index and
//! the watch registry.
//!
//! * [`revision`]: `(main, sub)` revisions.
//! * [`kv`]: [`KeyValue`] and [`Event`].
//! * [`rpc`]: etcd-shaped KV requests and responses.
//! * [`error`]: [`MvccError`] with etcd's messages.
//!
//! Everything is in memory, sans-IO and deterministic.

pub mod error;
pub mod kv;
pub mod revision;
pub mod rpc;

pub use error::MvccError;
pub use kv::{Event, EventType, KeyValue};
pub use revision::Revision;
pub use rpc::{
    CompactionRequest, CompactionResponse, Compare, CompareResult, CompareTarget,
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    RequestOp, ResponseOp, SortOrder, SortTarget, TxnRequest, TxnResponse,
};
