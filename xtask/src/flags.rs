//! Every command-line flag of `cargo xtask`, in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The notebook's seed (`Random.seed!(1234)`), the default of every stage.
pub const DEFAULT_SEED: u64 = 1234;

/// Regenerates the figures and metrics of the toydiff notebook.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gaussian mixtures: samples, a latent draw, Normal vs GMM fits and their comparison.
    Gmm(GmmArgs),
    /// Run every stage in order and regenerate every figure.
    All(AllArgs),
}

/// The folder every figure of the README comes from.
pub fn default_out() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|root| root.join("assets").join("figures"))
        .unwrap_or_else(|| PathBuf::from("assets/figures"))
}

#[derive(Debug, Clone, Args)]
pub struct GmmArgs {
    /// Output folder (created if missing) [default: assets/figures]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed of every random draw
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Fit a column of your own CSV file (with a header) instead of the notebook's data
    #[arg(long, value_name = "FILE.csv", requires = "column")]
    pub data: Option<PathBuf>,
    /// The column of --data to fit
    #[arg(long, value_name = "NAME", requires = "data")]
    pub column: Option<String>,
    /// Components of the mixture: a number from 1 to 10, or `auto` to choose by BIC
    #[arg(long, default_value = "2", value_parser = parse_k)]
    pub k: KChoice,
}

#[derive(Debug, Clone, Args)]
pub struct AllArgs {
    /// Output folder (created if missing) [default: assets/figures]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed of every random draw
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
}

/// How many mixture components to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KChoice {
    Fixed(usize),
    Auto,
}

/// The largest k `--k` accepts, and the largest `auto` tries.
pub const MAX_K: usize = 10;

fn parse_k(s: &str) -> Result<KChoice, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(KChoice::Auto);
    }
    match s.parse::<usize>() {
        Ok(k) if (1..=MAX_K).contains(&k) => Ok(KChoice::Fixed(k)),
        _ => Err(format!("'{s}' is not allowed: use a whole number from 1 to {MAX_K}, or auto")),
    }
}

pub fn parse() -> Result<Cli, clap::Error> {
    // `cargo xtask gmm` runs `xtask gmm`: the binary name is not repeated.
    Cli::try_parse()
}
