//! The `etcd-client` crate against a running server: KV, the watch stream
//! (created response, events grouped by revision, prev_kv, cancel, progress
//! request, history replay) and the lease keep-alive stream, on a single
//! member and through a follower of a 3-member cluster. Every scenario runs
//! against keel and against real etcd, which proves the expectations.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, PutOptions, Txn, TxnOp,
    WatchOptions, WatchResponse, WatchStream,
};
use support::cluster::{Cluster, Flavor};

/// Bound on waiting for one stream message.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a `size`-member cluster and connects to one member: the only one,
/// or a follower (so requests go through its forwarding paths).
async fn start(flavor: Flavor, size: usize) -> (Cluster, Client) {
    let cluster = Cluster::start(flavor, size).unwrap();
    let member = if size == 1 {
        0
    } else {
        (support::client::leader(&cluster).await + 1) % size
    };
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(10));
    let url = cluster.members()[member].client_url.clone();
    let client = Client::connect([url], Some(options)).await.unwrap();
    (cluster, client)
}

async fn next(stream: &mut WatchStream) -> WatchResponse {
    tokio::time::timeout(MESSAGE_TIMEOUT, stream.message())
        .await
        .expect("watch response in time")
        .unwrap()
        .expect("watch stream still open")
}

/// `(type, key, value, mod_revision, prev value)` of each event.
fn events(response: &WatchResponse) -> Vec<(EventType, String, String, i64, Option<String>)> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    response
        .events()
        .iter()
        .map(|e| {
            let kv = e.kv().unwrap();
            let prev = e.prev_kv().map(|p| text(p.value()));
            (
                e.event_type(),
                text(kv.key()),
                text(kv.value()),
                kv.mod_revision(),
                prev,
            )
        })
        .collect()
}

