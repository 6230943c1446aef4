//! Messages exchanged between Raft peers (Raft paper Figure 2, thesis §3,
//! §4.2.3 pre-vote, §3.10 leader transfer, §6.4 ReadIndex) and their
//! deterministic binary encoding for the peer transport.

use super::codec::{DecodeError, Reader, put_bytes, put_varint};
use super::{ConfState, Entry, EntryType, NO_NODE, NodeId, Snapshot, SnapshotMetadata};
use bytes::Bytes;

/// The kind of a [`Message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// AppendEntries from the leader (`index`/`log_term` locate the previous entry).
    Append,
    /// Reply to `Append`; `reject` plus `reject_hint`/`log_term` for fast back-off.
    AppendResponse,
    /// RequestVote from a candidate (`index`/`log_term` = its last entry).
    RequestVote,
    /// Reply to `RequestVote`.
    RequestVoteResponse,
    /// Pre-vote (thesis §9.6): asks whether a vote *would* be granted at `term`.
    RequestPreVote,
    /// Reply to `RequestPreVote`.
    RequestPreVoteResponse,
    /// Leader heartbeat carrying the commit index (clamped to the follower's match).
    Heartbeat,
    /// Reply to `Heartbeat`; `context` echoes a ReadIndex round.
    HeartbeatResponse,
    /// InstallSnapshot from the leader.
    Snapshot,
    /// A proposal forwarded from a follower to the leader.
    Propose,
    /// A ReadIndex request forwarded from a follower to the leader.
    ReadIndex,
    /// The leader's answer to a forwarded ReadIndex (`index` = read index).
    ReadIndexResponse,
    /// Leader transfer: tells the target to campaign at once (thesis §3.10).
    TimeoutNow,
    /// A leader-transfer request forwarded to the leader (`from` = transferee).
    TransferLeader,
}

impl MessageType {
    /// Every message type, in wire-code order (the code is the position).
    pub const ALL: [MessageType; 14] = [
        MessageType::Append,
        MessageType::AppendResponse,
        MessageType::RequestVote,
        MessageType::RequestVoteResponse,
        MessageType::RequestPreVote,
        MessageType::RequestPreVoteResponse,
        MessageType::Heartbeat,
        MessageType::HeartbeatResponse,
        MessageType::Snapshot,
        MessageType::Propose,
        MessageType::ReadIndex,
        MessageType::ReadIndexResponse,
        MessageType::TimeoutNow,
        MessageType::TransferLeader,
    ];

    /// The byte used in the encoding.
    pub fn to_u8(self) -> u8 {
        MessageType::ALL
            .iter()
            .position(|t| *t == self)
            .unwrap_or(0) as u8
    }

    /// Inverse of [`MessageType::to_u8`]; `None` for unknown bytes.
    pub fn from_u8(byte: u8) -> Option<MessageType> {
        MessageType::ALL.get(usize::from(byte)).copied()
    }

    /// True for responses to votes and pre-votes.
    pub fn is_vote_response(self) -> bool {
        matches!(
            self,
            MessageType::RequestVoteResponse | MessageType::RequestPreVoteResponse
        )
    }
}

/// One Raft message. Fields not meaningful for a type stay at their defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// What the message is.
    pub msg_type: MessageType,
    /// Receiver.
    pub to: NodeId,
    /// Sender.
    pub from: NodeId,
    /// Sender's term (0 for `Propose`/`ReadIndex`/`TransferLeader`, which are term-less).
    pub term: u64,
    /// Term of the entry at `index` (previous entry for `Append`, last for votes).
    pub log_term: u64,
    /// A log index; its meaning depends on the type.
    pub index: u64,
    /// Entries carried by `Append` and `Propose`.
    pub entries: Vec<Entry>,
    /// Leader's commit index (`Append`, `Heartbeat`).
    pub commit: u64,
    /// Snapshot carried by `Snapshot`.
    pub snapshot: Option<Snapshot>,
    /// Whether a response refuses the request.
    pub reject: bool,
    /// For a rejected `Append`: the follower's best guess of where logs match.
    pub reject_hint: u64,
    /// Opaque request context (ReadIndex request id, campaign kind for transfer).
    pub context: Bytes,
}

impl Default for Message {
    fn default() -> Self {
        Message {
            msg_type: MessageType::Heartbeat,
            to: NO_NODE,
            from: NO_NODE,
            term: 0,
            log_term: 0,
            index: 0,
            entries: Vec::new(),
            commit: 0,
            snapshot: None,
            reject: false,
            reject_hint: 0,
            context: Bytes::new(),
        }
    }
}

/// Largest term or log index accepted from a peer (2^62): far beyond any
/// real cluster, and leaves room so `+ 1` never overflows.
pub const MAX_TERM_OR_INDEX: u64 = 1 << 62;

/// Format version written first by [`Message::encode`].
const MESSAGE_VERSION: u8 = 1;
/// Smallest encoding of an entry (term, index, type, data length: 1 byte each).
const MIN_ENTRY_BYTES: usize = 4;
/// Smallest encoding of a node id in a list.
const MIN_ID_BYTES: usize = 1;

