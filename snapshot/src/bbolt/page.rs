//! bbolt pages: a 16-byte header (`id`, `flags`, `count`, `overflow`,
//! little-endian) followed by `count` 16-byte elements whose keys and
//! values sit later in the page at offsets relative to each element.
//! A page spans `1 + overflow` pages of the file.

use super::BoltError;

/// Bytes of a page header.
pub const PAGE_HEADER_BYTES: usize = 16;
/// Bytes of a branch or leaf element.
pub(super) const ELEMENT_BYTES: usize = 16;
/// Page flags (bbolt `page.go`).
pub(super) const FLAG_BRANCH: u16 = 0x01;
pub(super) const FLAG_LEAF: u16 = 0x02;
pub(super) const FLAG_META: u16 = 0x04;
pub(super) const FLAG_FREELIST: u16 = 0x10;
/// Leaf element flag: the value is a nested bucket.
pub(super) const FLAG_BUCKET: u32 = 0x01;

/// What a page holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    /// Keys and child page ids.
    Branch,
    /// Keys and values.
    Leaf,
    /// A meta or freelist page, or garbage (the flags).
    Other(u16),
}

/// A branch element: the first key of a child page and the child's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BranchElement {
    /// The child page.
    pub child: u64,
}

/// A leaf element: a key and its value (or nested bucket header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafElement<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value; for a bucket, its header (and inline page).
    pub value: &'a [u8],
    /// True when the value is a nested bucket.
    pub is_bucket: bool,
}

/// One page's bytes (all its overflow pages included).
#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    id: u64,
    bytes: &'a [u8],
}

impl<'a> Page<'a> {
    /// Page `id` of `data`, checked: inside the file, below the high-water
    /// mark (with its overflow), and carrying its own id.
    ///
    /// Errors: [`BoltError::PageOutOfBounds`], [`BoltError::BadPage`].
    pub fn at(
        data: &'a [u8],
        id: u64,
        page_size: u32,
        high_water: u64,
    ) -> Result<Page<'a>, BoltError> {
        let out = || BoltError::PageOutOfBounds(id);
        if id < 2 || id >= high_water {
            return Err(out());
        }
        let size = u64::from(page_size);
        let start = id.checked_mul(size).ok_or_else(out)?;
        let header = slice(data, start, PAGE_HEADER_BYTES as u64).ok_or_else(out)?;
        let overflow = u64::from(u32_at(header, 12).ok_or_else(out)?);
        if id
            .checked_add(overflow)
            .is_none_or(|last| last >= high_water)
        {
            return Err(out());
        }
        let len = (overflow + 1).checked_mul(size).ok_or_else(out)?;
        let bytes = slice(data, start, len).ok_or_else(out)?;
        let page = Page { id, bytes };
        if u64_at(bytes, 0) != Some(id) {
            return Err(page.bad(format!("header names page {:?}", u64_at(bytes, 0))));
        }
        page.check_count()?;
        Ok(page)
    }

    /// The page stored inline in a bucket value.
    ///
    /// Errors: [`BoltError::BadPage`] when it is too short for its count.
    pub fn inline(bytes: &'a [u8]) -> Result<Page<'a>, BoltError> {
        let page = Page { id: 0, bytes };
        if bytes.len() < PAGE_HEADER_BYTES {
            return Err(page.bad("inline page shorter than its header".to_owned()));
        }
        page.check_count()?;
        Ok(page)
    }

    /// The page id (0 for an inline page).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// What the page holds.
    pub fn kind(&self) -> PageKind {
        match u16_at(self.bytes, 8).unwrap_or(0) {
            FLAG_BRANCH => PageKind::Branch,
            FLAG_LEAF => PageKind::Leaf,
            other => PageKind::Other(other),
        }
    }

    /// Number of elements.
    pub fn count(&self) -> usize {
        usize::from(u16_at(self.bytes, 10).unwrap_or(0))
    }

    /// Branch element `i`.
    ///
    /// Errors: [`BoltError::BadPage`] when it points outside the page.
    pub fn branch_element(&self, i: usize) -> Result<BranchElement, BoltError> {
        let at = self.element_at(i);
        let pos = self.field_u32(at)?;
        let key_len = self.field_u32(at + 4)?;
        let child = u64_at(self.bytes, at + 8).ok_or_else(|| self.bad("element cut".into()))?;
        self.part(at, pos, key_len)?;
        Ok(BranchElement { child })
    }

    /// Leaf element `i`.
    ///
    /// Errors: [`BoltError::BadPage`] when its key or value lies outside
    /// the page.
    pub fn leaf_element(&self, i: usize) -> Result<LeafElement<'a>, BoltError> {
        let at = self.element_at(i);
        let flags = self.field_u32(at)?;
        let pos = self.field_u32(at + 4)?;
        let key_len = self.field_u32(at + 8)?;
        let value_len = self.field_u32(at + 12)?;
        let key = self.part(at, pos, key_len)?;
        let value_pos = pos
            .checked_add(key_len)
            .ok_or_else(|| self.bad(format!("element {i}: value offset overflows")))?;
        let value = self.part(at, value_pos, value_len)?;
        Ok(LeafElement {
            key,
            value,
            is_bucket: flags & FLAG_BUCKET as usize != 0,
        })
    }

    fn element_at(&self, i: usize) -> usize {
        PAGE_HEADER_BYTES + i * ELEMENT_BYTES
    }

    fn check_count(&self) -> Result<(), BoltError> {
        let need = PAGE_HEADER_BYTES + self.count() * ELEMENT_BYTES;
        if need > self.bytes.len() {
            return Err(self.bad(format!("{} elements do not fit", self.count())));
        }
        Ok(())
    }

    fn field_u32(&self, at: usize) -> Result<usize, BoltError> {
        u32_at(self.bytes, at)
            .map(|v| v as usize)
            .ok_or_else(|| self.bad("element cut".into()))
    }

    /// `len` bytes at `pos` past the element at byte `at`.
    fn part(&self, at: usize, pos: usize, len: usize) -> Result<&'a [u8], BoltError> {
        let start = at.checked_add(pos);
        let end = start.and_then(|s| s.checked_add(len));
        match (start, end) {
            (Some(start), Some(end)) if end <= self.bytes.len() => Ok(&self.bytes[start..end]),
            _ => Err(self.bad(format!(
                "element data at +{pos} ({len} bytes) outside the page"
            ))),
        }
    }

    fn bad(&self, why: String) -> BoltError {
        BoltError::BadPage { id: self.id, why }
    }
}

fn slice(data: &[u8], start: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(start).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    data.get(start..end)
}

/// Little-endian u16 at `at`, if in bounds.
pub fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    let mut word = [0u8; 2];
    word.copy_from_slice(bytes.get(at..at.checked_add(2)?)?);
    Some(u16::from_le_bytes(word))
}

/// Little-endian u32 at `at`, if in bounds.
pub fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes.get(at..at.checked_add(4)?)?);
    Some(u32::from_le_bytes(word))
}

/// Little-endian u64 at `at`, if in bounds.
pub fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes.get(at..at.checked_add(8)?)?);
    Some(u64::from_le_bytes(word))
}