async fn kv_round_trip(flavor: Flavor, size: usize) {
    let (_cluster, mut client) = start(flavor, size).await;
    let put = client.put("k1", "v1", None).await.unwrap();
    assert_eq!(put.header().unwrap().revision(), 2);
    client.put("k2", "v2", None).await.unwrap();
    let prev = client
        .put("k1", "v1b", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(prev.prev_key().unwrap().value(), b"v1");
    let got = client
        .get("k", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(got.count(), 2);
    assert_eq!(got.kvs()[0].version(), 2);
    assert_eq!(got.kvs()[0].create_revision(), 2);
    assert_eq!(got.kvs()[0].mod_revision(), 4);
    let txn = Txn::new()
        .when([Compare::version("k1", CompareOp::Equal, 2)])
        .and_then([TxnOp::delete("k2", None), TxnOp::put("k3", "v3", None)]);
    let done = client.txn(txn).await.unwrap();
    assert!(done.succeeded());
    assert_eq!(done.header().unwrap().revision(), 5);
    let deleted = client.delete("k", None).await.unwrap();
    assert_eq!(deleted.deleted(), 0);
}

async fn watch_stream(flavor: Flavor, size: usize) {
    let (_cluster, mut client) = start(flavor, size).await;
    client.put("w/old", "0", None).await.unwrap(); // revision 2
    let options = WatchOptions::new().with_prefix().with_prev_key();
    let mut stream = client.watch("w/", Some(options)).await.unwrap();
    let created = next(&mut stream).await;
    assert!(created.created(), "the first response says created");
    assert!(created.events().is_empty());
    let watch_id = created.watch_id();

    client.put("w/a", "1", None).await.unwrap(); // 3
    client.put("other", "x", None).await.unwrap(); // 4, not watched
    let txn = Txn::new().and_then([TxnOp::put("w/b", "2", None), TxnOp::put("w/a", "3", None)]);
    client.txn(txn).await.unwrap(); // 5: two events, one response
    client
        .delete("w/", Some(etcd_client::DeleteOptions::new().with_prefix()))
        .await
        .unwrap(); // 6

    let first = next(&mut stream).await;
    assert_eq!(first.watch_id(), watch_id);
    assert_eq!(
        events(&first),
        vec![(EventType::Put, "w/a".into(), "1".into(), 3, None)]
    );
    let second = next(&mut stream).await;
    assert_eq!(
        events(&second),
        vec![
            (EventType::Put, "w/b".into(), "2".into(), 5, None),
            (
                EventType::Put,
                "w/a".into(),
                "3".into(),
                5,
                Some("1".into())
            ),
        ],
        "a txn's events arrive together"
    );
    let third = next(&mut stream).await;
    let deletes = events(&third);
    assert_eq!(
        deletes.len(),
        3,
        "w/old, w/a and w/b deleted at revision 6: {deletes:?}"
    );
    assert!(deletes.iter().all(|e| e.0 == EventType::Delete && e.3 == 6));

    // A progress request answers with the current revision and no events.
    stream.request_progress().await.unwrap();
    let progress = next(&mut stream).await;
    assert!(progress.events().is_empty());
    assert_eq!(progress.header().unwrap().revision(), 6);

    // History replay on the same stream, then cancel it.
    let replay = WatchOptions::new().with_start_revision(2).with_prefix();
    stream.watch("w/", Some(replay)).await.unwrap();
    let created = next(&mut stream).await;
    assert!(created.created());
    let replay_id = created.watch_id();
    assert_ne!(replay_id, watch_id);
    let mut replayed = Vec::new();
    while replayed.len() < 6 {
        let r = next(&mut stream).await;
        assert_eq!(r.watch_id(), replay_id);
        replayed.extend(events(&r).into_iter().map(|e| (e.0, e.1, e.3)));
    }
    assert_eq!(replayed[0], (EventType::Put, "w/old".into(), 2));
    assert_eq!(replayed[5].2, 6);
    stream.cancel(replay_id).await.unwrap();
    let canceled = next(&mut stream).await;
    assert!(canceled.canceled());
    assert_eq!(canceled.watch_id(), replay_id);
}

async fn lease_keep_alive_stream(flavor: Flavor, size: usize) {
    let (_cluster, mut client) = start(flavor, size).await;
    let lease = client.lease_grant(30, None).await.unwrap();
    assert_eq!(lease.ttl(), 30);
    let id = lease.id();
    client
        .put("leased", "v", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();
    let (mut keeper, mut responses) = client.lease_keep_alive(id).await.unwrap();
    for _ in 0..3 {
        keeper.keep_alive().await.unwrap();
        let renewed = tokio::time::timeout(MESSAGE_TIMEOUT, responses.message())
            .await
            .expect("keep-alive response in time")
            .unwrap()
            .unwrap();
        assert_eq!(renewed.id(), id);
        assert_eq!(renewed.ttl(), 30);
    }
    let listed = client.leases().await.unwrap();
    assert_eq!(
        listed.leases().iter().map(|l| l.id()).collect::<Vec<_>>(),
        vec![id]
    );
    client.lease_revoke(id).await.unwrap();
    assert_eq!(client.get("leased", None).await.unwrap().count(), 0);
    // Keep-alive of a revoked lease answers TTL 0 on the stream.
    keeper.keep_alive().await.unwrap();
    let gone = tokio::time::timeout(MESSAGE_TIMEOUT, responses.message())
        .await
        .expect("keep-alive response in time")
        .unwrap()
        .unwrap();
    assert_eq!(gone.ttl(), 0);
}

#[tokio::test]
async fn keel_kv_round_trip() {
    kv_round_trip(Flavor::Keel, 1).await;
}

#[tokio::test]
async fn keel_watch_stream() {
    watch_stream(Flavor::Keel, 1).await;
}

#[tokio::test]
async fn keel_lease_keep_alive_stream() {
    lease_keep_alive_stream(Flavor::Keel, 1).await;
}

#[tokio::test]
async fn etcd_kv_round_trip() {
    if support::require_etcd("etcd_kv_round_trip") {
        kv_round_trip(Flavor::Etcd, 1).await;
    }
}

#[tokio::test]
async fn etcd_watch_stream() {
    if support::require_etcd("etcd_watch_stream") {
        watch_stream(Flavor::Etcd, 1).await;
    }
}

#[tokio::test]
async fn etcd_lease_keep_alive_stream() {
    if support::require_etcd("etcd_lease_keep_alive_stream") {
        lease_keep_alive_stream(Flavor::Etcd, 1).await;
    }
}

/// The same scenarios through a follower of a 3-member cluster.
#[tokio::test]
async fn keel_streams_through_a_follower() {
    watch_stream(Flavor::Keel, 3).await;
    lease_keep_alive_stream(Flavor::Keel, 3).await;
    kv_round_trip(Flavor::Keel, 3).await;
}

#[tokio::test]
async fn etcd_streams_through_a_follower() {
    if support::require_etcd("etcd_streams_through_a_follower") {
        watch_stream(Flavor::Etcd, 3).await;
        lease_keep_alive_stream(Flavor::Etcd, 3).await;
        kv_round_trip(Flavor::Etcd, 3).await;
    }
}
