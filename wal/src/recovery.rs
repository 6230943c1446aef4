//! Recovery: reads every segment in order, checks the CRC chain, and rebuilds
//! metadata, the snapshot marker, the hard state and the entries after the
//! marker, resolving suffixes that Raft overwrote (a later entry with a lower
//! or equal index truncates the log there; Raft paper §5.3).
//!
//! A segment's records end at zeros, or at bytes that are not a record of
//! this segment (a recycled file's old records: their segment tag differs,
//! see [`crate::record`]), provided no record of this segment follows; a
//! torn record at the end of the last segment ends the log too (the writer
//! repairs it, see [`crate::Wal::open`]). A sealed segment that ends early
//! breaks the CRC chain into the next one. Damage anywhere else is
//! [`WalError::Corrupt`] naming the file and offset.
//!
//! In the last segment, records of the segment after the point where its
//! log breaks off are the torn write's own later sectors, not corruption,
//! when none of them starts a write unit (`record::after_break`):
//! a disk may persist the sectors of an unacknowledged write out of order,
//! and in a recycled file a sector that missed the disk holds old bytes
//! rather than zeros. Segments written before units were marked (their
//! header lacks the flag) keep the stricter rule: any record of the
//! segment after old bytes or a damaged record is corruption. Every loop
//! advances by at least one record header, and nothing is allocated beyond
//! what the files' sizes allow, so arbitrary bytes yield entries or an
//! error.

use crate::error::{Result, WalError};
use crate::payload::{self, Metadata, Record, SegmentHeader, SnapshotMarker};
use crate::record::{self, After, Decoded, HEADER_BYTES};
use crate::segment::SegmentName;
use crate::storage::Storage;
use bytes::Bytes;
use keel_kernel::raft::{Entry, HardState};

/// What recovery hands to Raft.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Identity of the member owning the log.
    pub metadata: Metadata,
    /// The snapshot the entries follow (index 0: none).
    pub snapshot: SnapshotMarker,
    /// The latest hard state (empty if none was saved).
    pub hard_state: HardState,
    /// Entries with indexes `snapshot.index + 1 ..`, contiguous.
    pub entries: Vec<Entry>,
}

/// Where recovery stopped in the last segment: the writer continues there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tail {
    /// The last segment.
    pub name: SegmentName,
    /// Offset just past the last valid record.
    pub valid_end: u64,
    /// CRC of the last valid record (seed of the next).
    pub crc: u32,
    /// The tag the segment's records carry (see [`record::segment_tag`];
    /// 0 in a segment written before tags existed).
    pub tag: u16,
    /// Set when bytes after `valid_end` are a torn write to cut off: the
    /// offset and what was wrong there.
    pub torn: Option<(u64, &'static str)>,
}

/// Everything a scan of the directory found.
#[derive(Clone, Debug)]
pub struct Scan {
    /// The recovered state.
    pub recovered: Recovered,
    /// All segments, oldest first (the last one is [`Scan::tail`]'s).
    pub segments: Vec<SegmentName>,
    /// Where the log ends.
    pub tail: Tail,
    /// Index of the last entry in the log, or the latest marker's index if
    /// that is higher (the next appended entry may follow it).
    pub last_index: u64,
    /// The latest snapshot marker in the log.
    pub latest_snapshot: SnapshotMarker,
}

/// Recovers the log in `storage` starting at its latest snapshot marker.
/// Read-only: a torn tail is ignored but not repaired.
/// Errors: no segments ([`WalError::Directory`]), damage ([`WalError::Corrupt`]),
/// storage failures ([`WalError::Io`]).
pub fn recover<S: Storage>(storage: &S) -> Result<Recovered> {
    scan(storage, None).map(|s| s.recovered)
}

/// Reads the whole directory. With `at_snapshot_index`, the entries follow
/// the marker of that index (which must be in the log, or be 0) instead of the
/// latest one: used when the newest snapshot file was unreadable.
pub fn scan<S: Storage>(storage: &S, at_snapshot_index: Option<u64>) -> Result<Scan> {
    scan_choosing(storage, |_| Ok(at_snapshot_index))
}

