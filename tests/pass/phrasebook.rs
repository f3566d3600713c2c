// The Rust side of the asyncio-to-tokio phrasebook (chapters/appendix_phrasebook.md).
// Each anchor is one line, so that the table can show it in a cell; the file compiles and runs,
// so every cell is code that works.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, stream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

// ANCHOR: async_fn
async fn fetch(n: u32) -> u32 {
    // ANCHOR_END: async_fn
    tokio::time::sleep(Duration::from_millis(1)).await;
    n
}

/// A job that holds its permit until it ends, however it ends: dropping the permit frees it.
async fn fetch_holding(_permit: OwnedSemaphorePermit, n: u32) -> u32 {
    fetch(n).await
}

/// A job whose result is used where it is made.
async fn process(n: u32) {
    println!("{}", fetch(n).await);
}

/// A job that may fail: `try_join!` stops at the first error.
async fn try_fetch(n: u32) -> Result<u32, String> {
    Ok(fetch(n).await)
}

/// Work that keeps a thread busy, which must not run on the runtime's own threads.
fn blocking_parse() -> u32 {
    (0..1000).sum()
}

fn is_set(flag: &bool) -> bool {
    *flag
}

// ANCHOR: run
#[tokio::main]
// ANCHOR_END: run
async fn main() -> Result<(), tokio::sync::AcquireError> {
    // ANCHOR: coroutine
    let future = fetch(1);
    // ANCHOR_END: coroutine
    // ANCHOR: await
    let one = future.await;
    // ANCHOR_END: await
    // ANCHOR: sleep
    tokio::time::sleep(Duration::from_millis(1)).await;
    // ANCHOR_END: sleep
    // ANCHOR: join
    let (two, three) = tokio::join!(fetch(2), fetch(3));
    // ANCHOR_END: join
    // ANCHOR: join_all
    let all = futures::future::join_all((0..5).map(fetch)).await;
    // ANCHOR_END: join_all
    // ANCHOR: spawn
    let handle = tokio::spawn(fetch(4));
    // ANCHOR_END: spawn
    let four = handle.await.unwrap_or_default();

    // ANCHOR: join_set
    let mut group = JoinSet::new();
    // ANCHOR_END: join_set
    group.spawn(fetch(5));
    // ANCHOR: join_next
    while let Some(result) = group.join_next().await {
        // ANCHOR_END: join_next
        let _ = result;
    }

    // ANCHOR: queue
    let (sender, mut receiver) = mpsc::channel::<u32>(100);
    // ANCHOR_END: queue
    // ANCHOR: put
    sender.send(6).await.ok();
    // ANCHOR_END: put
    // ANCHOR: close
    drop(sender);
    // ANCHOR_END: close
    // ANCHOR: get
    let six = receiver.recv().await;
    // ANCHOR_END: get

    // ANCHOR: timeout
    let in_time = tokio::time::timeout(Duration::from_secs(10), fetch(7)).await;
    // ANCHOR_END: timeout
    // ANCHOR: to_thread
    let parsed = tokio::task::spawn_blocking(blocking_parse).await;
    // ANCHOR_END: to_thread
    // ANCHOR: semaphore
    let limit = Arc::new(Semaphore::new(50));
    // ANCHOR_END: semaphore
    // ANCHOR: acquire
    let permit = limit.acquire().await?;
    // ANCHOR_END: acquire
    drop(permit);
    let mut tasks = JoinSet::new();
    // ANCHOR: acquire_owned
    let permit = Arc::clone(&limit).acquire_owned().await?;
    // ANCHOR_END: acquire_owned
    // ANCHOR: spawn_with_permit
    tasks.spawn(fetch_holding(permit, 8));
    // ANCHOR_END: spawn_with_permit
    tasks.join_all().await;
    // ANCHOR: buffer_unordered
    let mut results = stream::iter(0..100).map(fetch).buffer_unordered(50);
    // ANCHOR_END: buffer_unordered
    // ANCHOR: next
    while let Some(result) = results.next().await {
        // ANCHOR_END: next
        let _ = result;
    }
    // ANCHOR: for_each_concurrent
    stream::iter(0..100).for_each_concurrent(50, process).await;
    // ANCHOR_END: for_each_concurrent
    let (_stop, mut stopped) = tokio::sync::watch::channel(false);
    // ANCHOR: select
    tokio::select! { done = fetch(9) => println!("{done}"), _ = stopped.changed() => {} }
    // ANCHOR_END: select
    // ANCHOR: deadline
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // ANCHOR_END: deadline
    // ANCHOR: timeout_at
    let by_deadline = tokio::time::timeout_at(deadline, fetch(10)).await;
    // ANCHOR_END: timeout_at
    let by_deadline = by_deadline.unwrap_or_default();
    // ANCHOR: try_join
    let both = tokio::try_join!(try_fetch(11), try_fetch(12));
    // ANCHOR_END: try_join
    println!("{by_deadline} {both:?}");
    // An `asyncio.Event` used as a flag. One used only to stop tasks is better served by
    // tokio-util's `CancellationToken` (chapter 9), a crate this file is not compiled with.
    // ANCHOR: event
    let (set_event, mut event) = tokio::sync::watch::channel(false);
    // ANCHOR_END: event
    let waiting = tokio::spawn(async move {
        // ANCHOR: wait
        event.wait_for(is_set).await.ok();
        // ANCHOR_END: wait
    });
    // `send_replace`, not `send`: it stores the value even when every receiver is gone (it
    // returns the old one), as `Event.set()` always sets; `send` would fail and store nothing.
    // ANCHOR: set
    set_event.send_replace(true);
    // ANCHOR_END: set
    waiting.await.ok();
    let forever = tokio::spawn(std::future::pending::<()>());
    // ANCHOR: cancel
    forever.abort();
    // ANCHOR_END: cancel

    println!("{one} {two} {three} {all:?} {four} {six:?} {in_time:?} {parsed:?}");
    Ok(())
}
