//! What a malformed `:authority` is replaced with.

/// What to do with an `:authority` value (RFC 9113 §8.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorityRepair {
    /// The value is a valid authority: keep it.
    Keep,
    /// Replace the value with these bytes (the URL's `host:port`).
    Replace(Vec<u8>),
    /// Nothing valid can be made of it: drop the header (it is optional).
    Drop,
}

/// Decides how to repair an `:authority` value: a valid authority
/// (`host[:port]`) is kept; a URL such as `http://127.0.0.1:2379/` becomes
/// its authority part `127.0.0.1:2379`; anything else is dropped.
pub fn repaired_authority(value: &[u8]) -> AuthorityRepair {
    if is_valid(value) {
        return AuthorityRepair::Keep;
    }
    let after_scheme = match find(value, b"://") {
        Some(at) => &value[at + 3..],
        None => value,
    };
    let authority = match after_scheme.iter().position(|&b| b == b'/') {
        Some(end) => &after_scheme[..end],
        None => after_scheme,
    };
    if is_valid(authority) {
        AuthorityRepair::Replace(authority.to_vec())
    } else {
        AuthorityRepair::Drop
    }
}

fn is_valid(value: &[u8]) -> bool {
    !value.is_empty() && http::uri::Authority::try_from(value).is_ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn valid_authorities_are_kept() {
        for value in [
            &b"127.0.0.1:2379"[..],
            b"localhost",
            b"[::1]:2379",
            b"etcd-0.svc:2379",
        ] {
            assert_eq!(
                repaired_authority(value),
                AuthorityRepair::Keep,
                "{value:?}"
            );
        }
    }

    #[test]
    fn urls_become_their_authority() {
        let cases: [(&[u8], &[u8]); 4] = [
            (b"http://127.0.0.1:2379", b"127.0.0.1:2379"),
            (b"https://node-1:2379/", b"node-1:2379"),
            (b"http://[::1]:2379/some/path", b"[::1]:2379"),
            (b"http://localhost", b"localhost"),
        ];
        for (value, want) in cases {
            assert_eq!(
                repaired_authority(value),
                AuthorityRepair::Replace(want.to_vec()),
                "{value:?}"
            );
        }
    }

    #[test]
    fn hopeless_values_are_dropped() {
        for value in [&b""[..], b"http://", b"/var/run/etcd.sock", b"a b"] {
            assert_eq!(
                repaired_authority(value),
                AuthorityRepair::Drop,
                "{value:?}"
            );
        }
    }
}