/// As [`scan`], but `choose` picks the marker once the log is read: it gets
/// every distinct snapshot marker in log order (possibly none) and returns
/// the index of the one the entries must follow (`Some(0)`: from the start
/// of the log, `None`: the latest). A node uses it to pick the newest
/// snapshot file that has a marker, so a crash between writing a snapshot
/// file and logging its marker leaves a log that opens.
/// Errors: as [`scan`], and `choose`'s own.
pub fn scan_choosing<S: Storage>(
    storage: &S,
    choose: impl FnOnce(&[SnapshotMarker]) -> Result<Option<u64>>,
) -> Result<Scan> {
    let names = storage
        .list()
        .map_err(|e| WalError::io("list", "", None, e))?;
    let mut segments: Vec<SegmentName> =
        names.iter().filter_map(|n| SegmentName::parse(n)).collect();
    segments.sort_by_key(|s| s.sequence);
    if segments.is_empty() {
        return Err(WalError::Directory("no WAL segments found".to_string()));
    }
    let mut state = State::default();
    let mut tail = None;
    for (i, name) in segments.iter().enumerate() {
        if i > 0 && name.sequence != segments[i - 1].sequence + 1 {
            return Err(WalError::corrupt(
                &name.file_name(),
                0,
                "missing segment before this one",
            ));
        }
        let is_last = i + 1 == segments.len();
        tail = Some(read_segment(storage, name, i == 0, is_last, &mut state)?);
    }
    let tail = tail.ok_or_else(|| WalError::Directory("no WAL segments found".to_string()))?;
    let first = segments[0].file_name();
    let metadata = state
        .metadata
        .ok_or_else(|| WalError::corrupt(&first, 0, "no metadata record"))?;
    let snapshot = match choose(&state.markers)? {
        None => state.latest_snapshot.clone(),
        Some(0) => SnapshotMarker::default(),
        Some(index) => state
            .markers
            .iter()
            .rev()
            .find(|m| m.index == index)
            .cloned()
            .ok_or_else(|| {
                WalError::InvalidArgument(format!(
                    "snapshot marker at index {index} is not in the log"
                ))
            })?,
    };
    let last_index = state.last_index();
    let start = state.entries.partition_point(|e| e.index <= snapshot.index);
    let entries = state.entries.split_off(start);
    for (expected, entry) in (snapshot.index + 1..).zip(entries.iter()) {
        if entry.index != expected {
            return Err(WalError::corrupt(
                &first,
                0,
                format!(
                    "entries after snapshot index {} are missing (index {} follows {})",
                    snapshot.index,
                    entry.index,
                    expected - 1
                ),
            ));
        }
    }
    Ok(Scan {
        recovered: Recovered {
            metadata,
            snapshot,
            hard_state: state.hard_state,
            entries,
        },
        segments,
        tail,
        last_index,
        latest_snapshot: state.latest_snapshot,
    })
}

/// The log rebuilt so far.
#[derive(Default)]
struct State {
    metadata: Option<Metadata>,
    hard_state: HardState,
    latest_snapshot: SnapshotMarker,
    /// Every distinct marker, in log order (bounded by the number of records).
    markers: Vec<SnapshotMarker>,
    /// Entries, strictly increasing; a gap only where a marker jumped ahead.
    entries: Vec<Entry>,
    /// CRC of the last record read.
    crc: u32,
}

impl State {
    fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(0, |e| e.index)
            .max(self.latest_snapshot.index)
    }

    fn apply(&mut self, record: Record) -> std::result::Result<(), String> {
        match record {
            Record::SegmentHeader(_) => return Err("segment header inside a segment".to_string()),
            Record::Metadata(m) => match self.metadata {
                None => self.metadata = Some(m),
                Some(old) if old == m => {}
                Some(old) => return Err(format!("metadata conflict: {m:?} after {old:?}")),
            },
            Record::HardState(hs) => self.hard_state = hs,
            Record::SnapshotMarker(m) => {
                if self.markers.last() != Some(&m) {
                    self.markers.push(m.clone());
                }
                self.latest_snapshot = m;
            }
            Record::Entry(e) => {
                if e.index == 0 {
                    return Err("entry with index 0".to_string());
                }
                if !self.entries.is_empty() && e.index > self.last_index() + 1 {
                    return Err(format!(
                        "entry index {} after {}: gap in the log",
                        e.index,
                        self.last_index()
                    ));
                }
                let keep = self.entries.partition_point(|x| x.index < e.index);
                self.entries.truncate(keep);
                assert!(
                    self.entries.last().is_none_or(|last| last.index < e.index),
                    "wal recovery: entry {} recovered after a later one",
                    e.index
                );
                self.entries.push(e);
            }
        }
        Ok(())
    }
}

