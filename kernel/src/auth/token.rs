//! etcd's "simple" tokens (`auth/simple_token.go`): an opaque string mapped
//! to a user, valid for a TTL that restarts at each use. They live in one
//! member's memory only (not in the replicated state nor in snapshots),
//! like etcd's: every member issues a token when it applies the login, and
//! each member's TTLs run by its own clock.

use std::collections::BTreeMap;

/// Default token TTL in milliseconds (etcd `--auth-token-ttl`, 300 s).
pub const SIMPLE_TOKEN_TTL_MS: u64 = 300_000;

/// Most tokens kept at once; issuing one more first drops expired tokens,
/// then the one closest to expiry.
pub const SIMPLE_TOKENS_MAX: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
struct TokenEntry {
    username: String,
    expires_ms: u64,
}

/// Issued simple tokens with their expiry instants (monotonic ms): one
/// member's token table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimpleTokens {
    ttl_ms: u64,
    tokens_max: usize,
    tokens: BTreeMap<String, TokenEntry>,
}

impl SimpleTokens {
    /// An empty token table whose tokens live `ttl_ms` after their last use.
    pub fn new(ttl_ms: u64) -> SimpleTokens {
        SimpleTokens::with_tokens_max(ttl_ms, SIMPLE_TOKENS_MAX)
    }

    /// As [`SimpleTokens::new`], keeping at most `tokens_max` tokens
    /// (tests use a small table; members use [`SIMPLE_TOKENS_MAX`]).
    pub fn with_tokens_max(ttl_ms: u64, tokens_max: usize) -> SimpleTokens {
        SimpleTokens {
            ttl_ms,
            tokens_max: tokens_max.max(1),
            tokens: BTreeMap::new(),
        }
    }

    /// The token etcd issues for a login applied at log `index` with a
    /// caller-chosen random part: `"<random>.<index>"`.
    pub fn format(random: &str, index: u64) -> String {
        format!("{random}.{index}")
    }

    /// Records `token` for `username`, valid until `now_ms + ttl`.
    pub fn assign(&mut self, token: String, username: &str, now_ms: u64) {
        if self.tokens.len() >= self.tokens_max && !self.tokens.contains_key(&token) {
            self.make_room(now_ms);
        }
        let entry = TokenEntry {
            username: username.to_string(),
            expires_ms: now_ms.saturating_add(self.ttl_ms),
        };
        self.tokens.insert(token, entry);
        assert!(
            self.tokens.len() <= self.tokens_max,
            "simple tokens: {} held, limit {}",
            self.tokens.len(),
            self.tokens_max
        );
    }

    /// The user of a valid `token` at `now_ms`, restarting its TTL; `None`
    /// for an unknown or expired token (which is dropped).
    pub fn validate(&mut self, token: &str, now_ms: u64) -> Option<String> {
        let entry = self.tokens.get_mut(token)?;
        if entry.expires_ms <= now_ms {
            self.tokens.remove(token);
            return None;
        }
        entry.expires_ms = now_ms.saturating_add(self.ttl_ms);
        Some(entry.username.clone())
    }

    /// Drops every token of `username` (deleted user, changed password).
    pub fn invalidate_user(&mut self, username: &str) {
        self.tokens.retain(|_, entry| entry.username != username);
    }

    /// Drops every token (auth disabled).
    pub fn clear(&mut self) {
        self.tokens.clear();
    }

    /// Number of tokens held (expired ones included until touched).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when no token is held.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    fn make_room(&mut self, now_ms: u64) {
        self.tokens.retain(|_, entry| entry.expires_ms > now_ms);
        if self.tokens.len() < self.tokens_max {
            return;
        }
        let oldest = self
            .tokens
            .iter()
            .min_by_key(|(_, entry)| entry.expires_ms)
            .map(|(token, _)| token.clone());
        if let Some(token) = oldest {
            self.tokens.remove(&token);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_unless_used_and_die_with_their_user() {
        let mut tokens = SimpleTokens::new(1000);
        let token = SimpleTokens::format("abcdef", 42);
        assert_eq!(token, "abcdef.42");
        tokens.assign(token.clone(), "alice", 0);
        assert_eq!(tokens.validate(&token, 999).as_deref(), Some("alice"));
        assert_eq!(tokens.validate(&token, 1998).as_deref(), Some("alice"));
        assert_eq!(tokens.validate(&token, 2998), None);
        assert!(tokens.is_empty());
        tokens.assign(token.clone(), "alice", 0);
        tokens.invalidate_user("alice");
        assert_eq!(tokens.validate(&token, 1), None);
        assert_eq!(tokens.validate("unknown", 1), None);
    }

    /// A full table drops the token closest to expiry for a new one; the
    /// table never grows past its limit.
    #[test]
    fn a_full_table_drops_the_token_closest_to_expiry() {
        let mut tokens = SimpleTokens::with_tokens_max(1000, 4);
        for (i, at) in [0, 10, 20, 30].into_iter().enumerate() {
            tokens.assign(format!("t{i}"), "alice", at);
        }
        assert_eq!(tokens.len(), 4);
        tokens.assign("t4".into(), "bob", 40);
        assert_eq!(tokens.len(), 4);
        assert_eq!(tokens.validate("t0", 50), None, "closest to expiry");
        for token in ["t1", "t2", "t3"] {
            assert_eq!(tokens.validate(token, 50).as_deref(), Some("alice"));
        }
        assert_eq!(tokens.validate("t4", 50).as_deref(), Some("bob"));
        // Re-assigning a held token needs no room.
        tokens.assign("t4".into(), "bob", 60);
        assert_eq!(tokens.len(), 4);
    }

    /// Expired tokens make the room first; a valid token is dropped only
    /// when that is not enough.
    #[test]
    fn expired_tokens_make_room_before_valid_ones() {
        let mut tokens = SimpleTokens::with_tokens_max(1000, 4);
        tokens.assign("old".into(), "alice", 0);
        for token in ["a", "b", "c"] {
            tokens.assign(token.into(), "alice", 500);
        }
        tokens.assign("new".into(), "bob", 1200);
        assert_eq!(tokens.len(), 4);
        for token in ["a", "b", "c"] {
            assert_eq!(tokens.validate(token, 1300).as_deref(), Some("alice"));
        }
        assert_eq!(tokens.validate("new", 1300).as_deref(), Some("bob"));
    }
}
