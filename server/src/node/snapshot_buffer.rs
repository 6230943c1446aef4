//! Memory for the next snapshot's encoding, made ready off the driver.
//!
//! Encoding a large state into fresh memory costs more in page faults than
//! in encoding: for 1M keys of 64 bytes with 256-byte values (324 MiB),
//! 0.5-1.1 s on this project's CI VM against 0.16-0.31 s into a buffer
//! whose pages were touched beforehand (`mvcc_memory` prints both). The
//! encoding holds the driver, and a leader that pauses longer than the
//! election timeout loses its followers. So when a snapshot is due, the
//! driver first has a [`SnapshotBuffer`] allocate and touch a buffer of the
//! state's size on the blocking pool, and encodes into it at a later
//! Ready. The buffer then becomes the snapshot's bytes: no memory is kept
//! between snapshots.

use super::background::{BackgroundJob, JobState};

/// Page size assumed when touching a buffer's pages.
const PAGE_BYTES: usize = 4096;

/// Extra room beyond the state's size when the buffer was asked for, so a
/// state that grew meanwhile still fits: 1/64 of the size plus 1 MiB.
fn with_slack(len_bytes: usize) -> usize {
    len_bytes
        .saturating_add(len_bytes / 64)
        .saturating_add(1 << 20)
}

/// A buffer being prepared, or ready.
pub(super) struct SnapshotBuffer {
    job: BackgroundJob<Vec<u8>>,
    ready: Option<Vec<u8>>,
}

impl SnapshotBuffer {
    /// Nothing prepared.
    pub fn new() -> SnapshotBuffer {
        SnapshotBuffer {
            job: BackgroundJob::new(),
            ready: None,
        }
    }

    /// The prepared buffer (empty, with its pages touched), if ready; else
    /// starts preparing one with room for a state of `len_bytes()` bytes
    /// (asked only then), unless one is being prepared. Never blocks.
    pub fn take(&mut self, len_bytes: impl FnOnce() -> usize) -> Option<Vec<u8>> {
        match self.job.try_take() {
            JobState::Done(buffer) => self.ready = Some(buffer),
            JobState::Running => return None,
            // A job that died is started again below.
            JobState::Idle | JobState::Died => {}
        }
        if let Some(buffer) = self.ready.take() {
            return Some(buffer);
        }
        let capacity = with_slack(len_bytes());
        self.job.start(move || touched(capacity));
        None
    }
}

/// An empty buffer with room for `capacity` bytes, every page touched once
/// so the encoding that fills it takes no page faults.
fn touched(capacity: usize) -> Vec<u8> {
    let mut buffer: Vec<u8> = Vec::with_capacity(capacity);
    for page in buffer.spare_capacity_mut().chunks_mut(PAGE_BYTES) {
        page[0].write(0);
    }
    std::hint::black_box(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_buffer_is_prepared_then_taken_once() {
        let mut buffers = SnapshotBuffer::new();
        let mut asked = 0;
        let mut taken = None;
        for _ in 0..1000 {
            taken = buffers.take(|| {
                asked += 1;
                3 << 20
            });
            if taken.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let buffer = taken.expect("the buffer was never ready");
        assert!(buffer.is_empty() && buffer.capacity() >= with_slack(3 << 20));
        assert_eq!(asked, 1, "the size is asked once per buffer");
        // The next call starts over.
        assert!(buffers.take(|| 10).is_none());
        assert!(buffers.job.is_out());
    }
}
