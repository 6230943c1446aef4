//! Contents of each record type (little-endian, fixed layouts):
//!
//! - `Entry`: term u64, index u64, entry type u8, data (rest of the payload);
//! - `HardState`: term u64, vote u64, commit u64;
//! - `SnapshotMarker`: index u64, term u64, then the configuration as four
//!   lists (voters, learners, voters_outgoing, learners_next), each a u32
//!   count followed by u64 ids, then auto_leave u8;
//! - `Metadata`: cluster id u64, node id u64;
//! - `SegmentHeader`: magic `KEELWAL1`, sequence u64, first index u64,
//!   CRC of the previous segment's last record u32.

use crate::record::RecordType;
use bytes::Bytes;
use keel_kernel::raft::{ConfState, Entry, EntryType, HardState};

/// Magic bytes opening every segment header payload.
pub const SEGMENT_MAGIC: &[u8; 8] = b"KEELWAL1";

/// Identity of the member owning a log (etcd's WAL metadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Metadata {
    /// Cluster id.
    pub cluster_id: u64,
    /// This member's node id.
    pub node_id: u64,
}

/// Records that a state-machine snapshot covers the log up to `index`
/// (etcd's `walpb.Snapshot`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SnapshotMarker {
    /// Index of the last entry the snapshot covers.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// Configuration in force at `index`.
    pub conf_state: ConfState,
}

/// First record of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Position of the segment in the log (0, 1, 2, ...).
    pub sequence: u64,
    /// Index of the first entry expected in the segment.
    pub first_index: u64,
    /// CRC of the last record of the previous segment (0 for the first).
    pub prev_crc: u32,
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// See [`SegmentHeader`].
    SegmentHeader(SegmentHeader),
    /// See [`Metadata`].
    Metadata(Metadata),
    /// A Raft log entry.
    Entry(Entry),
    /// A Raft hard state.
    HardState(HardState),
    /// See [`SnapshotMarker`].
    SnapshotMarker(SnapshotMarker),
}

/// Payload bytes of an entry record besides its data.
pub const ENTRY_FIXED_BYTES: usize = 17;
/// Payload bytes of a hard state record.
pub const HARD_STATE_BYTES: usize = 24;

/// Payload bytes of the snapshot marker record for `m`.
pub fn snapshot_marker_bytes(m: &SnapshotMarker) -> usize {
    let cs = &m.conf_state;
    16 + 4 * 4
        + 8 * (cs.voters.len()
            + cs.learners.len()
            + cs.voters_outgoing.len()
            + cs.learners_next.len())
        + 1
}

fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends the payload of an entry record.
pub fn encode_entry(buf: &mut Vec<u8>, entry: &Entry) {
    put_u64(buf, entry.term);
    put_u64(buf, entry.index);
    buf.push(entry.entry_type.to_u8());
    buf.extend_from_slice(&entry.data);
}

/// Appends the payload of a hard state record.
pub fn encode_hard_state(buf: &mut Vec<u8>, hs: &HardState) {
    put_u64(buf, hs.term);
    put_u64(buf, hs.vote);
    put_u64(buf, hs.commit);
}

/// Appends the payload of a metadata record.
pub fn encode_metadata(buf: &mut Vec<u8>, m: &Metadata) {
    put_u64(buf, m.cluster_id);
    put_u64(buf, m.node_id);
}

/// Appends the payload of a segment header record.
pub fn encode_segment_header(buf: &mut Vec<u8>, h: &SegmentHeader) {
    buf.extend_from_slice(SEGMENT_MAGIC);
    put_u64(buf, h.sequence);
    put_u64(buf, h.first_index);
    buf.extend_from_slice(&h.prev_crc.to_le_bytes());
}

/// Appends the payload of a snapshot marker record.
pub fn encode_snapshot_marker(buf: &mut Vec<u8>, m: &SnapshotMarker) {
    put_u64(buf, m.index);
    put_u64(buf, m.term);
    encode_conf_state(buf, &m.conf_state);
}

/// Appends a configuration (also used by snapshot files).
pub fn encode_conf_state(buf: &mut Vec<u8>, cs: &ConfState) {
    for list in [
        &cs.voters,
        &cs.learners,
        &cs.voters_outgoing,
        &cs.learners_next,
    ] {
        buf.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for id in list.iter() {
            put_u64(buf, *id);
        }
    }
    buf.push(u8::from(cs.auto_leave));
}

/// Reads fixed-size fields from a payload; every read is bounds-checked.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes. Errors: fewer than `n` left.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or("payload too short")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// The next little-endian u64.
    pub fn u64(&mut self) -> Result<u64, &'static str> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    /// The next little-endian u32.
    pub fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The next byte.
    pub fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    /// Errors unless every byte was consumed.
    pub fn finish(&self) -> Result<(), &'static str> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err("trailing bytes in payload")
        }
    }
}

/// Reads a configuration written by [`encode_conf_state`]. List lengths are
/// checked against the bytes left, so no allocation exceeds the input size.
pub fn decode_conf_state(r: &mut Reader<'_>) -> Result<ConfState, &'static str> {
    let mut lists: [Vec<u64>; 4] = Default::default();
    for list in lists.iter_mut() {
        let count = r.u32()? as usize;
        if count > (r.bytes.len() - r.pos) / 8 {
            return Err("configuration list longer than its payload");
        }
        list.reserve_exact(count);
        for _ in 0..count {
            list.push(r.u64()?);
        }
    }
    let auto_leave = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err("bad auto_leave flag"),
    };
    let [voters, learners, voters_outgoing, learners_next] = lists;
    Ok(ConfState {
        voters,
        learners,
        voters_outgoing,
        learners_next,
        auto_leave,
    })
}

