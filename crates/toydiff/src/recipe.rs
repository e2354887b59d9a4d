//! The recipe of a run: everything `train` needs to reproduce its checkpoints, typed and
//! serialisable. Built linfa-style: [`RecipeParams`] (unchecked, unset fields take the
//! data set's defaults) → [`RecipeParams::check`] → [`Recipe`] (every field resolved and
//! in range), one [`RecipeError`] variant per field that can be bad. `train` saves the
//! recipe as `checkpoints/recipe.json`; `sample` and `forward` read the schedule from it.

use std::path::PathBuf;

use models::{
    Activation, ClassifierConfig, ClassifierTraining, ConditionalDenoiserConfig,
    ConditionalTraining, DenoiserConfig, DenoiserTraining, LrSchedule, TimeEncoding,
    DEFAULT_LABEL_DROPOUT,
};
use schedule::{NoiseSchedule, ScheduleKind};
use serde::{Deserialize, Serialize};
use toy_data::BuiltinSet;

/// Value of `format` in `recipe.json`.
pub const RECIPE_FORMAT: &str = "toydiff-recipe-v1";
/// The largest T a recipe accepts.
pub const MAX_NUM_STEPS: usize = 100_000;
/// Classifier training steps the default epoch count aims at on data other than the notebook's.
pub const DEFAULT_CLASSIFIER_STEPS: usize = 8000;

/// A recipe field out of range: one variant per field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecipeError {
    /// `--columns` must name exactly two columns.
    #[error("--columns {given} names {count} column(s): give exactly two, e.g. --columns x,y")]
    ColumnCount {
        /// The columns as given, comma-joined.
        given: String,
        /// How many.
        count: usize,
    },
    /// The two columns must differ.
    #[error("--columns {0} names the same column twice: give two different columns")]
    SameColumnTwice(String),
    /// The label column must not be one of the data columns.
    #[error("--label {label} is also one of --columns {columns}: the class column must be another column")]
    LabelIsAColumn {
        /// The label column.
        label: String,
        /// The data columns, comma-joined.
        columns: String,
    },
    /// A built-in set needs at least two points.
    #[error("data size {0} is invalid: use a whole number from 2 to 1000000")]
    DataSize(usize),
    /// T out of range.
    #[error("number of diffusion steps T = {0} is invalid: use a whole number from 1 to {MAX_NUM_STEPS}")]
    NumSteps(usize),
    /// The schedule's own parameters are out of range.
    #[error("noise schedule: {0}")]
    Schedule(#[from] schedule::ScheduleError),
    /// Denoiser width out of range.
    #[error("denoiser width {0} is invalid: use a whole number from 1 to 4096")]
    Width(usize),
    /// Denoiser depth out of range.
    #[error("denoiser depth {0} is invalid: use a whole number from 1 to 16")]
    Depth(usize),
    /// Denoiser training steps must be at least 1.
    #[error("denoiser training steps {0} is invalid: it must be at least 1")]
    Steps(usize),
    /// Classifier epochs must be at least 1.
    #[error("classifier epochs {0} is invalid: it must be at least 1")]
    Epochs(usize),
    /// Batch size must be at least 1.
    #[error("batch size {0} is invalid: it must be at least 1")]
    Batch(usize),
    /// The learning rate must be finite and in (0, 10].
    #[error("learning rate {0} is invalid: use a number in (0, 10]")]
    LearningRate(f64),
    /// Conditional denoiser training steps must be at least 1.
    #[error("conditional denoiser training steps {0} is invalid: it must be at least 1")]
    CondSteps(usize),
    /// The label dropout of the conditional denoiser must be in (0, 1).
    #[error("--cond-dropout {0} is not allowed: use a probability strictly between 0 and 1 (e.g. 0.1 or 0.2)")]
    CondDropout(f64),
    /// The recipe file is not one this version reads.
    #[error("recipe format is '{0}', expected {RECIPE_FORMAT}")]
    Format(String),
}

