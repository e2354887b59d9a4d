//! The `sample` stage: reverse sampling, unguided and guided to each class, from a
//! checkpoint folder `train` wrote (the notebook's section 8): the GIF, the samples as
//! CSV in the data's own units, and their metrics. The sampler is the notebook's DDPM
//! over all T steps by default, or DDIM, the probability-flow ODE (Euler, Heun) or
//! DPM-Solver++(2M) over K of them ([`SamplerChoice`]). Any n: the figures draw at most
//! [`FIGURE_POINTS`] points a series (the snapshots keep only those rows), the energy
//! distances use at most [`EVAL_SAMPLES`] samples ([`evaluate`]), the CSVs every sample.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use models::{ClassifierNet, ConditionalDenoiserNet, DenoiserNet, NoisyClassifier};
use rand::{rngs::StdRng, SeedableRng};
use sampler::knn::Grid2;
use sampler::metrics::{
    energy_distance, energy_noise_floor, guided_precision, map_on_cores, mode_stats,
    subsample_rows, widen, EnergyReference, NoiseFloor,
};
use sampler::{
    sample_observed, sample_solver_observed, timesteps, ClassifierFreeGuidance, ClassifierGuidance,
    GuidanceGradient, ReverseVariance, SampleRun, SamplerConfig, Solver,
};
use toy_data::GaussianMixture;
use viz::{Color, Panel, PointSeries, Scatter};

use crate::data::{file_safe, Prepared, DATA_FILE, META_FILE};
use crate::error::{Context, PipelineError, Result};
use crate::forward::pairs;
use crate::metrics::{
    GuidedMetrics, Metrics, ModeMetrics, SamplingMetrics, SamplingSettingsRecord, UnguidedMetrics,
};
use crate::observer::{say, Observer};
use crate::output::{OutDir, Timings};
use crate::recipe::{Recipe, RecipeError, RecipeFile, RECIPE_FORMAT};
use crate::train::{CONDITIONAL_FILE, RECIPE_FILE, RUN_ID_KEY};

/// Pairs of samples behind each energy-distance noise floor, up to 1,000 points a side.
pub const FLOOR_REPEATS: usize = 40;
/// The fewest pairs behind a noise floor at any size.
pub const MIN_FLOOR_REPEATS: usize = 10;
/// Point pairs one noise floor may cost: an energy distance between two samples of m
/// points sums 3m² distances, so 40 repeats at m = 1,000.
pub const FLOOR_PAIR_BUDGET: usize = FLOOR_REPEATS * 3 * 1000 * 1000;
/// Samples (and reference points) behind each energy distance: larger runs are
/// evaluated on a seeded subsample of this size, the noise floor at the same size.
pub const EVAL_SAMPLES: usize = 5_000;
/// Points of each series a figure of points draws (the sampling GIF and PNG, the forward
/// GIF): larger runs (and larger data sets) are drawn as a seeded subset of this many
/// rows; the CSVs keep every sample. Every built-in set at its default size (at most
/// 4,000 rows) and the default 500 samples are drawn whole.
pub const FIGURE_POINTS: usize = 4_000;
/// Neighbours voting on a sample's class when no exact posterior exists.
pub const KNN: usize = 5;

/// The repeats of a noise floor at sample size m: [`FLOOR_REPEATS`] within
/// [`FLOOR_PAIR_BUDGET`], never fewer than [`MIN_FLOOR_REPEATS`] (40 up to m = 1,000,
/// 10 from m = 2,000). The floor's own error is its `std_error`.
pub fn floor_repeats(m: usize) -> usize {
    (FLOOR_PAIR_BUDGET / (3 * m * m).max(1)).clamp(MIN_FLOOR_REPEATS, FLOOR_REPEATS)
}

/// The rows a figure draws of `n`: `None` (all of them) up to [`FIGURE_POINTS`], else
/// [`FIGURE_POINTS`] rows drawn without replacement with `seed`, in increasing order.
pub fn figure_rows(n: usize, seed: u64) -> Option<Vec<usize>> {
    (n > FIGURE_POINTS).then(|| {
        let mut rows =
            rand::seq::index::sample(&mut StdRng::seed_from_u64(seed), n, FIGURE_POINTS).into_vec();
        rows.sort_unstable();
        rows
    })
}

/// 1234567 as "1,234,567".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How to sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSettings {
    /// Samples per run.
    pub n: usize,
    /// Guidance scale; `None`: the notebook's 30 for its own data, else 5.
    pub scale: Option<f64>,
    /// Guide only towards these classes, by name; empty: every class.
    pub classes: Vec<String>,
    /// Keep a snapshot (a GIF frame) every this many steps.
    pub snapshot_every: usize,
    /// σ_t² of each reverse step.
    pub variance: ReverseVariance,
    /// Seed of x_T and the noise of every step.
    pub seed: u64,
    /// The sampler and its steps.
    pub sampler: SamplerChoice,
    /// How the guided runs are guided: by the classifier (the notebook's) or classifier-free.
    pub guidance: GuidanceKind,
    /// The classifier-free guidance weight w; `None`: [`DEFAULT_CFG_WEIGHT`]. Free guidance only.
    pub cfg_weight: Option<f64>,
}

/// How guided samples are steered towards their class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuidanceKind {
    /// Classifier guidance (Dhariwal & Nichol 2021): the DDPM mean gets s σ_t² ∇ log p(y | x_t, t).
    #[default]
    Classifier,
    /// Classifier-free guidance (Ho & Salimans 2022): ε̂ = (1 + w) ε(x_t, t, y) − w ε(x_t, t, ∅).
    Free,
}

