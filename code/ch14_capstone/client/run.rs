// ANCHOR: start
//! The run: three kinds of task joined by bounded channels, so that memory stays flat however
//! many items there are. The importer reads the source into the database, a batch a commit.
//! The dispatcher, this task, claims pending items and starts a task for each, at most
//! `in_progress` at a time (chapter 6's semaphore). The writer commits their outcomes, a batch a
//! commit. A signal stops the dispatcher; the tasks in flight get the grace period (chapter 9).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::batches::{WRITE_BATCH, import, write};
use crate::items::Source;
use crate::queue::{Item, blocking};
use crate::store::Store;
use crate::worker::{Shared, process};

/// Items a claim: one commit for a hundred claims.
const CLAIM_BATCH: i64 = 100;

/// How a run failed: on bad input found only once it was under way (an items file that is not
/// the one the database was made from: exit status 2), or otherwise (status 1).
pub enum Failed {
    Input(String),
    Run(String),
}

impl From<String> for Failed {
    fn from(message: String) -> Failed {
        Failed::Run(message)
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (Failed::Input(message) | Failed::Run(message)) = self;
        f.write_str(message)
    }
}

pub async fn run(
    store: Arc<Store>,
    source: Source,
    shared: Arc<Shared>,
    in_progress: usize,
    grace: Duration,
    retry_dead: bool,
    progress: ProgressBar,
) -> Result<(), Failed> {
    // However this returns, an error included, the importer and the item tasks are told to
    // stop: a blocking import left running would hold the process's exit until it ended.
    let _stop_on_return = shared.stop.clone().drop_guard();
    let resumed = blocking(&store, move |store| store.recover(retry_dead)).await?;
    let before = blocking(&store, Store::counts).await?;
    info!(resumed, done = before.done, dead = before.dead, "starting");
    progress.set_position((before.done + before.dead).unsigned_abs());

    let (imported, mut more) = watch::channel(());
    let (stop, bar) = (shared.stop.clone(), progress.clone());
    let importing = {
        let store = Arc::clone(&store);
        tokio::task::spawn_blocking(move || import(&store, source, &stop, &imported, &bar))
    };
    let (results, outcomes) = mpsc::channel(2 * WRITE_BATCH);
    let writer = {
        let (store, stop) = (Arc::clone(&store), shared.stop.clone());
        tokio::spawn(async move {
            let written = write(store, outcomes, progress).await;
            // Outcomes that cannot be recorded are not worth sending for: stop the run.
            if written.is_err() {
                stop.cancel();
            }
            written
        })
    };
    // ANCHOR_END: start

    // ANCHOR: dispatch
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(in_progress));
    let mut claimed = VecDeque::new();
    loop {
        let slot = tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break,
            // Nothing closes the semaphore: `acquire_owned` cannot fail.
            slot = Arc::clone(&slots).acquire_owned() => slot.map_err(|e| e.to_string())?,
        };
        if claimed.is_empty() {
            claimed = claim(&store, &mut more, &shared.stop).await?;
        }
        let Some(item) = claimed.pop_front() else {
            break;
        };
        let (shared, results) = (Arc::clone(&shared), results.clone());
        tracker.spawn(async move {
            if let Some(outcome) = process(&shared, &item).await {
                // Fails only if the writer has stopped on an error, which it reports.
                let _ = results.send((item.seq, outcome)).await;
            }
            drop(slot);
        });
    }
    tracker.close();
    // Every task finishes, or a signal comes and the grace period starts, after which the
    // requests still in flight are cancelled.
    let grace_period = async {
        shared.stop.cancelled().await;
        tokio::time::sleep(grace).await;
        shared.abort.cancel();
    };
    tokio::select! {
        _ = tracker.wait() => {}
        _ = grace_period => tracker.wait().await,
    }
    drop(results);
    let written = writer.await.map_err(|error| format!("writer: {error}"))?;
    let imported = importing
        .await
        .map_err(|error| format!("importer: {error}"))?;
    written?;
    imported
}
// ANCHOR_END: dispatch

// ANCHOR: claim
/// The next claimed items, in order; none when the source is exhausted, or a stop came.
async fn claim(
    store: &Arc<Store>,
    more: &mut watch::Receiver<()>,
    stop: &CancellationToken,
) -> Result<VecDeque<Item>, String> {
    let mut importing = true;
    loop {
        // Marked seen before the claim: an import committed after it wakes `changed` below.
        more.borrow_and_update();
        let items = blocking(store, |store| store.claim(CLAIM_BATCH)).await?;
        if !items.is_empty() || !importing {
            return Ok(items.into());
        }
        // Nothing pending yet: wait for the importer's next commit, or its end.
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(VecDeque::new()),
            changed = more.changed() => importing = changed.is_ok(),
        }
    }
}
// ANCHOR_END: claim