/// Where the 2-D data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DataSource {
    /// A seeded built-in set of `n` points, drawn with `seed`.
    Builtin {
        /// The set.
        set: BuiltinSet,
        /// Points generated.
        n: usize,
        /// The seed of the draw (the recipe's seed).
        seed: u64,
    },
    /// Two numeric columns of a CSV file, optionally a class column.
    Csv {
        /// The file, as given.
        path: PathBuf,
        /// The two numeric columns.
        columns: Vec<String>,
        /// The class column, if any.
        label: Option<String>,
        /// Whether rows with a missing or non-numeric cell are skipped (else an error).
        drop_missing: bool,
    },
}

impl DataSource {
    /// Whether this is the notebook's own data (kept in its units, with its networks).
    pub fn is_notebook(&self) -> bool {
        matches!(
            self,
            DataSource::Builtin {
                set: BuiltinSet::TwoClusters,
                ..
            }
        )
    }
}

/// The β schedule, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ScheduleSpec {
    /// Linear β from `beta_start` to `beta_end` (Ho et al. 2020; the notebook's).
    Linear {
        /// β_1.
        beta_start: f64,
        /// β_T.
        beta_end: f64,
    },
    /// Cosine ᾱ with offset s (Nichol & Dhariwal 2021).
    Cosine {
        /// s.
        offset: f64,
    },
    /// Quadratic √β from `beta_start` to `beta_end`.
    Quadratic {
        /// β_1.
        beta_start: f64,
        /// β_T.
        beta_end: f64,
    },
}

impl From<ScheduleKind> for ScheduleSpec {
    fn from(kind: ScheduleKind) -> Self {
        match kind {
            ScheduleKind::Linear {
                beta_start,
                beta_end,
            } => ScheduleSpec::Linear {
                beta_start,
                beta_end,
            },
            ScheduleKind::Quadratic {
                beta_start,
                beta_end,
            } => ScheduleSpec::Quadratic {
                beta_start,
                beta_end,
            },
            ScheduleKind::Cosine { offset } => ScheduleSpec::Cosine { offset },
        }
    }
}

impl From<ScheduleSpec> for ScheduleKind {
    fn from(spec: ScheduleSpec) -> Self {
        match spec {
            ScheduleSpec::Linear {
                beta_start,
                beta_end,
            } => ScheduleKind::Linear {
                beta_start,
                beta_end,
            },
            ScheduleSpec::Quadratic {
                beta_start,
                beta_end,
            } => ScheduleKind::Quadratic {
                beta_start,
                beta_end,
            },
            ScheduleSpec::Cosine { offset } => ScheduleKind::Cosine { offset },
        }
    }
}

/// An activation function, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActivationName {
    /// max(0, x) (the notebook's).
    Relu,
    /// x·σ(x).
    Silu,
}

impl From<ActivationName> for Activation {
    fn from(a: ActivationName) -> Self {
        match a {
            ActivationName::Relu => Activation::Relu,
            ActivationName::Silu => Activation::Silu,
        }
    }
}

/// How the denoiser sees t.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeInput {
    /// t/T (the notebook's).
    Scaled,
    /// 16 sinusoidal features.
    Sinusoidal,
}

/// The learning-rate schedule of a denoiser (the unconditional one or the conditional one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrDecay {
    /// A constant rate (the notebook's).
    Constant,
    /// A cosine decay to 1% of the rate over the steps ([`LrSchedule::Cosine`]).
    Cosine,
}

impl From<LrDecay> for LrSchedule {
    fn from(decay: LrDecay) -> Self {
        match decay {
            LrDecay::Constant => LrSchedule::Constant,
            LrDecay::Cosine => LrSchedule::Cosine,
        }
    }
}

