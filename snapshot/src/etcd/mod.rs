//! etcd v3 snapshot files: what `etcdctl snapshot save` writes against
//! etcd, a bbolt database with the `key`, `lease`, `meta`, `members` and
//! `auth*` buckets (etcd 3.4's `mvcc/backend` layout).
//!
//! * [`proto`]: the protobuf messages stored in the buckets.
//! * [`revision`]: the `key` bucket's revision keys.
//! * [`convert`]: the database turned into keel's replicated state.
//! * [`export`]: keel's replicated state written as such a database.
//! * [`status`]: etcd's `snapshot status` numbers, computed as etcd does.

pub mod convert;
pub mod export;
pub mod proto;
pub mod revision;
pub mod status;
