//! The `partition` fault's cut and its proof: the run's
//! [`crate::member_network::MemberNetwork`] cuts every link between the
//! minority and the majority, and halfway through the fault a write is
//! tried through each minority member. It must not succeed (a minority
//! cannot commit): one that does means the cut did not hold, and the
//! fault's event says so as an error.

use std::time::Duration;

use crate::client;
use crate::cluster::Cluster;

/// Longest minority write probe, in milliseconds (a healthy member
/// answers a write in a few).
const PROBE_TIMEOUT_MS_MAX: u64 = 1000;

/// Cuts `minority` off the other members. Returns what was cut and how.
/// Errors: the network cannot partition, or a cut failed.
pub fn cut(cluster: &mut Cluster, minority: &[usize]) -> Result<String, String> {
    let size = cluster.members().len();
    let majority: Vec<usize> = (0..size).filter(|i| !minority.contains(i)).collect();
    cluster
        .network_mut()
        .partition(&[minority.to_vec(), majority.clone()])?;
    let names = |group: &[usize]| {
        group
            .iter()
            .map(|&i| cluster.members()[i].name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(format!(
        "cut by {}: {} | {}",
        cluster.network().name(),
        names(minority),
        names(&majority)
    ))
}

/// Waits out the fault's `interval` while, halfway through it, a write
/// is tried through every member named in `minority`. Returns the probe's
/// finding; errors when a minority member served a write (the partition
/// did not hold).
pub async fn hold(
    cluster: &Cluster,
    minority: &[String],
    interval: Duration,
) -> Result<String, String> {
    let targets: Vec<(String, String)> = cluster
        .members()
        .iter()
        .filter(|m| minority.contains(&m.name))
        .map(|m| (m.name.clone(), m.client_url.clone()))
        .collect();
    let half = interval / 2;
    let timeout_ms = u64::try_from(half.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, PROBE_TIMEOUT_MS_MAX);
    let probe = async {
        tokio::time::sleep(half).await;
        let mut served = Vec::new();
        for (name, url) in &targets {
            if client::serves(url, timeout_ms).await {
                served.push(name.as_str());
            }
        }
        served.join(",")
    };
    let ((), served) = tokio::join!(tokio::time::sleep(interval), probe);
    let names = minority.join(",");
    match served.is_empty() {
        true => Ok(format!(
            "the minority ({names}) served no write during the cut (one {timeout_ms} ms write probe per member)"
        )),
        false => Err(format!(
            "a write through {served} succeeded during the cut: the partition did not hold"
        )),
    }
}
