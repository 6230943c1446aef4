//! Password hashing with bcrypt, deterministic given the salt.

use super::AuthError;

/// Smallest bcrypt cost (work factor 2^4); tests use it to stay fast.
/// etcd uses bcrypt's default cost 10 (`--bcrypt-cost`).
pub const MIN_BCRYPT_COST: u32 = 4;

/// Hashes `password` with bcrypt at `cost` (4..=31) and the 16-byte `salt`;
/// returns the `$2b$` modular-crypt string stored in a [`super::User`].
/// Passwords longer than 72 bytes are truncated, as bcrypt does.
///
/// Errors: a cost outside 4..=31 → [`AuthError::PasswordHashFailed`].
pub fn hash_password(password: &str, cost: u32, salt: [u8; 16]) -> Result<String, AuthError> {
    bcrypt::hash_with_salt(password, cost, salt)
        .map(|parts| parts.format_for_version(bcrypt::Version::TwoB))
        .map_err(|_| AuthError::PasswordHashFailed)
}

/// True when `password` matches the bcrypt `hash`; a malformed hash never
/// matches.
pub(super) fn password_matches(password: &str, hash: &str) -> bool {
    bcrypt::verify(password, hash).unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_deterministic_for_a_salt_and_verifies() {
        let a = hash_password("secret", MIN_BCRYPT_COST, [7; 16]).unwrap();
        let b = hash_password("secret", MIN_BCRYPT_COST, [7; 16]).unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("$2b$04$"));
        assert!(password_matches("secret", &a));
        assert!(!password_matches("Secret", &a));
        assert!(!password_matches("secret", "not a hash"));
        assert_eq!(
            hash_password("x", 3, [0; 16]),
            Err(AuthError::PasswordHashFailed)
        );
    }
}
