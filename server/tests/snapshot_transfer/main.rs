//! Snapshot transfers on loopback, with real files (issue 26: a follower
//! receives a snapshot in bounded chunks, never whole in memory):
//!
//! - [`stream`]: a member's peer service writes a snapshot into its
//!   snapshot directory as the chunks arrive; malformed sequences and cut
//!   transfers leave nothing behind.
//! - [`catch_up`]: three members; a follower behind the compacted log
//!   crashes in the middle of a transfer, restarts cleanly and installs the
//!   snapshot on the retry.
//!
//! The heap bound of a transfer is measured in `snapshot_stream_heap.rs`,
//! a binary of its own (it counts allocations with a global allocator).
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod catch_up;
mod stream;

use std::time::Duration;

/// Waits until `done` holds, checking every 10 ms; fails the test naming
/// `what` after `patience`.
async fn wait_until(patience: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + patience;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} within {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
