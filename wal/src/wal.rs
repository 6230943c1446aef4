//! The write-ahead log: appends records to the current segment, cuts a new
//! segment when it is full (into a file prepared ahead, see
//! [`crate::next_segment`], or one created there and then), makes appends
//! durable by group commit, and purges segments a snapshot made unnecessary.
//! Synchronous and thread-free (it runs on tokio and under madsim); see
//! [`crate::group_commit`] for overlapping an fsync with the next batch.

use crate::error::{Result, WalError};
use crate::group_commit::{LogWrite, SyncJob, SyncOutcome, Ticket, Tickets};
use crate::next_segment::{self, NextSegment, PrepareJob, PrepareOutcome};
use crate::payload::{self, Metadata, SegmentHeader, SnapshotMarker};
use crate::purge::{PurgeJob, PurgeOutcome};
use crate::record::{self, Frame, MAX_PAYLOAD_BYTES, RecordType};
use crate::recovery::{self, Recovered, Tail};
use crate::segment::{self, BROKEN_SUFFIX, RECYCLED_SUFFIX, SegmentName, TEMP_SUFFIX};
use crate::storage::Storage;
use crate::zero_fill;
use keel_kernel::raft::{Entry, HardState};

/// Tunables of a [`Wal`].
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Size a segment is preallocated to; a new segment is cut once the
    /// current one holds at least this many bytes (default 64 MiB, etcd's).
    pub segment_size_bytes: u64,
    /// Encoded records are handed to the storage once this many bytes are
    /// buffered, or at the next sync (default 1 MiB).
    pub write_buffer_bytes: usize,
    /// Purged segment files kept for reuse as later segments, at most this
    /// many (default 2; 0 removes them, as etcd does). A reused file is
    /// already written, so appends into it need no zeros written ahead (see
    /// [`crate::zero_fill`]) and a purge renames instead of freeing extents;
    /// the files keep their disk space meanwhile (PostgreSQL recycles WAL
    /// files the same way).
    pub recycled_segments_max: usize,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_size_bytes: 64 << 20,
            write_buffer_bytes: 1 << 20,
            recycled_segments_max: 2,
        }
    }
}

/// The segment being appended to.
#[derive(Debug)]
struct Active<S: Storage> {
    name: SegmentName,
    /// The tag its records carry (see [`record::segment_tag`]).
    tag: u16,
    file_name: String,
    file: S::File,
    /// File offset where `Wal::buf` starts.
    write_offset: u64,
    /// End of the segment's opening records.
    opening_end: u64,
    /// Durable length of the file: records are only written below it, so a
    /// record running past the end of a file is never a torn write.
    allocated_bytes: u64,
    /// Bytes below this offset were written (records or zeros), so writing
    /// there changes no extent (see [`crate::zero_fill`]).
    zeroed_end: u64,
    /// Bytes below this offset are known durable (fsynced). A record
    /// encoded while nothing is buffered and every written byte is durable
    /// starts a write unit (see [`record::STARTS_WRITE_UNIT`]).
    durable_end: u64,
}

/// A segmented write-ahead log over a [`Storage`].
#[derive(Debug)]
pub struct Wal<S: Storage> {
    storage: S,
    options: WalOptions,
    metadata: Metadata,
    active: Active<S>,
    /// Segments before the active one, oldest first.
    sealed: Vec<SegmentName>,
    /// Encoded records not yet handed to the storage.
    buf: Vec<u8>,
    /// CRC of the last encoded record.
    crc: u32,
    /// Index of the last entry (or of the latest snapshot if higher).
    last_index: u64,
    hard_state: HardState,
    snapshot: SnapshotMarker,
    tickets: Tickets,
    poisoned: Option<String>,
    /// An exclusive sync job is out: appends and syncs wait for
    /// [`Wal::finish_sync`].
    held: bool,
    /// The segment the next cut switches to, if prepared ahead.
    next: NextSegment<S::File>,
    /// A [`PurgeJob`] is out: no other is handed out until
    /// [`Wal::finish_purge`].
    purging: bool,
    /// Files of purged segments kept for reuse (see
    /// [`WalOptions::recycled_segments_max`]), oldest first.
    recycled: Vec<String>,
    /// Bytes of records encoded since this `Wal` was created or opened.
    appended_bytes: u64,
}

