//! The duration histograms of `/metrics`, fed by the member as it runs:
//! [`Timings`] is the [`NodeObserver`] the server installs in the node
//! (see [`crate::observe`]). Names and buckets are etcd v3.4's:
//!
//! - `etcd_disk_wal_fsync_duration_seconds` (etcd `wal/metrics.go`): one
//!   observation per WAL sync job. keel's job writes the batch with direct
//!   I/O and then `fdatasync`s it; etcd writes through the page cache, so
//!   its `fdatasync` does the same device writes. Both time how long a
//!   batch takes to become durable.
//! - `etcd_disk_backend_snapshot_duration_seconds` (etcd
//!   `mvcc/backend/metrics.go`, the time to write a full copy of the
//!   backend): one observation per state-machine snapshot file written
//!   (every `--snapshot-count` entries, or a leader's snapshot received).
//!   keel has no bbolt and so no `etcd_disk_backend_commit_duration_seconds`:
//!   its applied state lives in memory and becomes durable through the WAL
//!   fsync above and these snapshot files.
//! - `etcd_network_peer_round_trip_time_seconds{To="<member id hex>"}`
//!   (etcd `rafthttp/metrics.go`): one observation per answered probe to
//!   a peer (see [`crate::transport::probe`]).

use std::sync::Arc;
use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, HistogramVec, Registry, exponential_buckets};

use crate::observe::{NodeObserver, Observer};

/// The histograms one member's node reports into.
pub struct Timings {
    wal_fsync: Histogram,
    snapshot_save: Histogram,
    peer_round_trip: HistogramVec,
}

/// A histogram with `count` exponential buckets from `start` seconds,
/// each `factor` times the last (etcd's `prometheus.ExponentialBuckets`).
fn histogram_opts(
    name: &str,
    help: &str,
    start: f64,
    factor: f64,
    count: usize,
) -> prometheus::Result<HistogramOpts> {
    Ok(HistogramOpts::new(name, help).buckets(exponential_buckets(start, factor, count)?))
}

impl Timings {
    /// The histograms, empty, registered in `registry`.
    ///
    /// Errors: a name or bucket layout the `prometheus` crate refuses, or
    /// a name `registry` holds already (bugs).
    pub fn register(registry: &Registry) -> prometheus::Result<Arc<Timings>> {
        let wal_fsync = Histogram::with_opts(histogram_opts(
            "etcd_disk_wal_fsync_duration_seconds",
            "The latency distributions of fsync called by WAL.",
            0.001,
            2.0,
            14,
        )?)?;
        let snapshot_save = Histogram::with_opts(histogram_opts(
            "etcd_disk_backend_snapshot_duration_seconds",
            "The latency distribution of backend snapshots.",
            0.01,
            2.0,
            17,
        )?)?;
        let peer_round_trip = HistogramVec::new(
            histogram_opts(
                "etcd_network_peer_round_trip_time_seconds",
                "Round-Trip-Time histogram between peers",
                0.0001,
                2.0,
                16,
            )?,
            &["To"],
        )?;
        registry.register(Box::new(wal_fsync.clone()))?;
        registry.register(Box::new(snapshot_save.clone()))?;
        registry.register(Box::new(peer_round_trip.clone()))?;
        Ok(Arc::new(Timings {
            wal_fsync,
            snapshot_save,
            peer_round_trip,
        }))
    }

    /// An [`Observer`] reporting into these histograms.
    pub fn observer(self: &Arc<Timings>) -> Observer {
        Observer::new(Arc::clone(self) as Arc<dyn NodeObserver>)
    }
}

impl NodeObserver for Timings {
    fn wal_fsynced(&self, elapsed: Duration) {
        self.wal_fsync.observe(elapsed.as_secs_f64());
    }

    fn snapshot_saved(&self, elapsed: Duration) {
        self.snapshot_save.observe(elapsed.as_secs_f64());
    }

    fn peer_round_trip(&self, to: u64, elapsed: Duration) {
        self.peer_round_trip
            .with_label_values(&[format!("{to:x}").as_str()])
            .observe(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use prometheus::{Encoder, TextEncoder};

    fn render(registry: &Registry) -> String {
        let mut body = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut body)
            .unwrap();
        String::from_utf8(body).unwrap()
    }

    #[test]
    fn reports_land_in_etcds_histograms_and_buckets() {
        let registry = Registry::new();
        let timings = Timings::register(&registry).unwrap();
        let observer = timings.observer();
        observer.wal_fsynced(Duration::from_micros(1500));
        observer.snapshot_saved(Duration::from_millis(30));
        observer.peer_round_trip(0xabc, Duration::from_micros(250));
        let text = render(&registry);
        for line in [
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 0",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 1",
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"8.192\"} 1",
            "etcd_disk_wal_fsync_duration_seconds_count 1",
            "etcd_disk_backend_snapshot_duration_seconds_bucket{le=\"0.04\"} 1",
            "etcd_disk_backend_snapshot_duration_seconds_bucket{le=\"655.36\"} 1",
            "etcd_network_peer_round_trip_time_seconds_bucket{To=\"abc\",le=\"0.0004\"} 1",
            "etcd_network_peer_round_trip_time_seconds_count{To=\"abc\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }
}
