//! DDPM reverse sampling (Ho et al. 2020), unguided or with classifier guidance
//! (Dhariwal & Nichol 2021), over the model traits of the `models` crate, so the same
//! loop runs with trained candle networks or with the exact Gaussian-mixture references.
//!
//! One reverse step, for t = T..1 ([`ddpm_step`], a pure function; `σ_t² = β_t` as in the
//! notebook, or β̃_t):
//!
//! - mean = (x_t − β_t/√(1 − ᾱ_t) · ε(x_t, t)) / √α_t
//! - guided: mean += s · σ_t² · ∇_x log p(y | x_t, t)
//! - x_{t−1} = mean + σ_t z, z ~ N(0, I), except at t = 1 where x_0 = mean.
//!
//! Guidance is handed to the sampler as a gradient provider, a [`GuidanceGradient`] (the
//! role of guided-diffusion's `cond_fn`): the sampler asks it for s and ∇_x log p(y | x_t, t)
//! at each step and knows nothing else about it. [`ClassifierGuidance`] provides it from
//! any [`models::NoisyClassifier`]: the gradient is computed by the classifier's
//! [`grad_log_prob`](models::NoisyClassifier::grad_log_prob) (candle autograd), in one
//! backward pass over the whole batch; every sample may have its own target class.
//!
//! All noise is drawn on the host from one seeded RNG: the same seed gives the same
//! samples, bit for bit. The samples live on the host between steps and each step builds
//! a fresh x_t tensor from them, so no autograd graph outlives a step and memory does not
//! grow with T beyond the snapshots kept. The models see at most [`CHUNK_ROWS`] rows a
//! call (a larger batch goes chunk by chunk, the same bits), so their intermediate
//! buffers do not grow with n either; snapshots may keep chosen rows only
//! ([`SamplerConfig::snapshot_rows`]) while the final samples are always kept whole.
//!
//! Classifier-free guidance (Ho & Salimans 2022) is a noise predictor instead:
//! [`ClassifierFreeGuidance`] mixes a conditional model with its unconditional self,
//! (1 + w) ε(x_t, t, y) − w ε(x_t, t, ∅), and every sampler runs it unchanged
//! ([`classifier_free`]).
//!
//! [`solvers`] holds the samplers over a sub-sequence of the steps (DDIM, the
//! probability-flow ODE with Euler and Heun, DPM-Solver++(2M)), run by [`sample_solver`];
//! [`likelihood`] the model as a density (log p(x) by the probability-flow ODE, the ELBO);
//! [`metrics`] the sample-quality measures (energy distance, mode balance, per-mode
//! moments, guided precision); [`knn`] k-nearest-neighbour search in 2-D (a uniform grid,
//! checked against a plain scan).
//!
//! # Example
//!
//! Guided sampling from the exact model of the notebook's two clusters (no training):
//!
//! ```
//! use models::ExactMixture;
//! use sampler::{sample, ClassifierGuidance, SamplerConfig};
//! use schedule::NoiseSchedule;
//!
//! let schedule = NoiseSchedule::notebook();
//! let exact = ExactMixture::new(&toy_data::two_clusters_mixture(), &schedule)?;
//! let (denoiser, classifier) = (exact.denoiser(), exact.classifier());
//! let config = SamplerConfig { num_samples: 50, seed: 7, ..SamplerConfig::default() };
//! let guidance = ClassifierGuidance::one_class(&classifier, 1, 30.0, config.num_samples)?;
//! let run = sample(&denoiser, &schedule, Some(&guidance), &config)?;
//! let last = run.final_points();
//! // Every sample lands in the cluster at (2, 2).
//! assert!(last.chunks(2).all(|p| p[0] > 0.0 && p[1] > 0.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod classifier_free;
pub mod knn;
pub mod likelihood;
pub mod metrics;
pub mod solvers;

pub use classifier_free::ClassifierFreeGuidance;
pub use solvers::{sample_solver, sample_solver_observed, timesteps, Solver};

use candle_core::{Device, Tensor};
use models::{NoisePredictor, NoisyClassifier};
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::StandardNormal;
use schedule::NoiseSchedule;

