//! The workshop's checker: `cargo run -q --bin exercise -- SLUG` checks your work on one
//! exercise.
//!
//! The first time, it copies the exercise's starter to `workshop/SLUG.rs`: that copy is yours
//! to edit, outside `code/`, so nothing you write can break the book's own programs. Every
//! time, it compiles your copy the way the Rust Playground compiles the page's Run button
//! (one file, against the same crates), runs it, and passes on its verdict: the checks live
//! at the bottom of the file, and say what to fix when they fail.
//!
//! `cargo run -q --bin exercise -- preflight` checks a laptop before the workshop, and
//! `cargo run -q --bin exercise -- list` lists the exercises.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use io_bound_tokio::{EXERCISES, Exercise, exercise, playground_rustc, rlibs};

/// Checks your work on one of the workshop's exercises.
#[derive(Parser)]
#[command(version)]
struct Options {
    /// The exercise, as its page names it (`consumers`); or `list`, or `preflight`.
    #[arg(value_parser = names())]
    name: String,
    /// Check the book's starter instead of your copy (it fails: that is the point).
    #[arg(long, conflicts_with = "solution")]
    starter: bool,
    /// Check the book's solution instead of your copy.
    #[arg(long)]
    solution: bool,
    /// Start again from the starter. Your copy is kept beside it, as SLUG.rs.old.
    #[arg(long, conflicts_with_all = ["starter", "solution"])]
    reset: bool,
    /// Where your copies live, from the project's folder.
    #[arg(long, value_name = "FOLDER", default_value = "workshop")]
    dir: PathBuf,
}

/// Every name the command takes: the exercises', then `list` and `preflight`.
fn names() -> clap::builder::PossibleValuesParser {
    let mut names: Vec<&str> = EXERCISES.iter().map(|exercise| exercise.slug).collect();
    names.extend(["list", "preflight"]);
    clap::builder::PossibleValuesParser::new(names)
}

/// Past this a program is taken to hang, and killed. The checks of an exercise on the paused
/// clock end at once (a deadlock included: the clock jumps to the checks' own time limit);
/// those on the real clock end within seconds.
const HANG: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    // A bad command line ends here, with one line of error and exit status 2.
    let options = read_options();
    // Paths are the project's, whichever folder cargo was run from.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
    if let Err(error) = std::env::set_current_dir(&root) {
        eprintln!(
            "error: cannot enter the project's folder {}: {error}",
            root.display()
        );
        return ExitCode::from(2);
    }
    match options.name.as_str() {
        "list" => list(&options.dir),
        "preflight" => preflight(),
        slug => {
            // Clap let through only the names `names()` gives.
            let Some(exercise) = exercise(slug) else {
                unreachable!("clap checked the name")
            };
            check(exercise, &options)
        }
    }
}

