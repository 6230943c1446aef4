//! Writing the data directory a restored member starts from, as etcd's
//! `snapshot restore` does (`saveWALAndSnap`): a WAL with the new cluster's
//! metadata, one `AddNode` conf-change entry per member (term 1, indexes
//! `1..=n`), a hard state committing them and a snapshot marker at `n`; and
//! a snapshot file at index `n`, term 1, whose state has applied index `n`.
//! The unchanged `keel` binary restarts from it (`node/bootstrap.rs`).

use std::path::Path;

use bytes::Bytes;
use keel_kernel::membership::{Member, bootstrap_entries};
use keel_kernel::raft::{ConfState, HardState, Snapshot, SnapshotMetadata};
use keel_wal::{FsStorage, Metadata, SnapshotFiles, SnapshotMarker, Wal, WalOptions};

use crate::error::SnapshotError;

/// Snapshot files the server keeps (its `SNAPSHOT_FILES_KEPT`).
const SNAPSHOT_FILES_KEPT: usize = 5;

/// The new cluster a data directory is written for.
pub struct NewCluster<'a> {
    /// Members, ascending by id.
    pub members: &'a [Member],
    /// The cluster id.
    pub cluster_id: u64,
    /// The member this data directory belongs to.
    pub member_id: u64,
}

/// True when `data_dir` exists and is not an empty directory.
///
/// Errors: [`SnapshotError::Io`] when it cannot be inspected.
pub fn is_taken(data_dir: &Path) -> Result<bool, SnapshotError> {
    match std::fs::read_dir(data_dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => Ok(true),
        Err(err) => Err(SnapshotError::io("read", data_dir, err)),
    }
}

/// Writes `<data_dir>/member/{wal,snap}` for `cluster` with `state` (the
/// state machine's snapshot bytes, applied index = number of members,
/// applied term 1), everything fsynced.
///
/// Errors: [`SnapshotError::Io`] or [`SnapshotError::Write`].
pub fn write(
    data_dir: &Path,
    cluster: &NewCluster<'_>,
    state: Vec<u8>,
) -> Result<(), SnapshotError> {
    let member = data_dir.join("member");
    let open = |name: &str| {
        let path = member.join(name);
        FsStorage::open(&path).map_err(|e| SnapshotError::io("create", &path, e))
    };
    let (wal_storage, snap_storage) = (open("wal")?, open("snap")?);
    let write_err = |e: keel_wal::WalError| SnapshotError::Write(e.to_string());
    let entries = bootstrap_entries(cluster.members);
    let index = entries.len() as u64;
    let conf_state = ConfState {
        voters: cluster.members.iter().map(|m| m.id).collect(),
        ..ConfState::default()
    };
    let snapshot = Snapshot {
        metadata: SnapshotMetadata {
            index,
            term: 1,
            conf_state: conf_state.clone(),
        },
        data: Bytes::from(state),
    };
    SnapshotFiles::new(snap_storage, SNAPSHOT_FILES_KEPT)
        .save(&snapshot)
        .map_err(write_err)?;
    let metadata = Metadata {
        cluster_id: cluster.cluster_id,
        node_id: cluster.member_id,
    };
    let mut wal = Wal::create(wal_storage, WalOptions::default(), metadata).map_err(write_err)?;
    let hard_state = HardState {
        term: 1,
        vote: 0,
        commit: index,
    };
    wal.append(&entries, Some(&hard_state)).map_err(write_err)?;
    wal.append_snapshot_marker(&SnapshotMarker {
        index,
        term: 1,
        conf_state,
    })
    .map_err(write_err)?;
    wal.sync().map_err(write_err)?;
    Ok(())
}
