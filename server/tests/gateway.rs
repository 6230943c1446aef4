//! The HTTP/JSON gateway against real etcd 3.4, over raw HTTP/1.1 on the
//! client port (hyper's client):
//!
//! - `gateway_answers_as_etcd_does`: one session of JSON requests (KV, txn,
//!   compaction and a compacted read, leases with client-chosen ids and a
//!   keep-alive stream, a watch stream, auth enable/authenticate/token use,
//!   bad JSON, bad base64, unknown paths, wrong methods, `/v3beta`) played
//!   against a fresh etcd and a fresh keel; every answer's HTTP status and
//!   JSON body must be equal after [`normalize`] (header ids and term,
//!   tokens; decoder error texts, which come from Go's and serde's JSON
//!   decoders, are compared by code only).
//! - `gateway_shares_the_port_with_grpc`: gRPC (etcd-client) and HTTP on one
//!   port of one keel; `/version`, `/health`, `/metrics` and status shapes.
//! - `health_is_false_without_a_quorum`: `/health` of a member whose two
//!   peers were killed answers 503 with a reason.
//! - `etcd3gw_runs_against_keel`: python `etcd3gw` (PyPI; `scripts/setup.sh`
//!   installs it) runs `gateway_scripts/etcd3gw_session.py` against keel and
//!   against etcd; both must print the same transcript.
//!
//! They fail (never skip) when etcd, python3 or etcd3gw is missing, unless
//! `KEEL_ALLOW_MISSING_ETCD=1` for etcd. About 10 s on 2 cores.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use support::cluster::{Cluster, Flavor};

/// Longest wait for one HTTP answer (streams: for each line read).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// One gateway answer: HTTP status and body (JSON when it parses, else the
/// text), or the first `lines` lines of a streamed body.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    body: Value,
}

/// An HTTP/1.1 client for one server's client URL.
struct Gateway {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    token: Option<String>,
}

