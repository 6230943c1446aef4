//! WAL benchmarks on the real disk (a temporary directory under
//! `$KEEL_BENCH_DIR`, default the system temp dir; deleted afterwards):
//!
//! - `wal_append/append_256B_no_fsync`: payload bytes/s appending 256-byte
//!   entries in batches of 1024, no fsync (segments of 512 MiB, the log is
//!   recreated every 256 MiB outside the timed region so no cut and no
//!   writeback falls into the measurement).
//! - `wal_group_commit/raw_fdatasync`: a pwrite of one framed 256-byte
//!   entry's bytes through the page cache + fdatasync, sequentially into a
//!   file written throughout beforehand and wrapping within it (the disk's
//!   own durable-write rate), then `appenders/{1,16,64}`: that many threads
//!   each appending one 256-byte entry and waiting until it is durable; one
//!   of the waiters runs the fsync outside the lock while the others keep
//!   appending (group commit). An interleaved summary then measures the same
//!   with appenders as tasks on one thread handing entries to one committer
//!   that drains every queued request into one append and one fsync (the node
//!   driver's model, the next segment prepared on another thread as the
//!   driver does, and a snapshot marker logged and the segments below it
//!   purged on another thread whenever more than [`SEGMENTS_KEPT`] are
//!   sealed, as a member's snapshots do), and prints entries/s, fsyncs/s and
//!   the ratios to the raw rate and to one appender for both models, how long
//!   the committer's rounds that cut a segment took, where the tasks' rounds
//!   spend their time, and the disk's own floor: the bytes of one framed
//!   entry written as the log writes them (direct I/O where the file system
//!   offers it) + fdatasync against those of 64, in the same slices, which
//!   bounds what 64 appenders can reach over one. Each configuration keeps
//!   its log across slices, so segment cuts, purges and the zeros written
//!   ahead of the log are measured in proportion; the tasks' logs start in a
//!   member's steady state, writing into segment files their purges kept for
//!   reuse (see `TaskLog::new`; the summary prints how many segment files
//!   they created instead).
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
use keel_wal::payload::ENTRY_FIXED_BYTES;
use keel_wal::record::{HEADER_BYTES, padding_bytes};
use keel_wal::storage::fs::FsFile;
use keel_wal::{FsStorage, Metadata, Storage, SyncJob, Wal, WalOptions, recover};
use std::collections::BTreeMap;
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

