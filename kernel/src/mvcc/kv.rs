//! Key-value pairs and change events as clients see them (etcd `mvccpb`).

use serde::{Deserialize, Serialize};

/// One key at one revision (etcd `mvccpb.KeyValue`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key; never empty for a stored key.
    pub key: Vec<u8>,
    /// Main revision of the put that created the key's current generation.
    pub create_revision: i64,
    /// Main revision of the change that produced this version.
    pub mod_revision: i64,
    /// Number of puts in the key's current generation (1 after creation);
    /// 0 for the key of a delete event.
    pub version: i64,
    /// The value (empty for keys-only reads and delete events).
    pub value: Vec<u8>,
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
/// always fills it in, and watchers strip it unless they asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
