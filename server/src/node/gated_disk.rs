//! Test support: keel-wal's simulated disk on which removing or renaming
//! chosen files waits until the test opens a gate, as a slow unlink of a
//! large file, or the write of a large snapshot file before its rename,
//! does on a real disk (see `purge_pipeline.rs`, `snapshot_saver.rs`).

use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use keel_wal::{SimConfig, SimStorage, Storage};

/// Longest a removal waits for the gate, so a failing test cannot leave a
/// blocking-pool thread behind that the runtime's shutdown would wait for.
const GATE_WAIT_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Gate {
    open: bool,
    /// Removals waiting at the gate now.
    waiting: usize,
}

/// A simulated disk on which removing a file, or renaming it to another
/// name, waits at a gate (closed at first) when its name ends in `suffix`.
#[derive(Clone, Debug)]
pub(super) struct GatedDisk {
    inner: SimStorage,
    suffix: &'static str,
    gate: Arc<(Mutex<Gate>, Condvar)>,
}

impl GatedDisk {
    /// A new empty disk gating names ending in `suffix`, its gate closed.
    pub fn new(suffix: &'static str) -> GatedDisk {
        GatedDisk {
            inner: SimStorage::new(SimConfig::default()),
            suffix,
            gate: Arc::default(),
        }
    }

    /// How many removals wait at the gate.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Opens the gate for good.
    pub fn open_gate(&self) {
        self.lock().open = true;
        self.gate.1.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait_at_gate(&self) {
        let mut gate = self.lock();
        gate.waiting += 1;
        let (mut gate, _) = self
            .gate
            .1
            .wait_timeout_while(gate, GATE_WAIT_MAX, |g| !g.open)
            .unwrap_or_else(|p| p.into_inner());
        gate.waiting -= 1;
    }
}

impl Storage for GatedDisk {
    type File = <SimStorage as Storage>::File;

    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn create(&self, name: &str) -> io::Result<Self::File> {
        self.inner.create(name)
    }
    fn open(&self, name: &str) -> io::Result<Self::File> {
        self.inner.open(name)
    }
    fn len(&self, file: &Self::File) -> io::Result<u64> {
        self.inner.len(file)
    }
    fn write_at(&self, file: &Self::File, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write_at(file, offset, data)
    }
    fn write_log_at(&self, file: &Self::File, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write_log_at(file, offset, data)
    }
    fn read_all(&self, name: &str) -> io::Result<Bytes> {
        self.inner.read_all(name)
    }
    fn map(&self, name: &str) -> io::Result<Bytes> {
        self.inner.map(name)
    }
    fn sync(&self, file: &Self::File) -> io::Result<()> {
        self.inner.sync(file)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.inner.sync_dir()
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        if from.ends_with(self.suffix) {
            self.wait_at_gate();
        }
        self.inner.rename(from, to)
    }
    fn truncate(&self, file: &Self::File, len_bytes: u64) -> io::Result<()> {
        self.inner.truncate(file, len_bytes)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        if name.ends_with(self.suffix) {
            self.wait_at_gate();
        }
        self.inner.remove(name)
    }
    fn preallocate(&self, file: &Self::File, len_bytes: u64) -> io::Result<()> {
        self.inner.preallocate(file, len_bytes)
    }
}
