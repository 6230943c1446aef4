//! Record framing: every WAL record is
//!
//! ```text
//! offset 0  u32 LE  payload length in bytes
//! offset 4  u8      record type (never 0, so zero-filled space is not a record)
//! offset 5  u8      bits 0-2: padding length (0..=7); bit 7: the record
//!                   starts a write unit (see below); other bits 0
//! offset 6  u16 LE  segment tag: 1 + the segment's sequence modulo 65,535
//!                   (see [`segment_tag`]; 0 in segments written before tags)
//! offset 8  u32 LE  CRC32 of bytes 0..8 and the payload, seeded with the CRC
//!                   of the previous record (chained across records and segments)
//! offset 12 payload, then `padding` zero bytes so the record ends 8-aligned
//! ```
//!
//! Records start 8-byte aligned, so the first 8 bytes (length, type and tag)
//! never straddle a 512-byte sector and cannot be torn by a sector-atomic
//! disk. The chained CRC means a stale record left over from an older file,
//! or a record moved from elsewhere, fails the check even though its own
//! bytes are intact.
//!
//! The tag tells where a segment's records end when its file is recycled
//! (see [`crate::purge`]): past the end lie the records of the file's
//! earlier use, which carry another segment's tag ([`Decoded::Stale`]), so
//! recovery stops there; a record with this segment's tag after that point
//! ([`first_of_segment`]) means the log was damaged, not merely ended.
//! Segments written before the tag existed hold 0 there.
//!
//! A record starts a write unit, and carries [`STARTS_WRITE_UNIT`], when the
//! log encoded it while every byte before it in the segment was durable
//! (fsynced) and nothing was buffered ahead of it; every segment header
//! carries the flag too, which is how recovery knows that a segment marks
//! its units (segments written before the flag existed do not). So when the
//! bytes at some offset of the last segment are missing and no unit starts
//! after them, nothing written after them was written once they were
//! durable: they belong to writes no sync acknowledged, a torn tail, even
//! if the disk persisted some later sectors and not earlier ones
//! (`after_break`). A unit start after them proves they were durable:
//! corruption.

use crc32fast::Hasher;
use std::ops::Range;

/// Bytes of the record header.
pub const HEADER_BYTES: usize = 12;
/// Records start and end on multiples of this many bytes.
pub const ALIGN_BYTES: usize = 8;
/// Largest payload a record may carry (256 MiB); larger entries are refused
/// when appended and treated as damage when read.
pub const MAX_PAYLOAD_BYTES: usize = 256 << 20;
/// Sector size assumed when telling a torn write from corruption (etcd: 512).
pub const SECTOR_BYTES: usize = 512;
/// Bit of header byte 5 set on the first record of a write unit (see the
/// module documentation).
pub const STARTS_WRITE_UNIT: u8 = 0x80;
/// Bits of header byte 5 that hold the padding length.
const PADDING_MASK: u8 = 0x07;

/// The kinds of record in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    /// First record of every segment: sequence, first index, previous CRC.
    SegmentHeader = 1,
    /// Cluster id and node id of the member owning the log.
    Metadata = 2,
    /// One Raft log entry.
    Entry = 3,
    /// Raft hard state (term, vote, commit).
    HardState = 4,
    /// A state-machine snapshot was taken at (index, term).
    SnapshotMarker = 5,
}

impl RecordType {
    /// Decodes the type byte; `None` for an unknown value (including 0).
    pub fn from_u8(byte: u8) -> Option<RecordType> {
        match byte {
            1 => Some(RecordType::SegmentHeader),
            2 => Some(RecordType::Metadata),
            3 => Some(RecordType::Entry),
            4 => Some(RecordType::HardState),
            5 => Some(RecordType::SnapshotMarker),
            _ => None,
        }
    }
}

/// The tag every record of segment `sequence` carries: 1 + `sequence`
/// modulo 65,535, so never 0 (the tag of segments written before tags
/// existed, and a common value in payloads). Segments whose sequences
/// differ by less than 65,535 never share a tag.
pub fn segment_tag(sequence: u64) -> u16 {
    (sequence % 65_535) as u16 + 1
}

