//! What the book's tests share: the chapter catalogue and the checks on a chapter's output.
//!
//! No chapter depends on this crate: each chapter in `code/` is a standalone program.
//! The catalogue is the one place where each chapter's runs, expected-output files and
//! expected elapsed times are written down; the tests, the README and the pages are
//! checked against it.

use std::path::{Path, PathBuf};

/// One chapter of the book: a page in `chapters/` and a binary in `code/` of the same name.
#[derive(Debug)]
pub struct Chapter {
    /// Its number: the `NN` of `chNN_slug`.
    pub number: u8,
    /// Its slug: the `slug` of `chNN_slug`.
    pub slug: &'static str,
    /// What it teaches, in a few words (the README's chapter table).
    pub teaches: &'static str,
    /// The runs the tests make of its binary; the first is the plain `cargo run`.
    pub runs: &'static [Run],
    /// Whether it takes `--clock real|paused`. Chapters whose work blocks threads or waits
    /// for signals or a database can only run on the real clock.
    pub paused_clock: bool,
    /// Whether it needs only the crates the Rust Playground offers, so that the book's Run
    /// button works. The others say how to run them, and their Run buttons are off.
    pub playground: bool,
    /// Its place in the workshop's schedule. Its exercises' minutes are theirs (`EXERCISES`).
    pub workshop: Segment,
}

/// A chapter's segment of the workshop: the day it is taught, and the minutes of its talk and of
/// the debrief after its exercises (or after its demo, for a chapter that has none).
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// 1: the one-day workshop. 2: the second day's extras.
    pub day: u8,
    pub talk: u16,
    pub debrief: u16,
}

/// The minutes of a workshop day's opening (the setup's preflight, the plan) and of its
/// closing (questions, what to read next).
pub const OPENING_MINUTES: u16 = 15;
pub const CLOSING_MINUTES: u16 = 10;
/// A workshop day starts at this hour, and takes a break at the end of the segment that runs
/// past each of these times (hours, minutes), for these many minutes; or before that segment,
/// if it would run on for more than `BREAK_LATE_BY_AT_MOST` minutes past the time.
pub const DAY_STARTS_AT: (u16, u16) = (9, 0);
pub const BREAK_LATE_BY_AT_MOST: u16 = 30;
pub const BREAKS: &[((u16, u16), u16, &str)] = &[
    ((10, 30), 15, "Break"),
    ((12, 15), 60, "Lunch"),
    ((15, 0), 15, "Break"),
];

/// One way of running a chapter's binary, and what it must print.
#[derive(Debug)]
pub struct Run {
    /// Command-line arguments, besides `--clock`.
    pub args: &'static [&'static str],
    /// The expected standard output, a file in `tests/expected/`.
    pub expected: &'static str,
    /// The elapsed time the run must report, in seconds: the sum of the sleeps it waits for.
    pub elapsed_seconds: f64,
    /// Which differences in line order are allowed between two runs.
    pub order: Order,
    /// Text that must appear on standard error in a real-clock run; `None`: it must be empty.
    pub stderr: Option<&'static str>,
    /// What the run's `summary:` line must show against the adaptive chapter's targets.
    pub targets: Targets,
}

/// Chapter 8's targets for a client of the simulated service: at least this goodput
/// (completed jobs over the service's capacity), at most this share of attempts refused.
pub const MIN_GOODPUT: f64 = 0.90;
pub const MAX_REJECTED: f64 = 0.05;

/// Whether a run must meet the targets, must miss them, or has none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Targets {
    None,
    Met,
    Missed,
}

/// How far the order of the printed lines may vary from run to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Order {
    /// Every line in its place.
    Exact,
    /// Tasks finish in waves: consecutive `task_number=N` lines whose numbers share the same
    /// `N / size` may come in any order among themselves. Every other line keeps its place.
    WithinWaves(u32),
    /// Every line in its place, but the numbers in it may differ: measurements of a real run.
    NumbersVary,
}

/// Crates of the Rust Playground's list that the book's programs may use: a chapter or an
/// exercise that needs any other crate has no Run button (its page says how to run it).
pub const PLAYGROUND_CRATES: &[&str] = &["tokio", "futures", "rand", "clap"];

