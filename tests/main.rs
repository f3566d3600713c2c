//! The book's integration tests, in one test binary so that they run side by side:
//! the chapters mostly sleep, and their runs overlap instead of adding up.
//!
//! # Time in these tests
//!
//! The machines that run them are shared and have two cores, and this suite runs its chapters
//! side by side. A wall-clock duration therefore measures how busy the machine is as much as
//! the program. The rules:
//!
//! - What must be instant, a run on tokio's paused clock, is checked by the processor time the
//!   child used, as the OS accounted for it (`common::run_measuring_cpu`), never by wall time.
//!   The bound is the Run button's budget, one second of a debug build
//!   (`chapters::PAUSED_CPU_LIMIT`).
//! - A figure that depends on real timing (chapter 8's goodput and rejection rate) is asserted
//!   on the paused clock, where it is deterministic. On the real clock the test checks only
//!   what holds under any load: the run completes, every attempt is accounted for, its summary
//!   line is there. The real-clock figures are a benchmark's, shown in the book with the
//!   machine that measured them.
//! - A real-clock run's elapsed time keeps its lower bound, the sleeps it waits for: no load
//!   can make it faster. Its upper bound is tolerant, 5 % plus half a second
//!   (`Run::upper_bound`): a late wake-up costs a scheduler's time slice or a page fault, and
//!   a program that waited for its sleeps one after another instead of together, the defect
//!   these runs exist to catch, is late by whole seconds.
//! - The same goes for a program's own reaction times on the real clock, such as the time to
//!   stop after a signal: each such bound is justified where it is written.

mod blocking;
mod book;
mod bounded;
mod capstone;
mod chapters;
mod cli;
mod common;
mod docs;
mod failures;
mod million;
mod observability;
mod pictures;
mod playground;
mod resume;
mod select;
mod shutdown;
mod ui;
mod workshop;
