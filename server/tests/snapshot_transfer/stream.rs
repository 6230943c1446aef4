//! A member's peer service receives snapshots straight into its snapshot
//! directory (real files, loopback gRPC): the chunks are written as they
//! arrive and the file is renamed into place only once complete and
//! verified; malformed chunk sequences are refused with INVALID_ARGUMENT,
//! a transfer cut off mid-stream leaves nothing behind, and neither
//! touches the snapshot file already durable there.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::wait_until;

use bytes::Bytes;
use keel_kernel::raft::{ConfState, Message, MessageType, Snapshot, SnapshotMetadata};
use keel_server::proto::keelpeerpb::SnapshotChunk;
use keel_server::proto::keelpeerpb::peer_client::PeerClient;
use keel_server::transport::inbox::FileInbox;
use keel_server::transport::receive::PeerService;
use keel_server::transport::send::PeerSender;
use keel_server::transport::snapshot::{SnapshotHeader, cut_chunks};
use keel_server::transport::{Inbound, TransportLimits};
use keel_wal::{FsStorage, SnapshotFiles};
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;

const CLUSTER_ID: u64 = 0xC1;
const CHUNK_BYTES: usize = 64 * 1024;
/// How long a test waits for anything before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

fn limits() -> TransportLimits {
    TransportLimits {
        snapshot_chunk_size_bytes: CHUNK_BYTES,
        snapshot_size_bytes_max: 8 * 1024 * 1024,
        ..TransportLimits::default()
    }
}

fn conf_state() -> ConfState {
    ConfState {
        voters: vec![1, 2, 3],
        ..ConfState::default()
    }
}

/// The encoded Raft message announcing the snapshot at `index`, `term`
/// (its data travels in the chunks).
fn raft_message(index: u64, term: u64) -> Bytes {
    let message = Message {
        msg_type: MessageType::Snapshot,
        from: 1,
        to: 2,
        term,
        snapshot: Some(Snapshot {
            metadata: SnapshotMetadata {
                index,
                term,
                conf_state: conf_state(),
            },
            data: Bytes::new(),
        }),
        ..Message::default()
    };
    Bytes::from(message.encode())
}