/// The book's chapters, in order.
pub const CHAPTERS: &[Chapter] = &[
    Chapter {
        number: 1,
        slug: "one_task",
        teaches: "futures, `.await`, the runtime, a monotonic timer",
        runs: &[Run {
            args: &[],
            expected: "ch01_one_task.txt",
            elapsed_seconds: 1.0,
            order: Order::Exact,
            stderr: None,
            targets: Targets::None,
        }],
        paused_clock: true,
        playground: true,
        workshop: Segment {
            day: 1,
            talk: 15,
            debrief: 5,
        },
    },
    Chapter {
        number: 2,
        slug: "five_tasks",
        teaches: "awaiting in sequence: each task waits for the one before",
        runs: &[Run {
            args: &[],
            expected: "ch02_five_tasks.txt",
            elapsed_seconds: 5.0,
            order: Order::Exact,
            stderr: None,
            targets: Targets::None,
        }],
        paused_clock: true,
        playground: true,
        workshop: Segment {
            day: 1,
            talk: 10,
            debrief: 0,
        },
    },
    Chapter {
        number: 3,
        slug: "gather",
        teaches: "`join!`, `join_all`, `JoinSet`; concurrency versus parallelism",
        runs: &[
            Run {
                args: &[],
                expected: "ch03_gather.txt",
                elapsed_seconds: 1.0,
                order: Order::Exact,
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--with", "join"],
                expected: "ch03_gather.join.txt",
                elapsed_seconds: 1.0,
                order: Order::WithinWaves(5),
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--with", "join-set"],
                expected: "ch03_gather.join-set.txt",
                elapsed_seconds: 1.0,
                order: Order::WithinWaves(5),
                stderr: None,
                targets: Targets::None,
            },
        ],
        paused_clock: true,
        playground: true,
        workshop: Segment {
            day: 1,
            talk: 20,
            debrief: 10,
        },
    },
    Chapter {
        number: 4,
        slug: "queue",
        teaches: "a bounded channel, 50 consumers, backpressure, closing versus poison pills",
        runs: &[
            Run {
                args: &[],
                expected: "ch04_queue.txt",
                elapsed_seconds: 20.0,
                order: Order::WithinWaves(50),
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--end", "pill"],
                expected: "ch04_queue.pill.txt",
                elapsed_seconds: 20.0,
                order: Order::WithinWaves(50),
                stderr: None,
                targets: Targets::None,
            },
        ],
        paused_clock: true,
        playground: true,
        workshop: Segment {
            day: 1,
            talk: 30,
            debrief: 10,
        },
    },
    Chapter {
        number: 5,
        slug: "unreliable",
        teaches: "timeouts, errors as `Result`, surviving panics, retries that retry",
        runs: &[
            Run {
                args: &[],
                expected: "ch05_unreliable.txt",
                elapsed_seconds: 11.0,
                order: Order::Exact,
                stderr: Some("did not expect that?"),
                targets: Targets::None,
            },
            Run {
                args: &["--attempts", "3", "--timeout", "2"],
                expected: "ch05_unreliable.retries.txt",
                elapsed_seconds: 7.0,
                order: Order::Exact,
                stderr: Some("did not expect that?"),
                targets: Targets::None,
            },
        ],
        paused_clock: true,
        playground: true,
        workshop: Segment {
            day: 1,
            talk: 25,
            debrief: 10,
        },
    },
    Chapter {
        number: 6,
        slug: "bounded",
        teaches: "a `Semaphore` and tasks, buffered streams, the `buffer_unordered` trap",
        runs: &[
            Run {
                args: &[],
                expected: "ch06_bounded.txt",
                elapsed_seconds: 20.0,
                order: Order::WithinWaves(50),
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--with", "buffer-unordered"],
                expected: "ch06_bounded.buffer-unordered.txt",
                elapsed_seconds: 20.0,
                order: Order::WithinWaves(50),
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--with", "for-each-concurrent"],
                expected: "ch06_bounded.for-each-concurrent.txt",
                elapsed_seconds: 20.0,
                order: Order::WithinWaves(50),
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--with", "trap"],
                expected: "ch06_bounded.trap.txt",
                elapsed_seconds: 9.75,
                order: Order::Exact,
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--with", "trap-fixed"],
                expected: "ch06_bounded.trap-fixed.txt",
                elapsed_seconds: 9.25,
                // The jobs run on their own: on the real clock their order may vary.
                order: Order::WithinWaves(9),
                stderr: None,
                targets: Targets::None,
            },
            Run {
                // Jobs 1000 to 1119, one a line, read as the semaphore lets them run.
                args: &["--from", "tests/fixtures/ch06_bounded.jobs.txt"],
                expected: "ch06_bounded.from.txt",
                elapsed_seconds: 3.0,
                order: Order::WithinWaves(50),
                stderr: None,
                targets: Targets::None,
            },
        ],
        paused_clock: true,
        playground: true,
        workshop: Segment {
            day: 2,
            talk: 20,
            debrief: 10,
        },
    },
    Chapter {
        number: 7,
        slug: "select",
        teaches: "`select!`, cancellation safety, deadlines across retries, failing fast",
        runs: &[
            Run {
                args: &[],
                expected: "ch07_select.txt",
                // Its lines print the times of events: on the real clock, a busy machine
                // prints them late. Every run of this chapter is compared word for word there,
                // and figure for figure on the paused clock.
                elapsed_seconds: 6.0,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--lesson", "lossy-send"],
                expected: "ch07_select.lossy-send.txt",
                elapsed_seconds: 3.5,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--lesson", "reserve"],
                expected: "ch07_select.reserve.txt",
                elapsed_seconds: 5.0,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--lesson", "pinned"],
                expected: "ch07_select.pinned.txt",
                elapsed_seconds: 5.6,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--lesson", "biased"],
                expected: "ch07_select.biased.txt",
                elapsed_seconds: 4.4,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--lesson", "deadline"],
                expected: "ch07_select.deadline.txt",
                elapsed_seconds: 9.0,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::None,
            },
            Run {
                args: &["--lesson", "fail-fast"],
                expected: "ch07_select.fail-fast.txt",
                elapsed_seconds: 3.5,
                order: Order::NumbersVary,
                stderr: Some("task 4 hit a bug"),
                targets: Targets::None,
            },
        ],
        paused_clock: true,
        playground: true,
        workshop: Segment {
            day: 1,
            talk: 30,
            debrief: 10,
        },
    },
    Chapter {
        number: 8,
        slug: "adaptive",
        teaches: "AIMD concurrency limits, rate limiting, backoff with jitter, retry budgets",
        runs: &[
            Run {
                args: &[],
                expected: "ch08_adaptive.txt",
                elapsed_seconds: 15.0,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::Met,
            },
            Run {
                args: &["--client", "queue"],
                expected: "ch08_adaptive.queue.txt",
                elapsed_seconds: 15.0,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::Missed,
            },
            Run {
                args: &["--client", "limit"],
                expected: "ch08_adaptive.limit.txt",
                elapsed_seconds: 15.0,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::Missed,
            },
            Run {
                args: &["--client", "rate"],
                expected: "ch08_adaptive.rate.txt",
                elapsed_seconds: 15.0,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::Missed,
            },
            Run {
                args: &["--client", "backoff"],
                expected: "ch08_adaptive.backoff.txt",
                elapsed_seconds: 15.0,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::Missed,
            },
            Run {
                args: &["--client", "budget"],
                expected: "ch08_adaptive.budget.txt",
                elapsed_seconds: 15.0,
                order: Order::NumbersVary,
                stderr: None,
                targets: Targets::Missed,
            },
        ],
        paused_clock: true,
        playground: true,
        workshop: Segment {
            day: 2,
            talk: 30,
            debrief: 10,
        },
    },
    Chapter {
        number: 9,
        slug: "shutdown",
        teaches: "signals, cancellation tokens, task trackers, a grace period, a second Ctrl-C",
        runs: &[Run {
            args: &[],
            expected: "ch09_shutdown.txt",
            elapsed_seconds: 10.0,
            order: Order::WithinWaves(4),
            stderr: None,
            targets: Targets::None,
        }],
        paused_clock: false,
        playground: false,
        workshop: Segment {
            day: 2,
            talk: 20,
            debrief: 10,
        },
    },
    Chapter {
        number: 10,
        slug: "resume",
        teaches: "durable progress in SQLite, write-ahead claims, idempotent results",
        runs: &[Run {
            args: &["--db", ":memory:"],
            expected: "ch10_resume.txt",
            elapsed_seconds: 2.5,
            order: Order::WithinWaves(4),
            stderr: None,
            targets: Targets::None,
        }],
        paused_clock: false,
        playground: false,
        workshop: Segment {
            day: 1,
            talk: 15,
            debrief: 5,
        },
    },
    Chapter {
        number: 11,
        slug: "observability",
        teaches: "tracing spans, JSON logs, RUST_LOG, a progress bar, latency percentiles",
        runs: &[Run {
            args: &[],
            expected: "ch11_observability.txt",
            elapsed_seconds: 1.64,
            order: Order::NumbersVary,
            stderr: Some("task finished"),
            targets: Targets::None,
        }],
        paused_clock: true,
        playground: false,
        workshop: Segment {
            day: 2,
            talk: 20,
            debrief: 5,
        },
    },
    Chapter {
        number: 12,
        slug: "blocking",
        teaches: "what blocking does to a runtime, `spawn_blocking`, where CPU work belongs",
        runs: &[Run {
            args: &[],
            expected: "ch12_blocking.txt",
            elapsed_seconds: 1.4,
            order: Order::NumbersVary,
            stderr: None,
            targets: Targets::None,
        }],
        paused_clock: false,
        playground: true,
        workshop: Segment {
            day: 2,
            talk: 15,
            debrief: 5,
        },
    },
    Chapter {
        number: 13,
        slug: "million",
        teaches: "what a task costs, bounded versus unbounded, timer resolution, measured",
        runs: &[Run {
            args: &[
                "--items",
                "2000",
                "--pattern",
                "queue",
                "--work",
                "sleep1ms",
            ],
            expected: "ch13_million.txt",
            elapsed_seconds: 0.04,
            order: Order::NumbersVary,
            stderr: None,
            targets: Targets::None,
        }],
        paused_clock: false,
        playground: false,
        workshop: Segment {
            day: 2,
            talk: 15,
            debrief: 5,
        },
    },
];