/// The denoiser's shape.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DenoiserShape {
    /// Units per hidden layer.
    pub width: usize,
    /// Hidden layers.
    pub depth: usize,
    /// Activation of the hidden layers.
    pub activation: ActivationName,
    /// How t enters.
    pub time_input: TimeInput,
}

/// The classifier's shape (the notebook's: embedding 32, hidden 64 and 32, relu).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierShape {
    /// Width of the time embedding.
    pub embed_dim: usize,
    /// Widths of the hidden layers.
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers.
    pub activation: ActivationName,
}

/// Training settings of both networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSettings {
    /// Denoiser steps, one batch each.
    pub denoiser_steps: usize,
    /// The denoiser's learning-rate schedule.
    pub denoiser_lr: LrDecay,
    /// Classifier epochs; `None`: about [`DEFAULT_CLASSIFIER_STEPS`] steps' worth of the
    /// training rows (known once the data is read).
    pub classifier_epochs: Option<usize>,
    /// Batch size of both.
    pub batch: usize,
    /// Adam learning rate of both.
    pub learning_rate: f64,
    /// The conditional denoiser's label dropout: the probability that a training point's
    /// class input is the null class ∅ (classifier-free guidance). Recipes written before
    /// it read as the default, [`models::DEFAULT_LABEL_DROPOUT`].
    #[serde(default = "default_cond_dropout")]
    pub cond_dropout: f64,
    /// The conditional denoiser's steps. Recipes written before it read as `None`: the
    /// denoiser's steps, as they were trained.
    #[serde(default)]
    pub cond_steps: Option<usize>,
    /// The conditional denoiser's learning-rate schedule. Recipes written before it read
    /// as `None`: the denoiser's, as they were trained.
    #[serde(default)]
    pub cond_lr: Option<LrDecay>,
}

fn default_cond_dropout() -> f64 {
    DEFAULT_LABEL_DROPOUT
}

/// A checked recipe: every default resolved, every field in range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Where the data comes from.
    pub data: DataSource,
    /// Whether the data is standardised column by column (every set but the notebook's).
    pub standardise: bool,
    /// The β schedule.
    pub schedule: ScheduleSpec,
    /// T.
    pub num_steps: usize,
    /// The denoiser's shape.
    pub denoiser: DenoiserShape,
    /// The classifier's shape (used when the data has labels).
    pub classifier: ClassifierShape,
    /// Training settings.
    pub training: TrainingSettings,
    /// The seed every other seed derives from.
    pub seed: u64,
}

/// A CSV data source as given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsvParams {
    /// The file.
    pub path: PathBuf,
    /// The two numeric columns.
    pub columns: Vec<String>,
    /// The class column.
    pub label: Option<String>,
    /// Skip rows with a missing cell.
    pub drop_missing: bool,
}

/// An unchecked recipe: `None` fields take the data set's default.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipeParams {
    /// A built-in set (default: the notebook's two clusters); ignored with `csv`.
    pub dataset: Option<BuiltinSet>,
    /// Its size (default: the set's own).
    pub n_data: Option<usize>,
    /// A CSV file instead of a built-in set.
    pub csv: Option<CsvParams>,
    /// The β schedule (default: the notebook's linear one).
    pub schedule: Option<ScheduleKind>,
    /// T.
    pub num_steps: usize,
    /// Denoiser width (default 128).
    pub width: Option<usize>,
    /// Denoiser depth (default 2 for the notebook's data, else 3).
    pub depth: Option<usize>,
    /// Denoiser activation (default relu for the notebook's data, else silu).
    pub activation: Option<ActivationName>,
    /// Denoiser time input (default scaled for the notebook's data, else sinusoidal).
    pub time_input: Option<TimeInput>,
    /// Denoiser steps (default 2000 for the notebook's data, else 20000).
    pub steps: Option<usize>,
    /// Classifier epochs (default 1000 for the notebook's data, else about 8000 steps' worth).
    pub epochs: Option<usize>,
    /// Batch size of both networks.
    pub batch: usize,
    /// Adam learning rate of both.
    pub learning_rate: f64,
    /// The conditional denoiser's label dropout (default [`models::DEFAULT_LABEL_DROPOUT`]).
    pub cond_dropout: Option<f64>,
    /// The conditional denoiser's steps (default: twice the denoiser's on the notebook's
    /// data, else the denoiser's).
    pub cond_steps: Option<usize>,
    /// The seed.
    pub seed: u64,
}

