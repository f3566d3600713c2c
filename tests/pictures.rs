//! The pictures in the book are drawn by the chapters' programs from seeded runs on the
//! paused clock, so each can be drawn again, identically. A committed picture that no longer
//! matches what its program draws fails here; `UPDATE_EXPECTED=1 cargo test pictures` redraws
//! them.
//!
//! Chapter 8's prose makes one more claim that only a comparison of runs backs: its steps 4 and
//! 5 change nothing that the service sees. It is checked here too.

use std::path::{Path, PathBuf};

use crate::common::{binary, read, root, run};

fn check_picture(committed: &str, args: &[&str]) {
    let drawn = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(committed);
    let drawn_arg = drawn.to_string_lossy().into_owned();
    let mut all_args = vec!["--clock", "paused", "--svg", drawn_arg.as_str()];
    all_args.extend(args);
    let (output, _) = run(&binary("ch08_adaptive"), &all_args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let drawn = std::fs::read_to_string(&drawn).expect("the program wrote its picture");
    let committed = root().join(Path::new("chapters").join(committed));
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        std::fs::write(&committed, &drawn).expect("the committed picture is writable");
    }
    let on_disk = std::fs::read_to_string(&committed).expect("the committed picture exists");
    assert!(
        drawn.starts_with("<svg") && drawn.contains("<polyline"),
        "not a plot: {drawn}"
    );
    assert!(
        on_disk == drawn,
        "{} differs from what `ch08_adaptive {}` draws now: redraw it with \
         `UPDATE_EXPECTED=1 cargo test pictures` and look at it",
        committed.display(),
        all_args.join(" ")
    );
}

#[test]
fn the_adaptive_run_is_drawn_as_committed() {
    check_picture("ch08_adaptive.adaptive.svg", &[]);
}

#[test]
fn the_queue_run_is_drawn_as_committed() {
    check_picture("ch08_adaptive.queue.svg", &["--client", "queue"]);
}

/// What the service saw in chapter 8's paused run of `client`: every `t=` line, and the `jobs`
/// and `summary` lines less what only the client knows (the jobs it parked, its name). Read
/// from the run's expected output, which `chapters::paused_clock` holds to the program's, line
/// for line.
fn what_the_service_saw(client: &str) -> (Vec<String>, u64) {
    let expected = read(format!("tests/expected/ch08_adaptive.{client}.txt").as_ref());
    let mut parked = 0;
    let mut seen = Vec::new();
    for line in expected.lines() {
        let kept: Vec<&str> = line
            .split(' ')
            .filter(|word| {
                if let Some(count) = word.strip_prefix("parked=") {
                    parked = count.parse().expect("a count of parked jobs");
                    return false;
                }
                !word.starts_with("client=")
            })
            .collect();
        if line.starts_with("t=") || line.starts_with("jobs: ") || line.starts_with("summary: ") {
            seen.push(kept.join(" "));
        }
    }
    assert!(seen.len() > 2, "{client}: no report in:\n{expected}");
    (seen, parked)
}

#[test]
fn backoff_and_the_budget_change_nothing_the_service_sees_in_the_chapter_8_run() {
    let (rate, _) = what_the_service_saw("rate");
    let (backoff, _) = what_the_service_saw("backoff");
    let (budget, parked) = what_the_service_saw("budget");
    assert_eq!(rate, backoff, "the backoff run differs from the rate run");
    assert_eq!(rate, budget, "the budget run differs from the rate run");
    assert!(
        parked >= 1000,
        "the page says the budget parks thousands of jobs; it parked {parked}"
    );
}