/// Reads the command line. clap prints `--help` and `--version` and exits with status 0; a
/// mistake gets clap's first paragraph on one line of stderr, and exit status 2.
fn read_options() -> Options {
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

/// Prints every exercise, its chapter and the state of your copy.
fn list(dir: &Path) -> ExitCode {
    for exercise in EXERCISES {
        let copy = dir.join(format!("{}.rs", exercise.slug));
        let state = if copy.exists() { "started" } else { "" };
        println!(
            "{:<10} chapter {:>2}  {:<45} {state}",
            exercise.slug, exercise.chapter, exercise.title
        );
    }
    ExitCode::SUCCESS
}

/// Compiles and runs one exercise: your copy, or the book's starter or solution.
fn check(exercise: &Exercise, options: &Options) -> ExitCode {
    let source = if options.starter {
        exercise.starter()
    } else if options.solution {
        match solved_program(exercise) {
            Ok(program) => program,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let copy = options.dir.join(format!("{}.rs", exercise.slug));
        if let Err(error) = start_copy(exercise, &copy, options.reset) {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
        copy
    };
    let program = match build(&source, exercise) {
        Ok(program) => program,
        Err(Failure::Usage(error)) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
        Err(Failure::Checks(error)) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let mut command = Command::new(&program);
    // A failed check is reported by the checks; a panic's message and place are enough, as on
    // the Playground.
    command.env("RUST_BACKTRACE", "0");
    if exercise.slug == "capstone" {
        // The real service the checks start: built by cargo with this checker.
        command.env("CAPSTONE_SERVICE", sibling("ch14_capstone_service"));
    }
    let verdict = run_bounded(command);
    // The program is this run's alone: nobody else needs it, nor the solution's source.
    let _ = std::fs::remove_file(&program);
    if options.solution {
        let _ = std::fs::remove_file(&source);
    }
    match verdict {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) if options.starter || options.solution => ExitCode::FAILURE,
        Ok(false) => {
            let dir = if options.dir == Path::new("workshop") {
                String::new()
            } else {
                format!(" --dir {}", options.dir.display())
            };
            eprintln!(
                "\nNot yet: edit {} and run `{}{dir}` again.",
                source.display(),
                exercise.command()
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the book's solution as a whole program, the starter with its part filled in, beside
/// this checker, and returns its path.
fn solved_program(exercise: &Exercise) -> Result<PathBuf, String> {
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))
    };
    let program = io_bound_tokio::solved(&read(exercise.starter())?, &read(exercise.solution())?)?;
    let path = profile_dir().join(format!(
        "exercises/{}-solution-{}.rs",
        exercise.slug,
        std::process::id()
    ));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot make {}: {error}", dir.display()))?;
    }
    std::fs::write(&path, program)
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    Ok(path)
}

/// Copies the starter to `copy` unless it is there already (or `reset` asks for a new one).
fn start_copy(exercise: &Exercise, copy: &Path, reset: bool) -> Result<(), String> {
    if copy.exists() && !reset {
        return Ok(());
    }
    if let Some(dir) = copy.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|error| format!("cannot make {}: {error}", dir.display()))?;
    }
    if copy.exists() {
        let old = copy.with_extension("rs.old");
        std::fs::rename(copy, &old)
            .map_err(|error| format!("cannot keep your copy as {}: {error}", old.display()))?;
        println!("Your copy is kept as {}.", old.display());
    }
    std::fs::copy(exercise.starter(), copy)
        .map_err(|error| format!("cannot copy the starter to {}: {error}", copy.display()))?;
    println!(
        "Your copy of the exercise is {}: edit it, then run this command again.\n",
        copy.display()
    );
    Ok(())
}

/// Why a check stopped before it ran: a mistake in the command, or in the learner's code.
enum Failure {
    Usage(String),
    Checks(String),
}

/// Compiles `source` as the Playground would, against the crates cargo built for this checker,
/// and returns the program's path.
fn build(source: &Path, exercise: &Exercise) -> Result<PathBuf, Failure> {
    if !source.is_file() {
        return Err(Failure::Usage(format!("no file {}", source.display())));
    }
    let mut wanted = vec!["tokio", "futures"];
    let mut also = Vec::new();
    if exercise.slug == "capstone" {
        // The libraries built for it are the checker's library and exercise_http's.
        wanted.extend(["reqwest", "serde_json"]);
        also.extend(["--bin", "ch14_capstone_service", "--lib"]);
    }
    let externs = crates(&wanted, &also).map_err(Failure::Usage)?;
    // A name of this run's own: two checks of one exercise at once (a learner's and a test's)
    // must not write over each other's program while it is linked or run.
    let program = sibling(&format!(
        "exercises/{}-{}",
        exercise.slug,
        std::process::id()
    ));
    if let Some(dir) = program.parent() {
        std::fs::create_dir_all(dir).map_err(|error| Failure::Usage(error.to_string()))?;
    }
    let status = playground_rustc(source, &program, &externs)
        .status()
        .map_err(|error| Failure::Usage(format!("cannot run rustc: {error}")))?;
    if status.success() {
        Ok(program)
    } else {
        Err(Failure::Checks(format!(
            "\n{} does not compile yet: the compiler says why, above.",
            source.display()
        )))
    }
}

/// The rlibs of the `wanted` crates, as cargo built them for this checker (and the binaries
/// `also` names, built alongside). Asking cargo is quick when nothing changed, and it names the
/// exact files: the target folder may hold older builds of the same crates.
fn crates(wanted: &[&str], also: &[&str]) -> Result<Vec<(String, PathBuf)>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--quiet",
            "--bin",
            "exercise",
            "--message-format=json",
        ])
        .args(also);
    // The same target folder and profile as this checker's own build: `target/<profile>/`.
    let profile = profile_dir();
    if let Some(target) = profile.parent() {
        command.arg("--target-dir").arg(target);
    }
    if profile.ends_with("release") {
        command.arg("--release");
    }
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot run cargo: {error}"))?;
    if !output.status.success() {
        return Err("cargo could not build the crates the exercises use".into());
    }
    let messages: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    rlibs(&messages, wanted)
}