/// Zero bytes that follow a payload of `payload_bytes` bytes.
pub fn padding_bytes(payload_bytes: usize) -> usize {
    (ALIGN_BYTES - (HEADER_BYTES + payload_bytes) % ALIGN_BYTES) % ALIGN_BYTES
}

/// How a record is framed: its type, the tag of its segment (see
/// [`segment_tag`]) and whether it starts a write unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The record's type.
    pub record_type: RecordType,
    /// The segment's tag.
    pub tag: u16,
    /// Sets [`STARTS_WRITE_UNIT`].
    pub starts_unit: bool,
}

/// Appends one framed record to `buf`; `write_payload` appends the
/// payload. Returns the record's CRC (the seed of the next record's CRC).
/// `buf.len()` must be 8-aligned relative to the record's file offset; the
/// payload must not exceed [`MAX_PAYLOAD_BYTES`] (checked by the caller).
pub fn encode(
    buf: &mut Vec<u8>,
    frame: Frame,
    prev_crc: u32,
    write_payload: impl FnOnce(&mut Vec<u8>),
) -> u32 {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_BYTES]);
    write_payload(buf);
    let payload_bytes = buf.len() - start - HEADER_BYTES;
    assert_payload_fits(payload_bytes);
    let pad = padding_bytes(payload_bytes);
    buf[start..start + 4].copy_from_slice(&(payload_bytes as u32).to_le_bytes());
    buf[start + 4] = frame.record_type as u8;
    let unit_flag = if frame.starts_unit {
        STARTS_WRITE_UNIT
    } else {
        0
    };
    buf[start + 5] = pad as u8 | unit_flag;
    buf[start + 6..start + 8].copy_from_slice(&frame.tag.to_le_bytes());
    let mut hasher = Hasher::new_with_initial(prev_crc);
    hasher.update(&buf[start..start + 8]);
    hasher.update(&buf[start + HEADER_BYTES..]);
    let crc = hasher.finalize();
    buf[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    buf.resize(buf.len() + pad, 0);
    if !(buf.len() - start).is_multiple_of(ALIGN_BYTES) {
        broken(format_args!(
            "encoded record of {payload_bytes} payload bytes is not 8-aligned"
        ));
    }
    debug_assert!(
        reads_back(&buf[start..], frame, prev_crc, crc),
        "wal record: an encoded {:?} record does not decode to itself",
        frame.record_type
    );
    crc
}

/// Asserts, before a record is written, that its payload of
/// `payload_bytes` bytes fits the length field's bound
/// ([`MAX_PAYLOAD_BYTES`]; the log refuses larger entries with an error
/// first, so a larger one here is a bug). Panics otherwise: a record that
/// recovery would take for damage must never reach the disk.
#[inline(always)]
fn assert_payload_fits(payload_bytes: usize) {
    if payload_bytes > MAX_PAYLOAD_BYTES {
        broken(format_args!(
            "payload of {payload_bytes} bytes exceeds {MAX_PAYLOAD_BYTES}"
        ));
    }
}

/// Stops the process on a broken rule of record framing (see the callers'
/// checks): kept out of line, so each check costs a comparison and a branch
/// where records are encoded and decoded.
#[cold]
#[inline(never)]
#[track_caller]
fn broken(rule: std::fmt::Arguments<'_>) -> ! {
    panic!("wal record: {rule}")
}

/// True when `record` (one encoded record, from its header to the end of
/// its padding) decodes as a record framed by `frame`, chained to
/// `prev_crc`, with CRC `crc`, that ends where `record` ends. O(record
/// bytes): checked in debug builds only.
fn reads_back(record: &[u8], frame: Frame, prev_crc: u32, crc: u32) -> bool {
    match decode(record, 0, frame.tag, prev_crc) {
        Decoded::Record(framed) => {
            framed.record_type == frame.record_type
                && framed.starts_unit == frame.starts_unit
                && framed.crc == crc
                && framed.next_offset == record.len()
        }
        _ => false,
    }
}