/// Bytes an entry record with `data_bytes` of data takes in a segment:
/// header, payload and padding, as `keel_wal` frames it.
fn framed_entry_bytes(data_bytes: usize) -> usize {
    let payload_bytes = ENTRY_FIXED_BYTES + data_bytes;
    HEADER_BYTES + payload_bytes + padding_bytes(payload_bytes)
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
                log.written_bytes += (APPEND_BATCH * framed_entry_bytes(APPEND_ENTRY_BYTES)) as u64;
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

/// How the committer answers an appender: once its entry is durable.
type Answer = tokio::sync::oneshot::Sender<()>;

/// What the committer did in one slice.
#[derive(Clone, Copy, Debug, Default)]
struct SliceCounts {
    /// Rounds, each one append and one fsync.
    fsyncs: u64,
    /// Appends answered durable.
    entries: u64,
}

/// The node driver's model: appenders are tasks that hand an entry to one
/// committer and wait for its answer; the committer drains every queued
/// request into one append and one fsync, does the log's bookkeeping (see
/// [`CommitLog::bookkeeping`]), then answers them all. It sets `stop` with
/// the first round that ends after `slice_end`, and returns the log and
/// what it did once every appender has stopped asking.
async fn committer(
    mut log: CommitLog,
    mut requests: tokio::sync::mpsc::Receiver<Answer>,
    stop: Arc<AtomicBool>,
    slice_end: Instant,
) -> (CommitLog, SliceCounts) {
    let data = Bytes::from(vec![0xA5; APPEND_ENTRY_BYTES]);
    let mut waiting = Vec::with_capacity(COMMIT_BATCH_MAX);
    let mut counts = SliceCounts::default();
    let mut last_end = None;
    while let Some(first) = requests.recv().await {
        waiting.push(first);
        take_queued(&mut requests, &mut waiting);
        let round = Instant::now();
        let (appended, synced) = log.commit(waiting.len(), &data);
        log.bookkeeping(synced - round);
        counts.fsyncs += 1;
        counts.entries += waiting.len() as u64;
        waiting.drain(..).for_each(|done| {
            let _ = done.send(());
        });
        let end = Instant::now();
        if end >= slice_end {
            stop.store(true, Ordering::Relaxed);
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
    (log, counts)
}

/// Moves the requests already queued on `requests` into `waiting`, until
/// it holds [`COMMIT_BATCH_MAX`].
fn take_queued(requests: &mut tokio::sync::mpsc::Receiver<Answer>, waiting: &mut Vec<Answer>) {
    while waiting.len() < COMMIT_BATCH_MAX {
        match requests.try_recv() {
            Ok(request) => waiting.push(request),
            Err(_) => break,
        }
    }
}

impl CommitLog {
    /// A round's append and sync: builds `count` entries of `data`,
    /// appends them (cutting a segment when the active one is full) and
    /// syncs them; returns when the append ended and when the sync did.
    fn commit(&mut self, count: usize, data: &Bytes) -> (Instant, Instant) {
        let next = self.wal.last_index() + 1;
        let entries: Vec<Entry> = (0..count as u64).map(|i| entry(next + i, data)).collect();
        self.wal.append(&entries, None).unwrap();
        let appended = Instant::now();
        self.wal.sync().unwrap();
        (appended, Instant::now())
    }

    /// What the node driver does after a sync, for a round whose append
    /// and sync took `append_sync`: notes whether the round cut a segment
    /// (the last segment is no longer the one being written), hands the
    /// finished next-segment and purge jobs to the log and starts the next
    /// ones (see [`NextSegment`] and [`Purges`]).
    fn bookkeeping(&mut self, append_sync: Duration) {
        let mut names = self.wal.segment_names();
        let cut = names.last() != Some(&self.active);
        if cut {
            self.active = names.pop().unwrap();
            self.cut_rounds.push(append_sync);
        }
        self.prepared.poll(&mut self.wal);
        self.purges.poll(&mut self.wal, cut);
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
    /// the write and fsync, then the bookkeeping (cut check, next segment,
    /// snapshot marker and purge; see [`CommitLog::bookkeeping`]) and the
    /// answers.
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

/// What the committer keeps across slices: the log, its next segment and
/// purges, the segment being written, how long the append and sync of
/// each round that cut a segment took (every appender of the round waits
/// that long) and where its rounds spend their time.
struct CommitLog {
    wal: Wal<CountedFs>,
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
    fn poll(&mut self, wal: &mut Wal<CountedFs>, cut: bool) {
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
    pending: Option<std::sync::mpsc::Receiver<keel_wal::PrepareOutcome<CountedFs>>>,
}

impl NextSegment {
    /// Hands a finished job to `wal`; starts one when the log wants it.
    fn poll(&mut self, wal: &mut Wal<CountedFs>) {
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

/// An [`FsStorage`] that counts the files it creates. A log creates a
/// file only for a new segment (a reused one is renamed and opened), so
/// the count tells how many segments the task logs did not make from a
/// purged segment's file.
#[derive(Clone, Debug)]
struct CountedFs {
    fs: FsStorage,
    /// Files created since the count was last reset.
    created: Arc<AtomicU64>,
}

impl Storage for CountedFs {
    type File = FsFile;
    fn list(&self) -> std::io::Result<Vec<String>> {
        self.fs.list()
    }
    fn create(&self, name: &str) -> std::io::Result<FsFile> {
        self.created.fetch_add(1, Ordering::Relaxed);
        self.fs.create(name)
    }
    fn open(&self, name: &str) -> std::io::Result<FsFile> {
        self.fs.open(name)
    }
    fn len(&self, file: &FsFile) -> std::io::Result<u64> {
        self.fs.len(file)
    }
    fn write_at(&self, file: &FsFile, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.fs.write_at(file, offset, data)
    }
    fn write_log_at(&self, file: &FsFile, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.fs.write_log_at(file, offset, data)
    }
    fn read_all(&self, name: &str) -> std::io::Result<Bytes> {
        self.fs.read_all(name)
    }
    fn map(&self, name: &str) -> std::io::Result<Bytes> {
        self.fs.map(name)
    }
    fn sync(&self, file: &FsFile) -> std::io::Result<()> {
        self.fs.sync(file)
    }
    fn sync_dir(&self) -> std::io::Result<()> {
        self.fs.sync_dir()
    }
    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        self.fs.rename(from, to)
    }
    fn truncate(&self, file: &FsFile, len_bytes: u64) -> std::io::Result<()> {
        self.fs.truncate(file, len_bytes)
    }
    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.fs.remove(name)
    }
    fn preallocate(&self, file: &FsFile, len_bytes: u64) -> std::io::Result<()> {
        self.fs.preallocate(file, len_bytes)
    }
}

/// Purged segment files a task log keeps for reuse. A purge frees
/// [`SEGMENTS_KEPT`] + 1 files at once, after the cut that triggered it
/// started a prepare job that took the pool's last file; with room for all
/// of them and one to spare, the pool never runs dry and every cut gets a
/// reused file. (The default, 2, lets about one cut in three create a new
/// file, with zeros written ahead inside the rounds' syncs.)
const TASK_RECYCLED_SEGMENTS_MAX: usize = SEGMENTS_KEPT + 2;

/// The task logs' options: the defaults, keeping
/// [`TASK_RECYCLED_SEGMENTS_MAX`] purged files for reuse.
fn task_log_options() -> WalOptions {
    WalOptions {
        recycled_segments_max: TASK_RECYCLED_SEGMENTS_MAX,
        ..WalOptions::default()
    }
}

/// A log kept across the summary's slices, so segment cuts (and the zeros
/// written ahead) fall inside the measured time in proportion.
struct TaskLog {
    _dir: tempfile::TempDir,
    log: Option<CommitLog>,
    /// Files the log created since the measurement began.
    created: Arc<AtomicU64>,
}

impl TaskLog {
    /// A log in a long-running member's steady state, with
    /// [`task_log_options`]: written through [`SEGMENTS_KEPT`] + 3
    /// segments in big unsynced batches and purged, so the purge kept
    /// files for reuse, then written on into the next segment, made from
    /// one of those files as the node driver's prepare job makes it. Every
    /// segment the measurement writes is then a reused file, as it is once
    /// a member has taken its first snapshots: none of them needs zeros
    /// written ahead (see `keel_wal::zero_fill`). `TaskLog::created`
    /// counts the files made otherwise (the summary prints it).
    fn new() -> TaskLog {
        let dir = temp_dir();
        let created = Arc::new(AtomicU64::new(0));
        let storage = CountedFs {
            fs: FsStorage::open(dir.path()).unwrap(),
            created: Arc::clone(&created),
        };
        let mut wal = Wal::create(storage, task_log_options(), META).unwrap();
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
        created.store(0, Ordering::Relaxed);
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
            created,
        }
    }
}

/// Appends big unsynced batches until `wal` has `segments` segments.
fn fill_until_segments<S: Storage>(wal: &mut Wal<S>, segments: usize) {
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
    // Set by the committer once the slice is over: the appenders stop
    // asking (one load each, where reading the clock would cost more).
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let counts = runtime.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::channel(COMMIT_BATCH_MAX);
        let slice_end = start + slice;
        let committer = tokio::spawn(committer(commit_log, rx, Arc::clone(&stop), slice_end));
        let tasks: Vec<_> = (0..appenders)
            .map(|_| {
                let (tx, stop) = (tx.clone(), Arc::clone(&stop));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
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
        let (commit_log, counts) = committer.await.unwrap();
        log.log = Some(commit_log);
        counts
    });
    (start.elapsed(), counts.fsyncs, counts.entries)
}

/// Bytes of the files the raw and device rounds write into, wrapping.
const WRITTEN_FILE_BYTES: u64 = 64 << 20;

/// A file in a temporary directory written throughout with zeros and
/// made durable beforehand, so no later write into it changes an extent
/// (no unwritten extent to convert, no journal commit in the fsync), and
/// a cursor for sequential writes that wraps to its start.
struct WrittenFile {
    _dir: tempfile::TempDir,
    storage: FsStorage,
    file: FsFile,
    len_bytes: u64,
    /// Where the next write goes.
    offset: u64,
}

impl WrittenFile {
    /// Creates one of `len_bytes`, written in 1 MiB pieces, then fsyncs it
    /// and the directory.
    fn new(len_bytes: u64) -> WrittenFile {
        const PIECE_BYTES: u64 = 1 << 20;
        let dir = temp_dir();
        let storage = FsStorage::open(dir.path()).unwrap();
        let file = storage.create("written").unwrap();
        let zeros = vec![0u8; PIECE_BYTES as usize];
        for offset in (0..len_bytes).step_by(PIECE_BYTES as usize) {
            let piece_bytes = (len_bytes - offset).min(PIECE_BYTES) as usize;
            storage
                .write_at(&file, offset, &zeros[..piece_bytes])
                .unwrap();
        }
        storage.sync(&file).unwrap();
        storage.sync_dir().unwrap();
        WrittenFile {
            _dir: dir,
            storage,
            file,
            len_bytes,
            offset: 0,
        }
    }

    /// Where a write of `len_bytes` goes: at the cursor, or at the file's
    /// start if it would pass the end; moves the cursor past it.
    fn next_at(&mut self, len_bytes: u64) -> u64 {
        if self.offset + len_bytes > self.len_bytes {
            self.offset = 0;
        }
        let at = self.offset;
        self.offset += len_bytes;
        at
    }
}

/// The raw durable-write rate: one framed entry's bytes written through
/// the page cache (`pwrite`) and `fdatasync`ed, sequentially into a
/// [`WrittenFile`].
struct RawFile {
    written: WrittenFile,
    /// One framed 256-byte entry's bytes.
    block: Vec<u8>,
}

impl RawFile {
    fn new() -> RawFile {
        RawFile {
            written: WrittenFile::new(WRITTEN_FILE_BYTES),
            block: vec![0x33; framed_entry_bytes(APPEND_ENTRY_BYTES)],
        }
    }

    /// One durable write of the bytes of one framed 256-byte entry.
    fn durable_write(&mut self) {
        let at = self.written.next_at(self.block.len() as u64);
        let WrittenFile { storage, file, .. } = &self.written;
        storage.write_at(file, at, &self.block).unwrap();
        storage.sync(file).unwrap();
    }
}

/// The disk's own share of a group commit round: the bytes of `entries`
/// framed entries written as the log writes them (`write_log_at`: direct
/// I/O where the file system offers it, the first block rewritten as the
/// log rewrites the block it ended in) and an `fdatasync`, sequentially
/// into a [`WrittenFile`]. No encoding, no tasks: what a round costs a log
/// whose CPU work is free.
struct DeviceRounds {
    written: WrittenFile,
    /// The bytes of [`APPENDERS_MAX`] framed entries.
    bytes: Vec<u8>,
}

impl DeviceRounds {
    fn new() -> DeviceRounds {
        DeviceRounds {
            written: WrittenFile::new(WRITTEN_FILE_BYTES),
            bytes: vec![0xA5; APPENDERS_MAX * framed_entry_bytes(APPEND_ENTRY_BYTES)],
        }
    }

    /// One round of `entries` (at most [`APPENDERS_MAX`]) framed entries;
    /// returns its duration.
    fn round(&mut self, entries: usize) -> Duration {
        let round_bytes = &self.bytes[..entries * framed_entry_bytes(APPEND_ENTRY_BYTES)];
        let at = self.written.next_at(round_bytes.len() as u64);
        let WrittenFile { storage, file, .. } = &self.written;
        let began = Instant::now();
        storage.write_log_at(file, at, round_bytes).unwrap();
        storage.sync(file).unwrap();
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

/// The largest of [`APPENDER_COUNTS`].
const APPENDERS_MAX: usize = {
    let mut max = 0;
    let mut i = 0;
    while i < APPENDER_COUNTS.len() {
        if APPENDER_COUNTS[i] > max {
            max = APPENDER_COUNTS[i];
        }
        i += 1;
    }
    max
};

/// Entries per round of the two sizes [`DeviceFloor`] compares: one
/// appender's round and the largest appender count's.
const FLOOR_ROUND_ENTRIES: [usize; 2] = [1, APPENDERS_MAX];

/// Device rounds of each size of [`FLOOR_ROUND_ENTRIES`], in alternating
/// runs of [`DEVICE_RUN`] (the logs write runs of rounds of one size),
/// summed.
#[derive(Default)]
struct DeviceFloor {
    /// Rounds of each size.
    rounds: u64,
    /// Time taken by the rounds of each size.
    sums: [Duration; 2],
}

/// Rounds of one size in a row, in [`DeviceFloor::measure`].
const DEVICE_RUN: usize = 32;

impl DeviceFloor {
    /// Alternates runs of rounds of each size on `device` for `slice`.
    fn measure(&mut self, device: &mut DeviceRounds, slice: Duration) {
        let start = Instant::now();
        while start.elapsed() < slice {
            for (sum, entries) in self.sums.iter_mut().zip(FLOOR_ROUND_ENTRIES) {
                for _ in 0..DEVICE_RUN {
                    *sum += device.round(entries);
                }
            }
            self.rounds += DEVICE_RUN as u64;
        }
    }

    /// The mean round of each size, and the ratio the largest appender
    /// count would reach over one appender if nothing but the disk took
    /// time.
    fn print(&self) {
        if self.rounds == 0 {
            return;
        }
        let [small_us, large_us] = self
            .sums
            .map(|d| d.as_secs_f64() * 1e6 / self.rounds as f64);
        let [small, large] = FLOOR_ROUND_ENTRIES;
        println!(
            "  device floor, log write + fdatasync: {small_us:.1} us for {small} framed entry, \
             {large_us:.1} us for {large}; with free CPU, {large} appenders would reach {:.1}x one",
            (large as f64 / large_us) / (small as f64 / small_us)
        );
    }
}

/// Disk speed on a shared machine drifts by 10x within a minute, so the
/// ratios are measured in interleaved 0.5 s slices: the device floor
/// (alternating rounds of 1 and [`APPENDERS_MAX`] framed entries), raw,
/// then 1, 16 and 64 appender threads, then 1, 16 and 64 appender tasks,
/// repeated; totals per configuration give the rates.
fn interleaved_summary(raw: &mut RawFile) {
    const ROUNDS: usize = 8;
    const SLICE: Duration = Duration::from_millis(500);
    let groups: Vec<_> = APPENDER_COUNTS.iter().map(|n| (*n, new_group())).collect();
    let mut task_logs: Vec<TaskLog> = APPENDER_COUNTS.iter().map(|_| TaskLog::new()).collect();
    let mut totals: BTreeMap<usize, (u64, u64, Duration)> = BTreeMap::new();
    let mut device = DeviceRounds::new();
    let mut device_floor = DeviceFloor::default();
    for _ in 0..ROUNDS {
        device_floor.measure(&mut device, SLICE);
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
    device_floor.print();
    print_task_logs(&task_logs);
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

/// Prints what the task logs' committers saw: the rounds that cut a
/// segment (how long their append and sync took on average, and how many
/// segment files the logs created rather than reused), and where the
/// rounds spend their time.
fn print_task_logs(task_logs: &[TaskLog]) {
    let cuts: Vec<Duration> = task_logs
        .iter()
        .filter_map(|log| log.log.as_ref())
        .flat_map(|log| log.cut_rounds.iter().copied())
        .collect();
    let created: u64 = task_logs
        .iter()
        .map(|log| log.created.load(Ordering::Relaxed))
        .sum();
    if !cuts.is_empty() {
        let mean_ms = cuts.iter().sum::<Duration>().as_secs_f64() * 1e3 / cuts.len() as f64;
        println!(
            "  rounds that cut a segment (tasks): {} taking {mean_ms:.2} ms on average \
             (append + write+fsync); segment files created rather than reused: {created}",
            cuts.len()
        );
    }
    println!(
        "  task rounds, mean us: appenders waking and asking again, append, write+fsync, \
         bookkeeping and answers"
    );
    for (appenders, log) in APPENDER_COUNTS.into_iter().zip(task_logs) {
        if let Some(log) = &log.log {
            let [asking, append, sync, answers] = log.round_times.means_us();
            println!(
                "    {appenders:>2} tasks: {asking:.1} + {append:.1} + {sync:.1} + {answers:.1} = {:.1}",
                asking + append + sync + answers
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
    let batches =
        RECOVERY_LOG_BYTES / (per_batch * framed_entry_bytes(RECOVERY_ENTRY_BYTES) as u64);
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