/// Part III: one program, two binaries, against a real HTTP service on a loopback port. It has no
/// runs in the chapters' sense (what it prints depends on the service and the machine):
/// `tests/capstone.rs` tests it end to end, and a benchmark measures it.
#[derive(Debug)]
pub struct Capstone {
    /// Its number, after the chapters'.
    pub number: u8,
    /// Its slug: the `slug` of `chNN_slug`, the page's name and the prefix of its binaries.
    pub slug: &'static str,
    /// What it teaches, in a few words (the README's chapter table).
    pub teaches: &'static str,
    /// Its binaries: the service and the client.
    pub binaries: &'static [&'static str],
    /// Its place in the workshop's schedule.
    pub workshop: Segment,
}

/// Part III, the book's last part.
pub const CAPSTONE: Capstone = Capstone {
    number: 14,
    slug: "capstone",
    teaches: "every lesson in one program: a real HTTP service with quotas and faults, a client that survives them",
    binaries: &["ch14_capstone_service", "ch14_capstone_client"],
    workshop: Segment {
        day: 2,
        talk: 20,
        debrief: 15,
    },
};

impl Capstone {
    /// `chNN_slug`: the page's name, and where its sources live in `code/`.
    pub fn name(&self) -> String {
        format!("ch{:02}_{}", self.number, self.slug)
    }

