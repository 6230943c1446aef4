//! `GET /metrics`: Prometheus text format (`prometheus` crate), with etcd's
//! metric names where keel measures the same thing. Gauges and counters are
//! read from the member at scrape time ([`crate::replica::NodeStatus`],
//! [`crate::replica::ProposalCounts`], the watch gauges, the store), so
//! the node driver carries no metric code; durations are reported as they
//! are measured through the [`crate::observe`] seam into
//! [`super::timings::Timings`]. One registry per member, shared by every
//! client address and `--listen-metrics-urls` ([`super::metrics_listener`]).
//!
//! | name | type | value |
//! |---|---|---|
//! | `etcd_server_has_leader` | gauge | 1 when a leader is known |
//! | `etcd_server_is_leader` | gauge | 1 on the leader |
//! | `etcd_server_is_learner` | gauge | 1 on a learner |
//! | `etcd_server_leader_changes_seen_total` | counter | new leaders this member saw since it started, the first included |
//! | `etcd_server_proposals_committed_total` | gauge | Raft commit index (etcd sets it to the hard state's commit) |
//! | `etcd_server_proposals_applied_total` | gauge | applied Raft index |
//! | `etcd_server_proposals_pending` | gauge | client proposals waiting for their apply result |
//! | `etcd_server_proposals_failed_total` | counter | proposals that ended without an apply result: no leader, dropped at a leader change, timed out, storage failure |
//! | `etcd_server_quota_backend_bytes` | gauge | `--quota-backend-bytes` |
//! | `etcd_server_health_success` / `_failures` | counter | `/health` answers |
//! | `etcd_disk_wal_fsync_duration_seconds` | histogram | each WAL sync job (direct-I/O write + `fdatasync`); buckets 1 ms x2, 14 |
//! | `etcd_disk_backend_snapshot_duration_seconds` | histogram | each state-machine snapshot file written (keel's equivalent of etcd's backend commit: keel has no bbolt); buckets 10 ms x2, 17 |
//! | `etcd_network_peer_round_trip_time_seconds{To}` | histogram | each answered probe to peer `To` (member id, hex) on its Raft connection, every 5 s; buckets 0.1 ms x2, 16 |
//! | `etcd_mvcc_db_total_size_in_bytes` | gauge | approximate state size |
//! | `etcd_debugging_mvcc_keys_total` | gauge | live keys |
//! | `etcd_debugging_mvcc_current_revision` | gauge | store revision |
//! | `etcd_debugging_mvcc_watch_stream_total` | gauge | open watch streams (gRPC and `/v3/watch`) |
//! | `etcd_debugging_mvcc_watcher_total` | gauge | registered watchers over all streams |
//! | `keel_server_alarm_checks_total` | counter | periodic quota/NOSPACE checks the node driver ran (keel's own: a test or operator can wait for the next check) |
//! | `grpc_server_started_total` / `grpc_server_handled_total` | counter | calls by type, service, method (and code), gRPC and gateway ([`super::grpc_metrics`]) |
//!
//! As in etcd, `proposals_committed_total` and `proposals_applied_total`
//! are gauges despite their names.

use std::sync::{Arc, Mutex};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, IntCounter, IntGauge, Registry, TextEncoder};

use super::grpc_metrics::GrpcMetrics;
use super::routes::Services;
use super::timings::Timings;
use crate::observe::Observer;
use crate::replica::Replica;

/// One member's metrics registry.
pub struct Metrics {
    registry: Registry,
    has_leader: IntGauge,
    is_leader: IntGauge,
    is_learner: IntGauge,
    proposals_committed: IntGauge,
    proposals_applied: IntGauge,
    quota_backend_bytes: IntGauge,
    health_success: IntCounter,
    health_failures: IntCounter,
    db_total_size_bytes: IntGauge,
    keys_total: IntGauge,
    current_revision: IntGauge,
    alarm_checks: IntCounter,
    leader_changes: IntCounter,
    proposals_pending: IntGauge,
    proposals_failed: IntCounter,
    watch_streams: IntGauge,
    watchers: IntGauge,
    timings: Arc<Timings>,
    grpc: GrpcMetrics,
    /// Held while the values are read in: two scrapes at once (client port
    /// and metrics port) would otherwise both raise a counter to the same
    /// total, counting the difference twice.
    refreshing: Mutex<()>,
}

