//! Every server process `compare` and `scale` start, in one registry, so that they
//! are killed however `keel-bench` ends: when their cluster is dropped
//! (normal end, an error, Ctrl-C dropping the run), and from a panic hook
//! (the release profile aborts on panic, so no destructor would run).

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once, PoisonError};

use anyhow::{Context, Result};

/// A registered process.
struct Entry {
    id: u64,
    child: Child,
    /// Directory removed with the process when the run is cut short.
    dir: Option<PathBuf>,
}

static RUNNING: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static PANIC_HOOK: Once = Once::new();

/// A registered process's handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessId(u64);

fn running() -> MutexGuard<'static, Vec<Entry>> {
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts `command` and registers it; `dir` (its data) is removed if the
/// run is cut short by a panic.
pub fn spawn(command: &mut Command, dir: Option<PathBuf>) -> Result<ProcessId> {
    install_panic_hook();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {:?}", command.get_program()))?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    running().push(Entry { id, child, dir });
    Ok(ProcessId(id))
}

/// The exit status of process `id` if it has exited (`None` while it
/// runs or when it is not registered).
pub fn exited(id: ProcessId) -> Option<ExitStatus> {
    running()
        .iter_mut()
        .find(|e| e.id == id.0)
        .and_then(|e| e.child.try_wait().ok().flatten())
}

/// The operating system's process id of process `id` (for `/proc/<pid>`),
/// or `None` when it is not registered.
pub fn pid(id: ProcessId) -> Option<u32> {
    running()
        .iter()
        .find(|e| e.id == id.0)
        .map(|e| e.child.id())
}

/// Kills process `id` (SIGKILL), reaps it and forgets it.
pub fn kill(id: ProcessId) {
    let entry = {
        let mut running = running();
        let position = running.iter().position(|e| e.id == id.0);
        position.map(|i| running.swap_remove(i))
    };
    if let Some(mut entry) = entry {
        let _ = entry.child.kill();
        let _ = entry.child.wait();
    }
}

/// Processes registered now.
pub fn count() -> usize {
    running().len()
}

/// Kills every registered process and removes their directories; from
/// the panic hook, so it never waits for the registry's lock.
fn kill_all_from_hook() {
    let Ok(mut running) = RUNNING.try_lock() else {
        return;
    };
    for mut entry in running.drain(..) {
        let _ = entry.child.kill();
        let _ = entry.child.wait();
        if let Some(dir) = entry.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Installs (once) a panic hook that kills every registered process
/// before the default hook reports the panic.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            kill_all_from_hook();
            previous(info);
        }));
    });
}
