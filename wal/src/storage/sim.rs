//! A simulated disk, deterministic from a seed, with the failure modes of a
//! real one: writes that were not fsynced are lost on [`SimStorage::crash`]
//! (a random prefix of them may survive, the last surviving one torn at any
//! byte, or with [`SimConfig::reorder_sectors`] each surviving one keeping
//! a random subset of its sectors), names that were not made durable by a directory fsync disappear,
//! bits flip in stored data, fsync fails, and the disk fills up (ENOSPC).
//!
//! Used by the simulator (madsim's own file system has no crash semantics)
//! and by the WAL's property tests and fuzz target. No threads, no clock.

use super::Storage;
use crate::record::{SECTOR_BYTES, sector_chunks};
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

/// Fault settings of a [`SimStorage`].
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of every random choice the disk makes.
    pub seed: u64,
    /// Total bytes the disk holds (sum of all file lengths); writes or
    /// preallocations that would grow a file beyond it fail with
    /// `StorageFull` (writes inside a file's length always fit).
    pub capacity_bytes: u64,
    /// Probability, in parts per million, that an fsync of a file fails.
    pub sync_failure_ppm: u32,
    /// At a crash, every surviving write since the file's last fsync keeps
    /// each of its 512-byte sectors (aligned in the file) or loses it at
    /// random, instead of the last one keeping a prefix: a disk that
    /// persists unsynced sectors in any order, across requests.
    pub reorder_sectors: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 0,
            capacity_bytes: u64::MAX,
            sync_failure_ppm: 0,
            reorder_sectors: false,
        }
    }
}

/// The simulated disk. Clones share the same disk.
#[derive(Clone, Debug)]
pub struct SimStorage {
    state: Arc<Mutex<SimState>>,
}

/// An open file of a [`SimStorage`]. Handles opened before a crash are stale
/// afterwards and every operation on them fails.
#[derive(Clone, Debug)]
pub struct SimFile {
    inode: u64,
    epoch: u64,
}

/// Counters of what happened on the simulated disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Successful file fsyncs.
    pub syncs: u64,
    /// Directory fsyncs.
    pub dir_syncs: u64,
    /// Simulated crashes.
    pub crashes: u64,
    /// Bytes handed to successful writes.
    pub written_bytes: u64,
    /// Files created.
    pub creates: u64,
}

#[derive(Debug)]
enum PendingOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct Inode {
    /// What reads see (the page cache).
    data: Content,
    /// What survives a crash.
    durable: Content,
    /// Operations since the last fsync, oldest first.
    pending: Vec<PendingOp>,
}

/// A file's bytes: `bytes`, then zeros up to `len`. Preallocated or
/// zero-filled space is not held in memory, so a simulated 64 MiB segment
/// costs what was written into it (a simulation runs many members, and a
/// sweep many simulations in one process).
#[derive(Clone, Debug, Default)]
struct Content {
    bytes: Vec<u8>,
    len: usize,
}

impl Content {
    fn from_vec(bytes: Vec<u8>) -> Content {
        let len = bytes.len();
        Content { bytes, len }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Writes `data` at `offset`, growing the file (with zeros) if needed.
    fn write(&mut self, offset: usize, data: &[u8]) {
        let end = offset + data.len();
        self.len = self.len.max(end);
        if offset >= self.bytes.len() && data.iter().all(|b| *b == 0) {
            return;
        }
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[offset..end].copy_from_slice(data);
    }

    /// Cuts the file to `len` bytes or extends it with zeros.
    fn set_len(&mut self, len: usize) {
        self.bytes.truncate(len);
        self.len = len;
    }

    /// Flips bit `bit` of byte `byte`; false if the byte is beyond the end.
    fn flip(&mut self, byte: usize, bit: u64) -> bool {
        if byte >= self.len {
            return false;
        }
        if byte >= self.bytes.len() {
            self.bytes.resize(byte + 1, 0);
        }
        self.bytes[byte] ^= 1 << (bit % 8);
        true
    }

    /// Every byte, zeros included.
    fn to_vec(&self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.len);
        all.extend_from_slice(&self.bytes);
        all.resize(self.len, 0);
        all
    }
}

