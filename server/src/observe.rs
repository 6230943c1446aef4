//! The seam between the parts of a member that measure durations (the node
//! driver around WAL fsyncs and snapshot files, the peer transport's
//! probes) and whatever records them (`/metrics`, see
//! `gateway::timings`). The node never depends on a metrics crate: it
//! calls a [`NodeObserver`] through an [`Observer`], which does nothing
//! unless the server installed one (madsim builds and unit tests keep the
//! default).
//!
//! Counters and gauges that are cheaper to read than to report (leader
//! changes, pending and failed proposals, open watchers) are not here: the
//! metrics read them from the member at scrape time
//! ([`crate::replica::NodeStatus`], [`crate::replica::Replica`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Receives the durations a member measures. Every method must return at
/// once (it runs on the node driver or a transport task); the default
/// implementations ignore the report.
pub trait NodeObserver: Send + Sync + 'static {
    /// One WAL sync job finished: the write of the batched records and the
    /// `fdatasync` that makes them durable took `elapsed`.
    fn wal_fsynced(&self, elapsed: Duration) {
        let _ = elapsed;
    }

    /// One state-machine snapshot file (the whole applied state) was
    /// written, synced and renamed into place in `elapsed`.
    fn snapshot_saved(&self, elapsed: Duration) {
        let _ = elapsed;
    }

    /// A snapshot job is about to encode the state applied up to `index`
    /// into its file, on the blocking pool, from a frozen copy of the state
    /// (the driver keeps applying meanwhile). The job waits until this
    /// returns: tests hold a snapshot in progress with it.
    fn snapshot_encoding(&self, index: u64) {
        let _ = index;
    }

    /// A probe sent to peer `to` (member id) on its Raft connection was
    /// answered after `elapsed`: one network round trip.
    fn peer_round_trip(&self, to: u64, elapsed: Duration) {
        let _ = (to, elapsed);
    }
}

/// The observer that ignores every report.
struct Ignore;

impl NodeObserver for Ignore {}

/// A shared [`NodeObserver`]; cheap to clone. [`Observer::default`]
/// ignores every report.
#[derive(Clone)]
pub struct Observer(Arc<dyn NodeObserver>);

impl Observer {
    /// An observer reporting to `observer`.
    pub fn new(observer: Arc<dyn NodeObserver>) -> Observer {
        Observer(observer)
    }

    /// See [`NodeObserver::wal_fsynced`].
    pub fn wal_fsynced(&self, elapsed: Duration) {
        self.0.wal_fsynced(elapsed);
    }

    /// See [`NodeObserver::snapshot_saved`].
    pub fn snapshot_saved(&self, elapsed: Duration) {
        self.0.snapshot_saved(elapsed);
    }

    /// See [`NodeObserver::snapshot_encoding`].
    pub fn snapshot_encoding(&self, index: u64) {
        self.0.snapshot_encoding(index);
    }

    /// See [`NodeObserver::peer_round_trip`].
    pub fn peer_round_trip(&self, to: u64, elapsed: Duration) {
        self.0.peer_round_trip(to, elapsed);
    }
}

impl Default for Observer {
    fn default() -> Observer {
        Observer(Arc::new(Ignore))
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Observer")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(u64, Duration)>>);

    impl NodeObserver for Recorder {
        fn peer_round_trip(&self, to: u64, elapsed: Duration) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push((to, elapsed));
            }
        }
    }

    #[test]
    fn reports_reach_the_installed_observer_only() {
        let recorder = Arc::new(Recorder::default());
        let observer = Observer::new(recorder.clone());
        observer.peer_round_trip(7, Duration::from_millis(3));
        observer.wal_fsynced(Duration::from_millis(1)); // ignored by default
        Observer::default().peer_round_trip(8, Duration::from_millis(1));
        let seen = recorder.0.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(seen, vec![(7, Duration::from_millis(3))]);
    }
}