/// Errors from sampling.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    /// A tensor operation failed.
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// The number of samples must be at least 1.
    #[error("number of samples {0} is invalid: it must be at least 1")]
    InvalidNumSamples(usize),
    /// The snapshot interval must be at least 1.
    #[error("snapshot interval {0} is invalid: it must be at least 1")]
    InvalidSnapshotInterval(usize),
    /// The guidance scale must be finite and ≥ 0.
    #[error("guidance scale {0} is invalid: it must be a finite number ≥ 0")]
    InvalidScale(f64),
    /// The model and the schedule disagree on T.
    #[error("the {what} was built for T = {model} steps but the schedule has T = {schedule}")]
    StepMismatch {
        what: &'static str,
        model: usize,
        schedule: usize,
    },
    /// One target class per sample is needed.
    #[error("{targets} guidance targets for {samples} samples: give one target per sample")]
    TargetCount { targets: usize, samples: usize },
    /// A target class the classifier does not have.
    #[error("target class {class} is out of range: the classifier has classes 0..{num_classes}")]
    InvalidTarget { class: u32, num_classes: usize },
    /// A sample became NaN or infinite.
    #[error("sampling diverged at t = {t}: a sample became NaN or infinite (try a smaller guidance scale)")]
    NonFinite { t: usize },
    /// A step was given slices of different lengths.
    #[error("{what} has {len} values where x_t has {expected}")]
    LengthMismatch {
        what: &'static str,
        len: usize,
        expected: usize,
    },
    /// A time step outside 1..=T.
    #[error("time step t = {t} is out of range: the schedule has steps 1..={num_steps}")]
    InvalidStep { t: usize, num_steps: usize },
    /// A solver's number of steps K must be in 1..=T.
    #[error("{steps} solver steps is invalid: it must be between 1 and T = {num_steps}")]
    InvalidStepCount { steps: usize, num_steps: usize },
    /// A sub-sequence of time steps a solver cannot run.
    #[error("time-step sub-sequence is invalid: {0}")]
    InvalidTimesteps(String),
    /// DDIM's η must be in [0, 1].
    #[error("DDIM η = {0} is invalid: it must be between 0 and 1")]
    InvalidEta(f64),
    /// A point, a state or a log-likelihood became NaN or infinite (t = 0: a point given).
    #[error("the log-likelihood is not finite at t = {t}: a point, the ODE's state or a model's output became NaN or infinite")]
    NonFiniteLikelihood { t: usize },
    /// A snapshot row that is not a sample.
    #[error("snapshot row {row} is out of range: the run has samples 0..{samples}")]
    InvalidSnapshotRow { row: usize, samples: usize },
}

/// The variance σ_t² of each reverse step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReverseVariance {
    /// σ_t² = β_t (the notebook's choice; the upper bound of Ho et al.).
    #[default]
    Beta,
    /// σ_t² = β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t), the true posterior variance (the lower bound).
    Posterior,
}

impl ReverseVariance {
    /// σ_t² for step t of `schedule`.
    pub fn variance(self, schedule: &NoiseSchedule, t: usize) -> f64 {
        match self {
            ReverseVariance::Beta => schedule.beta(t),
            ReverseVariance::Posterior => schedule.posterior_variance(t),
        }
    }
}

/// How to run the reverse process.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// Samples drawn in one batch (the notebook: 500).
    pub num_samples: usize,
    /// Keep a snapshot every this many steps (the notebook: 10), plus the first and last.
    pub snapshot_every: usize,
    /// σ_t² of each DDPM step ([`sample_solver`] does not use it).
    pub variance: ReverseVariance,
    /// Seed of x_T and every z.
    pub seed: u64,
    /// The rows (sample indices, each below `num_samples`) every snapshot keeps; `None`:
    /// every row. Only the snapshots are cut: [`SampleRun::final_points`] always holds
    /// every sample, so a GIF of a few thousand points costs no n × frames memory.
    pub snapshot_rows: Option<Vec<usize>>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            num_samples: 500,
            snapshot_every: 10,
            variance: ReverseVariance::Beta,
            seed: 1234,
            snapshot_rows: None,
        }
    }
}