impl<S: Storage> Wal<S> {
    /// Creates a new log holding only `metadata`, durable on return.
    /// Errors: the storage already holds segments ([`WalError::Directory`]),
    /// bad options, storage failures.
    pub fn create(storage: S, options: WalOptions, metadata: Metadata) -> Result<Wal<S>> {
        check_options(&options)?;
        let names = storage
            .list()
            .map_err(|e| WalError::io("list", "", None, e))?;
        if names.iter().any(|n| SegmentName::parse(n).is_some()) {
            return Err(WalError::Directory(
                "a WAL already exists in this directory".to_string(),
            ));
        }
        let name = SegmentName {
            sequence: 0,
            first_index: 1,
        };
        let mut opening = Vec::new();
        let crc = write_opening(
            &mut opening,
            &name,
            0,
            &metadata,
            &SnapshotMarker::default(),
            &HardState::default(),
        );
        let file = segment::create(&storage, &name, &opening, options.segment_size_bytes)?;
        let recycled = recycled_files(&storage, &names, options.recycled_segments_max)?;
        let active = Active {
            file_name: name.file_name(),
            tag: record::segment_tag(name.sequence),
            name,
            file,
            write_offset: opening.len() as u64,
            opening_end: opening.len() as u64,
            allocated_bytes: options.segment_size_bytes.max(opening.len() as u64),
            zeroed_end: opening.len() as u64,
            // `segment::create` fsynced the opening records.
            durable_end: opening.len() as u64,
        };
        Ok(Wal {
            storage,
            options,
            metadata,
            active,
            sealed: Vec::new(),
            buf: Vec::new(),
            crc,
            last_index: 0,
            hard_state: HardState::default(),
            snapshot: SnapshotMarker::default(),
            tickets: Tickets::default(),
            poisoned: None,
            held: false,
            purging: false,
            next: NextSegment::Wanted,
            recycled,
            appended_bytes: 0,
        })
    }

    /// Opens an existing log: recovers it from its latest snapshot marker,
    /// repairs a torn tail of the last segment (the damaged file is kept as
    /// `<segment>.broken`, the segment cut back to its last valid record), and
    /// returns the log ready to append after the last record.
    /// Errors: as [`recovery::scan`], plus storage failures during repair.
    pub fn open(storage: S, options: WalOptions) -> Result<(Wal<S>, Recovered)> {
        Wal::open_at(storage, options, None)
    }

    /// As [`Wal::open`], but the returned entries follow the snapshot marker
    /// at `snapshot_index` (use when the newest snapshot file was unreadable
    /// and an older one was loaded). Errors: that marker is not in the log.
    pub fn open_at(
        storage: S,
        options: WalOptions,
        snapshot_index: Option<u64>,
    ) -> Result<(Wal<S>, Recovered)> {
        Wal::open_choosing(storage, options, |_| Ok(snapshot_index))
    }

    /// As [`Wal::open`], but `choose` picks the snapshot marker the returned
    /// entries follow, from every marker in the log (see
    /// [`recovery::scan_choosing`]): pass one that finds the newest snapshot
    /// file with a marker. Errors: as [`Wal::open`], and `choose`'s own.
    pub fn open_choosing(
        storage: S,
        options: WalOptions,
        choose: impl FnOnce(&[SnapshotMarker]) -> Result<Option<u64>>,
    ) -> Result<(Wal<S>, Recovered)> {
        check_options(&options)?;
        let names = storage
            .list()
            .map_err(|e| WalError::io("list", "", None, e))?;
        remove_temp_files(&storage, &names)?;
        let recycled = recycled_files(&storage, &names, options.recycled_segments_max)?;
        let scan = recovery::scan_choosing(&storage, choose)?;
        let file = repair_tail(&storage, &names, &scan.tail, options.segment_size_bytes)?;
        let mut sealed = scan.segments;
        let name = sealed
            .pop()
            .ok_or_else(|| WalError::Directory("no WAL segments found".to_string()))?;
        let active = Active {
            file_name: name.file_name(),
            tag: scan.tail.tag,
            name,
            file,
            write_offset: scan.tail.valid_end,
            opening_end: 0,
            allocated_bytes: 0,
            zeroed_end: scan.tail.valid_end,
            // `repair_tail` fsynced the recovered records.
            durable_end: scan.tail.valid_end,
        };
        let mut wal = Wal {
            storage,
            options,
            metadata: scan.recovered.metadata,
            active,
            sealed,
            buf: Vec::new(),
            crc: scan.tail.crc,
            last_index: scan.last_index,
            hard_state: scan.recovered.hard_state,
            snapshot: scan.latest_snapshot,
            tickets: Tickets::default(),
            poisoned: None,
            held: false,
            purging: false,
            next: NextSegment::Wanted,
            recycled,
            appended_bytes: 0,
        };
        wal.active.allocated_bytes = wal
            .storage
            .len(&wal.active.file)
            .map_err(WalError::io_for("stat", &wal.active.file_name))?;
        Ok((wal, scan.recovered))
    }

