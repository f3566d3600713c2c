//! The run's batched writes (chapter 10: one commit for many rows). The importer reads the
//! source into the database a thousand lines a commit, on a thread for blocking work, since
//! reading a file blocks (chapter 12). The writer commits the items' outcomes as they come,
//! up to 500 a commit, or what 100 ms brought: a crash loses at most the last 100 ms of
//! outcomes, whose items are then sent again, and the service's idempotency absorbs them.

use std::sync::Arc;
use std::time::Duration;

use indicatif::ProgressBar;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::items::Source;
use crate::queue::{ImportError, Outcome, blocking};
use crate::run::Failed;
use crate::store::Store;

const IMPORT_BATCH: usize = 1000;
pub const WRITE_BATCH: usize = 500;
const WRITE_EVERY: Duration = Duration::from_millis(100);

/// Reads the source into the database, on a thread for blocking work: reading a file blocks.
pub fn import(
    store: &Store,
    source: Source,
    stop: &CancellationToken,
    imported: &watch::Sender<()>,
    progress: &ProgressBar,
) -> Result<(), Failed> {
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    let mut lines = source.peekable();
    while let Some(line) = lines.next() {
        batch.push(line.map_err(|error| format!("reading the items: {error}"))?);
        if batch.len() == IMPORT_BATCH || lines.peek().is_none() {
            store.import(&batch).map_err(|error| match error {
                ImportError::Changed { line } => Failed::Input(format!(
                    "the items differ from those this database was made from: line {line} \
                     is not the item it holds for it (use a new --db for a new source)"
                )),
                ImportError::Database(error) => Failed::Run(format!("database: {error}")),
            })?;
            progress.inc_length(batch.len() as u64);
            imported.send_replace(());
            batch.clear();
            if stop.is_cancelled() {
                break;
            }
        }
    }
    Ok(())
}

/// Commits outcomes as they come, in batches: up to `WRITE_BATCH`, or what came in
/// `WRITE_EVERY` after the first. Ends when every sender is gone, after a last commit.
pub async fn write(
    store: Arc<Store>,
    mut outcomes: mpsc::Receiver<(i64, Outcome)>,
    progress: ProgressBar,
) -> Result<(), String> {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while outcomes.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let until = Instant::now() + WRITE_EVERY;
        while batch.len() < WRITE_BATCH {
            let room = WRITE_BATCH - batch.len();
            match timeout_at(until, outcomes.recv_many(&mut batch, room)).await {
                Ok(received) if received > 0 => {}
                _ => break,
            }
        }
        let count = batch.len() as u64;
        let finished = std::mem::replace(&mut batch, Vec::with_capacity(WRITE_BATCH));
        blocking(&store, move |store| store.record(&finished)).await?;
        progress.inc(count);
    }
    Ok(())
}