/// A record read back by [`decode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framed {
    /// The record's type.
    pub record_type: RecordType,
    /// Byte range of the payload in the decoded buffer.
    pub payload_start: usize,
    /// End (exclusive) of the payload.
    pub payload_end: usize,
    /// The record's CRC (seed of the next one).
    pub crc: u32,
    /// Offset of the next record.
    pub next_offset: usize,
    /// The record starts a write unit ([`STARTS_WRITE_UNIT`]).
    pub starts_unit: bool,
}

/// Why [`decode`] found no valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// What is wrong, in etcd's words where etcd has them.
    pub reason: &'static str,
    /// End (exclusive, clamped to the buffer) of the bytes the damaged record
    /// claims to occupy.
    pub extent_end: usize,
    /// The record claims bytes beyond the end of the buffer (or more than
    /// [`MAX_PAYLOAD_BYTES`]). The writer only writes records inside a
    /// durably allocated file, so this is never a torn write.
    pub past_end: bool,
}

/// Outcome of decoding at one offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A valid record.
    Record(Framed),
    /// The header is all zero: unwritten (preallocated) space.
    Zero,
    /// No record of this segment starts here: the header carries another
    /// segment's tag (bytes left from a recycled file's earlier use), or
    /// fewer than [`HEADER_BYTES`] non-zero bytes are left in the file.
    Stale,
    /// Bytes that are not a valid record.
    Damaged(Damage),
}

/// Decodes the record at `offset` of `data` (8-aligned) of the segment
/// tagged `tag`, with the CRC chain seed `prev_crc`. Reads at most the
/// record's own bytes; never allocates.
///
/// Panics if `offset` is not 8-aligned (the reader's bug, not the data's).
pub fn decode(data: &[u8], offset: usize, tag: u16, prev_crc: u32) -> Decoded {
    if !offset.is_multiple_of(ALIGN_BYTES) {
        broken(format_args!("decoding at unaligned offset {offset}"));
    }
    let rest = data.get(offset..).unwrap_or(&[]);
    if rest.len() < HEADER_BYTES {
        // The writer never starts a record it cannot finish in the file.
        if rest.iter().all(|b| *b == 0) {
            return Decoded::Zero;
        }
        return Decoded::Stale;
    }
    let header = &rest[..HEADER_BYTES];
    if header.iter().all(|b| *b == 0) {
        return Decoded::Zero;
    }
    if header[6..8] != tag.to_le_bytes() {
        return Decoded::Stale;
    }
    let payload_bytes = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let pad = usize::from(header[5] & PADDING_MASK);
    let claimed = HEADER_BYTES
        .saturating_add(payload_bytes)
        .saturating_add(pad);
    let extent_end = offset.saturating_add(claimed).min(data.len());
    let past_end = claimed > rest.len() || payload_bytes > MAX_PAYLOAD_BYTES;
    let damaged = |reason| {
        Decoded::Damaged(Damage {
            reason,
            extent_end,
            past_end,
        })
    };
    let Some(record_type) = RecordType::from_u8(header[4]) else {
        return damaged("unknown record type");
    };
    if payload_bytes > MAX_PAYLOAD_BYTES {
        return damaged("record length too large");
    }
    if !padding_fits(header[5], payload_bytes) {
        return damaged("bad record padding");
    }
    if claimed > rest.len() {
        return damaged("unexpected end of file");
    }
    let payload = &rest[HEADER_BYTES..HEADER_BYTES + payload_bytes];
    let mut hasher = Hasher::new_with_initial(prev_crc);
    hasher.update(&header[..8]);
    hasher.update(payload);
    let crc = hasher.finalize();
    if crc.to_le_bytes() != header[8..12] {
        return damaged("crc mismatch");
    }
    if rest[HEADER_BYTES + payload_bytes..claimed]
        .iter()
        .any(|b| *b != 0)
    {
        return damaged("bad record padding");
    }
    let (payload_end, next_offset) = (offset + HEADER_BYTES + payload_bytes, offset + claimed);
    assert_framed(offset, payload_end, next_offset, data.len());
    Decoded::Record(Framed {
        record_type,
        payload_start: offset + HEADER_BYTES,
        payload_end,
        crc,
        next_offset,
        starts_unit: header[5] & STARTS_WRITE_UNIT != 0,
    })
}

