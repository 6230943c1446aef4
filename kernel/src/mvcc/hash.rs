//! HashKV: a checksum of the store's contents up to a revision, for
//! comparing members (etcd `Maintenance.HashKV`).

use super::error::MvccError;
use super::store::Store;

impl Store {
    /// CRC-32 (IEEE) over every stored version with main revision at or
    /// below `revision` (0 = current), in key then revision order: key,
    /// revision, create revision, version, lease, tombstone flag, value.
    /// Returns `(hash, compact_revision)`. Members with equal histories
    /// and equal compactions give equal hashes.
    ///
    /// Errors: `Compacted` if `revision` is positive and below the
    /// compacted revision; `FutureRevision` if above the current one.
    pub fn hash_kv(&self, revision: i64) -> Result<(u32, i64), MvccError> {
        if revision > 0 && revision < self.compact_revision {
            return Err(MvccError::Compacted);
        }
        if revision > self.current_revision {
            return Err(MvccError::FutureRevision);
        }
        let upto = if revision <= 0 {
            self.current_revision
        } else {
            revision
        };
        let mut hasher = crc32fast::Hasher::new();
        for ki in self.index.iter() {
            let key = ki.key();
            for v in ki.versions().take_while(|v| v.rev.main <= upto) {
                hasher.update(&(key.len() as u64).to_le_bytes());
                hasher.update(key);
                for field in [v.rev.main, v.rev.sub, v.create_revision, v.version, v.lease] {
                    hasher.update(&field.to_le_bytes());
                }
                let value = v.value.unwrap_or_default();
                hasher.update(&[u8::from(v.is_tombstone())]);
                hasher.update(&(value.len() as u64).to_le_bytes());
                hasher.update(value);
            }
        }
        Ok((hasher.finalize(), self.compact_revision))
    }
}
