//! Every command-line flag of `cargo xtask`, in one place.

use std::path::PathBuf;

use clap::builder::TypedValueParser;
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
    /// Noise schedules and the forward-diffusion animation.
    Forward(ForwardArgs),
    /// Train the denoiser and the noisy classifier; save checkpoints; evaluate them.
    Train(TrainArgs),
    /// Sample with the trained networks, unguided and guided; GIF, CSVs and metrics.
    Sample(SampleArgs),
    /// Every sampler at K = 5 … 500 steps, learned and exact score: samplers.json and .png.
    Samplers(SamplersArgs),
    /// Log-likelihood of held-out points: true density, Normal, GMM, diffusion ODE and ELBO
    /// (about 10 s at the defaults; `all` runs it on 500 points).
    Likelihood(LikelihoodArgs),
    /// Classifier vs classifier-free guidance: precision against diversity over their
    /// scales, learned and exact: guidance.json and .png.
    Guidance(GuidanceArgs),
    /// Run every stage in order and regenerate every figure.
    All(AllArgs),
    /// Train and sample every built-in data set and check the quality bar.
    Quality(QualityArgs),
    /// Time every stage against its arithmetic floor (and PyTorch/JAX with --peers).
    Bench(BenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct QualityArgs {
    /// Output folder: one sub-folder per data set, plus quality.md and quality.json
    #[arg(long, value_name = "DIR", default_value = "target/quality")]
    pub out: PathBuf,
    /// Seed of every random draw
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Only these built-in sets (comma-separated) [default: all of them]
    #[arg(long, value_name = "NAME,…", value_delimiter = ',', value_parser = parse_dataset)]
    pub datasets: Vec<toy_data::BuiltinSet>,
}

#[derive(Debug, Clone, Args)]
pub struct ForwardArgs {
    /// Output folder (created if missing) [default: assets/figures]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed of every random draw
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Keep a snapshot every this many steps
    #[arg(long, default_value_t = 50, value_parser = whole(1, 100_000), allow_negative_numbers = true)]
    pub every: usize,
    #[command(flatten)]
    pub data: DataArgs,
    /// Number of diffusion steps T
    #[arg(long = "T", default_value_t = 500, value_parser = whole(1, 100_000), allow_negative_numbers = true)]
    pub steps: usize,
    /// β schedule of the diffusion: linear (the notebook's), cosine or quadratic
    /// [default: linear]
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// Diffuse the data of this checkpoint folder with its T and schedule (instead of
    /// --dataset/--data, --T and --schedule)
    #[arg(long, value_name = "DIR", conflicts_with_all = ["dataset", "n_data", "data", "schedule", "steps"])]
    pub checkpoints: Option<PathBuf>,
}

/// A β schedule by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScheduleArg {
    Linear,
    Cosine,
    Quadratic,
}

impl ScheduleArg {
    /// The schedule with its parameters: β from 1e-4 to 0.02 (linear, quadratic), s = 0.008 (cosine).
    pub fn kind(self) -> schedule::ScheduleKind {
        let name = match self {
            ScheduleArg::Linear => "linear",
            ScheduleArg::Cosine => "cosine",
            ScheduleArg::Quadratic => "quadratic",
        };
        name.parse().expect("a schedule name")
    }
}

#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Output folder (created if missing) [default: assets/figures]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Seed of the data, the initial weights, the batches and the noise
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Denoiser training steps, one batch each [default: 2000 for two-clusters, else 20000]
    #[arg(long, value_parser = whole(1, 10_000_000), allow_negative_numbers = true)]
    pub steps: Option<usize>,
    /// Classifier epochs, shuffled passes over the data [default: 1000 for two-clusters,
    /// else about 8000 steps' worth]
    #[arg(long, value_parser = whole(1, 1_000_000), allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Conditional denoiser training steps (classifier-free guidance; labelled data only)
    /// [default: twice --steps for two-clusters, else --steps]
    #[arg(long, value_name = "STEPS", value_parser = whole(1, 10_000_000), allow_negative_numbers = true)]
    pub cond_steps: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// Batch size of both
    #[arg(long, default_value_t = 128, value_parser = whole(1, 1_000_000), allow_negative_numbers = true)]
    pub batch: usize,
    /// Adam learning rate of both
    #[arg(long, default_value_t = 1e-3, value_parser = parse_lr, allow_negative_numbers = true)]
    pub lr: f64,
    /// β schedule the networks learn (recorded in the checkpoint; `sample` and
    /// `forward --checkpoints` use it): linear (the notebook's), cosine or quadratic
    /// [default: linear]
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// Label dropout of the conditional denoiser (classifier-free guidance; labelled data
    /// only): the probability that a training point's class is replaced by the null class,
    /// strictly between 0 and 1 [default: 0.2]
    #[arg(long, value_name = "P", value_parser = parse_probability, allow_negative_numbers = true)]
    pub cond_dropout: Option<f64>,
}