/// A provider of the guidance gradient, handed to the sampler (guided-diffusion's `cond_fn`).
///
/// The scale is kept apart from the gradient so that each sampler folds s into its own
/// f64 step coefficient (s σ_t² for DDPM) and spends one f32 multiply per value on it.
pub trait GuidanceGradient {
    /// s, the guidance scale (finite, ≥ 0; 0 turns guidance off without calling [`Self::gradient`]).
    fn scale(&self) -> f64;

    /// ∇_x log p(y | x_t, t) for each row of the batch x_t (n × d), not yet scaled by s.
    fn gradient(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor>;

    /// The same for the rows `rows` of the batch only, `x_rows` holding those rows: the
    /// sampler evaluates a large batch [`CHUNK_ROWS`] rows at a time. The default is
    /// [`Self::gradient`] on `x_rows`, right for any provider whose rows are independent
    /// and alike; one with per-sample state (a target per sample) must use `rows`.
    fn gradient_rows(
        &self,
        x_rows: &Tensor,
        t: usize,
        rows: std::ops::Range<usize>,
    ) -> candle_core::Result<Tensor> {
        let _ = rows;
        self.gradient(x_rows, t)
    }

    /// Whether this provider can guide a run of `num_samples` samples over steps
    /// 1..=`num_steps` (checked once, before the first step).
    fn check(&self, num_samples: usize, num_steps: usize) -> Result<(), SamplerError> {
        let _ = (num_samples, num_steps);
        Ok(())
    }
}

/// Classifier guidance: ∇_x log p(y_i | x_t, t) of a noisy classifier at each sample's
/// target class y_i, computed by the classifier's
/// [`grad_log_prob`](NoisyClassifier::grad_log_prob) (candle autograd), and the scale s.
pub struct ClassifierGuidance<'a> {
    classifier: &'a dyn NoisyClassifier,
    targets: Vec<u32>,
    targets_tensor: Tensor,
    scale: f64,
}

impl<'a> ClassifierGuidance<'a> {
    /// Guidance towards `targets[i]` for sample i with scale s (the notebook: 30); the
    /// targets must be classes of `classifier` and s finite and ≥ 0.
    pub fn new(
        classifier: &'a dyn NoisyClassifier,
        targets: Vec<u32>,
        scale: f64,
    ) -> Result<Self, SamplerError> {
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(SamplerError::InvalidScale(scale));
        }
        let c = classifier.num_classes();
        if let Some(&class) = targets.iter().find(|&&y| y as usize >= c) {
            return Err(SamplerError::InvalidTarget {
                class,
                num_classes: c,
            });
        }
        let targets_tensor = Tensor::from_slice(&targets, targets.len(), &Device::Cpu)?;
        Ok(Self {
            classifier,
            targets,
            targets_tensor,
            scale,
        })
    }

    /// Every one of `num_samples` samples guided towards `class`.
    pub fn one_class(
        classifier: &'a dyn NoisyClassifier,
        class: u32,
        scale: f64,
        num_samples: usize,
    ) -> Result<Self, SamplerError> {
        Self::new(classifier, vec![class; num_samples], scale)
    }

    /// The target class of each sample.
    pub fn targets(&self) -> &[u32] {
        &self.targets
    }
}