impl GuidanceKind {
    /// Its name on the command line and in the metrics: classifier, free.
    pub fn name(self) -> &'static str {
        match self {
            GuidanceKind::Classifier => "classifier",
            GuidanceKind::Free => "free",
        }
    }
}

/// The default classifier-free guidance weight: w = 1, the lowest weight of the issue's
/// bar (≥ 99% precision): on the notebook's data the learned nets keep 0.87–0.88 of each
/// class's spread there (see the README's guidance section).
pub const DEFAULT_CFG_WEIGHT: f64 = 1.0;

impl Default for SampleSettings {
    /// The notebook's: 500 samples, every class, a frame every 10 steps, σ_t² = β_t, DDPM.
    fn default() -> Self {
        Self {
            n: 500,
            scale: None,
            classes: Vec::new(),
            snapshot_every: 10,
            variance: ReverseVariance::Beta,
            seed: 1234,
            sampler: SamplerChoice::default(),
            guidance: GuidanceKind::Classifier,
            cfg_weight: None,
        }
    }
}

/// A sampler by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SamplerKind {
    /// DDPM ancestral sampling over every step (the notebook's; σ_t² from `variance`).
    #[default]
    Ddpm,
    /// DDIM with η ∈ [0, 1] (default 0, deterministic).
    Ddim,
    /// The probability-flow ODE, Euler's method.
    Euler,
    /// The probability-flow ODE, Heun's method (two model evaluations a step, one on the last).
    Heun,
    /// DPM-Solver++(2M).
    DpmSolver,
}

impl SamplerKind {
    /// Every sampler, in the order of the tables.
    pub const ALL: [SamplerKind; 5] = [
        SamplerKind::Ddpm,
        SamplerKind::Ddim,
        SamplerKind::Euler,
        SamplerKind::Heun,
        SamplerKind::DpmSolver,
    ];

    /// Its name on the command line and in the metrics: ddpm, ddim, euler, heun, dpm-solver.
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Ddpm => "ddpm",
            SamplerKind::Ddim => "ddim",
            SamplerKind::Euler => "euler",
            SamplerKind::Heun => "heun",
            SamplerKind::DpmSolver => "dpm-solver",
        }
    }
}

/// Which sampler, over how many steps, with which η: as asked, before it is checked
/// against the checkpoint's T ([`SamplerChoice::plan`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SamplerChoice {
    /// The sampler.
    pub kind: SamplerKind,
    /// Solver steps K; `None`: T for ddpm, min(50, T) for the others.
    pub steps: Option<usize>,
    /// DDIM's η; `None`: 0. Only ddim has one.
    pub eta: Option<f64>,
}

/// The default K of every sampler but ddpm.
pub const DEFAULT_SOLVER_STEPS: usize = 50;

/// A sampler choice checked against T: what runs.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerPlan {
    /// The sampler.
    pub kind: SamplerKind,
    /// `None` for ddpm, else the solver that runs.
    pub solver: Option<Solver>,
    /// The time steps τ_K = T > … > τ_1 it visits (every step for ddpm).
    pub timesteps: Vec<usize>,
    /// DDIM's η (`None` for the others).
    pub eta: Option<f64>,
}

impl SamplerPlan {
    /// K, the steps of one run.
    pub fn steps(&self) -> usize {
        self.timesteps.len()
    }

    /// Denoiser evaluations of one run: K, or 2K − 1 for Heun.
    pub fn model_evaluations(&self) -> usize {
        self.solver
            .map_or(self.steps(), |s| s.model_evaluations(self.steps()))
    }
}

impl SamplerChoice {
    /// The sampler `kind` with its defaults.
    pub fn new(kind: SamplerKind) -> Self {
        Self {
            kind,
            steps: None,
            eta: None,
        }
    }

    /// Checks the choice against the checkpoint's `num_steps` (T): K in 1..=T (ddpm:
    /// K = T, it runs every step), η in [0, 1] and only for ddim.
    pub fn plan(&self, num_steps: usize) -> Result<SamplerPlan> {
        let name = self.kind.name();
        let bad = |m: String| Err(PipelineError::BadSampler(m));
        if let Some(eta) = self.eta {
            if self.kind != SamplerKind::Ddim {
                return bad(format!(
                    "--eta {eta} is not allowed with --sampler {name}: only ddim has η (a number from 0 to 1)"
                ));
            }
            if !(0.0..=1.0).contains(&eta) {
                return bad(format!(
                    "--eta {eta} is not allowed: use a number from 0 to 1"
                ));
            }
        }
        let default = if self.kind == SamplerKind::Ddpm {
            num_steps
        } else {
            DEFAULT_SOLVER_STEPS.min(num_steps)
        };
        let k = self.steps.unwrap_or(default);
        if k == 0 || k > num_steps {
            return bad(format!(
                "--steps {k} is not allowed: use a whole number from 1 to T = {num_steps} (the checkpoint's steps)"
            ));
        }
        if self.kind == SamplerKind::Ddpm && k != num_steps {
            return bad(format!(
                "--steps {k} is not allowed with --sampler ddpm, which runs every one of the T = {num_steps} steps: leave --steps out, or use --sampler ddim --eta 1 for DDPM over fewer steps"
            ));
        }
        let eta = (self.kind == SamplerKind::Ddim).then(|| self.eta.unwrap_or(0.0));
        let solver = match self.kind {
            SamplerKind::Ddpm => None,
            SamplerKind::Ddim => Some(Solver::Ddim {
                eta: eta.unwrap_or(0.0),
            }),
            SamplerKind::Euler => Some(Solver::Euler),
            SamplerKind::Heun => Some(Solver::Heun),
            SamplerKind::DpmSolver => Some(Solver::DpmSolver2M),
        };
        Ok(SamplerPlan {
            kind: self.kind,
            solver,
            timesteps: timesteps(num_steps, k)?,
            eta,
        })
    }
}

