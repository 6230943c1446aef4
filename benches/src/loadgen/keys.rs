//! Keys and values as etcd's benchmark makes them (v3.4.27
//! `tools/benchmark/cmd/put.go`): a key is `--key-size` bytes, zero
//! filled, starting with the Go `binary.PutVarint` (zig-zag varint) of its
//! index in `0..--key-space-size`; the index is the request's number modulo
//! the key space with `--sequential-keys`, else a pseudo-random pick.

use anyhow::{Result, bail};

use crate::mix;

/// Makes the key of the `n`-th request of a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGen {
    /// Bytes in every key.
    pub key_size_bytes: usize,
    /// Distinct keys (at least 1).
    pub key_space_size: u64,
    /// Whether request `n` uses key index `n % key_space_size` (else a
    /// pseudo-random index).
    pub sequential: bool,
}

impl KeyGen {
    /// A generator; errors when the key space is empty or when
    /// `key_size_bytes` cannot hold the varint of the largest index.
    pub fn new(key_size_bytes: usize, key_space_size: u64, sequential: bool) -> Result<KeyGen> {
        if key_space_size == 0 {
            bail!("expected positive --key-space-size, got 0");
        }
        let largest = varint_len(key_space_size - 1);
        if key_size_bytes < largest {
            bail!(
                "--key-size {key_size_bytes} cannot hold {key_space_size} distinct keys (needs at least {largest} bytes)"
            );
        }
        Ok(KeyGen {
            key_size_bytes,
            key_space_size,
            sequential,
        })
    }

    /// The key index request `n` uses.
    pub fn index(&self, n: u64) -> u64 {
        if self.sequential {
            n % self.key_space_size
        } else {
            mix(n) % self.key_space_size
        }
    }

    /// The key request `n` uses.
    pub fn key(&self, n: u64) -> Vec<u8> {
        self.key_of_index(self.index(n))
    }

    /// The key with index `index`.
    pub fn key_of_index(&self, index: u64) -> Vec<u8> {
        let mut key = vec![0u8; self.key_size_bytes];
        put_varint(&mut key, index);
        key
    }
}

/// Bytes of the zig-zag varint of `value` (as a Go `int64`).
fn varint_len(value: u64) -> usize {
    let mut zigzag = value << 1;
    let mut len = 1;
    while zigzag >= 0x80 {
        zigzag >>= 7;
        len += 1;
    }
    len
}

/// Writes Go's `binary.PutVarint(buf, value)` for a non-negative `value`
/// at the start of `buf` (which must be long enough).
fn put_varint(buf: &mut [u8], value: u64) {
    let mut zigzag = value << 1;
    let mut i = 0;
    while zigzag >= 0x80 {
        buf[i] = (zigzag as u8) | 0x80;
        zigzag >>= 7;
        i += 1;
    }
    buf[i] = zigzag as u8;
}

/// A value of `size_bytes` printable bytes (fixed, the same every run).
pub fn value(size_bytes: usize) -> Vec<u8> {
    (0..size_bytes as u64)
        .map(|i| b'a' + (mix(i) % 26) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_go_varints_zero_padded() {
        let keys = KeyGen::new(8, 1000, true).expect("valid");
        assert_eq!(keys.key(0), vec![0; 8]);
        assert_eq!(keys.key(1), vec![2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(keys.key(64), vec![0x80, 0x01, 0, 0, 0, 0, 0, 0]);
        assert_eq!(keys.key(1001), keys.key(1));
    }

    #[test]
    fn random_keys_stay_in_the_key_space() {
        let keys = KeyGen::new(8, 3, false).expect("valid");
        assert!((0..100).all(|n| keys.index(n) < 3));
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(KeyGen::new(8, 0, false).is_err());
        assert!(KeyGen::new(1, 1000, false).is_err());
        assert!(KeyGen::new(2, 1000, false).is_ok());
    }
}
