//! `endpoint health|status|hashkv [--cluster]`
//! (etcdctl/ctlv3/command/ep_command.go): one request per endpoint, to
//! that endpoint.

use std::time::Instant;

use clap::{Args, Subcommand};
use etcd_client::proto::{PbHashKvResponse, PbStatusResponse};
use serde_json::Value;

use crate::cli::GlobalArgs;
use crate::client::{connect, with_timeout};
use crate::error::CtlError;
use crate::output::json::{self, Object};
use crate::output::{Format, emit, emit_err, fields, go, table};

/// The endpoint commands.
#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Checks the healthiness of endpoints specified in `--endpoints` flag
    Health(ClusterArgs),
    /// Prints out the status of endpoints specified in `--endpoints` flag
    Status(ClusterArgs),
    /// Prints the KV history hash for each endpoint in --endpoints
    Hashkv(HashKvArgs),
}

/// `--cluster`.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// use all endpoints from the cluster member list
    #[arg(long)]
    pub cluster: bool,
}

/// `endpoint hashkv [--rev N] [--cluster]`.
#[derive(Debug, Clone, Args)]
pub struct HashKvArgs {
    /// use all endpoints from the cluster member list
    #[arg(long)]
    pub cluster: bool,
    /// maximum revision to hash (default: all revisions)
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
}

/// Runs an endpoint command.
///
/// # Errors
/// Connection errors; an unhealthy endpoint (`unhealthy cluster`), a
/// failed status or hash (exit 1).
pub async fn run(global: &GlobalArgs, command: EndpointCommand) -> Result<(), CtlError> {
    match command {
        EndpointCommand::Health(args) => health(global, args.cluster).await,
        EndpointCommand::Status(args) => status(global, args.cluster).await,
        EndpointCommand::Hashkv(args) => hash_kv(global, args.cluster, args.rev).await,
    }
}

/// The endpoints to ask: `--endpoints`, or with `--cluster` every member's
/// client URLs (etcdctl's `endpointsFromCluster`).
///
/// # Errors
/// The member list cannot be read.
pub async fn endpoints(global: &GlobalArgs, cluster: bool) -> Result<Vec<String>, CtlError> {
    if !cluster {
        return Ok(global
            .endpoints
            .iter()
            .map(|e| e.trim().to_owned())
            .collect());
    }
    let ctl = connect(global).await?;
    let mut client = ctl.client.cluster_client();
    let members = ctl.call(client.member_list()).await.map_err(|e| {
        CtlError::error(format!(
            "failed to fetch endpoints from etcd cluster member list: {}",
            e.message
        ))
    })?;
    Ok(members
        .0
        .members
        .iter()
        .flat_map(|m| m.client_ur_ls.clone())
        .collect())
}

/// `global` aimed at one endpoint.
pub fn only(global: &GlobalArgs, endpoint: &str) -> GlobalArgs {
    let mut one = global.clone();
    one.endpoints = vec![endpoint.to_owned()];
    one
}

struct Health {
    endpoint: String,
    health: bool,
    took: String,
    error: String,
}

async fn check(global: &GlobalArgs, endpoint: &str) -> Health {
    let one = only(global, endpoint);
    let started = Instant::now();
    let result = match connect(&one).await {
        Ok(ctl) => {
            let mut kv = ctl.client.kv_client();
            with_timeout(
                global.dial_timeout + global.command_timeout,
                kv.get("health", None),
            )
            .await
        }
        Err(e) => Err(e),
    };
    let took = go::duration(started.elapsed());
    match result {
        Ok(_) => Health {
            endpoint: endpoint.to_owned(),
            health: true,
            took,
            error: String::new(),
        },
        Err(e) if e.message.contains("permission denied") => Health {
            endpoint: endpoint.to_owned(),
            health: true,
            took,
            error: String::new(),
        },
        Err(e) => Health {
            endpoint: endpoint.to_owned(),
            health: false,
            took,
            error: e.message,
        },
    }
}

