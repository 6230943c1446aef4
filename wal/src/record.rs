//! Record framing: every WAL record is
//!
//! ```text
//! offset 0  u32 LE  payload length in bytes
//! offset 4  u8      record type (never 0, so zero-filled space is not a record)
//! offset 5  u8      padding length (0..=7)
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

use crc32fast::Hasher;

/// Bytes of the record header.
pub const HEADER_BYTES: usize = 12;
/// Records start and end on multiples of this many bytes.
pub const ALIGN_BYTES: usize = 8;
/// Largest payload a record may carry (256 MiB); larger entries are refused
/// when appended and treated as damage when read.
pub const MAX_PAYLOAD_BYTES: usize = 256 << 20;
/// Sector size assumed when telling a torn write from corruption (etcd: 512).
pub const SECTOR_BYTES: usize = 512;

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

/// Appends one framed record of the segment tagged `tag` to `buf`;
/// `write_payload` appends the payload. Returns the record's CRC (the seed
/// of the next record's CRC). `buf.len()` must be 8-aligned relative to the
/// record's file offset; the payload must not exceed [`MAX_PAYLOAD_BYTES`]
/// (checked by the caller).
pub fn encode(
    buf: &mut Vec<u8>,
    record_type: RecordType,
    tag: u16,
    prev_crc: u32,
    write_payload: impl FnOnce(&mut Vec<u8>),
) -> u32 {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_BYTES]);
    write_payload(buf);
    let payload_bytes = buf.len() - start - HEADER_BYTES;
    debug_assert!(payload_bytes <= MAX_PAYLOAD_BYTES);
    let pad = padding_bytes(payload_bytes);
    buf[start..start + 4].copy_from_slice(&(payload_bytes as u32).to_le_bytes());
    buf[start + 4] = record_type as u8;
    buf[start + 5] = pad as u8;
    buf[start + 6..start + 8].copy_from_slice(&tag.to_le_bytes());
    let mut hasher = Hasher::new_with_initial(prev_crc);
    hasher.update(&buf[start..start + 8]);
    hasher.update(&buf[start + HEADER_BYTES..]);
    let crc = hasher.finalize();
    buf[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    buf.resize(buf.len() + pad, 0);
    debug_assert_eq!((buf.len() - start) % ALIGN_BYTES, 0);
    crc
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
pub fn decode(data: &[u8], offset: usize, tag: u16, prev_crc: u32) -> Decoded {
    debug_assert_eq!(offset % ALIGN_BYTES, 0);
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
    let pad = header[5] as usize;
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
    if pad != padding_bytes(payload_bytes) {
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
    Decoded::Record(Framed {
        record_type,
        payload_start: offset + HEADER_BYTES,
        payload_end: offset + HEADER_BYTES + payload_bytes,
        crc,
        next_offset: offset + claimed,
    })
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
        && header[5] as usize == padding_bytes(payload_bytes)
        && at + HEADER_BYTES + payload_bytes + header[5] as usize <= data.len()
}

/// The first 8-aligned offset at or after `from` that
/// [looks like a record](looks_like_record_of) of the segment tagged `tag`,
/// if any: evidence that bytes of this segment follow a point where its log
/// seemed to end. One pass over the rest of `data`.
pub fn first_of_segment(data: &[u8], from: usize, tag: u16) -> Option<usize> {
    let start = from.div_ceil(ALIGN_BYTES) * ALIGN_BYTES;
    (start..data.len())
        .step_by(ALIGN_BYTES)
        .find(|at| looks_like_record_of(data, *at, tag))
}

/// True when the damaged record at `offset` of the segment tagged `tag`
/// looks like a write that was cut short rather than corrupted data. Never
/// for a record claiming bytes past the end of the file; otherwise when no
/// record of this segment follows the bytes it claims (the rest of the write
/// never reached the disk: what follows is zeros, or a recycled file's older
/// records), or one of its sector-aligned chunks is entirely zero (a sector
/// that was not written; the rule etcd uses).
pub fn is_torn(data: &[u8], offset: usize, damage: &Damage, tag: u16) -> bool {
    if damage.past_end {
        return false;
    }
    let end = damage.extent_end.max(offset).min(data.len());
    // The record's own sectors first: a scan of the rest of the file may
    // read up to a whole segment.
    let mut chunk_start = offset;
    while chunk_start < end {
        let chunk_end = ((chunk_start / SECTOR_BYTES + 1) * SECTOR_BYTES).min(end);
        if data[chunk_start..chunk_end].iter().all(|b| *b == 0) {
            return true;
        }
        chunk_start = chunk_end;
    }
    first_of_segment(data, end, tag).is_none()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TAG: u16 = 3;

    fn one(payload: &[u8], prev_crc: u32) -> (Vec<u8>, u32) {
        let mut buf = Vec::new();
        let crc = encode(&mut buf, RecordType::Entry, TAG, prev_crc, |b| {
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
        encode(&mut buf, RecordType::Entry, TAG, crc, |b| {
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
            assert!(is_torn(&torn, first_end, &d, TAG), "cut {cut}");
        }
        // A length running past the end of the file is never torn.
        let mut long = buf.clone();
        long[first_end + 1] = 0x40;
        let Decoded::Damaged(d) = decode(&long, first_end, TAG, crc) else {
            panic!()
        };
        assert!(d.past_end && !is_torn(&long, first_end, &d, TAG));
        // A flipped bit in the first record, with a record after it, is not.
        let mut flipped = buf.clone();
        flipped[20] ^= 4;
        let Decoded::Damaged(d) = decode(&flipped, 0, TAG, 0) else {
            panic!()
        };
        assert!(!is_torn(&flipped, 0, &d, TAG));
    }

    #[test]
    fn a_record_of_another_segment_is_stale_not_damage() {
        let mut buf = Vec::new();
        encode(&mut buf, RecordType::Entry, TAG + 1, 0, |b| {
            b.extend_from_slice(b"old")
        });
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
        let crc = encode(&mut buf, RecordType::Entry, TAG + 1, 0, |b| {
            b.extend_from_slice(&[1; 20])
        });
        let ours = buf.len();
        encode(&mut buf, RecordType::Entry, TAG, crc, |b| {
            b.extend_from_slice(&[2; 20])
        });
        assert_eq!(first_of_segment(&buf, 0, TAG), Some(ours));
        assert_eq!(first_of_segment(&buf, ours - 3, TAG), Some(ours));
        assert_eq!(first_of_segment(&buf, ours + 1, TAG), None);
        // A header whose record would run past the data is not one.
        assert_eq!(first_of_segment(&buf[..buf.len() - 8], 0, TAG), None);
        assert!(looks_like_record_of(&buf, ours, TAG) && !looks_like_record_of(&buf, 64, TAG));
    }

    #[test]
    fn torn_tail_over_a_recycled_files_old_records() {
        // The file's earlier use: records of another segment everywhere.
        let mut old = Vec::new();
        let mut crc = 0;
        while old.len() < 4096 {
            crc = encode(&mut old, RecordType::Entry, TAG + 7, crc, |b| {
                b.extend_from_slice(&[9; 100])
            });
        }
        let (new, crc) = one(&[5; 100], 0);
        let first_end = new.len();
        let mut second = Vec::new();
        encode(&mut second, RecordType::Entry, TAG, crc, |b| {
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
            assert!(is_torn(&torn, first_end, &d, TAG), "cut {cut}");
        }
        // A flipped bit in the first record, with the second after it, is
        // corruption.
        let mut flipped = file.clone();
        flipped[first_end..first_end + second.len()].copy_from_slice(&second);
        flipped[20] ^= 4;
        let Decoded::Damaged(d) = decode(&flipped, 0, TAG, 0) else {
            panic!()
        };
        assert!(!is_torn(&flipped, 0, &d, TAG));
    }
}
