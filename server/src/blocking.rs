//! [`run_blocking`]: file I/O off the async workers.

/// Runs blocking I/O `work` on tokio's blocking pool and returns its
/// output; a panic in `work` resumes in the caller.
#[cfg(not(madsim))]
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}

/// Runs `work` inline: under madsim the simulated disk does not block, and
/// a thread outside the simulation would break its determinism.
#[cfg(madsim)]
pub(crate) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    work()
}
