//! The multi-version key-value store (etcd v3 `mvcc`), its ordered index and
//! the watch registry.
//!
//! * [`revision`]: `(main, sub)` revisions.
//! * [`kv`]: [`KeyValue`] and [`Event`].
//! * [`rpc`]: etcd-shaped KV requests and responses.
//! * [`error`]: [`MvccError`] with etcd's messages.
//! * [`store`]: the [`Store`]: range, put, delete, txn, compaction, lease
//!   revoke deletes, HashKV, snapshots and history for watchers.
//! * [`watch`]: the [`WatchRegistry`] fed with the store's events.
//!
//! Everything is in memory, sans-IO and deterministic.

mod chunk;
pub mod error;
mod hash;
pub mod history;
mod index;
mod key_index;
pub mod kv;
mod range;
pub mod revision;
pub mod rpc;
mod snapshot;
pub mod store;
mod txn;
mod varint;
pub mod watch;
mod window;
mod write;

pub use error::MvccError;
pub use history::HistoryBatch;
pub use kv::{Event, EventType, KeyValue};
pub use revision::Revision;
pub use rpc::{
    CompactionRequest, CompactionResponse, Compare, CompareResult, CompareTarget,
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    RequestOp, ResponseOp, SortOrder, SortTarget, TxnRequest, TxnResponse,
};
pub use store::{LeaseLookup, Store, WriteResult};
pub use watch::{WatchCreate, WatchError, WatchId, WatchLimits, WatchRegistry, WatchResponse};
