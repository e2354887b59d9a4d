//! The toydiff pipeline as a library: the notebook's stages (gmm, forward, train,
//! sample, evaluate, figures) over a typed, serialisable [`Recipe`], with typed
//! [`Metrics`]. `cargo xtask` maps its flags to these types and calls these functions;
//! `cargo xtask bench` times the same functions.
//!
//! - [`RecipeParams`] → [`RecipeParams::check`] → [`Recipe`]: data source, standardisation,
//!   noise schedule and T, network shapes, training settings, seed; unset fields take the
//!   data set's defaults (the notebook's network and loop for its two clusters).
//! - [`train()`] writes a checkpoint folder (`checkpoints/`: `denoiser.safetensors`,
//!   `classifier.safetensors`, `data.json`, `data.csv`, `recipe.json`), every file
//!   carrying the run id [`Recipe::run_id`]; [`Checkpoint::load`] refuses a folder whose
//!   files come from different runs.
//! - [`sample()`] samples with the recipe's schedule, unguided and guided to each class,
//!   and evaluates the samples ([`SamplingMetrics`]), with DDPM or a few-step solver
//!   ([`SamplerChoice`]); the evaluation and the figures cost the same from a few
//!   thousand samples on ([`sample::evaluate`], [`sample::FIGURE_POINTS`]).
//! - [`samplers()`] measures every sampler's cost/quality frontier, with the learned
//!   denoiser and with the exact score ([`SamplersReport`]).
//! - [`guidance()`] sweeps classifier guidance's scale and classifier-free guidance's
//!   weight, with the learned nets and the exact scores: precision, diversity and the
//!   energy distance to each class ([`GuidanceReport`]).
//! - The figures are functions that return PNG or GIF bytes ([`train::loss_figure`],
//!   [`sample::sampling_gif`], [`forward::schedule_figure`], …); every file is written
//!   atomically through [`OutDir`].
//! - Nothing is printed: a stage reports through an [`Observer`] ([`Silent`] drops it all).
//!
//! # Example
//!
//! Train on the notebook's data with a cosine schedule and short loops, then sample:
//!
//! ```
//! use toydiff::{OutDir, RecipeParams, SampleSettings, Silent, Timings};
//!
//! let dir = std::env::temp_dir().join(format!("toydiff-doc-{}", std::process::id()));
//! let out = OutDir::new(&dir)?;
//! let recipe = RecipeParams {
//!     schedule: Some("cosine".parse()?),
//!     num_steps: 50,
//!     steps: Some(20),
//!     epochs: Some(1),
//!     seed: 7,
//!     ..RecipeParams::default()
//! }
//! .check()?;
//! let mut timings = Timings::default();
//! let trained = toydiff::train(&recipe, &out, &Silent, &mut timings)?;
//! assert_eq!(trained.beta_schedule, "cosine");
//! assert_eq!(trained.run_id, recipe.run_id(toydiff::Prepared::from_recipe(&recipe, 1, &Silent)?.digest()));
//!
//! let settings = SampleSettings { n: 20, snapshot_every: 25, ..SampleSettings::default() };
//! let sampling = toydiff::sample(&settings, &out.path("checkpoints"), &out, &Silent, &mut timings)?;
//! assert_eq!(sampling.guided.len(), 2); // one guided run per class
//! assert!(dir.join("metrics.json").is_file());
//! std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod data;
mod error;
pub mod forward;
pub mod gmm;
pub mod guidance;
mod metrics;
mod observer;
mod output;
mod recipe;
pub mod sample;
pub mod samplers;
pub mod train;

pub use data::{
    file_safe, standardise_mixture, DataMeta, Prepared, DATA_FILE, HELDOUT_FRACTION, META_FILE,
};
pub use error::{PipelineError, Result};
pub use guidance::{guidance, GuidanceReport, GuidanceRow, GuidanceSettings};
pub use metrics::{
    FloorMetrics, GuidedMetrics, Metrics, ModeMetrics, SamplingMetrics, SamplingSettingsRecord,
    TrainMetrics, UnguidedMetrics,
};
pub use observer::{Observer, Progress, Silent};
pub use output::{json_bytes, OutDir, Timings};
pub use recipe::{
    ActivationName, ClassifierShape, CsvParams, DataSource, DenoiserShape, Fnv1a, LrDecay, Recipe,
    RecipeError, RecipeFile, RecipeParams, ScheduleSpec, Seeds, TimeInput, TrainingSettings,
    DEFAULT_CLASSIFIER_STEPS, MAX_NUM_STEPS, RECIPE_FORMAT,
};
pub use sample::{
    sample, Checkpoint, GuidanceKind, Runs, SampleSettings, SamplerChoice, SamplerKind,
    SamplerPlan, DEFAULT_CFG_WEIGHT, DEFAULT_SOLVER_STEPS,
};
pub use samplers::{samplers, FrontierRow, SamplersReport, SamplersSettings};
pub use train::{train, Trained, CHECKPOINTS, CONDITIONAL_FILE, RECIPE_FILE};

/// The README's example, compiled and run with the doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
