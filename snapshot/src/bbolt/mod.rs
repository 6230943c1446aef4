//! A small read-only reader of bbolt's file format (go.etcd.io/bbolt, the
//! database behind etcd's v3 backend), written from the format's
//! description: enough to list the buckets of the newest committed
//! transaction and walk their keys in order.
//!
//! * [`meta`]: the two meta pages; the valid one with the higher
//!   transaction id wins.
//! * [`page`]: page headers, branch and leaf elements, bounds-checked.
//! * [`Db`]: buckets (`root` page or inline) and ordered iteration.
//! * [`write`]: the other direction, a fresh compact database image.
//!
//! Every offset and length read from the file is checked; any bytes give
//! an answer or a [`BoltError`], never a panic, and every walk is bounded
//! (each page is visited at most once per walk, depth at most
//! [`DEPTH_MAX`]).

pub mod meta;
pub mod page;
pub mod write;

use meta::Meta;
use page::{LeafElement, Page, PageKind};

/// Deepest B+tree the reader follows (bbolt's trees are a few levels deep).
pub const DEPTH_MAX: usize = 64;

/// Why a bbolt file could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BoltError {
    /// Neither meta page is valid (bad magic, version or checksum).
    #[error("no valid meta page (not a bbolt file, or both metas damaged)")]
    NoValidMeta,
    /// A page lies (partly) outside the file or above the high-water mark.
    #[error("page {0} is outside the file (truncated?)")]
    PageOutOfBounds(u64),
    /// A page does not hold what its parent says it holds.
    #[error("page {id}: {why}")]
    BadPage {
        /// The page id (0 for an inline bucket page).
        id: u64,
        /// What is wrong.
        why: String,
    },
    /// A page is reachable twice, or the tree is deeper than [`DEPTH_MAX`].
    #[error("page {0} is reachable twice or the tree is too deep")]
    Cycle(u64),
}

/// Where a bucket's tree starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root<'a> {
    /// A page of its own.
    Page(u64),
    /// An inline bucket: its single leaf page follows the bucket header in
    /// the parent's value.
    Inline(&'a [u8]),
}

/// A bucket of the database: its root, read-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket<'a> {
    root: Root<'a>,
}

/// Bytes of a bucket header (`root` page id and `sequence`) in its
/// parent's value.
const BUCKET_HEADER_BYTES: usize = 16;

impl<'a> Bucket<'a> {
    /// Reads the bucket header at the start of a bucket value.
    fn from_value(value: &'a [u8]) -> Result<Bucket<'a>, BoltError> {
        let bad = || BoltError::BadPage {
            id: 0,
            why: "bucket value shorter than its header".to_owned(),
        };
        let root = page::u64_at(value, 0).ok_or_else(bad)?;
        if value.len() < BUCKET_HEADER_BYTES {
            return Err(bad());
        }
        Ok(Bucket {
            root: match root {
                0 => Root::Inline(&value[BUCKET_HEADER_BYTES..]),
                id => Root::Page(id),
            },
        })
    }
}

/// An opened bbolt database over its bytes.
#[derive(Clone, Debug)]
pub struct Db<'a> {
    data: &'a [u8],
    meta: Meta,
}

/// True when `bytes` start with a bbolt meta page (magic at the meta's
/// place in page 0), whether or not it is valid.
pub fn has_magic(bytes: &[u8]) -> bool {
    meta::has_magic(bytes)
}

impl<'a> Db<'a> {
    /// Opens the newest valid transaction of the database in `data`.
    ///
    /// Errors: [`BoltError::NoValidMeta`].
    pub fn open(data: &'a [u8]) -> Result<Db<'a>, BoltError> {
        Ok(Db {
            data,
            meta: Meta::newest(data)?,
        })
    }

    /// Page size in bytes.
    pub fn page_size_bytes(&self) -> u64 {
        u64::from(self.meta.page_size)
    }

    /// The database's size as bbolt reports it (`Tx.Size`: the high-water
    /// page id times the page size), in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.meta.high_water.saturating_mul(self.page_size_bytes())
    }

    /// The id of the transaction this view shows.
    pub fn txid(&self) -> u64 {
        self.meta.txid
    }

