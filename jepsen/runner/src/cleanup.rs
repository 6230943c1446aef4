//! Everything a run creates outside its result directory (member processes,
//! network namespaces, the bridge) is registered here, so that one call
//! removes it on every way out: the normal end, Ctrl-C / SIGTERM, and a
//! panic (the hook runs before the process unwinds or aborts).

use std::process::{Command, Stdio};
use std::sync::Mutex;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// What is still to remove.
struct Registry {
    /// Member process ids still running (not yet reaped).
    pids: Vec<u32>,
    /// Network namespaces this run created.
    namespaces: Vec<String>,
    /// Bridge interfaces this run created.
    bridges: Vec<String>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    pids: Vec::new(),
    namespaces: Vec::new(),
    bridges: Vec::new(),
});

fn with_registry<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    let mut guard = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

/// Records a started member process.
pub fn register_pid(pid: u32) {
    with_registry(|r| r.pids.push(pid));
}

/// Forgets a member process after it was killed and reaped (its pid may be
/// reused by another program from then on).
pub fn forget_pid(pid: u32) {
    with_registry(|r| r.pids.retain(|p| *p != pid));
}

/// Records a created network namespace.
pub fn register_namespace(name: &str) {
    with_registry(|r| r.namespaces.push(name.to_owned()));
}

/// Records a created bridge interface.
pub fn register_bridge(name: &str) {
    with_registry(|r| r.bridges.push(name.to_owned()));
}

/// Kills every registered process (SIGCONT first, so that a paused one
/// dies too), then deletes the namespaces and bridges. Idempotent.
pub fn cleanup_all() {
    let (pids, namespaces, bridges) = with_registry(|r| {
        (
            std::mem::take(&mut r.pids),
            std::mem::take(&mut r.namespaces),
            std::mem::take(&mut r.bridges),
        )
    });
    for pid in pids {
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        let _ = kill(Pid::from_raw(raw), Signal::SIGCONT);
        let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
    }
    for namespace in namespaces {
        quiet_ip(&["netns", "del", &namespace]);
    }
    for bridge in bridges {
        quiet_ip(&["link", "del", &bridge]);
    }
}

fn quiet_ip(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Installs a panic hook that cleans up, then runs the default hook.
pub fn install_panic_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        cleanup_all();
        default_hook(info);
    }));
}