async fn health(global: &GlobalArgs, cluster: bool) -> Result<(), CtlError> {
    let printer = super::printer(global)?;
    let mut checks = Vec::new();
    for endpoint in endpoints(global, cluster).await? {
        checks.push(check(global, &endpoint).await);
    }
    match printer.format {
        Format::Simple => {
            for h in &checks {
                if h.error.is_empty() {
                    emit_err(&format!(
                        "{} is healthy: successfully committed proposal: took = {}\n",
                        h.endpoint, h.took
                    ));
                } else {
                    emit_err(&format!(
                        "{} is unhealthy: failed to commit proposal: {}\n",
                        h.endpoint, h.error
                    ));
                }
            }
        }
        Format::Fields => {
            let mut out = String::new();
            for h in &checks {
                out.push_str(&format!(
                    "\"Endpoint\" : {}\n\"Health\" : {}\n\"Took\" : {}\n\"Error\" : {}\n\n",
                    go::quote(h.endpoint.as_bytes()),
                    h.health,
                    h.took,
                    h.error
                ));
            }
            emit(&out);
        }
        Format::Json => {
            let list: Vec<Value> = checks
                .iter()
                .map(|h| {
                    Object::new()
                        .always("endpoint", Value::from(h.endpoint.as_str()))
                        .always("health", Value::Bool(h.health))
                        .always("took", Value::from(h.took.as_str()))
                        .text("error", &h.error)
                        .value()
                })
                .collect();
            emit(&json::line(&Value::Array(list)));
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = checks
                .iter()
                .map(|h| {
                    vec![
                        h.endpoint.clone(),
                        h.health.to_string(),
                        h.took.clone(),
                        h.error.clone(),
                    ]
                })
                .collect();
            emit(&table::render(
                &["endpoint", "health", "took", "error"],
                &rows,
            ));
        }
    }
    if checks.iter().any(|h| !h.error.is_empty()) {
        return Err(CtlError::error("unhealthy cluster"));
    }
    Ok(())
}

fn status_row(endpoint: &str, r: &PbStatusResponse) -> Vec<String> {
    let member_id = r.header.as_ref().map_or(0, |h| h.member_id);
    vec![
        endpoint.to_owned(),
        format!("{member_id:x}"),
        r.version.clone(),
        go::humanize_bytes(u64::try_from(r.db_size).unwrap_or(0)),
        (r.leader == member_id).to_string(),
        r.is_learner.to_string(),
        r.raft_term.to_string(),
        r.raft_index.to_string(),
        r.raft_applied_index.to_string(),
        r.errors.join(", "),
    ]
}

fn status_json(r: &PbStatusResponse) -> Value {
    let errors = r.errors.iter().map(|e| Value::from(e.as_str())).collect();
    Object::new()
        .object("header", json::header(r.header.as_ref()))
        .text("version", &r.version)
        .int("dbSize", r.db_size)
        .uint("leader", r.leader)
        .uint("raftIndex", r.raft_index)
        .uint("raftTerm", r.raft_term)
        .uint("raftAppliedIndex", r.raft_applied_index)
        .list("errors", errors)
        .int("dbSizeInUse", r.db_size_in_use)
        .flag("isLearner", r.is_learner)
        .value()
}

