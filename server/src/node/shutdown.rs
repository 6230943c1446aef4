//! Graceful shutdown of a leader: before it stops, a leader with other
//! voters hands leadership to the most up-to-date one, so clients wait for
//! one round of `MsgTimeoutNow` and a vote instead of an election timeout
//! (etcd `server.go` `TryTransferLeadershipOnShutdown`, called by
//! `EtcdServer.Stop` on SIGTERM/SIGINT).

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::handle::{Command, NodeHandle};

/// Hands leadership to the most up-to-date voter if this member leads and
/// has other voters, and waits (two election timeouts at most) until
/// another member leads. Logs what happened; returns the new leader, or
/// `None` when there was nothing to transfer or it did not finish in time
/// (the member then stops anyway, as etcd's does).
pub async fn transfer_leadership(handle: &NodeHandle) -> Option<u64> {
    let shared = handle.shared();
    let member_id = shared.member_id;
    let mut leader = shared.leader.subscribe();
    let (reply, chosen) = oneshot::channel();
    handle
        .send_command(Command::TransferOnShutdown(reply))
        .ok()?;
    let transferee = chosen.await.ok().flatten()?;
    let started = Instant::now();
    let bound = Duration::from_millis(2 * shared.settings.election_timeout_ms);
    let led_by_another = |id: &u64| *id != member_id && *id != 0;
    let from = format!("{member_id:x}");
    match tokio::time::timeout(bound, leader.wait_for(led_by_another)).await {
        Ok(Ok(new_leader)) => {
            let to = format!("{:x}", *new_leader);
            let took_ms = started.elapsed().as_millis() as u64;
            tracing::info!(%from, %to, took_ms, "leadership transferred on shutdown");
            Some(*new_leader)
        }
        _ => {
            let transferee = format!("{transferee:x}");
            tracing::warn!(%from, %transferee, "leadership transfer on shutdown did not finish in time; stopping anyway");
            None
        }
    }
}