impl GuidanceGradient for ClassifierGuidance<'_> {
    fn scale(&self) -> f64 {
        self.scale
    }

    fn gradient(&self, x_t: &Tensor, t: usize) -> candle_core::Result<Tensor> {
        self.classifier.grad_log_prob(x_t, t, &self.targets_tensor)
    }

    /// The gradient towards the targets of samples `rows`.
    fn gradient_rows(
        &self,
        x_rows: &Tensor,
        t: usize,
        rows: std::ops::Range<usize>,
    ) -> candle_core::Result<Tensor> {
        if rows == (0..self.targets.len()) {
            return self.gradient(x_rows, t);
        }
        let targets = self.targets_tensor.narrow(0, rows.start, rows.len())?;
        self.classifier.grad_log_prob(x_rows, t, &targets)
    }

    /// One target per sample, and a classifier built for the schedule's T.
    fn check(&self, num_samples: usize, num_steps: usize) -> Result<(), SamplerError> {
        if self.classifier.num_steps() != num_steps {
            return Err(SamplerError::StepMismatch {
                what: "classifier",
                model: self.classifier.num_steps(),
                schedule: num_steps,
            });
        }
        if self.targets.len() != num_samples {
            return Err(SamplerError::TargetCount {
                targets: self.targets.len(),
                samples: num_samples,
            });
        }
        Ok(())
    }
}

/// The state of the samples at one step of the reverse process.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The time index of these points: T for the initial noise, 0 for the final samples.
    pub t: usize,
    /// n × d values, row-major.
    pub points: Vec<f32>,
}

/// The snapshots of one reverse run, from x_T to x_0, and its final samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRun {
    /// d, the data dimension.
    pub dim: usize,
    /// In order of decreasing t; the last is x_0. Each holds the rows of
    /// [`SamplerConfig::snapshot_rows`] (every row when it is `None`), in that order.
    pub snapshots: Vec<Snapshot>,
    /// x_0 of every sample, n × d row-major (see [`SampleRun::final_points`]).
    pub samples: Vec<f32>,
}

impl SampleRun {
    /// A run with no snapshots and no samples (a placeholder for benchmarks).
    pub fn empty(dim: usize) -> Self {
        Self {
            dim,
            snapshots: Vec::new(),
            samples: Vec::new(),
        }
    }

    /// The final samples x_0 of every row, n × d row-major, whichever rows the
    /// snapshots keep.
    pub fn final_points(&self) -> &[f32] {
        &self.samples
    }
}

/// (x_t − β_t/√(1 − ᾱ_t) · ε)/√α_t: the mean of p(x_{t−1} | x_t) given the predicted noise ε
/// (Ho et al. 2020, eq. 11), in candle ops; [`ddpm_step`] computes the same bits on the host.
pub fn posterior_mean(
    schedule: &NoiseSchedule,
    x_t: &Tensor,
    predicted_noise: &Tensor,
    t: usize,
) -> candle_core::Result<Tensor> {
    let eps_coef = schedule.beta(t) / schedule.sqrt_one_minus_alpha_bar(t);
    let inv_sqrt_alpha = 1.0 / schedule.alpha(t).sqrt();
    (x_t - predicted_noise.affine(eps_coef, 0.0)?)?.affine(inv_sqrt_alpha, 0.0)
}

/// The guidance term of one step: s and ∇_x log p(y | x_t, t) (n × d, unscaled).
#[derive(Debug, Clone, Copy)]
pub struct GuidanceTerm<'a> {
    /// s, the guidance scale.
    pub scale: f64,
    /// ∇_x log p(y | x_t, t), row-major like x_t.
    pub gradient: &'a [f32],
}

fn check_len(
    what: &'static str,
    values: &[impl Sized],
    expected: usize,
) -> Result<(), SamplerError> {
    if values.len() == expected {
        Ok(())
    } else {
        Err(SamplerError::LengthMismatch {
            what,
            len: values.len(),
            expected,
        })
    }
}

fn check_step(schedule: &NoiseSchedule, t: usize) -> Result<(), SamplerError> {
    if (1..=schedule.num_steps()).contains(&t) {
        Ok(())
    } else {
        Err(SamplerError::InvalidStep {
            t,
            num_steps: schedule.num_steps(),
        })
    }
}

