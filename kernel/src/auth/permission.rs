//! Permissions over key ranges and the interval arithmetic that checks a
//! request against the union of a user's permissions (etcd
//! `auth/range_perm_cache.go`).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// What a permission allows (etcd `authpb.Permission_Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PermissionType {
    /// Range and watch.
    Read,
    /// Put and delete.
    Write,
    /// Both.
    ReadWrite,
}

impl PermissionType {
    /// True when a permission of this type allows an operation needing `need`
    /// (`Read` or `Write`).
    pub fn allows(self, need: PermissionType) -> bool {
        self == PermissionType::ReadWrite || self == need
    }
}

/// One permission of a role: a type over `key` (and `range_end`), with etcd's
/// encoding: empty `range_end` = the single key, `"\0"` = every key from
/// `key` on, else `[key, range_end)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Permission {
    /// What the permission allows.
    pub perm_type: PermissionType,
    /// First key (inclusive).
    pub key: Vec<u8>,
    /// End of the range as etcd encodes it.
    pub range_end: Vec<u8>,
}

impl Permission {
    /// The keys this permission covers.
    pub fn key_range(&self) -> KeyRange {
        KeyRange::new(&self.key, &self.range_end)
    }
}

/// End of a [`KeyRange`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RangeEnd {
    /// Exclusive end key.
    Key(Vec<u8>),
    /// No end: every key from the start on.
    Unbounded,
}

impl RangeEnd {
    fn cmp_end(&self, other: &RangeEnd) -> Ordering {
        match (self, other) {
            (RangeEnd::Unbounded, RangeEnd::Unbounded) => Ordering::Equal,
            (RangeEnd::Unbounded, RangeEnd::Key(_)) => Ordering::Greater,
            (RangeEnd::Key(_), RangeEnd::Unbounded) => Ordering::Less,
            (RangeEnd::Key(a), RangeEnd::Key(b)) => a.cmp(b),
        }
    }

    /// True when this end is at or after key `start` (so `[start, self)` is
    /// not empty or touches `start`).
    fn reaches(&self, start: &[u8]) -> bool {
        match self {
            RangeEnd::Unbounded => true,
            RangeEnd::Key(end) => end.as_slice() >= start,
        }
    }
}

/// A half-open interval of keys `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyRange {
    /// First key (inclusive).
    pub start: Vec<u8>,
    /// End (exclusive) or unbounded.
    pub end: RangeEnd,
}

impl KeyRange {
    /// The interval etcd means by `(key, range_end)`: empty `range_end` =
    /// just `key`; `"\0"` = from `key` on; else `[key, range_end)`. A
    /// `range_end` at or before `key` selects no key in a range request; it
    /// is checked as the single `key` so that it needs at least that.
    pub fn new(key: &[u8], range_end: &[u8]) -> KeyRange {
        let end = match range_end {
            [] => RangeEnd::Key(single_key_end(key)),
            [0] => RangeEnd::Unbounded,
            end if end <= key => RangeEnd::Key(single_key_end(key)),
            end => RangeEnd::Key(end.to_vec()),
        };
        KeyRange {
            start: key.to_vec(),
            end,
        }
    }

    /// True when every key of `other` is in `self`.
    pub fn contains(&self, other: &KeyRange) -> bool {
        self.start <= other.start && self.end.cmp_end(&other.end) != Ordering::Less
    }

    /// True when the union of `ranges` holds every key of `want`.
    pub fn union_covers(ranges: &[KeyRange], want: &KeyRange) -> bool {
        KeyRange::merged_covers(&KeyRange::merge(ranges.to_vec()), want)
    }

    /// Merges overlapping or touching intervals; the result is sorted by
    /// start and disjoint, so a range inside the union is inside one of them.
    pub fn merge(mut ranges: Vec<KeyRange>) -> Vec<KeyRange> {
        ranges.sort_by(|a, b| a.start.cmp(&b.start));
        let mut merged: Vec<KeyRange> = Vec::with_capacity(ranges.len());
        for range in ranges {
            match merged.last_mut() {
                Some(last) if last.end.reaches(&range.start) => {
                    if range.end.cmp_end(&last.end) == Ordering::Greater {
                        last.end = range.end;
                    }
                }
                _ => merged.push(range),
            }
        }
        merged
    }

    /// True when `merged` (a result of [`KeyRange::merge`]) holds every key
    /// of `want`: a binary search for the one interval that could.
    pub fn merged_covers(merged: &[KeyRange], want: &KeyRange) -> bool {
        let after = merged.partition_point(|range| range.start <= want.start);
        after > 0 && merged[after - 1].contains(want)
    }
}

/// The smallest key after `key`: `key + "\0"`.
fn single_key_end(key: &[u8]) -> Vec<u8> {
    let mut end = Vec::with_capacity(key.len() + 1);
    end.extend_from_slice(key);
    end.push(0);
    end
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn r(key: &str, end: &str) -> KeyRange {
        KeyRange::new(key.as_bytes(), end.as_bytes())
    }

    #[test]
    fn etcd_range_encodings() {
        assert_eq!(r("a", "").end, RangeEnd::Key(b"a\0".to_vec()));
        assert_eq!(KeyRange::new(b"a", b"\0").end, RangeEnd::Unbounded);
        assert_eq!(r("a", "c").end, RangeEnd::Key(b"c".to_vec()));
        assert_eq!(r("c", "a"), r("c", ""));
    }

    #[test]
    fn containment_and_union() {
        assert!(r("a", "z").contains(&r("b", "")));
        assert!(!r("a", "z").contains(&r("b", "zz")));
        assert!(KeyRange::new(b"a", b"\0").contains(&KeyRange::new(b"b", b"\0")));
        assert!(!r("b", "c").contains(&KeyRange::new(b"b", b"\0")));
        let ranges = [r("a", "c"), r("c", "e"), r("x", "")];
        assert!(KeyRange::union_covers(&ranges, &r("b", "d")));
        assert!(KeyRange::union_covers(&ranges, &r("x", "")));
        assert!(!KeyRange::union_covers(&ranges, &r("b", "f")));
        assert!(!KeyRange::union_covers(&ranges, &r("x", "y")));
        assert!(!KeyRange::union_covers(&[], &r("a", "")));
    }

    #[test]
    fn permission_types() {
        assert!(PermissionType::ReadWrite.allows(PermissionType::Write));
        assert!(PermissionType::Read.allows(PermissionType::Read));
        assert!(!PermissionType::Read.allows(PermissionType::Write));
        assert!(!PermissionType::Write.allows(PermissionType::Read));
    }
}