/// The runs of the notebook: unguided, and guided to each class (class index, run).
pub struct Runs {
    /// The unguided run.
    pub unguided: SampleRun,
    /// One guided run per target class.
    pub guided: Vec<(usize, SampleRun)>,
    /// The classifier-free guidance weight w of the guided runs (`None`: classifier guidance).
    pub free_weight: Option<f64>,
}

/// A checkpoint folder, read and checked: the recipe, the data, both networks, all
/// from one run.
pub struct Checkpoint {
    /// The folder.
    pub dir: PathBuf,
    /// The recipe it was trained with.
    pub recipe: Recipe,
    /// Its run id.
    pub run_id: String,
    /// The training data.
    pub data: Prepared,
    /// ε_θ.
    pub denoiser: DenoiserNet,
    /// p_φ(y | x_t, t), when the data has labels.
    pub classifier: Option<ClassifierNet>,
    /// ε_θ(x_t, t, y), when the data has labels and the folder has one (folders trained
    /// before classifier-free guidance do not).
    pub conditional: Option<ConditionalDenoiserNet>,
}

fn read_checkpoint(dir: &Path, name: &str) -> Result<Vec<u8>> {
    let path = dir.join(name);
    if !path.is_file() {
        return Err(PipelineError::MissingCheckpointFile {
            path,
            checkpoint: true,
        });
    }
    std::fs::read(&path).map_err(|source| PipelineError::Io {
        what: "reading",
        path,
        source,
    })
}

/// Reads `recipe.json` of a checkpoint folder. A folder with `data.json` but no
/// `recipe.json` was written before checkpoints carried run ids: it is refused (retrain).
pub fn load_recipe(dir: &Path) -> Result<RecipeFile> {
    let path = dir.join(RECIPE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(_) if dir.join(META_FILE).is_file() => {
            return Err(PipelineError::NoRecipe {
                dir: dir.to_path_buf(),
                file: RECIPE_FILE.into(),
            })
        }
        Err(_) => {
            return Err(PipelineError::MissingCheckpointFile {
                path,
                checkpoint: false,
            })
        }
    };
    let file: RecipeFile = serde_json::from_slice(&bytes).map_err(|e| {
        PipelineError::BadCheckpointFile(format!(
            "'{}' is not a toydiff recipe: {e}",
            path.display()
        ))
    })?;
    if file.format != RECIPE_FORMAT {
        return Err(RecipeError::Format(file.format)).with_context(|| path.display().to_string());
    }
    Ok(file)
}

impl Checkpoint {
    /// Reads and checks every file of `dir`: the recipe, the data, the networks (their
    /// T against the recipe's, the classifier's classes against the data's), and last
    /// that every file carries the recipe's run id.
    pub fn load(dir: &Path) -> Result<Self> {
        let file = load_recipe(dir)?;
        let data = Prepared::load(dir)?;
        let t = Some(file.recipe.num_steps);
        let denoiser_bytes = read_checkpoint(dir, "denoiser.safetensors")?;
        let denoiser = DenoiserNet::from_safetensors(&denoiser_bytes, t)
            .with_context(|| format!("loading {}", dir.join("denoiser.safetensors").display()))?;
        let mut nets = vec![("denoiser.safetensors", denoiser_bytes)];
        let classifier = if data.meta.is_labelled() {
            let bytes = read_checkpoint(dir, "classifier.safetensors")?;
            let net = ClassifierNet::from_safetensors(&bytes, t).with_context(|| {
                format!("loading {}", dir.join("classifier.safetensors").display())
            })?;
            if net.num_classes() != data.meta.class_names.len() {
                return Err(PipelineError::BadCheckpointFile(format!(
                    "the classifier in {} has {} classes but the data has {} ({}): retrain with `cargo xtask train`",
                    dir.display(),
                    net.num_classes(),
                    data.meta.class_names.len(),
                    data.meta.class_names.join(", ")
                )));
            }
            nets.push(("classifier.safetensors", bytes));
            Some(net)
        } else {
            None
        };
        let conditional = if data.meta.is_labelled() && dir.join(CONDITIONAL_FILE).is_file() {
            let bytes = read_checkpoint(dir, CONDITIONAL_FILE)?;
            let net = ConditionalDenoiserNet::from_safetensors(&bytes, t)
                .with_context(|| format!("loading {}", dir.join(CONDITIONAL_FILE).display()))?;
            if net.config().num_classes != data.meta.class_names.len() {
                return Err(PipelineError::BadCheckpointFile(format!(
                    "the conditional denoiser in {} has {} classes but the data has {}: retrain with `cargo xtask train`",
                    dir.display(),
                    net.config().num_classes,
                    data.meta.class_names.len()
                )));
            }
            nets.push((CONDITIONAL_FILE, bytes));
            Some(net)
        } else {
            None
        };
        if denoiser.config().dim != 2 {
            return Err(PipelineError::BadCheckpointFile(format!(
                "the denoiser in {} is for {}-D data, expected 2-D",
                dir.display(),
                denoiser.config().dim
            )));
        }
        // Every file must come from the run recipe.json describes.
        let mut ids: Vec<(&str, Option<String>)> = vec![
            (META_FILE, data.meta.run_id.clone()),
            (DATA_FILE, data.csv_run_id.clone()),
        ];
        for (name, bytes) in &nets {
            let meta = models::checkpoint_metadata(bytes)
                .with_context(|| format!("loading {}", dir.join(name).display()))?;
            ids.push((name, meta.get(RUN_ID_KEY).cloned()));
        }
        for (name, id) in ids {
            match id {
                None => {
                    return Err(PipelineError::NoRecipe {
                        dir: dir.to_path_buf(),
                        file: format!("run id in {name}"),
                    })
                }
                Some(id) if id != file.run_id => {
                    return Err(PipelineError::MixedRuns {
                        dir: dir.to_path_buf(),
                        first: RECIPE_FILE.into(),
                        first_id: file.run_id.clone(),
                        second: name.into(),
                        second_id: id,
                    })
                }
                Some(_) => {}
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            recipe: file.recipe,
            run_id: file.run_id,
            data,
            denoiser,
            classifier,
            conditional,
        })
    }
}

