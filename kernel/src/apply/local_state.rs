//! The member-local state beside the replicated state machine: each
//! lease's expiry as this member sees it ([`LeaseClock`]) and the simple
//! tokens it issued ([`SimpleTokens`]). Neither is replicated nor in
//! snapshots (etcd keeps lease expiry in its lessor's memory and simple
//! tokens in its token provider's). A member changes it from the changes
//! its applies report ([`LocalState::follow`]), from keep-alives and token
//! checks, and from its own clock, passed in as `now_ms` (monotonic ms;
//! a value below one seen before counts as that one).

use crate::auth::{AuthError, AuthInfo, SimpleTokens};
use crate::invariant::InvariantViolation;
use crate::lease::{LeaseCheckpoint, LeaseClock, LeaseId, LeaseRenewal, LeaseStatus};

use super::{ApplyError, ApplyResult, LocalChange, StateMachine, StateMachineConfig};

/// One member's lease clock and token table.
#[derive(Clone, Debug)]
pub struct LocalState {
    config: StateMachineConfig,
    leases: LeaseClock,
    tokens: SimpleTokens,
    /// The latest `now_ms` seen: the clock never moves backwards.
    now_ms: u64,
}

impl LocalState {
    /// Empty local state for a state machine with `config`: no lease timed
    /// (not the leader), no token.
    pub fn new(config: StateMachineConfig) -> LocalState {
        LocalState {
            config,
            leases: LeaseClock::new(config.lessor),
            tokens: SimpleTokens::new(config.token_ttl_ms),
            now_ms: 0,
        }
    }

    /// Forgets every lease expiry and token, as after the state machine was
    /// replaced by a leader's snapshot (the clock keeps its time).
    pub fn reset(&mut self) {
        *self = LocalState {
            now_ms: self.now_ms,
            ..LocalState::new(self.config)
        };
    }

    /// The lease clock (read-only).
    pub fn lease_clock(&self) -> &LeaseClock {
        &self.leases
    }

    /// The token table (read-only).
    pub fn tokens(&self) -> &SimpleTokens {
        &self.tokens
    }

    /// Follows what applying an entry to `state` changed, at `now_ms`;
    /// call it right after [`StateMachine::apply`], before `state` changes
    /// again.
    pub fn follow(&mut self, state: &StateMachine, result: &ApplyResult, now_ms: u64) {
        let now_ms = self.observe(now_ms);
        for change in &result.local_changes {
            match change {
                LocalChange::LeaseGranted { id } => {
                    self.leases.granted(state.lessor(), *id, now_ms)
                }
                LocalChange::LeaseRevoked { id } => self.leases.revoked(*id),
                LocalChange::LeaseCheckpointed { id } => {
                    self.leases.checkpointed(state.lessor(), *id, now_ms)
                }
                LocalChange::TokenIssued { token, username } => {
                    self.tokens.assign(token.clone(), username, now_ms)
                }
                LocalChange::UserTokensRevoked { username } => {
                    self.tokens.invalidate_user(username)
                }
                LocalChange::AllTokensRevoked => self.tokens.clear(),
            }
        }
    }

    /// Who a request token stands for at `now_ms` (restarting the token's
    /// TTL), at `state`'s auth revision.
    ///
    /// Errors: [`AuthError::InvalidAuthToken`].
    pub fn authenticate_token(
        &mut self,
        state: &StateMachine,
        token: &str,
        now_ms: u64,
    ) -> Result<AuthInfo, AuthError> {
        let now_ms = self.observe(now_ms);
        state
            .auth()
            .authenticate_token(&mut self.tokens, token, now_ms)
    }

    /// Lease TTL query at `now_ms`: [`StateMachine::lease_time_to_live`]'s
    /// checks and answer, with the TTL left by this member's clock.
    ///
    /// Errors: as [`StateMachine::lease_time_to_live`].
    pub fn lease_time_to_live(
        &self,
        state: &StateMachine,
        auth: Option<&AuthInfo>,
        id: LeaseId,
        keys: bool,
        now_ms: u64,
    ) -> Result<LeaseStatus, ApplyError> {
        let mut status = state.lease_time_to_live(auth, id, keys)?;
        let now_ms = self.now_ms.max(now_ms);
        status.ttl_secs = self
            .leases
            .time_to_live(state.lessor(), id, now_ms)?
            .ttl_secs;
        Ok(status)
    }

    /// Keep-alive on the leader at `now_ms` (see [`LeaseClock::renew`]);
    /// propose the returned checkpoint if there is one.
    ///
    /// Errors: [`crate::lease::LeaseError::NotPrimary`], `NotFound`.
    pub fn lease_renew(
        &mut self,
        state: &StateMachine,
        id: LeaseId,
        now_ms: u64,
    ) -> Result<LeaseRenewal, ApplyError> {
        let now_ms = self.observe(now_ms);
        Ok(self.leases.renew(state.lessor(), id, now_ms)?)
    }

    /// This member became leader at `now_ms`: extend every lease of
    /// `state` by `extend_ms`.
    pub fn lease_promote(&mut self, state: &StateMachine, now_ms: u64, extend_ms: u64) {
        let now_ms = self.observe(now_ms);
        self.leases.promote(state.lessor(), now_ms, extend_ms);
    }

    /// This member lost leadership: leases stop expiring here.
    pub fn lease_demote(&mut self) {
        self.leases.demote();
    }

    /// Leader: leases to revoke at `now_ms` (propose a `LeaseRevoke` for
    /// each).
    pub fn lease_expired(&mut self, now_ms: u64) -> Vec<LeaseId> {
        let now_ms = self.observe(now_ms);
        self.leases.expired(now_ms)
    }

    /// Leader: checkpoints to propose at `now_ms` (one `LeaseCheckpoint`
    /// request).
    pub fn lease_checkpoints_due(
        &mut self,
        state: &StateMachine,
        now_ms: u64,
    ) -> Vec<LeaseCheckpoint> {
        let now_ms = self.observe(now_ms);
        self.leases.checkpoints_due(state.lessor(), now_ms)
    }

    /// Checks the lease clock against `state`'s lessor
    /// ([`LeaseClock::check_invariants`]).
    ///
    /// Errors: the first rule broken.
    pub fn check_invariants(&self, state: &StateMachine) -> Result<(), InvariantViolation> {
        self.leases.check_invariants(state.lessor())
    }

    /// Moves the clock to `now_ms` unless it is past it; returns the time.
    fn observe(&mut self, now_ms: u64) -> u64 {
        self.now_ms = self.now_ms.max(now_ms);
        self.now_ms
    }
}
