//! etcd v3 gRPC clients (the `etcd-client` crate) with bounded waits:
//! connect to one member, ask members who leads, wait for a healthy cluster.

use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};

/// Connect timeout of every client, in milliseconds.
const CONNECT_TIMEOUT_MS: u64 = 1000;
/// Pause between two probes of a bounded wait, in milliseconds.
const PROBE_INTERVAL_MS: u64 = 200;

/// Connects to the member at `url`; every request times out after
/// `timeout_ms`. Errors: the connection was refused or timed out.
pub async fn connect(url: &str, timeout_ms: u64) -> Result<Client, String> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .with_timeout(Duration::from_millis(timeout_ms));
    let connecting = Client::connect([url], Some(options));
    match tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS * 2), connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(format!("{url}: {e}")),
        Err(_) => Err(format!("{url}: connect timed out")),
    }
}

/// One member's answer to Maintenance.Status: its id and the leader it names
/// (0: none).
async fn status(url: &str) -> Result<(u64, u64), String> {
    let mut client = connect(url, 1000).await?;
    let status = client.status().await.map_err(|e| format!("{url}: {e}"))?;
    let member_id = status.header().map_or(0, |h| h.member_id());
    Ok((member_id, status.leader()))
}

/// The index (in `urls`) of the member that every answering member names
/// as leader, if at least a majority answered and agree. One probe round.
pub async fn leader(urls: &[String]) -> Option<usize> {
    let mut answers = Vec::new();
    for url in urls {
        if let Ok(answer) = status(url).await {
            answers.push(answer);
        }
    }
    let leader = answers.first()?.1;
    let agreed = leader != 0 && answers.iter().all(|a| a.1 == leader);
    if !agreed || answers.len() * 2 <= urls.len() {
        return None;
    }
    // The leader is the member whose own id it is.
    for (i, url) in urls.iter().enumerate() {
        if let Ok((id, _)) = status(url).await
            && id == leader
        {
            return Some(i);
        }
    }
    None
}

/// Waits (at most `timeout`) until every member in `urls` answers Status
/// naming the same leader and a write through each member succeeds.
/// Errors with the last failure seen.
pub async fn wait_healthy(urls: &[String], timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("never probed");
    while Instant::now() < deadline {
        match probe_all(urls).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(PROBE_INTERVAL_MS)).await;
    }
    Err(format!("not healthy after {} s: {last}", timeout.as_secs()))
}

async fn probe_all(urls: &[String]) -> Result<(), String> {
    let mut leaders = Vec::new();
    for url in urls {
        leaders.push(status(url).await?.1);
    }
    if leaders.iter().any(|l| *l == 0 || *l != leaders[0]) {
        return Err(format!("members disagree on the leader: {leaders:x?}"));
    }
    for url in urls {
        let mut client = connect(url, 2000).await?;
        client
            .put("keel-jepsen/health", url.as_str(), None)
            .await
            .map_err(|e| format!("{url}: health put: {e}"))?;
    }
    Ok(())
}

/// True when a write through the member at `url` succeeds within
/// `timeout_ms`: it caught up and serves (keel and etcd answer a write
/// only once it is applied on the member that took it).
pub async fn serves(url: &str, timeout_ms: u64) -> bool {
    let write = async {
        let mut client = connect(url, timeout_ms).await?;
        client
            .put("keel-jepsen/health", url, None)
            .await
            .map_err(|e| e.to_string())
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(timeout_ms), write).await,
        Ok(Ok(_))
    )
}

/// Timeout of one membership request, in milliseconds.
const MEMBERSHIP_TIMEOUT_MS: u64 = 5000;

/// Runs a Cluster API call on the first member of `urls` that answers.
/// Errors with every member's failure.
async fn on_any_member<T, F>(urls: &[String], what: &str, call: F) -> Result<T, String>
where
    F: AsyncFn(&mut Client) -> Result<T, etcd_client::Error>,
{
    let mut failures = Vec::new();
    for url in urls {
        let attempt = async {
            let mut client = connect(url, MEMBERSHIP_TIMEOUT_MS).await?;
            call(&mut client).await.map_err(|e| format!("{url}: {e}"))
        };
        match tokio::time::timeout(Duration::from_millis(MEMBERSHIP_TIMEOUT_MS), attempt).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => failures.push(e),
            Err(_) => failures.push(format!("{url}: {what} timed out")),
        }
    }
    Err(format!(
        "{what} failed on every member: {}",
        failures.join("; ")
    ))
}

/// The id of the member whose peer URLs include `peer_url`, as MemberList
/// on one of `urls` reports it. Errors: no member answered, or none has
/// that peer URL.
pub async fn member_id(urls: &[String], peer_url: &str) -> Result<u64, String> {
    let list = on_any_member(urls, "MemberList", async |c: &mut Client| {
        c.member_list().await
    })
    .await?;
    list.members()
        .iter()
        .find(|m| m.peer_urls().iter().any(|u| u == peer_url))
        .map(|m| m.id())
        .ok_or_else(|| format!("no member has the peer URL {peer_url}"))
}

/// Removes member `id` (Cluster.MemberRemove) through one of `urls`.
pub async fn member_remove(urls: &[String], id: u64) -> Result<(), String> {
    on_any_member(urls, "MemberRemove", async |c: &mut Client| {
        c.member_remove(id).await
    })
    .await?;
    Ok(())
}

/// Adds a member with `peer_url` (Cluster.MemberAdd) through one of
/// `urls`; returns its new id.
pub async fn member_add(urls: &[String], peer_url: &str) -> Result<u64, String> {
    let peers = [peer_url.to_owned()];
    let response = on_any_member(urls, "MemberAdd", async |c: &mut Client| {
        c.member_add(&peers, None).await
    })
    .await?;
    Ok(response.member().map_or(0, |m| m.id()))
}