    /// Appends `entries` (contiguous indexes; the first at most one past the
    /// last index, lower indexes overwrite the log's suffix as in Raft §5.3)
    /// and then `hard_state` if given, like etcd's `WAL.Save`. Not durable
    /// until a sync covers the returned ticket.
    /// Errors: bad indexes or an entry over 256 MiB ([`WalError::InvalidArgument`],
    /// nothing is appended), a poisoned log, storage failures. On a full disk
    /// ([`WalError::is_storage_full`] while the log is not
    /// [poisoned](Wal::is_poisoned)) a prefix of the batch may have been
    /// appended; appending the same batch again later is correct, because
    /// entries at indexes already in the log overwrite them (Raft §5.3).
    pub fn append(&mut self, entries: &[Entry], hard_state: Option<&HardState>) -> Result<Ticket> {
        self.check_usable()?;
        self.check_entries(entries)?;
        for entry in entries {
            self.reserve(payload::ENTRY_FIXED_BYTES + entry.data.len())?;
            self.encode_record(RecordType::Entry, |b| payload::encode_entry(b, entry));
            self.last_index = entry.index;
            self.after_record()?;
        }
        if let Some(hs) = hard_state {
            self.reserve(payload::HARD_STATE_BYTES)?;
            self.encode_record(RecordType::HardState, |b| payload::encode_hard_state(b, hs));
            self.hard_state = *hs;
            self.after_record()?;
        }
        Ok(self.tickets.next())
    }

    /// Records that a snapshot covers the log up to `marker.index` (write it
    /// after the snapshot file is durable). Entries may then continue at
    /// `marker.index + 1` even if the log ended before it.
    /// Errors: a marker older than the latest one, a poisoned log, storage failures.
    pub fn append_snapshot_marker(&mut self, marker: &SnapshotMarker) -> Result<Ticket> {
        self.check_usable()?;
        if marker.index < self.snapshot.index {
            return Err(WalError::InvalidArgument(format!(
                "snapshot index {} is older than the last snapshot {}",
                marker.index, self.snapshot.index
            )));
        }
        self.reserve(payload::snapshot_marker_bytes(marker))?;
        self.encode_record(RecordType::SnapshotMarker, |b| {
            payload::encode_snapshot_marker(b, marker)
        });
        self.snapshot = marker.clone();
        self.last_index = self.last_index.max(marker.index);
        self.after_record()?;
        Ok(self.tickets.next())
    }

    /// Hands buffered records to the storage (through the page cache) and
    /// returns the fsync that will make everything appended so far durable,
    /// or `None` if it already is. Run the job (possibly without holding the
    /// `Wal`, while others append), then pass its outcome to
    /// [`Wal::finish_sync`]. Errors: a poisoned or held log, write failures.
    pub fn begin_sync(&mut self) -> Result<Option<SyncJob<S>>> {
        self.check_usable()?;
        self.flush()?;
        if self.tickets.durable == self.tickets.appended {
            return Ok(None);
        }
        Ok(Some(self.job(None)))
    }

    /// As [`Wal::begin_sync`], but the job also writes the buffered records
    /// (and the zeros due ahead of them) with
    /// [`Storage::write_log_at`]: direct I/O
    /// on real files, so the fsync only flushes the device. For an owner
    /// that appends nothing while the job runs: until [`Wal::finish_sync`]
    /// takes its outcome, appends, syncs and purges fail with
    /// [`WalError::InvalidArgument`]. A job that fails poisons the log.
    /// Errors: a poisoned or held log.
    pub fn begin_exclusive_sync(&mut self) -> Result<Option<SyncJob<S>>> {
        self.check_usable()?;
        if self.tickets.durable == self.tickets.appended {
            return Ok(None);
        }
        let offset = self.active.write_offset;
        // The job takes the records; the next batch starts in a buffer of
        // this one's size rather than growing from empty again.
        let next = Vec::with_capacity(self.buf.len());
        let records = std::mem::replace(&mut self.buf, next);
        self.active.write_offset += records.len() as u64;
        let zeros = self.take_zero_range();
        self.tickets.mark_written();
        self.held = true;
        Ok(Some(self.job(Some(LogWrite {
            offset,
            records,
            zeros,
        }))))
    }