#[derive(Debug)]
struct SimState {
    config: SimConfig,
    rng: u64,
    epoch: u64,
    next_inode: u64,
    inodes: BTreeMap<u64, Inode>,
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    forced_sync_failures: u32,
    forced_dir_sync_failures: u32,
    /// Names whose removal fails.
    unremovable: BTreeSet<String>,
    stats: SimStats,
}

/// The error of an operation on `name` that [`SimStorage::refuse_removal`]
/// refuses.
fn refused(doing: &str, name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("{doing} {name:?} refused (simulated)"),
    )
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no such file {name:?}"))
}

/// Which bytes of a write survive a crash.
enum Keep {
    /// All of them.
    All,
    /// The first this many.
    Prefix(usize),
    /// The sectors (512 bytes, aligned in the file; the write's first is
    /// sector 0) whose bit is set: sector `i` is bit `i % 64` of word
    /// `i / 64`.
    Sectors(Vec<u64>),
}

fn apply(data: &mut Content, op: &PendingOp, keep: Keep) {
    let (offset, bytes) = match op {
        PendingOp::Write { offset, data } => (*offset as usize, data),
        PendingOp::SetLen(len) => return data.set_len(*len as usize),
    };
    match keep {
        Keep::All => data.write(offset, bytes),
        Keep::Prefix(n) => data.write(offset, &bytes[..n.min(bytes.len())]),
        Keep::Sectors(bits) => {
            let chunks = sector_chunks(offset, offset + bytes.len());
            for (sector, chunk) in chunks.enumerate() {
                if bits
                    .get(sector / 64)
                    .is_some_and(|w| w >> (sector % 64) & 1 == 1)
                {
                    data.write(
                        chunk.start,
                        &bytes[chunk.start - offset..chunk.end - offset],
                    );
                }
            }
        }
    }
}

impl SimState {
    /// splitmix64: a small, well-distributed deterministic generator.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Random keep bits for the sectors of a write of `len_bytes` at
    /// `offset` (see [`Keep::Sectors`]).
    fn sector_bits(&mut self, offset: u64, len_bytes: usize) -> Vec<u64> {
        let sector = SECTOR_BYTES as u64;
        let end = offset + len_bytes as u64;
        let sectors = end.div_ceil(sector).saturating_sub(offset / sector);
        (0..sectors.div_ceil(64)).map(|_| self.next_u64()).collect()
    }

    /// Uniform in `0..=max`.
    fn below_or_eq(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            self.next_u64()
        } else {
            self.next_u64() % (max + 1)
        }
    }

    fn inode(&mut self, file: &SimFile) -> io::Result<&mut Inode> {
        if file.epoch != self.epoch {
            return Err(io::Error::other(
                "stale file handle (opened before a crash)",
            ));
        }
        self.inodes
            .get_mut(&file.inode)
            .ok_or_else(|| not_found("(removed file)"))
    }

    fn used_bytes(&self) -> u64 {
        self.inodes
            .values()
            .map(|i| i.data.len().max(i.durable.len()) as u64)
            .sum()
    }

    fn check_space(&self, file: &SimFile, new_len: u64) -> io::Result<()> {
        let current = self
            .inodes
            .get(&file.inode)
            .map_or(0, |i| i.data.len() as u64);
        let growth = new_len.saturating_sub(current);
        // As on a real file system, writing inside a file's allocated
        // length needs no new space.
        if growth > 0 && self.used_bytes().saturating_add(growth) > self.config.capacity_bytes {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(())
    }

    fn collect_garbage(&mut self) {
        let live: Vec<u64> = self
            .names
            .values()
            .chain(self.durable_names.values())
            .copied()
            .collect();
        self.inodes.retain(|inode, _| live.contains(inode));
    }
}

impl SimStorage {
    /// An empty disk with the given faults.
    pub fn new(config: SimConfig) -> SimStorage {
        let rng = config.seed;
        SimStorage {
            state: Arc::new(Mutex::new(SimState {
                config,
                rng,
                epoch: 0,
                next_inode: 1,
                inodes: BTreeMap::new(),
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                forced_sync_failures: 0,
                forced_dir_sync_failures: 0,
                unremovable: BTreeSet::new(),
                stats: SimStats::default(),
            })),
        }
    }

