//! The `key` bucket's keys: a revision as 8 bytes of main revision
//! (big-endian), `_`, 8 bytes of sub revision, and a trailing `t` for a
//! tombstone (etcd `mvcc/revision.go`, `markedRevBytesLen`).

use keel_kernel::mvcc::Revision;

/// Bytes of a revision key without the tombstone mark.
pub const REVISION_BYTES: usize = 17;

/// A decoded revision key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevisionKey {
    /// The revision.
    pub revision: Revision,
    /// True for a delete.
    pub tombstone: bool,
}

/// Decodes a `key` bucket key (also the `meta` bucket's compaction
/// revisions, which are plain 17-byte revisions).
///
/// Errors: a description of what is wrong.
pub fn parse(bytes: &[u8]) -> Result<RevisionKey, String> {
    let tombstone = match bytes.len() {
        REVISION_BYTES => false,
        18 if bytes[REVISION_BYTES] == b't' => true,
        _ => return Err(format!("a revision key of {} bytes", bytes.len())),
    };
    if bytes[8] != b'_' {
        return Err("a revision key without '_'".to_owned());
    }
    let mut main = [0u8; 8];
    main.copy_from_slice(&bytes[..8]);
    let mut sub = [0u8; 8];
    sub.copy_from_slice(&bytes[9..REVISION_BYTES]);
    let (main, sub) = (i64::from_be_bytes(main), i64::from_be_bytes(sub));
    if main < 0 || sub < 0 {
        return Err(format!("a negative revision {main}_{sub}"));
    }
    Ok(RevisionKey {
        revision: Revision { main, sub },
        tombstone,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn parses_puts_and_tombstones() {
        let mut key = 5i64.to_be_bytes().to_vec();
        key.push(b'_');
        key.extend_from_slice(&2i64.to_be_bytes());
        let put = parse(&key).unwrap();
        assert_eq!(
            (put.revision.main, put.revision.sub, put.tombstone),
            (5, 2, false)
        );
        key.push(b't');
        assert!(parse(&key).unwrap().tombstone);
        key.pop();
        key[8] = b'x';
        assert!(parse(&key).is_err());
        assert!(parse(b"short").is_err());
    }
}
