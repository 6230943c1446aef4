//! How many watch streams and watchers one member has open, for etcd's
//! `etcd_debugging_mvcc_watch_stream_total` and
//! `etcd_debugging_mvcc_watcher_total` gauges (etcd `mvcc/metrics.go`).
//!
//! Every [`super::watch_stream::WatchStream`] (gRPC or the gateway's
//! `/v3/watch`) holds a [`StreamCount`] from its member's [`WatchGauges`]
//! and tells it how many watchers it has after each change; dropping the
//! stream takes its counts back. A watcher is counted from the moment it
//! is registered, before its `created` response is sent, so a client that
//! sees the gauge grow knows the watcher sees every later change.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One member's open watch streams and watchers.
#[derive(Debug, Default)]
pub struct WatchGauges {
    streams: AtomicU64,
    watchers: AtomicU64,
}

impl WatchGauges {
    /// Both gauges at zero.
    pub fn new() -> Arc<WatchGauges> {
        Arc::new(WatchGauges::default())
    }

    /// Counts one more open stream, with no watcher yet, until the
    /// returned count is dropped.
    pub fn open_stream(self: &Arc<WatchGauges>) -> StreamCount {
        self.streams.fetch_add(1, Ordering::Relaxed);
        StreamCount {
            gauges: Arc::clone(self),
            watchers: 0,
        }
    }

    /// Watch streams open now.
    pub fn streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }

    /// Watchers registered now, over every open stream.
    pub fn watchers(&self) -> u64 {
        self.watchers.load(Ordering::Relaxed)
    }
}

/// One open stream's share of the gauges; gives it back when dropped.
#[derive(Debug)]
pub struct StreamCount {
    gauges: Arc<WatchGauges>,
    watchers: u64,
}

impl StreamCount {
    /// The stream has `watchers` watchers now (registered, not canceled).
    pub fn set_watchers(&mut self, watchers: usize) {
        let watchers = watchers as u64;
        if watchers >= self.watchers {
            let more = watchers - self.watchers;
            self.gauges.watchers.fetch_add(more, Ordering::Relaxed);
        } else {
            let fewer = self.watchers - watchers;
            self.gauges.watchers.fetch_sub(fewer, Ordering::Relaxed);
        }
        self.watchers = watchers;
    }
}

impl Drop for StreamCount {
    fn drop(&mut self) {
        self.set_watchers(0);
        self.gauges.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_watchers_come_back_to_zero() {
        let gauges = WatchGauges::new();
        let mut first = gauges.open_stream();
        let mut second = gauges.open_stream();
        first.set_watchers(3);
        second.set_watchers(1);
        assert_eq!((gauges.streams(), gauges.watchers()), (2, 4));
        first.set_watchers(2);
        assert_eq!(gauges.watchers(), 3);
        drop(first);
        assert_eq!((gauges.streams(), gauges.watchers()), (1, 1));
        drop(second);
        assert_eq!((gauges.streams(), gauges.watchers()), (0, 0));
    }
}