impl Message {
    /// A message of `msg_type` from `from` to `to` at `term`, other fields default.
    pub fn new(msg_type: MessageType, from: NodeId, to: NodeId, term: u64) -> Message {
        Message {
            msg_type,
            from,
            to,
            term,
            ..Message::default()
        }
    }

    /// Checks what Raft assumes of a peer's message, so that malformed input
    /// is refused instead of breaking invariants: terms and indexes below
    /// [`MAX_TERM_OR_INDEX`] (no overflow when incremented), `Append` entries
    /// contiguous after `index` with non-decreasing terms between `log_term`
    /// and `term`, and a `Snapshot` message carrying a snapshot.
    /// Errors: a static description of the first problem found.
    pub fn validate(&self) -> Result<(), &'static str> {
        let limit = MAX_TERM_OR_INDEX;
        if self.term > limit || self.index > limit || self.log_term > limit || self.commit > limit {
            return Err("term or index out of range");
        }
        match self.msg_type {
            MessageType::Append => {
                let mut prev = (self.index, self.log_term);
                for e in &self.entries {
                    if e.index != prev.0 + 1 || e.term < prev.1 || e.term > self.term {
                        return Err("append entries are not contiguous or terms misordered");
                    }
                    prev = (e.index, e.term);
                }
                if prev.0 > limit {
                    return Err("append entries out of range");
                }
            }
            MessageType::Snapshot => match &self.snapshot {
                None => return Err("snapshot message without a snapshot"),
                Some(s) if s.metadata.index > limit || s.metadata.term > self.term => {
                    return Err("snapshot position out of range");
                }
                Some(_) => {}
            },
            _ => {}
        }
        Ok(())
    }

    /// Total [`Entry::size_bytes`] of the carried entries.
    pub fn entries_size_bytes(&self) -> u64 {
        self.entries.iter().map(Entry::size_bytes).sum()
    }

    /// Encodes the message deterministically (same message, same bytes).
    ///
    /// Layout: version byte `1`, type byte, varints `to from term log_term
    /// index commit reject_hint`, reject byte, context bytes, entry count and
    /// entries (`term index type data`), then a snapshot-present byte and if
    /// present the snapshot (`index term`, four id lists, auto-leave byte, data).
    pub fn encode(&self) -> Vec<u8> {
        let data_bytes: usize = self.entries.iter().map(|e| e.data.len() + 24).sum();
        let snap_bytes = self.snapshot.as_ref().map_or(0, |s| s.data.len() + 64);
        let mut buf = Vec::with_capacity(64 + self.context.len() + data_bytes + snap_bytes);
        buf.push(MESSAGE_VERSION);
        buf.push(self.msg_type.to_u8());
        for v in [
            self.to,
            self.from,
            self.term,
            self.log_term,
            self.index,
            self.commit,
        ] {
            put_varint(&mut buf, v);
        }
        put_varint(&mut buf, self.reject_hint);
        buf.push(u8::from(self.reject));
        put_bytes(&mut buf, &self.context);
        put_varint(&mut buf, self.entries.len() as u64);
        for e in &self.entries {
            encode_entry(&mut buf, e);
        }
        match &self.snapshot {
            None => buf.push(0),
            Some(snap) => {
                buf.push(1);
                encode_snapshot(&mut buf, snap);
            }
        }
        buf
    }

    /// Decodes bytes written by [`Message::encode`].
    ///
    /// Errors: a [`DecodeError`] for any malformed input (truncation, unknown
    /// version or tags, lengths beyond the input, trailing bytes). Never
    /// panics; allocation is bounded by the input length.
    pub fn decode(data: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader::new(data);
        let version = r.u8()?;
        if version != MESSAGE_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let tag = r.u8()?;
        let msg_type =
            MessageType::from_u8(tag).ok_or(DecodeError::UnknownTag("message type", tag.into()))?;
        let mut m = Message {
            msg_type,
            ..Message::default()
        };
        m.to = r.varint()?;
        m.from = r.varint()?;
        m.term = r.varint()?;
        m.log_term = r.varint()?;
        m.index = r.varint()?;
        m.commit = r.varint()?;
        m.reject_hint = r.varint()?;
        m.reject = r.bool("reject")?;
        m.context = r.bytes("context")?;
        let n = r.count("entries", MIN_ENTRY_BYTES)?;
        m.entries.reserve_exact(n);
        for _ in 0..n {
            m.entries.push(decode_entry(&mut r)?);
        }
        if r.bool("snapshot present")? {
            m.snapshot = Some(decode_snapshot(&mut r)?);
        }
        r.finish()?;
        Ok(m)
    }
}

fn encode_entry(buf: &mut Vec<u8>, e: &Entry) {
    put_varint(buf, e.term);
    put_varint(buf, e.index);
    buf.push(e.entry_type.to_u8());
    put_bytes(buf, &e.data);
}

fn decode_entry(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    let term = r.varint()?;
    let index = r.varint()?;
    let tag = r.u8()?;
    let entry_type =
        EntryType::from_u8(tag).ok_or(DecodeError::UnknownTag("entry type", tag.into()))?;
    let data = r.bytes("entry data")?;
    Ok(Entry {
        term,
        index,
        entry_type,
        data,
    })
}