/// Asserts, after the record at `offset` of a buffer of `data_bytes` bytes
/// was decoded with its payload ending at `payload_end` and the next record
/// at `next_offset`, that what it tells the reader lies where the reader
/// may look: a payload after the header, the next record 8-aligned after
/// it and inside the buffer. Panics otherwise, so a decoding bug never
/// hands recovery bytes outside the record (or makes it loop on one
/// offset). A few comparisons per record: inlined into [`decode`].
#[inline(always)]
fn assert_framed(offset: usize, payload_end: usize, next_offset: usize, data_bytes: usize) {
    let payload_start = offset + HEADER_BYTES;
    let inside = payload_start <= payload_end
        && payload_end <= next_offset
        && next_offset <= data_bytes
        && next_offset.is_multiple_of(ALIGN_BYTES);
    if !inside {
        broken(format_args!(
            "record at {offset} decoded as payload {payload_start}..{payload_end}, \
             next record at {next_offset}, in {data_bytes} bytes"
        ));
    }
}

/// True when header byte 5 (`flags`) holds the padding a payload of
/// `payload_bytes` needs, and no bits but [`STARTS_WRITE_UNIT`] besides.
fn padding_fits(flags: u8, payload_bytes: usize) -> bool {
    flags & !(PADDING_MASK | STARTS_WRITE_UNIT) == 0
        && usize::from(flags & PADDING_MASK) == padding_bytes(payload_bytes)
}

/// True when an 8-aligned `at` in `data` holds what looks like the header
/// of a record of the segment tagged `tag`: a known type, that tag, the
/// padding its length implies, and the whole record inside `data`. (The CRC
/// cannot be checked without the record before it.)
pub fn looks_like_record_of(data: &[u8], at: usize, tag: u16) -> bool {
    let Some(header) = data.get(at..at.saturating_add(HEADER_BYTES)) else {
        return false;
    };
    let payload_bytes = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    RecordType::from_u8(header[4]).is_some()
        && header[6..8] == tag.to_le_bytes()
        && payload_bytes <= MAX_PAYLOAD_BYTES
        && padding_fits(header[5], payload_bytes)
        && at + HEADER_BYTES + payload_bytes + padding_bytes(payload_bytes) <= data.len()
}

/// The 8-aligned offsets at or after `from` that
/// [look like records](looks_like_record_of) of the segment tagged `tag`,
/// ascending: evidence that bytes of this segment follow a point where its
/// log seemed to end. Lazy: one pass over the rest of `data` at most.
pub(crate) fn records_of_segment(
    data: &[u8],
    from: usize,
    tag: u16,
) -> impl Iterator<Item = usize> + '_ {
    let start = from.div_ceil(ALIGN_BYTES) * ALIGN_BYTES;
    (start..data.len())
        .step_by(ALIGN_BYTES)
        .filter(move |at| looks_like_record_of(data, *at, tag))
}

/// The first of `records_of_segment`, if any.
pub fn first_of_segment(data: &[u8], from: usize, tag: u16) -> Option<usize> {
    records_of_segment(data, from, tag).next()
}

/// True when the header at `at` carries [`STARTS_WRITE_UNIT`] (false past
/// the end of `data`).
fn starts_unit_at(data: &[u8], at: usize) -> bool {
    data.get(at + 5)
        .is_some_and(|flags| flags & STARTS_WRITE_UNIT != 0)
}

/// What follows a point at or after which a segment's log seems to end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum After {
    /// No record of the segment.
    Nothing,
    /// Records of the segment, the first at this offset, none starting a
    /// write unit: in the last segment, the torn unit's own later sectors.
    OwnRecords(usize),
    /// A record of the segment starting a write unit, at this offset: the
    /// bytes before it were durable when it was written.
    LaterUnit(usize),
}

/// What follows `from` in the segment tagged `tag` (see [`After`]), in one
/// pass over the rest of `data` at most.
pub(crate) fn after_break(data: &[u8], from: usize, tag: u16) -> After {
    let mut own = records_of_segment(data, from, tag);
    let Some(first) = own.next() else {
        return After::Nothing;
    };
    match std::iter::once(first)
        .chain(own)
        .find(|at| starts_unit_at(data, *at))
    {
        Some(unit) => After::LaterUnit(unit),
        None => After::OwnRecords(first),
    }
}

