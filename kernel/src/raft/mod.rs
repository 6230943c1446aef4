//! The Raft consensus protocol as a deterministic, synchronous state machine.
//!
//! The application drives it (tick, step, propose), takes a `Ready`, performs
//! the I/O it describes, and calls `advance`. See the Raft paper and Diego
//! Ongaro's thesis for the protocol; etcd-io/raft and raft-rs for the API shape.

mod codec;
mod types;

pub use codec::DecodeError;
pub use types::*;