    /// A disk already holding `files` (name, content), all durable. Used to
    /// feed arbitrary directories to recovery (fuzzing).
    pub fn with_files(config: SimConfig, files: Vec<(String, Vec<u8>)>) -> SimStorage {
        let disk = SimStorage::new(config);
        {
            let mut s = disk.lock();
            for (name, data) in files {
                let inode = s.next_inode;
                s.next_inode += 1;
                s.inodes.insert(
                    inode,
                    Inode {
                        durable: Content::from_vec(data.clone()),
                        data: Content::from_vec(data),
                        pending: Vec::new(),
                    },
                );
                s.names.insert(name.clone(), inode);
                s.durable_names.insert(name, inode);
            }
        }
        disk
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock cannot leave the maps half-updated
        // in a way that matters to a simulation, so recover the guard.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Simulates power loss: every name not made durable by a directory
    /// fsync is gone (removed names come back), and for each file a random
    /// prefix of the writes since its last fsync survives, the last of them
    /// torn at a random byte (or, with [`SimConfig::reorder_sectors`],
    /// each of them keeping a random subset of its sectors). All open
    /// handles become stale.
    pub fn crash(&self) {
        let mut s = self.lock();
        s.epoch += 1;
        s.stats.crashes += 1;
        s.names = s.durable_names.clone();
        s.collect_garbage();
        let inodes: Vec<u64> = s.inodes.keys().copied().collect();
        for inode in inodes {
            let pending = s
                .inodes
                .get_mut(&inode)
                .map(|i| std::mem::take(&mut i.pending))
                .unwrap_or_default();
            let survivors = s.below_or_eq(pending.len() as u64) as usize;
            let mut data = s
                .inodes
                .get(&inode)
                .map(|i| i.durable.clone())
                .unwrap_or_default();
            for (n, op) in pending.iter().take(survivors).enumerate() {
                let keep = match op {
                    PendingOp::Write { offset, data } if s.config.reorder_sectors => {
                        Keep::Sectors(s.sector_bits(*offset, data.len()))
                    }
                    PendingOp::Write { data, .. } if n + 1 == survivors => {
                        Keep::Prefix(s.below_or_eq(data.len() as u64) as usize)
                    }
                    _ => Keep::All,
                };
                apply(&mut data, op, keep);
            }
            if let Some(i) = s.inodes.get_mut(&inode) {
                i.durable = data.clone();
                i.data = data;
            }
        }
    }

    /// Flips one bit of the named file, in both the cached and the durable
    /// copy. Errors: no such file, or `bit` beyond its end.
    pub fn flip_bit(&self, name: &str, bit: u64) -> io::Result<()> {
        let mut s = self.lock();
        let inode = *s.names.get(name).ok_or_else(|| not_found(name))?;
        let i = s.inodes.get_mut(&inode).ok_or_else(|| not_found(name))?;
        let byte = (bit / 8) as usize;
        if !i.data.flip(byte, bit) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bit beyond end of file",
            ));
        }
        i.durable.flip(byte, bit);
        Ok(())
    }

    /// Flips a random bit of a random non-empty file chosen from the seed;
    /// returns the file and bit, or `None` when every file is empty.
    pub fn flip_random_bit(&self) -> Option<(String, u64)> {
        let (name, bit) = {
            let mut s = self.lock();
            let sized: Vec<(String, u64)> = s
                .names
                .iter()
                .filter_map(|(n, i)| s.inodes.get(i).map(|f| (n.clone(), f.data.len() as u64)))
                .filter(|(_, len)| *len > 0)
                .collect();
            if sized.is_empty() {
                return None;
            }
            let pick = s.below_or_eq(sized.len() as u64 - 1) as usize;
            let (name, len) = sized[pick].clone();
            let bit = s.below_or_eq(len * 8 - 1);
            (name, bit)
        };
        self.flip_bit(&name, bit).ok().map(|()| (name, bit))
    }

    /// Makes the next `count` file fsyncs fail.
    pub fn fail_next_syncs(&self, count: u32) {
        self.lock().forced_sync_failures = count;
    }

    /// Makes the next `count` directory fsyncs fail (the names stay as they
    /// were last made durable).
    pub fn fail_next_dir_syncs(&self, count: u32) {
        self.lock().forced_dir_sync_failures = count;
    }

    /// Makes removals of `name`, and renames of it to another name, fail
    /// with a permission error (leaving the file in place) while `refuse` is
    /// true.
    pub fn refuse_removal(&self, name: &str, refuse: bool) {
        let mut s = self.lock();
        if refuse {
            s.unremovable.insert(name.to_string());
        } else {
            s.unremovable.remove(name);
        }
    }

    /// Changes the disk capacity (see [`SimConfig::capacity_bytes`]).
    pub fn set_capacity_bytes(&self, capacity_bytes: u64) {
        self.lock().config.capacity_bytes = capacity_bytes;
    }

    /// Counters of syncs and crashes so far.
    pub fn stats(&self) -> SimStats {
        self.lock().stats
    }

    /// The durable content of the named file (what a crash now would leave,
    /// before tearing), or `None` if the name is not durable.
    pub fn durable_content(&self, name: &str) -> Option<Vec<u8>> {
        let s = self.lock();
        let inode = s.durable_names.get(name)?;
        s.inodes.get(inode).map(|i| i.durable.to_vec())
    }
}

