//! [`Storage`] over a real directory: `std::fs`, `fdatasync` of files, fsync
//! of the directory, `fallocate` for preallocation, direct I/O for log
//! appends (see `direct`) and `mmap` (memmap2) to read whole segments during
//! recovery without copying them.

use super::Storage;
use super::direct::DirectLog;
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A real directory. Cheap to clone (the path is shared).
///
/// The directory must be used by one process only: recovery maps sealed
/// segments in memory, and another writer would change bytes under it.
#[derive(Clone, Debug)]
pub struct FsStorage {
    root: Arc<PathBuf>,
}

/// An open file of an [`FsStorage`]. Clones share the handle, including
/// its copy of the last block written by [`Storage::write_log_at`]; a log's
/// tail must not be written through another handle of the same file.
#[derive(Clone, Debug)]
pub struct FsFile {
    file: Arc<File>,
    /// The file opened again with `O_DIRECT`, where the file system allows.
    direct: Option<Arc<Mutex<DirectLog>>>,
}

impl FsFile {
    fn new(file: File, path: &Path) -> FsFile {
        FsFile {
            file: Arc::new(file),
            direct: DirectLog::open(path).map(|d| Arc::new(Mutex::new(d))),
        }
    }

    /// The direct-I/O side, if any (a panic while it was held left it
    /// consistent: its block copy is only marked current after a write).
    fn direct(&self) -> Option<MutexGuard<'_, DirectLog>> {
        let direct = self.direct.as_ref()?;
        Some(direct.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Forgets the direct side's view of the content and length.
    fn invalidate_direct(&self) {
        if let Some(mut direct) = self.direct() {
            direct.invalidate();
        }
    }

    /// Direct writes issued through this handle (0 without direct I/O).
    #[cfg(test)]
    pub(crate) fn direct_writes(&self) -> u64 {
        self.direct().map_or(0, |d| d.writes())
    }
}

impl FsStorage {
    /// Uses `dir` as the storage root, creating it (and its parents) if it
    /// does not exist. Errors: the directory cannot be created.
    pub fn open(dir: impl AsRef<Path>) -> io::Result<FsStorage> {
        std::fs::create_dir_all(dir.as_ref())?;
        Ok(FsStorage {
            root: Arc::new(dir.as_ref().to_path_buf()),
        })
    }

    /// The storage root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, name: &str) -> io::Result<PathBuf> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad file name {name:?}"),
            ));
        }
        Ok(self.root.join(name))
    }
}

impl Storage for FsStorage {
    type File = FsFile;

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for item in std::fs::read_dir(self.root.as_path())? {
            let item = item?;
            if item.file_type()?.is_file()
                && let Ok(name) = item.file_name().into_string()
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn create(&self, name: &str) -> io::Result<FsFile> {
        let path = self.path(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(FsFile::new(file, &path))
    }

    fn open(&self, name: &str) -> io::Result<FsFile> {
        let path = self.path(name)?;
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        Ok(FsFile::new(file, &path))
    }

    fn len(&self, file: &FsFile) -> io::Result<u64> {
        Ok(file.file.metadata()?.len())
    }

    fn write_at(&self, file: &FsFile, offset: u64, data: &[u8]) -> io::Result<()> {
        file.invalidate_direct();
        file.file.write_all_at(data, offset)
    }

    fn write_log_at(&self, file: &FsFile, offset: u64, data: &[u8]) -> io::Result<()> {
        if let Some(mut direct) = file.direct()
            && direct.write(offset, data, &file.file)?
        {
            return Ok(());
        }
        self.write_at(file, offset, data)
    }

    fn read_all(&self, name: &str) -> io::Result<Bytes> {
        let file = File::open(self.path(name)?)?;
        if file.metadata()?.len() == 0 {
            return Ok(Bytes::new());
        }
        // SAFETY: the storage directory belongs to this process alone (see
        // `FsStorage`), and keel never writes into a file region it has read
        // back: sealed segments and snapshot files are only ever renamed or
        // removed after they are complete (an unlinked file stays mapped),
        // and recovery copies what it keeps from the last segment before it
        // repairs or appends to that segment.
        // `populate` reads the whole segment in one go (recovery reads it all,
        // front to back): about 2x faster replay than faulting page by page.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().populate().map(&file)? };
        Ok(Bytes::from_owner(map))
    }

    fn map(&self, name: &str) -> io::Result<Bytes> {
        let file = File::open(self.path(name)?)?;
        if file.metadata()?.len() == 0 {
            return Ok(Bytes::new());
        }
        // SAFETY: as in `read_all`; callers map only complete files that
        // are never written again (snapshot files).
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Bytes::from_owner(map))
    }

    fn sync(&self, file: &FsFile) -> io::Result<()> {
        file.file.sync_data()
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(self.root.as_path())?.sync_all()
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path(from)?, self.path(to)?)
    }

    fn truncate(&self, file: &FsFile, len_bytes: u64) -> io::Result<()> {
        file.invalidate_direct();
        file.file.set_len(len_bytes)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path(name)?)
    }

    fn preallocate(&self, file: &FsFile, len_bytes: u64) -> io::Result<()> {
        if self.len(file)? >= len_bytes {
            return Ok(());
        }
        file.invalidate_direct();
        #[cfg(target_os = "linux")]
        {
            let flags = rustix::fs::FallocateFlags::empty();
            match rustix::fs::fallocate(file.file.as_ref(), flags, 0, len_bytes) {
                Ok(()) => return Ok(()),
                Err(e) if e == rustix::io::Errno::NOSPC => {
                    return Err(io::Error::from(io::ErrorKind::StorageFull));
                }
                // File systems without fallocate (tmpfs on old kernels, ...)
                // fall through to a plain length change.
                Err(_) => {}
            }
        }
        file.file.set_len(len_bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage::open(dir.path()).unwrap();
        let f = s.create("a.tmp").unwrap();
        assert_eq!(
            s.create("a.tmp").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        s.write_at(&f, 0, b"hello").unwrap();
        s.preallocate(&f, 4096).unwrap();
        assert_eq!(s.len(&f).unwrap(), 4096);
        s.sync(&f).unwrap();
        s.rename("a.tmp", "a").unwrap();
        s.sync_dir().unwrap();
        assert_eq!(s.list().unwrap(), vec!["a".to_string()]);
        let data = s.read_all("a").unwrap();
        assert_eq!(&data[..5], b"hello");
        assert!(data[5..].iter().all(|b| *b == 0));
        let f = s.open("a").unwrap();
        s.truncate(&f, 2).unwrap();
        assert_eq!(&s.read_all("a").unwrap()[..], b"he");
        s.truncate(&f, 0).unwrap();
        assert!(s.read_all("a").unwrap().is_empty());
        s.remove("a").unwrap();
        assert!(s.list().unwrap().is_empty());
        assert_eq!(s.open("a").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(
            s.open("../x").unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