/// The `prev_crc` field of a segment header at offset 0, read without
/// checking anything (the CRC check that follows does).
fn peek_prev_crc(data: &[u8]) -> u32 {
    let at = HEADER_BYTES + 8 + 16;
    data.get(at..at + 4)
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The tag of segment `name`'s records: its own, or 0 in a segment written
/// before tags existed (its header says which).
fn tag_of(name: &SegmentName, data: &[u8]) -> u16 {
    let legacy = data.get(6..8) == Some(&[0, 0][..]);
    if legacy {
        0
    } else {
        record::segment_tag(name.sequence)
    }
}

/// Reads the segment's header record (tagged `tag`); returns where the
/// next record starts and whether the segment marks its write units (see
/// [`record::STARTS_WRITE_UNIT`]).
fn read_header(
    name: &SegmentName,
    file: &str,
    data: &Bytes,
    tag: u16,
    state: &mut State,
    is_first: bool,
) -> Result<(usize, bool)> {
    let prev_crc = peek_prev_crc(data);
    if !is_first && prev_crc != state.crc {
        return Err(WalError::corrupt(
            file,
            0,
            "crc chain broken: segment does not follow the previous one",
        ));
    }
    let Decoded::Record(framed) = record::decode(data, 0, tag, prev_crc) else {
        return Err(WalError::corrupt(file, 0, "bad segment header"));
    };
    let header = match payload::decode(
        framed.record_type,
        data,
        framed.payload_start,
        framed.payload_end,
    ) {
        Ok(Record::SegmentHeader(h)) => h,
        Ok(_) => {
            return Err(WalError::corrupt(
                file,
                0,
                "segment does not start with a header",
            ));
        }
        Err(reason) => return Err(WalError::corrupt(file, 0, reason)),
    };
    let expected = SegmentHeader {
        sequence: name.sequence,
        first_index: name.first_index,
        prev_crc,
    };
    if header != expected {
        return Err(WalError::corrupt(
            file,
            0,
            format!("segment header {header:?} does not match the file name"),
        ));
    }
    state.crc = framed.crc;
    Ok((framed.next_offset, framed.starts_unit))
}

fn read_segment<S: Storage>(
    storage: &S,
    name: &SegmentName,
    is_first: bool,
    is_last: bool,
    state: &mut State,
) -> Result<Tail> {
    let file = name.file_name();
    let data = storage
        .read_all(&file)
        .map_err(|e| WalError::io("read", &file, None, e))?;
    // The writer appends to the last segment: keep no view of its bytes.
    let data = if is_last {
        Bytes::copy_from_slice(&data)
    } else {
        data
    };
    let tag = tag_of(name, &data);
    let (mut offset, marks_units) = read_header(name, &file, &data, tag, state, is_first)?;
    loop {
        let tail = |torn| Tail {
            name: name.clone(),
            valid_end: offset as u64,
            crc: state.crc,
            tag,
            torn,
        };
        let decoded = record::decode(&data, offset, tag, state.crc);
        match decoded {
            Decoded::Record(framed) => {
                let record = payload::decode(
                    framed.record_type,
                    &data,
                    framed.payload_start,
                    framed.payload_end,
                )
                .map_err(|reason| WalError::corrupt(&file, offset as u64, reason))?;
                state
                    .apply(record)
                    .map_err(|reason| WalError::corrupt(&file, offset as u64, reason))?;
                state.crc = framed.crc;
                assert!(
                    framed.next_offset > offset,
                    "wal recovery: record at {offset} of {file} does not advance"
                );
                offset = framed.next_offset;
            }
            Decoded::Zero | Decoded::Stale => {
                let gap = Gap {
                    zeros: matches!(decoded, Decoded::Zero),
                    is_last,
                    marks_units,
                };
                return end_at(&data, offset, tag, gap, &file).map(tail);
            }
            Decoded::Damaged(damage)
                if is_last && record::is_torn(&data, offset, &damage, tag, marks_units) =>
            {
                return Ok(tail(Some((offset as u64, damage.reason))));
            }
            Decoded::Damaged(damage) => {
                return Err(WalError::corrupt(&file, offset as u64, damage.reason));
            }
        }
    }
}

/// Where a segment's records break off: zeros, or bytes that are not a
/// record of the segment (a recycled file's old ones), and what is known
/// of the segment.
#[derive(Clone, Copy)]
struct Gap {
    /// Zeros rather than old bytes.
    zeros: bool,
    /// In the last segment, where a torn write may be.
    is_last: bool,
    /// The segment marks its write units (see [`record::STARTS_WRITE_UNIT`]).
    marks_units: bool,
}

/// Where a segment's records break off at `offset` (see [`Gap`]): the end
/// of its log if no record of the segment follows. If one does, the bytes
/// at `offset` did not reach the disk. In the last segment that is a torn
/// write to cut off there, provided no later write unit starts after it (a
/// segment that marks its units), or, in one that does not, provided the
/// gap is zeros (etcd's rule); anything else is corruption.
fn end_at(
    data: &[u8],
    offset: usize,
    tag: u16,
    gap: Gap,
    file: &str,
) -> Result<Option<(u64, &'static str)>> {
    let after = record::after_break(data, offset + HEADER_BYTES, tag);
    let at = match after {
        After::Nothing => return Ok(None),
        After::OwnRecords(at) | After::LaterUnit(at) => at,
    };
    let torn = match (gap.is_last, gap.marks_units) {
        (false, _) => false,
        (true, true) => matches!(after, After::OwnRecords(_)),
        (true, false) => gap.zeros,
    };
    let offset = offset as u64;
    match (torn, gap.zeros) {
        (true, true) => Ok(Some((offset, "zero-filled record"))),
        (true, false) => Ok(Some((offset, "old bytes inside the last write"))),
        (false, true) => Err(WalError::corrupt(
            file,
            offset,
            "zero-filled record before data",
        )),
        (false, false) => Err(WalError::corrupt(
            file,
            offset,
            format!("record of another segment before a record of this one at {at}"),
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::payload::{encode_entry, encode_hard_state, encode_metadata, encode_segment_header};
    use crate::record::{RecordType, encode};
    use crate::storage::{SimConfig, SimStorage};
    use keel_kernel::raft::EntryType;

    /// Records of a hand-built segment.
    enum R {
        Header(u64, u64),
        Meta(u64),
        Entry(u64),
        Hs(u64),
        /// Every later record starts a write unit (a header so marked says
        /// the segment marks its units), until `Units(false)`.
        Units(bool),
    }

    /// Encodes `records` chained from `prev_crc`, tagged with the sequence
    /// of the header record (0 without one); returns bytes and last CRC.
    fn segment(records: &[R], prev_crc: u32) -> (Vec<u8>, u32) {
        let header = records.iter().find_map(|r| match r {
            R::Header(sequence, _) => Some(*sequence),
            _ => None,
        });
        let tag = header.map_or(0, record::segment_tag);
        segment_tagged(records, prev_crc, tag)
    }

    /// As `segment`, with every record tagged `tag`.
    fn segment_tagged(records: &[R], prev_crc: u32, tag: u16) -> (Vec<u8>, u32) {
        let mut buf = Vec::new();
        let mut crc = prev_crc;
        let mut starts_unit = false;
        for r in records {
            let frame = |record_type| record::Frame {
                record_type,
                tag,
                starts_unit,
            };
            crc = match r {
                R::Units(on) => {
                    starts_unit = *on;
                    continue;
                }
                R::Header(sequence, first_index) => {
                    let h = SegmentHeader {
                        sequence: *sequence,
                        first_index: *first_index,
                        prev_crc,
                    };
                    encode(&mut buf, frame(RecordType::SegmentHeader), crc, |b| {
                        encode_segment_header(b, &h)
                    })
                }
                R::Meta(cluster_id) => {
                    let m = Metadata {
                        cluster_id: *cluster_id,
                        node_id: 1,
                    };
                    encode(&mut buf, frame(RecordType::Metadata), crc, |b| {
                        encode_metadata(b, &m)
                    })
                }
                R::Entry(index) => {
                    let e = Entry {
                        term: 1,
                        index: *index,
                        entry_type: EntryType::Normal,
                        data: Bytes::new(),
                    };
                    encode(&mut buf, frame(RecordType::Entry), crc, |b| {
                        encode_entry(b, &e)
                    })
                }
                R::Hs(commit) => {
                    let hs = HardState {
                        term: 1,
                        vote: 0,
                        commit: *commit,
                    };
                    encode(&mut buf, frame(RecordType::HardState), crc, |b| {
                        encode_hard_state(b, &hs)
                    })
                }
            };
        }
        buf.resize(buf.len() + 64, 0);
        (buf, crc)
    }

    fn name(sequence: u64, first_index: u64) -> String {
        SegmentName {
            sequence,
            first_index,
        }
        .file_name()
    }

    fn recover_files(files: Vec<(String, Vec<u8>)>) -> Result<Recovered> {
        recover(&SimStorage::with_files(SimConfig::default(), files))
    }

    fn reason(result: Result<Recovered>) -> String {
        match result {
            Err(WalError::Corrupt { reason, .. }) => reason,
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn a_hand_built_log_recovers() {
        let (seg, _) = segment(
            &[
                R::Header(0, 1),
                R::Meta(5),
                R::Entry(1),
                R::Entry(2),
                R::Hs(2),
            ],
            0,
        );
        let rec = recover_files(vec![(name(0, 1), seg)]).unwrap();
        assert_eq!(
            (
                rec.metadata.cluster_id,
                rec.entries.len(),
                rec.hard_state.commit
            ),
            (5, 2, 2)
        );
    }

    #[test]
    fn every_log_level_error_is_reported() {
        let cases: Vec<(Vec<R>, &str)> = vec![
            (
                vec![R::Header(0, 1), R::Meta(5), R::Meta(6)],
                "metadata conflict",
            ),
            (
                vec![R::Header(0, 1), R::Meta(5), R::Header(0, 1)],
                "segment header inside a segment",
            ),
            (
                vec![R::Header(0, 1), R::Meta(5), R::Entry(0)],
                "entry with index 0",
            ),
            (
                vec![R::Header(0, 1), R::Meta(5), R::Entry(1), R::Entry(3)],
                "gap in the log",
            ),
            (vec![R::Header(0, 1), R::Entry(1)], "no metadata record"),
            (
                vec![R::Header(0, 2), R::Meta(5)],
                "does not match the file name",
            ),
            (vec![R::Meta(5)], "segment does not start with a header"),
        ];
        for (records, expected) in cases {
            let (seg, _) = segment(&records, 0);
            let got = reason(recover_files(vec![(name(0, 1), seg)]));
            assert!(got.contains(expected), "{got} should contain {expected}");
        }
    }

    /// Overwrites the start of `old` (a recycled file's earlier content)
    /// with `new`, keeping the 64 zero bytes `segment` ends with.
    fn recycled(old: &[u8], new: &[u8]) -> Vec<u8> {
        let mut file = old.to_vec();
        file[..new.len()].copy_from_slice(new);
        file
    }

    /// A file's earlier content: segment 3's records, many of them.
    fn old_content() -> Vec<u8> {
        let records: Vec<R> = [R::Header(3, 1), R::Meta(5)]
            .into_iter()
            .chain((1..200).map(R::Entry))
            .collect();
        segment(&records, 9).0
    }

    #[test]
    fn a_sealed_segment_ends_at_zeros_or_another_segments_records() {
        let (first, crc) = segment(&[R::Header(10, 1), R::Meta(5), R::Entry(1)], 0);
        let (second, _) = segment(&[R::Header(11, 2), R::Meta(5), R::Entry(2)], crc);
        let first = recycled(&old_content(), &first);
        let rec = recover_files(vec![
            (name(10, 1), first.clone()),
            (name(11, 2), second.clone()),
        ]);
        assert_eq!(rec.unwrap().entries.len(), 2);
        // Without the zeros, old bytes follow the last new record at once.
        let (bare, _) = segment(&[R::Header(10, 1), R::Meta(5), R::Entry(1)], 0);
        let tight = recycled(&old_content(), &bare[..bare.len() - 64]);
        let rec = recover_files(vec![(name(10, 1), tight), (name(11, 2), second)]);
        assert_eq!(rec.unwrap().entries.len(), 2);
    }

    #[test]
    fn a_record_of_the_segment_after_its_end_is_corruption() {
        let (head, _) = segment(&[R::Header(0, 1), R::Meta(5)], 0);
        let (first, crc) = segment(&[R::Header(0, 1), R::Meta(5), R::Entry(1)], 0);
        let entry = first[head.len() - 64..first.len() - 64].to_vec();
        let (second, _) = segment(&[R::Header(1, 2), R::Meta(5), R::Entry(2)], crc);
        // Zeros, then a record of this segment: an unwritten gap.
        let mut gap = first.clone();
        gap.extend_from_slice(&entry);
        let got = reason(recover_files(vec![
            (name(0, 1), gap),
            (name(1, 2), second.clone()),
        ]));
        assert_eq!(got, "zero-filled record before data");
        // An old record, then a record of this segment.
        let mut file = recycled(&old_content(), &first[..first.len() - 64]);
        let at = file.len() - 200;
        let at = at - at % 8;
        file[at..at + entry.len()].copy_from_slice(&entry);
        let got = reason(recover_files(vec![
            (name(0, 1), file),
            (name(1, 2), second),
        ]));
        assert!(
            got.starts_with("record of another segment before a record of this one at "),
            "{got}"
        );
    }

    #[test]
    fn the_last_segment_ends_cleanly_before_old_records() {
        let (seg, _) = segment(&[R::Header(4, 1), R::Meta(5), R::Entry(1), R::Entry(2)], 0);
        for new in [&seg[..], &seg[..seg.len() - 64]] {
            let file = recycled(&old_content(), new);
            let storage = SimStorage::with_files(SimConfig::default(), vec![(name(4, 1), file)]);
            let scan = scan(&storage, None).unwrap();
            assert_eq!(scan.recovered.entries.len(), 2);
            assert_eq!(
                (scan.tail.torn, scan.tail.tag),
                (None, record::segment_tag(4))
            );
        }
    }

    #[test]
    fn a_segment_written_before_tags_reads_with_tag_zero() {
        let (first, crc) = segment_tagged(&[R::Header(0, 1), R::Meta(5), R::Entry(1)], 0, 0);
        let (second, _) = segment_tagged(&[R::Header(1, 2), R::Meta(5), R::Entry(2)], crc, 0);
        let storage = SimStorage::with_files(
            SimConfig::default(),
            vec![(name(0, 1), first), (name(1, 2), second)],
        );
        let scan = scan(&storage, None).unwrap();
        assert_eq!((scan.recovered.entries.len(), scan.tail.tag), (2, 0));
    }

    #[test]
    fn the_last_segment_may_end_in_a_torn_record() {
        let (mut seg, _) = segment(&[R::Header(0, 1), R::Meta(5), R::Entry(1), R::Entry(2)], 0);
        let end = seg.len() - 64;
        // Zero the last entry's term: a write torn before it reached the disk.
        seg[end - 20..end - 12].fill(0);
        let scan = scan(
            &SimStorage::with_files(SimConfig::default(), vec![(name(0, 1), seg)]),
            None,
        )
        .unwrap();
        assert_eq!(scan.recovered.entries.len(), 1);
        assert!(scan.tail.torn.is_some());
        assert_eq!(scan.last_index, 1);
    }

    /// A recycled segment `sequence` that marks its units: entries 1 and 2,
    /// then a unit of entries 3-5 (entry 4 starting a unit of its own with
    /// `fourth_starts_unit`), whose entry 3 missed the disk: the file holds
    /// a record of another segment there. Returns the file and the offset
    /// of entry 3.
    fn unit_torn_out_of_order(sequence: u64, fourth_starts_unit: bool) -> (Vec<u8>, usize) {
        let opening = [R::Units(true), R::Header(sequence, 1), R::Units(false)];
        let before: Vec<R> = opening
            .into_iter()
            .chain([R::Meta(5), R::Entry(1), R::Entry(2)])
            .collect();
        let at = segment(&before, 0).0.len() - 64;
        let records: Vec<R> = before
            .into_iter()
            .chain([R::Units(true), R::Entry(3), R::Units(fourth_starts_unit)])
            .chain([R::Entry(4), R::Units(false), R::Entry(5)])
            .collect();
        let (seg, _) = segment(&records, 0);
        let mut file = recycled(&old_content(), &seg[..seg.len() - 64]);
        let other_tag = record::segment_tag(sequence + 1);
        file[at + 6..at + 8].copy_from_slice(&other_tag.to_le_bytes());
        (file, at)
    }

    /// Options with segments of 16 KiB (the repaired file is preallocated
    /// to that).
    fn small_options() -> crate::WalOptions {
        crate::WalOptions {
            segment_size_bytes: 16 << 10,
            ..crate::WalOptions::default()
        }
    }

    #[test]
    fn a_last_write_persisted_out_of_order_is_a_torn_tail() {
        let (file, at) = unit_torn_out_of_order(4, false);
        let storage = SimStorage::with_files(SimConfig::default(), vec![(name(4, 1), file)]);
        let scan = scan(&storage, None).unwrap();
        assert_eq!(scan.recovered.entries.len(), 2);
        assert_eq!(
            scan.tail.torn,
            Some((at as u64, "old bytes inside the last write"))
        );
        // The writer repairs it and goes on from entry 3.
        let (mut wal, rec) = crate::Wal::open(storage.clone(), small_options()).unwrap();
        assert_eq!(rec.entries.len(), 2);
        let entry = Entry {
            term: 1,
            index: 3,
            entry_type: EntryType::Normal,
            data: Bytes::from_static(b"again"),
        };
        wal.append(&[entry], None).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let names = storage.list().unwrap();
        assert!(
            names
                .iter()
                .any(|n| n.ends_with(crate::segment::BROKEN_SUFFIX))
        );
        assert_eq!(recover(&storage).unwrap().entries.len(), 3);
    }

    #[test]
    fn a_later_unit_after_old_bytes_is_corruption() {
        let (file, at) = unit_torn_out_of_order(4, true);
        let got = reason(recover_files(vec![(name(4, 1), file)]));
        assert!(
            got.starts_with("record of another segment before a record of this one at "),
            "{got}"
        );
        // In a sealed segment even the torn unit's own records are.
        let (file, _) = unit_torn_out_of_order(4, false);
        let (next, _) = segment(&[R::Header(5, 3), R::Meta(5)], 0);
        let err = recover_files(vec![(name(4, 1), file), (name(5, 3), next)]).unwrap_err();
        assert!(
            matches!(&err, WalError::Corrupt { offset, .. } if *offset == at as u64),
            "{err:?}"
        );
    }

    #[test]
    fn zeros_before_a_later_unit_are_corruption_in_a_segment_that_marks_units() {
        let records = [
            R::Units(true),
            R::Header(4, 1),
            R::Units(false),
            R::Meta(5),
            R::Entry(1),
        ];
        let (head, crc) = segment(&records, 0);
        let at = head.len() - 64;
        let later = |starts_unit| {
            let tail = [R::Units(starts_unit), R::Entry(2)];
            let (bytes, _) = segment_tagged(&tail, crc, record::segment_tag(4));
            let mut file = head[..at].to_vec();
            file.resize(at + 512, 0);
            file.extend_from_slice(&bytes);
            file
        };
        let got = reason(recover_files(vec![(name(4, 1), later(true))]));
        assert_eq!(got, "zero-filled record before data");
        // The torn unit's own later record: a torn tail, cut at the zeros.
        let storage =
            SimStorage::with_files(SimConfig::default(), vec![(name(4, 1), later(false))]);
        let scan = scan(&storage, None).unwrap();
        assert_eq!(scan.tail.torn, Some((at as u64, "zero-filled record")));
    }
}
