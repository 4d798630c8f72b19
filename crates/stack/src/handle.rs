//! How a running component is stopped and joined, the same for all of them.

use anyhow::anyhow;

/// The signal every component watches: `true` means finish what is in hand and return.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;

/// A shutdown sender and the receiver to give components.
pub fn shutdown_channel() -> (tokio::sync::watch::Sender<bool>, Shutdown) {
    tokio::sync::watch::channel(false)
}

/// A running component: a thread (the scheduler's dataflow) or a task (executor, gateway).
#[derive(Debug)]
pub enum Handle {
    Thread(&'static str, std::thread::JoinHandle<Result<(), splai_dataflow::runner::RunError>>),
    Task(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>),
}

impl Handle {
    /// Wait for the component to end (after its shutdown signal, or on its own error).
    pub async fn join(self) -> anyhow::Result<()> {
        match self {
            Handle::Thread(name, thread) => tokio::task::spawn_blocking(move || thread.join())
                .await?
                .map_err(|_| anyhow!("the {name} thread panicked"))?
                .map_err(Into::into),
            Handle::Task(name, task) => task.await.map_err(|e| anyhow!("the {name} task failed: {e}"))?,
        }
    }

    /// Whether the component has already ended (an error, or a panic).
    pub fn is_finished(&self) -> bool {
        match self {
            Handle::Thread(_, t) => t.is_finished(),
            Handle::Task(_, t) => t.is_finished(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_task_reports_its_error() {
        let handle = Handle::Task("gateway", tokio::spawn(async { Err(anyhow!("port taken")) }));
        assert_eq!(handle.join().await.unwrap_err().to_string(), "port taken");
    }

    #[tokio::test]
    async fn a_panicked_thread_is_named() {
        #[allow(clippy::panic)]
        let thread = std::thread::spawn(|| panic!("boom"));
        let error = Handle::Thread("scheduler", thread).join().await.unwrap_err();
        assert_eq!(error.to_string(), "the scheduler thread panicked");
    }
}
