//! Data types shared by Raft, the write-ahead log and the server: log entries,
//! hard state, configuration state and snapshots.
//!
//! These are the values that are persisted (WAL, snapshot files) and
//! replicated; their meaning follows the Raft thesis (Ongaro 2014) §3 and
//! etcd-io/raft's `raftpb`.

use bytes::Bytes;

/// Identifier of a Raft node (an etcd member id). `0` means "none".
pub type NodeId = u64;

/// The id that stands for "no node" (no vote cast, no known leader).
pub const NO_NODE: NodeId = 0;

/// What a log entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum EntryType {
    /// Application data for the replicated state machine (may be empty:
    /// the leader's no-op at the start of its term).
    #[default]
    Normal,
    /// An encoded membership change (see the `raft` configuration-change
    /// types); applied by Raft itself as well as by the application.
    ConfChange,
}

impl EntryType {
    /// Encodes the type as one byte for persistence (`Normal` = 0, `ConfChange` = 1).
    pub fn to_u8(self) -> u8 {
        match self {
            EntryType::Normal => 0,
            EntryType::ConfChange => 1,
        }
    }

    /// Decodes a byte written by [`EntryType::to_u8`]; `None` for any other value.
    pub fn from_u8(byte: u8) -> Option<EntryType> {
        match byte {
            0 => Some(EntryType::Normal),
            1 => Some(EntryType::ConfChange),
            _ => None,
        }
    }
}

/// One Raft log entry: `(term, index)` identifies it (log matching property,
/// Raft paper §5.3); `data` is opaque to Raft for `Normal` entries.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: u64,
    /// Position in the log, starting at 1.
    pub index: u64,
    /// What `data` holds.
    pub entry_type: EntryType,
    /// Payload; cheap to clone (reference counted).
    pub data: Bytes,
}

impl Entry {
    /// Approximate size of the entry in bytes, used for flow-control limits
    /// (payload plus a fixed 24-byte allowance for term, index and type).
    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64 + 24
    }
}

/// The state Raft must persist before it answers any message (Raft paper
/// Figure 2, "Persistent state on all servers"), plus the commit index so a
/// restart does not re-apply from zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct HardState {
    /// Latest term this node has seen.
    pub term: u64,
    /// Candidate voted for in `term`, or [`NO_NODE`].
    pub vote: NodeId,
    /// Highest log index known to be committed.
    pub commit: u64,
}

impl HardState {
    /// True for the state of a node that has never persisted anything.
    pub fn is_empty(&self) -> bool {
        *self == HardState::default()
    }
}

/// A cluster configuration: who votes and who only learns. During joint
/// consensus (Raft thesis §4.3) `voters_outgoing` holds the old voter set and
/// decisions need a majority of both.
#[derive(Clone, Debug, PartialEq, Eq, Default, Hash)]
pub struct ConfState {
    /// Voters of the incoming (or only) configuration, sorted ascending.
    pub voters: Vec<NodeId>,
    /// Non-voting members receiving the log, sorted ascending.
    pub learners: Vec<NodeId>,
    /// Voters of the outgoing configuration while in joint consensus; empty otherwise.
    pub voters_outgoing: Vec<NodeId>,
    /// Voters of the outgoing configuration that become learners when the
    /// joint configuration is left.
    pub learners_next: Vec<NodeId>,
    /// Whether the joint configuration is left automatically once committed.
    pub auto_leave: bool,
}

/// Where a state-machine snapshot sits in the log.
#[derive(Clone, Debug, PartialEq, Eq, Default, Hash)]
pub struct SnapshotMetadata {
    /// Index of the last entry the snapshot covers.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// Configuration in force at `index`.
    pub conf_state: ConfState,
}

/// A state-machine snapshot: metadata plus opaque bytes produced by the
/// application's state machine.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Position of the snapshot in the log and configuration at that point.
    pub metadata: SnapshotMetadata,
    /// Encoded state machine; empty for the "no snapshot" value.
    pub data: Bytes,
}

impl Snapshot {
    /// True for the "no snapshot" value (index 0).
    pub fn is_empty(&self) -> bool {
        self.metadata.index == 0
    }
}

/// What one step of a membership change does (Raft thesis §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConfChangeType {
    /// Add a voter, or promote an existing learner to voter.
    AddNode,
    /// Add a non-voting learner (or demote a voter to learner).
    AddLearnerNode,
    /// Remove a member, voter or learner.
    RemoveNode,
}

/// One member's change inside a [`ConfChange`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConfChangeSingle {
    /// What happens to `node_id`.
    pub change_type: ConfChangeType,
    /// The member concerned.
    pub node_id: NodeId,
}

/// A membership change proposed through the log as an
/// [`EntryType::ConfChange`] entry. `context` is opaque to Raft; keel's state
/// machine carries the member's attributes (name, peer URLs) in it, as etcd
/// does in `ConfChange.Context`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ConfChange {
    /// The changes, applied together (more than one needs joint consensus).
    pub changes: Vec<ConfChangeSingle>,
    /// Application data carried with the change.
    pub context: Bytes,
}

