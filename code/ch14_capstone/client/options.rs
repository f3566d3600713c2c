// ANCHOR: options
//! The client's command line. Every value is typed and checked here, before anything runs: a
//! mistake is one line on stderr and exit status 2, as in every chapter of the book.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::logs::LogFormat;

/// Sends each item to the service at --url exactly once in effect, keeping its progress in
/// --db: rerun with the same --db after a crash or a Ctrl-C, and it resumes.
///
/// Exit status: 0 every item done; 1 some are dead letters (or the run failed); 2 bad input;
/// 130 after SIGINT, 143 after SIGTERM.
#[derive(Parser)]
#[command(name = "ch14_capstone_client", version)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["items", "generate"])))]
pub struct Options {
    /// The service, `http://127.0.0.1:PORT`.
    #[arg(long, value_parser = service_url)]
    pub url: String,
    /// A file of items, one a line: the id up to the first tab, the whole line the payload.
    #[arg(long, value_name = "FILE")]
    pub items: Option<PathBuf>,
    /// N items made up on the fly: `item-000000001`, ...
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=1_000_000_000))]
    pub generate: Option<i64>,
    /// The SQLite file of progress, created if missing.
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Who the service counts the quota against.
    #[arg(long, default_value = "ch14-client", value_parser = client_id)]
    pub client_id: String,
    /// The most requests in flight; the adaptive limit stays at or below it.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_concurrency: u32,
    /// Requests per second to keep to (the service's quota, say); none by default.
    #[arg(long, value_name = "PER_SECOND", value_parser = rate)]
    pub rate: Option<f64>,
    /// Failed requests an item may have before it is a dead letter (429s are not counted).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,
    /// Seconds an item may take, across all its retries.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    pub deadline: Duration,
    /// Seconds a request may take, from connecting to the end of the answer.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = seconds)]
    pub request_timeout: Duration,
    /// Seconds connecting may take.
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = seconds)]
    pub connect_timeout: Duration,
    /// Seconds the requests in flight get to finish after SIGINT or SIGTERM.
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = seconds)]
    pub grace: Duration,
    /// How the logs on stderr are written; RUST_LOG filters them (default: info).
    #[arg(long, value_enum, default_value_t = LogFormat::Readable)]
    pub log_format: LogFormat,
    /// Send again the items earlier runs set aside as dead letters (malformed lines excepted),
    /// once what made them fail is fixed.
    #[arg(long)]
    pub retry_dead: bool,
}
// ANCHOR_END: options

// ANCHOR: parsers
/// `http://host:port`, without a path: returned without the slash at the end.
fn service_url(text: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(text).map_err(|error| error.to_string())?;
    if url.scheme() != "http" {
        return Err("must start with http:// (this client speaks plain HTTP)".into());
    }
    if url.host().is_none() || url.path() != "/" || url.query().is_some() {
        return Err("must be http://HOST:PORT, without a path".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn client_id(text: &str) -> Result<String, String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if text.is_empty() || text.len() > 128 || !text.chars().all(allowed) {
        return Err("must be 1 to 128 characters of A-Za-z0-9_-".into());
    }
    Ok(text.to_owned())
}

/// A duration in seconds, from a thousandth to a day.
fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| "not a number of seconds".to_string())?;
    if !(0.001..=86_400.0).contains(&value) {
        return Err("must be from 0.001 to 86400 seconds".into());
    }
    Ok(Duration::from_secs_f64(value))
}

fn rate(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| "not a number".to_string())?;
    if !(0.1..=1_000_000.0).contains(&value) {
        return Err("must be from 0.1 to 1000000 requests per second".into());
    }
    Ok(value)
}

/// `--help` and `--version` print and exit 0; a mistake prints clap's first paragraph on one
/// line (it starts `error: `) and exits 2.
pub fn read() -> Options {
    Options::try_parse().unwrap_or_else(|error| {
        if !error.use_stderr() {
            error.exit();
        }
        let message = error.render().to_string();
        let first: Vec<&str> = message
            .lines()
            .take_while(|line| !line.is_empty())
            .map(str::trim)
            .collect();
        eprintln!("{} (see --help)", first.join(" "));
        std::process::exit(2);
    })
}
// ANCHOR_END: parsers
