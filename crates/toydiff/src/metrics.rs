//! The typed contents of `metrics.json`. Every struct lists its fields in alphabetical
//! order, so the file reads with its keys sorted (as README's `metrics.json` table
//! documents them); `None` fields are `null` unless marked as left out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `metrics.json`: what `train` measured, and what `sample` adds under `sampling`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// The training stage's fields (absent when only `sample` has run into this folder).
    #[serde(flatten)]
    pub train: Option<TrainMetrics>,
    /// The sampling stage's block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<SamplingMetrics>,
}

/// What `train` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainMetrics {
    /// The learned classifier's accuracy at t = 250 (None without labels).
    pub accuracy_t250: Option<f64>,
    /// Its binomial standard error √(p(1−p)/n).
    pub accuracy_t250_std_error: Option<f64>,
    /// Test points behind it.
    pub accuracy_t250_test_points: usize,
    /// The exact Bayes-optimal accuracy at t = 250, where the true distribution is known.
    pub bayes_accuracy_t250: Option<f64>,
    /// The β schedule the networks were trained with: linear, cosine or quadratic.
    pub beta_schedule: String,
    /// Class names.
    pub classes: Vec<String>,
    /// The classifier's loss, mean of the last 200 steps.
    pub classifier_final_loss: Option<f64>,
    /// The exact posterior's cross-entropy, where known.
    pub classifier_loss_floor: Option<f64>,
    /// The conditional denoiser's loss, mean of the last 200 steps (None without labels;
    /// its floor lies below the denoiser's: the class tells it more).
    #[serde(default)]
    pub conditional_denoiser_final_loss: Option<f64>,
    /// The data set's name.
    pub dataset: String,
    /// The denoiser's loss, mean of the last 200 steps.
    pub denoiser_final_loss: f64,
    /// The exact optimal denoiser's loss, where known.
    pub denoiser_loss_floor: Option<f64>,
    /// Rows skipped by --drop-missing.
    pub dropped_rows: usize,
    /// The run identifier of the checkpoints (see [`crate::Recipe::run_id`]).
    pub run_id: String,
}

/// The `sampling` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingMetrics {
    /// `guided_<class>` of each guided run.
    #[serde(flatten)]
    pub guided: BTreeMap<String, GuidedMetrics>,
    /// How the runs were made.
    pub settings: SamplingSettingsRecord,
    /// The unguided run.
    pub unguided: UnguidedMetrics,
}

/// The settings of the sampling runs, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingSettingsRecord {
    /// The classifier-free guidance weight w (null with classifier guidance).
    #[serde(default)]
    pub cfg_weight: Option<f64>,
    /// DDIM's η (null for the other samplers).
    #[serde(default)]
    pub eta: Option<f64>,
    /// How the guided runs were guided: classifier (the notebook's) or free.
    #[serde(default = "classifier")]
    pub guidance: String,
    /// Denoiser evaluations of one run (K, or 2K − 1 for Heun); a guided run adds as
    /// many classifier gradients (classifier guidance) or unconditional evaluations
    /// (free guidance with w > 0).
    #[serde(default)]
    pub model_evaluations: usize,
    /// Samples a run.
    pub n: usize,
    /// The sampler: ddpm, ddim, euler, heun or dpm-solver.
    #[serde(default = "ddpm")]
    pub sampler: String,
    /// The classifier guidance scale s (with free guidance: the s it would have used).
    pub scale: f64,
    /// The seed.
    pub seed: u64,
    /// Snapshot spacing, in solver steps.
    pub snapshot_every: usize,
    /// Solver steps K of a run (T for ddpm).
    #[serde(default)]
    pub steps: usize,
    /// DDPM's reverse variance: beta or posterior (the other samplers do not use it).
    pub variance: String,
}

fn ddpm() -> String {
    "ddpm".into()
}

fn classifier() -> String {
    "classifier".into()
}

/// One mode's share and moments among the samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeMetrics {
    /// Samples assigned to the mode.
    pub count: usize,
    /// Their fraction.
    pub fraction: f64,
    /// Their mean.
    pub mean: Vec<f64>,
    /// The mode (component) index.
    pub mode: usize,
    /// Their standard deviation per coordinate.
    pub std: Vec<f64>,
}

impl From<&sampler::metrics::ModeStats> for ModeMetrics {
    fn from(m: &sampler::metrics::ModeStats) -> Self {
        Self {
            count: m.count,
            fraction: m.fraction,
            mean: m.mean.clone(),
            mode: m.mode,
            std: m.std.clone(),
        }
    }
}

/// The noise floor of an energy distance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FloorMetrics {
    /// Mean over the repeats.
    pub mean: f64,
    /// Sample size of each side.
    pub n: usize,
    /// 95th percentile (nearest rank) over the repeats.
    pub p95: f64,
    /// Pairs drawn.
    pub repeats: usize,
    /// Standard error of `mean` over the repeats (the floor's own Monte Carlo error).
    #[serde(default)]
    pub std_error: f64,
}

impl From<sampler::metrics::NoiseFloor> for FloorMetrics {
    fn from(f: sampler::metrics::NoiseFloor) -> Self {
        Self {
            mean: f.mean,
            n: f.n,
            p95: f.p95,
            repeats: f.repeats,
            std_error: f.std_error,
        }
    }
}

/// The unguided run against the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnguidedMetrics {
    /// Fraction of samples whose 5 nearest training points mostly carry each class
    /// (held-out reference, labelled data only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_fractions: Option<Vec<f64>>,
    /// Energy distance to the reference.
    pub energy_distance: f64,
    /// Reference points behind it (a fresh sample of the mixture, or held-out rows).
    #[serde(default)]
    pub energy_distance_reference_size: usize,
    /// Samples behind it: every sample up to 5,000, else a seeded subsample of 5,000.
    #[serde(default)]
    pub energy_distance_sample_size: usize,
    /// Its noise floor, at the size evaluated.
    pub energy_noise_floor: FloorMetrics,
    /// Fraction of samples in the cluster of class 0 (exact reference only).
    pub mode_balance: Option<f64>,
    /// Per-mode statistics (exact reference only).
    pub modes: Option<Vec<ModeMetrics>>,
    /// "exact mixture" or "held-out data (standardised units)".
    pub reference: String,
}

/// A guided run towards one class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuidedMetrics {
    /// Points of the class's Gaussian behind `energy_distance_to_class` (exact reference only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_distance_reference_size: Option<usize>,
    /// Samples behind `energy_distance_to_class`: every sample up to 5,000, else a seeded
    /// subsample of 5,000 (exact reference only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_distance_sample_size: Option<usize>,
    /// Energy distance to a sample of the class's own Gaussian (exact reference only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_distance_to_class: Option<f64>,
    /// Its noise floor, at the size evaluated (exact reference only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_noise_floor: Option<FloorMetrics>,
    /// Per-mode statistics (exact reference only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modes: Option<Vec<ModeMetrics>>,
    /// Fraction of samples that land in the target class.
    pub precision: f64,
    /// How a sample's class is decided without an exact posterior.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision_rule: Option<String>,
    /// Samples behind `precision` (every sample of the run).
    #[serde(default)]
    pub precision_sample_size: usize,
    /// The class's name.
    pub target_class: String,
}

impl SamplingMetrics {
    /// The lowest guided precision, if any run was guided.
    pub fn min_guided_precision(&self) -> Option<f64> {
        self.guided.values().map(|g| g.precision).reduce(f64::min)
    }
}
