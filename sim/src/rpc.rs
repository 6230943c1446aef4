//! Small helpers the client workloads share: a bounded wait for one
//! request, a random member, a client of a member's etcd API.

use std::time::Duration;

use bytes::Bytes;
use madsim::rand::Rng;

/// Waits at most `timeout_ms` simulated milliseconds for `work`; `None`
/// when it did not answer in time or answered `None`.
pub async fn within<T>(timeout_ms: u64, work: impl Future<Output = Option<T>>) -> Option<T> {
    let timeout = Duration::from_millis(timeout_ms);
    madsim::time::timeout(timeout, work).await.ok().flatten()
}

/// A member index in `0..members`, drawn from the seed.
pub fn random_member(members: u8) -> u8 {
    madsim::rand::thread_rng().gen_range(0..members.max(1))
}

/// `text` as a key or value.
pub fn bytes_of(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// Sleeps `ms` simulated milliseconds.
pub async fn sleep_ms(ms: u64) {
    madsim::time::sleep(Duration::from_millis(ms)).await;
}
