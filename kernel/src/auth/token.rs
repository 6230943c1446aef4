//! etcd's "simple" tokens (`auth/simple_token.go`): an opaque string mapped
//! to a user, valid for a TTL that restarts at each use. They live in one
//! member's memory only (not in snapshots), like etcd's.

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

/// Issued simple tokens with their expiry instants (monotonic ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimpleTokens {
    ttl_ms: u64,
    tokens: BTreeMap<String, TokenEntry>,
}

impl SimpleTokens {
    /// An empty token table whose tokens live `ttl_ms` after their last use.
    pub fn new(ttl_ms: u64) -> SimpleTokens {
        SimpleTokens {
            ttl_ms,
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
        if self.tokens.len() >= SIMPLE_TOKENS_MAX && !self.tokens.contains_key(&token) {
            self.make_room(now_ms);
        }
        let entry = TokenEntry {
            username: username.to_string(),
            expires_ms: now_ms.saturating_add(self.ttl_ms),
        };
        self.tokens.insert(token, entry);
        assert!(
            self.tokens.len() <= SIMPLE_TOKENS_MAX,
            "simple tokens: {} held, limit {SIMPLE_TOKENS_MAX}",
            self.tokens.len()
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
        if self.tokens.len() < SIMPLE_TOKENS_MAX {
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
}
