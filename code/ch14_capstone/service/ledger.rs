//! The ledger: the effect the client's requests have, applied once per idempotency key. A
//! client that retries cannot know whether a request it gave up on was applied; it sends the
//! same key again, and the ledger applies it only if it has not already. What it counts
//! (duplicates, requests, answers by status) lets a test check the client did its work exactly once.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;

/// Behind a std `Mutex`: each use is a few instructions and never awaits, so an async lock
/// would only cost more.
#[derive(Default)]
pub struct Ledger(Mutex<Book>);

#[derive(Default)]
struct Book {
    keys: HashSet<String>,
    /// The ids applied, in the order they were, once each.
    items: Vec<String>,
    duplicates: u64,
    requests: u64,
    by_status: BTreeMap<String, u64>,
}

/// What `GET /ledger` answers.
#[derive(Serialize)]
pub struct Report {
    pub applied: usize,
    pub duplicates: u64,
    pub requests: u64,
    pub by_status: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
}

impl Ledger {
    fn book(&self) -> MutexGuard<'_, Book> {
        // Every change below leaves the book consistent before it could panic (a panic here
        // could only be running out of memory), so a poisoned lock is safe to keep using.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one request to `POST /items/{id}`, whatever comes of it.
    pub fn count_request(&self) {
        self.book().requests += 1;
    }

    /// Counts how a request ended: a status code, or `hang` or `drop` for those never answered.
    pub fn count_outcome(&self, outcome: &str) {
        *self
            .book()
            .by_status
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    /// Applies the effect of `id` unless `key` was applied before. True if it is applied now;
    /// false for a duplicate, which is counted and otherwise ignored.
    pub fn apply(&self, key: &str, id: &str) -> bool {
        let mut book = self.book();
        if book.keys.insert(key.to_string()) {
            book.items.push(id.to_string());
            true
        } else {
            book.duplicates += 1;
            false
        }
    }

    pub fn report(&self, with_items: bool) -> Report {
        let book = self.book();
        Report {
            applied: book.items.len(),
            duplicates: book.duplicates,
            requests: book.requests,
            by_status: book.by_status.clone(),
            items: with_items.then(|| book.items.clone()),
        }
    }
}