fn parse_probability(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not allowed: use a probability strictly between 0 and 1, e.g. 0.1 or 0.2"
        )),
    }
}

#[derive(Debug, Clone, Args)]
pub struct SampleArgs {
    /// Output folder (created if missing) [default: assets/figures]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Checkpoint folder `train` wrote (networks, data, recipe) [default: OUT/checkpoints]
    #[arg(long, value_name = "DIR")]
    pub checkpoints: Option<PathBuf>,
    /// Samples per run
    #[arg(long, default_value_t = 500, value_parser = whole(1, 1_000_000), allow_negative_numbers = true)]
    pub n: usize,
    /// Classifier guidance scale s: the guided mean gets s·σ_t²·∇ log p(y | x_t, t)
    /// [default: 30 (the notebook's) for two-clusters, else 5]; --guidance classifier only
    #[arg(long, value_parser = parse_scale, allow_negative_numbers = true)]
    pub scale: Option<f64>,
    /// How the guided runs are guided: classifier (the notebook's noisy classifier) or
    /// free (classifier-free: the conditional denoiser mixed with its unconditional self)
    #[arg(long, value_enum, default_value_t = GuidanceArg::Classifier)]
    pub guidance: GuidanceArg,
    /// Classifier-free guidance weight w: ε = (1 + w)·ε(x_t, t, y) − w·ε(x_t, t, ∅), a
    /// number from 0 (the conditional model alone) to 1e6 [default: 1]; --guidance free only
    #[arg(long, value_name = "W", value_parser = parse_scale, allow_negative_numbers = true)]
    pub cfg_weight: Option<f64>,
    /// Guide only towards these classes, by name (comma-separated) [default: every class]
    #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
    pub classes: Vec<String>,
    /// Keep a snapshot (a GIF frame) every this many sampler steps [default: 10 for
    /// ddpm, 1 for the others (a frame at every step of the sub-sequence)]
    #[arg(long, value_parser = whole(1, 100_000), allow_negative_numbers = true)]
    pub snapshot_every: Option<usize>,
    /// Variance of each DDPM step: beta (the notebook's) or posterior (β̃_t)
    #[arg(long, value_enum, default_value_t = VarianceArg::Beta)]
    pub variance: VarianceArg,
    /// Seed of x_T and the noise of every step
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Sampler: ddpm (the notebook's, every step), ddim, euler or heun (the probability-flow
    /// ODE), dpm-solver (DPM-Solver++(2M))
    #[arg(long, value_enum, default_value_t = SamplerArg::Ddpm)]
    pub sampler: SamplerArg,
    /// Sampler steps K, from 1 to T (ddpm: T only) [default: T for ddpm, 50 for the others]
    #[arg(long, value_parser = whole(1, 100_000), allow_negative_numbers = true)]
    pub steps: Option<usize>,
    /// DDIM's η from 0 (deterministic) to 1 (DDPM's σ² = β̃ over every step); ddim only
    /// [default: 0]
    #[arg(long, value_parser = parse_eta, allow_negative_numbers = true)]
    pub eta: Option<f64>,
}

#[derive(Debug, Clone, Args)]
pub struct SamplersArgs {
    /// Output folder (created if missing) [default: assets/figures]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Checkpoint folder of the learned nets, on data with a known true mixture; it is
    /// not trained here: run `cargo xtask train` first if it is missing
    /// [default: assets/figures/checkpoints, the notebook's]
    #[arg(long, value_name = "DIR")]
    pub checkpoints: Option<PathBuf>,
    /// Samples of each run (and of the true mixture's reference sample)
    #[arg(long, default_value_t = 5000, value_parser = whole(2, 1_000_000), allow_negative_numbers = true)]
    pub n: usize,
    /// Points of each side of the 2-Wasserstein distance (exact optimal transport, O(n³)),
    /// at most --n
    #[arg(long, default_value_t = 1000, value_parser = whole(1, 20_000), allow_negative_numbers = true)]
    pub w2_n: usize,
    /// Seed of x_T (shared by every run), the noise and the reference samples
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
}

#[derive(Debug, Clone, Args)]
pub struct LikelihoodArgs {
    /// Output folder (created if missing) [default: assets/figures]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Checkpoint folder `train` wrote (networks, data, recipe) [default: OUT/checkpoints]
    #[arg(long, value_name = "DIR")]
    pub checkpoints: Option<PathBuf>,
    /// Points: fresh draws of the true distribution where there is one, else at most this
    /// many held-out rows (`all` uses 500, to stay under a second)
    #[arg(long, default_value_t = 10_000, value_parser = whole(2, 1_000_000), allow_negative_numbers = true)]
    pub n: usize,
    /// K, the probability-flow ODE's Heun steps on the samplers' grid (2K − 1 model
    /// evaluations, each with its divergence), 1 to T
    #[arg(long, default_value_t = 50, value_parser = whole(1, 100_000), allow_negative_numbers = true)]
    pub steps: usize,
    /// Cells per side of density.png's grid (`all` uses 40)
    #[arg(long, default_value_t = 60, value_parser = whole(2, 400), allow_negative_numbers = true)]
    pub grid: usize,
    /// The largest k of the Gaussian mixture, chosen by BIC among 1..=K (`all` uses 4)
    #[arg(long, default_value_t = 8, value_parser = whole(1, 20), allow_negative_numbers = true)]
    pub max_k: usize,
    /// Reverse variance of the chain whose ELBO is reported: beta (the notebook's
    /// sampler) or posterior (β̃_t)
    #[arg(long, value_enum, default_value_t = VarianceArg::Beta)]
    pub variance: VarianceArg,
    /// Seed of the fresh points, the ELBO's noise and the mixture fits
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
}

#[derive(Debug, Clone, Args)]
pub struct GuidanceArgs {
    /// Output folder (created if missing) [default: assets/figures]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Checkpoint folder `train` wrote, on labelled data, with a conditional denoiser
    /// [default: OUT/checkpoints]
    #[arg(long, value_name = "DIR")]
    pub checkpoints: Option<PathBuf>,
    /// Samples of each run (48 runs on the notebook's data: 2 methods × 6 settings ×
    /// learned and exact × 2 classes); `cargo xtask all` runs this stage with 200
    #[arg(long, default_value_t = 500, value_parser = whole(2, 100_000), allow_negative_numbers = true)]
    pub n: usize,
    /// Seed of x_T and the noise (shared by the settings of a class) and the references
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
}

/// A guidance method by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GuidanceArg {
    Classifier,
    Free,
}