fn encode_ids(buf: &mut Vec<u8>, ids: &[NodeId]) {
    put_varint(buf, ids.len() as u64);
    for id in ids {
        put_varint(buf, *id);
    }
}

fn decode_ids(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<NodeId>, DecodeError> {
    let n = r.count(field, MIN_ID_BYTES)?;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(r.varint()?);
    }
    Ok(ids)
}

fn encode_snapshot(buf: &mut Vec<u8>, snap: &Snapshot) {
    let meta = &snap.metadata;
    put_varint(buf, meta.index);
    put_varint(buf, meta.term);
    let cs = &meta.conf_state;
    encode_ids(buf, &cs.voters);
    encode_ids(buf, &cs.learners);
    encode_ids(buf, &cs.voters_outgoing);
    encode_ids(buf, &cs.learners_next);
    buf.push(u8::from(cs.auto_leave));
    put_bytes(buf, &snap.data);
}

fn decode_snapshot(r: &mut Reader<'_>) -> Result<Snapshot, DecodeError> {
    let index = r.varint()?;
    let term = r.varint()?;
    let conf_state = ConfState {
        voters: decode_ids(r, "voters")?,
        learners: decode_ids(r, "learners")?,
        voters_outgoing: decode_ids(r, "voters outgoing")?,
        learners_next: decode_ids(r, "learners next")?,
        auto_leave: r.bool("auto leave")?,
    };
    let data = r.bytes("snapshot data")?;
    Ok(Snapshot {
        metadata: SnapshotMetadata {
            index,
            term,
            conf_state,
        },
        data,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::ConfChange;
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    fn sample() -> Message {
        Message {
            msg_type: MessageType::Append,
            to: 2,
            from: 1,
            term: 7,
            log_term: 6,
            index: 41,
            entries: vec![
                Entry {
                    term: 7,
                    index: 42,
                    entry_type: EntryType::Normal,
                    data: "a".into(),
                },
                Entry {
                    term: 7,
                    index: 43,
                    entry_type: EntryType::ConfChange,
                    data: "".into(),
                },
            ],
            commit: 40,
            snapshot: Some(Snapshot {
                metadata: SnapshotMetadata {
                    index: 10,
                    term: 3,
                    conf_state: ConfState {
                        voters: vec![1, 2, 3],
                        learners: vec![4],
                        voters_outgoing: vec![1, 2],
                        learners_next: vec![],
                        auto_leave: true,
                    },
                },
                data: Bytes::from_static(b"state"),
            }),
            reject: true,
            reject_hint: u64::MAX,
            context: Bytes::from_static(b"ctx"),
        }
    }

    #[test]
    fn every_type_round_trips() {
        for t in MessageType::ALL {
            let m = Message {
                msg_type: t,
                ..sample()
            };
            assert_eq!(Message::decode(&m.encode()), Ok(m.clone()));
            assert_eq!(MessageType::from_u8(t.to_u8()), Some(t));
        }
        let plain = Message::new(MessageType::Heartbeat, 1, 2, 3);
        assert_eq!(Message::decode(&plain.encode()), Ok(plain));
    }

    #[test]
    fn every_prefix_and_corruption_is_an_error_not_a_panic() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(Message::decode(&bytes[..len]).is_err(), "prefix {len}");
        }
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                let _ = Message::decode(&b);
            }
        }
        assert!(Message::decode(&[1, 99]).is_err());
        assert!(Message::decode(&[2, 0]).is_err());
    }

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            vec(any::<u8>(), 0..40),
        )
            .prop_map(|(term, index, cc, data)| Entry {
                term,
                index,
                entry_type: if cc {
                    EntryType::ConfChange
                } else {
                    EntryType::Normal
                },
                data: data.into(),
            })
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let ids = (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        );
        let rest = (
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            vec(any::<u8>(), 0..16),
        );
        (
            0..MessageType::ALL.len(),
            ids,
            rest,
            vec(arb_entry(), 0..5),
            any::<Option<u64>>(),
        )
            .prop_map(
                |(
                    t,
                    (to, from, term, log_term, index),
                    (commit, hint, reject, ctx),
                    entries,
                    snap,
                )| {
                    Message {
                        msg_type: MessageType::ALL[t],
                        to,
                        from,
                        term,
                        log_term,
                        index,
                        entries,
                        commit,
                        snapshot: snap.map(|i| Snapshot {
                            metadata: SnapshotMetadata {
                                index: i,
                                term: i / 2,
                                ..Default::default()
                            },
                            data: Bytes::from(i.to_le_bytes().to_vec()),
                        }),
                        reject,
                        reject_hint: hint,
                        context: ctx.into(),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn arbitrary_messages_round_trip(m in arb_message()) {
            prop_assert_eq!(Message::decode(&m.encode()), Ok(m));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..256)) {
            let _ = Message::decode(&bytes);
            let _ = ConfChange::decode(&bytes);
        }
    }
}
