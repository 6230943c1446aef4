//! The lease workload: a client grants a lease through a random member,
//! attaches a key to it, keeps it alive for a while through random members
//! while reading the key, then lets it expire and keeps reading. What it
//! saw goes to `keel-jepsen`'s lease check (a key is never gone before its
//! lease's TTL ran out since the last accepted keep-alive).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use keel_jepsen::{LeaseLog, LeaseRead};
use keel_server::proto::etcdserverpb::kv_client::KvClient;
use keel_server::proto::etcdserverpb::lease_client::LeaseClient;
use keel_server::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, PutRequest, RangeRequest,
};
use madsim::rand::Rng;

use crate::NodeAddr;
use crate::sim_log::SharedLog;

/// TTL the client asks for, in seconds (keel raises it to its minimum).
const LEASE_TTL_SECS: i64 = 3;
/// How often the client keeps its lease alive (and reads its key).
const KEEP_ALIVE_EVERY_MS: u64 = 500;
/// Per-request timeout.
const REQUEST_TIMEOUT_MS: u64 = 1_000;
/// Most leases one client records.
pub const LEASES_MAX: usize = 1_000;

/// The lease logs as the run shares them.
pub type SharedLeaseLogs = Arc<Mutex<Vec<LeaseLog>>>;

/// Runs lease lives through `members` members until `stop`, appending one
/// log per lease whose key was attached to `logs`. Client `client`'s keys
/// are `lease<client>-<n>`: no other client writes them.
pub async fn lease_client(
    client: usize,
    members: u8,
    log: SharedLog,
    logs: SharedLeaseLogs,
    stop: Arc<AtomicBool>,
) {
    let mut serial = 0u64;
    while !stop.load(Ordering::Relaxed) && lock(&logs).len() < LEASES_MAX {
        serial += 1;
        let key = format!("lease{client}-{serial}");
        if let Some(lease) = lease_life(members, &log, key, &stop).await {
            lock(&logs).push(lease);
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
}

fn lock(logs: &SharedLeaseLogs) -> std::sync::MutexGuard<'_, Vec<LeaseLog>> {
    logs.lock().unwrap_or_else(PoisonError::into_inner)
}

fn random_member(members: u8) -> u8 {
    madsim::rand::thread_rng().gen_range(0..members)
}

/// One lease: grant, attach, keep alive for 1-6 s, then read until its
/// TTL plus 2 s has passed. `None` if the grant or the attaching put did
/// not get an answer (nothing to check then).
async fn lease_life(
    members: u8,
    log: &SharedLog,
    key: String,
    stop: &AtomicBool,
) -> Option<LeaseLog> {
    let grant_sent_ns = log.now_ns();
    let (lease_id, granted_ttl_secs) = grant(random_member(members)).await?;
    attach(random_member(members), &key, lease_id).await?;
    let mut lease = LeaseLog {
        lease_id,
        key,
        ttl_secs: granted_ttl_secs,
        attached_ns: log.now_ns(),
        accepted_ns: vec![grant_sent_ns],
        reads: Vec::new(),
    };
    let keep_alive_ms = madsim::rand::thread_rng().gen_range(1_000..6_000);
    let keep_until_ns = log.now_ns() + keep_alive_ms * 1_000_000;
    while log.now_ns() < keep_until_ns && !stop.load(Ordering::Relaxed) {
        let sent_ns = log.now_ns();
        if let Some(ttl_secs) = keep_alive(random_member(members), lease_id).await {
            lease.accepted_ns.push(sent_ns);
            lease.ttl_secs = lease.ttl_secs.min(ttl_secs);
        }
        read(random_member(members), log, &mut lease).await;
        madsim::time::sleep(Duration::from_millis(KEEP_ALIVE_EVERY_MS)).await;
    }
    let ttl_ns = u64::try_from(lease.ttl_secs)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000);
    let read_until_ns = log.now_ns() + ttl_ns + 2_000_000_000;
    while log.now_ns() < read_until_ns && !stop.load(Ordering::Relaxed) {
        read(random_member(members), log, &mut lease).await;
        madsim::time::sleep(Duration::from_millis(KEEP_ALIVE_EVERY_MS)).await;
    }
    Some(lease)
}

async fn within<T>(work: impl Future<Output = Option<T>>) -> Option<T> {
    let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
    madsim::time::timeout(timeout, work).await.ok().flatten()
}

/// Grants a lease through `member`: its id and granted TTL.
async fn grant(member: u8) -> Option<(i64, i64)> {
    within(async {
        let url = NodeAddr::member(member).client_url();
        let mut client = LeaseClient::connect(url).await.ok()?;
        let request = LeaseGrantRequest {
            ttl: LEASE_TTL_SECS,
            id: 0,
        };
        let response = client.lease_grant(request).await.ok()?.into_inner();
        (response.error.is_empty() && response.id != 0).then_some((response.id, response.ttl))
    })
    .await
}

/// Puts `key` with the lease through `member`; `None` unless answered.
async fn attach(member: u8, key: &str, lease_id: i64) -> Option<()> {
    within(async {
        let url = NodeAddr::member(member).client_url();
        let mut client = KvClient::connect(url).await.ok()?;
        let request = PutRequest {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::from_static(b"held"),
            lease: lease_id,
            ..PutRequest::default()
        };
        client.put(request).await.ok().map(|_| ())
    })
    .await
}

/// One keep-alive through `member`: the TTL it answered, if positive.
async fn keep_alive(member: u8, lease_id: i64) -> Option<i64> {
    within(async {
        let url = NodeAddr::member(member).client_url();
        let mut client = LeaseClient::connect(url).await.ok()?;
        let request = LeaseKeepAliveRequest { id: lease_id };
        let requests = futures_util::stream::iter([request]);
        let mut answers = client.lease_keep_alive(requests).await.ok()?.into_inner();
        let answer = answers.next().await?.ok()?;
        (answer.ttl > 0).then_some(answer.ttl)
    })
    .await
}

/// A linearizable read of the lease's key through `member`, recorded if
/// answered.
async fn read(member: u8, log: &SharedLog, lease: &mut LeaseLog) {
    let invoke_ns = log.now_ns();
    let present = within(async {
        let url = NodeAddr::member(member).client_url();
        let mut client = KvClient::connect(url).await.ok()?;
        let request = RangeRequest {
            key: Bytes::copy_from_slice(lease.key.as_bytes()),
            ..RangeRequest::default()
        };
        let response = client.range(request).await.ok()?.into_inner();
        Some(!response.kvs.is_empty())
    })
    .await;
    if let Some(present) = present {
        lease.reads.push(LeaseRead {
            invoke_ns,
            complete_ns: log.now_ns(),
            present,
        });
    }
}
