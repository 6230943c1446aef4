//! The madsim seam, checked end to end: keel-server's real peer transport
//! (`PeerService` behind a tonic server, `PeerSender` as the client) on two
//! simulated nodes talking over madsim's simulated network.
//!
//! Run: `RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target-madsim cargo test -p keel-sim --test peer_transport`
//! (`MADSIM_TEST_SEED=<n>` replays a seed). In a normal build this file is empty.
#![cfg(madsim)]
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::Duration;

use bytes::Bytes;
use keel_server::transport::receive::PeerService;
use keel_server::transport::send::{PeerSender, SendError};
use keel_server::transport::{Inbound, TransportLimits};
use keel_sim::NodeAddr;
use madsim::runtime::Handle;
use tokio::sync::mpsc;
use tonic::Code;

const CLUSTER_ID: u64 = 0xC1;
const RECEIVER_ID: u64 = 2;
const SENDER_ID: u64 = 1;

/// Starts member `RECEIVER_ID`'s peer server on simulated node 1 and returns
/// the channel its node driver would read.
fn start_receiver(handle: &Handle, limits: TransportLimits) -> mpsc::Receiver<Inbound> {
    let addr = NodeAddr::member(1);
    let node = handle.create_node().name("receiver").ip(addr.ip).build();
    let (inbound_tx, inbound_rx) = mpsc::channel(8);
    node.spawn(async move {
        let service = PeerService::new(CLUSTER_ID, RECEIVER_ID, limits, inbound_tx);
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve(addr.peer())
            .await
    });
    inbound_rx
}

/// Runs `body` on simulated node 0 (the sender) once the receiver listens.
async fn on_sender<F, T>(handle: &Handle, body: impl FnOnce() -> F + Send + 'static) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let node = handle
        .create_node()
        .name("sender")
        .ip(NodeAddr::member(0).ip)
        .build();
    node.spawn(async move {
        madsim::time::sleep(Duration::from_millis(100)).await;
        body().await
    })
    .await
    .expect("sender task panicked")
}

fn messages(count: usize, size_bytes: usize) -> Vec<Bytes> {
    (0..count)
        .map(|i| Bytes::from(vec![(i % 251) as u8; size_bytes]))
        .collect()
}

fn small_batches() -> TransportLimits {
    TransportLimits {
        batch_messages_max: 3,
        ..TransportLimits::default()
    }
}

#[madsim::test]
async fn raft_batches_arrive_in_order_on_the_other_node() {
    let handle = Handle::current();
    let mut inbound = start_receiver(&handle, small_batches());
    let sent = messages(10, 100);
    let to_send = sent.clone();
    let ack = on_sender(&handle, move || async move {
        let url = NodeAddr::member(1).peer_url();
        let mut sender =
            PeerSender::connect(&url, CLUSTER_ID, SENDER_ID, RECEIVER_ID, small_batches()).await?;
        sender.send_raft(to_send).await
    })
    .await
    .expect("send_raft");
    assert_eq!(
        (ack.batches, ack.messages),
        (4, 10),
        "10 messages in batches of at most 3"
    );

    let mut received = Vec::new();
    while received.len() < sent.len() {
        match inbound.recv().await.expect("receiver stopped early") {
            Inbound::Raft { from, messages, .. } => {
                assert_eq!(from, SENDER_ID);
                assert!(messages.len() <= 3);
                received.extend(messages);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, sent);
}

#[madsim::test]
async fn snapshot_arrives_whole_and_verified() {
    let handle = Handle::current();
    let limits = TransportLimits {
        snapshot_chunk_size_bytes: 1000,
        ..TransportLimits::default()
    };
    let mut inbound = start_receiver(&handle, limits);
    let data: Bytes = (0..10_500u32)
        .map(|i| (i % 253) as u8)
        .collect::<Vec<u8>>()
        .into();
    let to_send = data.clone();
    let ack = on_sender(&handle, move || async move {
        let url = NodeAddr::member(1).peer_url();
        let mut sender =
            PeerSender::connect(&url, CLUSTER_ID, SENDER_ID, RECEIVER_ID, limits).await?;
        sender
            .send_snapshot(42, 7, Bytes::from_static(b"raft-snapshot-message"), to_send)
            .await
    })
    .await
    .expect("send_snapshot");
    assert_eq!(ack.received_bytes, data.len() as u64);
    match inbound.recv().await.expect("receiver stopped early") {
        Inbound::Snapshot(snapshot) => {
            assert_eq!(
                (snapshot.from, snapshot.index, snapshot.term),
                (SENDER_ID, 42, 7)
            );
            assert_eq!(
                snapshot.message,
                Bytes::from_static(b"raft-snapshot-message")
            );
            assert_eq!(snapshot.data, data);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[madsim::test]
async fn sender_from_another_cluster_is_rejected_and_nothing_delivered() {
    let handle = Handle::current();
    let mut inbound = start_receiver(&handle, TransportLimits::default());
    let result = on_sender(&handle, move || async move {
        let url = NodeAddr::member(1).peer_url();
        let mut sender = PeerSender::connect(
            &url,
            CLUSTER_ID + 1,
            SENDER_ID,
            RECEIVER_ID,
            TransportLimits::default(),
        )
        .await?;
        sender.send_raft(messages(2, 10)).await
    })
    .await;
    match result {
        Err(SendError::Rejected(status)) => {
            assert_eq!(status.code(), Code::FailedPrecondition);
            assert!(
                status.message().contains("cluster ID mismatch"),
                "{status:?}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(
        inbound.try_recv().is_err(),
        "a rejected batch must not reach the node driver"
    );
}
