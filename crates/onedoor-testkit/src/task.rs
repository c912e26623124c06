//! [`ServerTask`]: a server running on a task of the test's runtime, with its stop signal.

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::eventually::DEADLINE;

/// A spawned server (`run(config, listener, shutdown)`) and the sender that ends its
/// `shutdown`. Dropping it aborts the task, so a failed test leaves nothing running.
pub struct ServerTask<E> {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), E>>,
}

impl<E> ServerTask<E> {
    /// Spawns `serve(shutdown)`, where `shutdown` resolves when [`ServerTask::stop`] is called.
    pub fn spawn<F>(serve: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        ServerTask {
            stop: Some(stop),
            task: tokio::spawn(serve(stopped)),
        }
    }

    /// Signals the server to stop and waits until it has, failing with `what` if it takes
    /// longer than [`DEADLINE`] or ends with an error.
    pub async fn stop(mut self, what: &str) -> anyhow::Result<()>
    where
        anyhow::Error: From<E>,
    {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let ended = tokio::time::timeout(DEADLINE, &mut self.task)
            .await
            .map_err(|_| anyhow::anyhow!("{what} did not stop in time"))?;
        Ok(ended??)
    }

    /// Kills the server as a crash would: no graceful stop, nothing drained, whatever was in
    /// flight is cancelled.
    pub async fn crash(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl<E> Drop for ServerTask<E> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