/// The classes to guide towards: `settings.classes` by name, else all of them.
fn target_classes(settings: &SampleSettings, data: &Prepared) -> Result<Vec<u32>> {
    let names = &data.meta.class_names;
    if settings.classes.is_empty() {
        return Ok((0..names.len() as u32).collect());
    }
    if names.is_empty() {
        return Err(PipelineError::BadClasses(format!(
            "--classes {} given, but the data has no labels: nothing to guide towards",
            settings.classes.join(",")
        )));
    }
    settings
        .classes
        .iter()
        .map(|c| {
            names
                .iter()
                .position(|n| n == c)
                .map(|i| i as u32)
                .ok_or_else(|| {
                    PipelineError::BadClasses(format!(
                        "class '{c}' is not one the classifier has: allowed {}",
                        names.join(", ")
                    ))
                })
        })
        .collect()
}

/// Checks the settings against the checkpoint (the classes exist, the sampler can run
/// with its T) before any work.
pub fn check_settings(settings: &SampleSettings, checkpoint: &Checkpoint) -> Result<()> {
    settings.sampler.plan(checkpoint.recipe.num_steps)?;
    check_guidance(settings, checkpoint)?;
    target_classes(settings, &checkpoint.data).map(|_| ())
}

/// Checks the guidance settings against the checkpoint: `--scale` with classifier
/// guidance only, `--cfg-weight` (finite, ≥ 0) with free guidance only, and for free
/// guidance a folder with a conditional denoiser.
pub fn check_guidance(settings: &SampleSettings, checkpoint: &Checkpoint) -> Result<()> {
    let bad = |m: String| Err(PipelineError::BadGuidance(m));
    match settings.guidance {
        GuidanceKind::Classifier => {
            if let Some(w) = settings.cfg_weight {
                return bad(format!(
                    "--cfg-weight {w} is not allowed with --guidance classifier: it is the weight of --guidance free (use --scale for the classifier)"
                ));
            }
        }
        GuidanceKind::Free => {
            if let Some(s) = settings.scale {
                return bad(format!(
                    "--scale {s} is not allowed with --guidance free: it is the classifier's scale (use --cfg-weight W, a number from 0 to 1e6)"
                ));
            }
            if let Some(w) = settings
                .cfg_weight
                .filter(|w| !(w.is_finite() && *w >= 0.0))
            {
                return bad(format!(
                    "--cfg-weight {w} is not allowed: use a number from 0 to 1e6"
                ));
            }
            if !checkpoint.data.meta.is_labelled() {
                return bad(format!(
                    "--guidance free needs labelled data, but the data of {} has no labels: nothing to guide towards",
                    checkpoint.dir.display()
                ));
            }
            if checkpoint.conditional.is_none() {
                return bad(format!(
                    "the checkpoint folder {} has no conditional denoiser ({CONDITIONAL_FILE}: it was trained before classifier-free guidance): retrain with `cargo xtask train`, or use --guidance classifier",
                    checkpoint.dir.display()
                ));
            }
        }
    }
    Ok(())
}

/// One run of `plan` with `observe(i)` after its i-th step: DDPM's own loop, or a solver.
pub fn run_plan(
    plan: &SamplerPlan,
    denoiser: &dyn models::NoisePredictor,
    schedule: &schedule::NoiseSchedule,
    guidance: Option<&dyn GuidanceGradient>,
    config: &SamplerConfig,
    observe: &mut dyn FnMut(usize),
) -> Result<SampleRun> {
    let steps = schedule.num_steps();
    Ok(match plan.solver {
        None => sample_observed(denoiser, schedule, guidance, config, &mut |t| {
            observe(steps + 1 - t)
        })?,
        Some(solver) => sample_solver_observed(
            denoiser,
            schedule,
            guidance,
            solver,
            &plan.timesteps,
            config,
            observe,
        )?,
    })
}

