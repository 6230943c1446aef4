//! Snapshots in chunks: cutting one into [`SnapshotChunk`]s on the send side
//! and checking them on the receive side, where each chunk's data goes to a
//! file as it arrives (`inbox.rs`) and is never reassembled in memory.
//!
//! Every chunk repeats the snapshot's identity (from, to, index, term, total
//! size); chunks arrive in order with contiguous offsets; the last chunk
//! carries the CRC-32 (IEEE) of the whole snapshot.

use bytes::Bytes;

use crate::proto::keelpeerpb::SnapshotChunk;

/// Identity of a snapshot transfer, repeated in every chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// Cluster the sender belongs to.
    pub cluster_id: u64,
    /// Sending member id.
    pub from: u64,
    /// Receiving member id.
    pub to: u64,
    /// Raft index of the last entry covered.
    pub index: u64,
    /// Raft term of that entry.
    pub term: u64,
}

/// Cuts a snapshot into chunks of at most `chunk_size_bytes` data bytes
/// (zero-copy slices of `data`, which on a leader is its snapshot file
/// mapped in memory). An empty snapshot yields one empty, last chunk. The
/// Raft `message` rides on the first chunk only. The CRC-32 the last chunk
/// carries is computed chunk by chunk as the stream is pulled, so no pass
/// over the whole snapshot precedes the first chunk.
pub fn cut_chunks(
    header: SnapshotHeader,
    message: Bytes,
    data: Bytes,
    chunk_size_bytes: usize,
) -> impl Iterator<Item = SnapshotChunk> + Send + 'static {
    debug_assert!(chunk_size_bytes > 0, "chunks must carry data");
    let chunk_size_bytes = chunk_size_bytes.max(1);
    let total = data.len();
    let chunk_count = total.div_ceil(chunk_size_bytes).max(1);
    let mut crc32 = crc32fast::Hasher::new();
    (0..chunk_count).map(move |i| {
        let start = i * chunk_size_bytes;
        let end = (start + chunk_size_bytes).min(total);
        let last = i + 1 == chunk_count;
        let piece = data.slice(start..end);
        crc32.update(&piece);
        SnapshotChunk {
            cluster_id: header.cluster_id,
            from: header.from,
            to: header.to,
            index: header.index,
            term: header.term,
            total_size_bytes: total as u64,
            offset_bytes: start as u64,
            data: piece,
            last,
            crc32: if last { crc32.clone().finalize() } else { 0 },
            message: if i == 0 {
                message.clone()
            } else {
                Bytes::new()
            },
        }
    })
}

/// Why a chunk stream was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The announced size is above the receiver's limit.
    #[error("keel: snapshot of {size_bytes} bytes exceeds the limit of {size_bytes_max} bytes")]
    TooLarge {
        /// Announced size.
        size_bytes: u64,
        /// The receiver's limit.
        size_bytes_max: u64,
    },
    /// The first chunk does not start at offset 0 or lacks the Raft message.
    #[error("keel: snapshot stream must start with the first chunk carrying the raft message")]
    BadFirstChunk,
    /// A chunk's identity differs from the first chunk's.
    #[error("keel: snapshot chunk belongs to a different snapshot")]
    MixedSnapshots,
    /// A chunk does not continue where the previous one ended, or overruns the total.
    #[error(
        "keel: snapshot chunk at offset {offset_bytes} with {len_bytes} bytes; expected offset {expected_bytes} of {total_bytes}"
    )]
    OutOfOrder {
        /// The chunk's offset.
        offset_bytes: u64,
        /// The chunk's data length.
        len_bytes: u64,
        /// Bytes received so far.
        expected_bytes: u64,
        /// Announced total.
        total_bytes: u64,
    },
    /// The last chunk came before all bytes, or all bytes came without a last chunk.
    #[error("keel: snapshot ended after {received_bytes} of {total_bytes} bytes")]
    Incomplete {
        /// Bytes received.
        received_bytes: u64,
        /// Announced total.
        total_bytes: u64,
    },
    /// The checksum of the received bytes differs from the sender's.
    #[error("keel: snapshot checksum mismatch (got {got:#010x}, sender said {want:#010x})")]
    ChecksumMismatch {
        /// Checksum of what arrived.
        got: u32,
        /// Checksum the sender sent.
        want: u32,
    },
    /// A chunk arrived after the last one.
    #[error("keel: snapshot chunk after the last chunk")]
    AfterLast,
}

