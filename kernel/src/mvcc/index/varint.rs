//! LEB128 variable-length integers, used for the compact per-key records
//! and the snapshot encoding.

/// Most bytes one encoded value takes.
pub(crate) const MAX_BYTES: usize = 10;

/// Writes `value` as unsigned LEB128 into `out` at `*at`, advancing `*at`.
/// `out` must have [`MAX_BYTES`] free from `*at` (callers size their
/// buffers for it; a shorter one panics).
pub(crate) fn write_u64(out: &mut [u8], at: &mut usize, mut value: u64) {
    while value >= 0x80 {
        out[*at] = (value as u8) | 0x80;
        *at += 1;
        value >>= 7;
    }
    out[*at] = value as u8;
    *at += 1;
}

/// [`write_u64`] of a zig-zag encoded signed value (as [`put_i64`]).
pub(crate) fn write_i64(out: &mut [u8], at: &mut usize, value: i64) {
    write_u64(out, at, ((value << 1) ^ (value >> 63)) as u64);
}

/// Appends `value` as unsigned LEB128 (1 to 10 bytes).
pub(crate) fn put_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bytes [`put_u64`] writes for `value` (1 to 10).
pub(crate) fn len_u64(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes [`put_i64`] writes for `value`.
pub(crate) fn len_i64(value: i64) -> usize {
    len_u64(((value << 1) ^ (value >> 63)) as u64)
}

/// Appends a signed value zig-zag encoded (small magnitudes stay short).
pub(crate) fn put_i64(out: &mut Vec<u8>, value: i64) {
    put_u64(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Reads an unsigned LEB128 value at `*pos`, advancing `*pos`.
/// Returns `None` if the bytes end early or the value overflows 64 bits.
#[inline]
pub(crate) fn get_u64(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *bytes.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u64::from(first));
    }
    // Two bytes (a 256-byte value's tag, revisions below 16384) inline too.
    if let Some(&second) = bytes.get(*pos + 1)
        && second < 0x80
    {
        *pos += 2;
        return Some(u64::from(first & 0x7f) | (u64::from(second) << 7));
    }
    get_u64_multi_byte(bytes, pos)
}

/// [`get_u64`] for values of two bytes or more.
fn get_u64_multi_byte(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        let low = u64::from(byte & 0x7f);
        if shift == 63 && low > 1 {
            return None;
        }
        value |= low << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Reads a zig-zag encoded signed value written by [`put_i64`].
pub(crate) fn get_i64(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    let raw = get_u64(bytes, pos)?;
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_edges() {
        let unsigned = [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        let signed = [0, 1, -1, 63, -64, i64::MIN, i64::MAX];
        let mut buf = Vec::new();
        unsigned.iter().for_each(|v| put_u64(&mut buf, *v));
        signed.iter().for_each(|v| put_i64(&mut buf, *v));
        let mut pos = 0;
        for v in unsigned {
            assert_eq!(get_u64(&buf, &mut pos), Some(v));
        }
        for v in signed {
            assert_eq!(get_i64(&buf, &mut pos), Some(v));
        }
        assert_eq!(pos, buf.len());
        let lens: usize = unsigned.iter().map(|v| len_u64(*v)).sum::<usize>()
            + signed.iter().map(|v| len_i64(*v)).sum::<usize>();
        assert_eq!(lens, buf.len());
        assert_eq!(get_u64(&buf, &mut pos), None);
        let mut written = [0u8; 14 * MAX_BYTES];
        let mut at = 0;
        unsigned
            .iter()
            .for_each(|v| write_u64(&mut written, &mut at, *v));
        signed
            .iter()
            .for_each(|v| write_i64(&mut written, &mut at, *v));
        assert_eq!(&written[..at], buf.as_slice());
    }

    #[test]
    fn round_trips_every_one_to_three_byte_value() {
        let mut buf = Vec::new();
        for value in (0..1u64 << 15).chain([(1 << 21) - 1, 1 << 21]) {
            buf.clear();
            put_u64(&mut buf, value);
            let mut pos = 0;
            assert_eq!(get_u64(&buf, &mut pos), Some(value));
            assert_eq!(pos, buf.len());
        }
    }

    #[test]
    fn rejects_overlong() {
        let mut pos = 0;
        assert_eq!(get_u64(&[0xff; 11], &mut pos), None);
        let mut pos = 0;
        assert_eq!(get_u64(&[0x80], &mut pos), None);
    }
}
