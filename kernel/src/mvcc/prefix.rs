//! The key range of a prefix, as etcd's clients build it (clientv3
//! `GetPrefixRangeEnd`, used by `WithPrefix`, the lock and election
//! recipes and etcdctl's `--prefix`).

/// The range end that selects every key starting with `prefix`.
///
/// Input: any bytes. Output: `prefix` with its trailing 0xff bytes
/// dropped and the last byte below 0xff raised by one; `[0]` (etcd's "no
/// end": every key from the start key on) when `prefix` is empty or all
/// 0xff. Never fails.
pub fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::prefix_range_end;

    #[test]
    fn follows_etcd_get_prefix_range_end() {
        assert_eq!(prefix_range_end(b"a/"), b"a0".to_vec());
        assert_eq!(prefix_range_end(b"a"), b"b".to_vec());
        assert_eq!(prefix_range_end(&[b'a', 0xff]), b"b".to_vec());
        assert_eq!(prefix_range_end(&[0xff, 0xff]), vec![0]);
        assert_eq!(prefix_range_end(b""), vec![0]);
    }
}
