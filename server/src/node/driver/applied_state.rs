//! The member's applied state as the driver shares it: the replicated
//! [`StateMachine`] and, beside it, the member-local [`LocalState`] (lease
//! clocks, simple tokens).
//!
//! Only apply and snapshot install change the replicated state, and both
//! run in the driver: the write lock is reachable from this module (the
//! driver and its files) alone, so the API layer, which holds a
//! [`crate::node::NodeHandle`], can read the state machine but cannot
//! change it. Member-local changes (keep-alives, token checks, lease
//! timing) go through [`AppliedState::with_local`] under the read lock.
//!
//! Lock order: the state machine's lock, then the local state's mutex;
//! the local mutex is reachable only through methods that keep that order.
//! A panic while either is held (a broken invariant in apply) may have left
//! them half-changed: every later access stops the member instead of
//! serving from them.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use keel_kernel::apply::{ApplyResult, LocalState, StateMachine};
use keel_kernel::raft::Entry;

/// The replicated state machine and this member's local state beside it.
///
/// Outside the driver module the write lock does not exist; this does not
/// compile:
///
/// ```compile_fail,E0624
/// fn apply_outside_the_driver(handle: &keel_server::node::NodeHandle) {
///     let _ = handle.shared().state.write();
/// }
/// ```
pub struct AppliedState {
    state: RwLock<StateMachine>,
    local: Mutex<LocalState>,
}

/// A panic while the state was locked may have left it half-applied:
/// nothing may be served from it. Release builds abort on the panic
/// itself; this covers unwinding builds.
fn state_poisoned() -> ! {
    panic!("keel: the state machine was poisoned by a panic while it was locked; stopping")
}

impl AppliedState {
    /// `state` as booted, with fresh member-local state for its settings.
    pub fn new(state: StateMachine) -> AppliedState {
        let local = LocalState::new(state.config());
        AppliedState {
            state: RwLock::new(state),
            local: Mutex::new(local),
        }
    }

    /// Read access to the replicated state machine.
    pub fn read(&self) -> RwLockReadGuard<'_, StateMachine> {
        match self.state.read() {
            Ok(state) => state,
            Err(_) => state_poisoned(),
        }
    }

    /// Runs `update` on this member's local state, with the replicated
    /// state machine to read (held for reading meanwhile, so no apply runs
    /// in between). Short and synchronous; never across an await.
    pub fn with_local<R>(&self, update: impl FnOnce(&StateMachine, &mut LocalState) -> R) -> R {
        let state = self.read();
        let mut local = self.local();
        update(&state, &mut local)
    }

    /// The driver's apply: applies `entries` in order under the write lock,
    /// and makes the local state follow each at `now_ms`.
    pub(super) fn apply(&self, entries: &[Entry], now_ms: u64) -> Vec<ApplyResult> {
        let mut state = self.write();
        let mut local = self.local();
        let mut results = Vec::with_capacity(entries.len());
        for entry in entries {
            let result = state.apply(entry);
            local.follow(&state, &result, now_ms);
            results.push(result);
        }
        results
    }

    /// The driver's snapshot install: replaces the state machine with one
    /// restored from a leader's snapshot; the local state starts afresh
    /// (no lease timed, no token), as it did in a restored state machine.
    pub(super) fn install(&self, restored: StateMachine) {
        let mut state = self.write();
        let mut local = self.local();
        *state = restored;
        local.reset();
    }

    /// Write access to the replicated state, for the driver alone (apply,
    /// install, and invariant checks that must poison the lock on failure).
    pub(super) fn write(&self) -> RwLockWriteGuard<'_, StateMachine> {
        match self.state.write() {
            Ok(state) => state,
            Err(_) => state_poisoned(),
        }
    }

    /// The local state; callers hold the state machine's lock already
    /// (lock order), or hold no other lock.
    pub(super) fn local(&self) -> MutexGuard<'_, LocalState> {
        match self.local.lock() {
            Ok(local) => local,
            Err(_) => state_poisoned(),
        }
    }
}
