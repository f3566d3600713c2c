//! Everything checked before any work, so that bad input costs nothing and leaves nothing
//! behind: the items can be read, the service answers `GET /health`, and the database is this
//! program's and not in use by another run (opened last: a run refused for a wrong URL does not
//! leave an empty database behind). Any failure here is bad input: exit status 2.

use crate::items::Source;
use crate::options::Options;
use crate::store::Store;

/// Everything checked before any work: the items can be read, the service answers, and the
/// database is this program's and not in use. Any failure is bad input.
pub async fn prepare(options: &Options) -> Result<(Source, reqwest::Client, Store), String> {
    let source = match (&options.items, options.generate) {
        (Some(path), _) => Source::file(path)?,
        (None, Some(count)) => Source::generated(count),
        // clap requires exactly one of the two.
        (None, None) => return Err("--items or --generate is required".into()),
    };
    // One client for the whole run: it keeps the connections open between requests. Plain
    // HTTP/1, and no proxy: the service is on this machine, whatever `HTTP_PROXY` says.
    let http = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.request_timeout)
        .pool_max_idle_per_host(options.max_concurrency as usize)
        .no_proxy()
        .build()
        .map_err(|error| format!("cannot make the HTTP client: {}", chain(&error)))?;
    let health = format!("{}/health", options.url);
    let answer = http.get(&health).send().await;
    match answer.map(|response| response.status()) {
        Ok(status) if status.is_success() => {}
        Ok(status) => return Err(format!("{health} answered {status}: is it the service?")),
        Err(error) => return Err(format!("no service at {}: {}", options.url, chain(&error))),
    }
    let path = options.db.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&path)).await;
    let store = store.map_err(|error| format!("opening the database: {error}"))??;
    Ok((source, http, store))
}

/// An error and its causes, on one line: reqwest's own message alone says too little.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text = format!("{text}: {error}");
        cause = error.source();
    }
    text
}
