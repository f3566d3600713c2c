//! Stopping cleanly (chapter 9). The first SIGINT or SIGTERM cancels `stop`: no new item is
//! claimed and no new request leaves, while the requests in flight get the grace period; then
//! `abort` cancels them, and their items stay claimed for the next run. A second signal exits at
//! once. The exit status says which signal stopped the run: 130 for SIGINT, 143 for SIGTERM.

use std::sync::{Arc, OnceLock};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The signals, listened for from the start: from then on they no longer kill the process.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    /// Must be called inside the runtime, before any work starts.
    pub fn listen() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next signal, and returns the exit status it asks for.
    async fn next(&mut self) -> u8 {
        tokio::select! {
            _ = self.interrupt.recv() => 130,
            _ = self.terminate.recv() => 143,
        }
    }
}

/// The first signal's exit status, once one has come.
pub type Stopped = Arc<OnceLock<u8>>;

/// Watches for signals, for as long as the run lasts. The first cancels `stop`; the second
/// ends the process there and then, as a user pressing Ctrl-C twice expects.
pub fn watch(mut signals: Signals, stop: CancellationToken) -> Stopped {
    let stopped = Stopped::default();
    let first = Arc::clone(&stopped);
    tokio::spawn(async move {
        let status = signals.next().await;
        // Only this task sets it: `set` cannot find it set already.
        let _ = first.set(status);
        warn!("signal: finishing the requests in flight; again to exit at once");
        stop.cancel();
        let status = signals.next().await;
        warn!("second signal: exiting at once");
        std::process::exit(status.into());
    });
    stopped
}