impl GuidanceArg {
    /// The library's name for it.
    pub fn kind(self) -> toydiff::GuidanceKind {
        match self {
            GuidanceArg::Classifier => toydiff::GuidanceKind::Classifier,
            GuidanceArg::Free => toydiff::GuidanceKind::Free,
        }
    }
}

/// A sampler by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SamplerArg {
    Ddpm,
    Ddim,
    Euler,
    Heun,
    DpmSolver,
}

impl SamplerArg {
    /// The library's name for it.
    pub fn kind(self) -> toydiff::SamplerKind {
        match self {
            SamplerArg::Ddpm => toydiff::SamplerKind::Ddpm,
            SamplerArg::Ddim => toydiff::SamplerKind::Ddim,
            SamplerArg::Euler => toydiff::SamplerKind::Euler,
            SamplerArg::Heun => toydiff::SamplerKind::Heun,
            SamplerArg::DpmSolver => toydiff::SamplerKind::DpmSolver,
        }
    }
}

fn parse_eta(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not allowed: use a number from 0 to 1")),
    }
}

/// A sub-command's flags as an empty command line gives them: the defaults that `all`
/// and `quality` start from when they run a stage, so each default is written once.
pub fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let matches = T::augment_args(clap::Command::new("defaults"))
        .try_get_matches_from(["defaults"])
        .expect("every flag has a default or is optional");
    T::from_arg_matches(&matches).expect("the defaults parse")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VarianceArg {
    Beta,
    Posterior,
}

