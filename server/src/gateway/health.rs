//! `GET /version` and `GET /health` as etcd serves them on the client port.
//!
//! - `/version`: `{"etcdserver":..,"etcdcluster":..}` (etcd
//!   `etcdserver/api/etcdhttp/base.go`), with the version keel's
//!   Maintenance.Status reports ([`crate::api::ETCD_VERSION`]).
//! - `/health`: etcd 3.5's checks and shape (`etcdhttp/health.go`, the
//!   version keel reports): an active alarm not named in `?exclude=` →
//!   `{"health":"false","reason":"ALARM NOSPACE"}`; no leader →
//!   `"RAFT NO LEADER"`; a linearizable one-key range (serializable with
//!   `?serializable=true`) failing within a second → `"RANGE ERROR:<why>"`;
//!   else `{"health":"true","reason":""}`. Healthy answers 200, unhealthy
//!   503 (Go's `http.Error`: text/plain with a trailing newline).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::{Code, Request as GrpcRequest};

use super::errors::plain_error;
use super::metrics::Metrics;
use super::routes::Services;
use crate::api::{ETCD_VERSION, convert};
use crate::proto::etcdserverpb as pb;
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::replica::Replica;

/// The cluster version keel reports: the server version's major.minor.0
/// (etcd's `etcdcluster`).
pub fn cluster_version() -> String {
    let mut parts = ETCD_VERSION.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}.0"),
        _ => ETCD_VERSION.to_owned(),
    }
}

/// etcd's `version.Versions`.
#[derive(Serialize)]
struct Versions {
    etcdserver: &'static str,
    etcdcluster: String,
}

/// `GET /version`.
pub async fn version() -> Response {
    let versions = Versions {
        etcdserver: ETCD_VERSION,
        etcdcluster: cluster_version(),
    };
    let body = serde_json::to_vec(&versions).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// etcd 3.5's `Health`.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Health {
    /// `"true"` or `"false"`, a string as etcd writes it.
    pub health: &'static str,
    /// Why unhealthy; empty when healthy.
    pub reason: String,
}

impl Health {
    fn unhealthy(reason: String) -> Health {
        Health {
            health: "false",
            reason,
        }
    }
}

/// How long the health check's range may take (etcd: one second).
const RANGE_TIMEOUT: Duration = Duration::from_secs(1);

/// The health of the member behind `services`; `query` is the request's
/// query string (`exclude=NOSPACE`, `serializable=true`).
pub async fn check<B: Replica>(services: &Services<B>, query: &str) -> Health {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let excluded = |alarm: &str| pairs.iter().any(|(k, v)| k == "exclude" && v == alarm);
    let serializable = pairs
        .iter()
        .any(|(k, v)| k == "serializable" && v == "true");
    if let Some(alarm) = active_alarm(services, &excluded) {
        return Health::unhealthy(format!("ALARM {alarm}"));
    }
    if !serializable && services.replica_status().leader_id == 0 {
        return Health::unhealthy("RAFT NO LEADER".to_owned());
    }
    if let Err(why) = check_range(services, serializable).await {
        return Health::unhealthy(format!("RANGE ERROR:{why}"));
    }
    Health {
        health: "true",
        reason: String::new(),
    }
}

/// The first active alarm's name (`NOSPACE`, `CORRUPT`) that `excluded`
/// does not name, read from this member's applied state without Raft
/// (etcd `srv.Alarms()`), plus its own NOSPACE while its disk is full.
fn active_alarm<B: Replica>(
    services: &Services<B>,
    excluded: &impl Fn(&str) -> bool,
) -> Option<String> {
    let mut alarms: Vec<pb::AlarmType> = services
        .applied_alarms()
        .into_iter()
        .map(|member| convert::alarm_member(member).alarm())
        .collect();
    if services.replica_status().disk_full {
        alarms.push(pb::AlarmType::Nospace);
    }
    alarms
        .into_iter()
        .map(|alarm| alarm.as_str_name().to_owned())
        .find(|name| !excluded(name))
}

/// A one-key, keys-only range; auth refusals count as success, as etcd's.
/// Also `/livez` and `/readyz`'s read checks ([`super::probes`]).
pub(super) async fn check_range<B: Replica>(
    services: &Services<B>,
    serializable: bool,
) -> Result<(), String> {
    let request = pb::RangeRequest {
        key: vec![0].into(),
        range_end: vec![0].into(),
        keys_only: true,
        limit: 1,
        serializable,
        ..Default::default()
    };
    let range = services.kv.range(GrpcRequest::new(request));
    match tokio::time::timeout(RANGE_TIMEOUT, range).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) if status.code() == Code::PermissionDenied => Ok(()),
        Ok(Err(status)) if status.message().contains("user name is empty") => Ok(()),
        Ok(Err(status)) => Err(status.message().to_owned()),
        Err(_) => Err("context deadline exceeded".to_owned()),
    }
}

/// `GET /health` (see the module docs); counts the answer in `metrics`.
pub async fn health<B: Replica>(
    State((services, metrics)): State<(Arc<Services<B>>, Arc<Metrics>)>,
    RawQuery(query): RawQuery,
) -> Response {
    let health = check(&services, query.as_deref().unwrap_or("")).await;
    metrics.count_health(health.health == "true");
    let body = serde_json::to_string(&health).unwrap_or_default();
    if health.health == "true" {
        let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
        (StatusCode::OK, content_type, body).into_response()
    } else {
        plain_error(StatusCode::SERVICE_UNAVAILABLE, &body)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cluster_version_is_major_minor_zero() {
        assert_eq!(cluster_version(), "3.5.0");
    }
}