impl Storage for SimStorage {
    type File = SimFile;

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.lock().names.keys().cloned().collect())
    }

    fn create(&self, name: &str) -> io::Result<SimFile> {
        let mut s = self.lock();
        if s.names.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name:?} exists"),
            ));
        }
        let inode = s.next_inode;
        s.next_inode += 1;
        s.inodes.insert(inode, Inode::default());
        s.names.insert(name.to_string(), inode);
        s.stats.creates += 1;
        Ok(SimFile {
            inode,
            epoch: s.epoch,
        })
    }

    fn open(&self, name: &str) -> io::Result<SimFile> {
        let s = self.lock();
        let inode = *s.names.get(name).ok_or_else(|| not_found(name))?;
        Ok(SimFile {
            inode,
            epoch: s.epoch,
        })
    }

    fn len(&self, file: &SimFile) -> io::Result<u64> {
        Ok(self.lock().inode(file)?.data.len() as u64)
    }

    fn write_at(&self, file: &SimFile, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut s = self.lock();
        s.inode(file)?;
        s.check_space(file, offset.saturating_add(data.len() as u64))?;
        let inode = s.inode(file)?;
        let op = PendingOp::Write {
            offset,
            data: data.to_vec(),
        };
        apply(&mut inode.data, &op, Keep::All);
        inode.pending.push(op);
        s.stats.written_bytes += data.len() as u64;
        Ok(())
    }

    /// As a real file's direct write: the rest of the last block (within
    /// the file) is zero-filled, so a log that relied on bytes after its
    /// data would lose them here too.
    fn write_log_at(&self, file: &SimFile, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset.saturating_add(data.len() as u64);
        let len = self.len(file)?;
        let padded_end = end
            .next_multiple_of(super::LOG_BLOCK_BYTES)
            .min(len.max(end));
        let mut padded = data.to_vec();
        padded.resize((padded_end - offset) as usize, 0);
        self.write_at(file, offset, &padded)
    }

    fn read_all(&self, name: &str) -> io::Result<Bytes> {
        let s = self.lock();
        let inode = s.names.get(name).ok_or_else(|| not_found(name))?;
        let data = s.inodes.get(inode).ok_or_else(|| not_found(name))?;
        Ok(Bytes::from(data.data.to_vec()))
    }

    fn sync(&self, file: &SimFile) -> io::Result<()> {
        let mut s = self.lock();
        s.inode(file)?;
        let forced = s.forced_sync_failures > 0;
        let ppm = u64::from(s.config.sync_failure_ppm);
        if forced || (ppm > 0 && s.below_or_eq(999_999) < ppm) {
            s.forced_sync_failures = s.forced_sync_failures.saturating_sub(1);
            return Err(io::Error::other("simulated fsync failure"));
        }
        let inode = s.inode(file)?;
        inode.durable = inode.data.clone();
        inode.pending.clear();
        s.stats.syncs += 1;
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut s = self.lock();
        if s.forced_dir_sync_failures > 0 {
            s.forced_dir_sync_failures -= 1;
            return Err(io::Error::other("simulated directory fsync failure"));
        }
        s.durable_names = s.names.clone();
        s.collect_garbage();
        s.stats.dir_syncs += 1;
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut s = self.lock();
        if s.unremovable.contains(from) {
            return Err(refused("renaming", from));
        }
        let inode = s.names.remove(from).ok_or_else(|| not_found(from))?;
        s.names.insert(to.to_string(), inode);
        Ok(())
    }

    fn truncate(&self, file: &SimFile, len_bytes: u64) -> io::Result<()> {
        let mut s = self.lock();
        s.inode(file)?;
        s.check_space(file, len_bytes)?;
        let inode = s.inode(file)?;
        let op = PendingOp::SetLen(len_bytes);
        apply(&mut inode.data, &op, Keep::All);
        inode.pending.push(op);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut s = self.lock();
        if s.unremovable.contains(name) {
            return Err(refused("removing", name));
        }
        s.names.remove(name).ok_or_else(|| not_found(name))?;
        Ok(())
    }

    fn preallocate(&self, file: &SimFile, len_bytes: u64) -> io::Result<()> {
        if self.len(file)? >= len_bytes {
            return Ok(());
        }
        self.truncate(file, len_bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn disk(seed: u64) -> SimStorage {
        SimStorage::new(SimConfig {
            seed,
            ..SimConfig::default()
        })
    }

    #[test]
    fn synced_data_and_names_survive_a_crash() {
        let d = disk(1);
        let f = d.create("a").unwrap();
        d.write_at(&f, 0, b"durable").unwrap();
        d.sync(&f).unwrap();
        d.sync_dir().unwrap();
        d.crash();
        assert_eq!(&d.read_all("a").unwrap()[..], b"durable");
        assert!(d.len(&f).is_err(), "handles are stale after a crash");
    }

    #[test]
    fn a_reordering_disk_keeps_whole_sectors_of_the_last_write_in_any_order() {
        let mut kept_a_later_sector_alone = false;
        for seed in 0..64 {
            let d = SimStorage::new(SimConfig {
                seed,
                reorder_sectors: true,
                ..SimConfig::default()
            });
            let f = d.create("a").unwrap();
            d.write_at(&f, 0, &[1; 100]).unwrap();
            d.sync(&f).unwrap();
            d.sync_dir().unwrap();
            // Starts mid-sector: sectors are aligned in the file.
            d.write_at(&f, 100, &[2; 2000]).unwrap();
            d.crash();
            let data = d.read_all("a").unwrap();
            assert_eq!(&data[..100], &[1; 100][..], "seed {seed}");
            let sector = |n: usize| {
                &data[(n * 512).max(100).min(data.len())..((n + 1) * 512).min(data.len())]
            };
            let whole: Vec<bool> = (0..5).map(|n| sector(n).iter().all(|b| *b == 2)).collect();
            for n in 0..5 {
                let s = sector(n);
                assert!(
                    s.iter().all(|b| *b == 2) || s.iter().all(|b| *b == 0),
                    "seed {seed}"
                );
            }
            kept_a_later_sector_alone |= !whole[0] && whole[1..].iter().any(|w| *w);
        }
        assert!(
            kept_a_later_sector_alone,
            "some crash kept a later sector but not the first"
        );
    }

    #[test]
    fn unsynced_names_vanish_and_removed_names_return() {
        let d = disk(2);
        let f = d.create("kept").unwrap();
        d.sync(&f).unwrap();
        d.sync_dir().unwrap();
        d.create("lost").unwrap();
        d.remove("kept").unwrap();
        d.crash();
        assert_eq!(d.list().unwrap(), vec!["kept".to_string()]);
        d.rename("kept", "renamed").unwrap();
        d.crash();
        assert_eq!(d.list().unwrap(), vec!["kept".to_string()]);
    }

    #[test]
    fn unsynced_writes_survive_only_as_a_torn_prefix() {
        for seed in 0..200 {
            let d = disk(seed);
            let f = d.create("a").unwrap();
            d.write_at(&f, 0, &[1; 10]).unwrap();
            d.sync(&f).unwrap();
            d.sync_dir().unwrap();
            d.write_at(&f, 10, &[2; 10]).unwrap();
            d.write_at(&f, 20, &[3; 10]).unwrap();
            d.crash();
            let data = d.read_all("a").unwrap();
            assert!(data.len() >= 10 && data.len() <= 30, "seed {seed}");
            assert!(data[..10].iter().all(|b| *b == 1));
            for (i, b) in data.iter().enumerate().skip(10) {
                assert_eq!(*b, if i < 20 { 2 } else { 3 }, "seed {seed}");
            }
        }
    }

    #[test]
    fn crash_is_deterministic_from_the_seed() {
        let run = |seed| {
            let d = disk(seed);
            let f = d.create("a").unwrap();
            d.sync_dir().unwrap();
            d.write_at(&f, 0, &[7; 1000]).unwrap();
            d.crash();
            d.read_all("a").unwrap().len()
        };
        assert_eq!(run(42), run(42));
        assert!(
            (0..20)
                .map(run)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 1
        );
    }

    #[test]
    fn preallocated_and_zero_filled_space_is_not_held_in_memory() {
        let mut c = Content::default();
        c.set_len(64 << 20);
        c.write(0, b"head");
        c.write(4096, &[0; 1 << 20]);
        assert_eq!((c.len(), c.bytes.len()), (64 << 20, 4));
        c.write(10, b"x");
        assert_eq!(&c.to_vec()[..12], b"head\0\0\0\0\0\0x\0");
        // Cut back, then extended again: the cut bytes read as zeros.
        c.set_len(2);
        c.set_len(8);
        assert_eq!(c.to_vec(), b"he\0\0\0\0\0\0");
        assert!(c.flip(7, 1) && !c.flip(8, 0));
        assert_eq!(c.to_vec(), b"he\0\0\0\0\0\x02");
        let d = SimStorage::new(SimConfig::default());
        let f = d.create("seg").unwrap();
        d.preallocate(&f, 64 << 20).unwrap();
        d.write_at(&f, 0, b"abc").unwrap();
        d.sync(&f).unwrap();
        assert_eq!(d.len(&f).unwrap(), 64 << 20);
        let all = d.read_all("seg").unwrap();
        assert_eq!((all.len(), &all[..4]), (64 << 20, &b"abc\0"[..]));
    }

    #[test]
    fn forced_removal_and_directory_fsync_failures() {
        let d = SimStorage::new(SimConfig::default());
        d.create("a").unwrap();
        d.sync_dir().unwrap();
        d.refuse_removal("a", true);
        let err = d.remove("a").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        let err = d.rename("a", "b").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(d.list().unwrap(), ["a"]);
        d.refuse_removal("a", false);
        d.remove("a").unwrap();
        d.fail_next_dir_syncs(1);
        assert!(d.sync_dir().is_err());
        // The failed fsync made nothing durable: the name comes back.
        d.crash();
        assert_eq!(d.list().unwrap(), ["a"]);
        d.remove("a").unwrap();
        d.sync_dir().unwrap();
        d.crash();
        assert!(d.list().unwrap().is_empty());
    }

    #[test]
    fn faults_fsync_enospc_and_bit_flips() {
        let d = SimStorage::new(SimConfig {
            seed: 3,
            capacity_bytes: 100,
            ..SimConfig::default()
        });
        let f = d.create("a").unwrap();
        d.write_at(&f, 0, &[0; 60]).unwrap();
        let err = d.write_at(&f, 60, &[0; 60]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(
            d.preallocate(&f, 200).unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert_eq!(d.len(&f).unwrap(), 60, "a failed write changes nothing");
        d.fail_next_syncs(1);
        assert!(d.sync(&f).is_err());
        d.sync(&f).unwrap();
        d.flip_bit("a", 9).unwrap();
        assert_eq!(d.read_all("a").unwrap()[1], 2);
        assert!(d.flip_bit("a", 60 * 8).is_err());
        assert!(d.flip_random_bit().is_some());
        let always = SimStorage::new(SimConfig {
            seed: 3,
            sync_failure_ppm: 1_000_000,
            ..SimConfig::default()
        });
        let f = always.create("b").unwrap();
        assert!(always.sync(&f).is_err());
    }
}
