//! Restart to serving: how long a server killed with SIGKILL takes, from
//! being started again, to answer its first linearizable read.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use etcd_client::{Client, ConnectOptions};

use crate::servers::cluster::Cluster;

/// Pause between two failed attempts (the measurement's resolution).
const RETRY_MS: u64 = 10;
/// Longest one attempt (connect and read) may take before it is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// Kills member 0 of `cluster` with SIGKILL, starts it again on its data
/// and times until a linearizable read of `key` (a loaded key) succeeds.
/// Errors when the member exits, does not serve within `timeout`, or
/// answers without `key` (it lost data).
pub async fn kill_and_restart(
    cluster: &mut Cluster,
    key: &[u8],
    timeout: Duration,
) -> Result<Duration> {
    cluster.kill_member(0);
    let start = Instant::now();
    cluster.restart_member(0)?;
    loop {
        cluster.check_running()?;
        let attempt =
            tokio::time::timeout(ATTEMPT_TIMEOUT, read_key(&cluster.endpoints, key)).await;
        match attempt {
            Ok(Ok(true)) => return Ok(start.elapsed()),
            Ok(Ok(false)) => bail!(
                "{} answered after the restart without a key it had acknowledged",
                cluster.flavor.name()
            ),
            Ok(Err(_)) | Err(_) => {}
        }
        if start.elapsed() > timeout {
            bail!(
                "{} did not serve a linearizable read within {timeout:?} of its restart:\n{}",
                cluster.flavor.name(),
                cluster.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(RETRY_MS)).await;
    }
}

/// A fresh connection's linearizable read of `key`: whether it is there.
async fn read_key(endpoints: &[String], key: &[u8]) -> Result<bool> {
    let options = ConnectOptions::new()
        .with_connect_timeout(ATTEMPT_TIMEOUT)
        .with_timeout(ATTEMPT_TIMEOUT);
    let mut client = Client::connect(endpoints, Some(options)).await?;
    let response = client.get(key, None).await?;
    Ok(!response.kvs().is_empty())
}
