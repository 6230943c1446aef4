//! Building a store from another store's stored versions (etcd's `key`
//! bucket, read by `keel-snapshot` when migrating from etcd): every
//! uncompacted version of every key, with its revisions, version, lease and
//! value, checked as strictly as a snapshot is.

use super::error::MvccError;
use super::index::key_index::{KeyIndex, Version, check_successor};
use super::index::{Index, Loader};
use super::revision::Revision;
use super::store::Store;

/// One stored version of a key: a put (with its value) or a tombstone
/// (a delete, `value == None`), as etcd's `key` bucket holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedVersion {
    /// The key (non-empty).
    pub key: Vec<u8>,
    /// Revision of the change (`mod_revision`, with its sub-revision).
    pub revision: Revision,
    /// Main revision that created the key's generation (ignored for a tombstone).
    pub create_revision: i64,
    /// Version within the generation, from 1 (ignored for a tombstone).
    pub version: i64,
    /// Attached lease id (0: none; ignored for a tombstone).
    pub lease: i64,
    /// The value; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

impl ImportedVersion {
    fn as_version(&self) -> Version<'_> {
        match &self.value {
            None => Version::tombstone(self.revision),
            Some(value) => Version {
                rev: self.revision,
                create_revision: self.create_revision,
                version: self.version,
                lease: self.lease,
                value: Some(value),
            },
        }
    }
}

impl Store {
    /// A store at `current_revision`, compacted at `compact_revision` (-1:
    /// never), holding `versions`, which must come ascending by key and,
    /// within a key, by revision. Versions older than the compaction are
    /// dropped as [`Store::compact`] would drop them, so a compaction the
    /// source store had scheduled but not finished is completed. The result
    /// has the default txn limits.
    ///
    /// Errors: [`MvccError::CorruptSnapshot`] naming the key when a key is
    /// empty or out of order, a history breaks the generation rules
    /// (versions counting from 1, one create revision per generation, no
    /// tombstone after a tombstone), a revision exceeds `current_revision`,
    /// or the revisions themselves are impossible.
    pub fn import(
        current_revision: i64,
        compact_revision: i64,
        versions: impl IntoIterator<Item = ImportedVersion>,
    ) -> Result<Store, MvccError> {
        let corrupt = |why: String| MvccError::CorruptSnapshot(why);
        if current_revision < 1 || compact_revision < -1 || compact_revision > current_revision {
            return Err(corrupt(format!(
                "impossible revisions: current {current_revision}, compacted {compact_revision}"
            )));
        }
        let mut store = Store::new();
        store.current_revision = current_revision;
        store.compact_revision = compact_revision;
        let mut keys = KeyBuilder::new(&mut store.index, compact_revision);
        for version in versions {
            if version.revision.main > current_revision {
                return Err(corrupt(format!(
                    "key {:?}: revision {} above the current revision {current_revision}",
                    String::from_utf8_lossy(&version.key),
                    version.revision.main
                )));
            }
            keys.push(&version).map_err(corrupt)?;
        }
        keys.finish().map_err(corrupt)?;
        Ok(store)
    }
}

impl Store {
    /// Every stored version of every key (the reverse of [`Store::import`]):
    /// ascending by key and, within a key, by revision; puts with their
    /// value, deletes as tombstones (`value == None`, create revision,
    /// version and lease 0). Used to write etcd's `key` bucket.
    pub fn export_versions(&self) -> impl Iterator<Item = ImportedVersion> + '_ {
        self.index.iter().flat_map(|key_index| {
            key_index.versions().map(|v| ImportedVersion {
                key: key_index.key().to_vec(),
                revision: v.rev,
                create_revision: v.create_revision,
                version: v.version,
                lease: v.lease,
                value: v.value.map(<[u8]>::to_vec),
            })
        })
    }
}

/// Groups versions into key indexes and loads them in key order.
struct KeyBuilder<'a> {
    loader: Loader<'a>,
    compact_revision: i64,
    current: Option<KeyIndex>,
}