    /// Its page, relative to the project's root.
    pub fn page(&self) -> PathBuf {
        Path::new("chapters").join(format!("{}.md", self.name()))
    }

    /// The folders of its sources, relative to the project's root: one per binary.
    pub fn source_folders(&self) -> Vec<PathBuf> {
        ["service", "client"]
            .iter()
            .map(|part| Path::new("code").join(self.name()).join(part))
            .collect()
    }
}

/// One exercise of the workshop: a starter the learner completes, a solution, and checks that
/// run in the same file. The checks run the learner's code (on tokio's paused clock where
/// `paused_clock` says so) and see the shape of its concurrency: when each job started and
/// ended, how many ran at once, whether each ran exactly once.
#[derive(Debug)]
pub struct Exercise {
    /// Its name: the learner's command names it, and its files are called after it.
    pub slug: &'static str,
    /// The number of the chapter it practises (14: Part III).
    pub chapter: u8,
    /// Its title, on its page and in the schedule.
    pub title: &'static str,
    /// The minutes a room needs for it, in the workshop's schedule.
    pub minutes: u16,
    /// Whether its checks run on the paused clock (at once, exact) or on the real clock.
    pub paused_clock: bool,
    /// Whether its page has a Run button: it needs only the Rust Playground's crates.
    pub playground: bool,
    /// Whether the starter compiles. An exercise whose lesson is a compile error starts
    /// from one.
    pub starter_compiles: bool,
    /// Words the starter's failure must print: the hint that sends the learner on.
    pub starter_says: &'static str,
}

