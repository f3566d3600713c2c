//! Logs and the progress bar, as chapter 11 sets them up: `tracing` to stderr, readable or JSON
//! lines, filtered by `RUST_LOG` (default `info`); a progress bar only when stderr is a
//! terminal, lifted out of the way while a log line is written.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event, for a person.
    Readable,
    /// One JSON object per line, for a log pipeline.
    Json,
}

/// Standard error, with the progress bar suspended while a line is written.
#[derive(Clone)]
struct LogWriter(ProgressBar);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        self.clone()
    }
}

/// Sets up the logs and returns the progress bar (hidden unless stderr is a terminal). Its
/// length grows as the source is read, its position as outcomes are committed.
pub fn observe(format: LogFormat) -> Result<ProgressBar, String> {
    let terminal = std::io::stderr().is_terminal();
    let progress = if terminal {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{bar:40} {pos}/{len} items, eta {eta}")
            .map_err(|error| format!("progress bar template: {error}"))?;
        bar.with_style(style)
    } else {
        ProgressBar::hidden()
    };
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env()
        .map_err(|error| format!("RUST_LOG: {error}"))?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter(progress.clone()))
        .with_ansi(terminal)
        // A log line that cannot be written is lost, and the run goes on (chapter 11).
        .log_internal_errors(false);
    let installed = match format {
        LogFormat::Readable => logs.compact().try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
    installed.map_err(|error| format!("cannot set up logging: {error}"))?;
    Ok(progress)
}