impl From<VarianceArg> for sampler::ReverseVariance {
    fn from(v: VarianceArg) -> Self {
        match v {
            VarianceArg::Beta => Self::Beta,
            VarianceArg::Posterior => Self::Posterior,
        }
    }
}

/// Where the 2-D data comes from: a built-in set or a CSV file.
#[derive(Debug, Clone, Default, Args)]
pub struct DataArgs {
    /// Built-in data set: two-clusters (the notebook's, default), moons, circles,
    /// eight-gaussians, checkerboard, swiss-roll, spiral
    #[arg(long, value_name = "NAME", value_parser = parse_dataset, conflicts_with = "data")]
    pub dataset: Option<toy_data::BuiltinSet>,
    /// Points to generate for a built-in set [default: the set's own size]
    #[arg(long, value_name = "N", value_parser = whole(2, 1_000_000), allow_negative_numbers = true, conflicts_with = "data")]
    pub n_data: Option<usize>,
    /// Your own CSV file (with a header row) instead of a built-in set
    #[arg(long, value_name = "FILE.csv", requires = "columns")]
    pub data: Option<PathBuf>,
    /// The two numeric columns of --data, e.g. --columns x,y
    #[arg(long, value_name = "X,Y", value_delimiter = ',', requires = "data")]
    pub columns: Vec<String>,
    /// A class column of --data (strings or integers; 2 to 16 classes) for guidance
    #[arg(long, value_name = "COL", requires = "data")]
    pub label: Option<String>,
    /// Skip rows with an empty, NA, non-numeric or infinite cell (and say how many)
    #[arg(long, requires = "data")]
    pub drop_missing: bool,
}

fn parse_dataset(s: &str) -> Result<toy_data::BuiltinSet, String> {
    s.parse().map_err(|e: toy_data::DataError| e.to_string())
}

/// The denoiser's shape; unset fields take the data set's default (the notebook's
/// network for two-clusters, a larger one for everything else).
#[derive(Debug, Clone, Default, Args)]
pub struct NetArgs {
    /// Units per hidden layer of the denoiser [default: 128]
    #[arg(long, value_name = "N", value_parser = whole(1, 4096), allow_negative_numbers = true)]
    pub width: Option<usize>,
    /// Hidden layers of the denoiser [default: 2 for two-clusters, else 3]
    #[arg(long, value_name = "N", value_parser = whole(1, 16), allow_negative_numbers = true)]
    pub depth: Option<usize>,
    /// Activation of the denoiser: relu or silu [default: relu for two-clusters, else silu]
    #[arg(long, value_enum)]
    pub activation: Option<ActivationArg>,
    /// How the denoiser sees t: scaled (t/T, the notebook's) or sinusoidal
    /// [default: scaled for two-clusters, else sinusoidal]
    #[arg(long, value_enum)]
    pub time_input: Option<TimeInputArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActivationArg {
    Relu,
    Silu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeInputArg {
    Scaled,
    Sinusoidal,
}

/// A parser of whole numbers from `lo` to `hi` whose error names what is allowed.
fn whole(lo: usize, hi: usize) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync {
    move |s: &str| match s.trim().parse::<usize>() {
        Ok(v) if (lo..=hi).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not allowed: use a whole number from {lo} to {hi}"
        )),
    }
}

fn parse_seed(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| {
        format!(
            "'{s}' is not allowed: use a whole number from 0 to {}",
            u64::MAX
        )
    })
}