impl Default for RecipeParams {
    /// The notebook's recipe.
    fn default() -> Self {
        Self {
            dataset: None,
            n_data: None,
            csv: None,
            schedule: None,
            num_steps: 500,
            width: None,
            depth: None,
            activation: None,
            time_input: None,
            steps: None,
            epochs: None,
            batch: 128,
            learning_rate: 1e-3,
            cond_dropout: None,
            cond_steps: None,
            seed: 1234,
        }
    }
}

impl RecipeParams {
    /// Resolves every default and checks every field.
    pub fn check(&self) -> Result<Recipe, RecipeError> {
        let data = match &self.csv {
            Some(csv) => {
                let given = csv.columns.join(",");
                if csv.columns.len() != 2 {
                    return Err(RecipeError::ColumnCount {
                        given,
                        count: csv.columns.len(),
                    });
                }
                if csv.columns[0] == csv.columns[1] {
                    return Err(RecipeError::SameColumnTwice(given));
                }
                if let Some(label) = csv.label.as_ref().filter(|l| csv.columns.contains(l)) {
                    return Err(RecipeError::LabelIsAColumn {
                        label: label.clone(),
                        columns: given,
                    });
                }
                DataSource::Csv {
                    path: csv.path.clone(),
                    columns: csv.columns.clone(),
                    label: csv.label.clone(),
                    drop_missing: csv.drop_missing,
                }
            }
            None => {
                let set = self.dataset.unwrap_or(BuiltinSet::TwoClusters);
                let n = self.n_data.unwrap_or_else(|| set.default_size());
                if !(2..=1_000_000).contains(&n) {
                    return Err(RecipeError::DataSize(n));
                }
                DataSource::Builtin {
                    set,
                    n,
                    seed: self.seed,
                }
            }
        };
        let notebook = data.is_notebook();
        if !(1..=MAX_NUM_STEPS).contains(&self.num_steps) {
            return Err(RecipeError::NumSteps(self.num_steps));
        }
        let kind = self.schedule.unwrap_or(ScheduleKind::NOTEBOOK_LINEAR);
        NoiseSchedule::new(kind, self.num_steps)?;
        let width = self.width.unwrap_or(128);
        if !(1..=4096).contains(&width) {
            return Err(RecipeError::Width(width));
        }
        let depth = self.depth.unwrap_or(if notebook { 2 } else { 3 });
        if !(1..=16).contains(&depth) {
            return Err(RecipeError::Depth(depth));
        }
        let steps = self.steps.unwrap_or(if notebook { 2000 } else { 20_000 });
        if steps == 0 {
            return Err(RecipeError::Steps(steps));
        }
        let epochs = match self.epochs {
            Some(0) => return Err(RecipeError::Epochs(0)),
            Some(e) => Some(e),
            None if notebook => Some(1000),
            None => None,
        };
        if self.batch == 0 {
            return Err(RecipeError::Batch(self.batch));
        }
        let lr = self.learning_rate;
        if !(lr.is_finite() && lr > 0.0 && lr <= 10.0) {
            return Err(RecipeError::LearningRate(lr));
        }
        let cond_dropout = self.cond_dropout.unwrap_or(DEFAULT_LABEL_DROPOUT);
        if !(cond_dropout > 0.0 && cond_dropout < 1.0) {
            return Err(RecipeError::CondDropout(cond_dropout));
        }
        // Guidance multiplies the conditional net's error by w (ε̂ − ε_c = w (ε_c − ε_u)):
        // on the notebook's data, whose denoiser keeps the notebook's 2,000 steps at a
        // constant rate, the conditional net gets twice the steps and a cosine decay,
        // which keeps the per-class spread at w = 8 within 0.8-1.2 of the truth (README,
        // Guidance); the other sets' 20,000 cosine-decayed steps are enough as they are.
        let cond_steps = self
            .cond_steps
            .unwrap_or(if notebook { 2 * steps } else { steps });
        if cond_steps == 0 {
            return Err(RecipeError::CondSteps(cond_steps));
        }
        let clf = ClassifierConfig::default();
        Ok(Recipe {
            data,
            // The notebook's data stays in its own units (its figures, accuracy at
            // t = 250 and exact references are in them); everything else is standardised.
            standardise: !notebook,
            schedule: kind.into(),
            num_steps: self.num_steps,
            denoiser: DenoiserShape {
                width,
                depth,
                activation: self.activation.unwrap_or(if notebook {
                    ActivationName::Relu
                } else {
                    ActivationName::Silu
                }),
                time_input: self.time_input.unwrap_or(if notebook {
                    TimeInput::Scaled
                } else {
                    TimeInput::Sinusoidal
                }),
            },
            classifier: ClassifierShape {
                embed_dim: clf.embed_dim,
                hidden: clf.hidden.clone(),
                activation: match clf.activation {
                    Activation::Silu => ActivationName::Silu,
                    _ => ActivationName::Relu,
                },
            },
            training: TrainingSettings {
                denoiser_steps: steps,
                // The notebook's constant rate for its own data; a cosine decay elsewhere
                // lets the final weights settle (sharper samples on thin shapes).
                denoiser_lr: if notebook {
                    LrDecay::Constant
                } else {
                    LrDecay::Cosine
                },
                classifier_epochs: epochs,
                batch: self.batch,
                learning_rate: lr,
                cond_dropout,
                cond_steps: Some(cond_steps),
                cond_lr: Some(LrDecay::Cosine),
            },
            seed: self.seed,
        })
    }
}