/// The workshop's exercises, in the order of the day.
pub const EXERCISES: &[Exercise] = &[
    Exercise {
        slug: "await",
        chapter: 1,
        title: "Nothing happens until you await",
        minutes: 10,
        paused_clock: true,
        playground: true,
        starter_compiles: true,
        starter_says: ".await",
    },
    Exercise {
        slug: "join",
        chapter: 3,
        title: "Five at once: join_all, then a JoinSet",
        minutes: 20,
        paused_clock: true,
        playground: true,
        starter_compiles: true,
        starter_says: "not yet implemented",
    },
    Exercise {
        slug: "borrow",
        chapter: 3,
        title: "A spawned task that borrows",
        minutes: 15,
        paused_clock: true,
        playground: true,
        starter_compiles: false,
        starter_says: "error[E0373]",
    },
    Exercise {
        slug: "consumers",
        chapter: 4,
        title: "Fifty consumers",
        minutes: 25,
        paused_clock: true,
        playground: true,
        starter_compiles: true,
        starter_says: "not yet implemented",
    },
    Exercise {
        slug: "bounded",
        chapter: 4,
        title: "Backpressure: a queue that holds 100",
        minutes: 15,
        paused_clock: true,
        playground: true,
        starter_compiles: true,
        starter_says: "ahead",
    },
    Exercise {
        slug: "timeout",
        chapter: 5,
        title: "A timeout for each task",
        minutes: 20,
        paused_clock: true,
        playground: true,
        starter_compiles: true,
        starter_says: "timeout",
    },
    Exercise {
        slug: "retries",
        chapter: 5,
        title: "Retries that retry",
        minutes: 20,
        paused_clock: true,
        playground: true,
        starter_compiles: true,
        starter_says: "not yet implemented",
    },
    Exercise {
        slug: "semaphore",
        chapter: 6,
        title: "A permit before the spawn",
        minutes: 20,
        paused_clock: true,
        playground: true,
        starter_compiles: true,
        starter_says: "permit",
    },
    Exercise {
        slug: "deadline",
        chapter: 7,
        title: "One deadline across every retry",
        minutes: 25,
        paused_clock: true,
        playground: true,
        starter_compiles: true,
        starter_says: "deadline",
    },
    Exercise {
        slug: "rate",
        chapter: 8,
        title: "A rate limiter",
        minutes: 25,
        paused_clock: true,
        playground: true,
        starter_compiles: true,
        starter_says: "not yet implemented",
    },
    Exercise {
        slug: "shutdown",
        chapter: 9,
        title: "A shutdown with a grace period",
        minutes: 25,
        paused_clock: true,
        playground: true,
        starter_compiles: true,
        starter_says: "not yet implemented",
    },
    Exercise {
        slug: "blocking",
        chapter: 12,
        title: "Blocking work off the runtime",
        minutes: 15,
        paused_clock: false,
        playground: true,
        starter_compiles: true,
        starter_says: "blocked",
    },
    Exercise {
        slug: "capstone",
        chapter: 14,
        title: "A client against the real service",
        minutes: 60,
        paused_clock: false,
        playground: false,
        starter_compiles: true,
        starter_says: "not yet implemented",
    },
];

impl Exercise {
    /// What the learner starts from, relative to the project's root.
    pub fn starter(&self) -> PathBuf {
        Path::new("code/exercises").join(format!("{}.rs", self.slug))
    }

    /// A solution's part, relative to the project's root: only what the learner writes, the
    /// starter's `exercise` anchor filled in. `solved` makes the whole program of it.
    pub fn solution(&self) -> PathBuf {
        Path::new("code/exercises/solutions").join(format!("{}.rs", self.slug))
    }

    /// Its page, relative to the project's root.
    pub fn page(&self) -> PathBuf {
        Path::new("chapters/exercises").join(format!("{}.md", self.slug))
    }