/// Runs the samplers on a loaded checkpoint with the recipe's schedule (nothing is
/// written). Samples stay in the networks' standardised units.
pub fn generate(
    settings: &SampleSettings,
    checkpoint: &Checkpoint,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<Runs> {
    let data = &checkpoint.data;
    let schedule = checkpoint.recipe.noise_schedule()?;
    let config = |offset: u64| SamplerConfig {
        num_samples: settings.n,
        snapshot_every: settings.snapshot_every,
        variance: settings.variance,
        seed: settings.seed.wrapping_add(offset),
        // The GIF draws these rows only: snapshots of every row would cost n × frames.
        snapshot_rows: figure_rows(settings.n, settings.seed.wrapping_add(30)),
    };
    let scale = guidance_scale(settings, data);
    let targets = target_classes(settings, data)?;
    let plan = settings.sampler.plan(schedule.num_steps())?;
    let observed = |what: &str, guidance: Option<&dyn GuidanceGradient>, seed_offset: u64| {
        let bar = obs.bar(what, plan.steps() as u64);
        let run = run_plan(
            &plan,
            &checkpoint.denoiser,
            &schedule,
            guidance,
            &config(seed_offset),
            &mut |i| bar.set(i as u64),
        );
        bar.finish();
        run
    };
    let start = Instant::now();
    let unguided = observed("sampling unguided", None, 10)?;
    timings.record("sample_unguided", start.elapsed().as_secs_f64());
    let mut guided = Vec::new();
    let free = settings.guidance == GuidanceKind::Free;
    let weight = settings.cfg_weight.unwrap_or(DEFAULT_CFG_WEIGHT);
    for &class in &targets {
        let start = Instant::now();
        let what = format!(
            "sampling guided to {}",
            data.meta.class_names[class as usize]
        );
        let bar = obs.bar(&what, plan.steps() as u64);
        let config = config(11 + class as u64);
        let observe = &mut |i: usize| bar.set(i as u64);
        let run = match (&checkpoint.conditional, &checkpoint.classifier) {
            // Classifier-free: the mixed noise prediction is the denoiser, unguided.
            (Some(conditional), _) if free => {
                let g = ClassifierFreeGuidance::one_class(conditional, class, weight, settings.n)?;
                run_plan(&plan, &g, &schedule, None, &config, observe)?
            }
            (_, Some(classifier)) if !free => {
                let g = ClassifierGuidance::one_class(classifier, class, scale, settings.n)?;
                run_plan(
                    &plan,
                    &checkpoint.denoiser,
                    &schedule,
                    Some(&g),
                    &config,
                    observe,
                )?
            }
            _ => break,
        };
        bar.finish();
        guided.push((class as usize, run));
        timings.record(
            &format!("sample_guided_{class}"),
            start.elapsed().as_secs_f64(),
        );
    }
    say!(
        obs,
        "sampled {} points with {}, {} steps ({} model evaluations a run): unguided{}",
        settings.n,
        plan.kind.name(),
        plan.steps(),
        plan.model_evaluations(),
        if guided.is_empty() {
            " (no classifier: the data has no labels)".to_string()
        } else {
            format!(
                " and guided to each of {} classes ({})",
                guided.len(),
                guidance_note(settings, data)
            )
        }
    );
    Ok(Runs {
        unguided,
        guided,
        free_weight: free.then_some(weight),
    })
}

/// How the guided runs were guided, for reports and titles: "scale 30" or
/// "classifier-free, w = 1".
pub fn guidance_note(settings: &SampleSettings, data: &Prepared) -> String {
    match settings.guidance {
        GuidanceKind::Classifier => format!("scale {}", guidance_scale(settings, data)),
        GuidanceKind::Free => format!(
            "classifier-free, w = {}",
            settings.cfg_weight.unwrap_or(DEFAULT_CFG_WEIGHT)
        ),
    }
}

/// The guidance scale: the setting, else the notebook's 30 for its own data and 5 for
/// standardised data (30 pushes samples past the edge of the data there).
pub fn guidance_scale(settings: &SampleSettings, data: &Prepared) -> f64 {
    settings
        .scale
        .unwrap_or(if data.meta.is_notebook() { 30.0 } else { 5.0 })
}

/// The `sample` stage: loads the checkpoint folder `dir`, samples, evaluates, writes the
/// GIF, `samples_final.png`, the CSVs and the `sampling` block of `metrics.json` in `out`.
pub fn sample(
    settings: &SampleSettings,
    dir: &Path,
    out: &OutDir,
    obs: &dyn Observer,
    timings: &mut Timings,
) -> Result<SamplingMetrics> {
    let checkpoint = Checkpoint::load(dir)?;
    check_settings(settings, &checkpoint)?;
    let runs = generate(settings, &checkpoint, obs, timings)?;
    let start = Instant::now();
    let plan = settings.sampler.plan(checkpoint.recipe.num_steps)?;
    let metrics = evaluate(settings, &plan, &checkpoint.data, &runs)?;
    timings.record("evaluate", start.elapsed().as_secs_f64());
    let start = Instant::now();
    write_outputs(out, &checkpoint.data, &runs, &plan, obs)?;
    write_sampling_metrics(out, &metrics)?;
    say!(obs, "wrote {}", out.path("metrics.json").display());
    timings.record("sample_outputs", start.elapsed().as_secs_f64());
    Ok(metrics)
}

/// Adds the `sampling` block to `metrics.json` in `out`, keeping what `train` wrote
/// there (a file that is not a toydiff metrics object is replaced).
pub fn write_sampling_metrics(out: &OutDir, sampling: &SamplingMetrics) -> Result<PathBuf> {
    let path = out.path("metrics.json");
    let mut metrics: Metrics = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    metrics.sampling = Some(sampling.clone());
    out.write_json("metrics.json", &metrics)
        .with_context(|| format!("writing {}", path.display()))
}

/// Standardised f32 points back in the data's units.
pub(crate) fn original_units(data: &Prepared, points: &[f32]) -> Vec<f64> {
    let mut v = widen(points);
    data.meta.standardizer.inverse_slice(&mut v);
    v
}

/// The colour of class c: the notebook's red and green for two classes, else a palette.
pub(crate) fn class_color(c: usize, n_classes: usize) -> Color {
    if n_classes == 2 {
        [Color::RED, Color::GREEN][c]
    } else {
        viz::palette(c)
    }
}

/// Every frame of `guided_vs_unguided_generation.gif`: unguided (left) and guided (right),
/// the titles naming the sampler of `plan` (the one `runs` came from) unless it is ddpm.
///
/// Every series draws at most [`FIGURE_POINTS`] points: the data's rows a seeded subset
/// of them ([`figure_rows`] with seed [`FIGURE_DATA_SEED`]), the samples the rows their
/// runs' snapshots kept; a series drawn in part says so in the legend ("4,000 of
/// 1,000,000").
pub fn frames(data: &Prepared, runs: &Runs, plan: &SamplerPlan) -> Vec<Vec<Panel>> {
    let rows = data.points.nrows();
    let all: Vec<(f64, f64)> = data
        .points
        .rows()
        .into_iter()
        .map(|r| (r[0], r[1]))
        .collect();
    let original = match figure_rows(rows, FIGURE_DATA_SEED) {
        None => all,
        Some(keep) => keep.iter().map(|&r| all[r]).collect(),
    };
    let note = sampler_note(plan);
    (0..runs.unguided.snapshots.len())
        .map(|k| frame(data, &original, runs, &note, k))
        .collect()
}

/// The seed of the data rows the sampling figures draw when there are more than
/// [`FIGURE_POINTS`].
pub const FIGURE_DATA_SEED: u64 = 1234;

/// A series' legend: `label`, and "(shown of total)" when only part of it is drawn.
fn part_label(label: &str, shown: usize, total: usize) -> String {
    if shown < total {
        format!("{label} ({} of {})", thousands(shown), thousands(total))
    } else {
        label.to_string()
    }
}

/// `guided_vs_unguided_generation.gif` from its frames.
pub fn sampling_gif(frames: &[Vec<Panel>]) -> Result<Vec<u8>> {
    Ok(viz::render_gif(frames, 2, 1050, 600, 4)?)
}

/// `samples_final.png`: the last frame.
pub fn final_png(frames: &[Vec<Panel>]) -> Result<Vec<u8>> {
    let last = frames.last().expect("at least x_T and x_0");
    Ok(viz::render_png(last, 2, 1050, 600)?)
}

/// Writes the GIF, `samples_final.png` (titles naming `plan`'s sampler, see [`frames`]) and
/// the samples as CSV in the data's units.
pub fn write_outputs(
    out: &OutDir,
    data: &Prepared,
    runs: &Runs,
    plan: &SamplerPlan,
    obs: &dyn Observer,
) -> Result<()> {
    let frames = frames(data, runs, plan);
    let path = out.write("guided_vs_unguided_generation.gif", &sampling_gif(&frames)?)?;
    say!(obs, "wrote {} ({} frames)", path.display(), frames.len());
    let path = out.write("samples_final.png", &final_png(&frames)?)?;
    say!(obs, "wrote {}", path.display());
    let header = &data.meta.column_names;
    let final_points = |run: &SampleRun| original_units(data, run.final_points());
    out.write(
        "samples/unguided.csv",
        &csv(header, &final_points(&runs.unguided)),
    )?;
    for (class, run) in &runs.guided {
        let name = file_safe(&data.meta.class_names[*class]);
        out.write(
            &format!("samples/guided_{name}.csv"),
            &csv(header, &final_points(run)),
        )?;
    }
    say!(obs, "wrote {}", out.path("samples").display());
    Ok(())
}

/// Row-major 2-D points as CSV under the data's column names.
pub fn csv(header: &[String], points: &[f64]) -> Vec<u8> {
    let mut text = format!("{},{}\n", header[0], header[1]);
    for p in points.chunks_exact(2) {
        text.push_str(&format!("{},{}\n", p[0] as f32, p[1] as f32));
    }
    text.into_bytes()
}

/// What the sampling figures' titles say about the sampler before ", t = …": nothing
/// for ddpm (the notebook's titles), else e.g. ", Heun 50 steps" or ", DDIM η = 0.5, 20 steps".
fn sampler_note(plan: &SamplerPlan) -> String {
    let name = match plan.kind {
        SamplerKind::Ddpm => return String::new(),
        SamplerKind::Ddim => format!("DDIM η = {},", plan.eta.unwrap_or(0.0)),
        SamplerKind::Euler => "Euler".into(),
        SamplerKind::Heun => "Heun".into(),
        SamplerKind::DpmSolver => "DPM-Solver++(2M)".into(),
    };
    format!(", {name} {} steps", plan.steps())
}

/// One frame of the notebook's animation: unguided (left) and guided (right); `note`
/// from [`sampler_note`].
fn frame(
    data: &Prepared,
    original: &[(f64, f64)],
    runs: &Runs,
    note: &str,
    k: usize,
) -> Vec<Panel> {
    let t = runs.unguided.snapshots[k].t;
    let (x_range, y_range) = data.axes();
    let names = &data.meta.column_names;
    let data_label = part_label("Original data", original.len(), data.points.nrows());
    let base = || {
        PointSeries::new(data_label.clone(), original.to_vec(), Color::BLUE)
            .alpha(0.25)
            .radius(2)
    };
    let pts = |run: &SampleRun| pairs(&original_units(data, &run.snapshots[k].points));
    // Rows drawn and rows sampled (the snapshots may keep a subset).
    let counts = |run: &SampleRun| {
        (
            run.snapshots[k].points.len() / 2,
            run.final_points().len() / 2,
        )
    };
    let label = |name: &str, run: &SampleRun| {
        let (shown, total) = counts(run);
        part_label(name, shown, total)
    };
    let left = Scatter {
        title: format!("Unguided{note}, t = {t}"),
        x_label: names[0].clone(),
        y_label: names[1].clone(),
        x_range,
        y_range,
        series: vec![
            base(),
            PointSeries::new(
                label("Unguided", &runs.unguided),
                pts(&runs.unguided),
                Color::GRAY,
            )
            .alpha(0.5)
            .radius(3),
        ],
    };
    let mut right = Scatter {
        title: match runs.free_weight {
            None => format!("Classifier-guided{note}, t = {t}"),
            Some(w) => format!("Classifier-free guided (w = {w}){note}, t = {t}"),
        },
        series: vec![base()],
        ..left.clone()
    };
    if runs.guided.is_empty() {
        right.title = format!("No labels: nothing to guide{note}, t = {t}");
    }
    let c = data.meta.class_names.len();
    for &(class, ref run) in &runs.guided {
        let name = if data.meta.is_notebook() {
            format!("Guided c={class}")
        } else {
            format!("Guided: {}", data.meta.class_names[class])
        };
        right.series.push(
            PointSeries::new(label(&name, run), pts(run), class_color(class, c))
                .alpha(0.6)
                .radius(3),
        );
    }
    vec![Panel::Scatter(left), Panel::Scatter(right)]
}

fn modes(points: &[f64], truth: &GaussianMixture) -> Vec<ModeMetrics> {
    mode_stats(points, truth)
        .iter()
        .map(ModeMetrics::from)
        .collect()
}

/// The `sampling` block of metrics.json. With an exact reference (the data is a known
/// Gaussian mixture) samples are compared with it; otherwise with the held-out data.
///
/// Cost bounded whatever n and the data's size: each energy distance is computed on a
/// seeded subsample of at most [`EVAL_SAMPLES`] samples against at most as many reference
/// points, its noise floor at the size evaluated with [`floor_repeats`] pairs; the
/// per-sample statistics (modes, precision, class fractions) use every sample, the
/// k-nearest-neighbour votes through a grid index ([`Grid2`]). Each size is recorded
/// beside its number. Up to [`EVAL_SAMPLES`] samples (the default 500) nothing is
/// subsampled.
pub fn evaluate(
    settings: &SampleSettings,
    plan: &SamplerPlan,
    data: &Prepared,
    runs: &Runs,
) -> Result<SamplingMetrics> {
    evaluate_with_limit(settings, plan, data, runs, EVAL_SAMPLES)
}

/// [`evaluate`] with `limit` in place of [`EVAL_SAMPLES`] (the samples and reference
/// points behind each energy distance).
pub fn evaluate_with_limit(
    settings: &SampleSettings,
    plan: &SamplerPlan,
    data: &Prepared,
    runs: &Runs,
    limit: usize,
) -> Result<SamplingMetrics> {
    let seed = settings.seed.wrapping_add(20);
    let n = settings.n;
    // The samples behind an energy distance, and the seed of run i's subsample.
    let m = n.min(limit);
    let subsample_seed = |run: u64| seed.wrapping_add(40 + run);
    let mut guided = BTreeMap::new();
    let unguided = match data.meta.truth() {
        Some(truth) => {
            let mut rng = StdRng::seed_from_u64(seed);
            let floor = energy_noise_floor(&truth, m, floor_repeats(m), seed.wrapping_add(1));
            let fresh = truth.sample(m, &mut rng);
            let points = original_units(data, runs.unguided.final_points());
            let evaluated = subsample_rows(&points, 2, m, subsample_seed(0));
            let m_ = modes(&points, &truth);
            let entry = UnguidedMetrics {
                class_fractions: None,
                energy_distance: energy_distance(
                    &evaluated,
                    fresh.as_slice().expect("standard layout"),
                    2,
                ),
                energy_distance_reference_size: m,
                energy_distance_sample_size: m,
                energy_noise_floor: floor.into(),
                mode_balance: Some(m_[0].fraction),
                modes: Some(m_),
                reference: "exact mixture".into(),
            };
            for &(class, ref run) in &runs.guided {
                let points = original_units(data, run.final_points());
                // Class c is component c of the mixture.
                let component = GaussianMixture::new(
                    vec![1.0],
                    vec![truth.means()[class].clone()],
                    vec![truth.covariances()[class].clone()],
                )?;
                let class_floor = energy_noise_floor(
                    &component,
                    m,
                    floor_repeats(m),
                    seed.wrapping_add(2 + class as u64),
                );
                let reference = component.sample(m, &mut rng);
                let evaluated = subsample_rows(&points, 2, m, subsample_seed(1 + class as u64));
                guided.insert(
                    format!("guided_{}", file_safe(&data.meta.class_names[class])),
                    GuidedMetrics {
                        energy_distance_reference_size: Some(m),
                        energy_distance_sample_size: Some(m),
                        energy_distance_to_class: Some(energy_distance(
                            &evaluated,
                            reference.as_slice().expect("standard layout"),
                            2,
                        )),
                        energy_noise_floor: Some(class_floor.into()),
                        modes: Some(modes(&points, &truth)),
                        precision: guided_precision(&points, &truth, class),
                        precision_rule: None,
                        precision_sample_size: points.len() / 2,
                        target_class: data.meta.class_names[class].clone(),
                    },
                );
            }
            entry
        }
        None => {
            // Compared in standardised units, so both axes weigh the same.
            let heldout_rows: Vec<f64> = widen(&data.heldout_standardised());
            let heldout = subsample_rows(&heldout_rows, 2, limit, seed.wrapping_add(60));
            let reference = EnergyReference::new(&heldout, 2);
            let train: Vec<f64> = widen(&data.train_standardised());
            let points = widen(runs.unguided.final_points());
            let floor = data_noise_floor(&train, &reference, m, seed);
            let evaluated = subsample_rows(&points, 2, m, subsample_seed(0));
            let train_labels = data.labels_of(false);
            let c = data.meta.class_names.len();
            let grid = train_labels.as_ref().map(|_| Grid2::new(&train));
            let votes_of = |points: &[f64]| -> Vec<usize> {
                let (grid, labels) = (grid.as_ref(), train_labels.as_deref());
                knn_labels(
                    points,
                    grid.expect("labelled"),
                    labels.expect("labelled"),
                    c,
                )
            };
            let class_fractions = train_labels.as_ref().map(|_| {
                let votes = votes_of(&points);
                (0..c)
                    .map(|k| votes.iter().filter(|&&v| v == k).count() as f64 / votes.len() as f64)
                    .collect()
            });
            if train_labels.is_some() {
                for &(class, ref run) in &runs.guided {
                    let points = widen(run.final_points());
                    let votes = votes_of(&points);
                    let precision =
                        votes.iter().filter(|&&v| v == class).count() as f64 / votes.len() as f64;
                    guided.insert(
                        format!("guided_{}", file_safe(&data.meta.class_names[class])),
                        GuidedMetrics {
                            energy_distance_reference_size: None,
                            energy_distance_sample_size: None,
                            energy_distance_to_class: None,
                            energy_noise_floor: None,
                            modes: None,
                            precision,
                            precision_rule: Some(format!(
                                "majority of the {KNN} nearest training points"
                            )),
                            precision_sample_size: votes.len(),
                            target_class: data.meta.class_names[class].clone(),
                        },
                    );
                }
            }
            UnguidedMetrics {
                class_fractions,
                energy_distance: reference.energy_distance(&evaluated),
                energy_distance_reference_size: reference.rows(),
                energy_distance_sample_size: evaluated.len() / 2,
                energy_noise_floor: floor.into(),
                mode_balance: None,
                modes: None,
                reference: "held-out data (standardised units)".into(),
            }
        }
    };
    Ok(SamplingMetrics {
        guided,
        settings: SamplingSettingsRecord {
            cfg_weight: (settings.guidance == GuidanceKind::Free)
                .then(|| settings.cfg_weight.unwrap_or(DEFAULT_CFG_WEIGHT)),
            guidance: settings.guidance.name().into(),
            eta: plan.eta,
            model_evaluations: plan.model_evaluations(),
            n,
            sampler: plan.kind.name().into(),
            steps: plan.steps(),
            scale: guidance_scale(settings, data),
            seed: settings.seed,
            snapshot_every: settings.snapshot_every,
            variance: format!("{:?}", settings.variance).to_lowercase(),
        },
        unguided,
    })
}

/// The energy distance between `n` training points (drawn without replacement) and the
/// held-out `reference`, over [`floor_repeats`] repeats: what a perfect sampler would
/// score against the held-out data, from the data alone. The subsets are drawn in order
/// from `seed`, the distances on every core (the same values as on one).
pub fn data_noise_floor(
    train: &[f64],
    reference: &EnergyReference,
    n: usize,
    seed: u64,
) -> NoiseFloor {
    use rand::seq::index::sample as choose;
    let rows = train.len() / 2;
    let take = n.min(rows);
    let mut rng = StdRng::seed_from_u64(seed);
    let subsets: Vec<Vec<f64>> = (0..floor_repeats(take))
        .map(|_| {
            let idx = choose(&mut rng, rows, take);
            idx.iter()
                .flat_map(|i| [train[2 * i], train[2 * i + 1]])
                .collect()
        })
        .collect();
    let values = map_on_cores(&subsets, |subset| reference.energy_distance(subset));
    NoiseFloor::from_values(values, take)
}

/// The majority label among the `KNN` nearest neighbours (ties: lowest class).
fn majority(neighbours: &[(f64, usize)], labels: &[u32], n_classes: usize) -> usize {
    let mut counts = vec![0usize; n_classes];
    for &(_, row) in neighbours {
        counts[labels[row] as usize] += 1;
    }
    (0..n_classes)
        .max_by_key(|&k| (counts[k], std::cmp::Reverse(k)))
        .unwrap_or(0)
}

/// The majority label of the `KNN` nearest training points (`grid` of the training rows,
/// `labels` theirs) of each point (ties between classes: lowest class; between equally
/// near points: the lower training row). Points are shared among the cores.
pub fn knn_labels(points: &[f64], grid: &Grid2, labels: &[u32], n_classes: usize) -> Vec<usize> {
    let queries: Vec<[f64; 2]> = points.chunks_exact(2).map(|p| [p[0], p[1]]).collect();
    map_on_cores(&queries, |&p| {
        majority(&grid.nearest(p, KNN), labels, n_classes)
    })
}

/// [`knn_labels`] by scanning every training point for every query: the slow reference.
pub fn knn_labels_scan(
    points: &[f64],
    train: &[f64],
    labels: &[u32],
    n_classes: usize,
) -> Vec<usize> {
    points
        .chunks_exact(2)
        .map(|p| {
            let best = sampler::knn::nearest_scan(train, [p[0], p[1]], KNN);
            majority(&best, labels, n_classes)
        })
        .collect()
}
