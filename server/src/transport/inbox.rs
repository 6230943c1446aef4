//! Where the receive side puts a snapshot while its chunks arrive: straight
//! into a file, never whole in memory. [`SnapshotInbox::begin`] opens a
//! [`SnapshotSink`] for one transfer; the receiver writes each checked
//! chunk's data into it and, once the last chunk's checksum matched,
//! commits it, which makes the file durable and hands back the snapshot's
//! data mapped from the file.
//!
//! A member's inbox is [`FileInbox::for_member`]: the transfer writes
//! the snapshot file itself (`keel_wal::SnapshotFiles::receive`, under a
//! temporary name until complete, then renamed to the name the WAL's
//! snapshot marker refers to), so the node driver adopts that file by
//! logging its marker instead of writing the snapshot again (a file
//! without its marker is passed over at restart). A transfer that fails or
//! is abandoned removes its temporary file; those a crash left are removed
//! when the inbox is created at start.

use bytes::Bytes;
use keel_kernel::raft::{ConfState, Message, MessageType, SnapshotMetadata};
use keel_wal::{SimConfig, SimStorage, SnapshotFiles, SnapshotReceiver, Storage, WalError};

use super::snapshot::SnapshotHeader;

/// Why an inbox could not take a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The transfer does not describe a snapshot this member can take (its
    /// Raft message does not decode or names another snapshot).
    #[error("keel: {0}")]
    Refused(String),
    /// Writing the file failed (a full disk, an I/O error).
    #[error("keel: cannot write the received snapshot: {0}")]
    Storage(#[from] WalError),
}

/// Opens a destination for each snapshot transfer.
pub trait SnapshotInbox: Send + Sync + std::fmt::Debug + 'static {
    /// Opens the destination of the snapshot `header` names, of
    /// `size_bytes` bytes, announced by the encoded Raft `message` (blocking
    /// I/O). Errors: [`InboxError::Refused`] for a message that does not
    /// describe this snapshot, [`InboxError::Storage`] when the file cannot
    /// be created.
    fn begin(
        &self,
        header: &SnapshotHeader,
        size_bytes: u64,
        message: &[u8],
    ) -> Result<Box<dyn SnapshotSink>, InboxError>;
}

/// One transfer's destination. Dropping it before [`SnapshotSink::commit`]
/// discards what was written.
pub trait SnapshotSink: Send + 'static {
    /// Appends data (blocking I/O). Errors: storage failures, data beyond
    /// the announced size.
    fn write(&mut self, data: &[u8]) -> Result<(), WalError>;
    /// Makes the complete snapshot durable and returns its data, mapped
    /// from its file (blocking I/O). Errors: storage failures, less data
    /// than announced.
    fn commit(self: Box<Self>) -> Result<Bytes, WalError>;
}

/// An inbox writing each snapshot into a file of `files` as it arrives.
#[derive(Debug, Clone)]
pub struct FileInbox<S: Storage> {
    files: SnapshotFiles<S>,
    /// `None` for a member: the metadata comes from the Raft message and
    /// the file stays for the node driver to adopt. For a bare transport
    /// (tests, tools), the directory of `files`: the message is opaque and
    /// each file is removed from it once its data is mapped.
    hand_on: Option<S>,
}

impl<S: Storage> FileInbox<S> {
    /// A member's inbox over its snapshot directory (`files` over
    /// `storage`): removes the temporary files a crash left there first, so
    /// create it before anything writes snapshot files.
    /// Errors: storage failures while removing them.
    pub fn for_member(files: SnapshotFiles<S>) -> Result<FileInbox<S>, WalError> {
        let removed = files.remove_temporary()?;
        if removed > 0 {
            tracing::info!(removed, "removed snapshot files left unfinished by a crash");
        }
        Ok(FileInbox {
            files,
            hand_on: None,
        })
    }
}

impl FileInbox<SimStorage> {
    /// An inbox for a bare transport with no member behind it (tests,
    /// tools): the Raft message is passed on unread, and each snapshot is
    /// received into keel-wal's in-memory simulated disk and removed from
    /// it once handed on (so its data is held in memory once).
    pub fn hand_on() -> FileInbox<SimStorage> {
        let storage = SimStorage::new(SimConfig::default());
        FileInbox {
            files: SnapshotFiles::new(storage.clone(), 1),
            hand_on: Some(storage),
        }
    }
}

impl<S: Storage> SnapshotInbox for FileInbox<S> {
    fn begin(
        &self,
        header: &SnapshotHeader,
        size_bytes: u64,
        message: &[u8],
    ) -> Result<Box<dyn SnapshotSink>, InboxError> {
        let metadata = match self.hand_on {
            None => metadata_of(header, message)?,
            Some(_) => SnapshotMetadata {
                index: header.index,
                term: header.term,
                conf_state: ConfState::default(),
            },
        };
        let receiver = self.files.receive(&metadata, size_bytes)?;
        Ok(Box::new(FileSink {
            receiver,
            remove_after: self.hand_on.clone(),
        }))
    }
}

/// The snapshot metadata the Raft `message` carries, checked against the
/// transfer's `header`. Errors: [`InboxError::Refused`] for a message that
/// does not decode, is not a snapshot, or names another snapshot.
fn metadata_of(header: &SnapshotHeader, message: &[u8]) -> Result<SnapshotMetadata, InboxError> {
    let message = Message::decode(message)
        .map_err(|err| InboxError::Refused(format!("snapshot's raft message: {err}")))?;
    let metadata = match message.snapshot {
        Some(snapshot) if message.msg_type == MessageType::Snapshot => snapshot.metadata,
        _ => {
            return Err(InboxError::Refused(
                "the raft message of a snapshot transfer carries no snapshot".to_owned(),
            ));
        }
    };
    if (metadata.index, metadata.term) != (header.index, header.term) {
        return Err(InboxError::Refused(format!(
            "snapshot transfer of index {} term {} announced by a raft message for index {} term {}",
            header.index, header.term, metadata.index, metadata.term
        )));
    }
    Ok(metadata)
}

/// A transfer into a snapshot file (removed once handed on when
/// `remove_after` holds the directory).
struct FileSink<S: Storage> {
    receiver: SnapshotReceiver<S>,
    remove_after: Option<S>,
}

impl<S: Storage> SnapshotSink for FileSink<S> {
    fn write(&mut self, data: &[u8]) -> Result<(), WalError> {
        self.receiver.write(data)
    }

    fn commit(self: Box<Self>) -> Result<Bytes, WalError> {
        let FileSink {
            receiver,
            remove_after,
        } = *self;
        let (name, data) = receiver.commit()?;
        if let Some(storage) = remove_after {
            storage
                .remove(&name)
                .map_err(WalError::io_for("remove", &name))?;
        }
        Ok(data)
    }
}