    fn job(&self, write: Option<LogWrite>) -> SyncJob<S> {
        SyncJob {
            storage: self.storage.clone(),
            file: self.active.file.clone(),
            file_name: self.active.file_name.clone(),
            ticket: self.tickets.written,
            durable_end: (self.active.name.sequence, self.active.write_offset),
            write,
        }
    }

    /// Publishes the result of a [`SyncJob`] (and releases a log held by an
    /// exclusive one): returns the durable ticket.
    /// Errors: the job's write or fsync failed (the log is poisoned from
    /// then on: data the kernel dropped after a failed fsync cannot be
    /// trusted to be on disk); `None` for an exclusive job that was handed
    /// out (its records are lost: poisoned too).
    pub fn finish_sync(&mut self, outcome: Option<SyncOutcome>) -> Result<Ticket> {
        if std::mem::take(&mut self.held) && outcome.is_none() {
            // The job carried records nobody else holds: they may be lost.
            let err = WalError::InvalidArgument(
                "an exclusive sync job was dropped without its outcome".to_string(),
            );
            self.poisoned = Some(err.to_string());
            return Err(err);
        }
        if let Some(outcome) = outcome {
            if let Err(e) = outcome.result {
                self.poisoned = Some(e.to_string());
                return Err(e);
            }
            self.tickets.mark_durable(outcome.ticket);
            let (sequence, end) = outcome.durable_end;
            if sequence == self.active.name.sequence {
                self.active.durable_end = self.active.durable_end.max(end);
            }
        }
        Ok(self.tickets.durable)
    }

    /// Makes everything appended so far durable with at most one write and
    /// one fsync (an exclusive job run here) and returns the durable ticket.
    /// Errors: as [`Wal::begin_exclusive_sync`] and [`Wal::finish_sync`].
    pub fn sync(&mut self) -> Result<Ticket> {
        let job = self.begin_exclusive_sync()?;
        self.finish_sync(job.map(SyncJob::run))
    }

    /// A job that prepares the segment the next cut switches to (see
    /// [`crate::next_segment`]), or `None` when one is prepared or out
    /// already, the last one failed (until the next cut), or the log is
    /// poisoned. Run it off the caller's thread if the caller must not
    /// block, then hand its outcome to [`Wal::finish_prepare`].
    pub fn begin_prepare(&mut self) -> Option<PrepareJob<S>> {
        if self.poisoned.is_some() || !matches!(self.next, NextSegment::Wanted) {
            return None;
        }
        self.next = NextSegment::Preparing;
        Some(PrepareJob {
            storage: self.storage.clone(),
            size_bytes: self.options.segment_size_bytes,
            recycled: self.recycled.pop(),
        })
    }

    /// Takes the outcome of the job [`Wal::begin_prepare`] handed out: the
    /// next cut uses the prepared file.
    /// Errors: the job's failure (the log stays usable: the next cut creates
    /// its segment itself, and no other job is handed out before it), or
    /// [`WalError::InvalidArgument`] if no job was out.
    pub fn finish_prepare(&mut self, outcome: PrepareOutcome<S>) -> Result<()> {
        if !matches!(self.next, NextSegment::Preparing) {
            return Err(WalError::InvalidArgument(
                "finish_prepare without a prepare job out".to_string(),
            ));
        }
        match outcome.result {
            Ok(prepared) => {
                self.next = NextSegment::Ready(prepared);
                Ok(())
            }
            Err(e) => {
                self.next = NextSegment::Failed;
                Err(e)
            }
        }
    }

    /// True once a failure made the log refuse every further write (a failed
    /// write or fsync: what reached the disk is unknown). A full disk found
    /// while cutting a segment or growing one does not poison the log.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// Last ticket handed out by an append.
    pub fn appended_ticket(&self) -> Ticket {
        self.tickets.appended
    }

    /// Last ticket known durable.
    pub fn durable_ticket(&self) -> Ticket {
        self.tickets.durable
    }

