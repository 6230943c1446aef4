//! State-machine snapshots: the whole replicated state as deterministic,
//! checksummed bytes (what etcd ships as its `db` file in a Raft snapshot).
//!
//! Layout (integers little-endian):
//! `"KEELSNAP" [format = 1: u8] [applied_index: u64] [applied_term: u64]
//! [store_len: u64] [store snapshot (mvcc encoding, own checksum)]
//! [meta_len: u64] [postcard(leases, auth, membership, alarms)]
//! [crc32 of everything before: u32]`.
//! Equal states encode to equal bytes. Leader-local state (lease expiry
//! instants, auth tokens) is not included.

use std::fmt;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::{AlarmMember, StateMachine, StateMachineConfig, StateParts};
use crate::auth::AuthSnapshot;
use crate::lease::LeaseSnapshot;
use crate::membership::ClusterSnapshot;
use crate::mvcc::{Crc32Writer, MvccError, Store};

const MAGIC: &[u8; 8] = b"KEELSNAP";
const FORMAT: u8 = 1;
const CHECKSUM_BYTES: usize = 4;

/// Why snapshot bytes could not be restored. Nothing is restored then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The bytes end before the layout is complete.
    Truncated,
    /// The CRC32 does not match: the bytes were damaged.
    ChecksumMismatch,
    /// Not a keel state-machine snapshot, or a format this build cannot read.
    BadHeader,
    /// The store section is corrupt.
    Store(MvccError),
    /// The leases, auth, membership or alarms section is malformed, or the
    /// state they restore breaks an invariant
    /// ([`StateMachine::check_invariants`]).
    Invalid(String),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Truncated => f.write_str("snapshot: truncated"),
            SnapshotError::ChecksumMismatch => f.write_str("snapshot: checksum mismatch"),
            SnapshotError::BadHeader => f.write_str("snapshot: not a keel snapshot of format 1"),
            SnapshotError::Store(err) => write!(f, "snapshot: {err}"),
            SnapshotError::Invalid(why) => write!(f, "snapshot: invalid state: {why}"),
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Everything besides the store, encoded with postcard.
#[derive(Serialize, Deserialize)]
struct Meta {
    leases: Vec<LeaseSnapshot>,
    auth: AuthSnapshot,
    cluster: ClusterSnapshot,
    alarms: Vec<AlarmMember>,
}

/// Streams a state machine's snapshot (from
/// [`StateMachine::snapshot_encoder`]): the same bytes as
/// [`StateMachine::snapshot`], written piecewise into any [`Write`] with
/// both checksums computed on the way, so no copy of the encoded state is
/// held in memory. Encode a clone of the state (cheap: the store's index is
/// copy-on-write) to let the original keep applying meanwhile.
pub struct SnapshotEncoder<'a> {
    machine: &'a StateMachine,
    meta: Vec<u8>,
    store_len: usize,
}

impl SnapshotEncoder<'_> {
    /// Exact length in bytes of what [`SnapshotEncoder::write_to`] writes.
    pub fn len_bytes(&self) -> usize {
        snapshot_len(self.store_len, self.meta.len())
    }

    /// Writes the snapshot into `out`: exactly
    /// [`SnapshotEncoder::len_bytes`] bytes. Pass a buffered writer (keys
    /// are written one at a time).
    ///
    /// Errors: the first error `out` returns (what was written until then
    /// is a truncated snapshot, which [`StateMachine::restore`] refuses).
    pub fn write_to<W: Write>(&self, out: W) -> io::Result<()> {
        let machine = self.machine;
        let mut out = Crc32Writer::new(out);
        let mut header = Vec::with_capacity(MAGIC.len() + 1 + 3 * 8);
        header.extend_from_slice(MAGIC);
        header.push(FORMAT);
        header.extend_from_slice(&machine.applied_index.to_le_bytes());
        header.extend_from_slice(&machine.applied_term.to_le_bytes());
        header.extend_from_slice(&(self.store_len as u64).to_le_bytes());
        out.write_all(&header)?;
        machine.store.write_snapshot(&mut out)?;
        out.write_all(&(self.meta.len() as u64).to_le_bytes())?;
        out.write_all(&self.meta)?;
        debug_assert_eq!(
            out.written_bytes() as usize + CHECKSUM_BYTES,
            self.len_bytes()
        );
        let crc = out.crc();
        out.into_inner().write_all(&crc.to_le_bytes())
    }
}

impl StateMachine {
    /// Encodes the whole replicated state and the consistent index (see the
    /// module doc for the layout).
    pub fn snapshot(&self) -> Vec<u8> {
        self.snapshot_into(Vec::new())
    }

