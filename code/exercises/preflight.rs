//! The workshop's preflight: `cargo run -q --bin exercise -- preflight` compiles this file the
//! way it compiles an exercise, and runs it. It checks the two clocks the exercises use.

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    // The paused clock: an hour of sleeps must pass at once, and exactly.
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime on this thread");
    let real_start = std::time::Instant::now();
    let virtual_elapsed = paused.block_on(async {
        let start = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        start.elapsed()
    });
    let real = real_start.elapsed();
    if virtual_elapsed < Duration::from_secs(3600) || real > Duration::from_secs(1) {
        eprintln!("✗ the paused clock: 3600 s of sleep took {real:?} of real time");
        return ExitCode::FAILURE;
    }
    println!(
        "✓ the paused clock: 3600 s of sleep in {:.3} s of real time",
        real.as_secs_f64()
    );

    // The real clock: a sleep of 200 ms takes at least that, and not much more.
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let elapsed = runtime.block_on(async {
        let start = tokio::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(200)).await;
        start.elapsed()
    });
    if elapsed < Duration::from_millis(200) || elapsed > Duration::from_secs(2) {
        eprintln!("✗ the real clock: a sleep of 200 ms took {elapsed:?}");
        return ExitCode::FAILURE;
    }
    println!(
        "✓ the real clock: a sleep of 200 ms took {:.3} s",
        elapsed.as_secs_f64()
    );
    ExitCode::SUCCESS
}
