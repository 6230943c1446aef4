//! bbolt's meta pages (pages 0 and 1): magic, version, page size, the root
//! bucket, the high-water page id and the transaction id, protected by an
//! FNV-1a 64 checksum. Writers alternate between the two; a reader takes
//! the valid one with the higher transaction id (bbolt `db.meta()`).

use super::BoltError;
use super::page::{PAGE_HEADER_BYTES, u32_at, u64_at};

/// bbolt's magic number.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The file format version bbolt writes.
pub const VERSION: u32 = 2;
/// Bytes of the meta fields covered by the checksum.
const CHECKED_BYTES: usize = 56;
/// Smallest and largest page sizes accepted (bbolt uses the OS page size).
const PAGE_SIZE_MIN: u32 = 512;
const PAGE_SIZE_MAX: u32 = 1 << 20;
/// Page sizes to try for the second meta when the first is damaged.
const FALLBACK_PAGE_SIZES: [u32; 4] = [4096, 8192, 16384, 65536];

/// A validated meta page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Page size in bytes.
    pub page_size: u32,
    /// Root page of the bucket of buckets.
    pub root: u64,
    /// First page id past the end of the used file (bbolt `pgid`).
    pub high_water: u64,
    /// Transaction id.
    pub txid: u64,
}

/// True when page 0 carries bbolt's magic (valid or not otherwise).
pub fn has_magic(data: &[u8]) -> bool {
    u32_at(data, PAGE_HEADER_BYTES) == Some(MAGIC)
}

impl Meta {
    /// The newest valid meta of `data`.
    ///
    /// Errors: [`BoltError::NoValidMeta`] when neither meta page is valid
    /// for the file's size.
    pub fn newest(data: &[u8]) -> Result<Meta, BoltError> {
        let first = Meta::read(data, 0);
        let page_sizes: Vec<u32> = match first {
            Some(meta) => vec![meta.page_size],
            None => FALLBACK_PAGE_SIZES.to_vec(),
        };
        let second = page_sizes.iter().find_map(|size| {
            let at = usize::try_from(*size).ok()?;
            Meta::read(data, at).filter(|m| m.page_size == *size)
        });
        match (first, second) {
            (Some(a), Some(b)) => Ok(if b.txid > a.txid { b } else { a }),
            (Some(a), None) => Ok(a),
            (None, Some(b)) => Ok(b),
            (None, None) => Err(BoltError::NoValidMeta),
        }
    }

    /// The meta of the page at byte `at`, if valid and consistent with the
    /// file's length.
    fn read(data: &[u8], at: usize) -> Option<Meta> {
        let fields = at.checked_add(PAGE_HEADER_BYTES)?;
        let body = data.get(fields..fields.checked_add(CHECKED_BYTES + 8)?)?;
        if u32_at(body, 0)? != MAGIC || u32_at(body, 4)? != VERSION {
            return None;
        }
        if u64_at(body, CHECKED_BYTES)? != fnv1a_64(&body[..CHECKED_BYTES]) {
            return None;
        }
        let meta = Meta {
            page_size: u32_at(body, 8)?,
            root: u64_at(body, 16)?,
            high_water: u64_at(body, 40)?,
            txid: u64_at(body, 48)?,
        };
        meta.fits(data.len()).then_some(meta)
    }

    /// The page size is sane and the pages it names lie inside the file.
    fn fits(&self, file_bytes: usize) -> bool {
        let pages_in_file = file_bytes as u64 / u64::from(self.page_size.max(1));
        (PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&self.page_size)
            && self.page_size.is_power_of_two()
            && self.high_water >= 2
            && self.high_water <= pages_in_file
            && self.root >= 2
            && self.root < self.high_water
    }
}

/// FNV-1a, 64-bit (Go's `hash/fnv.New64a`).
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_known_values() {
        assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn damaged_metas_are_refused() {
        assert_eq!(Meta::newest(&[0u8; 8192]), Err(BoltError::NoValidMeta));
        assert_eq!(Meta::newest(&[]), Err(BoltError::NoValidMeta));
    }
}
