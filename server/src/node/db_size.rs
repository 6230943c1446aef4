//! The member's estimate of its state size, reported as `dbSize` by
//! Maintenance.Status and compared with `--quota-backend-bytes`.
//!
//! It is the size of the last snapshot (taken or installed) plus the bytes
//! of every entry applied since: it never shrinks between snapshots, as
//! etcd's bbolt file does not until a defragment.

/// The estimated state size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbSizeEstimate {
    bytes: u64,
}

impl DbSizeEstimate {
    /// Starts from a snapshot of `snapshot_bytes`.
    pub fn new(snapshot_bytes: u64) -> DbSizeEstimate {
        DbSizeEstimate {
            bytes: snapshot_bytes,
        }
    }

    /// The estimate (bytes).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Entries with `entry_bytes` of data were applied.
    pub fn applied(&mut self, entry_bytes: u64) {
        self.bytes = self.bytes.saturating_add(entry_bytes);
    }

    /// A snapshot of `snapshot_bytes` was taken or installed: the estimate
    /// restarts from it.
    pub fn snapshotted(&mut self, snapshot_bytes: u64) {
        self.bytes = snapshot_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_applies_and_restarts_at_snapshots() {
        let mut size = DbSizeEstimate::new(1_000);
        size.applied(24);
        size.applied(u64::MAX);
        assert_eq!(size.bytes(), u64::MAX, "saturates");
        size.snapshotted(900);
        assert_eq!(size.bytes(), 900);
    }
}