/// Seeds of the stages, all derived from the recipe's seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeds {
    /// The data (and its held-out split).
    pub data: u64,
    /// The denoiser's initial weights, batches and noise.
    pub denoiser: u64,
    /// The classifier's.
    pub classifier: u64,
    /// The evaluation's test points.
    pub test: u64,
    /// The conditional denoiser's initial weights, batches, noise and label dropout.
    pub conditional: u64,
}

impl Seeds {
    /// The seeds of a run with `seed`.
    pub fn from(seed: u64) -> Self {
        Self {
            data: seed,
            denoiser: seed.wrapping_add(1),
            classifier: seed.wrapping_add(2),
            test: seed.wrapping_add(3),
            conditional: seed.wrapping_add(4),
        }
    }
}

impl Recipe {
    /// Whether this is the notebook's own setup.
    pub fn is_notebook(&self) -> bool {
        self.data.is_notebook()
    }

    /// The seeds of the stages.
    pub fn seeds(&self) -> Seeds {
        Seeds::from(self.seed)
    }

    /// The noise schedule of the run.
    pub fn noise_schedule(&self) -> Result<NoiseSchedule, schedule::ScheduleError> {
        NoiseSchedule::new(self.schedule.into(), self.num_steps)
    }

    /// The denoiser's configuration.
    pub fn denoiser_config(&self) -> DenoiserConfig {
        DenoiserConfig {
            dim: 2,
            hidden_width: self.denoiser.width,
            hidden_layers: self.denoiser.depth,
            num_steps: self.num_steps,
            activation: self.denoiser.activation.into(),
            time_encoding: match self.denoiser.time_input {
                TimeInput::Scaled => TimeEncoding::Scaled,
                TimeInput::Sinusoidal => TimeEncoding::Sinusoidal,
            },
        }
    }