/// Checks a snapshot's chunks as they arrive, without keeping their data:
/// the first chunk opens the transfer (offset 0, the Raft message, a size
/// within the limit), every later one must repeat its identity and continue
/// where the previous one ended, and the last one must complete the size
/// and carry the CRC-32 of all the data (computed here on the way). The
/// caller writes each accepted chunk's data out (`inbox.rs`); nothing here
/// grows with the snapshot.
#[derive(Debug)]
pub struct ChunkChecker {
    size_bytes_max: u64,
    state: CheckerState,
}

#[derive(Debug)]
enum CheckerState {
    Empty,
    Receiving {
        /// The first chunk's identity (its data and message dropped).
        first: SnapshotChunk,
        received_bytes: u64,
        crc32: crc32fast::Hasher,
    },
    Done,
}

/// Where a transfer stands after an accepted chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// More chunks are due.
    More,
    /// That was the last chunk: every byte arrived and the checksum matches.
    Complete,
}

impl ChunkChecker {
    /// A checker that accepts snapshots of at most `size_bytes_max` bytes.
    pub fn new(size_bytes_max: u64) -> Self {
        ChunkChecker {
            size_bytes_max,
            state: CheckerState::Empty,
        }
    }

    /// Checks the next chunk. Errors: any [`SnapshotError`]; after an error
    /// the transfer is over and the caller discards what it wrote.
    pub fn check(&mut self, chunk: &SnapshotChunk) -> Result<ChunkOutcome, SnapshotError> {
        let (first, received_bytes, crc32) =
            match std::mem::replace(&mut self.state, CheckerState::Done) {
                CheckerState::Done => return Err(SnapshotError::AfterLast),
                CheckerState::Empty => (self.open(chunk)?, 0, crc32fast::Hasher::new()),
                CheckerState::Receiving {
                    first,
                    received_bytes,
                    crc32,
                } => (first, received_bytes, crc32),
            };
        self.continue_with(first, received_bytes, crc32, chunk)
    }

    /// Checks that the stream may end here: the last chunk was accepted.
    /// Errors: [`SnapshotError::Incomplete`] when no chunk or not all chunks arrived.
    pub fn end_of_stream(&self) -> Result<(), SnapshotError> {
        match &self.state {
            CheckerState::Done => Ok(()),
            CheckerState::Empty => Err(SnapshotError::Incomplete {
                received_bytes: 0,
                total_bytes: 0,
            }),
            CheckerState::Receiving {
                first,
                received_bytes,
                ..
            } => Err(SnapshotError::Incomplete {
                received_bytes: *received_bytes,
                total_bytes: first.total_size_bytes,
            }),
        }
    }

    /// Checks the first chunk; returns its identity.
    fn open(&self, chunk: &SnapshotChunk) -> Result<SnapshotChunk, SnapshotError> {
        if chunk.total_size_bytes > self.size_bytes_max {
            return Err(SnapshotError::TooLarge {
                size_bytes: chunk.total_size_bytes,
                size_bytes_max: self.size_bytes_max,
            });
        }
        if chunk.offset_bytes != 0 || chunk.message.is_empty() {
            return Err(SnapshotError::BadFirstChunk);
        }
        Ok(SnapshotChunk {
            data: Bytes::new(),
            message: Bytes::new(),
            ..chunk.clone()
        })
    }

    fn continue_with(
        &mut self,
        first: SnapshotChunk,
        received_bytes: u64,
        mut crc32: crc32fast::Hasher,
        chunk: &SnapshotChunk,
    ) -> Result<ChunkOutcome, SnapshotError> {
        if identity(&first) != identity(chunk) {
            return Err(SnapshotError::MixedSnapshots);
        }
        let end = received_bytes.saturating_add(chunk.data.len() as u64);
        if chunk.offset_bytes != received_bytes || end > first.total_size_bytes {
            return Err(SnapshotError::OutOfOrder {
                offset_bytes: chunk.offset_bytes,
                len_bytes: chunk.data.len() as u64,
                expected_bytes: received_bytes,
                total_bytes: first.total_size_bytes,
            });
        }
        crc32.update(&chunk.data);
        if !chunk.last {
            self.state = CheckerState::Receiving {
                first,
                received_bytes: end,
                crc32,
            };
            return Ok(ChunkOutcome::More);
        }
        if end != first.total_size_bytes {
            return Err(SnapshotError::Incomplete {
                received_bytes: end,
                total_bytes: first.total_size_bytes,
            });
        }
        let got = crc32.finalize();
        if got != chunk.crc32 {
            return Err(SnapshotError::ChecksumMismatch {
                got,
                want: chunk.crc32,
            });
        }
        Ok(ChunkOutcome::Complete)
    }
}

