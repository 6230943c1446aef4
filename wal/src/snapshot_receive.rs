//! A snapshot file written as its data arrives from a peer
//! ([`SnapshotFiles::receive`]): each piece of data goes straight to the
//! file (no buffer beyond the piece the caller holds), and only a complete
//! file of the announced length is fsynced and renamed into place under
//! the name [`SnapshotFiles::save`] would give it. Until then it lives
//! under a temporary name unique to the transfer
//! (`{name}.{transfer:x}.recv.tmp`); a transfer dropped before
//! [`SnapshotReceiver::commit`] removes its temporary file, and
//! [`SnapshotFiles::remove_temporary`] removes those a crash left.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use keel_kernel::raft::SnapshotMetadata;

use crate::error::{Result, WalError};
use crate::snapshot_file::{SnapshotFiles, TEMP_SUFFIX, encode_header, snapshot_name};
use crate::storage::Storage;

/// Numbers the transfers of this process, so that two transfers of the same
/// snapshot never share a temporary file.
static NEXT_TRANSFER: AtomicU64 = AtomicU64::new(1);

/// Suffix (before [`TEMP_SUFFIX`]) of the temporary files of received
/// snapshots.
pub const RECEIVED_SUFFIX: &str = ".recv";

/// A snapshot file being received: written at increasing offsets as data
/// arrives, checksummed on the way. Dropping it before
/// [`SnapshotReceiver::commit`] removes its temporary file.
#[derive(Debug)]
pub struct SnapshotReceiver<S: Storage> {
    storage: S,
    file: S::File,
    /// Set once the file is renamed into place (the destructor then leaves it).
    committed: bool,
    /// Temporary name while receiving, and the snapshot file's name.
    temp: String,
    name: String,
    /// File offset the next data byte goes to.
    offset: u64,
    hasher: crc32fast::Hasher,
    /// Data bytes received so far, and the data length the header states.
    data_bytes: u64,
    data_len_bytes: u64,
}

impl<S: Storage> SnapshotFiles<S> {
    /// Starts receiving the snapshot `metadata` describes, of
    /// `data_len_bytes` bytes of data: creates its temporary file and writes
    /// the header. Errors: storage failures (nothing is left behind then).
    pub fn receive(
        &self,
        metadata: &SnapshotMetadata,
        data_len_bytes: u64,
    ) -> Result<SnapshotReceiver<S>> {
        let name = snapshot_name(metadata.term, metadata.index);
        let transfer = NEXT_TRANSFER.fetch_add(1, Ordering::Relaxed);
        let temp = format!("{name}.{transfer:x}{RECEIVED_SUFFIX}{TEMP_SUFFIX}");
        let storage = self.storage().clone();
        let file = storage
            .create(&temp)
            .map_err(WalError::io_for("create", &temp))?;
        let mut receiver = SnapshotReceiver {
            storage,
            file,
            committed: false,
            temp,
            name,
            offset: 0,
            hasher: crc32fast::Hasher::new(),
            data_bytes: 0,
            data_len_bytes,
        };
        let header = encode_header(metadata, data_len_bytes);
        receiver.write_raw(&header)?;
        Ok(receiver)
    }
}

impl<S: Storage> SnapshotReceiver<S> {
    /// The temporary file's name (for logs and tests).
    pub fn temp_name(&self) -> &str {
        &self.temp
    }