    /// The classifier's configuration for `num_classes` classes.
    pub fn classifier_config(&self, num_classes: usize) -> ClassifierConfig {
        ClassifierConfig {
            dim: 2,
            num_classes,
            num_steps: self.num_steps,
            embed_dim: self.classifier.embed_dim,
            hidden: self.classifier.hidden.clone(),
            activation: self.classifier.activation.into(),
        }
    }

    /// The denoiser's training loop.
    pub fn denoiser_training(&self) -> DenoiserTraining {
        DenoiserTraining {
            steps: self.training.denoiser_steps,
            batch_size: self.training.batch,
            learning_rate: self.training.learning_rate,
            seed: self.seeds().denoiser,
            lr_schedule: self.training.denoiser_lr.into(),
        }
    }

    /// The conditional denoiser's configuration for `num_classes` classes: the denoiser's shape.
    pub fn conditional_config(&self, num_classes: usize) -> ConditionalDenoiserConfig {
        ConditionalDenoiserConfig {
            denoiser: self.denoiser_config(),
            num_classes,
        }
    }

    /// The conditional denoiser's loop: its own steps, learning-rate schedule and seed,
    /// the denoiser's batch and learning rate, and the label dropout.
    pub fn conditional_training(&self) -> ConditionalTraining {
        let t = &self.training;
        ConditionalTraining {
            training: DenoiserTraining {
                steps: t.cond_steps.unwrap_or(t.denoiser_steps),
                lr_schedule: t.cond_lr.unwrap_or(t.denoiser_lr).into(),
                seed: self.seeds().conditional,
                ..self.denoiser_training()
            },
            label_dropout: self.training.cond_dropout,
        }
    }

    /// The classifier's epochs on `n_train` training rows.
    pub fn classifier_epochs(&self, n_train: usize) -> usize {
        let batch = self.training.batch;
        self.training.classifier_epochs.unwrap_or_else(|| {
            // About the notebook's 8,000 classifier steps, whatever the data size.
            DEFAULT_CLASSIFIER_STEPS
                .div_ceil(n_train.div_ceil(batch))
                .max(1)
        })
    }

    /// The classifier's training loop on `n_train` training rows.
    pub fn classifier_training(&self, n_train: usize) -> ClassifierTraining {
        ClassifierTraining {
            epochs: self.classifier_epochs(n_train),
            batch_size: self.training.batch,
            learning_rate: self.training.learning_rate,
            seed: self.seeds().classifier,
        }
    }

    /// The run identifier: a 64-bit FNV-1a hash (16 hex digits) of this recipe (seed
    /// included, a CSV's path left out, so the same data under another name is the same
    /// run) and of the training data's values (`data_digest`, see
    /// [`crate::Prepared::digest`]). Stable across machines and versions of Rust.
    pub fn run_id(&self, data_digest: u64) -> String {
        let mut canonical = self.clone();
        if let DataSource::Csv { path, .. } = &mut canonical.data {
            *path = PathBuf::new();
        }
        let json = serde_json::to_vec(&canonical).expect("a recipe serialises");
        let mut h = Fnv1a::default();
        h.write(RECIPE_FORMAT.as_bytes());
        h.write(&json);
        h.write(&data_digest.to_le_bytes());
        format!("{:016x}", h.0)
    }
}

/// The 64-bit FNV-1a hash (Fowler, Noll, Vo; offset basis 0xcbf29ce484222325, prime
/// 0x100000001b3): fixed, unlike std's randomly seeded hasher.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(pub u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    /// Hashes `bytes` into the state.
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// `recipe.json`: the recipe with its format and run id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecipeFile {
    /// Always [`RECIPE_FORMAT`].
    pub format: String,
    /// The run identifier every file of the checkpoint folder carries.
    pub run_id: String,
    /// The recipe.
    pub recipe: Recipe,
}
