//! Helpers for tests that talk to a cluster through the `etcd-client` crate.

use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};

use super::cluster::Cluster;

/// Connects to `urls` with bounded connect (2 s) and request (5 s) timeouts.
/// Panics when it cannot connect.
pub async fn connect(urls: Vec<String>) -> Client {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5));
    match Client::connect(urls.clone(), Some(options)).await {
        Ok(client) => client,
        Err(e) => panic!("cannot connect to {urls:?}: {e}"),
    }
}

/// The index of the member every running member names as leader in
/// Maintenance.Status (through the etcd-client crate), waiting (bounded)
/// until they agree.
pub async fn leader(cluster: &Cluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        // (member index, member id, the leader it names) of every running
        // member that answered.
        let mut answers = Vec::new();
        let mut running = 0;
        for (i, member) in cluster.members().iter().enumerate() {
            if !cluster.is_running(i) {
                continue;
            }
            running += 1;
            let mut client = connect(vec![member.client_url.clone()]).await;
            match client.status().await {
                Ok(s) => answers.push((i, s.header().map_or(0, |h| h.member_id()), s.leader())),
                Err(e) => last = e.to_string(),
            }
        }
        let leader = answers.first().map_or(0, |a| a.2);
        let agreed =
            answers.len() == running && leader != 0 && answers.iter().all(|a| a.2 == leader);
        if let (true, Some(answer)) = (agreed, answers.iter().find(|a| a.1 == leader)) {
            return answer.0;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "{}: members never agreed on a leader in Status ({last})",
        cluster.flavor().name()
    );
}
