//! The services over the real node driver: one member in a temporary data
//! directory serving on loopback, driven by the generated tonic clients
//! (KV with linearizable reads through ReadIndex, Watch, Lease streams,
//! Maintenance, Cluster).

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use tonic::transport::Channel;

use super::ApiLimits;
use super::tests::{bytes, create_request, next, open_watch};
use crate::node::serve::{Listeners, Member};
use crate::node::{NodeSettings, NodeStorage};
use crate::proto::etcdserverpb as pb;
use crate::transport::TransportLimits;

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A running single member for a test: the services over the real node
/// driver, Raft and WAL. Stopped (its directory removed) when dropped.
pub(super) struct RealNode {
    _member: Member,
    _dir: tempfile::TempDir,
}

/// Starts a single member; returns it and a channel to its client address
/// once it has a leader.
pub(super) async fn real_node() -> (RealNode, Channel) {
    let (member, dir, channel) = single_member().await;
    let node = RealNode {
        _member: member,
        _dir: dir,
    };
    (node, channel)
}

/// Starts a single member; returns it, its data directory and a channel
/// to its client address once it has a leader.
async fn single_member() -> (Member, tempfile::TempDir, Channel) {
    let (client, peer) = (free_addr(), free_addr());
    let mut settings = NodeSettings::single("m0", &format!("http://{peer}"));
    settings.client_urls = vec![format!("http://{client}")];
    // One voter: a late heartbeat cannot cost it its leadership (nobody
    // else campaigns, its quorum is itself), so a short election timeout
    // only shortens its first election; calls need no retry for a leader
    // change.
    settings.heartbeat_interval_ms = 20;
    settings.election_timeout_ms = 200;
    let dir = tempfile::tempdir().unwrap();
    let storage = NodeStorage::on_disk(dir.path()).unwrap();
    let listeners = Listeners {
        client_addrs: vec![client],
        peer_addrs: vec![peer],
        api_limits: ApiLimits::default(),
        transport_limits: TransportLimits::default(),
    };
    let member = Member::start(settings, storage, listeners).await.unwrap();
    let endpoint = Channel::from_shared(format!("http://{client}")).unwrap();
    for _ in 0..200 {
        if let Ok(channel) = endpoint.connect().await {
            let mut maintenance = pb::maintenance_client::MaintenanceClient::new(channel.clone());
            let status = maintenance.status(pb::StatusRequest {}).await;
            if status.is_ok_and(|s| s.into_inner().leader != 0) {
                return (member, dir, channel);
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the member never elected itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_over_a_real_single_member() {
    let (member, _dir, channel) = single_member().await;
    let mut kv = pb::kv_client::KvClient::new(channel.clone());
    let mut lease = pb::lease_client::LeaseClient::new(channel.clone());

    let (requests, mut events) = open_watch(channel.clone()).await;
    let create = pb::WatchCreateRequest {
        key: bytes("k"),
        ..pb::WatchCreateRequest::default()
    };
    requests.send(create_request(create)).await.unwrap();
    assert!(next(&mut events).await.created);

    let granted = lease
        .lease_grant(pb::LeaseGrantRequest { ttl: 60, id: 0 })
        .await
        .unwrap()
        .into_inner();
    let put = kv
        .put(pb::PutRequest {
            key: bytes("k"),
            value: bytes("v"),
            lease: granted.id,
            ..pb::PutRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let header = put.header.unwrap();
    assert!(header.cluster_id != 0 && header.member_id != 0 && header.raft_term != 0);

    let got = kv
        .range(pb::RangeRequest {
            key: bytes("k"),
            ..pb::RangeRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.kvs[0].value, bytes("v"));
    assert_eq!(got.kvs[0].lease, granted.id);
    let event = next(&mut events).await;
    assert_eq!(event.events[0].kv.as_ref().unwrap().value, bytes("v"));

    // The call returns with its first answer, as etcd's: ask first.
    let (keep, receiver) = tokio::sync::mpsc::channel(4);
    keep.send(pb::LeaseKeepAliveRequest { id: granted.id })
        .await
        .unwrap();
    let mut answers = lease
        .lease_keep_alive(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answers.message().await.unwrap().unwrap().ttl, 60);
    let ttl = lease
        .lease_time_to_live(pb::LeaseTimeToLiveRequest {
            id: granted.id,
            keys: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ttl.keys, vec![bytes("k")]);

    let mut maintenance = pb::maintenance_client::MaintenanceClient::new(channel.clone());
    let mut chunks = maintenance
        .snapshot(pb::SnapshotRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut total_bytes = 0;
    while let Some(chunk) = chunks.message().await.unwrap() {
        total_bytes += chunk.blob.len();
    }
    assert_eq!(total_bytes % 512, 32);
    let mut cluster = pb::cluster_client::ClusterClient::new(channel.clone());
    let members = cluster
        .member_list(pb::MemberListRequest { linearizable: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members.members.len(), 1);
    let mut maintenance = pb::maintenance_client::MaintenanceClient::new(channel);
    let status = maintenance
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    // etcd's default --quota-backend-bytes, 2 GiB.
    assert_eq!(status.db_size_quota, 2 << 30);
    assert!(status.errors.is_empty());
    member.stop().await;
}