    /// Bytes of the records appends encoded (entries, hard states, snapshot
    /// markers, with their framing) since this `Wal` was
    /// created or opened: what the log wrote, for a snapshot schedule that
    /// weighs the log against the state (`keel-server`'s snapshot policy).
    pub fn appended_bytes(&self) -> u64 {
        self.appended_bytes
    }

    /// Index of the last entry appended (or of the latest snapshot marker if higher).
    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    /// The last hard state appended.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The member identity stored in the log.
    pub fn metadata(&self) -> Metadata {
        self.metadata
    }

    /// Names of all segment files, oldest first.
    pub fn segment_names(&self) -> Vec<String> {
        self.sealed
            .iter()
            .map(SegmentName::file_name)
            .chain([self.active.file_name.clone()])
            .collect()
    }

    /// Removes the oldest segments whose entries all have indexes at or below
    /// `snapshot_index` (never the segment being written) with a
    /// [`PurgeJob`] run here; returns how many. Removes nothing while a job
    /// from [`Wal::begin_purge`] is out. Only purge below a snapshot that is
    /// durable in a snapshot file.
    /// Errors: as [`Wal::begin_purge`] and [`Wal::finish_purge`].
    pub fn purge(&mut self, snapshot_index: u64) -> Result<usize> {
        match self.begin_purge(snapshot_index)? {
            Some(job) => self.finish_purge(job.run()),
            None => Ok(0),
        }
    }

    /// Takes the oldest segments whose entries all have indexes at or below
    /// `snapshot_index` (never the segment being written) out of the log and
    /// returns the job that removes their files (see [`crate::purge`]), or
    /// `None` when there are none or a job is out already. Run the job off
    /// the caller's thread if the caller must not block, then hand its
    /// outcome to [`Wal::finish_purge`]; the log is appended to, synced and
    /// cut meanwhile as usual. Only purge below a snapshot that is durable
    /// in a snapshot file. Errors: a poisoned or held log.
    pub fn begin_purge(&mut self, snapshot_index: u64) -> Result<Option<PurgeJob<S>>> {
        self.check_usable()?;
        if self.purging {
            return Ok(None);
        }
        let removable = self.purgeable_below(snapshot_index);
        if removable == 0 {
            return Ok(None);
        }
        self.purging = true;
        let room = self
            .options
            .recycled_segments_max
            .saturating_sub(self.recycled.len());
        Ok(Some(PurgeJob {
            storage: self.storage.clone(),
            segments: self.sealed.drain(..removable).collect(),
            recycle: room,
        }))
    }

    /// Takes the outcome of the job [`Wal::begin_purge`] handed out; returns
    /// how many segment files it removed. Segments it could not remove go
    /// back to the log, and the next purge tries them first.
    /// Errors: the job's failure (a removal or the directory fsync; the log
    /// stays usable and contiguous on disk), or [`WalError::InvalidArgument`]
    /// if no job was out.
    pub fn finish_purge(&mut self, outcome: PurgeOutcome) -> Result<usize> {
        if !std::mem::take(&mut self.purging) {
            return Err(WalError::InvalidArgument(
                "finish_purge without a purge job out".to_string(),
            ));
        }
        let PurgeOutcome {
            removed,
            left,
            recycled,
            result,
        } = outcome;
        self.recycled.extend(recycled);
        debug_assert!(
            left.last()
                .zip(self.sealed.first().or(Some(&self.active.name)))
                .is_none_or(|(l, next)| l.sequence < next.sequence),
            "segments left by a purge must be older than the log's"
        );
        self.sealed.splice(0..0, left);
        result.map(|()| removed)
    }

    /// How many of the oldest sealed segments hold only entries at or below
    /// `snapshot_index`: those whose successor starts at most one past it.
    fn purgeable_below(&self, snapshot_index: u64) -> usize {
        let mut removable = 0;
        while removable < self.sealed.len() {
            let next_first = self
                .sealed
                .get(removable + 1)
                .map_or(self.active.name.first_index, |s| s.first_index);
            if next_first > snapshot_index.saturating_add(1) {
                break;
            }
            removable += 1;
        }
        removable
    }

    fn check_usable(&self) -> Result<()> {
        if let Some(reason) = &self.poisoned {
            return Err(WalError::Poisoned(reason.clone()));
        }
        if self.held {
            return Err(WalError::InvalidArgument(
                "an exclusive sync job holds the log until finish_sync".to_string(),
            ));
        }
        Ok(())
    }

