//! The store's operations: range, put, delete-range, txn and compaction
//! requests and their responses, shaped like etcd's `etcdserverpb` messages
//! (etcd API reference, "KV service"), so the server maps them one to one.
//!
//! `revision` fields in responses are what etcd puts in `header.revision`:
//! the store revision after the operation (for reads: the current
//! revision, also for historical reads). Cluster id, member id and term are
//! the server's to fill in.

use serde::{Deserialize, Serialize};

use super::kv::KeyValue;

/// Sort direction of a range (etcd `RangeRequest.SortOrder`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortOrder {
    /// No sorting requested (results come in ascending key order, unless
    /// the sort target is not `Key`: then etcd sorts ascending).
    #[default]
    None,
    /// Lowest first.
    Ascend,
    /// Highest first.
    Descend,
}

/// What a range is sorted by (etcd `RangeRequest.SortTarget`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SortTarget {
    /// The key bytes.
    #[default]
    Key,
    /// `version`.
    Version,
    /// `create_revision`.
    Create,
    /// `mod_revision`.
    Mod,
    /// The value bytes.
    Value,
}

/// A read of one key or a key range (etcd `RangeRequest`).
///
/// `range_end` empty: the single key `key`; `range_end == [0]`: every key
/// `>= key`; otherwise the half-open range `[key, range_end)` (so
/// `key = [0], range_end = [0]` reads everything). Limits and revision
/// filters of 0 mean "none".
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RangeRequest {
    /// First key (or the single key).
    pub key: Vec<u8>,
    /// End of the range, see above.
    pub range_end: Vec<u8>,
    /// Maximum number of keys returned; 0 = no limit.
    pub limit: i64,
    /// Read the store as of this main revision; 0 (or less) = current.
    pub revision: i64,
    /// Sort direction.
    pub sort_order: SortOrder,
    /// Sort key.
    pub sort_target: SortTarget,
    /// Serializable read (served locally, no ReadIndex); passed through,
    /// the store itself answers the same either way.
    pub serializable: bool,
    /// Return keys without values.
    pub keys_only: bool,
    /// Return only `count`, no key-values.
    pub count_only: bool,
    /// Drop keys with `mod_revision` below this; 0 = no filter.
    pub min_mod_revision: i64,
    /// Drop keys with `mod_revision` above this; 0 = no filter.
    pub max_mod_revision: i64,
    /// Drop keys with `create_revision` below this; 0 = no filter.
    pub min_create_revision: i64,
    /// Drop keys with `create_revision` above this; 0 = no filter.
    pub max_create_revision: i64,
}

/// Answer to a [`RangeRequest`] (etcd `RangeResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RangeResponse {
    /// Header revision: the store's current revision.
    pub revision: i64,
    /// The key-values, after filters, sorting and limit.
    pub kvs: Vec<KeyValue>,
    /// True when `limit` cut off further keys.
    pub more: bool,
    /// Number of keys in the range at the read revision (before the
    /// min/max revision filters and the limit, as etcd counts).
    pub count: i64,
}

/// A write of one key (etcd `PutRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PutRequest {
    /// The key; must not be empty.
    pub key: Vec<u8>,
    /// The new value (must be empty when `ignore_value`).
    pub value: Vec<u8>,
    /// Lease to attach, 0 for none (must be 0 when `ignore_lease`).
    pub lease: i64,
    /// Return the previous key-value in the response.
    pub prev_kv: bool,
    /// Keep the current value; the key must exist.
    pub ignore_value: bool,
    /// Keep the current lease; the key must exist.
    pub ignore_lease: bool,
}

/// Answer to a [`PutRequest`] (etcd `PutResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PutResponse {
    /// Header revision: the revision of this write.
    pub revision: i64,
    /// The key's previous live version, if requested and it existed.
    pub prev_kv: Option<KeyValue>,
}

