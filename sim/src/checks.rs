//! End-of-run checks that ask the cluster: a leader is elected and a write
//! commits within a bound once faults are healed (liveness), and every
//! member's HashKV is the same at the same revision (the members' stores
//! converged).

use std::time::Duration;

use keel_jepsen::{Op, Outcome, Ret};
use keel_server::proto::etcdserverpb::HashKvRequest;
use keel_server::proto::etcdserverpb::maintenance_client::MaintenanceClient;

use crate::NodeAddr;
use crate::cluster::CONTROL_TIMEOUT_MS;
use crate::kv_ops::MemberClient;
use crate::workload::ClientContext;

/// The key the liveness write puts.
pub const LIVENESS_KEY: &str = "liveness";

/// Puts [`LIVENESS_KEY`] through the members in turn until one write is
/// acknowledged; returns the simulated milliseconds it took and the
/// write's revision, or an error past `bound_ms`.
pub async fn commit_within(
    context: ClientContext,
    process: u64,
    members: u8,
    bound_ms: u64,
) -> Result<(u64, i64), String> {
    let start_ms = context.log.now_ms();
    let mut attempt: u64 = 0;
    while context.log.now_ms() - start_ms <= bound_ms {
        let index = (attempt % u64::from(members)) as u8;
        attempt += 1;
        let op = Op::write(LIVENESS_KEY, attempt);
        let mut client = MemberClient::default();
        let outcome = context.record(&mut client, process, index, op, 1000).await;
        if let Some(Outcome::Ok(Ret::Write { revision })) = outcome {
            return Ok((context.log.now_ms() - start_ms, revision.unwrap_or(0)));
        }
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "liveness: no write committed within {bound_ms} ms of healing ({attempt} attempts)"
    ))
}

/// Member `index`'s HashKV at `revision`, retried until `bound_ms`; the
/// last error if it never answers.
async fn hash_at(index: u8, revision: i64, bound_ms: u64) -> Result<u32, String> {
    let deadline = madsim::time::Instant::now() + Duration::from_millis(bound_ms);
    let timeout = Duration::from_millis(CONTROL_TIMEOUT_MS);
    let mut last_error = String::from("no attempt");
    while madsim::time::Instant::now() < deadline {
        let ask = async {
            let url = NodeAddr::member(index).client_url();
            let mut client = MaintenanceClient::connect(url)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let response = client
                .hash_kv(HashKvRequest { revision })
                .await
                .map_err(|e| format!("{}: {}", e.code(), e.message()))?;
            Ok::<u32, String>(response.into_inner().hash)
        };
        match madsim::time::timeout(timeout, ask).await {
            Ok(Ok(hash)) => return Ok(hash),
            Ok(Err(error)) => last_error = error,
            Err(_) => last_error = "timed out".into(),
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last_error)
}

/// Checks that each of `members` (host indexes) hashes its keys at
/// `revision` to the same value, giving each `bound_ms` to catch up;
/// returns the failures.
pub async fn hashes_agree(members: Vec<u8>, revision: i64, bound_ms: u64) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut failures = Vec::new();
    for index in members {
        match hash_at(index, revision, bound_ms).await {
            Ok(hash) => hashes.push((index, hash)),
            Err(error) => failures.push(format!(
                "hash: m{index} gave no HashKV at revision {revision} within {bound_ms} ms: {error}"
            )),
        }
    }
    if let Some(&(_, first)) = hashes.first()
        && hashes.iter().any(|&(_, hash)| hash != first)
    {
        let text: Vec<String> = hashes
            .iter()
            .map(|(i, h)| format!("m{i}={h:#010x}"))
            .collect();
        failures.push(format!(
            "hash: members differ at revision {revision}: {}",
            text.join(" ")
        ));
    }
    failures
}
