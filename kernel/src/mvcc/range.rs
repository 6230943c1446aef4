//! Range reads over the index at a revision, with etcd's limit, filter and
//! sort rules (etcd `etcdserver/apply.go` `Range`).

use std::cmp::Ordering;

use bytes::Bytes;

use super::error::MvccError;
use super::index::Index;
use super::index::key_index::{KeyIndex, Version};
use super::kv::KeyValue;
use super::ops::{RangeRequest, RangeResponse, SortOrder, SortTarget};

/// A consistent read view: the index as of main revision `revision`
/// (the view's current revision), with history below `compact_revision`
/// gone.
#[derive(Clone, Copy)]
pub(crate) struct ReadView<'a> {
    /// The index.
    pub index: &'a Index,
    /// The view's current main revision.
    pub revision: i64,
    /// The store's compacted revision (-1 if never compacted).
    pub compact_revision: i64,
}

/// The key span a request names: `range_end` empty = the single key,
/// `[0]` = every key from `key` on, otherwise `[key, range_end)`.
pub(crate) fn key_span<'a, 'b>(
    index: &'a Index,
    key: &'b [u8],
    range_end: &'b [u8],
) -> KeySpan<'a, impl Iterator<Item = &'a KeyIndex> + 'b>
where
    'a: 'b,
{
    match range_end {
        [] => KeySpan::One(index.get(key)),
        [0] => KeySpan::Many(index.range(key, None)),
        end => KeySpan::Many(index.range(key, Some(end))),
    }
}

/// The key indexes of a span, ascending: one looked-up key (no iterator
/// state, no allocation: the common single-key read) or an index range.
pub(crate) enum KeySpan<'a, I> {
    /// A single key, if present (taken on the first `next`).
    One(Option<&'a KeyIndex>),
    /// A range of the index.
    Many(I),
}

impl<'a, I: Iterator<Item = &'a KeyIndex>> Iterator for KeySpan<'a, I> {
    type Item = &'a KeyIndex;

    fn next(&mut self) -> Option<&'a KeyIndex> {
        match self {
            KeySpan::One(one) => one.take(),
            KeySpan::Many(many) => many.next(),
        }
    }
}

impl<'a> ReadView<'a> {
    /// The main revision a request's `revision` field selects, checked:
    /// 0 or less = the view's revision; above it = `FutureRevision`; below
    /// the compacted revision = `Compacted`.
    pub fn read_revision(&self, requested: i64) -> Result<i64, MvccError> {
        if requested <= 0 {
            return Ok(self.revision);
        }
        if requested > self.revision {
            return Err(MvccError::FutureRevision);
        }
        if requested < self.compact_revision {
            return Err(MvccError::Compacted);
        }
        Ok(requested)
    }

    /// Live versions of the keys in the span at main revision `at`, in key
    /// order.
    pub fn live<'b>(
        &self,
        key: &'b [u8],
        range_end: &'b [u8],
        at: i64,
    ) -> impl Iterator<Item = (&'a [u8], Version<'a>)> + 'b
    where
        'a: 'b,
    {
        key_span(self.index, key, range_end).filter_map(move |ki| Some((ki.key(), ki.live_at(at)?)))
    }

    /// Answers a range request (see [`RangeRequest`] for the options).
    ///
    /// Errors: `EmptyKey`, `FutureRevision`, `Compacted`.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, MvccError> {
        if req.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        let at = self.read_revision(req.revision)?;
        let filtered = req.min_mod_revision != 0
            || req.max_mod_revision != 0
            || req.min_create_revision != 0
            || req.max_create_revision != 0;
        // As etcd: with sorting or filters fetch everything, else one more
        // than the limit to learn whether there is more.
        let fetch_max = if req.sort_order != SortOrder::None || filtered || req.limit <= 0 {
            usize::MAX
        } else {
            usize::try_from(req.limit)
                .unwrap_or(usize::MAX)
                .saturating_add(1)
        };
        let drop_values = req.keys_only && req.sort_target != SortTarget::Value;
        let mut count = 0i64;
        // A single key yields at most one key-value: allocate just that.
        let mut kvs = Vec::with_capacity(usize::from(req.range_end.is_empty() && !req.count_only));
        for (key, version) in self.live(&req.key, &req.range_end, at) {
            count += 1;
            if !req.count_only && kvs.len() < fetch_max {
                kvs.push(version.to_key_value(Bytes::copy_from_slice(key), drop_values));
            }
        }
        if filtered {
            kvs.retain(|kv| keep(req, kv));
        }
        sort(&mut kvs, req.sort_order, req.sort_target);
        let mut more = false;
        if let Ok(limit) = usize::try_from(req.limit)
            && limit > 0
            && kvs.len() > limit
        {
            kvs.truncate(limit);
            more = true;
        }
        if req.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value = Bytes::new());
        }
        Ok(RangeResponse {
            revision: self.revision,
            kvs,
            more,
            count,
        })
    }
}

/// The min/max mod and create revision filters (0 = off).
fn keep(req: &RangeRequest, kv: &KeyValue) -> bool {
    let above = |value: i64, min: i64| min == 0 || value >= min;
    let below = |value: i64, max: i64| max == 0 || value <= max;
    above(kv.mod_revision, req.min_mod_revision)
        && below(kv.mod_revision, req.max_mod_revision)
        && above(kv.create_revision, req.min_create_revision)
        && below(kv.create_revision, req.max_create_revision)
}

/// etcd's sort rules: a non-key target with order `None` sorts ascending;
/// key ascending is the natural order already. Sorting is stable, so ties
/// keep ascending key order.
fn sort(kvs: &mut [KeyValue], order: SortOrder, target: SortTarget) {
    let order = match (order, target) {
        (SortOrder::None, SortTarget::Key) | (SortOrder::Ascend, SortTarget::Key) => return,
        (SortOrder::None, _) => SortOrder::Ascend,
        (order, _) => order,
    };
    let by = |a: &KeyValue, b: &KeyValue| -> Ordering {
        match target {
            SortTarget::Key => a.key.cmp(&b.key),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
            SortTarget::Value => a.value.cmp(&b.value),
        }
    };
    match order {
        SortOrder::Descend => kvs.sort_by(|a, b| by(b, a)),
        _ => kvs.sort_by(by),
    }
}
