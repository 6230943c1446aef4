//! Key-value pairs and change events as clients see them (etcd `mvccpb`).
//!
//! Keys and values are [`Bytes`]: cloning a key-value or an event (for
//! each watcher, each subscriber) bumps reference counts instead of
//! copying, and the server hands them to its protobuf types as they are.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One key at one revision (etcd `mvccpb.KeyValue`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyValue {
    /// The key; never empty for a stored key.
    pub key: Bytes,
    /// Main revision of the put that created the key's current generation.
    pub create_revision: i64,
    /// Main revision of the change that produced this version.
    pub mod_revision: i64,
    /// Number of puts in the key's current generation (1 after creation);
    /// 0 for the key of a delete event.
    pub version: i64,
    /// The value (empty for keys-only reads and delete events).
    pub value: Bytes,
    /// Id of the lease attached to the key, 0 for none.
    pub lease: i64,
}

/// The kind of change an event records (etcd `mvccpb.Event_EventType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A key was created or updated.
    Put,
    /// A key was deleted (a tombstone was written).
    Delete,
}

/// One change applied to the store (etcd `mvccpb.Event`).
///
/// For `Put`, `kv` is the new key-value. For `Delete`, `kv` holds only the
/// key and `mod_revision` = the deletion's main revision (as etcd sends it).
/// `prev_kv` is the key's previous live version, if it had one; the store
/// fills it in unless told not to (`Store::set_events_prev_kv`), and
/// watchers strip it unless they asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// Put or delete.
    pub event_type: EventType,
    /// The key-value after the change (see above for deletes).
    pub kv: KeyValue,
    /// The version just before the change, if the key existed.
    pub prev_kv: Option<KeyValue>,
    /// Sub revision of the change inside its transaction (orders the
    /// events of one main revision; not sent to clients).
    pub sub_revision: i64,
}

/// Copies `parts` back to back into one buffer and returns one [`Bytes`]
/// per part, all sharing that buffer: two allocations (the buffer and its
/// reference count) however many parts, where copying each part into its
/// own `Bytes` takes one allocation per part, plus one more the first
/// time each is cloned.
pub(crate) fn shared_parts<const N: usize>(parts: [&[u8]; N]) -> [Bytes; N] {
    let size_bytes = parts.iter().map(|p| p.len()).sum();
    let mut buffer = Vec::with_capacity(size_bytes);
    parts.iter().for_each(|p| buffer.extend_from_slice(p));
    // Splitting (rather than slicing) moves the last part out without a
    // reference count update, and empty parts take none.
    let mut rest = Bytes::from(buffer);
    parts.map(|p| rest.split_to(p.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_parts_keep_each_part() {
        let [a, empty, c] = shared_parts([b"key", b"", b"value"]);
        assert_eq!(
            (&a[..], &empty[..], &c[..]),
            (&b"key"[..], &b""[..], &b"value"[..])
        );
        let [only] = shared_parts([b"k"]);
        assert_eq!(only, Bytes::from_static(b"k"));
    }
}
