//! The API changes only member-local state, under the state machine's read
//! lock: a real single member (simulated disk, no sockets) serves a
//! keep-alive, a TTL query and a token check while a reader holds the
//! state machine. Had any of them taken the write lock, it would wait for
//! that reader, and the test fails at its bound instead.

use std::sync::mpsc;
use std::time::Duration;

use keel_kernel::apply::Request;
use keel_kernel::auth::AuthInfo;

use super::{Node, NodeSettings, NodeStorage};
use crate::replica::Replica;
use crate::transport::TransportLimits;
use crate::transport::lease::LeaseAuthority;

/// How long the member-local calls may take while the reader holds on.
const CALLS_BOUND: Duration = Duration::from_secs(10);

/// A single member on simulated disks that leads (10 s at most).
async fn leading_member() -> Node {
    let disk = || keel_wal::SimStorage::new(keel_wal::SimConfig::default());
    let storage = NodeStorage {
        wal: disk(),
        snap: disk(),
    };
    let mut settings = NodeSettings::single("m0", "http://127.0.0.1:1");
    settings.heartbeat_interval_ms = 20;
    settings.election_timeout_ms = 200;
    let (node, _peer_service) = Node::start(settings, storage, TransportLimits::default()).unwrap();
    let handle = node.handle();
    for _ in 0..1000 {
        if handle.status().leader_id == handle.member_id() {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the member never elected itself within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_local_calls_take_only_the_read_lock() {
    let node = leading_member().await;
    let handle = node.handle();
    let grant = Request::LeaseGrant {
        id: 5,
        ttl_secs: 60,
    };
    handle.propose(grant, None).await.unwrap().result.unwrap();
    let revision_before = handle.with_state(|state| state.store().current_revision());

    let reader = handle.shared().read_state();
    let (tx, rx) = mpsc::channel();
    let caller = handle.clone();
    let runtime = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        // A keep-alive's ReadIndex round goes through the driver, which
        // must not need the write lock for it either.
        let renewed = runtime.block_on(caller.renew_here(5));
        let status = caller.time_to_live_here(5, false);
        let who = caller.authenticate_token("some.token");
        let _ = tx.send((renewed, status, who));
    });
    let answered = rx.recv_timeout(CALLS_BOUND);
    drop(reader);
    let (renewed, status, who) =
        answered.expect("a member-local call waited for a reader: it took the write lock");

    assert_eq!(renewed.unwrap().ttl_secs, 60);
    let status = status.unwrap();
    assert!(
        status.ttl_secs > 55 && status.granted_ttl_secs == 60,
        "{status:?}"
    );
    assert_eq!(who, Ok(AuthInfo::default()), "auth is disabled");
    let revision_after = handle.with_state(|state| state.store().current_revision());
    assert_eq!(
        revision_after, revision_before,
        "nothing replicated changed"
    );
    node.stop().await;
}
