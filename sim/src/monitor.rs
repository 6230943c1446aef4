//! Watches who claims to lead: polls every member's status from the
//! control host and logs each change of the set of (member, term) that
//! claim leadership, so a split brain shows as two claims at once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cluster::member_status;
use crate::sim_log::SharedLog;

/// How often the monitor polls.
pub const MONITOR_INTERVAL_MS: u64 = 250;

/// Polls `members` members until `stop` is set, logging leadership claims.
pub async fn watch_leaders(members: u8, log: SharedLog, stop: Arc<AtomicBool>) {
    let mut last: BTreeSet<(u8, u64)> = BTreeSet::new();
    while !stop.load(Ordering::Relaxed) {
        let mut claims = BTreeSet::new();
        for index in 0..members {
            if let Some(status) = member_status(index).await
                && status.leader != 0
                && status.leader == status.member_id
            {
                claims.insert((index, status.term));
            }
        }
        if claims != last {
            let text: Vec<String> = claims
                .iter()
                .map(|(m, t)| format!("m{m}@term{t}"))
                .collect();
            log.push(format!("leaders claimed: [{}]", text.join(", ")));
            last = claims;
        }
        madsim::time::sleep(Duration::from_millis(MONITOR_INTERVAL_MS)).await;
    }
}
