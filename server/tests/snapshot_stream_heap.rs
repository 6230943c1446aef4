//! Peak heap while a member receives a snapshot: the chunks go to a file
//! as they arrive, so the receiver's heap is bounded by a few chunks, not
//! by the snapshot's size. Measured with a counting global allocator (this
//! binary holds this one test so nothing else allocates meanwhile), and
//! checked against a control: the same transfer into an in-memory inbox
//! must show the whole snapshot on the heap, or the meter sees nothing.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use keel_kernel::raft::{ConfState, Message, MessageType, Snapshot, SnapshotMetadata};
use keel_server::transport::inbox::{FileInbox, SnapshotInbox};
use keel_server::transport::receive::PeerService;
use keel_server::transport::send::PeerSender;
use keel_server::transport::{Inbound, TransportLimits};
use keel_wal::{FsStorage, SnapshotFiles, Storage};
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;

/// Counts the bytes allocated now and the most allocated since the last
/// [`reset_peak`].
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)]
// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn reset_peak() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

const CLUSTER_ID: u64 = 0xC1;
const MIB: usize = 1024 * 1024;
/// The snapshot: 64 MiB, in 256 KiB chunks.
const SNAPSHOT_BYTES: usize = 64 * MIB;
const CHUNK_BYTES: usize = 256 * 1024;
/// Most heap the whole transfer may add on both sides (sender and
/// receiver share this process): a few chunks in gRPC's buffers and the
/// one being written.
const HEAP_BOUND_BYTES: usize = 8 * MIB;

fn limits() -> TransportLimits {
    TransportLimits {
        snapshot_chunk_size_bytes: CHUNK_BYTES,
        ..TransportLimits::default()
    }
}

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
                conf_state: ConfState {
                    voters: vec![1, 2],
                    ..ConfState::default()
                },
            },
            data: Bytes::new(),
        }),
        ..Message::default()
    };
    Bytes::from(message.encode())
}

/// The sender's snapshot, written to a file and mapped (as a leader sends
/// its snapshot file), so it costs no heap itself; returns it and its CRC.
fn mapped_snapshot(dir: &std::path::Path) -> (Bytes, u32) {
    let storage = FsStorage::open(dir).unwrap();
    let file = storage.create("sent").unwrap();
    let piece: Vec<u8> = (0..MIB).map(|i| (i % 251) as u8).collect();
    let mut crc = crc32fast::Hasher::new();
    for i in 0..SNAPSHOT_BYTES / MIB {
        storage.write_at(&file, (i * MIB) as u64, &piece).unwrap();
        crc.update(&piece);
    }
    storage.sync(&file).unwrap();
    (storage.map("sent").unwrap(), crc.finalize())
}

/// Sends the snapshot through a receiver writing into `inbox`; returns the
/// peak heap the transfer added, in bytes, measured until the received
/// snapshot's data was read through (its CRC checked).
async fn peak_heap_of_transfer(inbox: Arc<dyn SnapshotInbox>, data: &Bytes, crc: u32) -> usize {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (inbound_tx, mut inbound) = mpsc::channel(4);
    let service = PeerService::new(CLUSTER_ID, 2, limits(), inbound_tx).with_snapshot_inbox(inbox);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service.into_server())
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    let mut sender = PeerSender::connect(&url, CLUSTER_ID, 1, 2, limits())
        .await
        .unwrap();
    let base = reset_peak();
    let ack = sender
        .send_snapshot(7, 2, raft_message(7, 2), data.clone())
        .await
        .unwrap();
    assert_eq!(ack.received_bytes, SNAPSHOT_BYTES as u64);
    let received = match inbound.recv().await.unwrap() {
        Inbound::Snapshot(received) => received,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(crc32fast::hash(&received.data), crc);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    drop(received);
    server.abort();
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_snapshot_never_sits_whole_on_the_heap() {
    let sent = tempfile::tempdir().unwrap();
    let (data, crc) = mapped_snapshot(sent.path());
    let snap = tempfile::tempdir().unwrap();
    let files = SnapshotFiles::new(FsStorage::open(snap.path()).unwrap(), 5);
    let inbox = Arc::new(FileInbox::for_member(files).unwrap());
    let into_file = peak_heap_of_transfer(inbox, &data, crc).await;
    let in_memory = peak_heap_of_transfer(Arc::new(FileInbox::hand_on()), &data, crc).await;
    println!(
        "peak heap added receiving {} MiB in {} KiB chunks: into the snapshot directory {:.1} MiB, into memory (control) {:.1} MiB",
        SNAPSHOT_BYTES / MIB,
        CHUNK_BYTES / 1024,
        into_file as f64 / MIB as f64,
        in_memory as f64 / MIB as f64
    );
    assert!(
        in_memory >= SNAPSHOT_BYTES,
        "the control did not see the snapshot on the heap: {in_memory} bytes"
    );
    assert!(
        into_file <= HEAP_BOUND_BYTES,
        "receiving into the snapshot directory took {into_file} bytes of heap (bound {HEAP_BOUND_BYTES})"
    );
}
