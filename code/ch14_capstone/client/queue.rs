// ANCHOR: types
//! What a run does with the store (chapter 10): import the source's lines a batch at a time,
//! put back what a crashed run left claimed, claim pending items a batch at a time, and record
//! what became of them. SQLite's calls block, so the async tasks make them with `blocking`,
//! on tokio's threads for blocking work (chapter 12), never on its workers.

use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use crate::items::{Entry, Line};
use crate::store::Store;

/// An item claimed for this run: it is sent, and its fate recorded, by seq.
pub struct Item {
    pub seq: i64,
    pub id: String,
    pub payload: String,
}

/// What became of an item. An item stopped by a shutdown has no outcome: it stays claimed.
pub enum Outcome {
    Done,
    Dead(String),
}

/// Why an import failed: the source is not the one this database was made from, or the
/// database itself failed.
pub enum ImportError {
    Changed { line: i64 },
    Database(rusqlite::Error),
}

impl From<rusqlite::Error> for ImportError {
    fn from(error: rusqlite::Error) -> ImportError {
        ImportError::Database(error)
    }
}

/// How many items the database holds, done, and set aside as dead letters.
pub struct Counts {
    pub total: i64,
    pub done: i64,
    pub dead: i64,
}
// ANCHOR_END: types

// ANCHOR: import
impl Store {
    /// Adds the lines not there yet, in one transaction: a rerun reads the source again and
    /// adds nothing twice. A malformed line is added as a dead letter, under a name (`line:7`)
    /// that no item can have, `:` being refused in ids.
    ///
    /// A rerun must read the same source: a line whose number the database holds with another
    /// id means the file changed, and taking it for a rerun's line would skip an item without a
    /// word. `Err(Changed)` refuses the run instead.
    pub fn import(&self, lines: &[Line]) -> Result<(), ImportError> {
        let mut db = self.db();
        let tx = db.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO items (seq, id, payload, state, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut known = tx.prepare_cached("SELECT id FROM items WHERE seq = ?1")?;
            let mut first = tx.prepare_cached("SELECT seq FROM items WHERE id = ?1")?;
            for line in lines {
                let seq = line.seq;
                let reason = match &line.entry {
                    Entry::Item { id, payload } => {
                        let added =
                            insert.execute(params![seq, id, payload, "pending", None::<String>])?;
                        if added == 1 {
                            continue;
                        }
                        // Ignored. A rerun's line holds its place under its id, or set aside.
                        let stored: Option<String> =
                            known.query_row(params![seq], |row| row.get(0)).optional()?;
                        if let Some(stored) = stored {
                            if stored == *id || stored == format!("line:{seq}") {
                                continue;
                            }
                            return Err(ImportError::Changed { line: seq });
                        }
                        // Not a rerun's line: another line has this id already. It would be
                        // suppressed as a duplicate: say so instead of dropping it.
                        let on: i64 = first.query_row(params![id], |row| row.get(0))?;
                        format!("id {id} repeats line {on}")
                    }
                    Entry::Malformed { reason } => {
                        let stored: Option<String> =
                            known.query_row(params![seq], |row| row.get(0)).optional()?;
                        match stored {
                            None => reason.clone(),
                            Some(stored) if stored == format!("line:{seq}") => continue,
                            Some(_) => return Err(ImportError::Changed { line: seq }),
                        }
                    }
                };
                insert.execute(params![seq, format!("line:{seq}"), "", "dead", reason])?;
            }
        }
        Ok(tx.commit()?)
    }

    /// Items still claimed were in flight when the last run stopped: they go back to pending,
    /// to be sent again. The service's idempotency makes a second send harmless. With
    /// `dead_too` (`--retry-dead`), so do the dead letters of earlier runs, once whatever made
    /// them fail is fixed (an expired token, an outage); malformed lines stay dead.
    pub fn recover(&self, dead_too: bool) -> rusqlite::Result<usize> {
        let also = if dead_too { "dead" } else { "claimed" };
        self.db().execute(
            "UPDATE items SET state = 'pending', reason = NULL
             WHERE state IN ('claimed', ?1) AND id NOT LIKE 'line:%'",
            [also],
        )
    }
    // ANCHOR_END: import

    // ANCHOR: claim
    /// Claims up to `limit` pending items, in the source's order, committed before they are sent.
    pub fn claim(&self, limit: i64) -> rusqlite::Result<Vec<Item>> {
        let db = self.db();
        let mut claim = db.prepare_cached(
            "UPDATE items SET state = 'claimed', claims = claims + 1 WHERE seq IN
               (SELECT seq FROM items WHERE state = 'pending' ORDER BY seq LIMIT ?1)
             RETURNING seq, id, payload",
        )?;
        let rows = claim.query_map([limit], |row| {
            let (seq, id, payload) = (row.get(0)?, row.get(1)?, row.get(2)?);
            Ok(Item { seq, id, payload })
        })?;
        let mut items = rows.collect::<rusqlite::Result<Vec<Item>>>()?;
        // `RETURNING` promises no order.
        items.sort_unstable_by_key(|item| item.seq);
        Ok(items)
    }

    /// Records a batch of outcomes in one transaction: one commit for hundreds of items.
    pub fn record(&self, finished: &[(i64, Outcome)]) -> rusqlite::Result<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        {
            let mut done = tx.prepare_cached("UPDATE items SET state = 'done' WHERE seq = ?1")?;
            let mut dead =
                tx.prepare_cached("UPDATE items SET state = 'dead', reason = ?2 WHERE seq = ?1")?;
            for (seq, outcome) in finished {
                match outcome {
                    Outcome::Done => done.execute([seq])?,
                    Outcome::Dead(reason) => dead.execute(params![seq, reason])?,
                };
            }
        }
        tx.commit()
    }
    // ANCHOR_END: claim

    // ANCHOR: counts
    pub fn counts(&self) -> rusqlite::Result<Counts> {
        self.db().query_row(
            "SELECT count(*), count(*) FILTER (WHERE state = 'done'),
                    count(*) FILTER (WHERE state = 'dead') FROM items",
            [],
            |row| {
                let (total, done, dead) = (row.get(0)?, row.get(1)?, row.get(2)?);
                Ok(Counts { total, done, dead })
            },
        )
    }

    /// The first `limit` dead letters, `(id, reason)`, in the source's order.
    pub fn dead_letters(&self, limit: i64) -> rusqlite::Result<Vec<(String, String)>> {
        let db = self.db();
        let mut query = db.prepare(
            "SELECT id, coalesce(reason, '') FROM items WHERE state = 'dead' ORDER BY seq LIMIT ?1",
        )?;
        let rows = query.query_map([limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect()
    }
}

/// Runs `work` on the store on a thread for blocking calls, and waits for it.
pub async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, String> {
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || work(&store)).await {
        Ok(result) => result.map_err(|error| format!("database: {error}")),
        Err(error) => Err(format!("database task: {error}")),
    }
}
// ANCHOR_END: counts