impl<'a> KeyBuilder<'a> {
    fn new(index: &'a mut Index, compact_revision: i64) -> KeyBuilder<'a> {
        KeyBuilder {
            loader: Loader::new(index),
            compact_revision,
            current: None,
        }
    }

    fn push(&mut self, imported: &ImportedVersion) -> Result<(), String> {
        let name = || String::from_utf8_lossy(&imported.key).into_owned();
        if imported.key.is_empty() {
            return Err("an empty key".to_owned());
        }
        let version = imported.as_version();
        if let Some(current) = &mut self.current
            && current.key() == imported.key.as_slice()
        {
            check_successor(Some(&current.latest()), &version)
                .map_err(|why| format!("key {:?}: {why}", name()))?;
            current.push(&version);
            return Ok(());
        }
        check_successor(None, &version).map_err(|why| format!("key {:?}: {why}", name()))?;
        self.flush()
            .map_err(|why| format!("before key {:?}: {why}", name()))?;
        self.current = Some(KeyIndex::new(&imported.key, &version));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        let Some(done) = self.current.take() else {
            return Ok(());
        };
        let kept = if self.compact_revision > 0 {
            done.compact(self.compact_revision)
        } else {
            Some(done)
        };
        match kept {
            Some(key_index) => match self.loader.push(key_index) {
                true => Ok(()),
                false => Err("keys out of order".to_owned()),
            },
            None => Ok(()),
        }
    }

    fn finish(mut self) -> Result<(), String> {
        self.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::mvcc::RangeRequest;

    fn put(key: &str, main: i64, create: i64, version: i64) -> ImportedVersion {
        ImportedVersion {
            key: key.as_bytes().to_vec(),
            revision: Revision::new(main, 0),
            create_revision: create,
            version,
            lease: 0,
            value: Some(format!("{key}@{main}").into_bytes()),
        }
    }

    fn tombstone(key: &str, main: i64) -> ImportedVersion {
        ImportedVersion {
            value: None,
            ..put(key, main, 0, 0)
        }
    }

    fn get(store: &Store, key: &str, revision: i64) -> Option<(i64, i64, i64)> {
        let response = store
            .range(&RangeRequest {
                key: key.as_bytes().to_vec(),
                revision,
                ..RangeRequest::default()
            })
            .unwrap();
        response
            .kvs
            .first()
            .map(|kv| (kv.create_revision, kv.mod_revision, kv.version))
    }

    #[test]
    fn imported_history_answers_like_the_source() {
        let versions = vec![
            put("a", 2, 2, 1),
            put("a", 4, 2, 2),
            tombstone("a", 5),
            put("a", 6, 6, 1),
            put("b", 3, 3, 1),
        ];
        let store = Store::import(6, -1, versions).unwrap();
        assert_eq!(get(&store, "a", 0), Some((6, 6, 1)));
        assert_eq!(get(&store, "a", 4), Some((2, 4, 2)));
        assert_eq!(get(&store, "a", 5), None);
        assert_eq!(get(&store, "b", 0), Some((3, 3, 1)));
        assert_eq!(store.current_revision(), 6);
        store.check_invariants().unwrap();
    }

    #[test]
    fn exported_versions_import_to_an_equal_store() {
        let versions = vec![
            put("a", 2, 2, 1),
            put("a", 4, 2, 2),
            tombstone("a", 5),
            put("a", 6, 6, 1),
            put("b", 3, 3, 1),
        ];
        let store = Store::import(6, -1, versions.clone()).unwrap();
        let exported: Vec<_> = store.export_versions().collect();
        assert_eq!(exported, versions);
        assert_eq!(Store::import(6, -1, exported).unwrap(), store);
    }

    #[test]
    fn compaction_is_completed_and_enforced() {
        let versions = vec![put("a", 2, 2, 1), put("a", 4, 2, 2), put("b", 3, 3, 1)];
        let store = Store::import(4, 4, versions).unwrap();
        assert_eq!(get(&store, "a", 4), Some((2, 4, 2)));
        assert_eq!(get(&store, "b", 4), Some((3, 3, 1)));
        assert!(
            store
                .range(&RangeRequest {
                    key: b"a".to_vec(),
                    revision: 3,
                    ..RangeRequest::default()
                })
                .is_err()
        );
    }

    #[test]
    fn broken_histories_are_refused() {
        let cases = vec![
            vec![put("a", 2, 2, 1), put("a", 3, 2, 3)],
            vec![put("b", 2, 2, 1), put("a", 3, 3, 1)],
            vec![put("a", 3, 3, 1), put("a", 2, 2, 1)],
            vec![tombstone("a", 2), tombstone("a", 3)],
            vec![put("a", 9, 9, 1)],
            vec![put("", 2, 2, 1)],
        ];
        for versions in cases {
            assert!(
                Store::import(5, -1, versions.clone()).is_err(),
                "{versions:?}"
            );
        }
    }
}
