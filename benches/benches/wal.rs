//! WAL benchmarks on the real disk (a temporary directory under
//! `$KEEL_BENCH_DIR`, default the system temp dir; deleted afterwards):
//!
//! - `wal_append/append_256B_no_fsync`: payload bytes/s appending 256-byte
//!   entries in batches of 1024, no fsync (segments of 512 MiB, the log is
//!   recreated every 256 MiB outside the timed region so no cut and no
//!   writeback falls into the measurement).
//! - `wal_group_commit/raw_fdatasync`: 288-byte pwrite + fdatasync on a
//!   preallocated file (the disk's own durable-write rate), then
//!   `appenders/{1,16,64}`: that many threads each appending one 256-byte
//!   entry and waiting until it is durable; one of the waiters runs the
//!   fsync outside the lock while the others keep appending (group commit).
//!   An interleaved summary then measures the same with appenders as tasks
//!   on one thread handing entries to one committer that drains every
//!   queued request into one append and one fsync (the node driver's
//!   model, the next segment prepared on another thread as the driver
//!   does, and a snapshot marker logged and the segments below it purged
//!   on another thread whenever more than [`SEGMENTS_KEPT`] are sealed, as
//!   a member's snapshots do), and prints entries/s, fsyncs/s and the
//!   ratios to the raw rate and to one appender for both models, how long
//!   the committer's rounds that cut a segment took, where the tasks'
//!   rounds spend their time, and the disk's own floor: a direct write +
//!   fdatasync of one framed entry against one of 64, in the same slices,
//!   which bounds what 64 appenders can reach over one. Each
//!   configuration keeps its log across slices, so segment cuts, purges
//!   and the zeros written ahead of the log are measured in proportion; the
//!   tasks' logs start in a member's steady state, writing into segment
//!   files their purges kept for reuse (see `TaskLog::new`).
//! - `wal_recovery/replay_1GiB_{warm,cold}`: MB/s of `recover()` over a
//!   1 GiB log of 1 KiB entries, with the segments in the page cache, and
//!   after `posix_fadvise(DONTNEED)` on every segment.
//!
//! Run: `cargo bench -p keel-bench --bench wal` (about 3 minutes);
//! `KEEL_WAL_BENCH=append,group,recovery` selects parts.

#![allow(missing_docs, clippy::unwrap_used)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keel_kernel::raft::{Entry, EntryType};
use keel_wal::{FsStorage, Metadata, Storage, SyncJob, Wal, WalOptions, recover};
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const META: Metadata = Metadata {
    cluster_id: 1,
    node_id: 1,
};

/// True unless `KEEL_WAL_BENCH` (comma-separated: append, group, recovery)
/// is set and does not name `part`.
fn enabled(part: &str) -> bool {
    std::env::var("KEEL_WAL_BENCH").map_or(true, |parts| parts.split(',').any(|p| p.trim() == part))
}

fn bench_root() -> PathBuf {
    std::env::var_os("KEEL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("keel-wal-bench")
        .tempdir_in(bench_root())
        .unwrap()
}

fn entry(index: u64, data: &Bytes) -> Entry {
    Entry {
        term: 1,
        index,
        entry_type: EntryType::Normal,
        data: data.clone(),
    }
}

// ---------------------------------------------------------------- append

const APPEND_BATCH: usize = 1024;
const APPEND_ENTRY_BYTES: usize = 256;
const APPEND_LOG_BYTES_MAX: u64 = 256 << 20;

struct AppendLog {
    _dir: tempfile::TempDir,
    wal: Wal<FsStorage>,
    written_bytes: u64,
}

impl AppendLog {
    fn new() -> AppendLog {
        let dir = temp_dir();
        let options = WalOptions {
            segment_size_bytes: 512 << 20,
            ..WalOptions::default()
        };
        let wal = Wal::create(FsStorage::open(dir.path()).unwrap(), options, META).unwrap();
        AppendLog {
            _dir: dir,
            wal,
            written_bytes: 0,
        }
    }
}

/// One batch of `APPEND_BATCH` entries of `APPEND_ENTRY_BYTES`, indexes 1..;
/// the benchmarks renumber it for each append.
fn append_batch() -> Vec<Entry> {
    let data = Bytes::from(vec![0x5A; APPEND_ENTRY_BYTES]);
    (0..APPEND_BATCH as u64)
        .map(|i| entry(i + 1, &data))
        .collect()
}

fn bench_append(c: &mut Criterion) {
    if !enabled("append") {
        return;
    }
    let mut batch = append_batch();
    let mut log = AppendLog::new();
    let mut group = c.benchmark_group("wal_append");
    group.throughput(Throughput::Bytes(
        (APPEND_BATCH * APPEND_ENTRY_BYTES) as u64,
    ));
    group.bench_function("append_256B_no_fsync", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                if log.written_bytes >= APPEND_LOG_BYTES_MAX {
                    log = AppendLog::new();
                }
                let first = log.wal.last_index() + 1;
                for (i, e) in batch.iter_mut().enumerate() {
                    e.index = first + i as u64;
                }
                let start = Instant::now();
                log.wal.append(&batch, None).unwrap();
                elapsed += start.elapsed();
                log.written_bytes += (APPEND_BATCH * (APPEND_ENTRY_BYTES + 32)) as u64;
            }
            elapsed
        })
    });
    group.finish();
}