    /// Data bytes received so far.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Appends `data` to the snapshot's data. Errors:
    /// [`WalError::InvalidArgument`] for data beyond the announced length
    /// (nothing of it is written), storage failures.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let end = self.data_bytes.saturating_add(data.len() as u64);
        if end > self.data_len_bytes {
            return Err(WalError::InvalidArgument(format!(
                "snapshot data longer than the {} bytes announced",
                self.data_len_bytes
            )));
        }
        self.write_raw(data)?;
        self.data_bytes = end;
        Ok(())
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.storage
            .write_at(&self.file, self.offset, bytes)
            .map_err(WalError::io_for("write", &self.temp))?;
        self.hasher.update(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Completes the file: writes its checksum, fsyncs it, renames it into
    /// place (replacing a file of the same snapshot) and fsyncs the
    /// directory. Returns the snapshot file's name and its data, mapped from
    /// the file (file-backed pages on real files, see [`Storage::map`]).
    /// Errors: [`WalError::InvalidArgument`] when less data than announced
    /// arrived; storage failures. The temporary file is removed on error.
    pub fn commit(mut self) -> Result<(String, Bytes)> {
        if self.data_bytes != self.data_len_bytes {
            return Err(WalError::InvalidArgument(format!(
                "snapshot data of {} bytes, {} announced",
                self.data_bytes, self.data_len_bytes
            )));
        }
        let crc = self.hasher.clone().finalize();
        self.write_raw(&crc.to_le_bytes())?;
        self.storage
            .sync(&self.file)
            .map_err(WalError::io_for("fsync", &self.temp))?;
        self.storage
            .rename(&self.temp, &self.name)
            .map_err(WalError::io_for("rename", &self.temp))?;
        self.committed = true;
        self.storage
            .sync_dir()
            .map_err(WalError::io_for("fsync directory", ""))?;
        let files = SnapshotFiles::new(self.storage.clone(), 1);
        let data_len = usize::try_from(self.data_len_bytes)
            .map_err(|_| WalError::InvalidArgument("snapshot too large to map".to_owned()))?;
        let data = files.saved_data(&self.name, data_len)?;
        Ok((std::mem::take(&mut self.name), data))
    }
}

impl<S: Storage> Drop for SnapshotReceiver<S> {
    /// An abandoned transfer removes its temporary file (best effort: a
    /// leftover is removed at the next start, see
    /// [`SnapshotFiles::remove_temporary`]).
    fn drop(&mut self) {
        if !self.committed {
            let _ = self.storage.remove(&self.temp);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::snapshot_file::decode;
    use crate::storage::{SimConfig, SimStorage};
    use keel_kernel::raft::ConfState;

    fn metadata(index: u64) -> SnapshotMetadata {
        SnapshotMetadata {
            index,
            term: 2,
            conf_state: ConfState {
                voters: vec![1, 2],
                ..ConfState::default()
            },
        }
    }

    #[test]
    fn a_received_file_is_the_saved_file_and_maps_its_data() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 3);
        let mut receiver = files.receive(&metadata(10), 9).unwrap();
        assert!(disk.list().unwrap()[0].ends_with(".recv.tmp"));
        for piece in [&b"abc"[..], b"", b"defgh", b"i"] {
            receiver.write(piece).unwrap();
        }
        let (name, data) = receiver.commit().unwrap();
        assert_eq!(&data[..], b"abcdefghi");
        assert_eq!(disk.list().unwrap(), vec![name.clone()]);
        let loaded = decode(&disk.read_all(&name).unwrap()).unwrap();
        assert_eq!(loaded.metadata, metadata(10));
        assert_eq!(&loaded.data[..], b"abcdefghi");
        disk.crash();
        assert_eq!(files.load().unwrap().map(|s| s.metadata.index), Some(10));
    }

    #[test]
    fn too_much_too_little_or_abandoned_leaves_nothing() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 3);
        let mut receiver = files.receive(&metadata(10), 4).unwrap();
        let err = receiver.write(b"abcde").unwrap_err();
        assert!(err.to_string().contains("longer than the 4 bytes"), "{err}");
        receiver.write(b"abc").unwrap();
        let err = receiver.commit().unwrap_err();
        assert!(err.to_string().contains("3 bytes, 4 announced"), "{err}");
        assert!(disk.list().unwrap().is_empty());
        let mut receiver = files.receive(&metadata(10), 4).unwrap();
        receiver.write(b"ab").unwrap();
        drop(receiver);
        assert!(disk.list().unwrap().is_empty());
    }

    #[test]
    fn two_transfers_of_one_snapshot_do_not_share_a_file() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 3);
        let mut first = files.receive(&metadata(10), 1).unwrap();
        let mut second = files.receive(&metadata(10), 1).unwrap();
        assert_ne!(first.temp_name(), second.temp_name());
        first.write(b"x").unwrap();
        second.write(b"x").unwrap();
        drop(first);
        let (_, data) = second.commit().unwrap();
        assert_eq!(&data[..], b"x");
    }

    #[test]
    fn leftovers_of_a_crash_are_removed_and_snapshots_kept() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 3);
        let mut done = files.receive(&metadata(10), 1).unwrap();
        done.write(b"x").unwrap();
        let (name, _) = done.commit().unwrap();
        let mut partial = files.receive(&metadata(20), 8).unwrap();
        partial.write(b"half").unwrap();
        disk.sync_dir().unwrap();
        // A crash: the receiver's destructor never runs.
        std::mem::forget(partial);
        assert_eq!(disk.list().unwrap().len(), 2);
        assert_eq!(files.remove_temporary().unwrap(), 1);
        assert_eq!(disk.list().unwrap(), vec![name]);
    }
}