/// Decodes the payload `file[start..end]` of a record of type `record_type`.
/// Entry data is a zero-copy slice of `file`.
/// Errors: a short, long or malformed payload (the message says which).
pub fn decode(
    record_type: RecordType,
    file: &Bytes,
    start: usize,
    end: usize,
) -> Result<Record, &'static str> {
    let mut r = Reader::new(&file[start..end]);
    let record = match record_type {
        RecordType::Entry => {
            let term = r.u64()?;
            let index = r.u64()?;
            let entry_type = EntryType::from_u8(r.u8()?).ok_or("unknown entry type")?;
            let data = file.slice(start + r.position()..end);
            return Ok(Record::Entry(Entry {
                term,
                index,
                entry_type,
                data,
            }));
        }
        RecordType::HardState => Record::HardState(HardState {
            term: r.u64()?,
            vote: r.u64()?,
            commit: r.u64()?,
        }),
        RecordType::Metadata => Record::Metadata(Metadata {
            cluster_id: r.u64()?,
            node_id: r.u64()?,
        }),
        RecordType::SnapshotMarker => {
            let index = r.u64()?;
            let term = r.u64()?;
            let conf_state = decode_conf_state(&mut r)?;
            Record::SnapshotMarker(SnapshotMarker {
                index,
                term,
                conf_state,
            })
        }
        RecordType::SegmentHeader => {
            if r.take(8)? != SEGMENT_MAGIC {
                return Err("bad segment magic");
            }
            Record::SegmentHeader(SegmentHeader {
                sequence: r.u64()?,
                first_index: r.u64()?,
                prev_crc: r.u32()?,
            })
        }
    };
    r.finish()?;
    Ok(record)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trip(record_type: RecordType, encode: impl Fn(&mut Vec<u8>)) -> Record {
        let mut buf = vec![0xAA];
        encode(&mut buf);
        let file = Bytes::from(buf);
        let record = decode(record_type, &file, 1, file.len()).unwrap();
        for short in 1..file.len() - 1 {
            if record_type != RecordType::Entry || short < 18 {
                assert!(
                    decode(record_type, &file, 1, short).is_err(),
                    "{record_type:?} cut at {short}"
                );
            }
        }
        record
    }

    #[test]
    fn every_record_type_round_trips_and_rejects_short_payloads() {
        let e = Entry {
            term: 3,
            index: 9,
            entry_type: EntryType::ConfChange,
            data: Bytes::from_static(b"xyz"),
        };
        assert_eq!(
            round_trip(RecordType::Entry, |b| encode_entry(b, &e)),
            Record::Entry(e.clone())
        );
        let hs = HardState {
            term: 4,
            vote: 2,
            commit: 8,
        };
        assert_eq!(
            round_trip(RecordType::HardState, |b| encode_hard_state(b, &hs)),
            Record::HardState(hs)
        );
        let m = Metadata {
            cluster_id: 77,
            node_id: 5,
        };
        assert_eq!(
            round_trip(RecordType::Metadata, |b| encode_metadata(b, &m)),
            Record::Metadata(m)
        );
        let h = SegmentHeader {
            sequence: 2,
            first_index: 100,
            prev_crc: 0xDEAD_BEEF,
        };
        assert_eq!(
            round_trip(RecordType::SegmentHeader, |b| encode_segment_header(b, &h)),
            Record::SegmentHeader(h)
        );
        let conf_state = ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4],
            voters_outgoing: vec![1, 2],
            learners_next: vec![3],
            auto_leave: true,
        };
        let s = SnapshotMarker {
            index: 50,
            term: 6,
            conf_state,
        };
        let got = round_trip(RecordType::SnapshotMarker, |b| {
            encode_snapshot_marker(b, &s)
        });
        assert_eq!(got, Record::SnapshotMarker(s));
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let file = Bytes::from(vec![0u8; 17]);
        assert_eq!(
            decode(RecordType::Entry, &file, 0, 17),
            Ok(Record::Entry(Entry {
                term: 0,
                index: 0,
                ..Entry::default()
            }))
        );
        let bad_type = Bytes::from([vec![0u8; 16], vec![9]].concat());
        assert_eq!(
            decode(RecordType::Entry, &bad_type, 0, 17),
            Err("unknown entry type")
        );
        let long = Bytes::from(vec![0u8; 25]);
        assert_eq!(
            decode(RecordType::HardState, &long, 0, 25),
            Err("trailing bytes in payload")
        );
        let magic = Bytes::from(vec![0u8; 28]);
        assert_eq!(
            decode(RecordType::SegmentHeader, &magic, 0, 28),
            Err("bad segment magic")
        );
        let mut huge = vec![0u8; 16];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let huge = Bytes::from(huge);
        assert_eq!(
            decode(RecordType::SnapshotMarker, &huge, 0, 20),
            Err("configuration list longer than its payload")
        );
        let mut flag = vec![0u8; 32];
        flag.push(2);
        let flag = Bytes::from(flag);
        assert_eq!(
            decode(RecordType::SnapshotMarker, &flag, 0, 33),
            Err("bad auto_leave flag")
        );
    }
}