/// A storage that drops every write: measures the WAL's own CPU cost
/// (framing, CRC, buffering) without the kernel's page-cache copy.
#[derive(Clone, Debug)]
struct NullStorage;

impl Storage for NullStorage {
    type File = ();
    fn list(&self) -> std::io::Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn create(&self, _: &str) -> std::io::Result<()> {
        Ok(())
    }
    fn open(&self, _: &str) -> std::io::Result<()> {
        Ok(())
    }
    fn len(&self, _: &()) -> std::io::Result<u64> {
        Ok(0)
    }
    fn write_at(&self, _: &(), _: u64, data: &[u8]) -> std::io::Result<()> {
        std::hint::black_box(data);
        Ok(())
    }
    fn read_all(&self, _: &str) -> std::io::Result<Bytes> {
        Ok(Bytes::new())
    }
    fn sync(&self, _: &()) -> std::io::Result<()> {
        Ok(())
    }
    fn sync_dir(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn rename(&self, _: &str, _: &str) -> std::io::Result<()> {
        Ok(())
    }
    fn truncate(&self, _: &(), _: u64) -> std::io::Result<()> {
        Ok(())
    }
    fn remove(&self, _: &str) -> std::io::Result<()> {
        Ok(())
    }
    fn preallocate(&self, _: &(), _: u64) -> std::io::Result<()> {
        Ok(())
    }
}

fn bench_append_cpu(c: &mut Criterion) {
    if !enabled("append") {
        return;
    }
    let mut batch = append_batch();
    let options = WalOptions {
        segment_size_bytes: 1 << 40,
        ..WalOptions::default()
    };
    let mut wal = Wal::create(NullStorage, options, META).unwrap();
    let mut group = c.benchmark_group("wal_append");
    group.throughput(Throughput::Bytes(
        (APPEND_BATCH * APPEND_ENTRY_BYTES) as u64,
    ));
    group.bench_function("append_256B_null_storage", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iters {
                let first = wal.last_index() + 1;
                for (i, e) in batch.iter_mut().enumerate() {
                    e.index = first + i as u64;
                }
                let start = Instant::now();
                wal.append(&batch, None).unwrap();
                elapsed += start.elapsed();
            }
            elapsed
        })
    });
    group.finish();
}

// ---------------------------------------------------------- group commit

struct Shared {
    state: Mutex<GroupState>,
    synced: Condvar,
}

struct GroupState {
    wal: Wal<FsStorage>,
    syncing: bool,
    fsyncs: u64,
}

/// Appends one entry and returns once it is durable; runs the fsync itself
/// (outside the lock) when no other appender is running one.
fn durable_append(shared: &Shared, data: &Bytes) {
    let mut g = shared.state.lock().unwrap();
    let index = g.wal.last_index() + 1;
    let ticket = g.wal.append(&[entry(index, data)], None).unwrap();
    while g.wal.durable_ticket() < ticket {
        if g.syncing {
            g = shared.synced.wait(g).unwrap();
            continue;
        }
        g.syncing = true;
        let job = g.wal.begin_sync().unwrap();
        drop(g);
        let outcome = job.map(SyncJob::run);
        g = shared.state.lock().unwrap();
        g.wal.finish_sync(outcome).unwrap();
        g.fsyncs += 1;
        g.syncing = false;
        // Wake the waiters after releasing the lock they will all take.
        drop(g);
        shared.synced.notify_all();
        g = shared.state.lock().unwrap();
    }
}

