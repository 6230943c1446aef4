//! Transparent huge pages for the heap.
//!
//! keel keeps its whole key-value state in memory: a read of a random key
//! touches a few cache lines spread over hundreds of MB, and with 4 KiB
//! pages each of them also misses the TLB. glibc's malloc backs its heap
//! with transparent huge pages when the `glibc.malloc.hugetlb=1` tunable is
//! set (glibc 2.35 and later; the kernel's THP mode must be `madvise` or
//! `always`). On this project's CI machine that made the MVCC benchmark's
//! puts and random reads 10-25% faster with the same resident memory.
//! Tunables are read when the process starts, so [`reexec_with_huge_pages`]
//! starts the program again, in place, with the tunable set.

use std::ffi::{OsStr, OsString};

/// Set to `0` to keep 4 KiB pages (no re-exec).
pub const OPT_OUT_ENV: &str = "KEEL_HUGE_PAGES";

/// The glibc tunable that makes malloc use transparent huge pages.
pub const MALLOC_HUGE_PAGES: &str = "glibc.malloc.hugetlb=1";

/// Re-executes the running program (same arguments and environment, same
/// process id) with [`MALLOC_HUGE_PAGES`] added to `GLIBC_TUNABLES`, unless
/// it is set already, [`OPT_OUT_ENV`] is `0`, the kernel has THP turned off,
/// or this is not Linux with glibc. Call it first thing in `main`, before
/// any thread starts.
///
/// Returns only when it did not re-execute: `None` when there was no need,
/// or the error `exec` gave (the program then runs on as it is).
pub fn reexec_with_huge_pages() -> Option<std::io::Error> {
    let tunables = std::env::var_os("GLIBC_TUNABLES").unwrap_or_default();
    let opt_out = std::env::var_os(OPT_OUT_ENV);
    if !wanted(&tunables, opt_out.as_deref(), thp_available()) {
        return None;
    }
    reexec(with_tunable(tunables))
}

/// Whether to re-execute, given `GLIBC_TUNABLES`, [`OPT_OUT_ENV`] and the
/// kernel's THP availability.
fn wanted(tunables: &OsStr, opt_out: Option<&OsStr>, thp: bool) -> bool {
    let set_already = tunables.to_string_lossy().contains("glibc.malloc.hugetlb");
    thp && !set_already && opt_out.is_none_or(|v| v != "0")
}

/// `GLIBC_TUNABLES` with [`MALLOC_HUGE_PAGES`] added (colon-separated).
fn with_tunable(tunables: OsString) -> OsString {
    if tunables.is_empty() {
        return MALLOC_HUGE_PAGES.into();
    }
    let mut joined = tunables;
    joined.push(":");
    joined.push(MALLOC_HUGE_PAGES);
    joined
}

/// True when the kernel's THP mode lets a process ask for huge pages.
fn thp_available() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|mode| !mode.contains("[never]"))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn reexec(tunables: OsString) -> Option<std::io::Error> {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => return Some(err),
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", tunables)
        .exec();
    Some(err)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn reexec(_tunables: OsString) -> Option<std::io::Error> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn re_executes_once_unless_opted_out_or_without_thp() {
        let none = OsStr::new("");
        assert!(wanted(none, None, true));
        assert!(wanted(none, Some(OsStr::new("1")), true));
        assert!(!wanted(none, Some(OsStr::new("0")), true));
        assert!(!wanted(none, None, false));
        assert!(!wanted(OsStr::new("glibc.malloc.hugetlb=1"), None, true));
        assert!(!wanted(
            OsStr::new("a=1:glibc.malloc.hugetlb=0"),
            None,
            true
        ));
    }

    #[test]
    fn the_tunable_is_added_to_those_already_set() {
        assert_eq!(with_tunable(OsString::new()), MALLOC_HUGE_PAGES);
        assert_eq!(
            with_tunable("glibc.malloc.arena_max=2".into()),
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
        );
    }
}