    fn check_entries(&self, entries: &[Entry]) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        if first.index == 0 || first.index > self.last_index + 1 {
            return Err(WalError::InvalidArgument(format!(
                "entry index {} does not follow last index {}",
                first.index, self.last_index
            )));
        }
        if first.index <= self.snapshot.index {
            return Err(WalError::InvalidArgument(format!(
                "entry index {} is covered by the snapshot at {}",
                first.index, self.snapshot.index
            )));
        }
        for pair in entries.windows(2) {
            if pair[1].index != pair[0].index + 1 {
                return Err(WalError::InvalidArgument(format!(
                    "entry indexes {} then {}",
                    pair[0].index, pair[1].index
                )));
            }
        }
        if let Some(big) = entries
            .iter()
            .find(|e| e.data.len() + 17 > MAX_PAYLOAD_BYTES)
        {
            return Err(WalError::InvalidArgument(format!(
                "entry {} of {} bytes is too large",
                big.index,
                big.data.len()
            )));
        }
        Ok(())
    }

    /// Before encoding a record with `payload_bytes` of payload: if it would
    /// run past the allocated end of the segment, cut a new segment (unless
    /// this one holds nothing but its opening), and if it still does not fit
    /// (a record larger than a segment), grow the allocation durably first.
    fn reserve(&mut self, payload_bytes: usize) -> Result<()> {
        let record_bytes =
            (record::HEADER_BYTES + payload_bytes + record::padding_bytes(payload_bytes)) as u64;
        let end = |a: &Active<S>, buffered: usize| a.write_offset + buffered as u64 + record_bytes;
        if end(&self.active, self.buf.len()) <= self.active.allocated_bytes {
            return Ok(());
        }
        if self.active.write_offset + self.buf.len() as u64 > self.active.opening_end {
            self.cut()?;
        }
        let needed = end(&self.active, self.buf.len());
        if needed > self.active.allocated_bytes {
            self.flush()?;
            let a = &self.active;
            let grown = needed.next_multiple_of(4096);
            // A full disk fails the allocation with nothing written: the
            // log stays usable. A failed fsync poisons it.
            self.storage
                .preallocate(&a.file, grown)
                .map_err(WalError::io_for("preallocate", &a.file_name))?;
            if let Err(e) = self.storage.sync(&a.file) {
                let err = WalError::io("fsync", &a.file_name, None, e);
                self.poisoned = Some(err.to_string());
                return Err(err);
            }
            self.active.allocated_bytes = grown;
            self.active.durable_end = self.active.write_offset;
        }
        Ok(())
    }

    /// Encodes one record of the active segment into the buffer, chained to
    /// the last one (call [`Wal::reserve`] for its room first).
    ///
    /// Panics if the record would start off the 8-byte grid, where
    /// recovery never looks for one.
    fn encode_record(&mut self, record_type: RecordType, write_payload: impl FnOnce(&mut Vec<u8>)) {
        let at = self.active.write_offset + self.buf.len() as u64;
        assert!(
            at.is_multiple_of(record::ALIGN_BYTES as u64),
            "wal: record at unaligned offset {at} of {}",
            self.active.file_name
        );
        let frame = Frame {
            record_type,
            tag: self.active.tag,
            starts_unit: self.buf.is_empty() && self.active.write_offset == self.active.durable_end,
        };
        let before = self.buf.len();
        self.crc = record::encode(&mut self.buf, frame, self.crc, write_payload);
        self.appended_bytes += (self.buf.len() - before) as u64;
    }

    /// After each encoded record: hand a full buffer to the storage.
    fn after_record(&mut self) -> Result<()> {
        if self.buf.len() >= self.options.write_buffer_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the buffered records to the storage through the page cache
    /// (a full buffer, a [`Wal::begin_sync`], a cut or a grown segment; only
    /// an exclusive sync job writes with [`Storage::write_log_at`]).
    fn flush(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            let offset = self.active.write_offset;
            if let Err(e) = self.storage.write_at(&self.active.file, offset, &self.buf) {
                let err = WalError::io("write", &self.active.file_name, Some(offset), e);
                self.poisoned = Some(err.to_string());
                return Err(err);
            }
            self.active.write_offset += self.buf.len() as u64;
            self.buf.clear();
            self.zero_fill_ahead()?;
        }
        self.tickets.mark_written();
        Ok(())
    }

    /// Once records pass the zero-filled region, zero the next chunk after
    /// them (before the fsync that follows), see [`crate::zero_fill`].
    fn zero_fill_ahead(&mut self) -> Result<()> {
        let Some((from, end)) = self.take_zero_range() else {
            return Ok(());
        };
        let (storage, file) = (&self.storage, &self.active.file);
        if let Err(e) =
            zero_fill::write_zeros(from, end, |at, zeros| storage.write_at(file, at, zeros))
        {
            let err = WalError::io("write", &self.active.file_name, Some(from), e);
            self.poisoned = Some(err.to_string());
            return Err(err);
        }
        Ok(())
    }

    /// The range to zero-fill now that records end at `write_offset`, if
    /// any; counted as done (whoever takes it writes it).
    fn take_zero_range(&mut self) -> Option<(u64, u64)> {
        let a = &mut self.active;
        if a.write_offset <= a.zeroed_end {
            return None;
        }
        let range = (
            a.write_offset,
            zero_fill::fill_end(a.write_offset, a.allocated_bytes),
        );
        a.zeroed_end = range.1;
        Some(range)
    }

    /// Seals the current segment (fsynced first, so only the last segment
    /// can ever have a torn tail) and starts the next one with the metadata,
    /// latest snapshot marker and hard state restated, so purging older
    /// segments never loses them.
    ///
    /// A full disk while creating the next segment leaves the log as it was
    /// and usable (retry once space is freed); any other failure poisons it.
    fn cut(&mut self) -> Result<()> {
        self.flush()?;
        let old = &self.active;
        if let Err(e) = self.storage.sync(&old.file) {
            let err = WalError::io("fsync", &old.file_name, None, e);
            self.poisoned = Some(err.to_string());
            return Err(err);
        }
        let result = self.start_next_segment();
        if let Err(e) = &result
            && !e.is_storage_full()
        {
            self.poisoned = Some(e.to_string());
        }
        result
    }

    fn start_next_segment(&mut self) -> Result<()> {
        let old = &self.active;
        let name = SegmentName {
            sequence: old.name.sequence + 1,
            first_index: self.last_index + 1,
        };
        let mut opening = Vec::new();
        let crc = write_opening(
            &mut opening,
            &name,
            self.crc,
            &self.metadata,
            &self.snapshot,
            &self.hard_state,
        );
        let (file, zeroed_bytes) = self.open_next_segment(&name, &opening)?;
        let new = Active {
            file_name: name.file_name(),
            tag: record::segment_tag(name.sequence),
            name,
            file,
            write_offset: opening.len() as u64,
            opening_end: opening.len() as u64,
            allocated_bytes: self.options.segment_size_bytes.max(opening.len() as u64),
            zeroed_end: zeroed_bytes.max(opening.len() as u64),
            // The opening records were fsynced under the final name.
            durable_end: opening.len() as u64,
        };
        let old = std::mem::replace(&mut self.active, new);
        self.sealed.push(old.name);
        self.crc = crc;
        // Everything before the cut was fsynced with the old segment.
        self.tickets.mark_durable(self.tickets.written);
        Ok(())
    }

    /// The file of segment `name`, starting with `opening`, durable under
    /// its final name: the prepared file if one is ready, else a new one.
    /// Returns it with how many of its first bytes hold zeros or records.
    fn open_next_segment(&mut self, name: &SegmentName, opening: &[u8]) -> Result<(S::File, u64)> {
        let size_bytes = self.options.segment_size_bytes;
        match std::mem::replace(&mut self.next, NextSegment::Wanted) {
            NextSegment::Ready(prepared) => {
                next_segment::install(&self.storage, &prepared.file, name, opening)?;
                Ok((prepared.file, prepared.written_bytes))
            }
            state => {
                if matches!(state, NextSegment::Preparing) {
                    // Too late for this cut; its file serves the next one.
                    self.next = NextSegment::Preparing;
                }
                let file = segment::create(&self.storage, name, opening, size_bytes)?;
                Ok((file, 0))
            }
        }
    }
}