/// What every chunk of one transfer repeats.
fn identity(chunk: &SnapshotChunk) -> (u64, u64, u64, u64, u64, u64) {
    (
        chunk.cluster_id,
        chunk.from,
        chunk.to,
        chunk.index,
        chunk.term,
        chunk.total_size_bytes,
    )
}

/// The identity of the transfer `chunk` belongs to.
pub fn header_of(chunk: &SnapshotChunk) -> SnapshotHeader {
    SnapshotHeader {
        cluster_id: chunk.cluster_id,
        from: chunk.from,
        to: chunk.to,
        index: chunk.index,
        term: chunk.term,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    const HEADER: SnapshotHeader = SnapshotHeader {
        cluster_id: 7,
        from: 1,
        to: 2,
        index: 100,
        term: 3,
    };

    fn data(len: usize) -> Bytes {
        (0..len)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    /// What the receiver would have written: the accepted chunks' data
    /// (the test keeps it; the receiver writes it to a file), the first
    /// chunk's header and message.
    #[derive(Debug)]
    struct Assembled {
        header: SnapshotHeader,
        message: Bytes,
        data: Bytes,
    }

    fn assemble(
        chunks: Vec<SnapshotChunk>,
        size_bytes_max: u64,
    ) -> Result<Assembled, SnapshotError> {
        let mut checker = ChunkChecker::new(size_bytes_max);
        let mut data = Vec::new();
        let mut first = None;
        let mut complete = false;
        for chunk in chunks {
            complete = checker.check(&chunk)? == ChunkOutcome::Complete;
            first.get_or_insert_with(|| (header_of(&chunk), chunk.message.clone()));
            data.extend_from_slice(&chunk.data);
        }
        checker.end_of_stream()?;
        assert!(complete, "end_of_stream succeeded after the last chunk");
        let (header, message) = first.expect("a chunk arrived");
        Ok(Assembled {
            header,
            message,
            data: data.into(),
        })
    }

    #[test]
    fn round_trip_across_chunk_sizes() {
        for (len, chunk_size) in [(0, 4), (1, 4), (4, 4), (10, 4), (1000, 7), (1000, 1000)] {
            let chunks: Vec<_> =
                cut_chunks(HEADER, Bytes::from_static(b"msg"), data(len), chunk_size).collect();
            assert_eq!(chunks.len(), len.div_ceil(chunk_size).max(1));
            let snapshot = assemble(chunks, 1 << 20).unwrap();
            assert_eq!(snapshot.data, data(len), "len {len} chunk {chunk_size}");
            assert_eq!(snapshot.header, HEADER);
            assert_eq!(snapshot.message, Bytes::from_static(b"msg"));
        }
    }

    fn chunks(len: usize) -> Vec<SnapshotChunk> {
        cut_chunks(HEADER, Bytes::from_static(b"msg"), data(len), 4).collect()
    }

    #[test]
    fn too_large_is_refused_before_buffering() {
        let err = assemble(chunks(10), 9).unwrap_err();
        assert_eq!(
            err,
            SnapshotError::TooLarge {
                size_bytes: 10,
                size_bytes_max: 9
            }
        );
    }

    #[test]
    fn reordered_or_missing_chunks_are_refused() {
        let mut c = chunks(12);
        c.swap(0, 1);
        assert_eq!(assemble(c, 100).unwrap_err(), SnapshotError::BadFirstChunk);
        let mut c = chunks(12);
        c.remove(1);
        assert!(matches!(
            assemble(c, 100).unwrap_err(),
            SnapshotError::OutOfOrder { .. }
        ));
        let mut c = chunks(12);
        c.pop();
        assert_eq!(
            assemble(c, 100).unwrap_err(),
            SnapshotError::Incomplete {
                received_bytes: 8,
                total_bytes: 12
            }
        );
        assert!(matches!(
            assemble(Vec::new(), 100).unwrap_err(),
            SnapshotError::Incomplete { .. }
        ));
    }

    #[test]
    fn corruption_and_mixing_are_detected() {
        let mut c = chunks(12);
        c[1].data = Bytes::from_static(b"XXXX");
        assert!(matches!(
            assemble(c, 100).unwrap_err(),
            SnapshotError::ChecksumMismatch { .. }
        ));
        let mut c = chunks(12);
        c[2].term = 4;
        assert_eq!(assemble(c, 100).unwrap_err(), SnapshotError::MixedSnapshots);
        let mut c = chunks(4);
        c.push(c[0].clone());
        assert_eq!(assemble(c, 100).unwrap_err(), SnapshotError::AfterLast);
    }
}
