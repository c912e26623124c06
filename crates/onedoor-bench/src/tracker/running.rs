//! A real tracker in this process, serving CaseTracker gRPC on a loopback port until stopped.

use onedoor_tracker::{TrackerConfig, TrackerError};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::BenchError;

pub(super) struct RunningTracker {
    /// `http://127.0.0.1:PORT`, for a gRPC client.
    pub url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), TrackerError>>,
}

impl RunningTracker {
    /// Binds a loopback port and starts `onedoor_tracker::run` on it.
    pub async fn start(config: TrackerConfig) -> Result<Self, BenchError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(BenchError::io("binding the tracker's gRPC port"))?;
        let address = listener
            .local_addr()
            .map_err(BenchError::io("reading the bound address"))?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(onedoor_tracker::run(config, listener, async {
            let _ = stopped.await;
        }));
        Ok(RunningTracker {
            url: format!("http://{address}"),
            stop,
            task,
        })
    }

    /// Stops it and waits until it has; a tracker that failed meanwhile is the error.
    pub async fn stop(self) -> Result<(), BenchError> {
        let _ = self.stop.send(());
        self.task.await.map_err(BenchError::task("the tracker"))??;
        Ok(())
    }
}
