//! Cluster-unique id generation, as etcd's `pkg/idutil.Generator`.
//!
//! An id is `member_prefix(16 bits) | suffix(48 bits)`, where the suffix starts
//! at `(unix_ms & (2^40 - 1)) << 8` and counts up by one per id. Two members
//! never collide (different prefixes) and a restarted member does not reuse
//! ids as long as it issued fewer than 256 ids per millisecond of downtime.

/// Bits of the suffix (timestamp plus counter).
const SUFFIX_BITS: u32 = 48;
/// Bits of the counter inside the suffix.
const COUNTER_BITS: u32 = 8;
/// Bits of the timestamp inside the suffix.
const TIMESTAMP_BITS: u32 = SUFFIX_BITS - COUNTER_BITS;

/// Deterministic id generator: the member id and the start time are passed
/// in, so the same inputs give the same ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdGenerator {
    prefix: u64,
    suffix: u64,
}

impl IdGenerator {
    /// A generator for `member_id` (its low 16 bits are used) started at the
    /// wall-clock instant `unix_ms` (milliseconds since the Unix epoch).
    pub fn new(member_id: u64, unix_ms: u64) -> IdGenerator {
        let prefix = member_id << SUFFIX_BITS;
        let suffix = low_bits(unix_ms, TIMESTAMP_BITS) << COUNTER_BITS;
        IdGenerator { prefix, suffix }
    }

    /// The next id (never repeats within 2^48 calls).
    pub fn next_id(&mut self) -> u64 {
        self.suffix = self.suffix.wrapping_add(1);
        self.prefix | low_bits(self.suffix, SUFFIX_BITS)
    }

    /// The next id usable as a lease id: positive, as etcd masks its lease
    /// ids with `(1 << 63) - 1`; never 0.
    pub fn next_lease_id(&mut self) -> super::LeaseId {
        loop {
            let id = self.next_id() & (u64::MAX >> 1);
            if id != 0 {
                // The mask keeps the value below 2^63, so it fits an i64.
                return i64::try_from(id).unwrap_or(i64::MAX);
            }
        }
    }
}

fn low_bits(value: u64, bits: u32) -> u64 {
    value & ((1u64 << bits) - 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_member_prefix_and_count_up() {
        let mut generator = IdGenerator::new(0x12, 0x1_0000);
        let first = generator.next_id();
        assert_eq!(first >> SUFFIX_BITS, 0x12);
        assert_eq!(first & 0xffff_ffff_ffff, (0x1_0000 << 8) + 1);
        assert_eq!(generator.next_id(), first + 1);
    }

    #[test]
    fn lease_ids_are_positive_and_deterministic() {
        let mut a = IdGenerator::new(0xffff, 77);
        let mut b = IdGenerator::new(0xffff, 77);
        for _ in 0..10 {
            let id = a.next_lease_id();
            assert!(id > 0);
            assert_eq!(id, b.next_lease_id());
        }
    }

    /// etcd's `idutil.Generator` layout, lease ids masked to 63 bits:
    /// member 0x8e9e, started at 1,700,000,000,123 ms.
    #[test]
    fn lease_ids_follow_etcds_layout() {
        let (member, unix_ms) = (0x8e9e_u64, 1_700_000_000_123_u64);
        let mut generator = IdGenerator::new(member, unix_ms);
        let suffix = ((unix_ms & ((1 << 40) - 1)) << 8) + 1;
        let expected = ((member << 48) | suffix) & (u64::MAX >> 1);
        assert_eq!(generator.next_lease_id(), i64::try_from(expected).unwrap());
        let mut high = IdGenerator::new(0xffff, unix_ms);
        let id = high.next_lease_id();
        assert_eq!(id >> 48, 0x7fff, "the sign bit is masked off");
    }
}