    /// What its solution prints, relative to the project's root: the figures its page quotes
    /// come from this file, which the tests compare with the solution's output.
    pub fn expected(&self) -> PathBuf {
        Path::new("tests/expected").join(format!("exercise.{}.txt", self.slug))
    }

    /// The learner's copy of the starter, relative to the project's root: outside `code/`, so
    /// that the learner's edits never touch the book's own programs and tests.
    pub fn learner_copy(&self) -> PathBuf {
        Path::new("workshop").join(format!("{}.rs", self.slug))
    }

    /// The command that checks the learner's copy, as the exercise's page prints it.
    pub fn command(&self) -> String {
        format!("cargo run -q --bin exercise -- {}", self.slug)
    }
}

/// The lines of `text` from its `ANCHOR: exercise` line to its `ANCHOR_END: exercise` line, both
/// included, as a range of line indices.
fn exercise_lines(text: &str) -> Option<std::ops::RangeInclusive<usize>> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|line| line.contains("ANCHOR: exercise"))?;
    let end = lines
        .iter()
        .position(|line| line.contains("ANCHOR_END: exercise"))?;
    (start < end).then_some(start..=end)
}

/// The whole program a solution makes: the starter, with its `exercise` anchor's lines replaced
/// by the solution's. `Err` says which file lacks the anchor.
pub fn solved(starter: &str, solution: &str) -> Result<String, String> {
    let theirs = exercise_lines(starter).ok_or("the starter has no `exercise` anchor")?;
    let ours = exercise_lines(solution).ok_or("the solution has no `exercise` anchor")?;
    let starter: Vec<&str> = starter.lines().collect();
    let solution: Vec<&str> = solution.lines().collect();
    let mut program: Vec<&str> = starter[..*theirs.start()].to_vec();
    program.extend(&solution[ours]);
    program.extend(&starter[theirs.end() + 1..]);
    Ok(program.join("\n") + "\n")
}

/// Finds an exercise by its slug.
pub fn exercise(slug: &str) -> Option<&'static Exercise> {
    EXERCISES.iter().find(|exercise| exercise.slug == slug)
}

/// The rlib cargo built for each of the `wanted` crates, from the JSON messages of a
/// `cargo build --message-format=json`: the exact files, where the target folder may also hold
/// older builds of the same crates. `Err` names the crates cargo did not report.
pub fn rlibs<'a>(
    messages: impl IntoIterator<Item = &'a serde_json::Value>,
    wanted: &[&str],
) -> Result<Vec<(String, PathBuf)>, String> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for message in messages {
        let name = message["target"]["name"].as_str().unwrap_or_default();
        if message["reason"] != "compiler-artifact"
            || !wanted.contains(&name)
            || found.iter().any(|(known, _)| known == name)
        {
            continue;
        }
        let rlib = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|file| file.as_str())
            .find(|file| file.ends_with(".rlib"));
        if let Some(rlib) = rlib {
            found.push((name.to_string(), PathBuf::from(rlib)));
        }
    }
    let missing: Vec<&&str> = wanted
        .iter()
        .filter(|name| !found.iter().any(|(known, _)| known == *name))
        .collect();
    if missing.is_empty() {
        Ok(found)
    } else {
        Err(format!("cargo did not report the crates {missing:?}"))
    }
}

/// The command that compiles one file the way the Rust Playground does: a lone crate named
/// `playground`, edition 2024, linked against the crates given as `(name, rlib)`, all of them
/// built by cargo in one directory. The tests build the chapters and exercises with it; the
/// workshop's `exercise` tool builds a learner's copy with it.
pub fn playground_rustc(
    source: &Path,
    program: &Path,
    externs: &[(String, PathBuf)],
) -> std::process::Command {
    let mut rustc =
        std::process::Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    rustc
        // What the playground's cargo tells the compiler the crate is called.
        .env("CARGO_PKG_NAME", "playground")
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "bin",
            "--crate-name",
            "playground",
        ]);
    if let Some((_, rlib)) = externs.first()
        && let Some(deps) = rlib.parent()
    {
        rustc
            .arg("-L")
            .arg(format!("dependency={}", deps.display()));
    }
    rustc.arg("-o").arg(program);
    for (name, rlib) in externs {
        rustc
            .arg("--extern")
            .arg(format!("{name}={}", rlib.display()));
    }
    rustc.arg(source);
    rustc
}

