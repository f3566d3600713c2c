//! Chapter 1: one task.
//!
//! Awaits a single simulated I/O task that takes one second, and times it.
//! Run it with `cargo run --bin ch01_one_task`; `--help` lists the options.

use std::process::ExitCode;
use std::time::Duration;

use tokio::time::Instant;

// ANCHOR: task
/// A stand-in for one piece of I/O work (a request, a query): it waits, then reports.
///
/// `task_number` is a `u32` and the time a `Duration`, so neither can be negative:
/// the types enforce what the article's annotations only describe.
async fn normal_task(task_number: u32, time_to_execute: Duration) {
    tokio::time::sleep(time_to_execute).await;
    println!(
        "processed task with task_number={task_number} time_to_execute_in_seconds={} behavior=normal-sleep",
        time_to_execute.as_secs_f64()
    );
}
// ANCHOR_END: task

// ANCHOR: timer
/// Prints how long it lived when it is dropped, like the article's `timer()` context manager:
/// `Drop` runs at the end of the scope however the scope is left, as `finally` does.
struct Timer(Instant);

impl Timer {
    fn start() -> Timer {
        // `tokio::time::Instant` is monotonic: it never jumps back when the wall clock is set.
        Timer(Instant::now())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        println!(
            "elapsed time: {:.2} seconds",
            self.0.elapsed().as_secs_f64()
        );
    }
}
// ANCHOR_END: timer

// ANCHOR: main
async fn run() {
    // Named `_timer`, not `_`: `let _ = ...` would drop the timer at once.
    let _timer = Timer::start();
    normal_task(0, Duration::from_secs(1)).await;
}
// ANCHOR_END: main

// ANCHOR: runtime
/// Which clock tokio's timers follow: the real one, or tokio's paused clock, on which a sleep
/// completes at once and the time it would have taken is added to a virtual clock.
#[derive(Clone, Copy, PartialEq)]
enum Clock {
    Real,
    Paused,
}

/// The Rust Playground, where the book's Run button sends this file, stops a program after a
/// few seconds. It builds every program as a crate named `playground`, so there the default is
/// the paused clock; everywhere else it is the real one.
fn default_clock() -> Clock {
    if option_env!("CARGO_PKG_NAME") == Some("playground") {
        Clock::Paused
    } else {
        Clock::Real
    }
}

/// What `#[tokio::main]` would build, written out so that the clock can be chosen at run time.
fn runtime(clock: Clock) -> std::io::Result<tokio::runtime::Runtime> {
    match clock {
        // The default of `#[tokio::main]`: one worker thread per core.
        Clock::Real => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        // The paused clock needs the single-threaded runtime.
        Clock::Paused => {
            eprintln!(
                "note: tokio's clock is paused: sleeps take no real time, elapsed is virtual"
            );
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()
        }
    }
}
// ANCHOR_END: runtime

const USAGE: &str = "\
Usage: ch01_one_task [--clock real|paused]

Awaits one task that sleeps for 1 s, then prints the elapsed time.

Options:
  --clock real|paused  real: wait for real (the default);
                       paused: run on tokio's paused clock (instant, virtual time)
  -h, --help           print this help
";

/// Reads the command line. `Err` carries the message for a bad one.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Clock>, String> {
    let mut clock = default_clock();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--clock" => {
                clock = match args.next().as_deref() {
                    Some("real") => Clock::Real,
                    Some("paused") => Clock::Paused,
                    Some(other) => {
                        return Err(format!("--clock: expected real or paused, got {other:?}"));
                    }
                    None => return Err("--clock needs a value: real or paused".to_string()),
                }
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    Ok(Some(clock))
}

fn main() -> ExitCode {
    let clock = match parse_args(std::env::args().skip(1)) {
        Ok(Some(clock)) => clock,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // ANCHOR: block_on
    match runtime(clock) {
        Ok(runtime) => {
            // `block_on` is `asyncio.run`: it drives the future `run()` to completion.
            runtime.block_on(run());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            ExitCode::FAILURE
        }
    }
    // ANCHOR_END: block_on
}
