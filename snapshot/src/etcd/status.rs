//! etcd's `snapshot status` numbers (etcd 3.4 `clientv3/snapshot`
//! `Status`, etcdutl 3.5 the same): a CRC-32C over every top-level bucket's
//! name and every key and value in it, in order; the main revision of the
//! last key of the `key` bucket; the number of keys in all buckets; and
//! bbolt's transaction size.

use crate::bbolt::Db;
use crate::error::SnapshotError;
use crate::etcd::revision;

/// etcd's `snapshot status` numbers for an etcd database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EtcdStatus {
    /// CRC-32C as etcd computes it.
    pub hash: u32,
    /// Main revision of the newest stored version (0 when none).
    pub revision: i64,
    /// Keys in all buckets.
    pub total_keys: u64,
    /// bbolt's size in bytes.
    pub total_size_bytes: u64,
}

/// Computes [`EtcdStatus`] for the database in `data`.
///
/// Errors: [`SnapshotError::CorruptBolt`] for damaged pages,
/// [`SnapshotError::InvalidEtcd`] for a `key` bucket key that is not a
/// revision.
pub fn status(data: &[u8]) -> Result<EtcdStatus, SnapshotError> {
    let db = Db::open(data)?;
    let mut hash = 0u32;
    let mut revision_main = 0;
    let mut total_keys = 0u64;
    for (name, bucket) in db.buckets()? {
        hash = crc32c::crc32c_append(hash, name);
        let is_key_bucket = name == b"key";
        db.for_each(bucket, |key, value| {
            hash = crc32c::crc32c_append(hash, key);
            hash = crc32c::crc32c_append(hash, value);
            if is_key_bucket {
                revision_main = revision::parse(key)
                    .map_err(SnapshotError::InvalidEtcd)?
                    .revision
                    .main;
            }
            total_keys += 1;
            Ok::<(), SnapshotError>(())
        })?;
    }
    Ok(EtcdStatus {
        hash,
        revision: revision_main,
        total_keys,
        total_size_bytes: db.size_bytes(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    /// Made by etcd 3.4.23 (`etcdctl snapshot save`), whose
    /// `snapshot status -w json` printed
    /// `{"hash":590792345,"revision":6,"totalKey":15,"totalSize":24576}`.
    const ETCD_DB: &[u8] = include_bytes!("../../tests/data/etcd-3.4.db");

    #[test]
    fn matches_what_etcdctl_printed() {
        let data = crate::format::strip_hash(ETCD_DB, false).unwrap();
        let status = status(data).unwrap();
        assert_eq!(
            status,
            EtcdStatus {
                hash: 590792345,
                revision: 6,
                total_keys: 15,
                total_size_bytes: 24576
            }
        );
    }
}
