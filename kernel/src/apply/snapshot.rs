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

use serde::{Deserialize, Serialize};

use super::{AlarmMember, StateMachine, StateMachineConfig, StateParts};
use crate::auth::AuthSnapshot;
use crate::lease::LeaseSnapshot;
use crate::membership::ClusterSnapshot;
use crate::mvcc::{MvccError, Store};

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

impl StateMachine {
    /// Encodes the whole replicated state and the consistent index (see the
    /// module doc for the layout). The store is encoded in place, into one
    /// allocation of the final size: on a large state, fresh memory is most
    /// of the cost.
    pub fn snapshot(&self) -> Vec<u8> {
        self.snapshot_into(Vec::new())
    }

    /// As [`StateMachine::snapshot`], written into `buffer` (cleared first;
    /// grown only if it is too small): pass memory prepared beforehand, for
    /// example with its pages touched on another thread, to shorten the
    /// encoding of a large state.
    pub fn snapshot_into(&self, buffer: Vec<u8>) -> Vec<u8> {
        let meta = self.encode_meta();
        let store_len = self.store.snapshot_len_bytes();
        let mut out = buffer;
        out.clear();
        out.reserve(snapshot_len(store_len, meta.len()));
        out.extend_from_slice(MAGIC);
        out.push(FORMAT);
        out.extend_from_slice(&self.applied_index.to_le_bytes());
        out.extend_from_slice(&self.applied_term.to_le_bytes());
        out.extend_from_slice(&(store_len as u64).to_le_bytes());
        self.store.encode_snapshot_into(&mut out);
        put_section(&mut out, &meta);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(out.len(), snapshot_len(store_len, meta.len()));
        out
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

fn put_section(out: &mut Vec<u8>, section: &[u8]) {
    out.extend_from_slice(&(section.len() as u64).to_le_bytes());
    out.extend_from_slice(section);
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
