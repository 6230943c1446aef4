//! The multi-version key-value store (etcd v3 `mvcc`), its ordered index and
//! the watch registry.
//!
//! * [`revision`]: `(main, sub)` revisions.
//! * [`kv`]: [`KeyValue`] and [`Event`].
//! * [`ops`]: the store's operations: etcd-shaped KV requests and responses.
//! * [`error`]: [`MvccError`] with etcd's messages.
//! * [`store`]: the [`Store`]: range, put, delete, txn, compaction, lease
//!   revoke deletes, HashKV, snapshots and history for watchers.
//! * [`watch`]: the [`WatchRegistry`] fed with the store's events.
//! * `invariants`: [`Store::check_invariants`] (revisions and the index).
//!
//! Everything is in memory, sans-IO and deterministic.
//!
//! Layout (designed for 1M keys of 64 bytes with 256-byte values in under
//! 420 MB): each key and all its uncompacted versions live in one compact
//! allocation (`index::key_index`); the ordered index (`index`, its leaves
//! in `index::chunk`) is a two-level B+-tree of such key indexes whose
//! searches compare inline 8-byte key windows (`index::window`) instead of
//! dereferencing keys. Measure with
//! `cargo run --release -p keel-bench --bin mvcc_memory`.
//!
//! One deliberate difference from etcd: compaction at revision `r` keeps a
//! delete made at exactly `r`, so a watcher starting at `r` still receives
//! it (etcd drops it); reads are unaffected.

mod crc_writer;
pub mod error;
mod hash;
pub mod history;
mod import;
mod index;
mod invariants;
pub mod kv;
pub mod ops;
mod prefix;
mod range;
pub mod revision;
mod snapshot;
pub mod store;
mod txn;
pub mod watch;
mod write;

pub(crate) use crc_writer::Crc32Writer;
pub use error::MvccError;
pub use history::HistoryBatch;
pub use import::ImportedVersion;
pub use kv::{Event, EventType, KeyValue};
pub use ops::{
    CompactionRequest, CompactionResponse, Compare, CompareResult, CompareTarget,
    DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse, RangeRequest, RangeResponse,
    RequestOp, ResponseOp, SortOrder, SortTarget, TxnRequest, TxnResponse,
};
pub use prefix::prefix_range_end;
pub use revision::Revision;
pub use store::{LeaseLookup, Store, WriteResult};
pub use txn::check_txn;
pub use watch::{WatchCreate, WatchError, WatchId, WatchLimits, WatchRegistry, WatchResponse};