async fn status(global: &GlobalArgs, cluster: bool) -> Result<(), CtlError> {
    let printer = super::printer(global)?;
    let mut statuses = Vec::new();
    let mut failed = false;
    for endpoint in endpoints(global, cluster).await? {
        let result = match connect(&only(global, &endpoint)).await {
            Ok(ctl) => {
                let mut maintenance = ctl.client.maintenance_client();
                ctl.call(maintenance.status()).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => statuses.push((endpoint, r.0)),
            Err(e) => {
                failed = true;
                emit_err(&format!(
                    "Failed to get the status of endpoint {endpoint} ({})\n",
                    e.message
                ));
            }
        }
    }
    let text = match printer.format {
        Format::Simple => statuses
            .iter()
            .map(|(ep, r)| format!("{}\n", status_row(ep, r).join(", ")))
            .collect(),
        Format::Fields => statuses
            .iter()
            .map(|(ep, r)| status_fields(ep, r))
            .collect(),
        Format::Json => {
            let list = statuses
                .iter()
                .map(|(ep, r)| {
                    Object::new()
                        .always("Endpoint", Value::from(ep.as_str()))
                        .always("Status", status_json(r))
                        .value()
                })
                .collect();
            json::line(&Value::Array(list))
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = statuses.iter().map(|(ep, r)| status_row(ep, r)).collect();
            table::render(
                &[
                    "endpoint",
                    "ID",
                    "version",
                    "db size",
                    "is leader",
                    "is learner",
                    "raft term",
                    "raft index",
                    "raft applied index",
                    "errors",
                ],
                &rows,
            )
        }
    };
    emit(&text);
    if failed {
        return Err(CtlError::error(""));
    }
    Ok(())
}

fn status_fields(endpoint: &str, r: &PbStatusResponse) -> String {
    let mut out = String::new();
    fields::header(&mut out, r.header.as_ref());
    out.push_str(&format!(
        "\"Version\" : {}\n",
        go::quote(r.version.as_bytes())
    ));
    out.push_str(&format!("\"DBSize\" : {}\n", r.db_size));
    out.push_str(&format!("\"Leader\" : {}\n", r.leader));
    out.push_str(&format!("\"IsLearner\" : {}\n", r.is_learner));
    out.push_str(&format!("\"RaftIndex\" : {}\n", r.raft_index));
    out.push_str(&format!("\"RaftTerm\" : {}\n", r.raft_term));
    out.push_str(&format!(
        "\"RaftAppliedIndex\" : {}\n",
        r.raft_applied_index
    ));
    out.push_str(&format!("\"Errors\" : [{}]\n", r.errors.join(" ")));
    out.push_str(&format!(
        "\"Endpoint\" : {}\n\n",
        go::quote(endpoint.as_bytes())
    ));
    out
}

async fn hash_kv(global: &GlobalArgs, cluster: bool, revision: i64) -> Result<(), CtlError> {
    let printer = super::printer(global)?;
    let mut hashes: Vec<(String, PbHashKvResponse)> = Vec::new();
    let mut last_error = None;
    for endpoint in endpoints(global, cluster).await? {
        let result = match connect(&only(global, &endpoint)).await {
            Ok(ctl) => {
                let mut maintenance = ctl.client.maintenance_client();
                ctl.call(maintenance.hash_kv(revision)).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => hashes.push((endpoint, r.0)),
            Err(e) => {
                emit_err(&format!(
                    "Failed to get the hash of endpoint {endpoint} ({})\n",
                    e.message
                ));
                last_error = Some(e);
            }
        }
    }
    let text = match printer.format {
        Format::Simple => hashes
            .iter()
            .map(|(ep, r)| format!("{ep}, {}\n", r.hash))
            .collect(),
        Format::Fields => hashes
            .iter()
            .map(|(ep, r)| {
                let mut out = String::new();
                fields::header(&mut out, r.header.as_ref());
                out + &format!(
                    "\"Endpoint\" : {}\n\"Hash\" : {}\n\n",
                    go::quote(ep.as_bytes()),
                    r.hash
                )
            })
            .collect(),
        Format::Json => {
            let list = hashes
                .iter()
                .map(|(ep, r)| {
                    let hash = Object::new()
                        .object("header", json::header(r.header.as_ref()))
                        .uint("hash", u64::from(r.hash))
                        .int("compact_revision", r.compact_revision)
                        .value();
                    Object::new()
                        .always("Endpoint", Value::from(ep.as_str()))
                        .always("HashKV", hash)
                        .value()
                })
                .collect();
            json::line(&Value::Array(list))
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = hashes
                .iter()
                .map(|(ep, r)| vec![ep.clone(), r.hash.to_string()])
                .collect();
            table::render(&["endpoint", "hash"], &rows)
        }
    };
    emit(&text);
    match last_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
