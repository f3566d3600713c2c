//! The service's command line. Every value is typed and checked here, before the service
//! starts, so a bad value is one line on stderr and exit status 2, never a half-started server.
//! The defaults make a good lesson: a client sending 10,000 items meets its quota
//! (2000 requests per second) before the service's capacity, and finishes in about 5 seconds.

use clap::{CommandFactory, Parser, error::ErrorKind};

/// A service with a quota per client, a capacity, injected faults and idempotent writes:
/// the real thing the capstone's client works against, on 127.0.0.1.
#[derive(Parser, Debug)]
#[command(name = "ch14_capstone_service", version)]
pub struct Options {
    /// The TCP port on 127.0.0.1 to listen on; 0 lets the operating system pick a free one.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Requests per second each client id may make: its token bucket's refill rate.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub quota: u32,
    /// Requests a client id may make at once, above its rate: its token bucket's size.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub burst: u32,
    /// Requests in flight the service handles at its base latency. Past it, latency grows
    /// with the square of the load; past 1.5 times it, the service answers 503.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub capacity: u32,
    /// Time to handle one request when within capacity, in milliseconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub latency_ms: u64,
    /// Share of requests that get a 500 (the effect not applied), from 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub fail_rate: f64,
    /// Share of requests never answered (the connection held until the client gives up).
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub hang_rate: f64,
    /// Share of requests whose connection is reset without an answer.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub drop_rate: f64,
    /// Share of requests whose effect is applied, then their connection reset without an
    /// answer: the client cannot tell it from a drop, and retries an item already done.
    #[arg(long, default_value_t = 0.0, value_parser = rate)]
    pub lose_rate: f64,
    /// Seed of the fault draws: one seed draws the same faults in the same order of arrival.
    #[arg(long, default_value_t = 14)]
    pub seed: u64,
}

/// A share of requests: a number from 0 to 1.
fn rate(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|_| "not a number".to_string())?;
    // `contains` is false for NaN too.
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err("must be from 0 to 1".to_string())
    }
}

/// Reads the command line. `--help` and `--version` print and exit 0; a bad command line
/// prints clap's first paragraph on one line (it starts `error: `) and exits 2, as every
/// chapter of the book does.
pub fn read() -> Options {
    let refuse = |error: clap::Error| -> ! {
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
    };
    let options = Options::try_parse().unwrap_or_else(|error| refuse(error));
    // One check no single flag can make: the four shares are drawn from one number in [0, 1).
    let shares = options.fail_rate + options.hang_rate + options.drop_rate + options.lose_rate;
    if shares > 1.0 {
        refuse(Options::command().error(
            ErrorKind::ArgumentConflict,
            "--fail-rate, --hang-rate, --drop-rate and --lose-rate add up to more than 1",
        ));
    }
    options
}