/// Runs `appenders` threads until `total` durable appends completed; returns
/// the elapsed time and the fsyncs it took.
fn run_appenders(
    shared: &Arc<Shared>,
    appenders: usize,
    total: u64,
    deadline: Option<Instant>,
) -> (Duration, u64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let fsyncs_before = shared.state.lock().unwrap().fsyncs;
    let start = Instant::now();
    let threads: Vec<_> = (0..appenders)
        .map(|_| {
            let shared = Arc::clone(shared);
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let data = Bytes::from(vec![0xA5; APPEND_ENTRY_BYTES]);
                while done.fetch_add(1, Ordering::Relaxed) < total
                    && deadline.is_none_or(|d| Instant::now() < d)
                {
                    durable_append(&shared, &data);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let elapsed = start.elapsed();
    let completed = done.load(Ordering::Relaxed).min(total);
    let completed = if deadline.is_some() {
        completed.saturating_sub(appenders as u64)
    } else {
        completed
    };
    (
        elapsed,
        shared.state.lock().unwrap().fsyncs - fsyncs_before,
        completed,
    )
}

// ----------------------------------------- group commit, appenders as tasks

/// Requests the committer takes into one append and one fsync at most.
const COMMIT_BATCH_MAX: usize = 4096;

/// The node driver's model: appenders are tasks that hand an entry to one
/// committer and wait for its answer; the committer drains every queued
/// request into one append and one fsync, then answers them all, and ends
/// the slice (`counters.stop`) with the first round that ends after
/// `slice_end`.
async fn committer(
    mut log: CommitLog,
    mut requests: tokio::sync::mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
    counters: Arc<SliceCounters>,
    slice_end: Instant,
) -> CommitLog {
    let data = Bytes::from(vec![0xA5; APPEND_ENTRY_BYTES]);
    let mut waiting = Vec::with_capacity(COMMIT_BATCH_MAX);
    let mut last_end = None;
    while let Some(first) = requests.recv().await {
        waiting.push(first);
        while waiting.len() < COMMIT_BATCH_MAX {
            match requests.try_recv() {
                Ok(request) => waiting.push(request),
                Err(_) => break,
            }
        }
        let round = Instant::now();
        let (appended, synced) = log.commit(waiting.len(), &data, round);
        counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        let answered = waiting.len() as u64;
        counters.entries.fetch_add(answered, Ordering::Relaxed);
        waiting.drain(..).for_each(|done| {
            let _ = done.send(());
        });
        let end = Instant::now();
        if end >= slice_end {
            counters.stop.store(true, Ordering::Relaxed);
        }
        if let Some(last) = last_end {
            let phases = [
                round - last,
                appended - round,
                synced - appended,
                end - synced,
            ];
            log.round_times.add(phases);
        }
        last_end = Some(end);
    }
    log
}

impl CommitLog {
    /// One round: appends `count` entries of `data` and syncs them, cutting
    /// and purging as a member does. `round` is when the round began;
    /// returns when the append ended and when the sync did.
    fn commit(&mut self, count: usize, data: &Bytes, round: Instant) -> (Instant, Instant) {
        let wal = &mut self.wal;
        let next = wal.last_index() + 1;
        let entries: Vec<Entry> = (0..count as u64).map(|i| entry(next + i, data)).collect();
        self.prepared.poll(wal);
        wal.append(&entries, None).unwrap();
        let appended = Instant::now();
        // Appending to memory takes microseconds; only a cut takes longer.
        let cut = appended - round > Duration::from_micros(100)
            && wal.segment_names().last() != Some(&self.active);
        wal.sync().unwrap();
        let synced = Instant::now();
        self.purges.poll(wal, cut);
        if cut {
            self.active = wal.segment_names().pop().unwrap();
            self.cut_rounds.push(round.elapsed());
        }
        (appended, synced)
    }
}

/// Where a committer's rounds spend their time, summed over rounds.
#[derive(Default)]
struct RoundTimes {
    /// Rounds counted.
    rounds: u64,
    /// Per phase: the appenders waking on their answers and asking again
    /// (from the end of one round to the start of the next; counted only
    /// between rounds of one slice), building and appending the entries,
    /// the write and fsync, answering.
    phases: [Duration; 4],
}

impl RoundTimes {
    /// Adds one round's phases.
    fn add(&mut self, phases: [Duration; 4]) {
        self.rounds += 1;
        for (sum, phase) in self.phases.iter_mut().zip(phases) {
            *sum += phase;
        }
    }

    /// Mean microseconds per round of each phase.
    fn means_us(&self) -> [f64; 4] {
        let rounds = self.rounds.max(1) as f64;
        self.phases.map(|d| d.as_secs_f64() * 1e6 / rounds)
    }
}

/// What the committer keeps across slices: the log, its next segment, its
/// segment count and how long each round that cut a segment took (append
/// and sync: every appender of the round waits that long).
struct CommitLog {
    wal: Wal<FsStorage>,
    prepared: NextSegment,
    purges: Purges,
    /// Name of the segment being written.
    active: String,
    cut_rounds: Vec<Duration>,
    round_times: RoundTimes,
}

/// Sealed segments a log keeps before a snapshot purges them.
const SEGMENTS_KEPT: usize = 2;

/// A member's snapshots, modelled: once more than [`SEGMENTS_KEPT`]
/// segments are sealed, a snapshot marker at the last index is logged (it
/// becomes durable with the next round), then a purge job below it runs
/// on another thread, as the node driver's purge pipeline does.
#[derive(Default)]
struct Purges {
    /// A marker logged, not yet known durable.
    marked: Option<u64>,
    pending: Option<std::sync::mpsc::Receiver<keel_wal::PurgeOutcome>>,
}

impl Purges {
    /// Called after each sync of `wal`; `cut` says whether the round cut
    /// a segment (only then can more than [`SEGMENTS_KEPT`] be sealed).
    fn poll(&mut self, wal: &mut Wal<FsStorage>, cut: bool) {
        if let Some(pending) = &self.pending {
            match pending.try_recv() {
                Ok(outcome) => wal.finish_purge(outcome).map(|_| ()).unwrap(),
                Err(_) => return,
            }
            self.pending = None;
        }
        if let Some(index) = self.marked.take() {
            if let Some(job) = wal.begin_purge(index).unwrap() {
                let (done, pending) = std::sync::mpsc::channel();
                std::thread::spawn(move || done.send(job.run()));
                self.pending = Some(pending);
            }
        } else if cut && wal.segment_names().len() > SEGMENTS_KEPT + 1 {
            let index = wal.last_index();
            wal.append_snapshot_marker(&snapshot_marker(index)).unwrap();
            self.marked = Some(index);
        }
    }
}

/// A snapshot marker at `index`, term 1.
fn snapshot_marker(index: u64) -> keel_wal::SnapshotMarker {
    keel_wal::SnapshotMarker {
        index,
        term: 1,
        ..keel_wal::SnapshotMarker::default()
    }
}

/// The next segment prepared on another thread, as the node driver does
/// (`keel_wal::PrepareJob`), so a cut renames a ready file into place.
#[derive(Default)]
struct NextSegment {
    pending: Option<std::sync::mpsc::Receiver<keel_wal::PrepareOutcome<FsStorage>>>,
}

impl NextSegment {
    /// Hands a finished job to `wal`; starts one when the log wants it.
    fn poll(&mut self, wal: &mut Wal<FsStorage>) {
        if let Some(pending) = &self.pending {
            match pending.try_recv() {
                Ok(outcome) => wal.finish_prepare(outcome).unwrap(),
                Err(_) => return,
            }
            self.pending = None;
        }
        if let Some(job) = wal.begin_prepare() {
            let (done, pending) = std::sync::mpsc::channel();
            std::thread::spawn(move || done.send(job.run()));
            self.pending = Some(pending);
        }
    }
}

/// A log kept across the summary's slices, so segment cuts (and the zeros
/// written ahead) fall inside the measured time in proportion.
struct TaskLog {
    _dir: tempfile::TempDir,
    log: Option<CommitLog>,
}

impl TaskLog {
    /// A log in a long-running member's steady state: written through
    /// [`SEGMENTS_KEPT`] + 3 segments in big unsynced batches and purged,
    /// so the purges kept files for reuse (up to
    /// `WalOptions::recycled_segments_max`), then written on into the next
    /// segment, made from one of those files as the node driver's prepare
    /// job makes it. Every segment the measurement writes is then a reused
    /// file, as it is once a member has taken its first snapshots: none of
    /// them needs zeros written ahead (see `keel_wal::zero_fill`).
    fn new() -> TaskLog {
        let dir = temp_dir();
        let storage = FsStorage::open(dir.path()).unwrap();
        let mut wal = Wal::create(storage, WalOptions::default(), META).unwrap();
        fill_until_segments(&mut wal, SEGMENTS_KEPT + 3);
        let index = wal.last_index();
        wal.append_snapshot_marker(&snapshot_marker(index)).unwrap();
        wal.sync().unwrap();
        wal.purge(index).unwrap();
        let job = wal.begin_prepare().unwrap();
        wal.finish_prepare(job.run()).unwrap();
        let segments = wal.segment_names().len() + 1;
        fill_until_segments(&mut wal, segments);
        wal.sync().unwrap();
        let active = wal.segment_names().pop().unwrap();
        TaskLog {
            _dir: dir,
            log: Some(CommitLog {
                wal,
                prepared: NextSegment::default(),
                purges: Purges::default(),
                active,
                cut_rounds: Vec::new(),
                round_times: RoundTimes::default(),
            }),
        }
    }
}

/// Appends big unsynced batches until `wal` has `segments` segments.
fn fill_until_segments(wal: &mut Wal<FsStorage>, segments: usize) {
    let data = Bytes::from(vec![0xA5; APPEND_ENTRY_BYTES]);
    while wal.segment_names().len() < segments {
        let next = wal.last_index() + 1;
        let batch: Vec<Entry> = (next..next + 4096).map(|i| entry(i, &data)).collect();
        wal.append(&batch, None).unwrap();
    }
}

/// Runs `appenders` tasks on one thread against `log` for `slice`;
/// returns the elapsed time, the fsyncs and the durable appends.
fn run_task_appenders(
    log: &mut TaskLog,
    appenders: usize,
    slice: Duration,
) -> (Duration, u64, u64) {
    let commit_log = log.log.take().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let counters = Arc::new(SliceCounters::default());
    let start = Instant::now();
    runtime.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(COMMIT_BATCH_MAX);
        let slice_end = start + slice;
        let committer = tokio::spawn(committer(commit_log, rx, Arc::clone(&counters), slice_end));
        let tasks: Vec<_> = (0..appenders)
            .map(|_| {
                let (tx, counters) = (tx.clone(), Arc::clone(&counters));
                tokio::spawn(async move {
                    while !counters.stop.load(Ordering::Relaxed) {
                        let (answer, durable) = tokio::sync::oneshot::channel();
                        tx.send(answer).await.unwrap();
                        durable.await.unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for task in tasks {
            task.await.unwrap();
        }
        log.log = Some(committer.await.unwrap());
    });
    let elapsed = start.elapsed();
    (
        elapsed,
        counters.fsyncs.load(Ordering::Relaxed),
        counters.entries.load(Ordering::Relaxed),
    )
}

/// What one slice of task appenders shares with its committer.
#[derive(Default)]
struct SliceCounters {
    /// Set by the committer once the slice is over: the appenders stop
    /// asking (one load each, where reading the clock would cost more).
    stop: AtomicBool,
    fsyncs: AtomicU64,
    /// Appends answered durable.
    entries: AtomicU64,
}

/// A preallocated file for the raw pwrite + fdatasync rate.
struct RawFile {
    _dir: tempfile::TempDir,
    file: std::fs::File,
    offset: u64,
}

const RAW_FILE_BYTES: u64 = 256 << 20;

impl RawFile {
    fn new() -> RawFile {
        let dir = temp_dir();
        let storage = FsStorage::open(dir.path()).unwrap();
        let file = storage.create("raw").unwrap();
        storage.preallocate(&file, RAW_FILE_BYTES).unwrap();
        storage.sync(&file).unwrap();
        storage.sync_dir().unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("raw"))
            .unwrap();
        RawFile {
            _dir: dir,
            file,
            offset: 0,
        }
    }

    /// One durable 288-byte write (the size of a framed 256-byte entry).
    fn durable_write(&mut self) {
        let block = [0x33u8; APPEND_ENTRY_BYTES + 32];
        self.file.write_all_at(&block, self.offset).unwrap();
        self.file.sync_data().unwrap();
        self.offset = (self.offset + block.len() as u64) % (RAW_FILE_BYTES - block.len() as u64);
    }
}

/// Bytes a framed 256-byte entry takes in the log, about.
const FRAMED_ENTRY_BYTES: u64 = APPEND_ENTRY_BYTES as u64 + 32;

/// The disk's own share of a group commit round: a direct write of the
/// blocks `entries` framed entries cover, the first one rewritten as the
/// log rewrites the block it ended in, and an `fdatasync`, on a file
/// written throughout beforehand (so no write changes an extent). No
/// encoding, no tasks: what a round costs a log whose CPU work is free.
struct DeviceRounds {
    _dir: tempfile::TempDir,
    file: std::fs::File,
    staging: Vec<u8>,
    offset: u64,
}

const DEVICE_FILE_BYTES: u64 = 64 << 20;
const DEVICE_BLOCK_BYTES: u64 = 4096;

impl DeviceRounds {
    /// `None` where the file system offers no direct I/O.
    fn new() -> Option<DeviceRounds> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = temp_dir();
        let path = dir.path().join("device");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..DEVICE_FILE_BYTES / chunk.len() as u64 {
            file.write_all(&chunk).unwrap();
        }
        file.sync_all().unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
            .open(&path)
            .ok()?;
        Some(DeviceRounds {
            _dir: dir,
            file,
            staging: vec![0xA5; 1 << 20],
            offset: 0,
        })
    }

    /// One round of `entries` framed entries; returns its duration.
    fn round(&mut self, entries: u64) -> Duration {
        let bytes = entries * FRAMED_ENTRY_BYTES;
        if self.offset + bytes + DEVICE_BLOCK_BYTES > DEVICE_FILE_BYTES {
            self.offset = 0;
        }
        let start = self.offset - self.offset % DEVICE_BLOCK_BYTES;
        let len = (self.offset + bytes).next_multiple_of(DEVICE_BLOCK_BYTES) - start;
        let skew = self
            .staging
            .as_ptr()
            .align_offset(DEVICE_BLOCK_BYTES as usize);
        let began = Instant::now();
        let block = &self.staging[skew..skew + len as usize];
        self.file.write_all_at(block, start).unwrap();
        self.file.sync_data().unwrap();
        self.offset += bytes;
        began.elapsed()
    }
}

fn new_group() -> (tempfile::TempDir, Arc<Shared>) {
    let dir = temp_dir();
    let wal = Wal::create(
        FsStorage::open(dir.path()).unwrap(),
        WalOptions::default(),
        META,
    )
    .unwrap();
    let state = Mutex::new(GroupState {
        wal,
        syncing: false,
        fsyncs: 0,
    });
    (
        dir,
        Arc::new(Shared {
            state,
            synced: Condvar::new(),
        }),
    )
}

const APPENDER_COUNTS: [usize; 3] = [1, 16, 64];
/// Key offset of the task-appender totals in the interleaved summary.
const TASKS: usize = 1000;

fn bench_group_commit(c: &mut Criterion) {
    if !enabled("group") {
        return;
    }
    let mut group = c.benchmark_group("wal_group_commit");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    let mut raw = RawFile::new();
    group.bench_function("raw_fdatasync", |b| b.iter(|| raw.durable_write()));
    for appenders in APPENDER_COUNTS {
        let (_dir, shared) = new_group();
        group.bench_function(format!("appenders/{appenders}"), |b| {
            b.iter_custom(|iters| run_appenders(&shared, appenders, iters, None).0)
        });
    }
    group.finish();
    interleaved_summary(&mut raw);
}

/// Device rounds of one framed entry and of 64, in alternating runs of
/// [`DEVICE_RUN`] (the logs write runs of rounds of one size), summed.
#[derive(Default)]
struct DeviceFloor {
    rounds: u64,
    one: Duration,
    sixty_four: Duration,
}

/// Rounds of one size in a row, in [`DeviceFloor::measure`].
const DEVICE_RUN: usize = 32;

impl DeviceFloor {
    /// Alternates runs of rounds of 1 and 64 entries on `device` for
    /// `slice`.
    fn measure(&mut self, device: &mut DeviceRounds, slice: Duration) {
        let start = Instant::now();
        while start.elapsed() < slice {
            for _ in 0..DEVICE_RUN {
                self.one += device.round(1);
            }
            for _ in 0..DEVICE_RUN {
                self.sixty_four += device.round(64);
            }
            self.rounds += DEVICE_RUN as u64;
        }
    }

    /// The mean round of each size, and the ratio 64 appenders would reach
    /// over one if nothing but the disk took time.
    fn print(&self) {
        if self.rounds == 0 {
            return;
        }
        let mean_us = |d: Duration| d.as_secs_f64() * 1e6 / self.rounds as f64;
        let (one, sixty_four) = (mean_us(self.one), mean_us(self.sixty_four));
        println!(
            "  device floor, direct write + fdatasync: {one:.1} us for 1 framed entry, \
             {sixty_four:.1} us for 64; with free CPU, 64 appenders would reach {:.1}x one",
            64.0 * one / sixty_four
        );
    }
}

/// Disk speed on a shared machine drifts by 10x within a minute, so the
/// ratios are measured in interleaved 0.5 s slices: raw, 1, 16, 64
/// appenders, repeated; totals per configuration give the rates.
fn interleaved_summary(raw: &mut RawFile) {
    const ROUNDS: usize = 8;
    const SLICE: Duration = Duration::from_millis(500);
    let groups: Vec<_> = APPENDER_COUNTS.iter().map(|n| (*n, new_group())).collect();
    let mut task_logs: Vec<TaskLog> = APPENDER_COUNTS.iter().map(|_| TaskLog::new()).collect();
    let mut totals: BTreeMap<usize, (u64, u64, Duration)> = BTreeMap::new();
    let mut device = DeviceRounds::new();
    let mut device_floor = DeviceFloor::default();
    for _ in 0..ROUNDS {
        if let Some(device) = &mut device {
            device_floor.measure(device, SLICE);
        }
        let start = Instant::now();
        let mut writes = 0;
        while start.elapsed() < SLICE {
            raw.durable_write();
            writes += 1;
        }
        let t = totals.entry(0).or_default();
        *t = (t.0 + writes, t.1 + writes, t.2 + start.elapsed());
        let mut line = format!(
            "  slice rates: raw {:.0}/s",
            writes as f64 / SLICE.as_secs_f64()
        );
        for (appenders, (_, shared)) in &groups {
            let (elapsed, fsyncs, entries) =
                run_appenders(shared, *appenders, u64::MAX, Some(Instant::now() + SLICE));
            let t = totals.entry(*appenders).or_default();
            *t = (t.0 + entries, t.1 + fsyncs, t.2 + elapsed);
            line += &format!(
                ", {appenders} appenders {:.0}/s",
                entries as f64 / elapsed.as_secs_f64()
            );
        }
        for (appenders, log) in APPENDER_COUNTS.into_iter().zip(&mut task_logs) {
            let (elapsed, fsyncs, entries) = run_task_appenders(log, appenders, SLICE);
            let t = totals.entry(TASKS + appenders).or_default();
            *t = (t.0 + entries, t.1 + fsyncs, t.2 + elapsed);
            line += &format!(
                ", {appenders} tasks {:.0}/s",
                entries as f64 / elapsed.as_secs_f64()
            );
        }
        println!("{line}");
    }
    let rate = |n: usize| {
        let (ops, fsyncs, elapsed) = totals.get(&n).copied().unwrap_or_default();
        let secs = elapsed.as_secs_f64().max(1e-9);
        (ops as f64 / secs, fsyncs as f64 / secs)
    };
    let (raw_rate, _) = rate(0);
    println!(
        "\ngroup commit, interleaved {ROUNDS} x {} ms slices:",
        SLICE.as_millis()
    );
    println!("  raw pwrite+fdatasync: {raw_rate:.0} /s");
    let cuts: Vec<Duration> = task_logs
        .iter()
        .filter_map(|log| log.log.as_ref())
        .flat_map(|log| log.cut_rounds.iter().copied())
        .collect();
    if !cuts.is_empty() {
        let mean_ms = cuts.iter().sum::<Duration>().as_secs_f64() * 1e3 / cuts.len() as f64;
        println!(
            "  rounds that cut a segment (tasks): {} taking {mean_ms:.2} ms on average",
            cuts.len()
        );
    }
    device_floor.print();
    println!(
        "  task rounds, mean us: appenders waking and asking again, append, write+fsync, answers"
    );
    for (appenders, log) in APPENDER_COUNTS.into_iter().zip(&task_logs) {
        if let Some(log) = &log.log {
            let [asking, append, sync, answers] = log.round_times.means_us();
            println!(
                "    {appenders:>2} tasks: {asking:.1} + {append:.1} + {sync:.1} + {answers:.1} = {:.1}",
                asking + append + sync + answers
            );
        }
    }
    for (kind, base) in [("threads", 0), ("tasks", TASKS)] {
        let (one, _) = rate(base + 1);
        for appenders in APPENDER_COUNTS {
            let (entries, fsyncs) = rate(base + appenders);
            println!(
                "  {appenders:>2} appender {kind}: {entries:>8.0} entries/s {fsyncs:>6.0} fsyncs/s \
                 ({:.1} entries/fsync); entries/s = {:.1}% of raw fsync rate, {:.1}x one appender",
                entries / fsyncs.max(1e-9),
                100.0 * entries / raw_rate.max(1e-9),
                entries / one.max(1e-9),
            );
        }
    }
}

// -------------------------------------------------------------- recovery

const RECOVERY_LOG_BYTES: u64 = 1 << 30;
const RECOVERY_ENTRY_BYTES: usize = 1024;

/// Writes a log of about 1 GiB; returns its directory and segment bytes.
fn build_recovery_log() -> (tempfile::TempDir, FsStorage, u64) {
    let dir = temp_dir();
    let storage = FsStorage::open(dir.path()).unwrap();
    let mut wal = Wal::create(storage.clone(), WalOptions::default(), META).unwrap();
    let data = Bytes::from(vec![0x77; RECOVERY_ENTRY_BYTES]);
    let per_batch = 1024u64;
    let batches = RECOVERY_LOG_BYTES / (per_batch * (RECOVERY_ENTRY_BYTES as u64 + 32));
    for b in 0..batches {
        let batch: Vec<Entry> = (0..per_batch)
            .map(|i| entry(b * per_batch + i + 1, &data))
            .collect();
        wal.append(&batch, None).unwrap();
    }
    wal.sync().unwrap();
    let bytes = storage
        .list()
        .unwrap()
        .iter()
        .map(|n| std::fs::metadata(dir.path().join(n)).unwrap().len())
        .sum();
    (dir, storage, bytes)
}

fn evict_from_page_cache(dir: &std::path::Path) {
    for item in std::fs::read_dir(dir).unwrap() {
        let file = std::fs::File::open(item.unwrap().path()).unwrap();
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    }
}

fn bench_recovery(c: &mut Criterion) {
    if !enabled("recovery") {
        return;
    }
    let (dir, storage, bytes) = build_recovery_log();
    let mut group = c.benchmark_group("wal_recovery");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(bytes));
    for cold in [false, true] {
        let name = if cold {
            "replay_1GiB_cold"
        } else {
            "replay_1GiB_warm"
        };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    if cold {
                        evict_from_page_cache(dir.path());
                    }
                    let start = Instant::now();
                    let recovered = recover(&storage).unwrap();
                    elapsed += start.elapsed();
                    assert!(
                        recovered.entries.len() as u64 * RECOVERY_ENTRY_BYTES as u64
                            > RECOVERY_LOG_BYTES / 2
                    );
                    drop(recovered);
                }
                elapsed
            })
        });
    }
    group.finish();
    drop(dir);
}

criterion_group!(
    benches,
    bench_append,
    bench_append_cpu,
    bench_group_commit,
    bench_recovery
);
criterion_main!(benches);