impl Gateway {
    fn new(base: &str) -> Gateway {
        Gateway {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// Sends `method path` with `body`; reads the whole answer, or only the
    /// first `lines` lines of a stream (then drops the connection).
    async fn send(&self, method: &str, path: &str, body: &str, lines: Option<usize>) -> Answer {
        match self.try_send(method, path, body, lines).await {
            Ok(answer) => answer,
            Err(err) => panic!("{method} {path}: {err}"),
        }
    }

    /// As [`Gateway::send`]; errors: no answer in time, a transport error.
    async fn try_send(
        &self,
        method: &str,
        path: &str,
        body: &str,
        lines: Option<usize>,
    ) -> Result<Answer, String> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.header("authorization", token);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(ANSWER_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| "no answer in time".to_owned())?
            .map_err(|e| format!("HTTP request: {e}"))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut text = Vec::new();
        loop {
            if lines.is_some_and(|n| text.iter().filter(|b| **b == b'\n').count() >= n) {
                break;
            }
            let frame = tokio::time::timeout(ANSWER_TIMEOUT, body.frame())
                .await
                .map_err(|_| "no body in time".to_owned())?;
            match frame {
                Some(frame) => {
                    let frame = frame.map_err(|e| format!("HTTP body: {e}"))?;
                    if let Ok(data) = frame.into_data() {
                        text.extend_from_slice(&data);
                    }
                }
                None => break,
            }
        }
        Ok(Answer {
            status,
            body: parse(&String::from_utf8_lossy(&text)),
        })
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send("POST", path, &body.to_string(), None).await
    }
}

/// JSON when the text is one document, an array when it is JSON lines,
/// else the text itself.
fn parse(text: &str) -> Value {
    if let Ok(value) = serde_json::from_str(text) {
        return value;
    }
    let lines: Result<Vec<Value>, _> = text.lines().map(serde_json::from_str).collect();
    match lines {
        Ok(lines) if !lines.is_empty() => Value::Array(lines),
        _ => Value::String(text.to_owned()),
    }
}

/// Replaces what differs between any two clusters: header ids and term,
/// auth tokens.
fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                match key.as_str() {
                    "cluster_id" | "member_id" | "raft_term" => *field = json!("<id>"),
                    "token" => *field = json!("<token>"),
                    _ => normalize(field),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// The code-only view of an error answer whose text comes from a JSON
/// decoder (Go's and serde's texts differ).
fn code_only(answer: &Answer) -> Answer {
    Answer {
        status: answer.status,
        body: json!({ "code": answer.body["code"] }),
    }
}

/// One step of the session: method, path, body, how to compare.
struct Step {
    method: &'static str,
    path: &'static str,
    body: Value,
    /// Lines to read from a streamed answer.
    lines: Option<usize>,
    code_only: bool,
}

fn post(path: &'static str, body: Value) -> Step {
    Step {
        method: "POST",
        path,
        body,
        lines: None,
        code_only: false,
    }
}

fn stream(path: &'static str, body: Value, lines: usize) -> Step {
    Step {
        lines: Some(lines),
        ..post(path, body)
    }
}

fn raw(method: &'static str, path: &'static str, body: &str, code_only: bool) -> Step {
    Step {
        method,
        path,
        body: Value::String(body.to_owned()),
        lines: None,
        code_only,
    }
}

/// The session compared between etcd and keel.
fn session() -> Vec<Step> {
    vec![
        post("/v3/kv/put", json!({"key": "Zm9v", "value": "YmFy"})),
        post(
            "/v3/kv/put",
            json!({"key": "Zm9v", "value": "YmF6", "prev_kv": true}),
        ),
        post("/v3/kv/put", json!({"key": "Zm9vMg==", "value": "eA=="})),
        post("/v3/kv/range", json!({"key": "Zm9v"})),
        post(
            "/v3/kv/range",
            json!({"key": "Zm9v", "range_end": "Zm9w", "sort_order": "DESCEND", "limit": "1"}),
        ),
        post(
            "/v3/kv/range",
            json!({"key": "Zm9v", "range_end": "Zm9w", "count_only": true}),
        ),
        post(
            "/v3beta/kv/range",
            json!({"key": "Zm9v", "keys_only": true, "unknown_field": 1}),
        ),
        post(
            "/v3/kv/txn",
            json!({
                "compare": [{"key": "Zm9v", "target": "VALUE", "result": "EQUAL", "value": "YmF6"}],
                "success": [{"request_put": {"key": "dHg=", "value": "MQ=="}}],
                "failure": [{"request_range": {"key": "Zm9v"}}]
            }),
        ),
        post(
            "/v3/kv/txn",
            json!({
                "compare": [{"key": "Zm9v", "target": "VERSION", "result": "GREATER", "version": "9"}],
                "failure": [{"request_range": {"key": "Zm9v"}}]
            }),
        ),
        post(
            "/v3/kv/deleterange",
            json!({"key": "dHg=", "prev_kv": true}),
        ),
        post("/v3/kv/compaction", json!({"revision": "3"})),
        post("/v3/kv/range", json!({"key": "Zm9v", "revision": "2"})),
        post("/v3/kv/put", json!({"key": ""})),
        stream(
            "/v3/watch",
            json!({"create_request": {"key": "Zm9v", "start_revision": "3"}}),
            2,
        ),
        // From a compacted revision: created, then canceled for compaction.
        stream(
            "/v3/watch",
            json!({"create_request": {"key": "Zm9v", "start_revision": "1"}}),
            2,
        ),
        post("/v3/lease/grant", json!({"ID": "1000", "TTL": "60"})),
        post(
            "/v3/kv/put",
            json!({"key": "bGVhc2Vk", "value": "eA==", "lease": "1000"}),
        ),
        post("/v3/kv/lease/leases", json!({})),
        stream("/v3/lease/keepalive", json!({"ID": "1000"}), 1),
        post("/v3/lease/revoke", json!({"ID": "1000"})),
        post("/v3/kv/lease/revoke", json!({"ID": "1000"})),
        post("/v3/lease/timetolive", json!({"ID": "1000", "keys": true})),
        raw("POST", "/v3/kv/range", "{\"key\":\"Zm9v\"", true),
        raw("POST", "/v3/kv/range", "{\"key\":\"!!!\"}", true),
        raw("POST", "/v3/kv/range", "", false),
        raw("GET", "/v3/kv/range", "", false),
        raw("POST", "/v3/kv/nothing", "{}", false),
        raw("POST", "/v3alpha/kv/range", "{}", false),
        raw("GET", "/nothing", "", false),
        raw("POST", "/health", "", false),
        post("/v3/auth/role/add", json!({"name": "root"})),
        post(
            "/v3/auth/user/add",
            json!({"name": "root", "password": "pw"}),
        ),
        post(
            "/v3/auth/user/grant",
            json!({"user": "root", "role": "root"}),
        ),
        post("/v3/auth/enable", json!({})),
        post("/v3/kv/put", json!({"key": "YXV0aA==", "value": "eA=="})),
        post(
            "/v3/auth/authenticate",
            json!({"name": "root", "password": "bad"}),
        ),
        post(
            "/v3/auth/authenticate",
            json!({"name": "root", "password": "pw"}),
        ),
        // From here on the token is sent (see `play`).
        post("/v3/kv/put", json!({"key": "YXV0aA==", "value": "eA=="})),
        post("/v3/auth/user/list", json!({})),
        post("/v3/auth/disable", json!({})),
    ]
}

/// Plays [`session`] against `base`; the token of the first successful
/// authenticate is sent with every later request.
async fn play(base: &str) -> Vec<Answer> {
    let mut gateway = Gateway::new(base);
    let mut answers = Vec::new();
    for step in session() {
        let body = match &step.body {
            Value::String(text) => text.clone(),
            json => json.to_string(),
        };
        eprintln!("{base}: {} {} {body}", step.method, step.path);
        let mut answer = gateway
            .send(step.method, step.path, &body, step.lines)
            .await;
        if step.path.ends_with("/authenticate") && answer.status == 200 {
            gateway.token = answer.body["token"].as_str().map(str::to_owned);
        }
        if step.code_only {
            answer = code_only(&answer);
        }
        normalize(&mut answer.body);
        answers.push(answer);
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_answers_as_etcd_does() {
    if !support::require_etcd("gateway_answers_as_etcd_does") {
        return;
    }
    let started = Instant::now();
    let etcd = tokio::task::spawn_blocking(|| Cluster::start(Flavor::Etcd, 1));
    let keel = tokio::task::spawn_blocking(|| Cluster::start(Flavor::Keel, 1));
    let (etcd, keel) = (etcd.await.unwrap().unwrap(), keel.await.unwrap().unwrap());
    let expected = play(&etcd.client_urls()[0]).await;
    let actual = play(&keel.client_urls()[0]).await;
    let differences: Vec<String> = session()
        .iter()
        .zip(&expected)
        .zip(&actual)
        .filter(|((_, want), got)| got != want)
        .map(|((step, want), got)| {
            let step = format!("{} {} {}", step.method, step.path, step.body);
            format!("{step}\n  keel: {got:?}\n  etcd: {want:?}")
        })
        .collect();
    assert!(
        differences.is_empty(),
        "keel and etcd differ:\n{}",
        differences.join("\n")
    );
    eprintln!("gateway_answers_as_etcd_does: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_shares_the_port_with_grpc() {
    let started = Instant::now();
    let keel = tokio::task::spawn_blocking(|| Cluster::start(Flavor::Keel, 1));
    let keel = keel.await.unwrap().unwrap();
    let url = keel.client_urls()[0].clone();
    let gateway = Gateway::new(&url);
    // gRPC writes, HTTP reads, on the same port.
    let mut grpc = etcd_client::Client::connect([url.as_str()], None)
        .await
        .unwrap();
    grpc.put("shared", "port", None).await.unwrap();
    let range = gateway
        .post("/v3/kv/range", json!({"key": "c2hhcmVk"}))
        .await;
    assert_eq!(range.body["kvs"][0]["value"], json!("cG9ydA=="));

    let version = gateway.send("GET", "/version", "", None).await;
    assert_eq!(version.status, 200);
    assert_eq!(
        version.body,
        json!({"etcdserver": "3.5.0", "etcdcluster": "3.5.0"})
    );
    let health = gateway.send("GET", "/health", "", None).await;
    assert_eq!(
        (health.status, health.body),
        (200, json!({"health": "true", "reason": ""}))
    );
    let excluded = gateway
        .send("GET", "/health?exclude=NOSPACE", "", None)
        .await;
    assert_eq!(excluded.status, 200);

    let status = gateway.post("/v3/maintenance/status", json!({})).await;
    assert_eq!(status.body["version"], json!("3.5.0"));
    assert!(status.body["dbSize"].is_string(), "{:?}", status.body);
    let members = gateway.post("/v3/cluster/member/list", json!({})).await;
    assert_eq!(members.body["members"][0]["clientURLs"][0], json!(url));

    let metrics = gateway.send("GET", "/metrics", "", None).await;
    let Value::String(metrics) = metrics.body else {
        panic!("metrics are text: {:?}", metrics.body);
    };
    for line in [
        "etcd_server_has_leader 1",
        "etcd_debugging_mvcc_keys_total 1",
        "etcd_server_health_success 2",
        // A put over gRPC, a status call through the gateway: both counted.
        "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Put\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 1",
        "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Status\",grpc_service=\"etcdserverpb.Maintenance\",grpc_type=\"unary\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }
    assert!(metrics.contains("etcd_mvcc_db_total_size_in_bytes "));

    // A body over the limit is refused; the server keeps serving. The
    // server answers before reading the whole body and closes the
    // connection, so the client may see its upload fail instead.
    let huge = format!("{{\"key\":\"{}\"}}", "A".repeat(4 << 20));
    if let Ok(refused) = gateway.try_send("POST", "/v3/kv/put", &huge, None).await {
        assert_eq!((refused.status, &refused.body["code"]), (429, &json!(8)));
    }
    grpc.put("after", "huge", None).await.unwrap();
    let after = gateway
        .post("/v3/kv/range", json!({"key": "YWZ0ZXI="}))
        .await;
    assert_eq!(after.body["count"], json!("1"));
    eprintln!("gateway_shares_the_port_with_grpc: {:?}", started.elapsed());
}

/// A member that lost its quorum answers `/health` 503 with etcd 3.5's
/// reason, and `/metrics` shows no leader once it has stepped down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_false_without_a_quorum() {
    let started = Instant::now();
    let keel = tokio::task::spawn_blocking(|| Cluster::start(Flavor::Keel, 3));
    let mut keel = keel.await.unwrap().unwrap();
    let gateway = Gateway::new(&keel.client_urls()[0]);
    let healthy = gateway.send("GET", "/health", "", None).await;
    assert_eq!(healthy.status, 200, "{:?}", healthy.body);
    let text = |answer: Answer| (answer.status, answer.body.as_str().unwrap_or("").to_owned());
    let ok = (200, "ok\n".to_owned());
    assert_eq!(text(gateway.send("GET", "/readyz", "", None).await), ok);
    assert_eq!(text(gateway.send("GET", "/livez", "", None).await), ok);
    let verbose = text(gateway.send("GET", "/readyz?verbose", "", None).await);
    let all_ok = "[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\nok\n";
    assert_eq!(verbose, (200, all_ok.to_owned()));
    keel.kill(1);
    keel.kill(2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let unhealthy = loop {
        let answer = gateway.send("GET", "/health", "", None).await;
        if answer.status != 200 || Instant::now() > deadline {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(unhealthy.status, 503, "{:?}", unhealthy.body);
    assert_eq!(unhealthy.body["health"], json!("false"));
    let reason = unhealthy.body["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason == "RAFT NO LEADER" || reason.starts_with("RANGE ERROR:"),
        "{reason}"
    );
    // Alive, not ready: the linearizable read fails, the local one works.
    let (status, report) = text(gateway.send("GET", "/readyz", "", None).await);
    assert_eq!(status, 503, "{report}");
    assert!(
        report.contains("[+]serializable_read ok\n[-]linearizable_read failed: "),
        "{report}"
    );
    assert_eq!(text(gateway.send("GET", "/livez", "", None).await), ok);
    let excluded = gateway.send("GET", "/readyz?exclude=linearizable_read", "", None);
    assert_eq!(text(excluded.await), ok);
    eprintln!(
        "health_is_false_without_a_quorum: {:?} ({reason})",
        started.elapsed()
    );
}

/// Runs the etcd3gw script against `url`; its stdout.
fn etcd3gw_session(url: &str) -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/gateway_scripts/etcd3gw_session.py"
    );
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let output = Command::new("python3")
        .args([script, port])
        .output()
        .expect("python3 runs (scripts/setup.sh installs it with etcd3gw)");
    assert!(
        output.status.success(),
        "etcd3gw session against {url} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn etcd3gw_runs_against_keel() {
    if !support::require_etcd("etcd3gw_runs_against_keel") {
        return;
    }
    let probe = Command::new("python3")
        .args(["-c", "import etcd3gw"])
        .output();
    assert!(
        probe.is_ok_and(|out| out.status.success()),
        "python3 with etcd3gw is needed: run scripts/setup.sh (pip install --user etcd3gw)"
    );
    let started = Instant::now();
    let etcd = Cluster::start(Flavor::Etcd, 1).unwrap();
    let keel = Cluster::start(Flavor::Keel, 1).unwrap();
    let expected = etcd3gw_session(&etcd.client_urls()[0]);
    let actual = etcd3gw_session(&keel.client_urls()[0]);
    assert!(actual.ends_with("ok\n"), "{actual}");
    assert_eq!(actual, expected, "keel (left) and etcd (right) differ");
    eprintln!("etcd3gw_runs_against_keel: {:?}", started.elapsed());
}