/// `target/<profile>/`, where cargo put this checker.
fn profile_dir() -> PathBuf {
    let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("target/debug/exercise"));
    me.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A program's path beside this checker's own binary.
fn sibling(name: &str) -> PathBuf {
    profile_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs a program with this terminal as its own, kills it if it still runs after `HANG`, and
/// says whether it succeeded.
fn run_bounded(mut command: Command) -> Result<bool, String> {
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot run {command:?}: {error}"))?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|error| error.to_string())? {
            return Ok(status.success());
        }
        if started.elapsed() > HANG {
            // The kill can fail only if the child just ended, which is what we want anyway.
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "\nStill running after {HANG:?} of real time: stopped. A loop that never awaits?"
            );
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks a laptop before the workshop, in a few seconds once everything is built: the
/// toolchain's version, the crates every exercise needs, a program on the paused clock (an
/// hour of sleeps, at once) and one on the real clock.
fn preflight() -> ExitCode {
    println!("Checking this laptop for the workshop.");
    let version = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output();
    let version = match version {
        Ok(output) => String::from_utf8_lossy(&output.stdout).trim().to_string(),
        Err(error) => {
            eprintln!("✗ cannot run rustc: {error}. Install Rust with rustup.");
            return ExitCode::FAILURE;
        }
    };
    let minor = version
        .strip_prefix("rustc 1.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|minor| minor.parse::<u32>().ok());
    match minor {
        Some(minor) if minor >= 95 => println!("✓ {version}"),
        _ => {
            eprintln!("✗ {version}: the book needs Rust 1.95 or later. Run `rustup update`.");
            return ExitCode::FAILURE;
        }
    }
    let source = Path::new("code/exercises/preflight.rs");
    let externs = match crates(&["tokio", "futures"], &[]) {
        Ok(externs) => externs,
        Err(error) => {
            eprintln!("✗ {error}");
            return ExitCode::FAILURE;
        }
    };
    // The last exercise's crates and the service it runs against: built now, if they were not.
    let capstone = ["--bin", "ch14_capstone_service", "--lib"];
    match crates(&["reqwest", "serde_json"], &capstone) {
        Ok(_) => println!("✓ the crates of the capstone exercise, and its service, are built"),
        Err(error) => {
            eprintln!("✗ {error}");
            return ExitCode::FAILURE;
        }
    }
    let program = sibling(&format!("exercises/preflight-{}", std::process::id()));
    if let Some(dir) = program.parent()
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        eprintln!("✗ cannot make {}: {error}", dir.display());
        return ExitCode::FAILURE;
    }
    let compiled = Instant::now();
    match playground_rustc(source, &program, &externs).status() {
        Ok(status) if status.success() => println!(
            "✓ an exercise compiles in {:.1} s",
            compiled.elapsed().as_secs_f64()
        ),
        _ => {
            eprintln!("✗ the preflight program does not compile: the compiler says why, above.");
            return ExitCode::FAILURE;
        }
    }
    let verdict = run_bounded(Command::new(&program));
    let _ = std::fs::remove_file(&program);
    match verdict {
        Ok(true) => {
            println!("Ready for the workshop.");
            ExitCode::SUCCESS
        }
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("✗ {error}");
            ExitCode::FAILURE
        }
    }
}
