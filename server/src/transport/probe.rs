//! Round-trip probes to one peer, as etcd's rafthttp prober measures
//! `etcd_network_peer_round_trip_time_seconds`: while a member streams
//! Raft messages to a peer, it also sends that peer a `Probe` call on the
//! same connection, at once and then every [`PROBE_INTERVAL`], and reports
//! the time until the answer to its [`Observer`]. A Raft stream carries no
//! per-batch acknowledgement, so the probe is what measures the network
//! (and the peer's gRPC server) between two members.

use std::convert::Infallible;
use std::time::Duration;

use super::send::PeerSender;
use crate::observe::Observer;

/// Time between two probes of one peer.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// A probe unanswered for this long is given up (and not reported).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Probes peer `to` through `sender` at once and then every
/// [`PROBE_INTERVAL`], reporting each answered probe's round trip to
/// `observer`. Never returns: the caller drops it when the connection ends.
pub async fn probe_forever(mut sender: PeerSender, to: u64, observer: Observer) -> Infallible {
    let mut ticks = tokio::time::interval(PROBE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match tokio::time::timeout(PROBE_TIMEOUT, sender.probe()).await {
            Ok(Ok(round_trip)) => observer.peer_round_trip(to, round_trip),
            Ok(Err(err)) => tracing::debug!(to = %format!("{to:x}"), %err, "probe failed"),
            Err(_) => tracing::debug!(to = %format!("{to:x}"), "probe unanswered"),
        }
    }
}
