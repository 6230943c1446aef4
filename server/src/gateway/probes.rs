//! `GET /livez` and `GET /readyz`, etcd 3.5's probes (`etcdhttp/health.go`,
//! `installLivezEndpoints`/`installReadyzEndpoints`), for operators and
//! orchestrators: `/livez` checks that the member answers a serializable
//! read; `/readyz` also that no CORRUPT alarm is active and that a
//! linearizable read succeeds (the member has a leader and is caught up),
//! i.e. that it is ready to serve clients. Each check also has its own
//! path (`/readyz/linearizable_read`), and `?exclude=<check>` skips one.
//!
//! Answers as etcd's: 200 `ok` (with every check's `[+]<name> ok` line
//! first when `?verbose` is given), or 503 with `[-]<name> failed:
//! <why>` and `[+]<name> ok` lines.

use std::sync::Arc;

use axum::Router;
use axum::extract::RawQuery;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::errors::plain_error;
use super::health::check_range;
use super::routes::{Services, method_not_allowed};
use crate::api::convert;
use crate::proto::etcdserverpb as pb;
use crate::replica::Replica;

/// `/livez`'s checks, in the order they run.
pub const LIVEZ_CHECKS: [&str; 1] = ["serializable_read"];
/// `/readyz`'s checks, in the order they run.
pub const READYZ_CHECKS: [&str; 3] = ["data_corruption", "serializable_read", "linearizable_read"];

/// The routes of both probes and of each of their checks.
pub fn probe_routes<B: Replica>(services: Arc<Services<B>>) -> Router {
    let mut router = Router::new();
    for (probe, checks) in [("livez", &LIVEZ_CHECKS[..]), ("readyz", &READYZ_CHECKS[..])] {
        router = router.route(&format!("/{probe}"), probe_route(&services, checks, true));
        for check in checks {
            let only = std::slice::from_ref(check);
            router = router.route(
                &format!("/{probe}/{check}"),
                probe_route(&services, only, false),
            );
        }
    }
    router
}

fn probe_route<B: Replica>(
    services: &Arc<Services<B>>,
    checks: &'static [&'static str],
    excludable: bool,
) -> axum::routing::MethodRouter {
    let services = Arc::clone(services);
    get(move |RawQuery(query): RawQuery| async move {
        let query = query.unwrap_or_default();
        let excluded = |name: &str| excludable && query_has(&query, "exclude", Some(name));
        let chosen: Vec<&str> = checks.iter().copied().filter(|c| !excluded(c)).collect();
        answer(&services, &chosen, query_has(&query, "verbose", None)).await
    })
    .fallback(method_not_allowed)
}

/// Whether the query has `key` (with `value`, when given).
fn query_has(query: &str, key: &str, value: Option<&str>) -> bool {
    url::form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == key && value.is_none_or(|value| v == value))
}

async fn answer<B: Replica>(services: &Services<B>, checks: &[&str], verbose: bool) -> Response {
    let mut report = String::new();
    let mut failed = false;
    for &name in checks {
        match run_check(services, name).await {
            Ok(()) => report.push_str(&format!("[+]{name} ok\n")),
            Err(why) => {
                failed = true;
                report.push_str(&format!("[-]{name} failed: {why}\n"));
            }
        }
    }
    if failed {
        return plain_error(StatusCode::SERVICE_UNAVAILABLE, &report);
    }
    let body = match verbose {
        true => format!("{report}ok\n"),
        false => "ok\n".to_owned(),
    };
    let headers = [
        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    (StatusCode::OK, headers, body).into_response()
}

async fn run_check<B: Replica>(services: &Services<B>, name: &str) -> Result<(), String> {
    match name {
        "data_corruption" => corruption(services),
        "serializable_read" => check_range(services, true).await,
        _ => check_range(services, false).await,
    }
}

/// etcd `activeAlarmCheck(CORRUPT)`.
fn corruption<B: Replica>(services: &Services<B>) -> Result<(), String> {
    let corrupt = services
        .applied_alarms()
        .into_iter()
        .any(|member| convert::alarm_member(member).alarm() == pb::AlarmType::Corrupt);
    match corrupt {
        true => Err("alarm activated: CORRUPT".to_owned()),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusions_and_verbosity_are_read_from_the_query() {
        assert!(query_has(
            "exclude=linearizable_read",
            "exclude",
            Some("linearizable_read")
        ));
        assert!(!query_has(
            "exclude=data_corruption",
            "exclude",
            Some("serializable_read")
        ));
        assert!(query_has("verbose", "verbose", None));
        assert!(query_has("a=b&verbose=1", "verbose", None));
        assert!(!query_has("", "verbose", None));
    }
}
