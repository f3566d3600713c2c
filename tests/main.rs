//! The book's integration tests, in one test binary so that they run side by side:
//! the chapters mostly sleep, and their runs overlap instead of adding up.

mod blocking;
mod book;
mod chapters;
mod cli;
mod common;
mod docs;
mod million;
mod observability;
mod pictures;
mod playground;
mod resume;
mod shutdown;
mod ui;
