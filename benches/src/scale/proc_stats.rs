//! A process's I/O counters and resident memory from Linux's `/proc`
//! (proc(5): `/proc/<pid>/io` and the `Rss*` lines of `/proc/<pid>/status`).

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// `/proc/<pid>/io`: bytes moved by the process (all its threads) since it
/// started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IoCounters {
    /// `wchar`: bytes passed to write(2) and similar calls, cached or not.
    pub wchar_bytes: u64,
    /// `write_bytes`: bytes the process caused to be sent to the storage
    /// layer (counted when a page cache page is dirtied).
    pub write_bytes: u64,
    /// `cancelled_write_bytes`: dirtied bytes never written because the
    /// file was truncated or deleted first.
    pub cancelled_write_bytes: u64,
    /// `read_bytes`: bytes fetched from the storage layer.
    pub read_bytes: u64,
}

impl IoCounters {
    /// The counters grown from `earlier` to `self` (0 where one shrank).
    pub fn since(&self, earlier: &IoCounters) -> IoCounters {
        IoCounters {
            wchar_bytes: self.wchar_bytes.saturating_sub(earlier.wchar_bytes),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            cancelled_write_bytes: self
                .cancelled_write_bytes
                .saturating_sub(earlier.cancelled_write_bytes),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
        }
    }
}

/// Resident memory from `/proc/<pid>/status`, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// `RssAnon`: resident anonymous memory (heap, stacks).
    pub rss_anon_bytes: u64,
    /// `RssFile`: resident file-backed memory (mapped files, the binary).
    pub rss_file_bytes: u64,
    /// `RssShmem`: resident shared memory.
    pub rss_shmem_bytes: u64,
}

impl Memory {
    /// `VmRSS`: the three parts together.
    pub fn rss_bytes(&self) -> u64 {
        self.rss_anon_bytes + self.rss_file_bytes + self.rss_shmem_bytes
    }
}

/// Reads `/proc/<pid>/io`. Errors when it cannot be read (no such
/// process, or the kernel keeps no per-task I/O accounting) or lacks a
/// counter.
pub fn read_io(pid: u32) -> Result<IoCounters> {
    let path = format!("/proc/{pid}/io");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_io(&text).with_context(|| format!("in {path}"))
}

/// Reads the `Rss*` lines of `/proc/<pid>/status`. Errors when it cannot
/// be read or lacks them.
pub fn read_memory(pid: u32) -> Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    parse_status(&text).with_context(|| format!("in {path}"))
}

/// The counters of a `/proc/<pid>/io` text (`name: value` lines).
pub fn parse_io(text: &str) -> Result<IoCounters> {
    Ok(IoCounters {
        wchar_bytes: field(text, "wchar")?,
        write_bytes: field(text, "write_bytes")?,
        cancelled_write_bytes: field(text, "cancelled_write_bytes")?,
        read_bytes: field(text, "read_bytes")?,
    })
}

/// The resident memory of a `/proc/<pid>/status` text (`RssAnon:  123 kB`;
/// the kernel's kB are KiB).
pub fn parse_status(text: &str) -> Result<Memory> {
    let kib = |name| field(text, name).map(|kib| kib * 1024);
    Ok(Memory {
        rss_anon_bytes: kib("RssAnon")?,
        rss_file_bytes: kib("RssFile")?,
        rss_shmem_bytes: kib("RssShmem")?,
    })
}

/// The number on the line `name: <number> [unit]` of `text`.
fn field(text: &str, name: &str) -> Result<u64> {
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        if key.trim() != name {
            continue;
        }
        let number = rest.split_whitespace().next().unwrap_or("");
        return number
            .parse()
            .with_context(|| format!("{name}: {number:?} is not a number"));
    }
    bail!("no {name} line")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_counters_parse_and_subtract() {
        let text = "rchar: 6976\nwchar: 300\nsyscr: 10\nsyscw: 2\nread_bytes: 4096\n\
                    write_bytes: 8192\ncancelled_write_bytes: 0\n";
        let io = parse_io(text).expect("parses");
        assert_eq!(
            (io.wchar_bytes, io.write_bytes, io.read_bytes),
            (300, 8192, 4096)
        );
        let later = IoCounters {
            write_bytes: 12288,
            ..io
        };
        assert_eq!(later.since(&io).write_bytes, 4096);
        assert_eq!(io.since(&later).write_bytes, 0);
    }

    #[test]
    fn status_rss_lines_are_kib() {
        let text = "Name:\tkeel\nVmRSS:\t    1816 kB\nRssAnon:\t     108 kB\n\
                    RssFile:\t    1708 kB\nRssShmem:\t       0 kB\n";
        let memory = parse_status(text).expect("parses");
        assert_eq!(memory.rss_anon_bytes, 108 * 1024);
        assert_eq!(memory.rss_file_bytes, 1708 * 1024);
        assert_eq!(memory.rss_bytes(), 1816 * 1024);
    }

    #[test]
    fn missing_or_bad_fields_are_errors() {
        assert!(parse_io("wchar: 1\n").is_err());
        assert!(parse_status("RssAnon: x kB\nRssFile: 1 kB\nRssShmem: 0 kB\n").is_err());
    }

    #[test]
    fn this_process_can_be_read() {
        let pid = std::process::id();
        assert!(read_memory(pid).expect("own status").rss_anon_bytes > 0);
        read_io(pid).expect("own io counters");
    }
}
