//! One piece of blocking storage work running off the node driver (tokio's
//! blocking pool), whose result the driver picks up without waiting: the
//! next WAL segment's preparation, the purge of old segments, the writing
//! of a snapshot file.

use tokio::sync::oneshot;
use tokio::sync::oneshot::error::TryRecvError;

/// Where a [`BackgroundJob`] stands, as [`BackgroundJob::try_take`] sees it.
pub(super) enum JobState<T> {
    /// No job is out.
    Idle,
    /// The job is still running.
    Running,
    /// The job finished with this result (now taken: the job is idle again).
    Done(T),
    /// The job panicked (now forgotten: the job is idle again).
    Died,
}

/// At most one job out, and its result once it is back.
pub(super) struct BackgroundJob<T> {
    pending: Option<oneshot::Receiver<T>>,
}

impl<T: Send + 'static> BackgroundJob<T> {
    /// No job out.
    pub fn new() -> BackgroundJob<T> {
        BackgroundJob { pending: None }
    }

    /// True while a started job's result has not been taken.
    pub fn is_out(&self) -> bool {
        self.pending.is_some()
    }

    /// Starts `work` on the blocking pool (inline under madsim, whose
    /// simulated disk does not block and whose runs must stay
    /// deterministic). The caller starts one only when none is out.
    pub fn start(&mut self, work: impl FnOnce() -> T + Send + 'static) {
        debug_assert!(self.pending.is_none(), "one background job at a time");
        let (done, pending) = oneshot::channel();
        spawn_io(move || {
            let _ = done.send(work());
        });
        self.pending = Some(pending);
    }

    /// Waits until the job out, if any, finishes, and takes its result.
    pub async fn wait(&mut self) -> JobState<T> {
        match self.pending.take() {
            None => JobState::Idle,
            Some(pending) => match pending.await {
                Ok(result) => JobState::Done(result),
                Err(_) => JobState::Died,
            },
        }
    }

    /// The job's result if it finished; never blocks.
    pub fn try_take(&mut self) -> JobState<T> {
        let Some(pending) = &mut self.pending else {
            return JobState::Idle;
        };
        let state = match pending.try_recv() {
            Err(TryRecvError::Empty) => return JobState::Running,
            Ok(result) => JobState::Done(result),
            Err(TryRecvError::Closed) => JobState::Died,
        };
        self.pending = None;
        state
    }
}

/// Runs `work` on tokio's blocking pool, detached.
#[cfg(not(madsim))]
fn spawn_io(work: impl FnOnce() + Send + 'static) {
    drop(tokio::task::spawn_blocking(work));
}

/// Runs `work` inline under madsim.
#[cfg(madsim)]
fn spawn_io(work: impl FnOnce() + Send + 'static) {
    work();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_result_is_taken_once() {
        let mut job = BackgroundJob::new();
        assert!(matches!(job.try_take(), JobState::Idle));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        job.start(move || {
            let _ = gate.recv();
            7
        });
        assert!(job.is_out());
        assert!(matches!(job.try_take(), JobState::Running));
        let _ = release.send(());
        for _ in 0..1000 {
            match job.try_take() {
                JobState::Running => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
                JobState::Done(value) => {
                    assert_eq!(value, 7);
                    assert!(!job.is_out());
                    assert!(matches!(job.try_take(), JobState::Idle));
                    assert!(matches!(job.wait().await, JobState::Idle));
                    job.start(|| 8);
                    assert!(matches!(job.wait().await, JobState::Done(8)));
                    return;
                }
                JobState::Idle | JobState::Died => panic!("the job was lost"),
            }
        }
        panic!("the job never finished");
    }

    #[tokio::test]
    async fn a_job_that_panics_is_reported_dead() {
        let mut job: BackgroundJob<u8> = BackgroundJob::new();
        job.start(|| panic!("the job fails on purpose"));
        for _ in 0..1000 {
            match job.try_take() {
                JobState::Running => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
                JobState::Died => return,
                JobState::Idle | JobState::Done(_) => panic!("unexpected state"),
            }
        }
        panic!("the job never ended");
    }
}
