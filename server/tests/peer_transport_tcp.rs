//! The peer transport over real TCP on loopback (the same code the madsim
//! tests in sim/ run over the simulated network).
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

use bytes::Bytes;
use keel_server::transport::receive::PeerService;
use keel_server::transport::send::{PeerSender, SendError};
use keel_server::transport::{Inbound, TransportLimits};
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;

const CLUSTER_ID: u64 = 0xC1;

/// Serves member 2's peer service on a free loopback port; returns its URL
/// and the node-driver side of the inbound channel.
async fn start_receiver(
    limits: TransportLimits,
    capacity: usize,
) -> (String, mpsc::Receiver<Inbound>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (inbound_tx, inbound_rx) = mpsc::channel(capacity);
    let service = PeerService::new(CLUSTER_ID, 2, limits, inbound_tx);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (url, inbound_rx)
}

#[tokio::test]
async fn raft_stream_and_snapshot_cross_loopback() {
    let limits = TransportLimits {
        batch_messages_max: 2,
        snapshot_chunk_size_bytes: 4096,
        ..Default::default()
    };
    let (url, mut inbound) = start_receiver(limits, 64).await;
    let mut sender = PeerSender::connect(&url, CLUSTER_ID, 1, 2, limits)
        .await
        .unwrap();

    // A long-lived stream fed group by group, as the node driver will.
    let groups = vec![
        vec![
            Bytes::from_static(b"a"),
            Bytes::from_static(b"b"),
            Bytes::from_static(b"c"),
        ],
        vec![Bytes::from_static(b"d")],
    ];
    let ack = sender
        .stream_raft(tokio_stream::iter(groups))
        .await
        .unwrap();
    assert_eq!((ack.batches, ack.messages), (3, 4));
    let mut received = Vec::new();
    for _ in 0..3 {
        match inbound.recv().await.unwrap() {
            Inbound::Raft {
                from: 1, messages, ..
            } => received.extend(messages),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        received,
        [&b"a"[..], b"b", b"c", b"d"].map(Bytes::from_static)
    );

    // A snapshot bigger than tonic's default 4 MiB frame limit, in 4 KiB chunks.
    let data = Bytes::from(vec![7u8; 5 * 1024 * 1024 + 3]);
    let ack = sender
        .send_snapshot(9, 2, Bytes::from_static(b"m"), data.clone())
        .await
        .unwrap();
    assert_eq!(ack.received_bytes, data.len() as u64);
    match inbound.recv().await.unwrap() {
        Inbound::Snapshot(snapshot) => assert_eq!(snapshot.data, data),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn oversized_batch_is_rejected_by_the_receiver() {
    let receiver_limits = TransportLimits {
        batch_messages_max: 2,
        ..Default::default()
    };
    let (url, mut inbound) = start_receiver(receiver_limits, 8).await;
    // A sender configured with looser limits than the receiver accepts.
    let mut sender = PeerSender::connect(&url, CLUSTER_ID, 1, 2, TransportLimits::default())
        .await
        .unwrap();
    let err = sender
        .send_raft(vec![Bytes::from_static(b"x"); 3])
        .await
        .unwrap_err();
    match err {
        SendError::Rejected(status) => {
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(
                status.message().contains("exceeds the limit of 2"),
                "{status:?}"
            );
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(inbound.try_recv().is_err());
}

#[tokio::test]
async fn message_for_another_member_is_rejected() {
    let (url, _inbound) = start_receiver(TransportLimits::default(), 8).await;
    let mut sender = PeerSender::connect(&url, CLUSTER_ID, 1, 3, TransportLimits::default())
        .await
        .unwrap();
    let err = sender
        .send_raft(vec![Bytes::from_static(b"x")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Rejected(ref s) if s.code() == tonic::Code::InvalidArgument),
        "{err:?}"
    );
}
