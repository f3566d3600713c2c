//! Which signal stops the service. SIGINT (Ctrl-C) and SIGTERM (what `kill` and test harnesses
//! send) both ask for a graceful stop. The handlers are installed before the service says where
//! it listens, so a signal sent as soon as a parent reads that line is caught, not fatal.

use std::io;

#[cfg(unix)]
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    pub fn install() -> io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the first of the two signals, and names it.
    pub async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Elsewhere, Ctrl-C only.
#[cfg(not(unix))]
pub struct Signals;

#[cfg(not(unix))]
impl Signals {
    pub fn install() -> io::Result<Signals> {
        Ok(Signals)
    }

    pub async fn recv(self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            // Without a handler nothing can stop us gracefully: serve until killed.
            Err(_) => std::future::pending().await,
        }
    }
}
