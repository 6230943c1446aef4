//! Connections to the cluster, made up front and checked, then shared by
//! the clients round-robin (etcd benchmark's `mustCreateClients`: client
//! `i` uses connection `i % conns`).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use etcd_client::{Client, ConnectOptions, GetOptions};

/// How long dialing one connection may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens one connection to `endpoints` and checks that it answers a
/// serializable read, so a wrong or dead endpoint is reported before the
/// run instead of as thousands of failed requests.
pub async fn connect(endpoints: &[String]) -> Result<Client> {
    if endpoints.is_empty() {
        bail!("no --endpoints given");
    }
    let options = ConnectOptions::new()
        .with_connect_timeout(DIAL_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT);
    let mut client = Client::connect(endpoints, Some(options))
        .await
        .with_context(|| format!("cannot connect to {}", endpoints.join(",")))?;
    let probe = client.get(
        "keel-bench/probe",
        Some(GetOptions::new().with_serializable()),
    );
    match tokio::time::timeout(DIAL_TIMEOUT, probe).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => bail!("endpoints {} do not answer: {e}", endpoints.join(",")),
        Err(_) => bail!(
            "endpoints {} do not answer within {DIAL_TIMEOUT:?}",
            endpoints.join(",")
        ),
    }
}

/// Opens `conns` checked connections (see [`connect`]).
pub async fn connect_all(endpoints: &[String], conns: usize) -> Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns.max(1) {
        clients.push(connect(endpoints).await?);
    }
    Ok(clients)
}

/// The connection client `i` of `clients` uses: etcd's round-robin, with
/// no more connections than clients.
pub fn connection_for(connections: &[Client], i: usize) -> Client {
    connections[i % connections.len()].clone()
}