fn parse_lr(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 10.0 => Ok(v),
        _ => Err(format!("'{s}' is not allowed: use a number in (0, 10]")),
    }
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1e6).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not allowed: use a number from 0 to 1e6")),
    }
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
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
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
    #[arg(long, default_value_t = DEFAULT_SEED, value_parser = parse_seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Denoiser training steps [default: 2000 for two-clusters, else 20000]
    #[arg(long, value_parser = whole(1, 10_000_000), allow_negative_numbers = true)]
    pub steps: Option<usize>,
    /// Classifier epochs [default: 1000 for two-clusters, else about 8000 steps' worth]
    #[arg(long, value_parser = whole(1, 1_000_000), allow_negative_numbers = true)]
    pub epochs: Option<usize>,
    /// Conditional denoiser steps [default: twice --steps for two-clusters, else --steps]
    #[arg(long, value_name = "STEPS", value_parser = whole(1, 10_000_000), allow_negative_numbers = true)]
    pub cond_steps: Option<usize>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub net: NetArgs,
    /// β schedule of training, sampling and the forward animation: linear (the
    /// notebook's), cosine or quadratic [default: linear]
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
}

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Timed repeats of each stage, after one warm-up (at least 5)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(5..=1000).map(|v| v as usize))]
    pub repeats: usize,
    /// Where to write the table as JSON [default: target/bench.json]
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also run bench/peers/torch_ref.py and jax_ref.py and print the ratios
    #[arg(long)]
    pub peers: bool,
    /// Runs of each peer script with --peers (their stage times are medians)
    #[arg(long, default_value_t = 3, value_parser = whole(1, 20), allow_negative_numbers = true)]
    pub peer_runs: usize,
    /// Also time guided sampling of 500 to 100,000 samples (seconds, memory, threads)
    #[arg(long)]
    pub scaling: bool,
    /// Rounds of the scaling table: each round runs every size once, one after another,
    /// and the table shows the medians (on a shared machine, sizes measured side by
    /// side in one round compare better than sizes minutes apart)
    #[arg(long, default_value_t = 3, value_parser = whole(1, 20), allow_negative_numbers = true)]
    pub scaling_rounds: usize,
    /// Only time the whole commands: `xtask sample` at 10,000, 100,000 and 1,000,000
    /// samples and `train` + `sample` on CSVs of 1,000, 10,000, 100,000 and 1,000,000 rows (wall
    /// time and peak memory, one child process each; about 20 min on two cores).
    /// `--scaling` runs them too, after its own tables
    #[arg(long)]
    pub commands: bool,
    /// Internal: with --commands, skip the sizes above N (a quick trial)
    #[arg(long, value_name = "N", hide = true, default_value_t = 1_000_000, value_parser = whole(1, 1_000_000))]
    pub commands_max: usize,
    /// Only these stage groups (comma-separated): denoiser, classifier, unguided, guided, figures, kernels,
    /// likelihood (the ODE log-likelihood of 10,000 points, K = 50)
    #[arg(long, value_name = "GROUPS", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Internal: one scaling run of N samples in this process, printed as JSON
    #[arg(long, value_name = "N", hide = true)]
    pub scaling_one: Option<usize>,
    /// Internal: the diffusion steps T of that run
    #[arg(long, value_name = "T", hide = true, default_value_t = 500, value_parser = whole(1, 100_000))]
    pub scaling_steps: usize,
    /// Internal: its snapshot spacing
    #[arg(long, value_name = "K", hide = true, default_value_t = 10, value_parser = whole(1, 100_000))]
    pub scaling_snapshot_every: usize,
    /// Internal: that run unguided with Heun over this many steps instead of guided DDPM
    #[arg(long, value_name = "K", hide = true, value_parser = whole(1, 100_000))]
    pub scaling_heun_steps: Option<usize>,
}

/// How many mixture components to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KChoice {
    Fixed(usize),
    Auto,
}

/// The largest k `--k` accepts, and the largest `auto` tries.
pub const MAX_K: usize = toydiff::gmm::MAX_K;

fn parse_k(s: &str) -> Result<KChoice, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(KChoice::Auto);
    }
    match s.parse::<usize>() {
        Ok(k) if (1..=MAX_K).contains(&k) => Ok(KChoice::Fixed(k)),
        _ => Err(format!(
            "'{s}' is not allowed: use a whole number from 1 to {MAX_K}, or auto"
        )),
    }
}

pub fn parse() -> Result<Cli, clap::Error> {
    // `cargo xtask gmm` runs `xtask gmm`: the binary name is not repeated.
    Cli::try_parse()
}