fn data(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8 ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

fn chunks(index: u64, term: u64, data: Bytes) -> Vec<SnapshotChunk> {
    let header = SnapshotHeader {
        cluster_id: CLUSTER_ID,
        from: 1,
        to: 2,
        index,
        term,
    };
    cut_chunks(header, raft_message(index, term), data, CHUNK_BYTES).collect()
}

/// Member 2's peer service over the snapshot directory `dir`, on a free
/// loopback port; returns its URL and the node-driver side of its channel.
async fn start_receiver(dir: &Path) -> (String, mpsc::Receiver<Inbound>) {
    let files = SnapshotFiles::new(FsStorage::open(dir).unwrap(), 5);
    let inbox = FileInbox::for_member(files).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (inbound_tx, inbound_rx) = mpsc::channel(4);
    let service =
        PeerService::new(CLUSTER_ID, 2, limits(), inbound_tx).with_snapshot_inbox(Arc::new(inbox));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (url, inbound_rx)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Sends `chunks` on one raw snapshot stream; returns the peer's status.
async fn send_raw(url: &str, chunks: Vec<SnapshotChunk>) -> tonic::Status {
    let mut client = PeerClient::connect(url.to_owned()).await.unwrap();
    let outcome = client.snapshot(tokio_stream::iter(chunks)).await;
    outcome.expect_err("the receiver accepted a malformed transfer")
}

/// Receives a first snapshot whole (the durable state the refusals must
/// not touch); returns its file name.
async fn receive_a_first_snapshot(url: &str, inbound: &mut mpsc::Receiver<Inbound>) -> String {
    let mut sender = PeerSender::connect(url, CLUSTER_ID, 1, 2, limits())
        .await
        .unwrap();
    let first = data(300_000, 1);
    sender
        .send_snapshot(10, 2, raft_message(10, 2), first.clone())
        .await
        .unwrap();
    match inbound.recv().await.unwrap() {
        Inbound::Snapshot(received) => {
            assert_eq!((received.index, received.term), (10, 2));
            assert_eq!(received.data, first);
        }
        other => panic!("unexpected {other:?}"),
    }
    keel_wal::snapshot_file::snapshot_name(2, 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_snapshot_is_its_file_in_the_snapshot_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (url, mut inbound) = start_receiver(dir.path()).await;
    let name = receive_a_first_snapshot(&url, &mut inbound).await;
    assert_eq!(names(dir.path()), vec![name]);
    // The file is the snapshot file the WAL's marker will name, with the
    // configuration the Raft message carried.
    let files = SnapshotFiles::new(FsStorage::open(dir.path()).unwrap(), 5);
    let loaded = files.load().unwrap().unwrap();
    assert_eq!(loaded.metadata.conf_state, conf_state());
    assert_eq!(loaded.data, data(300_000, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunk_sequences_are_refused_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (url, mut inbound) = start_receiver(dir.path()).await;
    let durable = receive_a_first_snapshot(&url, &mut inbound).await;
    let good = || chunks(20, 3, data(500_000, 2));
    let cases: Vec<(&str, Vec<SnapshotChunk>, &str)> = vec![
        (
            "gap",
            {
                let mut c = good();
                c.remove(2);
                c
            },
            "expected offset",
        ),
        (
            "over the limit",
            chunks(20, 3, data(8 * 1024 * 1024 + 1, 3)),
            "exceeds the limit",
        ),
        (
            "checksum",
            {
                let mut c = good();
                c[3].data = Bytes::from(vec![0u8; c[3].data.len()]);
                c
            },
            "checksum mismatch",
        ),
        (
            "two transfers interleaved",
            {
                let mut c = good();
                let other = chunks(30, 3, data(500_000, 4));
                c[2] = other[2].clone();
                c
            },
            "different snapshot",
        ),
        (
            "no last chunk",
            {
                let mut c = good();
                c.pop();
                c
            },
            "snapshot ended after",
        ),
        (
            "chunk after the last",
            {
                let mut c = good();
                let again = c[0].clone();
                c.push(again);
                c
            },
            "after the last chunk",
        ),
        (
            "first chunk not at 0",
            good()[1..].to_vec(),
            "must start with the first chunk",
        ),
        (
            "message for another snapshot",
            {
                let mut c = good();
                c[0].message = raft_message(21, 3);
                c
            },
            "announced by a raft message for index 21",
        ),
        (
            "message not raft",
            {
                let mut c = good();
                c[0].message = Bytes::from_static(b"not a raft message");
                c
            },
            "raft message",
        ),
    ];
    for (case, chunks, why) in cases {
        let status = send_raw(&url, chunks).await;
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{case}: {status:?}"
        );
        assert!(status.message().contains(why), "{case}: {status:?}");
        assert_eq!(
            names(dir.path()),
            vec![durable.clone()],
            "{case}: files left"
        );
        assert!(inbound.try_recv().is_err(), "{case}: delivered");
    }
    let files = SnapshotFiles::new(FsStorage::open(dir.path()).unwrap(), 5);
    let loaded = files.load().unwrap().unwrap();
    assert_eq!(loaded.metadata.index, 10);
    assert_eq!(loaded.data, data(300_000, 1));
}

fn temp_files(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_cut_off_mid_stream_leaves_nothing_and_a_retry_installs() {
    let dir = tempfile::tempdir().unwrap();
    let (url, mut inbound) = start_receiver(dir.path()).await;
    let durable = receive_a_first_snapshot(&url, &mut inbound).await;
    let all = chunks(20, 3, data(1_000_000, 5));
    // The sender sends 5 of its 16 chunks, then goes quiet; the test then
    // drops the call (a leader that crashed, a connection cut).
    let (first_five, rest) = all.split_at(5);
    let stream = tokio_stream::StreamExt::chain(
        tokio_stream::iter(first_five.to_vec()),
        tokio_stream::pending(),
    );
    let mut client = PeerClient::connect(url.clone()).await.unwrap();
    let call = tokio::spawn(async move { client.snapshot(stream).await });
    let received = 5 * CHUNK_BYTES as u64;
    wait_until(
        PATIENCE,
        "the five chunks written to a temporary file",
        || {
            temp_files(dir.path()).iter().any(|name| {
                std::fs::metadata(dir.path().join(name)).is_ok_and(|m| m.len() >= received)
            })
        },
    )
    .await;
    assert!(!rest.is_empty());
    call.abort();
    wait_until(PATIENCE, "the partial file removed", || {
        temp_files(dir.path()).is_empty()
    })
    .await;
    assert_eq!(names(dir.path()), vec![durable.clone()]);
    assert!(
        inbound.try_recv().is_err(),
        "a partial snapshot was delivered"
    );
    // The retried transfer installs the snapshot.
    let mut sender = PeerSender::connect(&url, CLUSTER_ID, 1, 2, limits())
        .await
        .unwrap();
    sender
        .send_snapshot(20, 3, raft_message(20, 3), data(1_000_000, 5))
        .await
        .unwrap();
    match inbound.recv().await.unwrap() {
        Inbound::Snapshot(received) => assert_eq!(received.data, data(1_000_000, 5)),
        other => panic!("unexpected {other:?}"),
    }
    let new = keel_wal::snapshot_file::snapshot_name(3, 20);
    assert_eq!(names(dir.path()), vec![durable, new]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_files_a_crash_left_are_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (url, mut inbound) = start_receiver(dir.path()).await;
    let durable = receive_a_first_snapshot(&url, &mut inbound).await;
    let leftover = format!(
        "{}.ff.recv.tmp",
        keel_wal::snapshot_file::snapshot_name(3, 20)
    );
    std::fs::write(dir.path().join(&leftover), vec![7u8; 100_000]).unwrap();
    let (_url, _inbound) = start_receiver(dir.path()).await;
    assert_eq!(names(dir.path()), vec![durable]);
}
