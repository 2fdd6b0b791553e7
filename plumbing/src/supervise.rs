//! Supervision: every long-running task of a process runs under one [`Supervisor`]. A task that
//! ends before shutdown was asked for, fails or panics stops the whole process: the supervisor
//! says which task and why, cancels the others, gives them `grace` to finish, and reports the
//! first failure, which `main` turns into a non-zero exit.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

/// Why a supervised process stopped other than by request.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error("task {task:?} failed: {error:#}")]
    Failed { task: String, error: anyhow::Error },
    #[error("task {task:?} panicked: {message}")]
    Panicked { task: String, message: String },
    #[error("task {task:?} ended although no shutdown was asked for")]
    Ended { task: String },
    #[error("tasks {tasks:?} did not stop within {grace:?} of the shutdown")]
    Timeout { tasks: Vec<String>, grace: Duration },
}

/// The tasks of one process and the token that stops them all.
pub struct Supervisor {
    tasks: JoinSet<anyhow::Result<()>>,
    names: HashMap<Id, String>,
    cancel: CancellationToken,
    grace: Duration,
}

impl Supervisor {
    /// Tasks stop when `cancel` fires; after that they have `grace` to end.
    pub fn new(cancel: CancellationToken, grace: Duration) -> Supervisor {
        Supervisor {
            tasks: JoinSet::new(),
            names: HashMap::new(),
            cancel,
            grace,
        }
    }

    /// The token every task watches (cancelled on shutdown or when a task fails).
    pub fn token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    pub fn spawn<F>(&mut self, name: impl Into<String>, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name.into());
    }

    /// For a task that blocks its thread (librdkafka's poll loop, say).
    pub fn spawn_blocking<F>(&mut self, name: impl Into<String>, task: F)
    where
        F: FnOnce() -> anyhow::Result<()> + Send + 'static,
    {
        let handle = self.tasks.spawn_blocking(task);
        self.names.insert(handle.id(), name.into());
    }

    /// Waits until every task has ended. `Ok` when they ended because shutdown was asked for;
    /// otherwise the first failure (which has been logged and has cancelled the rest).
    pub async fn wait(mut self) -> Result<(), Stopped> {
        let mut first: Option<Stopped> = None;
        while !self.cancel.is_cancelled() {
            let joined = tokio::select! {
                () = self.cancel.cancelled() => break,
                joined = self.tasks.join_next_with_id() => joined,
            };
            let Some(joined) = joined else {
                return Ok(());
            };
            if let Some(failure) = self.judge(joined) {
                tracing::error!(error = %failure, "Stopping everything.");
                first = Some(failure);
                self.cancel.cancel();
            }
        }
        let deadline = tokio::time::Instant::now() + self.grace;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(None) => break,
                Ok(Some(joined)) => {
                    if let Some(failure) = self.judge(joined) {
                        tracing::error!(error = %failure, "A task failed while stopping.");
                        // A task that merely ended is often the consequence of one that failed
                        // at the same moment (its input closed): the failure is the cause.
                        if first
                            .as_ref()
                            .is_none_or(|f| matches!(f, Stopped::Ended { .. }))
                        {
                            first = Some(failure);
                        }
                    }
                }
                Err(_) => {
                    let mut tasks: Vec<String> = self.names.values().cloned().collect();
                    tasks.sort_unstable();
                    tasks.dedup();
                    let failure = Stopped::Timeout {
                        tasks,
                        grace: self.grace,
                    };
                    tracing::error!(error = %failure, "Giving up on them.");
                    self.tasks.abort_all();
                    first.get_or_insert(failure);
                    break;
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// What one ended task means: `None` when it ended as it should.
    fn judge(&mut self, joined: Result<(Id, anyhow::Result<()>), JoinError>) -> Option<Stopped> {
        match joined {
            Ok((id, result)) => {
                let task = self.names.remove(&id).unwrap_or_else(|| "unnamed".into());
                match result {
                    Err(error) => Some(Stopped::Failed { task, error }),
                    Ok(()) if self.cancel.is_cancelled() => None,
                    Ok(()) => Some(Stopped::Ended { task }),
                }
            }
            Err(e) => {
                let task = self
                    .names
                    .remove(&e.id())
                    .unwrap_or_else(|| "unnamed".into());
                if e.is_cancelled() {
                    return None;
                }
                let panic = e.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".to_owned());
                Some(Stopped::Panicked { task, message })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor() -> Supervisor {
        Supervisor::new(CancellationToken::new(), Duration::from_secs(5))
    }

    /// A task that runs until the supervisor's token fires.
    fn until_cancelled(s: &Supervisor) -> impl Future<Output = anyhow::Result<()>> + use<> {
        let token = s.token();
        async move {
            token.cancelled().await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failing_task_stops_the_others_and_is_named() {
        let mut s = supervisor();
        let other = until_cancelled(&s);
        s.spawn("server", other);
        s.spawn("writer", async { anyhow::bail!("disk on fire") });
        let err = s.wait().await.unwrap_err();
        assert!(
            matches!(&err, Stopped::Failed { task, .. } if task == "writer"),
            "{err}"
        );
        assert!(err.to_string().contains("disk on fire"), "{err}");
    }

    #[tokio::test]
    async fn a_panicking_task_is_reported_with_its_message() {
        let mut s = supervisor();
        let other = until_cancelled(&s);
        s.spawn("server", other);
        s.spawn_blocking("consumer loop", || panic!("boom"));
        let err = s.wait().await.unwrap_err();
        assert!(
            matches!(&err, Stopped::Panicked { task, message } if task == "consumer loop" && message == "boom"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_task_that_just_ends_is_a_failure_too() {
        let mut s = supervisor();
        let other = until_cancelled(&s);
        s.spawn("server", other);
        s.spawn("listener", async { Ok(()) });
        let err = s.wait().await.unwrap_err();
        assert!(
            matches!(&err, Stopped::Ended { task } if task == "listener"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failure_beats_a_task_that_ended_because_of_it() {
        let mut s = supervisor();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // The reader ends (cleanly) as soon as its input closes...
        s.spawn("writer", async move {
            let _ = rx.await;
            Ok(())
        });
        // ...which happens when the task feeding it fails.
        s.spawn("consumer loop", async move {
            drop(tx);
            tokio::time::sleep(Duration::from_millis(50)).await;
            anyhow::bail!("fatal Kafka consumer error")
        });
        let err = s.wait().await.unwrap_err();
        assert!(
            matches!(&err, Stopped::Failed { task, .. } if task == "consumer loop"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn shutdown_is_ok_and_a_stuck_task_times_out() {
        let mut s = supervisor();
        let other = until_cancelled(&s);
        s.spawn("server", other);
        let token = s.token();
        token.cancel();
        assert!(s.wait().await.is_ok());

        let mut s = Supervisor::new(CancellationToken::new(), Duration::from_millis(50));
        s.spawn("stuck", std::future::pending());
        s.token().cancel();
        let err = s.wait().await.unwrap_err();
        assert!(
            matches!(&err, Stopped::Timeout { tasks, .. } if tasks == &["stuck"]),
            "{err}"
        );
    }
}