/// Registers a new metric built by `make` in `registry`.
fn register<M>(registry: &Registry, metric: prometheus::Result<M>) -> prometheus::Result<M>
where
    M: prometheus::core::Collector + Clone + 'static,
{
    let metric = metric?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

impl Metrics {
    /// A fresh registry with every metric at zero, and `grpc`'s counters.
    ///
    /// Errors: a metric name the `prometheus` crate refuses, or `grpc`
    /// already in another member's registry (a bug).
    pub fn new(grpc: &GrpcMetrics) -> prometheus::Result<Metrics> {
        let r = Registry::new();
        grpc.register(&r)?;
        let timings = Timings::register(&r)?;
        let gauge = |name: &str, help: &str| register(&r, IntGauge::new(name, help));
        let counter = |name: &str, help: &str| register(&r, IntCounter::new(name, help));
        Ok(Metrics {
            has_leader: gauge(
                "etcd_server_has_leader",
                "Whether or not a leader exists. 1 is existence, 0 is not.",
            )?,
            is_leader: gauge(
                "etcd_server_is_leader",
                "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            )?,
            is_learner: gauge(
                "etcd_server_is_learner",
                "Whether or not this member is a learner. 1 if is, 0 otherwise.",
            )?,
            proposals_committed: gauge(
                "etcd_server_proposals_committed_total",
                "The total number of consensus proposals committed.",
            )?,
            proposals_applied: gauge(
                "etcd_server_proposals_applied_total",
                "The total number of consensus proposals applied.",
            )?,
            quota_backend_bytes: gauge(
                "etcd_server_quota_backend_bytes",
                "Current backend storage quota size in bytes.",
            )?,
            health_success: counter(
                "etcd_server_health_success",
                "The total number of successful health checks",
            )?,
            health_failures: counter(
                "etcd_server_health_failures",
                "The total number of failed health checks",
            )?,
            db_total_size_bytes: gauge(
                "etcd_mvcc_db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
            )?,
            keys_total: gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.")?,
            current_revision: gauge(
                "etcd_debugging_mvcc_current_revision",
                "The current revision of store.",
            )?,
            alarm_checks: counter(
                "keel_server_alarm_checks_total",
                "Periodic quota and NOSPACE alarm checks run by the node driver.",
            )?,
            leader_changes: counter(
                "etcd_server_leader_changes_seen_total",
                "The number of leader changes seen.",
            )?,
            proposals_pending: gauge(
                "etcd_server_proposals_pending",
                "The current number of pending proposals to commit.",
            )?,
            proposals_failed: counter(
                "etcd_server_proposals_failed_total",
                "The total number of failed proposals seen.",
            )?,
            watch_streams: gauge(
                "etcd_debugging_mvcc_watch_stream_total",
                "Total number of watch streams.",
            )?,
            watchers: gauge(
                "etcd_debugging_mvcc_watcher_total",
                "Total number of watchers.",
            )?,
            timings,
            grpc: grpc.clone(),
            refreshing: Mutex::new(()),
            registry: r,
        })
    }

    /// The observer the member's node reports its durations to.
    pub fn observer(&self) -> Observer {
        self.timings.observer()
    }

    /// The gRPC call counters in this registry.
    pub fn grpc(&self) -> &GrpcMetrics {
        &self.grpc
    }

    /// Counts one `/health` answer.
    pub fn count_health(&self, healthy: bool) {
        if healthy {
            self.health_success.inc();
        } else {
            self.health_failures.inc();
        }
    }

    /// Reads the member's current values into the gauges.
    pub fn refresh<B: Replica>(&self, services: &Services<B>) {
        let _one_at_a_time = self
            .refreshing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let status = services.replica_status();
        let flag = |on: bool| i64::from(on);
        self.has_leader.set(flag(status.leader_id != 0));
        self.is_leader
            .set(flag(status.leader_id == status.member_id));
        self.is_learner.set(flag(status.is_learner));
        self.proposals_committed
            .set(saturating_i64(status.raft_commit_index));
        self.proposals_applied
            .set(saturating_i64(status.raft_applied_index));
        self.quota_backend_bytes
            .set(saturating_i64(status.db_size_quota_bytes));
        self.db_total_size_bytes
            .set(saturating_i64(status.db_size_bytes));
        self.keys_total
            .set(saturating_i64(services.key_count() as u64));
        self.current_revision.set(services.current_revision());
        catch_up(&self.alarm_checks, status.alarm_checks);
        catch_up(&self.leader_changes, status.leader_changes_seen);
        let proposals = services.proposal_counts();
        self.proposals_pending
            .set(saturating_i64(proposals.pending));
        catch_up(&self.proposals_failed, proposals.failed_total);
        let watch = services.watch_gauges();
        self.watch_streams.set(saturating_i64(watch.streams()));
        self.watchers.set(saturating_i64(watch.watchers()));
    }

    /// The registry in Prometheus text format.
    pub fn render(&self) -> Response {
        let encoder = TextEncoder::new();
        let mut body = Vec::new();
        if let Err(err) = encoder.encode(&self.registry.gather(), &mut body) {
            return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response();
        }
        (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response()
    }
}

/// Raises `counter` to `total`, a count the member keeps itself (never
/// lowers it: counters only grow).
fn catch_up(counter: &IntCounter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