impl ConfChangeType {
    fn to_u8(self) -> u8 {
        match self {
            ConfChangeType::AddNode => 0,
            ConfChangeType::AddLearnerNode => 1,
            ConfChangeType::RemoveNode => 2,
        }
    }

    fn from_u8(byte: u8) -> Option<ConfChangeType> {
        match byte {
            0 => Some(ConfChangeType::AddNode),
            1 => Some(ConfChangeType::AddLearnerNode),
            2 => Some(ConfChangeType::RemoveNode),
            _ => None,
        }
    }
}

/// Format version written first by [`ConfChange::encode`].
const CONF_CHANGE_VERSION: u8 = 1;

impl ConfChange {
    /// Encodes the change for an [`EntryType::ConfChange`] entry's data.
    ///
    /// Layout (deterministic): version byte `1`, varint count of changes,
    /// then per change one type byte (`AddNode` 0, `AddLearnerNode` 1,
    /// `RemoveNode` 2) and a varint node id, then a varint-length-prefixed
    /// `context`. Varints are unsigned LEB128.
    pub fn encode(&self) -> Bytes {
        let mut buf = Vec::with_capacity(8 + self.changes.len() * 10 + self.context.len());
        buf.push(CONF_CHANGE_VERSION);
        super::codec::put_varint(&mut buf, self.changes.len() as u64);
        for change in &self.changes {
            buf.push(change.change_type.to_u8());
            super::codec::put_varint(&mut buf, change.node_id);
        }
        super::codec::put_bytes(&mut buf, &self.context);
        Bytes::from(buf)
    }

    /// Decodes bytes written by [`ConfChange::encode`].
    ///
    /// Errors: [`DecodeError`](super::DecodeError) for truncated input, an
    /// unknown version or change type, lengths beyond the input, or trailing
    /// bytes. Never panics; allocation is bounded by the input length.
    pub fn decode(data: &[u8]) -> Result<ConfChange, super::DecodeError> {
        let mut r = super::codec::Reader::new(data);
        let version = r.u8()?;
        if version != CONF_CHANGE_VERSION {
            return Err(super::DecodeError::UnsupportedVersion(version));
        }
        let n = r.count("conf change", 2)?;
        let mut changes = Vec::with_capacity(n);
        for _ in 0..n {
            let tag = r.u8()?;
            let change_type = ConfChangeType::from_u8(tag).ok_or(
                super::DecodeError::UnknownTag("conf change type", u64::from(tag)),
            )?;
            let node_id = r.varint()?;
            changes.push(ConfChangeSingle {
                change_type,
                node_id,
            });
        }
        let context = r.bytes("conf change context")?;
        r.finish()?;
        Ok(ConfChange { changes, context })
    }

    /// True for the empty change that leaves a joint configuration
    /// (etcd's `ConfChangeV2.LeaveJoint`).
    pub fn is_leave_joint(&self) -> bool {
        self.changes.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entry_type_round_trips_and_rejects_unknown_bytes() {
        for t in [EntryType::Normal, EntryType::ConfChange] {
            assert_eq!(EntryType::from_u8(t.to_u8()), Some(t));
        }
        assert_eq!(EntryType::from_u8(2), None);
    }

    #[test]
    fn conf_change_round_trips() {
        let cc = ConfChange {
            changes: vec![
                ConfChangeSingle {
                    change_type: ConfChangeType::AddNode,
                    node_id: 7,
                },
                ConfChangeSingle {
                    change_type: ConfChangeType::AddLearnerNode,
                    node_id: u64::MAX,
                },
                ConfChangeSingle {
                    change_type: ConfChangeType::RemoveNode,
                    node_id: 1,
                },
            ],
            context: Bytes::from_static(b"peer-urls"),
        };
        assert_eq!(ConfChange::decode(&cc.encode()), Ok(cc.clone()));
        assert!(ConfChange::default().is_leave_joint());
        assert_eq!(
            ConfChange::decode(&ConfChange::default().encode()),
            Ok(ConfChange::default())
        );
    }

    #[test]
    fn conf_change_decode_rejects_bad_input() {
        let good = ConfChange {
            changes: vec![ConfChangeSingle {
                change_type: ConfChangeType::AddNode,
                node_id: 300,
            }],
            context: Bytes::from_static(b"x"),
        }
        .encode();
        for len in 0..good.len() {
            assert!(ConfChange::decode(&good[..len]).is_err(), "prefix {len}");
        }
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert!(ConfChange::decode(&trailing).is_err());
        let mut bad_tag = good.to_vec();
        bad_tag[2] = 9;
        assert!(ConfChange::decode(&bad_tag).is_err());
        assert!(ConfChange::decode(&[2, 0, 0]).is_err());
        assert!(ConfChange::decode(&[1, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn empty_values() {
        assert!(HardState::default().is_empty());
        assert!(
            !HardState {
                term: 1,
                vote: 0,
                commit: 0
            }
            .is_empty()
        );
        assert!(Snapshot::default().is_empty());
    }
}
