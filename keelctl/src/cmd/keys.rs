//! Key ranges as etcdctl builds them: `--prefix`, `--from-key` and an
//! explicit range end (clientv3's `WithPrefix`, `WithFromKey`,
//! `WithRange`).

use keel_kernel::mvcc::prefix_range_end;

/// The `(key, range_end)` a command asks for: `range_end` given as a
/// second argument, or implied by `--prefix` / `--from-key` (an empty key
/// then means every key, `\0`), or empty (a single key).
pub fn key_range(
    key: &str,
    range_end: Option<&str>,
    prefix: bool,
    from_key: bool,
) -> (Vec<u8>, Vec<u8>) {
    let key = key.as_bytes().to_vec();
    if let Some(end) = range_end {
        return (key, end.as_bytes().to_vec());
    }
    if prefix {
        if key.is_empty() {
            return (vec![0], vec![0]);
        }
        let end = prefix_range_end(&key);
        return (key, end);
    }
    if from_key {
        let key = if key.is_empty() { vec![0] } else { key };
        return (key, vec![0]);
    }
    (key, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(key_range("", None, true, false), (vec![0], vec![0]));
        assert_eq!(key_range("k", None, false, true), (b"k".to_vec(), vec![0]));
        assert_eq!(
            key_range("a", Some("c"), false, false),
            (b"a".to_vec(), b"c".to_vec())
        );
        assert_eq!(key_range("a", None, false, false), (b"a".to_vec(), vec![]));
    }
}
