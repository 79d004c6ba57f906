//! Graceful shutdown: SIGTERM or SIGINT cancels the agent's [`CancellationToken`].
//!
//! On that signal the gRPC server stops accepting connections and finishes in-flight
//! calls, the scheduler starts nothing new, and running jobs get `jobs.shutdown_grace_secs`
//! to finish. Jobs still running after that are stopped and checkpointed in the store:
//! `RESTART_POLICY_RERUN` jobs go back to `Queued` (they run again at the next start),
//! others end `Failed`. Queued jobs stay queued.

use tokio_util::sync::CancellationToken;

/// Waits for SIGTERM or SIGINT, then cancels `token`. A second signal is not needed: the
/// process exits when shutdown completes.
pub async fn on_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                () = token.cancelled() => return,
            }
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot install signal handlers; only token cancellation stops the agent");
            token.cancelled().await;
            return;
        }
    }
    token.cancel();
}