/// True when the damaged record at `offset` of the segment tagged `tag`
/// looks like a write that was cut short rather than corrupted data.
///
/// In a segment that `marks_units`: when no write unit starts after its
/// header (looked for from there, not from the end its perhaps damaged
/// length claims). Records of the segment may follow: they are the torn
/// unit's own later sectors. A length past the end proves nothing either:
/// the header may be a recycled file's old bytes that carry this segment's
/// tag by chance. So damage inside the last unit is taken for torn: the log
/// alone cannot tell an unacknowledged write whose sectors reached the disk
/// out of order from an acknowledged one damaged since (etcd makes the same
/// choice for a zero-filled sector).
///
/// In an older segment: never for a record claiming bytes past the end of
/// the file; otherwise when no record of this segment follows the bytes it
/// claims (the rest of the write never reached the disk: what follows is
/// zeros, or a recycled file's older records), or one of its sector-aligned
/// chunks is entirely zero (a sector that was not written; etcd's rule).
pub fn is_torn(data: &[u8], offset: usize, damage: &Damage, tag: u16, marks_units: bool) -> bool {
    if marks_units {
        return !matches!(
            after_break(data, offset + HEADER_BYTES, tag),
            After::LaterUnit(_)
        );
    }
    if damage.past_end {
        return false;
    }
    let end = damage.extent_end.max(offset).min(data.len());
    // The record's own sectors first: a scan of the rest of the file may
    // read up to a whole segment.
    sector_chunks(offset, end).any(|chunk| data[chunk].iter().all(|b| *b == 0))
        || first_of_segment(data, end, tag).is_none()
}

