//! `cargo xtask`: regenerates every figure and metric of the toydiff notebook.
//!
//! Plain Rust in matklad's xtask style: `flags.rs` holds every flag, each
//! sub-command lives in its own file with a `run` function, and `main` turns any
//! error into one line on stderr and exit code 2.

mod all;
mod bench;
mod data;
mod flags;
mod forward;
mod gmm;
mod output;
mod progress;
mod quality;
mod sample;
mod train;

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // candle's CPU matmul is fastest on one thread at these sizes (see
    // shared/notes/candle-cpu.md); a user can still override it.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let cli = match flags::parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            if !e.use_stderr() {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: clap's first line, without its usage block.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first} (see --help)");
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
        flags::Command::Train(args) => train::run(&args),
        flags::Command::Sample(args) => sample::run(&args),
        flags::Command::All(args) => all::run(&args),
        flags::Command::Bench(args) => bench::run(&args),
        flags::Command::Quality(args) => quality::run(&args),
    }
}

/// An error and its causes on one line: "context: cause: cause".
fn one_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    text.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}