impl Chapter {
    /// The binary's name, which is also the page's and the source file's: `chNN_slug`.
    pub fn name(&self) -> String {
        format!("ch{:02}_{}", self.number, self.slug)
    }

    /// The chapter's page, relative to the project's root.
    pub fn page(&self) -> PathBuf {
        Path::new("chapters").join(format!("{}.md", self.name()))
    }

    /// The chapter's program, relative to the project's root.
    pub fn source(&self) -> PathBuf {
        Path::new("code").join(format!("{}.rs", self.name()))
    }
}

impl Run {
    /// The expected-output file, relative to the project's root.
    pub fn expected_path(&self) -> PathBuf {
        Path::new("tests").join("expected").join(self.expected)
    }

    /// The fastest a real run may report: it cannot beat the sleeps it waits for.
    pub fn lower_bound(&self) -> f64 {
        self.elapsed_seconds
    }

    /// The slowest a real run may report on a shared, noisy machine before the test fails.
    pub fn upper_bound(&self) -> f64 {
        self.elapsed_seconds * 1.05 + 0.5
    }
}

/// Finds a chapter by its binary's name.
pub fn chapter(name: &str) -> Option<&'static Chapter> {
    CHAPTERS.iter().find(|chapter| chapter.name() == name)
}

/// The line every chapter ends with, for an elapsed time in seconds.
pub fn elapsed_line(seconds: f64) -> String {
    format!("elapsed time: {seconds:.2} seconds")
}

/// Splits a chapter's output into the lines before its last one, and the elapsed time that
/// last line reports. `Err` says what is wrong with an output that does not end that way.
pub fn split_elapsed(output: &str) -> Result<(Vec<&str>, f64), String> {
    let mut lines: Vec<&str> = output.lines().collect();
    let last = lines.pop().ok_or("the output is empty")?;
    let seconds = last
        .strip_prefix("elapsed time: ")
        .and_then(|rest| rest.strip_suffix(" seconds"))
        .ok_or_else(|| format!("the last line is not `elapsed time: X.XX seconds`: {last:?}"))?;
    let seconds: f64 = seconds
        .parse()
        .map_err(|_| format!("the elapsed time is not a number: {last:?}"))?;
    Ok((lines, seconds))
}

