//! `cargo xtask`: regenerates every figure and metric of the toydiff notebook.
//!
//! Plain Rust in matklad's xtask style: `flags.rs` holds every flag, each
//! sub-command lives in its own file with a `run` function that maps its flags to the
//! `toydiff` library's recipe and settings and calls the library's stage, `progress.rs`
//! shows the stages' report lines and progress bars, and `main` turns any error into
//! one line on stderr and exit code 2.

mod all;
mod bench;
mod console;
mod flags;
mod forward;
mod gmm;
mod guidance;
mod progress;
mod quality;
mod sample;
mod samplers;
mod train;

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Threads follow the problem size (the models kernels): batches up to 2,047 rows run
    // on one thread (a second one did not pay there), larger ones share their pieces
    // among every core, or RAYON_NUM_THREADS of them when it is set. The numbers and
    // files are the same bits whatever the thread count.
    let cli = match flags::parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            eprintln!("{}", clap_one_line(&e));
            return ExitCode::from(2);
        }
    };
    match try_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

fn try_main(cli: flags::Cli) -> anyhow::Result<()> {
    match cli.command {
        flags::Command::Gmm(args) => gmm::run(&args),
        flags::Command::Forward(args) => forward::run(&args),
        flags::Command::Train(args) => train::run(&args).map(|_| ()),
        flags::Command::Sample(args) => sample::run(&args).map(|_| ()),
        flags::Command::Samplers(args) => samplers::run(&args),
        flags::Command::Guidance(args) => guidance::run(&args).map(|_| ()),
        flags::Command::All(args) => all::run(&args),
        flags::Command::Bench(args) => bench::run(&args),
        flags::Command::Quality(args) => quality::run(&args),
    }
}

/// An error and its causes on one line: "context: cause: cause". A cause whose text
/// its parent already shows (an I/O error that prints its source) is not repeated.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        if parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// A clap error on one line: its first line, what is allowed where clap knows it (the
/// names of a `--variance`-style flag, the sub-commands), a suggestion, "see --help".
fn clap_one_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::CommandFactory;
    let strings = |kind| match e.get(kind) {
        Some(ContextValue::Strings(v)) if !v.is_empty() => Some(v.join(", ")),
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let missing = matches!(
        e.kind(),
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    let mut line = if missing {
        // clap's first line would be the program's description.
        "error: a sub-command is required".to_string()
    } else {
        let text = e.to_string();
        let mut lines = text.lines();
        let mut first = lines
            .next()
            .unwrap_or("error: invalid arguments")
            .trim_end()
            .to_string();
        // "the following required arguments were not provided:" lists them below.
        if first.ends_with(':') {
            let listed: Vec<&str> = lines.map(str::trim).take_while(|l| !l.is_empty()).collect();
            first = format!("{first} {}", listed.join(", "));
        }
        first
    };
    if let Some(allowed) = strings(ContextKind::ValidValue) {
        line.push_str(&format!("; allowed: {allowed}"));
    }
    if missing || e.kind() == ErrorKind::InvalidSubcommand {
        let names: Vec<String> = flags::Cli::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name().to_string())
            .collect();
        line.push_str(&format!("; allowed: {}", names.join(", ")));
    }
    for kind in [ContextKind::SuggestedSubcommand, ContextKind::SuggestedArg] {
        if let Some(similar) = strings(kind) {
            line.push_str(&format!("; did you mean {similar}?"));
        }
    }
    format!("{line} (see --help)")
}