fn check_options(options: &WalOptions) -> Result<()> {
    if options.segment_size_bytes < 4096 {
        return Err(WalError::InvalidArgument(
            "segment size must be at least 4096 bytes".to_string(),
        ));
    }
    Ok(())
}

/// Encodes a segment's opening records; returns the CRC of the last one.
fn write_opening(
    buf: &mut Vec<u8>,
    name: &SegmentName,
    prev_crc: u32,
    metadata: &Metadata,
    snapshot: &SnapshotMarker,
    hs: &HardState,
) -> u32 {
    let header = SegmentHeader {
        sequence: name.sequence,
        first_index: name.first_index,
        prev_crc,
    };
    let tag = record::segment_tag(name.sequence);
    let frame = |record_type| Frame {
        record_type,
        tag,
        // The header starts the opening's own unit, and says the segment
        // marks its units.
        starts_unit: record_type == RecordType::SegmentHeader,
    };
    let mut crc = record::encode(buf, frame(RecordType::SegmentHeader), prev_crc, |b| {
        payload::encode_segment_header(b, &header)
    });
    crc = record::encode(buf, frame(RecordType::Metadata), crc, |b| {
        payload::encode_metadata(b, metadata)
    });
    if snapshot.index > 0 {
        crc = record::encode(buf, frame(RecordType::SnapshotMarker), crc, |b| {
            payload::encode_snapshot_marker(b, snapshot)
        });
    }
    if !hs.is_empty() {
        crc = record::encode(buf, frame(RecordType::HardState), crc, |b| {
            payload::encode_hard_state(b, hs)
        });
    }
    crc
}

