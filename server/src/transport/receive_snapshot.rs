//! Receiving one snapshot transfer: each chunk is checked
//! ([`ChunkChecker`]) and its data written to the transfer's file
//! ([`SnapshotSink`], off the async workers) before the next chunk is read,
//! so the receiver holds one chunk at a time whatever the snapshot's size
//! (gRPC flow control holds the sender back meanwhile). Once the last
//! chunk's checksum matched and the sender closed the stream, the file is
//! made durable and the snapshot handed on as its data mapped from that
//! file. Any error drops the sink, which removes the partial file.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tonic::Status;

use super::ReceivedSnapshot;
use super::inbox::{InboxError, SnapshotInbox, SnapshotSink};
use super::snapshot::{ChunkChecker, ChunkOutcome, SnapshotError, header_of};
use crate::proto::keelpeerpb::SnapshotChunk;
use keel_wal::WalError;

use crate::blocking::run_blocking;

/// Longest wait for the next chunk of a transfer: a sender that stalls
/// longer has abandoned it (its partial file is removed and its slot
/// freed).
pub const SNAPSHOT_CHUNK_WAIT_MS: u64 = 30_000;

/// Most snapshot transfers one member receives at a time (each may write a
/// file as large as the snapshot); more are refused with
/// `RESOURCE_EXHAUSTED` and the leader retries later.
pub const SNAPSHOT_RECEIVES_MAX: usize = 2;

/// Receives the transfer `chunks` carries into a sink of `inbox`, checking
/// every chunk with `check_route` (cluster and member ids) and against
/// `size_bytes_max`. Returns the snapshot, its data mapped from the file.
///
/// Errors (gRPC statuses, the partial file removed): `INVALID_ARGUMENT` for
/// a malformed chunk sequence (see [`SnapshotError`]) or a Raft message
/// that does not describe the snapshot; `DEADLINE_EXCEEDED` when no chunk
/// came for [`SNAPSHOT_CHUNK_WAIT_MS`]; `RESOURCE_EXHAUSTED` for a full
/// disk; `INTERNAL` for other storage failures; the stream's own error
/// when the connection broke.
pub async fn receive_snapshot<St>(
    inbox: Arc<dyn SnapshotInbox>,
    size_bytes_max: u64,
    check_route: impl Fn(&SnapshotChunk) -> Result<(), Status>,
    mut chunks: St,
) -> Result<ReceivedSnapshot, Status>
where
    St: Stream<Item = Result<SnapshotChunk, Status>> + Unpin,
{
    let mut checker = ChunkChecker::new(size_bytes_max);
    let Some(first) = next_chunk(&mut chunks).await? else {
        return Err(refused(checker.end_of_stream().err()));
    };
    check_route(&first)?;
    let mut outcome = checker.check(&first).map_err(invalid)?;
    let header = header_of(&first);
    let (message, size_bytes) = (first.message.clone(), first.total_size_bytes);
    let announced = message.clone();
    let mut sink = run_blocking(move || inbox.begin(&header, size_bytes, &announced))
        .await
        .map_err(inbox_status)?;
    sink = write(sink, first.data).await?;
    while outcome == ChunkOutcome::More {
        let Some(chunk) = next_chunk(&mut chunks).await? else {
            return Err(refused(checker.end_of_stream().err()));
        };
        check_route(&chunk)?;
        outcome = checker.check(&chunk).map_err(invalid)?;
        sink = write(sink, chunk.data).await?;
    }
    if next_chunk(&mut chunks).await?.is_some() {
        return Err(invalid(SnapshotError::AfterLast));
    }
    let data = run_blocking(move || sink.commit())
        .await
        .map_err(storage_status)?;
    Ok(ReceivedSnapshot {
        from: header.from,
        index: header.index,
        term: header.term,
        message,
        data,
    })
}

/// The next chunk, `None` at the end of the stream. Errors: the stream's
/// error; `DEADLINE_EXCEEDED` after [`SNAPSHOT_CHUNK_WAIT_MS`] without one.
async fn next_chunk<St>(chunks: &mut St) -> Result<Option<SnapshotChunk>, Status>
where
    St: Stream<Item = Result<SnapshotChunk, Status>> + Unpin,
{
    let wait = Duration::from_millis(SNAPSHOT_CHUNK_WAIT_MS);
    match tokio::time::timeout(wait, chunks.next()).await {
        Ok(next) => next.transpose(),
        Err(_) => Err(Status::deadline_exceeded(format!(
            "keel: no snapshot chunk within {SNAPSHOT_CHUNK_WAIT_MS} ms; transfer abandoned"
        ))),
    }
}

/// Writes one chunk's data into `sink` off the async workers; hands the
/// sink back.
async fn write(
    mut sink: Box<dyn SnapshotSink>,
    data: Bytes,
) -> Result<Box<dyn SnapshotSink>, Status> {
    if data.is_empty() {
        return Ok(sink);
    }
    run_blocking(move || sink.write(&data).map(|()| sink))
        .await
        .map_err(storage_status)
}

fn invalid(err: SnapshotError) -> Status {
    Status::invalid_argument(err.to_string())
}

/// The status for a stream that ended early (`why`, if the checker knows).
fn refused(why: Option<SnapshotError>) -> Status {
    match why {
        Some(err) => invalid(err),
        None => Status::internal("keel: snapshot stream ended without a snapshot"),
    }
}

fn inbox_status(err: InboxError) -> Status {
    match err {
        InboxError::Refused(_) => Status::invalid_argument(err.to_string()),
        InboxError::Storage(err) => storage_status(err),
    }
}

fn storage_status(err: WalError) -> Status {
    let message = format!("keel: cannot write the received snapshot: {err}");
    tracing::warn!(%err, "receiving a snapshot failed");
    if err.is_storage_full() {
        Status::resource_exhausted(message)
    } else {
        Status::internal(message)
    }
}