/// One DDPM reverse step x_t → x_{t−1}, a pure function of (ε = model output, t, x_t, z):
/// x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε)/√α_t + s σ_t² ∇ log p(y | x_t, t) + σ_t z
/// (Ho et al. 2020, eq. 11 and Algorithm 2; the guided mean shift: Dhariwal & Nichol 2021, Algorithm 1).
///
/// `eps` is ε(x_t, t), `guidance` the optional guidance term, `z` the standard-normal
/// draws (`None` adds no noise: the sampler passes `None` at t = 1, where x_0 is the
/// mean). Each coefficient is computed in f64 and rounded to f32 once; σ_t z is rounded
/// once from f64. Every slice has x_t's length.
pub fn ddpm_step(
    schedule: &NoiseSchedule,
    variance: ReverseVariance,
    t: usize,
    x_t: &[f32],
    eps: &[f32],
    guidance: Option<GuidanceTerm<'_>>,
    z: Option<&[f64]>,
) -> Result<Vec<f32>, SamplerError> {
    check_step(schedule, t)?;
    check_len("ε", eps, x_t.len())?;
    let eps_coef = (schedule.beta(t) / schedule.sqrt_one_minus_alpha_bar(t)) as f32;
    let inv_sqrt_alpha = (1.0 / schedule.alpha(t).sqrt()) as f32;
    let sigma2 = variance.variance(schedule, t);
    // The same f32 operations, in the same order, as `posterior_mean` (candle's
    // `affine` is v · m + a), so the same bits.
    let mut x: Vec<f32> = x_t
        .iter()
        .zip(eps)
        .map(|(&x, &e)| (x - (e * eps_coef + 0.0)) * inv_sqrt_alpha + 0.0)
        .collect();
    if let Some(g) = guidance {
        check_len("the guidance gradient", g.gradient, x_t.len())?;
        let k = (g.scale * sigma2) as f32;
        for (m, &gr) in x.iter_mut().zip(g.gradient) {
            *m += gr * k + 0.0;
        }
    }
    if let Some(z) = z {
        check_len("z", z, x_t.len())?;
        let sigma = sigma2.sqrt();
        for (m, &z) in x.iter_mut().zip(z) {
            *m += (sigma * z) as f32;
        }
    }
    Ok(x)
}

fn validate(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&dyn GuidanceGradient>,
    config: &SamplerConfig,
) -> Result<(), SamplerError> {
    if config.num_samples == 0 {
        return Err(SamplerError::InvalidNumSamples(0));
    }
    if config.snapshot_every == 0 {
        return Err(SamplerError::InvalidSnapshotInterval(0));
    }
    if let Some(&row) = config
        .snapshot_rows
        .iter()
        .flatten()
        .find(|&&r| r >= config.num_samples)
    {
        return Err(SamplerError::InvalidSnapshotRow {
            row,
            samples: config.num_samples,
        });
    }
    if denoiser.num_steps() != schedule.num_steps() {
        return Err(SamplerError::StepMismatch {
            what: "denoiser",
            model: denoiser.num_steps(),
            schedule: schedule.num_steps(),
        });
    }
    if let Some(g) = guidance {
        if !(g.scale().is_finite() && g.scale() >= 0.0) {
            return Err(SamplerError::InvalidScale(g.scale()));
        }
        g.check(config.num_samples, schedule.num_steps())?;
    }
    Ok(())
}

/// The most rows the sampler hands a model at once: a larger batch is evaluated in
/// consecutive chunks of this many rows, so that a model's intermediate buffers (the
/// notebook's nets keep n × 128 values a layer) stay bounded whatever n; 1,000,000
/// samples would otherwise hold gigabytes. A multiple of the nets' 512-row pieces; every
/// row is computed as in the whole batch (rows are independent), so the same bits.
pub const CHUNK_ROWS: usize = 65_536;

/// ε(x, t) of every row of x (n × d) and, with guidance, the unscaled guidance gradient,
/// `chunk` rows at a time (one call for n ≤ `chunk`).
fn model_outputs(
    denoiser: &dyn NoisePredictor,
    guidance: Option<&dyn GuidanceGradient>,
    x: &[f32],
    d: usize,
    t: usize,
    chunk: usize,
) -> Result<(Vec<f32>, Option<Vec<f32>>), SamplerError> {
    let n = x.len() / d;
    let mut eps = Vec::with_capacity(n * d);
    let mut gradient = guidance.map(|_| Vec::with_capacity(n * d));
    let mut start = 0;
    while start < n {
        let end = n.min(start.saturating_add(chunk.max(1)));
        let rows = end - start;
        let x_t = Tensor::from_slice(&x[start * d..end * d], (rows, d), &Device::Cpu)?;
        eps.extend(host(
            &denoiser.predict_noise_rows(&x_t, t, start..end)?,
            rows * d,
        )?);
        if let (Some(g), Some(out)) = (guidance, gradient.as_mut()) {
            out.extend(host(&g.gradient_rows(&x_t, t, start..end)?, rows * d)?);
        }
        start = end;
    }
    Ok((eps, gradient))
}