/// The `N` of a line's `task_number=N`, if it has one.
pub fn task_number(line: &str) -> Option<u32> {
    let rest = line.split_once("task_number=")?.1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The lines in a canonical order, so that two runs that differ only in the ways `order`
/// allows give equal results.
pub fn normalize(lines: &[&str], order: Order) -> Vec<String> {
    let size = match order {
        Order::Exact => return lines.iter().map(|line| line.to_string()).collect(),
        Order::NumbersVary => return lines.iter().map(|line| mask_numbers(line)).collect(),
        Order::WithinWaves(size) => size,
    };
    let wave = |line: &str| task_number(line).map(|n| n / size);
    let mut normalized = Vec::with_capacity(lines.len());
    let mut start = 0;
    while start < lines.len() {
        let tag = wave(lines[start]);
        let mut end = start + 1;
        while tag.is_some() && end < lines.len() && wave(lines[end]) == tag {
            end += 1;
        }
        let mut group = lines[start..end].to_vec();
        group.sort_by_key(|line| task_number(line));
        normalized.extend(group.into_iter().map(String::from));
        start = end;
    }
    normalized
}

/// The line with every number replaced by `#`.
pub fn mask_numbers(line: &str) -> String {
    let mut masked = String::with_capacity(line.len());
    let mut in_number = false;
    for c in line.chars() {
        let numeric = c.is_ascii_digit() || (in_number && c == '.');
        if numeric && !in_number {
            masked.push('#');
        } else if !numeric {
            masked.push(c);
        }
        in_number = numeric;
    }
    masked
}

/// The figures of a chapter's `summary:` line, by name: `goodput=0.96` gives `("goodput", 0.96)`.
pub fn summary_figures(output: &str) -> Option<Vec<(String, f64)>> {
    let line = output.lines().find(|line| line.starts_with("summary: "))?;
    Some(
        line.split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_elapsed_line() {
        let (lines, seconds) = split_elapsed("a\nb\nelapsed time: 20.04 seconds\n").unwrap();
        assert_eq!(lines, ["a", "b"]);
        assert_eq!(seconds, 20.04);
        assert!(split_elapsed("a\nb\n").is_err());
        assert!(split_elapsed("").is_err());
        assert!(split_elapsed("elapsed time: soon seconds").is_err());
    }

    #[test]
    fn waves_allow_reordering_inside_a_wave_only() {
        let line = |n: u32| format!("processed task with task_number={n} behavior=x");
        let expected: Vec<String> = [0, 1, 2, 3].map(line).into();
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        let within: Vec<String> = [1, 0, 3, 2].map(line).into();
        let within: Vec<&str> = within.iter().map(String::as_str).collect();
        let across: Vec<String> = [0, 2, 1, 3].map(line).into();
        let across: Vec<&str> = across.iter().map(String::as_str).collect();
        let waves = Order::WithinWaves(2);
        assert_eq!(normalize(&within, waves), normalize(&expected, waves));
        assert_ne!(normalize(&across, waves), normalize(&expected, waves));
        assert_ne!(normalize(&within, Order::Exact), expected);
    }

    #[test]
    fn numbers_may_vary_but_not_the_words() {
        let a = ["t=1s limit=33.0 rejected=0"];
        let b = ["t=1s limit=31.25 rejected=120"];
        let c = ["t=1s limit=31.25 refused=120"];
        assert_eq!(mask_numbers(a[0]), "t=#s limit=# rejected=#");
        assert_eq!(
            normalize(&a, Order::NumbersVary),
            normalize(&b, Order::NumbersVary)
        );
        assert_ne!(
            normalize(&a, Order::NumbersVary),
            normalize(&c, Order::NumbersVary)
        );
    }

    #[test]
    fn summary_figures_are_read_by_name() {
        let output = "t=1s\nsummary: mode=fixed goodput=0.88 rejected=0.29 elapsed=15.00\n";
        let figures = summary_figures(output).unwrap();
        assert_eq!(figures[0], ("goodput".to_string(), 0.88));
        assert_eq!(figures[1], ("rejected".to_string(), 0.29));
        assert!(summary_figures("nothing").is_none());
    }

    #[test]
    fn a_line_between_waves_keeps_its_place() {
        let lines = ["task_number=1", "producer done", "task_number=0"];
        let normalized = normalize(&lines, Order::WithinWaves(50));
        assert_eq!(normalized, lines, "the middle line separates the groups");
    }

    #[test]
    fn rlibs_are_read_from_cargos_messages() {
        let messages: Vec<serde_json::Value> = [
            r#"{"reason":"compiler-artifact","target":{"name":"tokio"},"filenames":["/t/libtokio-1.rmeta","/t/libtokio-1.rlib"]}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"clap"},"filenames":["/t/libclap-2.rlib"]}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
        let found = rlibs(&messages, &["tokio"]).unwrap();
        assert_eq!(
            found,
            [("tokio".to_string(), PathBuf::from("/t/libtokio-1.rlib"))]
        );
        assert!(
            rlibs(&messages, &["tokio", "futures"])
                .unwrap_err()
                .contains("futures")
        );
    }

    #[test]
    fn a_solution_replaces_the_starters_part_only() {
        let starter = "a\n// ANCHOR: exercise\ntodo!()\n// ANCHOR_END: exercise\nz\n";
        let solution = "// header\n// ANCHOR: exercise\nx\ny\n// ANCHOR_END: exercise\n";
        let program = solved(starter, solution).unwrap();
        assert_eq!(
            program,
            "a\n// ANCHOR: exercise\nx\ny\n// ANCHOR_END: exercise\nz\n"
        );
        assert!(solved("a\n", solution).is_err());
        assert!(solved(starter, "x\n").is_err());
    }

    #[test]
    fn names_follow_the_design() {
        let chapter = chapter("ch04_queue").unwrap();
        assert_eq!(chapter.page(), Path::new("chapters/ch04_queue.md"));
        assert_eq!(chapter.source(), Path::new("code/ch04_queue.rs"));
        assert_eq!(chapter.runs[0].upper_bound(), 21.5);
        assert_eq!(elapsed_line(11.0), "elapsed time: 11.00 seconds");
    }
}
