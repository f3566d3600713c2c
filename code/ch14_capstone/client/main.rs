// ANCHOR: main
//! The capstone's client (chapter 14): sends every item of a file, or of a generator, to the
//! service, each exactly once in effect, however the service misbehaves and however often the
//! client is stopped or killed. This file reads the command line, checks everything it can
//! before any work (the items, the URL, the service, the database), runs, and turns the
//! outcome into an exit status. The other files each hold one chapter's lesson.

mod batches;
mod items;
mod limiter;
mod logs;
mod options;
mod queue;
mod report;
mod request;
mod retry;
mod run;
mod setup;
mod shutdown;
mod store;
mod worker;

use std::process::ExitCode;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::limiter::{Limiter, RateLimiter};
use crate::options::Options;
use crate::queue::blocking;
use crate::report::Stats;
use crate::retry::RetryBudget;
use crate::run::Failed;
use crate::shutdown::Signals;
use crate::store::Store;
use crate::worker::Shared;

/// Items being worked on, in flight or waiting to retry, per request the limit allows at most.
const IN_PROGRESS_PER_REQUEST: usize = 4;
/// Dead letters the report lists; the database keeps them all.
const DEAD_LETTERS_SHOWN: i64 = 20;

fn main() -> ExitCode {
    // A bad command line ends here: one line of error and exit status 2.
    let options = options::read();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(start(options)),
        Err(error) => fail(1, format!("cannot start the tokio runtime: {error}")),
    }
}

/// Exits with one line on stderr: status 2 for bad input, 1 for a failure during the run.
fn fail(status: u8, message: String) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(status)
}
// ANCHOR_END: main

// ANCHOR: start
async fn start(options: Options) -> ExitCode {
    // Listened for first: from here on, Ctrl-C stops the run cleanly instead of killing it.
    let signals = match Signals::listen() {
        Ok(signals) => signals,
        Err(error) => return fail(1, format!("cannot listen for signals: {error}")),
    };
    let progress = match logs::observe(options.log_format) {
        Ok(progress) => progress,
        Err(message) => return fail(2, message),
    };
    let (source, http, store) = match setup::prepare(&options).await {
        Ok(ready) => ready,
        Err(message) => return fail(2, message),
    };
    let started = Instant::now();
    let stop = CancellationToken::new();
    let stopped = shutdown::watch(signals, stop.clone());
    let cap = options.max_concurrency;
    let shared = Arc::new(Shared {
        http,
        base: options.url.clone(),
        client_id: options.client_id.clone(),
        limiter: Limiter::new(cap),
        rate: options.rate.map(RateLimiter::new),
        budget: RetryBudget::new(cap),
        stats: Stats::new(),
        attempts: options.attempts,
        deadline: options.deadline,
        stop,
        abort: CancellationToken::new(),
    });
    let in_progress = cap as usize * IN_PROGRESS_PER_REQUEST;
    let store = Arc::new(store);
    let (run_shared, run_store, bar) = (Arc::clone(&shared), Arc::clone(&store), progress.clone());
    let outcome = run::run(
        run_store,
        source,
        run_shared,
        in_progress,
        options.grace,
        options.retry_dead,
        bar,
    )
    .await;
    progress.finish_and_clear();
    let counts = blocking(&store, Store::counts).await;
    let dead = blocking(&store, |store| store.dead_letters(DEAD_LETTERS_SHOWN)).await;
    let (counts, dead) = match (counts, dead) {
        (Ok(counts), Ok(dead)) => (counts, dead),
        (Err(message), _) | (_, Err(message)) => return fail(1, message),
    };
    shared.stats.print(&counts, &dead, started.elapsed());
    tracing::info!(limit = shared.limiter.limit(), "finished");
    if let Err(failed) = &outcome {
        eprintln!("error: {failed}");
    }
    match (stopped.get(), outcome) {
        (Some(&signal_status), _) => ExitCode::from(signal_status),
        (None, Err(Failed::Input(_))) => ExitCode::from(2),
        (None, Ok(())) if counts.done == counts.total => ExitCode::SUCCESS,
        // Dead letters, or a failure during the run.
        (None, _) => ExitCode::FAILURE,
    }
}
// ANCHOR_END: start
