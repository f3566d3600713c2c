//! The pictures in the book are drawn by the chapters' programs from seeded runs on the
//! paused clock, so each can be drawn again, identically. A committed picture that no longer
//! matches what its program draws fails here; `UPDATE_EXPECTED=1 cargo test pictures` redraws
//! them.

use std::path::{Path, PathBuf};

use crate::common::{binary, root, run};

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
