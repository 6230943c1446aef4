//! keel-jepsen: the history model and the checkers keel's simulator
//! (`keel-sim`) and its real-process fault tests share.
//!
//! Pure code: no tokio, no sockets, no clock. A test records a
//! [`History`] of client operations against the etcd KV API (invoke, then
//! ok, fail or unknown), and the checkers judge it against a model built
//! only from the requests and responses, never from keel's implementation:
//!
//! - [`check_linearizable`]: Wing–Gong–Lowe search with memoization on
//!   (linearized set, model state), split per key (single-key register
//!   operations are independent, so the history is linearizable if and only
//!   if every key's sub-history is). Operations with an unknown outcome
//!   (timeout, lost connection) may or may not have taken effect. A bound on
//!   the states explored answers [`Verdict::Unknown`] instead of hanging.
//! - [`check_watches`]: every watcher's events are ordered by revision,
//!   unique, without a gap against the committed writes, and watchers of the
//!   same key range see the same sequence.
//! - [`append::check_append`]: strict serializability of list-append
//!   transactions, Elle-style (version orders from reads, the ww / wr / rw /
//!   real-time dependency graph and its cycles, named G0, G1c, G-single,
//!   G2-item; aborted and intermediate reads, lost appends).
//! - [`check_leases`]: a key attached to a lease is never gone before the
//!   lease's TTL has run out since the last accepted keep-alive.
//!
//! ```
//! use keel_jepsen::{History, Op, Outcome, Ret, check_linearizable, Verdict};
//! let mut history = History::new(100);
//! let put = history.invoke(1, Op::write("k", 1), 0).unwrap();
//! history.complete(put, Outcome::Ok(Ret::Write { revision: Some(2) }), 10).unwrap();
//! let get = history.invoke(2, Op::read("k"), 20).unwrap();
//! history.complete(get, Outcome::Ok(Ret::Read(Some(1))), 30).unwrap();
//! assert!(matches!(check_linearizable(&history, 10_000), Verdict::Linearizable { .. }));
//! ```

pub mod append;
mod bitset;
mod history;
mod lease;
mod linearizability;
mod model;
mod watch;

pub use history::{History, HistoryError, Op, OpId, Operation, Outcome, Ret, Value};
pub use lease::{EarlyExpiry, LeaseLog, LeaseRead, check_leases};
pub use linearizability::{KeyFailure, Verdict, check_linearizable};
pub use model::Register;
pub use watch::{
    CommittedWrite, WatchEvent, WatchEventKind, WatchLog, WatchViolation, check_watches,
};