/// Removes segments left half-created by a crash during a cut.
fn remove_temp_files<S: Storage>(storage: &S, names: &[String]) -> Result<()> {
    for name in names.iter().filter(|n| n.ends_with(TEMP_SUFFIX)) {
        storage
            .remove(name)
            .map_err(|e| WalError::io("remove", name, None, e))?;
    }
    Ok(())
}

/// The files of purged segments kept for reuse among `names`, oldest first,
/// at most `max` of them: the others are removed.
fn recycled_files<S: Storage>(storage: &S, names: &[String], max: usize) -> Result<Vec<String>> {
    let mut recycled: Vec<String> = names
        .iter()
        .filter(|n| n.ends_with(RECYCLED_SUFFIX))
        .cloned()
        .collect();
    recycled.sort();
    let extra = recycled.len().saturating_sub(max);
    for name in recycled.drain(..extra) {
        storage
            .remove(&name)
            .map_err(|e| WalError::io("remove", &name, None, e))?;
    }
    Ok(recycled)
}

/// Opens the last segment and makes what recovery read of it durable:
/// records a killed process wrote but never fsynced may still sit in the
/// page cache only, and the log must not build on them (nor let a later
/// unit vouch for them, see [`record::STARTS_WRITE_UNIT`]) until they are
/// on disk. If its tail is torn, first keeps a copy as `<name>.broken`
/// and cuts the segment back to its last valid record, preallocated again
/// (zero-filled). `names` is the directory's listing.
fn repair_tail<S: Storage>(
    storage: &S,
    names: &[String],
    tail: &Tail,
    size_bytes: u64,
) -> Result<S::File> {
    let name = tail.name.file_name();
    let file = storage
        .open(&name)
        .map_err(|e| WalError::io("open", &name, None, e))?;
    if tail.torn.is_none() {
        storage
            .sync(&file)
            .map_err(|e| WalError::io("fsync", &name, None, e))?;
        return Ok(file);
    }
    let broken = format!("{name}{BROKEN_SUFFIX}");
    let data = storage
        .read_all(&name)
        .map_err(|e| WalError::io("read", &name, None, e))?;
    if names.contains(&broken) {
        storage
            .remove(&broken)
            .map_err(|e| WalError::io("remove", &broken, None, e))?;
    }
    let copy = storage
        .create(&broken)
        .map_err(|e| WalError::io("create", &broken, None, e))?;
    storage
        .write_at(&copy, 0, &data)
        .map_err(|e| WalError::io("write", &broken, Some(0), e))?;
    storage
        .sync(&copy)
        .map_err(|e| WalError::io("fsync", &broken, None, e))?;
    drop(data);
    storage
        .truncate(&file, tail.valid_end)
        .map_err(|e| WalError::io("truncate", &name, Some(tail.valid_end), e))?;
    storage
        .preallocate(&file, size_bytes)
        .map_err(|e| WalError::io("preallocate", &name, None, e))?;
    storage
        .sync(&file)
        .map_err(|e| WalError::io("fsync", &name, None, e))?;
    storage
        .sync_dir()
        .map_err(|e| WalError::io("fsync directory", "", None, e))?;
    Ok(file)
}