    /// As [`StateMachine::snapshot`], written into `buffer` (cleared first;
    /// grown only if it is too small).
    pub fn snapshot_into(&self, buffer: Vec<u8>) -> Vec<u8> {
        let encoder = self.snapshot_encoder();
        let mut out = buffer;
        out.clear();
        out.reserve(encoder.len_bytes());
        // Writing into a Vec cannot fail.
        let _ = encoder.write_to(&mut out);
        debug_assert_eq!(out.len(), encoder.len_bytes());
        out
    }

    /// An encoder of this state's snapshot that knows its length before
    /// writing it (a snapshot file states its data's length first). Costs
    /// one pass over the store's index and the encoding of the leases,
    /// auth, membership and alarms.
    pub fn snapshot_encoder(&self) -> SnapshotEncoder<'_> {
        let meta = self.encode_meta();
        let store_len = self.store.snapshot_len_bytes();
        SnapshotEncoder {
            machine: self,
            meta,
            store_len,
        }
    }

    /// Exact length in bytes of [`StateMachine::snapshot`]'s output, without
    /// encoding the store.
    pub fn snapshot_len_bytes(&self) -> usize {
        snapshot_len(self.store.snapshot_len_bytes(), self.encode_meta().len())
    }

    /// Leases, auth, membership and alarms, encoded with postcard.
    fn encode_meta(&self) -> Vec<u8> {
        let meta = Meta {
            leases: self.lessor.snapshot(),
            auth: self.auth.snapshot(),
            cluster: self.cluster.snapshot(),
            alarms: self.alarms.list(),
        };
        // Serializing plain data into a Vec cannot fail.
        postcard::to_stdvec(&meta).unwrap_or_default()
    }

    /// Rebuilds a state machine from [`StateMachine::snapshot`] bytes. It
    /// holds the replicated state only: the member-local lease clock and
    /// tokens start afresh beside it ([`super::LocalState::reset`]).
    ///
    /// Errors: see [`SnapshotError`]; corrupt input never panics.
    pub fn restore(
        config: StateMachineConfig,
        bytes: &[u8],
    ) -> Result<StateMachine, SnapshotError> {
        let body = checked_body(bytes)?;
        let mut reader = Reader {
            bytes: body,
            pos: MAGIC.len() + 1,
        };
        let applied_index = reader.u64()?;
        let applied_term = reader.u64()?;
        let store = Store::decode_snapshot(reader.section()?).map_err(SnapshotError::Store)?;
        let meta: Meta = match postcard::take_from_bytes(reader.section()?) {
            Ok((meta, [])) => meta,
            Ok(_) => return Err(SnapshotError::Invalid("metadata: trailing bytes".into())),
            Err(err) => return Err(SnapshotError::Invalid(format!("metadata: {err}"))),
        };
        if reader.pos != body.len() {
            return Err(SnapshotError::Invalid("trailing bytes".into()));
        }
        StateMachine::from_parts(
            config,
            StateParts {
                store,
                leases: meta.leases,
                auth: meta.auth,
                cluster: meta.cluster,
                alarms: meta.alarms,
                applied_index,
                applied_term,
            },
        )
    }
}

/// Length of a snapshot whose store and meta sections have these lengths.
fn snapshot_len(store_len: usize, meta_len: usize) -> usize {
    MAGIC.len() + 1 + 8 + 8 + 8 + store_len + 8 + meta_len + CHECKSUM_BYTES
}

/// The bytes before the checksum, after checking the checksum and header.
fn checked_body(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
    if bytes.len() < MAGIC.len() + 1 + CHECKSUM_BYTES {
        return Err(SnapshotError::Truncated);
    }
    let (body, crc) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    let mut crc_bytes = [0u8; CHECKSUM_BYTES];
    crc_bytes.copy_from_slice(crc);
    if crc32fast::hash(body) != u32::from_le_bytes(crc_bytes) {
        return Err(SnapshotError::ChecksumMismatch);
    }
    if &body[..MAGIC.len()] != MAGIC || body[MAGIC.len()] != FORMAT {
        return Err(SnapshotError::BadHeader);
    }
    Ok(body)
}

/// Bounds-checked reading of the fixed-width fields and sections.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], SnapshotError> {
        let end = self.pos.checked_add(len).ok_or(SnapshotError::Truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(SnapshotError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(word))
    }

    fn section(&mut self) -> Result<&'a [u8], SnapshotError> {
        let len = usize::try_from(self.u64()?).map_err(|_| SnapshotError::Truncated)?;
        self.take(len)
    }
}
