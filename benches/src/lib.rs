//! Shared helpers for keel benchmarks and measurement binaries.

/// splitmix64 of `x`: a fixed pseudo-random sequence when `x` counts up
/// (no global randomness, the same in every run).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

pub mod compare;
pub mod loadgen;
pub mod scale;
pub mod servers;
