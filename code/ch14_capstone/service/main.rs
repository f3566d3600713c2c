//! The capstone's service: a small HTTP service with what makes real ones hard to use well, a
//! quota per client, a capacity, faults on demand, and idempotent writes. The client of Part III
//! runs against it on a loopback port. This file is the binary: it reads the command line,
//! listens, says where, serves, and on SIGINT or SIGTERM stops gracefully and prints the ledger.

mod capacity;
mod connection;
mod faults;
mod item;
mod ledger;
mod options;
mod quota;
mod routes;
mod shutdown;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::connection::{DropHandle, DroppingListener};
use crate::routes::Service;

/// How long requests in flight may take to finish once a stop is asked for. Hung ones never do.
const GRACE: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> ExitCode {
    let options = options::read();
    // Logs go to stderr, filtered by RUST_LOG (`info` by default): stdout is for the two lines
    // a parent reads, the address and the ledger's summary.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    let signals = match shutdown::Signals::install() {
        Ok(signals) => signals,
        Err(error) => return fail(1, format!("cannot install the signal handlers: {error}")),
    };
    let listener = match TcpListener::bind(("127.0.0.1", options.port)).await {
        Ok(listener) => listener,
        Err(error) => {
            return fail(
                2,
                format!("cannot listen on port {}: {error}", options.port),
            );
        }
    };
    let address = match listener.local_addr() {
        Ok(address) => address,
        Err(error) => return fail(1, format!("cannot read the address: {error}")),
    };
    let mut stdout = std::io::stdout();
    // Flushed at once: a parent waits for this line to know where to connect.
    if writeln!(stdout, "listening on http://{address}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return fail(1, "cannot write the address on stdout".to_string());
    }
    info!(?options, "serving");

    let service = Arc::new(Service::new(&options));
    let app = routes::router(Arc::clone(&service));
    let (stopping, stop_asked) = oneshot::channel();
    // On the signal, axum stops accepting and closes idle connections; the serve future then
    // waits for the connections still working. We give those `GRACE`, no more.
    let server = axum::serve(
        DroppingListener(listener),
        app.into_make_service_with_connect_info::<DropHandle>(),
    )
    .with_graceful_shutdown(async move {
        let signal = signals.recv().await;
        info!(
            signal,
            "stopping: no new connections, {GRACE:?} for those in flight"
        );
        let _ = stopping.send(());
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        // axum's serve future never fails (it retries failed accepts) and ends only after a stop.
        _ = &mut server => {}
        Ok(()) = stop_asked => {
            if tokio::time::timeout(GRACE, &mut server).await.is_err() {
                let left = service.capacity.in_flight();
                warn!(left, "grace period over: abandoning the requests still in flight");
            }
        }
    }
    let report = service.ledger.report(false);
    // Ignored: a parent that stopped reading must not turn a clean stop into a failure.
    let _ = writeln!(
        stdout,
        "ledger: applied={} duplicates={} requests={}",
        report.applied, report.duplicates, report.requests
    );
    ExitCode::SUCCESS
}

/// One line on stderr, starting `error: `, and the exit status.
fn fail(status: u8, message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(status)
}
