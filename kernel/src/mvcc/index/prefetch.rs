//! Software prefetch hints for the index's predictable cache misses.
//!
//! A random lookup in a large store misses the cache at each level of the
//! index; where the next addresses are known before they are needed, a
//! prefetch starts those misses together instead of one after another.
//! A hint never changes results: on targets without one it does nothing.

/// Bytes of a cache line (x86-64 and most arm64 cores).
pub(crate) const CACHE_LINE_BYTES: usize = 64;

/// Most lines [`prefetch_slice`] asks for (bounds the hint's cost).
const PREFETCH_LINES_MAX: usize = 8;

/// Hints that the cache line holding `at` will be read soon.
#[inline(always)]
pub(crate) fn prefetch<T>(at: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults, whatever the
    // address, and reads or writes nothing the program can observe. SSE,
    // which the instruction needs, is part of the x86-64 baseline.
    #[allow(unsafe_code)]
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(at.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// Hints that the cache lines holding `items` (the first
/// [`PREFETCH_LINES_MAX`] of them) will be read soon.
#[inline(always)]
pub(crate) fn prefetch_slice<T>(items: &[T]) {
    let Some(last) = size_of_val(items).checked_sub(1) else {
        return;
    };
    let start = items.as_ptr().cast::<u8>();
    let first_line = start as usize / CACHE_LINE_BYTES;
    let last_line = (start as usize + last) / CACHE_LINE_BYTES;
    let lines = (last_line - first_line + 1).min(PREFETCH_LINES_MAX);
    for line in 0..lines {
        prefetch(start.wrapping_add(line * CACHE_LINE_BYTES));
    }
    // The loop starts at `start`, not at its line's start: reach the line
    // holding the last byte too.
    if lines < PREFETCH_LINES_MAX {
        prefetch(start.wrapping_add(last));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_accept_any_slice() {
        let bytes = vec![7u8; 1024];
        for start in [0, 1, 63, 64, 100] {
            for len in 0..bytes.len() - start {
                prefetch_slice(&bytes[start..start + len]);
            }
        }
        prefetch(std::ptr::null::<u8>());
    }
}