/// `len` draws of N(0, 1) in f64.
fn standard_normals(rng: &mut StdRng, len: usize) -> Vec<f64> {
    (0..len).map(|_| rng.sample(StandardNormal)).collect()
}

/// The f32 values of a model's n × d output, row-major.
fn host(t: &Tensor, len: usize) -> Result<Vec<f32>, SamplerError> {
    let v = t
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if v.len() != len {
        return Err(candle_core::Error::Msg(format!(
            "a model returned {} values where {len} were expected",
            v.len()
        ))
        .into());
    }
    Ok(v)
}

/// From this many normals a step on, they are drawn ahead on a second thread (when there
/// is a second core). Measured side by side (BENCHMARKS.md, change 17; an MLP of the
/// notebook's shape, 100 steps): below it the hand-over to the other thread cost more
/// than the draws (500 2-D samples: 8% slower with the thread; in `cargo xtask all`, whose
/// stages already fill both cores, 8% more wall time); at 4,000 samples the thread saved
/// 7–9%.
pub const NOISE_THREAD_VALUES: usize = 4096;

/// Whether drawing `values` normals a step ahead on a second thread pays: a second core,
/// and at least [`NOISE_THREAD_VALUES`] of them.
pub(crate) fn noise_thread_pays(values: usize) -> bool {
    values >= NOISE_THREAD_VALUES && std::thread::available_parallelism().is_ok_and(|p| p.get() > 1)
}

/// Runs `body` with a source of the `draws` batches of `len` standard normals that follow
/// `rng`'s current state, in order: drawn ahead on a second thread when `parallel`
/// (drawing 1,000 normals cost about 5–9 µs of a 140 µs step), else on demand here. The
/// same draws either way; if `body` stops early, so does the thread.
fn with_noise<R>(
    rng: StdRng,
    len: usize,
    draws: usize,
    parallel: bool,
    body: impl FnOnce(&mut dyn FnMut() -> Vec<f64>) -> R,
) -> R {
    let mut rng = rng;
    if !parallel {
        return body(&mut || standard_normals(&mut rng, len));
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<f64>>(8);
        scope.spawn(move || {
            for _ in 0..draws {
                // A closed channel: `body` returned early (an error).
                if tx.send(standard_normals(&mut rng, len)).is_err() {
                    return;
                }
            }
        });
        body(&mut || rx.recv().expect("the noise thread draws every step"))
    })
}

/// The snapshots of a run: x_T, then the state after every step t with
/// t % `every` == 0, and x_0; a snapshot's `t` is the index of the state it holds.
/// Each keeps the rows of `rows` (every row when `None`).
struct Snapshots<'a> {
    every: usize,
    dim: usize,
    rows: Option<&'a [usize]>,
    kept: Vec<Snapshot>,
}

impl<'a> Snapshots<'a> {
    fn new(config: &'a SamplerConfig, dim: usize, num_steps: usize, x_big_t: &[f32]) -> Self {
        let mut s = Self {
            every: config.snapshot_every,
            dim,
            rows: config.snapshot_rows.as_deref(),
            kept: Vec::new(),
        };
        s.record(num_steps, x_big_t, true);
        s
    }

    /// The kept rows of `x`.
    fn cut(&self, x: &[f32]) -> Vec<f32> {
        match self.rows {
            None => x.to_vec(),
            Some(rows) => rows
                .iter()
                .flat_map(|&r| &x[r * self.dim..(r + 1) * self.dim])
                .copied()
                .collect(),
        }
    }