/// The file offsets `start..end` cut where [`SECTOR_BYTES`]-aligned sectors
/// begin: the parts of a write that each land in one sector, in order.
pub(crate) fn sector_chunks(start: usize, end: usize) -> impl Iterator<Item = Range<usize>> {
    let mut at = start;
    std::iter::from_fn(move || {
        (at < end).then(|| {
            let chunk = at..((at / SECTOR_BYTES + 1) * SECTOR_BYTES).min(end);
            at = chunk.end;
            chunk
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TAG: u16 = 3;

    /// The frame of an entry record of the segment tagged `tag`.
    fn entry(tag: u16) -> Frame {
        Frame {
            record_type: RecordType::Entry,
            tag,
            starts_unit: false,
        }
    }

    /// A recycled file's earlier content: records of another segment,
    /// at least 4 KiB of them.
    fn recycled_file() -> Vec<u8> {
        let mut old = Vec::new();
        let mut crc = 0;
        while old.len() < 4096 {
            crc = encode(&mut old, entry(TAG + 7), crc, |b| {
                b.extend_from_slice(&[9; 100])
            });
        }
        old
    }

    fn one(payload: &[u8], prev_crc: u32) -> (Vec<u8>, u32) {
        let mut buf = Vec::new();
        let crc = encode(&mut buf, entry(TAG), prev_crc, |b| {
            b.extend_from_slice(payload)
        });
        (buf, crc)
    }

    #[test]
    fn round_trip_every_length_is_aligned() {
        for len in 0..40 {
            let payload: Vec<u8> = (0..len as u8).collect();
            let (buf, crc) = one(&payload, 7);
            assert_eq!(buf.len() % ALIGN_BYTES, 0);
            let Decoded::Record(f) = decode(&buf, 0, TAG, 7) else {
                panic!("len {len}")
            };
            assert_eq!(&buf[f.payload_start..f.payload_end], &payload[..]);
            assert_eq!(
                (f.crc, f.next_offset, f.record_type),
                (crc, buf.len(), RecordType::Entry)
            );
        }
    }

    #[test]
    fn record_types_round_trip() {
        for t in 1..=5 {
            assert_eq!(RecordType::from_u8(t).map(|r| r as u8), Some(t));
        }
        assert_eq!(RecordType::from_u8(0), None);
        assert_eq!(RecordType::from_u8(6), None);
    }

    #[test]
    fn chained_crc_rejects_a_record_with_another_predecessor() {
        let (buf, _) = one(b"payload", 1);
        assert_eq!(
            decode(&buf, 0, TAG, 2),
            Decoded::Damaged(Damage {
                reason: "crc mismatch",
                extent_end: buf.len(),
                past_end: false,
            })
        );
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let (buf, _) = one(b"some entry data", 9);
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                !matches!(decode(&bad, 0, TAG, 9), Decoded::Record(_)),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn zero_space_truncation_and_bad_headers() {
        assert_eq!(decode(&[0; 64], 0, TAG, 0), Decoded::Zero);
        assert_eq!(decode(&[0; 4], 0, TAG, 0), Decoded::Zero);
        assert_eq!(decode(&[1, 0, 0], 0, TAG, 0), Decoded::Stale);
        let (buf, _) = one(b"0123456789", 0);
        assert!(
            matches!(decode(&buf[..buf.len() - 1], 0, TAG, 0), Decoded::Damaged(d) if d.reason == "unexpected end of file")
        );
        let mut bad = buf.clone();
        bad[4] = 77;
        assert!(
            matches!(decode(&bad, 0, TAG, 0), Decoded::Damaged(d) if d.reason == "unknown record type")
        );
        let mut bad = buf.clone();
        bad[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            matches!(decode(&bad, 0, TAG, 0), Decoded::Damaged(d) if d.reason == "record length too large")
        );
        let mut bad = buf.clone();
        bad[5] = 3;
        assert!(
            matches!(decode(&bad, 0, TAG, 0), Decoded::Damaged(d) if d.reason == "bad record padding")
        );
        let mut bad = buf.clone();
        bad[6] = 1;
        assert_eq!(decode(&bad, 0, TAG, 0), Decoded::Stale);
    }

    #[test]
    fn torn_tail_versus_corruption() {
        let (mut buf, crc) = one(&[5; 100], 0);
        let first_end = buf.len();
        encode(&mut buf, entry(TAG), crc, |b| {
            b.extend_from_slice(&[6; 100])
        });
        let whole = buf.len();
        buf.resize(4096, 0);
        // The second record torn at any byte is a torn tail (or, cut
        // inside its tag, no record of this segment at all).
        for cut in first_end + 1..first_end + 7 {
            let mut torn = buf.clone();
            torn[cut..whole].fill(0);
            assert_eq!(decode(&torn, first_end, TAG, crc), Decoded::Stale);
        }
        for cut in first_end + 7..whole {
            let mut torn = buf.clone();
            torn[cut..whole].fill(0);
            let Decoded::Damaged(d) = decode(&torn, first_end, TAG, crc) else {
                panic!("cut {cut}")
            };
            assert!(is_torn(&torn, first_end, &d, TAG, false), "cut {cut}");
        }
        // A length running past the end of the file is never torn.
        let mut long = buf.clone();
        long[first_end + 1] = 0x40;
        let Decoded::Damaged(d) = decode(&long, first_end, TAG, crc) else {
            panic!()
        };
        assert!(d.past_end && !is_torn(&long, first_end, &d, TAG, false));
        // A flipped bit in the first record, with a record after it, is not.
        let mut flipped = buf.clone();
        flipped[20] ^= 4;
        let Decoded::Damaged(d) = decode(&flipped, 0, TAG, 0) else {
            panic!()
        };
        assert!(!is_torn(&flipped, 0, &d, TAG, false));
    }

    #[test]
    fn a_record_of_another_segment_is_stale_not_damage() {
        let mut buf = Vec::new();
        encode(&mut buf, entry(TAG + 1), 0, |b| b.extend_from_slice(b"old"));
        assert_eq!(decode(&buf, 0, TAG, 0), Decoded::Stale);
        assert!(matches!(decode(&buf, 0, TAG + 1, 0), Decoded::Record(_)));
        assert_eq!(
            (segment_tag(0), segment_tag(65_534), segment_tag(65_535)),
            (1, 65_535, 1)
        );
    }

    #[test]
    fn finds_the_first_record_of_the_segment_after_a_point() {
        let mut buf = vec![0xEE; 64];
        let crc = encode(&mut buf, entry(TAG + 1), 0, |b| {
            b.extend_from_slice(&[1; 20])
        });
        let ours = buf.len();
        encode(&mut buf, entry(TAG), crc, |b| b.extend_from_slice(&[2; 20]));
        assert_eq!(first_of_segment(&buf, 0, TAG), Some(ours));
        assert_eq!(first_of_segment(&buf, ours - 3, TAG), Some(ours));
        assert_eq!(first_of_segment(&buf, ours + 1, TAG), None);
        // A header whose record would run past the data is not one.
        assert_eq!(first_of_segment(&buf[..buf.len() - 8], 0, TAG), None);
        assert!(looks_like_record_of(&buf, ours, TAG) && !looks_like_record_of(&buf, 64, TAG));
    }

    #[test]
    fn torn_tail_over_a_recycled_files_old_records() {
        let old = recycled_file();
        let (new, crc) = one(&[5; 100], 0);
        let first_end = new.len();
        let mut second = Vec::new();
        encode(&mut second, entry(TAG), crc, |b| {
            b.extend_from_slice(&[6; 300])
        });
        let mut file = old.clone();
        file[..first_end].copy_from_slice(&new);
        // The second record torn at any byte after its header: its tail
        // holds the old bytes, and nothing of this segment follows.
        for cut in first_end + HEADER_BYTES..first_end + second.len() {
            let mut torn = file.clone();
            torn[first_end..cut].copy_from_slice(&second[..cut - first_end]);
            let Decoded::Damaged(d) = decode(&torn, first_end, TAG, crc) else {
                panic!("cut {cut}")
            };
            assert!(is_torn(&torn, first_end, &d, TAG, false), "cut {cut}");
        }
        // A flipped bit in the first record, with the second after it, is
        // corruption.
        let mut flipped = file.clone();
        flipped[first_end..first_end + second.len()].copy_from_slice(&second);
        flipped[20] ^= 4;
        let Decoded::Damaged(d) = decode(&flipped, 0, TAG, 0) else {
            panic!()
        };
        assert!(!is_torn(&flipped, 0, &d, TAG, false));
    }

    #[test]
    fn the_unit_flag_round_trips_and_other_bits_are_damage() {
        for starts_unit in [false, true] {
            let mut buf = Vec::new();
            let frame = Frame {
                starts_unit,
                ..entry(TAG)
            };
            encode(&mut buf, frame, 0, |b| b.extend_from_slice(b"abc"));
            let Decoded::Record(f) = decode(&buf, 0, TAG, 0) else {
                panic!()
            };
            assert_eq!(f.starts_unit, starts_unit);
            assert!(looks_like_record_of(&buf, 0, TAG));
            let after = if starts_unit {
                After::LaterUnit(0)
            } else {
                After::OwnRecords(0)
            };
            assert_eq!(after_break(&buf, 0, TAG), after);
        }
        let (mut bad, _) = one(b"abc", 0);
        bad[5] |= 0x40;
        assert!(
            matches!(decode(&bad, 0, TAG, 0), Decoded::Damaged(d) if d.reason == "bad record padding")
        );
        assert!(!looks_like_record_of(&bad, 0, TAG));
    }

    #[test]
    fn later_sectors_of_the_torn_unit_do_not_make_it_corruption() {
        // A recycled file's old records, then a unit of three records whose
        // second sector missed the disk while the later ones reached it.
        let file = recycled_file();
        let mut unit = Vec::new();
        let first = Frame {
            starts_unit: true,
            ..entry(TAG)
        };
        let mut crc = encode(&mut unit, first, 0, |b| b.extend_from_slice(&[1; 600]));
        for _ in 0..2 {
            crc = encode(&mut unit, entry(TAG), crc, |b| {
                b.extend_from_slice(&[2; 600])
            });
        }
        let mut torn = file.clone();
        torn[..unit.len()].copy_from_slice(&unit);
        torn[SECTOR_BYTES..2 * SECTOR_BYTES].copy_from_slice(&file[SECTOR_BYTES..2 * SECTOR_BYTES]);
        let Decoded::Damaged(d) = decode(&torn, 0, TAG, 0) else {
            panic!("the unit's first record is missing its second sector")
        };
        assert!(first_of_segment(&torn, d.extent_end, TAG).is_some());
        assert!(
            !is_torn(&torn, 0, &d, TAG, false),
            "the old rule: corruption"
        );
        assert!(is_torn(&torn, 0, &d, TAG, true));
        // A later unit's start after the damage makes it corruption again.
        let mut later = Vec::new();
        encode(&mut later, first, crc, |b| b.extend_from_slice(&[3; 40]));
        torn[unit.len()..unit.len() + later.len()].copy_from_slice(&later);
        assert!(!is_torn(&torn, 0, &d, TAG, true));
    }

    #[test]
    fn a_length_past_the_end_is_torn_only_without_a_later_unit() {
        // Old bytes that carry this segment's tag and a huge length.
        let mut file = vec![4u8; 64];
        file[4] = RecordType::Entry as u8;
        file[5] = 0;
        file[6..8].copy_from_slice(&TAG.to_le_bytes());
        file.resize(1024, 0);
        let Decoded::Damaged(d) = decode(&file, 0, TAG, 0) else {
            panic!()
        };
        assert!(d.past_end);
        assert!(
            !is_torn(&file, 0, &d, TAG, false),
            "the old rule: corruption"
        );
        assert!(is_torn(&file, 0, &d, TAG, true));
        let first = Frame {
            starts_unit: true,
            ..entry(TAG)
        };
        let mut later = Vec::new();
        encode(&mut later, first, 0, |b| b.extend_from_slice(&[3; 40]));
        file[512..512 + later.len()].copy_from_slice(&later);
        assert!(!is_torn(&file, 0, &d, TAG, true));
    }

    #[test]
    fn an_encoded_record_reads_back_and_a_changed_one_does_not() {
        let (rec, crc) = one(b"payload", 11);
        assert!(reads_back(&rec, entry(TAG), 11, crc));
        assert!(!reads_back(&rec, entry(TAG), 12, crc), "another chain seed");
        let unit = Frame {
            starts_unit: true,
            ..entry(TAG)
        };
        assert!(!reads_back(&rec, unit, 11, crc), "another unit flag");
        let mut flipped = rec.clone();
        flipped[HEADER_BYTES] ^= 1;
        assert!(!reads_back(&flipped, entry(TAG), 11, crc), "a flipped bit");
        let mut longer = rec;
        longer.extend_from_slice(&[0; ALIGN_BYTES]);
        assert!(!reads_back(&longer, entry(TAG), 11, crc), "bytes past it");
    }

    #[test]
    fn payloads_up_to_the_bound_may_be_written() {
        assert_payload_fits(0);
        assert_payload_fits(MAX_PAYLOAD_BYTES);
    }

    #[test]
    #[should_panic(expected = "exceeds")]
    fn a_payload_past_the_bound_stops_the_writer() {
        assert_payload_fits(MAX_PAYLOAD_BYTES + 1);
    }

    #[test]
    fn a_decoded_record_inside_the_buffer_passes() {
        let (rec, _) = one(b"abc", 0);
        let mut data = vec![0; 8];
        data.extend_from_slice(&rec);
        let Decoded::Record(f) = decode(&data, 8, TAG, 0) else {
            panic!("not a record")
        };
        assert_eq!(
            (f.payload_start, f.payload_end, f.next_offset),
            (8 + HEADER_BYTES, 8 + HEADER_BYTES + 3, 8 + rec.len())
        );
        assert_framed(8, f.payload_end, f.next_offset, data.len());
    }

    #[test]
    #[should_panic(expected = "next record at 48, in 40 bytes")]
    fn a_record_claimed_past_the_buffer_stops_the_reader() {
        assert_framed(8, 40, 48, 40);
    }

    #[test]
    #[should_panic(expected = "next record at 36")]
    fn an_unaligned_next_record_stops_the_reader() {
        assert_framed(8, 36, 36, 64);
    }

    #[test]
    #[should_panic(expected = "payload 20..12")]
    fn a_payload_ending_before_it_starts_stops_the_reader() {
        assert_framed(8, 12, 16, 64);
    }

    #[test]
    #[should_panic(expected = "unaligned offset 4")]
    fn decoding_at_an_unaligned_offset_stops_the_reader() {
        decode(&[0; 64], 4, TAG, 0);
    }
}