/// A delete of one key or a range (etcd `DeleteRangeRequest`); `key` and
/// `range_end` as in [`RangeRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeleteRangeRequest {
    /// First key (or the single key); must not be empty.
    pub key: Vec<u8>,
    /// End of the range.
    pub range_end: Vec<u8>,
    /// Return the deleted key-values.
    pub prev_kv: bool,
}

/// Answer to a [`DeleteRangeRequest`] (etcd `DeleteRangeResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DeleteRangeResponse {
    /// Header revision: the new revision, or the unchanged current
    /// revision when nothing was deleted.
    pub revision: i64,
    /// Number of keys deleted.
    pub deleted: i64,
    /// The deleted key-values, if requested.
    pub prev_kvs: Vec<KeyValue>,
}

/// Which field of a key a [`Compare`] looks at, with the operand
/// (etcd `Compare.target` and `target_union`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CompareTarget {
    /// `version` (0 for a missing key).
    Version(i64),
    /// `create_revision` (0 for a missing key).
    Create(i64),
    /// `mod_revision` (0 for a missing key).
    Mod(i64),
    /// The value bytes (a missing key never matches).
    Value(Vec<u8>),
    /// The attached lease (0 for none or a missing key).
    Lease(i64),
}

/// The comparison a [`Compare`] makes (etcd `Compare.CompareResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CompareResult {
    /// Field == operand.
    Equal,
    /// Field > operand.
    Greater,
    /// Field < operand.
    Less,
    /// Field != operand.
    NotEqual,
}

/// One txn guard (etcd `Compare`): true when the comparison holds for the
/// key, or for every key of the range (`range_end` as in [`RangeRequest`]).
/// A missing key, or a range with no live key, compares as a key-value of
/// zeroes (version, revisions and lease 0), except that value compares on
/// it are false (etcd `applyCompare`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Compare {
    /// How to compare.
    pub result: CompareResult,
    /// What to compare, and with what.
    pub target: CompareTarget,
    /// The key; must not be empty.
    pub key: Vec<u8>,
    /// End of the range, empty for the single key.
    pub range_end: Vec<u8>,
}

/// One operation of a txn branch (etcd `RequestOp`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestOp {
    /// A read.
    Range(RangeRequest),
    /// A write.
    Put(PutRequest),
    /// A delete.
    DeleteRange(DeleteRangeRequest),
    /// A nested txn.
    Txn(TxnRequest),
}

/// The result of one [`RequestOp`] (etcd `ResponseOp`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ResponseOp {
    /// Answer to a read.
    Range(RangeResponse),
    /// Answer to a write.
    Put(PutResponse),
    /// Answer to a delete.
    DeleteRange(DeleteRangeResponse),
    /// Answer to a nested txn.
    Txn(TxnResponse),
}

/// An atomic if/then/else (etcd `TxnRequest`): if every compare holds, run
/// `success`, else `failure`. All writes share one main revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxnRequest {
    /// Guards, all of which must hold.
    pub compare: Vec<Compare>,
    /// Operations run when every guard holds.
    pub success: Vec<RequestOp>,
    /// Operations run otherwise.
    pub failure: Vec<RequestOp>,
}

/// Answer to a [`TxnRequest`] (etcd `TxnResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TxnResponse {
    /// Header revision: the txn's revision (unchanged if it wrote nothing).
    pub revision: i64,
    /// Whether the compares held (the success branch ran).
    pub succeeded: bool,
    /// One response per operation of the branch that ran.
    pub responses: Vec<ResponseOp>,
}

/// A compaction request (etcd `CompactionRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CompactionRequest {
    /// Remove history below this main revision.
    pub revision: i64,
    /// etcd's "wait until physically compacted" flag; compaction here is
    /// always immediate, so it changes nothing.
    pub physical: bool,
}

/// Answer to a [`CompactionRequest`] (etcd `CompactionResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CompactionResponse {
    /// Header revision: the current revision (compaction does not bump it).
    pub revision: i64,
}