    /// The top-level buckets, ascending by name.
    ///
    /// Errors: damaged pages (see [`BoltError`]).
    pub fn buckets(&self) -> Result<Vec<(&'a [u8], Bucket<'a>)>, BoltError> {
        let mut out = Vec::new();
        self.walk(Root::Page(self.meta.root), &mut |element| {
            if element.is_bucket {
                out.push((element.key, Bucket::from_value(element.value)?));
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The top-level bucket `name`, if present.
    ///
    /// Errors: damaged pages.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'a>>, BoltError> {
        Ok(self
            .buckets()?
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| b))
    }

    /// Calls `visit(key, value)` for every key of `bucket` in ascending
    /// order (nested buckets are skipped: etcd has none); stops at the
    /// first error `visit` returns.
    ///
    /// Errors: damaged pages, or `visit`'s error.
    pub fn for_each<E: From<BoltError>>(
        &self,
        bucket: Bucket<'a>,
        mut visit: impl FnMut(&'a [u8], &'a [u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut failed = None;
        let walked = self.walk(bucket.root, &mut |element| {
            if element.is_bucket {
                return Ok(());
            }
            if let Err(err) = visit(element.key, element.value) {
                // Stop the walk; the placeholder error is replaced by
                // `visit`'s own below.
                failed = Some(err);
                return Err(BoltError::Cycle(u64::MAX));
            }
            Ok(())
        });
        match (failed, walked) {
            (Some(err), _) => Err(err),
            (None, Err(err)) => Err(err.into()),
            (None, Ok(())) => Ok(()),
        }
    }

    /// Visits the leaf elements under `root` in key order.
    fn walk(
        &self,
        root: Root<'a>,
        visit: &mut dyn FnMut(LeafElement<'a>) -> Result<(), BoltError>,
    ) -> Result<(), BoltError> {
        let mut seen = Seen::new(self.meta.high_water);
        match root {
            Root::Inline(bytes) => {
                let page = Page::inline(bytes)?;
                visit_leaf(&page, visit)
            }
            Root::Page(id) => self.walk_page(id, 0, &mut seen, visit),
        }
    }

    fn walk_page(
        &self,
        id: u64,
        depth: usize,
        seen: &mut Seen,
        visit: &mut dyn FnMut(LeafElement<'a>) -> Result<(), BoltError>,
    ) -> Result<(), BoltError> {
        if depth > DEPTH_MAX || !seen.first_visit(id) {
            return Err(BoltError::Cycle(id));
        }
        let page = Page::at(self.data, id, self.meta.page_size, self.meta.high_water)?;
        match page.kind() {
            PageKind::Leaf => visit_leaf(&page, visit),
            PageKind::Branch => {
                for i in 0..page.count() {
                    let child = page.branch_element(i)?.child;
                    self.walk_page(child, depth + 1, seen, visit)?;
                }
                Ok(())
            }
            PageKind::Other(flags) => Err(BoltError::BadPage {
                id,
                why: format!("expected a branch or leaf page, found flags {flags:#x}"),
            }),
        }
    }
}

fn visit_leaf<'a>(
    page: &Page<'a>,
    visit: &mut dyn FnMut(LeafElement<'a>) -> Result<(), BoltError>,
) -> Result<(), BoltError> {
    if page.kind() != PageKind::Leaf {
        return Err(BoltError::BadPage {
            id: page.id(),
            why: "an inline bucket that is not a leaf page".to_owned(),
        });
    }
    for i in 0..page.count() {
        visit(page.leaf_element(i)?)?;
    }
    Ok(())
}

/// Pages visited during one walk (a bitmap over the high-water mark).
struct Seen {
    bits: Vec<u64>,
}

impl Seen {
    fn new(high_water: u64) -> Seen {
        // Page::at refuses ids at or above the high-water mark, and the
        // high-water mark is bounded by the file's size (Meta::newest).
        let words = usize::try_from(high_water.div_ceil(64)).unwrap_or(0);
        Seen {
            bits: vec![0; words],
        }
    }

    /// Marks `id`; false if it was marked already (or is out of range).
    fn first_visit(&mut self, id: u64) -> bool {
        let Ok(word) = usize::try_from(id / 64) else {
            return false;
        };
        let Some(slot) = self.bits.get_mut(word) else {
            return true; // out of range: Page::at reports it
        };
        let bit = 1u64 << (id % 64);
        let first = *slot & bit == 0;
        *slot |= bit;
        first
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    const ETCD_DB: &[u8] = include_bytes!("../../tests/data/etcd-3.4.db");

    #[test]
    fn reads_the_buckets_etcd_writes() {
        let db = Db::open(ETCD_DB).unwrap();
        let names: Vec<String> = db
            .buckets()
            .unwrap()
            .iter()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        for wanted in [
            "auth",
            "authRoles",
            "authUsers",
            "key",
            "lease",
            "members",
            "meta",
        ] {
            assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
        }
        assert_eq!(db.size_bytes(), 24576);
        let key = db.bucket(b"key").unwrap().unwrap();
        let mut revisions = Vec::new();
        db.for_each(key, |k, _| {
            revisions.push(k.to_vec());
            Ok::<(), BoltError>(())
        })
        .unwrap();
        assert!(!revisions.is_empty());
        assert!(revisions.windows(2).all(|w| w[0] < w[1]));
    }
}