    /// Records x_{t−1}, the state after DDPM step t, if it is kept.
    fn after_step(&mut self, t: usize, x: &[f32]) {
        self.record(t - 1, x, t.is_multiple_of(self.every) || t == 1);
    }

    /// Records `x`, the state x_t, if `keep`.
    fn record(&mut self, t: usize, x: &[f32], keep: bool) {
        if keep {
            let points = self.cut(x);
            self.kept.push(Snapshot { t, points });
        }
    }
}

/// Runs the reverse process from x_T ~ N(0, I) to x_0, keeping snapshots.
///
/// Snapshots: x_T, then the state after every step t with t % `snapshot_every` == 0,
/// and x_0. A snapshot's `t` is the index of the state it holds (x_{t}).
pub fn sample(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&dyn GuidanceGradient>,
    config: &SamplerConfig,
) -> Result<SampleRun, SamplerError> {
    sample_with(
        denoiser,
        schedule,
        guidance,
        config,
        None,
        CHUNK_ROWS,
        &mut |_| {},
    )
}

/// [`sample`], calling `on_step(t)` after each reverse step t = T, …, 1 (for a progress
/// bar): the same draws, the same bits.
pub fn sample_observed(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&dyn GuidanceGradient>,
    config: &SamplerConfig,
    on_step: &mut dyn FnMut(usize),
) -> Result<SampleRun, SamplerError> {
    sample_with(
        denoiser, schedule, guidance, config, None, CHUNK_ROWS, on_step,
    )
}

/// [`sample_observed`], with the noise drawn on a second thread (`Some(true)`), on this one
/// (`Some(false)`) or where that pays (`None`: a second core and at least
/// [`NOISE_THREAD_VALUES`] normals a step), and the models evaluated `chunk` rows at a time:
/// the same draws, the same bits whatever `noise_thread` and `chunk` (`chunk` = 0 counts as
/// 1). [`sample`] and [`sample_observed`] are this with `None` and [`CHUNK_ROWS`]; the two
/// knobs are public so that their choices can be checked to change no bit.
pub fn sample_with(
    denoiser: &dyn NoisePredictor,
    schedule: &NoiseSchedule,
    guidance: Option<&dyn GuidanceGradient>,
    config: &SamplerConfig,
    noise_thread: Option<bool>,
    chunk: usize,
    on_step: &mut dyn FnMut(usize),
) -> Result<SampleRun, SamplerError> {
    validate(denoiser, schedule, guidance, config)?;
    let (n, d, num_steps) = (config.num_samples, denoiser.dim(), schedule.num_steps());
    let guidance = guidance.filter(|g| g.scale() > 0.0);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut x: Vec<f32> = standard_normals(&mut rng, n * d)
        .iter()
        .map(|&z| z as f32)
        .collect();
    let mut snapshots = Snapshots::new(config, d, num_steps, &x);
    let parallel = noise_thread.unwrap_or_else(|| noise_thread_pays(n * d));
    // z of steps T..2, in this order, from the RNG that drew x_T.
    with_noise(
        rng,
        n * d,
        num_steps - 1,
        parallel && num_steps > 1,
        |next_z| {
            for t in (1..=num_steps).rev() {
                let (eps, gradient) = model_outputs(denoiser, guidance, &x, d, t, chunk)?;
                let term = guidance
                    .zip(gradient.as_deref())
                    .map(|(g, gradient)| GuidanceTerm {
                        scale: g.scale(),
                        gradient,
                    });
                let z = (t > 1).then(&mut *next_z);
                x = ddpm_step(schedule, config.variance, t, &x, &eps, term, z.as_deref())?;
                if x.iter().any(|v| !v.is_finite()) {
                    return Err(SamplerError::NonFinite { t });
                }
                snapshots.after_step(t, &x);
                on_step(t);
            }
            Ok(())
        },
    )?;
    Ok(SampleRun {
        dim: d,
        snapshots: snapshots.kept,
        samples: x,
    })
}

/// The README's example, compiled and run with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
